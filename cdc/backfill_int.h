/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backfill_int.h - between the backfill command (cdc/commands/backfill.c:
 * arguments, planning, progress display, summary) and the backfill engine
 * (cdc/backfill.c: worker threads reading chunks, watermark windows,
 * handing chunks to the sink, the progress file).  Not for other users.
 */
#ifndef CDC_BACKFILL_INT_H
#define CDC_BACKFILL_INT_H

#include <pthread.h>
#include <stdint.h>

#include "cdc/backfill.h"
#include "cdc/plugin.h"

typedef struct job {
    char *name;          /* db.table */
    char db[256], tb[256];
    cdc_bf_tprog_t *tp;  /* progress entry (under bf.mu) */
    uint64_t est;        /* estimated rows */
    uint64_t rows;       /* rows emitted in this run */
    uint64_t dropped;    /* rows dropped by the watermark rule */
    uint64_t start_rows; /* tp->rows when this run started it */
    int64_t t0, t1;      /* mono µs */
    int state;           /* 0 waiting, 1 running, 2 done, 3 failed */
} job_t;

typedef struct bf {
    const cdc_conf_t *conf;
    const cdc_snap_ops_t *dops;
    const cdc_sink_ops_t *kops;
    const cdc_source_ops_t *sops; /* window reader */
    cdc_sink_t *snk;
    pthread_mutex_t mu;  /* sink, progress file, jobs, counters */
    char *prog_path;
    char *pipeline;
    cdc_bf_prog_t prog;
    int64_t chunk, rate, parallel, wm_timeout_ms;
    int64_t inflight;    /* chunks queued in the sink per worker */
    const char *where;
    char sig[512];
    int watermarks;
    int initial;
    cdc_snap_t *initial_snap; /* the consistent-snapshot connection */
    cdc_snap_stamp_t initial_stamp;
    uint64_t initial_row;
    char *tables_csv;
    job_t *jobs;
    int njobs, next_job;
    int njobs_active;    /* jobs [0, njobs_active) are to be run */
    int alive;           /* worker threads still running */
    uint64_t seq;
    int failed;
    cdc_err_t err;       /* first failure */
    int tty;
    int64_t t0;
    int64_t pace_t0;     /* throttle: start of the budget */
    uint64_t paced;      /* rows read so far, all workers */
} bf_t;

/** @brief Monotonic clock, µs. */
int64_t cdc_bf_mono_us(void);
/** @brief SIGTERM, SIGINT and SIGHUP stop the run after the chunks in
 *  flight; SIGPIPE is ignored.  Clears an earlier stop. */
void cdc_bf_catch_signals(void);
/** @brief A copy of conf (the caller destroys it). */
cdc_conf_t *cdc_bf_conf_copy(const cdc_conf_t *conf);
/** @brief Store bf->prog in bf->prog_path (caller holds bf->mu). */
int cdc_bf_save_progress(bf_t *bf, cdc_err_t *err);
/** @brief Run jobs [next_job, njobs_active) on nw worker threads until
 *  done, failed (bf->failed, bf->err) or stopped by a signal; calls
 *  progress(bf, arg) about every 200 ms meanwhile.  err is set only when
 *  a thread could not start. */
void cdc_bf_run_workers(bf_t *bf, int nw, void (*progress)(bf_t *, void *),
                        void *arg, cdc_err_t *err);

#endif
