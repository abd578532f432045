/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile_compare.c - the shadow table of the recomputed rows and each
 * source's candidates, its SQL comparison with the wide table into
 * pg_temp.rc_diff, and the report of the differences.
 */
#include "cdc/commands/reconcile_int.h"

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
    rc_copy_val(b, a->prov.p, a->prov.len);
    cdc_buf_putc(b, '\t');
    if (src)
        rc_copy_val(b, src, strlen(src));
    cdc_buf_putc(b, '\t');
    cdc_buf_puts(b, a->has.p);
    cdc_buf_putc(b, '\t');
    cdc_buf_puts(b, a->adm.p);
    cdc_buf_putc(b, '\t');
    if (row)
        rc_copy_val(b, row, strlen(row));
    else
        cdc_buf_puts(b, "\\N");
    cdc_buf_putc(b, '\n');
    cdc_buf_free(&a->prov);
    cdc_buf_free(&a->has);
    cdc_buf_free(&a->adm);
}

static void put_value(cdc_buf_t *b, int set, int isnull, const char *v,
                      size_t n)
{
    if (!set || isnull)
        cdc_buf_puts(b, "\\N");
    else
        rc_copy_val(b, v, n);
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

    rc_put_key(rc, b, r);
    acc_init(&a);
    for (uint32_t f = 0; f < t->nfields; f++) {
        const cdc_map_field_t *fd = &t->fields[f];
        int s = src, w;
        const rc_cell_t *c;
        if (fd->is_key)
            continue;
        if (src < 0 && rc_derived(fd)) {
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
        c = s < 0 ? NULL : rc_cell(r, s, f);
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
                      ? (fd->rule == CDC_RULE_WEIGHTED && w >= 0 &&
                         !strcmp(c->w.score, rc_cell(r, w, f)->w.score)) ||
                            /* half_life, a commit time unknown: a value
                             * some time could make win (vote_adm) */
                            (r->calc[f].adm && r->calc[f].adm[s])
                      : rc_admissible(rc, f, s, w, c, rc_cell(r, w, f)));
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
    int adm = rc_gc_admissible(rc, r, g);
    sh_acc_t a;

    rc_put_key(rc, b, r);
    acc_init(&a);
    rc_gc_prov(rc, &pj, g);
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

int rc_shadow_fill(rc_t *rc, pgx_t *x, const char *cols, cdc_err_t *err)
{
    cdc_buf_t b = CDC_BUF_INIT;
    PGresult *res;
    int r = -1;

    cdc_buf_printf(&b, "COPY pg_temp.rc_shadow (%s, _provenance, _src, "
                       "_has, _adm, _row) FROM STDIN",
                   cols);
    res = PQexec(x->c, b.p);
    if (rc_pg_ok(x, res, "COPY into the shadow table", err)) {
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
    if (rc_pg_ok(x, res, "COPY into the shadow table", err))
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
    rc_key_cols(rc, x, b, has);
    cdc_buf_printf(b, ", '%s', %s._provenance FROM %s %s WHERE %sNOT EXISTS "
                      "(SELECT 1 FROM %s %s WHERE %s",
                   extra ? "extra" : "missing", has, extra ? qt : shadow, has,
                   extra ? "" : recomputed, extra ? shadow : qt, lacks,
                   extra ? recomputed : "");
    rc_key_eq(rc, x, b, "t", "w");
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
            rc_ident(x, b, t->fields[f].name);
            if (t->fields[f].agg)
                /* an aggregate over no row: count 0, the others NULL */
                cdc_map_agg_fold(&t->fields[f], NULL, NULL, 0, &v, &vl);
            if (v) {
                cdc_buf_puts(b, "::text IS DISTINCT FROM ");
                rc_lit(x, b, v);
                free(v);
            } else
                cdc_buf_puts(b, " IS NOT NULL");
        }
        cdc_buf_puts(b, nonkey ? ")" : " OR true)");
    }
    return rc_pg_run(x, b->p, err);
}

int rc_compare(rc_t *rc, pgx_t *x, const char *qt, const char *keys,
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
        rc_lit(x, &fl, fname);
        rc_ident(x, &fi, fname);
        cdc_buf_reset(b);
        cdc_buf_printf(b, "INSERT INTO pg_temp.rc_diff (%s, kind, field, "
                          "sval, sprov, nval, nprov, keep) SELECT ",
                       keys);
        rc_key_cols(rc, x, b, "t");
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
        rc_key_eq(rc, x, b, "t", "w");
        /* the candidate the stored provenance names: its source, and
         * for a group field its source row */
        cdc_buf_printf(b, " LEFT JOIN pg_temp.rc_shadow c ON c._src = "
                          "(t._provenance->%s->>'s') AND c._row IS NOT "
                          "DISTINCT FROM (t._provenance->%s->'row') AND ",
                       fl.p, fl.p);
        rc_key_eq(rc, x, b, "t", "c");
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
        r = rc_pg_run(x, b->p, err);
        cdc_buf_free(&fl);
        cdc_buf_free(&fi);
        if (r)
            return -1;
    }
    return 0;
}

/* A value for the text report: shortened (cdc_map_show_value), quoted. */
static const char *quote(char *out, size_t n, const char *v, char *tmp,
                         size_t tn)
{
    snprintf(out, n, "\"%s\"", cdc_map_show_value(v, strlen(v), tmp, tn));
    return out;
}

/* Print the differences of one batch of the report's rows, counted. */
static void report_rows(PGresult *res, int json, rc_sum_t *sum)
{
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
}

int rc_report(rc_t *rc, pgx_t *x, int json, rc_sum_t *sum,
              cdc_err_t *err)
{
    cdc_buf_t *b = &x->sql;
    const cdc_map_target_t *t = rc->t;
    PGresult *res;

    cdc_buf_reset(b);
    /* key text, kind, field, stored value, stored provenance text, the
     * recomputed ones, sources of a missing/extra row, a JSON line */
    /* read through a cursor, a batch at a time: a large drift is not
     * held in memory at once */
    cdc_buf_puts(b, "DECLARE rc_report NO SCROLL CURSOR FOR SELECT "
                    "concat_ws(' '");
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_puts(b, ", ");
        rc_lit(x, b, t->fields[t->key[k]].name);
        cdc_buf_puts(b, " || '=' || d.");
        rc_ident(x, b, t->fields[t->key[k]].name);
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
    rc_lit(x, b, t->name);
    cdc_buf_puts(b, ", 'key', json_build_object(");
    for (uint32_t k = 0; k < t->nkey; k++) {
        if (k)
            cdc_buf_puts(b, ", ");
        rc_lit(x, b, t->fields[t->key[k]].name);
        cdc_buf_puts(b, ", d.");
        rc_ident(x, b, t->fields[t->key[k]].name);
    }
    cdc_buf_puts(b, "), 'field', d.field, 'stored', json_build_object("
                    "'value', d.sval, 'provenance', d.sprov), 'recomputed', "
                    "json_build_object('value', d.nval, 'provenance', "
                    "d.nprov, 'keeps_stored_rank', d.keep))::text "
                    "FROM pg_temp.rc_diff d ORDER BY ");
    rc_key_cols(rc, x, b, "d");
    cdc_buf_puts(b, ", d.kind, d.field");
    if (rc_pg_run(x, b->p, err))
        return -1;
    for (;;) {
        int n;
        res = PQexec(x->c, "FETCH FORWARD 10000 FROM rc_report");
        if (rc_pg_ok(x, res, "reading the differences", err))
            return -1;
        n = PQntuples(res);
        report_rows(res, json, sum);
        PQclear(res);
        if (n < 10000)
            break;
    }
    return rc_pg_run(x, "CLOSE rc_report", err);
}

