#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Broker loss: MariaDB -> autoglm-cdc -> 3-broker Kafka (KRaft) cluster.

The sink creates its topic with kafka.topic_replication_factor=3 and
kafka.topic_min_insync_replicas=2 (checked on the cluster); the producer
keeps its defaults acks=all + idempotence.  During a workload the
partition leader is killed with SIGKILL; later a second broker too, so
only one replica is left: the sink must stall (/readyz names the sink,
the process keeps running), not write to the lone replica and not lose
anything.  A fatal idempotent-producer error on the way (librdkafka 2.0.2
raises one in about one run of five) must be recovered in-process: the
process never exits during the faults.  Both brokers are restarted; then the topic must hold every
change, per key in commit order (ledger check; duplicates reported).

Starts the cluster with `tests/services.sh up kafka-cluster` when it is not
running and stops it at the end (three JVMs are heavy).
Exit 0 pass, 1 fail, 77 skip.
"""
import os
import re
import signal
import subprocess
import time

import dblib
from dblib import BIN, E, ROOT, fail, log, my
import faultlib
import ledger

dblib.need("MYSQL_PORT", what="MariaDB", tools=("kcat", "java"))
SVC = os.path.join(ROOT, "tests", "services.sh")
DB = "kcluster_%d" % os.getpid()
TOPIC = "kc.%s.lt" % DB
TMP = faultlib.scratch("kcluster")
procs = []
state = {"started": False}


def cluster_env():
    return dblib.load_env()


def cleanup():
    dblib.cleanup(procs, TMP, my_dbs=(DB,))
    if state["started"]:
        subprocess.run([SVC, "down", "kafka-cluster"])


dblib.on_fail(cleanup, logdir=TMP)
if subprocess.run([SVC, "up", "kafka-cluster"]).returncode != 0:
    fail("tests/services.sh up kafka-cluster failed")
state["started"] = True
CE = cluster_env()
BOOT = CE["KAFKA_CLUSTER_BOOTSTRAP"]

my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; "
   "CREATE TABLE %s.lt (id INT PRIMARY KEY, v BIGINT NOT NULL)" % (DB, DB, DB))
file0, pos0 = my("SHOW BINLOG STATUS").split("\t")[:2]
hport = faultlib.free_port()
logpath = os.path.join(TMP, "cdc.log")
dsn = "mysql://%s:%s@127.0.0.1:%s" % (E["MYSQL_USER"], E["MYSQL_PASSWORD"], E["MYSQL_PORT"])
cmd = [BIN, "--source", "mysql", "--mysql-dsn", dsn, "--from", "%s:%s" % (file0, pos0.strip()),
       "--include", DB + ".lt", "--sink", "kafka", "--kafka-brokers", BOOT,
       "--topic", "kc.{db}.{table}", "--pipeline", "kcluster", "--state-dir", os.path.join(TMP, "state"),
       "-X", "kafka.topic_replication_factor=3", "-X", "kafka.topic_min_insync_replicas=2",
       "-X", "http.listen=127.0.0.1:%d" % hport, "-X", "ready.sink_stall_s=3",
       "-X", "checkpoint.interval_ms=200"]
cdc = subprocess.Popen(cmd, stdout=open(logpath, "wb"), stderr=subprocess.STDOUT)
procs.append(cdc)
writer = subprocess.Popen(dblib.my_args(DB), stdin=subprocess.PIPE, text=True, stdout=subprocess.DEVNULL)
procs.append(writer)


def write(stmts):
    writer.stdin.write("BEGIN;%s;COMMIT;\n" % ";".join(stmts))
    writer.stdin.flush()


def alive_or_fail():
    """The process runs through the whole fault: a fatal idempotent-
    producer error (librdkafka 2.0 may end a broker loss with
    OUT_OF_ORDER_SEQUENCE_NUMBER after NOT_ENOUGH_REPLICAS retries) is
    recovered in-process by recreating the producer, never by an exit."""
    if cdc.poll() is None:
        return
    text = open(logpath, errors="replace").read()
    fail("autoglm-cdc exited %d during the broker faults:\n%s" % (cdc.returncode, text[-3000:]))


def topic_meta():
    # all topics: asking for one by name would auto-create it
    r = subprocess.run(["kcat", "-b", BOOT, "-L", "-m", "5"], capture_output=True, text=True)
    m = re.search(r'topic "%s" with 1 partitions:\s*partition 0, leader (-?\d+), replicas: ([\d,]+)'
                  % re.escape(TOPIC), r.stdout)
    return (int(m.group(1)), m.group(2).strip(",")) if m else None


def pids():
    return cluster_env()["KAFKA_CLUSTER_PIDS"].split()


w = ledger.Workload(write, keys=40)
faultlib.wait("autoglm-cdc ready", lambda: alive_or_fail() or faultlib.readyz(hport)[0] == 200, 60)
halt = w.in_background()
try:
    meta = faultlib.wait("topic %s with a leader" % TOPIC, topic_meta, 60)
    leader, replicas = meta
    if len(replicas.strip(",").split(",")) != 3:
        fail("topic %s has replicas %s, expected 3" % (TOPIC, replicas))
    time.sleep(2)
    p = pids()
    log("kill -9 of the partition leader, broker %d (pid %s)" % (leader, p[leader - 1]))
    os.kill(int(p[leader - 1]), signal.SIGKILL)
    time.sleep(4)
    alive_or_fail()
    second = [n for n in (1, 2, 3) if n != leader][0]
    log("kill -9 of a second broker, %d (pid %s): one replica left" % (second, p[second - 1]))
    os.kill(int(p[second - 1]), signal.SIGKILL)

    def stalled():
        alive_or_fail()
        c, body = faultlib.readyz(hport)
        return body if c == 503 and "sink kafka" in body else None
    body = faultlib.wait("/readyz naming the stalled sink", stalled, 30)
    log("stalled: %s" % body.strip())
    time.sleep(2)
    alive_or_fail()
    log("restarting the killed brokers")
    if subprocess.run([SVC, "up", "kafka-cluster"]).returncode != 0:
        fail("restarting the brokers failed")
    time.sleep(2)
finally:
    halt()
writer.stdin.close()
if writer.wait() != 0:
    fail("the workload's mariadb client failed")
total = w.total()


def consumed():
    r = subprocess.run(["kcat", "-b", BOOT, "-C", "-t", TOPIC, "-o", "beginning", "-e", "-q", "-f", "%s\n"],
                       capture_output=True, text=True, timeout=60)
    return ledger.pairs_from_envelopes(r.stdout.splitlines(keepends=True))


got = faultlib.wait("all %d changes in Kafka" % total,
                    lambda: alive_or_fail() or (lambda g: g if len(g) >= total else None)(consumed()),
                    90, every=1)
cdc.send_signal(signal.SIGTERM)
if cdc.wait(60) != 0:
    fail("autoglm-cdc exited %d" % cdc.returncode)
problems, dups = ledger.check(w.expected, consumed())
if problems:
    fail("ledger: " + "; ".join(problems[:10]))
cfg = subprocess.run(["java", "-Xmx128m", "-cp", CE["KAFKA_CLUSTER_JARS"] + "/*", "kafka.admin.ConfigCommand",
                      "--bootstrap-server", BOOT, "--describe", "--entity-type", "topics",
                      "--entity-name", TOPIC], capture_output=True, text=True)
if "min.insync.replicas=2" not in cfg.stdout:
    fail("topic %s lacks min.insync.replicas=2: %s %s" % (TOPIC, cfg.stdout, cfg.stderr[-400:]))
cdclog = open(logpath, errors="replace").read()
recreated = cdclog.count("recreating the producer")
for line in cdclog.splitlines():
    if "recreating the producer" in line or "messages produced again" in line:
        log(line[:600])
log("broker loss: %d changes on %d keys, none lost, order kept, %d duplicate(s), %d producer "
    "recreation(s) after a fatal producer error, no exit; replicas %s, min.insync.replicas=2 (seed %d)"
    % (total, len(w.expected), dups, recreated, replicas, dblib.test_seed()))

# a replication factor above the number of brokers: refused, exit 78
# naming the topic and the key
my("CREATE TABLE %s.lt2 (id INT PRIMARY KEY, v BIGINT NOT NULL)" % DB)
bad = list(cmd)
bad[bad.index("kafka.topic_replication_factor=3")] = "kafka.topic_replication_factor=4"
bad[bad.index("--include") + 1] = DB + ".lt2"
bad[bad.index("--state-dir") + 1] = os.path.join(TMP, "state2")
p = subprocess.Popen(bad, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
procs.append(p)
time.sleep(2)
my("INSERT INTO %s.lt2 VALUES (1, 1)" % DB)
try:
    text = p.communicate(timeout=60)[0]
except subprocess.TimeoutExpired:
    fail("autoglm-cdc did not stop on a refused topic creation")
if p.returncode != 78 or "refused to create topic kc.%s.lt2" % DB not in text \
        or "kafka.topic_replication_factor" not in text:
    fail("RF 4 on 3 brokers: exit %d, expected 78 naming the topic and the key:\n%s"
         % (p.returncode, text[-1500:]))
log("replication factor 4 on 3 brokers: exit 78, refused by the cluster")
cleanup()
