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

extern const cdc_snap_ops_t cdc_snap_mysql_ops __attribute__((weak));
extern const cdc_snap_ops_t cdc_snap_postgres_ops __attribute__((weak));

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

int cdc_backfill_cli(const cdc_conf_t *conf, int argc, char **argv,
                     cdc_err_t *err)
{
    bf_t bf;
    const char *stype = cdc_conf_get(conf, "source.type", NULL);
    const char *state = cdc_conf_get(conf, "state.dir", "state");
    const char *mode = cdc_conf_get(conf, "backfill.mode", "auto");
    const char *tables = cdc_conf_get(conf, "backfill.tables", "");
    int lockfd = -1, rc = CDC_EXIT_OK, loaded, wm = 1;
    display_t disp = {0, 0};
    int nw = 0;
    char *ckpt_path = NULL;
    char prev_run[40] = "";
    cdc_conf_t *sink_conf = NULL;

    memset(&bf, 0, sizeof(bf));
    pthread_mutex_init(&bf.mu, NULL);
    bf.conf = conf;
    bf.t0 = cdc_bf_mono_us();
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

    cdc_bf_catch_signals();

    /* bulk-friendly producer defaults for a Kafka sink (each one only
     * when not configured): bigger batches, cheaper compression level */
    sink_conf = cdc_bf_conf_copy(conf);
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
    if (cdc_bf_save_progress(&bf, err)) {
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
    disp.next_log = cdc_bf_mono_us() + 5000000;
    cdc_bf_run_workers(&bf, nw, progress, &disp, err);
    show(&bf, 1, &disp.drawn);

    if (bf.initial && bf.initial_snap) {
        cdc_err_t e2 = {0};
        bf.dops->end_consistent(bf.initial_snap, &e2);
    }
    /* summary */
    {
        uint64_t rows = 0, dropped = 0;
        int done = 0;
        double secs = (double)(cdc_bf_mono_us() - bf.t0) / 1e6;
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
