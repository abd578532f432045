/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile_derive.c - the rules over the model: the winner of a field,
 * which candidates are admissible, and the derived fields (groups,
 * aggregates, per-source fields) computed with the sinks' pure functions.
 */
#include "cdc/commands/reconcile_int.h"

/* The winning source of field f of r (-1: none). */
int rc_winner(const rc_t *rc, const rc_row_t *r, uint32_t f)
{
    int w = -1;
    for (uint32_t s = 0; s < rc->map->nsources; s++) {
        const rc_cell_t *c = rc_cell(r, (int)s, f);
        if (c && c->w.set &&
            (w < 0 || strcmp(c->w.rank, rc_cell(r, w, f)->w.rank) > 0))
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
int rc_admissible(const rc_t *rc, uint32_t f, int s, int w,
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

/* A derived field: its value is a function of side-table state (a
 * group's candidates, the contributions, the sources' entries). */
int rc_derived(const cdc_map_field_t *fd)
{
    return fd->group || fd->agg || fd->per_source;
}

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

int rc_gc_admissible(const rc_t *rc, const rc_row_t *r,
                     const rc_gcand_t *c)
{
    int w = r->gwin[c->group];
    size_t n = head_len(rc->t->groups[c->group].rule);
    return w >= 0 && !strncmp(c->grank, r->gc[w].grank, n);
}

void rc_gc_prov(const rc_t *rc, cdc_buf_t *b, const rc_gcand_t *c)
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

/* Group g of row r: its winner among the live candidates (the rule of
 * map_group.c); the group's fields take its values and provenance. */
static void derive_group(rc_t *rc, rc_row_t *r, uint32_t g, cdc_buf_t *b)
{
    const cdc_map_target_t *t = rc->t;
    int w = -1;

    for (size_t k = 0; k < r->ngc; k++)
        if (r->gc[k].group == g &&
            (w < 0 || gc_cmp(&r->gc[k], &r->gc[w]) > 0))
            w = (int)k;
    r->gwin[g] = w;
    if (w < 0)
        return; /* no live candidate: NULL, no provenance */
    cdc_buf_reset(b);
    rc_gc_prov(rc, b, &r->gc[w]);
    for (uint32_t k = 0; k < t->groups[g].nfields; k++) {
        rc_calc_t *c = &r->calc[t->groups[g].fields[k]];
        c->set = 1;
        c->isnull = !r->gc[w].vals[k];
        c->val = c->isnull ? NULL
                           : cdc_xstrndup(r->gc[w].vals[k],
                                          r->gc[w].lens[k]);
        c->len = r->gc[w].lens[k];
        c->prov = cdc_xstrdup(b->p);
    }
}

/* Aggregate field f of row r, folded over the live contributions
 * (cdc_map_agg_fold). */
static void derive_agg(rc_row_t *r, uint32_t f, const cdc_map_field_t *fd,
                       rc_calc_t *c, cdc_buf_t *b)
{
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
    cdc_buf_reset(b);
    cdc_buf_printf(b, "{\"from\":\"%s over %zu contribution%s\"}",
                   cdc_map_agg_name(fd->agg), n,
                   n == 1 ? "" : "s");
    c->prov = cdc_xstrdup(b->p);
    free(vals);
    free(lens);
}

/* half_life, some entry's commit time unknown (rc_side_times): the
 * sources whose value some commit time no later than the snapshot (now)
 * makes win: its unknown entries of that value (weighted: the entry
 * itself) at the latest time, the other unknown ones at the earliest
 * (the snapshot's 0).  vote and weighted only: a weighted_mean's result
 * is no one candidate. */
static void vote_adm(rc_t *rc, rc_row_t *r, uint32_t f,
                     const cdc_map_field_t *fd, rc_calc_t *c,
                     const cdc_vote_entry_t *en, const int *srcof, size_t n)
{
    cdc_vote_entry_t *e2;
    char (*sc)[32];
    int64_t now = cdc_now_us();
    int unknown = 0;

    for (size_t i = 0; i < n; i++)
        unknown |= !rc_cell(r, srcof[i], f)->known;
    if (!unknown || fd->rule == CDC_RULE_WMEAN)
        return;
    c->adm = cdc_xcalloc(rc->map->nsources + 1, 1);
    e2 = cdc_xcalloc(n + 1, sizeof(*e2));
    sc = cdc_xcalloc(n + 1, sizeof(*sc));
    for (size_t i = 0; i < n; i++) {
        cdc_vote_result_t res;
        for (size_t j = 0; j < n; j++) {
            const rc_cell_t *x = rc_cell(r, srcof[j], f);
            int mine = fd->rule == CDC_RULE_WEIGHTED
                           ? j == i
                           : !en[j].isnull && !en[i].isnull &&
                                 en[j].len == en[i].len &&
                                 !memcmp(en[j].val, en[i].val, en[i].len);
            e2[j] = en[j];
            if (x->known || !mine)
                continue;
            rc_hl_score(fd, x->w.score, now, sc[j]);
            e2[j].score = sc[j];
            e2[j].t = now;
            e2[j].rank = "~"; /* above every rank's hex digits */
        }
        if (!cdc_vote_compute(fd, e2, n, &res) && res.set &&
            res.isnull == en[i].isnull &&
            (res.isnull || (res.len == en[i].len &&
                            !memcmp(res.val, en[i].val, res.len))))
            c->adm[srcof[i]] = 1;
        free(res.val);
    }
    free(e2);
    free(sc);
}

/* Per-source field f of row r over each source's entry
 * (cdc_vote_compute). */
static void derive_vote(rc_t *rc, rc_row_t *r, uint32_t f,
                        const cdc_map_field_t *fd, rc_calc_t *c, cdc_buf_t *b)
{
    cdc_vote_entry_t *en =
        cdc_xcalloc(rc->map->nsources + 1, sizeof(*en));
    int *srcof = cdc_xcalloc(rc->map->nsources + 1, sizeof(int));
    size_t n = 0;
    cdc_vote_result_t res;

    for (uint32_t s = 0; s < rc->map->nsources; s++) {
        const rc_cell_t *x = rc_cell(r, (int)s, f);
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
        x = c->top >= 0 ? rc_cell(r, c->top, f) : NULL;
        if (x) {
            cdc_buf_reset(b);
            cdc_buf_puts(b, "{\"s\":");
            cdc_json_string(b, x->w.src, strlen(x->w.src));
            cdc_buf_printf(b, ",\"t\":%" PRId64 ",\"r\":\"%s\","
                           "\"sc\":\"%s\",\"row\":", x->w.t,
                           x->w.rank, res.total);
            cdc_json_string(b, x->row, strlen(x->row));
            cdc_buf_putc(b, '}');
            c->prov = cdc_xstrdup(b->p);
        }
        if (fd->half_life_us)
            vote_adm(rc, r, f, fd, c, en, srcof, n);
    }
    free(res.val);
    free(en);
    free(srcof);
}

/* Compute every derived field of every row: the group winners (the rule
 * of map_group.c), the aggregates over the live contributions
 * (cdc_map_agg_fold), the per-source fields over each source's entry
 * (cdc_vote_compute): the pure functions the sinks' state feeds. */
void rc_derive(rc_t *rc)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t b = CDC_BUF_INIT;

    for (size_t i = 0; i < rc->n; i++) {
        rc_row_t *r = rc->rows[i];
        r->calc = cdc_xcalloc(t->nfields + 1, sizeof(rc_calc_t));
        r->gwin = cdc_xcalloc(t->ngroups + 1, sizeof(int));
        for (uint32_t g = 0; g < t->ngroups; g++)
            derive_group(rc, r, g, &b);
        for (uint32_t f = 0; f < t->nfields; f++) {
            const cdc_map_field_t *fd = &t->fields[f];
            if (fd->agg)
                derive_agg(r, f, fd, &r->calc[f], &b);
            else if (fd->per_source)
                derive_vote(rc, r, f, fd, &r->calc[f], &b);
        }
    }
    cdc_buf_free(&b);
}
