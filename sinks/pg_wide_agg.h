/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg_wide_agg.h - aggregate fields in the PostgreSQL wide sink
 * (docs/MAPPINGS.md, Aggregates).  Per target with aggregates the sink
 * keeps <table>_contrib: one row per (mapping, source row) with the
 * highest-ranked state of that row's contribution.  Per batch, inside
 * the batch's transaction (the one that stores the offset):
 *
 *   1. stage the batch's contribution states (the best per source row)
 *      and the keys the batch touched (COPY into temporary tables);
 *   2. add the keys the staged rows contributed to before (moves);
 *   3. upsert the states where their rank is strictly greater;
 *   4. recompute the aggregate fields of every touched key from the live
 *      contributions in ONE statement per target, which also inserts the
 *      rows that only aggregates make and deletes those that lost their
 *      last contribution.
 */
#ifndef CDC_PG_WIDE_AGG_H
#define CDC_PG_WIDE_AGG_H

#include <libpq-fe.h>

#include "cdc/buf.h"
#include "cdc/err.h"
#include "mappings/map.h"

/**
 * @brief At start, inside the sink's DDL transaction: create the
 *        contributions tables of the targets with aggregates that source
 *        writes (create), or check that they exist (exit 78 naming the
 *        table and the CREATE to run).
 */
int cdc_pgw_agg_setup(PGconn *pg, const cdc_map_t *map, const char *source,
                      int create, cdc_err_t *err);
/** @brief In the batch's transaction, after the upserts: steps 1-4 for
 *  every target with aggregates the batch's ops touch.  0 or -1 with err
 *  (class 22: a data error; SQLSTATE in the detail).  rmode: per
 *  target, 1 when its table keeps ranks in rank columns (pg_rank.h),
 *  0 for a _provenance column (NULL: all 0). */
int cdc_pgw_agg_apply(PGconn *pg, const cdc_map_t *map,
                      const cdc_wide_ops_t *ops, const unsigned char *rmode,
                      cdc_err_t *err);

/**
 * @brief Append "SELECT pg_advisory_xact_lock(hashtext(
 *        'autoglm_cdc_agg:<schema>.<table>'))": the lock by which the
 *        pipelines contributing to t's aggregates (t->agg_sources > 1) and
 *        reconcile --repair recompute them one at a time.
 */
void cdc_pgw_agg_lock_sql(PGconn *pg, const cdc_map_target_t *t,
                          cdc_buf_t *b);
/**
 * @brief Retention: delete up to CDC_WIDE_PURGE_ROWS gone contributions
 *        of t whose change's commit time is before cutoff_us, in one
 *        short transaction; *n how many.
 */
int cdc_pgw_agg_purge(PGconn *pg, const cdc_map_target_t *t,
                      int64_t cutoff_us, long *n, cdc_err_t *err);

#endif
