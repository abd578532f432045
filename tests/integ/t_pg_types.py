#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Type fidelity: PostgreSQL 15 -> autoglm-cdc (pgoutput) -> envelopes.

A random workload (inserts, updates of random columns, deletes, in
transactions of 1-20 statements) over a table with a column of every type
the source maps; replaying the envelopes must equal SELECT, value by value,
with the text forms converted by pg_lib's independent implementation of
the value rules.  Env: CDC_PG_TYPES_OPS (default 600), CDC_TEST_SEED.
Exit 0 pass, 1 fail, 77 skip.
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dblib  # noqa: E402
import pg_lib  # noqa: E402
from pg_lib import fail, log  # noqa: E402

OPS = int(os.environ.get("CDC_PG_TYPES_OPS", "600"))
SEED = dblib.test_seed()  # CDC_TEST_SEED
rnd = random.Random(SEED)

# column, SQL type, kind for pg_lib.to_json, generator of SQL literals
def q(s):
    return "'" + s.replace("'", "''") + "'"


def rstr():
    alphabet = "abc XYZ 09 ,{}\"\\'é漢🙂\t\n"
    return "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 12)))


def rnum():
    return rnd.choice(["0", "-1", "123.4500", "99999999999999999999.000000000000000001", "'NaN'", "'Infinity'",
                       "'-Infinity'", str(rnd.randrange(-10**9, 10**9)) + "." + str(rnd.randrange(1000))])


def rfloat():
    return rnd.choice(["0", "-0", "1.5", "0.1", "3.141592653589793", "1e308", "-2.5e-300", "'NaN'", "'Infinity'",
                       "'-Infinity'", repr(rnd.uniform(-1e6, 1e6))])


def rts(tz=False):
    y = rnd.choice([1, 1899, 1970, 2000, 2024, 9999])
    s = "%04d-%02d-%02d %02d:%02d:%02d" % (y, rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23),
                                          rnd.randint(0, 59), rnd.randint(0, 59))
    if rnd.random() < .5:
        s += "." + str(rnd.randrange(1, 999999))
    if tz:
        s += rnd.choice(["+00", "+05:30", "-08", "+14"])
    return rnd.choice([q(s)] * 6 + ["'infinity'", "'-infinity'"])


def rjson():
    return q(rnd.choice(['{"a": [1, 2.5, null, true], "b": {"c": "x\\"y"}}', "[]", "null", "1e2", '"str é"',
                         '{"k": ' + str(rnd.randrange(10**6)) + "}"]))


def arr(gen, n=4, two_d=False):
    if two_d:
        k = rnd.randint(1, 3)
        return "ARRAY[" + ",".join("ARRAY[" + ",".join(gen() for _ in range(2)) + "]" for _ in range(k)) + "]"
    return "ARRAY[" + ",".join(gen() for _ in range(rnd.randint(1, n))) + "]"


COLS = [
    ("i2", "int2", "int", lambda: str(rnd.choice([-32768, 32767, 0, rnd.randrange(-999, 999)]))),
    ("i4", "int4", "int", lambda: str(rnd.choice([-2147483648, 2147483647, rnd.randrange(-10**6, 10**6)]))),
    ("i8", "int8", "int", lambda: str(rnd.choice([-9223372036854775808, 9223372036854775807, rnd.randrange(-10**12, 10**12)]))),
    ("o", "oid", "int", lambda: str(rnd.choice([0, 4294967295, rnd.randrange(1 << 32)]))),
    ("n", "numeric", "numeric", rnum),
    ("n2", "numeric(10,3)", "numeric", lambda: str(round(rnd.uniform(-1e6, 1e6), 3))),
    ("f4", "real", "float", lambda: rnd.choice(["1.5", "0.1", "-3.4e38", "'NaN'", "'-Infinity'",
                                                  repr(rnd.uniform(-1000, 1000))])),
    ("f8", "float8", "float", rfloat),
    ("b", "bool", "bool", lambda: rnd.choice(["true", "false"])),
    ("t", "text", "text", lambda: q(rstr())),
    ("vc", "varchar(40)", "text", lambda: q(rstr())),
    ("bp", "char(12)", "text", lambda: q(rstr().replace("\n", "").replace("\t", "")[:12])),
    ("by", "bytea", "bytea", lambda: "'\\x%s'::bytea" % os.urandom(rnd.randrange(0, 20)).hex()),
    ("d", "date", "text", lambda: rnd.choice(["'2024-02-29'", "'0001-01-01'", "'infinity'", "'1999-12-31'", "current_date"])),
    ("tm", "time", "text", lambda: q("%02d:%02d:%02d.%d" % (rnd.randint(0, 23), rnd.randint(0, 59), rnd.randint(0, 59), rnd.randrange(10**6)))),
    ("ttz", "timetz", "text", lambda: rnd.choice(["'10:00:00+02'", "'23:59:59.5-05:30'", "'00:00:00+00'"])),
    ("ts", "timestamp", "text", lambda: rts(False)),
    ("tstz", "timestamptz", "tstz", lambda: rts(True)),
    ("iv", "interval", "text", lambda: rnd.choice(["'1 year 2 mons 3 days 04:05:06.5'", "'-7 days'", "'0'", "'1 mon -1 day 00:00:01'"])),
    ("u", "uuid", "text", lambda: q(str(__import__("uuid").UUID(int=rnd.getrandbits(128))))),
    ("j", "json", "json", rjson),
    ("jb", "jsonb", "json", rjson),
    ("inet", "inet", "text", lambda: rnd.choice(["'192.168.0.1/24'", "'::1'", "'10.1.2.3'"])),
    ("cidr", "cidr", "text", lambda: rnd.choice(["'10.0.0.0/8'", "'2001:db8::/32'"])),
    ("mac", "macaddr", "text", lambda: "'08:00:2b:%02x:%02x:%02x'" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))),
    ("ai", "int4[]", "array:int", lambda: rnd.choice([arr(lambda: rnd.choice(["NULL", str(rnd.randrange(-99, 99))])),
                                                      "'{}'::int4[]", arr(lambda: str(rnd.randrange(9)), two_d=True)])),
    ("ai8", "int8[]", "array:int", lambda: arr(lambda: str(rnd.randrange(-10**15, 10**15)))),
    ("at", "text[]", "array:text", lambda: arr(lambda: rnd.choice(["NULL", q("NULL"), q(rstr())]))),
    ("an", "numeric[]", "array:numeric", lambda: arr(rnum)),
    ("af", "float8[]", "array:float", lambda: arr(rfloat)),
    ("ab", "bool[]", "array:bool", lambda: arr(lambda: rnd.choice(["true", "false", "NULL"]))),
    ("atz", "timestamptz[]", "array:tstz", lambda: arr(lambda: rts(True))),
    ("ajb", "jsonb[]", "array:json", lambda: arr(rjson)),
    ("aby", "bytea[]", "array:bytea", lambda: arr(lambda: "'\\x%s'::bytea" % os.urandom(3).hex())),
    ("au", "uuid[]", "array:text", lambda: arr(lambda: q(str(__import__("uuid").UUID(int=rnd.getrandbits(128)))))),
    ("en", "mood", "text", lambda: rnd.choice(["'happy'", "'sad'", "'very, \"ok\"'"])),
    ("ena", "mood[]", "array:text", lambda: arr(lambda: rnd.choice(["'happy'", "'sad'", "'very, \"ok\"'"]))),
    ("dm", "posint", "int", lambda: str(rnd.randrange(1, 10**12))),
    ("dt", "shorttext", "text", lambda: q(rstr()[:8])),
    ("pt", "point", "text", lambda: "point(%d,%d)" % (rnd.randrange(99), rnd.randrange(99))),
]
KIND = {c: k for c, _, k, _ in COLS}


def gen(c):
    v = c[3]()
    return "(%s)::%s" % (v, c[1]) if c[1].endswith("[]") else v


def create_table(pg, cols):
    """The types the columns use and the table alltypes (id + cols)."""
    pg.psql("CREATE TYPE mood AS ENUM ('happy', 'sad', 'very, \"ok\"');"
            "CREATE DOMAIN posint AS int8 CHECK (VALUE > 0);"
            "CREATE DOMAIN shorttext AS varchar(8);"
            "CREATE TABLE alltypes (id int PRIMARY KEY, %s)" % ", ".join("%s %s" % (c, t) for c, t, _, _ in cols))


def count_diffs(got, want, cols, tag=""):
    """Values of the replayed rows got that differ from SELECT's rows want
    (same keys); the first 10 are logged."""
    bad = 0
    for k, row in want.items():
        for c, _, kind, _ in cols:
            exp = pg_lib.to_json(kind, row[c])
            if not pg_lib.same(got[k].get(c), exp):
                bad += 1
                if bad <= 10:
                    log("%sid %d column %s: replayed %.160r, SELECT %.160r (text %.160r)" % (
                        tag, k, c, got[k].get(c), exp, row[c]))
    return bad


def main():
    pg = pg_lib.PG()
    log("seed %d, %d ops, db %s" % (SEED, OPS, pg.db))
    pg.create_db()
    try:
        create_table(pg, COLS)
        out = os.path.join(pg.tmp, "out.json")
        p = pg.start_cdc(out, ["-X", "postgres.tables=public.alltypes", "--idle-exit", "4000"])
        pg.wait_slot(p)
        ids = []
        next_id = 1
        sql = []
        for _ in range(OPS):
            r = rnd.random()
            if r < .5 or not ids:
                cols = [c for c in COLS if rnd.random() < .8]
                vals = [gen(c) for c in cols]
                sql.append("INSERT INTO alltypes (id%s) VALUES (%d%s);" % (
                    "".join(", " + c[0] for c in cols), next_id, "".join(", " + v for v in vals)))
                ids.append(next_id)
                next_id += 1
            elif r < .85:
                cols = rnd.sample(COLS, rnd.randint(1, 6))
                sets = ", ".join("%s = %s" % (c[0], rnd.choice([gen(c), "NULL"])) for c in cols)
                sql.append("UPDATE alltypes SET %s WHERE id = %d;" % (sets, rnd.choice(ids)))
            elif r < .95:
                victim = rnd.choice(ids)
                ids.remove(victim)
                sql.append("DELETE FROM alltypes WHERE id = %d;" % victim)
            else:  # key change
                old = rnd.choice(ids)
                ids.remove(old)
                ids.append(next_id)
                sql.append("UPDATE alltypes SET id = %d WHERE id = %d;" % (next_id, old))
                next_id += 1
            if rnd.random() < .15:
                pg.psql("BEGIN;" + "".join(sql) + "COMMIT;")
                sql = []
        if sql:
            pg.psql("BEGIN;" + "".join(sql) + "COMMIT;")
        p.wait(timeout=300)
        if p.returncode != 0:
            fail("autoglm-cdc exited %d: %s" % (p.returncode, pg_lib.errtail(p)))
        evs = pg_lib.read_envelopes(out)
        log("%d envelopes" % len(evs))
        got = pg_lib.replay(evs).get("public.alltypes", {})
        want = pg_lib.select_rows(pg, "alltypes", ["id"] + [c for c, _, _, _ in COLS])
        if set(got) != set(want):
            fail("keys differ: only replayed %s, only in table %s" % (sorted(set(got) - set(want))[:10],
                                                                       sorted(set(want) - set(got))[:10]))
        bad = count_diffs(got, want, COLS)
        if bad:
            fail("%d values differ (seed %d)" % (bad, SEED))
        ops = {}
        for e in evs:
            ops[e["payload"]["op"]] = ops.get(e["payload"]["op"], 0) + 1
        log("ok: %d rows x %d columns equal; ops %s" % (len(want), len(COLS), ops))
    finally:
        pg.drop()


if __name__ == "__main__":
    main()
