#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Backfill type fidelity (MariaDB): backfill == stream == SELECT, every type.

On the real MariaDB from tests/services.env, with the tables and the seeded
random workload of t_decode_fidelity.py (every column type, composite
primary key, PK changes, deletes):
  1. run the workload into a fresh database bf_types_src;
  2. stream it with the live daemon (`autoglm-cdc --source mysql --from
     FILE:POS --sink file`) and rebuild each table's final state by applying
     the envelopes in order;
  3. back the tables up with `autoglm-cdc backfill` (small chunks, so keyset
     paging over the composite key is exercised) to a file;
  4. check: every backfill row is op 'r', each table's backfill rows equal
     the stream's final after-images value for value (the same JSON for
     every type) and byte for byte: the payload's "key" and "after" of a
     backfill envelope are the very bytes of the stream's last envelope of
     that row (the snapshot turns values into JSON with the binlog
     decoder's functions), and replaying the backfill into an empty copy
     gives the source (SELECT comparison of t_decode_fidelity.py).
Besides the fixed tables of t_decode_fidelity.py, a table t_seeded gets
its columns from the seed (types, sizes, precisions, character sets,
ENUM/SET members), so each seed also tries a different schema.
Exit: 0 pass, 1 fail, 77 skip.
"""

import collections
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("fid", os.path.join(HERE, "t_decode_fidelity.py"))
fid = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fid)

SRC = fid.SRC = "bf_types_src"
fid.EMBEDDED_JSON[0] = True   # live source: SQL NULL and JSON null both read as null
DST = fid.DST = "bf_types_dst"
CDC = fid.CDC
ENV = fid.ENV


# Column types t_seeded draws from: (template, how to fill it from the rng).
MEMBERS = ["a", "b", "c d", "\u00e9t\u00e9", "x,y", "longer member", "Z", "\u4e2d"]


def seeded_type(r):
    k = r.choice(["int", "bit", "year", "dec", "float", "double", "date", "time", "datetime",
                  "timestamp", "char", "varchar", "text", "binary", "varbinary", "blob",
                  "enum", "set", "json", "geometry", "point"])
    cs = r.choice(["utf8mb4", "latin1", "utf8mb3"])
    if k == "int":
        t = r.choice(["TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT"])
        return t + (" UNSIGNED" if r.random() < 0.5 else "")
    if k == "bit":
        return "BIT(%d)" % r.randint(1, 64)
    if k == "year":
        return "YEAR"
    if k == "dec":
        p = r.randint(1, 65)
        return "DECIMAL(%d,%d)%s" % (p, r.randint(0, min(p, 30)), " UNSIGNED" if r.random() < 0.3 else "")
    if k in ("float", "double", "date"):
        return k.upper()
    if k in ("time", "datetime"):
        return "%s(%d)" % (k.upper(), r.randint(0, 6))
    if k == "timestamp":
        return "TIMESTAMP(%d) NULL" % r.randint(0, 6)
    if k == "char":
        return "CHAR(%d) CHARACTER SET %s" % (r.randint(1, 40), cs)
    if k == "varchar":
        return "VARCHAR(%d) CHARACTER SET %s" % (r.randint(1, 200), cs)
    if k == "text":
        return "TEXT CHARACTER SET %s" % cs
    if k in ("binary", "varbinary"):
        return "%s(%d)" % (k.upper(), r.randint(1, 64))
    if k == "blob":
        return r.choice(["TINYBLOB", "BLOB"])
    if k in ("enum", "set"):
        ms = r.sample(MEMBERS if k == "enum" else [m for m in MEMBERS if "," not in m], r.randint(1, 5))
        return "%s(%s)" % (k.upper(), ",".join("'%s'" % m for m in ms))
    return k.upper()


def add_seeded_table(seed):
    import random
    r = random.Random(seed * 7919 + 1)
    cols = [("id", "INT NOT NULL")] + [("c%d" % i, seeded_type(r)) for i in range(r.randint(8, 16))]
    fid.TABLES["t_seeded"] = {"pk": ["id"], "cols": cols}
    print("# t_seeded: %s" % ", ".join("%s %s" % c for c in cols[1:]))


def raw_member(text, name):
    """The bytes of member `name` of the JSON object text (None if absent)."""
    dec = json.JSONDecoder()
    i = text.index("{") + 1
    while True:
        while text[i] in " \t\r\n,":
            i += 1
        if text[i] == "}":
            return None
        key, i = dec.raw_decode(text, i)
        while text[i] in " \t\r\n:":
            i += 1
        start = i
        _, i = dec.raw_decode(text, i)
        if key == name:
            return text[start:i]


def raw_image(line):
    """(raw payload.key, raw payload.after) of an envelope line."""
    pl = raw_member(line, "payload")
    return raw_member(pl, "key"), raw_member(pl, "after")


def dsn():
    return "mysql://%s:%s@%s:%s" % (ENV.get("MYSQL_USER", "cdc"), ENV.get("MYSQL_PASSWORD", ""),
                                    ENV["MYSQL_HOST"], ENV["MYSQL_PORT"])


def read_env(path, raw=None):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
                if raw is not None:
                    raw.append(line)
    return out


def keyof(e):
    return json.dumps(e["payload"]["key"], sort_keys=True)


def main():
    if not os.access(CDC, os.X_OK):
        fid.skip("%s not built" % CDC)
    if shutil.which("mariadb") is None:
        fid.skip("mariadb client not installed")
    seed = fid.dblib.test_seed()
    add_seeded_table(seed)
    ntxn = int(os.environ.get("CDC_BF_TXNS", "300"))
    tmp = tempfile.mkdtemp(prefix="cdc-bf-types.")
    ok = False
    try:
        fid.rows("SELECT 1")
        fid.sql(fid.create_sql(SRC))
        fid.sql(fid.create_sql(DST).replace("DROP DATABASE", "SET SESSION sql_log_bin = 0; DROP DATABASE", 1))
        f0, p0 = fid.rows("SHOW BINLOG STATUS")[0][:2]
        w = fid.Workload(seed, ntxn)
        stmts, committed, rolled = w.statements()
        fid.sql("\n".join(stmts) + "\n", SRC)
        print("# seed %d: %d transactions committed, %d rolled back" % (seed, committed, rolled))
        tables = [t for t in fid.TABLES if fid.TABLES[t]["pk"]]

        # stream
        spath = os.path.join(tmp, "stream.jsonl")
        r = subprocess.run([CDC, "--source", "mysql", "--mysql-dsn", dsn(), "--from", "%s:%s" % (f0, p0),
                            "--server-id", "424201", "--include", SRC + ".*", "--sink", "file",
                            "-o", spath, "--idle-exit", "3000", "--state-dir", os.path.join(tmp, "s1"),
                            "--pipeline", "bft"], stderr=subprocess.PIPE, timeout=300)
        if r.returncode != 0:
            fid.fail("stream exited %d: %s" % (r.returncode, r.stderr.decode()[-2000:]))
        state = collections.defaultdict(dict)
        rawstate = collections.defaultdict(dict)   # the same, as bytes
        slines = []
        for e, line in zip(read_env(spath, slines), slines):
            p = e["payload"]
            t = e["source"]["table"]
            if p["op"] in ("c", "u"):
                if p["op"] == "u" and p["before"]:
                    bk = {c: p["before"][c] for c in fid.TABLES[t]["pk"]}
                    state[t].pop(json.dumps(bk, sort_keys=True), None)
                    rawstate[t].pop(json.dumps(bk, sort_keys=True), None)
                state[t][keyof(e)] = p["after"]
                rawstate[t][keyof(e)] = raw_image(line)
            elif p["op"] == "d":
                state[t].pop(keyof(e), None)
                rawstate[t].pop(keyof(e), None)

        # backfill
        bpath = os.path.join(tmp, "backfill.jsonl")
        t0 = time.time()
        args = [CDC, "backfill", "--source", "mysql", "--mysql-dsn", dsn(), "--sink", "file",
                "-o", bpath, "--chunk-size", "37", "--state-dir", os.path.join(tmp, "s2"),
                "--pipeline", "bfb"]
        for t in tables:
            args += ["--table", "%s.%s" % (SRC, t)]
        r = subprocess.run(args, stderr=subprocess.PIPE, timeout=300)
        if r.returncode != 0:
            fid.fail("backfill exited %d: %s" % (r.returncode, r.stderr.decode()[-2000:]))
        blines = []
        benvs = read_env(bpath, blines)
        print("# backfill: %d rows in %.1fs" % (len(benvs), time.time() - t0))
        # the same again, watermarked (incremental) with 3 tables at a time
        fid.sql("GRANT ALL ON `%s`.* TO '%s'@'%%';" % (SRC, ENV.get("MYSQL_USER", "cdc")))
        ppath = os.path.join(tmp, "parallel.jsonl")
        pargs = [a if a != bpath else ppath for a in args]
        pargs += ["-X", "backfill.mode=incremental", "--parallel", "3"]
        r = subprocess.run(pargs, stderr=subprocess.PIPE, timeout=300)
        if r.returncode != 0:
            fail_msg = r.stderr.decode()[-2000:]
            fid.fail("parallel backfill exited %d: %s" % (r.returncode, fail_msg))
        if b"3 workers" not in r.stderr or b"watermarks on" not in r.stderr:
            fid.fail("parallel run did not use 3 workers with watermarks: %s" % r.stderr.decode()[-1000:])
        pk = lambda e: (e["source"]["table"], keyof(e), json.dumps(e["payload"]["after"], sort_keys=True))
        penvs = read_env(ppath)
        if sorted(map(pk, penvs)) != sorted(map(pk, benvs)):
            fid.fail("parallel watermarked backfill differs from the first load (%d vs %d rows)"
                     % (len(penvs), len(benvs)))
        print("# parallel watermarked backfill: same %d rows" % len(penvs))
        bad = [e for e in benvs if e["payload"]["op"] != "r" or e["payload"]["before"] is not None]
        if bad:
            fid.fail("%d backfill envelopes are not op r: %s" % (len(bad), json.dumps(bad[0])[:300]))
        back = collections.defaultdict(dict)
        rawback = collections.defaultdict(dict)
        for e, line in zip(benvs, blines):
            k = keyof(e)
            t = e["source"]["table"]
            if k in back[t]:
                fid.fail("backfill emitted key %s of %s twice" % (k, t))
            back[t][k] = e["payload"]["after"]
            rawback[t][k] = raw_image(line)

        # byte for byte: payload.key and payload.after of every row
        bytes_diff = 0
        bytes_same = 0
        for t in tables:
            for k in sorted(set(rawstate[t]) & set(rawback[t])):
                if rawstate[t][k] == rawback[t][k]:
                    bytes_same += 1
                    continue
                bytes_diff += 1
                if bytes_diff <= 5:
                    print("#   %s key %s bytes differ:\n#     stream   %s\n#     backfill %s"
                          % (t, k, rawstate[t][k][1][:400], rawback[t][k][1][:400]))
        print("# byte-identical key+after: %d rows, %d differ" % (bytes_same, bytes_diff))
        if "t_seeded" not in back or not back["t_seeded"]:
            fid.fail("t_seeded has no backfill rows: the seeded schema was not exercised")

        mism = 0
        for t in tables:
            a, b = state[t], back[t]
            tm = 0
            for k in sorted(set(a) | set(b)):
                if a.get(k) != b.get(k):
                    tm += 1
                    if tm <= 5:
                        if k not in a or k not in b:
                            print("#   %s key %s only in %s" % (t, k, "backfill" if k not in a else "stream"))
                        else:
                            d = ["%s: stream=%r backfill=%r" % (c, a[k].get(c), b[k].get(c))
                                 for c in a[k] if a[k].get(c) != b[k].get(c)]
                            print("#   %s key %s: %s" % (t, k, "; ".join(d)[:500]))
            print("# table %-7s stream rows %5d backfill rows %5d mismatched %d" % (t, len(a), len(b), tm))
            mism += tm

        # replay the backfill (as inserts) and compare with SELECT
        info = fid.col_info()
        jcols = fid.json_columns()
        for e in benvs:
            e["payload"]["op"] = "c"
        lines, where_from, ferrs = fid.replay(benvs, info, jcols)
        _, rerr, _ = fid.sql("\n".join(lines) + "\n", DST, force=True, check=False)
        rerrs = [l for l in rerr.splitlines() if l.startswith("ERROR")]
        sel = 0
        for t in tables:
            if fid.table_rows(SRC, t, info, jcols) != fid.table_rows(DST, t, info, jcols):
                sel += 1
                print("#   %s: replayed backfill differs from SELECT" % t)
        for x in (ferrs + rerrs)[:10]:
            print("#   " + x)
        ok = (mism == 0 and sel == 0 and bytes_diff == 0 and bytes_same > 0 and not ferrs
              and not rerrs and len(benvs) > 0)
        print("%s: backfill type fidelity (%d tables, %d rows; stream mismatches %d, byte mismatches %d, "
              "SELECT mismatches %d)" % ("PASS" if ok else "FAIL", len(tables), len(benvs), mism, bytes_diff, sel))
    finally:
        if ok and os.environ.get("KEEP_TMP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)
            fid.sql("DROP DATABASE IF EXISTS `%s`; DROP DATABASE IF EXISTS `%s`;" % (SRC, DST))
        else:
            print("# scratch kept: %s" % tmp)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
