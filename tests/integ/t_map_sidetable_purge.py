#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Retention of the PostgreSQL wide sink's side tables
(postgres_sink.tombstone_keep; docs/MAPPINGS.md, Row deletes, retention):
deleted candidates (<table>_candidates), gone contributions
(<table>_contrib) and deleted votes (<table>_votes) are purged like
tombstones.

A MariaDB source (application id "a") holds orders (id, customer_id,
amount, created_at) and contacts (id, email).  Three targets:
  stp_last  the newest order per customer as a field group (ordered by
            created_at, on_delete: clear);
  stp_agg   order_count and total per customer (aggregates);
  stp_mail  email by rule vote (per-source state), on_delete: delete.
A seeded workload inserts orders and contacts, then deletes orders, moves
orders to other customers and deletes contacts with commit times in 2001
(SET TIMESTAMP), then does the same with current commit times.

1. without tombstone_keep: every deleted entry stays; the test checks
   that the side tables hold exactly the deletions the workload made
   (old and recent);
2. with tombstone_keep=30d: the purge at start removes exactly the old
   deleted entries (and the old tombstones), keeps the recent ones, and
   writes no row of the wide tables; the candidates table then holds one
   row per live order plus the recent deletions (bounded by the live
   rows), the contributions table likewise, the votes table one entry per
   live contact plus the recent deletions;
3. the stream goes on over the purged tables (new orders, deletes of
   customers' newest orders, a contact deleted and one added): the wide
   tables equal the computation from the source's final rows.
After steps 1-3 the wide tables equal what the test computes with SELECT
from the source's final rows alone.

Exit 0 pass, 1 fail, 77 skip.
"""
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
SDB = "stps_" + ID
PDB = "stpw_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-stp-")
PROCS = []
OLD = 1_000_000_000          # 2001-09-09, seconds
NCUST = 8


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[PDB], my_dbs=[SDB])


dblib.on_fail(cleanup, logdir=TMP, tail=30)

MAPF = os.path.join(TMP, "stp.yaml")
open(MAPF, "w").write("""sources: {a: {priority: 1}}
targets:
  stp_last:
    table: public.stp_last
    key: customer_id
    fields:
      customer_id: bigint
      last_id: {type: bigint, owner: a, rule: ordered, group: last_order}
      last_amount: {type: 'numeric(12,2)', owner: a, rule: ordered, group: last_order}
  stp_agg:
    table: public.stp_agg
    key: customer_id
    fields:
      customer_id: bigint
      order_count: {type: bigint, owner: a}
      total: {type: 'numeric(14,2)', owner: a}
  stp_mail:
    table: public.stp_mail
    key: id
    fields:
      id: bigint
      email: {type: text, owners: [a], rule: vote}
mappings:
  - name: last
    source: a
    table: %(db)s.orders
    target: stp_last
    key: {customer_id: customer_id}
    order_by: created_at
    on_delete: clear
    fields: {last_id: id, last_amount: amount}
  - name: agg
    source: a
    table: %(db)s.orders
    target: stp_agg
    key: {customer_id: customer_id}
    aggregates: {order_count: count, total: {sum: amount}}
  - name: mail
    source: a
    table: %(db)s.contacts
    target: stp_mail
    key: {id: id}
    on_delete: delete
    fields: {email: email}
""" % {"db": SDB})

my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; "
   "CREATE TABLE %s.orders (id INT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(12,2) NOT NULL, "
   "created_at DATETIME(6) NOT NULL); CREATE TABLE %s.contacts (id INT PRIMARY KEY, email VARCHAR(100))"
   % (SDB, SDB, SDB, SDB))
pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
ms = my("SHOW MASTER STATUS").split()
FROM = "%s:%s" % (ms[0], ms[1])

# ---- the workload: the test's own view of the source -------------------------------

rnd = random.Random(SEED)
ORD = {}                  # id -> [customer, created_at, amount]
MAIL = {}                 # id -> email
USED = set()
GONE_CAND = {"old": set(), "new": set()}   # (customer, order id) deleted candidates
GONE_CONTRIB = {"old": set(), "new": set()}  # order ids whose contribution is gone
GONE_VOTE = {"old": set(), "new": set()}     # contact ids deleted


def created_at():
    while True:
        v = "2024-%02d-%02d %02d:%02d:%02d.%06d" % (rnd.randint(1, 6), rnd.randint(1, 28), rnd.randint(0, 23),
                                                  rnd.randint(0, 59), rnd.randint(0, 59), rnd.randint(0, 999999))
        if v not in USED:
            USED.add(v)
            return v


def amount():
    return "%d.%02d" % (rnd.randint(1, 900), rnd.randint(0, 99))


def stamp(era, i):
    return "SET TIMESTAMP=%d;" % (OLD + i) if era == "old" else "SET TIMESTAMP=DEFAULT;"


def insert_orders(era, ids):
    out = []
    for i, oid in enumerate(ids):
        ORD[oid] = [rnd.randint(1, NCUST), created_at(), amount()]
        out.append("%s INSERT INTO %s.orders VALUES (%d, %d, %s, '%s');"
                   % (stamp(era, i), SDB, oid, ORD[oid][0], ORD[oid][2], ORD[oid][1]))
    return out


def newest(cust):
    mine = [(cr, oid) for oid, (c, cr, _) in ORD.items() if c == cust]
    return max(mine)[1] if mine else None


def deletions(era, ndel, nmove, contacts, base):
    """deletes (half of them of a customer's newest order) and moves of
    orders, deletes of contacts; each order changed at most once here"""
    out, touched = [], set()
    for i in range(ndel):
        oid = newest(rnd.randint(1, NCUST)) if i % 2 == 0 else None
        if oid is None or oid in touched:
            oid = rnd.choice(sorted(set(ORD) - touched))
        touched.add(oid)
        GONE_CAND[era].add((ORD[oid][0], oid))
        GONE_CONTRIB[era].add(oid)
        ORD.pop(oid)
        out.append("%s DELETE FROM %s.orders WHERE id=%d;" % (stamp(era, base + i), SDB, oid))
    for i in range(nmove):
        oid = rnd.choice(sorted(set(ORD) - touched))
        touched.add(oid)
        old = ORD[oid][0]
        new = rnd.choice([c for c in range(1, NCUST + 1) if c != old])
        # the candidate at the old customer becomes a deleted one; a
        # moved contribution is the same row (keyed by the order)
        GONE_CAND[era].add((old, oid))
        for e in GONE_CAND.values():   # back where it was deleted: live again
            e.discard((new, oid))
        ORD[oid][0] = new
        out.append("%s UPDATE %s.orders SET customer_id=%d WHERE id=%d;" % (stamp(era, base + ndel + i), SDB, new,
                                                                              oid))
    for i, cid in enumerate(contacts):
        GONE_VOTE[era].add(cid)
        MAIL.pop(cid)
        out.append("%s DELETE FROM %s.contacts WHERE id=%d;" % (stamp(era, base + 50 + i), SDB, cid))
    return out


script = insert_orders("old", range(1, 41))
for cid in range(1, 11):
    MAIL[cid] = "c%d_%d@example.org" % (cid, rnd.randint(1, 99))
    script.append("%s INSERT INTO %s.contacts VALUES (%d, '%s');" % (stamp("old", 60 + cid), SDB, cid, MAIL[cid]))
script += deletions("old", 12, 5, [1, 2, 3, 4], 100)
script += deletions("new", 5, 3, [5, 6], 0)
# moves never reuse a (customer, order) pair that is already a deleted
# candidate, or the counts below would merge them: check the workload
if GONE_CAND["old"] & GONE_CAND["new"]:
    fail("workload: a deleted candidate repeats (seed %d)" % SEED)
my("\n".join(script))


def run(pipe, extra, logname):
    a = [BIN, "--pipeline", pipe, "--application-id", "a", "--state-dir", os.path.join(TMP, "state"),
         "-X", "mapping.files=" + MAPF, "--idle-exit", "2500",
         "--source", "mysql", "--mysql-dsn", "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"],
                                                                              E["MYSQL_PORT"]),
         "--from", FROM, "--include", SDB + ".*",
         "-X", "mysql.server_id=%d" % (7000 + zlib.crc32(pipe.encode()) % 50000),
         "--sink", "postgres", "-X", "postgres_sink.dsn=" + dblib.pg_dsn(PDB)]
    for k, v in extra.items():
        a += ["-X", "postgres_sink.%s=%s" % (k, v)]
    logf = os.path.join(TMP, logname + ".log")
    with open(logf, "wb") as lf:
        p = subprocess.Popen(a, stdout=lf, stderr=lf)
        PROCS.append(p)
        try:
            rc = p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = "timeout"
    if rc != 0:
        fail("%s exited %s" % (logname, rc))
    return open(logf, errors="replace").read()


def rows(q):
    return [tuple(line.split("\t")) for line in pg(q, PDB).splitlines() if line]


def side_state():
    """the deleted entries of the side tables and their sizes"""
    return {
        "cand_del": set((int(c), int(r.strip("[]\""))) for c, r in
                        rows("SELECT customer_id, _row_id FROM stp_last_candidates WHERE _deleted")),
        "cand_n": int(pg("SELECT count(*) FROM stp_last_candidates", PDB)),
        "contrib_del": set(int(r.strip("[]\"")) for (r,) in rows("SELECT _row FROM stp_agg_contrib WHERE _deleted")),
        "contrib_n": int(pg("SELECT count(*) FROM stp_agg_contrib", PDB)),
        "vote_del": set(int(k) for (k,) in rows("SELECT id FROM stp_mail_votes WHERE _deleted")),
        "vote_n": int(pg("SELECT count(*) FROM stp_mail_votes", PDB)),
        "tomb": set(int(k) for (k,) in rows("SELECT id FROM stp_mail_tombstones")),
    }


def check_wide(what):
    """the wide tables equal the computation from the source's final rows"""
    src = my("SELECT id, customer_id, amount, DATE_FORMAT(created_at, '%%Y-%%m-%%d %%H:%%i:%%s.%%f') "
             "FROM %s.orders" % SDB)
    orders = {}
    for line in src.splitlines():
        oid, c, a, cr = line.split("\t")
        orders[int(oid)] = (int(c), cr, a)
    if {k: list(v) for k, v in orders.items()} != {k: [v[0], v[1], v[2]] for k, v in ORD.items()}:
        fail("%s: the source's orders are not the workload's" % what)
    want_last, want_agg = {}, {}
    for oid, (c, cr, a) in orders.items():
        if c not in want_last or cr > orders[want_last[c][0]][1]:
            want_last[c] = (oid, a)
        n, tot = want_agg.get(c, (0, 0))
        want_agg[c] = (n + 1, tot + round(float(a) * 100))
    got_last = {int(c): (i, a) for c, i, a in rows("SELECT customer_id, coalesce(last_id::text, '-'), "
                                                   "coalesce(last_amount::text, '-') FROM stp_last")}
    for c in range(1, NCUST + 1):
        w = want_last.get(c)
        g = got_last.get(c)
        if w is None:
            if g is not None and g != ("-", "-"):
                fail("%s: customer %d has no order but the group is %r" % (what, c, g))
        elif g != (str(w[0]), w[1]):
            fail("%s: customer %d: group %r, the newest order is %r" % (what, c, g, w))
    got_agg = {int(c): (int(n), round(float(t) * 100) if t else 0)
               for c, n, t in rows("SELECT customer_id, order_count, coalesce(total, 0) FROM stp_agg")}
    if got_agg != want_agg:
        fail("%s: aggregates %r, computed from the source %r" % (what, got_agg, want_agg))
    src_mail = dict((int(i), e) for i, e in (line.split("\t") for line in
                                             my("SELECT id, email FROM %s.contacts" % SDB).splitlines()))
    got_mail = dict((int(i), e) for i, e in rows("SELECT id, email FROM stp_mail"))
    if got_mail != src_mail or src_mail != MAIL:
        fail("%s: stp_mail %r, the source's contacts %r" % (what, got_mail, src_mail))


PIPE = "stp_" + ID
WIDE = ["stp_last", "stp_agg", "stp_mail"]

log("1: without tombstone_keep every deleted entry stays")
run(PIPE, {}, "run1")
check_wide("without tombstone_keep")
s1 = side_state()
want_cand = GONE_CAND["old"] | GONE_CAND["new"]
want_contrib = GONE_CONTRIB["old"] | GONE_CONTRIB["new"]
if s1["cand_del"] != want_cand:
    fail("deleted candidates %s, the workload deleted or moved %s" % (sorted(s1["cand_del"]), sorted(want_cand)))
if s1["contrib_del"] != want_contrib:
    fail("gone contributions %s, the workload deleted %s" % (sorted(s1["contrib_del"]), sorted(want_contrib)))
if s1["vote_del"] != GONE_VOTE["old"] | GONE_VOTE["new"]:
    fail("deleted votes %s, the workload deleted contacts %s" % (sorted(s1["vote_del"]),
                                                                sorted(GONE_VOTE["old"] | GONE_VOTE["new"])))
if s1["tomb"] != {1, 2, 3, 4, 5, 6}:
    fail("tombstones %s, expected 1..6" % sorted(s1["tomb"]))
before = dblib.pg_versions(PDB, *WIDE)

log("2: tombstone_keep=30d: the entries deleted in 2001 go, the recent ones stay")
out = run(PIPE, {"tombstone_keep": "30d"}, "run2")
s2 = side_state()
if s2["cand_del"] != GONE_CAND["new"]:
    fail("after the purge: deleted candidates %s, expected only the recent %s"
         % (sorted(s2["cand_del"]), sorted(GONE_CAND["new"])))
if s2["contrib_del"] != GONE_CONTRIB["new"]:
    fail("after the purge: gone contributions %s, expected only the recent %s"
         % (sorted(s2["contrib_del"]), sorted(GONE_CONTRIB["new"])))
if s2["vote_del"] != GONE_VOTE["new"]:
    fail("after the purge: deleted votes %s, expected only the recent %s"
         % (sorted(s2["vote_del"]), sorted(GONE_VOTE["new"])))
if s2["tomb"] != {5, 6}:
    fail("after the purge: tombstones %s, expected 5 and 6" % sorted(s2["tomb"]))
# bounded by the live rows: one candidate and one contribution per live
# order, one vote per live contact, plus the recent deletions
if s2["cand_n"] != len(ORD) + len(GONE_CAND["new"]):
    fail("candidates table: %d rows, expected %d live orders + %d recent deletions"
         % (s2["cand_n"], len(ORD), len(GONE_CAND["new"])))
if s2["contrib_n"] != len(ORD) + len(GONE_CONTRIB["new"]):
    fail("contributions table: %d rows, expected %d live orders + %d recent deletions"
         % (s2["contrib_n"], len(ORD), len(GONE_CONTRIB["new"])))
if s2["vote_n"] != len(MAIL) + len(GONE_VOTE["new"]):
    fail("votes table: %d rows, expected %d live contacts + %d recent deletions"
         % (s2["vote_n"], len(MAIL), len(GONE_VOTE["new"])))
for what, n in (("deleted candidates", len(GONE_CAND["old"])), ("gone contributions", len(GONE_CONTRIB["old"])),
                ("deleted votes", len(GONE_VOTE["old"])), ("tombstones", 4)):
    if "purged %d %s" % (n, what) not in out:
        fail("no 'purged %d %s' in the log:\n%s" % (n, what, out[-3000:]))
if dblib.pg_versions(PDB, *WIDE) != before:
    fail("the purge wrote rows of the wide tables")
check_wide("after the purge")

log("3: the stream goes on over the purged tables")
script = insert_orders("new", range(100, 110))
for c in range(1, NCUST + 1):
    oid = newest(c)
    if oid is not None and rnd.random() < 0.5:
        ORD.pop(oid)
        script.append("DELETE FROM %s.orders WHERE id=%d;" % (SDB, oid))
MAIL.pop(7)
MAIL[20] = "new20@example.org"
script += ["DELETE FROM %s.contacts WHERE id=7;" % SDB,
           "INSERT INTO %s.contacts VALUES (20, 'new20@example.org');" % SDB]
my("\n".join(script))
run(PIPE, {"tombstone_keep": "30d"}, "run3")
check_wide("after more changes")
log("purged old deleted entries of all three side tables; %d orders, %d contacts live" % (len(ORD), len(MAIL)))
cleanup()
print("PASS")
