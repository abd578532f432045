# SPDX-License-Identifier: Apache-2.0
"""The ledger check of the fault tests: per key the exact sequence of values.

A workload writes, per key, the values 1, 2, 3, ... (an INSERT with 1,
then UPDATEs setting the next counter).  The ledger is what was committed
(key -> [1..n]).  What the pipeline delivered is read back in delivery
order as (key, value) pairs.  check() then asserts, per key:
  * nothing lost: every committed value was delivered;
  * order kept: the first deliveries of the values come in commit order;
  * nothing invented: no value that was never committed;
  * duplicates: only re-deliveries of values already delivered, as a
    replay of a window that was not yet acknowledged: a replay starts at
    or before the previous value and runs on in order, and a new value
    comes only once the replay has caught up (1 2 3 2 3 4 is fine,
    1 2 3 1 4 is not: it shows 1 after 3).  Counted, and refused when
    max_dups is given and exceeded.

    import ledger
    w = ledger.Workload(sql_writer, keys=50)   # sql_writer(list_of_sql)
    w.step(10)           # 10 changes in one transaction
    problems, dups = ledger.check(w.expected, pairs, max_dups=0)
"""
import json
import random
import threading
import time

import dblib


class Workload:
    """Per-key counters; step() commits n changes as one transaction
    through write(statements) and records them only once it returned."""

    def __init__(self, write, table="lt", keys=50, seed=None):
        self.write = write
        self.table = table
        self.keys = keys
        self.rnd = random.Random(dblib.test_seed() if seed is None else seed)
        self.expected = {}

    def step(self, n=1):
        pend = {}
        stmts = []
        for _ in range(n):
            k = self.rnd.randint(1, self.keys)
            c = pend.get(k, len(self.expected.get(k, ()))) + 1
            pend[k] = c
            if c == 1:
                stmts.append("INSERT INTO %s (id, v) VALUES (%d, %d)" % (self.table, k, c))
            else:
                stmts.append("UPDATE %s SET v = %d WHERE id = %d" % (self.table, c, k))
        self.write(stmts)
        for k, c in pend.items():
            have = self.expected.setdefault(k, [])
            have.extend(range(len(have) + 1, c + 1))

    def run_for(self, secs):
        """Transactions of 1-5 changes, back to back, for secs seconds."""
        end = time.time() + secs
        while time.time() < end:
            self.step(self.rnd.randint(1, 5))

    def in_background(self, pause=0.01):
        """Transactions of 1-5 changes in a thread until the returned
        function is called (which waits for the thread)."""
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                self.step(self.rnd.randint(1, 5))
                time.sleep(pause)

        t = threading.Thread(target=loop)
        t.start()

        def halt():
            stop.set()
            t.join()
        return halt

    def total(self):
        return sum(len(v) for v in self.expected.values())


def pairs_from_envelopes(lines, key="id", col="v"):
    """(key, value) per change from JSON-lines envelopes (autoglm format),
    deletes skipped; a last line still being written is left out."""
    out = []
    for line in lines:
        if not line.endswith("\n"):
            break
        line = line.strip()
        if not line:
            continue
        e = json.loads(line)
        p = e.get("payload", e)
        after = p.get("after")
        if after is None:
            continue
        out.append((int(after[key]), int(after[col])))
    return out


def check(expected, pairs, max_dups=None):
    """Returns (problems, duplicates): problems is a list of strings,
    empty when the ledger holds."""
    got = {}
    for k, v in pairs:
        got.setdefault(k, []).append(v)
    problems = []
    dups = 0
    for k in sorted(set(expected) | set(got)):
        want = expected.get(k, [])
        seen = []
        have = set()
        prev = top = 0
        bad = None
        for v in got.get(k, []):
            if v in have:
                dups += 1
                if not (v <= prev or v == prev + 1) and bad is None:
                    bad = "replay jumps from %d to %d" % (prev, v)
            else:
                if prev != top and bad is None:
                    bad = "new value %d before the replay caught up (at %d of %d)" % (v, prev, top)
                have.add(v)
                seen.append(v)
                top = max(top, v)
            prev = v
        if bad:
            problems.append("key %d: %s" % (k, bad))
        if seen == want:
            continue
        lost = [v for v in want if v not in have]
        extra = sorted(have - set(want))
        if lost:
            problems.append("key %d: lost %d value(s), first %s" % (k, len(lost), lost[:5]))
        if extra:
            problems.append("key %d: values never committed: %s" % (k, extra[:5]))
        if not lost and not extra:
            problems.append("key %d: order broken: %s" % (k, seen[:20]))
    if max_dups is not None and dups > max_dups:
        problems.append("%d duplicate deliveries (at most %d allowed)" % (dups, max_dups))
    return problems, dups
