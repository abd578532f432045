#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A small webhook receiver for the HTTP sink tests, on 127.0.0.1.

    webhook_recv.py PORTFILE LOGFILE [CERT KEY]

Listens on a free port, or on $WEBHOOK_PORT (a restart on the same port),
written to PORTFILE; HTTP/1.1 with keep-alive.
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
A request answered 200 is logged before the answer is sent; SIGTERM ends
the receiver between two log lines.

JWT bearer check, when WEBHOOK_JWT is set ("HS256:SECRET", "RS256:PUB.pem"
or "ES256:PUB.pem"): every POST must carry Authorization: Bearer <JWT>
whose header names that alg, whose signature verifies (HS256 with hmac
here, RS256/ES256 with `openssl dgst -verify`), with iat <= now + 2,
exp > now, iss = WEBHOOK_JWT_ISS and aud = WEBHOOK_JWT_AUD (when set);
otherwise the answer is 401 with the reason, whatever the script says.
The log line carries "jwt": {"ok": bool, "why": reason, "claims": {...}}.
"""
import base64
import hashlib
import hmac
import os
import signal
import subprocess
import tempfile
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


JWT = os.environ.get("WEBHOOK_JWT")


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def der_int(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b


def openssl_verify(pub, data, sig):
    with tempfile.TemporaryDirectory() as d:
        df, sf = os.path.join(d, "data"), os.path.join(d, "sig")
        open(df, "wb").write(data)
        open(sf, "wb").write(sig)
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", sf, df],
                           capture_output=True)
        return r.returncode == 0


def check_jwt(auth):
    """(ok, why, claims) for the Authorization header value."""
    alg, key = JWT.split(":", 1)
    if not auth or not auth.startswith("Bearer "):
        return False, "no bearer token", None
    parts = auth[7:].split(".")
    if len(parts) != 3:
        return False, "not a JWS compact token", None
    try:
        hdr, claims, sig = json.loads(b64d(parts[0])), json.loads(b64d(parts[1])), b64d(parts[2])
    except ValueError as e:
        return False, "undecodable token: %s" % e, None
    if hdr.get("alg") != alg:
        return False, "alg %s, want %s" % (hdr.get("alg"), alg), claims
    data = (parts[0] + "." + parts[1]).encode()
    if alg == "HS256":
        good = hmac.compare_digest(hmac.new(key.encode(), data, hashlib.sha256).digest(), sig)
    elif alg == "RS256":
        good = openssl_verify(key, data, sig)
    else:  # ES256: JWS carries r || s, openssl wants DER
        if len(sig) != 64:
            return False, "ES256 signature of %d bytes" % len(sig), claims
        body = der_int(sig[:32]) + der_int(sig[32:])
        good = openssl_verify(key, data, b"\x30" + bytes([len(body)]) + body)
    if not good:
        return False, "bad signature", claims
    now = time.time()
    if not isinstance(claims.get("iat"), int) or claims["iat"] > now + 2:
        return False, "iat %s in the future" % claims.get("iat"), claims
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
        return False, "expired (exp %s, now %.1f)" % (claims.get("exp"), now), claims
    for c, env in (("iss", "WEBHOOK_JWT_ISS"), ("aud", "WEBHOOK_JWT_AUD")):
        if env in os.environ and claims.get(c) != os.environ[env]:
            return False, "%s %r, want %r" % (c, claims.get(c), os.environ[env]), claims
    return True, "", claims


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
        jwt = None
        if JWT:
            ok, why, claims = check_jwt(self.headers.get("Authorization"))
            jwt = {"ok": ok, "why": why, "claims": claims}
            if not ok:
                act = "jwt"
                status, rbody = 401, ("invalid bearer token: " + why).encode()
        if act == "jwt":
            pass
        elif act == "drop":
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
        rec = {"t": t, "conn": self.client_address[1], "path": self.path,
               "status": status, "act": act,
               "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": body.decode("utf-8", "replace")}
        if jwt is not None:
            rec["jwt"] = jwt
        if act == "ok":
            # like a receiver that stores before it acknowledges: a 200
            # is on record before the client can see it (a SIGTERM between
            # the two cannot lose an acknowledged request)
            self.record(rec)
            self.answer(status, rbody, extra)
            return
        if status:
            try:
                self.answer(status, rbody, extra)
            except OSError:
                rec["status"] = -1  # the client gave up (timeout)
        self.record(rec)

    def record(self, rec):
        with lock:
            logf.write(json.dumps(rec) + "\n")
            logf.flush()


class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def on_term(*_):
    """SIGTERM: stop between two log lines, never inside one."""
    lock.acquire()
    logf.flush()
    os._exit(0)


signal.signal(signal.SIGTERM, on_term)
srv = S(("127.0.0.1", int(os.environ.get("WEBHOOK_PORT", "0"))), H)
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
