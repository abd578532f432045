#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""kill -9 loop: MariaDB -> autoglm-cdc -> real Kafka, nothing lost.

A writer applies CHANGES row changes (inserts and updates; every update
sets v to a per-key counter) in small transactions while autoglm-cdc is
started and killed with SIGKILL at random moments KILLS times, then run
once more until it has caught up.  Consuming the topic back must show:
  * every row change of the workload (unique by file/pos/row) - nothing lost
  * duplicates only from replays after a kill (bounded: reported)
  * per key, the first occurrences in consumption order follow source order
  * the final state rebuilt from Kafka equals SELECT on MariaDB
Env: CDC_KILL9_CHANGES (default 200000), CDC_KILL9_KILLS (default 20).
Exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

import dblib
from dblib import BIN, E

CHANGES = int(os.environ.get("CDC_KILL9_CHANGES", "200000"))
KILLS = int(os.environ.get("CDC_KILL9_KILLS", "20"))


dblib.need("MYSQL_PORT", "KAFKA_BOOTSTRAP", what="MariaDB and Kafka")


def mysql_args(db=None):
    a = ["mariadb", "--no-defaults", "--protocol=tcp", "-h", "127.0.0.1", "-P", E["MYSQL_PORT"],
         "-uroot", "-p" + E["MYSQL_ROOT_PASSWORD"], "-N", "-B"]
    return a + ([db] if db else [])


def sql(q, db=None):
    return subprocess.run(mysql_args(db) + ["-e", q], check=True, capture_output=True,
                          text=True).stdout


DB = "kill9_%d" % os.getpid()
TOPIC = "k9.%s.kt" % DB
NKEYS = 5000
sql("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; "
    "CREATE TABLE %s.kt (id INT PRIMARY KEY, v BIGINT NOT NULL, pad VARCHAR(64))" % (DB, DB, DB))
file0, pos0 = sql("SHOW BINLOG STATUS").split("\t")[:2]

tmp = tempfile.mkdtemp(prefix="cdc-kill9.")
state = os.path.join(tmp, "state")
logf = open(os.path.join(tmp, "cdc.log"), "ab")
dsn = "mysql://%s:%s@127.0.0.1:%s" % (E["MYSQL_USER"], E["MYSQL_PASSWORD"], E["MYSQL_PORT"])
cmd = [BIN, "--source", "mysql", "--mysql-dsn", dsn, "--from", "%s:%s" % (file0, pos0.strip()),
       "--include", DB + ".kt", "--sink", "kafka", "--kafka-brokers", E["KAFKA_BOOTSTRAP"],
       "--topic", "k9.{db}.{table}", "--pipeline", "k9", "--state-dir", state,
       "-X", "checkpoint.interval_ms=200"]

# the writer: CHANGES row changes in transactions of 1..20 rows, paced so
# the workload spans the kill loop
rnd = random.Random(7)
writer = subprocess.Popen(mysql_args(DB), stdin=subprocess.PIPE, text=True,
                          stdout=subprocess.DEVNULL)
counter = {}
done = 0
t_start = time.time()
kills = 0
next_kill = time.time() + rnd.uniform(0.3, 1.5)
cdc = subprocess.Popen(cmd, stdout=logf, stderr=logf)
budget = max(20.0, KILLS * 1.2)  # seconds over which to spread the writes
while done < CHANGES:
    n = min(rnd.randint(1, 20), CHANGES - done)
    stmts = []
    for _ in range(n):
        k = rnd.randint(1, NKEYS)
        c = counter.get(k, 0) + 1
        counter[k] = c
        if c == 1:
            stmts.append("INSERT INTO kt VALUES (%d,%d,'k%d')" % (k, c, k))
        else:
            stmts.append("UPDATE kt SET v=%d WHERE id=%d" % (c, k))
    writer.stdin.write("BEGIN;%s;COMMIT;\n" % ";".join(stmts))
    done += n
    # pace and kill
    target = t_start + budget * done / CHANGES
    now = time.time()
    if now < target:
        writer.stdin.flush()
        time.sleep(min(0.05, target - now))
    if kills < KILLS and time.time() >= next_kill:
        cdc.send_signal(signal.SIGKILL)
        cdc.wait()
        kills += 1
        time.sleep(rnd.uniform(0.0, 0.3))
        cdc = subprocess.Popen(cmd, stdout=logf, stderr=logf)
        next_kill = time.time() + rnd.uniform(0.3, 1.5)
writer.stdin.close()
writer.wait()
while kills < KILLS:
    time.sleep(rnd.uniform(0.3, 1.0))
    cdc.send_signal(signal.SIGKILL)
    cdc.wait()
    kills += 1
    cdc = subprocess.Popen(cmd, stdout=logf, stderr=logf)
cdc.send_signal(signal.SIGKILL)
cdc.wait()
# final run until idle: must catch up and exit 0
final = subprocess.run(cmd + ["--idle-exit", "4000"], stdout=logf, stderr=logf, timeout=600)
if final.returncode != 0:
    print("FAIL: final catch-up run exited %d (log %s)" % (final.returncode, logf.name))
    sys.exit(1)

out = subprocess.run(["kcat", "-b", E["KAFKA_BOOTSTRAP"], "-C", "-t", TOPIC, "-o", "beginning",
                      "-e", "-q", "-f", "%s\n"], capture_output=True, text=True, check=True).stdout
seen = {}
order = {}
total = 0
for line in out.splitlines():
    if not line.strip():
        continue
    total += 1
    env = json.loads(line)
    s = env["source"]
    ident = (s["file"], s["pos"], s["row"])
    if ident in seen:
        continue
    after = env["payload"]["after"]
    seen[ident] = after
    order.setdefault(after["id"], []).append((ident, after["v"]))

errors = []
if len(seen) != CHANGES:
    errors.append("unique changes in Kafka: %d, workload: %d" % (len(seen), CHANGES))
for k, evs in order.items():
    vs = [v for _, v in evs]
    if vs != sorted(vs) or [i for i, _ in evs] != sorted(i for i, _ in evs):
        errors.append("key %d out of order: %s" % (k, vs[:20]))
        break
final_kafka = {k: evs[-1][1] for k, evs in order.items()}
rows = dict((int(a), int(b)) for a, b in
            (l.split("\t") for l in sql("SELECT id, v FROM kt", DB).splitlines()))
if rows != final_kafka:
    diff = [k for k in rows if rows.get(k) != final_kafka.get(k)][:5]
    errors.append("state rebuilt from Kafka differs from SELECT for keys %s" % diff)
dups = total - len(seen)
print("# %d kills, %d row changes, %d messages, %d duplicates (%.2f%%) from replays after kills"
      % (kills, CHANGES, total, dups, 100.0 * dups / max(total, 1)))
sql("DROP DATABASE %s" % DB)
if errors:
    for e in errors:
        print("FAIL:", e)
    print("# log: %s" % logf.name)
    sys.exit(1)
print("PASS: nothing lost, per-key order kept, final state equal")
