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
 *   2. per wide row and field the best candidate of every source is kept
 *      (cdc_wide_cell_offer, the model's max); the recomputed value is the
 *      best of them (the rank rules), and a source's candidate is
 *      *admissible* when it ranks level with the winner before the commit
 *      time (rule latest: every source; priority: the same priority;
 *      weighted: the same weight), because a snapshot has no commit times
 *      and cannot tell which of those a stream made win.  Derived fields
 *      (rc_derive) are recomputed from the side state the snapshot rows
 *      make, with the sinks' pure rules: a field group from every live
 *      source row's candidate (winner: greatest grank, then mapping, then
 *      row; a candidate whose grank head before the commit time equals
 *      the winner's is admissible), an aggregate from the contributions
 *      (cdc_map_agg_fold), a vote / weighted_mean / per-source weighted
 *      field from each source's entry (cdc_vote_compute; weighted: any
 *      entry of the top score is admissible).  half_life is refused.
 *   3. the candidates go to a shadow table (temporary, in the target
 *      database, ON COMMIT DROP), and SQL compares it with T in one
 *      transaction, with PostgreSQL's own types doing the comparison.
 *      A stored field is consistent when it equals the recomputed value,
 *      or the admissible candidate of the source its provenance names, or
 *      it is a NULL that a source whose row is gone wrote (a delete,
 *      on_delete: clear).  A stored row that no source row makes is extra
 *      unless every field is NULL (the shell that clear-deletes leave).
 *      The side tables (<T>_candidates, _contrib, _votes) are compared
 *      with the recomputed candidates, contributions and entries through
 *      shadow tables of their own (rc_side_compare): kind 'side'.
 *   4. --repair, in the same transaction with T locked against writes
 *      (EXCLUSIVE: readers go on) from before the sources are read until
 *      the commit (tgt_open): extra rows are deleted, missing rows
 *      inserted with the recomputed values and their snapshot ranks, and a
 *      differing field takes the value of its stored source's candidate
 *      keeping the stored rank (the change that won it is real; only the
 *      value was altered), or else the recomputed value with its rank (a
 *      snapshot rank: any later streamed change wins over it, as after a
 *      backfill).  Side tables first (rc_side_repair: lost deletes marked,
 *      wrong states replaced under their stored ranks, missing rows
 *      inserted with snapshot ranks), then the derived fields of the
 *      touched keys recomputed by the sink's own statements
 *      (rc_recompute).
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
#include <time.h>

#include "cdc/backfill.h"
#include "cdc/buf.h"
#include "cdc/commands/commands.h"
#include "cdc/envelope.h"
#include "cdc/log.h"
#include "cdc/util.h"
#include "connectors/pg/pgutil.h"
#include "mappings/map.h"
#include "mappings/map_int.h"
#include "sinks/pg_rank.h"
#include "sinks/pg_sql.h"
#include "sinks/pg_wide_agg.h"
#include "sinks/pg_wide_group.h"
#include "sinks/pg_wide_vote.h"

#define FAC "reconcile"
#define RC_CHUNK 50000u

/* One source's best candidate for one field of one row: the same max
 * over ranks as the model's cells (cdc_wide_cell_offer). */
typedef struct rc_cell {
    cdc_wide_cell_t w;
    const char *row; /* the source row: "db.table[pk,...]" (rc_t.strs) */
} rc_cell_t;

/* A group candidate: one live source row (snapshot rows are live). */
typedef struct rc_gcand {
    uint32_t group;
    const cdc_map_mapping_t *mp;
    const char *rowid;  /* JSON array of its primary key (rc_t.strs) */
    const char *from;   /* "db.table[pk,...]" (rc_t.strs) */
    const char *src;    /* source id (rc_t.strs) */
    char grank[CDC_MAP_RANK_LEN + 1], vrank[CDC_MAP_RANK_LEN + 1];
    int64_t t;
    char **vals;        /* the group's fields, NULL = SQL NULL */
    size_t *lens;
} rc_gcand_t;

/* A live contribution of one source row to the aggregates of a row. */
typedef struct rc_contrib {
    const cdc_map_mapping_t *mp;
    const char *rowid;  /* JSON array (rc_t.strs) */
    char crank[CDC_MAP_RANK_LEN + 1];
    uint32_t nvals;
    uint32_t *field;
    char **vals;
    size_t *lens;
} rc_contrib_t;

/* The recomputed value of a derived field (a group's, an aggregate, a
 * per-source field: rc_derive). */
typedef struct rc_calc {
    int set, isnull;
    char *val;
    size_t len;
    char *prov;         /* its provenance object (JSON), NULL: none */
    int top;            /* per-source: the source of the entry named */
} rc_calc_t;

typedef struct rc_row {
    char *keytext; /* key texts joined by \x1f (index key) */
    char **key;
    rc_cell_t **blk; /* per source: target->nfields cells, NULL until the
                        source offers a value */
    rc_gcand_t *gc;  /* group candidates */
    size_t ngc, capgc;
    rc_contrib_t *ct; /* contributions */
    size_t nct, capct;
    rc_calc_t *calc; /* target->nfields, derived fields (rc_derive) */
    int *gwin;       /* per group: index into gc of the winner, -1 none */
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
    if (cdc_wide_cell_offer(&c->w, op, v))
        c->row = intern(rc, rowtext ? rowtext : "");
}

/* The winning source of field f of r (-1: none). */
static int rc_winner(const rc_t *rc, const rc_row_t *r, uint32_t f)
{
    int w = -1;
    for (uint32_t s = 0; s < rc->map->nsources; s++) {
        const rc_cell_t *c = cell(r, (int)s, f);
        if (c && c->w.set &&
            (w < 0 || strcmp(c->w.rank, cell(r, w, f)->w.rank) > 0))
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
        return !strncmp(c->w.rank, cw->w.rank, 16);
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

/* A derived field: its value is a function of side-table state (a
 * group's candidates, the contributions, the sources' entries). */
static int derived(const cdc_map_field_t *fd)
{
    return fd->group || fd->agg || fd->per_source;
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

static void rc_apply(rc_t *rc, const cdc_wide_op_t *op, const char *rowtext)
{
    if (op->target != rc->t)
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
                    w < 0 ? NULL : cell(r, w, f);
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

/* ---- derived fields --------------------------------------------------------- */

/* The group winner's order, as the sink's ORDER BY _grank DESC, _mapping
 * COLLATE "C" DESC, _row_id COLLATE "C" DESC (and map_group.c). */
static int gc_cmp(const rc_gcand_t *a, const rc_gcand_t *b)
{
    int c = strcmp(a->grank, b->grank);
    if (!c)
        c = strcmp(a->mp->name, b->mp->name);
    if (!c)
        c = strcmp(a->rowid, b->rowid);
    return c;
}

/* The part of a group rank before its commit time: what a snapshot row's
 * rank shares with the streamed change it stands for (latest: nothing;
 * priority: the priority; weighted: the weight; ordered: the order
 * value).  Two candidates that agree on it may each be the winner a
 * stream made (commit-time ties a snapshot cannot see). */
static size_t head_len(cdc_mrule_t r)
{
    switch (r) {
    case CDC_RULE_PRIORITY:
        return 8;
    case CDC_RULE_WEIGHTED:
    case CDC_RULE_ORDERED:
        return 16;
    default:
        return 0;
    }
}

static int gc_admissible(const rc_t *rc, const rc_row_t *r,
                         const rc_gcand_t *c)
{
    int w = r->gwin[c->group];
    size_t n = head_len(rc->t->groups[c->group].rule);
    return w >= 0 && !strncmp(c->grank, r->gc[w].grank, n);
}

static void gc_prov(const rc_t *rc, cdc_buf_t *b, const rc_gcand_t *c)
{
    const char *gn = rc->t->groups[c->group].name;
    cdc_buf_puts(b, "{\"s\":");
    cdc_json_string(b, c->src, strlen(c->src));
    cdc_buf_printf(b, ",\"t\":%" PRId64 ",\"r\":\"%s\",\"g\":", c->t,
                   c->grank);
    cdc_json_string(b, gn, strlen(gn));
    cdc_buf_printf(b, ",\"row\":%s,\"from\":", c->rowid);
    cdc_json_string(b, c->from, strlen(c->from));
    cdc_buf_putc(b, '}');
}

/* Compute every derived field of every row: the group winners (the rule
 * of map_group.c), the aggregates over the live contributions
 * (cdc_map_agg_fold), the per-source fields over each source's entry
 * (cdc_vote_compute): the pure functions the sinks' state feeds. */
static void rc_derive(rc_t *rc)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t b = CDC_BUF_INIT;

    for (size_t i = 0; i < rc->n; i++) {
        rc_row_t *r = rc->rows[i];
        r->calc = cdc_xcalloc(t->nfields + 1, sizeof(rc_calc_t));
        r->gwin = cdc_xcalloc(t->ngroups + 1, sizeof(int));
        for (uint32_t g = 0; g < t->ngroups; g++) {
            int w = -1;
            for (size_t k = 0; k < r->ngc; k++)
                if (r->gc[k].group == g &&
                    (w < 0 || gc_cmp(&r->gc[k], &r->gc[w]) > 0))
                    w = (int)k;
            r->gwin[g] = w;
            if (w < 0)
                continue; /* no live candidate: NULL, no provenance */
            cdc_buf_reset(&b);
            gc_prov(rc, &b, &r->gc[w]);
            for (uint32_t k = 0; k < t->groups[g].nfields; k++) {
                rc_calc_t *c = &r->calc[t->groups[g].fields[k]];
                c->set = 1;
                c->isnull = !r->gc[w].vals[k];
                c->val = c->isnull ? NULL
                                   : cdc_xstrndup(r->gc[w].vals[k],
                                                  r->gc[w].lens[k]);
                c->len = r->gc[w].lens[k];
                c->prov = cdc_xstrdup(b.p);
            }
        }
        for (uint32_t f = 0; f < t->nfields; f++) {
            const cdc_map_field_t *fd = &t->fields[f];
            rc_calc_t *c = &r->calc[f];
            if (fd->agg) {
                const char **vals = cdc_xcalloc(r->nct + 1, sizeof(char *));
                size_t *lens = cdc_xcalloc(r->nct + 1, sizeof(size_t)), n = 0;
                for (size_t k = 0; k < r->nct; k++)
                    for (uint32_t j = 0; j < r->ct[k].nvals; j++)
                        if (r->ct[k].field[j] == f) {
                            vals[n] = r->ct[k].vals[j];
                            lens[n++] = r->ct[k].lens[j];
                        }
                cdc_map_agg_fold(fd, vals, lens, n, &c->val, &c->len);
                c->set = 1;
                c->isnull = !c->val;
                /* shown only: an aggregate has no provenance entry */
                cdc_buf_reset(&b);
                cdc_buf_printf(&b, "{\"from\":\"%s over %zu contribution%s\"}",
                               cdc_map_agg_name(fd->agg), n,
                               n == 1 ? "" : "s");
                c->prov = cdc_xstrdup(b.p);
                free(vals);
                free(lens);
            } else if (fd->per_source) {
                cdc_vote_entry_t *en =
                    cdc_xcalloc(rc->map->nsources + 1, sizeof(*en));
                int *srcof = cdc_xcalloc(rc->map->nsources + 1, sizeof(int));
                size_t n = 0;
                cdc_vote_result_t res;
                for (uint32_t s = 0; s < rc->map->nsources; s++) {
                    const rc_cell_t *x = cell(r, (int)s, f);
                    if (!x || !x->w.set)
                        continue;
                    srcof[n] = (int)s;
                    en[n++] = (cdc_vote_entry_t){
                        .source = rc->map->sources[s].id,
                        .isnull = x->w.isnull,
                        .val = x->w.val ? x->w.val : "",
                        .len = x->w.len, .rank = x->w.rank,
                        .score = x->w.score, .deleted = x->w.deleted,
                        .t = x->w.t};
                }
                memset(&res, 0, sizeof(res));
                res.top = -1;
                if (n && !cdc_vote_compute(fd, en, n, &res) && res.set) {
                    const rc_cell_t *x;
                    c->set = 1;
                    c->isnull = res.isnull;
                    c->val = res.val;
                    res.val = NULL;
                    c->len = res.len;
                    c->top = res.top >= 0 ? srcof[res.top] : -1;
                    x = c->top >= 0 ? cell(r, c->top, f) : NULL;
                    if (x) {
                        cdc_buf_reset(&b);
                        cdc_buf_puts(&b, "{\"s\":");
                        cdc_json_string(&b, x->w.src, strlen(x->w.src));
                        cdc_buf_printf(&b, ",\"t\":%" PRId64 ",\"r\":\"%s\","
                                       "\"sc\":\"%s\",\"row\":", x->w.t,
                                       x->w.rank, res.total);
                        cdc_json_string(&b, x->row, strlen(x->row));
                        cdc_buf_putc(&b, '}');
                        c->prov = cdc_xstrdup(b.p);
                    }
                }
                free(res.val);
                free(en);
                free(srcof);
            }
        }
    }
    cdc_buf_free(&b);
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
    cdc_buf_printf(b, ",\"t\":%" PRId64 ",\"r\":\"%s\",\"row\":", c->w.t,
                   c->w.rank);
    cdc_json_string(b, c->row, strlen(c->row));
    cdc_buf_putc(b, '}');
}

/* the per-row arrays of a shadow line: provenance object, fields that
 * have a candidate, fields whose candidate is admissible */
typedef struct sh_acc {
    cdc_buf_t prov, has, adm;
    int np, nh, na;
} sh_acc_t;

static void acc_init(sh_acc_t *a)
{
    memset(a, 0, sizeof(*a));
    cdc_buf_putc(&a->prov, '{');
    cdc_buf_putc(&a->has, '{');
    cdc_buf_putc(&a->adm, '{');
}

static void acc_field(sh_acc_t *a, const char *name, const char *prov,
                      int adm)
{
    if (a->np++)
        cdc_buf_putc(&a->prov, ',');
    cdc_json_string(&a->prov, name, strlen(name));
    cdc_buf_putc(&a->prov, ':');
    cdc_buf_puts(&a->prov, prov);
    if (a->nh++)
        cdc_buf_putc(&a->has, ',');
    cdc_buf_puts(&a->has, name);
    if (adm) {
        if (a->na++)
            cdc_buf_putc(&a->adm, ',');
        cdc_buf_puts(&a->adm, name);
    }
}

/* the line's tail: _provenance, _src, _has, _adm, _row */
static void acc_end(sh_acc_t *a, cdc_buf_t *b, const char *src,
                    const char *row)
{
    cdc_buf_putc(&a->prov, '}');
    cdc_buf_putc(&a->has, '}');
    cdc_buf_putc(&a->adm, '}');
    copy_val(b, a->prov.p, a->prov.len);
    cdc_buf_putc(b, '\t');
    if (src)
        copy_val(b, src, strlen(src));
    cdc_buf_putc(b, '\t');
    cdc_buf_puts(b, a->has.p);
    cdc_buf_putc(b, '\t');
    cdc_buf_puts(b, a->adm.p);
    cdc_buf_putc(b, '\t');
    if (row)
        copy_val(b, row, strlen(row));
    else
        cdc_buf_puts(b, "\\N");
    cdc_buf_putc(b, '\n');
    cdc_buf_free(&a->prov);
    cdc_buf_free(&a->has);
    cdc_buf_free(&a->adm);
}

static void put_key(rc_t *rc, cdc_buf_t *b, const rc_row_t *r)
{
    for (uint32_t k = 0; k < rc->t->nkey; k++) {
        copy_val(b, r->key[k], strlen(r->key[k]));
        cdc_buf_putc(b, '\t');
    }
}

static void put_value(cdc_buf_t *b, int set, int isnull, const char *v,
                      size_t n)
{
    if (!set || isnull)
        cdc_buf_puts(b, "\\N");
    else
        copy_val(b, v, n);
    cdc_buf_putc(b, '\t');
}

/* One shadow row: src -1 = the recomputed row (winners and derived
 * fields), else the candidates of that source (plain and per-source
 * fields; a group's candidates are lines of their own, gshadow_line). */
static void shadow_line(rc_t *rc, cdc_buf_t *b, rc_row_t *r, int src)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t pj = CDC_BUF_INIT;
    sh_acc_t a;

    put_key(rc, b, r);
    acc_init(&a);
    for (uint32_t f = 0; f < t->nfields; f++) {
        const cdc_map_field_t *fd = &t->fields[f];
        int s = src, w;
        const rc_cell_t *c;
        if (fd->is_key)
            continue;
        if (src < 0 && derived(fd)) {
            const rc_calc_t *k = &r->calc[f];
            put_value(b, k->set, k->isnull, k->val, k->len);
            if (k->prov)
                acc_field(&a, fd->name, k->prov, 0);
            continue;
        }
        if (src >= 0 && (fd->group || fd->agg)) {
            cdc_buf_puts(b, "\\N\t");
            continue;
        }
        w = fd->per_source ? r->calc[f].top : rc_winner(rc, r, f);
        if (s < 0)
            s = w;
        c = s < 0 ? NULL : cell(r, s, f);
        put_value(b, c && c->w.set, c && c->w.isnull, c ? c->w.val : NULL,
                  c ? c->w.len : 0);
        if (!c || !c->w.set)
            continue;
        cdc_buf_reset(&pj);
        prov_json(&pj, rc->map->sources[s].id, c);
        acc_field(&a, fd->name, pj.p,
                  fd->per_source
                      /* weighted with confidence: any entry of the top
                       * score may be the one a stream made win */
                      ? fd->rule == CDC_RULE_WEIGHTED && w >= 0 &&
                            !strcmp(c->w.score, cell(r, w, f)->w.score)
                      : rc_admissible(rc, f, s, w, c, cell(r, w, f)));
    }
    acc_end(&a, b, src >= 0 ? rc->map->sources[src].id : NULL, NULL);
    cdc_buf_free(&pj);
}

/* One shadow row per group candidate: the group's fields, its source and
 * its source row (_row, as the provenance's "row"). */
static void gshadow_line(rc_t *rc, cdc_buf_t *b, rc_row_t *r,
                         const rc_gcand_t *g)
{
    const cdc_map_target_t *t = rc->t;
    const cdc_map_group_t *gr = &t->groups[g->group];
    cdc_buf_t pj = CDC_BUF_INIT;
    int adm = gc_admissible(rc, r, g);
    sh_acc_t a;

    put_key(rc, b, r);
    acc_init(&a);
    gc_prov(rc, &pj, g);
    for (uint32_t f = 0; f < t->nfields; f++) {
        int k = -1;
        if (t->fields[f].is_key)
            continue;
        for (uint32_t j = 0; j < gr->nfields; j++)
            if (gr->fields[j] == f)
                k = (int)j;
        if (k < 0) {
            cdc_buf_puts(b, "\\N\t");
            continue;
        }
        put_value(b, 1, !g->vals[k], g->vals[k], g->lens[k]);
        acc_field(&a, t->fields[f].name, pj.p, adm);
    }
    acc_end(&a, b, g->src, g->rowid);
    cdc_buf_free(&pj);
}

static int shadow_fill(rc_t *rc, pgx_t *x, const char *cols, cdc_err_t *err)
{
    cdc_buf_t b = CDC_BUF_INIT;
    PGresult *res;
    int r = -1;

    cdc_buf_printf(&b, "COPY pg_temp.rc_shadow (%s, _provenance, _src, "
                       "_has, _adm, _row) FROM STDIN",
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
        for (size_t k = 0; k < row->ngc; k++)
            gshadow_line(rc, &b, row, &row->gc[k]);
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
    long missing, extra, differs, side;
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
            char *v = NULL;
            size_t vl = 0;
            if (t->fields[f].is_key)
                continue;
            nonkey++;
            cdc_buf_puts(b, " OR t.");
            ident(x, b, t->fields[f].name);
            if (t->fields[f].agg)
                /* an aggregate over no row: count 0, the others NULL */
                cdc_map_agg_fold(&t->fields[f], NULL, NULL, 0, &v, &vl);
            if (v) {
                cdc_buf_puts(b, "::text IS DISTINCT FROM ");
                lit(x, b, v);
                free(v);
            } else
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
        const cdc_map_field_t *fd = &t->fields[f];
        /* a NULL that a source whose row is gone wrote (on_delete:
         * clear): plain fields, and weighted ones, where a NULL entry
         * competes; a group or a vote recomputes it from what is left */
        int excuse = !fd->group && !fd->agg &&
                     (!fd->per_source || fd->rule == CDC_RULE_WEIGHTED);
        if (fd->is_key)
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
        /* the candidate the stored provenance names: its source, and
         * for a group field its source row */
        cdc_buf_printf(b, " LEFT JOIN pg_temp.rc_shadow c ON c._src = "
                          "(t._provenance->%s->>'s') AND c._row IS NOT "
                          "DISTINCT FROM (t._provenance->%s->'row') AND ",
                       fl.p, fl.p);
        key_eq(rc, x, b, "t", "c");
        cdc_buf_printf(
            b,
            " WHERE t.%s IS DISTINCT FROM w.%s"
            " AND NOT COALESCE(%s = ANY(c._adm) AND c.%s IS NOT DISTINCT "
            "FROM t.%s, false)",
            fi.p, fi.p, fl.p, fi.p, fi.p);
        if (excuse)
            cdc_buf_printf(b, " AND NOT (t.%s IS NULL AND t._provenance ? %s "
                              "AND NOT COALESCE(%s = ANY(c._has), false))",
                           fi.p, fl.p, fl.p);
        r = pg_run(x, b->p, err);
        cdc_buf_free(&fl);
        cdc_buf_free(&fi);
        if (r)
            return -1;
    }
    return 0;
}

/* ---- side tables: candidates, contributions, votes ------------------------ */

/* The schema-qualified name of a side table of the target. */
static void side_name(rc_t *rc, pgx_t *x, cdc_buf_t *b, const char *name)
{
    const cdc_map_target_t *t = rc->t;
    ident(x, b, t->schema && *t->schema ? t->schema : "public");
    cdc_buf_putc(b, '.');
    ident(x, b, name);
}

static int copy_in(pgx_t *x, const char *sql, const cdc_buf_t *data,
                   cdc_err_t *err)
{
    PGresult *res = PQexec(x->c, sql);
    if (pg_ok(x, res, sql, err))
        return -1;
    PQclear(res);
    if ((data->len && PQputCopyData(x->c, data->p, (int)data->len) != 1) ||
        PQputCopyEnd(x->c, NULL) != 1)
        return cdc_err_set(err, CDC_EXIT_FAIL, 0, "reconcile: COPY into a "
                           "shadow table: %s", PQerrorMessage(x->c));
    res = PQgetResult(x->c);
    if (pg_ok(x, res, "COPY into a shadow table", err))
        return -1;
    PQclear(res);
    while ((res = PQgetResult(x->c)))
        PQclear(res);
    return 0;
}

static void put_text(cdc_buf_t *b, const char *s, int last)
{
    if (s)
        copy_val(b, s, strlen(s));
    else
        cdc_buf_puts(b, "\\N");
    cdc_buf_putc(b, last ? '\n' : '\t');
}

/* "k1, k2" of alias a, or of the first non-NULL of a and c */
static void key_coalesce(rc_t *rc, pgx_t *x, cdc_buf_t *b, const char *a,
                         const char *c)
{
    for (uint32_t k = 0; k < rc->t->nkey; k++) {
        const char *n = rc->t->fields[rc->t->key[k]].name;
        cdc_buf_printf(b, "%sCOALESCE(%s.", k ? ", " : "", a);
        ident(x, b, n);
        cdc_buf_printf(b, ", %s.", c);
        ident(x, b, n);
        cdc_buf_putc(b, ')');
    }
}

/* "'a', 'b'": the target's group names (groups) or per-source fields */
static void name_list(rc_t *rc, pgx_t *x, cdc_buf_t *b, int groups)
{
    const cdc_map_target_t *t = rc->t;
    int n = 0;
    if (groups)
        for (uint32_t g = 0; g < t->ngroups; g++) {
            cdc_buf_puts(b, n++ ? ", " : "");
            lit(x, b, t->groups[g].name);
        }
    else
        for (uint32_t f = 0; f < t->nfields; f++)
            if (t->fields[f].per_source) {
                cdc_buf_puts(b, n++ ? ", " : "");
                lit(x, b, t->fields[f].name);
            }
    if (!n)
        cdc_buf_puts(b, "NULL");
}

/* The recomputed candidates (rc_cand), contributions (rc_ctb) and
 * per-source entries (rc_vts), each compared with the side table the
 * sink keeps: a row the sources make that is missing or marked deleted,
 * a live row no source row makes (a lost delete), a row whose values
 * differ.  Differences go to rc_diff as kind 'side'. */
static char *col_type(pgx_t *x, const char *qt, const char *col,
                      cdc_err_t *err);

static int rc_side_compare(rc_t *rc, pgx_t *x, const char *qt,
                           const char *keys, cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t *b = &x->sql, d = CDC_BUF_INIT, qn = CDC_BUF_INIT;
    char name[256];
    int r = -1;

    if (t->ngroups) {
        cdc_map_candidates_table(t, name, sizeof(name));
        side_name(rc, x, &qn, name);
        cdc_buf_reset(b);
        cdc_buf_printf(b, "CREATE TEMP TABLE rc_cand ON COMMIT DROP AS "
                          "SELECT %s, _group, _mapping, _row_id, _vrank, "
                          "_grank, _source, _commit_us, _values FROM %s "
                          "WITH NO DATA",
                       keys, qn.p);
        if (pg_run(x, b->p, err))
            goto out;
        for (size_t i = 0; i < rc->n; i++) {
            rc_row_t *row = rc->rows[i];
            for (size_t k = 0; k < row->ngc; k++) {
                const rc_gcand_t *g = &row->gc[k];
                char num[24];
                cdc_buf_t v = CDC_BUF_INIT;
                put_key(rc, &d, row);
                put_text(&d, t->groups[g->group].name, 0);
                put_text(&d, g->mp->name, 0);
                put_text(&d, g->rowid, 0);
                put_text(&d, g->vrank, 0);
                put_text(&d, g->grank, 0);
                put_text(&d, g->src, 0);
                snprintf(num, sizeof(num), "%" PRId64, g->t);
                put_text(&d, num, 0);
                cdc_buf_putc(&v, '[');
                for (uint32_t j = 0; j < t->groups[g->group].nfields; j++) {
                    if (j)
                        cdc_buf_putc(&v, ',');
                    if (g->vals[j])
                        cdc_json_string(&v, g->vals[j], g->lens[j]);
                    else
                        cdc_buf_puts(&v, "null");
                }
                cdc_buf_putc(&v, ']');
                put_text(&d, v.p, 1);
                cdc_buf_free(&v);
            }
        }
        if (copy_in(x, "COPY pg_temp.rc_cand FROM STDIN", &d, err))
            goto out;
        /* the same source row for the same key and group: values
         * compared in the fields' types, an ordered group's order value
         * too (the head of _grank) */
        cdc_buf_reset(b);
        cdc_buf_printf(b, "INSERT INTO pg_temp.rc_diff (%s, kind, field, "
                          "sval, nval) SELECT ", keys);
        key_coalesce(rc, x, b, "s", "c");
        cdc_buf_puts(b, ", 'side', concat_ws(' ', ");
        lit(x, b, name);
        cdc_buf_puts(b, ", COALESCE(s._group, c._group), COALESCE(s._mapping, "
                        "c._mapping), COALESCE(s._row_id, c._row_id)), "
                        "CASE WHEN c._group IS NULL THEN 'no candidate' "
                        "WHEN c._deleted THEN 'deleted' ELSE c._values::text "
                        "END, CASE WHEN s._group IS NULL THEN 'no source row' "
                        "ELSE s._values::text END FROM pg_temp.rc_cand s FULL "
                        "JOIN ");
        /* the groups the mapping files declare (a group dropped from them
         * leaves candidates the sink no longer reads) */
        cdc_buf_printf(b, "(SELECT * FROM %s WHERE _group IN (", qn.p);
        name_list(rc, x, b, 1);
        cdc_buf_puts(b, ")) c ON ");
        key_eq(rc, x, b, "s", "c");
        cdc_buf_puts(b, " AND s._group = c._group AND s._mapping = c._mapping "
                        "AND s._row_id = c._row_id WHERE (s._group IS NULL "
                        "AND NOT c._deleted) OR c._group IS NULL OR "
                        "(s._group IS NOT NULL AND c._deleted)");
        for (uint32_t g = 0; g < t->ngroups; g++) {
            const cdc_map_group_t *gr = &t->groups[g];
            cdc_buf_puts(b, " OR (s._group = ");
            lit(x, b, gr->name);
            cdc_buf_puts(b, " AND (false");
            for (uint32_t j = 0; j < gr->nfields; j++) {
                char *tp = col_type(x, qt, t->fields[gr->fields[j]].name, err);
                if (!tp)
                    goto out;
                cdc_buf_printf(b, " OR (s._values->>%u)::%s IS DISTINCT FROM "
                                  "(c._values->>%u)::%s", j, tp, j, tp);
                free(tp);
            }
            if (gr->rule == CDC_RULE_ORDERED)
                cdc_buf_puts(b, " OR left(s._grank, 16) <> left(c._grank, "
                                "16)");
            cdc_buf_puts(b, "))");
        }
        if (pg_run(x, b->p, err))
            goto out;
    }
    if (t->aggregates) {
        cdc_buf_t ac = CDC_BUF_INIT;
        int dist;
        cdc_buf_reset(&qn);
        cdc_buf_reset(&d);
        cdc_map_contrib_table(t, name, sizeof(name));
        side_name(rc, x, &qn, name);
        for (uint32_t f = 0; f < t->nfields; f++)
            if (t->fields[f].agg) {
                cdc_buf_puts(&ac, ", ");
                ident(x, &ac, t->fields[f].name);
            }
        cdc_buf_reset(b);
        cdc_buf_printf(b, "CREATE TEMP TABLE rc_ctb ON COMMIT DROP AS "
                          "SELECT %s, _mapping, _row, _rank%s FROM %s WITH "
                          "NO DATA",
                       keys, ac.p, qn.p);
        if (pg_run(x, b->p, err)) {
            cdc_buf_free(&ac);
            goto out;
        }
        for (size_t i = 0; i < rc->n; i++) {
            rc_row_t *row = rc->rows[i];
            for (size_t k = 0; k < row->nct; k++) {
                const rc_contrib_t *c = &row->ct[k];
                uint32_t left = 0, nagg = 0;
                put_key(rc, &d, row);
                put_text(&d, c->mp->name, 0);
                put_text(&d, c->rowid, 0);
                for (uint32_t f = 0; f < t->nfields; f++)
                    nagg += t->fields[f].agg != 0;
                put_text(&d, c->crank, !nagg);
                for (uint32_t f = 0; f < t->nfields; f++) {
                    const char *v = NULL;
                    if (!t->fields[f].agg)
                        continue;
                    for (uint32_t j = 0; j < c->nvals; j++)
                        if (c->field[j] == f)
                            v = c->vals[j];
                    put_text(&d, v, ++left == nagg);
                }
            }
        }
        if (copy_in(x, "COPY pg_temp.rc_ctb FROM STDIN", &d, err)) {
            cdc_buf_free(&ac);
            goto out;
        }
        cdc_buf_reset(b);
        cdc_buf_printf(b, "INSERT INTO pg_temp.rc_diff (%s, kind, field, "
                          "sval, nval) SELECT ", keys);
        key_coalesce(rc, x, b, "s", "c");
        cdc_buf_puts(b, ", 'side', concat_ws(' ', ");
        lit(x, b, name);
        cdc_buf_puts(b, ", COALESCE(s._mapping, c._mapping), COALESCE(s._row, "
                        "c._row)), CASE WHEN c._row IS NULL THEN 'no "
                        "contribution' WHEN c._deleted THEN 'deleted' ELSE "
                        "(to_jsonb(c) - ARRAY['_mapping', '_row', '_rank', "
                        "'_deleted'])::text END, CASE WHEN s._row IS NULL THEN "
                        "'no source row' ELSE (to_jsonb(s) - ARRAY['_mapping', "
                        "'_row', '_rank'])::text END FROM pg_temp.rc_ctb s "
                        "FULL JOIN ");
        cdc_buf_printf(b, "%s c ON s._mapping = c._mapping AND s._row = "
                          "c._row WHERE (s._row IS NULL AND NOT c._deleted) "
                          "OR c._row IS NULL OR (s._row IS NOT NULL AND c._deleted)",
                       qn.p);
        dist = 0;
        for (uint32_t k = 0; k < t->nkey; k++) {
            cdc_buf_puts(b, dist++ ? " OR s." : " OR (s._row IS NOT NULL AND "
                                                "(s.");
            ident(x, b, t->fields[t->key[k]].name);
            cdc_buf_puts(b, " IS DISTINCT FROM c.");
            ident(x, b, t->fields[t->key[k]].name);
        }
        for (uint32_t f = 0; f < t->nfields; f++) {
            if (!t->fields[f].agg)
                continue;
            cdc_buf_puts(b, " OR s.");
            ident(x, b, t->fields[f].name);
            cdc_buf_puts(b, " IS DISTINCT FROM c.");
            ident(x, b, t->fields[f].name);
        }
        cdc_buf_puts(b, "))");
        cdc_buf_free(&ac);
        if (pg_run(x, b->p, err))
            goto out;
    }
    if (cdc_pgv_target(t)) {
        cdc_buf_reset(&qn);
        cdc_buf_reset(&d);
        cdc_pgv_table(t, name, sizeof(name));
        side_name(rc, x, &qn, name);
        cdc_buf_reset(b);
        cdc_buf_printf(b, "CREATE TEMP TABLE rc_vts ON COMMIT DROP AS "
                          "SELECT %s, _field, _source, _value, _rank, "
                          "_score, _t FROM %s WITH NO DATA",
                       keys, qn.p);
        if (pg_run(x, b->p, err))
            goto out;
        for (size_t i = 0; i < rc->n; i++) {
            rc_row_t *row = rc->rows[i];
            for (uint32_t f = 0; f < t->nfields; f++) {
                if (!t->fields[f].per_source)
                    continue;
                for (uint32_t s = 0; s < rc->map->nsources; s++) {
                    const rc_cell_t *c = cell(row, (int)s, f);
                    char num[24];
                    if (!c || !c->w.set)
                        continue;
                    put_key(rc, &d, row);
                    put_text(&d, t->fields[f].name, 0);
                    put_text(&d, rc->map->sources[s].id, 0);
                    if (c->w.isnull)
                        put_text(&d, NULL, 0);
                    else {
                        copy_val(&d, c->w.val, c->w.len);
                        cdc_buf_putc(&d, '\t');
                    }
                    put_text(&d, c->w.rank, 0);
                    put_text(&d, c->w.score, 0);
                    snprintf(num, sizeof(num), "%" PRId64, c->w.t);
                    put_text(&d, num, 1);
                }
            }
        }
        if (copy_in(x, "COPY pg_temp.rc_vts FROM STDIN", &d, err))
            goto out;
        /* a source's current value and score; a NULL entry is no vote,
         * like no entry (a gone source row's clear) */
        cdc_buf_reset(b);
        cdc_buf_printf(b, "INSERT INTO pg_temp.rc_diff (%s, kind, field, "
                          "sval, nval) SELECT ", keys);
        key_coalesce(rc, x, b, "s", "c");
        cdc_buf_puts(b, ", 'side', concat_ws(' ', ");
        lit(x, b, name);
        cdc_buf_puts(b, ", COALESCE(s._field, c._field), COALESCE(s._source, "
                        "c._source)), CASE WHEN c._field IS NULL THEN 'no "
                        "entry' ELSE concat(COALESCE(c._value, 'null'), ' "
                        "score=', c._score) END, CASE WHEN s._field IS NULL "
                        "THEN 'no source row' ELSE concat(COALESCE(s._value, "
                        "'null'), ' score=', s._score) END FROM "
                        "pg_temp.rc_vts s FULL JOIN ");
        cdc_buf_printf(b, "(SELECT * FROM %s WHERE _field IN (", qn.p);
        name_list(rc, x, b, 0);
        cdc_buf_puts(b, ")) c ON ");
        key_eq(rc, x, b, "s", "c");
        cdc_buf_puts(b, " AND s._field = c._field AND s._source = c._source "
                        "WHERE CASE WHEN s._field IS NULL THEN c._value IS "
                        "NOT NULL WHEN c._field IS NULL THEN s._value IS NOT "
                        "NULL ELSE c._value IS DISTINCT FROM s._value OR "
                        "(s._value IS NOT NULL AND c._score IS DISTINCT FROM "
                        "s._score) END");
        if (pg_run(x, b->p, err))
            goto out;
    }
    r = 0;
out:
    cdc_buf_free(&d);
    cdc_buf_free(&qn);
    return r;
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
                    "concat(concat_ws(' ', d.nprov->>'s', COALESCE(d.nprov->>'from', "
                    "d.nprov->>'row')), CASE WHEN "
                    "d.keep THEN ' (keeps the stored rank)' END) END, "
                    "(SELECT string_agg(DISTINCT concat(v->>'s', ' ', "
                    "COALESCE(v->>'from', v->>'row', concat('t=', v->>'t'))), "
                    "', ') FROM "
                    "jsonb_each(COALESCE(d.nprov, d.sprov)) e(k, v) WHERE "
                    "jsonb_typeof(v) = 'object' AND v ? 's'), "
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
        else if (!strcmp(kind, "side"))
            sum->side++;
        else
            sum->differs++;
        if (json) {
            printf("%s\n", PQgetvalue(res, i, 8));
            continue;
        }
        if (!strcmp(kind, "side")) {
            /* a side table's row: what is stored, what the sources make */
            printf("side %s %s: stored %s, recomputed %s\n",
                   PQgetvalue(res, i, 0), PQgetvalue(res, i, 2),
                   PQgetvalue(res, i, 3), PQgetvalue(res, i, 5));
        } else if (!strcmp(kind, "differs")) {
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

/* ---- repairing the side tables ------------------------------------------- */

/* the key equality of aliases a and c, for WHERE clauses */
static void keq(rc_t *rc, pgx_t *x, cdc_buf_t *b, const char *a, const char *c)
{
    key_eq(rc, x, b, a, c);
}

/* " AND x.k1 IS DISTINCT FROM y.k1 ..." as an OR group over the keys */
static void keys_differ(rc_t *rc, pgx_t *x, cdc_buf_t *b, const char *a,
                        const char *c)
{
    for (uint32_t k = 0; k < rc->t->nkey; k++) {
        cdc_buf_printf(b, "%s%s.", k ? " OR " : "(", a);
        ident(x, b, rc->t->fields[rc->t->key[k]].name);
        cdc_buf_printf(b, " IS DISTINCT FROM %s.", c);
        ident(x, b, rc->t->fields[rc->t->key[k]].name);
    }
    cdc_buf_putc(b, ')');
}

/*
 * Make the side tables hold what the sources make, keeping the stored
 * ranks where a row exists (the change that set it was real; only its
 * state is wrong), and collect the keys whose derived fields must be
 * recomputed (pg_temp.rc_touch):
 *   - a live row no source row makes is marked deleted (a candidate's
 *     tombstone, a gone contribution) or its entry becomes NULL (no vote):
 *     a replay of an older change of that source row still loses to it;
 *   - a row whose state differs, or that is marked deleted while the
 *     source row exists, takes the recomputed state under its stored
 *     rank (an ordered candidate takes the recomputed order value);
 *   - a missing row is inserted with its snapshot rank, below every
 *     streamed change, as a backfill would write it.
 * Contributions are states keyed by source row, never increments: a
 * repaired row is counted once, and a later change of its source row
 * replaces its state (and moves it) instead of adding to it.
 */
static int rc_side_repair(rc_t *rc, pgx_t *x, const char *keys,
                          cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t *b = &x->sql, qn = CDC_BUF_INIT, kc = CDC_BUF_INIT;
    char name[256];
    int r = -1;

    key_cols(rc, x, &kc, "s");
    cdc_buf_reset(b);
    cdc_buf_printf(b, "CREATE TEMP TABLE rc_touch ON COMMIT DROP AS SELECT "
                      "DISTINCT %s FROM pg_temp.rc_diff WHERE kind <> "
                      "'extra'",
                   keys);
    if (pg_run(x, b->p, err))
        goto out;
    if (t->ngroups) {
        int nord = 0;
        cdc_map_candidates_table(t, name, sizeof(name));
        side_name(rc, x, &qn, name);
        cdc_buf_reset(b);
        cdc_buf_printf(b, "UPDATE %s c SET _deleted = true WHERE NOT "
                          "c._deleted AND c._group IN (", qn.p);
        name_list(rc, x, b, 1);
        cdc_buf_puts(b, ") AND NOT EXISTS (SELECT 1 FROM pg_temp.rc_cand s "
                        "WHERE ");
        keq(rc, x, b, "s", "c");
        cdc_buf_puts(b, " AND s._group = c._group AND s._mapping = c._mapping "
                        "AND s._row_id = c._row_id); ");
        cdc_buf_printf(b, "UPDATE %s c SET _deleted = false, _values = "
                          "s._values, _source = s._source, _commit_us = CASE "
                          "WHEN c._deleted THEN s._commit_us ELSE c._commit_us "
                          "END, _grank = CASE WHEN c._deleted THEN s._grank "
                          "WHEN c._group IN (NULL", qn.p);
        for (uint32_t g = 0; g < t->ngroups; g++)
            if (t->groups[g].rule == CDC_RULE_ORDERED) {
                cdc_buf_puts(b, ", ");
                lit(x, b, t->groups[g].name);
                nord++;
            }
        cdc_buf_puts(b, ") THEN left(s._grank, 16) || substr(c._grank, 17) "
                        "ELSE c._grank END FROM pg_temp.rc_cand s WHERE ");
        keq(rc, x, b, "s", "c");
        cdc_buf_printf(b, " AND s._group = c._group AND s._mapping = "
                          "c._mapping AND s._row_id = c._row_id AND "
                          "(c._deleted OR c._values IS DISTINCT FROM "
                          "s._values%s); ",
                       nord ? " OR left(c._grank, 16) <> left(s._grank, 16)"
                            : "");
        cdc_buf_printf(b, "INSERT INTO %s (%s, _group, _mapping, _row_id, "
                          "_vrank, _grank, _deleted, _source, _commit_us, "
                          "_values) SELECT %s, s._group, s._mapping, "
                          "s._row_id, s._vrank, s._grank, false, s._source, "
                          "s._commit_us, s._values FROM pg_temp.rc_cand s "
                          "WHERE NOT EXISTS (SELECT 1 FROM %s c WHERE ",
                       qn.p, keys, kc.p, qn.p);
        keq(rc, x, b, "s", "c");
        cdc_buf_puts(b, " AND s._group = c._group AND s._mapping = c._mapping "
                        "AND s._row_id = c._row_id)");
        if (pg_run(x, b->p, err))
            goto out;
    }
    if (t->aggregates) {
        cdc_buf_t ac = CDC_BUF_INIT, set = CDC_BUF_INIT, sc = CDC_BUF_INIT;
        int rr;
        cdc_buf_reset(&qn);
        cdc_map_contrib_table(t, name, sizeof(name));
        side_name(rc, x, &qn, name);
        for (uint32_t k = 0; k < t->nkey; k++) {
            cdc_buf_puts(&set, ", ");
            ident(x, &set, t->fields[t->key[k]].name);
            cdc_buf_puts(&set, " = s.");
            ident(x, &set, t->fields[t->key[k]].name);
        }
        for (uint32_t f = 0; f < t->nfields; f++) {
            if (!t->fields[f].agg)
                continue;
            cdc_buf_puts(&ac, ", ");
            ident(x, &ac, t->fields[f].name);
            cdc_buf_puts(&sc, ", s.");
            ident(x, &sc, t->fields[f].name);
            cdc_buf_puts(&set, ", ");
            ident(x, &set, t->fields[f].name);
            cdc_buf_puts(&set, " = s.");
            ident(x, &set, t->fields[f].name);
        }
        /* the old key of a contribution that moved is recomputed too */
        cdc_buf_reset(b);
        cdc_buf_printf(b, "INSERT INTO pg_temp.rc_touch SELECT DISTINCT ");
        key_cols(rc, x, b, "c");
        cdc_buf_printf(b, " FROM %s c JOIN pg_temp.rc_ctb s ON s._mapping = "
                          "c._mapping AND s._row = c._row WHERE NOT "
                          "c._deleted AND ", qn.p);
        keys_differ(rc, x, b, "s", "c");
        cdc_buf_printf(b, "; UPDATE %s c SET _deleted = true WHERE NOT "
                          "c._deleted AND NOT EXISTS (SELECT 1 FROM "
                          "pg_temp.rc_ctb s WHERE s._mapping = c._mapping AND "
                          "s._row = c._row); ", qn.p);
        cdc_buf_printf(b, "UPDATE %s c SET _deleted = false%s FROM "
                          "pg_temp.rc_ctb s WHERE s._mapping = c._mapping AND "
                          "s._row = c._row AND (c._deleted OR ", qn.p, set.p);
        keys_differ(rc, x, b, "s", "c");
        for (uint32_t f = 0; f < t->nfields; f++) {
            if (!t->fields[f].agg)
                continue;
            cdc_buf_puts(b, " OR s.");
            ident(x, b, t->fields[f].name);
            cdc_buf_puts(b, " IS DISTINCT FROM c.");
            ident(x, b, t->fields[f].name);
        }
        cdc_buf_printf(b, "); INSERT INTO %s (%s, _mapping, _row, _rank, "
                          "_deleted%s) SELECT %s, s._mapping, s._row, s._rank, "
                          "false%s FROM pg_temp.rc_ctb s WHERE NOT EXISTS "
                          "(SELECT 1 FROM %s c WHERE s._mapping = c._mapping "
                          "AND s._row = c._row)",
                       qn.p, keys, ac.p, kc.p, sc.p, qn.p);
        rr = pg_run(x, b->p, err);
        cdc_buf_free(&ac);
        cdc_buf_free(&set);
        cdc_buf_free(&sc);
        if (rr)
            goto out;
    }
    if (cdc_pgv_target(t)) {
        cdc_buf_reset(&qn);
        cdc_pgv_table(t, name, sizeof(name));
        side_name(rc, x, &qn, name);
        cdc_buf_reset(b);
        cdc_buf_printf(b, "UPDATE %s c SET _value = NULL WHERE c._value IS NOT "
                          "NULL AND c._field IN (", qn.p);
        name_list(rc, x, b, 0);
        cdc_buf_puts(b, ") AND NOT EXISTS (SELECT 1 FROM pg_temp.rc_vts s "
                        "WHERE ");
        keq(rc, x, b, "s", "c");
        cdc_buf_printf(b, " AND s._field = c._field AND s._source = "
                          "c._source); UPDATE %s c SET _value = s._value, "
                          "_score = s._score FROM pg_temp.rc_vts s WHERE ",
                       qn.p);
        keq(rc, x, b, "s", "c");
        cdc_buf_printf(b, " AND s._field = c._field AND s._source = c._source "
                          "AND (c._value IS DISTINCT FROM s._value OR "
                          "(s._value IS NOT NULL AND c._score IS DISTINCT FROM "
                          "s._score)); INSERT INTO %s (%s, _field, _source, "
                          "_value, _rank, _score, _deleted, _t) SELECT %s, "
                          "s._field, s._source, s._value, s._rank, s._score, "
                          "false, s._t FROM pg_temp.rc_vts s WHERE s._value IS "
                          "NOT NULL AND NOT EXISTS (SELECT 1 FROM %s c WHERE ",
                       qn.p, keys, kc.p, qn.p);
        keq(rc, x, b, "s", "c");
        cdc_buf_puts(b, " AND s._field = c._field AND s._source = c._source)");
        if (pg_run(x, b->p, err))
            goto out;
    }
    /* the keys of extra rows are deleted, not recomputed */
    cdc_buf_reset(b);
    cdc_buf_puts(b, "DELETE FROM pg_temp.rc_touch s USING pg_temp.rc_diff c "
                    "WHERE c.kind = 'extra' AND ");
    keq(rc, x, b, "s", "c");
    r = pg_run(x, b->p, err);
out:
    cdc_buf_free(&qn);
    cdc_buf_free(&kc);
    return r;
}

static const cdc_map_mapping_t *mapping_named(const rc_t *rc,
                                              const char *name)
{
    for (uint32_t i = 0; i < rc->map->nmappings; i++) {
        const cdc_map_mapping_t *mp = &rc->map->mappings[i];
        if (mp->target == rc->t && mp->name && !strcmp(mp->name, name))
            return mp;
    }
    return NULL;
}

static int sink_err(void *ctx, PGresult *r, const char *what, cdc_err_t *err)
{
    return cdc_pgs_fail(ctx, r, what, NULL, err);
}

static const char *ar_str(cdc_wide_ops_t *o, const char *s)
{
    return cdc_arena_memdup(&o->arena, s, strlen(s) + 1);
}

/* The key texts of row i of res (columns 0..nkey-1) in the arena. */
static const char **ar_key(rc_t *rc, cdc_wide_ops_t *o, PGresult *res, int i)
{
    const char **k = cdc_arena_calloc(&o->arena,
                                      (rc->t->nkey + 1) * sizeof(char *));
    for (uint32_t q = 0; q < rc->t->nkey; q++)
        k[q] = ar_str(o, PQgetvalue(res, i, (int)q));
    return k;
}

/*
 * Recompute the derived fields of the touched keys from the repaired side
 * tables with the sink's own statements (cdc_pgv_apply,
 * cdc_pgw_groups_apply, cdc_pgw_agg_apply), so the wide table is the
 * function of its side tables that the stream keeps it at.  The
 * operations handed over are no-ops on the side tables: each names a row
 * the side table has, under a rank ("0") below every stored one, so only
 * the recomputation of its key runs.  A group or per-source field of a
 * key without any side row has no value: it is cleared here.
 */
static int rc_recompute(rc_t *rc, pgx_t *x, const char *qt, cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t *b = &x->sql, qn = CDC_BUF_INIT;
    cdc_wide_ops_t ops;
    unsigned char *rmode = cdc_xcalloc(rc->map->ntargets + 1, 1);
    const cdc_map_mapping_t *any = NULL;
    PGresult *res = NULL;
    char name[256];
    int r = -1;

    cdc_wide_ops_init(&ops);
    rmode[t - rc->map->targets] = (unsigned char)x->rank;
    for (uint32_t i = 0; i < rc->map->nmappings && !any; i++)
        if (rc->map->mappings[i].target == t)
            any = &rc->map->mappings[i];
    if (cdc_pgv_target(t)) {
        cdc_pgv_t v = {.pg = x->c, .map = rc->map, .pgerr = sink_err,
                       .ctx = x->c, .rmode = rmode};
        cdc_pgv_table(t, name, sizeof(name));
        side_name(rc, x, &qn, name);
        cdc_buf_reset(b);
        cdc_buf_puts(b, "SELECT DISTINCT ON (");
        key_cols(rc, x, b, "c");
        cdc_buf_puts(b, ", c._field) ");
        for (uint32_t k = 0; k < t->nkey; k++) {
            cdc_buf_puts(b, "c.");
            ident(x, b, t->fields[t->key[k]].name);
            cdc_buf_puts(b, "::text, ");
        }
        cdc_buf_printf(b, "c._field, c._source FROM %s c JOIN pg_temp.rc_touch "
                          "s ON ", qn.p);
        keq(rc, x, b, "s", "c");
        res = PQexec(x->c, b->p);
        if (pg_ok(x, res, "reading the votes of the repaired keys", err)) {
            res = NULL;
            goto out;
        }
        for (int i = 0; i < PQntuples(res); i++) {
            int f = cdc_map_find_field(t, PQgetvalue(res, i, (int)t->nkey));
            cdc_wide_op_t *op;
            if (f < 0 || !t->fields[f].per_source)
                continue;
            op = cdc_wide_ops_new(&ops);
            op->kind = CDC_WIDE_UPSERT;
            op->target = t;
            op->mapping = any;
            op->key = ar_key(rc, &ops, res, i);
            op->keyfields = t->key;
            op->nkey = t->nkey;
            op->source = ar_str(&ops, PQgetvalue(res, i, (int)t->nkey + 1));
            op->vals = cdc_arena_calloc(&ops.arena, sizeof(*op->vals));
            op->nvals = 1;
            op->vals[0].field = (uint32_t)f;
            op->vals[0].isnull = 1;
            strcpy(op->vals[0].rank, "0");
            strcpy(op->vals[0].score, "0");
        }
        PQclear(res);
        res = NULL;
        if (ops.n && (cdc_pgv_lock(&v, &ops, err) ||
                      cdc_pgv_apply(&v, &ops, err)))
            goto out;
        cdc_wide_ops_reset(&ops);
    }
    if (t->ngroups) {
        cdc_buf_reset(&qn);
        cdc_map_candidates_table(t, name, sizeof(name));
        side_name(rc, x, &qn, name);
        cdc_buf_reset(b);
        cdc_buf_puts(b, "SELECT DISTINCT ON (");
        key_cols(rc, x, b, "c");
        cdc_buf_puts(b, ", c._group) ");
        for (uint32_t k = 0; k < t->nkey; k++) {
            cdc_buf_puts(b, "c.");
            ident(x, b, t->fields[t->key[k]].name);
            cdc_buf_puts(b, "::text, ");
        }
        cdc_buf_printf(b, "c._group, c._mapping, c._row_id, c._source FROM %s "
                          "c JOIN pg_temp.rc_touch s ON ", qn.p);
        keq(rc, x, b, "s", "c");
        res = PQexec(x->c, b->p);
        if (pg_ok(x, res, "reading the candidates of the repaired keys", err)) {
            res = NULL;
            goto out;
        }
        for (int i = 0; i < PQntuples(res); i++) {
            const char *gn = PQgetvalue(res, i, (int)t->nkey);
            const cdc_map_mapping_t *mp =
                mapping_named(rc, PQgetvalue(res, i, (int)t->nkey + 1));
            cdc_wide_op_t *op;
            uint32_t g = 0;
            while (g < t->ngroups && strcmp(t->groups[g].name, gn))
                g++;
            if (g == t->ngroups || !mp)
                continue; /* a group or mapping no longer declared */
            op = cdc_wide_ops_new(&ops);
            op->kind = CDC_WIDE_GROUP;
            op->target = t;
            op->mapping = mp;
            op->key = ar_key(rc, &ops, res, i);
            op->keyfields = t->key;
            op->nkey = t->nkey;
            op->group = g;
            op->rowid = ar_str(&ops, PQgetvalue(res, i, (int)t->nkey + 2));
            op->source = ar_str(&ops, PQgetvalue(res, i, (int)t->nkey + 3));
            op->vrank = "0";
            op->grank = "0";
            op->gdeleted = 1;
        }
        PQclear(res);
        res = NULL;
        if (ops.n && cdc_pgw_groups_apply(x->c, rc->map, &ops, rmode, err))
            goto out;
        cdc_wide_ops_reset(&ops);
    }
    if (t->aggregates && any) {
        cdc_buf_reset(b);
        cdc_buf_puts(b, "SELECT ");
        for (uint32_t k = 0; k < t->nkey; k++) {
            cdc_buf_puts(b, k ? ", s." : "s.");
            ident(x, b, t->fields[t->key[k]].name);
            cdc_buf_puts(b, "::text");
        }
        cdc_buf_puts(b, " FROM pg_temp.rc_touch s");
        res = PQexec(x->c, b->p);
        if (pg_ok(x, res, "reading the repaired keys", err)) {
            res = NULL;
            goto out;
        }
        for (int i = 0; i < PQntuples(res); i++) {
            /* a change of the key without values: it touches the key */
            cdc_wide_op_t *op = cdc_wide_ops_new(&ops);
            op->kind = CDC_WIDE_UPSERT;
            op->target = t;
            op->mapping = any;
            op->key = ar_key(rc, &ops, res, i);
            op->keyfields = t->key;
            op->nkey = t->nkey;
            op->source = any->source->id;
        }
        PQclear(res);
        res = NULL;
        if (ops.n && cdc_pgw_agg_apply(x->c, rc->map, &ops, rmode, err))
            goto out;
    }
    /* groups and per-source fields of keys without any side row */
    for (uint32_t f = 0; f < t->nfields; f++) {
        const cdc_map_field_t *fd = &t->fields[f];
        char col[200];
        if (!fd->group && !fd->per_source)
            continue;
        cdc_buf_reset(&qn);
        if (fd->group)
            cdc_map_candidates_table(t, name, sizeof(name));
        else
            cdc_pgv_table(t, name, sizeof(name));
        side_name(rc, x, &qn, name);
        cdc_buf_reset(b);
        cdc_buf_printf(b, "UPDATE %s t SET ", qt);
        ident(x, b, fd->name);
        cdc_buf_puts(b, " = NULL, ");
        if (x->rank) {
            cdc_pgrank_col(col, sizeof(col), fd->name);
            ident(x, b, col);
            cdc_buf_puts(b, " = NULL");
        } else {
            cdc_buf_puts(b, "_provenance = t._provenance - ");
            lit(x, b, fd->name);
        }
        cdc_buf_puts(b, " FROM pg_temp.rc_touch s WHERE ");
        keq(rc, x, b, "s", "t");
        cdc_buf_printf(b, " AND NOT EXISTS (SELECT 1 FROM %s c WHERE ", qn.p);
        keq(rc, x, b, "s", "c");
        if (fd->group) {
            cdc_buf_puts(b, " AND NOT c._deleted AND c._group = ");
            lit(x, b, fd->group_name);
        } else {
            cdc_buf_puts(b, " AND c._field = ");
            lit(x, b, fd->name);
        }
        cdc_buf_puts(b, ") AND (t.");
        ident(x, b, fd->name);
        cdc_buf_puts(b, " IS NOT NULL OR ");
        if (x->rank) {
            cdc_buf_puts(b, "t.");
            ident(x, b, col);
            cdc_buf_puts(b, " IS NOT NULL)");
        } else {
            cdc_buf_puts(b, "t._provenance ? ");
            lit(x, b, fd->name);
            cdc_buf_putc(b, ')');
        }
        if (pg_run(x, b->p, err))
            goto out;
    }
    r = 0;
out:
    if (res)
        PQclear(res);
    cdc_wide_ops_free(&ops);
    cdc_buf_free(&qn);
    free(rmode);
    return r;
}

static int rc_repair(rc_t *rc, pgx_t *x, const char *qt, const char *keys,
                     cdc_err_t *err)
{
    cdc_buf_t *b = &x->sql;
    const cdc_map_target_t *t = rc->t;

    /* the side tables first: what the derived fields are computed from */
    if (rc_side_repair(rc, x, keys, err))
        return -1;

    /* extra rows go */
    cdc_buf_reset(b);
    cdc_buf_printf(b, "DELETE FROM %s t USING pg_temp.rc_diff d WHERE "
                      "d.kind = 'extra' AND ",
                   qt);
    key_eq(rc, x, b, "t", "d");
    if (pg_run(x, b->p, err))
        return -1;
    /* missing rows come with their plain fields' snapshot ranks ("row"
     * is only shown); derived fields follow from the side tables below */
    {
        cdc_buf_t ic = CDC_BUF_INIT, wc = CDC_BUF_INIT, pl = CDC_BUF_INIT;
        int n = 0;
        for (uint32_t k = 0; k < t->nkey; k++) {
            cdc_buf_puts(&ic, k ? ", " : "");
            ident(x, &ic, t->fields[t->key[k]].name);
            cdc_buf_puts(&wc, k ? ", w." : "w.");
            ident(x, &wc, t->fields[t->key[k]].name);
        }
        for (uint32_t f = 0; f < t->nfields; f++) {
            char col[200];
            if (t->fields[f].is_key || derived(&t->fields[f]))
                continue;
            cdc_buf_puts(&ic, ", ");
            ident(x, &ic, t->fields[f].name);
            cdc_buf_puts(&wc, ", w.");
            ident(x, &wc, t->fields[f].name);
            if (x->rank) {
                cdc_pgrank_col(col, sizeof(col), t->fields[f].name);
                cdc_buf_puts(&ic, ", ");
                ident(x, &ic, col);
                cdc_buf_printf(&wc, ", %s.autoglm_cdc_rank((w._provenance "
                                    "-> ", x->qs.p);
                lit(x, &wc, t->fields[f].name);
                cdc_buf_puts(&wc, ") - 'row')");
            } else {
                cdc_buf_puts(&pl, n ? ", " : "");
                lit(x, &pl, t->fields[f].name);
            }
            n++;
        }
        if (!x->rank) {
            cdc_buf_puts(&ic, ", _provenance");
            if (n)
                cdc_buf_printf(&wc, ", COALESCE((SELECT jsonb_object_agg(k, "
                                    "v - 'row') FROM jsonb_each(w._provenance)"
                                    " e(k, v) WHERE k IN (%s)), '{}')", pl.p);
            else
                cdc_buf_puts(&wc, ", '{}'::jsonb");
        }
        cdc_buf_reset(b);
        cdc_buf_printf(b, "INSERT INTO %s (%s) SELECT %s FROM "
                          "pg_temp.rc_shadow w JOIN pg_temp.rc_diff d ON "
                          "d.kind = 'missing' AND w._src = '' AND ",
                       qt, ic.p, wc.p);
        key_eq(rc, x, b, "w", "d");
        cdc_buf_free(&ic);
        cdc_buf_free(&wc);
        cdc_buf_free(&pl);
        if (pg_run(x, b->p, err))
            return -1;
    }
    /* differing fields */
    for (uint32_t f = 0; f < t->nfields; f++) {
        cdc_buf_t fl = CDC_BUF_INIT, fi = CDC_BUF_INIT;
        int r;
        char *tp;
        if (t->fields[f].is_key || derived(&t->fields[f]))
            continue;
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
    return rc_recompute(rc, x, qt, err);
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
        side_name(rc, x, &q, name);
    }
    if (t->aggregates) {
        cdc_map_contrib_table(t, name, sizeof(name));
        cdc_buf_puts(&q, ", ");
        side_name(rc, x, &q, name);
    }
    if (cdc_pgv_target(t)) {
        cdc_pgv_table(t, name, sizeof(name));
        cdc_buf_puts(&q, ", ");
        side_name(rc, x, &q, name);
    }
    cdc_buf_puts(&q, " IN EXCLUSIVE MODE");
    if (pg_run(x, "SET LOCAL lock_timeout = '200ms'", err))
        goto out;
    for (int i = 0;; i++) {
        PGresult *res;
        const char *st;
        if (pg_run(x, "SAVEPOINT rc_lock", err))
            goto out;
        res = PQexec(x->c, q.p);
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            PQclear(res);
            break;
        }
        st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (!st || strcmp(st, "55P03") || i >= 1500) {
            pg_ok(x, res, q.p, err);
            goto out;
        }
        PQclear(res);
        if (pg_run(x, "ROLLBACK TO SAVEPOINT rc_lock", err))
            goto out;
        {
            struct timespec ts = {0, (50 + (i % 7) * 10) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    r = pg_run(x, "RELEASE SAVEPOINT rc_lock; SET LOCAL lock_timeout = 0",
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
        if (t->fields[f].is_key)
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
        if (pg_run(x, x->sql.p, err)) {
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
                   "text[], ADD _adm text[], ADD _row jsonb; "
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
        rc_side_compare(rc, x, g->qt.p, g->keys.p, err) ||
        rc_report(rc, x, json, sum, err))
        return -1;
    if (repair && (sum->missing || sum->extra || sum->differs || sum->side) &&
        rc_repair(rc, x, g->qt.p, g->keys.p, err))
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
    rc_sum_t sum = {0, 0, 0, 0};
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
    for (uint32_t f = 0; f < rc.t->nfields; f++) {
        const cdc_map_field_t *fd = &rc.t->fields[f];
        if (fd->is_key || !fd->half_life_us || (!fd->per_source && !fd->group))
            continue;
        /* a decayed score needs the commit time of every source's value,
         * which a snapshot does not have */
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "reconcile: target '%s': field "
                    "'%s' has rule %s with half_life, whose scores decay "
                    "from commit times that a snapshot of the sources does "
                    "not have", rc.t->name, fd->name,
                    cdc_map_rule_name(fd->rule));
        cdc_err_hint(err, "reconcile the target without half_life (a copy of "
                     "the mapping files without it checks everything else), "
                     "or compare %s with %s_votes by hand (docs/MAPPINGS.md, "
                     "Reconcile)", rc.t->table, rc.t->table);
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
    rc_derive(&rc);
    CDC_INFO(FAC, "%" PRIu64 " source rows make %zu rows of %s", rc.read,
             rc.n, rc.t->name);
    if (tgt_run(&rc, &g, repair, json, &sum, err))
        goto fail;
    {
        long all = sum.missing + sum.extra + sum.differs + sum.side;
        int sides = rc.t->ngroups || rc.t->aggregates || cdc_pgv_target(rc.t);
        char side[80] = "";
        if (sides)
            snprintf(side, sizeof(side), ", %ld side-table rows differ",
                     sum.side);
        if (json)
            printf("{\"kind\":\"summary\",\"target\":\"%s\",\"rows\":%zu,"
                   "\"missing\":%ld,\"extra\":%ld,\"differs\":%ld,"
                   "\"side\":%ld,\"repaired\":%s}\n",
                   rc.t->name, rc.n, sum.missing, sum.extra, sum.differs,
                   sum.side, repair && all ? "true" : "false");
        else
            printf("%s: %zu rows recomputed from %" PRIu64 " source rows; %ld "
                   "missing, %ld extra, %ld fields differ%s%s\n",
                   rc.t->name, rc.n, rc.read, sum.missing, sum.extra,
                   sum.differs, side,
                   all ? (repair ? "; repaired" : "") : "; no drift");
    }
    if (fflush(stdout)) {
        cdc_err_set(err, CDC_EXIT_FAIL, 0, "reconcile: cannot write the "
                                           "standard output");
        goto fail;
    }
    code = (sum.missing || sum.extra || sum.differs || sum.side) && !repair
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
