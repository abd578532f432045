#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_ckpt_guard.sh - a position is never guessed (issue 12, item 4), against
# the real MariaDB and PostgreSQL:
#   * a checkpoint that is empty, cut short, garbage, or written by the other
#     engine (a PostgreSQL LSN in a MySQL pipeline and back) is refused with
#     exit 78 naming the file; nothing is read, the file is left as it was,
#     and once the real file is back every change made meanwhile arrives;
#   * a GTID in a domain the server never had -> exit 3, nothing replayed;
#   * a second `run` of a pipeline exits 75 at once naming the first's pid;
#   * pipeline.name with '/' or '..' -> exit 78, no file outside state.dir.
# Exit 0 pass, 1 fail, 77 skip.
. "$(dirname "$0")/lib.sh"
need mariadb postgres cdc

DB=cdc_ckg_$$
PGDB=cdcckg_$$
SLOT=s_$PGDB
cleanup_dbs() {
    my_sql "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
    pg_super "SELECT pg_drop_replication_slot('$SLOT') FROM pg_replication_slots WHERE slot_name = '$SLOT' AND NOT active" postgres >/dev/null 2>&1
    pg_sql "DROP DATABASE IF EXISTS $PGDB" postgres >/dev/null 2>&1
}
trap 'cleanup_dbs; _cdc_cleanup' EXIT

MDSN=$(my_dsn)
PDSN="host=$PGHOST port=$PGPORT user=$PGUSER password=$PGPASSWORD dbname=$PGDB"
ST=$T/state
# my_run ERRFILE [args]: the MySQL pipeline "ckm" (until idle for 2 s)
my_run() {
    local e=$1; shift
    timeout 60 "$CDC" --source mysql --mysql-dsn "$MDSN" --pipeline ckm --include "$DB.*" \
        --sink file -o "$T/my.jsonl" --state-dir "$ST" --idle-exit 2000 "$@" 2>"$e"
}
pg_run() {
    local e=$1; shift
    timeout 60 "$CDC" --source postgres --postgres-dsn "$PDSN" --pipeline ckp \
        -X postgres.slot=$SLOT -X postgres.publication=p_$PGDB -X postgres.tables=public.t --sink file -o "$T/pg.jsonl" \
        --state-dir "$ST" --idle-exit 2000 "$@" 2>"$e"
}
rows() { cat "$1" 2>/dev/null | grep -c '"op":"c"'; }
# refused NAME CODE FILE ERRFILE: the run exited CODE and named FILE
refused() {
    [ "$2" = "$5" ] || { cat "$4" >&2; fail "$1: exit $5, expected $2"; }
    grep -qF -- "$3" "$4" || { cat "$4" >&2; fail "$1: the message does not name $3"; }
}

my_fresh_db $DB
my_sql "CREATE TABLE $DB.t (id INT PRIMARY KEY, v VARCHAR(20))"
pg_sql "CREATE DATABASE $PGDB" postgres
pg_sql "CREATE TABLE t (id int PRIMARY KEY, v text)" $PGDB

# --- a first run of each pipeline leaves a real checkpoint ---------------------
my_run "$T/m0.err" --from "$(my_binlog_pos | tr ' ' :)" &
m0=$!
pg_run "$T/p0.err" &
p0=$!
wait_for 20 "the mysql pipeline dumps" grep -q "binlog dump requested" "$T/m0.err"
wait_for 20 "the postgres pipeline streams" grep -q "source postgres started" "$T/p0.err"
my_sql "INSERT INTO $DB.t VALUES (1, 'a')"
pg_sql "INSERT INTO t VALUES (1, 'a')" $PGDB
wait $m0 || { cat "$T/m0.err" >&2; fail "first mysql run failed"; }
wait $p0 || { cat "$T/p0.err" >&2; fail "first postgres run failed"; }
MCK=$ST/ckm.ckpt PCK=$ST/ckp.ckpt
[ -s "$MCK" ] && [ -s "$PCK" ] || fail "no checkpoints after the first runs"
[ "$(rows "$T/my.jsonl")" = 1 ] && [ "$(rows "$T/pg.jsonl")" = 1 ] || fail "first runs: rows missing"
cp "$MCK" "$T/good_my.ckpt"
cp "$PCK" "$T/good_pg.ckpt"

# changes made while the pipelines are stopped: they must never be lost
my_sql "INSERT INTO $DB.t VALUES (2, 'b'), (3, 'c')"
pg_sql "INSERT INTO t VALUES (2, 'b'), (3, 'c')" $PGDB

# --- damaged checkpoints: refused, file untouched, nothing read ----------------
n=$(wc -c <"$T/good_my.ckpt")
damage() { # damage KIND FILE GOOD
    case $1 in
        empty) : >"$2" ;;
        half) head -c $(( $(wc -c <"$3") / 2 )) "$3" >"$2" ;;
        lastbyte) head -c $(( $(wc -c <"$3") - 1 )) "$3" >"$2" ;;
        lastline) head -n -1 "$3" >"$2" ;;
        garbage) head -c 200 /dev/urandom >"$2" ;;
        json) echo '{"file":"mysql-bin.000001","pos":4}' >"$2" ;;
    esac
}
for kind in empty half lastbyte lastline garbage json; do
    damage $kind "$MCK" "$T/good_my.ckpt"
    cp "$MCK" "$T/before"
    my_run "$T/m_$kind.err" --from now
    refused "mysql/$kind" 78 "$MCK" "$T/m_$kind.err" $?
    cmp -s "$MCK" "$T/before" || fail "mysql/$kind: the damaged checkpoint was rewritten"
    damage $kind "$PCK" "$T/good_pg.ckpt"
    pg_run "$T/p_$kind.err"
    refused "postgres/$kind" 78 "$PCK" "$T/p_$kind.err" $?
done
[ "$(rows "$T/my.jsonl")" = 1 ] && [ "$(rows "$T/pg.jsonl")" = 1 ] || fail "a refused run delivered rows"
log "empty, truncated and garbage checkpoints refused with exit 78 (of $n bytes: none, half, all but the last byte or line; random bytes; JSON)"

# the other engine's checkpoint: a PostgreSQL LSN in the MySQL pipeline and a
# binlog position in the PostgreSQL pipeline, with and without source=
cp "$T/good_pg.ckpt" "$MCK"
my_run "$T/m_lsn.err"
refused "mysql/lsn" 78 "$MCK" "$T/m_lsn.err" $?
grep -q "written by source postgres" "$T/m_lsn.err" || { cat "$T/m_lsn.err" >&2; fail "mysql/lsn: engine not named"; }
sed 's/^source=.*/source=/' "$T/good_pg.ckpt" >"$MCK"
my_run "$T/m_lsn2.err"
refused "mysql/lsn without source" 78 "$MCK" "$T/m_lsn2.err" $?
cp "$T/good_my.ckpt" "$PCK"
pg_run "$T/p_binlog.err"
refused "postgres/binlog" 78 "$PCK" "$T/p_binlog.err" $?
[ "$(rows "$T/my.jsonl")" = 1 ] && [ "$(rows "$T/pg.jsonl")" = 1 ] || fail "a refused run delivered rows"
log "checkpoints of the other engine refused with exit 78"

# the real files back: every change made meanwhile arrives
cp "$T/good_my.ckpt" "$MCK"
cp "$T/good_pg.ckpt" "$PCK"
my_run "$T/m_ok.err" || { cat "$T/m_ok.err" >&2; fail "mysql resume failed"; }
pg_run "$T/p_ok.err" || { cat "$T/p_ok.err" >&2; fail "postgres resume failed"; }
[ "$(rows "$T/my.jsonl")" = 3 ] || fail "mysql: $(rows "$T/my.jsonl") rows, expected 3"
[ "$(rows "$T/pg.jsonl")" = 3 ] || fail "postgres: $(rows "$T/pg.jsonl") rows, expected 3"
log "with the real checkpoints back, rows 2 and 3 arrive on both"

# --- a GTID in a domain the server never had: exit 3, nothing replayed ------------
gtid=$(my_gtid)
dom=$(( $(my_val "SELECT @@gtid_binlog_state" | tr , '\n' | cut -d- -f1 | sort -n | tail -1) + 7 ))
cp "$MCK" "$T/before_gtid"
sed "s/^gtid=.*/gtid=$gtid,$dom-1-5/" "$T/before_gtid" >"$MCK"
lines=$(wc -l <"$T/my.jsonl")
my_run "$T/m_dom.err"
refused "mysql/unknown domain" 3 "no GTID domain $dom" "$T/m_dom.err" $?
[ "$(wc -l <"$T/my.jsonl")" = "$lines" ] || fail "unknown domain: changes were replayed"
cp "$T/before_gtid" "$MCK"
log "a GTID of unknown domain $dom refused with exit 3"

# --- one instance per pipeline -----------------------------------------------------
"$CDC" --source mysql --mysql-dsn "$MDSN" --pipeline ckm --include "$DB.*" \
    --sink file -o "$T/my.jsonl" --state-dir "$ST" --idle-exit 30000 2>"$T/first.err" &
first=$!
wait_for 20 "the first instance dumps" grep -q "binlog dump requested" "$T/first.err"
t0=$(date +%s%N)
my_run "$T/second.err"
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
refused "second instance" 75 "pid $first" "$T/second.err" $rc
grep -qF "$ST/ckm.lock" "$T/second.err" || fail "second instance: lock file not named"
[ $ms -lt 5000 ] || fail "second instance took $ms ms to give up"
kill -0 $first 2>/dev/null || fail "the first instance died"
kill -TERM $first
wait $first
log "second instance refused in $ms ms naming pid $first"
# another pipeline on the same state dir is not blocked
pg_run "$T/p_side.err" || { cat "$T/p_side.err" >&2; fail "postgres pipeline blocked"; }

# --- pipeline names that would leave state.dir --------------------------------------
for bad in ../escape a/b x..y; do
    timeout 60 "$CDC" --source mysql --mysql-dsn "$MDSN" --pipeline "$bad" --sink file \
        -o "$T/bad.jsonl" --state-dir "$ST/sub" --idle-exit 1000 2>"$T/bad.err"
    refused "pipeline.name $bad" 78 "pipeline.name: '$bad' is not a valid name" "$T/bad.err" $?
done
[ ! -e "$ST/escape.ckpt" ] && [ ! -e "$ST/escape.lock" ] || fail "a file was written outside state.dir"
log "pipeline names with / or .. refused"
echo "PASS: checkpoints refused when damaged or foreign (78), unknown GTID domain (3), one instance (75)"
