#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Field groups (docs/MAPPINGS.md, Field groups): two MariaDB sources ->
the PostgreSQL wide table.

Two shops (two databases, two pipelines `shop` and `pos`, priorities 1
and 2) hold orders (id, customer_id, amount, created_at).  The wide table
has one row per customer with last_order_id, last_order_amount and
last_order_created_at in one group `last_order`, rule ordered by
created_at, on_delete: clear.  A random workload (seed from
CDC_TEST_SEED) inserts orders whose created_at does not follow the
insertion order, updates amounts and created_at, moves orders to other
customers, and deletes orders -- the newest order of a customer too, so
that the group must go back to the next-best order.  created_at values
are unique, so the answer needs no tie-break.  In the middle, each
pipeline is killed with SIGKILL several times and restarted.

The test then computes, with SELECT on both sources' final rows alone,
per customer the existing order with the newest created_at, and checks:

  * the wide table equals it: the three fields are one order's values
    (id, amount, created_at of the same source row), a customer whose
    orders are all gone has a NULL group, and the provenance of the three
    fields names the same source row;
  * <table>_candidates holds exactly one live candidate per existing
    order, at its customer (one row per source row: bounded);
  * exactly once: each pipeline's offsets row counts every mapped change
    once despite the kills;
  * a full backfill of both sources afterwards (snapshot rows) changes no
    row version of the wide table nor of the candidates table.

Exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import random
import subprocess
import tempfile
import time
import zlib

import dblib
from dblib import BIN, E, fail, log, my, pg

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

SEED = dblib.test_seed()
ID = "%d" % os.getpid()
SRC = {"shop": "grp_shop_" + ID, "pos": "grp_pos_" + ID}
PDB = "grp_w_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-groups-")
PROCS = []
NCUST = 10
STREAM = {}


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[PDB], origins_like="autoglm_cdc_grp%s%%" % ID, my_dbs=list(SRC.values()))


dblib.on_fail(cleanup, logdir=TMP)

MAPF = os.path.join(TMP, "groups.yaml")
open(MAPF, "w").write("""sources: {shop: {priority: 1}, pos: {priority: 2}}
targets:
  customer_last:
    table: public.customer_last
    key: customer_id
    fields:
      customer_id: bigint
      last_order_id: {type: bigint, owners: [shop, pos], rule: ordered, group: last_order}
      last_order_amount: {type: 'numeric(12,2)', owners: [shop, pos], rule: ordered, group: last_order}
      last_order_created_at: {type: timestamptz, owners: [shop, pos], rule: ordered, group: last_order}
mappings:
  - source: shop
    table: %s.orders
    target: customer_last
    key: {customer_id: customer_id}
    order_by: created_at
    on_delete: clear
    fields: {last_order_id: id, last_order_amount: amount, last_order_created_at: created_at}
  - source: pos
    table: %s.orders
    target: customer_last
    key: {customer_id: customer_id}
    order_by: created_at
    on_delete: clear
    fields: {last_order_id: id, last_order_amount: amount, last_order_created_at: created_at}
""" % (SRC["shop"], SRC["pos"]))


def common(s):
    return ["--application-id", s, "--source", "mysql", "--mysql-dsn",
            "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"]),
            "--sink", "postgres", "-X", "postgres_sink.dsn=" + dblib.pg_dsn(PDB, superuser=True),
            "-X", "postgres_sink.flush_ms=50", "-X", "mapping.files=" + MAPF,
            "--pipeline", "grp%s_%s" % (ID, s), "--state-dir", os.path.join(TMP, "state-" + s)]


def start(s, frm=None, extra=()):
    a = [BIN, "run"] + common(s) + ["--include", SRC[s] + ".orders",
                                    "-X", "mysql.server_id=%d" % (5000 + zlib.crc32((ID + s).encode()) % 50000),
                                    "-X", "checkpoint.interval_ms=3000"] + list(extra)
    if frm:
        a += ["--from", frm]
    lf = open(os.path.join(TMP, "stream-%s.log" % s), "ab")
    p = subprocess.Popen(a, stdout=lf, stderr=lf)
    PROCS.append(p)
    STREAM[s] = p
    return p


# ---- setup ------------------------------------------------------------------------

for s, db in SRC.items():
    my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; CREATE TABLE %s.orders (id INT PRIMARY KEY, "
       "customer_id INT NOT NULL, amount DECIMAL(12,2) NOT NULL, created_at DATETIME(6) NOT NULL)"
       % (db, db, db))
pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
ms = my("SHOW MASTER STATUS").split()
FROM = "%s:%s" % (ms[0], ms[1])
for s in SRC:
    start(s, FROM)

# ---- the workload -------------------------------------------------------------------

rnd = random.Random(SEED)
T = [int(time.time()) - 400000]
LIVE = {s: {} for s in SRC}     # id -> [customer, created_at, amount] (the test's view)
USED = set()                     # created_at values ever used: unique
NCHG = {s: 0 for s in SRC}       # row changes made per source
next_id = {"shop": [1], "pos": [500000]}


def created_at():
    while True:
        v = "2024-%02d-%02d %02d:%02d:%02d.%06d" % (rnd.randint(1, 6), rnd.randint(1, 28), rnd.randint(0, 23),
                                                  rnd.randint(0, 59), rnd.randint(0, 59),
                                                  rnd.randint(0, 999999))
        if v not in USED:
            USED.add(v)
            return v


def amount():
    return "%d.%02d" % (rnd.randint(1, 900), rnd.randint(0, 99))


def newest(s, cust):
    """the id of the newest live order of cust in source s, or None"""
    mine = [(cr, oid) for oid, (c, cr, _) in LIVE[s].items() if c == cust]
    return max(mine)[1] if mine else None


def change(s):
    T[0] += 1
    r = rnd.random()
    live = sorted(LIVE[s])
    NCHG[s] += 1
    if not live or r < 0.4:
        oid = next_id[s][0]
        next_id[s][0] += 1
        cust, cr = rnd.randint(1, NCUST), created_at()
        LIVE[s][oid] = [cust, cr, amount()]
        sql = "INSERT INTO orders VALUES (%d, %d, %s, '%s')" % (oid, cust, LIVE[s][oid][2], cr)
    elif r < 0.6:
        oid = rnd.choice(live)
        a = amount()
        while a == LIVE[s][oid][2]:   # an update that changes the row
            a = amount()
        LIVE[s][oid][2] = a
        sql = "UPDATE orders SET amount = %s WHERE id = %d" % (a, oid)
    elif r < 0.75:
        oid = rnd.choice(live)
        LIVE[s][oid][1] = created_at()
        sql = "UPDATE orders SET created_at = '%s' WHERE id = %d" % (LIVE[s][oid][1], oid)
    elif r < 0.8:
        oid = rnd.choice(live)
        cust = rnd.choice([c for c in range(1, NCUST + 1) if c != LIVE[s][oid][0]])
        LIVE[s][oid][0] = cust
        sql = "UPDATE orders SET customer_id = %d WHERE id = %d" % (cust, oid)
    elif r < 0.9:
        # delete the newest order of a customer: the group must go back to
        # the next-best order of either source
        cust = rnd.randint(1, NCUST)
        oid = newest(s, cust)
        if oid is None:
            oid = rnd.choice(live)
        LIVE[s].pop(oid)
        sql = "DELETE FROM orders WHERE id = %d" % oid
    else:
        oid = rnd.choice(live)
        LIVE[s].pop(oid)
        sql = "DELETE FROM orders WHERE id = %d" % oid
    return "SET TIMESTAMP = %d; %s;" % (T[0], sql)


def batch(s, n):
    # several changes per transaction now and then
    stmts = []
    while n > 0:
        k = min(n, rnd.choice([1, 1, 3]))
        stmts.append("BEGIN; %s COMMIT;" % "".join(change(s) for _ in range(k)))
        n -= k
    my("USE %s; %s" % (SRC[s], "".join(stmts)))


# ---- what the wide table must hold: the sources' final rows -----------------------

def expected():
    rows = []
    for s, db in SRC.items():
        for line in my("SELECT id, customer_id, CAST(amount AS CHAR), "
                       "DATE_FORMAT(created_at, '%%Y-%%m-%%d %%H:%%i:%%s.%%f') FROM %s.orders" % db).splitlines():
            oid, cust, amount, cr = line.split("\t")
            rows.append((int(cust), cr, int(oid), amount, s))
    best = {}
    for cust, cr, oid, amount, s in rows:
        if cust not in best or cr > best[cust][0]:
            best[cust] = (cr, oid, amount, s)
    return {c: (str(b[1]), b[2], b[0]) for c, b in best.items()}, rows


def wide():
    if pg("SELECT to_regclass('public.customer_last') IS NOT NULL", PDB, superuser=True).strip() != "t":
        return {}, {}
    out, prov = {}, {}
    for line in pg("SELECT customer_id, coalesce(last_order_id::text, '-'), coalesce(last_order_amount::text, '-'), "
                   "coalesce(to_char(last_order_created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), '-'), "
                   "_provenance::text FROM customer_last_provenance() ORDER BY 1", PDB, superuser=True).splitlines():
        c, oid, amount, cr, pv = line.split("\t")
        if oid != "-" or amount != "-" or cr != "-":
            out[int(c)] = (oid, amount, cr)
        prov[int(c)] = json.loads(pv)
    return out, prov


def wait_expected(what, timeout=180):
    t0 = time.time()
    while True:
        exp, rows = expected()
        got, prov = wide()
        if got == exp:
            return exp, rows, prov
        for s, p in STREAM.items():
            if p.poll() is not None:
                fail("stream %s exited %s while waiting for %s" % (s, p.returncode, what))
        if time.time() - t0 > timeout:
            diff = ["customer %d: wide %s, newest order in the sources %s" % (k, got.get(k), exp.get(k))
                    for k in sorted(set(exp) | set(got)) if got.get(k) != exp.get(k)]
            fail("%s: the wide table differs (%d customers):\n  %s" % (what, len(diff), "\n  ".join(diff[:12])))
        time.sleep(0.5)


# ---- run ------------------------------------------------------------------------------

KILLS = 3
for rnd_i in range(12):
    for s in SRC:
        batch(s, rnd.randint(10, 25))
    if rnd_i in (3, 6, 9):
        # kill -9 a pipeline in the middle of its work and restart it: it
        # resumes from its checkpoint file, which lags; the offsets table
        # drops what was applied already
        s = rnd.choice(sorted(SRC))
        time.sleep(rnd.uniform(0.05, 0.6))
        dblib.kill9(STREAM[s], "stream %s" % s)
        PROCS.remove(STREAM[s])
        batch(s, 15)   # changes while it is down
        start(s, FROM)  # from the first position again: the offsets table
        #                 drops every transaction already applied

# customers 1 and 2 lose every order, newest first: their groups go back
# order by order, then become NULL
for s in SRC:
    gone = sorted(((cr, oid) for oid, (c, cr, _) in LIVE[s].items() if c in (1, 2)), reverse=True)
    stmts = []
    for _, oid in gone:
        T[0] += 1
        NCHG[s] += 1
        LIVE[s].pop(oid)
        stmts.append("SET TIMESTAMP = %d; DELETE FROM orders WHERE id = %d;" % (T[0], oid))
    if stmts:
        my("USE %s; %s" % (SRC[s], "".join(stmts)))

exp, rows, prov = wait_expected("the streams")
nonempty = sum(1 for c in range(1, NCUST + 1) if c in exp)
log("%d changes (%s), %d orders live, %d of %d customers with a last order: wide table == the sources' "
    "newest orders" % (sum(NCHG.values()), NCHG, len(rows), nonempty, NCUST))

# the three fields carry one winner's provenance: the same source row
bad = []
for c, (oid, _, _) in exp.items():
    p = prov[c]
    ents = [p.get(f) for f in ("last_order_id", "last_order_amount", "last_order_created_at")]
    if any(e is None for e in ents):
        bad.append("customer %d: group field without provenance: %s" % (c, p))
        continue
    if len({json.dumps(e, sort_keys=True) for e in ents}) != 1:
        bad.append("customer %d: the group's fields have different provenance: %s" % (c, ents))
    if ents[0].get("row") != [oid] or ents[0].get("g") != "last_order":
        bad.append("customer %d: provenance names row %s of group %s, expected [%s]" % (
            c, ents[0].get("row"), ents[0].get("g"), oid))
for c, p in prov.items():
    if c not in exp and any(f in p for f in ("last_order_id", "last_order_amount", "last_order_created_at")):
        bad.append("customer %d: no order left, but the group keeps provenance %s" % (c, p))
if bad:
    fail("provenance:\n  " + "\n  ".join(bad[:12]))
emptied = [c for c in prov if c not in exp]
if not {1, 2} <= set(emptied):
    fail("customers 1 and 2 lost every order, but their rows are %s" % ([prov.get(1), prov.get(2)],))
log("provenance: each group names its one source row; %d customers lost every order (NULL group)" % len(emptied))

# the candidates: one live candidate per existing order, at its customer
cand = pg("SELECT customer_id, _mapping, _row_id FROM customer_last_candidates WHERE NOT _deleted", PDB, True)
live = sorted((int(c), json.loads(r)[0]) for c, m, r in (x.split("\t") for x in cand.splitlines()))
want = sorted((cust, str(oid)) for cust, _, oid, _, _ in rows)
if live != want:
    fail("candidates: %d live, %d orders exist; first differences: %s" % (
        len(live), len(want), sorted(set(live) ^ set(want))[:10]))
ncand = int(pg("SELECT count(*) FROM customer_last_candidates", PDB, True).strip())
log("candidates: %d live = the existing orders; %d rows in all (tombstones of deleted or moved orders)"
    % (len(live), ncand))

# exactly once: every mapped change counted once by each pipeline (the
# last changes may still be in flight when the rows already agree: a change
# of an order that is no customer's newest changes no wide row)
def counts():
    return {s: pg("SELECT changes FROM autoglm_cdc_offsets WHERE pipeline = 'grp%s_%s'" % (ID, s), PDB,
                  True).strip() for s in SRC}


t0 = time.time()
while counts() != {s: str(n) for s, n in NCHG.items()}:
    if time.time() - t0 > 60:
        fail("exactly once: the pipelines applied %s changes, the test made %s" % (counts(), NCHG))
    time.sleep(0.3)
log("exactly once after %d kills: offsets count %s" % (KILLS, NCHG))

# a full backfill of both sources: snapshot rows rank below every streamed
# change, so neither the wide table nor the candidates change
before = dblib.pg_versions(PDB, "customer_last", "customer_last_candidates")
for s in SRC:
    with open(os.path.join(TMP, "backfill-%s.log" % s), "wb") as bl:
        rc = subprocess.call([BIN, "backfill"] + common(s) + ["--table", SRC[s] + ".orders",
                                                              "-X", "backfill.mode=incremental"],
                             stdout=bl, stderr=bl, timeout=300)
    if rc:
        fail("backfill of %s exited %d" % (s, rc))
after = dblib.pg_versions(PDB, "customer_last", "customer_last_candidates")
if after != before:
    fail("a backfill without source changes changed the wide table or its candidates")
got, _ = wide()
if got != expected()[0]:
    fail("the wide table left the sources' newest orders after the backfill")
dblib.stop(PROCS)
PROCS.clear()
cleanup()
print("ok - field groups: the last order of two sources, deletes hand it to the next-best order, kill -9 "
      "exactly once, a re-run backfill changes nothing")
