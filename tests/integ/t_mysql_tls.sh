#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_mysql_tls.sh - the mysql source over TLS: mysql.ssl.mode preferred /
# required / verify_ca / verify_identity against a MariaDB with a test CA,
# and refusals for a wrong CA or a host name not in the certificate.
#
# Starts its own short-lived mariadbd (TLS on, binlog ROW/FULL/FULL) on a
# free loopback port in the scratch directory; skips without openssl or
# mariadbd.
. "$(dirname "$0")/lib.sh"
need openssl cdc
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
[ -x "$MARIADBD" ] && command -v mariadb-install-db >/dev/null || skip "no mariadbd"

need helper:mysql_drive
DRIVE=$BUILD/tests/integ/mysql_drive

# --- certificates: a CA, a server cert for 127.0.0.1, another CA ----------
C=$T/certs
mkdir -p "$C"
ossl() { openssl "$@" >/dev/null 2>&1 || fail "openssl $1 failed"; }
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=cdc test CA" \
    -keyout "$C/ca.key" -out "$C/ca.pem"
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other CA" \
    -keyout "$C/other.key" -out "$C/other.pem"
ossl req -newkey rsa:2048 -nodes -subj "/CN=db.invalid" \
    -keyout "$C/server.key" -out "$C/server.csr"
printf 'subjectAltName=IP:127.0.0.1\n' >"$C/ext.cnf"
ossl x509 -req -in "$C/server.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" \
    -CAcreateserial -days 2 -extfile "$C/ext.cnf" -out "$C/server.pem"

# --- a TLS MariaDB -------------------------------------------------------
D=$T/db
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
mariadb-install-db --no-defaults --datadir="$D" --auth-root-authentication-method=normal \
    --skip-test-db >"$T/install.log" 2>&1 || { tail "$T/install.log" >&2; fail "mariadb-install-db failed"; }
"$MARIADBD" --no-defaults --user="$(id -un)" --datadir="$D" --port="$PORT" --bind-address=127.0.0.1 \
    --socket="$T/my.sock" --pid-file="$T/my.pid" --log-error="$T/my.err" \
    --log-bin=mysql-bin --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL \
    --server-id=1 --ssl-ca="$C/ca.pem" --ssl-cert="$C/server.pem" --ssl-key="$C/server.key" \
    --innodb-buffer-pool-size=16M </dev/null >/dev/null 2>&1 &
dbpid=$!
trap 'kill -TERM $dbpid 2>/dev/null; wait $dbpid 2>/dev/null; _cdc_cleanup' EXIT
tsql() { mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$PORT" -u root -N -B -e "$1"; }
wait_for 60 "the TLS MariaDB answers" tsql "SELECT 1"
[ "$(tsql "SELECT @@have_ssl")" = YES ] || { cat "$T/my.err" >&2; fail "TLS is not enabled on the test server"; }
tsql "CREATE USER cdc@'%' IDENTIFIED BY 'pw'; GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO cdc@'%'"
DSN="mysql://cdc:pw@127.0.0.1:$PORT"

# run NAME CODE ARGS...: run the source briefly, check the exit code
run() {
    local name=$1 code=$2 rc
    shift 2
    timeout 60 "$DRIVE" -X mysql.dsn="$DSN" --idle-exit 300 "$@" >"$T/$name.out" 2>"$T/$name.err"
    rc=$?
    [ $rc = "$code" ] || { cat "$T/$name.err" >&2; fail "$name: exit $rc, expected $code"; }
    log "$name: exit $rc as expected"
}
tls_used() { grep -q "connected to MariaDB.*(TLS" "$T/$1.err" || grep -Eq "connected to MariaDB.*\((TLS_|ECDHE|AES|CHACHA)" "$T/$1.err" \
    || { cat "$T/$1.err" >&2; fail "$1: the connection did not use TLS"; }; }

run disabled 0 -X mysql.ssl.mode=disabled
grep -q "(no TLS)" "$T/disabled.err" || fail "disabled: TLS was used"
run preferred 0
tls_used preferred
run required 0 -X mysql.ssl.mode=required
tls_used required
run verify_ca 0 -X mysql.ssl.mode=verify_ca -X mysql.ssl.ca="$C/ca.pem"
tls_used verify_ca
run verify_identity 0 -X mysql.ssl.mode=verify_identity -X mysql.ssl.ca="$C/ca.pem"
run wrong_ca 78 -X mysql.ssl.mode=verify_ca -X mysql.ssl.ca="$C/other.pem"
grep -qi "ssl\|tls\|certificate" "$T/wrong_ca.err" || fail "wrong_ca: the message does not mention TLS"
# the same settings in the DSN (connectors/mysql/conn.c): ssl-mode and
# ssl-ca there; explicit mysql.ssl.* keys override the DSN's parts
DSN="mysql://cdc:pw@127.0.0.1:$PORT?ssl-mode=verify_ca&ssl-ca=$C/ca.pem"
run dsn_verify_ca 0
tls_used dsn_verify_ca
DSN="mysql://cdc:pw@127.0.0.1:$PORT?ssl-mode=VERIFY-IDENTITY&ssl-ca=$C/other.pem"
run dsn_wrong_ca 78
run key_ca_over_dsn 0 -X mysql.ssl.ca="$C/ca.pem"
tls_used key_ca_over_dsn
DSN="mysql://cdc:pw@127.0.0.1:$PORT?ssl-mode=disabled"
run key_over_dsn 0 -X mysql.ssl.mode=required
tls_used key_over_dsn
run dsn_mode 0
grep -q "(no TLS)" "$T/dsn_mode.err" || fail "dsn_mode: TLS was used with ssl-mode=disabled"
# "localhost" is not in the certificate (only IP 127.0.0.1)
DSN="mysql://cdc:pw@localhost:$PORT"
run wrong_host 78 -X mysql.ssl.mode=verify_identity -X mysql.ssl.ca="$C/ca.pem"
# events flow over TLS
DSN="mysql://cdc:pw@127.0.0.1:$PORT"
tsql "CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY); INSERT INTO d.t VALUES (42)"
timeout 60 "$DRIVE" -X mysql.dsn="$DSN" -X mysql.ssl.mode=verify_ca -X mysql.ssl.ca="$C/ca.pem" \
    -X mysql.from=beginning --idle-exit 1000 >"$T/stream.out" 2>"$T/stream.err" \
    || { cat "$T/stream.err" >&2; fail "stream over TLS failed"; }
grep -q "^c d.t .*after{id=int:42}" "$T/stream.out" || { cat "$T/stream.out" >&2; fail "row not streamed over TLS"; }
# backfill connects the same way (the snapshot used to ignore ssl-mode)
bf() { # NAME CODE DSN
    "$CDC" backfill --source mysql --mysql-dsn "$3" --table d.t --sink file -o "$T/$1.jsonl" \
        --state-dir "$T/$1.state" --pipeline "$1" >"$T/$1.out" 2>"$T/$1.err"
    local rc=$?
    [ $rc = "$2" ] || { cat "$T/$1.err" >&2; fail "$1: exit $rc, expected $2"; }
    log "$1: exit $rc as expected"
}
bf backfill_verify 0 "mysql://cdc:pw@127.0.0.1:$PORT?ssl-mode=verify_identity&ssl-ca=$C/ca.pem"
grep -q '"id":42' "$T/backfill_verify.jsonl" || fail "backfill over TLS: row 42 missing"
bf backfill_wrong_ca 78 "mysql://cdc:pw@127.0.0.1:$PORT?ssl-mode=verify_ca&ssl-ca=$C/other.pem"
bf backfill_required 0 "mysql://cdc:pw@127.0.0.1:$PORT?ssl-mode=required"
log "TLS ok"
