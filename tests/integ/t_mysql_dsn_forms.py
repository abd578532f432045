#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""One DSN grammar for every MySQL connection (connectors/mysql/conn.c).

Before, the source, the snapshot, the wide sink and `validate` each parsed
mysql:// themselves and disagreed: the wide sink took "db?ssl-mode=..." as
its database name, the sink and validate did not %-decode, the snapshot
ignored ssl-mode.  Here one MariaDB user has a password drawn from the seed
with the characters that split those parsers ('@', ':', '/', '?', '%',
'#', '&', '='), and every DSN form below must work, against the real
server, in all four places:

  1. the binlog source streams a row into a file (exit 0, the value there);
  2. backfill reads the same row (op r, the same value);
  3. the MySQL wide sink writes it into a wide table in the DSN's database
     (?ssl-mode after it must not become part of the name);
  4. validate connects with mysql_sink.dsn and mysql.dsn (exit 0).
A wrong password is exit 78 in each (refused credentials are a
configuration error, named as such), not a retry.
Exit 0 pass, 1 fail, 77 skip.
"""
import os
import random
import subprocess
import tempfile
import urllib.parse

import dblib
from dblib import BIN, E, fail, log, my

dblib.need("MYSQL_PORT", what="MariaDB")

SEED = dblib.test_seed()
rnd = random.Random(SEED)
ID = "%d" % os.getpid()
SRC = "dsnf_" + ID
WIDE = "dsnfw_" + ID
USER = "dsnf_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-dsnf-")
PROCS = []
PORT = E["MYSQL_PORT"]


def cleanup():
    my("DROP USER IF EXISTS '%s'@'%%'" % USER, check=False)
    dblib.cleanup(PROCS, TMP, my_dbs=[SRC, WIDE])


dblib.on_fail(cleanup)

# a password with every separator of the URI grammar, and one with a '%'
# (only the %-encoded forms can carry that)
SPECIAL = "@:/?#&="
pw_raw = "".join(rnd.choice("abcXYZ019") for _ in range(4))
for ch in rnd.sample(SPECIAL, len(SPECIAL)):
    pw_raw += ch + rnd.choice("kLm7")
pw_pct = pw_raw + "%" + rnd.choice(["41", "zz", "", "%"])
log("passwords %r and %r" % (pw_raw, pw_pct))


def q(s):
    return urllib.parse.quote(s, safe="")


def forms(pw, db):
    """(name, DSN) pairs naming 127.0.0.1:PORT, user USER, password pw,
    database db (None: none)."""
    path = "/" + q(db) if db else ""
    out = [
        ("encoded", "mysql://%s:%s@127.0.0.1:%s%s" % (USER, q(pw), PORT, path)),
        ("encoded_sslmode", "mysql://%s:%s@127.0.0.1:%s%s?ssl-mode=preferred" % (USER, q(pw), PORT, path)),
        ("mariadb_bracketed", "mariadb://%s:%s@[127.0.0.1]:%s%s?sslmode=DISABLED" % (USER, q(pw), PORT, path)),
        ("failover_list", "mysql://%s:%s@127.0.0.1:%s,127.0.0.1:1%s" % (USER, q(pw), PORT, path)),
    ]
    if "%" not in pw:  # as written: '@' and '/' and '?' inside, not encoded
        out.append(("raw", "mysql://%s:%s@127.0.0.1:%s%s" % (USER, pw, PORT, path)))
        out.append(("raw_sslmode", "mysql://%s:%s@127.0.0.1:%s%s?ssl-mode=disabled" % (USER, pw, PORT, path)))
    return out


def run(args, name, expect):
    logf = os.path.join(TMP, name + ".log")
    rc, out = dblib.run_exit(args, logf, PROCS)
    if rc != expect:
        fail("%s: exit %s, expected %d:\n%s" % (name, rc, expect, out[-2000:]))
    return out


def lit(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "''") + "'"


my("DROP DATABASE IF EXISTS %s; DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; CREATE DATABASE %s;"
   "DROP USER IF EXISTS '%s'@'%%'; CREATE USER '%s'@'%%' IDENTIFIED BY %s;"
   "GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%';"
   % (SRC, WIDE, SRC, WIDE, USER, USER, lit(pw_pct), USER))
my("CREATE TABLE %s.t (id INT PRIMARY KEY, v VARCHAR(40))" % SRC)
mapf = os.path.join(TMP, "map.yaml")

n = 0
for pw in (pw_pct, pw_raw):
    if pw != pw_pct:
        my("ALTER USER '%s'@'%%' IDENTIFIED BY %s" % (USER, lit(pw)))
    for name, dsn in forms(pw, None):
        n += 1
        val = "v%d_%s" % (n, name)
        ms = my("SHOW MASTER STATUS").split()
        my("INSERT INTO t VALUES (%d, '%s')" % (n, val), SRC)
        # 1. the binlog source
        out = os.path.join(TMP, "%s_%d.jsonl" % (name, n))
        run([BIN, "--source", "mysql", "--mysql-dsn", dsn, "--from", "%s:%s" % (ms[0], ms[1]),
             "--include", SRC + ".*", "--sink", "file", "-o", out, "--idle-exit", "1500",
             "--state-dir", os.path.join(TMP, "s%d" % n), "--pipeline", "dsnf%d" % n,
             "-X", "mysql.server_id=%d" % (61000 + n)], "source_" + name, 0)
        got = open(out).read()
        if '"%s"' % val not in got:
            fail("source with the %s DSN: %s not streamed:\n%s" % (name, val, got[-1000:]))
        # 2. backfill (the snapshot)
        bout = os.path.join(TMP, "bf_%s_%d.jsonl" % (name, n))
        run([BIN, "backfill", "--source", "mysql", "--mysql-dsn", dsn, "--table", SRC + ".t", "--sink", "file",
             "-o", bout, "--state-dir", os.path.join(TMP, "b%d" % n), "--pipeline", "dsnfb%d" % n],
            "backfill_" + name, 0)
        got = open(bout).read()
        if '"%s"' % val not in got or '"op":"r"' not in got.replace(" ", ""):
            fail("backfill with the %s DSN: %s not read:\n%s" % (name, val, got[-1000:]))
        log("%s (%s): source and backfill read %s" % (name, "with %" if "%" in pw else "raw", val))

    # 3. + 4. the wide sink and validate, the database in the DSN
    for name, wdsn in forms(pw, WIDE):
        n += 1
        tgt = "w_%d" % n
        pipe = "dsnfw%d" % n
        dblib.wide_mapping(mapf, pipe, tgt, "my", SRC + ".t", "m%d" % n, {"f": ("text", "v")})
        ms = my("SHOW MASTER STATUS").split()
        val = "w%d_%s" % (n, name)
        my("INSERT INTO t VALUES (%d, '%s')" % (n, val), SRC)
        src_dsn = "mysql://root:%s@127.0.0.1:%s" % (q(E["MYSQL_ROOT_PASSWORD"]), PORT)
        run([BIN, "--pipeline", pipe, "--state-dir", os.path.join(TMP, "w%d" % n), "-X", "mapping.files=" + mapf,
             "--idle-exit", "1500", "--sink", "mysql", "-X", "mysql_sink.dsn=" + wdsn,
             "--source", "mysql", "--mysql-dsn", src_dsn, "--from", "%s:%s" % (ms[0], ms[1]),
             "--include", SRC + ".*", "-X", "mysql.server_id=%d" % (62000 + n)], "sink_" + name, 0)
        have = my("SELECT f FROM %s WHERE k = %d" % (tgt, n), WIDE).strip()
        if have != val:
            fail("wide sink with the %s DSN: row %d of %s.%s holds %r, not %r" % (name, n, WIDE, tgt, have, val))
        run([BIN, "validate", "-X", "mapping.files=" + mapf, "-X", "application_id=" + pipe,
             "-X", "mysql_sink.dsn=" + wdsn, "-X", "source.type=mysql", "-X", "mysql.dsn=" + wdsn],
            "validate_" + name, 0)
        log("%s: the wide sink wrote %s into %s.%s; validate connects" % (name, val, WIDE, tgt))

# refused credentials: exit 78 everywhere, the user named, no password shown
bad = "mysql://%s:%s@127.0.0.1:%s" % (USER, q(pw_raw + "x"), PORT)
outs = [run([BIN, "--source", "mysql", "--mysql-dsn", bad, "--sink", "file", "-o", os.path.join(TMP, "x"),
             "--state-dir", os.path.join(TMP, "bad")], "bad_source", 78),
        run([BIN, "backfill", "--source", "mysql", "--mysql-dsn", bad, "--table", SRC + ".t", "--sink", "file",
             "-o", os.path.join(TMP, "y"), "--state-dir", os.path.join(TMP, "badb")], "bad_backfill", 78),
        run([BIN, "validate", "-X", "mapping.files=" + mapf, "-X", "mysql_sink.dsn=" + bad + "/" + WIDE],
            "bad_validate", 78)]
for o in outs:
    if "Access denied" not in o or pw_raw in o:
        fail("a refused login is not named, or shows the password:\n%s" % o[-1500:])
cleanup()
print("PASS: %d DSN forms in the source, backfill, the wide sink and validate" % n)
