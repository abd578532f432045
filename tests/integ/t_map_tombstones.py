#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Row deletes (on_delete: delete) converge in any order: field-level tombstones.

Two MariaDB sources (databases tsa_<pid>, tsb_<pid>, pipelines with
application ids "a" and "b") write one wide table tomb_w; both mappings
delete rows.  A random workload of inserts, updates and deletes runs with
an explicit commit time per transaction (SET TIMESTAMP), drawn at random,
so the binlog order is not the commit-time order: older changes arrive
after newer deletes, deletes arrive after newer writes of the other
source, keys are deleted that nobody wrote yet.

The expected wide row is computed here, independently of the C code: per
field the candidate of highest rank (latest: commit time, then source
priority; priority: source priority, then commit time), a delete being a
NULL with the deletion mark on every non-key field; a row is visible
unless every field's winner is a deletion, and then its key is in
tomb_w_tombstones.

The same changes are applied in several orders, batch sizes and with
every change replayed (other pipeline names start from the beginning
again), through the PostgreSQL and the MySQL (MariaDB) wide sink; every
result must equal the expectation, values and provenance (s, t, d), and
the ranks must be equal across runs.

Env: CDC_TOMB_KEYS (default 24), CDC_TOMB_CHANGES (default 140).
Exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import random
import subprocess
import tempfile
import zlib

import dblib
from dblib import BIN, E, fail, log, my

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

NKEYS = int(os.environ.get("CDC_TOMB_KEYS", "24"))
NCHG = int(os.environ.get("CDC_TOMB_CHANGES", "140"))
SEED = dblib.test_seed()  # CDC_TEST_SEED


ID = "%d" % os.getpid()
SRC = {"a": "tsa_" + ID, "b": "tsb_" + ID}
PGW = ["tombw_%s_%d" % (ID, i) for i in (1, 2, 3)]
MYW = ["tombmy_%s_%d" % (ID, i) for i in (1, 2)]
TMP = tempfile.mkdtemp(prefix="cdc-tomb-")
PROCS = []
FIELDS = ["x", "y", "z", "p"]
OWN = {"a": ["x", "z", "p"], "b": ["y", "z", "p"]}
PRIO = {"a": 2, "b": 1}
RULE = {"x": "latest", "y": "latest", "z": "latest", "p": "priority"}


def pg(q, db, superuser=False, check=True):
    return dblib.pg(q, db, superuser, check, sep="\x1f")


dsn = dblib.pg_dsn


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=PGW, my_dbs=list(SRC.values()) + MYW)


dblib.on_fail(cleanup)


# ---- setup ----------------------------------------------------------------------

for d in SRC.values():
    my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; CREATE TABLE %s.items (id INT PRIMARY KEY, "
       "v VARCHAR(50)) CHARSET utf8mb4;" % (d, d, d))
for d in MYW:
    my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s;" % (d, d))
for d in PGW:
    pg("CREATE DATABASE %s OWNER %s" % (d, E["PGUSER"]), "postgres", superuser=True)
ms = my("SHOW MASTER STATUS").split()
FROM = "%s:%s" % (ms[0], ms[1])

MAPF = os.path.join(TMP, "tomb.yaml")
open(MAPF, "w").write("""
sources: {a: {priority: 2}, b: {priority: 1}}
targets:
  tomb_w:
    table: public.tomb_w
    key: k
    fields:
      k: bigint
      x: {type: text, owner: a}
      y: {type: text, owner: b}
      z: {type: text, owners: [a, b]}
      p: {type: text, owners: [a, b], rule: priority}
mappings:
  - {source: a, table: %s.items, target: tomb_w, key: {k: id}, on_delete: delete, fields: {x: v, z: v, p: v}}
  - {source: b, table: %s.items, target: tomb_w, key: {k: id}, on_delete: delete, fields: {y: v, z: v, p: v}}
""" % (SRC["a"], SRC["b"]))

# ---- the workload and its expectation ----------------------------------------------

rnd = random.Random(SEED)
log("seed %d" % SEED)
# unique, unordered, even (an insert just before a delete takes t - 1)
times = [2 * x for x in rnd.sample(range(800_000_000, 800_000_000 + 20 * NCHG), NCHG)]
state = {"a": {}, "b": {}}
best = {}      # (key, field) -> (rank, value, src, t, deleted)
touched = set()
script = []
ndel = 0
late = 0       # changes older than a delete of their key that comes before them


def rank(field, src, t):
    return (t, PRIO[src]) if RULE[field] == "latest" else (PRIO[src], t)


def offer(key, field, val, src, t, deleted):
    r = rank(field, src, t)
    cur = best.get((key, field))
    if cur is None or r > cur[0]:
        best[(key, field)] = (r, val, src, t, deleted)


last_del = {}
for i in range(NCHG):
    src = rnd.choice("ab")
    key = rnd.randint(1, NKEYS)
    t = times[i]
    db = SRC[src]
    st = state[src]
    touched.add(key)
    if key in last_del and t < last_del[key]:
        late += 1
    if key in st and rnd.random() < 0.35 or key not in st and rnd.random() < 0.12:
        # delete (of a row of this source; a delete of a missing row is
        # an empty statement, so delete an existing one or insert+delete)
        if key not in st:
            v0 = "%s-%d-pre" % (src, i)
            script.append("SET TIMESTAMP=%d; INSERT INTO %s.items VALUES (%d, '%s');" % (t - 1, db, key, v0))
            # the insert is a change too (one second older than the delete)
            for f in OWN[src]:
                offer(key, f, v0, src, t - 1, False)
        script.append("SET TIMESTAMP=%d; DELETE FROM %s.items WHERE id=%d;" % (t, db, key))
        st.pop(key, None)
        for f in FIELDS:
            offer(key, f, None, src, t, True)
        last_del[key] = max(last_del.get(key, 0), t)
        ndel += 1
        continue
    v = "%s-%d" % (src, i)
    if key in st:
        script.append("SET TIMESTAMP=%d; UPDATE %s.items SET v='%s' WHERE id=%d;" % (t, db, v, key))
    else:
        script.append("SET TIMESTAMP=%d; INSERT INTO %s.items VALUES (%d, '%s');" % (t, db, key, v))
    st[key] = v
    for f in OWN[src]:
        offer(key, f, v, src, t, False)
my("\n".join(script))
log("%d changes (%d deletes, %d older than an earlier-applied delete of their key) on %d keys"
    % (len(script), ndel, late, len(touched)))

EXPECT = {}
for key in sorted(touched):
    ent = {f: best[(key, f)] for f in FIELDS if (key, f) in best}
    if all(e[4] for e in ent.values()):
        continue
    EXPECT[key] = {f: (e[1], e[2], e[3] * 1000000, bool(e[4])) for f, e in ent.items()}
DEAD = sorted(k for k in touched if k not in EXPECT)
log("expected: %d visible rows, %d dead keys" % (len(EXPECT), len(DEAD)))
if not DEAD or not any(any(c[3] for c in r.values()) for r in EXPECT.values()):
    fail("workload too small to exercise deletes (raise CDC_TOMB_CHANGES)")


# ---- running the pipelines --------------------------------------------------------

def start(src, pipe, sink, db, batch=None):
    a = [BIN, "--pipeline", pipe, "--application-id", src, "--state-dir", os.path.join(TMP, "state-" + pipe),
         "-X", "mapping.files=" + MAPF, "--idle-exit", "2500",
         "--source", "mysql", "--mysql-dsn", "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"],
                                                                              E["MYSQL_PORT"]),
         "--from", FROM, "--include", SRC[src] + ".*",
         "-X", "mysql.server_id=%d" % (7000 + zlib.crc32(pipe.encode()) % 50000)]
    if sink == "mysql":
        a += ["--sink", "mysql", "-X", "mysql_sink.dsn=mysql://root:%s@127.0.0.1:%s/%s" % (
            E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], db)]
        if batch:
            a += ["-X", "mysql_sink.batch_rows=%d" % batch]
    else:
        a += ["--sink", "postgres", "-X", "postgres_sink.dsn=" + dsn(db)]
        if batch:
            a += ["-X", "postgres_sink.batch_rows=%d" % batch]
    errf = open(os.path.join(TMP, pipe + ".log"), "ab")
    p = subprocess.Popen(a, stdout=errf, stderr=errf)
    PROCS.append(p)
    return (p, pipe)


def wait(*ps):
    for p, pipe in ps:
        try:
            rc = p.wait(timeout=180)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = "timeout"
        if rc != 0:
            fail("%s exited %s; log:\n%s" % (pipe, rc, open(os.path.join(TMP, pipe + ".log")).read()[-3000:]))


def steps(sink, db, plan):
    """plan: list of groups run one after the other; a group is a list of
    (source, pipeline, batch) run concurrently"""
    for group in plan:
        wait(*[start(s, "%s_%s" % (n, db), sink, db, b) for s, n, b in group])


def read(sink, db):
    if sink == "pg":
        out = pg("SELECT k, x, y, z, p, _provenance::text FROM tomb_w_provenance() ORDER BY k", db)
        tomb = pg("SELECT k FROM tomb_w_tombstones ORDER BY k", db)
        tprov = pg("SELECT _provenance::text FROM tomb_w_tombstones", db)
        null = ""
    else:
        out = my("SELECT k, IFNULL(x, '\\\\N'), IFNULL(y, '\\\\N'), IFNULL(z, '\\\\N'), IFNULL(p, '\\\\N'), "
                 "_provenance FROM tomb_w ORDER BY k", db)
        tomb = my("SELECT k FROM tomb_w_tombstones ORDER BY k", db)
        tprov = my("SELECT _provenance FROM tomb_w_tombstones", db)
        null = "\\N"
    sep = "\x1f" if sink == "pg" else "\t"
    rows = {}
    for line in out.split("\n"):
        if not line:
            continue
        f = line.split(sep)
        rows[int(f[0])] = ({c: (None if v == null else v) for c, v in zip(FIELDS, f[1:5])}, json.loads(f[5]))
    for line in tprov.split("\n"):
        if line and not all(e.get("d") == 1 for e in json.loads(line).values()):
            fail("%s %s: a tombstone holds a live entry: %s" % (sink, db, line))
    return rows, [int(x) for x in tomb.split()]


def check(sink, db):
    rows, tomb = read(sink, db)
    if sorted(rows) != sorted(EXPECT):
        fail("%s %s: visible keys %s, expected %s" % (sink, db, sorted(rows), sorted(EXPECT)))
    if tomb != DEAD:
        fail("%s %s: tombstones %s, expected dead keys %s" % (sink, db, tomb, DEAD))
    for k, exp in EXPECT.items():
        vals, prov = rows[k]
        for f in FIELDS:
            e = exp.get(f)
            got = prov.get(f)
            if e is None:
                if got is not None or vals[f] is not None:
                    fail("%s %s: key %d field %s: expected nothing, got %r %r" % (sink, db, k, f, vals[f], got))
                continue
            g = (vals[f], got and got.get("s"), got and int(got.get("t")), bool(got and got.get("d") == 1))
            if g != e:
                fail("%s %s: key %d field %s: got %r, expected %r (provenance %s)" % (sink, db, k, f, g, e, got))
    return {k: (v, {f: (e.get("s"), int(e.get("t")), e.get("r"), e.get("d")) for f, e in p.items()})
            for k, (v, p) in rows.items()}


results = []
log("pg run 1: a then b")
steps("postgres", PGW[0], [[("a", "a1", None)], [("b", "b1", None)]])
results.append(("pg1", check("pg", PGW[0])))
log("pg run 2: b (batches of 1) then a (batches of 2), then both replayed (every change twice)")
steps("postgres", PGW[1], [[("b", "b2", 1)], [("a", "a2", 2)], [("a", "a2r", 3)], [("b", "b2r", 5)]])
results.append(("pg2", check("pg", PGW[1])))
log("pg run 3: a and b at once (batches of 3), then a replay of a while b replays too")
steps("postgres", PGW[2], [[("a", "a3", 3), ("b", "b3", 3)], [("a", "a3r", 1), ("b", "b3r", 4)]])
results.append(("pg3", check("pg", PGW[2])))
log("mysql run 1: b then a, then a replayed")
steps("mysql", MYW[0], [[("b", "b4", None)], [("a", "a4", None)], [("a", "a4r", 2)]])
results.append(("my1", check("mysql", MYW[0])))
log("mysql run 2: a and b at once (batches of 2), then b replayed")
steps("mysql", MYW[1], [[("a", "a5", 2), ("b", "b5", 2)], [("b", "b5r", 1)]])
results.append(("my2", check("mysql", MYW[1])))

ref = results[0][1]
for name, r in results[1:]:
    if r != ref:
        for k in sorted(set(r) | set(ref)):
            if r.get(k) != ref.get(k):
                fail("%s differs from pg1 at key %s: %r vs %r" % (name, k, r.get(k), ref.get(k)))
log("all %d runs equal the expectation, ranks included" % len(results))
cleanup()
print("PASS")
