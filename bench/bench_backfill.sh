#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench_backfill.sh - `autoglm-cdc backfill` of BENCH_BF_ROWS (default 1M)
# MariaDB rows to /dev/null and to real Kafka, against
# `mariadb-dump --single-transaction --quick` of the same table in the same
# run (the baseline).  Target: backfill -> Kafka >= 0.5x dump's rows/s.
set -eu
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-$SRC/build}
ROWS=${BENCH_BF_ROWS:-1000000}
CHUNK=${BENCH_BF_CHUNK:-10000}
"$SRC/tests/services.sh" up mariadb kafka >/dev/null
. "$SRC/tests/services.env"
my() { mariadb --no-defaults --protocol=tcp -uroot -p"$MYSQL_ROOT_PASSWORD" -h127.0.0.1 -P"$MYSQL_PORT" "$@"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"; my -e "DROP DATABASE IF EXISTS bfbench" 2>/dev/null || true' EXIT
dsn="mysql://$MYSQL_USER:$MYSQL_PASSWORD@127.0.0.1:$MYSQL_PORT"
run=$$

my -e "DROP DATABASE IF EXISTS bfbench; CREATE DATABASE bfbench; GRANT ALL ON bfbench.* TO '$MYSQL_USER'@'%'"
my bfbench -e "SET SESSION sql_log_bin = 0;
CREATE TABLE orders (id BIGINT NOT NULL PRIMARY KEY, customer INT NOT NULL,
  amount DECIMAL(12,2), status VARCHAR(16), note VARCHAR(64), created DATETIME(3),
  updated TIMESTAMP(6) NULL, qty SMALLINT, score DOUBLE) ENGINE=InnoDB;
INSERT INTO orders SELECT seq, seq % 10007, (seq % 100000) / 100,
  ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'done'), CONCAT('order note ', seq),
  '2024-01-01 00:00:00' + INTERVAL seq SECOND, '2024-06-01 00:00:00' + INTERVAL seq SECOND,
  seq % 300, seq / 7 FROM seq_1_to_$ROWS;
ANALYZE TABLE orders;" >/dev/null

t() { /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$@"; read -r wall user sys rss < "$tmp/time"; }

# baseline: mariadb-dump
t sh -c "mariadb-dump --no-defaults --protocol=tcp -uroot -p'$MYSQL_ROOT_PASSWORD' -h127.0.0.1 -P$MYSQL_PORT \
    --single-transaction --quick bfbench orders > /dev/null"
dump_wall=$wall
printf "mariadb-dump --single-transaction --quick: %d rows in %.2f s = %.0f rows/s\n" \
    "$ROWS" "$wall" "$(echo "$ROWS / $wall" | bc -l)"

# backfill -> /dev/null (envelopes written by the file sink)
t "$BUILD/autoglm-cdc" backfill --source mysql --mysql-dsn "$dsn" --table bfbench.orders \
    --sink file -o /dev/null --chunk-size "$CHUNK" --state-dir "$tmp/s1" --pipeline b1 -q
null_wall=$wall
printf "backfill -> /dev/null: %.0f rows/s (%.2f s, cpu %.2f s, peak RSS %.1f MB) = %.2fx dump\n" \
    "$(echo "$ROWS / $wall" | bc -l)" "$wall" "$(echo "$user + $sys" | bc -l)" \
    "$(echo "$rss / 1024" | bc -l)" "$(echo "$dump_wall / $wall" | bc -l)"

# backfill -> Kafka (the topic is created first: a deployment's topic exists;
# auto-creation and leader election are not what is measured)
kcat -b "$KAFKA_BOOTSTRAP" -L -t "bfb$run.orders" >/dev/null 2>&1 || true
for _ in 1 2 3 4 5 6 7 8 9 10; do
    kcat -b "$KAFKA_BOOTSTRAP" -L -t "bfb$run.orders" 2>/dev/null | grep -q "leader 1" && break
    sleep 0.5
done
t "$BUILD/autoglm-cdc" backfill --source mysql --mysql-dsn "$dsn" --table bfbench.orders \
    --sink kafka --kafka-brokers "$KAFKA_BOOTSTRAP" --topic "bfb$run.{table}" \
    --chunk-size "$CHUNK" --state-dir "$tmp/s2" --pipeline b2 -q ${BENCH_KAFKA_X:-}
kwall=$wall
got=$(kcat -b "$KAFKA_BOOTSTRAP" -C -t "bfb$run.orders" -o beginning -e -q -f '.\n' | wc -l)
printf "backfill -> Kafka: %.0f rows/s (%.2f s, cpu %.2f s, peak RSS %.1f MB), %d messages = %.2fx dump (target >= 0.5x)\n" \
    "$(echo "$ROWS / $kwall" | bc -l)" "$kwall" "$(echo "$user + $sys" | bc -l)" \
    "$(echo "$rss / 1024" | bc -l)" "$got" "$(echo "$dump_wall / $kwall" | bc -l)"
[ "$got" = "$ROWS" ] || echo "WARNING: $got messages in Kafka, expected $ROWS"
