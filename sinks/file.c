/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file.c - the stdout and file sinks: JSON lines, one envelope per line;
 * with format=xml one XML document per line (sinks/xml.h,
 * cdc_xml_envelope_line: the declaration and a value's newlines do not
 * break the line).
 *
 * A PATH ending in ".zst" is written as a zstd stream (level 3).  Both
 * sinks are synchronous: write() hands the lines to stdio (and zstd) and
 * the txn counts as delivered once the data is flushed; poll() flushes at
 * most every 200 ms, flush() flushes and fsyncs.  So that a checkpoint
 * never runs ahead of the file, txns stay pending until the flush that
 * covers them.  A run killed mid-write (kill -9) can leave a torn last
 * line, never acknowledged; the next run cuts it off before appending, so
 * its first envelope does not end up glued to the fragment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <zstd.h>

#include "cdc/util.h"
#include "cdc/conf.h"
#include "cdc/envelope.h"
#include "cdc/log.h"
#include "cdc/plugin.h"
#include "sinks/xml.h"

extern const cdc_sink_ops_t cdc_sink_stdout_ops;
extern const cdc_sink_ops_t cdc_sink_file_ops;

typedef struct file_sink {
    cdc_sink_t base;
    FILE *fp;
    int own_fp;
    char *path;
    ZSTD_CCtx *zc;
    cdc_buf_t line;  /* envelopes of the current write() */
    cdc_buf_t zout;  /* compressed bytes */
    cdc_env_opts_t env;
    cdc_dbz_txs_t txs; /* debezium: transaction blocks across fragments */
    cdc_xml_opts_t *xo; /* format=xml */
    char *app;
    cdc_txn_t **waiting; /* written, not yet flushed */
    size_t nwaiting, capwaiting;
    int64_t last_flush_us;
    size_t unflushed; /* bytes written since the last flush */
} file_sink_t;

static int env_opts(const cdc_conf_t *conf, file_sink_t *fs, cdc_err_t *err)
{
    const char *fmt = cdc_conf_get(conf, "format", "autoglm");
    if (!strcmp(fmt, "xml")) {
        fs->xo = cdc_xml_opts_new(conf, err);
        if (!fs->xo)
            return -1;
    } else if (cdc_format_parse(fmt, &fs->env.format)) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "unknown format '%s'", fmt);
        cdc_err_hint(err, "use --format autoglm, debezium or xml");
        return -1;
    }
    if (fs->env.format == CDC_FMT_DEBEZIUM &&
        cdc_dbz_opts_conf(&fs->env, conf, err) < 0)
        return -1;
    fs->app = cdc_xstrdup(cdc_conf_get(
        conf, "application_id",
        cdc_conf_get(conf, "pipeline.name",
                     cdc_conf_get(conf, "source.type", "autoglm-cdc"))));
    fs->env.application_id = fs->app;
    if (fs->env.format == CDC_FMT_DEBEZIUM && fs->env.txmeta)
        fs->env.txs = &fs->txs;
    return 0;
}

/* Cut a plain JSON-lines file back to its last complete line (see the
 * header).  0, or -1 with errno. */
static int drop_torn_line(FILE *fp, const char *path)
{
    int fd = fileno(fp);
    off_t end = lseek(fd, 0, SEEK_END), at = end;
    char buf[4096];

    if (end <= 0)
        return end < 0 ? -1 : 0;
    while (at > 0) {
        size_t n = at < (off_t)sizeof(buf) ? (size_t)at : sizeof(buf);
        ssize_t got = pread(fd, buf, n, at - (off_t)n);
        if (got != (ssize_t)n)
            return -1;
        for (size_t i = n; i > 0; i--)
            if (buf[i - 1] == '\n') {
                off_t keep = at - (off_t)n + (off_t)i;
                if (keep == end)
                    return 0;
                CDC_WARN("file", "%s ends in a torn line (%lld bytes) left by "
                         "an interrupted run, never acknowledged: cut off",
                         path, (long long)(end - keep));
                return ftruncate(fd, keep);
            }
        at -= (off_t)n;
    }
    CDC_WARN("file", "%s holds only a torn line (%lld bytes) left by an "
             "interrupted run, never acknowledged: cut off", path,
             (long long)end);
    return ftruncate(fd, 0);
}

static cdc_sink_t *open_common(const cdc_conf_t *conf, FILE *fp,
                               const char *path, cdc_err_t *err)
{
    file_sink_t *fs = cdc_xcalloc(1, sizeof(*fs));

    if (env_opts(conf, fs, err)) {
        cdc_xml_opts_free(fs->xo);
        free(fs);
        return NULL;
    }
    fs->fp = fp;
    if (path) {
        size_t n = strlen(path);
        fs->path = cdc_xstrdup(path);
        fs->fp = fopen(path, "a+b"); /* read: drop_torn_line */
        if (!fs->fp) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "cannot open output %s: %s",
                        path, strerror(errno));
            cdc_err_hint(err, "check the directory exists and is writable");
            free(fs->path);
            free(fs->app);
            cdc_xml_opts_free(fs->xo);
            free(fs);
            return NULL;
        }
        fs->own_fp = 1;
        if (n > 4 && !strcmp(path + n - 4, ".zst")) {
            fs->zc = ZSTD_createCCtx();
            ZSTD_CCtx_setParameter(fs->zc, ZSTD_c_compressionLevel, 3);
        } else if (drop_torn_line(fs->fp, path)) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "cannot repair the torn "
                        "last line of %s: %s", path, strerror(errno));
            fclose(fs->fp);
            free(fs->path);
            free(fs->app);
            cdc_xml_opts_free(fs->xo);
            free(fs);
            return NULL;
        }
    }
    return &fs->base;
}

static cdc_sink_t *stdout_create(const cdc_conf_t *conf, cdc_err_t *err)
{
    cdc_sink_t *s = open_common(conf, stdout, NULL, err);
    if (s)
        s->ops = &cdc_sink_stdout_ops;
    return s;
}

static cdc_sink_t *file_create(const cdc_conf_t *conf, cdc_err_t *err)
{
    const char *path = cdc_conf_get(conf, "output", NULL);
    cdc_sink_t *s;

    if (!path || !*path) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "the file sink needs a path");
        cdc_err_hint(err, "add --output PATH (PATH ending in .zst is "
                          "compressed)");
        return NULL;
    }
    s = open_common(conf, NULL, path, err);
    if (s)
        s->ops = &cdc_sink_file_ops;
    return s;
}

static int zwrite(file_sink_t *fs, const void *p, size_t n,
                  ZSTD_EndDirective mode, cdc_err_t *err)
{
    ZSTD_inBuffer in = {p, n, 0};
    size_t outcap = ZSTD_CStreamOutSize();
    int done = 0;

    while (!done) {
        size_t rem;
        if (fs->zout.cap < outcap + 1)
            cdc_buf_grow(&fs->zout, outcap + 1);
        ZSTD_outBuffer out = {fs->zout.p, outcap, 0};
        rem = ZSTD_compressStream2(fs->zc, &out, &in, mode);
        if (ZSTD_isError(rem))
            return cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                               "zstd: %s", ZSTD_getErrorName(rem));
        if (out.pos && fwrite(fs->zout.p, 1, out.pos, fs->fp) != out.pos)
            goto ioerr;
        done = mode == ZSTD_e_continue ? in.pos == in.size : rem == 0;
    }
    return 0;
ioerr:
    cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL, "write %s: %s",
                fs->path ? fs->path : "stdout", strerror(errno));
    return -1;
}

static int fs_write(cdc_sink_t *snk, cdc_txn_t *tx, cdc_err_t *err)
{
    file_sink_t *fs = (file_sink_t *)snk;

    cdc_buf_reset(&fs->line);
    if (fs->env.txs)
        cdc_dbz_txs_begin(fs->env.txs, tx);
    for (uint32_t i = 0; i < tx->nchanges; i++) {
        if (fs->xo)
            cdc_xml_envelope_line(&fs->line, fs->xo, fs->app, tx,
                                  &tx->changes[i]);
        else
            cdc_envelope_write(&fs->line, &fs->env, tx, &tx->changes[i]);
        cdc_buf_putc(&fs->line, '\n');
    }
    if (fs->env.txs)
        cdc_dbz_txs_end(fs->env.txs, tx);
    if (fs->line.len) {
        if (fs->zc) {
            if (zwrite(fs, fs->line.p, fs->line.len, ZSTD_e_continue, err))
                return -1;
        } else if (fwrite(fs->line.p, 1, fs->line.len, fs->fp) !=
                   fs->line.len) {
            return cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                               "write %s: %s",
                               fs->path ? fs->path : "stdout",
                               strerror(errno));
        }
    }
    tx->pending = 1;
    fs->unflushed += fs->line.len;
    if (fs->nwaiting == fs->capwaiting) {
        fs->capwaiting = fs->capwaiting ? fs->capwaiting * 2 : 64;
        fs->waiting = cdc_xrealloc(fs->waiting,
                                   fs->capwaiting * sizeof(*fs->waiting));
    }
    fs->waiting[fs->nwaiting++] = tx;
    return 0;
}

static int do_flush(file_sink_t *fs, int sync, cdc_err_t *err)
{
    if (fs->zc && fs->nwaiting &&
        zwrite(fs, NULL, 0, ZSTD_e_flush, err))
        return -1;
    if (fflush(fs->fp) != 0)
        return cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                           "write %s: %s", fs->path ? fs->path : "stdout",
                           strerror(errno));
    if (sync && fs->own_fp)
        fsync(fileno(fs->fp));
    for (size_t i = 0; i < fs->nwaiting; i++)
        fs->waiting[i]->pending = 0;
    fs->nwaiting = 0;
    fs->unflushed = 0;
    fs->last_flush_us = cdc_now_us();
    return 0;
}

static int fs_poll(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    file_sink_t *fs = (file_sink_t *)snk;

    (void)timeout_ms;
    /* flush (and so release the txns) every 1 MiB, 4096 txns or 200 ms;
     * fsync only on flush(): a crash may lose what the OS had not written
     * yet, but the checkpoint is stored after flush() only */
    if (fs->nwaiting &&
        (fs->unflushed >= (1u << 20) || fs->nwaiting >= 4096 ||
         cdc_now_us() - fs->last_flush_us > 200000))
        return do_flush(fs, 0, err);
    return 0;
}

static int fs_flush(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    (void)timeout_ms;
    return do_flush((file_sink_t *)snk, 1, err);
}

static void fs_destroy(cdc_sink_t *snk)
{
    file_sink_t *fs = (file_sink_t *)snk;
    cdc_err_t err;

    if (!fs)
        return;
    if (fs->zc) {
        if (zwrite(fs, NULL, 0, ZSTD_e_end, &err))
            cdc_log_err("file", &err);
        ZSTD_freeCCtx(fs->zc);
    }
    if (fs->own_fp)
        fclose(fs->fp);
    else
        fflush(fs->fp);
    cdc_buf_free(&fs->line);
    cdc_buf_free(&fs->zout);
    cdc_dbz_txs_free(&fs->txs);
    free(fs->waiting);
    free(fs->path);
    free(fs->app);
    cdc_xml_opts_free(fs->xo);
    free(fs);
}

const cdc_sink_ops_t cdc_sink_stdout_ops = {
    .name = "stdout",
    .abi = CDC_PLUGIN_ABI,
    .create = stdout_create,
    .write = fs_write,
    .poll = fs_poll,
    .flush = fs_flush,
    .destroy = fs_destroy,
};

const cdc_sink_ops_t cdc_sink_file_ops = {
    .name = "file",
    .abi = CDC_PLUGIN_ABI,
    .create = file_create,
    .write = fs_write,
    .poll = fs_poll,
    .flush = fs_flush,
    .destroy = fs_destroy,
};
