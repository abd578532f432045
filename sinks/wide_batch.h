/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wide_batch.h - the transaction batching shared by the wide-table sinks
 * (sinks/pg_wide.c, sinks/mysql_wide.c).
 *
 * A batch collects mapped operations of several source transactions; the
 * sink applies it in one database transaction together with the position
 * of its last source transaction (the offsets table), so a crash and
 * restart applies each change exactly once.  This module keeps the
 * bookkeeping: which txns are in the batch, the batch position, skipping
 * transactions already applied (position <= the stored one), mapping the
 * changes into operations, and acknowledging the txns once the batch is
 * committed.  The SQL side stays in each sink.
 */
#ifndef CDC_WIDE_BATCH_H
#define CDC_WIDE_BATCH_H

#include <stdint.h>

#include "cdc/change.h"
#include "cdc/conf.h"
#include "cdc/err.h"
#include "mappings/map.h"
#include "sinks/dead_letter.h"

typedef struct cdc_wide_batch {
    char stored[33];         /* position in the offsets table */
    int have_stored;
    int64_t batch_rows;      /* flush when this many operations are queued */
    int64_t flush_ms;        /* ... or when the batch is this old */
    cdc_txn_t **txns;        /* txns in the batch (borrowed from the pipeline) */
    size_t ntxns, captxns;
    char batch_pos[33];      /* position of the last ordered txn */
    cdc_pos_t batch_cpos;
    int64_t batch_commit_us;
    int64_t batch_start_us;
    uint64_t batch_changes;  /* source changes some mapping read */
    uint64_t skipped_dups;   /* txns skipped as already applied */
    int batch_unordered;     /* batch has txns without a position (Kafka) */
    /* errors.mode=dead-letter: a change that cannot be mapped goes to the
     * dead-letter table with the batch instead of stopping the pipeline */
    int dead_letter;
    cdc_dl_list_t dead;      /* the batch's dead letters */
    /* `dead-letter retry`: the batch holds re-mapped dead letters; the
     * sink deletes their rows instead of storing an offset */
    int retry;
    int64_t *retry_ids;
    uint32_t *retry_op0;     /* index of each retried letter's first op */
    size_t nretry, capretry;
    /* which change each op of the batch came from (dead letters of values
     * the database refuses), and the mode in which the sink applies one
     * change's ops alone: no position check, no offset, no dead letters
     * (1: committed, 2: rolled back, a dry run) */
    cdc_txn_t **op_tx;
    uint32_t *op_ch;
    uint32_t capop;
    int isolate;
    /* A fragmented transaction (cdc_txn_t.more/frag) is applied in ONE
     * database transaction: the first batch opens it, each batch of its
     * fragments is applied into it and acknowledged (no checkpoint moves:
     * the pipeline keeps the checkpoint before the transaction), and the
     * batch that holds its last fragment stores the offset and commits.
     * has_frag: the batch holds fragments; in_frag: the last txn added has
     * more set (the database transaction must stay open after the apply);
     * frag_open: the sink's database transaction is open across batches
     * (set and cleared by the sink); frag_dup: the last fragment's position
     * is already in the offsets table (applied before a crash): the sink
     * rolls the whole transaction back instead of committing it. */
    int has_frag, in_frag, frag_open, frag_dup;
    size_t batch_ends;       /* transactions the batch ends (its offsets
                                row's txns): ntxns less the fragments with
                                more set */
    /* Reconnecting in place (set by the sink; NULL: a lost connection
     * fails the batch, and the pipeline exits 69).  When applying a batch
     * finds the connection lost (CDC_EXIT_UNAVAILABLE, retriable), the
     * sink's reconnect(ctx) is tried at once, then with the engine's
     * backoff (cdc_backoff, cdc/flight.h), until it succeeds, the stop
     * token is set, or the database stayed unreachable for
     * reconnect_timeout_ms (the key reconnect_key): then the batch fails
     * as before.  After a reconnect the batch is applied again whole; its
     * transaction reads the offsets table first, so a batch whose COMMIT
     * reached the database before the loss is not applied twice.  Not for
     * a fragmented transaction already open across batches (its earlier
     * batches are gone with the session): that one fails as before. */
    int (*reconnect)(void *ctx, cdc_err_t *err);
    int64_t reconnect_timeout_ms;
    const char *reconnect_key;
    uint64_t reconnects;     /* successful reconnects in place */
    int reconnect_gave_up;   /* the bound passed once: the run ends, and
                                the final flushes do not wait again */
} cdc_wide_batch_t;

/**
 * @brief Before cdc_wide_batch_add(tx): 0 add it; 1 apply the batch first
 *        (a fragmented transaction starts while whole ones wait: they
 *        commit on their own); 2 the source began the open fragmented
 *        transaction again (a reconnect read it from its start): the sink
 *        rolls its database transaction back, then calls
 *        cdc_wide_batch_frag_reset() and adds tx.
 */
int cdc_wide_batch_frag_check(const cdc_wide_batch_t *b, const cdc_txn_t *tx);
/** @brief Forget the fragments of the batch (acknowledged: no checkpoint
 *  moves for them) after the sink rolled its transaction back. */
void cdc_wide_batch_frag_reset(cdc_wide_batch_t *b, cdc_wide_ops_t *ops);
/**
 * @brief 1 when the batch is already in the target database (a plain
 *        batch of whole transactions that ends at or before the offset
 *        stored there, read inside the sink's transaction): the sink
 *        commits without applying it.  Logs the skip.
 */
int cdc_wide_batch_already_applied(const cdc_wide_batch_t *b, const char *fac);
/**
 * @brief The wide sinks' write(): the fragment rules above, then add tx.
 *        flush applies the batch; rollback undoes the sink's open database
 *        transaction (called only when b->frag_open).  fac names the sink
 *        in the log.  0, or -1 with err.
 */
int cdc_wide_batch_write(cdc_wide_batch_t *b, cdc_map_t *map,
                         const char *source, cdc_wide_ops_t *ops,
                         cdc_txn_t *tx,
                         int (*flush)(void *ctx, cdc_err_t *err),
                         void (*rollback)(void *ctx), void *ctx,
                         const char *fac, cdc_err_t *err);

/**
 * @brief Add tx to the batch: skip it when already applied (its position
 *        is at or before the stored one), else map its changes into ops.
 * @returns 1 when the batch reached batch_rows and should be applied now,
 *          0 otherwise, -1 with err when a change cannot be mapped.
 */
int cdc_wide_batch_add(cdc_wide_batch_t *b, cdc_map_t *map, const char *source,
                       cdc_wide_ops_t *ops, cdc_txn_t *tx, cdc_err_t *err);
/**
 * @brief `dead-letter retry`: map change 0 of tx (decoded from dead letter
 *        id; orig_idx its index in the original txn) into ops and note id
 *        for deletion.  tx must outlive the batch's apply.
 * @returns 0, or -1 with err when it still cannot be mapped.
 */
int cdc_wide_batch_retry_add(cdc_wide_batch_t *b, cdc_map_t *map,
                             const char *source, cdc_wide_ops_t *ops,
                             cdc_txn_t *tx, uint32_t orig_idx, int64_t id,
                             cdc_err_t *err);
/* Columns of a dead-letter row as the sinks read them (in this order). */
enum { CDC_DLC_ID, CDC_DLC_CREATED, CDC_DLC_TABLE, CDC_DLC_OP, CDC_DLC_POS,
       CDC_DLC_ERROR, CDC_DLC_CHANGE, CDC_DLC_N };
#define CDC_DL_COLUMNS                                                        \
    "id, created_at, source_table, op, position, error, change_data"

/**
 * @brief `dead-letter list|retry` over the nrows dead letters of the
 *        pipeline, column c of row r being get(rows, r, c) (CDC_DLC_*):
 *        list prints them; retry maps each again into a batch that
 *        apply(sink) writes (b->retry set: the sink deletes the applied rows
 *        in the same transaction, and stores no offset).
 * @returns 0; CDC_EXIT_DATA with err when some still cannot be mapped (the
 *          others are applied); another exit code with err if apply fails.
 */
int cdc_wide_dead_letter(cdc_wide_batch_t *b, cdc_map_t *map,
                         const char *source, cdc_wide_ops_t *ops,
                         const char *action, FILE *out, size_t nrows,
                         const char *(*get)(void *rows, size_t r, int c),
                         void *rows, int (*apply)(void *sink, cdc_err_t *err),
                         void *sink, cdc_err_t *err);

/** @brief 1 if the batch is non-empty and old enough (or timeout_ms > 0). */
int cdc_wide_batch_due(const cdc_wide_batch_t *b, int timeout_ms);
/** @brief After the sink applied it: record the stored position. */
void cdc_wide_batch_committed(cdc_wide_batch_t *b);
/** @brief Acknowledge (ok) or fail every txn of the batch; on success
 *  also empty the batch and ops. */
void cdc_wide_batch_finish(cdc_wide_batch_t *b, cdc_wide_ops_t *ops, int ok);
/**
 * @brief Apply the batch with apply(ctx): retry up to 8 times with a short
 *        growing sleep while retriable(error) says so (deadlocks,
 *        serialisation failures), then acknowledge or fail every txn.
 *        A value the database refuses (CDC_ERR_F_DATA) makes it apply the
 *        batch change by change (b->isolate): with dead letters each in
 *        its own transaction (replays are no-ops by the ranks), keeping the
 *        refused ones, stored with the offset in a last transaction;
 *        without (b->isolate == 2: the sink rolls each back), to name the
 *        first refused change in err.
 * @returns 0 (also for an empty batch) or -1 with err.
 */
int cdc_wide_batch_apply(cdc_wide_batch_t *b, cdc_wide_ops_t *ops,
                         int (*apply)(void *ctx, cdc_err_t *err),
                         int (*retriable)(const cdc_err_t *err), void *ctx,
                         cdc_err_t *err);
/* Hint of a value the database refused (exit 65) */
#define CDC_WIDE_DATA_HINT                                                    \
    "a value of the batch does not fit its column of the wide table: "       \
    "compare the table's column types with the mapping's field types; "      \
    "nothing of the batch was written and it is read again on restart"

/** @brief 1 if a mapping of source writes target t. */
int cdc_wide_source_writes(const cdc_map_t *map, const char *source,
                           const cdc_map_target_t *t);

/* Tombstone retention (<prefix>.tombstone_keep / tombstone_purge_every). */
typedef struct cdc_wide_purge {
    int64_t keep_us;   /* 0 = keep forever */
    int64_t every_us;  /* at most one run per interval */
    int64_t next_us;   /* next run at or after (0: first poll) */
    /* optional: 1 if target t also has side tables whose deleted entries
     * the purge callback removes (PostgreSQL: candidates, votes,
     * contributions); such targets are purged without tombstones too */
    int (*side)(const cdc_map_target_t *t);
    int more;          /* set by the callback: a side table had more rows */
} cdc_wide_purge_t;

#define CDC_WIDE_PURGE_ROWS 10000 /* tombstones per target and run */

/** @brief Read prefix.tombstone_keep (default 0) and
 *  prefix.tombstone_purge_every (default 5m); -1 with err if bad. */
int cdc_wide_purge_conf(cdc_wide_purge_t *p, const cdc_conf_t *conf,
                        const char *prefix, cdc_err_t *err);
/**
 * @brief Between batches: when due, call purge(ctx, t, cutoff_us, &n, &e)
 *        for every tombstone target source writes (delete at most
 *        CDC_WIDE_PURGE_ROWS tombstones whose newest deletion is older than
 *        cutoff_us); log counts; a failure is a warning, retried at the next
 *        interval; a full run comes again after a second.
 */
void cdc_wide_purge_due(cdc_wide_purge_t *p, const cdc_map_t *map,
                        const char *source,
                        int (*purge)(void *ctx, const cdc_map_target_t *t,
                                     int64_t cutoff_us, long *n,
                                     cdc_err_t *err),
                        void *ctx, const char *fac);

/** @brief Log the skipped count (facility fac) and free the batch. */
void cdc_wide_batch_free(cdc_wide_batch_t *b, const char *fac);

#endif
