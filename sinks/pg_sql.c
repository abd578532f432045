/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg_sql.c - SQL text and error helpers of the PostgreSQL wide sink and
 * its side tables (pg_sql.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/util.h"
#include "sinks/pg_sql.h"
#include "sinks/wide_batch.h"

char *cdc_pgs_qid(PGconn *pg, const char *s)
{
    char *q = PQescapeIdentifier(pg, s, strlen(s));
    char *r = cdc_xstrdup(q ? q : "\"\"");
    PQfreemem(q);
    return r;
}

void cdc_pgs_qid_put(PGconn *pg, cdc_buf_t *b, const char *s)
{
    char *q = PQescapeIdentifier(pg, s, strlen(s));
    cdc_buf_puts(b, q ? q : "\"\"");
    PQfreemem(q);
}

char *cdc_pgs_qlit(PGconn *pg, const char *s)
{
    char *q = PQescapeLiteral(pg, s, strlen(s));
    char *r = cdc_xstrdup(q ? q : "''");
    PQfreemem(q);
    return r;
}

char *cdc_pgs_qtab(PGconn *pg, const cdc_map_target_t *t, const char *name)
{
    char *a = cdc_pgs_qid(pg, *t->schema ? t->schema : "public");
    char *b = cdc_pgs_qid(pg, name ? name : t->table);
    char *r = cdc_xmalloc(strlen(a) + strlen(b) + 2);
    sprintf(r, "%s.%s", a, b);
    free(a);
    free(b);
    return r;
}

const char *cdc_pgs_type(const cdc_map_field_t *f, int typmod, char *buf,
                         size_t n)
{
    switch (f->type) {
    case CDC_MT_INT: return "bigint";
    case CDC_MT_DECIMAL:
        if (typmod && f->precision && buf) {
            snprintf(buf, n, "numeric(%d,%d)", f->precision, f->scale);
            return buf;
        }
        return "numeric";
    case CDC_MT_DOUBLE: return "double precision";
    case CDC_MT_BOOL: return "boolean";
    case CDC_MT_TIMESTAMP: return "timestamptz";
    case CDC_MT_DATE: return "date";
    case CDC_MT_JSON: return "jsonb";
    default: return "text";
    }
}

int cdc_pgs_fail(PGconn *pg, PGresult *r, const char *what,
                 const char *data_hint, cdc_err_t *err)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    int lost = PQstatus(pg) != CONNECTION_OK;
    /* class 22 (data exception): a value the table cannot hold that the
     * mapping's limits did not catch (say a column the operator made
     * narrower); a data error, not a failure to restart from */
    int data = !lost && state && !strncmp(state, "22", 2);
    char msg[400];
    size_t l;

    snprintf(msg, sizeof(msg), "%s", r && PQresultErrorMessage(r)[0]
                                         ? PQresultErrorMessage(r)
                                         : PQerrorMessage(pg));
    l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
        msg[--l] = '\0';
    cdc_err_set(err, lost ? CDC_EXIT_UNAVAILABLE : data ? CDC_EXIT_DATA
                : CDC_EXIT_FAIL, lost ? CDC_ERR_F_RETRIABLE : data ?
                CDC_ERR_F_DATA : 0, "postgres sink: %s failed: %s", what, msg);
    if (state)
        cdc_err_detail(err, "SQLSTATE %s", state);
    if (data)
        cdc_err_hint(err, "%s", data_hint ? data_hint : CDC_WIDE_DATA_HINT);
    else if (state && !strcmp(state, "42P10"))
        cdc_err_hint(err, "the wide table needs a primary key or unique index "
                     "on the business key (or let the sink create it)");
    else if (lost)
        cdc_err_hint(err, "check that the target database is up; the "
                     "pipeline resumes from its checkpoint");
    return -1;
}

int cdc_pgs_purge(PGconn *pg, const char *lock_sql, const char *del_sql,
                  const char *param, const char *what, long *n,
                  cdc_err_t *err)
{
    const char *p[1] = {param};
    PGresult *r;
    int st;

    *n = 0;
    r = PQexec(pg, "BEGIN; SET LOCAL lock_timeout = '5s'");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        cdc_pgs_fail(pg, r, what, NULL, err);
        PQclear(r);
        goto fail;
    }
    PQclear(r);
    if (lock_sql) {
        r = PQexec(pg, lock_sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            cdc_pgs_fail(pg, r, what, NULL, err);
            PQclear(r);
            goto fail;
        }
        PQclear(r);
    }
    r = PQexecParams(pg, del_sql, 1, NULL, p, NULL, NULL, 0);
    st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK) {
        cdc_pgs_fail(pg, r, what, NULL, err);
        PQclear(r);
        goto fail;
    }
    *n = atol(PQcmdTuples(r));
    PQclear(r);
    r = PQexec(pg, "COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        cdc_pgs_fail(pg, r, what, NULL, err);
        PQclear(r);
        *n = 0;
        return -1;
    }
    PQclear(r);
    return 0;
fail:
    if (PQstatus(pg) == CONNECTION_OK)
        PQclear(PQexec(pg, "ROLLBACK"));
    return -1;
}
