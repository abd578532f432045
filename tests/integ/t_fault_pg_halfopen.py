#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Half-open replication link: PostgreSQL -> faultproxy -> autoglm-cdc -> file.

The same scenario as t_fault_mysql_halfopen.py (faultlib.halfopen) for
the postgres source: with postgres.status_interval_s=1 and
postgres.timeout_s=2 a link that stops forwarding without closing must
show on /readyz (naming postgres.timeout_s) within timeout + 1 s; after
the thaw the pipeline reconnects (the server, told wal_sender_timeout=2s
by the session, frees the slot of the dead walsender) and every change
arrives once, per key in order.  Exit 0 pass, 1 fail, 77 skip.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib  # noqa: E402
import faultproxy  # noqa: E402
import pg_lib  # noqa: E402

TIMEOUT_S = 2
pg = pg_lib.PG()
proxy = faultproxy.Proxy(pg.port)


def cleanup():
    proxy.close()
    pg.drop()


import dblib  # noqa: E402
dblib.on_fail(cleanup, logdir=pg.tmp)
pg.create_db()
pg.psql("CREATE TABLE lt (id INT PRIMARY KEY, v BIGINT NOT NULL); "
        "CREATE PUBLICATION p_%s FOR TABLE lt" % pg.db)
hport = faultlib.free_port()
out = os.path.join(pg.tmp, "out.jsonl")
logpath = os.path.join(pg.tmp, "cdc.log")
args = pg.cdc_args(out, ["-X", "postgres.status_interval_s=1", "-X", "postgres.timeout_s=%d" % TIMEOUT_S,
                         "-X", "http.listen=127.0.0.1:%d" % hport, "-X", "checkpoint.interval_ms=200"])
i = args.index("--postgres-dsn") + 1
args[i] = "host=127.0.0.1 port=%d user=%s password=%s dbname=%s connect_timeout=2" % (
    proxy.port, pg.user, pg.password, pg.db)
logf = open(logpath, "wb")
cdc = subprocess.Popen(args, stdout=logf, stderr=logf)
pg.procs.append(cdc)

writer = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.host, "-p", pg.port,
                           "-U", pg.user, "-d", pg.db], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          text=True, env=dict(os.environ, PGPASSWORD=pg.password))
pg.procs.append(writer)


def write(stmts):
    writer.stdin.write("BEGIN;%s;COMMIT;\n" % ";".join(stmts))
    writer.stdin.flush()


faultlib.halfopen(proxy, cdc, hport, write, TIMEOUT_S + 1, "postgres.timeout_s", out, logpath)
writer.stdin.close()
writer.wait()
cleanup()
