#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Broker stopped for 30 s mid-stream: MariaDB -> autoglm-cdc -> Kafka keeps
# reading until librdkafka's bounded queue is full, then blocks, logs that
# it waits, and delivers everything once the broker is back.  Nothing lost,
# no duplicates needed, clean exit 0 on SIGTERM.
. "$(dirname "$0")/lib.sh"
need mariadb kafka cdc
OUTAGE=${CDC_OUTAGE_SECS:-30}
db=outage_$$
topic=out$$.$db.t
my_fresh_db "$db"
my_sql "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(64))" "$db"
read -r f p < <(my_binlog_pos)

"$CDC" --source mysql --mysql-dsn "$(my_dsn)" --from "$f:$p" --include "$db.*" \
    --sink kafka --kafka-brokers "$KAFKA_BOOTSTRAP" --topic "out$$.{db}.{table}" \
    --pipeline outage --state-dir "$T/state" -X kafka.reconnect.backoff.max.ms=1000 \
    >"$T/out" 2>"$T/cdc.log" &
cdc=$!
trap 'kill $cdc 2>/dev/null; services start kafka >/dev/null 2>&1' EXIT

# writer: 200 rows/s for OUTAGE + 15 s
n=$(( (OUTAGE + 15) * 200 ))
python3 - "$n" <<'PY' | my_root "$db" &
import sys, time
n = int(sys.argv[1]); t0 = time.time()
for i in range(1, n + 1):
    print("INSERT INTO t VALUES (%d, 'row %d');" % (i, i), flush=(i % 20 == 0))
    if i % 20 == 0:
        time.sleep(max(0, t0 + i / 200.0 - time.time()))
PY
writer=$!
sleep 5
log "stopping Kafka for ${OUTAGE}s"
services stop kafka
sleep "$OUTAGE"
grep -q "all brokers down" "$T/cdc.log" || { cat "$T/cdc.log" | tail -20; fail "no 'all brokers down' log line while the broker was stopped"; }
kill -0 $cdc 2>/dev/null || fail "autoglm-cdc exited while the broker was down: $(tail -5 "$T/cdc.log")"
log "starting Kafka again"
services start kafka
wait $writer || fail "writer failed"
got=0
for i in $(seq 1 120); do
    got=$(kafka_count "$topic")
    [ "$got" -ge "$n" ] && break
    sleep 1
done
kill -TERM $cdc
wait $cdc; rc=$?
trap - EXIT
[ $rc = 0 ] || fail "autoglm-cdc exit $rc after SIGTERM: $(tail -5 "$T/cdc.log")"
kafka_dump "$topic" "$T/all.jsonl"
uniq=$(python3 -c '
import json, sys
ids = set()
for l in open(sys.argv[1]):
    ids.add(json.loads(l)["payload"]["after"]["id"])
print(len(ids))' "$T/all.jsonl")
total=$(wc -l < "$T/all.jsonl")
log "rows $n, messages $total, unique ids $uniq"
[ "$uniq" = "$n" ] || fail "lost rows: $uniq of $n ids in Kafka"
grep -q "brokers reachable again\|reachable" "$T/cdc.log" || log "note: no 'reachable again' line"
my_sql "DROP DATABASE $db"
echo "PASS: $n rows through a ${OUTAGE}s broker outage, nothing lost ($((total - n)) duplicates)"
