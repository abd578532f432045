#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Aggregates fed by two sources at once (docs/MAPPINGS.md, Aggregates):
two pipelines, MariaDB -> the PostgreSQL wide table.

Two order tables (shop_orders read by pipeline `shop`, pos_orders by
pipeline `pos`) contribute to the same aggregate fields of one wide row
per customer: order_count, total_spent (sum), first/last order
(min/max created_at) and distinct_products (count_distinct).  Both
pipelines run at the same time with small batches, and a seeded random
workload (CDC_TEST_SEED) interleaves inserts, updates, moves to other
customers and deletes on both tables over a few customers, so that the
two pipelines recompute the same keys concurrently.  Each recomputation
must see the other pipeline's committed contributions (the sinks
serialise it per target): afterwards the wide table equals the source's
own GROUP BY over both tables:

  SELECT customer_id, count(*), sum(amount), min(created_at),
         max(created_at), count(DISTINCT product_id)
  FROM (shop_orders UNION ALL pos_orders) GROUP BY 1

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
MDB = "ags_" + ID
PDB = "agsp_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-aggs2-")
PROCS = []
NCUST = 6


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[PDB], origins_like="autoglm_cdc_ags%%%s%%" % ID, my_dbs=[MDB])


dblib.on_fail(cleanup, logdir=TMP)

MAPF = os.path.join(TMP, "aggs2.yaml")
AGGS = """    key: {customer_id: customer_id}
    aggregates:
      order_count: count
      total_spent: {sum: amount}
      first_order_at: {min: created_at}
      last_order_at: {max: created_at}
      distinct_products: {count_distinct: product_id}
"""
open(MAPF, "w").write("""sources: {shop: {}, pos: {}}
targets:
  sales:
    table: public.sales
    key: customer_id
    fields:
      customer_id: bigint
      order_count: {type: bigint, owners: [shop, pos]}
      total_spent: {type: 'numeric(14,2)', owners: [shop, pos]}
      first_order_at: {type: timestamptz, owners: [shop, pos]}
      last_order_at: {type: timestamptz, owners: [shop, pos]}
      distinct_products: {type: bigint, owners: [shop, pos]}
mappings:
  - source: shop
    table: %(db)s.shop_orders
    target: sales
%(aggs)s  - source: pos
    table: %(db)s.pos_orders
    target: sales
%(aggs)s""" % {"db": MDB, "aggs": AGGS})

MYDSN = "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"])
TABLES = ("shop_orders", "pos_orders")

rnd = random.Random(SEED)
my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; USE %s; %s" % (MDB, MDB, MDB, "".join(
    "CREATE TABLE %s (id INT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(12,2) NOT NULL, "
    "created_at DATETIME(6) NOT NULL, product_id INT NULL);" % t for t in TABLES)))
pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
ms = my("SHOW MASTER STATUS").split()


def start(app, table, n):
    logf = open(os.path.join(TMP, "%s.log" % app), "ab")
    p = subprocess.Popen(
        [BIN, "run", "--application-id", app, "--source", "mysql", "--mysql-dsn", MYDSN, "--sink", "postgres",
         "-X", "postgres_sink.dsn=" + dblib.pg_dsn(PDB, superuser=True), "-X", "postgres_sink.flush_ms=20",
         "-X", "postgres_sink.batch_rows=15", "-X", "mapping.files=" + MAPF,
         "--pipeline", "ags%s%s" % (app, ID), "--state-dir", os.path.join(TMP, "state-" + app),
         "--include", "%s.%s" % (MDB, table), "--from", "%s:%s" % (ms[0], ms[1]),
         "-X", "mysql.server_id=%d" % (7000 + n + zlib.crc32(ID.encode()) % 50000)],
        stdout=logf, stderr=logf)
    PROCS.append(p)
    return p


streams = [start("shop", "shop_orders", 0), start("pos", "pos_orders", 1)]
LIVE = {t: set() for t in TABLES}
next_id = [1]


def change():
    t = rnd.choice(TABLES)
    live = sorted(LIVE[t])
    r = rnd.random()
    if not live or r < 0.45:
        oid = next_id[0]
        next_id[0] += 1
        LIVE[t].add(oid)
        return "INSERT INTO %s VALUES (%d, %d, %d.%02d, '2024-%02d-%02d 10:00:00', %s);" % (
            t, oid, rnd.randint(1, NCUST), rnd.randint(1, 500), rnd.randint(0, 99), rnd.randint(1, 12),
            rnd.randint(1, 28), "NULL" if rnd.random() < 0.1 else rnd.randint(1, 5))
    oid = rnd.choice(live)
    if r < 0.65:
        return "UPDATE %s SET amount = amount + 1 WHERE id = %d;" % (t, oid)
    if r < 0.85:
        return "UPDATE %s SET customer_id = %d WHERE id = %d;" % (t, rnd.randint(1, NCUST), oid)
    LIVE[t].discard(oid)
    return "DELETE FROM %s WHERE id = %d;" % (t, oid)


def expected():
    out = {}
    for line in my("SELECT customer_id, count(*), sum(amount), DATE_FORMAT(min(created_at), '%%Y-%%m-%%d "
                   "%%H:%%i:%%s'), DATE_FORMAT(max(created_at), '%%Y-%%m-%%d %%H:%%i:%%s'), count(DISTINCT "
                   "product_id) FROM (SELECT * FROM %s.shop_orders UNION ALL SELECT * FROM %s.pos_orders) o "
                   "GROUP BY customer_id" % (MDB, MDB)).splitlines():
        f = line.split("\t")
        out[int(f[0])] = tuple(f[1:])
    return out


def wide():
    if pg("SELECT to_regclass('public.sales') IS NOT NULL", PDB, superuser=True).strip() != "t":
        return {}
    out = {}
    ts = "coalesce(to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), '\\N')"
    for line in pg("SELECT customer_id, order_count, coalesce(total_spent::text, '\\N'), %s, %s, "
                   "distinct_products FROM sales ORDER BY 1" % (ts % "first_order_at", ts % "last_order_at"),
                   PDB, superuser=True).splitlines():
        f = line.split("\t")
        out[int(f[0])] = tuple(f[1:])
    return out


def wait_equal(what):
    t0 = time.time()
    exp, got = expected(), {}
    while time.time() - t0 < 150:
        got = wide()
        if got == exp:
            return got
        for p in streams:
            if p.poll() is not None:
                fail("a pipeline exited %s" % p.returncode)
        time.sleep(0.3)
    diff = ["customer %d: wide %s, source %s" % (k, got.get(k), exp.get(k))
            for k in sorted(set(exp) | set(got)) if got.get(k) != exp.get(k)]
    fail("%s: the wide table differs from the GROUP BY over both tables:\n  %s" % (what, "\n  ".join(diff)))


# rounds of many small transactions on both tables, in parallel with both
# pipelines; each round ends with both tables changing the same customer
# (the last batches of the two pipelines recompute the same key at once),
# and the result is checked before the next round corrects anything
for rnd_no in range(6):
    for _ in range(25):
        my("USE %s; %s" % (MDB, "".join(change() for _ in range(rnd.randint(1, 6)))))
    c = rnd.randint(1, NCUST)
    for i in range(8):
        t = TABLES[i % 2]
        oid = next_id[0]
        next_id[0] += 1
        LIVE[t].add(oid)
        my("USE %s; INSERT INTO %s VALUES (%d, %d, 1.00, '2024-06-01 10:00:00', 1);" % (MDB, t, oid, c))
    got = wait_equal("round %d" % rnd_no)
both = pg("SELECT count(DISTINCT _mapping) FROM sales_contrib", PDB, superuser=True).strip()
if both != "2":
    fail("contributions of %s mappings, expected both" % both)
log("two pipelines: %d customers equal the GROUP BY over both tables (%d + %d orders live)"
    % (len(got), len(LIVE["shop_orders"]), len(LIVE["pos_orders"])))
dblib.stop(PROCS)
PROCS.clear()
cleanup()
print("ok - aggregates of two sources written by two concurrent pipelines equal the GROUP BY over both tables")
