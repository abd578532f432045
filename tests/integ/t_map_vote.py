#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Confidence-weighted merge through the PostgreSQL wide sink
(docs/MAPPINGS.md, "Confidence, vote and weighted mean"): the wide table
equals what this test computes from the sources' final rows alone.

Sources a, b (MariaDB databases vta_/vtb_<pid>, weights 1 and 0.8, on_delete:
clear) and c (PostgreSQL database vts_<pid>, weight 0.6, REPLICA IDENTITY
FULL, on_delete: delete: its deletes are row tombstones), one
`items` table each (id, email, verified, amt), stream into one PostgreSQL
wide table through three running pipelines:

  email    text           rule vote           owners a b c
  amt      numeric(12,2)  rule weighted_mean  owners a b c
  best     text           rule weighted       owners a b c  (confidence:
                                                per source, NULLs count)
  email_d  text           rule vote, half_life 1h, owners a b
  confidence: case when verified then 1.0 else 0.6 end

A seeded random workload of inserts, updates and deletes runs on all
three sources (emails from a small set, so that votes collide and tie:
a unverified 0.6 x 1 equals c verified 1.0 x 0.6).  Pipeline a is killed
(SIGKILL) twice in the middle and restarted.  Afterwards:

  * the wide table equals the computation from the final source rows:
    per key and field, each source's current entry (its row, or NULL
    after a delete, scored with the deleted row's confidence), summed /
    averaged / maximised exactly as documented (integer scores in
    millionths; the decayed field's terms floor(2^(L-Lmax) * 1e15 + 0.5)
    with L = log2(c*w) + t/h from the MariaDB commit times);
  * the provenance names every source's vote and score; a key whose every
    entry is c's row delete is no row (it moved to vt_w_tombstones);
  * <table>_votes holds one row per key, field and source;
  * exactly once: a's `changes` in the offsets table equal those of a
    reference pipeline that read the same binlog without kills;
  * one MariaDB transaction of CDC_VT_BULK (20000) rows, one batch, lands
    as computed (the sink locks rows, not one lock-table entry per key);
  * the MySQL wide sink refuses the target at start and `validate` with
    mysql_sink.dsn refuses it: exit 78, target, rule and remedy named;
  * `reconcile` of the target (email_d decays with half_life: the
    commit times come from vt_w_votes) finds no drift after the
    workload (exit 0); an altered value of a's email_d entry of one key
    is found (exit 1, that entry named, nothing else), then put back.

Seed: CDC_TEST_SEED.  Env: CDC_VT_KEYS (default 25).
"""
import json
import math
import os
import random
import subprocess
import tempfile
import time
import zlib

import dblib
from dblib import BIN, E, fail, log, my, pg

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

K = int(os.environ.get("CDC_VT_KEYS", "25"))
SEED = dblib.test_seed()
ID = "%d" % os.getpid()
SRCS = "abc"
MYS = "ab"
DB = {s: "vt%s_%s" % (s, ID) for s in MYS}
W = {"a": 1.0, "b": 0.8, "c": 0.6}
PDB = "vtp_" + ID
RDB = "vtr_" + ID          # the reference run of source a
SDB = "vts_" + ID
SLOT = "vtslot_" + ID
PUB = "vtpub_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-vote-")
PROCS = []
STREAM = {}
HALF_US = 3600 * 1000000
EMAILS = ["ann@x.org", "bob@x.org", "cy@x.org", "Ann@x.org"]


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[PDB, SDB, RDB], slots=[SLOT], origins_like="autoglm_cdc_vt%s\\_%%" % ID,
                  my_dbs=[DB[s] for s in MYS])


dblib.on_fail(cleanup, logdir=TMP)

MAPF = os.path.join(TMP, "vt.yaml")
CONF = "confidence: 'case when verified then 1.0 else 0.6 end'"
open(MAPF, "w").write("""sources: {a: {weight: 1}, b: {weight: 0.8}, c: {weight: 0.6}}
targets:
  w:
    table: public.vt_w
    key: k
    fields:
      k: bigint
      email: {type: text, owners: [a, b, c], rule: vote}
      amt: {type: 'numeric(12,2)', owners: [a, b, c], rule: weighted_mean}
      best: {type: text, owners: [a, b, c], rule: weighted}
      email_d: {type: text, owners: [a, b], rule: vote, half_life: 1h}
mappings:
""" + "".join("  - {source: %s, table: %s.items, target: w, key: {k: id}, on_delete: clear, %s,\n"
              "     fields: {email: email, amt: amt, best: email, email_d: email}}\n" % (s, DB[s], CONF)
              for s in MYS)
  + "  - {source: c, table: public.items, target: w, key: {k: id}, on_delete: delete, %s,\n"
    "     fields: {email: email, amt: amt, best: email}}\n" % CONF)


def pipefile(s, name=None, target=PDB, extra=""):
    path = os.path.join(TMP, "%s.yaml" % (name or s))
    if s in MYS:
        src = """source: {type: mysql}
mysql:
  dsn: "mysql://root:%s@127.0.0.1:%s"
  server_id: %d
filter: {include: "%s.items"}
""" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], 7000 + zlib.crc32((ID + (name or s)).encode()) % 50000, DB[s])
    else:
        src = """source: {type: postgres}
postgres: {dsn: "%s", slot: %s, publication: %s, tables: public.items}
""" % (dblib.pg_dsn(SDB), SLOT, PUB)
    open(path, "w").write("""pipeline: {name: vt%s_%s}
application_id: %s
%ssink: {type: postgres}
postgres_sink: {dsn: "%s", flush_ms: 50, batch_rows: 7}
mapping: {files: "%s"}
state: {dir: "%s"}
%s""" % (ID, name or s, s, src, dblib.pg_dsn(target, superuser=True), MAPF,
         os.path.join(TMP, "state-" + (name or s)), extra))
    return path


PF = {s: pipefile(s) for s in SRCS}


def start_stream(s, frm, pf=None, key=None):
    lf = open(os.path.join(TMP, "stream-%s.log" % (key or s)), "ab")
    p = subprocess.Popen([BIN, "run", "-c", pf or PF[s]] + (["--from", frm] if s in MYS else []),
                         stdout=lf, stderr=lf)
    PROCS.append(p)
    STREAM[key or s] = p
    return p


# ---- setup ---------------------------------------------------------------------

rnd = random.Random(SEED)
pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
pg("CREATE DATABASE %s OWNER %s" % (RDB, E["PGUSER"]), "postgres", superuser=True)
for s in MYS:
    my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; CREATE TABLE %s.items (id INT PRIMARY KEY, "
       "email VARCHAR(60), verified TINYINT, amt DECIMAL(10,2)) CHARSET utf8mb4;" % (DB[s], DB[s], DB[s]))
pg("CREATE DATABASE %s OWNER %s" % (SDB, E["PGUSER"]), "postgres", superuser=True)
pg("CREATE TABLE public.items (id int PRIMARY KEY, email text, verified boolean, amt numeric(10,2)); "
   "ALTER TABLE public.items REPLICA IDENTITY FULL", SDB)
pg("CREATE PUBLICATION %s FOR TABLE public.items" % PUB, SDB, superuser=True)
dblib.pg_slot(SDB, SLOT)
ms = my("SHOW MASTER STATUS").split()
FROM = "%s:%s" % (ms[0], ms[1])

# ---- the MySQL wide sink refuses these rules: exit 78 --------------------------

MYPF = pipefile("a", "amy", extra="mysql_sink: {dsn: \"mysql://root:%s@127.0.0.1:%s/%s\"}\n"
                % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], DB["a"]))
for what, args in (("validate", [BIN, "validate", "-c", MYPF]),
                   ("run --sink mysql", [BIN, "run", "-c", MYPF, "--sink", "mysql", "--from", FROM])):
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if r.returncode != 78 or "target 'w'" not in r.stderr or "rule vote" not in r.stderr or \
            "--sink postgres" not in r.stderr:
        fail("%s with the MySQL wide sink: exit %d (want 78 naming target, rule and remedy):\n%s"
             % (what, r.returncode, r.stderr))
log("the MySQL wide sink refuses vote fields (validate and run: exit 78)")

# ---- the workload and what it must give ------------------------------------------

ROWS = {s: {} for s in SRCS}     # id -> (email, verified, amt) now
ENT = {}                         # (key, field, source) -> entry
TOUCHED = set()
T = [int(time.time()) - 300000]  # MariaDB commit times (SET TIMESTAMP)
CSEQ = [0]


def conf6(ver):
    return 1000000 if ver else 600000


def score(s, ver):
    return (conf6(ver) * round(W[s] * 1e6) + 500000) // 1000000


def lscore(s, ver, t):
    if conf6(ver) == 0:
        return -math.inf
    return math.log2(conf6(ver) / 1e6 * (round(W[s] * 1e6) / 1e6)) + (t * 1000000) / HALF_US


def offer(key, s, field, old, new, t):
    """The source's entry of a field after a change: replaced when the
    value or the confidence changed (an insert or delete always)."""
    cur = ENT.get((key, field, s))
    if new is None:       # a delete: NULL scored with the deleted row
        val, ver = None, old[1]
    elif field == "email_d" and s == "c":
        return            # c writes email_d only through its row deletes
    else:
        val = new[2] if field == "amt" else new[0]
        ver = new[1]
        if old is not None and cur is not None:
            oval = old[2] if field == "amt" else old[0]
            if oval == val and old[1] == ver:
                return
    ENT[(key, field, s)] = {"v": val, "ver": ver, "t": t, "sc": score(s, ver),
                            "L": lscore(s, ver, t) if s != "c" else None,
                            "del": new is None and s == "c"}


def change(s, key=None, delete=None):
    T[0] += 1
    t = T[0]
    key = rnd.randint(1, K) if key is None else key
    rows = ROWS[s]
    if delete is None:
        delete = key in rows and rnd.random() < 0.2
    old = rows.get(key)
    if delete and old is not None:
        st = "DELETE FROM items WHERE id = %d" % key
        del rows[key]
        new = None
    else:
        em = rnd.choice(EMAILS + [None]) if rnd.random() < 0.9 else None
        ver = rnd.random() < 0.5
        amt = None if rnd.random() < 0.1 else "%d.%02d" % (rnd.randint(0, 999), rnd.randint(0, 99))
        if old is not None and rnd.random() < 0.3:
            em = old[0]   # the email stays: only the confidence or the amount moves
        new = (em, ver, amt)
        sq = lambda x: "NULL" if x is None else "'%s'" % x
        vs = ("TRUE" if ver else "FALSE") if s == "c" else ("1" if ver else "0")
        if old is not None:
            st = "UPDATE items SET email = %s, verified = %s, amt = %s WHERE id = %d" % (sq(em), vs, sq(amt), key)
        else:
            st = "INSERT INTO items VALUES (%d, %s, %s, %s)" % (key, sq(em), vs, sq(amt))
        rows[key] = new
    if s == "c":
        CSEQ[0] += 1
        t = 10 ** 12 + CSEQ[0]   # c's real commit times are newer than every MariaDB one
    if old is not None or new is not None:
        for f in ("email", "amt", "best", "email_d"):
            offer(key, s, f, old, new, t)
        TOUCHED.add(key)
    if s == "c":
        return ("c", st + ";")
    return (s, "USE %s; SET TIMESTAMP = %d; %s;" % (DB[s], t, st))


def apply(*chs):
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


def terms(ents, decay):
    if not decay:
        return [e["sc"] if e["v"] is not None else 0 for e in ents]
    vs = [e["L"] for e in ents if e["v"] is not None and e["L"] != -math.inf]
    if not vs:
        return [0] * len(ents)
    lmax = max(vs)
    out = []
    for e in ents:
        if e["v"] is None or e["L"] == -math.inf or e["L"] - lmax < -100:
            out.append(0)
        else:
            out.append(int(math.floor(math.pow(2.0, e["L"] - lmax) * 1e15 + 0.5)))
    return out


def vote(ents, decay=False):
    tm = terms(ents, decay)
    sums = {}
    for e, x in zip(ents, tm):
        if e["v"] is not None:
            sums[e["v"]] = sums.get(e["v"], 0) + x
    if not sums:
        return None
    return sorted(sums.items(), key=lambda kv: (-kv[1], kv[0].encode()))[0][0]


def wmean(ents):
    tm = terms(ents, False)
    n = d = 0
    for e, x in zip(ents, tm):
        if e["v"] is not None:
            whole, frac = e["v"].split(".")
            n += x * (int(whole) * 100 + int(frac))
            d += x
    if d <= 0:
        return None
    q = (2 * abs(n) + d) // (2 * d)
    q = -q if n < 0 else q
    return "%s%d.%02d" % ("-" if q < 0 else "", abs(q) // 100, abs(q) % 100)


def heaviest(ents):
    if not ents:
        return None
    return max(ents, key=lambda e: (e["sc"], e["t"]))["v"]


def visible(key):
    """A row is dead (in vt_w_tombstones) when every entry of every field
    is a row delete's (c's on_delete: delete)."""
    return any(not e["del"] for (k, f, s), e in ENT.items() if k == key)


def model():
    exp = {}
    for key in TOUCHED:
        if not visible(key):
            continue
        per = {f: [ENT[(key, f, s)] for s in SRCS if (key, f, s) in ENT]
               for f in ("email", "amt", "best", "email_d")}
        exp[key] = (vote(per["email"]), wmean(per["amt"]), heaviest(per["best"]), vote(per["email_d"], True))
    return exp


def wide(db=PDB):
    out = {}
    for line in pg("SELECT k, coalesce(email, '\\N'), coalesce(amt::text, '\\N'), coalesce(best, '\\N'), "
                   "coalesce(email_d, '\\N') FROM vt_w ORDER BY k", db, superuser=True).splitlines():
        f = line.split("\t")
        out[int(f[0])] = tuple(None if x == "\\N" else x for x in f[1:])
    return out


def wait_model(what, timeout=150):
    t0 = time.time()
    exp = model()
    got = None
    while time.time() - t0 < timeout:
        if pg("SELECT to_regclass('public.vt_w') IS NOT NULL", PDB, superuser=True).strip() == "t":
            got = wide()
            if got == exp:
                return got
        for s, p in STREAM.items():
            if p.poll() is not None:
                fail("stream %s exited %s while waiting for %s" % (s, p.returncode, what))
        time.sleep(0.3)
    diff = ["key %d: wide %s, from the sources %s" % (k, (got or {}).get(k), exp.get(k))
            for k in sorted(set(exp) | set(got or {})) if (got or {}).get(k) != exp.get(k)]
    fail("%s: the wide table differs from the computation from the sources' final rows (%d keys):\n  %s"
         % (what, len(diff), "\n  ".join(diff[:12])))


for s in SRCS:
    start_stream(s, FROM)
for i in range(1, K + 1):
    chs = [change("a", i, False)]
    if rnd.random() < 0.8:
        chs.append(change("b", i, False))
    if rnd.random() < 0.7:
        chs.append(change("c", i, False))
    apply(*chs)
# keys only c writes: its row deletes make them dead (tombstones), its
# inserts bring them back
CK = list(range(K + 1, K + 5))
apply(*[change("c", i, False) for i in CK])
N = 8 * K
for n in range(N):
    chs = [change(rnd.choice(SRCS)) for _ in range(rnd.randint(1, 3))]
    if rnd.random() < 0.3:
        chs.append(change("c", rnd.choice(CK), rnd.random() < 0.5))
    apply(*chs)
    if n in (N // 3, 2 * N // 3):
        # kill -9 pipeline a mid-run, restart it from its checkpoint
        time.sleep(rnd.uniform(0.05, 0.4))
        dblib.kill9(STREAM["a"], "pipeline a (kill at change %d)" % n)
        start_stream("a", FROM)
if CK[0] in ROWS["c"]:      # at least one dead key
    apply(change("c", CK[0], True))
got = wait_model("after the workload with two kills of pipeline a")
log("workload: %d keys equal the computation from the final source rows" % len(got))

# some key must have exercised a tie or a close vote, else the test proves little
multi = [k for k in TOUCHED if len({e["v"] for s in SRCS for e in [ENT.get((k, "email", s))] if e and e["v"]}) > 1]
if len(multi) < 3:
    fail("the workload produced only %d keys with competing emails (seed %s)" % (len(multi), SEED))
dead = [k for k in CK if not visible(k)]
tomb = int(pg("SELECT count(*) FROM vt_w_tombstones", PDB, superuser=True))
if not dead or tomb != len(dead):
    fail("vt_w_tombstones holds %d rows, expected the %d dead keys %s" % (tomb, len(dead), dead))
log("%d keys with competing emails; %d dead keys in vt_w_tombstones" % (len(multi), len(dead)))

# ---- provenance shows every source's vote and score ------------------------------

prov = {}
for line in pg("SELECT k, _provenance->'email' FROM vt_w_provenance()", PDB, superuser=True).splitlines():
    k, j = line.split("\t", 1)
    prov[int(k)] = json.loads(j)
for key in TOUCHED:
    if not visible(key):
        if key in prov:
            fail("key %d: every entry is a row delete's, yet the row is visible: %s" % (key, prov[key]))
        continue
    p = prov.get(key)
    if p is None or "votes" not in p:
        fail("key %d: the provenance of email has no votes: %s" % (key, p))
    for s in SRCS:
        e = ENT.get((key, "email", s))
        v = p["votes"].get(s)
        if (e is None) != (v is None) or (e and (v.get("v") != e["v"] or int(v["sc"]) != e["sc"] or
                                                 ("d" in v) != e["del"])):
            fail("key %d source %s: provenance vote %s, expected %s" % (key, s, v, e))
nv = int(pg("SELECT count(*) FROM vt_w_votes", PDB, superuser=True))
if nv != len(ENT):
    fail("vt_w_votes holds %d entries, expected one per key, field and source: %d" % (nv, len(ENT)))
log("provenance names each source's vote and score; vt_w_votes holds %d entries" % nv)

# ---- reconcile: no drift; one drift of the half_life field found -------------------


def reconcile(*extra):
    r = subprocess.run([BIN, "reconcile", "-c", PF["a"], "--target", "w"] + list(extra) + [PF["b"], PF["c"]],
                       capture_output=True, text=True, timeout=300)
    log("reconcile %s -> %d:\n%s" % (" ".join(extra), r.returncode, r.stdout.rstrip()))
    return r


r = reconcile()
if r.returncode != 0 or "no drift" not in r.stdout:
    fail("reconcile after the workload: exit %d (want 0, 'no drift'):\n%s%s" % (r.returncode, r.stdout, r.stderr))
k_d = random.Random(SEED + 1).choice(sorted(k for (k, f, s), e in ENT.items()
                                            if f == "email_d" and s == "a" and e["v"] is not None))
pg("UPDATE vt_w_votes SET _value = 'drift@x.org' WHERE k = %d AND _field = 'email_d' AND _source = 'a'" % k_d,
   PDB, superuser=True)
r = reconcile("--json")
found = set()
for d in (json.loads(x) for x in r.stdout.splitlines() if x.strip()):
    if d["kind"] != "summary":
        found.add((d["kind"], int(d["key"]["k"]), d["field"]))
if r.returncode != 1 or found != {("side", k_d, "vt_w_votes email_d a")}:
    fail("reconcile with a's email_d entry of %d altered: exit %d, found %s (want 1 and that entry alone):\n%s"
         % (k_d, r.returncode, sorted(found, key=str), r.stderr))
pg("UPDATE vt_w_votes SET _value = %s WHERE k = %d AND _field = 'email_d' AND _source = 'a'"
   % ("'%s'" % ENT[(k_d, "email_d", "a")]["v"], k_d), PDB, superuser=True)
log("reconcile: no drift after the workload; a's altered email_d entry of %d found" % k_d)

# ---- exactly once: a's applied changes equal a reference run's ---------------------

RPF = pipefile("a", "aref", target=RDB)
start_stream("a", FROM, RPF, "aref")
want_pos = pg("SELECT position FROM autoglm_cdc_offsets WHERE pipeline = 'vt%s_a'" % ID, PDB, superuser=True)
t0 = time.time()
while True:
    got_pos = pg("SELECT position FROM autoglm_cdc_offsets WHERE pipeline = 'vt%s_aref'" % ID, RDB, superuser=True,
                 check=False) if pg("SELECT to_regclass('public.autoglm_cdc_offsets') IS NOT NULL", RDB,
                                    superuser=True).strip() == "t" else ""
    if got_pos and got_pos == want_pos:
        break
    if time.time() - t0 > 120:
        fail("reference pipeline did not reach %s (at %s)" % (want_pos, got_pos))
    time.sleep(0.3)
ca = pg("SELECT changes FROM autoglm_cdc_offsets WHERE pipeline = 'vt%s_a'" % ID, PDB, superuser=True).strip()
cr = pg("SELECT changes FROM autoglm_cdc_offsets WHERE pipeline = 'vt%s_aref'" % ID, RDB, superuser=True).strip()
if not ca or ca != cr:
    fail("exactly once: pipeline a (killed twice) applied %s changes, the reference run %s" % (ca, cr))
log("exactly once: pipeline a applied %s changes, as the reference run" % ca)

# ---- one large transaction: a batch of BULK keys (row locks, no lock-table limit)

BULK = int(os.environ.get("CDC_VT_BULK", "20000"))
T[0] += 1
my("USE %s; SET TIMESTAMP = %d; INSERT INTO items SELECT seq + %d, 'bulk@x.org', 1, '1.00' FROM seq_1_to_%d;"
   % (DB["b"], T[0], 1000, BULK))
for i in range(1, BULK + 1):
    key = i + 1000
    ROWS["b"][key] = ("bulk@x.org", True, "1.00")
    for f in ("email", "amt", "best", "email_d"):
        offer(key, "b", f, None, ROWS["b"][key], T[0])
    TOUCHED.add(key)
wait_model("after one transaction of %d rows" % BULK, timeout=300)
log("one transaction of %d rows: every key as computed" % BULK)

dblib.stop(PROCS)
cleanup()
print("ok - vote, weighted_mean and weighted with confidence equal the computation from the sources' final rows")
