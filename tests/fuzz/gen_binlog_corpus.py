#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generate the seed corpus of tests/fuzz/fuzz_binlog.c.

Every seed is synthesised here from the binlog format description (no
bytes are copied from fixtures).  Input format: see fuzz_binlog.c (byte 0
= mode; EVENT mode = [u16 LE length][event] frames after a built-in FDE,
event_size and CRC fixed up by the target; FILE mode = a whole binlog
after the magic).

    python3 tests/fuzz/gen_binlog_corpus.py tests/fuzz/corpus/binlog
"""
import os
import struct
import sys
import zlib

MARIA, MYSQL = 0, 2
FIXCRC, NOCRC, FILE = 4, 8, 1


def lenenc(n):
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n)
    if n < 1 << 24:
        return b"\xfd" + struct.pack("<I", n)[:3]
    return b"\xfe" + struct.pack("<Q", n)


def ev(etype, body, flags=0, server=1, ts=1700000000, crc=True):
    size = 19 + len(body) + (4 if crc else 0)
    h = struct.pack("<IBIIIH", ts, etype, server, size, 0, flags)
    e = h + body
    if crc:
        e += struct.pack("<I", zlib.crc32(e) & 0xFFFFFFFF)
    return e


def frames(mode, events):
    out = bytes([mode])
    for e in events:
        out += struct.pack("<H", len(e)) + e
    return out


def query(text, db=b"db", sv=b""):
    return ev(2, struct.pack("<IIBHH", 1, 0, len(db), 0, len(sv)) + sv + db
              + b"\0" + text)


def maria_gtid(seq, domain=0, fl=0x0C, extra=b""):
    return ev(162, struct.pack("<QIB", seq, domain, fl) + extra
              + b"\0" * max(0, 6 - len(extra)))


def mysql_gtid(gno, uuid=bytes(range(16)), ts_us=1700000000123456,
               etype=33):
    body = b"\0" + uuid + struct.pack("<q", gno) + b"\x02"
    body += struct.pack("<qq", 0, 1)
    body += struct.pack("<Q", ts_us)[:7] + lenenc(300)
    body += struct.pack("<I", 80032)
    return ev(etype, body)


def xid(n):
    return ev(16, struct.pack("<Q", n))


# table t1: INT, VARCHAR(20), DECIMAL(10,2), DATETIME2(3), ENUM, BLOB, JSON
TYPES = bytes([3, 15, 246, 18, 254, 252, 245])
META = (struct.pack("<H", 20) + bytes([10, 2]) + bytes([3]) +
        bytes([247, 1]) + bytes([2]) + bytes([4]))


def tlv(t, v):
    return bytes([t]) + lenenc(len(v)) + v


def table_map(tid=42, optional=True, types=TYPES, meta=META):
    n = len(types)
    body = struct.pack("<Q", tid)[:6] + b"\1\0"
    body += bytes([2]) + b"db\0" + bytes([2]) + b"t1\0"
    body += lenenc(n) + types + lenenc(len(meta)) + meta
    body += bytes([0xFE]) + b"\0" * ((n + 7) // 8 - 1)
    if optional:
        names = b"".join(lenenc(len(s)) + s for s in
                         [b"id", b"name", b"amount", b"at", b"kind", b"data",
                          b"doc"])
        body += tlv(1, b"\x80")                      # id unsigned
        body += tlv(2, lenenc(45) + lenenc(1) + lenenc(63))
        body += tlv(4, names)
        body += tlv(6, lenenc(2) + lenenc(1) + b"a" + lenenc(1) + b"b")
        body += tlv(8, lenenc(0))
        body += tlv(9, lenenc(0) + lenenc(0))
        body += tlv(12, b"\xff")
        body += tlv(99, b"unknown")
    return ev(19, body)


def datetime2(y, mo, d, h, mi, sec):
    ymd = ((y * 13 + mo) << 5) | d
    v = 0x8000000000 + ((ymd << 17) | (h << 12) | (mi << 6) | sec)
    return v.to_bytes(5, "big")


def row_values(i):
    vals = struct.pack("<i", i)
    name = b"name%d" % i
    vals += bytes([len(name)]) + name
    vals += bytes([0x80, 0, 0, i & 0xFF, 0x01])  # decimal(10,2) = i.01
    vals += datetime2(2023, 11, 14, 12, i % 60, 7) + b"\0\0"  # fsp 3
    vals += b"\x01"                                     # enum 'a'
    vals += b"\x03\0" + b"xyz"                          # blob
    jd = b"\x04\x01"                                    # JSON literal true
    vals += struct.pack("<I", len(jd)) + jd
    return vals


def image(i, nulls=0):
    return bytes([nulls]) + row_values(i)


def rows(etype, tid=42, rowdata=b"", v2=False, update=False, width=7,
         flags=1, present=0x7F):
    body = struct.pack("<Q", tid)[:6] + struct.pack("<H", flags)
    if v2:
        body += struct.pack("<H", 2)
    body += lenenc(width) + bytes([present])
    if update:
        body += bytes([present])
    return ev(etype, body + rowdata)


def maria_compress(data):
    c = zlib.compress(data)
    return bytes([0x80 | 4]) + struct.pack(">I", len(data)) + c


def seeds():
    s = {}
    # MariaDB transaction: GTID, ANNOTATE, TABLE_MAP, write/update/delete
    w = rows(23, rowdata=image(1) + image(2))
    u = rows(24, update=True, rowdata=image(1) + image(3))
    d = rows(25, rowdata=image(3))
    s["maria_txn"] = frames(MARIA | FIXCRC, [
        maria_gtid(10), ev(160, b"INSERT INTO t1 VALUES (...)"),
        table_map(), w, u, d, xid(7)])
    # NULLs and MINIMAL images (partial bitmaps)
    s["maria_minimal"] = frames(MARIA | FIXCRC, [
        maria_gtid(11), table_map(),
        rows(24, update=True, present=0x01,
             rowdata=b"\0" + struct.pack("<i", 5) + b"\0" +
             struct.pack("<i", 6)),
        rows(23, rowdata=bytes([0x7E]) + struct.pack("<i", 9)), xid(8)])
    # compressed rows and query
    s["maria_compressed"] = frames(MARIA | FIXCRC, [
        maria_gtid(12), table_map(),
        rows(166, rowdata=maria_compress(image(4) + image(5))), xid(9),
        maria_gtid(13, fl=0x29),
        ev(165, struct.pack("<IIBHH", 1, 0, 2, 0, 0) + b"db\0" +
           maria_compress(b"CREATE TABLE t2 (a INT)"))])
    # DDL, MyISAM commit, rollback, savepoint
    s["maria_ddl_myisam"] = frames(MARIA | FIXCRC, [
        maria_gtid(14, fl=0x29), query(b"ALTER TABLE t1 ADD c INT"),
        maria_gtid(15, fl=0x00), table_map(), rows(23, rowdata=image(6)),
        query(b"COMMIT"),
        maria_gtid(16), table_map(), rows(23, rowdata=image(7)),
        query(b"SAVEPOINT s1"), query(b"ROLLBACK")])
    # XA prepare / commit / rollback
    xidb = struct.pack("<IBB", 1, 4, 0) + b"xa-1"
    s["maria_xa"] = frames(MARIA | FIXCRC, [
        maria_gtid(17, fl=0x4C, extra=xidb), table_map(),
        rows(23, rowdata=image(8)),
        query(b"XA END X'78612d31',X'',1"),
        ev(38, b"\0" + struct.pack("<III", 1, 4, 0) + b"xa-1"),
        maria_gtid(18, fl=0x8D, extra=xidb),
        query(b"XA COMMIT X'78612d31',X'',1"),
        query(b"XA ROLLBACK 'nope'")])
    # GTID_LIST, BINLOG_CHECKPOINT, ROTATE (artificial), heartbeat, STOP
    gl = struct.pack("<I", 2) + struct.pack("<IIQ", 0, 1, 5) + \
        struct.pack("<IIQ", 3, 2, 9)
    s["maria_control"] = frames(MARIA | FIXCRC, [
        ev(163, gl), ev(161, struct.pack("<I", 6) + b"f.0001"),
        ev(4, struct.pack("<Q", 4) + b"mariadb-bin.000002", flags=0x20),
        ev(27, b"mariadb-bin.000002"), ev(3, b""),
        ev(100, b"\0" * 40), ev(100, b"\0" * 8, flags=0x80)])
    # MySQL: GTID, BEGIN, TABLE_MAP, v2 rows, XID
    s["mysql_txn"] = frames(MYSQL | FIXCRC, [
        mysql_gtid(5), query(b"BEGIN"), table_map(),
        rows(30, v2=True, rowdata=image(1)),
        rows(31, v2=True, update=True, rowdata=image(1) + image(2)),
        rows(32, v2=True, rowdata=image(2)), xid(11),
        mysql_gtid(6), query(b"CREATE TABLE t9 (a INT)")])
    # PREVIOUS_GTIDS untagged and tagged, GTID_TAGGED
    u = bytes(range(16))
    prev = struct.pack("<Q", 1) + u + struct.pack("<Qqq", 1, 1, 5)
    tagged = struct.pack("<Q", (1 << 56) | (2 << 8) | 1)
    tagged += u + b"\0" + struct.pack("<Qqq", 1, 1, 14)
    tagged += u + b"\x0amytag" + struct.pack("<Qqq", 1, 1, 3)

    def vl(n):
        return bytes([n << 1]) if n < 128 else \
            bytes([((n << 2) | 1) & 0xFF, n >> 6])
    fields = b"\0\0" + b"\x02" + b"".join(vl(x) for x in u) + b"\x04\x0c"
    fields += b"\x06\x0a" + b"mytag" + b"\x08\x00\x0a\x04"
    msg = b"\x02" + vl(len(fields) + 3) + b"\x00" + fields
    s["mysql_gtids"] = frames(MYSQL | FIXCRC, [
        ev(35, prev), ev(35, tagged), ev(42, msg), query(b"BEGIN"),
        table_map(), rows(30, v2=True, rowdata=image(1)), xid(12),
        ev(34, b"\0" + b"\0" * 16 + struct.pack("<q", 0) + b"\x02" +
           struct.pack("<qq", 1, 2))])
    # TRANSACTION_PAYLOAD, compression NONE, inner events without CRC
    inner = ev(2, struct.pack("<IIBHH", 1, 0, 2, 0, 0) + b"db\0BEGIN",
               crc=False)
    tm = table_map()
    tm_nocrc = tm[:9] + struct.pack("<I", len(tm) - 4) + tm[13:-4]
    rw = rows(30, v2=True, rowdata=image(1) + image(2))
    rw_nocrc = rw[:9] + struct.pack("<I", len(rw) - 4) + rw[13:-4]
    inner += tm_nocrc + rw_nocrc + ev(16, struct.pack("<Q", 77), crc=False)
    hdr = (lenenc(2) + lenenc(3) + lenenc(255) + lenenc(3) +
           lenenc(len(lenenc(len(inner)))) + lenenc(len(inner)) +
           lenenc(1) + lenenc(len(lenenc(len(inner)))) +
           lenenc(len(inner)) + lenenc(0))
    s["mysql_payload"] = frames(MYSQL | FIXCRC, [
        mysql_gtid(7), ev(40, hdr + inner)])
    # checksum NONE seed, verification off
    s["maria_nocrc"] = frames(MARIA | NOCRC, [
        ev(162, struct.pack("<QIB", 20, 0, 0x0C) + b"\0" * 6, crc=False),
        ev(19, table_map()[19:-4], crc=False),
        ev(23, rows(23, rowdata=image(1))[19:-4], crc=False),
        ev(16, struct.pack("<Q", 1), crc=False)])
    # regression: a rows event whose images have no column present must
    # not loop forever on the bytes after it
    s["regress_empty_row"] = frames(MARIA | FIXCRC, [
        maria_gtid(21), table_map(),
        rows(23, present=0x00, rowdata=b"\0" * 64), xid(4)])
    # regression: a GTID_TAGGED whose payload size is smaller than its
    # own header must not read past the event
    s["regress_tagged_size"] = frames(MYSQL | FIXCRC, [
        ev(42, b"\x02\x04\x00" + b"\xff" * 24)])
    # FILE mode: FDE (MariaDB, CRC32) + a transaction + ROTATE
    phl = bytes.fromhex(
        "380d000800120004040404120000e400041a08000000080808020000000a0a0a"
        "0000000000000a0a0a" + "00" * 119 + "041304000d0808080a0a0a")
    assert len(phl) == 171
    fde_body = struct.pack("<H", 4) + b"10.11.19-MariaDB-log".ljust(50, b"\0")
    fde_body += struct.pack("<IB", 1700000000, 19) + phl + b"\x01"
    f = ev(15, fde_body)
    evs = [f, maria_gtid(30), table_map(), rows(23, rowdata=image(1)),
           xid(3), ev(4, struct.pack("<Q", 4) + b"mariadb-bin.000009")]
    s["file_maria"] = bytes([FILE]) + b"".join(evs)
    # regression: an old (pre-checksum) FDE with a 6-byte XID post-header
    # and an XID event shorter than that
    phl51 = bytearray(26)
    phl51[1], phl51[3], phl51[15], phl51[18] = 13, 8, 6, 8
    fde51 = struct.pack("<H", 4) + b"5.1.30-log".ljust(50, b"\0")
    fde51 += struct.pack("<IB", 1700000000, 19) + bytes(phl51)
    s["regress_short_xid"] = bytes([FILE]) + ev(15, fde51, crc=False) + \
        ev(16, b"\1\2\3\4", crc=False)
    s["file_truncated"] = bytes([FILE]) + b"".join(evs)[:-7]
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpus/binlog"
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(seeds().items()):
        with open(os.path.join(out, "seed_" + name), "wb") as fp:
            fp.write(data)


if __name__ == "__main__":
    main()
