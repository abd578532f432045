#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""RabbitMQ stopped for 30 s in the middle of a workload (then started
again: a broker restart), while autoglm-cdc keeps running: it reconnects
with backoff, republishes what was not confirmed, and nothing is lost.
Needs tests/services.sh up mariadb rabbitmq; restarts the test RabbitMQ.
"""
import json
import os
import subprocess
import tempfile
import time

import dblib
import sinklib
from dblib import E, ROOT, fail, log

dblib.need("MYSQL_PORT", "RMQ_URL", what="MariaDB and RabbitMQ")
CONSUME = sinklib.amqp_consume()
DOWN_S = int(os.environ.get("CDC_OUTAGE_S", "30"))
PID = os.getpid()
DB = "rmqo_%d" % PID
EX = "cdc_outage_%d" % PID
Q = "qo_%d" % PID
TMP = tempfile.mkdtemp(prefix="cdc-rmqo.")
procs = []
SVC = os.path.join(ROOT, "tests/services.sh")


def broker(action):
    r = subprocess.run([SVC, action, "rabbitmq"], capture_output=True, text=True)
    if r.returncode:
        fail("services.sh %s rabbitmq: %s" % (action, r.stderr[-400:]))


def cleanup():
    dblib.cleanup(procs, TMP, my_dbs=[DB])
    subprocess.run([SVC, "up", "rabbitmq"], capture_output=True)


dblib.on_fail(cleanup, logdir=TMP)
r = subprocess.run([CONSUME, E["RMQ_URL"], EX, Q, "#", "declare"], capture_output=True, text=True)
if r.returncode:
    fail("amqp_consume declare: %s" % r.stderr)
w = sinklib.Workload(DB)
cmd = sinklib.cdc_cmd(w, "rmqo", os.path.join(TMP, "state"), [
    "--sink", "rabbitmq", "-X", "rabbitmq.url=" + E["RMQ_URL"], "-X", "rabbitmq.exchange=" + EX])
lf = open(os.path.join(TMP, "cdc.log"), "ab")
p = subprocess.Popen(cmd, stdout=lf, stderr=lf)
procs.append(p)
w.batch(1000)
time.sleep(1)
broker("stop")
t_down = time.time()
while time.time() - t_down < DOWN_S:
    w.batch(100)
    time.sleep(0.5)
if p.poll() is not None:
    fail("autoglm-cdc exited (%d) while the broker was down" % p.returncode)
broker("start")
log("broker was down %.0f s" % (time.time() - t_down))
w.batch(1000)
sinklib.wait_log(os.path.join(TMP, "cdc.log"), "republishing")  # backoff is up to 10 s
time.sleep(3)
p.terminate()
p.wait(timeout=60)
if p.returncode != 0:
    fail("autoglm-cdc exited %d after SIGTERM" % p.returncode)
r = subprocess.run(cmd + ["--idle-exit", "2500"], stdout=lf, stderr=lf, timeout=120)
if r.returncode:
    fail("catch-up run exited %d" % r.returncode)
r = subprocess.run([CONSUME, E["RMQ_URL"], EX, Q, "#", "drain", "1500"], capture_output=True,
                   text=True)
envs = [json.loads(m["body"]) for m in sinklib.parse_lines(r.stdout)]
dups = sinklib.check(envs, w, "rabbitmq outage")
text = open(os.path.join(TMP, "cdc.log")).read()
if "republishing" not in text:
    fail("no reconnect was logged")
log("outage %d s: %d changes, nothing lost, %d duplicates" % (DOWN_S, w.changes, dups))
dblib.cleanup(procs, TMP, my_dbs=[DB])
print("PASS")
