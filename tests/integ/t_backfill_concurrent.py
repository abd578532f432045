#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Backfill during live DML while the streaming daemon runs converges.

  1. bf_conc.t gets N rows (before the stream's start: only the backfill
     can deliver them);
  2. the daemon streams bf_conc.* from that point to a file;
  3. random DML (updates, deletes, inserts inside and beyond the key range,
     primary-key changes, multi-statement transactions) runs in a loop while
     `autoglm-cdc backfill` (incremental mode: watermarks) reads the table
     in throttled chunks into another file;
  4. after the DML stops and the daemon is idle, the final state is rebuilt
     from both files by applying every event in source-position order
     (binlog file, offset, row; a backfill row sits at its chunk's high
     watermark) and compared with SELECT.
Also checks that the watermark rule dropped rows (the window was hit) and
that every backfill row is op 'r'.
Env: CDC_BUILD/CDC_BIN, CDC_SVC_ENV, CDC_BF_ROWS (default 20000),
CDC_TEST_SEED, KEEP_TMP=1.  Exit: 0 pass, 1 fail, 77 skip.
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DB = os.environ.get("CDC_BF_DB", "bf_conc")


import dblib  # noqa: E402
from dblib import skip  # noqa: E402 (exit 77, or fail under CDC_REQUIRE_SERVICES=1)


def fail(m):
    print("FAIL: " + m)
    print(dblib.seed_note())
    sys.exit(1)


def load_env():
    path = os.environ.get("CDC_SVC_ENV", os.path.join(ROOT, "tests", "services.env"))
    if not os.path.exists(path):
        skip("%s missing (run tests/services.sh up mariadb)" % path)
    env = {}
    for line in open(path):
        m = re.match(r"^([A-Z_]+)='?([^']*)'?$", line.strip())
        if m:
            env[m.group(1)] = m.group(2)
    return env


ENV = load_env()
CDC = os.environ.get("CDC_BIN", os.path.join(os.environ.get("CDC_BUILD", os.path.join(ROOT, "build")),
                                             "autoglm-cdc"))


def client(db=None):
    cmd = ["mariadb", "--no-defaults", "--protocol=tcp", "-h", ENV["MYSQL_HOST"], "-P", ENV["MYSQL_PORT"],
           "-u", ENV.get("MYSQL_ROOT_USER", "root"), "-p" + ENV.get("MYSQL_ROOT_PASSWORD", ""),
           "--default-character-set=utf8mb4", "-N", "-B"]
    return cmd + ([db] if db else [])


def sql(text, db=None):
    p = subprocess.run(client(db), input=text.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode:
        fail("SQL failed: %s\n%s" % (p.stderr.decode()[-1000:], text[:300]))
    return [l.split("\t") for l in p.stdout.decode().split("\n") if l]


def dsn():
    return "mysql://%s:%s@%s:%s" % (ENV["MYSQL_USER"], ENV["MYSQL_PASSWORD"], ENV["MYSQL_HOST"],
                                    ENV["MYSQL_PORT"])


def dml_loop(seed, stop, maxid, counter):
    """Random DML through one client session until stop is set."""
    r = random.Random(seed)
    p = subprocess.Popen(client(DB) + ["--force"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    nid = maxid + 1
    t_end = time.time() + 90    # never outlive a stuck backfill
    while not stop.is_set() and time.time() < t_end:
        stmts = []
        for _ in range(r.randint(1, 4)):
            k = r.random()
            i = r.randint(1, maxid + 200)
            if k < 0.45:
                stmts.append("UPDATE t SET v = v + 1, s = '%s', u = %d WHERE id = %d;"
                             % ("u%d" % r.randint(0, 10 ** 6), r.randint(-10 ** 12, 10 ** 12), i))
            elif k < 0.6:
                stmts.append("DELETE FROM t WHERE id = %d;" % i)
            elif k < 0.75:
                stmts.append("INSERT IGNORE INTO t VALUES (%d, %d, 'ins', %d);" % (i, r.randint(0, 99), i))
            elif k < 0.85:
                stmts.append("INSERT INTO t VALUES (%d, 0, 'new', 0);" % nid)
                nid += 1
            elif k < 0.93:
                j = r.randint(1, maxid + 200)
                stmts.append("UPDATE IGNORE t SET id = %d WHERE id = %d;" % (j, i))
            else:
                lo = r.randint(1, maxid)
                stmts.append("UPDATE t SET v = v * 2 WHERE id BETWEEN %d AND %d;" % (lo, lo + 20))
        if len(stmts) > 1:
            text = "START TRANSACTION;\n" + "\n".join(stmts) + "\nCOMMIT;\n"
        else:
            text = stmts[0] + "\n"
        try:
            p.stdin.write(text.encode())
            p.stdin.flush()
        except BrokenPipeError:
            break
        counter[0] += 1
        if r.random() < 0.1:
            time.sleep(r.random() * 0.002)
    try:
        p.stdin.close()
    except BrokenPipeError:
        pass
    p.wait()


def events(path, origin):
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            if not line.strip():
                continue
            e = json.loads(line)
            if e["source"]["db"] != DB or e["source"]["table"] != "t":
                continue
            s = e["source"]
            m = re.search(r"(\d+)$", s["file"] or "")
            e["_ord"] = (int(m.group(1)) if m else -1, s["pos"], s["row"], origin, n)
            out.append(e)
    return out


def main():
    if not os.access(CDC, os.X_OK):
        skip("%s not built" % CDC)
    if shutil.which("mariadb") is None:
        skip("no mariadb client")
    try:
        sql("SELECT 1")
    except SystemExit:
        skip("MariaDB does not answer")
    n = int(os.environ.get("CDC_BF_ROWS", "20000"))
    seed = dblib.test_seed()
    print("# %d rows" % n)
    tmp = tempfile.mkdtemp(prefix="cdc-bf-conc.")
    ok = False
    daemon = None
    try:
        sql("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s CHARACTER SET utf8mb4; "
            "GRANT ALL ON %s.* TO '%s'@'%%';" % (DB, DB, DB, ENV["MYSQL_USER"]))
        sql("CREATE TABLE t (id INT PRIMARY KEY, v BIGINT, s VARCHAR(40), u BIGINT) ENGINE=InnoDB;", DB)
        vals = []
        for i in range(1, n + 1):
            vals.append("(%d,%d,'r%d',%d)" % (i, i % 97, i, i * 7))
            if len(vals) == 5000 or i == n:
                sql("INSERT INTO t VALUES %s;" % ",".join(vals), DB)
                vals = []
        f0, p0 = sql("SHOW BINLOG STATUS")[0][:2]
        state = os.path.join(tmp, "state")
        spath, bpath = os.path.join(tmp, "stream.jsonl"), os.path.join(tmp, "backfill.jsonl")
        derr = open(os.path.join(tmp, "daemon.err"), "wb")
        daemon = subprocess.Popen([CDC, "--source", "mysql", "--mysql-dsn", dsn(), "--from", "%s:%s" % (f0, p0),
                                   "--server-id", "424301", "--include", DB + ".t", "--sink", "file", "-o", spath,
                                   "--state-dir", state, "--pipeline", "bfc", "--idle-exit", "4000"],
                                  stderr=derr)
        time.sleep(1.0)
        stop = threading.Event()
        cnt = [0]
        th = threading.Thread(target=dml_loop, args=(seed, stop, n, cnt))
        th.start()
        time.sleep(0.5)
        t0 = time.time()
        berr = os.path.join(tmp, "backfill.err")
        with open(berr, "wb") as ef:
            rc = subprocess.call([CDC, "backfill", "--source", "mysql", "--mysql-dsn", dsn(), "--table", DB + ".t",
                                  "--sink", "file", "-o", bpath, "--state-dir", state, "--pipeline", "bfc",
                                  "-X", "backfill.mode=incremental", "--chunk-size", "500",
                                  "--max-rows-per-sec", str(max(2000, n // 4))], stderr=ef)
        bt = time.time() - t0
        time.sleep(0.5)
        stop.set()
        th.join()
        print("# backfill exit %d after %.1fs; %d DML transactions ran meanwhile" % (rc, bt, cnt[0]))
        btxt = open(berr, errors="replace").read()
        if rc != 0:
            fail("backfill exited %d:\n%s" % (rc, btxt[-3000:]))
        m = re.search(r"(\d+) rows left to the stream by the watermark rule", btxt)
        if not m:
            fail("the backfill did not report its watermark drops:\n%s" % btxt[-2000:])
        dropped = int(m.group(1))
        drc = daemon.wait(timeout=120)
        daemon = None
        if drc != 0:
            fail("daemon exited %d: %s" % (drc, open(os.path.join(tmp, "daemon.err"), errors="replace").read()[-2000:]))

        sev, bev = events(spath, 0), events(bpath, 1)
        if any(e["payload"]["op"] != "r" for e in bev):
            fail("backfill produced a non-'r' event")
        allev = sorted(sev + bev, key=lambda e: e["_ord"])
        st = {}
        for e in allev:
            p = e["payload"]
            if p["op"] in ("c", "r", "u"):
                if p["op"] == "u" and p["before"]["id"] != p["after"]["id"]:
                    st.pop(p["before"]["id"], None)
                st[p["after"]["id"]] = p["after"]
            elif p["op"] == "d":
                st.pop(p["before"]["id"], None)
        src = {}
        for r in sql("SELECT id, v, s, u FROM t ORDER BY id", DB):
            src[int(r[0])] = {"id": int(r[0]), "v": None if r[1] == "NULL" else int(r[1]),
                              "s": None if r[2] == "NULL" else r[2], "u": None if r[3] == "NULL" else int(r[3])}
        bad = [k for k in sorted(set(src) | set(st)) if src.get(k) != st.get(k)]
        print("# stream %d events, backfill %d rows, watermark drops %d; source %d rows, rebuilt %d rows, "
              "mismatches %d" % (len(sev), len(bev), dropped, len(src), len(st), len(bad)))
        for k in bad[:10]:
            print("#   id %d: source=%s rebuilt=%s" % (k, src.get(k), st.get(k)))
        # the naive order (backfill rows applied after the whole stream)
        # must be wrong whenever rows changed during the backfill: shows the
        # stamping matters (informational)
        # the watermark rule must have dropped rows: otherwise the DML never
        # hit a chunk's window and the convergence proves little
        if dropped == 0:
            print("FAIL: the watermark rule dropped no row: no DML hit a chunk's window (%d DML transactions)"
                  % cnt[0])
        ok = not bad and len(bev) > 0 and dropped > 0
        print("%s: backfill with concurrent DML and a running stream converges (%d keys)"
              % ("PASS" if ok else "FAIL", len(src)))
        if not ok:
            print(dblib.seed_note())
    finally:
        if daemon:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait()
        if ok and os.environ.get("KEEP_TMP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)
            sql("DROP DATABASE IF EXISTS %s;" % DB)
        else:
            print("# scratch kept: %s" % tmp)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
