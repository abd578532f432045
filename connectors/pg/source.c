/* SPDX-License-Identifier: Apache-2.0 */
/*
 * source.c - the PostgreSQL logical replication source ("postgres").
 *
 * Two libpq connections:
 *   sql   a regular session for the preflight checks, publication and
 *         slot management, type look-ups (enums, domains), primary keys of
 *         REPLICA IDENTITY FULL tables and the optional heartbeat;
 *   repl  a logical walsender session (replication=database) that runs
 *         START_REPLICATION and streams CopyData.
 * Both sessions force DateStyle=ISO, IntervalStyle=postgres, TimeZone=UTC,
 * extra_float_digits=3 and bytea_output=hex, so that pgoutput's text values
 * have the shapes pgoutput_decode.c expects (timestamptz "+00").
 *
 * Feedback invariants (PROTOCOLS.md §2.5):
 *   - the flush LSN reported in standby status updates only ever comes
 *     from confirm() (durably delivered transactions) or, while nothing is
 *     open or buffered and every returned transaction was confirmed, from
 *     a keepalive's walEnd (so the slot advances while only unpublished
 *     tables change);
 *   - a resumed run skips transactions whose end LSN is not beyond the
 *     checkpoint (the server may re-send them).
 *
 * Liveness (half-open links): every postgres.status_interval_s the status
 * update asks the server for an immediate reply.  When nothing at all has
 * arrived for postgres.timeout_s and a request has been unanswered for at
 * least one interval, the link counts as dead and next() fails with a
 * retriable error (the pipeline reconnects).  The replication session
 * sets wal_sender_timeout to the same timeout, so the server ends its
 * side of a dead link and frees the slot in that time too.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <libpq-fe.h>

#include "cdc/util.h"
#include "cdc/buf.h"
#include "cdc/conf.h"
#include "cdc/log.h"
#include "connectors/pg/pgutil.h"
#include "cdc/plugin.h"
#include "connectors/pg/pgoutput_decode.h"

#define FAC "postgres"
#define SESSION_OPTIONS                                                     \
    "-c datestyle=ISO -c intervalstyle=postgres -c timezone=UTC "           \
    "-c extra_float_digits=3 -c bytea_output=hex"

typedef struct pg_source {
    cdc_source_t base; /* must be first */
    char *dsn;
    char *slot;
    char *publication;
    char *skip_origins; /* postgres.skip_origins: our sinks' origins */
    char *tables;      /* comma list schema.table, "" = all tables */
    char *from;        /* "now" | "X/X" */
    int64_t heartbeat_ms;
    PGconn *sql;
    PGconn *repl;
    int server_version;
    int proto;
    cdc_pgoutput_t *dec;
    cdc_pg_slot_gauge_t *gauge; /* metrics.pg_slot */
    uint64_t received;      /* highest LSN seen in the stream */
    uint64_t flush;         /* flush LSN reported to the server */
    uint64_t confirmed;     /* highest LSN confirm() was given */
    uint64_t last_returned; /* end LSN of the last txn handed out */
    uint64_t skip_upto;     /* resumed: drop txns ending at or before */
    int64_t next_status_us;
    int64_t next_heartbeat_us;
    int64_t last_status_us;
    int status_now;
    int64_t status_interval_us; /* postgres.status_interval_s */
    int64_t timeout_us;         /* postgres.timeout_s, 0 = off */
    /* big transactions: fragments (pipeline.fragment_rows/_kb), spill
     * files <state.dir>/<pipeline>.spill.<slot>.<xid> past
     * postgres.work_mem, at most state.max_spill_mb in all.  The slot is
     * in the name: a backfill's window readers run as the same pipeline
     * with slots of their own, and each reader removes at its start the
     * files an earlier run of its slot left, never another reader's (nor
     * opens a file of the same xid that another reader writes) */
    int64_t frag_rows, frag_kb, work_mem_mb, max_spill_mb;
    char *spill_prefix;
    int64_t last_recv_us;       /* last CopyData message from the server */
    int64_t asked_us;           /* first unanswered reply request, 0 none */
    int slot_failover;          /* postgres.slot_failover (PG 17+) */
} pg_source_t;

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int parse_lsn(const char *s, uint64_t *out)
{
    unsigned hi, lo;
    char tail;
    if (!s || sscanf(s, "%X/%X%c", &hi, &lo, &tail) != 2)
        return -1;
    *out = (uint64_t)hi << 32 | lo;
    return 0;
}

#define LSN_ARGS(l) (unsigned)((l) >> 32), (unsigned)(l)

/* First line of a libpq error message, without the newline. */
static const char *pqerr(PGconn *c)
{
    return cdc_pg_errline(c);
}

static int lost(PGconn *c, cdc_err_t *err, const char *what)
{
    cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                "postgres: %s: %s", what, pqerr(c));
    cdc_err_hint(err, "the pipeline reconnects and resumes from the last "
                      "confirmed position");
    return -1;
}

/* ---------------------------------------------------------------------
 * create / destroy
 * ------------------------------------------------------------------- */

static void pg_destroy(cdc_source_t *base)
{
    pg_source_t *src = (pg_source_t *)base;
    if (!src)
        return;
    cdc_pg_slot_gauge_stop(src->gauge);
    if (src->repl)
        PQfinish(src->repl);
    if (src->sql)
        PQfinish(src->sql);
    cdc_pgoutput_destroy(src->dec);
    free(src->dsn);
    free(src->slot);
    free(src->publication);
    free(src->skip_origins);
    free(src->spill_prefix);
    free(src->tables);
    free(src->from);
    free(src);
}

static int valid_name(const char *s)
{
    if (!*s || strlen(s) > 63)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

/* postgres.status_interval_s (10) and postgres.timeout_s (30, 0 = off;
 * at least twice the interval). */
static int liveness_settings(pg_source_t *src, const cdc_conf_t *conf,
                             cdc_err_t *err)
{
    int64_t iv, to;
    if (cdc_conf_get_int(conf, "postgres.status_interval_s", 10, &iv, err) ||
        cdc_conf_get_int(conf, "postgres.timeout_s", 30, &to, err))
        return -1;
    if (iv < 1 || iv > 3600) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "postgres.status_interval_s = %" PRId64
                    " is out of range",
                    iv);
        cdc_err_hint(err, "use 1 to 3600 seconds");
        return -1;
    }
    if (to != 0 && (to < 2 * iv || to > 86400)) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "postgres.timeout_s = %" PRId64 " must be 0 (off) or "
                    "from twice postgres.status_interval_s (%" PRId64
                    ") to 86400",
                    to, 2 * iv);
        cdc_err_hint(err, "raise postgres.timeout_s or lower "
                          "postgres.status_interval_s");
        return -1;
    }
    src->status_interval_us = iv * 1000000;
    src->timeout_us = to * 1000000;
    return 0;
}

static cdc_source_t *pg_create(const cdc_conf_t *conf, cdc_err_t *err)
{
    pg_source_t *src = cdc_xcalloc(1, sizeof(*src));
    const char *from;
    uint64_t lsn;

    src->dsn = cdc_xstrdup(cdc_conf_get(conf, "postgres.dsn", ""));
    src->slot = cdc_xstrdup(cdc_conf_get(conf, "postgres.slot", "autoglm_cdc"));
    src->publication =
        cdc_xstrdup(cdc_conf_get(conf, "postgres.publication", "autoglm_cdc"));
    /* loop prevention: skip what our own sinks wrote (docs/TWO-WAY.md) */
    src->skip_origins = cdc_xstrdup(
        cdc_conf_get(conf, "postgres.skip_origins", "autoglm_cdc_*"));
    src->tables = cdc_xstrdup(cdc_conf_get(conf, "postgres.tables", ""));
    from = cdc_conf_get(conf, "postgres.from", "now");
    src->from = cdc_xstrdup(from);
    if (cdc_conf_get_int(conf, "postgres.heartbeat_ms", 0, &src->heartbeat_ms,
                         err))
        goto fail;
    if (cdc_conf_get_int(conf, "pipeline.fragment_rows", 4096, &src->frag_rows,
                         err) ||
        cdc_conf_get_int(conf, "pipeline.fragment_kb", 1024, &src->frag_kb,
                         err) ||
        cdc_conf_get_int(conf, "postgres.work_mem", 16, &src->work_mem_mb,
                         err) ||
        cdc_conf_get_int(conf, "state.max_spill_mb", 10240,
                         &src->max_spill_mb, err))
        goto fail;
    {
        cdc_buf_t p = CDC_BUF_INIT;
        cdc_buf_printf(&p, "%s/%s.spill.%s",
                       cdc_conf_get(conf, "state.dir", "state"),
                       cdc_conf_pipeline(conf), src->slot);
        src->spill_prefix = p.p;
    }
    if (liveness_settings(src, conf, err) ||
        cdc_conf_get_bool(conf, "postgres.slot_failover", 1,
                          &src->slot_failover, err) < 0)
        goto fail;
    if (!src->dsn[0]) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "postgres.dsn is not set");
        cdc_err_hint(err, "pass --postgres-dsn 'host=127.0.0.1 port=5432 "
                          "dbname=app user=cdc' or a postgresql:// URI");
        goto fail;
    }
    if (!valid_name(src->slot)) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "postgres.slot '%s' is not a valid slot name", src->slot);
        cdc_err_hint(err, "use 1-63 characters of a-z, 0-9 and _");
        goto fail;
    }
    if (!src->publication[0] || strlen(src->publication) > 63 ||
        strpbrk(src->publication, "\",")) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "postgres.publication '%s' is not a valid name",
                    src->publication);
        goto fail;
    }
    if (strcmp(from, "now") != 0 && parse_lsn(from, &lsn) < 0) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "postgres.from '%s' is neither 'now' nor an LSN", from);
        cdc_err_hint(err, "use now or an LSN such as 0/16B3748");
        goto fail;
    }
    if (cdc_pg_slot_gauge_start(conf, &src->gauge, err))
        goto fail;
    src->base.ops = NULL; /* set by the ops table user */
    return &src->base;
fail:
    pg_destroy(&src->base);
    return NULL;
}

/* ---------------------------------------------------------------------
 * connections and SQL helpers
 * ------------------------------------------------------------------- */

static PGconn *pg_connect(pg_source_t *src, int replication, cdc_err_t *err)
{
    char session[256];
    cdc_pg_connopt_t o = {session, "autoglm-cdc", replication, 1, 1, FAC};

    /* the server drops a dead replication link (and frees the slot)
     * after our own timeout */
    if (replication && src->timeout_us)
        snprintf(session, sizeof(session),
                 "%s -c wal_sender_timeout=%" PRId64 "s", SESSION_OPTIONS,
                 src->timeout_us / 1000000);
    else
        snprintf(session, sizeof(session), "%s", SESSION_OPTIONS);
    return cdc_pg_connect(src->dsn, &o, err);
}

/* Run a query with text parameters; returns the result (caller clears) or
 * NULL with err set. */
static PGresult *q(PGconn *c, cdc_err_t *err, const char *sql, int n,
                   const char *const *params)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    if (PQstatus(c) != CONNECTION_OK)
        lost(c, err, "query failed");
    else
        cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                    "postgres: query failed: %s", pqerr(c));
    cdc_err_detail(err, "%.400s", sql);
    PQclear(r);
    return NULL;
}

/* ---------------------------------------------------------------------
 * decoder callbacks (do I/O on the regular connection)
 * ------------------------------------------------------------------- */

static int resolve_type(void *opaque, uint32_t oid, cdc_pg_typeinfo_t *ti)
{
    pg_source_t *src = opaque;
    char b[16];
    const char *p[1] = {b};
    cdc_err_t err;
    PGresult *r;

    snprintf(b, sizeof(b), "%u", oid);
    r = q(src->sql, &err,
          "SELECT typtype, typcategory, typbasetype, typelem FROM pg_type "
          "WHERE oid = $1::oid",
          1, p);
    if (!r)
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return -1;
    }
    memset(ti, 0, sizeof(*ti));
    ti->typtype = PQgetvalue(r, 0, 0)[0];
    ti->typcategory = PQgetvalue(r, 0, 1)[0];
    ti->basetype = (uint32_t)strtoul(PQgetvalue(r, 0, 2), NULL, 10);
    ti->elemtype = (uint32_t)strtoul(PQgetvalue(r, 0, 3), NULL, 10);
    PQclear(r);
    return 0;
}

/* REPLICA IDENTITY FULL marks every column as key: put the real primary
 * key (if any) in CDC_COL_PK / pk instead. */
static void on_relation(void *opaque, cdc_table_t *t, char replident)
{
    pg_source_t *src = opaque;
    char b[16];
    const char *p[1] = {b};
    cdc_err_t err;
    PGresult *r;

    if (replident != 'f')
        return;
    snprintf(b, sizeof(b), "%u", (unsigned)t->id);
    r = q(src->sql, &err,
          "SELECT a.attname FROM pg_index i "
          "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
          "JOIN pg_attribute a ON a.attrelid = i.indrelid "
          "AND a.attnum = k.attnum "
          "WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.ord",
          1, p);
    if (!r) {
        CDC_WARN(FAC, "primary key of %s.%s unknown (%s); using every column "
                      "as the key",
                 t->db, t->name, err.msg);
        return;
    }
    for (uint32_t i = 0; i < t->ncols; i++)
        t->cols[i].flags &= ~(uint32_t)CDC_COL_PK;
    t->npk = 0;
    for (int row = 0; row < PQntuples(r); row++)
        for (uint32_t i = 0; i < t->ncols; i++)
            if (!strcmp(t->cols[i].name, PQgetvalue(r, row, 0))) {
                t->cols[i].flags |= CDC_COL_PK;
                t->pk[t->npk++] = i;
            }
    PQclear(r);
}

/* ---------------------------------------------------------------------
 * start: checks, publication, slot, START_REPLICATION
 * ------------------------------------------------------------------- */

static int check_server(pg_source_t *src, cdc_err_t *err)
{
    PGresult *r = q(src->sql, err,
                    "SELECT current_setting('wal_level'), "
                    "current_setting('max_replication_slots')::int, "
                    "current_setting('max_wal_senders')::int, "
                    "(SELECT rolreplication OR rolsuper FROM pg_roles "
                    " WHERE rolname = current_user), current_user",
                    0, NULL);
    if (!r)
        return -1;
    const char *wal = PQgetvalue(r, 0, 0);
    int slots = atoi(PQgetvalue(r, 0, 1)), senders = atoi(PQgetvalue(r, 0, 2));
    int repl = PQgetvalue(r, 0, 3)[0] == 't';
    char user[128];
    snprintf(user, sizeof(user), "%s", PQgetvalue(r, 0, 4));
    int rc = 0;
    if (strcmp(wal, "logical") != 0) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "postgres: wal_level is '%s', logical replication needs "
                    "'logical'",
                    wal);
        cdc_err_hint(err, "ALTER SYSTEM SET wal_level = logical; then "
                          "restart PostgreSQL");
        rc = -1;
    } else if (slots <= 0 || senders <= 0) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "postgres: max_replication_slots is %d and "
                    "max_wal_senders is %d; both must be > 0",
                    slots, senders);
        cdc_err_hint(err, "ALTER SYSTEM SET max_replication_slots = 10; "
                          "ALTER SYSTEM SET max_wal_senders = 10; then "
                          "restart PostgreSQL");
        rc = -1;
    } else if (!repl) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "postgres: role %s has neither REPLICATION nor SUPERUSER",
                    user);
        cdc_err_hint(err, "ALTER ROLE %s WITH REPLICATION;", user);
        rc = -1;
    }
    PQclear(r);
    return rc;
}

/* Appends "schema.table" strings of postgres.tables to out as a SQL array
 * literal text ({"a.b","c.d"}). */
static void tables_array(const char *tables, cdc_buf_t *out)
{
    const char *p = tables;
    int first = 1;

    cdc_buf_putc(out, '{');
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        int inq = 0; /* a quoted name may hold a comma */
        while (*e && (*e != ',' || inq))
            inq ^= *e++ == '"';
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if (t > p) {
            if (!first)
                cdc_buf_putc(out, ',');
            first = 0;
            cdc_buf_putc(out, '"');
            for (const char *c = p; c < t; c++) {
                if (*c == '"' || *c == '\\')
                    cdc_buf_putc(out, '\\');
                cdc_buf_putc(out, *c);
            }
            cdc_buf_putc(out, '"');
        }
        p = e;
    }
    cdc_buf_putc(out, '}');
}

/* Every captured table must let UPDATE/DELETE be keyed. */
static int check_tables(pg_source_t *src, cdc_err_t *err)
{
    cdc_buf_t arr = CDC_BUF_INIT, hints = CDC_BUF_INIT;
    PGresult *r;
    int problems = 0, failed = 0;
    char first[512] = "";

    if (src->tables[0]) {
        tables_array(src->tables, &arr);
        const char *p[1] = {arr.p};
        /* missing tables first */
        r = q(src->sql, err,
              "SELECT t FROM unnest($1::text[]) AS t WHERE to_regclass(t) "
              "IS NULL",
              1, p);
        if (!r) {
            failed = 1;
            goto out;
        }
        for (int i = 0; i < PQntuples(r); i++) {
            CDC_ERROR(FAC, "table %s (postgres.tables) does not exist",
                      PQgetvalue(r, i, 0));
            if (!problems++)
                snprintf(first, sizeof(first), "table %s does not exist",
                         PQgetvalue(r, i, 0));
        }
        PQclear(r);
        if (problems) {
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "postgres: %d table(s) in postgres.tables do not "
                        "exist",
                        problems);
            cdc_err_detail(err, "%s", first);
            cdc_err_hint(err, "fix postgres.tables (schema.table, comma "
                              "separated)");
            goto out;
        }
        r = q(src->sql, err,
              "SELECT n.nspname, c.relname, c.relreplident, "
              " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
              "         AND i.indisprimary), "
              " quote_ident(n.nspname) || '.' || quote_ident(c.relname) "
              "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
              "WHERE c.oid = ANY (SELECT to_regclass(t) FROM "
              "                   unnest($1::text[]) AS t) "
              "ORDER BY 1, 2",
              1, p);
    } else {
        const char *p[1] = {src->publication};
        /* an existing publication decides; else FOR ALL TABLES */
        r = q(src->sql, err,
              "SELECT n.nspname, c.relname, c.relreplident, "
              " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
              "         AND i.indisprimary), "
              " quote_ident(n.nspname) || '.' || quote_ident(c.relname) "
              "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
              "WHERE CASE WHEN EXISTS (SELECT 1 FROM pg_publication "
              "                        WHERE pubname = $1) "
              " THEN c.oid IN (SELECT (quote_ident(schemaname) || '.' || "
              "   quote_ident(tablename))::regclass FROM "
              "   pg_publication_tables WHERE pubname = $1) "
              " ELSE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' "
              "  AND NOT c.relispartition "
              "  AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
              "  AND n.nspname NOT LIKE 'pg\\_toast%' END "
              "ORDER BY 1, 2",
              1, p);
    }
    if (!r) {
        failed = 1;
        goto out;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        const char *nsp = PQgetvalue(r, i, 0), *rel = PQgetvalue(r, i, 1);
        char ident = PQgetvalue(r, i, 2)[0];
        int has_pk = PQgetvalue(r, i, 3)[0] == 't';
        const char *qn = PQgetvalue(r, i, 4);
        const char *why = NULL;
        if (ident == 'n')
            why = "has REPLICA IDENTITY NOTHING";
        else if (ident == 'd' && !has_pk)
            why = "has no primary key and REPLICA IDENTITY DEFAULT";
        if (!why)
            continue;
        CDC_ERROR(FAC,
                  "table %s.%s %s: its UPDATEs and DELETEs cannot be keyed "
                  "(and fail on the server once published); fix: ALTER "
                  "TABLE %s REPLICA IDENTITY FULL;",
                  nsp, rel, why, qn);
        if (!problems++)
            snprintf(first, sizeof(first), "table %s.%s %s", nsp, rel, why);
        cdc_buf_printf(&hints, "%sALTER TABLE %s REPLICA IDENTITY FULL;",
                       hints.len ? " " : "", qn);
    }
    PQclear(r);
    if (problems) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "postgres: %d captured table(s) cannot be replicated "
                    "with keys",
                    problems);
        cdc_err_detail(err, "%s", first);
        cdc_err_hint(err, "%s (or add a primary key, or ALTER TABLE ... "
                          "REPLICA IDENTITY USING INDEX a unique index)",
                     hints.p);
    }
out:
    cdc_buf_free(&arr);
    cdc_buf_free(&hints);
    return problems || failed ? -1 : 0;
}

static int ensure_publication_locked(pg_source_t *src, cdc_err_t *err)
{
    const char *p[2] = {src->publication, NULL};
    PGresult *r = q(src->sql, err,
                    "SELECT puballtables FROM pg_publication WHERE pubname = $1",
                    1, p);
    cdc_buf_t sql = CDC_BUF_INIT, arr = CDC_BUF_INIT;
    int rc = 0;

    if (!r)
        return -1;
    int exists = PQntuples(r) == 1;
    int alltables = exists && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    char *pubq = PQescapeIdentifier(src->sql, src->publication,
                                    strlen(src->publication));
    if (src->tables[0]) {
        /* quoted names of listed tables not (yet) in the publication */
        tables_array(src->tables, &arr);
        p[1] = arr.p;
        r = q(src->sql, err,
              "SELECT string_agg(to_regclass(t)::text, ', ') FROM "
              "unnest($2::text[]) AS t WHERE to_regclass(t) NOT IN "
              "(SELECT (quote_ident(schemaname) || '.' || "
              "  quote_ident(tablename))::regclass FROM pg_publication_tables "
              " WHERE pubname = $1)",
              2, p);
        if (!r) {
            rc = -1;
            goto out;
        }
        const char *missing = PQgetisnull(r, 0, 0) ? NULL : PQgetvalue(r, 0, 0);
        if (!exists && !missing) {
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "postgres: none of the tables of postgres.tables "
                        "exists, so publication %s cannot be created",
                        src->publication);
            cdc_err_detail(err, "postgres.tables: %s", arr.p);
            cdc_err_hint(err, "create the tables first, or fix the names "
                              "in postgres.tables (schema.table)");
            PQclear(r);
            rc = -1;
            goto out;
        }
        if (!exists)
            cdc_buf_printf(&sql, "CREATE PUBLICATION %s FOR TABLE %s", pubq,
                           missing);
        else if (missing && !alltables)
            cdc_buf_printf(&sql, "ALTER PUBLICATION %s ADD TABLE %s", pubq,
                           missing);
        PQclear(r);
    } else if (!exists) {
        cdc_buf_printf(&sql, "CREATE PUBLICATION %s FOR ALL TABLES", pubq);
    }
    if (sql.len) {
        CDC_INFO(FAC, "%s", sql.p);
        r = q(src->sql, err, sql.p, 0, NULL);
        if (!r) {
            cdc_err_hint(err, "create the publication yourself (as its "
                              "owner): %s",
                         sql.p);
            rc = -1;
            goto out;
        }
        PQclear(r);
    }
out:
    PQfreemem(pubq);
    cdc_buf_free(&sql);
    cdc_buf_free(&arr);
    return rc;
}

/*
 * Checks and creates the publication under a transaction-level advisory
 * lock on its name: two pipelines that share a publication and start at
 * the same moment would otherwise both see it missing, and the second
 * would try to create it again (or create it empty).
 */
static int ensure_publication(pg_source_t *src, cdc_err_t *err)
{
    const char *p[1] = {src->publication};
    PGresult *r = q(src->sql, err, "BEGIN", 0, NULL);
    int rc;

    if (!r)
        return -1;
    PQclear(r);
    r = q(src->sql, err,
          "SELECT pg_advisory_xact_lock(hashtext('autoglm-cdc publication ' "
          "|| $1))",
          1, p);
    rc = r ? ensure_publication_locked(src, err) : -1;
    PQclear(r);
    if (rc) { /* keep the first error; the rollback's own is noise */
        cdc_err_t scratch;
        cdc_err_clear(&scratch);
        PQclear(q(src->sql, &scratch, "ROLLBACK", 0, NULL));
        return -1;
    }
    r = q(src->sql, err, "COMMIT", 0, NULL);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

/*
 * An existing slot: invalidated (WAL removed past max_slot_wal_keep_size,
 * conflict on a standby, ...) is CDC_EXIT_NORESUME; on 17+ a slot
 * without failover gets it (postgres.slot_failover).
 */
static int slot_health(pg_source_t *src, const cdc_pos_t *resume,
                       cdc_err_t *err)
{
    const char *p[1] = {src->slot};
    int v17 = src->server_version >= 170000;
    PGresult *r;

    if (src->server_version < 130000)
        return 0;
    r = q(src->sql, err,
          v17 ? "SELECT wal_status, invalidation_reason, failover, synced "
                "FROM pg_replication_slots WHERE slot_name = $1"
              : "SELECT wal_status, NULL, NULL, NULL "
                "FROM pg_replication_slots WHERE slot_name = $1",
          1, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 1 &&
        (!strcmp(PQgetvalue(r, 0, 0), "lost") || !PQgetisnull(r, 0, 1))) {
        cdc_err_set(err, CDC_EXIT_NORESUME, CDC_ERR_F_FATAL,
                    "postgres: replication slot %s is invalidated (%s)%s",
                    src->slot,
                    PQgetisnull(r, 0, 1) ? "wal_status lost"
                                         : PQgetvalue(r, 0, 1),
                    resume ? ": the changes after the checkpoint are gone"
                           : "");
        cdc_err_detail(err, "the server removed WAL the slot still needed "
                            "(max_slot_wal_keep_size exceeded, or a "
                            "conflict on a standby)");
        cdc_err_hint(err, "drop the slot (SELECT pg_drop_replication_slot("
                          "'%s')), delete the checkpoint in --state-dir, "
                          "restart (a new slot is created) and backfill the "
                          "captured tables",
                     src->slot);
        PQclear(r);
        return -1;
    }
    if (v17 && src->slot_failover && PQntuples(r) == 1 &&
        !strcmp(PQgetvalue(r, 0, 2), "f") && strcmp(PQgetvalue(r, 0, 3), "t")) {
        char cmd[160];
        PGresult *a;
        snprintf(cmd, sizeof(cmd), "ALTER_REPLICATION_SLOT \"%s\" (FAILOVER)",
                 src->slot);
        a = PQexec(src->repl, cmd);
        if (PQresultStatus(a) == PGRES_COMMAND_OK)
            CDC_INFO(FAC, "slot %s now has failover on (synchronized to "
                          "standbys)", src->slot);
        else
            CDC_WARN(FAC, "cannot turn failover on for slot %s: %s",
                     src->slot, pqerr(src->repl));
        PQclear(a);
    }
    PQclear(r);
    return 0;
}

/* Looks up the slot; creates it when missing and not resuming. */
static int ensure_slot(pg_source_t *src, const cdc_pos_t *resume,
                       uint64_t *confirmed_flush, cdc_err_t *err)
{
    const char *p[1] = {src->slot};
    PGresult *r = q(src->sql, err,
                    "SELECT plugin, slot_type, "
                    " (SELECT datname FROM pg_database WHERE oid = datoid), "
                    " current_database(), confirmed_flush_lsn, active_pid "
                    "FROM pg_replication_slots WHERE slot_name = $1",
                    1, p);
    if (!r)
        return -1;
    *confirmed_flush = 0;
    if (PQntuples(r) == 1) {
        int rc = 0;
        if (strcmp(PQgetvalue(r, 0, 1), "logical") ||
            strcmp(PQgetvalue(r, 0, 0), "pgoutput")) {
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "postgres: slot %s is a %s slot with plugin %s, not "
                        "a logical pgoutput slot",
                        src->slot, PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 0));
            cdc_err_hint(err, "set postgres.slot to another name");
            rc = -1;
        } else if (strcmp(PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3))) {
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "postgres: slot %s belongs to database %s, not %s",
                        src->slot, PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3));
            cdc_err_hint(err, "set postgres.slot to another name");
            rc = -1;
        } else if (!PQgetisnull(r, 0, 5)) {
            cdc_err_set(err, CDC_EXIT_TEMPFAIL, CDC_ERR_F_RETRIABLE,
                        "postgres: slot %s is in use by server process %s",
                        src->slot, PQgetvalue(r, 0, 5));
            cdc_err_hint(err, "stop the other consumer of the slot (or wait "
                              "for the old session to time out)");
            rc = -1;
        } else {
            parse_lsn(PQgetvalue(r, 0, 4), confirmed_flush);
        }
        PQclear(r);
        return rc ? rc : slot_health(src, resume, err);
    }
    PQclear(r);
    if (resume) {
        cdc_err_set(err, CDC_EXIT_NORESUME, CDC_ERR_F_FATAL,
                    "postgres: replication slot %s does not exist, cannot "
                    "resume from checkpoint LSN %X/%X",
                    src->slot, LSN_ARGS(resume->lsn));
        cdc_err_detail(err, "the slot was dropped, or this server is a new "
                            "primary after a failover that did not carry "
                            "the slot over (PostgreSQL before 17, or a slot "
                            "without failover); the changes after the "
                            "checkpoint cannot be read here");
        cdc_err_hint(err, "re-create the slot (delete the checkpoint in "
                          "--state-dir and restart, which creates slot %s) "
                          "and backfill the captured tables",
                     src->slot);
        return -1;
    }
    /* CREATE_REPLICATION_SLOT on the walsender connection; from 17 on a
     * failover slot, synchronized to standbys (sync_replication_slots) */
    char cmd[256];
    if (src->server_version >= 150000)
        snprintf(cmd, sizeof(cmd),
                 "CREATE_REPLICATION_SLOT \"%s\" LOGICAL pgoutput "
                 "(SNAPSHOT 'nothing'%s)",
                 src->slot,
                 src->server_version >= 170000 && src->slot_failover
                     ? ", FAILOVER"
                     : "");
    else
        snprintf(cmd, sizeof(cmd),
                 "CREATE_REPLICATION_SLOT \"%s\" LOGICAL pgoutput "
                 "NOEXPORT_SNAPSHOT",
                 src->slot);
    r = PQexec(src->repl, cmd);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                    "postgres: cannot create replication slot %s: %s",
                    src->slot, pqerr(src->repl));
        PQclear(r);
        return -1;
    }
    parse_lsn(PQgetvalue(r, 0, 1), confirmed_flush);
    CDC_INFO(FAC, "created replication slot %s at %X/%X%s", src->slot,
             LSN_ARGS(*confirmed_flush),
             src->server_version >= 170000 && src->slot_failover
                 ? " (failover: synchronized to standbys)"
                 : "");
    PQclear(r);
    return 0;
}

static int pg_start(cdc_source_t *base, const cdc_pos_t *resume,
                    cdc_err_t *err)
{
    pg_source_t *src = (pg_source_t *)base;
    uint64_t start = 0, slot_flush = 0;
    char cmd[512];
    PGresult *r;

    if (resume && resume->lsn == 0)
        resume = NULL;
    if (!(src->sql = pg_connect(src, 0, err)))
        return -1;
    src->server_version = PQserverVersion(src->sql);
    if (src->server_version < 100000) {
        return cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                           "postgres: server version %d is too old; "
                           "logical replication with pgoutput needs 10 or "
                           "later",
                           src->server_version);
    }
    if (check_server(src, err) || check_tables(src, err) ||
        ensure_publication(src, err))
        return -1;
    if (!(src->repl = pg_connect(src, 1, err)))
        return -1;
    if (ensure_slot(src, resume, &slot_flush, err))
        return -1;

    src->proto = src->server_version >= 140000 ? 2 : 1;
    cdc_pgoutput_opts_t o = {
        .resolve_type = resolve_type,
        .on_relation = on_relation,
        .opaque = src,
        .skip_origins = src->skip_origins,
        .frag_rows = (uint32_t)src->frag_rows,
        .frag_bytes = (size_t)src->frag_kb << 10,
        .work_mem = (size_t)src->work_mem_mb << 20,
        .spill_prefix = src->spill_prefix,
        .max_spill = (uint64_t)src->max_spill_mb << 20};
    cdc_pgoutput_destroy(src->dec);
    /* spill files of an earlier run: their transactions come again */
    cdc_pgoutput_spill_cleanup(src->spill_prefix);
    src->dec = cdc_pgoutput_new(&o, src->proto);

    if (resume) {
        start = resume->lsn;
        src->skip_upto = resume->lsn;
        if (start < slot_flush)
            CDC_WARN(FAC,
                     "checkpoint LSN %X/%X is behind slot %s's "
                     "confirmed_flush_lsn %X/%X; the server starts at the "
                     "slot's position",
                     LSN_ARGS(start), src->slot, LSN_ARGS(slot_flush));
    } else if (strcmp(src->from, "now") != 0) {
        parse_lsn(src->from, &start);
    }
    src->flush = start > slot_flush ? start : slot_flush;
    src->confirmed = src->last_returned = src->flush;
    src->received = src->flush;

    snprintf(cmd, sizeof(cmd),
             "START_REPLICATION SLOT \"%s\" LOGICAL %X/%X (proto_version "
             "'%d', publication_names '\"%s\"'%s)",
             src->slot, LSN_ARGS(start), src->proto, src->publication,
             src->server_version >= 140000
                 ? ", messages 'true', streaming 'true'"
                 : "");
    r = PQexec(src->repl, cmd);
    if (PQresultStatus(r) != PGRES_COPY_BOTH) {
        int gone = PQstatus(src->repl) != CONNECTION_OK;
        const char *m = PQerrorMessage(src->repl);
        if (strstr(m, "can no longer") || strstr(m, "invalidated")) {
            cdc_err_set(err, CDC_EXIT_NORESUME, CDC_ERR_F_FATAL,
                        "postgres: replication slot %s is invalidated: %s",
                        src->slot, pqerr(src->repl));
            cdc_err_hint(err, "drop the slot, delete the checkpoint in "
                              "--state-dir, restart and backfill the "
                              "captured tables");
            PQclear(r);
            return -1;
        }
        cdc_err_set(err, gone ? CDC_EXIT_UNAVAILABLE : CDC_EXIT_FAIL,
                    gone || strstr(PQerrorMessage(src->repl), "is active")
                        ? CDC_ERR_F_RETRIABLE
                        : CDC_ERR_F_FATAL,
                    "postgres: START_REPLICATION failed: %s",
                    pqerr(src->repl));
        cdc_err_detail(err, "%s", cmd);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    CDC_INFO(FAC, "streaming from slot %s at %X/%X (proto_version %d, "
                  "publication %s)",
             src->slot, LSN_ARGS(start), src->proto, src->publication);
    src->next_status_us = mono_us() + src->status_interval_us;
    src->last_recv_us = mono_us();
    src->asked_us = 0;
    src->next_heartbeat_us =
        src->heartbeat_ms > 0 ? mono_us() + src->heartbeat_ms * 1000 : 0;
    return 0;
}

/* ---------------------------------------------------------------------
 * streaming
 * ------------------------------------------------------------------- */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* ask: request an immediate reply (the periodic liveness probe) */
static int send_status(pg_source_t *src, int ask, cdc_err_t *err)
{
    uint8_t m[1 + 8 * 4 + 1];
    int64_t pgnow = cdc_now_us() - CDC_PG_EPOCH_OFFSET_US;

    m[0] = 'r';
    put64(m + 1, src->received > src->flush ? src->received : src->flush);
    put64(m + 9, src->flush);
    put64(m + 17, src->flush);
    put64(m + 25, (uint64_t)pgnow);
    m[33] = ask ? 1 : 0;
    if (PQputCopyData(src->repl, (const char *)m, sizeof(m)) <= 0 ||
        PQflush(src->repl) < 0)
        return lost(src->repl, err, "sending standby status update failed");
    CDC_DEBUG(FAC, "status update: flush %X/%X", LSN_ARGS(src->flush));
    src->last_status_us = mono_us();
    src->next_status_us = src->last_status_us + src->status_interval_us;
    src->status_now = 0;
    if (ask && !src->asked_us)
        src->asked_us = src->last_status_us;
    return 0;
}

/* When the link counts as dead unless something arrives (see the
 * header); 0 = no deadline. */
static int64_t silent_deadline(const pg_source_t *src)
{
    int64_t a, b;
    if (!src->timeout_us || !src->asked_us)
        return 0;
    a = src->last_recv_us + src->timeout_us;
    b = src->asked_us + src->status_interval_us;
    return a > b ? a : b;
}

static int heartbeat(pg_source_t *src)
{
    PGresult *r = PQexec(src->sql, "SELECT pg_logical_emit_message(false, "
                                   "'autoglm-cdc', 'heartbeat')");
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        CDC_WARN(FAC, "heartbeat failed: %s", pqerr(src->sql));
    PQclear(r);
    if (!ok && PQstatus(src->sql) != CONNECTION_OK)
        PQreset(src->sql);
    src->next_heartbeat_us = mono_us() + src->heartbeat_ms * 1000;
    return 0;
}

/* Everything handed out so far is confirmed and nothing is open. */
static int idle_safe(pg_source_t *src)
{
    return !cdc_pgoutput_busy(src->dec) &&
           src->confirmed >= src->last_returned;
}

/* A txn or fragment from the decoder: 1 to hand it out, 0 if dropped as
 * re-sent.  A fragment with more set carries its commit record's LSN,
 * which is below the end of any transaction committed after it. */
static int take(pg_source_t *src, cdc_txn_t **out)
{
    cdc_txn_t *tx = *out;

    if (tx->more ? tx->pos.lsn < src->skip_upto
                 : tx->pos.lsn <= src->skip_upto) {
        CDC_DEBUG(FAC, "skipping re-sent transaction at %X/%X",
                  LSN_ARGS(tx->pos.lsn));
        cdc_txn_destroy(tx);
        *out = NULL;
        return 0;
    }
    if (!tx->more)
        src->last_returned = tx->pos.lsn;
    return 1;
}

static int handle_copydata(pg_source_t *src, const uint8_t *p, int n,
                           cdc_txn_t **out, cdc_err_t *err)
{
    if (n < 1)
        return 0;
    if (p[0] == 'w') {
        if (n < 25)
            return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                               "postgres: short XLogData (%d bytes)", n);
        uint64_t start = get64(p + 1), wal_end = get64(p + 9);
        if (wal_end > src->received)
            src->received = wal_end;
        if (start > src->received)
            src->received = start;
        int rc = cdc_pgoutput_feed(src->dec, p + 25, (size_t)(n - 25), start,
                                   out, err);
        if (rc < 0) {
            cdc_err_detail(err, "XLogData at %X/%X", LSN_ARGS(start));
            err->flags |= CDC_ERR_F_FATAL;
            return -1;
        }
        return rc == 1 ? take(src, out) : rc;
    }
    if (p[0] == 'k') {
        if (n < 18)
            return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                               "postgres: short keepalive (%d bytes)", n);
        uint64_t wal_end = get64(p + 1);
        if (wal_end > src->received)
            src->received = wal_end;
        if (idle_safe(src) && wal_end > src->flush) {
            src->flush = wal_end;
            src->confirmed = src->last_returned = wal_end;
            /* let the slot follow soon (at most once a second) */
            if (src->next_status_us > src->last_status_us + 1000000)
                src->next_status_us = src->last_status_us + 1000000;
        }
        if (p[17])
            src->status_now = 1;
        return 0;
    }
    CDC_DEBUG(FAC, "ignoring CopyData message '%c'", p[0]);
    return 0;
}

static int pg_next(cdc_source_t *base, cdc_txn_t **out, int timeout_ms,
                   cdc_err_t *err)
{
    pg_source_t *src = (pg_source_t *)base;
    int64_t deadline = mono_us() + (int64_t)timeout_ms * 1000;

    *out = NULL;
    if (!src->repl)
        return cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                           "postgres: source not started");
    for (;;) {
        int64_t t = mono_us();
        if ((src->status_now || t >= src->next_status_us) &&
            send_status(src, t >= src->next_status_us, err))
            return -1;
        if (src->next_heartbeat_us && t >= src->next_heartbeat_us)
            heartbeat(src);
        /* a spilled transaction being read back: its next fragment */
        while (src->dec) {
            int rc = cdc_pgoutput_next(src->dec, out, err);
            if (rc < 0)
                return -1;
            if (rc == 0)
                break;
            if (take(src, out))
                return CDC_SRC_TXN;
        }

        char *buf = NULL;
        int n = PQgetCopyData(src->repl, &buf, 1);
        if (n > 0) {
            src->last_recv_us = mono_us();
            src->asked_us = 0;
            int rc = handle_copydata(src, (const uint8_t *)buf, n, out, err);
            PQfreemem(buf);
            if (rc < 0)
                return -1;
            if (rc == 1)
                return CDC_SRC_TXN;
            continue;
        }
        if (n == -1) { /* COPY ended: the server stopped streaming */
            PGresult *r = PQgetResult(src->repl);
            const char *m = r ? PQresultErrorMessage(r) : "";
            cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                        "postgres: the server ended the replication stream: "
                        "%.300s",
                        m && *m ? m : "no error (server shutdown?)");
            PQclear(r);
            return -1;
        }
        if (n == -2)
            return lost(src->repl, err, "reading the replication stream");
        /* n == 0: nothing buffered, wait for the socket */
        if (t >= deadline) {
            if (src->status_now && send_status(src, 0, err))
                return -1;
            return CDC_SRC_IDLE;
        }
        int64_t until = deadline;
        if (src->next_status_us < until)
            until = src->next_status_us;
        if (src->next_heartbeat_us && src->next_heartbeat_us < until)
            until = src->next_heartbeat_us;
        int64_t silent = silent_deadline(src);
        if (silent && silent < until)
            until = silent;
        int wait_ms = (int)((until - t + 999) / 1000);
        struct pollfd pfd = {PQsocket(src->repl), POLLIN, 0};
        if (pfd.fd < 0)
            return lost(src->repl, err, "replication connection closed");
        int pr = poll(&pfd, 1, wait_ms < 0 ? 0 : wait_ms);
        if (pr < 0 && errno != EINTR)
            return lost(src->repl, err, "poll failed");
        if (pr < 0) /* a signal: let the pipeline look at its flags */
            return CDC_SRC_IDLE;
        if (pr == 0 && silent && mono_us() >= silent) {
            cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                        "postgres: replication link silent: nothing from "
                        "the server for %" PRId64 " s although a reply was "
                        "requested (postgres.timeout_s)",
                        (mono_us() - src->last_recv_us) / 1000000);
            cdc_err_hint(err, "the server or the network stopped answering; "
                              "the pipeline reconnects and resumes from the "
                              "last confirmed position");
            return -1;
        }
        if (pr > 0 && !PQconsumeInput(src->repl))
            return lost(src->repl, err, "reading the replication stream");
    }
}

static int pg_confirm(cdc_source_t *base, const cdc_pos_t *durable,
                      cdc_err_t *err)
{
    pg_source_t *src = (pg_source_t *)base;

    if (!durable || durable->lsn <= src->confirmed)
        return 0;
    src->confirmed = durable->lsn;
    if (durable->lsn > src->flush) {
        src->flush = durable->lsn;
        /* a lost link is next()'s to report: the pipeline is draining
         * after it (or will see it there); the checkpoint holds the
         * position and the next status update carries it */
        if (src->repl && PQstatus(src->repl) == CONNECTION_OK &&
            send_status(src, 0, err))
            CDC_DEBUG(FAC, "%s", err->msg);
    }
    return 0;
}

static void pg_destroy_ops(cdc_source_t *base)
{
    pg_source_t *src = (pg_source_t *)base;
    cdc_err_t err;
    /* a last status update so the slot keeps what was confirmed */
    if (src && src->repl && PQstatus(src->repl) == CONNECTION_OK) {
        send_status(src, 0, &err);
        PQputCopyEnd(src->repl, NULL);
        PQflush(src->repl);
    }
    pg_destroy(base);
}

static cdc_source_t *pg_create_ops(const cdc_conf_t *conf, cdc_err_t *err);

/* check_value: libpq's parser decides every conninfo key (postgres.dsn,
 * postgres_sink.dsn) */
static int pg_check_value(int type, const char *key, const char *val,
                          const char *where, cdc_err_t *err)
{
    char msg[512];

    if (type != CDC_KT_CONNINFO || !cdc_pg_conninfo_check(val, msg,
                                                          sizeof(msg)))
        return 0;
    cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s%s%s: libpq rejects the "
                "connection string: %s", where ? where : "",
                where ? ": " : "", key, msg);
    cdc_err_hint(err, "key=value pairs separated by spaces (host=h "
                 "port=5432 dbname=d user=u) or postgresql://u@h:5432/d");
    return -1;
}

const cdc_source_ops_t cdc_source_postgres_ops = {
    .name = "postgres",
    .abi = CDC_PLUGIN_ABI,
    .create = pg_create_ops,
    .start = pg_start,
    .next = pg_next,
    .confirm = pg_confirm,
    .destroy = pg_destroy_ops,
    .aliases = (const char *const[]){"postgresql", "pg", NULL},
    .check_value = pg_check_value,
    .position = CDC_POS_LSN,
};

static cdc_source_t *pg_create_ops(const cdc_conf_t *conf, cdc_err_t *err)
{
    cdc_source_t *s = pg_create(conf, err);
    if (s)
        s->ops = &cdc_source_postgres_ops;
    return s;
}
