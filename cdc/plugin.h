/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plugin.h - the source and sink interfaces.
 *
 * Every source and sink is one `static const` ops table registered in
 * cdc/registry.c.  The pipeline owns the loop: it asks the source for the
 * next committed transaction, hands it to the sink, and advances the
 * checkpoint only over the unbroken run of transactions the sink has
 * acknowledged (tx->pending == 0 && !tx->failed after sink poll/flush).
 *
 * Ownership: the pipeline owns every cdc_txn_t.  A sink may keep pointers
 * into a txn until it reports the txn delivered; the pipeline frees a txn
 * only after that.
 */
#ifndef CDC_PLUGIN_H
#define CDC_PLUGIN_H

#include <stdio.h>

#include "cdc/change.h"
#include "cdc/conf.h"
#include "cdc/err.h"

#define CDC_PLUGIN_ABI 1

/* cdc_source_ops_t.position */
#define CDC_POS_BINLOG 1
#define CDC_POS_LSN 2

/* Return values of source next(). */
#define CDC_SRC_TXN 1  /* *out holds a transaction (ownership to caller) */
#define CDC_SRC_IDLE 0 /* nothing within timeout */
#define CDC_SRC_EOF 2  /* finite source finished (files, backfill) */

typedef struct cdc_source cdc_source_t;
typedef struct cdc_sink cdc_sink_t;

typedef struct cdc_source_ops {
    const char *name; /* "mysql", "postgres", "binlog-file", ... */
    int abi;
    /** Create from configuration; no I/O yet. */
    cdc_source_t *(*create)(const cdc_conf_t *conf, cdc_err_t *err);
    /** Connect/open and position at resume (NULL: configured start). */
    int (*start)(cdc_source_t *src, const cdc_pos_t *resume, cdc_err_t *err);
    /** Next committed txn: CDC_SRC_TXN, CDC_SRC_IDLE, CDC_SRC_EOF or -1. */
    int (*next)(cdc_source_t *src, cdc_txn_t **out, int timeout_ms,
                cdc_err_t *err);
    /** Everything up to and including durable is delivered (optional). */
    int (*confirm)(cdc_source_t *src, const cdc_pos_t *durable,
                   cdc_err_t *err);
    void (*destroy)(cdc_source_t *src);
    /** Optional: other names of this source, NULL-terminated ("mariadb"
     *  for "mysql"); cdc_source_find() and the snapshot drivers' lookup
     *  (cdc_snap_find) accept them. */
    const char *const *aliases;
    /** Optional: check the value of a declared key (cdc/conf.h) whose
     *  format belongs to this plugin: a CDC_KT_CONNINFO string, or a key
     *  of an open CDC_KT_NAMESPACE that the plugin passes to its library.
     *  type is the key's cdc_ktype_t, where the place of the value or
     *  NULL.  0 when the value is fine or not the plugin's to judge; -1
     *  with err (CDC_EXIT_CONFIG, naming where and key) when it rejects
     *  it.  Called through cdc_plugin_check_value(). */
    int (*check_value)(int type, const char *key, const char *val,
                       const char *where, cdc_err_t *err);
    /** Optional: the part of cdc_pos_t this source resumes from
     *  (CDC_POS_BINLOG: file/offset or GTID set, CDC_POS_LSN: lsn); 0 =
     *  none that a checkpoint can be checked against. */
    int position;
} cdc_source_ops_t;

typedef struct cdc_sink_ops {
    const char *name; /* "stdout", "file", "kafka", ... */
    int abi;
    cdc_sink_t *(*create)(const cdc_conf_t *conf, cdc_err_t *err);
    /** Queue/write a txn.  Synchronous sinks set tx->pending = 0 before
     *  returning; asynchronous ones set tx->pending to the number of
     *  outstanding messages and decrement it from poll(). */
    int (*write)(cdc_sink_t *snk, cdc_txn_t *tx, cdc_err_t *err);
    /** Serve delivery reports for up to timeout_ms.  -1 on fatal error. */
    int (*poll)(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err);
    /** Wait until every written txn is delivered or failed. */
    int (*flush)(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err);
    void (*destroy)(cdc_sink_t *snk);
    /** Optional: `dead-letter list|retry` (sinks/dead_letter.h).  Prints
     *  to out; returns an exit code, with err when it is not 0. */
    int (*dead_letter)(cdc_sink_t *snk, const char *action, FILE *out,
                       cdc_err_t *err);
    /** Optional: the settings this sink wants for a bulk load (backfill).
     *  bulk is a copy of conf that the sink is then created from; set in
     *  it what conf leaves unset.  0, or -1 with err (a bad setting). */
    int (*bulk_hint)(const cdc_conf_t *conf, cdc_conf_t *bulk,
                     cdc_err_t *err);
    /** Optional: publish the sink's own counters to cdc/metrics.h (it
     *  registers them with cdc_metrics_register).  Called at most about
     *  twice a second, on the thread that drives the sink (a fan-out's
     *  worker, cdc/flight.h). */
    void (*stats)(cdc_sink_t *snk);
    /** Optional: 1 when the sink may run on a thread of its own beside the
     *  other sinks of a fan-out (cdc/flight.h): it reads the txn's changes
     *  and tables but none of the caches the envelope writer fills in them
     *  (the wide sinks).  Its ops are then called from that thread only. */
    int own_thread;
    /** Optional: check the value of a declared key (cdc/conf.h) whose
     *  format belongs to this plugin: a CDC_KT_CONNINFO string, or a key
     *  of an open CDC_KT_NAMESPACE that the plugin passes to its library.
     *  type is the key's cdc_ktype_t, where the place of the value or
     *  NULL.  0 when the value is fine or not the plugin's to judge; -1
     *  with err (CDC_EXIT_CONFIG, naming where and key) when it rejects
     *  it.  Called through cdc_plugin_check_value(). */
    int (*check_value)(int type, const char *key, const char *val,
                       const char *where, cdc_err_t *err);
} cdc_sink_ops_t;

/* Base structs, embedded first in every implementation. */
struct cdc_source {
    const cdc_source_ops_t *ops;
};
struct cdc_sink {
    const cdc_sink_ops_t *ops;
};

const cdc_source_ops_t *cdc_source_find(const char *name);
const cdc_sink_ops_t *cdc_sink_find(const char *name);
/** Comma-separated names, for --help. */
const char *cdc_source_names(void);
const char *cdc_sink_names(void);
/** The name of the first source whose position is kind; NULL if none. */
const char *cdc_source_by_position(int kind);
/** Asks every source and sink with a check_value hook about key's value;
 *  0, or -1 with err from the first that rejects it. */
int cdc_plugin_check_value(int type, const char *key, const char *val,
                           const char *where, cdc_err_t *err);

#endif
