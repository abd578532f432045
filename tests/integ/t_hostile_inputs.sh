#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_hostile_inputs.sh - hostile names and secrets against real servers
# (MariaDB and PostgreSQL from tests/services.env):
#
#  1. backfill --table with quoted names: a MariaDB database and table and
#     a PostgreSQL schema and table whose names hold a space, a dot, a
#     comma and a quote; every row comes out, and a run stopped half-way
#     resumes from its progress file (the names survive it);
#  2. a binary column mapped to a text field: the live run into a
#     PostgreSQL wide table writes the base64 text that `mapping test`
#     prints over the envelopes of the same rows;
#  3. secrets: wrong passwords in every DSN form do not show in the
#     output of a failing run, of `config`, nor after a SIGABRT.
. "$(dirname "$0")/lib.sh"
need mariadb postgres cdc

# --- 1. backfill --table with quoted names ----------------------------------
MYDB='bf hostile.db'
MYTB='order, "items"'
my_sql "DROP DATABASE IF EXISTS \`$MYDB\`; CREATE DATABASE \`$MYDB\`;
        GRANT ALL ON \`$MYDB\`.* TO '$MYSQL_USER'@'%';
        CREATE TABLE \`$MYDB\`.\`$MYTB\` (id INT PRIMARY KEY, v VARCHAR(20));
        CREATE TABLE \`$MYDB\`.plain (id INT PRIMARY KEY)"
N=2500
python3 - "$N" > "$T/load.sql" <<'PY'
import sys
n = int(sys.argv[1])
for s in range(0, n, 500):
    print("INSERT INTO `order, \"items\"` VALUES %s;" %
          ",".join("(%d,'v%d')" % (i, i) for i in range(s, min(n, s + 500))))
print("INSERT INTO plain VALUES (1),(2),(3);")
PY
my_root "$MYDB" < "$T/load.sql" || fail "load"
QUOTED='"bf hostile.db"."order, ""items"""'
BF=("$CDC" backfill --source mysql --mysql-dsn "$(my_dsn)" --state-dir "$T/state"
    --pipeline hostile -X backfill.mode=incremental --sink file)
"${BF[@]}" --table "$QUOTED" --table '`bf hostile.db`.plain' -o "$T/my.jsonl" 2>"$T/my.err" ||
    fail "backfill of quoted names failed: $(tail -5 "$T/my.err")"
got=$(python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
names = sorted(set((r["source"]["db"], r["source"]["table"]) for r in rows))
print(len(rows), names)' "$T/my.jsonl")
want="$((N + 3)) [('bf hostile.db', 'order, \"items\"'), ('bf hostile.db', 'plain')]"
[ "$got" = "$want" ] || fail "backfill wrote $got, want $want"
log "mysql: quoted names backfilled ($got)"

# an unquoted name with a space is refused with the remedy
"${BF[@]}" --table "$MYDB.order items" -o "$T/bad.jsonl" 2>"$T/bad.err"
rc=$?
[ $rc = 2 ] || fail "unquoted name with a space: exit $rc, want 2"
grep -q 'quote a name with a space' "$T/bad.err" || fail "no remedy: $(cat "$T/bad.err")"

# stopped half-way (SIGTERM), resumed: the progress file keeps the name
"${BF[@]}" --table "$QUOTED" -o "$T/r1.jsonl" --chunk-size 100 --max-rows-per-sec 1000 \
    2>"$T/r1.err" &
pid=$!
wait_for 20 "progress file written" test -s "$T/state/hostile.backfill"
wait_for 20 "rows written" test -s "$T/r1.jsonl"
kill -TERM $pid || fail "the backfill was not running when stopped"
wait $pid
rc=$?
[ $rc = 75 ] || fail "SIGTERM: exit $rc, want 75 (interrupted, progress kept)"
grep -q '^table "bf%20hostile.db"."order,%20""items""" 0 ' "$T/state/hostile.backfill" ||
    fail "progress file: $(cat "$T/state/hostile.backfill")"
"${BF[@]}" --table "$QUOTED" -o "$T/r2.jsonl" 2>"$T/r2.err" ||
    fail "resume failed: $(tail -5 "$T/r2.err")"
grep -q "resum" "$T/r2.err" || fail "second run did not resume: $(cat "$T/r2.err")"
ids=$(cat "$T/r1.jsonl" "$T/r2.jsonl" | python3 -c '
import json, sys
print(len({json.loads(l)["payload"]["after"]["id"] for l in sys.stdin}))')
[ "$ids" = "$N" ] || fail "stop + resume gave $ids distinct rows, want $N"
[ "$(wc -l < "$T/r2.jsonl")" -lt "$N" ] || fail "the resumed run started over"
log "mysql: stopped after $(wc -l < "$T/r1.jsonl") rows, resumed, $ids rows in all"

# PostgreSQL: schema and table with a space and a quote
PGQ=$(cat <<'NAME'
"my schema"."it's a ""table"", too"
NAME
)
pg_super "DROP SCHEMA IF EXISTS \"my schema\" CASCADE; CREATE SCHEMA \"my schema\";
          CREATE TABLE $PGQ (id int PRIMARY KEY, v text);
          INSERT INTO $PGQ SELECT g, 'v'||g FROM generate_series(1,700) g;
          ALTER TABLE $PGQ OWNER TO $PGUSER;
          GRANT USAGE, CREATE ON SCHEMA \"my schema\" TO $PGUSER;
          GRANT SELECT ON ALL TABLES IN SCHEMA \"my schema\" TO $PGUSER" || fail "pg setup"
PGDSN="host=$PGHOST port=$PGPORT user=$PGUSER password=$PGPASSWORD dbname=$PGDATABASE"
"$CDC" backfill --source postgres --postgres-dsn "$PGDSN" --state-dir "$T/state" --pipeline pgh \
    -X backfill.mode=incremental --sink file -o "$T/pg.jsonl" \
    --table "$PGQ" 2>"$T/pg.err" ||
    fail "pg backfill failed: $(tail -5 "$T/pg.err")"
got=$(python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
want = "700 " + json.dumps(["it\x27s a \"table\", too"])
got = "%d %s" % (len(rows), json.dumps(sorted(set(r["source"]["table"] for r in rows))))
print("ok" if got == want else got)' "$T/pg.jsonl")
[ "$got" = ok ] || fail "pg backfill wrote $got"
log "postgres: quoted names backfilled ($got)"

# --- 2. binary data into a text field: one rule on every path ---------------
# A live run (binlog -> mapping -> PostgreSQL wide table) writes the same
# text as `mapping test` over the envelopes of the same rows: base64.
BDB=hostile_bin
my_fresh_db $BDB
my_sql "GRANT ALL ON $BDB.* TO '$MYSQL_USER'@'%'; CREATE TABLE $BDB.b (id INT PRIMARY KEY, data BLOB, bin VARBINARY(16))"
pos=$(my_binlog_pos)
SEED=${CDC_TEST_SEED:-13}
python3 - "$SEED" > "$T/bin.sql" <<'PY'
import random, sys
random.seed(int(sys.argv[1]))
for i in range(40):
    n = random.randrange(0, 30)
    data = bytes(0 if j % 5 == 0 else random.randrange(256) for j in range(n))
    print("INSERT INTO b VALUES (%d, x'%s', x'%s');" % (i, data.hex(), data[:16].hex()))
PY
my_root $BDB < "$T/bin.sql" || fail "load binary rows"
cat > "$T/bin.yaml" <<'EOF'
sources: {hb: {}}
targets:
  hbw:
    table: public.hostile_bin_wide
    key: id
    fields: {id: bigint, data: {type: text, owner: hb}, bin: {type: text, owner: hb},
             n: {type: bigint, owner: hb}}
mappings:
  - {name: hb, source: hb, table: hostile_bin.b, target: hbw, key: {id: id},
     fields: {data: data, bin: bin, n: length(data)}}
EOF
pg_super "DROP TABLE IF EXISTS public.hostile_bin_wide, public.hostile_bin_wide_tombstones" 2>/dev/null
LIVE=("$CDC" --source mysql --mysql-dsn "$(my_dsn)" --from "${pos/ /:}" --include "$BDB.b"
      --application-id hb --idle-exit 2500)
"${LIVE[@]}" --pipeline hbpg --state-dir "$T/hb1" --sink postgres -X postgres_sink.dsn="$PGDSN" \
    -X mapping.files="$T/bin.yaml" 2>"$T/hb1.err" || fail "live run into postgres: $(tail -5 "$T/hb1.err")"
"${LIVE[@]}" --pipeline hbfile --state-dir "$T/hb2" --sink file -o "$T/hb.jsonl" 2>"$T/hb2.err" ||
    fail "live run into a file: $(tail -5 "$T/hb2.err")"
"$CDC" mapping test "$T/bin.yaml" "$T/hb.jsonl" >"$T/hb.test" 2>&1 || fail "mapping test: $(tail -5 "$T/hb.test")"
pg_sql "SELECT id, data, bin, n FROM public.hostile_bin_wide ORDER BY id" | tr '|' ' ' >"$T/hb.pg"
python3 - "$T/bin.sql" "$T/hb.pg" "$T/hb.test" <<'PY' || fail "binary into text differs (CDC_TEST_SEED=$SEED)"
import base64, re, sys
want = {}
for line in open(sys.argv[1]):
    i, d, b = re.match(r"INSERT INTO b VALUES \((\d+), x'([0-9a-f]*)', x'([0-9a-f]*)'\);", line).groups()
    d, b = bytes.fromhex(d), bytes.fromhex(b)
    want[int(i)] = (base64.b64encode(d).decode(), base64.b64encode(b).decode(), len(base64.b64encode(d)))
pg = {}
for line in open(sys.argv[2]):
    f = line.rstrip("\n").split(" ")
    pg[int(f[0])] = (f[1], f[2], int(f[3]))
test = {}
rows = open(sys.argv[3]).read().split("-- rows")[1]
for m in re.finditer(r'hbw id="(\d+)"\n((?:  .*\n)*)', rows):
    kv = dict(re.findall(r'  (\w+): "([^"]*)"', m.group(2)))
    test[int(m.group(1))] = (kv.get("data", ""), kv.get("bin", ""), int(kv["n"]))
bad = [i for i in want if pg.get(i) != want[i] or test.get(i) != want[i]]
for i in bad[:3]:
    print("# id %d: want %r, postgres %r, mapping test %r" % (i, want[i], pg.get(i), test.get(i)))
print("# binary into text: %d rows, live run == mapping test == base64" % len(want))
sys.exit(1 if bad or len(pg) != len(want) else 0)
PY

# --- 3. secrets ------------------------------------------------------------------
# Wrong passwords, so the servers refuse; none may appear anywhere.
forms=(
    "mysql|mysql://$MYSQL_USER:a@S3cret-one@$MYSQL_HOST:$MYSQL_PORT|S3cret-one"
    "postgres|host=$PGHOST port=$PGPORT user=$PGUSER password = S3cret-two dbname=$PGDATABASE|S3cret-two"
    "postgres|host=$PGHOST port=$PGPORT user=$PGUSER password=a\\ S3cret-three dbname=$PGDATABASE|S3cret-three"
    "postgres|host=$PGHOST port=$PGPORT user=$PGUSER password='a\\' S3cret-four' dbname=$PGDATABASE|S3cret-four"
    "postgres|postgresql://$PGUSER:S3cret-five@$PGHOST:$PGPORT/$PGDATABASE|S3cret-five"
    "postgres|host=$PGHOST port=$PGPORT user=$PGUSER sslpassword=S3cret-six password=S3cret-seven dbname=$PGDATABASE|S3cret-"
)
for f in "${forms[@]}"; do
    IFS='|' read -r src dsn secret <<<"$f"
    for fmt in text json; do
        "$CDC" run --source "$src" --"$src"-dsn "$dsn" --sink stdout --state-dir "$T/st" \
            --log-format "$fmt" >"$T/run.out" 2>"$T/run.err"
        rc=$?
        # refused credentials: 78 from MariaDB (the configuration is wrong),
        # 69 from PostgreSQL (libpq does not tell them from an outage)
        want=69; [ "$src" = mysql ] && want=78
        [ $rc = $want ] || fail "run with a wrong password: exit $rc, want $want"
        grep -q "$secret" "$T/run.out" "$T/run.err" &&
            fail "secret shows ($fmt log): $(cat "$T/run.err")"
    done
    "$CDC" config --source "$src" --"$src"-dsn "$dsn" -X "kafka.client.id=dsn $dsn" >"$T/cfg.out" 2>&1
    grep -q "$secret" "$T/cfg.out" && fail "secret shows in config: $(cat "$T/cfg.out")"
    grep -q "kafka.client.id = dsn" "$T/cfg.out" || fail "config lost the value: $(cat "$T/cfg.out")"
done
# the detail line of the PostgreSQL source names the DSN, masked
grep -q "dsn: host=.*password=\*\*\*\*\*\*" "$T/run.err" ||
    fail "no masked dsn detail: $(cat "$T/run.err")"
# abort: a run that waits on a server that never answers, then SIGABRT
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
c, _ = s.accept(); open(sys.argv[1], "w").write("connected\n"); time.sleep(30)' "$T/accepted" >"$T/port" &
hold=$!
wait_for 10 "silent listener" test -s "$T/port"
"$CDC" run --source postgres --sink stdout --state-dir "$T/st" \
    --postgres-dsn "host=127.0.0.1 port=$(cat "$T/port") connect_timeout=20 password='S3cret-abort x'" \
    >"$T/ab.out" 2>"$T/ab.err" &
pid=$!
wait_for 10 "the run connects to the silent listener" test -s "$T/accepted"
kill -ABRT $pid || fail "the run was not alive when aborted"
wait $pid
rc=$?
kill $hold 2>/dev/null
[ $rc = 134 ] || fail "SIGABRT: exit $rc, want 134"
grep -q "S3cret-abort" "$T/ab.out" "$T/ab.err" && fail "secret shows after abort: $(cat "$T/ab.err")"
log "secrets: ${#forms[@]} DSN forms x (text, json, config), abort: nothing shown"
echo "PASS"
