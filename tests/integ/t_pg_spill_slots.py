#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Spill files of the PostgreSQL source belong to one slot.

A backfill's window readers run as the same pipeline as the stream, each
on a slot of its own, and every reader deletes at its start the spill
files an earlier run left.  The files are <pipeline>.spill.<slot>.<xid>:
a reader deletes the stale files of its own slot and never those of
another reader (which it would otherwise also overwrite when both spill
the same transaction).

The pipeline starts with a stale file of its own slot and a file of
another slot in its state directory, streams one row and stops at idle:
the row arrives, the stale file of its slot is gone (and the log names
it), the other slot's file is untouched (same bytes).
Exit 0 pass, 1 fail, 77 skip.
"""
import os
import tempfile

import dblib
from dblib import BIN, fail, log, pg

dblib.need("PGPORT", what="PostgreSQL")

ID = "%d" % os.getpid()
DB = "spsl_" + ID
SLOT = "spsl_" + ID
OTHER = "spsl_other_" + ID
PIPE = "spsl"
TMP = tempfile.mkdtemp(prefix="cdc-spill-slots.")
STATE = os.path.join(TMP, "state")
PROCS = []


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[DB], slots=[SLOT])


dblib.on_fail(cleanup, logdir=TMP)
pg("CREATE DATABASE %s" % DB, "postgres", superuser=True)
pg("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)", DB, superuser=True)
pg("CREATE PUBLICATION pub_%s FOR ALL TABLES" % ID, DB, superuser=True)
dblib.pg_slot(DB, SLOT)

os.makedirs(STATE)
mine = os.path.join(STATE, "%s.spill.%s.999" % (PIPE, SLOT))
theirs = os.path.join(STATE, "%s.spill.%s.999" % (PIPE, OTHER))
for path, body in ((mine, b"stale"), (theirs, b"another reader's spill")):
    with open(path, "wb") as f:
        f.write(body)

pg("INSERT INTO t VALUES (1, 'one')", DB, superuser=True)
out = os.path.join(TMP, "out.jsonl")
rc, logtxt = dblib.run_exit(
    [BIN, "--source", "postgres", "--postgres-dsn", dblib.pg_dsn(DB, superuser=True),
     "-X", "postgres.slot=" + SLOT, "-X", "postgres.publication=pub_" + ID,
     "--pipeline", PIPE, "--state-dir", STATE, "--sink", "file", "-o", out,
     "--idle-exit", "3000"],
    os.path.join(TMP, "run.log"), PROCS)
if rc != 0:
    fail("the pipeline exited %d, want 0:\n%s" % (rc, logtxt[-2000:]))
if '"one"' not in open(out).read():
    fail("the row did not arrive in %s" % out)
if os.path.exists(mine):
    fail("the stale spill file of the pipeline's own slot is still there: %s" % mine)
if mine not in logtxt:
    fail("the log does not name the stale spill file it removed (%s)" % mine)
if not os.path.exists(theirs):
    fail("the spill file of another slot was deleted: %s" % theirs)
if open(theirs, "rb").read() != b"another reader's spill":
    fail("the spill file of another slot was changed: %s" % theirs)
log("own stale spill file removed, another slot's kept")
cleanup()
