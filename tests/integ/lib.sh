# SPDX-License-Identifier: Apache-2.0
# tests/integ/lib.sh - helpers for integration test scripts (bash).
#
# Source it at the top of a tests/integ/t_*.sh script:
#     . "$(dirname "$0")/lib.sh"
#     need mariadb kafka curl     # exit 77 (SKIP) unless they answer
#
# Skips: need() and skip() exit 77, except under CDC_REQUIRE_SERVICES=1
# (set by scripts/test) where a skip is a failure (exit 1): a server that
# does not answer or a tool that is missing turns the run red.  See
# tests/README.md.
#
# It loads tests/services.env (written by tests/services.sh up; override the
# path with CDC_SVC_ENV), and sets:
#     ROOT      repository root
#     BUILD     build directory holding autoglm-cdc (CDC_BUILD, default
#               $ROOT/build)
#     CDC       path of the autoglm-cdc binary
#     T         a fresh scratch directory for this test, removed on exit
#               unless KEEP_TMP=1
# Exit codes of a test script: 0 pass, 77 skip, anything else fail.

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${CDC_BUILD:-$ROOT/build}
CDC=${CDC_BIN:-$BUILD/autoglm-cdc}
CDC_SVC_ENV=${CDC_SVC_ENV:-$ROOT/tests/services.env}
export ROOT BUILD CDC CDC_SVC_ENV

if [ -f "$CDC_SVC_ENV" ]; then
    # shellcheck disable=SC1090
    . "$CDC_SVC_ENV"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/cdc-integ.XXXXXX")
_cdc_cleanup() {
    local rc=$?
    if [ "${KEEP_TMP:-0}" = 1 ] || [ $rc != 0 ] && [ $rc != 77 ]; then
        echo "# scratch kept: $T" >&2
    else
        rm -rf "$T"
    fi
    return $rc
}
trap _cdc_cleanup EXIT

# --- outcome -------------------------------------------------------------
log()  { echo "# $*" >&2; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# skip REASON: the test cannot run here (exit 77); under
# CDC_REQUIRE_SERVICES=1 it must run, so this fails instead.
skip() {
    if [ "${CDC_REQUIRE_SERVICES:-0}" = 1 ]; then
        echo "FAIL: cannot run (CDC_REQUIRE_SERVICES=1 forbids skipping): $*" >&2
        exit 1
    fi
    echo "SKIP: $*" >&2
    exit 77
}

# check CONDITION-DESCRIPTION CMD...: run CMD, fail with the description
# if it does not succeed.
check() { local d=$1; shift; "$@" || fail "$d"; }

# --- services ------------------------------------------------------------
# need mariadb|postgres|kafka|cdc|helper:NAME|TOOL...: skip the test unless
# each server answers, the binary and the helper programs
# ($BUILD/tests/integ/NAME, `make integ-helpers`) are built and each TOOL
# is on PATH (scripts/deps.sh installs every tool a test names).
need() {
    local s
    for s in "$@"; do
        case $s in
        mariadb|mysql)
            [ -n "${MYSQL_PORT:-}" ] || skip "no MariaDB in $CDC_SVC_ENV (run tests/services.sh up mariadb)"
            my_root -e 'SELECT 1' >/dev/null 2>&1 || skip "MariaDB on port $MYSQL_PORT does not answer" ;;
        postgres|pg)
            [ -n "${PGPORT:-}" ] || skip "no PostgreSQL in $CDC_SVC_ENV (run tests/services.sh up postgres)"
            "${PG_BINDIR:-/usr/bin}/pg_isready" -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null \
                || pg_isready -q -h "$PGHOST" -p "$PGPORT" || skip "PostgreSQL on port $PGPORT does not answer" ;;
        kafka)
            [ -n "${KAFKA_BOOTSTRAP:-}" ] || skip "no Kafka in $CDC_SVC_ENV (run tests/services.sh up kafka)"
            kcat -b "$KAFKA_BOOTSTRAP" -L -m 5 >/dev/null 2>&1 || skip "Kafka at $KAFKA_BOOTSTRAP does not answer" ;;
        cdc|autoglm-cdc)
            [ -x "$CDC" ] || skip "$CDC not built (set CDC_BUILD)" ;;
        helper:*)
            # an integration helper program (tests/Makefile.inc)
            [ -x "$BUILD/tests/integ/${s#helper:}" ] \
                || skip "$BUILD/tests/integ/${s#helper:} not built (make -C $BUILD integ-helpers)" ;;
        *)
            command -v "$s" >/dev/null 2>&1 || skip "$s not installed (scripts/deps.sh installs it)" ;;
        esac
    done
}

# --- MariaDB -------------------------------------------------------------
# my_root [mariadb args...]: the mariadb client as root over TCP (batch mode)
my_root() {
    mariadb --no-defaults --protocol=tcp -h "$MYSQL_HOST" -P "$MYSQL_PORT" \
        -u "${MYSQL_ROOT_USER:-root}" -p"${MYSQL_ROOT_PASSWORD:-}" -N -B "$@"
}
# my_user [args...]: the same as the replication user (cdc)
my_user() {
    mariadb --no-defaults --protocol=tcp -h "$MYSQL_HOST" -P "$MYSQL_PORT" \
        -u "$MYSQL_USER" -p"$MYSQL_PASSWORD" -N -B "$@"
}
# my_sql "SQL" [db]: run SQL as root, print tab-separated rows, no header
my_sql() { my_root ${2:+"$2"} -e "$1"; }
# my_val "SQL" [db]: the first column of the first row
my_val() { my_sql "$1" "${2:-}" | head -1 | cut -f1; }
# my_fresh_db NAME: drop and create a database (utf8mb4)
my_fresh_db() { my_sql "DROP DATABASE IF EXISTS \`$1\`; CREATE DATABASE \`$1\` CHARACTER SET utf8mb4"; }
# my_binlog_pos: "FILE POS" of the current end of the binlog
my_binlog_pos() { my_sql "SHOW BINLOG STATUS" | cut -f1,2 | tr '\t' ' '; }
# my_gtid: current gtid_binlog_pos
my_gtid() { my_val "SELECT @@gtid_binlog_pos"; }
# my_dsn: mysql://user:pass@host:port for autoglm-cdc --mysql-dsn
my_dsn() { echo "mysql://$MYSQL_USER:$MYSQL_PASSWORD@$MYSQL_HOST:$MYSQL_PORT"; }

# --- PostgreSQL ----------------------------------------------------------
# pg_sql "SQL" [db]: as the cdc role, unaligned, tuples only
pg_sql() {
    psql -X -q -v ON_ERROR_STOP=1 -A -t -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" \
        -d "${2:-$PGDATABASE}" -c "$1"
}
# pg_super "SQL" [db]: as the superuser
pg_super() {
    PGPASSWORD=$PG_SUPERPASSWORD psql -X -q -v ON_ERROR_STOP=1 -A -t -h "$PGHOST" \
        -p "$PGPORT" -U "$PG_SUPERUSER" -d "${2:-$PGDATABASE}" -c "$1"
}

# --- Kafka ---------------------------------------------------------------
# kafka_count TOPIC: number of messages in TOPIC (sum of high watermarks)
kafka_count() {
    kcat -b "$KAFKA_BOOTSTRAP" -C -t "$1" -o beginning -e -q -f '.\n' 2>/dev/null | wc -l
}
# kafka_dump TOPIC FILE [format]: consume the whole topic into FILE
kafka_dump() {
    kcat -b "$KAFKA_BOOTSTRAP" -C -t "$1" -o beginning -e -q -f "${3:-%s\n}" >"$2"
}
# kafka_create TOPIC PARTITIONS: create a topic with N partitions (topics
# made by auto-creation get 1); uses Kafka's own admin tool (JVM, ~2 s).
kafka_create() {
    java -Xmx256m -Dlog4j.configuration="file:$KAFKA_DIR/tools-log4j.properties" \
        -cp "$KAFKA_JARS/*" org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BOOTSTRAP" \
        --create --if-not-exists --topic "$1" --partitions "${2:-1}" --replication-factor 1 >/dev/null
}

# --- waiting -------------------------------------------------------------
# wait_for SECONDS DESCRIPTION CMD...: poll CMD every 0.2 s until it
# succeeds; fail with DESCRIPTION after SECONDS.
wait_for() {
    local secs=$1 desc=$2 i
    shift 2
    for ((i = 0; i < secs * 5; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    fail "timed out after ${secs}s waiting for: $desc"
}

# services CMD...: run tests/services.sh (restart mariadb, stop kafka, ...)
# and reload the environment it writes.
services() {
    "$ROOT/tests/services.sh" "$@" || fail "tests/services.sh $* failed"
    # shellcheck disable=SC1090
    . "$CDC_SVC_ENV"
}
