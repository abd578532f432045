#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MariaDB -> autoglm-cdc --sink http -> tests/integ/webhook_recv.py
(tests/services.sh up mariadb; the receiver is started here).

  1. one change per POST: every change once, in order per key, values equal
     SELECT; Idempotency-Key = change id; HMAC-SHA256 signature verifies;
     one kept-alive connection for all requests
  2. batches of 500 as a JSON array, and as NDJSON: same checks
  3. a receiver that answers 500, drops the connection, answers 429 with
     Retry-After: 2 (the next attempt waits >= 2 s) and is slower than the
     timeout: everything arrives; repeats are identical and keep their key
  4. 400: exit 65 naming the status; with errors.mode=dead-letter the
     refused change is in the dead-letter file and the rest arrives
  5. kill -9 during a workload: nothing lost, duplicates only after a
     kill's checkpoint
  6. --format xml with a mapping of names and values: every body passes
     xmllint, values equal SELECT
"""
import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET

import dblib
import sinklib
from dblib import E, ROOT, fail, log

dblib.need("MYSQL_PORT", what="MariaDB", tools=("xmllint",))
PID = os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-http.")
procs, dbs = [], []
dblib.on_fail(lambda: dblib.cleanup(procs, TMP, my_dbs=dbs), logdir=TMP)
SECRET = "s3cr3t-%d" % PID


def receiver(name):
    pf, lf = os.path.join(TMP, name + ".port"), os.path.join(TMP, name + ".requests")
    p = subprocess.Popen(["python3", os.path.join(ROOT, "tests/integ/webhook_recv.py"), pf, lf])
    procs.append(p)
    for _ in range(100):
        if os.path.exists(pf):
            return "http://127.0.0.1:%s" % open(pf).read(), lf
        time.sleep(0.05)
    fail("webhook_recv did not start")


def ctl(base, actions=None):
    if actions is None:
        return json.load(urllib.request.urlopen(base + "/_ctl"))
    urllib.request.urlopen(urllib.request.Request(base + "/_ctl", json.dumps(actions).encode()))


def requests(lf):
    """Requests in arrival order."""
    rs = [json.loads(l) for l in open(lf)] if os.path.exists(lf) else []
    return sorted(rs, key=lambda r: r["t"])


def cdc(w, name, base, extra=(), idle=2500):
    cmd = sinklib.cdc_cmd(w, name, os.path.join(TMP, "state"), [
        "--sink", "http", "-X", "webhook.url=%s/hook/{db}/{table}" % base] + list(extra))
    if idle is None:
        return cmd
    with open(os.path.join(TMP, name + ".log"), "ab") as f:
        return subprocess.run(cmd + ["--idle-exit", str(idle)], stdout=f, stderr=f,
                              timeout=120).returncode


def envelopes(reqs, batch=None):
    out = []
    for r in reqs:
        if not 200 <= r["status"] < 300:
            continue
        if batch == "array":
            out += json.loads(r["body"])
        elif batch == "ndjson":
            out += [json.loads(l) for l in r["body"].splitlines()]
        else:
            out.append(json.loads(r["body"]))
    return out


def new_db(tag, **kw):
    db = "wh%s_%d" % (tag, PID)
    dbs.append(db)
    return sinklib.Workload(db, **kw)


# ---- 1. one change per request, signed ---------------------------------------
base, lf = receiver("single")
w = new_db("1")
w.run(600)
if cdc(w, "wh1", base, ["-X", "webhook.hmac_secret=" + SECRET]):
    fail("single: autoglm-cdc failed")
reqs = requests(lf)
envs = envelopes(reqs)
if sinklib.check(envs, w, "webhook single"):
    fail("single: duplicates without failures")
for r, e in zip(reqs, envs):
    h = r["headers"]
    if h.get("idempotency-key") != sinklib.change_id(e):
        fail("Idempotency-Key %s, want %s" % (h.get("idempotency-key"), sinklib.change_id(e)))
    want = "sha256=" + hmac.new(SECRET.encode(), r["body"].encode(), hashlib.sha256).hexdigest()
    if h.get("x-autoglm-signature-256") != want:
        fail("signature %s, want %s" % (h.get("x-autoglm-signature-256"), want))
    if r["path"] != "/hook/%s/kt" % w.db or h.get("content-type") != "application/json":
        fail("path %s / content type %s" % (r["path"], h.get("content-type")))
conns = len({r["conn"] for r in reqs})
if conns > 2:
    fail("keep-alive: %d connections for %d requests" % (conns, len(reqs)))
log("single: %d requests over %d connection(s), signatures and keys right" % (len(reqs), conns))

# ---- 2. batches ------------------------------------------------------------------
for fmt in ("array", "ndjson"):
    base, lf = receiver("batch_" + fmt)
    w = new_db("2" + fmt[0])
    w.run(3000)
    if cdc(w, "wh2" + fmt[0], base, ["-X", "webhook.batch=500", "-X",
                                     "webhook.batch_format=" + fmt]):
        fail("batch %s: autoglm-cdc failed" % fmt)
    reqs = requests(lf)
    envs = envelopes(reqs, fmt)
    sinklib.check(envs, w, "webhook batch " + fmt)
    if max(len(json.loads(r["body"])) if fmt == "array" else len(r["body"].splitlines())
           for r in reqs) != 500:
        fail("batch %s: no request carried 500 changes" % fmt)
    ct = reqs[0]["headers"]["content-type"]
    if ct != ("application/json" if fmt == "array" else "application/x-ndjson"):
        fail("batch %s: content type %s" % (fmt, ct))
    log("batch %s: %d changes in %d requests" % (fmt, w.changes, len(reqs)))

# ---- 3. failing, slow, 429 ---------------------------------------------------------
base, lf = receiver("flaky")
w = new_db("3")
w.run(300)
ctl(base, ["500", "500", "drop", "429:2", "slow:3", "500"])
if cdc(w, "wh3", base, ["-X", "webhook.timeout_ms=1000", "-X", "webhook.retry_backoff_ms=50"],
       idle=10000):
    fail("flaky: autoglm-cdc failed")
reqs = requests(lf)
acts = [r["act"] for r in reqs[:6]]
if acts != ["500", "500", "drop", "429:2", "slow:3", "500"]:
    fail("flaky: receiver saw %s" % acts)
if len({r["headers"]["idempotency-key"] for r in reqs[:7]}) != 1:
    fail("flaky: retries of one change changed the Idempotency-Key")
gap = reqs[4]["t"] - reqs[3]["t"]
if gap < 2.0:
    fail("Retry-After: 2 not honoured: next attempt after %.2f s" % gap)
dups = sinklib.check(envelopes(reqs), w, "webhook flaky")
log("flaky: retried through 500/drop/429/slow; Retry-After gap %.2f s; %d duplicate(s)"
    % (gap, dups))

# ---- 4. 400: stop, or dead letter ---------------------------------------------------
base, lf = receiver("refuse")
w = new_db("4")
w.run(50)
ctl(base, ["ok", "ok", "400"])
rc = cdc(w, "wh4", base)
text = open(os.path.join(TMP, "wh4.log")).read()
if rc != 65 or "HTTP 400" not in text:
    fail("400: exit %d, want 65 naming HTTP 400" % rc)
ck = os.path.join(TMP, "state", "wh4.ckpt")
refused = requests(lf)[2]
ctl(base, ["400"])
dl = os.path.join(TMP, "dead.jsonl")
rc = cdc(w, "wh4", base, ["-X", "errors.mode=dead-letter", "-X", "errors.dead_letter_file=" + dl])
if rc:
    fail("dead-letter run exited %d" % rc)
dead = [json.loads(l) for l in open(dl)]
if len(dead) != 1 or dead[0]["status"] != 400 or "not a valid id" not in dead[0]["error"]:
    fail("dead-letter file: %s" % dead)
ok = envelopes(requests(lf))
dl_env = json.loads(requests(lf)[3]["body"])
if sinklib.change_id(dl_env) != refused["headers"]["idempotency-key"]:
    fail("the dead letter is not the refused change")
have = {sinklib.change_id(e) for e in ok} | {sinklib.change_id(dl_env)}
if len(have) != w.changes:
    fail("400/dead letter: %d of %d changes accounted for" % (len(have), w.changes))
log("400: exit 65; dead-letter mode keeps the refused change (%s) and delivers the rest"
    % refused["headers"]["idempotency-key"])

# ---- 5. kill -9 -----------------------------------------------------------------------
base, lf = receiver("kill")
w = new_db("5", seed=21)
cmd = cdc(w, "wh5", base, ["-X", "webhook.batch=100"], idle=None)
ckpts = sinklib.kill9_loop(cmd, w, os.path.join(TMP, "state", "wh5.ckpt"),
                           os.path.join(TMP, "wh5.log"), procs, kills=4, seed=5)
w.batch(200)
if cdc(w, "wh5", base, ["-X", "webhook.batch=100"]):
    fail("kill -9 catch-up failed")
envs = envelopes(requests(lf), "array")
sinklib.check_kill9(envs, w, ckpts, "webhook kill -9")

# ---- 6. XML ---------------------------------------------------------------------------
base, lf = receiver("xml")
w = new_db("6")
w.run(400)
if cdc(w, "wh6", base, ["--format", "xml", "-X", "xml.root={table}", "-X",
                        "xml.names=id=rowId,kt.s=label", "-X", "xml.values=v:1=first"]):
    fail("xml: autoglm-cdc failed")
reqs = requests(lf)
state = {}
for i, r in enumerate(reqs):
    if r["headers"]["content-type"] != "application/xml":
        fail("xml: content type %s" % r["headers"]["content-type"])
    x = subprocess.run(["xmllint", "--noout", "-"], input=r["body"], capture_output=True, text=True)
    if x.returncode:
        fail("xmllint rejects request %d: %s\n%s" % (i, x.stderr, r["body"][:300]))
    doc = ET.fromstring(r["body"].encode())
    if doc.tag != "kt" or doc.get("db") != w.db:
        fail("xml root %s db %s" % (doc.tag, doc.get("db")))
    img = doc.find("before" if doc.get("op") == "delete" else "after")
    k = int(img.find("rowId").text)
    if doc.get("op") == "delete":
        state.pop(k, None)
        continue
    v = img.find("v").text
    d = img.find("d")
    state[k] = (1 if v == "first" else int(v), img.find("label").text or "",
                None if d.get("null") == "true" else d.text)
want = {k: (v, s, d) for k, (v, s, d) in w.select().items()}
if state != want:
    bad = [(k, state.get(k), want.get(k)) for k in want if state.get(k) != want.get(k)][:3]
    fail("xml: state from the documents differs from SELECT: %s" % bad)
if not any(">first<" in r["body"] for r in reqs):
    fail("xml: value mapping v:1=first never applied")
log("xml: %d documents pass xmllint; mapped names and values; state equals SELECT" % len(reqs))

dblib.cleanup(procs, TMP, my_dbs=dbs)
print("PASS")
