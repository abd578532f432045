/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flight.h - the delivery engine: transactions in flight between one
 * source and one or more sinks.
 *
 * THE INVARIANT (stated here once; cdc/pipeline.c, the decode command and
 * backfill rely on it, tests/unit/t_flight.c tests it):
 *
 *   The stored checkpoint is the end of the unbroken acknowledged prefix:
 *   the position of the last transaction end (a txn without `more`) such
 *   that it and every transaction before it were acknowledged by EVERY
 *   sink (view pending == 0 and not failed).  With several sinks this is
 *   the minimum over the sinks.  A fragment (tx->more) is never a resume
 *   point: the progress callback is not called for it.
 *
 * The ring keeps transactions in source order.  A txn is handed to every
 * sink by cdc_flight_write; each sink acknowledges on its own (on a view
 * of the txn: one shallow copy per sink that shares the changes, with its
 * own pending/failed, so sinks never see each other's counters).  A txn is
 * freed only once every sink acknowledged it and every txn before it:
 * then the progress callback is told, in source order.
 *
 * Bounded: cdc_flight_full() is true at max_txns transactions or max_bytes
 * in flight; the caller then stops reading and serves the sinks (poll), so
 * a sink that is down holds the others back by at most that much.
 *
 * Stop token: cdc_pipeline_stop (below) is the one flag every command sets
 * from its signal handlers and every sink honours where it could block
 * (a full Kafka queue, a retry sleep, a broker that does not answer).
 *
 * Threads: one thread calls every function of one engine.  In a fan-out a
 * sink whose ops set own_thread (the wide sinks) runs on a worker thread of
 * its own: the engine queues its views to it, the worker calls that sink's
 * ops only, and publishes (under the engine's mutex) how many views it
 * acknowledged in order; a view it published it never touches again.  The
 * other sinks are driven from the engine's thread.  The txns' changes and
 * tables are shared read-only.
 */
#ifndef CDC_FLIGHT_H
#define CDC_FLIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "cdc/change.h"
#include "cdc/err.h"
#include "cdc/plugin.h"

/* The stop token: set (to the signal number, or 1) by a signal handler;
 * the loops stop at a transaction boundary, the sinks stop waiting. */
extern volatile int cdc_pipeline_stop;
/** SIGTERM, SIGINT and SIGHUP set the stop token; SIGPIPE is ignored. */
void cdc_flight_catch_signals(void);

typedef struct cdc_flight cdc_flight_t;

/** Called for each transaction end (in source order) once it joined the
 *  acknowledged prefix; tx is borrowed and freed right after. */
typedef void (*cdc_flight_progress_fn)(void *ctx, const cdc_txn_t *tx);

/** Acknowledgement state of one sink, for metrics and status. */
typedef struct cdc_flight_sink_stat {
    uint64_t acked;     /* txn ends this sink acknowledged (its own prefix) */
    int64_t commit_us;  /* commit time of the last of them (0: none) */
    cdc_pos_t pos;      /* its position (zero: none yet) */
    size_t behind;      /* txns in the ring this sink has not acknowledged */
} cdc_flight_sink_stat_t;

/**
 * @brief New engine over nsinks (>= 1) created sinks (borrowed; the caller
 * destroys them after cdc_flight_free).  max_txns / max_bytes bound the
 * ring (0: unbounded).  progress may be NULL.
 */
cdc_flight_t *cdc_flight_new(cdc_sink_t *const *sinks, int nsinks,
                             size_t max_txns, size_t max_bytes,
                             cdc_flight_progress_fn progress, void *ctx);
/** @brief Free the engine and every txn still in it (not reported). */
void cdc_flight_free(cdc_flight_t *f);

/** @brief 1 when the caller must not write more before polling. */
int cdc_flight_full(const cdc_flight_t *f);
/** @brief Transactions (incl. fragments) and bytes in flight. */
size_t cdc_flight_count(const cdc_flight_t *f);
size_t cdc_flight_bytes(const cdc_flight_t *f);
/** @brief Commit time of the oldest txn in flight (0 if none). */
int64_t cdc_flight_oldest_commit_us(const cdc_flight_t *f);

/**
 * @brief Take tx (ownership) and write it to every sink.  -1 with err when
 * a sink refused it: tx stays in the ring, failed for that sink (and not
 * written to the sinks after it), so the prefix never passes it.
 */
int cdc_flight_write(cdc_flight_t *f, cdc_txn_t *tx, cdc_err_t *err);
/** @brief Serve delivery reports: the timeout goes to the sink furthest
 *  behind, the others are polled without waiting.  -1 on a sink error. */
int cdc_flight_poll(cdc_flight_t *f, int timeout_ms, cdc_err_t *err);
/**
 * @brief Retire the acknowledged prefix, reporting each transaction end to
 * the progress callback.  -1 with err when the head failed on a sink.
 */
int cdc_flight_advance(cdc_flight_t *f, cdc_err_t *err);
/** @brief Flush every sink that has txns in flight (all of them, even
 *  after one failed), then advance.  -1 with the first error. */
int cdc_flight_flush(cdc_flight_t *f, int timeout_ms, cdc_err_t *err);

/** @brief Number of sinks, and the acknowledgement state of sink i. */
int cdc_flight_nsinks(const cdc_flight_t *f);
void cdc_flight_sink_stat(const cdc_flight_t *f, int i,
                          cdc_flight_sink_stat_t *out);

#endif
