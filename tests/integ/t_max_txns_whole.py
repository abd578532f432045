#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""--max-txns counts whole transactions, not fragments (MariaDB source).

Three transactions are written before the run: A (one row), B (an UPDATE
of every row of a table, queued in many fragments with
pipeline.fragment_rows), C (one row).  From the start of B:

  run 1  --max-txns 1: exits 0 with every row change of B in the file
         sink exactly once (ids 1..n, each with its new value v = 2), none
         of C; the checkpoint is at the end of B (at or after the binlog
         position read right after B, before the one after C).
  run 2  the same state, --max-txns 1: delivers exactly C (one change,
         its value), no change of B again (the run resumed after B, not
         inside it).

A build that counts each fragment stops run 1 after the first fragment
(fewer than n changes), and its run 2 starts inside B.  Exit 0 pass, 1
fail, 77 skip.
"""
import os
import tempfile

import dblib
from bigtxn_lib import envelopes
from dblib import BIN, E, fail, log, my

dblib.need("MYSQL_PORT", what="MariaDB")

SEED = dblib.test_seed()
# rows of B: several fragments of FRAG rows and a partial last one
FRAG = 500
N = FRAG * (8 + SEED % 5) + 1 + SEED % (FRAG - 1)
ID = "%d" % os.getpid()
DB = "maxtx_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-maxtx.")
PROCS = []


def cleanup():
    dblib.cleanup(PROCS, TMP, my_dbs=[DB])


dblib.on_fail(cleanup, logdir=TMP)
my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s" % (DB, DB))
DSN = "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"])


def binlog_pos():
    f, p = my("SHOW MASTER STATUS").split()[:2]
    return f, int(p)


def read_ckpt():
    out = {}
    path = os.path.join(TMP, "state", "mx.ckpt")
    for line in open(path):
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            out[k] = v
    return out.get("file", ""), int(out.get("offset", "0"))


my("CREATE TABLE %s.big (id INT PRIMARY KEY, v BIGINT NOT NULL, pad VARCHAR(80));"
   "INSERT INTO %s.big SELECT seq, 1, REPEAT('p', 60) FROM %s.seq_1_to_%d;"
   "CREATE TABLE %s.side (id INT PRIMARY KEY, v INT NOT NULL)" % (DB, DB, DB, N, DB))
f0, p0 = binlog_pos()
my("UPDATE %s.big SET v = 2" % DB)                      # B
f1, p1 = binlog_pos()
my("INSERT INTO %s.side VALUES (1, %d)" % (DB, 7 + SEED % 100))  # C
f2, p2 = binlog_pos()
side_v = 7 + SEED % 100


def run(out, logname):
    args = [BIN, "--source", "mysql", "--mysql-dsn", DSN, "--include", DB + ".*",
            "--pipeline", "mx", "--state-dir", os.path.join(TMP, "state"),
            "--from", "%s:%d" % (f0, p0), "--sink", "file", "-o", out, "--max-txns", "1",
            "-X", "pipeline.fragment_rows=%d" % FRAG,
            "-X", "mysql.server_id=%d" % (9900 + int(ID) % 90)]
    rc, text = dblib.run_exit(args, os.path.join(TMP, logname), PROCS)
    if rc != 0:
        fail("%s exited %d, 0 expected:\n%s" % (logname, rc, text[-2000:]))
    return list(envelopes(open(out)))


# run 1: the whole of B, then the checkpoint after it
got = run(os.path.join(TMP, "run1.jsonl"), "run1.log")
seen = {}
for ident, env in got:
    tbl = env["source"].get("table")
    if tbl != "big":
        fail("run 1 (--max-txns 1) delivered a change of %s: only transaction B expected" % tbl)
    if ident in seen:
        fail("run 1: change %s delivered twice" % (ident,))
    a = env["payload"]["after"] if "payload" in env else env["after"]
    seen[ident] = (a["id"], a["v"])
ids = sorted(i for i, _ in seen.values())
if ids != list(range(1, N + 1)) or any(v != 2 for _, v in seen.values()):
    fail("run 1 (--max-txns 1, %d-row transaction in fragments of %d): %d changes delivered; "
         "ids 1..%d each once with v = 2 expected (the whole transaction)" % (N, FRAG, len(seen), N))
ck = read_ckpt()
if not ((f1, p1) <= ck < (f2, p2)):
    fail("run 1: checkpoint %s:%d, expected the end of B (%s:%d up to before %s:%d)" % (ck + (f1, p1, f2, p2)))

# run 2: resumes after B: exactly C
got = run(os.path.join(TMP, "run2.jsonl"), "run2.log")
rows = []
for ident, env in got:
    a = env["payload"]["after"] if "payload" in env else env["after"]
    rows.append((env["source"].get("table"), a["id"], a["v"]))
if rows != [("side", 1, side_v)]:
    fail("run 2: delivered %s, exactly [('side', 1, %d)] expected (resume after B)" % (rows[:5], side_v))
ck = read_ckpt()
if ck < (f2, p2):
    fail("run 2: checkpoint %s:%d before the end of C %s:%d" % (ck + (f2, p2)))
log("ok: --max-txns 1 delivered the whole %d-row transaction (fragments of %d rows), then resumed after it"
    % (N, FRAG))
cleanup()
print("PASS")
