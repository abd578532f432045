/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg_wide_vote.c - vote, weighted_mean and weighted-with-confidence in
 * the PostgreSQL wide sink (pg_wide_vote.h; docs/MAPPINGS.md,
 * "Confidence, vote and weighted mean").
 *
 * Per batch, for each target with per-source fields:
 *   0. before anything else, advisory locks on the hash buckets of the
 *      keys (cdc_pgv_lock): batches of several pipelines that touch the
 *      same keys take turns;
 *   1. the batch's entries, one per key, field and source (the highest
 *      rank; a batch comes from one source), are upserted into
 *      <table>_votes WHERE the incoming rank is greater;
 *   2. the touched fields of the touched keys are recomputed from every
 *      source's entry and upserted with their provenance, each wide row
 *      once {"s","t","r" of the newest voter for the result, "sc": the
 *      summed score, "votes": {source: {"v","sc","t"[,"d"]}}, "d" when
 *      every entry is a row delete's}: for a table with rank columns in
 *      C (recompute_c: one SELECT of the entries, cdc_vote_compute, one
 *      upsert), for a _provenance table in SQL (recompute: a chain of
 *      CTEs per field).
 * The arithmetic is cdc_vote_compute()'s: integer scores, or with
 * half_life the terms floor(2^(L - Lmax) * 10^15 + 0.5) of the log2
 * scores; weighted_mean divides exactly in numeric and rounds half away
 * from zero to the field's scale.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/envelope.h"
#include "cdc/util.h"
#include "mappings/map_int.h"
#include "sinks/pg_rank.h"
#include "sinks/pg_sql.h"
#include "sinks/pg_wide_group.h"
#include "sinks/pg_wide_vote.h"
#include "sinks/wide_batch.h"

int cdc_pgv_target(const cdc_map_target_t *t)
{
    for (uint32_t f = 0; f < t->nfields; f++)
        if (!t->fields[f].is_key && t->fields[f].per_source)
            return 1;
    return 0;
}

void cdc_pgv_table(const cdc_map_target_t *t, char *out, size_t n)
{
    snprintf(out, n, "%s_votes", t->table);
}

static int exec(cdc_pgv_t *v, const char *sql, int np, const char *const *pv,
                const char *what, cdc_err_t *err)
{
    PGresult *r = PQexecParams(v->pg, sql, np, NULL, pv, NULL, NULL, 0);
    int st = PQresultStatus(r), rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = v->pgerr(v->ctx, r, what, err);
    PQclear(r);
    return rc;
}

static void key_cols(PGconn *pg, cdc_buf_t *b, const cdc_map_target_t *t,
                     const char *alias)
{
    for (uint32_t k = 0; k < t->nkey; k++) {
        char *q = cdc_pgs_qid(pg, t->fields[t->key[k]].name);
        cdc_buf_printf(b, "%s%s%s%s", k ? ", " : "", alias ? alias : "",
                       alias ? "." : "", q);
        free(q);
    }
}

int cdc_pgv_create(cdc_pgv_t *v, int create, const char *source,
                   cdc_err_t *err)
{
    cdc_buf_t b = CDC_BUF_INIT;
    int rc = 0;

    for (uint32_t i = 0; i < v->map->ntargets && !rc; i++) {
        const cdc_map_target_t *t = &v->map->targets[i];
        char name[200], tb[40], *qt;
        if (!cdc_pgv_target(t))
            continue;
        cdc_pgv_table(t, name, sizeof(name));
        qt = cdc_pgs_qtab(v->pg, t, name);
        cdc_buf_reset(&b);
        if (create) {
            cdc_buf_printf(&b, "CREATE TABLE IF NOT EXISTS %s (", qt);
            for (uint32_t k = 0; k < t->nkey; k++) {
                char *q = cdc_pgs_qid(v->pg, t->fields[t->key[k]].name);
                cdc_buf_printf(&b, "%s %s NOT NULL, ", q,
                               cdc_pgs_type(&t->fields[t->key[k]], 1, tb,
                                            sizeof(tb)));
                free(q);
            }
            cdc_buf_puts(&b, "_field text NOT NULL, _source text NOT NULL, "
                             "_value text, _rank text COLLATE \"C\" NOT NULL, "
                             "_score text NOT NULL, _deleted boolean NOT NULL "
                             "DEFAULT false, _t bigint NOT NULL, PRIMARY KEY (");
            key_cols(v->pg, &b, t, NULL);
            cdc_buf_puts(&b, ", _field, _source))");
            rc = exec(v, b.p, 0, NULL, "creating a votes table", err);
            if (rc)
                cdc_err_hint(err, "target %s has vote / weighted_mean fields: "
                             "the sink keeps each source's current value in "
                             "%s; grant CREATE on the schema or create it "
                             "(docs/MAPPINGS.md)", t->name, qt);
        } else if (cdc_wide_source_writes(v->map, source, t)) {
            const char *p[1] = {qt};
            PGresult *r = PQexecParams(v->pg, "SELECT to_regclass($1) IS NOT "
                                       "NULL", 1, NULL, p, NULL, NULL, 0);
            if (PQresultStatus(r) != PGRES_TUPLES_OK)
                rc = v->pgerr(v->ctx, r, "checking the votes table", err);
            else if (strcmp(PQgetvalue(r, 0, 0), "t")) {
                rc = cdc_err_set(err, CDC_EXIT_CONFIG, 0, "postgres sink: "
                                 "target %s has vote / weighted_mean fields "
                                 "but the votes table %s is missing", t->name,
                                 qt);
                cdc_err_hint(err, "set postgres_sink.create_tables=true, or "
                             "create it: the key columns of %s, _field text, "
                             "_source text, _value text, _rank text COLLATE "
                             "\"C\", _score text, _deleted boolean, _t bigint, "
                             "PRIMARY KEY (key, _field, _source) "
                             "(docs/MAPPINGS.md)", t->table);
            }
            PQclear(r);
        }
        free(qt);
    }
    cdc_buf_free(&b);
    return rc;
}

/* ---- the batch's entries --------------------------------------------------- */

typedef struct ent {
    const cdc_wide_op_t *op;
    const cdc_wide_val_t *v;
    char *keytext;
} ent_t;

static int ent_cmp(const void *pa, const void *pb)
{
    const ent_t *a = pa, *b = pb;
    int c = strcmp(a->keytext, b->keytext);
    if (c)
        return c;
    if (a->v->field != b->v->field)
        return a->v->field < b->v->field ? -1 : 1;
    return -strcmp(a->v->rank, b->v->rank); /* highest rank first */
}

/* The entries of target t in the batch: one per key and field, the
 * highest rank; sorted by key.  *n set. */
static ent_t *collect(const cdc_wide_ops_t *ops, const cdc_map_target_t *t,
                      size_t *n)
{
    ent_t *e = NULL;
    size_t ne = 0, cap = 0, k = 0;
    cdc_buf_t kt = CDC_BUF_INIT;

    for (uint32_t i = 0; i < ops->n; i++) {
        const cdc_wide_op_t *op = &ops->ops[i];
        if (op->target != t || (op->kind != CDC_WIDE_UPSERT &&
                                op->kind != CDC_WIDE_DELETE))
            continue;
        for (uint32_t j = 0; j < op->nvals; j++) {
            const cdc_wide_val_t *v = &op->vals[j];
            if (!t->fields[v->field].per_source)
                continue;
            if (ne == cap) {
                cap = cap ? 2 * cap : 64;
                e = cdc_xrealloc(e, cap * sizeof(*e));
            }
            cdc_buf_reset(&kt);
            for (uint32_t q = 0; q < op->nkey; q++) {
                if (q)
                    cdc_buf_putc(&kt, '\x1f');
                cdc_buf_puts(&kt, op->key[q]);
            }
            e[ne].op = op;
            e[ne].v = v;
            e[ne].keytext = cdc_xstrdup(kt.p ? kt.p : "");
            ne++;
        }
    }
    cdc_buf_free(&kt);
    if (ne)
        qsort(e, ne, sizeof(*e), ent_cmp);
    for (size_t i = 0; i < ne; i++) {
        if (k && !strcmp(e[k - 1].keytext, e[i].keytext) &&
            e[k - 1].v->field == e[i].v->field) {
            free(e[i].keytext);
            continue;
        }
        e[k++] = e[i];
    }
    *n = k;
    return e;
}

static void ents_free(ent_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].keytext);
    free(e);
}

/* one element of a text[] literal (started by arr_start); NULL
 * unquoted */
static void arr_put(cdc_buf_t *a, const char *s, size_t len, int isnull)
{
    if (a->len > 1)
        cdc_buf_putc(a, ',');
    if (isnull) {
        cdc_buf_puts(a, "NULL");
        return;
    }
    cdc_buf_putc(a, '"');
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\')
            cdc_buf_putc(a, '\\');
        cdc_buf_putc(a, s[i]);
    }
    cdc_buf_putc(a, '"');
}

static void arr_start(cdc_buf_t *a)
{
    cdc_buf_reset(a);
    cdc_buf_putc(a, '{');
}

/* "x.k0 = u.k0::type AND ..." */
static void key_join(cdc_pgv_t *v, cdc_buf_t *b, const cdc_map_target_t *t,
                     const char *alias);

static void klist(cdc_buf_t *b, const cdc_map_target_t *t, const char *alias)
{
    for (uint32_t k = 0; k < t->nkey; k++)
        cdc_buf_printf(b, "%s%s%sk%u", k ? ", " : "", alias ? alias : "",
                       alias ? "." : "", k);
}

static void votes_lock_sql(cdc_pgv_t *v, const cdc_map_target_t *t,
                           int shared, cdc_buf_t *b);

/* Serialise the batches that change per-source fields of the same keys of
 * target t: an advisory lock per hash bucket (256) of the keys, taken in
 * bucket order before the batch writes anything, held until it commits.
 * So the recomputation (a later statement) sees every other pipeline's
 * committed entries of these keys and none is in flight.  The locks live
 * in their own key space (not the field groups'), need no row writes and,
 * at most 256, no shared memory to speak of whatever the batch's size.
 * The same statement takes the table's purge lock shared
 * (cdc_pgv_purge); the table locks come before. */
static int lock_target(cdc_pgv_t *v, const cdc_map_target_t *t,
                       const cdc_wide_ops_t *ops, cdc_err_t *err)
{
    uint32_t nk = t->nkey;
    cdc_buf_t keys = CDC_BUF_INIT, kt = CDC_BUF_INIT, b = CDC_BUF_INIT;
    char *qt = cdc_pgs_qtab(v->pg, t, t->table);
    const char *pv[1];
    int any = 0, rc = 0;

    arr_start(&keys);
    for (uint32_t i = 0; i < ops->n; i++) {
        const cdc_wide_op_t *op = &ops->ops[i];
        int ps = 0;
        if (op->target != t || (op->kind != CDC_WIDE_UPSERT &&
                                op->kind != CDC_WIDE_DELETE))
            continue;
        for (uint32_t j = 0; j < op->nvals && !ps; j++)
            ps = t->fields[op->vals[j].field].per_source;
        if (!ps)
            continue;
        cdc_buf_reset(&kt);
        cdc_buf_puts(&kt, qt);
        for (uint32_t k = 0; k < nk; k++) {
            cdc_buf_putc(&kt, '\x1f');
            cdc_buf_puts(&kt, op->key[k]);
        }
        arr_put(&keys, kt.p, kt.len, 0);
        any = 1;
    }
    if (!any)
        goto out;
    /* first the tables' locks that the batch's writes take anyway, so
     * that no batch holds the advisory locks while it waits for a
     * `reconcile --repair`, which locks these tables IN EXCLUSIVE MODE
     * and then takes the same advisory locks (cdc_pgv_lock) */
    cdc_buf_printf(&b, "LOCK TABLE %s", qt);
    {
        char name[256], *q;
        if (t->ngroups) {
            cdc_map_candidates_table(t, name, sizeof(name));
            q = cdc_pgs_qtab(v->pg, t, name);
            cdc_buf_printf(&b, ", %s", q);
            free(q);
        }
        if (t->aggregates) {
            cdc_map_contrib_table(t, name, sizeof(name));
            q = cdc_pgs_qtab(v->pg, t, name);
            cdc_buf_printf(&b, ", %s", q);
            free(q);
        }
        cdc_pgv_table(t, name, sizeof(name));
        q = cdc_pgs_qtab(v->pg, t, name);
        cdc_buf_printf(&b, ", %s IN ROW EXCLUSIVE MODE", q);
        free(q);
    }
    if ((rc = exec(v, b.p, 0, NULL, "locking the tables of vote fields",
                   err)))
        goto out;
    cdc_buf_reset(&b);
    cdc_buf_putc(&keys, '}');
    pv[0] = keys.p;
    votes_lock_sql(v, t, 1, &b);
    cdc_buf_printf(&b, " FROM (SELECT count(pg_advisory_xact_lock(%d, h)) "
                   "FROM (SELECT DISTINCT (hashtextextended(x, 19) & %d)"
                   "::int AS h FROM unnest($1::text[]) x ORDER BY 1) s) l",
                   CDC_PGV_LOCK, CDC_PGW_GROUP_BUCKETS - 1);
    rc = exec(v, b.p, 1, pv, "locking the keys of vote fields", err);
out:
    free(qt);
    cdc_buf_free(&keys);
    cdc_buf_free(&kt);
    cdc_buf_free(&b);
    return rc;
}

int cdc_pgv_lock(cdc_pgv_t *v, const cdc_wide_ops_t *ops, cdc_err_t *err)
{
    for (uint32_t i = 0; i < v->map->ntargets; i++)
        if (cdc_pgv_target(&v->map->targets[i]) &&
            lock_target(v, &v->map->targets[i], ops, err))
            return -1;
    return 0;
}

/* "x.k0 = u.k0::type AND ..." */
static void key_join(cdc_pgv_t *v, cdc_buf_t *b, const cdc_map_target_t *t,
                     const char *alias)
{
    for (uint32_t k = 0; k < t->nkey; k++) {
        char *q = cdc_pgs_qid(v->pg, t->fields[t->key[k]].name);
        cdc_buf_printf(b, "%s%s.%s = u.k%u::%s", k ? " AND " : "", alias, q,
                       k, cdc_pgs_type(&t->fields[t->key[k]], 0, NULL, 0));
        free(q);
    }
}

/* store the entries of target t (one source) */
static int store(cdc_pgv_t *v, const cdc_map_target_t *t, const ent_t *e,
                 size_t n, cdc_err_t *err)
{
    uint32_t nk = t->nkey, np = nk + 7;
    cdc_buf_t *arr = cdc_xcalloc(np, sizeof(cdc_buf_t)), b = CDC_BUF_INIT;
    const char **pv = cdc_xcalloc(np + 1, sizeof(char *));
    char name[200], *qv;
    int rc;

    cdc_pgv_table(t, name, sizeof(name));
    qv = cdc_pgs_qtab(v->pg, t, name);
    for (uint32_t a = 0; a < np; a++)
        arr_start(&arr[a]);
    for (size_t i = 0; i < n; i++) {
        const cdc_wide_val_t *x = e[i].v;
        const cdc_wide_op_t *op = e[i].op;
        const char *fname = t->fields[x->field].name;
        char tb[24];
        for (uint32_t k = 0; k < nk; k++)
            arr_put(&arr[k], op->key[k], strlen(op->key[k]), 0);
        arr_put(&arr[nk], fname, strlen(fname), 0);
        arr_put(&arr[nk + 1], x->s, x->len, x->isnull);
        arr_put(&arr[nk + 2], x->rank, strlen(x->rank), 0);
        arr_put(&arr[nk + 3], x->score, strlen(x->score), 0);
        arr_put(&arr[nk + 4], x->deleted ? "t" : "f", 1, 0);
        snprintf(tb, sizeof(tb), "%" PRId64, op->commit_us);
        arr_put(&arr[nk + 5], tb, strlen(tb), 0);
    }
    for (uint32_t a = 0; a < np - 1; a++) {
        cdc_buf_putc(&arr[a], '}');
        pv[a] = arr[a].p;
    }
    pv[np - 1] = e[0].op->source;
    cdc_buf_printf(&b, "INSERT INTO %s AS v (", qv);
    key_cols(v->pg, &b, t, NULL);
    cdc_buf_puts(&b, ", _field, _source, _value, _rank, _score, _deleted, _t) "
                     "SELECT ");
    for (uint32_t k = 0; k < nk; k++)
        cdc_buf_printf(&b, "u.k%u::%s, ", k,
                       cdc_pgs_type(&t->fields[t->key[k]], 0, NULL, 0));
    cdc_buf_printf(&b, "u.f, $%u::text, u.val, u.rk, u.sc, u.del::boolean, "
                   "u.t::bigint FROM unnest(", np);
    for (uint32_t a = 0; a < np - 1; a++)
        cdc_buf_printf(&b, "%s$%u::text[]", a ? ", " : "", a + 1);
    cdc_buf_puts(&b, ") AS u(");
    for (uint32_t k = 0; k < nk; k++)
        cdc_buf_printf(&b, "k%u, ", k);
    cdc_buf_puts(&b, "f, val, rk, sc, del, t) ON CONFLICT (");
    key_cols(v->pg, &b, t, NULL);
    cdc_buf_puts(&b, ", _field, _source) DO UPDATE SET _value = "
                     "EXCLUDED._value, _rank = EXCLUDED._rank, _score = "
                     "EXCLUDED._score, _deleted = EXCLUDED._deleted, _t = "
                     "EXCLUDED._t WHERE EXCLUDED._rank > v._rank");
    rc = exec(v, b.p, (int)np, pv, "storing the sources' votes", err);
    for (uint32_t a = 0; a < np; a++)
        cdc_buf_free(&arr[a]);
    free(arr);
    free(pv);
    free(qv);
    cdc_buf_free(&b);
    return rc;
}

/* klist with a suffix on the alias: "a3.k0, a3.k1" */
static void klist_s(cdc_buf_t *b, const cdc_map_target_t *t, const char *alias,
                    unsigned i)
{
    for (uint32_t k = 0; k < t->nkey; k++)
        cdc_buf_printf(b, "%s%s%u.k%u", k ? ", " : "", alias, i, k);
}

/*
 * The CTEs of per-source field f over the keys in e (entries of f; the
 * key arrays are parameters pbase+1..pbase+nkey), ending in
 * r<i>(k0.., res, prov): the value as text and the field's provenance
 * entry (rank: the bytes of its rank column, else the jsonb object).
 * Names carry the suffix i so that every field of the target goes into
 * one statement.
 */
static void field_ctes(cdc_pgv_t *v, cdc_buf_t *b, const cdc_map_target_t *t,
                       uint32_t f, unsigned i, unsigned pbase, const char *qv,
                       int rank)
{
    const cdc_map_field_t *fd = &t->fields[f];
    uint32_t nk = t->nkey;
    char *lf = cdc_pgs_qlit(v->pg, fd->name);
    char score[40], mul[48] = "1", unit[48] = "1";
    int sc = fd->type == CDC_MT_DECIMAL ? fd->scale : 0;

    snprintf(score, sizeof(score), "x%u.sc::%s", i,
             fd->half_life_us ? "float8" : "numeric");
    for (int z = 0; z < sc && z < 40; z++)
        strcat(mul, "0");
    if (sc)
        snprintf(unit, sizeof(unit), "0.%0*d", sc, 1);
    /* u: the keys; x: their entries with each entry's term */
    cdc_buf_printf(b, "u%u AS (SELECT DISTINCT * FROM unnest(", i);
    for (uint32_t k = 0; k < nk; k++)
        cdc_buf_printf(b, "%s$%u::text[]", k ? ", " : "", pbase + k + 1);
    cdc_buf_puts(b, ") AS u(");
    klist(b, t, NULL);
    cdc_buf_printf(b, ")), y%u AS (SELECT ", i);
    for (uint32_t k = 0; k < nk; k++) {
        char *q = cdc_pgs_qid(v->pg, t->fields[t->key[k]].name);
        cdc_buf_printf(b, "x.%s AS k%u, ", q, k);
        free(q);
    }
    cdc_buf_printf(b, "x._source AS src, x._value AS val, x._rank AS rk, "
                   "x._score AS sc, x._deleted AS del, x._t AS t FROM %s AS "
                   "x JOIN u%u AS u ON ", qv, i);
    key_join(v, b, t, "x");
    cdc_buf_printf(b, " WHERE x._field = %s), ", lf);
    if (fd->half_life_us) {
        cdc_buf_printf(b, "z%u AS (SELECT y.*, max(CASE WHEN y.val IS NOT "
                       "NULL AND y.sc <> '-Infinity' THEN y.sc::float8 END) "
                       "OVER (PARTITION BY ", i);
        klist(b, t, "y");
        cdc_buf_printf(b, ") AS lmax FROM y%u AS y), x%u AS (SELECT z.*, CASE "
                       "WHEN z.val IS NULL OR z.sc = '-Infinity' OR z.lmax IS "
                       "NULL OR z.sc::float8 - z.lmax < -100 THEN 0 ELSE "
                       "floor(power(2::float8, z.sc::float8 - z.lmax) * "
                       "1e15::float8 + 0.5::float8)::numeric END AS tm FROM "
                       "z%u AS z), ", i, i, i);
    } else
        cdc_buf_printf(b, "x%u AS (SELECT y.*, CASE WHEN y.val IS NULL THEN 0 "
                       "ELSE y.sc::numeric END AS tm FROM y%u AS y), ", i, i);
    /* w: the result per key (res: its value as text; tot: the score) */
    if (fd->rule == CDC_RULE_VOTE) {
        cdc_buf_printf(b, "g%u AS (SELECT ", i);
        klist_s(b, t, "x", i);
        cdc_buf_printf(b, ", x%u.val, sum(x%u.tm) AS tot FROM x%u WHERE x%u.val "
                       "IS NOT NULL GROUP BY ", i, i, i, i);
        klist_s(b, t, "x", i);
        cdc_buf_printf(b, ", x%u.val), w%u AS (SELECT DISTINCT ON (", i, i);
        klist_s(b, t, "g", i);
        cdc_buf_puts(b, ") ");
        klist_s(b, t, "g", i);
        cdc_buf_printf(b, ", g%u.val AS res, g%u.tot::text AS tot, NULL::boolean "
                       "AS wdel FROM g%u ORDER BY ", i, i, i);
        klist_s(b, t, "g", i);
        cdc_buf_printf(b, ", g%u.tot DESC, g%u.val COLLATE \"C\"), ", i, i);
    } else if (fd->rule == CDC_RULE_WMEAN) {
        cdc_buf_printf(b, "g%u AS (SELECT ", i);
        klist_s(b, t, "x", i);
        cdc_buf_printf(b, ", sum(x%u.tm * (x%u.val::numeric * %s)) AS nn, "
                       "sum(x%u.tm) AS dd FROM x%u WHERE x%u.val IS NOT NULL "
                       "GROUP BY ", i, i, mul, i, i, i);
        klist_s(b, t, "x", i);
        cdc_buf_printf(b, "), w%u AS (SELECT ", i);
        klist_s(b, t, "g", i);
        cdc_buf_printf(b, ", CASE WHEN g%u.dd > 0 THEN ((sign(g%u.nn) * div(2 "
                       "* abs(g%u.nn) + g%u.dd, 2 * g%u.dd)) * %s)::text END "
                       "AS res, g%u.dd::text AS tot, NULL::boolean AS wdel "
                       "FROM g%u), ", i, i, i, i, i, unit, i, i);
    } else {
        /* weighted: the largest score, NULL or not, then the newest */
        cdc_buf_printf(b, "w%u AS (SELECT DISTINCT ON (", i);
        klist_s(b, t, "x", i);
        cdc_buf_puts(b, ") ");
        klist_s(b, t, "x", i);
        cdc_buf_printf(b, ", x%u.val AS res, x%u.sc AS tot, x%u.del AS wdel "
                       "FROM x%u ORDER BY ", i, i, i, i);
        klist_s(b, t, "x", i);
        cdc_buf_printf(b, ", %s DESC, x%u.rk DESC), ", score, i);
    }
    /* tp: the entry the provenance names */
    cdc_buf_printf(b, "tp%u AS (SELECT DISTINCT ON (", i);
    klist_s(b, t, "x", i);
    cdc_buf_puts(b, ") ");
    klist_s(b, t, "x", i);
    cdc_buf_printf(b, ", x%u.src, x%u.t, x%u.rk FROM x%u LEFT JOIN w%u USING "
                   "(", i, i, i, i, i);
    klist(b, t, NULL);
    cdc_buf_puts(b, ") ORDER BY ");
    klist_s(b, t, "x", i);
    if (fd->rule == CDC_RULE_WEIGHTED)
        cdc_buf_printf(b, ", %s DESC, x%u.rk DESC), ", score, i);
    else if (fd->rule == CDC_RULE_VOTE)
        cdc_buf_printf(b, ", CASE WHEN w%u.res IS NOT NULL AND x%u.val IS NOT "
                       "NULL AND x%u.val = w%u.res THEN 0 ELSE 1 END, x%u.rk "
                       "DESC), ", i, i, i, i, i);
    else
        cdc_buf_printf(b, ", CASE WHEN w%u.res IS NOT NULL AND x%u.val IS NOT "
                       "NULL THEN 0 ELSE 1 END, x%u.rk DESC), ", i, i, i);
    /* a: every source's entry, and whether all are deletions */
    cdc_buf_printf(b, "a%u AS (SELECT ", i);
    klist_s(b, t, "x", i);
    cdc_buf_printf(b, ", jsonb_object_agg(x%u.src, jsonb_strip_nulls("
                   "jsonb_build_object('v', x%u.val, 'sc', x%u.sc, 't', "
                   "x%u.t, 'd', CASE WHEN x%u.del THEN 1 END))) AS votes, "
                   "bool_and(x%u.del) AS alldel FROM x%u GROUP BY ", i, i, i,
                   i, i, i, i);
    klist_s(b, t, "x", i);
    /* r: value and provenance entry per key */
    cdc_buf_printf(b, "), r%u AS (SELECT ", i);
    klist_s(b, t, "a", i);
    if (rank) {
        /* the rank column's bytes, as autoglm_cdc_rank() of the object
         * below makes them (pg_rank.h), without building that object */
        cdc_buf_printf(b, ", w%u.res, decode(tp%u.rk, 'hex') || int8send("
                       "tp%u.t) || CASE WHEN %s%u.%s THEN '\\x01'::bytea ELSE "
                       "'\\x00'::bytea END || e%u.s || e%u.x || int4send("
                       "length(e%u.x)) || set_byte('\\x00'::bytea, 0, length("
                       "e%u.s)) AS prov FROM a%u JOIN tp%u USING (", i, i, i,
                       fd->rule == CDC_RULE_WEIGHTED ? "w" : "a", i,
                       fd->rule == CDC_RULE_WEIGHTED ? "wdel" : "alldel", i,
                       i, i, i, i, i);
        klist(b, t, NULL);
        cdc_buf_printf(b, ") LEFT JOIN w%u USING (", i);
        klist(b, t, NULL);
        cdc_buf_printf(b, ") CROSS JOIN LATERAL (SELECT substr(convert_to("
                       "tp%u.src, 'UTF8'), 1, 255) AS s, CASE WHEN o.o = "
                       "'{}'::jsonb THEN ''::bytea ELSE convert_to(o.o::text, "
                       "'UTF8') END AS x FROM (SELECT jsonb_strip_nulls("
                       "jsonb_build_object('sc', w%u.tot, 'votes', a%u.votes)) "
                       "AS o) o) e%u), ", i, i, i, i);
        free(lf);
        return;
    }
    cdc_buf_printf(b, ", w%u.res, jsonb_strip_nulls(jsonb_build_object('s', "
                   "tp%u.src, 't', tp%u.t, 'r', tp%u.rk, 'sc', w%u.tot, 'd', "
                   "CASE WHEN %s%u.%s THEN 1 END, 'votes', a%u.votes)) AS prov "
                   "FROM a%u JOIN tp%u USING (", i, i, i, i, i,
                   fd->rule == CDC_RULE_WEIGHTED ? "w" : "a", i,
                   fd->rule == CDC_RULE_WEIGHTED ? "wdel" : "alldel", i, i, i);
    klist(b, t, NULL);
    cdc_buf_printf(b, ") LEFT JOIN w%u USING (", i);
    klist(b, t, NULL);
    cdc_buf_puts(b, ")), ");
    free(lf);
}

/*
 * Recompute the per-source fields of target t for the keys their entries
 * (e: sorted by key, one per key and field) touch, in one statement: one
 * chain of CTEs per field, then one upsert of every touched key that sets
 * the touched fields (the others keep their values) and merges their
 * provenance entries: each wide row is written once per batch.
 */
/* ", f1, f2, ..." the columns of fields fl[0..nf-1], then with rank
 * ", _r_f1, ..." their rank columns (sinks/pg_rank.h): the column lists of
 * both recompute statements. */
static void field_cols(cdc_pgv_t *v, cdc_buf_t *b, const cdc_map_target_t *t,
                       const uint32_t *fl, uint32_t nf, int rank)
{
    for (uint32_t i = 0; i < nf; i++) {
        char *qf = cdc_pgs_qid(v->pg, t->fields[fl[i]].name);
        cdc_buf_printf(b, ", %s", qf);
        free(qf);
    }
    for (uint32_t i = 0; rank && i < nf; i++) {
        char col[200], *qr;
        cdc_pgrank_col(col, sizeof(col), t->fields[fl[i]].name);
        qr = cdc_pgs_qid(v->pg, col);
        cdc_buf_printf(b, ", %s", qr);
        free(qr);
    }
}

/* The ON CONFLICT SET list of both recompute statements for rank-column
 * tables: a field and its rank column take the entry's when it has one. */
static void rank_set_list(cdc_pgv_t *v, cdc_buf_t *b,
                          const cdc_map_target_t *t, const uint32_t *fl,
                          uint32_t nf)
{
    for (uint32_t i = 0; i < nf; i++) {
        char col[200], *qr, *qf = cdc_pgs_qid(v->pg, t->fields[fl[i]].name);
        cdc_pgrank_col(col, sizeof(col), t->fields[fl[i]].name);
        qr = cdc_pgs_qid(v->pg, col);
        cdc_buf_printf(b, "%s%s = CASE WHEN EXCLUDED.%s IS NOT NULL THEN "
                       "EXCLUDED.%s ELSE t.%s END, %s = COALESCE(EXCLUDED.%s, "
                       "t.%s)", i ? ", " : "", qf, qr, qf, qf, qr, qr, qr);
        free(qf);
        free(qr);
    }
}

static int recompute(cdc_pgv_t *v, const cdc_map_target_t *t, const ent_t *e,
                     size_t n, cdc_err_t *err)
{
    uint32_t nk = t->nkey, nf = 0;
    uint32_t *fl = cdc_xcalloc(t->nfields + 1, sizeof(uint32_t));
    cdc_buf_t *arr, b = CDC_BUF_INIT;
    const char **pv;
    char name[200], *qv, *qt = cdc_pgs_qtab(v->pg, t, t->table);
    int rc, rank = v->rmode && v->rmode[t - v->map->targets];

    for (uint32_t f = 0; f < t->nfields; f++) {
        int touched = 0;
        for (size_t j = 0; j < n && !touched; j++)
            touched = e[j].v->field == f;
        if (touched)
            fl[nf++] = f;
    }
    arr = cdc_xcalloc((size_t)nf * nk + 1, sizeof(cdc_buf_t));
    pv = cdc_xcalloc((size_t)nf * nk + 1, sizeof(char *));
    cdc_pgv_table(t, name, sizeof(name));
    qv = cdc_pgs_qtab(v->pg, t, name);
    for (uint32_t i = 0; i < nf; i++) {
        for (uint32_t k = 0; k < nk; k++)
            arr_start(&arr[i * nk + k]);
        for (size_t j = 0; j < n; j++)
            if (e[j].v->field == fl[i])
                for (uint32_t k = 0; k < nk; k++)
                    arr_put(&arr[i * nk + k], e[j].op->key[k],
                            strlen(e[j].op->key[k]), 0);
        for (uint32_t k = 0; k < nk; k++) {
            cdc_buf_putc(&arr[i * nk + k], '}');
            pv[i * nk + k] = arr[i * nk + k].p;
        }
    }
    cdc_buf_puts(&b, "WITH ");
    for (uint32_t i = 0; i < nf; i++)
        field_ctes(v, &b, t, fl[i], i, i * nk, qv, rank);
    cdc_buf_puts(&b, "ak AS (");
    for (uint32_t i = 0; i < nf; i++) {
        cdc_buf_printf(&b, "%sSELECT ", i ? " UNION " : "");
        klist(&b, t, NULL);
        cdc_buf_printf(&b, " FROM r%u", i);
    }
    cdc_buf_printf(&b, ") INSERT INTO %s AS t (", qt);
    key_cols(v->pg, &b, t, NULL);
    field_cols(v, &b, t, fl, nf, rank);
    if (rank) {
        cdc_buf_puts(&b, ") SELECT ");
        klist(&b, t, "ak");
        for (uint32_t i = 0; i < nf; i++)
            cdc_buf_printf(&b, ", r%u.res::%s", i,
                           cdc_pgs_type(&t->fields[fl[i]], 0, NULL, 0));
        for (uint32_t i = 0; i < nf; i++)
            cdc_buf_printf(&b, ", r%u.prov", i);
        cdc_buf_puts(&b, " FROM ak");
    } else {
    cdc_buf_puts(&b, ", _provenance) SELECT ");
    klist(&b, t, "ak");
    for (uint32_t i = 0; i < nf; i++)
        cdc_buf_printf(&b, ", r%u.res::%s", i,
                       cdc_pgs_type(&t->fields[fl[i]], 0, NULL, 0));
    /* an untouched field's entry is NULL here: stripped */
    cdc_buf_puts(&b, ", jsonb_strip_nulls(jsonb_build_object(");
    for (uint32_t i = 0; i < nf; i++) {
        char *lf = cdc_pgs_qlit(v->pg, t->fields[fl[i]].name);
        cdc_buf_printf(&b, "%s%s, r%u.prov", i ? ", " : "", lf, i);
        free(lf);
    }
    cdc_buf_puts(&b, ")) FROM ak");
    }
    for (uint32_t i = 0; i < nf; i++) {
        cdc_buf_printf(&b, " LEFT JOIN r%u USING (", i);
        klist(&b, t, NULL);
        cdc_buf_puts(&b, ")");
    }
    cdc_buf_puts(&b, " ORDER BY ");
    klist(&b, t, "ak");
    cdc_buf_puts(&b, " ON CONFLICT (");
    key_cols(v->pg, &b, t, NULL);
    cdc_buf_puts(&b, ") DO UPDATE SET ");
    if (rank)
        rank_set_list(v, &b, t, fl, nf);
    for (uint32_t i = 0; !rank && i < nf; i++) {
        char *qf = cdc_pgs_qid(v->pg, t->fields[fl[i]].name);
        char *lf = cdc_pgs_qlit(v->pg, t->fields[fl[i]].name);
        cdc_buf_printf(&b, "%s = CASE WHEN EXCLUDED._provenance ? %s THEN "
                       "EXCLUDED.%s ELSE t.%s END, ", qf, lf, qf, qf);
        free(qf);
        free(lf);
    }
    if (!rank)
        cdc_buf_puts(&b, "_provenance = t._provenance || "
                         "EXCLUDED._provenance");
    /* a row whose fields and ranks or provenance stay as they are is not
     * written (a re-run backfill changes nothing) */
    cdc_buf_puts(&b, " WHERE false");
    for (uint32_t i = 0; i < nf; i++) {
        char *qf = cdc_pgs_qid(v->pg, t->fields[fl[i]].name);
        if (rank) {
            char col[200], *qr;
            cdc_pgrank_col(col, sizeof(col), t->fields[fl[i]].name);
            qr = cdc_pgs_qid(v->pg, col);
            cdc_buf_printf(&b, " OR (EXCLUDED.%s IS NOT NULL AND (EXCLUDED.%s "
                           "IS DISTINCT FROM t.%s OR EXCLUDED.%s IS DISTINCT "
                           "FROM t.%s))", qr, qf, qf, qr, qr);
            free(qr);
        } else {
            char *lf = cdc_pgs_qlit(v->pg, t->fields[fl[i]].name);
            cdc_buf_printf(&b, " OR (EXCLUDED._provenance ? %s AND "
                           "(EXCLUDED.%s IS DISTINCT FROM t.%s OR "
                           "(EXCLUDED._provenance->%s) IS DISTINCT FROM "
                           "(t._provenance->%s)))", lf, qf, qf, lf, lf);
            free(lf);
        }
        free(qf);
    }
    rc = exec(v, b.p, (int)(nf * nk), pv, "recomputing vote fields", err);
    if (rc) {
        char was[sizeof(err->detail)];
        snprintf(was, sizeof(was), "%s", err->detail);
        cdc_err_detail(err, "%s; the vote / weighted_mean fields of target "
                       "%s", was, t->name);
    }
    for (uint32_t i = 0; i < nf * nk; i++)
        cdc_buf_free(&arr[i]);
    free(arr);
    free(pv);
    free(fl);
    free(qv);
    free(qt);
    cdc_buf_free(&b);
    return rc;
}

/* ---- the recomputation in C (tables with rank columns) --------------------- */

/* b += the hex digits of n bytes */
static void hex_bytes(cdc_buf_t *b, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        char h[2];
        cdc_hex(h, s[i], 2);
        cdc_buf_put(b, h, 2);
    }
}

/*
 * The rank column's bytes of one recomputed field (pg_rank.h), as a
 * bytea literal's text "\x...": the named entry's rank, its commit time,
 * the deletion mark, its source (at most 255 bytes), then the entry's
 * further keys as JSON text -- {"sc": total, "votes": {source: {"v",
 * "sc", "t"[, "d"]}}} -- and the two lengths.  The JSON is written as
 * PostgreSQL prints that jsonb object (keys by length, then bytes; the
 * entries come sorted so), so the bytes are the ones autoglm_cdc_rank()
 * and the SQL recomputation give.
 */
static void rank_bytes(cdc_buf_t *out, const cdc_vote_entry_t *en, size_t n,
                       const cdc_vote_result_t *res, int has_total,
                       cdc_buf_t *js)
{
    const cdc_vote_entry_t *top = &en[res->top];
    size_t sl = strlen(top->source);
    unsigned char be[8];
    uint64_t tt = (uint64_t)top->t;

    if (sl > 255)
        sl = 255;
    cdc_buf_reset(js);
    cdc_buf_putc(js, '{');
    if (has_total) {
        cdc_buf_puts(js, "\"sc\": ");
        cdc_json_string(js, res->total, strlen(res->total));
        cdc_buf_puts(js, ", ");
    }
    cdc_buf_puts(js, "\"votes\": {");
    for (size_t i = 0; i < n; i++) {
        if (i)
            cdc_buf_puts(js, ", ");
        cdc_json_string(js, en[i].source, strlen(en[i].source));
        cdc_buf_printf(js, ": {%s\"t\": %" PRId64 ", ",
                       en[i].deleted ? "\"d\": 1, " : "", en[i].t);
        if (!en[i].isnull) {
            cdc_buf_puts(js, "\"v\": ");
            cdc_json_string(js, en[i].val, en[i].len);
            cdc_buf_puts(js, ", ");
        }
        cdc_buf_puts(js, "\"sc\": ");
        cdc_json_string(js, en[i].score, strlen(en[i].score));
        cdc_buf_putc(js, '}');
    }
    cdc_buf_puts(js, "}}");
    cdc_buf_puts(out, "\\x");
    cdc_buf_puts(out, top->rank);
    for (int i = 0; i < 8; i++)
        be[i] = (unsigned char)(tt >> (56 - 8 * i));
    hex_bytes(out, be, 8);
    cdc_buf_puts(out, res->deleted ? "01" : "00");
    hex_bytes(out, top->source, sl);
    hex_bytes(out, js->p, js->len);
    for (int i = 0; i < 4; i++)
        be[i] = (unsigned char)((uint32_t)js->len >> (24 - 8 * i));
    hex_bytes(out, be, 4);
    be[0] = (unsigned char)sl;
    hex_bytes(out, be, 1);
}

/*
 * Recompute the per-source fields of target t (its table keeps rank
 * columns) for the keys and fields their entries e touch: one SELECT
 * reads every source's entry of those keys and fields, cdc_vote_compute()
 * (the arithmetic the SQL recomputation and the in-memory model share)
 * gives each value and the entry its provenance names, and one upsert
 * writes the values and rank columns, each wide row once.  Cheaper than
 * the chain of CTEs per field, which builds a jsonb object per entry.
 */
static int recompute_c(cdc_pgv_t *v, const cdc_map_target_t *t,
                       const ent_t *e, size_t n, cdc_err_t *err)
{
    uint32_t nk = t->nkey, nf = 0;
    uint32_t *fl = cdc_xcalloc(t->nfields + 1, sizeof(uint32_t));
    cdc_buf_t b = CDC_BUF_INIT, js = CDC_BUF_INIT;
    cdc_buf_t *in = cdc_xcalloc(nk + 1, sizeof(cdc_buf_t)), *out;
    const char **pv = cdc_xcalloc(nk + 2, sizeof(char *)), **po;
    char name[200], *qv, *qt = cdc_pgs_qtab(v->pg, t, t->table);
    cdc_vote_entry_t *en = NULL;
    size_t cap = 0;
    PGresult *r = NULL;
    int rc = -1, nr;
    cdc_buf_t *vals = cdc_xcalloc(t->nfields + 1, sizeof(cdc_buf_t));
    cdc_buf_t *ranks = cdc_xcalloc(t->nfields + 1, sizeof(cdc_buf_t));
    int *isset = cdc_xcalloc(t->nfields + 1, sizeof(int));
    int *vnull = cdc_xcalloc(t->nfields + 1, sizeof(int));

    for (uint32_t f = 0; f < t->nfields; f++) {
        int touched = 0;
        for (size_t j = 0; j < n && !touched; j++)
            touched = e[j].v->field == f;
        if (touched)
            fl[nf++] = f;
    }
    out = cdc_xcalloc((size_t)nk + 2 * nf + 1, sizeof(cdc_buf_t));
    po = cdc_xcalloc((size_t)nk + 2 * nf + 1, sizeof(char *));
    cdc_pgv_table(t, name, sizeof(name));
    qv = cdc_pgs_qtab(v->pg, t, name);
    /* the (key, field) pairs of the batch */
    for (uint32_t k = 0; k <= nk; k++)
        arr_start(&in[k]);
    for (size_t j = 0; j < n; j++) {
        const char *fname = t->fields[e[j].v->field].name;
        for (uint32_t k = 0; k < nk; k++)
            arr_put(&in[k], e[j].op->key[k], strlen(e[j].op->key[k]), 0);
        arr_put(&in[nk], fname, strlen(fname), 0);
    }
    for (uint32_t k = 0; k <= nk; k++) {
        cdc_buf_putc(&in[k], '}');
        pv[k] = in[k].p;
    }
    cdc_buf_puts(&b, "SELECT ");
    for (uint32_t k = 0; k < nk; k++) {
        char *q = cdc_pgs_qid(v->pg, t->fields[t->key[k]].name);
        cdc_buf_printf(&b, "x.%s::text, ", q);
        free(q);
    }
    cdc_buf_printf(&b, "x._field, x._source, x._value, x._rank, x._score, "
                   "x._deleted, x._t FROM %s AS x JOIN (SELECT DISTINCT * "
                   "FROM unnest(", qv);
    for (uint32_t k = 0; k <= nk; k++)
        cdc_buf_printf(&b, "%s$%u::text[]", k ? ", " : "", k + 1);
    cdc_buf_puts(&b, ") AS u(");
    for (uint32_t k = 0; k < nk; k++)
        cdc_buf_printf(&b, "k%u, ", k);
    cdc_buf_puts(&b, "f)) AS u ON ");
    key_join(v, &b, t, "x");
    cdc_buf_puts(&b, " AND x._field = u.f ORDER BY ");
    key_cols(v->pg, &b, t, "x");
    /* the sources in jsonb's key order: by length, then bytes */
    cdc_buf_puts(&b, ", x._field, octet_length(x._source), x._source COLLATE "
                     "\"C\"");
    r = PQexecParams(v->pg, b.p, (int)nk + 1, NULL, pv, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        v->pgerr(v->ctx, r, "reading the sources' votes", err);
        goto out;
    }
    nr = PQntuples(r);
    for (uint32_t a = 0; a < nk + 2 * nf; a++)
        arr_start(&out[a]);
    /* rows come by key, then field: one output row per key */
    for (int i = 0; i < nr;) {
        int krow = i;
        for (uint32_t k = 0; k < nk; k++)
            arr_put(&out[k], PQgetvalue(r, i, (int)k),
                    (size_t)PQgetlength(r, i, (int)k), 0);
        for (uint32_t q = 0; q < nf; q++) {
            cdc_buf_reset(&vals[q]);
            cdc_buf_reset(&ranks[q]);
            isset[q] = 0;
            vnull[q] = 1;
        }
        while (i < nr) {
            const char *fname = PQgetvalue(r, i, (int)nk);
            const cdc_map_field_t *fd = NULL;
            cdc_vote_result_t res;
            size_t ne = 0;
            uint32_t q;
            int same = 1, has_total = 0;
            for (uint32_t k = 0; k < nk && same; k++)
                same = !strcmp(PQgetvalue(r, i, (int)k),
                               PQgetvalue(r, krow, (int)k));
            if (!same)
                break;
            for (q = 0; q < nf && !fd; q++)
                if (!strcmp(t->fields[fl[q]].name, fname))
                    fd = &t->fields[fl[q]];
            if (!fd) {
                cdc_err_set(err, CDC_EXIT_FAIL, 0, "postgres sink: target "
                            "%s: unexpected field '%s' in the votes table",
                            t->name, fname);
                goto out;
            }
            q--;
            /* the entries of this key and field */
            while (i < nr && !strcmp(PQgetvalue(r, i, (int)nk), fname)) {
                for (uint32_t k = 0; k < nk && same; k++)
                    same = !strcmp(PQgetvalue(r, i, (int)k),
                                   PQgetvalue(r, krow, (int)k));
                if (!same)
                    break;
                if (ne == cap) {
                    cap = cap ? 2 * cap : 16;
                    en = cdc_xrealloc(en, cap * sizeof(*en));
                }
                en[ne].source = PQgetvalue(r, i, (int)nk + 1);
                en[ne].isnull = PQgetisnull(r, i, (int)nk + 2);
                en[ne].val = PQgetvalue(r, i, (int)nk + 2);
                en[ne].len = (size_t)PQgetlength(r, i, (int)nk + 2);
                en[ne].rank = PQgetvalue(r, i, (int)nk + 3);
                en[ne].score = PQgetvalue(r, i, (int)nk + 4);
                en[ne].deleted = PQgetvalue(r, i, (int)nk + 5)[0] == 't';
                en[ne].t = strtoll(PQgetvalue(r, i, (int)nk + 6), NULL, 10);
                has_total |= !en[ne].isnull;
                ne++;
                i++;
            }
            if (cdc_vote_compute(fd, en, ne, &res)) {
                free(res.val);
                cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA, "postgres "
                            "sink: target %s field %s: the weighted mean "
                            "overflows", t->name, fd->name);
                goto out;
            }
            /* "sc": the winner's sum (vote), the voters' (weighted_mean),
             * the winner's score (weighted); none without a voter */
            if (fd->rule == CDC_RULE_WEIGHTED)
                has_total = 1;
            else if (fd->rule == CDC_RULE_VOTE)
                has_total = has_total && !res.isnull;
            isset[q] = 1;
            vnull[q] = res.isnull;
            if (!res.isnull)
                cdc_buf_put(&vals[q], res.val, res.len);
            rank_bytes(&ranks[q], en, ne, &res, has_total, &js);
            free(res.val);
        }
        /* a field this key's entries do not name stays as it is */
        for (uint32_t q = 0; q < nf; q++) {
            arr_put(&out[nk + q], vals[q].p ? vals[q].p : "", vals[q].len,
                    !isset[q] || vnull[q]);
            arr_put(&out[nk + nf + q], ranks[q].p, ranks[q].len, !isset[q]);
        }
    }
    for (uint32_t a = 0; a < nk + 2 * nf; a++) {
        cdc_buf_putc(&out[a], '}');
        po[a] = out[a].p;
    }
    cdc_buf_reset(&b);
    cdc_buf_printf(&b, "INSERT INTO %s AS t (", qt);
    key_cols(v->pg, &b, t, NULL);
    field_cols(v, &b, t, fl, nf, 1);
    cdc_buf_puts(&b, ") SELECT ");
    for (uint32_t k = 0; k < nk; k++)
        cdc_buf_printf(&b, "%su.k%u::%s", k ? ", " : "", k,
                       cdc_pgs_type(&t->fields[t->key[k]], 0, NULL, 0));
    for (uint32_t i = 0; i < nf; i++)
        cdc_buf_printf(&b, ", u.v%u::%s", i,
                       cdc_pgs_type(&t->fields[fl[i]], 0, NULL, 0));
    for (uint32_t i = 0; i < nf; i++)
        cdc_buf_printf(&b, ", u.r%u::bytea", i);
    cdc_buf_puts(&b, " FROM unnest(");
    for (uint32_t a = 0; a < nk + 2 * nf; a++)
        cdc_buf_printf(&b, "%s$%u::text[]", a ? ", " : "", a + 1);
    cdc_buf_puts(&b, ") AS u(");
    for (uint32_t k = 0; k < nk; k++)
        cdc_buf_printf(&b, "k%u, ", k);
    for (uint32_t i = 0; i < nf; i++)
        cdc_buf_printf(&b, "v%u, ", i);
    for (uint32_t i = 0; i < nf; i++)
        cdc_buf_printf(&b, "r%u%s", i, i + 1 < nf ? ", " : "");
    cdc_buf_puts(&b, ") ON CONFLICT (");
    key_cols(v->pg, &b, t, NULL);
    cdc_buf_puts(&b, ") DO UPDATE SET ");
    rank_set_list(v, &b, t, fl, nf);
    /* a row whose fields and ranks stay as they are is not written (a
     * re-run backfill changes nothing) */
    cdc_buf_puts(&b, " WHERE false");
    for (uint32_t i = 0; i < nf; i++) {
        char col[200], *qr, *qf = cdc_pgs_qid(v->pg, t->fields[fl[i]].name);
        cdc_pgrank_col(col, sizeof(col), t->fields[fl[i]].name);
        qr = cdc_pgs_qid(v->pg, col);
        cdc_buf_printf(&b, " OR (EXCLUDED.%s IS NOT NULL AND (EXCLUDED.%s IS "
                       "DISTINCT FROM t.%s OR EXCLUDED.%s IS DISTINCT FROM "
                       "t.%s))", qr, qf, qf, qr, qr);
        free(qf);
        free(qr);
    }
    rc = nr ? exec(v, b.p, (int)(nk + 2 * nf), po, "writing vote fields", err)
            : 0;
    if (rc) {
        char was[sizeof(err->detail)];
        snprintf(was, sizeof(was), "%s", err->detail);
        cdc_err_detail(err, "%s; the vote / weighted_mean fields of target "
                       "%s", was, t->name);
    }
out:
    PQclear(r);
    for (uint32_t k = 0; k <= nk; k++)
        cdc_buf_free(&in[k]);
    for (uint32_t a = 0; a < nk + 2 * nf; a++)
        cdc_buf_free(&out[a]);
    free(in);
    free(out);
    free(pv);
    free(po);
    free(fl);
    free(en);
    free(qv);
    free(qt);
    for (uint32_t q = 0; q < t->nfields; q++) {
        cdc_buf_free(&vals[q]);
        cdc_buf_free(&ranks[q]);
    }
    free(vals);
    free(ranks);
    free(isset);
    free(vnull);
    cdc_buf_free(&b);
    cdc_buf_free(&js);
    return rc;
}

int cdc_pgv_apply(cdc_pgv_t *v, const cdc_wide_ops_t *ops, cdc_err_t *err)
{
    for (uint32_t i = 0; i < v->map->ntargets; i++) {
        const cdc_map_target_t *t = &v->map->targets[i];
        size_t n;
        ent_t *e;
        int rc = 0;
        if (!cdc_pgv_target(t))
            continue;
        e = collect(ops, t, &n);
        /* cdc_pgv_lock took the locks of the keys and the purge lock */
        if (n)
            rc = store(v, t, e, n, err) ||
                 (v->rmode && v->rmode[i] ? recompute_c(v, t, e, n, err)
                                          : recompute(v, t, e, n, err));
        ents_free(e, n);
        if (rc)
            return -1;
    }
    return 0;
}

/* ---- retention (postgres_sink.tombstone_keep) ------------------------------- */

/* "SELECT pg_advisory_xact_lock[_shared](hashtext('autoglm_cdc_votes:
 * schema.table'))": the batches that write votes of t take it shared,
 * the purge exclusive */
static void votes_lock_sql(cdc_pgv_t *v, const cdc_map_target_t *t,
                           int shared, cdc_buf_t *b)
{
    char lk[300], *q;
    snprintf(lk, sizeof(lk), CDC_PGV_PURGE_LOCK "%s.%s", t->schema,
             t->table);
    q = cdc_pgs_qlit(v->pg, lk);
    cdc_buf_printf(b, "SELECT pg_advisory_xact_lock%s(hashtext(%s))",
                   shared ? "_shared" : "", q);
    free(q);
}

int cdc_pgv_purge(cdc_pgv_t *v, const cdc_map_target_t *t, int64_t cutoff_us,
                  long *n, cdc_err_t *err)
{
    cdc_buf_t b = CDC_BUF_INIT, l = CDC_BUF_INIT;
    char name[200], cutoff[32], *qv;
    int rc;

    /* Only a (key, field) whose every source's entry is a row delete's
     * older than the cutoff goes, all of it: such a field is NULL with
     * or without them (NULLs do not vote; under per-source weighted the
     * winner is one of them), and no other entry is left whose race they
     * would decide.  Entries next to a live one stay: they are bounded by
     * the live keys.  The exclusive lock waits for the batches writing
     * votes of t (they hold it shared from before their entries are
     * stored until they commit), so no batch recomputes a field from
     * entries this purge is removing. */
    snprintf(cutoff, sizeof(cutoff), "%" PRId64, cutoff_us);
    cdc_pgv_table(t, name, sizeof(name));
    qv = cdc_pgs_qtab(v->pg, t, name);
    /* the table lock first, as the batches and `reconcile --repair` take
     * theirs before the advisory locks */
    cdc_buf_printf(&l, "LOCK TABLE %s IN ROW EXCLUSIVE MODE; ", qv);
    votes_lock_sql(v, t, 0, &l);
    cdc_buf_printf(&b, "DELETE FROM %s AS x WHERE x.ctid = ANY(ARRAY(SELECT "
                   "o.ctid FROM %s AS o WHERE o._deleted AND o._t < $1::bigint "
                   "AND NOT EXISTS (SELECT 1 FROM %s AS y WHERE ", qv, qv, qv);
    for (uint32_t k = 0; k < t->nkey; k++) {
        char *q = cdc_pgs_qid(v->pg, t->fields[t->key[k]].name);
        cdc_buf_printf(&b, "y.%s = o.%s AND ", q, q);
        free(q);
    }
    cdc_buf_printf(&b, "y._field = o._field AND NOT (y._deleted AND y._t < "
                   "$1::bigint)) LIMIT %d))", CDC_WIDE_PURGE_ROWS);
    rc = cdc_pgs_purge(v->pg, l.p, b.p, cutoff, "purging deleted votes", n,
                       err);
    free(qv);
    cdc_buf_free(&b);
    cdc_buf_free(&l);
    return rc;
}
