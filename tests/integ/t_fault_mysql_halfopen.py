#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Half-open binlog link: MariaDB -> faultproxy -> autoglm-cdc -> file.

While a workload runs, the proxy stops forwarding without closing
(faultproxy.freeze()): no FIN, no reset, no heartbeats.  The source must
notice within mysql.heartbeat_s + 1 s (measured on /readyz, whose reason
must say the link went silent), reconnect once the path works again
(thaw) and resume with nothing lost, per key in order, nothing twice
(ledger check).  Exit 0 pass, 1 fail, 77 skip.
"""
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import dblib
from dblib import BIN, E, fail, log, my
import faultproxy
import ledger

HB_S = 2
dblib.need("MYSQL_PORT", what="MariaDB")

DB = "halfopen_%d" % os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-halfopen.")
procs = []
proxy = None


def cleanup():
    if proxy:
        proxy.close()
    dblib.cleanup(procs, TMP, my_dbs=(DB,))


dblib.on_fail(cleanup, logdir=TMP)
my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; "
   "CREATE TABLE %s.lt (id INT PRIMARY KEY, v BIGINT NOT NULL)" % (DB, DB, DB))
file0, pos0 = my("SHOW BINLOG STATUS").split("\t")[:2]

proxy = faultproxy.Proxy(E["MYSQL_PORT"])
s = socket.socket()
s.bind(("127.0.0.1", 0))
hport = s.getsockname()[1]
s.close()
out = os.path.join(TMP, "out.jsonl")
dsn = "mysql://%s:%s@127.0.0.1:%d" % (E["MYSQL_USER"], E["MYSQL_PASSWORD"], proxy.port)
cmd = [BIN, "--source", "mysql", "--mysql-dsn", dsn, "--from", "%s:%s" % (file0, pos0.strip()),
       "--include", DB + ".lt", "--sink", "file", "--output", out,
       "--pipeline", "halfopen", "--state-dir", os.path.join(TMP, "state"),
       "-X", "mysql.heartbeat_s=%d" % HB_S, "-X", "mysql.connect_timeout_ms=1500",
       "-X", "http.listen=127.0.0.1:%d" % hport, "-X", "checkpoint.interval_ms=200"]
logf = open(os.path.join(TMP, "cdc.log"), "wb")
cdc = subprocess.Popen(cmd, stdout=logf, stderr=logf)
procs.append(cdc)


def readyz():
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % hport, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def wait(what, cond, secs):
    end = time.time() + secs
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    fail("timed out after %ds waiting for %s" % (secs, what))


wait("/readyz 200", lambda: readyz()[0] == 200, 30)

# the workload goes straight to MariaDB (only the tool's link is faulted)
writer = subprocess.Popen(dblib.my_args(DB), stdin=subprocess.PIPE, text=True,
                          stdout=subprocess.DEVNULL)


def write(stmts):
    writer.stdin.write("BEGIN;%s;COMMIT;\n" % ";".join(stmts))
    writer.stdin.flush()


w = ledger.Workload(write, keys=40, seed=3)
stop = threading.Event()


def run_writer():
    while not stop.is_set():
        w.step(w.rnd.randint(1, 5))
        time.sleep(0.01)


wt = threading.Thread(target=run_writer)
wt.start()
time.sleep(2)
proxy.freeze()
t0 = time.time()
log("link frozen (no FIN) at %.3f" % t0)
code, body = wait("/readyz 503 naming the silent link",
                  lambda: (lambda r: r if r[0] == 503 and "silent" in r[1] else None)(readyz()),
                  HB_S + 10)
detect = time.time() - t0
log("detected after %.2f s: %s" % (detect, body.strip()))
if detect > HB_S + 1:
    fail("half-open link detected after %.2f s, limit mysql.heartbeat_s + 1 = %d s"
         % (detect, HB_S + 1))
if "mysql.heartbeat_s" not in body:
    fail("/readyz reason does not name mysql.heartbeat_s: %s" % body)
time.sleep(1.5)                 # reconnect attempts meet a dead path, too
proxy.thaw()
t1 = time.time()
wait("/readyz 200 after the path works again", lambda: readyz()[0] == 200, 30)
log("reconnected %.2f s after the thaw" % (time.time() - t1))
time.sleep(1.5)
stop.set()
wt.join()
writer.stdin.close()
if writer.wait() != 0:
    fail("the workload's mariadb client failed")
total = w.total()


def delivered():
    with open(out) as f:
        return ledger.pairs_from_envelopes(f)


wait("all %d changes delivered" % total, lambda: len(delivered()) >= total, 60)
time.sleep(1)
cdc.send_signal(signal.SIGTERM)
if cdc.wait(30) != 0:
    fail("autoglm-cdc exited %d" % cdc.returncode)
problems, dups = ledger.check(w.expected, delivered(), max_dups=0)
if problems:
    fail("ledger: " + "; ".join(problems[:10]))
logtext = open(os.path.join(TMP, "cdc.log"), errors="replace").read()
if "silent" not in logtext or "reconnected to" not in logtext:
    fail("the log does not show the silent link and the reconnect")
log("half-open link: detected in %.2f s (limit %d s), %d changes on %d keys, "
    "none lost, none twice" % (detect, HB_S + 1, total, len(w.expected)))
cleanup()
