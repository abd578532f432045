#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A PostgreSQL wide table of an earlier version (ranks in a `_provenance`
jsonb column) is migrated in place at start, in one transaction, to the
rank columns (docs/MAPPINGS.md, "Upgrading from a _provenance column").

Two MariaDB sources, HI (priority 2) and LO (priority 1), write one wide
table: x (rule priority, both), y (HI only, latest), n (LO only).

  1. The table is made as earlier versions made it (`_provenance jsonb`)
     and filled by both pipelines with postgres_sink.create_tables=false,
     under which the sink keeps that form (the earlier code path).  The
     rows and their provenance objects are noted.
  2. One entry's rank is made unreadable: a start with create_tables (the
     default) must exit 78, and the table must be exactly as before (the
     migration is one transaction: still `_provenance`, no rank column).
  3. With the entry restored, the next start migrates: `_provenance` is
     gone, the rank columns are there, and <table>_provenance() returns
     every row and provenance object exactly as noted in 1.
  4. Streaming goes on over the migrated ranks: LO changes x of every key
     (it must not replace HI's x: HI's migrated rank is higher) and HI
     changes y of some keys and adds keys.  The table must equal what the
     test computes from the source rows, and fields no change touched keep
     the provenance noted in 1.
Seed: CDC_TEST_SEED.
"""
import json
import os
import tempfile

import dblib
from dblib import fail, log, my, pg

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

SEED = dblib.test_seed()
ID = "%d" % os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-pgupgrade-")
PROCS, SLOTS = [], []
SRC = "upsrc_" + ID
W = "upw_" + ID
PUB = "uppub_" + ID
HI, LO = "uphi_" + ID, "uplo_" + ID

cleanup, rnd = dblib.wide_test(SRC, W, PUB, PROCS, TMP, SLOTS, SEED)

MAPF = os.path.join(TMP, "map.yaml")
open(MAPF, "w").write("""version: 1
sources: {%(hi)s: {priority: 2}, %(lo)s: {priority: 1}}
targets:
  w:
    table: public.up_w
    key: k
    fields:
      k: bigint
      x: {type: text, owners: [%(hi)s, %(lo)s], rule: priority}
      y: {type: text, owner: %(hi)s}
      n: {type: bigint, owner: %(lo)s}
mappings:
  - {source: %(hi)s, table: %(src)s.hi, target: w, key: {k: id}, fields: {x: x, y: y}}
  - {source: %(lo)s, table: %(src)s.lo, target: w, key: {k: id}, fields: {x: x, n: n}}
""" % {"hi": HI, "lo": LO, "src": SRC})

my("CREATE TABLE %s.hi (id INT PRIMARY KEY, x VARCHAR(20), y VARCHAR(20)); "
   "CREATE TABLE %s.lo (id INT PRIMARY KEY, x VARCHAR(20), n BIGINT)" % (SRC, SRC))
ms = my("SHOW MASTER STATUS").split()
START = "%s:%s" % (ms[0], ms[1])
# the form earlier versions created (sinks/pg_wide.c before rank columns)
pg("CREATE TABLE public.up_w (k bigint NOT NULL, x text, y text, n bigint, "
   "_provenance jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (k)) WITH (fillfactor = 80)", W)


def run(pipe, *extra, want=0):
    args = dblib.wide_args(pipe, os.path.join(TMP, "state_" + pipe), MAPF, "my", "pg", W, start=START,
                           include=SRC + ".*") + list(extra)
    rc, out = dblib.run_exit(args, os.path.join(TMP, pipe + ".log"), PROCS)
    if rc != want:
        fail("%s%s: exit %d, want %d:\n%s" % (pipe, " " + " ".join(extra) if extra else "", rc, want,
                                              out[-3000:]))
    return out


def word():
    return "".join(rnd.choice("abcdefghij") for _ in range(rnd.randint(1, 12)))


# ---- 1. the old form, written by both sources ------------------------------------------
N = rnd.randint(30, 60)
HIK = sorted(rnd.sample(range(1, N + 1), N // 2))
LOK = sorted(rnd.sample(range(1, N + 1), N // 2 + 3))
hi = {k: [word(), word()] for k in HIK}
lo = {k: [word(), rnd.randint(-10 ** 9, 10 ** 9)] for k in LOK}
my("".join("INSERT INTO hi VALUES (%d, '%s', '%s'); " % (k, v[0], v[1]) for k, v in hi.items()), SRC)
my("".join("INSERT INTO lo VALUES (%d, '%s', %d); " % (k, v[0], v[1]) for k, v in lo.items()), SRC)
OLD = ["-X", "postgres_sink.create_tables=false"]
run(HI, *OLD)
run(LO, *OLD)


def expected():
    out = {}
    for k in set(hi) | set(lo):
        x = hi[k][0] if k in hi else lo[k][0]
        out[k] = (x, hi[k][1] if k in hi else None, lo[k][1] if k in lo else None)
    return out


def rows(src):
    got = {}
    for line in pg("SELECT k, coalesce(x, '<null>'), coalesce(y, '<null>'), coalesce(n::text, '<null>'), "
                   "_provenance::text FROM %s ORDER BY k" % src, W).splitlines():
        k, x, y, n, p = line.split("\t")
        nul = lambda v: None if v == "<null>" else v
        got[int(k)] = (nul(x), nul(y), None if n == "<null>" else int(n), json.loads(p))
    return got


before = rows("up_w")
if {k: v[:3] for k, v in before.items()} != expected():
    fail("the old form did not get the expected rows: %s" % before)
for k, v in before.items():
    want_x = HI if k in hi else LO
    if v[3]["x"]["s"] != want_x or set(v[3]) != {"x"} | ({"y"} if k in hi else set()) | ({"n"} if k in lo else set()):
        fail("key %d: old provenance %s" % (k, v[3]))
log("old form: %d rows with _provenance jsonb" % len(before))


def columns():
    return set(pg("SELECT attname FROM pg_attribute WHERE attrelid = 'public.up_w'::regclass AND attnum > 0 "
                  "AND NOT attisdropped", W).split())


# ---- 2. a failed migration changes nothing ---------------------------------------------
bad = rnd.choice(HIK)
orig = pg("SELECT _provenance->'x' FROM up_w WHERE k = %d" % bad, W).strip()
pg("UPDATE up_w SET _provenance = jsonb_set(_provenance, '{x,r}', '\"not-hex\"') WHERE k = %d" % bad, W)
snap = pg("SELECT k, x, y, n, _provenance::text FROM up_w ORDER BY k", W)
out = run(HI, want=78)
if "migrating the wide table" not in out:
    fail("exit 78 without naming the migration:\n%s" % out[-2000:])
if columns() != {"k", "x", "y", "n", "_provenance"} or \
        pg("SELECT k, x, y, n, _provenance::text FROM up_w ORDER BY k", W) != snap:
    fail("a failed migration changed the table: columns %s" % sorted(columns()))
pg("UPDATE up_w SET _provenance = jsonb_set(_provenance, '{x}', '%s') WHERE k = %d" % (orig, bad), W)
log("a migration that fails (key %d has a rank that is no hex) exits 78 and leaves the table as it was" % bad)

# ---- 3. the migration ------------------------------------------------------------------
out = run(HI)
if "migrated from _provenance to rank columns" not in out:
    fail("no migration logged:\n%s" % out[-2000:])
if columns() != {"k", "x", "y", "n", "_r_x", "_r_y", "_r_n"}:
    fail("columns after the migration: %s" % sorted(columns()))
after = rows("up_w_provenance()")
if after != before:
    diff = [(k, before.get(k), after.get(k)) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    fail("up_w_provenance() after the migration differs from the old column: %s" % diff[:5])
log("migrated: rank columns, and up_w_provenance() shows every row and object as before")

# ---- 4. streaming over the migrated ranks ----------------------------------------------
for k in lo:
    lo[k][0] = word()
sql = "".join("UPDATE lo SET x = '%s' WHERE id = %d; " % (lo[k][0], k) for k in lo)
ychg = rnd.sample(HIK, len(HIK) // 3)
for k in ychg:
    hi[k][1] = word()
sql2 = "".join("UPDATE hi SET y = '%s' WHERE id = %d; " % (hi[k][1], k) for k in ychg)
newk = [N + 1 + i for i in range(rnd.randint(1, 5))]
for k in newk:
    hi[k] = [word(), word()]
sql2 += "".join("INSERT INTO hi VALUES (%d, '%s', '%s'); " % (k, hi[k][0], hi[k][1]) for k in newk)
my(sql, SRC)
my(sql2, SRC)
run(LO)
run(HI)
final = rows("up_w_provenance()")
if {k: v[:3] for k, v in final.items()} != expected():
    diff = [(k, final.get(k, (None,))[:3], expected().get(k)) for k in sorted(set(final) | set(expected()))
            if final.get(k, (None,))[:3] != expected().get(k)]
    fail("after streaming over the migrated ranks the table differs from the sources: %s" % diff[:6])
for k in HIK:
    if final[k][3]["x"] != before[k][3]["x"]:
        fail("key %d: x's provenance changed from %s to %s (LO ranks lower)" % (k, before[k][3]["x"], final[k][3]["x"]))
    if k not in ychg and final[k][3]["y"] != before[k][3]["y"]:
        fail("key %d: y's provenance changed without a change of y" % k)
for k in lo:
    if k not in hi and final[k][3]["x"]["s"] != LO:
        fail("key %d: x from %s, want %s" % (k, final[k][3]["x"]["s"], LO))
log("streaming after the migration: %d keys as the sources say; HI's x kept against LO's later changes" % len(final))
cleanup()
print("PASS")
