/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg_sql.h - SQL text and error helpers shared by the PostgreSQL wide
 * sink (pg_wide.c) and its side tables (pg_wide_group.c, pg_wide_vote.c,
 * pg_wide_agg.c), so that quoting, column types and the classification
 * of a failed statement are written once.
 */
#ifndef CDC_SINKS_PG_SQL_H
#define CDC_SINKS_PG_SQL_H

#include <stddef.h>

#include <libpq-fe.h>

#include "cdc/buf.h"
#include "cdc/err.h"
#include "mappings/map.h"

/** s as a quoted identifier (malloc'd; "" when libpq cannot quote it). */
char *cdc_pgs_qid(PGconn *pg, const char *s);
/** The same, appended to b. */
void cdc_pgs_qid_put(PGconn *pg, cdc_buf_t *b, const char *s);
/** s as a quoted literal (malloc'd). */
char *cdc_pgs_qlit(PGconn *pg, const char *s);
/** "schema"."name" in target t's schema ("public" when it has none);
 *  name NULL is t's own table.  malloc'd. */
char *cdc_pgs_qtab(PGconn *pg, const cdc_map_target_t *t, const char *name);
/**
 * The column type of field f: with typmod its declared numeric(p,s),
 * without (for casts) plain numeric.  buf (n bytes) holds the text when
 * it is built; may be NULL when typmod is 0.
 */
const char *cdc_pgs_type(const cdc_map_field_t *f, int typmod, char *buf,
                         size_t n);
/**
 * @brief Sets err for a statement `what` that failed with r (or the
 *        connection's error when r has none):
 *        lost connection  CDC_EXIT_UNAVAILABLE, retriable;
 *        SQLSTATE class 22 (a value the table cannot hold) CDC_EXIT_DATA
 *                         with data_hint (NULL: CDC_WIDE_DATA_HINT);
 *        anything else    CDC_EXIT_FAIL.
 * @returns -1.
 */
int cdc_pgs_fail(PGconn *pg, PGresult *r, const char *what,
                 const char *data_hint, cdc_err_t *err);

/**
 * @brief The retention purge of a side table, in its own short
 *        transaction (lock_timeout 5 s): lock_sql (statements ending in a SELECT, or NULL),
 *        then del_sql with $1 = param; *n the rows deleted.
 * @returns 0, or -1 with err (rolled back).
 */
int cdc_pgs_purge(PGconn *pg, const char *lock_sql, const char *del_sql,
                  const char *param, const char *what, long *n,
                  cdc_err_t *err);

#endif
