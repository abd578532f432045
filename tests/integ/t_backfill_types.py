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
     every type), and replaying the backfill into an empty copy gives the
     source (SELECT comparison of t_decode_fidelity.py).
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


def dsn():
    return "mysql://%s:%s@%s:%s" % (ENV.get("MYSQL_USER", "cdc"), ENV.get("MYSQL_PASSWORD", ""),
                                    ENV["MYSQL_HOST"], ENV["MYSQL_PORT"])


def read_env(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
    return out


def keyof(e):
    return json.dumps(e["payload"]["key"], sort_keys=True)


def main():
    if not os.access(CDC, os.X_OK):
        fid.skip("%s not built" % CDC)
    if shutil.which("mariadb") is None:
        fid.skip("mariadb client not installed")
    seed = fid.dblib.test_seed()
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
        for e in read_env(spath):
            p = e["payload"]
            t = e["source"]["table"]
            if p["op"] in ("c", "u"):
                if p["op"] == "u" and p["before"]:
                    bk = {c: p["before"][c] for c in fid.TABLES[t]["pk"]}
                    state[t].pop(json.dumps(bk, sort_keys=True), None)
                state[t][keyof(e)] = p["after"]
            elif p["op"] == "d":
                state[t].pop(keyof(e), None)

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
        benvs = read_env(bpath)
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
        for e in benvs:
            k = keyof(e)
            t = e["source"]["table"]
            if k in back[t]:
                fid.fail("backfill emitted key %s of %s twice" % (k, t))
            back[t][k] = e["payload"]["after"]

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
        ok = mism == 0 and sel == 0 and not ferrs and not rerrs and len(benvs) > 0
        print("%s: backfill type fidelity (%d tables, %d rows; stream mismatches %d, SELECT mismatches %d)"
              % ("PASS" if ok else "FAIL", len(tables), len(benvs), mism, sel))
    finally:
        if ok and os.environ.get("KEEP_TMP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)
            fid.sql("DROP DATABASE IF EXISTS `%s`; DROP DATABASE IF EXISTS `%s`;" % (SRC, DST))
        else:
            print("# scratch kept: %s" % tmp)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
