#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_mysql_stream.sh - inserts, updates and deletes arrive live from MariaDB
# through the mysql source; heartbeats keep an idle stream open; the
# start positions now / beginning / FILE:POS / GTID and a resume from a
# checkpoint position all start at the right transaction; JSON columns
# arrive as JSON.
#
# Drives the source through tests/integ/mysql_drive.c
# (built by make: `make integ-helpers`); when the CLI has --source mysql it is checked too.
. "$(dirname "$0")/lib.sh"
need mariadb

need helper:mysql_drive
DRIVE=$BUILD/tests/integ/mysql_drive
DSN=$(my_dsn)
DB=cdc_mystream

lines() { grep -c " $DB\." "$1" 2>/dev/null || true; }
# wait_lines FILE N: until FILE has N change lines of $DB
wait_lines() { wait_for 30 "$2 changes in $1" bash -c "[ \$(grep -c ' $DB\\.' '$1') -ge $2 ]"; }
stop_drive() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

my_fresh_db $DB
my_sql "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(40), doc JSON,
        amount DECIMAL(10,2), note LONGTEXT)" $DB
start_pos=$(my_binlog_pos)
start_gtid=$(my_gtid)

# --- live: start at now, then write --------------------------------------
"$DRIVE" -X mysql.dsn="$DSN" -X mysql.heartbeat_ms=500 --pos-file "$T/pos" \
    >"$T/live.out" 2>"$T/live.err" &
drv=$!
wait_for 20 "the source starts" grep -q "mysql_drive: started" "$T/live.err"
my_sql "BEGIN; INSERT INTO t VALUES (1, 'one', '{\"k\": 1}', 1.50, NULL);
        INSERT INTO t VALUES (2, 'two', '[1, 2, \"x\"]', -2.25, 'n2'); COMMIT" $DB
my_sql "UPDATE t SET name = 'uno', doc = '{\"k\": 2}' WHERE id = 1" $DB
my_sql "DELETE FROM t WHERE id = 2" $DB
wait_lines "$T/live.out" 4
# idle for longer than 3 heartbeat periods (read timeout): no reconnect
sleep 4
my_sql "INSERT INTO t VALUES (3, 'three', NULL, 0, 'after idle')" $DB
wait_lines "$T/live.out" 5
# a binlog rotation mid-stream
my_sql "FLUSH BINARY LOGS"
# DDL mid-stream: a new JSON column is recognised (cache flushed)
my_sql "ALTER TABLE t ADD COLUMN extra JSON" $DB
my_sql "INSERT INTO t VALUES (4, 'four', NULL, 4, NULL, '{\"new\": true}')" $DB
wait_lines "$T/live.out" 6
# MariaDB compressed binlog events (log_bin_compress) decode the same
old_compress=$(my_val "SELECT @@global.log_bin_compress")
my_sql "SET GLOBAL log_bin_compress = ON"
long=$(printf 'x%.0s' $(seq 1 600))
my_sql "INSERT INTO t VALUES (5, 'five', '{\"z\": [1]}', 5, '$long', NULL)" $DB
my_sql "SET GLOBAL log_bin_compress = $old_compress"
wait_lines "$T/live.out" 7
# an event larger than 16 MiB arrives as several protocol packets
old_map=$(my_val "SELECT @@global.max_allowed_packet")
my_sql "SET GLOBAL max_allowed_packet = 67108864"
my_sql "INSERT INTO t VALUES (6, 'six', NULL, 6, REPEAT('ab', 10485760), NULL)" $DB
my_sql "SET GLOBAL max_allowed_packet = $old_map"
wait_lines "$T/live.out" 8
my_sql "DELETE FROM t WHERE id = 6" $DB
wait_lines "$T/live.out" 9
# the 20 MiB delete leaves as a fragment first; its end (the resume point)
# follows: wait for it before stopping
pos_at_end() { read -r f o _ <"$T/pos" && [ "$f $o" = "$(my_binlog_pos)" ]; }
wait_for 20 "the position of the last transaction's end" pos_at_end
stop_drive $drv
grep -v 'id=int:6 ' "$T/live.out" >&2
grep -q "reconnecting" "$T/live.err" && { cat "$T/live.err" >&2; fail "the idle stream reconnected"; }

sed -n 1p "$T/live.out" | grep -qF "c $DB.t " || fail "first change is not the insert of row 1"
grep -qF 'after{id=int:1 name=str:"one" doc=json:{"k": 1} amount=dec:1.50 note=null}' "$T/live.out" \
    || fail "insert of row 1 is wrong"
grep -qF 'after{id=int:2 name=str:"two" doc=json:[1, 2, "x"] amount=dec:-2.25 note=str:"n2"}' "$T/live.out" \
    || fail "insert of row 2 is wrong"
grep -F "u $DB.t " "$T/live.out" | grep -qF 'before{id=int:1 name=str:"one" doc=json:{"k": 1}' \
    || fail "update before image is wrong"
grep -F "u $DB.t " "$T/live.out" | grep -qF 'after{id=int:1 name=str:"uno" doc=json:{"k": 2}' \
    || fail "update after image is wrong"
grep -F "d $DB.t " "$T/live.out" | grep -qF 'before{id=int:2 ' || fail "delete is wrong"
grep -qF 'after{id=int:3 name=str:"three" doc=null amount=dec:0.00 note=str:"after idle"}' "$T/live.out" \
    || fail "insert after the idle period is wrong"
grep -qF 'after{id=int:4 name=str:"four" doc=null amount=dec:4.00 note=null extra=json:{"new": true}}' "$T/live.out" \
    || fail "insert after ALTER TABLE ADD COLUMN extra JSON is wrong"
grep -qF "after{id=int:5 name=str:\"five\" doc=json:{\"z\": [1]} amount=dec:5.00 note=str:\"$long\" extra=null}" "$T/live.out" \
    || fail "insert logged with log_bin_compress=ON is wrong"
[ "$(grep -F 'after{id=int:6 name=str:"six"' "$T/live.out" | wc -c)" -gt 20971520 ] \
    || fail "the 20 MiB row did not arrive whole"
sed -i '/id=int:6 /d' "$T/live.out"
# the two inserts are one transaction (same GTID)
[ "$(grep -F "c $DB.t " "$T/live.out" | head -2 | sed 's/.*gtid=\([^ ]*\).*/\1/' | sort -u | wc -l)" = 1 ] \
    || fail "the two inserts of one transaction carry different GTIDs"
# the checkpoint position is the end of the binlog now
read -r pfile poff pgtid <"$T/pos"
[ "$pfile $poff" = "$(my_binlog_pos)" ] || fail "position after the last txn $pfile:$poff != $(my_binlog_pos)"
[ "$pgtid" = "$(my_gtid)" ] || fail "GTID state after the last txn '$pgtid' != '$(my_gtid)'"
log "live stream ok; position $pfile:$poff gtid $pgtid"

# --- start positions --------------------------------------------------------
# FILE:POS from before the table's rows: all 9 changes
"$DRIVE" -X mysql.dsn="$DSN" -X mysql.from="${start_pos% *}:${start_pos#* }" \
    --idle-exit 1500 >"$T/filepos.out" 2>"$T/filepos.err" || { cat "$T/filepos.err" >&2; fail "FILE:POS start failed"; }
[ "$(lines "$T/filepos.out")" = 9 ] || fail "FILE:POS start: $(lines "$T/filepos.out") changes, expected 9"
# GTID state from before: the same 9
"$DRIVE" -X mysql.dsn="$DSN" -X mysql.from="$start_gtid" \
    --idle-exit 1500 >"$T/gtid.out" 2>"$T/gtid.err" || { cat "$T/gtid.err" >&2; fail "GTID start failed"; }
[ "$(lines "$T/gtid.out")" = 9 ] || fail "GTID start: $(lines "$T/gtid.out") changes, expected 9"
cmp -s <(sed 's/ pos=[^ ]*//' "$T/filepos.out" | grep " $DB\.") <(sed 's/ pos=[^ ]*//' "$T/gtid.out" | grep " $DB\.") \
    || fail "FILE:POS and GTID starts differ"
# resume from a checkpoint after the update (GTID resume on MariaDB):
# only the delete and the 5 later changes follow
ck_line=$(grep -F "u $DB.t " "$T/live.out" | head -1)
ck_gtid=$(sed -n 's/.*gtid=\([^ ]*\).*/\1/p' <<<"$ck_line")
ck_pos=$(sed -n 's/.* pos=\([^ ]*\).*/\1/p' <<<"$ck_line")
state=$(my_val "SELECT BINLOG_GTID_POS('${ck_pos%:*}', ${ck_pos##*:})")
"$DRIVE" -X mysql.dsn="$DSN" --resume "$ck_pos@$state" --idle-exit 1500 \
    >"$T/resume.out" 2>"$T/resume.err" || { cat "$T/resume.err" >&2; fail "resume failed"; }
[ "$(lines "$T/resume.out")" = 6 ] || fail "resume after $ck_gtid: $(lines "$T/resume.out") changes, expected 6"
[ "$(grep " $DB\." "$T/resume.out" | head -1 | cut -c1)" = d ] || fail "resume did not start with the delete"
# the same by file:pos alone
"$DRIVE" -X mysql.dsn="$DSN" --resume "$ck_pos" --idle-exit 1500 \
    >"$T/resume2.out" 2>"$T/resume2.err" || { cat "$T/resume2.err" >&2; fail "file:pos resume failed"; }
[ "$(lines "$T/resume2.out")" = 6 ] || fail "file:pos resume: $(lines "$T/resume2.out") changes, expected 6"
# beginning: at least our 9 changes, in the same order as live
"$DRIVE" -X mysql.dsn="$DSN" -X mysql.from=beginning --idle-exit 2000 \
    >"$T/begin.out" 2>"$T/begin.err" || { cat "$T/begin.err" >&2; fail "beginning start failed"; }
cmp -s <(grep " $DB\." "$T/begin.out" | tail -9 | sed 's/ pos=[^ ]*//') <(sed 's/ pos=[^ ]*//' "$T/filepos.out" | grep " $DB\.") \
    || fail "start at beginning: the last 9 changes differ"
log "start positions ok"

# --- the CLI runs the mysql source (a renamed option fails here) -------------
need cdc
timeout 60 "$CDC" --source mysql --mysql-dsn "$DSN" -X mysql.from="${start_pos% *}:${start_pos#* }" \
    --sink stdout --state-dir "$T/state" --max-txns 4 >"$T/cli.out" 2>"$T/cli.err" || { cat "$T/cli.err" >&2; fail "autoglm-cdc --source mysql failed (exit $?)"; }
grep -q '"k": *2' "$T/cli.out" || grep -q '"k":2' "$T/cli.out" || { cat "$T/cli.out" >&2; fail "CLI output lacks the JSON update"; }
log "CLI ok"
my_sql "DROP DATABASE $DB"
log "stream ok"
