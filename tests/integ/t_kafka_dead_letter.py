#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""errors.mode: dead-letter for the Kafka sink (issue 12, item 3).

MariaDB -> Kafka.  The topic of the source table is created with
max.message.bytes=2000, so the broker refuses for good one change of a
multi-row transaction: a row with an incompressible value of random size
(8-40k characters).  With errors.mode=dead-letter (and
kafka.batch.num.messages=1: the broker refuses a whole batch):

  - the run exits 0; every other change is on the table's topic, in order,
    and the refused one is not;
  - the dead-letter topic ({source}.dead_letter) holds exactly that change:
    same key, the same envelope (the value compared in full), and headers
    autoglm.error (the broker's reason), autoglm.topic, autoglm.pipeline;
  - /metrics autoglm_cdc_dead_letters_total and `status` show 1 while the
    daemon runs;
  - the checkpoint is past the whole workload.

Env: CDC_KDL_SEED.  Exit 0 pass, 1 fail, 77 skip.
"""
import glob
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
import zlib

import dblib
from dblib import BIN, E, fail, log, my

dblib.need("MYSQL_PORT", "KAFKA_BOOTSTRAP", what="MariaDB and Kafka", tools=("kcat", "java"))

SEED = int(os.environ.get("CDC_KDL_SEED") or dblib.test_seed())
ID = "%d" % os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-kdl-")
PROCS = []
DB = "kdl_%s" % ID
APP = "kdl%sx%d" % (ID, int(time.time()))
TOPIC = "%s.%s.items" % (APP, DB)
DLT = APP + ".dead_letter"
BOOT = E["KAFKA_BOOTSTRAP"]


def cleanup():
    dblib.cleanup(PROCS, TMP, my_dbs=[DB])


dblib.on_fail(cleanup, logdir=TMP)
log("seed %d" % SEED)
rnd = random.Random(SEED)

jars = os.environ.get("CDC_KAFKA_JARS") or sorted(glob.glob(os.path.expanduser(
    "~/.cache/autoglm-cdc/kafka-*")))[-1:]
jars = jars if isinstance(jars, str) else (jars[0] if jars else "")
r = subprocess.run(["java", "-cp", jars + "/*", "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", BOOT,
                    "--create", "--topic", TOPIC, "--partitions", "1", "--replication-factor", "1",
                    "--config", "max.message.bytes=2000"], capture_output=True, text=True)
if r.returncode:
    fail("creating %s: %s" % (TOPIC, r.stderr[-1500:]))

my("CREATE DATABASE %s; CREATE TABLE %s.items (id INT PRIMARY KEY, v LONGTEXT)" % (DB, DB))
ms = my("SHOW MASTER STATUS").split()
START = "%s:%s" % (ms[0], ms[1])
rows = []  # (id, v) in commit order
n = rnd.randint(3, 8)
bad_at = rnd.randint(1, n - 2)
big = "".join("%08x" % rnd.getrandbits(32) for _ in range(rnd.randint(1000, 5000)))
stmts = []
for i in range(n):
    v = big if i == bad_at else "r%d" % i
    rows.append((i + 1, v))
    stmts.append("INSERT INTO %s.items VALUES (%d, '%s');" % (DB, i + 1, v))
my("START TRANSACTION; %s COMMIT;" % " ".join(stmts))
for i in range(n, n + rnd.randint(1, 4)):
    rows.append((i + 1, "r%d" % i))
    my("INSERT INTO %s.items VALUES (%d, 'r%d')" % (DB, i + 1, i))
ms = my("SHOW MASTER STATUS").split()
END = (ms[0], int(ms[1]))

port = dblib.free_port()
args = [BIN, "--pipeline", APP, "--state-dir", os.path.join(TMP, "state"), "--idle-exit", "6000",
        "--source", "mysql", "--mysql-dsn", "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"],
                                                                          E["MYSQL_PORT"]),
        "--from", START, "--include", DB + ".*", "-X", "mysql.server_id=%d" % (7000 + zlib.crc32(APP.encode()) % 50000),
        "--sink", "kafka", "--kafka-brokers", BOOT, "-X", "errors.mode=dead-letter",
        # the broker refuses whole batches: one message per batch, so only
        # the refused change is a dead letter (docs/OPERATIONS.md)
        "-X", "kafka.batch.num.messages=1",
        "--http", "127.0.0.1:%d" % port]
logf = open(os.path.join(TMP, "run.log"), "ab")
p = subprocess.Popen(args, stdout=logf, stderr=logf)
PROCS.append(p)
metric = dblib.wait_metric(port, "autoglm_cdc_dead_letters_total", 1, p, timeout=90)
if metric != 1:
    fail("autoglm_cdc_dead_letters_total is %s, want 1" % metric)
st = subprocess.run([BIN, "status", "--url", "http://127.0.0.1:%d" % port, "-X", "status.format=json"],
                    capture_output=True, text=True)
try:
    dl = json.loads(st.stdout)[0]["dead_letters"]
except (ValueError, IndexError, KeyError):
    dl = None
if dl != 1:
    fail("status shows %s dead letters, want 1: %s %s" % (dl, st.stdout, st.stderr))
rc = p.wait(timeout=90)
if rc != 0:
    fail("the run exited %d" % rc)


def consume(topic, want):
    r = subprocess.run(["kcat", "-C", "-b", BOOT, "-t", topic, "-o", "beginning", "-e", "-q", "-J", "-m", "30",
                        "-c", str(want + 5)], capture_output=True, text=True)
    if r.returncode:
        fail("kcat %s: %s" % (topic, r.stderr))
    return [json.loads(x) for x in r.stdout.splitlines()]


good = [(k, v) for k, v in rows if v != big]
msgs = consume(TOPIC, len(good))
got = [(json.loads(m["key"])["id"], json.loads(m["payload"])["payload"]["after"]["v"]) for m in msgs]
if got != good:
    fail("topic %s holds %s, want the good changes %s" % (TOPIC, got[:20], good[:20]))
dmsgs = consume(DLT, 1)
if len(dmsgs) != 1:
    fail("dead-letter topic %s holds %d messages, want 1" % (DLT, len(dmsgs)))
d = dmsgs[0]
h = d.get("headers") or []
hd = dict(zip(h[0::2], h[1::2]))
env = json.loads(d["payload"])
if json.loads(d["key"]) != {"id": bad_at + 1} or env["payload"]["after"] != {"id": bad_at + 1, "v": big}:
    fail("the dead letter is not the refused change: key %s, after %.200s" % (d["key"], env["payload"]["after"]))
if hd.get("autoglm.topic") != TOPIC or hd.get("autoglm.pipeline") != APP or "too large" not in hd.get(
        "autoglm.error", ""):
    fail("dead-letter headers: %s" % hd)
ck = dict(ln.rstrip("\n").split("=", 1) for ln in open(os.path.join(TMP, "state", APP + ".ckpt")) if "=" in ln)
if ck.get("file") != END[0] or int(ck.get("offset", 0)) != END[1]:
    fail("checkpoint %s:%s, the workload ends at %s:%d" % (ck.get("file"), ck.get("offset"), END[0], END[1]))
log("%d changes: %d on %s, the %d-byte one on %s (%s); metric and status 1; checkpoint at the end"
    % (len(rows), len(good), TOPIC, len(big), DLT, hd["autoglm.error"]))
cleanup()
print("PASS")
