# SPDX-License-Identifier: Apache-2.0
"""Helpers for the PostgreSQL integration tests (tests/integ/t_pg_*.py).

Loads tests/services.env (CDC_SVC_ENV), talks to PostgreSQL with psql (no
Python driver needed), runs autoglm-cdc, and converts PostgreSQL text values
to the envelope's JSON values independently of the C decoder, so a replay
of the envelopes can be compared with SELECT.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

from dblib import BIN, ENVF, ROOT, fail, load_env, log, skip  # noqa: F401 (re-exported to the t_pg_* tests)

# The session settings the source forces on its connections.
SESSION = "-c timezone=UTC -c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3 -c bytea_output=hex"


class PG:
    def __init__(self):
        e = load_env()
        if not e.get("PGPORT"):
            skip("no PostgreSQL in %s (run tests/services.sh up postgres)" % ENVF)
        if not os.access(BIN, os.X_OK):
            skip("%s not built (set CDC_BUILD)" % BIN)
        self.host, self.port = e["PGHOST"], e["PGPORT"]
        self.user, self.password = e["PGUSER"], e["PGPASSWORD"]
        self.super, self.superpw = e.get("PG_SUPERUSER", "postgres"), e.get("PG_SUPERPASSWORD", "")
        r = subprocess.run(["pg_isready", "-q", "-h", self.host, "-p", self.port])
        if r.returncode != 0:
            skip("PostgreSQL on port %s does not answer" % self.port)
        self.db = "cdct_" + uuid.uuid4().hex[:8]
        self.tmp = tempfile.mkdtemp(prefix="cdc-pg-")
        self.slot = "s_" + self.db
        self.procs = []

    # -- SQL ------------------------------------------------------------
    def psql(self, sql, db=None, superuser=False, check=True):
        env = dict(os.environ, PGPASSWORD=self.superpw if superuser else self.password, PGOPTIONS=SESSION)
        r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t", "-h", self.host, "-p", self.port,
                            "-U", self.super if superuser else self.user, "-d", db or self.db],
                           input=sql, capture_output=True, text=True, env=env)
        if check and r.returncode != 0:
            fail("psql failed: %s\nSQL: %s" % (r.stderr.strip(), sql[:500]))
        return r.stdout

    def val(self, sql, **kw):
        return self.psql(sql, **kw).strip()

    def create_db(self):
        self.psql("CREATE DATABASE %s" % self.db, db="postgres")

    def drop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                  "WHERE database = '%s' AND NOT active" % self.db, db="postgres", check=False)
        self.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.db, db="postgres", check=False)
        if os.environ.get("KEEP_TMP") == "1":
            log("scratch kept: " + self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def dsn(self):
        return "host=%s port=%s user=%s password=%s dbname=%s" % (self.host, self.port, self.user, self.password, self.db)

    def slot_row(self):
        out = self.val("SELECT restart_lsn, confirmed_flush_lsn, active FROM pg_replication_slots "
                       "WHERE slot_name = '%s'" % self.slot)
        return out.split("|") if out else None

    def current_lsn(self):
        return self.val("SELECT pg_current_wal_lsn()")

    # -- autoglm-cdc ------------------------------------------------------
    def cdc_args(self, out, extra=(), state=None):
        return [BIN, "--source", "postgres", "--postgres-dsn", self.dsn(), "--sink", "file", "--output", out,
                "--state-dir", state or os.path.join(self.tmp, "state"), "-X", "postgres.slot=" + self.slot,
                "-X", "postgres.publication=p_" + self.db, "-X", "pipeline.name=" + self.db] + list(extra)

    def start_cdc(self, out, extra=(), state=None):
        errf = open(out + ".err", "ab")
        p = subprocess.Popen(self.cdc_args(out, extra, state), stdout=errf, stderr=errf)
        self.procs.append(p)
        return p

    def run_cdc(self, out, extra=(), timeout=120, state=None):
        r = subprocess.run(self.cdc_args(out, extra, state), capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stderr

    def wait_slot(self, p=None, secs=30):
        for _ in range(secs * 10):
            row = self.slot_row()
            if row and row[2] == "t":
                return
            if p is not None and p.poll() is not None:
                fail("autoglm-cdc exited with %s before streaming: %s" % (p.returncode, errtail(p)))
            time.sleep(0.1)
        fail("slot %s never became active" % self.slot)


def errtail(p):
    try:
        a = p.args
        out = a[a.index("--output") + 1]
        return open(out + ".err").read()[-2000:]
    except Exception:
        return "?"


def read_envelopes(path):
    evs = []
    if not os.path.exists(path):
        return evs
    for line in open(path):
        line = line.strip()
        if line:
            evs.append(json.loads(line))
    return evs


def replay(evs, key="id", state=None):
    """Apply envelopes to {table: {key: row}}; unchanged columns keep theirs."""
    state = {} if state is None else state
    for e in evs:
        pl, src = e["payload"], e["source"]
        tname = src["schema"] + "." + src["table"]
        t = state.setdefault(tname, {})
        op = pl["op"]
        if op == "t":
            t.clear()
        elif op in ("c", "r", "u"):
            row = dict(pl["after"])
            if op == "u" and pl.get("before") and pl["before"].get(key) not in (None, row.get(key)):
                t.pop(pl["before"][key], None)
            old = t.get(row[key], {})
            for c in pl.get("unchanged", []):
                row[c] = old.get(c, "<unchanged but unknown>")
            t[row[key]] = row
        elif op == "d":
            t.pop(pl["before"][key], None)
    return state


# -- text form -> envelope JSON value (independent of the C code) -----------

def parse_array(s):
    """PostgreSQL array text -> nested lists of (text | None)."""
    if s.startswith("["):
        s = s[s.index("=") + 1:]
    pos = 0

    def arr():
        nonlocal pos
        assert s[pos] == "{"
        pos += 1
        out = []
        if s[pos] == "}":
            pos += 1
            return out
        while True:
            if s[pos] == "{":
                out.append(arr())
            elif s[pos] == '"':
                pos += 1
                b = []
                while s[pos] != '"':
                    if s[pos] == "\\":
                        pos += 1
                    b.append(s[pos])
                    pos += 1
                pos += 1
                out.append("".join(b))
            else:
                st = pos
                while s[pos] not in ",}":
                    pos += 1
                tok = s[st:pos]
                out.append(None if tok.upper() == "NULL" else tok)
            if s[pos] == ",":
                pos += 1
                continue
            assert s[pos] == "}"
            pos += 1
            return out

    return arr()


def tstz_json(t):
    if not t[0].isdigit() or t.endswith(" BC"):
        return t  # infinity, BC: the text form is kept
    assert t.endswith("+00"), t
    return t[:-3].replace(" ", "T", 1) + "Z"


def scalar_json(kind, t):
    if kind == "int":
        return int(t)
    if kind == "numeric":
        return t
    if kind == "float":
        return t if t in ("NaN", "Infinity", "-Infinity") else float(t)
    if kind == "bool":
        return t == "t"
    if kind == "bytea":
        return base64.b64encode(bytes.fromhex(t[2:])).decode()
    if kind == "tstz":
        return tstz_json(t)
    if kind == "json":
        return json.loads(t)
    return t


def to_json(kind, t):
    """kind: int numeric float bool bytea tstz json text, or 'array:<kind>'."""
    if t is None:
        return None
    if kind.startswith("array:"):
        ek = kind[6:]

        def conv(x):
            if isinstance(x, list):
                return [conv(y) for y in x]
            return None if x is None else scalar_json(ek, x)
        return conv(parse_array(t))
    return scalar_json(kind, t)


def select_rows(pg, table, cols, key="id"):
    """{key: {col: text}}: each value in its type's output format (format's
    %s calls the output function; a ::text cast would not pad char(n) or
    print bool as t/f)."""
    obj = ", ".join("'%s', CASE WHEN %s IS NULL THEN NULL ELSE format('%%s', %s) END" % (c, c, c) for c in cols)
    out = pg.val("SELECT coalesce(json_agg(json_build_object(%s)), '[]') FROM %s" % (obj, table))
    rows = json.loads(out)
    return {int(r[key]): r for r in rows}


def same(a, b):
    if isinstance(a, float) and isinstance(b, (int, float)):
        return a == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b
