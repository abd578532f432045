#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Golden test: every row value that autoglm-cdc decodes from the MariaDB
# 10.11 fixtures equals what mariadb-binlog -vv printed in the .decoded.txt
# beside each file (tests/golden/check_decoded.py does the comparing).
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
bin="$top_builddir/autoglm-cdc"
dir="${CDC_FIXTURES:-${CDC_FIXTURES_DEFAULT:-$top_srcdir/../shared/fixtures}}/binlog/mariadb-10.11"

if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 not found"
    exit 77
fi
if [ ! -d "$dir" ] && [ -n "${CDC_FIXTURES:-}" ]; then
    echo "FAIL: CDC_FIXTURES=$CDC_FIXTURES has no binlog/mariadb-10.11"
    exit 1
fi
if [ ! -d "$dir" ]; then
    echo "SKIP: fixtures not found in $dir (set CDC_FIXTURES)"
    exit 77
fi
if [ ! -x "$bin" ]; then
    echo "FAIL: $bin not built"
    exit 1
fi
# 5,630 values in the 7 files today: a floor well above what one file
# alone gives, so a listing that stopped parsing cannot pass
exec python3 "$top_srcdir/tests/golden/check_decoded.py" --bin "$bin" --min-values 5000 \
    "$dir"/*.binlog
