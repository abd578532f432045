#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""PostgreSQL row semantics through autoglm-cdc, against a real server:

  * unchanged TOAST: an update that does not touch a large out-of-line
    value lists it in payload.unchanged (never null, never a placeholder);
  * REPLICA IDENTITY DEFAULT (old key only on key change / delete),
    FULL (whole old row, key = the real primary key), USING INDEX (old key
    = the index columns);
  * TRUNCATE -> op "t";
  * ALTER TABLE ADD/DROP COLUMN mid-stream decodes with the new shape;
  * a large transaction streamed in progress (logical_decoding_work_mem
    64kB, proto 2) with a rolled-back subtransaction arrives complete and
    without the rolled-back rows.
Exit 0 pass, 1 fail, 77 skip.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pg_lib  # noqa: E402
from pg_lib import fail, log  # noqa: E402


def expect(cond, msg):
    if not cond:
        fail(msg)


def main():
    pg = pg_lib.PG()
    pg.create_db()
    try:
        pg.psql("""
CREATE TABLE t_def (id int PRIMARY KEY, small text, big text);
ALTER TABLE t_def ALTER big SET STORAGE EXTERNAL;
CREATE TABLE t_full (id int PRIMARY KEY, v text, big text);
ALTER TABLE t_full REPLICA IDENTITY FULL;
ALTER TABLE t_full ALTER big SET STORAGE EXTERNAL;
CREATE TABLE t_idx (a int NOT NULL, b int NOT NULL, v text);
CREATE UNIQUE INDEX t_idx_ab ON t_idx (a, b);
ALTER TABLE t_idx REPLICA IDENTITY USING INDEX t_idx_ab;
CREATE TABLE t_big (id int PRIMARY KEY, pad text);
""")
        out = os.path.join(pg.tmp, "out.json")
        dsn_opts = ["-X", "postgres.tables=public.t_def,public.t_full,public.t_idx,public.t_big", "--idle-exit", "4000"]
        # small logical_decoding_work_mem makes the walsender stream the big txn
        pg.dsn_extra = " options='-c logical_decoding_work_mem=64kB'"
        orig_dsn = pg.dsn
        pg.dsn = lambda: orig_dsn() + pg.dsn_extra
        p = pg.start_cdc(out, dsn_opts)
        pg.wait_slot(p)
        big = "md5(random()::text) || string_agg(md5(random()::text), '') FROM generate_series(1, 400)"
        pg.psql("INSERT INTO t_def SELECT 1, 's1', %s;" % big)
        pg.psql("UPDATE t_def SET small = 's2' WHERE id = 1;")            # big unchanged (TOAST)
        pg.psql("UPDATE t_def SET id = 2 WHERE id = 1;")                  # key change
        pg.psql("DELETE FROM t_def WHERE id = 2;")
        pg.psql("INSERT INTO t_full SELECT 1, 'a', %s;" % big)
        pg.psql("UPDATE t_full SET v = 'b' WHERE id = 1;")
        pg.psql("DELETE FROM t_full WHERE id = 1;")
        pg.psql("INSERT INTO t_idx VALUES (1, 2, 'x'); UPDATE t_idx SET v = 'y'; UPDATE t_idx SET b = 3; DELETE FROM t_idx;")
        pg.psql("INSERT INTO t_def VALUES (10, 'x', 'y'), (11, 'x', 'y'); TRUNCATE t_def;")
        pg.psql("ALTER TABLE t_def ADD COLUMN extra numeric DEFAULT 1.5; INSERT INTO t_def (id, small) VALUES (20, 'after-add');")
        pg.psql("ALTER TABLE t_def DROP COLUMN small; INSERT INTO t_def (id, extra) VALUES (21, 2.25);")
        pg.psql("""BEGIN;
INSERT INTO t_big SELECT g, repeat('x', 200) FROM generate_series(1, 3000) g;
SAVEPOINT s1;
INSERT INTO t_big SELECT g, 'rolled back' FROM generate_series(100001, 101000) g;
ROLLBACK TO SAVEPOINT s1;
INSERT INTO t_big SELECT g, repeat('y', 200) FROM generate_series(3001, 4000) g;
COMMIT;""")
        p.wait(timeout=300)
        expect(p.returncode == 0, "autoglm-cdc exited %s: %s" % (p.returncode, pg_lib.errtail(p)))
        evs = pg_lib.read_envelopes(out)
        by = {}
        for e in evs:
            by.setdefault(e["source"]["table"], []).append(e)

        d = [e["payload"] for e in by.get("t_def", [])]
        ops = [x["op"] for x in d]
        log("t_def ops %s" % ops)
        expect(ops == ["c", "u", "u", "d", "c", "c", "t", "c", "c"], "t_def ops %s" % ops)
        expect(len(d[0]["after"]["big"]) >= 12800, "big value not complete on insert")
        u = d[1]
        expect(u.get("unchanged") == ["big"], "TOAST unchanged not reported: %s" % {k: u.get(k) for k in ("unchanged", "after")})
        expect("big" not in u["after"] and u["after"]["small"] == "s2", "after image of TOAST update: %s" % u["after"].keys())
        expect(u["before"] is None, "DEFAULT identity: no old row without key change, got %s" % u["before"])
        k = d[2]
        expect(k["before"] == {"id": 1}, "key change before image = old key only, got %s" % k["before"])
        expect(k["after"]["id"] == 2, "key change after")
        expect(d[3]["before"] == {"id": 2} and d[3]["after"] is None, "DEFAULT delete before = key: %s" % d[3]["before"])
        expect(d[6]["before"] is None and d[6]["after"] is None, "truncate images")
        expect(d[7]["after"] == {"id": 20, "small": "after-add", "big": None, "extra": "1.5"}, "ADD COLUMN: %s" % d[7]["after"])
        expect(d[8]["after"] == {"id": 21, "big": None, "extra": "2.25"}, "DROP COLUMN: %s" % d[8]["after"])

        f = [e for e in by.get("t_full", [])]
        expect([e["payload"]["op"] for e in f] == ["c", "u", "d"], "t_full ops")
        fu = f[1]["payload"]
        expect(fu["before"]["v"] == "a" and fu["before"]["id"] == 1 and len(fu["before"].get("big", "")) >= 12800,
               "FULL update: complete old row expected, got keys %s" % list(fu["before"].keys()))
        expect(f[2]["payload"]["before"]["v"] == "b", "FULL delete old row")
        if "key" in f[1]["payload"]:
            expect(f[1]["payload"]["key"] == {"id": 1}, "FULL key = primary key, got %s" % f[1]["payload"]["key"])

        i = [e["payload"] for e in by.get("t_idx", [])]
        expect([x["op"] for x in i] == ["c", "u", "u", "d"], "t_idx ops %s" % [x["op"] for x in i])
        expect(i[1]["before"] is None, "USING INDEX update without key change: no before")
        expect(i[2]["before"] == {"a": 1, "b": 2}, "USING INDEX key change before: %s" % i[2]["before"])
        expect(i[3]["before"] == {"a": 1, "b": 3}, "USING INDEX delete before: %s" % i[3]["before"])

        b = [e["payload"] for e in by.get("t_big", [])]
        ids = sorted(x["after"]["id"] for x in b)
        expect(ids == list(range(1, 4001)), "streamed txn: %d rows, first/last %s" % (len(ids), ids[:1] + ids[-1:]))
        txids = {e["source"].get("txId") for e in by.get("t_big", [])}
        expect(len(txids) == 1, "streamed txn split over txIds %s" % txids)
        st = pg.val("SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = '%s'" % pg.slot)
        log("stream_txns of the slot: %s" % st)
        expect(st and int(st) >= 1, "the big transaction was not streamed (stream_txns %s)" % st)
        log("ok: %d envelopes" % len(evs))
    finally:
        pg.drop()


if __name__ == "__main__":
    main()
