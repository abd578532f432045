#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench_peer.sh - `make bench-peer` (not in CI): autoglm-cdc next to
# Debezium's MySQL connector in Kafka Connect over the same pre-loaded
# changes in the test MariaDB (BENCH_PEER_TXNS x 1,000 row changes of
# bench/gen_orders.py, default 1,000 = 1M), each reading them into the test
# Kafka; prints catch-up wall time, rows/s, CPU-seconds and peak RSS of each.
#
# The peer is run only in an honest configuration: Debezium 3.6.1's MySQL
# connector (bench/peer/pom.xml; its MariaDB connector is not served from
# Maven Central here) against the server as it is.  It refuses MariaDB 10.11
# (it reads VERSION() 10.x as MySQL >= 8.4 and asks for SHOW BINARY LOG
# STATUS); faking the server version is not a fair peer, so when the
# connector fails the script prints its error and skips the peer instead.
set -eu
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-$SRC/build}
TXNS=${BENCH_PEER_TXNS:-1000}
PEER_DIR=${CDC_PEER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/autoglm-cdc/peer-debezium-mysql-3.6.1}
"$SRC/tests/services.sh" up mariadb kafka >/dev/null
. "$SRC/tests/services.env"
my() { mariadb -uroot -p"$MYSQL_ROOT_PASSWORD" -h127.0.0.1 -P"$MYSQL_PORT" "$@"; }
tmp=$(mktemp -d)
cw=
cleanup() {
    [ -n "$cw" ] && kill "$cw" 2>/dev/null && wait "$cw" 2>/dev/null
    my -e "DROP DATABASE IF EXISTS pbench" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
run=$$
rows=$((TXNS * 1000))

# the workload, in the binlog before either tool starts
my -e "DROP DATABASE IF EXISTS pbench; CREATE DATABASE pbench"
read -r f0 p0 _ < <(my -N -e "SHOW BINLOG STATUS")
s0=$(my -N -e "SELECT @@gtid_binlog_pos" | tr ',' '\n' | grep '^0-' | cut -d- -f3)
python3 "$SRC/bench/gen_orders.py" "$TXNS" | my pbench
s1=$(my -N -e "SELECT @@gtid_binlog_pos" | tr ',' '\n' | grep '^0-' | cut -d- -f3)
ntx=$((s1 - s0))
echo "workload: $rows row changes in $ntx transactions, $(my -N -e "SELECT VERSION()")"

# autoglm-cdc
/usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$BUILD/autoglm-cdc" --source mysql \
    --mysql-dsn "mysql://root:$MYSQL_ROOT_PASSWORD@127.0.0.1:$MYSQL_PORT" --from "$f0:$p0" \
    --include 'pbench.*' --sink kafka --kafka-brokers "$KAFKA_BOOTSTRAP" --format debezium \
    --topic "pb$run.{table}" --max-txns "$ntx" --pipeline pb --state-dir "$tmp/state" 2>"$tmp/err" ||
    { echo "autoglm-cdc failed:"; tail -5 "$tmp/err"; exit 1; }
read -r wall user sys rss < "$tmp/time"
awk -v r="$rows" -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" 'BEGIN {
  printf "autoglm-cdc (--format debezium): %.2f s, %.0f rows/s, %.2f CPU-s, peak RSS %.0f MB\n", w, r / w, u + s, m / 1024 }'

# Debezium's MySQL connector in Kafka Connect standalone
if ! ls "$PEER_DIR"/debezium-mysql/debezium-connector-mysql-*.jar >/dev/null 2>&1; then
    mkdir -p "$PEER_DIR/debezium-mysql"
    mvn -B -q -f "$SRC/bench/peer/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$PEER_DIR/debezium-mysql" >"$tmp/mvn.log" 2>&1 ||
        { echo "Debezium peer: mvn could not fetch the connector; peer skipped"; tail -5 "$tmp/mvn.log"; exit 0; }
    rm -f "$PEER_DIR"/debezium-mysql/kafka-clients-*.jar "$PEER_DIR"/debezium-mysql/connect-*.jar \
        "$PEER_DIR"/debezium-mysql/jackson-*.jar
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/worker.properties" <<EOF
bootstrap.servers=$KAFKA_BOOTSTRAP
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
offset.storage.file.filename=$tmp/offsets
plugin.path=$PEER_DIR
listeners=http://127.0.0.1:$port
EOF
cat >"$tmp/peer.properties" <<EOF
name=peer
connector.class=io.debezium.connector.mysql.MySqlConnector
tasks.max=1
database.hostname=127.0.0.1
database.port=$MYSQL_PORT
database.user=root
database.password=$MYSQL_ROOT_PASSWORD
database.server.id=$((5000 + run % 1000))
topic.prefix=peer$run
database.include.list=pbench
snapshot.mode=no_data
schema.history.internal.kafka.bootstrap.servers=$KAFKA_BOOTSTRAP
schema.history.internal.kafka.topic=peer$run.history
EOF
printf 'log4j.rootLogger=INFO, f\nlog4j.appender.f=org.apache.log4j.FileAppender\nlog4j.appender.f.File=%s/connect.log\nlog4j.appender.f.layout=org.apache.log4j.PatternLayout\nlog4j.appender.f.layout.ConversionPattern=%%d %%p %%c{1} %%m%%n\n' "$tmp" >"$tmp/log4j.properties"
t0=$(date +%s.%N)
java -Xmx1g -Dlog4j.configuration="file:$tmp/log4j.properties" -cp "$KAFKA_JARS/*" \
    org.apache.kafka.connect.cli.ConnectStandalone "$tmp/worker.properties" "$tmp/peer.properties" \
    >"$tmp/connect.out" 2>&1 &
cw=$!
state=
for _ in $(seq 1 600); do
    sleep 1
    # the connector's configuration check failing ends standalone Connect
    kill -0 "$cw" 2>/dev/null || { state=FAILED; break; }
    st=$(curl -s "http://127.0.0.1:$port/connectors/peer/status" || true)
    state=$(printf '%s' "$st" | python3 -c 'import json,sys
try:
    d = json.load(sys.stdin); t = d["tasks"]
    print("FAILED" if d["connector"]["state"] == "FAILED" or any(x["state"] == "FAILED" for x in t) else "RUNNING" if t else "")
except Exception:
    print("")')
    [ "$state" = FAILED ] && break
    got=$(kcat -b "$KAFKA_BOOTSTRAP" -C -t "peer$run.pbench.orders" -o beginning -e -q -f '.\n' 2>/dev/null | wc -l)
    [ "$got" -ge "$rows" ] && break
done
t1=$(date +%s.%N)
if [ "$state" = FAILED ]; then
    why=$(grep -m1 -oE '(Debezium|Connect)Exception: .*' "$tmp/connect.log" || true)
    [ -n "$why" ] || why=$(curl -s "http://127.0.0.1:$port/connectors/peer/status" |
        grep -oE '(Debezium|Connect)Exception: [^\\]*' | head -1 || true)
    echo "Debezium 3.6.1 MySQL connector: refuses this server; peer skipped (no honest configuration runs here)"
    echo "  reason: $why"
    exit 0
fi
cpu=$(awk '{print ($14 + $15) / 100}' "/proc/$cw/stat" 2>/dev/null || echo "?")
prss=$(awk '/VmHWM/ {print $2 / 1024}' "/proc/$cw/status" 2>/dev/null || echo "?")
awk -v r="$got" -v a="$t0" -v b="$t1" -v c="$cpu" -v m="$prss" 'BEGIN {
  printf "Debezium 3.6.1 MySQL connector (Kafka Connect 3.9.1, -Xmx1g): %d messages in %.1f s (incl. JVM start), %.0f rows/s, %s CPU-s, peak RSS %s MB\n", r, b - a, r / (b - a), c, m }'
