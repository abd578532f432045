/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_flight.c - the delivery engine's invariant (cdc/flight.h), tested once:
 * the checkpoint is the end of the unbroken prefix that every sink
 * acknowledged, never a fragment, with fake sinks that fail, stall and
 * acknowledge out of order; then through cdc_pipeline_run with a fake
 * source: the stored checkpoint and the resume position after a failure.
 * Then the engine's reading-thread path: the bounded feed (back-pressure,
 * order, errors after what was queued, stop), the one backoff policy and
 * its naps honouring the stop token, and a threaded fake source that
 * loses its connection and reconnects with that backoff inside
 * cdc_pipeline_run (every change once, in order; SIGTERM during a long
 * backoff ends the run at once).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdc/backfill_int.h"
#include "cdc/checkpoint.h"
#include "cdc/flight.h"
#include "cdc/pipeline.h"
#include "tests/unit/cdc_test.h"

#define MAXSEQ 4096

/* ---- fake sinks ---------------------------------------------------------- */

enum { M_SYNC, M_FIFO, M_REORDER, M_STALL };

typedef struct fsink {
    cdc_sink_t base;
    int mode;
    cdc_txn_t **out;     /* written, not yet acknowledged */
    size_t nout;
    uint64_t fail_seq;   /* delivery of this seq fails (0: none) */
    uint64_t wfail_seq;  /* write() of this seq fails (0: none) */
    int stall;           /* polls left without any acknowledgement */
    unsigned rnd;
    unsigned char acked[MAXSEQ]; /* by seq: 1 acknowledged, 2 failed */
    uint64_t writes;
} fsink_t;

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static void ack(fsink_t *s, size_t i)
{
    cdc_txn_t *v = s->out[i];

    if (v->seq == s->fail_seq) {
        v->failed = 1;
        s->acked[v->seq] = 2;
    } else
        s->acked[v->seq] = 1;
    v->pending = 0;
    /* a sink drops its pointer once it reported the txn */
    memmove(&s->out[i], &s->out[i + 1], (s->nout - i - 1) * sizeof(*s->out));
    s->nout--;
}

static int f_write(cdc_sink_t *snk, cdc_txn_t *tx, cdc_err_t *err)
{
    fsink_t *s = (fsink_t *)snk;

    __atomic_add_fetch(&s->writes, 1, __ATOMIC_RELEASE);
    if (tx->pending || tx->failed) /* each sink gets a fresh view */
        T_FAIL_("view of seq %llu not fresh", (unsigned long long)tx->seq);
    if (tx->seq == s->wfail_seq) {
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, 0, "fake write failed");
        return -1;
    }
    tx->pending = 1;
    s->out = realloc(s->out, (s->nout + 1) * sizeof(*s->out));
    s->out[s->nout++] = tx;
    if (s->mode == M_SYNC)
        ack(s, s->nout - 1);
    return 0;
}

static int f_poll(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    fsink_t *s = (fsink_t *)snk;

    (void)timeout_ms;
    (void)err;
    if (s->stall > 0) {
        s->stall--;
        return 0;
    }
    switch (s->mode) {
    case M_FIFO:
        while (s->nout && rnd(&s->rnd) % 3)
            ack(s, 0);
        break;
    case M_REORDER:
    case M_STALL:
        for (size_t i = 0; i < s->nout;)
            if (rnd(&s->rnd) % 3 == 0)
                ack(s, i);
            else
                i++;
        if (s->mode == M_STALL && rnd(&s->rnd) % 5 == 0)
            s->stall = (int)(rnd(&s->rnd) % 20);
        break;
    }
    return 0;
}

static int f_flush(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    fsink_t *s = (fsink_t *)snk;

    (void)timeout_ms;
    (void)err;
    while (s->nout)
        ack(s, s->nout - 1); /* last first: out of order on purpose */
    return 0;
}

static void f_destroy(cdc_sink_t *snk)
{
    fsink_t *s = (fsink_t *)snk;
    free(s->out);
    free(s);
}

static cdc_sink_t *f_create(const cdc_conf_t *conf, cdc_err_t *err);

static const cdc_sink_ops_t fake_sink_ops = {
    .name = "fake",
    .abi = CDC_PLUGIN_ABI,
    .create = f_create,
    .write = f_write,
    .poll = f_poll,
    .flush = f_flush,
    .destroy = f_destroy,
};

/* the same on a thread of its own in a fan-out (ops->own_thread) */
static const cdc_sink_ops_t fake_thread_ops = {
    .name = "fake",
    .abi = CDC_PLUGIN_ABI,
    .create = f_create,
    .write = f_write,
    .poll = f_poll,
    .flush = f_flush,
    .destroy = f_destroy,
    .own_thread = 1,
};

static fsink_t *fsink_new_ops(int mode, unsigned seed,
                              const cdc_sink_ops_t *ops)
{
    fsink_t *s = calloc(1, sizeof(*s));
    s->base.ops = ops;
    s->mode = mode;
    s->rnd = seed;
    return s;
}

static fsink_t *fsink_new(int mode, unsigned seed)
{
    fsink_t *s = calloc(1, sizeof(*s));
    s->base.ops = &fake_sink_ops;
    s->mode = mode;
    s->rnd = seed;
    return s;
}

/* ---- the model --------------------------------------------------------- */

typedef struct model {
    int more[MAXSEQ];     /* by seq: fragment that is not the end */
    uint64_t n;           /* txns written */
    uint64_t reported;    /* last seq the progress callback saw */
    int bad;              /* progress out of order or at a fragment */
} model_t;

static void on_progress(void *ctx, const cdc_txn_t *tx)
{
    model_t *m = ctx;

    if (tx->more || tx->seq <= m->reported)
        m->bad = 1;
    m->reported = tx->seq;
}

/* the end of the unbroken prefix every sink acknowledged */
static uint64_t expected(const model_t *m, fsink_t **s, int ns)
{
    uint64_t ck = 0;

    for (uint64_t q = 1; q <= m->n; q++) {
        for (int k = 0; k < ns; k++)
            if (s[k]->acked[q] != 1)
                return ck;
        if (!m->more[q])
            ck = q;
    }
    return ck;
}

static cdc_txn_t *mktx(model_t *m, int more)
{
    cdc_txn_t *tx = cdc_txn_new();

    tx->seq = ++m->n;
    tx->pos.offset = tx->seq;
    tx->commit_us = (int64_t)tx->seq * 1000;
    tx->more = more;
    m->more[tx->seq] = more;
    return tx;
}

static unsigned test_seed(void)
{
    const char *e = getenv("CDC_TEST_SEED");
    unsigned seed = e && *e ? (unsigned)strtoul(e, NULL, 10) : 15u;
    printf("# CDC_TEST_SEED=%u\n", seed);
    return seed;
}

/* Random scenarios: 1 to 3 sinks of random kinds, fragments, a bounded
 * ring; after every step the reported checkpoint is exactly the end of the
 * prefix all sinks acknowledged. */
CDC_TEST(invariant_random)
{
    unsigned seed = test_seed(), r = seed;

    for (int it = 0; it < 300; it++) {
        model_t m = {0};
        fsink_t *s[3];
        cdc_sink_t *snk[3];
        int ns = 1 + (int)(rnd(&r) % 3);
        cdc_err_t err = {0};
        cdc_flight_t *f;
        int left = 0, threads = 0;

        for (int k = 0; k < ns; k++) {
            int thr = ns > 1 && rnd(&r) % 2;
            s[k] = fsink_new_ops((int)(rnd(&r) % 4), rnd(&r),
                                 thr ? &fake_thread_ops : &fake_sink_ops);
            snk[k] = &s[k]->base;
            threads |= thr;
        }
        f = cdc_flight_new(snk, ns, 1 + rnd(&r) % 64, 0, on_progress, &m);
        for (int step = 0; m.n < 2000 && step < 4000; step++) {
            if (!cdc_flight_full(f)) {
                int more;
                if (left > 0)
                    more = --left > 0;
                else if (rnd(&r) % 5 == 0) {
                    left = 1 + (int)(rnd(&r) % 6);
                    more = 1;
                } else
                    more = 0;
                T_EQ_INT(cdc_flight_write(f, mktx(&m, more), &err), 0);
            }
            T_EQ_INT(cdc_flight_poll(f, 0, &err), 0);
            T_EQ_INT(cdc_flight_advance(f, &err), 0);
            /* with a sink on its own thread the acknowledgements go on
             * while we look: the checkpoint is never past the prefix */
            if (threads ? m.reported > expected(&m, s, ns)
                        : m.reported != expected(&m, s, ns)) {
                T_FAIL_("seed %u it %d step %d: checkpoint %llu, prefix "
                        "end %llu", seed, it, step,
                        (unsigned long long)m.reported,
                        (unsigned long long)expected(&m, s, ns));
                break;
            }
        }
        /* finish the open transaction, then drain */
        while (left > 0)
            T_EQ_INT(cdc_flight_write(f, mktx(&m, --left > 0), &err), 0);
        T_EQ_INT(cdc_flight_flush(f, 1000, &err), 0);
        T_EQ_INT(m.reported, m.n);
        T_EQ_INT(cdc_flight_count(f), 0);
        T_EQ_INT(cdc_flight_bytes(f), 0);
        T_ASSERT(!m.bad);
        for (int k = 0; k < ns; k++) {
            cdc_flight_sink_stat_t st;
            cdc_flight_sink_stat(f, k, &st);
            T_EQ_INT(st.behind, 0);
            T_EQ_INT(st.pos.offset, m.n);
            T_EQ_INT(s[k]->writes, m.n); /* the source was read once */
        }
        cdc_flight_free(f);
        for (int k = 0; k < ns; k++)
            f_destroy(snk[k]);
    }
}

/* A failed delivery: the checkpoint stops before it however far the other
 * sink and the later txns got, and advance reports it once it is the
 * head. */
CDC_TEST(failed_delivery_holds_the_checkpoint)
{
    model_t m = {0};
    fsink_t *a = fsink_new(M_REORDER, 7), *b = fsink_new(M_SYNC, 0);
    cdc_sink_t *snk[2] = {&a->base, &b->base};
    cdc_flight_t *f = cdc_flight_new(snk, 2, 0, 0, on_progress, &m);
    cdc_err_t err = {0};
    int failed = 0;

    a->fail_seq = 40;
    for (int i = 0; i < 100; i++)
        T_EQ_INT(cdc_flight_write(f, mktx(&m, 0), &err), 0);
    for (int i = 0; i < 200 && !failed; i++) {
        T_EQ_INT(cdc_flight_poll(f, 0, &err), 0);
        failed = cdc_flight_advance(f, &err) != 0;
    }
    T_ASSERT(failed);
    T_EQ_INT(err.code, CDC_EXIT_FAIL);
    T_ASSERT(strstr(err.msg, "sink fake"));
    T_EQ_INT(m.reported, 39);
    cdc_err_clear(&err);
    T_ASSERT(cdc_flight_flush(f, 1000, &err) != 0);
    T_EQ_INT(m.reported, 39);
    T_EQ_INT(cdc_flight_count(f), 61);
    cdc_flight_free(f);
    f_destroy(snk[0]);
    f_destroy(snk[1]);
}

/* The same with the failing sink on its own thread. */
CDC_TEST(failed_delivery_on_a_thread)
{
    model_t m = {0};
    fsink_t *a = fsink_new_ops(M_REORDER, 7, &fake_thread_ops);
    fsink_t *b = fsink_new(M_SYNC, 0);
    cdc_sink_t *snk[2] = {&a->base, &b->base};
    cdc_flight_t *f = cdc_flight_new(snk, 2, 0, 0, on_progress, &m);
    cdc_err_t err = {0};
    int failed = 0;

    a->fail_seq = 40;
    for (int i = 0; i < 100; i++)
        T_EQ_INT(cdc_flight_write(f, mktx(&m, 0), &err), 0);
    for (int i = 0; i < 500 && !failed; i++) {
        T_EQ_INT(cdc_flight_poll(f, 10, &err), 0);
        failed = cdc_flight_advance(f, &err) != 0;
    }
    T_ASSERT(failed);
    T_ASSERT(strstr(err.msg, "sink fake"));
    T_EQ_INT(m.reported, 39);
    cdc_err_clear(&err);
    T_ASSERT(cdc_flight_flush(f, 1000, &err) != 0);
    T_EQ_INT(m.reported, 39);
    cdc_flight_free(f);
    f_destroy(snk[0]);
    f_destroy(snk[1]);
}

/* A write that fails: later sinks never see it; the prefix stays before. */
CDC_TEST(failed_write)
{
    model_t m = {0};
    fsink_t *a = fsink_new(M_SYNC, 0), *b = fsink_new(M_SYNC, 0);
    cdc_sink_t *snk[2] = {&a->base, &b->base};
    cdc_flight_t *f = cdc_flight_new(snk, 2, 0, 0, on_progress, &m);
    cdc_err_t err = {0};

    a->wfail_seq = 5;
    for (int i = 0; i < 4; i++)
        T_EQ_INT(cdc_flight_write(f, mktx(&m, 0), &err), 0);
    T_EQ_INT(cdc_flight_write(f, mktx(&m, 0), &err), -1);
    T_EQ_INT(b->writes, 4);
    cdc_err_clear(&err);
    T_EQ_INT(cdc_flight_advance(f, &err), -1);
    T_EQ_INT(m.reported, 4);
    cdc_flight_free(f);
    f_destroy(snk[0]);
    f_destroy(snk[1]);
}

/* One sink does not acknowledge: the other goes on up to the bound, the
 * checkpoint does not move, then the engine is full (back-pressure); when
 * the sink comes back everything is delivered. */
CDC_TEST(stalled_sink_is_bounded)
{
    model_t m = {0};
    fsink_t *a = fsink_new(M_FIFO, 3), *b = fsink_new(M_SYNC, 0);
    cdc_sink_t *snk[2] = {&a->base, &b->base};
    cdc_flight_t *f = cdc_flight_new(snk, 2, 50, 0, on_progress, &m);
    cdc_err_t err = {0};
    cdc_flight_sink_stat_t sa, sb;
    int writes = 0;

    a->stall = 1000000;
    for (int i = 0; i < 500; i++) {
        if (!cdc_flight_full(f)) {
            T_EQ_INT(cdc_flight_write(f, mktx(&m, i % 3 != 2), &err), 0);
            writes++;
        }
        T_EQ_INT(cdc_flight_poll(f, 0, &err), 0);
        T_EQ_INT(cdc_flight_advance(f, &err), 0);
    }
    T_EQ_INT(writes, 50);
    T_EQ_INT(m.reported, 0);
    cdc_flight_sink_stat(f, 0, &sa);
    cdc_flight_sink_stat(f, 1, &sb);
    T_EQ_INT(sa.behind, 50);
    T_EQ_INT(sa.acked, 0);
    T_EQ_INT(sb.behind, 0);
    T_EQ_INT(sb.acked, 16); /* ends only: every third txn */
    T_EQ_INT(sb.pos.offset, 48);
    a->stall = 0;
    T_EQ_INT(cdc_flight_flush(f, 1000, &err), 0);
    /* 49 and 50 are fragments of an open txn: delivered and retired, but
     * not a resume point */
    T_EQ_INT(m.reported, 48);
    T_EQ_INT(cdc_flight_count(f), 0);
    T_ASSERT(!m.bad);
    cdc_flight_free(f);
    f_destroy(snk[0]);
    f_destroy(snk[1]);
}

/* ---- through the pipeline ---------------------------------------------- */

typedef struct fsrc {
    cdc_source_t base;
    uint64_t next, start;
} fsrc_t;

static uint64_t g_resume, g_fail_seq;
static int g_started;

static cdc_source_t *s_create(const cdc_conf_t *conf, cdc_err_t *err)
{
    fsrc_t *s = calloc(1, sizeof(*s));
    (void)conf;
    (void)err;
    return &s->base;
}

static int s_start(cdc_source_t *src, const cdc_pos_t *resume,
                   cdc_err_t *err)
{
    fsrc_t *s = (fsrc_t *)src;
    (void)err;
    g_started++;
    g_resume = resume ? resume->offset : 0;
    s->next = g_resume + 1;
    return 0;
}

/* txns of 3 fragments: offsets 3k+1, 3k+2 are fragments, 3k+3 ends */
static int s_next(cdc_source_t *src, cdc_txn_t **out, int timeout_ms,
                  cdc_err_t *err)
{
    fsrc_t *s = (fsrc_t *)src;
    cdc_txn_t *tx = cdc_txn_new();
    (void)timeout_ms;
    (void)err;
    snprintf(tx->pos.file, sizeof(tx->pos.file), "fake.000001");
    tx->pos.offset = s->next;
    tx->more = s->next % 3 != 0;
    tx->commit_us = (int64_t)s->next;
    s->next++;
    *out = tx;
    return CDC_SRC_TXN;
}

static void s_destroy(cdc_source_t *src)
{
    free(src);
}

static const cdc_source_ops_t fake_src_ops = {
    .name = "fakesrc",
    .abi = CDC_PLUGIN_ABI,
    .create = s_create,
    .start = s_start,
    .next = s_next,
    .destroy = s_destroy,
};

static cdc_sink_t *f_create(const cdc_conf_t *conf, cdc_err_t *err)
{
    fsink_t *s = fsink_new(M_REORDER, 11);
    (void)conf;
    (void)err;
    /* positions are offsets here: fail the delivery at that offset */
    s->fail_seq = g_fail_seq;
    return &s->base;
}

CDC_TEST(pipeline_checkpoint_and_resume)
{
    char dir[] = "/tmp/t_flight.XXXXXX";
    cdc_conf_t *c = cdc_conf_new();
    cdc_err_t err = {0};
    cdc_ckpt_t ck;
    char *path;
    int rc;

    T_ASSERT(mkdtemp(dir) != NULL);
    cdc_conf_set(c, "state.dir", dir, NULL);
    cdc_conf_set(c, "pipeline.name", "flight", NULL);
    cdc_conf_set(c, "run.max_txns", "300", NULL);
    cdc_conf_set(c, "pipeline.max_inflight", "17", NULL);
    /* seq == offset in the first run: the delivery of offset 100 fails */
    g_fail_seq = 100;
    rc = cdc_pipeline_run(c, &fake_src_ops, &fake_sink_ops, &err);
    T_EQ_INT(rc, CDC_EXIT_FAIL);
    path = cdc_ckpt_path(dir, "flight");
    memset(&ck, 0, sizeof(ck));
    T_EQ_INT(cdc_ckpt_load(path, &ck, &err), 1);
    T_EQ_INT(ck.pos.offset, 99); /* the last end before the failure */
    /* the restart resumes there and delivers everything */
    g_fail_seq = 0;
    cdc_err_clear(&err);
    /* run.max_txns counts whole transactions (3 fragments each here): 10
     * of them are offsets 100..129, and the run stops at an end */
    cdc_conf_set(c, "run.max_txns", "10", NULL);
    rc = cdc_pipeline_run(c, &fake_src_ops, &fake_sink_ops, &err);
    T_EQ_INT(rc, 0);
    T_EQ_INT(g_resume, 99);
    T_EQ_INT(cdc_ckpt_load(path, &ck, &err), 1);
    T_EQ_INT(ck.pos.offset, 129);
    T_EQ_INT(g_started, 2);
    free(path);
    cdc_conf_destroy(c);
    {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        T_EQ_INT(system(cmd), 0);
    }
}

/* backfill's signal handler sets the one stop token, which the sinks
 * honour where they block (tests/unit/t_sink_kafka.c: a full queue) */
CDC_TEST(backfill_signal_sets_the_stop_token)
{
    cdc_bf_catch_signals();
    T_EQ_INT(cdc_pipeline_stop, 0);
    T_EQ_INT(raise(SIGTERM), 0);
    T_EQ_INT(cdc_pipeline_stop, SIGTERM);
    cdc_bf_catch_signals(); /* a new run starts afresh */
    T_EQ_INT(cdc_pipeline_stop, 0);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
}

/* ---- the reading thread's feed and the backoff --------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- fan-out threads ----------------------------------------------------- */

/* A sink whose write blocks while *gate is set (a full producer queue, a
 * topic being created), for at most 5 s; with stats, write and stats note
 * the thread that calls them. */
static volatile int g_gate;
static pthread_t g_write_thr, g_stats_thr;
static int g_stats_calls;

static int gate_write(cdc_sink_t *snk, cdc_txn_t *tx, cdc_err_t *err)
{
    int64_t t0 = mono_ms();

    g_write_thr = pthread_self();
    while (__atomic_load_n(&g_gate, __ATOMIC_ACQUIRE) && mono_ms() - t0 < 5000)
        usleep(1000);
    return f_write(snk, tx, err);
}

static void gate_stats(cdc_sink_t *snk)
{
    (void)snk;
    g_stats_thr = pthread_self();
    __atomic_add_fetch(&g_stats_calls, 1, __ATOMIC_RELEASE);
}

static const cdc_sink_ops_t gate_sink_ops = {
    .name = "gate",
    .abi = CDC_PLUGIN_ABI,
    .create = f_create,
    .write = gate_write,
    .poll = f_poll,
    .flush = f_flush,
    .destroy = f_destroy,
    .stats = gate_stats,
};

/* Fan-out of one sink that blocks (no own_thread: the only one of its
 * kind, so it gets a worker) and one wide-like sink on its own thread: the
 * engine never waits in the blocked write, the other sink receives and
 * acknowledges every txn meanwhile (up to the bound), the checkpoint stays
 * before what the blocked sink did not acknowledge; released, everything
 * is delivered.  The stats hook runs on the thread that writes the sink. */
CDC_TEST(blocked_sink_does_not_stall_the_others)
{
    model_t m = {0};
    fsink_t *a = fsink_new_ops(M_SYNC, 0, &gate_sink_ops);
    fsink_t *b = fsink_new_ops(M_SYNC, 0, &fake_thread_ops);
    cdc_sink_t *snk[2] = {&a->base, &b->base};
    cdc_flight_t *f = cdc_flight_new(snk, 2, 40, 0, on_progress, &m);
    cdc_err_t err = {0};
    cdc_flight_sink_stat_t sa, sb;
    int64_t t0 = mono_ms();
    int writes = 0;

    __atomic_store_n(&g_gate, 1, __ATOMIC_RELEASE);
    g_stats_calls = 0;
    for (int i = 0; i < 100 && mono_ms() - t0 < 2000; i++) {
        if (!cdc_flight_full(f)) {
            T_EQ_INT(cdc_flight_write(f, mktx(&m, 0), &err), 0);
            writes++;
        }
        T_EQ_INT(cdc_flight_poll(f, 10, &err), 0);
        T_EQ_INT(cdc_flight_advance(f, &err), 0);
    }
    /* the engine's thread was never held in the blocked write */
    T_ASSERT(mono_ms() - t0 < 2000);
    T_EQ_INT(writes, 40);
    cdc_flight_sink_stat(f, 1, &sb);
    T_EQ_INT(sb.acked, 40);
    T_EQ_INT(sb.behind, 0);
    cdc_flight_sink_stat(f, 0, &sa);
    T_EQ_INT(sa.acked, 0);
    T_EQ_INT(m.reported, 0);
    __atomic_store_n(&g_gate, 0, __ATOMIC_RELEASE);
    T_EQ_INT(cdc_flight_flush(f, 1000, &err), 0);
    T_EQ_INT(m.reported, 40);
    T_ASSERT(!m.bad);
    /* stats: on the sink's worker (the thread that wrote it), not here */
    cdc_flight_sink_stats(f, 0);
    for (int i = 0; i < 500 && !__atomic_load_n(&g_stats_calls,
                                                __ATOMIC_ACQUIRE); i++)
        usleep(1000);
    T_EQ_INT(__atomic_load_n(&g_stats_calls, __ATOMIC_ACQUIRE), 1);
    T_ASSERT(pthread_equal(g_stats_thr, g_write_thr));
    T_ASSERT(!pthread_equal(g_stats_thr, pthread_self()));
    cdc_flight_free(f);
    f_destroy(snk[0]);
    f_destroy(snk[1]);

    /* two sinks without own_thread share the engine's thread (the
     * envelope caches have one writer): stats at once, here */
    a = fsink_new_ops(M_SYNC, 0, &gate_sink_ops);
    b = fsink_new(M_SYNC, 0);
    snk[0] = &a->base;
    snk[1] = &b->base;
    m = (model_t){0};
    g_stats_calls = 0;
    f = cdc_flight_new(snk, 2, 40, 0, on_progress, &m);
    T_EQ_INT(cdc_flight_write(f, mktx(&m, 0), &err), 0);
    T_ASSERT(pthread_equal(g_write_thr, pthread_self()));
    cdc_flight_sink_stats(f, 0);
    T_EQ_INT(g_stats_calls, 1);
    T_ASSERT(pthread_equal(g_stats_thr, pthread_self()));
    T_EQ_INT(cdc_flight_flush(f, 1000, &err), 0);
    T_EQ_INT(m.reported, 1);
    cdc_flight_free(f);
    f_destroy(snk[0]);
    f_destroy(snk[1]);
}

/* A sink on its own thread whose writes are slow (a wide sink applying
 * its batches) acknowledges as it goes: handed 50 txns at once, the first
 * ones join the checkpoint while it still writes the others, not when it
 * wrote them all. */
static int slow_write(cdc_sink_t *snk, cdc_txn_t *tx, cdc_err_t *err)
{
    usleep(20000);
    return f_write(snk, tx, err);
}

static const cdc_sink_ops_t slow_thread_ops = {
    .name = "slow",
    .abi = CDC_PLUGIN_ABI,
    .create = f_create,
    .write = slow_write,
    .poll = f_poll,
    .flush = f_flush,
    .destroy = f_destroy,
    .own_thread = 1,
};

CDC_TEST(acks_published_while_writing)
{
    model_t m = {0};
    fsink_t *a = fsink_new_ops(M_SYNC, 0, &slow_thread_ops);
    fsink_t *b = fsink_new(M_SYNC, 0);
    cdc_sink_t *snk[2] = {&a->base, &b->base};
    cdc_flight_t *f = cdc_flight_new(snk, 2, 0, 0, on_progress, &m);
    cdc_err_t err = {0};
    uint64_t written = 0;
    int64_t t0;

    for (int i = 0; i < 50; i++)
        T_EQ_INT(cdc_flight_write(f, mktx(&m, 0), &err), 0);
    t0 = mono_ms();
    while (m.reported < 5 && mono_ms() - t0 < 5000) {
        T_EQ_INT(cdc_flight_poll(f, 10, &err), 0);
        T_EQ_INT(cdc_flight_advance(f, &err), 0);
    }
    written = __atomic_load_n(&a->writes, __ATOMIC_ACQUIRE);
    T_ASSERT(m.reported >= 5);
    /* 50 writes take 1 s: the first acknowledgements came long before */
    if (written >= 40)
        T_FAIL_("checkpoint %llu only after %llu of 50 writes",
                (unsigned long long)m.reported,
                (unsigned long long)written);
    T_EQ_INT(cdc_flight_flush(f, 5000, &err), 0);
    T_EQ_INT(m.reported, 50);
    T_ASSERT(!m.bad);
    cdc_flight_free(f);
    f_destroy(snk[0]);
    f_destroy(snk[1]);
}

/* A batching sink on its own thread (a wide sink: a batch of 5 is applied
 * by the write that fills it, a partial batch only when the engine waits
 * for it: poll with a timeout).  The engine runs as the pipeline does,
 * bounded to 12 txns: whenever the ring is full it waits for this sink;
 * the batches still fill up, because what the sink acknowledged lets the
 * engine read on before the sink would close a partial one. */
static uint64_t g_partial;

static int batch_write(cdc_sink_t *snk, cdc_txn_t *tx, cdc_err_t *err)
{
    fsink_t *s = (fsink_t *)snk;
    int rc;

    usleep(2000);
    rc = f_write(snk, tx, err);
    if (!rc && s->nout == 5)
        while (s->nout)
            ack(s, 0);
    return rc;
}

static int batch_poll(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    fsink_t *s = (fsink_t *)snk;

    (void)err;
    if (timeout_ms > 0 && s->nout) {
        g_partial++;
        while (s->nout)
            ack(s, 0);
    }
    return 0;
}

static const cdc_sink_ops_t batch_thread_ops = {
    .name = "batch",
    .abi = CDC_PLUGIN_ABI,
    .create = f_create,
    .write = batch_write,
    .poll = batch_poll,
    .flush = f_flush,
    .destroy = f_destroy,
    .own_thread = 1,
};

CDC_TEST(batches_fill_while_the_engine_waits)
{
    model_t m = {0};
    fsink_t *a = fsink_new_ops(M_FIFO, 0, &batch_thread_ops);
    fsink_t *b = fsink_new(M_SYNC, 0);
    cdc_sink_t *snk[2] = {&a->base, &b->base};
    cdc_flight_t *f = cdc_flight_new(snk, 2, 12, 0, on_progress, &m);
    cdc_err_t err = {0};
    uint64_t waits = 0;

    g_partial = 0;
    while (m.n < 300) {
        if (cdc_flight_full(f)) {
            waits++;
            T_EQ_INT(cdc_flight_poll(f, 100, &err), 0);
        } else {
            T_EQ_INT(cdc_flight_write(f, mktx(&m, 0), &err), 0);
            T_EQ_INT(cdc_flight_poll(f, 0, &err), 0);
        }
        T_EQ_INT(cdc_flight_advance(f, &err), 0);
    }
    T_EQ_INT(cdc_flight_flush(f, 1000, &err), 0);
    T_EQ_INT(m.reported, 300);
    T_ASSERT(!m.bad);
    /* the engine waited for the sink many times; of 60 batches at most a
     * few closed early */
    T_ASSERT(waits >= 20);
    if (g_partial > 6)
        T_FAIL_("%llu of about 60 batches closed early (the engine waited "
                "%llu times)", (unsigned long long)g_partial,
                (unsigned long long)waits);
    cdc_flight_free(f);
    f_destroy(snk[0]);
    f_destroy(snk[1]);
}

/* flush waits for every sink on a thread, however many there are (it
 * stopped looking after 64): sinks that acknowledge only when flushed */
static int never_poll(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    (void)snk;
    (void)timeout_ms;
    (void)err;
    return 0;
}

static const cdc_sink_ops_t flush_only_ops = {
    .name = "flushonly",
    .abi = CDC_PLUGIN_ABI,
    .create = f_create,
    .write = f_write,
    .poll = never_poll,
    .flush = f_flush,
    .destroy = f_destroy,
    .own_thread = 1,
};

CDC_TEST(flush_waits_for_every_threaded_sink)
{
    enum { NS = 70 };
    model_t m = {0};
    fsink_t *s[NS];
    cdc_sink_t *snk[NS];
    cdc_flight_t *f;
    cdc_err_t err = {0};

    for (int k = 0; k < NS; k++) {
        s[k] = fsink_new_ops(M_FIFO, (unsigned)k, &flush_only_ops);
        snk[k] = &s[k]->base;
    }
    f = cdc_flight_new(snk, NS, 0, 0, on_progress, &m);
    for (int i = 0; i < 10; i++)
        T_EQ_INT(cdc_flight_write(f, mktx(&m, 0), &err), 0);
    T_EQ_INT(cdc_flight_advance(f, &err), 0);
    T_EQ_INT(m.reported, 0);
    T_EQ_INT(cdc_flight_flush(f, 1000, &err), 0);
    T_EQ_INT(m.reported, 10);
    for (int k = 0; k < NS; k++) {
        cdc_flight_sink_stat_t st;
        cdc_flight_sink_stat(f, k, &st);
        T_EQ_INT(st.acked, 10);
    }
    cdc_flight_free(f);
    for (int k = 0; k < NS; k++)
        f_destroy(snk[k]);
}


typedef struct feeder {
    cdc_feed_t *q;
    unsigned rnd;
    uint64_t n;                /* txns to push */
    volatile uint64_t pushed;  /* pushed so far */
    size_t cap, max_bytes;
    volatile size_t next_sz;   /* size of the txn being pushed */
    int over;                  /* a bound seen exceeded */
    int stopped;               /* push returned -1 */
} feeder_t;

static void *feeder_main(void *arg)
{
    feeder_t *fd = arg;

    for (uint64_t i = 1; i <= fd->n; i++) {
        cdc_txn_t *tx = cdc_txn_new();
        tx->seq = i;
        tx->pos.offset = i;
        cdc_arena_alloc(&tx->arena, 1 + rnd(&fd->rnd) % 3000);
        fd->next_sz = tx->arena.total + 256; /* as the feed counts it */
        if (cdc_feed_push(fd->q, tx) < 0) {
            fd->stopped = 1;
            break;
        }
        __atomic_store_n(&fd->pushed, i, __ATOMIC_RELEASE);
        /* only this thread adds: what it sees now is at most the peak */
        if (cdc_feed_count(fd->q) > fd->cap ||
            cdc_feed_bytes(fd->q) > fd->max_bytes)
            fd->over = 1;
        if (i % 64 == 0)
            cdc_feed_handover(fd->q, NULL, NULL);
    }
    cdc_feed_handover(fd->q, NULL, NULL);
    return NULL;
}

/* Seeded: random bounds and sizes, a consumer that pauses; the feed never
 * holds more than its bounds, hands everything over once and in order,
 * and a consumer that stops taking stalls the reader (back-pressure). */
CDC_TEST(feed_bounded_backpressure)
{
    unsigned seed = test_seed(), r = seed;

    for (int it = 0; it < 20; it++) {
        feeder_t fd = {0};
        pthread_t thr;
        uint64_t got = 0, at = 0;
        cdc_err_t err = {0};
        int bad = 0;

        fd.cap = 1 + rnd(&r) % 16;
        fd.max_bytes = 4096 + rnd(&r) % 16384;
        fd.n = 300 + rnd(&r) % 300;
        fd.rnd = rnd(&r);
        fd.q = cdc_feed_new(fd.cap, fd.max_bytes);
        T_ASSERT(pthread_create(&thr, NULL, feeder_main, &fd) == 0);
        /* take a third, with pauses */
        while (got < fd.n / 3) {
            cdc_txn_t *tx;
            int rc = cdc_feed_pop(fd.q, &tx, 100, &err);
            if (rc == CDC_SRC_IDLE)
                continue;
            T_EQ_INT(rc, CDC_SRC_TXN);
            if (rc != CDC_SRC_TXN)
                break;
            bad |= tx->seq != ++got;
            cdc_txn_destroy(tx);
            if (rnd(&r) % 8 == 0)
                usleep(200);
        }
        /* stop taking: the reader fills the feed, then waits for room:
         * it stalls when the feed is full or its next txn does not fit,
         * and once waiting it is woken when the feed drained to half */
        {
            int64_t t_end = mono_ms() + 5000;
            int stalled = 0;
            while (!stalled && mono_ms() < t_end) {
                at = __atomic_load_n(&fd.pushed, __ATOMIC_ACQUIRE);
                usleep(30000);
                stalled = at == __atomic_load_n(&fd.pushed, __ATOMIC_ACQUIRE)
                          && (cdc_feed_count(fd.q) > fd.cap / 2 ||
                              cdc_feed_bytes(fd.q) > fd.max_bytes / 2 ||
                              cdc_feed_bytes(fd.q) + fd.next_sz >
                                  fd.max_bytes);
            }
            if (!stalled)
                T_FAIL_("it %d: pushed %llu of %llu, feed %zu of %zu txns, "
                        "%zu of %zu bytes", it, (unsigned long long)at,
                        (unsigned long long)fd.n, cdc_feed_count(fd.q),
                        fd.cap, cdc_feed_bytes(fd.q), fd.max_bytes);
        }
        T_ASSERT(at < fd.n);
        T_EQ_INT(at - got, cdc_feed_count(fd.q));
        /* the rest */
        while (got < fd.n) {
            cdc_txn_t *tx;
            int rc = cdc_feed_pop(fd.q, &tx, 1000, &err);
            T_EQ_INT(rc, CDC_SRC_TXN);
            if (rc != CDC_SRC_TXN)
                break;
            bad |= tx->seq != ++got;
            cdc_txn_destroy(tx);
        }
        pthread_join(thr, NULL);
        T_ASSERT(!bad);
        T_ASSERT(!fd.over);
        T_EQ_INT(got, fd.n);
        T_EQ_INT(cdc_feed_count(fd.q), 0);
        cdc_feed_free(fd.q);
    }
}

/* The reader's error reaches the consumer after what was queued before
 * it; stopping wakes a reader that waits for room at once. */
CDC_TEST(feed_error_order_and_stop)
{
    cdc_feed_t *q = cdc_feed_new(4, 1 << 20);
    feeder_t fd = {.q = q, .n = 100, .cap = 4, .max_bytes = 1 << 20};
    cdc_err_t e = {0}, got = {0};
    cdc_txn_t *tx;
    pthread_t thr;
    int64_t t0;

    for (int i = 1; i <= 3; i++) {
        tx = cdc_txn_new();
        tx->seq = (uint64_t)i;
        T_EQ_INT(cdc_feed_push(q, tx), 0);
    }
    cdc_err_set(&e, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE, "link lost");
    cdc_feed_fail(q, &e);
    for (int i = 1; i <= 3; i++) {
        T_EQ_INT(cdc_feed_pop(q, &tx, 0, &got), CDC_SRC_TXN);
        T_EQ_INT(tx->seq, i);
        cdc_txn_destroy(tx);
    }
    T_EQ_INT(cdc_feed_pop(q, &tx, 10, &got), -1);
    T_EQ_STR(got.msg, "link lost");
    T_ASSERT(got.flags & CDC_ERR_F_RETRIABLE);
    cdc_feed_free(q);

    /* a reader blocked on a full feed */
    q = cdc_feed_new(4, 1 << 20);
    fd.q = q;
    T_ASSERT(pthread_create(&thr, NULL, feeder_main, &fd) == 0);
    while (__atomic_load_n(&fd.pushed, __ATOMIC_ACQUIRE) < 4)
        usleep(1000);
    usleep(20000);
    T_EQ_INT(__atomic_load_n(&fd.pushed, __ATOMIC_ACQUIRE), 4);
    t0 = mono_ms();
    cdc_feed_stop(q);
    pthread_join(thr, NULL);
    T_ASSERT(mono_ms() - t0 < 200);
    T_ASSERT(fd.stopped);
    T_ASSERT(cdc_feed_stopped(q));
    cdc_feed_free(q); /* frees the 4 left */
}

/* A finite reader (decode, backfill) ends its feed: the consumer takes
 * everything queued, in order, then EOF at once; a consumer waiting on an
 * empty feed is woken by the end, not by its timeout. */
static void *end_later(void *arg)
{
    usleep(50000);
    cdc_feed_end(arg);
    return NULL;
}

CDC_TEST(feed_end_after_queued)
{
    cdc_feed_t *q = cdc_feed_new(4, 1 << 20);
    cdc_err_t got = {0};
    cdc_txn_t *tx;
    pthread_t thr;
    int64_t t0;

    for (int i = 1; i <= 3; i++) {
        tx = cdc_txn_new();
        tx->seq = (uint64_t)i;
        T_EQ_INT(cdc_feed_push(q, tx), 0);
    }
    cdc_feed_end(q);
    for (int i = 1; i <= 3; i++) {
        T_EQ_INT(cdc_feed_pop(q, &tx, 1000, &got), CDC_SRC_TXN);
        T_EQ_INT(tx->seq, i);
        cdc_txn_destroy(tx);
    }
    t0 = mono_ms();
    T_EQ_INT(cdc_feed_pop(q, &tx, 10000, &got), CDC_SRC_EOF);
    T_ASSERT(tx == NULL);
    T_ASSERT(mono_ms() - t0 < 1000);
    cdc_feed_free(q);

    q = cdc_feed_new(4, 1 << 20);
    T_ASSERT(pthread_create(&thr, NULL, end_later, q) == 0);
    t0 = mono_ms();
    T_EQ_INT(cdc_feed_pop(q, &tx, 10000, &got), CDC_SRC_EOF);
    T_ASSERT(mono_ms() - t0 < 5000);
    pthread_join(thr, NULL);
    cdc_feed_free(q);
}

CDC_TEST(backoff_policy)
{
    cdc_backoff_t b;
    int64_t d = 100;

    cdc_backoff_init(&b, 100, 1000);
    for (int i = 0; i < 8; i++) {
        int64_t ms = cdc_backoff_next(&b);
        T_ASSERT(ms >= d / 2 && ms <= d);
        T_EQ_INT(b.attempt, i + 1);
        /* the formula the message sinks schedule with agrees */
        for (unsigned j = 0; j < 50; j++) {
            int64_t f = cdc_backoff_delay(i, 100, 1000, j * 7919u);
            T_ASSERT(f >= d / 2 && f <= d);
        }
        d = d * 2 > 1000 ? 1000 : d * 2;
    }
    cdc_backoff_reset(&b);
    T_EQ_INT(b.attempt, 0);
    {
        int64_t ms = cdc_backoff_next(&b);
        T_ASSERT(ms >= 50 && ms <= 100);
    }
    cdc_backoff_init(&b, 0, 0); /* the defaults: 0.5 s .. 30 s */
    T_EQ_INT(b.min_ms, CDC_BACKOFF_MIN_MS);
    T_EQ_INT(b.max_ms, CDC_BACKOFF_MAX_MS);
}

static cdc_feed_t *g_stopq;

static void *stop_later(void *arg)
{
    usleep(150000);
    if (arg)
        cdc_feed_stop(g_stopq);
    else
        cdc_pipeline_stop = SIGTERM; /* what the signal handler does */
    return NULL;
}

/* A 30 s backoff wait ends within 100 ms of the stop token (set by a
 * signal handler, which cannot wake a condition variable) or of the
 * feed's stop. */
CDC_TEST(backoff_nap_honours_the_stop_token)
{
    pthread_t thr;
    int64_t t0;

    cdc_pipeline_stop = 0;
    T_EQ_INT(cdc_flight_nap(20, NULL), 0);
    g_stopq = cdc_feed_new(1, 1);
    T_EQ_INT(cdc_feed_nap(g_stopq, 20), 0);
    for (int how = 0; how < 3; how++) {
        int rc;
        cdc_pipeline_stop = 0;
        T_ASSERT(pthread_create(&thr, NULL, stop_later,
                                how == 2 ? (void *)1 : NULL) == 0);
        t0 = mono_ms();
        rc = how == 0 ? cdc_flight_nap(30000, NULL)
                      : cdc_feed_nap(g_stopq, 30000);
        pthread_join(thr, NULL);
        T_EQ_INT(rc, 1);
        T_ASSERT(mono_ms() - t0 < 150 + 1000); /* loaded machines */
    }
    cdc_pipeline_stop = 0;
    cdc_feed_free(g_stopq);
}

/* A source with a reading thread, as the MySQL source: whole txns at
 * offsets 1, 2, ...; every `drop` txns the connection is lost (what was
 * decoded after the last pushed end is dropped) and the reader reconnects
 * through the engine's backoff, failing `fails` attempts first, then
 * resumes after the last txn it pushed. */
typedef struct tsrc {
    cdc_source_t base;
    cdc_feed_t *feed;
    pthread_t thr;
    int thr_on;
    uint64_t next;
} tsrc_t;

static struct {
    int drop, fails;
    int64_t min_ms, max_ms;
    int starts, reconnects, naps_stopped;
    volatile int napping;
} g_ts;

static void *tsrc_main(void *arg)
{
    tsrc_t *s = arg;
    cdc_backoff_t bo;
    unsigned r = 7;

    cdc_backoff_init(&bo, g_ts.min_ms, g_ts.max_ms);
    while (!cdc_feed_stopped(s->feed)) {
        cdc_txn_t *tx;
        if (g_ts.drop && s->next % (uint64_t)g_ts.drop == 0 &&
            rnd(&r) % 2) {
            /* the link is lost: reconnect with backoff */
            int fails = g_ts.fails;
            for (;;) {
                g_ts.napping = 1;
                if (cdc_feed_nap(s->feed, cdc_backoff_next(&bo))) {
                    g_ts.naps_stopped++;
                    return NULL;
                }
                g_ts.napping = 0;
                if (fails-- <= 0)
                    break;
            }
            cdc_backoff_reset(&bo);
            g_ts.reconnects++;
        }
        tx = cdc_txn_new();
        snprintf(tx->pos.file, sizeof(tx->pos.file), "fake.000001");
        tx->pos.offset = s->next;
        tx->commit_us = (int64_t)s->next;
        if (cdc_feed_push(s->feed, tx) < 0)
            break;
        s->next++;
    }
    return NULL;
}

static cdc_source_t *ts_create(const cdc_conf_t *conf, cdc_err_t *err)
{
    tsrc_t *s = calloc(1, sizeof(*s));
    (void)conf;
    (void)err;
    s->feed = cdc_feed_new(8, 1 << 16);
    return &s->base;
}

static int ts_start(cdc_source_t *src, const cdc_pos_t *resume,
                    cdc_err_t *err)
{
    tsrc_t *s = (tsrc_t *)src;
    (void)err;
    g_ts.starts++;
    s->next = (resume ? resume->offset : 0) + 1;
    s->thr_on = pthread_create(&s->thr, NULL, tsrc_main, s) == 0;
    return 0;
}

static int ts_next(cdc_source_t *src, cdc_txn_t **out, int timeout_ms,
                   cdc_err_t *err)
{
    return cdc_feed_pop(((tsrc_t *)src)->feed, out, timeout_ms, err);
}

static void ts_destroy(cdc_source_t *src)
{
    tsrc_t *s = (tsrc_t *)src;
    cdc_feed_stop(s->feed);
    if (s->thr_on)
        pthread_join(s->thr, NULL);
    cdc_feed_free(s->feed);
    free(s);
}

static const cdc_source_ops_t thread_src_ops = {
    .name = "fakesrc",
    .abi = CDC_PLUGIN_ABI,
    .create = ts_create,
    .start = ts_start,
    .next = ts_next,
    .destroy = ts_destroy,
};

/* a sink that records the offsets it is given (acknowledged at once) */
static uint64_t g_rec_last, g_rec_n;
static int g_rec_bad;

static int rec_write(cdc_sink_t *snk, cdc_txn_t *tx, cdc_err_t *err)
{
    (void)snk;
    (void)err;
    if (tx->pos.offset != g_rec_last + 1)
        g_rec_bad = 1;
    g_rec_last = tx->pos.offset;
    g_rec_n++;
    return 0;
}

static int rec_poll(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    (void)snk;
    (void)timeout_ms;
    (void)err;
    return 0;
}

static void rec_destroy(cdc_sink_t *snk)
{
    free(snk);
}

static cdc_sink_t *rec_create(const cdc_conf_t *conf, cdc_err_t *err);

static const cdc_sink_ops_t rec_sink_ops = {
    .name = "rec",
    .abi = CDC_PLUGIN_ABI,
    .create = rec_create,
    .write = rec_write,
    .poll = rec_poll,
    .flush = rec_poll,
    .destroy = rec_destroy,
};

static cdc_sink_t *rec_create(const cdc_conf_t *conf, cdc_err_t *err)
{
    cdc_sink_t *s = calloc(1, sizeof(*s));
    (void)conf;
    (void)err;
    s->ops = &rec_sink_ops;
    return s;
}

static void *sigterm_when_napping(void *arg)
{
    (void)arg;
    while (!g_ts.napping)
        usleep(1000);
    usleep(100000);
    raise(SIGTERM); /* the pipeline's handler sets the stop token */
    return NULL;
}

CDC_TEST(pipeline_reader_reconnects_with_backoff)
{
    char dir[] = "/tmp/t_flight.XXXXXX";
    cdc_conf_t *c = cdc_conf_new();
    cdc_err_t err = {0};
    cdc_ckpt_t ck;
    char *path;
    pthread_t thr;
    int64_t t0;
    int rc;

    T_ASSERT(mkdtemp(dir) != NULL);
    cdc_conf_set(c, "state.dir", dir, NULL);
    cdc_conf_set(c, "pipeline.name", "flight", NULL);
    cdc_conf_set(c, "run.max_txns", "500", NULL);
    cdc_conf_set(c, "pipeline.max_inflight", "5", NULL);
    path = cdc_ckpt_path(dir, "flight");
    /* losses every 23 txns, 0-2 failed attempts: all 500 once, in order,
     * with no restart of the source by the pipeline */
    cdc_pipeline_stop = 0;
    memset(&g_ts, 0, sizeof(g_ts));
    g_ts.drop = 23;
    g_ts.fails = 2;
    g_ts.min_ms = 1;
    g_ts.max_ms = 4;
    rc = cdc_pipeline_run(c, &thread_src_ops, &rec_sink_ops, &err);
    T_EQ_INT(rc, 0);
    T_ASSERT(!g_rec_bad);
    T_EQ_INT(g_rec_n, 500);
    T_EQ_INT(g_rec_last, 500);
    T_EQ_INT(g_ts.starts, 1);
    T_ASSERT(g_ts.reconnects >= 3);
    memset(&ck, 0, sizeof(ck));
    T_EQ_INT(cdc_ckpt_load(path, &ck, &err), 1);
    T_EQ_INT(ck.pos.offset, 500);

    /* SIGTERM while the reader waits out a 30 s backoff: the run ends at
     * once with exit 0 and the checkpoint of what was delivered */
    memset(&g_ts, 0, sizeof(g_ts));
    g_ts.drop = 10;
    g_ts.fails = 100;
    g_ts.min_ms = 30000;
    g_ts.max_ms = 30000;
    g_rec_n = 0;
    cdc_conf_set(c, "run.max_txns", "0", NULL);
    T_ASSERT(pthread_create(&thr, NULL, sigterm_when_napping, NULL) == 0);
    t0 = mono_ms();
    rc = cdc_pipeline_run(c, &thread_src_ops, &rec_sink_ops, &err);
    pthread_join(thr, NULL);
    T_EQ_INT(rc, 0);
    T_ASSERT(mono_ms() - t0 < 100 + 1500);
    T_EQ_INT(g_ts.naps_stopped, 1);
    T_ASSERT(!g_rec_bad);
    T_EQ_INT(cdc_ckpt_load(path, &ck, &err), 1);
    T_EQ_INT(ck.pos.offset, g_rec_last);
    T_ASSERT(g_rec_last >= 500 && g_rec_last < 560);
    cdc_pipeline_stop = 0;
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    free(path);
    cdc_conf_destroy(c);
    {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        T_EQ_INT(system(cmd), 0);
    }
}

CDC_TEST_MAIN()
