/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backfill.c - `autoglm-cdc backfill`: the command around the backfill
 * engine (cdc/backfill.c): the tables to snapshot (--table, operands or
 * all of the source's), the settings, the lock, the progress file, the
 * mode (consistent first load or watermarked chunks), the sink, then the
 * engine's workers, progress bars or log lines, and the summary.
 * docs/BACKFILL.md has the user's view.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cdc/backfill.h"
#include "cdc/backfill_int.h"
#include "cdc/buf.h"
#include "cdc/checkpoint.h"
#include "cdc/envelope.h"
#include "cdc/log.h"
#include "cdc/metrics.h"
#include "cdc/util.h"

#define FAC "backfill"

/* ---- progress display --------------------------------------------------- */

static void show(bf_t *bf, int final, int *drawn)
{
    int64_t t = cdc_bf_mono_us();
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

/* The display state between progress calls. */
typedef struct display {
    int drawn;        /* lines of progress bars drawn (terminal) */
    int64_t next_log; /* no terminal: next log line, mono µs */
} display_t;

/* Called by the engine about every 200 ms: bars on a terminal, a log line
 * every 5 s otherwise. */
static void progress(bf_t *bf, void *arg)
{
    display_t *d = arg;

    if (bf->tty) {
        show(bf, 0, &d->drawn);
    } else if (cdc_bf_mono_us() >= d->next_log) {
        show(bf, 0, &d->drawn);
        d->next_log = cdc_bf_mono_us() + 5000000;
    }
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

/* The command's state around the engine's bf_t. */
typedef struct bfcmd {
    bf_t bf;
    const cdc_conf_t *conf;
    const char *stype;     /* source.type */
    const char *state;     /* state.dir */
    const char *mode;      /* backfill.mode: auto, initial, incremental */
    const char *tables;    /* the tables given (comma list), "" for all */
    int wm;                /* backfill.watermarks */
    int loaded;            /* a progress file was found */
    int lockfd;
    char *ckpt_path;       /* the stream's checkpoint file */
    char prev_run[40];     /* run id of an interrupted run */
    cdc_conf_t *sink_conf; /* the sink's settings */
} bfcmd_t;

/* The tables given: backfill.tables (--table), then the operands. */
static void given_tables(bfcmd_t *c, int argc, char **argv)
{
    bf_t *bf = &c->bf;

    c->tables = cdc_conf_get(c->conf, "backfill.tables", "");
    for (int i = 0; i < argc; i++) /* extra words: more tables */
        if (argv[i][0]) {
            cdc_buf_t b = CDC_BUF_INIT;
            cdc_buf_printf(&b, "%s%s%s", c->tables, *c->tables ? "," : "",
                           argv[i]);
            free(bf->tables_csv);
            bf->tables_csv = b.p;
            c->tables = bf->tables_csv;
        }
}

/* The source's snapshot driver, the sink and the backfill.* settings;
 * 0 or an exit code. */
static int read_settings(bfcmd_t *c, cdc_err_t *err)
{
    bf_t *bf = &c->bf;
    const cdc_conf_t *conf = c->conf;

    if (!c->stype) {
        cdc_err_set(err, CDC_EXIT_USAGE, 0, "no source given");
        cdc_err_hint(err, "set source.type (mysql or postgres) in the YAML "
                          "file or pass --source");
        return CDC_EXIT_USAGE;
    }
    bf->dops = cdc_snap_find(c->stype);
    if (!bf->dops) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "backfill does not support source '%s'", c->stype);
        cdc_err_hint(err, "backfill reads mysql and postgres sources");
        return CDC_EXIT_CONFIG;
    }
    bf->pipeline = cdc_xstrdup(cdc_conf_pipeline(conf));
    if (cdc_conf_get_int(conf, "backfill.chunk_size", 5000, &bf->chunk,
                         err) ||
        cdc_conf_get_int(conf, "backfill.max_rows_per_sec", 0, &bf->rate,
                         err) ||
        cdc_conf_get_int(conf, "backfill.parallel", 1, &bf->parallel, err) ||
        cdc_conf_get_int(conf, "backfill.watermark_timeout_ms", 60000,
                         &bf->wm_timeout_ms, err) ||
        cdc_conf_get_int(conf, "backfill.inflight_chunks", 4, &bf->inflight,
                         err) ||
        cdc_conf_get_bool(conf, "backfill.watermarks", 1, &c->wm, err))
        return CDC_EXIT_CONFIG;
    if (bf->chunk < 1 || bf->chunk > 1000000 || bf->parallel < 1 ||
        bf->parallel > 64 || bf->rate < 0 || bf->inflight < 1 ||
        bf->inflight > 64) {
        cdc_err_set(err, CDC_EXIT_USAGE, 0,
                    "backfill: chunk size must be 1..1000000, parallel "
                    "1..64, inflight chunks 1..64, max rows/s >= 0");
        return CDC_EXIT_USAGE;
    }
    if (strcmp(c->mode, "auto") && strcmp(c->mode, "initial") &&
        strcmp(c->mode, "incremental")) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "unknown backfill.mode '%s'",
                    c->mode);
        cdc_err_hint(err, "use auto, initial or incremental");
        return CDC_EXIT_CONFIG;
    }
    bf->where = cdc_conf_get(conf, "backfill.where", NULL);
    if (bf->where && !*bf->where)
        bf->where = NULL;
    bf->kops = cdc_sink_find(cdc_conf_get(conf, "sink.type", "stdout"));
    if (!bf->kops) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "unknown sink '%s'",
                    cdc_conf_get(conf, "sink.type", "stdout"));
        cdc_err_hint(err, "available sinks: %s", cdc_sink_names());
        return CDC_EXIT_CONFIG;
    }
    return 0;
}

/* The lock (held: 75) and the progress file of an earlier run; a fresh
 * run id.  0 or an exit code. */
static int lock_and_load(bfcmd_t *c, cdc_err_t *err)
{
    bf_t *bf = &c->bf;

    if (cdc_state_lock(c->state, bf->pipeline, "backfill", &c->lockfd, err))
        return err->code;
    bf->prog_path = cdc_backfill_prog_path(c->state, bf->pipeline);
    c->loaded = cdc_backfill_prog_load(bf->prog_path, &bf->prog, err);
    if (c->loaded < 0)
        return err->code;
    /* a fresh run id per invocation (signal row ids must not repeat); the
     * interrupted run's rows are removed with ours at the end */
    if (bf->prog.run[0] && strcmp(bf->prog.run, "-"))
        snprintf(c->prev_run, sizeof(c->prev_run), "%s", bf->prog.run);
    snprintf(bf->prog.run, sizeof(bf->prog.run), "bf%lx%x",
             (unsigned long)time(NULL), (unsigned)getpid() & 0xffff);
    return 0;
}

/* The jobs: the tables given, or every table of the source; their
 * progress entries and the signal table.  0 or an exit code. */
static int plan_tables(bfcmd_t *c, cdc_err_t *err)
{
    bf_t *bf = &c->bf;
    cdc_buf_t b = CDC_BUF_INIT;
    int rc;

    if (!c->tables || !*c->tables) {
        char *all = NULL;
        cdc_snap_t *s0 = bf->dops->open(c->conf, 0, err);
        if (!s0 || bf->dops->list_tables(s0, c->conf, &all, err)) {
            if (s0)
                bf->dops->close(s0);
            return err->code ? err->code : CDC_EXIT_FAIL;
        }
        bf->dops->close(s0);
        if (!*all) {
            free(all);
            cdc_err_set(err, CDC_EXIT_USAGE, 0, "no tables to backfill");
            cdc_err_hint(err, "pass --table db.table (repeatable)");
            return CDC_EXIT_USAGE;
        }
        rc = add_jobs(bf, all, err);
        free(all);
    } else {
        rc = add_jobs(bf, c->tables, err);
    }
    if (rc)
        return err->code;
    for (int i = 0; i < bf->njobs; i++)
        cdc_buf_printf(&b, "%s%s", i ? "," : "", bf->jobs[i].name);
    free(bf->tables_csv);
    bf->tables_csv = b.p;
    c->tables = NULL; /* may have pointed into the old list */
    for (int i = 0; i < bf->njobs; i++) /* create first: may realloc */
        cdc_backfill_prog_table(&bf->prog, bf->jobs[i].name);
    for (int i = 0; i < bf->njobs; i++)
        bf->jobs[i].tp = cdc_backfill_prog_table(&bf->prog, bf->jobs[i].name);
    {
        /* the signal table: backfill.signal_table or <db of the first
         * table>.autoglm_cdc_signal */
        const char *sig = cdc_conf_get(c->conf, "backfill.signal_table",
                                       NULL);
        if (sig && *sig)
            snprintf(bf->sig, sizeof(bf->sig), "%s", sig);
        else
            snprintf(bf->sig, sizeof(bf->sig), "%s.autoglm_cdc_signal",
                     bf->jobs[0].db);
    }
    return 0;
}

/* A consistent first load (no stream checkpoint yet, nothing resumed, no
 * daemon) or watermarked chunks beside the stream.  0 or an exit code. */
static int choose_mode(bfcmd_t *c, cdc_err_t *err)
{
    bf_t *bf = &c->bf;
    struct stat stt;
    int have_ckpt, resumed, daemon;
    long dpid = 0;
    char durl[300];

    c->ckpt_path = cdc_ckpt_path(c->state, bf->pipeline);
    have_ckpt = stat(c->ckpt_path, &stt) == 0;
    resumed = c->loaded && bf->prog.n;
    /* a daemon of this pipeline runs but has not checkpointed yet (a cron
     * backfill right after its start): a first load would store the
     * stream's checkpoint under its feet and load twice */
    daemon = cdc_daemon_running(c->state, bf->pipeline, &dpid, durl,
                                sizeof(durl));
    if (daemon && !strcmp(c->mode, "initial")) {
        cdc_err_set(err, CDC_EXIT_TEMPFAIL, 0, "the daemon of pipeline %s "
                    "runs (pid %ld): backfill.mode=initial would replace "
                    "its starting point", bf->pipeline, dpid);
        cdc_err_hint(err, "stop the daemon for a first load, or use "
                     "backfill.mode=auto or incremental beside it");
        return CDC_EXIT_TEMPFAIL;
    }
    if (!strcmp(c->mode, "initial") ||
        (!strcmp(c->mode, "auto") && !have_ckpt && !resumed && !daemon))
        bf->initial = 1;
    if (daemon && !have_ckpt && !resumed && !strcmp(c->mode, "auto"))
        CDC_INFO(FAC, "the daemon of pipeline %s runs (pid %ld%s%s) and has "
                 "no checkpoint yet: backfilling incrementally with "
                 "watermarks beside it instead of a first load",
                 bf->pipeline, dpid, *durl ? ", " : "", durl);
    if (bf->initial && have_ckpt)
        CDC_WARN(FAC, "the stream checkpoint %s exists; the consistent "
                      "first load does not replace it",
                 c->ckpt_path);
    bf->watermarks = !bf->initial && c->wm;
    if (bf->watermarks) {
        bf->sops = cdc_source_find(c->stype);
        if (!bf->sops || !bf->dops->window_conf) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                        "this build has no '%s' streaming source for the "
                        "watermark window", c->stype);
            cdc_err_hint(err, "set backfill.watermarks=false (no stream "
                              "running) or build with the source");
            return CDC_EXIT_CONFIG;
        }
    }
    snprintf(bf->prog.mode, sizeof(bf->prog.mode), "%s",
             bf->initial ? "initial" : "incremental");
    return 0;
}

/* The sink, working as pipeline <pipeline>.backfill with the settings it
 * wants for a bulk load.  0 or an exit code. */
static int open_sink(bfcmd_t *c, cdc_err_t *err)
{
    bf_t *bf = &c->bf;
    const cdc_conf_t *conf = c->conf;

    c->sink_conf = cdc_bf_conf_copy(conf);
    {
        /* the sink works as pipeline <pipeline>.backfill: sinks that keep
         * a position (the wide sinks' offsets row) keep the backfill's in
         * a row of its own and never move the stream's; the source id
         * stays the stream's (application_id defaults to pipeline.name) */
        cdc_buf_t b = CDC_BUF_INIT;
        cdc_conf_set(c->sink_conf, "application_id",
                     cdc_conf_get(conf, "application_id", bf->pipeline),
                     "backfill");
        cdc_buf_printf(&b, "%s.backfill", bf->pipeline);
        cdc_conf_set(c->sink_conf, "pipeline.name", b.p, "backfill");
        cdc_buf_free(&b);
    }
    /* what the sink wants for a bulk load (Kafka: bigger batches, a
     * cheaper compression), each only where not configured */
    if (bf->kops->bulk_hint && bf->kops->bulk_hint(conf, c->sink_conf, err))
        return CDC_EXIT_CONFIG;
    bf->snk = bf->kops->create(c->sink_conf, err);
    if (!bf->snk)
        return err->code ? err->code : CDC_EXIT_UNAVAILABLE;
    if (!bf->snk->ops)
        bf->snk->ops = bf->kops;
    return 0;
}

/* The stream's checkpoint at the first load's snapshot, unless one
 * exists.  0 or -1 (err). */
static int store_first_checkpoint(bfcmd_t *c, const char *postext,
                                  cdc_err_t *err)
{
    bf_t *bf = &c->bf;
    struct stat stt;
    cdc_ckpt_t ck;

    if (stat(c->ckpt_path, &stt) == 0)
        return 0;
    memset(&ck, 0, sizeof(ck));
    snprintf(ck.pos.file, sizeof(ck.pos.file), "%s", bf->initial_stamp.file);
    if (bf->initial_stamp.file[0]) {
        ck.pos.offset = bf->initial_stamp.pos;
        snprintf(ck.pos.gtid, sizeof(ck.pos.gtid), "%s", postext);
    } else {
        ck.pos.lsn = bf->initial_stamp.pos;
    }
    ck.commit_us = bf->initial_stamp.commit_us;
    snprintf(ck.source, sizeof(ck.source), "%s", c->stype);
    if (cdc_ckpt_store(c->ckpt_path, &ck, err))
        return -1;
    CDC_INFO(FAC, "consistent first load at %s; stored as the stream "
                  "checkpoint %s",
             cdc_pos_str(&ck.pos), c->ckpt_path);
    return 0;
}

/* The first load's consistent snapshot; where the source cannot give one
 * here, watermarked chunks instead.  0 or an exit code. */
static int begin_first_load(bfcmd_t *c, cdc_err_t *err)
{
    bf_t *bf = &c->bf;
    char postext[1024] = "";
    int r;

    bf->initial_snap = bf->dops->open(c->conf, 0, err);
    if (!bf->initial_snap)
        return err->code ? err->code : CDC_EXIT_UNAVAILABLE;
    r = bf->dops->begin_consistent(bf->initial_snap, bf->tables_csv,
                                   &bf->initial_stamp, postext,
                                   sizeof(postext), err);
    if (r < 0)
        return err->code ? err->code : CDC_EXIT_FAIL;
    if (r == 1) {
        CDC_WARN(FAC, "consistent first load not possible (%s); using "
                      "watermarked chunks", err->msg);
        cdc_err_clear(err);
        bf->dops->close(bf->initial_snap);
        bf->initial_snap = NULL;
        bf->initial = 0;
        bf->watermarks = c->wm;
        bf->sops = cdc_source_find(c->stype);
        snprintf(bf->prog.mode, sizeof(bf->prog.mode), "incremental");
        return 0;
    }
    if (store_first_checkpoint(c, postext, err))
        return err->code ? err->code : CDC_EXIT_FAIL;
    snprintf(bf->initial_stamp.gtid, sizeof(bf->initial_stamp.gtid),
             "%.127s", strlen(postext) < 128 ? postext : "");
    if (bf->parallel > 1)
        CDC_INFO(FAC, "consistent first load reads one snapshot on one "
                      "connection: parallel %" PRId64 " ignored",
                 bf->parallel);
    bf->parallel = 1;
    return 0;
}

/* The signal table for the watermarks, created when missing.  0 or an
 * exit code. */
static int init_signal(bfcmd_t *c, cdc_err_t *err)
{
    bf_t *bf = &c->bf;
    cdc_snap_t *s0 = bf->dops->open(c->conf, 0, err);

    if (!s0 || bf->dops->signal_init(s0, bf->sig, err)) {
        if (s0)
            bf->dops->close(s0);
        return err->code ? err->code : CDC_EXIT_FAIL;
    }
    bf->dops->close(s0);
    return 0;
}

/* Store the progress file, and order the jobs: tables finished by an
 * interrupted run stay finished, the others go first, in the given
 * order.  *nw: the worker threads to start.  0 or an exit code. */
static int order_jobs(bfcmd_t *c, int *nw, cdc_err_t *err)
{
    bf_t *bf = &c->bf;
    job_t *sorted;
    int k = 0;

    pthread_mutex_lock(&bf->mu);
    if (cdc_bf_save_progress(bf, err)) {
        pthread_mutex_unlock(&bf->mu);
        return err->code ? err->code : CDC_EXIT_FAIL;
    }
    sorted = cdc_xcalloc((size_t)bf->njobs, sizeof(*sorted));
    for (int i = 0; i < bf->njobs; i++)
        if (!bf->jobs[i].tp->done)
            sorted[k++] = bf->jobs[i];
    bf->njobs_active = k;
    for (int i = 0; i < bf->njobs; i++)
        if (bf->jobs[i].tp->done) {
            bf->jobs[i].state = 2;
            sorted[k++] = bf->jobs[i];
        }
    free(bf->jobs);
    bf->jobs = sorted;
    *nw = (int)(bf->parallel < bf->njobs_active ? bf->parallel
                                                : bf->njobs_active);
    bf->next_job = 0;
    pthread_mutex_unlock(&bf->mu);
    return 0;
}

/* The summary line and the exit code: the first failure, 75 when
 * interrupted (resumable), 0 when every table is done - then the progress
 * file and this run's signal rows go. */
static int summarize(bfcmd_t *c, cdc_err_t *err)
{
    bf_t *bf = &c->bf;
    uint64_t rows = 0, dropped = 0;
    int done = 0;
    double secs = (double)(cdc_bf_mono_us() - bf->t0) / 1e6;
    cdc_err_t e2 = {0};

    for (int i = 0; i < bf->njobs; i++) {
        rows += bf->jobs[i].rows;
        dropped += bf->jobs[i].dropped;
        done += bf->jobs[i].tp->done;
    }
    CDC_INFO(FAC, "summary: %d of %d tables done, %" PRIu64 " rows in "
                  "%.1f s (%.0f rows/s), %" PRIu64 " rows left to the "
                  "stream by the watermark rule",
             done, bf->njobs, rows, secs, secs > 0 ? rows / secs : 0.0,
             dropped);
    if (bf->failed) {
        *err = bf->err;
        return err->code ? err->code : CDC_EXIT_FAIL;
    }
    if (done < bf->njobs) {
        cdc_err_set(err, CDC_EXIT_TEMPFAIL, 0,
                    "backfill interrupted; %d of %d tables done", done,
                    bf->njobs);
        cdc_err_hint(err, "run the same command again: it resumes after "
                          "the last finished chunk");
        return CDC_EXIT_TEMPFAIL;
    }
    /* complete: the next run starts a fresh backfill */
    if (unlink(bf->prog_path) && errno != ENOENT)
        CDC_WARN(FAC, "cannot remove %s: %s", bf->prog_path,
                 strerror(errno));
    if (bf->watermarks) {
        cdc_snap_t *s0 = bf->dops->open(c->conf, 0, &e2);
        if (s0) {
            bf->dops->signal_cleanup(s0, bf->sig, bf->prog.run, &e2);
            if (c->prev_run[0])
                bf->dops->signal_cleanup(s0, bf->sig, c->prev_run, &e2);
            bf->dops->close(s0);
        }
    }
    return CDC_EXIT_OK;
}

/* Run the planned jobs with the progress display; the exit code. */
static int run_jobs(bfcmd_t *c, int nw, cdc_err_t *err)
{
    bf_t *bf = &c->bf;
    display_t disp = {0, 0};

    CDC_INFO(FAC, "pipeline %s: %s backfill of %s (chunk %" PRId64
                  ", max %" PRId64 " rows/s, %d worker%s)%s",
             bf->pipeline, bf->prog.mode, bf->tables_csv, bf->chunk,
             bf->rate, nw, nw == 1 ? "" : "s",
             bf->watermarks ? ", watermarks on" : "");
    bf->tty = isatty(2) && cdc_log_get_level() >= CDC_LOG_INFO;
    disp.next_log = cdc_bf_mono_us() + 5000000;
    cdc_bf_run_workers(bf, nw, progress, &disp, err);
    show(bf, 1, &disp.drawn);
    if (bf->initial && bf->initial_snap) {
        cdc_err_t e2 = {0};
        bf->dops->end_consistent(bf->initial_snap, &e2);
    }
    return summarize(c, err);
}

static void release(bfcmd_t *c)
{
    bf_t *bf = &c->bf;

    if (bf->initial_snap)
        bf->dops->close(bf->initial_snap);
    if (bf->snk)
        bf->kops->destroy(bf->snk);
    cdc_conf_destroy(c->sink_conf);
    for (int i = 0; i < bf->njobs; i++)
        free(bf->jobs[i].name);
    free(bf->jobs);
    cdc_backfill_prog_free(&bf->prog);
    free(bf->prog_path);
    free(bf->pipeline);
    free(bf->tables_csv);
    free(c->ckpt_path);
    if (c->lockfd >= 0)
        close(c->lockfd);
    pthread_mutex_destroy(&bf->mu);
}

/*
 * 1. the settings, 2. the lock and the progress file, 3. the tables,
 * 4. the mode, 5. the sink, 6. a first load's snapshot or the signal
 * table, 7. the workers (the engine, cdc/backfill.c) and the summary.
 */
int cdc_backfill_cli(const cdc_conf_t *conf, int argc, char **argv,
                     cdc_err_t *err)
{
    bfcmd_t c;
    int rc, nw = 0;

    memset(&c, 0, sizeof(c));
    pthread_mutex_init(&c.bf.mu, NULL);
    c.bf.conf = c.conf = conf;
    c.bf.t0 = cdc_bf_mono_us();
    c.stype = cdc_conf_get(conf, "source.type", NULL);
    c.state = cdc_conf_get(conf, "state.dir", "state");
    c.mode = cdc_conf_get(conf, "backfill.mode", "auto");
    c.wm = 1;
    c.lockfd = -1;
    given_tables(&c, argc, argv);
    rc = read_settings(&c, err);
    if (!rc)
        rc = lock_and_load(&c, err);
    if (!rc)
        rc = plan_tables(&c, err);
    if (!rc)
        rc = choose_mode(&c, err);
    if (!rc) {
        cdc_bf_catch_signals();
        rc = open_sink(&c, err);
    }
    if (!rc && c.bf.initial)
        rc = begin_first_load(&c, err);
    if (!rc && c.bf.watermarks)
        rc = init_signal(&c, err);
    if (!rc)
        rc = order_jobs(&c, &nw, err);
    if (!rc)
        rc = run_jobs(&c, nw, err);
    release(&c);
    return rc;
}
