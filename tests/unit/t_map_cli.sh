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
# a Debezium PostgreSQL event: the table's schema is source.schema, not
# source.db (Debezium's database name)
printf '%s\n' '{"before":null,"after":{"id":10,"customer_ref":1,"account_name":"Ann Lee GmbH","balance":"-12.345","credit_limit":"7500","updated_at":"2024-04-01T08:00:00.5Z"},"source":{"version":"1","connector":"postgresql","name":"erp","ts_ms":1,"snapshot":"false","db":"","sequence":null,"ts_us":1,"ts_ns":1,"schema":"public","table":"accounts","txId":1,"lsn":1,"xmin":null},"transaction":null,"op":"c","ts_ms":1,"ts_us":1,"ts_ns":1}' > "$T/dbz.jsonl"
check "debezium PostgreSQL event" 0 'upsert customer_wide customer_id="1" | name="Ann Lee GmbH"' "$BIN" mapping test "$EX" "$T/dbz.jsonl"
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
# --- hostile inputs (issue 13) ------------------------------------------------
# generated mapping files: one text field t and one numeric field v of w
gen_map() { # FILE EXPR-FOR-v
    python3 - "$1" "$2" <<'PY'
import sys
open(sys.argv[1], "w").write("""version: 1
sources: {s: {}}
targets:
  w:
    table: public.w
    key: id
    fields: {id: bigint, v: {type: text, owner: s}, t: {type: text, owner: s}}
mappings:
  - name: m
    source: s
    table: d.t
    target: w
    key: {id: id}
    fields:
      v: %s
      t: t
""" % __import__("json").dumps(sys.argv[2]))
PY
}
python3 - "$T/env.jsonl" <<'PY'
import json, sys
env = {"application_id": "s", "timestamp": "x", "version": 1,
       "payload": {"op": "c", "key": {"id": 1}, "before": None,
                   "after": {"id": 1, "a": 2, "c": "x", "t": "ab\u0000cd\u0000"}},
       "source": {"connector": "mariadb", "server_id": 1, "db": "d", "table": "t",
                  "file": "f.000001", "pos": 4, "row": 0, "ts_ms": 1000}}
open(sys.argv[1], "w").write(json.dumps(env) + "\n")
PY
# chains of 5,000 terms: validate, mapping test and run refuse them alike
for op in '+' '||' 'and' 'or'; do
    case $op in
    '+') term=a ;; '||') term=c ;; *) term='a = 2' ;;
    esac
    expr=$(python3 -c 'import sys; print((" %s " % sys.argv[1]).join([sys.argv[2]] * 5000))' "$op" "$term")
    gen_map "$T/chain.yaml" "$expr"
    msg="has too many operators (the limit is 1000)"
    check "5000-term $op chain: validate" 78 "$msg" "$BIN" validate "$T/chain.yaml"
    check "5000-term $op chain: mapping test" 78 "$msg" "$BIN" mapping test "$T/chain.yaml" "$T/env.jsonl"
    check "5000-term $op chain: run" 78 "$msg" "$BIN" run --source mysql \
        --mysql-dsn mysql://u:p@127.0.0.1:1 --sink postgres -X postgres_sink.dsn="host=127.0.0.1 port=1" \
        --mapping "$T/chain.yaml" --state-dir "$T/state"
done
# at the limit: 1,000 operators evaluate (1001 * a with a = 2)
expr=$(python3 -c 'print(" + ".join(["a"] * 1001))')
gen_map "$T/chain.yaml" "$expr"
check "1001-term + chain evaluates" 0 'v="2002"' "$BIN" mapping test "$T/chain.yaml" "$T/env.jsonl"
expr=$(python3 -c 'print(" and ".join(["a = 2"] * 500) + " or false")')
gen_map "$T/chain.yaml" "$expr"
check "1000-operator and/or chain evaluates" 0 'v="true"' "$BIN" mapping test "$T/chain.yaml" "$T/env.jsonl"
# numeric literals: exact or refused, never rounded
gen_map "$T/lit.yaml" "1$(printf '0%.0s' $(seq 70)) + a"
check "70-digit literal is refused" 78 "number cannot be held exactly" "$BIN" validate "$T/lit.yaml"
gen_map "$T/lit.yaml" "123456789012345678901234567890123456 + a"
check "36-digit literal is exact" 0 'v="123456789012345678901234567890123458"' \
    "$BIN" mapping test "$T/lit.yaml" "$T/env.jsonl"
# text read back from JSON keeps its NULs
gen_map "$T/nul.yaml" "length(t)"
check "NUL inside text: length" 0 'v="6"' "$BIN" mapping test "$T/nul.yaml" "$T/env.jsonl"
check "NUL inside text: value" 0 't="ab\u0000cd\u0000"' "$BIN" mapping test "$T/nul.yaml" "$T/env.jsonl"
# loading is near-linear: 100,000 fields take at most 30x the time of
# 10,000 (quadratic: 100x; the old loader needed minutes)
python3 - "$T" <<'PY'
import sys
for n in (10000, 100000):
    with open("%s/f%d.yaml" % (sys.argv[1], n), "w") as f:
        f.write("sources: {s: {}}\ntargets:\n  w:\n    table: public.w\n    key: id\n    fields:\n      id: bigint\n")
        f.writelines("      f%d: {type: text, owner: s}\n" % i for i in range(n))
        f.write("mappings:\n  - name: m\n    source: s\n    table: d.t\n    target: w\n    key: {id: id}\n    fields:\n")
        f.writelines("      f%d: c%d\n" % (i, i) for i in range(n))
PY
# field groups need the PostgreSQL wide sink: the MySQL wide sink refuses
# them at start and `validate` with mysql_sink.dsn, before any connection
cat > "$T/groups.yaml" <<'Y'
sources: {shop: {}}
targets:
  customer_last:
    key: customer_id
    fields:
      customer_id: bigint
      last_order_id: {type: bigint, owner: shop, rule: ordered, group: last_order}
      last_order_amount: {type: 'numeric(12,2)', owner: shop, rule: ordered, group: last_order}
mappings:
  - {source: shop, table: shop.orders, target: customer_last, key: {customer_id: customer_id},
     order_by: created_at, fields: {last_order_id: id, last_order_amount: amount}}
Y
check "mysql sink refuses field groups at start" 78 "mysql sink: target 'customer_last' has field group 'last_order'" \
    "$BIN" run --source mysql --mysql-dsn mysql://u:p@127.0.0.1:1 --sink mysql \
    -X mysql_sink.dsn=mysql://u:p@127.0.0.1:1/x --mapping "$T/groups.yaml" --state-dir "$T/state"
check "mysql sink refusal names the remedy" 78 "hint: write the target with the PostgreSQL wide sink" \
    "$BIN" run --source mysql --mysql-dsn mysql://u:p@127.0.0.1:1 --sink mysql \
    -X mysql_sink.dsn=mysql://u:p@127.0.0.1:1/x --mapping "$T/groups.yaml" --state-dir "$T/state"
printf 'application_id: shop\nmysql_sink:\n  dsn: mysql://u:p@127.0.0.1:1/x\nmapping:\n  files: %s\n' \
    "$T/groups.yaml" > "$T/groups-pipe.yaml"
check "validate refuses field groups for the MySQL sink" 78 "has field group 'last_order', which the MySQL wide sink (mysql_sink.dsn) does not support" \
    "$BIN" validate -c "$T/groups-pipe.yaml"
check "validate: field groups for PostgreSQL load" 0 "ok: 1 mapping onto 1 target" "$BIN" validate "$T/groups.yaml"
times=$(python3 - "$BIN" "$T" <<'PY'
import subprocess, sys, time
best = {}
for n in (10000, 100000):
    for _ in range(3):
        t0 = time.perf_counter()
        r = subprocess.run([sys.argv[1], "validate", "%s/f%d.yaml" % (sys.argv[2], n)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        dt = time.perf_counter() - t0
        if r.returncode:
            print("fail", n, r.returncode); sys.exit()
        best[n] = min(best.get(n, dt), dt)
print("%.3f %.3f %.1f" % (best[10000], best[100000], best[100000] / best[10000]))
PY
)
echo "# validate 10k / 100k fields: $times (s, s, ratio)"
case $times in
fail*) echo "FAIL 100k fields: $times"; fails=$((fails + 1)) ;;
*) if python3 -c 'import sys; a, b, r = map(float, sys.argv[1:]); sys.exit(0 if r < 30 and b < 20 else 1)' $times; then
       echo "ok 100,000 fields load near-linearly"
   else echo "FAIL 100,000 fields: $times"; fails=$((fails + 1)); fi ;;
esac
exit $fails
