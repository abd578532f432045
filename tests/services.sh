#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/services.sh - start and stop the real servers the integration tests
# use: MariaDB (binlog in ROW/FULL/FULL metadata, GTID), PostgreSQL 15
# (wal_level=logical) and Apache Kafka (single KRaft node, broker and
# controller in one JVM, jars from Maven Central).
#
# Usage:
#   tests/services.sh up [mariadb] [postgres] [kafka]   (no name = all)
#   tests/services.sh down [NAME...]                     stop (by PID, waits)
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

# fixed credentials of the test servers (loopback only)
MY_USER=cdc MY_PASS=cdcpass MY_ROOT_PASS=rootpass
PG_USER=cdc PG_PASS=cdcpass PG_SUPER=postgres PG_SUPER_PASS=pgpass
DB=cdctest

ALL="mariadb postgres kafka"

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
        for s in $ALL; do
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

kafka_ready() {
    kcat -b "$KAFKA_BOOTSTRAP" -L -m 3 2>/dev/null | grep -q '1 brokers:'
}

kafka_running() {
    load_state kafka
    alive "${KAFKA_PID:-}" && [ "$(cat /proc/"$KAFKA_PID"/comm 2>/dev/null)" = java ]
}

kafka_start() {
    ensure_deps kafka
    mkdir -p "$KF_DIR"
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
        # --cluster-id=: an id that starts with "-" must not read as an option
        cid=$(python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
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

# ---------------------------------------------------------------------------

svc_do() {    # svc_do start|stop NAME
    case $2 in
    mariadb|mysql) if [ "$1" = start ]; then my_start; else my_stop; fi ;;
    postgres|postgresql|pg) if [ "$1" = start ]; then pg_start; else pg_stop; fi ;;
    kafka) if [ "$1" = start ]; then kafka_start; else kafka_stop; fi ;;
    *) die "unknown service '$2' (mariadb, postgres, kafka)" ;;
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
