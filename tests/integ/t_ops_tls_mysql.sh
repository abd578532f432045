#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_ops_tls_mysql.sh - `autoglm-cdc run --source mysql` over TLS with
# certificate verification against a MariaDB of its own that requires
# secure transport (require_secure_transport=ON), on a free loopback port.
# Checks: rows stream with mysql.ssl.mode=verify_identity; a wrong CA fails
# with a TLS error and a non-zero exit; a plain connection is refused; the
# password never appears in logs (text and JSON), errors or config dumps.
# (t_mysql_tls.sh covers every mysql.ssl.mode through the source API.)
#   CDC_BUILD=/work/build-x bash tests/integ/t_ops_tls_mysql.sh
. "$(dirname "$0")/lib.sh"
need cdc
need openssl
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
[ -x "$MARIADBD" ] && command -v mariadb-install-db >/dev/null || skip "no mariadbd"

C=$T/certs
mkdir -p "$C"
ossl() { openssl "$@" >/dev/null 2>&1 || fail "openssl $1 failed"; }
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=cdc test CA" -keyout "$C/ca.key" -out "$C/ca.pem"
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other CA" -keyout "$C/other.key" -out "$C/other.pem"
ossl req -newkey rsa:2048 -nodes -subj "/CN=db.invalid" -keyout "$C/server.key" -out "$C/server.csr"
printf 'subjectAltName=IP:127.0.0.1\n' >"$C/ext.cnf"
ossl x509 -req -in "$C/server.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" -CAcreateserial -days 2 \
    -extfile "$C/ext.cnf" -out "$C/server.pem"

D=$T/db
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
mariadb-install-db --no-defaults --datadir="$D" --auth-root-authentication-method=normal \
    --skip-test-db >"$T/install.log" 2>&1 || { tail "$T/install.log" >&2; fail "mariadb-install-db failed"; }
"$MARIADBD" --no-defaults --user="$(id -un)" --datadir="$D" --port="$PORT" --bind-address=127.0.0.1 \
    --socket="$T/my.sock" --pid-file="$T/my.pid" --log-error="$T/my.err" \
    --log-bin=mysql-bin --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL \
    --server-id=1 --ssl-ca="$C/ca.pem" --ssl-cert="$C/server.pem" --ssl-key="$C/server.key" \
    --require-secure-transport=ON --innodb-buffer-pool-size=16M </dev/null >/dev/null 2>&1 &
dbpid=$!
cleanup() {
    local rc=$?
    kill -TERM $dbpid 2>/dev/null
    wait $dbpid 2>/dev/null
    (exit $rc)
    _cdc_cleanup
}
trap cleanup EXIT
# root over the socket (require_secure_transport does not apply to it)
# (MYSQL_HOST from services.env would force TCP)
tsql() { env -u MYSQL_HOST mariadb --no-defaults --protocol=socket -S "$T/my.sock" -u root -N -B -e "$1"; }
wait_for 60 "our TLS MariaDB answers" tsql "SELECT 1"
[ "$(tsql "SELECT @@have_ssl")" = YES ] || { cat "$T/my.err" >&2; fail "TLS is not enabled on the test server"; }
PW='MyPw-4vW9cT2n'
tsql "CREATE USER cdc@'%' IDENTIFIED BY '$PW'; GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO cdc@'%';
      CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(20))"
tsql "INSERT INTO d.t VALUES (1, 'over tls')"
DSN="mysql://cdc:$PW@127.0.0.1:$PORT"

# run NAME EXIT ARGS...: the documented exit code exactly (a refusal is
# 78; 124 would be a run that hung until timeout killed it)
run() {
    local name=$1 want=$2 rc
    shift 2
    timeout 60 "$CDC" --source mysql --mysql-dsn "$DSN" --from beginning --sink stdout --pipeline "$name" \
        --state-dir "$T/state" --idle-exit 1500 "$@" >"$T/seen.$name.out" 2>"$T/seen.$name.err"
    rc=$?
    [ $rc = "$want" ] || { cat "$T/seen.$name.err" >&2; fail "$name: exit $rc, expected $want"; }
    log "$name: exit $rc"
}
run verify_identity 0 -X mysql.ssl.mode=verify_identity -X mysql.ssl.ca="$C/ca.pem" --log-format json
grep -q '"over tls"' "$T/seen.verify_identity.out" || fail "the row did not stream over TLS"
grep -q 'connected to MariaDB.*(TLS' "$T/seen.verify_identity.err" || grep -Eq 'connected to MariaDB.*\((TLS_|ECDHE|AES|CHACHA)' "$T/seen.verify_identity.err" \
    || { cat "$T/seen.verify_identity.err" >&2; fail "the connection did not report TLS"; }
python3 -c "import json,sys; [json.loads(l) for l in open(sys.argv[1])]" "$T/seen.verify_identity.err" || fail "JSON log lines"

run wrong_ca 78 -X mysql.ssl.mode=verify_identity -X mysql.ssl.ca="$C/other.pem"
grep -Eqi 'ssl|tls|certificate' "$T/seen.wrong_ca.err" || { cat "$T/seen.wrong_ca.err" >&2; fail "wrong_ca: the error does not mention TLS"; }
run plain 78 -X mysql.ssl.mode=disabled
# MariaDB 10.11 answers "Access denied" to a plain login of a TLS-only server
grep -Eqi 'secure transport|require_secure_transport|access denied' "$T/seen.plain.err" \
    || { cat "$T/seen.plain.err" >&2; fail "plain: the refusal does not say why"; }

# secrets in the DSN and in mysql.password: never printed
"$CDC" config --source mysql --mysql-dsn "$DSN" -X mysql.password="$PW" >"$T/seen.config" 2>&1
grep -q 'mysql.dsn = \*\*\*\*\*\*' "$T/seen.config" && grep -q 'mysql.password = \*\*\*\*\*\*' "$T/seen.config" \
    || { cat "$T/seen.config" >&2; fail "config does not mask the DSN / password"; }
if grep -l -e "$PW" "$T"/seen.*; then
    grep -n -e "$PW" "$T"/seen.* >&2
    fail "the password appears in the output above"
fi
log "mysql TLS ok"
