#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Our --format debezium topics read by real Kafka Connect consumers.

Kafka Connect 3.9.1 (the test broker's version) runs standalone from the
broker's jars, with the plugins of tests/kafka/connect/pom.xml (Maven
Central): FileStreamSink and Debezium's JDBC sink 3.4.0.Final.

  1. MariaDB: a table of every MySQL column type gets a random workload,
     an ALTER TABLE ADD COLUMN, and more workload (inserts, updates,
     primary-key changes, deletes); autoglm-cdc writes it twice, with
     debezium.schemas true and false.
  2. PostgreSQL: a table of the common PG types gets a workload;
     autoglm-cdc (schemas true) writes it.
  3. Connect reads all of it:
     (a) FileStreamSink with JsonConverter schemas.enable=true and =false
         writes one line per message: every message converts;
     (b) Debezium's JDBC sink (insert.mode=upsert, primary.key.mode=
         record_key, delete.enabled=true, schema.evolution=basic) writes
         the MariaDB and the PostgreSQL topic into PostgreSQL tables that
         must equal SELECT on the sources, value by value;
     (c) FileStreamSink with Debezium's ExtractNewRecordState transform
         writes the flattened rows.
     Every connector and task must stay RUNNING (REST status).
Environment: CDC_BUILD, CDC_SVC_ENV, CDC_TEST_SEED, CDC_DBZ_ROWS.
"""

import datetime
import decimal
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dblib  # noqa: E402
import t_debezium_kafka as K  # noqa: E402  (workload, SELECT, helpers)

dblib.need("MYSQL_PORT", "PGPORT", "KAFKA_BOOTSTRAP", what="mariadb, postgres and kafka",
           tools=("kcat", "java", "psql", "mariadb"))
ENV = dblib.E
PLUGINS = ENV.get("CONNECT_PLUGINS") or os.path.join(
    os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "autoglm-cdc", "connect-plugins")
PID = os.getpid()
DST = "cdc_dbz_dst_%d" % PID          # PostgreSQL database the JDBC sink writes
PGSRC = "cdc_dbz_pgsrc_%d" % PID      # PostgreSQL source database
APP_S, APP_P, APP_PG = "dbzs%d" % PID, "dbzp%d" % PID, "dbzpg%d" % PID
rnd = K.rnd

# The MariaDB columns, TIME within a day (the JDBC sink writes MicroTime
# into a PostgreSQL time-of-day column), and without BIT(10): Debezium's
# JDBC sink 3.4 reads io.debezium.data.Bits bytes big-endian
# (BigInteger) while Debezium's MySQL connector -- and we -- write them
# little-endian, so it stores BIT(n) values reversed or fails on them
# ("-" is not a valid binary digit); docs/ENVELOPE.md.
COLS = [c if c[0] != "tm3" else
        ("tm3", "TIME(3)", lambda: "%d:%02d:%02d.%03d" % (rnd.randint(0, 23), rnd.randint(0, 59),
                                                       rnd.randint(0, 59), rnd.randint(0, 999)))
        for c in K.COLS if c[0] != "b10"]
EXTRA = ("extra", "VARCHAR(10)", lambda: rnd.choice(["x", "yy", "", "z" * 10]))

PG_COLS = [  # name, type, generator of SQL literals
    ("i4", "int", lambda: str(rnd.randint(-2**31, 2**31 - 1))),
    ("i8", "bigint", lambda: str(rnd.randint(-2**63, 2**63 - 1))),
    ("f8", "double precision", lambda: repr(rnd.uniform(-1e9, 1e9))),
    ("nm", "numeric(14,3)", lambda: "%d.%03d" % (rnd.randint(-10**10, 10**10), rnd.randint(0, 999))),
    ("tx", "text", lambda: "'%s'" % rnd.choice(["", "é漢", "a'' b", "x" * 30])),
    ("bo", "boolean", lambda: rnd.choice(["true", "false"])),
    ("dt", "date", lambda: "'%04d-%02d-%02d'" % (rnd.randint(1, 9999), rnd.randint(1, 12), rnd.randint(1, 28))),
    ("ts", "timestamp(6)", lambda: "'%04d-%02d-%02d %02d:%02d:%02d.%06d'" % (
        rnd.randint(1000, 9999), rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23),
        rnd.randint(0, 59), rnd.randint(0, 59), rnd.randint(0, 999999))),
    ("tz", "timestamptz", lambda: "'20%02d-%02d-%02d %02d:%02d:%02d.%03d+02'" % (
        rnd.randint(1, 37), rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23),
        rnd.randint(0, 59), rnd.randint(0, 59), rnd.randint(0, 999))),
    ("tm", "time(6)", lambda: "'%02d:%02d:%02d.%06d'" % (rnd.randint(0, 23), rnd.randint(0, 59),
                                                     rnd.randint(0, 59), rnd.randint(0, 999999))),
    ("by", "bytea", lambda: "'\\x%s'" % bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 12))).hex()),
    ("js", "jsonb", lambda: "'%s'" % json.dumps({"k": rnd.randint(0, 9), "v": [1, "x"]})),
    ("ai", "int[]", lambda: "'{%s}'" % ",".join(str(rnd.randint(-99, 99)) for _ in range(rnd.randint(0, 4)))),
    ("at", "text[]", lambda: "ARRAY[%s]::text[]" % ",".join("'s%d'" % rnd.randint(0, 9) for _ in range(rnd.randint(0, 3)))),
    ("uu", "uuid", lambda: "'%08x-0000-4000-8000-%012x'" % (rnd.getrandbits(32), rnd.getrandbits(48))),
]


def props(path, d):
    with open(path, "w") as f:
        for k, v in d.items():
            f.write("%s=%s\n" % (k, str(v).replace("\\", "\\\\")))
    return path


def conv(schemas):
    s = "true" if schemas else "false"
    return {"key.converter": "org.apache.kafka.connect.json.JsonConverter", "key.converter.schemas.enable": s,
            "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": s,
            "errors.tolerance": "none"}


def jdbc(name, topic, table):
    d = {"name": name, "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector", "tasks.max": 1,
         "topics": topic,
         "connection.url": "jdbc:postgresql://%s:%s/%s" % (ENV["PGHOST"], ENV["PGPORT"], DST),
         "connection.username": ENV["PG_SUPERUSER"], "connection.password": ENV["PG_SUPERPASSWORD"],
         "insert.mode": "upsert", "primary.key.mode": "record_key", "delete.enabled": "true",
         "schema.evolution": "basic", "collection.name.format": table, "table.name.format": table}
    d.update(conv(True))
    return d


def rest(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        return json.loads(r.read())


# ---- canonical values, both sides -------------------------------------------

def dt_parse(s):
    s = s.replace("T", " ")
    if s.endswith("+00:00") or s.endswith("Z"):
        s = s[:-6] if s.endswith("+00:00") else s[:-1]
    return datetime.datetime.fromisoformat(s)


def us_of_time(s):
    s = s.replace("T", " ").split(" ")[-1]  # a timestamp column: its time
    h, m, sec = s.split(":")
    return (int(h) * 3600 + int(m) * 60) * 10**6 + int(decimal.Decimal(sec) * 10**6)


def canon_my(name, v):
    """MariaDB SELECT text (t_debezium_kafka.select_rows) -> canonical."""
    if v is None:
        return None
    if name in ("ti", "su", "mi", "iu", "bi", "bu", "yr", "b10"):
        return int(v)
    if name in ("fl", "db"):
        return float(v)
    if name == "de":
        return decimal.Decimal(v)
    if name in ("d", "dt6", "dt0"):
        if v.startswith("0000"):
            return None
        return datetime.date.fromisoformat(v) if name == "d" else dt_parse(v)
    if name == "tm3":
        return us_of_time(v)
    if name == "ts3":
        return dt_parse(v)
    if name in ("vb", "bl"):
        return v.lower()
    if name == "b1":
        return v == "1"
    if name == "js":
        return json.loads(v)
    return v


def canon_pg(name, v, kind):
    """A row_to_json value from the JDBC sink's table -> canonical."""
    if v is None:
        return None
    if kind in ("int", "str"):
        return v
    if kind == "float":
        return float(v)
    if kind == "dec":
        return decimal.Decimal(str(v))
    if kind == "date":
        return datetime.date.fromisoformat(v)
    if kind == "ts":
        return dt_parse(v)
    if kind == "time":
        return us_of_time(v)
    if kind == "hex":
        return v[2:] if v.startswith("\\x") else v
    if kind == "bits":
        return int(v, 2) if isinstance(v, str) else v
    if kind == "bool":
        return bool(v)
    if kind == "json":
        return json.loads(v) if isinstance(v, str) else v
    return v


MY_KIND = {"fl": "float", "db": "float", "de": "dec", "bu": "dec", "d": "date", "dt6": "ts", "dt0": "ts",
           "ts3": "ts", "tm3": "time", "vb": "hex", "bl": "hex", "b10": "bits", "b1": "bool", "js": "json"}


def same(a, b):
    if isinstance(a, float) and isinstance(b, (int, float)):
        return a == b or abs(a - b) <= abs(a) * 1e-6
    return a == b


def pg_rows(db, table, key="id"):
    """{key: row_to_json} of table; None while it does not exist."""
    r = dblib.pg_run("SELECT row_to_json(t) FROM %s t ORDER BY %s" % (table, key), db, superuser=True)
    if r.returncode:
        if "does not exist" in r.stderr:
            return None
        dblib.fail("psql: " + r.stderr)
    return {r[key]: r for r in (json.loads(line, parse_float=decimal.Decimal) for line in r.stdout.splitlines())}


def compare_my(want_rows, cols):
    got = pg_rows(DST, "my_t")
    if got is None:
        return ["my_t not created yet"]
    bad = []
    if set(got) != set(want_rows):
        return ["keys: %d in PostgreSQL, %d in MariaDB; only in PG %s, only in MariaDB %s" % (
            len(got), len(want_rows), sorted(set(got) - set(want_rows))[:5],
            sorted(set(want_rows) - set(got))[:5])]
    for k, row in want_rows.items():
        for name, _, _ in cols:
            w = canon_my(name, row[name])
            g = canon_pg(name, got[k].get(name), MY_KIND.get(name, "int" if isinstance(w, int) else "str"))
            if isinstance(w, int) and isinstance(g, decimal.Decimal):
                g = int(g)
            if isinstance(w, float) and isinstance(g, decimal.Decimal):
                g = float(g)
            if not same(w, g):
                bad.append("id %s %s: PostgreSQL %r, MariaDB %r" % (k, name, got[k].get(name), row[name]))
    return bad


PG_KIND = {"ai": "str", "at": "str", "f8": "float", "nm": "dec", "dt": "date", "ts": "ts", "tz": "ts", "tm": "time", "by": "hex",
           "js": "json", "bo": "bool"}


def compare_pg():
    want = pg_rows(PGSRC, "t")
    got = pg_rows(DST, "pg_t")
    if got is None:
        return ["pg_t not created yet"]
    if set(got) != set(want):
        return ["pg keys: %d in the sink, %d in the source" % (len(got), len(want))]
    bad = []
    for k in want:
        for name, _, _ in PG_COLS:
            kind = PG_KIND.get(name, "str")
            w, g = canon_pg(name, want[k][name], kind), canon_pg(name, got[k].get(name), kind)
            if isinstance(w, decimal.Decimal) or isinstance(g, decimal.Decimal):
                w, g = (decimal.Decimal(str(x)) if x is not None else None for x in (w, g))
            if not same(w, g):
                bad.append("pg id %s %s: sink %r, source %r" % (k, name, got[k].get(name), want[k][name]))
    return bad


def main():
    for need in ("debezium-connector-jdbc-", "connect-file-"):
        if not any(f.startswith(need) for f in os.listdir(os.path.join(PLUGINS, "debezium-jdbc"))):
            dblib.fail("%s*.jar missing in %s (tests/services.sh up kafka fetches it)" % (need, PLUGINS))
    tmp = tempfile.mkdtemp(prefix="t_dbzc_")
    procs = []

    def cleanup():
        dblib.stop(procs)
        dblib.my("DROP DATABASE IF EXISTS %s" % K.DB, check=False)
        for db in (DST, PGSRC):
            dblib.pg("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                     "WHERE database = '%s' AND NOT active" % db, "postgres", superuser=True, check=False)
            dblib.pg("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db, "postgres", superuser=True, check=False)
        if os.environ.get("KEEP_TMP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)

    dblib.on_fail(cleanup, logdir=tmp, tail=40)

    # 1. MariaDB: workload, ALTER ADD COLUMN, workload
    dblib.my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s" % (K.DB, K.DB))
    dblib.my("CREATE TABLE t (id INT PRIMARY KEY, %s)" % ", ".join("`%s` %s" % (n, d) for n, d, _ in COLS), K.DB)
    pos = dblib.my("SHOW BINLOG STATUS").split("\t")
    start = "%s:%s" % (pos[0], pos[1].strip())
    ids = []
    stmts = K.workload(ids, K.ROWS // 2, COLS)
    stmts.append("ALTER TABLE t ADD COLUMN extra VARCHAR(10)")
    stmts += K.workload(ids, K.ROWS // 2, COLS + [EXTRA])
    dblib.my("SET sql_mode='NO_ENGINE_SUBSTITUTION'; SET time_zone='+00:00'; " + "; ".join(stmts), K.DB)
    my_rows = K.select_rows(COLS + [EXTRA])
    ntx = len(stmts) - 1
    K.run_cdc(tmp, APP_S, start, ["--max-txns", str(ntx), "-X", "debezium.schemas=true",
                                   "-X", "debezium.bigint.unsigned.handling.mode=precise"], 0)
    K.run_cdc(tmp, APP_P, start, ["--max-txns", str(ntx)], 7000)
    t_s, t_p = "%s.%s.t" % (APP_S, K.DB), "%s.%s.t" % (APP_P, K.DB)
    msgs_s = K.kcat(t_s)
    n_s, n_p = len(msgs_s), len(K.kcat(t_p))
    ops = [json.loads(m["payload"])["payload"]["op"] for m in msgs_s if m["payload"]]
    dblib.log("MariaDB: %d statements -> %d messages (schemas), %d (plain)" % (len(stmts), n_s, n_p))

    # 2. PostgreSQL source
    for db in (DST, PGSRC):
        dblib.pg("CREATE DATABASE %s" % db, "postgres", superuser=True)
    dblib.pg("CREATE TABLE t (id int PRIMARY KEY, %s)" % ", ".join("%s %s" % (n, t) for n, t, _ in PG_COLS),
             PGSRC, superuser=True)
    dsn = dblib.pg_dsn(PGSRC, superuser=True)
    pg_stmts = K.workload([], K.ROWS // 2, PG_COLS, lit=lambda v: v, q='"')
    errf = open(os.path.join(tmp, "cdc_pg.log"), "w")
    p = subprocess.Popen([dblib.BIN, "--source", "postgres", "--postgres-dsn", dsn, "--sink", "kafka",
                          "--kafka-brokers", ENV["KAFKA_BOOTSTRAP"], "--format", "debezium",
                          "-X", "debezium.schemas=true", "--application-id", APP_PG,
                          "--state-dir", os.path.join(tmp, "pgstate"), "-X", "postgres.slot=s_" + PGSRC,
                          "-X", "postgres.publication=p_" + PGSRC, "--max-txns", str(len(pg_stmts))],
                         stdout=errf, stderr=errf)
    procs.append(p)
    for _ in range(300):
        if dblib.pg("SELECT active FROM pg_replication_slots WHERE slot_name = 's_%s'" % PGSRC, "postgres",
                    superuser=True).strip() == "t":
            break
        if p.poll() is not None:
            dblib.fail("autoglm-cdc (postgres) exited %s" % p.returncode)
        time.sleep(0.1)
    dblib.pg(";\n".join(pg_stmts), PGSRC, superuser=True)
    if p.wait(timeout=120):
        dblib.fail("autoglm-cdc (postgres) failed")
    t_pg = "%s.public.t" % APP_PG

    # 3. Kafka Connect standalone
    port = dblib.free_port()
    worker = props(os.path.join(tmp, "worker.properties"), {
        "bootstrap.servers": ENV["KAFKA_BOOTSTRAP"], "offset.storage.file.filename": os.path.join(tmp, "offsets"),
        "offset.flush.interval.ms": 1000, "plugin.path": PLUGINS, "listeners": "http://127.0.0.1:%d" % port,
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter"})
    out_s, out_p, out_u = (os.path.join(tmp, n) for n in ("schemas.out", "plain.out", "unwrap.out"))
    files = [worker]
    for name, d in (("fs_schemas", dict(conv(True), topics=t_s, file=out_s)),
                    ("fs_plain", dict(conv(False), topics=t_p, file=out_p)),
                    ("fs_unwrap", dict(conv(True), topics=t_s, file=out_u, transforms="unwrap",
                                       **{"transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState"})),
                    ("jdbc_my", jdbc("jdbc_my", t_s, "my_t")),
                    ("jdbc_pg", jdbc("jdbc_pg", t_pg, "pg_t"))):
        d.setdefault("name", name)
        d.setdefault("connector.class", "org.apache.kafka.connect.file.FileStreamSinkConnector")
        d.setdefault("tasks.max", 1)
        files.append(props(os.path.join(tmp, name + ".properties"), d))
    props(os.path.join(tmp, "log4j.properties"), {
        "log4j.rootLogger": "INFO, f", "log4j.appender.f": "org.apache.log4j.FileAppender",
        "log4j.appender.f.File": os.path.join(tmp, "connect.log"),
        "log4j.appender.f.layout": "org.apache.log4j.PatternLayout",
        "log4j.appender.f.layout.ConversionPattern": "%d %p %c{1} %m%n"})
    t0 = time.time()
    cw = subprocess.Popen(["java", "-Xmx384m", "-XX:+UseSerialGC",
                           "-Dlog4j.configuration=file:" + os.path.join(tmp, "log4j.properties"),
                           "-cp", ENV["KAFKA_JARS"] + "/*", "org.apache.kafka.connect.cli.ConnectStandalone"] + files,
                          stdout=open(os.path.join(tmp, "connect.stdout.log"), "w"), stderr=subprocess.STDOUT)
    procs.append(cw)

    def lines(path):
        return sum(1 for _ in open(path)) if os.path.exists(path) else 0

    bad, deadline = ["not checked"], time.time() + 240
    while time.time() < deadline:
        if cw.poll() is not None:
            dblib.fail("Kafka Connect exited with %s" % cw.returncode)
        try:
            for c in ("fs_schemas", "fs_plain", "fs_unwrap", "jdbc_my", "jdbc_pg"):
                st = rest(port, "/connectors/%s/status" % c)
                for t in [st["connector"]] + st["tasks"]:
                    if t["state"] == "FAILED":
                        dblib.fail("connector %s: %s" % (c, t.get("trace", "")[:3000]))
        except (OSError, ValueError, KeyError):
            time.sleep(1)
            continue
        if lines(out_s) >= n_s and lines(out_p) >= n_p and lines(out_u) >= len(ops):
            bad = compare_my(my_rows, COLS + [EXTRA])
            if not bad:
                bad = compare_pg()
            if not bad:
                break
        time.sleep(2)
    if bad:
        for b in bad[:15]:
            dblib.log(b)
        dblib.fail("%d differences between the JDBC sink's tables and the sources" % len(bad))
    if lines(out_s) != n_s or lines(out_p) != n_p:
        dblib.fail("FileStreamSink: %d/%d lines (schemas), %d/%d (plain)" % (lines(out_s), n_s, lines(out_p), n_p))
    # ExtractNewRecordState: each c/u becomes its row, each d a tombstone,
    # and the tombstones after deletes go
    unwrapped = open(out_u).read().splitlines()
    rows_u = sum(1 for x in unwrapped if x.startswith("Struct{id="))
    nulls_u = sum(1 for x in unwrapped if x == "null")
    if rows_u != ops.count("c") + ops.count("u") or nulls_u != ops.count("d") or \
            len(unwrapped) != rows_u + nulls_u:
        dblib.fail("ExtractNewRecordState: %d rows and %d tombstones of %d lines, for %d c/u and %d d" % (
            rows_u, nulls_u, len(unwrapped), ops.count("c") + ops.count("u"), ops.count("d")))
    dblib.log("Connect: %d + %d messages converted, ExtractNewRecordState %d lines, JDBC sink tables equal "
              "(%d MariaDB rows, %d PostgreSQL rows) in %.0f s" % (n_s, n_p, lines(out_u), len(my_rows),
                                                                    len(pg_rows(PGSRC, "t")), time.time() - t0))
    cleanup()
    print("PASS")


if __name__ == "__main__":
    main()
