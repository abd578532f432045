#!/usr/bin/env python3
"""Two-way sync: a MariaDB business table <-> a PostgreSQL wide table.

  crm       (MariaDB)     tw_<pid>.customers  --forward-->  customer_wide
  platform  (PostgreSQL)  customer_wide       --reverse-->  tw_<pid>.customers

Setup as in docs/TWO-WAY.md: both tables have `_provenance`; a trigger
on each stamps direct edits of the two-way fields (name, is_active /
status) with their rank (rule `latest`, at least the stored time + 1 us);
the forward pipeline (mysql -> postgres sink, replication origin) and the
reverse pipeline (postgres -> mysql sink, marker row + skip_replication)
carry those ranks; each source skips its own sink's writes.

  phase 1  writers on BOTH sides change the same 12 keys for ~6 s (name
           and is_active/status, value maps 1<->enabled, 0<->disabled);
           every write reads back its stamp in its own transaction, so
           the test knows each value's rank.  After the writers stop, both
           tables converge to, per field, the value of the highest rank
           ever written (the rule's prediction, computed here), and the
           change counters (offsets tables, marker row, binlog/WAL
           positions of the tables) stop growing: no ping-pong.
  phase 2  a deliberately cyclic configuration: loop prevention off on
           both sources (mysql.skip_own=false, postgres.skip_origins=''),
           expression mappings (no ranks travel), no triggers: a change
           still dies out (same_value=skip) and the counters settle.
  phase 3  rule `priority` for status (crm 2 > platform 1): an operator's
           status edit in the wide table that loses is undone by the
           trigger with a NOTICE (what an operator sees), one on a key
           crm left NULL stands; name stays `latest`; both sides converge.

Exit 0 pass, 1 fail, 77 skip.  Run: tests/integ/run.sh t_twoway_
"""
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("CDC_BIN", os.path.join(os.environ.get("CDC_BUILD", ROOT + "/build"), "autoglm-cdc"))
ENVF = os.environ.get("CDC_SVC_ENV", ROOT + "/tests/services.env")
NKEYS = 12
SECS = float(os.environ.get("CDC_TWOWAY_SECS", "6"))


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
if not E.get("MYSQL_PORT") or not E.get("PGPORT") or not os.access(BIN, os.X_OK):
    print("SKIP: needs MariaDB and PostgreSQL (tests/services.sh up) and a built autoglm-cdc")
    sys.exit(77)

ID = "%d" % os.getpid()
MDB = "tw_" + ID
PDB = "twp_" + ID
SLOTS = ["twslot_%s_%d" % (ID, i) for i in (1, 2, 3)]
PUB = "twpub_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-twoway-")
PROCS = []


def fail(m):
    print("FAIL: " + m, file=sys.stderr, flush=True)
    for f in sorted(os.listdir(TMP)):
        if f.endswith(".log"):
            print("--- %s (tail)" % f, file=sys.stderr)
            print("".join(open(os.path.join(TMP, f), errors="replace").readlines()[-15:]), file=sys.stderr)
    cleanup()
    sys.exit(1)


def my(q, db=None):
    a = ["mariadb", "--no-defaults", "--protocol=tcp", "-h", "127.0.0.1", "-P", E["MYSQL_PORT"],
         "-uroot", "-p" + E["MYSQL_ROOT_PASSWORD"], "-N", "-B", "-r"] + ([db] if db else [])
    r = subprocess.run(a, input=q, capture_output=True, text=True)
    if r.returncode:
        fail("mariadb: %s\n%s" % (r.stderr.strip(), q[:400]))
    return r.stdout


def pg(q, db, superuser=False, check=True):
    env = dict(os.environ, PGPASSWORD=E["PG_SUPERPASSWORD"] if superuser else E["PGPASSWORD"],
               PGOPTIONS="-c timezone=UTC")
    r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t", "-F", "\t", "-h", E["PGHOST"],
                        "-p", E["PGPORT"], "-U", E["PG_SUPERUSER"] if superuser else E["PGUSER"], "-d", db],
                       input=q, capture_output=True, text=True, env=env)
    if check and r.returncode:
        fail("psql: %s\n%s" % (r.stderr.strip(), q[:400]))
    return r.stdout


def pdsn(superuser=False):
    return "host=%s port=%s user=%s password=%s dbname=%s" % (
        E["PGHOST"], E["PGPORT"], E["PG_SUPERUSER"] if superuser else E["PGUSER"],
        E["PG_SUPERPASSWORD"] if superuser else E["PGPASSWORD"], PDB)


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()
    if os.environ.get("KEEP_TMP") == "1":
        log("kept: %s, databases %s (MariaDB) %s (PostgreSQL)" % (TMP, MDB, PDB))
        return
    for s in SLOTS:
        pg("SELECT pg_drop_replication_slot('%s') FROM pg_replication_slots WHERE slot_name = '%s' "
           "AND NOT active" % (s, s), "postgres", superuser=True, check=False)
    pg("DROP DATABASE IF EXISTS %s" % PDB, "postgres", superuser=True, check=False)
    pg("SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname LIKE "
       "'autoglm_cdc_tw%s%%'" % ID, "postgres", superuser=True, check=False)
    subprocess.run(["mariadb", "--no-defaults", "--protocol=tcp", "-h", "127.0.0.1", "-P", E["MYSQL_PORT"], "-uroot",
                    "-p" + E["MYSQL_ROOT_PASSWORD"], "-e", "DROP DATABASE IF EXISTS %s" % MDB], capture_output=True)
    subprocess.run(["rm", "-rf", TMP])


# ---- ranks (docs/MAPPINGS.md, docs/TWO-WAY.md) ---------------------------------

def fnv(s):
    h = 2166136261
    for c in s.encode():
        h = ((h ^ c) * 16777619) & 0xffffffff
    return "%08x" % h


def prio_hex(p):
    return "%08x" % ((p ^ 0x80000000) & 0xffffffff)


# ---- triggers: the SQL docs/TWO-WAY.md shows, for these tables -------------------

def my_trigger(src, prio, fields, prio_fields=()):
    """BEFORE INSERT/UPDATE triggers stamping direct edits (not our sinks:
    @autoglm_cdc_sink) with rule-`latest` ranks (`priority` for the
    fields in prio_fields: the priority part first)."""
    P, S = prio_hex(prio), fnv(src)
    out = []
    for ev in ("INSERT", "UPDATE"):
        body = ["DECLARE t BIGINT;", "IF COALESCE(@autoglm_cdc_sink, 0) = 0 THEN"]
        for f in fields:
            cond = "NEW.`%s` IS NOT NULL" % f if ev == "INSERT" else "NOT (NEW.`%s` <=> OLD.`%s`)" % (f, f)
            old_t = "0" if ev == "INSERT" else \
                "COALESCE(CAST(JSON_VALUE(OLD._provenance, '$.%s.t') AS SIGNED), 0)" % f
            body += ["  IF %s THEN" % cond,
                     "    SET t = GREATEST(CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED), %s + 1);" % old_t,
                     "    SET NEW._provenance = JSON_SET(COALESCE(NEW._provenance, '{}'), '$.%s', "
                     "JSON_OBJECT('s', '%s', 't', t, 'r', CONCAT(%s, '%s', REPEAT('0', 32))));" % (
                         f, src, ("'%s', '8', LPAD(LOWER(HEX(t)), 15, '0')" % P) if f in prio_fields else
                         ("'8', LPAD(LOWER(HEX(t)), 15, '0'), '%s'" % P), S),
                     "  END IF;"]
        body += ["END IF;"]
        out.append("CREATE TRIGGER tw_%s BEFORE %s ON customers FOR EACH ROW BEGIN\n%s\nEND" %
                   (ev.lower(), ev, "\n".join(body)))
    return out


# the stamping function of the documented example (docs/TWO-WAY.md)
_EX = open(os.path.join(ROOT, "mappings/examples/twoway-setup-postgres.sql")).read()
PG_TRIGGER_FN = _EX[_EX.index("CREATE OR REPLACE FUNCTION"):_EX.index("END $$;") + len("END $$;")]


def yaml_text(cyclic, srule="latest", crm_prio=1):
    if not cyclic:
        fwd = "      name: name\n      status: {from: is_active, map: {1: enabled, 0: disabled}}\n"
        rev = "      name: name\n      is_active: {from: status, map: {enabled: 1, disabled: 0}}\n"
    else:
        # expressions: no rank travels, every hop is a new change
        fwd = "      name: \"name || ''\"\n      status: \"case when is_active = 1 then 'enabled' else 'disabled' end\"\n"
        rev = "      name: \"name || ''\"\n      is_active: \"case when status = 'enabled' then 1 else 0 end\"\n"
    return """version: 1
sources:
  crm: {priority: %d}
  platform: {priority: 1}
targets:
  customer_wide:
    table: public.customer_wide
    key: customer_id
    fields:
      customer_id: bigint
      name: {type: text, owners: [crm, platform], rule: latest}
      status: {type: text, owners: [crm, platform], rule: %s}
  crm_customers:
    table: %s.customers
    key: id
    fields:
      id: bigint
      name: {type: text, owners: [crm, platform], rule: latest}
      is_active: {type: bigint, owners: [crm, platform], rule: %s}
mappings:
  - name: forward
    source: crm
    table: %s.customers
    target: customer_wide
    key: {customer_id: id}
    on_delete: ignore
    fields:
%s  - name: reverse
    source: platform
    table: public.customer_wide
    target: crm_customers
    key: {id: customer_id}
    on_delete: ignore
    fields:
%s""" % (crm_prio, srule, MDB, srule, MDB, fwd, rev)


def setup(cyclic, srule="latest", crm_prio=1):
    my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s;" % (MDB, MDB))
    my("CREATE TABLE customers (id BIGINT PRIMARY KEY, name TEXT, is_active BIGINT, "
       "_provenance LONGTEXT NOT NULL DEFAULT '{}') CHARSET utf8mb4", MDB)
    pg("DROP DATABASE IF EXISTS %s" % PDB, "postgres", superuser=True)
    pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
    pg("CREATE TABLE public.customer_wide (customer_id bigint PRIMARY KEY, name text, status text, "
       "_provenance jsonb NOT NULL DEFAULT '{}'); CREATE PUBLICATION %s FOR TABLE public.customer_wide;" % PUB, PDB)
    if not cyclic:
        for t in my_trigger("crm", crm_prio, ["name", "is_active"],
                            ("is_active",) if srule == "priority" else ()):
            my("DELIMITER //\n%s//\nDELIMITER ;\n" % t, MDB)
        pg(PG_TRIGGER_FN, PDB, superuser=True)
        pg("CREATE TRIGGER tw BEFORE INSERT OR UPDATE ON public.customer_wide FOR EACH ROW EXECUTE FUNCTION "
           "autoglm_cdc_twoway_stamp('platform', 'latest', '%s', '%s', 'name')" % (prio_hex(1), fnv("platform")),
           PDB, superuser=True)
        pg("CREATE TRIGGER tw2 BEFORE INSERT OR UPDATE ON public.customer_wide FOR EACH ROW EXECUTE FUNCTION "
           "autoglm_cdc_twoway_stamp('platform', '%s', '%s', '%s', 'status')" % (srule, prio_hex(1), fnv("platform")),
           PDB, superuser=True)
    yf = os.path.join(TMP, "twoway%s-%s.yaml" % ("-cyclic" if cyclic else "", srule))
    open(yf, "w").write(yaml_text(cyclic, srule, crm_prio))
    return yf


def start(name, yf, cyclic, n):
    common = ["--pipeline", "%s%s%d" % (name, ID, n), "--state-dir", os.path.join(TMP, "state-%s%d" % (name, n)),
              "-X", "mapping.files=" + yf, "-X", "checkpoint.interval_ms=200"]
    if name == "crm":
        a = [BIN, "run", "--application-id", "crm", "--source", "mysql", "--mysql-dsn",
             "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"]),
             "--include", MDB + ".customers", "-X", "mysql.server_id=%d" % (7000 + zlib.crc32((ID + name + str(n)).encode()) % 50000),
             "--sink", "postgres", "-X", "postgres_sink.dsn=" + pdsn(superuser=True),
             "-X", "postgres_sink.create_tables=false", "-X", "postgres_sink.same_value=skip",
             "-X", "postgres_sink.flush_ms=50", "-X", "postgres_sink.origin=autoglm_cdc_tw%s_crm" % ID]
        if cyclic:
            a += ["-X", "mysql.skip_own=false"]
    else:
        a = [BIN, "run", "--application-id", "platform", "--source", "postgres", "--postgres-dsn", pdsn(),
             "-X", "postgres.slot=" + SLOTS[n - 1], "-X", "postgres.publication=" + PUB,
             "-X", "postgres.tables=public.customer_wide",
             "--sink", "mysql", "-X", "mysql_sink.dsn=mysql://root:%s@127.0.0.1:%s/%s" % (
                 E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], MDB),
             "-X", "mysql_sink.create_tables=false", "-X", "mysql_sink.same_value=skip",
             "-X", "mysql_sink.flush_ms=50"]
        if cyclic:
            a += ["-X", "postgres.skip_origins="]
    errf = open(os.path.join(TMP, "%s%d.log" % (name, n)), "ab")
    p = subprocess.Popen(a + common, stdout=errf, stderr=errf)
    PROCS.append(p)
    return p


def m_rows():
    out = {}
    for line in my("SELECT id, COALESCE(name, '\\\\N'), COALESCE(is_active, -1) FROM customers ORDER BY id", MDB).splitlines():
        i, n, a = line.split("\t")
        out[int(i)] = (n, {"1": "enabled", "0": "disabled"}.get(a, a))
    return out


def p_rows():
    out = {}
    for line in pg("SELECT customer_id, coalesce(name, '\\N'), coalesce(status, '-1') FROM customer_wide "
                   "ORDER BY 1", PDB).splitlines():
        i, n, s = line.split("\t")
        out[int(i)] = (n, s)
    return out


def counters():
    """Everything that grows while changes go round (not the offsets rows'
    txns: other databases' transactions on the shared servers count there)."""
    o = pg("SELECT coalesce(sum(changes), 0) FROM autoglm_cdc_offsets", PDB, superuser=True).strip()
    m = my("SELECT COALESCE(SUM(changes), 0) FROM autoglm_cdc_offsets", MDB).strip()
    mk = my("SELECT COALESCE(SUM(n), 0) FROM autoglm_cdc_marker", MDB).strip()
    w = pg("SELECT n_tup_upd + n_tup_ins FROM pg_stat_user_tables WHERE relname = 'customer_wide'", PDB).strip()
    return (o, m, mk, w)


def wait_equal(what, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        a, b = m_rows(), p_rows()
        if a == b and len(a) >= NKEYS:
            return a
        for p in PROCS:
            if p.poll() is not None:
                fail("a pipeline exited (%s) while waiting for %s" % (p.returncode, what))
        time.sleep(0.3)
    fail("%s: sides differ after %ds:\n MariaDB    %s\n PostgreSQL %s" % (what, timeout, m_rows(), p_rows()))


def settle(what, secs=4):
    """The counters must stop moving (no ping-pong)."""
    c0, t0 = None, time.time()
    stable_since = None
    while time.time() - t0 < 40:
        c = counters()
        if c == c0:
            if stable_since and time.time() - stable_since >= secs:
                return c
            stable_since = stable_since or time.time()
        else:
            stable_since, c0 = None, c
        time.sleep(0.5)
    fail("%s: change counters still growing after 40 s: %s" % (what, c0))


# ---- writers ------------------------------------------------------------------------

def my_writer(seed, n, pause):
    rnd = random.Random(seed)
    sql = ["SET SESSION autocommit = 1;"]
    for k in range(n):
        key = rnd.randrange(1, NKEYS + 1)
        sets = []
        if rnd.random() < 0.7:
            sets.append("name = 'm%d-%d'" % (seed, k))
        if rnd.random() < 0.6 or not sets:
            sets.append("is_active = %d" % rnd.randrange(2))
        sql.append("START TRANSACTION; UPDATE customers SET %s WHERE id = %d; SELECT 'W', id, name, is_active, "
                   "JSON_VALUE(_provenance, '$.name.r'), JSON_VALUE(_provenance, '$.is_active.r') FROM customers "
                   "WHERE id = %d; COMMIT; DO SLEEP(%.3f);" % (", ".join(sets), key, key, pause * rnd.random()))
    a = ["mariadb", "--no-defaults", "--protocol=tcp", "-h", "127.0.0.1", "-P", E["MYSQL_PORT"],
         "-uroot", "-p" + E["MYSQL_ROOT_PASSWORD"], "-N", "-B", "-r", MDB]
    return subprocess.Popen(a, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), \
        "\n".join(sql) + "\n"


def pg_writer(seed, n, pause):
    rnd = random.Random(seed)
    sql = []
    for k in range(n):
        key = rnd.randrange(1, NKEYS + 1)
        sets = []
        if rnd.random() < 0.7:
            sets.append("name = 'p%d-%d'" % (seed, k))
        if rnd.random() < 0.6 or not sets:
            sets.append("status = '%s'" % rnd.choice(["enabled", "disabled"]))
        sql.append("BEGIN; UPDATE customer_wide SET %s WHERE customer_id = %d; SELECT 'W', customer_id, name, status, "
                   "_provenance->'name'->>'r', _provenance->'status'->>'r' FROM customer_wide WHERE customer_id = %d; "
                   "COMMIT; SELECT pg_sleep(%.3f);" % (", ".join(sets), key, key, pause * rnd.random()))
    env = dict(os.environ, PGPASSWORD=E["PGPASSWORD"])
    return subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t", "-F", "\t", "-h", E["PGHOST"],
                             "-p", E["PGPORT"], "-U", E["PGUSER"], "-d", PDB], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env), "\n".join(sql) + "\n"


def run_writers():
    n = int(SECS * 25)
    ws = [my_writer(1, n, 0.08), my_writer(2, n, 0.08), pg_writer(3, n, 0.08), pg_writer(4, n, 0.08)]
    outs = []
    import threading
    res = [None] * len(ws)

    def go(i):
        res[i] = ws[i][0].communicate(ws[i][1])
    th = [threading.Thread(target=go, args=(i,)) for i in range(len(ws))]
    for t in th:
        t.start()
    for t in th:
        t.join()
    for i, (p, _) in enumerate(ws):
        if p.returncode:
            fail("writer %d failed: %s" % (i, res[i][1][-500:]))
        outs.append(res[i][0])
    cand = {}  # (key, field) -> (rank, value)
    nwrites = 0
    for side, out in zip(("m", "m", "p", "p"), outs):
        for line in out.splitlines():
            f = line.split("\t")
            if len(f) != 6 or f[0] != "W":
                continue
            nwrites += 1
            key = int(f[1])
            st = {"1": "enabled", "0": "disabled"}.get(f[3], f[3]) if side == "m" else f[3]
            for field, val, rank in (("name", f[2], f[4]), ("status", st, f[5])):
                if rank in ("", "NULL", "\\N"):
                    continue
                old = cand.get((key, field))
                if old is None or rank > old[0]:
                    cand[(key, field)] = (rank, val)
    return cand, nwrites


# ---- phase 1: two-way with writers on both sides -------------------------------------

log("phase 1: two-way sync, writers on both sides")
YF = setup(False)
P = [start("crm", YF, False, 1), start("platform", YF, False, 1)]
time.sleep(2.5)  # slots and binlog dump in place
my("INSERT INTO customers (id, name, is_active) VALUES %s" %
   ", ".join("(%d, 'seed-%d', %d)" % (i, i, i % 2) for i in range(1, NKEYS + 1)), MDB)
wait_equal("the seeded rows")
log("seeded %d rows on both sides" % NKEYS)
cand, nw = run_writers()
log("%d writes on the two sides" % nw)
final = wait_equal("convergence after the writers stopped")
c1 = settle("after the writers")
# the rule's prediction: per field, the value of the highest rank written
wrong = []
for (key, field), (rank, val) in sorted(cand.items()):
    got = final[key][0 if field == "name" else 1]
    if got != val:
        wrong.append("key %d %s: %r, the rule predicts %r (rank %s)" % (key, field, got, val, rank))
if wrong:
    fail("converged, but not to the rule's prediction:\n  " + "\n  ".join(wrong[:10]))
# provenance: the same winning rank on both sides
mp = {int(r.split("\t")[0]): json.loads(r.split("\t")[1]) for r in
      my("SELECT id, _provenance FROM customers", MDB).splitlines()}
pp = {int(r.split("\t")[0]): json.loads(r.split("\t")[1]) for r in
      pg("SELECT customer_id, _provenance FROM customer_wide", PDB).splitlines()}
same = 0
for k in mp:
    for fm, fp in (("name", "name"), ("is_active", "status")):
        rm, rp = mp[k].get(fm, {}).get("r"), pp[k].get(fp, {}).get("r")
        best = cand.get((k, fp), ("",))[0]
        if rm == rp == best:
            same += 1
        elif max(rm or "", rp or "") != best:
            fail("key %d: %s: winning rank %s on neither side (MariaDB %s, PostgreSQL %s)" %
                 (k, fm, best, mp[k].get(fm), pp[k].get(fp)))
        # else: the winner's value was already there on one side, so
        # same_value=skip did not rewrite it; that side keeps the rank of
        # the equal value it had (docs/TWO-WAY.md)
log("both sides converged to the rule's prediction (%d fields; %d with the winning rank on both sides, the "
    "rest equal values kept); counters settled at %s" % (len(cand), same, (c1,)))
time.sleep(3)
if counters() != c1:
    fail("counters moved after settling: %s -> %s (ping-pong)" % (c1, counters()))
for p in P:
    p.terminate()
for p in P:
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
PROCS.clear()
pg("SELECT pg_drop_replication_slot('%s')" % SLOTS[0], PDB, superuser=True, check=False)

# ---- phase 2: a deliberately cyclic configuration ---------------------------------------

log("phase 2: cyclic configuration (loop prevention off, expression mappings, no triggers)")
YF = setup(True)
P = [start("crm", YF, True, 2), start("platform", YF, True, 2)]
time.sleep(2.5)
my("INSERT INTO customers (id, name, is_active) VALUES %s" %
   ", ".join("(%d, 'c-%d', %d)" % (i, i, i % 2) for i in range(1, NKEYS + 1)), MDB)
wait_equal("the cyclic seed")
for i in range(1, 5):
    my("UPDATE customers SET is_active = 1 - is_active, name = CONCAT(name, '+') WHERE id = %d" % i, MDB)
    pg("UPDATE customer_wide SET name = name || '*' WHERE customer_id = %d" % (i + 6), PDB)
wait_equal("the cyclic updates")
c2 = settle("the cyclic configuration")
time.sleep(3)
if counters() != c2:
    fail("cyclic configuration: counters still moving: %s -> %s" % (c2, counters()))
log("cyclic configuration died out; counters settled at %s" % (c2,))
for p in P:
    p.terminate()
for p in P:
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
PROCS.clear()
pg("SELECT pg_drop_replication_slot('%s')" % SLOTS[1], PDB, superuser=True, check=False)

# ---- phase 3: rule priority, what an operator sees -------------------------------------------

log("phase 3: status under rule priority (crm 2 > platform 1): a platform edit that loses is undone")
YF = setup(False, "priority", 2)
P = [start("crm", YF, False, 3), start("platform", YF, False, 3)]
time.sleep(2.5)
my("INSERT INTO customers (id, name, is_active) VALUES %s" %
   ", ".join("(%d, 'q-%d', %s)" % (i, i, "NULL" if i > 6 else str(i % 2)) for i in range(1, NKEYS + 1)), MDB)
wait_equal("the priority seed")
env = dict(os.environ, PGPASSWORD=E["PGPASSWORD"])
r = subprocess.run(["psql", "-X", "-h", E["PGHOST"], "-p", E["PGPORT"], "-U", E["PGUSER"], "-d", PDB, "-c",
                    "UPDATE customer_wide SET status = CASE WHEN status = 'enabled' THEN 'disabled' ELSE 'enabled' END, "
                    "name = name || '!' WHERE customer_id IN (1, 2, 9)"], capture_output=True, text=True, env=env)
if "autoglm-cdc: status keeps" not in r.stderr:
    fail("no NOTICE for the losing platform edit: %s %s" % (r.stdout, r.stderr))
log("operator sees: " + r.stderr.strip().splitlines()[0])
my("UPDATE customers SET is_active = 1 - is_active WHERE id = 3", MDB)
final = wait_equal("convergence under rule priority")
exp = {1: ("q-1!", "enabled"), 2: ("q-2!", "disabled"), 3: ("q-3", "disabled"), 9: ("q-9!", "enabled")}
for k, v in exp.items():
    if final[k] != v:
        fail("rule priority: key %d is %s, expected %s" % (k, final[k], v))
c3 = settle("rule priority")
log("rule priority: crm's status kept on keys it set, platform filled key 9 (crm had none); settled at %s" % (c3,))
for p in P:
    p.terminate()
for p in P:
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
PROCS.clear()
cleanup()
print("ok - two-way sync converges to the rule and stops; a cyclic configuration dies out")
sys.exit(0)
