/* SPDX-License-Identifier: Apache-2.0 */
/*
 * checkpoint.c - atomic checkpoint files.
 *
 * Format (key=value lines, stable and greppable):
 *   version=1
 *   source=mysql
 *   file=mariadb-bin.000003
 *   offset=1234
 *   gtid=0-1-55
 *   lsn=0/16B3748
 *   commit_us=...
 *   updated_us=...
 *   txns=...
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "cdc/buf.h"
#include "cdc/checkpoint.h"

char *cdc_ckpt_path(const char *state_dir, const char *pipeline)
{
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_buf_printf(&b, "%s/%s.ckpt", state_dir, pipeline);
    return b.p;
}

static int mkdirs(const char *dir)
{
    char tmp[4096];
    size_t n = strlen(dir);

    if (n >= sizeof(tmp))
        return -1;
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0750) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0750) && errno != EEXIST)
        return -1;
    return 0;
}

int cdc_ckpt_load(const char *path, cdc_ckpt_t *ck, cdc_err_t *err)
{
    FILE *fp = fopen(path, "r");
    char line[2048];

    memset(ck, 0, sizeof(*ck));
    if (!fp) {
        if (errno == ENOENT)
            return 0;
        cdc_err_set(err, CDC_EXIT_FAIL, 0, "cannot read checkpoint %s: %s",
                    path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), fp)) {
        char *eq = strchr(line, '='), *v;
        size_t n;
        if (!eq)
            continue;
        *eq = '\0';
        v = eq + 1;
        n = strlen(v);
        while (n && (v[n - 1] == '\n' || v[n - 1] == '\r'))
            v[--n] = '\0';
        if (!strcmp(line, "file"))
            snprintf(ck->pos.file, sizeof(ck->pos.file), "%s", v);
        else if (!strcmp(line, "offset"))
            ck->pos.offset = strtoull(v, NULL, 10);
        else if (!strcmp(line, "gtid"))
            snprintf(ck->pos.gtid, sizeof(ck->pos.gtid), "%s", v);
        else if (!strcmp(line, "lsn")) {
            unsigned hi = 0, lo = 0;
            if (sscanf(v, "%X/%X", &hi, &lo) == 2)
                ck->pos.lsn = (uint64_t)hi << 32 | lo;
        } else if (!strcmp(line, "commit_us"))
            ck->commit_us = strtoll(v, NULL, 10);
        else if (!strcmp(line, "updated_us"))
            ck->updated_us = strtoll(v, NULL, 10);
        else if (!strcmp(line, "txns"))
            ck->txns = strtoull(v, NULL, 10);
        else if (!strcmp(line, "source"))
            snprintf(ck->source, sizeof(ck->source), "%s", v);
    }
    fclose(fp);
    return 1;
}

int cdc_ckpt_store(const char *path, const cdc_ckpt_t *ck, cdc_err_t *err)
{
    char tmp[4200], dir[4096];
    const char *slash = strrchr(path, '/');
    cdc_buf_t b = CDC_BUF_INIT;
    int fd, dfd;
    struct timeval tv;

    if (slash) {
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
        if (*dir && mkdirs(dir)) {
            cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                        "cannot create state directory %s: %s", dir,
                        strerror(errno));
            cdc_err_hint(err, "set --state-dir to a writable directory");
            return -1;
        }
    } else
        snprintf(dir, sizeof(dir), ".");
    gettimeofday(&tv, NULL);
    cdc_buf_printf(&b,
                   "version=1\nsource=%s\nfile=%s\noffset=%" PRIu64
                   "\ngtid=%s\nlsn=%X/%X\ncommit_us=%" PRId64
                   "\nupdated_us=%" PRId64 "\ntxns=%" PRIu64 "\n",
                   ck->source, ck->pos.file, ck->pos.offset, ck->pos.gtid,
                   (unsigned)(ck->pos.lsn >> 32), (unsigned)ck->pos.lsn,
                   ck->commit_us,
                   (int64_t)tv.tv_sec * 1000000 + tv.tv_usec, ck->txns);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        goto fail;
    if (write(fd, b.p, b.len) != (ssize_t)b.len || fsync(fd)) {
        close(fd);
        goto fail;
    }
    close(fd);
    if (rename(tmp, path))
        goto fail;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    cdc_buf_free(&b);
    return 0;
fail:
    cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                "cannot write checkpoint %s: %s", path, strerror(errno));
    cdc_err_hint(err, "check free space and permissions of the state "
                      "directory");
    cdc_buf_free(&b);
    return -1;
}

int cdc_pos_parse(const char *s, cdc_pos_t *pos, cdc_err_t *err)
{
    const char *colon = strrchr(s, ':');
    unsigned hi, lo;
    char tail;

    memset(pos, 0, sizeof(*pos));
    if (sscanf(s, "%X/%X%c", &hi, &lo, &tail) == 2) {
        pos->lsn = (uint64_t)hi << 32 | lo;
        return 0;
    }
    /* FILE:POS unless the part before the colon is a server UUID (then it
     * is a MySQL GTID set "uuid:5") */
    if (colon && colon != s && colon[1] && !strchr(s, ',') &&
        strspn(colon + 1, "0123456789") == strlen(colon + 1) &&
        !(colon - s == 36 && strspn(s, "0123456789abcdefABCDEF-") == 36)) {
        snprintf(pos->file, sizeof(pos->file), "%.*s", (int)(colon - s), s);
        pos->offset = strtoull(colon + 1, NULL, 10);
        return 0;
    }
    /* MariaDB GTID state "d-s-n[,d-s-n]" or MySQL GTID set "uuid:1-5" */
    if (strspn(s, "0123456789-,:abcdefABCDEF") == strlen(s) && *s) {
        snprintf(pos->gtid, sizeof(pos->gtid), "%s", s);
        return 0;
    }
    cdc_err_set(err, CDC_EXIT_USAGE, 0, "cannot parse position '%s'", s);
    cdc_err_hint(err, "use FILE:POS (mariadb-bin.000003:4), a GTID state "
                      "(0-1-42) or an LSN (0/16B3748)");
    return -1;
}

const char *cdc_pos_str(const cdc_pos_t *pos)
{
    static __thread char buf[1400];

    if (pos->file[0])
        snprintf(buf, sizeof(buf), "%s:%" PRIu64 "%s%s", pos->file,
                 pos->offset, pos->gtid[0] ? " gtid " : "", pos->gtid);
    else if (pos->lsn)
        snprintf(buf, sizeof(buf), "lsn %X/%X", (unsigned)(pos->lsn >> 32),
                 (unsigned)pos->lsn);
    else if (pos->gtid[0])
        snprintf(buf, sizeof(buf), "gtid %s", pos->gtid);
    else
        snprintf(buf, sizeof(buf), "(start)");
    return buf;
}
