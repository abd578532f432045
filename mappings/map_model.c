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

typedef struct mcell {
    int set;       /* has a winner (provenance) */
    int isnull;
    char *val;
    size_t len;
    char rank[CDC_MAP_RANK_LEN + 1];
    char src[33];
    int64_t t;
    int deleted;   /* the winner is a row delete's NULL */
} mcell_t;

typedef struct mrow {
    const cdc_map_target_t *target;
    char *keytext;  /* target \x1f key \x1f key ... */
    char **key;
    mcell_t *cells; /* target->nfields */
    int live;
} mrow_t;

struct cdc_wide_model {
    mrow_t **rows;
    size_t n, cap;
    size_t *hash;   /* open addressing: index+1 into rows, 0 empty */
    size_t hcap;
};

cdc_wide_model_t *cdc_wide_model_new(void)
{
    return cdc_xcalloc(1, sizeof(cdc_wide_model_t));
}

static void row_free(mrow_t *r)
{
    for (uint32_t i = 0; i < r->target->nfields; i++)
        free(r->cells[i].val);
    for (uint32_t i = 0; i < r->target->nkey; i++)
        free(r->key[i]);
    free(r->key);
    free(r->cells);
    free(r->keytext);
    free(r);
}

void cdc_wide_model_free(cdc_wide_model_t *wm)
{
    if (!wm)
        return;
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

static void cell_offer(mcell_t *c, const cdc_wide_op_t *op,
                       const cdc_wide_val_t *v)
{
    if (c->set && strcmp(v->rank, c->rank) <= 0)
        return;
    free(c->val);
    c->set = 1;
    c->isnull = v->isnull;
    c->val = v->isnull ? NULL : cdc_xstrndup(v->s, v->len);
    c->len = v->len;
    memcpy(c->rank, v->rank, sizeof(c->rank));
    snprintf(c->src, sizeof(c->src), "%s", op->source);
    c->t = op->commit_us;
    c->deleted = v->deleted;
}

/* Visible: upserted and not dead.  Dead = some field has a winner and
 * every winner is a deletion (what the sinks move to the tombstones). */
static int row_visible(const mrow_t *r)
{
    int any = 0;
    if (!r->live)
        return 0;
    for (uint32_t i = 0; i < r->target->nfields; i++) {
        if (!r->cells[i].set)
            continue;
        if (!r->cells[i].deleted)
            return 1;
        any = 1;
    }
    return !any;
}

void cdc_wide_model_apply(cdc_wide_model_t *wm, const cdc_wide_op_t *op)
{
    const cdc_map_target_t *t = op->target;
    mrow_t *r;

    if (op->kind == CDC_WIDE_UPSERT || op->kind == CDC_WIDE_DELETE) {
        /* a dead row keeps its cells: that is its tombstone */
        r = find_row(wm, t, op->key, 1);
        r->live = 1;
        for (uint32_t i = 0; i < op->nvals; i++)
            cell_offer(&r->cells[op->vals[i].field], op, &op->vals[i]);
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
                                      : c->val;
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

static int row_cmp(const void *a, const void *b)
{
    const mrow_t *x = *(mrow_t *const *)a, *y = *(mrow_t *const *)b;
    int c = strcmp(x->target->name, y->target->name);
    if (c)
        return c;
    for (uint32_t i = 0; i < x->target->nkey; i++) {
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
    return 0;
}

void cdc_wide_model_print(const cdc_wide_model_t *wm, FILE *fp, int prov)
{
    mrow_t **v = cdc_xcalloc(wm->n + 1, sizeof(*v));
    size_t n = 0;
    cdc_buf_t b = CDC_BUF_INIT;

    for (size_t i = 0; i < wm->n; i++)
        if (row_visible(wm->rows[i]))
            v[n++] = wm->rows[i];
    qsort(v, n, sizeof(*v), row_cmp);
    for (size_t i = 0; i < n; i++) {
        const mrow_t *r = v[i];
        const cdc_map_target_t *t = r->target;
        cdc_buf_reset(&b);
        cdc_buf_printf(&b, "%s", t->name);
        for (uint32_t k = 0; k < t->nkey; k++) {
            cdc_buf_printf(&b, " %s=", t->fields[t->key[k]].name);
            cdc_json_string(&b, r->key[k], strlen(r->key[k]));
        }
        cdc_buf_putc(&b, '\n');
        for (uint32_t f = 0; f < t->nfields; f++) {
            const mcell_t *c = &r->cells[f];
            if (t->fields[f].is_key)
                continue;
            cdc_buf_printf(&b, "  %s: ", t->fields[f].name);
            if (!c->set || c->isnull)
                cdc_buf_puts(&b, "null");
            else
                cdc_json_string(&b, c->val, c->len);
            if (prov && c->set)
                cdc_buf_printf(&b, "  [%s %" PRId64 "%s]", c->src, c->t,
                               c->deleted ? " deleted" : "");
            cdc_buf_putc(&b, '\n');
        }
        fputs(b.p, fp);
    }
    cdc_buf_free(&b);
    free(v);
}

