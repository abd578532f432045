#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""errors.mode: dead-letter for the wide sinks (issue 12, item 3).

MariaDB -> PostgreSQL sink and PostgreSQL -> MariaDB sink.  A seeded random
workload of inserts and updates in multi-row transactions has a few
values the mapping rejects (n is a bigint; some rows say 'gold' or
'silver') and a few the database refuses (the operator made the wide
table's v a VARCHAR(8); some values are longer).  With
errors.mode=dead-letter the pipeline goes on:

  run      exit 0; the wide table equals the rows this script computes
           from the good changes alone; the dead-letter table holds exactly
           the bad changes (table, op, and the error: field n, the value
           and the mapping; or the database's "too long");
           /metrics autoglm_cdc_dead_letters_total and `status` (DEAD
           LETTERS) count them while the daemon runs; the offsets table
           counts every change once
  list     `dead-letter list` shows each, with its value
  retry    with the mapping still broken: exit 65, nothing applied, rows
           kept; after fixing the mapping: exit 0, the table is empty and
           the wide table equals the rows computed from every change with
           the fixed mapping (n: a value map, v: substr(v, 1, 8)); old dead
           letters lose to newer changes by their rank
  errors   no or an unknown action: exit 2; the Kafka sink: exit 78

Env: CDC_DL_SEED.  Exit 0 pass, 1 fail, 77 skip.
"""
import os
import random
import subprocess
import tempfile

import dblib
from dblib import pgx as pg, BIN, fail, log, my

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

SEED = int(os.environ.get("CDC_DL_SEED") or dblib.test_seed())
ID = "%d" % os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-dl-")
PROCS = []
SRC = "dlsrc_" + ID
W = "dlw_" + ID
PUB = "dlpub_" + ID
SLOTS = []
BAD = {"gold": -1, "silver": -2}
ITEMS = "id INT PRIMARY KEY, v VARCHAR(40), n VARCHAR(40)"
FIXED = "case when n = 'gold' then -1 when n = 'silver' then -2 else n end"
VLEN = 8  # the wide table's v is VARCHAR(VLEN)


cleanup, rnd = dblib.wide_test(SRC, W, PUB, PROCS, TMP, SLOTS, SEED)


def workload(table):
    """Transactions of (id, v, n) writes; returns the SQL statements per
    transaction and the list of all writes in order."""
    txns, writes, known, used = [], [], [], set()
    for t in range(rnd.randint(6, 10)):
        stmts = []
        for i in range(rnd.randint(2, 6)):
            # a value the database refuses goes to a key never written
            # again: a newer change of the key in the same batch would win
            # every field in the sink's merge, and the refused value would
            # never reach the database (nor need to)
            long_v = rnd.random() < 0.12
            if known and not long_v and rnd.random() < 0.4:
                k = rnd.choice(known)
            else:
                k = rnd.randint(1, 10 ** 6)
                while k in known or k in used:
                    k = rnd.randint(1, 10 ** 6)
                if not long_v:
                    known.append(k)
                used.add(k)
            n = rnd.choice(sorted(BAD)) if rnd.random() < 0.15 else str(rnd.randint(-10 ** 15, 10 ** 15))
            v = "L%d_%s" % (t, "x" * rnd.randint(VLEN, 20)) if long_v else "t%d_%d" % (t, i)
            writes.append((k, v, n))
            stmts.append((k, v, n))
        txns.append(stmts)
    # at least one bad change in the middle of a multi-row transaction
    t = rnd.randrange(len(txns))
    while len(txns[t]) < 3:
        k = max(used) + 1
        known.append(k)
        used.add(k)
        txns[t].append((k, "f%d" % t, "1"))
    mid = rnd.randint(1, len(txns[t]) - 2)
    k, v, _ = txns[t][mid]
    txns[t][mid] = (k, v, rnd.choice(sorted(BAD)))
    writes = [w for tx in txns for w in tx]
    return txns, writes


def bad(w):
    return w[2] in BAD or len(w[1]) > VLEN


def expect(writes, fixed):
    rows = {}
    for k, v, n in writes:
        if bad((k, v, n)) and not fixed:
            continue
        rows[k] = (v[:VLEN], int(BAD.get(n, n)))
    return rows


def read_wide(sink, table):
    q = "SELECT k, v, n FROM %s" % table
    out = pg(q, W).replace("\x1f", "\t") if sink == "pg" else my(q, W)
    return {int(k): (v, int(n)) for k, v, n in (ln.split("\t") for ln in out.splitlines())}


def q_sink(sink, q):
    return (pg(q, W).replace("\x1f", "\t") if sink == "pg" else my(q, W)).strip()


def case(source, sink):
    pipe = "dl_%s_%s" % (source, sink)
    tgt = "dlw_%s_%s" % (source, sink)
    mname = "items_" + tgt
    mapf = os.path.join(TMP, pipe + ".yaml")
    start, slot = None, (None if source == "my" else "dlslot_%s_%s" % (ID, sink))
    table = dblib.source_table(source, SRC, "items_" + sink, ITEMS, SLOTS, slot)
    if source == "my":
        ms = my("SHOW MASTER STATUS").split()
        start = "%s:%s" % (ms[0], ms[1])
    txns, writes = workload(table)
    nbad = sum(1 for w in writes if bad(w))
    # the operator's table: v narrower than the mapping's text
    q_sink(sink, "CREATE TABLE %s (k BIGINT PRIMARY KEY, v VARCHAR(%d), n BIGINT, _provenance %s)" % (
        tgt, VLEN, "jsonb NOT NULL DEFAULT '{}'" if sink == "pg" else "LONGTEXT"))
    for tx in txns:
        body = " ".join("INSERT INTO %s VALUES (%d, '%s', '%s') %s;" % (
            table, k, v, n, "ON DUPLICATE KEY UPDATE v = VALUES(v), n = VALUES(n)" if source == "my"
            else "ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v, n = EXCLUDED.n") for k, v, n in tx)
        if source == "my":
            my("START TRANSACTION; %s COMMIT;" % body)
        else:
            pg("BEGIN; %s COMMIT;" % body, SRC)

    def args(nexpr, extra=(), vexpr="v"):
        dblib.wide_mapping(mapf, pipe, tgt, sink, table, mname, {"v": ("text", vexpr), "n": ("bigint", nexpr)})
        a = dblib.wide_args(pipe, os.path.join(TMP, "state"), mapf, source, sink, W, start=start,
                            include=SRC + ".*", slot=slot, pub=PUB, tables=table)
        return a + ["-X", "errors.mode=dead-letter"] + list(extra)

    def dl_args(a):
        """The pipeline options of a run command line, for dead-letter: the
        options only `run` takes (--idle-exit, --http) are usage errors."""
        out, i = [], 1
        while i < len(a):
            if a[i] in ("--idle-exit", "--http"):
                i += 2
                continue
            out.append(a[i])
            i += 1
        return out

    what = "%s -> %s" % (source, sink)
    port = dblib.free_port()
    a = args("n", ["--http", "127.0.0.1:%d" % port])
    a[a.index("--idle-exit") + 1] = "6000"
    logf = open(os.path.join(TMP, pipe + ".log"), "ab")
    p = subprocess.Popen(a, stdout=logf, stderr=logf)
    PROCS.append(p)
    # while it runs: the counter and the status table
    metric = dblib.wait_metric(port, "autoglm_cdc_dead_letters_total", nbad, p)
    if metric != nbad:
        fail("%s: autoglm_cdc_dead_letters_total is %s, the workload has %d bad changes" % (what, metric, nbad))
    st = subprocess.run([BIN, "status", "--url", "http://127.0.0.1:%d" % port], capture_output=True, text=True)
    lines = st.stdout.splitlines()
    if st.returncode or len(lines) < 2 or "DEAD LETTERS" not in lines[0]:
        fail("%s: status: exit %d:\n%s%s" % (what, st.returncode, st.stdout, st.stderr))
    col = lines[0].index("DEAD LETTERS") + len("DEAD LETTERS")
    shown = lines[1][:col].split()[-1]
    if shown != str(nbad):
        fail("%s: status shows %s dead letters, want %d:\n%s" % (what, shown, nbad, st.stdout))
    rc = p.wait(timeout=60)
    if rc != 0:
        fail("%s: the dead-letter run exited %d" % (what, rc))
    got, want = read_wide(sink, tgt), expect(writes, False)
    if got != want:
        fail("%s: wide table after the run (got, want): %s" % (
            what, {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)}))
    dl = q_sink(sink, "SELECT source_table, op, error FROM autoglm_cdc_dead_letter WHERE pipeline = '%s' "
                "ORDER BY id" % pipe).splitlines()
    if len(dl) != nbad:
        fail("%s: %d dead-letter rows, want %d" % (what, len(dl), nbad))
    mapped = sorted(w[2] for w in writes if w[2] in BAD)
    refused = sum(1 for w in writes if w[2] not in BAD and len(w[1]) > VLEN)
    got_mapped, got_refused = [], 0
    for row in dl:
        t, op, err = row.split("\t")
        if t != table or op not in ("c", "u"):
            fail("%s: dead-letter row %r is not a change of %s" % (what, row, table))
        if "too long" in err.lower() and "target " + tgt in err and "field 'v' = 'L" in err and mname in err:
            got_refused += 1
        elif "field 'n'" in err and mname in err:
            got_mapped += [val for val in BAD if "'%s'" % val in err]
        else:
            fail("%s: dead-letter row %r names neither field n, its value and mapping %s, nor the database's "
                 "refusal" % (what, row, mname))
    if sorted(got_mapped) != mapped or got_refused != refused:
        fail("%s: dead letters: %s values and %d refused, want %s and %d" % (what, sorted(got_mapped), got_refused,
                                                                            mapped, refused))
    ch = int(q_sink(sink, "SELECT changes FROM autoglm_cdc_offsets WHERE pipeline = '%s'" % pipe))
    if ch != len(writes):
        fail("%s: offsets table counts %d changes, the workload has %d" % (what, ch, len(writes)))
    # list
    r = subprocess.run([BIN, "dead-letter", "list"] + dl_args(a), capture_output=True, text=True)
    if r.returncode or r.stdout.count("\n  error: ") != nbad or "%d dead letter" % nbad not in r.stdout:
        fail("%s: dead-letter list: exit %d\n%s%s" % (what, r.returncode, r.stdout, r.stderr))
    for k, v, n in writes:
        if bad((k, v, n)) and '"v":"%s","n":"%s"' % (v, n) not in r.stdout:
            fail("%s: dead-letter list does not show the change v=%s n=%s:\n%s" % (what, v, n, r.stdout))
    # retry, still broken
    r = subprocess.run([BIN, "dead-letter", "retry"] + dl_args(args("n")), capture_output=True, text=True)
    if r.returncode != 65 or "still fails" not in r.stdout or "0 applied" not in r.stdout:
        fail("%s: retry with the broken mapping: exit %d\n%s%s" % (what, r.returncode, r.stdout, r.stderr))
    if read_wide(sink, tgt) != want or len(q_sink(sink, "SELECT id FROM autoglm_cdc_dead_letter").split()) != nbad:
        fail("%s: a failed retry changed the tables" % what)
    # retry, fixed
    r = subprocess.run([BIN, "dead-letter", "retry"] + dl_args(args(FIXED, vexpr="substr(v, 1, %d)" % VLEN)),
                       capture_output=True, text=True)
    if r.returncode != 0 or "%d applied, 0 still failing" % nbad not in r.stdout:
        fail("%s: retry with the fixed mapping: exit %d\n%s%s" % (what, r.returncode, r.stdout, r.stderr))
    left = q_sink(sink, "SELECT count(*) FROM autoglm_cdc_dead_letter WHERE pipeline = '%s'" % pipe)
    if left != "0":
        fail("%s: %s dead letters left after a successful retry" % (what, left))
    got, want = read_wide(sink, tgt), expect(writes, True)
    if got != want:
        fail("%s: wide table after the retry (got, want): %s" % (
            what, {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)}))
    log("%s: %d changes, %d dead letters (metrics, status, table, list); retry applied them, %d rows as computed"
        % (what, len(writes), nbad, len(want)))


case("my", "pg")
case("pg", "my")
# the command's own errors: no or an unknown action (2), a sink without a
# dead-letter table (78)
for extra, want in (([], 2), (["again"], 2), (["list", "--sink", "kafka", "--kafka-brokers", "127.0.0.1:1"], 78)):
    r = subprocess.run([BIN, "dead-letter"] + extra, capture_output=True, text=True)
    if r.returncode != want or "dead-letter" not in r.stderr + r.stdout:
        fail("dead-letter %s: exit %d, want %d: %s" % (" ".join(extra), r.returncode, want, r.stderr))
cleanup()
print("PASS")
