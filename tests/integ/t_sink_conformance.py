#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Sink conformance: the same delivery checks against every sink, through
its ops table (tests/integ/sink_conformance.c runs a seeded generator
source through the real pipeline: batches, acknowledgements, checkpoints,
resume).

For each sink in SINKS, with its own fresh target:
  1. kill -9: the pipeline runs paced, is killed with SIGKILL KILLS times
     at random moments (each time it must still be running), restarted
     from its checkpoint, then run to the end (exit 0);
  2. outage (sinks with a server): the server is stopped mid-run; the
     pipeline either waits and goes on, or exits 69 (sink unavailable)
     and a rerun resumes; then the server comes back and the run ends 0;
then the target is read back and checked:
  * at-least-once (sinks that keep every message: kafka, file, rabbitmq,
    mqtt, http): per key
    the values of v in delivery order are exactly 1..n, where a replay
    may go back and climb again by one (dblib.check_sequences), and each
    message's note matches its v;
  * exactly-once (wide sinks, which keep the last state and store their
    offset with the data): each key holds its last v and note, with the
    provenance of the transaction that wrote it, and the offsets table
    counted every transaction and change exactly once.
Adding a sink is one entry in SINKS: a target, how to read it back, and
whether it has a server to stop (a services.sh service, or its own
stop_server/start_server: the webhook receiver), plus the servers and
tools it needs (needs).
Env: CDC_CONF_TXNS (default 6000), CDC_CONF_KEYS (default 40),
CDC_CONF_KILLS (default 4), CDC_CONF_SINKS (comma list, default all),
CDC_TEST_SEED.  Exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import random
import subprocess
import tempfile
import time

import dblib
from dblib import BUILD, E, fail, log, my, pg

TXNS = int(os.environ.get("CDC_CONF_TXNS", "6000"))
KEYS = int(os.environ.get("CDC_CONF_KEYS", "40"))
KILLS = int(os.environ.get("CDC_CONF_KILLS", "4"))
RATE = max(200, TXNS // 12)  # transactions/s: a paced run lasts about 12 s
PROG = os.path.join(BUILD, "tests/integ/sink_conformance")

if not os.access(PROG, os.X_OK):
    subprocess.run(["make", "-C", BUILD, "tests/integ/sink_conformance"], capture_output=True)
if not os.access(PROG, os.X_OK):
    dblib.skip("%s missing (make -C %s tests/integ/sink_conformance)" % (PROG, BUILD))

SEED = dblib.test_seed()
ID = "%d" % os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-sinkconf-")
PDB = "sinkconf_" + ID
MDB = "sinkconf_" + ID
PROCS = []


SERVICES = {"postgres", "mariadb"}  # and those of the sinks that run


def cleanup():
    # a failed outage must not leave a server down for the next test
    for s in sorted(SERVICES):
        subprocess.run([dblib.ROOT + "/tests/services.sh", "start", s], capture_output=True)
    dblib.cleanup(PROCS, TMP, pg_dbs=[PDB], my_dbs=[MDB])


dblib.on_fail(cleanup, logdir=TMP, tail=20)


NAMES = [n for n in os.environ.get("CDC_CONF_SINKS", "kafka,file,postgres,mysql,rabbitmq,mqtt,http")
         .split(",") if n]


def expected():
    """{key: (last v, commit_us of the key's last change)}, total changes."""
    out = subprocess.run([PROG, "--txns", str(TXNS), "--keys", str(KEYS), "--seed", str(SEED), "--expect"],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    want = {}
    total = None
    for line in out:
        f = line.split()
        if len(f) == 3:
            want[int(f[0])] = (int(f[1]), int(f[2]))
        elif len(f) == 2 and f[0] == "changes":
            total = int(f[1])
    return want, total




# ---- the sinks ------------------------------------------------------------------

class Kafka:
    name, service, exactly_once = "kafka", "kafka", False
    needs = (("KAFKA_BOOTSTRAP",), ("kcat",))

    def __init__(self, tag):
        self.topic = "sinkconf%s.%s" % (ID, tag)

    def args(self):
        return ["--sink", "kafka", "-X", "kafka.brokers=" + E["KAFKA_BOOTSTRAP"], "-X", "kafka.topic=" + self.topic,
                "-X", "kafka.message.timeout.ms=120000", "-X", "kafka.reconnect.backoff.max.ms=1000"]

    def messages(self):
        r = subprocess.run(["kcat", "-b", E["KAFKA_BOOTSTRAP"], "-C", "-t", self.topic, "-o", "beginning", "-e", "-q",
                            "-f", "%s\n"], capture_output=True, text=True)
        if r.returncode:
            fail("kcat %s: %s" % (self.topic, r.stderr))
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


class File:
    name, service, exactly_once = "file", None, False
    needs = ((), ())

    def __init__(self, tag):
        self.path = os.path.join(TMP, "file-%s.jsonl" % tag)

    def args(self):
        return ["--sink", "file", "-X", "output=" + self.path]

    def messages(self):
        out = []
        if not os.path.exists(self.path):
            return out
        for i, line in enumerate(open(self.path)):
            try:
                out.append(json.loads(line))
            except ValueError:
                # a line torn by kill -9 was never acknowledged; but the
                # rest of the file must parse
                fail("%s: line %d is not JSON: %r" % (self.path, i + 1, line[:200]))
        return out


class PgWide:
    """The PostgreSQL wide sink through a one-target mapping."""
    name, service, exactly_once = "postgres", "postgres", True
    needs = (("PGPORT",), ())

    def __init__(self, tag):
        self.table = "w_" + tag
        self.map = os.path.join(TMP, "map-%s.yaml" % tag)
        with open(self.map, "w") as f:
            f.write("""version: 1
sources:
  conf: {}
targets:
  w:
    table: public.%s
    key: id
    fields:
      id: bigint
      v: {type: bigint, owner: conf}
      note: {type: text, owner: conf}
mappings:
  - source: conf
    table: conf.t
    target: w
    key: {id: id}
    fields: {v: v, note: note}
""" % self.table)

    def args(self):
        return ["--sink", "postgres", "-X", "postgres_sink.dsn=" + dblib.pg_dsn(PDB), "-X", "mapping.files=" + self.map,
                "-X", "application_id=conf"]

    def query(self, sql):
        return pg(sql, PDB)

    # PostgreSQL keeps ranks in rank columns and derives the provenance
    # object with <table>_provenance(); MariaDB keeps the _provenance column
    def prov_source(self):
        return "%s_provenance()" % self.table

    def state(self):
        got = {}
        for line in self.query("SELECT id, v, note, _provenance FROM %s ORDER BY id"
                               % self.prov_source()).splitlines():
            i, v, note, prov = line.split("\t")
            got[int(i)] = (int(v), note, json.loads(prov))
        return got

    def offsets(self, pipeline):
        r = self.query("SELECT txns, changes FROM autoglm_cdc_offsets WHERE pipeline = '%s'" % pipeline).split()
        return (int(r[0]), int(r[1])) if r else (0, 0)


class MyWide(PgWide):
    """The MariaDB wide sink, same mapping."""
    name, service = "mysql", "mariadb"
    needs = (("MYSQL_PORT",), ())

    def args(self):
        return ["--sink", "mysql", "-X", "mysql_sink.dsn=mysql://root:%s@127.0.0.1:%s/%s"
                % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], MDB), "-X", "mapping.files=" + self.map,
                "-X", "application_id=conf"]

    def query(self, sql):
        return my(sql, MDB)

    def prov_source(self):
        return self.table


class RabbitMQ:
    """Publisher confirms into a durable exchange; a durable queue bound
    with '#' before the first run holds every message for amqp_consume."""
    name, service, exactly_once = "rabbitmq", "rabbitmq", False
    needs = (("RMQ_URL",), ())

    def __init__(self, tag):
        self.ex = self.q = "sinkconf%s_%s" % (ID, tag)
        self.prog = os.path.join(BUILD, "tests/integ/amqp_consume")
        if not os.access(self.prog, os.X_OK):
            subprocess.run(["make", "-C", BUILD, "tests/integ/amqp_consume"], capture_output=True)
        r = subprocess.run([self.prog, E["RMQ_URL"], self.ex, self.q, "#", "declare"],
                           capture_output=True, text=True)
        if r.returncode:
            fail("amqp_consume declare %s: %s" % (self.q, r.stderr))

    def args(self):
        return ["--sink", "rabbitmq", "-X", "rabbitmq.url=" + E["RMQ_URL"], "-X", "rabbitmq.exchange=" + self.ex,
                "-X", "rabbitmq.reconnect_timeout_ms=120000"]

    def messages(self):
        r = subprocess.run([self.prog, E["RMQ_URL"], self.ex, self.q, "#", "drain", "3000"],
                           capture_output=True, text=True)
        if r.returncode:
            fail("amqp_consume drain %s: %s" % (self.q, r.stderr))
        return [json.loads(json.loads(l)["body"]) for l in r.stdout.splitlines() if l.strip()]


class Mqtt:
    """QoS 1 into Mosquitto (persistence on); a persistent QoS 1 session
    subscribed before the first run keeps every message for mosquitto_sub."""
    name, service, exactly_once = "mqtt", "mosquitto", False
    needs = (("MQ_PORT",), ("mosquitto_sub",))

    def __init__(self, tag):
        self.topic = "sinkconf%s/%s" % (ID, tag)
        self.cid = "sub-sinkconf%s-%s" % (ID, tag)
        self.auth = ["-h", "127.0.0.1", "-p", E["MQ_PORT"], "-u", E["MQ_USER"], "-P", E["MQ_PASSWORD"]]
        r = subprocess.run(["mosquitto_sub"] + self.auth + ["-c", "-i", self.cid, "-q", "1", "-t",
                                                            self.topic + "/#", "-E"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode:
            fail("mosquitto_sub register %s: %s" % (self.cid, r.stderr))

    def args(self):
        return ["--sink", "mqtt", "-X", "mqtt.port=" + E["MQ_PORT"], "-X", "mqtt.user=" + E["MQ_USER"],
                "-X", "mqtt.password=" + E["MQ_PASSWORD"], "-X", "mqtt.topic=" + self.topic + "/{table}",
                "-X", "mqtt.reconnect_timeout_ms=120000"]

    def messages(self):
        # the session's queue arrives at once; -W ends the read after it
        r = subprocess.run(["mosquitto_sub"] + self.auth + ["-c", "-i", self.cid, "-q", "1", "-t",
                                                            self.topic + "/#", "-W", "10"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode not in (0, 27):  # 27: -W ran out, the normal end here
            fail("mosquitto_sub %s: exit %d %s" % (self.cid, r.returncode, r.stderr))
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


class Http:
    """Batches POSTed to tests/integ/webhook_recv.py on a fixed port; its
    outage is the receiver killed and started again on the same port."""
    name, service, exactly_once = "http", "webhook receiver", False
    needs = ((), ())

    def __init__(self, tag):
        self.port = str(dblib.free_port())
        self.reqlog = os.path.join(TMP, "http-%s.requests" % tag)
        self.proc = None
        self.start_server()

    def start_server(self):
        pf = os.path.join(TMP, "http-%s.port" % self.port)
        if os.path.exists(pf):
            os.unlink(pf)
        self.proc = subprocess.Popen(["python3", os.path.join(dblib.ROOT, "tests/integ/webhook_recv.py"), pf,
                                      self.reqlog], env=dict(os.environ, WEBHOOK_PORT=self.port))
        PROCS.append(self.proc)
        for _ in range(200):
            if os.path.exists(pf):
                return
            time.sleep(0.05)
        fail("webhook_recv did not start on port %s" % self.port)

    def stop_server(self):
        if self.proc.poll() is not None:
            fail("the webhook receiver had exited (%s) before its outage" % self.proc.returncode)
        self.proc.terminate()  # between two log lines (webhook_recv.py)
        if self.proc.wait(timeout=30) != 0:
            fail("the webhook receiver exited %s on SIGTERM" % self.proc.returncode)

    def args(self):
        return ["--sink", "http", "-X", "webhook.url=http://127.0.0.1:%s/hook/{table}" % self.port,
                "-X", "webhook.batch=20", "-X", "webhook.linger_ms=20", "-X", "webhook.retry_max_backoff_ms=1000",
                "-X", "webhook.retry_timeout_ms=120000"]

    def messages(self):
        reqs = [json.loads(l) for l in open(self.reqlog)] if os.path.exists(self.reqlog) else []
        out = []
        for r in sorted(reqs, key=lambda r: r["t"]):
            if r["status"] == 200:
                out += json.loads(r["body"])
        return out


SINKS = {"kafka": Kafka, "file": File, "postgres": PgWide, "mysql": MyWide, "rabbitmq": RabbitMQ,
         "mqtt": Mqtt, "http": Http}
for _n in NAMES:
    if _n not in SINKS:
        fail("CDC_CONF_SINKS: no sink %s (have %s)" % (_n, ", ".join(SINKS)))
dblib.need("PGPORT", "MYSQL_PORT", *sorted({k for n in NAMES for k in SINKS[n].needs[0]}),
           what="the servers of the sinks %s" % ", ".join(NAMES),
           tools=tuple(sorted({t for n in NAMES for t in SINKS[n].needs[1]})))
SERVICES |= {SINKS[n].service for n in NAMES if SINKS[n].service in ("kafka", "rabbitmq", "mosquitto")}
WANT, TOTAL = expected()


# ---- running the pipeline --------------------------------------------------------

def start(sink, pipeline, paced=True):
    state = os.path.join(TMP, "state-" + pipeline)
    logf = open(os.path.join(TMP, pipeline + ".log"), "ab")
    cmd = [PROG, "--txns", str(TXNS), "--keys", str(KEYS), "--seed", str(SEED)] + \
        (["--rate", str(RATE)] if paced else []) + sink.args() + \
        ["-X", "pipeline.name=" + pipeline, "-X", "state.dir=" + state, "-X", "checkpoint.interval_ms=200"]
    p = subprocess.Popen(cmd, stdout=logf, stderr=logf)
    PROCS.append(p)
    return p


def finish(sink, pipeline, what):
    """Run unpaced to the end: exit 0."""
    p = start(sink, pipeline, paced=False)
    try:
        rc = p.wait(timeout=300)
    except subprocess.TimeoutExpired:
        fail("%s %s: the final run did not end within 300 s" % (sink.name, what))
    if rc != 0:
        fail("%s %s: the final run exited %d" % (sink.name, what, rc))


def log_lines(pipeline):
    return open(os.path.join(TMP, pipeline + ".log"), errors="replace").read()


def started(pipeline, n):
    return log_lines(pipeline).count("sink_conformance: source starts at") >= n


def kill9_phase(sink, rnd):
    pipeline = "k9_%s_%s" % (sink.name, ID)
    p = start(sink, pipeline)
    for k in range(KILLS):
        time.sleep(rnd.uniform(0.5, 2.0))
        dblib.kill9(p, "%s pipeline (kill %d)" % (sink.name, k + 1))
        p = start(sink, pipeline)
    time.sleep(rnd.uniform(0.5, 2.0))
    dblib.kill9(p, "%s pipeline (last kill)" % sink.name)
    finish(sink, pipeline, "kill -9")
    starts = log_lines(pipeline).count("sink_conformance: source starts at")
    resumed = log_lines(pipeline).count("resuming from checkpoint")
    if starts != KILLS + 2 or resumed < 1:
        fail("%s: %d runs, %d resumed from a checkpoint" % (sink.name, starts, resumed))
    log("%s: %d runs, %d resumed from a checkpoint" % (sink.name, starts, resumed))
    return pipeline


def outage_phase(sink, rnd):
    """Stop the sink's server mid-run.  Returns what the pipeline did."""
    pipeline = "out_%s_%s" % (sink.name, ID)
    p = start(sink, pipeline)
    time.sleep(rnd.uniform(1.0, 2.5))
    if p.poll() is not None:
        fail("%s: the pipeline ended (%s) before the outage" % (sink.name, p.returncode))
    if hasattr(sink, "stop_server"):
        sink.stop_server()
    else:
        subprocess.run([dblib.ROOT + "/tests/services.sh", "stop", sink.service], check=True, capture_output=True)
    t0 = time.time()
    while time.time() - t0 < 8 and p.poll() is None:
        time.sleep(0.2)
    if p.poll() is None:
        how = "waited through the outage"
    elif p.returncode == 69:
        how = "exited 69 (sink unavailable) during the outage"
    else:
        fail("%s: during the outage the pipeline exited %d, not 69: %s"
             % (sink.name, p.returncode, log_lines(pipeline)[-1500:]))
    if hasattr(sink, "start_server"):
        sink.start_server()
    else:
        subprocess.run([dblib.ROOT + "/tests/services.sh", "start", sink.service], check=True,
                       capture_output=True)
    if p.returncode is None:
        try:
            rc = p.wait(timeout=300)
        except subprocess.TimeoutExpired:
            fail("%s: the pipeline did not end within 300 s after the outage" % sink.name)
        if rc not in (0, 69):
            fail("%s: after the outage the pipeline exited %d" % (sink.name, rc))
    finish(sink, pipeline, "outage")
    return pipeline, how


# ---- the checks --------------------------------------------------------------------

def check_at_least_once(sink, what):
    msgs = sink.messages()
    seqs = {}
    bad = []
    for m in msgs:
        a = m["payload"]["after"]
        seqs.setdefault(a["id"], []).append(a["v"])
        if a["note"] != "k%d v%d" % (a["id"], a["v"]):
            bad.append(a)
    errs = dblib.check_sequences(seqs, {k: v for k, (v, _) in WANT.items()})
    errs += ["wrong note: %s" % b for b in bad[:5]]
    if errs:
        fail("%s %s: not at-least-once in order:\n  %s" % (sink.name, what, "\n  ".join(errs[:10])))
    log("%s %s: %d messages for %d changes (%d replayed), every key exactly 1..n"
        % (sink.name, what, len(msgs), TOTAL, len(msgs) - TOTAL))


def check_exactly_once(sink, what, pipeline):
    got = sink.state()
    errs = []
    for k, (v, at) in sorted(WANT.items()):
        if k not in got:
            errs.append("key %d missing" % k)
            continue
        gv, note, prov = got[k]
        if gv != v or note != "k%d v%d" % (k, v):
            errs.append("key %d: v=%d note=%r, want %d" % (k, gv, note, v))
        for f in ("v", "note"):
            if prov.get(f, {}).get("t") != at or prov[f].get("s") != "conf":
                errs.append("key %d: provenance of %s %s, want t=%d" % (k, f, prov.get(f), at))
    errs += ["unexpected key %d" % k for k in got if k not in WANT]
    txns, changes = sink.offsets(pipeline)
    if (txns, changes) != (TXNS, TOTAL):
        errs.append("offsets table counted %d transactions, %d changes; the workload has %d, %d"
                    % (txns, changes, TXNS, TOTAL))
    if errs:
        fail("%s %s: not exactly-once:\n  %s" % (sink.name, what, "\n  ".join(errs[:10])))
    log("%s %s: every key at its last value with its provenance; %d transactions and %d changes applied once"
        % (sink.name, what, TXNS, TOTAL))


def check(sink, what, pipeline):
    if sink.exactly_once:
        check_exactly_once(sink, what, pipeline)
    else:
        check_at_least_once(sink, what)


def main():
    pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
    my("CREATE DATABASE %s" % MDB)
    log("workload: %d transactions, %d changes on %d keys, paced at %d/s" % (TXNS, TOTAL, KEYS, RATE))
    names = NAMES
    rnd = random.Random(SEED)
    for n in names:
        sink = SINKS[n]("k9")
        pipeline = kill9_phase(sink, rnd)
        check(sink, "kill -9 x%d" % (KILLS + 1), pipeline)
        if sink.service:
            sink = SINKS[n]("out")
            pipeline, how = outage_phase(sink, rnd)
            log("%s outage: %s" % (n, how))
            check(sink, "outage", pipeline)
        else:
            log("%s: no server, no outage phase" % n)
    cleanup()
    print("ok - sinks %s: kill -9 and outages, per-key order and values" % ", ".join(names))


main()
