/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backfill.c - `autoglm-cdc backfill`: resumable, throttled snapshots of
 * existing rows as op 'r' transactions, consistent with the live stream.
 *
 * Flow (docs/BACKFILL.md has the user's view):
 *   1. lock <state.dir>/<pipeline>.backfill.lock; held: exit 75.
 *   2. Load the progress file <state.dir>/<pipeline>.backfill (last
 *      finished key per table).
 *   3. Mode: "initial" (consistent first load) when the stream has no
 *      checkpoint yet: one consistent snapshot for every chunk, its
 *      change-stream position stored as the stream's checkpoint before
 *      any row is emitted.  Otherwise "incremental": every chunk is its
 *      own short statement between a low and a high watermark written to
 *      the signal table; a second instance of the streaming source (the
 *      window reader, own replica id / slot) reads the change stream
 *      between the two and the chunk drops every row whose key changed
 *      inside the window.  Kept rows are stamped with the high
 *      watermark's position, so applying stream and backfill events in
 *      position order gives the source's state (DBLog; proof in
 *      docs/BACKFILL.md).
 *   4. Workers (backfill.parallel, one table each at a time) read chunks
 *      by keyset pagination, throttle to backfill.max_rows_per_sec, hand
 *      each chunk to the sink as one transaction, wait for its
 *      acknowledgement, then store the progress file (atomic replace).
 *   5. Progress bars on a terminal, log lines otherwise; a summary.
 *
 * Invariant: the progress file names a key only after every row up to it
 * was acknowledged by the sink.  A kill -9 re-emits at most the chunks in
 * flight (at-least-once, like the stream).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cdc/util.h"
#include "cdc/backfill.h"
#include "cdc/buf.h"
#include "cdc/checkpoint.h"
#include "cdc/envelope.h"
#include "cdc/log.h"
#include "cdc/metrics.h"
#include "cdc/plugin.h"

#define FAC "backfill"

extern const cdc_snap_ops_t cdc_snap_mysql_ops __attribute__((weak));
extern const cdc_snap_ops_t cdc_snap_postgres_ops __attribute__((weak));

static volatile sig_atomic_t bf_stop;

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- small pure helpers (unit-tested) ---------------------------------- */

int64_t cdc_backfill_pace_us(uint64_t done, int64_t elapsed_us, uint64_t n,
                             int64_t rate)
{
    double due;
    if (rate <= 0)
        return 0;
    due = (double)(done + n) * 1e6 / (double)rate;
    return due > (double)elapsed_us ? (int64_t)(due - (double)elapsed_us) : 0;
}

void cdc_backfill_fmt_eta(char *out, size_t n, double secs)
{
    long s = secs < 0 ? 0 : (long)(secs + 0.5);
    if (secs != secs || secs > 360000.0 * 24)
        snprintf(out, n, "?");
    else if (s >= 3600)
        snprintf(out, n, "%ldh%02ldm", s / 3600, s / 60 % 60);
    else if (s >= 60)
        snprintf(out, n, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(out, n, "%lds", s);
}

/* ---- progress file ------------------------------------------------------ */

char *cdc_backfill_prog_path(const char *state_dir, const char *pipeline)
{
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_buf_printf(&b, "%s/%s.backfill", state_dir, pipeline);
    return b.p;
}

cdc_bf_tprog_t *cdc_backfill_prog_table(cdc_bf_prog_t *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->t[i].name, name))
            return &p->t[i];
    p->t = cdc_xrealloc(p->t, (size_t)(p->n + 1) * sizeof(*p->t));
    memset(&p->t[p->n], 0, sizeof(p->t[0]));
    p->t[p->n].name = cdc_xstrdup(name);
    return &p->t[p->n++];
}

void cdc_backfill_prog_free(cdc_bf_prog_t *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->t[i].name);
        free(p->t[i].key);
    }
    free(p->t);
    memset(p, 0, sizeof(*p));
}

/*
 * Format (one item per line, words separated by single spaces; names and
 * keys never contain spaces: keys are driver words, names are checked):
 *   autoglm-cdc-backfill 1
 *   mode incremental
 *   run <id>
 *   table <db.table> <done 0|1> <rows> <chunks> <key or ->
 *         (the name as cdc_backfill_name_put writes it, with blanks, '%'
 *         and control bytes as %XX)
 *   end
 * A file without the final "end" line is torn and refused.
 */
/* %XX -> the byte (names in the progress file) */
static void pct_decode_inplace(char *s)
{
    char *w = s;
    for (; *s; s++) {
        unsigned v;
        if (*s == '%' && isxdigit((unsigned char)s[1]) &&
            isxdigit((unsigned char)s[2]) && sscanf(s + 1, "%2x", &v) == 1) {
            *w++ = (char)v;
            s += 2;
        } else
            *w++ = *s;
    }
    *w = '\0';
}

int cdc_backfill_prog_load(const char *path, cdc_bf_prog_t *p,
                           cdc_err_t *err)
{
    FILE *fp = fopen(path, "r");
    char line[65536];
    int ver = 0, ended = 0, lineno = 0;

    memset(p, 0, sizeof(*p));
    if (!fp) {
        if (errno == ENOENT)
            return 0;
        return cdc_err_set(err, CDC_EXIT_FAIL, 0, "cannot read %s: %s", path,
                           strerror(errno));
    }
    while (fgets(line, sizeof(line), fp)) {
        char name[1024], key[65536];
        int done;
        unsigned long long rows, chunks;
        size_t l = strlen(line);

        lineno++;
        if (l && line[l - 1] == '\n')
            line[--l] = '\0';
        else if (!feof(fp))
            goto bad;
        if (ended)
            goto bad;
        if (lineno == 1) {
            if (sscanf(line, "autoglm-cdc-backfill %d", &ver) != 1 || ver != 1)
                goto bad;
        } else if (!strncmp(line, "mode ", 5)) {
            snprintf(p->mode, sizeof(p->mode), "%.15s", line + 5);
        } else if (!strncmp(line, "run ", 4)) {
            snprintf(p->run, sizeof(p->run), "%.39s", line + 4);
        } else if (!strncmp(line, "table ", 6)) {
            cdc_bf_tprog_t *t;
            if (sscanf(line, "table %1023s %d %llu %llu %65535s", name, &done,
                       &rows, &chunks, key) != 5)
                goto bad;
            pct_decode_inplace(name);
            t = cdc_backfill_prog_table(p, name);
            t->done = done != 0;
            t->rows = rows;
            t->chunks = chunks;
            free(t->key);
            t->key = strcmp(key, "-") ? cdc_xstrdup(key) : NULL;
        } else if (!strcmp(line, "end")) {
            ended = 1;
        } else {
            goto bad;
        }
    }
    fclose(fp);
    if (!ended) {
        fp = NULL;
        goto bad;
    }
    return 1;
bad:
    if (fp)
        fclose(fp);
    cdc_backfill_prog_free(p);
    cdc_err_set(err, CDC_EXIT_FAIL, 0,
                "backfill progress file %s is damaged (line %d)", path,
                lineno);
    cdc_err_hint(err, "delete it to start the backfill over");
    return -1;
}

static int mkdirs(const char *dir)
{
    char tmp[4096];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, dir, n + 1);
    for (char *q = tmp + 1; *q; q++) {
        if (*q == '/') {
            *q = '\0';
            if (mkdir(tmp, 0750) && errno != EEXIST)
                return -1;
            *q = '/';
        }
    }
    if (mkdir(tmp, 0750) && errno != EEXIST)
        return -1;
    return 0;
}

int cdc_backfill_prog_store(const char *path, const cdc_bf_prog_t *p,
                            cdc_err_t *err)
{
    cdc_buf_t b = CDC_BUF_INIT, tmp = CDC_BUF_INIT;
    char *dir = cdc_xstrdup(path), *slash = strrchr(dir, '/');
    int fd = -1, rc = -1;

    cdc_buf_printf(&b, "autoglm-cdc-backfill 1\nmode %s\nrun %s\n",
                   p->mode[0] ? p->mode : "incremental",
                   p->run[0] ? p->run : "-");
    for (int i = 0; i < p->n; i++) {
        /* the name is one word: blanks, '%' and controls as %XX */
        cdc_buf_puts(&b, "table ");
        for (const unsigned char *c = (const unsigned char *)p->t[i].name; *c;
             c++)
            if (*c <= ' ' || *c == '%' || *c == 0x7f)
                cdc_buf_printf(&b, "%%%02X", *c);
            else
                cdc_buf_putc(&b, (char)*c);
        cdc_buf_printf(&b, " %d %" PRIu64 " %" PRIu64 " %s\n",
                       p->t[i].done, p->t[i].rows, p->t[i].chunks,
                       p->t[i].key ? p->t[i].key : "-");
    }
    cdc_buf_puts(&b, "end\n");
    if (slash) {
        *slash = '\0';
        if (*dir && mkdirs(dir)) {
            cdc_err_set(err, CDC_EXIT_FAIL, 0, "cannot create %s: %s", dir,
                        strerror(errno));
            goto out;
        }
    }
    cdc_buf_printf(&tmp, "%s.tmp.%d", path, (int)getpid());
    fd = open(tmp.p, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd < 0 || write(fd, b.p, b.len) != (ssize_t)b.len || fsync(fd)) {
        cdc_err_set(err, CDC_EXIT_FAIL, 0, "cannot write %s: %s", tmp.p,
                    strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp.p);
        goto out;
    }
    close(fd);
    if (rename(tmp.p, path)) {
        cdc_err_set(err, CDC_EXIT_FAIL, 0, "cannot rename %s to %s: %s",
                    tmp.p, path, strerror(errno));
        unlink(tmp.p);
        goto out;
    }
    if (slash) {
        int dfd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    rc = 0;
out:
    free(dir);
    cdc_buf_free(&b);
    cdc_buf_free(&tmp);
    return rc;
}

/* ---- key set (keys changed inside a watermark window) ------------------- */

typedef struct kset {
    char **v;
    size_t cap, n;
} kset_t;

static uint64_t fnv64(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
    return h;
}

static void kset_add(kset_t *k, const char *s)
{
    if ((k->n + 1) * 2 > k->cap) {
        size_t nc = k->cap ? k->cap * 2 : 64;
        char **nv = cdc_xcalloc(nc, sizeof(*nv));
        for (size_t i = 0; i < k->cap; i++)
            if (k->v[i]) {
                size_t j = fnv64(k->v[i], strlen(k->v[i])) & (nc - 1);
                while (nv[j])
                    j = (j + 1) & (nc - 1);
                nv[j] = k->v[i];
            }
        free(k->v);
        k->v = nv;
        k->cap = nc;
    }
    size_t j = fnv64(s, strlen(s)) & (k->cap - 1);
    while (k->v[j]) {
        if (!strcmp(k->v[j], s))
            return;
        j = (j + 1) & (k->cap - 1);
    }
    k->v[j] = cdc_xstrdup(s);
    k->n++;
}

static int kset_has(const kset_t *k, const char *s)
{
    if (!k->n)
        return 0;
    size_t j = fnv64(s, strlen(s)) & (k->cap - 1);
    while (k->v[j]) {
        if (!strcmp(k->v[j], s))
            return 1;
        j = (j + 1) & (k->cap - 1);
    }
    return 0;
}

static void kset_clear(kset_t *k)
{
    for (size_t i = 0; i < k->cap; i++)
        free(k->v[i]);
    free(k->v);
    memset(k, 0, sizeof(*k));
}

/* Key text of a row image: JSON values of the key columns (named by the
 * snapshot table, looked up by name in the image's table), joined by a
 * unit separator.  0 when a key column is absent from the image. */
static int key_text(const cdc_table_t *snap, const cdc_table_t *img,
                    const cdc_value_t *vals, cdc_buf_t *out)
{
    cdc_buf_reset(out);
    for (uint32_t k = 0; k < snap->npk; k++) {
        const char *nm = snap->cols[snap->pk[k]].name;
        uint32_t c = UINT32_MAX;
        if (img == snap) {
            c = snap->pk[k];
        } else {
            for (uint32_t i = 0; i < img->ncols; i++)
                if (img->cols[i].name && !strcmp(img->cols[i].name, nm)) {
                    c = i;
                    break;
                }
        }
        if (c == UINT32_MAX || vals[c].kind == CDC_V_ABSENT ||
            vals[c].kind == CDC_V_UNCHANGED)
            return 0;
        if (k)
            cdc_buf_putc(out, '\x1f');
        cdc_json_value(out, &vals[c]);
    }
    return 1;
}

/* ---- the run ------------------------------------------------------------ */

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

typedef struct worker {
    bf_t *bf;
    int idx;
    cdc_snap_t *snap;
    cdc_conf_t *wconf;   /* window reader settings */
    cdc_source_t *win;   /* window reader (watermark mode) */
    uint64_t wm_seq;
    kset_t changed;
    pthread_t thr;
} worker_t;

static void fail_run(bf_t *bf, const cdc_err_t *err)
{
    pthread_mutex_lock(&bf->mu);
    if (!bf->failed) {
        bf->failed = 1;
        bf->err = *err;
    }
    pthread_mutex_unlock(&bf->mu);
}

static void on_signal(int sig)
{
    (void)sig;
    bf_stop = 1;
}

/* Copy of conf with the window reader's settings. */
static cdc_conf_t *conf_copy(const cdc_conf_t *conf)
{
    cdc_conf_t *c = cdc_conf_new();
    for (int i = 0; i < conf->n; i++)
        cdc_conf_set(c, conf->ents[i].key, conf->ents[i].val,
                     conf->ents[i].where);
    return c;
}

static int window_start(worker_t *w, cdc_err_t *err)
{
    bf_t *bf = w->bf;
    w->wconf = conf_copy(bf->conf);
    bf->dops->window_conf(w->snap, w->wconf, w->idx, bf->tables_csv, bf->sig);
    w->win = bf->sops->create(w->wconf, err);
    if (!w->win)
        return -1;
    w->win->ops = bf->sops;
    if (bf->sops->start(w->win, NULL, err)) {
        bf->sops->destroy(w->win);
        w->win = NULL;
        return -1;
    }
    return 0;
}

static void window_stop(worker_t *w)
{
    if (w->win) {
        w->bf->sops->destroy(w->win);
        w->win = NULL;
    }
    if (w->wconf) {
        if (w->bf->dops->window_drop)
            w->bf->dops->window_drop(w->snap, w->wconf);
        cdc_conf_destroy(w->wconf);
        w->wconf = NULL;
    }
}

/* The value of column "id" if ch is a row of the signal table. */
static const char *signal_id(const bf_t *bf, const cdc_change_t *ch)
{
    const cdc_table_t *t = ch->tbl;
    const cdc_value_t *v = ch->after;
    char full[600];

    if (!t || !v || ch->op != CDC_OP_CREATE)
        return NULL;
    snprintf(full, sizeof(full), "%s.%s", t->db ? t->db : "",
             t->name ? t->name : "");
    if (strcmp(full, bf->sig))
        return NULL;
    for (uint32_t i = 0; i < t->ncols; i++)
        if (t->cols[i].name && !strcmp(t->cols[i].name, "id") &&
            v[i].kind == CDC_V_STRING)
            return v[i].s;
    return NULL;
}

static int xid_invisible(const cdc_snap_vis_t *vis, uint64_t xid)
{
    if (!vis || !vis->xmax || !xid)
        return 0;
    if (xid >= vis->xmax)
        return 1;
    for (uint32_t i = 0; i < vis->nxip; i++)
        if (vis->xip[i] == xid)
            return 1;
    return 0;
}

static void add_keys(worker_t *w, const cdc_table_t *snap,
                     const cdc_change_t *ch, cdc_buf_t *kb)
{
    if (!ch->tbl || strcmp(ch->tbl->name, snap->name) ||
        strcmp(ch->tbl->db, snap->db))
        return;
    if (ch->op == CDC_OP_TRUNCATE) {
        kset_add(&w->changed, "\x1e*"); /* everything */
        return;
    }
    if (ch->before && key_text(snap, ch->tbl, ch->before, kb))
        kset_add(&w->changed, kb->p);
    if (ch->after && key_text(snap, ch->tbl, ch->after, kb))
        kset_add(&w->changed, kb->p);
}

/*
 * Read the change stream until the high watermark hw_id: collect the keys
 * of snap's table changed after the low watermark lw_id (and, PostgreSQL,
 * by transactions before it that the chunk's snapshot did not see).
 * Fills st with the high watermark's position.
 */
static int window_collect(worker_t *w, const cdc_table_t *snap,
                          const char *lw_id, const char *hw_id,
                          const cdc_snap_vis_t *vis, cdc_snap_stamp_t *st,
                          cdc_err_t *err)
{
    bf_t *bf = w->bf;
    int in = 0;
    int64_t deadline = mono_us() + bf->wm_timeout_ms * 1000;
    cdc_buf_t kb = CDC_BUF_INIT;

    kset_clear(&w->changed);
    for (;;) {
        cdc_txn_t *tx = NULL;
        int r = bf->sops->next(w->win, &tx, 500, err);
        if (r < 0) {
            cdc_buf_free(&kb);
            return -1;
        }
        if (r == CDC_SRC_TXN && tx) {
            int hw = 0;
            for (uint32_t i = 0; i < tx->nchanges; i++) {
                const cdc_change_t *ch = &tx->changes[i];
                const char *id = signal_id(bf, ch);
                if (id && !strcmp(id, lw_id)) {
                    in = 1;
                    continue;
                }
                if (id && !strcmp(id, hw_id)) {
                    memset(st, 0, sizeof(*st));
                    st->connector = tx->connector;
                    st->server_id = tx->server_id;
                    snprintf(st->file, sizeof(st->file), "%s",
                             tx->file ? tx->file : tx->pos.file);
                    st->pos = ch->pos ? ch->pos : tx->pos.lsn;
                    snprintf(st->gtid, sizeof(st->gtid), "%s", tx->gtid);
                    st->commit_us = tx->commit_us;
                    hw = 1;
                    continue;
                }
                if (in || xid_invisible(vis, tx->xid))
                    add_keys(w, snap, ch, &kb);
            }
            if (bf->sops->confirm)
                bf->sops->confirm(w->win, &tx->pos, err);
            cdc_txn_destroy(tx);
            if (hw) {
                cdc_buf_free(&kb);
                return 0;
            }
        }
        if (r == CDC_SRC_EOF || mono_us() > deadline || bf_stop) {
            cdc_buf_free(&kb);
            if (bf_stop)
                return cdc_err_set(err, CDC_EXIT_TEMPFAIL, 0,
                                   "interrupted while waiting for a "
                                   "watermark");
            cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                        "the high watermark %s did not appear in the change "
                        "stream within %" PRId64 " ms", hw_id,
                        bf->wm_timeout_ms);
            cdc_err_hint(err, "the signal table %s must be captured by the "
                              "source (binlog on / in the publication); or "
                              "raise backfill.watermark_timeout_ms",
                         bf->sig);
            return -1;
        }
    }
}

static int save_progress(bf_t *bf, cdc_err_t *err)
{
    return cdc_backfill_prog_store(bf->prog_path, &bf->prog, err);
}

/* Hand a chunk to the sink (asynchronous sinks acknowledge later). */
static int submit(bf_t *bf, cdc_txn_t *tx, cdc_err_t *err)
{
    int rc = 0;
    pthread_mutex_lock(&bf->mu);
    tx->seq = ++bf->seq;
    if (bf->kops->write(bf->snk, tx, err) || bf->kops->poll(bf->snk, 0, err))
        rc = -1;
    pthread_mutex_unlock(&bf->mu);
    return rc;
}

/* Serve delivery reports until tx is acknowledged (or failed); after
 * 250 ms ask the sink to flush (sinks that acknowledge on their own flush
 * schedule, like the file sink, then need not be waited for). */
static int wait_acked(bf_t *bf, cdc_txn_t *tx, cdc_err_t *err)
{
    int64_t t0 = mono_us();
    for (;;) {
        int rc = 0, done;
        pthread_mutex_lock(&bf->mu);
        if (tx->failed) {
            if (!err->msg[0])
                cdc_err_set(err, CDC_EXIT_UNAVAILABLE, 0,
                            "the sink failed to deliver a backfill chunk");
            rc = -1;
        } else if (tx->pending > 0) {
            if (mono_us() - t0 > 250000)
                rc = bf->kops->flush(bf->snk, 1000, err);
            else
                rc = bf->kops->poll(bf->snk, 5, err);
        }
        done = rc || tx->failed || tx->pending <= 0;
        pthread_mutex_unlock(&bf->mu);
        if (done)
            return rc ? -1 : 0;
        usleep(1000);
    }
}

/* 1 when every message of tx was delivered. */
static int acked(bf_t *bf, cdc_txn_t *tx)
{
    int r;
    pthread_mutex_lock(&bf->mu);
    r = tx->pending <= 0 && !tx->failed;
    pthread_mutex_unlock(&bf->mu);
    return r;
}

/* A chunk handed to the sink, not yet acknowledged. */
typedef struct flight {
    cdc_txn_t *tx;
    char *last;      /* key of its last row (NULL: empty chunk) */
    uint32_t n, kept;
    int final;       /* last chunk of the table */
} flight_t;

/* Retire the oldest in-flight chunk once acknowledged: record its key. */
static int retire(bf_t *bf, job_t *j, flight_t *f, cdc_err_t *err)
{
    int rc;
    if (f->kept && wait_acked(bf, f->tx, err))
        return -1;
    pthread_mutex_lock(&bf->mu);
    if (f->last) {
        free(j->tp->key);
        j->tp->key = f->last;
        f->last = NULL;
    }
    j->tp->rows += f->kept;
    j->rows += f->kept;
    if (f->n)
        j->tp->chunks++;
    if (f->final)
        j->tp->done = 1;
    rc = save_progress(bf, err);
    pthread_mutex_unlock(&bf->mu);
    cdc_txn_destroy(f->tx);
    f->tx = NULL;
    return rc;
}


static job_t *take_job(bf_t *bf)
{
    job_t *j = NULL;
    pthread_mutex_lock(&bf->mu);
    if (!bf->failed && !bf_stop && bf->next_job < bf->njobs_active) {
        j = &bf->jobs[bf->next_job++];
        j->state = 1;
        j->t0 = mono_us();
    }
    pthread_mutex_unlock(&bf->mu);
    return j;
}

/*
 * The emitter: a thread per running table that hands chunks to the sink
 * and records their keys once acknowledged, so reading the next chunks
 * from the database overlaps with encoding and delivery.  Chunks reach it
 * through a bounded queue (backfill.inflight_chunks); it keeps at most as
 * many unacknowledged in the sink and retires them in order.
 */
typedef struct emq {
    bf_t *bf;
    job_t *j;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    flight_t *q;         /* ring of chunks read, not yet submitted */
    int cap, head, n;
    int closed;          /* reader finished (or gave up) */
    int failed;
    cdc_err_t err;
    pthread_t thr;
} emq_t;

static void *emitter_main(void *arg)
{
    emq_t *e = arg;
    bf_t *bf = e->bf;
    flight_t *fl = cdc_xcalloc((size_t)bf->inflight + 1, sizeof(*fl));
    int nfl = 0, rc = 0;
    cdc_err_t err = {0};

    for (;;) {
        flight_t f;
        pthread_mutex_lock(&e->mu);
        while (!e->n && !e->closed)
            pthread_cond_wait(&e->cv, &e->mu);
        if (!e->n) {
            pthread_mutex_unlock(&e->mu);
            break;
        }
        f = e->q[e->head];
        e->head = (e->head + 1) % e->cap;
        e->n--;
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);

        if (f.kept && submit(bf, f.tx, &err)) {
            cdc_txn_destroy(f.tx);
            free(f.last);
            rc = -1;
            break;
        }
        if (nfl == bf->inflight) {
            if (retire(bf, e->j, &fl[0], &err)) {
                rc = -1;
                break;
            }
            memmove(&fl[0], &fl[1], (size_t)(nfl - 1) * sizeof(*fl));
            nfl--;
        }
        fl[nfl++] = f;
        /* record every chunk already acknowledged, oldest first */
        while (nfl && (!fl[0].kept || acked(bf, fl[0].tx))) {
            if (retire(bf, e->j, &fl[0], &err)) {
                rc = -1;
                break;
            }
            memmove(&fl[0], &fl[1], (size_t)(nfl - 1) * sizeof(*fl));
            nfl--;
        }
        if (rc)
            break;
    }
    while (!rc && nfl) {
        if (retire(bf, e->j, &fl[0], &err)) {
            rc = -1;
            break;
        }
        memmove(&fl[0], &fl[1], (size_t)(nfl - 1) * sizeof(*fl));
        nfl--;
    }
    for (int i = 0; i < nfl; i++) { /* failed: nothing more is recorded */
        if (fl[i].kept && fl[i].tx->pending > 0) {
            cdc_err_t e2 = {0};
            pthread_mutex_lock(&bf->mu);
            bf->kops->flush(bf->snk, 5000, &e2);
            pthread_mutex_unlock(&bf->mu);
        }
        cdc_txn_destroy(fl[i].tx);
        free(fl[i].last);
    }
    free(fl);
    pthread_mutex_lock(&e->mu);
    if (rc) {
        e->failed = 1;
        e->err = err;
        /* drop what the reader queued */
        while (e->n) {
            cdc_txn_destroy(e->q[e->head].tx);
            free(e->q[e->head].last);
            e->head = (e->head + 1) % e->cap;
            e->n--;
        }
    }
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* Queue a chunk for the emitter; -1 when the emitter failed. */
static int emq_push(emq_t *e, const flight_t *f)
{
    pthread_mutex_lock(&e->mu);
    while (e->n == e->cap && !e->failed)
        pthread_cond_wait(&e->cv, &e->mu);
    if (e->failed) {
        pthread_mutex_unlock(&e->mu);
        cdc_txn_destroy(f->tx);
        free(f->last);
        return -1;
    }
    e->q[(e->head + e->n) % e->cap] = *f;
    e->n++;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return 0;
}

static int run_table(worker_t *w, job_t *j, cdc_err_t *err)
{
    bf_t *bf = w->bf;
    cdc_table_t *tbl = NULL;
    char *key = NULL;
    int rc = -1;
    uint32_t limit = (uint32_t)bf->chunk;
    char *upto = NULL;
    int empty = 0;
    cdc_buf_t kb = CDC_BUF_INIT;
    emq_t eq;
    int emitter = 0;

    memset(&eq, 0, sizeof(eq));
    eq.bf = bf;
    eq.j = j;
    eq.cap = (int)bf->inflight;
    eq.q = cdc_xcalloc((size_t)eq.cap, sizeof(*eq.q));
    pthread_mutex_init(&eq.mu, NULL);
    pthread_cond_init(&eq.cv, NULL);

    if (bf->rate > 0) {
        int64_t per = bf->rate / (bf->parallel > 0 ? bf->parallel : 1);
        if (per < 1)
            per = 1;
        if ((int64_t)limit > per)
            limit = (uint32_t)per; /* never a burst above one second */
    }
    if (bf->dops->describe(w->snap, j->db, j->tb, &tbl, &j->est, err))
        goto out;
    pthread_mutex_lock(&bf->mu);
    key = j->tp->key ? cdc_xstrdup(j->tp->key) : NULL;
    j->start_rows = j->tp->rows;
    pthread_mutex_unlock(&bf->mu);
    if (key)
        CDC_INFO(FAC, "%s: resuming after key %s (%" PRIu64 " rows done "
                      "before)", j->name, key, j->start_rows);
    /* a watermarked run ends at today's last key (the stream carries
     * what is inserted after); a consistent snapshot needs no bound */
    if (!bf->initial && bf->dops->max_key) {
        if (bf->dops->max_key(w->snap, tbl, bf->where, &upto, err))
            goto out;
        empty = !upto; /* nothing to read; rows to come are the stream's */
    }
    if (pthread_create(&eq.thr, NULL, emitter_main, &eq)) {
        cdc_err_set(err, CDC_EXIT_FAIL, 0, "cannot start a thread");
        goto out;
    }
    emitter = 1;

    while (!bf_stop) {
        cdc_txn_t *tx = cdc_txn_new();
        char *last = NULL, lw[96], hw[96];
        uint32_t n = 0, kept = 0;
        cdc_snap_vis_t vis = {0};
        cdc_snap_stamp_t st = {0};
        int64_t wait;
        int wm = bf->watermarks && !empty;

        if (wm) {
            w->wm_seq++;
            snprintf(lw, sizeof(lw), "%s-%d-%" PRIu64 "-lw", bf->prog.run,
                     w->idx, w->wm_seq);
            snprintf(hw, sizeof(hw), "%s-%d-%" PRIu64 "-hw", bf->prog.run,
                     w->idx, w->wm_seq);
            if (bf->dops->watermark(w->snap, bf->sig, lw, err)) {
                cdc_txn_destroy(tx);
                goto out;
            }
        }
        if (!empty && bf->dops->read_chunk(w->snap, tbl, key, upto,
                                           bf->where, limit, tx, &last, &n,
                                           &vis, err)) {
            cdc_txn_destroy(tx);
            free(vis.xip);
            goto out;
        }
        if (wm) {
            if (bf->dops->watermark(w->snap, bf->sig, hw, err) ||
                window_collect(w, tbl, lw, hw, &vis, &st, err)) {
                cdc_txn_destroy(tx);
                free(vis.xip);
                free(last);
                goto out;
            }
        } else if (bf->initial) {
            st = bf->initial_stamp;
        } else {
            st.connector = strcmp(bf->dops->name, "postgres") ? "mysql"
                                                              : "postgresql";
            st.commit_us = cdc_now_us();
        }
        free(vis.xip);
        /* drop rows changed inside the window; stamp the rest */
        {
            int all = kset_has(&w->changed, "\x1e*");
            uint32_t o = 0;
            for (uint32_t i = 0; i < tx->nchanges; i++) {
                cdc_change_t *ch = &tx->changes[i];
                if (w->changed.n &&
                    (all || (key_text(tbl, tbl, ch->after, &kb) &&
                             kset_has(&w->changed, kb.p)))) {
                    cdc_table_destroy(ch->tbl);
                    j->dropped++;
                    continue;
                }
                tx->changes[o++] = *ch;
            }
            tx->nchanges = o;
            kept = o;
        }
        tx->connector = st.connector;
        tx->server_id = st.server_id;
        tx->commit_us = st.commit_us ? st.commit_us : cdc_now_us();
        snprintf(tx->gtid, sizeof(tx->gtid), "%s", st.gtid);
        tx->file = st.file[0] ? cdc_arena_memdup(&tx->arena, st.file,
                                                 strlen(st.file))
                              : NULL;
        for (uint32_t i = 0; i < tx->nchanges; i++) {
            tx->changes[i].pos = st.pos;
            tx->changes[i].row =
                bf->initial ? (uint32_t)(bf->initial_row + i) : i;
        }
        if (bf->initial)
            bf->initial_row += tx->nchanges;
        /* pace (one budget shared by every worker), then hand over */
        pthread_mutex_lock(&bf->mu);
        wait = cdc_backfill_pace_us(bf->paced, mono_us() - bf->pace_t0, n,
                                    bf->rate);
        bf->paced += n;
        pthread_mutex_unlock(&bf->mu);
        while (wait > 0 && !bf_stop) {
            int64_t sl = wait > 200000 ? 200000 : wait;
            usleep((useconds_t)sl);
            wait -= sl;
        }
        {
            flight_t f = {tx, last ? cdc_xstrdup(last) : NULL, n, kept,
                          n < limit};
            if (emq_push(&eq, &f)) {
                free(last);
                goto out;
            }
        }
        if (last) {
            free(key);
            key = last;
        }
        if (n < limit)
            break;
    }
    rc = 0;
out:
    if (emitter) {
        pthread_mutex_lock(&eq.mu);
        eq.closed = 1;
        pthread_cond_broadcast(&eq.cv);
        pthread_mutex_unlock(&eq.mu);
        pthread_join(eq.thr, NULL);
        if (eq.failed) {
            if (!rc || !err->msg[0])
                *err = eq.err;
            rc = -1;
        }
    }
    pthread_mutex_destroy(&eq.mu);
    pthread_cond_destroy(&eq.cv);
    free(eq.q);
    free(upto);
    free(key);
    cdc_buf_free(&kb);
    cdc_table_destroy(tbl);
    return rc;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    bf_t *bf = w->bf;
    cdc_err_t err = {0};
    job_t *j;

    if (bf->initial) {
        w->snap = bf->initial_snap;
    } else {
        w->snap = bf->dops->open(bf->conf, w->idx, &err);
        if (!w->snap)
            goto fail;
        if (bf->watermarks && window_start(w, &err))
            goto fail;
    }
    while ((j = take_job(bf))) {
        if (run_table(w, j, &err)) {
            pthread_mutex_lock(&bf->mu);
            j->state = 3;
            j->t1 = mono_us();
            pthread_mutex_unlock(&bf->mu);
            goto fail;
        }
        pthread_mutex_lock(&bf->mu);
        j->state = bf_stop && !j->tp->done ? 3 : 2;
        j->t1 = mono_us();
        pthread_mutex_unlock(&bf->mu);
    }
    goto out;
fail:
    if (err.code != CDC_EXIT_TEMPFAIL || !bf_stop)
        fail_run(bf, &err);
out:
    window_stop(w);
    kset_clear(&w->changed);
    if (w->snap && !bf->initial)
        bf->dops->close(w->snap);
    w->snap = NULL;
    pthread_mutex_lock(&bf->mu);
    bf->alive--;
    pthread_mutex_unlock(&bf->mu);
    return NULL;
}

/* ---- progress display --------------------------------------------------- */

static void show(bf_t *bf, int final, int *drawn)
{
    int64_t t = mono_us();
    cdc_buf_t b = CDC_BUF_INIT;

    pthread_mutex_lock(&bf->mu);
    if (bf->tty && *drawn)
        cdc_buf_printf(&b, "\033[%dA", *drawn);
    for (int i = 0; i < bf->njobs; i++) {
        job_t *j = &bf->jobs[i];
        uint64_t done = j->tp->rows;
        double secs = j->state ? (double)((j->state >= 2 ? j->t1 : t) - j->t0)
                                     / 1e6
                               : 0;
        double rps = secs > 0 ? (double)j->rows / secs : 0;
        char eta[32] = "-";
        const char *st = j->state == 0   ? "waiting"
                         : j->state == 1 ? "running"
                         : j->state == 2 ? "done"
                                         : "stopped";
        if (j->state == 1 && j->est > done && rps > 0)
            cdc_backfill_fmt_eta(eta, sizeof(eta),
                                 (double)(j->est - done) / rps);
        if (bf->tty) {
            int width = 24, fill;
            double frac = j->state == 2 ? 1.0
                          : j->est      ? (double)done / (double)j->est
                                        : 0.0;
            if (frac > 1)
                frac = 0.99;
            fill = (int)(frac * width);
            cdc_buf_printf(&b, "\033[K%-28.28s [", j->name);
            for (int k = 0; k < width; k++)
                cdc_buf_putc(&b, k < fill ? '#' : '.');
            cdc_buf_printf(&b, "] %3d%% %10" PRIu64 "/%-10" PRIu64
                               " %8.0f rows/s ETA %-7s %s\n",
                           (int)(frac * 100), done,
                           j->est > done ? j->est : done, rps, eta, st);
        } else if (j->state == 1 || (final && j->state)) {
            cdc_log(CDC_LOG_INFO, FAC,
                    "table=%s state=%s rows=%" PRIu64 " estimated=%" PRIu64
                    " rows_per_sec=%.0f eta=%s dropped=%" PRIu64,
                    j->name, st, done, j->est, rps, eta, j->dropped);
        }
    }
    if (bf->tty) {
        fputs(b.p ? b.p : "", stderr);
        fflush(stderr);
        *drawn = bf->njobs;
    }
    pthread_mutex_unlock(&bf->mu);
    cdc_buf_free(&b);
}

/* ---- command ------------------------------------------------------------ */

void cdc_backfill_name_put(cdc_buf_t *b, const char *db, const char *tb)
{
    for (int i = 0; i < 2; i++) {
        const char *part = i ? tb : db;
        if (i)
            cdc_buf_putc(b, '.');
        if (*part && !strpbrk(part, " \t\r\n.,\"`"))
            cdc_buf_puts(b, part);
        else
            cdc_buf_quoted(b, part, '"');
    }
}

/* One part of a table name at *pp: bare (up to a blank, '.', ',' or
 * quote) or quoted with " or ` (the quote doubled inside).  0 ok. */
static int name_part(const char **pp, char *out, size_t n)
{
    const char *p = *pp;
    size_t k = 0;

    if (*p == '"' || *p == '`') {
        char q = *p++;
        for (;; p++) {
            if (!*p)
                return -1;
            if (*p == q) {
                if (p[1] != q)
                    break;
                p++;
            }
            if (k + 1 >= n)
                return -1;
            out[k++] = *p;
        }
        p++;
    } else {
        while (*p && !strchr(" \t\r\n.,\"`", *p)) {
            if (k + 1 >= n)
                return -1;
            out[k++] = *p++;
        }
    }
    out[k] = '\0';
    *pp = p;
    return k ? 0 : -1;
}

static int add_job(bf_t *bf, const char *db, const char *tb)
{
    cdc_buf_t name = CDC_BUF_INIT;
    job_t *j;

    cdc_backfill_name_put(&name, db, tb);
    for (int i = 0; i < bf->njobs; i++)
        if (!strcmp(bf->jobs[i].name, name.p)) {
            cdc_buf_free(&name);
            return 0;
        }
    bf->jobs = cdc_xrealloc(bf->jobs, (size_t)(bf->njobs + 1) *
                                          sizeof(*bf->jobs));
    j = &bf->jobs[bf->njobs++];
    memset(j, 0, sizeof(*j));
    j->name = name.p;
    snprintf(j->db, sizeof(j->db), "%s", db);
    snprintf(j->tb, sizeof(j->tb), "%s", tb);
    return 0;
}

/* A list of db.table names separated by commas or blanks; a part with a
 * blank, dot, comma or quote is quoted: "my db"."order items". */
static int add_jobs(bf_t *bf, const char *list, cdc_err_t *err)
{
    const char *p = list;

    for (;;) {
        char db[256], tb[256];
        const char *start;
        while (*p && strchr(", \t\r\n", *p))
            p++;
        if (!*p)
            return 0;
        start = p;
        if (name_part(&p, db, sizeof(db)) || *p++ != '.' ||
            name_part(&p, tb, sizeof(tb)) || (*p && !strchr(", \t\r\n", *p))) {
            size_t n = strcspn(start, ",");
            cdc_err_set(err, CDC_EXIT_USAGE, 0,
                        "table '%.*s' is not db.table (or schema.table)",
                        (int)(n > 200 ? 200 : n), start);
            cdc_err_hint(err, "quote a name with a space, dot, comma or "
                              "quote: --table '\"my db\".\"order items\"' "
                              "(a quote inside is doubled)");
            return -1;
        }
        add_job(bf, db, tb);
    }
}

int cdc_backfill_cli(const cdc_conf_t *conf, int argc, char **argv,
                     cdc_err_t *err)
{
    bf_t bf;
    const char *stype = cdc_conf_get(conf, "source.type", NULL);
    const char *state = cdc_conf_get(conf, "state.dir", "state");
    const char *mode = cdc_conf_get(conf, "backfill.mode", "auto");
    const char *tables = cdc_conf_get(conf, "backfill.tables", "");
    int lockfd = -1, rc = CDC_EXIT_OK, loaded, drawn = 0, wm = 1;
    worker_t *ws = NULL;
    int nw = 0;
    char *ckpt_path = NULL;
    char prev_run[40] = "";
    cdc_conf_t *sink_conf = NULL;
    struct sigaction sa;

    memset(&bf, 0, sizeof(bf));
    pthread_mutex_init(&bf.mu, NULL);
    bf.conf = conf;
    bf.t0 = mono_us();
    for (int i = 0; i < argc; i++) /* extra words: more tables */
        if (argv[i][0]) {
            cdc_buf_t b = CDC_BUF_INIT;
            cdc_buf_printf(&b, "%s%s%s", tables, *tables ? "," : "", argv[i]);
            tables = NULL;
            free(bf.tables_csv);
            bf.tables_csv = b.p;
            tables = bf.tables_csv;
        }
    if (!stype) {
        cdc_err_set(err, CDC_EXIT_USAGE, 0, "no source given");
        cdc_err_hint(err, "set source.type (mysql or postgres) in the YAML "
                          "file or pass --source");
        rc = CDC_EXIT_USAGE;
        goto out;
    }
    if (!strcmp(stype, "mysql") || !strcmp(stype, "mariadb"))
        bf.dops = &cdc_snap_mysql_ops;
    else if (!strcmp(stype, "postgres") || !strcmp(stype, "postgresql") ||
             !strcmp(stype, "pg"))
        bf.dops = &cdc_snap_postgres_ops;
    if (!bf.dops || !bf.dops->open) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "backfill does not support source '%s'", stype);
        cdc_err_hint(err, "backfill reads mysql and postgres sources");
        rc = CDC_EXIT_CONFIG;
        goto out;
    }
    bf.pipeline = cdc_xstrdup(cdc_conf_pipeline(conf));
    if (cdc_conf_get_int(conf, "backfill.chunk_size", 5000, &bf.chunk, err) ||
        cdc_conf_get_int(conf, "backfill.max_rows_per_sec", 0, &bf.rate,
                         err) ||
        cdc_conf_get_int(conf, "backfill.parallel", 1, &bf.parallel, err) ||
        cdc_conf_get_int(conf, "backfill.watermark_timeout_ms", 60000,
                         &bf.wm_timeout_ms, err) ||
        cdc_conf_get_int(conf, "backfill.inflight_chunks", 4, &bf.inflight,
                         err) ||
        cdc_conf_get_bool(conf, "backfill.watermarks", 1, &wm, err)) {
        rc = CDC_EXIT_CONFIG;
        goto out;
    }
    if (bf.chunk < 1 || bf.chunk > 1000000 || bf.parallel < 1 ||
        bf.parallel > 64 || bf.rate < 0 || bf.inflight < 1 ||
        bf.inflight > 64) {
        cdc_err_set(err, CDC_EXIT_USAGE, 0,
                    "backfill: chunk size must be 1..1000000, parallel "
                    "1..64, inflight chunks 1..64, max rows/s >= 0");
        rc = CDC_EXIT_USAGE;
        goto out;
    }
    if (strcmp(mode, "auto") && strcmp(mode, "initial") &&
        strcmp(mode, "incremental")) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "unknown backfill.mode '%s'",
                    mode);
        cdc_err_hint(err, "use auto, initial or incremental");
        rc = CDC_EXIT_CONFIG;
        goto out;
    }
    bf.where = cdc_conf_get(conf, "backfill.where", NULL);
    if (bf.where && !*bf.where)
        bf.where = NULL;
    bf.kops = cdc_sink_find(cdc_conf_get(conf, "sink.type", "stdout"));
    if (!bf.kops) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "unknown sink '%s'",
                    cdc_conf_get(conf, "sink.type", "stdout"));
        cdc_err_hint(err, "available sinks: %s", cdc_sink_names());
        rc = CDC_EXIT_CONFIG;
        goto out;
    }

    /* 1. lock */
    if (cdc_state_lock(state, bf.pipeline, "backfill", &lockfd, err)) {
        rc = err->code;
        goto out;
    }
    /* 2. progress */
    bf.prog_path = cdc_backfill_prog_path(state, bf.pipeline);
    loaded = cdc_backfill_prog_load(bf.prog_path, &bf.prog, err);
    if (loaded < 0) {
        rc = err->code;
        goto out;
    }
    /* a fresh run id per invocation (signal row ids must not repeat); the
     * interrupted run's rows are removed with ours at the end */
    if (bf.prog.run[0] && strcmp(bf.prog.run, "-"))
        snprintf(prev_run, sizeof(prev_run), "%s", bf.prog.run);
    snprintf(bf.prog.run, sizeof(bf.prog.run), "bf%lx%x",
             (unsigned long)time(NULL), (unsigned)getpid() & 0xffff);

    /* tables */
    {
        cdc_snap_t *s0 = NULL;
        if (!tables || !*tables) {
            char *all = NULL;
            s0 = bf.dops->open(conf, 0, err);
            if (!s0 || bf.dops->list_tables(s0, conf, &all, err)) {
                if (s0)
                    bf.dops->close(s0);
                rc = err->code ? err->code : CDC_EXIT_FAIL;
                goto out;
            }
            bf.dops->close(s0);
            if (!*all) {
                free(all);
                cdc_err_set(err, CDC_EXIT_USAGE, 0, "no tables to backfill");
                cdc_err_hint(err, "pass --table db.table (repeatable)");
                rc = CDC_EXIT_USAGE;
                goto out;
            }
            rc = add_jobs(&bf, all, err);
            free(all);
        } else {
            rc = add_jobs(&bf, tables, err);
        }
        if (rc) {
            rc = err->code;
            goto out;
        }
        cdc_buf_t b = CDC_BUF_INIT;
        for (int i = 0; i < bf.njobs; i++)
            cdc_buf_printf(&b, "%s%s", i ? "," : "", bf.jobs[i].name);
        free(bf.tables_csv);
        bf.tables_csv = b.p;
    }
    for (int i = 0; i < bf.njobs; i++) /* create first: may realloc */
        cdc_backfill_prog_table(&bf.prog, bf.jobs[i].name);
    for (int i = 0; i < bf.njobs; i++)
        bf.jobs[i].tp = cdc_backfill_prog_table(&bf.prog, bf.jobs[i].name);
    {
        /* the signal table: backfill.signal_table or <db of the first
         * table>.autoglm_cdc_signal */
        const char *sig = cdc_conf_get(conf, "backfill.signal_table", NULL);
        if (sig && *sig)
            snprintf(bf.sig, sizeof(bf.sig), "%s", sig);
        else
            snprintf(bf.sig, sizeof(bf.sig), "%s.autoglm_cdc_signal",
                     bf.jobs[0].db);
    }

    /* 3. mode */
    ckpt_path = cdc_ckpt_path(state, bf.pipeline);
    {
        struct stat stt;
        int have_ckpt = stat(ckpt_path, &stt) == 0;
        int resumed = loaded && bf.prog.n;
        long dpid = 0;
        char durl[300];
        /* a daemon of this pipeline runs but has not checkpointed yet (a
         * cron backfill right after its start): a first load would store
         * the stream's checkpoint under its feet and load twice */
        int daemon = cdc_daemon_running(state, bf.pipeline, &dpid, durl,
                                        sizeof(durl));
        if (daemon && !strcmp(mode, "initial")) {
            cdc_err_set(err, CDC_EXIT_TEMPFAIL, 0, "the daemon of pipeline "
                        "%s runs (pid %ld): backfill.mode=initial would "
                        "replace its starting point", bf.pipeline, dpid);
            cdc_err_hint(err, "stop the daemon for a first load, or use "
                         "backfill.mode=auto or incremental beside it");
            rc = CDC_EXIT_TEMPFAIL;
            goto out;
        }
        if (!strcmp(mode, "initial") ||
            (!strcmp(mode, "auto") && !have_ckpt && !resumed && !daemon))
            bf.initial = 1;
        if (daemon && !have_ckpt && !resumed && !strcmp(mode, "auto"))
            CDC_INFO(FAC, "the daemon of pipeline %s runs (pid %ld%s%s) and "
                     "has no checkpoint yet: backfilling incrementally with "
                     "watermarks beside it instead of a first load",
                     bf.pipeline, dpid, *durl ? ", " : "", durl);
        if (bf.initial && have_ckpt) {
            CDC_WARN(FAC, "the stream checkpoint %s exists; the consistent "
                          "first load does not replace it",
                     ckpt_path);
        }
    }
    bf.watermarks = !bf.initial && wm;
    if (bf.watermarks) {
        bf.sops = cdc_source_find(stype);
        if (!bf.sops || !bf.dops->window_conf) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                        "this build has no '%s' streaming source for the "
                        "watermark window", stype);
            cdc_err_hint(err, "set backfill.watermarks=false (no stream "
                              "running) or build with the source");
            rc = CDC_EXIT_CONFIG;
            goto out;
        }
    }
    snprintf(bf.prog.mode, sizeof(bf.prog.mode), "%s",
             bf.initial ? "initial" : "incremental");

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    bf_stop = 0;

    /* bulk-friendly producer defaults for a Kafka sink (each one only
     * when not configured): bigger batches, cheaper compression level */
    sink_conf = conf_copy(conf);
    {
        /* the sink works as pipeline <pipeline>.backfill: sinks that keep
         * a position (the wide sinks' offsets row) keep the backfill's in
         * a row of its own and never move the stream's; the source id
         * stays the stream's (application_id defaults to pipeline.name) */
        cdc_buf_t b = CDC_BUF_INIT;
        cdc_conf_set(sink_conf, "application_id",
                     cdc_conf_get(conf, "application_id", bf.pipeline),
                     "backfill");
        cdc_buf_printf(&b, "%s.backfill", bf.pipeline);
        cdc_conf_set(sink_conf, "pipeline.name", b.p, "backfill");
        cdc_buf_free(&b);
    }
    if (!strcmp(bf.kops->name, "kafka")) {
        static const char *const defs[][3] = {
            {"kafka.linger.ms", "kafka.queue.buffering.max.ms", "50"},
            {"kafka.batch.size", NULL, "4000000"},
            {"kafka.batch.num.messages", NULL, "100000"},
            /* lz4 over the stream's zstd: make bench measured 0.41x vs
             * 0.36x mariadb-dump's rows/s on 2 cores shared with the broker */
            {"kafka.compression.type", "kafka.compression.codec", "lz4"},
            {"kafka.compression.level", NULL, "1"},
        };
        int bulk = 1;
        if (cdc_conf_get_bool(conf, "backfill.kafka_bulk", 1, &bulk, err)) {
            rc = CDC_EXIT_CONFIG;
            goto out;
        }
        for (size_t i = 0; bulk && i < sizeof(defs) / sizeof(defs[0]); i++)
            if (!cdc_conf_get(conf, defs[i][0], NULL) &&
                (!defs[i][1] || !cdc_conf_get(conf, defs[i][1], NULL)))
                cdc_conf_set(sink_conf, defs[i][0], defs[i][2], "backfill");
    }
    bf.snk = bf.kops->create(sink_conf, err);
    if (!bf.snk) {
        rc = err->code ? err->code : CDC_EXIT_UNAVAILABLE;
        goto out;
    }
    if (!bf.snk->ops)
        bf.snk->ops = bf.kops;

    if (bf.initial) {
        char postext[1024] = "";
        int r;
        bf.initial_snap = bf.dops->open(conf, 0, err);
        if (!bf.initial_snap) {
            rc = err->code ? err->code : CDC_EXIT_UNAVAILABLE;
            goto out;
        }
        r = bf.dops->begin_consistent(bf.initial_snap, bf.tables_csv,
                                      &bf.initial_stamp,
                                      postext, sizeof(postext), err);
        if (r < 0) {
            rc = err->code ? err->code : CDC_EXIT_FAIL;
            goto out;
        }
        if (r == 1) {
            CDC_WARN(FAC, "consistent first load not possible (%s); using "
                          "watermarked chunks", err->msg);
            cdc_err_clear(err);
            bf.dops->close(bf.initial_snap);
            bf.initial_snap = NULL;
            bf.initial = 0;
            bf.watermarks = wm;
            bf.sops = cdc_source_find(stype);
            snprintf(bf.prog.mode, sizeof(bf.prog.mode), "incremental");
        } else {
            struct stat stt;
            if (stat(ckpt_path, &stt) != 0) {
                cdc_ckpt_t ck;
                memset(&ck, 0, sizeof(ck));
                snprintf(ck.pos.file, sizeof(ck.pos.file), "%s",
                         bf.initial_stamp.file);
                if (bf.initial_stamp.file[0]) {
                    ck.pos.offset = bf.initial_stamp.pos;
                    snprintf(ck.pos.gtid, sizeof(ck.pos.gtid), "%s", postext);
                } else {
                    ck.pos.lsn = bf.initial_stamp.pos;
                }
                ck.commit_us = bf.initial_stamp.commit_us;
                snprintf(ck.source, sizeof(ck.source), "%s", stype);
                if (cdc_ckpt_store(ckpt_path, &ck, err)) {
                    rc = err->code ? err->code : CDC_EXIT_FAIL;
                    goto out;
                }
                CDC_INFO(FAC, "consistent first load at %s; stored as the "
                              "stream checkpoint %s",
                         cdc_pos_str(&ck.pos), ckpt_path);
            }
            snprintf(bf.initial_stamp.gtid, sizeof(bf.initial_stamp.gtid),
                     "%.127s", strlen(postext) < 128 ? postext : "");
            if (bf.parallel > 1)
                CDC_INFO(FAC, "consistent first load reads one snapshot on "
                              "one connection: parallel %" PRId64 " ignored",
                         bf.parallel);
            bf.parallel = 1;
        }
    }
    if (bf.watermarks) {
        cdc_snap_t *s0 = bf.dops->open(conf, 0, err);
        if (!s0 || bf.dops->signal_init(s0, bf.sig, err)) {
            if (s0)
                bf.dops->close(s0);
            rc = err->code ? err->code : CDC_EXIT_FAIL;
            goto out;
        }
        bf.dops->close(s0);
    }
    pthread_mutex_lock(&bf.mu);
    if (save_progress(&bf, err)) {
        pthread_mutex_unlock(&bf.mu);
        rc = err->code ? err->code : CDC_EXIT_FAIL;
        goto out;
    }
    /* tables finished by an interrupted run stay finished; the others
     * go first, in the given order */
    {
        int k = 0;
        job_t *sorted = cdc_xcalloc((size_t)bf.njobs, sizeof(*sorted));
        for (int i = 0; i < bf.njobs; i++)
            if (!bf.jobs[i].tp->done)
                sorted[k++] = bf.jobs[i];
        bf.njobs_active = k;
        for (int i = 0; i < bf.njobs; i++)
            if (bf.jobs[i].tp->done) {
                bf.jobs[i].state = 2;
                sorted[k++] = bf.jobs[i];
            }
        free(bf.jobs);
        bf.jobs = sorted;
        nw = (int)(bf.parallel < bf.njobs_active ? bf.parallel
                                                 : bf.njobs_active);
        bf.next_job = 0;
    }
    pthread_mutex_unlock(&bf.mu);
    CDC_INFO(FAC, "pipeline %s: %s backfill of %s (chunk %" PRId64
                  ", max %" PRId64 " rows/s, %d worker%s)%s",
             bf.pipeline, bf.prog.mode, bf.tables_csv, bf.chunk, bf.rate, nw,
             nw == 1 ? "" : "s", bf.watermarks ? ", watermarks on" : "");

    bf.tty = isatty(2) && cdc_log_get_level() >= CDC_LOG_INFO;
    ws = cdc_xcalloc((size_t)(nw ? nw : 1), sizeof(*ws));
    bf.alive = nw;
    bf.pace_t0 = mono_us();
    for (int i = 0; i < nw; i++) {
        ws[i].bf = &bf;
        ws[i].idx = i;
        if (pthread_create(&ws[i].thr, NULL, worker_main, &ws[i])) {
            cdc_err_set(err, CDC_EXIT_FAIL, 0, "cannot start a thread");
            pthread_mutex_lock(&bf.mu);
            bf.alive -= nw - i;
            pthread_mutex_unlock(&bf.mu);
            nw = i;
            bf_stop = 1;
            break;
        }
    }
    {
        int64_t next_log = mono_us() + 5000000;
        for (;;) {
            int alive;
            pthread_mutex_lock(&bf.mu);
            alive = bf.alive;
            pthread_mutex_unlock(&bf.mu);
            if (!alive)
                break;
            usleep(200000);
            if (bf.tty)
                show(&bf, 0, &drawn);
            else if (mono_us() >= next_log) {
                show(&bf, 0, &drawn);
                next_log = mono_us() + 5000000;
            }
        }
    }
    for (int i = 0; i < nw; i++)
        pthread_join(ws[i].thr, NULL);
    show(&bf, 1, &drawn);

    if (bf.initial && bf.initial_snap) {
        cdc_err_t e2 = {0};
        bf.dops->end_consistent(bf.initial_snap, &e2);
    }
    /* summary */
    {
        uint64_t rows = 0, dropped = 0;
        int done = 0;
        double secs = (double)(mono_us() - bf.t0) / 1e6;
        for (int i = 0; i < bf.njobs; i++) {
            rows += bf.jobs[i].rows;
            dropped += bf.jobs[i].dropped;
            done += bf.jobs[i].tp->done;
        }
        CDC_INFO(FAC, "summary: %d of %d tables done, %" PRIu64 " rows in "
                      "%.1f s (%.0f rows/s), %" PRIu64 " rows left to the "
                      "stream by the watermark rule",
                 done, bf.njobs, rows, secs, secs > 0 ? rows / secs : 0.0,
                 dropped);
        if (bf.failed) {
            *err = bf.err;
            rc = err->code ? err->code : CDC_EXIT_FAIL;
        } else if (done < bf.njobs) {
            cdc_err_set(err, CDC_EXIT_TEMPFAIL, 0,
                        "backfill interrupted; %d of %d tables done", done,
                        bf.njobs);
            cdc_err_hint(err, "run the same command again: it resumes after "
                              "the last finished chunk");
            rc = CDC_EXIT_TEMPFAIL;
        } else {
            cdc_err_t e2 = {0};
            /* complete: the next run starts a fresh backfill */
            if (unlink(bf.prog_path) && errno != ENOENT)
                CDC_WARN(FAC, "cannot remove %s: %s", bf.prog_path,
                         strerror(errno));
            if (bf.watermarks) {
                cdc_snap_t *s0 = bf.dops->open(conf, 0, &e2);
                if (s0) {
                    bf.dops->signal_cleanup(s0, bf.sig, bf.prog.run, &e2);
                    if (prev_run[0])
                        bf.dops->signal_cleanup(s0, bf.sig, prev_run, &e2);
                    bf.dops->close(s0);
                }
            }
        }
    }

out:
    free(ws);
    if (bf.initial_snap)
        bf.dops->close(bf.initial_snap);
    if (bf.snk)
        bf.kops->destroy(bf.snk);
    cdc_conf_destroy(sink_conf);
    for (int i = 0; i < bf.njobs; i++)
        free(bf.jobs[i].name);
    free(bf.jobs);
    cdc_backfill_prog_free(&bf.prog);
    free(bf.prog_path);
    free(bf.pipeline);
    free(bf.tables_csv);
    free(ckpt_path);
    if (lockfd >= 0)
        close(lockfd);
    pthread_mutex_destroy(&bf.mu);
    return rc;
}
