/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map_group.c - field groups (`group: NAME` on target fields).
 *
 * The fields of a group win together: the whole group takes its values
 * from the ONE source row of greatest rank under the group's rule.  So
 * the sinks keep the candidates, one per (target key, mapping, source
 * row), and the group is a pure function of that set:
 *
 *   candidate  the source row's primary key (rowid), its newest change's
 *              vrank (rule latest: commit time, priority, source hash,
 *              position), that change's grank (the group's rule), the
 *              group's values, and whether the change deleted the row
 *   offer      a change replaces the candidate of its source row only
 *              when its vrank is strictly greater (a max lattice per
 *              source row: any order, duplicates and replays converge; a
 *              replay of an insert after its delete loses to the delete)
 *   winner     the live (not deleted) candidate of greatest grank, ties
 *              by mapping name, then rowid; none: the group is NULL
 *
 * A snapshot row (op 'r') ranks below every streamed change in both
 * ranks (commit time part zero, position part a hash of the values), as
 * for fields (docs/MAPPINGS.md, snapshot rows).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/envelope.h"
#include "cdc/util.h"
#include "mappings/map_int.h"

void cdc_map_candidates_table(const cdc_map_target_t *t, char *out, size_t n)
{
    snprintf(out, n, "%s_candidates", t->table);
}

/* ---- loading ----------------------------------------------------------- */

int cdc_map_groups_build(cdc_map_target_t *t, cdc_err_t *err)
{
    for (uint32_t i = 0; i < t->nfields; i++) {
        cdc_map_field_t *f = &t->fields[i];
        cdc_map_group_t *g = NULL;
        if (!f->group_name)
            continue;
        if (f->is_key) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: key field '%s' cannot "
                        "be in group '%s'", f->where, f->name, f->group_name);
            cdc_err_hint(err, "a group holds non-key fields that win "
                         "together; remove 'group' from the key field");
            return -1;
        }
        if (f->rule == CDC_RULE_VOTE || f->rule == CDC_RULE_WMEAN) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: field '%s' of group "
                        "'%s' has rule %s, which a group cannot have",
                        f->where, f->name, f->group_name,
                        cdc_map_rule_name(f->rule));
            cdc_err_hint(err, "a group takes all its values from one source "
                         "row: use latest, priority, weighted or ordered");
            return -1;
        }
        for (uint32_t k = 0; k < t->ngroups && !g; k++)
            if (!strcmp(t->groups[k].name, f->group_name))
                g = &t->groups[k];
        if (!g) {
            t->groups = cdc_xrealloc(t->groups,
                                     (t->ngroups + 1) * sizeof(*t->groups));
            g = &t->groups[t->ngroups++];
            memset(g, 0, sizeof(*g));
            g->name = cdc_xstrdup(f->group_name);
            g->rule = f->rule;
            g->where = cdc_xstrdup(f->where);
            g->fields = cdc_xcalloc(t->nfields, sizeof(uint32_t));
        } else if (g->rule != f->rule) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: field '%s' of group "
                        "'%s' has rule %s, but the group's first field (%s) "
                        "has rule %s", f->where, f->name, g->name,
                        cdc_map_rule_name(f->rule), g->where,
                        cdc_map_rule_name(g->rule));
            cdc_err_hint(err, "the fields of a group win together under one "
                         "rule: give them all the same 'rule'");
            return -1;
        }
        g->fields[g->nfields++] = i;
        f->group = (int)(g - t->groups) + 1;
    }
    return 0;
}

int cdc_map_groups_bind(cdc_map_mapping_t *mp, cdc_err_t *err)
{
    const cdc_map_target_t *t = mp->target;

    for (uint32_t g = 0; g < t->ngroups; g++) {
        const cdc_map_group_t *gr = &t->groups[g];
        const cdc_map_assign_t **as = cdc_xcalloc(gr->nfields + 1,
                                                  sizeof(*as));
        uint32_t have = 0;
        const char *missing = NULL, *present = NULL;
        for (uint32_t k = 0; k < gr->nfields; k++) {
            for (uint32_t i = 0; i < mp->nfields && !as[k]; i++)
                if (mp->fields[i].field == gr->fields[k])
                    as[k] = &mp->fields[i];
            if (as[k]) {
                have++;
                present = t->fields[gr->fields[k]].name;
            } else if (!missing)
                missing = t->fields[gr->fields[k]].name;
        }
        /* a column copy never writes a group: the group's fields come
         * from one row, named in 'fields' */
        for (int i = 0; i < mp->ninclude; i++) {
            int fi = cdc_map_find_field(t, mp->include[i]);
            if (fi >= 0 && t->fields[fi].group == (int)g + 1) {
                cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: mapping '%s' "
                            "copies column '%s' into field '%s' of group "
                            "'%s'", mp->where, mp->name, mp->include[i],
                            mp->include[i], gr->name);
                cdc_err_hint(err, "write a group's fields under 'fields:' "
                             "(field: column), all of them");
                free(as);
                return -1;
            }
        }
        if (!have) {
            free(as);
            continue;
        }
        if (mp->lookup) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: lookup mapping '%s' "
                        "writes field '%s' of group '%s'", mp->where,
                        mp->name, present, gr->name);
            cdc_err_hint(err, "a group takes its values from one source row "
                         "per key; a dimension lookup cannot offer one");
            free(as);
            return -1;
        }
        if (have < gr->nfields) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: mapping '%s' writes "
                        "field '%s' of group '%s' but not '%s'", mp->where,
                        mp->name, present, gr->name, missing);
            cdc_err_hint(err, "the fields of a group win together, from one "
                         "row: a mapping writes all of them or none (map "
                         "'%s' too, to null if the table has no such "
                         "column)", missing);
            free(as);
            return -1;
        }
        if (mp->confidence) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: mapping '%s' has a "
                        "confidence and writes field group '%s'", mp->where,
                        mp->name, gr->name);
            cdc_err_hint(err, "a group ranks its rows by the group's rule "
                         "and the source's static weight; remove "
                         "'confidence' or the group");
            free(as);
            return -1;
        }
        mp->gw = cdc_xrealloc(mp->gw, (mp->ngw + 1) * sizeof(*mp->gw));
        mp->gw[mp->ngw].group = g;
        mp->gw[mp->ngw].assign = as;
        mp->ngw++;
    }
    return 0;
}

int cdc_map_groups_check(const cdc_map_t *m, cdc_err_t *err)
{
    for (uint32_t i = 0; i < m->nmappings; i++) {
        const cdc_map_mapping_t *mp = &m->mappings[i];
        if (mp->on_delete == CDC_DEL_ROW && !mp->lookup &&
            mp->target->ngroups) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: mapping '%s' deletes "
                        "rows (on_delete: delete) of target '%s', which has "
                        "field group '%s'", mp->where, mp->name,
                        mp->target->name, mp->target->groups[0].name);
            cdc_err_hint(err, "row deletes and field groups cannot be "
                         "combined yet: use on_delete: clear (a group's "
                         "source row that is deleted hands the group to the "
                         "next-best row in any case)");
            return -1;
        }
    }
    return 0;
}

void cdc_map_groups_free_target(cdc_map_target_t *t)
{
    for (uint32_t g = 0; g < t->ngroups; g++) {
        free(t->groups[g].name);
        free(t->groups[g].fields);
        free(t->groups[g].where);
    }
    free(t->groups);
    for (uint32_t i = 0; i < t->nfields; i++)
        free(t->fields[i].group_name);
}

void cdc_map_groups_free_mapping(cdc_map_mapping_t *mp)
{
    for (uint32_t i = 0; i < mp->ngw; i++)
        free(mp->gw[i].assign);
    free(mp->gw);
}

/* ---- mapping a change ---------------------------------------------------- */

/* The source row's identity: a JSON array of its primary key's texts.
 * NULL with err when the table has none or the image lacks it. */
static const char *row_id(const cdc_map_mapping_t *mp, xctx_t *c)
{
    const cdc_table_t *tb = c->tbl;
    cdc_buf_t b = CDC_BUF_INIT;
    const char *r;

    int n = mp->nrow_key ? mp->nrow_key : (int)tb->npk;

    if (!n) {
        cdc_err_set(c->err, CDC_EXIT_DATA, CDC_ERR_F_DATA, "%s: mapping '%s' "
                    "writes field group '%s' but table %s.%s has no primary "
                    "key to tell its rows apart", mp->where, mp->name,
                    mp->target->groups[mp->gw[0].group].name, tb->db,
                    tb->name);
        cdc_err_hint(c->err, "a group keeps one candidate per source row: "
                     "give the source table a primary key");
        return NULL;
    }
    cdc_buf_putc(&b, '[');
    for (int k = 0; k < n; k++) {
        /* the mapping's row_key (aggregates) names the row alike */
        const char *col = mp->nrow_key ? mp->row_key[k]
                                       : tb->cols[tb->pk[k]].name;
        xv_t v;
        int found;
        size_t len;
        const char *s;
        cdc_xv_column(c, col, &v, &found);
        if (!found || v.t == XV_MISSING) {
            cdc_err_set(c->err, CDC_EXIT_DATA, CDC_ERR_F_DATA, "%s: mapping "
                        "'%s': the change does not carry primary key column "
                        "'%s' of %s.%s", mp->where, mp->name, col, tb->db,
                        tb->name);
            cdc_err_hint(c->err, "field groups need the primary key in every "
                         "image (it is there unless the image is damaged)");
            cdc_buf_free(&b);
            return NULL;
        }
        if (k)
            cdc_buf_putc(&b, ',');
        if (v.t == XV_NULL)
            cdc_buf_puts(&b, "null");
        else {
            s = cdc_xv_text(&v, c->arena, &len);
            cdc_json_string(&b, s, len);
        }
    }
    cdc_buf_putc(&b, ']');
    r = cdc_arena_memdup(c->arena, b.p, b.len + 1);
    cdc_buf_free(&b);
    return r;
}

/* The group's values over c's row: 1 if a column is absent, -1 err. */
static int group_values(const cdc_map_mapping_t *mp, const cdc_map_gwrite_t *w,
                        xctx_t *c, castres_t *vals)
{
    const cdc_map_group_t *g = &mp->target->groups[w->group];
    for (uint32_t k = 0; k < g->nfields; k++) {
        const cdc_map_assign_t *a = w->assign[k];
        int rc = cdc_map_compute(mp, &mp->target->fields[a->field], a, NULL,
                                 c, &vals[k]);
        if (rc)
            return rc;
    }
    return 0;
}

static int same_values(const castres_t *a, const castres_t *b, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        if (a[k].isnull != b[k].isnull)
            return 0;
        if (!a[k].isnull && (a[k].len != b[k].len ||
                             memcmp(a[k].s, b[k].s, a[k].len)))
            return 0;
    }
    return 1;
}

static char *arena_rank(cdc_arena_t *ar, cdc_mrule_t rule,
                        const cdc_map_source_t *s, int64_t commit_us,
                        const char *pos, const char *ord)
{
    cdc_map_field_t f;
    char *out = cdc_arena_alloc(ar, CDC_MAP_RANK_LEN + 1);
    memset(&f, 0, sizeof(f));
    f.rule = rule;
    cdc_map_make_rank(&f, s, commit_us, pos, ord, NULL, out);
    return out;
}

/* one candidate op: vals NULL for a tombstone */
static void emit(cdc_wide_ops_t *out, const cdc_map_mapping_t *mp,
                 const cdc_map_gwrite_t *w, const char **key,
                 const char *rowid, int64_t commit_us, const char *pos,
                 const char *ord, int snapshot, const castres_t *vals)
{
    const cdc_map_group_t *g = &mp->target->groups[w->group];
    cdc_wide_op_t *op = cdc_map_start_op(out, mp, CDC_WIDE_GROUP, key,
                                         commit_us, pos, ord);
    const char *p = pos;
    char sp[CDC_MAP_POS_LEN + 1];
    int64_t t = commit_us;

    op->group = w->group;
    op->rowid = rowid;
    op->gdeleted = vals == NULL;
    op->snapshot = snapshot;
    if (snapshot) {
        /* below every streamed change; the values' hash as the position,
         * so a re-read of the same row ranks the same */
        uint64_t h = 14695981039346656037ull;
        for (uint32_t k = 0; k < g->nfields; k++) {
            h = (h ^ (unsigned char)(vals[k].isnull ? 0 : 1)) *
                1099511628211ull;
            for (size_t i = 0; !vals[k].isnull && i < vals[k].len; i++)
                h = (h ^ (unsigned char)vals[k].s[i]) * 1099511628211ull;
            h = (h ^ 0x1f) * 1099511628211ull;
        }
        cdc_hex(cdc_hex(sp, 0, 16), h, 16)[0] = '\0';
        p = sp;
        t = INT64_MIN;
    }
    op->vrank = arena_rank(&out->arena, CDC_RULE_LATEST, mp->source, t, p,
                           NULL);
    op->grank = arena_rank(&out->arena, g->rule, mp->source, t, p, ord);
    if (!vals)
        return;
    op->vals = cdc_arena_calloc(&out->arena, sizeof(*op->vals) * g->nfields);
    for (uint32_t k = 0; k < g->nfields; k++) {
        cdc_wide_val_t *v = &op->vals[op->nvals++];
        v->field = g->fields[k];
        v->isnull = vals[k].isnull;
        v->s = vals[k].s;
        v->len = vals[k].len;
        memcpy(v->rank, op->grank, strlen(op->grank) + 1);
    }
}

int cdc_map_group_ops(const cdc_map_mapping_t *mp, const cdc_txn_t *tx,
                      const cdc_change_t *ch, const char *pos, xctx_t *ca,
                      const char **ka, const char *orda, xctx_t *cb,
                      const char **kb, const char *ordb, int cmp_before,
                      cdc_wide_ops_t *out)
{
    const char *ida = NULL, *idb = NULL;
    int snapshot = ch->op == CDC_OP_READ;

    if (ca && !(ida = row_id(mp, ca)))
        return -1;
    if (cb && !(idb = row_id(mp, cb)))
        return -1;
    if (!ca) {
        /* the source row is gone from key kb: its tombstone */
        for (uint32_t i = 0; i < mp->ngw; i++)
            emit(out, mp, &mp->gw[i], kb, idb, tx->commit_us, pos, ordb, 0,
                 NULL);
        return 0;
    }
    /* an update of the primary key: the old row is gone (unless deletes
     * are ignored) */
    if (idb && strcmp(ida, idb) && mp->on_delete != CDC_DEL_IGNORE)
        for (uint32_t i = 0; i < mp->ngw; i++)
            emit(out, mp, &mp->gw[i], kb, idb, tx->commit_us, pos, ordb, 0,
                 NULL);
    for (uint32_t i = 0; i < mp->ngw; i++) {
        const cdc_map_group_t *g = &mp->target->groups[mp->gw[i].group];
        castres_t *va = cdc_arena_calloc(ca->arena,
                                         sizeof(castres_t) * g->nfields);
        int rc = group_values(mp, &mp->gw[i], ca, va);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            cdc_err_set(ca->err, CDC_EXIT_DATA, CDC_ERR_F_DATA, "%s: mapping "
                        "'%s': the change does not carry every column of "
                        "field group '%s'", mp->where, mp->name, g->name);
            cdc_err_hint(ca->err, "field groups need full row images: MySQL "
                         "binlog_row_image=FULL, PostgreSQL REPLICA IDENTITY "
                         "FULL (unchanged TOASTed values are not sent "
                         "otherwise)");
            return -1;
        }
        /* an update that changed neither the group's values nor the row's
         * order value offers nothing: the candidate keeps its rank, as an
         * unchanged field does */
        if (cmp_before && idb && !strcmp(ida, idb) &&
            !strcmp(orda, ordb)) {
            castres_t *vb = cdc_arena_calloc(cb->arena,
                                             sizeof(castres_t) * g->nfields);
            int rcb = group_values(mp, &mp->gw[i], cb, vb);
            if (rcb < 0)
                cdc_err_clear(ca->err); /* the old image may not cast */
            else if (rcb == 0 && same_values(va, vb, g->nfields))
                continue;
        }
        emit(out, mp, &mp->gw[i], ka, ida, tx->commit_us, pos, orda,
             snapshot, va);
    }
    return 0;
}

/* ---- the candidates of one row (the in-memory model) ---------------------- */

typedef struct gcand {
    uint32_t group;
    char *mapping;
    char *rowid;
    char vrank[CDC_MAP_RANK_LEN + 1];
    char grank[CDC_MAP_RANK_LEN + 1];
    int deleted;
    char src[CDC_MAP_NAME_MAX + 1];
    int64_t t;
    char **vals;   /* NULL entry: SQL NULL */
    size_t *lens;
    uint32_t nvals;
} gcand_t;

struct cdc_gcands {
    gcand_t *c;
    size_t n, cap;
};

static void cand_clear_vals(gcand_t *c)
{
    for (uint32_t k = 0; k < c->nvals; k++)
        free(c->vals[k]);
    free(c->vals);
    free(c->lens);
    c->vals = NULL;
    c->lens = NULL;
    c->nvals = 0;
}

void cdc_gcands_offer(cdc_gcands_t **gcp, const cdc_wide_op_t *op)
{
    cdc_gcands_t *gc = *gcp;
    const char *mname = op->mapping->name;
    gcand_t *c = NULL;

    if (!gc)
        gc = *gcp = cdc_xcalloc(1, sizeof(*gc));
    for (size_t i = 0; i < gc->n && !c; i++)
        if (gc->c[i].group == op->group && !strcmp(gc->c[i].mapping, mname) &&
            !strcmp(gc->c[i].rowid, op->rowid))
            c = &gc->c[i];
    if (!c) {
        if (gc->n == gc->cap) {
            gc->cap = gc->cap ? gc->cap * 2 : 4;
            gc->c = cdc_xrealloc(gc->c, gc->cap * sizeof(*gc->c));
        }
        c = &gc->c[gc->n++];
        memset(c, 0, sizeof(*c));
        c->group = op->group;
        c->mapping = cdc_xstrdup(mname);
        c->rowid = cdc_xstrdup(op->rowid);
    } else if (strcmp(op->vrank, c->vrank) <= 0)
        return; /* an older (or the same) change of this source row */
    snprintf(c->vrank, sizeof(c->vrank), "%s", op->vrank);
    snprintf(c->grank, sizeof(c->grank), "%s", op->grank);
    snprintf(c->src, sizeof(c->src), "%s", op->source);
    c->t = op->commit_us;
    c->deleted = op->gdeleted;
    cand_clear_vals(c);
    if (op->gdeleted)
        return;
    c->vals = cdc_xcalloc(op->nvals + 1, sizeof(char *));
    c->lens = cdc_xcalloc(op->nvals + 1, sizeof(size_t));
    c->nvals = op->nvals;
    for (uint32_t k = 0; k < op->nvals; k++) {
        if (!op->vals[k].isnull)
            c->vals[k] = cdc_xstrndup(op->vals[k].s, op->vals[k].len);
        c->lens[k] = op->vals[k].len;
    }
}

/* the winner's order: grank, then mapping name, then rowid (C order) */
static int cand_better(const gcand_t *a, const gcand_t *b)
{
    int c = strcmp(a->grank, b->grank);
    if (!c)
        c = strcmp(a->mapping, b->mapping);
    if (!c)
        c = strcmp(a->rowid, b->rowid);
    return c > 0;
}

int cdc_gcands_winner(const cdc_gcands_t *gc, uint32_t g, const char ***vals,
                      const size_t **lens, const char **src, int64_t *t,
                      const char **grank)
{
    const gcand_t *best = NULL;
    for (size_t i = 0; gc && i < gc->n; i++) {
        const gcand_t *c = &gc->c[i];
        if (c->group != g || c->deleted)
            continue;
        if (!best || cand_better(c, best))
            best = c;
    }
    if (!best)
        return 0;
    *vals = (const char **)best->vals;
    *lens = best->lens;
    *src = best->src;
    *t = best->t;
    *grank = best->grank;
    return 1;
}

void cdc_gcands_free(cdc_gcands_t *gc)
{
    if (!gc)
        return;
    for (size_t i = 0; i < gc->n; i++) {
        cand_clear_vals(&gc->c[i]);
        free(gc->c[i].mapping);
        free(gc->c[i].rowid);
    }
    free(gc->c);
    free(gc);
}
