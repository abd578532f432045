#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_mysql_preflight.sh - the mysql source refuses wrong server settings
# with one message per problem (and the SQL that fixes it), exit 78; its
# server_id follows pipeline.name and a duplicate one is named, both in
# the preflight and when the server drops the dump (error 4052).
#
# Breaks settings with SET GLOBAL and restores them on exit.  Drives the
# source through tests/integ/mysql_drive.c
# (built by make: `make integ-helpers`) and, when the CLI has --source mysql, through
# autoglm-cdc as well.
. "$(dirname "$0")/lib.sh"
need mariadb

# --- the driver -------------------------------------------------------
need helper:mysql_drive
DRIVE=$BUILD/tests/integ/mysql_drive
DSN=$(my_dsn)
ROOT_DSN="mysql://root:$MYSQL_ROOT_PASSWORD@$MYSQL_HOST:$MYSQL_PORT"

# expect CODE NAME CMD...: run CMD (stderr to $T/NAME.err), check the exit code
expect() {
    local code=$1 name=$2 rc
    shift 2
    timeout 60 "$@" >"$T/$name.out" 2>"$T/$name.err"
    rc=$?
    [ $rc = "$code" ] || { cat "$T/$name.err" >&2; fail "$name: exit $rc, expected $code"; }
    log "$name: exit $rc as expected"
}
has() { grep -qF -- "$2" "$T/$1.err" || { cat "$T/$1.err" >&2; fail "$1: stderr lacks: $2"; }; }

# --- baseline: good settings start ------------------------------------
expect 0 good "$DRIVE" -X mysql.dsn="$DSN" --idle-exit 300
has good "binlog dump requested"

# --- wrong binlog settings, all reported together ----------------------
old=$(my_sql "SELECT CONCAT_WS(',', @@global.binlog_format, @@global.binlog_row_image, @@global.binlog_row_metadata)")
IFS=, read -r OLD_FMT OLD_IMG OLD_META <<<"$old"
restore() {
    my_sql "SET GLOBAL binlog_format = '$OLD_FMT'; SET GLOBAL binlog_row_image = '$OLD_IMG';
            SET GLOBAL binlog_row_metadata = '$OLD_META'" || true
}
trap 'restore; _cdc_cleanup' EXIT
my_sql "SET GLOBAL binlog_format = 'STATEMENT'; SET GLOBAL binlog_row_image = 'MINIMAL';
        SET GLOBAL binlog_row_metadata = 'MINIMAL'"
expect 78 settings "$DRIVE" -X mysql.dsn="$DSN"
has settings "binlog_format is STATEMENT, must be ROW"
has settings "SET GLOBAL binlog_format = 'ROW';"
has settings "binlog_row_image is MINIMAL, must be FULL"
has settings "SET GLOBAL binlog_row_image = 'FULL';"
has settings "binlog_row_metadata is MINIMAL, must be FULL"
has settings "SET GLOBAL binlog_row_metadata = 'FULL';"
has settings "(3 wrong settings)"
# the CLI refuses the same way (needs the binary: a renamed option fails)
need cdc
expect 78 settings_cli "$CDC" --source mysql --mysql-dsn "$DSN" --sink stdout --state-dir "$T/state"
has settings_cli "SET GLOBAL binlog_row_image = 'FULL';"
restore
trap _cdc_cleanup EXIT
expect 0 restored "$DRIVE" -X mysql.dsn="$DSN" --idle-exit 300

# --- server_id equal to the server's ------------------------------------
sid=$(my_val "SELECT @@global.server_id")
expect 78 own_id "$DRIVE" -X mysql.dsn="$DSN" -X mysql.server_id="$sid"
has own_id "is the server's own server_id"

# --- server_id used by another registered replica (needs the privilege to
# read SHOW SLAVE HOSTS: run both as root) --------------------------------
"$DRIVE" -X mysql.dsn="$ROOT_DSN" -X mysql.server_id=7777 -X pipeline.name=other \
    --idle-exit 20000 >"$T/other.out" 2>"$T/other.err" &
other=$!
wait_for 20 "the other replica registers" \
    bash -c "[ \"\$(mariadb --no-defaults --protocol=tcp -h $MYSQL_HOST -P $MYSQL_PORT -uroot -p$MYSQL_ROOT_PASSWORD -N -B -e 'SHOW SLAVE HOSTS' | cut -f1 | grep -c '^7777$')\" = 1 ]"
expect 78 id_in_use "$DRIVE" -X mysql.dsn="$ROOT_DSN" -X mysql.server_id=7777 -X pipeline.name=mine
has id_in_use "mysql.server_id 7777 is already used by the replica 'autoglm-cdc:other'"
kill -TERM $other 2>/dev/null
wait $other 2>/dev/null

# --- the default server_id follows pipeline.name, not application_id: two
# pipelines of one application run side by side -----------------------------
"$CDC" --source mysql --mysql-dsn "$DSN" --application-id shared --pipeline pa \
    --sink file -o "$T/pa.jsonl" --state-dir "$T/s_pa" --idle-exit 8000 \
    >"$T/pa.out" 2>"$T/pa.err" &
pa=$!
wait_for 20 "pipeline pa dumps" grep -q "binlog dump requested" "$T/pa.err"
expect 0 pb "$CDC" --source mysql --mysql-dsn "$DSN" --application-id shared --pipeline pb \
    --sink file -o "$T/pb.jsonl" --state-dir "$T/s_pb" --idle-exit 2000
wait $pa
rc=$?
[ $rc = 0 ] || { cat "$T/pa.err" >&2; fail "pipeline pa exited $rc next to pb"; }
ida=$(sed -n 's/.*ours=\([0-9]*\).*/\1/p' "$T/pa.err")
idb=$(sed -n 's/.*ours=\([0-9]*\).*/\1/p' "$T/pb.err")
[ -n "$ida" ] && [ "$ida" != "$idb" ] || fail "server_ids of pa and pb: '$ida' '$idb'"
log "pipelines pa and pb of one application: server_ids $ida and $idb"

# --- the same pipeline started twice on two state dirs (or hosts): the
# server drops the first dump with error 4052; it stops naming the conflict
# (exit 78) instead of failing generically ----------------------------------
"$CDC" --source mysql --mysql-dsn "$DSN" --pipeline twin --sink file -o "$T/t1.jsonl" \
    --state-dir "$T/s_t1" >"$T/twin1.out" 2>"$T/twin1.err" &
t1=$!
wait_for 20 "the first twin dumps" grep -q "binlog dump requested" "$T/twin1.err"
"$CDC" --source mysql --mysql-dsn "$DSN" --pipeline twin --sink file -o "$T/t2.jsonl" \
    --state-dir "$T/s_t2" --idle-exit 4000 >"$T/twin2.out" 2>"$T/twin2.err" &
t2=$!
timeout 30 tail --pid=$t1 -f /dev/null
kill -0 $t1 2>/dev/null && { kill -TERM $t1; fail "the first twin kept running"; }
wait $t1
rc=$?
[ $rc = 78 ] || { cat "$T/twin1.err" >&2; fail "first twin exited $rc, expected 78"; }
has twin1 "another replica connected with the same server_id"
has twin1 "(replica 'autoglm-cdc:twin')"
has twin1 "error 4052"
wait $t2
log "duplicate server_id at run time: exit 78 naming the other replica"

# --- missing grants ---------------------------------------------------------
my_sql "DROP USER IF EXISTS 'cdc_weak'@'%'; CREATE USER 'cdc_weak'@'%' IDENTIFIED BY 'weakpw';
        GRANT SELECT ON *.* TO 'cdc_weak'@'%'"
expect 78 grants "$DRIVE" -X mysql.dsn="mysql://cdc_weak:weakpw@$MYSQL_HOST:$MYSQL_PORT"
has grants "lacks the REPLICATION SLAVE privilege"
has grants "GRANT REPLICATION SLAVE ON *.* TO 'cdc_weak'@'%';"
has grants "GRANT BINLOG MONITOR ON *.* TO 'cdc_weak'@'%';"
my_sql "DROP USER 'cdc_weak'@'%'"

# --- DSN with %-escaped user and password; host/port keys override the DSN --
my_sql "DROP USER IF EXISTS 'cdc odd'@'%'; CREATE USER 'cdc odd'@'%' IDENTIFIED BY 'p@ss:w/rd%';
        GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'cdc odd'@'%'"
expect 0 escaped "$DRIVE" -X mysql.dsn="mysql://cdc%20odd:p%40ss%3Aw%2Frd%25@$MYSQL_HOST:1" \
    -X mysql.port="$MYSQL_PORT" --idle-exit 300
has escaped "binlog dump requested"
expect 0 keys "$DRIVE" -X mysql.host="$MYSQL_HOST" -X mysql.port="$MYSQL_PORT" \
    -X mysql.user="cdc odd" -X mysql.password='p@ss:w/rd%' --idle-exit 300
grep -q 'p@ss' "$T/escaped.err" "$T/keys.err" && fail "the password was printed"
my_sql "DROP USER 'cdc odd'@'%'"

# --- other refusals ---------------------------------------------------------
expect 78 password "$DRIVE" -X mysql.dsn="mysql://$MYSQL_USER:wrong@$MYSQL_HOST:$MYSQL_PORT"
has password "Access denied"
tls=$(my_val "SELECT @@have_ssl")
if [ "$tls" != YES ]; then
    expect 78 tls "$DRIVE" -X mysql.dsn="$DSN" -X mysql.ssl.mode=required
    has tls "does not offer TLS"
fi
expect 78 from "$DRIVE" -X mysql.dsn="$DSN" -X mysql.from='not a position!'
has from "mysql.from: cannot parse"
expect 78 sslmode "$DRIVE" -X mysql.dsn="$DSN?ssl-mode=sometimes"
# nothing listens on port 1
expect 69 unreachable "$DRIVE" -X mysql.dsn="mysql://cdc:x@127.0.0.1:1" -X mysql.connect_timeout_ms=2000
has unreachable "cannot connect"
log "all preflight refusals as expected"
