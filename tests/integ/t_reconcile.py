#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`autoglm-cdc reconcile` finds exactly the injected drift of a
PostgreSQL wide table, --repair fixes it, and the stream goes on
correctly afterwards (docs/MAPPINGS.md, Reconcile).

Two MariaDB sources a and b (databases rca_/rcb_<pid>) and a PostgreSQL
source c (database rcs_<pid>, its own slot and publication), one items
table each, stream into one PostgreSQL wide table through three running
pipelines:

  name   text, owners a b, rule latest       <- v
  best   text, owners a b c, rule priority   <- v   (a 1, b 2, c 3)
  a_n, b_n, c_n  bigint, one owner each      <- n
  on_delete: clear

(MariaDB transactions carry their own increasing commit times, SET
TIMESTAMP; c's real commit times never meet them in a rank: c only
writes `best`, where its priority comes first, and its own c_n.)

A seeded random workload (inserts, updates, deletes, each transaction
with its own increasing commit time) runs through the pipelines; the test
computes the wide table itself from the changes it made and waits until
the table equals it.  Then:

  * reconcile reports no drift, exit 0 (the recomputation from the
    sources' current rows agrees with what the streams built);
  * drift is injected: an UPDATE of one field (text), an UPDATE of
    another key's a_n (number), a DELETE of a wide row, an INSERT of a
    stray row; reconcile --json reports exactly those four, with the
    stored and recomputed values and both provenances, exit 1; the text
    form exits 1 too, and in three key partitions (--partitions 3) prints
    the same, byte for byte;
  * reconcile --repair --partitions 3 exits 0, the table equals the
    test's model again, and a second reconcile finds no drift;
  * further source changes after the repair land as the rules say: a
    later change of a wins `name` of the repaired key and loses `best`
    to b (priority), a change of b reaches the re-inserted row, a new key
    appears; the table equals the model and a last reconcile is clean;
  * --repair next to busy streams (a writer keeps changing every source):
    each exits 0, and once the writer stops the table converges on the
    model and reconcile finds no drift (what a repair saw in flight it
    wrote under a rank the change then beat).

Seed: CDC_TEST_SEED.  Env: CDC_RC_KEYS (default 30).
"""
import json
import os
import random
import subprocess
import tempfile
import threading
import time
import zlib

import dblib
from dblib import BIN, E, fail, log, my, pg

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

K = int(os.environ.get("CDC_RC_KEYS", "30"))
SEED = dblib.test_seed()
ID = "%d" % os.getpid()
SRCS = "abc"
MYS = "ab"
DB = {s: "rc%s_%s" % (s, ID) for s in MYS}
DB["c"] = "public"
PRIO = {"a": 1, "b": 2, "c": 3}
PDB = "rcp_" + ID
SDB = "rcs_" + ID          # the PostgreSQL source database
SLOT = "rcslot_" + ID
PUB = "rcpub_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-reconcile-")
PROCS = []
STREAM = {}
FIELDS = ("name", "best", "a_n", "b_n", "c_n")
OWNERS = {"name": "ab", "best": "abc", "a_n": "a", "b_n": "b", "c_n": "c"}


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[PDB, SDB], slots=[SLOT], origins_like="autoglm_cdc_rc%s\\_%%" % ID,
                  my_dbs=[DB[s] for s in MYS])


dblib.on_fail(cleanup, logdir=TMP)

MAPF = os.path.join(TMP, "rc.yaml")
open(MAPF, "w").write("""sources: {a: {priority: 1}, b: {priority: 2}, c: {priority: 3}}
targets:
  w:
    table: public.rc_w
    key: k
    fields:
      k: bigint
      name: {type: text, owners: [a, b]}
      best: {type: text, owners: [a, b, c], rule: priority}
      a_n: {type: bigint, owner: a}
      a_amt: {type: 'numeric(12,2)', owner: a}
      a_at: {type: timestamptz, owner: a}
      a_flag: {type: boolean, owner: a}
      a_doc: {type: jsonb, owner: a}
      b_n: {type: bigint, owner: b}
      c_n: {type: bigint, owner: c}
mappings:
""" + "".join("  - {source: %s, table: %s.items, target: w, key: {k: id}, on_delete: clear,\n"
              "     fields: {name: v, best: v, %s_n: n%s}}\n"
              % (s, DB[s], s, ", a_amt: amt, a_at: at, a_flag: flag, a_doc: doc" if s == "a" else "") for s in MYS)
  + "  - {source: c, table: public.items, target: w, key: {k: id}, on_delete: clear, fields: {best: v, c_n: n}}\n")


def pipefile(s):
    path = os.path.join(TMP, "%s.yaml" % s)
    if s in MYS:
        src = """source: {type: mysql}
mysql:
  dsn: "mysql://root:%s@127.0.0.1:%s"
  server_id: %d
filter: {include: "%s.items"}
""" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], 7000 + zlib.crc32((ID + s).encode()) % 50000, DB[s])
    else:
        src = """source: {type: postgres}
postgres: {dsn: "%s", slot: %s, publication: %s, tables: public.items}
""" % (dblib.pg_dsn(SDB), SLOT, PUB)
    open(path, "w").write("""pipeline: {name: rc%s_%s}
application_id: %s
%ssink: {type: postgres}
postgres_sink: {dsn: "%s", flush_ms: 50}
mapping: {files: "%s"}
state: {dir: "%s"}
""" % (ID, s, s, src, dblib.pg_dsn(PDB, superuser=True), MAPF, os.path.join(TMP, "state-" + s)))
    return path


PF = {s: pipefile(s) for s in SRCS}


def start_stream(s, frm):
    lf = open(os.path.join(TMP, "stream-%s.log" % s), "ab")
    p = subprocess.Popen([BIN, "run", "-c", PF[s]] + (["--from", frm] if s in MYS else []), stdout=lf, stderr=lf)
    PROCS.append(p)
    STREAM[s] = p


RUNS = [0]


def reconcile(*extra):
    """Run reconcile for target w over both sources; (exit code, stdout)."""
    RUNS[0] += 1
    a = [BIN, "reconcile", "-c", PF["a"], "--target", "w"] + list(extra) + [PF["b"], PF["c"]]
    with open(os.path.join(TMP, "reconcile-%d.log" % RUNS[0]), "wb") as lf:
        r = subprocess.run(a, stdout=subprocess.PIPE, stderr=lf, timeout=300)
    out = r.stdout.decode()
    log("reconcile %s -> %d:\n%s" % (" ".join(extra), r.returncode, out.rstrip()))
    return r.returncode, out


# ---- setup: empty tables, the streams' start, then the seed rows ---------------

rnd = random.Random(SEED)
pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
for s in MYS:
    my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; CREATE TABLE %s.items (id INT PRIMARY KEY, "
       "v VARCHAR(60), n BIGINT, amt DECIMAL(10,3), at DATETIME(3), flag TINYINT, doc JSON) CHARSET utf8mb4;"
       % (DB[s], DB[s], DB[s]))
pg("CREATE DATABASE %s OWNER %s" % (SDB, E["PGUSER"]), "postgres", superuser=True)
pg("CREATE TABLE public.items (id int PRIMARY KEY, v text, n bigint)", SDB)
pg("CREATE PUBLICATION %s FOR TABLE public.items" % PUB, SDB, superuser=True)
dblib.pg_slot(SDB, SLOT)
ms = my("SHOW MASTER STATUS").split()
FROM = "%s:%s" % (ms[0], ms[1])

# ---- usage and configuration errors keep their documented codes ----------------


def run_rc(args, want, must, what):
    r = subprocess.run([BIN, "reconcile"] + args, capture_output=True, text=True, timeout=120)
    if r.returncode != want or must not in r.stderr:
        fail("reconcile %s: exit %d (want %d), stderr must name %r:\n%s" % (what, r.returncode, want, must, r.stderr))


run_rc(["-c", PF["a"], PF["b"], PF["c"]], 2, "--target", "without --target")
run_rc(["-c", PF["a"], "--target", "nosuch", PF["b"], PF["c"]], 78, "nosuch", "with an unknown target")
run_rc(["-c", PF["a"], "--target", "w"], 2, "source 'b'", "without the pipeline of source b")
run_rc(["-c", PF["a"], "--target", "w", "-X", "postgres_sink.dsn=host=127.0.0.1 port=%d user=x dbname=x "
        "connect_timeout=5" % dblib.free_port(), PF["b"], PF["c"]], 69, "postgres_sink.dsn", "with the wide table's server down")

# ---- the model: what the streams must build -------------------------------------

ROWS = {s: {} for s in SRCS}   # the source tables now: id -> (v, n)
STREAMED = {}                  # (key, field, source) -> (rank, value)
TOUCHED = set()                # keys some change wrote: their wide rows exist
T = [int(time.time()) - 200000]


def rank(field, s, t):
    return (PRIO[s], t) if field == "best" else (t, PRIO[s])


def change(s, key=None, delete=None, r=None):
    """One transaction on source s with the next commit time; an update
    changes every mapped column."""
    T[0] += 1
    t = T[0]
    r = r or rnd
    key = r.randint(1, K) if key is None else key
    rows = ROWS[s]
    if delete is None:
        delete = key in rows and r.random() < 0.25
    if delete and key in rows:
        st = "DELETE FROM items WHERE id = %d" % key
        del rows[key]
        vals = (None, None)
    else:
        v, n = "%s-%d" % (s, t), t % 100000 + 7
        # MariaDB: typed columns too (rounded into numeric(12,2), a naive
        # DATETIME(3), 0/1 into boolean, JSON text into jsonb)
        typed = ("%d / 1000 + 0.005" % n, "TIMESTAMP '2024-01-01 00:00:00.123' + INTERVAL %d SECOND" % (n * 37),
                 "%d %% 2" % n, "JSON_OBJECT('n', %d, 's', 'x y')" % n)
        if key in rows:
            st = "UPDATE items SET v = '%s', n = %d WHERE id = %d" % (v, n, key)
            if s != "c":
                st = st.replace(" WHERE", ", " + ", ".join(
                    "%s = %s" % (c, x) for c, x in zip(("amt", "at", "flag", "doc"), typed)) + " WHERE")
        elif s != "c":
            st = "INSERT INTO items VALUES (%d, '%s', %d, %s)" % (key, v, n, ", ".join(typed))
        else:
            st = "INSERT INTO items VALUES (%d, '%s', %d)" % (key, v, n)
        rows[key] = (v, n)
        vals = (v, n)
    for f, x in (("name", vals[0]), ("best", vals[0]), ("%s_n" % s, vals[1])):
        cur = STREAMED.get((key, f, s))
        r = rank(f, s, t)
        if cur is None or r > cur[0]:
            STREAMED[(key, f, s)] = (r, x)
    TOUCHED.add(key)
    if s == "c":
        return ("c", st + ";")
    return (s, "USE %s; SET TIMESTAMP = %d; %s;" % (DB[s], t, st))


def apply(*chs):
    """Run changes in order: the MariaDB ones in one batch, c's in one
    PostgreSQL transaction each (c's ranks come from its own order)."""
    batch = ""
    for s, sql in chs:
        if s == "c":
            if batch:
                my(batch)
                batch = ""
            pg(sql, SDB)
        else:
            batch += sql
    if batch:
        my(batch)


def model():
    exp = {}
    for key in TOUCHED:
        row = []
        for f in FIELDS:
            owners = OWNERS[f]
            cands = [STREAMED[(key, f, s)] for s in owners if (key, f, s) in STREAMED]
            best = max(cands, key=lambda c: c[0])[1] if cands else None
            row.append(None if best is None else str(best))
        exp[key] = tuple(row)
    return exp


def snapshot_row(key):
    """What a recomputation from the current source rows alone gives (no
    commit times: latest ties go to the higher priority)."""
    va, vb, vc = ROWS["a"].get(key), ROWS["b"].get(key), ROWS["c"].get(key)
    top, tbest = vb or va, vc or vb or va
    return (top[0] if top else None, tbest[0] if tbest else None,
            str(va[1]) if va else None, str(vb[1]) if vb else None, str(vc[1]) if vc else None)


def wide():
    out = {}
    for line in pg("SELECT k, coalesce(name, '\\N'), coalesce(best, '\\N'), coalesce(a_n::text, '\\N'), "
                   "coalesce(b_n::text, '\\N'), coalesce(c_n::text, '\\N') FROM rc_w ORDER BY k",
                   PDB, superuser=True).splitlines():
        f = line.split("\t")
        out[int(f[0])] = tuple(None if x == "\\N" else x for x in f[1:])
    return out


def wait_model(what, timeout=120):
    t0 = time.time()
    exp = model()
    got = None
    while time.time() - t0 < timeout:
        if pg("SELECT to_regclass('public.rc_w') IS NOT NULL", PDB, superuser=True).strip() == "t":
            got = wide()
            if got == exp:
                return got
        for s, p in STREAM.items():
            if p.poll() is not None:
                fail("stream %s exited %s while waiting for %s" % (s, p.returncode, what))
        time.sleep(0.3)
    diff = ["key %d: wide %s, model %s" % (k, (got or {}).get(k), exp.get(k))
            for k in sorted(set(exp) | set(got or {})) if (got or {}).get(k) != exp.get(k)]
    fail("%s: the wide table differs from the model (%d keys):\n  %s" % (what, len(diff), "\n  ".join(diff[:12])))


for s in SRCS:
    start_stream(s, FROM)
for i in range(1, K + 1):   # seed rows: every key in a, most in b, some in c
    chs = [change("a", i, False)]
    if rnd.random() < 0.8:
        chs.append(change("b", i, False))
    if rnd.random() < 0.5:
        chs.append(change("c", i, False))
    apply(*chs)
for _ in range(6 * K):      # the random workload
    apply(*[change(rnd.choice(SRCS)) for _ in range(rnd.randint(1, 3))])
wait_model("after the workload")
log("workload of %d changes streamed; %d wide rows" % (T[0] - (int(time.time()) - 200000), len(model())))

# ---- 1. no drift ------------------------------------------------------------------

rc, out = reconcile()
if rc != 0 or "no drift" not in out:
    fail("reconcile of a table the streams built: exit %d (want 0, 'no drift'):\n%s" % (rc, out))

# ---- 2. inject drift ----------------------------------------------------------------

exp = model()
both = [k for k in sorted(exp) if k in ROWS["a"] and k in ROWS["b"]]
# keys whose recomputation equals the streams' result (a re-inserted row
# must equal the model afterwards)
same = [k for k in both if snapshot_row(k) == exp[k]]
if len(both) < 2 or not same:
    fail("workload left too few keys in both sources (%d, %d alike); change the seed" % (len(both), len(same)))
k_upd = rnd.choice([k for k in both if k not in same[:1]] or both)
k_del = same[0] if same[0] != k_upd else (same[1] if len(same) > 1 else None)
if k_del is None:
    fail("no key to delete apart from the updated one; change the seed")
k_num = rnd.choice([k for k in ROWS["a"] if k not in (k_upd, k_del)])
STRAY = 100000 + rnd.randint(1, 999)
PROV_UPD = pg("SELECT _provenance->'name' FROM rc_w_provenance() WHERE k = %d" % k_upd, PDB, superuser=True).strip()
pg("UPDATE rc_w SET name = 'drift!' WHERE k = %d; UPDATE rc_w SET a_n = a_n + 1000000, "
   "a_doc = '{\"n\": 1}' WHERE k = %d; "
   "DELETE FROM rc_w WHERE k = %d; INSERT INTO rc_w (k, name, a_n) VALUES (%d, 'stray', 5)"
   % (k_upd, k_num, k_del, STRAY), PDB, superuser=True)
log("drift: name of %d, a_n of %d, row %d deleted, stray row %d" % (k_upd, k_num, k_del, STRAY))

rc, out = reconcile("--json")
if rc != 1:
    fail("reconcile --json with drift exited %d, want 1" % rc)
lines = [json.loads(x) for x in out.splitlines() if x.strip()]
found = {(d["kind"], int(d["key"]["k"]), d.get("field")) for d in lines if d["kind"] != "summary"}
want = {("differs", k_upd, "name"), ("differs", k_num, "a_n"), ("differs", k_num, "a_doc"), ("missing", k_del, None), ("extra", STRAY, None)}
if found != want:
    fail("reconcile found %s, the injected drift is %s" % (sorted(found, key=str), sorted(want, key=str)))
summ = [d for d in lines if d["kind"] == "summary"]
if len(summ) != 1 or (summ[0]["missing"], summ[0]["extra"], summ[0]["differs"]) != (1, 1, 3):
    fail("summary line wrong: %s" % summ)
by = {(d["kind"], int(d["key"]["k"]), d.get("field")): d for d in lines if d["kind"] != "summary"}
d = by[("differs", k_upd, "name")]
# the stored side names the source whose change won it; the recomputed
# side the value and source row that source holds now
src = exp[k_upd][0].split("-")[0]
if d["stored"]["value"] != "drift!" or d["recomputed"]["value"] != exp[k_upd][0]:
    fail("name of %d: stored/recomputed %s / %s, want drift! / %s" % (
        k_upd, d["stored"]["value"], d["recomputed"]["value"], exp[k_upd][0]))
if d["stored"]["provenance"]["s"] != src or d["recomputed"]["provenance"]["s"] != src or \
        d["recomputed"]["provenance"]["row"] != "%s.items[%d]" % (DB[src], k_upd):
    fail("name of %d: provenance %s, want source %s and row %s.items[%d]" % (k_upd, d, src, DB[src], k_upd))
d = by[("differs", k_num, "a_n")]
if d["recomputed"]["value"] != str(ROWS["a"][k_num][1]) or \
        d["stored"]["value"] != str(ROWS["a"][k_num][1] + 1000000):
    fail("a_n of %d: %s, want stored %d, recomputed %d" % (k_num, d, ROWS["a"][k_num][1] + 1000000, ROWS["a"][k_num][1]))
rc, out = reconcile()
if rc != 1 or "1 missing, 1 extra, 3 fields differ" not in out:
    fail("reconcile (text) with drift: exit %d, want 1 and '1 missing, 1 extra, 3 fields differ':\n%s" % (rc, out))
if ("differs k=%d name: stored \"drift!\"" % k_upd) not in out:
    fail("text output does not show the name drift of %d:\n%s" % (k_upd, out))
# the keys in three hash partitions, each read from the sources on its
# own: the same drift, the same lines in the same order, the same counts
rc3, out3 = reconcile("--partitions", "3")
if (rc3, out3) != (rc, out):
    fail("reconcile --partitions 3 (exit %d) differs from one partition:\n%s\n--- one partition:\n%s"
         % (rc3, out3, out))

# ---- 3. repair ------------------------------------------------------------------------

rc, out = reconcile("--repair", "--partitions", "3")
if rc != 0 or "repaired" not in out:
    fail("reconcile --repair --partitions 3 exited %d (want 0, 'repaired'):\n%s" % (rc, out))
got = wide()
if got != exp:
    diff = ["key %d: wide %s, model %s" % (k, got.get(k), exp.get(k)) for k in sorted(set(exp) | set(got))
            if got.get(k) != exp.get(k)]
    fail("after --repair the table differs from the model:\n  %s" % "\n  ".join(diff[:12]))
rc, out = reconcile()
if rc != 0 or "no drift" not in out:
    fail("reconcile after --repair: exit %d (want 0, 'no drift'):\n%s" % (rc, out))
# the repaired field kept the rank of the change that won it; the
# re-inserted row carries plain provenance (source, time, rank) per field
got = pg("SELECT _provenance->'name' FROM rc_w_provenance() WHERE k = %d" % k_upd, PDB, superuser=True).strip()
if got != PROV_UPD:
    fail("name of %d: provenance after the repair %s, want the stored %s" % (k_upd, got, PROV_UPD))
prov = json.loads(pg("SELECT _provenance FROM rc_w_provenance() WHERE k = %d" % k_del, PDB, superuser=True))
want_f = {f for f, v in zip(FIELDS, exp[k_del]) if v is not None}
if not want_f <= set(prov) or any(set(v) != {"s", "t", "r"} for v in prov.values()):
    fail("re-inserted row %d: provenance %s, want s/t/r for %s" % (k_del, prov, sorted(want_f)))

# ---- 4. the stream after the repair ------------------------------------------------------

NEW = K + 1
apply(change("a", k_upd, False), change("b", k_del, False), change("a", k_num, False), change("a", NEW, False),
      change("c", k_del, False))
after = wait_model("after the repair, further source changes")
if after[k_upd][0] != ROWS["a"][k_upd][0] or after[k_upd][1] == ROWS["a"][k_upd][0]:
    fail("key %d: a's later change must win name and lose best to b or c: %s" % (k_upd, after[k_upd]))
if after[k_del][1] != ROWS["c"][k_del][0] or after[k_del][4] != str(ROWS["c"][k_del][1]):
    fail("key %d (re-inserted): c's later change must win best and c_n: %s" % (k_del, after[k_del]))
rc, out = reconcile()
if rc != 0 or "no drift" not in out:
    fail("reconcile after the further changes: exit %d (want 0):\n%s" % (rc, out))

# ---- 5. --repair while the streams are busy ------------------------------------------
# The table is locked before the sources are read, so what a repair sees
# in flight (a source change not yet applied) it writes with a rank the
# change then beats: when the writer stops, the streams converge on the
# model, and nothing is left to reconcile.
wstop = threading.Event()


def writer():
    w = random.Random(SEED + 1)
    while not wstop.is_set():
        apply(*[change(w.choice(SRCS), r=w) for _ in range(w.randint(1, 3))])
        time.sleep(0.02)


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
wait_model("after repairs next to busy streams")
rc, out = reconcile()
if rc != 0 or "no drift" not in out:
    fail("reconcile after repairs next to busy streams: exit %d (want 0):\n%s" % (rc, out))

dblib.stop(PROCS)
PROCS.clear()
cleanup()
print("ok - reconcile finds exactly the injected drift, --repair fixes it, and the stream goes on by the rules")
