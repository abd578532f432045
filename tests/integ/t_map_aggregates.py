#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Aggregates (docs/MAPPINGS.md, Aggregates), MariaDB -> the PostgreSQL
wide table, exactly once.

MariaDB holds customers (id, name) and orders (id, customer_id, amount,
created_at, product_id).  One pipeline (source shop) maps customers to
the wide table's name and orders to five aggregates per customer:
order_count (count), total_spent (sum amount), first_order_at (min
created_at), last_order_at (max created_at) and distinct_products
(count_distinct product_id).  Orders also go to customer ids that have
no customer row: those wide rows exist only while they have orders.

Orders inserted before the stream starts reach the sink only through a
backfill, which runs while the stream is running and has already
delivered changes to some of those same rows: a row delivered by both
must be counted once.  A seeded random workload (CDC_TEST_SEED) inserts
orders, updates amounts and created_at, moves orders to other customers
(customer_id updates) and deletes orders; the stream is killed with
SIGKILL in the middle of it and started again.

The expected table is computed by the source database itself from its
final rows:

  SELECT customer_id, count(*), sum(amount), min(created_at),
         max(created_at), count(DISTINCT product_id) ... GROUP BY 1

and customers without orders must show order_count 0, distinct_products
0 and NULL sum/min/max.  Then the checks:

  * after the kill and restart, the wide table equals that (nothing
    counted twice, nothing lost);
  * a second backfill with unchanged sources changes no row version of
    the wide table nor of its contributions table;
  * the same mapping into the MySQL wide sink is refused at start and by
    `validate`, exit 78, naming the target, the feature and the remedy.

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
MDB = "agm_" + ID
PDB = "agp_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-aggs-")
PROCS = []
NCUST = 10      # customers with a customer row: 1..NCUST
NIDS = 14       # orders go to 1..NIDS (11..14 have no customer row)


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[PDB], origins_like="autoglm_cdc_agt%s%%" % ID, my_dbs=[MDB])


dblib.on_fail(cleanup, logdir=TMP)

MAPF = os.path.join(TMP, "aggs.yaml")
open(MAPF, "w").write("""sources: {shop: {}}
targets:
  customer_360:
    table: public.customer_360
    key: customer_id
    fields:
      customer_id: bigint
      name: {type: text, owner: shop}
      order_count: {type: bigint, owner: shop}
      total_spent: {type: 'numeric(14,2)', owner: shop}
      first_order_at: {type: timestamptz, owner: shop}
      last_order_at: {type: timestamptz, owner: shop}
      distinct_products: {type: bigint, owner: shop}
mappings:
  - source: shop
    table: %(db)s.customers
    target: customer_360
    key: {customer_id: id}
    fields: {name: name}
  - source: shop
    table: %(db)s.orders
    target: customer_360
    key: {customer_id: customer_id}
    aggregates:
      order_count: count
      total_spent: {sum: amount}
      first_order_at: {min: created_at}
      last_order_at: {max: created_at}
      distinct_products: {count_distinct: product_id}
""" % {"db": MDB})

PIPE = "agt%s" % ID
MYDSN = "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"])


def common(sink="postgres"):
    a = ["--application-id", "shop", "--source", "mysql", "--mysql-dsn", MYDSN, "--sink", sink,
         "-X", "mapping.files=" + MAPF, "--pipeline", PIPE, "--state-dir", os.path.join(TMP, "state")]
    if sink == "postgres":
        a += ["-X", "postgres_sink.dsn=" + dblib.pg_dsn(PDB, superuser=True), "-X", "postgres_sink.flush_ms=50",
              "-X", "postgres_sink.batch_rows=40"]
    else:
        a += ["-X", "mysql_sink.dsn=%s/%s" % (MYDSN, MDB)]
    return a


rnd = random.Random(SEED)
my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; USE %s; "
   "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL); "
   "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(12,2) NOT NULL, "
   "created_at DATETIME(6) NOT NULL, product_id INT NULL)" % (MDB, MDB, MDB))
pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)

# ---- the MySQL wide sink refuses aggregates: at start and in validate -----------

for what, args in (("run", [BIN, "run"] + common("mysql") + ["--include", MDB + ".orders"]),
                   ("validate", [BIN, "validate", "-X", "mapping.files=" + MAPF,
                                 "-X", "mysql_sink.dsn=%s/%s" % (MYDSN, MDB)])):
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if r.returncode != 78:
        fail("mysql sink %s with aggregates: exit %d, expected 78\n%s" % (what, r.returncode, r.stderr))
    for want in ("target 'customer_360' has aggregate fields", "order_count", "MySQL wide sink does not "
                 "maintain aggregates", "--sink postgres"):
        if want not in r.stderr:
            fail("mysql sink %s: the message lacks %r:\n%s" % (what, want, r.stderr))
log("the MySQL wide sink refuses the aggregates at start and in validate (exit 78)")


def amount():
    return "%d.%02d" % (rnd.randint(1, 900), rnd.randint(0, 99))


def created():
    return "2024-%02d-%02d %02d:%02d:00.%06d" % (rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23),
                                                rnd.randint(0, 59), rnd.choice([0, 5, 250000]))


def product():
    return "NULL" if rnd.random() < 0.1 else str(rnd.randint(1, 6))


ORDERS = set()
next_id = [1]


def insert_sql():
    oid = next_id[0]
    next_id[0] += 1
    ORDERS.add(oid)
    return "INSERT INTO orders VALUES (%d, %d, %s, '%s', %s);" % (oid, rnd.randint(1, NIDS), amount(), created(),
                                                                   product())


# customers and orders that exist before the stream: only a backfill sees them
my("USE %s; %s %s" % (MDB, "".join("INSERT INTO customers VALUES (%d, 'c%d');" % (c, c)
                                   for c in range(1, NCUST + 1)),
                      "".join(insert_sql() for _ in range(40))))

ms = my("SHOW MASTER STATUS").split()
SRVID = "%d" % (7000 + zlib.crc32(ID.encode()) % 50000)
logf = open(os.path.join(TMP, "stream.log"), "ab")


def start_stream(frm):
    a = [BIN, "run"] + common() + ["--include", MDB + ".orders," + MDB + ".customers", "-X",
                                   "mysql.server_id=" + SRVID]
    if frm:
        a += ["--from", frm]
    p = subprocess.Popen(a, stdout=logf, stderr=logf)
    PROCS.append(p)
    return p


stream = start_stream("%s:%s" % (ms[0], ms[1]))


def change():
    r = rnd.random()
    live = sorted(ORDERS)
    if not live or r < 0.4:
        return insert_sql()
    oid = rnd.choice(live)
    if r < 0.55:
        return "UPDATE orders SET amount = %s WHERE id = %d;" % (amount(), oid)
    if r < 0.65:
        return "UPDATE orders SET created_at = '%s', product_id = %s WHERE id = %d;" % (created(), product(), oid)
    if r < 0.8:
        # moves its contribution to another customer
        return "UPDATE orders SET customer_id = %d WHERE id = %d;" % (rnd.randint(1, NIDS), oid)
    ORDERS.discard(oid)
    return "DELETE FROM orders WHERE id = %d;" % oid


def workload(n):
    for _ in range(0, n, 10):
        my("USE %s; %s" % (MDB, "".join(change() for _ in range(10))))


def expected():
    """The aggregates by the source's own GROUP BY over its final rows."""
    out = {c: ("c%d" % c, "0", "\\N", "\\N", "\\N", "0") for c in range(1, NCUST + 1)}
    for line in my("SELECT customer_id, count(*), sum(amount), DATE_FORMAT(min(created_at), '%%Y-%%m-%%d "
                   "%%H:%%i:%%s.%%f'), DATE_FORMAT(max(created_at), '%%Y-%%m-%%d %%H:%%i:%%s.%%f'), "
                   "count(DISTINCT product_id) FROM %s.orders GROUP BY customer_id" % MDB).splitlines():
        f = line.split("\t")
        c = int(f[0])
        out[c] = (out[c][0] if c in out else "\\N",) + tuple(f[1:])
    return out


def wide():
    if pg("SELECT to_regclass('public.customer_360') IS NOT NULL", PDB, superuser=True).strip() != "t":
        return {}
    out = {}
    ts = "coalesce(to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), '\\N')"
    for line in pg("SELECT customer_id, coalesce(name, '\\N'), coalesce(order_count::text, 'NULL'), "
                   "coalesce(total_spent::text, '\\N'), %s, %s, coalesce(distinct_products::text, 'NULL') "
                   "FROM customer_360 ORDER BY 1" % (ts % "first_order_at", ts % "last_order_at"),
                   PDB, superuser=True).splitlines():
        f = line.split("\t")
        out[int(f[0])] = tuple(f[1:])
    return out


def wait_equal(what, timeout=150):
    t0 = time.time()
    exp = expected()
    got = {}
    while time.time() - t0 < timeout:
        got = wide()
        if got == exp:
            return got
        if stream.poll() is not None:
            fail("the stream exited %s while waiting for %s" % (stream.returncode, what))
        time.sleep(0.5)
    diff = ["customer %d: wide %s, source %s" % (k, got.get(k), exp.get(k))
            for k in sorted(set(exp) | set(got)) if got.get(k) != exp.get(k)]
    fail("%s: the wide table differs from the source's GROUP BY (%d customers):\n  %s"
         % (what, len(diff), "\n  ".join(diff[:12])))


# phase 1: the stream sees changes of rows that exist only in the snapshot
# so far (updates, moves, deletes of the first 40 orders)
workload(120)
bf = subprocess.Popen([BIN, "backfill"] + common() + ["--table", MDB + ".orders", "--table", MDB + ".customers",
                                                      "-X", "backfill.mode=incremental"],
                      stdout=open(os.path.join(TMP, "backfill1.log"), "wb"), stderr=subprocess.STDOUT)
PROCS.append(bf)
workload(60)  # while the backfill reads
if bf.wait(timeout=300):
    fail("the first backfill exited %d" % bf.returncode)
got = wait_equal("the stream and a backfill of the same rows")
log("stream + backfill: %d customers equal the source's GROUP BY" % len(got))

# phase 2: kill -9 in the middle of the workload, then restart
my("USE %s; %s" % (MDB, "".join(change() for _ in range(30))))
dblib.kill9(stream, "the stream")
workload(100)
stream = start_stream(None)
workload(100)
# customer 1 loses every order (its row stays: count 0, NULL sum/min/max);
# order-only id NIDS too (its row goes)
for line in my("SELECT id FROM %s.orders WHERE customer_id IN (1, %d)" % (MDB, NIDS)).split():
    ORDERS.discard(int(line))
my("DELETE FROM %s.orders WHERE customer_id IN (1, %d)" % (MDB, NIDS))
workload(20)
my("DELETE FROM %s.orders WHERE customer_id IN (1, %d)" % (MDB, NIDS))
# the last changes move every order of customer 2 and of order-only id
# NIDS-1 away: nothing touches those keys afterwards, so only moving the
# contributions (the old key recomputed too) gets them right
my("USE %s; INSERT INTO orders VALUES (%d, 2, 1.00, '2024-01-01', 1), (%d, %d, 1.00, '2024-01-01', 1); "
   "UPDATE orders SET customer_id = 3 WHERE customer_id = 2; UPDATE orders SET customer_id = %d WHERE "
   "customer_id = %d" % (MDB, next_id[0], next_id[0] + 1, NIDS - 1, NIDS - 2, NIDS - 1))
next_id[0] += 2
got = wait_equal("the stream after kill -9 and restart")
if got.get(1, ("",))[1:] != ("0", "\\N", "\\N", "\\N", "0") or NIDS in got:
    fail("customer 1 without orders: %s; order-only id %d: %s" % (got.get(1), NIDS, got.get(NIDS)))
if got.get(2, ("",))[1] != "0" or NIDS - 1 in got:
    fail("orders moved away: customer 2 %s; order-only id %d: %s" % (got.get(2), NIDS - 1, got.get(NIDS - 1)))
counts = [int(v[1]) for v in got.values()]
empty = [k for k, v in got.items() if v[1] == "0"]
extra = sorted(k for k in got if k > NCUST)
log("after kill -9: %d customers equal (%d orders live, %d customers without orders, %d order-only rows)"
    % (len(got), len(ORDERS), len(empty), len(extra)))
if not extra:
    fail("no order went to a customer id without a customer row: the aggregate-only rows were not exercised")
if max(counts) < 2:
    fail("no customer has two orders: the aggregates were not exercised")

# a re-run backfill with unchanged sources changes nothing
tables = ("customer_360", "customer_360_contrib")
before = dblib.pg_versions(PDB, *tables)
with open(os.path.join(TMP, "backfill2.log"), "wb") as bl:
    rc = subprocess.call([BIN, "backfill"] + common() + ["--table", MDB + ".orders", "--table",
                                                         MDB + ".customers", "-X", "backfill.mode=incremental"],
                         stdout=bl, stderr=bl, timeout=300)
if rc:
    fail("the second backfill exited %d" % rc)
if dblib.pg_versions(PDB, *tables) != before:
    fail("a backfill with unchanged sources changed the wide table or its contributions")
if wide() != expected():
    fail("the wide table left the source's GROUP BY after the second backfill")
dblib.stop(PROCS)
PROCS.clear()
cleanup()
print("ok - aggregates (count, sum, min, max, count_distinct) equal the source's GROUP BY after a backfill "
      "of streamed rows, moves, deletes and kill -9; a second backfill changes nothing; the MySQL sink "
      "refuses them (78)")
