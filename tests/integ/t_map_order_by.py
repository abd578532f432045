#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""rule: ordered with order_by (docs/MAPPINGS.md, Ordering by a business
column), MariaDB -> the PostgreSQL wide table.

One MariaDB table of orders (id, customer_id, amount, created_at) feeds
a wide table with one row per customer: last_order_id and last_amount,
both `rule: ordered` by `order_by: created_at`, on_delete: clear.  A
random workload (seed from CDC_TEST_SEED) inserts orders whose
created_at does not follow the insertion order, with many equal
created_at values (ties: broken by commit time, which each transaction
sets with SET TIMESTAMP, unique and increasing), updates amounts, moves
created_at back and forth, and deletes orders.

The test computes the wide table itself from the changes it made, by
the rule: per field, of every value offered (an insert offers both
fields; an update the fields whose value changed, both when created_at
changed; a delete NULL for both, ranked with the deleted row's
created_at) the one with the largest (created_at, commit time).  Then:

  * the wide table equals that computation, with the stream running
    from before the first change;
  * a full backfill afterwards (snapshot rows, ranked by created_at but
    below every streamed commit time) changes no row version: the
    result depends on the rule, not on how the rows arrived.

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
MDB = "obm_" + ID
PDB = "obp_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-orderby-")
PROCS = []
NCUST = 12


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[PDB], origins_like="autoglm_cdc_obt%s%%" % ID, my_dbs=[MDB])


dblib.on_fail(cleanup, logdir=TMP)

MAPF = os.path.join(TMP, "orderby.yaml")
open(MAPF, "w").write("""sources: {shop: {priority: 1}}
targets:
  customer_last:
    table: public.customer_last
    key: customer_id
    fields:
      customer_id: bigint
      last_order_id: {type: bigint, owner: shop, rule: ordered}
      last_amount: {type: 'numeric(12,2)', owner: shop, rule: ordered}
mappings:
  - source: shop
    table: %s.orders
    target: customer_last
    key: {customer_id: customer_id}
    order_by: created_at
    on_delete: clear
    fields: {last_order_id: id, last_amount: amount}
""" % MDB)

PIPE = "obt%s" % ID


def common():
    return ["--application-id", "shop", "--source", "mysql", "--mysql-dsn",
            "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"]),
            "--sink", "postgres", "-X", "postgres_sink.dsn=" + dblib.pg_dsn(PDB, superuser=True),
            "-X", "postgres_sink.flush_ms=50", "-X", "mapping.files=" + MAPF,
            "--pipeline", PIPE, "--state-dir", os.path.join(TMP, "state")]


my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; CREATE TABLE %s.orders (id INT PRIMARY KEY, "
   "customer_id INT NOT NULL, amount DECIMAL(12,2) NOT NULL, created_at DATETIME(6) NOT NULL)"
   % (MDB, MDB, MDB))
pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
ms = my("SHOW MASTER STATUS").split()
lf = open(os.path.join(TMP, "stream.log"), "ab")
stream = subprocess.Popen([BIN, "run"] + common() + [
    "--include", MDB + ".orders", "--from", "%s:%s" % (ms[0], ms[1]),
    "-X", "mysql.server_id=%d" % (7000 + zlib.crc32(ID.encode()) % 50000)], stdout=lf, stderr=lf)
PROCS.append(stream)

# ---- the workload and the computation by the rule ------------------------------

rnd = random.Random(SEED)
T = [int(time.time()) - 500000]
ORDERS = {}     # id -> [customer, amount text, created text, O]
OFFERS = {}     # (customer, field) -> best (O, T, value); O: created_at text,
                # fixed width, so text order is time order
next_id = [100]


def offer(cust, field, o, t, val):
    cur = OFFERS.get((cust, field))
    if cur is None or (o, t) > (cur[0], cur[1]):
        OFFERS[(cust, field)] = (o, t, val)


def created_at():
    # few distinct values: many ties, not in insertion order
    return "2024-0%d-%02d %02d:00:00.%06d" % (rnd.randint(1, 3), rnd.randint(1, 4), rnd.choice([9, 18]),
                                             rnd.choice([0, 250000]))


def change():
    T[0] += 1
    t = T[0]
    r = rnd.random()
    live = sorted(ORDERS)
    if not live or r < 0.45:
        oid = next_id[0]
        next_id[0] += 1
        cust, amount, created = rnd.randint(1, NCUST), "%d.%02d" % (rnd.randint(1, 500), rnd.randint(0, 99)), \
            created_at()
        ORDERS[oid] = [cust, amount, created]
        offer(cust, "last_order_id", created, t, str(oid))
        offer(cust, "last_amount", created, t, amount)
        sql = "INSERT INTO orders VALUES (%d, %d, %s, '%s')" % (oid, cust, amount, created)
    elif r < 0.85:
        oid = rnd.choice(live)
        cust, amount, created = ORDERS[oid]
        na = amount if rnd.random() < 0.4 else "%d.%02d" % (rnd.randint(1, 500), rnd.randint(0, 99))
        nc = created if rnd.random() < 0.5 else created_at()
        if (na, nc) == (amount, created):
            na = "%d.%02d" % (int(amount.split(".")[0]) + 1, int(amount.split(".")[1]))
        ORDERS[oid] = [cust, na, nc]
        if nc != created:
            offer(cust, "last_order_id", nc, t, str(oid))
        if nc != created or na != amount:
            offer(cust, "last_amount", nc, t, na)
        sql = "UPDATE orders SET amount = %s, created_at = '%s' WHERE id = %d" % (na, nc, oid)
    else:
        oid = rnd.choice(live)
        cust, amount, created = ORDERS.pop(oid)
        offer(cust, "last_order_id", created, t, None)
        offer(cust, "last_amount", created, t, None)
        sql = "DELETE FROM orders WHERE id = %d" % oid
    return "SET TIMESTAMP = %d; %s;" % (t, sql)


def model():
    out = {}
    for c in range(1, NCUST + 1):
        f = [OFFERS.get((c, n)) for n in ("last_order_id", "last_amount")]
        if f[0] is None and f[1] is None:
            continue
        out[c] = tuple("\\N" if x is None or x[2] is None else x[2] for x in f)
    return out


def wide():
    if pg("SELECT to_regclass('public.customer_last') IS NOT NULL", PDB, superuser=True).strip() != "t":
        return {}
    out = {}
    for line in pg("SELECT customer_id, coalesce(last_order_id::text, '\\N'), coalesce(last_amount::text, '\\N') "
                   "FROM customer_last ORDER BY 1", PDB, superuser=True).splitlines():
        f = line.split("\t")
        out[int(f[0])] = (f[1], f[2])
    return out


def wait_model(what, timeout=120):
    t0 = time.time()
    exp = model()
    while time.time() - t0 < timeout:
        got = wide()
        if got == exp:
            return got
        if stream.poll() is not None:
            fail("the stream exited %s while waiting for %s" % (stream.returncode, what))
        time.sleep(0.5)
    diff = ["customer %d: wide %s, by the rule %s" % (k, got.get(k), exp.get(k))
            for k in sorted(set(exp) | set(got)) if got.get(k) != exp.get(k)]
    fail("%s: the wide table differs (%d customers):\n  %s" % (what, len(diff), "\n  ".join(diff[:12])))


N = 400
for i in range(0, N, 20):
    my("USE %s; %s" % (MDB, "".join(change() for _ in range(20))))
ties = len({o[2] for o in ORDERS.values()}) < len(ORDERS)
got = wait_model("the stream")
log("%d changes, %d orders live, %d customers: wide table == the rule (ties in created_at: %s)" % (
    N, len(ORDERS), len(got), ties))
if not ties:
    fail("the workload made no equal created_at values: the tie-break was not exercised")

# a full backfill: snapshot rows of every live order change nothing
before = (dblib.pg_versions(PDB, "customer_last"),
          pg("SELECT customer_id, _provenance::text FROM customer_last_provenance() ORDER BY 1", PDB, True))
with open(os.path.join(TMP, "backfill.log"), "wb") as bl:
    rc = subprocess.call([BIN, "backfill"] + common() + ["--table", MDB + ".orders",
                                                         "-X", "backfill.mode=incremental"],
                         stdout=bl, stderr=bl, timeout=300)
if rc:
    fail("backfill exited %d" % rc)
after = (dblib.pg_versions(PDB, "customer_last"),
         pg("SELECT customer_id, _provenance::text FROM customer_last_provenance() ORDER BY 1", PDB, True))
if after != before:
    fail("a backfill after the stream changed the wide table")
if wide() != model():
    fail("the wide table left the rule after the backfill")
dblib.stop(PROCS)
PROCS.clear()
cleanup()
print("ok - rule ordered: the largest created_at wins, ties by commit time, in PostgreSQL; a backfill "
      "changes nothing")
