#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench_pg.sh - PostgreSQL catch-up: BENCH_TXNS x 1000 row changes already
# in the WAL, read through a pgoutput slot by autoglm-cdc (-> Kafka and ->
# /dev/null) and by pg_recvlogical (pgoutput, -> /dev/null) on copies of
# the same slot, in the same run.  Target >= 0.9x pg_recvlogical's rate
# (the walsender is the limit) and <= 64 MB RSS.
set -eu
[ -n "${BENCH_DEBUG:-}" ] && set -x
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-$SRC/build}
TXNS=${BENCH_TXNS:-1000}
"$SRC/tests/services.sh" up postgres kafka >/dev/null
. "$SRC/tests/services.env"
export PGPASSWORD
su() { PGPASSWORD=$PG_SUPERPASSWORD psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$PG_SUPERUSER" -d "$PGDATABASE" "$@"; }
tmp=$(mktemp -d)
run=$$
cleanup() {
    su -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'pgb${run}%'" >/dev/null 2>&1 || true
    su -c "DROP SCHEMA IF EXISTS pgb$run CASCADE; DROP PUBLICATION IF EXISTS pgb$run" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
su -c "DROP SCHEMA IF EXISTS pgb$run CASCADE; CREATE SCHEMA pgb$run; GRANT ALL ON SCHEMA pgb$run TO $PGUSER"
{ echo "SET search_path = pgb$run;"; python3 "$SRC/bench/gen_orders.py" --postgres --ddl-only; } > "$tmp/ddl.sql"
su -f "$tmp/ddl.sql" >/dev/null
su -c "CREATE PUBLICATION pgb$run FOR TABLE pgb$run.orders" >/dev/null
su -c "SELECT pg_create_logical_replication_slot('pgb${run}a', 'pgoutput')" >/dev/null
{ echo "SET search_path = pgb$run;"; python3 "$SRC/bench/gen_orders.py" "$TXNS" --postgres --no-ddl; } > "$tmp/w.sql"
echo "# generating $((TXNS * 1000)) row changes in PostgreSQL ..."
t0=$(date +%s.%N)
su -f "$tmp/w.sql" >/dev/null
t1=$(date +%s.%N)
end=$(su -At -c "SELECT pg_current_wal_lsn()")
for s in b c; do
    su -c "SELECT pg_copy_logical_replication_slot('pgb${run}a', 'pgb${run}$s')" >/dev/null
done
rows=$((TXNS * 1000))
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "# workload applied in %.1f s\n", b - a }'

m() { # label cmd...: wall user sys rss
    local label=$1; shift
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/t" "$@" >/dev/null 2>"$tmp/err" ||
        { echo "# $label failed:" >&2; tail -5 "$tmp/err" >&2; return 1; }
    cat "$tmp/t"
}
read -r w0 u0 s0 r0 < <(m pg_recvlogical env PGPASSWORD=$PG_SUPERPASSWORD pg_recvlogical -h "$PGHOST" -p "$PGPORT" \
    -U "$PG_SUPERUSER" -d "$PGDATABASE" -S "pgb${run}b" --start -E "$end" -f /dev/null \
    -o proto_version=1 -o publication_names=pgb$run)
dsn="host=$PGHOST port=$PGPORT user=$PG_SUPERUSER password=$PG_SUPERPASSWORD dbname=$PGDATABASE"
read -r w1 u1 s1 r1 < <(m ours-stdout "$BUILD/autoglm-cdc" --source postgres --postgres-dsn "$dsn" \
    -X postgres.slot=pgb${run}c -X postgres.publication=pgb$run -X postgres.tables=pgb$run.orders \
    --sink stdout --idle-exit 1500 --pipeline pgbc --state-dir "$tmp/s1" -q)
read -r w2 u2 s2 r2 < <(m ours-kafka "$BUILD/autoglm-cdc" --source postgres --postgres-dsn "$dsn" \
    -X postgres.slot=pgb${run}a -X postgres.publication=pgb$run -X postgres.tables=pgb$run.orders \
    --sink kafka --kafka-brokers "$KAFKA_BOOTSTRAP" --topic "pgb$run.{table}" \
    --idle-exit 1500 --pipeline pgba --state-dir "$tmp/s2" -q)
got=$(kcat -b "$KAFKA_BOOTSTRAP" -C -t "pgb$run.orders" -o beginning -e -q -f '.\n' | wc -l)
awk -v r="$rows" -v w0="$w0" -v u0="$u0" -v s0="$s0" -v w1="$w1" -v u1="$u1" -v s1="$s1" -v r1="$r1" \
    -v w2="$w2" -v u2="$u2" -v s2="$s2" -v r2="$r2" -v g="$got" 'BEGIN {
  w1 -= 1.5; w2 -= 1.5   # --idle-exit wait
  printf "PostgreSQL catch-up of %d row changes through pgoutput:\n", r
  printf "  pg_recvlogical (pgoutput) -> /dev/null : %8.0f rows/s  cpu %.2f s\n", r / w0, u0 + s0
  printf "  autoglm-cdc -> /dev/null (envelopes)   : %8.0f rows/s  cpu %.2f s  peak RSS %.1f MB  (%.2fx)\n", r / w1, u1 + s1, r1 / 1024, w0 / w1
  printf "  autoglm-cdc -> Kafka (zstd, acks=all)  : %8.0f rows/s  cpu %.2f s  peak RSS %.1f MB  (%.2fx)  %d messages\n", r / w2, u2 + s2, r2 / 1024, w0 / w2, g
  printf "  targets: >= 0.9x pg_recvlogical, <= 64 MB RSS\n" }'
