#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Backfills next to running streams: ranks, offsets rows, idempotence
(docs/BACKFILL.md, consistency; docs/MAPPINGS.md, snapshot rows).

Three MariaDB sources a, b, c (databases bra_/brb_/brc_<pid>, one items
table each, seeded before the streams start) write one PostgreSQL wide
table through three streaming pipelines:

  name   text, owners a b c, rule latest   <- v
  best   text, owners a b c, rule priority <- v   (a 1, b 2, c 3)
  a_n, b_n, c_n  bigint, one owner each    <- n
  on_delete: clear (a delete offers NULL for the source's fields)

While a writer keeps changing all three sources (each transaction with
its own commit time, SET TIMESTAMP, unique and increasing), a watermarked
backfill of each source runs in turn.  The test computes the wide table
itself: per field the highest-ranked streamed change (latest: time;
priority: priority, then time); only where a source never streamed a
field does its snapshot (the seeded value) compete, ranked below every
streamed change of any source (priority still comes first under
`priority`).  Then:

  * the wide table equals that model;
  * the streams' offsets rows never move backwards (sampled every 100 ms
    through the backfills, a kill -9 of stream a and its restart), and
    their `changes` equal the number of source changes each stream read,
    as in an uninterrupted run; each backfill keeps its own row
    (`<pipeline>.backfill`);
  * a second full backfill of every source, with no source changes,
    changes nothing: no row version of the wide table moves.

Env: CDC_BFR_KEYS (default 40), CDC_SEED.  Exit 0 pass, 1 fail, 77 skip.
"""
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

K = int(os.environ.get("CDC_BFR_KEYS", "40"))
SEED = int(os.environ.get("CDC_SEED", "%d" % os.getpid()))
ID = "%d" % os.getpid()
SRCS = "abc"
DB = {s: "br%s_%s" % (s, ID) for s in SRCS}
PRIO = {"a": 1, "b": 2, "c": 3}
PDB = "brp_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-bfranks-")
PROCS = []
STREAM = {}


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[PDB], origins_like="autoglm_cdc_bfr%s%%" % ID,
                  my_dbs=list(DB.values()))


dblib.on_fail(cleanup, logdir=TMP)


def pipe(s):
    return "bfr%s_%s" % (ID, s)


def mydsn():
    return "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"])


def common(s):
    return ["--application-id", s, "--source", "mysql", "--mysql-dsn", mydsn(),
            "--sink", "postgres", "-X", "postgres_sink.dsn=" + dblib.pg_dsn(PDB, superuser=True),
            "-X", "postgres_sink.flush_ms=50", "-X", "mapping.files=" + MAPF,
            "--pipeline", pipe(s), "--state-dir", os.path.join(TMP, "state-" + s)]


def start_stream(s, frm=None):
    a = [BIN, "run"] + common(s) + ["--include", DB[s] + ".items",
                                    "-X", "mysql.server_id=%d" % (6000 + zlib.crc32((ID + s).encode()) % 50000),
                                    "-X", "checkpoint.interval_ms=2500"]
    if frm:
        a += ["--from", frm]
    lf = open(os.path.join(TMP, "stream-%s.log" % s), "ab")
    p = subprocess.Popen(a, stdout=lf, stderr=lf)
    PROCS.append(p)
    STREAM[s] = p


def backfill(s, tag):
    a = [BIN, "backfill"] + common(s) + ["--table", DB[s] + ".items", "-X", "backfill.mode=incremental",
                                         "--chunk-size", "6", "--max-rows-per-sec", "30"]
    with open(os.path.join(TMP, "backfill-%s-%s.log" % (s, tag)), "wb") as lf:
        rc = subprocess.call(a, stdout=lf, stderr=lf, timeout=300)
    if rc:
        fail("backfill of %s (%s) exited %d" % (s, tag, rc))


# ---- setup ---------------------------------------------------------------------

MAPF = os.path.join(TMP, "bfr.yaml")
open(MAPF, "w").write("""sources: {a: {priority: 1}, b: {priority: 2}, c: {priority: 3}}
targets:
  w:
    table: public.bfr_w
    key: k
    fields:
      k: bigint
      name: {type: text, owners: [a, b, c]}
      best: {type: text, owners: [a, b, c], rule: priority}
      a_n: {type: bigint, owner: a}
      b_n: {type: bigint, owner: b}
      c_n: {type: bigint, owner: c}
mappings:
""" + "".join("  - {source: %s, table: %s.items, target: w, key: {k: id}, on_delete: clear,\n"
              "     fields: {name: v, best: v, %s_n: n}}\n" % (s, DB[s], s) for s in SRCS))

rnd = random.Random(SEED)
log("seed %d, %d keys per source" % (SEED, K))
pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
ROWS = {s: {} for s in SRCS}          # the source tables as the test knows them: id -> (v, n)
for s in SRCS:
    ROWS[s] = {i: ("%s-seed-%d" % (s, i), 1000 * PRIO[s] + i) for i in range(1, K + 1)}
    my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; CREATE TABLE %s.items (id INT PRIMARY KEY, "
       "v VARCHAR(60), n BIGINT) CHARSET utf8mb4; INSERT INTO %s.items VALUES %s;" % (
           DB[s], DB[s], DB[s], DB[s], ", ".join("(%d, '%s', %d)" % (i, v, n) for i, (v, n) in ROWS[s].items())))
SEEDED = {s: dict(ROWS[s]) for s in SRCS}
ms = my("SHOW MASTER STATUS").split()
FROM = "%s:%s" % (ms[0], ms[1])

# ---- the model ----------------------------------------------------------------

STREAMED = {}   # (key, field, source) -> (rank, value): the source's best streamed offer
NCHG = {s: 0 for s in SRCS}
T = [int(time.time()) - 300000]
LOCK = threading.Lock()


def rank(field, s, t):
    return (PRIO[s], t) if field == "best" else (t, PRIO[s])


def offer(key, field, s, t, val):
    r = rank(field, s, t)
    cur = STREAMED.get((key, field, s))
    if cur is None or r > cur[0]:
        STREAMED[(key, field, s)] = (r, val)


def change(s, rnd):
    """One transaction on source s with the next commit time; updates
    change every mapped column (an update offers only changed fields)."""
    T[0] += 1
    t = T[0]
    key = rnd.randint(1, K)
    rows = ROWS[s]
    if key in rows and rnd.random() < 0.2:
        st = "DELETE FROM items WHERE id = %d" % key
        del rows[key]
        vals = (None, None)
    else:
        v, n = "%s-%d" % (s, t), t % 100000 + 7
        if key in rows:
            st = "UPDATE items SET v = '%s', n = %d WHERE id = %d" % (v, n, key)
        else:
            st = "INSERT INTO items VALUES (%d, '%s', %d)" % (key, v, n)
        rows[key] = (v, n)
        vals = (v, n)
    for f, x in (("name", vals[0]), ("best", vals[0]), ("%s_n" % s, vals[1])):
        offer(key, f, s, t, x)
    NCHG[s] += 1
    return "SET TIMESTAMP = %d; %s;" % (t, st)


def model():
    exp = {}
    for key in range(1, K + 1):
        row = []
        for f in ("name", "best", "a_n", "b_n", "c_n"):
            owners = [f[0]] if f.endswith("_n") else list(SRCS)
            cands = []
            for s in owners:
                got = STREAMED.get((key, f, s))
                if got:
                    cands.append(got)
                else:   # only the snapshot: the seeded value, below every streamed change
                    v, n = SEEDED[s][key]
                    cands.append(((PRIO[s], -1) if f == "best" else (-1, PRIO[s]), n if f.endswith("_n") else v))
            best = max(cands, key=lambda c: c[0])[1]
            row.append("\\N" if best is None else str(best))
        exp[key] = tuple(row)
    return exp


def wide():
    out = {}
    for line in pg("SELECT k, coalesce(name, '\\N'), coalesce(best, '\\N'), coalesce(a_n::text, '\\N'), "
                   "coalesce(b_n::text, '\\N'), coalesce(c_n::text, '\\N') FROM bfr_w ORDER BY k",
                   PDB, superuser=True).splitlines():
        f = line.split("\t")
        out[int(f[0])] = tuple(f[1:])
    return out


def offsets():
    out = {}
    # the streams create the table when they start: none yet is no rows yet
    if pg("SELECT to_regclass('autoglm_cdc_offsets') IS NOT NULL", PDB, superuser=True).strip() != "t":
        return out
    for line in pg("SELECT pipeline, pos_key, changes FROM autoglm_cdc_offsets", PDB, superuser=True).splitlines():
        p, k, c = line.split("\t")
        out[p] = (k, int(c))
    return out


def wait_model(what, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        with LOCK:
            exp = model()
        got = wide()
        if got == exp:
            return got
        for s, p in STREAM.items():
            if p.poll() is not None:
                fail("stream %s exited %s while waiting for %s" % (s, p.returncode, what))
        time.sleep(0.5)
    diff = ["key %d: wide %s, model %s" % (k, got.get(k), exp.get(k)) for k in exp if got.get(k) != exp.get(k)]
    fail("%s: the wide table differs from the model (%d keys):\n  %s" % (what, len(diff), "\n  ".join(diff[:12])))


# ---- run -----------------------------------------------------------------------

for s in SRCS:
    start_stream(s, FROM)
# one change per source: every stream has an offsets row before the backfills
my("".join("USE %s; %s" % (DB[s], change(s, rnd)) for s in SRCS))
t0 = time.time()
while not all(pipe(s) in offsets() for s in SRCS):
    if time.time() - t0 > 30:
        fail("the streams wrote no offsets rows: %s" % offsets())
    time.sleep(0.3)

stop = threading.Event()
backwards = []
samples = [0]


def sampler():
    last = {}
    while not stop.is_set():
        try:
            rows = offsets()
        except SystemExit:   # fail() elsewhere dropped the database
            return
        for p, (k, c) in rows.items():
            if p.endswith(".backfill"):
                continue
            if p in last and (k < last[p][0] or c < last[p][1]):
                backwards.append("%s: %s -> %s" % (p, last[p], (k, c)))
            last[p] = (k, c)
        samples[0] += 1
        time.sleep(0.1)


def writer(wstop):
    w = random.Random(SEED + 1)
    while not wstop.is_set():
        with LOCK:
            sql = "".join("USE %s; %s" % (DB[s], change(s, w)) for s in [w.choice(SRCS) for _ in range(3)])
        my(sql)
        time.sleep(0.03)


th_s = threading.Thread(target=sampler)
th_s.start()
wstop = threading.Event()
th_w = threading.Thread(target=writer, args=(wstop,))
th_w.start()
for s in SRCS:
    n0 = sum(NCHG.values())
    backfill(s, "1")
    log("backfill of %s done; %d changes written meanwhile" % (s, sum(NCHG.values()) - n0))
wstop.set()
th_w.join()

# kill -9 stream a (its checkpoint lags up to 2.5 s), write on, restart it
time.sleep(0.5)
STREAM["a"].kill()
STREAM["a"].wait()
with LOCK:
    my("".join("USE %s; %s" % (DB[s], change(s, rnd)) for s in "aabcaa"))
start_stream("a")
wait_model("after the backfills, a kill -9 and restart of stream a")
time.sleep(1.5)   # the sampler sees the final rows
stop.set()
th_s.join()
if backwards:
    fail("a stream's offsets row moved backwards: %s" % backwards[:5])
off = offsets()
for s in SRCS:
    if off[pipe(s)][1] != NCHG[s]:
        fail("stream %s: offsets row counts %d changes, the source had %d (an uninterrupted run's)" % (
            s, off[pipe(s)][1], NCHG[s]))
    if pipe(s) + ".backfill" not in off:
        fail("backfill of %s kept no offsets row of its own: %s" % (s, sorted(off)))
log("wide table == model (%d keys), offsets rows monotonic over %d samples, changes %s == source changes; "
    "backfill rows %s" % (K, samples[0], [off[pipe(s)][1] for s in SRCS],
                          [off[pipe(s) + ".backfill"][1] for s in SRCS]))

# a second full backfill without source changes changes no cell
before = (dblib.pg_versions(PDB, "bfr_w"), pg("SELECT k, _provenance::text FROM bfr_w_provenance() ORDER BY k", PDB, True))
for s in SRCS:
    backfill(s, "2")
after = (dblib.pg_versions(PDB, "bfr_w"), pg("SELECT k, _provenance::text FROM bfr_w_provenance() ORDER BY k", PDB, True))
if after != before:
    fail("a second backfill without source changes changed the wide table")
if wide() != model():
    fail("the wide table left the model after the second backfill")
dblib.stop(PROCS)
PROCS.clear()
cleanup()
print("ok - backfills rank below streamed changes, keep their own offsets row, and re-run without effect")
