/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map_agg.c - aggregate fields: count, sum, min, max and count_distinct of
 * a child table's rows per business key (docs/MAPPINGS.md, Aggregates).
 *
 *   mappings:
 *     - source: shop
 *       table: shop.orders
 *       target: customer_360
 *       key: {customer_id: customer_id}
 *       aggregates:
 *         order_count: count
 *         total_spent: {sum: amount}
 *         first_order_at: {min: created_at}
 *
 * A change does not add to or subtract from a stored total: it sets the
 * *contribution* of its source row (identified by the row's primary key,
 * or the mapping's row_key columns) to the row's new state - the target
 * key and one value per aggregate - or marks it gone (deleted, filtered
 * out, NULL key).  A contribution is ranked (commit time, position; a
 * snapshot row: zeros, then a hash of its state) and only a strictly
 * higher rank replaces it, so replays are no-ops and arrival order does
 * not matter.  The aggregate of a key is then a pure function of the live
 * contributions that name the key, recomputed for every key a batch
 * touched (the sinks) or changed (the in-memory model).
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/envelope.h"
#include "cdc/util.h"
#include "mappings/map_int.h"

static const char *const agg_names[] = {"count", "sum", "min", "max",
                                        "count_distinct"};

const char *cdc_map_agg_name(cdc_magg_t a)
{
    return a >= CDC_AGG_COUNT && a <= CDC_AGG_COUNT_DISTINCT
               ? agg_names[a - 1]
               : "none";
}

void cdc_map_contrib_table(const cdc_map_target_t *t, char *out, size_t n)
{
    snprintf(out, n, "%s_contrib", t->table);
}

static int aerr(cdc_err_t *err, const char *file, const ynode_t *n,
                const char *fmt, ...) CDC_PRINTF(4, 5);
static int aerr(cdc_err_t *err, const char *file, const ynode_t *n,
                const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s:%d:%d: %s", file,
                       n ? n->line : 1, n ? n->col : 1, msg);
}

static char *where_of(const char *file, const ynode_t *n)
{
    char buf[600];
    snprintf(buf, sizeof(buf), "%s:%d:%d", file, n->line, n->col);
    return cdc_xstrdup(buf);
}

/* Can field f hold func's result? */
static int type_fits(cdc_magg_t func, const cdc_map_field_t *f)
{
    switch (func) {
    case CDC_AGG_COUNT:
    case CDC_AGG_COUNT_DISTINCT:
    case CDC_AGG_SUM:
        return f->type == CDC_MT_INT || f->type == CDC_MT_DECIMAL ||
               f->type == CDC_MT_DOUBLE;
    case CDC_AGG_MIN:
    case CDC_AGG_MAX:
        return f->type != CDC_MT_JSON && f->type != CDC_MT_BOOL;
    default:
        return 0;
    }
}

static int load_one(const char *file, cdc_map_mapping_t *mp,
                    const ynode_t *k, const ynode_t *v, cdc_map_agg_t *a,
                    cdc_err_t *err)
{
    cdc_map_target_t *t = (cdc_map_target_t *)mp->target;
    const ynode_t *fn = v, *arg = NULL;
    const char *fname;
    int fi = cdc_map_find_field(t, k->val), func = 0;
    cdc_map_field_t *f;

    a->where = where_of(file, k);
    if (fi < 0) {
        const char **names = cdc_xcalloc(t->nfields + 1, sizeof(char *));
        const char *s;
        for (uint32_t j = 0; j < t->nfields; j++)
            names[j] = t->fields[j].name;
        s = cdc_map_suggest(k->val, names, (int)t->nfields);
        free(names);
        aerr(err, file, k, "unknown field '%s' in aggregates of mapping '%s'",
             k->val, mp->name);
        cdc_err_hint(err, s ? "did you mean '%s'?" : "declare it in target "
                     "'%s' with a type that fits the aggregate",
                     s ? s : t->name);
        return -1;
    }
    f = &t->fields[fi];
    a->field = (uint32_t)fi;
    if (f->is_key)
        return aerr(err, file, k, "'%s' is a key field of target '%s' and "
                    "cannot be an aggregate", k->val, t->name);
    if (!cdc_map_owns(f, mp->source->id)) {
        aerr(err, file, k, "source '%s' does not own field '%s' of target "
             "'%s'", mp->source->id, k->val, t->name);
        cdc_err_hint(err, "add '%s' to the field's owners (%s)",
                     mp->source->id, f->where);
        return -1;
    }
    if (v->kind == Y_MAP) {
        if (v->n != 2)
            return aerr(err, file, v, "aggregate '%s' takes one function: "
                        "{sum: COLUMN}, {min: ...}, {max: ...}, "
                        "{count_distinct: ...} or {count: ...}", k->val);
        fn = v->kids[0];
        arg = v->kids[1];
    } else if (v->kind != Y_SCALAR)
        return aerr(err, file, v, "aggregate '%s' must be 'count' or "
                    "{FUNCTION: EXPRESSION}", k->val);
    fname = fn->val;
    for (int j = 0; j < 5; j++)
        if (!strcmp(fname, agg_names[j]))
            func = j + 1;
    if (!func) {
        const char *s = cdc_map_suggest(fname, agg_names, 5);
        aerr(err, file, fn, "unknown aggregate function '%s'", fname);
        cdc_err_hint(err, s ? "did you mean '%s'?" : "functions: count, sum, "
                     "min, max, count_distinct%s", s ? s : "");
        return -1;
    }
    if (!arg && func != CDC_AGG_COUNT)
        return aerr(err, file, fn, "aggregate '%s': %s needs a column or "
                    "expression, e.g. {%s: amount}", k->val, fname, fname);
    a->func = (cdc_magg_t)func;
    if (arg) {
        char *w;
        if (arg->kind != Y_SCALAR || cdc_ynode_isnull(arg))
            return aerr(err, file, arg, "aggregate '%s': the argument of %s "
                        "must be a column or an expression", k->val, fname);
        w = where_of(file, arg);
        a->text = cdc_xstrdup(arg->val);
        a->expr = cdc_expr_parse(arg->val, w, err);
        free(w);
        if (!a->expr)
            return -1;
    } else
        a->text = cdc_xstrdup("*");
    if (!type_fits(a->func, f)) {
        aerr(err, file, fn, "aggregate '%s': %s does not fit the field's "
             "type %s", k->val, fname, f->sqltype);
        cdc_err_hint(err, "%s", a->func == CDC_AGG_MIN || a->func == CDC_AGG_MAX
                     ? "min and max take text, numbers, date-times and dates "
                       "(not boolean or json)"
                     : "count, count_distinct and sum need a bigint, "
                       "numeric or double field");
        return -1;
    }
    if (f->agg && f->agg != a->func)
        return aerr(err, file, fn, "field '%s' is already %s in another "
                    "mapping; one function per aggregate field", k->val,
                    cdc_map_agg_name(f->agg));
    f->agg = a->func;
    t->aggregates = 1;
    return 0;
}

int cdc_map_agg_load(const char *file, cdc_map_mapping_t *mp,
                     const ynode_t *x, const ynode_t *rk, cdc_err_t *err)
{
    if (rk) {
        int n = rk->kind == Y_SEQ ? rk->n : 1, grouped = 0;
        /* field groups (map_group.c) name their candidates' rows by it too */
        for (uint32_t i = 0; i < mp->nfields; i++)
            grouped |= mp->target->fields[mp->fields[i].field].group != 0;
        if (!x && !grouped)
            return aerr(err, file, rk, "'row_key' names the source row of "
                        "'aggregates' or field groups, and mapping '%s' has "
                        "neither", mp->name);
        mp->row_key = cdc_xcalloc((size_t)n + 1, sizeof(char *));
        for (int i = 0; i < n; i++) {
            const ynode_t *e = rk->kind == Y_SEQ ? rk->kids[i] : rk;
            if (e->kind != Y_SCALAR || cdc_ynode_isnull(e))
                return aerr(err, file, e, "row_key lists the source columns "
                            "that identify a row");
            mp->row_key[mp->nrow_key++] = cdc_xstrdup(e->val);
        }
        if (!n)
            return aerr(err, file, rk, "row_key is empty");
    }
    if (!x)
        return 0;
    if (mp->lookup)
        return aerr(err, file, x, "'aggregates' is not allowed in a lookup "
                    "mapping");
    if (x->kind != Y_MAP || !x->n)
        return aerr(err, file, x, "'aggregates' maps target fields to "
                    "functions, e.g. {order_count: count, total: {sum: "
                    "amount}}");
    mp->aggs = cdc_xcalloc((size_t)x->n / 2 + 1, sizeof(*mp->aggs));
    for (int i = 0; i + 1 < x->n; i += 2) {
        for (uint32_t j = 0; j < mp->naggs; j++)
            if (!strcmp(mp->target->fields[mp->aggs[j].field].name,
                        x->kids[i]->val))
                return aerr(err, file, x->kids[i], "aggregate '%s' given "
                            "twice", x->kids[i]->val);
        /* counted even when it fails: the cleanup frees what it holds */
        if (load_one(file, mp, x->kids[i], x->kids[i + 1],
                     &mp->aggs[mp->naggs++], err))
            return -1;
    }
    return 0;
}

void cdc_map_agg_free(cdc_map_mapping_t *mp)
{
    for (uint32_t i = 0; i < mp->naggs; i++) {
        cdc_expr_free(mp->aggs[i].expr);
        free(mp->aggs[i].text);
        free(mp->aggs[i].where);
    }
    free(mp->aggs);
    for (int i = 0; i < mp->nrow_key; i++)
        free(mp->row_key[i]);
    free(mp->row_key);
}

int cdc_map_agg_check(cdc_map_t *m, cdc_err_t *err)
{
    for (uint32_t i = 0; i < m->nmappings; i++) {
        const cdc_map_mapping_t *mp = &m->mappings[i];
        const cdc_map_target_t *t = mp->target;
        for (uint32_t k = 0; k < mp->nfields; k++) {
            const cdc_map_field_t *f = &t->fields[mp->fields[k].field];
            if (!f->agg)
                continue;
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: field '%s' is an "
                        "aggregate (%s) and cannot also be written by "
                        "mapping '%s'", mp->fields[k].where, f->name,
                        cdc_map_agg_name(f->agg), mp->name);
            cdc_err_hint(err, "declare another field for the plain value");
            return -1;
        }
        for (int k = 0; k < mp->ninclude; k++) {
            int fi = cdc_map_find_field(t, mp->include[k]);
            if (fi < 0 || !t->fields[fi].agg)
                continue;
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: column '%s' is copied "
                        "into field '%s', which is an aggregate", mp->where,
                        mp->include[k], mp->include[k]);
            cdc_err_hint(err, "remove it from columns.include");
            return -1;
        }
    }
    /* contributions are kept per (mapping name, row): two mappings of a
     * target need distinct names */
    for (uint32_t i = 0; i < m->nmappings; i++)
        for (uint32_t j = i + 1; j < m->nmappings; j++) {
            const cdc_map_mapping_t *a = &m->mappings[i], *b = &m->mappings[j];
            if (!a->naggs || !b->naggs || a->target != b->target ||
                strcmp(a->name, b->name))
                continue;
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: mapping '%s' has "
                        "aggregates into target '%s' like the mapping at %s, "
                        "under the same name", b->where, b->name,
                        b->target->name, a->where);
            cdc_err_hint(err, "give each a distinct 'name:' (the sinks keep "
                         "contributions per mapping name and source row)");
            return -1;
        }
    /* how many sources contribute to each target (the sinks serialise
     * the recomputation when several do) */
    for (uint32_t ti = 0; ti < m->ntargets; ti++) {
        cdc_map_target_t *t = &m->targets[ti];
        int n = 0;
        for (uint32_t s = 0; s < m->nsources; s++) {
            int any = 0;
            for (uint32_t i = 0; i < m->nmappings && !any; i++)
                any = m->mappings[i].target == t && m->mappings[i].naggs &&
                      m->mappings[i].source == &m->sources[s];
            n += any;
        }
        t->agg_sources = n;
    }
    return 0;
}

/* ---- contributions of one change ----------------------------------------- */

/* The identity of the row of image c: JSON array of the text of its key
 * columns.  NULL with c->err when the image lacks one. */
static const char *row_id(const cdc_map_mapping_t *mp, xctx_t *c)
{
    const cdc_table_t *tb = c->tbl;
    cdc_buf_t b = CDC_BUF_INIT;
    int n = mp->nrow_key ? mp->nrow_key : (int)tb->npk;
    const char *res;

    if (!n) {
        cdc_err_set(c->err, CDC_EXIT_DATA, CDC_ERR_F_DATA, "%s: mapping '%s' "
                    "has aggregates, and table %s.%s has no primary key to "
                    "identify its rows", mp->where, mp->name, tb->db, tb->name);
        cdc_err_hint(c->err, "give the mapping row_key: [COLUMNS] (a unique "
                     "key of the source table); a MySQL source needs "
                     "binlog_row_metadata=FULL to know the primary key");
        return NULL;
    }
    cdc_buf_putc(&b, '[');
    for (int i = 0; i < n; i++) {
        const char *col = mp->nrow_key ? mp->row_key[i]
                                       : tb->cols[tb->pk[i]].name;
        xv_t v;
        int found;
        size_t len;
        const char *s;
        cdc_xv_column(c, col, &v, &found);
        if (!found || v.t == XV_MISSING || v.t == XV_NULL) {
            cdc_err_set(c->err, CDC_EXIT_DATA, CDC_ERR_F_DATA, "%s: mapping "
                        "'%s': the change does not carry row key column '%s' "
                        "of %s.%s", mp->where, mp->name, col, tb->db,
                        tb->name);
            cdc_err_hint(c->err, "aggregates need the key of every row image: "
                         "check row_key; MySQL binlog_row_image=FULL, "
                         "PostgreSQL REPLICA IDENTITY FULL");
            cdc_buf_free(&b);
            return NULL;
        }
        s = cdc_xv_text(&v, c->arena, &len);
        if (i)
            cdc_buf_putc(&b, ',');
        cdc_json_string(&b, s, len);
    }
    cdc_buf_putc(&b, ']');
    res = cdc_arena_memdup(c->arena, b.p, b.len + 1);
    cdc_buf_free(&b);
    return res;
}

/* One aggregate's contributed value of image c into r. */
static int contrib_value(const cdc_map_mapping_t *mp, const cdc_map_agg_t *a,
                         xctx_t *c, castres_t *r)
{
    const cdc_map_field_t *f = &mp->target->fields[a->field];
    xv_t v;

    memset(r, 0, sizeof(*r));
    if (!a->expr) {
        r->s = "1";
        r->len = 1;
        return 0;
    }
    c->where = a->where;
    c->mapping = mp->name;
    if (cdc_expr_eval(a->expr, c, &v))
        return -1;
    if (v.t == XV_MISSING) {
        cdc_err_set(c->err, CDC_EXIT_DATA, CDC_ERR_F_DATA, "%s: mapping '%s': "
                    "the change does not carry a column of aggregate '%s' "
                    "(%s)", a->where, mp->name, f->name, a->text);
        cdc_err_hint(c->err, "aggregates need full row images: MySQL "
                     "binlog_row_image=FULL, PostgreSQL REPLICA IDENTITY FULL");
        return -1;
    }
    if (v.t == XV_NULL) {
        r->isnull = 1;
        return 0;
    }
    if (a->func == CDC_AGG_COUNT) {
        r->s = "1";
        r->len = 1;
        return 0;
    }
    if (a->func == CDC_AGG_COUNT_DISTINCT) {
        size_t len;
        const char *s = cdc_xv_text(&v, c->arena, &len);
        if (c->limits & CDC_MAP_LIM_NUL && memchr(s, 0, len)) {
            cdc_err_set(c->err, CDC_EXIT_DATA, CDC_ERR_F_DATA, "%s: mapping "
                        "'%s': a value of count_distinct '%s' holds a NUL "
                        "character, which PostgreSQL text cannot hold",
                        a->where, mp->name, f->name);
            return -1;
        }
        r->s = s;
        r->len = len;
        return 0;
    }
    return cdc_map_cast(c, f, &v, mp->source->tz, r);
}

static void put_rank(cdc_wide_op_t *op, const cdc_wide_op_t *unused)
{
    (void)unused;
    if (op->snapshot) {
        /* a snapshot's change time is unknown: below every streamed
         * state, then a hash of the state, so re-reading the same row
         * ranks the same and changes nothing */
        uint64_t h = 14695981039346656037ull;
        const char *parts[3] = {op->gone ? "g" : "l", op->row, ""};
        for (int p = 0; p < 2; p++) {
            for (const char *s = parts[p]; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ull;
            h = (h ^ 0x1f) * 1099511628211ull;
        }
        for (uint32_t k = 0; k < op->nkey; k++) {
            for (const char *s = op->key[k]; s && *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ull;
            h = (h ^ 0x1e) * 1099511628211ull;
        }
        for (uint32_t i = 0; i < op->nvals; i++) {
            const cdc_wide_val_t *v = &op->vals[i];
            h = (h ^ (unsigned char)(v->isnull ? 0 : 1)) * 1099511628211ull;
            for (size_t j = 0; !v->isnull && j < v->len; j++)
                h = (h ^ (unsigned char)v->s[j]) * 1099511628211ull;
        }
        cdc_hex(cdc_hex(cdc_hex(op->crank, 0, 16), 0, 16), h, 16)[0] = '\0';
        return;
    }
    memcpy(cdc_hex(op->crank, (uint64_t)op->commit_us ^ ((uint64_t)1 << 63),
                   16),
           op->pos, CDC_MAP_POS_LEN + 1);
}

/* Append the contribution state of row id: gone, or live with key and
 * the values of image c. */
static int emit(const cdc_map_mapping_t *mp, const cdc_txn_t *tx,
                const cdc_change_t *ch, const char *pos, const char *id,
                int gone, const char **key, xctx_t *c, cdc_wide_ops_t *out)
{
    const cdc_map_target_t *t = mp->target;
    cdc_wide_op_t *op = cdc_wide_ops_new(out);
    uint32_t nk = t->nkey;
    const char **kc = cdc_arena_calloc(&out->arena, sizeof(char *) * (nk + 1));
    uint32_t *kf = cdc_arena_alloc(&out->arena, sizeof(uint32_t) * (nk + 1));

    for (uint32_t i = 0; i < nk; i++) {
        kf[i] = mp->keys[i].field;
        kc[i] = key ? key[i] : NULL;
    }
    op->kind = CDC_WIDE_CONTRIB;
    op->target = t;
    op->mapping = mp;
    op->key = kc;
    op->keyfields = kf;
    op->nkey = nk;
    op->source = mp->source->id;
    op->commit_us = tx->commit_us;
    memcpy(op->pos, pos, CDC_MAP_POS_LEN + 1);
    memset(op->ord, '0', 16);
    op->snapshot = ch->op == CDC_OP_READ;
    op->row = id;
    op->gone = gone;
    if (!gone) {
        op->vals = cdc_arena_calloc(&out->arena,
                                    sizeof(*op->vals) * (mp->naggs + 1));
        for (uint32_t i = 0; i < mp->naggs; i++) {
            castres_t r;
            cdc_wide_val_t *v = &op->vals[op->nvals];
            if (contrib_value(mp, &mp->aggs[i], c, &r)) {
                out->n--;
                return -1;
            }
            v->field = mp->aggs[i].field;
            v->isnull = r.isnull;
            v->s = r.s;
            v->len = r.len;
            op->nvals++;
        }
    }
    put_rank(op, NULL);
    for (uint32_t i = 0; i < op->nvals; i++)
        memcpy(op->vals[i].rank, op->crank, sizeof(op->crank));
    return 0;
}

int cdc_map_agg_emit(const cdc_map_mapping_t *mp, const cdc_txn_t *tx,
                     const cdc_change_t *ch, const char *pos, xctx_t *ca,
                     xctx_t *cb, int have_a, const char **ka, int have_b,
                     const char **kb, cdc_wide_ops_t *out)
{
    const char *ida = NULL, *idb = NULL;

    if (ch->before && !(idb = row_id(mp, cb))) {
        /* an update's old image may carry only the changed key (or
         * nothing): the new image names the row */
        if (ch->op != CDC_OP_UPDATE || !ch->after)
            return -1;
        cdc_err_clear(ca->err);
    }
    if (ch->after && !(ida = row_id(mp, ca)))
        return -1;
    if (ch->op == CDC_OP_DELETE)
        return idb ? emit(mp, tx, ch, pos, idb, 1, have_b ? kb : NULL, cb,
                          out)
                   : 0;
    /* a row whose identity changed: the old one is gone */
    if (idb && ida && strcmp(idb, ida) &&
        emit(mp, tx, ch, pos, idb, 1, have_b ? kb : NULL, cb, out))
        return -1;
    if (!ida)
        return 0;
    return emit(mp, tx, ch, pos, ida, !have_a, have_a ? ka : NULL, ca, out);
}

/* ---- the value of an aggregate (the in-memory model) ---------------------- */

static int text_cmp(const char *a, size_t la, const char *b, size_t lb)
{
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : la < lb ? -1 : la > lb;
}

/* Compare two canonical values of field f. */
static int val_cmp(const cdc_map_field_t *f, const char *a, size_t la,
                   const char *b, size_t lb)
{
    switch (f->type) {
    case CDC_MT_INT:
    case CDC_MT_DECIMAL: {
        xv_t x, y;
        if (!cdc_xv_parse_dec(a, la, &x) && !cdc_xv_parse_dec(b, lb, &y)) {
            int sc = x.scale > y.scale ? x.scale : y.scale;
            if (!cdc_xv_rescale(&x, sc) && !cdc_xv_rescale(&y, sc))
                return x.m < y.m ? -1 : x.m > y.m;
        }
        break;
    }
    case CDC_MT_DOUBLE: {
        double x = strtod(a, NULL), y = strtod(b, NULL);
        return x < y ? -1 : x > y;
    }
    case CDC_MT_TIMESTAMP: {
        int64_t sx, sy;
        int ux, uy;
        if (!cdc_map_parse_ts(a, la, NULL, &sx, &ux) &&
            !cdc_map_parse_ts(b, lb, NULL, &sy, &uy))
            return sx != sy ? (sx < sy ? -1 : 1) : ux < uy ? -1 : ux > uy;
        break;
    }
    default:
        break;
    }
    return text_cmp(a, la, b, lb);
}

typedef struct sv {
    const char *s;
    size_t len;
} sv_t;

static int sv_cmp(const void *x, const void *y)
{
    const sv_t *a = x, *b = y;
    return text_cmp(a->s, a->len, b->s, b->len);
}

/* value text -> canonical text of f (via the cast) */
static void to_field(const cdc_map_field_t *f, const xv_t *v, char **out,
                     size_t *len)
{
    cdc_arena_t ar;
    cdc_err_t e = {0};
    xctx_t c = {.arena = &ar, .err = &e, .where = "aggregate",
                .mapping = "aggregate"};
    castres_t r;

    cdc_arena_init(&ar);
    if (!cdc_map_cast(&c, f, v, NULL, &r) && !r.isnull) {
        *out = cdc_xstrndup(r.s, r.len);
        *len = r.len;
    } else {
        *out = NULL;
        *len = 0;
    }
    cdc_arena_destroy(&ar);
}

void cdc_map_agg_fold(const cdc_map_field_t *f, const char *const *vals,
                      const size_t *lens, size_t n, char **out, size_t *len)
{
    size_t best = (size_t)-1, cnt = 0;
    xv_t v;

    *out = NULL;
    *len = 0;
    memset(&v, 0, sizeof(v));
    switch (f->agg) {
    case CDC_AGG_COUNT:
        for (size_t i = 0; i < n; i++)
            cnt += vals[i] != NULL;
        v.t = XV_DEC;
        v.m = (__int128)cnt;
        to_field(f, &v, out, len);
        return;
    case CDC_AGG_COUNT_DISTINCT: {
        sv_t *a = cdc_xcalloc(n + 1, sizeof(*a));
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (vals[i]) {
                a[m].s = vals[i];
                a[m++].len = lens[i];
            }
        qsort(a, m, sizeof(*a), sv_cmp);
        for (size_t i = 0; i < m; i++)
            cnt += !i || sv_cmp(&a[i - 1], &a[i]);
        free(a);
        v.t = XV_DEC;
        v.m = (__int128)cnt;
        to_field(f, &v, out, len);
        return;
    }
    case CDC_AGG_SUM:
        if (f->type == CDC_MT_DOUBLE) {
            /* in value order: the same sum whatever the arrival order */
            sv_t *a = cdc_xcalloc(n + 1, sizeof(*a));
            size_t m = 0;
            double s = 0;
            for (size_t i = 0; i < n; i++)
                if (vals[i]) {
                    a[m].s = vals[i];
                    a[m++].len = lens[i];
                }
            qsort(a, m, sizeof(*a), sv_cmp);
            for (size_t i = 0; i < m; i++)
                s += strtod(a[i].s, NULL);
            free(a);
            if (!m)
                return;
            v.t = XV_DBL;
            v.d = s;
            to_field(f, &v, out, len);
            return;
        }
        v.t = XV_DEC;
        for (size_t i = 0; i < n; i++) {
            xv_t x;
            int sc;
            if (!vals[i] || cdc_xv_parse_dec(vals[i], lens[i], &x))
                continue;
            sc = x.scale > v.scale ? x.scale : v.scale;
            if (cdc_xv_rescale(&x, sc) || cdc_xv_rescale(&v, sc))
                continue;
            v.m += x.m;
            cnt++;
        }
        if (cnt)
            to_field(f, &v, out, len);
        return;
    case CDC_AGG_MIN:
    case CDC_AGG_MAX:
        for (size_t i = 0; i < n; i++) {
            int c;
            if (!vals[i])
                continue;
            if (best == (size_t)-1) {
                best = i;
                continue;
            }
            c = val_cmp(f, vals[i], lens[i], vals[best], lens[best]);
            if (f->agg == CDC_AGG_MIN ? c < 0 : c > 0)
                best = i;
        }
        if (best != (size_t)-1) {
            *out = cdc_xstrndup(vals[best], lens[best]);
            *len = lens[best];
        }
        return;
    default:
        return;
    }
}

int cdc_map_agg_refuse(const cdc_map_target_t *t, const char *sink,
                       cdc_err_t *err)
{
    char list[300] = "";
    for (uint32_t f = 0; f < t->nfields; f++) {
        size_t l = strlen(list);
        if (t->fields[f].agg)
            snprintf(list + l, sizeof(list) - l, "%s%s", l ? ", " : "",
                     t->fields[f].name);
    }
    cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: target '%s' has aggregate "
                "fields (%s): the %s wide sink does not maintain aggregates",
                t->where, t->name, list, sink);
    cdc_err_hint(err, "write target '%s' with the PostgreSQL wide sink "
                 "(--sink postgres), or remove 'aggregates:' from its "
                 "mappings (docs/MAPPINGS.md, Aggregates)", t->name);
    return -1;
}
