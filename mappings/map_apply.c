/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map_apply.c - map one row change to wide operations.
 *
 * Pure: evaluate the row filter, the business key and each assignment
 * (expression, value map, default, cast to the target type) over the row
 * image, then attach to every value its rank under the field's conflict
 * rule (map.h).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/envelope.h"
#include "cdc/util.h"
#include "mappings/map_int.h"

void cdc_wide_ops_init(cdc_wide_ops_t *o)
{
    memset(o, 0, sizeof(*o));
    cdc_arena_init(&o->arena);
}

void cdc_wide_ops_reset(cdc_wide_ops_t *o)
{
    o->n = 0;
    cdc_arena_reset(&o->arena);
}

void cdc_wide_ops_free(cdc_wide_ops_t *o)
{
    free(o->ops);
    cdc_arena_destroy(&o->arena);
    memset(o, 0, sizeof(*o));
}

cdc_wide_op_t *cdc_wide_ops_new(cdc_wide_ops_t *o)
{
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 16;
        o->ops = cdc_xrealloc(o->ops, o->cap * sizeof(*o->ops));
    }
    memset(&o->ops[o->n], 0, sizeof(o->ops[0]));
    return &o->ops[o->n++];
}

int cdc_map_wants(const cdc_map_t *m, const char *source, const char *db,
                  const char *table)
{
    for (uint32_t i = 0; i < m->nmappings; i++) {
        const cdc_map_mapping_t *mp = &m->mappings[i];
        if (!strcmp(mp->source->id, source) && !strcmp(mp->db, db) &&
            !strcmp(mp->table, table))
            return 1;
    }
    return 0;
}

/* value map: compare as numbers when both sides are numbers */
static int map_match(const char *key, const xv_t *v, const char *s, size_t len)
{
    xv_t a, b;
    if (strlen(key) == len && !memcmp(key, s, len))
        return 1;
    if ((v->t == XV_DEC || v->t == XV_DBL || v->t == XV_STR) &&
        !cdc_xv_parse_dec(key, strlen(key), &a) &&
        !cdc_xv_parse_dec(s, len, &b)) {
        int sc = a.scale > b.scale ? a.scale : b.scale;
        if (!cdc_xv_rescale(&a, sc) && !cdc_xv_rescale(&b, sc))
            return a.m == b.m;
    }
    if (v->t == XV_BOOL) {
        if ((!strcasecmp(key, "true") || !strcmp(key, "1")) && v->b)
            return 1;
        if ((!strcasecmp(key, "false") || !strcmp(key, "0")) && !v->b)
            return 1;
    }
    return 0;
}

/* Evaluate one assignment; 1 = skip (a column is absent), 0 ok, -1 err. */
static int compute(const cdc_map_mapping_t *mp, const cdc_map_field_t *f,
                   const cdc_map_assign_t *a, const char *colname, xctx_t *c,
                   castres_t *r)
{
    xv_t v;
    const cdc_tz_t *zone = a && a->tz ? a->tz : mp->source->tz;

    c->where = a ? a->where : mp->where;
    c->mapping = mp->name;
    if (a && a->expr) {
        if (cdc_expr_eval(a->expr, c, &v))
            return -1;
    } else if (colname) {
        int found;
        cdc_xv_column(c, colname, &v, &found);
    } else
        v.t = XV_NULL;
    if (v.t == XV_MISSING)
        return 1;
    if (a && a->nmap && v.t != XV_NULL) {
        size_t len;
        const char *s = cdc_xv_text(&v, c->arena, &len);
        int hit = -1;
        for (int i = 0; i < a->nmap && hit < 0; i++)
            if (map_match(a->map_from[i], &v, s, len))
                hit = i;
        if (hit >= 0 || a->has_else) {
            const char *to = hit >= 0 ? a->map_to[hit] : a->map_else;
            memset(&v, 0, sizeof(v));
            if (to) {
                v.t = XV_STR;
                v.s = to;
                v.len = strlen(to);
            }
        }
    }
    if (a && a->def && v.t == XV_NULL) {
        memset(&v, 0, sizeof(v));
        v.t = XV_STR;
        v.s = a->def;
        v.len = strlen(a->def);
    }
    return cdc_map_cast(c, f, &v, zone, r);
}

static int filter_pass(const cdc_map_mapping_t *mp, xctx_t *c, int *pass)
{
    xv_t v;
    *pass = 1;
    if (!mp->filter)
        return 0;
    c->where = mp->where;
    if (cdc_expr_eval(mp->filter, c, &v))
        return -1;
    /* a filter that reads an absent column cannot decide: keep the row */
    *pass = v.t == XV_MISSING ? 1 : (v.t != XV_NULL && (v.t == XV_BOOL ? v.b
                                     : v.t == XV_DEC ? v.m != 0
                                     : v.t == XV_STR ? v.len > 0 : v.d != 0));
    return 0;
}

/* Key texts of a row; 1 if a key is NULL or absent (row skipped). */
static int compute_key(const cdc_map_mapping_t *mp, xctx_t *c,
                       const char **key)
{
    int nk = (int)mp->nkeys;
    for (int i = 0; i < nk; i++) {
        castres_t r;
        const cdc_map_assign_t *a = &mp->keys[i];
        int rc = compute(mp, &mp->target->fields[a->field], a, NULL, c, &r);
        if (rc)
            return rc;
        if (r.isnull)
            return 1;
        key[i] = r.s;
    }
    return 0;
}

static int included(const cdc_map_mapping_t *mp, const char *col)
{
    int inc = 0;
    for (int i = 0; i < mp->ninclude && !inc; i++)
        inc = !strcmp(mp->include[i], "*") || !strcmp(mp->include[i], col);
    for (int i = 0; i < mp->nexclude && inc; i++)
        inc = strcmp(mp->exclude[i], col) != 0;
    return inc;
}

/*
 * The order value of a row (rule ordered): the mapping's order_by over
 * the image, as 16 sortable hex digits of a signed 64-bit number: an
 * integer as itself, a date-time as microseconds since the epoch (naive
 * ones in the source's zone).  NULL (or a zero date) is all zeros, below
 * every value.  0 ok, 1 the image lacks a column it reads, -1 a value
 * that is neither (CDC_EXIT_DATA).
 */
static int order_value(const cdc_map_mapping_t *mp, xctx_t *c, char out[17])
{
    xv_t v;
    int64_t n = 0;
    int ok = 0;

    memset(out, '0', 16);
    out[16] = '\0';
    if (!mp->order_by)
        return 0;
    c->where = mp->where;
    c->mapping = mp->name;
    if (cdc_expr_eval(mp->order_by, c, &v))
        return -1;
    if (v.t == XV_MISSING)
        return 1;
    if (v.t == XV_NULL)
        return 0;
    if (v.t == XV_DEC) {
        __int128 one = 1;
        for (int i = 0; i < v.scale; i++)
            one *= 10;
        if (v.m % one == 0 && v.m / one <= INT64_MAX &&
            v.m / one >= INT64_MIN) {
            n = (int64_t)(v.m / one);
            ok = 1;
        }
    } else if (v.t == XV_DBL) {
        if (isfinite(v.d) && floor(v.d) == v.d && fabs(v.d) < 9.2e18) {
            n = (int64_t)v.d;
            ok = 1;
        }
    } else if (v.t == XV_STR) {
        int64_t sec;
        int us;
        xv_t d;
        int rc = cdc_map_parse_ts(v.s, v.len, mp->source->tz, &sec, &us);
        if (rc == 1)
            return 0; /* a zero date: NULL */
        if (!rc && sec < INT64_MAX / 1000000 - 1 && sec > INT64_MIN / 1000000 + 1) {
            n = sec * 1000000 + us;
            ok = 1;
        } else if (!cdc_xv_parse_dec(v.s, v.len, &d) && d.scale == 0 &&
                   d.m <= INT64_MAX && d.m >= INT64_MIN) {
            n = (int64_t)d.m;
            ok = 1;
        }
    }
    if (!ok) {
        size_t len;
        const char *s = cdc_xv_text(&v, c->arena, &len);
        char shown[320];
        cdc_err_set(c->err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                    "%s: mapping '%s': order_by value '%s' is neither an "
                    "integer nor a date-time", mp->where, mp->name,
                    cdc_map_show_value(s ? s : "", s ? len : 0, shown,
                                       sizeof(shown)));
        cdc_err_hint(c->err, "order_by needs a column or expression giving "
                     "an integer (a version) or a date-time (created_at)");
        return -1;
    }
    cdc_hex(out, (uint64_t)n ^ ((uint64_t)1 << 63), 16);
    out[16] = '\0';
    return 0;
}

/* The order value of an image that must have it: -1 with err if not. */
static int order_needed(const cdc_map_mapping_t *mp, xctx_t *c, char out[17])
{
    int rc = order_value(mp, c, out);
    if (rc == 1) {
        cdc_err_set(c->err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                    "%s: mapping '%s': the change does not carry a column "
                    "its order_by reads", mp->where, mp->name);
        cdc_err_hint(c->err, "ordered fields need full row images: MySQL "
                     "binlog_row_image=FULL, PostgreSQL REPLICA IDENTITY "
                     "FULL for deletes");
        return -1;
    }
    return rc;
}

/*
 * The confidence of a row (the mapping's confidence:, else 1) in
 * millionths, rounded half away from zero: a number (or a boolean, 1/0)
 * from 0 to 1000000.  0 ok, 1 the image lacks a column it reads, -1 NULL,
 * negative, too large or not a number (CDC_EXIT_DATA, mapping and value
 * named).
 */
static int confidence_value(const cdc_map_mapping_t *mp, xctx_t *c,
                            int64_t *conf6)
{
    xv_t v, d;
    const char *why = NULL;

    *conf6 = 1000000;
    if (!mp->confidence)
        return 0;
    c->where = mp->where;
    c->mapping = mp->name;
    if (cdc_expr_eval(mp->confidence, c, &v))
        return -1;
    if (v.t == XV_MISSING)
        return 1;
    if (v.t == XV_BOOL) {
        *conf6 = v.b ? 1000000 : 0;
        return 0;
    }
    memset(&d, 0, sizeof(d));
    if (v.t == XV_DEC)
        d = v;
    else if (v.t == XV_STR) {
        if (cdc_xv_parse_dec(v.s, v.len, &d))
            why = "is not a number";
    } else if (v.t == XV_DBL) {
        char buf[64];
        if (!isfinite(v.d))
            why = "is not a finite number";
        else {
            snprintf(buf, sizeof(buf), "%.6f", v.d);
            if (cdc_xv_parse_dec(buf, strlen(buf), &d))
                why = "is not a number";
        }
    } else
        why = "is NULL";
    if (!why && cdc_xv_rescale(&d, 6))
        why = "is too large";
    if (!why && d.m < 0)
        why = "is negative";
    if (!why && d.m > (__int128)1000000 * 1000000)
        why = "is above 1000000";
    if (why) {
        size_t len = 0;
        const char *s = v.t == XV_NULL ? "NULL" : cdc_xv_text(&v, c->arena, &len);
        char shown[320];
        if (v.t == XV_NULL)
            len = 4;
        cdc_err_set(c->err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                    "%s: mapping '%s': confidence value '%s' %s", mp->where,
                    mp->name, cdc_map_show_value(s ? s : "", s ? len : 0,
                                                 shown, sizeof(shown)), why);
        cdc_err_hint(c->err, "confidence must give a number from 0 to "
                     "1000000 for every row (coalesce() a NULL, e.g. "
                     "case when verified then 1.0 else 0.6 end)");
        return -1;
    }
    *conf6 = (int64_t)d.m;
    return 0;
}

/* The confidence of an image that must have it (a delete's before
 * image): -1 with err if it lacks a column. */
static int confidence_needed(const cdc_map_mapping_t *mp, xctx_t *c,
                             int64_t *conf6)
{
    int rc = confidence_value(mp, c, conf6);
    if (rc == 1) {
        cdc_err_set(c->err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                    "%s: mapping '%s': the change does not carry a column "
                    "its confidence reads", mp->where, mp->name);
        cdc_err_hint(c->err, "scored fields need full row images: MySQL "
                     "binlog_row_image=FULL, PostgreSQL REPLICA IDENTITY "
                     "FULL");
        return -1;
    }
    return rc;
}

static cdc_wide_op_t *start_op(cdc_wide_ops_t *out, const cdc_map_mapping_t *mp,
                               cdc_wide_kind_t kind, const char **key,
                               int64_t commit_us, const char *pos,
                               const char *ord, int64_t conf6)
{
    cdc_wide_op_t *op = cdc_wide_ops_new(out);
    int nk = (int)mp->nkeys;
    uint32_t *kf = cdc_arena_alloc(&out->arena, sizeof(uint32_t) * (size_t)nk);
    const char **kc = cdc_arena_alloc(&out->arena, sizeof(char *) * (size_t)nk);

    for (int i = 0; i < nk; i++) {
        kf[i] = mp->keys[i].field;
        kc[i] = key[i];
    }
    op->kind = kind;
    op->target = mp->target;
    op->mapping = mp;
    op->key = kc;
    op->keyfields = kf;
    op->nkey = (uint32_t)nk;
    op->source = mp->source->id;
    op->commit_us = commit_us;
    memcpy(op->pos, pos, CDC_MAP_POS_LEN + 1);
    memcpy(op->ord, ord, sizeof(op->ord));
    op->conf6 = conf6;
    return op;
}

static void add_val(cdc_wide_ops_t *out, cdc_wide_op_t *op, uint32_t field,
                    const castres_t *r, uint32_t cap)
{
    cdc_wide_val_t *v;
    const cdc_map_field_t *fd = &op->target->fields[field];
    char hex[17];
    const char *hexp = NULL;
    if (!op->vals)
        op->vals = cdc_arena_calloc(&out->arena, sizeof(*op->vals) * (cap + 1));
    v = &op->vals[op->nvals++];
    v->field = field;
    v->isnull = r->isnull;
    v->s = r->s;
    v->len = r->len;
    if (cdc_map_scored(fd)) {
        /* the score: confidence x weight (decayed by age); the rank of
         * rule weighted leads with it (existing files without confidence
         * and half_life: the weight alone, as before) */
        cdc_map_score(fd, op->mapping->source, op->conf6, op->commit_us,
                      op->snapshot, v->score, hex);
        if (fd->rule == CDC_RULE_WEIGHTED)
            hexp = hex;
    }
    if (op->snapshot) {
        /* a snapshot value's change time is unknown: below every commit
         * time (T = 0), then the value's hash in place of the position, so
         * a re-read of the same value ranks the same (a second backfill
         * writes nothing) and two snapshot values compare alike in every
         * order */
        char sp[CDC_MAP_POS_LEN + 1];
        uint64_t h = 14695981039346656037ull;
        h = (h ^ (unsigned char)(r->isnull ? 0 : 1)) * 1099511628211ull;
        for (size_t i = 0; !r->isnull && i < r->len; i++)
            h = (h ^ (unsigned char)r->s[i]) * 1099511628211ull;
        cdc_hex(cdc_hex(sp, 0, 16), h, 16)[0] = '\0';
        cdc_map_make_rank(fd, op->mapping->source, INT64_MIN, sp, op->ord,
                          hexp, v->rank);
        return;
    }
    cdc_map_make_rank(fd, op->mapping->source, op->commit_us, op->pos,
                      op->ord, hexp, v->rank);
}

int cdc_map_compute(const cdc_map_mapping_t *mp, const cdc_map_field_t *f,
                    const cdc_map_assign_t *a, const char *colname, xctx_t *c,
                    castres_t *r)
{
    return compute(mp, f, a, colname, c, r);
}

cdc_wide_op_t *cdc_map_start_op(cdc_wide_ops_t *out,
                                const cdc_map_mapping_t *mp,
                                cdc_wide_kind_t kind, const char **key,
                                int64_t commit_us, const char *pos,
                                const char *ord)
{
    return start_op(out, mp, kind, key, commit_us, pos, ord, 1000000);
}

static uint32_t max_vals(const cdc_map_mapping_t *mp, const cdc_table_t *t)
{
    return mp->nfields + (mp->ninclude > 0 ? t->ncols : 0);
}

/* the delete action of a mapping for key */
static void emit_delete(const cdc_map_mapping_t *mp, const cdc_table_t *tbl,
                        const char **key, int64_t commit_us, const char *pos,
                        const char *ord, int64_t conf6, cdc_wide_ops_t *out)
{
    cdc_wide_op_t *op;
    castres_t nul = {.isnull = 1};

    if (mp->on_delete == CDC_DEL_IGNORE || mp->lookup)
        return;
    if (mp->on_delete == CDC_DEL_ROW) {
        /* a field-level tombstone: NULL with the deletion mark, ranked as a
         * write of this change, on every non-key field of the target (not
         * only ours): it wins exactly where the delete is the newest (under
         * each field's rule), whatever the order of arrival */
        const cdc_map_target_t *t = mp->target;
        op = start_op(out, mp, CDC_WIDE_DELETE, key, commit_us, pos, ord,
                      conf6);
        for (uint32_t f = 0; f < t->nfields; f++) {
            if (t->fields[f].is_key || t->fields[f].agg)
                continue; /* aggregates are computed, not written */
            add_val(out, op, f, &nul, t->nfields);
            op->vals[op->nvals - 1].deleted = 1;
        }
        return;
    }
    op = start_op(out, mp, CDC_WIDE_UPSERT, key, commit_us, pos, ord, conf6);
    for (uint32_t i = 0; i < mp->nfields; i++)
        if (!mp->target->fields[mp->fields[i].field].group)
            add_val(out, op, mp->fields[i].field, &nul, max_vals(mp, tbl));
    if (mp->ninclude > 0)
        for (uint32_t c = 0; c < tbl->ncols; c++) {
            int fi = cdc_map_find_field(mp->target, tbl->cols[c].name);
            int dup = 0;
            if (fi < 0 || mp->target->fields[fi].is_key ||
                mp->target->fields[fi].group ||
                mp->target->fields[fi].agg ||
                !cdc_map_owns(&mp->target->fields[fi], mp->source->id) ||
                !included(mp, tbl->cols[c].name))
                continue;
            for (uint32_t k = 0; k < op->nvals; k++)
                dup |= op->vals[k].field == (uint32_t)fi;
            if (!dup)
                add_val(out, op, (uint32_t)fi, &nul, max_vals(mp, tbl));
        }
    /* a mapping that writes only groups: its candidates say it */
    if (!op->nvals && mp->ngw)
        out->n--;
}

static int same_key(const char **a, const char **b, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(a[i], b[i]))
            return 0;
    return 1;
}

/* Offer the values of one upsert (or lookup) op: every mapped field and
 * copied column whose value the change sets.  cmp_before: an update of
 * the same key, so a field whose value did not change is not offered
 * again, unless the row's order value changed (reorder, rule ordered). */
static int offer_values(const cdc_map_mapping_t *mp, const cdc_change_t *ch,
                        xctx_t *ca, xctx_t *cb, int cmp_before, int reorder,
                        cdc_wide_ops_t *out, cdc_wide_op_t *op)
{
    uint32_t cap = max_vals(mp, ch->tbl);

    for (uint32_t i = 0; i < mp->nfields + (mp->ninclude > 0 ? ch->tbl->ncols : 0);
         i++) {
        const cdc_map_assign_t *a = NULL;
        const char *col = NULL;
        uint32_t fi;
        castres_t r, rb;
        if (i < mp->nfields) {
            a = &mp->fields[i];
            fi = a->field;
        } else {
            int f, dup = 0;
            col = ch->tbl->cols[i - mp->nfields].name;
            f = cdc_map_find_field(mp->target, col);
            if (f < 0 || mp->target->fields[f].is_key ||
                mp->target->fields[f].agg ||
                !cdc_map_owns(&mp->target->fields[f], mp->source->id) ||
                !included(mp, col))
                continue;
            for (uint32_t k = 0; k < mp->nfields; k++)
                dup |= mp->fields[k].field == (uint32_t)f;
            if (dup)
                continue;
            fi = (uint32_t)f;
        }
        const cdc_map_field_t *f = &mp->target->fields[fi];
        if (f->group)
            continue; /* offered by its group's candidate (map_group.c) */
        int rc = compute(mp, f, a, col, ca, &r);
        if (rc < 0)
            return -1;
        if (rc == 1)
            continue;
        /* priority: only non-null values compete */
        if (r.isnull && f->rule == CDC_RULE_PRIORITY)
            continue;
        if (cmp_before && !(a && a->expr &&
                            cdc_expr_uses_commit_time(a->expr)) &&
            !((reorder & 1) && f->rule == CDC_RULE_ORDERED) &&
            !((reorder & 2) && cdc_map_scored(f))) {
            int rcb = compute(mp, f, a, col, cb, &rb);
            if (rcb < 0) {
                cdc_err_clear(ca->err); /* the old image may not cast */
            } else if (rcb == 0 && rb.isnull == r.isnull &&
                       (r.isnull || (rb.len == r.len &&
                                     !memcmp(rb.s, r.s, r.len))))
                continue; /* this field did not change */
        }
        add_val(out, op, fi, &r, cap);
    }
    return 0;
}

static int map_one(const cdc_map_t *m, const cdc_map_mapping_t *mp,
                   const cdc_txn_t *tx, const cdc_change_t *ch,
                   const char *pos, cdc_wide_ops_t *out, cdc_err_t *err)
{
    xctx_t ca = {.tbl = ch->tbl, .row = ch->after, .commit_us = tx->commit_us,
                 .source = mp->source->id, .arena = &out->arena, .err = err,
                 .mapping = mp->name, .limits = m->limits};
    xctx_t cb = ca;
    int nk = (int)mp->nkeys;
    const char *ka[64], *kb[64];
    int pass_a = 0, pass_b = 0, have_a = 0, have_b = 0, rc;
    uint32_t n0 = out->n;
    char ord_a[17] = "0000000000000000", ord_b[17] = "0000000000000000";
    int64_t conf_a = 1000000, conf_b = 1000000;

    cb.row = ch->before;
    if (nk > 64)
        return cdc_err_set(err, CDC_EXIT_CONFIG, 0, "too many key fields");
    if (ch->op == CDC_OP_TRUNCATE)
        return 0; /* a truncate names no business keys */
    if (ch->after && filter_pass(mp, &ca, &pass_a))
        return -1;
    if (ch->before && filter_pass(mp, &cb, &pass_b))
        return -1;
    if (ch->after && pass_a) {
        rc = compute_key(mp, &ca, ka);
        if (rc < 0)
            return -1;
        have_a = rc == 0;
        if (rc == 1)
            out->skipped++;
    }
    if (ch->before && pass_b) {
        rc = compute_key(mp, &cb, kb);
        if (rc < 0)
            return -1;
        have_b = rc == 0;
    }
    /* aggregates: the row's contribution (map_agg.c); a mapping with
     * nothing else writes no row of its own */
    if (mp->naggs) {
        if (cdc_map_agg_emit(mp, tx, ch, pos, &ca, &cb, have_a, ka, have_b,
                             kb, out))
            return -1;
        if (!mp->nfields && !mp->ninclude && mp->on_delete != CDC_DEL_ROW)
            return (int)(out->n - n0);
    }
    if (ch->op == CDC_OP_DELETE) {
        if (have_b && mp->on_delete != CDC_DEL_IGNORE &&
            (order_needed(mp, &cb, ord_b) ||
             confidence_needed(mp, &cb, &conf_b)))
            return -1;
        if (have_b)
            emit_delete(mp, ch->tbl, kb, tx->commit_us, pos, ord_b, conf_b,
                        out);
        if (have_b && mp->ngw && mp->on_delete != CDC_DEL_IGNORE &&
            cdc_map_group_ops(mp, tx, ch, pos, NULL, NULL, NULL, &cb, kb,
                              ord_b, 0, out))
            return -1;
        return (int)(out->n - n0);
    }
    /* update that moves the row out of the filter or to another key */
    if (have_b && (!have_a || !same_key(ka, kb, nk))) {
        if (mp->on_delete != CDC_DEL_IGNORE &&
            (order_needed(mp, &cb, ord_b) ||
             confidence_needed(mp, &cb, &conf_b)))
            return -1;
        emit_delete(mp, ch->tbl, kb, tx->commit_us, pos, ord_b, conf_b, out);
        if (mp->ngw && mp->on_delete != CDC_DEL_IGNORE &&
            cdc_map_group_ops(mp, tx, ch, pos, NULL, NULL, NULL, &cb, kb,
                              ord_b, 0, out))
            return -1;
    }
    if (!have_a)
        return (int)(out->n - n0);
    if (order_needed(mp, &ca, ord_a) || confidence_needed(mp, &ca, &conf_a))
        return -1;
    {
        int cmp_before = have_b && same_key(ka, kb, nk) &&
                         ch->op == CDC_OP_UPDATE;
        /* a new order value re-ranks the ordered fields, changed or not */
        int reorder = 0;
        if (cmp_before && mp->order_by) {
            int rcb = order_value(mp, &cb, ord_b);
            if (rcb < 0)
                cdc_err_clear(err); /* the old image may not cast */
            reorder = rcb != 0 || strcmp(ord_a, ord_b) != 0 ? 1 : 0;
        }
        /* a new confidence re-scores the scored fields, changed or not */
        if (cmp_before && mp->confidence) {
            int rcb = confidence_value(mp, &cb, &conf_b);
            if (rcb < 0)
                cdc_err_clear(err);
            if (rcb != 0 || conf_a != conf_b)
                reorder |= 2;
        }
        cdc_wide_op_t *op = start_op(out, mp, mp->lookup ? CDC_WIDE_LOOKUP
                                                         : CDC_WIDE_UPSERT,
                                     ka, tx->commit_us, pos, ord_a, conf_a);
        op->snapshot = ch->op == CDC_OP_READ;
        if (offer_values(mp, ch, &ca, &cb, cmp_before, reorder, out, op))
            return -1;
        /* an update that changed none of our fields: nothing to do (nor
         * an op without values of a mapping with groups: its candidates
         * make the row) */
        if (!op->nvals && (ch->op == CDC_OP_UPDATE || mp->lookup || mp->ngw))
            out->n--;
        if (mp->ngw && !mp->lookup &&
            cdc_map_group_ops(mp, tx, ch, pos, &ca, ka, ord_a,
                              have_b && same_key(ka, kb, nk) ? &cb : NULL, kb,
                              ord_b, cmp_before, out))
            return -1;
    }
    return (int)(out->n - n0);
}

int cdc_map_change(const cdc_map_t *m, const char *source,
                   const cdc_txn_t *tx, const cdc_change_t *ch, uint32_t idx,
                   cdc_wide_ops_t *out, cdc_err_t *err)
{
    char pos[CDC_MAP_POS_LEN + 1];
    int total = 0, got = 0;

    for (uint32_t i = 0; i < m->nmappings; i++) {
        const cdc_map_mapping_t *mp = &m->mappings[i];
        int r;
        if (strcmp(mp->source->id, source) || strcmp(mp->db, ch->tbl->db) ||
            strcmp(mp->table, ch->tbl->name))
            continue;
        if (!got) {
            cdc_map_change_pos(tx, ch, idx, pos);
            got = 1;
        }
        r = map_one(m, mp, tx, ch, pos, out, err);
        if (r < 0)
            return -1;
        total += r;
    }
    return total;
}

void cdc_wide_prov_json(cdc_buf_t *out, const cdc_wide_op_t *op,
                        const cdc_wide_val_t *v)
{
    cdc_buf_puts(out, "{\"s\":");
    cdc_json_string(out, op->source, strlen(op->source));
    char num[24];
    int n = 24;
    uint64_t u = op->commit_us < 0 ? (uint64_t)0 - (uint64_t)op->commit_us
                                   : (uint64_t)op->commit_us;
    do
        num[--n] = (char)('0' + u % 10);
    while (u /= 10);
    if (op->commit_us < 0)
        num[--n] = '-';
    /* per field of every row: no printf */
    cdc_buf_puts(out, ",\"t\":");
    cdc_buf_put(out, num + n, (size_t)(24 - n));
    cdc_buf_puts(out, ",\"r\":\"");
    cdc_buf_puts(out, v->rank);
    cdc_buf_putc(out, '"');
    {
        /* the score, where confidence or decay make it more than the
         * weight (existing files keep their provenance byte for byte) */
        const cdc_map_field_t *f = &op->target->fields[v->field];
        if (v->score[0] && ((op->mapping && op->mapping->confidence) ||
                            f->half_life_us ||
                            f->per_source)) {
            cdc_buf_puts(out, ",\"sc\":\"");
            cdc_buf_puts(out, v->score);
            cdc_buf_putc(out, '"');
        }
    }
    cdc_buf_puts(out, v->deleted ? ",\"d\":1}" : "}");
}

void cdc_map_tombstone_table(const cdc_map_target_t *t, char *out, size_t n)
{
    snprintf(out, n, "%s_tombstones", t->table);
}

