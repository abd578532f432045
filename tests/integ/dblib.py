"""What the Python integration tests share (tests/integ/t_*.py).

The servers' settings come from tests/services.env (CDC_SVC_ENV); MariaDB
and PostgreSQL are driven with their command-line clients (no Python
driver needed), as root / the PostgreSQL superuser or the test user.

    import dblib
    from dblib import E, BIN, log, fail, my, pg
    dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")
    dblib.on_fail(cleanup, logdir=TMP)    # fail() tails TMP/*.log, cleans up

fail() prints the message (and the tails of the logs), runs the test's
cleanup and exits 1; need() exits 77 (skip) when a server or the binary is
missing.
"""
import os
import subprocess
import sys

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

_fail_hook = {"cleanup": None, "logdir": None, "tail": 15}


def on_fail(cleanup, logdir=None, tail=15):
    """fail() then prints the last `tail` lines of logdir/*.log and runs
    cleanup()."""
    _fail_hook.update(cleanup=cleanup, logdir=logdir, tail=tail)


def fail(m):
    print("FAIL: " + m, file=sys.stderr, flush=True)
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


def need(*keys, what):
    """Skip (exit 77) unless tests/services.env has every key and the
    binary is built."""
    if any(not E.get(k) for k in keys) or not os.access(BIN, os.X_OK):
        print("SKIP: needs %s (tests/services.sh up) and a built autoglm-cdc" % what)
        sys.exit(77)


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
