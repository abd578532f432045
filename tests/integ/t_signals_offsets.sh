#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_signals_offsets.sh - SIGHUP stops `run` like SIGTERM: a log line, what
# is in flight delivered, a final checkpoint and exit 0 (it used to kill the
# process, exit 129, no checkpoint).  A restart from that checkpoint
# delivers every later row exactly once.  A backfill stops after its chunk
# in flight with exit 75 and resumes.  `offsets show -c FILE` (options
# after the command words) shows that pipeline's checkpoint with the commit
# time of its last transaction in ISO-8601 UTC.
. "$(dirname "$0")/lib.sh"
need mariadb cdc

DB=cdc_sighup
N=${CDC_SIGHUP_ROWS:-40}
my_fresh_db $DB
my_sql "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)); GRANT ALL ON $DB.* TO '$MYSQL_USER'@'%'" $DB
read -r file pos < <(my_binlog_pos)
cat >"$T/p.yaml" <<EOF
pipeline:
  name: hup
state:
  dir: $T/state
source:
  type: mysql
mysql:
  dsn: $(my_dsn)
  from: $file:$pos
filter:
  include: $DB.*
EOF

# start_cdc OUT ERR: the pipeline in the background; its pid in $cdc
start_cdc() {
    "$CDC" run -c "$T/p.yaml" --log-format json >"$1" 2>"$2" &
    cdc=$!
    wait_for 30 "the source starts" grep -q "source mysql started" "$2"
}
# insert FROM TO: one transaction per row
insert() {
    local i sql=""
    for ((i = $1; i <= $2; i++)); do sql+="INSERT INTO t VALUES ($i, 'r$i');"; done
    my_sql "$sql" $DB
}
rows() { grep -c '"table":"t"' "$1" 2>/dev/null || true; }

start_cdc "$T/out1" "$T/err1"
trap 'kill -TERM $cdc 2>/dev/null; _cdc_cleanup' EXIT
insert 1 "$N"
wait_for 60 "$N rows streamed" bash -c "[ \$(grep -c '\"table\":\"t\"' '$T/out1') -ge $N ]"
kill -HUP "$cdc"
wait "$cdc"; rc=$?
trap _cdc_cleanup EXIT
[ $rc = 0 ] || { tail -5 "$T/err1" >&2; fail "SIGHUP: exit $rc, want 0"; }
grep -q 'SIGHUP received: stopping with a final checkpoint' "$T/err1" \
    || { tail -5 "$T/err1" >&2; fail "no log line names SIGHUP"; }
grep -q '"fac":"pipeline".*stopped after' "$T/err1" || fail "no 'stopped' line after SIGHUP"
[ -f "$T/state/hup.ckpt" ] || fail "no checkpoint after SIGHUP"
log "SIGHUP: exit 0, checkpoint $(head -c 80 "$T/state/hup.ckpt" | tr '\n' ' ')"

# offsets show with -c after the command words: this pipeline's file, and
# the last transaction's commit time in ISO-8601 UTC (from its envelope)
"$CDC" offsets show -c "$T/p.yaml" >"$T/show" 2>&1 || { cat "$T/show" >&2; fail "offsets show -c failed"; }
grep -q "file: $T/state/hup.ckpt" "$T/show" || { cat "$T/show" >&2; fail "offsets show -c: not this pipeline's file"; }
want=$(tail -1 "$T/out1" | python3 -c '
import json, sys, datetime
ms = json.loads(sys.stdin.read())["source"]["ts_ms"]
t = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
print(t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000))')
got=$(sed -n 's/^  commit time: //p' "$T/show")
[ "$got" = "$want" ] || { cat "$T/show" >&2; fail "commit time '$got', want '$want' (ISO-8601 UTC of the last commit)"; }
grep -q "transactions: $N\$" "$T/show" || { cat "$T/show" >&2; fail "offsets show: want $N transactions"; }
log "offsets show: commit time $got"

# a restart resumes exactly after the SIGHUP checkpoint; SIGTERM likewise
start_cdc "$T/out2" "$T/err2"
trap 'kill -TERM $cdc 2>/dev/null; _cdc_cleanup' EXIT
insert $((N + 1)) $((2 * N))
wait_for 60 "$N more rows streamed" bash -c "[ \$(grep -c '\"table\":\"t\"' '$T/out2') -ge $N ]"
kill -TERM "$cdc"
wait "$cdc"; rc=$?
trap _cdc_cleanup EXIT
[ $rc = 0 ] || fail "SIGTERM: exit $rc, want 0"
grep -q 'SIGTERM received' "$T/err2" || fail "no log line names SIGTERM"
ids=$(cat "$T/out1" "$T/out2" | python3 -c '
import json, sys
ids = [json.loads(l)["payload"]["key"]["id"] for l in sys.stdin if l.strip()]
print(len(ids), len(set(ids)), min(ids), max(ids))')
[ "$ids" = "$((2 * N)) $((2 * N)) 1 $((2 * N))" ] \
    || fail "after SIGHUP and a restart: rows/distinct/min/max = $ids, want each of 1..$((2 * N)) once"
log "SIGHUP then restart: $((2 * N)) rows, each once"

# backfill: SIGHUP ends a throttled run after its chunk in flight with
# exit 75 and its progress kept (it used to die, exit 129); the same
# command resumes and the two runs together deliver every row
BF=("$CDC" backfill -c "$T/p.yaml" --table $DB.t --sink file --chunk-size 10
    --max-rows-per-sec 20)
"${BF[@]}" -o "$T/bf1.jsonl" 2>"$T/bf1.err" &
bf=$!
trap 'kill -TERM $bf 2>/dev/null; _cdc_cleanup' EXIT
wait_for 20 "the backfill writes its progress" test -s "$T/state/hup.backfill"
kill -HUP "$bf"
wait "$bf"; rc=$?
trap _cdc_cleanup EXIT
[ $rc = 75 ] || { tail -5 "$T/bf1.err" >&2; fail "backfill after SIGHUP: exit $rc, want 75"; }
grep -q "backfill interrupted" "$T/bf1.err" || fail "backfill after SIGHUP: no 'interrupted' message"
[ -s "$T/state/hup.backfill" ] || fail "backfill after SIGHUP: progress file gone"
n1=$(grep -c '"table":"t"' "$T/bf1.jsonl")
[ "$n1" -lt $((2 * N)) ] || fail "backfill finished before SIGHUP ($n1 rows): not a mid-run test"
"${BF[@]}" -o "$T/bf2.jsonl" --max-rows-per-sec 0 2>"$T/bf2.err" || { tail -5 "$T/bf2.err" >&2; fail "resumed backfill failed"; }
got=$(cat "$T/bf1.jsonl" "$T/bf2.jsonl" | python3 -c '
import json, sys
print(len({json.loads(l)["payload"]["key"]["id"] for l in sys.stdin if l.strip()}))')
[ "$got" = $((2 * N)) ] || fail "backfill after SIGHUP and a rerun: $got distinct keys, want $((2 * N))"
log "backfill SIGHUP: exit 75 after $n1 rows, the rerun completed all $((2 * N))"
echo "PASS: t_signals_offsets"
