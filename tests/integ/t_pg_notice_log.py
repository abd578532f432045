#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""PostgreSQL notices go through the logger; the two-way warning only when
it applies.

A binlog fixture is decoded into the PostgreSQL wide-table sink as the
test user (no privilege for replication origins), with --log-format json:

  1. The sink's tables exist already, so its CREATE ... IF NOT EXISTS
     statements draw NOTICEs from the server: every stderr line must be
     one JSON object, and the notices must be among them (libpq's default
     printed them raw).
  2. A one-way mapping: no "capture them again" warning (nothing reads
     the written table back).
  3. The same mapping file with a reverse mapping that reads the target
     table (two-way): the warning is logged.

Exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import subprocess
import tempfile

import dblib
from dblib import BIN, E, fail, log

dblib.need("PGPORT", what="PostgreSQL")
FX = os.path.join(os.environ.get("CDC_FIXTURES", dblib.ROOT + "/../shared/fixtures"), "binlog",
                  "mariadb-10.11", "01_types.binlog")
if not os.path.exists(FX):
    dblib.skip("no binlog fixture " + FX)
ID = "%d" % os.getpid()
DB = "notice_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-notice-")


def cleanup():
    dblib.cleanup((), TMP, pg_dbs=[DB])


dblib.on_fail(cleanup)
dblib.pg("CREATE DATABASE %s OWNER %s" % (DB, E["PGUSER"]), "postgres", superuser=True)

ONEWAY = """sources:
  app%(id)s: {priority: 1}
  back%(id)s: {priority: 2}
targets:
  w:
    table: public.w_%(id)s
    key: id
    fields:
      id: bigint
      v: {type: text, owners: [app%(id)s, back%(id)s]}
  biz:
    table: public.biz_%(id)s
    key: id
    fields:
      id: bigint
      v: {type: text, owner: back%(id)s}
mappings:
  - name: forward
    source: app%(id)s
    table: nosuchdb.t
    target: w
    key: {id: id}
    fields: {v: v}
""" % {"id": ID}
REVERSE = """  - name: backward
    source: back%(id)s
    table: public.w_%(id)s
    target: biz
    key: {id: id}
    fields: {v: v}
""" % {"id": ID}


def run(mapping_text, name):
    mf = os.path.join(TMP, name + ".yaml")
    open(mf, "w").write(mapping_text)
    r = subprocess.run([BIN, "decode", "--log-format", "json", "--sink", "postgres", "--mapping", mf,
                        "--application-id", "app" + ID, "--pipeline", "p" + ID,
                        "-X", "postgres_sink.dsn=" + dblib.pg_dsn(DB), FX],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        fail("%s: decode into the postgres sink exited %d\n%s" % (name, r.returncode, r.stderr[-2000:]))
    objs = []
    for ln in r.stderr.splitlines():
        try:
            o = json.loads(ln)
        except ValueError:
            fail("%s: a stderr line is not JSON (--log-format json): %r" % (name, ln))
        if not isinstance(o, dict):
            fail("%s: a stderr line is not a JSON object: %r" % (name, ln))
        objs.append(o)
    return objs, r.stderr


def has(objs, text):
    return any(text in json.dumps(o) for o in objs)


# first run creates the tables; the second finds them and draws notices
run(ONEWAY, "create")
objs, err = run(ONEWAY, "oneway")
if not has(objs, "already exists, skipping"):
    fail("the server's NOTICE is not among the JSON log lines:\n" + err[-2000:])
if has(objs, "capture them again"):
    fail("one-way pipeline warns that its writes would be captured again:\n" + err[-2000:])
objs, err = run(ONEWAY + REVERSE, "twoway")
if not has(objs, "capture them again"):
    fail("a two-way mapping without replication origins does not warn:\n" + err[-2000:])
log("notices logged as JSON (%d lines); the two-way warning only with a reverse mapping" % len(objs))
cleanup()
print("PASS")
