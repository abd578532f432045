#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The customer_360 example (mappings/examples/customer_360.yaml) end to
end: its setup SQL and its three pipeline files, against real MariaDB
and PostgreSQL.

  crm      MariaDB     crm360.customers        name, email, status; a vote on
                                               the verified email
  shop     MariaDB     shop360.orders          the last order (field group),
                                               order count and total (aggregates)
  loyalty  PostgreSQL  public.loyalty_members  loyalty tier and points; a
                                               vote on the verified email

The test runs the example's pipeline files (-c), overriding only what a
test server needs (DSNs, the slot, positions, state directories).  A
random workload (seed from CDC_TEST_SEED) inserts, updates and deletes
customers, loyalty members and orders (order created_at not in
insertion order, unique; the newest orders of customers deleted too).
Then the wide table must equal what the test computes with SELECT from
the three sources' final rows alone:

  * profile and loyalty fields: the current row's values through the
    mapping's expressions and value maps (NULL when the row is gone);
  * last_order_id / _amount / _at: all three of the customer's existing
    order with the newest created_at (NULL when the customer has none);
  * verified_email: of both sources' current addresses (lower()), the
    one with the highest summed score (weight x confidence: crm 1 x 1.0
    if verified else 0.5, loyalty 0.8 x 1.0 if confirmed else 0.5), ties
    to the address first in byte order;
  * order_count and total_spent: COUNT(*) and SUM(amount) of the
    customer's existing orders (a customer without orders: 0 or NULL,
    and NULL).

Finally a re-run backfill of every source changes no row version, and
`reconcile` through the example's own pipeline files finds no drift.
Exit 0 pass, 1 fail, 77 skip.
"""
import os
import random
import subprocess
import tempfile
import time

import dblib
from dblib import BIN, E, fail, log, my, pg

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
EX = os.path.join(ROOT, "mappings", "examples")
SEED = dblib.test_seed()
ID = "%d" % os.getpid()
PDB = "c360_" + ID
SLOT = "c360_slot_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-c360-")
PROCS = []
STREAM = {}
NCUST = 12


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[PDB], slots=[SLOT], origins_like="autoglm_cdc_c360%s%%" % ID,
                  my_dbs=["crm360", "shop360"])


dblib.on_fail(cleanup, logdir=TMP)

# ---- setup: the example's own SQL ------------------------------------------------------
my("DROP DATABASE IF EXISTS crm360; DROP DATABASE IF EXISTS shop360")
my(open(os.path.join(EX, "customer_360-setup-mariadb.sql")).read())
pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
pg(open(os.path.join(EX, "customer_360-setup-postgres.sql")).read(), PDB)
pg("SELECT pg_create_logical_replication_slot('%s', 'pgoutput')" % SLOT, PDB, superuser=True)
ms = my("SHOW MASTER STATUS").split()
FROM = "%s:%s" % (ms[0], ms[1])


def args(s, cmd="run"):
    a = [BIN, cmd, "-c", os.path.join(EX, "pipelines", "c360-%s.yaml" % s),
         "--pipeline", "c360%s_%s" % (ID, s), "--state-dir", os.path.join(TMP, "state-" + s),
         "-X", "postgres_sink.dsn=" + dblib.pg_dsn(PDB), "-X", "postgres_sink.flush_ms=50"]
    if s == "loyalty":
        a += ["-X", "postgres.dsn=" + dblib.pg_dsn(PDB), "-X", "postgres.slot=" + SLOT]
    else:
        a += ["-X", "mysql.dsn=mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"]),
              "-X", "mysql.server_id=%d" % (4300 + int(ID) % 1000 * 3 + (1 if s == "crm" else 2))]
        if cmd == "run":
            a += ["-X", "mysql.from=" + FROM]
    return a


def start(s):
    lf = open(os.path.join(TMP, "%s.log" % s), "ab")
    # the pipeline files name the mapping relative to the repository root
    p = subprocess.Popen(args(s), stdout=lf, stderr=lf, cwd=ROOT)
    PROCS.append(p)
    STREAM[s] = p


for s in ("crm", "shop", "loyalty"):
    start(s)

# ---- the workload ------------------------------------------------------------------------
rnd = random.Random(SEED)
CUST, MEMB, ORD = {}, {}, {}     # the test's view of the sources
USED = set()
next_oid = [1]
FIRST = ["Ann", "Bo", "Cy", "Dee", "Eve", "Fritz"]
LAST = ["Lee", None, "Öz", "O'Hara"]


def created():
    while True:
        v = "2024-%02d-%02d %02d:%02d:%02d.%06d" % (rnd.randint(1, 9), rnd.randint(1, 28), rnd.randint(0, 23),
                                                  rnd.randint(0, 59), rnd.randint(0, 59), rnd.randint(0, 999999))
        if v not in USED:
            USED.add(v)
            return v


def q(v):
    return "NULL" if v is None else "'%s'" % v.replace("'", "''")


def email():
    # a small pool in mixed case: the sources often agree (after lower())
    return rnd.choice([None, "ann@example.org", "Ann@Example.ORG", "bo@example.org", "cy@example.org",
                       "BO@EXAMPLE.ORG"])


def crm_change():
    c = rnd.randint(1, NCUST)
    if c not in CUST:
        CUST[c] = 1
        return "INSERT INTO crm360.customers VALUES (%d, %s, %s, %s, %d, %d);" % (
            c, q(rnd.choice(FIRST)), q(rnd.choice(LAST)), q(email()), rnd.randint(0, 1), rnd.randint(0, 1))
    if rnd.random() < 0.2:
        del CUST[c]
        return "DELETE FROM crm360.customers WHERE id = %d;" % c
    return "UPDATE crm360.customers SET first_name = %s, email = %s, email_verified = %d, is_active = %d " \
           "WHERE id = %d;" % (q(rnd.choice(FIRST) + str(rnd.randint(1, 99))), q(email()), rnd.randint(0, 1),
                               rnd.randint(0, 1), c)


def shop_change():
    r = rnd.random()
    if not ORD or r < 0.45:
        o = next_oid[0]
        next_oid[0] += 1
        ORD[o] = [rnd.randint(1, NCUST), created()]
        return "INSERT INTO shop360.orders VALUES (%d, %d, %d.%02d, '%s');" % (
            o, ORD[o][0], rnd.randint(1, 999), rnd.randint(0, 99), ORD[o][1])
    o = rnd.choice(sorted(ORD))
    if r < 0.65:
        return "UPDATE shop360.orders SET amount = amount + 1.25 WHERE id = %d;" % o
    if r < 0.8:
        ORD[o][1] = created()
        return "UPDATE shop360.orders SET created_at = '%s' WHERE id = %d;" % (ORD[o][1], o)
    if r < 0.9:
        # the newest order of its customer
        c = ORD[o][0]
        o = max((cr, oid) for oid, (cc, cr) in ORD.items() if cc == c)[1]
    del ORD[o]
    return "DELETE FROM shop360.orders WHERE id = %d;" % o


def loyalty_change():
    c = rnd.randint(1, NCUST)
    if c not in MEMB:
        MEMB[c] = 1
        return "INSERT INTO loyalty_members (customer_id, tier, points, email, email_confirmed) VALUES " \
               "(%d, %d, %d, %s, %s);" % (c, rnd.randint(1, 4), rnd.randint(0, 5000), q(email()),
                                          rnd.choice(["true", "false"]))
    if rnd.random() < 0.2:
        del MEMB[c]
        return "DELETE FROM loyalty_members WHERE customer_id = %d;" % c
    if rnd.random() < 0.4:
        return "UPDATE loyalty_members SET email = %s, email_confirmed = %s WHERE customer_id = %d;" % (
            q(email()), rnd.choice(["true", "false"]), c)
    return "UPDATE loyalty_members SET tier = %d, points = points + %d, updated_at = now() " \
           "WHERE customer_id = %d;" % (rnd.randint(1, 4), rnd.randint(1, 100), c)


for rnd_i in range(10):
    my("".join(crm_change() for _ in range(rnd.randint(5, 12))))
    my("".join(shop_change() for _ in range(rnd.randint(10, 25))))
    pg("".join(loyalty_change() for _ in range(rnd.randint(5, 12))), PDB)

# customers 1 and 2 lose every order: their last order becomes NULL, the
# count 0 and the total NULL
for o in [o for o, (c, _) in ORD.items() if c in (1, 2)]:
    del ORD[o]
my("DELETE FROM shop360.orders WHERE customer_id IN (1, 2)")

# ---- what the example must produce, from the final rows ----------------------------------
COLS = ("name", "email", "status", "verified_email", "loyalty_tier", "loyalty_points", "last_order_id", "last_order_amount",
        "last_order_at", "order_count", "total_spent")

def expected():
    rows = {}

    def row(c):
        return rows.setdefault(c, {k: None for k in COLS})
    for line in my("SELECT id, TRIM(CONCAT(first_name, ' ', COALESCE(last_name, ''))), LOWER(email), "
                   "CASE is_active WHEN 1 THEN 'active' WHEN 0 THEN 'inactive' ELSE 'unknown' END "
                   "FROM crm360.customers").splitlines():
        c, name, email, st = line.split("\t")
        row(int(c)).update(name=name, email=None if email == "NULL" else email, status=st)
    votes = {}   # customer -> {address: summed score in millionths}
    for line in my("SELECT id, COALESCE(LOWER(email), '-'), email_verified FROM crm360.customers").splitlines():
        c, em, ver = line.split("\t")
        if em != "-":    # crm: weight 1, confidence 1.0 verified / 0.5
            v = votes.setdefault(int(c), {})
            v[em] = v.get(em, 0) + (1000000 if ver == "1" else 500000)
    for line in pg("SELECT customer_id, CASE tier WHEN 1 THEN 'bronze' WHEN 2 THEN 'silver' WHEN 3 THEN 'gold' "
                   "ELSE 'none' END, points, COALESCE(lower(email), '-'), email_confirmed FROM loyalty_members",
                   PDB).splitlines():
        c, tier, pts, em, conf = line.split("\t")
        row(int(c)).update(loyalty_tier=tier, loyalty_points=pts)
        if em != "-":    # loyalty: weight 0.8, confidence 1.0 confirmed / 0.5
            v = votes.setdefault(int(c), {})
            v[em] = v.get(em, 0) + (800000 if conf == "t" else 400000)
    for c, v in votes.items():
        # the highest sum; ties to the address first in byte order
        row(c)["verified_email"] = sorted(v.items(), key=lambda kv: (-kv[1], kv[0].encode()))[0][0]
    for line in my("SELECT o.customer_id, o.id, CAST(o.amount AS CHAR), "
                   "DATE_FORMAT(o.created_at, '%Y-%m-%d %H:%i:%s.%f') FROM shop360.orders o "
                   "WHERE o.created_at = (SELECT MAX(created_at) FROM shop360.orders i "
                   "WHERE i.customer_id = o.customer_id)").splitlines():
        c, oid, amt, at = line.split("\t")
        row(int(c)).update(last_order_id=oid, last_order_amount=amt, last_order_at=at)
    for line in my("SELECT customer_id, COUNT(*), CAST(SUM(amount) AS CHAR) FROM shop360.orders "
                   "GROUP BY customer_id").splitlines():
        c, n, tot = line.split("\t")
        row(int(c)).update(order_count=n, total_spent=tot)
    return rows


def wide():
    if pg("SELECT to_regclass('public.customer_360') IS NOT NULL", PDB).strip() != "t":
        return {}
    rows = {}
    for line in pg("SELECT customer_id, name, email, status, verified_email, loyalty_tier, loyalty_points::text, "
                   "last_order_id::text, last_order_amount::text, "
                   "to_char(last_order_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), "
                   "order_count::text, total_spent::text FROM customer_360", PDB, sep="\x1f").splitlines():
        f = line.split("\x1f")
        vals = dict(zip(COLS, [None if x == "" else x for x in f[1:]]))
        if vals["order_count"] == "0":
            vals["order_count"] = None   # no order left: 0 (or NULL: never had one)
        if any(v is not None for v in vals.values()):
            rows[int(f[0])] = vals
    return rows


t0 = time.time()
while True:
    exp, got = expected(), wide()
    if exp == got:
        break
    for s, p in STREAM.items():
        if p.poll() is not None:
            fail("pipeline %s exited %s" % (s, p.returncode))
    if time.time() - t0 > 180:
        diff = ["customer %d:\n    wide    %s\n    sources %s" % (c, got.get(c), exp.get(c))
                for c in sorted(set(exp) | set(got)) if exp.get(c) != got.get(c)]
        fail("customer_360 differs from the sources (%d customers):\n  %s" % (len(diff), "\n  ".join(diff[:8])))
    time.sleep(0.5)
groups = sum(1 for v in exp.values() if v["last_order_id"])
log("customer_360: %d customers, %d with a last order, %d loyalty members, %d CRM customers: equal to the "
    "sources' final rows" % (len(exp), groups, len(MEMB), len(CUST)))
if not groups or not MEMB or not CUST:
    fail("the workload left a part of the example empty")

# a re-run backfill of every source: nothing changes
TABLES = ("customer_360", "customer_360_candidates", "customer_360_contrib", "customer_360_votes")
before = {t: dblib.pg_versions(PDB, t) for t in TABLES}
snap = {t: pg("SELECT * FROM %s ORDER BY 1" % t, PDB, superuser=True) for t in TABLES}
for s, table in (("crm", "crm360.customers"), ("shop", "shop360.orders"), ("loyalty", "public.loyalty_members")):
    with open(os.path.join(TMP, "backfill-%s.log" % s), "wb") as bl:
        rc = subprocess.call(args(s, "backfill") + ["--table", table, "-X", "backfill.mode=incremental"],
                             stdout=bl, stderr=bl, timeout=300, cwd=ROOT)
    if rc:
        fail("backfill of %s exited %d:\n%s" % (s, rc, open(os.path.join(TMP, "backfill-%s.log" % s)).read()[-2000:]))
changed = [t for t in TABLES if dblib.pg_versions(PDB, t) != before[t]]
if changed:
    t = changed[0]
    now = pg("SELECT * FROM %s ORDER BY 1" % t, PDB, superuser=True)
    diff = sorted(set(now.splitlines()) ^ set(snap[t].splitlines()))
    fail("a re-run backfill without source changes wrote to %s; rows that differ:\n  %s" % (
        changed, "\n  ".join(diff[:10])))
if wide() != expected():
    fail("customer_360 left the sources after the backfill")
log("a re-run backfill of the three sources changed no row version")

# the example reconciles: its own three pipeline files (their DSNs from
# the environment, as documented in them), no drift
renv = dict(os.environ, MYSQL_PASSWORD=E["MYSQL_PASSWORD"], MYSQL_PORT=E["MYSQL_PORT"], PGPORT=E["PGPORT"],
            PGPASSWORD=E["PGPASSWORD"], PGDATABASE=PDB)
with open(os.path.join(TMP, "reconcile.log"), "wb") as rl:
    r = subprocess.run([BIN, "reconcile", "-c", os.path.join(EX, "pipelines", "c360-shop.yaml"), "--target",
                        "customer_360", os.path.join(EX, "pipelines", "c360-crm.yaml"),
                        os.path.join(EX, "pipelines", "c360-loyalty.yaml")], stdout=subprocess.PIPE, stderr=rl,
                       timeout=300, cwd=ROOT, env=renv)
if r.returncode != 0 or b"no drift" not in r.stdout:
    fail("reconcile of the example with its pipeline files: exit %d (want 0, no drift):\n%s\n%s" % (
        r.returncode, r.stdout.decode(), open(os.path.join(TMP, "reconcile.log")).read()[-2000:]))
log("reconcile of the example's pipelines: %s" % r.stdout.decode().strip())
dblib.stop(PROCS)
PROCS.clear()
cleanup()
print("ok - the customer_360 example: profile, loyalty tier, the verified email by vote, the last order "
      "(a field group), order count and total (aggregates) equal the sources' final rows; a re-run backfill changes nothing")
