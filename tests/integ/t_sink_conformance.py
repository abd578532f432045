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
  * at-least-once (sinks that keep every message: kafka, file): per key
    the values of v in delivery order are exactly 1..n, where a replay
    may go back and climb again by one (dblib.check_sequences), and each
    message's note matches its v;
  * exactly-once (wide sinks, which keep the last state and store their
    offset with the data): each key holds its last v and note, with the
    provenance of the transaction that wrote it, and the offsets table
    counted every transaction and change exactly once.
Adding a sink is one entry in SINKS: a target, how to read it back, and
whether it has a server to stop.
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

dblib.need("KAFKA_BOOTSTRAP", "PGPORT", "MYSQL_PORT", what="Kafka, PostgreSQL and MariaDB", tools=("kcat",))
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


def cleanup():
    # a failed outage must not leave a server down for the next test
    for s in ("kafka", "postgres", "mariadb"):
        subprocess.run([dblib.ROOT + "/tests/services.sh", "start", s], capture_output=True)
    dblib.cleanup(PROCS, TMP, pg_dbs=[PDB], my_dbs=[MDB])


dblib.on_fail(cleanup, logdir=TMP, tail=20)


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


WANT, TOTAL = expected()


# ---- the sinks ------------------------------------------------------------------

class Kafka:
    name, service, exactly_once = "kafka", "kafka", False

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

    def state(self):
        got = {}
        for line in self.query("SELECT id, v, note, _provenance FROM %s ORDER BY id" % self.table).splitlines():
            i, v, note, prov = line.split("\t")
            got[int(i)] = (int(v), note, json.loads(prov))
        return got

    def offsets(self, pipeline):
        r = self.query("SELECT txns, changes FROM autoglm_cdc_offsets WHERE pipeline = '%s'" % pipeline).split()
        return (int(r[0]), int(r[1])) if r else (0, 0)


class MyWide(PgWide):
    """The MariaDB wide sink, same mapping."""
    name, service = "mysql", "mariadb"

    def args(self):
        return ["--sink", "mysql", "-X", "mysql_sink.dsn=mysql://root:%s@127.0.0.1:%s/%s"
                % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], MDB), "-X", "mapping.files=" + self.map,
                "-X", "application_id=conf"]

    def query(self, sql):
        return my(sql, MDB)


SINKS = {"kafka": Kafka, "file": File, "postgres": PgWide, "mysql": MyWide}


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
    subprocess.run([dblib.ROOT + "/tests/services.sh", "start", sink.service], check=True, capture_output=True)
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
    names = [s for s in os.environ.get("CDC_CONF_SINKS", ",".join(SINKS)).split(",") if s]
    for n in names:
        if n not in SINKS:
            fail("CDC_CONF_SINKS: no sink %s (have %s)" % (n, ", ".join(SINKS)))
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
