#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`reconcile` with a lookup (dimension) mapping, from an empty wide
table (docs/MAPPINGS.md, Reconcile).

Source a (MariaDB items: id, v, tier) writes name and tier; source b
(MariaDB tiers: code, label) is a lookup on tier that writes tier_label.
No stream runs: the wide table starts empty (created as the sink creates
it), so

  * reconcile reports every row as missing (exit 1);
  * --repair inserts them (exit 0): each row's tier_label is the label of
    its tier, NULL for a tier without a label row or a NULL tier, as the
    test computes from the seeded source rows; a second reconcile is clean;
  * a manual UPDATE of one tier_label is found as exactly that field, with
    the dimension row it comes from (db.tiers[code]) as provenance;
    --repair fixes it.

The lookup operations outlive the chunk they were read in (they are
applied after every row is known): this test is what runs them.
Seed: CDC_TEST_SEED.
"""
import json
import os
import random
import subprocess
import tempfile

import dblib
from dblib import BIN, E, fail, log, my, pg

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

SEED = dblib.test_seed()
rnd = random.Random(SEED)
ID = "%d" % os.getpid()
MDB = "rclk_" + ID
PDB = "rclkp_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-reconcile-lk-")


def cleanup():
    dblib.cleanup([], TMP, pg_dbs=[PDB], my_dbs=[MDB])


dblib.on_fail(cleanup, logdir=TMP)

MAPF = os.path.join(TMP, "map.yaml")
open(MAPF, "w").write("""sources: {a: {priority: 1}, b: {priority: 2}}
targets:
  w:
    table: public.lk_w
    key: k
    fields:
      k: bigint
      name: {type: text, owner: a}
      tier: {type: bigint, owner: a}
      tier_label: {type: text, owner: b}
mappings:
  - {source: a, table: %s.items, target: w, key: {k: id}, fields: {name: v, tier: tier}}
  - {source: b, table: %s.tiers, target: w, lookup: true, key: {tier: code}, fields: {tier_label: label}}
""" % (MDB, MDB))
PF = {}
for s in "ab":
    PF[s] = os.path.join(TMP, s + ".yaml")
    open(PF[s], "w").write("""application_id: %s
pipeline: {name: rclk%s_%s}
source: {type: mysql}
mysql: {dsn: "mysql://root:%s@127.0.0.1:%s"}
sink: {type: postgres}
postgres_sink: {dsn: "%s"}
mapping: {files: "%s"}
state: {dir: "%s"}
""" % (s, ID, s, E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], dblib.pg_dsn(PDB), MAPF, os.path.join(TMP, "state")))

N, NT = 40, 5
ITEMS = {i: ("v%d" % rnd.randint(0, 999), rnd.choice([None] + list(range(1, NT + 2)))) for i in range(1, N + 1)}
TIERS = {c: "label-%d" % rnd.randint(0, 99) for c in range(1, NT + 1)}   # tier NT+1 has no label row
my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; USE %s; "
   "CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(20), tier INT); "
   "CREATE TABLE tiers (code INT PRIMARY KEY, label VARCHAR(20)); "
   "INSERT INTO items VALUES %s; INSERT INTO tiers VALUES %s;" % (
       MDB, MDB, MDB,
       ", ".join("(%d, '%s', %s)" % (i, v, "NULL" if t is None else t) for i, (v, t) in ITEMS.items()),
       ", ".join("(%d, '%s')" % (c, l) for c, l in TIERS.items())))
pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
pg("CREATE TABLE lk_w (k bigint PRIMARY KEY, name text, tier bigint, tier_label text, "
   "_provenance jsonb NOT NULL DEFAULT '{}')", PDB)
EXP = {i: (v, None if t is None else str(t), TIERS.get(t)) for i, (v, t) in ITEMS.items()}


def reconcile(*extra):
    a = [BIN, "reconcile", "-c", PF["a"], "--target", "w"] + list(extra) + [PF["b"]]
    with open(os.path.join(TMP, "reconcile.log"), "ab") as lf:
        r = subprocess.run(a, stdout=subprocess.PIPE, stderr=lf, timeout=120)
    out = r.stdout.decode()
    log("reconcile %s -> %d: %d lines" % (" ".join(extra), r.returncode, len(out.splitlines())))
    return r.returncode, out


def table():
    out = {}
    for line in pg("SELECT k, coalesce(name, '\\N'), coalesce(tier::text, '\\N'), coalesce(tier_label, '\\N') "
                   "FROM lk_w", PDB).splitlines():
        f = line.split("\t")
        out[int(f[0])] = tuple(None if x == "\\N" else x for x in f[1:])
    return out


rc, out = reconcile("--json")
lines = [json.loads(x) for x in out.splitlines()]
missing = sorted(int(d["key"]["k"]) for d in lines if d["kind"] == "missing")
if rc != 1 or missing != sorted(EXP) or len(lines) != len(EXP) + 1:
    fail("empty table: exit %d (want 1), missing %s (want every key 1..%d and nothing else)" % (rc, missing, N))
rc, out = reconcile("--repair")
if rc != 0 or table() != EXP:
    got = table()
    fail("--repair: exit %d (want 0); rows that differ from the sources: %s" % (
        rc, [(k, got.get(k), EXP[k]) for k in EXP if got.get(k) != EXP[k]][:8]))
rc, out = reconcile()
if rc != 0 or "no drift" not in out:
    fail("after --repair: exit %d, want 0 and no drift:\n%s" % (rc, out))

k = rnd.choice([i for i, e in EXP.items() if e[2] is not None])
pg("UPDATE lk_w SET tier_label = 'manual' WHERE k = %d" % k, PDB)
rc, out = reconcile("--json")
lines = [json.loads(x) for x in out.splitlines()]
diffs = [d for d in lines if d["kind"] != "summary"]
if rc != 1 or len(diffs) != 1 or (diffs[0]["kind"], int(diffs[0]["key"]["k"]), diffs[0]["field"]) != \
        ("differs", k, "tier_label"):
    fail("drift of tier_label of %d: exit %d, found %s" % (k, rc, diffs))
d = diffs[0]
if d["stored"]["value"] != "manual" or d["recomputed"]["value"] != EXP[k][2] or \
        d["recomputed"]["provenance"]["row"] != "%s.tiers[%s]" % (MDB, EXP[k][1]) or \
        d["recomputed"]["provenance"]["s"] != "b":
    fail("drift of tier_label of %d: %s, want manual -> %s from b %s.tiers[%s]" % (k, d, EXP[k][2], MDB, EXP[k][1]))
rc, out = reconcile("--repair")
if rc != 0 or table() != EXP:
    fail("--repair of tier_label: exit %d, table %s" % (rc, table().get(k)))
rc, out = reconcile()
if rc != 0:
    fail("after the second --repair: exit %d:\n%s" % (rc, out))
cleanup()
print("ok - reconcile recomputes lookup fields, repairs missing rows and a drifted dimension field")
