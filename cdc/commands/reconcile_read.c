/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile_read.c - reading the sources through the snapshot drivers
 * (the drivers of `backfill`) and mapping their rows into the model of
 * the recomputed wide table (rc_t): per row and source the best cell, the
 * group candidates, the contributions, the lookups kept for last.
 */
#include "cdc/commands/reconcile_int.h"

int rc_src_index(const cdc_map_t *m, const char *id)
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
    int s = rc_src_index(rc->map, op->source);
    rc_cell_t *c;

    if (s < 0)
        return;
    if (!r->blk[s])
        r->blk[s] = cdc_xcalloc(rc->t->nfields, sizeof(rc_cell_t));
    c = &r->blk[s][v->field];
    if (cdc_wide_cell_offer(&c->w, op, v))
        c->row = intern(rc, rowtext ? rowtext : "");
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

static char **copy_vals(const cdc_wide_val_t *v, uint32_t n, size_t **lens)
{
    char **out = cdc_xcalloc(n + 1, sizeof(char *));
    *lens = cdc_xcalloc(n + 1, sizeof(size_t));
    for (uint32_t i = 0; i < n; i++)
        if (!v[i].isnull) {
            out[i] = cdc_xstrndup(v[i].s, v[i].len);
            (*lens)[i] = v[i].len;
        }
    return out;
}

/* A group candidate of a snapshot row (every one is live). */
static void gc_add(rc_t *rc, const cdc_wide_op_t *op, const char *rowtext)
{
    rc_row_t *r = rc_find(rc, op->key, 1);
    rc_gcand_t *g;

    if (r->ngc == r->capgc) {
        r->capgc = r->capgc ? 2 * r->capgc : 4;
        r->gc = cdc_xrealloc(r->gc, r->capgc * sizeof(*r->gc));
    }
    g = &r->gc[r->ngc++];
    memset(g, 0, sizeof(*g));
    g->group = op->group;
    g->mp = op->mapping;
    g->rowid = intern(rc, op->rowid);
    g->from = intern(rc, rowtext ? rowtext : "");
    g->src = intern(rc, op->source);
    snprintf(g->grank, sizeof(g->grank), "%s", op->grank);
    snprintf(g->vrank, sizeof(g->vrank), "%s", op->vrank);
    g->t = op->commit_us;
    g->vals = copy_vals(op->vals, op->nvals, &g->lens);
}

/* A live contribution of a snapshot row. */
static void ct_add(rc_t *rc, const cdc_wide_op_t *op)
{
    rc_row_t *r;
    rc_contrib_t *c;

    for (uint32_t k = 0; k < rc->t->nkey; k++)
        if (!op->key || !op->key[k])
            return; /* a NULL key contributes nothing */
    r = rc_find(rc, op->key, 1);
    if (r->nct == r->capct) {
        r->capct = r->capct ? 2 * r->capct : 4;
        r->ct = cdc_xrealloc(r->ct, r->capct * sizeof(*r->ct));
    }
    c = &r->ct[r->nct++];
    memset(c, 0, sizeof(*c));
    c->mp = op->mapping;
    c->rowid = intern(rc, op->row);
    snprintf(c->crank, sizeof(c->crank), "%s", op->crank);
    c->nvals = op->nvals;
    c->field = cdc_xcalloc(op->nvals + 1, sizeof(uint32_t));
    for (uint32_t i = 0; i < op->nvals; i++)
        c->field[i] = op->vals[i].field;
    c->vals = copy_vals(op->vals, op->nvals, &c->lens);
}

/* Whether the wide key key[] belongs to this pass's partition: a hash
 * (FNV-1a, then a 64-bit finalizer) of the key texts as rc_find joins
 * them, modulo the number of partitions.  A NULL key (it contributes
 * nothing) goes to the first. */
int rc_mine(const rc_t *rc, const char *const *key)
{
    uint64_t h = 1469598103934665603ULL;

    if (rc->nparts <= 1)
        return 1;
    if (!key)
        return rc->part == 0;
    for (uint32_t k = 0; k < rc->t->nkey; k++) {
        const unsigned char *p = (const unsigned char *)(key[k] ? key[k] : "");
        if (k)
            h = (h ^ 0x1f) * 1099511628211ULL;
        for (; *p; p++)
            h = (h ^ *p) * 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h % rc->nparts == rc->part;
}

void rc_apply(rc_t *rc, const cdc_wide_op_t *op, const char *rowtext)
{
    if (op->target != rc->t)
        return;
    /* a row, a candidate or a contribution of another partition's key is
     * left to its pass (a lookup updates the rows this pass has) */
    if (op->kind != CDC_WIDE_LOOKUP && !rc_mine(rc, op->key))
        return;
    if (op->kind == CDC_WIDE_GROUP) {
        if (!op->gdeleted)
            gc_add(rc, op, rowtext);
        return;
    }
    if (op->kind == CDC_WIDE_CONTRIB) {
        if (!op->gone)
            ct_add(rc, op);
        return;
    }
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
                    w < 0 ? NULL : rc_cell(r, w, f);
                cur = c && !c->w.isnull ? c->w.val : NULL;
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

/* Read every table of pipeline conf's source that a mapping of T reads
 * (with est: add up their estimated row counts instead). */
static int rc_source(rc_t *rc, const cdc_conf_t *conf, const char *file,
                     char *seen, uint64_t *est, cdc_err_t *err)
{
    const char *app = cdc_conf_app_id(conf);
    const char *stype = cdc_conf_get(conf, "source.type", "mysql");
    const cdc_snap_ops_t *d = cdc_snap_find(stype);
    int si = rc_src_index(rc->map, app);
    cdc_snap_t *s;
    int any = 0, r = 0;

    if (si < 0) {
        if (!est && rc->part == 0)
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
        if (est) {
            /* the estimate only: the table's estimated row count */
            cdc_table_t *tbl = NULL;
            uint64_t n = 0;
            if (!(r = d->describe(s, mp->db, mp->table, &tbl, &n, err)))
                *est += n;
            if (!r && !n)
                CDC_WARN(FAC, "%s.%s of source %s: the server estimates no "
                              "rows (never analyzed?): reconcile.max_memory_mb "
                              "counts it as empty; ANALYZE it, or give "
                              "--partitions", mp->db, mp->table, app);
            if (tbl)
                cdc_table_destroy(tbl);
            continue;
        }
        if (rc->nparts > 1)
            CDC_INFO(FAC, "reading %s.%s of source %s (partition %u of %u)",
                     mp->db, mp->table, app, rc->part + 1, rc->nparts);
        else
            CDC_INFO(FAC, "reading %s.%s of source %s", mp->db, mp->table,
                     app);
        r = rc_read_table(rc, d, s, app, mp->db, mp->table, err);
    }
    d->close(s);
    if (!r && !any && !est && rc->part == 0)
        CDC_WARN(FAC, "%s: no mapping of source '%s' writes %s", file, app,
                 rc->t->name);
    return r;
}

/* Read every table of pipeline conf's source that a mapping of T reads
 * (this pass's partition of the keys). */
int rc_read_source(rc_t *rc, const cdc_conf_t *conf, const char *file,
                   char *seen, cdc_err_t *err)
{
    return rc_source(rc, conf, file, seen, NULL, err);
}

/* The memory a pass over every key would take, estimated from the source
 * tables' estimated row counts (the servers' statistics): per source row
 * a row's cells of every field and its derived values, the row text, the
 * index; the same for a candidate or a contribution (an over-estimate:
 * they hold only their fields). */
int rc_estimate_source(rc_t *rc, const cdc_conf_t *conf, const char *file,
                       char *seen, uint64_t *rows, uint64_t *bytes,
                       cdc_err_t *err)
{
    uint64_t n = 0;
    int r = rc_source(rc, conf, file, seen, &n, err);
    *rows += n;
    *bytes += n * ((uint64_t)rc->t->nfields *
                       (sizeof(rc_cell_t) + sizeof(rc_calc_t) + 64) +
                   512);
    return r;
}

void rc_free(rc_t *rc)
{
    for (size_t i = 0; i < rc->n; i++) {
        rc_row_t *r = rc->rows[i];
        for (uint32_t s = 0; s < rc->map->nsources; s++) {
            if (!r->blk[s])
                continue;
            for (uint32_t f = 0; f < rc->t->nfields; f++)
                free(r->blk[s][f].w.val);
            free(r->blk[s]);
        }
        for (size_t k = 0; k < r->ngc; k++) {
            for (uint32_t j = 0; j < rc->t->groups[r->gc[k].group].nfields;
                 j++)
                free(r->gc[k].vals[j]);
            free(r->gc[k].vals);
            free(r->gc[k].lens);
        }
        free(r->gc);
        for (size_t k = 0; k < r->nct; k++) {
            for (uint32_t j = 0; j < r->ct[k].nvals; j++)
                free(r->ct[k].vals[j]);
            free(r->ct[k].vals);
            free(r->ct[k].lens);
            free(r->ct[k].field);
        }
        free(r->ct);
        if (r->calc)
            for (uint32_t f = 0; f < rc->t->nfields; f++) {
                free(r->calc[f].val);
                free(r->calc[f].prov);
                free(r->calc[f].adm);
            }
        free(r->calc);
        free(r->gwin);
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

/* Free the model of one pass and start the next from empty (the mapping,
 * the target and the partitioning stay). */
void rc_reset(rc_t *rc)
{
    rc_t keep = {.map = rc->map, .t = rc->t, .part = rc->part,
                 .nparts = rc->nparts};
    rc_free(rc);
    *rc = keep;
}
