/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile.c - `autoglm-cdc reconcile -c pipeline.yaml --target T
 * [--repair] [--json] [PIPELINE.yaml...]` (issue 19 item 5).
 *
 * Recomputes what the PostgreSQL wide table of target T should hold from
 * the sources' current rows and prints the difference:
 *
 *   1. every pipeline given (the -c one and each operand) names one
 *      source (application_id); every source that some mapping of T reads
 *      must be among them.  Each source's tables are read through its
 *      snapshot driver (cdc_snap_find, the drivers of `backfill`) as op 'r'
 *      rows and mapped with the same mapping files (cdc_map_change): the
 *      same ranks a backfill would give.
 *   2. per wide row and field the best candidate of every source is kept;
 *      the recomputed value is the best of them (the rank rules), and a
 *      source's candidate is *admissible* when it ranks level with the
 *      winner before the commit time (rule latest: every source; priority:
 *      the same priority; weighted: the same weight), because a snapshot
 *      has no commit times and cannot tell which of those a stream made
 *      win.
 *   3. the candidates go to a shadow table (temporary, in the target
 *      database, ON COMMIT DROP), and SQL compares it with T in one
 *      transaction, with PostgreSQL's own types doing the comparison.
 *      A stored field is consistent when it equals the recomputed value,
 *      or the admissible candidate of the source its provenance names, or
 *      it is a NULL that a source whose row is gone wrote (a delete,
 *      on_delete: clear).  A stored row that no source row makes is extra
 *      unless every field is NULL (the shell that clear-deletes leave).
 *   4. --repair, in the same transaction with T locked against writes
 *      (EXCLUSIVE: readers go on) from before the sources are read until
 *      the commit (tgt_open): extra rows are deleted, missing rows
 *      inserted with the recomputed values and their snapshot ranks, and a
 *      differing field takes the value of its stored source's candidate
 *      keeping the stored rank (the change that won it is real; only the
 *      value was altered), or else the recomputed value with its rank (a
 *      snapshot rank: any later streamed change wins over it, as after a
 *      backfill).
 *
 * Exit: 0 no drift (or, with --repair, all of it repaired), 1 drift
 * found, errors with their codes (69 a database unreachable, 78 a
 * configuration or mapping error, 2 usage).
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/backfill.h"
#include "cdc/buf.h"
#include "cdc/commands/commands.h"
#include "cdc/envelope.h"
#include "cdc/log.h"
#include "cdc/util.h"
#include "connectors/pg/pgutil.h"
#include "mappings/map.h"
#include "sinks/pg_rank.h"

#define FAC "reconcile"
#define RC_CHUNK 50000u

/* One source's best candidate for one field of one row. */
typedef struct rc_cell {
    int set, isnull;
    char *val;
    size_t len;
    char rank[CDC_MAP_RANK_LEN + 1];
    int64_t t;
    const char *row; /* the source row: "db.table[pk,...]" (rc_t.strs) */
} rc_cell_t;

typedef struct rc_row {
    char *keytext; /* key texts joined by \x1f (index key) */
    char **key;
    rc_cell_t **blk; /* per source: target->nfields cells, NULL until the
                        source offers a value */
} rc_row_t;

typedef struct rc {
    const cdc_map_t *map;
    const cdc_map_target_t *t;
    rc_row_t **rows;
    size_t n, cap;
    cdc_strix_t ix;
    /* lookup operations, applied after every row is known: deep copies
     * (an operation's texts may point into its transaction) */
    cdc_wide_op_t *lk;
    const char **lkrows;    /* the source row of each */
    size_t nlk, caplk;
    cdc_strix_t pool;       /* source row texts, each kept once */
    char **strs;
    size_t nstrs, capstrs;
    uint64_t read;          /* source rows read */
} rc_t;

static int src_index(const cdc_map_t *m, const char *id)
{
    for (uint32_t i = 0; i < m->nsources; i++)
        if (!strcmp(m->sources[i].id, id))
            return (int)i;
    return -1;
}

static rc_row_t *rc_find(rc_t *rc, const char *const *key, int create)
{
    cdc_buf_t kt = CDC_BUF_INIT;
    rc_row_t *r;
    int i;

    for (uint32_t k = 0; k < rc->t->nkey; k++) {
        if (k)
            cdc_buf_putc(&kt, '\x1f');
        cdc_buf_puts(&kt, key[k]);
    }
    cdc_buf_putc(&kt, 0); /* an empty single key is a key too */
    i = cdc_strix_get(&rc->ix, kt.p);
    if (i >= 0 || !create) {
        cdc_buf_free(&kt);
        return i >= 0 ? rc->rows[i] : NULL;
    }
    r = cdc_xcalloc(1, sizeof(*r));
    r->keytext = kt.p;
    r->key = cdc_xcalloc(rc->t->nkey, sizeof(char *));
    for (uint32_t k = 0; k < rc->t->nkey; k++)
        r->key[k] = cdc_xstrdup(key[k]);
    r->blk = cdc_xcalloc(rc->map->nsources, sizeof(*r->blk));
    if (rc->n == rc->cap) {
        rc->cap = rc->cap ? rc->cap * 2 : 256;
        rc->rows = cdc_xrealloc(rc->rows, rc->cap * sizeof(*rc->rows));
    }
    rc->rows[rc->n] = r;
    cdc_strix_put(&rc->ix, r->keytext, (int)rc->n);
    rc->n++;
    return r;
}

/* Cell of field f from source s, NULL when s offered nothing to r. */
static rc_cell_t *cell(const rc_row_t *r, int s, uint32_t f)
{
    return r->blk[s] ? &r->blk[s][f] : NULL;
}

static const char *intern(rc_t *rc, const char *text)
{
    int i = cdc_strix_get(&rc->pool, text);
    if (i >= 0)
        return rc->strs[i];
    if (rc->nstrs == rc->capstrs) {
        rc->capstrs = rc->capstrs ? rc->capstrs * 2 : 1024;
        rc->strs = cdc_xrealloc(rc->strs, rc->capstrs * sizeof(char *));
    }
    rc->strs[rc->nstrs] = cdc_xstrdup(text);
    cdc_strix_put(&rc->pool, rc->strs[rc->nstrs], (int)rc->nstrs);
    return rc->strs[rc->nstrs++];
}

static void rc_offer(rc_t *rc, rc_row_t *r, const cdc_wide_op_t *op,
                     const cdc_wide_val_t *v, const char *rowtext)
{
    int s = src_index(rc->map, op->source);
    rc_cell_t *c;

    if (s < 0)
        return;
    if (!r->blk[s])
        r->blk[s] = cdc_xcalloc(rc->t->nfields, sizeof(rc_cell_t));
    c = &r->blk[s][v->field];
    if (c->set && strcmp(v->rank, c->rank) <= 0)
        return;
    free(c->val);
    c->set = 1;
    c->isnull = v->isnull;
    c->val = v->isnull ? NULL : cdc_xstrndup(v->s, v->len);
    c->len = v->len;
    memcpy(c->rank, v->rank, sizeof(c->rank));
    c->t = op->commit_us;
    c->row = intern(rc, rowtext ? rowtext : "");
}

/* The winning source of field f of r (-1: none). */
static int rc_winner(const rc_t *rc, const rc_row_t *r, uint32_t f)
{
    int w = -1;
    for (uint32_t s = 0; s < rc->map->nsources; s++) {
        const rc_cell_t *c = cell(r, (int)s, f);
        if (c && c->set &&
            (w < 0 || strcmp(c->rank, cell(r, w, f)->rank) > 0))
            w = (int)s;
    }
    return w;
}

/* Candidate c of source s ranks level with the winner cw (source w)
 * before the commit time under the field's rule.  latest: every owner
 * (commit time comes first).  priority, weighted: the same priority or
 * weight.  A rule that ranks by a row value first (a business order
 * column) puts it, 16 sortable hex digits, at the head of the rank; there
 * the heads must match; for latest both heads are a snapshot row's zero
 * commit time, so the test holds too. */
static int rc_admissible(const rc_t *rc, uint32_t f, int s, int w,
                         const rc_cell_t *c, const rc_cell_t *cw)
{
    const cdc_map_source_t *a = &rc->map->sources[s], *b = &rc->map->sources[w];
    switch (rc->t->fields[f].rule) {
    case CDC_RULE_PRIORITY:
        return a->priority == b->priority;
    case CDC_RULE_WEIGHTED:
        return a->weight == b->weight;
    default:
        return !strncmp(c->rank, cw->rank, 16);
    }
}

/* "db.table[pk,...]" of a snapshot row, for the provenance shown. */
static void row_text(cdc_buf_t *b, const cdc_change_t *ch)
{
    const cdc_table_t *tb = ch->tbl;
    cdc_buf_reset(b);
    cdc_buf_printf(b, "%s.%s[", tb->db ? tb->db : "", tb->name);
    for (uint32_t i = 0; i < tb->npk && ch->after; i++) {
        const cdc_value_t *v = &ch->after[tb->pk[i]];
        if (i)
            cdc_buf_putc(b, ',');
        switch (v->kind) {
        case CDC_V_INT:
            cdc_buf_printf(b, "%" PRId64, v->u.i);
            break;
        case CDC_V_UINT:
            cdc_buf_printf(b, "%" PRIu64, v->u.u);
            break;
        case CDC_V_BOOL:
            cdc_buf_puts(b, v->u.b ? "true" : "false");
            break;
        case CDC_V_FLOAT:
        case CDC_V_DOUBLE:
            cdc_buf_printf(b, "%.17g", v->u.d);
            break;
        case CDC_V_DECIMAL:
        case CDC_V_STRING:
        case CDC_V_JSON:
        case CDC_V_BYTES:
            cdc_buf_put(b, v->s, v->len > 64 ? 64 : v->len);
            break;
        default:
            cdc_buf_puts(b, "null");
        }
    }
    cdc_buf_putc(b, ']');
}

static void rc_apply(rc_t *rc, const cdc_wide_op_t *op, const char *rowtext)
{
    if (op->target != rc->t || op->kind == CDC_WIDE_CONTRIB)
        return; /* aggregates are not reconciled (docs/MAPPINGS.md) */
    if (op->kind == CDC_WIDE_UPSERT || op->kind == CDC_WIDE_DELETE) {
        rc_row_t *r = rc_find(rc, op->key, 1);
        for (uint32_t i = 0; i < op->nvals; i++)
            rc_offer(rc, r, op, &op->vals[i], rowtext);
        return;
    }
    /* lookup: every row whose match fields hold key[] (the recomputed
     * values) */
    for (size_t k = 0; k < rc->n; k++) {
        rc_row_t *r = rc->rows[k];
        int ok = 1;
        for (uint32_t j = 0; j < op->nkey && ok; j++) {
            uint32_t f = op->keyfields[j];
            const char *cur = NULL;
            if (rc->t->fields[f].is_key) {
                for (uint32_t q = 0; q < rc->t->nkey; q++)
                    if (rc->t->key[q] == f)
                        cur = r->key[q];
            } else {
                int w = rc_winner(rc, r, f);
                const rc_cell_t *c =
                    w < 0 ? NULL : cell(r, w, f);
                cur = c && !c->isnull ? c->val : NULL;
            }
            ok = cur && !strcmp(cur, op->key[j]);
        }
        if (ok)
            for (uint32_t i = 0; i < op->nvals; i++)
                rc_offer(rc, r, op, &op->vals[i], rowtext);
    }
}

/* Keep a lookup operation for later: a deep copy. */
static void lk_keep(rc_t *rc, const cdc_wide_op_t *op, const char *row)
{
    cdc_wide_op_t *o;
    const char **key;
    uint32_t *kf;

    if (rc->nlk == rc->caplk) {
        rc->caplk = rc->caplk ? rc->caplk * 2 : 64;
        rc->lk = cdc_xrealloc(rc->lk, rc->caplk * sizeof(*rc->lk));
        rc->lkrows = cdc_xrealloc(rc->lkrows, rc->caplk * sizeof(char *));
    }
    o = &rc->lk[rc->nlk];
    rc->lkrows[rc->nlk++] = intern(rc, row);
    *o = *op;
    o->source = intern(rc, op->source);
    key = cdc_xcalloc(op->nkey + 1, sizeof(char *));
    kf = cdc_xcalloc(op->nkey + 1, sizeof(uint32_t));
    for (uint32_t k = 0; k < op->nkey; k++) {
        key[k] = cdc_xstrdup(op->key[k]);
        kf[k] = op->keyfields[k];
    }
    o->key = key;
    o->keyfields = kf;
    o->vals = cdc_xcalloc(op->nvals + 1, sizeof(cdc_wide_val_t));
    for (uint32_t v = 0; v < op->nvals; v++) {
        o->vals[v] = op->vals[v];
        if (!op->vals[v].isnull)
            o->vals[v].s = cdc_xstrndup(op->vals[v].s, op->vals[v].len);
    }
}

/* ---- reading the sources ------------------------------------------------- */

static int rc_read_table(rc_t *rc, const cdc_snap_ops_t *d, cdc_snap_t *s,
                         const char *app, const char *db, const char *tb,
                         cdc_err_t *err)
{
    cdc_table_t *tbl = NULL;
    uint64_t est = 0;
    char *after = NULL;
    cdc_wide_ops_t ops;
    cdc_buf_t rt = CDC_BUF_INIT;
    int rc_ = -1;

    cdc_wide_ops_init(&ops);
    if (d->describe(s, db, tb, &tbl, &est, err))
        goto out;
    for (;;) {
        cdc_txn_t *tx = cdc_txn_new();
        char *last = NULL;
        uint32_t n = 0;
        if (d->read_chunk(s, tbl, after, NULL, NULL, RC_CHUNK, tx, &last, &n,
                          NULL, err)) {
            cdc_txn_destroy(tx);
            free(last);
            goto out;
        }
        tx->commit_us = cdc_now_us();
        tx->connector = d->connector;
        for (uint32_t i = 0; i < tx->nchanges; i++) {
            cdc_change_t *ch = &tx->changes[i];
            cdc_wide_ops_reset(&ops);
            if (cdc_map_change(rc->map, app, tx, ch, i, &ops, err) < 0) {
                cdc_txn_destroy(tx);
                free(last);
                goto out;
            }
            row_text(&rt, ch);
            /* lookups wait until every row is known */
            for (uint32_t k = 0; k < ops.n; k++) {
                if (ops.ops[k].kind == CDC_WIDE_LOOKUP)
                    lk_keep(rc, &ops.ops[k], rt.p);
                else
                    rc_apply(rc, &ops.ops[k], rt.p);
            }
            rc->read++;
        }
        cdc_txn_destroy(tx);
        free(after);
        after = last;
        if (n < RC_CHUNK || !last)
            break;
    }
    rc_ = 0;
out:
    free(after);
    cdc_buf_free(&rt);
    cdc_wide_ops_free(&ops);
    if (tbl)
        cdc_table_destroy(tbl);
    return rc_;
}

/* Read every table of pipeline conf's source that a mapping of T reads. */
static int rc_read_source(rc_t *rc, const cdc_conf_t *conf, const char *file,
                          char *seen, cdc_err_t *err)
{
    const char *app = cdc_conf_app_id(conf);
    const char *stype = cdc_conf_get(conf, "source.type", "mysql");
    const cdc_snap_ops_t *d = cdc_snap_find(stype);
    int si = src_index(rc->map, app);
    cdc_snap_t *s;
    int any = 0, r = 0;

    if (si < 0) {
        CDC_WARN(FAC, "%s: source '%s' is not in the mapping files; "
                      "ignored", file, app);
        return 0;
    }
    if (seen[si])
        return cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                           "%s: source '%s' is given twice (each pipeline "
                           "file once)", file, app);
    seen[si] = 1;
    if (!d)
        return cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                           "%s: source type '%s' has no snapshot driver in "
                           "this build: reconcile reads sources as backfill "
                           "does (mysql, postgres)", file, stype);
    s = d->open(conf, 0, err);
    if (!s)
        return -1;
    for (uint32_t i = 0; i < rc->map->nmappings && !r; i++) {
        const cdc_map_mapping_t *mp = &rc->map->mappings[i];
        int dup = 0;
        if (mp->target != rc->t || strcmp(mp->source->id, app))
            continue;
        for (uint32_t j = 0; j < i; j++) {
            const cdc_map_mapping_t *o = &rc->map->mappings[j];
            if (o->target == rc->t && !strcmp(o->source->id, app) &&
                !strcmp(o->db, mp->db) && !strcmp(o->table, mp->table))
                dup = 1;
        }
        if (dup)
            continue;
        any = 1;
        CDC_INFO(FAC, "reading %s.%s of source %s", mp->db, mp->table, app);
        r = rc_read_table(rc, d, s, app, mp->db, mp->table, err);
    }
    d->close(s);
    if (!r && !any)
        CDC_WARN(FAC, "%s: no mapping of source '%s' writes %s", file, app,
                 rc->t->name);
    return r;
}

/* ---- the target database --------------------------------------------------- */

typedef struct pgx {
    PGconn *c;
    cdc_buf_t sql;
    /* the table keeps its ranks in rank columns (sinks/pg_rank.h): read
     * through <table>_provenance(), the functions in schema qs */
    int rank;
    cdc_buf_t qs;
} pgx_t;

static int pg_ok(pgx_t *x, PGresult *res, const char *what, cdc_err_t *err)
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

static int pg_run(pgx_t *x, const char *sql, cdc_err_t *err)
{
    PGresult *res = PQexec(x->c, sql);
    if (pg_ok(x, res, sql, err))
        return -1;
    PQclear(res);
    return 0;
}

static void ident(pgx_t *x, cdc_buf_t *b, const char *name)
{
    char *q = PQescapeIdentifier(x->c, name, strlen(name));
    cdc_buf_puts(b, q ? q : "\"\"");
    PQfreemem(q);
}

static void lit(pgx_t *x, cdc_buf_t *b, const char *s)
{
    char *q = PQescapeLiteral(x->c, s, strlen(s));
    cdc_buf_puts(b, q ? q : "''");
    PQfreemem(q);
}

/* COPY text format of one value */
static void copy_val(cdc_buf_t *b, const char *s, size_t n)
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

static void prov_json(cdc_buf_t *b, const char *src, const rc_cell_t *c)
{
    cdc_buf_puts(b, "{\"s\":");
    cdc_json_string(b, src, strlen(src));
    cdc_buf_printf(b, ",\"t\":%" PRId64 ",\"r\":\"%s\",\"row\":", c->t,
                   c->rank);
    cdc_json_string(b, c->row, strlen(c->row));
    cdc_buf_putc(b, '}');
}

/* One shadow row: src NULL = the recomputed row (winners), else the
 * candidates of that source. */
static void shadow_line(rc_t *rc, cdc_buf_t *b, rc_row_t *r, int src)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t prov = CDC_BUF_INIT, has = CDC_BUF_INIT, adm = CDC_BUF_INIT;
    int np = 0, nh = 0, na = 0;

    for (uint32_t k = 0; k < t->nkey; k++) {
        copy_val(b, r->key[k], strlen(r->key[k]));
        cdc_buf_putc(b, '\t');
    }
    cdc_buf_putc(&prov, '{');
    cdc_buf_putc(&has, '{');
    cdc_buf_putc(&adm, '{');
    for (uint32_t f = 0; f < t->nfields; f++) {
        int s = src, w;
        const rc_cell_t *c;
        if (t->fields[f].is_key || t->fields[f].agg)
            continue;
        w = rc_winner(rc, r, f);
        if (s < 0)
            s = w;
        c = s < 0 ? NULL : cell(r, s, f);
        if (!c || !c->set || c->isnull)
            cdc_buf_puts(b, "\\N");
        else
            copy_val(b, c->val, c->len);
        cdc_buf_putc(b, '\t');
        if (!c || !c->set)
            continue;
        if (np++)
            cdc_buf_putc(&prov, ',');
        cdc_json_string(&prov, t->fields[f].name, strlen(t->fields[f].name));
        cdc_buf_putc(&prov, ':');
        prov_json(&prov, rc->map->sources[s].id, c);
        if (nh++)
            cdc_buf_putc(&has, ',');
        cdc_buf_puts(&has, t->fields[f].name);
        if (rc_admissible(rc, f, s, w, c, cell(r, w, f))) {
            if (na++)
                cdc_buf_putc(&adm, ',');
            cdc_buf_puts(&adm, t->fields[f].name);
        }
    }
    cdc_buf_putc(&prov, '}');
    cdc_buf_putc(&has, '}');
    cdc_buf_putc(&adm, '}');
    copy_val(b, prov.p, prov.len);
    cdc_buf_putc(b, '\t');
    if (src >= 0)
        copy_val(b, rc->map->sources[src].id,
                 strlen(rc->map->sources[src].id));
    cdc_buf_putc(b, '\t');
    cdc_buf_puts(b, has.p);
    cdc_buf_putc(b, '\t');
    cdc_buf_puts(b, adm.p);
    cdc_buf_putc(b, '\n');
    cdc_buf_free(&prov);
    cdc_buf_free(&has);
    cdc_buf_free(&adm);
}

static int shadow_fill(rc_t *rc, pgx_t *x, const char *cols, cdc_err_t *err)
{
    cdc_buf_t b = CDC_BUF_INIT;
    PGresult *res;
    int r = -1;

    cdc_buf_printf(&b, "COPY pg_temp.rc_shadow (%s, _provenance, _src, "
                       "_has, _adm) FROM STDIN",
                   cols);
    res = PQexec(x->c, b.p);
    if (pg_ok(x, res, "COPY into the shadow table", err)) {
        cdc_buf_free(&b);
        return -1;
    }
    PQclear(res);
    for (size_t i = 0; i < rc->n; i++) {
        rc_row_t *row = rc->rows[i];
        cdc_buf_reset(&b);
        shadow_line(rc, &b, row, -1);
        for (uint32_t s = 0; s < rc->map->nsources; s++) {
            if (row->blk[s])
                shadow_line(rc, &b, row, (int)s);
        }
        if (PQputCopyData(x->c, b.p, (int)b.len) != 1)
            goto fail;
    }
    if (PQputCopyEnd(x->c, NULL) != 1)
        goto fail;
    res = PQgetResult(x->c);
    if (pg_ok(x, res, "COPY into the shadow table", err))
        goto out;
    PQclear(res);
    while ((res = PQgetResult(x->c)))
        PQclear(res);
    r = 0;
    goto out;
fail:
    cdc_err_set(err, CDC_EXIT_FAIL, 0, "reconcile: COPY into the shadow "
                "table: %s", PQerrorMessage(x->c));
out:
    cdc_buf_free(&b);
    return r;
}

typedef struct rc_sum {
    long missing, extra, differs;
} rc_sum_t;

/* key equality of aliases a and b over the target's key columns */
static void key_eq(rc_t *rc, pgx_t *x, cdc_buf_t *b, const char *a,
                   const char *c)
{
    for (uint32_t k = 0; k < rc->t->nkey; k++) {
        if (k)
            cdc_buf_puts(b, " AND ");
        cdc_buf_printf(b, "%s.", a);
        ident(x, b, rc->t->fields[rc->t->key[k]].name);
        cdc_buf_printf(b, " = %s.", c);
        ident(x, b, rc->t->fields[rc->t->key[k]].name);
    }
}

/* "a.k1, a.k2": the target's key columns of alias a */
static void key_cols(rc_t *rc, pgx_t *x, cdc_buf_t *b, const char *a)
{
    for (uint32_t k = 0; k < rc->t->nkey; k++) {
        cdc_buf_printf(b, k ? ", %s." : "%s.", a);
        ident(x, b, rc->t->fields[rc->t->key[k]].name);
    }
}

/*
 * The keys that one side has and the other lacks, into rc_diff:
 *   missing: recomputed (pg_temp.rc_shadow w, _src = '') and not stored
 *            (qt t), with the recomputed provenance (nprov);
 *   extra:   stored and recomputed by no source row, with the stored
 *            provenance (sprov); an all-NULL shell (every non-key field
 *            NULL) is not extra.
 */
static int rc_unmatched(rc_t *rc, pgx_t *x, const char *qt, const char *keys,
                        int extra, cdc_err_t *err)
{
    static const char shadow[] = "pg_temp.rc_shadow";
    static const char recomputed[] = "w._src = '' AND ";
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t *b = &x->sql;
    const char *has = extra ? "t" : "w", *lacks = extra ? "w" : "t";
    int nonkey = 0;

    cdc_buf_reset(b);
    cdc_buf_printf(b, "INSERT INTO pg_temp.rc_diff (%s, kind, %s) SELECT ",
                   keys, extra ? "sprov" : "nprov");
    key_cols(rc, x, b, has);
    cdc_buf_printf(b, ", '%s', %s._provenance FROM %s %s WHERE %sNOT EXISTS "
                      "(SELECT 1 FROM %s %s WHERE %s",
                   extra ? "extra" : "missing", has, extra ? qt : shadow, has,
                   extra ? "" : recomputed, extra ? shadow : qt, lacks,
                   extra ? recomputed : "");
    key_eq(rc, x, b, "t", "w");
    cdc_buf_puts(b, ")");
    if (extra) {
        cdc_buf_puts(b, " AND (false");
        for (uint32_t f = 0; f < t->nfields; f++) {
            if (t->fields[f].is_key || t->fields[f].agg)
                continue;
            nonkey++;
            cdc_buf_puts(b, " OR t.");
            ident(x, b, t->fields[f].name);
            cdc_buf_puts(b, " IS NOT NULL");
        }
        cdc_buf_puts(b, nonkey ? ")" : " OR true)");
    }
    return pg_run(x, b->p, err);
}

static int rc_compare(rc_t *rc, pgx_t *x, const char *qt, const char *keys,
                      cdc_err_t *err)
{
    cdc_buf_t *b = &x->sql;
    const cdc_map_target_t *t = rc->t;

    if (rc_unmatched(rc, x, qt, keys, 0, err) ||
        rc_unmatched(rc, x, qt, keys, 1, err))
        return -1;
    /* fields */
    for (uint32_t f = 0; f < t->nfields; f++) {
        cdc_buf_t fl = CDC_BUF_INIT, fi = CDC_BUF_INIT;
        const char *fname = t->fields[f].name;
        int r;
        if (t->fields[f].is_key || t->fields[f].agg)
            continue;
        lit(x, &fl, fname);
        ident(x, &fi, fname);
        cdc_buf_reset(b);
        cdc_buf_printf(b, "INSERT INTO pg_temp.rc_diff (%s, kind, field, "
                          "sval, sprov, nval, nprov, keep) SELECT ",
                       keys);
        key_cols(rc, x, b, "t");
        /* the stored source's admissible candidate, when there is one,
         * else the recomputed winner */
        cdc_buf_printf(
            b,
            ", 'differs', %s, t.%s::text, t._provenance->%s, "
            "CASE WHEN %s = ANY(c._adm) THEN c.%s::text ELSE w.%s::text END, "
            "CASE WHEN %s = ANY(c._adm) THEN c._provenance->%s "
            "ELSE w._provenance->%s END, "
            "COALESCE(%s = ANY(c._adm), false) "
            "FROM %s t JOIN pg_temp.rc_shadow w ON w._src = '' AND ",
            fl.p, fi.p, fl.p, fl.p, fi.p, fi.p, fl.p, fl.p, fl.p, fl.p, qt);
        key_eq(rc, x, b, "t", "w");
        cdc_buf_printf(b, " LEFT JOIN pg_temp.rc_shadow c ON c._src = "
                          "(t._provenance->%s->>'s') AND ",
                       fl.p);
        key_eq(rc, x, b, "t", "c");
        cdc_buf_printf(
            b,
            " WHERE t.%s IS DISTINCT FROM w.%s"
            " AND NOT COALESCE(%s = ANY(c._adm) AND c.%s IS NOT DISTINCT "
            "FROM t.%s, false)"
            " AND NOT (t.%s IS NULL AND t._provenance ? %s AND NOT "
            "COALESCE(%s = ANY(c._has), false))",
            fi.p, fi.p, fl.p, fi.p, fi.p, fi.p, fl.p, fl.p);
        r = pg_run(x, b->p, err);
        cdc_buf_free(&fl);
        cdc_buf_free(&fi);
        if (r)
            return -1;
    }
    return 0;
}

/* A value for the text report: shortened (cdc_map_show_value), quoted. */
static const char *quote(char *out, size_t n, const char *v, char *tmp,
                         size_t tn)
{
    snprintf(out, n, "\"%s\"", cdc_map_show_value(v, strlen(v), tmp, tn));
    return out;
}

static int rc_report(rc_t *rc, pgx_t *x, int json, rc_sum_t *sum,
                     cdc_err_t *err)
{
    cdc_buf_t *b = &x->sql;
    const cdc_map_target_t *t = rc->t;
    PGresult *res;

    cdc_buf_reset(b);
    /* key text, kind, field, stored value, stored provenance text, the
     * recomputed ones, sources of a missing/extra row, a JSON line */
    cdc_buf_puts(b, "SELECT concat_ws(' '");
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_puts(b, ", ");
        lit(x, b, t->fields[t->key[k]].name);
        cdc_buf_puts(b, " || '=' || d.");
        ident(x, b, t->fields[t->key[k]].name);
        cdc_buf_puts(b, "::text");
    }
    cdc_buf_puts(b, "), d.kind, d.field, d.sval, "
                    "CASE WHEN d.sprov IS NULL THEN 'no provenance' ELSE "
                    "concat(d.sprov->>'s', ' t=', d.sprov->>'t', ' pos=', "
                    "right(d.sprov->>'r', 32), CASE WHEN d.sprov ? 'd' THEN "
                    "' deleted' END) END, d.nval, "
                    "CASE WHEN d.nprov IS NULL THEN 'no source row' ELSE "
                    "concat(d.nprov->>'s', ' ', d.nprov->>'row', CASE WHEN "
                    "d.keep THEN ' (keeps the stored rank)' END) END, "
                    "(SELECT string_agg(DISTINCT concat(v->>'s', ' ', "
                    "COALESCE(v->>'row', concat('t=', v->>'t'))), ', ') FROM "
                    "jsonb_each(COALESCE(d.nprov, d.sprov)) e(k, v) WHERE "
                    "jsonb_typeof(v) = 'object'), "
                    "json_build_object('kind', d.kind, 'target', ");
    lit(x, b, t->name);
    cdc_buf_puts(b, ", 'key', json_build_object(");
    for (uint32_t k = 0; k < t->nkey; k++) {
        if (k)
            cdc_buf_puts(b, ", ");
        lit(x, b, t->fields[t->key[k]].name);
        cdc_buf_puts(b, ", d.");
        ident(x, b, t->fields[t->key[k]].name);
    }
    cdc_buf_puts(b, "), 'field', d.field, 'stored', json_build_object("
                    "'value', d.sval, 'provenance', d.sprov), 'recomputed', "
                    "json_build_object('value', d.nval, 'provenance', "
                    "d.nprov, 'keeps_stored_rank', d.keep))::text "
                    "FROM pg_temp.rc_diff d ORDER BY ");
    key_cols(rc, x, b, "d");
    cdc_buf_puts(b, ", d.kind, d.field");
    res = PQexec(x->c, b->p);
    if (pg_ok(x, res, "reading the differences", err))
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *kind = PQgetvalue(res, i, 1);
        if (!strcmp(kind, "missing"))
            sum->missing++;
        else if (!strcmp(kind, "extra"))
            sum->extra++;
        else
            sum->differs++;
        if (json) {
            printf("%s\n", PQgetvalue(res, i, 8));
            continue;
        }
        if (!strcmp(kind, "differs")) {
            char sv[400], nv[400], qs[410], qn[410];
            const char *s = PQgetvalue(res, i, 3), *n = PQgetvalue(res, i, 5);
            printf("differs %s %s: stored %s [%s], recomputed %s [%s]\n",
                   PQgetvalue(res, i, 0), PQgetvalue(res, i, 2),
                   PQgetisnull(res, i, 3) ? "null"
                                          : quote(qs, sizeof(qs), s, sv,
                                                  sizeof(sv)),
                   PQgetvalue(res, i, 4),
                   PQgetisnull(res, i, 5) ? "null"
                                          : quote(qn, sizeof(qn), n, nv,
                                                  sizeof(nv)),
                   PQgetvalue(res, i, 6));
        } else if (!strcmp(kind, "missing")) {
            printf("missing %s: recomputed from %s\n", PQgetvalue(res, i, 0),
                   PQgetisnull(res, i, 7) ? "key only"
                                          : PQgetvalue(res, i, 7));
        } else {
            printf("extra %s: stored from %s\n", PQgetvalue(res, i, 0),
                   PQgetisnull(res, i, 7) ? "no provenance"
                                          : PQgetvalue(res, i, 7));
        }
    }
    PQclear(res);
    return 0;
}

/* The declared type of column col of qt (malloc'd), NULL with err. */
static char *col_type(pgx_t *x, const char *qt, const char *col,
                      cdc_err_t *err)
{
    cdc_buf_t q = CDC_BUF_INIT;
    PGresult *res;
    char *tp = NULL;

    cdc_buf_puts(&q, "SELECT format_type(atttypid, atttypmod) FROM "
                     "pg_attribute WHERE NOT attisdropped AND attrelid = ");
    lit(x, &q, qt);
    cdc_buf_puts(&q, "::regclass AND attname = ");
    lit(x, &q, col);
    res = PQexec(x->c, q.p);
    cdc_buf_free(&q);
    if (pg_ok(x, res, "the column types", err))
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

static int rc_repair(rc_t *rc, pgx_t *x, const char *qt, const char *cols,
                     cdc_err_t *err)
{
    cdc_buf_t *b = &x->sql;
    const cdc_map_target_t *t = rc->t;

    /* extra rows go */
    cdc_buf_reset(b);
    cdc_buf_printf(b, "DELETE FROM %s t USING pg_temp.rc_diff d WHERE "
                      "d.kind = 'extra' AND ",
                   qt);
    key_eq(rc, x, b, "t", "d");
    if (pg_run(x, b->p, err))
        return -1;
    /* missing rows come with their snapshot ranks ("row" is only shown) */
    cdc_buf_reset(b);
    cdc_buf_printf(b, "INSERT INTO %s (%s, ", qt, cols);
    if (x->rank) {
        int n = 0;
        for (uint32_t f = 0; f < t->nfields; f++) {
            char col[200];
            if (t->fields[f].is_key)
                continue;
            cdc_pgrank_col(col, sizeof(col), t->fields[f].name);
            if (n++)
                cdc_buf_puts(b, ", ");
            ident(x, b, col);
        }
        if (!n)
            b->len -= 2, b->p[b->len] = '\0';
        cdc_buf_puts(b, ") SELECT ");
    } else
        cdc_buf_puts(b, "_provenance) SELECT ");
    {
        const char *p = cols;
        /* w.col for every column: cols is "a, b, c" of quoted names */
        cdc_buf_puts(b, "w.");
        for (; *p; p++) {
            cdc_buf_putc(b, *p);
            if (*p == ',' && p[1] == ' ') {
                cdc_buf_puts(b, " w.");
                p++;
            }
        }
    }
    if (x->rank) {
        /* one rank column per field, from the shadow's entries */
        for (uint32_t f = 0; f < t->nfields; f++) {
            if (t->fields[f].is_key)
                continue;
            cdc_buf_printf(b, ", %s.autoglm_cdc_rank((w._provenance -> ",
                           x->qs.p);
            lit(x, b, t->fields[f].name);
            cdc_buf_puts(b, ") - 'row')"); /* "row" is only shown */
        }
    } else
        cdc_buf_puts(b, ", COALESCE((SELECT jsonb_object_agg(k, v - 'row') "
                        "FROM jsonb_each(w._provenance) e(k, v)), '{}')");
    cdc_buf_puts(b, " FROM pg_temp.rc_shadow w JOIN pg_temp.rc_diff d ON "
                    "d.kind = 'missing' AND w._src = '' AND ");
    key_eq(rc, x, b, "w", "d");
    if (pg_run(x, b->p, err))
        return -1;
    /* differing fields */
    for (uint32_t f = 0; f < t->nfields; f++) {
        cdc_buf_t fl = CDC_BUF_INIT, fi = CDC_BUF_INIT;
        int r;
        if (t->fields[f].is_key || t->fields[f].agg)
            continue;
        char *tp;
        lit(x, &fl, t->fields[f].name);
        ident(x, &fi, t->fields[f].name);
        if (!(tp = col_type(x, qt, t->fields[f].name, err))) {
            cdc_buf_free(&fl);
            cdc_buf_free(&fi);
            return -1;
        }
        cdc_buf_reset(b);
        if (x->rank) {
            cdc_buf_t rc_ = CDC_BUF_INIT;
            char col[200];
            const char *s = x->qs.p;
            cdc_pgrank_col(col, sizeof(col), t->fields[f].name);
            ident(x, &rc_, col);
            /* the same cases as below, on the field's rank column */
            cdc_buf_printf(
                b,
                "UPDATE %s t SET %s = d.nval::%s, %s = CASE "
                "WHEN d.keep AND d.nval IS NULL THEN t.%s "
                "WHEN d.keep THEN %s.autoglm_cdc_rank(%s.autoglm_cdc_prov("
                "t.%s) - 'd') "
                "WHEN d.nprov IS NULL THEN NULL "
                "ELSE %s.autoglm_cdc_rank(d.nprov - 'row') END "
                "FROM pg_temp.rc_diff d WHERE d.kind = 'differs' AND "
                "d.field = %s AND ",
                qt, fi.p, tp, rc_.p, rc_.p, s, s, rc_.p, s, fl.p);
            cdc_buf_free(&rc_);
        } else
        cdc_buf_printf(
            b,
            "UPDATE %s t SET %s = d.nval::%s, _provenance = CASE "
            "WHEN d.keep AND d.nval IS NULL THEN t._provenance "
            /* a value under a row delete's rank is no deletion */
            "WHEN d.keep THEN jsonb_set(t._provenance, ARRAY[%s], "
            "(t._provenance->%s) - 'd') "
            "WHEN d.nprov IS NULL THEN t._provenance - %s "
            "ELSE jsonb_set(t._provenance, ARRAY[%s], d.nprov - 'row') END "
            "FROM pg_temp.rc_diff d WHERE d.kind = 'differs' AND d.field = %s "
            "AND ",
            qt, fi.p, tp, fl.p, fl.p, fl.p, fl.p, fl.p);
        free(tp);
        key_eq(rc, x, b, "t", "d");
        r = pg_run(x, b->p, err);
        cdc_buf_free(&fl);
        cdc_buf_free(&fi);
        if (r)
            return -1;
    }
    return 0;
}

/* ---- the command ----------------------------------------------------------- */

static const cdc_map_target_t *find_target(const cdc_map_t *m,
                                           const char *name)
{
    for (uint32_t i = 0; i < m->ntargets; i++) {
        const cdc_map_target_t *t = &m->targets[i];
        char full[300];
        snprintf(full, sizeof(full), "%s%s%s", t->schema ? t->schema : "",
                 t->schema && *t->schema ? "." : "", t->table);
        if (!strcmp(t->name, name) || !strcmp(t->table, name) ||
            !strcmp(full, name))
            return t;
    }
    return NULL;
}

static void rc_free(rc_t *rc)
{
    for (size_t i = 0; i < rc->n; i++) {
        rc_row_t *r = rc->rows[i];
        for (uint32_t s = 0; s < rc->map->nsources; s++) {
            if (!r->blk[s])
                continue;
            for (uint32_t f = 0; f < rc->t->nfields; f++)
                free(r->blk[s][f].val);
            free(r->blk[s]);
        }
        for (uint32_t k = 0; k < rc->t->nkey; k++)
            free(r->key[k]);
        free(r->key);
        free(r->blk);
        free(r->keytext);
        free(r);
    }
    free(rc->rows);
    cdc_strix_free(&rc->ix);
    cdc_strix_free(&rc->pool);
    for (size_t i = 0; i < rc->nstrs; i++)
        free(rc->strs[i]);
    free(rc->strs);
    for (size_t i = 0; i < rc->nlk; i++) {
        cdc_wide_op_t *o = &rc->lk[i];
        for (uint32_t k = 0; k < o->nkey; k++)
            free((char *)o->key[k]);
        for (uint32_t v = 0; v < o->nvals; v++)
            free((char *)o->vals[v].s);
        free((void *)o->key);
        free((void *)o->keyfields);
        free(o->vals);
    }
    free(rc->lk);
    free(rc->lkrows);
}

/* The target database's side: one connection, one transaction. */
typedef struct tgt {
    pgx_t x;
    cdc_buf_t qt, cols, keys; /* quoted table, columns, key columns */
    cdc_buf_t qread;          /* what the table is read from: itself, or
                                 <table>_provenance() (rank columns) */
    int open;
} tgt_t;

static void tgt_close(tgt_t *g)
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

/* Connect and begin.  With --repair the table is locked against writes
 * (the sinks wait) before the sources are read and until the repair
 * commits: every change the table holds then came from a source change
 * the snapshot already sees, so a repaired value is never older than the
 * change whose rank it keeps (a change still in flight carries a greater
 * rank and overrides it when it arrives). */
static int tgt_open(rc_t *rc, const cdc_conf_t *conf, int repair, tgt_t *g,
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
        ident(x, &g->qt, t->schema);
        cdc_buf_putc(&g->qt, '.');
    }
    ident(x, &g->qt, t->table);
    for (uint32_t k = 0; k < t->nkey; k++) {
        if (k)
            cdc_buf_puts(&g->keys, ", ");
        ident(x, &g->keys, t->fields[t->key[k]].name);
    }
    cdc_buf_puts(&g->cols, g->keys.p);
    for (uint32_t f = 0; f < t->nfields; f++) {
        if (t->fields[f].is_key || t->fields[f].agg)
            continue;
        cdc_buf_puts(&g->cols, ", ");
        ident(x, &g->cols, t->fields[f].name);
    }
    if (pg_run(x, repair ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE "
                                     "READ READ WRITE",
               err))
        return -1;
    cdc_buf_reset(&x->sql);
    /* the table must exist; with --repair, lock it */
    if (repair)
        cdc_buf_printf(&x->sql, "LOCK TABLE %s IN EXCLUSIVE MODE", g->qt.p);
    else
        cdc_buf_printf(&x->sql, "SELECT 1 FROM %s LIMIT 0", g->qt.p);
    if (pg_run(x, x->sql.p, err)) {
        if (strstr(err->msg, "does not exist"))
            err->code = CDC_EXIT_CONFIG;
        return -1;
    }
    g->open = 1;
    /* the table's form: a _provenance column, or rank columns */
    {
        PGresult *res;
        char name[200];
        cdc_buf_reset(&x->sql);
        cdc_buf_puts(&x->sql, "SELECT EXISTS (SELECT 1 FROM pg_attribute "
                              "WHERE NOT attisdropped AND attrelid = ");
        lit(x, &x->sql, g->qt.p);
        cdc_buf_puts(&x->sql, "::regclass AND attname = '_provenance')");
        res = PQexec(x->c, x->sql.p);
        if (pg_ok(x, res, "the table's columns", err))
            return -1;
        x->rank = strcmp(PQgetvalue(res, 0, 0), "t") != 0;
        PQclear(res);
        ident(x, &x->qs, t->schema && *t->schema ? t->schema : "public");
        if (x->rank) {
            snprintf(name, sizeof(name), "%s_provenance", t->table);
            cdc_buf_printf(&g->qread, "%s.", x->qs.p);
            ident(x, &g->qread, name);
            cdc_buf_puts(&g->qread, "()");
        } else
            cdc_buf_puts(&g->qread, g->qt.p);
    }
    return 0;
}

static int tgt_run(rc_t *rc, tgt_t *g, int repair, int json, rc_sum_t *sum,
                   cdc_err_t *err)
{
    pgx_t *x = &g->x;

    cdc_buf_reset(&x->sql);
    cdc_buf_printf(&x->sql,
                   "CREATE TEMP TABLE rc_shadow ON COMMIT DROP AS SELECT %s, "
                   "_provenance FROM %s WITH NO DATA; ALTER TABLE "
                   "pg_temp.rc_shadow ADD _src text NOT NULL, ADD _has "
                   "text[], ADD _adm text[]; "
                   "CREATE TEMP TABLE rc_diff ON COMMIT DROP AS SELECT %s "
                   "FROM %s WITH NO DATA; ALTER TABLE pg_temp.rc_diff ADD "
                   "kind text, ADD field text, ADD sval text, ADD sprov "
                   "jsonb, ADD nval text, ADD nprov jsonb, ADD keep boolean "
                   "NOT NULL DEFAULT false",
                   g->cols.p, g->qread.p, g->keys.p, g->qt.p);
    if (pg_run(x, x->sql.p, err)) {
        if (strstr(err->msg, "does not exist"))
            err->code = CDC_EXIT_CONFIG;
        return -1;
    }
    if (shadow_fill(rc, x, g->cols.p, err))
        return -1;
    cdc_buf_reset(&x->sql);
    cdc_buf_printf(&x->sql, "CREATE INDEX ON pg_temp.rc_shadow (%s, _src); "
                            "ANALYZE pg_temp.rc_shadow",
                   g->keys.p);
    if (pg_run(x, x->sql.p, err) ||
        rc_compare(rc, x, g->qread.p, g->keys.p, err) ||
        rc_report(rc, x, json, sum, err))
        return -1;
    if (repair && (sum->missing || sum->extra || sum->differs) &&
        rc_repair(rc, x, g->qt.p, g->cols.p, err))
        return -1;
    return pg_run(x, "COMMIT", err);
}

int cdc_cmd_reconcile(const cdc_cmd_ctx_t *cx, int argc, char **argv,
                      cdc_err_t *err)
{
    const cdc_conf_t *conf = cx->conf;
    const char *target = cdc_conf_get(cx->opts, "target", NULL);
    int repair = cdc_conf_get(cx->opts, "repair", NULL) != NULL;
    const char *fmt = cdc_conf_get(conf, "status.format", "text");
    int json = !strcmp(fmt, "json");
    const char *files = cdc_conf_get(conf, "mapping.files", NULL);
    cdc_map_t *m = NULL;
    cdc_conf_t **others = NULL;
    char *seen = NULL;
    rc_t rc;
    rc_sum_t sum = {0, 0, 0};
    tgt_t g;
    int code = CDC_EXIT_FAIL;

    memset(&g, 0, sizeof(g));

    memset(&rc, 0, sizeof(rc));
    if (!target || !*target)
        return cdc_cmd_usage_error("reconcile: --target T is required (a "
                                   "target of the mapping files)");
    if (!files || !*files) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "reconcile: mapping.files is not set: give the "
                    "pipeline of a wide-table sink (-c pipeline.yaml)");
        return CDC_EXIT_CONFIG;
    }
    if (!(m = cdc_map_load(files, err)))
        return err->code ? err->code : CDC_EXIT_CONFIG;
    m->limits = CDC_MAP_LIM_NUL;
    rc.map = m;
    if (!(rc.t = find_target(m, target))) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "reconcile: no target '%s' in %s (its name or its "
                    "table)",
                    target, files);
        code = CDC_EXIT_CONFIG;
        goto out;
    }
    if (rc.t->ngroups) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "reconcile: target '%s' has "
                    "field group '%s', which reconcile cannot recompute yet",
                    rc.t->name, rc.t->groups[0].name);
        cdc_err_hint(err, "compare the group's fields with the sources by "
                     "hand, or reconcile a target without groups "
                     "(docs/MAPPINGS.md, Field groups)");
        code = CDC_EXIT_CONFIG;
        goto out;
    }
    for (uint32_t f = 0; f < rc.t->nfields; f++) {
        const cdc_map_field_t *fd = &rc.t->fields[f];
        if (fd->is_key || !fd->per_source)
            continue;
        /* vote / weighted_mean: a value of every source's entry, which
         * the per-source best candidate below does not give */
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "reconcile: target '%s': field "
                    "'%s' has rule %s%s, which reconcile does not recompute "
                    "yet", rc.t->name, fd->name, cdc_map_rule_name(fd->rule),
                    fd->rule == CDC_RULE_WEIGHTED ? " with confidence" : "");
        cdc_err_hint(err, "compare %s with %s_votes, which holds each "
                     "source's current value and score (docs/MAPPINGS.md, "
                     "Confidence, vote and weighted mean)", rc.t->table,
                     rc.t->table);
        code = CDC_EXIT_CONFIG;
        goto out;
    }
    seen = cdc_xcalloc(m->nsources + 1, 1);
    others = cdc_xcalloc((size_t)argc + 1, sizeof(*others));
    for (int i = 0; i < argc; i++) {
        others[i] = cdc_conf_new();
        if (cdc_conf_load_yaml(others[i], argv[i], err) ||
            cdc_conf_resolve(others[i], err)) {
            code = err->code ? err->code : CDC_EXIT_CONFIG;
            goto out;
        }
    }
    /* every source that writes T must be read; the target first (an
     * unreachable one fails before the long part; --repair locks it) */
    for (uint32_t i = 0; i < m->nmappings; i++) {
        const cdc_map_mapping_t *mp = &m->mappings[i];
        int si = src_index(m, mp->source->id), given = 0;
        if (mp->target != rc.t || si < 0)
            continue;
        given = !strcmp(cdc_conf_app_id(conf), mp->source->id);
        for (int k = 0; k < argc && !given; k++)
            given = !strcmp(cdc_conf_app_id(others[k]), mp->source->id);
        if (!given) {
            cdc_err_set(err, CDC_EXIT_USAGE, 0,
                        "reconcile: source '%s' writes %s (mapping %s) but "
                        "no pipeline of it was given: add its pipeline file "
                        "as an operand (reconcile -c a.yaml --target %s "
                        "b.yaml ...)",
                        mp->source->id, rc.t->name,
                        mp->name ? mp->name : mp->where, target);
            code = CDC_EXIT_USAGE;
            goto out;
        }
    }
    if (tgt_open(&rc, conf, repair, &g, err))
        goto fail;
    if (rc_read_source(&rc, conf, "-c", seen, err))
        goto fail;
    for (int i = 0; i < argc; i++)
        if (rc_read_source(&rc, others[i], argv[i], seen, err))
            goto fail;
    for (size_t i = 0; i < rc.nlk; i++)
        rc_apply(&rc, &rc.lk[i], rc.lkrows[i]);
    CDC_INFO(FAC, "%" PRIu64 " source rows make %zu rows of %s", rc.read,
             rc.n, rc.t->name);
    if (tgt_run(&rc, &g, repair, json, &sum, err))
        goto fail;
    if (json)
        printf("{\"kind\":\"summary\",\"target\":\"%s\",\"rows\":%zu,"
               "\"missing\":%ld,\"extra\":%ld,\"differs\":%ld,"
               "\"repaired\":%s}\n",
               rc.t->name, rc.n, sum.missing, sum.extra, sum.differs,
               repair && (sum.missing || sum.extra || sum.differs) ? "true"
                                                                   : "false");
    else
        printf("%s: %zu rows recomputed from %" PRIu64 " source rows; %ld "
               "missing, %ld extra, %ld fields differ%s\n",
               rc.t->name, rc.n, rc.read, sum.missing, sum.extra,
               sum.differs,
               sum.missing || sum.extra || sum.differs
                   ? (repair ? "; repaired" : "")
                   : "; no drift");
    if (fflush(stdout)) {
        cdc_err_set(err, CDC_EXIT_FAIL, 0, "reconcile: cannot write the "
                                           "standard output");
        goto fail;
    }
    code = (sum.missing || sum.extra || sum.differs) && !repair
               ? CDC_EXIT_FAIL
               : CDC_EXIT_OK;
    goto out;
fail:
    code = err->code ? err->code : CDC_EXIT_FAIL;
out:
    tgt_close(&g);
    if (others)
        for (int i = 0; i < argc; i++)
            if (others[i])
                cdc_conf_destroy(others[i]);
    free(others);
    free(seen);
    if (rc.t)
        rc_free(&rc);
    cdc_map_destroy(m);
    return code;
}
