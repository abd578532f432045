/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg_wide_group.h - field groups in the PostgreSQL wide sink: the
 * candidates side table and the set-based recomputation of the groups of
 * a batch's keys (docs/MAPPINGS.md, "Field groups").
 */
#ifndef CDC_PG_WIDE_GROUP_H
#define CDC_PG_WIDE_GROUP_H

#include <libpq-fe.h>

#include "cdc/buf.h"
#include "cdc/err.h"
#include "mappings/map.h"

/**
 * @brief Inside the sink's setup transaction: create <table>_candidates
 * of every target with groups (create != 0), or check that it exists.
 * @returns 0, or -1 with err (CDC_EXIT_CONFIG when missing).
 */
int cdc_pgw_groups_setup(PGconn *pg, const cdc_map_t *map, int create,
                         cdc_err_t *err);

/**
 * @brief Inside the batch's transaction, after its upserts: store the
 * CDC_WIDE_GROUP operations of ops in the candidates tables (a candidate
 * is replaced only by a greater vrank), then recompute every group of the
 * touched keys and write it with its winner's provenance: per target one
 * lock statement, one candidates upsert, one wide-row upsert.
 * @returns 0, or -1 with err (SQLSTATE in err->detail).
 */
/* rmode: per target, 1 when its table keeps ranks in rank columns
 * (sinks/pg_rank.h), 0 (or NULL) for a _provenance column */
int cdc_pgw_groups_apply(PGconn *pg, const cdc_map_t *map,
                         const cdc_wide_ops_t *ops,
                         const unsigned char *rmode, cdc_err_t *err);

/* The advisory locks by which the batches that recompute field groups
 * (and reconcile --repair) take turns: one per hash bucket of the keys,
 * pg_advisory_xact_lock(CDC_PGW_GROUP_LOCK, bucket), taken in bucket
 * order; a key's bucket is hashtextextended(key, 19) & (buckets - 1). */
#define CDC_PGW_GROUP_LOCK 1735554416
#define CDC_PGW_GROUP_BUCKETS 256
/**
 * @brief Append the statement that takes the group locks: those of the
 *        buckets of the keys in the text array $1 (all == 0, a batch), or
 *        of every bucket (all != 0, reconcile --repair).
 */
void cdc_pgw_groups_lock_sql(cdc_buf_t *b, int all);
/**
 * @brief Retention: delete up to CDC_WIDE_PURGE_ROWS deleted candidates
 *        of t (tombstones of source rows) whose deletion's commit time is
 *        before cutoff_us, in one short transaction; *n how many.
 */
int cdc_pgw_groups_purge(PGconn *pg, const cdc_map_target_t *t,
                         int64_t cutoff_us, long *n, cdc_err_t *err);

#endif
