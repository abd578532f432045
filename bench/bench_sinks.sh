#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench_sinks.sh - the message sinks against real servers, same run:
#  1) RabbitMQ: catch-up of BENCH_SINK_TXNS x 1000 row changes through
#     --sink rabbitmq (confirms, persistent, mandatory) versus a minimal
#     publisher on RabbitMQ's Java client (bench/amqp/AmqpPub.java, same
#     message size, same confirm window); target >= 0.8x its rate
#  2) MQTT QoS 1: --sink mqtt versus mosquitto_pub -l fed the same envelopes
#     from a file, and versus mosquitto_pub --repeat publishing one envelope
#     in its own loop (both reported)
#  3) HTTP webhook, batches of 500, against tests/integ/webhook_recv.py
# Peak RSS of autoglm-cdc for each (target < 64 MB).
set -eu
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-$SRC/build}
TXNS=${BENCH_SINK_TXNS:-100}
JARS=${XDG_CACHE_HOME:-$HOME/.cache}/autoglm-cdc/amqp-client-5.38.0
"$SRC/tests/services.sh" up mariadb rabbitmq mosquitto >/dev/null
. "$SRC/tests/services.env"
my() { mariadb --no-defaults -uroot -p"$MYSQL_ROOT_PASSWORD" -h127.0.0.1 -P"$MYSQL_PORT" "$@"; }
tmp=$(mktemp -d)
rpid=
trap '[ -n "$rpid" ] && kill "$rpid" 2>/dev/null; rm -rf "$tmp"' EXIT
dsn="mysql://$MYSQL_USER:$MYSQL_PASSWORD@127.0.0.1:$MYSQL_PORT"
run=$$
CONSUME=$BUILD/tests/integ/amqp_consume
[ -x "$CONSUME" ] || make -C "$BUILD" tests/integ/amqp_consume >/dev/null

my -e "DROP DATABASE IF EXISTS sbench; CREATE DATABASE sbench"
read -r f0 p0 _ < <(my -N -e "SHOW BINLOG STATUS")
s0=$(my -N -e "SELECT @@gtid_binlog_pos" | tr ',' '\n' | grep '^0-' | cut -d- -f3)
python3 "$SRC/bench/gen_orders.py" "$TXNS" | my sbench
s1=$(my -N -e "SELECT @@gtid_binlog_pos" | tr ',' '\n' | grep '^0-' | cut -d- -f3)
ntx=$((s1 - s0))
rows=$((TXNS * 1000))

cdc() {   # cdc NAME SINK-ARGS...: catch-up run; prints "wall rss_kb"
    local name=$1; shift
    /usr/bin/time -f "%e %M" -o "$tmp/$name.time" "$BUILD/autoglm-cdc" --source mysql \
        --mysql-dsn "$dsn" --from "$f0:$p0" --include 'sbench.*' --max-txns "$ntx" \
        --pipeline "$name" --state-dir "$tmp/state" "$@" 2>"$tmp/$name.err" ||
        { echo "$name run failed:"; tail -5 "$tmp/$name.err"; exit 1; }
    cat "$tmp/$name.time"
}

# the envelopes themselves: message size and the mosquitto_pub input
cdc file --sink file -o "$tmp/env.jsonl" >/dev/null
size=$(awk '{ n += length($0) } END { printf "%d", n / NR }' "$tmp/env.jsonl")
echo "  $rows row changes, envelopes of $size bytes on average"

# 1) RabbitMQ
ex=bench$run
"$CONSUME" "$RMQ_URL" "$ex" "q$ex" '#' declare
read -r wall rss < <(cdc rmq --sink rabbitmq -X rabbitmq.url="$RMQ_URL" -X rabbitmq.exchange="$ex")
ours=$(awk -v r="$rows" -v w="$wall" 'BEGIN { printf "%.0f", r / w }')
"$CONSUME" "$RMQ_URL" "$ex" "q$ex" '#' delete
if [ ! -f "$JARS/amqp-client-5.38.0.jar" ]; then
    mkdir -p "$JARS"
    mvn -B -q -f "$SRC/bench/amqp/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$JARS" >"$tmp/mvn.log" 2>&1 || { tail -20 "$tmp/mvn.log"; exit 1; }
fi
"$CONSUME" "$RMQ_URL" "$ex" "q$ex" '#' declare
read -r n secs < <(java -Xmx256m -cp "$JARS/*" "$SRC/bench/amqp/AmqpPub.java" "${RMQ_URL%/}" "$ex" \
    sbench.orders.insert "$rows" "$size" 10000)
"$CONSUME" "$RMQ_URL" "$ex" "q$ex" '#' delete
java_rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
awk -v o="$ours" -v j="$java_rate" -v m="$rss" 'BEGIN {
  printf "rabbitmq (confirms, window 10000, persistent): autoglm-cdc %d msg/s (MariaDB -> RabbitMQ), Java amqp-client 5.38.0 publisher %d msg/s: %.2fx (target >= 0.8x); peak RSS %.1f MB\n", o, j, o / j, m / 1024 }'

# 2) MQTT QoS 1
read -r wall rss < <(cdc mq --sink mqtt -X mqtt.port="$MQ_PORT" -X mqtt.user="$MQ_USER" \
    -X mqtt.password="$MQ_PASSWORD" -X mqtt.client_id="bench$run" -X mqtt.clean_session=true \
    -X mqtt.topic="bench$run/{table}")
ours=$(awk -v r="$rows" -v w="$wall" 'BEGIN { printf "%.0f", r / w }')
t0=$(date +%s.%N)
mosquitto_pub -h 127.0.0.1 -p "$MQ_PORT" -u "$MQ_USER" -P "$MQ_PASSWORD" -q 1 \
    -t "bench$run/pub" -l <"$tmp/env.jsonl"
t1=$(date +%s.%N)
head -1 "$tmp/env.jsonl" >"$tmp/one.json"
mosquitto_pub -h 127.0.0.1 -p "$MQ_PORT" -u "$MQ_USER" -P "$MQ_PASSWORD" -q 1 \
    -t "bench$run/loop" -f "$tmp/one.json" --repeat "$rows"
t2=$(date +%s.%N)
awk -v o="$ours" -v r="$rows" -v a="$t0" -v b="$t1" -v c="$t2" -v m="$rss" 'BEGIN {
  printf "mqtt QoS 1: autoglm-cdc %d msg/s (MariaDB -> Mosquitto, PUBACK counted); mosquitto_pub -l from a file %d msg/s (%.2fx); mosquitto_pub --repeat loop %d msg/s (%.2fx); peak RSS %.1f MB\n", o, r / (b - a), o / (r / (b - a)), r / (c - b), o / (r / (c - b)), m / 1024 }'

# 3) HTTP webhook, batches of 500
python3 "$SRC/tests/integ/webhook_recv.py" "$tmp/port" "$tmp/requests" &
rpid=$!
for _ in $(seq 100); do [ -f "$tmp/port" ] && break; sleep 0.05; done
read -r wall rss < <(cdc wh --sink http -X webhook.url="http://127.0.0.1:$(cat "$tmp/port")/b" \
    -X webhook.batch=500)
nreq=$(wc -l <"$tmp/requests")
awk -v r="$rows" -v w="$wall" -v n="$nreq" -v m="$rss" 'BEGIN {
  printf "webhook batches of 500 (JSON array, local Python receiver): %.0f changes/s in %d requests; peak RSS %.1f MB\n", r / w, n, m / 1024 }'
echo "  target: each sink < 64 MB RSS"
