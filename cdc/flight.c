/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flight.c - the delivery engine (flight.h states the invariant).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdc/checkpoint.h"
#include "cdc/flight.h"
#include "cdc/util.h"

volatile int cdc_pipeline_stop;

static void on_signal(int sig)
{
    cdc_pipeline_stop = sig;
}

void cdc_flight_catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

typedef struct slot {
    cdc_txn_t *tx;     /* owned */
    cdc_txn_t *views;  /* one per sink when nsinks > 1, else NULL */
    size_t bytes;
} slot_t;

/*
 * A sink on its own thread (fan-out, ops->own_thread): the engine hands it
 * views through q; the worker writes, polls and flushes the sink and
 * publishes how many views it acknowledged in order.  A view the worker
 * published is never touched by it again.  Fields under f->mu unless said.
 */
typedef struct worker {
    struct cdc_flight *f;
    int k;
    pthread_t thr;
    int started;
    pthread_cond_t cv;          /* wakes the worker */
    cdc_txn_t **q;              /* views to write, in order */
    size_t qn, qcap;
    uint64_t acked;             /* views acknowledged in order, in total */
    int head_failed;            /* the view after them failed */
    uint64_t flush_gen, flush_done;
    int flush_ms;
    int stats;                  /* call the sink's stats hook */
    int urgent;                 /* the engine waits for this sink */
    int stop;
    int failed;                 /* sticky: err holds the sink's error */
    cdc_err_t err;
    /* the worker thread's own */
    cdc_txn_t **out;            /* written, not yet acknowledged */
    size_t ohead, on, ocap;
} worker_t;

typedef struct sink_state {
    cdc_sink_t *snk;
    size_t ahead;      /* slots from the head this sink acknowledged */
    cdc_flight_sink_stat_t st;
    worker_t *w;       /* NULL: driven by the engine's thread */
} sink_state_t;

struct cdc_flight {
    sink_state_t *s;
    int ns;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* wakes the engine: a worker progressed */
    uint64_t retired;           /* slots retired since the start */
    slot_t *ring;
    size_t cap, head, n;
    size_t bytes;
    size_t max_txns, max_bytes;
    cdc_flight_progress_fn progress;
    void *ctx;
};

static int done(const cdc_txn_t *v)
{
    return v->pending <= 0 && !v->failed;
}

/* the worker's own: count the views at the head of out that the sink
 * acknowledged (in order) and drop them from out */
static uint64_t worker_acked(worker_t *w)
{
    uint64_t cnt = 0;

    while (w->on && done(w->out[w->ohead])) {
        w->ohead++;
        w->on--;
        cnt++;
    }
    return cnt;
}

/* publish (under f->mu) cnt more views acknowledged in order, whether the
 * view after them failed, and the sink's first error */
static void worker_publish(worker_t *w, uint64_t cnt, int rc,
                           const cdc_err_t *e)
{
    w->acked += cnt;
    w->head_failed = w->on && w->out[w->ohead]->failed;
    if (rc && !w->failed) {
        w->failed = 1;
        w->err = *e;
    }
    pthread_cond_broadcast(&w->f->cv);
}

static void worker_append(worker_t *w, cdc_txn_t *v)
{
    if (w->on == w->ocap || w->ohead + w->on == w->ocap) {
        if (w->on && w->ohead)
            memmove(w->out, w->out + w->ohead, w->on * sizeof(*w->out));
        w->ohead = 0;
        if (w->on == w->ocap) {
            w->ocap = w->ocap ? w->ocap * 2 : 256;
            w->out = cdc_xrealloc(w->out, w->ocap * sizeof(*w->out));
        }
    }
    w->out[w->ohead + w->on++] = v;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    cdc_flight_t *f = w->f;
    cdc_sink_t *snk = f->s[w->k].snk;
    cdc_txn_t **batch = NULL;
    size_t bcap = 0;
    uint64_t gen_done = 0;
    int stats;

    pthread_mutex_lock(&f->mu);
    for (;;) {
        size_t n;
        uint64_t gen, cnt;
        int ms, failed, urgent, rc = 0;
        cdc_err_t e = {0};

        while (!w->stop && !w->qn && w->flush_gen == w->flush_done &&
               !w->on && !w->stats)
            pthread_cond_wait(&w->cv, &f->mu);
        if (!w->stop && !w->qn && w->flush_gen == w->flush_done &&
            !w->stats) {
            /* only acknowledgements to serve: the sink's own schedule
             * (a wide sink's flush_ms), unless work or the engine comes
             * (1 ms apart while the engine waits for this sink) */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += w->urgent ? 1000000 : 10000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&w->cv, &f->mu, &ts);
        }
        if (w->stop)
            break;
        /* take what was handed over */
        n = w->qn;
        if (n > bcap) {
            bcap = n;
            batch = cdc_xrealloc(batch, bcap * sizeof(*batch));
        }
        if (n)
            memcpy(batch, w->q, n * sizeof(*batch));
        w->qn = 0;
        gen = w->flush_gen;
        ms = w->flush_ms;
        failed = w->failed;
        urgent = w->urgent;
        stats = w->stats;
        w->stats = 0;
        pthread_mutex_unlock(&f->mu);

        if (stats && snk->ops->stats)
            snk->ops->stats(snk); /* on the thread that drives the sink */
        for (size_t i = 0; i < n; i++) {
            cdc_txn_t *v = batch[i];
            if (failed || snk->ops->write(snk, v, &e)) {
                /* never acknowledged; nothing after it is written */
                v->failed = 1;
                if (!failed)
                    rc = -1;
                failed = 1;
            }
            worker_append(w, v);
            /* between the writes the sink's own schedule, as the
             * pipeline's loop serves a single sink (a wide sink's
             * flush_ms; Kafka's delivery reports) ... */
            if (!rc && !failed && i + 1 < n && snk->ops->poll(snk, 0, &e))
                rc = -1;
            /* ... and what it acknowledged is published at once (a batch
             * that this write applied, delivery reports served while it
             * waited for room), not after the whole handover: meanwhile
             * the engine retires, reads on and feeds the other sinks */
            cnt = worker_acked(w);
            if (cnt || rc) {
                pthread_mutex_lock(&f->mu);
                worker_publish(w, cnt, rc, &e);
                pthread_mutex_unlock(&f->mu);
            }
        }
        /* a timeout tells the sink that the pipeline waits for it (a wide
         * sink then writes its partial batch), as the engine's own poll
         * does for the sink furthest behind: only while the engine still
         * waits and has nothing more for it (what this turn published may
         * have let it read on: the batch then fills up instead of closing
         * early) */
        if (urgent) {
            pthread_mutex_lock(&f->mu);
            urgent = w->urgent && !w->qn;
            pthread_mutex_unlock(&f->mu);
        }
        if (w->on && !rc && snk->ops->poll(snk, urgent ? 10 : 0, &e))
            rc = -1;
        if (gen != gen_done) {
            if (!rc && w->on && snk->ops->flush(snk, ms, &e))
                rc = -1;
            gen_done = gen;
        }
        cnt = worker_acked(w);
        pthread_mutex_lock(&f->mu);
        worker_publish(w, cnt, rc, &e);
        w->flush_done = gen_done;
    }
    stats = w->stats; /* the last request, at the end of the run */
    pthread_mutex_unlock(&f->mu);
    if (stats && snk->ops->stats)
        snk->ops->stats(snk);
    free(batch);
    return NULL;
}

cdc_flight_t *cdc_flight_new(cdc_sink_t *const *sinks, int nsinks,
                             size_t max_txns, size_t max_bytes,
                             cdc_flight_progress_fn progress, void *ctx)
{
    cdc_flight_t *f = cdc_xcalloc(1, sizeof(*f));
    int shared = 0;

    f->ns = nsinks;
    f->s = cdc_xcalloc((size_t)nsinks, sizeof(*f->s));
    for (int i = 0; i < nsinks; i++)
        f->s[i].snk = sinks[i];
    f->max_txns = max_txns;
    f->max_bytes = max_bytes;
    f->progress = progress;
    f->ctx = ctx;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    for (int i = 0; nsinks > 1 && i < nsinks; i++)
        shared += !sinks[i]->ops->own_thread;
    for (int i = 0; nsinks > 1 && i < nsinks; i++) {
        worker_t *w;
        if (!sinks[i]->ops->own_thread && shared > 1)
            continue;
        w = cdc_xcalloc(1, sizeof(*w));
        w->f = f;
        w->k = i;
        pthread_cond_init(&w->cv, NULL);
        if (pthread_create(&w->thr, NULL, worker_main, w)) {
            pthread_cond_destroy(&w->cv);
            free(w); /* driven by the engine's thread instead */
            continue;
        }
        w->started = 1;
        f->s[i].w = w;
    }
    return f;
}

static slot_t *at(const cdc_flight_t *f, size_t i)
{
    return &f->ring[(f->head + i) % f->cap];
}

/* what sink k sees of slot sl */
static cdc_txn_t *view(const cdc_flight_t *f, const slot_t *sl, int k)
{
    return f->ns == 1 ? sl->tx : &sl->views[k];
}

static void slot_free(slot_t *sl)
{
    cdc_txn_destroy(sl->tx);
    free(sl->views); /* shallow copies: nothing of their own */
    sl->tx = NULL;
    sl->views = NULL;
}

void cdc_flight_free(cdc_flight_t *f)
{
    if (!f)
        return;
    for (int k = 0; k < f->ns; k++) {
        worker_t *w = f->s[k].w;
        if (!w)
            continue;
        pthread_mutex_lock(&f->mu);
        w->stop = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(w->thr, NULL);
        pthread_cond_destroy(&w->cv);
        free(w->q);
        free(w->out);
        free(w);
    }
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    for (size_t i = 0; i < f->n; i++)
        slot_free(at(f, i));
    free(f->ring);
    free(f->s);
    free(f);
}

int cdc_flight_full(const cdc_flight_t *f)
{
    return (f->max_txns && f->n >= f->max_txns) ||
           (f->max_bytes && f->n && f->bytes >= f->max_bytes);
}

size_t cdc_flight_count(const cdc_flight_t *f)
{
    return f->n;
}

size_t cdc_flight_bytes(const cdc_flight_t *f)
{
    return f->bytes;
}

int64_t cdc_flight_oldest_commit_us(const cdc_flight_t *f)
{
    return f->n ? at(f, 0)->tx->commit_us : 0;
}

int cdc_flight_nsinks(const cdc_flight_t *f)
{
    return f->ns;
}

void cdc_flight_sink_stat(const cdc_flight_t *f, int i,
                          cdc_flight_sink_stat_t *out)
{
    *out = f->s[i].st;
    out->behind = f->n - f->s[i].ahead;
}

void cdc_flight_sink_stats(cdc_flight_t *f, int i)
{
    worker_t *w = f->s[i].w;

    if (!f->s[i].snk->ops->stats)
        return;
    if (!w) {
        f->s[i].snk->ops->stats(f->s[i].snk);
        return;
    }
    pthread_mutex_lock(&f->mu);
    w->stats = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&f->mu);
}

static void grow(cdc_flight_t *f)
{
    size_t ncap = f->cap ? f->cap * 2 : 1024;
    slot_t *nr = cdc_xmalloc(ncap * sizeof(*nr));

    for (size_t i = 0; i < f->n; i++)
        nr[i] = *at(f, i);
    free(f->ring);
    f->ring = nr;
    f->cap = ncap;
    f->head = 0;
}

int cdc_flight_write(cdc_flight_t *f, cdc_txn_t *tx, cdc_err_t *err)
{
    slot_t *sl;

    if (f->n == f->cap)
        grow(f);
    sl = at(f, f->n);
    sl->tx = tx;
    sl->views = NULL;
    sl->bytes = tx->arena.total + sizeof(*tx) +
                tx->capchanges * sizeof(cdc_change_t);
    if (f->ns > 1) {
        /* each sink counts its own acknowledgements on its own view; the
         * changes, tables and values stay shared and read-only */
        sl->views = cdc_xmalloc((size_t)f->ns * sizeof(*sl->views));
        for (int k = 0; k < f->ns; k++) {
            sl->views[k] = *tx;
            sl->views[k].pending = 0;
            sl->views[k].failed = 0;
        }
    }
    f->bytes += sl->bytes;
    f->n++;
    for (int k = 0; k < f->ns; k++) {
        cdc_txn_t *v = view(f, sl, k);
        worker_t *w = f->s[k].w;
        if (w) {
            int failed;
            pthread_mutex_lock(&f->mu);
            failed = w->failed;
            if (failed)
                *err = w->err;
            else {
                if (w->qn == w->qcap) {
                    w->qcap = w->qcap ? w->qcap * 2 : 256;
                    w->q = cdc_xrealloc(w->q, w->qcap * sizeof(*w->q));
                }
                w->q[w->qn++] = v;
                pthread_cond_signal(&w->cv);
            }
            pthread_mutex_unlock(&f->mu);
            if (!failed)
                continue;
            for (int j = k; j < f->ns; j++)
                view(f, sl, j)->failed = 1;
            return -1;
        }
        if (f->s[k].snk->ops->write(f->s[k].snk, v, err)) {
            /* never acknowledged by this sink nor written to the next
             * ones: the prefix stays before it, a restart reads it again */
            for (int j = k; j < f->ns; j++)
                view(f, sl, j)->failed = 1;
            return -1;
        }
    }
    return 0;
}

int cdc_flight_poll(cdc_flight_t *f, int timeout_ms, cdc_err_t *err)
{
    int slow = 0, rc = 0;

    for (int k = 1; k < f->ns; k++)
        if (f->s[k].ahead < f->s[slow].ahead)
            slow = k;
    for (int k = 0; k < f->ns; k++) {
        cdc_sink_t *snk = f->s[k].snk;
        cdc_err_t e = {0};
        if (f->s[k].w)
            continue;
        if (snk->ops->poll(snk, k == slow ? timeout_ms : 0, &e)) {
            if (!rc)
                *err = e;
            rc = -1;
        }
    }
    for (int k = 0; k < f->ns; k++) {
        worker_t *w = f->s[k].w;
        if (!w)
            continue;
        pthread_mutex_lock(&f->mu);
        if (k == slow && timeout_ms > 0 && !w->failed &&
            w->acked - f->retired <= f->s[k].ahead) {
            /* the slowest sink runs on its own thread: wait for it */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += timeout_ms / 1000;
            ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            w->urgent = 1;
            pthread_cond_signal(&w->cv);
            pthread_cond_timedwait(&f->cv, &f->mu, &ts);
            w->urgent = 0;
        }
        if (w->failed) {
            if (!rc)
                *err = w->err;
            rc = -1;
        }
        pthread_mutex_unlock(&f->mu);
    }
    return rc;
}

int cdc_flight_advance(cdc_flight_t *f, cdc_err_t *err)
{
    size_t k = SIZE_MAX;

    /* each sink's own acknowledged prefix */
    for (int i = 0; i < f->ns; i++) {
        sink_state_t *s = &f->s[i];
        size_t upto = f->n;
        if (s->w) {
            /* what the worker published; the views' own counters are its */
            pthread_mutex_lock(&f->mu);
            upto = (size_t)(s->w->acked - f->retired);
            pthread_mutex_unlock(&f->mu);
        }
        while (s->ahead < f->n) {
            const cdc_txn_t *v = view(f, at(f, s->ahead), i);
            if (s->w ? s->ahead >= upto : !done(v))
                break;
            if (!v->more) {
                s->st.acked++;
                s->st.commit_us = v->commit_us;
                s->st.pos = v->pos;
            }
            s->ahead++;
        }
        if (s->ahead < k)
            k = s->ahead;
    }
    /* the common prefix: the minimum over the sinks */
    for (size_t j = 0; j < k; j++) {
        slot_t *sl = at(f, 0);
        if (!sl->tx->more && f->progress)
            f->progress(f->ctx, sl->tx);
        f->bytes -= sl->bytes;
        slot_free(sl);
        f->head = (f->head + 1) % f->cap;
        f->n--;
    }
    pthread_mutex_lock(&f->mu);
    f->retired += k;
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < f->ns; i++)
        f->s[i].ahead -= k;
    if (f->n) {
        slot_t *sl = at(f, 0);
        for (int i = 0; i < f->ns; i++) {
            worker_t *w = f->s[i].w;
            int hf;
            if (w) {
                pthread_mutex_lock(&f->mu);
                hf = w->head_failed && w->acked == f->retired;
                pthread_mutex_unlock(&f->mu);
            } else
                hf = view(f, sl, i)->failed;
            if (!hf)
                continue;
            if (!err->msg[0])
                cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                            "delivery of transaction at %s failed%s%s",
                            cdc_pos_str(&sl->tx->pos), f->ns > 1 ? " in the "
                            "sink " : "", f->ns > 1 ? f->s[i].snk->ops->name
                                                    : "");
            return -1;
        }
    }
    return 0;
}

int cdc_flight_flush(cdc_flight_t *f, int timeout_ms, cdc_err_t *err)
{
    int rc = 0;

    if (f->n) {
        /* the sinks on their own threads flush at the same time */
        pthread_mutex_lock(&f->mu);
        for (int k = 0; k < f->ns; k++) {
            worker_t *w = f->s[k].w;
            if (!w)
                continue;
            w->flush_gen++;
            w->flush_ms = timeout_ms;
            pthread_cond_signal(&w->cv);
        }
        pthread_mutex_unlock(&f->mu);
        for (int k = 0; k < f->ns; k++) {
            cdc_sink_t *snk = f->s[k].snk;
            cdc_err_t e = {0};
            if (f->s[k].w)
                continue;
            if (snk->ops->flush(snk, timeout_ms, &e)) {
                if (!rc)
                    *err = e;
                rc = -1;
            }
        }
        pthread_mutex_lock(&f->mu);
        for (int k = 0; k < f->ns; k++) {
            worker_t *w = f->s[k].w;
            if (!w)
                continue;
            /* only this thread raises flush_gen */
            while (w->flush_done < w->flush_gen)
                pthread_cond_wait(&f->cv, &f->mu);
            if (w->failed) {
                if (!rc)
                    *err = w->err;
                rc = -1;
            }
        }
        pthread_mutex_unlock(&f->mu);
    }
    if (cdc_flight_advance(f, err))
        rc = -1;
    return rc;
}

/* ---- backoff ------------------------------------------------------------- */

static int64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void cdc_backoff_init(cdc_backoff_t *b, int64_t min_ms, int64_t max_ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    b->min_ms = min_ms > 0 ? min_ms : CDC_BACKOFF_MIN_MS;
    b->max_ms = max_ms > 0 ? max_ms : CDC_BACKOFF_MAX_MS;
    if (b->max_ms < b->min_ms)
        b->max_ms = b->min_ms;
    b->seed = (unsigned)ts.tv_nsec ^ (unsigned)(uintptr_t)b;
    cdc_backoff_reset(b);
}

void cdc_backoff_reset(cdc_backoff_t *b)
{
    b->cur_ms = b->min_ms;
    b->attempt = 0;
}

int64_t cdc_backoff_delay(int attempt, int64_t min_ms, int64_t max_ms,
                          unsigned r)
{
    int64_t d = min_ms > 0 ? min_ms : 1;

    for (int i = 0; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    return d / 2 + (int64_t)(r % (uint64_t)(d / 2 + 1));
}

int64_t cdc_backoff_next(cdc_backoff_t *b)
{
    int64_t d = b->cur_ms;
    int64_t ms = d / 2 + (int64_t)((unsigned)rand_r(&b->seed) %
                                   (uint64_t)(d / 2 + 1));

    b->attempt++;
    b->cur_ms = d * 2 > b->max_ms ? b->max_ms : d * 2;
    return ms;
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int cdc_flight_nap(int64_t ms, const volatile int *stop)
{
    int64_t end = mono_us() + ms * 1000;

    for (;;) {
        int64_t left = end - mono_us();
        struct timespec ts;
        if (cdc_pipeline_stop || (stop && *stop))
            return 1;
        if (left <= 0)
            return 0;
        if (left > 50000)
            left = 50000;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)left * 1000L;
        nanosleep(&ts, NULL);
    }
}

/* ---- the feed ------------------------------------------------------------ */

struct cdc_feed {
    pthread_mutex_t mu;
    pthread_cond_t cv_put;   /* a txn or an error arrived */
    pthread_cond_t cv_take;  /* room appeared, or stop */
    cdc_txn_t **q;
    size_t cap, head, n;
    size_t bytes, max_bytes;
    int consumer_waiting;    /* pop() waits on cv_put */
    int reader_waiting;      /* push() waits on cv_take */
    int unsignalled;         /* queued for a waiting consumer, not signalled
                                yet (reader only, changed under mu) */
    int64_t unsignalled_us;  /* when the first of them was queued */
    int stop;
    int failed;
    int ended;               /* cdc_feed_end: the reader has no more */
    cdc_err_t err;
};

static size_t feed_size(const cdc_txn_t *tx)
{
    return tx->arena.total + 256;
}

cdc_feed_t *cdc_feed_new(size_t max_txns, size_t max_bytes)
{
    cdc_feed_t *q = cdc_xcalloc(1, sizeof(*q));

    q->cap = max_txns ? max_txns : 1;
    q->max_bytes = max_bytes ? max_bytes : 1;
    q->q = cdc_xcalloc(q->cap, sizeof(*q->q));
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv_put, NULL);
    pthread_cond_init(&q->cv_take, NULL);
    return q;
}

void cdc_feed_free(cdc_feed_t *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n; i++)
        cdc_txn_destroy(q->q[(q->head + i) % q->cap]);
    free(q->q);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv_put);
    pthread_cond_destroy(&q->cv_take);
    free(q);
}

int cdc_feed_push(cdc_feed_t *q, cdc_txn_t *tx)
{
    size_t sz = feed_size(tx);

    pthread_mutex_lock(&q->mu);
    while (!q->stop && (q->n == q->cap ||
                        (q->n > 0 && q->bytes + sz > q->max_bytes))) {
        if (q->consumer_waiting) { /* never sleep on unsignalled txns */
            pthread_cond_signal(&q->cv_put);
            q->unsignalled = 0;
        }
        q->reader_waiting++;
        pthread_cond_wait(&q->cv_take, &q->mu);
        q->reader_waiting--;
    }
    if (q->stop) {
        pthread_mutex_unlock(&q->mu);
        cdc_txn_destroy(tx);
        return -1;
    }
    q->q[(q->head + q->n) % q->cap] = tx;
    q->n++;
    q->bytes += sz;
    if (q->consumer_waiting && q->unsignalled++ == 0)
        q->unsignalled_us = mono_us();
    if (q->consumer_waiting && q->unsignalled >= CDC_FEED_BATCH) {
        pthread_cond_signal(&q->cv_put);
        q->unsignalled = 0;
    }
    pthread_mutex_unlock(&q->mu);
    return 0;
}

void cdc_feed_handover(cdc_feed_t *q, int (*more_ready)(void *ctx), void *ctx)
{
    if (!q->unsignalled)
        return;
    /* batch only while the oldest waiting txn is younger than 1 ms, so a
     * steady trickle is never held back (commit -> sink latency) */
    if (more_ready && q->unsignalled < CDC_FEED_BATCH &&
        mono_us() - q->unsignalled_us < 1000 && more_ready(ctx))
        return;
    pthread_mutex_lock(&q->mu);
    if (q->consumer_waiting)
        pthread_cond_signal(&q->cv_put);
    q->unsignalled = 0;
    pthread_mutex_unlock(&q->mu);
}

void cdc_feed_fail(cdc_feed_t *q, const cdc_err_t *err)
{
    pthread_mutex_lock(&q->mu);
    q->err = *err;
    q->failed = 1;
    pthread_cond_broadcast(&q->cv_put);
    pthread_mutex_unlock(&q->mu);
}

void cdc_feed_end(cdc_feed_t *q)
{
    pthread_mutex_lock(&q->mu);
    q->ended = 1;
    q->unsignalled = 0;
    pthread_cond_broadcast(&q->cv_put);
    pthread_mutex_unlock(&q->mu);
}

int cdc_feed_nap(cdc_feed_t *q, int64_t ms)
{
    int64_t end = mono_us() + ms * 1000;
    int stop;

    pthread_mutex_lock(&q->mu);
    for (;;) {
        int64_t left = end - mono_us();
        struct timespec ts;
        /* a signal handler cannot wake a condition variable: the stop
         * token is looked at every 100 ms */
        if (q->stop || cdc_pipeline_stop || left <= 0)
            break;
        deadline_in(&ts, left > 100000 ? 100 : (left + 999) / 1000);
        pthread_cond_timedwait(&q->cv_take, &q->mu, &ts);
    }
    stop = q->stop || cdc_pipeline_stop;
    pthread_mutex_unlock(&q->mu);
    return stop;
}

int cdc_feed_stopped(cdc_feed_t *q)
{
    return __atomic_load_n(&q->stop, __ATOMIC_ACQUIRE);
}

void cdc_feed_stop(cdc_feed_t *q)
{
    pthread_mutex_lock(&q->mu);
    __atomic_store_n(&q->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&q->cv_take);
    pthread_cond_broadcast(&q->cv_put);
    pthread_mutex_unlock(&q->mu);
}

int cdc_feed_pop(cdc_feed_t *q, cdc_txn_t **out, int timeout_ms,
                 cdc_err_t *err)
{
    struct timespec ts;
    int rc;

    *out = NULL;
    if (timeout_ms > 0)
        deadline_in(&ts, timeout_ms);
    pthread_mutex_lock(&q->mu);
    while (q->n == 0 && !q->failed && !q->ended && timeout_ms > 0) {
        int w;
        q->consumer_waiting++;
        w = pthread_cond_timedwait(&q->cv_put, &q->mu, &ts);
        q->consumer_waiting--;
        if (w == ETIMEDOUT)
            break;
    }
    if (q->n > 0) {
        cdc_txn_t *tx = q->q[q->head];
        size_t sz = feed_size(tx);
        q->head = (q->head + 1) % q->cap;
        q->n--;
        q->bytes = q->bytes > sz ? q->bytes - sz : 0;
        if (q->reader_waiting && (q->n <= q->cap / 2 || q->n == 0) &&
            (q->bytes <= q->max_bytes / 2 || q->n == 0))
            pthread_cond_signal(&q->cv_take);
        *out = tx;
        rc = CDC_SRC_TXN;
    } else if (q->failed) {
        *err = q->err;
        rc = -1;
    } else if (q->ended)
        rc = CDC_SRC_EOF;
    else
        rc = CDC_SRC_IDLE;
    pthread_mutex_unlock(&q->mu);
    return rc;
}

size_t cdc_feed_count(cdc_feed_t *q)
{
    size_t n;

    pthread_mutex_lock(&q->mu);
    n = q->n;
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t cdc_feed_bytes(cdc_feed_t *q)
{
    size_t n;

    pthread_mutex_lock(&q->mu);
    n = q->bytes;
    pthread_mutex_unlock(&q->mu);
    return n;
}
