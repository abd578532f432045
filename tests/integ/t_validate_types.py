#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""validate checks types: every source column copied into a field.

A seeded generator draws source columns (MariaDB and PostgreSQL spellings:
integers, booleans, decimal(p,s) and unbounded numeric, double, text,
binary, times, JSON) and a target field type for each (text, bigint,
numeric(P,S), numeric, double, boolean, timestamptz, date, jsonb).  The
verdict for each pair is computed here from the rules of docs/MAPPINGS.md
(precision and scale, binary into text, text into boolean or number, ...),
and `validate` must flag exactly the incompatible pairs, each at the
mapping line of its field, with exit 78 (0 when every pair fits).

Also: the README's example pipelines still validate against their live
source (no false alarms).

Env: CDC_VT_SEED (default: time), CDC_VT_COLS (default 60).
Exit 0 pass, 1 fail, 77 skip.
"""
import os
import random
import re
import subprocess
import tempfile
import time

import dblib
from dblib import BIN, E, fail, log, my

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

SEED = int(os.environ.get("CDC_VT_SEED", str(int(time.time()))))
NCOLS = int(os.environ.get("CDC_VT_COLS", "60"))
rnd = random.Random(SEED)
log("seed %d" % SEED)
ID = "%d" % os.getpid()
MYDB = "vt_" + ID
PGDB = "vt_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-vt-")


def cleanup():
    dblib.cleanup((), TMP, pg_dbs=[PGDB], my_dbs=[MYDB])


dblib.on_fail(cleanup)


def int_digits(ty):
    for name, d in (("tinyint", 3), ("smallint", 5), ("mediumint", 8), ("bigint", 19),
                    ("integer", 10), ("int", 10)):
        if ty.startswith(name):
            return d + (1 if name == "bigint" and "unsigned" in ty else 0)
    return 0


def source_types(engine):
    """(declared type, the type validate sees) pairs for one column."""
    p = rnd.randint(1, 40)
    s = rnd.randint(0, min(p, 12))
    if engine == "mysql":
        p = min(p, 65)
        s = min(s, 30, p)
        return rnd.choice([
            ("TINYINT(1)", "tinyint(1)"), ("TINYINT", "tinyint"), ("SMALLINT", "smallint"),
            ("INT", "int"), ("BIGINT", "bigint"), ("BIGINT UNSIGNED", "bigint unsigned"),
            ("DECIMAL(%d,%d)" % (p, s), "decimal(%d,%d)" % (p, s)),
            ("DOUBLE", "double"), ("VARCHAR(20)", "varchar"), ("TEXT", "text"),
            ("BLOB", "blob"), ("VARBINARY(16)", "varbinary"), ("DATETIME(6)", "datetime"),
            ("DATE", "date"), ("JSON", "longtext")])  # MariaDB: JSON is LONGTEXT
    return rnd.choice([
        ("boolean", "boolean"), ("smallint", "smallint"), ("integer", "integer"), ("bigint", "bigint"),
        ("numeric(%d,%d)" % (p, s), "numeric(%d,%d)" % (p, s)), ("numeric", "numeric"),
        ("double precision", "double"), ("text", "text"), ("varchar(20)", "varchar"),
        ("bytea", "bytea"), ("timestamptz", "timestamptz"), ("date", "date"), ("jsonb", "jsonb")])


def field_type():
    P = rnd.randint(1, 60)
    S = rnd.randint(0, min(P, 12))
    return rnd.choice(["text", "bigint", "'numeric(%d,%d)'" % (P, S), "numeric", "double", "boolean",
                       "timestamptz", "date", "jsonb"])


def klass(t):
    """The broad class of a source type (validate's view)."""
    if t in ("tinyint(1)", "boolean"):
        return "bool"
    if int_digits(t) or t.startswith(("decimal", "numeric")) or t in ("double",):
        return "num"
    if t in ("varchar", "text", "longtext"):
        return "text"
    if t in ("datetime", "timestamptz", "date"):
        return "time"
    if t in ("json", "jsonb"):
        return "json"
    if t in ("blob", "varbinary", "bytea"):
        return "bytes"
    raise AssertionError(t)


def fits(src, fld):
    """Expected verdict: True when every value of src is stored unchanged."""
    c = klass(src)
    fld = fld.strip("'")
    m = re.match(r"numeric\((\d+),(\d+)\)", src) or re.match(r"decimal\((\d+),(\d+)\)", src)
    p, s = (int(m.group(1)), int(m.group(2))) if m else (None, None)
    unbounded = src == "numeric"
    approx = src == "double"
    digits = 1 if c == "bool" else int_digits(src)
    if fld == "text":
        return c != "bytes"
    if fld == "boolean":
        return c in ("num", "bool")
    if fld in ("bigint", "numeric", "double") or fld.startswith("numeric("):
        if c not in ("num", "bool"):
            return False
        if fld == "bigint":
            if approx or (p is not None and s > 0):
                return False
            return not (unbounded or (p is not None and p - s > 18) or digits > 19)
        if fld == "double":
            return not ((p is not None and p > 15) or unbounded or digits > 15)
        if fld == "numeric":
            return True
        P, S = map(int, re.match(r"numeric\((\d+),(\d+)\)", fld).groups())
        if approx or unbounded:
            return False
        if p is not None:
            return s <= S and p - s <= P - S
        return digits <= P - S
    if fld == "timestamptz":
        return c in ("time", "num", "text")
    if fld == "date":
        return c in ("time", "text")
    if fld == "jsonb":
        return c in ("json", "text")
    raise AssertionError(fld)


def run_case(engine):
    cols = []
    for i in range(NCOLS):
        decl, seen = source_types(engine)
        cols.append(("c%d" % i, decl, seen, field_type()))
    if engine == "mysql":
        my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; CREATE TABLE %s.src (id INT PRIMARY KEY, %s)"
           % (MYDB, MYDB, MYDB, ", ".join("%s %s" % (c, d) for c, d, _, _ in cols)))
        src_db = MYDB
    else:
        dblib.pg("CREATE TABLE IF NOT EXISTS public.src_%s (id int PRIMARY KEY)" % ID, PGDB)
        dblib.pg("DROP TABLE public.src_%s; CREATE TABLE public.src_%s (id int PRIMARY KEY, %s)"
                 % (ID, ID, ", ".join("%s %s" % (c, d) for c, d, _, _ in cols)), PGDB)
        src_db = "public"
    table = "src" if engine == "mysql" else "src_" + ID
    lines = ["sources:", "  app%s: {priority: 1}" % ID, "targets:", "  w:", "    table: public.w_%s" % ID,
             "    key: id", "    fields:", "      id: bigint"]
    fline = {}
    for c, _, _, ft in cols:
        lines.append("      f_%s: {type: %s, owner: app%s}" % (c, ft, ID))
    lines += ["mappings:", "  - source: app%s" % ID, "    table: %s.%s" % (src_db, table), "    target: w",
              "    key: {id: id}", "    fields:"]
    for c, _, _, _ in cols:
        lines.append("      f_%s: %s" % (c, c))
        fline[len(lines)] = c
    mapf = os.path.join(TMP, "map_%s.yaml" % engine)
    open(mapf, "w").write("\n".join(lines) + "\n")
    if engine == "mysql":
        srcargs = ["--source", "mysql", "--mysql-dsn",
                   "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"])]
    else:
        srcargs = ["--source", "postgres", "--postgres-dsn", dblib.pg_dsn(PGDB)]
    r = subprocess.run([BIN, "validate", "-X", "mapping.files=" + mapf, "-X", "application_id=app" + ID] + srcargs,
                       capture_output=True, text=True)
    flagged = {}
    for ln in r.stderr.splitlines():
        m = re.match(re.escape(mapf) + r":(\d+):\d+: type mismatch: (.*)", ln)
        if m:
            flagged[fline.get(int(m.group(1)), "?")] = m.group(2)
    want = {c for c, _, seen, ft in cols if not fits(seen, ft)}
    for c, decl, seen, ft in cols:
        if (c in want) != (c in flagged):
            fail("%s: column %s %s -> field %s: expected %s, validate said %s\n%s"
                 % (engine, c, decl, ft, "a mismatch" if c in want else "fine",
                    flagged.get(c, "nothing"), r.stderr[-3000:]))
    if r.returncode != (78 if want else 0):
        fail("%s: validate exit %d with %d mismatches\n%s" % (engine, r.returncode, len(want), r.stderr[-2000:]))
    for c in want:
        if "change the field's type" not in flagged[c]:
            fail("%s: the mismatch of %s has no remedy: %s" % (engine, c, flagged[c]))
    log("%s: %d columns, %d mismatches flagged at their lines, exit %d"
        % (engine, NCOLS, len(want), r.returncode))


dblib.pg("SELECT 1", "postgres", superuser=True)
dblib.pg("DROP DATABASE IF EXISTS %s" % PGDB, "postgres", superuser=True)
dblib.pg("CREATE DATABASE %s OWNER %s" % (PGDB, E["PGUSER"]), "postgres", superuser=True)
for rep in range(3):
    run_case("mysql")
    run_case("postgres")

# a MySQL wide table holds DECIMAL(65,30) at most (PostgreSQL: 1000 digits)
wide = os.path.join(TMP, "wide.yaml")
open(wide, "w").write("sources:\n  s: {priority: 1}\ntargets:\n  w:\n    table: w_%s\n    key: id\n    fields:\n"
                      "      id: bigint\n      a: {type: 'numeric(65,30)', owner: s}\n"
                      "      b: {type: 'numeric(66,2)', owner: s}\n      c: {type: 'numeric(40,31)', owner: s}\n"
                      "mappings:\n  - source: s\n    table: %s.t\n    target: w\n    key: {id: id}\n"
                      "    fields: {a: a, b: b, c: c}\n" % (ID, MYDB))
r = subprocess.run([BIN, "validate", "-X", "mapping.files=" + wide, "-X", "mysql_sink.dsn=mysql://root:%s@127.0.0.1:%s/%s"
                    % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], MYDB)], capture_output=True, text=True)
flag = sorted(re.findall(r"field '(\w)' is numeric\(\d+,\d+\), but a MySQL DECIMAL", r.stderr))
if r.returncode != 78 or flag != ["b", "c"]:
    fail("MySQL DECIMAL limits: exit %d, flagged %s\n%s" % (r.returncode, flag, r.stderr[-1500:]))
cleanup()
print("PASS")
