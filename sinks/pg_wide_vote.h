/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg_wide_vote.h - per-source state of the PostgreSQL wide sink for the
 * fields whose value is a function of every source's current value
 * (cdc_map_field_t.per_source: rules vote, weighted_mean, and weighted
 * with confidence; mappings/map_vote.c).
 *
 * Each source's current value and score of such a field lives in a side
 * table <table>_votes (the key columns, _field, _source, _value, _rank,
 * _score, _deleted, _t; primary key key + _field + _source): a source's
 * entry is replaced only by a change of higher rank from that source, so
 * it is a max lattice per source.  After the batch's upserts the touched
 * keys' fields are recomputed set-based from the table, with the exact
 * arithmetic of cdc_vote_compute(), and written to the wide row with
 * their provenance.  Everything runs in the batch's transaction; the
 * batch's wide rows are locked first (inserted when missing, then FOR
 * UPDATE, in key order) so that two pipelines never recompute one key
 * from each other's uncommitted state.
 */
#ifndef CDC_PG_WIDE_VOTE_H
#define CDC_PG_WIDE_VOTE_H

#include <libpq-fe.h>

#include "cdc/buf.h"
#include "cdc/err.h"
#include "mappings/map.h"

typedef struct cdc_pgv {
    PGconn *pg;
    const cdc_map_t *map;
    /* the sink's error reporter (SQLSTATE in detail, retriable codes) */
    int (*pgerr)(void *ctx, PGresult *r, const char *what, cdc_err_t *err);
    void *ctx;
    /* per target: 1 when its table keeps ranks in rank columns
     * (sinks/pg_rank.h), 0 (or NULL) for a _provenance column */
    const unsigned char *rmode;
} cdc_pgv_t;

/** @brief 1 if target t has a per-source field. */
int cdc_pgv_target(const cdc_map_target_t *t);
/** @brief "<table>_votes" of target t. */
void cdc_pgv_table(const cdc_map_target_t *t, char *out, size_t n);
/** @brief Create the votes table of every target that needs one (create),
 *  or check that it exists (!create: exit 78 with the CREATE to run) for
 *  the targets source writes.  Inside the caller's transaction. */
int cdc_pgv_create(cdc_pgv_t *v, int create, const char *source,
                   cdc_err_t *err);
/* The advisory locks of the votes (reconcile --repair takes them too,
 * through cdc_pgv_lock): per hash bucket of the keys,
 * pg_advisory_xact_lock(CDC_PGV_LOCK, bucket) in bucket order (the
 * buckets of pg_wide_group.h, their own key space); and per target the
 * purge lock, hashtext(CDC_PGV_PURGE_LOCK "<schema>.<table>"), which the
 * batches take shared and the retention purge exclusive. */
#define CDC_PGV_LOCK 1735554417
#define CDC_PGV_PURGE_LOCK "autoglm_cdc_votes:"
/** @brief Before anything of the batch: take the advisory locks of the
 *  hash buckets of the keys whose per-source fields the batch changes
 *  (bucket order) and the votes table's purge lock (shared). */
int cdc_pgv_lock(cdc_pgv_t *v, const cdc_wide_ops_t *ops, cdc_err_t *err);
/** @brief After the batch's upserts: store the batch's per-source entries
 *  (higher rank only) and recompute the touched fields of their keys. */
int cdc_pgv_apply(cdc_pgv_t *v, const cdc_wide_ops_t *ops, cdc_err_t *err);

/**
 * @brief Retention: delete up to CDC_WIDE_PURGE_ROWS entries of t's
 *        votes table whose key and field have only row deletes' entries,
 *        all older than cutoff_us, in one short transaction; *n how many.
 */
int cdc_pgv_purge(cdc_pgv_t *v, const cdc_map_target_t *t, int64_t cutoff_us,
                  long *n, cdc_err_t *err);

#endif
