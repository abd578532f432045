#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/integ/run.sh - run the integration tests against real servers.
#
# Usage: tests/integ/run.sh [PATTERN...]
#   Builds the helper programs (make integ-helpers in CDC_BUILD), then runs
#   every tests/integ/t_*.sh (bash) and t_*.py (python3), in name order,
#   or only those whose name contains one of the PATTERNs.
#   Expects the servers from `tests/services.sh up` (tests/services.env);
#   a test whose servers are missing or do not answer, or whose tools are
#   not installed, exits 77 and counts as skipped, unless
#   CDC_REQUIRE_SERVICES=1 (scripts/test), where it fails (exit 1).
#
# Environment:
#   CDC_BUILD        build directory with autoglm-cdc (default: build/)
#   CDC_SVC_ENV      services.env to use (default: tests/services.env)
#   CDC_INTEG_TIMEOUT  seconds per test before it is killed (default 1200)
#   CDC_INTEG_LOGS   directory for per-test logs (default $CDC_BUILD/integ-logs)
#   KEEP_TMP=1       tests keep their scratch directories
#   CDC_REQUIRE_SERVICES=1  a test that cannot run fails instead of skipping
#   CDC_TEST_SEED    seed of the randomised tests (default: a fresh one each)
#
# Prints one line per test (PASS/FAIL/SKIP with seconds), the log tail of
# each failure, and finally `N passed, N failed, N skipped` alone on a line.
# Exit status: 0 if nothing failed, 1 otherwise.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CDC_BUILD=${CDC_BUILD:-$ROOT/build}
export CDC_SVC_ENV=${CDC_SVC_ENV:-$ROOT/tests/services.env}
export CDC_BIN=${CDC_BIN:-$CDC_BUILD/autoglm-cdc}
TIMEOUT=${CDC_INTEG_TIMEOUT:-1200}
LOGS=${CDC_INTEG_LOGS:-$CDC_BUILD/integ-logs}
mkdir -p "$LOGS" || { echo "run.sh: cannot create $LOGS" >&2; exit 1; }

[ -f "$CDC_SVC_ENV" ] || echo "run.sh: warning: $CDC_SVC_ENV missing (tests/services.sh up); tests needing servers will $([ "${CDC_REQUIRE_SERVICES:-0}" = 1 ] && echo fail || echo skip)" >&2

tests=()
for f in "$ROOT"/tests/integ/t_*.sh "$ROOT"/tests/integ/t_*.py; do
    [ -f "$f" ] || continue
    name=$(basename "$f")
    if [ $# -gt 0 ]; then
        keep=0
        for p in "$@"; do case $name in *"$p"*) keep=1 ;; esac; done
        [ $keep = 1 ] || continue
    fi
    tests+=("$f")
done
[ ${#tests[@]} -gt 0 ] && mapfile -t tests < <(printf '%s\n' "${tests[@]}" | sort)

# the helper programs the tests run (tests/Makefile.inc: mysql_drive,
# kafka_produce_check, ...) are built by make, never by a test script
if [ -f "$CDC_BUILD/Makefile" ]; then
    make -C "$CDC_BUILD" -s integ-helpers >"$LOGS/integ-helpers.log" 2>&1 \
        || { tail -20 "$LOGS/integ-helpers.log" >&2
             echo "run.sh: make integ-helpers failed in $CDC_BUILD" >&2; exit 1; }
fi

pass=0 failn=0 skipn=0 failed=()
for f in "${tests[@]}"; do
    name=$(basename "$f")
    log=$LOGS/${name%.*}.log
    case $f in
    *.py) runner=(python3 -u "$f") ;;
    *)    runner=(bash "$f") ;;
    esac
    start=$(date +%s)
    (cd "$ROOT" && timeout -k 10 "$TIMEOUT" "${runner[@]}") >"$log" 2>&1 </dev/null
    rc=$?
    secs=$(( $(date +%s) - start ))
    case $rc in
    0)  pass=$((pass + 1)); echo "PASS: $name (${secs}s)" ;;
    77) skipn=$((skipn + 1)); echo "SKIP: $name (${secs}s) $(grep -m1 '^SKIP' "$log" | cut -c1-160)" ;;
    *)  failn=$((failn + 1)); failed+=("$name")
        [ $rc = 124 ] && echo "# $name: killed after ${TIMEOUT}s" >>"$log"
        echo "FAIL: $name (${secs}s, exit $rc) log: $log"
        tail -40 "$log" | sed 's/^/    /' ;;
    esac
done

[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $failn failed, $skipn skipped"
[ $failn = 0 ]
