#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Live decode fidelity test: binlog -> envelopes -> replay == source.

On the real MariaDB from tests/services.env:
  1. create a fresh source database with tables covering every column type;
  2. FLUSH BINARY LOGS, run a seeded random DML workload (multi-row inserts,
     updates incl. primary-key changes, multi-row updates and deletes,
     multi-statement transactions, some rolled back), FLUSH BINARY LOGS;
  3. run `autoglm-cdc decode --format autoglm` over the binlog files of that
     window;
  4. replay the envelopes of the source database into an empty copy of the
     schema (INSERT for c, UPDATE ... WHERE before-key for u, DELETE for d),
     translating every value back by the envelope value rules;
  5. compare both databases table by table with SELECT (ordered by the
     primary key, HEX() for strings, parsed JSON for JSON columns).
Passes with zero mismatches and zero value-format violations.

Environment: CDC_BIN (autoglm-cdc, default $CDC_BUILD/autoglm-cdc),
CDC_SVC_ENV (services.env), CDC_TEST_SEED (workload seed, default random),
CDC_FID_TXNS (number of transactions, default 400), KEEP_TMP=1.
Python 3 standard library only; SQL runs through the `mariadb` client.
Exit: 0 pass, 1 fail, 77 skip (no server or no binary).
"""

import base64
import collections
import datetime
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = "cdc_fid_src"
DST = "cdc_fid_dst"
SRC_TZ = "+05:30"           # workload session time zone (TIMESTAMP must be UTC in envelopes)
SQL_MODE = "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION"   # zero dates allowed


import dblib  # noqa: E402
from dblib import skip  # noqa: E402 (exit 77, or fail under CDC_REQUIRE_SERVICES=1)


def fail(msg):
    print("FAIL: " + msg)
    print(dblib.seed_note())
    sys.exit(1)


def load_env():
    path = os.environ.get("CDC_SVC_ENV", os.path.join(ROOT, "tests", "services.env"))
    env = {}
    if not os.path.exists(path):
        skip("%s missing (run tests/services.sh up mariadb)" % path)
    with open(path) as f:
        for line in f:
            m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line.strip())
            if m:
                v = m.group(2)
                if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                    v = v[1:-1]
                env[m.group(1)] = v
    if not env.get("MYSQL_PORT"):
        skip("no MariaDB in %s (run tests/services.sh up mariadb)" % path)
    return env


ENV = load_env()
BUILD = os.environ.get("CDC_BUILD", os.path.join(ROOT, "build"))
CDC = os.environ.get("CDC_BIN", os.path.join(BUILD, "autoglm-cdc"))


def mysql_cmd(db=None):
    cmd = ["mariadb", "--no-defaults", "--protocol=tcp", "-h", ENV["MYSQL_HOST"],
           "-P", ENV["MYSQL_PORT"], "-u", ENV.get("MYSQL_ROOT_USER", "root"),
           "-p" + ENV.get("MYSQL_ROOT_PASSWORD", ""), "--default-character-set=utf8mb4",
           "-N", "-B", "--max-allowed-packet=64M"]
    if db:
        cmd.append(db)
    return cmd


def sql(text, db=None, force=False, check=True):
    """Run SQL text (fed on stdin); return (stdout, stderr, rc)."""
    cmd = mysql_cmd(db)
    if force:
        cmd.append("--force")
    p = subprocess.run(cmd, input=text.encode("utf-8"), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if check and p.returncode != 0:
        fail("SQL failed (exit %d): %s\n-- first 2000 chars of the SQL:\n%s"
             % (p.returncode, err.strip()[-1500:], text[:300]))
    return out, err, p.returncode


def rows(text, db=None):
    out, _, _ = sql(text, db)
    return [line.split("\t") for line in out.split("\n") if line != ""]


# ---------------------------------------------------------------------------
# schema: (name, column type, generator kind)

INT_RANGES = {
    "tinyint": (-128, 127, 255), "smallint": (-32768, 32767, 65535),
    "mediumint": (-8388608, 8388607, 16777215),
    "int": (-2147483648, 2147483647, 4294967295),
    "bigint": (-9223372036854775808, 9223372036854775807, 18446744073709551615),
}

TABLES = collections.OrderedDict()
TABLES["t_int"] = {
    "pk": ["id"],
    "cols": [("id", "INT NOT NULL")] +
            [("%s_s" % t, t.upper()) for t in INT_RANGES] +
            [("%s_u" % t, t.upper() + " UNSIGNED") for t in INT_RANGES] +
            [("b1", "BIT(1)"), ("b7", "BIT(7)"), ("b17", "BIT(17)"), ("b64", "BIT(64)"),
             ("yr", "YEAR"), ("bo", "BOOLEAN"), ("i_nn", "INT NOT NULL DEFAULT 7")],
}
TABLES["t_num"] = {
    "pk": ["id"],
    "cols": [("id", "BIGINT UNSIGNED NOT NULL"), ("d10_2", "DECIMAL(10,2)"),
             ("d65_30", "DECIMAL(65,30)"), ("d65_0", "DECIMAL(65,0)"), ("d5_5", "DECIMAL(5,5)"),
             ("d18_9", "DECIMAL(18,9)"), ("d20_4u", "DECIMAL(20,4) UNSIGNED"), ("d1_0", "DECIMAL(1,0)"),
             ("f", "FLOAT"), ("dbl", "DOUBLE"), ("f_nn", "FLOAT NOT NULL DEFAULT 0")],
}
TABLES["t_str"] = {
    "pk": ["id"],
    "cols": [("id", "INT NOT NULL"),
             ("c_u", "CHAR(10) CHARACTER SET utf8mb4"),
             ("vc_u", "VARCHAR(300) CHARACTER SET utf8mb4"),
             ("vcl_u", "VARCHAR(1000) CHARACTER SET utf8mb4"),
             ("tx_u", "TEXT CHARACTER SET utf8mb4"),
             ("tt_u", "TINYTEXT CHARACTER SET utf8mb4"),
             ("mt_u", "MEDIUMTEXT CHARACTER SET utf8mb4"),
             ("c_l", "CHAR(10) CHARACTER SET latin1"),
             ("vc_l", "VARCHAR(200) CHARACTER SET latin1"),
             ("tx_l", "TEXT CHARACTER SET latin1"),
             ("vc_ub", "VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
             ("vc_3", "VARCHAR(40) CHARACTER SET utf8mb3"),
             ("en", "ENUM('a','b','c d','\u00e9t\u00e9','x,y')"),
             ("st", "SET('r','g','b','\u00fc','longer member')"),
             ("en_nn", "ENUM('one','two','three') NOT NULL DEFAULT 'one'")],
}
TABLES["t_bin"] = {
    "pk": ["id"],
    "cols": [("id", "INT NOT NULL"), ("bn", "BINARY(8)"), ("vb", "VARBINARY(64)"),
             ("vbl", "VARBINARY(2000)"), ("bl", "BLOB"), ("tb", "TINYBLOB"), ("mb", "MEDIUMBLOB"),
             ("lb", "LONGBLOB"), ("cbin", "CHAR(6) CHARACTER SET binary")],
}
TABLES["t_time"] = {
    "pk": ["id"],
    "cols": [("id", "INT NOT NULL"), ("dt", "DATE")] +
            [("t%d" % n, "TIME(%d)" % n) for n in range(7)] +
            [("dtm%d" % n, "DATETIME(%d)" % n) for n in range(7)] +
            [("ts%d" % n, "TIMESTAMP(%d) NULL" % n) for n in range(7)],
}
TABLES["t_misc"] = {
    "pk": ["id"],
    "cols": [("id", "INT NOT NULL"), ("j", "JSON"), ("j2", "JSON"), ("g", "GEOMETRY"),
             ("pt", "POINT"), ("ls", "LINESTRING"), ("pg", "POLYGON")],
}
TABLES["t_pk2"] = {
    "pk": ["a", "b"],
    "cols": [("a", "INT NOT NULL"), ("b", "VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"),
             ("v", "VARCHAR(50)"), ("n", "BIGINT")],
}
TABLES["t_nopk"] = {
    "pk": [],
    "cols": [("k", "INT"), ("s", "VARCHAR(30)"), ("d", "DATE")],
}


def create_sql(db):
    out = ["DROP DATABASE IF EXISTS `%s`;" % db,
           "CREATE DATABASE `%s` CHARACTER SET utf8mb4;" % db, "USE `%s`;" % db]
    for t, spec in TABLES.items():
        cols = ["`%s` %s" % (c, ty) for c, ty in spec["cols"]]
        if spec["pk"]:
            cols.append("PRIMARY KEY (%s)" % ", ".join("`%s`" % c for c in spec["pk"]))
        out.append("CREATE TABLE `%s` (%s) ENGINE=InnoDB;" % (t, ", ".join(cols)))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# random values (SQL literals)

UTF8_POOL = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") +
             [" ", "  ", "'", '"', "\\", "\t", "\n", "\r", "%", "_", ",", "\u00e9", "\u00df",
              "\u00fc", "\u20ac", "\u4e2d", "\u6587", "\u3042", "\u0416", "\u05d0",
              "\U0001F600", "\U0001F680", "\U00010348", "\u200b", "\x01", "\x7f"])
UTF8MB3_POOL = [c for c in UTF8_POOL if all(ord(x) < 0x10000 for x in c)]
LATIN1_POOL = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") +
               [" ", "'", '"', "\\", "\t", "\n", "\u00e9", "\u00df", "\u00fc", "\u00e0",
                "\u00ff", "\u00a3", "\u00b5", "\u00d8", "\u00bf", "\u00a0"])


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def text(self, pool, maxlen):
        r = self.r
        n = r.choice([0, 1, 2, 5, 10, maxlen]) if r.random() < 0.3 else r.randint(0, maxlen)
        n = min(n, maxlen)
        s = "".join(r.choice(pool) for _ in range(n))[:maxlen]
        # CHAR columns strip trailing spaces on read: identical on both sides
        return s

    @staticmethod
    def lit_text(s):
        return "_utf8mb4 X'%s'" % s.encode("utf-8").hex() if s else "''"

    @staticmethod
    def lit_bytes(b):
        return "X'%s'" % b.hex() if b else "''"

    def bytes_(self, maxlen):
        r = self.r
        n = r.choice([0, 1, 3, maxlen]) if r.random() < 0.3 else r.randint(0, maxlen)
        b = bytes(r.getrandbits(8) for _ in range(n))
        if b and r.random() < 0.2:
            b = b[:-1] + b"\x00"        # trailing zero
        if r.random() < 0.1:
            b = b.rstrip(b" ") + b" "   # trailing space
            b = b[:maxlen]
        return b

    def int_(self, lo, hi):
        r = self.r
        if r.random() < 0.25:
            return r.choice([lo, hi, 0, 1, -1 if lo < 0 else 1, lo + 1, hi - 1])
        return r.randint(lo, hi)

    def decimal(self, p, s, unsigned=False):
        r = self.r
        ip = p - s
        if r.random() < 0.15:
            idig = "9" * ip if ip else ""
            fdig = "9" * s
        else:
            idig = "".join(r.choice("0123456789") for _ in range(r.randint(0, ip))) if ip else ""
            fdig = "".join(r.choice("0123456789") for _ in range(s))
        v = (idig.lstrip("0") or "0") + ("." + fdig if s else "")
        if not unsigned and r.random() < 0.4:
            v = "-" + v
        return "'%s'" % v

    def float_(self, single):
        r = self.r
        c = r.random()
        if c < 0.2:
            return r.choice(["0", "1", "-1", "0.1", "-2.5", "1e10", "3.14159",
                             "1.17549435e-38" if single else "2.2250738585072014e-308",
                             "3.4028234e38" if single else "1.7976931348623157e308",
                             "1e-30" if single else "5e-324"])
        if c < 0.5:
            return repr(round(r.uniform(-1000, 1000), r.randint(0, 4)))
        return repr(r.uniform(-1, 1) * 10 ** r.randint(-20, 20))

    def date(self):
        r = self.r
        if r.random() < 0.05:
            return "0000-00-00"
        return "%04d-%02d-%02d" % (r.randint(1000, 9999), r.randint(1, 12), r.randint(1, 28))

    def frac(self, n):
        if n == 0:
            return ""
        return "." + "".join(self.r.choice("0123456789") for _ in range(n))

    def time_(self, n):
        r = self.r
        if r.random() < 0.08:
            return r.choice(["838:59:59", "-838:59:59", "00:00:00", "-00:00:01"])
        sign = "-" if r.random() < 0.3 else ""
        h = r.choice([0, 1, 23, 24, 100, 837]) if r.random() < 0.3 else r.randint(0, 837)
        return "%s%02d:%02d:%02d%s" % (sign, h, r.randint(0, 59), r.randint(0, 59), self.frac(n))

    def datetime_(self, n):
        r = self.r
        if r.random() < 0.05:
            return "0000-00-00 00:00:00"
        return "%s %02d:%02d:%02d%s" % (self.date().replace("0000-00-00", "2000-01-01"),
                                        r.randint(0, 23), r.randint(0, 59), r.randint(0, 59),
                                        self.frac(n))

    def timestamp(self, n):
        """A TIMESTAMP literal in the workload session time zone (SRC_TZ)."""
        r = self.r
        if r.random() < 0.04:
            return "0000-00-00 00:00:00"
        epoch = r.choice([1, 2147483647, 946684800]) if r.random() < 0.1 else r.randint(1, 2147483646)
        local = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=epoch, hours=5, minutes=30)
        return local.strftime("%Y-%m-%d %H:%M:%S") + self.frac(n)

    def json_value(self, depth=0):
        r = self.r
        c = r.random()
        if depth > 3 or c < 0.35:
            return r.choice([None, True, False, 0, -1, 2 ** 53 + 1, -(2 ** 63), 2 ** 64 - 1,
                             1.5, -0.25, 1e100, 3.14159, "", "x", "caf\u00e9 \u4e2d\U0001F600",
                             "quote\" back\\ nl\n tab\t", r.randint(-10 ** 6, 10 ** 6),
                             self.text(UTF8MB3_POOL, 12)])
        if c < 0.65:
            return [self.json_value(depth + 1) for _ in range(r.randint(0, 4))]
        return {self.text(UTF8MB3_POOL, 6) + str(i): self.json_value(depth + 1)
                for i in range(r.randint(0, 4))}

    def json_(self):
        r = self.r
        v = self.json_value()
        seps = r.choice([(",", ":"), (", ", ": "), (" ,  ", " : ")])
        return Gen.lit_text(json.dumps(v, separators=seps, ensure_ascii=r.random() < 0.3))

    def coord(self):
        return "%s %s" % (self.r.randint(-18000, 18000) / 100.0, self.r.randint(-9000, 9000) / 100.0)

    def wkt(self, kind):
        r = self.r
        if kind == "point":
            return "POINT(%s)" % self.coord()
        if kind == "linestring":
            return "LINESTRING(%s)" % ", ".join(self.coord() for _ in range(r.randint(2, 5)))
        if kind == "polygon":
            x, y = r.randint(-100, 100), r.randint(-80, 80)
            d = r.randint(1, 20)
            return "POLYGON((%d %d, %d %d, %d %d, %d %d, %d %d))" % (
                x, y, x + d, y, x + d, y + d, x, y + d, x, y)
        k = r.choice(["point", "linestring", "polygon", "multipoint", "collection"])
        if k == "multipoint":
            return "MULTIPOINT(%s)" % ", ".join(self.coord() for _ in range(r.randint(1, 4)))
        if k == "collection":
            return "GEOMETRYCOLLECTION(%s, %s)" % (self.wkt("point"), self.wkt("linestring"))
        return self.wkt(k)

    def geom(self, kind):
        srid = self.r.choice([0, 0, 4326, 3857])
        return "ST_GeomFromText('%s', %d)" % (self.wkt(kind), srid)

    def value(self, col, ty):
        """A random SQL literal for a column (may be NULL when nullable)."""
        r = self.r
        t = ty.upper()
        if "NOT NULL" not in t and r.random() < 0.1:
            return "NULL"
        m = re.match(r"(TINYINT|SMALLINT|MEDIUMINT|BIGINT|INT)", t)
        if m:
            lo, hi, uhi = INT_RANGES[m.group(1).lower()]
            return str(self.int_(0, uhi) if "UNSIGNED" in t else self.int_(lo, hi))
        m = re.match(r"BIT\((\d+)\)", t)
        if m:
            return str(self.int_(0, 2 ** int(m.group(1)) - 1))
        if t.startswith("BOOLEAN"):
            return str(r.choice([0, 1, 127, -128]))
        if t.startswith("YEAR"):
            return str(r.choice([0, 1901, 2155, 2000]) if r.random() < 0.2 else r.randint(1901, 2155))
        m = re.match(r"DECIMAL\((\d+),(\d+)\)", t)
        if m:
            return self.decimal(int(m.group(1)), int(m.group(2)), "UNSIGNED" in t)
        if t.startswith("FLOAT"):
            return self.float_(True)
        if t.startswith("DOUBLE"):
            return self.float_(False)
        if t.startswith("ENUM"):
            members = re.findall(r"'((?:[^']|'')*)'", ty)
            return Gen.lit_text(r.choice(members))
        if t.startswith("SET"):
            members = re.findall(r"'((?:[^']|'')*)'", ty)
            pick = [m for m in members if r.random() < 0.4]
            r.shuffle(pick)
            return Gen.lit_text(",".join(pick))
        if "CHARACTER SET BINARY" in t:
            return Gen.lit_bytes(self.bytes_(6))
        m = re.match(r"(BINARY|VARBINARY)\((\d+)\)", t)
        if m:
            return Gen.lit_bytes(self.bytes_(int(m.group(2))))
        m = re.match(r"(TINY|MEDIUM|LONG)?BLOB", t)
        if m:
            cap = {"TINY": 255, None: 3000, "MEDIUM": 20000, "LONG": 70000}[m.group(1)]
            if cap > 3000 and r.random() < 0.8:
                cap = 300
            return Gen.lit_bytes(self.bytes_(cap))
        if "CHAR" in t or "TEXT" in t:
            pool = LATIN1_POOL if "LATIN1" in t else UTF8MB3_POOL if "UTF8MB3" in t else UTF8_POOL
            m = re.search(r"CHAR\((\d+)\)", t)
            cap = int(m.group(1)) if m else {"TINYTEXT": 60, "TEXT": 2000, "MEDIUMTEXT": 5000}.get(t.split()[0], 200)
            if cap > 500 and r.random() < 0.8:
                cap = 50
            return Gen.lit_text(self.text(pool, cap))
        if t.startswith("DATETIME"):
            return "'%s'" % self.datetime_(int(re.search(r"\((\d)\)", t).group(1)))
        if t.startswith("DATE"):
            return "'%s'" % self.date()
        if t.startswith("TIMESTAMP"):
            return "'%s'" % self.timestamp(int(re.search(r"\((\d)\)", t).group(1)))
        if t.startswith("TIME"):
            return "'%s'" % self.time_(int(re.search(r"\((\d)\)", t).group(1)))
        if t.startswith("JSON"):
            return self.json_()
        if t.startswith("GEOMETRY"):
            return self.geom("any")
        if t.startswith("POINT"):
            return self.geom("point")
        if t.startswith("LINESTRING"):
            return self.geom("linestring")
        if t.startswith("POLYGON"):
            return self.geom("polygon")
        raise ValueError("no generator for %s %s" % (col, ty))


# ---------------------------------------------------------------------------
# workload

class Workload:
    def __init__(self, seed, ntxn):
        self.g = Gen(seed)
        self.r = self.g.r
        self.ntxn = ntxn
        self.live = {t: set() for t in TABLES}   # primary keys present (model)
        self.next_id = 1
        self.nopk_n = 0

    def new_key(self, t):
        spec = TABLES[t]
        if t == "t_pk2":
            while True:
                k = (self.r.randint(-50, 50), self.g.text(UTF8MB3_POOL[:62] + ["\u00e9", "\u4e2d"], 6))
                if k not in self.live[t] and (k[0], k[1].lower()) not in {(a, b.lower()) for a, b in self.live[t]}:
                    return k
        self.next_id += self.r.randint(1, 3)
        return (self.next_id,)

    def key_where(self, t, k):
        if t == "t_pk2":
            return "a = %d AND b = %s" % (k[0], Gen.lit_text(k[1]))
        return "id = %d" % k[0]

    def key_vals(self, t, k):
        if t == "t_pk2":
            return {"a": str(k[0]), "b": Gen.lit_text(k[1])}
        return {"id": str(k[0])}

    def insert(self, t):
        spec = TABLES[t]
        n = self.r.choice([1, 1, 2, 3, 5, 10, 20])
        cols = [c for c, _ in spec["cols"]]
        tuples = []
        for _ in range(n):
            vals = {}
            if spec["pk"]:
                k = self.new_key(t)
                self.live[t].add(k)
                vals.update(self.key_vals(t, k))
            for c, ty in spec["cols"]:
                if c not in vals:
                    vals[c] = self.g.value(c, ty)
            tuples.append("(%s)" % ", ".join(vals[c] for c in cols))
        if t == "t_nopk":
            self.nopk_n += n
        return "INSERT INTO `%s` (%s) VALUES %s;" % (t, ", ".join("`%s`" % c for c in cols),
                                                    ", ".join(tuples))

    def update(self, t):
        spec = TABLES[t]
        r = self.r
        nonkey = [(c, ty) for c, ty in spec["cols"] if c not in spec["pk"]]
        sets = r.sample(nonkey, r.randint(1, min(4, len(nonkey))))
        assign = ", ".join("`%s` = %s" % (c, self.g.value(c, ty)) for c, ty in sets)
        if not spec["pk"]:
            return "UPDATE `%s` SET %s WHERE k %% %d = %d;" % (t, assign, r.randint(2, 5), r.randint(0, 1))
        live = sorted(self.live[t])
        if not live:
            return None
        c = r.random()
        if c < 0.2 and t != "t_pk2":
            # primary-key change (one row)
            old = r.choice(live)
            new = self.new_key(t)
            self.live[t].discard(old)
            self.live[t].add(new)
            return "UPDATE `%s` SET id = %d, %s WHERE %s;" % (t, new[0], assign, self.key_where(t, old))
        if c < 0.3 and t == "t_pk2":
            old = r.choice(live)
            new = self.new_key(t)
            self.live[t].discard(old)
            self.live[t].add(new)
            return "UPDATE `%s` SET a = %d, b = %s, %s WHERE %s;" % (
                t, new[0], Gen.lit_text(new[1]), assign, self.key_where(t, old))
        if c < 0.5 and t != "t_pk2":
            # multi-row update over a key range
            a = r.choice(live)[0]
            return "UPDATE `%s` SET %s WHERE id BETWEEN %d AND %d;" % (t, assign, a, a + r.randint(1, 12))
        if c < 0.55:
            # shift every key in a range by a large offset (multi-row key change)
            if t == "t_pk2":
                return None
            lo = r.choice(live)[0]
            hi = lo + r.randint(1, 8)
            moved = [k for k in live if lo <= k[0] <= hi]
            off = 10 ** 6 + self.next_id
            self.next_id = max(self.next_id, hi + off + 1)
            for k in moved:
                self.live[t].discard(k)
                self.live[t].add((k[0] + off,))
            return "UPDATE `%s` SET id = id + %d WHERE id BETWEEN %d AND %d;" % (t, off, lo, hi)
        k = r.choice(live)
        return "UPDATE `%s` SET %s WHERE %s;" % (t, assign, self.key_where(t, k))

    def delete(self, t):
        spec = TABLES[t]
        r = self.r
        if not spec["pk"]:
            return "DELETE FROM `%s` WHERE k %% %d = %d LIMIT %d;" % (t, r.randint(3, 7), r.randint(0, 2), r.randint(1, 4))
        live = sorted(self.live[t])
        if not live:
            return None
        ks = r.sample(live, min(len(live), r.choice([1, 1, 2, 4])))
        for k in ks:
            self.live[t].discard(k)
        return "DELETE FROM `%s` WHERE %s;" % (t, " OR ".join("(%s)" % self.key_where(t, k) for k in ks))

    def statements(self):
        r = self.r
        out = ["SET NAMES utf8mb4;", "SET time_zone = '%s';" % SRC_TZ,
               "SET sql_mode = '%s';" % SQL_MODE]
        committed = rolled = 0
        names = list(TABLES)
        for i in range(self.ntxn):
            saved = {t: set(v) for t, v in self.live.items()}
            saved_next = self.next_id
            multi = r.random() < 0.5
            nstmt = r.randint(2, 6) if multi else 1
            body = []
            for _ in range(nstmt):
                t = r.choice(names)
                c = r.random()
                # grow early, churn later
                if c < (0.6 if i < self.ntxn // 4 else 0.35) or not self.live[t] and TABLES[t]["pk"]:
                    s = self.insert(t)
                elif c < 0.8:
                    s = self.update(t)
                else:
                    s = self.delete(t)
                if s:
                    body.append(s)
            if not body:
                continue
            if multi:
                rollback = r.random() < 0.15
                out.append("BEGIN;")
                out.extend(body)
                if rollback:
                    out.append("ROLLBACK;")
                    self.live = saved
                    self.next_id = max(saved_next, self.next_id)
                    rolled += 1
                else:
                    out.append("COMMIT;")
                    committed += 1
            else:
                out.extend(body)
                committed += 1
        return out, committed, rolled


# ---------------------------------------------------------------------------
# replay: envelope values -> SQL literals

class FormatError(Exception):
    pass


RE_DATE = r"\d{4}-\d{2}-\d{2}"


def col_info():
    """{table: [(column, data_type, column_type, charset)]} of the source db."""
    info = collections.OrderedDict()
    for t, c, dt, ct, cs in rows(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IFNULL(CHARACTER_SET_NAME,'') "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '%s' "
            "ORDER BY TABLE_NAME, ORDINAL_POSITION" % SRC):
        info.setdefault(t, []).append((c, dt.lower(), ct.lower(), cs.lower()))
    return info


def frac_digits(coltype):
    m = re.search(r"\((\d)\)", coltype)
    return int(m.group(1)) if m else 0


def is_binary(dt, cs):
    return dt in ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob") or cs == "binary"


def to_sql(v, dt, ct, cs):
    """Translate one envelope value back to an SQL literal (strict checks)."""
    if v is None:
        return "NULL"
    if dt in ("tinyint", "smallint", "mediumint", "int", "bigint", "bit", "year"):
        if not isinstance(v, int) or isinstance(v, bool):
            raise FormatError("%s: expected a JSON integer, got %r" % (ct, v))
        return str(v)
    if dt == "decimal":
        if not isinstance(v, str) or not re.fullmatch(r"-?\d+(\.\d+)?", v):
            raise FormatError("%s: expected a decimal string, got %r" % (ct, v))
        m = re.search(r"\((\d+),(\d+)\)", ct)
        scale = int(m.group(2)) if m else 0
        got = len(v.split(".")[1]) if "." in v else 0
        if got != scale:
            raise FormatError("%s: expected exactly %d fraction digits, got %r" % (ct, scale, v))
        return "'%s'" % v
    if dt in ("float", "double"):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise FormatError("%s: expected a JSON number, got %r" % (ct, v))
        if dt == "float":
            # the number denotes a float32: its shortest form (3.4028235e38)
            # may lie just above FLT_MAX as a double, which the server rejects;
            # give it the exact widened value instead
            try:
                return repr(struct.unpack("<f", struct.pack("<f", float(v)))[0])
            except (OverflowError, struct.error):
                raise FormatError("%s: %r is not a float32 value" % (ct, v))
        return repr(float(v))
    if is_binary(dt, cs):
        if not isinstance(v, str):
            raise FormatError("%s: expected base64 string, got %r" % (ct, v))
        try:
            b = base64.b64decode(v, validate=True)
        except Exception:
            raise FormatError("%s: invalid base64 %r" % (ct, v[:60]))
        if base64.b64encode(b).decode() != v:
            raise FormatError("%s: non-canonical base64 %r" % (ct, v[:60]))
        return Gen.lit_bytes(b)
    if dt == "set":
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise FormatError("%s: expected an array of strings, got %r" % (ct, v))
        return Gen.lit_text(",".join(v))
    if dt in ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum"):
        if not isinstance(v, str):
            raise FormatError("%s: expected a string, got %r" % (ct, v))
        return Gen.lit_text(v)
    if dt == "date":
        if not isinstance(v, str) or not re.fullmatch(RE_DATE, v):
            raise FormatError("%s: expected YYYY-MM-DD, got %r" % (ct, v))
        return "'%s'" % v
    if dt == "datetime":
        n = frac_digits(ct)
        pat = RE_DATE + r" \d{2}:\d{2}:\d{2}" + (r"\.\d{%d}" % n if n else "")
        if not isinstance(v, str) or not re.fullmatch(pat, v):
            raise FormatError("%s: expected 'YYYY-MM-DD HH:MM:SS' + %d digits, got %r" % (ct, n, v))
        return "'%s'" % v
    if dt == "timestamp":
        n = frac_digits(ct)
        frac = r"\.\d{%d}" % n if n else ""
        if isinstance(v, str) and re.fullmatch(r"0000-00-00[ T]00:00:00(\.0+)?Z?", v):
            return "'0000-00-00 00:00:00'"
        if not isinstance(v, str) or not re.fullmatch(RE_DATE + r"T\d{2}:\d{2}:\d{2}" + frac + "Z", v):
            raise FormatError("%s: expected UTC 'YYYY-MM-DDTHH:MM:SS' + %d digits + 'Z', got %r" % (ct, n, v))
        return "'%s'" % v[:-1].replace("T", " ")
    if dt == "time":
        n = frac_digits(ct)
        pat = r"-?\d{2,3}:\d{2}:\d{2}" + (r"\.\d{%d}" % n if n else "")
        if not isinstance(v, str) or not re.fullmatch(pat, v):
            raise FormatError("%s: expected '[-]HH:MM:SS' + %d digits, got %r" % (ct, n, v))
        return "'%s'" % v
    if dt == "json":
        return Gen.lit_text(json.dumps(v, ensure_ascii=False))
    if dt == "json-text":
        # the decoder gave the column's text (MariaDB's binlog does not mark
        # JSON columns): it must still be valid JSON, and is replayed verbatim
        if not isinstance(v, str):
            raise FormatError("JSON column: mixed embedded and text values (%r)" % (v,))
        try:
            json.loads(v)
        except ValueError:
            raise FormatError("JSON column text is not valid JSON: %r" % v[:80])
        return Gen.lit_text(v)
    if dt in ("geometry", "point", "linestring", "polygon", "multipoint",
              "multilinestring", "multipolygon", "geometrycollection"):
        if not isinstance(v, dict) or set(v) != {"srid", "wkb"} or not isinstance(v["srid"], int):
            raise FormatError("%s: expected {\"srid\": N, \"wkb\": base64}, got %r" % (ct, v))
        try:
            b = base64.b64decode(v["wkb"], validate=True)
        except Exception:
            raise FormatError("%s: invalid base64 wkb" % ct)
        return "ST_GeomFromWKB(X'%s', %d)" % (b.hex(), v["srid"])
    raise FormatError("no replay rule for column type %s" % ct)


def json_columns():
    """MariaDB reports JSON as longtext; find them via the json_valid check."""
    out = set()
    for t, c in rows("SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.CHECK_CONSTRAINTS "
                     "WHERE CONSTRAINT_SCHEMA = '%s' AND CHECK_CLAUSE LIKE 'json_valid(%%'" % SRC):
        out.add((t, c))
    return out


REQUIRED_TOP = {"application_id", "timestamp", "version", "payload", "source"}
REQUIRED_SOURCE = {"connector", "server_id", "db", "table", "file", "pos", "gtid", "row", "ts_ms"}
RE_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def check_envelope(e):
    problems = []
    missing = REQUIRED_TOP - set(e)
    if missing:
        problems.append("missing top-level fields %s" % sorted(missing))
    p = e.get("payload") or {}
    s = e.get("source") or {}
    if p.get("op") not in ("c", "u", "d"):
        problems.append("payload.op %r" % p.get("op"))
    if set(p) - {"op", "key", "before", "after"} or not {"op", "key", "before", "after"} <= set(p):
        problems.append("payload fields %s" % sorted(p))
    if REQUIRED_SOURCE - set(s):
        problems.append("missing source fields %s" % sorted(REQUIRED_SOURCE - set(s)))
    if not RE_TS.fullmatch(str(e.get("timestamp", ""))):
        problems.append("timestamp %r not ISO-8601 UTC with milliseconds" % e.get("timestamp"))
    op = p.get("op")
    if op == "c" and (p.get("before") is not None or not isinstance(p.get("after"), dict)):
        problems.append("op c needs before=null, after={...}")
    if op == "d" and (p.get("after") is not None or not isinstance(p.get("before"), dict)):
        problems.append("op d needs before={...}, after=null")
    if op == "u" and not (isinstance(p.get("before"), dict) and isinstance(p.get("after"), dict)):
        problems.append("op u needs before and after objects")
    return problems


def replay(envs, info, jcols):
    """Build the replay SQL; return (sql lines, line->envelope index, format errors)."""
    lines = ["SET NAMES utf8mb4;", "SET time_zone = '+00:00';", "SET sql_mode = '%s';" % SQL_MODE,
             "SET SESSION sql_log_bin = 0;"]
    where_from = {}
    ferrs = []
    # Embedded JSON values (the envelope rule) or, if every non-null value
    # of every JSON column is a string, the column text.
    jvals = [img[c] for e in envs for img in (e["payload"]["before"], e["payload"]["after"]) if img
             for c in img if (e["source"]["table"], c) in jcols and img[c] is not None]
    json_mode = "json-text" if jvals and all(isinstance(v, str) for v in jvals) else "json"
    if json_mode == "json-text":
        NOTES.append("JSON columns arrive as strings holding the JSON text, not as embedded "
                     "values (%d values); replayed verbatim (set CDC_FID_STRICT_JSON=1 to fail)" % len(jvals))
        if os.environ.get("CDC_FID_STRICT_JSON") == "1":
            ferrs.append("JSON columns are strings, not embedded JSON values (CDC_FID_STRICT_JSON=1)")
    for idx, e in enumerate(envs):
        p = e["payload"]
        t = e["source"]["table"]
        cols = info.get(t)
        if cols is None:
            ferrs.append("envelope %d: unknown table %r" % (idx, t))
            continue
        types = {c: (dt, ct, cs) for c, dt, ct, cs in cols}
        pk = TABLES[t]["pk"] if t in TABLES else []

        def lit(c, v):
            if c not in types:
                raise FormatError("unknown column %s.%s" % (t, c))
            dt, ct, cs = types[c]
            if (t, c) in jcols:
                dt = json_mode
            return to_sql(v, dt, ct, cs)

        def cond(image):
            keys = pk if pk else [c for c, _, _, _ in cols]
            parts = []
            for c in keys:
                if c not in image:
                    raise FormatError("before image lacks key column %s" % c)
                parts.append("`%s` <=> %s" % (c, lit(c, image[c])))
            return " AND ".join(parts) + ("" if pk else " LIMIT 1")

        try:
            if p["op"] in ("u", "d") and pk:
                key = p.get("key")
                img = p["after"] if p["op"] == "u" else p["before"]
                if not isinstance(key, dict) or set(key) != set(pk):
                    raise FormatError("key %r does not name the primary key %s" % (key, pk))
                for c in pk:
                    if key[c] != img.get(c):
                        raise FormatError("key %r differs from the %s image" % (key, "after" if p["op"] == "u" else "before"))
            if p["op"] == "c":
                a = p["after"]
                s = "INSERT INTO `%s`.`%s` (%s) VALUES (%s);" % (
                    DST, t, ", ".join("`%s`" % c for c in a), ", ".join(lit(c, v) for c, v in a.items()))
            elif p["op"] == "u":
                a = p["after"]
                s = "UPDATE `%s`.`%s` SET %s WHERE %s;" % (
                    DST, t, ", ".join("`%s` = %s" % (c, lit(c, v)) for c, v in a.items()), cond(p["before"]))
            else:
                s = "DELETE FROM `%s`.`%s` WHERE %s;" % (DST, t, cond(p["before"]))
        except FormatError as ex:
            ferrs.append("envelope %d (%s %s.%s pos %s row %s): %s" % (
                idx, p.get("op"), e["source"].get("db"), t, e["source"].get("pos"), e["source"].get("row"), ex))
            continue
        lines.append(s)
        where_from[len(lines)] = idx
    return lines, where_from, ferrs


# ---------------------------------------------------------------------------
# comparison

def select_exprs(t, info, jcols):
    exprs = []
    for c, dt, ct, cs in info[t]:
        if (t, c) in jcols or dt in ("char", "varchar", "tinytext", "text", "mediumtext", "longtext",
                                     "enum", "set") or is_binary(dt, cs) or \
                dt in ("geometry", "point", "linestring", "polygon", "multipoint",
                       "multilinestring", "multipolygon", "geometrycollection"):
            exprs.append("HEX(`%s`)" % c)
        elif dt == "float":
            exprs.append("CAST(`%s` AS DOUBLE)" % c)
        elif dt == "bit":
            exprs.append("CAST(`%s` AS UNSIGNED)" % c)
        else:
            exprs.append("`%s`" % c)
    return exprs


def table_rows(db, t, info, jcols):
    pk = TABLES[t]["pk"] or [c for c, _, _, _ in info[t]]
    exprs = select_exprs(t, info, jcols)
    out = rows("SET time_zone = '+00:00'; SELECT %s FROM `%s`.`%s` ORDER BY %s;" % (
        ", ".join(exprs), db, t, ", ".join("`%s`" % c for c in pk)))
    res = []
    for r in out:
        row = []
        for (c, dt, ct, cs), v in zip(info[t], r):
            if (t, c) in jcols and v != "NULL":
                try:
                    v = json.loads(bytes.fromhex(v).decode("utf-8"))
                except ValueError as ex:
                    v = "<invalid JSON: %s>" % ex
            elif (t, c) in jcols and EMBEDDED_JSON[0]:
                # An embedded JSON column cannot tell SQL NULL from the JSON
                # literal null (docs/ENVELOPE.md): compare them as equal.
                v = None
            row.append(v)
        res.append(row)
    if not TABLES[t]["pk"]:
        res.sort(key=lambda x: json.dumps(x, sort_keys=True))
    return res


def main():
    if not os.access(CDC, os.X_OK):
        skip("%s not built (set CDC_BUILD or CDC_BIN)" % CDC)
    if shutil.which("mariadb") is None:
        skip("mariadb client not installed")
    seed = dblib.test_seed()
    ntxn = int(os.environ.get("CDC_FID_TXNS", "400"))
    print("# %d transactions" % ntxn)
    t0 = time.time()
    try:
        rows("SELECT 1")
    except SystemExit:
        skip("MariaDB on port %s does not answer" % ENV["MYSQL_PORT"])

    datadir = ENV.get("MYSQL_DATADIR") or rows("SELECT @@datadir")[0][0]
    sql(create_sql(SRC))
    sql(create_sql(DST).replace("DROP DATABASE", "SET SESSION sql_log_bin = 0; DROP DATABASE", 1))

    # --- the binlog window
    sql("FLUSH BINARY LOGS;")
    first = rows("SHOW BINLOG STATUS")[0][0]
    w = Workload(seed, ntxn)
    stmts, committed, rolled = w.statements()
    sql("\n".join(stmts) + "\n", SRC)
    sql("FLUSH BINARY LOGS;")
    last = rows("SHOW BINLOG STATUS")[0][0]
    logs = [r[0] for r in rows("SHOW BINARY LOGS")]
    window = logs[logs.index(first):logs.index(last)]
    files = [os.path.join(datadir, f) for f in window]
    print("# workload: %d statements, %d transactions committed, %d rolled back (%.1fs)"
          % (len(stmts), committed, rolled, time.time() - t0))
    print("# binlog window: %s (%d bytes)" % (" ".join(window), sum(os.path.getsize(f) for f in files)))

    tmp = tempfile.mkdtemp(prefix="cdc-fid.")
    try:
        ok = run_decode_and_compare(files, tmp)
    finally:
        if os.environ.get("KEEP_TMP") == "1" or not ok_global[0]:
            print("# scratch kept: %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("# total %.1fs" % (time.time() - t0))
    if not ok:
        print(dblib.seed_note())
    sys.exit(0 if ok else 1)


ok_global = [True]
NOTES = []
EMBEDDED_JSON = [os.environ.get("CDC_FID_VIA") == "kafka"]


def via_kafka(files, out_path, err_path):
    """The live twin: stream the same window from the server through the
    mysql source into real Kafka (one topic per table), consume it back
    with kcat and put the envelopes in source order."""
    if not ENV.get("KAFKA_BOOTSTRAP") or shutil.which("kcat") is None:
        skip("no Kafka in services.env or no kcat")
    first = os.path.basename(files[0])
    dsn = "mysql://%s:%s@127.0.0.1:%s" % (ENV["MYSQL_USER"], ENV["MYSQL_PASSWORD"], ENV["MYSQL_PORT"])
    prefix = "fid%d" % os.getpid()
    state = os.path.join(os.path.dirname(out_path), "state")
    with open(err_path, "wb") as err:
        rc = subprocess.call([CDC, "--source", "mysql", "--mysql-dsn", dsn, "--from", first + ":4",
                              "--include", SRC + ".*", "--sink", "kafka", "--kafka-brokers",
                              ENV["KAFKA_BOOTSTRAP"], "--topic", prefix + ".{table}",
                              "--pipeline", prefix, "--state-dir", state, "--idle-exit", "3000"],
                             stdout=subprocess.DEVNULL, stderr=err, timeout=600)
    if rc != 0:
        return rc
    envs = []
    for t in TABLES:
        p = subprocess.run(["kcat", "-b", ENV["KAFKA_BOOTSTRAP"], "-C", "-t", "%s.%s" % (prefix, t),
                            "-o", "beginning", "-e", "-q", "-f", "%s\\n"], capture_output=True)
        for line in p.stdout.decode("utf-8").splitlines():
            if line.strip():
                e = json.loads(line)
                s = e["source"]
                envs.append(((s["file"], s["pos"], s["row"]), line))
    envs.sort()
    with open(out_path, "w", encoding="utf-8") as out:
        for _, line in envs:
            out.write(line + "\n")
    return 0


def run_decode_and_compare(files, tmp):
    out_path = os.path.join(tmp, "envelopes.jsonl")
    err_path = os.path.join(tmp, "decode.stderr")
    t1 = time.time()
    if os.environ.get("CDC_FID_VIA") == "kafka":
        rc = via_kafka(files, out_path, err_path)
    else:
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            rc = subprocess.call([CDC, "decode", "--format", "autoglm"] + files, stdout=out, stderr=err)
    dt = time.time() - t1
    errtext = open(err_path, encoding="utf-8", errors="replace").read()
    if rc != 0:
        ok_global[0] = False
        print("FAIL: autoglm-cdc decode exited %d after %.1fs:\n%s" % (rc, dt, errtext[-3000:]))
        return False

    envs, bad_json, struct = [], 0, []
    with open(out_path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except ValueError as ex:
                bad_json += 1
                if bad_json <= 5:
                    print("# line %d is not JSON: %s: %s" % (n, ex, line[:200]))
                continue
            probs = check_envelope(e)
            if probs:
                struct.append("line %d: %s" % (n, "; ".join(probs)))
                continue
            if e["source"]["db"] == SRC:
                envs.append(e)
    ops = collections.Counter(e["payload"]["op"] for e in envs)
    per_table = collections.Counter(e["source"]["table"] for e in envs)
    print("# decode: %d envelopes for %s in %.2fs (c=%d u=%d d=%d); %s" % (
        len(envs), SRC, dt, ops["c"], ops["u"], ops["d"],
        ", ".join("%s=%d" % kv for kv in sorted(per_table.items()))))

    info = col_info()
    jcols = json_columns()
    lines, where_from, ferrs = replay(envs, info, jcols)
    script = "\n".join(lines) + "\n"
    with open(os.path.join(tmp, "replay.sql"), "w", encoding="utf-8") as f:
        f.write(script)
    _, rerr, rrc = sql(script, DST, force=True, check=False)
    replay_errs = []
    for l in rerr.splitlines():
        if not l.startswith("ERROR"):
            continue    # the client echoes the failing statement around the error
        m = re.search(r"at line (\d+)", l)
        idx = where_from.get(int(m.group(1))) if m else None
        replay_errs.append(l + ("  [envelope %d: %s]" % (idx, json.dumps(envs[idx])[:400]) if idx is not None else ""))

    mism = 0
    details = []
    for t in TABLES:
        a = table_rows(SRC, t, info, jcols)
        b = table_rows(DST, t, info, jcols)
        names = [c for c, _, _, _ in info[t]]
        tm = 0
        if len(a) != len(b):
            details.append("%s: %d rows in source, %d replayed" % (t, len(a), len(b)))
        ka = {json.dumps(r[:len(TABLES[t]["pk"])]) if TABLES[t]["pk"] else json.dumps(r): r for r in a}
        kb = {json.dumps(r[:len(TABLES[t]["pk"])]) if TABLES[t]["pk"] else json.dumps(r): r for r in b}
        if TABLES[t]["pk"]:
            for k in sorted(set(ka) | set(kb)):
                ra, rb = ka.get(k), kb.get(k)
                if ra == rb:
                    continue
                tm += 1
                if ra is None or rb is None:
                    details.append("%s key %s: only in %s" % (t, k, "replay" if ra is None else "source"))
                else:
                    diffs = ["%s: source=%r replay=%r" % (c, x, y) for c, x, y in zip(names, ra, rb) if x != y]
                    details.append("%s key %s: %s" % (t, k, "; ".join(diffs)[:600]))
        else:
            ca, cb = collections.Counter(json.dumps(r) for r in a), collections.Counter(json.dumps(r) for r in b)
            diff = (ca - cb) + (cb - ca)
            tm = sum(diff.values())
            for r in list(diff)[:5]:
                details.append("%s row %s: count source=%d replay=%d" % (t, r[:200], ca[r], cb[r]))
        mism += tm
        shown = [d for d in details if d.startswith(t + ":") or d.startswith(t + " ")]
        if len(shown) > 6:
            details = [d for d in details if d not in shown[6:]] + ["%s: ... %d more" % (t, len(shown) - 6)]
        print("# table %-7s source rows %5d, replayed rows %5d, mismatched rows %d" % (t, len(a), len(b), tm))

    for title, items in (("envelope structure problems", struct), ("value format violations", ferrs),
                         ("replay SQL errors", replay_errs), ("row mismatches", details)):
        if items:
            print("# %s: %d" % (title, len(items)))
            for x in items[:60]:
                print("#   " + x)
            if len(items) > 60:
                print("#   ... %d more" % (len(items) - 60))
    for n in NOTES:
        print("# note: " + n)
    if errtext.strip():
        print("# decode stderr (tail):\n" + "\n".join("#   " + l for l in errtext.strip().splitlines()[-10:]))
    ok = bad_json == 0 and not struct and not ferrs and not replay_errs and mism == 0 and len(envs) > 0
    if len(envs) == 0:
        print("# no envelopes for %s were decoded" % SRC)
    print("# summary: %d envelopes, %d bad JSON lines, %d structure problems, %d format violations, "
          "%d replay errors, %d mismatched rows" % (len(envs), bad_json, len(struct), len(ferrs),
                                                   len(replay_errs), mism))
    if ok:
        print("PASS: decode fidelity: replay reproduces all %d tables exactly" % len(TABLES))
    else:
        ok_global[0] = False
        print("FAIL: decode fidelity")
    return ok


if __name__ == "__main__":
    main()
