#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# scripts/deps.sh - install the Debian packages autoglm-cdc needs to build
# and to run its full test suite (compilers, libraries, MariaDB,
# PostgreSQL 15, Java + Maven for the Kafka broker, and every tool a test
# calls: kcat, valgrind, curl, the zstd CLI, openssl, nm).  scripts/test
# fails a test whose tool is missing, so a tool a test starts to use
# belongs in PKGS below.
#
# Only packages that are missing are installed; when everything is present
# the script prints nothing and exits 0, so callers may run it every time.
# Works as root (CI, fresh Debian 12); as another user it uses sudo when it
# can, and otherwise prints the apt-get command to run.
#
# Usage: scripts/deps.sh [--check]
#   --check   only report what is missing (exit 1 if anything is)
set -u

check_only=0
[ "${1:-}" = "--check" ] && check_only=1

PKGS="build-essential autoconf automake libtool pkg-config
      libmariadb-dev librdkafka-dev libyajl-dev libzstd-dev libyaml-dev libmicrohttpd-dev bc
      libpq-dev zlib1g-dev
      librabbitmq-dev libmosquitto-dev libcurl4-openssl-dev libxml2-dev libssl-dev libjwt-dev python3-h2
      rabbitmq-server mosquitto mosquitto-clients libxml2-utils
      mariadb-server mariadb-client postgresql postgresql-client
      clang kcat maven python3 valgrind procps ca-certificates chromium prometheus
      systemd man-db debhelper lintian
      curl zstd openssl binutils coreutils"

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed'
}

# Java: the Kafka broker needs a JRE >= 11 (17 preferred). Accept any java
# already on PATH that is new enough; otherwise pick the first package apt
# knows about.
java_ok() {
    command -v java >/dev/null 2>&1 || return 1
    local v
    v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
    [ -n "$v" ] && [ "$v" -ge 11 ]
}

missing=""
for p in $PKGS; do
    installed "$p" || missing="$missing $p"
done
need_java=0
java_ok || need_java=1

if [ -z "$missing" ] && [ $need_java = 0 ]; then
    exit 0
fi

if [ $check_only = 1 ]; then
    echo "deps: missing:$missing$([ $need_java = 1 ] && echo ' (a Java >= 11 runtime)')"
    exit 1
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "deps: missing packages:$missing" >&2
        echo "deps: run as root: apt-get install -y$missing openjdk-17-jre-headless" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "deps: apt-get update" >&2
$SUDO apt-get update -qq >/dev/null || { echo "deps: apt-get update failed" >&2; exit 1; }

if [ $need_java = 1 ]; then
    for j in openjdk-17-jre-headless default-jre-headless openjdk-21-jre-headless; do
        if apt-cache policy "$j" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            missing="$missing $j"
            break
        fi
    done
fi

# Do not let package scripts start system-wide mariadb/postgresql daemons:
# the tests start their own servers on free ports (tests/services.sh).
# policy-rc.d exit 101 = "action forbidden" for invoke-rc.d.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null && $SUDO chmod 755 $policy && made_policy=1
fi

echo "deps: installing:$missing" >&2
rc=0
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/tmp/deps-apt.$$.log 2>&1 || rc=$?
[ $made_policy = 1 ] && $SUDO rm -f $policy
if [ $rc != 0 ]; then
    tail -30 /tmp/deps-apt.$$.log >&2
    echo "deps: apt-get install failed (exit $rc); full log: /tmp/deps-apt.$$.log" >&2
    exit 1
fi
rm -f /tmp/deps-apt.$$.log
echo "deps: done" >&2
exit 0
