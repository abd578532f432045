#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MariaDB -> autoglm-cdc -> real Mosquitto (tests/services.sh up mariadb
mosquitto); read back with mosquitto_sub on a persistent QoS 1 session.

  1. fidelity, MQTT 5 and MQTT 3.1.1: every change once, in order per key,
     values equal SELECT; topic {db}/{table}
  2. retained last state per key: a client subscribing afterwards gets
     exactly the rows SELECT shows (deleted rows cleared)
  3. kill -9 during a workload, several times: nothing lost, duplicates
     only after a kill's checkpoint
  4. broker stopped for CDC_OUTAGE_S (30) s and started again mid-workload:
     nothing lost
  5. bad password: exit 78 naming mqtt.password
"""
import json
import os
import subprocess
import tempfile
import time

import dblib
import sinklib
from dblib import E, ROOT, fail, log

dblib.need("MYSQL_PORT", "MQ_PORT", what="MariaDB and Mosquitto", tools=("mosquitto_sub",))
PID = os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-mqtt.")
DOWN_S = int(os.environ.get("CDC_OUTAGE_S", "30"))
SVC = os.path.join(ROOT, "tests/services.sh")
procs, dbs = [], []
dblib.on_fail(lambda: (dblib.cleanup(procs, TMP, my_dbs=dbs),
                       subprocess.run([SVC, "up", "mosquitto"], capture_output=True)), logdir=TMP)
AUTH = ["-h", "127.0.0.1", "-p", E["MQ_PORT"], "-u", E["MQ_USER"], "-P", E["MQ_PASSWORD"]]


def sub_register(cid, topic):
    r = subprocess.run(["mosquitto_sub"] + AUTH + ["-c", "-i", cid, "-q", "1", "-t", topic, "-E"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode:
        fail("mosquitto_sub register: %s" % r.stderr)


def sub_read(topic, cid=None, count=None, wait=6, proto="5"):
    a = ["mosquitto_sub"] + AUTH + ["-q", "1", "-t", topic, "-F", "%r\t%t\t%p", "-W", str(wait),
                                    "-V", "mqttv5" if proto == "5" else "mqttv311"]
    a += ["-c", "-i", cid] if cid else []
    a += ["-C", str(count)] if count else []
    r = subprocess.run(a, capture_output=True, text=True, timeout=wait + 30)
    if r.returncode not in (0, 27):  # 27: -W timed out
        fail("mosquitto_sub: exit %d %s" % (r.returncode, r.stderr))
    out = []
    for line in r.stdout.splitlines():
        ret, top, pay = line.split("\t", 2)
        out.append((int(ret), top, pay))
    return out


def cdc(w, name, extra, idle=2500):
    cmd = sinklib.cdc_cmd(w, name, os.path.join(TMP, "state"), [
        "--sink", "mqtt", "-X", "mqtt.port=" + E["MQ_PORT"], "-X", "mqtt.user=" + E["MQ_USER"],
        "-X", "mqtt.password=" + E["MQ_PASSWORD"], "-X", "mqtt.topic={db}/{table}"] + extra)
    if idle is None:
        return cmd
    with open(os.path.join(TMP, name + ".log"), "ab") as lf:
        return subprocess.run(cmd + ["--idle-exit", str(idle)], stdout=lf, stderr=lf,
                              timeout=120).returncode


# ---- 1. fidelity, both protocol versions ------------------------------------
for proto in ("5", "3.1.1"):
    db = "mq_%d_%s" % (PID, proto.replace(".", ""))
    dbs.append(db)
    w = sinklib.Workload(db)
    sub_register("sub-" + db, db + "/#")
    w.run(1500)
    rc = cdc(w, "mq" + proto.replace(".", ""), ["-X", "mqtt.protocol=" + proto,
                                                 "-X", "mqtt.client_id=cdc-" + db])
    if rc:
        fail("MQTT %s: autoglm-cdc exited %d" % (proto, rc))
    msgs = sub_read(db + "/#", "sub-" + db, count=w.changes, wait=20, proto=proto)
    if any(t != db + "/kt" or r for r, t, _ in msgs):
        fail("MQTT %s: wrong topic or retain flag: %s" % (proto, msgs[0][:2]))
    if sinklib.check([json.loads(p) for _, _, p in msgs], w, "mqtt " + proto):
        fail("MQTT %s: a clean run delivered duplicates" % proto)

# ---- 2. retained last state per key -----------------------------------------
db = "mqr_%d" % PID
dbs.append(db)
w = sinklib.Workload(db, nkeys=60)
w.run(800)
if cdc(w, "mqr", ["-X", "mqtt.retain=true", "-X", "mqtt.client_id=cdc-" + db]):
    fail("retain run failed")
late = sub_read(db + "/#", wait=3)
state = {}
for r, t, p in late:
    e = json.loads(p)
    a = e["payload"]["after"]
    if r != 1 or t != "%s/kt/%d" % (db, a["id"]):
        fail("retained message on %s (retain %d)" % (t, r))
    state[a["id"]] = (a["v"], a["s"], a["d"])
if state != w.select():
    fail("retained state differs from SELECT: %d vs %d keys" % (len(state), len(w.select())))
log("retained: a late subscriber got %d rows = SELECT" % len(state))

# ---- 3. kill -9 ---------------------------------------------------------------
db = "mqk_%d" % PID
dbs.append(db)
w = sinklib.Workload(db, seed=9)
sub_register("sub-" + db, db + "/#")
cmd = cdc(w, "mqk", ["-X", "mqtt.client_id=cdc-" + db], idle=None)
ckpts = sinklib.kill9_loop(cmd, w, os.path.join(TMP, "state", "mqk.ckpt"),
                           os.path.join(TMP, "mqk.log"), procs, seed=4)
w.batch(300)
if cdc(w, "mqk", ["-X", "mqtt.client_id=cdc-" + db]):
    fail("kill -9 catch-up run failed")
envs = [json.loads(p) for _, _, p in sub_read(db + "/#", "sub-" + db, wait=10)]
sinklib.check_kill9(envs, w, ckpts, "mqtt kill -9")

# ---- 4. broker outage -----------------------------------------------------------
db = "mqo_%d" % PID
dbs.append(db)
w = sinklib.Workload(db, seed=12)
sub_register("sub-" + db, db + "/#")
cmd = cdc(w, "mqo", ["-X", "mqtt.client_id=cdc-" + db], idle=None)
lf = open(os.path.join(TMP, "mqo.log"), "ab")
p = subprocess.Popen(cmd, stdout=lf, stderr=lf)
procs.append(p)
w.batch(1000)
time.sleep(1)
subprocess.run([SVC, "stop", "mosquitto"], check=True, capture_output=True)
t0 = time.time()
while time.time() - t0 < DOWN_S:
    w.batch(100)
    time.sleep(0.5)
if p.poll() is not None:
    fail("autoglm-cdc exited while the broker was down")
subprocess.run([SVC, "start", "mosquitto"], check=True, capture_output=True)
w.batch(1000)
sinklib.wait_log(os.path.join(TMP, "mqo.log"), "reconnected")  # backoff is up to 10 s
time.sleep(3)
p.terminate()
if p.wait(timeout=60):
    fail("autoglm-cdc exited %d after SIGTERM" % p.returncode)
if cdc(w, "mqo", ["-X", "mqtt.client_id=cdc-" + db]):
    fail("outage catch-up run failed")
envs = [json.loads(p) for _, _, p in sub_read(db + "/#", "sub-" + db, wait=10)]
dups = sinklib.check(envs, w, "mqtt outage")
if "reconnected" not in open(os.path.join(TMP, "mqo.log")).read():
    fail("no reconnect logged")
log("outage %d s: nothing lost, %d duplicates" % (DOWN_S, dups))

# ---- 5. bad credentials -----------------------------------------------------------
r = subprocess.run([dblib.BIN, "--source", "mysql", "--sink", "mqtt", "-X",
                    "mqtt.port=" + E["MQ_PORT"], "-X", "mqtt.user=cdc", "-X", "mqtt.password=wrong",
                    "--mysql-dsn", "mysql://x:y@127.0.0.1:1", "--state-dir", TMP],
                   capture_output=True, text=True, timeout=60)
if r.returncode != 78 or "mqtt.password" not in r.stderr:
    fail("bad password: exit %d, want 78 naming mqtt.password:\n%s" % (r.returncode, r.stderr))
log("bad password: exit 78")

dblib.cleanup(procs, TMP, my_dbs=dbs)
print("PASS")
