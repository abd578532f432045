# SPDX-License-Identifier: Apache-2.0
"""What the Python integration tests share (tests/integ/t_*.py).

The servers' settings come from tests/services.env (CDC_SVC_ENV); MariaDB
and PostgreSQL are driven with their command-line clients (no Python
driver needed), as root / the PostgreSQL superuser or the test user.

    import dblib
    from dblib import E, BIN, log, fail, my, pg
    dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")
    dblib.on_fail(cleanup, logdir=TMP)    # fail() tails TMP/*.log, cleans up

fail() prints the message (and the tails of the logs), runs the test's
cleanup and exits 1; need() exits 77 (skip) when a server is missing or
does not answer, the binary is not built or a tool is not installed.
Under CDC_REQUIRE_SERVICES=1 (scripts/test) every skip() is a failure
instead (tests/README.md).
"""
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("CDC_BUILD", ROOT + "/build")
BIN = os.environ.get("CDC_BIN", os.path.join(BUILD, "autoglm-cdc"))
ENVF = os.environ.get("CDC_SVC_ENV", ROOT + "/tests/services.env")


def log(m):
    print("# " + m, file=sys.stderr, flush=True)


def load_env():
    env = {}
    if os.path.exists(ENVF):
        for line in open(ENVF):
            line = line.strip()
            if "=" in line and not line.startswith(("#", "export")):
                k, v = line.split("=", 1)
                env[k] = v.strip("'")
    return env


E = load_env()

_fail_hook = {"cleanup": None, "logdir": None, "tail": 15, "seed": None}


def test_seed():
    """The seed of a randomised test: CDC_TEST_SEED (or the older CDC_SEED)
    when set (scripts/test fixes one), else a fresh one.  Printed now, and
    again by fail()."""
    v = os.environ.get("CDC_TEST_SEED", "") or os.environ.get("CDC_SEED", "")
    seed = int(v) if v.strip() else random.SystemRandom().randrange(1, 10 ** 9)
    _fail_hook["seed"] = seed
    log("seed %d (rerun with CDC_TEST_SEED=%d)" % (seed, seed))
    return seed


def seed_note():
    """'' or the line that tells how to replay a failed randomised test."""
    s = _fail_hook["seed"]
    return "" if s is None else "# seed %d: rerun with CDC_TEST_SEED=%d" % (s, s)


def on_fail(cleanup, logdir=None, tail=15):
    """fail() then prints the last `tail` lines of logdir/*.log and runs
    cleanup()."""
    _fail_hook.update(cleanup=cleanup, logdir=logdir, tail=tail)


def fail(m):
    print("FAIL: " + m, file=sys.stderr, flush=True)
    if seed_note():
        print(seed_note(), file=sys.stderr, flush=True)
    d = _fail_hook["logdir"]
    if d and os.path.isdir(d):
        for f in sorted(os.listdir(d)):
            if f.endswith(".log"):
                print("--- %s (tail)" % f, file=sys.stderr)
                lines = open(os.path.join(d, f), errors="replace").readlines()
                print("".join(lines[-_fail_hook["tail"]:]), file=sys.stderr)
    if _fail_hook["cleanup"]:
        _fail_hook["cleanup"]()
    sys.exit(1)


def skip(m):
    """The test cannot run here: exit 77, or, under CDC_REQUIRE_SERVICES=1,
    fail (exit 1), since there it must run."""
    if os.environ.get("CDC_REQUIRE_SERVICES") == "1":
        print("FAIL: cannot run (CDC_REQUIRE_SERVICES=1 forbids skipping): " + m, file=sys.stderr, flush=True)
        sys.exit(1)
    print("SKIP: " + m, file=sys.stderr, flush=True)
    sys.exit(77)


def _answers(key):
    """Whether the server behind a services.env key answers now."""
    if key == "MYSQL_PORT":
        cmd = ["mariadb", "--no-defaults", "--protocol=tcp", "-h", E.get("MYSQL_HOST", "127.0.0.1"), "-P", E[key],
               "-u" + E.get("MYSQL_ROOT_USER", "root"), "-p" + E.get("MYSQL_ROOT_PASSWORD", ""), "-e", "SELECT 1"]
    elif key == "PGPORT":
        cmd = ["pg_isready", "-q", "-h", E.get("PGHOST", "127.0.0.1"), "-p", E[key]]
    elif key == "KAFKA_BOOTSTRAP":
        cmd = ["kcat", "-b", E[key], "-L", "-m", "5"]
    else:
        return True
    try:
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def need(*keys, what, tools=()):
    """Skip (see skip()) unless tests/services.env has every key, each
    server behind MYSQL_PORT / PGPORT / KAFKA_BOOTSTRAP answers, the binary
    is built and every command in tools is on PATH."""
    missing = [k for k in keys if not E.get(k)]
    if missing:
        skip("needs %s: %s not in %s (tests/services.sh up)" % (what, ", ".join(missing), ENVF))
    if not os.access(BIN, os.X_OK):
        skip("%s not built (set CDC_BUILD)" % BIN)
    for t in tools:
        if shutil.which(t) is None:
            skip("%s not installed (scripts/deps.sh installs it)" % t)
    for k in keys:
        if not _answers(k):
            skip("needs %s: the server at %s=%s does not answer" % (what, k, E[k]))


def my_args(db=None):
    return ["mariadb", "--no-defaults", "--protocol=tcp", "-h", "127.0.0.1", "-P", E["MYSQL_PORT"],
            "-uroot", "-p" + E["MYSQL_ROOT_PASSWORD"], "-N", "-B", "-r"] + ([db] if db else [])


def my(q, db=None, check=True):
    """Run SQL (several statements, DELIMITER blocks) as MariaDB root;
    tab-separated rows without headers."""
    r = subprocess.run(my_args(db), input=q, capture_output=True, text=True)
    if check and r.returncode:
        fail("mariadb: %s\n%s" % (r.stderr.strip(), q[:600]))
    return r.stdout


def pg_run(q, db, superuser=False, sep="\t"):
    env = dict(os.environ, PGPASSWORD=E["PG_SUPERPASSWORD"] if superuser else E["PGPASSWORD"],
               PGOPTIONS="-c timezone=UTC")
    return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t", "-F", sep, "-h", E["PGHOST"],
                           "-p", E["PGPORT"], "-U", E["PG_SUPERUSER"] if superuser else E["PGUSER"], "-d", db],
                          input=q, capture_output=True, text=True, env=env)


def pg(q, db, superuser=False, check=True, sep="\t"):
    """Run SQL in database db (as the superuser or the test user); rows
    unaligned, fields separated by sep, session time zone UTC."""
    r = pg_run(q, db, superuser, sep)
    if check and r.returncode:
        fail("psql: %s\n%s" % (r.stderr.strip(), q[:600]))
    return r.stdout


def pg_versions(db, *tables):
    """A digest of every row version (ctid, xmin) of the tables that exist:
    it changes with any write, at once (unlike pg_stat_user_tables, whose
    counters a backend may report seconds later)."""
    q = " UNION ALL ".join(
        "SELECT '%s', ctid::text, xmin::text FROM %s" % (t.replace("'", "''"), t) for t in tables)
    return pg("SELECT coalesce(md5(string_agg(concat_ws(':', t, c, x), ',' ORDER BY t, c)), '-') "
              "FROM (%s) v(t, c, x)" % q, db, superuser=True).strip()


def pg_dsn(db, superuser=False):
    return "host=%s port=%s user=%s password=%s dbname=%s" % (
        E["PGHOST"], E["PGPORT"], E["PG_SUPERUSER"] if superuser else E["PGUSER"],
        E["PG_SUPERPASSWORD"] if superuser else E["PGPASSWORD"], db)


def cleanup(procs=(), tmp=None, pg_dbs=(), slots=(), origins_like=None, my_dbs=()):
    """Kill the test's processes, then drop what it created (inactive
    replication slots, PostgreSQL databases, replication origins whose name
    is LIKE origins_like, MariaDB databases) and its temporary directory;
    with KEEP_TMP=1 keep everything and say where it is."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    if os.environ.get("KEEP_TMP") == "1":
        log("kept: %s, databases %s (MariaDB) %s (PostgreSQL)" % (tmp, list(my_dbs), list(pg_dbs)))
        return
    for s in slots:
        pg("SELECT pg_drop_replication_slot('%s') FROM pg_replication_slots WHERE slot_name = '%s' "
           "AND NOT active" % (s, s), "postgres", superuser=True, check=False)
    for d in pg_dbs:
        pg("DROP DATABASE IF EXISTS %s WITH (FORCE)" % d, "postgres", superuser=True, check=False)
    if origins_like:
        pg("SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname LIKE '%s'"
           % origins_like, "postgres", superuser=True, check=False)
    if my_dbs:
        my("; ".join("DROP DATABASE IF EXISTS %s" % d for d in my_dbs), check=False)
    if tmp:
        subprocess.run(["rm", "-rf", tmp])


def stop(procs):
    """SIGTERM every process of procs, then wait for each (SIGKILL after
    30 s); the processes are the test's own."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def settle(what, counters, secs=4, limit=40):
    """Wait until counters() returns the same value for secs seconds (no
    ping-pong); fail after limit seconds.  Returns the settled value."""
    c0, t0, since = None, time.time(), None
    while time.time() - t0 < limit:
        c = counters()
        if c == c0:
            if since and time.time() - since >= secs:
                return c
            since = since or time.time()
        else:
            since, c0 = None, c
        time.sleep(0.5)
    fail("%s: change counters still growing after %d s: %s" % (what, limit, c0))


def mapping_triggers(yf, engine, must="CREATE TRIGGER"):
    """`autoglm-cdc mapping triggers` for the forward pipeline's view (crm
    reads MariaDB, writes PostgreSQL): the SQL for one engine."""
    r = subprocess.run([BIN, "mapping", "triggers", "--mapping", yf, "--application-id", "crm",
                        "--source", "mysql", "--sink", "postgres", engine], capture_output=True, text=True)
    if r.returncode or must not in r.stdout:
        fail("mapping triggers %s: exit %d: %s" % (engine, r.returncode, r.stderr.strip()))
    return r.stdout


def wait_sides(what, read_a, read_b, procs, done=lambda a, b: a == b, timeout=60, twice=False):
    """Poll read_a() and read_b() (MariaDB's and PostgreSQL's view) until
    done(a, b) -- with twice, also one second later (nothing in flight);
    fail if a pipeline in procs exits or after timeout.  Returns a."""
    t0 = time.time()
    a = b = None
    while time.time() - t0 < timeout:
        a, b = read_a(), read_b()
        if done(a, b):
            if not twice:
                return a
            time.sleep(1.0)
            if read_a() == a and read_b() == b:
                return a
        for p in procs:
            if p.poll() is not None:
                fail("a pipeline exited (%s) while waiting for %s" % (p.returncode, what))
        time.sleep(0.3)
    fail("%s: sides differ after %ds:\n MariaDB    %s\n PostgreSQL %s" % (what, timeout, a, b))


def kill9(p, what):
    """SIGKILL p, which must still be running: a process that already died
    (a crash on every restart) fails the test instead of going unnoticed."""
    if p.poll() is not None:
        fail("%s had already exited (%s) when it was to be killed" % (what, p.returncode))
    p.kill()
    p.wait()
    if p.returncode != -9:
        fail("%s: exit %s after SIGKILL, expected -9 (it exited on its own first)" % (what, p.returncode))


def check_sequences(got, want):
    """Per key, the values delivered must be exactly 1..want[key] in order.
    At-least-once delivery may replay (after a kill or an outage): a value
    at or below the previous one starts a replay, which then climbs by one
    again; any other jump is a lost change.  got: {key: [values in delivery
    order]}.  Returns a list of problems, empty when every key is exact."""
    errs = []
    for k in sorted(set(got) | set(want), key=str):
        vs, n = got.get(k, []), want.get(k, 0)
        if k not in want:
            errs.append("key %s: delivered but never written: %s" % (k, vs[:10]))
            continue
        cur = 0  # the value delivered last
        top = 0  # the highest value delivered
        for i, v in enumerate(vs):
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= n:
                errs.append("key %s: value %r (message %d) is not in 1..%d" % (k, v, i, n))
                break
            if v > cur + 1:
                errs.append("key %s: %d follows %d, lost %s: ... %s ..."
                            % (k, v, cur, list(range(cur + 1, v))[:5], vs[max(0, i - 5):i + 3]))
                break
            cur, top = v, max(top, v)
        else:
            if top != n:
                errs.append("key %s: delivered up to %d of 1..%d" % (k, top, n))
    return errs


def provenance_by_key(rows):
    """'key<TAB>_provenance JSON' lines (my()/pg() output) -> {key: dict}."""
    out = {}
    for r in rows.splitlines():
        k, p = r.split("\t", 1)
        out[int(k)] = json.loads(p)
    return out


def check_prediction(cand, final, col):
    """cand: {(key, field): (rank, value)}, the highest-ranked write of
    each field; final: {key: row}; col(field): the row index of field.
    Fail unless every field holds the value the rule predicts."""
    wrong = []
    for (key, field), (rank, val) in sorted(cand.items()):
        got = final[key][col(field)]
        if got != val:
            wrong.append("key %d %s: %r, the rule predicts %r (rank %s)" % (key, field, got, val, rank))
    if wrong:
        fail("converged, but not to the rule's prediction:\n  " + "\n  ".join(wrong[:10]))


def wide_args(pipe, state, mapf, source, sink, target_db, start=None, include=None, slot=None, pub=None,
              tables=None):
    """Command line of a pipeline from source "my" (MariaDB, from binlog
    position start, databases include) or "pg" (slot, publication pub,
    tables) into the wide sink "pg" or "my" (database target_db), with
    mapping file mapf, state directory state; exits 2.5 s after the last
    change."""
    a = [BIN, "--pipeline", pipe, "--state-dir", state, "-X", "mapping.files=" + mapf, "--idle-exit", "2500"]
    if sink == "pg":
        a += ["--sink", "postgres", "-X", "postgres_sink.dsn=" + pg_dsn(target_db)]
    else:
        a += ["--sink", "mysql", "-X", "mysql_sink.dsn=mysql://root:%s@127.0.0.1:%s/%s"
              % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], target_db)]
    if source == "my":
        a += ["--source", "mysql", "--mysql-dsn", "mysql://root:%s@127.0.0.1:%s"
              % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"]), "--from", start, "--include", include,
              "-X", "mysql.server_id=%d" % (7000 + zlib.crc32(pipe.encode()) % 50000)]
    else:
        a += ["--source", "postgres", "--postgres-dsn", pg_dsn(pg_source_db(slot)), "-X", "postgres.slot=" + slot,
              "-X", "postgres.publication=" + pub, "-X", "postgres.tables=" + tables]
    return a


_slot_db = {}


def pg_slot(db, slot):
    """Create logical slot (pgoutput) in db; wide_args finds db by slot."""
    pg("SELECT pg_create_logical_replication_slot('%s', 'pgoutput')" % slot, db, superuser=True)
    _slot_db[slot] = db


def pg_source_db(slot):
    return _slot_db[slot]


def run_exit(args, logf, procs, timeout=120):
    """Run a pipeline to its end (output appended to logf); returns (exit
    status, the whole log)."""
    with open(logf, "ab") as f:
        p = subprocess.Popen(args, stdout=f, stderr=f)
        procs.append(p)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            fail("%s: no exit within %d s" % (args[2], timeout))
    return rc, open(logf, errors="replace").read()


def wide_dbs(src, target, pub):
    """Databases src and target on both servers (MariaDB: dropped first),
    owned by the PostgreSQL test user, and publication pub for all tables
    of the PostgreSQL src."""
    my("DROP DATABASE IF EXISTS %s; DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; CREATE DATABASE %s"
       % (src, target, src, target))
    for d in (src, target):
        pg("CREATE DATABASE %s OWNER %s" % (d, E["PGUSER"]), "postgres", superuser=True)
    pg("CREATE PUBLICATION %s FOR ALL TABLES" % pub, src, superuser=True)


def free_port():
    """A TCP port on 127.0.0.1 nothing listens on (for --http)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_metric(port, name, want, proc, timeout=60):
    """Poll http://127.0.0.1:port/metrics until the sample `name` equals
    want, while proc runs; returns the last value seen (None: absent)."""
    got, t0 = None, time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        try:
            body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2).read().decode()
            m = re.search(r"^%s (\d+)$" % re.escape(name), body, re.M)
            got = int(m.group(1)) if m else None
            if got == want:
                break
        except OSError:
            pass
        time.sleep(0.2)
    return got


def pgx(q, db, superuser=False, check=True):
    """pg() with fields separated by \\x1f (values may hold tabs)."""
    return pg(q, db, superuser, check, sep="\x1f")


def wide_test(src, target, pub, procs, tmp, slots, seed):
    """A wide-sink test's databases (wide_dbs); fail() then cleans up the
    processes, tmp, the slots and the databases on both servers.  Logs the
    seed; returns that cleanup (for the end of the test) and a
    random.Random(seed)."""
    def done():
        cleanup(procs, tmp, pg_dbs=[src, target], slots=slots, my_dbs=[src, target])
    on_fail(done, logdir=tmp)
    wide_dbs(src, target, pub)
    log("seed %d" % seed)
    return done, random.Random(seed)


def source_table(source, db, name, cols, slots, slot=None):
    """CREATE TABLE name (cols) in db, MariaDB (returns "db.name") or
    PostgreSQL (returns "public.name"; with slot, a pgoutput slot of that
    name is made too and added to slots)."""
    if source == "my":
        my("CREATE TABLE %s.%s (%s)" % (db, name, cols))
        return "%s.%s" % (db, name)
    pg("CREATE TABLE public.%s (%s)" % (name, cols), db)
    if slot:
        slots.append(slot)
        pg_slot(db, slot)
    return "public." + name


def wide_mapping(path, source, target, sink, srctable, name, fields):
    """Write mapping file path: source id `source` maps srctable (key
    column id) as mapping `name` onto target `target` (key k bigint) in the
    wide sink "pg" (public.target) or "my"; fields: {field: (type,
    expression)}, every field owned by source."""
    decl = ", ".join("%s: {type: '%s', owner: %s}" % (f, t, source) for f, (t, _) in fields.items())
    exprs = ", ".join('%s: "%s"' % (f, e) for f, (_, e) in fields.items())
    open(path, "w").write(
        "sources: {%s: {}}\ntargets:\n  %s:\n    table: %s%s\n    key: k\n    fields: {k: bigint, %s}\n"
        "mappings:\n  - {name: %s, source: %s, table: %s, target: %s, key: {k: id}, fields: {%s}}\n"
        % (source, target, "public." if sink == "pg" else "", target, decl, name, source, srctable, target, exprs))
