#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Backfill on PostgreSQL: consistent first load, then watermarked chunks
during random DML while the stream runs; everything converges to SELECT.

Table: every type of t_pg_types.py (enums, domains, arrays, json, bytea,
numeric NaN, ...), plus a generated column (left out, as pgoutput does).
  1. preload rows (only a backfill can deliver them);
  2. `autoglm-cdc backfill` with an empty state dir: consistent first load
     (slot created with an exported snapshot, its consistent_point stored
     as the stream's checkpoint);
  3. the daemon starts from that checkpoint while a random workload runs;
  4. a second backfill (incremental: low/high watermarks, window reader on
     its own temporary slot) runs during the workload;
  5. rebuild: the first load's rows, then the stream in its (commit) order,
     each watermarked chunk applied right after its high watermark row in
     the stream (the chunk's rows carry that row's LSN; the daemon captures
     the signal table) must equal SELECT value for value; backfill rows must be op 'r' and the
     first load's rows must equal SELECT at the snapshot (no gap: the
     stream alone completes them).  No replication slot of the backfill is
     left behind.
Env: CDC_TEST_SEED, CDC_BF_PG_ROWS (default 400).  Exit 0/1/77.
"""
import json
import os
import random
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pg_lib  # noqa: E402
from pg_lib import fail, log  # noqa: E402
import t_pg_types as ty  # noqa: E402  (COLS, gen; seeded by CDC_TEST_SEED)

ROWS = int(os.environ.get("CDC_BF_PG_ROWS", "400"))
TABLES = "public.alltypes,public.autoglm_cdc_signal"
SIGNAL_DDL = ("CREATE TABLE autoglm_cdc_signal (id text PRIMARY KEY, kind text NOT NULL, "
              "ts timestamptz NOT NULL DEFAULT now());")


def bf(pg, out, state, extra=()):
    args = [pg_lib.BIN, "backfill", "--source", "postgres", "--postgres-dsn", pg.dsn(), "--table",
            "public.alltypes", "--sink", "file", "--output", out, "--state-dir", state,
            "-X", "postgres.slot=" + pg.slot, "-X", "postgres.publication=p_" + pg.db,
            "-X", "pipeline.name=" + pg.db, "-X", "postgres.tables=" + TABLES] + list(extra)
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        fail("backfill exited %d: %s" % (r.returncode, r.stderr[-3000:]))
    return r.stderr


def insert_sql(i):
    cols = [c for c in ty.COLS if ty.rnd.random() < .8]
    return "INSERT INTO alltypes (id%s) VALUES (%d%s);" % (
        "".join(", " + c[0] for c in cols), i, "".join(", " + ty.gen(c) for c in cols))


def workload(pg, stop, ids, next_id, counter):
    env = dict(os.environ, PGPASSWORD=pg.password, PGOPTIONS=pg_lib.SESSION)
    p = subprocess.Popen(["psql", "-X", "-q", "-h", pg.host, "-p", pg.port, "-U", pg.user, "-d", pg.db],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         text=True, env=env)
    rnd = ty.rnd
    t_end = time.time() + 90    # never outlive a stuck backfill
    while not stop.is_set() and time.time() < t_end:
        sql = []
        for _ in range(rnd.randint(1, 4)):
            r = rnd.random()
            if r < .25 or not ids:
                sql.append(insert_sql(next_id[0]))
                ids.append(next_id[0])
                next_id[0] += 1
            elif r < .75:
                cols = rnd.sample(ty.COLS, rnd.randint(1, 5))
                sets = ", ".join("%s = %s" % (c[0], rnd.choice([ty.gen(c), "NULL"])) for c in cols)
                sql.append("UPDATE alltypes SET %s WHERE id = %d;" % (sets, rnd.choice(ids)))
            elif r < .9:
                v = rnd.choice(ids)
                ids.remove(v)
                sql.append("DELETE FROM alltypes WHERE id = %d;" % v)
            else:
                old = rnd.choice(ids)
                ids.remove(old)
                ids.append(next_id[0])
                sql.append("UPDATE alltypes SET id = %d WHERE id = %d;" % (next_id[0], old))
                next_id[0] += 1
        p.stdin.write("BEGIN;" + "".join(sql) + "COMMIT;\n")
        p.stdin.flush()
        counter[0] += 1
        time.sleep(rnd.random() * 0.01)
    p.stdin.close()
    p.wait()


def main():
    pg = pg_lib.PG()
    log("seed %d, %d rows, db %s" % (ty.SEED, ROWS, pg.db))
    pg.create_db()
    try:
        pg.psql("CREATE TYPE mood AS ENUM ('happy', 'sad', 'very, \"ok\"');"
                "CREATE DOMAIN posint AS int8 CHECK (VALUE > 0);"
                "CREATE DOMAIN shorttext AS varchar(8);"
                "CREATE TABLE alltypes (id int PRIMARY KEY, %s, gen int8 GENERATED ALWAYS AS (id * 2) STORED)"
                % ", ".join("%s %s" % (c, t) for c, t, _, _ in ty.COLS) + ";" + SIGNAL_DDL)
        sql = [insert_sql(i) for i in range(1, ROWS + 1)]
        for k in range(0, len(sql), 100):
            pg.psql("BEGIN;" + "".join(sql[k:k + 100]) + "COMMIT;")
        ids, next_id = list(range(1, ROWS + 1)), [ROWS + 1]
        state = os.path.join(pg.tmp, "state")

        # 2. consistent first load
        f1 = os.path.join(pg.tmp, "bf1.json")
        err1 = bf(pg, f1, state, ["--chunk-size", "33"])
        if "consistent first load at lsn" not in err1:
            fail("first backfill was not a consistent first load:\n" + err1[-2000:])
        ck = open(os.path.join(state, pg.db + ".ckpt")).read()
        cp_text = [l for l in ck.splitlines() if l.startswith("lsn=")][0][4:]
        hi, lo = cp_text.split("/")
        cp = int(hi, 16) << 32 | int(lo, 16)
        ev1 = pg_lib.read_envelopes(f1)
        if len(ev1) != ROWS or any(e["payload"]["op"] != "r" for e in ev1):
            fail("first load: %d envelopes (want %d, all op r)" % (len(ev1), ROWS))
        if any(e["source"]["lsn"] != cp for e in ev1):
            fail("first load rows are not stamped with the consistent point %s" % cp_text)
        log("first load: %d rows at consistent point %s" % (len(ev1), cp_text))

        # 3. the stream from the checkpoint, workload, 4. watermarked backfill
        out = os.path.join(pg.tmp, "stream.json")
        p = pg.start_cdc(out, ["-X", "postgres.tables=" + TABLES, "--idle-exit", "5000"], state=state)
        pg.wait_slot(p)
        stop, cnt = threading.Event(), [0]
        th = threading.Thread(target=workload, args=(pg, stop, ids, next_id, cnt))
        th.start()
        time.sleep(1)
        f2 = os.path.join(pg.tmp, "bf2.json")
        err2 = bf(pg, f2, state, ["-X", "backfill.mode=incremental", "--chunk-size", "20",
                                  "--max-rows-per-sec", "150"])
        time.sleep(0.5)
        stop.set()
        th.join()
        p.wait(timeout=300)
        if p.returncode != 0:
            fail("daemon exited %d: %s" % (p.returncode, pg_lib.errtail(p)))
        if "watermarks on" not in err2:
            fail("second backfill did not use watermarks:\n" + err2[-2000:])
        ev2 = pg_lib.read_envelopes(f2)
        evs = pg_lib.read_envelopes(out)
        if any(e["payload"]["op"] != "r" for e in ev2):
            fail("second backfill produced non-r events")
        # (no LSN check for overlap: a transaction committed after the
        # consistent point may hold changes with smaller LSNs; the final
        # state comparison below catches gaps and overlaps)
        left = pg.val("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE '%s\\_bf%%'" % pg.slot)
        if left != "0":
            fail("%s backfill window slot(s) left behind" % left)
        left = pg.val("SELECT count(*) FROM pg_publication WHERE pubname LIKE 'p\\_%s\\_bf%%'" % pg.db)
        if left != "0":
            fail("%s backfill window publication(s) left behind" % left)
        import re
        m = re.search(r"(\d+) rows left to the stream by the watermark rule", err2)
        log("workload %d txns; stream %d events; watermarked backfill %d rows, %s dropped"
            % (cnt[0], len(evs), len(ev2), m.group(1) if m else "?"))

        # 5. rebuild: first load, then the stream in commit order with each
        # chunk right after its high watermark (same LSN as the chunk's rows)
        chunks = {}
        for e in ev2:
            chunks.setdefault(e["source"]["lsn"], []).append(e)
        seq, placed = list(ev1), 0
        for e in evs:
            if e["source"]["table"] == "autoglm_cdc_signal":
                c = chunks.pop(e["source"]["lsn"], None)
                if c:
                    seq += c
                    placed += 1
                continue
            seq.append(e)
        if chunks:
            fail("%d chunks have no high watermark in the stream" % len(chunks))
        log("%d watermarked chunks placed at their high watermarks" % placed)
        got = pg_lib.replay(seq).get("public.alltypes", {})
        want = pg_lib.select_rows(pg, "alltypes", ["id"] + [c for c, _, _, _ in ty.COLS])
        if set(got) != set(want):
            fail("keys differ: only rebuilt %s, only in table %s" % (sorted(set(got) - set(want))[:10],
                                                                      sorted(set(want) - set(got))[:10]))
        bad = 0
        for k, row in want.items():
            if "gen" in got[k]:
                fail("generated column gen was emitted")
            for c, _, kind, _ in ty.COLS:
                exp = pg_lib.to_json(kind, row[c])
                if not pg_lib.same(got[k].get(c), exp):
                    bad += 1
                    if bad <= 10:
                        log("id %d column %s: rebuilt %r, SELECT %r" % (k, c, got[k].get(c), exp))
        if bad:
            fail("%d values differ (seed %d)" % (bad, ty.SEED))
        log("ok: %d rows x %d columns equal SELECT" % (len(want), len(ty.COLS)))
        print("PASS: PostgreSQL backfill: consistent first load + stream, watermarked backfill during DML")
    finally:
        pg.drop()


if __name__ == "__main__":
    main()
