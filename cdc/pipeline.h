/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pipeline.h - the loop that moves transactions from a source to a sink
 * and advances the checkpoint over the unbroken run of delivered ones.
 */
#ifndef CDC_PIPELINE_H
#define CDC_PIPELINE_H

#include "cdc/change.h"
#include "cdc/conf.h"
#include "cdc/err.h"
#include "cdc/plugin.h"

typedef struct cdc_filter cdc_filter_t;

/** @brief Table filter from filter.include / filter.exclude (comma lists of
 *  db.table globs).  NULL when both are empty. */
cdc_filter_t *cdc_filter_new(const cdc_conf_t *conf);
void cdc_filter_destroy(cdc_filter_t *f);
/** @brief 1 if db.table passes. */
int cdc_filter_match(const cdc_filter_t *f, const char *db, const char *table);
/** @brief Remove changes of tables that do not pass; returns how many are
 *  left. */
uint32_t cdc_filter_txn(const cdc_filter_t *f, cdc_txn_t *tx);

/* Set by signal handlers (to the signal number: SIGTERM, SIGINT, SIGHUP);
 * the loop flushes, checkpoints and returns 0. */
extern volatile int cdc_pipeline_stop;

/**
 * @brief Run a pipeline: source -> filter -> sink with checkpoints.
 * Options read from conf: pipeline.name, state.dir, run.max_txns (exit after
 * N txns), run.idle_exit_ms (exit after that long without changes),
 * checkpoint.interval_ms (default 1000), pipeline.max_inflight (txns,
 * default 10000).
 * @returns an exit code (CDC_EXIT_*); err filled when non-zero.
 */
int cdc_pipeline_run(const cdc_conf_t *conf, const cdc_source_ops_t *sops,
                     const cdc_sink_ops_t *kops, cdc_err_t *err);

#endif
