# SPDX-License-Identifier: Apache-2.0
"""What the fault tests share: waiting, /readyz, and the half-open-link
scenario run against any source (t_fault_*_halfopen.py).

    import faultlib
    hport = faultlib.free_port()
    code, body = faultlib.readyz(hport)
    faultlib.wait("what", cond, secs)            # cond() truthy -> its value
    faultlib.halfopen(proxy, start_cdc, write, limit_s, reason, out, tmp)
"""
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

from dblib import BUILD, fail, free_port, log  # noqa: F401 (free_port: for the tests)
import ledger


def scratch(name):
    """A scratch directory under the build tree (not /tmp, which other
    jobs on a shared machine may sweep while a test runs)."""
    import tempfile
    base = os.path.join(BUILD, "integ-scratch")
    os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix=name + ".", dir=base)


class AckWriter:
    """One client session (argv: mariadb -N -B ... or psql -At ...);
    write(stmts) commits them as one transaction and returns once the
    server acknowledged the COMMIT (a SELECT after it answered), so a
    ledger only holds transactions known to be committed."""

    def __init__(self, argv, procs=None):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if procs is not None:
            procs.append(self.p)
        self.n = 0

    def write(self, stmts):
        self.n += 1
        try:
            self.p.stdin.write("BEGIN;%s;COMMIT;SELECT %d;\n" % (";".join(stmts), self.n))
            self.p.stdin.flush()
        except BrokenPipeError:
            fail("writer: the client exited %s" % self.p.wait())
        line = self.p.stdout.readline().strip()
        if line != str(self.n):
            fail("writer: expected ack %d, got %r" % (self.n, line))

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def readyz(hport):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % hport, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def wait(what, cond, secs, every=0.05):
    end = time.time() + secs
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(every)
    fail("timed out after %ds waiting for %s" % (secs, what))


def delivered(out):
    if not os.path.exists(out):
        return []
    with open(out) as f:
        return ledger.pairs_from_envelopes(f)


def go_on_after_failover(w, writer, cdc, out, timeout, what):
    """After a promotion: the workload w goes on for 2 s through writer
    (an AckWriter on the new primary); then every change must be delivered
    while cdc keeps running.  Returns the number of changes."""
    w.write = writer.write
    w.run_for(2)
    writer.close()
    total = w.total()
    wait("all %d changes delivered" % total,
         lambda: cdc.poll() is not None or len(delivered(out)) >= total, timeout)
    if cdc.poll() is not None:
        fail("%s: autoglm-cdc exited %d instead of going on with the new primary" % (what, cdc.returncode))
    return total


def halfopen(proxy, cdc, hport, write, limit_s, reason, out, logpath, max_dups=0):
    """The scenario: cdc (a running autoglm-cdc whose source goes through
    proxy, serving /readyz on hport, writing envelopes to out) sees a
    workload (write(stmts) commits one transaction); the proxy freezes
    the link; /readyz must turn 503 with `reason` in its body within
    limit_s; after a thaw the pipeline must recover and deliver every
    change once, per key in order.  Returns (detection seconds, changes)."""
    def up():
        if cdc.poll() is not None:
            fail("autoglm-cdc exited %d during start-up" % cdc.returncode)
        return readyz(hport)[0] == 200
    wait("/readyz 200", up, 60)
    w = ledger.Workload(write, keys=40)
    halt = w.in_background()
    try:
        time.sleep(2)
        proxy.freeze()
        t0 = time.time()
        log("link frozen (no FIN)")

        def silent():
            r = readyz(hport)
            return r if r[0] == 503 and reason in r[1] else None
        code, body = wait("/readyz 503 naming the silent link", silent, limit_s + 10)
        detect = time.time() - t0
        log("detected after %.2f s: %s" % (detect, body.strip()))
        if detect > limit_s:
            fail("half-open link detected after %.2f s, limit %.1f s" % (detect, limit_s))
        time.sleep(1.5)                 # reconnect attempts meet a dead path, too
        proxy.thaw()
        t1 = time.time()
        wait("/readyz 200 after the path works again", lambda: readyz(hport)[0] == 200, 60)
        log("recovered %.2f s after the thaw" % (time.time() - t1))
        time.sleep(1.5)
    finally:
        halt()
    total = w.total()
    wait("all %d changes delivered" % total, lambda: len(delivered(out)) >= total, 60)
    time.sleep(1)
    cdc.send_signal(signal.SIGTERM)
    if cdc.wait(30) != 0:
        fail("autoglm-cdc exited %d" % cdc.returncode)
    problems, dups = ledger.check(w.expected, delivered(out), max_dups=max_dups)
    if problems:
        fail("ledger: " + "; ".join(problems[:10]))
    text = open(logpath, errors="replace").read()
    if "silent" not in text:
        fail("the log does not mention the silent link")
    log("half-open link: detected in %.2f s (limit %.1f s), %d changes on %d keys, "
        "none lost, %d duplicate(s)" % (detect, limit_s, total, len(w.expected), dups))
    return detect, total
