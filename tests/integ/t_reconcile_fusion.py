#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`autoglm-cdc reconcile` over a target with a field group, aggregates
and a vote: the customer_360 example (mappings/examples/customer_360.yaml)
against real MariaDB and PostgreSQL (docs/MAPPINGS.md, Reconcile).

  crm      MariaDB     crm360.customers        name, email, status; a vote on
                                               the verified email
  shop     MariaDB     shop360.orders          the last order (a field group
                                               ordered by created_at), order
                                               count and total (aggregates)
  loyalty  PostgreSQL  public.loyalty_members  loyalty tier and points; a
                                               vote on the verified email

Three pipelines stream a seeded random workload (CDC_TEST_SEED) into the
wide table until it equals what the test computes with SELECT from the
sources' final rows (as t_example_c360.py).  Then:

  * reconcile finds no drift (exit 0): the recomputation of the group,
    the aggregates and the vote from the sources agrees with the streams;
  * drift is injected: a plain field (name), a group field
    (last_order_amount), two aggregates (order_count, total_spent), the
    voted field (verified_email), a deleted row of customer_360_contrib
    and one of customer_360_candidates (the winning candidate of a
    customer), and in the side tables only: a source's vote entry
    altered, a stray live contribution of an order that does not exist, a
    deleted order's candidate made live again (a lost delete); reconcile
    --json exits 1 and reports exactly those, each
    naming its row and field (or side-table row), the recomputed values
    equal to the test's own computation; the text form exits 1 too, and
    in three key partitions (--partitions 3) prints the same, byte for
    byte;
  * reconcile --repair --partitions 3 exits 0; the table equals the sources again, both
    deleted side-table rows are back, the vote entry holds the source's
    value, the stray contribution and the revived candidate are marked
    deleted, and a second reconcile finds no drift;
  * the streams go on correctly: a new newest order of the group-drifted
    customer takes the group and counts once, the delete of the order
    whose contribution was repaired lowers its customer's count by one
    (counted exactly once), an amount update of the aggregate-drifted
    customer, a new email of the vote-drifted one; the table equals the
    sources and a last reconcile finds no drift;
  * --repair three times while a writer keeps changing every source:
    each exits 0, and once the writer stops the table converges on the
    sources and reconcile finds no drift;
  * retention after a repair: the stray contribution and the revived
    candidate carried commit times of 2001; the repair marked them
    deleted as deletes at its own start (the candidate's _commit_us, the
    head of the contribution's _rank), so the shop pipeline restarted with
    tombstone_keep 1h (purge every 2 s) keeps them while its purge removes
    two planted deleted entries of 2001 (which proves the purge ran).
"""
import json
import os
import random
import subprocess
import tempfile
import threading
import time

import dblib
from dblib import BIN, E, fail, log, my, pg

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
EX = os.path.join(ROOT, "mappings", "examples")
SEED = dblib.test_seed()
ID = "%d" % os.getpid()
PDB = "rcf_" + ID
SLOT = "rcf_slot_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-rcfusion-")
PROCS = []
STREAM = {}
NCUST = 14
OLD_US = 1_000_000_000 * 1_000_000           # 2001-09-09, a commit time older than any keep
OLD_RANK = "8%015x" % OLD_US + "0" * 32     # map_agg.c: commit time (sign bit flipped), position
SRC = ("crm", "shop", "loyalty")


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[PDB], slots=[SLOT], origins_like="autoglm_cdc_rcf%s%%" % ID,
                  my_dbs=["crm360", "shop360"])


dblib.on_fail(cleanup, logdir=TMP)

my("DROP DATABASE IF EXISTS crm360; DROP DATABASE IF EXISTS shop360")
my(open(os.path.join(EX, "customer_360-setup-mariadb.sql")).read())
pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
pg(open(os.path.join(EX, "customer_360-setup-postgres.sql")).read(), PDB)
pg("SELECT pg_create_logical_replication_slot('%s', 'pgoutput')" % SLOT, PDB, superuser=True)
ms = my("SHOW MASTER STATUS").split()
FROM = "%s:%s" % (ms[0], ms[1])


def pipefile(s):
    """The example's pipeline of source s, on the test's servers."""
    path = os.path.join(TMP, "%s.yaml" % s)
    if s == "loyalty":
        src = """source: {type: postgres}
postgres: {dsn: "%s", slot: %s, publication: autoglm_cdc_c360_loyalty, tables: public.loyalty_members}
""" % (dblib.pg_dsn(PDB), SLOT)
    else:
        src = """source: {type: mysql}
mysql: {dsn: "mysql://root:%s@127.0.0.1:%s", server_id: %d, from: "%s"}
filter: {include: "%s360.*"}
""" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], 5100 + int(ID) % 1000 * 3 + (1 if s == "crm" else 2), FROM, s)
    open(path, "w").write("""pipeline: {name: rcf%s_%s}
application_id: %s
%ssink: {type: postgres}
postgres_sink: {dsn: "%s", flush_ms: 50}
mapping: {files: "%s"}
state: {dir: "%s"}
""" % (ID, s, s, src, dblib.pg_dsn(PDB), os.path.join(EX, "customer_360.yaml"), os.path.join(TMP, "state-" + s)))
    return path


PF = {s: pipefile(s) for s in SRC}
for s in SRC:
    lf = open(os.path.join(TMP, "%s.log" % s), "ab")
    p = subprocess.Popen([BIN, "run", "-c", PF[s]], stdout=lf, stderr=lf)
    PROCS.append(p)
    STREAM[s] = p

RUNS = [0]


def reconcile(*extra):
    """reconcile of customer_360 over the three sources: (exit, stdout)."""
    RUNS[0] += 1
    a = [BIN, "reconcile", "-c", PF["shop"], "--target", "customer_360"] + list(extra) + [PF["crm"], PF["loyalty"]]
    with open(os.path.join(TMP, "reconcile-%d.log" % RUNS[0]), "wb") as lf:
        r = subprocess.run(a, stdout=subprocess.PIPE, stderr=lf, timeout=300)
    out = r.stdout.decode()
    log("reconcile %s -> %d:\n%s" % (" ".join(extra), r.returncode, out.rstrip()))
    return r.returncode, out


# ---- the workload (as t_example_c360.py) ---------------------------------------------
rnd = random.Random(SEED)
CUST, MEMB, ORD = {}, {}, {}
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
    return rnd.choice([None, "ann@example.org", "Ann@Example.ORG", "bo@example.org", "cy@example.org",
                       "BO@EXAMPLE.ORG"])


def crm_change():
    c = rnd.randint(1, NCUST)
    if c not in CUST:
        CUST[c] = 1
        return "INSERT INTO crm360.customers VALUES (%d, %s, %s, %s, %d, %d);" % (
            c, q(rnd.choice(FIRST)), q(rnd.choice(LAST)), q(email()), rnd.randint(0, 1), rnd.randint(0, 1))
    if rnd.random() < 0.15:
        del CUST[c]
        return "DELETE FROM crm360.customers WHERE id = %d;" % c
    return "UPDATE crm360.customers SET first_name = %s, email = %s, email_verified = %d, is_active = %d " \
           "WHERE id = %d;" % (q(rnd.choice(FIRST) + str(rnd.randint(1, 99))), q(email()), rnd.randint(0, 1),
                               rnd.randint(0, 1), c)


def new_order(c):
    o = next_oid[0]
    next_oid[0] += 1
    ORD[o] = [c, created()]
    return "INSERT INTO shop360.orders VALUES (%d, %d, %d.%02d, '%s');" % (
        o, c, rnd.randint(1, 999), rnd.randint(0, 99), ORD[o][1])


def shop_change():
    r = rnd.random()
    if not ORD or r < 0.5:
        return new_order(rnd.randint(1, NCUST))
    o = rnd.choice(sorted(ORD))
    if r < 0.7:
        return "UPDATE shop360.orders SET amount = amount + 1.25 WHERE id = %d;" % o
    if r < 0.82:
        ORD[o][1] = created()
        return "UPDATE shop360.orders SET created_at = '%s' WHERE id = %d;" % (ORD[o][1], o)
    if r < 0.9:
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
    if rnd.random() < 0.15:
        del MEMB[c]
        return "DELETE FROM loyalty_members WHERE customer_id = %d;" % c
    if rnd.random() < 0.4:
        return "UPDATE loyalty_members SET email = %s, email_confirmed = %s WHERE customer_id = %d;" % (
            q(email()), rnd.choice(["true", "false"]), c)
    return "UPDATE loyalty_members SET tier = %d, points = points + %d WHERE customer_id = %d;" % (
        rnd.randint(1, 4), rnd.randint(1, 100), c)


for _ in range(10):
    my("".join(crm_change() for _ in range(rnd.randint(5, 12))))
    my("".join(shop_change() for _ in range(rnd.randint(10, 25))))
    pg("".join(loyalty_change() for _ in range(rnd.randint(5, 12))), PDB)
# every customer gets a CRM row and some orders, so each kind of drift has
# a customer to land on
my("".join("INSERT INTO crm360.customers VALUES (%d, 'Zed', NULL, 'cy@example.org', 1, 1);" % c
           for c in range(1, NCUST + 1) if c not in CUST))
CUST.update({c: 1 for c in range(1, NCUST + 1)})
my("".join(new_order(c) + new_order(c) for c in range(1, NCUST + 1)))

COLS = ("name", "email", "status", "verified_email", "loyalty_tier", "loyalty_points", "last_order_id",
        "last_order_amount", "last_order_at", "order_count", "total_spent")


def expected():
    """customer_360 computed from the sources' current rows alone."""
    rows = {}

    def row(c):
        return rows.setdefault(c, {k: None for k in COLS})
    votes = {}
    for line in my("SELECT id, TRIM(CONCAT(first_name, ' ', COALESCE(last_name, ''))), COALESCE(LOWER(email), '-'), "
                   "CASE is_active WHEN 1 THEN 'active' WHEN 0 THEN 'inactive' ELSE 'unknown' END, email_verified "
                   "FROM crm360.customers").splitlines():
        c, name, em, st, ver = line.split("\t")
        row(int(c)).update(name=name, email=None if em == "-" else em, status=st)
        if em != "-":
            v = votes.setdefault(int(c), {})
            v[em] = v.get(em, 0) + (1000000 if ver == "1" else 500000)
    for line in pg("SELECT customer_id, CASE tier WHEN 1 THEN 'bronze' WHEN 2 THEN 'silver' WHEN 3 THEN 'gold' "
                   "ELSE 'none' END, points, COALESCE(lower(email), '-'), email_confirmed FROM loyalty_members",
                   PDB).splitlines():
        c, tier, pts, em, conf = line.split("\t")
        row(int(c)).update(loyalty_tier=tier, loyalty_points=pts)
        if em != "-":
            v = votes.setdefault(int(c), {})
            v[em] = v.get(em, 0) + (800000 if conf == "t" else 400000)
    for c, v in votes.items():
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
            vals["order_count"] = None
        if any(v is not None for v in vals.values()):
            rows[int(f[0])] = vals
    return rows


def wait_sources(what, timeout=180):
    t0 = time.time()
    while True:
        exp, got = expected(), wide()
        if exp == got:
            return exp
        for s, p in STREAM.items():
            if p.poll() is not None:
                fail("pipeline %s exited %s (%s)" % (s, p.returncode, what))
        if time.time() - t0 > timeout:
            diff = ["customer %d:\n    wide    %s\n    sources %s" % (c, got.get(c), exp.get(c))
                    for c in sorted(set(exp) | set(got)) if exp.get(c) != got.get(c)]
            fail("%s: customer_360 differs from the sources (%d customers):\n  %s" % (
                what, len(diff), "\n  ".join(diff[:8])))
        time.sleep(0.5)


exp = wait_sources("after the workload")
log("customer_360 equals the sources: %d customers, %d orders" % (len(exp), len(ORD)))

# ---- 1. no drift ---------------------------------------------------------------------------
rc, out = reconcile()
if rc != 0 or "no drift" not in out:
    fail("reconcile of a table the streams built: exit %d (want 0, 'no drift'):\n%s" % (rc, out))

# ---- 2. drift ------------------------------------------------------------------------------
with_orders = sorted(c for c in exp if exp[c]["last_order_id"])
with_vote = sorted(c for c in exp if exp[c]["verified_email"])
pick = rnd.sample(with_orders, 4)
k_grp, k_agg, k_ctb, k_cand = pick
k_vote = rnd.choice([c for c in with_vote if c not in pick] or with_vote)
k_name = rnd.choice([c for c in CUST if c not in pick and c != k_vote])
# the contribution of one order of k_ctb, the winning candidate of k_cand
o_ctb = rnd.choice(sorted(o for o, (c, _) in ORD.items() if c == k_ctb))
o_cand = int(exp[k_cand]["last_order_id"])
pg("UPDATE customer_360 SET name = 'drift!' WHERE customer_id = %d; "
   "UPDATE customer_360 SET last_order_amount = last_order_amount + 1000 WHERE customer_id = %d; "
   "UPDATE customer_360 SET order_count = order_count + 1, total_spent = total_spent + 7 WHERE customer_id = %d; "
   "UPDATE customer_360 SET verified_email = 'drift@example.org' WHERE customer_id = %d; "
   "DELETE FROM customer_360_contrib WHERE _mapping = 'shop_orders' AND _row::jsonb ->> 0 = '%d'; "
   "DELETE FROM customer_360_candidates WHERE _row_id::jsonb ->> 0 = '%d'"
   % (k_name, k_grp, k_agg, k_vote, o_ctb, o_cand), PDB, superuser=True)
log("drift: name of %d, last_order_amount of %d, order_count and total_spent of %d, verified_email of %d, "
    "contribution of order %d (customer %d), candidate of order %d (customer %d)"
    % (k_name, k_grp, k_agg, k_vote, o_ctb, k_ctb, o_cand, k_cand))
# side tables only (the wide row is not recomputed until its key changes):
# crm's vote entry of a customer altered, a stray live contribution of an
# order that does not exist, a deleted order's candidate made live again
# (both with commit times of 2001: the retention check at the end)
k_vs = rnd.choice(sorted(c for c in exp if exp[c]["email"]))
k_stray = rnd.choice(with_orders)
dead = pg("SELECT customer_id, _row_id FROM customer_360_candidates WHERE _deleted ORDER BY 1, 2", PDB).split("\n")
dead = [x.split("\t") for x in dead if x]
if not dead:
    fail("the workload deleted no order; change the seed")
k_dead, row_dead = rnd.choice(dead)
k_dead = int(k_dead)
pg("UPDATE customer_360_votes SET _value = 'stale@example.org' WHERE customer_id = %d AND _field = 'verified_email' "
   "AND _source = 'crm'; "
   "INSERT INTO customer_360_contrib (customer_id, _mapping, _row, _rank, _deleted, order_count, total_spent) "
   "VALUES (%d, 'shop_orders', '[\"999999\"]', '%s', false, 1, 5.00); "
   "UPDATE customer_360_candidates SET _deleted = false, _commit_us = %d WHERE customer_id = %d AND _row_id = '%s'"
   % (k_vs, k_stray, OLD_RANK, OLD_US, k_dead, row_dead), PDB, superuser=True)
log("side drift: crm's vote of %d, a stray contribution of customer %d, candidate %s of %d live again"
    % (k_vs, k_stray, row_dead, k_dead))

rc, out = reconcile("--json")
if rc != 1:
    fail("reconcile --json with drift exited %d, want 1" % rc)
lines = [json.loads(x) for x in out.splitlines() if x.strip()]
found = {}
for d in lines:
    if d["kind"] != "summary":
        found[(d["kind"], int(d["key"]["customer_id"]), d.get("field"))] = d
CT = 'customer_360_contrib shop_orders ["%d"]' % o_ctb
CA = 'customer_360_candidates last_order shop_orders ["%d"]' % o_cand
want = {("differs", k_name, "name"), ("differs", k_grp, "last_order_amount"), ("differs", k_agg, "order_count"),
        ("differs", k_agg, "total_spent"), ("differs", k_vote, "verified_email"), ("side", k_ctb, CT),
        ("side", k_cand, CA), ("side", k_vs, "customer_360_votes verified_email crm"),
        ("side", k_stray, 'customer_360_contrib shop_orders ["999999"]'),
        ("side", k_dead, "customer_360_candidates last_order shop_orders " + row_dead)}
if set(found) != want:
    fail("reconcile found %s, the injected drift is %s" % (sorted(found, key=str), sorted(want, key=str)))
summ = [d for d in lines if d["kind"] == "summary"]
if len(summ) != 1 or (summ[0]["missing"], summ[0]["extra"], summ[0]["differs"], summ[0]["side"]) != (0, 0, 5, 5):
    fail("summary line wrong: %s" % summ)


def num(v):
    return None if v is None else float(v)


# the recomputed values are the sources' (computed by the test)
chk = [(k_name, "name", exp[k_name]["name"], "drift!"),
       (k_vote, "verified_email", exp[k_vote]["verified_email"], "drift@example.org")]
for k, f, w, s in chk:
    d = found[("differs", k, f)]
    if d["recomputed"]["value"] != w or d["stored"]["value"] != s:
        fail("%s of %d: stored %r recomputed %r, want %r and %r" % (f, k, d["stored"]["value"],
                                                                    d["recomputed"]["value"], s, w))
d = found[("differs", k_grp, "last_order_amount")]
if num(d["recomputed"]["value"]) != num(exp[k_grp]["last_order_amount"]) or \
        round(num(d["stored"]["value"]) - 1000, 2) != num(exp[k_grp]["last_order_amount"]):
    fail("last_order_amount of %d: %s, want recomputed %s" % (k_grp, d, exp[k_grp]["last_order_amount"]))
prov = d["recomputed"]["provenance"]
if prov.get("s") != "shop" or prov.get("g") != "last_order" or prov.get("row") != [exp[k_grp]["last_order_id"]]:
    fail("last_order_amount of %d: recomputed provenance %s must name shop, the group and order %s" % (
        k_grp, prov, exp[k_grp]["last_order_id"]))
d = found[("differs", k_agg, "order_count")]
if d["recomputed"]["value"] != exp[k_agg]["order_count"]:
    fail("order_count of %d: recomputed %s, want %s" % (k_agg, d["recomputed"]["value"], exp[k_agg]["order_count"]))
d = found[("differs", k_agg, "total_spent")]
if num(d["recomputed"]["value"]) != num(exp[k_agg]["total_spent"]):
    fail("total_spent of %d: recomputed %s, want %s" % (k_agg, d["recomputed"]["value"], exp[k_agg]["total_spent"]))
for k in (CT, CA):
    d = [v for (kind, _, f), v in found.items() if f == k][0]
    if d["stored"]["value"] not in ("no contribution", "no candidate") or d["recomputed"]["value"] == "no source row":
        fail("side-table row %s: %s, want it missing and recomputed" % (k, d))
d = found[("side", k_vs, "customer_360_votes verified_email crm")]
if not d["stored"]["value"].startswith("stale@example.org score=") or \
        not d["recomputed"]["value"].startswith(exp[k_vs]["email"] + " score="):
    fail("crm's vote of %d: %s, want stored stale@example.org and recomputed %s" % (k_vs, d, exp[k_vs]["email"]))
for k, f in ((k_stray, 'customer_360_contrib shop_orders ["999999"]'),
             (k_dead, "customer_360_candidates last_order shop_orders " + row_dead)):
    if found[("side", k, f)]["recomputed"]["value"] != "no source row":
        fail("%s of %d: %s, want no source row" % (f, k, found[("side", k, f)]))
rc, out = reconcile()
if rc != 1 or "5 fields differ, 5 side-table rows differ" not in out:
    fail("reconcile (text) with drift: exit %d, want 1 and the counts:\n%s" % (rc, out))
for line in ("differs customer_id=%d last_order_amount: stored" % k_grp,
             "side customer_id=%d %s: stored no contribution" % (k_ctb, CT)):
    if line not in out:
        fail("text output lacks %r:\n%s" % (line, out))
# the keys in three hash partitions, each read from the sources on its
# own (groups, aggregates, votes and the side tables each partition's):
# the same drift, the same lines in the same order, the same counts
rc3, out3 = reconcile("--partitions", "3")
if (rc3, out3) != (rc, out):
    fail("reconcile --partitions 3 (exit %d) differs from one partition:\n%s\n--- one partition:\n%s"
         % (rc3, out3, out))

# ---- 3. repair -----------------------------------------------------------------------------
t_rep = int(time.time()) * 1_000_000
rc, out = reconcile("--repair", "--partitions", "3")
t_rep_end = int(time.time() + 1) * 1_000_000
if rc != 0 or "repaired" not in out:
    fail("reconcile --repair --partitions 3 exited %d (want 0, 'repaired'):\n%s" % (rc, out))
got = wide()
if got != exp:
    diff = ["customer %d: wide %s, sources %s" % (c, got.get(c), exp.get(c)) for c in sorted(set(exp) | set(got))
            if got.get(c) != exp.get(c)]
    fail("after --repair customer_360 differs from the sources:\n  %s" % "\n  ".join(diff[:8]))
n = pg("SELECT count(*) FROM customer_360_contrib WHERE _row::jsonb ->> 0 = '%d' AND NOT _deleted "
       "AND customer_id = %d" % (o_ctb, k_ctb), PDB).strip()
m = pg("SELECT count(*) FROM customer_360_candidates WHERE _row_id::jsonb ->> 0 = '%d' AND NOT _deleted "
       "AND customer_id = %d" % (o_cand, k_cand), PDB).strip()
if (n, m) != ("1", "1"):
    fail("after --repair: %s live contributions of order %d and %s live candidates of order %d, want 1 and 1"
         % (n, o_ctb, m, o_cand))
st = pg("SELECT (SELECT _value FROM customer_360_votes WHERE customer_id = %d AND _field = 'verified_email' "
        "AND _source = 'crm'), (SELECT _deleted FROM customer_360_contrib WHERE _row = '[\"999999\"]'), "
        "(SELECT _deleted FROM customer_360_candidates WHERE customer_id = %d AND _row_id = '%s')"
        % (k_vs, k_dead, row_dead), PDB).strip().split("\t")
if st != [exp[k_vs]["email"], "t", "t"]:
    fail("after --repair: crm's vote of %d, the stray contribution's and the revived candidate's deletion marks "
         "are %s, want %s, t, t" % (k_vs, st, exp[k_vs]["email"]))
# the deletions the repair made carry its own time (the start of its
# transaction, whole seconds), not the 2001 of the rows they replaced
REP_SQL = ("SELECT (SELECT _rank FROM customer_360_contrib WHERE _row = '[\"999999\"]'), "
           "(SELECT _commit_us FROM customer_360_candidates WHERE customer_id = %d AND _row_id = '%s')"
           % (k_dead, row_dead))
rk, cu = pg(REP_SQL, PDB).strip().split("\t")
if not (rk[0] == "8" and t_rep <= int(rk[1:16], 16) <= t_rep_end and rk[16:] == "0" * 32):
    fail("after --repair: the stray contribution's rank %s must be the repair's time (between %d and %d us)"
         % (rk, t_rep, t_rep_end))
if not t_rep <= int(cu) <= t_rep_end:
    fail("after --repair: the revived candidate's _commit_us %s must be the repair's time (between %d and %d)"
         % (cu, t_rep, t_rep_end))
rc, out = reconcile()
if rc != 0 or "no drift" not in out:
    fail("reconcile after --repair: exit %d (want 0, 'no drift'):\n%s" % (rc, out))

# ---- 4. the streams after the repair ----------------------------------------------------------
before = int(exp[k_ctb]["order_count"])
newest = next_oid[0]
next_oid[0] += 1
ORD[newest] = [k_grp, "2025-06-01 00:00:00.000001"]     # newer than every generated order
my("INSERT INTO shop360.orders VALUES (%d, %d, 12.34, '%s');" % (newest, k_grp, ORD[newest][1]) + "DELETE FROM shop360.orders WHERE id = %d;" % o_ctb +
   "UPDATE shop360.orders SET amount = amount + 2.50 WHERE customer_id = %d;" % k_agg +
   "UPDATE crm360.customers SET email = 'zoe@example.org', email_verified = 1 WHERE id = %d;" % k_vote)
del ORD[o_ctb]
after = wait_sources("after the repair, further source changes")
if int(after[k_ctb]["order_count"] or 0) != before - 1:
    fail("customer %d: the delete of order %d (its contribution repaired) must count once: %s -> %s"
         % (k_ctb, o_ctb, before, after[k_ctb]["order_count"]))
if after[k_grp]["last_order_id"] != str(newest):
    fail("customer %d: the new newest order %d must take the group: %s" % (k_grp, newest, after[k_grp]))
rc, out = reconcile()
if rc != 0 or "no drift" not in out:
    fail("reconcile after the further changes: exit %d (want 0):\n%s" % (rc, out))

# ---- 5. --repair next to busy streams ----------------------------------------------------------
# The wide table and its side tables are locked together before the
# sources are read (each attempt waits at most 200 ms, then gives back
# what it got and tries again: the sinks take them in their own order).
# What a repair sees in flight it writes under ranks the change then
# beats, so once the writer stops the streams converge on the sources.
wstop = threading.Event()
werr = []


def writer():
    try:
        while not wstop.is_set():
            my(crm_change() + shop_change())
            pg(loyalty_change(), PDB)
            time.sleep(0.02)
    except BaseException as e:  # noqa: B902 - reported below
        werr.append(e)


th = threading.Thread(target=writer)
th.start()
try:
    for i in range(3):
        rc, out = reconcile("--repair")
        if rc != 0:
            fail("reconcile --repair next to busy streams (%d) exited %d:\n%s" % (i, rc, out))
finally:
    wstop.set()
    th.join()
if werr:
    fail("the writer failed: %r" % werr[0])
wait_sources("after repairs next to busy streams")
rc, out = reconcile()
if rc != 0 or "no drift" not in out:
    fail("reconcile after repairs next to busy streams: exit %d (want 0):\n%s" % (rc, out))

# ---- 6. retention after a repair ----------------------------------------------------------------
# the shop pipeline again, with tombstone_keep 1h and a purge every 2 s;
# two deleted entries of 2001 planted beside the repaired ones must go
# (the purge ran), the repaired ones (deleted at the repair's time) stay
dblib.stop([STREAM["shop"]])
if STREAM["shop"].returncode != 0:
    fail("the shop pipeline exited %s on SIGTERM, want 0" % STREAM["shop"].returncode)
pg("INSERT INTO customer_360_contrib (customer_id, _mapping, _row, _rank, _deleted, order_count, total_spent) "
   "VALUES (%d, 'shop_orders', '[\"999998\"]', '%s', true, 1, 5.00); "
   "INSERT INTO customer_360_candidates (customer_id, _group, _mapping, _row_id, _vrank, _grank, _deleted, "
   "_source, _commit_us, _values) SELECT customer_id, _group, _mapping, '[\"999998\"]', _vrank, _grank, true, "
   "_source, %d, _values FROM customer_360_candidates WHERE customer_id = %d AND _row_id = '%s'"
   % (k_stray, OLD_RANK, OLD_US, k_dead, row_dead), PDB, superuser=True)
with open(PF["shop"]) as f:
    keep_cfg = f.read().replace("flush_ms: 50}", "flush_ms: 50, tombstone_keep: 1h, tombstone_purge_every: 2s}")
if "tombstone_keep" not in keep_cfg:
    fail("could not set tombstone_keep in the shop pipeline's configuration")
PF_KEEP = os.path.join(TMP, "shop-keep.yaml")
open(PF_KEEP, "w").write(keep_cfg)
lf = open(os.path.join(TMP, "shop-keep.log"), "ab")
p = subprocess.Popen([BIN, "run", "-c", PF_KEEP], stdout=lf, stderr=lf)
PROCS.append(p)
STREAM["shop"] = p
PLANTED = ("SELECT (SELECT count(*) FROM customer_360_contrib WHERE _row = '[\"999998\"]') + "
           "(SELECT count(*) FROM customer_360_candidates WHERE _row_id = '[\"999998\"]')")
t0 = time.time()
while pg(PLANTED, PDB).strip() != "0":
    if p.poll() is not None:
        fail("the shop pipeline with tombstone_keep exited %s" % p.returncode)
    if time.time() - t0 > 60:
        fail("the purge (tombstone_keep 1h, every 2 s) did not remove the planted deleted entries of 2001")
    time.sleep(0.5)
# the DELETE that removed the planted entries (one statement per side
# table, at most 10000 rows) would have removed the repaired ones with
# them had they kept their 2001 times
st = pg("SELECT (SELECT _deleted FROM customer_360_contrib WHERE _row = '[\"999999\"]'), "
        "(SELECT _deleted FROM customer_360_candidates WHERE customer_id = %d AND _row_id = '%s')"
        % (k_dead, row_dead), PDB).strip().split("\t")
if st != ["t", "t"]:
    fail("the purge with tombstone_keep 1h removed deletions the repair has just made: the stray "
         "contribution's and the revived candidate's _deleted are %s, want t, t" % st)
log("retention: the purge removed the planted entries of 2001 and kept the repair's deletions")

dblib.stop(PROCS)
PROCS.clear()
cleanup()
print("ok - reconcile recomputes the group, the aggregates and the vote of customer_360, finds each injected "
      "drift (wide fields and side-table rows), repairs it, and the streams go on by the rules")
