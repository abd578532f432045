/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reverse.c - two-way sync: ranks that travel with the values
 * (mappings/reverse.h, docs/TWO-WAY.md).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "cdc/jsontree.h"
#include "cdc/log.h"
#include "mappings/map_int.h"
#include "mappings/reverse.h"

size_t cdc_twoway_rank_len(cdc_mrule_t r)
{
    if (r == CDC_RULE_ORDERED) /* no trigger stamps these: never taken */
        return (size_t)-1;
    return r == CDC_RULE_WEIGHTED ? 16 + 16 + 8 + 8 + CDC_MAP_POS_LEN
                                  : 16 + 8 + 8 + CDC_MAP_POS_LEN;
}

/* the same parts, in the same order, as the engine's ranks (map.h) */
void cdc_twoway_rank(cdc_mrule_t r, int priority, double weight,
                     const char *source, int64_t t_us, char *out)
{
    char T[17], P[9], W[17], S[9], pos[CDC_MAP_POS_LEN + 1];
    uint32_t h = 2166136261u;
    double w = weight * 1e6;

    for (const char *c = source; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    snprintf(T, sizeof(T), "%016" PRIx64, (uint64_t)t_us ^ ((uint64_t)1 << 63));
    snprintf(P, sizeof(P), "%08" PRIx32, (uint32_t)priority ^ 0x80000000u);
    snprintf(W, sizeof(W), "%016" PRIx64, (uint64_t)llround(w < 0 ? 0 : w));
    snprintf(S, sizeof(S), "%08" PRIx32, h);
    memset(pos, '0', CDC_MAP_POS_LEN);
    pos[CDC_MAP_POS_LEN] = '\0';
    if (r == CDC_RULE_PRIORITY)
        snprintf(out, CDC_MAP_RANK_LEN + 1, "%s%s%s%s", P, T, S, pos);
    else if (r == CDC_RULE_WEIGHTED)
        snprintf(out, CDC_MAP_RANK_LEN + 1, "%s%s%s%s%s", W, T, P, S, pos);
    else
        snprintf(out, CDC_MAP_RANK_LEN + 1, "%s%s%s%s", T, P, S, pos);
}

static const cdc_map_assign_t *assign_of(const cdc_map_mapping_t *mp,
                                         uint32_t field)
{
    for (uint32_t i = 0; mp && i < mp->nfields; i++)
        if (mp->fields[i].field == field)
            return &mp->fields[i];
    return NULL;
}

/* the parsed _provenance of row (NULL when it has none) */
static yajl_val prov_of(const cdc_table_t *t, const cdc_value_t *row)
{
    const cdc_value_t *pv = NULL;
    char ebuf[128];
    yajl_val root;

    if (!row)
        return NULL;
    for (uint32_t c = 0; c < t->ncols; c++)
        if (!strcmp(t->cols[c].name, "_provenance")) {
            pv = &row[c];
            break;
        }
    if (!pv || (pv->kind != CDC_V_STRING && pv->kind != CDC_V_JSON) || !pv->s)
        return NULL;
    {
        char *text = cdc_xstrndup(pv->s, pv->len);
        root = yajl_tree_parse(text, ebuf, sizeof(ebuf));
        free(text);
    }
    return root;
}

/* Take the ranks of the operations of kind `kind` in ops[from ..) from
 * the provenance entries in root (keyed by the column each value is read
 * from); deletes take only deletion entries ("d"). */
static uint32_t restamp_from(yajl_val root, cdc_wide_kind_t kind,
                             cdc_wide_ops_t *ops, uint32_t from)
{
    uint32_t n = 0;

    for (uint32_t o = from; o < ops->n; o++) {
        cdc_wide_op_t *op = &ops->ops[o];
        int64_t t_all = -1;
        int agree = 1;
        if (op->kind != kind)
            continue;
        for (uint32_t i = 0; i < op->nvals; i++) {
            cdc_wide_val_t *v = &op->vals[i];
            const cdc_map_field_t *f = &op->target->fields[v->field];
            const cdc_map_assign_t *a = assign_of(op->mapping, v->field);
            const char *col = a && a->expr ? cdc_expr_column(a->expr) : NULL;
            yajl_val ent, r, tv;
            if (!col || !(ent = cdc_json_get(root, col)))
                continue;
            if (kind == CDC_WIDE_DELETE && !cdc_json_get(ent, "d"))
                continue;
            r = cdc_json_get(ent, "r");
            tv = cdc_json_get(ent, "t");
            if (!r || !YAJL_IS_STRING(r) ||
                strlen(r->u.string) != cdc_twoway_rank_len(f->rule)) {
                CDC_DEBUG("twoway", "%s: stamp of %s has no rank of rule "
                          "layout; commit-time rank kept", f->name, col);
                continue;
            }
            memcpy(v->rank, r->u.string, strlen(r->u.string) + 1);
            n++;
            if (tv) {
                /* a number, or digits in a string (MariaDB's JSON_OBJECT
                 * of a BIGINT variable) */
                int64_t tt = -1;
                if (YAJL_IS_INTEGER(tv))
                    tt = tv->u.number.i;
                else if (YAJL_IS_STRING(tv) && tv->u.string[0] &&
                         strspn(tv->u.string, "0123456789") ==
                             strlen(tv->u.string) && strlen(tv->u.string) < 19)
                    tt = strtoll(tv->u.string, NULL, 10);
                if (tt >= 0 && t_all < 0)
                    t_all = tt;
                else if (tt >= 0 && t_all != tt)
                    agree = 0;
            }
        }
        if (agree && t_all >= 0)
            op->commit_us = t_all;
    }
    return n;
}

uint32_t cdc_twoway_restamp(const cdc_change_t *ch, cdc_wide_ops_t *ops,
                            uint32_t from)
{
    yajl_val root;
    uint32_t n;

    if (!ch->after || from >= ops->n || !(root = prov_of(ch->tbl, ch->after)))
        return 0;
    n = restamp_from(root, CDC_WIDE_UPSERT, ops, from);
    yajl_tree_free(root);
    return n;
}

/* the same value (kind and bytes); numbers of different kinds compare by
 * their value */
static int same_value(const cdc_value_t *a, const cdc_value_t *b)
{
    int ai = a->kind == CDC_V_INT || a->kind == CDC_V_UINT;
    int bi = b->kind == CDC_V_INT || b->kind == CDC_V_UINT;
    if (ai && bi)
        return a->u.i == b->u.i &&
               (a->kind == b->kind || a->u.i >= 0);
    if (a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case CDC_V_NULL:
        return 1;
    case CDC_V_BOOL:
        return !a->u.b == !b->u.b;
    case CDC_V_FLOAT:
    case CDC_V_DOUBLE:
        return a->u.d == b->u.d;
    default:
        return a->s && b->s && a->len == b->len && !memcmp(a->s, b->s, a->len);
    }
}

/* Does the tombstone row tr (a change of <table>_tombstones) have the
 * key of the deleted row before (of table t)?  Every column of the
 * tombstones table but _provenance is a key column of the same name. */
static int tomb_matches(const cdc_change_t *tc, const cdc_table_t *t,
                        const cdc_value_t *before)
{
    int nkey = 0;
    for (uint32_t c = 0; c < tc->tbl->ncols; c++) {
        const char *name = tc->tbl->cols[c].name;
        int found = 0;
        if (!strcmp(name, "_provenance"))
            continue;
        for (uint32_t d = 0; d < t->ncols && !found; d++)
            if (!strcmp(t->cols[d].name, name)) {
                if (before[d].kind == CDC_V_ABSENT ||
                    before[d].kind == CDC_V_UNCHANGED ||
                    !same_value(&before[d], &tc->after[c]))
                    return 0;
                found = 1;
            }
        if (!found)
            return 0;
        nkey++;
    }
    return nkey > 0;
}

static int is_tombstones_table(const cdc_table_t *t)
{
    size_t n = strlen(t->name), k = sizeof("_tombstones") - 1;
    return n > k && !strcmp(t->name + n - k, "_tombstones");
}

int cdc_twoway_txn_has_tombstones(const cdc_txn_t *tx)
{
    for (uint32_t j = 0; j < tx->nchanges; j++)
        if (is_tombstones_table(tx->changes[j].tbl))
            return 1;
    return 0;
}

uint32_t cdc_twoway_restamp_delete(const cdc_txn_t *tx, uint32_t idx,
                                   cdc_wide_ops_t *ops, uint32_t from,
                                   uint32_t *cursor)
{
    const cdc_change_t *ch = &tx->changes[idx];
    const cdc_change_t *tomb = NULL;
    char tname[256];
    yajl_val root;
    uint32_t n, start = *cursor < tx->nchanges ? *cursor : 0;
    int any = 0;

    if (ch->op != CDC_OP_DELETE || !ch->before || from >= ops->n)
        return 0;
    for (uint32_t o = from; o < ops->n && !any; o++)
        any = ops->ops[o].kind == CDC_WIDE_DELETE;
    if (!any)
        return 0;
    snprintf(tname, sizeof(tname), "%s_tombstones", ch->tbl->name);
    /* the trigger's tombstone write for this row, in the same transaction:
     * the first one from the cursor on (wrapping) */
    for (uint32_t k = 0; k < tx->nchanges && !tomb; k++) {
        uint32_t j = (start + k) % tx->nchanges;
        const cdc_change_t *c = &tx->changes[j];
        if ((c->op == CDC_OP_CREATE || c->op == CDC_OP_UPDATE) && c->after &&
            !strcmp(c->tbl->name, tname) && !strcmp(c->tbl->db, ch->tbl->db) &&
            tomb_matches(c, ch->tbl, ch->before)) {
            tomb = c;
            *cursor = j + 1;
        }
    }
    if (!tomb || !(root = prov_of(tomb->tbl, tomb->after)))
        return 0;
    n = restamp_from(root, CDC_WIDE_DELETE, ops, from);
    yajl_tree_free(root);
    return n;
}

/* ---- reversing a mapping ------------------------------------------------- */

static void yaml_str(cdc_buf_t *b, const char *s)
{
    /* always single-quoted: no YAML type guessing, '' escapes ' */
    cdc_buf_quoted(b, s, '\'');
}

static const cdc_map_field_t *field_named(const cdc_map_target_t *t,
                                          const char *name, uint32_t *idx)
{
    for (uint32_t i = 0; i < t->nfields; i++)
        if (!strcmp(t->fields[i].name, name)) {
            if (idx)
                *idx = i;
            return &t->fields[i];
        }
    return NULL;
}

static int owns(const cdc_map_field_t *f, const char *src)
{
    for (int i = 0; i < f->nowners; i++)
        if (!strcmp(f->owners[i], src))
            return 1;
    return 0;
}

int cdc_map_reverse_yaml(const cdc_map_t *m, const char *fwd,
                         const char *rsource, const char *rtarget,
                         cdc_buf_t *out, cdc_err_t *err)
{
    const cdc_map_mapping_t *mp = NULL;
    const cdc_map_target_t *rt = NULL;
    cdc_buf_t skipped = CDC_BUF_INIT;
    int n = 0, have_src = 0;

    for (uint32_t i = 0; i < m->nmappings; i++)
        if (m->mappings[i].name && !strcmp(m->mappings[i].name, fwd))
            mp = &m->mappings[i];
    for (uint32_t i = 0; i < m->ntargets; i++)
        if (!strcmp(m->targets[i].name, rtarget))
            rt = &m->targets[i];
    for (uint32_t i = 0; i < m->nsources; i++)
        have_src |= !strcmp(m->sources[i].id, rsource);
    if (!mp || !rt || !have_src) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "reverse: unknown %s '%s'",
                    !mp ? "mapping" : !rt ? "target" : "source",
                    !mp ? fwd : !rt ? rtarget : rsource);
        cdc_err_hint(err, "name the forward mapping (its name:), the target "
                          "declared over its source table, and a source id "
                          "declared under sources:");
        return -1;
    }
    cdc_buf_printf(out, "  - name: %s_reverse\n    source: %s\n    table: ",
                   mp->name, rsource);
    {
        const cdc_map_target_t *wt = mp->target;
        cdc_buf_t t = CDC_BUF_INIT;
        cdc_buf_printf(&t, "%s%s%s", *wt->schema ? wt->schema : "",
                       *wt->schema ? "." : "", wt->table);
        yaml_str(out, t.p);
        cdc_buf_free(&t);
    }
    cdc_buf_puts(out, "\n    target: ");
    yaml_str(out, rt->name);
    /* a row delete travels back as the forward mapping declares it
     * (two-way deletes: delete in both directions, docs/TWO-WAY.md) */
    cdc_buf_printf(out, "\n    on_delete: %s\n    key: {",
                   mp->on_delete == CDC_DEL_ROW ? "delete"
                   : mp->on_delete == CDC_DEL_IGNORE ? "ignore" : "clear");
    for (uint32_t k = 0; k < mp->nkeys; k++) {
        const cdc_map_assign_t *a = &mp->keys[k];
        const char *col = a->expr ? cdc_expr_column(a->expr) : NULL;
        if (!col || !field_named(rt, col, NULL)) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "reverse of %s: key field "
                        "'%s' is not read from a column of target '%s'",
                        mp->name, mp->target->fields[a->field].name, rt->name);
            cdc_buf_free(&skipped);
            return -1;
        }
        cdc_buf_printf(out, "%s", k ? ", " : "");
        yaml_str(out, col);
        cdc_buf_puts(out, ": ");
        yaml_str(out, mp->target->fields[a->field].name);
    }
    cdc_buf_puts(out, "}\n    fields:\n");
    for (uint32_t i = 0; i < mp->nfields; i++) {
        const cdc_map_assign_t *a = &mp->fields[i];
        const char *wide = mp->target->fields[a->field].name;
        const char *col = a->expr ? cdc_expr_column(a->expr) : NULL;
        const cdc_map_field_t *bf = col ? field_named(rt, col, NULL) : NULL;
        const char *why = NULL;
        int inj = 1;

        for (int x = 0; x < a->nmap && inj; x++)
            for (int y = x + 1; y < a->nmap && inj; y++)
                inj = !(a->map_to[x] && a->map_to[y] &&
                        !strcmp(a->map_to[x], a->map_to[y])) &&
                      !(!a->map_to[x] && !a->map_to[y]);
        for (int x = 0; x < a->nmap && inj; x++)
            inj = a->map_to[x] != NULL;
        if (!col)
            why = "computed by an expression";
        else if (!bf)
            why = "no such field in the reverse target";
        else if (!owns(bf, rsource))
            why = "not owned by the reverse source";
        else if (a->has_else || a->def)
            why = "else:/default: cannot be inverted";
        else if (!inj)
            why = "the value map is not one-to-one";
        if (why) {
            cdc_buf_printf(&skipped, "    # not reversed: %s <- %s (%s)\n",
                           wide, a->text ? a->text : "?", why);
            continue;
        }
        cdc_buf_puts(out, "      ");
        yaml_str(out, col);
        cdc_buf_puts(out, ": {from: ");
        yaml_str(out, wide);
        if (a->nmap) {
            cdc_buf_puts(out, ", map: {");
            for (int x = 0; x < a->nmap; x++) {
                cdc_buf_puts(out, x ? ", " : "");
                yaml_str(out, a->map_to[x]);
                cdc_buf_puts(out, ": ");
                yaml_str(out, a->map_from[x]);
            }
            cdc_buf_puts(out, "}");
        }
        cdc_buf_puts(out, "}\n");
        n++;
    }
    if (skipped.len)
        cdc_buf_put(out, skipped.p, skipped.len);
    cdc_buf_free(&skipped);
    return n;
}
