/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg_wide_group.c - field groups in the PostgreSQL wide sink.
 *
 * Per target with groups, a side table <table>_candidates keeps one row
 * per (target key, group, mapping, source row): the source row's newest
 * change (_vrank), its rank under the group's rule (_grank), whether it
 * deleted the row, and the group's values (a jsonb array of canonical
 * texts).  The primary key starts with the target key, so the candidates
 * of a key are one index range.
 *
 * After a batch's upserts, in its transaction, per target:
 *   1. SELECT pg_advisory_xact_lock(...) over the hash buckets (256) of
 *      the batch's keys, in order: pipelines that touch the same keys
 *      take turns, so each recomputation (a new statement, a new
 *      snapshot) sees the other's committed candidates;
 *   2. INSERT INTO candidates ... ON CONFLICT DO UPDATE ... WHERE
 *      EXCLUDED._vrank > stored _vrank (a max per source row);
 *   3. one INSERT INTO wide ... SELECT over the touched keys, each group
 *      a LATERAL (the live candidate of greatest _grank) ... ON CONFLICT
 *      DO UPDATE of the group's fields and their provenance, WHERE
 *      something changed.
 * The candidates of one batch are merged in memory first (the greatest
 * _vrank per candidate), so ON CONFLICT never sees one twice.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/envelope.h"
#include "cdc/util.h"
#include "sinks/pg_rank.h"
#include "sinks/pg_sql.h"
#include "sinks/pg_wide_group.h"
#include "sinks/wide_batch.h"

static char *qcand(PGconn *pg, const cdc_map_target_t *t)
{
    char name[200];
    cdc_map_candidates_table(t, name, sizeof(name));
    return cdc_pgs_qtab(pg, t, name);
}

static int run(PGconn *pg, const char *sql, int n, const char *const *p,
               const char *what, cdc_err_t *err)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, p, NULL, NULL, 0);
    int st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        cdc_pgs_fail(pg, r, what, NULL, err);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

/* ---- setup --------------------------------------------------------------- */

static void create_sql(PGconn *pg, const cdc_map_target_t *t, cdc_buf_t *b)
{
    char *qc = qcand(pg, t), tb[40];
    cdc_buf_printf(b, "CREATE TABLE IF NOT EXISTS %s (", qc);
    for (uint32_t k = 0; k < t->nkey; k++) {
        char *qf = cdc_pgs_qid(pg, t->fields[t->key[k]].name);
        cdc_buf_printf(b, "%s %s NOT NULL, ", qf,
                       cdc_pgs_type(&t->fields[t->key[k]], 1, tb,
                                    sizeof(tb)));
        free(qf);
    }
    cdc_buf_puts(b, "_group text NOT NULL, _mapping text NOT NULL, _row_id "
                    "text NOT NULL, _vrank text COLLATE \"C\" NOT NULL, "
                    "_grank text COLLATE \"C\" NOT NULL, _deleted boolean "
                    "NOT NULL, _source text NOT NULL, _commit_us bigint NOT "
                    "NULL, _values jsonb, PRIMARY KEY (");
    for (uint32_t k = 0; k < t->nkey; k++) {
        char *qf = cdc_pgs_qid(pg, t->fields[t->key[k]].name);
        cdc_buf_printf(b, "%s, ", qf);
        free(qf);
    }
    cdc_buf_puts(b, "_group, _mapping, _row_id))");
    free(qc);
}

int cdc_pgw_groups_setup(PGconn *pg, const cdc_map_t *map, int create,
                         cdc_err_t *err)
{
    cdc_buf_t b = CDC_BUF_INIT;
    int rc = 0;

    for (uint32_t i = 0; i < map->ntargets && !rc; i++) {
        const cdc_map_target_t *t = &map->targets[i];
        char *qc;
        if (!t->ngroups)
            continue;
        cdc_buf_reset(&b);
        create_sql(pg, t, &b);
        qc = qcand(pg, t);
        if (create) {
            rc = run(pg, b.p, 0, NULL, "creating a candidates table", err);
            if (rc)
                cdc_err_hint(err, "target %s has field groups: the sink keeps "
                             "their candidates in %s; grant CREATE on the "
                             "schema or create it yourself: %s", t->name, qc,
                             b.p);
        } else {
            const char *p[1] = {qc};
            PGresult *r = PQexecParams(pg, "SELECT to_regclass($1) IS NOT "
                                       "NULL", 1, NULL, p, NULL, NULL, 0);
            if (PQresultStatus(r) != PGRES_TUPLES_OK)
                rc = cdc_pgs_fail(pg, r, "checking the candidates table",
                                  NULL, err);
            else if (strcmp(PQgetvalue(r, 0, 0), "t")) {
                cdc_err_set(err, CDC_EXIT_CONFIG, 0, "postgres sink: target "
                            "%s has field group '%s' but the candidates "
                            "table %s is missing", t->name, t->groups[0].name,
                            qc);
                cdc_err_hint(err, "set postgres_sink.create_tables=true, or "
                             "create it: %s", b.p);
                rc = -1;
            }
            PQclear(r);
        }
        free(qc);
    }
    cdc_buf_free(&b);
    return rc;
}

/* ---- a batch ------------------------------------------------------------- */

/* a PostgreSQL array literal element */
static void arr_put(cdc_buf_t *b, const char *s, size_t len, int isnull)
{
    if (b->len > 1)
        cdc_buf_putc(b, ',');
    if (isnull) {
        cdc_buf_puts(b, "NULL");
        return;
    }
    cdc_buf_putc(b, '"');
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\')
            cdc_buf_putc(b, '\\');
        cdc_buf_putc(b, s[i]);
    }
    cdc_buf_putc(b, '"');
}

static int cand_cmp(const void *pa, const void *pb)
{
    const cdc_wide_op_t *a = *(const cdc_wide_op_t *const *)pa;
    const cdc_wide_op_t *b = *(const cdc_wide_op_t *const *)pb;
    int c;
    for (uint32_t k = 0; k < a->nkey; k++)
        if ((c = strcmp(a->key[k], b->key[k])))
            return c;
    if (a->group != b->group)
        return a->group < b->group ? -1 : 1;
    if ((c = strcmp(a->mapping->name, b->mapping->name)))
        return c;
    if ((c = strcmp(a->rowid, b->rowid)))
        return c;
    return -strcmp(a->vrank, b->vrank); /* the newest first */
}

static int same_cand(const cdc_wide_op_t *a, const cdc_wide_op_t *b)
{
    for (uint32_t k = 0; k < a->nkey; k++)
        if (strcmp(a->key[k], b->key[k]))
            return 0;
    return a->group == b->group && !strcmp(a->mapping->name, b->mapping->name)
           && !strcmp(a->rowid, b->rowid);
}

enum { A_GROUP, A_MAPPING, A_ROW, A_VRANK, A_GRANK, A_DELETED, A_SOURCE,
       A_COMMIT, A_VALUES, A_N };

/* the wide-row upsert of every group of the touched keys ($1..$nkey) */
static void recompute_sql(PGconn *pg, const cdc_map_target_t *t, int rank,
                          cdc_buf_t *b)
{
    char *qt = cdc_pgs_qtab(pg, t, t->table), *qc = qcand(pg, t), tb[40];
    uint32_t nf = 0;

    cdc_buf_puts(b, "WITH k AS (SELECT DISTINCT ");
    for (uint32_t k = 0; k < t->nkey; k++) {
        const cdc_map_field_t *f = &t->fields[t->key[k]];
        char *qf = cdc_pgs_qid(pg, f->name);
        cdc_buf_printf(b, "%su.k%u::%s AS %s", k ? ", " : "", k,
                       cdc_pgs_type(f, 1, tb, sizeof(tb)), qf);
        free(qf);
    }
    cdc_buf_puts(b, " FROM unnest(");
    for (uint32_t k = 0; k < t->nkey; k++)
        cdc_buf_printf(b, "%s$%u::text[]", k ? ", " : "", k + 1);
    cdc_buf_puts(b, ") AS u(");
    for (uint32_t k = 0; k < t->nkey; k++)
        cdc_buf_printf(b, "%sk%u", k ? ", " : "", k);
    cdc_buf_printf(b, ")) INSERT INTO %s AS t (", qt);
    for (uint32_t k = 0; k < t->nkey; k++) {
        char *qf = cdc_pgs_qid(pg, t->fields[t->key[k]].name);
        cdc_buf_printf(b, "%s, ", qf);
        free(qf);
    }
    for (uint32_t g = 0; g < t->ngroups; g++)
        for (uint32_t i = 0; i < t->groups[g].nfields; i++) {
            char *qf = cdc_pgs_qid(pg, t->fields[t->groups[g].fields[i]].name);
            cdc_buf_printf(b, "%s, ", qf);
            free(qf);
        }
    if (rank) {
        /* each group field's entry in its rank column (sinks/pg_rank.h) */
        for (uint32_t g = 0; g < t->ngroups; g++)
            for (uint32_t i = 0; i < t->groups[g].nfields; i++) {
                char col[200], *qr;
                cdc_pgrank_col(col, sizeof(col),
                               t->fields[t->groups[g].fields[i]].name);
                qr = cdc_pgs_qid(pg, col);
                cdc_buf_printf(b, "%s, ", qr);
                free(qr);
            }
        b->len -= 2;
        b->p[b->len] = '\0';
        cdc_buf_puts(b, ") SELECT ");
    } else
    cdc_buf_puts(b, "_provenance) SELECT ");
    for (uint32_t k = 0; k < t->nkey; k++) {
        char *qf = cdc_pgs_qid(pg, t->fields[t->key[k]].name);
        cdc_buf_printf(b, "k.%s, ", qf);
        free(qf);
    }
    for (uint32_t g = 0; g < t->ngroups; g++)
        for (uint32_t i = 0; i < t->groups[g].nfields; i++) {
            const cdc_map_field_t *f = &t->fields[t->groups[g].fields[i]];
            cdc_buf_printf(b, "(g%u._values->>%u)::%s, ", g, i,
                           cdc_pgs_type(f, 1, tb, sizeof(tb)));
        }
    /* provenance: one entry per field of a group with a winner
     * (jsonb_build_object takes at most 100 arguments: one per field) */
    if (rank) {
        /* the winner's entry, built once per group in its LATERAL (g<g>.r)
         * and the same on every field of the group */
        for (uint32_t g = 0; g < t->ngroups; g++)
            for (uint32_t i = 0; i < t->groups[g].nfields; i++)
                cdc_buf_printf(b, "%sg%u._r", nf++ ? ", " : "", g);
    } else
        cdc_buf_puts(b, "'{}'::jsonb");
    for (uint32_t g = 0; !rank && g < t->ngroups; g++) {
        char *gl = cdc_pgs_qlit(pg, t->groups[g].name);
        for (uint32_t i = 0; i < t->groups[g].nfields; i++) {
            char *fl = cdc_pgs_qlit(pg, t->fields[t->groups[g].fields[i]].name);
            cdc_buf_printf(b, " || CASE WHEN g%u._grank IS NULL THEN '{}'::"
                           "jsonb ELSE jsonb_build_object(%s, "
                           "jsonb_build_object('s', g%u._source, 't', "
                           "g%u._commit_us, 'r', g%u._grank, 'g', %s, 'row', "
                           "g%u._row_id::jsonb)) END", g, fl, g, g, g, gl, g);
            free(fl);
            nf++;
        }
        free(gl);
    }
    cdc_buf_puts(b, " FROM k");
    for (uint32_t g = 0; g < t->ngroups; g++) {
        char *gl = cdc_pgs_qlit(pg, t->groups[g].name);
        cdc_buf_printf(b, " LEFT JOIN LATERAL (SELECT c._values, c._source, "
                       "c._commit_us, c._grank, c._row_id");
        if (rank)
            /* = autoglm_cdc_rank(jsonb_build_object('s', _source, 't',
             * _commit_us, 'r', _grank, 'g', group, 'row', _row_id)) byte
             * for byte (pg_rank.h), without a jsonb object per row */
            cdc_buf_printf(b, ", decode(c._grank, 'hex') || int8send("
                           "c._commit_us) || '\\x00'::bytea || x.s || x.x || "
                           "int4send(length(x.x)) || set_byte('\\x00'::bytea, "
                           "0, length(x.s)) AS _r");
        cdc_buf_printf(b, " FROM %s c", qc);
        if (rank)
            cdc_buf_printf(b, " CROSS JOIN LATERAL (SELECT substr(convert_to("
                           "c._source, 'UTF8'), 1, 255) AS s, convert_to("
                           "jsonb_build_object('g', %s, 'row', c._row_id::"
                           "jsonb)::text, 'UTF8') AS x) x", gl);
        cdc_buf_puts(b, " WHERE ");
        for (uint32_t k = 0; k < t->nkey; k++) {
            char *qf = cdc_pgs_qid(pg, t->fields[t->key[k]].name);
            cdc_buf_printf(b, "c.%s = k.%s AND ", qf, qf);
            free(qf);
        }
        cdc_buf_printf(b, "c._group = %s AND NOT c._deleted ORDER BY "
                       "c._grank DESC, c._mapping COLLATE \"C\" DESC, "
                       "c._row_id COLLATE \"C\" DESC LIMIT 1) g%u ON true",
                       gl, g);
        free(gl);
    }
    if (t->aggregates) {
        /* a target with aggregates has a row while something makes it
         * (map_agg.c): no new row for a key without a winner */
        cdc_buf_puts(b, " WHERE EXISTS (SELECT 1 FROM ");
        cdc_buf_printf(b, "%s w WHERE ", qt);
        for (uint32_t k = 0; k < t->nkey; k++) {
            char *qf = cdc_pgs_qid(pg, t->fields[t->key[k]].name);
            cdc_buf_printf(b, "%sw.%s = k.%s", k ? " AND " : "", qf, qf);
            free(qf);
        }
        cdc_buf_puts(b, ")");
        for (uint32_t g = 0; g < t->ngroups; g++)
            cdc_buf_printf(b, " OR g%u._grank IS NOT NULL", g);
    }
    cdc_buf_puts(b, " ON CONFLICT (");
    for (uint32_t k = 0; k < t->nkey; k++) {
        char *qf = cdc_pgs_qid(pg, t->fields[t->key[k]].name);
        cdc_buf_printf(b, "%s%s", k ? ", " : "", qf);
        free(qf);
    }
    cdc_buf_puts(b, ") DO UPDATE SET ");
    for (uint32_t g = 0; g < t->ngroups; g++)
        for (uint32_t i = 0; i < t->groups[g].nfields; i++) {
            char *qf = cdc_pgs_qid(pg, t->fields[t->groups[g].fields[i]].name);
            cdc_buf_printf(b, "%s = EXCLUDED.%s, ", qf, qf);
            free(qf);
        }
    if (rank) {
        nf = 0;
        for (uint32_t g = 0; g < t->ngroups; g++)
            for (uint32_t i = 0; i < t->groups[g].nfields; i++) {
                char col[200], *qr;
                cdc_pgrank_col(col, sizeof(col),
                               t->fields[t->groups[g].fields[i]].name);
                qr = cdc_pgs_qid(pg, col);
                cdc_buf_printf(b, "%s%s = EXCLUDED.%s", nf++ ? ", " : "", qr,
                               qr);
                free(qr);
            }
        cdc_buf_puts(b, " WHERE false");
        for (uint32_t g = 0; g < t->ngroups; g++)
            for (uint32_t i = 0; i < t->groups[g].nfields; i++) {
                const char *name = t->fields[t->groups[g].fields[i]].name;
                char col[200], *qf = cdc_pgs_qid(pg, name), *qr;
                cdc_pgrank_col(col, sizeof(col), name);
                qr = cdc_pgs_qid(pg, col);
                cdc_buf_printf(b, " OR t.%s IS DISTINCT FROM EXCLUDED.%s OR "
                               "t.%s IS DISTINCT FROM EXCLUDED.%s", qf, qf,
                               qr, qr);
                free(qf);
                free(qr);
            }
        free(qt);
        free(qc);
        return;
    }
    cdc_buf_puts(b, "_provenance = (t._provenance - ARRAY[");
    nf = 0;
    for (uint32_t g = 0; g < t->ngroups; g++)
        for (uint32_t i = 0; i < t->groups[g].nfields; i++) {
            char *fl = cdc_pgs_qlit(pg, t->fields[t->groups[g].fields[i]].name);
            cdc_buf_printf(b, "%s%s", nf++ ? ", " : "", fl);
            free(fl);
        }
    cdc_buf_puts(b, "]::text[]) || EXCLUDED._provenance WHERE false");
    for (uint32_t g = 0; g < t->ngroups; g++)
        for (uint32_t i = 0; i < t->groups[g].nfields; i++) {
            const char *name = t->fields[t->groups[g].fields[i]].name;
            char *qf = cdc_pgs_qid(pg, name), *fl = cdc_pgs_qlit(pg, name);
            cdc_buf_printf(b, " OR t.%s IS DISTINCT FROM EXCLUDED.%s OR "
                           "(t._provenance->%s) IS DISTINCT FROM "
                           "(EXCLUDED._provenance->%s)", qf, qf, fl, fl);
            free(qf);
            free(fl);
        }
    free(qt);
    free(qc);
}

/* the candidates upsert: $1..$nkey keys, then the A_* arrays */
static void cand_sql(PGconn *pg, const cdc_map_target_t *t, cdc_buf_t *b)
{
    char *qc = qcand(pg, t), tb[40];
    uint32_t nk = t->nkey;

    cdc_buf_printf(b, "INSERT INTO %s AS c (", qc);
    for (uint32_t k = 0; k < nk; k++) {
        char *qf = cdc_pgs_qid(pg, t->fields[t->key[k]].name);
        cdc_buf_printf(b, "%s, ", qf);
        free(qf);
    }
    cdc_buf_puts(b, "_group, _mapping, _row_id, _vrank, _grank, _deleted, "
                    "_source, _commit_us, _values) SELECT ");
    for (uint32_t k = 0; k < nk; k++)
        cdc_buf_printf(b, "u.k%u::%s, ", k,
                       cdc_pgs_type(&t->fields[t->key[k]], 1, tb,
                                    sizeof(tb)));
    cdc_buf_puts(b, "u.g, u.m, u.r, u.vr, u.gr, u.d::boolean, u.s, "
                    "u.t::bigint, u.v::jsonb FROM unnest(");
    for (uint32_t k = 0; k < nk + A_N; k++)
        cdc_buf_printf(b, "%s$%u::text[]", k ? ", " : "", k + 1);
    cdc_buf_puts(b, ") AS u(");
    for (uint32_t k = 0; k < nk; k++)
        cdc_buf_printf(b, "k%u, ", k);
    cdc_buf_puts(b, "g, m, r, vr, gr, d, s, t, v) ON CONFLICT (");
    for (uint32_t k = 0; k < nk; k++) {
        char *qf = cdc_pgs_qid(pg, t->fields[t->key[k]].name);
        cdc_buf_printf(b, "%s, ", qf);
        free(qf);
    }
    cdc_buf_puts(b, "_group, _mapping, _row_id) DO UPDATE SET _vrank = "
                    "EXCLUDED._vrank, _grank = EXCLUDED._grank, _deleted = "
                    "EXCLUDED._deleted, _source = EXCLUDED._source, "
                    "_commit_us = EXCLUDED._commit_us, _values = "
                    "EXCLUDED._values WHERE EXCLUDED._vrank > c._vrank");
    free(qc);
}

void cdc_pgw_groups_lock_sql(cdc_buf_t *b, int all)
{
    cdc_buf_printf(b, "SELECT count(pg_advisory_xact_lock(%d, h)) FROM ",
                   CDC_PGW_GROUP_LOCK);
    if (all)
        cdc_buf_printf(b, "(SELECT h FROM generate_series(0, %d) h ORDER BY "
                       "1) s", CDC_PGW_GROUP_BUCKETS - 1);
    else
        cdc_buf_printf(b, "(SELECT DISTINCT (hashtextextended(x, 19) & %d)"
                       "::int AS h FROM unnest($1::text[]) x ORDER BY 1) s",
                       CDC_PGW_GROUP_BUCKETS - 1);
}

static int apply_target(PGconn *pg, const cdc_map_target_t *t, int rank,
                        const cdc_wide_op_t **v, size_t n, cdc_err_t *err)
{
    uint32_t nk = t->nkey, np = nk + A_N;
    cdc_buf_t *arr = cdc_xcalloc(np, sizeof(cdc_buf_t));
    cdc_buf_t locks = CDC_BUF_INIT, sql = CDC_BUF_INIT, tmp = CDC_BUF_INIT;
    const char **p = cdc_xcalloc(np, sizeof(char *));
    char *qt = cdc_pgs_qtab(pg, t, t->table);
    int rc = -1;

    qsort(v, n, sizeof(*v), cand_cmp);
    for (uint32_t k = 0; k < np; k++)
        cdc_buf_putc(&arr[k], '{');
    cdc_buf_putc(&locks, '{');
    for (size_t i = 0; i < n; i++) {
        const cdc_wide_op_t *op = v[i];
        const cdc_map_group_t *g = &t->groups[op->group];
        char num[24];
        if (i && same_cand(v[i - 1], op))
            continue; /* an older change of the same candidate */
        /* the lock of the key: table and key texts */
        cdc_buf_reset(&tmp);
        cdc_buf_puts(&tmp, qt);
        for (uint32_t k = 0; k < nk; k++) {
            cdc_buf_putc(&tmp, '\x1f');
            cdc_buf_puts(&tmp, op->key[k]);
            arr_put(&arr[k], op->key[k], strlen(op->key[k]), 0);
        }
        arr_put(&locks, tmp.p, tmp.len, 0);
        arr_put(&arr[nk + A_GROUP], g->name, strlen(g->name), 0);
        arr_put(&arr[nk + A_MAPPING], op->mapping->name,
                strlen(op->mapping->name), 0);
        arr_put(&arr[nk + A_ROW], op->rowid, strlen(op->rowid), 0);
        arr_put(&arr[nk + A_VRANK], op->vrank, strlen(op->vrank), 0);
        arr_put(&arr[nk + A_GRANK], op->grank, strlen(op->grank), 0);
        arr_put(&arr[nk + A_DELETED], op->gdeleted ? "t" : "f", 1, 0);
        arr_put(&arr[nk + A_SOURCE], op->source, strlen(op->source), 0);
        snprintf(num, sizeof(num), "%" PRId64, op->commit_us);
        arr_put(&arr[nk + A_COMMIT], num, strlen(num), 0);
        if (op->gdeleted)
            arr_put(&arr[nk + A_VALUES], NULL, 0, 1);
        else {
            cdc_buf_reset(&tmp);
            cdc_buf_putc(&tmp, '[');
            for (uint32_t k = 0; k < op->nvals; k++) {
                if (k)
                    cdc_buf_putc(&tmp, ',');
                if (op->vals[k].isnull)
                    cdc_buf_puts(&tmp, "null");
                else
                    cdc_json_string(&tmp, op->vals[k].s, op->vals[k].len);
            }
            cdc_buf_putc(&tmp, ']');
            arr_put(&arr[nk + A_VALUES], tmp.p, tmp.len, 0);
        }
    }
    for (uint32_t k = 0; k < np; k++) {
        cdc_buf_putc(&arr[k], '}');
        p[k] = arr[k].p;
    }
    cdc_buf_putc(&locks, '}');
    {
        const char *lp[1] = {locks.p};
        /* at most 256 locks per batch (one per hash bucket of the keys):
         * a lock per key would exhaust the lock table on large batches */
        cdc_pgw_groups_lock_sql(&sql, 0);
        if (run(pg, sql.p, 1, lp, "locking the keys of field groups", err))
            goto out;
    }
    cdc_buf_reset(&sql);
    cand_sql(pg, t, &sql);
    if (run(pg, sql.p, (int)np, p, "storing group candidates", err))
        goto out;
    cdc_buf_reset(&sql);
    recompute_sql(pg, t, rank, &sql);
    if (run(pg, sql.p, (int)nk, p, "writing field groups", err))
        goto out;
    rc = 0;
out:
    for (uint32_t k = 0; k < np; k++)
        cdc_buf_free(&arr[k]);
    free(arr);
    free(p);
    free(qt);
    cdc_buf_free(&locks);
    cdc_buf_free(&sql);
    cdc_buf_free(&tmp);
    return rc;
}

int cdc_pgw_groups_apply(PGconn *pg, const cdc_map_t *map,
                         const cdc_wide_ops_t *ops,
                         const unsigned char *rmode, cdc_err_t *err)
{
    const cdc_wide_op_t **v = NULL;
    size_t n;
    int rc = 0;

    for (uint32_t ti = 0; ti < map->ntargets && !rc; ti++) {
        const cdc_map_target_t *t = &map->targets[ti];
        if (!t->ngroups)
            continue;
        n = 0;
        for (uint32_t i = 0; i < ops->n; i++) {
            const cdc_wide_op_t *op = &ops->ops[i];
            if (op->kind != CDC_WIDE_GROUP || op->target != t)
                continue;
            if (!v)
                v = cdc_xcalloc(ops->n, sizeof(*v));
            v[n++] = op;
        }
        if (n)
            rc = apply_target(pg, t, rmode ? rmode[t - map->targets] : 0,
                              v, n, err);
    }
    free(v);
    return rc;
}

/* ---- retention (postgres_sink.tombstone_keep) ---------------------------- */

int cdc_pgw_groups_purge(PGconn *pg, const cdc_map_target_t *t,
                         int64_t cutoff_us, long *n, cdc_err_t *err)
{
    cdc_buf_t b = CDC_BUF_INIT;
    char *qc = qcand(pg, t), cutoff[32];
    int rc;

    /* a deleted candidate is out of the race: removing it changes no
     * winner.  The condition is checked again on the row deleted, so a
     * candidate that a racing batch made live again meanwhile stays. */
    snprintf(cutoff, sizeof(cutoff), "%" PRId64, cutoff_us);
    cdc_buf_printf(&b, "DELETE FROM %s AS c WHERE c.ctid = ANY(ARRAY(SELECT "
                   "o.ctid FROM %s AS o WHERE o._deleted AND o._commit_us < "
                   "$1::bigint LIMIT %d)) AND c._deleted AND c._commit_us < "
                   "$1::bigint", qc, qc, CDC_WIDE_PURGE_ROWS);
    rc = cdc_pgs_purge(pg, NULL, b.p, cutoff, "purging deleted candidates",
                       n, err);
    free(qc);
    cdc_buf_free(&b);
    return rc;
}
