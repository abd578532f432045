#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""kill -9 loop: MariaDB -> autoglm-cdc -> real Kafka, nothing lost.

A writer applies CHANGES row changes (inserts and updates; every update
sets v to a per-key counter) in small transactions while autoglm-cdc is
started and killed with SIGKILL at random moments KILLS times, then run
once more until it has caught up.  Each kill must hit a running process
(one that crashed on its own fails the test).  Consuming the topic back
must show:
  * per key, the values v in consumption order are exactly 1..n (n the
    key's last counter), where a replay after a kill may go back and climb
    again by one: a lost change is a jump (dblib.check_sequences)
  * every row change of the workload (unique by file/pos/row), and a
    duplicate of a position carries the same values
  * the final state rebuilt from Kafka equals SELECT on MariaDB
Env: CDC_KILL9_CHANGES (default 200000), CDC_KILL9_KILLS (default 20),
CDC_TEST_SEED.  Exit 0 pass, 1 fail, 77 skip.
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
from dblib import BIN, E, fail

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
rnd = random.Random(dblib.test_seed())
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
        dblib.kill9(cdc, "autoglm-cdc (kill %d, log %s)" % (kills + 1, logf.name))
        kills += 1
        time.sleep(rnd.uniform(0.0, 0.3))
        cdc = subprocess.Popen(cmd, stdout=logf, stderr=logf)
        next_kill = time.time() + rnd.uniform(0.3, 1.5)
writer.stdin.close()
writer.wait()
while kills < KILLS:
    time.sleep(rnd.uniform(0.3, 1.0))
    dblib.kill9(cdc, "autoglm-cdc (kill %d, log %s)" % (kills + 1, logf.name))
    kills += 1
    cdc = subprocess.Popen(cmd, stdout=logf, stderr=logf)
dblib.kill9(cdc, "autoglm-cdc (last, log %s)" % logf.name)
# final run until idle: must catch up and exit 0
final = subprocess.run(cmd + ["--idle-exit", "4000"], stdout=logf, stderr=logf, timeout=600)
if final.returncode != 0:
    fail("final catch-up run exited %d (log %s)" % (final.returncode, logf.name))

out = subprocess.run(["kcat", "-b", E["KAFKA_BOOTSTRAP"], "-C", "-t", TOPIC, "-o", "beginning",
                      "-e", "-q", "-f", "%s\n"], capture_output=True, text=True, check=True).stdout
seen = {}
values = {}  # key -> v of every message, duplicates included, in order
total = 0
errors = []
for line in out.splitlines():
    if not line.strip():
        continue
    total += 1
    env = json.loads(line)
    s = env["source"]
    ident = (s["file"], s["pos"], s["row"])
    after = env["payload"]["after"]
    if ident in seen and seen[ident] != after:
        errors.append("position %s delivered twice with different rows: %s, %s" % (ident, seen[ident], after))
    seen[ident] = after
    values.setdefault(after["id"], []).append(after["v"])

if len(seen) != CHANGES:
    errors.append("unique changes in Kafka: %d, workload: %d" % (len(seen), CHANGES))
errors += dblib.check_sequences(values, counter)[:10]
final_kafka = {k: vs[-1] for k, vs in values.items()}
rows = dict((int(a), int(b)) for a, b in
            (l.split("\t") for l in sql("SELECT id, v FROM kt", DB).splitlines()))
if rows != counter:
    errors.append("the writer's counters differ from SELECT (the workload itself failed)")
if rows != final_kafka:
    diff = [k for k in rows if rows.get(k) != final_kafka.get(k)][:5]
    errors.append("state rebuilt from Kafka differs from SELECT for keys %s" % diff)
dups = total - len(seen)
print("# %d kills, %d row changes, %d messages, %d duplicates (%.2f%%) from replays after kills"
      % (kills, CHANGES, total, dups, 100.0 * dups / max(total, 1)))
sql("DROP DATABASE %s" % DB)
if errors:
    fail("\n".join(errors) + "\n# log: %s" % logf.name)
print("PASS: per key exactly 1..n, nothing lost, final state equal")
