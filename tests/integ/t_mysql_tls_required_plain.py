#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""ssl.mode=required against a server that does not offer TLS sends nothing.

libmariadb (3.3) answered a greeting without CLIENT_SSL with the login
packet in clear text (user name and password scramble), and only then
did the tool notice that TLS was missing.  The tool now reads the
greeting on a connection of its own first.  A listener on loopback plays
a MySQL server without TLS and records every byte a client sends after
its greeting:
  * ssl-mode=required (DSN) and mysql.ssl.mode=required (key): exit 78,
    the message names the server and the remedy, and no client sent a
    single byte (so no user name);
  * control: ssl-mode=disabled does send the login (the listener sees the
    user name), so the listener would have seen it.
No database server needed.  Exit 0 pass, 1 fail, 77 skip.
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dblib  # noqa: E402
from dblib import fail, log  # noqa: E402

BIN = os.path.join(os.environ.get("CDC_BUILD", "build"), "autoglm-cdc")
USER = "tlsprobeuser"


class PlainServer:
    """Greets every connection as MySQL 8 without CLIENT_SSL and records
    what the client sends (then closes)."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(16)
        self.port = self.s.getsockname()[1]
        self.received = []
        self.conns = 0
        self.stop = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.stop:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            self.conns += 1
            caps = 0x1 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x80000  # no 0x800 (SSL)
            hs = b"\x0a8.0.36-plain\x00" + struct.pack("<I", self.conns) + b"abcdefgh\x00"
            hs += struct.pack("<H", caps & 0xFFFF) + b"\xff" + struct.pack("<H", 2)
            hs += struct.pack("<H", caps >> 16) + bytes([21]) + b"\x00" * 10
            hs += b"ijklmnopqrst\x00mysql_native_password\x00"
            data = b""
            try:
                c.sendall(struct.pack("<I", len(hs))[:3] + b"\x00" + hs)
                c.settimeout(3)
                while True:
                    d = c.recv(4096)
                    if not d:
                        break
                    data += d
                    if len(data) > 40:
                        break
            except OSError:
                pass
            self.received.append(data)
            c.close()


def run(args, state):
    return subprocess.run([BIN, "--source", "mysql", "--sink", "stdout", "--state-dir", state] + args,
                          capture_output=True, text=True, timeout=60)


def main():
    if not os.access(BIN, os.X_OK):
        dblib.skip("%s not built" % BIN)
    tmp = tempfile.mkdtemp(prefix="cdc_tlsplain_")
    srv = PlainServer()
    base = "mysql://%s:s3cret@127.0.0.1:%d/db" % (USER, srv.port)
    for label, args in (("DSN ssl-mode=required", ["--mysql-dsn", base + "?ssl-mode=required"]),
                        ("key mysql.ssl.mode=required", ["--mysql-dsn", base, "-X", "mysql.ssl.mode=required"])):
        before = len(srv.received)
        r = run(args, os.path.join(tmp, "st%d" % before))
        if r.returncode != 78:
            fail("%s: want exit 78, got %d: %s" % (label, r.returncode, r.stderr[-500:]))
        if "does not offer TLS" not in r.stderr or "127.0.0.1:%d" % srv.port not in r.stderr:
            fail("%s: the message does not name the server and the cause: %s" % (label, r.stderr[-500:]))
        sent = srv.received[before:]
        if not sent or any(sent):
            fail("%s: the client sent %r after the greeting (want nothing)" % (label, sent))
        if "s3cret" in r.stderr:
            fail("%s: the password shows in the error" % label)
        log("%s: exit 78 and %d connection(s) closed without a byte" % (label, len(sent)))
    # control: without TLS required the login does go out, so the listener sees it
    before = len(srv.received)
    r = run(["--mysql-dsn", base + "?ssl-mode=disabled"], os.path.join(tmp, "stc"))
    sent = b"".join(srv.received[before:])
    if USER.encode() not in sent:
        fail("control: the listener never saw a login (got %r, exit %d)" % (sent[:80], r.returncode))
    log("control: ssl-mode=disabled sends the login (exit %d), as expected" % r.returncode)
    srv.stop = True
    print("ok")


if __name__ == "__main__":
    main()
