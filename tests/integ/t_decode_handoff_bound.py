#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""decode holds a bounded number of bytes between its reader and its writer.

decode reads the binlog on one thread and writes envelopes on another; the
queue between them is the engine's feed (cdc/flight.h), bounded in
transactions AND bytes.  A binlog of 120 transactions of 100 rows with
8000-byte values (about 100 MB) is recorded on the real MariaDB and decoded
to a pipe that nobody reads: the writer blocks on the full pipe, the reader
fills the queue and must then wait.  Once the process stopped moving (its
memory and peak memory unchanged), its peak RSS (VmHWM) must stay far
below what the rows would need (a queue bounded in rows held 8192 of them,
about 70 MB).  Then the pipe is drained: exit 0 and every row once, in
order, with its value (nothing lost while it waited).
"""
import os
import shutil
import subprocess
import tempfile
import threading
import time

import dblib
from dblib import BIN, E, fail, log, my

dblib.need("MYSQL_PORT", "MYSQL_DATADIR", what="MariaDB")
DB = "cdc_hob_%d" % os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-hob.")
NTX, PER, VLEN = 120, 100, 8000
LIMIT_KB = 40 * 1024
procs = []


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
    my("DROP DATABASE IF EXISTS %s" % DB, check=False)
    shutil.rmtree(TMP, True)


dblib.on_fail(cleanup)

my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; CREATE TABLE %s.t (id INT PRIMARY KEY, v LONGTEXT)"
   % (DB, DB, DB))
my("FLUSH BINARY LOGS")
binlog = my("SHOW BINLOG STATUS").split("\t")[0]
my("".join("INSERT INTO %s.t SELECT seq, REPEAT(CHAR(65 + seq %% 26), %d) FROM seq_%d_to_%d;\n"
           % (DB, VLEN, k * PER + 1, k * PER + PER) for k in range(NTX)), db=DB)
my("FLUSH BINARY LOGS")
path = os.path.join(TMP, binlog)
shutil.copy(os.path.join(E["MYSQL_DATADIR"], binlog), path)
log("binlog %s: %.1f MB" % (binlog, os.path.getsize(path) / 1e6))


def proc_field(pid, fname, key):
    with open("/proc/%d/%s" % (pid, fname)) as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


p = subprocess.Popen([BIN, "decode", "--include", DB + ".*", path], stdout=subprocess.PIPE,
                     stderr=open(os.path.join(TMP, "decode.log"), "w"))
procs.append(p)

# wait until it stopped moving: its memory and peak memory
# unchanged for 1.5 s (the writer blocks on the full pipe, the reader on
# the full queue)
last, still, t0 = None, 0, time.time()
while still < 15:
    if p.poll() is not None:
        fail("decode exited (%d) with its output unread" % p.returncode)
    if time.time() - t0 > 120:
        fail("decode never stopped growing (VmRSS, VmHWM kB: %s)" % (last,))
    now = (proc_field(p.pid, "status", "VmRSS:"), proc_field(p.pid, "status", "VmHWM:"))
    still = still + 1 if now == last else 0
    last = now
    time.sleep(0.1)
hwm = last[1]
log("stalled: VmRSS %d kB, VmHWM %d kB" % last)

out = []
reader = threading.Thread(target=lambda: out.append(p.stdout.read()))
reader.start()
try:
    rc = p.wait(timeout=300)
except subprocess.TimeoutExpired:
    fail("decode did not finish once its output was read")
reader.join()
if rc != 0:
    fail("decode exited %d, want 0" % rc)
if hwm > LIMIT_KB:
    fail("VmHWM %d kB while the writer was blocked: the hand-off queue is not bounded in bytes "
         "(limit %d kB)" % (hwm, LIMIT_KB))

import json  # noqa: E402

ids = []
for line in out[0].splitlines():
    ev = json.loads(line)
    after = ev.get("after") or ev.get("payload", {}).get("after")
    if after is None:
        fail("envelope without an after image: %s" % line[:200])
    i = int(after["id"])
    v = after["v"]
    if v != chr(65 + i % 26) * VLEN:
        fail("row %d: value altered (%r...)" % (i, str(v)[:40]))
    ids.append(i)
if ids != list(range(1, NTX * PER + 1)):
    fail("rows not exactly 1..%d once in order (got %d rows, first bad at %s)"
         % (NTX * PER, len(ids), next((k for k, i in enumerate(ids) if i != k + 1), len(ids))))
log("PASS: %d rows once in order, VmHWM %d kB <= %d kB with the writer blocked" % (len(ids), hwm, LIMIT_KB))
cleanup()
