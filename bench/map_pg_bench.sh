#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/map_pg_bench.sh - 1M changes through the mapping engine into a
# PostgreSQL wide table (issue 19 target: >= 50k changes/s on this machine).
# Needs the test PostgreSQL (tests/services.sh up postgres).  Uses a
# scratch database that it drops afterwards.
# Usage: BUILD=builddir SRC=srcdir bench/map_pg_bench.sh [CHANGES] [ROWS_PER_TXN]
set -u
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-$SRC/build}
ENVF=${CDC_SVC_ENV:-$SRC/tests/services.env}
[ -f "$ENVF" ] || { echo "map_pg_bench: no $ENVF (tests/services.sh up postgres)"; exit 0; }
. "$ENVF"
[ -x "$BUILD/bench/map_pg_bench" ] || { echo "map_pg_bench: build it: make -C $BUILD bench/map_pg_bench"; exit 1; }
DB=mapbench_$$
CDC_PW=$PGPASSWORD
export PGPASSWORD=$PG_SUPERPASSWORD
psql -X -q -h "$PGHOST" -p "$PGPORT" -U "$PG_SUPERUSER" -d postgres -c "CREATE DATABASE $DB OWNER $PGUSER" || exit 1
"$BUILD/bench/map_pg_bench" "host=$PGHOST port=$PGPORT user=$PGUSER password=$CDC_PW dbname=$DB" \
    "$SRC/mappings/examples/customer_wide.yaml" "${1:-1000000}" "${2:-10}" 2>/dev/null
rc=$?
psql -X -q -h "$PGHOST" -p "$PGPORT" -U "$PG_SUPERUSER" -d postgres -c "DROP DATABASE $DB"
exit $rc
