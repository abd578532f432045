/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.h - the operational state of the running process: counters and
 * gauges for Prometheus (/metrics), the /status document, readiness
 * (/readyz) and the HTTP endpoint that serves them.
 *
 * One process-wide registry guarded by a mutex.  Writers are the pipeline
 * thread (cdc/pipeline.c), a source's own threads (cdc_metrics_source_state
 * may be called from any thread) and the backfill command; the only
 * reader is the HTTP thread.  Every setter is cheap (one uncontended lock)
 * and safe to call when no endpoint is running.
 *
 * Definitions (docs/OPERATIONS.md has the full list):
 *   lag      now - commit time up to which everything is delivered: 0 while
 *            the source is connected and caught up (idle, nothing in
 *            flight); now - commit time of the oldest undelivered txn while
 *            one is in flight; else now - commit time of the last
 *            delivered change (grows while the source is offline).
 *   latency  delivery time - commit time of the last delivered txn.
 *   last sync time  commit time of the last delivered txn.
 *
 * Configuration read by cdc_metrics_init / cdc_http_start:
 *   http.listen (ADDR:PORT or PORT; unset = no endpoint; 127.0.0.1 when
 *   only a port is given), http.token (bearer token for /metrics and
 *   /status; secret), ready.max_lag_s (300), ready.max_checkpoint_age_s
 *   (120), ready.sink_stall_s (60).  Plugins read their own keys for
 *   the metrics they register.
 */
#ifndef CDC_METRICS_H
#define CDC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "cdc/buf.h"
#include "cdc/change.h"
#include "cdc/conf.h"
#include "cdc/err.h"

/** @brief Reset the registry and take names and thresholds from conf
 *  (application_id, pipeline.name, source.type, sink.type, ready.*).
 *  Call before the other setters; calling it again starts afresh. */
int cdc_metrics_init(const cdc_conf_t *conf, cdc_err_t *err);
/** @brief Override the source / sink type names (static strings). */
void cdc_metrics_components(const char *source, const char *sink);

/* ---- pipeline ------------------------------------------------------ */
/** @brief A txn came from the source (after filtering): counts its
 *  changes per table and op.  tx borrowed. */
void cdc_metrics_txn(const cdc_txn_t *tx);
/** @brief The txn committed at commit_us was delivered (sink acked). */
void cdc_metrics_delivered(int64_t commit_us);
/** @brief Txns in flight (written, not yet delivered), their bytes and
 *  the commit time of the oldest (0 if none). */
void cdc_metrics_inflight(size_t txns, size_t bytes, int64_t oldest_commit_us);
/** @brief The source had nothing to give and nothing is in flight. */
void cdc_metrics_caught_up(int yes);
/** @brief A checkpoint was stored (stored_us 0 = now) or loaded at start
 *  (stored_us = its updated_us).  pos borrowed. */
void cdc_metrics_checkpoint(const cdc_pos_t *pos, int64_t commit_us,
                            int64_t stored_us);
/** @brief Source connection state; why (copied, redacted) may be NULL.
 *  Any thread.  A source that reconnects internally should call it. */
void cdc_metrics_source_state(int connected, const char *why);
/** @brief Sink state: ok = 0 after a failed write/poll/flush. */
void cdc_metrics_sink_state(int ok, const char *why);
/** @brief One successful reconnect of the source. */
void cdc_metrics_reconnect(void);
/** @brief Spill files of big transactions (PostgreSQL source): bytes
 *  written to them (counter) and files created (+1) or removed (-1). */
void cdc_metrics_spill(uint64_t bytes, int files);
/** @brief n changes were written to the dead-letter table or topic. */
void cdc_metrics_dead_letters(uint64_t n);
/** @brief Acknowledgement state of sink i (0-based, in the order of the
 *  pipeline's sinks; at most 8): txns it acknowledged, commit time of the
 *  last of them, txns in flight it has not acknowledged.  name copied. */
void cdc_metrics_sink_progress(int i, const char *name, uint64_t acked,
                               int64_t commit_us, size_t behind);

/* ---- metrics of plugins ---------------------------------------------- */
/* A plugin registers its own counters and gauges; the core names none.
 * They are rendered into /metrics (after the queue gauges) once a value
 * was set, and with a status_key into the sink object of /status. */
typedef struct cdc_metric cdc_metric_t;
/** @brief Register, or find again by name, a metric: name without the
 *  autoglm_cdc_ prefix, type "gauge" or "counter", one-line help,
 *  status_key (NULL: not in /status).  The handle stays valid for the
 *  process; cdc_metrics_init forgets every registration (register again
 *  after it).  NULL when the table (32 entries) is full. */
cdc_metric_t *cdc_metrics_register(const char *name, const char *type,
                                   const char *help, const char *status_key);
/** @brief Set the value of a registered metric (NULL: no-op). */
void cdc_metrics_set(cdc_metric_t *m, int64_t v);
/** @brief Forget the value of a registered metric: it is not rendered
 *  until set again (NULL: no-op). */
void cdc_metrics_unset(cdc_metric_t *m);
/** @brief A gauge read on demand: fn(arg) runs in the HTTP thread before
 *  each /metrics is rendered, and sets its metrics (it may do I/O with a
 *  short timeout of its own).  name identifies the hook: 0, or -1 when a
 *  hook of that name is there already (the first one stays) or the
 *  table (8 entries) is full.  Kept across cdc_metrics_init. */
int cdc_metrics_scrape_add(const char *name, void (*fn)(void *arg),
                           void *arg);
/** @brief Remove the hook name with arg (if there), waiting for a run of
 *  it in progress: arg may be freed after it returns. */
void cdc_metrics_scrape_remove(const char *name, void *arg);
/** @brief Run the scrape hooks (the HTTP thread, before rendering). */
void cdc_metrics_scrape(void);

/* ---- backfill ------------------------------------------------------ */
/** @brief Progress of a backfill: rows copied so far, tables left. */
void cdc_metrics_backfill(uint64_t rows_done, uint32_t tables_remaining);

/* ---- rendering (used by the HTTP thread and the tests) ------------- */
/** @brief Prometheus text exposition format 0.0.4 into b. */
void cdc_metrics_render_prom(cdc_buf_t *b, int64_t now_us);
/** @brief The /status JSON document into b. */
void cdc_metrics_render_status(cdc_buf_t *b, int64_t now_us);
/** @brief 1 if ready; else 0 and the reasons as a JSON array of strings
 *  into reasons (may be NULL). */
int cdc_metrics_ready(cdc_buf_t *reasons, int64_t now_us);
/** @brief Current lag in microseconds (see above). */
int64_t cdc_metrics_lag_us(int64_t now_us);
/** @brief Wall clock in microseconds since the epoch. */
int64_t cdc_metrics_now_us(void);

/* ---- HTTP endpoint (cdc/http.c) ------------------------------------ */
typedef struct cdc_http cdc_http_t;
/**
 * @brief Start the endpoint in its own thread if http.listen is set, and
 * record the running daemon in <state.dir>/<pipeline>.daemon ("pid=N",
 * and "url=http://ADDR:PORT" when listening) until cdc_http_stop.
 * @param out set to the handle (caller-owned, cdc_http_stop).
 * @returns 0, or -1 with err (bad address, port in use).
 */
int cdc_http_start(const cdc_conf_t *conf, cdc_http_t **out, cdc_err_t *err);
/** @brief Port actually bound (useful with port 0). */
int cdc_http_port(const cdc_http_t *h);
/** @brief Stop and free; NULL is a no-op. */
void cdc_http_stop(cdc_http_t *h);
/** The endpoint's connection table, as of the HTTP thread's last turn
 *  (at most HTTP_POLL_MS old), and its running totals. */
typedef struct cdc_http_stats {
    unsigned open;      /* connections not being closed by us */
    unsigned stuck;     /* of those, request line read, headers not */
    uint64_t refused;   /* connections refused: no room, none gave way */
    uint64_t evicted;   /* closed to make room for a new connection */
    uint64_t timed_out; /* closed for late headers (http.header_timeout_ms) */
    unsigned max_conn, max_per_addr; /* the limits of the table */
} cdc_http_stats_t;
/** @brief Fill *st (zeros for NULL or an endpoint that does not listen).
 *  @locality any thread. */
void cdc_http_stats(cdc_http_t *h, cdc_http_stats_t *st);

/* ---- the running daemon of a pipeline (cdc/status.c) ----------------- */
/**
 * @brief 1 if a process holds the pipeline's run lock (<state>/<pipeline>
 * .lock, cdc_state_lock_held): its pid, and the endpoint from
 * <state>/<pipeline>.daemon in url when that record is the same
 * process's ("" otherwise); 0 when nobody holds the lock, whatever a
 * (stale) record says.
 */
int cdc_daemon_running(const char *state, const char *pipeline, long *pid,
                       char *url, size_t urln);

/**
 * @brief The `status --json` rows of every pipeline of state_dir except
 * self, as a JSON array appended to out: a running peer is asked at its
 * recorded endpoint (token as bearer, timeout_ms per request); one that
 * does not answer shows "unknown" (it holds its run lock) or "offline"
 * with the reason in "error".  The token goes only where it is safe: a
 * record that is not a regular file of this uid closed to group and
 * others is not asked (a warning says why and how to fix it), and a URL
 * whose host is neither loopback nor the host of listen (http.listen) is
 * asked without the token.  Blocks up to timeout_ms per peer: call it
 * off the HTTP thread.  Returns the number of rows.
 */
int cdc_status_peers_json(const char *state_dir, const char *self,
                          const char *token, const char *listen,
                          int timeout_ms, cdc_buf_t *out);

#endif
