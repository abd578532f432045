# SPDX-License-Identifier: Apache-2.0
"""Helpers of the big-transaction tests (t_bigtxn_*): peak memory of a
running pipeline, read from /proc/<pid>/status, and envelope checks."""
import json
import threading
import time

from dblib import fail


class PeakRSS:
    """Samples VmHWM (the kernel's high-water mark of the resident set) of
    a process every 20 ms while it lives; .kb is the last value read, which
    is the peak up to that moment."""

    def __init__(self, proc):
        self.proc = proc
        self.kb = 0
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        path = "/proc/%d/status" % self.proc.pid
        while self.proc.poll() is None:
            try:
                for line in open(path):
                    if line.startswith("VmHWM:"):
                        self.kb = max(self.kb, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(0.02)

    def mb(self):
        self._t.join(timeout=5)
        return self.kb / 1024.0


def check_peaks(what, small, big, nsmall, nbig, limit_mb=96.0):
    """The peak of the big run is at most limit_mb and does not scale with
    the transaction: nbig/nsmall times the rows may cost at most 25% (plus
    6 MB of noise) over the small run's peak, where memory that grows with
    the transaction would multiply it."""
    if small <= 0 or big <= 0:
        fail("%s: no VmHWM read (%.1f, %.1f MB)" % (what, small, big))
    if big > limit_mb or small > limit_mb:
        fail("%s: peak RSS %.1f MB (%d rows) / %.1f MB (%d rows), limit %.0f MB"
             % (what, small, nsmall, big, nbig, limit_mb))
    if big > small * 1.25 + 6.0:
        fail("%s: peak RSS grows with the transaction: %.1f MB at %d rows, %.1f MB at %d rows"
             % (what, small, nsmall, big, nbig))


def envelopes(lines):
    """(ident, envelope) per line; ident = (file, pos, row) for MySQL, (lsn,
    row-in-txn index order) is not unique for PostgreSQL, so there the key
    and the after image are used by the callers."""
    for line in lines:
        if line.strip():
            env = json.loads(line)
            s = env["source"]
            yield (s.get("file"), s.get("pos"), s.get("row")), env
