/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg_wide_agg.c - aggregate fields in the PostgreSQL wide sink
 * (pg_wide_agg.h, docs/MAPPINGS.md).
 *
 * <table>_contrib: the target's key columns (NULL when the row is gone
 * without a key), _mapping, _row (the source row's key as a JSON array),
 * _rank (COLLATE "C": commit time, position), _deleted, and one column
 * per aggregate field holding this row's contributed value (count: 1;
 * count_distinct: the value's text; sum/min/max: the value in the
 * field's type).  PRIMARY KEY (_mapping, _row); an index on the key
 * columns serves the recomputation.
 *
 * Identifiers are quoted with PQescapeIdentifier; values travel by COPY,
 * so names and data that look like SQL stay data.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/buf.h"
#include "cdc/log.h"
#include "cdc/strix.h"
#include "cdc/util.h"
#include "sinks/pg_rank.h"
#include "sinks/pg_sql.h"
#include "sinks/pg_wide_agg.h"
#include "sinks/wide_batch.h"

#define FAC "pgwide"

/* a data error (SQLSTATE class 22) in an aggregate statement */
#define AGG_DATA_HINT                                                         \
    "an aggregate does not fit its column of the wide table (a sum beyond "  \
    "the field's precision?): widen the field's type; nothing of the "       \
    "batch was written"

static int exec(PGconn *pg, const char *sql, const char *what, cdc_err_t *err)
{
    PGresult *r = PQexec(pg, sql);
    int st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        cdc_pgs_fail(pg, r, what, AGG_DATA_HINT, err);
        CDC_DEBUG(FAC, "statement: %s", sql);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

static void qtab(PGconn *pg, cdc_buf_t *b, const cdc_map_target_t *t,
                 const char *suffix)
{
    char name[300];
    snprintf(name, sizeof(name), "%s%s", t->table, suffix);
    cdc_pgs_qid_put(pg, b, *t->schema ? t->schema : "public");
    cdc_buf_putc(b, '.');
    cdc_pgs_qid_put(pg, b, name);
}

/* column type of the target (typmod) or, typmod-free, for casts */
/* the type of field f's column in the contributions table */
static const char *ctype(const cdc_map_field_t *f, int typmod, char *buf,
                         size_t n)
{
    if (f->agg == CDC_AGG_COUNT)
        return "bigint";
    if (f->agg == CDC_AGG_COUNT_DISTINCT)
        return "text";
    return cdc_pgs_type(f, typmod, buf, n);
}

static int writes_aggs(const cdc_map_t *map, const char *source,
                       const cdc_map_target_t *t)
{
    for (uint32_t i = 0; i < map->nmappings; i++)
        if (map->mappings[i].target == t && map->mappings[i].naggs &&
            !strcmp(map->mappings[i].source->id, source))
            return 1;
    return 0;
}

int cdc_pgw_agg_setup(PGconn *pg, const cdc_map_t *map, const char *source,
                      int create, cdc_err_t *err)
{
    cdc_buf_t b = CDC_BUF_INIT;
    int rc = 0;

    for (uint32_t ti = 0; ti < map->ntargets && !rc; ti++) {
        const cdc_map_target_t *t = &map->targets[ti];
        char tb[40], idx[300];
        if (!t->aggregates)
            continue;
        cdc_buf_reset(&b);
        cdc_buf_puts(&b, "CREATE TABLE IF NOT EXISTS ");
        qtab(pg, &b, t, "_contrib");
        cdc_buf_puts(&b, " (");
        for (uint32_t k = 0; k < t->nkey; k++) {
            cdc_pgs_qid_put(pg, &b, t->fields[t->key[k]].name);
            cdc_buf_printf(&b, " %s, ",
                           cdc_pgs_type(&t->fields[t->key[k]], 1, tb,
                                        sizeof(tb)));
        }
        cdc_buf_puts(&b, "_mapping text NOT NULL, _row text NOT NULL, _rank "
                         "text COLLATE \"C\" NOT NULL, _deleted boolean NOT "
                         "NULL, ");
        for (uint32_t f = 0; f < t->nfields; f++) {
            if (!t->fields[f].agg)
                continue;
            cdc_pgs_qid_put(pg, &b, t->fields[f].name);
            cdc_buf_printf(&b, " %s, ", ctype(&t->fields[f], 1, tb,
                                              sizeof(tb)));
        }
        cdc_buf_puts(&b, "PRIMARY KEY (_mapping, _row))");
        if (!create) {
            /* it must be there: say what to run */
            char *q = NULL;
            cdc_buf_t name = CDC_BUF_INIT;
            const char *p[1];
            PGresult *r;
            qtab(pg, &name, t, "_contrib");
            p[0] = name.p;
            r = PQexecParams(pg, "SELECT to_regclass($1) IS NOT NULL", 1, NULL,
                             p, NULL, NULL, 0);
            if (PQresultStatus(r) != PGRES_TUPLES_OK)
                rc = cdc_pgs_fail(pg, r, "checking the contributions table",
                                  AGG_DATA_HINT, err);
            else if (strcmp(PQgetvalue(r, 0, 0), "t") &&
                     writes_aggs(map, source, t)) {
                cdc_err_set(err, CDC_EXIT_CONFIG, 0, "postgres sink: target "
                            "%s has aggregates but the contributions table "
                            "%s is missing", t->name, name.p);
                cdc_err_hint(err, "set postgres_sink.create_tables=true, or "
                             "run: %s; and an index on its key columns "
                             "(docs/MAPPINGS.md, Aggregates)", b.p);
                rc = -1;
            }
            PQclear(r);
            free(q);
            cdc_buf_free(&name);
            continue;
        }
        if (exec(pg, b.p, "creating a contributions table", err)) {
            cdc_err_hint(err, "target %s has aggregates: the sink keeps each "
                         "source row's contribution in %s_contrib; grant "
                         "CREATE on the schema or create it yourself "
                         "(docs/MAPPINGS.md, Aggregates)", t->name, t->table);
            rc = -1;
            break;
        }
        snprintf(idx, sizeof(idx), "%s_contrib_key", t->table);
        cdc_buf_reset(&b);
        cdc_buf_puts(&b, "CREATE INDEX IF NOT EXISTS ");
        cdc_pgs_qid_put(pg, &b, idx);
        cdc_buf_puts(&b, " ON ");
        qtab(pg, &b, t, "_contrib");
        cdc_buf_puts(&b, " (");
        for (uint32_t k = 0; k < t->nkey; k++) {
            if (k)
                cdc_buf_puts(&b, ", ");
            cdc_pgs_qid_put(pg, &b, t->fields[t->key[k]].name);
        }
        cdc_buf_puts(&b, ")");
        rc = exec(pg, b.p, "creating the contributions index", err);
    }
    cdc_buf_free(&b);
    return rc;
}

/* ---- per batch -------------------------------------------------------------- */

/* one COPY text field */
static void cput(cdc_buf_t *c, const char *s, size_t len, int isnull, int last)
{
    if (isnull)
        cdc_buf_puts(c, "\\N");
    else
        for (size_t i = 0; i < len; i++) {
            char ch = s[i];
            if (ch == '\\' || ch == '\t' || ch == '\n' || ch == '\r') {
                cdc_buf_putc(c, '\\');
                ch = ch == '\\' ? '\\' : ch == '\t' ? 't' : ch == '\n' ? 'n'
                                                                       : 'r';
            }
            cdc_buf_putc(c, ch);
        }
    cdc_buf_putc(c, last ? '\n' : '\t');
}

static int copy_in(PGconn *pg, const char *table, const cdc_buf_t *data,
                   cdc_err_t *err)
{
    char q[128];
    PGresult *r;

    snprintf(q, sizeof(q), "COPY %s FROM STDIN", table);
    r = PQexec(pg, q);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        cdc_pgs_fail(pg, r, "staging contributions (COPY)", AGG_DATA_HINT, err);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    if ((data->len && PQputCopyData(pg, data->p, (int)data->len) != 1) ||
        PQputCopyEnd(pg, NULL) != 1)
        return cdc_pgs_fail(pg, NULL, "staging contributions (COPY data)",
                            AGG_DATA_HINT, err);
    r = PQgetResult(pg);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        cdc_pgs_fail(pg, r, "staging contributions (COPY)", AGG_DATA_HINT, err);
        PQclear(r);
        while ((r = PQgetResult(pg)))
            PQclear(r);
        return -1;
    }
    PQclear(r);
    while ((r = PQgetResult(pg)))
        PQclear(r);
    return 0;
}

/* "a.k0 = b.k0 AND ..." over the key columns (b: quoted names too) */
static void key_join(PGconn *pg, cdc_buf_t *b, const cdc_map_target_t *t,
                     const char *x, const char *y)
{
    for (uint32_t k = 0; k < t->nkey; k++) {
        if (k)
            cdc_buf_puts(b, " AND ");
        cdc_buf_printf(b, "%s.", x);
        cdc_pgs_qid_put(pg, b, t->fields[t->key[k]].name);
        cdc_buf_printf(b, " = %s.", y);
        cdc_pgs_qid_put(pg, b, t->fields[t->key[k]].name);
    }
}

static void key_cols(PGconn *pg, cdc_buf_t *b, const cdc_map_target_t *t,
                     const char *alias)
{
    for (uint32_t k = 0; k < t->nkey; k++) {
        if (k)
            cdc_buf_puts(b, ", ");
        if (alias)
            cdc_buf_printf(b, "%s.", alias);
        cdc_pgs_qid_put(pg, b, t->fields[t->key[k]].name);
    }
}

/* The statements of one target: everything after the COPYs. */
static void target_sql(PGconn *pg, cdc_buf_t *b, const cdc_map_target_t *t,
                       const char *cs, const char *ck, int rank)
{
    char tb[40];

    /* 2. the keys the staged rows contributed to so far */
    cdc_buf_printf(b, "INSERT INTO %s SELECT ", ck);
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_printf(b, "%sc.", k ? ", " : "");
        cdc_pgs_qid_put(pg, b, t->fields[t->key[k]].name);
        cdc_buf_puts(b, "::text");
    }
    cdc_buf_puts(b, " FROM ");
    qtab(pg, b, t, "_contrib");
    cdc_buf_printf(b, " c JOIN %s s ON c._mapping = s._mapping AND c._row = "
                   "s._row; ", cs);
    /* 3. the states, where they rank higher */
    cdc_buf_puts(b, "INSERT INTO ");
    qtab(pg, b, t, "_contrib");
    cdc_buf_puts(b, " AS c (");
    key_cols(pg, b, t, NULL);
    cdc_buf_puts(b, ", _mapping, _row, _rank, _deleted");
    for (uint32_t f = 0; f < t->nfields; f++)
        if (t->fields[f].agg) {
            cdc_buf_puts(b, ", ");
            cdc_pgs_qid_put(pg, b, t->fields[f].name);
        }
    cdc_buf_puts(b, ") SELECT ");
    for (uint32_t k = 0; k < t->nkey; k++)
        cdc_buf_printf(b, "%ss.k%u::%s", k ? ", " : "", k,
                       cdc_pgs_type(&t->fields[t->key[k]], 0, tb, sizeof(tb)));
    cdc_buf_puts(b, ", s._mapping, s._row, s._rank, s._deleted");
    for (uint32_t f = 0, i = 0; f < t->nfields; f++)
        if (t->fields[f].agg)
            cdc_buf_printf(b, ", s.v%u::%s", i++,
                           ctype(&t->fields[f], 0, tb, sizeof(tb)));
    cdc_buf_printf(b, " FROM %s s ON CONFLICT (_mapping, _row) DO UPDATE SET ",
                   cs);
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_pgs_qid_put(pg, b, t->fields[t->key[k]].name);
        cdc_buf_puts(b, " = EXCLUDED.");
        cdc_pgs_qid_put(pg, b, t->fields[t->key[k]].name);
        cdc_buf_puts(b, ", ");
    }
    cdc_buf_puts(b, "_rank = EXCLUDED._rank, _deleted = EXCLUDED._deleted");
    for (uint32_t f = 0; f < t->nfields; f++)
        if (t->fields[f].agg) {
            cdc_buf_puts(b, ", ");
            cdc_pgs_qid_put(pg, b, t->fields[f].name);
            cdc_buf_puts(b, " = EXCLUDED.");
            cdc_pgs_qid_put(pg, b, t->fields[f].name);
        }
    cdc_buf_puts(b, " WHERE EXCLUDED._rank > c._rank; ");
    /* 4. the aggregates of the touched keys, set-based */
    cdc_buf_puts(b, "WITH k AS (SELECT DISTINCT ");
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_printf(b, "%sk%u::%s AS ", k ? ", " : "", k,
                       cdc_pgs_type(&t->fields[t->key[k]], 0, tb, sizeof(tb)));
        cdc_pgs_qid_put(pg, b, t->fields[t->key[k]].name);
    }
    cdc_buf_printf(b, " FROM %s WHERE ", ck);
    for (uint32_t k = 0; k < t->nkey; k++)
        cdc_buf_printf(b, "%sk%u IS NOT NULL", k ? " AND " : "", k);
    cdc_buf_puts(b, "), a AS (SELECT ");
    key_cols(pg, b, t, "k");
    cdc_buf_puts(b, ", count(c._row) AS _n");
    for (uint32_t f = 0; f < t->nfields; f++) {
        const cdc_map_field_t *fd = &t->fields[f];
        const char *fn = fd->agg == CDC_AGG_SUM ? "sum"
                         : fd->agg == CDC_AGG_MIN ? "min"
                         : fd->agg == CDC_AGG_MAX ? "max" : "count";
        if (!fd->agg)
            continue;
        cdc_buf_printf(b, ", %s(%sc.", fn, fd->agg == CDC_AGG_COUNT_DISTINCT
                                               ? "DISTINCT " : "");
        cdc_pgs_qid_put(pg, b, fd->name);
        if ((fd->agg == CDC_AGG_MIN || fd->agg == CDC_AGG_MAX) &&
            fd->type == CDC_MT_TEXT)
            cdc_buf_puts(b, " COLLATE \"C\"");
        cdc_buf_printf(b, ")::%s AS ", cdc_pgs_type(fd, 1, tb, sizeof(tb)));
        cdc_pgs_qid_put(pg, b, fd->name);
    }
    cdc_buf_puts(b, " FROM k LEFT JOIN ");
    qtab(pg, b, t, "_contrib");
    cdc_buf_puts(b, " c ON ");
    key_join(pg, b, t, "c", "k");
    cdc_buf_puts(b, " AND NOT c._deleted GROUP BY ");
    key_cols(pg, b, t, "k");
    /* rows only aggregates made go with their last contribution */
    cdc_buf_puts(b, "), d AS (DELETE FROM ");
    qtab(pg, b, t, "");
    cdc_buf_puts(b, " w USING a WHERE ");
    key_join(pg, b, t, "w", "a");
    cdc_buf_puts(b, " AND a._n = 0 AND ");
    cdc_pgrank_none(pg, b, t, "w", rank); /* no field has provenance */
    cdc_buf_puts(b, ") INSERT INTO ");
    qtab(pg, b, t, "");
    cdc_buf_puts(b, " AS w (");
    key_cols(pg, b, t, NULL);
    for (uint32_t f = 0; f < t->nfields; f++)
        if (t->fields[f].agg) {
            cdc_buf_puts(b, ", ");
            cdc_pgs_qid_put(pg, b, t->fields[f].name);
        }
    cdc_buf_puts(b, rank ? ") SELECT " : ", _provenance) SELECT ");
    key_cols(pg, b, t, "a");
    for (uint32_t f = 0; f < t->nfields; f++)
        if (t->fields[f].agg) {
            cdc_buf_puts(b, ", a.");
            cdc_pgs_qid_put(pg, b, t->fields[f].name);
        }
    cdc_buf_puts(b, rank ? " FROM a WHERE (a._n > 0"
                         : ", '{}'::jsonb FROM a WHERE (a._n > 0");
    if (t->tombstones) {
        /* a dead row stays dead: its tombstone keeps the key */
        cdc_buf_puts(b, " AND NOT EXISTS (SELECT 1 FROM ");
        qtab(pg, b, t, "_tombstones");
        cdc_buf_puts(b, " tb WHERE ");
        key_join(pg, b, t, "tb", "a");
        cdc_buf_puts(b, ")");
    }
    cdc_buf_puts(b, ") OR EXISTS (SELECT 1 FROM ");
    qtab(pg, b, t, "");
    cdc_buf_puts(b, " x WHERE ");
    key_join(pg, b, t, "x", "a");
    cdc_buf_puts(b, " AND NOT ");
    cdc_pgrank_none(pg, b, t, "x", rank);
    cdc_buf_puts(b, ") ON CONFLICT (");
    key_cols(pg, b, t, NULL);
    cdc_buf_puts(b, ") DO UPDATE SET ");
    {
        int first = 1;
        cdc_buf_t l = CDC_BUF_INIT, r = CDC_BUF_INIT;
        for (uint32_t f = 0; f < t->nfields; f++) {
            if (!t->fields[f].agg)
                continue;
            if (!first) {
                cdc_buf_puts(b, ", ");
                cdc_buf_puts(&l, ", ");
                cdc_buf_puts(&r, ", ");
            }
            first = 0;
            cdc_pgs_qid_put(pg, b, t->fields[f].name);
            cdc_buf_puts(b, " = EXCLUDED.");
            cdc_pgs_qid_put(pg, b, t->fields[f].name);
            cdc_buf_puts(&l, "w.");
            cdc_pgs_qid_put(pg, &l, t->fields[f].name);
            cdc_buf_puts(&r, "EXCLUDED.");
            cdc_pgs_qid_put(pg, &r, t->fields[f].name);
        }
        /* ROW(): one field is a single value, not a row */
        cdc_buf_printf(b, " WHERE ROW(%s) IS DISTINCT FROM ROW(%s)", l.p, r.p);
        cdc_buf_free(&l);
        cdc_buf_free(&r);
    }
}

typedef struct pick {
    const cdc_wide_op_t *op; /* the best state of its (mapping, row) */
} pick_t;

void cdc_pgw_agg_lock_sql(PGconn *pg, const cdc_map_target_t *t,
                          cdc_buf_t *b)
{
    char lk[300], *q;
    snprintf(lk, sizeof(lk), "autoglm_cdc_agg:%s.%s", t->schema, t->table);
    q = cdc_pgs_qlit(pg, lk);
    cdc_buf_printf(b, "SELECT pg_advisory_xact_lock(hashtext(%s))", q);
    free(q);
}

int cdc_pgw_agg_apply(PGconn *pg, const cdc_map_t *map,
                      const cdc_wide_ops_t *ops, const unsigned char *rmode,
                      cdc_err_t *err)
{
    cdc_buf_t sql = CDC_BUF_INIT, cs_data = CDC_BUF_INIT, ck_data = CDC_BUF_INIT;
    cdc_buf_t ids = CDC_BUF_INIT;
    int rc = 0;

    for (uint32_t ti = 0; ti < map->ntargets && !rc; ti++) {
        const cdc_map_target_t *t = &map->targets[ti];
        cdc_strix_t ix = CDC_STRIX_INIT;
        char **names;
        pick_t *picks;
        size_t npicks = 0, ntouch = 0, nids = 0;
        uint32_t nagg = 0;
        char cs[48], ck[48];

        if (!t->aggregates)
            continue;
        for (uint32_t f = 0; f < t->nfields; f++)
            nagg += t->fields[f].agg != 0;
        /* the best state per (mapping, row): ranks are distinct per source
         * row, so a strictly greater one replaces */
        names = cdc_xcalloc(ops->n + 1, sizeof(char *));
        picks = cdc_xcalloc(ops->n + 1, sizeof(*picks));
        cdc_buf_reset(&ck_data);
        for (uint32_t i = 0; i < ops->n; i++) {
            const cdc_wide_op_t *op = &ops->ops[i];
            int at;
            if (op->target != t)
                continue;
            int keyed = op->key != NULL;
            for (uint32_t k = 0; keyed && k < t->nkey; k++)
                keyed = op->key[k] != NULL;
            if (keyed && (op->kind == CDC_WIDE_UPSERT ||
                          op->kind == CDC_WIDE_DELETE ||
                          op->kind == CDC_WIDE_GROUP ||
                          op->kind == CDC_WIDE_CONTRIB)) {
                /* every key the batch touches: a new row counts 0 */
                for (uint32_t k = 0; k < t->nkey; k++)
                    cput(&ck_data, op->key[k], strlen(op->key[k]), 0,
                         k + 1 == t->nkey);
                ntouch++;
            }
            if (op->kind != CDC_WIDE_CONTRIB)
                continue;
            cdc_buf_reset(&ids);
            cdc_buf_printf(&ids, "%s\x1f%s", op->mapping->name, op->row);
            names[nids] = cdc_xstrdup(ids.p);
            at = cdc_strix_put(&ix, names[nids], (int)npicks);
            nids++;
            if (at < 0)
                picks[npicks++].op = op;
            else if (strcmp(op->crank, picks[at].op->crank) > 0)
                picks[at].op = op;
        }
        if (!ntouch && !npicks)
            goto next;
        snprintf(cs, sizeof(cs), "agw_contrib_s%u", ti);
        snprintf(ck, sizeof(ck), "agw_contrib_k%u", ti);
        cdc_buf_reset(&sql);
        if (t->agg_sources > 1) {
            /* several pipelines contribute: one recomputes at a time, so
             * each sees the others' committed contributions */
            cdc_pgw_agg_lock_sql(pg, t, &sql);
            cdc_buf_puts(&sql, "; ");
        }
        /* no "already exists" notice per batch */
        cdc_buf_puts(&sql, "SET LOCAL client_min_messages = warning; ");
        cdc_buf_printf(&sql, "CREATE TEMP TABLE IF NOT EXISTS %s (", cs);
        for (uint32_t k = 0; k < t->nkey; k++)
            cdc_buf_printf(&sql, "k%u text, ", k);
        cdc_buf_puts(&sql, "_mapping text, _row text, _rank text COLLATE \"C\", "
                           "_deleted boolean");
        for (uint32_t i = 0; i < nagg; i++)
            cdc_buf_printf(&sql, ", v%u text", i);
        cdc_buf_printf(&sql, ") ON COMMIT DELETE ROWS; CREATE TEMP TABLE IF "
                       "NOT EXISTS %s (", ck);
        for (uint32_t k = 0; k < t->nkey; k++)
            cdc_buf_printf(&sql, "%sk%u text", k ? ", " : "", k);
        /* a fragmented transaction runs several batches in one database
         * transaction: start empty */
        cdc_buf_printf(&sql, ") ON COMMIT DELETE ROWS; TRUNCATE %s, %s; RESET "
                       "client_min_messages", cs, ck);
        if (exec(pg, sql.p, "preparing the contribution staging tables", err))
            goto fail;
        cdc_buf_reset(&cs_data);
        for (size_t p = 0; p < npicks; p++) {
            const cdc_wide_op_t *op = picks[p].op;
            uint32_t i = 0;
            for (uint32_t k = 0; k < t->nkey; k++)
                cput(&cs_data, op->key[k], op->key[k] ? strlen(op->key[k]) : 0,
                     !op->key[k], 0);
            cput(&cs_data, op->mapping->name, strlen(op->mapping->name), 0, 0);
            cput(&cs_data, op->row, strlen(op->row), 0, 0);
            cput(&cs_data, op->crank, strlen(op->crank), 0, 0);
            cput(&cs_data, op->gone ? "t" : "f", 1, 0, nagg == 0);
            for (uint32_t f = 0; f < t->nfields; f++) {
                const cdc_wide_val_t *v = NULL;
                if (!t->fields[f].agg)
                    continue;
                for (uint32_t j = 0; j < op->nvals && !v; j++)
                    if (op->vals[j].field == f)
                        v = &op->vals[j];
                /* another mapping's aggregate: no value from this row */
                cput(&cs_data, v ? v->s : NULL, v ? v->len : 0,
                     !v || v->isnull, ++i == nagg);
            }
        }
        if ((npicks && copy_in(pg, cs, &cs_data, err)) ||
            (ntouch && copy_in(pg, ck, &ck_data, err)))
            goto fail;
        cdc_buf_reset(&sql);
        target_sql(pg, &sql, t, cs, ck, rmode ? rmode[ti] : 0);
        if (exec(pg, sql.p, "recomputing aggregates", err))
            goto fail;
        goto next;
    fail:
        rc = -1;
    next:
        for (size_t i = 0; i < nids; i++)
            free(names[i]);
        free(names);
        free(picks);
        cdc_strix_free(&ix);
    }
    cdc_buf_free(&sql);
    cdc_buf_free(&cs_data);
    cdc_buf_free(&ck_data);
    cdc_buf_free(&ids);
    return rc;
}

/* ---- retention (postgres_sink.tombstone_keep) ------------------------------- */

int cdc_pgw_agg_purge(PGconn *pg, const cdc_map_target_t *t,
                      int64_t cutoff_us, long *n, cdc_err_t *err)
{
    cdc_buf_t b = CDC_BUF_INIT, q = CDC_BUF_INIT;
    char cutoff[24];
    int rc;

    /* a gone state contributes nothing: removing it changes no aggregate.
     * Its commit time is the rank's first 16 hex digits (map_agg.c:
     * commit_us with the sign bit flipped); snapshot states (all zeros)
     * have none and stay.  The condition is checked again on the row
     * deleted, so a state that a racing batch replaced meanwhile stays. */
    cdc_hex(cutoff, (uint64_t)cutoff_us ^ ((uint64_t)1 << 63), 16)[0] = '\0';
    qtab(pg, &q, t, "_contrib");
    cdc_buf_printf(&b, "DELETE FROM %s AS c WHERE c.ctid = ANY(ARRAY(SELECT "
                   "o.ctid FROM %s AS o WHERE o._deleted AND o._rank < $1 AND "
                   "o._rank >= '1' LIMIT %d)) AND c._deleted AND c._rank < $1 "
                   "AND c._rank >= '1'", q.p, q.p, CDC_WIDE_PURGE_ROWS);
    rc = cdc_pgs_purge(pg, NULL, b.p, cutoff, "purging gone contributions", n,
                       err);
    cdc_buf_free(&b);
    cdc_buf_free(&q);
    return rc;
}
