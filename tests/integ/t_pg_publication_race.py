#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Pipelines that share a publication and start at the same moment.

Seen in CI: two PostgreSQL pipelines (their own slots, one publication)
started together; both saw the publication missing, the first created
it, and the second then found no table left to add and sent
"CREATE PUBLICATION p FOR TABLE " (a syntax error, exit 1).  The source
now checks and creates the publication under an advisory lock on its
name.

Part 1: N pipelines (default 6) start at once on a fresh publication;
every one must reach streaming, deliver every row of a seeded workload
(checked by value against SELECT) and exit 0 on --idle-exit; the
publication holds exactly the listed table.
Part 2: postgres.tables naming only tables that do not exist is refused
with exit 78 and the names, not a syntax error.
Env: CDC_PG_RACERS (default 6), CDC_TEST_SEED.  Exit 0 pass, 1 fail,
77 skip.
"""
import json
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dblib  # noqa: E402
import pg_lib  # noqa: E402
from pg_lib import fail, log  # noqa: E402

RACERS = int(os.environ.get("CDC_PG_RACERS", "6"))


def racer_args(pg, i, out):
    args = pg.cdc_args(out, ["-X", "postgres.tables=public.t", "--idle-exit", "3000"],
                       state=os.path.join(pg.tmp, "st%d" % i))
    return [a.replace("postgres.slot=" + pg.slot, "postgres.slot=%s_%d" % (pg.slot, i))
            .replace("pipeline.name=" + pg.db, "pipeline.name=%s_%d" % (pg.db, i)) for a in args]


def main():
    seed = dblib.test_seed()
    rnd = random.Random(seed)
    pg = pg_lib.PG()
    pg.create_db()
    base_slot = pg.slot
    try:
        pg.psql("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)")
        procs = []
        for i in range(RACERS):  # as close together as Popen allows
            out = os.path.join(pg.tmp, "out%d.jsonl" % i)
            errf = open(out + ".err", "ab")
            p = subprocess.Popen(racer_args(pg, i, out), stdout=errf, stderr=errf)
            pg.procs.append(p)
            procs.append((p, out))
        for i, (p, _) in enumerate(procs):
            pg.slot = "%s_%d" % (base_slot, i)
            pg.wait_slot(p, secs=60)
        pg.slot = base_slot
        want = {}
        for i in range(1, 81):
            want[i] = "v%d" % rnd.randrange(10 ** 6)
            pg.psql("INSERT INTO t VALUES (%d, '%s')" % (i, want[i]))
        for i in rnd.sample(sorted(want), 20):
            want[i] = "u%d" % rnd.randrange(10 ** 6)
            pg.psql("UPDATE t SET v = '%s' WHERE id = %d" % (want[i], i))
        got_sel = dict((int(a), b) for a, b in (line.split("|") for line in
                       pg.val("SELECT id, v FROM t ORDER BY id").splitlines()))
        if got_sel != want:
            fail("SELECT disagrees with the workload itself")
        for i, (p, out) in enumerate(procs):
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                fail("pipeline %d did not exit on --idle-exit" % i)
            if p.returncode != 0:
                fail("pipeline %d exited %d: %s" % (i, p.returncode, pg_lib.errtail(p)))
            state = {}
            with open(out) as f:
                for line in f:
                    a = json.loads(line)["payload"]["after"]
                    state[a["id"]] = a["v"]
            if state != want:
                missing = sorted(set(want) - set(state))
                fail("pipeline %d: %d rows differ from SELECT (missing ids %s)"
                     % (i, sum(1 for k in want if state.get(k) != want[k]), missing[:10]))
        pubt = pg.val("SELECT string_agg(schemaname || '.' || tablename, ',') FROM "
                      "pg_publication_tables WHERE pubname = 'p_%s'" % pg.db)
        if pubt != "public.t":
            fail("publication holds %r, want public.t" % pubt)
        log("%d pipelines started together on one publication; each delivered %d rows = SELECT"
            % (RACERS, len(want)))

        # part 2: no listed table exists
        out = os.path.join(pg.tmp, "none.jsonl")
        args = pg.cdc_args(out, ["-X", "postgres.tables=public.nope,public.nope2", "--idle-exit", "2000"],
                           state=os.path.join(pg.tmp, "stnone"))
        args = [a.replace("postgres.publication=p_" + pg.db, "postgres.publication=q_" + pg.db)
                .replace("postgres.slot=" + pg.slot, "postgres.slot=" + pg.slot + "_none") for a in args]
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if r.returncode != 78 or "nope" not in r.stderr or "syntax error" in r.stderr:
            fail("tables that do not exist: want exit 78 naming them, got %d: %s"
                 % (r.returncode, r.stderr[-600:]))
        log("postgres.tables naming missing tables: exit 78, names them")
    finally:
        pg.drop()
    print("ok")


if __name__ == "__main__":
    main()
