#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# binlog_framing.sh - `autoglm-cdc decode --events` against the .events.txt
# listing of every binlog fixture (offset, type name, size per event; the
# indentation of TRANSACTION_PAYLOAD inner events included).  Files broken
# on purpose must exit 65 (undecodable input) after listing the events
# before the damage.  Exit 0 pass, 77 skip, 1 fail.
set -u
bin="${top_builddir:-.}/autoglm-cdc"
fx="${CDC_FIXTURES:-${CDC_FIXTURES_DEFAULT:-${top_srcdir:-.}/../shared/fixtures}}/binlog"
[ -x "$bin" ] || { echo "FAIL: $bin not built"; exit 1; }
if [ ! -d "$fx" ]; then
    [ -n "${CDC_FIXTURES:-}" ] && { echo "FAIL: CDC_FIXTURES=$CDC_FIXTURES has no binlog/"; exit 1; }
    echo "SKIP: no fixtures at $fx"; exit 77
fi

# name -> the listing line of the event the decoder must stop at
declare -A broken=(
    [binlog_truncated_event.000001]=4
    [binlog_truncated_prev_gtid_event.000001]=120
    [bug40482-bin.000001]=106
    [corrupt-relay-bin.000624]=91204
    [json.binlog.000001]=3750
    [ver_5_1-wl2325_r.001]=549
    [ver_5_1-wl2325_s.001]=411
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 files=0

# listing line -> "depth offset name size"
norm() {
    awk '!/^==/ && $2 != "-1" {
        match($0, /^ */); d = (RLENGTH + length($1) >= 10) ? 1 : 0;
        print d, $1, $2, $3 }'
}

while IFS= read -r listing; do
    f=${listing%.events.txt}
    base=$(basename "$f")
    in=$f
    if [ "${f%.gz}" != "$f" ]; then
        in="$tmp/${base%.gz}"
        gzip -dc "$f" > "$in" || { echo "FAIL: gunzip $f"; fail=1; continue; }
    fi
    "$bin" decode --events "$in" > "$tmp/out" 2> "$tmp/err"
    rc=$?
    norm < "$listing" > "$tmp/want"
    norm < "$tmp/out" > "$tmp/got"
    files=$((files + 1))
    if [ -n "${broken[$base]:-}" ]; then
        off=${broken[$base]}
        if [ $rc -ne 65 ] || ! grep -Eq "offset $off([^0-9]|$)" "$tmp/err"; then
            echo "FAIL: $base: expected exit 65 naming offset $off, got $rc:"
            cat "$tmp/err"
            fail=1
        fi
        # exactly the listed events up to the damaged one (listed at
        # offset $off, the last line), or up to offset $off when the
        # listing has no event there (damage inside the header)
        awk -v off="$off" '$2 + 0 > off + 0 { exit } { print } $2 + 0 == off + 0 && $1 == 0 { exit }' \
            "$tmp/want" > "$tmp/want2"
        mv "$tmp/want2" "$tmp/want"
    elif [ $rc -ne 0 ]; then
        echo "FAIL: $base: exit $rc"; cat "$tmp/err"; fail=1
    fi
    if ! cmp -s "$tmp/want" "$tmp/got"; then
        echo "FAIL: $base: framing differs from the listing"
        diff "$tmp/want" "$tmp/got" | head -10
        fail=1
    fi
done < <(find "$fx" -name '*.events.txt' | sort)

# a file without the magic
"$bin" decode --events "$fx/mysql-binlog-connector-rust/non-binlog" \
    > /dev/null 2> "$tmp/err"
rc=$?
if [ $rc -ne 65 ] || ! grep -q "not a binlog file (bad magic)" "$tmp/err"; then
    echo "FAIL: non-binlog: exit $rc"; cat "$tmp/err"; fail=1
fi

echo "$files files checked"
[ $files -ge 70 ] || { echo "FAIL: only $files listings found"; fail=1; }
exit $fail
