/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mysql_wide.c - the MySQL/MariaDB wide-table sink (`--sink mysql`).
 *
 * The same contract as the PostgreSQL wide sink (sinks/pg_wide.c,
 * docs/MAPPINGS.md): wide operations from the mapping engine, batched,
 * applied in one InnoDB transaction together with the pipeline's
 * position in autoglm_cdc_offsets; transactions at or before the stored
 * position are dropped after a restart.
 *
 * Upserts are prepared multi-row statements with bound values:
 *
 *   INSERT INTO `t` (k, f1, .., _provenance) VALUES (?,?,..,?), ...
 *   ON DUPLICATE KEY UPDATE
 *     f1 = IF(<incoming rank of f1 > stored rank>, VALUES(f1), f1), ...,
 *     _provenance = JSON_SET(_provenance, '$."f1"', IF(<win f1>,
 *         JSON_EXTRACT(VALUES(_provenance), '$."f1"'),
 *         JSON_EXTRACT(_provenance, '$."f1"')), ...)
 *
 * MySQL applies ON DUPLICATE KEY assignments left to right and later ones
 * see earlier results, so _provenance is assigned last: every condition
 * compares against the stored provenance.  Identifiers are quoted with
 * backticks (a backtick doubled).  Targets live in the DSN's database.
 *
 * Row deletes (on_delete: delete) are upserts of deletions ("d":1 in the
 * provenance).  A target with row deletes keeps dead rows' provenance in
 * <table>_tombstones: before a batch the tombstones of its keys come back
 * as row shells (INSERT ... SELECT ... ON DUPLICATE KEY UPDATE, DELETE),
 * after it dead rows of its keys move there (INSERT ... SELECT, DELETE),
 * TOMB_KEYS keys per statement (docs/MAPPINGS.md).  With
 * mysql_sink.tombstone_keep, at most once per tombstone_purge_every and
 * in its own short transaction between batches, up to CDC_WIDE_PURGE_ROWS
 * tombstones whose newest deletion is older than now - keep are deleted.
 */
#include <inttypes.h>
#include <mysql.h>
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
#include "cdc/plugin.h"
#include "connectors/mysql/conn.h"
#include "mappings/map_int.h"
#include "mappings/reverse.h"
#include "sinks/wide_batch.h"

extern const cdc_sink_ops_t cdc_sink_mysql_ops;

#define FAC "mywide"
#define ROWS_PER_STMT 200

typedef struct mstmt {
    char *sig;
    MYSQL_STMT *st;
} mstmt_t;

typedef struct myw {
    cdc_sink_t base;
    MYSQL *m;
    cdc_map_t *map;
    char *pipeline, *source;
    int create_tables;
    cdc_wide_batch_t b;
    cdc_wide_ops_t ops;
    mstmt_t *stmts;
    int nstmts;
    cdc_buf_t sql;
    int same_skip;       /* mysql_sink.same_value=skip */
    int marker;          /* mysql_sink.marker: loop-prevention marker row */
    cdc_wide_purge_t purge;  /* tombstone retention */
    const char *dl_table;    /* errors.dead_letter_table (the conf's) */
} myw_t;

static int myerr(myw_t *w, const char *what, const char *detail,
                 unsigned code, cdc_err_t *err)
{
    int lost = code == 2006 || code == 2013 || code == 2002 || code == 2003;
    /* out of range, truncated, incorrect value, too long, bad JSON, bad
     * string: a value the table cannot hold (exit 65, not a failure) */
    int data = code == 1264 || code == 1265 || code == 1366 ||
               code == 1406 || code == 1292 || code == 3140 || code == 1300;
    cdc_err_set(err, lost ? CDC_EXIT_UNAVAILABLE : data ? CDC_EXIT_DATA
                : CDC_EXIT_FAIL, lost ? CDC_ERR_F_RETRIABLE : data ?
                CDC_ERR_F_DATA : 0, "mysql sink: %s failed: %s", what, detail);
    cdc_err_detail(err, "error %u", code);
    if (data)
        cdc_err_hint(err, "%s", CDC_WIDE_DATA_HINT);
    (void)w;
    return -1;
}

static int q(myw_t *w, const char *sql, const char *what, cdc_err_t *err)
{
    if (mysql_real_query(w->m, sql, strlen(sql)))
        return myerr(w, what, mysql_error(w->m), mysql_errno(w->m), err);
    MYSQL_RES *r = mysql_store_result(w->m);
    if (r)
        mysql_free_result(r);
    return 0;
}

static void qid(cdc_buf_t *b, const char *s)
{
    cdc_buf_quoted(b, s, '`');
}

/* Targets live in the DSN's database: the schema part of a target's
 * table (e.g. "public." for PostgreSQL) is not used here. */
static void qtable(cdc_buf_t *b, const cdc_map_target_t *t)
{
    qid(b, t->table);
}

static const char *mytype(const cdc_map_field_t *f, char *buf, size_t n)
{
    switch (f->type) {
    case CDC_MT_INT: return "BIGINT";
    case CDC_MT_DECIMAL:
        snprintf(buf, n, "DECIMAL(%d,%d)", f->precision ? f->precision : 38,
                 f->precision ? f->scale : 10);
        return buf;
    case CDC_MT_DOUBLE: return "DOUBLE";
    case CDC_MT_BOOL: return "BOOLEAN";
    case CDC_MT_TIMESTAMP: return "DATETIME(6)";
    case CDC_MT_DATE: return "DATE";
    case CDC_MT_JSON: return "LONGTEXT";
    default: return f->is_key ? "VARCHAR(255)" : "LONGTEXT";
    }
}

/* value text as MySQL wants it (booleans 1/0; UTC date-times naive) */
static const char *myval(const cdc_map_field_t *f, const char *s, size_t len,
                         char *buf, size_t n, size_t *outlen)
{
    if (f->type == CDC_MT_BOOL) {
        *outlen = 1;
        return s[0] == 't' ? "1" : "0";
    }
    if (f->type == CDC_MT_TIMESTAMP && len >= 20 && len < n) {
        memcpy(buf, s, len - 1); /* drop the Z */
        buf[10] = ' ';
        buf[len - 1] = '\0';
        *outlen = len - 1;
        return buf;
    }
    *outlen = len;
    return s;
}

/* "incoming wins" for field f: incoming is an SQL expression of text */
static void win(cdc_buf_t *b, const char *field, const char *incoming)
{
    cdc_buf_printf(b, "(CAST(%s AS BINARY) > CAST(COALESCE(JSON_VALUE("
                   "`_provenance`, '$.\"%s\".r'), '') AS BINARY))",
                   incoming, field);
}

/* the upsert's win condition; with same_value=skip an equal value never
 * wins, so an unchanged row is not written (and not binlogged) */
static void upsert_win(myw_t *w, cdc_buf_t *b, const cdc_map_target_t *t,
                       const char *field, const char *incoming)
{
    if (!w->same_skip) {
        win(b, field, incoming);
        return;
    }
    cdc_buf_puts(b, "(");
    win(b, field, incoming);
    cdc_buf_puts(b, " AND NOT (VALUES(");
    qid(b, field);
    cdc_buf_puts(b, ") <=> ");
    qid(b, field);
    if (t->tombstones)
        /* a deletion differs from a NULL value (and back) */
        cdc_buf_printf(b, " AND JSON_VALUE(VALUES(`_provenance`), '$.\"%s\".d')"
                       " <=> JSON_VALUE(`_provenance`, '$.\"%s\".d')", field,
                       field);
    cdc_buf_puts(b, "))");
}

/* "the row is dead": provenance entries, every one a deletion */
static void dead_cond(cdc_buf_t *b)
{
    cdc_buf_puts(b, "(JSON_LENGTH(`_provenance`) > 0 AND JSON_LENGTH("
                    "`_provenance`) = COALESCE(JSON_LENGTH(JSON_EXTRACT("
                    "`_provenance`, '$.*.d')), 0))");
}

/* the dead-letter table (sinks/dead_letter.h) */
static int create_dl(myw_t *w, cdc_err_t *err)
{
    cdc_buf_reset(&w->sql);
    cdc_buf_puts(&w->sql, "CREATE TABLE IF NOT EXISTS ");
    qid(&w->sql, w->dl_table);
    cdc_buf_puts(&w->sql, " (id BIGINT AUTO_INCREMENT PRIMARY KEY, pipeline "
                 "VARCHAR(190) NOT NULL, source VARCHAR(190) NOT NULL, "
                 "source_table TEXT NOT NULL, op VARCHAR(2) NOT NULL, "
                 "position TEXT NOT NULL, commit_us BIGINT NOT NULL, error "
                 "TEXT NOT NULL, change_data LONGTEXT NOT NULL, created_at "
                 "TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), KEY "
                 "(pipeline, id)) ENGINE=InnoDB CHARSET=utf8mb4 "
                 "COLLATE=utf8mb4_bin");
    return q(w, w->sql.p, "creating the dead-letter table", err);
}

static int create_tables(myw_t *w, cdc_err_t *err)
{
    cdc_buf_t *b = &w->sql;
    char tb[40];

    if (q(w, "CREATE TABLE IF NOT EXISTS autoglm_cdc_offsets (pipeline "
             "VARCHAR(190) PRIMARY KEY, source VARCHAR(190), position TEXT "
             "NOT NULL, pos_key VARCHAR(64) NOT NULL, commit_us BIGINT, txns "
             "BIGINT NOT NULL DEFAULT 0, changes BIGINT NOT NULL DEFAULT 0, "
             "updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) "
             "ENGINE=InnoDB", "creating the offsets table", err) ||
        (w->b.dead_letter && create_dl(w, err)))
        return -1;
    /* loop prevention: one row per pipeline, bumped in every transaction
     * of this sink; the binlog source skips transactions that write it */
    if (w->marker &&
        q(w, "CREATE TABLE IF NOT EXISTS autoglm_cdc_marker (pipeline "
             "VARCHAR(190) PRIMARY KEY, n BIGINT NOT NULL DEFAULT 0) "
             "ENGINE=InnoDB", "creating the marker table", err))
        return -1;
    for (uint32_t i = 0; w->create_tables && i < w->map->ntargets; i++) {
        const cdc_map_target_t *t = &w->map->targets[i];
        cdc_buf_reset(b);
        cdc_buf_puts(b, "CREATE TABLE IF NOT EXISTS ");
        qtable(b, t);
        cdc_buf_puts(b, " (");
        for (uint32_t f = 0; f < t->nfields; f++) {
            qid(b, t->fields[f].name);
            cdc_buf_printf(b, " %s%s, ", mytype(&t->fields[f], tb, sizeof(tb)),
                           t->fields[f].is_key ? " NOT NULL" : "");
        }
        cdc_buf_puts(b, "`_provenance` LONGTEXT NOT NULL DEFAULT '{}', "
                        "PRIMARY KEY (");
        for (uint32_t k = 0; k < t->nkey; k++) {
            if (k)
                cdc_buf_puts(b, ", ");
            qid(b, t->fields[t->key[k]].name);
        }
        cdc_buf_puts(b, ")) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
                        "COLLATE=utf8mb4_bin");
        if (q(w, b->p, "creating a wide table", err))
            return -1;
    }
    for (uint32_t i = 0; i < w->map->ntargets; i++) {
        const cdc_map_target_t *t = &w->map->targets[i];
        char name[200];
        if (!t->tombstones ||
            (!w->create_tables && !cdc_wide_source_writes(w->map, w->source, t)))
            continue;
        cdc_map_tombstone_table(t, name, sizeof(name));
        cdc_buf_reset(b);
        if (!w->create_tables) {
            /* must exist: a SELECT that fails if it does not */
            cdc_buf_puts(b, "SELECT 1 FROM ");
            qid(b, name);
            cdc_buf_puts(b, " LIMIT 0");
            if (q(w, b->p, "checking the tombstones table", err)) {
                cdc_err_hint(err, "target %s deletes rows (on_delete: "
                             "delete): set mysql_sink.create_tables=true or "
                             "create %s with the key columns of %s and "
                             "_provenance LONGTEXT NOT NULL, PRIMARY KEY on "
                             "the key (docs/MAPPINGS.md)", t->name, name,
                             t->table);
                return -1;
            }
            continue;
        }
        cdc_buf_puts(b, "CREATE TABLE IF NOT EXISTS ");
        qid(b, name);
        cdc_buf_puts(b, " (");
        for (uint32_t k = 0; k < t->nkey; k++) {
            qid(b, t->fields[t->key[k]].name);
            cdc_buf_printf(b, " %s NOT NULL, ",
                           mytype(&t->fields[t->key[k]], tb, sizeof(tb)));
        }
        cdc_buf_puts(b, "`_provenance` LONGTEXT NOT NULL, PRIMARY KEY (");
        for (uint32_t k = 0; k < t->nkey; k++) {
            if (k)
                cdc_buf_puts(b, ", ");
            qid(b, t->fields[t->key[k]].name);
        }
        cdc_buf_puts(b, ")) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
                        "COLLATE=utf8mb4_bin");
        if (q(w, b->p, "creating a tombstones table", err)) {
            cdc_err_hint(err, "target %s deletes rows (on_delete: delete): "
                         "the sink keeps dead rows' provenance in %s; grant "
                         "CREATE or create it yourself (docs/MAPPINGS.md)",
                         t->name, name);
            return -1;
        }
    }
    return 0;
}

static int read_offset(myw_t *w, int lock, cdc_err_t *err)
{
    cdc_buf_t b = CDC_BUF_INIT;
    char esc[512];
    MYSQL_RES *r;
    MYSQL_ROW row;

    mysql_real_escape_string(w->m, esc, w->pipeline,
                             (unsigned long)strnlen(w->pipeline, 200));
    cdc_buf_printf(&b, "SELECT pos_key, position FROM autoglm_cdc_offsets "
                   "WHERE pipeline = '%s'%s", esc, lock ? " FOR UPDATE" : "");
    if (mysql_real_query(w->m, b.p, b.len)) {
        cdc_buf_free(&b);
        return myerr(w, "reading the stored offset", mysql_error(w->m),
                     mysql_errno(w->m), err);
    }
    cdc_buf_free(&b);
    r = mysql_store_result(w->m);
    if (r && (row = mysql_fetch_row(r)) && row[0]) {
        snprintf(w->b.stored, sizeof(w->b.stored), "%s", row[0]);
        if (!w->b.have_stored)
            CDC_INFO(FAC, "pipeline %s: target database holds position %s; "
                     "changes at or before it are skipped", w->pipeline,
                     row[1] ? row[1] : "?");
        w->b.have_stored = 1;
    }
    if (r)
        mysql_free_result(r);
    return 0;
}

/* mysql_sink.dsn (connectors/mysql/conn.h): mysql://user:pass@host:port/db */
static int connect_dsn(myw_t *w, const cdc_conf_t *conf, cdc_err_t *err)
{
    cdc_my_conf_t cc;

    if (cdc_my_conf_load(&cc, conf, "mysql_sink", err) < 0)
        return -1;
    if (!cc.db) {
        cdc_my_conf_free(&cc);
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "mysql_sink.dsn names no "
                    "database");
        cdc_err_hint(err, "use mysql://user:password@host:port/database");
        return -1;
    }
    w->m = cdc_my_connect(&cc, NULL, 0, 0, 0, "mysql sink: cannot connect",
                          err);
    cdc_my_conf_free(&cc);
    if (!w->m)
        return -1;
    return q(w, "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,"
                "NO_ENGINE_SUBSTITUTION', time_zone = '+00:00', "
                "autocommit = 0", "setting the session", err);
}

static cdc_sink_t *myw_create(const cdc_conf_t *conf, cdc_err_t *err)
{
    const char *dsn = cdc_conf_get(conf, "mysql_sink.dsn", NULL);
    const char *pipe = cdc_conf_pipeline(conf);
    myw_t *w;
    int ct;

    if (!dsn || !*dsn) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "the mysql sink needs "
                    "mysql_sink.dsn");
        cdc_err_hint(err, "-X mysql_sink.dsn=mysql://user:pass@host:port/db");
        return NULL;
    }
    w = cdc_xcalloc(1, sizeof(*w));
    w->base.ops = &cdc_sink_mysql_ops;
    cdc_wide_ops_init(&w->ops);
    if (cdc_dl_conf(conf, &w->b.dead_letter, &w->dl_table, err) ||
        cdc_conf_get_int(conf, "mysql_sink.batch_rows", 5000, &w->b.batch_rows,
                         err) ||
        cdc_conf_get_int(conf, "mysql_sink.flush_ms", 200, &w->b.flush_ms, err) ||
        cdc_conf_get_bool(conf, "mysql_sink.create_tables", 1, &ct, err))
        goto fail;
    w->create_tables = ct;
    {
        const char *sv = cdc_conf_get(conf, "mysql_sink.same_value", "stamp");
        if (strcmp(sv, "stamp") && strcmp(sv, "skip")) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "mysql_sink.same_value: "
                        "unknown value \"%s\"", sv);
            cdc_err_hint(err, "stamp or skip (docs/TWO-WAY.md)");
            goto fail;
        }
        w->same_skip = !strcmp(sv, "skip");
    }
    if (cdc_conf_get_bool(conf, "mysql_sink.marker", 1, &w->marker, err) ||
        cdc_wide_purge_conf(&w->purge, conf, "mysql_sink", err))
        goto fail;
    w->map = cdc_map_load(cdc_conf_get(conf, "mapping.files", NULL), err);
    if (!w->map)
        goto fail;
    /* DOUBLE holds no NaN, an undeclared decimal is DECIMAL(38,10) */
    w->map->limits = CDC_MAP_LIM_FINITE | CDC_MAP_LIM_DEC38;
    for (uint32_t i = 0; i < w->map->ntargets; i++) {
        const cdc_map_target_t *t = &w->map->targets[i];
        if (!t->ngroups)
            continue;
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "mysql sink: target '%s' has "
                    "field group '%s' (%s), which the MySQL wide sink does "
                    "not support", t->name, t->groups[0].name,
                    t->groups[0].where);
        cdc_err_hint(err, "write the target with the PostgreSQL wide sink "
                     "(--sink postgres, postgres_sink.dsn), or remove "
                     "'group:' from its fields (docs/MAPPINGS.md, Field "
                     "groups)");
        goto fail;
    }
    w->pipeline = cdc_xstrdup(pipe);
    w->source = cdc_xstrdup(cdc_conf_get(conf, "application_id", pipe));
    /* aggregates (<table>_contrib) are kept by the PostgreSQL sink only */
    for (uint32_t i = 0; i < w->map->ntargets; i++)
        if (w->map->targets[i].aggregates &&
            cdc_wide_source_writes(w->map, w->source, &w->map->targets[i])) {
            cdc_map_agg_refuse(&w->map->targets[i], "MySQL", err);
            goto fail;
        }
    /* vote / weighted_mean need per-source state this sink does not keep */
    if (cdc_map_refuse_per_source(w->map, w->source, "the MySQL wide sink",
                                  err))
        goto fail;
    if (connect_dsn(w, conf, err))
        goto fail;
    /* @autoglm_cdc_sink tells two-way triggers (docs/TWO-WAY.md) that
     * this session is ours, on MySQL and MariaDB alike */
    if (q(w, "SET @autoglm_cdc_sink = 1", "setting the session", err))
        goto fail;
    if (w->marker && mysql_query(w->m, "SET SESSION skip_replication = 1"))
        /* MySQL has no such variable; the marker row is enough */
        CDC_DEBUG(FAC, "skip_replication not set: %s", mysql_error(w->m));
    if (create_tables(w, err) ||
        q(w, "COMMIT", "commit", err) || read_offset(w, 0, err) ||
        q(w, "COMMIT", "commit", err))
        goto fail;
    return &w->base;
fail:
    cdc_sink_mysql_ops.destroy(&w->base);
    return NULL;
}

/* ---- statements ------------------------------------------------------------ */

static MYSQL_STMT *prepare(myw_t *w, const char *sig, const char *sql,
                           cdc_err_t *err)
{
    MYSQL_STMT *st;
    for (int i = 0; i < w->nstmts; i++)
        if (!strcmp(w->stmts[i].sig, sig))
            return w->stmts[i].st;
    st = mysql_stmt_init(w->m);
    if (!st || mysql_stmt_prepare(st, sql, strlen(sql))) {
        myerr(w, "preparing a statement", st ? mysql_stmt_error(st)
                                             : mysql_error(w->m),
              st ? mysql_stmt_errno(st) : mysql_errno(w->m), err);
        if (st)
            mysql_stmt_close(st);
        return NULL;
    }
    w->stmts = cdc_xrealloc(w->stmts, (size_t)(w->nstmts + 1) *
                                          sizeof(*w->stmts));
    w->stmts[w->nstmts].sig = cdc_xstrdup(sig);
    w->stmts[w->nstmts++].st = st;
    return st;
}

typedef struct binds {
    MYSQL_BIND *b;
    unsigned long *len;
    char *isnull;
    char **own;
    int n, cap;
} binds_t;

static void bind_add(binds_t *bs, const char *s, size_t len, int isnull)
{
    if (bs->n == bs->cap) {
        bs->cap = bs->cap ? bs->cap * 2 : 64;
        bs->b = cdc_xrealloc(bs->b, (size_t)bs->cap * sizeof(*bs->b));
        bs->len = cdc_xrealloc(bs->len, (size_t)bs->cap * sizeof(*bs->len));
        bs->isnull = cdc_xrealloc(bs->isnull, (size_t)bs->cap);
        bs->own = cdc_xrealloc(bs->own, (size_t)bs->cap * sizeof(char *));
    }
    int i = bs->n++;
    memset(&bs->b[i], 0, sizeof(bs->b[i]));
    bs->own[i] = isnull ? NULL : cdc_xstrndup(s, len);
    bs->len[i] = (unsigned long)len;
    bs->isnull[i] = (char)isnull;
    bs->b[i].buffer_type = MYSQL_TYPE_STRING;
    bs->b[i].buffer = bs->own[i];
    bs->b[i].buffer_length = (unsigned long)len;
}

static void binds_reset(binds_t *bs)
{
    for (int i = 0; i < bs->n; i++)
        free(bs->own[i]);
    bs->n = 0;
}

static void binds_free(binds_t *bs)
{
    binds_reset(bs);
    free(bs->b);
    free(bs->len);
    free(bs->isnull);
    free(bs->own);
}

static int exec_bound(myw_t *w, MYSQL_STMT *st, binds_t *bs, const char *what,
                      cdc_err_t *err)
{
    for (int i = 0; i < bs->n; i++) {
        bs->b[i].buffer = bs->own[i];
        bs->b[i].length = &bs->len[i];
        bs->b[i].is_null = (my_bool *)&bs->isnull[i];
    }
    if (mysql_stmt_bind_param(st, bs->b) || mysql_stmt_execute(st))
        return myerr(w, what, mysql_stmt_error(st), mysql_stmt_errno(st), err);
    return 0;
}

/* merged row: best value per field, like the PostgreSQL sink */
typedef struct mrow {
    const cdc_wide_op_t *keyop;
    const cdc_wide_op_t **vop;
    const cdc_wide_val_t **val;
    char *keytext;
} mrow_t;

static int exec_upserts(myw_t *w, mrow_t *rows, size_t n, cdc_err_t *err);

static int key_cmp(const void *a, const void *b)
{
    const mrow_t *x = a, *y = b;
    return strcmp(x->keytext, y->keytext);
}

/* Merge consecutive upserts of ops[from, to) and apply them. */
/* `_provenance` = JSON_SET(...): winners replace their entry, losers keep
 * theirs (never NULL: a field without a stored rank always wins) */
static void prov_set(myw_t *w, cdc_buf_t *b, const cdc_map_target_t *t,
                     const uint32_t *fl, int nf)
{
    cdc_buf_puts(b, "`_provenance` = JSON_SET(`_provenance`");
    for (int i = 0; i < nf; i++) {
        const char *fname = t->fields[fl[i]].name;
        char inc[200];
        snprintf(inc, sizeof(inc), "JSON_VALUE(VALUES(`_provenance`), "
                 "'$.\"%s\".r')", fname);
        cdc_buf_printf(b, ", '$.\"%s\"', IF(", fname);
        /* same_value=skip: remember the outcome for the value assignment
         * (MariaDB reads VALUES(`_provenance`) as NULL once the column
         * has been assigned) */
        if (w->same_skip)
            cdc_buf_printf(b, "(@agw_win%d := ", i);
        upsert_win(w, b, t, fname, inc);
        if (w->same_skip)
            cdc_buf_puts(b, ")");
        cdc_buf_printf(b, ", JSON_EXTRACT(VALUES(`_provenance`), "
                       "'$.\"%s\"'), JSON_EXTRACT(`_provenance`, "
                       "'$.\"%s\"'))", fname, fname);
    }
    cdc_buf_puts(b, ")");
}

static int apply_upserts(myw_t *w, uint32_t from, uint32_t to, cdc_err_t *err)
{
    mrow_t *rows = NULL;
    size_t n = 0, cap = 0, hcap = 64;
    cdc_buf_t kt = CDC_BUF_INIT;
    size_t *hash;
    int rc;

    while (hcap < 2 * (size_t)(to - from) + 2)
        hcap *= 2;
    hash = cdc_xcalloc(hcap, sizeof(size_t)); /* index + 1 into rows */

    for (uint32_t i = from; i < to; i++) {
        const cdc_wide_op_t *op = &w->ops.ops[i];
        mrow_t *r = NULL;
        cdc_buf_reset(&kt);
        cdc_buf_printf(&kt, "%p", (const void *)op->target);
        for (uint32_t k = 0; k < op->nkey; k++) {
            cdc_buf_putc(&kt, '\x1f');
            cdc_buf_puts(&kt, op->key[k]);
        }
        uint64_t hv = 1469598103934665603ULL;
        for (const char *c = kt.p; *c; c++)
            hv = (hv ^ (unsigned char)*c) * 1099511628211ULL;
        size_t h = (size_t)hv & (hcap - 1);
        while (hash[h] && strcmp(rows[hash[h] - 1].keytext, kt.p))
            h = (h + 1) & (hcap - 1);
        if (hash[h])
            r = &rows[hash[h] - 1];
        if (!r) {
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                rows = cdc_xrealloc(rows, cap * sizeof(*rows));
            }
            r = &rows[n++];
            r->keyop = op;
            r->keytext = cdc_xstrdup(kt.p);
            r->vop = cdc_xcalloc(op->target->nfields, sizeof(*r->vop));
            r->val = cdc_xcalloc(op->target->nfields, sizeof(*r->val));
            hash[h] = n;
        }
        for (uint32_t v = 0; v < op->nvals; v++) {
            const cdc_wide_val_t *x = &op->vals[v];
            if (!r->val[x->field] || strcmp(x->rank, r->val[x->field]->rank) > 0) {
                r->val[x->field] = x;
                r->vop[x->field] = op;
            }
        }
    }
    qsort(rows, n, sizeof(*rows), key_cmp);
    rc = exec_upserts(w, rows, n, err);
    for (size_t j = 0; j < n; j++) {
        free(rows[j].keytext);
        free(rows[j].vop);
        free(rows[j].val);
    }
    free(rows);
    free(hash);
    cdc_buf_free(&kt);
    return rc;
}

static int same_shape(const mrow_t *a, const mrow_t *b)
{
    const cdc_map_target_t *t = a->keyop->target;
    if (t != b->keyop->target)
        return 0;
    for (uint32_t f = 0; f < t->nfields; f++)
        if ((a->val[f] != NULL) != (b->val[f] != NULL))
            return 0;
    return 1;
}

static int exec_chunk(myw_t *w, mrow_t **rows, size_t n, cdc_err_t *err)
{
    const cdc_map_target_t *t = rows[0]->keyop->target;
    uint32_t fl[512];
    int nf = 0, rc;
    cdc_buf_t sig = CDC_BUF_INIT, *b = &w->sql, prov = CDC_BUF_INIT;
    binds_t bs = {0};
    MYSQL_STMT *st;
    char vb[64];

    for (uint32_t f = 0; f < t->nfields && nf < 512; f++)
        if (rows[0]->val[f])
            fl[nf++] = f;
    cdc_buf_printf(&sig, "U%s/%zu", t->name, n);
    for (int i = 0; i < nf; i++)
        cdc_buf_printf(&sig, ",%u", fl[i]);
    cdc_buf_reset(b);
    cdc_buf_puts(b, "INSERT INTO ");
    qtable(b, t);
    cdc_buf_puts(b, " (");
    for (uint32_t k = 0; k < t->nkey; k++) {
        qid(b, t->fields[t->key[k]].name);
        cdc_buf_puts(b, ", ");
    }
    for (int i = 0; i < nf; i++) {
        qid(b, t->fields[fl[i]].name);
        cdc_buf_puts(b, ", ");
    }
    cdc_buf_puts(b, "`_provenance`) VALUES ");
    for (size_t r = 0; r < n; r++) {
        cdc_buf_puts(b, r ? ",(" : "(");
        for (uint32_t k = 0; k < t->nkey + (uint32_t)nf; k++)
            cdc_buf_puts(b, "?,");
        cdc_buf_puts(b, "?)");
    }
    if (!nf) {
        /* key-only rows: keep what is there */
        cdc_buf_puts(b, " ON DUPLICATE KEY UPDATE ");
        qid(b, t->fields[t->key[0]].name);
        cdc_buf_puts(b, " = ");
        qid(b, t->fields[t->key[0]].name);
    } else {
        cdc_buf_puts(b, " ON DUPLICATE KEY UPDATE ");
        /* same_value=skip: the provenance is assigned first (against the
         * stored values), recording each field's outcome in a session
         * variable; then each value follows its outcome */
        if (w->same_skip) {
            prov_set(w, b, t, fl, nf);
            cdc_buf_puts(b, ", ");
        }
        for (int i = 0; i < nf; i++) {
            const char *fname = t->fields[fl[i]].name;
            char inc[200];
            snprintf(inc, sizeof(inc), "JSON_VALUE(VALUES(`_provenance`), "
                     "'$.\"%s\".r')", fname);
            qid(b, fname);
            cdc_buf_puts(b, " = IF(");
            if (w->same_skip)
                cdc_buf_printf(b, "@agw_win%d", i);
            else
                win(b, fname, inc);
            cdc_buf_puts(b, ", VALUES(");
            qid(b, fname);
            cdc_buf_puts(b, "), ");
            qid(b, fname);
            cdc_buf_puts(b, ")");
            if (i < nf - 1 || !w->same_skip)
                cdc_buf_puts(b, ", ");
        }
        if (!w->same_skip)
            prov_set(w, b, t, fl, nf);
    }
    st = prepare(w, sig.p, b->p, err);
    cdc_buf_free(&sig);
    if (!st)
        return -1;
    for (size_t r = 0; r < n; r++) {
        const mrow_t *row = rows[r];
        for (uint32_t k = 0; k < t->nkey; k++)
            bind_add(&bs, row->keyop->key[k], strlen(row->keyop->key[k]), 0);
        cdc_buf_reset(&prov);
        cdc_buf_putc(&prov, '{');
        for (int i = 0; i < nf; i++) {
            const cdc_wide_val_t *v = row->val[fl[i]];
            size_t l = 0;
            const char *s = v->isnull ? NULL
                                      : myval(&t->fields[fl[i]], v->s, v->len,
                                              vb, sizeof(vb), &l);
            bind_add(&bs, s, l, v->isnull);
            if (i)
                cdc_buf_putc(&prov, ',');
            cdc_json_string(&prov, t->fields[fl[i]].name,
                            strlen(t->fields[fl[i]].name));
            cdc_buf_putc(&prov, ':');
            cdc_wide_prov_json(&prov, row->vop[fl[i]], v);
        }
        cdc_buf_putc(&prov, '}');
        bind_add(&bs, prov.p, prov.len, 0);
    }
    rc = exec_bound(w, st, &bs, "upserting wide rows", err);
    binds_free(&bs);
    cdc_buf_free(&prov);
    return rc;
}

static int exec_upserts(myw_t *w, mrow_t *rows, size_t n, cdc_err_t *err)
{
    mrow_t **v = cdc_xcalloc(n + 1, sizeof(*v));
    size_t done = 0;
    int rc = 0;

    /* group by shape (order among shapes does not matter) */
    char *taken = cdc_xcalloc(n + 1, 1);
    while (done < n && !rc) {
        size_t first = 0, m = 0;
        while (taken[first])
            first++;
        for (size_t j = first; j < n; j++)
            if (!taken[j] && same_shape(&rows[first], &rows[j])) {
                v[m++] = &rows[j];
                taken[j] = 1;
            }
        done += m;
        for (size_t off = 0; off < m && !rc; off += ROWS_PER_STMT)
            rc = exec_chunk(w, v + off,
                            m - off > ROWS_PER_STMT ? ROWS_PER_STMT : m - off,
                            err);
    }
    free(taken);
    free(v);
    return rc;
}

/* ---- tombstones (targets with on_delete: delete) -------------------------- */

#define TOMB_KEYS 256 /* keys per statement (a short chunk repeats its last) */

/* " WHERE (k1, k2) IN ((?,?),...)" with TOMB_KEYS tuples */
static void keys_in(cdc_buf_t *b, const cdc_map_target_t *t)
{
    cdc_buf_puts(b, " WHERE (");
    for (uint32_t k = 0; k < t->nkey; k++) {
        if (k)
            cdc_buf_puts(b, ", ");
        qid(b, t->fields[t->key[k]].name);
    }
    cdc_buf_puts(b, ") IN (");
    for (int r = 0; r < TOMB_KEYS; r++) {
        cdc_buf_puts(b, r ? ",(" : "(");
        for (uint32_t k = 0; k < t->nkey; k++)
            cdc_buf_puts(b, k ? ",?" : "?");
        cdc_buf_puts(b, ")");
    }
    cdc_buf_puts(b, ")");
}

static void key_cols(cdc_buf_t *b, const cdc_map_target_t *t)
{
    for (uint32_t k = 0; k < t->nkey; k++) {
        if (k)
            cdc_buf_puts(b, ", ");
        qid(b, t->fields[t->key[k]].name);
    }
}

static void key_as(cdc_buf_t *b, const cdc_map_target_t *t)
{
    for (uint32_t k = 0; k < t->nkey; k++) {
        if (k)
            cdc_buf_puts(b, ", ");
        qid(b, t->fields[t->key[k]].name);
        cdc_buf_printf(b, " AS agw_k%u", k);
    }
}

/* statement kind 0..3 of target t: revive (insert shells), revive (drop
 * tombstones), sweep (insert tombstones), sweep (delete dead rows) */
static MYSQL_STMT *tomb_stmt(myw_t *w, const cdc_map_target_t *t, int kind,
                             cdc_err_t *err)
{
    cdc_buf_t sig = CDC_BUF_INIT, *b = &w->sql;
    char name[200];
    MYSQL_STMT *st;

    cdc_map_tombstone_table(t, name, sizeof(name));
    cdc_buf_printf(&sig, "T%d%s", kind, t->name);
    cdc_buf_reset(b);
    switch (kind) {
    case 0:
        /* shells: NULL fields, the tombstone's provenance; merged field by
         * field into a live row should one exist (racing pipelines) */
        cdc_buf_puts(b, "INSERT INTO ");
        qtable(b, t);
        cdc_buf_puts(b, " (");
        key_cols(b, t);
        for (uint32_t f = 0; f < t->nfields; f++)
            if (!t->fields[f].is_key) {
                cdc_buf_puts(b, ", ");
                qid(b, t->fields[f].name);
            }
        /* a derived table with other column names: unqualified names in
         * ON DUPLICATE KEY UPDATE are the target's alone */
        cdc_buf_puts(b, ", `_provenance`) SELECT * FROM (SELECT ");
        key_as(b, t);
        for (uint32_t f = 0; f < t->nfields; f++)
            if (!t->fields[f].is_key)
                cdc_buf_printf(b, ", NULL AS agw_v%u", f);
        cdc_buf_puts(b, ", `_provenance` AS agw_p FROM ");
        qid(b, name);
        keys_in(b, t);
        cdc_buf_puts(b, ") AS agw_s ON DUPLICATE KEY UPDATE ");
        for (uint32_t f = 0; f < t->nfields; f++) {
            char inc[200];
            if (t->fields[f].is_key)
                continue;
            snprintf(inc, sizeof(inc), "JSON_VALUE(VALUES(`_provenance`), "
                     "'$.\"%s\".r')", t->fields[f].name);
            qid(b, t->fields[f].name);
            cdc_buf_puts(b, " = IF(");
            win(b, t->fields[f].name, inc);
            cdc_buf_puts(b, ", NULL, ");
            qid(b, t->fields[f].name);
            cdc_buf_puts(b, "), ");
        }
        /* fall through to the provenance merge */
        /* FALLTHROUGH */
    case 2:
        if (kind == 2) {
            cdc_buf_puts(b, "INSERT INTO ");
            qid(b, name);
            cdc_buf_puts(b, " (");
            key_cols(b, t);
            cdc_buf_puts(b, ", `_provenance`) SELECT * FROM (SELECT ");
            key_as(b, t);
            cdc_buf_puts(b, ", `_provenance` AS agw_p FROM ");
            qtable(b, t);
            keys_in(b, t);
            cdc_buf_puts(b, " AND ");
            dead_cond(b);
            cdc_buf_puts(b, ") AS agw_s ON DUPLICATE KEY UPDATE ");
        }
        /* per field the entry of higher rank */
        cdc_buf_puts(b, "`_provenance` = JSON_SET(`_provenance`");
        for (uint32_t f = 0; f < t->nfields; f++) {
            const char *fname = t->fields[f].name;
            char inc[200];
            if (t->fields[f].is_key)
                continue;
            snprintf(inc, sizeof(inc), "JSON_VALUE(VALUES(`_provenance`), "
                     "'$.\"%s\".r')", fname);
            cdc_buf_printf(b, ", '$.\"%s\"', IF(", fname);
            win(b, fname, inc);
            cdc_buf_printf(b, ", JSON_EXTRACT(VALUES(`_provenance`), "
                           "'$.\"%s\"'), JSON_EXTRACT(`_provenance`, "
                           "'$.\"%s\"'))", fname, fname);
        }
        cdc_buf_puts(b, ")");
        break;
    case 1:
        cdc_buf_puts(b, "DELETE FROM ");
        qid(b, name);
        keys_in(b, t);
        break;
    default:
        cdc_buf_puts(b, "DELETE FROM ");
        qtable(b, t);
        keys_in(b, t);
        cdc_buf_puts(b, " AND ");
        dead_cond(b);
        break;
    }
    st = prepare(w, sig.p, b->p, err);
    cdc_buf_free(&sig);
    return st;
}

/* Before the batch (sweep 0): the tombstones of its keys come back as row
 * shells, so the upserts compare against the delete's ranks.  After it
 * (sweep 1): dead rows of its keys move to the tombstones table.  Two
 * statements each, per TOMB_KEYS keys. */
static int tomb_steps(myw_t *w, int sweep, cdc_err_t *err)
{
    for (uint32_t ti = 0; ti < w->map->ntargets; ti++) {
        const cdc_map_target_t *t = &w->map->targets[ti];
        const cdc_wide_op_t **ko;
        size_t nk = 0;
        if (!t->tombstones)
            continue;
        ko = cdc_xcalloc(w->ops.n + 1, sizeof(*ko));
        for (uint32_t i = 0; i < w->ops.n; i++) {
            const cdc_wide_op_t *op = &w->ops.ops[i];
            if (op->target == t && (op->kind == CDC_WIDE_UPSERT ||
                                    op->kind == CDC_WIDE_DELETE))
                ko[nk++] = op;
        }
        for (size_t off = 0; off < nk; off += TOMB_KEYS) {
            for (int step = 0; step < 2; step++) {
                MYSQL_STMT *st = tomb_stmt(w, t, 2 * sweep + step, err);
                binds_t bs = {0};
                int rc;
                if (!st) {
                    free(ko);
                    return -1;
                }
                for (size_t r = 0; r < TOMB_KEYS; r++) {
                    const cdc_wide_op_t *op =
                        ko[off + r < nk ? off + r : nk - 1];
                    for (uint32_t k = 0; k < t->nkey; k++)
                        bind_add(&bs, op->key[k], strlen(op->key[k]), 0);
                }
                rc = exec_bound(w, st, &bs, sweep ? "moving dead rows to the "
                                "tombstones table" : "reviving tombstones of "
                                "the batch's keys", err);
                binds_free(&bs);
                if (rc) {
                    free(ko);
                    return -1;
                }
            }
        }
        free(ko);
    }
    return 0;
}

/* ---- tombstone retention (mysql_sink.tombstone_keep) --------------------- */


/* "the newest deletion of tombstone alias is older than cutoff (µs)" */
static void old_cond(cdc_buf_t *b, const char *alias, int64_t cutoff)
{
    cdc_buf_printf(b, "(SELECT MAX(agw_j.t) FROM JSON_TABLE(JSON_EXTRACT("
                   "%s.`_provenance`, '$.*.t'), '$[*]' COLUMNS (t BIGINT PATH "
                   "'$')) AS agw_j) < %" PRId64, alias, cutoff);
}

/* Delete up to CDC_WIDE_PURGE_ROWS old tombstones of t in one short transaction.
 * The keys come from a derived table (one consistent read); the condition
 * is checked again on the locked row, so a tombstone that a racing
 * pipeline merged with a newer deletion meanwhile stays. */
static int purge_target(void *ctx, const cdc_map_target_t *t, int64_t cutoff,
                        long *n, cdc_err_t *err)
{
    myw_t *w = ctx;
    cdc_buf_t *b = &w->sql;
    char name[200];

    cdc_map_tombstone_table(t, name, sizeof(name));
    cdc_buf_reset(b);
    cdc_buf_puts(b, "DELETE agw_tb FROM ");
    qid(b, name);
    cdc_buf_puts(b, " AS agw_tb JOIN (SELECT ");
    key_as(b, t);
    cdc_buf_puts(b, " FROM ");
    qid(b, name);
    cdc_buf_puts(b, " AS agw_o WHERE ");
    old_cond(b, "agw_o", cutoff);
    cdc_buf_printf(b, " LIMIT %d) AS agw_s ON ", CDC_WIDE_PURGE_ROWS);
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_puts(b, k ? " AND agw_tb." : "agw_tb.");
        qid(b, t->fields[t->key[k]].name);
        cdc_buf_printf(b, " = agw_s.agw_k%u", k);
    }
    cdc_buf_puts(b, " WHERE ");
    old_cond(b, "agw_tb", cutoff);
    if (q(w, "START TRANSACTION", "begin", err))
        return -1;
    if (mysql_real_query(w->m, b->p, b->len)) {
        myerr(w, "purging old tombstones", mysql_error(w->m),
              mysql_errno(w->m), err);
        mysql_rollback(w->m);
        return -1;
    }
    *n = (long)mysql_affected_rows(w->m);
    if (q(w, "COMMIT", "commit", err)) {
        mysql_rollback(w->m);
        return -1;
    }
    return 0;
}

static int exec_lookup(myw_t *w, const cdc_wide_op_t *op, cdc_err_t *err)
{
    const cdc_map_target_t *t = op->target;
    cdc_buf_t sig = CDC_BUF_INIT, *b = &w->sql, prov = CDC_BUF_INIT;
    binds_t bs = {0};
    MYSQL_STMT *st;
    char vb[64];
    int rc;

    cdc_buf_printf(&sig, "L%s", op->mapping->name);
    for (uint32_t i = 0; i < op->nvals; i++)
        cdc_buf_printf(&sig, ",%u", op->vals[i].field);
    cdc_buf_reset(b);
    cdc_buf_puts(b, "UPDATE ");
    qtable(b, t);
    cdc_buf_puts(b, " SET ");
    /* value = IF(win, ?, value) ... then provenance last */
    for (uint32_t i = 0; i < op->nvals; i++) {
        const cdc_wide_val_t *v = &op->vals[i];
        const cdc_map_field_t *f = &t->fields[v->field];
        size_t l = 0;
        const char *s = v->isnull ? NULL
                                  : myval(f, v->s, v->len, vb, sizeof(vb), &l);
        qid(b, f->name);
        cdc_buf_puts(b, " = IF(");
        win(b, f->name, "?");
        bind_add(&bs, v->rank, strlen(v->rank), 0);
        cdc_buf_puts(b, ", ?, ");
        bind_add(&bs, s, l, v->isnull);
        qid(b, f->name);
        cdc_buf_puts(b, "), ");
    }
    cdc_buf_puts(b, "`_provenance` = JSON_SET(`_provenance`");
    for (uint32_t i = 0; i < op->nvals; i++) {
        const cdc_wide_val_t *v = &op->vals[i];
        const cdc_map_field_t *f = &t->fields[v->field];
        cdc_buf_printf(b, ", '$.\"%s\"', IF(", f->name);
        win(b, f->name, "?");
        bind_add(&bs, v->rank, strlen(v->rank), 0);
        cdc_buf_printf(b, ", JSON_EXTRACT(?, '$'), JSON_EXTRACT(`_provenance`, "
                       "'$.\"%s\"'))", f->name);
        cdc_buf_reset(&prov);
        cdc_wide_prov_json(&prov, op, v);
        bind_add(&bs, prov.p, prov.len, 0);
    }
    cdc_buf_puts(b, ") WHERE ");
    for (uint32_t k = 0; k < op->nkey; k++) {
        qid(b, t->fields[op->keyfields[k]].name);
        cdc_buf_puts(b, " = ? AND ");
        bind_add(&bs, op->key[k], strlen(op->key[k]), 0);
    }
    if (t->tombstones) {
        /* a dead row waiting for the sweep is not there any more */
        cdc_buf_puts(b, "NOT ");
        dead_cond(b);
        cdc_buf_puts(b, " AND ");
    }
    cdc_buf_puts(b, "1");
    st = prepare(w, sig.p, b->p, err);
    cdc_buf_free(&sig);
    rc = st ? exec_bound(w, st, &bs, "updating rows of a dimension change",
                         err)
            : -1;
    binds_free(&bs);
    cdc_buf_free(&prov);
    return rc;
}

/* ---- batches ------------------------------------------------------------- */

/* the batch's dead letters, in its transaction */
static int write_dead(myw_t *w, cdc_err_t *err)
{
    binds_t bs = {0};
    MYSQL_STMT *st;
    int rc = 0;

    if (!w->b.dead.n)
        return 0;
    cdc_buf_reset(&w->sql);
    cdc_buf_puts(&w->sql, "INSERT INTO ");
    qid(&w->sql, w->dl_table);
    cdc_buf_puts(&w->sql, " (pipeline, source, source_table, op, position, "
                 "commit_us, error, change_data) VALUES (?,?,?,?,?,?,?,?)");
    st = prepare(w, "dead_letter", w->sql.p, err);
    for (size_t i = 0; st && !rc && i < w->b.dead.n; i++) {
        const cdc_dl_entry_t *e = &w->b.dead.v[i];
        const char *v[8] = {w->pipeline, w->source, e->table, e->op,
                            e->position, NULL, e->error, e->change};
        char cu[24];
        snprintf(cu, sizeof(cu), "%" PRId64, e->commit_us);
        v[5] = cu;
        binds_reset(&bs);
        for (int k = 0; k < 8; k++)
            bind_add(&bs, v[k], strlen(v[k]), 0);
        rc = exec_bound(w, st, &bs, "writing a dead letter", err);
    }
    binds_free(&bs);
    return st ? rc : -1;
}

/* `dead-letter retry`: the rows whose changes the batch applies */
static int delete_retried(myw_t *w, cdc_err_t *err)
{
    cdc_buf_reset(&w->sql);
    cdc_buf_puts(&w->sql, "DELETE FROM ");
    qid(&w->sql, w->dl_table);
    cdc_buf_puts(&w->sql, " WHERE id IN (");
    for (size_t i = 0; i < w->b.nretry; i++)
        cdc_buf_printf(&w->sql, "%s%" PRId64, i ? "," : "", w->b.retry_ids[i]);
    cdc_buf_putc(&w->sql, ')');
    return q(w, w->sql.p, "deleting retried dead letters", err);
}

static int apply_batch(myw_t *w, cdc_err_t *err)
{
    uint32_t run = 0;
    binds_t bs = {0};
    MYSQL_STMT *st;
    char commit[32], txns[32], changes[32];
    const char *pos;

    if (w->b.frag_dup) {
        /* a fragmented transaction whose end the offsets table holds
         * (applied before a crash): what was applied of it again goes */
        CDC_WARN(FAC, "transaction ending at %s is already in the target "
                 "database; its fragments are rolled back", w->b.stored);
        if (w->b.frag_open)
            mysql_rollback(w->m);
        w->b.frag_open = w->b.in_frag = 0;
        return 0;
    }
    if (!w->b.frag_open) {
        if (q(w, "START TRANSACTION", "begin", err) || read_offset(w, 1, err))
            goto fail;
        if (cdc_wide_batch_already_applied(&w->b, FAC))
            return q(w, "COMMIT", "commit", err);
        /* loop prevention: the marker row first, so a binlog source
         * knows the transaction is ours from its first rows event (it
         * may hand a big one out in fragments before its end) */
        if (w->marker) {
            st = prepare(w, "marker", "INSERT INTO autoglm_cdc_marker "
                         "(pipeline, n) VALUES (?, 1) ON DUPLICATE KEY "
                         "UPDATE n = n + 1", err);
            if (!st)
                goto fail;
            bind_add(&bs, w->pipeline, strlen(w->pipeline), 0);
            if (exec_bound(w, st, &bs, "writing the marker row", err))
                goto fail;
            binds_free(&bs);
            memset(&bs, 0, sizeof(bs));
        }
    }
    /* tombstones of the batch's keys back as row shells */
    if (tomb_steps(w, 0, err))
        goto fail;
    for (uint32_t i = 0; i <= w->ops.n; i++) {
        const cdc_wide_op_t *op = i < w->ops.n ? &w->ops.ops[i] : NULL;
        /* a row delete is an upsert of deletions */
        if (op && (op->kind == CDC_WIDE_UPSERT || op->kind == CDC_WIDE_DELETE))
            continue;
        if (i > run && apply_upserts(w, run, i, err))
            goto fail;
        run = i + 1;
        if (op && exec_lookup(w, op, err))
            goto fail;
    }
    /* dead rows of the batch's keys to the tombstones */
    if (tomb_steps(w, 1, err) || (!w->b.isolate && write_dead(w, err)))
        goto fail;
    if (w->b.retry || w->b.isolate) {
        /* dead-letter retry: the applied rows go; one change of a batch
         * the database refused: no offset yet (a dry run: nothing) */
        if ((w->b.retry && delete_retried(w, err)) ||
            q(w, w->b.isolate == 2 ? "ROLLBACK" : "COMMIT", "commit", err))
            goto fail;
        return 0;
    }
    if (w->b.in_frag) {
        /* more fragments of this transaction follow: it stays open */
        w->b.frag_open = 1;
        return 0;
    }
    st = prepare(w, "offsets",
                 "INSERT INTO autoglm_cdc_offsets (pipeline, source, position, "
                 "pos_key, commit_us, txns, changes) VALUES (?,?,?,?,?,?,?) "
                 "ON DUPLICATE KEY UPDATE source = VALUES(source), position = "
                 "VALUES(position), pos_key = VALUES(pos_key), commit_us = "
                 "VALUES(commit_us), txns = txns + VALUES(txns), changes = "
                 "changes + VALUES(changes), updated_at = CURRENT_TIMESTAMP(6)",
                 err);
    if (!st)
        goto fail;
    snprintf(commit, sizeof(commit), "%" PRId64, w->b.batch_commit_us);
    snprintf(txns, sizeof(txns), "%zu", w->b.batch_ends);
    snprintf(changes, sizeof(changes), "%" PRIu64, w->b.batch_changes);
    pos = cdc_pos_str(&w->b.batch_cpos);
    bind_add(&bs, w->pipeline, strlen(w->pipeline), 0);
    bind_add(&bs, w->source, strlen(w->source), 0);
    bind_add(&bs, pos, strlen(pos), 0);
    bind_add(&bs, w->b.batch_pos, strlen(w->b.batch_pos), 0);
    bind_add(&bs, commit, strlen(commit), 0);
    bind_add(&bs, txns, strlen(txns), 0);
    bind_add(&bs, changes, strlen(changes), 0);
    if (exec_bound(w, st, &bs, "storing the offset", err))
        goto fail;
    binds_free(&bs);
    if (q(w, "COMMIT", "commit", err))
        goto fail;
    w->b.frag_open = 0;
    cdc_wide_batch_committed(&w->b);
    return 0;
fail:
    binds_free(&bs);
    mysql_rollback(w->m);
    w->b.frag_open = 0;
    return -1;
}

/* 1213 deadlock, 1205 lock wait timeout: retry the transaction */
static int my_retriable(const cdc_err_t *e)
{
    return strstr(e->detail, "error 1213") || strstr(e->detail, "error 1205");
}

static int apply_cb(void *w, cdc_err_t *err)
{
    return apply_batch(w, err);
}

static int flush_batch(myw_t *w, cdc_err_t *err)
{
    return cdc_wide_batch_apply(&w->b, &w->ops, apply_cb, my_retriable, w,
                                err);
}

static int write_flush(void *ctx, cdc_err_t *err)
{
    return flush_batch(ctx, err);
}

static void write_rollback(void *ctx)
{
    mysql_rollback(((myw_t *)ctx)->m);
}

static int myw_write(cdc_sink_t *snk, cdc_txn_t *tx, cdc_err_t *err)
{
    myw_t *w = (myw_t *)snk;
    return cdc_wide_batch_write(&w->b, w->map, w->source, &w->ops, tx,
                                write_flush, write_rollback, w, FAC, err);
}

static int myw_poll(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    myw_t *w = (myw_t *)snk;
    if (cdc_wide_batch_due(&w->b, timeout_ms) && flush_batch(w, err))
        return -1;
    cdc_wide_purge_due(&w->purge, w->map, w->source, purge_target, w, FAC);
    return 0;
}

static int myw_flush(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    (void)timeout_ms;
    return flush_batch((myw_t *)snk, err);
}

typedef struct dl_rows {
    char **cell; /* rows x CDC_DLC_N */
    size_t n;
} dl_rows_t;

static const char *dl_get(void *ctx, size_t row, int col)
{
    return ((dl_rows_t *)ctx)->cell[row * CDC_DLC_N + (size_t)col];
}

static int myw_dead_letter(cdc_sink_t *snk, const char *action, FILE *out,
                           cdc_err_t *err)
{
    myw_t *w = (myw_t *)snk;
    dl_rows_t rows = {0};
    char esc[512];
    MYSQL_RES *res;
    MYSQL_ROW row;
    int rc;

    if (create_dl(w, err))
        return err->code;
    mysql_real_escape_string(w->m, esc, w->pipeline,
                             (unsigned long)strnlen(w->pipeline, 200));
    cdc_buf_reset(&w->sql);
    cdc_buf_puts(&w->sql, "SELECT id, DATE_FORMAT(CONVERT_TZ(created_at, "
                 "@@session.time_zone, '+00:00'), '%Y-%m-%dT%H:%i:%sZ'), "
                 "source_table, op, position, error, change_data FROM ");
    qid(&w->sql, w->dl_table);
    cdc_buf_printf(&w->sql, " WHERE pipeline = '%s' ORDER BY id", esc);
    if (mysql_real_query(w->m, w->sql.p, w->sql.len) ||
        !(res = mysql_store_result(w->m))) {
        myerr(w, "reading the dead letters", mysql_error(w->m),
              mysql_errno(w->m), err);
        return err->code;
    }
    rows.cell = cdc_xcalloc(mysql_num_rows(res) * CDC_DLC_N + 1,
                            sizeof(char *));
    while ((row = mysql_fetch_row(res))) {
        for (int c = 0; c < CDC_DLC_N; c++)
            rows.cell[rows.n * CDC_DLC_N + (size_t)c] =
                cdc_xstrdup(row[c] ? row[c] : "");
        rows.n++;
    }
    mysql_free_result(res);
    rc = cdc_wide_dead_letter(&w->b, w->map, w->source, &w->ops, action, out,
                              rows.n, dl_get, &rows, apply_cb, w, err);
    for (size_t i = 0; i < rows.n * CDC_DLC_N; i++)
        free(rows.cell[i]);
    free(rows.cell);
    return rc;
}

static void myw_destroy(cdc_sink_t *snk)
{
    myw_t *w = (myw_t *)snk;
    if (!w)
        return;
    cdc_wide_batch_free(&w->b, FAC);
    for (int i = 0; i < w->nstmts; i++) {
        mysql_stmt_close(w->stmts[i].st);
        free(w->stmts[i].sig);
    }
    free(w->stmts);
    if (w->m)
        mysql_close(w->m);
    cdc_map_destroy(w->map);
    cdc_wide_ops_free(&w->ops);
    cdc_buf_free(&w->sql);
    free(w->pipeline);
    free(w->source);
    free(w);
}

const cdc_sink_ops_t cdc_sink_mysql_ops = {
    .name = "mysql",
    .abi = CDC_PLUGIN_ABI,
    .create = myw_create,
    .write = myw_write,
    .poll = myw_poll,
    .flush = myw_flush,
    .destroy = myw_destroy,
    .dead_letter = myw_dead_letter,
    .own_thread = 1,
};
