/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flight.c - the delivery engine (flight.h states the invariant).
 */
#include <stdlib.h>
#include <string.h>

#include "cdc/checkpoint.h"
#include "cdc/flight.h"
#include "cdc/util.h"

volatile int cdc_pipeline_stop;

typedef struct slot {
    cdc_txn_t *tx;     /* owned */
    cdc_txn_t *views;  /* one per sink when nsinks > 1, else NULL */
    size_t bytes;
} slot_t;

typedef struct sink_state {
    cdc_sink_t *snk;
    size_t ahead;      /* slots from the head this sink acknowledged */
    cdc_flight_sink_stat_t st;
} sink_state_t;

struct cdc_flight {
    sink_state_t *s;
    int ns;
    slot_t *ring;
    size_t cap, head, n;
    size_t bytes;
    size_t max_txns, max_bytes;
    cdc_flight_progress_fn progress;
    void *ctx;
};

cdc_flight_t *cdc_flight_new(cdc_sink_t *const *sinks, int nsinks,
                             size_t max_txns, size_t max_bytes,
                             cdc_flight_progress_fn progress, void *ctx)
{
    cdc_flight_t *f = cdc_xcalloc(1, sizeof(*f));

    f->ns = nsinks;
    f->s = cdc_xcalloc((size_t)nsinks, sizeof(*f->s));
    for (int i = 0; i < nsinks; i++)
        f->s[i].snk = sinks[i];
    f->max_txns = max_txns;
    f->max_bytes = max_bytes;
    f->progress = progress;
    f->ctx = ctx;
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
        if (snk->ops->poll(snk, k == slow ? timeout_ms : 0, &e)) {
            if (!rc)
                *err = e;
            rc = -1;
        }
    }
    return rc;
}

static int done(const cdc_txn_t *v)
{
    return v->pending <= 0 && !v->failed;
}

int cdc_flight_advance(cdc_flight_t *f, cdc_err_t *err)
{
    size_t k = SIZE_MAX;

    /* each sink's own acknowledged prefix */
    for (int i = 0; i < f->ns; i++) {
        sink_state_t *s = &f->s[i];
        while (s->ahead < f->n) {
            const cdc_txn_t *v = view(f, at(f, s->ahead), i);
            if (!done(v))
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
    for (int i = 0; i < f->ns; i++)
        f->s[i].ahead -= k;
    if (f->n) {
        slot_t *sl = at(f, 0);
        for (int i = 0; i < f->ns; i++) {
            if (!view(f, sl, i)->failed)
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
        for (int k = 0; k < f->ns; k++) {
            cdc_sink_t *snk = f->s[k].snk;
            cdc_err_t e = {0};
            if (snk->ops->flush(snk, timeout_ms, &e)) {
                if (!rc)
                    *err = e;
                rc = -1;
            }
        }
    }
    if (cdc_flight_advance(f, err))
        rc = -1;
    return rc;
}
