#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Any transaction size in bounded memory, MariaDB source (issue 20).

One transaction of many row updates (UPDATE of a whole table) goes
through the real pipeline:

  file    at two sizes (CDC_BIGTXN_ROWS/4 and CDC_BIGTXN_ROWS rows): every
          row change exactly once by (file, pos, row) with its new value;
          peak RSS (VmHWM from /proc/<pid>/status) at most 96 MB and not
          scaling with the transaction (bigtxn_lib.check_peaks).  Holding
          the transaction whole costs about 0.9 KB per row here, so the
          big size fails both checks on code that does.
  kafka   killed with SIGKILL while the transaction is being delivered
          (more than a third of its rows read, its end not checkpointed),
          then restarted: the checkpoint at the kill is the end of the
          small transaction before it (never inside it), and Kafka holds
          every row change of it (no loss), duplicates only of its own
          rows with the same values, the transactions before and after it
          exactly once.  The Kafka source then reads that topic back into
          a file: every row, peak RSS at most 96 MB.
  postgres (wide table): a session holds one row of the wide table two
          thirds into the transaction, so the sink blocks inside it with
          the fragments before applied; killed there with SIGKILL: during
          and after, the wide table shows nothing of the transaction
          (every row still has the old value); after the restart it
          equals SELECT on MariaDB and the offsets table counts every
          change once.  Peak RSS of both runs at most 96 MB.

  mysql    (MariaDB wide table, mywide): the same as postgres, with the
          lock held by a MariaDB session (innodb_trx shows the sink's
          lock wait).

Env: CDC_BIGTXN_ROWS (default 300000), CDC_BIGTXN_CASES (default
file,kafka,wide,mywide).  Exit 0 pass, 1 fail, 77 skip.
"""
import os
import subprocess
import tempfile
import time

import dblib
from bigtxn_lib import PeakRSS, check_peaks, envelopes
from dblib import BIN, E, fail, log, my

ROWS = int(os.environ.get("CDC_BIGTXN_ROWS", "300000"))
CASES = os.environ.get("CDC_BIGTXN_CASES", "file,kafka,wide,mywide").split(",")

dblib.need("MYSQL_PORT", "PGPORT", "KAFKA_BOOTSTRAP", what="MariaDB, PostgreSQL and Kafka", tools=("kcat",))

ID = "%d" % os.getpid()
DB = "bigtxn_" + ID
W = "bigtxnw_" + ID
MW = "bigtxnmw_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-bigtxn-my.")
PROCS = []


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[W], my_dbs=[DB, MW])


dblib.on_fail(cleanup, logdir=TMP)
my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s" % (DB, DB))
dblib.pg("CREATE DATABASE %s OWNER %s" % (W, E["PGUSER"]), "postgres", superuser=True)
DSN = "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"])


def binlog_pos():
    f, p = my("SHOW MASTER STATUS").split()[:2]
    return f, int(p)


def table(name, n, v0=1):
    """name (id, v = v0, pad) with rows 1..n, written before the start."""
    my("CREATE TABLE %s.%s (id INT PRIMARY KEY, v BIGINT NOT NULL, pad VARCHAR(80));"
       "INSERT INTO %s.%s SELECT seq, %d, REPEAT('p', 60) FROM %s.seq_1_to_%d" % (DB, name, DB, name, v0, DB, n))


def base(pipe, include):
    return [BIN, "--source", "mysql", "--mysql-dsn", DSN, "--include", include, "--pipeline", pipe,
            "--state-dir", os.path.join(TMP, "state"), "-X", "checkpoint.interval_ms=200",
            "-X", "mysql.server_id=%d" % (9100 + int(ID) % 800)]


def read_ckpt(pipe):
    out = {}
    path = os.path.join(TMP, "state", pipe + ".ckpt")
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                out[k] = v
    return out


def wait(what, cond, proc, timeout=90):
    t0 = time.time()
    while not cond():
        if proc.poll() is not None:
            fail("%s: autoglm-cdc exited %s before it" % (what, proc.returncode))
        if time.time() - t0 > timeout:
            fail("%s: not within %d s" % (what, timeout))
        time.sleep(0.05)


def events_read(port, tbl):
    """source_events_total of DB.tbl, op u, from /metrics (0 if absent)."""
    import urllib.request
    try:
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2).read().decode()
    except OSError:
        return 0
    key = 'autoglm_cdc_source_events_total{table="%s.%s",op="u"} ' % (DB, tbl)
    for line in body.splitlines():
        if line.startswith(key):
            return int(line.split()[-1])
    return 0


# ---- file: two sizes, exactly once, peak memory does not scale -----------
def file_case(n):
    name = "f%d" % n
    table(name, n)
    f0, p0 = binlog_pos()
    my("UPDATE %s.%s SET v = 2" % (DB, name))
    out = os.path.join(TMP, name + ".jsonl")
    logf = open(os.path.join(TMP, name + ".log"), "ab")
    p = subprocess.Popen(base("bf" + name, "%s.%s" % (DB, name)) +
                         ["--from", "%s:%d" % (f0, p0), "--sink", "file", "-o", out, "--idle-exit", "2500"],
                         stdout=logf, stderr=logf)
    PROCS.append(p)
    peak = PeakRSS(p)
    rc = p.wait(timeout=300)
    if rc != 0:
        fail("file run of %d rows exited %d (log %s)" % (n, rc, logf.name))
    seen = {}
    for ident, env in envelopes(open(out)):
        if ident in seen:
            fail("file: %s written twice" % (ident,))
        a = env["payload"]["after"]
        seen[ident] = (a["id"], a["v"])
    ids = sorted(i for i, _ in seen.values())
    if ids != list(range(1, n + 1)) or any(v != 2 for _, v in seen.values()):
        fail("file: %d rows: %d changes, ids 1..n each once with v = 2 expected" % (n, len(seen)))
    return peak.mb()


if "file" in CASES:
    small, big = ROWS // 4, ROWS
    m_small = file_case(small)
    m_big = file_case(big)
    log("file sink: peak RSS %.1f MB at %d rows, %.1f MB at %d rows" % (m_small, small, m_big, big))
    check_peaks("MariaDB -> file", m_small, m_big, small, big)


# ---- kafka: kill -9 while the transaction is delivered --------------------
def kafka_case(n):
    name = "k"
    table(name, n)
    my("CREATE TABLE %s.side (id INT PRIMARY KEY, v INT)" % DB)
    f0, p0 = binlog_pos()
    my("INSERT INTO %s.side VALUES (1, 1)" % DB)                   # before
    f1, p1 = binlog_pos()
    my("UPDATE %s.%s SET v = 2" % (DB, name))                       # the big one
    f2, p2 = binlog_pos()
    topic = "bt%s.{db}.{table}" % ID
    port = dblib.free_port()
    cmd = base("bk", DB + ".*") + ["--from", "%s:%d" % (f0, p0), "--sink", "kafka",
                                   "--kafka-brokers", E["KAFKA_BOOTSTRAP"], "--topic", topic,
                                   "-X", "pipeline.fragment_rows=2000"]
    logf = open(os.path.join(TMP, "kafka.log"), "ab")
    p = subprocess.Popen(cmd + ["--http", "127.0.0.1:%d" % port], stdout=logf, stderr=logf)
    PROCS.append(p)
    def ck_pos():
        ck = read_ckpt("bk")
        return (ck.get("file", ""), int(ck.get("offset", "0")))

    # (other writers' transactions may share the binlog: positions compare)
    wait("the row before the big transaction checkpointed", lambda: ck_pos() >= (f1, p1), p)
    wait("a third of the big transaction read", lambda: events_read(port, name) >= n // 3, p)
    dblib.kill9(p, "autoglm-cdc (kafka, log %s)" % logf.name)
    ck = ck_pos()
    if not ((f1, p1) <= ck < (f2, p2)):
        fail("kafka: checkpoint after the kill is %s:%d, not at the start of the big transaction (%s:%d..%s:%d): "
             "it must never stop inside it, nor pass it undelivered" % (ck + (f1, p1, f2, p2)))
    my("INSERT INTO %s.side VALUES (2, 2)" % DB)                   # after
    p = subprocess.Popen(cmd + ["--idle-exit", "3000"], stdout=logf, stderr=logf)
    PROCS.append(p)
    peak = PeakRSS(p)
    rc = p.wait(timeout=300)
    if rc != 0:
        fail("kafka: restart exited %d (log %s)" % (rc, logf.name))
    lines = []
    for t in ("side", name):
        lines += subprocess.run(["kcat", "-b", E["KAFKA_BOOTSTRAP"], "-C", "-t", "bt%s.%s.%s" % (ID, DB, t),
                                 "-o", "beginning", "-e", "-q", "-f", "%s\n"],
                                capture_output=True, text=True, check=True).stdout.splitlines()
    count, seen = {}, {}
    for ident, env in envelopes(lines):
        a = env["payload"]["after"]
        if ident in seen and seen[ident] != a:
            fail("kafka: %s delivered twice with different rows" % (ident,))
        seen[ident] = a
        count[ident] = count.get(ident, 0) + 1
    big_ids = sorted(a["id"] for (fl, pos, _), a in seen.items()
                     if a.get("pad") and (fl, pos) >= (f1, p1) and (fl, pos) < (f2, p2))
    if big_ids != list(range(1, n + 1)) or any(a["v"] != 2 for a in seen.values() if a.get("pad")):
        fail("kafka: the big transaction lost rows: %d of %d row changes with v = 2" % (len(big_ids), n))
    sides = [a["id"] for a in seen.values() if not a.get("pad")]
    if sorted(sides) != [1, 2]:
        fail("kafka: the transactions around the big one: %s, want ids 1 and 2" % sides)
    outside = [i for i, c in count.items() if c > 1 and not ((f1, p1) <= (i[0], i[1]) < (f2, p2))]
    if outside:
        fail("kafka: duplicates outside the big transaction: %s" % outside[:5])
    dups = sum(c - 1 for c in count.values())
    log("kafka: kill -9 inside a %d-row transaction: no loss, %d duplicates inside it; restart peak %.1f MB"
        % (n, dups, peak.mb()))
    check_peaks("MariaDB -> kafka (restart)", peak.mb(), peak.mb(), n, n)
    # the Kafka source over that topic (one txn per message; its consumer
    # prefetch is bounded): every row
    out = os.path.join(TMP, "ksrc.jsonl")
    ks = [BIN, "--source", "kafka", "-X", "kafka.brokers=" + E["KAFKA_BOOTSTRAP"],
          "-X", "kafka.topics=bt%s.%s.%s" % (ID, DB, name), "-X", "application_id=bk",
          "-X", "kafka.group.id=bt%s" % ID, "--pipeline", "bks", "--state-dir", os.path.join(TMP, "state"),
          "--sink", "file", "-o", out, "--idle-exit", "5000"]
    p = subprocess.Popen(ks, stdout=logf, stderr=logf)
    PROCS.append(p)
    kpeak = PeakRSS(p)
    rc = p.wait(timeout=300)
    if rc != 0:
        fail("kafka source: exit %d (log %s)" % (rc, logf.name))
    ids = set()
    for _, env in envelopes(open(out)):
        ids.add(env["payload"]["after"]["id"])
    if ids != set(range(1, n + 1)):
        fail("kafka source: %d of %d ids read back" % (len(ids), n))
    # librdkafka's fetch buffers and prefetch queue are bounded by the
    # source's defaults: 110 MB here with librdkafka's own (a fetch of 1 MB
    # of zstd batches is 40 MB decompressed), within 96 MB with them
    log("kafka source: %d messages read back, peak %.1f MB" % (sum(count.values()), kpeak.mb()))
    check_peaks("Kafka source -> file", kpeak.mb(), kpeak.mb(), n, n)


if "kafka" in CASES:
    kafka_case(ROWS)


# ---- postgres wide table: atomic across the kill ---------------------------
def wide_case(n):
    name = "w"
    table(name, n, v0=0)
    f0, p0 = binlog_pos()
    # a first pass (one n-row transaction) that the wide table takes whole
    my("UPDATE %s.%s SET v = 1" % (DB, name))
    mapf = os.path.join(TMP, "map.yaml")
    tbl = "t_" + ID
    dblib.wide_mapping(mapf, "bw", tbl, "pg", "%s.%s" % (DB, name), "m_" + ID, {"v": ("bigint", "v")})
    cmd = dblib.wide_args("bw", os.path.join(TMP, "state"), mapf, "my", "pg", W, start="%s:%d" % (f0, p0),
                          include="%s.%s" % (DB, name))
    cmd = [a for a in cmd if a not in ("--idle-exit", "2500")]
    logf = open(os.path.join(TMP, "wide.log"), "ab")

    def wide():
        out = dblib.pg("SELECT v, count(*) FROM %s GROUP BY v ORDER BY v" % tbl, W, check=False)
        return dict(tuple(int(x) for x in l.split("\t")) for l in out.splitlines() if l.strip())

    p = subprocess.Popen(cmd + ["-X", "checkpoint.interval_ms=200"], stdout=logf, stderr=logf)
    PROCS.append(p)
    peak0 = PeakRSS(p)
    wait("the first pass in the wide table", lambda: wide() == {1: n}, p)
    # a session holds one row two thirds into the table: the sink's
    # transaction blocks there with the fragments before it applied
    env = dict(os.environ, PGPASSWORD=E["PGPASSWORD"])
    locker = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-h", E["PGHOST"], "-p", E["PGPORT"], "-U",
                               E["PGUSER"], "-d", W], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=env)
    PROCS.append(locker)
    locker.stdin.write("BEGIN; SELECT 'locked' FROM %s WHERE k = %d FOR UPDATE;\n" % (tbl, 2 * n // 3))
    locker.stdin.flush()
    if locker.stdout.readline().strip() != "locked":
        fail("wide: the locking session did not get its row")
    my("UPDATE %s.%s SET v = 2" % (DB, name))                      # the big one
    wait("the sink blocked inside the big transaction",
         lambda: dblib.pg("SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND "
                          "wait_event_type = 'Lock'" % W, W).strip() == "1", p)
    seen_mid = wide()
    dblib.kill9(p, "autoglm-cdc (wide, log %s)" % logf.name)
    locker.stdin.write("ROLLBACK;\n")
    locker.stdin.close()
    locker.wait()
    after_kill = wide()
    if seen_mid != {1: n} or after_kill != {1: n}:
        fail("wide: part of the big transaction is visible before its commit: %s, %s (want {1: %d})"
             % (seen_mid, after_kill, n))
    p = subprocess.Popen(cmd + ["--idle-exit", "3000"], stdout=logf, stderr=logf)
    PROCS.append(p)
    peak = PeakRSS(p)
    rc = p.wait(timeout=300)
    if rc != 0:
        fail("wide: restart exited %d (log %s)" % (rc, logf.name))
    if wide() != {2: n}:
        fail("wide: after the restart %s, want {2: %d}" % (wide(), n))
    src = dict(tuple(int(x) for x in l.split("\t"))
               for l in my("SELECT id, v FROM %s.%s" % (DB, name)).splitlines())
    got = dict(tuple(int(x) for x in l.split("\t"))
               for l in dblib.pg("SELECT k, v FROM %s" % tbl, W).splitlines())
    if got != src:
        fail("wide table differs from SELECT on MariaDB")
    ch = int(dblib.pg("SELECT changes FROM autoglm_cdc_offsets WHERE pipeline = 'bw'", W).strip())
    if ch != 2 * n:
        fail("wide: offsets count %d changes, the two transactions have %d" % (ch, 2 * n))
    log("wide: nothing visible before the commit across kill -9, then all %d rows once; peak %.1f / %.1f MB"
        % (n, peak0.mb(), peak.mb()))
    check_peaks("MariaDB -> postgres wide", peak0.mb(), peak.mb(), n, n)


if "wide" in CASES:
    wide_case(ROWS // 2)


# ---- MariaDB wide table: the same, into the mysql sink ----------------------
def mywide_case(n):
    name = "mw"
    table(name, n, v0=0)
    f0, p0 = binlog_pos()
    my("UPDATE %s.%s SET v = 1" % (DB, name))                      # a first pass
    mapf = os.path.join(TMP, "mymap.yaml")
    tbl = "t_" + ID
    my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s" % (MW, MW))
    dblib.wide_mapping(mapf, "bmw", tbl, "my", "%s.%s" % (DB, name), "mm_" + ID, {"v": ("bigint", "v")})
    cmd = dblib.wide_args("bmw", os.path.join(TMP, "state"), mapf, "my", "my", MW, start="%s:%d" % (f0, p0),
                          include="%s.%s" % (DB, name))
    cmd = [a for a in cmd if a not in ("--idle-exit", "2500")]
    logf = open(os.path.join(TMP, "mywide.log"), "ab")

    def wide():
        out = my("SELECT v, count(*) FROM %s.%s GROUP BY v ORDER BY v" % (MW, tbl), check=False)
        return dict(tuple(int(x) for x in l.split("\t")) for l in out.splitlines() if l.strip())

    p = subprocess.Popen(cmd + ["-X", "checkpoint.interval_ms=200"], stdout=logf, stderr=logf)
    PROCS.append(p)
    peak0 = PeakRSS(p)
    wait("the first pass in the MariaDB wide table", lambda: wide() == {1: n}, p)
    # a session holds one row two thirds into the table: the sink's
    # transaction waits there with the fragments before it applied
    locker = subprocess.Popen(dblib.my_args(MW) + ["-n"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    PROCS.append(locker)
    locker.stdin.write("BEGIN; SELECT 'locked' FROM %s WHERE k = %d FOR UPDATE;\n" % (tbl, 2 * n // 3))
    locker.stdin.flush()
    if locker.stdout.readline().strip() != "locked":
        fail("mywide: the locking session did not get its row")
    my("UPDATE %s.%s SET v = 2" % (DB, name))                      # the big one
    # blocked: its transaction waits on the lock (MariaDB shows some row
    # lock waits of INSERT ... ON DUPLICATE KEY UPDATE as RUNNING in
    # innodb_trx; the sink's statement then stays in the processlist)
    wait("the sink blocked inside the big transaction",
         lambda: my("SELECT (SELECT count(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT') + "
                    "(SELECT count(*) FROM information_schema.processlist WHERE db = '%s' AND command = 'Execute' "
                    "AND time >= 3 AND info LIKE 'INSERT INTO `%s`%%')" % (MW, tbl)).strip() != "0", p)
    seen_mid = wide()
    dblib.kill9(p, "autoglm-cdc (mywide, log %s)" % logf.name)
    locker.stdin.write("ROLLBACK;\n")
    locker.stdin.close()
    locker.wait()
    after_kill = wide()
    if seen_mid != {1: n} or after_kill != {1: n}:
        fail("mywide: part of the big transaction is visible before its commit: %s, %s (want {1: %d})"
             % (seen_mid, after_kill, n))
    p = subprocess.Popen(cmd + ["--idle-exit", "3000"], stdout=logf, stderr=logf)
    PROCS.append(p)
    peak = PeakRSS(p)
    rc = p.wait(timeout=300)
    if rc != 0:
        fail("mywide: restart exited %d (log %s)" % (rc, logf.name))
    src = dict(tuple(int(x) for x in l.split("\t")) for l in my("SELECT id, v FROM %s.%s" % (DB, name)).splitlines())
    got = dict(tuple(int(x) for x in l.split("\t")) for l in my("SELECT k, v FROM %s.%s" % (MW, tbl)).splitlines())
    if got != src:
        fail("mywide: the wide table differs from SELECT on the source (%s)" % wide())
    ch = int(my("SELECT changes FROM %s.autoglm_cdc_offsets WHERE pipeline = 'bmw'" % MW).strip())
    if ch != 2 * n:
        fail("mywide: offsets count %d changes, the two transactions have %d" % (ch, 2 * n))
    log("mywide: nothing visible before the commit across kill -9, then all %d rows once; peak %.1f / %.1f MB"
        % (n, peak0.mb(), peak.mb()))
    check_peaks("MariaDB -> MariaDB wide", peak0.mb(), peak.mb(), n, n)


if "mywide" in CASES:
    mywide_case(ROWS // 2)
cleanup()
print("PASS")
