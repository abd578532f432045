#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench_bigtxn.sh - one big transaction vs many small ones (issue 20), for
# both sources, in the same run: BENCH_BIGTXN_ROWS (default 2,000,000) row
# updates already in the binlog / WAL, once as transactions of 1000 rows
# and once as ONE transaction, read by autoglm-cdc into each sink of
# BENCH_BIGTXN_SINKS (default "stdout file kafka"; BENCH_BIGTXN_SOURCES
# "mariadb postgres"; envelopes counted: the
# stdout lines, the file's lines, the topic's messages).  Prints rows/s and
# peak RSS of each, and the ratios big/small per sink.  Targets: the big
# transaction within 15% of the small ones' rows/s, <= 64 MB RSS.
set -eu
[ -n "${BENCH_DEBUG:-}" ] && set -x
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-$SRC/build}
ROWS=${BENCH_BIGTXN_ROWS:-2000000}
SINKS=${BENCH_BIGTXN_SINKS:-stdout file kafka}
SOURCES=${BENCH_BIGTXN_SOURCES:-mariadb postgres}
svc="mariadb postgres"
case " $SINKS " in *" kafka "*) svc="$svc kafka" ;; esac
"$SRC/tests/services.sh" up $svc >/dev/null
. "$SRC/tests/services.env"
tmp=$(mktemp -d)
run=$$
my() { mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" -uroot -p"$MYSQL_ROOT_PASSWORD" -N -B "$@"; }
su() { PGPASSWORD=$PG_SUPERPASSWORD psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$PG_SUPERUSER" -d "$PGDATABASE" "$@"; }
cleanup() {
    my -e "DROP DATABASE IF EXISTS bbt$run" >/dev/null 2>&1 || true
    su -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'bbt${run}%'" >/dev/null 2>&1 || true
    su -c "DROP TABLE IF EXISTS bbt${run}_s, bbt${run}_b; DROP PUBLICATION IF EXISTS bbt${run}s, bbt${run}b" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

m() { # sink tag cmd...: wall rss_kb envelopes (written into the sink)
    local sink=$1 tag=$2 n
    shift 2
    case $sink in
    stdout) /usr/bin/time -f "%e %M" -o "$tmp/t" "$@" --sink stdout 2>"$tmp/err" | wc -l >"$tmp/n" ||
                { echo "# failed:" >&2; tail -5 "$tmp/err" >&2; return 1; } ;;
    file) /usr/bin/time -f "%e %M" -o "$tmp/t" "$@" --sink file -o "$tmp/out.jsonl" 2>"$tmp/err" ||
              { echo "# failed:" >&2; tail -5 "$tmp/err" >&2; return 1; }
          wc -l <"$tmp/out.jsonl" >"$tmp/n"
          rm -f "$tmp/out.jsonl" ;;
    kafka) /usr/bin/time -f "%e %M" -o "$tmp/t" "$@" --sink kafka --kafka-brokers "$KAFKA_BOOTSTRAP" \
               --topic "bbt$run$tag" 2>"$tmp/err" ||
               { echo "# failed:" >&2; tail -5 "$tmp/err" >&2; return 1; }
           kcat -b "$KAFKA_BOOTSTRAP" -C -t "bbt$run$tag" -o beginning -e -q -f '\n' | wc -l >"$tmp/n" ;;
    esac
    echo "$(cat "$tmp/t") $(cat "$tmp/n")"
}
small_sql() { # table: ROWS/1000 transactions of 1000 updates
    for ((i = 0; i < ROWS / 1000; i++)); do
        echo "UPDATE $1 SET v = v + 1 WHERE id > $((i * 1000)) AND id <= $(((i + 1) * 1000));"
    done
}
report() { # source idle_s_small idle_s_big wall_small rss_small n_small wall_big rss_big n_big sink
    awk -v s="$1" -v i="$2" -v j="$3" -v r="$ROWS" -v w0="$4" -v m0="$5" -v n0="$6" -v w1="$7" -v m1="$8" -v n1="$9" -v k="${10}" 'BEGIN {
  if (n0 != r || n1 != r) { printf "%s -> %s: %d and %d envelopes, want %d each\n", s, k, n0, n1, r; exit 1 }
  w0 -= i; w1 -= j   # --idle-exit wait
  printf "%s catch-up of %d row updates -> %s:\n", s, r, k
  printf "  %d transactions of 1000 rows : %8.0f rows/s  peak RSS %.1f MB\n", r / 1000, r / w0, m0 / 1024
  printf "  one transaction              : %8.0f rows/s  peak RSS %.1f MB  (%.2fx the rows/s, %.2fx the RSS of small ones)\n", r / w1, m1 / 1024, w0 / w1, m1 / m0
  printf "  targets: >= 0.85x, <= 64 MB RSS\n" }'
}

# ---- MariaDB -------------------------------------------------------------
if [[ " $SOURCES " == *" mariadb "* ]]; then
echo "# MariaDB: $ROWS rows, small transactions then one big one ..."
my -e "CREATE DATABASE bbt$run; CREATE TABLE bbt$run.s (id INT PRIMARY KEY, v BIGINT NOT NULL, pad VARCHAR(80));
       CREATE TABLE bbt$run.b LIKE bbt$run.s;
       INSERT INTO bbt$run.s SELECT seq, 0, REPEAT('p', 60) FROM bbt$run.seq_1_to_$ROWS;
       INSERT INTO bbt$run.b SELECT * FROM bbt$run.s"
read -r f0 p0 _ < <(my -e "SHOW MASTER STATUS")
small_sql "bbt$run.s" | my
read -r f1 p1 _ < <(my -e "SHOW MASTER STATUS")
my -e "UPDATE bbt$run.b SET v = v + 1"
dsn="mysql://root:$MYSQL_ROOT_PASSWORD@127.0.0.1:$MYSQL_PORT"
mycdc() { # sink from table
    rm -rf "$tmp/my$3"
    m "$1" "my$3" "$BUILD/autoglm-cdc" --source mysql --mysql-dsn "$dsn" --from "$2" --include "bbt$run.$3" \
        --idle-exit 5000 --pipeline "bbt$3" --state-dir "$tmp/my$3" -q; }
for k in $SINKS; do
    read -r w0 r0 n0 < <(mycdc "$k" "$f0:$p0" s)
    read -r w1 r1 n1 < <(mycdc "$k" "$f1:$p1" b)
    report MariaDB 5 5 "$w0" "$r0" "$n0" "$w1" "$r1" "$n1" "$k"
    [ "$k" != kafka ] || sleep 1  # (the next topics are new ones)
done
fi

# ---- PostgreSQL ------------------------------------------------------------
[[ " $SOURCES " == *" postgres "* ]] || exit 0
echo "# PostgreSQL: $ROWS rows, small transactions then one big one ..."
su -c "CREATE TABLE bbt${run}_s (id INT PRIMARY KEY, v BIGINT NOT NULL, pad TEXT);
       CREATE TABLE bbt${run}_b (LIKE bbt${run}_s INCLUDING ALL);
       INSERT INTO bbt${run}_s SELECT g, 0, repeat('p', 60) FROM generate_series(1, $ROWS) g;
       INSERT INTO bbt${run}_b SELECT * FROM bbt${run}_s;
       CREATE PUBLICATION bbt${run}s FOR TABLE bbt${run}_s;
       CREATE PUBLICATION bbt${run}b FOR TABLE bbt${run}_b" >/dev/null
# one slot per sink and table, created before the writes: each sink reads
# the same WAL
for k in $SINKS; do su -c "SELECT pg_create_logical_replication_slot('bbt${run}s$k', 'pgoutput')" >/dev/null; done
small_sql "bbt${run}_s" | su >/dev/null
for k in $SINKS; do su -c "SELECT pg_create_logical_replication_slot('bbt${run}b$k', 'pgoutput')" >/dev/null; done
su -c "UPDATE bbt${run}_b SET v = v + 1"
pdsn="host=$PGHOST port=$PGPORT user=$PG_SUPERUSER password=$PG_SUPERPASSWORD dbname=$PGDATABASE"
pgcdc() { # sink table idle_s
    rm -rf "$tmp/pg$2"
    m "$1" "pg$2" "$BUILD/autoglm-cdc" --source postgres --postgres-dsn "$pdsn" -X "postgres.slot=bbt$run$2$1" \
        -X "postgres.publication=bbt$run$2" \
        --idle-exit $(($3 * 1000)) --pipeline "bbt$2" --state-dir "$tmp/pg$2" -q; }
# (--idle-exit counts from the last change handed out: nothing is while the
# server decodes and streams a transaction in progress, which took more
# than 20 s at 2M rows on a loaded machine: BENCH_BIGTXN_PG_IDLE, 90 s)
pidle=${BENCH_BIGTXN_PG_IDLE:-90}
for k in $SINKS; do
    read -r w0 r0 n0 < <(pgcdc "$k" s 20)
    read -r w1 r1 n1 < <(pgcdc "$k" b "$pidle")
    report "PostgreSQL (streamed, spilled past postgres.work_mem)" 20 "$pidle" "$w0" "$r0" "$n0" "$w1" "$r1" "$n1" "$k"
done
