#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Two-way sync with row deletes on both sides (docs/TWO-WAY.md, deletes).

  crm       (MariaDB)     twd_<pid>.customers  --forward-->  customer_wide
  platform  (PostgreSQL)  customer_wide        --reverse-->  twd_<pid>.customers

Both mappings declare on_delete: delete; the triggers `autoglm-cdc mapping
triggers` generates rank direct edits and, for a direct DELETE, write a
tombstone (every non-key field {"s","t","r","d":1}) into
<table>_tombstones in the deleting transaction; each pipeline reads that
table too (filter / publication) and gives the delete those ranks.

  phase 1  writers on BOTH sides update, delete and re-insert the same 10
           keys for ~6 s.  Every write reads back, in its own transaction,
           the row's and the tombstone's provenance, so the test knows the
           rank of every value and every deletion ever written.
  phase 2  races: a DELETE on one side and an UPDATE of the same key on
           the other, started together (both directions, 4 keys each).
  After the writers stop: both sides hold the same live keys with the
  same values; that is the rule's prediction computed here (per field
  the highest rank written wins; a field whose winner is a deletion is
  NULL; a key whose every winner is a deletion is dead: no row, a
  tombstone on both sides); the winning ranks are those stored; and the
  change counters stop growing (no ping-pong).

Exit 0 pass, 1 fail, 77 skip.  Run: tests/integ/run.sh t_twoway_
"""
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zlib

import dblib
from dblib import BIN, E, fail, log, my, pg

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

NKEYS = 12
SECS = float(os.environ.get("CDC_TWOWAY_SECS", "6"))


ID = "%d" % os.getpid()
MDB = "twd_" + ID
PDB = "twdp_" + ID
SLOTS = ["twdslot_%s_%d" % (ID, i) for i in (1,)]
PUB = "twdpub_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-twdel-")
PROCS = []


def pdsn(superuser=False):
    return dblib.pg_dsn(PDB, superuser)


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[PDB], slots=SLOTS, origins_like="autoglm_cdc_twd%s%%" % ID,
                  my_dbs=[MDB])


dblib.on_fail(cleanup, logdir=TMP)



NKEYS = 10
DEL = object()  # a deletion as a field's value


def gen_triggers(yf, engine):
    return dblib.mapping_triggers(yf, engine, "AFTER DELETE")


def yaml_text():
    return """version: 1
sources:
  crm: {priority: 1}
  platform: {priority: 1}
targets:
  customer_wide:
    table: public.customer_wide
    key: customer_id
    fields:
      customer_id: bigint
      name: {type: text, owners: [crm, platform], rule: latest}
      status: {type: text, owners: [crm, platform], rule: latest}
  crm_customers:
    table: %s.customers
    key: id
    fields:
      id: bigint
      name: {type: text, owners: [crm, platform], rule: latest}
      is_active: {type: bigint, owners: [crm, platform], rule: latest}
mappings:
  - name: forward
    source: crm
    table: %s.customers
    target: customer_wide
    key: {customer_id: id}
    on_delete: delete
    fields:
      name: name
      status: {from: is_active, map: {1: enabled, 0: disabled}}
  - name: reverse
    source: platform
    table: public.customer_wide
    target: crm_customers
    key: {id: customer_id}
    on_delete: delete
    fields:
      name: name
      is_active: {from: status, map: {enabled: 1, disabled: 0}}
""" % (MDB, MDB)


def setup():
    my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s;" % (MDB, MDB))
    my("CREATE TABLE customers (id BIGINT PRIMARY KEY, name TEXT, is_active BIGINT, "
       "_provenance LONGTEXT NOT NULL DEFAULT '{}') CHARSET utf8mb4", MDB)
    pg("DROP DATABASE IF EXISTS %s" % PDB, "postgres", superuser=True)
    pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
    pg("CREATE TABLE public.customer_wide (customer_id bigint PRIMARY KEY, name text, status text, "
       "_provenance jsonb NOT NULL DEFAULT '{}')", PDB)
    yf = os.path.join(TMP, "twoway-deletes.yaml")
    open(yf, "w").write(yaml_text())
    my(gen_triggers(yf, "mysql"), MDB)
    pg(gen_triggers(yf, "postgres"), PDB, superuser=True)
    pg("ALTER TABLE public.customer_wide_tombstones OWNER TO %s; CREATE PUBLICATION %s FOR TABLE "
       "public.customer_wide, public.customer_wide_tombstones" % (E["PGUSER"], PUB), PDB, superuser=True)
    return yf


def start(name, yf):
    common = ["--pipeline", "%s%s" % (name, ID), "--state-dir", os.path.join(TMP, "state-" + name),
              "-X", "mapping.files=" + yf, "-X", "checkpoint.interval_ms=200"]
    if name == "crm":
        a = [BIN, "run", "--application-id", "crm", "--source", "mysql", "--mysql-dsn",
             "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"]),
             "--include", "%s.customers,%s.customers_tombstones" % (MDB, MDB),
             "-X", "mysql.server_id=%d" % (7000 + zlib.crc32((ID + name + "d").encode()) % 50000),
             "--sink", "postgres", "-X", "postgres_sink.dsn=" + pdsn(superuser=True),
             "-X", "postgres_sink.create_tables=false", "-X", "postgres_sink.same_value=skip",
             "-X", "postgres_sink.flush_ms=50", "-X", "postgres_sink.origin=autoglm_cdc_twd%s_crm" % ID]
    else:
        a = [BIN, "run", "--application-id", "platform", "--source", "postgres", "--postgres-dsn", pdsn(),
             "-X", "postgres.slot=" + SLOTS[0], "-X", "postgres.publication=" + PUB,
             "-X", "postgres.tables=public.customer_wide,public.customer_wide_tombstones",
             "--sink", "mysql", "-X", "mysql_sink.dsn=mysql://root:%s@127.0.0.1:%s/%s" % (
                 E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], MDB),
             "-X", "mysql_sink.create_tables=false", "-X", "mysql_sink.same_value=skip",
             "-X", "mysql_sink.flush_ms=50"]
    errf = open(os.path.join(TMP, "%s.log" % name), "ab")
    p = subprocess.Popen(a + common, stdout=errf, stderr=errf)
    PROCS.append(p)
    return p


STATUS = {"1": "enabled", "0": "disabled"}


def m_rows():
    out = {}
    for line in my("SELECT id, COALESCE(name, '\\\\N'), COALESCE(is_active, -1) FROM customers ORDER BY id",
                   MDB).splitlines():
        i, n, a = line.split("\t")
        out[int(i)] = (n, STATUS.get(a, "\\N" if a == "-1" else a))
    return out


def p_rows():
    out = {}
    for line in pg("SELECT customer_id, coalesce(name, '\\N'), coalesce(status, '\\N') FROM customer_wide "
                   "ORDER BY 1", PDB).splitlines():
        i, n, s = line.split("\t")
        out[int(i)] = (n, s)
    return out


def counters():
    o = pg("SELECT coalesce(sum(changes), 0) FROM autoglm_cdc_offsets", PDB, superuser=True).strip()
    m = my("SELECT COALESCE(SUM(changes), 0) FROM autoglm_cdc_offsets", MDB).strip()
    mk = my("SELECT COALESCE(SUM(n), 0) FROM autoglm_cdc_marker", MDB).strip()
    w = dblib.pg_versions(PDB, "customer_wide", "customer_wide_tombstones")
    return (o, m, mk, w)


def wait_equal(what, timeout=60):
    # equal twice in a row, a second apart: nothing in flight
    return dblib.wait_sides(what, m_rows, p_rows, PROCS, timeout=timeout, twice=True)


def settle(what, secs=4):
    """The counters must stop moving (no ping-pong)."""
    return dblib.settle(what, counters, secs)


# ---- writers: every statement reads back the row and the tombstone ---------------------

def my_readback(key):
    return ("SELECT 'R', id, COALESCE(name, '\\\\N'), COALESCE(is_active, -1), _provenance FROM customers WHERE id = %d; "
            "SELECT 'T', id, _provenance FROM customers_tombstones WHERE id = %d;" % (key, key))


def pg_readback(key):
    return ("SELECT 'R', customer_id, coalesce(name, '\\N'), coalesce(status, '\\N'), _provenance::text FROM "
            "customer_wide WHERE customer_id = %d; SELECT 'T', customer_id, _provenance::text FROM "
            "customer_wide_tombstones WHERE customer_id = %d;" % (key, key))


def my_stmt(rnd, seed, k, key):
    x = rnd.random()
    if x < 0.2:
        return "DELETE FROM customers WHERE id = %d" % key
    if x < 0.4:
        return "INSERT IGNORE INTO customers (id, name, is_active) VALUES (%d, 'mi%d-%d', %d)" % (
            key, seed, k, rnd.randrange(2))
    sets = []
    if rnd.random() < 0.7:
        sets.append("name = 'm%d-%d'" % (seed, k))
    if rnd.random() < 0.6 or not sets:
        sets.append("is_active = %d" % rnd.randrange(2))
    return "UPDATE customers SET %s WHERE id = %d" % (", ".join(sets), key)


def pg_stmt(rnd, seed, k, key):
    x = rnd.random()
    if x < 0.2:
        return "DELETE FROM customer_wide WHERE customer_id = %d" % key
    if x < 0.4:
        return ("INSERT INTO customer_wide (customer_id, name, status) VALUES (%d, 'pi%d-%d', '%s') "
                "ON CONFLICT DO NOTHING" % (key, seed, k, rnd.choice(["enabled", "disabled"])))
    sets = []
    if rnd.random() < 0.7:
        sets.append("name = 'p%d-%d'" % (seed, k))
    if rnd.random() < 0.6 or not sets:
        sets.append("status = '%s'" % rnd.choice(["enabled", "disabled"]))
    return "UPDATE customer_wide SET %s WHERE customer_id = %d" % (", ".join(sets), key)


def my_proc(stmts):
    """stmts: [(key, statement, pause)] -> a mariadb client fed the script"""
    sql = ["SET SESSION autocommit = 1;"]
    for key, st, pause in stmts:
        sql.append("START TRANSACTION; %s; %s COMMIT; DO SLEEP(%.3f);" % (st, my_readback(key), pause))
    # --force: a deadlock with the sink rolls the transaction back; the
    # script goes on (what it reads back afterwards is still a real write)
    a = dblib.my_args() + ["--force", MDB]
    return subprocess.Popen(a, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True), "\n".join(sql) + "\n"


def pg_proc(stmts):
    sql = []
    for key, st, pause in stmts:
        sql.append("BEGIN; %s; %s COMMIT; SELECT pg_sleep(%.3f);" % (st, pg_readback(key), pause))
    env = dict(os.environ, PGPASSWORD=E["PGPASSWORD"])
    return subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=0", "-A", "-t", "-F", "\t", "-h", E["PGHOST"],
                             "-p", E["PGPORT"], "-U", E["PGUSER"], "-d", PDB], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env), "\n".join(sql) + "\n"


DEADLOCKS = [0]


def check_errors(i, side, err):
    """Only deadlocks with the sinks may fail a writer's transaction (it
    is rolled back whole); anything else is a failure."""
    for line in err.splitlines():
        if not line.strip() or line.startswith("-") or not ("ERROR" in line or "error" in line):
            continue
        if "Deadlock" in line or "deadlock" in line:
            DEADLOCKS[0] += 1
        elif "current transaction is aborted" in line:
            pass
        else:
            fail("writer %d (%s): %s" % (i, side, line))


CAND = {}  # (key, wide field) -> (rank, value or DEL)
SEEN = {"R": 0, "T": 0}


def offer(key, field, rank, val):
    if not rank:
        return
    old = CAND.get((key, field))
    if old is None or rank > old[0]:
        CAND[(key, field)] = (rank, val)
    elif rank == old[0] and (old[1] is DEL) != (val is DEL):
        fail("key %d %s: rank %s read back both as a deletion and as a value" % (key, field, rank))


def collect(side, out):
    """Every row or tombstone read back is a set of candidates: each
    provenance entry is a value (or a deletion) some write gave that rank."""
    for line in out.splitlines():
        f = line.split("\t")
        if f[0] == "R" and len(f) == 5:
            key, prov = int(f[1]), json.loads(f[4])
            vals = {"name": f[2], "status": STATUS.get(f[3], "\\N" if f[3] == "-1" else f[3]) if side == "m" else f[3]}
            for wf, sf in (("name", "name"), ("status", "is_active" if side == "m" else "status")):
                e = prov.get(sf)
                if e:
                    offer(key, wf, e["r"], DEL if e.get("d") else vals[wf])
            SEEN["R"] += 1
        elif f[0] == "T" and len(f) == 3:
            key, prov = int(f[1]), json.loads(f[2])
            for wf, sf in (("name", "name"), ("status", "is_active" if side == "m" else "status")):
                e = prov.get(sf)
                if e:
                    if not e.get("d"):
                        fail("tombstone of key %d holds a live entry: %s" % (key, e))
                    offer(key, wf, e["r"], DEL)
            SEEN["T"] += 1


def run(procs):
    import threading
    res = [None] * len(procs)

    def go(i):
        res[i] = procs[i][1][0].communicate(procs[i][1][1])
    th = [threading.Thread(target=go, args=(i,)) for i in range(len(procs))]
    for t in th:
        t.start()
    for t in th:
        t.join()
    for i, (side, (p, _)) in enumerate(procs):
        check_errors(i, side, res[i][1])
        collect(side, res[i][0])


def predict():
    exp = {}
    for key in range(1, NKEYS + 1):
        w = [CAND.get((key, f)) for f in ("name", "status")]
        if any(c is not None and c[1] is not DEL for c in w):
            exp[key] = tuple("\\N" if c is None or c[1] is DEL else c[1] for c in w)
    return exp


# ---- run ----------------------------------------------------------------------------

log("two-way deletes: writers on both sides update, delete and re-insert")
YF = setup()
P = [start("crm", YF), start("platform", YF)]
time.sleep(2.5)
my("INSERT INTO customers (id, name, is_active) VALUES %s" %
   ", ".join("(%d, 'seed-%d', %d)" % (i, i, i % 2) for i in range(1, NKEYS + 1)), MDB)
wait_equal("the seeded rows")
collect("m", my("".join(my_readback(k) for k in range(1, NKEYS + 1)), MDB))

n = int(SECS * 25)
procs = []
for seed, side in ((1, "m"), (2, "m"), (3, "p"), (4, "p")):
    rnd = random.Random(seed)
    st = [(key, (my_stmt if side == "m" else pg_stmt)(rnd, seed, k, key), 0.08 * rnd.random())
          for k in range(n) for key in [rnd.randrange(1, NKEYS + 1)]]
    procs.append((side, my_proc(st) if side == "m" else pg_proc(st)))
run(procs)
log("phase 1: %d rows and %d tombstones read back (%d writes rolled back by deadlocks)" % (
    SEEN["R"], SEEN["T"], DEADLOCKS[0]))
wait_equal("convergence after the writers")

# phase 2: a delete on one side racing an edit of the same key on the other
live = sorted(m_rows())
for k in range(1, NKEYS + 1):
    if k not in live:  # bring every key back first, from alternating sides
        if k % 2:
            my("START TRANSACTION; INSERT INTO customers (id, name, is_active) VALUES (%d, 'back-%d', 1); %s COMMIT;"
               % (k, k, my_readback(k)), MDB)
        else:
            collect("p", pg("BEGIN; INSERT INTO customer_wide (customer_id, name, status) VALUES (%d, 'back-%d', "
                            "'enabled') ON CONFLICT DO NOTHING; %s COMMIT;" % (k, k, pg_readback(k)), PDB))
collect("m", my("".join(my_readback(k) for k in range(1, NKEYS + 1)), MDB))
wait_equal("every key back")
# Both clients connect first, then wait for an absolute time: the two
# statements run 40 ms apart, well before either side's change arrives
# on the other (one pipeline hop).  Keys 1, 2 and 5, 6: the edit is the
# later one (it keeps its field, the row lives on both sides with the
# other field deleted); keys 3, 4 and 7, 8: the delete is later (dead).
T0 = time.time() + 1.5
races = []


def at_my(t):
    return "DO SLEEP(GREATEST(0, %.6f - UNIX_TIMESTAMP(NOW(6))))" % t


def at_pg(t):
    return "SELECT pg_sleep(greatest(0, %.6f - extract(epoch FROM clock_timestamp())))" % t


for k in range(1, 9):
    t_del, t_edit = (T0 + k * 0.3, T0 + k * 0.3 + 0.04) if k in (1, 2, 5, 6) else (T0 + k * 0.3 + 0.04, T0 + k * 0.3)
    if k <= 4:   # MariaDB deletes, PostgreSQL edits
        races.append(("m", my_proc([(k, "%s; DELETE FROM customers WHERE id = %d" % (at_my(t_del), k), 0)])))
        races.append(("p", pg_proc([(k, "%s; UPDATE customer_wide SET name = 'race-%d' WHERE customer_id = %d" % (
            at_pg(t_edit), k, k), 0)])))
    else:        # PostgreSQL deletes, MariaDB edits
        races.append(("p", pg_proc([(k, "%s; DELETE FROM customer_wide WHERE customer_id = %d" % (at_pg(t_del), k), 0)])))
        races.append(("m", my_proc([(k, "%s; UPDATE customers SET name = 'race-%d' WHERE id = %d" % (
            at_my(t_edit), k, k), 0)])))
run(races)
log("phase 2: 8 delete/edit races started together")

final = wait_equal("convergence after the races")
c1 = settle("after the writers")
exp = predict()
if final != exp:
    diff = ["key %d: both sides %s, the rule predicts %s" % (k, final.get(k, "dead"), exp.get(k, "dead"))
            for k in range(1, NKEYS + 1) if final.get(k) != exp.get(k)]
    fail("converged, but not to the rule's prediction:\n  " + "\n  ".join(diff))

# ranks: the winner's rank is stored on (at least) one side, the other holds
# it too or the same value (same_value=skip); dead keys are tombstones on both
mp = dblib.provenance_by_key(my("SELECT id, _provenance FROM customers", MDB))
pp = dblib.provenance_by_key(pg("SELECT customer_id, _provenance FROM customer_wide", PDB))
mt = dblib.provenance_by_key(my("SELECT id, _provenance FROM customers_tombstones", MDB))
pt = dblib.provenance_by_key(pg("SELECT customer_id, _provenance FROM customer_wide_tombstones", PDB))
same = ndead = 0
for k in range(1, NKEYS + 1):
    dead = k not in exp
    if dead:
        ndead += 1
        if k not in mt or k not in pt:
            fail("key %d is dead but has no tombstone on %s" % (k, "MariaDB" if k not in mt else "PostgreSQL"))
    srcm, srcp = (mt, pt) if dead else (mp, pp)
    for wf, fm in (("name", "name"), ("status", "is_active")):
        best = CAND.get((k, wf))
        if not best:
            continue
        em, ep = srcm[k].get(fm, {}), srcp[k].get(wf, {})
        rm, rp = em.get("r"), ep.get("r")
        if rm == rp == best[0]:
            same += 1
        elif max(rm or "", rp or "") != best[0]:
            fail("key %d %s: winning rank %s on neither side (MariaDB %s, PostgreSQL %s)" % (k, wf, best[0], em, ep))
        if best[1] is DEL and not (em.get("d") and ep.get("d")):
            fail("key %d %s: a deletion won but is not marked on both sides (%s / %s)" % (k, wf, em, ep))
# the races: the later write won, and both outcomes happened
for k in range(1, 9):
    want = ("race-%d" % k, "\\N") if k in (1, 2, 5, 6) else None
    if final.get(k) != want:
        fail("race on key %d: %s, expected %s (the later of delete and edit wins)" % (k, final.get(k), want or "dead"))
log("both sides converged to the rule's prediction: %d live keys, %d dead (tombstones on both sides); %d fields "
    "with the winning rank on both sides; counters settled at %s" % (len(exp), ndead, same, (c1,)))
time.sleep(3)
if counters() != c1:
    fail("counters moved after settling: %s -> %s (ping-pong)" % (c1, counters()))
dblib.stop(P)
PROCS.clear()
cleanup()
print("ok - two-way deletes converge to the rule on both sides and stop")
sys.exit(0)
