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
 * ops only (its stats hook too: cdc_flight_sink_stats), and publishes
 * (under the engine's mutex) how many views it acknowledged in order, as
 * soon as they are, between its writes; a view it published it never
 * touches again.  The sinks without own_thread fill the caches of the
 * envelope writer in the changes and tables: when there is one of them (a
 * Kafka topic beside a wide table) it gets a worker as well, so a sink
 * that blocks (a full producer queue, a topic being created) never stops
 * the engine from feeding the others; two or more of them share the
 * engine's thread.  The txns' changes and tables are otherwise shared
 * read-only.
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
/** @brief Have sink i publish its own counters (its ops->stats hook, if
 *  any) on the thread that drives it: at once on the engine's thread, or
 *  at the next turn of its worker (at the latest when the engine is
 *  freed). */
void cdc_flight_sink_stats(cdc_flight_t *f, int i);

/* ---- a reading thread, and reconnecting --------------------------------
 *
 * A source that reads on a thread of its own (the MySQL binlog reader)
 * hands its transactions to the engine's thread through ONE bounded queue,
 * the feed: the reading thread pushes (waiting for room when the feed is
 * full: back-pressure up to the socket), the engine's thread pops with a
 * timeout (the source's next()).  Bounded in transactions and in bytes
 * (a transaction counts arena.total + 256); one transaction always fits.
 * Wake-ups are batched: a waiting consumer is signalled after
 * CDC_FEED_BATCH transactions or, at the latest, when the reader hands
 * over before a read that may block (cdc_feed_handover); the reader is
 * woken when the feed drained to half.  An error of the reader reaches
 * pop after every transaction queued before it.  Stopping (cdc_feed_stop,
 * from the consumer) wakes a reader that waits for room or naps.
 *
 * Every source and sink that reconnects waits by ONE policy, cdc_backoff:
 * capped, jittered exponential backoff (delay d doubles from min to max;
 * each wait is uniform in [d/2, d]), slept with cdc_flight_nap or
 * cdc_feed_nap, which return within 100 ms of the stop token
 * (cdc_pipeline_stop) or the feed's stop.
 */
#define CDC_BACKOFF_MIN_MS 500
#define CDC_BACKOFF_MAX_MS 30000

typedef struct cdc_backoff {
    int64_t min_ms, max_ms;  /* first delay and cap (before jitter) */
    int64_t cur_ms;          /* the next delay */
    int attempt;             /* waits since the last reset */
    unsigned seed;
} cdc_backoff_t;

/** @brief Start a policy; 0 for min_ms / max_ms: 500 ms and 30 s. */
void cdc_backoff_init(cdc_backoff_t *b, int64_t min_ms, int64_t max_ms);
/** @brief After a success: the next wait starts at min_ms again. */
void cdc_backoff_reset(cdc_backoff_t *b);
/** @brief The wait before the next attempt (in [d/2, d]); d doubles. */
int64_t cdc_backoff_next(cdc_backoff_t *b);
/** @brief The policy as a formula, for sinks that schedule their retries
 *  instead of sleeping: the wait before attempt n (0-based) is
 *  d = min(min_ms * 2^n, max_ms), jittered by r to d/2 + r % (d/2 + 1). */
int64_t cdc_backoff_delay(int attempt, int64_t min_ms, int64_t max_ms,
                          unsigned r);
/** @brief Sleep ms; 1 (early) when the stop token or *stop (may be NULL)
 *  is set, else 0. */
int cdc_flight_nap(int64_t ms, const volatile int *stop);

#define CDC_FEED_BATCH 64

typedef struct cdc_feed cdc_feed_t;

/** @brief A feed of at most max_txns (>= 1) and max_bytes (>= 1). */
cdc_feed_t *cdc_feed_new(size_t max_txns, size_t max_bytes);
/** @brief Free the feed and every txn still in it (no thread uses it). */
void cdc_feed_free(cdc_feed_t *q);
/** @brief Reader: queue tx (ownership), waiting for room.  -1 when the
 *  feed was stopped (tx freed). */
int cdc_feed_push(cdc_feed_t *q, cdc_txn_t *tx);
/** @brief Reader, before a read that may block: wake a waiting consumer
 *  for what is queued, unless more_ready (may be NULL) says more input is
 *  already there and the oldest unsignalled txn is younger than 1 ms. */
void cdc_feed_handover(cdc_feed_t *q, int (*more_ready)(void *ctx),
                       void *ctx);
/** @brief Reader: hand err to the consumer (after what is queued). */
void cdc_feed_fail(cdc_feed_t *q, const cdc_err_t *err);
/** @brief Reader of a finite input: no more txns; pop returns CDC_SRC_EOF
 *  once what is queued was taken (a waiting consumer is woken). */
void cdc_feed_end(cdc_feed_t *q);
/** @brief Reader: sleep ms unless stopped; 1 when stopping (the feed's
 *  stop or the stop token). */
int cdc_feed_nap(cdc_feed_t *q, int64_t ms);
/** @brief 1 once cdc_feed_stop was called. */
int cdc_feed_stopped(cdc_feed_t *q);
/** @brief Consumer: stop the reader (wakes it where it waits). */
void cdc_feed_stop(cdc_feed_t *q);
/**
 * @brief Consumer: take the oldest txn, waiting up to timeout_ms.
 * @returns CDC_SRC_TXN with *out, CDC_SRC_IDLE, CDC_SRC_EOF after
 *          cdc_feed_end, or -1 with the reader's error once nothing is
 *          queued before it.
 */
int cdc_feed_pop(cdc_feed_t *q, cdc_txn_t **out, int timeout_ms,
                 cdc_err_t *err);
/** @brief Transactions and bytes queued now. */
size_t cdc_feed_count(cdc_feed_t *q);
size_t cdc_feed_bytes(cdc_feed_t *q);

#endif
