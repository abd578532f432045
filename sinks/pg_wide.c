/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg_wide.c - the PostgreSQL wide-table sink (`--sink postgres`).
 *
 * Changes go through the mapping engine (mappings/map.h) and become wide
 * operations; these are batched and applied in ONE database transaction
 * together with the pipeline's position in the offsets table:
 *
 *   BEGIN
 *     SELECT position FROM autoglm_cdc_offsets WHERE pipeline = $1 FOR UPDATE
 *     INSERT INTO wide AS t (...) SELECT ... FROM unnest($1::text[], ...)
 *       ON CONFLICT (key) DO UPDATE SET f = CASE WHEN <incoming rank >
 *       stored rank> THEN EXCLUDED.f ELSE t.f END, ..., _provenance = ...
 *       WHERE <some field wins>
 *     UPDATE ... (dimension lookups)
 *     INSERT INTO autoglm_cdc_offsets ... ON CONFLICT DO UPDATE
 *   COMMIT
 *
 * so after a crash the database holds the rows of exactly the batches
 * whose position it also holds.  A transaction the source hands out in
 * fragments (cdc_txn_t.more) stays in one database transaction across
 * batches: BEGIN with its first batch, COMMIT with the offset after the
 * batch of its last fragment (wide_batch.h); a failure rolls all of it
 * back.  On start the sink reads that position
 * and drops every transaction at or before it (a restart resumes from the
 * file checkpoint, which may be behind): each change is applied once.
 *
 * Values are bound as parameters (text arrays), identifiers quoted with
 * PQescapeIdentifier, so SQL-looking data and names stay data.  Each
 * field's provenance {s: source, t: commit µs, p: position, r: rank}
 * lives in the _provenance jsonb column; a field is replaced only by a
 * strictly higher rank, so the outcome does not depend on the order or
 * repetition of changes (map.h).  Consecutive upserts of a batch are
 * merged in memory first (the same max rule), which is exact and keeps
 * ON CONFLICT from seeing one key twice.
 *
 * A row delete (on_delete: delete) is an upsert of deletions: NULL with
 * "d":1 in the provenance, on every non-key field.  A target with row
 * deletes has two more statements per batch, each over arrays of the
 * batch's keys: before the upserts its tombstones (<table>_tombstones:
 * key + _provenance) come back as row shells, after them the rows whose
 * every provenance entry is a deletion move there.
 *
 * A lost connection (PostgreSQL stopped or restarted, the network) does
 * not end the run: the batch is applied again after a reconnect in place
 * (wide_batch.h), with the engine's backoff, for up to
 * postgres_sink.reconnect_timeout_ms; meanwhile the sink acknowledges
 * nothing, so in a fan-out the other sinks go on up to the pipeline's
 * in-flight bound, then the source waits.  The offsets table, read in the
 * batch's transaction, keeps it exactly once.  After the timeout the sink
 * fails with exit 69 as before.
 *
 * Retention (postgres_sink.tombstone_keep): at most once per
 * postgres_sink.tombstone_purge_every, between batches and in its own
 * short transaction, up to CDC_WIDE_PURGE_ROWS tombstones whose newest deletion
 * (max "t" of the provenance) is older than now - keep are deleted; so
 * are the deleted entries of the side tables of groups, aggregates and
 * votes (purge_target), each table in its own short transaction.
 */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "cdc/util.h"
#include "cdc/checkpoint.h"
#include "cdc/conf.h"
#include "cdc/envelope.h"
#include "cdc/log.h"
#include "connectors/pg/pgutil.h"
#include "cdc/plugin.h"
#include "mappings/map_int.h"
#include "mappings/reverse.h"
#include "sinks/pg_rank.h"
#include "sinks/pg_sql.h"
#include "sinks/pg_wide_group.h"
#include "sinks/pg_wide_vote.h"
#include "sinks/pg_wide_agg.h"
#include "sinks/wide_batch.h"

extern const cdc_sink_ops_t cdc_sink_postgres_ops;

#define FAC "pgwide"

typedef struct stmt {
    char *sig;  /* signature (statement shape) */
    char name[24];
    int used;   /* upsert shape: its staging table has rows this txn */
    char stage[32]; /* upsert shape: its staging table */
} stmt_t;

/* one merged wide row of the batch */
typedef struct mrow {
    const cdc_map_target_t *target;
    const char **key;
    char *keytext;
    const cdc_wide_op_t **vop; /* per field: op of the best value */
    const cdc_wide_val_t **val;/* per field: best value, NULL none */
} mrow_t;

typedef struct pgw {
    cdc_sink_t base;
    PGconn *pg;
    char *dsn;
    cdc_map_t *map;
    char *pipeline;
    char *source;
    char *offsets_q;           /* quoted offsets table name */
    char *dl_q;                /* quoted dead-letter table name */
    int create_tables;
    /* batch */
    cdc_wide_batch_t b;
    cdc_wide_ops_t ops;
    /* merge */
    mrow_t *rows;
    size_t nrows, caprows;
    size_t *hash, hcap;
    /* statements */
    stmt_t *stmts;
    int nstmts;
    cdc_buf_t sql, tmp;
    unsigned stage_seq;        /* names of staging tables */
    int same_skip;             /* same_value=skip: equal values write nothing */
    int64_t fillfactor;        /* of the wide tables we create */
    char *origin;              /* replication origin of this session */
    int64_t reconnect_timeout_ms; /* postgres_sink.reconnect_timeout_ms */
    cdc_wide_purge_t purge;    /* tombstone retention */
    /* per target (index into map->targets): 1 when its table keeps the
     * ranks in rank columns (pg_rank.h), 0 for a _provenance jsonb table
     * (two-way tables, whose triggers and reverse pipeline read it) */
    unsigned char *rmode;
    int *rbytes;               /* per target field: cdc_pgrank_bytes */
    uint32_t *rbase;           /* per target: first index into rbytes */
    cdc_pgv_t votes;           /* per-source fields (pg_wide_vote.c) */
} pgw_t;

static int side_tables(const cdc_map_target_t *t);

static void chomp(char *s)
{
    size_t l = strlen(s);
    while (l && (s[l - 1] == '\n' || s[l - 1] == ' '))
        s[--l] = '\0';
}

static int pgerr(pgw_t *w, PGresult *r, const char *what, cdc_err_t *err)
{
    return cdc_pgs_fail(w->pg, r, what, NULL, err);
}

static int pgerr_cb(void *ctx, PGresult *r, const char *what, cdc_err_t *err)
{
    return pgerr(ctx, r, what, err);
}

static char *qident(pgw_t *w, const char *s)
{
    return cdc_pgs_qid(w->pg, s);
}

/* [schema.]table given in the configuration, each part quoted */
static char *qname(pgw_t *w, const char *name)
{
    const char *dot = strchr(name, '.');
    char *s, *a, *b, *r;

    if (!dot)
        return qident(w, name);
    s = cdc_xstrndup(name, (size_t)(dot - name));
    a = qident(w, s);
    b = qident(w, dot + 1);
    r = cdc_xmalloc(strlen(a) + strlen(b) + 2);
    sprintf(r, "%s.%s", a, b);
    free(s);
    free(a);
    free(b);
    return r;
}

static char *qtable(pgw_t *w, const cdc_map_target_t *t)
{
    return cdc_pgs_qtab(w->pg, t, NULL);
}

/* column type (with typmod) */
static const char *pgtype(const cdc_map_field_t *f, char *buf, size_t n)
{
    return cdc_pgs_type(f, 1, buf, n);
}

/* cast type in statements (no typmod) */
static const char *casttype(const cdc_map_field_t *f)
{
    return cdc_pgs_type(f, 0, NULL, 0);
}

static char *qlit_(pgw_t *w, const char *s)
{
    char *q = PQescapeLiteral(w->pg, s, strlen(s));
    char *r = cdc_xstrdup(q ? q : "''");
    PQfreemem(q);
    return r;
}

/* ---- rank columns (pg_rank.h) -------------------------------------------- */

static uint32_t tix(const pgw_t *w, const cdc_map_target_t *t)
{
    return (uint32_t)(t - w->map->targets);
}

static int rmode(const pgw_t *w, const cdc_map_target_t *t)
{
    return w->rmode && w->rmode[tix(w, t)];
}

/* the quoted rank column of field f */
static char *qrank(pgw_t *w, const char *field)
{
    char col[200];
    cdc_pgrank_col(col, sizeof(col), field);
    return qident(w, col);
}

/* "schema".fn: the helper functions live in the target's schema */
static char *qfn(pgw_t *w, const cdc_map_target_t *t, const char *fn)
{
    char *a = qident(w, *t->schema ? t->schema : "public");
    char *r = cdc_xmalloc(strlen(a) + strlen(fn) + 2);
    sprintf(r, "%s.%s", a, fn);
    free(a);
    return r;
}

/* "incoming rank inc of field f beats the stored one (alias t)": the rank
 * bytes only (the commit time after them may differ for an equal rank:
 * snapshot values); a NULL stored column loses to every rank */
static void rwin(pgw_t *w, cdc_buf_t *b, const cdc_map_target_t *t,
                 uint32_t f, const char *inc)
{
    char *q = qrank(w, t->fields[f].name);
    int n = w->rbytes[w->rbase[tix(w, t)] + f];
    cdc_buf_printf(b, "(substr(%s, 1, %d) > substr(COALESCE(t.%s, "
                   "'\\x'::bytea), 1, %d))", inc, n, q, n);
    free(q);
}

/* rwin, and with same_value=skip also "the value differs" (incval) */
static void rwin_upsert(pgw_t *w, cdc_buf_t *b, const cdc_map_target_t *t,
                        uint32_t f, const char *inc, const char *incval,
                        int exact)
{
    rwin(w, b, t, f, inc);
    if (w->same_skip && !exact) {
        char *q = qident(w, t->fields[f].name);
        cdc_buf_printf(b, " AND (%s IS DISTINCT FROM t.%s", incval, q);
        if (t->tombstones) {
            /* a deletion differs from a NULL value (and back) */
            char *fn = qfn(w, t, "autoglm_cdc_deleted"),
                 *r = qrank(w, t->fields[f].name);
            cdc_buf_printf(b, " OR %s(%s) <> %s(t.%s)", fn, inc, fn, r);
            free(fn);
            free(r);
        }
        cdc_buf_puts(b, ")");
        free(q);
    }
}

/* ON CONFLICT ... DO UPDATE of fields fl of t, ranks in rank columns */
static void rank_conflict_update(pgw_t *w, cdc_buf_t *b,
                                 const cdc_map_target_t *t,
                                 const uint32_t *fl, int nf, int exact)
{
    cdc_buf_puts(b, ") DO UPDATE SET ");
    for (int i = 0; i < nf; i++) {
        char *q = qident(w, t->fields[fl[i]].name);
        char *r = qrank(w, t->fields[fl[i]].name);
        char inc[200], incv[200];
        snprintf(inc, sizeof(inc), "EXCLUDED.%s", r);
        snprintf(incv, sizeof(incv), "EXCLUDED.%s", q);
        cdc_buf_printf(b, "%s%s = CASE WHEN ", i ? ", " : "", q);
        rwin_upsert(w, b, t, fl[i], inc, incv, exact);
        cdc_buf_printf(b, " THEN EXCLUDED.%s ELSE t.%s END, %s = CASE WHEN ",
                       q, q, r);
        rwin_upsert(w, b, t, fl[i], inc, incv, exact);
        cdc_buf_printf(b, " THEN EXCLUDED.%s ELSE t.%s END", r, r);
        free(q);
        free(r);
    }
    cdc_buf_puts(b, " WHERE ");
    for (int i = 0; i < nf; i++) {
        char *q = qident(w, t->fields[fl[i]].name);
        char *r = qrank(w, t->fields[fl[i]].name);
        char inc[200], incv[200];
        snprintf(inc, sizeof(inc), "EXCLUDED.%s", r);
        snprintf(incv, sizeof(incv), "EXCLUDED.%s", q);
        if (i)
            cdc_buf_puts(b, " OR ");
        rwin_upsert(w, b, t, fl[i], inc, incv, exact);
        free(q);
        free(r);
    }
}

/* the provenance object of row alias a, built from its rank columns (the
 * object a _provenance column held) */
static void rank_prov_obj(pgw_t *w, cdc_buf_t *b, const cdc_map_target_t *t,
                          const char *a)
{
    char *fn = qfn(w, t, "autoglm_cdc_prov");
    int n = 0;
    /* jsonb_build_object takes at most 100 arguments: chunks of 40 */
    cdc_buf_puts(b, "jsonb_strip_nulls(jsonb_build_object()");
    for (uint32_t f = 0; f < t->nfields; f++) {
        char *lit, *r;
        if (t->fields[f].is_key)
            continue;
        lit = qlit_(w, t->fields[f].name);
        r = qrank(w, t->fields[f].name);
        if (n % 40 == 0)
            cdc_buf_puts(b, " || jsonb_build_object(");
        cdc_buf_printf(b, "%s%s, %s(%s.%s)", n % 40 ? ", " : "", lit, fn, a,
                       r);
        if (n % 40 == 39)
            cdc_buf_puts(b, ")");
        n++;
        free(lit);
        free(r);
    }
    if (n % 40)
        cdc_buf_puts(b, ")");
    cdc_buf_puts(b, ")");
    free(fn);
}

static int exec_simple(pgw_t *w, const char *sql, const char *what,
                       cdc_err_t *err)
{
    PGresult *r = PQexec(w->pg, sql);
    int st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        pgerr(w, r, what, err);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

/* the quoted tombstones table of t (cdc_map_tombstone_table) */
static char *qtomb(pgw_t *w, const cdc_map_target_t *t)
{
    char name[200];
    char *a, *b, *r;
    cdc_map_tombstone_table(t, name, sizeof(name));
    a = qident(w, *t->schema ? t->schema : "public");
    b = qident(w, name);
    r = cdc_xmalloc(strlen(a) + strlen(b) + 2);
    sprintf(r, "%s.%s", a, b);
    free(a);
    free(b);
    return r;
}

/* Dead rows of a target with row deletes keep their provenance here (key
 * columns + _provenance): a late older change finds the delete's ranks. */
static int create_tomb(pgw_t *w, const cdc_map_target_t *t, cdc_err_t *err)
{
    cdc_buf_t b = CDC_BUF_INIT;
    char *qt = qtomb(w, t), tb[40];
    int rc;

    cdc_buf_printf(&b, "CREATE TABLE IF NOT EXISTS %s (", qt);
    for (uint32_t k = 0; k < t->nkey; k++) {
        char *qf = qident(w, t->fields[t->key[k]].name);
        cdc_buf_printf(&b, "%s %s NOT NULL, ", qf,
                       pgtype(&t->fields[t->key[k]], tb, sizeof(tb)));
        free(qf);
    }
    cdc_buf_puts(&b, "_provenance jsonb NOT NULL, PRIMARY KEY (");
    for (uint32_t k = 0; k < t->nkey; k++) {
        char *qf = qident(w, t->fields[t->key[k]].name);
        cdc_buf_printf(&b, "%s%s", k ? ", " : "", qf);
        free(qf);
    }
    cdc_buf_puts(&b, "))");
    rc = exec_simple(w, b.p, "creating a tombstones table", err);
    if (rc)
        cdc_err_hint(err, "target %s deletes rows (on_delete: delete): the "
                     "sink keeps dead rows' provenance in %s; grant CREATE on "
                     "the schema or create the table yourself "
                     "(docs/MAPPINGS.md)", t->name, qt);
    free(qt);
    cdc_buf_free(&b);
    return rc;
}

/* the dead-letter table (sinks/dead_letter.h) */
static int create_dl(pgw_t *w, cdc_err_t *err)
{
    cdc_buf_reset(&w->sql);
    cdc_buf_printf(&w->sql, "CREATE TABLE IF NOT EXISTS %s (id bigserial "
                   "PRIMARY KEY, pipeline text NOT NULL, source text NOT NULL, "
                   "source_table text NOT NULL, op text NOT NULL, position "
                   "text NOT NULL, commit_us bigint NOT NULL, error text NOT "
                   "NULL, change_data text NOT NULL, created_at timestamptz "
                   "NOT NULL DEFAULT now())", w->dl_q);
    return exec_simple(w, w->sql.p, "creating the dead-letter table", err);
}


/* the names of t's columns (an empty list: no such table); -1 with err */
static int table_cols(pgw_t *w, const char *qt, PGresult **out, int *twoway,
                      cdc_err_t *err)
{
    const char *p[1] = {qt};
    PGresult *r;

    r = PQexecParams(w->pg, "SELECT attname FROM pg_attribute WHERE attrelid "
                     "= to_regclass($1) AND attnum > 0 AND NOT attisdropped",
                     1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pgerr(w, r, "reading the wide table's columns", err);
        PQclear(r);
        return -1;
    }
    *out = r;
    /* two-way: the stamping trigger of `mapping triggers`, or a
     * publication that reads the table back */
    r = PQexecParams(w->pg, "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE "
                     "tgrelid = to_regclass($1) AND tgname = "
                     "'autoglm_cdc_twoway') OR EXISTS (SELECT 1 FROM "
                     "pg_publication_rel WHERE prrelid = to_regclass($1))",
                     1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pgerr(w, r, "reading the wide table's triggers", err);
        PQclear(r);
        PQclear(*out);
        return -1;
    }
    *twoway = !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    return 0;
}

static int has_col(PGresult *cols, const char *name)
{
    for (int i = 0; i < PQntuples(cols); i++)
        if (!strcmp(PQgetvalue(cols, i, 0), name))
            return 1;
    return 0;
}

/* the helper functions of pg_rank.h in t's schema, unless there */
static int rank_functions(pgw_t *w, const cdc_map_target_t *t, cdc_err_t *err)
{
    char *fr = qfn(w, t, "autoglm_cdc_rank(jsonb)"),
         *fp = qfn(w, t, "autoglm_cdc_prov(bytea)"),
         *fd = qfn(w, t, "autoglm_cdc_deleted(bytea)");
    const char *p[3] = {fr, fp, fd};
    PGresult *r;
    int rc = -1;

    r = PQexecParams(w->pg, "SELECT to_regprocedure($1) IS NOT NULL AND "
                     "to_regprocedure($2) IS NOT NULL AND to_regprocedure($3) "
                     "IS NOT NULL", 3, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        pgerr(w, r, "looking up the rank functions", err);
    else if (!strcmp(PQgetvalue(r, 0, 0), "t"))
        rc = 0;
    else if (!w->create_tables) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "postgres sink: target %s: the "
                    "functions autoglm_cdc_prov, autoglm_cdc_rank and "
                    "autoglm_cdc_deleted are missing in the table's schema",
                    t->name);
        cdc_err_hint(err, "run the sink once with postgres_sink.create_tables"
                     "=true (it creates them), or create them as "
                     "docs/MAPPINGS.md shows");
    } else {
        char *qs = qident(w, *t->schema ? t->schema : "public");
        cdc_buf_t b = CDC_BUF_INIT;
        cdc_pgrank_functions_sql(&b, qs);
        rc = exec_simple(w, b.p, "creating the rank functions", err);
        cdc_buf_free(&b);
        free(qs);
    }
    PQclear(r);
    free(fr);
    free(fp);
    free(fd);
    return rc;
}

/* <table>_provenance(): the table's fields and the provenance object.  A
 * function, not a view: its body is not a dependency, so DROP TABLE of
 * the wide table works as before (the function is made again at start). */
static int prov_view(pgw_t *w, const cdc_map_target_t *t, const char *qt,
                     cdc_err_t *err)
{
    cdc_buf_t b = CDC_BUF_INIT;
    char name[200], tb[40];
    char *qs = qident(w, *t->schema ? t->schema : "public"), *qv;
    int rc;

    snprintf(name, sizeof(name), "%s_provenance", t->table);
    qv = qident(w, name);
    {
        /* made by another user (another pipeline's): leave it */
        PGresult *r;
        const char *p[1];
        cdc_buf_printf(&b, "%s.%s()", qs, qv);
        p[0] = b.p;
        r = PQexecParams(w->pg, "SELECT 1 FROM pg_proc WHERE oid = "
                         "to_regprocedure($1) AND NOT pg_has_role(proowner, "
                         "'USAGE')", 1, NULL, p, NULL, NULL, 0);
        rc = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
        PQclear(r);
        cdc_buf_reset(&b);
        if (rc) {
            CDC_DEBUG(FAC, "%s.%s() belongs to another user: kept", qs, qv);
            free(qs);
            free(qv);
            cdc_buf_free(&b);
            return 0;
        }
    }
    cdc_buf_printf(&b, "DROP FUNCTION IF EXISTS %s.%s(); CREATE FUNCTION "
                   "%s.%s() RETURNS TABLE (", qs, qv, qs, qv);
    for (uint32_t f = 0; f < t->nfields; f++) {
        char *q = qident(w, t->fields[f].name);
        cdc_buf_printf(&b, "%s %s, ", q, pgtype(&t->fields[f], tb,
                                                sizeof(tb)));
        free(q);
    }
    cdc_buf_puts(&b, "_provenance jsonb) LANGUAGE sql STABLE AS $f$ SELECT ");
    for (uint32_t f = 0; f < t->nfields; f++) {
        char *q = qident(w, t->fields[f].name);
        cdc_buf_printf(&b, "t.%s::%s, ", q, pgtype(&t->fields[f], tb,
                                                   sizeof(tb)));
        free(q);
    }
    rank_prov_obj(w, &b, t, "t");
    cdc_buf_printf(&b, " FROM %s t $f$", qt);
    rc = exec_simple(w, b.p, "creating the provenance function", err);
    free(qs);
    free(qv);
    cdc_buf_free(&b);
    return rc;
}

/*
 * Which form t's table has, and bring it to the current one (in the DDL
 * transaction of create_tables):
 *   - a _provenance column on a two-way table (the stamping trigger, or a
 *     publication reads the table back), or on a table the sink may not
 *     alter (create_tables=false): kept, ranks in the jsonb (rmode 0);
 *   - a _provenance column the sink created (earlier versions): migrated
 *     in place to rank columns, in this transaction;
 *   - else rank columns (rmode 1); missing ones are added (a field new to
 *     the mapping), or refused without create_tables.
 */
static int prep_target(pgw_t *w, const cdc_map_target_t *t, cdc_err_t *err)
{
    char *qt = qtable(w, t);
    PGresult *cols = NULL;
    cdc_buf_t b = CDC_BUF_INIT, miss = CDC_BUF_INIT;
    int twoway = 0, rc = -1, nmiss = 0;
    uint32_t ti = tix(w, t);

    for (uint32_t f = 0; f < t->nfields; f++) {
        char col[200];
        if (!t->fields[f].is_key &&
            cdc_pgrank_col(col, sizeof(col), t->fields[f].name)) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "postgres sink: target %s: "
                        "field %s: its rank column %s would be longer than "
                        "PostgreSQL's %d bytes", t->name, t->fields[f].name,
                        col, CDC_PGRANK_NAMEMAX);
            cdc_err_hint(err, "shorten the field's name to at most %d "
                         "characters", CDC_PGRANK_NAMEMAX -
                         (int)strlen(CDC_PGRANK_PREFIX));
            goto out;
        }
    }
    if (table_cols(w, qt, &cols, &twoway, err))
        goto out;
    w->rmode[ti] = 1;
    if (PQntuples(cols) && has_col(cols, "_provenance")) {
        if (twoway || !w->create_tables) {
            w->rmode[ti] = 0;
            CDC_DEBUG(FAC, "target %s: %s keeps its _provenance column (%s)",
                      t->name, qt, twoway ? "two-way table" :
                      "create_tables=false");
            rc = 0;
            goto out;
        }
        /* migrate a table of an earlier version */
        if (rank_functions(w, t, err))
            goto out;
        cdc_buf_printf(&b, "ALTER TABLE %s ", qt);
        for (uint32_t f = 0, n = 0; f < t->nfields; f++) {
            char *qr;
            if (t->fields[f].is_key)
                continue;
            qr = qrank(w, t->fields[f].name);
            cdc_buf_printf(&b, "%sADD COLUMN IF NOT EXISTS %s bytea",
                           n++ ? ", " : "", qr);
            free(qr);
        }
        cdc_buf_printf(&b, "; UPDATE %s SET ", qt);
        {
            char *fn = qfn(w, t, "autoglm_cdc_rank");
            for (uint32_t f = 0, n = 0; f < t->nfields; f++) {
                char *qr, *lit;
                if (t->fields[f].is_key)
                    continue;
                qr = qrank(w, t->fields[f].name);
                lit = qlit_(w, t->fields[f].name);
                cdc_buf_printf(&b, "%s%s = %s(_provenance -> %s)",
                               n++ ? ", " : "", qr, fn, lit);
                free(qr);
                free(lit);
            }
            free(fn);
        }
        cdc_buf_printf(&b, "; ALTER TABLE %s DROP COLUMN _provenance", qt);
        if (exec_simple(w, b.p, "migrating the wide table to rank columns",
                        err)) {
            /* nothing changed (one transaction); not a value of a batch */
            if (err->code != CDC_EXIT_UNAVAILABLE) {
                err->code = CDC_EXIT_CONFIG;
                err->flags = 0;
            }
            cdc_err_hint(err, "the table %s has a _provenance column of an "
                         "earlier version, which the sink moves into rank "
                         "columns at start, in one transaction that "
                         "failed and changed nothing: the sink's user must "
                         "own the table, and every _provenance entry needs "
                         "a hex rank \"r\" and a time \"t\" (fix or "
                         "remove the entry; docs/MAPPINGS.md, upgrading)",
                         qt);
            goto out;
        }
        CDC_INFO(FAC, "target %s: %s migrated from _provenance to rank "
                 "columns", t->name, qt);
    } else if (PQntuples(cols)) {
        for (uint32_t f = 0; f < t->nfields; f++) {
            char col[200];
            if (t->fields[f].is_key)
                continue;
            cdc_pgrank_col(col, sizeof(col), t->fields[f].name);
            if (has_col(cols, col))
                continue;
            cdc_buf_printf(&miss, "%s%s", nmiss++ ? ", " : "", col);
        }
        if (nmiss && !w->create_tables) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "postgres sink: target %s: "
                        "table %s lacks the rank columns %s", t->name, qt,
                        miss.p);
            cdc_err_hint(err, "add them (bytea, one per field: ALTER TABLE "
                         "%s ADD COLUMN _r_<field> bytea), or set "
                         "postgres_sink.create_tables=true", qt);
            goto out;
        }
        if (nmiss) {
            cdc_buf_printf(&b, "ALTER TABLE %s ", qt);
            for (uint32_t f = 0, n = 0; f < t->nfields; f++) {
                char *qr;
                if (t->fields[f].is_key)
                    continue;
                qr = qrank(w, t->fields[f].name);
                cdc_buf_printf(&b, "%sADD COLUMN IF NOT EXISTS %s bytea",
                               n++ ? ", " : "", qr);
                free(qr);
            }
            if (exec_simple(w, b.p, "adding rank columns", err))
                goto out;
        }
    }
    if (PQntuples(cols) || w->create_tables) {
        if (rank_functions(w, t, err) ||
            (w->create_tables && prov_view(w, t, qt, err)))
            goto out;
    }
    rc = 0;
out:
    PQclear(cols);
    cdc_buf_free(&b);
    cdc_buf_free(&miss);
    free(qt);
    return rc;
}

/* CREATE TABLE IF NOT EXISTS for the offsets and every target */
static int create_tables(pgw_t *w, cdc_err_t *err)
{
    cdc_buf_t *b = &w->sql;

    if (exec_simple(w, "BEGIN", "begin", err))
        return -1;
    /* several pipelines may start at once: serialise the DDL */
    if (exec_simple(w, "SELECT pg_advisory_xact_lock(4242424242)", "lock", err))
        goto fail;
    cdc_buf_reset(b);
    cdc_buf_printf(b, "CREATE TABLE IF NOT EXISTS %s (pipeline text PRIMARY "
                   "KEY, source text, position text NOT NULL, pos_key text "
                   "NOT NULL, commit_us bigint, txns bigint NOT NULL DEFAULT 0, "
                   "changes bigint NOT NULL DEFAULT 0, updated_at "
                   "timestamptz NOT NULL DEFAULT now())", w->offsets_q);
    if (exec_simple(w, b->p, "creating the offsets table", err) ||
        (w->b.dead_letter && create_dl(w, err)))
        goto fail;
    for (uint32_t i = 0; w->create_tables && i < w->map->ntargets; i++) {
        const cdc_map_target_t *t = &w->map->targets[i];
        char *qt = qtable(w, t);
        char tb[40];
        cdc_buf_reset(b);
        cdc_buf_printf(b, "CREATE TABLE IF NOT EXISTS %s (", qt);
        for (uint32_t f = 0; f < t->nfields; f++) {
            char *qf = qident(w, t->fields[f].name);
            cdc_buf_printf(b, "%s %s%s, ", qf, pgtype(&t->fields[f], tb,
                                                      sizeof(tb)),
                           t->fields[f].is_key ? " NOT NULL" : "");
            free(qf);
        }
        for (uint32_t f = 0; f < t->nfields; f++) {
            char *qr;
            if (t->fields[f].is_key)
                continue;
            qr = qrank(w, t->fields[f].name);
            cdc_buf_printf(b, "%s bytea, ", qr);
            free(qr);
        }
        cdc_buf_puts(b, "PRIMARY KEY (");
        for (uint32_t k = 0; k < t->nkey; k++) {
            char *qf = qident(w, t->fields[t->key[k]].name);
            cdc_buf_printf(b, "%s%s", k ? ", " : "", qf);
            free(qf);
        }
        /* every change updates a row: leave room on each page so updates
         * stay on the page (HOT) and skip the index */
        cdc_buf_printf(b, ")) WITH (fillfactor = %" PRId64 ")", w->fillfactor);
        if (exec_simple(w, b->p, "creating a wide table", err)) {
            free(qt);
            goto fail;
        }
        if (prep_target(w, t, err)) {
            free(qt);
            goto fail;
        }
        if (t->tombstones && create_tomb(w, t, err)) {
            free(qt);
            goto fail;
        }
        /* lookup mappings match on fields: index them */
        for (uint32_t m = 0; m < w->map->nmappings; m++) {
            const cdc_map_mapping_t *mp = &w->map->mappings[m];
            if (!mp->lookup || mp->target != t)
                continue;
            cdc_buf_reset(b);
            cdc_buf_printf(b, "CREATE INDEX IF NOT EXISTS ");
            {
                char iname[128];
                char *qi;
                snprintf(iname, sizeof(iname), "%s_%s_lookup", t->table,
                         t->fields[mp->keys[0].field].name);
                qi = qident(w, iname);
                cdc_buf_printf(b, "%s ON %s (", qi, qt);
                free(qi);
            }
            for (uint32_t k = 0; k < mp->nkeys; k++) {
                char *qf = qident(w, t->fields[mp->keys[k].field].name);
                cdc_buf_printf(b, "%s%s", k ? ", " : "", qf);
                free(qf);
            }
            cdc_buf_puts(b, ")");
            if (exec_simple(w, b->p, "creating a lookup index", err)) {
                free(qt);
                goto fail;
            }
        }
        free(qt);
    }
    for (uint32_t i = 0; !w->create_tables && i < w->map->ntargets; i++)
        if (prep_target(w, &w->map->targets[i], err))
            goto fail;
    /* field groups: their candidates tables (pg_wide_group.c) */
    if (cdc_pgw_groups_setup(w->pg, w->map, w->create_tables, err))
        goto fail;
    /* per-source fields (vote, weighted_mean): <table>_votes */
    if (cdc_pgv_create(&w->votes, w->create_tables, w->source, err))
        goto fail;
    /* without create_tables the tombstone tables must exist already */
    for (uint32_t i = 0; !w->create_tables && i < w->map->ntargets; i++) {
        const cdc_map_target_t *t = &w->map->targets[i];
        char *qt;
        const char *p[1];
        PGresult *r;
        if (!t->tombstones || !cdc_wide_source_writes(w->map, w->source, t))
            continue;
        qt = qtomb(w, t);
        p[0] = qt;
        r = PQexecParams(w->pg, "SELECT to_regclass($1) IS NOT NULL", 1,
                         NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            pgerr(w, r, "checking the tombstones table", err);
            PQclear(r);
            free(qt);
            goto fail;
        }
        if (strcmp(PQgetvalue(r, 0, 0), "t")) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "postgres sink: target %s "
                        "deletes rows (on_delete: delete) but the tombstones "
                        "table %s is missing", t->name, qt);
            cdc_err_hint(err, "set postgres_sink.create_tables=true, or create "
                         "it: the key columns of %s and _provenance jsonb NOT "
                         "NULL, PRIMARY KEY on the key (docs/MAPPINGS.md)",
                         t->table);
            PQclear(r);
            free(qt);
            goto fail;
        }
        PQclear(r);
        free(qt);
    }
    /* aggregates: the contributions tables */
    if (cdc_pgw_agg_setup(w->pg, w->map, w->source, w->create_tables, err))
        goto fail;
    return exec_simple(w, "COMMIT", "commit", err);
fail:
    {
        PGresult *r = PQexec(w->pg, "ROLLBACK");
        PQclear(r);
    }
    return -1;
}

static int read_offset(pgw_t *w, int lock, cdc_err_t *err)
{
    const char *p[1] = {w->pipeline};
    PGresult *r;

    cdc_buf_reset(&w->sql);
    cdc_buf_printf(&w->sql, "SELECT pos_key, position FROM %s WHERE pipeline "
                   "= $1%s", w->offsets_q, lock ? " FOR UPDATE" : "");
    r = PQexecParams(w->pg, w->sql.p, 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pgerr(w, r, "reading the stored offset", err);
        PQclear(r);
        return -1;
    }
    if (PQntuples(r)) {
        snprintf(w->b.stored, sizeof(w->b.stored), "%s", PQgetvalue(r, 0, 0));
        if (!w->b.have_stored)
            CDC_INFO(FAC, "pipeline %s: target database holds position %s; "
                     "changes at or before it are skipped", w->pipeline,
                     PQgetvalue(r, 0, 1));
        w->b.have_stored = 1;
    }
    PQclear(r);
    return 0;
}

/*
 * Loop prevention (docs/TWO-WAY.md): every transaction of this session
 * carries the replication origin postgres_sink.origin (default
 * autoglm_cdc_<pipeline>), which the PostgreSQL source recognises in the
 * pgoutput Origin message and skips.  An origin can be active in one
 * session only: a second process of the same pipeline takes <name>_2, ...
 */
/* 1 if a table this pipeline writes is also the source table of a
 * mapping (the reverse direction of a two-way sync): only then would a
 * PostgreSQL source capture unmarked writes again. */
static int writes_read_back(const pgw_t *w)
{
    const cdc_map_t *m = w->map;

    for (uint32_t i = 0; i < m->nmappings; i++) {
        const cdc_map_target_t *t = m->mappings[i].target;
        const char *schema = t->schema && *t->schema ? t->schema : "public";
        if (strcmp(m->mappings[i].source->id, w->source))
            continue;
        for (uint32_t j = 0; j < m->nmappings; j++)
            if (!strcmp(m->mappings[j].db, schema) &&
                !strcmp(m->mappings[j].table, t->table))
                return 1;
    }
    return 0;
}

static int setup_origin(pgw_t *w, const char *name, int optional,
                        cdc_err_t *err)
{
    char cand[200];

    for (int i = 1; i <= 16; i++) {
        const char *p[1] = {cand};
        PGresult *r;
        const char *state;
        if (i == 1)
            snprintf(cand, sizeof(cand), "%.190s", name);
        else
            snprintf(cand, sizeof(cand), "%.190s_%d", name, i);
        r = PQexecParams(w->pg, "SELECT pg_replication_origin_create($1) "
                         "WHERE pg_replication_origin_oid($1) IS NULL", 1,
                         NULL, p, NULL, NULL, 0);
        state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (optional && state && !strcmp(state, "42501")) {
            /* not configured explicitly and not allowed: plain writes;
             * a risk only when a mapping reads a written table back */
            if (writes_read_back(w))
                CDC_WARN(FAC, "no privilege for replication origins: writes "
                         "are not marked, and a PostgreSQL source reading "
                         "the tables this pipeline writes (a mapping of the "
                         "loaded files reads them) would capture them again "
                         "(set postgres_sink.origin and grant it for two-way "
                         "sync, docs/TWO-WAY.md)");
            else
                CDC_DEBUG(FAC, "no privilege for replication origins: "
                          "writes are not marked (no loaded mapping reads "
                          "the written tables back)");
            PQclear(r);
            return 0;
        }
        if (PQresultStatus(r) != PGRES_TUPLES_OK &&
            !(state && !strcmp(state, "23505"))) { /* created meanwhile */
            pgerr(w, r, "creating replication origin", err);
            cdc_err_hint(err, "the sink marks its writes with a replication "
                         "origin (loop prevention): run it as a superuser or "
                         "GRANT EXECUTE ON FUNCTION pg_replication_origin_"
                         "create(text), pg_replication_origin_oid(text), "
                         "pg_replication_origin_session_setup(text) TO the "
                         "sink's user; or set postgres_sink.origin='' to "
                         "write without origin (no two-way sync)");
            PQclear(r);
            return -1;
        }
        PQclear(r);
        r = PQexecParams(w->pg, "SELECT pg_replication_origin_session_setup"
                         "($1)", 1, NULL, p, NULL, NULL, 0);
        state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            PQclear(r);
            w->origin = cdc_xstrdup(cand);
            CDC_INFO(FAC, "writing with replication origin %s", cand);
            return 0;
        }
        if (state && !strcmp(state, "55006")) { /* active elsewhere */
            PQclear(r);
            continue;
        }
        pgerr(w, r, "setting up replication origin", err);
        cdc_err_hint(err, "GRANT EXECUTE ON FUNCTION pg_replication_origin_"
                     "session_setup(text) TO the sink's user, or set "
                     "postgres_sink.origin=''");
        PQclear(r);
        return -1;
    }
    cdc_err_set(err, CDC_EXIT_TEMPFAIL, CDC_ERR_F_RETRIABLE, "postgres sink: "
                "replication origins %s .. %s_16 are all in use", name, name);
    cdc_err_hint(err, "another 16 processes of pipeline '%s' are running",
                 w->pipeline);
    return -1;
}

static void forget_txn(pgw_t *w);

/*
 * The session again after a lost connection (wide_batch.h): the same
 * conninfo, synchronous_commit, and the replication origin this sink took
 * (its old session is gone with the connection).  Statements and staging
 * tables are prepared again by the next batch.
 */
static int pgw_reconnect(void *ctx, cdc_err_t *err)
{
    pgw_t *w = ctx;
    PGresult *r;

    forget_txn(w);
    PQreset(w->pg);
    if (PQstatus(w->pg) != CONNECTION_OK) {
        char *red = cdc_conf_redact(w->dsn);
        char msg[300];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(w->pg));
        chomp(msg);
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                    "postgres sink: cannot connect to %s: %s", red, msg);
        free(red);
        return -1;
    }
    r = PQexec(w->pg, "SET synchronous_commit = on");
    PQclear(r);
    if (w->origin) {
        const char *p[1] = {w->origin};
        const char *state;
        r = PQexecParams(w->pg, "SELECT pg_replication_origin_session_setup"
                         "($1)", 1, NULL, p, NULL, NULL, 0);
        state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            pgerr(w, r, "setting up replication origin again", err);
            if (state && !strcmp(state, "55006")) {
                /* the old backend has not gone yet: try again later */
                err->code = CDC_EXIT_UNAVAILABLE;
                err->flags |= CDC_ERR_F_RETRIABLE;
            }
            PQclear(r);
            return -1;
        }
        PQclear(r);
    }
    return 0;
}

static cdc_sink_t *pgw_create(const cdc_conf_t *conf, cdc_err_t *err)
{
    pgw_t *w;
    const char *dsn = cdc_conf_get(conf, "postgres_sink.dsn", NULL);
    const char *files = cdc_conf_get(conf, "mapping.files", NULL);
    const char *pipe = cdc_conf_pipeline(conf);
    const char *app = cdc_conf_get(conf, "application_id", pipe);
    const char *offt = cdc_conf_get(conf, "postgres_sink.offsets_table",
                                    "autoglm_cdc_offsets");
    const char *dlt;
    int ct;

    if (!dsn || !*dsn) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "the postgres sink needs "
                    "postgres_sink.dsn");
        cdc_err_hint(err, "-X postgres_sink.dsn='host=... dbname=...' (libpq "
                     "conninfo or URI of the target database)");
        return NULL;
    }
    w = cdc_xcalloc(1, sizeof(*w));
    w->base.ops = &cdc_sink_postgres_ops;
    cdc_wide_ops_init(&w->ops);
    if (cdc_dl_conf(conf, &w->b.dead_letter, &dlt, err) ||
        cdc_conf_get_int(conf, "postgres_sink.batch_rows", 20000,
                         &w->b.batch_rows, err) ||
        cdc_conf_get_int(conf, "postgres_sink.flush_ms", 200, &w->b.flush_ms,
                         err) ||
        cdc_conf_get_bool(conf, "postgres_sink.create_tables", 1, &ct, err) ||
        cdc_conf_get_int(conf, "postgres_sink.fillfactor", 80, &w->fillfactor,
                         err) ||
        cdc_conf_get_int(conf, "postgres_sink.reconnect_timeout_ms", 300000,
                         &w->reconnect_timeout_ms, err))
        goto fail;
    w->create_tables = ct;
    if (cdc_wide_purge_conf(&w->purge, conf, "postgres_sink", err))
        goto fail;
    w->purge.side = side_tables;
    if (w->fillfactor < 10 || w->fillfactor > 100) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "postgres_sink.fillfactor: %"
                    PRId64 " is outside 10..100", w->fillfactor);
        cdc_err_hint(err, "a percentage of each page filled by inserts; 80 "
                     "leaves room for updates in place (HOT)");
        goto fail;
    }
    {
        const char *sv = cdc_conf_get(conf, "postgres_sink.same_value", "stamp");
        if (strcmp(sv, "stamp") && strcmp(sv, "skip")) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "postgres_sink.same_value: "
                        "unknown value \"%s\"", sv);
            cdc_err_hint(err, "stamp (an equal value with a higher rank "
                         "updates the provenance) or skip (no write when the "
                         "target already holds the value; two-way setups)");
            goto fail;
        }
        w->same_skip = !strcmp(sv, "skip");
    }
    w->map = cdc_map_load(files, err);
    if (!w->map)
        goto fail;
    w->map->limits = CDC_MAP_LIM_NUL; /* text and jsonb hold no NUL */
    {
        uint32_t nf = 0;
        w->rmode = cdc_xcalloc(w->map->ntargets + 1, 1);
        w->rbase = cdc_xcalloc(w->map->ntargets + 1, sizeof(uint32_t));
        for (uint32_t i = 0; i < w->map->ntargets; i++) {
            w->rbase[i] = nf;
            nf += w->map->targets[i].nfields;
        }
        w->rbytes = cdc_xcalloc(nf + 1, sizeof(int));
        for (uint32_t i = 0; i < w->map->ntargets; i++)
            for (uint32_t f = 0; f < w->map->targets[i].nfields; f++)
                w->rbytes[w->rbase[i] + f] =
                    cdc_pgrank_bytes(&w->map->targets[i].fields[f]);
    }
    w->pipeline = cdc_xstrdup(pipe);
    w->source = cdc_xstrdup(app);
    {
        int used = 0;
        for (uint32_t i = 0; i < w->map->nmappings; i++)
            used |= !strcmp(w->map->mappings[i].source->id, w->source);
        if (!used)
            CDC_WARN(FAC, "no mapping reads source '%s' (application_id): "
                     "this pipeline will write nothing", w->source);
    }
    w->dsn = cdc_xstrdup(dsn);
    w->pg = PQconnectdb(dsn);
    cdc_pg_log_notices(w->pg, FAC);
    if (PQstatus(w->pg) != CONNECTION_OK) {
        char *red = cdc_conf_redact(dsn);
        char msg[300];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(w->pg));
        chomp(msg);
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                    "postgres sink: cannot connect to %s: %s", red, msg);
        cdc_err_hint(err, "check postgres_sink.dsn and that the server is up");
        free(red);
        goto fail;
    }
    {
        PGresult *r = PQexec(w->pg, "SET synchronous_commit = on");
        PQclear(r);
    }
    w->offsets_q = qname(w, offt);
    w->dl_q = qname(w, dlt);
    {
        char def[200];
        const char *on;
        snprintf(def, sizeof(def), "autoglm_cdc_%s", pipe);
        on = cdc_conf_get(conf, "postgres_sink.origin", NULL);
        if ((!on || *on) && setup_origin(w, on ? on : def, !on, err))
            goto fail;
    }
    w->votes = (cdc_pgv_t){.pg = w->pg, .map = w->map, .pgerr = pgerr_cb,
                           .ctx = w, .rmode = w->rmode};
    if (create_tables(w, err) || read_offset(w, 0, err))
        goto fail;
    w->b.reconnect = pgw_reconnect;
    w->b.reconnect_timeout_ms = w->reconnect_timeout_ms;
    w->b.reconnect_key = "postgres_sink.reconnect_timeout_ms";
    return &w->base;
fail:
    cdc_sink_postgres_ops.destroy(&w->base);
    return NULL;
}

/* ---- merging ------------------------------------------------------------- */

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void merge_reset(pgw_t *w)
{
    for (size_t i = 0; i < w->nrows; i++) {
        free(w->rows[i].keytext);
        free(w->rows[i].vop);
        free(w->rows[i].val);
    }
    w->nrows = 0;
    if (w->hcap)
        memset(w->hash, 0, w->hcap * sizeof(size_t));
}

static void rehash(pgw_t *w)
{
    size_t ncap = w->hcap ? w->hcap * 2 : 4096;
    free(w->hash);
    w->hash = cdc_xcalloc(ncap, sizeof(size_t));
    w->hcap = ncap;
    for (size_t i = 0; i < w->nrows; i++) {
        size_t h = fnv(w->rows[i].keytext) & (ncap - 1);
        while (w->hash[h])
            h = (h + 1) & (ncap - 1);
        w->hash[h] = i + 1;
    }
}

static void merge_op(pgw_t *w, const cdc_wide_op_t *op)
{
    cdc_buf_t *kt = &w->tmp;
    const cdc_map_target_t *t = op->target;
    mrow_t *r = NULL;
    size_t h;
    int own = 0;

    /* per-source fields go to <table>_votes (cdc_pgv_apply) */
    for (uint32_t i = 0; i < op->nvals && !own; i++)
        own = !t->fields[op->vals[i].field].per_source;
    if (!own)
        return;
    cdc_buf_reset(kt);
    cdc_buf_printf(kt, "%p", (const void *)t);
    for (uint32_t i = 0; i < op->nkey; i++) {
        cdc_buf_putc(kt, '\x1f');
        cdc_buf_puts(kt, op->key[i]);
    }
    if (w->hcap) {
        h = fnv(kt->p) & (w->hcap - 1);
        while (w->hash[h]) {
            if (!strcmp(w->rows[w->hash[h] - 1].keytext, kt->p)) {
                r = &w->rows[w->hash[h] - 1];
                break;
            }
            h = (h + 1) & (w->hcap - 1);
        }
    }
    if (!r) {
        if (w->nrows == w->caprows) {
            w->caprows = w->caprows ? w->caprows * 2 : 1024;
            w->rows = cdc_xrealloc(w->rows, w->caprows * sizeof(*w->rows));
        }
        r = &w->rows[w->nrows++];
        r->target = t;
        r->key = op->key;
        r->keytext = cdc_xstrdup(kt->p);
        r->vop = cdc_xcalloc(t->nfields, sizeof(*r->vop));
        r->val = cdc_xcalloc(t->nfields, sizeof(*r->val));
        if (w->nrows * 2 > w->hcap)
            rehash(w);
        else {
            h = fnv(r->keytext) & (w->hcap - 1);
            while (w->hash[h])
                h = (h + 1) & (w->hcap - 1);
            w->hash[h] = w->nrows;
        }
    }
    for (uint32_t i = 0; i < op->nvals; i++) {
        const cdc_wide_val_t *v = &op->vals[i];
        if (t->fields[v->field].per_source)
            continue;
        if (!r->val[v->field] || strcmp(v->rank, r->val[v->field]->rank) > 0) {
            r->val[v->field] = v;
            r->vop[v->field] = op;
        }
    }
}

/* ---- statements ------------------------------------------------------------ */

static const char *prepare(pgw_t *w, const char *sig, const char *sql,
                           int nparams, cdc_err_t *err)
{
    PGresult *r;
    for (int i = 0; i < w->nstmts; i++)
        if (!strcmp(w->stmts[i].sig, sig))
            return w->stmts[i].name;
    w->stmts = cdc_xrealloc(w->stmts, (size_t)(w->nstmts + 1) *
                                          sizeof(*w->stmts));
    stmt_t *s = &w->stmts[w->nstmts];
    snprintf(s->name, sizeof(s->name), "agw%d", w->nstmts);
    r = PQprepare(w->pg, s->name, sql, nparams, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        pgerr(w, r, "preparing a statement", err);
        CDC_DEBUG(FAC, "statement: %s", sql);
        PQclear(r);
        return NULL;
    }
    PQclear(r);
    s->sig = cdc_xstrdup(sig);
    w->nstmts++;
    return s->name;
}

static char *qlit(pgw_t *w, const char *s)
{
    char *q = PQescapeLiteral(w->pg, s, strlen(s));
    char *r = cdc_xstrdup(q ? q : "''");
    PQfreemem(q);
    return r;
}

/* The path literal of field f's rank in _provenance: '{"f",r}'. */
static char *rank_path(pgw_t *w, const char *field)
{
    char buf[160];
    snprintf(buf, sizeof(buf), "{\"%s\",r}", field); /* names: [A-Za-z0-9_-] */
    return qlit(w, buf);
}

/* "incoming wins over the stored rank" for field f; an absent stored
 * rank is '' (every rank is greater) */
static void win_cond(pgw_t *w, cdc_buf_t *b, const char *field,
                     const char *incoming)
{
    char *path = rank_path(w, field);
    cdc_buf_printf(b, "(%s > COALESCE(t._provenance #>> %s, '') COLLATE \"C\")",
                   incoming, path);
    free(path);
}

/* the incoming rank of field f in an upsert */
static void excluded_rank(pgw_t *w, const char *field, char *out, size_t n)
{
    char *path = rank_path(w, field);
    snprintf(out, n, "(EXCLUDED._provenance #>> %s)", path);
    free(path);
}

static void win_cond_t(pgw_t *w, cdc_buf_t *b, const cdc_map_target_t *t,
                       const char *field, const char *incoming)
{
    (void)t;
    win_cond(w, b, field, incoming);
}

/* "incoming wins" in an upsert; with same_value=skip also "and the value
 * differs", so an equal value writes nothing (cycles die out) */
static void upsert_win(pgw_t *w, cdc_buf_t *b, const cdc_map_target_t *t,
                       const char *field, const char *incoming)
{
    win_cond(w, b, field, incoming);
    if (w->same_skip) {
        char *q = qident(w, field);
        cdc_buf_printf(b, " AND (EXCLUDED.%s IS DISTINCT FROM t.%s", q, q);
        if (t->tombstones) {
            /* a deletion differs from a NULL value (and back) */
            char buf[160], *path;
            snprintf(buf, sizeof(buf), "{\"%s\",d}", field);
            path = qlit(w, buf);
            cdc_buf_printf(b, " OR (EXCLUDED._provenance #> %s) IS DISTINCT "
                           "FROM (t._provenance #> %s)", path, path);
            free(path);
        }
        cdc_buf_puts(b, ")");
        free(q);
    }
}

/* the ON CONFLICT ... DO UPDATE part of an upsert of fields fl into t
 * (alias t, incoming EXCLUDED with its _provenance); exact: the plain
 * rank comparison even with same_value=skip (merging tombstones) */
static void conflict_update(pgw_t *w, cdc_buf_t *b, const cdc_map_target_t *t,
                            const uint32_t *fl, int nf, int exact)
{
    void (*cond)(pgw_t *, cdc_buf_t *, const cdc_map_target_t *,
                 const char *, const char *) = exact ? win_cond_t : upsert_win;

    cdc_buf_puts(b, ") DO UPDATE SET ");
    for (int i = 0; i < nf; i++) {
        char *q = qident(w, t->fields[fl[i]].name);
        char inc[200];
        excluded_rank(w, t->fields[fl[i]].name, inc, sizeof(inc));
        cdc_buf_printf(b, "%s = CASE WHEN ", q);
        cond(w, b, t, t->fields[fl[i]].name, inc);
        cdc_buf_printf(b, " THEN EXCLUDED.%s ELSE t.%s END, ", q, q);
        free(q);
    }
    /* jsonb_build_object takes at most 100 arguments: chunks of 40 */
    cdc_buf_puts(b, "_provenance = t._provenance || jsonb_strip_nulls("
                    "jsonb_build_object()");
    for (int i = 0; i < nf; i++) {
        char *lit = qlit(w, t->fields[fl[i]].name);
        char inc[200];
        excluded_rank(w, t->fields[fl[i]].name, inc, sizeof(inc));
        if (i % 40 == 0)
            cdc_buf_puts(b, " || jsonb_build_object(");
        cdc_buf_printf(b, "%s%s, CASE WHEN ", i % 40 ? ", " : "", lit);
        cond(w, b, t, t->fields[fl[i]].name, inc);
        cdc_buf_printf(b, " THEN EXCLUDED._provenance->%s END", lit);
        if (i % 40 == 39 || i == nf - 1)
            cdc_buf_puts(b, ")");
        free(lit);
    }
    cdc_buf_puts(b, ") WHERE ");
    for (int i = 0; i < nf; i++) {
        char inc[200];
        excluded_rank(w, t->fields[fl[i]].name, inc, sizeof(inc));
        if (i)
            cdc_buf_puts(b, " OR ");
        cond(w, b, t, t->fields[fl[i]].name, inc);
    }
}


/* append one COPY text-format field */
static void copy_put(cdc_buf_t *c, const char *s, size_t len, int isnull,
                     int last)
{
    if (isnull)
        cdc_buf_puts(c, "\\N");
    else {
        /* runs of plain bytes are copied whole; room for the worst case
         * (every byte escaped) is made once */
        size_t i = 0, run;
        if (c->len + 2 * len + 2 > c->cap)
            cdc_buf_grow(c, 2 * len + 2);
        while (i < len) {
            for (run = i; run < len; run++) {
                unsigned char ch = (unsigned char)s[run];
                if (ch <= '\r' || ch == '\\')
                    if (ch == '\\' || ch == '\t' || ch == '\n' || ch == '\r')
                        break;
            }
            memcpy(c->p + c->len, s + i, run - i);
            c->len += run - i;
            if (run == len)
                break;
            c->p[c->len++] = '\\';
            c->p[c->len++] = s[run] == '\\' ? '\\' : s[run] == '\t' ? 't'
                           : s[run] == '\n' ? 'n' : 'r';
            i = run + 1;
        }
    }
    cdc_buf_putc(c, last ? '\n' : '\t');
}

static int copy_rows(pgw_t *w, const char *stage, const cdc_buf_t *data,
                     cdc_err_t *err)
{
    PGresult *r;
    char q[96];

    snprintf(q, sizeof(q), "COPY %s FROM STDIN", stage);
    r = PQexec(w->pg, q);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        pgerr(w, r, "staging rows (COPY)", err);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    for (size_t off = 0; off < data->len;) {
        size_t n = data->len - off > (1 << 20) ? (1 << 20) : data->len - off;
        if (PQputCopyData(w->pg, data->p + off, (int)n) != 1) {
            pgerr(w, NULL, "staging rows (COPY data)", err);
            return -1;
        }
        off += n;
    }
    if (PQputCopyEnd(w->pg, NULL) != 1) {
        pgerr(w, NULL, "staging rows (COPY end)", err);
        return -1;
    }
    r = PQgetResult(w->pg);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        pgerr(w, r, "staging rows (COPY)", err);
        PQclear(r);
        while ((r = PQgetResult(w->pg)))
            PQclear(r);
        return -1;
    }
    PQclear(r);
    while ((r = PQgetResult(w->pg)))
        PQclear(r);
    return 0;
}

/* Upsert every merged row of target t whose field set equals fl.  The
 * rows are staged with COPY in a temporary table of this shape (created
 * once per session, emptied at commit), then one prepared INSERT ...
 * SELECT ... ON CONFLICT applies them; each row's provenance object is
 * parsed once. */
static int exec_group(pgw_t *w, const cdc_map_target_t *t, const uint32_t *fl,
                      int nf, mrow_t **rows, size_t nrows, cdc_err_t *err)
{
    cdc_buf_t sig = CDC_BUF_INIT, *b = &w->sql, data = CDC_BUF_INIT;
    char *qt = qtable(w, t);
    char stage[32];
    const char *name;
    int rc = -1, idx, rm = rmode(w, t);
    PGresult *r;

    cdc_buf_printf(&sig, "U%s", t->name);
    for (int i = 0; i < nf; i++)
        cdc_buf_printf(&sig, ",%u", fl[i]);
    idx = -1;
    for (int i = 0; i < w->nstmts; i++)
        if (!strcmp(w->stmts[i].sig, sig.p))
            idx = i;
    if (idx >= 0)
        snprintf(stage, sizeof(stage), "%s", w->stmts[idx].stage);
    else
        snprintf(stage, sizeof(stage), "agw_stage%u", w->stage_seq++);
    if (idx < 0) {
        /* a new shape: its staging table first */
        cdc_buf_reset(b);
        cdc_buf_printf(b, "CREATE TEMP TABLE IF NOT EXISTS %s (", stage);
        for (uint32_t k = 0; k < t->nkey; k++)
            cdc_buf_printf(b, "k%u text, ", k);
        for (int i = 0; i < nf; i++)
            cdc_buf_printf(b, "v%d text, ", i);
        if (rm)
            for (int i = 0; i < nf; i++)
                cdc_buf_printf(b, "r%d bytea, ", i);
        cdc_buf_puts(b, rm ? "p text) ON COMMIT DELETE ROWS"
                           : "p text) ON COMMIT DELETE ROWS");
        if (exec_simple(w, b->p, "creating a staging table", err))
            goto out;
    }
    cdc_buf_reset(b);
    cdc_buf_printf(b, "INSERT INTO %s AS t (", qt);
    for (uint32_t k = 0; k < t->nkey; k++) {
        char *q = qident(w, t->fields[t->key[k]].name);
        cdc_buf_printf(b, "%s, ", q);
        free(q);
    }
    for (int i = 0; i < nf; i++) {
        char *q = qident(w, t->fields[fl[i]].name);
        cdc_buf_printf(b, "%s, ", q);
        free(q);
    }
    if (rm) {
        for (int i = 0; i < nf; i++) {
            char *q = qrank(w, t->fields[fl[i]].name);
            cdc_buf_printf(b, "%s, ", q);
            free(q);
        }
        b->len -= 2;
        cdc_buf_puts(b, ") SELECT ");
    } else
        cdc_buf_puts(b, "_provenance) SELECT ");
    for (uint32_t k = 0; k < t->nkey; k++)
        cdc_buf_printf(b, "u.k%u::%s, ", k, casttype(&t->fields[t->key[k]]));
    for (int i = 0; i < nf; i++)
        cdc_buf_printf(b, "u.v%d::%s, ", i, casttype(&t->fields[fl[i]]));
    if (rm) {
        for (int i = 0; i < nf; i++)
            cdc_buf_printf(b, "u.r%d, ", i);
        b->len -= 2;
        b->p[b->len] = '\0';
        cdc_buf_printf(b, " FROM %s u ON CONFLICT (", stage);
    } else
        cdc_buf_printf(b, "u.p::jsonb FROM %s u ON CONFLICT (", stage);
    for (uint32_t k = 0; k < t->nkey; k++) {
        char *q = qident(w, t->fields[t->key[k]].name);
        cdc_buf_printf(b, "%s%s", k ? ", " : "", q);
        free(q);
    }
    if (!nf)
        cdc_buf_puts(b, ") DO NOTHING");
    else if (rm)
        rank_conflict_update(w, b, t, fl, nf, 0);
    else
        conflict_update(w, b, t, fl, nf, 0);
    name = prepare(w, sig.p, b->p, 0, err);
    if (!name)
        goto out;
    if (idx < 0)
        snprintf(w->stmts[w->nstmts - 1].stage, sizeof(stage), "%s", stage);
    else if (w->stmts[idx].used) {
        /* second group of this shape in one transaction */
        char q[64];
        snprintf(q, sizeof(q), "DELETE FROM %s", stage);
        if (exec_simple(w, q, "emptying a staging table", err))
            goto out;
    }
    for (size_t n = 0; n < nrows; n++) {
        const mrow_t *row = rows[n];
        for (uint32_t k = 0; k < t->nkey; k++)
            copy_put(&data, row->key[k], strlen(row->key[k]), 0, 0);
        for (int i = 0; i < nf; i++) {
            const cdc_wide_val_t *v = row->val[fl[i]];
            copy_put(&data, v->s, v->len, v->isnull, 0);
        }
        if (rm) {
            for (int i = 0; i < nf; i++) {
                const cdc_wide_op_t *op = row->vop[fl[i]];
                const cdc_wide_val_t *v = row->val[fl[i]];
                cdc_pgrank_put(&data, v->rank, op->commit_us, v->deleted,
                               op->source, 1);
                cdc_buf_putc(&data, '\t');
            }
            /* p: unused in this form */
            cdc_buf_puts(&data, "\\N\n");
            continue;
        }
        cdc_buf_reset(&w->tmp);
        cdc_buf_putc(&w->tmp, '{');
        for (int i = 0; i < nf; i++) {
            if (i)
                cdc_buf_putc(&w->tmp, ',');
            cdc_json_string(&w->tmp, t->fields[fl[i]].name,
                            strlen(t->fields[fl[i]].name));
            cdc_buf_putc(&w->tmp, ':');
            cdc_wide_prov_json(&w->tmp, row->vop[fl[i]], row->val[fl[i]]);
        }
        cdc_buf_putc(&w->tmp, '}');
        copy_put(&data, w->tmp.p, w->tmp.len, 0, 1);
    }
    if (copy_rows(w, stage, &data, err))
        goto out;
    r = PQexecPrepared(w->pg, name, 0, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        pgerr(w, r, "upserting wide rows", err);
        PQclear(r);
        goto out;
    }
    PQclear(r);
    /* the next group of this shape in the same transaction starts empty */
    rc = 0;
    for (int i = 0; i < w->nstmts; i++)
        if (!strcmp(w->stmts[i].sig, sig.p))
            w->stmts[i].used = 1;
out:
    cdc_buf_free(&data);
    free(qt);
    cdc_buf_free(&sig);
    return rc;
}

static int sig_cmp_fields(const mrow_t *a, const mrow_t *b)
{
    if (a->target != b->target)
        return a->target < b->target ? -1 : 1;
    for (uint32_t f = 0; f < a->target->nfields; f++) {
        int x = a->val[f] != NULL, y = b->val[f] != NULL;
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

static int row_cmp(const void *pa, const void *pb)
{
    const mrow_t *a = *(mrow_t *const *)pa, *b = *(mrow_t *const *)pb;
    int c = sig_cmp_fields(a, b);
    if (c)
        return c;
    /* key order: same lock order in every pipeline, fewer deadlocks */
    return strcmp(a->keytext, b->keytext);
}

static int flush_merged(pgw_t *w, cdc_err_t *err)
{
    mrow_t **v;
    size_t i = 0;
    int rc = 0;

    if (!w->nrows)
        return 0;
    v = cdc_xcalloc(w->nrows, sizeof(*v));
    for (size_t k = 0; k < w->nrows; k++)
        v[k] = &w->rows[k];
    qsort(v, w->nrows, sizeof(*v), row_cmp);
    while (i < w->nrows && !rc) {
        size_t j = i + 1;
        const cdc_map_target_t *t = v[i]->target;
        uint32_t *fl = cdc_xcalloc(t->nfields + 1, sizeof(uint32_t));
        int nf = 0;
        while (j < w->nrows && !sig_cmp_fields(v[i], v[j]))
            j++;
        for (uint32_t f = 0; f < t->nfields; f++)
            if (v[i]->val[f])
                fl[nf++] = f;
        rc = exec_group(w, t, fl, nf, v + i, j - i, err);
        free(fl);
        i = j;
    }
    free(v);
    merge_reset(w);
    return rc;
}

/* ---- tombstones (targets with on_delete: delete) -------------------------- */

/* "the row t is dead": it has provenance and every entry is a deletion */
static void dead_cond(pgw_t *w, cdc_buf_t *b, const cdc_map_target_t *t,
                      const char *alias)
{
    char *fn;
    int n = 0;

    if (!rmode(w, t)) {
        cdc_buf_printf(b, "(%s._provenance <> '{}'::jsonb AND NOT EXISTS "
                       "(SELECT 1 FROM jsonb_each(%s._provenance) e WHERE NOT "
                       "(e.value ? 'd')))", alias, alias);
        return;
    }
    /* some rank, and every rank a deletion */
    fn = qfn(w, t, "autoglm_cdc_deleted");
    cdc_buf_puts(b, "((false");
    for (uint32_t f = 0; f < t->nfields; f++) {
        char *r;
        if (t->fields[f].is_key)
            continue;
        r = qrank(w, t->fields[f].name);
        cdc_buf_printf(b, " OR %s.%s IS NOT NULL", alias, r);
        free(r);
    }
    cdc_buf_puts(b, ")");
    for (uint32_t f = 0; f < t->nfields; f++) {
        char *r;
        if (t->fields[f].is_key)
            continue;
        r = qrank(w, t->fields[f].name);
        cdc_buf_printf(b, " AND (%s.%s IS NULL OR %s(%s.%s))", alias, r, fn,
                       alias, r);
        free(r);
        n++;
    }
    cdc_buf_puts(b, ")");
    free(fn);
    (void)n;
}

/* one text[] literal per key column with the keys of t's operations in
 * this batch; returns how many keys */
static size_t batch_keys(pgw_t *w, const cdc_map_target_t *t, cdc_buf_t *arr)
{
    size_t n = 0;
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_reset(&arr[k]);
        cdc_buf_putc(&arr[k], '{');
    }
    for (uint32_t i = 0; i < w->ops.n; i++) {
        const cdc_wide_op_t *op = &w->ops.ops[i];
        if (op->target != t || (op->kind != CDC_WIDE_UPSERT &&
                                op->kind != CDC_WIDE_DELETE))
            continue;
        for (uint32_t k = 0; k < t->nkey; k++) {
            if (n)
                cdc_buf_putc(&arr[k], ',');
            cdc_buf_putc(&arr[k], '"');
            for (const char *c = op->key[k]; *c; c++) {
                if (*c == '"' || *c == '\\')
                    cdc_buf_putc(&arr[k], '\\');
                cdc_buf_putc(&arr[k], *c);
            }
            cdc_buf_putc(&arr[k], '"');
        }
        n++;
    }
    for (uint32_t k = 0; k < t->nkey; k++)
        cdc_buf_putc(&arr[k], '}');
    return n;
}

/* "WITH u AS (SELECT DISTINCT * FROM unnest($1::text[], ..) u(k0, ..)), " */
static void keys_cte(cdc_buf_t *b, const cdc_map_target_t *t)
{
    cdc_buf_puts(b, "WITH u AS (SELECT DISTINCT * FROM unnest(");
    for (uint32_t k = 0; k < t->nkey; k++)
        cdc_buf_printf(b, "%s$%u::text[]", k ? ", " : "", k + 1);
    cdc_buf_puts(b, ") AS u(");
    for (uint32_t k = 0; k < t->nkey; k++)
        cdc_buf_printf(b, "%sk%u", k ? ", " : "", k);
    cdc_buf_puts(b, ")), ");
}

/* alias.key0 = u.k0::type AND ... */
static void keys_match(pgw_t *w, cdc_buf_t *b, const cdc_map_target_t *t,
                       const char *alias)
{
    for (uint32_t k = 0; k < t->nkey; k++) {
        char *q = qident(w, t->fields[t->key[k]].name);
        cdc_buf_printf(b, "%s%s.%s = u.k%u::%s", k ? " AND " : "", alias, q, k,
                       casttype(&t->fields[t->key[k]]));
        free(q);
    }
}

static void key_list(pgw_t *w, cdc_buf_t *b, const cdc_map_target_t *t,
                     const char *alias)
{
    for (uint32_t k = 0; k < t->nkey; k++) {
        char *q = qident(w, t->fields[t->key[k]].name);
        cdc_buf_printf(b, "%s%s%s%s", k ? ", " : "", alias ? alias : "",
                       alias ? "." : "", q);
        free(q);
    }
}

/*
 * Before the batch: the tombstones of its keys come back as row shells
 * (every field NULL, the tombstone's provenance) so that the upserts
 * compare against the delete's ranks.  Should a live row exist as well
 * (two pipelines racing), the shell is merged into it field by field by
 * the same max rule.  After the batch: rows of its keys that are dead
 * move to the tombstones table (merged with one already there).
 */
static int tomb_step(pgw_t *w, const cdc_map_target_t *t, int sweep,
                     cdc_err_t *err)
{
    cdc_buf_t sig = CDC_BUF_INIT, *b = &w->sql;
    cdc_buf_t *arr = cdc_xcalloc(t->nkey, sizeof(cdc_buf_t));
    const char **pv = cdc_xcalloc(t->nkey, sizeof(char *));
    char *qt = qtable(w, t), *qb = qtomb(w, t);
    const char *name;
    int rc = -1;

    if (!batch_keys(w, t, arr)) {
        rc = 0;
        goto out;
    }
    for (uint32_t k = 0; k < t->nkey; k++)
        pv[k] = arr[k].p;
    /* first lock the keys' rows: a direct DELETE in flight (two-way: its
     * trigger inserts the key's tombstone) finishes before the revive
     * statement takes its snapshot, so that statement sees the tombstone
     * instead of inserting a fresh row next to it */
    if (!sweep) {
        PGresult *r;
        cdc_buf_printf(&sig, "K%s", t->name);
        cdc_buf_reset(b);
        keys_cte(b, t);
        cdc_buf_printf(b, "l AS (SELECT 1 FROM %s AS t, u WHERE ", qt);
        keys_match(w, b, t, "t");
        cdc_buf_puts(b, " ORDER BY ");   /* one lock order everywhere */
        key_list(w, b, t, "t");
        cdc_buf_puts(b, " FOR UPDATE OF t) SELECT count(*) FROM l");
        if (!(name = prepare(w, sig.p, b->p, (int)t->nkey, err)))
            goto out;
        r = PQexecPrepared(w->pg, name, (int)t->nkey, pv, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            pgerr(w, r, "locking the batch's rows", err);
            PQclear(r);
            goto out;
        }
        PQclear(r);
        cdc_buf_reset(&sig);
    }
    cdc_buf_printf(&sig, "%c%s", sweep ? 'S' : 'R', t->name);
    cdc_buf_reset(b);
    keys_cte(b, t);
    if (sweep) {
        cdc_buf_printf(b, "d AS (DELETE FROM %s AS t USING u WHERE ", qt);
        keys_match(w, b, t, "t");
        cdc_buf_puts(b, " AND ");
        dead_cond(w, b, t, "t");
        cdc_buf_puts(b, " RETURNING ");
        key_list(w, b, t, "t");
        if (rmode(w, t)) {
            cdc_buf_puts(b, ", ");
            rank_prov_obj(w, b, t, "t");
            cdc_buf_printf(b, " AS _provenance) INSERT INTO %s AS tb (", qb);
        } else
            cdc_buf_printf(b, ", t._provenance) INSERT INTO %s AS tb (", qb);
        key_list(w, b, t, NULL);
        cdc_buf_puts(b, ", _provenance) SELECT * FROM d ON CONFLICT (");
        key_list(w, b, t, NULL);
        /* per field the higher rank (both are all deletions) */
        cdc_buf_puts(b, ") DO UPDATE SET _provenance = (SELECT "
                        "jsonb_object_agg(x.k, x.v) FROM (SELECT DISTINCT ON "
                        "(a.k) a.k, a.v FROM (SELECT * FROM jsonb_each("
                        "tb._provenance) UNION ALL SELECT * FROM jsonb_each("
                        "EXCLUDED._provenance)) a(k, v) ORDER BY a.k, "
                        "a.v->>'r' COLLATE \"C\" DESC) x)");
    } else {
        uint32_t *fl = cdc_xcalloc(t->nfields + 1, sizeof(uint32_t));
        int nf = 0;
        for (uint32_t f = 0; f < t->nfields; f++)
            if (!t->fields[f].is_key)
                fl[nf++] = f;
        cdc_buf_printf(b, "d AS (DELETE FROM %s AS tb USING u WHERE ", qb);
        keys_match(w, b, t, "tb");
        cdc_buf_puts(b, " RETURNING tb.*) INSERT INTO ");
        cdc_buf_printf(b, "%s AS t (", qt);
        key_list(w, b, t, NULL);
        for (int i = 0; i < nf; i++) {
            char *q = qident(w, t->fields[fl[i]].name);
            cdc_buf_printf(b, ", %s", q);
            free(q);
        }
        if (rmode(w, t)) {
            /* the tombstone's entries become the shell's rank columns */
            char *fn = qfn(w, t, "autoglm_cdc_rank");
            for (int i = 0; i < nf; i++) {
                char *q = qrank(w, t->fields[fl[i]].name);
                cdc_buf_printf(b, ", %s", q);
                free(q);
            }
            cdc_buf_puts(b, ") SELECT ");
            key_list(w, b, t, "d");
            for (int i = 0; i < nf; i++)
                cdc_buf_printf(b, ", NULL::%s", casttype(&t->fields[fl[i]]));
            for (int i = 0; i < nf; i++) {
                char *lit = qlit_(w, t->fields[fl[i]].name);
                cdc_buf_printf(b, ", %s(d._provenance -> %s)", fn, lit);
                free(lit);
            }
            free(fn);
            cdc_buf_puts(b, " FROM d ON CONFLICT (");
        } else {
            cdc_buf_puts(b, ", _provenance) SELECT ");
            key_list(w, b, t, "d");
            for (int i = 0; i < nf; i++)
                cdc_buf_printf(b, ", NULL::%s", casttype(&t->fields[fl[i]]));
            cdc_buf_puts(b, ", d._provenance FROM d ON CONFLICT (");
        }
        key_list(w, b, t, NULL);
        if (nf && rmode(w, t))
            rank_conflict_update(w, b, t, fl, nf, 1);
        else if (nf)
            conflict_update(w, b, t, fl, nf, 1);
        else
            cdc_buf_puts(b, ") DO NOTHING");
        free(fl);
    }
    name = prepare(w, sig.p, b->p, (int)t->nkey, err);
    if (!name)
        goto out;
    {
        PGresult *r = PQexecPrepared(w->pg, name, (int)t->nkey, pv, NULL, NULL,
                                     0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            pgerr(w, r, sweep ? "moving dead rows to the tombstones table"
                              : "reviving tombstones of the batch's keys", err);
        else
            rc = 0;
        PQclear(r);
    }
out:
    for (uint32_t k = 0; k < t->nkey; k++)
        cdc_buf_free(&arr[k]);
    free(arr);
    free(pv);
    free(qt);
    free(qb);
    cdc_buf_free(&sig);
    return rc;
}

static int tomb_steps(pgw_t *w, int sweep, cdc_err_t *err)
{
    for (uint32_t i = 0; i < w->map->ntargets; i++)
        if (w->map->targets[i].tombstones &&
            tomb_step(w, &w->map->targets[i], sweep, err))
            return -1;
    return 0;
}

/* ---- tombstone retention (postgres_sink.tombstone_keep) ------------------ */


/* "the newest deletion of tombstone alias is older than $1 (µs)" */
static void old_cond(cdc_buf_t *b, const char *alias)
{
    cdc_buf_printf(b, "(SELECT max((e.value->>'t')::bigint) FROM jsonb_each("
                   "%s._provenance) e) < $1::bigint", alias);
}

/* Delete up to CDC_WIDE_PURGE_ROWS old tombstones of t in one short transaction;
 * the condition is checked again on the row deleted, so a tombstone that
 * a racing pipeline merged with a newer deletion meanwhile stays. */
static int purge_tombs(pgw_t *w, const cdc_map_target_t *t,
                       int64_t cutoff_us, long *n, cdc_err_t *err)
{
    char *qb = qtomb(w, t), cutoff[32];
    const char *p[1] = {cutoff};
    PGresult *r;
    int rc = -1;

    snprintf(cutoff, sizeof(cutoff), "%" PRId64, cutoff_us);
    cdc_buf_reset(&w->sql);
    cdc_buf_printf(&w->sql, "DELETE FROM %s AS tb WHERE tb.ctid = ANY(ARRAY("
                   "SELECT o.ctid FROM %s AS o WHERE ", qb, qb);
    old_cond(&w->sql, "o");
    cdc_buf_printf(&w->sql, " LIMIT %d)) AND ", CDC_WIDE_PURGE_ROWS);
    old_cond(&w->sql, "tb");
    if (exec_simple(w, "BEGIN", "begin", err))
        goto out;
    /* wait briefly for rows a batch of another pipeline holds, not long */
    if (exec_simple(w, "SET LOCAL lock_timeout = '5s'", "lock_timeout", err))
        goto fail;
    r = PQexecParams(w->pg, w->sql.p, 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        pgerr(w, r, "purging old tombstones", err);
        PQclear(r);
        goto fail;
    }
    *n = atol(PQcmdTuples(r));
    PQclear(r);
    rc = exec_simple(w, "COMMIT", "commit", err);
    goto out;
fail:
    if (PQstatus(w->pg) == CONNECTION_OK)
        PQclear(PQexec(w->pg, "ROLLBACK"));
out:
    free(qb);
    return rc;
}

/* targets with side tables whose deleted entries the purge removes */
static int side_tables(const cdc_map_target_t *t)
{
    return t->ngroups || t->aggregates || cdc_pgv_target(t);
}

/* Retention: the tombstones, then each side table's deleted entries
 * (candidates, contributions, votes), each in its own short transaction
 * (docs/MAPPINGS.md, Row deletes, retention).  *n counts tombstones (the
 * caller logs them); side tables are logged here. */
static int purge_target(void *ctx, const cdc_map_target_t *t,
                        int64_t cutoff_us, long *n, cdc_err_t *err)
{
    pgw_t *w = ctx;
    long m;

    *n = 0;
    if (t->tombstones && purge_tombs(w, t, cutoff_us, n, err))
        return -1;
    for (int s = 0; s < 3; s++) {
        static const char *const what[] = {"deleted candidates",
                                           "gone contributions",
                                           "deleted votes"};
        static const char *const tab[] = {"candidates", "contrib", "votes"};
        int rc;
        m = 0;
        if (s == 0 && t->ngroups)
            rc = cdc_pgw_groups_purge(w->pg, t, cutoff_us, &m, err);
        else if (s == 1 && t->aggregates)
            rc = cdc_pgw_agg_purge(w->pg, t, cutoff_us, &m, err);
        else if (s == 2 && cdc_pgv_target(t))
            rc = cdc_pgv_purge(&w->votes, t, cutoff_us, &m, err);
        else
            continue;
        if (rc)
            return -1;
        if (m)
            CDC_INFO(FAC, "target %s: purged %ld %s (%s_%s) older than "
                     "tombstone_keep", t->name, m, what[s], t->table, tab[s]);
        if (m >= CDC_WIDE_PURGE_ROWS)
            w->purge.more = 1;
    }
    return 0;
}

/* The tail of a lookup's UPDATE: the match on the key parameters (after
 * the stride parameters of each value), "some value wins" and, with row
 * deletes, "the row is not dead"; then the statement runs prepared with
 * the values' parameters pv[0..np) and the keys appended. */
static int lookup_finish(pgw_t *w, const cdc_wide_op_t *op, cdc_buf_t *sig,
                         int stride, const char **pv, int np, cdc_err_t *err)
{
    const cdc_map_target_t *t = op->target;
    cdc_buf_t *b = &w->sql;
    int rank = rmode(w, t), rc = -1;
    const char *name;

    cdc_buf_puts(b, " WHERE ");
    for (uint32_t k = 0; k < op->nkey; k++) {
        const cdc_map_field_t *f = &t->fields[op->keyfields[k]];
        char *q = qident(w, f->name);
        cdc_buf_printf(b, "t.%s = $%u::%s AND ", q,
                       (unsigned)stride * op->nvals + k + 1, casttype(f));
        free(q);
    }
    cdc_buf_puts(b, "(");
    for (uint32_t i = 0; i < op->nvals; i++) {
        char inc[40];
        snprintf(inc, sizeof(inc), rank ? "$%d::bytea" : "$%d::text",
                 stride * (int)i + stride);
        if (i)
            cdc_buf_puts(b, " OR ");
        if (rank)
            rwin(w, b, t, op->vals[i].field, inc);
        else
            win_cond(w, b, t->fields[op->vals[i].field].name, inc);
    }
    cdc_buf_puts(b, ")");
    if (t->tombstones) {
        /* a dead row waiting for the sweep is not there any more */
        cdc_buf_puts(b, " AND NOT ");
        dead_cond(w, b, t, "t");
    }
    for (uint32_t k = 0; k < op->nkey; k++)
        pv[np++] = op->key[k];
    name = prepare(w, sig->p, b->p, np, err);
    if (name) {
        /* lengths are implied: values are NUL-terminated text */
        PGresult *r = PQexecPrepared(w->pg, name, np, pv, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            pgerr(w, r, "updating rows of a dimension change", err);
        else
            rc = 0;
        PQclear(r);
    }
    return rc;
}

/*
 * A lookup (dimension) change: UPDATE every row whose match fields equal
 * the key, each field only where the value wins.  Parameters per value:
 * with rank columns its text and its rank (bytea text); with the
 * _provenance column its text, its provenance object and its rank.
 */
static int exec_lookup(pgw_t *w, const cdc_wide_op_t *op, cdc_err_t *err)
{
    const cdc_map_target_t *t = op->target;
    int rank = rmode(w, t), stride = rank ? 2 : 3, np = 0, rc;
    cdc_buf_t sig = CDC_BUF_INIT, *b = &w->sql;
    cdc_buf_t *enc = cdc_xcalloc(op->nvals + 1, sizeof(cdc_buf_t));
    char *qt = qtable(w, t);
    const char **pv = cdc_xcalloc(op->nkey + 3 * op->nvals + 1,
                                  sizeof(char *));

    cdc_buf_printf(&sig, "L%s", op->mapping->name);
    for (uint32_t i = 0; i < op->nvals; i++)
        cdc_buf_printf(&sig, ",%u", op->vals[i].field);
    cdc_buf_reset(b);
    cdc_buf_printf(b, "UPDATE %s AS t SET ", qt);
    for (uint32_t i = 0; i < op->nvals; i++) {
        uint32_t fi = op->vals[i].field;
        const cdc_map_field_t *f = &t->fields[fi];
        char *q = qident(w, f->name), inc[40];
        snprintf(inc, sizeof(inc), rank ? "$%d::bytea" : "$%d::text",
                 stride * (int)i + stride);
        cdc_buf_printf(b, "%s%s = CASE WHEN ", i && rank ? ", " : "", q);
        if (rank)
            rwin(w, b, t, fi, inc);
        else
            win_cond(w, b, f->name, inc);
        cdc_buf_printf(b, " THEN $%d::%s ELSE t.%s END", stride * (int)i + 1,
                       casttype(f), q);
        if (rank) {
            char *qr = qrank(w, f->name);
            cdc_buf_printf(b, ", %s = CASE WHEN ", qr);
            rwin(w, b, t, fi, inc);
            cdc_buf_printf(b, " THEN %s ELSE t.%s END", inc, qr);
            free(qr);
        } else {
            cdc_buf_puts(b, ", ");
        }
        free(q);
    }
    if (!rank) {
        cdc_buf_puts(b, "_provenance = t._provenance || jsonb_strip_nulls("
                        "jsonb_build_object(");
        for (uint32_t i = 0; i < op->nvals; i++) {
            const cdc_map_field_t *f = &t->fields[op->vals[i].field];
            char *lit = qlit(w, f->name), inc[40];
            snprintf(inc, sizeof(inc), "$%d::text", 3 * (int)i + 3);
            cdc_buf_printf(b, "%s%s, CASE WHEN ", i ? ", " : "", lit);
            win_cond(w, b, f->name, inc);
            cdc_buf_printf(b, " THEN $%d::jsonb END", 3 * (int)i + 2);
            free(lit);
        }
        cdc_buf_puts(b, "))");
    }
    for (uint32_t i = 0; i < op->nvals; i++) {
        const cdc_wide_val_t *v = &op->vals[i];
        pv[np++] = v->isnull ? NULL : v->s;
        if (rank) {
            cdc_pgrank_put(&enc[i], v->rank, op->commit_us, v->deleted,
                           op->source, 0);
            pv[np++] = enc[i].p;
        } else {
            cdc_wide_prov_json(&enc[i], op, v);
            pv[np++] = enc[i].p;
            pv[np++] = v->rank;
        }
    }
    rc = lookup_finish(w, op, &sig, stride, pv, np, err);
    for (uint32_t i = 0; i < op->nvals; i++)
        cdc_buf_free(&enc[i]);
    free(enc);
    free(pv);
    free(qt);
    cdc_buf_free(&sig);
    return rc;
}

/* ---- batches --------------------------------------------------------------- */

/* the batch's dead letters, in its transaction */
static int write_dead(pgw_t *w, cdc_err_t *err)
{
    for (size_t i = 0; i < w->b.dead.n; i++) {
        const cdc_dl_entry_t *e = &w->b.dead.v[i];
        char cu[24];
        const char *pv[8] = {w->pipeline, w->source, e->table, e->op,
                             e->position, cu, e->error, e->change};
        PGresult *r;
        snprintf(cu, sizeof(cu), "%" PRId64, e->commit_us);
        cdc_buf_reset(&w->sql);
        cdc_buf_printf(&w->sql, "INSERT INTO %s (pipeline, source, "
                       "source_table, op, position, commit_us, error, "
                       "change_data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                       w->dl_q);
        r = PQexecParams(w->pg, w->sql.p, 8, NULL, pv, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            pgerr(w, r, "writing a dead letter", err);
            PQclear(r);
            return -1;
        }
        PQclear(r);
    }
    return 0;
}

/* `dead-letter retry`: the rows whose changes the batch applies */
static int delete_retried(pgw_t *w, cdc_err_t *err)
{
    cdc_buf_t ids = CDC_BUF_INIT;
    const char *pv[1];
    PGresult *r;
    int rc = 0;

    cdc_buf_putc(&ids, '{');
    for (size_t i = 0; i < w->b.nretry; i++)
        cdc_buf_printf(&ids, "%s%" PRId64, i ? "," : "", w->b.retry_ids[i]);
    cdc_buf_putc(&ids, '}');
    pv[0] = ids.p;
    cdc_buf_reset(&w->sql);
    cdc_buf_printf(&w->sql, "DELETE FROM %s WHERE id = ANY($1::bigint[])",
                   w->dl_q);
    r = PQexecParams(w->pg, w->sql.p, 1, NULL, pv, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = pgerr(w, r, "deleting retried dead letters", err);
    PQclear(r);
    cdc_buf_free(&ids);
    return rc;
}

/* Roll the transaction back, and forget every statement: staging tables
 * made in it are gone (the next batch prepares them again). */
static void forget_txn(pgw_t *w)
{
    PGresult *r;

    merge_reset(w);
    if (PQstatus(w->pg) == CONNECTION_OK) {
        r = PQexec(w->pg, "ROLLBACK");
        PQclear(r);
        r = PQexec(w->pg, "DEALLOCATE ALL");
        PQclear(r);
    }
    for (int i = 0; i < w->nstmts; i++)
        free(w->stmts[i].sig);
    w->nstmts = 0;
}

static int apply_batch(pgw_t *w, cdc_err_t *err)
{
    const char *p[5];
    char commit[32], txns[32], changes[32];
    PGresult *r;

    if (w->b.frag_dup) {
        /* a fragmented transaction whose end the offsets table holds
         * (applied before a crash): what was applied of it again goes */
        CDC_WARN(FAC, "transaction ending at %s is already in the target "
                 "database; its fragments are rolled back", w->b.stored);
        if (w->b.frag_open)
            forget_txn(w);
        w->b.frag_open = w->b.in_frag = 0;
        return 0;
    }
    if (!w->b.frag_open) {
        if (exec_simple(w, "BEGIN", "begin", err))
            return -1;
        /* another instance of this pipeline may have applied it meanwhile */
        if (read_offset(w, 1, err))
            goto fail;
        if (cdc_wide_batch_already_applied(&w->b, FAC))
            return exec_simple(w, "COMMIT", "commit", err);
        for (int i = 0; i < w->nstmts; i++)
            w->stmts[i].used = 0;
    }
    merge_reset(w);
    /* the keys with vote fields first, in one order in every pipeline */
    if (cdc_pgv_lock(&w->votes, &w->ops, err))
        goto fail;
    /* tombstones of the batch's keys back as row shells */
    if (tomb_steps(w, 0, err))
        goto fail;
    for (uint32_t i = 0; i < w->ops.n; i++) {
        const cdc_wide_op_t *op = &w->ops.ops[i];
        /* a row delete is an upsert of deletions */
        if (op->kind == CDC_WIDE_UPSERT || op->kind == CDC_WIDE_DELETE) {
            merge_op(w, op);
            continue;
        }
        if (op->kind == CDC_WIDE_GROUP || op->kind == CDC_WIDE_CONTRIB)
            continue; /* groups, aggregates: after the upserts, set-based */
        if (flush_merged(w, err) || exec_lookup(w, op, err))
            goto fail;
    }
    /* groups before aggregates: a row whose group went NULL and that no
     * longer has a contribution is then deleted by the aggregates'
     * statement */
    if (flush_merged(w, err) || cdc_pgv_apply(&w->votes, &w->ops, err) ||
        cdc_pgw_groups_apply(w->pg, w->map, &w->ops, w->rmode, err) ||
        cdc_pgw_agg_apply(w->pg, w->map, &w->ops, w->rmode, err))
        goto fail;
    /* dead rows of the batch's keys to the tombstones */
    if (tomb_steps(w, 1, err) || (!w->b.isolate && write_dead(w, err)))
        goto fail;
    if (w->b.isolate == 2) {
        /* a dry run to find a refused change: it went through */
        forget_txn(w);
        return 0;
    }
    if (w->b.retry || w->b.isolate) {
        /* dead-letter retry: the applied rows go; one change of a batch
         * the database refused: no offset yet */
        if (w->b.retry && delete_retried(w, err))
            goto fail;
        if (exec_simple(w, "COMMIT", "commit", err))
            goto fail;
        return 0;
    }
    if (w->b.in_frag) {
        /* more fragments of this transaction follow: it stays open */
        w->b.frag_open = 1;
        return 0;
    }
    cdc_buf_reset(&w->sql);
    cdc_buf_printf(&w->sql, "INSERT INTO %s AS o (pipeline, source, position, "
                   "pos_key, commit_us, txns, changes) VALUES ($1, $2, $3, $4, "
                   "$5, $6, $7) ON CONFLICT (pipeline) DO UPDATE SET source = "
                   "EXCLUDED.source, position = EXCLUDED.position, pos_key = "
                   "EXCLUDED.pos_key, commit_us = EXCLUDED.commit_us, txns = "
                   "o.txns + EXCLUDED.txns, changes = o.changes + "
                   "EXCLUDED.changes, updated_at = now()", w->offsets_q);
    snprintf(commit, sizeof(commit), "%" PRId64, w->b.batch_commit_us);
    snprintf(txns, sizeof(txns), "%zu", w->b.batch_ends);
    snprintf(changes, sizeof(changes), "%" PRIu64, w->b.batch_changes);
    {
        const char *pv[7] = {w->pipeline, w->source,
                             cdc_pos_str(&w->b.batch_cpos), w->b.batch_pos, commit,
                             txns, changes};
        (void)p;
        r = PQexecParams(w->pg, w->sql.p, 7, NULL, pv, NULL, NULL, 0);
    }
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        pgerr(w, r, "storing the offset", err);
        PQclear(r);
        goto fail;
    }
    PQclear(r);
    r = PQexec(w->pg, "COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        pgerr(w, r, "commit", err);
        PQclear(r);
        goto fail;
    }
    PQclear(r);
    w->b.frag_open = 0;
    cdc_wide_batch_committed(&w->b);
    return 0;
fail:
    forget_txn(w);
    w->b.frag_open = 0;
    return -1;
}

/* deadlocks and serialisation failures between pipelines that write the
 * same rows: retry the whole transaction */
static int pg_retriable(const cdc_err_t *e)
{
    return strstr(e->detail, "40P01") || strstr(e->detail, "40001");
}

static int apply_cb(void *w, cdc_err_t *err)
{
    return apply_batch(w, err);
}

static int flush_batch(pgw_t *w, cdc_err_t *err)
{
    int64_t t0 = cdc_now_us();
    size_t ntxns = w->b.ntxns;
    uint32_t nops = w->ops.n;
    char pos[33];

    memcpy(pos, w->b.batch_pos, sizeof(pos));
    if (cdc_wide_batch_apply(&w->b, &w->ops, apply_cb, pg_retriable, w, err))
        return -1;
    if (ntxns)
        CDC_DEBUG(FAC, "applied %zu txns, %u operations in %.1f ms "
                  "(position %s)", ntxns, nops,
                  (double)(cdc_now_us() - t0) / 1000.0, pos);
    return 0;
}

static int write_flush(void *ctx, cdc_err_t *err)
{
    return flush_batch(ctx, err);
}

static void write_rollback(void *ctx)
{
    forget_txn(ctx);
}

static int pgw_write(cdc_sink_t *snk, cdc_txn_t *tx, cdc_err_t *err)
{
    pgw_t *w = (pgw_t *)snk;
    return cdc_wide_batch_write(&w->b, w->map, w->source, &w->ops, tx,
                                write_flush, write_rollback, w, FAC, err);
}

static int pgw_poll(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    pgw_t *w = (pgw_t *)snk;
    if (cdc_wide_batch_due(&w->b, timeout_ms) && flush_batch(w, err))
        return -1;
    cdc_wide_purge_due(&w->purge, w->map, w->source, purge_target, w, FAC);
    return 0;
}

static int pgw_flush(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    (void)timeout_ms;
    return flush_batch((pgw_t *)snk, err);
}

typedef struct dl_res {
    PGresult *r;
} dl_res_t;

static const char *dl_get(void *ctx, size_t row, int col)
{
    return PQgetvalue(((dl_res_t *)ctx)->r, (int)row, col);
}

static int pgw_dead_letter(cdc_sink_t *snk, const char *action, FILE *out,
                           cdc_err_t *err)
{
    pgw_t *w = (pgw_t *)snk;
    const char *pv[1] = {w->pipeline};
    dl_res_t res;
    int rc;

    if (create_dl(w, err))
        return err->code;
    cdc_buf_reset(&w->sql);
    cdc_buf_printf(&w->sql, "SELECT id, to_char(created_at AT TIME ZONE "
                   "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), source_table, op, "
                   "position, error, change_data FROM %s WHERE pipeline = $1 "
                   "ORDER BY id", w->dl_q);
    res.r = PQexecParams(w->pg, w->sql.p, 1, NULL, pv, NULL, NULL, 0);
    if (PQresultStatus(res.r) != PGRES_TUPLES_OK) {
        pgerr(w, res.r, "reading the dead letters", err);
        PQclear(res.r);
        return err->code;
    }
    rc = cdc_wide_dead_letter(&w->b, w->map, w->source, &w->ops, action, out,
                              (size_t)PQntuples(res.r), dl_get, &res,
                              apply_cb, w, err);
    PQclear(res.r);
    return rc;
}

static void pgw_destroy(cdc_sink_t *snk)
{
    pgw_t *w = (pgw_t *)snk;
    if (!w)
        return;
    cdc_wide_batch_free(&w->b, FAC);
    merge_reset(w);
    free(w->rows);
    free(w->hash);
    for (int i = 0; i < w->nstmts; i++)
        free(w->stmts[i].sig);
    free(w->stmts);
    cdc_buf_free(&w->sql);
    cdc_buf_free(&w->tmp);
    cdc_wide_ops_free(&w->ops);
    if (w->pg)
        PQfinish(w->pg);
    cdc_map_destroy(w->map);
    free(w->dsn);
    free(w->pipeline);
    free(w->source);
    free(w->offsets_q);
    free(w->dl_q);
    free(w->origin);
    free(w->rmode);
    free(w->rbase);
    free(w->rbytes);
    free(w);
}

const cdc_sink_ops_t cdc_sink_postgres_ops = {
    .name = "postgres",
    .abi = CDC_PLUGIN_ABI,
    .create = pgw_create,
    .write = pgw_write,
    .poll = pgw_poll,
    .flush = pgw_flush,
    .destroy = pgw_destroy,
    .dead_letter = pgw_dead_letter,
    .own_thread = 1,
};
