#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A backfill into Kafka asks the sink for its bulk-load settings (the
sink's bulk_hint hook, cdc/plugin.h) instead of naming the sink, and the
settings reach the broker:

  1. default (backfill.kafka_bulk on): every record batch the backfill
     wrote is lz4-compressed (the hint's compression.type);
  2. kafka.compression.type=gzip configured: the configured value wins
     (the hint sets only what is unset): every batch is gzip;
  3. backfill.kafka_bulk=false: no hint: the batches carry the sink's own
     default codec, not lz4.

Each run must deliver every row of the table once per key with its value
(op r), checked by values read back with kcat.  The codec is read from
the attributes of the record batches in the broker's log segments
(Kafka record batch format v2).
Exit: 0 pass, 1 fail, 77 skip.
"""
import glob
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dblib  # noqa: E402
from dblib import E, BIN, log, fail, my  # noqa: E402

dblib.need("MYSQL_PORT", "KAFKA_BOOTSTRAP", what="MariaDB and Kafka", tools=("kcat", "mariadb"))

N = 3000
DB = "bf_kbulk_%d" % os.getpid()
BOOT = E["KAFKA_BOOTSTRAP"]
KDATA = os.path.join(E["KAFKA_DIR"], "data")
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
TMP = tempfile.mkdtemp(prefix="cdc-bf-kbulk.")


def cleanup():
    my("DROP DATABASE IF EXISTS %s;" % DB, check=False)
    shutil.rmtree(TMP, ignore_errors=True)


dblib.on_fail(cleanup, logdir=TMP)
seed = dblib.test_seed()
rnd = random.Random(seed)
want = {i: rnd.randrange(-10 ** 9, 10 ** 9) for i in range(1, N + 1)}

my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; GRANT ALL ON %s.* TO '%s'@'%%';"
   % (DB, DB, DB, E["MYSQL_USER"]))
my("CREATE TABLE t (id INT PRIMARY KEY, v BIGINT NOT NULL);", DB)
my("INSERT INTO t VALUES %s;" % ",".join("(%d,%d)" % kv for kv in sorted(want.items())), DB)
DSN = "mysql://%s:%s@%s:%s" % (E["MYSQL_USER"], E["MYSQL_PASSWORD"], E["MYSQL_HOST"], E["MYSQL_PORT"])


def backfill(name, *extra):
    """Backfill DB.t into topic <DB>_<name>; returns the topic."""
    topic = "%s_%s" % (DB, name)
    logf = os.path.join(TMP, name + ".log")
    with open(logf, "w") as lf:
        r = subprocess.run([BIN, "backfill", "--source", "mysql", "--mysql-dsn", DSN, "--table", DB + ".t",
                            "--sink", "kafka", "--kafka-brokers", BOOT, "--topic", topic,
                            "--state-dir", os.path.join(TMP, "state-" + name), "--pipeline", name,
                            "--chunk-size", "500"] + list(extra),
                           stdout=lf, stderr=subprocess.STDOUT, timeout=300)
    if r.returncode != 0:
        fail("backfill %s exited %d, want 0" % (name, r.returncode))
    return topic


def read_back(topic):
    """Every message of topic as (id, v, op); fails unless it is each row
    of the table exactly once with its value."""
    r = subprocess.run(["kcat", "-C", "-b", BOOT, "-t", topic, "-o", "beginning", "-e", "-q", "-J",
                        "-m", "30"], capture_output=True, text=True, timeout=120)
    if r.returncode:
        fail("kcat %s: %s" % (topic, r.stderr))
    got = {}
    for line in r.stdout.splitlines():
        env = json.loads(json.loads(line)["payload"])
        p = env.get("payload", env)
        after = p["after"]
        if p.get("op") != "r":
            fail("%s: op %r, want r (snapshot): %.200s" % (topic, p.get("op"), line))
        if after["id"] in got:
            fail("%s: id %d delivered twice" % (topic, after["id"]))
        got[after["id"]] = int(after["v"])
    if got != want:
        missing = sorted(set(want) - set(got))[:10]
        wrong = sorted(k for k in got if k in want and got[k] != want[k])[:10]
        fail("%s: %d of %d rows; missing %s, wrong values at %s" % (topic, len(got), N, missing, wrong))


def codecs(topic):
    """The compression codecs of the record batches in the topic's log
    segments (the batch attributes' low three bits)."""
    seen = []
    files = glob.glob(os.path.join(KDATA, topic + "-*", "*.log"))
    if not files:
        fail("no log segments for %s under %s" % (topic, KDATA))
    for f in files:
        data = open(f, "rb").read()
        pos = 0
        while pos + 61 <= len(data):
            length = struct.unpack_from(">i", data, pos + 8)[0]
            magic = data[pos + 16]
            if magic != 2 or length < 49 or pos + 12 + length > len(data):
                fail("%s: no v2 record batch at %d (magic %d, length %d)" % (f, pos, magic, length))
            attrs = struct.unpack_from(">h", data, pos + 21)[0]
            seen.append(CODECS.get(attrs & 7, "codec %d" % (attrs & 7)))
            pos += 12 + length
    if not seen:
        fail("%s: no record batches in %s" % (topic, files))
    return seen


# 1. the hint: lz4
t1 = backfill("hint")
read_back(t1)
c1 = codecs(t1)
if set(c1) != {"lz4"}:
    fail("backfill with the bulk hint wrote batches %s, want lz4 only" % sorted(set(c1)))
# 2. a configured codec wins over the hint
t2 = backfill("gzip", "-X", "kafka.compression.type=gzip")
read_back(t2)
c2 = codecs(t2)
if set(c2) != {"gzip"}:
    fail("kafka.compression.type=gzip: batches %s, want gzip only" % sorted(set(c2)))
# 3. no hint: the sink's own default
t3 = backfill("nohint", "-X", "backfill.kafka_bulk=false")
read_back(t3)
c3 = codecs(t3)
if "lz4" in c3:
    fail("backfill.kafka_bulk=false: batches %s, want no lz4 (the sink's default)" % sorted(set(c3)))
log("batches: hint %d x %s, configured %d x %s, no hint %d x %s"
    % (len(c1), sorted(set(c1)), len(c2), sorted(set(c2)), len(c3), sorted(set(c3))))
cleanup()
print("PASS: t_backfill_kafka_bulk (%d rows x 3 runs)" % N)
