#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Two-way sync: a key re-created after a delete, under every rule
(docs/TWO-WAY.md, row deletes; generated triggers of both engines).

  crm       (MariDB)      rei_<pid>_<round>.customers  --forward-->  customer_wide
  platform  (PostgreSQL)  customer_wide                --reverse-->  customers

One field per rule: name (latest), tier (priority), score (weighted); both
mappings delete rows.  Two rounds: in round 1 crm has the higher priority
and weight, in round 2 platform has, so each engine's triggers play the
low and the high side.  Per round:

  A  the high side deletes a key, the low side re-inserts it with every
     field: name is the insert's (latest, ranked after the delete), tier
     and score stay deleted (a higher source deleted them) on BOTH sides;
  B  the low side deletes a key, the high side re-inserts it: every field
     is the insert's;
  C  the high side deletes a key, the low side re-inserts it with only
     tier and score: the insert wins no field and is refused; the key
     stays dead on both sides;
  R  writers on both sides update, delete and re-insert 8 keys at random;
     every write reads back, in its transaction, the row's and the
     tombstone's provenance, so the test knows the rank of everything
     written.  After the writers stop both sides hold, per field, the
     value (or deletion) of the highest rank written; a key whose every
     winner is a deletion is dead (a tombstone on both sides, no row).

The two sides must be equal, values and ranks, and match these
predictions; the change counters must stop growing.

Exit 0 pass, 1 fail, 77 skip.  Run: tests/integ/run.sh t_twoway_
"""
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import zlib

import dblib
from dblib import BIN, E, fail, log, my, pg

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

SECS = float(os.environ.get("CDC_TWOWAY_SECS", "4"))
ID = "%d" % os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-twrei-")
FIELDS = ("name", "tier", "score")
RULE = {"name": "latest", "tier": "priority", "score": "weighted"}
NKEYS = 8
DEL = object()
PROCS = []
R = {}   # the round: MDB, PDB, SLOT, PUB, high, low


def cleanup(all_rounds=True):
    rounds = (1, 2) if all_rounds else (R["n"],)
    dblib.cleanup(PROCS, TMP if all_rounds else None, pg_dbs=["reip_%s_%d" % (ID, n) for n in rounds],
                  slots=["reislot_%s_%d" % (ID, n) for n in rounds], origins_like="autoglm_cdc_rei%s%%" % ID,
                  my_dbs=["rei_%s_%d" % (ID, n) for n in rounds])


dblib.on_fail(cleanup, logdir=TMP)


def yaml_text(hi):
    pr = {"crm": (2, 0.7), "platform": (1, 0.3)} if hi == "crm" else {"crm": (1, 0.3), "platform": (2, 0.7)}
    flds = "".join("      %s: {type: text, owners: [crm, platform], rule: %s}\n" % (f, RULE[f]) for f in FIELDS)
    maps = "".join("      %s: %s\n" % (f, f) for f in FIELDS)
    return """version: 1
sources:
  crm: {priority: %d, weight: %s}
  platform: {priority: %d, weight: %s}
targets:
  customer_wide:
    table: public.customer_wide
    key: customer_id
    fields:
      customer_id: bigint
%s  crm_customers:
    table: %s.customers
    key: id
    fields:
      id: bigint
%smappings:
  - name: forward
    source: crm
    table: %s.customers
    target: customer_wide
    key: {customer_id: id}
    on_delete: delete
    fields:
%s  - name: reverse
    source: platform
    table: public.customer_wide
    target: crm_customers
    key: {id: customer_id}
    on_delete: delete
    fields:
%s""" % (pr["crm"][0], pr["crm"][1], pr["platform"][0], pr["platform"][1], flds, R["MDB"], flds, R["MDB"],
         maps, maps)


def setup(n, hi):
    R.update(n=n, MDB="rei_%s_%d" % (ID, n), PDB="reip_%s_%d" % (ID, n), SLOT="reislot_%s_%d" % (ID, n),
             PUB="reipub_%s_%d" % (ID, n), high="m" if hi == "crm" else "p", low="p" if hi == "crm" else "m")
    cols = ", ".join("%s TEXT" % f for f in FIELDS)
    my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s;" % (R["MDB"], R["MDB"]))
    my("CREATE TABLE customers (id BIGINT PRIMARY KEY, %s, _provenance LONGTEXT NOT NULL DEFAULT '{}') "
       "CHARSET utf8mb4" % cols, R["MDB"])
    pg("DROP DATABASE IF EXISTS %s" % R["PDB"], "postgres", superuser=True)
    pg("CREATE DATABASE %s OWNER %s" % (R["PDB"], E["PGUSER"]), "postgres", superuser=True)
    pg("CREATE TABLE public.customer_wide (customer_id bigint PRIMARY KEY, %s, _provenance jsonb NOT NULL "
       "DEFAULT '{}')" % cols, R["PDB"])
    yf = os.path.join(TMP, "reinsert-%d.yaml" % n)
    open(yf, "w").write(yaml_text(hi))
    my(dblib.mapping_triggers(yf, "mysql", "AFTER DELETE"), R["MDB"])
    pg(dblib.mapping_triggers(yf, "postgres", "AFTER DELETE"), R["PDB"], superuser=True)
    pg("ALTER TABLE public.customer_wide_tombstones OWNER TO %s; CREATE PUBLICATION %s FOR TABLE "
       "public.customer_wide, public.customer_wide_tombstones" % (E["PGUSER"], R["PUB"]), R["PDB"], superuser=True)
    return yf


def start(name, yf):
    common = ["--pipeline", "rei%s_%d_%s" % (ID, R["n"], name), "--state-dir",
              os.path.join(TMP, "state-%d-%s" % (R["n"], name)), "-X", "mapping.files=" + yf,
              "-X", "checkpoint.interval_ms=200"]
    if name == "crm":
        a = [BIN, "run", "--application-id", "crm", "--source", "mysql", "--mysql-dsn",
             "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"]),
             "--include", "%s.customers,%s.customers_tombstones" % (R["MDB"], R["MDB"]),
             "-X", "mysql.server_id=%d" % (8000 + zlib.crc32((ID + name + str(R["n"])).encode()) % 50000),
             "--sink", "postgres", "-X", "postgres_sink.dsn=" + dblib.pg_dsn(R["PDB"], True),
             "-X", "postgres_sink.create_tables=false", "-X", "postgres_sink.same_value=skip",
             "-X", "postgres_sink.flush_ms=50",
             "-X", "postgres_sink.origin=autoglm_cdc_rei%s_%d_crm" % (ID, R["n"])]
    else:
        a = [BIN, "run", "--application-id", "platform", "--source", "postgres", "--postgres-dsn",
             dblib.pg_dsn(R["PDB"]), "-X", "postgres.slot=" + R["SLOT"], "-X", "postgres.publication=" + R["PUB"],
             "-X", "postgres.tables=public.customer_wide,public.customer_wide_tombstones",
             "--sink", "mysql", "-X", "mysql_sink.dsn=mysql://root:%s@127.0.0.1:%s/%s" % (
                 E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], R["MDB"]),
             "-X", "mysql_sink.create_tables=false", "-X", "mysql_sink.same_value=skip",
             "-X", "mysql_sink.flush_ms=50"]
    errf = open(os.path.join(TMP, "%d-%s.log" % (R["n"], name)), "ab")
    p = subprocess.Popen(a + common, stdout=errf, stderr=errf)
    PROCS.append(p)
    return p


# ---- reading both sides ------------------------------------------------------------

SEL = ", ".join("coalesce(%s, '\\N')" % f for f in FIELDS)


def m_rows():
    return {int(l.split("\t")[0]): tuple(l.split("\t")[1:]) for l in my(
        "SELECT id, %s FROM customers ORDER BY id" % SEL.replace("coalesce", "COALESCE").replace("'\\N'", "'\\\\N'"),
        R["MDB"]).splitlines()}


def p_rows():
    return {int(l.split("\t")[0]): tuple(l.split("\t")[1:]) for l in pg(
        "SELECT customer_id, %s FROM customer_wide ORDER BY 1" % SEL, R["PDB"]).splitlines()}


def ranks(side, table):
    """{key: {field: (rank, deleted)}} of a side's rows or tombstones"""
    if side == "m":
        rows = my("SELECT id, _provenance FROM %s" % table, R["MDB"])
    else:
        rows = pg("SELECT customer_id, _provenance FROM %s" % table, R["PDB"])
    return {k: {f: (e.get("r"), bool(e.get("d"))) for f, e in p.items()}
            for k, p in dblib.provenance_by_key(rows).items()}


def wait_equal(what, timeout=60):
    return dblib.wait_sides(what, m_rows, p_rows, PROCS, timeout=timeout, twice=True)


def counters():
    o = pg("SELECT coalesce(sum(changes), 0) FROM autoglm_cdc_offsets", R["PDB"], superuser=True).strip()
    m = my("SELECT COALESCE(SUM(changes), 0) FROM autoglm_cdc_offsets", R["MDB"]).strip()
    return (o, m, dblib.pg_versions(R["PDB"], "customer_wide", "customer_wide_tombstones"))


# ---- statements --------------------------------------------------------------------

def lit(v):
    return "NULL" if v is None else "'%s'" % v


def ins(side, key, vals):
    """INSERT of key with vals {field: value}"""
    cols = ", ".join(vals)
    if side == "m":
        return "INSERT INTO customers (id, %s) VALUES (%d, %s)" % (cols, key, ", ".join(lit(v) for v in vals.values()))
    return "INSERT INTO customer_wide (customer_id, %s) VALUES (%d, %s)" % (
        cols, key, ", ".join(lit(v) for v in vals.values()))


def delete(side, key):
    return ("DELETE FROM customers WHERE id = %d" if side == "m" else
            "DELETE FROM customer_wide WHERE customer_id = %d") % key


def update(side, key, vals):
    sets = ", ".join("%s = %s" % (f, lit(v)) for f, v in vals.items())
    return ("UPDATE customers SET %s WHERE id = %d" if side == "m" else
            "UPDATE customer_wide SET %s WHERE customer_id = %d") % (sets, key)


def run1(side, st, check=True):
    """one statement in its own transaction; returns (ok, stderr)"""
    if side == "m":
        r = subprocess.run(dblib.my_args(R["MDB"]), input=st + ";", capture_output=True, text=True)
    else:
        r = dblib.pg_run(st + ";", R["PDB"])
    if check and r.returncode:
        fail("%s: %s: %s" % (side, st, r.stderr.strip()))
    return r.returncode == 0, r.stderr


def gone(side, key):
    return key not in (m_rows() if side == "m" else p_rows())


def wait_for(what, cond, timeout=30):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return
        time.sleep(0.2)
    fail("timed out waiting for " + what)


# ---- the fixed cases ----------------------------------------------------------------

def cases():
    hi, lo = R["high"], R["low"]

    def reinsert(case, key, deleter, inserter, vals):
        """seed key from the deleter's side, delete it there, wait for the
        delete on the other side, re-insert vals there; (ok, stderr)"""
        run1(deleter, ins(deleter, key, {f: "%s-%s" % (case, f) for f in FIELDS}))
        wait_equal("case %s seeded" % case)
        run1(deleter, delete(deleter, key))
        wait_for("case %s's delete on the other side" % case, lambda: gone(inserter, key))
        return run1(inserter, ins(inserter, key, vals), check=False)

    exp = {}
    # A: high deletes, low re-inserts every field; B: low deletes (its own
    # values), high re-inserts; C: high deletes, low re-inserts only the
    # fields it loses: refused
    for case, key, deleter, inserter in (("a", 101, hi, lo), ("b", 102, lo, hi)):
        ok, err = reinsert(case, key, deleter, inserter, {f: "%s2-%s" % (case, f) for f in FIELDS})
        if not ok:
            fail("case %s: the re-insert failed: %s" % (case.upper(), err.strip()))
    exp[101] = ("a2-name", "\\N", "\\N")
    exp[102] = ("b2-name", "b2-tier", "b2-score")
    ok, err = reinsert("c", 103, hi, lo, {"tier": "c2-tier", "score": "c2-score"})
    if ok or "autoglm-cdc" not in err:
        fail("case C: an insert that wins no field against the key's delete was not refused: %s" % err.strip())
    final = wait_equal("the re-insert cases")
    for k, want in exp.items():
        if final.get(k) != want:
            fail("case %s (%s deletes, %s re-inserts): both sides %s, the rules give %s" % (
                "AB"[k - 101], hi if k == 101 else lo, lo if k == 101 else hi, final.get(k), want))
    if 103 in final:
        fail("case C: key 103 came back: %s" % (final[103],))
    mr, pr = ranks("m", "customers"), ranks("p", "customer_wide")
    mt, pt = ranks("m", "customers_tombstones"), ranks("p", "customer_wide_tombstones")
    for k in (101, 102):
        if mr[k] != pr[k]:
            fail("key %d: provenance differs: MariaDB %s, PostgreSQL %s" % (k, mr[k], pr[k]))
        if k in mt or k in pt:
            fail("key %d is live but still has a tombstone (MariaDB %s, PostgreSQL %s)" % (k, k in mt, k in pt))
    for f in ("tier", "score"):
        if not mr[101][f][1]:
            fail("case A: %s is not marked deleted: %s" % (f, mr[101]))
    if 103 not in mt or 103 not in pt or mt[103] != pt[103]:
        fail("case C: key 103 should be a tombstone with the same ranks on both sides: %s / %s" % (
            mt.get(103), pt.get(103)))


# ---- the random workload (as t_twoway_deletes: every write reads back) ----------------

CAND = {}


def readback(side, key):
    if side == "m":
        return ("SELECT 'R', id, %s, _provenance FROM customers WHERE id = %d; SELECT 'T', id, _provenance "
                "FROM customers_tombstones WHERE id = %d;" % (SEL.replace("coalesce", "COALESCE").replace(
                    "'\\N'", "'\\\\N'"), key, key))
    return ("SELECT 'R', customer_id, %s, _provenance::text FROM customer_wide WHERE customer_id = %d; "
            "SELECT 'T', customer_id, _provenance::text FROM customer_wide_tombstones WHERE customer_id = %d;"
            % (SEL, key, key))


def offer(key, f, rank, val):
    old = CAND.get((key, f))
    if old is None or rank > old[0]:
        CAND[(key, f)] = (rank, val)


def collect(out):
    for line in out.splitlines():
        x = line.split("\t")
        if x[0] == "R" and len(x) == len(FIELDS) + 3:
            prov = json.loads(x[-1])
            for i, f in enumerate(FIELDS):
                if f in prov:
                    offer(int(x[1]), f, prov[f]["r"], DEL if prov[f].get("d") else x[2 + i])
        elif x[0] == "T" and len(x) == 3:
            for f, e in json.loads(x[2]).items():
                if f in FIELDS:
                    offer(int(x[1]), f, e["r"], DEL)


def stmt(side, rnd, tag, key):
    x = rnd.random()
    if x < 0.25:
        return delete(side, key)
    vals = {f: "%s-%s" % (tag, f[0]) for f in FIELDS}
    if x < 0.5:
        st = ins(side, key, vals)
        return st.replace("INSERT", "INSERT IGNORE", 1) if side == "m" else st + " ON CONFLICT DO NOTHING"
    return update(side, key, {f: v for f, v in vals.items() if rnd.random() < 0.6} or {"name": vals["name"]})


def writer(side, seed, out):
    rnd = random.Random(seed)
    sql = []
    for k in range(int(SECS * 20)):
        key = rnd.randint(1, NKEYS)
        st = stmt(side, rnd, "%s%d-%d" % (side, seed, k), key)
        if side == "m":
            sql.append("START TRANSACTION; %s; %s COMMIT; DO SLEEP(%.3f);" % (st, readback(side, key),
                                                                            0.08 * rnd.random()))
        else:
            sql.append("BEGIN; %s; %s COMMIT; SELECT pg_sleep(%.3f);" % (st, readback(side, key), 0.08 * rnd.random()))
    if side == "m":
        p = subprocess.run(dblib.my_args(R["MDB"]) + ["--force"], input="\n".join(sql), capture_output=True, text=True)
    else:
        env = dict(os.environ, PGPASSWORD=E["PGPASSWORD"])
        p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=0", "-A", "-t", "-F", "\t", "-h", E["PGHOST"],
                            "-p", E["PGPORT"], "-U", E["PGUSER"], "-d", R["PDB"]], input="\n".join(sql),
                           capture_output=True, text=True, env=env)
    out[seed] = (side, p.stdout, p.stderr)


def workload():
    my("INSERT INTO customers (id, %s) VALUES %s" % (", ".join(FIELDS), ", ".join(
        "(%d, %s)" % (k, ", ".join("'s%d-%s'" % (k, f[0]) for f in FIELDS)) for k in range(1, NKEYS + 1))), R["MDB"])
    wait_equal("the seeded rows")
    collect(my("".join(readback("m", k) for k in range(1, NKEYS + 1)), R["MDB"]))
    out = {}
    th = [threading.Thread(target=writer, args=(side, seed, out)) for seed, side in ((1, "m"), (2, "m"), (3, "p"),
                                                                                    (4, "p"))]
    for t in th:
        t.start()
    for t in th:
        t.join()
    refused = 0
    for seed, (side, so, se) in sorted(out.items()):
        for line in se.splitlines():
            if "ERROR" not in line and "error" not in line:
                continue
            if "autoglm-cdc" in line:
                refused += 1
            elif not ("eadlock" in line or "current transaction is aborted" in line):
                fail("writer %d (%s): %s" % (seed, side, line))
        collect(so)
    final = wait_equal("convergence after the writers")
    exp = {}
    for key in range(1, NKEYS + 1):
        w = [CAND.get((key, f)) for f in FIELDS]
        if any(c is not None and c[1] is not DEL for c in w):
            exp[key] = tuple("\\N" if c is None or c[1] is DEL else c[1] for c in w)
    got = {k: v for k, v in final.items() if k <= NKEYS}
    if got != exp:
        fail("converged, but not to the rules' prediction:\n  " + "\n  ".join(
            "key %d: both sides %s, predicted %s" % (k, got.get(k, "dead"), exp.get(k, "dead"))
            for k in range(1, NKEYS + 1) if got.get(k) != exp.get(k)))
    mr, pr = ranks("m", "customers"), ranks("p", "customer_wide")
    mt, pt = ranks("m", "customers_tombstones"), ranks("p", "customer_wide_tombstones")
    for key in range(1, NKEYS + 1):
        sm, sp = (mr, pr) if key in exp else (mt, pt)
        if key not in sm or key not in sp:
            fail("key %d (%s) is missing on a side" % (key, "live" if key in exp else "dead"))
        for f in FIELDS:
            best = CAND.get((key, f))
            if best and max((sm[key].get(f) or ("",))[0] or "", (sp[key].get(f) or ("",))[0] or "") != best[0]:
                fail("key %d %s: winning rank %s on neither side (%s / %s)" % (key, f, best[0], sm[key].get(f),
                                                                                sp[key].get(f)))
    return len(exp), refused


# ---- run ----------------------------------------------------------------------------------

for n, hi in ((1, "crm"), (2, "platform")):
    log("round %d: %s has the higher priority and weight" % (n, hi))
    CAND.clear()
    yf = setup(n, hi)
    start("crm", yf)
    start("platform", yf)
    time.sleep(2.5)
    cases()
    live, refused = workload()
    c = dblib.settle("round %d" % n, counters)
    time.sleep(2)
    if counters() != c:
        fail("round %d: counters moved after settling (ping-pong)" % n)
    log("round %d: cases A, B, C as the rules say; random workload: %d of %d keys live, %d writes refused by "
        "the triggers; both sides equal" % (n, live, NKEYS, refused))
    dblib.stop(PROCS)
    PROCS.clear()
    cleanup(all_rounds=False)
cleanup()
print("ok - re-inserts after deletes converge under every rule, on both engines")
sys.exit(0)
