#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Data errors are named where they are found (issue 12, item 2).

Values a wide sink's database cannot hold must stop the pipeline with
exit 65 and a message naming the field, the (shortened) value and the
mapping, before anything of their transaction is written; never exit 1
with a bare SQL error.  One case per class, each a random value:

  nul     text with a NUL character (MariaDB)      -> PostgreSQL text
  nan     NaN / Infinity (PostgreSQL double)       -> MariaDB DOUBLE
  prec    a number over decimal(p,s)               -> both sinks
  dec38   a number over an undeclared decimal      -> MariaDB (DECIMAL(38,10))
  narrow  text longer than the VARCHAR the operator gave the wide table's
          column (the database refuses it: the batch is tried change by
          change to name the change, its fields and values) -> both sinks

Each case's transaction also has a good row before the bad one; the
target table must stay empty.  Env: CDC_VALERR_SEED, CDC_VALERR_NAN (NaN,
Infinity or -Infinity; default random).  Exit 0 pass, 1 fail,
77 skip.
"""
import os
import random
import tempfile

import dblib
from dblib import pgx as pg, fail, log, my

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

SEED = int(os.environ.get("CDC_VALERR_SEED") or dblib.test_seed())
ID = "%d" % os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-valerr-")
PROCS = []
SRC = "vesrc_" + ID    # source database on both servers
W = "vew_" + ID        # target database on both servers
PUB = "vepub_" + ID
SLOTS = []


cleanup, rnd = dblib.wide_test(SRC, W, PUB, PROCS, TMP, SLOTS, SEED)


def rtext(n):
    return "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))


# (name, source engine, sink, source column type, field type, good SQL value,
#  bad SQL value, text the message must show)
CASES = []
a, b = rtext(rnd.randint(1, 30)), rtext(rnd.randint(70, 200))
CASES.append(("nul", "my", "pg", "VARCHAR(300)", "text", "'%s'" % a, "CONCAT('%s', CHAR(0), '%s')" % (a, b),
              a + "\\x00" + b[:60 - len(a) - 1]))
nan = os.environ.get("CDC_VALERR_NAN") or rnd.choice(["NaN", "Infinity", "-Infinity"])
CASES.append(("nan", "pg", "my", "double precision", "double", "%r" % rnd.uniform(-1e6, 1e6), "'%s'" % nan,
              "value '%s'" % nan))
# (a binary column is base64 text in a text field, never a data error:
# docs/MAPPINGS.md; t_hostile_inputs.sh checks it against a live run)
for snk in ("pg", "my"):
    p = rnd.randint(3, 10)
    s = rnd.randint(0, p - 1)
    big = str(rnd.randint(10 ** (p - s), 10 ** (p - s + 3))) + ("." + "1" * s if s else "")
    CASES.append(("prec_" + snk, "pg", snk, "numeric", "decimal(%d,%d)" % (p, s), "1", big, big))
big = str(rnd.randint(10 ** 28, 10 ** 35))
CASES.append(("dec38", "pg", "my", "numeric", "decimal", "1", big, big))
NARROW = 6
for snk in ("pg", "my"):
    long_text = rtext(rnd.randint(NARROW + 1, 90))
    CASES.append(("narrow_" + snk, "my", snk, "VARCHAR(100)", "text", "'%s'" % rtext(NARROW),
                  "'%s'" % long_text, long_text[:60], NARROW))


def case(name, source, sink, coltype, ftype, good, bad, shown, narrow=None):
    pipe = "ve_" + name
    tgt = "ve_" + name
    mname = "m_" + name
    mapf = os.path.join(TMP, name + ".yaml")
    start, slot = None, (None if source == "my" else "veslot_%s_%s" % (ID, name))
    table = dblib.source_table(source, SRC, "t_" + name, "id INT PRIMARY KEY, c " + coltype, SLOTS, slot)
    dblib.wide_mapping(mapf, pipe, tgt, sink, table, mname, {"f": (ftype, "c")})
    if narrow:
        q = "CREATE TABLE %s (k BIGINT PRIMARY KEY, f VARCHAR(%d), _provenance %s)" % (
            tgt, narrow, "jsonb NOT NULL DEFAULT '{}'" if sink == "pg" else "LONGTEXT")
        pg(q, W) if sink == "pg" else my(q, W)
    rows = "INSERT INTO t_%s VALUES (1, %s); INSERT INTO t_%s VALUES (2, %s);" % (name, good, name, bad)
    if source == "my":
        ms = my("SHOW MASTER STATUS").split()
        start = "%s:%s" % (ms[0], ms[1])
        my("START TRANSACTION; %s COMMIT;" % rows, SRC)
    else:
        pg("BEGIN; %s COMMIT;" % rows, SRC)
    args = dblib.wide_args(pipe, os.path.join(TMP, "state"), mapf, source, sink, W, start=start,
                           include=SRC + ".*", slot=slot, pub=PUB, tables="public.t_" + name)
    rc, out = dblib.run_exit(args, os.path.join(TMP, pipe + ".log"), PROCS)
    if rc != 65:
        fail("%s: exit %s, not 65:\n%s" % (name, rc, out[-2000:]))
    for word in ("field 'f'", "mapping '%s'" % mname, shown) + (("target " + tgt,) if narrow else ()):
        if word not in out:
            fail("%s: the message does not name %r:\n%s" % (name, word, out[-2000:]))
    n = (pg("SELECT count(*) FROM %s" % tgt, W) if sink == "pg" else my("SELECT count(*) FROM %s" % tgt, W)).strip()
    if n != "0":
        fail("%s: %s rows of the failed transaction were written" % (name, n))
    err = [ln for ln in out.splitlines() if " error " in ln]
    log("%s: exit 65: %s" % (name, err[0][err[0].index(" error ") + 7:] if err else "?"))


for c in CASES:
    case(*c)
cleanup()
print("PASS")
