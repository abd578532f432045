/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile_target.c - the target database: the connection and its one
 * transaction (with --repair the lock taken before the sources are read),
 * and the SQL and COPY helpers the comparison and the repair share.
 */
#include "cdc/commands/reconcile_int.h"

int rc_pg_ok(pgx_t *x, PGresult *res, const char *what, cdc_err_t *err)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ||
        st == PGRES_COPY_IN)
        return 0;
    cdc_err_set(err, CDC_EXIT_FAIL, 0, "reconcile: %s: %s", what,
                PQresultErrorMessage(res));
    (void)x;
    PQclear(res);
    return -1;
}

int rc_pg_run(pgx_t *x, const char *sql, cdc_err_t *err)
{
    PGresult *res = PQexec(x->c, sql);
    if (rc_pg_ok(x, res, sql, err))
        return -1;
    PQclear(res);
    return 0;
}

void rc_ident(pgx_t *x, cdc_buf_t *b, const char *name)
{
    char *q = PQescapeIdentifier(x->c, name, strlen(name));
    cdc_buf_puts(b, q ? q : "\"\"");
    PQfreemem(q);
}

void rc_lit(pgx_t *x, cdc_buf_t *b, const char *s)
{
    char *q = PQescapeLiteral(x->c, s, strlen(s));
    cdc_buf_puts(b, q ? q : "''");
    PQfreemem(q);
}

/* COPY text format of one value */
void rc_copy_val(cdc_buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        switch (ch) {
        case '\\': cdc_buf_puts(b, "\\\\"); break;
        case '\t': cdc_buf_puts(b, "\\t"); break;
        case '\n': cdc_buf_puts(b, "\\n"); break;
        case '\r': cdc_buf_puts(b, "\\r"); break;
        default: cdc_buf_putc(b, ch);
        }
    }
}

void rc_put_key(rc_t *rc, cdc_buf_t *b, const rc_row_t *r)
{
    for (uint32_t k = 0; k < rc->t->nkey; k++) {
        rc_copy_val(b, r->key[k], strlen(r->key[k]));
        cdc_buf_putc(b, '\t');
    }
}

/* key equality of aliases a and b over the target's key columns */
void rc_key_eq(rc_t *rc, pgx_t *x, cdc_buf_t *b, const char *a,
               const char *c)
{
    for (uint32_t k = 0; k < rc->t->nkey; k++) {
        if (k)
            cdc_buf_puts(b, " AND ");
        cdc_buf_printf(b, "%s.", a);
        rc_ident(x, b, rc->t->fields[rc->t->key[k]].name);
        cdc_buf_printf(b, " = %s.", c);
        rc_ident(x, b, rc->t->fields[rc->t->key[k]].name);
    }
}

/* "a.k1, a.k2": the target's key columns of alias a */
void rc_key_cols(rc_t *rc, pgx_t *x, cdc_buf_t *b, const char *a)
{
    for (uint32_t k = 0; k < rc->t->nkey; k++) {
        cdc_buf_printf(b, k ? ", %s." : "%s.", a);
        rc_ident(x, b, rc->t->fields[rc->t->key[k]].name);
    }
}

/* The schema-qualified name of a side table of the target. */
void rc_side_name(rc_t *rc, pgx_t *x, cdc_buf_t *b, const char *name)
{
    const cdc_map_target_t *t = rc->t;
    rc_ident(x, b, t->schema && *t->schema ? t->schema : "public");
    cdc_buf_putc(b, '.');
    rc_ident(x, b, name);
}

/* COPY into a shadow table in pieces: begin, put (and empty) the lines
 * in data as they fill up, end. */
int rc_copy_begin(pgx_t *x, const char *sql, cdc_err_t *err)
{
    PGresult *res = PQexec(x->c, sql);
    if (rc_pg_ok(x, res, sql, err))
        return -1;
    PQclear(res);
    return 0;
}

int rc_copy_put(pgx_t *x, cdc_buf_t *data, cdc_err_t *err)
{
    if (data->len && PQputCopyData(x->c, data->p, (int)data->len) != 1)
        return cdc_err_set(err, CDC_EXIT_FAIL, 0, "reconcile: COPY into a "
                           "shadow table: %s", PQerrorMessage(x->c));
    cdc_buf_reset(data);
    return 0;
}

int rc_copy_end(pgx_t *x, cdc_err_t *err)
{
    PGresult *res;

    if (PQputCopyEnd(x->c, NULL) != 1)
        return cdc_err_set(err, CDC_EXIT_FAIL, 0, "reconcile: COPY into a "
                           "shadow table: %s", PQerrorMessage(x->c));
    res = PQgetResult(x->c);
    if (rc_pg_ok(x, res, "COPY into a shadow table", err))
        return -1;
    PQclear(res);
    while ((res = PQgetResult(x->c)))
        PQclear(res);
    return 0;
}

void rc_put_text(cdc_buf_t *b, const char *s, int last)
{
    if (s)
        rc_copy_val(b, s, strlen(s));
    else
        cdc_buf_puts(b, "\\N");
    cdc_buf_putc(b, last ? '\n' : '\t');
}

/* The declared type of column col of qt (malloc'd), NULL with err. */
char *rc_col_type(pgx_t *x, const char *qt, const char *col,
                  cdc_err_t *err)
{
    cdc_buf_t q = CDC_BUF_INIT;
    PGresult *res;
    char *tp = NULL;

    cdc_buf_puts(&q, "SELECT format_type(atttypid, atttypmod) FROM "
                     "pg_attribute WHERE NOT attisdropped AND attrelid = ");
    rc_lit(x, &q, qt);
    cdc_buf_puts(&q, "::regclass AND attname = ");
    rc_lit(x, &q, col);
    res = PQexec(x->c, q.p);
    cdc_buf_free(&q);
    if (rc_pg_ok(x, res, "the column types", err))
        return NULL;
    if (PQntuples(res) != 1)
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "reconcile: %s has no column %s (the mapping declares "
                    "it): create it or fix the mapping",
                    qt, col);
    else
        tp = cdc_xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return tp;
}

void rc_tgt_close(tgt_t *g)
{
    cdc_buf_free(&g->qt);
    cdc_buf_free(&g->qread);
    cdc_buf_free(&g->x.qs);
    cdc_buf_free(&g->cols);
    cdc_buf_free(&g->keys);
    cdc_buf_free(&g->x.sql);
    if (g->x.c)
        PQfinish(g->x.c);
    memset(g, 0, sizeof(*g));
}

/* --repair of a target with side tables: the wide table and its side
 * tables, locked against writes together.  A sink batch takes them in
 * its own order (the wide rows, then a side table, then the wide rows
 * again), so waiting for one while holding another could deadlock: each
 * attempt waits at most 200 ms, and a failed one gives back what it got
 * (a savepoint) and tries again, for up to five minutes. */
static int lock_all(rc_t *rc, pgx_t *x, const char *qt, cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t q = CDC_BUF_INIT;
    char name[256];
    int r = -1;

    cdc_buf_printf(&q, "LOCK TABLE %s", qt);
    if (t->ngroups) {
        cdc_map_candidates_table(t, name, sizeof(name));
        cdc_buf_puts(&q, ", ");
        rc_side_name(rc, x, &q, name);
    }
    if (t->aggregates) {
        cdc_map_contrib_table(t, name, sizeof(name));
        cdc_buf_puts(&q, ", ");
        rc_side_name(rc, x, &q, name);
    }
    if (cdc_pgv_target(t)) {
        cdc_pgv_table(t, name, sizeof(name));
        cdc_buf_puts(&q, ", ");
        rc_side_name(rc, x, &q, name);
    }
    cdc_buf_puts(&q, " IN EXCLUSIVE MODE");
    /* and the advisory locks by which the sinks' batches take turns
     * recomputing groups (the 256 hash buckets of the keys, in order, as
     * sinks/pg_wide_group.c takes them) and aggregates (one per target
     * when several sources contribute, sinks/pg_wide_agg.c): the repair's
     * recomputation takes them too, and a batch that got one before it
     * waits for the tables held here (a deadlock, one side aborted) */
    if (t->ngroups) {
        cdc_buf_puts(&q, "; ");
        cdc_pgw_groups_lock_sql(&q, 1);
    }
    if (t->aggregates && t->agg_sources > 1) {
        cdc_buf_puts(&q, "; ");
        cdc_pgw_agg_lock_sql(x->c, t, &q);
    }
    if (rc_pg_run(x, "SET LOCAL lock_timeout = '200ms'", err))
        goto out;
    for (int i = 0;; i++) {
        PGresult *res;
        const char *st;
        if (rc_pg_run(x, "SAVEPOINT rc_lock", err))
            goto out;
        res = PQexec(x->c, q.p);
        if (PQresultStatus(res) == PGRES_COMMAND_OK ||
            PQresultStatus(res) == PGRES_TUPLES_OK) {
            PQclear(res);
            break;
        }
        st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (!st || strcmp(st, "55P03") || i >= 1500) {
            rc_pg_ok(x, res, q.p, err);
            goto out;
        }
        PQclear(res);
        if (rc_pg_run(x, "ROLLBACK TO SAVEPOINT rc_lock", err))
            goto out;
        {
            struct timespec ts = {0, (50 + (i % 7) * 10) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    r = rc_pg_run(x, "RELEASE SAVEPOINT rc_lock; SET LOCAL lock_timeout = 0",
               err);
out:
    cdc_buf_free(&q);
    return r;
}

/* Connect and begin.  With --repair the table is locked against writes
 * (the sinks wait) before the sources are read and until the repair
 * commits: every change the table holds then came from a source change
 * the snapshot already sees, so a repaired value is never older than the
 * change whose rank it keeps (a change still in flight carries a greater
 * rank and overrides it when it arrives). */
int rc_tgt_open(rc_t *rc, const cdc_conf_t *conf, int repair, tgt_t *g,
                cdc_err_t *err)
{
    const char *dsn = cdc_conf_get(conf, "postgres_sink.dsn", NULL);
    const cdc_map_target_t *t = rc->t;
    pgx_t *x = &g->x;

    if (!dsn || !*dsn)
        return cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                           "reconcile: postgres_sink.dsn is not set: the "
                           "wide table is read from the pipeline's "
                           "PostgreSQL sink (the MySQL wide sink is not "
                           "supported yet)");
    x->c = PQconnectdb(dsn);
    if (PQstatus(x->c) != CONNECTION_OK)
        return cdc_err_set(err, CDC_EXIT_UNAVAILABLE, 0,
                           "reconcile: cannot connect to the target "
                           "database (postgres_sink.dsn): %s",
                           PQerrorMessage(x->c));
    cdc_pg_log_notices(x->c, FAC);
    if (t->schema && *t->schema) {
        rc_ident(x, &g->qt, t->schema);
        cdc_buf_putc(&g->qt, '.');
    }
    rc_ident(x, &g->qt, t->table);
    for (uint32_t k = 0; k < t->nkey; k++) {
        if (k)
            cdc_buf_puts(&g->keys, ", ");
        rc_ident(x, &g->keys, t->fields[t->key[k]].name);
    }
    cdc_buf_puts(&g->cols, g->keys.p);
    for (uint32_t f = 0; f < t->nfields; f++) {
        if (t->fields[f].is_key)
            continue;
        cdc_buf_puts(&g->cols, ", ");
        rc_ident(x, &g->cols, t->fields[f].name);
    }
    if (rc_pg_run(x, repair ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE "
                                     "READ READ WRITE",
               err))
        return -1;
    cdc_buf_reset(&x->sql);
    /* the table must exist; with --repair, lock it */
    if (repair && (t->ngroups || t->aggregates || cdc_pgv_target(t))) {
        if (lock_all(rc, x, g->qt.p, err)) {
            if (strstr(err->msg, "does not exist"))
                err->code = CDC_EXIT_CONFIG;
            return -1;
        }
    } else {
        if (repair)
            cdc_buf_printf(&x->sql, "LOCK TABLE %s IN EXCLUSIVE MODE",
                           g->qt.p);
        else
            cdc_buf_printf(&x->sql, "SELECT 1 FROM %s LIMIT 0", g->qt.p);
        if (rc_pg_run(x, x->sql.p, err)) {
            if (strstr(err->msg, "does not exist"))
                err->code = CDC_EXIT_CONFIG;
            return -1;
        }
    }
    g->open = 1;
    /* the table's form: a _provenance column, or rank columns */
    {
        PGresult *res;
        char name[200];
        cdc_buf_reset(&x->sql);
        cdc_buf_puts(&x->sql, "SELECT EXISTS (SELECT 1 FROM pg_attribute "
                              "WHERE NOT attisdropped AND attrelid = ");
        rc_lit(x, &x->sql, g->qt.p);
        cdc_buf_puts(&x->sql, "::regclass AND attname = '_provenance')");
        res = PQexec(x->c, x->sql.p);
        if (rc_pg_ok(x, res, "the table's columns", err))
            return -1;
        x->rank = strcmp(PQgetvalue(res, 0, 0), "t") != 0;
        PQclear(res);
        rc_ident(x, &x->qs, t->schema && *t->schema ? t->schema : "public");
        if (x->rank) {
            snprintf(name, sizeof(name), "%s_provenance", t->table);
            cdc_buf_printf(&g->qread, "%s.", x->qs.p);
            rc_ident(x, &g->qread, name);
            cdc_buf_puts(&g->qread, "()");
        } else
            cdc_buf_puts(&g->qread, g->qt.p);
    }
    return 0;
}
