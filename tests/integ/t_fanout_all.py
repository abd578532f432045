#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Fan-out to every kind of sink at once: ONE MariaDB read feeding Kafka,
RabbitMQ, MQTT and a PostgreSQL wide table
(`sinks: [kafka, rabbitmq, mqtt, postgres]`), clean and under kill -9.

The workload (sinklib.Workload: inserts, updates and deletes of rows with a
counter, text with quotes and non-ASCII, decimals and NULLs, in
transactions of 1-10 statements, seeded by CDC_TEST_SEED) is read back
from each sink:
  1. clean run: every message sink got every change exactly once, in order
     per key, with the values of the binlog (the state rebuilt from each
     equals SELECT on MariaDB); the wide table equals SELECT and its
     offsets table counted every change once;
  2. kill -9 of autoglm-cdc at random moments during the workload (5
     times, each asserted alive when killed), then a catch-up run (exit 0):
       * each message sink holds every change, per key in source order,
         with exact values; a duplicate is only the replay of a window
         (per key it re-runs values already delivered, in order, and a new
         value comes only once the replay caught up: ledger.check), with
         the same content, and lies after the checkpoint of some kill (it
         was not acknowledged by every sink when the process died);
       * the wide table equals SELECT and its offsets table counted every
         change of both phases exactly once (nothing applied twice);
       * every restart resumed from the shared checkpoint.
Exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import re
import subprocess
import tempfile

import dblib
import ledger
import sinklib
from dblib import E, fail, log, my, pg

dblib.need("MYSQL_PORT", "PGPORT", "KAFKA_BOOTSTRAP", "RMQ_URL", "MQ_PORT",
           what="MariaDB, PostgreSQL, Kafka, RabbitMQ and Mosquitto", tools=("kcat", "mosquitto_sub"))
CONSUME = sinklib.amqp_consume()

PID = os.getpid()
DB = "fanall_%d" % PID
W = "fanallw_%d" % PID
PIPE = "fanall_%d" % PID
TOPIC = "fanall%d.kt" % PID
EX = Q = "fanall_%d" % PID
MQCID = "sub-fanall-%d" % PID
KILLS = 5
TMP = tempfile.mkdtemp(prefix="cdc-fanall.")
STATE = os.path.join(TMP, "state")
procs = []
dblib.on_fail(lambda: dblib.cleanup(procs, TMP, pg_dbs=[W], my_dbs=[DB]), logdir=TMP, tail=40)
MQAUTH = ["-h", "127.0.0.1", "-p", E["MQ_PORT"], "-u", E["MQ_USER"], "-P", E["MQ_PASSWORD"]]


class Workload(sinklib.Workload):
    """sinklib's workload that also counts the changes per key (the ledger
    of the replay check: key -> [1..n])."""

    def __init__(self, *a, **kw):
        self.per_key = {}
        super().__init__(*a, **kw)

    def stmt(self):
        s = super().stmt()
        k = int(re.search(r"(?:id=|VALUES \()(\d+)", s).group(1))
        self.per_key[k] = self.per_key.get(k, 0) + 1
        return s


# ---- the sinks' servers: a queue, a session and a database that keep everything

w = Workload(DB, nkeys=150, seed=21)
r = subprocess.run([CONSUME, E["RMQ_URL"], EX, Q, "#", "declare"], capture_output=True, text=True)
if r.returncode:
    fail("amqp_consume declare %s: %s" % (Q, r.stderr.strip()))
r = subprocess.run(["mosquitto_sub"] + MQAUTH + ["-c", "-i", MQCID, "-q", "1", "-t", DB + "/#", "-E"],
                   capture_output=True, text=True, timeout=30)
if r.returncode:
    fail("mosquitto_sub register %s: %s" % (MQCID, r.stderr.strip()))
pg("CREATE DATABASE %s OWNER %s" % (W, E["PGUSER"]), "postgres", superuser=True)
MAPF = os.path.join(TMP, "map.yaml")
dblib.wide_mapping(MAPF, PIPE, "w_kt", "pg", DB + ".kt", "m_kt",
                   {"v": ("bigint", "v"), "s": ("text", "s"), "d": ("numeric(12,2)", "d")})

CMD = sinklib.cdc_cmd(w, PIPE, STATE, [
    "-X", "sinks=kafka,rabbitmq,mqtt,postgres",
    "--kafka-brokers", E["KAFKA_BOOTSTRAP"], "--topic", TOPIC,
    "-X", "rabbitmq.url=" + E["RMQ_URL"], "-X", "rabbitmq.exchange=" + EX,
    "-X", "mqtt.port=" + E["MQ_PORT"], "-X", "mqtt.user=" + E["MQ_USER"],
    "-X", "mqtt.password=" + E["MQ_PASSWORD"], "-X", "mqtt.topic={db}/{table}",
    "-X", "mqtt.client_id=cdc-" + PIPE,
    "-X", "postgres_sink.dsn=" + dblib.pg_dsn(W), "-X", "mapping.files=" + MAPF])
LOG = os.path.join(TMP, "cdc.log")


def run_final(what):
    with open(LOG, "ab") as lf:
        rc = subprocess.run(CMD + ["--idle-exit", "3000"], stdout=lf, stderr=lf, timeout=300).returncode
    if rc != 0:
        fail("%s: autoglm-cdc exited %d, not 0 (log %s)" % (what, rc, LOG))


# ---- reading each sink back (all of it, in arrival order) -------------------------

def kafka():
    r = subprocess.run(["kcat", "-b", E["KAFKA_BOOTSTRAP"], "-C", "-t", TOPIC, "-o", "beginning", "-e", "-q",
                        "-f", "%p %s\n"], capture_output=True, text=True)
    if r.returncode:
        fail("kcat %s: %s" % (TOPIC, r.stderr.strip()))
    envs = []
    for line in r.stdout.splitlines():
        if line.strip():
            part, body = line.split(" ", 1)
            e = json.loads(body)
            e["_stream"] = "partition " + part  # the order Kafka keeps
            envs.append(e)
    return envs


RMQ_SEEN = []


def rabbitmq():
    # drain consumes: keep what earlier reads took
    r = subprocess.run([CONSUME, E["RMQ_URL"], EX, Q, "#", "drain", "3000"], capture_output=True, text=True)
    if r.returncode:
        fail("amqp_consume drain %s: %s" % (Q, r.stderr.strip()))
    RMQ_SEEN.extend(json.loads(m["body"]) for m in sinklib.parse_lines(r.stdout))
    return list(RMQ_SEEN)


MQ_SEEN = []


def mqtt():
    # the persistent session's queue arrives at once; -W ends the read after it
    r = subprocess.run(["mosquitto_sub"] + MQAUTH + ["-c", "-i", MQCID, "-q", "1", "-t", DB + "/#", "-W", "10"],
                       capture_output=True, text=True, timeout=90)
    if r.returncode not in (0, 27):  # 27: -W ran out, the normal end here
        fail("mosquitto_sub %s: exit %d %s" % (MQCID, r.returncode, r.stderr.strip()))
    MQ_SEEN.extend(sinklib.parse_lines(r.stdout))
    return list(MQ_SEEN)


def check_wide(what):
    """The wide table equals SELECT on MariaDB, value for value, and the
    offsets table counted each change of the workload once."""
    want = w.select()
    got = {}
    for line in pg("SELECT k, v, s, d, v IS NULL AND s IS NULL AND d IS NULL FROM w_kt", W).splitlines():
        k, v, s, d, cleared = line.split("\t")
        if cleared == "t":
            # on_delete: clear (the default) keeps the row with the
            # mapping's fields NULL: the source row is gone
            if int(k) in want:
                fail("%s: the wide row %s is cleared, but MariaDB has it: %s" % (what, k, want[int(k)]))
            continue
        got[int(k)] = (int(v), s, None if d == "" else d)
    if got != want:
        diff = [(k, got.get(k), want.get(k)) for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k)]
        fail("%s: the wide table differs from SELECT on MariaDB (%d keys), first %s" % (what, len(diff), diff[:5]))
    ch = pg("SELECT changes FROM autoglm_cdc_offsets WHERE pipeline = '%s'" % PIPE, W).strip()
    if not ch or int(ch) != w.changes:
        fail("%s: the wide sink's offsets count %s changes, the workload made %d (each must be applied "
             "exactly once)" % (what, ch or "no", w.changes))
    log("%s: postgres: wide table equals SELECT (%d rows), %d changes applied once" % (what, len(got), w.changes))


def window_check(envs, ckpts, what):
    """Duplicates only inside the unacknowledged window of a kill: in each
    ordered stream (a Kafka partition, the queue, the MQTT session) a
    restart replays once, from its checkpoint on.  So the duplicates come
    in at most one run of consecutive arrivals per kill, the runs belong
    to distinct kills in kill order, and every change of the run for kill
    i lies after checkpoint i (it was not acknowledged by every sink when
    the process died)."""
    streams = {}
    nruns = 0
    for e in envs:
        streams.setdefault(e.get("_stream", ""), []).append(e)
    for name, es in streams.items():
        seen = set()
        runs = []
        prev_dup = False
        for e in es:
            cid = sinklib.change_id(e)
            dup = cid in seen
            seen.add(cid)
            if dup and not prev_dup:
                runs.append([])
            if dup:
                runs[-1].append(e["source"]["pos"])
            prev_dup = dup
        if len(runs) > len(ckpts):
            fail("%s %s: %d runs of duplicates after %d kills: a restart replayed more than once"
                 % (what, name, len(runs), len(ckpts)))
        nruns += len(runs)
        # run j follows kill j or a later one; the checkpoints only grow,
        # so kill j (the earliest possible) is the most lenient choice
        for j, run in enumerate(runs):
            if min(run) <= ckpts[j]:
                fail("%s %s: duplicate run %d starts at position %d, at or before the checkpoint %d of "
                     "the kill it can follow (checkpoints %s): acknowledged changes were sent again"
                     % (what, name, j + 1, min(run), ckpts[j], ckpts))
    log("%s: %d stream(s), %d replay run(s), each after its kill's checkpoint" % (what, len(streams), nruns))


def replay_check(envs, what):
    """Per key, the arrivals (ranked by binlog position) against 1..n:
    nothing lost, source order, duplicates only as a replay (ledger.check)."""
    ranks = {}
    for e in envs:
        p = e["payload"]
        k = (p["after"] if p["op"] != "d" else p["before"])["id"]
        s = e["source"]
        ranks.setdefault(k, set()).add((s["file"], s["pos"], s["row"]))
    rank = {}
    for k, ids in ranks.items():
        for i, cid in enumerate(sorted(ids)):
            rank[(k, cid)] = i + 1
    pairs = []
    for e in envs:
        p = e["payload"]
        k = (p["after"] if p["op"] != "d" else p["before"])["id"]
        s = e["source"]
        pairs.append((k, rank[(k, (s["file"], s["pos"], s["row"]))]))
    problems, dups = ledger.check({k: list(range(1, n + 1)) for k, n in w.per_key.items()}, pairs)
    if problems:
        fail("%s: the per-key replay check failed:\n  %s" % (what, "\n  ".join(problems[:10])))
    return dups


READERS = (("kafka", kafka), ("rabbitmq", rabbitmq), ("mqtt", mqtt))

# ---- 1. clean run: one read, four sinks --------------------------------------------
w.run(1500)
run_final("clean")
for name, read in READERS:
    envs = read()
    if sinklib.check(envs, w, "clean: " + name):
        fail("clean: %s got duplicates from a run that was not interrupted" % name)
    replay_check(envs, "clean: " + name)
check_wide("clean")

# ---- 2. kill -9 during the workload, then catch up ----------------------------------
ckpt = os.path.join(STATE, PIPE + ".ckpt")
ckpts = sinklib.kill9_loop(CMD, w, ckpt, LOG, procs, kills=KILLS, seed=22)
w.batch(300)
run_final("kill -9 catch-up")
resumed = open(LOG, errors="replace").read().count("resuming from checkpoint")
if resumed < KILLS + 1:
    fail("kill -9: %d runs resumed from the shared checkpoint, expected at least %d" % (resumed, KILLS + 1))
for name, read in READERS:
    envs = read()
    dups = sinklib.check_kill9(envs, w, ckpts, "kill -9: " + name)
    window_check(envs, ckpts, "kill -9: " + name)
    if replay_check(envs, "kill -9: " + name) != dups:
        fail("kill -9: %s: the two duplicate counts disagree" % name)
check_wide("kill -9")
log("one read, four sinks: %d changes, %d kills, nothing lost anywhere, nothing applied twice to the wide "
    "table" % (w.changes, KILLS))
dblib.cleanup(procs, TMP, pg_dbs=[W], my_dbs=[DB])
print("PASS: fan-out to Kafka, RabbitMQ, MQTT and a PostgreSQL wide table from one MariaDB read")
