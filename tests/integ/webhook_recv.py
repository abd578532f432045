#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A small webhook receiver for the HTTP sink tests, on 127.0.0.1.

    webhook_recv.py PORTFILE LOGFILE [CERT KEY]

Listens on a free port (written to PORTFILE), HTTP/1.1 with keep-alive.
Every POST is logged to LOGFILE as one JSON line, after it is answered:
    {"t": arrival (s), "conn": client port, "path": .., "status": ..,
     "headers": {lower-case name: value}, "body": text}
What the next requests get is scripted: POST /_ctl with a JSON list of
actions, used one per request, then "ok" again:
    "ok"        200
    "500"       500
    "400"       400 with a body saying why
    "429:N"     429 with Retry-After: N
    "slow:S"    wait S seconds, then 200
    "drop"      close the connection without an answer
GET /_ctl answers {"pending": actions left, "requests": N, "conns": M}.
"""
import http.server
import json
import socketserver
import sys
import threading
import time

PORTFILE, LOGFILE = sys.argv[1], sys.argv[2]
lock = threading.Lock()
script = []
stats = {"requests": 0, "conns": set()}
logf = open(LOGFILE, "a")


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, status, body=b"", extra=()):
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            out = {"pending": len(script), "requests": stats["requests"],
                   "conns": len(stats["conns"])}
        self.answer(200, json.dumps(out).encode())

    def do_POST(self):
        t = time.time()
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        if self.path == "/_ctl":
            with lock:
                script.extend(json.loads(body))
            self.answer(200)
            return
        with lock:
            act = script.pop(0) if script else "ok"
            stats["requests"] += 1
            stats["conns"].add(self.client_address[1])
        status, extra, rbody = 200, [], b""
        if act == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            status = 0
        elif act.startswith("slow:"):
            time.sleep(float(act[5:]))
        elif act.startswith("429:"):
            status, extra = 429, [("Retry-After", act[4:])]
        elif act == "500":
            status = 500
        elif act == "400":
            status, rbody = 400, b"field userId: not a valid id"
        if status:
            try:
                self.answer(status, rbody, extra)
            except OSError:
                status = -1  # the client gave up (timeout)
        rec = {"t": t, "conn": self.client_address[1], "path": self.path,
               "status": status, "act": act,
               "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": body.decode("utf-8", "replace")}
        with lock:
            logf.write(json.dumps(rec) + "\n")
            logf.flush()


class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = S(("127.0.0.1", 0), H)
if len(sys.argv) > 4:  # https with this certificate
    import ssl  # noqa: E402
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os  # noqa: E402
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
