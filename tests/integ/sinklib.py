# SPDX-License-Identifier: Apache-2.0
"""What the message-sink tests share (t_rabbitmq_*, t_mqtt_*, t_http_*):
a MariaDB workload whose expected result is known, the autoglm-cdc
command line, and the checks on what a broker or receiver got.

    w = sinklib.Workload("rmq_%d" % os.getpid())   # creates db.kt
    w.run(changes=2000)                             # inserts/updates/deletes
    sinklib.check(envelopes, w)                     # fail() on any mismatch

The checks, on a list of parsed envelopes in arrival order:
  * every row change of the workload arrived (unique by file:pos:row), and
    nothing else did;
  * per key, the first arrivals follow source order (v counts 1, 2, ...);
  * the state rebuilt from the envelopes equals SELECT on MariaDB, value
    for value;
  * duplicates are returned so the caller can bound them.
"""
import json
import os
import random
import signal
import subprocess
import time

import dblib
from dblib import BIN, BUILD, E, fail, my


_SEED = []


def test_seed():
    """The test's seed (CDC_TEST_SEED, dblib.test_seed), taken once."""
    if not _SEED:
        _SEED.append(dblib.test_seed())
    return _SEED[0]


class Workload:
    def __init__(self, db, nkeys=200, seed=11):
        """seed: this workload's offset from the test seed."""
        self.db, self.nkeys = db, nkeys
        self.rnd = random.Random(test_seed() * 1000 + seed)
        self.counter = {}
        self.live = set()
        self.changes = 0
        my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; CREATE TABLE %s.kt ("
           "id INT PRIMARY KEY, v BIGINT NOT NULL, s VARCHAR(64) CHARACTER SET utf8mb4, "
           "d DECIMAL(12,2) NULL)" % (db, db, db))
        f, p = my("SHOW BINLOG STATUS").split("\t")[:2]
        self.start = "%s:%s" % (f, p.strip())

    def stmt(self):
        """One statement changing exactly one row."""
        k = self.rnd.randint(1, self.nkeys)
        if k in self.live and self.rnd.random() < 0.05:
            self.live.discard(k)
            self.counter[k] = 0
            return "DELETE FROM kt WHERE id=%d" % k
        c = self.counter.get(k, 0) + 1
        self.counter[k] = c
        s = self.rnd.choice(["plain", "quote ' and \" and \\\\", "ünïcödé ✓", "<tag>&amp;", ""])
        d = "NULL" if self.rnd.random() < 0.2 else "%d.%02d" % (self.rnd.randint(-999, 999),
                                                                 self.rnd.randint(0, 99))
        if k in self.live:
            return "UPDATE kt SET v=%d, s='%s #%d', d=%s WHERE id=%d" % (
                c, s.replace("'", "''"), c, d, k)
        self.live.add(k)
        return "INSERT INTO kt VALUES (%d, %d, '%s #%d', %s)" % (k, c, s.replace("'", "''"), c, d)

    def batch(self, nstmts):
        """nstmts row changes in transactions of 1..10 statements."""
        out = []
        while nstmts > 0:
            n = min(self.rnd.randint(1, 10), nstmts)
            out.append("BEGIN; %s; COMMIT;" % "; ".join(self.stmt() for _ in range(n)))
            nstmts -= n
            self.changes += n
        my("\n".join(out), db=self.db)

    def run(self, changes):
        self.batch(changes)

    def select(self):
        rows = {}
        for line in my("SELECT id, v, s, d FROM kt ORDER BY id", db=self.db).splitlines():
            i, v, s, d = line.split("\t")
            rows[int(i)] = (int(v), s, None if d == "NULL" else d)
        return rows


def cdc_cmd(w, pipeline, state, sink_args):
    dsn = "mysql://%s:%s@127.0.0.1:%s" % (E["MYSQL_USER"], E["MYSQL_PASSWORD"], E["MYSQL_PORT"])
    return [BIN, "--source", "mysql", "--mysql-dsn", dsn, "--from", w.start,
            "--include", w.db + ".kt", "--pipeline", pipeline, "--state-dir", state,
            "-X", "checkpoint.interval_ms=200"] + sink_args


def change_id(env):
    s = env["source"]
    return "%s:%d:%d" % (s["file"], s["pos"], s["row"])


def check(envs, w, what):
    """Check envelopes (arrival order) against the workload; returns the
    number of duplicate arrivals."""
    seen = {}
    dups = 0
    state = {}
    lastv = {}
    for e in envs:
        cid = change_id(e)
        if cid in seen:
            dups += 1
            if seen[cid] != e:
                fail("%s: change %s arrived twice with different content" % (what, cid))
            continue
        seen[cid] = e
        p = e["payload"]
        img = p["after"] if p["op"] != "d" else p["before"]
        k = img["id"]
        if p["op"] == "d":
            state.pop(k, None)
            lastv[k] = 0
            continue
        if img["v"] != lastv.get(k, 0) + 1:
            fail("%s: key %d: v=%d arrived after v=%d (order per key broken)"
                 % (what, k, img["v"], lastv.get(k, 0)))
        lastv[k] = img["v"]
        state[k] = (img["v"], img["s"], img["d"])
    if len(seen) != w.changes:
        fail("%s: %d distinct changes arrived, the workload made %d" % (what, len(seen), w.changes))
    want = w.select()
    if state != want:
        diff = [(k, state.get(k), want.get(k)) for k in sorted(set(state) | set(want))
                if state.get(k) != want.get(k)][:5]
        fail("%s: state rebuilt from the sink differs from SELECT: %s" % (what, diff))
    dblib.log("%s: %d changes, %d keys, state equals SELECT, %d duplicate(s)"
              % (what, len(seen), len(want), dups))
    return dups


def parse_lines(text):
    return [json.loads(l) for l in text.splitlines() if l.strip()]


def kill9_loop(cmd, w, ckpt_path, logpath, procs, kills=5, seed=3):
    """Start cmd, write to w for 1-2.5 s, SIGKILL it; kills times.
    Returns the checkpoint offset read after each kill (0: none yet)."""
    rnd = random.Random(test_seed() * 1000 + seed)
    ckpts = []
    with open(logpath, "ab") as lf:
        for _ in range(kills):
            p = subprocess.Popen(cmd, stdout=lf, stderr=lf)
            procs.append(p)
            t_end = time.time() + rnd.uniform(1.0, 2.5)
            while time.time() < t_end:
                w.batch(200)
            if p.poll() is not None:
                fail("autoglm-cdc exited (%d) before kill -9" % p.returncode)
            p.send_signal(signal.SIGKILL)
            p.wait()
            off = 0
            if os.path.exists(ckpt_path):
                off = int([l for l in open(ckpt_path) if l.startswith("offset=")][0]
                          .split("=")[1])
            ckpts.append(off)
    return ckpts


def check_kill9(envs, w, ckpts, what):
    """check(), and every duplicate lies after the checkpoint of some kill
    (it was not confirmed when the process died).  Returns duplicates."""
    dups = check(envs, w, what)
    seen = set()
    for e in envs:
        cid = change_id(e)
        if cid in seen and not any(e["source"]["pos"] > c for c in ckpts):
            fail("%s: duplicate %s at or before every checkpoint %s: it was confirmed"
                 % (what, cid, ckpts))
        seen.add(cid)
    dblib.log("%s: %d kills, nothing lost, %d duplicates, all after a kill's checkpoint %s"
              % (what, len(ckpts), dups, ckpts))
    return dups


def amqp_consume():
    """Path of the tests/integ/amqp_consume helper, built when missing."""
    prog = os.path.join(BUILD, "tests/integ/amqp_consume")
    if not os.access(prog, os.X_OK):
        subprocess.run(["make", "-C", BUILD, "tests/integ/amqp_consume"], capture_output=True)
    if not os.access(prog, os.X_OK):
        dblib.skip("%s missing (make -C %s tests/integ/amqp_consume)" % (prog, BUILD))
    return prog


def wait_log(path, text, timeout=60):
    """Wait until the log file at path contains text; fail() after timeout s."""
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path) and text in open(path, errors="replace").read():
            return
        time.sleep(0.2)
    fail("%r did not appear in %s within %d s" % (text, path, timeout))
