#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`--source kafka`: two workers of one consumer group share a 2-partition
topic of envelopes and write a PostgreSQL wide table; kill -9 of one
loses nothing, and the messages it re-delivers have no effect.

  1. a topic with 2 partitions (kafka_create), envelopes keyed by id:
     autoglm and Debezium format mixed (detected per message), 60 keys,
     several updates each with increasing commit times
  2. two workers, same configuration (same pipeline name and group): each
     gets a partition; the first half of the messages is applied
  3. worker A is killed with SIGKILL while the second half is produced; B
     takes its partition over (committed offsets only cover what the sink
     had durably delivered)
  4. the wide table equals the last value per key (nothing lost), every
     value's provenance is that message's (replays did not win: no
     duplicate effect), the sink counted every envelope at least once
     (re-deliveries after the kill are counted again, and reported), and
     the group's committed offsets reach the end of both partitions

Exit 0 pass, 1 fail, 77 skip.  Run: tests/integ/run.sh t_kafka_source_
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import dblib
from dblib import BIN, E, fail, log, pg

dblib.need("KAFKA_BOOTSTRAP", "PGPORT", what="Kafka and PostgreSQL")

NKEYS = 60
ROUNDS = 6


ID = "%d" % os.getpid()
TOPIC = "ks_%s.crm.customers" % ID
GROUP = "ksg_" + ID
PDB = "ksp_" + ID
SRCDB = "kscrm_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-kafkasrc-")
PROCS = []


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[PDB])


dblib.on_fail(cleanup, logdir=TMP, tail=12)


def kafka_tool(cls, *args):
    return subprocess.run(["java", "-Xmx256m", "-Dlog4j.configuration=file:%s/tools-log4j.properties" % E["KAFKA_DIR"],
                           "-cp", E["KAFKA_JARS"] + "/*", cls, "--bootstrap-server", E["KAFKA_BOOTSTRAP"]] + list(args),
                          capture_output=True, text=True)


# ---- the messages ---------------------------------------------------------------

T0 = 1767225600000  # 2026-01-01, ms
msgs = []  # (key, json text)
expect = {}  # id -> (name, n, ts_ms)
seq = 0
for r in range(ROUNDS):
    for k in range(1, NKEYS + 1):
        seq += 1
        ts = T0 + seq * 10
        after = {"id": k, "name": "k%d-r%d" % (k, r), "n": r, "price": "%d.50" % r, "tags": ["a", r],
                 "flag": r % 2 == 0}
        src = {"connector": "mariadb", "server_id": 1, "db": SRCDB, "table": "customers",
               "file": "mysql-bin.000007", "pos": 1000 + seq * 100, "row": 0, "ts_ms": ts}
        op = "c" if r == 0 else "u"
        if (k + r) % 2:
            env = {"application_id": "crm", "timestamp": "x", "version": 1,
                   "payload": {"op": op, "key": {"id": k}, "before": None, "after": after}, "source": src}
        else:
            s2 = dict(src, version="autoglm-cdc", name="crm", snapshot="false", gtid=None)
            env = {"before": None, "after": after, "source": s2, "op": op, "ts_ms": ts}
        msgs.append((k, json.dumps(env)))
        expect[k] = ("k%d-r%d" % (k, r), r, ts)
# a message of another application and a tombstone: skipped, offsets still move
msgs.append((1, json.dumps({"application_id": "erp", "timestamp": "x", "version": 1,
                            "payload": {"op": "u", "key": {"id": 1}, "before": None, "after": {"id": 1, "name": "no"}},
                            "source": {"connector": "postgresql", "schema": "public", "table": "customers",
                                       "lsn": 99, "ts_ms": T0 + 10 ** 7}})))


def produce(batch):
    lines = "".join('{"id":%d}\t%s\n' % (k, m) for k, m in batch)
    r = subprocess.run(["kcat", "-b", E["KAFKA_BOOTSTRAP"], "-P", "-t", TOPIC, "-K", "\t", "-z", "none"],
                       input=lines, capture_output=True, text=True)
    if r.returncode:
        fail("kcat produce: " + r.stderr)


MAP = os.path.join(TMP, "map.yaml")
open(MAP, "w").write("""version: 1
sources:
  crm: {priority: 1}
targets:
  customer_wide:
    table: public.customer_wide
    key: customer_id
    fields:
      customer_id: bigint
      name: {type: text, owner: crm}
      n: {type: bigint, owner: crm}
      price: {type: 'numeric(10,2)', owner: crm}
      tags: {type: jsonb, owner: crm}
      flag: {type: boolean, owner: crm}
mappings:
  - source: crm
    table: %s.customers
    target: customer_wide
    key: {customer_id: id}
    fields: {name: name, n: n, price: price, tags: tags, flag: flag}
""" % SRCDB)


def start(tag):
    a = [BIN, "run", "--source", "kafka", "--pipeline", "ksrc" + ID, "--application-id", "crm",
         "--state-dir", os.path.join(TMP, "state-" + tag), "-X", "kafka.brokers=" + E["KAFKA_BOOTSTRAP"],
         "-X", "kafka.topics=" + TOPIC, "-X", "kafka.group.id=" + GROUP, "-X", "checkpoint.interval_ms=300",
         "-X", "kafka.session.timeout.ms=6000", "-X", "kafka.heartbeat.interval.ms=500",
         "--sink", "postgres", "-X", "postgres_sink.dsn=host=%s port=%s user=%s password=%s dbname=%s" % (
             E["PGHOST"], E["PGPORT"], E["PGUSER"], E["PGPASSWORD"], PDB),
         "-X", "postgres_sink.flush_ms=100", "-X", "mapping.files=" + MAP]
    errf = open(os.path.join(TMP, tag + ".log"), "ab")
    p = subprocess.Popen(a, stdout=errf, stderr=errf)
    PROCS.append(p)
    return p


def rows():
    out = {}
    for line in pg("SELECT customer_id, name, n, price, tags, flag, _provenance FROM customer_wide_provenance()", PDB).splitlines():
        f = line.split("\t")
        out[int(f[0])] = f[1:]
    return out


def wait_rows(pred, what, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        r = rows()
        if pred(r):
            return r
        time.sleep(0.3)
    fail("timed out: " + what)


pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
r = kafka_tool("org.apache.kafka.tools.TopicCommand", "--create", "--topic", TOPIC, "--partitions", "2",
               "--replication-factor", "1")
if r.returncode:
    fail("creating the topic: " + r.stderr[-400:])
half = len(msgs) // 2
produce(msgs[:half])
A, B = start("a"), start("b")
log("two workers started; first half (%d messages) produced" % half)


def assigned(tag):
    return [l for l in open(os.path.join(TMP, tag + ".log"), errors="replace") if " assigned " in l]


t0 = time.time()
while time.time() - t0 < 40 and not (assigned("a") and assigned("b")):
    time.sleep(0.3)
if not (assigned("a") and assigned("b")):
    fail("the two workers did not both get a partition")
log("partitions: a %s | b %s" % ([l.split()[-1] for l in assigned("a")], [l.split()[-1] for l in assigned("b")]))
wait_rows(lambda r: len(r) >= NKEYS // 2, "rows of the first half")
# kill -9 worker A while the second half arrives: once the first of these
# messages is applied, and A must still be running
batch = msgs[half:half + 60]
names = {(json.loads(m).get("payload") or json.loads(m))["after"]["name"] for _, m in batch}
produce(batch)
wait_rows(lambda r: any(v[0] in names for v in r.values()), "a message of the second half applied")
dblib.kill9(A, "worker a")
log("worker a killed with SIGKILL")
produce(msgs[half + 60:])
final = wait_rows(lambda r: len(r) == NKEYS and all(r[k][0] == expect[k][0] for k in expect),
                  "every key at its last value after the kill", timeout=90)
bad = []
for k, (name, n, ts) in expect.items():
    got = final[k]
    prov = json.loads(got[5])
    if got[1] != str(n) or got[2] != "%d.50" % n or json.loads(got[3]) != ["a", n] or got[4] != ("t" if n % 2 == 0 else "f"):
        bad.append("key %d: %s" % (k, got[:5]))
    for f in ("name", "n", "price", "tags", "flag"):
        if prov.get(f, {}).get("t") != ts * 1000 or prov[f].get("s") != "crm":
            bad.append("key %d field %s: provenance %s, expected t=%d" % (k, f, prov.get(f), ts * 1000))
if bad:
    fail("wide table differs from the last messages:\n  " + "\n  ".join(bad[:10]))
log("all %d keys hold their last value and its provenance" % NKEYS)
# the group's committed offsets reach the end of both partitions
t0 = time.time()
while True:
    d = kafka_tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--describe", "--group", GROUP)
    lags = [l.split() for l in d.stdout.splitlines() if l.startswith(GROUP)]
    if lags and all(x[5] == "0" for x in lags):
        break
    if time.time() - t0 > 40:
        fail("committed offsets do not reach the end: %s" % d.stdout)
    time.sleep(1)
log("committed offsets at the end of both partitions: %s" % [(x[2], x[3]) for x in lags])
cnt = int(pg("SELECT coalesce(sum(changes), 0) FROM autoglm_cdc_offsets", PDB).strip())
if cnt < len(msgs) - 1:
    fail("the sink counted %d changes for %d envelopes of crm: some were never applied" % (cnt, len(msgs) - 1))
log("mapped changes counted by the sink: %d for %d envelopes of crm: %d re-delivered after the kill, "
    "without effect (provenance above)" % (cnt, len(msgs) - 1, cnt - (len(msgs) - 1)))
B.terminate()
B.wait(timeout=30)
if not any("erp" in l and "skipped" in l for l in open(os.path.join(TMP, "a.log")).readlines() +
           open(os.path.join(TMP, "b.log")).readlines()):
    fail("the envelope of application erp was not reported as skipped")
cleanup()
print("ok - two kafka-source workers split the partitions; kill -9 lost nothing, re-deliveries had no effect")
sys.exit(0)
