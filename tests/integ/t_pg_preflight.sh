#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_pg_preflight.sh - the postgres source refuses what it cannot capture
# correctly, with the fix in the message:
#   * a captured table without primary key and REPLICA IDENTITY DEFAULT, and
#     one with REPLICA IDENTITY NOTHING -> exit 78 (config), one message per
#     table, each with its ALTER TABLE ... REPLICA IDENTITY FULL
#   * a table listed in postgres.tables that does not exist -> exit 78
#   * a role without REPLICATION -> exit 78 with ALTER ROLE ... REPLICATION
#   * resuming from a checkpoint whose slot was dropped -> exit 3 naming the
#     slot and the remedy
# Exit 0 pass, 1 fail, 77 skip.
. "$(dirname "$0")/lib.sh"
need postgres cdc

DB=cdcpf_$$
SLOT=s_$DB
pg_sql "CREATE DATABASE $DB" postgres
cleanup_db() {
    pg_super "SELECT pg_drop_replication_slot('$SLOT') FROM pg_replication_slots WHERE slot_name = '$SLOT' AND NOT active" postgres >/dev/null 2>&1
    pg_sql "DROP DATABASE IF EXISTS $DB" postgres >/dev/null 2>&1
    pg_super "DROP ROLE IF EXISTS norepl_$$" postgres >/dev/null 2>&1
}
trap 'cleanup_db; _cdc_cleanup' EXIT

DSN="host=$PGHOST port=$PGPORT user=$PGUSER password=$PGPASSWORD dbname=$DB"
run() { # run OUTFILE args...: autoglm-cdc with our slot/publication, stderr to OUTFILE
    local o=$1; shift
    "$CDC" --source postgres --sink stdout --state-dir "$T/state" -X pipeline.name=$DB \
        -X postgres.slot=$SLOT -X postgres.publication=p_$DB --idle-exit 1500 "$@" >"$T/stdout" 2>"$o"
}

pg_sql "CREATE TABLE ok_t (id int PRIMARY KEY, v text);
CREATE TABLE nopk (a int, b text);
CREATE TABLE nothing_t (id int PRIMARY KEY, v text);
ALTER TABLE nothing_t REPLICA IDENTITY NOTHING;" $DB

# 1. identity problems: both reported, exit 78, nothing created
run "$T/e1" --postgres-dsn "$DSN" -X postgres.tables=public.ok_t,public.nopk,public.nothing_t
rc=$?
[ $rc = 78 ] || { cat "$T/e1" >&2; fail "identity problems: exit $rc, expected 78"; }
grep -q 'ALTER TABLE public.nopk REPLICA IDENTITY FULL' "$T/e1" || { cat "$T/e1" >&2; fail "no fix for nopk"; }
grep -q 'ALTER TABLE public.nothing_t REPLICA IDENTITY FULL' "$T/e1" || { cat "$T/e1" >&2; fail "no fix for nothing_t"; }
grep -q 'nopk has no primary key and REPLICA IDENTITY DEFAULT' "$T/e1" || fail "nopk reason missing"
grep -q 'nothing_t has REPLICA IDENTITY NOTHING' "$T/e1" || fail "nothing_t reason missing"
[ "$(pg_sql "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$SLOT'")" = 0 ] || fail "slot created despite refusal"
log "identity refusal ok"

# 2. after the fix the same configuration starts
pg_sql "ALTER TABLE public.nopk REPLICA IDENTITY FULL; ALTER TABLE public.nothing_t REPLICA IDENTITY FULL" $DB
run "$T/e2" --postgres-dsn "$DSN" -X postgres.tables=public.ok_t,public.nopk,public.nothing_t
rc=$?
[ $rc = 0 ] || { cat "$T/e2" >&2; fail "after the fix: exit $rc"; }

# 3. missing table
run "$T/e3" --postgres-dsn "$DSN" -X postgres.tables=public.ok_t,public.nosuch
rc=$?
[ $rc = 78 ] || { cat "$T/e3" >&2; fail "missing table: exit $rc"; }
grep -q 'public.nosuch' "$T/e3" || fail "missing table not named"

# 4. role without REPLICATION
pg_super "CREATE ROLE norepl_$$ LOGIN PASSWORD 'x'; GRANT ALL ON DATABASE $DB TO norepl_$$" postgres
run "$T/e4" --postgres-dsn "host=$PGHOST port=$PGPORT user=norepl_$$ password=x dbname=$DB" -X postgres.tables=public.ok_t
rc=$?
[ $rc = 78 ] || { cat "$T/e4" >&2; fail "role without REPLICATION: exit $rc"; }
grep -q "ALTER ROLE norepl_$$ WITH REPLICATION" "$T/e4" || { cat "$T/e4" >&2; fail "no ALTER ROLE hint"; }
log "role check ok"

# 5. a change, a checkpoint, then the slot is dropped: resuming must stop with 3
pg_sql "INSERT INTO ok_t VALUES (1, 'a')" $DB
run "$T/e5" --postgres-dsn "$DSN" -X postgres.tables=public.ok_t
ls "$T/state"/*.ckpt >/dev/null 2>&1 || { cat "$T/e5" >&2; fail "no checkpoint written"; }
pg_sql "INSERT INTO ok_t VALUES (2, 'b')" $DB
run "$T/e6" --postgres-dsn "$DSN" -X postgres.tables=public.ok_t
grep -q '"id":2' "$T/stdout" || { cat "$T/e6" >&2; fail "resume did not deliver the second row"; }
grep -q '"id":1' "$T/stdout" && fail "resume re-delivered the first row"
pg_sql "SELECT pg_drop_replication_slot('$SLOT')" $DB >/dev/null
run "$T/e7" --postgres-dsn "$DSN" -X postgres.tables=public.ok_t
rc=$?
[ $rc = 3 ] || { cat "$T/e7" >&2; fail "dropped slot: exit $rc, expected 3"; }
grep -q "slot $SLOT does not exist" "$T/e7" || { cat "$T/e7" >&2; fail "message does not name the slot"; }
grep -qi 'backfill' "$T/e7" || fail "remedy missing"
log "dropped slot -> exit 3 ok"
exit 0
