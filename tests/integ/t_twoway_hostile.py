#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`mapping triggers` output for hostile table names, applied as the
documentation says: with psql as the PostgreSQL superuser and with the
mariadb client as root (docs/TWO-WAY.md, generating the triggers).

Each round names both tables with text built to end a quoted context of
the generated SQL: a `$$` or `$autoglm_cdc$` dollar tag, quotes of every
kind, backslashes, `//` (the MariaDB script's delimiter), `;` with a
`CREATE TABLE`, `--`, and client meta-commands (`\\! touch FILE`).  The
script must apply without error, and afterwards the catalogs differ from
before by exactly the intended objects:

  PostgreSQL  the _provenance column; functions autoglm_cdc_twoway_stamp,
              <table>_2w_del, <table>_2w_reins; triggers
              autoglm_cdc_twoway, _del, _reins on the table; the
              tombstones table and its primary key;
  MariaDB     the _provenance column; triggers <table>_2w_ins, _upd, _del;
              the tombstones table;

no other table, function, trigger, schema, database or role anywhere,
and no file from a meta-command.  Then the triggers work: a direct insert
on each side is stamped, a delete leaves a tombstone.

Exit 0 pass, 1 fail, 77 skip.  Run: tests/integ/run.sh t_twoway_hostile
"""
import json
import os
import subprocess
import sys
import tempfile

import dblib
from dblib import BIN, E, fail, log, my, pg

dblib.need("MYSQL_PORT", "PGPORT", what="MariaDB and PostgreSQL")

ID = "%d" % os.getpid()
MDB = "hx_" + ID
PDB = "hxp_" + ID
TMP = tempfile.mkdtemp(prefix="cdc-twhostile-")
MARK = "/tmp/pwned_hx" + ID   # a meta-command that ran would create it


def cleanup():
    dblib.cleanup([], TMP, pg_dbs=[PDB], my_dbs=[MDB])
    if os.path.exists(MARK):
        os.unlink(MARK)


dblib.on_fail(cleanup, logdir=TMP)

# (PostgreSQL wide table, MariaDB business table); MariaDB names stay
# under 53 characters (the tombstones table adds 11), PostgreSQL's under 52
ROUNDS = [
    ("x$$;CREATE TABLE pwned();--", "b$$;CREATE TABLE pwned (i int);--"),
    ("y$autoglm_cdc$;CREATE TABLE pwned2();--", "c//\nCREATE TABLE pwned2 (i int)//"),
    ("z';CREATE TABLE pwned3();--\\", "d`;CREATE TABLE pwned3 (i int);-- '\\"),
    ("w\";CREATE ROLE pwned4;--", "e\\! touch %s" % MARK),
    ("v\\! touch %s" % MARK, "f\\';DROP DATABASE %s;--" % MDB),
    ("u$_$ $ $$$\n/*", "g*/ //;\nDELIMITER ;\nCREATE TABLE pwned5 (i int);"),
]


def yaml_text(ptab, mtab):
    q = json.dumps
    return """sources: {crm: {priority: 2}, platform: {priority: 1}}
targets:
  wide:
    table: %s
    key: id
    fields: {id: bigint, v: {type: text, owners: [crm, platform], rule: priority}}
  biz:
    table: %s
    key: id
    fields: {id: bigint, v: {type: text, owners: [crm, platform], rule: priority}}
mappings:
  - {source: crm, table: %s, target: wide, key: {id: id}, on_delete: delete, fields: {v: v}}
  - {source: platform, table: %s, target: biz, key: {id: id}, on_delete: delete, fields: {v: v}}
""" % (q("public." + ptab), q(MDB + "." + mtab), q(MDB + "." + mtab), q("public." + ptab))


def pq(name):
    return '"' + name.replace('"', '""') + '"'


def pg_catalog():
    """every object that could be created: relations, columns, functions,
    triggers, schemas, roles, databases"""
    q = ("SELECT 'rel', n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = "
         "c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
         "UNION ALL SELECT 'col', c.relname, a.attname, '' FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
         "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND a.attnum > 0 AND c.relkind <> 'i' "
         "UNION ALL SELECT 'fn', n.nspname, p.proname, '' FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
         "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
         "UNION ALL SELECT 'trg', c.relname, t.tgname, '' FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
         "WHERE NOT t.tgisinternal "
         "UNION ALL SELECT 'schema', nspname, '', '' FROM pg_namespace "
         "UNION ALL SELECT 'role', rolname, '', '' FROM pg_roles "
         "UNION ALL SELECT 'db', datname, '', '' FROM pg_database")
    # names may hold newlines: one JSON array per row
    out = pg("SELECT json_build_array(k, a, b, c) FROM (%s) x(k, a, b, c)" % q, PDB, superuser=True)
    return set(tuple(json.loads(l)) for l in out.split("\n") if l)


def my_catalog():
    q = ("SELECT 'tab' AS k, TABLE_SCHEMA AS a, TABLE_NAME AS b FROM information_schema.TABLES WHERE TABLE_SCHEMA NOT IN "
         "('mysql', 'information_schema', 'performance_schema', 'sys') "
         "UNION ALL SELECT 'col', TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '%s' "
         "UNION ALL SELECT 'trg', EVENT_OBJECT_TABLE, TRIGGER_NAME FROM information_schema.TRIGGERS "
         "UNION ALL SELECT 'routine', ROUTINE_SCHEMA, ROUTINE_NAME FROM information_schema.ROUTINES "
         "UNION ALL SELECT 'event', EVENT_SCHEMA, EVENT_NAME FROM information_schema.EVENTS "
         "UNION ALL SELECT 'db', SCHEMA_NAME, '' FROM information_schema.SCHEMATA "
         "UNION ALL SELECT 'user', User, Host FROM mysql.user" % MDB)
    # rows may hold newlines and tabs: one JSON array per row
    out = my("SELECT JSON_ARRAY(k, a, b) FROM (%s) x" % q)
    return set(tuple(json.loads(l)) for l in out.split("\n") if l)


def gen(yf, engine):
    r = subprocess.run([BIN, "mapping", "triggers", "--mapping", yf, "--application-id", "crm", "--source", "mysql",
                        "--sink", "postgres", engine], capture_output=True, text=True)
    if r.returncode:
        fail("mapping triggers %s: exit %d: %s" % (engine, r.returncode, r.stderr.strip()))
    return r.stdout


def check_round(i, ptab, mtab):
    # each round starts without the shared stamp function (it must come back)
    pg("DROP FUNCTION IF EXISTS public.autoglm_cdc_twoway_stamp() CASCADE; DROP TABLE IF EXISTS public.%s"
       % pq(ptab), PDB, superuser=True)
    pg("CREATE TABLE public.%s (id bigint PRIMARY KEY, v text)" % pq(ptab), PDB, superuser=True)
    qm = "`" + mtab.replace("`", "``") + "`"
    my("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; CREATE TABLE %s.%s (id BIGINT PRIMARY KEY, v TEXT) "
       "CHARSET utf8mb4" % (MDB, MDB, MDB, qm))
    yf = os.path.join(TMP, "h%d.yaml" % i)
    open(yf, "w").write(yaml_text(ptab, mtab))
    pg_before, my_before = pg_catalog(), my_catalog()
    # as documented: piped into psql as the superuser, into mariadb as root
    r = dblib.pg_run(gen(yf, "postgres"), PDB, superuser=True)
    if r.returncode:
        fail("round %d: psql refused the generated script: %s" % (i, r.stderr.strip()[-600:]))
    r = subprocess.run(dblib.my_args(MDB), input=gen(yf, "mysql"), capture_output=True, text=True)
    if r.returncode:
        fail("round %d: mariadb refused the generated script: %s" % (i, r.stderr.strip()[-600:]))
    if os.path.exists(MARK):
        fail("round %d: a client meta-command in a name ran (%s exists)" % (i, MARK))
    new_pg = pg_catalog() - pg_before
    gone_pg = pg_before - pg_catalog()
    tomb = ptab + "_tombstones"
    want = {("col", ptab, "_provenance", ""), ("rel", "public", tomb, "r"), ("col", tomb, "id", ""),
            ("col", tomb, "_provenance", ""), ("trg", ptab, "autoglm_cdc_twoway", ""),
            ("trg", ptab, "autoglm_cdc_twoway_del", ""), ("trg", ptab, "autoglm_cdc_twoway_reins", "")}
    fns = {x for x in new_pg if x[0] == "fn"}
    idx = {x for x in new_pg if x[0] == "rel" and x[3] == "i"}
    extra = new_pg - want - fns - idx
    if extra or gone_pg or want - new_pg:
        fail("round %d (PostgreSQL %r): objects beyond the intended ones: new %s, missing %s, gone %s" % (
            i, ptab, sorted(extra), sorted(want - new_pg), sorted(gone_pg)))
    names = sorted(f[2] for f in fns)
    if len(fns) != 3 or len(idx) != 1 or not (
            "autoglm_cdc_twoway_stamp" in names and any(n.endswith("_2w_del") for n in names) and
            any(n.endswith("_2w_reins") for n in names)):
        fail("round %d (PostgreSQL %r): functions %s, indexes %s" % (i, ptab, names, sorted(idx)))
    new_my = my_catalog() - my_before
    gone_my = my_before - my_catalog()
    mtomb = mtab + "_tombstones"
    want = {("col", mtab, "_provenance"), ("tab", MDB, mtomb), ("col", mtomb, "id"), ("col", mtomb, "_provenance")}
    trg = {x for x in new_my if x[0] == "trg" and x[1] == mtab}
    extra = new_my - want - trg
    if extra or gone_my or want - new_my or len(trg) != 3 or not all(
            any(t[2].endswith("_2w_" + w) for t in trg) for w in ("ins", "upd", "del")):
        fail("round %d (MariaDB %r): objects beyond the intended ones: new %s, missing %s, gone %s, triggers %s" % (
            i, mtab, sorted(extra), sorted(want - new_my), sorted(gone_my), sorted(trg)))
    # the triggers work: direct edits are stamped, a delete leaves a tombstone
    pg("INSERT INTO public.%s (id, v) VALUES (1, 'p'); DELETE FROM public.%s WHERE id = 1; "
       "INSERT INTO public.%s (id, v) VALUES (2, 'q')" % ((pq(ptab),) * 3), PDB, superuser=True)
    s = pg("SELECT _provenance->'v'->>'s' FROM public.%s WHERE id = 2 UNION ALL SELECT "
           "_provenance->'v'->>'d' FROM public.%s WHERE id = 1" % (pq(ptab), pq(tomb)), PDB,
           superuser=True).split()
    if s != ["platform", "1"]:  # the wide table is read by platform
        fail("round %d: the PostgreSQL triggers did not stamp / keep a tombstone: %s" % (i, s))
    s = my("INSERT INTO %s (id, v) VALUES (1, 'm'); DELETE FROM %s WHERE id = 1; INSERT INTO %s (id, v) VALUES "
           "(2, 'n'); SELECT JSON_VALUE(_provenance, '$.v.s') FROM %s WHERE id = 2; SELECT JSON_VALUE(_provenance, "
           "'$.v.d') FROM `%s` WHERE id = 1" % (qm, qm, qm, qm, mtomb.replace("`", "``")), MDB).split()
    if s != ["crm", "1"]:
        fail("round %d: the MariaDB triggers did not stamp / keep a tombstone: %s" % (i, s))


pg("CREATE DATABASE %s OWNER %s" % (PDB, E["PGUSER"]), "postgres", superuser=True)
for i, (ptab, mtab) in enumerate(ROUNDS, 1):
    check_round(i, ptab, mtab)
    log("round %d: %r / %r: only the intended objects, triggers work" % (i, ptab, mtab))
cleanup()
print("ok - the generated trigger SQL stays SQL for %d pairs of hostile table names" % len(ROUNDS))
sys.exit(0)
