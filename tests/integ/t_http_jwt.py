#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MariaDB -> autoglm-cdc --sink http with a JWT bearer (libjwt) ->
tests/integ/webhook_recv.py, which verifies every token itself (HS256 with
hmac, RS256/ES256 with openssl) and answers 401 to a bad one
(tests/services.sh up mariadb; the receiver is started here).

  1. HS256, secret from webhook.jwt.secret_file, audience and extra claims:
     every request carries a token that verifies, with iss = application
     id, aud, sub and scope; every change once, in order, values = SELECT
  2. re-signing: webhook.jwt.lifetime_s=4 and a receiver that takes 1 s
     per request: tokens change during the run, each verified on arrival
     (not expired), exp - iat = 4, none older than half its lifetime + 1 s
  3. RS256 and ES256 with a PEM private key, verified with the public key
  4. a wrong secret: the receiver answers 401, the run stops with exit 78
     naming the refused credentials, nothing goes to the dead-letter file
     (even with errors.mode=dead-letter) and the checkpoint stays: the run
     with the right secret delivers every change
  5. a key of the wrong type (EC key for RS256), extra claims that set iss
     or are not a JSON object: exit 78 at start
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
PID = os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-jwt.")
procs, dbs = [], []
dblib.on_fail(lambda: dblib.cleanup(procs, TMP, my_dbs=dbs), logdir=TMP)
SECRET = "jwt-s3cr3t-%d" % PID


def receiver(name, jwt, **claims):
    pf, lf = os.path.join(TMP, name + ".port"), os.path.join(TMP, name + ".requests")
    env = dict(os.environ, WEBHOOK_JWT=jwt)
    for k, v in claims.items():
        env["WEBHOOK_JWT_" + k.upper()] = v
    p = subprocess.Popen(["python3", os.path.join(ROOT, "tests/integ/webhook_recv.py"), pf, lf], env=env)
    procs.append(p)
    for _ in range(100):
        if os.path.exists(pf):
            return "http://127.0.0.1:%s" % open(pf).read(), lf
        time.sleep(0.05)
    fail("webhook_recv did not start")


def script(base, actions):
    import urllib.request
    urllib.request.urlopen(urllib.request.Request(base + "/_ctl", json.dumps(actions).encode()))


def requests(lf):
    rs = [json.loads(l) for l in open(lf)] if os.path.exists(lf) else []
    return sorted(rs, key=lambda r: r["t"])


def cdc(w, name, base, extra=(), idle=2500):
    cmd = sinklib.cdc_cmd(w, name, os.path.join(TMP, "state"), [
        "--sink", "http", "-X", "webhook.url=%s/hook/{table}" % base] + list(extra))
    with open(os.path.join(TMP, name + ".log"), "ab") as f:
        return subprocess.run(cmd + ["--idle-exit", str(idle)], stdout=f, stderr=f,
                              timeout=180).returncode


def new_db(tag, **kw):
    db = "jwt%s_%d" % (tag, PID)
    dbs.append(db)
    return sinklib.Workload(db, **kw)


def delivered(reqs):
    return [json.loads(r["body"]) for r in reqs if 200 <= r["status"] < 300]


def all_verified(reqs, what):
    for r in reqs:
        j = r.get("jwt")
        if not j or not j["ok"]:
            fail("%s: request %s has no valid token: %s" % (what, r["headers"].get("idempotency-key"), j))
    return [r["jwt"]["claims"] for r in reqs]


# ---- 1. HS256 from a secret file, audience, extra claims ------------------------
sf = os.path.join(TMP, "jwt.secret")
with open(sf, "w") as f:
    f.write(SECRET + "\n")
base, lf = receiver("hs", "HS256:" + SECRET, iss="jwtapp", aud="orders-api")
w = new_db("1")
w.run(300)
if cdc(w, "jwt1", base, ["-X", "webhook.jwt.secret_file=" + sf, "-X", "application_id=jwtapp",
                         "-X", "webhook.jwt.audience=orders-api",
                         "-X", 'webhook.jwt.claims={"sub":"cdc","scope":"ingest"}']):
    fail("HS256: autoglm-cdc failed: %s" % open(os.path.join(TMP, "jwt1.log")).read()[-800:])
reqs = requests(lf)
claims = all_verified(reqs, "HS256")
for c in claims:
    if c.get("sub") != "cdc" or c.get("scope") != "ingest" or c["exp"] - c["iat"] != 300:
        fail("HS256: claims %s" % c)
sinklib.check(delivered(reqs), w, "jwt HS256")
log("HS256: %d requests, every token verified (iss, aud, sub, scope, exp-iat=300)" % len(reqs))

# ---- 2. re-signing before expiry -------------------------------------------------
base, lf = receiver("resign", "HS256:" + SECRET)
w = new_db("2")
w.run(10)
script(base, ["slow:1"] * 10)
if cdc(w, "jwt2", base, ["-X", "webhook.jwt.secret=" + SECRET, "-X", "webhook.jwt.lifetime_s=4"], idle=15000):
    fail("re-sign: autoglm-cdc failed")
reqs = requests(lf)
claims = all_verified(reqs, "re-sign")
iats = sorted({c["iat"] for c in claims})
for r, c in zip(reqs, claims):
    if c["exp"] - c["iat"] != 4:
        fail("re-sign: exp - iat = %d, want 4" % (c["exp"] - c["iat"]))
    if r["t"] - c["iat"] > 2 + 1:
        fail("re-sign: a token %.1f s old was sent (lifetime 4: re-signed after 2)" % (r["t"] - c["iat"]))
if len(iats) < 3:
    fail("re-sign: %d requests over %.1f s carried only %d distinct tokens (iat %s)"
         % (len(reqs), reqs[-1]["t"] - reqs[0]["t"], len(iats), iats))
sinklib.check(delivered(reqs), w, "jwt re-sign")
log("re-sign: %d requests over %.1f s, %d tokens, none expired or older than 3 s"
    % (len(reqs), reqs[-1]["t"] - reqs[0]["t"], len(iats)))

# ---- 3. RS256 and ES256 -------------------------------------------------------------
keys = {}
for alg, gen in (("RS256", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                 ("ES256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])):
    key, pub = os.path.join(TMP, alg + ".key"), os.path.join(TMP, alg + ".pub")
    subprocess.run(["openssl", "genpkey"] + gen + ["-out", key], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True)
    keys[alg] = key
    base, lf = receiver(alg, "%s:%s" % (alg, pub))
    w = new_db("3" + alg[0].lower())
    w.run(100)
    if cdc(w, "jwt3" + alg, base, ["-X", "webhook.jwt.alg=" + alg, "-X", "webhook.jwt.key_file=" + key,
                                   "-X", "webhook.batch=10"]):
        fail("%s: autoglm-cdc failed: %s" % (alg, open(os.path.join(TMP, "jwt3%s.log" % alg)).read()[-800:]))
    reqs = requests(lf)
    all_verified(reqs, alg)
    envs = [e for r in reqs if r["status"] == 200 for e in json.loads(r["body"])]
    sinklib.check(envs, w, "jwt " + alg)
    log("%s: %d requests, every signature verified with the public key" % (alg, len(reqs)))

# ---- 4. wrong secret: 401 -> exit 78, nothing dead-lettered, nothing skipped ----------
base, lf = receiver("wrong", "HS256:" + SECRET)
w = new_db("4")
w.run(60)
dl = os.path.join(TMP, "dead.jsonl")
rc = cdc(w, "jwt4", base, ["-X", "webhook.jwt.secret=not-the-secret", "-X", "errors.mode=dead-letter",
                           "-X", "errors.dead_letter_file=" + dl])
text = open(os.path.join(TMP, "jwt4.log")).read()
if rc != 78 or "refused our credentials: HTTP 401" not in text:
    fail("wrong secret: exit %d, want 78 naming the refused credentials:\n%s" % (rc, text[-800:]))
reqs = requests(lf)
if not reqs or any(r["status"] != 401 or r["jwt"]["why"] != "bad signature" for r in reqs):
    fail("wrong secret: the receiver saw %s" % [(r["status"], r.get("jwt")) for r in reqs])
if os.path.exists(dl) and os.path.getsize(dl):
    fail("wrong secret: changes went to the dead-letter file: %s" % open(dl).read()[:500])
if cdc(w, "jwt4", base, ["-X", "webhook.jwt.secret=" + SECRET]):
    fail("right secret after 401: autoglm-cdc failed")
reqs = requests(lf)
sinklib.check(delivered(reqs), w, "jwt after 401")
log("wrong secret: 401 -> exit 78, no dead letters; the rerun delivers all %d changes" % w.changes)

# ---- 5. a key that does not fit the algorithm ---------------------------------------------
rc = cdc(w, "jwt5", base, ["-X", "webhook.jwt.alg=RS256", "-X", "webhook.jwt.key_file=" + keys["ES256"]])
text = open(os.path.join(TMP, "jwt5.log")).read()
if rc != 78 or "webhook.jwt.key_file" not in text:
    fail("EC key for RS256: exit %d, want 78 naming webhook.jwt.key_file:\n%s" % (rc, text[-600:]))
log("EC key for RS256: exit 78 at start")
for claims, why in (('{"iss":"me"}', "sets iss, iat, exp or aud"), ("[1]", "not a JSON object")):
    rc = cdc(w, "jwt6", base, ["-X", "webhook.jwt.secret=" + SECRET, "-X", "webhook.jwt.claims=" + claims])
    text = open(os.path.join(TMP, "jwt6.log")).read()
    if rc != 78 or why not in text:
        fail("webhook.jwt.claims=%s: exit %d, want 78 saying %r" % (claims, rc, why))
log("claims that override iss, or are no JSON object: exit 78 at start")

dblib.cleanup(procs, TMP, my_dbs=dbs)
print("PASS")
