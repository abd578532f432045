#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Debezium transaction metadata of a transaction that comes in fragments
(issue 20): MariaDB -> Kafka, --format debezium,
debezium.provide.transaction.metadata=true, pipeline.fragment_rows=300.

One transaction (seeded sizes, several times a fragment) updates table a,
then table b, then inserts into a again, between two small transactions:

  whole   one run: the transaction topic holds one BEGIN and one END for
          it; END's event_count is all its changes and data_collections
          counts each table (a first, as first seen); its events carry one
          id, total_order 1..n in binlog order (file, pos, row) and
          data_collection_order 1..n_table per table in that order, across
          every fragment.  The small transactions around it: BEGIN, END
          and numbering of their own.
  kill    a second pipeline (its own topics) is killed with SIGKILL while
          the transaction is being delivered (a third of it read, its end
          not checkpointed), then restarted: every change of the
          transaction is there with exactly the numbering of the whole
          run, a duplicate carries the same numbering as its first copy,
          and there is exactly one END, with the whole counts.
  file    the file sink (--format debezium, the same setting): the same
          transaction blocks as the whole run's, change by change.
  http, mqtt, rabbitmq
          the message sinks (the same setting; HTTP batches of 500
          changes, so a batch holds the end of one fragment and the start
          of the next): the same transaction blocks as the whole run's.

Env: CDC_TEST_SEED, CDC_BIGTXN_DBZ_ROWS (default 2000: rows of table a).
Exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import random
import subprocess
import tempfile
import time
import urllib.request

import dblib
from dblib import BIN, E, fail, log, my

dblib.need("MYSQL_PORT", "KAFKA_BOOTSTRAP", "RMQ_URL", "MQ_PORT", what="MariaDB, Kafka, RabbitMQ and Mosquitto",
           tools=("kcat", "mosquitto_sub"))
SEED = dblib.test_seed()
rnd = random.Random(SEED)
NA = int(os.environ.get("CDC_BIGTXN_DBZ_ROWS", "2000"))
NB = rnd.randint(NA // 4, NA // 2)
NI = rnd.randint(50, 400)
FRAG = 300
ID = "%d" % os.getpid()
DB = "bdm_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-bigtxn-dbz.")
PROCS = []


def cleanup():
    dblib.cleanup(PROCS, TMP, my_dbs=[DB])


dblib.on_fail(cleanup, logdir=TMP)
log("seed %d: a %d rows, b %d rows, %d inserts, fragments of %d" % (SEED, NA, NB, NI, FRAG))
DSN = "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"])


def binlog_pos():
    f, p = my("SHOW MASTER STATUS").split()[:2]
    return f, int(p)


my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s" % (DB, DB))
for t, n in (("a", NA), ("b", NB)):
    my("CREATE TABLE %s.%s (id INT PRIMARY KEY, v BIGINT NOT NULL, pad VARCHAR(80));"
       "INSERT INTO %s.%s SELECT seq, 1, REPEAT('p', 60) FROM %s.seq_1_to_%d" % (DB, t, DB, t, DB, n))
f0, p0 = binlog_pos()
my("UPDATE %s.b SET v = 5 WHERE id = 1" % DB)                      # small, before
f1, p1 = binlog_pos()
my("BEGIN; UPDATE %s.a SET v = 2; UPDATE %s.b SET v = 2; "
   "INSERT INTO %s.a SELECT %d + seq, 3, 'i' FROM %s.seq_1_to_%d; COMMIT"
   % (DB, DB, DB, NA, DB, NI))                                        # the big one
f2, p2 = binlog_pos()
my("UPDATE %s.b SET v = 6 WHERE id = 2" % DB)                      # small, after
BIG = NA + NB + NI


def cmd(app, extra=()):
    return [BIN, "--source", "mysql", "--mysql-dsn", DSN, "--include", DB + ".*",
            "--from", "%s:%d" % (f0, p0), "--pipeline", app, "--application-id", app,
            "--state-dir", os.path.join(TMP, "state"), "-X", "checkpoint.interval_ms=200",
            "-X", "mysql.server_id=%d" % (9300 + int(ID) % 600 * 6 + "wkfhqr".index(app[-1])),
            "--sink", "kafka", "--kafka-brokers", E["KAFKA_BOOTSTRAP"], "--format", "debezium",
            "-X", "debezium.provide.transaction.metadata=true",
            "-X", "pipeline.fragment_rows=%d" % FRAG] + list(extra)


def kcat(topic):
    out = subprocess.run(["kcat", "-b", E["KAFKA_BOOTSTRAP"], "-C", "-t", topic, "-o", "beginning", "-e",
                          "-q", "-f", "%s\n"], capture_output=True, text=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def events(app):
    """[(ident, table, transaction block, after)] of the data topics."""
    out = []
    for t in ("a", "b"):
        for e in kcat("%s.%s.%s" % (app, DB, t)):
            if e is None:
                continue
            s = e["source"]
            out.append(((s["file"], s["pos"], s["row"]), s["table"], e["transaction"], e["after"]))
    return out


def in_big(ident):
    return (f1, p1) <= (ident[0], ident[1]) < (f2, p2)


def run_done(p, what, logf):
    rc = p.wait(timeout=300)
    if rc != 0:
        fail("%s exited %d (log %s)" % (what, rc, logf.name))


def check_whole(app):
    """The checks of a complete delivery; returns {ident: (total_order,
    data_collection_order, id)} of the big transaction."""
    evs = events(app)
    big = {}
    for ident, tbl, tb, after in evs:
        if not in_big(ident):
            continue
        num = (tb["total_order"], tb["data_collection_order"], tb["id"], tbl)
        if ident in big and big[ident] != num:
            fail("%s: %s numbered %s and %s" % (app, ident, big[ident], num))
        big[ident] = num
    if len(big) != BIG:
        fail("%s: %d changes of the big transaction, want %d" % (app, len(big), BIG))
    ids = {n[2] for n in big.values()}
    if len(ids) != 1:
        fail("%s: the big transaction's events carry %d ids: %s" % (app, len(ids), sorted(ids)[:4]))
    tid = ids.pop()
    order = sorted(big)                                  # binlog order
    if [big[i][0] for i in order] != list(range(1, BIG + 1)):
        fail("%s: total_order is not 1..%d in binlog order across the fragments" % (app, BIG))
    per = {"a": 0, "b": 0}
    for i in order:
        per[big[i][3]] += 1
        if big[i][1] != per[big[i][3]]:
            fail("%s: %s of table %s has data_collection_order %d, want %d"
                 % (app, i, big[i][3], big[i][1], per[big[i][3]]))
    if per != {"a": NA + NI, "b": NB}:
        fail("%s: per table %s, want a %d, b %d" % (app, per, NA + NI, NB))
    # the small ones: one change each, their own numbering
    small = [(i, tb) for i, _, tb, _ in evs if not in_big(i)]
    if len({i for i, _ in small}) != 2:
        fail("%s: the small transactions: %s" % (app, small))
    for i, tb in small:
        if tb["total_order"] != 1 or tb["data_collection_order"] != 1 or tb["id"] == tid:
            fail("%s: small transaction %s numbered %s" % (app, i, tb))
    meta = kcat(app + ".transaction")
    mine = [m for m in meta if m["id"] == tid]
    begins = [m for m in mine if m["status"] == "BEGIN"]
    ends = [m for m in mine if m["status"] == "END"]
    want_dc = [{"data_collection": DB + ".a", "event_count": NA + NI},
               {"data_collection": DB + ".b", "event_count": NB}]
    if len(ends) != 1 or ends[0]["event_count"] != BIG or ends[0]["data_collections"] != want_dc:
        fail("%s: END events of the big transaction: %s, want one with event_count %d and %s"
             % (app, ends, BIG, want_dc))
    others = [m for m in meta if m["id"] != tid]
    if sorted(m["status"] for m in others) != ["BEGIN", "BEGIN", "END", "END"]:
        fail("%s: BEGIN/END of the small transactions: %s" % (app, others))
    for m in others:
        if m["status"] == "END" and m["event_count"] != 1:
            fail("%s: END of a small transaction: %s" % (app, m))
    return big, len(begins)


# ---- whole: one run ---------------------------------------------------------
app1 = "bdm%sw" % ID
logf = open(os.path.join(TMP, "whole.log"), "ab")
p = subprocess.Popen(cmd(app1, ["--idle-exit", "3000"]), stdout=logf, stderr=logf)
PROCS.append(p)
run_done(p, "the whole run", logf)
num1, nbegin = check_whole(app1)
if nbegin != 1:
    fail("whole run: %d BEGIN events of the big transaction, want 1" % nbegin)
log("whole: one BEGIN, one END of %d changes in %d+ fragments, numbering continues across them"
    % (BIG, BIG // FRAG))


# ---- file sink: the same numbering in its transaction blocks ----------------
app3 = "bdm%sf" % ID
outf = os.path.join(TMP, "file.jsonl")
fcmd = [a for a in cmd(app3, ["--idle-exit", "3000"])]
i = fcmd.index("--sink")
fcmd[i:i + 4] = ["--sink", "file", "-o", outf]
logf = open(os.path.join(TMP, "file.log"), "ab")
p = subprocess.Popen(fcmd, stdout=logf, stderr=logf)
PROCS.append(p)
run_done(p, "the file run", logf)
num3 = {}
for line in open(outf):
    e = json.loads(line)
    s = e["source"]
    ident = (s["file"], s["pos"], s["row"])
    if in_big(ident):
        tb = e["transaction"]
        num3[ident] = (tb["total_order"], tb["data_collection_order"], tb["id"], s["table"])
if num3 != num1:
    bad = [i for i in num1 if num1[i] != num3.get(i)][:5]
    fail("file sink: transaction blocks differ from the Kafka sink's at %s (%d of %d changes)"
         % (bad, len(num3), BIG))
log("file sink: the same transaction blocks")


# ---- the message sinks: HTTP, MQTT, RabbitMQ ---------------------------------
def sink_run(tag, sink_args):
    app = "bdm%s%s" % (ID, tag)
    c = cmd(app, ["--idle-exit", "3000"])
    i = c.index("--sink")
    c[i:i + 4] = sink_args
    logf = open(os.path.join(TMP, "%s.log" % app), "ab")
    p = subprocess.Popen(c, stdout=logf, stderr=logf)
    PROCS.append(p)
    run_done(p, "the %s run" % tag, logf)


def same_blocks(what, envs):
    """The envelopes' transaction blocks of the big transaction equal the
    Kafka run's, change by change (a duplicate must repeat its numbering)."""
    num = {}
    for e in envs:
        if e is None:
            continue
        s = e["source"]
        ident = (s["file"], s["pos"], s["row"])
        if not in_big(ident):
            continue
        tb = e["transaction"]
        n = (tb["total_order"], tb["data_collection_order"], tb["id"], s["table"])
        if num.setdefault(ident, n) != n:
            fail("%s: %s numbered %s and %s" % (what, ident, num[ident], n))
    if num != num1:
        bad = sorted(i for i in num1 if num1[i] != num.get(i))[:3]
        fail("%s: transaction blocks differ from the Kafka sink's at %s (%d of %d changes): %s"
             % (what, bad, len(num), BIG, [(num1[i], num.get(i)) for i in bad]))
    log("%s sink: the same transaction blocks" % what)


# HTTP: batches of 500 changes, so one request spans two fragments
hport = str(dblib.free_port())
reqlog = os.path.join(TMP, "http.requests")
pf = os.path.join(TMP, "http.port")
hp = subprocess.Popen(["python3", os.path.join(dblib.ROOT, "tests/integ/webhook_recv.py"), pf, reqlog],
                      env=dict(os.environ, WEBHOOK_PORT=hport))
PROCS.append(hp)
t0 = time.time()
while not os.path.exists(pf):
    if hp.poll() is not None or time.time() - t0 > 30:
        fail("webhook_recv did not start on port %s" % hport)
    time.sleep(0.05)
sink_run("h", ["--sink", "http", "-X", "webhook.url=http://127.0.0.1:%s/hook" % hport,
               "-X", "webhook.batch=500", "-X", "webhook.linger_ms=200"])
envs = []
for r in (json.loads(l) for l in open(reqlog)):
    if r["status"] == 200:
        envs += json.loads(r["body"])
same_blocks("http", envs)

# MQTT: a persistent QoS 1 session subscribed before the run keeps every
# message
mtopic = "bdm%s" % ID
mcid = "sub-bdm%s" % ID
mauth = ["-h", "127.0.0.1", "-p", E["MQ_PORT"], "-u", E["MQ_USER"], "-P", E["MQ_PASSWORD"]]
r = subprocess.run(["mosquitto_sub"] + mauth + ["-c", "-i", mcid, "-q", "1", "-t", mtopic + "/#", "-E"],
                   capture_output=True, text=True, timeout=30)
if r.returncode:
    fail("mosquitto_sub register %s: %s" % (mcid, r.stderr))
sink_run("q", ["--sink", "mqtt", "-X", "mqtt.port=" + E["MQ_PORT"], "-X", "mqtt.user=" + E["MQ_USER"],
               "-X", "mqtt.password=" + E["MQ_PASSWORD"], "-X", "mqtt.topic=" + mtopic + "/{table}"])
r = subprocess.run(["mosquitto_sub"] + mauth + ["-c", "-i", mcid, "-q", "1", "-t", mtopic + "/#", "-W", "10"],
                   capture_output=True, text=True, timeout=60)
if r.returncode not in (0, 27):  # 27: -W ran out, the normal end here
    fail("mosquitto_sub %s: exit %d %s" % (mcid, r.returncode, r.stderr))
same_blocks("mqtt", [json.loads(l) for l in r.stdout.splitlines() if l.strip()])

# RabbitMQ: a durable queue bound with '#' before the run
prog = os.path.join(dblib.BUILD, "tests/integ/amqp_consume")
if not os.access(prog, os.X_OK):
    dblib.skip("%s missing (make -C %s tests/integ/amqp_consume)" % (prog, dblib.BUILD))
rq = "bdm%s" % ID
r = subprocess.run([prog, E["RMQ_URL"], rq, rq, "#", "declare"], capture_output=True, text=True)
if r.returncode:
    fail("amqp_consume declare %s: %s" % (rq, r.stderr))
sink_run("r", ["--sink", "rabbitmq", "-X", "rabbitmq.url=" + E["RMQ_URL"], "-X", "rabbitmq.exchange=" + rq])
r = subprocess.run([prog, E["RMQ_URL"], rq, rq, "#", "drain", "3000"], capture_output=True, text=True)
if r.returncode:
    fail("amqp_consume drain %s: %s" % (rq, r.stderr))
same_blocks("rabbitmq", [json.loads(json.loads(l)["body"]) for l in r.stdout.splitlines() if l.strip()])


# ---- kill -9 inside the transaction, then the replay -------------------------
def events_read(port):
    try:
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2).read().decode()
    except OSError:
        return 0
    key = 'autoglm_cdc_source_events_total{table="%s.a",op="u"} ' % DB
    for line in body.splitlines():
        if line.startswith(key):
            return int(line.split()[-1])
    return 0


def ck_pos(app):
    ck = {}
    path = os.path.join(TMP, "state", app + ".ckpt")
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                ck[k] = v
    return ck.get("file", ""), int(ck.get("offset", "0"))


app2 = "bdm%sk" % ID
port = dblib.free_port()
logf = open(os.path.join(TMP, "kill.log"), "ab")
# a slow producer (100 messages per 100 ms) and 4 fragments in flight: the
# kill comes while the transaction is being delivered
p = subprocess.Popen(cmd(app2, ["--http", "127.0.0.1:%d" % port, "-X", "pipeline.max_inflight=4",
                                "-X", "kafka.queue.buffering.max.messages=100", "-X", "kafka.linger.ms=100"]),
                     stdout=logf, stderr=logf)
PROCS.append(p)
t0 = time.time()
while events_read(port) < NA // 3:
    if p.poll() is not None:
        fail("kill run exited %s before a third of the transaction was read" % p.returncode)
    if time.time() - t0 > 120:
        fail("kill run: a third of the transaction not read within 120 s")
    time.sleep(0.02)
dblib.kill9(p, "autoglm-cdc (kill run, log %s)" % logf.name)
ck = ck_pos(app2)
if ck >= (f2, p2):
    fail("kill run: the checkpoint %s:%d passed the big transaction before the kill (%s:%d): "
         "nothing was killed inside it" % (ck + (f2, p2)))
p = subprocess.Popen(cmd(app2, ["--idle-exit", "3000"]), stdout=logf, stderr=logf)
PROCS.append(p)
run_done(p, "the restart", logf)
num2, nbegin = check_whole(app2)
strip = lambda d: {i: n[:2] + n[3:] for i, n in d.items()}          # ids: same GTID
if strip(num2) != strip(num1):
    bad = [i for i in num1 if num1[i] != num2.get(i)][:5]
    fail("kill run: numbering after the replay differs from the whole run at %s" % bad)
if not 1 <= nbegin <= 2:
    fail("kill run: %d BEGIN events of the big transaction (one per run at most)" % nbegin)
log("kill -9 inside the transaction, replay: the same numbering, one END with the whole counts, "
    "%d BEGIN" % nbegin)
cleanup()
print("PASS")
