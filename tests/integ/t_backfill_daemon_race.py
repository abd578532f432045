#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A cron backfill that starts while the daemon runs, before the daemon's
first checkpoint, must not perform a second "first load".

  1. the daemon of pipeline P starts (no checkpoint yet; idle, so it
     writes none); it holds P's run lock (<state.dir>/P.lock) and records
     itself in <state.dir>/P.daemon;
  2. `backfill` (mode auto) sees it through the run lock: it says so,
     backfills incrementally
     with watermarks (no consistent first load that would store the
     stream's checkpoint); every row arrives once (op r) and the daemon
     keeps running;
  3. `backfill.mode=initial` beside the running daemon: exit 75, naming
     the daemon's pid;
  4. after the daemon stops, its record is gone; a stale P.daemon is
     then written whose pid was "reused" by a live autoglm-cdc process
     (the daemon of another pipeline in the same state dir): the lock is
     free, so the same backfill is a consistent first load again (it
     stores the checkpoint) and `status` calls the record stale.
Exit: 0 pass, 1 fail, 77 skip.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("conc", os.path.join(HERE, "t_backfill_concurrent.py"))
conc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conc)

DB = "bf_race_%d" % os.getpid()
N = 300


def main():
    if not os.access(conc.CDC, os.X_OK):
        conc.skip("%s not built" % conc.CDC)
    if shutil.which("mariadb") is None:
        conc.skip("no mariadb client")
    tmp = tempfile.mkdtemp(prefix="cdc-bf-race.")
    state = os.path.join(tmp, "state")
    d = None
    try:
        conc.sql("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; GRANT ALL ON %s.* TO '%s'@'%%';"
                 % (DB, DB, DB, conc.ENV["MYSQL_USER"]))
        conc.sql("CREATE TABLE t (id INT PRIMARY KEY, v INT); CREATE TABLE autoglm_cdc_signal "
                 "(id VARCHAR(64) PRIMARY KEY, kind VARCHAR(16) NOT NULL, ts TIMESTAMP(6) NOT NULL "
                 "DEFAULT CURRENT_TIMESTAMP(6));", DB)
        conc.sql("INSERT INTO t VALUES %s;" % ",".join("(%d,%d)" % (i, i) for i in range(1, N + 1)), DB)
        derr = open(os.path.join(tmp, "daemon.err"), "wb")
        d = subprocess.Popen([conc.CDC, "run", "--source", "mysql", "--mysql-dsn", conc.dsn(), "--server-id",
                              "424601", "--include", DB + ".nothing", "--sink", "file", "-o",
                              os.path.join(tmp, "stream.jsonl"), "--state-dir", state, "--pipeline", "race"],
                             stderr=derr)
        rec = os.path.join(state, "race.daemon")
        for _ in range(100):
            if os.path.exists(rec):
                break
            time.sleep(0.1)
        else:
            conc.fail("the daemon did not record itself in %s" % rec)
        ckpt = os.path.join(state, "race.ckpt")
        if os.path.exists(ckpt):
            conc.fail("test premise: the idle daemon already wrote a checkpoint")

        def backfill(out, *extra):
            return subprocess.run([conc.CDC, "backfill", "--source", "mysql", "--mysql-dsn", conc.dsn(),
                                   "--table", DB + ".t", "--sink", "file", "-o", out, "--state-dir", state,
                                   "--pipeline", "race", "-X", "backfill.server_id=424700",
                                   "-X", "backfill.signal_table=%s.autoglm_cdc_signal" % DB] + list(extra),
                                  capture_output=True, text=True, timeout=300)

        out1 = os.path.join(tmp, "bf1.jsonl")
        r = backfill(out1)
        if r.returncode != 0:
            conc.fail("backfill beside the daemon exited %d:\n%s" % (r.returncode, r.stderr[-2000:]))
        if "runs (pid %d" % d.pid not in r.stderr or "instead of a first load" not in r.stderr:
            conc.fail("the backfill does not say that it found the running daemon:\n" + r.stderr[-2000:])
        if "consistent first load" in r.stderr:
            conc.fail("a second first load beside the running daemon:\n" + r.stderr[-2000:])
        if "stored as the stream" in r.stderr or "checkpoint stored" in r.stderr:
            conc.fail("the backfill stored the stream checkpoint under the running daemon")
        rows = [json.loads(x) for x in open(out1)]
        ids = sorted(e["payload"]["after"]["id"] for e in rows if e["source"]["table"] == "t")
        if ids != list(range(1, N + 1)) or any(e["payload"]["op"] != "r" for e in rows):
            conc.fail("the incremental backfill did not deliver every row once as op r (%d rows)" % len(ids))
        if d.poll() is not None:
            conc.fail("the daemon died during the backfill")

        r = backfill(os.path.join(tmp, "bf2.jsonl"), "-X", "backfill.mode=initial")
        if r.returncode != 75 or "pid %d" % d.pid not in r.stderr:
            conc.fail("backfill.mode=initial beside the daemon: exit %d (want 75)\n%s"
                      % (r.returncode, r.stderr[-2000:]))

        d.terminate()
        d.wait(30)
        d = None
        if os.path.exists(rec):
            conc.fail("the daemon's record stays after it stopped")
        if os.path.exists(ckpt):
            os.unlink(ckpt)  # the daemon's (it checkpoints the watermark transactions)
        # a stale record naming a live autoglm-cdc process (a reused pid)
        oerr = open(os.path.join(tmp, "other.err"), "wb")
        d = subprocess.Popen([conc.CDC, "run", "--source", "mysql", "--mysql-dsn", conc.dsn(), "--server-id",
                              "424602", "--include", DB + ".nothing", "--sink", "file", "-o",
                              os.path.join(tmp, "other.jsonl"), "--state-dir", state, "--pipeline", "other"],
                             stderr=oerr)
        orec = os.path.join(state, "other.daemon")
        for _ in range(100):
            if os.path.exists(orec):
                break
            time.sleep(0.1)
        else:
            conc.fail("the other daemon did not record itself in %s" % orec)
        with open(rec, "w") as f:
            f.write("pid=%d\n" % d.pid)
        r = backfill(os.path.join(tmp, "bf3.jsonl"))
        if r.returncode != 0 or "consistent first load" not in r.stderr or not os.path.exists(ckpt):
            conc.fail("without a daemon (a stale record naming live pid %d) the backfill is a first load "
                      "again: exit %d\n%s" % (d.pid, r.returncode, r.stderr[-2000:]))
        if "runs (pid" in r.stderr:
            conc.fail("the backfill took a stale record with a reused pid for the daemon:\n" + r.stderr[-2000:])
        st = subprocess.run([conc.CDC, "status", "--state-dir", state, "--json"], capture_output=True, text=True,
                            timeout=60)
        rows = {x["pipeline"]: x for x in json.loads(st.stdout or "[]")}
        if rows.get("race", {}).get("status") != "offline" or "stale" not in (rows["race"].get("error") or ""):
            conc.fail("status does not call the record with a reused pid stale: %s" % st.stdout[-1500:])
        if d.poll() is not None:
            conc.fail("the other daemon died")
        print("# beside the running daemon: incremental, %d rows, no checkpoint; mode=initial refused (75); "
              "alone (stale record with a reused pid): first load" % len(ids))
        print("PASS")
    finally:
        if d is not None and d.poll() is None:
            d.terminate()
            d.wait(30)
        conc.sql("DROP DATABASE IF EXISTS %s;" % DB)
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)


main()
