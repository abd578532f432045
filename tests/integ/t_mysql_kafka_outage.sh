#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Broker stopped mid-stream: MariaDB -> autoglm-cdc -> Kafka keeps reading
# until librdkafka's bounded queue (here 500 messages) is full, then blocks
# and logs that the reader is blocked; once the broker is back it logs that
# the brokers are reachable and the reader resumed, and delivers everything.
# Per row the value is the one written, ids arrive in order 1..n (a replay
# may repeat a run of them), nothing is lost; clean exit 0 on SIGTERM.
. "$(dirname "$0")/lib.sh"
need mariadb kafka cdc
OUTAGE=${CDC_OUTAGE_SECS:-30}
QMSGS=500
db=outage_$$
topic=out$$.$db.t
my_fresh_db "$db"
my_sql "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(64))" "$db"
read -r f p < <(my_binlog_pos)

"$CDC" --source mysql --mysql-dsn "$(my_dsn)" --from "$f:$p" --include "$db.*" \
    --sink kafka --kafka-brokers "$KAFKA_BOOTSTRAP" --topic "out$$.{db}.{table}" \
    --pipeline outage --state-dir "$T/state" -X kafka.reconnect.backoff.max.ms=1000 \
    -X kafka.queue.buffering.max.messages=$QMSGS >"$T/out" 2>"$T/cdc.log" &
cdc=$!
trap 'kill $cdc 2>/dev/null; services start kafka >/dev/null 2>&1' EXIT

# the stream runs: the first 200 rows reach Kafka
my_sql "INSERT INTO t VALUES $(seq -s, 1 200 | sed 's/\([0-9]*\)/(\1, '"'"'row \1'"'"')/g')" "$db"
delivered() { [ "$(kafka_count "$topic")" -ge 200 ]; }
wait_for 60 "the first 200 rows in Kafka" delivered
log "stopping Kafka for at least ${OUTAGE}s"
services stop kafka
t_stop=$SECONDS
# writer: 200 rows/s for OUTAGE + 15 s more, from the outage on
n=$(( 200 + (OUTAGE + 15) * 200 ))
python3 - "$n" <<'PY' | my_root "$db" &
import sys, time
n = int(sys.argv[1]); t0 = time.time()
for i in range(201, n + 1):
    print("INSERT INTO t VALUES (%d, 'row %d');" % (i, i), flush=(i % 20 == 0))
    if i % 20 == 0:
        time.sleep(max(0, t0 + (i - 200) / 200.0 - time.time()))
PY
writer=$!
# the queue fills and the reader blocks (warned after 5 s of waiting);
# the broker stays down at least OUTAGE seconds
blocked() { grep -q "producer queue full ($QMSGS messages.*reader blocked" "$T/cdc.log" && [ $((SECONDS - t_stop)) -ge "$OUTAGE" ]; }
wait_for $((OUTAGE + 60)) "the reader blocks on the full producer queue" blocked
grep -q "all brokers down" "$T/cdc.log" || { tail -20 "$T/cdc.log"; fail "no 'all brokers down' log line while the broker was stopped"; }
kill -0 $cdc 2>/dev/null || fail "autoglm-cdc exited while the broker was down: $(tail -5 "$T/cdc.log")"
log "starting Kafka again"
services start kafka
wait $writer || fail "writer failed"
all_there() { [ "$(kafka_count "$topic")" -ge "$n" ]; }
wait_for 120 "all $n rows in Kafka" all_there
grep -q "brokers reachable again" "$T/cdc.log" || fail "no 'brokers reachable again' log line"
grep -q "producer queue has room again, reader resumed" "$T/cdc.log" || fail "no 'reader resumed' log line"
kill -TERM $cdc
wait $cdc; rc=$?
trap - EXIT
[ $rc = 0 ] || fail "autoglm-cdc exit $rc after SIGTERM: $(tail -5 "$T/cdc.log")"
kafka_dump "$topic" "$T/all.jsonl"
python3 - "$T/all.jsonl" "$n" <<'PY' || fail "the rows in Kafka are not exactly those written"
import json, os, sys
sys.path.insert(0, os.environ["ROOT"] + "/tests/integ")
import dblib
n = int(sys.argv[2])
ids, bad = [], []
for l in open(sys.argv[1]):
    a = json.loads(l)["payload"]["after"]
    ids.append(a["id"])
    if a["v"] != "row %d" % a["id"]:
        bad.append(a)
# one insert per id in id order: the stream of ids is itself a 1..n sequence
errs = dblib.check_sequences({"t": ids}, {"t": n}) + ["wrong value: %s" % b for b in bad[:5]]
for e in errs:
    print("FAIL: " + e, file=sys.stderr)
print("# rows %d, messages %d, duplicates %d" % (n, len(ids), len(ids) - n), file=sys.stderr)
sys.exit(1 if errs else 0)
PY
my_sql "DROP DATABASE $db"
echo "PASS: $n rows through a broker outage with a blocked reader, exact values, nothing lost"
