#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""RabbitMQ: a fragment with no changes keeps the Debezium numbering right.

With debezium.provide.transaction.metadata the "transaction" blocks are
numbered across the fragments of a transaction (cdc_dbz_txs_*).  A
fragment can hold no change: the last one of a transaction whose last
rows event filled a fragment (the commit then hands out an empty one), or
one whose rows all belong to tables the pipeline leaves out (--include).
Such a fragment still starts or continues its transaction's numbering, as
in the Kafka, file, HTTP and MQTT sinks.  Here:

  T1  120 rows into a, one rows event: fragment 0 (120 changes), then
      an empty fragment 1 at the commit;
  T2  120 rows into x (not included: fragment 0 filtered to nothing),
      then 5 rows into a (fragment 1).

Every change of T2 must carry T2's own transaction id (not T1's) and
total_order / data_collection_order 1..5 (not going on from T1's 120).
Exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import subprocess
import tempfile

import dblib
from dblib import BIN, E, fail, log, my

dblib.need("MYSQL_PORT", "RMQ_URL", what="MariaDB and RabbitMQ")
FRAG = 100
ID = "%d" % os.getpid()
DB = "rdf_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-rmq-dbz-frag.")
PROCS = []


def cleanup():
    dblib.cleanup(PROCS, TMP, my_dbs=[DB])


dblib.on_fail(cleanup, logdir=TMP)
DSN = "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"])

my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s" % (DB, DB))
for t in ("a", "x"):
    my("CREATE TABLE %s.%s (id INT PRIMARY KEY, v INT NOT NULL)" % (DB, t))
f0, p0 = my("SHOW MASTER STATUS").split()[:2]
my("BEGIN; INSERT INTO %s.a SELECT seq, 1 FROM %s.seq_1_to_120; COMMIT" % (DB, DB))
my("BEGIN; INSERT INTO %s.x SELECT seq, 1 FROM %s.seq_1_to_120; "
   "INSERT INTO %s.a SELECT 1000 + seq, 2 FROM %s.seq_1_to_5; COMMIT" % (DB, DB, DB, DB))

prog = os.path.join(dblib.BUILD, "tests/integ/amqp_consume")
if not os.access(prog, os.X_OK):
    fail("%s missing (make -C %s integ-helpers)" % (prog, dblib.BUILD))
rq = "rdf%s" % ID
r = subprocess.run([prog, E["RMQ_URL"], rq, rq, "#", "declare"], capture_output=True, text=True)
if r.returncode:
    fail("amqp_consume declare %s: %s" % (rq, r.stderr))
app = "rdf%s" % ID
logf = open(os.path.join(TMP, "run.log"), "ab")
p = subprocess.Popen([BIN, "--source", "mysql", "--mysql-dsn", DSN, "--include", DB + ".a",
                      "--from", "%s:%s" % (f0, p0), "--pipeline", app, "--application-id", app,
                      "--state-dir", os.path.join(TMP, "state"), "--idle-exit", "3000",
                      "-X", "mysql.server_id=%d" % (9900 + int(ID) % 90),
                      "--sink", "rabbitmq", "-X", "rabbitmq.url=" + E["RMQ_URL"],
                      "-X", "rabbitmq.exchange=" + rq, "--format", "debezium",
                      "-X", "debezium.provide.transaction.metadata=true",
                      "-X", "pipeline.fragment_rows=%d" % FRAG], stdout=logf, stderr=logf)
PROCS.append(p)
rc = p.wait(timeout=300)
if rc != 0:
    fail("the run exited %d (log %s)" % (rc, logf.name))
r = subprocess.run([prog, E["RMQ_URL"], rq, rq, "#", "drain", "3000"], capture_output=True, text=True)
if r.returncode:
    fail("amqp_consume drain %s: %s" % (rq, r.stderr))
envs = [json.loads(json.loads(l)["body"]) for l in r.stdout.splitlines() if l.strip()]
t1, t2 = {}, {}
for e in envs:
    after = e.get("after") or {}
    tb = e.get("transaction")
    if tb is None:
        fail("an envelope without a transaction block: %s" % json.dumps(e)[:300])
    k = int(after["id"])
    (t2 if k > 1000 else t1)[k] = (tb["id"], tb["total_order"], tb["data_collection_order"])
if sorted(t1) != list(range(1, 121)) or sorted(t2) != list(range(1001, 1006)):
    fail("changes delivered: T1 %d of 120, T2 %s of 1001..1005" % (len(t1), sorted(t2)))
ids1 = set(v[0] for v in t1.values())
if len(ids1) != 1:
    fail("T1 carries several transaction ids: %s" % sorted(ids1))
for k, (tid, tot, dco) in sorted(t2.items()):
    if tid in ids1:
        fail("T2's change %d carries T1's transaction id %s (numbering went on across transactions)"
             % (k, tid))
    if (tot, dco) != (k - 1000, k - 1000):
        fail("T2's change %d: total_order %d, data_collection_order %d, want %d and %d"
             % (k, tot, dco, k - 1000, k - 1000))
log("PASS: T2 numbered on its own (%s, 1..5) after T1's empty last fragment and its own "
    "filtered first fragment" % t2[1001][0])
cleanup()
