#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`autoglm-cdc reconcile` over the per-source rules: vote, weighted_mean
and weighted with a confidence (docs/MAPPINGS.md, Reconcile; Confidence,
vote and weighted mean), against real MariaDB and PostgreSQL.

Two MariaDB sources a (weight 1) and b (weight 0.8), one items table each
(id, email, verified, amt), stream into one PostgreSQL wide table:

  email  text           rule vote             <- email
  amt    numeric(12,2)  rule weighted_mean    <- amt
  best   text           rule weighted         <- email
  email_h text          rule vote, half_life 1h <- email
  confidence: case when verified = 1 then 1.0 else 0.6 end; on_delete: clear

The scores (1.0, 0.6, 0.8, 0.48 in millionths) never tie, so every field
is a function of the sources' current rows and, for `best`, of the score
of a deleted row's NULL (a clear's NULL entry competes under weighted).
The test computes the table itself from what it wrote and waits until
the wide table equals it; then:

  * reconcile finds no drift (exit 0); a `best` won by a deleted row's NULL
    is consistent (a snapshot has no entry for a gone row);
  * drift: an UPDATE of each field of three keys, a deleted entry of
    rv_w_votes (a's amt of a fourth key) and an altered score (b's email
    entry of a fifth); reconcile --json exits 1 and reports exactly those,
    the recomputed values equal to the test's computation;
  * --repair exits 0, the table equals the computation, the votes table
    holds the sources' entries again, a second reconcile is clean;
  * half_life (email_h): the stored entries' commit times make the
    decayed scores; a clean table has no drift.  An UPDATE of email_h of
    one key and an altered value of b's email_h entry of another
    (its commit time is then unknown): reconcile reports exactly those
    two, the recomputed email_h equal to the value before the drift;
    --repair puts it back and writes b's entry with its row's value
    under a snapshot rank (scored at commit time 0); a second reconcile
    is clean;
  * a field group with half_life (target g, rule weighted: the group
    ranks by the static weight, so no commit time is needed): clean, an
    altered gx found, repaired, clean again;
  * later changes (a new amount and confidence of a's row of the amt key,
    a delete of b's row of the email key) land as the rules say and a
    last reconcile is clean.

Seed: CDC_TEST_SEED.  Env: CDC_RV_KEYS (default 20).
"""
import json
import os
import random
import subprocess
import tempfile
import time
import zlib
from fractions import Fraction

import dblib
from dblib import BIN, E, fail, log, my, pg

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

K = int(os.environ.get("CDC_RV_KEYS", "20"))
SEED = dblib.test_seed()
ID = "%d" % os.getpid()
SRCS = "ab"
DB = {s: "rv%s_%s" % (s, ID) for s in SRCS}
W = {"a": 1000000, "b": 800000}          # weights in millionths
PDB = "rvp_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-rcvote-")
PROCS = []
STREAM = {}
EMAILS = ["ann@x.org", "bob@x.org", "Ann@x.org", "cy@x.org", None]


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[PDB], origins_like="autoglm_cdc_rv%s\\_%%" % ID,
                  my_dbs=[DB[s] for s in SRCS])


dblib.on_fail(cleanup, logdir=TMP)

MAPF = os.path.join(TMP, "rv.yaml")
open(MAPF, "w").write("""sources: {a: {weight: 1}, b: {weight: 0.8}}
targets:
  w:
    table: public.rv_w
    key: k
    fields:
      k: bigint
      email: {type: text, owners: [a, b], rule: vote}
      amt: {type: 'numeric(12,2)', owners: [a, b], rule: weighted_mean}
      best: {type: text, owners: [a, b], rule: weighted}
      email_h: {type: text, owners: [a, b], rule: vote, half_life: 1h}
  g:
    table: public.rv_g
    key: k
    fields:
      k: bigint
      gx: {type: text, owners: [a, b], rule: weighted, group: gh, half_life: 1h}
      gv: {type: bigint, owners: [a, b], rule: weighted, group: gh, half_life: 1h}
mappings:
""" + "".join("  - {source: %s, table: %s.items, target: w, key: {k: id}, on_delete: clear,\n"
              "     confidence: 'case when verified = 1 then 1.0 else 0.6 end',\n"
              "     fields: {email: email, amt: amt, best: email, email_h: email}}\n"
              "  - {name: g%s, source: %s, table: %s.items, target: g, key: {k: id}, on_delete: clear,\n"
              "     fields: {gx: email, gv: verified}}\n" % (s, DB[s], s, s, DB[s]) for s in SRCS))

for s in SRCS:
    my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; CREATE TABLE %s.items (id INT PRIMARY KEY, "
       "email VARCHAR(60), verified TINYINT NOT NULL, amt DECIMAL(10,2) NOT NULL) CHARSET utf8mb4"
       % (DB[s], DB[s], DB[s]))
pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
ms = my("SHOW MASTER STATUS").split()
FROM = "%s:%s" % (ms[0], ms[1])


def pipefile(s):
    path = os.path.join(TMP, "%s.yaml" % s)
    open(path, "w").write("""pipeline: {name: rv%s_%s}
application_id: %s
source: {type: mysql}
mysql: {dsn: "mysql://root:%s@127.0.0.1:%s", server_id: %d, from: "%s"}
filter: {include: "%s.items"}
sink: {type: postgres}
postgres_sink: {dsn: "%s", flush_ms: 50}
mapping: {files: "%s"}
state: {dir: "%s"}
""" % (ID, s, s, E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], 9000 + zlib.crc32((ID + s).encode()) % 40000, FROM,
       DB[s], dblib.pg_dsn(PDB), MAPF, os.path.join(TMP, "state-" + s)))
    return path


PF = {s: pipefile(s) for s in SRCS}
for s in SRCS:
    lf = open(os.path.join(TMP, "stream-%s.log" % s), "ab")
    p = subprocess.Popen([BIN, "run", "-c", PF[s]], stdout=lf, stderr=lf)
    PROCS.append(p)
    STREAM[s] = p

RUNS = [0]


def reconcile(*extra, target="w"):
    RUNS[0] += 1
    a = [BIN, "reconcile", "-c", PF["a"], "--target", target] + list(extra) + [PF["b"]]
    with open(os.path.join(TMP, "reconcile-%d.log" % RUNS[0]), "wb") as lf:
        r = subprocess.run(a, stdout=subprocess.PIPE, stderr=lf, timeout=300)
    out = r.stdout.decode()
    log("reconcile %s -> %d:\n%s" % (" ".join(extra), r.returncode, out.rstrip()))
    return r.returncode, out


# ---- the workload and the test's own computation ------------------------------------------
rnd = random.Random(SEED)
ENT = {s: {} for s in SRCS}   # key -> (email, score, amt cents) of the source's row, or (None, score, None) deleted


def q(v):
    return "NULL" if v is None else "'%s'" % v


def change(s, key=None, delete=None):
    key = key if key is not None else rnd.randint(1, K)
    cur = ENT[s].get(key)
    live = cur is not None and cur[2] is not None
    if delete is None:
        delete = live and rnd.random() < 0.25
    if delete and live:
        ENT[s][key] = (None, cur[1], None)    # the NULL keeps the deleted row's score
        return "DELETE FROM %s.items WHERE id = %d;" % (DB[s], key)
    em, ver, cents = rnd.choice(EMAILS), rnd.randint(0, 1), rnd.randint(100, 99999)
    score = W[s] * (1 if ver else 6) // (1 if ver else 10)
    ENT[s][key] = (em, score, cents)
    amt = "%d.%02d" % (cents // 100, cents % 100)
    if live:
        return "UPDATE %s.items SET email = %s, verified = %d, amt = %s WHERE id = %d;" % (
            DB[s], q(em), ver, amt, key)
    return "INSERT INTO %s.items VALUES (%d, %s, %d, %s);" % (DB[s], key, q(em), ver, amt)


def expected():
    rows = {}
    for key in set(ENT["a"]) | set(ENT["b"]):
        ents = [ENT[s][key] for s in SRCS if key in ENT[s]]
        sums = {}
        for em, sc, _ in ents:
            if em is not None:
                sums[em] = sums.get(em, 0) + sc
        email = sorted(sums.items(), key=lambda kv: (-kv[1], kv[0].encode()))[0][0] if sums else None
        terms = [(sc, c) for _, sc, c in ents if c is not None]
        amt = None
        if terms:
            m = Fraction(sum(sc * c for sc, c in terms), sum(sc for sc, _ in terms))
            r = int(m) + (1 if m - int(m) >= Fraction(1, 2) else 0)     # half away from zero (m > 0)
            amt = "%d.%02d" % (r // 100, r % 100)
        best = max(ents, key=lambda e: e[1])[0]
        if email or amt or best:
            rows[key] = (email, amt, best)
    return rows


def wide():
    if pg("SELECT to_regclass('public.rv_w') IS NOT NULL", PDB).strip() != "t":
        return {}
    out = {}
    for line in pg("SELECT k, email, amt::text, best FROM rv_w", PDB, sep="\x1f").splitlines():
        f = [None if x == "" else x for x in line.split("\x1f")]
        if any(f[1:]):
            out[int(f[0])] = tuple(f[1:])
    return out


def wait_model(what, timeout=120):
    t0 = time.time()
    while True:
        exp, got = expected(), wide()
        if exp == got:
            return exp
        for s, p in STREAM.items():
            if p.poll() is not None:
                fail("stream %s exited %s (%s)" % (s, p.returncode, what))
        if time.time() - t0 > timeout:
            diff = ["key %d: wide %s, computed %s" % (k, got.get(k), exp.get(k))
                    for k in sorted(set(exp) | set(got)) if exp.get(k) != got.get(k)]
            fail("%s: the wide table differs from the computation (%d keys):\n  %s" % (
                what, len(diff), "\n  ".join(diff[:10])))
        time.sleep(0.3)


for k in range(1, K + 1):
    my(change("a", k, False) + (change("b", k, False) if rnd.random() < 0.8 else ""))
for _ in range(8 * K):
    my("".join(change(rnd.choice(SRCS)) for _ in range(rnd.randint(1, 3))))
exp = wait_model("after the workload")
log("%d keys streamed and equal to the computation; %d with `best` won by a deleted row's NULL while a value "
    "is left" % (len(exp), sum(1 for k, v in exp.items() if v[2] is None and any(
        ENT[s].get(k, (None,))[0] for s in SRCS))))

# ---- 1. no drift ----------------------------------------------------------------------------
rc, out = reconcile()
if rc != 0 or "no drift" not in out:
    fail("reconcile of a table the streams built: exit %d (want 0, 'no drift'):\n%s" % (rc, out))

# ---- 2. drift -------------------------------------------------------------------------------
keys = sorted(exp)
k_email = rnd.choice([k for k in keys if exp[k][0]])
k_amt = rnd.choice([k for k in keys if exp[k][1] and k != k_email])
k_best = rnd.choice([k for k in keys if exp[k][2] and k not in (k_email, k_amt)])
k_va = rnd.choice([k for k in ENT["a"] if ENT["a"][k][2] is not None and k not in (k_email, k_amt, k_best)])
k_vb = rnd.choice([k for k in ENT["b"] if ENT["b"][k][0] is not None and k not in (k_email, k_amt, k_best, k_va)])
pg("UPDATE rv_w SET email = 'drift@x.org' WHERE k = %d; UPDATE rv_w SET amt = amt + 1 WHERE k = %d; "
   "UPDATE rv_w SET best = 'drift@x.org' WHERE k = %d; "
   "DELETE FROM rv_w_votes WHERE k = %d AND _field = 'amt' AND _source = 'a'; "
   "UPDATE rv_w_votes SET _score = '1' WHERE k = %d AND _field = 'email' AND _source = 'b'"
   % (k_email, k_amt, k_best, k_va, k_vb), PDB, superuser=True)
log("drift: email of %d, amt of %d, best of %d; a's amt entry of %d deleted, b's email score of %d altered"
    % (k_email, k_amt, k_best, k_va, k_vb))
rc, out = reconcile("--json")
if rc != 1:
    fail("reconcile --json with drift exited %d, want 1" % rc)
found = {}
for d in (json.loads(x) for x in out.splitlines() if x.strip()):
    if d["kind"] != "summary":
        found[(d["kind"], int(d["key"]["k"]), d["field"])] = d
want = {("differs", k_email, "email"), ("differs", k_amt, "amt"), ("differs", k_best, "best"),
        ("side", k_va, "rv_w_votes amt a"), ("side", k_vb, "rv_w_votes email b")}
if set(found) != want:
    fail("reconcile found %s, the injected drift is %s" % (sorted(found, key=str), sorted(want, key=str)))
for k, f, i in ((k_email, "email", 0), (k_amt, "amt", 1), (k_best, "best", 2)):
    v = found[("differs", k, f)]["recomputed"]["value"]
    if (float(v) if f == "amt" else v) != (float(exp[k][i]) if f == "amt" else exp[k][i]):
        fail("%s of %d: recomputed %r, the computation gives %r" % (f, k, v, exp[k][i]))
d = found[("side", k_va, "rv_w_votes amt a")]
e = ENT["a"][k_va]
if d["stored"]["value"] != "no entry" or d["recomputed"]["value"] != "%d.%02d score=%d" % (
        e[2] // 100, e[2] % 100, e[1]):
    fail("a's amt entry of %d: %s, want no entry and the row's amount and score %s" % (k_va, d, e))

# ---- 3. repair --------------------------------------------------------------------------------
rc, out = reconcile("--repair")
if rc != 0 or "repaired" not in out:
    fail("reconcile --repair exited %d (want 0, 'repaired'):\n%s" % (rc, out))
got = wide()
if got != exp:
    fail("after --repair the table differs from the computation:\n  %s" % "\n  ".join(
        "key %d: wide %s, computed %s" % (k, got.get(k), exp.get(k))
        for k in sorted(set(exp) | set(got)) if got.get(k) != exp.get(k)))
ent = pg("SELECT (SELECT _value || ' ' || _score FROM rv_w_votes WHERE k = %d AND _field = 'amt' AND _source = 'a'), "
         "(SELECT _score FROM rv_w_votes WHERE k = %d AND _field = 'email' AND _source = 'b')" % (k_va, k_vb),
         PDB).strip().split("\t")
if ent != ["%d.%02d %d" % (ENT["a"][k_va][2] // 100, ENT["a"][k_va][2] % 100, ENT["a"][k_va][1]),
           str(ENT["b"][k_vb][1])]:
    fail("after --repair the votes table holds %s for a's amt of %d and b's email score of %d" % (ent, k_va, k_vb))
rc, out = reconcile()
if rc != 0 or "no drift" not in out:
    fail("reconcile after --repair: exit %d (want 0, 'no drift'):\n%s" % (rc, out))

# ---- 3b. half_life: decayed scores from the votes table's commit times ------------------------
def email_h():
    return {int(a): (b or None) for a, b in (l.split("\x1f") for l in pg(
        "SELECT k, email_h FROM rv_w", PDB, sep="\x1f").splitlines())}


before = email_h()
k_h = rnd.choice([k for k in keys if before.get(k)])
k_hb = rnd.choice([k for k in ENT["b"] if ENT["b"][k][0] is not None and k != k_h])
pg("UPDATE rv_w SET email_h = 'drift@x.org' WHERE k = %d; "
   "UPDATE rv_w_votes SET _value = 'zz@x.org' WHERE k = %d AND _field = 'email_h' AND _source = 'b'"
   % (k_h, k_hb), PDB, superuser=True)
log("half_life drift: email_h of %d, b's email_h entry of %d" % (k_h, k_hb))
rc, out = reconcile("--json")
if rc != 1:
    fail("reconcile --json with half_life drift exited %d, want 1" % rc)
found = {}
for d in (json.loads(x) for x in out.splitlines() if x.strip()):
    if d["kind"] != "summary":
        found[(d["kind"], int(d["key"]["k"]), d["field"])] = d
want = {("differs", k_h, "email_h"), ("side", k_hb, "rv_w_votes email_h b")}
if set(found) != want:
    fail("reconcile found %s, the injected half_life drift is %s" % (sorted(found, key=str), sorted(want, key=str)))
v = found[("differs", k_h, "email_h")]["recomputed"]["value"]
if v != before[k_h]:
    fail("email_h of %d: recomputed %r, the streamed value was %r" % (k_h, v, before[k_h]))
rc, out = reconcile("--repair")
if rc != 0 or "repaired" not in out:
    fail("reconcile --repair (half_life) exited %d (want 0, 'repaired'):\n%s" % (rc, out))
after = email_h()
if after[k_h] != before[k_h]:
    fail("after --repair email_h of %d is %r, the streamed value %r" % (k_h, after[k_h], before[k_h]))
ent = pg("SELECT _value || ' ' || left(_rank, 16) FROM rv_w_votes WHERE k = %d AND _field = 'email_h' "
         "AND _source = 'b'" % k_hb, PDB).strip()
if ent != "%s 0000000000000000" % ENT["b"][k_hb][0]:
    fail("after --repair b's email_h entry of %d is %r, want its row's value under a snapshot rank (commit "
         "time 0)" % (k_hb, ent))
rc, out = reconcile()
if rc != 0 or "no drift" not in out:
    fail("reconcile after the half_life --repair: exit %d (want 0, 'no drift'):\n%s" % (rc, out))

# ---- 3c. a field group with half_life (its rank: the group's rule and the static weight) -------
gx = {int(a): b for a, b in (l.split("\x1f") for l in pg("SELECT k, gx FROM rv_g WHERE gx IS NOT NULL", PDB,
                                                          sep="\x1f").splitlines())}
rc, out = reconcile(target="g")
if rc != 0 or "no drift" not in out:
    fail("reconcile of the half_life group: exit %d (want 0, 'no drift'):\n%s" % (rc, out))
k_g = rnd.choice(sorted(gx))
pg("UPDATE rv_g SET gx = 'drift@x.org' WHERE k = %d" % k_g, PDB, superuser=True)
rc, out = reconcile("--json", target="g")
found = {(d["kind"], int(d["key"]["k"]), d["field"]) for d in (json.loads(x) for x in out.splitlines() if x.strip())
         if d["kind"] != "summary"}
if rc != 1 or found != {("differs", k_g, "gx")}:
    fail("reconcile of the half_life group with gx of %d altered: exit %d, found %s" % (k_g, rc, found))
rc, out = reconcile("--repair", target="g")
got = pg("SELECT gx FROM rv_g WHERE k = %d" % k_g, PDB).strip()
if rc != 0 or got != gx[k_g]:
    fail("reconcile --repair of the half_life group: exit %d, gx of %d %r, want %r" % (rc, k_g, got, gx[k_g]))
rc, out = reconcile(target="g")
if rc != 0 or "no drift" not in out:
    fail("reconcile of the half_life group after --repair: exit %d (want 0):\n%s" % (rc, out))

# ---- 4. the streams after the repair ---------------------------------------------------------
my(change("a", k_amt, False) + change("a", k_va, False) + change("b", k_email, True) + change("b", k_vb, False))
wait_model("after the repair, further source changes")
rc, out = reconcile()
if rc != 0 or "no drift" not in out:
    fail("reconcile after the further changes: exit %d (want 0):\n%s" % (rc, out))

dblib.stop(PROCS)
PROCS.clear()
cleanup()
print("ok - reconcile recomputes vote, weighted_mean and weighted with confidence from the sources, finds and "
      "repairs drift of the fields and of the votes table, and the streams go on by the rules")
