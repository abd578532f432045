#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/bench_wide_shapes.sh - the fusion shapes of a PostgreSQL wide table
# (docs/MAPPINGS.md: Field groups, Aggregates, Confidence, vote and
# weighted mean) against the plain wide-table path, in the same run and
# on the same generated changes (map_pg_bench: inserts of CHANGES/4
# crm.customers rows, then updates of random ones).  Each shape is
# reported as a ratio to a plain run made just before it:
#   plain      mappings/examples/customer_wide.yaml (9 fields per change)
#   groups     bench/map_pg_group.yaml
#   aggregates bench/map_pg_agg.yaml (each row a child of id % 25000;
#              count, sum, min, max, count_distinct per parent)
#   vote       bench/map_pg_vote.yaml
# Needs the test PostgreSQL.
# Usage: BUILD=builddir SRC=srcdir bench/bench_wide_shapes.sh [CHANGES] [ROWS_PER_TXN]
set -u
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-$SRC/build}
ENVF=${CDC_SVC_ENV:-$SRC/tests/services.env}
[ -f "$ENVF" ] || { echo "bench_wide_shapes: no $ENVF (tests/services.sh up postgres)"; exit 0; }
. "$ENVF"
[ -x "$BUILD/bench/map_pg_bench" ] || { echo "bench_wide_shapes: build it: make -C $BUILD bench/map_pg_bench"; exit 1; }
CDC_PW=$PGPASSWORD
export PGPASSWORD=$PG_SUPERPASSWORD
N=${1:-400000}
PER=${2:-10}
rate() { # mapping file -> changes/s, into a fresh database
    local db=mapshapebench_$$ out
    psql -X -q -h "$PGHOST" -p "$PGPORT" -U "$PG_SUPERUSER" -d postgres -c "CREATE DATABASE $db OWNER $PGUSER" || return 1
    out=$(BENCH_NO_BASELINE=1 "$BUILD/bench/map_pg_bench" \
        "host=$PGHOST port=$PGPORT user=$PGUSER password=$CDC_PW dbname=$db" "$1" "$N" "$PER" 2>/dev/null)
    psql -X -q -h "$PGHOST" -p "$PGPORT" -U "$PG_SUPERUSER" -d postgres -c "DROP DATABASE $db"
    echo "$out" | sed -n 's/.*= \([0-9]*\) changes\/s.*/\1/p'
}
# The machine may be shared: each shape is measured right after a plain
# run of its own, and its ratio is to that run, so a change of load
# between shapes does not enter a ratio.
echo "bench_wide_shapes: $N changes, $PER per transaction; each shape against the plain wide path run just before it"
rc=0
for shape in "field groups:map_pg_group" "aggregates:map_pg_agg" "vote:map_pg_vote"; do
    plain=$(rate "$SRC/mappings/examples/customer_wide.yaml")
    if [ -z "$plain" ]; then
        echo "bench_wide_shapes: the plain run failed"
        rc=1
        continue
    fi
    r=$(rate "$SRC/bench/${shape#*:}.yaml")
    if [ -z "$r" ]; then
        echo "bench_wide_shapes: the ${shape%%:*} run failed"
        rc=1
        continue
    fi
    awk -v p="$plain" -v a="$r" -v s="${shape%%:*}" 'BEGIN { printf "  %-12s %d changes/s = %.2fx the plain path (%d changes/s)\n", s, a, a / p, p }'
done
exit $rc
