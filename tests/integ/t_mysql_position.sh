#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_mysql_position.sh - mysql.position (auto|gtid|file) and the GTID forms of
# mysql.from against MariaDB:
# - a bad mysql.position, a MySQL GTID set given to a MariaDB server and a
#   GTID set that does not parse are refused with exit 78 naming the cause;
# - mysql.position=file: after the server drops our dump (KILL of the dump
#   thread), the source resumes by file:pos (the log names the file, never a
#   GTID state) and every row arrives exactly once;
# - mysql.position=gtid: the same, resumed by GTID state.
# (MySQL's COM_BINLOG_DUMP_GTID needs a MySQL server, which is not available
# here: tests/unit/t_gtid_set checks that command byte for byte.)
. "$(dirname "$0")/lib.sh"
need mariadb
need helper:mysql_drive
DRIVE=$BUILD/tests/integ/mysql_drive
DSN=$(my_dsn)
DB=cdc_mypos
N=${CDC_POSITION_ROWS:-300}

expect() {
    local code=$1 name=$2 rc
    shift 2
    timeout 60 "$@" >"$T/$name.out" 2>"$T/$name.err"
    rc=$?
    [ $rc = "$code" ] || { cat "$T/$name.err" >&2; fail "$name: exit $rc, expected $code"; }
    log "$name: exit $rc as expected"
}
has() { grep -qF -- "$2" "$T/$1.err" || { cat "$T/$1.err" >&2; fail "$1: stderr lacks: $2"; }; }

U=3e11fa47-71ca-11e1-9e33-c80aa9429562
expect 78 bad_mode "$DRIVE" -X mysql.dsn="$DSN" -X mysql.position=sometimes
has bad_mode "mysql.position = 'sometimes' is not auto, gtid or file"
expect 78 mysql_set "$DRIVE" -X mysql.dsn="$DSN" -X mysql.from="$U:1-5"
has mysql_set "mysql.from=$U:1-5 is a MySQL GTID set, but the server"
has mysql_set "is MariaDB"
expect 78 bad_set "$DRIVE" -X mysql.dsn="$DSN" -X mysql.from="$U:0-3"
has bad_set "mysql.from: cannot parse '$U:0-3'"

# ids of the binlog dump threads on the server (a replica may have one)
dump_ids() {
    my_sql "SELECT ID FROM information_schema.PROCESSLIST
            WHERE COMMAND LIKE 'Binlog Dump%' ORDER BY ID" | tr '\n' ' '
}

run_mode() {
    local mode=$1 want=$2 before ours got drv wr i
    my_fresh_db $DB
    my_sql "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))" $DB
    before=" $(dump_ids)"
    "$DRIVE" -X mysql.dsn="$DSN" -X mysql.position="$mode" \
        -X mysql.heartbeat_ms=500 >"$T/$mode.out" 2>"$T/$mode.err" &
    drv=$!
    trap 'kill -TERM $drv 2>/dev/null; _cdc_cleanup' EXIT
    wait_for 20 "the source starts ($mode)" grep -q "mysql_drive: started" "$T/$mode.err"
    for ((i = 1; i <= N / 2; i++)); do
        my_sql "INSERT INTO t VALUES ($i, 'v$i')" $DB
    done
    wait_for 30 "the first half streamed ($mode)" \
        bash -c "[ \$(grep -c '^c ' '$T/$mode.out') -ge $((N / 2)) ]"
    ours=""
    for i in $(dump_ids); do
        [[ "$before" == *" $i "* ]] || ours="$ours $i"
    done
    [ -n "$ours" ] || fail "$mode: no binlog dump thread of the source found"
    kill -0 $drv || fail "$mode: the source died before the KILL"
    for i in $ours; do my_sql "KILL $i"; done
    log "$mode: killed dump thread(s)$ours"
    for ((i = N / 2 + 1; i <= N; i++)); do
        my_sql "INSERT INTO t VALUES ($i, 'v$i')" $DB
    done
    wait_for 60 "the source reconnects ($mode)" grep -q "reconnected to" "$T/$mode.err"
    wait_for 60 "all $N rows streamed ($mode)" \
        bash -c "[ \$(grep -c '^c ' '$T/$mode.out') -ge $N ]"
    kill -TERM $drv
    wait $drv || fail "$mode: mysql_drive exited $?"
    trap _cdc_cleanup EXIT
    # the dump after the reconnect: the last "requested at" line
    grep "binlog dump requested at" "$T/$mode.err" | tail -1 >"$T/$mode.last"
    grep -Eq "$want" "$T/$mode.last" ||
        { cat "$T/$mode.err" >&2; fail "$mode: resumed with '$(cat "$T/$mode.last")', expected /$want/"; }
    # per key exactly once, values as written
    got=$(grep '^c ' "$T/$mode.out" | sed -E 's/.*after\{id=int:([0-9]+) v=str:"(v[0-9]+)".*/\1 \2/')
    [ "$(wc -l <<<"$got")" = "$N" ] || fail "$mode: $(wc -l <<<"$got") inserts, expected $N"
    exp=$(for ((i = 1; i <= N; i++)); do echo "$i v$i"; done)
    [ "$(sort -n <<<"$got")" = "$exp" ] || fail "$mode: rows lost, repeated or altered"
    log "$mode: $(cat "$T/$mode.last" | sed 's/.*\(binlog dump requested at\)/\1/'); $N rows exactly once"
}

run_mode file 'requested at [^ ]+-bin\.[0-9]+:[0-9]+ \(server_id'
run_mode gtid "requested at GTID state '[0-9]+-[0-9]+-[0-9]+"
my_sql "DROP DATABASE $DB"
