#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Charsets of every column in any column order (issue 12, item 7).

The TABLE_MAP charset metadata lists one charset per "character" column
(MariaDB and MySQL pick them by type: CHAR, VARCHAR, TEXT/BLOB, JSON on
MariaDB, GEOMETRY); a type missed or added there shifts the charset of every
later column, and text came out as base64.

On the real MariaDB, a seeded generator (CDC_TEST_SEED) creates tables whose
columns are a random order of every type class -- CHAR/VARCHAR/TEXT in
latin1, utf8mb3, utf8mb4, ucs2 and binary, ENUM and SET in several charsets,
GEOMETRY/POINT/LINESTRING, JSON, BLOB, BINARY, VARBINARY, BIT, UUID,
numbers and temporal types -- with random table default charsets (so the
server writes both the DEFAULT_CHARSET and the COLUMN_CHARSET forms), fills
them with text of each charset's repertoire (emoji only where utf8mb4 holds
them, random bytes for binary), updates some rows, and then checks the final
rows from the envelopes against SELECT, value by value, both
  * live: autoglm-cdc --source mysql over the window, and
  * offline: autoglm-cdc decode over the binlog files of the window.
Exit 0 pass, 1 fail, 77 skip.
"""
import base64
import json
import os
import random
import shutil
import subprocess
import tempfile

import dblib
from dblib import BIN, E, fail, log, my

dblib.need("MYSQL_PORT", "MYSQL_DATADIR", what="MariaDB")
SEED = dblib.test_seed()  # CDC_TEST_SEED
R = random.Random(SEED)
DB = "cdc_cs_%d" % os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-cs.")
dblib.on_fail(lambda: (my("DROP DATABASE IF EXISTS %s" % DB, check=False), shutil.rmtree(TMP, True)))

CHARSETS = ["latin1", "utf8mb3", "utf8mb4", "ucs2", "binary"]
REPERTOIRE = {
    "latin1": "aZ09 ,;'\"\\éÿŸ€ñßÆ",
    "utf8mb3": "aZ09 ,;'\"\\é€中文жΩ",
    "utf8mb4": "aZ09 ,;'\"\\é€中ж😀🎉",
    "ucs2": "aZ09 ,;'\"\\é€中жΩ",
}
ENUM_MEMBERS = ["a", "é", "zz", "Ÿ"]


def text(cs, n):
    return "".join(R.choice(REPERTOIRE[cs]) for _ in range(R.randint(0, n)))


def column(i):
    """A random column: (name, SQL type, kind, charset)."""
    name = "c%d" % i
    k = R.choice(["char", "char", "char", "char", "enum", "set", "geom", "json", "blob", "bin",
                  "bit", "uuid", "num", "time"])
    if k == "char":
        cs = R.choice(CHARSETS)
        t = R.choice(["CHAR(%d)" % R.randint(1, 12), "VARCHAR(%d)" % R.randint(1, 300), "TINYTEXT",
                      "TEXT", "MEDIUMTEXT", "LONGTEXT"])
        return name, "%s CHARACTER SET %s" % (t, cs), k, cs
    if k in ("enum", "set"):
        cs = R.choice(["latin1", "utf8mb3", "utf8mb4", "ucs2"])
        members = ",".join("'%s'" % m for m in ENUM_MEMBERS)
        return name, "%s(%s) CHARACTER SET %s" % (k.upper(), members, cs), k, cs
    if k == "geom":
        return name, R.choice(["GEOMETRY", "POINT", "LINESTRING"]), k, "binary"
    if k == "json":
        return name, "JSON", k, "utf8mb4"
    if k == "blob":
        return name, R.choice(["TINYBLOB", "BLOB", "MEDIUMBLOB"]), k, "binary"
    if k == "bin":
        return name, R.choice(["BINARY(%d)" % R.randint(1, 8), "VARBINARY(%d)" % R.randint(1, 40)]), k, "binary"
    if k == "bit":
        return name, "BIT(%d)" % R.randint(1, 64), k, None
    if k == "uuid":
        return name, "UUID", k, None
    if k == "num":
        return name, R.choice(["INT", "BIGINT UNSIGNED", "DECIMAL(10,3)", "SMALLINT"]), k, None
    return name, R.choice(["DATETIME(3)", "DATE", "TIME", "YEAR"]), k, None


def hexlit(b):
    return "X'%s'" % b.hex() if b else "''"


def value(col):
    """(SQL literal, kept for nothing: the check reads SELECT)"""
    name, sqlt, k, cs = col
    if R.random() < 0.12:
        return "NULL"
    if k == "char":
        n = int(sqlt.split("(")[1].split(")")[0]) if "(" in sqlt.split(" ")[0] else 40
        if cs == "binary":
            return hexlit(bytes(R.randrange(256) for _ in range(R.randint(0, min(n, 30)))))
        return "CONVERT(%s USING utf8mb4)" % hexlit(text(cs, min(n, 30)).encode())
    if k == "enum":
        return "CONVERT(%s USING utf8mb4)" % hexlit(R.choice(ENUM_MEMBERS).encode())
    if k == "set":
        pick = [m for m in ENUM_MEMBERS if R.random() < 0.5]
        return "CONVERT(%s USING utf8mb4)" % hexlit(",".join(pick).encode())
    if k == "geom":
        x, y = R.randint(-90, 90), R.randint(-90, 90)
        if sqlt == "LINESTRING" or (sqlt == "GEOMETRY" and R.random() < 0.5):
            return "ST_GeomFromText('LINESTRING(%d %d,%d %d)')" % (x, y, y, x)
        return "ST_GeomFromText('POINT(%d %d)')" % (x, y)
    if k == "json":
        doc = {"k%d" % R.randint(0, 3): text("utf8mb4", 6), "n": R.randint(-5, 5), "l": [1, None, True]}
        # MariaDB keeps JSON text as written: raw newlines must not split
        # the envelope's line
        txt = json.dumps(doc, ensure_ascii=False, indent=R.choice([None, 2, "\t"]))
        return "CONVERT(%s USING utf8mb4)" % hexlit(txt.encode())
    if k == "blob":
        return hexlit(bytes(R.randrange(256) for _ in range(R.randint(0, 60))))
    if k == "bin":
        n = int(sqlt.split("(")[1].rstrip(")"))
        return hexlit(bytes(R.randrange(256) for _ in range(R.randint(0, n))))
    if k == "bit":
        bits = int(sqlt[4:-1])
        return "b'%s'" % "".join(R.choice("01") for _ in range(bits))
    if k == "uuid":
        return "UUID()"
    if sqlt == "INT":
        return str(R.randint(-2 ** 31, 2 ** 31 - 1))
    if sqlt == "SMALLINT":
        return str(R.randint(-32768, 32767))
    if sqlt.startswith("BIGINT"):
        return str(R.randint(0, 2 ** 64 - 1))
    if sqlt.startswith("DECIMAL"):
        return "%d.%03d" % (R.randint(-9999999, 9999999), R.randint(0, 999))
    if sqlt == "YEAR":
        return str(R.randint(1901, 2155))
    if sqlt == "TIME":
        return "'%d:%02d:%02d'" % (R.randint(-838, 838), R.randint(0, 59), R.randint(0, 59))
    if sqlt == "DATE":
        return "'%04d-%02d-%02d'" % (R.randint(1000, 9999), R.randint(1, 12), R.randint(1, 28))
    return "'%04d-%02d-%02d %02d:%02d:%02d.%03d'" % (R.randint(1000, 9999), R.randint(1, 12), R.randint(1, 28),
                                                    R.randint(0, 23), R.randint(0, 59), R.randint(0, 59),
                                                    R.randint(0, 999))


TABLES = {}
stmts = []
for t in range(int(os.environ.get("CDC_CS_TABLES", 10))):
    cols = [column(i) for i in range(R.randint(6, 16))]
    # always one column right after a GEOMETRY in another charset (the
    # original report), the rest in random order
    cols.insert(R.randrange(len(cols) + 1), ("g_%d" % t, "GEOMETRY", "geom", "binary"))
    cols.insert(R.randrange(len(cols) + 1), ("n_%d" % t, "VARCHAR(20) CHARACTER SET latin1", "char", "latin1"))
    R.shuffle(cols)
    name = "t%d" % t
    TABLES[name] = cols
    dflt = R.choice(CHARSETS)
    stmts.append("CREATE TABLE %s (id INT PRIMARY KEY, %s) DEFAULT CHARSET=%s;" % (
        name, ", ".join("`%s` %s" % (c[0], c[1]) for c in cols), dflt))
my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s;" % (DB, DB))
my("\n".join(stmts), DB)

my("FLUSH BINARY LOGS")
f0, p0 = my("SHOW BINLOG STATUS").split("\t")[:2]
work = []
for name, cols in TABLES.items():
    nrows = R.randint(2, 5)
    for rid in range(1, nrows + 1):
        work.append("INSERT INTO %s VALUES (%d, %s);" % (name, rid, ", ".join(value(c) for c in cols)))
    for rid in R.sample(range(1, nrows + 1), R.randint(1, nrows)):
        sets = R.sample(cols, R.randint(1, len(cols)))
        work.append("UPDATE %s SET %s WHERE id = %d;" % (name, ", ".join("`%s` = %s" % (c[0], value(c)) for c in sets),
                                                         rid))
    if R.random() < 0.5:
        work.append("DELETE FROM %s WHERE id = %d;" % (name, R.randint(1, nrows)))
my("SET SESSION sql_mode = 'STRICT_ALL_TABLES';\n" + "\n".join(work), DB)
my("FLUSH BINARY LOGS")
files = [ln.split("\t")[0] for ln in my("SHOW BINARY LOGS").splitlines()]
window = files[files.index(f0):-1]


def select_expr(col):
    name, sqlt, k, cs = col
    q = "`%s`" % name
    if k in ("char", "enum", "set", "json") and cs != "binary":
        return "HEX(CONVERT(%s USING utf8mb4))" % q
    if k == "geom":
        return "CONCAT(ST_SRID(%s), ':', HEX(ST_AsWKB(%s)))" % (q, q)
    if k == "bit":
        return "%s + 0" % q
    if k == "uuid":
        return "LENGTH(CAST(%s AS BINARY(16)))" % q
    if k in ("char", "blob", "bin"):
        return "HEX(%s)" % q
    return "CAST(%s AS CHAR)" % q


def expected(name):
    cols = TABLES[name]
    out = {}
    for ln in my("SELECT id, %s FROM %s ORDER BY id" % (", ".join(select_expr(c) for c in cols), name), DB).splitlines():
        f = ln.split("\t")
        out[int(f[0])] = f[1:]
    return out


def got_text(col, v):
    """The envelope value in the SELECT expression's form."""
    name, sqlt, k, cs = col
    if v is None:
        return "NULL"
    if k in ("char", "enum") and cs != "binary":
        if not isinstance(v, str):
            raise ValueError("not a string")
        return v.encode().hex().upper()
    if k == "set":
        return ",".join(v).encode().hex().upper()
    if k == "json":
        return None if not isinstance(v, (dict, str)) else v
    if k == "geom":
        return "%d:%s" % (v["srid"], base64.b64decode(v["wkb"]).hex().upper())
    if k == "uuid":
        return str(len(base64.b64decode(v)))
    if k in ("char", "blob", "bin"):
        return base64.b64decode(v, validate=True).hex().upper()
    return str(v)


def compare(envs, how):
    state = {t: {} for t in TABLES}
    for e in envs:
        p, s = e["payload"], e["source"]
        if s["db"] != DB:
            continue
        rows = state[s["table"]]
        if p["op"] == "d":
            rows.pop(p["key"]["id"], None)
        else:
            if p["before"] and p["before"]["id"] != p["after"]["id"]:
                rows.pop(p["before"]["id"], None)
            rows[p["after"]["id"]] = p["after"]
    bad, n = [], 0
    for t, cols in TABLES.items():
        want = expected(t)
        if sorted(want) != sorted(state[t]):
            fail("%s %s: ids %s in the envelopes, %s in SELECT" % (how, t, sorted(state[t]), sorted(want)))
        for rid, w in want.items():
            row = state[t][rid]
            for c, wv in zip(cols, w):
                n += 1
                v = row.get(c[0])
                if c[2] == "json" and wv != "NULL":
                    ok = isinstance(v, (dict, str)) and \
                        (v if isinstance(v, dict) else json.loads(v)) == json.loads(bytes.fromhex(wv).decode())
                else:
                    try:
                        ok = got_text(c, v) == wv
                    except (ValueError, TypeError, KeyError) as ex:
                        ok = False
                        v = "%r (%s)" % (v, ex)
                if not ok:
                    bad.append("%s.%s id=%d %s [%s]: envelope %r, SELECT %s" % (t, c[0], rid, c[0], c[1], v, wv))
    if bad:
        fail("%s: %d of %d values differ:\n  %s" % (how, len(bad), n, "\n  ".join(bad[:15])))
    log("%s: %d values in %d tables equal to SELECT" % (how, n, len(TABLES)))


def read_lines(path):
    return [json.loads(ln) for ln in open(path, encoding="utf-8").read().split("\n")[:-1]]


# live
out = os.path.join(TMP, "live.jsonl")
r = subprocess.run([BIN, "--source", "mysql", "--mysql-dsn", "mysql://root:%s@127.0.0.1:%s" % (
    E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"]), "--from", "%s:%s" % (f0, p0), "--include", DB + ".*",
    "--pipeline", "cs", "--state-dir", os.path.join(TMP, "state"), "--sink", "file", "-o", out,
    "--idle-exit", "2500"], capture_output=True, text=True, timeout=300)
if r.returncode:
    fail("live run exited %d: %s" % (r.returncode, r.stderr[-3000:]))
compare(read_lines(out), "live")

# decode over the window's files
paths = []
for f in window:
    shutil.copy(os.path.join(E["MYSQL_DATADIR"], f), TMP)
    paths.append(os.path.join(TMP, f))
jcols = ",".join("%s.%s.%s" % (DB, t, c[0]) for t, cols in TABLES.items() for c in cols if c[2] == "json")
r = subprocess.run([BIN, "decode", "--include", DB + ".*"] + (["--json-columns", jcols] if jcols else []) + paths,
                   capture_output=True, text=True, timeout=300)
if r.returncode:
    fail("decode exited %d: %s" % (r.returncode, r.stderr[-3000:]))
compare([json.loads(ln) for ln in r.stdout.split("\n")[:-1]], "decode")

my("DROP DATABASE %s" % DB)
shutil.rmtree(TMP, True)
print("PASS: charsets of %d generated tables, live and decoded, equal SELECT (seed %d)" % (len(TABLES), SEED))
