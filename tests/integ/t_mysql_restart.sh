#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_mysql_restart.sh - MariaDB restarted, then stalled (SIGSTOP), mid-stream:
# the mysql source notices (EOF / read timeout of 3 heartbeats), reconnects
# with capped, jittered backoff and resumes after the last transaction it
# handed out: every row arrives exactly once.
. "$(dirname "$0")/lib.sh"
need mariadb

need helper:mysql_drive
DRIVE=$BUILD/tests/integ/mysql_drive
DSN=$(my_dsn)
DB=cdc_myrestart
N=${CDC_RESTART_ROWS:-600}

my_fresh_db $DB
my_sql "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))" $DB
"$DRIVE" -X mysql.dsn="$DSN" -X mysql.heartbeat_ms=1000 --pos-file "$T/pos" \
    >"$T/out" 2>"$T/err" &
drv=$!
trap 'kill -TERM $drv 2>/dev/null; _cdc_cleanup' EXIT
wait_for 20 "the source starts" grep -q "mysql_drive: started" "$T/err"

# writer: rows 1..N, one statement each, retried while the server is down
# (a retry of a commit that did happen is a no-op: nothing is logged)
writer() {
    local i
    for ((i = 1; i <= N; i += 3)); do
        until my_sql "INSERT INTO t VALUES ($i,'a'),($((i+1)),'b'),($((i+2)),'c')
                      ON DUPLICATE KEY UPDATE v = v" $DB 2>/dev/null; do
            sleep 0.2
        done
    done
}
writer &
wr=$!
wait_for 60 "a third of the rows streamed" bash -c "[ \$(grep -c '^c ' '$T/out') -ge $((N / 3)) ]"
log "restarting MariaDB mid-stream"
services restart mariadb
wait_for 90 "two thirds of the rows streamed" bash -c "[ \$(grep -c '^c ' '$T/out') -ge $((N * 2 / 3)) ]"
# a stalled server (no FIN, no heartbeats): the 3-heartbeat read timeout
# notices it and the source reconnects once the server answers again
log "stalling MariaDB (SIGSTOP) until the source notices"
trap 'kill -CONT $MYSQL_PID 2>/dev/null; kill -TERM $drv 2>/dev/null; _cdc_cleanup' EXIT
r0=$(grep -c "reconnecting" "$T/err")
kill -STOP "$MYSQL_PID"
wait_for 60 "the source notices the stalled server (a new 'reconnecting' line)" \
    bash -c "[ \$(grep -c reconnecting '$T/err') -gt $r0 ]"
kill -CONT "$MYSQL_PID"
trap 'kill -TERM $drv 2>/dev/null; _cdc_cleanup' EXIT
wait $wr || fail "writer failed"
wait_for 90 "all $N rows streamed" bash -c "[ \$(grep -c '^c ' '$T/out') -ge $N ]"
sleep 2
kill -TERM $drv; wait $drv
trap _cdc_cleanup EXIT
grep -q "reconnecting" "$T/err" || { cat "$T/err" >&2; fail "no reconnect was logged"; }
[ "$(grep -c "reconnected to" "$T/err")" -ge 2 ] || { cat "$T/err" >&2; fail "expected a reconnect after the restart and after the stall"; }
got=$(grep '^c ' "$T/out" | sed 's/.*after{id=int:\([0-9]*\) .*/\1/' | sort -n)
[ "$(wc -l <<<"$got")" = "$N" ] || fail "$(wc -l <<<"$got") inserts streamed, expected $N (duplicates?)"
[ "$(uniq <<<"$got" | wc -l)" = "$N" ] || fail "duplicate rows after the restart"
[ "$(head -1 <<<"$got")" = 1 ] && [ "$(tail -1 <<<"$got")" = "$N" ] || fail "rows missing after the restart"
grep -v '^c ' "$T/out" | grep -q . && fail "unexpected non-insert changes"
grep -E "reconnect" "$T/err" >&2
log "restart ok: $N rows exactly once"
my_sql "DROP DATABASE $DB"
