#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A transaction that cannot be applied is never skipped (issue 12, item 1).

For each source (MariaDB, PostgreSQL) and each wide sink (PostgreSQL,
MariaDB), a seeded random workload of three transactions goes through a
mapping whose field `n` is a bigint read from a text column:

  A  inserts (every n numeric)
  B  a multi-row transaction: updates of A's rows and inserts; one row, at
     a random place that is neither first nor last, has n = 'gold'
  C  inserts and updates after B

Run 1 must exit 65 naming the field and the value; the wide table then
holds exactly what A gives (nothing of B: no partly written row), the
offsets table counts only A's changes, and the checkpoint file, the
offsets table and (PostgreSQL) the slot's confirmed_flush_lsn all stay
before B (MariaDB: at or before A's end in SHOW MASTER STATUS; PostgreSQL:
before B's commit LSN as a test_decoding slot reports it).  The mapping is then fixed (n = case when n = 'gold' then -1
else n end), the pipeline restarted: it exits 0, the wide table equals the
rows this script computes from the workload, and the offsets table counts
every change exactly once.

Env: CDC_FAILTXN_SEED (default: random).  Exit 0 pass, 1 fail, 77 skip.
"""
import os
import random
import tempfile

import dblib
from dblib import pgx as pg, fail, log, my

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

SEED = int(os.environ.get("CDC_FAILTXN_SEED") or dblib.test_seed())
ID = "%d" % os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-failtxn-")
PROCS = []
SRC = "ftsrc_" + ID            # source database, on both servers
PUB = "ftpub_" + ID
W = "ftw_" + ID                # target database, on both servers
SLOTS = []


cleanup, rnd = dblib.wide_test(SRC, W, PUB, PROCS, TMP, SLOTS, SEED)

MAPF = os.path.join(TMP, "map.yaml")
FIXED = "case when n = 'gold' then -1 else n end"


def sql_txn(engine, stmts):
    body = "\n".join(stmts)
    return ("START TRANSACTION;\n" if engine == "my" else "BEGIN;\n") + body + "\nCOMMIT;\n"


def workload(engine, table):
    """Three transactions; returns (sql of A, B, C, rows after A, rows after
    all with the fixed mapping, changes of A, changes in all)."""
    rows, keys = {}, rnd.sample(range(1, 10000), 40)
    it = iter(keys)
    a, b, c = [], [], []
    for _ in range(rnd.randint(3, 7)):
        k = next(it)
        rows[k] = ("a%d" % k, rnd.randint(-10**12, 10**12))
        a.append("INSERT INTO %s VALUES (%d, '%s', '%d');" % (table, k, rows[k][0], rows[k][1]))
    after_a = dict(rows)
    nb = rnd.randint(4, 9)
    bad = rnd.randint(1, nb - 2)
    for i in range(nb):
        n = "gold" if i == bad else str(rnd.randint(-10**12, 10**12))
        nv = -1 if n == "gold" else int(n)
        if rnd.random() < 0.5 and rows:
            k = rnd.choice(sorted(rows))
            rows[k] = ("b%d_%d" % (k, i), nv)
            b.append("UPDATE %s SET v = '%s', n = '%s' WHERE id = %d;" % (table, rows[k][0], n, k))
        else:
            k = next(it)
            rows[k] = ("b%d" % k, nv)
            b.append("INSERT INTO %s VALUES (%d, '%s', '%s');" % (table, k, rows[k][0], n))
    for i in range(rnd.randint(2, 5)):
        k = next(it) if rnd.random() < 0.5 else rnd.choice(sorted(rows))
        rows[k] = ("c%d_%d" % (k, i), rnd.randint(0, 99))
        c.append("INSERT INTO %s VALUES (%d, '%s', '%d') %s;" % (
            table, k, rows[k][0], rows[k][1],
            "ON DUPLICATE KEY UPDATE v = VALUES(v), n = VALUES(n)" if engine == "my"
            else "ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v, n = EXCLUDED.n"))
    return (sql_txn(engine, a), sql_txn(engine, b), sql_txn(engine, c), after_a, rows,
            len(a), len(a) + len(b) + len(c))


def read_ckpt(path):
    out = {}
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                out[k] = v
    return out


def lsn_int(s):
    hi, lo = s.split("/")
    return int(hi, 16) << 32 | int(lo, 16)


def read_wide(sink, table):
    if sink == "pg":
        out = pg("SELECT k, coalesce(v, '<null>'), coalesce(n::text, '<null>') FROM %s" % table, W)
        sep = "\x1f"
    else:
        out = my("SELECT k, IFNULL(v, '<null>'), IFNULL(n, '<null>') FROM %s" % table, W)
        sep = "\t"
    got = {}
    for line in out.splitlines():
        k, v, n = line.split(sep)
        got[int(k)] = (v, int(n) if n != "<null>" else None)
    return got


def read_offsets(sink, pipe):
    q = "SELECT pos_key, changes FROM autoglm_cdc_offsets WHERE pipeline = '%s'" % pipe
    out = (pg(q, W) if sink == "pg" else my(q, W)).strip()
    if not out:
        return None, 0
    pk, ch = out.replace("\x1f", "\t").split("\t")
    return pk, int(ch)


def run(args, name):
    return dblib.run_exit(args, os.path.join(TMP, name + ".log"), PROCS)


def case(source, sink):
    pipe = "ft_%s_%s" % (source, sink)
    tgt = "w_%s_%s" % (source, sink)
    slot = None if source == "my" else "ftslot_%s_%s" % (ID, sink)
    table = dblib.source_table(source, SRC, "items_" + sink, "id INT PRIMARY KEY, v VARCHAR(40), n VARCHAR(40)",
                               SLOTS, slot)
    sa, sb, sc, after_a, final, ch_a, ch_all = workload(source, table)
    start = None
    if source == "my":
        ms = my("SHOW MASTER STATUS").split()
        start = "%s:%s" % (ms[0], ms[1])
        my(sa)
        ms = my("SHOW MASTER STATUS").split()
        a_file, a_end = ms[0], int(ms[1])
        my(sb + sc)
    else:
        # B's commit LSN, as logical decoding reports it (test_decoding's
        # COMMIT row carries the end of the commit record, like pgoutput's)
        peek = "ftpeek_%s_%s" % (ID, sink)
        SLOTS.append(peek)
        pg("SELECT pg_create_logical_replication_slot('%s', 'test_decoding')" % peek, SRC, superuser=True)
        # flushed at commit (the test server runs synchronous_commit=off),
        # so the peek below sees them
        sync = "SET synchronous_commit = on;\n"
        pg(sync + sa, SRC)
        xid = pg(sync + sb.replace("BEGIN;\n", "BEGIN;\nSELECT txid_current();\n", 1), SRC).split()[0]
        pg(sync + sc, SRC)
        commits = pg("SELECT lsn, data FROM pg_logical_slot_peek_changes('%s', NULL, NULL) WHERE data = 'COMMIT %s'"
                     % (peek, xid), SRC, superuser=True).split()
        if not commits:
            fail("no COMMIT %s in the test_decoding slot" % xid)
        b_end = lsn_int(commits[0])

    def args(nexpr):
        dblib.wide_mapping(MAPF, pipe, tgt, sink, table, "items_" + tgt, {"v": ("text", "v"), "n": ("bigint", nexpr)})
        return dblib.wide_args(pipe, os.path.join(TMP, "state"), MAPF, source, sink, W,
                               start=start, include=SRC + ".*", slot=slot, pub=PUB, tables=table)

    what = "%s source -> %s sink" % (source, sink)
    rc, out = run(args("n"), pipe + "-1")
    if rc != 65:
        fail("%s: the bad value gave exit %s, not 65:\n%s" % (what, rc, out[-2000:]))
    for word in ("'n'", "gold", "items_" + tgt):
        if word not in out:
            fail("%s: the error does not name %s:\n%s" % (what, word, out[-2000:]))
    exp_a = {k: (v, n) for k, (v, n) in after_a.items()}
    got = read_wide(sink, tgt)
    if got != exp_a:
        fail("%s: after the failure the wide table is not A's rows:\n got  %s\n want %s" % (what, got, exp_a))
    pk, ch = read_offsets(sink, pipe)
    if ch != ch_a:
        fail("%s: offsets table counts %d changes after the failure, A has %d" % (what, ch, ch_a))
    ck = read_ckpt(os.path.join(TMP, "state", pipe + ".ckpt"))
    if source == "my":
        if pk is None or int(pk[16:], 16) > a_end:
            fail("%s: offsets table position %s is past A's end %d" % (what, pk, a_end))
        if ck.get("file") != a_file or int(ck.get("offset", "0")) > a_end or not int(ck.get("offset", "0")):
            fail("%s: checkpoint %s:%s is not at or before A's end %s:%d" % (
                what, ck.get("file"), ck.get("offset"), a_file, a_end))
    else:
        if pk is None or int(pk[16:], 16) >= b_end:
            fail("%s: offsets table LSN %s is not before B's commit %X" % (what, pk, b_end))
        if "lsn" in ck and lsn_int(ck["lsn"]) >= b_end:
            fail("%s: checkpoint LSN %s is not before B's commit %X" % (what, ck["lsn"], b_end))
        cf = pg("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '%s'" % slot,
                SRC, superuser=True).strip()
        if lsn_int(cf) >= b_end:
            fail("%s: slot confirmed_flush_lsn %s is not before B's commit %X" % (what, cf, b_end))
    # the fixed mapping: B and C applied once, completely
    rc, out = run(args(FIXED), pipe + "-2")
    if rc != 0:
        fail("%s: the restart with the fixed mapping exited %s:\n%s" % (what, rc, out[-2000:]))
    got = read_wide(sink, tgt)
    if got != final:
        diff = {k: (got.get(k), final.get(k)) for k in set(got) | set(final) if got.get(k) != final.get(k)}
        fail("%s: after the restart the wide table differs (got, want): %s" % (what, diff))
    pk, ch = read_offsets(sink, pipe)
    if ch != ch_all:
        fail("%s: offsets table counts %d changes, the workload has %d (applied once each)" % (what, ch, ch_all))
    log("%s: exit 65, nothing of B, positions before B; after the fix %d rows as computed, %d changes once"
        % (what, len(final), ch_all))


for src in ("my", "pg"):
    for snk in ("pg", "my"):
        case(src, snk)
cleanup()
print("PASS")
