# SPDX-License-Identifier: Apache-2.0
"""A stand-in MySQL 8 server for the GTID tests (tests/integ/t_mysql8_gtid_fake.py).

No MySQL 8 server can be installed here, so this speaks just enough of the
client/server protocol, on loopback, for the mysql source to connect, pass
its preflight, and follow a binlog by GTID set:

* handshake v10 announcing "8.0.36-fake" and mysql_native_password; any
  password is accepted, no TLS (the tests use ssl-mode=disabled);
* COM_QUERY: the source's preflight and failover queries are answered from
  the settings given (gtid_executed, gtid_purged, read_only, gtid_mode);
  SET statements get OK; anything else an error (recorded, so a test sees
  an unexpected query);
* COM_REGISTER_SLAVE: recorded, OK;
* COM_BINLOG_DUMP_GTID: the request is recorded raw and decoded here with
  a decoder of its own (not the tool's), then the events of a real binlog
  fixture are streamed as the server would: a fake ROTATE, the file's
  preamble, and every GTID group whose GTID the request's set lacks
  (groups in the set are skipped).  die_after=N closes the connection and
  the listening socket after N groups (a primary that dies).

It is not MySQL: what it proves is what the tool sends and how it follows
the answers, not how a real server reacts.
"""
import socket
import struct
import threading
import zlib

ROTATE = 4
GTID = 33


def lenenc(n):
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n)
    if n < 1 << 24:
        return b"\xfd" + struct.pack("<I", n)[:3]
    return b"\xfe" + struct.pack("<Q", n)


def lstr(s):
    if isinstance(s, str):
        s = s.encode()
    return lenenc(len(s)) + s


def decode_gtid_set(data):
    """Binary GTID set (untagged or tagged format) -> canonical text."""
    (head,) = struct.unpack_from("<Q", data, 0)
    fmt = head >> 56
    n = head if fmt == 0 else (head >> 8) & 0xFFFFFFFFFFFF
    o = 8
    srcs = {}
    for _ in range(n):
        u = data[o:o + 16].hex()
        o += 16
        tag = ""
        if fmt == 1:
            tl = data[o] >> 1
            tag = data[o + 1:o + 1 + tl].decode()
            o += 1 + tl
        (niv,) = struct.unpack_from("<Q", data, o)
        o += 8
        ivs = []
        for _ in range(niv):
            a, b = struct.unpack_from("<QQ", data, o)
            o += 16
            ivs.append((a, b - 1))
        uuid = "%s-%s-%s-%s-%s" % (u[:8], u[8:12], u[12:16], u[16:20], u[20:])
        srcs.setdefault((uuid, tag), []).extend(ivs)
    if o != len(data):
        raise ValueError("%d bytes after the GTID set" % (len(data) - o))
    out, last = [], None
    for (uuid, tag) in sorted(srcs):
        part = "" if uuid == last else ("," if out else "") + uuid
        last = uuid
        if tag:
            part += ":" + tag
        for a, b in sorted(srcs[(uuid, tag)]):
            part += ":%d" % a if a == b else ":%d-%d" % (a, b)
        out.append(part)
    return "".join(out)


def in_set(text, uuid, gno):
    for item in text.replace("\n", "").split(","):
        if not item.startswith(uuid + ":"):
            continue
        for iv in item[len(uuid) + 1:].split(":"):
            if not iv[:1].isdigit():
                break  # a tag: the untagged intervals are over
            a, _, b = iv.partition("-")
            if int(a) <= gno <= int(b or a):
                return True
    return False


def binlog_groups(path):
    """(preamble events, [(uuid, gno, [events])]) of a binlog file."""
    raw = open(path, "rb").read()
    o, pre, groups = 4, [], []
    while o + 19 <= len(raw):
        (size,) = struct.unpack_from("<I", raw, o + 9)
        ev = raw[o:o + size]
        if ev[4] == GTID:
            sid = ev[20:36].hex()
            uuid = "%s-%s-%s-%s-%s" % (sid[:8], sid[8:12], sid[12:16], sid[16:20], sid[20:])
            (gno,) = struct.unpack_from("<q", ev, 36)
            groups.append((uuid, gno, [ev]))
        elif groups:
            groups[-1][2].append(ev)
        else:
            pre.append(ev)
        o += size
    return pre, groups


class FakeMySQL:
    def __init__(self, binlog, executed, purged="", read_only=0, gtid_mode="ON", die_after=None,
                 file_name="mysql-bin.000080"):
        self.binlog, self.executed, self.purged = binlog, executed, purged
        self.read_only, self.gtid_mode, self.die_after = read_only, gtid_mode, die_after
        self.file_name = file_name
        self.queries, self.registers, self.dumps, self.errors = [], [], [], []
        self.dead = False
        self.conns = []
        self.lock = threading.Lock()
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.next_id = 100
        threading.Thread(target=self._accept, daemon=True).start()

    # -- life ------------------------------------------------------------
    def die(self):
        """Stop listening and drop every connection (a killed server)."""
        with self.lock:
            self.dead = True
            conns = list(self.conns)
        try:
            self.ls.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        except OSError:
            pass
        try:
            self.ls.close()
        except OSError:
            pass
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass

    def _accept(self):
        while not self.dead:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            with self.lock:
                if self.dead:
                    c.close()
                    return
                self.conns.append(c)
                self.next_id += 1
                cid = self.next_id
            threading.Thread(target=self._serve, args=(c, cid), daemon=True).start()

    # -- packets ---------------------------------------------------------
    @staticmethod
    def _recv(c, n):
        b = b""
        while len(b) < n:
            x = c.recv(n - len(b))
            if not x:
                raise EOFError
            b += x
        return b

    def _read(self, c):
        h = self._recv(c, 4)
        n = h[0] | h[1] << 8 | h[2] << 16
        return h[3], self._recv(c, n)

    @staticmethod
    def _send(c, seq, payload):
        c.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload)

    def _ok(self, c, seq):
        self._send(c, seq, b"\x00\x00\x00\x02\x00\x00\x00")

    def _err(self, c, seq, code, msg):
        self._send(c, seq, b"\xff" + struct.pack("<H", code) + b"#HY000" + msg.encode())

    def _rows(self, c, seq, cols, rows):
        self._send(c, seq, lenenc(len(cols)))
        seq += 1
        for name in cols:
            d = lstr("def") + lstr("") + lstr("") + lstr("") + lstr(name) + lstr(name)
            d += b"\x0c" + struct.pack("<HIBHB", 33, 1024, 0xFD, 0, 0) + b"\x00\x00"
            self._send(c, seq, d)
            seq += 1
        self._send(c, seq, b"\xfe\x00\x00\x02\x00")
        seq += 1
        for r in rows:
            self._send(c, seq, b"".join(b"\xfb" if v is None else lstr(str(v)) for v in r))
            seq += 1
        self._send(c, seq, b"\xfe\x00\x00\x02\x00")

    # -- a connection ----------------------------------------------------
    def _serve(self, c, cid):
        try:
            caps = 0x1 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x10000 | 0x20000 | 0x80000 | 0x200000
            hs = b"\x0a" + b"8.0.36-fake\x00" + struct.pack("<I", cid) + b"abcdefgh\x00"
            hs += struct.pack("<H", caps & 0xFFFF) + b"\xff" + struct.pack("<H", 2)
            hs += struct.pack("<H", caps >> 16) + bytes([21]) + b"\x00" * 10
            hs += b"ijklmnopqrst\x00" + b"mysql_native_password\x00"
            self._send(c, 0, hs)
            seq, _ = self._read(c)
            self._ok(c, seq + 1)
            while True:
                seq, p = self._read(c)
                cmd, arg = p[0], p[1:]
                if cmd == 0x01:  # COM_QUIT
                    return
                if cmd == 0x0E:  # COM_PING
                    self._ok(c, seq + 1)
                elif cmd == 0x03:
                    self._query(c, seq + 1, arg.decode("utf-8", "replace"))
                elif cmd == 0x15:
                    self.registers.append(bytes(arg))
                    self._ok(c, seq + 1)
                elif cmd == 0x1E:
                    self._dump_gtid(c, arg)
                    return
                else:
                    self.errors.append("command 0x%02x" % cmd)
                    self._err(c, seq + 1, 1047, "Unknown command")
        except (EOFError, OSError):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _query(self, c, seq, q):
        self.queries.append(q)
        u = " ".join(q.split()).upper()
        if u.startswith("SET "):
            return self._ok(c, seq)
        if u.startswith("SHOW GLOBAL VARIABLES"):
            v = [("version", "8.0.36-fake"), ("version_comment", "fake MySQL for tests"), ("server_id", "1"),
                 ("log_bin", "ON"), ("binlog_format", "ROW"), ("binlog_row_image", "FULL"),
                 ("binlog_row_metadata", "FULL"), ("binlog_checksum", "CRC32"), ("gtid_mode", self.gtid_mode)]
            return self._rows(c, seq, ["Variable_name", "Value"], v)
        if u.startswith("SHOW REPLICAS") or u.startswith("SHOW SLAVE HOSTS"):
            return self._rows(c, seq, ["Server_id", "Host", "Port", "Source_id", "Replica_UUID"], [])
        if u == "SELECT CURRENT_USER()":
            return self._rows(c, seq, ["CURRENT_USER()"], [["cdc@%"]])
        if u == "SHOW GRANTS":
            return self._rows(c, seq, ["Grants"], [["GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `cdc`@`%`"]])
        if u in ("SHOW MASTER STATUS", "SHOW BINARY LOG STATUS"):
            return self._rows(c, seq, ["File", "Position", "Binlog_Do_DB", "Binlog_Ignore_DB", "Executed_Gtid_Set"],
                              [[self.file_name, "2454", "", "", self.executed]])
        if u == "SELECT @@GLOBAL.GTID_PURGED":
            return self._rows(c, seq, ["@@GLOBAL.gtid_purged"], [[self.purged]])
        if u == "SELECT @@GTID_EXECUTED, @@READ_ONLY, @@GTID_MODE":
            return self._rows(c, seq, ["@@gtid_executed", "@@read_only", "@@gtid_mode"],
                              [[self.executed, str(self.read_only), self.gtid_mode]])
        self.errors.append("query " + q)
        return self._err(c, seq, 1064, "fake server: unexpected query")

    def _dump_gtid(self, c, arg):
        flags, server_id, name_size = struct.unpack_from("<HII", arg, 0)
        o = 10
        name = arg[o:o + name_size].decode()
        o += name_size
        pos, data_size = struct.unpack_from("<QI", arg, o)
        o += 12
        data = arg[o:o + data_size]
        if o + data_size != len(arg):
            self.errors.append("COM_BINLOG_DUMP_GTID: %d bytes after the data" % (len(arg) - o - data_size))
        gset = decode_gtid_set(data)
        self.dumps.append({"raw": b"\x1e" + bytes(arg), "flags": flags, "server_id": server_id, "name": name,
                           "pos": pos, "set": gset})
        pre, groups = binlog_groups(self.binlog)
        seq = 1
        body = struct.pack("<Q", 4) + self.file_name.encode()
        hdr = struct.pack("<IBIIIH", 0, ROTATE, 1, 19 + len(body) + 4, 0, 0x20)
        ev = hdr + body
        self._send(c, seq, b"\x00" + ev + struct.pack("<I", zlib.crc32(ev)))
        for ev in pre:
            seq += 1
            self._send(c, seq, b"\x00" + ev)
        sent = 0
        for uuid, gno, evs in groups:
            if in_set(gset, uuid, gno):
                continue
            if self.die_after is not None and sent >= self.die_after:
                break
            for ev in evs:
                seq += 1
                self._send(c, seq, b"\x00" + ev)
            sent += 1
        if self.die_after is not None:
            self.die()
            return
        while not self.dead:  # stay connected, as a server waiting for writes
            try:
                c.settimeout(0.5)
                if not c.recv(1):
                    return
            except socket.timeout:
                continue
            except OSError:
                return
