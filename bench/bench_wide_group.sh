#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/bench_wide_group.sh - field groups into a PostgreSQL wide table
# (docs/MAPPINGS.md, Field groups) against the plain wide-table path, in
# the same run and on the same generated changes (map_pg_bench: inserts of
# CHANGES/4 crm.customers rows, then updates of random ones):
#   plain   mappings/examples/customer_wide.yaml (9 fields per change)
#   groups  bench/map_pg_group.yaml (each row a child of id % 25000; one
#           group of three fields per parent, the newest row by created_at)
# Prints both rates and their ratio.  Needs the test PostgreSQL.
# Usage: BUILD=builddir SRC=srcdir bench/bench_wide_group.sh [CHANGES] [ROWS_PER_TXN]
set -u
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-$SRC/build}
ENVF=${CDC_SVC_ENV:-$SRC/tests/services.env}
[ -f "$ENVF" ] || { echo "bench_wide_group: no $ENVF (tests/services.sh up postgres)"; exit 0; }
. "$ENVF"
[ -x "$BUILD/bench/map_pg_bench" ] || { echo "bench_wide_group: build it: make -C $BUILD bench/map_pg_bench"; exit 1; }
CDC_PW=$PGPASSWORD
export PGPASSWORD=$PG_SUPERPASSWORD
N=${1:-400000}
PER=${2:-10}
rate() { # mapping file -> changes/s
    local db=mapgrpbench_$$ out
    psql -X -q -h "$PGHOST" -p "$PGPORT" -U "$PG_SUPERUSER" -d postgres -c "CREATE DATABASE $db OWNER $PGUSER" || return 1
    out=$(BENCH_NO_BASELINE=1 "$BUILD/bench/map_pg_bench" \
        "host=$PGHOST port=$PGPORT user=$PGUSER password=$CDC_PW dbname=$db" "$1" "$N" "$PER" 2>/dev/null)
    psql -X -q -h "$PGHOST" -p "$PGPORT" -U "$PG_SUPERUSER" -d postgres -c "DROP DATABASE $db"
    echo "$out" | sed -n 's/.*= \([0-9]*\) changes\/s.*/\1/p'
}
plain=$(rate "$SRC/mappings/examples/customer_wide.yaml")
grp=$(rate "$SRC/bench/map_pg_group.yaml")
[ -n "$plain" ] && [ -n "$grp" ] || { echo "bench_wide_group: a run failed"; exit 1; }
awk -v p="$plain" -v a="$grp" -v n="$N" 'BEGIN { printf "bench_wide_group: %d changes: plain wide path %d changes/s, field groups %d changes/s = %.2fx\n", n, p, a, a / p }'
