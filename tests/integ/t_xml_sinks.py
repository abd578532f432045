#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""--format xml through the file and Kafka sinks (MariaDB -> autoglm-cdc;
tests/services.sh up mariadb kafka).

The workload's strings carry quotes, '<tag>&amp;', backslashes and
non-ASCII text.  For each sink:
  * every document is well-formed: xmllint reads each one on its own;
  * one document per message: a Kafka message value is exactly one
    document, a file line is exactly one document;
  * names and values mapped by xml.root / xml.names / xml.values;
  * every change once, in order per key, and the state rebuilt from the
    documents equals SELECT, value for value.
The file sink is also killed with SIGKILL mid-run: the rerun leaves a file
whose every line is still a complete document.
"""
import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET

import dblib
import sinklib
from dblib import E, fail, log

dblib.need("MYSQL_PORT", "KAFKA_BOOTSTRAP", what="MariaDB and Kafka", tools=("xmllint", "kcat"))
PID = os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-xml.")
procs, dbs = [], []
dblib.on_fail(lambda: dblib.cleanup(procs, TMP, my_dbs=dbs), logdir=TMP)
XML_ARGS = ["--format", "xml", "-X", "xml.root={table}", "-X", "xml.names=id=rowId,kt.s=label",
            "-X", "xml.values=v:1=first"]


def cdc(w, name, sink_args, idle=2500):
    cmd = sinklib.cdc_cmd(w, name, os.path.join(TMP, "state"), sink_args + XML_ARGS)
    if idle is None:
        return cmd
    with open(os.path.join(TMP, name + ".log"), "ab") as f:
        return subprocess.run(cmd + ["--idle-exit", str(idle)], stdout=f, stderr=f, timeout=180).returncode


def xmllint_all(docs, what):
    """xmllint on every document, each in its own file (one call)."""
    d = tempfile.mkdtemp(dir=TMP)
    files = []
    for i, doc in enumerate(docs):
        p = os.path.join(d, "%06d.xml" % i)
        with open(p, "wb") as f:
            f.write(doc)
        files.append(p)
    for i in range(0, len(files), 500):
        r = subprocess.run(["xmllint", "--noout"] + files[i:i + 500], capture_output=True, text=True)
        if r.returncode:
            fail("%s: xmllint rejects documents: %s" % (what, r.stderr[:1500]))


def check_docs(docs, w, what):
    """Per key order and the state rebuilt from the documents = SELECT."""
    xmllint_all(docs, what)
    state, lastv, seen = {}, {}, set()
    for raw in docs:
        doc = ET.fromstring(raw)
        if doc.tag != "kt" or doc.get("db") != w.db:
            fail("%s: root %s db %s" % (what, doc.tag, doc.get("db")))
        pos = doc.get("position")
        if pos in seen:
            continue  # a replay after a kill: the same change again
        seen.add(pos)
        op = doc.get("op")
        img = doc.find("before" if op == "delete" else "after")
        k = int(img.find("rowId").text)
        if op == "delete":
            state.pop(k, None)
            lastv[k] = 0
            continue
        vt = img.find("v").text
        v = 1 if vt == "first" else int(vt)
        if v != lastv.get(k, 0) + 1:
            fail("%s: key %d: v=%d after v=%d" % (what, k, v, lastv.get(k, 0)))
        lastv[k] = v
        d = img.find("d")
        state[k] = (v, img.find("label").text or "", None if d.get("null") == "true" else d.text)
    if len(seen) != w.changes:
        fail("%s: %d distinct changes, the workload made %d" % (what, len(seen), w.changes))
    want = w.select()
    if state != want:
        bad = [(k, state.get(k), want.get(k)) for k in sorted(set(state) | set(want))
               if state.get(k) != want.get(k)][:3]
        fail("%s: state from the documents differs from SELECT: %s" % (what, bad))
    if not any(b">first<" in raw for raw in docs):
        fail("%s: value mapping v:1=first never applied" % what)
    log("%s: %d documents (%d changes) pass xmllint; state equals SELECT" % (what, len(docs), len(seen)))


def one_doc(raw, what):
    if raw.count(b"<?xml") != 1 or not raw.startswith(b"<?xml"):
        fail("%s: not exactly one document: %r" % (what, raw[:200]))


# ---- file sink ----------------------------------------------------------------------
db = "xmlf_%d" % PID
dbs.append(db)
w = sinklib.Workload(db, seed=31)
out = os.path.join(TMP, "changes.xml")
cmd = cdc(w, "xmlfile", ["--sink", "file", "-X", "output=" + out], idle=None)
ckpts = sinklib.kill9_loop(cmd, w, os.path.join(TMP, "state", "xmlfile.ckpt"),
                           os.path.join(TMP, "xmlfile.log"), procs, kills=2, seed=7)
w.batch(300)
if cdc(w, "xmlfile", ["--sink", "file", "-X", "output=" + out]):
    fail("file: the final run failed")
lines = open(out, "rb").read().split(b"\n")
if lines[-1] != b"":
    fail("file: the last line is not complete")
docs = lines[:-1]
for i, l in enumerate(docs):
    one_doc(l, "file line %d" % (i + 1))
check_docs(docs, w, "xml file (%d kills)" % len(ckpts))

# ---- Kafka sink ---------------------------------------------------------------------
db = "xmlk_%d" % PID
dbs.append(db)
w = sinklib.Workload(db, seed=32)
w.run(1500)
topic = "xmlk%d" % PID
if cdc(w, "xmlkafka", ["--sink", "kafka", "-X", "kafka.brokers=" + E["KAFKA_BOOTSTRAP"],
                       "-X", "kafka.topic=" + topic]):
    fail("kafka: autoglm-cdc failed")
r = subprocess.run(["kcat", "-b", E["KAFKA_BOOTSTRAP"], "-C", "-t", topic, "-o", "beginning", "-e", "-q",
                    "-f", "%S\n%s"], capture_output=True)
if r.returncode:
    fail("kcat: %s" % r.stderr.decode(errors="replace"))
docs, buf = [], r.stdout
while buf:
    n, _, rest = buf.partition(b"\n")
    n = int(n)
    docs.append(rest[:n])
    buf = rest[n:]
for i, d in enumerate(docs):
    one_doc(d, "kafka message %d" % i)
check_docs(docs, w, "xml kafka")

dblib.cleanup(procs, TMP, my_dbs=dbs)
print("PASS")
