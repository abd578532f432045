#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MariaDB -> autoglm-cdc -> real RabbitMQ (tests/services.sh up mariadb
rabbitmq); a durable queue bound with '#' is read back by amqp_consume.

  1. fidelity: every change arrives once, in order per key, with the values
     SELECT shows; routing key {db}.{table}.{op}, persistent, app_id,
     headers op/db/table/position, one data-updated event per transaction
  2. kill -9 during a workload, several times, then catch up: nothing lost,
     duplicates only after the checkpoint of some kill (the unconfirmed
     window)
  3. bad password: exit 78 naming rabbitmq.password
  4. no queue for the routing key: exit 65 naming the routing key;
     rabbitmq.unroutable=drop: exit 0
"""
import json
import os
import subprocess
import tempfile

import dblib
import sinklib
from dblib import E, fail, log

dblib.need("MYSQL_PORT", "RMQ_URL", what="MariaDB and RabbitMQ")
CONSUME = sinklib.amqp_consume()

PID = os.getpid()
DB = "rmq_%d" % PID
EX = "cdc_test_%d" % PID
Q = "q_%d" % PID
TMP = tempfile.mkdtemp(prefix="cdc-rmq.")
procs = []
dblib.on_fail(lambda: dblib.cleanup(procs, TMP, my_dbs=[DB]), logdir=TMP)


def consume(q=Q, bind="#", idle=1500):
    r = subprocess.run([CONSUME, E["RMQ_URL"], EX, q, bind, "drain", str(idle)],
                       capture_output=True, text=True)
    if r.returncode:
        fail("amqp_consume: %s" % r.stderr.strip())
    return sinklib.parse_lines(r.stdout)


def declare(q=Q, bind="#"):
    r = subprocess.run([CONSUME, E["RMQ_URL"], EX, q, bind, "declare"], capture_output=True,
                       text=True)
    if r.returncode:
        fail("amqp_consume declare: %s" % r.stderr.strip())


def run_cdc(w, name, extra=(), idle=2500, logname="cdc.log"):
    cmd = sinklib.cdc_cmd(w, name, os.path.join(TMP, "state"),
                          ["--sink", "rabbitmq", "-X", "rabbitmq.url=" + E["RMQ_URL"],
                           "-X", "rabbitmq.exchange=" + EX] + list(extra))
    with open(os.path.join(TMP, logname), "ab") as lf:
        return subprocess.run(cmd + ["--idle-exit", str(idle)], stdout=lf, stderr=lf,
                              timeout=120).returncode


# ---- 1. fidelity --------------------------------------------------------
w = sinklib.Workload(DB)
declare()
w.run(1500)
rc = run_cdc(w, "rmq1", ["-X", "rabbitmq.event=true"])
if rc != 0:
    fail("autoglm-cdc exited %d" % rc)
msgs = consume()
events = [m for m in msgs if m["type"] == "data-updated"]
changes = [m for m in msgs if m["type"] != "data-updated"]
envs = [json.loads(m["body"]) for m in changes]
if sinklib.check(envs, w, "rabbitmq") != 0:
    fail("a clean run delivered duplicates")
for m, e in zip(changes, envs):
    op = {"c": "insert", "u": "update", "d": "delete"}[e["payload"]["op"]]
    cid = sinklib.change_id(e)
    want_h = {"op": op, "db": DB, "table": "kt", "position": cid}
    if m["rk"] != "%s.kt.%s" % (DB, op) or m["headers"] != want_h or m["id"] != cid \
            or m["app"] != "rmq1" or m["persistent"] != 1:
        fail("message properties wrong: %s (want rk %s.kt.%s, headers %s)" % (
            {k: m[k] for k in ("rk", "headers", "id", "app", "persistent")}, DB, op, want_h))
ntx = len({(e["source"]["file"], e["source"].get("gtid")) for e in envs})
if len(events) != ntx:
    fail("%d data-updated events for %d transactions" % (len(events), ntx))
ev = json.loads(events[0]["body"])
if ev["event"] != "data-updated" or ev["tables"] != ["%s.kt" % DB] or events[0]["rk"] != \
        "event.data-updated":
    fail("data-updated event wrong: %s" % events[0])
log("fidelity: %d messages, %d events, headers and routing keys right" % (len(changes),
                                                                           len(events)))

# ---- 2. kill -9 during a workload ---------------------------------------
DB2 = DB + "_k"
dblib.on_fail(lambda: dblib.cleanup(procs, TMP, my_dbs=[DB, DB2]), logdir=TMP)
w2 = sinklib.Workload(DB2, seed=5)
Q2 = Q + "_k"
declare(Q2, DB2 + ".#")
state = os.path.join(TMP, "state")
cmd = sinklib.cdc_cmd(w2, "rmq2", state, ["--sink", "rabbitmq", "-X",
                                          "rabbitmq.url=" + E["RMQ_URL"], "-X",
                                          "rabbitmq.exchange=" + EX])
ckpts = sinklib.kill9_loop(cmd, w2, os.path.join(state, "rmq2.ckpt"),
                           os.path.join(TMP, "kill9.log"), procs)
w2.batch(300)
rc = run_cdc(w2, "rmq2", logname="kill9.log")
if rc != 0:
    fail("catch-up run exited %d" % rc)
envs2 = [json.loads(m["body"]) for m in consume(Q2, DB2 + ".#")]
sinklib.check_kill9(envs2, w2, ckpts, "rabbitmq kill -9")

# ---- 3. bad credentials ---------------------------------------------------
r = subprocess.run([dblib.BIN, "--source", "mysql", "--sink", "rabbitmq", "-X",
                    "rabbitmq.url=amqp://127.0.0.1:%s/" % E["RMQ_PORT"], "-X",
                    "rabbitmq.user=cdc", "-X", "rabbitmq.password=wrong",
                    "--mysql-dsn", "mysql://x:y@127.0.0.1:1", "--state-dir", state],
                   capture_output=True, text=True, timeout=60)
if r.returncode != 78 or "rabbitmq.password" not in r.stderr:
    fail("bad password: exit %d, want 78 naming rabbitmq.password:\n%s" % (r.returncode, r.stderr))
log("bad password: exit 78: %s" % r.stderr.strip().splitlines()[0][:160])

# ---- 4. unroutable --------------------------------------------------------
DB3 = DB + "_u"
dblib.on_fail(lambda: dblib.cleanup(procs, TMP, my_dbs=[DB, DB2, DB3]), logdir=TMP)
w3 = sinklib.Workload(DB3)
w3.run(5)
with open(os.path.join(TMP, "unroutable.log"), "w") as lf3:
    rc = subprocess.run(sinklib.cdc_cmd(w3, "rmq3", state, [
        "--sink", "rabbitmq", "-X", "rabbitmq.url=" + E["RMQ_URL"],
        "-X", "rabbitmq.exchange=" + EX + "_none", "--idle-exit", "2000"]),
        stdout=lf3, stderr=lf3, timeout=60).returncode
text = open(os.path.join(TMP, "unroutable.log")).read()
if rc != 65 or (DB3 + ".kt.insert") not in text:
    fail("unroutable: exit %d, want 65 naming routing key %s.kt.insert" % (rc, DB3))
if os.path.exists(os.path.join(state, "rmq3.ckpt")):
    fail("unroutable: a checkpoint was written past an undelivered change")
with open(os.path.join(TMP, "unroutable.log"), "w") as lf3:
    rc = subprocess.run(sinklib.cdc_cmd(w3, "rmq3", state, [
        "--sink", "rabbitmq", "-X", "rabbitmq.url=" + E["RMQ_URL"], "-X",
        "rabbitmq.unroutable=drop", "-X", "rabbitmq.exchange=" + EX + "_none",
        "--idle-exit", "2000"]), stdout=lf3, stderr=lf3, timeout=60).returncode
if rc != 0 or "dropped unroutable" not in open(os.path.join(TMP, "unroutable.log")).read():
    fail("rabbitmq.unroutable=drop: exit %d, or no 'dropped' warning" % rc)
log("unroutable: exit 65 by default, dropped with a warning under rabbitmq.unroutable=drop")

dblib.cleanup(procs, TMP, my_dbs=[DB, DB2, DB3])
print("PASS")
