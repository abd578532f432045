#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench_bigtxn.sh - one big transaction vs many small ones (issue 20), for
# both sources, in the same run: BENCH_BIGTXN_ROWS (default 2,000,000) row
# updates already in the binlog / WAL, once as transactions of 1000 rows
# and once as ONE transaction, read by autoglm-cdc to stdout (envelopes, counted).
# Prints rows/s and peak RSS of each, and the ratio big/small.  Targets:
# the big transaction within 15% of the small ones' rows/s, <= 64 MB RSS.
set -eu
[ -n "${BENCH_DEBUG:-}" ] && set -x
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-$SRC/build}
ROWS=${BENCH_BIGTXN_ROWS:-2000000}
"$SRC/tests/services.sh" up mariadb postgres >/dev/null
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

m() { # cmd...: wall rss_kb envelopes
    /usr/bin/time -f "%e %M" -o "$tmp/t" "$@" 2>"$tmp/err" | wc -l >"$tmp/n" ||
        { echo "# failed:" >&2; tail -5 "$tmp/err" >&2; return 1; }
    echo "$(cat "$tmp/t") $(cat "$tmp/n")"
}
small_sql() { # table: ROWS/1000 transactions of 1000 updates
    for ((i = 0; i < ROWS / 1000; i++)); do
        echo "UPDATE $1 SET v = v + 1 WHERE id > $((i * 1000)) AND id <= $(((i + 1) * 1000));"
    done
}
report() { # source idle_s wall_small rss_small n_small wall_big rss_big n_big
    awk -v s="$1" -v i="$2" -v r="$ROWS" -v w0="$3" -v m0="$4" -v n0="$5" -v w1="$6" -v m1="$7" -v n1="$8" 'BEGIN {
  if (n0 != r || n1 != r) { printf "%s: %d and %d envelopes, want %d each\n", s, n0, n1, r; exit 1 }
  w0 -= i; w1 -= i   # --idle-exit wait
  printf "%s catch-up of %d row updates -> stdout:\n", s, r
  printf "  %d transactions of 1000 rows : %8.0f rows/s  peak RSS %.1f MB\n", r / 1000, r / w0, m0 / 1024
  printf "  one transaction              : %8.0f rows/s  peak RSS %.1f MB  (%.2fx the rows/s of small ones)\n", r / w1, m1 / 1024, w0 / w1
  printf "  targets: >= 0.85x, <= 64 MB RSS\n" }'
}

# ---- MariaDB -------------------------------------------------------------
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
mycdc() { m "$BUILD/autoglm-cdc" --source mysql --mysql-dsn "$dsn" --from "$1" --include "bbt$run.$2" \
    --sink stdout --idle-exit 5000 --pipeline "bbt$2" --state-dir "$tmp/my$2" -q; }
read -r w0 r0 n0 < <(mycdc "$f0:$p0" s)
read -r w1 r1 n1 < <(mycdc "$f1:$p1" b)
report MariaDB 5 "$w0" "$r0" "$n0" "$w1" "$r1" "$n1"

# ---- PostgreSQL ------------------------------------------------------------
echo "# PostgreSQL: $ROWS rows, small transactions then one big one ..."
su -c "CREATE TABLE bbt${run}_s (id INT PRIMARY KEY, v BIGINT NOT NULL, pad TEXT);
       CREATE TABLE bbt${run}_b (LIKE bbt${run}_s INCLUDING ALL);
       INSERT INTO bbt${run}_s SELECT g, 0, repeat('p', 60) FROM generate_series(1, $ROWS) g;
       INSERT INTO bbt${run}_b SELECT * FROM bbt${run}_s;
       CREATE PUBLICATION bbt${run}s FOR TABLE bbt${run}_s;
       CREATE PUBLICATION bbt${run}b FOR TABLE bbt${run}_b" >/dev/null
su -c "SELECT pg_create_logical_replication_slot('bbt${run}s', 'pgoutput')" >/dev/null
small_sql "bbt${run}_s" | su >/dev/null
su -c "SELECT pg_create_logical_replication_slot('bbt${run}b', 'pgoutput')" >/dev/null
su -c "UPDATE bbt${run}_b SET v = v + 1"
pdsn="host=$PGHOST port=$PGPORT user=$PG_SUPERUSER password=$PG_SUPERPASSWORD dbname=$PGDATABASE"
pgcdc() { m "$BUILD/autoglm-cdc" --source postgres --postgres-dsn "$pdsn" -X "postgres.slot=bbt$run$1" \
    -X "postgres.publication=bbt$run$1" \
    --sink stdout --idle-exit 20000 --pipeline "bbt$1" --state-dir "$tmp/pg$1" -q; }
# (--idle-exit counts from the last change handed out: nothing is while the
# server streams a transaction in progress, which takes a while at 2M rows)
read -r w0 r0 n0 < <(pgcdc s)
read -r w1 r1 n1 < <(pgcdc b)
report "PostgreSQL (streamed, spilled past postgres.work_mem)" 20 "$w0" "$r0" "$n0" "$w1" "$r1" "$n1"
