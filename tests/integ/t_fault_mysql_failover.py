#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Primary failover by GTID: MariaDB primary + replica -> autoglm-cdc -> file.

mysql.dsn names both servers (mysql://u:p@primary,replica).

A. A workload runs on the primary; with the replica in step, the primary
   is killed with SIGKILL and the replica promoted (STOP SLAVE,
   read_only=0); the workload goes on there.  The source must follow the
   replica by GTID: every acknowledged transaction delivered once, per
   key in order (ledger check).
B. The replica is stopped first (it falls behind), the primary takes more
   writes that are delivered, then it is killed and the stale replica
   promoted.  The source must refuse it: exit 3, naming the missing
   GTID range, which must be exactly the transactions the replica lacks.

Uses `tests/services.sh up mariadb-replica`; restarts the primary and
removes the replica at the end.  Exit 0 pass, 1 fail, 77 skip.
"""
import os
import signal
import subprocess
import time

import dblib
from dblib import BIN, E, ROOT, fail, log, my
import faultlib
import ledger

dblib.need("MYSQL_PORT", what="MariaDB")
SVC = os.path.join(ROOT, "tests", "services.sh")
TMP = faultlib.scratch("failover")
DBA = "failover_a_%d" % os.getpid()
DBB = "failover_b_%d" % os.getpid()
procs = []


def svc(*args):
    if subprocess.run([SVC] + list(args)).returncode != 0:
        fail("tests/services.sh %s failed" % " ".join(args))
    return dblib.load_env()


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    subprocess.run([SVC, "down", "mariadb-replica"])
    subprocess.run([SVC, "start", "mariadb"])
    dblib.cleanup((), TMP, my_dbs=(DBA, DBB))


dblib.on_fail(cleanup, logdir=TMP)


def rsql(env, q, db=None):
    """SQL on the replica as root."""
    a = ["mariadb", "--no-defaults", "--protocol=tcp", "-h", "127.0.0.1", "-P", env["MYSQL_REPLICA_PORT"],
         "-uroot", "-p" + E["MYSQL_ROOT_PASSWORD"], "-N", "-B"] + ([db] if db else [])
    r = subprocess.run(a + ["-e", q], capture_output=True, text=True)
    if r.returncode:
        fail("replica: %s: %s" % (q, r.stderr.strip()))
    return r.stdout.strip()


def ack_writer(port, db):
    return faultlib.AckWriter(["mariadb", "--no-defaults", "--protocol=tcp", "-h", "127.0.0.1", "-P", str(port),
                               "-uroot", "-p" + E["MYSQL_ROOT_PASSWORD"], "-N", "-B", "-n", db], procs)


def caught_up(env):
    want = my("SELECT @@gtid_binlog_pos").strip()
    return rsql(env, "SELECT @@gtid_slave_pos") == want


def start_cdc(env, db, name):
    file0, pos0 = my("SHOW BINLOG STATUS").split("\t")[:2]
    hport = faultlib.free_port()
    dsn = "mysql://%s:%s@127.0.0.1:%s,127.0.0.1:%s" % (E["MYSQL_USER"], E["MYSQL_PASSWORD"], E["MYSQL_PORT"],
                                                      env["MYSQL_REPLICA_PORT"])
    out = os.path.join(TMP, name + ".jsonl")
    logpath = os.path.join(TMP, name + ".log")
    cmd = [BIN, "--source", "mysql", "--mysql-dsn", dsn, "--from", "%s:%s" % (file0, pos0.strip()),
           "--include", db + ".lt", "--sink", "file", "--output", out, "--pipeline", name,
           "--state-dir", os.path.join(TMP, "state-" + name), "-X", "mysql.heartbeat_s=2",
           "-X", "mysql.connect_timeout_ms=1500", "-X", "http.listen=127.0.0.1:%d" % hport]
    p = subprocess.Popen(cmd, stdout=open(logpath, "wb"), stderr=subprocess.STDOUT)
    procs.append(p)
    p.cmd = cmd
    faultlib.wait("autoglm-cdc ready", lambda: p.poll() is not None or faultlib.readyz(hport)[0] == 200, 60)
    if p.poll() is not None:
        fail("autoglm-cdc exited %d at start" % p.returncode)
    return p, out, logpath


def new_db(env, db):
    my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; "
       "CREATE TABLE %s.lt (id INT PRIMARY KEY, v BIGINT NOT NULL)" % (db, db, db))
    faultlib.wait("the replica has %s.lt" % db,
                  lambda: rsql(env, "SELECT COUNT(*) FROM information_schema.tables WHERE "
                                    "table_schema = '%s'" % db) == "1", 30)


def kill_primary():
    pid = int(dblib.load_env()["MYSQL_PID"])
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    fail("the primary did not die")


def promote(env):
    rsql(env, "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0")


# ---- A: the replica is in step: follow it -------------------------------
env = svc("up", "mariadb-replica")
new_db(env, DBA)
cdc, out, logpath = start_cdc(env, DBA, "fa")
cmd_a = cdc.cmd
wr = ack_writer(E["MYSQL_PORT"], DBA)
w = ledger.Workload(wr.write, keys=30)
w.run_for(2)
before = w.total()
faultlib.wait("the replica in step", lambda: caught_up(env), 30)
log("A: %d changes on the primary; SIGKILL of the primary, promoting the replica" % before)
kill_primary()
wr.p.kill()
promote(env)
total = faultlib.go_on_after_failover(w, ack_writer(env["MYSQL_REPLICA_PORT"], DBA), cdc, out, 90, "A")
cdc.send_signal(signal.SIGTERM)
cdc.wait(30)
problems, dups = ledger.check(w.expected, faultlib.delivered(out), max_dups=0)
if problems:
    fail("A: ledger: " + "; ".join(problems[:10]))
text = open(logpath, errors="replace").read()
if "failing over from 127.0.0.1:%s to 127.0.0.1:%s" % (E["MYSQL_PORT"], env["MYSQL_REPLICA_PORT"]) not in text:
    fail("A: the log does not show the failover")
log("A: followed the promoted replica: %d changes (%d after the failover), none lost, none twice"
    % (total, total - before))
# restarted with the same DSN (the dead primary first) and checkpoint, the
# source starts on the server that holds the checkpoint's GTIDs
wr = ack_writer(env["MYSQL_REPLICA_PORT"], DBA)
w.write = wr.write
for _ in range(20):
    w.step(2)
wr.close()
total = w.total()
cdc = subprocess.Popen(cmd_a, stdout=open(logpath, "ab"), stderr=subprocess.STDOUT)
procs.append(cdc)
faultlib.wait("all %d changes delivered after the restart" % total,
              lambda: cdc.poll() is not None or len(faultlib.delivered(out)) >= total, 60)
cdc.send_signal(signal.SIGTERM)
if cdc.wait(30) != 0:
    fail("A: the restarted autoglm-cdc exited %d" % cdc.returncode)
problems, dups = ledger.check(w.expected, faultlib.delivered(out), max_dups=0)
if problems:
    fail("A: ledger after the restart: " + "; ".join(problems[:10]))
log("A: restarted with the dead primary first in the DSN: started on the replica, %d changes" % total)

# ---- B: the replica is behind: refuse it --------------------------------
svc("down", "mariadb-replica")
svc("start", "mariadb")
env = svc("up", "mariadb-replica")
new_db(env, DBB)
cdc, out, logpath = start_cdc(env, DBB, "fb")
wr = ack_writer(E["MYSQL_PORT"], DBB)
w = ledger.Workload(wr.write, keys=10)
for _ in range(20):
    w.step(2)
faultlib.wait("the replica in step", lambda: caught_up(env), 30)
have = rsql(env, "STOP SLAVE; SELECT @@gtid_binlog_pos")
for _ in range(15):
    w.step(2)
last = my("SELECT @@gtid_binlog_pos").strip()
faultlib.wait("the stale transactions delivered", lambda: len(faultlib.delivered(out)) >= w.total(), 30)
wr.close()
log("B: replica stopped at %s, primary at %s; SIGKILL, promoting the stale replica" % (have, last))
kill_primary()
promote(env)
try:
    rc = cdc.wait(60)
except subprocess.TimeoutExpired:
    fail("B: autoglm-cdc did not stop on the stale replica")
text = open(logpath, errors="replace").read()
if rc != 3:
    fail("B: autoglm-cdc exited %d, expected 3" % rc)
d, s, n = have.split("-")
d2, s2, m = last.split("-")
want = "%s-%s-%d..%s-%s-%s" % (d2, s2, int(n) + 1, d2, s2, m)
if "lacks GTIDs already delivered: %s" % want not in text:
    fail("B: the refusal does not name the missing range %s:\n%s" % (want, text[-1500:]))
log("B: stale replica refused with exit 3, missing %s" % want)
cleanup()
