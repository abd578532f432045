#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`reconcile` in key partitions (--partitions N, reconcile.max_memory_mb;
docs/MAPPINGS.md, Reconcile: memory).

Two MariaDB sources write one wide table of ROWS keys (source a: items,
every key; source b: extras, every third key, a field both own by
priority).  No stream runs: the wide table starts empty (created as the
sink creates it), so

  * reconcile --repair with reconcile.max_memory_mb small enough to need
    several partitions (the log names how many) fills it: every row equals
    what the test computes from the rows it wrote, and a reconcile in one
    partition finds no drift;
  * injected drift (two altered fields, a deleted row, a stray row) is
    found exactly, and the output of one partition, of --partitions 4 and
    of the memory cap is the same, byte for byte (the same rows counted,
    the same lines in the same order);
  * the peak RSS of the run in 4 partitions is well below the run in one
    (the recomputation of a quarter of the keys at a time);
  * --repair --partitions 4 repairs it, and one partition then finds no
    drift.
Seed: CDC_TEST_SEED.
"""
import os
import random
import re
import subprocess
import tempfile
import threading
import time

import dblib
from dblib import BIN, E, fail, log, my, pg

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

SEED = dblib.test_seed()
rnd = random.Random(SEED)
ID = "%d" % os.getpid()
MDB = "rcpt_" + ID
PDB = "rcptp_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-reconcile-pt-")
ROWS = 20000
CAP_MB = 8


def cleanup():
    dblib.cleanup([], TMP, pg_dbs=[PDB], my_dbs=[MDB])


dblib.on_fail(cleanup, logdir=TMP)

MAPF = os.path.join(TMP, "map.yaml")
open(MAPF, "w").write("""sources: {a: {priority: 1}, b: {priority: 2}}
targets:
  w:
    table: public.pt_w
    key: k
    fields:
      k: bigint
      name: {type: text, owner: a}
      n: {type: bigint, owner: a}
      amt: {type: 'numeric(10,2)', owner: a}
      note: {type: text, owners: [a, b], rule: priority}
      score: {type: bigint, owner: b}
mappings:
  - {source: a, table: %s.items, target: w, key: {k: id}, fields: {name: v, n: n, amt: amt, note: note}}
  - {source: b, table: %s.extras, target: w, key: {k: id}, fields: {note: note, score: score}}
""" % (MDB, MDB))
PF = {}
for s in "ab":
    PF[s] = os.path.join(TMP, s + ".yaml")
    open(PF[s], "w").write("""application_id: %s
pipeline: {name: rcpt%s_%s}
source: {type: mysql}
mysql: {dsn: "mysql://root:%s@127.0.0.1:%s"}
sink: {type: postgres}
postgres_sink: {dsn: "%s"}
mapping: {files: "%s"}
state: {dir: "%s"}
""" % (s, ID, s, E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], dblib.pg_dsn(PDB), MAPF, os.path.join(TMP, "state")))

# the rows, from a seeded generator: the test's own expectation
M1, M2, M3 = rnd.randint(3, 97), rnd.randint(101, 997), rnd.randint(7, 89)
my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; USE %s; "
   "CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(40), n BIGINT, amt DECIMAL(10,2), note VARCHAR(40)); "
   "CREATE TABLE extras (id INT PRIMARY KEY, note VARCHAR(40), score BIGINT); "
   "INSERT INTO items SELECT seq, CONCAT('name-', seq * %d %% 1000), seq * %d, (seq %% 1000) / 100, "
   "CONCAT('a', seq %% 7) FROM seq_1_to_%d; "
   "INSERT INTO extras SELECT seq, CONCAT('b', seq %% 11), seq %% %d FROM seq_1_to_%d WHERE seq %% 3 = 0; "
   "ANALYZE TABLE items, extras;" % (MDB, MDB, MDB, M1, M2, ROWS, M3, ROWS))


def expect():
    exp = {}
    for i in range(1, ROWS + 1):
        amt = "%.2f" % ((i % 1000) / 100)
        note = "b%d" % (i % 11) if i % 3 == 0 else "a%d" % (i % 7)
        score = str(i % M3) if i % 3 == 0 else None
        exp[i] = ("name-%d" % (i * M1 % 1000), str(i * M2), amt, note, score)
    return exp


EXP = expect()
pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
pg("CREATE TABLE pt_w (k bigint PRIMARY KEY, name text, n bigint, amt numeric(10,2), note text, score bigint, "
   "_provenance jsonb NOT NULL DEFAULT '{}')", PDB)


def reconcile(*extra):
    """Run reconcile; (exit code, stdout, stderr, peak RSS in KB).  The
    peak is the process's VmHWM, read while it runs (exec resets it, so it
    is reconcile's own; the rusage of a child forked from this test would
    count the test's memory too)."""
    a = [BIN, "reconcile", "-c", PF["a"], "--target", "w"] + list(extra) + [PF["b"]]
    p = subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    hwm = [0]

    def watch():
        while p.poll() is None:
            try:
                with open("/proc/%d/status" % p.pid) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            hwm[0] = max(hwm[0], int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(0.01)
    th = threading.Thread(target=watch)
    th.start()
    out, err = p.communicate(timeout=600)
    th.join()
    out, err = out.decode(), err.decode()
    with open(os.path.join(TMP, "reconcile.log"), "a") as lf:
        lf.write("$ %s\n%s" % (" ".join(a), err))
    log("reconcile %s -> %d: %d lines, peak RSS %d KB" % (" ".join(extra), p.returncode, len(out.splitlines()),
                                                          hwm[0]))
    return p.returncode, out, err, hwm[0]


def table():
    out = {}
    for line in pg("SELECT k, coalesce(name, '\\N'), coalesce(n::text, '\\N'), coalesce(amt::text, '\\N'), "
                   "coalesce(note, '\\N'), coalesce(score::text, '\\N') FROM pt_w", PDB).splitlines():
        f = line.split("\t")
        out[int(f[0])] = tuple(None if x == "\\N" else x for x in f[1:])
    return out


def same_table(what):
    got = table()
    if got != EXP:
        bad = [(k, got.get(k), EXP.get(k)) for k in sorted(set(got) | set(EXP)) if got.get(k) != EXP.get(k)]
        fail("%s: %d rows differ from the sources, e.g. %s" % (what, len(bad), bad[:5]))


CAP = ["-X", "reconcile.max_memory_mb=%d" % CAP_MB]

# the memory cap picks the partitions from the estimated row counts
rc, out, err, _ = reconcile("--repair", *CAP)
m = re.search(r"(\d+) partitions for reconcile.max_memory_mb %d" % CAP_MB, err)
if rc != 0 or "repaired" not in out or not m or int(m.group(1)) < 2:
    fail("--repair under reconcile.max_memory_mb=%d: exit %d (want 0, repaired, several partitions):\n%s\n%s"
         % (CAP_MB, rc, out[-400:], err[-800:]))
log("the cap picked %s partitions" % m.group(1))
if len(re.findall(r"reading %s\.items of source a \(partition \d+ of %s\)" % (MDB, m.group(1)), err)) != \
        int(m.group(1)):
    fail("under the cap each partition must read the sources again:\n%s" % err[-800:])
same_table("after --repair in partitions")
rc, out, _, _ = reconcile()
if rc != 0 or "no drift" not in out:
    fail("one partition after the repair: exit %d, want 0 and no drift:\n%s" % (rc, out))

# drift: two fields, a row deleted, a stray row
k_upd, k_num, k_del = rnd.sample([k for k in EXP if k % 3 == 0], 3)
STRAY = ROWS + rnd.randint(1, 999)
pg("UPDATE pt_w SET name = 'drift!' WHERE k = %d; UPDATE pt_w SET score = score + 1000 WHERE k = %d; "
   "DELETE FROM pt_w WHERE k = %d; INSERT INTO pt_w (k, name) VALUES (%d, 'stray')"
   % (k_upd, k_num, k_del, STRAY), PDB)
rc1, out1, _, rss1 = reconcile()
rc4, out4, _, rss4 = reconcile("--partitions", "4")
rcc, outc, _, _ = reconcile(*CAP)
found = sorted(re.findall(r"^(missing|extra|differs) k=(\d+)( \w+)?", out1, re.M))
want = sorted([("differs", str(k_upd), " name"), ("differs", str(k_num), " score"), ("missing", str(k_del), ""),
               ("extra", str(STRAY), "")])
if rc1 != 1 or found != want or ("%d rows recomputed" % ROWS) not in out1:
    fail("one partition: exit %d, found %s, want exit 1 and %s over %d rows:\n%s" % (rc1, found, want, ROWS, out1))
if (rc4, out4) != (rc1, out1):
    fail("--partitions 4 differs from one partition (exit %d):\n%s\n--- one partition:\n%s" % (rc4, out4, out1))
if (rcc, outc) != (rc1, out1):
    fail("the memory cap's partitions differ from one partition (exit %d):\n%s\n--- one partition:\n%s"
         % (rcc, outc, out1))
log("peak RSS: one partition %d KB, four %d KB (%.2f)" % (rss1, rss4, rss4 / rss1))
if rss4 > 0.6 * rss1:
    fail("four partitions peaked at %d KB, one at %d KB: want well below (at most 0.6)" % (rss4, rss1))

rc, out, _, _ = reconcile("--repair", "--partitions", "4")
if rc != 0 or "repaired" not in out:
    fail("--repair --partitions 4: exit %d (want 0, repaired):\n%s" % (rc, out))
same_table("after --repair --partitions 4")
rc, out, _, _ = reconcile()
if rc != 0 or "no drift" not in out:
    fail("after --repair --partitions 4: exit %d, want 0 and no drift:\n%s" % (rc, out))
cleanup()
print("ok - reconcile in key partitions (--partitions, reconcile.max_memory_mb) finds the same drift as in one, "
      "repairs it, and holds less in memory")
