#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MySQL 8 GTID positioning and failover, against stand-in servers.

No MySQL 8 server runs here, so tests/integ/fake_mysql.py plays one on
loopback: it answers the source's queries from given settings and streams
a real MySQL binlog fixture (mysql-binlog-connector-rust/mysql-bin.000080:
GTIDs 58cf6502-...:53-62, rows in 53-56 and 62) to COM_BINLOG_DUMP_GTID,
skipping the groups the request's set holds.  What this proves is what the
live source sends on the wire and how it follows the answers:

1. resume by GTID: the request is COM_BINLOG_DUMP_GTID with flags 0, an
   empty name, position 4, our server_id (the same as in the
   COM_REGISTER_SLAVE before it) and exactly the checkpoint's set, bytes
   equal to an encoding made here; only the transactions after the set
   arrive, and the delivered set ends as the server's executed set;
2. failover: the primary dies after one transaction; the second server
   (gtid_mode=ON, writable, holding every delivered GTID plus more) is
   asked for the set delivered so far and the rest arrives exactly once,
   in order;
   a restart with the dead primary first starts on the second server;
3. split brain: the second server lacks a delivered GTID -> exit 3 naming
   it; a second server with gtid_mode=OFF is not followed (log says why)
   and gets no dump request;
4. tagged GTIDs (a MySQL 9.6 fixture): the set goes out in the tagged
   format (bytes checked here), the tagged transaction is delivered and the
   set grows by its tagged GTID;
5. at start: a server that lacks GTIDs of the checkpoint, or purged GTIDs
   not yet delivered -> exit 3 naming them.
How a real MySQL server answers is not covered (docs/OPERATIONS.md).
"""
import os
import shutil
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dblib  # noqa: E402
from dblib import BUILD, ROOT, fail, log  # noqa: E402
import fake_mysql  # noqa: E402

FX = os.path.join(os.environ.get("CDC_FIXTURES", ROOT + "/../shared/fixtures"), "binlog",
                  "mysql-binlog-connector-rust", "mysql-bin.000080")
DRIVE = os.path.join(BUILD, "tests/integ/mysql_drive")
U = "58cf6502-63db-11ed-8079-0242ac110002"
U2 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
TMP = os.environ.get("T") or "/tmp/t_mysql8_gtid_fake.%d" % os.getpid()
procs = []


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


dblib.on_fail(cleanup, logdir=TMP)
dblib.need(what="the mysql_drive helper")
if not os.access(DRIVE, os.X_OK):
    dblib.skip("%s not built (make -C %s integ-helpers)" % (DRIVE, BUILD))
if not os.path.exists(FX):
    if os.environ.get("CDC_FIXTURES"):
        fail("fixture %s missing" % FX)
    dblib.skip("fixture %s missing (set CDC_FIXTURES)" % FX)
os.makedirs(TMP, exist_ok=True)


def drive(name, ports, resume, extra=(), idle_ms=None):
    dsn = "mysql://cdc:pw@" + ",".join("127.0.0.1:%d" % p for p in ports) + "/?ssl-mode=disabled"
    args = [DRIVE, "-X", "mysql.dsn=" + dsn, "-X", "mysql.heartbeat_s=60", "-X", "pipeline.name=gtid8fake",
            "--resume", resume, "--pos-file", os.path.join(TMP, name + ".pos")]
    if idle_ms:
        args += ["--idle-exit", str(idle_ms)]
    args += list(extra)
    out = open(os.path.join(TMP, name + ".out"), "w")
    err = open(os.path.join(TMP, name + ".log"), "w")
    p = subprocess.Popen(args, stdout=out, stderr=err)
    procs.append(p)
    return p


def read(name, ext):
    return open(os.path.join(TMP, name + ext)).read()


def gtids_of_rows(name):
    """The GTID of every row change, in the order delivered."""
    got = []
    for line in read(name, ".out").splitlines():
        g = [w for w in line.split() if w.startswith("gtid=")]
        got.append(g[0][len("gtid="):] if g else "?")
    return got


def wait_exit(p, name, timeout=60):
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        fail("%s: mysql_drive still running after %d s" % (name, timeout))


def encode_set(srcs):
    """Untagged binary GTID set, written here independently of the tool."""
    b = struct.pack("<Q", len(srcs))
    for uuid, ivs in sorted(srcs):
        b += bytes.fromhex(uuid.replace("-", "")) + struct.pack("<Q", len(ivs))
        for a, z in ivs:
            b += struct.pack("<QQ", a, z + 1)
    return b


# rows per GTID in the fixture: 53 and 54 delete two rows each (a table
# without key, DELETE_ROWS of 45 bytes), 55, 56 and 62 insert one
ROWS = {53: 2, 54: 2, 55: 1, 56: 1, 62: 1}


def want_rows(after):
    return ["%s:%d" % (U, g) for g in sorted(ROWS) if g > after for _ in range(ROWS[g])]


# ---- 1. resume by GTID set ---------------------------------------------
srv = fake_mysql.FakeMySQL(FX, executed="%s:1-62" % U, purged="%s:1-40" % U)
p = drive("resume", [srv.port], "mysql-bin.000079:4@%s:1-54" % U, idle_ms=3000)
rc = wait_exit(p, "resume")
if rc != 0:
    fail("resume: mysql_drive exited %d" % rc)
if srv.errors:
    fail("resume: the fake server saw unexpected requests: %s" % srv.errors)
if len(srv.dumps) != 1 or len(srv.registers) != 1:
    fail("resume: %d dump requests and %d registrations, expected 1 each" % (len(srv.dumps), len(srv.registers)))
d = srv.dumps[0]
sid = d["server_id"]
want_raw = b"\x1e" + struct.pack("<HII", 0, sid, 0) + struct.pack("<Q", 4)
data = encode_set([(U, [(1, 54)])])
want_raw += struct.pack("<I", len(data)) + data
if d["raw"] != want_raw:
    fail("resume: COM_BINLOG_DUMP_GTID is %s, expected %s" % (d["raw"].hex(), want_raw.hex()))
if d["set"] != "%s:1-54" % U:
    fail("resume: the set requested is %r" % d["set"])
reg = srv.registers[0]
(rsid,) = struct.unpack_from("<I", reg, 0)
host = reg[5:5 + reg[4]].decode()
if rsid != sid or host != "autoglm-cdc:gtid8fake":
    fail("resume: registered as server_id %d host %r, dumped as %d" % (rsid, host, sid))
got = gtids_of_rows("resume")
if got != want_rows(54):
    fail("resume: rows of GTIDs %s, expected %s" % (got, want_rows(54)))
pos = read("resume", ".pos").split()
if pos[-1] != "%s:1-62" % U:
    fail("resume: delivered set at the end is %r, expected %s:1-62" % (pos[-1], U))
if "binlog dump requested at GTID set '%s:1-54'" % U not in read("resume", ".log"):
    fail("resume: the log does not name the GTID set")
log("resume: COM_BINLOG_DUMP_GTID byte-exact (server_id %d), rows of 55, 56, 62 once, set ends %s" % (sid, pos[-1]))
srv.die()


# ---- 2. failover to a server holding every delivered GTID ---------------
def failover(name, second, expect_rc, resume_set="%s:1-52" % U):
    a = fake_mysql.FakeMySQL(FX, executed="%s:1-62" % U, die_after=1)
    b = second
    p = drive(name, [a.port, b.port], "mysql-bin.000079:4@" + resume_set,
              idle_ms=4000 if expect_rc == 0 else None)
    return a, b, p


b = fake_mysql.FakeMySQL(FX, executed="%s:1-62,%s:1-7" % (U, U2))
a, b, p = failover("failover", b, 0)
rc = wait_exit(p, "failover", 90)
if rc != 0:
    fail("failover: mysql_drive exited %d" % rc)
if len(a.dumps) != 1 or a.dumps[0]["set"] != "%s:1-52" % U:
    fail("failover: first server's dump requests %s" % [x["set"] for x in a.dumps])
if len(b.dumps) != 1 or b.dumps[0]["set"] != "%s:1-53" % U:
    fail("failover: second server asked for %s, expected exactly the delivered set %s:1-53"
         % ([x["set"] for x in b.dumps], U))
got = gtids_of_rows("failover")
if got != want_rows(52):
    fail("failover: rows of GTIDs %s, expected each once in order %s" % (got, want_rows(52)))
lg = read("failover", ".log")
if "failing over from 127.0.0.1:%d to 127.0.0.1:%d" % (a.port, b.port) not in lg:
    fail("failover: no 'failing over' line naming both servers")
if b.errors or a.errors:
    fail("failover: unexpected requests: %s %s" % (a.errors, b.errors))
log("failover: second server asked for %s, rows of 53..62 exactly once in order" % b.dumps[0]["set"])
b.die()

# a restart with the dead primary still first in the list starts on the
# server that holds the checkpoint's set, by GTID (its file:pos is the old
# primary's)
b = fake_mysql.FakeMySQL(FX, executed="%s:1-62" % U)
p = drive("restart", [a.port, b.port], "mysql-bin.000079:4@%s:1-55" % U, idle_ms=3000)
rc = wait_exit(p, "restart", 90)
if rc != 0 or [x["set"] for x in b.dumps] != ["%s:1-55" % U] or gtids_of_rows("restart") != want_rows(55):
    fail("restart: exit %d, dumps %s, rows %s" % (rc, [x["set"] for x in b.dumps], gtids_of_rows("restart")))
log("restart: started on the second server by GTID set, rows of 56 and 62 once")
b.die()

# ---- 3. split brain; gtid_mode=OFF ----------------------------------------
b = fake_mysql.FakeMySQL(FX, executed="%s:1-52:54-62" % U)
a, b, p = failover("splitbrain", b, 3)
rc = wait_exit(p, "splitbrain", 90)
lg = read("splitbrain", ".log")
if rc != 3:
    fail("splitbrain: mysql_drive exited %d, expected 3" % rc)
if "lacks GTIDs already delivered: %s:53" % U not in lg:
    fail("splitbrain: the message does not name the missing GTID %s:53" % U)
if b.dumps:
    fail("splitbrain: the refused server got a dump request")
log("splitbrain: exit 3 naming %s:53" % U)
b.die()

b = fake_mysql.FakeMySQL(FX, executed="%s:1-62" % U, gtid_mode="OFF")
a, b, p = failover("gtidoff", b, 0)
end = time.time() + 60
while "gtid_mode=OFF" not in read("gtidoff", ".log"):
    if p.poll() is not None or time.time() > end:
        fail("gtidoff: no 'not taken ... gtid_mode=OFF' line (exit %s)" % p.poll())
    time.sleep(0.2)
if p.poll() is not None:
    fail("gtidoff: mysql_drive stopped (exit %d) instead of waiting for a usable server" % p.returncode)
p.terminate()
rc = wait_exit(p, "gtidoff")
if rc != 0 or b.dumps:
    fail("gtidoff: exit %d, %d dump requests to the gtid_mode=OFF server" % (rc, len(b.dumps)))
log("gtidoff: the gtid_mode=OFF server was not followed")
a.die()
b.die()

# ---- 4. tagged GTIDs (MySQL 8.3+; fixture from MySQL 9.6) ----------------
TX = os.path.join(os.path.dirname(os.path.dirname(FX)), "rust_mysql_common",
                  "binlog_transaction_with_GTID_TAG.000001")
TU = "55778904-0299-11f1-b1b8-4ef0c4956feb"
srv = fake_mysql.FakeMySQL(TX, executed="%s:1-13:mytag:1-3" % TU, file_name="binlog.000004")
p = drive("tagged", [srv.port], "binlog.000003:4@%s:1-13:mytag:1-2" % TU, idle_ms=3000)
rc = wait_exit(p, "tagged")
if rc != 0 or len(srv.dumps) != 1:
    fail("tagged: exit %d, %d dump requests" % (rc, len(srv.dumps)))
raw = srv.dumps[0]["raw"]
data = raw[1 + 2 + 4 + 4 + 8 + 4:]
# tagged format: 1 << 56 | 2 sources << 8 | 1, the untagged source first
# with tag length byte 0, then "mytag" (length byte 5 << 1)
want = struct.pack("<Q", 1 << 56 | 2 << 8 | 1)
want += bytes.fromhex(TU.replace("-", "")) + b"\x00" + struct.pack("<QQQ", 1, 1, 14)
want += bytes.fromhex(TU.replace("-", "")) + bytes([5 << 1]) + b"mytag" + struct.pack("<QQQ", 1, 1, 3)
if data != want:
    fail("tagged: GTID set sent as %s, expected %s" % (data.hex(), want.hex()))
if gtids_of_rows("tagged") != ["%s:mytag:3" % TU]:
    fail("tagged: rows of %s" % gtids_of_rows("tagged"))
pos = read("tagged", ".pos").split()
if pos[-1] != "%s:1-13:mytag:1-3" % TU:
    fail("tagged: delivered set %r" % pos[-1])
log("tagged: set sent in the tagged format, %s:mytag:3 delivered, set ends %s" % (TU, pos[-1]))
srv.die()

# ---- 5. at start --------------------------------------------------------
srv = fake_mysql.FakeMySQL(FX, executed="%s:1-50" % U)
p = drive("lacks", [srv.port], "mysql-bin.000079:4@%s:1-54" % U)
rc = wait_exit(p, "lacks")
if rc != 3 or "lacks GTIDs already delivered: %s:51-54" % U not in read("lacks", ".log"):
    fail("lacks: exit %d, expected 3 naming %s:51-54" % (rc, U))
srv.die()
srv = fake_mysql.FakeMySQL(FX, executed="%s:1-62" % U, purged="%s:1-60" % U)
p = drive("purged", [srv.port], "mysql-bin.000079:4@%s:1-54" % U)
rc = wait_exit(p, "purged")
if rc != 3 or "purged the binlogs of GTIDs not delivered yet: %s:55-60" % U not in read("purged", ".log"):
    fail("purged: exit %d, expected 3 naming %s:55-60" % (rc, U))
if srv.dumps:
    fail("purged: a dump was requested")
srv.die()
log("start checks: lacking GTIDs and purged GTIDs -> exit 3 naming them")
cleanup()
shutil.rmtree(TMP, ignore_errors=True)
