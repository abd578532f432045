#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The main live paths under valgrind: MariaDB -> mysql source -> pipeline ->
# Kafka sink (+ the HTTP endpoint), with inserts, updates, deletes and a
# JSON column; then the same changes through a mapping into a PostgreSQL
# wide table (row deletes as tombstones).  No definite or indirect leaks,
# no invalid accesses, and the changes arrive.
. "$(dirname "$0")/lib.sh"
need mariadb kafka postgres cdc
need valgrind
nm "$CDC" 2>/dev/null | grep -q __asan_init && skip "ASan build"
db=vg_$$
my_fresh_db "$db"
my_sql "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), j JSON, d DECIMAL(8,2))" "$db"
read -r f p < <(my_binlog_pos)
my_sql "INSERT INTO t VALUES (1,'a','{\"x\":1}',1.5),(2,'b',NULL,-2); UPDATE t SET v='c' WHERE id=1; DELETE FROM t WHERE id=2" "$db"
timeout 300 valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --error-exitcode=99 "$CDC" --source mysql --mysql-dsn "$(my_dsn)" --from "$f:$p" \
    --include "$db.*" --sink kafka --kafka-brokers "$KAFKA_BOOTSTRAP" --topic "vg$$.{table}" \
    --idle-exit 4000 --state-dir "$T/state" --http 127.0.0.1:0 -q >"$T/vg.out" 2>&1
rc=$?
[ $rc = 99 ] && { cat "$T/vg.out" | head -40; fail "valgrind found errors or leaks"; }
[ $rc = 0 ] || { tail -20 "$T/vg.out"; fail "autoglm-cdc under valgrind exited $rc"; }
n=$(kafka_count "vg$$.t")
[ "$n" = 4 ] || fail "expected 4 messages in Kafka, got $n"

# the same changes through the mapping engine into a PostgreSQL wide table
pdb=vgw_$$
pg_super "DROP DATABASE IF EXISTS $pdb WITH (FORCE)" postgres
pg_super "CREATE DATABASE $pdb OWNER $PGUSER" postgres
cat > "$T/map.yaml" <<YAML
sources:
  crm: {priority: 1}
targets:
  w:
    table: public.w
    key: id
    fields:
      id: bigint
      v: {type: text, owners: [crm]}
      d: {type: 'numeric(8,2)', owners: [crm]}
      upper_v: {type: text, owners: [crm]}
mappings:
  - source: crm
    table: $db.t
    target: w
    on_delete: delete
    key: {id: id}
    fields:
      v: v
      d: d
      upper_v: "upper(v)"
YAML
timeout 300 valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --error-exitcode=99 "$CDC" --source mysql --mysql-dsn "$(my_dsn)" --from "$f:$p" \
    --include "$db.*" --sink postgres --application-id crm --mapping "$T/map.yaml" \
    -X postgres_sink.dsn="host=$PGHOST port=$PGPORT user=$PGUSER password=$PGPASSWORD dbname=$pdb" \
    -X postgres_sink.origin= --idle-exit 4000 --state-dir "$T/state2" -q >"$T/vgw.out" 2>&1
rc=$?
[ $rc = 99 ] && { head -40 "$T/vgw.out"; fail "valgrind found errors or leaks (PostgreSQL wide sink)"; }
[ $rc = 0 ] || { tail -20 "$T/vgw.out"; fail "autoglm-cdc (wide sink) under valgrind exited $rc"; }
rows=$(pg_sql "SELECT id, v, d, upper_v FROM w ORDER BY id" "$pdb" | tr '\n' ' ')
tomb=$(pg_sql "SELECT id FROM w_tombstones" "$pdb")
pg_super "DROP DATABASE $pdb WITH (FORCE)" postgres
[ "$rows" = "1|c|1.50|C " ] || fail "wide table holds '$rows', expected '1|c|1.50|C '"
[ "$tomb" = 2 ] || fail "tombstones hold '$tomb', expected key 2"
my_sql "DROP DATABASE $db"
echo "PASS: live MariaDB -> Kafka and -> PostgreSQL wide table paths clean under valgrind"
