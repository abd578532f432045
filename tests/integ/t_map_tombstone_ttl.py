#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Tombstone retention (postgres_sink.tombstone_keep / mysql_sink.tombstone_keep).

A MariaDB source (database ttlspg_<pid> / ttlsmy_<pid>, application id "a") deletes rows
of one wide table ttl_w (on_delete: delete), through the PostgreSQL sink
(database ttlpg_<pid>) and the MariaDB sink (database ttlmy_<pid>):

1. keys 1..6 inserted, 1..3 deleted with commit times in 2001 (SET
   TIMESTAMP), 4 deleted now; the pipeline runs without tombstone_keep:
   tombstones 1..4 stay (the default keeps them forever);
2. the same pipeline again with tombstone_keep=30d: the purge at start
   removes 1..3 (the log says how many), 4 stays, live rows 5 and 6 (whose
   provenance is just as old) are untouched;
3. the pipeline runs with tombstone_keep=8s, tombstone_purge_every=1s while
   key 5 is deleted now: its tombstone is there while it is younger than
   8 s and gone once 8 s have passed; row 6 is still untouched.

(Bad durations exit 78 with a hint: tests/unit/t_map_cli.sh.)
Exit 0 pass, 1 fail, 77 skip.
"""
import os
import subprocess
import tempfile
import time
import zlib

import dblib
from dblib import BIN, E, fail, log, my

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

ID = "%d" % os.getpid()
SRC = {"postgres": "ttlspg_" + ID, "mysql": "ttlsmy_" + ID}
PGDB = "ttlpg_" + ID
MYDB = "ttlmy_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-ttl-")
PROCS = []
OLD = 1_000_000_000          # 2001-09-09, seconds


def pg(q, db):
    return dblib.pg(q, db, sep="\x1f")


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[PGDB], my_dbs=list(SRC.values()) + [MYDB])


dblib.on_fail(cleanup, logdir=TMP, tail=30)

my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s;" % (MYDB, MYDB))
dblib.pg("CREATE DATABASE %s OWNER %s" % (PGDB, E["PGUSER"]), "postgres", superuser=True)


def source(sink):
    """A source database of its own per sink (a later step's delete must
    not reach the other sink's first step); returns (db, mapping file,
    binlog start)"""
    db = SRC[sink]
    my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; CREATE TABLE %s.items (id INT PRIMARY KEY, "
       "v VARCHAR(50)) CHARSET utf8mb4;" % (db, db, db))
    ms = my("SHOW MASTER STATUS").split()
    mapf = os.path.join(TMP, "ttl-%s.yaml" % sink)
    open(mapf, "w").write("""
sources: {a: {priority: 1}}
targets:
  ttl_w:
    table: public.ttl_w
    key: k
    fields:
      k: bigint
      x: {type: text, owner: a}
mappings:
  - {source: a, table: %s.items, target: ttl_w, key: {k: id}, on_delete: delete, fields: {x: v}}
""" % db)
    script = ["SET TIMESTAMP=%d; INSERT INTO %s.items VALUES (%d, 'v%d');" % (OLD + i, db, i, i)
              for i in range(1, 7)]
    script += ["SET TIMESTAMP=%d; DELETE FROM %s.items WHERE id=%d;" % (OLD + 100 + i, db, i) for i in (1, 2, 3)]
    script += ["SET TIMESTAMP=DEFAULT; DELETE FROM %s.items WHERE id=4;" % db]
    my("\n".join(script))
    return db, mapf, "%s:%s" % (ms[0], ms[1])


def start(sink, pipe, extra, idle_ms=2500):
    db, mapf, start_at = SOURCE
    a = [BIN, "--pipeline", pipe, "--application-id", "a", "--state-dir", os.path.join(TMP, "state-" + pipe),
         "-X", "mapping.files=" + mapf, "--idle-exit", str(idle_ms),
         "--source", "mysql", "--mysql-dsn", "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"],
                                                                              E["MYSQL_PORT"]),
         "--from", start_at, "--include", db + ".*",
         "-X", "mysql.server_id=%d" % (7000 + zlib.crc32(pipe.encode()) % 50000)]
    if sink == "mysql":
        a += ["--sink", "mysql", "-X", "mysql_sink.dsn=mysql://root:%s@127.0.0.1:%s/%s" % (
            E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], MYDB)]
    else:
        a += ["--sink", "postgres", "-X", "postgres_sink.dsn=" + dblib.pg_dsn(PGDB)]
    for k, v in extra.items():
        a += ["-X", "%s_sink.%s=%s" % (sink, k, v)]
    logf = os.path.join(TMP, "%s-%d.log" % (pipe, len(PROCS)))
    errf = open(logf, "wb")
    p = subprocess.Popen(a, stdout=errf, stderr=errf)
    PROCS.append(p)
    return p, logf


def run(sink, pipe, extra):
    p, logf = start(sink, pipe, extra)
    try:
        rc = p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = "timeout"
    if rc != 0:
        fail("%s exited %s" % (pipe, rc))
    return open(logf).read()


def read(sink):
    """({k: (x, provenance text)} of live rows, [tombstone keys])"""
    if sink == "postgres":
        rows = pg("SELECT k, coalesce(x, '<null>'), _provenance::text FROM ttl_w_provenance() ORDER BY k", PGDB)
        tomb = pg("SELECT k FROM ttl_w_tombstones ORDER BY k", PGDB)
        sep = "\x1f"
    else:
        rows = my("SELECT k, IFNULL(x, '<null>'), _provenance FROM ttl_w ORDER BY k", MYDB)
        tomb = my("SELECT k FROM ttl_w_tombstones ORDER BY k", MYDB)
        sep = "\t"
    live = {}
    for line in rows.split("\n"):
        if line:
            f = line.split(sep)
            live[int(f[0])] = (f[1], f[2])
    return live, [int(x) for x in tomb.split()]


def expect(sink, what, live_keys, tomb_keys, ref=None):
    live, tomb = read(sink)
    if sorted(live) != live_keys or tomb != tomb_keys:
        fail("%s, %s: live rows %s, tombstones %s; expected %s and %s"
             % (sink, what, sorted(live), tomb, live_keys, tomb_keys))
    if ref is not None:
        for k in live_keys:
            if live[k] != ref[k]:
                fail("%s, %s: live row %d changed: %r, was %r" % (sink, what, k, live[k], ref[k]))
    return live


for sink in ("postgres", "mysql"):
    SOURCE = source(sink)
    pipe = "ttl_%s_%s" % (sink, ID)
    log("%s 1: no tombstone_keep: every tombstone stays" % sink)
    run(sink, pipe, {})
    before = expect(sink, "without tombstone_keep", [5, 6], [1, 2, 3, 4])
    if before[6][0] != "v6":
        fail("%s: row 6 is %r" % (sink, before[6]))

    log("%s 2: tombstone_keep=30d: the three from 2001 go, the recent one stays" % sink)
    out = run(sink, pipe, {"tombstone_keep": "30d"})
    expect(sink, "tombstone_keep=30d", [5, 6], [4], ref=before)
    if "purged 3 tombstones" not in out:
        fail("%s: no 'purged 3 tombstones' in the log:\n%s" % (sink, out[-2000:]))

    log("%s 3: tombstone_keep=8s: a new tombstone stays 8 s, then goes" % sink)
    p, logf = start(sink, pipe, {"tombstone_keep": "8s", "tombstone_purge_every": "1s"}, idle_ms=60000)
    # the delete must happen while the pipeline streams: wait for its start
    t0 = time.time()
    while "source mysql started" not in open(logf, errors="replace").read():
        if p.poll() is not None or time.time() - t0 > 30:
            fail("%s: the pipeline did not start streaming (exit %s)" % (sink, p.poll()))
        time.sleep(0.1)
    t_del = time.time()
    my("DELETE FROM %s.items WHERE id=5;" % SOURCE[0])
    seen = None
    while time.time() - t_del < 30:
        live, tomb = read(sink)
        if 5 in tomb and 5 not in live:
            seen = time.time()
        elif seen or 5 not in live:
            break
        time.sleep(0.3)
    gone = time.time()
    if not seen:
        fail("%s: the delete of key 5 never became a tombstone (live %s, tombstones %s)"
             % (sink, sorted(live), tomb))
    # MariaDB stamps whole seconds: the deletion may be up to 1 s older
    if seen - t_del < 6:
        fail("%s: tombstone 5 gone %.1f s after the delete, keep is 8 s" % (sink, seen - t_del))
    if gone - t_del > 14:
        fail("%s: tombstone 5 still there %.1f s after the delete (keep 8 s, purge every 1 s)"
             % (sink, gone - t_del))
    log("%s: tombstone 5 seen until %.1f s, gone at %.1f s after the delete" % (sink, seen - t_del, gone - t_del))
    expect(sink, "tombstone_keep=8s", [6], [], ref=before)
    p.terminate()
    try:
        rc = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = "timeout"
    if rc != 0:
        fail("%s: pipeline exited %s after SIGTERM" % (sink, rc))
    # tombstone 4 goes in step 3 too (older than 8 s by then), maybe in
    # the same purge as 5
    if "tombstones whose deletion is older than tombstone_keep (8 s)" not in open(logf).read():
        fail("%s: no purge logged with tombstone_keep=8s" % sink)

cleanup()
print("PASS")
