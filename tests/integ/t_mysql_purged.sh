#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_mysql_purged.sh - resuming at a position whose binlog was purged stops
# with exit 3 and a message naming the position and the remedy; the source
# never skips ahead.  Covers file:pos and GTID resumes and mysql.from.
. "$(dirname "$0")/lib.sh"
need mariadb

need helper:mysql_drive
DRIVE=$BUILD/tests/integ/mysql_drive
DSN=$(my_dsn)
DB=cdc_mypurge

my_fresh_db $DB
my_sql "CREATE TABLE t (id INT PRIMARY KEY)" $DB
my_sql "INSERT INTO t VALUES (1)" $DB
old_pos=$(my_binlog_pos)
old_file=${old_pos% *} old_off=${old_pos#* }
old_gtid=$(my_gtid)
my_sql "INSERT INTO t VALUES (2)" $DB
# the old position is still readable
"$DRIVE" -X mysql.dsn="$DSN" -X mysql.heartbeat_ms=300 --resume "$old_file:$old_off" --idle-exit 800 \
    >"$T/ok.out" 2>"$T/ok.err" || { cat "$T/ok.err" >&2; fail "resume before the purge failed"; }
grep -q "after{id=int:2}" "$T/ok.out" || fail "resume before the purge missed row 2"

# rotate twice and purge everything before the current file
my_sql "FLUSH BINARY LOGS; INSERT INTO t VALUES (3)" $DB
my_sql "FLUSH BINARY LOGS"
cur=$(my_binlog_pos)
# (a file still read by a dump thread is not purged: the server notices a
# closed replica connection at its next heartbeat, so retry)
purged() {
    my_sql "PURGE BINARY LOGS TO '${cur% *}'" &&
    [ "$(my_sql "SHOW BINARY LOGS" | head -1 | cut -f1)" = "${cur% *}" ]
}
wait_for 30 "PURGE BINARY LOGS TO '${cur% *}'" purged

# expect_noresume NAME ARGS...: exit 3 with the position and the remedy
expect_noresume() {
    local name=$1 rc
    shift
    timeout 60 "$DRIVE" -X mysql.dsn="$DSN" "$@" >"$T/$name.out" 2>"$T/$name.err"
    rc=$?
    cat "$T/$name.err" >&2
    [ $rc = 3 ] || fail "$name: exit $rc, expected 3"
    grep -q "cannot resume at" "$T/$name.err" || fail "$name: no 'cannot resume at' message"
    grep -q "autoglm-cdc backfill" "$T/$name.err" || fail "$name: the hint lacks the backfill"
    grep -q "offsets reset" "$T/$name.err" || fail "$name: the hint lacks offsets reset"
    [ -s "$T/$name.out" ] && fail "$name: changes were emitted after a purged position"
    return 0
}
expect_noresume filepos --resume "$old_file:$old_off"
grep -qF "$old_file:$old_off" "$T/filepos.err" || fail "filepos: message does not name $old_file:$old_off"
expect_noresume gtid --resume "$old_file:$old_off@$old_gtid"
grep -qF "GTID state '$old_gtid'" "$T/gtid.err" || fail "gtid: message does not name the GTID state"
expect_noresume from -X mysql.from="$old_file:$old_off"
log "purged binlog refused with exit 3"
my_sql "DROP DATABASE $DB"
