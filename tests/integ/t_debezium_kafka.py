#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""--format debezium from the real MariaDB into the real Kafka broker.

A table of every MySQL column type gets a seeded random workload (inserts,
updates, primary-key changes, deletes, zero dates, YEAR 0, BIGINT UNSIGNED
above 2^63-1); `autoglm-cdc --sink kafka --format debezium` streams it into
a 6-partition topic; kcat reads it back with partitions and headers.
Checked, with the expected values computed here from SELECT on the source
(days with datetime.date, µs with datetime, Decimal bytes with
int.to_bytes, SET as "a,c", BIT little-endian, JSON as a string):
  * per key the last after-image equals the row (deleted keys end with a
    'd' and a tombstone);
  * every primary-key change is d + tombstone under the old key with
    header __debezium.newkey, then c under the new key with
    __debezium.oldkey;
  * every message's partition is Java's murmur2(key) (computed here) --
    and with -X kafka.partitioner=consistent it is CRC32(key) instead;
  * the envelope and source field order is Debezium's.
Environment: CDC_BUILD, CDC_SVC_ENV, CDC_TEST_SEED, CDC_DBZ_ROWS (default 300).
"""

import base64
import datetime
import decimal
import json
import os
import random
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dblib  # noqa: E402

ENV = dblib.E
dblib.need("MYSQL_PORT", "KAFKA_BOOTSTRAP", what="mariadb and kafka", tools=("kcat", "java"))
CDC = dblib.BIN
SEED = dblib.test_seed()
ROWS = int(os.environ.get("CDC_DBZ_ROWS", "300"))
NPART = 6
DB = "cdc_dbz_%d" % os.getpid()
APP = "dbz%d" % os.getpid()
rnd = random.Random(SEED)

TOP = ["before", "after", "source", "transaction", "op", "ts_ms", "ts_us", "ts_ns"]
SRC = ["version", "connector", "name", "ts_ms", "snapshot", "db", "sequence", "ts_us",
       "ts_ns", "table", "server_id", "gtid", "file", "pos", "row", "thread", "query"]

COLS = [  # name, DDL, generator
    ("ti", "TINYINT", lambda: rnd.randint(-128, 127)),
    ("su", "SMALLINT UNSIGNED", lambda: rnd.randint(0, 65535)),
    ("mi", "MEDIUMINT", lambda: rnd.randint(-8388608, 8388607)),
    ("iu", "INT UNSIGNED", lambda: rnd.randint(0, 4294967295)),
    ("bi", "BIGINT", lambda: rnd.randint(-2**63, 2**63 - 1)),
    ("bu", "BIGINT UNSIGNED", lambda: rnd.choice([rnd.randint(0, 2**64 - 1), 2**64 - 1, 2**63])),
    ("fl", "FLOAT", lambda: rnd.choice([1.5, -0.25, 1e20, 3.0])),
    ("db", "DOUBLE", lambda: rnd.uniform(-1e6, 1e6)),
    ("de", "DECIMAL(20,6)", lambda: "%s%d.%06d" % (rnd.choice(["", "-"]), rnd.randint(0, 10**14 - 1), rnd.randint(0, 999999))),
    ("d", "DATE", lambda: rnd.choice(["0000-00-00", "%04d-%02d-%02d" % (rnd.randint(1000, 9999), rnd.randint(1, 12), rnd.randint(1, 28))])),
    ("dt6", "DATETIME(6)", lambda: "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (rnd.randint(1000, 9999), rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23), rnd.randint(0, 59), rnd.randint(0, 59), rnd.randint(0, 999999))),
    ("dt0", "DATETIME", lambda: rnd.choice(["0000-00-00 00:00:00", "%04d-%02d-%02d %02d:%02d:%02d" % (rnd.randint(1000, 9999), rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23), rnd.randint(0, 59), rnd.randint(0, 59))])),
    ("tm3", "TIME(3)", lambda: "%s%d:%02d:%02d.%03d" % (rnd.choice(["", "-"]), rnd.randint(0, 838), rnd.randint(0, 59), rnd.randint(0, 59), rnd.randint(0, 999))),
    ("ts3", "TIMESTAMP(3) NULL", lambda: "20%02d-%02d-%02d %02d:%02d:%02d.%03d" % (rnd.randint(1, 37), rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23), rnd.randint(0, 59), rnd.randint(0, 59), rnd.randint(0, 999))),
    ("yr", "YEAR", lambda: rnd.choice([0, rnd.randint(1901, 2155)])),
    ("vc", "VARCHAR(40)", lambda: rnd.choice(["", "héllo", "a\"b\\c", "x" * rnd.randint(1, 40)])),
    ("tx", "TEXT", lambda: "t%d" % rnd.randint(0, 10**9)),
    ("vb", "VARBINARY(16)", lambda: bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 16)))),
    ("bl", "BLOB", lambda: bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 40)))),
    ("en", "ENUM('x','y','z')", lambda: rnd.choice("xyz")),
    ("st", "SET('a','b','c')", lambda: ",".join(m for m in "abc" if rnd.random() < 0.5)),
    ("b10", "BIT(10)", lambda: rnd.randint(0, 1023)),
    ("b1", "BIT(1)", lambda: rnd.randint(0, 1)),
    ("js", "JSON", lambda: json.dumps({"k": rnd.randint(0, 99), "a": [1, "x"]})),
]


def sql_lit(v):
    if v is None:
        return "NULL"
    if isinstance(v, bytes):
        return "0x" + v.hex() if v else "''"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    return "'" + v.replace("\\", "\\\\").replace("'", "''") + "'"


def murmur2(data):
    """Kafka's Java murmur2 (org.apache.kafka.common.utils.Utils)."""
    m, r, n = 0x5bd1e995, 24, len(data)
    h = (0x9747b28c ^ n) & 0xFFFFFFFF
    i = 0
    while n - i >= 4:
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
        i += 4
    rest = n - i
    if rest == 3:
        h ^= data[i + 2] << 16
    if rest >= 2:
        h ^= data[i + 1] << 8
    if rest >= 1:
        h ^= data[i]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def java_partition(key):
    return (murmur2(key) & 0x7FFFFFFF) % NPART


EPOCH = datetime.datetime(1970, 1, 1)


def expect(col, v):
    """The Debezium value (default modes) of a SELECTed column text."""
    if v is None:
        return None
    name = col
    if name in ("ti", "su", "mi", "iu", "bi", "bu", "yr"):
        return int(v)
    if name in ("fl", "db"):
        return float(v)
    if name == "de":
        d = decimal.Decimal(v)
        u = int(d.scaleb(6))
        nb = max(1, (u.bit_length() + 8) // 8)
        return base64.b64encode(u.to_bytes(nb, "big", signed=True)).decode()
    if name == "d":
        if v.startswith("0000"):
            return None
        return (datetime.date.fromisoformat(v) - datetime.date(1970, 1, 1)).days
    if name in ("dt6", "dt0"):
        if v.startswith("0000"):
            return None
        dt = datetime.datetime.strptime(v, "%Y-%m-%d %H:%M:%S.%f" if "." in v else "%Y-%m-%d %H:%M:%S")
        delta = dt - EPOCH
        us = (delta.days * 86400 + delta.seconds) * 10**6 + delta.microseconds
        return us if name == "dt6" else us // 1000
    if name == "tm3":
        neg = v.startswith("-")
        h, m, s = v.lstrip("-").split(":")
        us = (int(h) * 3600 + int(m) * 60) * 10**6 + int(decimal.Decimal(s) * 10**6)
        return -us if neg else us
    if name == "ts3":  # selected in UTC
        return v.replace(" ", "T") + "Z"
    if name in ("vb", "bl"):
        return base64.b64encode(bytes.fromhex(v)).decode()
    if name == "b10":
        return base64.b64encode(int(v).to_bytes(2, "little")).decode()
    if name == "b1":
        return int(v) == 1
    if name == "js":
        return ("json", json.loads(v))
    return v


def insert_sql(nid, cols, lit=sql_lit, q="`"):
    return "INSERT INTO t (id, %s) VALUES (%d, %s)" % (
        ", ".join(q + c[0] + q for c in cols), nid, ", ".join(lit(c[2]()) for c in cols))


def workload(ids, n, cols, lit=sql_lit, q="`"):
    """n random statements over table t (ids: the live keys, updated):
    inserts, updates of a random column, primary-key changes, deletes.
    lit makes a generated value SQL; q quotes names (MariaDB: `)."""
    stmts = []
    for i in range(n):
        r = rnd.random()
        if r < 0.6 or not ids:
            nid = max(ids + [0]) + 1 + rnd.randint(0, 3)
            ids.append(nid)
            stmts.append(insert_sql(nid, cols, lit, q))
        elif r < 0.8:
            c = rnd.choice(cols)
            stmts.append("UPDATE t SET %s%s%s=%s WHERE id=%d" % (q, c[0], q, lit(c[2]()), rnd.choice(ids)))
        elif r < 0.9:
            old = rnd.choice(ids)
            nid = max(ids) + 1
            ids[ids.index(old)] = nid
            stmts.append("UPDATE t SET id=%d WHERE id=%d" % (nid, old))
        else:
            old = rnd.choice(ids)
            ids.remove(old)
            stmts.append("DELETE FROM t WHERE id=%d" % old)
    return stmts


def select_rows(cols, db=None):
    exprs = ["id"]
    for name, ddl, _ in cols:
        if name in ("vb", "bl"):
            exprs.append("HEX(`%s`)" % name)
        elif name in ("b10", "b1"):
            exprs.append("`%s`+0" % name)
        else:
            exprs.append("`%s`" % name)
    out = dblib.my("SET time_zone='+00:00'; SELECT %s FROM t ORDER BY id" % ",".join(exprs), db or DB)
    rows = {}
    for line in out.splitlines():
        f = [None if x == "NULL" else x for x in line.split("\t")]
        rows[int(f[0])] = {cols[i][0]: f[i + 1] for i in range(len(cols))}
    return rows


def kcat(topic):
    p = subprocess.run(["kcat", "-C", "-b", ENV["KAFKA_BOOTSTRAP"], "-t", topic, "-o", "beginning",
                        "-e", "-q", "-J"], capture_output=True, text=True, timeout=60)
    if p.returncode:
        dblib.fail("kcat %s: %s" % (topic, p.stderr))
    return [json.loads(line) for line in p.stdout.splitlines()]


def create_topic(topic):
    subprocess.run(["java", "-Xmx256m", "-Dlog4j.configuration=file:%s/tools-log4j.properties" % ENV["KAFKA_DIR"],
                    "-cp", ENV["KAFKA_JARS"] + "/*", "org.apache.kafka.tools.TopicCommand",
                    "--bootstrap-server", ENV["KAFKA_BOOTSTRAP"], "--create", "--if-not-exists",
                    "--topic", topic, "--partitions", str(NPART), "--replication-factor", "1"],
                   check=True, stdout=subprocess.DEVNULL)


def run_cdc(tmp, app, start, extra, sid):
    cmd = [CDC, "--source", "mysql", "--mysql-dsn", "mysql://%s:%s@%s:%s" % (
        ENV["MYSQL_ROOT_USER"], ENV["MYSQL_ROOT_PASSWORD"], ENV["MYSQL_HOST"], ENV["MYSQL_PORT"]),
        "--from", start, "--sink", "kafka", "--kafka-brokers", ENV["KAFKA_BOOTSTRAP"],
        "--format", "debezium", "--application-id", app, "--state-dir", os.path.join(tmp, app),
        "-X", "mysql.server_id=%d" % (1000 + os.getpid() % 1000 + sid), "--idle-exit", "3000"] + extra
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode:
        dblib.fail("autoglm-cdc failed (%d): %s" % (p.returncode, p.stderr[-3000:]))


def main():
    if not os.access(CDC, os.X_OK):
        dblib.fail("%s not built" % CDC)
    tmp = tempfile.mkdtemp(prefix="t_dbz_")
    dblib.my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s" % (DB, DB))
    dblib.my("CREATE TABLE t (id INT PRIMARY KEY, %s)" %
             ", ".join("`%s` %s" % (n, d) for n, d, _ in COLS), DB)
    pos = dblib.my("SHOW BINLOG STATUS").split("\t")
    start = "%s:%s" % (pos[0], pos[1].strip())
    # a table without a primary key: Debezium sends no key (and so no tombstone)
    dblib.my("CREATE TABLE nk (a INT, b VARCHAR(5))", DB)
    stmts = ["INSERT INTO nk VALUES (1, 'x'), (2, 'y')", "DELETE FROM nk WHERE a = 1"]
    stmts += workload([], ROWS, COLS)
    dblib.my("SET sql_mode='NO_ENGINE_SUBSTITUTION'; SET time_zone='+00:00'; " + "; ".join(stmts), DB)
    rows = select_rows(COLS)
    ntx = len(stmts)

    topic = "%s.%s.t" % (APP, DB)
    create_topic(topic)
    run_cdc(tmp, APP, start, ["--max-txns", str(ntx)], 0)
    nk = kcat("%s.%s.nk" % (APP, DB))
    if [(m["key"], json.loads(m["payload"])["op"]) for m in nk] != [(None, "c"), (None, "c"), (None, "d")]:
        dblib.fail("keyless table: %s" % [(m["key"], m["payload"]) for m in nk])
    msgs = kcat(topic)
    dblib.log("%d statements -> %d messages" % (ntx, len(msgs)))
    bad = 0
    last = {}
    keychanges = 0
    pending, created = {}, {}
    for n, m in enumerate(msgs):
        key = m["key"].encode()
        if m["partition"] != java_partition(key):
            dblib.fail("message %d key %s: partition %d, Java's murmur2 gives %d" %
                       (n, m["key"], m["partition"], java_partition(key)))
        k = json.loads(m["key"])["id"]
        if m["payload"] is None:
            if last.get(k, (None,))[0] != "d":
                dblib.fail("tombstone for %s not after a delete" % k)
            last[k] = ("T", None)
            continue
        env = json.loads(m["payload"])
        if list(env) != TOP or list(env["source"]) != SRC:
            dblib.fail("field order: %s / %s" % (list(env), list(env["source"])))
        hdrs = dict(zip((m.get("headers") or [])[::2], (m.get("headers") or [])[1::2]))
        if env["op"] == "d" and "__debezium.newkey" in hdrs:
            nk = json.loads(hdrs["__debezium.newkey"])["id"]
            # same key, same partition: the very next message is the tombstone
            t1 = msgs[n + 1] if n + 1 < len(msgs) else None
            if not t1 or t1["payload"] is not None or json.loads(t1["key"])["id"] != k:
                dblib.fail("key change %s->%s: no tombstone under the old key" % (k, nk))
            pending[(k, nk)] = pending.get((k, nk), 0) + 1
            keychanges += 1
        if env["op"] == "c" and "__debezium.oldkey" in hdrs:
            ok_ = json.loads(hdrs["__debezium.oldkey"])["id"]
            created[(ok_, k)] = created.get((ok_, k), 0) + 1
        last[k] = (env["op"], env["after"])
    for k, (op, after) in last.items():
        if k not in rows:
            if op != "T":
                dblib.fail("deleted key %s ends with %s, not a tombstone" % (k, op))
            continue
        for name, _, _ in COLS:
            want, got = expect(name, rows[k][name]), after.get(name)
            if isinstance(want, tuple):
                ok = isinstance(got, str) and json.loads(got) == want[1]
            elif isinstance(want, float):
                ok = isinstance(got, (int, float)) and (got == want or abs(got - want) <= abs(want) * 1e-6)
            else:
                ok = got == want
            if not ok:
                bad += 1
                if bad < 10:
                    dblib.log("id %s %s: got %r, want %r (source %r)" % (k, name, got, want, rows[k][name]))
    if pending != created:
        dblib.fail("key changes: deletes with newkey %s, creates with oldkey %s" % (pending, created))
    missing = set(rows) - set(last)
    if bad or missing:
        dblib.fail("%d value mismatches, %d rows without messages" % (bad, len(missing)))
    if not keychanges:
        dblib.fail("the workload had no primary-key change")
    dblib.log("%d rows equal, %d key changes, all partitions = Java murmur2" % (len(rows), keychanges))

    # -X kafka.partitioner overrides: consistent = CRC32 % partitions
    app2 = APP + "c"
    topic2 = "%s.%s.t" % (app2, DB)
    create_topic(topic2)
    run_cdc(tmp, app2, start, ["--max-txns", str(ntx), "-X", "kafka.partitioner=consistent"], 5000)
    for m in kcat(topic2):
        want = zlib.crc32(m["key"].encode()) % NPART
        if m["partition"] != want:
            dblib.fail("partitioner=consistent: key %s on %d, CRC32 gives %d" % (m["key"], m["partition"], want))
    dblib.log("kafka.partitioner override ok")

    # transaction metadata: BEGIN/END per transaction on <app>.transaction,
    # and every event's transaction block counts within it
    app3 = APP + "t"
    run_cdc(tmp, app3, start, ["--max-txns", str(ntx), "-X", "debezium.provide.transaction.metadata=true"], 6000)
    events = [json.loads(m["payload"]) for m in kcat("%s.%s.t" % (app3, DB)) if m["payload"]]
    txmsgs = kcat(app3 + ".transaction")
    by_id = {}
    for e in events:
        by_id.setdefault(e["transaction"]["id"], []).append(e)
    begins = [json.loads(m["payload"]) for m in txmsgs if json.loads(m["payload"])["status"] == "BEGIN"]
    ends = {json.loads(m["payload"])["id"]: json.loads(m["payload"]) for m in txmsgs
            if json.loads(m["payload"])["status"] == "END"}
    # (an UPDATE that changes nothing writes no transaction)
    ends_t = {i for i, e in ends.items() if e["data_collections"][0]["data_collection"] == "%s.t" % DB}
    if len(begins) != len(ends) or ends_t != set(by_id) or len(by_id) < (ntx - 2) * 0.9:
        dblib.fail("transaction topic: %d BEGIN, %d END for %d transactions (%d ids in events)" %
                   (len(begins), len(ends), ntx, len(by_id)))
    for tid, evs in by_id.items():
        gtid = evs[0]["source"]["gtid"]
        orders = sorted(e["transaction"]["total_order"] for e in evs)
        dco = sorted(e["transaction"]["data_collection_order"] for e in evs)
        end = ends[tid]
        # a key change is one row change written as two events (d, c)
        nrows = len(evs) - sum(1 for e in evs if e["op"] == "c" and e["before"] is None and
                               any(x["op"] == "d" for x in evs))
        if tid != gtid or end["event_count"] != nrows or \
                end["data_collections"] != [{"data_collection": "%s.t" % DB, "event_count": nrows}] or \
                orders[0] != 1 or dco[0] != 1 or json.loads([m["key"] for m in txmsgs
                                                             if json.loads(m["payload"])["id"] == tid][0])["id"] != tid:
            dblib.fail("transaction %s: events %s, END %s" % (tid, [e["transaction"] for e in evs], end))
    dblib.log("transaction metadata ok (%d transactions)" % len(by_id))
    dblib.my("DROP DATABASE %s" % DB)
    print("PASS")


if __name__ == "__main__":
    main()
