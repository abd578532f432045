#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/run.sh - everything `make bench` measures.  Ratios are measured
# against a baseline run on the same machine in the same run.
set -u
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-$SRC/build}
export SRC BUILD
echo "== envelope writer (1M envelopes)"
"$BUILD/bench/envelope_bench" 1000000
echo "== binlog decode vs mariadb-binlog"
bash "$SRC/bench/decode_bench.sh"
echo "== mapping engine -> PostgreSQL wide table (1M changes)"
bash "$SRC/bench/map_pg_bench.sh"
for b in "$SRC"/bench/bench_*.sh; do
    [ -e "$b" ] || continue
    echo "== $(basename "$b" .sh)"
    bash "$b"
done
