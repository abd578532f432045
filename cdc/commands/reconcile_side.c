/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile_side.c - the side tables (<T>_candidates, <T>_contrib,
 * <T>_votes): the recomputed candidates, contributions and per-source
 * entries compared with them through shadow tables, and repaired.
 */
#include "cdc/commands/reconcile_int.h"

/* "k1, k2" of alias a, or of the first non-NULL of a and c */
static void key_coalesce(rc_t *rc, pgx_t *x, cdc_buf_t *b, const char *a,
                         const char *c)
{
    for (uint32_t k = 0; k < rc->t->nkey; k++) {
        const char *n = rc->t->fields[rc->t->key[k]].name;
        cdc_buf_printf(b, "%sCOALESCE(%s.", k ? ", " : "", a);
        rc_ident(x, b, n);
        cdc_buf_printf(b, ", %s.", c);
        rc_ident(x, b, n);
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
            rc_lit(x, b, t->groups[g].name);
        }
    else
        for (uint32_t f = 0; f < t->nfields; f++)
            if (t->fields[f].per_source) {
                cdc_buf_puts(b, n++ ? ", " : "");
                rc_lit(x, b, t->fields[f].name);
            }
    if (!n)
        cdc_buf_puts(b, "NULL");
}

/* The side tables of the target, each with its shadow table: the
 * candidates of the field groups (rc_cand), the contributions of the
 * aggregates (rc_ctb), the per-source entries (rc_vts). */
enum { RC_CAND, RC_CTB, RC_VTS, RC_NSIDE };

static int side_used(const cdc_map_target_t *t, int which)
{
    return which == RC_CAND  ? t->ngroups != 0
           : which == RC_CTB ? t->aggregates != 0
                             : cdc_pgv_target(t) != 0;
}

/* The side table's name (name) and its schema-qualified form (qn). */
static void side_table(rc_t *rc, pgx_t *x, int which, cdc_buf_t *qn,
                       char *name, size_t n)
{
    const cdc_map_target_t *t = rc->t;
    if (which == RC_CAND)
        cdc_map_candidates_table(t, name, n);
    else if (which == RC_CTB)
        cdc_map_contrib_table(t, name, n);
    else
        cdc_pgv_table(t, name, n);
    cdc_buf_reset(qn);
    rc_side_name(rc, x, qn, name);
}

/* The shadow tables, empty, with the side tables' columns. */
static int side_create(rc_t *rc, pgx_t *x, int which, const char *keys,
                       cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t *b = &x->sql, qn = CDC_BUF_INIT, ac = CDC_BUF_INIT;
    char name[256];
    int r;

    side_table(rc, x, which, &qn, name, sizeof(name));
    cdc_buf_reset(b);
    if (which == RC_CAND)
        cdc_buf_printf(b, "CREATE TEMP TABLE rc_cand ON COMMIT DROP AS "
                          "SELECT %s, _group, _mapping, _row_id, _vrank, "
                          "_grank, _source, _commit_us, _values FROM %s "
                          "WITH NO DATA",
                       keys, qn.p);
    else if (which == RC_CTB) {
        for (uint32_t f = 0; f < t->nfields; f++)
            if (t->fields[f].agg) {
                cdc_buf_puts(&ac, ", ");
                rc_ident(x, &ac, t->fields[f].name);
            }
        cdc_buf_printf(b, "CREATE TEMP TABLE rc_ctb ON COMMIT DROP AS "
                          "SELECT %s, _mapping, _row, _rank%s FROM %s WITH "
                          "NO DATA",
                       keys, ac.p, qn.p);
    } else
        cdc_buf_printf(b, "CREATE TEMP TABLE rc_vts ON COMMIT DROP AS "
                          "SELECT %s, _field, _source, _value, _rank, "
                          "_score, _t FROM %s WITH NO DATA",
                       keys, qn.p);
    r = rc_pg_run(x, b->p, err);
    cdc_buf_free(&ac);
    cdc_buf_free(&qn);
    return r;
}

/* COPY lines of the recomputed candidates of row */
static void cand_lines(rc_t *rc, cdc_buf_t *d, rc_row_t *row)
{
    const cdc_map_target_t *t = rc->t;
    for (size_t k = 0; k < row->ngc; k++) {
        const rc_gcand_t *g = &row->gc[k];
        char num[24];
        cdc_buf_t v = CDC_BUF_INIT;
        rc_put_key(rc, d, row);
        rc_put_text(d, t->groups[g->group].name, 0);
        rc_put_text(d, g->mp->name, 0);
        rc_put_text(d, g->rowid, 0);
        rc_put_text(d, g->vrank, 0);
        rc_put_text(d, g->grank, 0);
        rc_put_text(d, g->src, 0);
        snprintf(num, sizeof(num), "%" PRId64, g->t);
        rc_put_text(d, num, 0);
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
        rc_put_text(d, v.p, 1);
        cdc_buf_free(&v);
    }
}

/* COPY lines of the recomputed contributions of row */
static void ctb_lines(rc_t *rc, cdc_buf_t *d, rc_row_t *row)
{
    const cdc_map_target_t *t = rc->t;
    for (size_t k = 0; k < row->nct; k++) {
        const rc_contrib_t *c = &row->ct[k];
        uint32_t left = 0, nagg = 0;
        rc_put_key(rc, d, row);
        rc_put_text(d, c->mp->name, 0);
        rc_put_text(d, c->rowid, 0);
        for (uint32_t f = 0; f < t->nfields; f++)
            nagg += t->fields[f].agg != 0;
        rc_put_text(d, c->crank, !nagg);
        for (uint32_t f = 0; f < t->nfields; f++) {
            const char *v = NULL;
            if (!t->fields[f].agg)
                continue;
            for (uint32_t j = 0; j < c->nvals; j++)
                if (c->field[j] == f)
                    v = c->vals[j];
            rc_put_text(d, v, ++left == nagg);
        }
    }
}

/* COPY lines of the recomputed per-source entries of row */
static void vts_lines(rc_t *rc, cdc_buf_t *d, rc_row_t *row)
{
    const cdc_map_target_t *t = rc->t;
    for (uint32_t f = 0; f < t->nfields; f++) {
        if (!t->fields[f].per_source)
            continue;
        for (uint32_t s = 0; s < rc->map->nsources; s++) {
            const rc_cell_t *c = rc_cell(row, (int)s, f);
            char num[24];
            if (!c || !c->w.set)
                continue;
            rc_put_key(rc, d, row);
            rc_put_text(d, t->fields[f].name, 0);
            rc_put_text(d, rc->map->sources[s].id, 0);
            if (c->w.isnull)
                rc_put_text(d, NULL, 0);
            else {
                rc_copy_val(d, c->w.val, c->w.len);
                cdc_buf_putc(d, '\t');
            }
            rc_put_text(d, c->w.rank, 0);
            rc_put_text(d, c->w.score, 0);
            snprintf(num, sizeof(num), "%" PRId64, c->w.t);
            rc_put_text(d, num, 1);
        }
    }
}

/* The model's rows of one side table into its shadow table, a piece at
 * a time. */
static int side_fill(rc_t *rc, pgx_t *x, int which, cdc_err_t *err)
{
    static const char *const copy[RC_NSIDE] = {
        "COPY pg_temp.rc_cand FROM STDIN", "COPY pg_temp.rc_ctb FROM STDIN",
        "COPY pg_temp.rc_vts FROM STDIN"};
    cdc_buf_t d = CDC_BUF_INIT;
    int r = -1;

    if (rc_copy_begin(x, copy[which], err))
        return -1;
    for (size_t i = 0; i < rc->n; i++) {
        if (which == RC_CAND)
            cand_lines(rc, &d, rc->rows[i]);
        else if (which == RC_CTB)
            ctb_lines(rc, &d, rc->rows[i]);
        else
            vts_lines(rc, &d, rc->rows[i]);
        if (d.len >= (1u << 20) && rc_copy_put(x, &d, err))
            goto out;
    }
    r = rc_copy_put(x, &d, err) || rc_copy_end(x, err) ? -1 : 0;
out:
    cdc_buf_free(&d);
    return r;
}

/* the same source row for the same key and group: values compared in the
 * fields' types, an ordered group's order value too (the head of
 * _grank) */
static int cand_compare(rc_t *rc, pgx_t *x, const char *qt, const char *keys,
                        cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t *b = &x->sql, qn = CDC_BUF_INIT;
    char name[256];
    int r = -1;

    side_table(rc, x, RC_CAND, &qn, name, sizeof(name));
    cdc_buf_reset(b);
    cdc_buf_printf(b, "INSERT INTO pg_temp.rc_diff (%s, kind, field, "
                      "sval, nval) SELECT ", keys);
    key_coalesce(rc, x, b, "s", "c");
    cdc_buf_puts(b, ", 'side', concat_ws(' ', ");
    rc_lit(x, b, name);
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
    rc_key_eq(rc, x, b, "s", "c");
    cdc_buf_puts(b, " AND s._group = c._group AND s._mapping = c._mapping "
                    "AND s._row_id = c._row_id WHERE (s._group IS NULL "
                    "AND NOT c._deleted) OR c._group IS NULL OR "
                    "(s._group IS NOT NULL AND c._deleted)");
    for (uint32_t g = 0; g < t->ngroups; g++) {
        const cdc_map_group_t *gr = &t->groups[g];
        cdc_buf_puts(b, " OR (s._group = ");
        rc_lit(x, b, gr->name);
        cdc_buf_puts(b, " AND (false");
        for (uint32_t j = 0; j < gr->nfields; j++) {
            char *tp = rc_col_type(x, qt, t->fields[gr->fields[j]].name, err);
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
    r = rc_pg_run(x, b->p, err);
out:
    cdc_buf_free(&qn);
    return r;
}

/* a contribution: the same source row, its key and its values */
static int ctb_compare(rc_t *rc, pgx_t *x, const char *keys, cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t *b = &x->sql, qn = CDC_BUF_INIT;
    char name[256];
    int dist = 0, r;

    side_table(rc, x, RC_CTB, &qn, name, sizeof(name));
    cdc_buf_reset(b);
    cdc_buf_printf(b, "INSERT INTO pg_temp.rc_diff (%s, kind, field, "
                      "sval, nval) SELECT ", keys);
    key_coalesce(rc, x, b, "s", "c");
    cdc_buf_puts(b, ", 'side', concat_ws(' ', ");
    rc_lit(x, b, name);
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
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_puts(b, dist++ ? " OR s." : " OR (s._row IS NOT NULL AND "
                                            "(s.");
        rc_ident(x, b, t->fields[t->key[k]].name);
        cdc_buf_puts(b, " IS DISTINCT FROM c.");
        rc_ident(x, b, t->fields[t->key[k]].name);
    }
    for (uint32_t f = 0; f < t->nfields; f++) {
        if (!t->fields[f].agg)
            continue;
        cdc_buf_puts(b, " OR s.");
        rc_ident(x, b, t->fields[f].name);
        cdc_buf_puts(b, " IS DISTINCT FROM c.");
        rc_ident(x, b, t->fields[f].name);
    }
    cdc_buf_puts(b, "))");
    r = rc_pg_run(x, b->p, err);
    cdc_buf_free(&qn);
    return r;
}

/* a source's current value and score; a NULL entry is no vote, like no
 * entry (a gone source row's clear) */
static int vts_compare(rc_t *rc, pgx_t *x, const char *keys, cdc_err_t *err)
{
    cdc_buf_t *b = &x->sql, qn = CDC_BUF_INIT;
    char name[256];
    int r;

    side_table(rc, x, RC_VTS, &qn, name, sizeof(name));
    cdc_buf_reset(b);
    cdc_buf_printf(b, "INSERT INTO pg_temp.rc_diff (%s, kind, field, "
                      "sval, nval) SELECT ", keys);
    key_coalesce(rc, x, b, "s", "c");
    cdc_buf_puts(b, ", 'side', concat_ws(' ', ");
    rc_lit(x, b, name);
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
    rc_key_eq(rc, x, b, "s", "c");
    cdc_buf_puts(b, " AND s._field = c._field AND s._source = c._source "
                    "WHERE CASE WHEN s._field IS NULL THEN c._value IS "
                    "NOT NULL WHEN c._field IS NULL THEN s._value IS NOT "
                    "NULL ELSE c._value IS DISTINCT FROM s._value OR "
                    "(s._value IS NOT NULL AND c._score IS DISTINCT FROM "
                    "s._score) END");
    r = rc_pg_run(x, b->p, err);
    cdc_buf_free(&qn);
    return r;
}

/* The recomputed candidates (rc_cand), contributions (rc_ctb) and
 * per-source entries (rc_vts), each compared with the side table the
 * sink keeps: a row the sources make that is missing or marked deleted,
 * a live row no source row makes (a lost delete), a row whose values
 * differ.  Differences go to rc_diff as kind 'side'. */
int rc_side_compare(rc_t *rc, pgx_t *x, const char *qt, const char *keys,
                    cdc_err_t *err)
{
    for (int w = 0; w < RC_NSIDE; w++) {
        if (!side_used(rc->t, w))
            continue;
        if (w == RC_CAND ? cand_compare(rc, x, qt, keys, err)
            : w == RC_CTB ? ctb_compare(rc, x, keys, err)
                          : vts_compare(rc, x, keys, err))
            return -1;
    }
    return 0;
}

/* The shadow tables of the side tables the target has, empty. */
int rc_side_create(rc_t *rc, pgx_t *x, const char *keys, cdc_err_t *err)
{
    for (int w = 0; w < RC_NSIDE; w++)
        if (side_used(rc->t, w) && side_create(rc, x, w, keys, err))
            return -1;
    return 0;
}

/* This pass's candidates, contributions and entries into them. */
int rc_side_fill(rc_t *rc, pgx_t *x, cdc_err_t *err)
{
    for (int w = 0; w < RC_NSIDE; w++)
        if (side_used(rc->t, w) && side_fill(rc, x, w, err))
            return -1;
    return 0;
}

static void keys_differ(rc_t *rc, pgx_t *x, cdc_buf_t *b, const char *a,
                        const char *c)
{
    for (uint32_t k = 0; k < rc->t->nkey; k++) {
        cdc_buf_printf(b, "%s%s.", k ? " OR " : "(", a);
        rc_ident(x, b, rc->t->fields[rc->t->key[k]].name);
        cdc_buf_printf(b, " IS DISTINCT FROM %s.", c);
        rc_ident(x, b, rc->t->fields[rc->t->key[k]].name);
    }
    cdc_buf_putc(b, ')');
}

/* The time of a deletion the repair makes (rc_side_repair): the start of
 * its transaction (before the sources' snapshots were taken) in whole
 * seconds (a MySQL binlog's commit times are whole seconds), in
 * microseconds; and as the head of a contribution's rank (map_agg.c: the
 * commit time with the sign bit flipped, 16 hex digits), with the lowest
 * position. */
#define RC_DEL_US "(extract(epoch FROM date_trunc('second', now())) * " \
                  "1000000)::bigint"
#define RC_DEL_RANK "('8' || lpad(to_hex(" RC_DEL_US "), 15, '0') || " \
                    "repeat('0', 32)) COLLATE \"C\""

/* The candidates: see rc_side_repair */
static int cand_repair(rc_t *rc, pgx_t *x, const char *keys, const char *kc,
                       cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t *b = &x->sql, qn = CDC_BUF_INIT;
    char name[256];
    int r = -1;

    int nord = 0;
    cdc_map_candidates_table(t, name, sizeof(name));
    rc_side_name(rc, x, &qn, name);
    cdc_buf_reset(b);
    cdc_buf_printf(b, "UPDATE %s c SET _deleted = true, _commit_us = "
                      "greatest(c._commit_us, " RC_DEL_US ") WHERE NOT "
                      "c._deleted AND c._group IN (", qn.p);
    name_list(rc, x, b, 1);
    cdc_buf_puts(b, ") AND NOT EXISTS (SELECT 1 FROM pg_temp.rc_cand s "
                    "WHERE ");
    rc_key_eq(rc, x, b, "s", "c");
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
            rc_lit(x, b, t->groups[g].name);
            nord++;
        }
    cdc_buf_puts(b, ") THEN left(s._grank, 16) || substr(c._grank, 17) "
                    "ELSE c._grank END FROM pg_temp.rc_cand s WHERE ");
    rc_key_eq(rc, x, b, "s", "c");
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
                   qn.p, keys, kc, qn.p);
    rc_key_eq(rc, x, b, "s", "c");
    cdc_buf_puts(b, " AND s._group = c._group AND s._mapping = c._mapping "
                    "AND s._row_id = c._row_id)");
    if (rc_pg_run(x, b->p, err))
        goto out;
    r = 0;
out:
    cdc_buf_free(&qn);
    return r;
}

/* The contributions: see rc_side_repair */
static int ctb_repair(rc_t *rc, pgx_t *x, const char *keys, const char *kc,
                      cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t *b = &x->sql, qn = CDC_BUF_INIT;
    char name[256];
    int r = -1;

    cdc_buf_t ac = CDC_BUF_INIT, set = CDC_BUF_INIT, sc = CDC_BUF_INIT;
    int rr;
    cdc_buf_reset(&qn);
    cdc_map_contrib_table(t, name, sizeof(name));
    rc_side_name(rc, x, &qn, name);
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_puts(&set, ", ");
        rc_ident(x, &set, t->fields[t->key[k]].name);
        cdc_buf_puts(&set, " = s.");
        rc_ident(x, &set, t->fields[t->key[k]].name);
    }
    for (uint32_t f = 0; f < t->nfields; f++) {
        if (!t->fields[f].agg)
            continue;
        cdc_buf_puts(&ac, ", ");
        rc_ident(x, &ac, t->fields[f].name);
        cdc_buf_puts(&sc, ", s.");
        rc_ident(x, &sc, t->fields[f].name);
        cdc_buf_puts(&set, ", ");
        rc_ident(x, &set, t->fields[f].name);
        cdc_buf_puts(&set, " = s.");
        rc_ident(x, &set, t->fields[f].name);
    }
    /* the old key of a contribution that moved is recomputed too */
    cdc_buf_reset(b);
    cdc_buf_printf(b, "INSERT INTO pg_temp.rc_touch SELECT DISTINCT ");
    rc_key_cols(rc, x, b, "c");
    cdc_buf_printf(b, " FROM %s c JOIN pg_temp.rc_ctb s ON s._mapping = "
                      "c._mapping AND s._row = c._row WHERE NOT "
                      "c._deleted AND ", qn.p);
    keys_differ(rc, x, b, "s", "c");
    cdc_buf_printf(b, "; UPDATE %s c SET _deleted = true, _rank = "
                      "greatest(c._rank, " RC_DEL_RANK ") WHERE NOT "
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
        rc_ident(x, b, t->fields[f].name);
        cdc_buf_puts(b, " IS DISTINCT FROM c.");
        rc_ident(x, b, t->fields[f].name);
    }
    cdc_buf_printf(b, "); INSERT INTO %s (%s, _mapping, _row, _rank, "
                      "_deleted%s) SELECT %s, s._mapping, s._row, s._rank, "
                      "false%s FROM pg_temp.rc_ctb s WHERE NOT EXISTS "
                      "(SELECT 1 FROM %s c WHERE s._mapping = c._mapping "
                      "AND s._row = c._row)",
                   qn.p, keys, ac.p, kc, sc.p, qn.p);
    rr = rc_pg_run(x, b->p, err);
    cdc_buf_free(&ac);
    cdc_buf_free(&set);
    cdc_buf_free(&sc);
    if (rr)
        goto out;
    r = 0;
out:
    cdc_buf_free(&qn);
    return r;
}

/* The per-source entries: see rc_side_repair */
static int vts_repair(rc_t *rc, pgx_t *x, const char *keys, const char *kc,
                      cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t *b = &x->sql, qn = CDC_BUF_INIT, hl = CDC_BUF_INIT;
    char name[256];
    int r = -1;

    cdc_buf_reset(&qn);
    cdc_pgv_table(t, name, sizeof(name));
    rc_side_name(rc, x, &qn, name);
    cdc_buf_reset(b);
    cdc_buf_printf(b, "UPDATE %s c SET _value = NULL WHERE c._value IS NOT "
                      "NULL AND c._field IN (", qn.p);
    name_list(rc, x, b, 0);
    cdc_buf_puts(b, ") AND NOT EXISTS (SELECT 1 FROM pg_temp.rc_vts s "
                    "WHERE ");
    rc_key_eq(rc, x, b, "s", "c");
    cdc_buf_printf(b, " AND s._field = c._field AND s._source = "
                      "c._source); UPDATE %s c SET _value = s._value, "
                      "_score = s._score",
                   qn.p);
    /* half_life: the entry's score goes with its time, and the shadow's
     * is the stored one when the stored value was the snapshot's
     * (rc_side_times), else the snapshot's 0 with its rank */
    for (uint32_t f = 0; f < t->nfields; f++)
        if (t->fields[f].per_source && t->fields[f].half_life_us) {
            if (hl.len)
                cdc_buf_puts(&hl, ", ");
            rc_lit(x, &hl, t->fields[f].name);
        }
    if (hl.len)
        cdc_buf_printf(b, ", _rank = CASE WHEN c._field IN (%s) THEN "
                          "s._rank ELSE c._rank END, _t = CASE WHEN "
                          "c._field IN (%s) THEN s._t ELSE c._t END",
                       hl.p, hl.p);
    cdc_buf_puts(b, " FROM pg_temp.rc_vts s WHERE ");
    rc_key_eq(rc, x, b, "s", "c");
    cdc_buf_printf(b, " AND s._field = c._field AND s._source = c._source "
                      "AND (c._value IS DISTINCT FROM s._value OR "
                      "(s._value IS NOT NULL AND c._score IS DISTINCT FROM "
                      "s._score)); INSERT INTO %s (%s, _field, _source, "
                      "_value, _rank, _score, _deleted, _t) SELECT %s, "
                      "s._field, s._source, s._value, s._rank, s._score, "
                      "false, s._t FROM pg_temp.rc_vts s WHERE s._value IS "
                      "NOT NULL AND NOT EXISTS (SELECT 1 FROM %s c WHERE ",
                   qn.p, keys, kc, qn.p);
    rc_key_eq(rc, x, b, "s", "c");
    cdc_buf_puts(b, " AND s._field = c._field AND s._source = c._source)");
    if (rc_pg_run(x, b->p, err))
        goto out;
    r = 0;
out:
    cdc_buf_free(&qn);
    cdc_buf_free(&hl);
    return r;
}

/*
 * Make the side tables hold what the sources make, keeping the stored
 * ranks where a row exists (the change that set it was real; only its
 * state is wrong), and collect the keys whose derived fields must be
 * recomputed (pg_temp.rc_touch):
 *   - a live row no source row makes is marked deleted (a candidate's
 *     tombstone, a gone contribution) as a delete at the repair's start
 *     (RC_DEL_US: the candidate's _commit_us, the head of the
 *     contribution's _rank, never lowered), so the sink's retention
 *     purge keeps it for tombstone_keep from then, and a change of that
 *     source row committed after the repair's snapshot still wins; or
 *     its vote entry becomes NULL (no vote): a replay of an older change
 *     of that source row still loses to it;
 *   - a row whose state differs, or that is marked deleted while the
 *     source row exists, takes the recomputed state under its stored
 *     rank (an ordered candidate takes the recomputed order value);
 *   - a missing row is inserted with its snapshot rank, below every
 *     streamed change, as a backfill would write it.
 * Contributions are states keyed by source row, never increments: a
 * repaired row is counted once, and a later change of its source row
 * replaces its state (and moves it) instead of adding to it.
 */
int rc_side_repair(rc_t *rc, pgx_t *x, const char *keys,
                   cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t *b = &x->sql, kc = CDC_BUF_INIT;
    int r = -1;

    rc_key_cols(rc, x, &kc, "s");
    cdc_buf_reset(b);
    cdc_buf_printf(b, "CREATE TEMP TABLE rc_touch ON COMMIT DROP AS SELECT "
                      "DISTINCT %s FROM pg_temp.rc_diff WHERE kind <> "
                      "'extra'",
                   keys);
    if (rc_pg_run(x, b->p, err))
        goto out;
    if (t->ngroups && cand_repair(rc, x, keys, kc.p, err))
        goto out;
    if (t->aggregates && ctb_repair(rc, x, keys, kc.p, err))
        goto out;
    if (cdc_pgv_target(t) && vts_repair(rc, x, keys, kc.p, err))
        goto out;
    /* the keys of extra rows are deleted, not recomputed */
    cdc_buf_reset(b);
    cdc_buf_puts(b, "DELETE FROM pg_temp.rc_touch s USING pg_temp.rc_diff c "
                    "WHERE c.kind = 'extra' AND ");
    rc_key_eq(rc, x, b, "s", "c");
    r = rc_pg_run(x, b->p, err);
out:
    cdc_buf_free(&kc);
    return r;
}

/* The log2 score of a half_life field at commit time t from the
 * snapshot's (t = 0): the same double arithmetic as cdc_map_score,
 * log2(c x w) + t/h, so a value matches the sink's text. */
void rc_hl_score(const cdc_map_field_t *fd, const char *snap, int64_t t,
                 char out[32])
{
    /* snap and out may be the same buffer */
    double l0;
    if (!strcmp(snap, "-Infinity") || !*snap) {
        if (out != snap)
            memmove(out, snap, strlen(snap) + 1);
        return; /* no score, or c x w = 0: no time changes it */
    }
    l0 = strtod(snap, NULL);
    snprintf(out, 32, "%.17g", l0 + (double)t / (double)fd->half_life_us);
}

/* Fields with half_life decay from commit times a snapshot lacks; the
 * sink's <T>_votes holds, per key, field and source, the commit time of
 * the change that made its entry.  Where that entry holds the value the
 * snapshot recomputes (not a delete's), the change is real: the source's
 * candidate takes its commit time and rank, and the score at that time.
 * Elsewhere (no entry, another value: drift, or a change in flight) the
 * time stays unknown: the candidate keeps its snapshot rank (the side
 * comparison reports the entry) and rc_derive marks what could win. */
int rc_side_times(rc_t *rc, pgx_t *x, cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t *b = &x->sql, qn = CDC_BUF_INIT;
    char name[256];
    PGresult *res;
    int any = 0, nk = (int)t->nkey;

    for (uint32_t f = 0; f < t->nfields; f++)
        any |= t->fields[f].per_source && t->fields[f].half_life_us != 0;
    if (!any || !rc->n)
        return 0;
    side_table(rc, x, RC_VTS, &qn, name, sizeof(name));
    cdc_buf_reset(b);
    cdc_buf_puts(b, "SELECT ");
    for (uint32_t k = 0; k < t->nkey; k++) {
        rc_ident(x, b, t->fields[t->key[k]].name);
        cdc_buf_puts(b, "::text, ");
    }
    cdc_buf_printf(b, "_field, _source, _value, _rank, _t FROM %s WHERE "
                      "NOT _deleted AND _field IN (", qn.p);
    any = 0;
    for (uint32_t f = 0; f < t->nfields; f++)
        if (t->fields[f].per_source && t->fields[f].half_life_us) {
            if (any++)
                cdc_buf_puts(b, ", ");
            rc_lit(x, b, t->fields[f].name);
        }
    cdc_buf_putc(b, ')');
    cdc_buf_free(&qn);
    res = PQexec(x->c, b->p);
    if (rc_pg_ok(x, res, "reading the commit times of the votes table",
                 err))
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        cdc_buf_t kt = CDC_BUF_INIT;
        const char *fname = PQgetvalue(res, i, nk);
        int s = rc_src_index(rc->map, PQgetvalue(res, i, nk + 1)), ri;
        int vnull = PQgetisnull(res, i, nk + 2);
        const char *v = PQgetvalue(res, i, nk + 2);
        size_t vlen = (size_t)PQgetlength(res, i, nk + 2);
        const char *rank = PQgetvalue(res, i, nk + 3);
        int64_t ct = strtoll(PQgetvalue(res, i, nk + 4), NULL, 10);
        uint32_t f;
        rc_cell_t *c;

        for (int k = 0; k < nk; k++) {
            if (k)
                cdc_buf_putc(&kt, '\x1f');
            cdc_buf_puts(&kt, PQgetvalue(res, i, k));
        }
        cdc_buf_putc(&kt, 0);
        ri = cdc_strix_get(&rc->ix, kt.p);
        cdc_buf_free(&kt);
        if (ri < 0 || s < 0)
            continue; /* no source row (or not this partition's) */
        for (f = 0; f < t->nfields && strcmp(t->fields[f].name, fname); f++)
            ;
        if (f == t->nfields)
            continue;
        c = rc_cell(rc->rows[ri], s, f);
        if (!c || !c->w.set || c->w.deleted || c->w.isnull != vnull ||
            (!vnull && (c->w.len != vlen || memcmp(c->w.val, v, vlen))) ||
            strlen(rank) > CDC_MAP_RANK_LEN)
            continue; /* time unknown */
        c->known = 1;
        c->w.t = ct;
        snprintf(c->w.rank, sizeof(c->w.rank), "%s", rank);
        /* a snapshot's entry (a backfill's, a repair's) is scored at
         * time 0, its rank's head (the commit time) zero */
        if (strncmp(rank, "0000000000000000", 16))
            rc_hl_score(&t->fields[f], c->w.score, ct, c->w.score);
    }
    PQclear(res);
    return 0;
}
