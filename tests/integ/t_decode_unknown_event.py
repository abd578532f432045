#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""An unknown binlog event type stops decoding with exit 65 (issue 12, item 8).

On the real MariaDB: a binlog file with a few transactions is recorded
(FLUSH BINARY LOGS around them) and decoded as it is (exit 0, every row).
Then every event outside a row statement (GTID_LIST, BINLOG_CHECKPOINT, the
GTID and XID events of the transactions) is retyped in turn to a number no
server writes, its CRC32 recomputed: `decode` must exit 65 naming the type
and the event's offset, and print only envelopes of earlier transactions.
With the IGNORABLE flag (0x80) set on a retyped GTID_LIST or
BINLOG_CHECKPOINT, the server says a reader may skip it: the decode then
passes with every row, as documented.
"""
import os
import shutil
import struct
import subprocess
import tempfile
import zlib

import dblib
from dblib import BIN, E, fail, log, my

dblib.need("MYSQL_PORT", "MYSQL_DATADIR", what="MariaDB")
DB = "cdc_unk_%d" % os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-unk.")
dblib.on_fail(lambda: (my("DROP DATABASE IF EXISTS %s" % DB, check=False), shutil.rmtree(TMP, True)))

my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; CREATE TABLE %s.t (id INT PRIMARY KEY, v TEXT)" % (DB, DB, DB))
my("FLUSH BINARY LOGS")
binlog = my("SHOW BINLOG STATUS").split("\t")[0]
my("".join("INSERT INTO %s.t VALUES (%d, 'v%d'), (%d, 'w');\n" % (DB, i, i, i + 100) for i in range(1, 6)))
my("BEGIN; UPDATE %s.t SET v = 'x' WHERE id < 3; DELETE FROM %s.t WHERE id = 5; COMMIT;" % (DB, DB))
my("FLUSH BINARY LOGS")
src = os.path.join(E["MYSQL_DATADIR"], binlog)
data = bytearray(open(src, "rb").read())
my("DROP DATABASE %s" % DB)
if data[:4] != b"\xfebin":
    fail("%s is not a binlog" % src)

# the events: offset, type, size
events = []
off = 4
while off + 19 <= len(data):
    typ, size = data[off + 4], struct.unpack_from("<I", data, off + 9)[0]
    events.append((off, typ, size))
    off += size


def decode(blob, name):
    os.makedirs(os.path.join(TMP, name))
    path = os.path.join(TMP, name, binlog)  # the file name is in the envelopes
    open(path, "wb").write(blob)
    r = subprocess.run([BIN, "decode", "--include", DB + ".*", path], capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout.splitlines(), r.stderr


rc, base, err = decode(bytes(data), "orig")
want = 10 + 2 + 1
if rc != 0 or len(base) != want:
    fail("the recorded binlog decodes with exit %d and %d envelopes (want 0 and %d): %s" % (rc, len(base), want, err))


def retyped(off, size, typ=None, flags=None):
    b = bytearray(data)
    if typ is not None:
        b[off + 4] = typ
    if flags is not None:
        struct.pack_into("<H", b, off + 17, flags)
    struct.pack_into("<I", b, off + size - 4, zlib.crc32(bytes(b[off:off + size - 4])) & 0xFFFFFFFF)
    return bytes(b)


# outside a row statement: GTID_LIST 163, BINLOG_CHECKPOINT 161, GTID 162, XID 16
targets = [e for e in events if e[1] in (16, 161, 162, 163)]
if len(targets) < 8:
    fail("only %d events to retype in %s" % (len(targets), [e[1] for e in events]))
for n, (off, typ, size) in enumerate(targets):
    unknown = 200 + n % 50
    rc, out, err = decode(retyped(off, size, typ=unknown), "bad%d" % n)
    if rc != 65:
        fail("event %d at offset %d retyped to %d: exit %d, expected 65\n%s" % (typ, off, unknown, rc, err))
    if "unknown event type %d" % unknown not in err or "offset %d" % off not in err:
        fail("the error does not name type %d and offset %d: %s" % (unknown, off, err))
    if len(out) > len(base) or out != base[:len(out)]:
        fail("retyped event at %d: envelopes differ from the original's prefix" % off)
    if typ not in (161, 163):
        continue  # a GTID or XID skipped would cut a transaction apart
    flags = struct.unpack_from("<H", data, off + 17)[0]
    rc, out, err = decode(retyped(off, size, typ=unknown, flags=flags | 0x80), "ign%d" % n)
    if rc != 0 or out != base:
        fail("IGNORABLE event type %d at %d: exit %d, %d envelopes (want 0, %d): %s" % (
            unknown, off, rc, len(out), len(base), err))
log("%d events retyped: each stopped decode with exit 65; with IGNORABLE each was skipped" % len(targets))
shutil.rmtree(TMP, True)
print("PASS: unknown binlog event types exit 65 naming type and offset")
