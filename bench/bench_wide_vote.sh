#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/bench_wide_vote.sh - vote, weighted_mean and weighted with
# confidence into a PostgreSQL wide table (docs/MAPPINGS.md, Confidence,
# vote and weighted mean) against the plain wide-table path, in the same
# run and on the same generated changes (map_pg_bench: inserts of
# CHANGES/4 crm.customers rows, then updates of random ones):
#   plain     mappings/examples/customer_wide.yaml (9 fields per change)
#   per-source bench/map_pg_vote.yaml (the same fields; email, credit_limit
#             and segment kept per source in customer_wide_votes)
# Prints both rates and their ratio.  Needs the test PostgreSQL.
# Usage: BUILD=builddir SRC=srcdir bench/bench_wide_vote.sh [CHANGES] [ROWS_PER_TXN]
set -u
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-$SRC/build}
ENVF=${CDC_SVC_ENV:-$SRC/tests/services.env}
[ -f "$ENVF" ] || { echo "bench_wide_vote: no $ENVF (tests/services.sh up postgres)"; exit 0; }
. "$ENVF"
[ -x "$BUILD/bench/map_pg_bench" ] || { echo "bench_wide_vote: build it: make -C $BUILD bench/map_pg_bench"; exit 1; }
CDC_PW=$PGPASSWORD
export PGPASSWORD=$PG_SUPERPASSWORD
N=${1:-400000}
PER=${2:-10}
rate() { # mapping file -> changes/s
    local db=mapvotebench_$$ out
    psql -X -q -h "$PGHOST" -p "$PGPORT" -U "$PG_SUPERUSER" -d postgres -c "CREATE DATABASE $db OWNER $PGUSER" || return 1
    out=$(BENCH_NO_BASELINE=1 "$BUILD/bench/map_pg_bench" \
        "host=$PGHOST port=$PGPORT user=$PGUSER password=$CDC_PW dbname=$db" "$1" "$N" "$PER" 2>/dev/null)
    psql -X -q -h "$PGHOST" -p "$PGPORT" -U "$PG_SUPERUSER" -d postgres -c "DROP DATABASE $db"
    echo "$out" | sed -n 's/.*= \([0-9]*\) changes\/s.*/\1/p'
}
plain=$(rate "$SRC/mappings/examples/customer_wide.yaml")
vote=$(rate "$SRC/bench/map_pg_vote.yaml")
[ -n "$plain" ] && [ -n "$vote" ] || { echo "bench_wide_vote: a run failed"; exit 1; }
awk -v p="$plain" -v a="$vote" -v n="$N" 'BEGIN { printf "bench_wide_vote: %d changes: plain wide path %d changes/s, vote %d changes/s = %.2fx\n", n, p, a, a / p }'
