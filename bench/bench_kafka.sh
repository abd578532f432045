#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench_kafka.sh - MariaDB -> autoglm-cdc -> real Kafka (zstd, acks=all,
# idempotent).  1) catch-up of BENCH_TXNS x 1000 row changes already in the
# binlog: rows/s, CPU seconds per 1M events, peak RSS (ratio against
# mariadb-binlog decoding the same window, measured in the same run);
# 2) commit -> Kafka append latency p50/p99 at a steady 2,000 rows/s.
set -eu
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-$SRC/build}
TXNS=${BENCH_TXNS:-1000}
"$SRC/tests/services.sh" up mariadb kafka >/dev/null
. "$SRC/tests/services.env"
. "$SRC/tests/integ/lib.sh" >/dev/null 2>&1 || true
my() { mariadb -uroot -p"$MYSQL_ROOT_PASSWORD" -h127.0.0.1 -P"$MYSQL_PORT" "$@"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
dsn="mysql://$MYSQL_USER:$MYSQL_PASSWORD@127.0.0.1:$MYSQL_PORT"
run=$$

my -e "DROP DATABASE IF EXISTS kbench; CREATE DATABASE kbench"
read -r f0 p0 _ < <(my -N -e "SHOW BINLOG STATUS")
s0=$(my -N -e "SELECT @@gtid_binlog_pos" | tr ',' '\n' | grep '^0-' | cut -d- -f3)
python3 "$SRC/bench/gen_orders.py" "$TXNS" | my kbench
s1=$(my -N -e "SELECT @@gtid_binlog_pos" | tr ',' '\n' | grep '^0-' | cut -d- -f3)
ntx=$((s1 - s0))
rows=$((TXNS * 1000))
/usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$BUILD/autoglm-cdc" --source mysql \
    --mysql-dsn "$dsn" --from "$f0:$p0" --include 'kbench.*' --sink kafka \
    --kafka-brokers "$KAFKA_BOOTSTRAP" --topic "kb$run.{table}" --max-txns "$ntx" \
    --pipeline kb --state-dir "$tmp/state" 2>"$tmp/err" ||
    { echo "catch-up run failed:"; tail -5 "$tmp/err"; exit 1; }
read -r wall user sys rss < "$tmp/time"
got=$(kcat -b "$KAFKA_BOOTSTRAP" -C -t "kb$run.orders" -o beginning -e -q -f '.\n' | wc -l)
grep -E "warn|error|reconnect" "$tmp/err" | head -5
[ "$got" = "$rows" ] || echo "# WARNING: $got messages for $rows row changes"
awk -v r="$rows" -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" -v g="$got" 'BEGIN {
  printf "catch-up %d row changes MariaDB -> Kafka (zstd, acks=all): %.0f rows/s, wall %.2f s, autoglm-cdc cpu %.2f s per 1M events, peak RSS %.1f MB, %d messages in Kafka\n", r, r / w, w, (u + s) * 1e6 / r, m / 1024, g
  printf "  targets: >= 150000 rows/s, <= 6 cpu-s per 1M, <= 64 MB RSS\n" }'

# steady 2,000 rows/s for 20 s; latency = Kafka LogAppendTime - row's NOW(6)
if [ -n "${KAFKA_JARS:-}" ] && type kafka_create >/dev/null 2>&1; then
    java -Xmx256m -cp "$KAFKA_JARS/*" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$KAFKA_BOOTSTRAP" --create --topic "lat$run.lat" \
        --partitions 1 --replication-factor 1 \
        --config message.timestamp.type=LogAppendTime >/dev/null 2>&1 || true
fi
my kbench -e "CREATE TABLE lat (id INT PRIMARY KEY, t DATETIME(6))"
"$BUILD/autoglm-cdc" --source mysql --mysql-dsn "$dsn" --from now --include 'kbench.lat' \
    --sink kafka --kafka-brokers "$KAFKA_BOOTSTRAP" --topic "lat$run.{table}" \
    -X kafka.linger.ms=1 --pipeline lat --state-dir "$tmp/state" -q 2>"$tmp/err2" &
cdc=$!
sleep 2
python3 - "$MYSQL_PORT" "$MYSQL_ROOT_PASSWORD" <<'PY'
import subprocess, sys, time
p = subprocess.Popen(["mariadb", "-uroot", "-p" + sys.argv[2], "-h127.0.0.1", "-P" + sys.argv[1], "kbench"],
                     stdin=subprocess.PIPE, text=True)
t0 = time.time(); i = 0
while time.time() - t0 < 20:
    # 200 transactions/s x 10 rows
    vals = ",".join("(%d, NOW(6))" % (i + j) for j in range(10))
    p.stdin.write("INSERT INTO lat VALUES %s;\n" % vals); p.stdin.flush()
    i += 10
    time.sleep(max(0, t0 + i / 2000.0 - time.time()))
p.stdin.close(); p.wait()
PY
sleep 2
kill $cdc; wait $cdc || true
kcat -b "$KAFKA_BOOTSTRAP" -C -t "lat$run.lat" -o beginning -e -q -f '%T %s\n' > "$tmp/lat"
python3 - "$tmp/lat" <<'PY'
import json, sys, datetime
lat = []
for line in open(sys.argv[1]):
    ts, js = line.split(" ", 1)
    t = json.loads(js)["payload"]["after"]["t"]
    dt = datetime.datetime.strptime(t, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
    lat.append(int(ts) - dt.timestamp() * 1000)
lat.sort()
if not lat:
    print("latency: no messages"); sys.exit(1)
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print("steady 2,000 rows/s: %d messages; commit -> Kafka append latency p50 %.1f ms, p99 %.1f ms, max %.1f ms (target p99 <= 20 ms)"
      % (len(lat), q(0.5), q(0.99), lat[-1]))
PY
my -e "DROP DATABASE kbench"
