#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_kafka_sink.sh - the Kafka sink against the real broker.
#
# Produces a workload through cdc_sink_kafka_ops (kafka_produce_check, a
# check_PROGRAM) and reads it back with kcat: per topic the exact number of
# messages, per key the order insert/update/delete, a tombstone (NULL value,
# same key) after every delete, keys that are the JSON primary key, values
# that are valid envelopes.  Then an unreachable broker with a short
# kafka.message.timeout.ms must fail the run with an error naming the topic.
#
# Run: tests/services.sh up kafka && tests/integ/run.sh kafka_sink
#      (needs `make check` or `make tests/integ/kafka_produce_check` in
#      $CDC_BUILD first).  Skips (77) without tests/services.env.
. "$(dirname "$0")/lib.sh"

[ -f "$CDC_SVC_ENV" ] || skip "$CDC_SVC_ENV missing (run tests/services.sh up kafka)"
need kafka
need kcat

PROG=$BUILD/tests/integ/kafka_produce_check
if [ ! -x "$PROG" ] && [ -f "$BUILD/Makefile" ]; then
    make -C "$BUILD" -s tests/integ/kafka_produce_check >&2 || fail "cannot build kafka_produce_check"
fi
[ -x "$PROG" ] || skip "$PROG not built (make check in $BUILD)"

APP=itest$$x$(date +%s)
ROWS=1000

# --- 1. delivery, keys, order, tombstones --------------------------------
log "producing $ROWS rows as application $APP to $KAFKA_BOOTSTRAP"
"$PROG" -b "$KAFKA_BOOTSTRAP" -a "$APP" -n $ROWS -t >"$T/produced" 2>"$T/produce.err" \
    || { cat "$T/produce.err" >&2; fail "kafka_produce_check failed"; }
cat "$T/produced" >&2

while read -r what topic count; do
    [ "$what" = topic ] || continue
    kcat -C -b "$KAFKA_BOOTSTRAP" -t "$topic" -o beginning -e -q -J \
        -c $((count + 10)) -m 30 >"$T/$topic.json" 2>"$T/$topic.kcat.err" \
        || { cat "$T/$topic.kcat.err" >&2; fail "kcat could not read $topic"; }
    got=$(wc -l <"$T/$topic.json")
    [ "$got" -eq "$count" ] || fail "$topic: $got messages, expected $count"
    log "$topic: $got messages"
done <"$T/produced"

python3 - "$T/$APP.integ.orders.json" "$APP" "$ROWS" <<'EOF' || fail "orders topic content is wrong"
import json, sys
path, app, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
seq = {}
for n, line in enumerate(open(path), 1):
    m = json.loads(line)
    key = json.loads(m["key"])
    assert list(key) == ["id"], f"line {n}: key {key}"
    k = key["id"]
    if m["payload"] is None:
        seq.setdefault(k, []).append("T")
        continue
    env = json.loads(m["payload"])
    assert env["application_id"] == app, f"line {n}: {env['application_id']}"
    p = env["payload"]
    assert p["key"] == key, f"line {n}: envelope key {p['key']} != {key}"
    img = p["after"] if p["op"] != "d" else p["before"]
    assert img["id"] == k and img["note"].endswith('"q" \u00e9'), img
    seq.setdefault(k, []).append(p["op"])
bad = 0
for k in range(1, rows + 1):
    want = ["c"] + (["u"] if k % 10 == 0 else []) + (["d", "T"] if k % 20 == 0 else [])
    if seq.get(k) != want:
        bad += 1
        if bad < 5:
            print(f"id {k}: {seq.get(k)} expected {want}", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
log "orders: per-key order c/u/d + tombstones correct"

# --- 2. debezium format ---------------------------------------------------
"$PROG" -b "$KAFKA_BOOTSTRAP" -a "${APP}dbz" -n 20 -f debezium >"$T/dbz" 2>"$T/dbz.err" \
    || { cat "$T/dbz.err" >&2; fail "debezium run failed"; }
kcat -C -b "$KAFKA_BOOTSTRAP" -t "${APP}dbz.integ.items" -o beginning -e -q -c 5 -m 30 \
    >"$T/dbz.out" || fail "kcat ${APP}dbz.integ.items"
python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 5, len(lines)
for l in lines:
    e = json.loads(l)
    assert e["op"] == "c" and e["before"] is None and e["source"]["name"] == sys.argv[2], e
' "$T/dbz.out" "${APP}dbz" || fail "debezium envelopes wrong"
log "debezium envelopes read back"

# --- 3. unreachable broker: message timeout fails the run ----------------
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start=$(date +%s)
"$PROG" -b "127.0.0.1:$dead" -a "${APP}dead" -n 20 -X kafka.message.timeout.ms=3000 \
    >"$T/dead.out" 2>"$T/dead.err"
rc=$?
# 69: sink unavailable (docs/OPERATIONS.md), after the message timeout
[ $rc = 69 ] || { cat "$T/dead.err" >&2; fail "run against a dead broker: exit $rc, want 69"; }
grep -q "delivery to topic \"${APP}dead.integ.orders\" failed" "$T/dead.err" \
    || { cat "$T/dead.err" >&2; fail "no delivery error naming the topic"; }
grep -q "all brokers down" "$T/dead.err" || fail "no 'all brokers down' log line"
log "dead broker: exit $rc after $(( $(date +%s) - start ))s: $(grep -m1 'delivery to topic' "$T/dead.err")"

echo "ok"
