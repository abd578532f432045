#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The status page, `status` for on-call staff, and the monitoring kit.

Two pipelines (a, b) stream from a throwaway mariadbd of this test into
file sinks and share one state directory; each serves its own HTTP
endpoint with the same token.

  status      `status -c a.yaml` without the database password in the
              environment (its DSN uses ${VAR}); b is asked through the
              endpoint it recorded in the shared state directory, not
              called offline; an application name with an escape sequence
              is printed escaped; --json rows match each /status.
  page        a real headless Chromium (DevTools over a pipe) loads / of
              each daemon with the token in a cookie: one row per pipeline
              of the shared state directory (its own first, the other one
              gathered by the daemon in the background), each with the
              same values as that pipeline's /status, a screenshot;
              without the cookie the page asks for the token (401); a
              token in the URL is refused (400).  The same while only b's
              source is down (b reads through tests/integ/faultproxy.py,
              frozen): a online, b offline with its source's error, on
              both pages; while b's daemon does not answer (SIGSTOP): a's
              page still answers, b's row says unknown; and while the
              source of both is down (SIGSTOP of our mariadbd).
  monitoring  promtool check metrics on a live scrape; promtool check
              rules and test rules on contrib/prometheus; the Grafana
              dashboard's structure, and every panel query parsed by
              promtool, naming only metrics that /metrics serves.
  stop        the endpoint records go away; status falls back to the
              checkpoints; a record whose pid is gone is reported stale.

Exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import cdp
import dblib
import faultproxy
from dblib import BIN, ROOT, fail, log

if not os.access(BIN, os.X_OK):
    dblib.skip("no built autoglm-cdc")
MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
for what, ok in (("mariadbd", os.access(MARIADBD, os.X_OK) and shutil.which("mariadb-install-db")),
                 ("chromium (Debian package chromium)", cdp.chromium()),
                 ("promtool (Debian package prometheus)", shutil.which("promtool"))):
    if not ok:
        dblib.skip("needs %s" % what)

TMP = tempfile.mkdtemp(prefix="cdc-page-")
PROCS = []
dbproc = None
proxy = None


def cleanup():
    if dbproc and dbproc.poll() is None:
        os.kill(dbproc.pid, signal.SIGCONT)
    for p in PROCS:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
    for p in PROCS:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    if dbproc and dbproc.poll() is None:
        dbproc.terminate()
        dbproc.wait(30)
    if proxy:
        proxy.close()
    if not os.environ.get("KEEP_TMP"):
        shutil.rmtree(TMP, ignore_errors=True)
    else:
        log("kept " + TMP)


dblib.on_fail(cleanup, logdir=TMP)


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(what, fn, secs=60):
    end = time.time() + secs
    while time.time() < end:
        try:
            if fn():
                return
        except Exception:
            pass
        time.sleep(0.3)
    fail("timed out waiting for " + what)


# ---- our own MariaDB ----------------------------------------------------------
PORT = freeport()
D = os.path.join(TMP, "db")
r = subprocess.run(["mariadb-install-db", "--no-defaults", "--datadir=" + D,
                    "--auth-root-authentication-method=normal", "--skip-test-db"],
                   capture_output=True, text=True)
if r.returncode:
    fail("mariadb-install-db: " + r.stderr[-500:])
dbproc = subprocess.Popen(
    [MARIADBD, "--no-defaults", "--user=" + (os.environ.get("USER") or "root"), "--datadir=" + D,
     "--port=%d" % PORT, "--bind-address=127.0.0.1", "--socket=" + TMP + "/my.sock",
     "--pid-file=" + TMP + "/my.pid", "--log-error=" + TMP + "/mariadbd.log", "--log-bin=mysql-bin",
     "--binlog-format=ROW", "--binlog-row-image=FULL", "--binlog-row-metadata=FULL", "--server-id=1",
     "--innodb-buffer-pool-size=16M"],
    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sql(q):
    return subprocess.run(["mariadb", "--no-defaults", "--protocol=tcp", "-h", "127.0.0.1", "-P", str(PORT),
                           "-uroot", "-N", "-B", "-e", q], capture_output=True, text=True, timeout=20)


wait_for("our MariaDB", lambda: sql("SELECT 1").returncode == 0)
DBPW = "Pw-page-7Hq2"
TOKEN = "tok-page-Zr51"
r = sql("CREATE USER cdc@'%%' IDENTIFIED BY '%s'; GRANT REPLICATION SLAVE, REPLICATION CLIENT, "
        "BINLOG MONITOR, SELECT ON *.* TO cdc@'%%'; CREATE DATABASE pagedb; "
        "CREATE TABLE pagedb.t (id INT PRIMARY KEY, v INT)" % DBPW)
if r.returncode:
    fail("setup: " + r.stderr)

# ---- two pipelines sharing a state directory ------------------------------
# b reads through a proxy that can freeze its link (b alone loses its
# source); b reconnects, so it stays up while its source is away
proxy = faultproxy.Proxy(PORT)
SRCPORT = {"a": PORT, "b": proxy.port}
RECONNECT = {"a": "false", "b": "true"}
STATE = os.path.join(TMP, "state")
HP = {"a": freeport(), "b": freeport()}
APP = {"a": "app-a", "b": "app-b\x1b[31m"}
YAML = {}
for name in ("a", "b"):
    YAML[name] = os.path.join(TMP, name + ".yaml")
    open(YAML[name], "w").write(
        "pipeline: {name: %s}\n"
        "source: {type: mysql}\n"
        "mysql:\n"
        "  dsn: mysql://cdc:${CDC_T_PAGE_PW}@127.0.0.1:%d\n"
        "  from: now\n"
        "  server_id: %d\n"
        "  heartbeat_ms: 500\n"
        "  connect_timeout_ms: 1000\n"
        "  reconnect: %s\n"
        "sink: {type: file}\n"
        "output: %s/%s.jsonl\n"
        "state: {dir: %s}\n"
        "checkpoint: {interval_ms: 200}\n"
        "http: {listen: \"127.0.0.1:%d\", token: \"%s\"}\n"
        % (name, SRCPORT[name], 7000 + len(name) + ord(name), RECONNECT[name], TMP, name, STATE, HP[name],
           TOKEN))
runenv = dict(os.environ, CDC_T_PAGE_PW=DBPW)
for name in ("a", "b"):
    PROCS.append(subprocess.Popen([BIN, "run", "-c", YAML[name], "-X", "application_id=" + APP[name]],
                                  env=runenv, stdout=subprocess.DEVNULL,
                                  stderr=open(os.path.join(TMP, "run_%s.log" % name), "w")))


def get(name, path, auth=True, cookie=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (HP[name], path))
    if auth:
        req.add_header("Authorization", "Bearer " + TOKEN)
    if cookie:
        req.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def status_doc(name):
    code, body = get(name, "/status")
    if code != 200:
        raise RuntimeError("/status %d" % code)
    return json.loads(body)


for name in ("a", "b"):
    wait_for("pipeline %s online" % name, lambda n=name: status_doc(n)["status"] == "online")
for i in range(1, 21):
    sql("INSERT INTO pagedb.t VALUES (%d, %d)" % (i, i))
for name in ("a", "b"):
    wait_for("pipeline %s delivered 20 changes" % name,
             lambda n=name: status_doc(n)["events"] >= 20 and status_doc(n)["latency_ms"] is not None)
    if not os.path.exists(os.path.join(STATE, name + ".daemon")):
        fail("no daemon record %s.daemon in the state directory" % name)

# ---- status for on-call staff ---------------------------------------------------
oncall = {k: v for k, v in os.environ.items() if k != "CDC_T_PAGE_PW"}
r = subprocess.run([BIN, "status", "-c", YAML["a"]], capture_output=True, env=oncall)
out = r.stdout.decode("utf-8", "replace")
if r.returncode != 0:
    fail("status without the database password: exit %d\n%s" % (r.returncode, r.stderr.decode()))
log("status:\n" + out)
if b"\x1b" in r.stdout:
    fail("status printed a raw escape character")
if not re.search(r"^app-a +a +online ", out, re.M):
    fail("status does not show a online")
if not re.search(r"^app-b\\x1b\[31m +b +online ", out, re.M):
    fail("status does not show b online (through its recorded endpoint), escaped")
r = subprocess.run([BIN, "status", "-c", YAML["a"], "--json"], capture_output=True, text=True, env=oncall)
if r.returncode != 0:
    fail("status --json: %s" % r.stderr)
rows = {x["pipeline"]: x for x in json.loads(r.stdout)}
for name in ("a", "b"):
    d = status_doc(name)
    x = rows.get(name)
    if not x or x["status"] != "online" or x["application"] != d["application"] or \
            x["source"] != "mysql" or x["sink"] != "file" or x["latency_ms"] is None or \
            x["events"] < 20 or x["dead_letters"] != d["sink"].get("dead_letters", 0):
        fail("status --json row of %s: %s (daemon: %s)" % (name, x, d))
r = subprocess.run([BIN, "run", "-c", YAML["a"], "--state-dir", os.path.join(TMP, "other")],
                   capture_output=True, text=True, env=oncall, timeout=30)
if r.returncode != 78 or "CDC_T_PAGE_PW" not in r.stderr:
    fail("run without the password must stop (78) naming the variable: %d %s" % (r.returncode, r.stderr))

# ---- the page in a real browser ---------------------------------------------------
code, body = get("a", "/", auth=False)
if code != 401 or "Token required" not in body or TOKEN in body:
    fail("/ without a token: %d %s" % (code, body[:200]))
code, body = get("a", "/?token=" + TOKEN, auth=False)
if code != 400:
    fail("a token in the URL must be refused, got %d" % code)
code, body = get("a", "/status?access_token=" + TOKEN, auth=False)
if code != 400:
    fail("a token in the URL of /status must be refused, got %d" % code)
code, body = get("a", "/status", auth=False, cookie="autoglm_cdc_token=" + TOKEN)
if code != 200:
    fail("/status with the token cookie: %d" % code)
code, body = get("a", "/status", auth=False, cookie="autoglm_cdc_token=wrong")
if code != 401:
    fail("/status with a wrong cookie: %d" % code)
code, body = get("a", "/status/peers", auth=False)
if code != 401:
    fail("/status/peers without the token: %d" % code)
# the refresher samples every 2 s: its first sample may predate b's
# endpoint, so wait (bounded) for a sample that lists b
deadline = time.time() + 10
while True:
    code, body = get("a", "/status/peers", auth=False, cookie="autoglm_cdc_token=" + TOKEN)
    peers = json.loads(body) if code == 200 else {}
    if code != 200 or peers.get("rows") or time.time() > deadline:
        break
    time.sleep(0.2)
if code != 200 or [r["pipeline"] for r in peers.get("rows", [])] != ["b"] or not isinstance(peers.get("age_ms"), int):
    fail("/status/peers of a with the token cookie: %d %s" % (code, body[:500]))

ROWS_JS = ("JSON.stringify([...document.querySelectorAll('#status tbody tr')].map("
           "tr => [...tr.cells].map(td => td.textContent)))")


def page_rows(b):
    return json.loads(b.eval(ROWS_JS) or "[]")


def want_row(d):
    lat = "-" if d["latency_ms"] is None else "%d ms" % d["latency_ms"]
    err = (d["source"].get("error") or d["sink"].get("error") or "")
    return [d["application"], d["pipeline"], d["status"], d["last_sync_time"] or "-", lat,
            "%.1f s" % float(d["lag_seconds"]), None, str(d["sink"].get("dead_letters", 0)), err]


def check_rows(b, name, want, shot):
    """The page of daemon `name` shows one row per pipeline, its own
    first; each row equals that pipeline's /status (read just before and
    after), or for a pipeline whose daemon does not answer (want
    "unknown") says unknown with a reason.  want: pipeline -> status.
    Another pipeline's row is the daemon's background sample, at most
    2 s (refresh) + 1 s (request timeout) old: its lag, which grows while
    a source is down, may trail /status by that much; every other
    column must be equal."""
    def same(n, w, g):
        if n == name or w[5] == g[5]:
            return w[5] == g[5]
        try:
            return 0 <= float(w[5].split()[0]) - float(g[5].split()[0]) <= 3.5
        except ValueError:
            return False

    def settled():
        d0 = {n: status_doc(n) for n, st in want.items() if st != "unknown"}
        b.eval("refresh()")
        time.sleep(0.3)
        rows = page_rows(b)
        d1 = {n: status_doc(n) for n, st in want.items() if st != "unknown"}
        check_rows.last = rows
        if len(rows) != len(want) or rows[0][1] != name:
            return False
        got = {r[1]: r for r in rows}
        for n, st in want.items():
            row = got.get(n)
            if row is None:
                return False
            if st == "unknown":
                if row[2] != "unknown" or not row[8]:
                    return False
                continue
            if not any(d[n]["status"] == st and same(n, want_row(d[n]), row) and
                       all(w is None or w == g for i, (w, g) in enumerate(zip(want_row(d[n]), row)) if i != 5)
                       for d in (d0, d1)):
                return False
        return True
    check_rows.last = None
    wait_for("page rows of %s match /status (%s)" % (name, want), settled, 40)
    png = b.screenshot()
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 5000:
        fail("screenshot is not a PNG of the page (%d bytes)" % len(png))
    open(os.path.join(TMP, shot), "wb").write(png)
    log("%s: page rows %s; screenshot %s (%d bytes)" % (name, check_rows.last, shot, len(png)))
    return check_rows.last[0]


try:
    br = cdp.Browser(TMP)
except Exception as e:
    fail("cannot drive chromium: %s" % e)
try:
    br.goto("http://127.0.0.1:%d/" % HP["a"])
    if "Token required" not in (br.eval("document.body.innerText") or ""):
        fail("the browser without the cookie does not get the token form")
    for name in ("a", "b"):
        br.cookie("http://127.0.0.1:%d/" % HP[name], "autoglm_cdc_token", TOKEN)
    br.goto("http://127.0.0.1:%d/" % HP["a"])
    if TOKEN in br.eval("location.href"):
        fail("the token reached the URL")
    check_rows(br, "a", {"a": "online", "b": "online"}, "page_online.png")
    br.goto("http://127.0.0.1:%d/" % HP["b"])
    row = check_rows(br, "b", {"a": "online", "b": "online"}, "page_b.png")
    if row[0] != APP["b"]:
        fail("the page does not show b's application name as text: %r" % row[0])
    time.sleep(2.5)  # a refresh with a previous sample: throughput is a rate
    if not re.match(r"^\d+\.\d changes/s$", page_rows(br)[0][6]):
        fail("throughput is not a rate: %r" % page_rows(br)[0][6])

    # ---- monitoring kit --------------------------------------------------------
    code, scrape = get("a", "/metrics")
    open(os.path.join(TMP, "scrape.txt"), "w").write(scrape)
    r = subprocess.run(["promtool", "check", "metrics"], input=scrape, capture_output=True, text=True)
    if r.returncode:
        fail("promtool check metrics on a live scrape:\n%s%s" % (r.stdout, r.stderr))
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        r = subprocess.run(["promtool"] + args, cwd=ROOT + "/contrib/prometheus", capture_output=True, text=True)
        if r.returncode:
            fail("promtool %s:\n%s%s" % (" ".join(args), r.stdout, r.stderr))
    served = set(re.findall(r"^# TYPE (\S+)", scrape, re.M))
    declared = set("autoglm_cdc_" + m for m in re.findall(r'prom_head\(b, "([a-z_]+)"',
                                                           open(ROOT + "/cdc/metrics.c").read()))
    dash = json.load(open(ROOT + "/contrib/grafana/autoglm-cdc.json"))
    for k in ("title", "uid", "panels", "templating", "schemaVersion"):
        if k not in dash:
            fail("dashboard lacks %s" % k)
    ids, exprs = set(), []
    for p in dash["panels"]:
        if p["id"] in ids or not p.get("targets") or not p.get("title"):
            fail("dashboard panel %s: duplicate id, no title or no targets" % p.get("id"))
        ids.add(p["id"])
        g = p["gridPos"]
        if not (0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0):
            fail("dashboard panel %s: gridPos %s" % (p["id"], g))
        for t in p["targets"]:
            exprs.append((p["title"], t["expr"]))
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": "dashboard:q%d" % i, "expr": e.replace("$instance", ".*")} for i, (_, e) in enumerate(exprs)]}]}
    open(os.path.join(TMP, "dash_rules.yml"), "w").write(json.dumps(rules))
    r = subprocess.run(["promtool", "check", "rules", os.path.join(TMP, "dash_rules.yml")],
                       capture_output=True, text=True)
    if r.returncode:
        fail("a dashboard query does not parse:\n%s%s" % (r.stdout, r.stderr))
    for title, e in exprs:
        for m in re.findall(r"\b(autoglm_cdc_[a-z_]+)", e):
            if m not in served and m not in declared and m != "autoglm_cdc_dead_letters_total":
                fail("dashboard panel %r queries %s, which autoglm-cdc does not export" % (title, m))
    log("monitoring: scrape, %d alert rules, %d dashboard queries checked" % (6, len(exprs)))

    # ---- b's source down, a's up ---------------------------------------------------
    log("freezing b's link to MariaDB")
    proxy.freeze()
    wait_for("b offline", lambda: status_doc("b")["status"] == "offline", 60)
    if status_doc("a")["status"] != "online":
        fail("a went offline with b's source")
    check_rows(br, "b", {"a": "online", "b": "offline"}, "page_b_src_down.png")
    br.goto("http://127.0.0.1:%d/" % HP["a"])
    row = check_rows(br, "a", {"a": "online", "b": "offline"}, "page_a_peer_src_down.png")
    if not [r for r in page_rows(br) if r[1] == "b" and r[8]]:
        fail("a's page shows no error for b while b's source is down")

    # ---- b's daemon does not answer ---------------------------------------------
    bproc = PROCS[1]
    log("SIGSTOP b's daemon (pid %d)" % bproc.pid)
    os.kill(bproc.pid, signal.SIGSTOP)
    try:
        t0 = time.time()
        code, _ = get("a", "/status/peers")
        if code != 200 or time.time() - t0 > 2:
            fail("/status/peers of a: HTTP %d after %.1f s while b hangs" % (code, time.time() - t0))
        check_rows(br, "a", {"a": "online", "b": "unknown"}, "page_a_peer_hangs.png")
    finally:
        os.kill(bproc.pid, signal.SIGCONT)

    # ---- source down -------------------------------------------------------------
    log("SIGSTOP our MariaDB")
    os.kill(dbproc.pid, signal.SIGSTOP)
    for name in ("a", "b"):
        wait_for("%s offline" % name, lambda n=name: status_doc(n)["status"] == "offline", 60)
    br.goto("http://127.0.0.1:%d/" % HP["a"])
    row = check_rows(br, "a", {"a": "offline", "b": "offline"}, "page_offline.png")
    if not row[8]:
        fail("the page shows no error while the source is down")
    br.goto("http://127.0.0.1:%d/" % HP["b"])
    check_rows(br, "b", {"a": "offline", "b": "offline"}, "page_b_offline.png")
    r = subprocess.run([BIN, "status", "-c", YAML["a"]], capture_output=True, text=True, env=oncall)
    if not re.search(r"^app-a +a +offline ", r.stdout, re.M) or not re.search(r" b +offline ", r.stdout):
        fail("status while the source is down:\n" + r.stdout + r.stderr)
    os.kill(dbproc.pid, signal.SIGCONT)
except SystemExit:
    raise
except Exception as e:
    fail("%s: %s" % (type(e).__name__, e))
finally:
    br.close()

# ---- stop: records go, checkpoints stay ------------------------------------------
for p in PROCS:
    p.terminate()
    p.wait(30)
for name in ("a", "b"):
    if os.path.exists(os.path.join(STATE, name + ".daemon")):
        fail("%s.daemon stays after the daemon stopped" % name)
open(os.path.join(STATE, "c.daemon"), "w").write("url=http://127.0.0.1:%d\npid=999999\n" % freeport())
r = subprocess.run([BIN, "status", "-c", YAML["a"], "--json"], capture_output=True, text=True, env=oncall)
rows = {x["pipeline"]: x for x in json.loads(r.stdout or "[]")}
if r.returncode or rows.get("a", {}).get("status") != "offline" or rows.get("b", {}).get("status") != "offline" \
        or "stale" not in (rows.get("c", {}).get("error") or ""):
    fail("status after the stop: %s %s" % (r.stdout, r.stderr))
cleanup()
print("PASS")
