#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The example mapping end to end: MariaDB + PostgreSQL -> customer_wide.

Sources (mappings/examples/customer_wide.yaml): crm.customers and
crm.tiers (MariaDB, pipeline "crm"), support.tickets (MariaDB, pipeline
"support"), public.accounts (PostgreSQL, pipeline "erp").  A seeded
random workload runs in phases separated by > 1 s (MariaDB commit times
have second resolution), so the conflict rules have a well-defined
answer; that answer is computed here, in Python, from the workload alone
(an independent model of docs/MAPPINGS.md), and compared field by field,
with the winning source, to the wide table.

  run 1  the three pipelines concurrently into W1         == model
  run 2  erp, support, crm (batches of 3), then crm and support again
         under other pipeline names (every change applied twice) into W2
         == W1, values and full provenance
  run 4  the same pipelines with --sink mysql into MariaDB == W1
  run 3  crm killed with SIGKILL at random moments and restarted, into
         W3 == W1, and the offsets table counts every mapped change
         exactly once (same count as run 1)
  odd    a second target with SQL-shaped table and column names; values
         that look like SQL, JSON or array literals are stored verbatim
  validate / mapping test: exit codes and messages

Env: CDC_MAP_CUSTOMERS (default 80), CDC_MAP_KILLS (default 5).
Exit 0 pass, 1 fail, 77 skip.
"""
import datetime
import json
import os
import random
import subprocess
import tempfile
import time
import zlib
from decimal import Decimal, ROUND_HALF_UP
from zoneinfo import ZoneInfo

import dblib
from dblib import BIN, E, ROOT, fail, log, my

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

NCUST = int(os.environ.get("CDC_MAP_CUSTOMERS", "80"))
KILLS = int(os.environ.get("CDC_MAP_KILLS", "5"))
MAPFILE = ROOT + "/mappings/examples/customer_wide.yaml"


ID = "%d" % os.getpid()
SRCDB = "mapsrc_" + ID
WDB = ["mapw_%s_%d" % (ID, i) for i in (1, 2, 3)]
PUB = "mpub_" + ID
SLOTS = ["mslot_%s_%d" % (ID, i) for i in (1, 2, 3, 4)]
MYW = "mapw_my_" + ID  # MariaDB target of run 4
TMP = tempfile.mkdtemp(prefix="cdc-map-")
PROCS = []


# ---- servers ------------------------------------------------------------------

def pg(q, db, superuser=False, check=True):
    return dblib.pg(q, db, superuser, check, sep="\x1f")


dsn = dblib.pg_dsn


def cleanup():
    dblib.cleanup(PROCS, TMP, pg_dbs=[SRCDB] + WDB, slots=SLOTS, my_dbs=[MYW, "crm", "support"])


dblib.on_fail(cleanup)


# ---- setup --------------------------------------------------------------------

my("DROP DATABASE IF EXISTS crm; DROP DATABASE IF EXISTS support; CREATE DATABASE crm; CREATE DATABASE support;"
   "CREATE TABLE crm.tiers (id INT PRIMARY KEY, name VARCHAR(50));"
   "CREATE TABLE crm.customers (id INT PRIMARY KEY, first_name VARCHAR(100) NOT NULL, last_name VARCHAR(100),"
   " email VARCHAR(100), is_active TINYINT NOT NULL, created_at DATETIME NOT NULL, tier_id INT,"
   " credit_limit DECIMAL(12,2)) CHARSET utf8mb4;"
   "CREATE TABLE support.tickets (id INT PRIMARY KEY, customer_id INT NOT NULL, subject VARCHAR(200),"
   " created_at DATETIME NOT NULL) CHARSET utf8mb4;")
ms = my("SHOW MASTER STATUS").split()
FROM = "%s:%s" % (ms[0], ms[1])
for d in [SRCDB] + WDB:
    pg("CREATE DATABASE %s OWNER %s" % (d, E["PGUSER"]), "postgres", superuser=True)
pg("CREATE TABLE public.accounts (id int PRIMARY KEY, customer_ref bigint NOT NULL, account_name text,"
   " balance numeric(12,3), credit_limit numeric(12,2), updated_at timestamptz);"
   "ALTER TABLE public.accounts REPLICA IDENTITY FULL;"
   "CREATE PUBLICATION %s FOR TABLE public.accounts;" % PUB, SRCDB)
for s in SLOTS:
    pg("SELECT pg_create_logical_replication_slot('%s', 'pgoutput')" % s, SRCDB, superuser=True)

ODD_YAML = os.path.join(TMP, "odd.yaml")
open(ODD_YAML, "w").write("""
targets:
  odd:
    table: 'public.Odd "Wide"; DROP TABLE accounts;--'
    key: select
    fields:
      select: text
      from-date: {type: date, owner: erp}
      order: {type: text, owner: erp}
mappings:
  - source: erp
    table: public.accounts
    target: odd
    key: {select: "'acct ' || id"}
    fields:
      from-date: updated_at
      order: account_name
""")
MAPS = MAPFILE + "," + ODD_YAML


# ---- the model (docs/MAPPINGS.md, written independently of the C code) ----

PRIO = {"crm": 1, "erp": 2, "support": 0}
WEIGHT = {"crm": 0.9, "erp": 0.6, "support": 1.0}
RULE = {"name": "latest", "credit_limit": "priority", "segment": "weighted"}
BERLIN = ZoneInfo("Europe/Berlin")


class Model:
    def __init__(self):
        self.rows = {}  # key -> {field: (value, rank, source)}
        self.seq = 0

    def rank(self, field, src, phase):
        self.seq += 1
        r = RULE.get(field, "latest")
        if r == "priority":
            return (PRIO[src], phase, src, self.seq)
        if r == "weighted":
            return (WEIGHT[src], phase, PRIO[src], src, self.seq)
        return (phase, PRIO[src], src, self.seq)

    def offer(self, key, vals, src, phase):
        row = self.rows.setdefault(key, {})
        for f, v in vals.items():
            if v is None and RULE.get(f) == "priority" and not getattr(self, "clearing", False):
                continue
            rk = self.rank(f, src, phase)
            if f not in row or rk > row[f][1]:
                row[f] = (v, rk, src)

    def clear(self, key, fields, src, phase):
        self.clearing = True
        self.offer(key, {f: None for f in fields}, src, phase)
        self.clearing = False

    def lookup(self, field_match, value, vals, src, phase):
        for key, row in self.rows.items():
            if field_match in row and row[field_match][0] == value:
                self.offer(key, vals, src, phase)


def q2(x):
    return None if x is None else str(Decimal(x).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def crm_vals(c):
    if c["email"] == "test@example.com":
        return None
    name = (c["first_name"] + " " + (c["last_name"] or "")).strip(" \t\n\r\f\v")
    cl = c["credit_limit"]
    seg = "inactive" if c["is_active"] == 0 else ("key-account" if cl is not None and Decimal(cl) >= 10000
                                                  else "standard")
    loc = datetime.datetime.strptime(c["created_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BERLIN)
    return {"name": name, "email": c["email"].lower() if c["email"] else None,
            "status": "enabled" if c["is_active"] == 1 else "disabled",
            "signup_at": loc.timestamp(), "tier_id": str(c["tier_id"]) if c["tier_id"] is not None else None,
            "credit_limit": q2(cl), "segment": seg}


CRM_FIELDS = ["name", "email", "status", "signup_at", "tier_id", "credit_limit", "segment"]
ERP_FIELDS = ["name", "credit_limit", "balance", "account_updated_at", "segment"]


def erp_vals(a):
    return {"name": a["account_name"], "credit_limit": q2(a["credit_limit"]), "balance": q2(a["balance"]),
            "account_updated_at": a["updated_at"].timestamp(),
            "segment": "debtor" if Decimal(a["balance"]) < 0 else None}


def changed(old, new):
    return {f: v for f, v in new.items() if old.get(f, object()) != v}


# ---- workload -------------------------------------------------------------------

R = random.Random(int(os.environ.get("CDC_MAP_SEED", "5")))
M = Model()
FIRST = ["Ann", "Bo", "Robert'); DROP TABLE customer_wide;--", "Zoë", "O'Brien", "NULL", "{\"a\",NULL}",
         "back\\slash", "  padded  ", "漢字", "x\"y"]
LAST = [None, "Lee", "Ek", "Smith; DELETE FROM crm.customers", "", "Müller"]


def sqls(v):
    if v is None:
        return "NULL"
    return "'" + str(v).replace("\\", "\\\\").replace("'", "''") + "'"


def pgs(v):
    if v is None:
        return "NULL"
    return "'" + str(v).replace("'", "''") + "'"


def rand_dt():
    # around both DST switches of 2024 in Berlin
    base = R.choice([datetime.datetime(2024, 3, 30, 22), datetime.datetime(2024, 10, 26, 22),
                     datetime.datetime(2024, 7, 1)])
    d = base + datetime.timedelta(minutes=R.randrange(0, 60 * 8))
    if base.month in (3,) and d.hour == 2 and d.day == 31:
        d += datetime.timedelta(hours=1)  # the nonexistent hour: avoid it
    if base.month == 10 and d.hour == 2 and d.day == 27:
        d += datetime.timedelta(hours=1)  # the ambiguous hour: avoid it
    return d.strftime("%Y-%m-%d %H:%M:%S")


def rand_amount(scale):
    v = Decimal(R.randrange(-200000, 2000000)) / (10 ** scale)
    return str(v)


customers, accounts, tickets = {}, {}, {}
TIERS = {1: "Bronze", 2: "Silver", 3: "Gold"}
phase = 0
next_ticket = 1


def add_ticket(ph):
    global next_ticket
    t = {"id": next_ticket, "customer_id": R.randrange(1, NCUST + 10), "subject": R.choice(FIRST) + " problem",
         "created_at": rand_dt()}
    next_ticket += 1
    my("INSERT INTO support.tickets VALUES (%d, %d, %s, %s)" % (t["id"], t["customer_id"], sqls(t["subject"]),
                                                               sqls(t["created_at"])))
    tickets[t["id"]] = t
    M.offer(t["customer_id"], {"last_ticket_id": str(t["id"]), "last_ticket_subject": t["subject"],
                               "last_ticket_at": datetime.datetime.strptime(
                                   t["created_at"], "%Y-%m-%d %H:%M:%S").replace(
                                   tzinfo=datetime.timezone.utc).timestamp()}, "support", ph)


log("phase A: crm inserts, tickets")
phase = 1
for tid, name in TIERS.items():
    my("INSERT INTO crm.tiers VALUES (%d, %s)" % (tid, sqls(name)))  # no wide rows yet: no effect
for i in range(1, NCUST + 1):
    c = {"id": i, "first_name": R.choice(FIRST), "last_name": R.choice(LAST),
         "email": "test@example.com" if R.random() < .08 else "User%d@Example.org" % i,
         "is_active": R.choice([0, 1]), "created_at": rand_dt(), "tier_id": R.choice([None, 1, 2, 3]),
         "credit_limit": R.choice([None, rand_amount(2), "15000.00"])}
    my("INSERT INTO crm.customers VALUES (%d, %s, %s, %s, %d, %s, %s, %s)" % (
        i, sqls(c["first_name"]), sqls(c["last_name"]), sqls(c["email"]), c["is_active"], sqls(c["created_at"]),
        sqls(c["tier_id"]), sqls(c["credit_limit"])))
    customers[i] = c
    v = crm_vals(c)
    if v:
        M.offer(i, v, "crm", phase)
for _ in range(NCUST // 3):
    add_ticket(phase)
time.sleep(1.6)

log("phase B: erp inserts")
phase = 2
for aid in range(1, int(NCUST * .6) + 1):
    a = {"id": aid, "customer_ref": R.randrange(1, NCUST + 10), "account_name": R.choice(FIRST) + " Ltd",
         "balance": rand_amount(3), "credit_limit": R.choice([None, rand_amount(2)]),
         "updated_at": datetime.datetime(2024, 4, 1, tzinfo=datetime.timezone.utc) +
         datetime.timedelta(seconds=R.randrange(0, 10 ** 7), microseconds=R.randrange(0, 10 ** 6))}
    pg("INSERT INTO accounts VALUES (%d, %d, %s, %s, %s, %s)" % (
        aid, a["customer_ref"], pgs(a["account_name"]), a["balance"], a["credit_limit"] or "NULL",
        pgs(a["updated_at"].isoformat())), SRCDB)
    accounts[aid] = a
    M.offer(a["customer_ref"], erp_vals(a), "erp", phase)
time.sleep(1.6)

log("phase C: crm updates and deletes, more tickets")
phase = 3
for i in R.sample(sorted(customers), NCUST // 2):
    c = customers[i]
    old = crm_vals(c)
    n = dict(c)
    what = R.choice(["name", "active", "credit", "tier", "email", "noop", "multi"])
    if what in ("name", "multi"):
        n["first_name"], n["last_name"] = R.choice(FIRST), R.choice(LAST)
    if what in ("active", "multi"):
        n["is_active"] = 1 - c["is_active"]
    if what in ("credit", "multi"):
        n["credit_limit"] = R.choice([None, rand_amount(2), "20000.00"])
    if what == "tier":
        n["tier_id"] = R.choice([None, 1, 2, 3])
    if what == "email" and c["email"] != "test@example.com":
        n["email"] = "Changed%d@Example.ORG" % i
    my("UPDATE crm.customers SET first_name=%s, last_name=%s, email=%s, is_active=%d, tier_id=%s, "
       "credit_limit=%s WHERE id=%d" % (sqls(n["first_name"]), sqls(n["last_name"]), sqls(n["email"]),
                                         n["is_active"], sqls(n["tier_id"]), sqls(n["credit_limit"]), i))
    customers[i] = n
    new = crm_vals(n)
    if new and old and n != c:
        M.offer(i, changed(old, new), "crm", phase)
for i in R.sample(sorted(customers), 6):
    my("DELETE FROM crm.customers WHERE id=%d" % i)
    if crm_vals(customers[i]):
        M.clear(i, CRM_FIELDS, "crm", phase)
    del customers[i]
for _ in range(NCUST // 4):
    add_ticket(phase)
time.sleep(1.6)

log("phase D: erp updates, deletes, key moves")
phase = 4
for aid in R.sample(sorted(accounts), len(accounts) // 2):
    a = accounts[aid]
    old = erp_vals(a)
    n = dict(a)
    n["balance"] = rand_amount(3)
    if R.random() < .4:
        n["account_name"] = R.choice(FIRST) + " AB"
    pg("UPDATE accounts SET balance=%s, account_name=%s WHERE id=%d" % (n["balance"], pgs(n["account_name"]),
                                                                       aid), SRCDB)
    accounts[aid] = n
    M.offer(n["customer_ref"], changed(old, erp_vals(n)), "erp", phase)
for aid in R.sample(sorted(accounts), 4):
    pg("DELETE FROM accounts WHERE id=%d" % aid, SRCDB)
    M.clear(accounts[aid]["customer_ref"], ERP_FIELDS, "erp", phase)
    del accounts[aid]
for aid in R.sample(sorted(accounts), 3):
    a = accounts[aid]
    n = dict(a)
    n["customer_ref"] = NCUST + 20 + aid
    pg("UPDATE accounts SET customer_ref=%d WHERE id=%d" % (n["customer_ref"], aid), SRCDB)
    M.clear(a["customer_ref"], ERP_FIELDS, "erp", phase)
    M.offer(n["customer_ref"], erp_vals(n), "erp", phase)
    accounts[aid] = n
time.sleep(1.6)

log("phase E: tier renames (dimension change)")
phase = 5
for tid in TIERS:
    TIERS[tid] = TIERS[tid] + " (renamed)"
    my("UPDATE crm.tiers SET name=%s WHERE id=%d" % (sqls(TIERS[tid]), tid))
    M.lookup("tier_id", str(tid), {"tier_name": TIERS[tid]}, "crm", phase)


# ---- running the pipelines --------------------------------------------------------

def args(src, pipe, target_db, extra=()):
    a = [BIN, "--pipeline", pipe, "--application-id", src, "--state-dir", os.path.join(TMP, "state-" + pipe),
         "-X", "mapping.files=" + MAPS, "--idle-exit", "4000"]
    if target_db == MYW:
        a += ["--sink", "mysql", "-X", "mysql_sink.dsn=mysql://root:%s@127.0.0.1:%s/%s" % (
            E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"], MYW)]
    else:
        a += ["--sink", "postgres", "-X", "postgres_sink.dsn=" + dsn(target_db)]
    if src == "erp":
        slot = extra[0]
        extra = extra[1:]
        a += ["--source", "postgres", "--postgres-dsn", dsn(SRCDB), "-X", "postgres.slot=" + slot,
              "-X", "postgres.publication=" + PUB, "-X", "postgres.tables=public.accounts"]
    else:
        a += ["--source", "mysql", "--mysql-dsn", "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"],
                                                                                   E["MYSQL_PORT"]),
              "--from", FROM, "--include", src + ".*",
              "-X", "mysql.server_id=%d" % (7000 + zlib.crc32(pipe.encode()) % 50000)]
    return a + list(extra)


def start(src, pipe, target_db, extra=()):
    errf = open(os.path.join(TMP, pipe + ".log"), "ab")
    p = subprocess.Popen(args(src, pipe, target_db, extra), stdout=errf, stderr=errf)
    PROCS.append(p)
    return p


def wait(p, pipe, timeout=180):
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("%s did not finish; log:\n%s" % (pipe, open(os.path.join(TMP, pipe + ".log")).read()[-3000:]))
    if rc != 0:
        fail("%s exited %d; log:\n%s" % (pipe, rc, open(os.path.join(TMP, pipe + ".log")).read()[-3000:]))


COLS = ["name", "email", "status", "signup_at", "tier_id", "tier_name", "credit_limit", "balance",
        "account_updated_at", "segment", "last_ticket_id", "last_ticket_subject", "last_ticket_at"]
TS = {"signup_at", "account_updated_at", "last_ticket_at"}


def wide(db):
    sel = ", ".join(("extract(epoch from %s)::text" % c) if c in TS else ("%s::text" % c) for c in COLS)
    out = pg("SELECT customer_id, %s, _provenance::text FROM customer_wide_provenance() ORDER BY customer_id" % sel, db)
    rows = {}
    for line in out.split("\n"):
        if not line:
            continue
        f = line.split("\x1f")
        vals = [None if x == "" else x for x in f[1:-1]]
        rows[int(f[0])] = (dict(zip(COLS, vals)), json.loads(f[-1]))
    return rows


log("run 1: three pipelines at once")
ps = [("crm", "crm1"), ("support", "sup1"), ("erp", "erp1")]
procs = [start(s, n, WDB[0], (SLOTS[0],) if s == "erp" else ()) for s, n in ps]
for (s, n), p in zip(ps, procs):
    wait(p, n)
W1 = wide(WDB[0])
# the sink created customer_wide with room for in-place updates
ro = pg("SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'customer_wide'", WDB[0]).strip()
if ro != "fillfactor=80":
    fail("customer_wide reloptions %r, expected fillfactor=80 (postgres_sink.fillfactor default)" % ro)

# compare with the model
bad = []
for key in sorted(set(M.rows) | set(W1)):
    if key not in W1:
        bad.append("customer %d missing from the wide table" % key)
        continue
    if key not in M.rows:
        bad.append("customer %d should not exist" % key)
        continue
    got, prov = W1[key]
    for f in COLS:
        exp = M.rows[key].get(f)
        ev, esrc = (exp[0], exp[2]) if exp else (None, None)
        gv = got[f]
        if f in TS:
            ok = (ev is None and gv is None) or (ev is not None and gv is not None and abs(float(gv) - ev) < 1e-5)
        else:
            ok = ev == gv
        if not ok:
            bad.append("customer %d field %s: wide %r, expected %r (from %s)" % (key, f, gv, ev, esrc))
        psrc = prov.get(f, {}).get("s")
        if esrc != psrc:
            bad.append("customer %d field %s: provenance %r, expected %r" % (key, f, psrc, esrc))
if bad:
    fail("run 1: %d differences:\n%s" % (len(bad), "\n".join(bad[:30])))
log("run 1: %d wide rows equal the model (values and winning sources)" % len(W1))

# the odd target: names and values verbatim
odd = pg('SELECT "select", "from-date"::text, "order" FROM public."Odd ""Wide""; DROP TABLE accounts;--" '
         'ORDER BY 1', WDB[0])
exp_odd = sorted(("acct %d" % a["id"], a["updated_at"].astimezone(datetime.timezone.utc).strftime("%Y-%m-%d"),
                  a["account_name"]) for a in accounts.values())
got_odd = sorted(tuple(line.split("\x1f")) for line in odd.split("\n") if line)
# accounts deleted in phase D are cleared (order/from-date NULL), not removed
got_live = [r for r in got_odd if r[2] != ""]
if got_live != exp_odd:
    fail("odd target differs:\n got %s\n exp %s" % (got_live[:5], exp_odd[:5]))
if pg("SELECT count(*) FROM accounts", SRCDB).strip() != str(len(accounts)):
    fail("the source table was touched")
log("SQL-shaped identifiers and values stored verbatim (%d rows)" % len(got_live))

log("run 2: other order, small batches, every change twice")
for s, n, extra in [("erp", "erp2", (SLOTS[1],)), ("support", "sup2", ()),
                    ("crm", "crm2", ("-X", "postgres_sink.batch_rows=3")),
                    ("crm", "crm2b", ("-X", "postgres_sink.batch_rows=50")), ("support", "sup2b", ())]:
    wait(start(s, n, WDB[1], extra), n)
W2 = wide(WDB[1])
if W2 != W1:
    diff = [k for k in set(W1) | set(W2) if W1.get(k) != W2.get(k)]
    fail("run 2 differs from run 1 for customers %s:\n1: %s\n2: %s" % (
        diff[:5], W1.get(diff[0]), W2.get(diff[0])))
log("run 2: same rows and provenance")

log("run 3: kill -9 the crm pipeline %d times" % KILLS)
wait(start("erp", "erp3", WDB[2], (SLOTS[2],)), "erp3")
wait(start("support", "sup3", WDB[2]), "sup3")
for k in range(KILLS):
    p = start("crm", "crm3", WDB[2], ("-X", "postgres_sink.batch_rows=4", "-X", "postgres_sink.flush_ms=20"))
    time.sleep(R.uniform(0.15, 0.9))
    dblib.kill9(p, "crm3 (kill %d)" % (k + 1))
wait(start("crm", "crm3", WDB[2], ("-X", "postgres_sink.batch_rows=4")), "crm3")
W3 = wide(WDB[2])
if W3 != W1:
    diff = [k for k in set(W1) | set(W3) if W1.get(k) != W3.get(k)]
    fail("run 3 differs from run 1 for customers %s" % diff[:5])
c1 = pg("SELECT changes FROM autoglm_cdc_offsets WHERE pipeline = 'crm1'", WDB[0]).strip()
c3 = pg("SELECT changes FROM autoglm_cdc_offsets WHERE pipeline = 'crm3'", WDB[2]).strip()
if not c1 or c1 != c3:
    fail("exactly once: crm1 applied %s mapped changes, crm3 (with kills) %s" % (c1, c3))
log("run 3: same rows after kills; %s mapped changes applied exactly once" % c3)

log("run 4: the same pipelines into a MariaDB wide table (--sink mysql)")
my("CREATE DATABASE %s" % MYW)
ps = [("crm", "crm4"), ("support", "sup4"), ("erp", "erp4")]
procs = [start(s, n, MYW, (SLOTS[3],) if s == "erp" else ()) for s, n in ps]
for (s, n), p in zip(ps, procs):
    wait(p, n)
obj = ", ".join("'%s', %s" % (c, ("CAST(UNIX_TIMESTAMP(%s) AS CHAR)" % c) if c in TS else ("CAST(%s AS CHAR)" % c))
                for c in COLS)
out = my("SET time_zone = '+00:00'; SELECT customer_id, JSON_OBJECT(%s), _provenance FROM customer_wide "
         "ORDER BY customer_id" % obj, MYW)
W4 = {}
for line in out.split("\n"):
    if line:
        k, vals, prov = line.split("\t")
        W4[int(k)] = (json.loads(vals), json.loads(prov))
bad = []
for k in sorted(set(W1) | set(W4)):
    if k not in W1 or k not in W4:
        bad.append("customer %d only in %s" % (k, "W1" if k in W1 else "W4"))
        continue
    for c in COLS:
        a, b = W1[k][0][c], W4[k][0][c]
        if c in TS and a is not None and b is not None:
            ok = abs(float(a) - float(b)) < 1e-5
        else:
            ok = a == b
        if not ok:
            bad.append("customer %d %s: postgres %r, mariadb %r" % (k, c, a, b))
    if W1[k][1] != W4[k][1]:
        d = [f for f in set(W1[k][1]) | set(W4[k][1]) if W1[k][1].get(f) != W4[k][1].get(f)]
        bad.append("customer %d provenance differs: %s" % (k, "; ".join(
            "%s: %s vs %s" % (f, W1[k][1].get(f), W4[k][1].get(f)) for f in d)))
if bad:
    fail("run 4 (mysql sink) differs from run 1:\n" + "\n".join(bad[:20]))
odd4 = my("SELECT `select`, CAST(`from-date` AS CHAR), `order` FROM `Odd \"Wide\"; DROP TABLE accounts;--` "
          "WHERE `order` IS NOT NULL ORDER BY 1", MYW)
got4 = sorted(tuple(line.split("\t")) for line in odd4.split("\n") if line)
if got4 != exp_odd:
    fail("run 4: odd target differs:\n got %s\n exp %s" % (got4[:3], exp_odd[:3]))
log("run 4: MariaDB wide table equals the PostgreSQL one (%d rows, values and provenance)" % len(W4))

# ---- validate and mapping test ----------------------------------------------------

r = subprocess.run([BIN, "validate", "-X", "mapping.files=" + MAPS, "-X", "postgres_sink.dsn=" + dsn(WDB[0]),
                    "--source", "postgres", "--postgres-dsn", dsn(SRCDB), "--application-id", "erp"],
                   capture_output=True, text=True)
if r.returncode != 0 or "ok: 5 mappings onto 2 targets" not in r.stdout:
    fail("validate on the example: %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
bad_yaml = os.path.join(TMP, "bad.yaml")
open(bad_yaml, "w").write(open(MAPFILE).read().replace("      balance: round(balance, 2)", "      balance: round(balanse, 2)")
                          .replace("balance: {type: 'numeric(12,2)', owner: erp}",
                                   "balance: {type: boolean, owner: erp}"))
r = subprocess.run([BIN, "validate", "-X", "mapping.files=" + bad_yaml, "-X", "postgres_sink.dsn=" + dsn(WDB[0]),
                    "--source", "postgres", "--postgres-dsn", dsn(SRCDB), "--application-id", "erp"],
                   capture_output=True, text=True)
if r.returncode != 78 or "no column 'balanse' (did you mean 'balance'?)" not in r.stderr \
        or "type mismatch: field 'balance' is boolean but column customer_wide.balance is numeric(12,2)" \
        not in r.stderr:
    fail("validate on a broken mapping: %d\n%s" % (r.returncode, r.stderr))
map_text = open(MAPFILE).read()
open(bad_yaml, "w").write(map_text.replace("    on_delete: ignore", "    on_delete: ignroe"))
# the position the loader must name: the line of the first 'on_delete: ignore', column of its value
bad_line = map_text[:map_text.index("    on_delete: ignore")].count("\n") + 1
r = subprocess.run([BIN, "validate", bad_yaml], capture_output=True, text=True)
if r.returncode != 78 or "unknown on_delete action 'ignroe'" not in r.stderr or "did you mean 'ignore'" \
        not in r.stderr or "customer_wide.yaml" in r.stderr or ":%d:16:" % bad_line not in r.stderr:
    fail("validate with a YAML mistake: %d\n%s" % (r.returncode, r.stderr))
# MySQL source and sink schemas: unknown column with a suggestion, type mismatch
my("ALTER TABLE crm.customers CHANGE is_active is_activ TINYINT NOT NULL, MODIFY created_at BLOB")
myurl = "mysql://root:%s@127.0.0.1:%s" % (E["MYSQL_ROOT_PASSWORD"], E["MYSQL_PORT"])
r = subprocess.run([BIN, "validate", "-X", "mapping.files=" + MAPS, "--source", "mysql", "--mysql-dsn", myurl,
                    "--application-id", "crm", "-X", "mysql_sink.dsn=%s/%s" % (myurl, MYW)],
                   capture_output=True, text=True)
if r.returncode != 78 or "no column 'is_active' (did you mean 'is_activ'?)" not in r.stderr or \
        "type mismatch: column crm.customers.created_at is blob, field 'signup_at' is timestamptz" not in r.stderr:
    fail("validate against MariaDB: %d\n%s" % (r.returncode, r.stderr))
r = subprocess.run([BIN, "mapping", "test", MAPFILE, ROOT + "/tests/data/mappings/example/in.jsonl"],
                   capture_output=True, text=True)
if r.returncode != 0 or "-- rows" not in r.stdout:
    fail("mapping test: %d %s" % (r.returncode, r.stderr))
log("validate and mapping test: ok")
cleanup()
print("PASS")
