#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Half-open binlog link: MariaDB -> faultproxy -> autoglm-cdc -> file.

While a workload runs, the proxy stops forwarding without closing
(faultproxy.freeze()): no FIN, no reset, no heartbeats.  The source must
notice within mysql.heartbeat_s + 1 s (measured on /readyz, whose reason
must say the link went silent), reconnect once the path works again
(thaw) and resume with nothing lost, per key in order, nothing twice
(ledger check, faultlib.halfopen).  Exit 0 pass, 1 fail, 77 skip.
"""
import os
import subprocess

import dblib
from dblib import BIN, E, my
import faultlib
import faultproxy

HB_S = 2
dblib.need("MYSQL_PORT", what="MariaDB")

DB = "halfopen_%d" % os.getpid()
TMP = faultlib.scratch("halfopen")
procs = []
proxy = faultproxy.Proxy(E["MYSQL_PORT"])


def cleanup():
    proxy.close()
    dblib.cleanup(procs, TMP, my_dbs=(DB,))


dblib.on_fail(cleanup, logdir=TMP)
my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; "
   "CREATE TABLE %s.lt (id INT PRIMARY KEY, v BIGINT NOT NULL)" % (DB, DB, DB))
file0, pos0 = my("SHOW BINLOG STATUS").split("\t")[:2]

hport = faultlib.free_port()
out = os.path.join(TMP, "out.jsonl")
logpath = os.path.join(TMP, "cdc.log")
dsn = "mysql://%s:%s@127.0.0.1:%d" % (E["MYSQL_USER"], E["MYSQL_PASSWORD"], proxy.port)
cmd = [BIN, "--source", "mysql", "--mysql-dsn", dsn, "--from", "%s:%s" % (file0, pos0.strip()),
       "--include", DB + ".lt", "--sink", "file", "--output", out,
       "--pipeline", "halfopen", "--state-dir", os.path.join(TMP, "state"),
       "-X", "mysql.heartbeat_s=%d" % HB_S, "-X", "mysql.connect_timeout_ms=1500",
       "-X", "http.listen=127.0.0.1:%d" % hport, "-X", "checkpoint.interval_ms=200"]
logf = open(logpath, "wb")
cdc = subprocess.Popen(cmd, stdout=logf, stderr=logf)
procs.append(cdc)

# the workload goes straight to MariaDB (only the tool's link is faulted)
writer = subprocess.Popen(dblib.my_args(DB), stdin=subprocess.PIPE, text=True,
                          stdout=subprocess.DEVNULL)
procs.append(writer)


def write(stmts):
    writer.stdin.write("BEGIN;%s;COMMIT;\n" % ";".join(stmts))
    writer.stdin.flush()


faultlib.halfopen(proxy, cdc, hport, write, HB_S + 1, "mysql.heartbeat_s", out, logpath)
cleanup()
