#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Every envelope is one line, in both formats; unchanged TOAST is marked
in both (issue 12, item 7).

On the real PostgreSQL: a table with a column of every type t_pg_types
covers, plus a `json` column whose values keep raw newlines, tabs, odd
spacing and duplicate keys (json, unlike jsonb, keeps the text as written)
and a TOASTed text column.  A seeded workload inserts, updates random
columns (mostly not the TOASTed one, so pgoutput sends it as unchanged) and
deletes.  Two pipelines read it, one per format (autoglm, debezium), each
on its own slot.  For each output file:
  * every line is one envelope that parses, and the lines are all there is;
  * replaying it (keeping a column's previous value when the envelope lists
    it as unchanged: payload.unchanged, or the top-level unchanged array of
    --format debezium) gives SELECT's rows, value by value;
  * the json column is the same JSON value as SELECT's, with its keys in
    the same order (duplicates included);
  * every envelope validates against docs/envelope.schema.json.
Env: CDC_TEST_SEED, CDC_PG_LINES_OPS (default 300).  Exit 0/1/77.
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dblib  # noqa: E402
import pg_lib  # noqa: E402
import t_pg_types as types  # noqa: E402
from pg_lib import fail, log  # noqa: E402

OPS = int(os.environ.get("CDC_PG_LINES_OPS", "300"))
SEED = dblib.test_seed()  # CDC_TEST_SEED
rnd = random.Random(SEED)
types.rnd = rnd  # the type generators draw from this seed too


def raw_json(depth=0):
    """JSON text with whitespace anywhere between tokens (raw newlines)."""
    ws = lambda: rnd.choice(["", " ", "\n", "\r\n", "\t", "  \n  "])  # noqa: E731
    k = rnd.randrange(6) if depth < 3 else 0
    if k == 0:
        s = rnd.choice(['"a\\nb \\"q\\" é"', "null", "true", "-1.5e3", "12", '"  "'])
    elif k in (1, 2):
        s = "[" + ",".join(raw_json(depth + 1) for _ in range(rnd.randrange(4))) + ws() + "]"
    else:
        keys = [rnd.choice(["z", "a", "m", "k k", "é"]) for _ in range(rnd.randrange(5))]
        s = "{" + ",".join(ws() + json.dumps(kk) + ws() + ":" + raw_json(depth + 1) for kk in keys) + ws() + "}"
    return ws() + s + ws()


def big_text():
    # incompressible, beyond the 2 kB TOAST threshold: stored out of line
    return "'%s'" % "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789 \n") for _ in range(rnd.randint(3000, 9000)))


COLS = types.COLS + [("jraw", "json", "json", lambda: types.q(raw_json())), ("big", "text", "text", big_text)]


def pairs(text):
    return json.loads(text, object_pairs_hook=lambda p: ("obj", p))


def pair_get(obj, key):
    for k, v in obj[1]:
        if k == key:
            return v
    return None


def check_file(path, fmt, pg, want, raw_want):
    data = open(path, "rb").read()
    if not data.endswith(b"\n"):
        fail("%s: the output does not end with a newline" % fmt)
    evs, ordered = [], []
    for n, line in enumerate(data.split(b"\n")[:-1]):
        try:
            evs.append(json.loads(line))
            ordered.append(pairs(line))
        except ValueError as ex:
            fail("%s: line %d is not one envelope (%s): %r" % (fmt, n + 1, ex, line[:200]))
    if fmt == "debezium":  # the replay helper reads the autoglm layout
        # Debezium writes JSON columns and arrays without a Connect array
        # schema as JSON-encoded strings: back to the values they encode
        jcols = {c[0] for c in COLS if c[1] in ("json", "jsonb") or c[1].endswith("[]")}
        for e in evs:
            for img in (e.get("before"), e.get("after")):
                for c in jcols & set(img or {}):
                    if isinstance(img[c], str):
                        img[c] = json.loads(img[c])
        evs = [{"payload": dict(e, unchanged=e.get("unchanged", [])), "source": e["source"]} for e in evs]
        ordered = [("obj", [("payload", o)]) for o in ordered]
    unchanged = sum(len(e["payload"].get("unchanged", [])) for e in evs)
    got = pg_lib.replay(evs).get("public.alltypes", {})
    if set(got) != set(want):
        fail("%s: keys differ: only replayed %s, only in the table %s" % (
            fmt, sorted(set(got) - set(want))[:10], sorted(set(want) - set(got))[:10]))
    bad = types.count_diffs(got, want, COLS, fmt + ": ")
    if bad:
        fail("%s: %d values differ (seed %d)" % (fmt, bad, SEED))
    # key order of the json column: the last image of each row
    last = {}
    for o in ordered:
        img = pair_get(pair_get(o, "payload"), "after")
        if img and img != "null" and isinstance(img, tuple):
            last[pair_get(img, "id")] = img
    for k, raw in raw_want.items():
        if raw is None or k not in last:
            continue
        v = next((v for kk, v in last[k][1] if kk == "jraw"), None)
        if fmt == "debezium" and isinstance(v, str):  # a JSON-encoded string
            v = pairs(v)
        if v is not None and v != pairs(raw):
            fail("%s: id %d: json %r is not %r in order" % (fmt, k, v, raw))
    log("%s: %d lines, each one envelope; %d rows x %d columns equal; %d unchanged marks" % (
        fmt, len(evs), len(want), len(COLS), unchanged))
    return unchanged


def main():
    pg = pg_lib.PG()
    log("%d ops, db %s" % (OPS, pg.db))
    pg.create_db()
    try:
        types.create_table(pg, COLS)
        pg.psql("ALTER TABLE alltypes ALTER big SET STORAGE EXTERNAL")
        procs = {}
        for fmt in ("autoglm", "debezium"):
            out = os.path.join(pg.tmp, fmt + ".jsonl")
            # debezium: the modes that keep our value rules (docs/ENVELOPE.md)
            modes = ["-X", "debezium.time.precision.mode=iso_string",
                     "-X", "debezium.decimal.handling.mode=string"] if fmt == "debezium" else []
            args = pg.cdc_args(out, ["-X", "postgres.tables=public.alltypes", "--format", fmt,
                                     "--idle-exit", "4000"] + modes, state=os.path.join(pg.tmp, "st_" + fmt))
            args = [a.replace("postgres.slot=" + pg.slot, "postgres.slot=%s_%s" % (pg.slot, fmt[0]))
                     .replace("pipeline.name=" + pg.db, "pipeline.name=%s_%s" % (pg.db, fmt)) for a in args]
            errf = open(out + ".err", "ab")
            procs[fmt] = (pg_lib.subprocess.Popen(args, stdout=errf, stderr=errf), out)
            pg.procs.append(procs[fmt][0])
        for fmt, (p, out) in procs.items():
            pg.slot = "s_%s_%s" % (pg.db, fmt[0])
            pg.wait_slot(p)
        ids, next_id, sql = [], 1, []
        for _ in range(OPS):
            r = rnd.random()
            if r < .45 or not ids:
                cols = [c for c in COLS if c[0] in ("jraw", "big") or rnd.random() < .8]
                sql.append("INSERT INTO alltypes (id%s) VALUES (%d%s);" % (
                    "".join(", " + c[0] for c in cols), next_id, "".join(", " + types.gen(c) for c in cols)))
                ids.append(next_id)
                next_id += 1
            elif r < .9:
                cols = rnd.sample(COLS[:-1], rnd.randint(1, 5))
                if rnd.random() < .1:
                    cols.append(COLS[-1])
                sets = ", ".join("%s = %s" % (c[0], rnd.choice([types.gen(c)] * 4 + ["NULL"])) for c in cols)
                sql.append("UPDATE alltypes SET %s WHERE id = %d;" % (sets, rnd.choice(ids)))
            else:
                victim = rnd.choice(ids)
                ids.remove(victim)
                sql.append("DELETE FROM alltypes WHERE id = %d;" % victim)
            if rnd.random() < .2:
                pg.psql("BEGIN;" + "".join(sql) + "COMMIT;")
                sql = []
        if sql:
            pg.psql("BEGIN;" + "".join(sql) + "COMMIT;")
        for fmt, (p, out) in procs.items():
            p.wait(timeout=300)
            if p.returncode != 0:
                fail("%s pipeline exited %d: %s" % (fmt, p.returncode, pg_lib.errtail(p)))
        want = pg_lib.select_rows(pg, "alltypes", ["id"] + [c for c, _, _, _ in COLS])
        raw = json.loads(pg.val("SELECT coalesce(json_object_agg(id, jraw::text), '{}') FROM alltypes"))
        raw_want = {int(k): v for k, v in raw.items()}
        marks = [check_file(out, fmt, pg, want, raw_want) for fmt, (p, out) in procs.items()]
        r = pg_lib.subprocess.run(["python3", os.path.join(pg_lib.ROOT, "tests/tools/schema_check.py"),
                                   os.path.join(pg_lib.ROOT, "docs/envelope.schema.json")] +
                                  [out for p, out in procs.values()], capture_output=True, text=True)
        if r.returncode:
            fail("envelopes do not match docs/envelope.schema.json: %s" % (r.stdout + r.stderr)[-1500:])
        if not marks[0] or marks[0] != marks[1]:
            fail("unchanged marks: autoglm %d, debezium %d (want equal and > 0)" % tuple(marks))
        print("PASS: one line per envelope, compact json in key order, unchanged TOAST marked (seed %d)" % SEED)
    finally:
        pg.drop()


if __name__ == "__main__":
    main()
