#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MariaDB consistent first load: backfill during DML, then the stream from
the stored checkpoint - no gap, no overlap.

  1. bf_first.t gets N rows; random DML starts and keeps running;
  2. `autoglm-cdc backfill` with an empty state dir: START TRANSACTION WITH
     CONSISTENT SNAPSHOT, binlog_snapshot_file/position stored as the
     pipeline's checkpoint, every row stamped with that position;
  3. the daemon starts from that checkpoint (no --from) while the DML goes
     on, then the DML stops and the daemon exits when idle;
  4. the backfill's rows followed by the stream's events (position order)
     must equal SELECT, and no stream event may sit at or before the
     snapshot position.
Exit: 0 pass, 1 fail, 77 skip.
"""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("conc", os.path.join(HERE, "t_backfill_concurrent.py"))
conc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conc)
conc.DB = DB = "bf_first"


def main():
    if not os.access(conc.CDC, os.X_OK):
        conc.skip("%s not built" % conc.CDC)
    if shutil.which("mariadb") is None:
        conc.skip("no mariadb client")
    n = int(os.environ.get("CDC_BF_ROWS", "20000"))
    seed = conc.dblib.test_seed()
    print("# %d rows" % n)
    tmp = tempfile.mkdtemp(prefix="cdc-bf-first.")
    ok = False
    try:
        conc.sql("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; GRANT ALL ON %s.* TO '%s'@'%%';"
                 % (DB, DB, DB, conc.ENV["MYSQL_USER"]))
        conc.sql("CREATE TABLE t (id INT PRIMARY KEY, v BIGINT, s VARCHAR(40), u BIGINT);", DB)
        vals = ["(%d,%d,'r%d',%d)" % (i, i % 97, i, i * 7) for i in range(1, n + 1)]
        for k in range(0, n, 5000):
            conc.sql("INSERT INTO t VALUES %s;" % ",".join(vals[k:k + 5000]), DB)
        state = os.path.join(tmp, "state")
        stop, cnt = threading.Event(), [0]
        th = threading.Thread(target=conc.dml_loop, args=(seed, stop, n, cnt))
        th.start()
        time.sleep(0.5)
        bpath, spath = os.path.join(tmp, "backfill.jsonl"), os.path.join(tmp, "stream.jsonl")
        r = subprocess.run([conc.CDC, "backfill", "--source", "mysql", "--mysql-dsn", conc.dsn(), "--table",
                            DB + ".t", "--sink", "file", "-o", bpath, "--state-dir", state, "--pipeline", "bff",
                            "--chunk-size", "1000", "--max-rows-per-sec", str(max(2000, n // 3))],
                           stderr=subprocess.PIPE, timeout=300)
        err = r.stderr.decode(errors="replace")
        if r.returncode != 0:
            conc.fail("backfill exited %d: %s" % (r.returncode, err[-2000:]))
        m = re.search(r"consistent first load at (\S+):(\d+)", err)
        if not m:
            conc.fail("not a consistent first load:\n" + err[-2000:])
        snap_file, snap_pos = m.group(1), int(m.group(2))
        time.sleep(1.0)   # changes after the snapshot, before the daemon starts
        derr = open(os.path.join(tmp, "daemon.err"), "wb")
        d = subprocess.Popen([conc.CDC, "--source", "mysql", "--mysql-dsn", conc.dsn(), "--server-id", "424401",
                              "--include", DB + ".t", "--sink", "file", "-o", spath, "--state-dir", state,
                              "--pipeline", "bff", "--idle-exit", "3000"], stderr=derr)
        time.sleep(1.5)
        stop.set()
        th.join()
        if d.wait(timeout=120) != 0:
            conc.fail("daemon failed: " + open(os.path.join(tmp, "daemon.err"), errors="replace").read()[-2000:])
        derrt = open(os.path.join(tmp, "daemon.err"), errors="replace").read()
        if "resuming from checkpoint" not in derrt:
            conc.fail("daemon did not resume from the first load's checkpoint:\n" + derrt[-1500:])
        bev, sev = conc.events(bpath, 0), conc.events(spath, 1)
        seq = int(re.search(r"(\d+)$", snap_file).group(1))
        if any(e["source"]["file"] != snap_file or e["source"]["pos"] != snap_pos for e in bev):
            conc.fail("backfill rows are not stamped with the snapshot position")
        early = [e for e in sev if e["_ord"][:2] <= (seq, snap_pos)]
        if early:
            conc.fail("%d stream events at or before the snapshot position (overlap)" % len(early))
        st = {}
        for e in sorted(bev, key=lambda e: e["_ord"]) + sorted(sev, key=lambda e: e["_ord"]):
            p = e["payload"]
            if p["op"] in ("c", "r", "u"):
                if p["op"] == "u" and p["before"]["id"] != p["after"]["id"]:
                    st.pop(p["before"]["id"], None)
                st[p["after"]["id"]] = p["after"]
            elif p["op"] == "d":
                st.pop(p["before"]["id"], None)
        src = {}
        for row in conc.sql("SELECT id, v, s, u FROM t", DB):
            src[int(row[0])] = {"id": int(row[0]), "v": None if row[1] == "NULL" else int(row[1]),
                                "s": None if row[2] == "NULL" else row[2],
                                "u": None if row[3] == "NULL" else int(row[3])}
        bad = [k for k in sorted(set(src) | set(st)) if src.get(k) != st.get(k)]
        print("# snapshot at %s:%d; backfill %d rows, stream %d events, %d DML txns; mismatches %d"
              % (snap_file, snap_pos, len(bev), len(sev), cnt[0], len(bad)))
        for k in bad[:10]:
            print("#   id %d: source=%s rebuilt=%s" % (k, src.get(k), st.get(k)))
        ok = not bad and len(bev) > 0 and len(sev) > 0
        print("%s: consistent first load + stream from its checkpoint (no gap, no overlap)"
              % ("PASS" if ok else "FAIL"))
    finally:
        if ok and os.environ.get("KEEP_TMP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)
            conc.sql("DROP DATABASE IF EXISTS %s;" % DB)
        else:
            print("# scratch kept: %s" % tmp)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
