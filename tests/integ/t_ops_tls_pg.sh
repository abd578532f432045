#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_ops_tls_pg.sh - the postgres source over TLS with certificate
# verification (libpq sslmode=verify-full + sslrootcert in postgres.dsn)
# against a PostgreSQL cluster of its own that accepts TLS connections only
# (ssl=on, hostssl in pg_hba, hostnossl rejected), on a free loopback port.
# Checks: changes stream over verify-full; a wrong CA, a host name not in
# the certificate and sslmode=disable are refused with a clear error and a
# non-zero exit; the password never appears in any output.
#   CDC_BUILD=/work/build-x bash tests/integ/t_ops_tls_pg.sh
. "$(dirname "$0")/lib.sh"
need cdc openssl curl
PGBIN=${PG_BINDIR:-}
[ -x "$PGBIN/initdb" ] || PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || skip "no initdb"

# --- certificates ------------------------------------------------------------
C=$T/certs
mkdir -p "$C"
ossl() { openssl "$@" >/dev/null 2>&1 || fail "openssl $1 failed"; }
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=cdc test CA" -keyout "$C/ca.key" -out "$C/ca.pem"
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other CA" -keyout "$C/other.key" -out "$C/other.pem"
ossl req -newkey rsa:2048 -nodes -subj "/CN=db.invalid" -keyout "$C/server.key" -out "$C/server.csr"
printf 'subjectAltName=IP:127.0.0.1\n' >"$C/ext.cnf"
ossl x509 -req -in "$C/server.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" -CAcreateserial -days 2 \
    -extfile "$C/ext.cnf" -out "$C/server.pem"

# --- our own TLS-only cluster -------------------------------------------------
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || skip "running as root without a postgres OS user"
    chmod 711 "$T"
fi
P=$T/pg
mkdir -p "$P/sock"
cp "$C/server.pem" "$C/server.key" "$P/"
chmod 600 "$P/server.key"
[ "$(id -u)" = 0 ] && chown -R postgres "$P"
as_pg "$PGBIN/initdb" -D "$P/data" -U postgres -E UTF8 --locale=C --auth-local=trust \
    --auth-host=reject >"$T/initdb.log" 2>&1 || { tail "$T/initdb.log" >&2; fail "initdb failed"; }
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
as_pg bash -c "cat >>'$P/data/postgresql.conf'" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$P/sock'
wal_level = logical
max_replication_slots = 4
max_wal_senders = 4
fsync = off
ssl = on
ssl_cert_file = '$P/server.pem'
ssl_key_file = '$P/server.key'
password_encryption = 'scram-sha-256'
EOF
as_pg bash -c "cat >'$P/data/pg_hba.conf'" <<EOF
local     all          all                  trust
hostssl   all          cdc   127.0.0.1/32   scram-sha-256
hostssl   replication  cdc   127.0.0.1/32   scram-sha-256
hostnossl all          all   0.0.0.0/0      reject
hostnossl replication  all   0.0.0.0/0      reject
EOF
as_pg "$PGBIN/pg_ctl" -D "$P/data" -l "$P/server.log" -w -t 60 start >"$T/pg_ctl.log" 2>&1 \
    || { cat "$P/server.log" >&2; fail "our PostgreSQL did not start"; }
cdcpid=
cleanup() {
    local rc=$?
    [ -n "$cdcpid" ] && kill -TERM "$cdcpid" 2>/dev/null && wait "$cdcpid" 2>/dev/null
    as_pg "$PGBIN/pg_ctl" -D "$P/data" -m immediate -w stop >/dev/null 2>&1
    (exit $rc)
    _cdc_cleanup
}
trap cleanup EXIT
psu() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -A -t -h "$P/sock" -p "$PORT" -U postgres -d "${2:-postgres}" -c "$1"; }
PW='PgPw-7hT2q9Lx'
psu "CREATE ROLE cdc LOGIN REPLICATION PASSWORD '$PW'" && psu "CREATE DATABASE d OWNER cdc" || fail "provisioning"
psu "SET ROLE cdc; CREATE TABLE t (id int PRIMARY KEY, v text)" d || fail "create table"
psu "CREATE PUBLICATION autoglm_cdc FOR TABLE t" d || fail "create publication"

DSN="host=127.0.0.1 port=$PORT dbname=d user=cdc password=$PW sslmode=verify-full sslrootcert=$C/ca.pem"

# refusals: refuse NAME DSN PATTERN -> must exit 69 (the source cannot
# connect; not 124, a retry loop killed by timeout) and say why
refuse() {
    local name=$1 dsn=$2 pat=$3 rc
    timeout 60 "$CDC" --source postgres --postgres-dsn "$dsn" --sink stdout --pipeline "$name" \
        --state-dir "$T/state" --idle-exit 500 >"$T/seen.$name.out" 2>"$T/seen.$name.err"
    rc=$?
    [ $rc = 69 ] || { cat "$T/seen.$name.err" >&2; fail "$name: exit $rc, expected 69 (source unavailable)"; }
    grep -Eqi "$pat" "$T/seen.$name.err" || { cat "$T/seen.$name.err" >&2; fail "$name: the error does not say '$pat'"; }
    log "$name: exit $rc: $(grep -m1 -i error "$T/seen.$name.err" | cut -c1-200)"
}
refuse wrong_ca "${DSN/ca.pem/other.pem}" "certificate verify failed"
refuse wrong_host "${DSN/host=127.0.0.1/host=localhost}" "does not match host name"
refuse no_tls "${DSN/sslmode=verify-full/sslmode=disable}" "no encryption|pg_hba.conf rejects"
# a CA without sslmode: autoglm-cdc verifies by default (libpq alone would
# use sslmode=prefer and check nothing)
nomode=${DSN/sslmode=verify-full /}
refuse default_verifies "${nomode/ca.pem/other.pem}" "certificate verify failed"
refuse no_rootcert "host=127.0.0.1 port=$PORT dbname=d user=cdc password=$PW sslmode=verify-full sslrootcert=$T/missing.pem" \
    "root certificate file .* does not exist|could not read root certificate"

# --- changes over verify-full ----------------------------------------------------
HPORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$CDC" --source postgres --postgres-dsn "$DSN" --sink stdout --pipeline tlsok --state-dir "$T/state" \
    -X log.format=json --http "127.0.0.1:$HPORT" >"$T/seen.ok.out" 2>"$T/seen.ok.err" &
cdcpid=$!
started() { grep -q "source postgres started" "$T/seen.ok.err"; }
wait_for 60 "the postgres source starts over TLS" started
ssl_used=$(psu "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'cdc' AND s.ssl AND s.version LIKE 'TLS%'")
[ "${ssl_used:-0}" -ge 1 ] || fail "no TLS session of cdc in pg_stat_ssl"
psu "INSERT INTO t VALUES (1, 'over tls')" d
streamed() { grep -q '"over tls"' "$T/seen.ok.out"; }
wait_for 30 "the row streamed over TLS" streamed
# the slot's retained WAL, read over its own verify-full libpq session by
# the gauge's thread, which the first scrape wakes
slot_gauge() {
    curl -sf "http://127.0.0.1:$HPORT/metrics" >"$T/seen.metrics" || fail "scrape /metrics"
    grep -Eq '^autoglm_cdc_pg_slot_retained_wal_bytes [0-9]+$' "$T/seen.metrics"
}
wait_for 30 "the slot gauge in /metrics" slot_gauge
grep -q '^autoglm_cdc_source_events_total{table="public.t",op="c"} 1$' "$T/seen.metrics" || fail "insert not counted"
curl -sf "http://127.0.0.1:$HPORT/status" >"$T/seen.status" || fail "/status"
kill -TERM $cdcpid
wait $cdcpid || fail "pipeline exit $? after SIGTERM"
cdcpid=

# --- the password appears nowhere -------------------------------------------------
"$CDC" config --source postgres --postgres-dsn "$DSN" >"$T/seen.config" 2>&1
grep -q 'postgres.dsn = \*\*\*\*\*\*' "$T/seen.config" || { cat "$T/seen.config" >&2; fail "config does not mask postgres.dsn"; }
if grep -l -e "$PW" "$T"/seen.*; then
    grep -n -e "$PW" "$T"/seen.* >&2
    fail "the password appears in the output above"
fi
log "postgres TLS ok"
