#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Any transaction size in bounded memory, PostgreSQL source (issue 20).

The replication session runs with logical_decoding_work_mem = 64kB, so
the server streams every big transaction in progress (pgoutput protocol
2); autoglm-cdc spills it past postgres.work_mem (1 MB in the file and
rollback cases, else the default 16 MB) to
<state.dir>/<pipeline>.spill.<slot>.<xid> and reads it back at Stream
Commit.

  file      one UPDATE of a whole table at two sizes (CDC_BIGTXN_ROWS/4
            and CDC_BIGTXN_ROWS rows): every row once with its new value,
            the log names the spill, no spill file left afterwards, peak
            RSS (VmHWM) at most 96 MB and not scaling with the size.
  plain     the same without streaming (the server's default 64 MB work
            memory: the transaction comes whole at its commit and goes
            out in fragments): every row once, peak RSS at most 96 MB.
  rollback  a big transaction in progress, streamed and spilled while the
            pipeline runs, then rolled back, then a small one: the output
            holds only the small one, and no spill file is left.  A spill
            file of an earlier run is deleted at the start; /metrics shows
            spill_files >= 1 and spilled_bytes_total > 0 during the spill,
            then spill_files 0 and largest_transaction_rows 1.
  max_spill state.max_spill_mb = 1: the run stops with exit 78 naming
            the setting, and the restart with the default delivers the
            transaction once.
  kafka     killed with SIGKILL while the transaction is delivered (a
            third of it read), restarted: every row of it in Kafka (no
            loss), duplicates only of its own rows, the transaction after
            it exactly once.
  wide      PostgreSQL wide table: a session holds one row two thirds in,
            the sink blocks inside the transaction, SIGKILL: nothing of it
            visible; after the restart the wide table equals SELECT and
            the offsets table counts every change once.

Env: CDC_BIGTXN_ROWS (default 300000), CDC_BIGTXN_CASES.  Exit 0 pass,
1 fail, 77 skip.
"""
import glob
import os
import subprocess
import tempfile
import time
import urllib.request

import dblib
from bigtxn_lib import PeakRSS, check_peaks, envelopes
from dblib import BIN, E, fail, log, pg

ROWS = int(os.environ.get("CDC_BIGTXN_ROWS", "300000"))
CASES = os.environ.get("CDC_BIGTXN_CASES", "file,plain,rollback,max_spill,kafka,wide").split(",")
# --idle-exit counts from the last change handed to the sink: while the
# server streams a big transaction in progress nothing is handed out, and
# on a loaded machine that takes seconds
IDLE = "10000"

dblib.need("PGPORT", "KAFKA_BOOTSTRAP", what="PostgreSQL and Kafka", tools=("kcat",))

ID = "%d" % os.getpid()
SRC = "btpg_" + ID
W = "btpgw_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-bigtxn-pg.")
STATE = os.path.join(TMP, "state")
PROCS = []
SLOTS = []


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[SRC, W], slots=SLOTS)


dblib.on_fail(cleanup, logdir=TMP)
for d in (SRC, W):
    pg("CREATE DATABASE %s OWNER %s" % (d, E["PGUSER"]), "postgres", superuser=True)
pg("CREATE PUBLICATION pub_%s FOR ALL TABLES" % ID, SRC, superuser=True)


def table(name, n, v0=1):
    pg("CREATE TABLE %s (id INT PRIMARY KEY, v BIGINT NOT NULL, pad TEXT);"
       "INSERT INTO %s SELECT g, %d, repeat('p', 60) FROM generate_series(1, %d) g" % (name, name, v0, n), SRC)


def slot(name):
    SLOTS.append(name)
    dblib.pg_slot(SRC, name)


def dsn(stream=True):
    d = dblib.pg_dsn(SRC, superuser=True)
    if stream:
        d += " options='-c logical_decoding_work_mem=64kB'"
    return d


def cmd(pipe, slotname, stream=True):
    return [BIN, "--source", "postgres", "--postgres-dsn", dsn(stream), "-X", "postgres.slot=" + slotname,
            "-X", "postgres.publication=pub_" + ID, "--pipeline", pipe, "--state-dir", STATE,
            "-X", "checkpoint.interval_ms=200"]


def spills(pipe):
    return glob.glob(os.path.join(STATE, pipe + ".spill.*"))


def run(args, name, timeout=300):
    logf = os.path.join(TMP, name + ".log")
    with open(logf, "ab") as f:
        p = subprocess.Popen(args, stdout=f, stderr=f)
        PROCS.append(p)
        peak = PeakRSS(p)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            fail("%s: no exit within %d s" % (name, timeout))
    return rc, open(logf, errors="replace").read(), peak.mb()


def read_rows(path, tbl):
    """{id: [v, ...]} of the envelopes of table tbl in a file sink's output."""
    got = {}
    for _, env in envelopes(open(path)):
        if env["source"]["table"] != tbl:
            continue
        a = env["payload"]["after"]
        got.setdefault(a["id"], []).append(a["v"])
    return got


def once_all(what, got, n, v):
    if sorted(got) != list(range(1, n + 1)) or any(vs != [v] for vs in got.values()):
        bad = [k for k, vs in got.items() if vs != [v]][:5]
        fail("%s: want ids 1..%d once each with v = %d; got %d ids, wrong: %s"
             % (what, n, v, len(got), [(k, got[k]) for k in bad]))


def file_case(n, stream=True):
    name = "f%d%s" % (n, "s" if stream else "p")
    table(name, n)
    slot("s_" + name + "_" + ID)
    pg("UPDATE %s SET v = 2" % name, SRC)
    out = os.path.join(TMP, name + ".jsonl")
    # postgres.work_mem = 1 MB: the small size spills too
    rc, logtxt, peak = run(cmd(name, "s_" + name + "_" + ID, stream) +
                           ["--sink", "file", "-o", out, "--idle-exit", IDLE, "-X", "postgres.work_mem=1"], name)
    if rc != 0:
        fail("%s: exit %d:\n%s" % (name, rc, logtxt[-1500:]))
    once_all(name, read_rows(out, name), n, 2)
    if stream and "spilling it to" not in logtxt:
        fail("%s: the transaction was not spilled (streaming off?):\n%s" % (name, logtxt[-1500:]))
    if spills(name):
        fail("%s: spill files left after delivery: %s" % (name, spills(name)))
    return peak


if "file" in CASES:
    small, big = ROWS // 4, ROWS
    m_small, m_big = file_case(small), file_case(big)
    log("streamed + spilled -> file: peak RSS %.1f MB at %d rows, %.1f MB at %d rows" % (m_small, small, m_big, big))
    check_peaks("PostgreSQL (streamed) -> file", m_small, m_big, small, big)

if "plain" in CASES:
    m = file_case(ROWS // 2, stream=False)
    log("not streamed -> file: peak RSS %.1f MB at %d rows" % (m, ROWS // 2))
    check_peaks("PostgreSQL (not streamed) -> file", m, m, ROWS // 2, ROWS // 2)

if "rollback" in CASES:
    n = ROWS // 2
    table("rb", n)
    pg("CREATE TABLE rbside (id INT PRIMARY KEY, v INT)", SRC)
    slot("s_rb_" + ID)
    out = os.path.join(TMP, "rb.jsonl")
    logn = os.path.join(TMP, "rb.log")
    # a spill file of an earlier run of this slot: deleted at start (its
    # transaction comes again)
    os.makedirs(STATE, exist_ok=True)
    stale = os.path.join(STATE, "rb.spill.s_rb_%s.4242" % ID)
    with open(stale, "wb") as f:
        f.write(b"x" * 4096)
    port = dblib.free_port()
    p = subprocess.Popen(cmd("rb", "s_rb_" + ID) + ["--sink", "file", "-o", out, "-X", "postgres.work_mem=1",
                                                    "--http", "127.0.0.1:%d" % port],
                         stdout=open(logn, "ab"), stderr=subprocess.STDOUT)
    PROCS.append(p)

    def metrics():
        try:
            body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2).read().decode()
        except OSError:
            return {}
        return {l.split()[0]: float(l.split()[1]) for l in body.splitlines()
                if l.startswith("autoglm_cdc_") and len(l.split()) == 2}

    t0 = time.time()
    while os.path.exists(stale) or "autoglm_cdc_spill_files" not in metrics():
        if p.poll() is not None or time.time() - t0 > 60:
            fail("rollback: the spill file of an earlier run is still there after the start (or no /metrics)")
        time.sleep(0.05)
    env = dict(os.environ, PGPASSWORD=E["PGPASSWORD"])
    sess = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-h", E["PGHOST"], "-p", E["PGPORT"], "-U",
                             E["PGUSER"], "-d", SRC], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=env)
    PROCS.append(sess)
    # in progress: the server streams it, autoglm-cdc spills it
    sess.stdin.write("BEGIN; UPDATE rb SET v = 2; SELECT 'updated';\n")
    sess.stdin.flush()
    if sess.stdout.readline().strip() != "updated":
        fail("rollback: the session's UPDATE failed")
    wait_log = lambda: "spilling it to" in open(logn, errors="replace").read()
    t0 = time.time()
    while not wait_log():
        if p.poll() is not None or time.time() - t0 > 120:
            fail("rollback: the in-progress transaction was not spilled:\n%s" % open(logn).read()[-1500:])
        time.sleep(0.05)
    # the metrics see the spill while it lasts
    t0 = time.time()
    while not (metrics().get("autoglm_cdc_spill_files", 0) >= 1 and
               metrics().get("autoglm_cdc_spilled_bytes_total", 0) > 0):
        if p.poll() is not None or time.time() - t0 > 60:
            fail("rollback: spill_files / spilled_bytes_total do not show the spill: %s" % metrics())
        time.sleep(0.05)
    sess.stdin.write("ROLLBACK;\n")
    sess.stdin.close()
    sess.wait()
    pg("INSERT INTO rbside VALUES (1, 7)", SRC)
    t0 = time.time()
    while not (os.path.exists(out) and "rbside" in open(out).read() and not spills("rb")):
        if p.poll() is not None or time.time() - t0 > 120:
            fail("rollback: the row after the rollback did not arrive, or spill files stayed: %s" % spills("rb"))
        time.sleep(0.05)
    t0 = time.time()
    while metrics().get("autoglm_cdc_spill_files") != 0 or metrics().get("autoglm_cdc_largest_transaction_rows") != 1:
        if p.poll() is not None or time.time() - t0 > 30:
            fail("rollback: after it, spill_files should be 0 and the largest transaction read the "
                 "1-row one (the rolled-back one is never read): %s" % metrics())
        time.sleep(0.05)
    dblib.stop([p])
    if p.returncode != 0:
        fail("rollback: SIGTERM gave exit %d" % p.returncode)
    lines = [l for l in open(out) if l.strip()]
    tables = [env["source"]["table"] for _, env in envelopes(lines)]
    if tables != ["rbside"]:
        fail("rollback: output holds %d changes of %s, want only the row of rbside" % (len(tables), set(tables)))
    if spills("rb"):
        fail("rollback: spill files left: %s" % spills("rb"))
    log("rollback: a streamed, spilled, rolled-back transaction left no output and no spill file")

if "max_spill" in CASES:
    n = ROWS // 4
    table("ms", n)
    slot("s_ms_" + ID)
    pg("UPDATE ms SET v = 2", SRC)
    out = os.path.join(TMP, "ms.jsonl")
    base = cmd("ms", "s_ms_" + ID) + ["--sink", "file", "-o", out, "--idle-exit", IDLE]
    rc, logtxt, _ = run(base + ["-X", "state.max_spill_mb=1", "-X", "postgres.work_mem=1"], "ms1")
    if rc != 78 or "state.max_spill_mb" not in logtxt:
        fail("max_spill: want exit 78 naming state.max_spill_mb, got %d:\n%s" % (rc, logtxt[-1500:]))
    if os.path.exists(out) and read_rows(out, "ms"):
        fail("max_spill: rows of the transaction were written before the limit stopped the run")
    rc, logtxt, _ = run(base, "ms2")
    if rc != 0:
        fail("max_spill: restart exit %d:\n%s" % (rc, logtxt[-1500:]))
    once_all("max_spill restart", read_rows(out, "ms"), n, 2)
    if spills("ms"):
        fail("max_spill: spill files left: %s" % spills("ms"))
    log("max_spill: exit 78 above state.max_spill_mb, then the transaction once after the restart")


def events_read(port, tbl):
    try:
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2).read().decode()
    except OSError:
        return 0
    key = 'autoglm_cdc_source_events_total{table="public.%s",op="u"} ' % tbl
    for line in body.splitlines():
        if line.startswith(key):
            return int(line.split()[-1])
    return 0


def wait(what, cond, proc, timeout=120):
    t0 = time.time()
    while not cond():
        if proc.poll() is not None:
            fail("%s: autoglm-cdc exited %s before it" % (what, proc.returncode))
        if time.time() - t0 > timeout:
            fail("%s: not within %d s" % (what, timeout))
        time.sleep(0.05)


if "kafka" in CASES:
    n = ROWS
    table("kt", n)
    pg("CREATE TABLE kside (id INT PRIMARY KEY, v INT)", SRC)
    slot("s_k_" + ID)
    pg("UPDATE kt SET v = 2", SRC)
    port = dblib.free_port()
    kcmd = cmd("bk", "s_k_" + ID) + ["--sink", "kafka", "--kafka-brokers", E["KAFKA_BOOTSTRAP"],
                                      "--topic", "btpg%s.{table}" % ID, "-X", "pipeline.fragment_rows=2000"]
    logf = open(os.path.join(TMP, "kafka.log"), "ab")
    p = subprocess.Popen(kcmd + ["--http", "127.0.0.1:%d" % port], stdout=logf, stderr=logf)
    PROCS.append(p)
    wait("a third of the big transaction read", lambda: events_read(port, "kt") >= n // 3, p)
    dblib.kill9(p, "autoglm-cdc (kafka, log %s)" % logf.name)
    pg("INSERT INTO kside VALUES (1, 1)", SRC)                  # after
    p = subprocess.Popen(kcmd + ["--idle-exit", IDLE], stdout=logf, stderr=logf)
    PROCS.append(p)
    peak = PeakRSS(p)
    rc = p.wait(timeout=300)
    if rc != 0:
        fail("kafka: restart exited %d (log %s)" % (rc, logf.name))
    got = {}
    for t in ("kt", "kside"):
        lines = subprocess.run(["kcat", "-b", E["KAFKA_BOOTSTRAP"], "-C", "-t", "btpg%s.%s" % (ID, t), "-o",
                                "beginning", "-e", "-q", "-f", "%s\n"], capture_output=True, text=True,
                               check=True).stdout.splitlines()
        got[t] = {}
        for _, env in envelopes(lines):
            a = env["payload"]["after"]
            got[t].setdefault(a["id"], []).append(a["v"])
    kt = got["kt"]
    if sorted(kt) != list(range(1, n + 1)) or any(set(vs) != {2} for vs in kt.values()):
        fail("kafka: the big transaction lost rows or values: %d of %d ids" % (len(kt), n))
    if got["kside"] != {1: [1]}:
        fail("kafka: the transaction after the big one: %s, want {1: [1]} (exactly once)" % got["kside"])
    dups = sum(len(vs) - 1 for vs in kt.values())
    log("kafka: kill -9 inside a %d-row streamed transaction: no loss, %d duplicates inside it; restart peak %.1f MB"
        % (n, dups, peak.mb()))
    check_peaks("PostgreSQL -> kafka (restart)", peak.mb(), peak.mb(), n, n)
    if spills("bk"):
        fail("kafka: spill files left: %s" % spills("bk"))

if "wide" in CASES:
    n = ROWS // 2
    table("wt", n, v0=0)
    slot("s_w_" + ID)
    pg("UPDATE wt SET v = 1", SRC)                                # first pass
    mapf = os.path.join(TMP, "map.yaml")
    tbl = "t_" + ID
    dblib.wide_mapping(mapf, "bw", tbl, "pg", "public.wt", "m_" + ID, {"v": ("bigint", "v")})
    wcmd = dblib.wide_args("bw", STATE, mapf, "pg", "pg", W, slot="s_w_" + ID, pub="pub_" + ID, tables="public.wt")
    wcmd = [a for a in wcmd if a not in ("--idle-exit", "2500")]
    i = wcmd.index("--postgres-dsn")
    wcmd[i + 1] = dsn(True)
    logf = open(os.path.join(TMP, "wide.log"), "ab")

    def wide():
        out = pg("SELECT v, count(*) FROM %s GROUP BY v ORDER BY v" % tbl, W, check=False)
        return dict(tuple(int(x) for x in l.split("\t")) for l in out.splitlines() if l.strip())

    p = subprocess.Popen(wcmd + ["-X", "checkpoint.interval_ms=200"], stdout=logf, stderr=logf)
    PROCS.append(p)
    peak0 = PeakRSS(p)
    wait("the first pass in the wide table", lambda: wide() == {1: n}, p)
    env = dict(os.environ, PGPASSWORD=E["PGPASSWORD"])
    locker = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-h", E["PGHOST"], "-p", E["PGPORT"], "-U",
                               E["PGUSER"], "-d", W], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=env)
    PROCS.append(locker)
    locker.stdin.write("BEGIN; SELECT 'locked' FROM %s WHERE k = %d FOR UPDATE;\n" % (tbl, 2 * n // 3))
    locker.stdin.flush()
    if locker.stdout.readline().strip() != "locked":
        fail("wide: the locking session did not get its row")
    pg("UPDATE wt SET v = 2", SRC)                                # the big one
    wait("the sink blocked inside the big transaction",
         lambda: pg("SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND wait_event_type = 'Lock'"
                    % W, W).strip() == "1", p)
    seen_mid = wide()
    dblib.kill9(p, "autoglm-cdc (wide, log %s)" % logf.name)
    locker.stdin.write("ROLLBACK;\n")
    locker.stdin.close()
    locker.wait()
    after_kill = wide()
    if seen_mid != {1: n} or after_kill != {1: n}:
        fail("wide: part of the big transaction is visible before its commit: %s, %s" % (seen_mid, after_kill))
    rc, logtxt, peak = run(wcmd + ["--idle-exit", IDLE], "wide2")
    if rc != 0:
        fail("wide: restart exited %d:\n%s" % (rc, logtxt[-1500:]))
    src = dict(tuple(int(x) for x in l.split("\t")) for l in pg("SELECT id, v FROM wt", SRC).splitlines())
    got = dict(tuple(int(x) for x in l.split("\t")) for l in pg("SELECT k, v FROM %s" % tbl, W).splitlines())
    if got != src or wide() != {2: n}:
        fail("wide: after the restart the wide table differs from SELECT (%s)" % wide())
    ch = int(pg("SELECT changes FROM autoglm_cdc_offsets WHERE pipeline = 'bw'", W).strip())
    if ch != 2 * n:
        fail("wide: offsets count %d changes, the two transactions have %d" % (ch, 2 * n))
    log("wide: nothing visible before the commit across kill -9, then all %d rows once; peak %.1f / %.1f MB"
        % (n, peak0.mb(), peak))
    check_peaks("PostgreSQL -> postgres wide", peak0.mb(), peak, n, n)

cleanup()
print("PASS")
