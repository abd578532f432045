#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# check_deb.sh DIR VERSION - check the package `make deb` built in DIR:
# lintian reports no errors; dpkg -c lists the binary, the man page, both
# systemd units, the copyright, docs and examples and /etc/autoglm-cdc;
# the control file depends on tzdata; unpacked into a scratch root, the
# units start the packaged binary, which runs and prints VERSION.
# Prints one line per check; exit 1 if any failed.
set -u
dir=$1 version=$2
deb=$(ls "$dir"/autoglm-cdc_"$version"_*.deb 2>/dev/null | head -1)
changes=$(ls "$dir"/autoglm-cdc_"$version"_*.changes 2>/dev/null | head -1)
fail=0
ok() { echo "deb: ok - $1"; }
bad() { echo "deb: FAIL - $1"; fail=1; }
[ -n "$deb" ] || { echo "deb: FAIL - no autoglm-cdc_${version}_*.deb in $dir"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if command -v lintian >/dev/null 2>&1; then
    lintian --tag-display-limit 0 "${changes:-$deb}" >"$tmp/lint" 2>&1
    errors=$(grep -c '^E: ' "$tmp/lint")
    warnings=$(grep -c '^W: ' "$tmp/lint")
    [ "$errors" = 0 ] && ok "lintian: 0 errors, $warnings warnings" \
        || { bad "lintian: $errors errors"; grep '^E: ' "$tmp/lint"; }
    grep '^W: ' "$tmp/lint" | sed 's/^/deb:   /'
else
    bad "lintian is not installed (scripts/deps.sh installs it)"
fi

dpkg -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|' > "$tmp/list"
for f in /usr/bin/autoglm-cdc /usr/share/man/man1/autoglm-cdc.1.gz \
         /lib/systemd/system/autoglm-cdc.service /lib/systemd/system/autoglm-cdc@.service \
         /usr/share/doc/autoglm-cdc/copyright /usr/share/doc/autoglm-cdc/OPERATIONS.md \
         /usr/share/doc/autoglm-cdc/examples/customer_wide.yaml \
         /usr/share/doc/autoglm-cdc/examples/pipelines/crm.yaml /etc/autoglm-cdc/; do
    grep -qx -- "$f" "$tmp/list" || grep -qx -- "$f.gz" "$tmp/list" || miss="${miss:-} $f"
done
[ -z "${miss:-}" ] && ok "dpkg -c: binary, man page, units, copyright, docs, examples, /etc/autoglm-cdc ($(wc -l <"$tmp/list") entries)" \
    || bad "dpkg -c: missing$miss"
grep -q 'LICENSE' "$tmp/list" && bad "LICENSE shipped besides debian/copyright" || true

dpkg-deb -f "$deb" Depends > "$tmp/dep"
grep -qw tzdata "$tmp/dep" && grep -q 'libmariadb' "$tmp/dep" \
    && ok "Depends: tzdata and the shared libraries ($(tr -d '\n' <"$tmp/dep" | cut -c1-80)...)" \
    || bad "Depends: $(cat "$tmp/dep")"

dpkg-deb -x "$deb" "$tmp/root"
for u in autoglm-cdc.service autoglm-cdc@.service; do
    grep -q '^ExecStart=/usr/bin/autoglm-cdc run ' "$tmp/root/lib/systemd/system/$u" \
        && ok "$u starts /usr/bin/autoglm-cdc" || bad "$u: ExecStart is not /usr/bin/autoglm-cdc"
done
got=$("$tmp/root/usr/bin/autoglm-cdc" --version 2>&1)
[ "$got" = "autoglm-cdc $version" ] && ok "the packaged binary runs: $got" \
    || bad "the packaged binary: '$got', want 'autoglm-cdc $version'"
exit $fail
