#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Fan-out: one MariaDB read feeding Kafka and a PostgreSQL wide table
(`sinks: [kafka, postgres]`), under kill -9 and with one sink stopped.

The workload (ledger.Workload: per key the values 1, 2, 3, ... in
transactions of 1-5 changes, seeded by CDC_TEST_SEED) runs while
autoglm-cdc is started and killed with SIGKILL at random moments KILLS
times, then runs once more until idle (exit 0).  Then:
  * Kafka: per key the values are exactly 1..n in order; a duplicate is
    only a replay of a window that was not acknowledged yet (ledger.check);
  * the wide table equals SELECT on MariaDB;
  * no duplicate effects: the sink's offsets table counted every change of
    the workload exactly once (a change applied twice after a restart
    would count twice), and the log shows that the PostgreSQL sink skipped
    transactions it already had after a restart (it is ahead of the
    shared checkpoint, which is the minimum over the sinks);
  * every run of the pipeline resumed from the shared checkpoint.
Second case: PostgreSQL is stopped for 30 s mid-run; the process never
exits: the wide sink reconnects in place with backoff
(postgres_sink.reconnect_timeout_ms), Kafka goes on up to the bounded
buffer (pipeline.max_inflight=200 transactions) ahead of it and then
stalls (back-pressure); once PostgreSQL is back the same process catches
up: nothing lost in either sink, the wide table equals SELECT, each change
counted once (the batch cut by the stop is applied again through the
offsets table, exactly once).
Third case: PostgreSQL frozen (SIGSTOP of its processes) for 30 s: the
pipeline stays up, Kafka goes on but never more than the bounded buffer
(pipeline.max_inflight=200 transactions) ahead of the frozen sink, then the
source waits; after SIGCONT both catch up: nothing lost, nothing applied
twice.  /status, /metrics and `status` show each sink.
Fourth case: PostgreSQL stopped past postgres_sink.reconnect_timeout_ms
(3 s): exit 69 naming the key, and the next run catches up exactly once.
Env: CDC_FANOUT_KILLS (default 6), CDC_FANOUT_STOP_S (default 30),
CDC_TEST_SEED.  Exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import signal
import urllib.request
import random
import subprocess
import time

import dblib
import faultlib
import ledger
from dblib import BIN, E, fail, log, my, pg

KILLS = int(os.environ.get("CDC_FANOUT_KILLS", "6"))
STOP_S = float(os.environ.get("CDC_FANOUT_STOP_S", "30"))

dblib.need("MYSQL_PORT", "PGPORT", "KAFKA_BOOTSTRAP", what="MariaDB, PostgreSQL and Kafka", tools=("kcat",))

SEED = dblib.test_seed()
ID = "%d" % os.getpid()
SRC = "fosrc_" + ID
W = "fow_" + ID
TMP = faultlib.scratch("cdc-fanout")
PROCS = []


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[W], my_dbs=[SRC])


dblib.on_fail(cleanup, logdir=TMP, tail=30)
my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s" % (SRC, SRC))
pg("CREATE DATABASE %s OWNER %s" % (W, E["PGUSER"]), "postgres", superuser=True)


def pipeline_cmd(case, table, start):
    """The fan-out pipeline of one case: MariaDB table -> Kafka topic
    fo<ID>.<case> and wide table w_<case>."""
    pipe = "fo_%s_%s" % (case, ID)
    mapf = os.path.join(TMP, case + ".map.yaml")
    dblib.wide_mapping(mapf, pipe, "w_" + case, "pg", "%s.%s" % (SRC, table), "m_" + case,
                       {"v": ("bigint", "v")})
    args = dblib.wide_args(pipe, os.path.join(TMP, "state"), mapf, "my", "pg", W, start=start,
                           include="%s.%s" % (SRC, table))
    # the wide args name one sink: the fan-out names both instead
    i = args.index("--sink")
    del args[i:i + 2]
    i = args.index("--idle-exit")
    del args[i:i + 2]
    args += ["-X", "sinks=kafka,postgres", "--kafka-brokers", E["KAFKA_BOOTSTRAP"],
             "--topic", "fo%s.%s" % (ID, case), "-X", "checkpoint.interval_ms=200",
             "-X", "pipeline.max_inflight=200"]
    return pipe, args


def start_pos():
    f, p = my("SHOW BINLOG STATUS").split("\t")[:2]
    return "%s:%s" % (f, p.strip())


def kafka_pairs(case):
    out = subprocess.run(["kcat", "-b", E["KAFKA_BOOTSTRAP"], "-C", "-t", "fo%s.%s" % (ID, case),
                          "-o", "beginning", "-e", "-q", "-f", "%s\n"],
                         capture_output=True, text=True, check=True).stdout
    return ledger.pairs_from_envelopes(out.splitlines(keepends=True))


def check_case(case, pipe, table, w, logpath):
    """Both sinks against the ledger and MariaDB; returns the duplicates
    Kafka got."""
    problems, dups = ledger.check(w.expected, kafka_pairs(case))
    if problems:
        fail("%s: Kafka does not hold the ledger:\n  %s" % (case, "\n  ".join(problems[:10])))
    src = dict((int(a), int(b)) for a, b in (line.split("\t") for line in
                                            my("SELECT id, v FROM %s" % table, SRC).splitlines()))
    want = {k: len(vs) for k, vs in w.expected.items()}
    if src != want:
        fail("%s: SELECT on MariaDB differs from the ledger (the workload failed)" % case)
    wide = dict((int(a), int(b)) for a, b in (line.split("\t") for line in
                                             pg("SELECT k, v FROM w_%s" % case, W).splitlines()))
    if wide != src:
        diff = sorted(k for k in set(wide) | set(src) if wide.get(k) != src.get(k))[:5]
        fail("%s: the wide table differs from SELECT on MariaDB for keys %s" % (case, diff))
    ch = pg("SELECT changes FROM autoglm_cdc_offsets WHERE pipeline = '%s'" % pipe, W).strip()
    if not ch or int(ch) != w.total():
        fail("%s: the wide sink's offsets count %s changes, the workload made %d (each must be "
             "applied exactly once)" % (case, ch or "no", w.total()))
    return dups


def run_final(args, logpath, what):
    rc, out = dblib.run_exit(args + ["--idle-exit", "3000"], logpath, PROCS, timeout=300)
    if rc != 0:
        fail("%s: the final catch-up run exited %d" % (what, rc))
    return out


# ---- case 1: kill -9 during a random workload ------------------------------------

rnd = random.Random(SEED)
my("CREATE TABLE %s.k9 (id INT PRIMARY KEY, v BIGINT NOT NULL)" % SRC)
pipe, args = pipeline_cmd("k9", "k9", start_pos())
logpath = os.path.join(TMP, "k9.log")
writer = faultlib.AckWriter(dblib.my_args(SRC) + ["-n"], PROCS)
w = ledger.Workload(writer.write, table="k9", keys=300, seed=SEED)
logf = open(logpath, "ab")
cdc = subprocess.Popen(args, stdout=logf, stderr=logf)
PROCS.append(cdc)
kills = 0
while kills < KILLS:
    until = time.time() + rnd.uniform(0.8, 2.5)
    while time.time() < until:
        w.step(rnd.randint(1, 5))
        time.sleep(0.003)
    dblib.kill9(cdc, "autoglm-cdc (kill %d, log %s)" % (kills + 1, logpath))
    kills += 1
    w.step(rnd.randint(1, 5))  # written while it is down
    cdc = subprocess.Popen(args, stdout=logf, stderr=logf)
    PROCS.append(cdc)
w.run_for(1.0)
writer.close()
dblib.kill9(cdc, "autoglm-cdc (last kill, log %s)" % logpath)
out = run_final(args, logpath, "k9")
dups = check_case("k9", pipe, "k9", w, logpath)
resumed = out.count("resuming from checkpoint")
if resumed < KILLS:
    fail("k9: %d runs resumed from the shared checkpoint, expected at least %d" % (resumed, KILLS))
log("k9: %d kills, %d changes, Kafka exact per key with %d replayed, wide table equal, "
    "each change applied once" % (kills, w.total(), dups))

# ---- case 2: PostgreSQL stopped for STOP_S seconds ---------------------------------

my("CREATE TABLE %s.st (id INT PRIMARY KEY, v BIGINT NOT NULL)" % SRC)
pipe, args = pipeline_cmd("st", "st", start_pos())
hport = dblib.free_port()
args += ["-X", "http.listen=127.0.0.1:%d" % hport]
logpath = os.path.join(TMP, "st.log")
writer = faultlib.AckWriter(dblib.my_args(SRC) + ["-n"], PROCS)
w = ledger.Workload(writer.write, table="st", keys=100, seed=SEED + 1)
logf = open(logpath, "ab")
cdc = subprocess.Popen(args, stdout=logf, stderr=logf)
PROCS.append(cdc)
w.run_for(2.0)


def each_sink():
    """/status of the running pipeline: {sink: transactions acknowledged}."""
    try:
        st = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/status" % hport, timeout=2).read())
    except OSError:
        return None
    return {e["type"]: e["transactions"] for e in st.get("sinks", [])}


# /status, /metrics and the status command show each sink
acks = faultlib.wait("both sinks acknowledging in /status",
                     lambda: (lambda a: a if a and len(a) == 2 and min(a.values()) > 0 else None)(each_sink()), 30)
if sorted(acks) != ["kafka", "postgres"]:
    fail("st: /status shows the sinks %s, not kafka and postgres" % sorted(acks))
body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % hport, timeout=2).read().decode()
for k in ("kafka", "postgres"):
    if 'autoglm_cdc_sink_delivered_transactions_total{sink="%s"}' % k not in body:
        fail("st: /metrics has no delivered count of the %s sink" % k)
if "autoglm_cdc_kafka_inflight_messages" not in body:
    fail("st: /metrics lacks the Kafka sink's own counters")
stout = subprocess.run([BIN, "status", "--url", "http://127.0.0.1:%d" % hport], capture_output=True, text=True)
if stout.returncode != 0 or "kafka (queue" not in stout.stdout or "postgres (queue" not in stout.stdout:
    fail("st: `status` does not show each sink (exit %d):\n%s" % (stout.returncode, stout.stdout))
subprocess.run([dblib.ROOT + "/tests/services.sh", "stop", "postgres"], check=True, capture_output=True)
t0 = time.time()
ahead_max = 0
at_stop = None
kafka_seen = []  # (time, Kafka acknowledgements) during the outage
try:
    while time.time() - t0 < STOP_S:
        w.step(rnd.randint(1, 5))
        time.sleep(0.01)
        if cdc.poll() is not None:
            fail("st: the pipeline exited %d while PostgreSQL was stopped (the wide sink must wait "
                 "in place)" % cdc.returncode)
        a = each_sink()
        if not a:
            continue
        if at_stop is None:
            at_stop = a["postgres"]
        ahead_max = max(ahead_max, a["kafka"] - a["postgres"])
        kafka_seen.append((time.time(), a["kafka"]))
finally:
    subprocess.run([dblib.ROOT + "/tests/services.sh", "start", "postgres"], check=True, capture_output=True)
if at_stop is None or not kafka_seen:
    fail("st: /status did not answer during the outage")
if kafka_seen[-1][1] <= at_stop + 50:
    fail("st: Kafka did not go on while PostgreSQL was stopped (%d at the stop, %d at the end)"
         % (at_stop, kafka_seen[-1][1]))
if ahead_max > 200:
    fail("st: Kafka got %d transactions ahead of the stopped sink, the bound is 200" % ahead_max)
# stalled at the bound: no Kafka progress over the last 5 s of the outage
late = [k for t, k in kafka_seen if t >= kafka_seen[-1][0] - 5]
if STOP_S >= 15 and max(late) != min(late):
    fail("st: Kafka still advanced in the last 5 s of the outage (%d -> %d): no back-pressure"
         % (min(late), max(late)))
w.run_for(2.0)
writer.close()
# the same process goes on and catches up
faultlib.wait("st: the wide sink catching up in the same process", lambda: (
    cdc.poll() is None or fail("st: the pipeline exited %d after the outage" % cdc.returncode)) and
    (lambda c: c and int(c) >= w.total())(
        pg("SELECT changes FROM autoglm_cdc_offsets WHERE pipeline = '%s'" % pipe, W, check=False).strip()), 180,
    every=0.5)
dblib.stop([cdc])
if cdc.returncode != 0:
    fail("st: SIGTERM after catching up gave exit %d, not 0" % cdc.returncode)
with open(logpath, errors="replace") as f:
    if "reconnected after" not in f.read():
        fail("st: the log does not show the wide sink reconnecting in place")
run_final(args, logpath, "st")
dups = check_case("st", pipe, "st", w, logpath)
log("st: PostgreSQL stopped %.0f s: the process stayed up, Kafka went at most %d transactions ahead "
    "(bound 200) and then stalled, the wide sink reconnected by itself; %d changes, nothing lost, "
    "Kafka replayed %d, each change applied once" % (STOP_S, ahead_max, w.total(), dups))

# ---- case 3: PostgreSQL frozen (SIGSTOP) for STOP_S seconds -------------------------
# The wide sink blocks inside a query; the pipeline stays up, Kafka goes on
# until the bounded buffer (pipeline.max_inflight=200 transactions) is full,
# then the source is not read (back-pressure); after SIGCONT both catch up.

def pg_pids():
    pm = int(open(os.path.join(E["PGDATADIR"], "postmaster.pid")).readline())
    kids = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pm)], capture_output=True, text=True).stdout.split()
    return [pm] + [int(k) for k in kids]


def pg_parent():
    """The process that started the postmaster (tests/services.sh runs it
    under runuser, which stops itself when its child stops): resumed too."""
    pm = int(open(os.path.join(E["PGDATADIR"], "postmaster.pid")).readline())
    pp = subprocess.run(["ps", "-o", "ppid=", "-p", str(pm)], capture_output=True, text=True).stdout.strip()
    return int(pp) if pp.isdigit() and int(pp) > 1 else None


my("CREATE TABLE %s.sp (id INT PRIMARY KEY, v BIGINT NOT NULL)" % SRC)
pipe, args = pipeline_cmd("sp", "sp", start_pos())
args += ["-X", "http.listen=127.0.0.1:%d" % hport]
logpath = os.path.join(TMP, "sp.log")
writer = faultlib.AckWriter(dblib.my_args(SRC) + ["-n"], PROCS)
w = ledger.Workload(writer.write, table="sp", keys=100, seed=SEED + 2)
logf = open(logpath, "ab")
cdc = subprocess.Popen(args, stdout=logf, stderr=logf)
PROCS.append(cdc)
w.run_for(2.0)
faultlib.wait("both sinks acknowledging (sp)",
              lambda: (lambda a: a if a and len(a) == 2 and min(a.values()) > 0 else None)(each_sink()), 30)
frozen = pg_pids()
wrapper = pg_parent()
for pid in frozen:
    os.kill(pid, signal.SIGSTOP)
ahead_max = 0
went_ahead = False
try:
    t0 = time.time()
    at_freeze = None
    while time.time() - t0 < STOP_S:
        w.step(rnd.randint(1, 5))
        time.sleep(0.01)
        if cdc.poll() is not None:
            fail("sp: the pipeline exited %d while PostgreSQL was frozen" % cdc.returncode)
        a = each_sink()
        if not a:
            continue
        if at_freeze is None:
            at_freeze = a["postgres"]
        ahead_max = max(ahead_max, a["kafka"] - a["postgres"])
        went_ahead = went_ahead or a["kafka"] > at_freeze + 50
finally:
    for pid in frozen + ([wrapper] if wrapper else []):
        os.kill(pid, signal.SIGCONT)
if not went_ahead:
    fail("sp: Kafka did not go on while PostgreSQL was frozen")
if ahead_max > 200:
    fail("sp: Kafka got %d transactions ahead of the frozen sink, the bound is 200" % ahead_max)
w.run_for(2.0)
writer.close()
faultlib.wait("sp: the wide sink catching up", lambda: (lambda c: c and int(c) >= w.total())(
    pg("SELECT changes FROM autoglm_cdc_offsets WHERE pipeline = '%s'" % pipe, W, check=False).strip()), 180)
dblib.stop([cdc])
if cdc.returncode != 0:
    fail("sp: SIGTERM after catching up gave exit %d, not 0" % cdc.returncode)
run_final(args, logpath, "sp")
dups = check_case("sp", pipe, "sp", w, logpath)
log("sp: PostgreSQL frozen %.0f s: the pipeline stayed up, Kafka went at most %d transactions ahead "
    "(bound 200); %d changes, nothing lost, Kafka replayed %d, each change applied once"
    % (STOP_S, ahead_max, w.total(), dups))
# ---- case 4: the reconnect bound: postgres_sink.reconnect_timeout_ms -----------------
# PostgreSQL stays stopped past the bound (3 s): exit 69 as before; a run
# after PostgreSQL is back catches up, nothing lost, nothing applied twice.

my("CREATE TABLE %s.tb (id INT PRIMARY KEY, v BIGINT NOT NULL)" % SRC)
pipe, args = pipeline_cmd("tb", "tb", start_pos())
args += ["-X", "postgres_sink.reconnect_timeout_ms=3000"]
logpath = os.path.join(TMP, "tb.log")
writer = faultlib.AckWriter(dblib.my_args(SRC) + ["-n"], PROCS)
w = ledger.Workload(writer.write, table="tb", keys=50, seed=SEED + 3)
logf = open(logpath, "ab")
cdc = subprocess.Popen(args, stdout=logf, stderr=logf)
PROCS.append(cdc)
w.run_for(2.0)
faultlib.wait("tb: the wide sink applying", lambda: (lambda c: c and int(c) > 0)(
    pg("SELECT changes FROM autoglm_cdc_offsets WHERE pipeline = '%s'" % pipe, W, check=False).strip()), 60,
    every=0.5)
# the clock starts before the stop: the sink can lose its connection while
# `services.sh stop` is still waiting for the server to go down
t0 = time.time()
subprocess.run([dblib.ROOT + "/tests/services.sh", "stop", "postgres"], check=True, capture_output=True)
try:
    while cdc.poll() is None and time.time() - t0 < 60:
        w.step(rnd.randint(1, 5))
        time.sleep(0.01)
    gave_up = time.time() - t0
finally:
    subprocess.run([dblib.ROOT + "/tests/services.sh", "start", "postgres"], check=True, capture_output=True)
if cdc.returncode != 69:
    fail("tb: with postgres_sink.reconnect_timeout_ms=3000 and PostgreSQL stopped the pipeline gave %s, "
         "not exit 69" % cdc.returncode)
if gave_up < 3:
    fail("tb: the pipeline gave up after %.1f s, before the 3 s reconnect bound" % gave_up)
with open(logpath, errors="replace") as f:
    if "postgres_sink.reconnect_timeout_ms" not in f.read():
        fail("tb: the exit-69 error does not name postgres_sink.reconnect_timeout_ms")
w.run_for(1.0)
writer.close()
run_final(args, logpath, "tb")
dups = check_case("tb", pipe, "tb", w, logpath)
log("tb: PostgreSQL stopped past the 3 s bound: exit 69 after %.1f s naming the key; the next run "
    "caught up, %d changes, nothing lost, each change applied once" % (gave_up, w.total()))
cleanup()
print("PASS: fan-out to Kafka and a PostgreSQL wide table: nothing lost, nothing applied twice")
