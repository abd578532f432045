/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile_repair.c - --repair of the wide table: extra rows deleted,
 * missing rows inserted, differing fields set, then the derived fields of
 * the touched keys recomputed by the sink's own statements.
 */
#include "cdc/commands/reconcile_int.h"

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
/* The per-source fields of the touched keys, from their entries (cdc_pgv_apply) */
static int recompute_votes(rc_t *rc, pgx_t *x, unsigned char *rmode,
                           const cdc_map_mapping_t *any, cdc_wide_ops_t *ops0,
                           cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t *b = &x->sql, qn = CDC_BUF_INIT;
    cdc_wide_ops_t *ops = ops0;
    PGresult *res = NULL;
    char name[256];
    int r = -1;

    cdc_pgv_t v = {.pg = x->c, .map = rc->map, .pgerr = sink_err,
                   .ctx = x->c, .rmode = rmode};
    cdc_pgv_table(t, name, sizeof(name));
    rc_side_name(rc, x, &qn, name);
    cdc_buf_reset(b);
    cdc_buf_puts(b, "SELECT DISTINCT ON (");
    rc_key_cols(rc, x, b, "c");
    cdc_buf_puts(b, ", c._field) ");
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_puts(b, "c.");
        rc_ident(x, b, t->fields[t->key[k]].name);
        cdc_buf_puts(b, "::text, ");
    }
    cdc_buf_printf(b, "c._field, c._source FROM %s c JOIN pg_temp.rc_touch "
                      "s ON ", qn.p);
    rc_key_eq(rc, x, b, "s", "c");
    res = PQexec(x->c, b->p);
    if (rc_pg_ok(x, res, "reading the votes of the repaired keys", err)) {
        res = NULL;
        goto out;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        int f = cdc_map_find_field(t, PQgetvalue(res, i, (int)t->nkey));
        cdc_wide_op_t *op;
        if (f < 0 || !t->fields[f].per_source)
            continue;
        op = cdc_wide_ops_new(ops);
        op->kind = CDC_WIDE_UPSERT;
        op->target = t;
        op->mapping = any;
        op->key = ar_key(rc, ops, res, i);
        op->keyfields = t->key;
        op->nkey = t->nkey;
        op->source = ar_str(ops, PQgetvalue(res, i, (int)t->nkey + 1));
        op->vals = cdc_arena_calloc(&ops->arena, sizeof(*op->vals));
        op->nvals = 1;
        op->vals[0].field = (uint32_t)f;
        op->vals[0].isnull = 1;
        strcpy(op->vals[0].rank, "0");
        strcpy(op->vals[0].score, "0");
    }
    PQclear(res);
    res = NULL;
    if (ops->n && (cdc_pgv_lock(&v, ops, err) ||
                  cdc_pgv_apply(&v, ops, err)))
        goto out;
    cdc_wide_ops_reset(ops);
    r = 0;
out:
    if (res)
        PQclear(res);
    cdc_buf_free(&qn);
    return r;
}

/* The groups of the touched keys, from their candidates (cdc_pgw_groups_apply) */
static int recompute_groups(rc_t *rc, pgx_t *x, unsigned char *rmode,
                            const cdc_map_mapping_t *any, cdc_wide_ops_t *ops0,
                            cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t *b = &x->sql, qn = CDC_BUF_INIT;
    cdc_wide_ops_t *ops = ops0;
    PGresult *res = NULL;
    char name[256];
    int r = -1;

    cdc_buf_reset(&qn);
    cdc_map_candidates_table(t, name, sizeof(name));
    rc_side_name(rc, x, &qn, name);
    cdc_buf_reset(b);
    cdc_buf_puts(b, "SELECT DISTINCT ON (");
    rc_key_cols(rc, x, b, "c");
    cdc_buf_puts(b, ", c._group) ");
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_puts(b, "c.");
        rc_ident(x, b, t->fields[t->key[k]].name);
        cdc_buf_puts(b, "::text, ");
    }
    cdc_buf_printf(b, "c._group, c._mapping, c._row_id, c._source FROM %s "
                      "c JOIN pg_temp.rc_touch s ON ", qn.p);
    rc_key_eq(rc, x, b, "s", "c");
    res = PQexec(x->c, b->p);
    if (rc_pg_ok(x, res, "reading the candidates of the repaired keys", err)) {
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
        op = cdc_wide_ops_new(ops);
        op->kind = CDC_WIDE_GROUP;
        op->target = t;
        op->mapping = mp;
        op->key = ar_key(rc, ops, res, i);
        op->keyfields = t->key;
        op->nkey = t->nkey;
        op->group = g;
        op->rowid = ar_str(ops, PQgetvalue(res, i, (int)t->nkey + 2));
        op->source = ar_str(ops, PQgetvalue(res, i, (int)t->nkey + 3));
        op->vrank = "0";
        op->grank = "0";
        op->gdeleted = 1;
    }
    PQclear(res);
    res = NULL;
    if (ops->n && cdc_pgw_groups_apply(x->c, rc->map, ops, rmode, err))
        goto out;
    cdc_wide_ops_reset(ops);
    r = 0;
out:
    if (res)
        PQclear(res);
    cdc_buf_free(&qn);
    return r;
}

/* The aggregates of the touched keys, from their contributions (cdc_pgw_agg_apply) */
static int recompute_aggs(rc_t *rc, pgx_t *x, unsigned char *rmode,
                          const cdc_map_mapping_t *any, cdc_wide_ops_t *ops0,
                          cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t *b = &x->sql;
    cdc_wide_ops_t *ops = ops0;
    PGresult *res = NULL;
    int r = -1;

    cdc_buf_reset(b);
    cdc_buf_puts(b, "SELECT ");
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_puts(b, k ? ", s." : "s.");
        rc_ident(x, b, t->fields[t->key[k]].name);
        cdc_buf_puts(b, "::text");
    }
    cdc_buf_puts(b, " FROM pg_temp.rc_touch s");
    res = PQexec(x->c, b->p);
    if (rc_pg_ok(x, res, "reading the repaired keys", err)) {
        res = NULL;
        goto out;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        /* a change of the key without values: it touches the key */
        cdc_wide_op_t *op = cdc_wide_ops_new(ops);
        op->kind = CDC_WIDE_UPSERT;
        op->target = t;
        op->mapping = any;
        op->key = ar_key(rc, ops, res, i);
        op->keyfields = t->key;
        op->nkey = t->nkey;
        op->source = any->source->id;
    }
    PQclear(res);
    res = NULL;
    if (ops->n && cdc_pgw_agg_apply(x->c, rc->map, ops, rmode, err))
        goto out;
    r = 0;
out:
    if (res)
        PQclear(res);
    return r;
}

/* Groups and per-source fields of keys without any side row: NULL */
static int clear_unsided(rc_t *rc, pgx_t *x, const char *qt, cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t *b = &x->sql, qn = CDC_BUF_INIT;
    char name[256];
    int r = -1;

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
        rc_side_name(rc, x, &qn, name);
        cdc_buf_reset(b);
        cdc_buf_printf(b, "UPDATE %s t SET ", qt);
        rc_ident(x, b, fd->name);
        cdc_buf_puts(b, " = NULL, ");
        if (x->rank) {
            cdc_pgrank_col(col, sizeof(col), fd->name);
            rc_ident(x, b, col);
            cdc_buf_puts(b, " = NULL");
        } else {
            cdc_buf_puts(b, "_provenance = t._provenance - ");
            rc_lit(x, b, fd->name);
        }
        cdc_buf_puts(b, " FROM pg_temp.rc_touch s WHERE ");
        rc_key_eq(rc, x, b, "s", "t");
        cdc_buf_printf(b, " AND NOT EXISTS (SELECT 1 FROM %s c WHERE ", qn.p);
        rc_key_eq(rc, x, b, "s", "c");
        if (fd->group) {
            cdc_buf_puts(b, " AND NOT c._deleted AND c._group = ");
            rc_lit(x, b, fd->group_name);
        } else {
            cdc_buf_puts(b, " AND c._field = ");
            rc_lit(x, b, fd->name);
        }
        cdc_buf_puts(b, ") AND (t.");
        rc_ident(x, b, fd->name);
        cdc_buf_puts(b, " IS NOT NULL OR ");
        if (x->rank) {
            cdc_buf_puts(b, "t.");
            rc_ident(x, b, col);
            cdc_buf_puts(b, " IS NOT NULL)");
        } else {
            cdc_buf_puts(b, "t._provenance ? ");
            rc_lit(x, b, fd->name);
            cdc_buf_putc(b, ')');
        }
        if (rc_pg_run(x, b->p, err))
            goto out;
    }
    r = 0;
out:
    cdc_buf_free(&qn);
    return r;
}

static int rc_recompute(rc_t *rc, pgx_t *x, const char *qt, cdc_err_t *err)
{
    const cdc_map_target_t *t = rc->t;
    cdc_wide_ops_t ops;
    unsigned char *rmode = cdc_xcalloc(rc->map->ntargets + 1, 1);
    const cdc_map_mapping_t *any = NULL;
    int r = -1;

    cdc_wide_ops_init(&ops);
    rmode[t - rc->map->targets] = (unsigned char)x->rank;
    for (uint32_t i = 0; i < rc->map->nmappings && !any; i++)
        if (rc->map->mappings[i].target == t)
            any = &rc->map->mappings[i];
    if (cdc_pgv_target(t) && recompute_votes(rc, x, rmode, any, &ops, err))
        goto out;
    if (t->ngroups && recompute_groups(rc, x, rmode, any, &ops, err))
        goto out;
    if (t->aggregates && any && recompute_aggs(rc, x, rmode, any, &ops, err))
        goto out;
    if (clear_unsided(rc, x, qt, err))
        goto out;
    r = 0;
out:
    cdc_wide_ops_free(&ops);
    free(rmode);
    return r;
}

/* Missing rows come with their plain fields' snapshot ranks ("row" is
 * only shown); derived fields follow from the side tables (rc_recompute). */
static int repair_missing(rc_t *rc, pgx_t *x, const char *qt, cdc_err_t *err)
{
    cdc_buf_t *b = &x->sql;
    const cdc_map_target_t *t = rc->t;
    cdc_buf_t ic = CDC_BUF_INIT, wc = CDC_BUF_INIT, pl = CDC_BUF_INIT;
    int n = 0;

    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_puts(&ic, k ? ", " : "");
        rc_ident(x, &ic, t->fields[t->key[k]].name);
        cdc_buf_puts(&wc, k ? ", w." : "w.");
        rc_ident(x, &wc, t->fields[t->key[k]].name);
    }
    for (uint32_t f = 0; f < t->nfields; f++) {
        char col[200];
        if (t->fields[f].is_key || rc_derived(&t->fields[f]))
            continue;
        cdc_buf_puts(&ic, ", ");
        rc_ident(x, &ic, t->fields[f].name);
        cdc_buf_puts(&wc, ", w.");
        rc_ident(x, &wc, t->fields[f].name);
        if (x->rank) {
            cdc_pgrank_col(col, sizeof(col), t->fields[f].name);
            cdc_buf_puts(&ic, ", ");
            rc_ident(x, &ic, col);
            cdc_buf_printf(&wc, ", %s.autoglm_cdc_rank((w._provenance "
                                "-> ", x->qs.p);
            rc_lit(x, &wc, t->fields[f].name);
            cdc_buf_puts(&wc, ") - 'row')");
        } else {
            cdc_buf_puts(&pl, n ? ", " : "");
            rc_lit(x, &pl, t->fields[f].name);
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
    rc_key_eq(rc, x, b, "w", "d");
    cdc_buf_free(&ic);
    cdc_buf_free(&wc);
    cdc_buf_free(&pl);
    if (rc_pg_run(x, b->p, err))
        return -1;
    return 0;
}

/* A differing plain field takes the value of its stored source's
 * candidate keeping the stored rank (d.keep), or the recomputed value with
 * its snapshot rank, or NULL without provenance. */
static int repair_fields(rc_t *rc, pgx_t *x, const char *qt, cdc_err_t *err)
{
    cdc_buf_t *b = &x->sql;
    const cdc_map_target_t *t = rc->t;

    for (uint32_t f = 0; f < t->nfields; f++) {
        cdc_buf_t fl = CDC_BUF_INIT, fi = CDC_BUF_INIT;
        int r;
        char *tp;
        if (t->fields[f].is_key || rc_derived(&t->fields[f]))
            continue;
        rc_lit(x, &fl, t->fields[f].name);
        rc_ident(x, &fi, t->fields[f].name);
        if (!(tp = rc_col_type(x, qt, t->fields[f].name, err))) {
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
            rc_ident(x, &rc_, col);
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
        rc_key_eq(rc, x, b, "t", "d");
        r = rc_pg_run(x, b->p, err);
        cdc_buf_free(&fl);
        cdc_buf_free(&fi);
        if (r)
            return -1;
    }
    return 0;
}

int rc_repair(rc_t *rc, pgx_t *x, const char *qt, const char *keys,
              cdc_err_t *err)
{
    cdc_buf_t *b = &x->sql;

    /* the side tables first: what the derived fields are computed from */
    if (rc_side_repair(rc, x, keys, err))
        return -1;

    /* extra rows go */
    cdc_buf_reset(b);
    cdc_buf_printf(b, "DELETE FROM %s t USING pg_temp.rc_diff d WHERE "
                      "d.kind = 'extra' AND ",
                   qt);
    rc_key_eq(rc, x, b, "t", "d");
    if (rc_pg_run(x, b->p, err))
        return -1;
    if (repair_missing(rc, x, qt, err) || repair_fields(rc, x, qt, err))
        return -1;
    return rc_recompute(rc, x, qt, err);
}
