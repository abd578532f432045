#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Restart without loss, and bounded WAL retention, against a real server.

Part 1 (kill -9): a writer commits small transactions (inserts and
updates) on public.k while autoglm-cdc (postgres -> file sink) is started
and killed with SIGKILL KILLS times at random moments, then run once more
until idle; each kill must hit a running process.  Over all runs, in
order: per key the values of v are exactly 1..n (inserts write 1, each
update adds 1; a replay after a kill may go back and climb again,
dblib.check_sequences), every row change of the workload appears (by its
change LSN), and the state rebuilt from the envelopes equals SELECT.

Part 2 (WAL retention): with only an unpublished table changing (and a
heartbeat configured), the slot's confirmed_flush_lsn and restart_lsn must
follow the server's WAL position instead of staying behind.
Env: CDC_PG_KILLS (default 6), CDC_PG_TXNS (default 1500), CDC_TEST_SEED.
Exit 0 pass, 1 fail, 77 skip.
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dblib  # noqa: E402
import pg_lib  # noqa: E402
from pg_lib import fail, log  # noqa: E402

KILLS = int(os.environ.get("CDC_PG_KILLS", "6"))
TXNS = int(os.environ.get("CDC_PG_TXNS", "1500"))


def lsn_int(s):
    hi, lo = s.split("/")
    return int(hi, 16) << 32 | int(lo, 16)


def writer(pg, stats, stop, seed):
    """Commits TXNS transactions of 1-5 changes through one psql session;
    stats["v"]: the last value of v per key."""
    rnd = random.Random(seed)
    last = stats["v"] = {}
    env = dict(os.environ, PGPASSWORD=pg.password)
    ps = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.host, "-p", pg.port, "-U", pg.user,
                           "-d", pg.db], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    next_id, n = 1, 0
    for t in range(TXNS):
        stmts = []
        for _ in range(rnd.randint(1, 5)):
            if next_id == 1 or rnd.random() < .6:
                stmts.append("INSERT INTO k VALUES (%d, 1);" % next_id)
                last[next_id] = 1
                next_id += 1
            else:
                k = rnd.randrange(1, next_id)
                stmts.append("UPDATE k SET v = v + 1 WHERE id = %d;" % k)
                last[k] += 1
            n += 1
        ps.stdin.write("BEGIN;" + "".join(stmts) + "COMMIT;\n")
        if t % 20 == 0:
            ps.stdin.flush()
            time.sleep(0.01)
    ps.stdin.close()
    ps.wait()
    stats["changes"] = n
    stop.set()


def read_all(paths):
    evs = []
    for p in paths:
        if not os.path.exists(p):
            continue
        lines = open(p).read().split("\n")
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                evs.append(pg_lib.json.loads(line))
            except ValueError:
                if i < len(lines) - 2:
                    fail("%s: bad line %d in the middle of the file" % (p, i + 1))
    return evs


def main():
    pg = pg_lib.PG()
    pg.create_db()
    try:
        pg.psql("CREATE TABLE k (id int PRIMARY KEY, v int); CREATE TABLE unrelated (id serial PRIMARY KEY, pad text);")
        args = ["-X", "postgres.tables=public.k", "-X", "checkpoint.interval_ms=200"]
        outs = []
        # first run creates the slot before the workload starts
        out = os.path.join(pg.tmp, "out0.json")
        outs.append(out)
        p = pg.start_cdc(out, args)
        pg.wait_slot(p)
        seed = dblib.test_seed()
        stats, stop = {}, threading.Event()
        th = threading.Thread(target=writer, args=(pg, stats, stop, seed))
        th.start()
        rnd = random.Random(seed + 1)
        for k in range(KILLS):
            time.sleep(rnd.uniform(0.3, 2.0))
            dblib.kill9(p, "autoglm-cdc (kill %d): %s" % (k + 1, pg_lib.errtail(p)[-500:]))
            out = os.path.join(pg.tmp, "out%d.json" % (k + 1))
            outs.append(out)
            p = pg.start_cdc(out, args)
            pg.wait_slot(p)
        th.join()
        dblib.kill9(p, "autoglm-cdc (last): %s" % pg_lib.errtail(p)[-500:])
        out = os.path.join(pg.tmp, "final.json")
        outs.append(out)
        rc, err = pg.run_cdc(out, args + ["--idle-exit", "4000"], timeout=300)
        if rc != 0:
            fail("final run exited %d: %s" % (rc, err[-2000:]))
        evs = read_all(outs)
        lsns = [e["source"]["lsn"] for e in evs]
        uniq = set(lsns)
        log("%d changes written, %d envelopes, %d unique, %d duplicates over %d kills" %
            (stats["changes"], len(evs), len(uniq), len(lsns) - len(uniq), KILLS))
        if len(uniq) != stats["changes"]:
            fail("lost changes: %d unique change LSNs for %d changes" % (len(uniq), stats["changes"]))
        seqs = {}
        for e in evs:
            if e["source"]["table"] == "k":
                seqs.setdefault(e["payload"]["after"]["id"], []).append(e["payload"]["after"]["v"])
        errs = dblib.check_sequences(seqs, stats["v"])
        if errs:
            fail("per-key values are not exactly 1..n:\n  " + "\n  ".join(errs[:10]))
        got = pg_lib.replay(evs).get("public.k", {})
        want = {int(r.split("|")[0]): int(r.split("|")[1]) for r in pg.psql("SELECT id, v FROM k").split()}
        if {k: v["v"] for k, v in got.items()} != want:
            diff = [k for k in want if got.get(k, {}).get("v") != want[k]]
            fail("replayed state differs from SELECT for %d keys, e.g. %s" % (len(diff), diff[:5]))
        log("kill -9: nothing lost, state equal (%d rows)" % len(want))

        # ---- part 2: WAL retention while only an unpublished table changes
        out = os.path.join(pg.tmp, "idle.json")
        p = pg.start_cdc(out, args + ["-X", "postgres.heartbeat_ms=1000"])
        pg.wait_slot(p)
        start_lsn = lsn_int(pg.current_lsn())
        deadline = time.time() + 90
        ok = False
        while time.time() < deadline:
            pg.psql("INSERT INTO unrelated (pad) SELECT repeat('x', 500) FROM generate_series(1, 4000);")
            pg.psql("CHECKPOINT", superuser=True)
            time.sleep(1)
            restart, confirmed, _ = pg.slot_row()
            cur = lsn_int(pg.current_lsn())
            lag_c, lag_r = cur - lsn_int(confirmed), cur - lsn_int(restart)
            log("wal %d MB past start; confirmed lag %d kB, restart lag %d kB" %
                ((cur - start_lsn) >> 20, lag_c >> 10, lag_r >> 10))
            # bounded: the slot keeps up with the WAL instead of pinning it
            if (cur - start_lsn) > (32 << 20) and lsn_int(restart) > start_lsn + (16 << 20) \
                    and lag_c < (8 << 20) and lag_r < (16 << 20):
                ok = True
                break
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        if not ok:
            fail("WAL retention not bounded: slot does not follow the WAL while only unpublished tables change")
        if pg_lib.read_envelopes(out):
            fail("changes of an unpublished table were emitted")
        log("ok")
    finally:
        pg.drop()


if __name__ == "__main__":
    main()
