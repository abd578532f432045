/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backfill.c - the backfill engine: resumable, throttled snapshots of
 * existing rows as op 'r' transactions, consistent with the live stream.
 * The command around it (arguments, steps 1-3, the display of step 5)
 * is cdc/commands/backfill.c; cdc/backfill_int.h is between the two.
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
#include "cdc/backfill_int.h"
#include "cdc/buf.h"
#include "cdc/checkpoint.h"
#include "cdc/envelope.h"
#include "cdc/flight.h"
#include "cdc/log.h"
#include "cdc/metrics.h"
#include "cdc/plugin.h"

#define FAC "backfill"
#define mono_us cdc_bf_mono_us /* the engine's short name for it */


int64_t cdc_bf_mono_us(void)
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

/* The one stop token (cdc/flight.h): the sinks see it too, so a SIGTERM
 * reaches a Kafka sink blocked on a full producer queue. */
void cdc_bf_catch_signals(void)
{
    cdc_flight_catch_signals();
    cdc_pipeline_stop = 0;
}

/* Copy of conf (the window reader's and the sink's settings). */
cdc_conf_t *cdc_bf_conf_copy(const cdc_conf_t *conf)
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
    w->wconf = cdc_bf_conf_copy(bf->conf);
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
        if (r == CDC_SRC_EOF || mono_us() > deadline || cdc_pipeline_stop) {
            cdc_buf_free(&kb);
            if (cdc_pipeline_stop)
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

int cdc_bf_save_progress(bf_t *bf, cdc_err_t *err)
{
    return cdc_backfill_prog_store(bf->prog_path, &bf->prog, err);
}

/*
 * Delivery goes through the engine (cdc/flight.h): each emitter keeps its
 * table's chunks in one engine over the shared sink, so a chunk's key is
 * recorded only once it and every chunk before it were acknowledged.  The
 * sink is shared by the emitters of all running tables: every engine call
 * that reaches it holds bf->mu.
 */
typedef struct emit_acks {
    int64_t n; /* chunks the engine reported delivered, not yet retired */
} emit_acks_t;

static void on_chunk_delivered(void *ctx, const cdc_txn_t *tx)
{
    (void)tx;
    ((emit_acks_t *)ctx)->n++;
}

/* Advance the engine over what the sink acknowledged; a chunk whose
 * delivery failed is an unavailable sink.  bf->mu held. */
static int advance(cdc_flight_t *fe, cdc_err_t *err)
{
    if (!cdc_flight_advance(fe, err))
        return 0;
    cdc_err_clear(err);
    return cdc_err_set(err, CDC_EXIT_UNAVAILABLE, 0,
                       "the sink failed to deliver a backfill chunk");
}

/* Hand a chunk to the sink (asynchronous sinks acknowledge later); the
 * engine owns it from here. */
static int submit(bf_t *bf, cdc_flight_t *fe, cdc_txn_t *tx, cdc_err_t *err)
{
    int rc = 0;
    pthread_mutex_lock(&bf->mu);
    tx->seq = ++bf->seq;
    if (cdc_flight_write(fe, tx, err) || cdc_flight_poll(fe, 0, err) ||
        advance(fe, err))
        rc = -1;
    pthread_mutex_unlock(&bf->mu);
    return rc;
}

/* Serve delivery reports until the oldest chunk in the engine is
 * acknowledged (or failed); after 250 ms ask the sink to flush (sinks that
 * acknowledge on their own flush schedule, like the file sink, then need
 * not be waited for). */
static int wait_acked(bf_t *bf, cdc_flight_t *fe, emit_acks_t *acks,
                      cdc_err_t *err)
{
    int64_t t0 = mono_us();
    for (;;) {
        int rc = 0, done;
        pthread_mutex_lock(&bf->mu);
        if (advance(fe, err))
            rc = -1;
        else if (!acks->n) {
            if (mono_us() - t0 > 250000)
                rc = cdc_flight_poll(fe, 0, err) ||
                     (cdc_flight_count(fe) &&
                      bf->kops->flush(bf->snk, 1000, err));
            else
                rc = cdc_flight_poll(fe, 5, err);
            if (!rc && advance(fe, err))
                rc = -1;
        }
        done = rc || acks->n;
        pthread_mutex_unlock(&bf->mu);
        if (done)
            return rc ? -1 : 0;
        usleep(1000);
    }
}

/* A chunk read: handed to the engine when kept, and its key recorded once
 * acknowledged. */
typedef struct flight {
    cdc_txn_t *tx;   /* the chunk until submitted (then the engine's) */
    char *last;      /* key of its last row (NULL: empty chunk) */
    uint32_t n, kept;
    int final;       /* last chunk of the table */
} flight_t;

/* Retire the oldest chunk (acknowledged, or never handed to the sink):
 * record its key. */
static int retire(bf_t *bf, job_t *j, flight_t *f, cdc_err_t *err)
{
    int rc;
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
    rc = cdc_bf_save_progress(bf, err);
    pthread_mutex_unlock(&bf->mu);
    cdc_txn_destroy(f->tx);
    f->tx = NULL;
    return rc;
}

/* Retire the oldest chunk, waiting for its acknowledgement when it went to
 * the sink. */
static int retire_head(bf_t *bf, job_t *j, cdc_flight_t *fe,
                       emit_acks_t *acks, flight_t *fl, int *nfl,
                       cdc_err_t *err)
{
    if (fl[0].kept) {
        if (!acks->n && wait_acked(bf, fe, acks, err))
            return -1;
        acks->n--;
    }
    if (retire(bf, j, &fl[0], err))
        return -1;
    memmove(&fl[0], &fl[1], (size_t)(*nfl - 1) * sizeof(*fl));
    (*nfl)--;
    return 0;
}

static job_t *take_job(bf_t *bf)
{
    job_t *j = NULL;
    pthread_mutex_lock(&bf->mu);
    if (!bf->failed && !cdc_pipeline_stop && bf->next_job < bf->njobs_active) {
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
 * through the engine's bounded feed (cdc/flight.h; backfill.inflight_chunks
 * chunks); it keeps at most as many unacknowledged in the sink and retires
 * them in order.
 */
typedef struct emq {
    bf_t *bf;
    job_t *j;
    cdc_feed_t *feed;
    int failed;          /* set (with err) before the emitter stops the feed */
    cdc_err_t err;
    pthread_t thr;
} emq_t;

/* What the emitter must know of a chunk besides its rows travels with it
 * through the feed: in its arena, found through tx->seq, which is free
 * until submit() numbers the chunk. */
typedef struct chunk_meta {
    const char *last; /* key of its last row (arena; NULL: empty chunk) */
    uint32_t n;
    int final;
} chunk_meta_t;

static void chunk_meta_set(cdc_txn_t *tx, const char *last, uint32_t n,
                           int final)
{
    chunk_meta_t *m = cdc_arena_calloc(&tx->arena, sizeof(*m));

    m->last = last ? cdc_arena_memdup(&tx->arena, last, strlen(last)) : NULL;
    m->n = n;
    m->final = final;
    tx->seq = (uint64_t)(uintptr_t)m;
}

static flight_t chunk_take(cdc_txn_t *tx)
{
    const chunk_meta_t *m = (const chunk_meta_t *)(uintptr_t)tx->seq;
    flight_t f = {tx, m->last ? cdc_xstrdup(m->last) : NULL, m->n,
                  tx->nchanges, m->final};

    tx->seq = 0;
    return f;
}

static void *emitter_main(void *arg)
{
    emq_t *e = arg;
    bf_t *bf = e->bf;
    flight_t *fl = cdc_xcalloc((size_t)bf->inflight + 1, sizeof(*fl));
    int nfl = 0, rc = 0;
    cdc_err_t err = {0};
    emit_acks_t acks = {0};
    cdc_flight_t *fe = cdc_flight_new(&bf->snk, 1, 0, 0, on_chunk_delivered,
                                      &acks);

    for (;;) {
        flight_t f;
        cdc_txn_t *tx;
        int r = cdc_feed_pop(e->feed, &tx, 1000, &err);

        if (r == CDC_SRC_EOF)
            break;
        if (r != CDC_SRC_TXN)
            continue;
        f = chunk_take(tx);
        if (f.kept) {
            f.tx = NULL; /* the engine's from here, even on failure */
            if (submit(bf, fe, tx, &err)) {
                if (cdc_pipeline_stop) {
                    /* a sink gave up waiting because of the signal: a
                     * stop like the others, the chunk is not recorded */
                    cdc_log_err("backfill", &err);
                    cdc_err_clear(&err);
                    cdc_err_set(&err, CDC_EXIT_TEMPFAIL, 0,
                                "stopped by a signal while the sink waited");
                }
                free(f.last);
                rc = -1;
                break;
            }
        }
        if (nfl == bf->inflight &&
            retire_head(bf, e->j, fe, &acks, fl, &nfl, &err)) {
            rc = -1;
            break;
        }
        fl[nfl++] = f;
        /* record every chunk already acknowledged, oldest first */
        while (nfl && (!fl[0].kept || acks.n)) {
            if (retire_head(bf, e->j, fe, &acks, fl, &nfl, &err)) {
                rc = -1;
                break;
            }
        }
        if (rc)
            break;
    }
    while (!rc && nfl) {
        if (retire_head(bf, e->j, fe, &acks, fl, &nfl, &err))
            rc = -1;
    }
    /* failed: nothing more is recorded */
    if (cdc_flight_count(fe)) {
        cdc_err_t e2 = {0};
        pthread_mutex_lock(&bf->mu);
        cdc_flight_flush(fe, 5000, &e2);
        pthread_mutex_unlock(&bf->mu);
    }
    cdc_flight_free(fe);
    for (int i = 0; i < nfl; i++) {
        cdc_txn_destroy(fl[i].tx);
        free(fl[i].last);
    }
    free(fl);
    if (rc) {
        e->err = err;
        e->failed = 1;
        /* the reader's next push fails; what it queued is dropped with
         * the feed */
        cdc_feed_stop(e->feed);
    }
    return NULL;
}

/* Queue a chunk for the emitter (ownership); -1 when the emitter failed. */
static int emq_push(emq_t *e, cdc_txn_t *tx, const char *last, uint32_t n,
                    int final)
{
    chunk_meta_set(tx, last, n, final);
    if (cdc_feed_push(e->feed, tx))
        return -1;
    /* the reader's next read blocks on the database: wake the emitter */
    cdc_feed_handover(e->feed, NULL, NULL);
    return 0;
}

/* The table's shape, where a resumed run starts, and (a watermarked run)
 * the last key of today: *empty when there is nothing to read. */
static int table_begin(worker_t *w, job_t *j, cdc_table_t **tbl, char **key,
                       char **upto, int *empty, cdc_err_t *err)
{
    bf_t *bf = w->bf;

    if (bf->dops->describe(w->snap, j->db, j->tb, tbl, &j->est, err))
        return -1;
    pthread_mutex_lock(&bf->mu);
    *key = j->tp->key ? cdc_xstrdup(j->tp->key) : NULL;
    j->start_rows = j->tp->rows;
    pthread_mutex_unlock(&bf->mu);
    if (*key)
        CDC_INFO(FAC, "%s: resuming after key %s (%" PRIu64 " rows done "
                      "before)", j->name, *key, j->start_rows);
    /* a watermarked run ends at today's last key (the stream carries
     * what is inserted after); a consistent snapshot needs no bound */
    if (!bf->initial && bf->dops->max_key) {
        if (bf->dops->max_key(w->snap, *tbl, bf->where, upto, err))
            return -1;
        *empty = !*upto; /* nothing to read; rows to come are the stream's */
    }
    return 0;
}

/* Read one chunk after key into tx (*last: its last key, *n rows), inside
 * a low/high watermark window when watermarks are on; *st the stamp of
 * its rows. */
static int read_window(worker_t *w, cdc_table_t *tbl, const char *key,
                       const char *upto, int empty, uint32_t limit,
                       cdc_txn_t *tx, char **last, uint32_t *n,
                       cdc_snap_stamp_t *st, cdc_err_t *err)
{
    bf_t *bf = w->bf;
    cdc_snap_vis_t vis = {0};
    char lw[96], hw[96];
    int wm = bf->watermarks && !empty;

    if (wm) {
        w->wm_seq++;
        snprintf(lw, sizeof(lw), "%s-%d-%" PRIu64 "-lw", bf->prog.run,
                 w->idx, w->wm_seq);
        snprintf(hw, sizeof(hw), "%s-%d-%" PRIu64 "-hw", bf->prog.run,
                 w->idx, w->wm_seq);
        if (bf->dops->watermark(w->snap, bf->sig, lw, err))
            return -1;
    }
    if (!empty && bf->dops->read_chunk(w->snap, tbl, key, upto, bf->where,
                                       limit, tx, last, n, &vis, err)) {
        free(vis.xip);
        return -1;
    }
    if (wm) {
        if (bf->dops->watermark(w->snap, bf->sig, hw, err) ||
            window_collect(w, tbl, lw, hw, &vis, st, err)) {
            free(vis.xip);
            free(*last);
            *last = NULL;
            return -1;
        }
    } else if (bf->initial) {
        *st = bf->initial_stamp;
    } else {
        st->connector = bf->dops->connector;
        st->commit_us = cdc_now_us();
    }
    free(vis.xip);
    return 0;
}

/* Drop the rows changed inside the window (the stream has them), then
 * stamp the rest with st; returns the rows kept. */
static uint32_t keep_and_stamp(worker_t *w, job_t *j, const cdc_table_t *tbl,
                               cdc_txn_t *tx, const cdc_snap_stamp_t *st,
                               cdc_buf_t *kb)
{
    bf_t *bf = w->bf;
    int all = kset_has(&w->changed, "\x1e*");
    uint32_t o = 0;

    for (uint32_t i = 0; i < tx->nchanges; i++) {
        cdc_change_t *ch = &tx->changes[i];
        if (w->changed.n &&
            (all || (key_text(tbl, tbl, ch->after, kb) &&
                     kset_has(&w->changed, kb->p)))) {
            cdc_table_destroy(ch->tbl);
            j->dropped++;
            continue;
        }
        tx->changes[o++] = *ch;
    }
    tx->nchanges = o;
    tx->connector = st->connector;
    tx->server_id = st->server_id;
    tx->commit_us = st->commit_us ? st->commit_us : cdc_now_us();
    snprintf(tx->gtid, sizeof(tx->gtid), "%s", st->gtid);
    tx->file = st->file[0] ? cdc_arena_memdup(&tx->arena, st->file,
                                              strlen(st->file))
                           : NULL;
    for (uint32_t i = 0; i < tx->nchanges; i++) {
        tx->changes[i].pos = st->pos;
        tx->changes[i].row =
            bf->initial ? (uint32_t)(bf->initial_row + i) : i;
    }
    if (bf->initial)
        bf->initial_row += tx->nchanges;
    return o;
}

/* Pace n rows (one budget shared by every worker). */
static void pace(bf_t *bf, uint32_t n)
{
    int64_t wait;

    pthread_mutex_lock(&bf->mu);
    wait = cdc_backfill_pace_us(bf->paced, mono_us() - bf->pace_t0, n,
                                bf->rate);
    bf->paced += n;
    pthread_mutex_unlock(&bf->mu);
    while (wait > 0 && !cdc_pipeline_stop) {
        int64_t sl = wait > 200000 ? 200000 : wait;
        usleep((useconds_t)sl);
        wait -= sl;
    }
}

/* Close the emitter's queue and wait for it; its error wins when rc is 0
 * or err is empty. */
static int emitter_join(emq_t *eq, int rc, cdc_err_t *err)
{
    cdc_feed_end(eq->feed);
    pthread_join(eq->thr, NULL);
    if (eq->failed) {
        if (!rc || !err->msg[0])
            *err = eq->err;
        rc = -1;
    }
    return rc;
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
    eq.feed = cdc_feed_new((size_t)bf->inflight, SIZE_MAX);

    if (bf->rate > 0) {
        int64_t per = bf->rate / (bf->parallel > 0 ? bf->parallel : 1);
        if (per < 1)
            per = 1;
        if ((int64_t)limit > per)
            limit = (uint32_t)per; /* never a burst above one second */
    }
    if (table_begin(w, j, &tbl, &key, &upto, &empty, err))
        goto out;
    if (pthread_create(&eq.thr, NULL, emitter_main, &eq)) {
        cdc_err_set(err, CDC_EXIT_FAIL, 0, "cannot start a thread");
        goto out;
    }
    emitter = 1;

    while (!cdc_pipeline_stop) {
        cdc_txn_t *tx = cdc_txn_new();
        char *last = NULL;
        uint32_t n = 0;
        cdc_snap_stamp_t st = {0};

        if (read_window(w, tbl, key, upto, empty, limit, tx, &last, &n, &st,
                        err)) {
            cdc_txn_destroy(tx);
            goto out;
        }
        keep_and_stamp(w, j, tbl, tx, &st, &kb);
        /* pace, then hand over */
        pace(bf, n);
        if (emq_push(&eq, tx, last, n, n < limit)) {
            free(last);
            goto out;
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
    if (emitter)
        rc = emitter_join(&eq, rc, err);
    cdc_feed_free(eq.feed);
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
        j->state = cdc_pipeline_stop && !j->tp->done ? 3 : 2;
        j->t1 = mono_us();
        pthread_mutex_unlock(&bf->mu);
    }
    goto out;
fail:
    if (err.code != CDC_EXIT_TEMPFAIL || !cdc_pipeline_stop)
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

/* Run the jobs on nw worker threads; progress(bf, arg) is called about
 * every 200 ms until the last worker ended. */
void cdc_bf_run_workers(bf_t *bf, int nw, void (*progress)(bf_t *, void *),
                        void *arg, cdc_err_t *err)
{
    worker_t *ws = cdc_xcalloc((size_t)(nw ? nw : 1), sizeof(*ws));

    bf->alive = nw;
    bf->pace_t0 = mono_us();
    for (int i = 0; i < nw; i++) {
        ws[i].bf = bf;
        ws[i].idx = i;
        if (pthread_create(&ws[i].thr, NULL, worker_main, &ws[i])) {
            cdc_err_set(err, CDC_EXIT_FAIL, 0, "cannot start a thread");
            pthread_mutex_lock(&bf->mu);
            bf->alive -= nw - i;
            pthread_mutex_unlock(&bf->mu);
            nw = i;
            cdc_pipeline_stop = 1;
            break;
        }
    }
    for (;;) {
        int alive;
        pthread_mutex_lock(&bf->mu);
        alive = bf->alive;
        pthread_mutex_unlock(&bf->mu);
        if (!alive)
            break;
        usleep(200000);
        progress(bf, arg);
    }
    for (int i = 0; i < nw; i++)
        pthread_join(ws[i].thr, NULL);
    free(ws);
}
