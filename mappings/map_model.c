/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map_model.c - the in-memory wide table: applies wide operations with
 * exactly the sinks' semantics (a field takes a candidate only when its
 * rank is strictly greater).  Used by the tests, `mapping test` and the
 * sinks' batch merging.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/envelope.h"
#include "cdc/util.h"
#include "mappings/map_int.h"

/* one source's current value of a vote / weighted_mean field */
typedef struct mvote {
    char src[33];
    int isnull;
    char *val;
    size_t len;
    char rank[CDC_MAP_RANK_LEN + 1];
    char score[32];
    int deleted;
    int64_t t;
} mvote_t;

typedef struct mcell {
    cdc_wide_cell_t w; /* the winner: value, rank, provenance */
    mvote_t *votes; /* rules vote, weighted_mean: per source */
    size_t nvotes;
    char total[48]; /* their summed score (cdc_vote_compute) */
    int agg;       /* an aggregate field's computed value (w.isnull,
                      w.val) */
} mcell_t;

typedef struct mrow {
    const cdc_map_target_t *target;
    char *keytext;  /* target \x1f key \x1f key ... */
    char **key;
    mcell_t *cells; /* target->nfields */
    int live;
    cdc_gcands_t *gc; /* candidates of its field groups (map_group.c) */
    size_t nlive;   /* live contributions naming this key (aggregates) */
    size_t *cix;    /* indexes of the contributions naming this key */
    size_t ncix, capcix;
} mrow_t;

/* the stored state of one source row's contribution (aggregates) */
typedef struct mcontrib {
    const cdc_map_target_t *target;
    char *id;       /* mapping name \x1f row identity */
    char **key;     /* target->nkey texts; NULL when gone */
    int gone;
    char rank[CDC_MAP_RANK_LEN + 1];
    uint32_t nvals;
    uint32_t *field;
    char **val;     /* NULL = SQL NULL */
    size_t *len;
} mcontrib_t;

struct cdc_wide_model {
    mrow_t **rows;
    size_t n, cap;
    size_t *hash;   /* open addressing: index+1 into rows, 0 empty */
    size_t hcap;
    mcontrib_t *contribs;
    size_t ncontribs, capcontribs;
    cdc_strix_t cids; /* contribution id -> index */
};

cdc_wide_model_t *cdc_wide_model_new(void)
{
    return cdc_xcalloc(1, sizeof(cdc_wide_model_t));
}

static void row_free(mrow_t *r)
{
    for (uint32_t i = 0; i < r->target->nfields; i++) {
        free(r->cells[i].w.val);
        for (size_t k = 0; k < r->cells[i].nvotes; k++)
            free(r->cells[i].votes[k].val);
        free(r->cells[i].votes);
    }
    for (uint32_t i = 0; i < r->target->nkey; i++)
        free(r->key[i]);
    free(r->key);
    free(r->cix);
    cdc_gcands_free(r->gc);
    free(r->cells);
    free(r->keytext);
    free(r);
}

static void contrib_clear(mcontrib_t *c)
{
    if (c->key)
        for (uint32_t k = 0; k < c->target->nkey; k++)
            free(c->key[k]);
    free(c->key);
    for (uint32_t i = 0; i < c->nvals; i++)
        free(c->val[i]);
    free(c->val);
    free(c->len);
    free(c->field);
    c->key = NULL;
    c->val = NULL;
    c->len = NULL;
    c->field = NULL;
    c->nvals = 0;
}

void cdc_wide_model_free(cdc_wide_model_t *wm)
{
    if (!wm)
        return;
    for (size_t i = 0; i < wm->ncontribs; i++) {
        contrib_clear(&wm->contribs[i]);
        free(wm->contribs[i].id);
    }
    free(wm->contribs);
    cdc_strix_free(&wm->cids);
    for (size_t i = 0; i < wm->n; i++)
        row_free(wm->rows[i]);
    free(wm->rows);
    free(wm->hash);
    free(wm);
}

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void rehash(cdc_wide_model_t *wm)
{
    size_t ncap = wm->hcap ? wm->hcap * 2 : 1024;
    free(wm->hash);
    wm->hash = cdc_xcalloc(ncap, sizeof(size_t));
    wm->hcap = ncap;
    for (size_t i = 0; i < wm->n; i++) {
        size_t h = fnv(wm->rows[i]->keytext) & (ncap - 1);
        while (wm->hash[h])
            h = (h + 1) & (ncap - 1);
        wm->hash[h] = i + 1;
    }
}

static mrow_t *find_row(cdc_wide_model_t *wm, const cdc_map_target_t *t,
                        const char *const *key, int create)
{
    cdc_buf_t kt = CDC_BUF_INIT;
    size_t h;
    mrow_t *r;

    cdc_buf_puts(&kt, t->name);
    for (uint32_t i = 0; i < t->nkey; i++) {
        cdc_buf_putc(&kt, '\x1f');
        cdc_buf_puts(&kt, key[i]);
    }
    if (wm->hcap) {
        h = fnv(kt.p) & (wm->hcap - 1);
        while (wm->hash[h]) {
            r = wm->rows[wm->hash[h] - 1];
            if (!strcmp(r->keytext, kt.p)) {
                cdc_buf_free(&kt);
                return r;
            }
            h = (h + 1) & (wm->hcap - 1);
        }
    }
    if (!create) {
        cdc_buf_free(&kt);
        return NULL;
    }
    r = cdc_xcalloc(1, sizeof(*r));
    r->target = t;
    r->keytext = kt.p;
    r->key = cdc_xcalloc(t->nkey, sizeof(char *));
    for (uint32_t i = 0; i < t->nkey; i++)
        r->key[i] = cdc_xstrdup(key[i]);
    r->cells = cdc_xcalloc(t->nfields, sizeof(mcell_t));
    if (wm->n == wm->cap) {
        wm->cap = wm->cap ? wm->cap * 2 : 256;
        wm->rows = cdc_xrealloc(wm->rows, wm->cap * sizeof(*wm->rows));
    }
    wm->rows[wm->n++] = r;
    if (wm->n * 2 > wm->hcap)
        rehash(wm);
    else {
        h = fnv(r->keytext) & (wm->hcap - 1);
        while (wm->hash[h])
            h = (h + 1) & (wm->hcap - 1);
        wm->hash[h] = wm->n;
    }
    return r;
}

/* vote / weighted_mean: the source's current value is replaced by a
 * change of greater rank from it; the cell shows the result over every
 * source's current value (a pure function of them) */
static void vote_offer(mcell_t *c, const cdc_map_field_t *f,
                       const cdc_wide_op_t *op, const cdc_wide_val_t *v)
{
    mvote_t *e = NULL;
    cdc_vote_entry_t *en;
    cdc_vote_result_t res;

    for (size_t k = 0; k < c->nvotes && !e; k++)
        if (!strcmp(c->votes[k].src, op->source))
            e = &c->votes[k];
    if (e && strcmp(v->rank, e->rank) <= 0)
        return;
    if (!e) {
        c->votes = cdc_xrealloc(c->votes, (c->nvotes + 1) * sizeof(*e));
        e = &c->votes[c->nvotes++];
        memset(e, 0, sizeof(*e));
        snprintf(e->src, sizeof(e->src), "%s", op->source);
    }
    free(e->val);
    e->isnull = v->isnull;
    e->val = v->isnull ? NULL : cdc_xstrndup(v->s, v->len);
    e->len = v->isnull ? 0 : v->len;
    memcpy(e->rank, v->rank, sizeof(e->rank));
    memcpy(e->score, v->score, sizeof(e->score));
    e->deleted = v->deleted;
    e->t = op->commit_us;
    en = cdc_xcalloc(c->nvotes, sizeof(*en));
    for (size_t k = 0; k < c->nvotes; k++) {
        mvote_t *x = &c->votes[k];
        en[k] = (cdc_vote_entry_t){.source = x->src, .isnull = x->isnull,
                                   .val = x->val ? x->val : "",
                                   .len = x->len, .rank = x->rank,
                                   .score = x->score, .deleted = x->deleted,
                                   .t = x->t};
    }
    if (cdc_vote_compute(f, en, c->nvotes, &res)) {
        /* beyond 128 bits: cannot happen for fields that load */
        free(res.val);
        res.val = NULL;
        res.isnull = 1;
    }
    free(en);
    free(c->w.val);
    c->w.set = res.set;
    c->w.isnull = res.isnull;
    c->w.val = res.val;
    c->w.len = res.len;
    memcpy(c->total, res.total, sizeof(c->total));
    if (res.top >= 0) {
        const mvote_t *x = &c->votes[res.top];
        memcpy(c->w.rank, x->rank, sizeof(c->w.rank));
        snprintf(c->w.src, sizeof(c->w.src), "%s", x->src);
        c->w.t = x->t;
    }
    c->w.deleted = res.deleted;
}

int cdc_wide_cell_offer(cdc_wide_cell_t *c, const cdc_wide_op_t *op,
                        const cdc_wide_val_t *v)
{
    const cdc_map_field_t *f = &op->target->fields[v->field];
    if (c->set && strcmp(v->rank, c->rank) <= 0)
        return 0;
    memcpy(c->score, v->score, sizeof(c->score));
    c->showscore = v->score[0] && ((op->mapping && op->mapping->confidence) ||
                                   f->half_life_us);
    free(c->val);
    c->set = 1;
    c->isnull = v->isnull;
    c->val = v->isnull ? NULL : cdc_xstrndup(v->s, v->len);
    c->len = v->isnull ? 0 : v->len;
    memcpy(c->rank, v->rank, sizeof(c->rank));
    snprintf(c->src, sizeof(c->src), "%s", op->source);
    c->t = op->commit_us;
    c->deleted = v->deleted;
    return 1;
}

static void cell_offer(mcell_t *c, const cdc_wide_op_t *op,
                       const cdc_wide_val_t *v)
{
    const cdc_map_field_t *f = &op->target->fields[v->field];
    if (f->per_source)
        vote_offer(c, f, op, v);
    else
        cdc_wide_cell_offer(&c->w, op, v);
}

/* Visible: upserted and not dead.  Dead = some field has a winner and
 * every winner is a deletion (what the sinks move to the tombstones). */
static int row_visible(const mrow_t *r)
{
    int any = 0;
    for (uint32_t i = 0; i < r->target->nfields; i++) {
        if (!r->cells[i].w.set)
            continue;
        if (!r->cells[i].w.deleted)
            return 1;
        any = 1;
    }
    if (any)
        return 0;
    /* no written field: a row of a target with aggregates exists while
     * some source row contributes to it (the sinks delete the others) */
    if (r->target->aggregates)
        return r->nlive > 0;
    return r->live;
}

static int key_eq(char *const *a, const char *const *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!a[i] || !b[i] || strcmp(a[i], b[i]))
            return 0;
    return 1;
}

/* Recompute the aggregate fields of key (the sinks' statement per
 * touched key): a pure function of the live contributions. */
static void agg_recompute(cdc_wide_model_t *wm, const cdc_map_target_t *t,
                          const char *const *key)
{
    mrow_t *r = find_row(wm, t, key, 0);
    size_t nlive = 0;

    for (uint32_t k = 0; k < t->nkey; k++)
        if (!key[k])
            return;
    if (!r)
        return; /* no row and no contribution (contrib_apply creates it) */
    for (size_t i = 0; i < r->ncix; i++) {
        const mcontrib_t *c = &wm->contribs[r->cix[i]];
        nlive += !c->gone && key_eq(c->key, key, t->nkey);
    }
    r->nlive = nlive;
    for (uint32_t f = 0; f < t->nfields; f++) {
        const char **vals;
        size_t *lens, n = 0;
        mcell_t *cell = &r->cells[f];
        if (!t->fields[f].agg)
            continue;
        vals = cdc_xcalloc(r->ncix + 1, sizeof(char *));
        lens = cdc_xcalloc(r->ncix + 1, sizeof(size_t));
        for (size_t i = 0; i < r->ncix; i++) {
            const mcontrib_t *c = &wm->contribs[r->cix[i]];
            if (c->gone || !key_eq(c->key, key, t->nkey))
                continue;
            for (uint32_t j = 0; j < c->nvals; j++)
                if (c->field[j] == f) {
                    vals[n] = c->val[j];
                    lens[n++] = c->len[j];
                }
        }
        free(cell->w.val);
        cdc_map_agg_fold(&t->fields[f], vals, lens, n, &cell->w.val, &cell->w.len);
        cell->agg = 1;
        cell->w.isnull = cell->w.val == NULL;
        free(vals);
        free(lens);
    }
}

/* A contribution state: kept when its rank is strictly greater than the
 * stored one's; then the keys it left and joined are recomputed. */
static void contrib_apply(cdc_wide_model_t *wm, const cdc_wide_op_t *op)
{
    const cdc_map_target_t *t = op->target;
    cdc_buf_t id = CDC_BUF_INIT;
    mcontrib_t *c = NULL;
    char **old = NULL;

    int at;
    size_t ci;

    cdc_buf_printf(&id, "%s\x1f%s\x1f%s", t->name, op->mapping->name,
                   op->row);
    if ((at = cdc_strix_get(&wm->cids, id.p)) >= 0)
        c = &wm->contribs[at];
    if (c && strcmp(op->crank, c->rank) <= 0) {
        cdc_buf_free(&id);
        return;
    }
    if (!c) {
        if (wm->ncontribs == wm->capcontribs) {
            wm->capcontribs = wm->capcontribs ? wm->capcontribs * 2 : 64;
            wm->contribs = cdc_xrealloc(wm->contribs, wm->capcontribs *
                                                          sizeof(*c));
        }
        c = &wm->contribs[wm->ncontribs++];
        memset(c, 0, sizeof(*c));
        c->target = t;
        c->id = id.p;
        cdc_strix_put(&wm->cids, c->id, (int)(wm->ncontribs - 1));
    } else {
        cdc_buf_free(&id);
        old = c->key;
        c->key = NULL;
        contrib_clear(c);
    }
    memcpy(c->rank, op->crank, sizeof(c->rank));
    c->gone = op->gone;
    if (!op->gone) {
        c->key = cdc_xcalloc(t->nkey + 1, sizeof(char *));
        for (uint32_t k = 0; k < t->nkey; k++)
            c->key[k] = cdc_xstrdup(op->key[k]);
        c->nvals = op->nvals;
        c->field = cdc_xcalloc(op->nvals + 1, sizeof(uint32_t));
        c->val = cdc_xcalloc(op->nvals + 1, sizeof(char *));
        c->len = cdc_xcalloc(op->nvals + 1, sizeof(size_t));
        for (uint32_t i = 0; i < op->nvals; i++) {
            c->field[i] = op->vals[i].field;
            c->val[i] = op->vals[i].isnull
                            ? NULL
                            : cdc_xstrndup(op->vals[i].s, op->vals[i].len);
            c->len[i] = op->vals[i].len;
        }
    }
    ci = (size_t)(c - wm->contribs);
    if (old) {
        /* it no longer names the old key (re-added below if it still
         * does) */
        mrow_t *r = find_row(wm, t, (const char *const *)old, 0);
        for (size_t i = 0; r && i < r->ncix; i++)
            if (r->cix[i] == ci) {
                r->cix[i] = r->cix[--r->ncix];
                break;
            }
    }
    if (c->key) {
        mrow_t *r = find_row(wm, t, (const char *const *)c->key, 1);
        if (r->ncix == r->capcix) {
            r->capcix = r->capcix ? 2 * r->capcix : 4;
            r->cix = cdc_xrealloc(r->cix, r->capcix * sizeof(*r->cix));
        }
        r->cix[r->ncix++] = ci;
    }
    if (old) {
        agg_recompute(wm, t, (const char *const *)old);
        for (uint32_t k = 0; k < t->nkey; k++)
            free(old[k]);
        free(old);
    }
    if (c->key)
        agg_recompute(wm, t, (const char *const *)c->key);
}

/* A group's fields: the values of its winning candidate, or NULL
 * without provenance when no candidate is live (as the sinks write). */
static void group_apply(mrow_t *r, const cdc_wide_op_t *op)
{
    const cdc_map_group_t *g = &op->target->groups[op->group];
    const char **vals;
    const size_t *lens;
    const char *src, *grank;
    int64_t t;
    int win;

    cdc_gcands_offer(&r->gc, op);
    win = cdc_gcands_winner(r->gc, op->group, &vals, &lens, &src, &t, &grank);
    for (uint32_t k = 0; k < g->nfields; k++) {
        mcell_t *c = &r->cells[g->fields[k]];
        free(c->w.val);
        memset(c, 0, sizeof(*c));
        if (!win)
            continue;
        c->w.set = 1;
        c->w.isnull = !vals[k];
        c->w.val = vals[k] ? cdc_xstrndup(vals[k], lens[k]) : NULL;
        c->w.len = vals[k] ? lens[k] : 0;
        snprintf(c->w.rank, sizeof(c->w.rank), "%s", grank);
        snprintf(c->w.src, sizeof(c->w.src), "%s", src);
        c->w.t = t;
    }
}

void cdc_wide_model_apply(cdc_wide_model_t *wm, const cdc_wide_op_t *op)
{
    const cdc_map_target_t *t = op->target;
    mrow_t *r;

    if (op->kind == CDC_WIDE_GROUP) {
        r = find_row(wm, t, op->key, 1);
        r->live = 1;
        group_apply(r, op);
        /* a key the batch touches: its aggregates are recomputed */
        if (t->aggregates)
            agg_recompute(wm, t, op->key);
        return;
    }
    if (op->kind == CDC_WIDE_CONTRIB) {
        contrib_apply(wm, op);
    } else if (op->kind == CDC_WIDE_UPSERT || op->kind == CDC_WIDE_DELETE) {
        /* a dead row keeps its cells: that is its tombstone */
        r = find_row(wm, t, op->key, 1);
        r->live = 1;
        for (uint32_t i = 0; i < op->nvals; i++)
            cell_offer(&r->cells[op->vals[i].field], op, &op->vals[i]);
        /* the sinks recompute the aggregates of every key a batch
         * touches (a new row counts 0) */
        if (t->aggregates)
            agg_recompute(wm, t, op->key);
    } else {
        /* lookup: every live row whose match fields equal key[] */
        for (size_t k = 0; k < wm->n; k++) {
            int ok;
            r = wm->rows[k];
            if (r->target != t || !row_visible(r))
                continue;
            ok = 1;
            for (uint32_t j = 0; j < op->nkey && ok; j++) {
                const mcell_t *c = &r->cells[op->keyfields[j]];
                const char *cur = t->fields[op->keyfields[j]].is_key
                                      ? NULL
                                      : c->w.val;
                if (t->fields[op->keyfields[j]].is_key) {
                    for (uint32_t q = 0; q < t->nkey; q++)
                        if (t->key[q] == op->keyfields[j])
                            cur = r->key[q];
                }
                ok = cur && !strcmp(cur, op->key[j]);
            }
            if (ok)
                for (uint32_t i = 0; i < op->nvals; i++)
                    cell_offer(&r->cells[op->vals[i].field], op, &op->vals[i]);
        }
    }
}

size_t cdc_wide_model_rows(const cdc_wide_model_t *wm)
{
    size_t n = 0;
    for (size_t i = 0; i < wm->n; i++)
        n += row_visible(wm->rows[i]);
    return n;
}

/* Rows in target name, then key order (numeric keys numerically); rows
 * of two mapping sets may differ in their number of key fields. */
static int row_order(const mrow_t *x, const mrow_t *y)
{
    int c = strcmp(x->target->name, y->target->name);
    uint32_t n = x->target->nkey < y->target->nkey ? x->target->nkey
                                                   : y->target->nkey;
    if (c)
        return c;
    for (uint32_t i = 0; i < n; i++) {
        xv_t p, q;
        /* numeric keys in numeric order */
        if (!cdc_xv_parse_dec(x->key[i], strlen(x->key[i]), &p) &&
            !cdc_xv_parse_dec(y->key[i], strlen(y->key[i]), &q) &&
            p.scale == 0 && q.scale == 0) {
            if (p.m != q.m)
                return p.m < q.m ? -1 : 1;
            continue;
        }
        c = strcmp(x->key[i], y->key[i]);
        if (c)
            return c;
    }
    if (x->target->nkey != y->target->nkey)
        return x->target->nkey < y->target->nkey ? -1 : 1;
    return 0;
}

static int row_cmp(const void *a, const void *b)
{
    return row_order(*(mrow_t *const *)a, *(mrow_t *const *)b);
}

/* The visible rows, sorted; *n set. */
static mrow_t **sorted_rows(const cdc_wide_model_t *wm, size_t *n)
{
    mrow_t **v = cdc_xcalloc(wm->n + 1, sizeof(*v));
    *n = 0;
    for (size_t i = 0; i < wm->n; i++)
        if (row_visible(wm->rows[i]))
            v[(*n)++] = wm->rows[i];
    qsort(v, *n, sizeof(*v), row_cmp);
    return v;
}

static void put_row_head(cdc_buf_t *b, const mrow_t *r)
{
    const cdc_map_target_t *t = r->target;
    cdc_buf_printf(b, "%s", t->name);
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_printf(b, " %s=", t->fields[t->key[k]].name);
        cdc_json_string(b, r->key[k], strlen(r->key[k]));
    }
}

static void put_cell(cdc_buf_t *b, const mcell_t *c, int prov)
{
    if (!c || (!c->w.set && !c->agg) || c->w.isnull)
        cdc_buf_puts(b, "null");
    else
        cdc_json_string(b, c->w.val, c->w.len);
    if (prov && c && c->w.set && c->nvotes) {
        /* vote / weighted_mean: the sum, then every source's value and
         * score, in source order */
        size_t *ix = cdc_xcalloc(c->nvotes, sizeof(size_t));
        for (size_t k = 0; k < c->nvotes; k++) {
            size_t j = k;
            ix[k] = k;
            while (j && strcmp(c->votes[ix[j - 1]].src, c->votes[k].src) > 0) {
                ix[j] = ix[j - 1];
                j--;
            }
            ix[j] = k;
        }
        cdc_buf_printf(b, "  [%s %" PRId64 "%s score=%s;", c->w.src, c->w.t,
                       c->w.deleted ? " deleted" : "", c->total);
        for (size_t k = 0; k < c->nvotes; k++) {
            const mvote_t *x = &c->votes[ix[k]];
            cdc_buf_printf(b, " %s ", x->src);
            if (x->isnull)
                cdc_buf_puts(b, "null");
            else
                cdc_json_string(b, x->val, x->len);
            cdc_buf_printf(b, " %s%s", x->score, x->deleted ? " deleted" : "");
            if (k + 1 < c->nvotes)
                cdc_buf_putc(b, ',');
        }
        cdc_buf_putc(b, ']');
        free(ix);
    } else if (prov && c && c->w.set)
        cdc_buf_printf(b, "  [%s %" PRId64 "%s%s%s]", c->w.src, c->w.t,
                       c->w.deleted ? " deleted" : "",
                       c->w.showscore ? " score=" : "",
                       c->w.showscore ? c->w.score : "");
}

void cdc_wide_model_print(const cdc_wide_model_t *wm, FILE *fp, int prov)
{
    size_t n;
    mrow_t **v = sorted_rows(wm, &n);
    cdc_buf_t b = CDC_BUF_INIT;

    for (size_t i = 0; i < n; i++) {
        const mrow_t *r = v[i];
        const cdc_map_target_t *t = r->target;
        cdc_buf_reset(&b);
        put_row_head(&b, r);
        cdc_buf_putc(&b, '\n');
        for (uint32_t f = 0; f < t->nfields; f++) {
            const mcell_t *c = &r->cells[f];
            if (t->fields[f].is_key)
                continue;
            cdc_buf_printf(&b, "  %s: ", t->fields[f].name);
            put_cell(&b, c, prov);
            cdc_buf_putc(&b, '\n');
        }
        fputs(b.p, fp);
    }
    cdc_buf_free(&b);
    free(v);
}

/* ---- comparing two models (`mapping test --diff`) ----------------------- */

/* The cell of field name in row r, or NULL if its target has none. */
static const mcell_t *cell_named(const mrow_t *r, const char *name)
{
    int fi = cdc_map_find_field(r->target, name);
    return fi < 0 || r->target->fields[fi].is_key ? NULL : &r->cells[fi];
}

static int cell_same(const mcell_t *a, const mcell_t *b)
{
    int an = !a || (!a->w.set && !a->agg) || a->w.isnull;
    int bn = !b || (!b->w.set && !b->agg) || b->w.isnull;
    if (an || bn)
        return an == bn;
    return a->w.len == b->w.len && !memcmp(a->w.val, b->w.val, a->w.len);
}

/* A row of one side only: every non-key field. */
static void put_lone_row(cdc_buf_t *b, const mrow_t *r, char mark, int prov)
{
    const cdc_map_target_t *t = r->target;
    cdc_buf_printf(b, "%c ", mark);
    put_row_head(b, r);
    cdc_buf_puts(b, mark == '+' ? "  (new row)\n" : "  (row gone)\n");
    for (uint32_t f = 0; f < t->nfields; f++) {
        if (t->fields[f].is_key)
            continue;
        cdc_buf_printf(b, "%c   %s: ", mark, t->fields[f].name);
        put_cell(b, &r->cells[f], prov);
        cdc_buf_putc(b, '\n');
    }
}

/* A row of both sides: the fields (by name) whose values differ. */
static size_t put_changed_row(cdc_buf_t *b, const mrow_t *o, const mrow_t *n,
                              int prov)
{
    size_t nf = 0, at = b->len;
    const cdc_map_target_t *to = o->target, *tn = n->target;

    cdc_buf_puts(b, "~ ");
    put_row_head(b, n);
    cdc_buf_putc(b, '\n');
    for (int side = 0; side < 2; side++) {
        /* the old target's fields, then those only the new one has */
        const cdc_map_target_t *t = side ? tn : to;
        for (uint32_t f = 0; f < t->nfields; f++) {
            const char *name = t->fields[f].name;
            const mcell_t *a, *c;
            if (t->fields[f].is_key ||
                (side && cdc_map_find_field(to, name) >= 0))
                continue;
            a = cell_named(o, name);
            c = cell_named(n, name);
            if (cell_same(a, c))
                continue;
            nf++;
            cdc_buf_printf(b, "    %s: ", name);
            if (a)
                put_cell(b, a, prov);
            else
                cdc_buf_puts(b, "(no field)");
            cdc_buf_puts(b, " -> ");
            if (c)
                put_cell(b, c, prov);
            else
                cdc_buf_puts(b, "(no field)");
            cdc_buf_putc(b, '\n');
        }
    }
    if (!nf) { /* same values: print nothing */
        b->len = at;
        b->p[at] = '\0';
    }
    return nf;
}

int cdc_wide_model_diff(const cdc_wide_model_t *old, const cdc_wide_model_t *new,
                        FILE *fp, int prov, cdc_wide_diff_t *st)
{
    size_t no, nn, i = 0, j = 0;
    mrow_t **a = sorted_rows(old, &no), **c = sorted_rows(new, &nn);
    cdc_buf_t b = CDC_BUF_INIT;

    memset(st, 0, sizeof(*st));
    while (i < no || j < nn) {
        int k = i >= no ? 1 : j >= nn ? -1 : row_order(a[i], c[j]);
        cdc_buf_reset(&b);
        st->rows++;
        if (k < 0) {
            put_lone_row(&b, a[i++], '-', prov);
            st->removed++;
        } else if (k > 0) {
            put_lone_row(&b, c[j++], '+', prov);
            st->added++;
        } else {
            size_t nf = put_changed_row(&b, a[i++], c[j++], prov);
            st->fields += nf;
            if (nf)
                st->changed++;
            else
                st->same++;
        }
        if (b.len)
            fputs(b.p, fp);
    }
    cdc_buf_free(&b);
    free(a);
    free(c);
    return st->added || st->removed || st->changed;
}
