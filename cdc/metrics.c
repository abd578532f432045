/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c - the process-wide registry behind /metrics, /status and
 * /readyz (see metrics.h for the definitions of lag, latency and
 * readiness).
 *
 * Writers take the mutex for a handful of stores; the HTTP thread takes it
 * while it renders.  Per-table counters live in an open-addressing hash
 * keyed by "db.table" + op, grown at 50% load.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cdc/checkpoint.h"
#include "cdc/envelope.h"
#include "cdc/metrics.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

typedef struct tab_ctr {
    char *name; /* "db.table", NULL = empty slot */
    char op;
    uint64_t n;
} tab_ctr_t;

#define CDC_METRICS_MAX_PLUGIN 32
#define CDC_METRICS_MAX_SINKS 8

struct cdc_metric {
    char name[64], type[8], help[160], status_key[32];
    int64_t v;
    int set; /* rendered once a value was set */
};
typedef struct cdc_metric plug_metric_t;

typedef struct sink_prog {
    char name[32];
    uint64_t acked;
    int64_t commit_us;
    size_t behind;
} sink_prog_t;

static struct {
    pthread_mutex_t mu;
    char app[128], pipeline[128], source[32], sink[32];
    int64_t start_us;
    /* thresholds (seconds) */
    int64_t max_lag_s, max_ckpt_age_s, sink_stall_s;
    /* source / sink */
    int src_connected, src_ever;
    int64_t src_since_us; /* when the state last changed */
    char src_why[512];
    int snk_ok;
    char snk_why[512];
    uint64_t reconnects;
    uint64_t dead_letters; /* changes written as dead letters */
    /* big transactions: the largest seen (all its fragments), the one
     * being read, spill files */
    uint64_t big_rows, big_bytes, cur_rows, cur_bytes;
    uint64_t spill_bytes;
    int64_t spill_files;
    /* flow */
    uint64_t txns_in, txns_delivered, events;
    int64_t last_commit_us, last_delivery_us, latency_us;
    int latency_known; /* a change committed since start was delivered */
    int caught_up;
    size_t q_txns, q_bytes;
    int64_t q_oldest_commit_us;
    int64_t progress_us; /* last delivery, or when the queue became busy */
    /* checkpoint */
    char ck_pos[1400];
    int64_t ck_commit_us, ck_stored_us;
    int64_t undurable_since_us; /* first delivery not yet checkpointed */
    /* metrics registered by plugins (cdc_metrics_register) */
    plug_metric_t plug[CDC_METRICS_MAX_PLUGIN];
    int nplug;
    /* each sink of the pipeline (cdc_metrics_sink_progress) */
    sink_prog_t sinks[CDC_METRICS_MAX_SINKS];
    int nsinks;
    /* optional parts, -1 = absent */
    int64_t bf_rows, bf_tables;
    /* per table and op */
    tab_ctr_t *tabs;
    size_t ntabs, captabs;
} M = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .bf_rows = -1,
       .bf_tables = -1,
       .snk_ok = 1,
       .max_lag_s = 300,
       .max_ckpt_age_s = 120,
       .sink_stall_s = 60};

int64_t cdc_metrics_now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static void copy_str(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

static void tabs_free(void)
{
    for (size_t i = 0; i < M.captabs; i++)
        free(M.tabs[i].name);
    free(M.tabs);
    M.tabs = NULL;
    M.ntabs = M.captabs = 0;
}

int cdc_metrics_init(const cdc_conf_t *conf, cdc_err_t *err)
{
    const char *name = cdc_conf_pipeline(conf);
    int64_t lag, age, stall;

    if (cdc_conf_get_int(conf, "ready.max_lag_s", 300, &lag, err) ||
        cdc_conf_get_int(conf, "ready.max_checkpoint_age_s", 120, &age,
                         err) ||
        cdc_conf_get_int(conf, "ready.sink_stall_s", 60, &stall, err))
        return -1;
    pthread_mutex_lock(&M.mu);
    tabs_free();
    copy_str(M.pipeline, sizeof(M.pipeline), name);
    copy_str(M.app, sizeof(M.app),
             cdc_conf_get(conf, "application_id", name));
    copy_str(M.source, sizeof(M.source),
             cdc_conf_get(conf, "source.type", ""));
    copy_str(M.sink, sizeof(M.sink), cdc_conf_get(conf, "sink.type", ""));
    M.max_lag_s = lag;
    M.max_ckpt_age_s = age;
    M.sink_stall_s = stall;
    M.start_us = cdc_metrics_now_us();
    M.src_connected = M.src_ever = 0;
    M.src_since_us = M.start_us;
    copy_str(M.src_why, sizeof(M.src_why), "not started yet");
    M.snk_ok = 1;
    M.snk_why[0] = '\0';
    M.dead_letters = 0;
    M.big_rows = M.big_bytes = M.cur_rows = M.cur_bytes = 0;
    M.spill_bytes = 0;
    M.spill_files = 0;
    M.reconnects = M.txns_in = M.txns_delivered = M.events = 0;
    M.last_commit_us = M.last_delivery_us = M.latency_us = 0;
    M.latency_known = 0;
    M.caught_up = 0;
    M.q_txns = M.q_bytes = 0;
    M.q_oldest_commit_us = 0;
    M.progress_us = M.start_us;
    M.ck_pos[0] = '\0';
    M.ck_commit_us = M.ck_stored_us = M.undurable_since_us = 0;
    memset(M.plug, 0, sizeof(M.plug));
    M.nplug = 0;
    M.nsinks = 0;
    M.bf_rows = M.bf_tables = -1;
    pthread_mutex_unlock(&M.mu);
    return 0;
}

void cdc_metrics_components(const char *source, const char *sink)
{
    pthread_mutex_lock(&M.mu);
    if (source)
        copy_str(M.source, sizeof(M.source), source);
    if (sink)
        copy_str(M.sink, sizeof(M.sink), sink);
    pthread_mutex_unlock(&M.mu);
}

/* ---- per-table counters ---------------------------------------------- */

static uint64_t hash_key(const char *db, const char *t, char op)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = db; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    h = (h ^ '.') * 1099511628211ULL;
    for (const char *p = t; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    return (h ^ (uint8_t)op) * 1099511628211ULL;
}

static int key_eq(const tab_ctr_t *e, const char *db, const char *t, char op)
{
    size_t n = strlen(db);
    return e->op == op && !strncmp(e->name, db, n) && e->name[n] == '.' &&
           !strcmp(e->name + n + 1, t);
}

static void tabs_grow(void)
{
    size_t ncap = M.captabs ? M.captabs * 2 : 64;
    tab_ctr_t *nt = cdc_xcalloc(ncap, sizeof(*nt));

    for (size_t i = 0; i < M.captabs; i++) {
        tab_ctr_t *e = &M.tabs[i];
        const char *dot;
        size_t j;
        char db[512];
        if (!e->name)
            continue;
        dot = strchr(e->name, '.');
        snprintf(db, sizeof(db), "%.*s", (int)(dot - e->name), e->name);
        j = hash_key(db, dot + 1, e->op) & (ncap - 1);
        while (nt[j].name)
            j = (j + 1) & (ncap - 1);
        nt[j] = *e;
    }
    free(M.tabs);
    M.tabs = nt;
    M.captabs = ncap;
}

static void count(const char *db, const char *t, char op)
{
    size_t j;

    if ((M.ntabs + 1) * 2 > M.captabs)
        tabs_grow();
    j = hash_key(db, t, op) & (M.captabs - 1);
    while (M.tabs[j].name) {
        if (key_eq(&M.tabs[j], db, t, op)) {
            M.tabs[j].n++;
            return;
        }
        j = (j + 1) & (M.captabs - 1);
    }
    {
        cdc_buf_t b = CDC_BUF_INIT;
        cdc_buf_printf(&b, "%s.%s", db, t);
        M.tabs[j].name = b.p;
    }
    M.tabs[j].op = op;
    M.tabs[j].n = 1;
    M.ntabs++;
}

/* ---- setters --------------------------------------------------------- */

void cdc_metrics_txn(const cdc_txn_t *tx)
{
    pthread_mutex_lock(&M.mu);
    /* a fragment (more set) is part of a transaction, not one */
    M.cur_rows += tx->nchanges;
    M.cur_bytes += tx->arena.total;
    if (!tx->more) {
        M.txns_in++;
        if (M.cur_rows > M.big_rows) {
            M.big_rows = M.cur_rows;
            M.big_bytes = M.cur_bytes;
        }
        M.cur_rows = M.cur_bytes = 0;
    }
    M.caught_up = 0;
    for (uint32_t i = 0; i < tx->nchanges; i++) {
        const cdc_change_t *ch = &tx->changes[i];
        count(ch->tbl && ch->tbl->db ? ch->tbl->db : "",
              ch->tbl && ch->tbl->name ? ch->tbl->name : "", ch->op);
    }
    M.events += tx->nchanges;
    pthread_mutex_unlock(&M.mu);
}

void cdc_metrics_delivered(int64_t commit_us)
{
    int64_t t = cdc_metrics_now_us();

    pthread_mutex_lock(&M.mu);
    M.txns_delivered++;
    M.last_delivery_us = t;
    M.progress_us = t;
    if (commit_us > 0) {
        M.last_commit_us = commit_us;
        /* latency measures this process: a transaction committed before
         * it started (replayed after a restart, or caught up after
         * downtime) shows in lag, not as a phantom latency */
        if (commit_us >= M.start_us - 1000000) {
            M.latency_us = t > commit_us ? t - commit_us : 0;
            M.latency_known = 1;
        }
    }
    if (!M.undurable_since_us)
        M.undurable_since_us = t;
    pthread_mutex_unlock(&M.mu);
}

void cdc_metrics_inflight(size_t txns, size_t bytes, int64_t oldest_commit_us)
{
    pthread_mutex_lock(&M.mu);
    if (txns && !M.q_txns)
        M.progress_us = cdc_metrics_now_us(); /* stall clock starts now */
    M.q_txns = txns;
    M.q_bytes = bytes;
    M.q_oldest_commit_us = txns ? oldest_commit_us : 0;
    pthread_mutex_unlock(&M.mu);
}

void cdc_metrics_caught_up(int yes)
{
    pthread_mutex_lock(&M.mu);
    M.caught_up = yes;
    pthread_mutex_unlock(&M.mu);
}

void cdc_metrics_checkpoint(const cdc_pos_t *pos, int64_t commit_us,
                            int64_t stored_us)
{
    const char *s = cdc_pos_str(pos);

    pthread_mutex_lock(&M.mu);
    copy_str(M.ck_pos, sizeof(M.ck_pos), s);
    M.ck_commit_us = commit_us;
    M.ck_stored_us = stored_us > 0 ? stored_us : cdc_metrics_now_us();
    M.undurable_since_us = 0;
    pthread_mutex_unlock(&M.mu);
}

void cdc_metrics_source_state(int connected, const char *why)
{
    char *red = why ? cdc_conf_redact(why) : NULL;

    pthread_mutex_lock(&M.mu);
    if (connected != M.src_connected || !M.src_ever)
        M.src_since_us = cdc_metrics_now_us();
    M.src_connected = connected;
    if (connected) {
        M.src_ever = 1;
        M.src_why[0] = '\0';
    } else {
        M.caught_up = 0;
        copy_str(M.src_why, sizeof(M.src_why), red ? red : "disconnected");
    }
    pthread_mutex_unlock(&M.mu);
    free(red);
}

void cdc_metrics_sink_state(int ok, const char *why)
{
    char *red = why ? cdc_conf_redact(why) : NULL;

    pthread_mutex_lock(&M.mu);
    M.snk_ok = ok;
    copy_str(M.snk_why, sizeof(M.snk_why), ok ? "" : red ? red : "failing");
    pthread_mutex_unlock(&M.mu);
    free(red);
}

void cdc_metrics_reconnect(void)
{
    pthread_mutex_lock(&M.mu);
    M.reconnects++;
    pthread_mutex_unlock(&M.mu);
}

void cdc_metrics_spill(uint64_t bytes, int files)
{
    pthread_mutex_lock(&M.mu);
    M.spill_bytes += bytes;
    M.spill_files += files;
    pthread_mutex_unlock(&M.mu);
}

void cdc_metrics_dead_letters(uint64_t n)
{
    pthread_mutex_lock(&M.mu);
    M.dead_letters += n;
    pthread_mutex_unlock(&M.mu);
}

cdc_metric_t *cdc_metrics_register(const char *name, const char *type,
                                   const char *help, const char *status_key)
{
    cdc_metric_t *m = NULL;

    pthread_mutex_lock(&M.mu);
    for (int i = 0; i < M.nplug && !m; i++)
        if (!strcmp(M.plug[i].name, name))
            m = &M.plug[i];
    if (!m && M.nplug < CDC_METRICS_MAX_PLUGIN) {
        m = &M.plug[M.nplug++];
        copy_str(m->name, sizeof(m->name), name);
        copy_str(m->type, sizeof(m->type), type);
        copy_str(m->help, sizeof(m->help), help);
        copy_str(m->status_key, sizeof(m->status_key), status_key);
        m->set = 0;
    }
    pthread_mutex_unlock(&M.mu);
    return m;
}

void cdc_metrics_set(cdc_metric_t *m, int64_t v)
{
    if (!m)
        return;
    pthread_mutex_lock(&M.mu);
    m->v = v;
    m->set = 1;
    pthread_mutex_unlock(&M.mu);
}

void cdc_metrics_sink_progress(int i, const char *name, uint64_t acked,
                               int64_t commit_us, size_t behind)
{
    if (i < 0 || i >= CDC_METRICS_MAX_SINKS)
        return;
    pthread_mutex_lock(&M.mu);
    copy_str(M.sinks[i].name, sizeof(M.sinks[i].name), name);
    M.sinks[i].acked = acked;
    M.sinks[i].commit_us = commit_us;
    M.sinks[i].behind = behind;
    if (i >= M.nsinks)
        M.nsinks = i + 1;
    pthread_mutex_unlock(&M.mu);
}

void cdc_metrics_unset(cdc_metric_t *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&M.mu);
    m->set = 0;
    pthread_mutex_unlock(&M.mu);
}

/* scrape hooks: their own lock, held while they run (they do I/O), so
 * that a remove waits for a run in progress; they take M.mu only through
 * cdc_metrics_set */
#define SCRAPE_MAX 8
static struct {
    pthread_mutex_t mu;
    struct {
        char name[64];
        void (*fn)(void *arg);
        void *arg;
    } h[SCRAPE_MAX];
    int n;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

int cdc_metrics_scrape_add(const char *name, void (*fn)(void *arg),
                           void *arg)
{
    int rc = -1;

    pthread_mutex_lock(&S.mu);
    for (int i = 0; i < S.n; i++)
        if (!strcmp(S.h[i].name, name))
            goto out;
    if (S.n < SCRAPE_MAX) {
        copy_str(S.h[S.n].name, sizeof(S.h[S.n].name), name);
        S.h[S.n].fn = fn;
        S.h[S.n].arg = arg;
        S.n++;
        rc = 0;
    }
out:
    pthread_mutex_unlock(&S.mu);
    return rc;
}

void cdc_metrics_scrape_remove(const char *name, void *arg)
{
    pthread_mutex_lock(&S.mu);
    for (int i = 0; i < S.n; i++)
        if (!strcmp(S.h[i].name, name) && S.h[i].arg == arg) {
            S.h[i] = S.h[--S.n];
            break;
        }
    pthread_mutex_unlock(&S.mu);
}

void cdc_metrics_scrape(void)
{
    pthread_mutex_lock(&S.mu);
    for (int i = 0; i < S.n; i++)
        S.h[i].fn(S.h[i].arg);
    pthread_mutex_unlock(&S.mu);
}

void cdc_metrics_backfill(uint64_t rows_done, uint32_t tables_remaining)
{
    pthread_mutex_lock(&M.mu);
    M.bf_rows = (int64_t)rows_done;
    M.bf_tables = tables_remaining;
    pthread_mutex_unlock(&M.mu);
}

/* ---- derived values (caller holds the lock) -------------------------- */

static int64_t lag_locked(int64_t now)
{
    int64_t ref;

    if (M.q_txns && M.q_oldest_commit_us > 0)
        ref = M.q_oldest_commit_us;
    else if (M.src_connected && M.caught_up)
        return 0;
    else if (M.last_commit_us > 0)
        ref = M.last_commit_us;
    else if (!M.src_connected)
        ref = M.src_since_us; /* never delivered: time offline */
    else
        return 0;
    return now > ref ? now - ref : 0;
}

int64_t cdc_metrics_lag_us(int64_t now_us)
{
    int64_t l;
    pthread_mutex_lock(&M.mu);
    l = lag_locked(now_us);
    pthread_mutex_unlock(&M.mu);
    return l;
}

static int sink_stalled(int64_t now)
{
    return M.q_txns && now - M.progress_us > M.sink_stall_s * 1000000;
}

static int sink_ok_locked(int64_t now)
{
    return M.snk_ok && !sink_stalled(now);
}

static void json_str(cdc_buf_t *b, const char *s)
{
    cdc_json_string(b, s, strlen(s));
}

static void json_time(cdc_buf_t *b, int64_t us)
{
    if (us <= 0) {
        cdc_buf_puts(b, "null");
        return;
    }
    cdc_buf_putc(b, '"');
    cdc_json_iso_ms(b, us);
    cdc_buf_putc(b, '"');
}

/* Reasons as a JSON array; returns how many. */
static int reasons_locked(cdc_buf_t *b, int64_t now)
{
    int n = 0;
    cdc_buf_t t = CDC_BUF_INIT;
    int64_t lag = lag_locked(now);

#define REASON(...)                                                        \
    do {                                                                   \
        cdc_buf_reset(&t);                                                 \
        cdc_buf_printf(&t, __VA_ARGS__);                                   \
        if (b) {                                                           \
            cdc_buf_puts(b, n ? "," : "");                                 \
            json_str(b, t.p);                                              \
        }                                                                  \
        n++;                                                               \
    } while (0)

    if (b)
        cdc_buf_putc(b, '[');
    if (!M.src_connected)
        REASON("source %s disconnected%s%s", M.source,
               M.src_why[0] ? ": " : "", M.src_why);
    if (!M.snk_ok)
        REASON("sink %s failing%s%s", M.sink, M.snk_why[0] ? ": " : "",
               M.snk_why);
    else if (sink_stalled(now))
        REASON("sink %s failing: %zu transactions in flight, no delivery "
               "for %" PRId64 " s (ready.sink_stall_s=%" PRId64 ")",
               M.sink, M.q_txns, (now - M.progress_us) / 1000000,
               M.sink_stall_s);
    if (lag > M.max_lag_s * 1000000)
        REASON("lag %" PRId64 " s above ready.max_lag_s=%" PRId64,
               lag / 1000000, M.max_lag_s);
    if (M.undurable_since_us &&
        now - M.undurable_since_us > M.max_ckpt_age_s * 1000000)
        REASON("checkpoint stale: delivered changes not checkpointed for "
               "%" PRId64 " s (ready.max_checkpoint_age_s=%" PRId64 ")",
               (now - M.undurable_since_us) / 1000000, M.max_ckpt_age_s);
#undef REASON
    if (b)
        cdc_buf_putc(b, ']');
    cdc_buf_free(&t);
    return n;
}

int cdc_metrics_ready(cdc_buf_t *reasons, int64_t now_us)
{
    int n;
    pthread_mutex_lock(&M.mu);
    n = reasons_locked(reasons, now_us);
    pthread_mutex_unlock(&M.mu);
    return n == 0;
}

/* ---- Prometheus ------------------------------------------------------ */

/* Label value: backslash, double quote and newline escaped. */
static void prom_label(cdc_buf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            cdc_buf_putc(b, '\\'), cdc_buf_putc(b, *s);
        else if (*s == '\n')
            cdc_buf_puts(b, "\\n");
        else
            cdc_buf_putc(b, *s);
    }
}

static void prom_head(cdc_buf_t *b, const char *name, const char *type,
                      const char *help)
{
    cdc_buf_printf(b, "# HELP autoglm_cdc_%s %s\n# TYPE autoglm_cdc_%s %s\n",
                   name, help, name, type);
}

/* A metric without labels: its HELP and TYPE lines and its value. */
static void prom_i64(cdc_buf_t *b, const char *name, const char *type,
                     const char *help, int64_t v)
{
    prom_head(b, name, type, help);
    cdc_buf_printf(b, "autoglm_cdc_%s %" PRId64 "\n", name, v);
}

static void prom_u64(cdc_buf_t *b, const char *name, const char *type,
                     const char *help, uint64_t v)
{
    prom_head(b, name, type, help);
    cdc_buf_printf(b, "autoglm_cdc_%s %" PRIu64 "\n", name, v);
}

static void prom_sec(cdc_buf_t *b, const char *name, int64_t us)
{
    if (us < 0)
        us = 0;
    cdc_buf_printf(b, "autoglm_cdc_%s %" PRId64 ".%06" PRId64 "\n", name,
                   us / 1000000, us % 1000000);
}

static const char *op_name(char op)
{
    switch (op) {
    case 'c': return "c";
    case 'u': return "u";
    case 'd': return "d";
    case 'r': return "r";
    case 't': return "t";
    default: return "?";
    }
}

static int tab_cmp(const void *a, const void *b)
{
    const tab_ctr_t *x = *(tab_ctr_t *const *)a, *y = *(tab_ctr_t *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : x->op - y->op;
}

void cdc_metrics_render_prom(cdc_buf_t *b, int64_t now)
{
    tab_ctr_t **sorted;
    size_t k = 0;
    int ready;

    pthread_mutex_lock(&M.mu);
    prom_head(b, "build_info", "gauge", "Build and pipeline identity.");
    cdc_buf_puts(b, "autoglm_cdc_build_info{version=\"");
    prom_label(b, PACKAGE_VERSION);
    cdc_buf_puts(b, "\",application=\"");
    prom_label(b, M.app);
    cdc_buf_puts(b, "\",pipeline=\"");
    prom_label(b, M.pipeline);
    cdc_buf_puts(b, "\"} 1\n");
    prom_head(b, "start_time_seconds", "gauge",
              "Start time of the process, seconds since the epoch.");
    prom_sec(b, "start_time_seconds", M.start_us);

    prom_head(b, "source_events_total", "counter",
              "Row changes read from the source (after filtering), per "
              "table and op (c, u, d, r, t).");
    sorted = cdc_xcalloc(M.ntabs ? M.ntabs : 1, sizeof(*sorted));
    for (size_t i = 0; i < M.captabs; i++)
        if (M.tabs[i].name)
            sorted[k++] = &M.tabs[i];
    qsort(sorted, k, sizeof(*sorted), tab_cmp);
    for (size_t i = 0; i < k; i++) {
        cdc_buf_puts(b, "autoglm_cdc_source_events_total{table=\"");
        prom_label(b, sorted[i]->name);
        cdc_buf_printf(b, "\",op=\"%s\"} %" PRIu64 "\n",
                       op_name(sorted[i]->op), sorted[i]->n);
    }
    free(sorted);
    prom_u64(b, "source_transactions_total", "counter",
             "Transactions read from the source.",
             M.txns_in);
    prom_u64(b, "delivered_transactions_total", "counter",
             "Transactions acknowledged by the sink.",
             M.txns_delivered);

    prom_head(b, "lag_seconds", "gauge",
              "Now minus the commit time up to which every change is "
              "delivered (0 when caught up).");
    prom_sec(b, "lag_seconds", lag_locked(now));
    prom_head(b, "latency_seconds", "gauge",
              "Delivery time minus commit time of the last delivered "
              "transaction.");
    prom_sec(b, "latency_seconds", M.latency_us);
    prom_head(b, "last_commit_timestamp_seconds", "gauge",
              "Commit time of the last delivered transaction.");
    prom_sec(b, "last_commit_timestamp_seconds", M.last_commit_us);

    prom_head(b, "checkpoint_age_seconds", "gauge",
              "Seconds since the checkpoint was last stored (since start if "
              "never).");
    prom_sec(b, "checkpoint_age_seconds",
             now - (M.ck_stored_us ? M.ck_stored_us : M.start_us));
    prom_head(b, "checkpoint_commit_timestamp_seconds", "gauge",
              "Commit time of the transaction the checkpoint is at.");
    prom_sec(b, "checkpoint_commit_timestamp_seconds", M.ck_commit_us);

    prom_head(b, "connected", "gauge",
              "1 when the component is connected and working.");
    cdc_buf_puts(b, "autoglm_cdc_connected{component=\"source\",type=\"");
    prom_label(b, M.source);
    cdc_buf_printf(b, "\"} %d\n", M.src_connected);
    cdc_buf_puts(b, "autoglm_cdc_connected{component=\"sink\",type=\"");
    prom_label(b, M.sink);
    cdc_buf_printf(b, "\"} %d\n", sink_ok_locked(now));
    prom_u64(b, "reconnects_total", "counter",
             "Successful reconnects of the source.",
             M.reconnects);

    prom_u64(b, "largest_transaction_rows", "gauge",
             "Row changes of the largest transaction read since start "
             "(all its fragments).",
             M.big_rows);
    prom_u64(b, "largest_transaction_bytes", "gauge",
             "Decoded bytes of that transaction.",
             M.big_bytes);
    prom_u64(b, "spilled_bytes_total", "counter",
             "Bytes of big transactions written to spill files.",
             M.spill_bytes);
    prom_i64(b, "spill_files", "gauge", "Spill files in use.",
             M.spill_files);

    prom_u64(b, "dead_letters_total", "counter",
             "Changes that could not be applied and were written to the "
             "dead-letter table or topic (errors.mode=dead-letter).",
             M.dead_letters);

    prom_u64(b, "queue_transactions", "gauge",
             "Transactions written to the sink and not yet delivered.",
             M.q_txns);
    prom_u64(b, "queue_bytes", "gauge",
             "Memory held by the transactions in flight.", M.q_bytes);

    if (M.nsinks) {
        prom_head(b, "sink_delivered_transactions_total", "counter",
                  "Transactions acknowledged by each sink of the pipeline.");
        for (int i = 0; i < M.nsinks; i++) {
            cdc_buf_puts(b, "autoglm_cdc_sink_delivered_transactions_total"
                            "{sink=\"");
            prom_label(b, M.sinks[i].name);
            cdc_buf_printf(b, "\"} %" PRIu64 "\n", M.sinks[i].acked);
        }
        prom_head(b, "sink_queue_transactions", "gauge",
                  "Transactions in flight that each sink has not yet "
                  "acknowledged.");
        for (int i = 0; i < M.nsinks; i++) {
            cdc_buf_puts(b, "autoglm_cdc_sink_queue_transactions{sink=\"");
            prom_label(b, M.sinks[i].name);
            cdc_buf_printf(b, "\"} %zu\n", M.sinks[i].behind);
        }
        prom_head(b, "sink_last_commit_timestamp_seconds", "gauge",
                  "Commit time of the last transaction each sink "
                  "acknowledged.");
        for (int i = 0; i < M.nsinks; i++) {
            cdc_buf_puts(b, "autoglm_cdc_sink_last_commit_timestamp_seconds"
                            "{sink=\"");
            prom_label(b, M.sinks[i].name);
            cdc_buf_printf(b, "\"} %" PRId64 ".%06" PRId64 "\n",
                           M.sinks[i].commit_us / 1000000,
                           M.sinks[i].commit_us % 1000000);
        }
    }
    for (int i = 0; i < M.nplug; i++) {
        if (!M.plug[i].set)
            continue;
        prom_i64(b, M.plug[i].name, M.plug[i].type, M.plug[i].help,
                 M.plug[i].v);
    }
    if (M.bf_rows >= 0) {
        prom_i64(b, "backfill_rows_done", "gauge",
                 "Rows copied by the running backfill.",
                 M.bf_rows);
        prom_i64(b, "backfill_tables_remaining", "gauge",
                 "Tables the running backfill has not finished.",
                 M.bf_tables);
    }
    ready = reasons_locked(NULL, now) == 0;
    prom_i64(b, "ready", "gauge", "1 when /readyz answers 200.", ready);
    pthread_mutex_unlock(&M.mu);
}

/* ---- /status --------------------------------------------------------- */

void cdc_metrics_render_status(cdc_buf_t *b, int64_t now)
{
    int snk_ok, online;
    int64_t lag;

    pthread_mutex_lock(&M.mu);
    snk_ok = sink_ok_locked(now);
    online = M.src_connected && snk_ok;
    lag = lag_locked(now);
    cdc_buf_puts(b, "{\"application\":");
    json_str(b, M.app);
    cdc_buf_puts(b, ",\"pipeline\":");
    json_str(b, M.pipeline);
    cdc_buf_puts(b, ",\"version\":");
    json_str(b, PACKAGE_VERSION);
    cdc_buf_printf(b, ",\"status\":\"%s\",\"connected\":%s",
                   online ? "online" : "offline", online ? "true" : "false");
    cdc_buf_puts(b, ",\"source\":{\"type\":");
    json_str(b, M.source);
    cdc_buf_printf(b, ",\"connected\":%s,\"since\":",
                   M.src_connected ? "true" : "false");
    json_time(b, M.src_since_us);
    if (M.src_why[0]) {
        cdc_buf_puts(b, ",\"error\":");
        json_str(b, M.src_why);
    }
    cdc_buf_printf(b, ",\"reconnects\":%" PRIu64 "}", M.reconnects);
    cdc_buf_puts(b, ",\"sink\":{\"type\":");
    json_str(b, M.sink);
    cdc_buf_printf(b, ",\"connected\":%s", snk_ok ? "true" : "false");
    if (M.snk_why[0]) {
        cdc_buf_puts(b, ",\"error\":");
        json_str(b, M.snk_why);
    }
    for (int i = 0; i < M.nplug; i++)
        if (M.plug[i].set && M.plug[i].status_key[0])
            cdc_buf_printf(b, ",\"%s\":%" PRId64, M.plug[i].status_key,
                           M.plug[i].v);
    cdc_buf_printf(b, ",\"dead_letters\":%" PRIu64 "}", M.dead_letters);
    cdc_buf_puts(b, ",\"last_sync_time\":");
    json_time(b, M.last_commit_us);
    cdc_buf_puts(b, ",\"last_delivery_time\":");
    json_time(b, M.last_delivery_us);
    if (M.latency_known)
        cdc_buf_printf(b, ",\"latency_ms\":%" PRId64, M.latency_us / 1000);
    else
        cdc_buf_puts(b, ",\"latency_ms\":null");
    cdc_buf_printf(b, ",\"lag_seconds\":%" PRId64 ".%03" PRId64
                   ",\"caught_up\":%s", lag / 1000000, lag / 1000 % 1000,
                   M.caught_up && M.src_connected ? "true" : "false");
    cdc_buf_puts(b, ",\"checkpoint\":{\"position\":");
    json_str(b, M.ck_pos);
    cdc_buf_puts(b, ",\"commit_time\":");
    json_time(b, M.ck_commit_us);
    cdc_buf_puts(b, ",\"stored_time\":");
    json_time(b, M.ck_stored_us);
    cdc_buf_printf(b, ",\"age_seconds\":%" PRId64 "}",
                   (now - (M.ck_stored_us ? M.ck_stored_us : M.start_us)) /
                       1000000);
    cdc_buf_printf(b, ",\"transactions\":%" PRIu64 ",\"events\":%" PRIu64
                   ",\"queue\":{\"transactions\":%zu,\"bytes\":%zu}",
                   M.txns_delivered, M.events, M.q_txns, M.q_bytes);
    if (M.nsinks) {
        cdc_buf_puts(b, ",\"sinks\":[");
        for (int i = 0; i < M.nsinks; i++) {
            cdc_buf_puts(b, i ? ",{\"type\":" : "{\"type\":");
            json_str(b, M.sinks[i].name);
            cdc_buf_printf(b, ",\"transactions\":%" PRIu64
                           ",\"queue\":%zu,\"last_sync_time\":",
                           M.sinks[i].acked, M.sinks[i].behind);
            json_time(b, M.sinks[i].commit_us);
            cdc_buf_puts(b, "}");
        }
        cdc_buf_puts(b, "]");
    }
    if (M.bf_rows >= 0)
        cdc_buf_printf(b, ",\"backfill\":{\"rows_done\":%" PRId64
                       ",\"tables_remaining\":%" PRId64 "}",
                       M.bf_rows, M.bf_tables);
    cdc_buf_puts(b, ",\"reasons\":");
    {
        int n = reasons_locked(b, now);
        cdc_buf_printf(b, ",\"ready\":%s", n ? "false" : "true");
    }
    cdc_buf_puts(b, "}\n");
    pthread_mutex_unlock(&M.mu);
}
