#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# decode_bench.sh - decode a 1M-row-change MariaDB binlog into envelopes
# (-> /dev/null) and time mariadb-binlog -v on the same files in the same
# run.  Prints rows/s, CPU seconds, peak RSS and the ratio.
# Needs the MariaDB of tests/services.sh (started if missing).
set -eu
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-$SRC/build}
TXNS=${BENCH_TXNS:-1000}
"$SRC/tests/services.sh" up mariadb >/dev/null
. "$SRC/tests/services.env"
my() { mariadb -uroot -p"$MYSQL_ROOT_PASSWORD" -h127.0.0.1 -P"$MYSQL_PORT" "$@"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

my -e "CREATE DATABASE IF NOT EXISTS bench"
my -N -e "FLUSH BINARY LOGS; SHOW BINARY LOGS" | tail -1 | cut -f1 > "$tmp/first"
echo "# generating $((TXNS * 1000)) row changes in MariaDB ..."
t0=$(date +%s.%N)
python3 "$SRC/bench/gen_orders.py" "$TXNS" | my bench
t1=$(date +%s.%N)
my -N -e "FLUSH BINARY LOGS; SHOW BINARY LOGS" > "$tmp/logs"
first=$(cat "$tmp/first")
files=$(awk -v f="$first" '$1 >= f {print $1}' "$tmp/logs" | sed '$d' |
        sed "s|^|$MYSQL_DATADIR/|")
size=$(du -cb $files | tail -1 | cut -f1)
rows=$((TXNS * 1000))
awk -v a="$t0" -v b="$t1" -v s="$size" -v n="$(echo $files | wc -w)" \
    'BEGIN { printf "# workload applied in %.1f s; binlog %d MB in %d files\n", b - a, s / 1e6, n }'

measure() { # label cmd... ; prints "label wall user sys maxrss_kb"
    local label=$1; shift
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$@" > /dev/null 2>"$tmp/err" ||
        { echo "# $label failed:"; head -5 "$tmp/err"; return 1; }
    read -r wall user sys rss < "$tmp/time"
    echo "$label $wall $user $sys $rss"
}
# warm the page cache and let the server finish its background flushing
# (our decode uses both cores, so a busy server would hurt it more); then
# alternate the two tools and keep the best of 3 each
cat $files > /dev/null
sleep 5
best() { sort -k2 -n | head -1; }
: > "$tmp/o"; : > "$tmp/m"
for i in 1 2 3; do
    measure ours "$BUILD/autoglm-cdc" decode $files >> "$tmp/o"
    measure mariadb-binlog mariadb-binlog --base64-output=decode-rows -v $files >> "$tmp/m"
done
best < "$tmp/o" > "$tmp/ours"
best < "$tmp/m" > "$tmp/theirs"
read -r _ w1 u1 s1 r1 < "$tmp/ours"
read -r _ w2 u2 s2 r2 < "$tmp/theirs"
# both must have seen every row
n1=$("$BUILD/autoglm-cdc" decode $files | wc -l)
n2=$(mariadb-binlog --base64-output=decode-rows -v $files | grep -c '^### \(INSERT\|UPDATE\|DELETE\)')
awk -v r="$rows" -v w1="$w1" -v u1="$u1" -v s1="$s1" -v r1="$r1" \
    -v w2="$w2" -v u2="$u2" -v s2="$s2" -v r2="$r2" -v n1="$n1" -v n2="$n2" 'BEGIN {
  printf "decode %d row changes (best of 3, page cache warm):\n", r
  printf "  autoglm-cdc decode -> /dev/null : %9.0f rows/s  cpu %.2f s  peak RSS %.1f MB  (%d envelopes)\n", r / w1, u1 + s1, r1 / 1024, n1
  printf "  mariadb-binlog -v  -> /dev/null : %9.0f rows/s  cpu %.2f s  peak RSS %.1f MB  (%d rows)\n", r / w2, u2 + s2, r2 / 1024, n2
  printf "  ratio: %.2fx mariadb-binlog rows/s (target >= 2x), RSS %.1f MB (target <= 32 MB)\n", w2 / w1, r1 / 1024
}'
my -e "DROP DATABASE bench"
