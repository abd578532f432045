#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MariaDB -> autoglm-cdc --sink http -X webhook.version=2 ->
tests/integ/h2_recv.py, an HTTP/2-only receiver on the h2 protocol library
(tests/services.sh up mariadb; the receiver is started here).

  1. https with webhook.tls.ca: TLS negotiated "h2" by ALPN on the server
     side, every request arrived on an HTTP/2 stream over one connection;
     every change once, in order per key, values equal SELECT;
     Idempotency-Key = change id
  2. http:// (h2c, prior knowledge), batches of 50 as NDJSON: every request
     an HTTP/2 stream, the server saw no HTTP/1.1; same value checks
  3. the control: webhook.version=1.1 against the same h2c receiver is
     rejected by it as not HTTP/2 (so the checks above do tell the
     protocols apart)
"""
import json
import os
import subprocess
import tempfile
import time

import dblib
import sinklib
from dblib import ROOT, fail, log

dblib.need("MYSQL_PORT", what="MariaDB", tools=("openssl",))


def h2_python():
    """An interpreter with the h2 module (Debian python3-h2 lives in the
    system Python, which may not be the first python3 on PATH)."""
    for py in ("python3", "/usr/bin/python3"):
        try:
            if subprocess.run([py, "-c", "import h2"], capture_output=True).returncode == 0:
                return py
        except OSError:
            pass
    dblib.skip("no python3 with the h2 module (Debian python3-h2, scripts/deps.sh)")


PY = h2_python()
PID = os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-h2.")
procs, dbs = [], []
dblib.on_fail(lambda: dblib.cleanup(procs, TMP, my_dbs=dbs), logdir=TMP)

CERT, KEY = os.path.join(TMP, "cert.pem"), os.path.join(TMP, "key.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", KEY, "-out", CERT],
               check=True, capture_output=True)


def receiver(name, tls):
    pf, lf = os.path.join(TMP, name + ".port"), os.path.join(TMP, name + ".requests")
    p = subprocess.Popen([PY, os.path.join(ROOT, "tests/integ/h2_recv.py"), pf, lf] + ([CERT, KEY] if tls else []))
    procs.append(p)
    for _ in range(100):
        if os.path.exists(pf):
            return "%s://127.0.0.1:%s" % ("https" if tls else "http", open(pf).read()), lf
        time.sleep(0.05)
    fail("h2_recv did not start")


def records(lf):
    rs = [json.loads(l) for l in open(lf)] if os.path.exists(lf) else []
    return sorted(rs, key=lambda r: r["t"])


def cdc(w, name, base, extra, idle=2500):
    cmd = sinklib.cdc_cmd(w, name, os.path.join(TMP, "state"), [
        "--sink", "http", "-X", "webhook.url=%s/hook/{db}/{table}" % base] + extra)
    with open(os.path.join(TMP, name + ".log"), "ab") as f:
        rc = subprocess.run(cmd + ["--idle-exit", str(idle)], stdout=f, stderr=f, timeout=180).returncode
    return rc, open(os.path.join(TMP, name + ".log")).read()


def new_db(tag):
    db = "h2%s_%d" % (tag, PID)
    dbs.append(db)
    return sinklib.Workload(db)


def all_h2(recs, what, alpn):
    errs = [r for r in recs if "error" in r]
    if errs:
        fail("%s: the receiver saw non-HTTP/2 traffic: %s" % (what, errs[:3]))
    for r in recs:
        if r["proto"] != "h2" or r["alpn"] != alpn or r["method"] != "POST":
            fail("%s: request %s" % (what, {k: r[k] for k in ("proto", "alpn", "method", "path")}))
    if not recs:
        fail("%s: no request arrived" % what)


# ---- 1. h2 over TLS (ALPN) ----------------------------------------------------------
base, lf = receiver("tls", tls=True)
w = new_db("1")
w.run(500)
rc, text = cdc(w, "h2tls", base, ["-X", "webhook.version=2", "-X", "webhook.tls.ca=" + CERT])
if rc:
    fail("h2 TLS: autoglm-cdc exited %d:\n%s" % (rc, text[-800:]))
if "speaks HTTP/2" not in text:
    fail("h2 TLS: the sink did not log HTTP/2")
recs = records(lf)
all_h2(recs, "h2 TLS", "h2")
envs = [json.loads(r["body"]) for r in recs]
sinklib.check(envs, w, "h2 TLS")
for r, e in zip(recs, envs):
    if r["headers"].get("idempotency-key") != sinklib.change_id(e) or r["path"] != "/hook/%s/kt" % w.db:
        fail("h2 TLS: key %s path %s" % (r["headers"].get("idempotency-key"), r["path"]))
conns = len({r["conn"] for r in recs})
if conns > 1:
    fail("h2 TLS: %d connections for %d requests" % (conns, len(recs)))
log("h2 TLS: %d requests as HTTP/2 streams (ALPN h2) on %d connection, values equal SELECT"
    % (len(recs), conns))

# ---- 2. h2c by prior knowledge, NDJSON batches ----------------------------------------
base, lf = receiver("h2c", tls=False)
w = new_db("2")
w.run(2000)
rc, text = cdc(w, "h2c", base, ["-X", "webhook.version=2", "-X", "webhook.batch=50",
                                "-X", "webhook.batch_format=ndjson"])
if rc:
    fail("h2c: autoglm-cdc exited %d:\n%s" % (rc, text[-800:]))
recs = records(lf)
all_h2(recs, "h2c", None)
envs = [json.loads(l) for r in recs for l in r["body"].splitlines()]
sinklib.check(envs, w, "h2c ndjson")
if max(len(r["body"].splitlines()) for r in recs) != 50:
    fail("h2c: no request carried 50 changes")
log("h2c: %d changes in %d HTTP/2 requests, values equal SELECT" % (w.changes, len(recs)))

# ---- 3. control: HTTP/1.1 is not accepted by the receiver -------------------------------
base, lf = receiver("control", tls=False)
w = new_db("3")
w.run(5)
rc, text = cdc(w, "h11", base, ["-X", "webhook.version=1.1", "-X", "webhook.retry_timeout_ms=1500",
                                "-X", "webhook.retry_backoff_ms=100"])
recs = records(lf)
if rc != 69 or not recs or any("not HTTP/2" not in r.get("error", "") for r in recs):
    fail("control: HTTP/1.1 against the h2-only receiver: exit %d, receiver saw %s" % (rc, recs[:3]))
log("control: HTTP/1.1 is refused by the receiver as not HTTP/2 (%d attempts), exit 69" % len(recs))

dblib.cleanup(procs, TMP, my_dbs=dbs)
print("PASS")
