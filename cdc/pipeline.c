/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pipeline.c - source -> filter -> sink, with checkpoints.
 *
 * Delivery goes through the engine of cdc/flight.h, which states the
 * invariant (the stored checkpoint is the end of the unbroken acknowledged
 * prefix, the minimum over the sinks).  One source feeds one or more
 * sinks (the list key `sinks`, each sink with its own settings block);
 * the source is read once and each sink acknowledges on its own.
 *
 * Retriable source errors (lost connection) flush the sink, then
 * reconnect with the engine's backoff (cdc_backoff, flight.h) from the
 * last delivered position.  Fatal errors flush what can be flushed, store the
 * checkpoint of what was delivered and return the error's exit code.
 *
 * Operations: the loop reports to cdc/metrics.h (events per table, in-flight
 * txns and bytes, deliveries, checkpoints, source/sink state, reconnects,
 * each sink's acknowledgements, and the sinks' own counters through their
 * optional stats hook) and starts the HTTP endpoint when http.listen is
 * set.  The hooks only observe; they never change what is delivered or
 * checkpointed.
 */
#include <fnmatch.h>
#include <pthread.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cdc/util.h"
#include "cdc/checkpoint.h"
#include "cdc/log.h"
#include "cdc/metrics.h"
#include "cdc/flight.h"
#include "cdc/pipeline.h"

/* ---- filter ------------------------------------------------------------ */

struct cdc_filter {
    char **inc, **exc;
    int ninc, nexc;
    /* verdict for the last table seen: changes come in runs of one table,
     * so the globs are matched once per run, not once per row */
    char last[512];
    int last_ok;
};

static char **split(const char *s, int *n)
{
    char **v = NULL;
    char *dup, *tok, *save = NULL;

    *n = 0;
    if (!s || !*s)
        return NULL;
    dup = cdc_xstrdup(s);
    for (tok = strtok_r(dup, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
        v = cdc_xrealloc(v, (size_t)(*n + 1) * sizeof(*v));
        v[(*n)++] = cdc_xstrdup(tok);
    }
    free(dup);
    return v;
}

cdc_filter_t *cdc_filter_new(const cdc_conf_t *conf)
{
    const char *inc = cdc_conf_get(conf, "filter.include", "");
    const char *exc = cdc_conf_get(conf, "filter.exclude", "");
    cdc_filter_t *f;

    if (!*inc && !*exc)
        return NULL;
    f = cdc_xcalloc(1, sizeof(*f));
    f->inc = split(inc, &f->ninc);
    f->exc = split(exc, &f->nexc);
    return f;
}

void cdc_filter_destroy(cdc_filter_t *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->ninc; i++)
        free(f->inc[i]);
    for (int i = 0; i < f->nexc; i++)
        free(f->exc[i]);
    free(f->inc);
    free(f->exc);
    free(f);
}

static int match_any(char **pats, int n, const char *name, const char *db)
{
    for (int i = 0; i < n; i++) {
        /* "db" alone (no dot) means every table of that database */
        if (!strchr(pats[i], '.') ? !fnmatch(pats[i], db, 0)
                                  : !fnmatch(pats[i], name, 0))
            return 1;
    }
    return 0;
}

int cdc_filter_match(const cdc_filter_t *cf, const char *db, const char *table)
{
    cdc_filter_t *f = (cdc_filter_t *)cf; /* the cache is logically mutable */
    char name[512];
    int ok;

    if (!f)
        return 1;
    snprintf(name, sizeof(name), "%s.%s", db, table);
    if (f->last[0] && !strcmp(name, f->last))
        return f->last_ok;
    ok = !(f->ninc && !match_any(f->inc, f->ninc, name, db)) &&
         !(f->nexc && match_any(f->exc, f->nexc, name, db));
    memcpy(f->last, name, sizeof(name));
    f->last_ok = ok;
    return ok;
}

uint32_t cdc_filter_txn(const cdc_filter_t *f, cdc_txn_t *tx)
{
    uint32_t j = 0;

    if (!f)
        return tx->nchanges;
    for (uint32_t i = 0; i < tx->nchanges; i++) {
        cdc_change_t *ch = &tx->changes[i];
        if (cdc_filter_match(f, ch->tbl->db, ch->tbl->name))
            tx->changes[j++] = *ch;
        else
            cdc_table_destroy(ch->tbl);
    }
    tx->nchanges = j;
    return j;
}

/* ---- the loop ------------------------------------------------------------ */

#define PL_MAX_SINKS 8

typedef struct pl {
    const cdc_conf_t *conf;
    const cdc_source_ops_t *sops;
    const cdc_sink_ops_t *kops[PL_MAX_SINKS];
    cdc_sink_t *snk[PL_MAX_SINKS];
    int nsinks;
    cdc_source_t *src;
    cdc_flight_t *fl;
    cdc_filter_t *filter;
    char *ckpt_path;
    cdc_ckpt_t ck;          /* last delivered position */
    int ck_dirty;
    int64_t ck_stored_us;
    int64_t ck_interval_us;
    int64_t stats_us;       /* last sink counters read */
    uint64_t seq;
    uint64_t delivered;
    /* checkpoint writer thread: the periodic fsyncs stay off the hot path
     * (they showed up as the p99 of commit -> Kafka latency) */
    pthread_t ckw;
    int ckw_on;
    pthread_mutex_t ckmu;
    pthread_cond_t ckcv;
    int ck_have, ck_busy, ck_stop, ck_failed, ck_written_new;
    cdc_ckpt_t ck_pending, ck_written;
    cdc_err_t ck_err;
} pl_t;

static void *ckpt_writer(void *arg)
{
    pl_t *pl = arg;

    pthread_mutex_lock(&pl->ckmu);
    for (;;) {
        cdc_ckpt_t ck;
        cdc_err_t e = {0};
        int rc;

        while (!pl->ck_have && !pl->ck_stop)
            pthread_cond_wait(&pl->ckcv, &pl->ckmu);
        if (!pl->ck_have)
            break;
        ck = pl->ck_pending;
        pl->ck_have = 0;
        pl->ck_busy = 1;
        pthread_mutex_unlock(&pl->ckmu);
        rc = cdc_ckpt_store(pl->ckpt_path, &ck, &e);
        pthread_mutex_lock(&pl->ckmu);
        pl->ck_busy = 0;
        if (rc) {
            pl->ck_failed = 1;
            pl->ck_err = e;
        } else {
            pl->ck_written = ck;
            pl->ck_written_new = 1;
        }
        pthread_cond_broadcast(&pl->ckcv);
    }
    pthread_mutex_unlock(&pl->ckmu);
    return NULL;
}

/* The engine's progress callback: tx joined the acknowledged prefix of
 * every sink, so its end is the new resume point. */
static void on_delivered(void *ctx, const cdc_txn_t *tx)
{
    pl_t *pl = ctx;

    pl->ck.pos = tx->pos;
    pl->ck.commit_us = tx->commit_us;
    pl->ck.txns++;
    pl->ck_dirty = 1;
    pl->delivered++;
    cdc_metrics_delivered(tx->commit_us);
}

/* Report the in-flight queue, each sink's acknowledgements and (at most
 * twice a second) the sinks' own counters to the metrics registry. */
static void publish(pl_t *pl)
{
    int64_t t;

    if (!pl->fl)
        return;
    cdc_metrics_inflight(cdc_flight_count(pl->fl), cdc_flight_bytes(pl->fl),
                         cdc_flight_oldest_commit_us(pl->fl));
    t = cdc_now_us();
    if (t - pl->stats_us < 500000)
        return;
    pl->stats_us = t;
    for (int i = 0; i < pl->nsinks; i++) {
        cdc_flight_sink_stat_t st;
        cdc_flight_sink_stat(pl->fl, i, &st);
        cdc_metrics_sink_progress(i, pl->kops[i]->name, st.acked,
                                  st.commit_us, st.behind);
        cdc_flight_sink_stats(pl->fl, i);
    }
}

/* Tell the source what is durable (PG flush LSN, ...). */
static int confirm_written(pl_t *pl, const cdc_ckpt_t *ck, cdc_err_t *err)
{
    cdc_metrics_checkpoint(&ck->pos, ck->commit_us, 0);
    CDC_DEBUG("ckpt", "stored %s", cdc_pos_str(&ck->pos));
    if (pl->sops->confirm && pl->src &&
        pl->sops->confirm(pl->src, &ck->pos, err))
        return -1;
    return 0;
}

/*
 * Store the checkpoint: periodically through the writer thread, or, with
 * force (shutdown, reconnect, failure), synchronously after the writer is
 * idle.  The source is confirmed only up to what is on disk.
 */
static int store_ckpt(pl_t *pl, int force, cdc_err_t *err)
{
    int64_t t = cdc_now_us();
    cdc_ckpt_t written;
    int have_written = 0;

    if (pl->ckw_on) {
        pthread_mutex_lock(&pl->ckmu);
        if (force)
            while (pl->ck_have || pl->ck_busy)
                pthread_cond_wait(&pl->ckcv, &pl->ckmu);
        if (pl->ck_failed) {
            *err = pl->ck_err;
            pthread_mutex_unlock(&pl->ckmu);
            return -1;
        }
        if (pl->ck_written_new) {
            written = pl->ck_written;
            pl->ck_written_new = 0;
            have_written = 1;
        }
        if (!force && pl->ck_dirty && t - pl->ck_stored_us >= pl->ck_interval_us) {
            pl->ck_pending = pl->ck;
            pl->ck_have = 1;
            pl->ck_dirty = 0;
            pl->ck_stored_us = t;
            pthread_cond_broadcast(&pl->ckcv);
        }
        pthread_mutex_unlock(&pl->ckmu);
        if (have_written && confirm_written(pl, &written, err))
            return -1;
        if (!force)
            return 0;
    } else if (!force && t - pl->ck_stored_us < pl->ck_interval_us)
        return 0;
    if (!pl->ck_dirty)
        return 0;
    if (cdc_ckpt_store(pl->ckpt_path, &pl->ck, err))
        return -1;
    pl->ck_dirty = 0;
    pl->ck_stored_us = t;
    return confirm_written(pl, &pl->ck, err);
}

/* SIGTERM, SIGINT and SIGHUP: stop at a transaction boundary with a final
 * checkpoint; the signal number is kept for the log line. */
static int start_source(pl_t *pl, cdc_err_t *err)
{
    const cdc_pos_t *resume = NULL;

    if (pl->ck.pos.file[0] || pl->ck.pos.gtid[0] || pl->ck.pos.lsn)
        resume = &pl->ck.pos;
    pl->src = pl->sops->create(pl->conf, err);
    if (!pl->src) {
        cdc_metrics_source_state(0, err->msg);
        return -1;
    }
    if (pl->sops->start(pl->src, resume, err)) {
        cdc_metrics_source_state(0, err->msg);
        pl->sops->destroy(pl->src);
        pl->src = NULL;
        return -1;
    }
    cdc_metrics_source_state(1, NULL);
    CDC_INFO("pipeline", "source %s started at %s", pl->sops->name,
             resume ? cdc_pos_str(resume) : "its configured start");
    return 0;
}

/*
 * The sinks of the pipeline: the list key `sinks` (fan-out), else the one
 * sink the caller picked from sink.type.  Each name once: two sinks of one
 * type would share one settings block.
 */
static int pick_sinks(pl_t *pl, const cdc_sink_ops_t *kops, char *names,
                      size_t namesz, cdc_err_t *err)
{
    const char *list = cdc_conf_get(pl->conf, "sinks", NULL);
    char *dup, *tok, *save = NULL;

    if (!list || !*list) {
        pl->kops[0] = kops;
        pl->nsinks = 1;
        snprintf(names, namesz, "%s", kops->name);
        return 0;
    }
    if (cdc_conf_get(pl->conf, "sink.type", NULL)) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "both sink.type (--sink) and sinks are set");
        cdc_err_hint(err, "keep one: sinks lists every sink of the "
                          "pipeline, sink.type names a single one");
        return -1;
    }
    names[0] = '\0';
    dup = cdc_xstrdup(list);
    for (tok = strtok_r(dup, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
        const cdc_sink_ops_t *o = cdc_sink_find(tok);
        if (!o) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "sinks: unknown sink '%s'",
                        tok);
            cdc_err_hint(err, "available sinks: %s", cdc_sink_names());
            free(dup);
            return -1;
        }
        for (int i = 0; i < pl->nsinks; i++)
            if (pl->kops[i] == o) {
                cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                            "sinks: '%s' is listed twice", tok);
                cdc_err_hint(err, "each sink type once: it has one "
                                  "settings block");
                free(dup);
                return -1;
            }
        if (pl->nsinks == PL_MAX_SINKS) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                        "sinks: more than %d sinks", PL_MAX_SINKS);
            cdc_err_hint(err, "run a second pipeline for the others");
            free(dup);
            return -1;
        }
        pl->kops[pl->nsinks++] = o;
        snprintf(names + strlen(names), namesz - strlen(names), "%s%s",
                 names[0] ? "," : "", o->name);
    }
    free(dup);
    if (!pl->nsinks) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "sinks: the list is empty");
        cdc_err_hint(err, "name at least one sink, e.g. sinks: [stdout]");
        return -1;
    }
    return 0;
}

/* Drain what is in flight (flush every sink), then advance. */
static int drain(pl_t *pl, int timeout_ms, cdc_err_t *err)
{
    return cdc_flight_flush(pl->fl, timeout_ms, err);
}

int cdc_pipeline_run(const cdc_conf_t *conf, const cdc_source_ops_t *sops,
                     const cdc_sink_ops_t *kops, cdc_err_t *err)
{
    pl_t pl = {.conf = conf, .sops = sops};
    const char *name = cdc_conf_pipeline(conf);
    const char *state = cdc_conf_get(conf, "state.dir", "state");
    int64_t max_txns, idle_ms, interval_ms, max_inflight, max_mb;
    int64_t last_change_us = cdc_now_us();
    uint64_t whole = 0; /* whole transactions taken (run.max_txns) */
    cdc_backoff_t bo;
    int rc = CDC_EXIT_OK, loaded, lock_fd = -1;
    cdc_http_t *http = NULL;
    char names[256];

    if (cdc_conf_get_int(conf, "run.max_txns", 0, &max_txns, err) ||
        cdc_conf_get_int(conf, "run.idle_exit_ms", 0, &idle_ms, err) ||
        cdc_conf_get_int(conf, "checkpoint.interval_ms", 1000, &interval_ms,
                         err) ||
        cdc_conf_get_int(conf, "pipeline.max_inflight_mb", 8, &max_mb, err) ||
        cdc_conf_get_int(conf, "pipeline.max_inflight", 10000, &max_inflight,
                         err))
        return err->code;
    if (pick_sinks(&pl, kops, names, sizeof(names), err))
        return err->code;
    if (cdc_metrics_init(conf, err))
        return err->code;
    cdc_metrics_components(sops->name, names);
    pl.ck_interval_us = interval_ms * 1000;
    pthread_mutex_init(&pl.ckmu, NULL);
    pthread_cond_init(&pl.ckcv, NULL);
    pl.ckpt_path = cdc_ckpt_path(state, name);
    pl.ckw_on = pthread_create(&pl.ckw, NULL, ckpt_writer, &pl) == 0;
    /* one instance per pipeline; a checkpoint is never guessed */
    if (cdc_state_lock(state, name, "run", &lock_fd, err))
        goto out_err;
    loaded = cdc_ckpt_load(pl.ckpt_path, &pl.ck, err);
    if (loaded < 0 ||
        (loaded && cdc_ckpt_check_source(pl.ckpt_path, &pl.ck, sops->name,
                                         err)))
        goto out_err;
    if (loaded) {
        CDC_INFO("pipeline", "resuming from checkpoint %s: %s",
                 pl.ckpt_path, cdc_pos_str(&pl.ck.pos));
        cdc_metrics_checkpoint(&pl.ck.pos, pl.ck.commit_us,
                               pl.ck.updated_us);
    }
    if (cdc_http_start(conf, &http, err))
        goto out_err;
    snprintf(pl.ck.source, sizeof(pl.ck.source), "%s", sops->name);
    pl.filter = cdc_filter_new(conf);

    cdc_flight_catch_signals();
    cdc_backoff_init(&bo, 0, 0);

    for (int i = 0; i < pl.nsinks; i++) {
        pl.snk[i] = pl.kops[i]->create(conf, err);
        if (!pl.snk[i]) {
            if (pl.nsinks > 1)
                cdc_err_detail(err, "sink %s of sinks [%s]",
                               pl.kops[i]->name, names);
            goto out_err;
        }
    }
    /* bounded in transactions and in bytes (memory target): a sink that
     * does not acknowledge holds the others back by at most this much */
    pl.fl = cdc_flight_new(pl.snk, pl.nsinks, (size_t)max_inflight,
                           (size_t)max_mb << 20, on_delivered, &pl);
    if (start_source(&pl, err))
        goto out_err;

    while (!cdc_pipeline_stop) {
        cdc_txn_t *tx = NULL;
        int r;

        if (cdc_flight_full(pl.fl)) {
            /* back-pressure: serve the sinks, not the source */
            if (cdc_flight_poll(pl.fl, 100, err) ||
                cdc_flight_advance(pl.fl, err))
                goto out_err;
            if (store_ckpt(&pl, 0, err))
                goto out_err;
            publish(&pl);
            continue;
        }
        r = sops->next(pl.src, &tx, cdc_flight_count(pl.fl) ? 10 : 200, err);
        if (r < 0) {
            if (!(err->flags & CDC_ERR_F_RETRIABLE) || cdc_pipeline_stop)
                goto out_err;
            cdc_log_err("source", err);
            cdc_metrics_source_state(0, err->msg);
            /* finish what is in flight, then reconnect from there */
            if (drain(&pl, 60000, err) || store_ckpt(&pl, 1, err))
                goto out_err;
            sops->destroy(pl.src);
            pl.src = NULL;
            while (!cdc_pipeline_stop) {
                int64_t jit = cdc_backoff_next(&bo);
                CDC_WARN("pipeline", "reconnecting in %" PRId64 " ms", jit);
                if (cdc_flight_nap(jit, NULL))
                    break;
                cdc_err_clear(err);
                if (start_source(&pl, err) == 0) {
                    cdc_metrics_reconnect();
                    break;
                }
                if (!(err->flags & CDC_ERR_F_RETRIABLE))
                    goto out_err;
                cdc_log_err("source", err);
            }
            continue;
        }
        if (r == CDC_SRC_EOF)
            break;
        if (r == CDC_SRC_TXN) {
            cdc_backoff_reset(&bo);
            tx->seq = ++pl.seq;
            /* a fragment with more set is not a transaction yet: only the
             * last one counts, so --max-txns stops at a resume point */
            if (!tx->more)
                whole++;
            if (tx->nchanges && cdc_filter_txn(pl.filter, tx))
                last_change_us = cdc_now_us();
            cdc_metrics_txn(tx);
            /* never acknowledged on failure: the checkpoint and the
             * source's confirmation stay before it, a restart reads it
             * again */
            if (cdc_flight_write(pl.fl, tx, err))
                goto out_sink;
        }
        if (cdc_flight_poll(pl.fl, 0, err) || cdc_flight_advance(pl.fl, err))
            goto out_sink;
        if (store_ckpt(&pl, 0, err))
            goto out_err;
        if (r == CDC_SRC_IDLE && !cdc_flight_count(pl.fl))
            cdc_metrics_caught_up(1);
        publish(&pl);
        if (max_txns && whole >= (uint64_t)max_txns)
            break;
        if (idle_ms && cdc_now_us() - last_change_us > idle_ms * 1000)
            break;
    }
    if (cdc_pipeline_stop)
        CDC_INFO("pipeline", "%s received: stopping with a final checkpoint",
                 cdc_pipeline_stop == SIGHUP  ? "SIGHUP"
                 : cdc_pipeline_stop == SIGINT ? "SIGINT"
                                               : "SIGTERM");
    if (drain(&pl, 30000, err) || store_ckpt(&pl, 1, err))
        goto out_err;
    pl.stats_us = 0;
    publish(&pl);
    CDC_INFO("pipeline", "stopped after %" PRIu64 " transactions; "
             "checkpoint %s", pl.delivered, cdc_pos_str(&pl.ck.pos));
    goto out;

out_sink:
    cdc_metrics_sink_state(0, err->msg);
out_err:
    rc = err->code ? err->code : CDC_EXIT_FAIL;
    if (pl.fl) {
        cdc_err_t e2 = {0};
        /* keep what was delivered before the failure */
        (void)cdc_flight_flush(pl.fl, 5000, &e2);
        store_ckpt(&pl, 1, &e2);
    }
out:
    cdc_flight_free(pl.fl);
    cdc_http_stop(http);
    if (pl.src)
        sops->destroy(pl.src);
    for (int i = 0; i < pl.nsinks; i++)
        if (pl.snk[i])
            pl.kops[i]->destroy(pl.snk[i]);
    cdc_filter_destroy(pl.filter);
    if (pl.ckw_on) {
        pthread_mutex_lock(&pl.ckmu);
        pl.ck_stop = 1;
        pthread_cond_broadcast(&pl.ckcv);
        pthread_mutex_unlock(&pl.ckmu);
        pthread_join(pl.ckw, NULL);
    }
    pthread_mutex_destroy(&pl.ckmu);
    pthread_cond_destroy(&pl.ckcv);
    free(pl.ckpt_path);
    cdc_state_unlock(lock_fd);
    return rc;
}
