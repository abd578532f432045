#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generate the seed corpus of tests/fuzz/fuzz_pgoutput.c.

Each seed: byte 0 = protocol (0 -> 1, 1 -> 2), then frames
[u16 BE length][pgoutput message].  Run from the repository root:
    python3 tests/fuzz/gen_pgoutput_corpus.py
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "pgoutput")


def s(x):
    return x.encode() + b"\0"


def begin(xid, lsn=0x1000, ts=1_000_000):
    return b"B" + struct.pack(">QqI", lsn, ts, xid)


def commit(lsn=0x1000, end=0x1010, ts=1_000_000):
    return b"C" + struct.pack(">BQQq", 0, lsn, end, ts)


def relation(relid, nsp, rel, ident, atts, xid=None):
    m = b"R" + (struct.pack(">I", xid) if xid is not None else b"")
    m += struct.pack(">I", relid) + s(nsp) + s(rel) + ident.encode()
    m += struct.pack(">H", len(atts))
    for name, oid, key in atts:
        m += struct.pack(">B", 1 if key else 0) + s(name) + struct.pack(">Ii", oid, -1)
    return m


def tuple_(vals):
    m = struct.pack(">H", len(vals))
    for v in vals:
        if v is None:
            m += b"n"
        elif v == "\x01":
            m += b"u"
        else:
            b = v.encode()
            m += b"t" + struct.pack(">I", len(b)) + b
    return m


def insert(relid, vals, xid=None):
    return b"I" + (struct.pack(">I", xid) if xid is not None else b"") + struct.pack(">I", relid) + b"N" + tuple_(vals)


def update(relid, new, old=None, kind=b"K", xid=None):
    m = b"U" + (struct.pack(">I", xid) if xid is not None else b"") + struct.pack(">I", relid)
    if old is not None:
        m += kind + tuple_(old)
    return m + b"N" + tuple_(new)


def delete(relid, old, kind=b"K", xid=None):
    return b"D" + (struct.pack(">I", xid) if xid is not None else b"") + struct.pack(">I", relid) + kind + tuple_(old)


def seed(name, proto, msgs):
    data = bytes([0 if proto == 1 else 1])
    for m in msgs:
        data += struct.pack(">H", len(m)) + m
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


ALL = [("id", 23, 1), ("i2", 21, 0), ("i8", 20, 0), ("o", 26, 0), ("n", 1700, 0),
       ("f4", 700, 0), ("f8", 701, 0), ("b", 16, 0), ("t", 25, 0), ("vc", 1043, 0),
       ("bp", 1042, 0), ("by", 17, 0), ("d", 1082, 0), ("tm", 1083, 0), ("ttz", 1266, 0),
       ("ts", 1114, 0), ("tstz", 1184, 0), ("iv", 1186, 0), ("u", 2950, 0), ("j", 114, 0),
       ("jb", 3802, 0), ("ai", 1007, 0), ("at", 1009, 0), ("inet", 869, 0), ("mac", 829, 0),
       ("enum", 70000, 0), ("dom", 70001, 0), ("earr", 70002, 0), ("pt", 600, 0)]
ROW1 = ["1", "-32768", "9223372036854775807", "4294967295", "123.4500", "1.5",
        "3.141592653589793", "t", "héllo \"q\"", "vc", "bp  ", "\\x00ff", "2024-02-29",
        "23:59:59.999999", "10:00:00+02", "2024-01-02 03:04:05.5",
        "2024-01-02 03:04:05.123456+00", "1 year 2 mons", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "{\"a\": [1, 2]}", "{\"b\": null}", "{{1,2},{3,NULL}}", "{a,\"b c\",NULL}",
        "10.0.0.1/8", "08:00:2b:01:02:03", "happy", "42", "{x,y}", "(1,2)"]
ROW2 = ["2", None, None, None, "NaN", "NaN", "-Infinity", "f", "\x01", None, None, "\\x",
        "infinity", None, None, None, "infinity", None, None, "null", "[]", "{}", "{}",
        None, None, None, None, None, None]

os.makedirs(OUT, exist_ok=True)
R = relation(16384, "public", "alltypes", "d", ALL)
seed("01-insert-all-types", 1, [begin(700), R, insert(16384, ROW1), insert(16384, ROW2), commit()])
seed("02-update-key", 1, [begin(701), R, update(16384, ROW2, old=["1"] + [None] * 28), commit()])
seed("03-update-full", 1, [begin(702), relation(16384, "public", "alltypes", "f", [(a, o, 1) for a, o, _ in ALL]),
                           update(16384, ROW1, old=ROW2, kind=b"O"), delete(16384, ROW1, kind=b"O"), commit()])
seed("04-delete-key", 1, [begin(703), R, delete(16384, ["1"] + [None] * 28), commit()])
seed("05-truncate", 1, [begin(704), R, relation(16385, "s", "t2", "n", [("x", 25, 0)]),
                        b"T" + struct.pack(">IBII", 2, 3, 16384, 16385), commit()])
seed("06-origin-type-message", 1, [b"M" + struct.pack(">BQ", 0, 0x99) + s("hb") + struct.pack(">I", 2) + b"hi",
                                   begin(705), b"O" + struct.pack(">Q", 0x42) + s("pg_1"),
                                   b"Y" + struct.pack(">I", 70000) + s("public") + s("mood"), R,
                                   b"M" + struct.pack(">BQ", 1, 0x9a) + s("p") + struct.pack(">I", 0),
                                   insert(16384, ROW1), commit()])
seed("07-schema-change", 1, [begin(706), relation(5, "public", "t", "d", [("id", 23, 1)]), insert(5, ["1"]),
                             relation(5, "public", "t", "d", [("id", 23, 1), ("extra", 1700, 0)]),
                             insert(5, ["2", "3.14"]), commit()])
T = relation(5, "public", "t", "d", [("id", 23, 1), ("v", 25, 0)], xid=900)
seed("08-stream-commit", 2, [b"S" + struct.pack(">IB", 900, 1), T, insert(5, ["1", "a"], xid=900),
                             insert(5, ["2", "b"], xid=901), b"E",
                             b"S" + struct.pack(">IB", 910, 1), insert(5, ["9", "z"], xid=910), b"E",
                             b"S" + struct.pack(">IB", 900, 0), update(5, ["1", "\x01"], xid=900), b"E",
                             b"A" + struct.pack(">II", 900, 901), b"A" + struct.pack(">II", 910, 910),
                             b"c" + struct.pack(">IBQQq", 900, 0, 0x2000, 0x2010, 5)])
seed("09-stream-abort-proto4", 2, [b"S" + struct.pack(">IB", 900, 1), T, insert(5, ["1", "a"], xid=900), b"E",
                                   b"A" + struct.pack(">IIQq", 900, 900, 0x3000, 7)])
seed("10-errors", 1, [b"", b"Z", commit(), insert(5, ["1"]), begin(1), begin(2), b"P",
                      relation(6, "s", "t", "x", [("a", 23, 0)]), b"R" + struct.pack(">I", 6) + s("s") + s("t") + b"d\xff\xff"])
seed("11-arrays", 1, [begin(707), relation(8, "public", "arr", "d",
                                           [("id", 23, 1), ("a", 1007, 0), ("b", 1009, 0), ("c", 1231, 0),
                                            ("d", 1022, 0), ("e", 1000, 0), ("f", 1001, 0), ("g", 1185, 0),
                                            ("h", 3807, 0)]),
                      insert(8, ["1", "[0:1]={5,6}", "{\"q\\\"x\\\\\",NULL,\"NULL\"}", "{1.5,NaN}",
                                 "{1.5,Infinity,-0}", "{t,f}", "{\"\\\\x0102\"}",
                                 "{\"2024-01-02 03:04:05+00\"}", "{\"{\\\"a\\\": 1}\",\"[1]\"}"]),
                      insert(8, ["2", "{1,2", "{\"abc}", "{{{{{{{{1}}}}}}}}", "{}", "{x}", "{\\\\xz}", "{bad}", "{}"]),
                      commit()])
seed("12-tstz-offsets", 1, [begin(708), relation(9, "public", "tz", "d", [("a", 1184, 0)]),
                            insert(9, ["2024-01-01 01:30:00+02"]), insert(9, ["2024-02-28 22:00:00.5-05:30"]),
                            insert(9, ["1900-01-01 00:00:00+00:19:32"]), insert(9, ["0044-03-15 12:00:00+00 BC"]),
                            insert(9, ["12345-01-01 00:00:00+00"]), commit()])
seed("13-truncated-tail", 1, [begin(709), R, insert(16384, ROW1)[:40]])
