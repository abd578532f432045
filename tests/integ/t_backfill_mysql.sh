#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_backfill_mysql.sh - backfill for cron: lock, kill -9 + resume, exit codes
# (MariaDB from tests/services.env; run by tests/integ/run.sh backfill).
#
#  1. two runs of the same pipeline at once: the second exits 75 while the
#     first still runs, with "another backfill ... is running"; the first
#     finishes (0);
#  2. kill -9 of a running, throttled run once three chunks are recorded:
#     the progress file names the last acknowledged chunk; the rerun
#     resumes after it (first key of the rerun > that key), no acknowledged
#     row is emitted again, at most backfill.inflight_chunks (4) chunks
#     handed to the sink but not recorded are emitted twice, every row is
#     emitted, and applying both outputs in order gives exactly the table
#     (no duplicate effects); the completed run removes the progress file;
#  3. bad input: unknown table -> 78, no key -> 78, no source -> 2.
. "$(dirname "$0")/lib.sh"
need mariadb cdc

DB=bf_cron
N=${CDC_BF_ROWS:-30000}
my_sql "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB; GRANT ALL ON $DB.* TO '$MYSQL_USER'@'%'"
my_sql "CREATE TABLE $DB.t (a INT NOT NULL, b VARCHAR(20) NOT NULL, v INT, PRIMARY KEY (a, b)); CREATE TABLE $DB.nokey (x INT)"
python3 - "$N" > "$T/load.sql" <<'PY'
import sys
n = int(sys.argv[1]); vals = []
for i in range(n):
    vals.append("(%d,'k%05d',%d)" % (i // 3, i, i))
    if len(vals) == 2000:
        print("INSERT INTO t VALUES %s;" % ",".join(vals)); vals = []
if vals:
    print("INSERT INTO t VALUES %s;" % ",".join(vals))
PY
my_root "$DB" < "$T/load.sql" || fail "load"

BF=("$CDC" backfill --source mysql --mysql-dsn "$(my_dsn)" --state-dir "$T/state"
    --pipeline cron -X backfill.mode=incremental)
bf() { "${BF[@]}" "$@"; }

# --- 1. two runs at once -----------------------------------------------------
"${BF[@]}" --table $DB.t --sink file -o "$T/one.jsonl" --max-rows-per-sec 10000 \
    --chunk-size 1000 2>"$T/one.err" &
first=$!
wait_for 20 "first run holds the lock" test -s "$T/state/cron.backfill"
t0=$(date +%s%N)
bf --table $DB.t --sink file -o "$T/two.jsonl" 2>"$T/two.err"
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc = 75 ] || fail "second concurrent run exited $rc, expected 75: $(cat "$T/two.err")"
grep -q "another backfill of pipeline cron is running (pid $first)" "$T/two.err" ||
    fail "no clear lock message: $(cat "$T/two.err")"
# it gave up at once: the first run still holds the lock
kill -0 $first 2>/dev/null || fail "the first run ended before the second gave up ($ms ms): no contention shown"
[ ! -s "$T/two.jsonl" ] || fail "second run wrote rows"
wait $first || fail "first run failed: $(tail -5 "$T/one.err")"
[ "$(wc -l < "$T/one.jsonl")" = "$N" ] || fail "first run wrote $(wc -l < "$T/one.jsonl") rows, want $N"
[ ! -e "$T/state/cron.backfill" ] || fail "progress file left after a complete run"
log "lock: second run exited 75 after ${ms} ms; first run wrote $N rows"

# --- 2. kill -9 mid-run, then resume -------------------------------------------
"${BF[@]}" --table $DB.t --sink file -o "$T/k1.jsonl" --max-rows-per-sec 8000 \
    --chunk-size 700 2>"$T/k1.err" &
pid=$!
recorded() { [ "$(awk '$1 == "table" {print $4}' "$T/state/cron.backfill" 2>/dev/null)" -ge 2100 ] 2>/dev/null; }
wait_for 30 "three chunks recorded in the progress file" recorded
kill -9 $pid 2>/dev/null || fail "the backfill had already exited when it was to be killed"
wait $pid 2>/dev/null; rc=$?
[ $rc = 137 ] || fail "the backfill ended with exit $rc, not by SIGKILL (137)"
[ -s "$T/state/cron.backfill" ] || fail "no progress file after kill -9"
key=$(awk '$1 == "table" {print $6}' "$T/state/cron.backfill")
done_rows=$(awk '$1 == "table" {print $4}' "$T/state/cron.backfill")
[ -n "$key" ] && [ "$key" != "-" ] || fail "progress has no key: $(cat "$T/state/cron.backfill")"
k1=$(grep -c '}}$' "$T/k1.jsonl")
log "killed after $k1 rows emitted; progress: $done_rows rows, key $key"
[ "$k1" -ge "$done_rows" ] || fail "progress claims more rows ($done_rows) than were emitted ($k1)"
bf --table $DB.t --sink file -o "$T/k2.jsonl" --chunk-size 700 2>"$T/k2.err" ||
    fail "resumed run failed: $(tail -5 "$T/k2.err")"
grep -q "resuming after key" "$T/k2.err" || fail "rerun did not resume: $(cat "$T/k2.err")"
[ ! -e "$T/state/cron.backfill" ] || fail "progress file left after the resumed run completed"
# at most backfill.inflight_chunks (default 4) chunks were handed to the
# sink without being recorded: only those may appear twice
python3 - "$T/k1.jsonl" "$T/k2.jsonl" "$done_rows" $((4 * 700)) "$N" <<'PY' || fail "resume check failed"
import json, sys
def lines(p):
    out = []
    for l in open(p):
        try:
            out.append(json.loads(l))
        except ValueError:
            pass    # kill -9 may cut the file sink's last line: never acknowledged
    return out
k1 = lines(sys.argv[1])
k2 = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
done, chunk, n = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
key = lambda e: (e["payload"]["key"]["a"], e["payload"]["key"]["b"])
acked = sorted(key(e) for e in k1)[:done]
first2 = key(k2[0])
assert acked, "no acknowledged row before the kill"
assert first2 > acked[-1], "rerun started at %r, not after %r" % (first2, acked[-1])
again = [key(e) for e in k2 if key(e) <= acked[-1]]
assert not again, "acknowledged rows emitted again: %r" % again[:5]
allk = [key(e) for e in k1 + k2]
dups = len(allk) - len(set(allk))
assert len(set(allk)) == n, "%d distinct keys, want %d" % (len(set(allk)), n)
assert dups <= chunk, "%d rows emitted twice (more than the chunks in flight)" % dups
state = {}
for e in k1 + k2:
    state[key(e)] = e["payload"]["after"]
ok = all(state[k]["v"] == int(k[1][1:]) for k in state)
assert ok, "final values differ"
print("# resume: %d + %d rows, %d emitted twice (chunks in flight), rerun started at %r" % (len(k1), len(k2), dups, first2))
PY

# --- 3. exit codes of bad input ------------------------------------------------
bf --table $DB.nosuch --sink file -o /dev/null 2>"$T/e1.err"; rc=$?
[ $rc = 78 ] || fail "unknown table: exit $rc, want 78 ($(cat "$T/e1.err"))"
bf --table $DB.nokey --sink file -o /dev/null 2>"$T/e2.err"; rc=$?
[ $rc = 78 ] || fail "table without key: exit $rc, want 78 ($(cat "$T/e2.err"))"
grep -q "no primary key" "$T/e2.err" || fail "no-key message: $(cat "$T/e2.err")"
"$CDC" backfill --table $DB.t 2>"$T/e3.err"; rc=$?
[ $rc = 2 ] || fail "no source: exit $rc, want 2"

my_sql "DROP DATABASE IF EXISTS $DB"
echo "PASS: backfill lock (75), kill -9 resume without duplicate effects, exit codes"
