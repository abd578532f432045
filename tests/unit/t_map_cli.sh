#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_map_cli.sh - `autoglm-cdc mapping test` and `validate FILE` without
# servers: exit codes and messages (make check).
set -u
BIN=${top_builddir:-.}/autoglm-cdc
SRC=${top_srcdir:-.}
[ -x "$BIN" ] || { echo "no $BIN"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
check() { # name expected-rc grep-pattern cmd...
    local name=$1 want=$2 pat=$3; shift 3
    "$@" > "$T/out" 2>&1
    local rc=$?
    if [ "$rc" != "$want" ] || ! grep -qF -- "$pat" "$T/out"; then
        echo "FAIL $name: rc $rc (want $want), output:"; sed 's/^/  /' "$T/out" | head -20
        fails=$((fails + 1))
    else
        echo "ok $name"
    fi
}
EX=$SRC/mappings/examples/customer_wide.yaml
IN=$SRC/tests/data/mappings/example/in.jsonl
check "mapping test prints rows" 0 '-- rows' "$BIN" mapping test "$EX" "$IN"
check "mapping test reads stdin" 0 'customer_wide customer_id="3"' sh -c "'$BIN' mapping test '$EX' < '$IN'"
check "validate a file alone" 0 'ok: 4 mappings onto 1 target' "$BIN" validate "$EX"
sed 's/      last_ticket_subject: subject/      last_ticket_subjet: subject/' "$EX" > "$T/bad.yaml"
check "unknown field: position and suggestion" 78 "bad.yaml:94:7: unknown field 'last_ticket_subjet'" "$BIN" validate "$T/bad.yaml"
check "unknown field: hint" 78 "did you mean 'last_ticket_subject'?" "$BIN" mapping test "$T/bad.yaml" "$IN"
printf 'targets: {w: {key: k, fields: {k: int}}\n' > "$T/syntax.yaml"
check "YAML syntax error" 78 "syntax.yaml:2:1: YAML syntax error" "$BIN" validate "$T/syntax.yaml"
echo '{"not": "an envelope"}' > "$T/bad.jsonl"
check "not an envelope" 65 "bad.jsonl:1: not an autoglm or debezium envelope" "$BIN" mapping test "$EX" "$T/bad.jsonl"
sed 's/"credit_limit":"7500"/"credit_limit":"lots"/' "$IN" > "$T/badval.jsonl"
check "value that does not fit" 65 "value 'lots' does not fit field 'credit_limit' (numeric(12,2))" "$BIN" mapping test "$EX" "$T/badval.jsonl"
check "missing mapping file" 78 "no-such.yaml" "$BIN" mapping test "$T/no-such.yaml" "$IN"
check "no arguments" 2 "mapping test needs a mapping" "$BIN" mapping test
# two-way helpers (no servers: they read the pipeline and mapping files)
TW=$SRC/mappings/examples/twoway-forward.yaml
check "mapping triggers: PostgreSQL" 0 'CREATE TRIGGER' sh -c "cd '$SRC' && '$BIN' mapping triggers -c '$TW' postgres"
check "mapping triggers: MariaDB" 0 'DELIMITER //' sh -c "cd '$SRC' && '$BIN' mapping triggers -c '$TW' mysql"
check "mapping triggers: unknown engine" 2 "unknown engine (postgres, mysql) 'oracle'" \
    sh -c "cd '$SRC' && '$BIN' mapping triggers -c '$TW' oracle"
check "mapping reverse" 0 "- name: forward_reverse" \
    sh -c "cd '$SRC' && '$BIN' mapping reverse -c '$TW' forward platform crm_customers"
# a sink setting out of range stops before any connection (port 1: nothing)
check "postgres_sink.fillfactor out of range" 78 "postgres_sink.fillfactor = 5 is out of range" \
    "$BIN" run --source mysql --mysql-dsn mysql://u:p@127.0.0.1:1 --sink postgres \
    -X postgres_sink.dsn="host=127.0.0.1 port=1" -X postgres_sink.fillfactor=5 \
    --mapping "$EX" --state-dir "$T/state"
# tombstone retention: a bad duration stops before any connection
check "postgres_sink.tombstone_keep not a duration" 78 'hint: a number with a unit s, m, h, d or w, e.g. 30d or 12h' \
    "$BIN" run --source mysql --mysql-dsn mysql://u:p@127.0.0.1:1 --sink postgres \
    -X postgres_sink.dsn="host=127.0.0.1 port=1" -X postgres_sink.tombstone_keep=30x \
    --mapping "$EX" --state-dir "$T/state"
check "mysql_sink.tombstone_keep not a duration" 78 'mysql_sink.tombstone_keep: "-1d" is not a duration' \
    "$BIN" run --source mysql --mysql-dsn mysql://u:p@127.0.0.1:1 --sink mysql \
    -X mysql_sink.dsn=mysql://u:p@127.0.0.1:1/x -X mysql_sink.tombstone_keep=-1d \
    --mapping "$EX" --state-dir "$T/state"
check "tombstone_purge_every of 0" 78 'postgres_sink.tombstone_purge_every: "0" is not a duration of at least 1s' \
    "$BIN" run --source mysql --mysql-dsn mysql://u:p@127.0.0.1:1 --sink postgres \
    -X postgres_sink.dsn="host=127.0.0.1 port=1" -X postgres_sink.tombstone_purge_every=0 \
    --mapping "$EX" --state-dir "$T/state"
exit $fails
