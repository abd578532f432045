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
 *
 * Every key appears exactly once and every line ends with a newline; a
 * file that breaks this (empty, cut short, garbage) is refused, never read
 * as "no checkpoint".  <state.dir>/<pipeline>.lock holds a POSIX write
 * lock while `run` is active, so two instances never share a checkpoint.
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
#include "cdc/plugin.h"
#include "cdc/checkpoint.h"
#include "cdc/log.h"

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

/* The keys of a version=1 file, each exactly once, in any order. */
static const char *const ckpt_keys[] = {"version", "source", "file",
                                        "offset", "gtid", "lsn",
                                        "commit_us", "updated_us", "txns"};
#define NKEYS (sizeof(ckpt_keys) / sizeof(*ckpt_keys))

static int all_of(const char *v, const char *set)
{
    return strspn(v, set) == strlen(v);
}

static int parse_u64(const char *v, uint64_t *out)
{
    char *end;
    if (!*v || !all_of(v, "0123456789") || strlen(v) > 20)
        return -1;
    errno = 0;
    *out = strtoull(v, &end, 10);
    return errno || *end ? -1 : 0;
}

static int parse_i64(const char *v, int64_t *out)
{
    char *end;
    if (!*v || !all_of(v[0] == '-' ? v + 1 : v, "0123456789") ||
        !v[v[0] == '-'])
        return -1;
    errno = 0;
    *out = strtoll(v, &end, 10);
    return errno || *end ? -1 : 0;
}

/* "HI/LO" in upper- or lower-case hex, each part 1..8 digits. */
static int parse_lsn(const char *v, uint64_t *out)
{
    const char *slash = strchr(v, '/');
    size_t hn = slash ? (size_t)(slash - v) : 0, ln;
    const char *hex = "0123456789abcdefABCDEF";

    if (!slash || hn < 1 || hn > 8 || strspn(v, hex) != hn)
        return -1;
    ln = strlen(slash + 1);
    if (ln < 1 || ln > 8 || !all_of(slash + 1, hex))
        return -1;
    *out = (uint64_t)strtoull(v, NULL, 16) << 32 |
           strtoull(slash + 1, NULL, 16);
    return 0;
}

/* One "key=value" line into ck; a message on a bad line. */
static const char *ckpt_field(cdc_ckpt_t *ck, const char *k, const char *v)
{
    uint64_t u;

    if (!strcmp(k, "version"))
        return strcmp(v, "1") ? "unsupported version (this build reads 1)"
                              : NULL;
    if (!strcmp(k, "source")) {
        if (strlen(v) >= sizeof(ck->source) ||
            !all_of(v, "abcdefghijklmnopqrstuvwxyz0123456789_-"))
            return "bad source name";
        snprintf(ck->source, sizeof(ck->source), "%s", v);
    } else if (!strcmp(k, "file")) {
        if (strlen(v) >= sizeof(ck->pos.file) || strchr(v, '/'))
            return "bad binlog file name";
        for (const char *p = v; *p; p++)
            if ((unsigned char)*p < 0x21 || (unsigned char)*p == 0x7f)
                return "bad binlog file name";
        snprintf(ck->pos.file, sizeof(ck->pos.file), "%s", v);
    } else if (!strcmp(k, "offset")) {
        if (parse_u64(v, &ck->pos.offset))
            return "offset is not a number";
    } else if (!strcmp(k, "gtid")) {
        /* MariaDB d-s-n lists, MySQL uuid:1-5 sets, tagged (uuid:tag:1) */
        if (strlen(v) >= sizeof(ck->pos.gtid) ||
            !all_of(v, "0123456789abcdefghijklmnopqrstuvwxyz"
                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ_-,:"))
            return "bad GTID";
        snprintf(ck->pos.gtid, sizeof(ck->pos.gtid), "%s", v);
    } else if (!strcmp(k, "lsn")) {
        if (parse_lsn(v, &ck->pos.lsn))
            return "bad LSN";
    } else if (!strcmp(k, "commit_us")) {
        if (parse_i64(v, &ck->commit_us))
            return "commit_us is not a number";
    } else if (!strcmp(k, "updated_us")) {
        if (parse_i64(v, &ck->updated_us))
            return "updated_us is not a number";
    } else if (!strcmp(k, "txns")) {
        if (parse_u64(v, &u))
            return "txns is not a number";
        ck->txns = u;
    }
    return NULL;
}

/* Refuse a file that is not a whole checkpoint: a torn, truncated,
 * emptied or foreign file is never read as "no checkpoint". */
static int ckpt_bad(cdc_err_t *err, const char *path, unsigned line,
                    const char *why)
{
    if (line)
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "checkpoint %s is damaged (line %u: %s)", path, line,
                    why);
    else
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "checkpoint %s is damaged (%s)", path, why);
    cdc_err_detail(err, "the position to resume from cannot be read, so "
                        "the pipeline does not start rather than guess one");
    cdc_err_hint(err, "restore the file from a backup, or set the position "
                      "explicitly (autoglm-cdc offsets set POSITION) after "
                      "checking what the sink already holds");
    return -1;
}

#define CKPT_MAX 8192

int cdc_ckpt_load(const char *path, cdc_ckpt_t *ck, cdc_err_t *err)
{
    FILE *fp = fopen(path, "r");
    char buf[CKPT_MAX + 1];
    size_t n;
    int seen[NKEYS] = {0};
    unsigned lineno = 0;

    memset(ck, 0, sizeof(*ck));
    if (!fp) {
        if (errno == ENOENT)
            return 0;
        cdc_err_set(err, CDC_EXIT_FAIL, 0, "cannot read checkpoint %s: %s",
                    path, strerror(errno));
        return -1;
    }
    n = fread(buf, 1, sizeof(buf), fp);
    if (ferror(fp)) {
        cdc_err_set(err, CDC_EXIT_FAIL, 0, "cannot read checkpoint %s: %s",
                    path, strerror(errno));
        fclose(fp);
        return -1;
    }
    fclose(fp);
    if (n == 0)
        return ckpt_bad(err, path, 0, "the file is empty");
    if (n > CKPT_MAX)
        return ckpt_bad(err, path, 0, "larger than any checkpoint");
    if (memchr(buf, '\0', n))
        return ckpt_bad(err, path, 0, "binary data");
    if (buf[n - 1] != '\n')
        return ckpt_bad(err, path, 0, "truncated: the last line is cut");
    buf[n] = '\0';
    for (char *line = buf, *nl; *line; line = nl + 1) {
        char *eq;
        const char *why;
        size_t k;

        nl = strchr(line, '\n');
        *nl = '\0';
        lineno++;
        if (nl > line && nl[-1] == '\r')
            nl[-1] = '\0';
        eq = strchr(line, '=');
        if (!eq)
            return ckpt_bad(err, path, lineno, "not key=value");
        *eq = '\0';
        for (k = 0; k < NKEYS && strcmp(line, ckpt_keys[k]); k++)
            ;
        if (k == NKEYS)
            return ckpt_bad(err, path, lineno, "unknown key");
        if (seen[k]++)
            return ckpt_bad(err, path, lineno, "key repeated");
        if (lineno == 1 && k != 0)
            return ckpt_bad(err, path, lineno, "no version line first");
        if ((why = ckpt_field(ck, line, eq + 1)))
            return ckpt_bad(err, path, lineno, why);
    }
    for (size_t k = 0; k < NKEYS; k++)
        if (!seen[k]) {
            char why[64];
            snprintf(why, sizeof(why), "truncated: no %s line", ckpt_keys[k]);
            return ckpt_bad(err, path, 0, why);
        }
    return 1;
}

int cdc_ckpt_check_source(const char *path, const cdc_ckpt_t *ck,
                          const char *source, cdc_err_t *err)
{
    /* the kind of position the source resumes from (its ops say) */
    const cdc_source_ops_t *so = cdc_source_find(source);
    int want = so ? so->position : 0;
    int binlog = ck->pos.file[0] || ck->pos.gtid[0], lsn = ck->pos.lsn != 0;
    /* a position of the other kind, and one of this source's kind */
    int foreign = want == CDC_POS_BINLOG && lsn      ? CDC_POS_LSN
                  : want == CDC_POS_LSN && binlog    ? CDC_POS_BINLOG
                                                     : 0;
    int mine = want == CDC_POS_BINLOG ? binlog
               : want == CDC_POS_LSN  ? lsn
                                      : 1;
    const char *other = NULL;
    char by[128];

    if (ck->source[0] && strcmp(ck->source, source))
        other = ck->source;
    else if (foreign) {
        const char *o = cdc_source_by_position(foreign);
        snprintf(by, sizeof(by), "%s (it holds %s)", o ? o : "another",
                 foreign == CDC_POS_LSN ? "an LSN" : "a binlog position");
        other = by;
    }
    if (other) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "checkpoint %s was written by source %s, not by this "
                    "%s pipeline",
                    path, other, source);
        cdc_err_detail(err, "it holds %s", cdc_pos_str(&ck->pos));
        cdc_err_hint(err, "check pipeline.name and state.dir (two pipelines "
                          "may not share a name), or set a position of this "
                          "source with autoglm-cdc offsets set");
        return -1;
    }
    if (!mine) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "checkpoint %s holds no %s position", path, source);
        cdc_err_hint(err, "set one with autoglm-cdc offsets set, or remove "
                          "the file (autoglm-cdc offsets reset) to start "
                          "from the configured start");
        return -1;
    }
    return 0;
}

/* Open-file-description locks where the kernel has them (Linux): they
 * belong to the descriptor, so the process that holds one can still ask
 * about it (and open and close the file) without losing it; POSIX
 * process locks otherwise.  Both kinds conflict with each other. */
#ifdef F_OFD_SETLK
#define LOCK_SET F_OFD_SETLK
#define LOCK_GET F_OFD_GETLK
#else
#define LOCK_SET F_SETLK
#define LOCK_GET F_GETLK
#endif

char *cdc_state_lock_path(const char *state_dir, const char *pipeline,
                          const char *what)
{
    cdc_buf_t b = CDC_BUF_INIT;
    if (strcmp(what, "run"))
        cdc_buf_printf(&b, "%s/%s.%s.lock", state_dir, pipeline, what);
    else
        cdc_buf_printf(&b, "%s/%s.lock", state_dir, pipeline);
    return b.p;
}

int cdc_state_lock(const char *state_dir, const char *pipeline,
                   const char *what, int *fdp, cdc_err_t *err)
{
    char *path = cdc_state_lock_path(state_dir, pipeline, what);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    char pid[32];
    int fd, n, run = !strcmp(what, "run");

    *fdp = -1;
    if (mkdirs(state_dir) ||
        (fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0) {
        cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                    "cannot open lock file %s: %s", path, strerror(errno));
        cdc_err_hint(err, "set --state-dir to a writable directory");
        free(path);
        return -1;
    }
    if (fcntl(fd, LOCK_SET, &fl)) {
        long holder = 0;
        ssize_t r;
        if (errno != EAGAIN && errno != EACCES) {
            cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                        "cannot lock %s: %s", path, strerror(errno));
            close(fd);
            free(path);
            return -1;
        }
        memset(&fl, 0, sizeof(fl));
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (!fcntl(fd, LOCK_GET, &fl) && fl.l_type != F_UNLCK)
            holder = (long)fl.l_pid; /* -1 for an OFD lock */
        if (holder <= 0 && (r = pread(fd, pid, sizeof(pid) - 1, 0)) > 0) {
            pid[r] = '\0';
            holder = strtol(pid, NULL, 10);
        }
        cdc_err_set(err, CDC_EXIT_TEMPFAIL, CDC_ERR_F_FATAL,
                    "another %s of pipeline %s is running (pid %ld)",
                    run ? "instance" : what, pipeline, holder);
        cdc_err_detail(err, "lock %s is held", path);
        if (run)
            cdc_err_hint(err, "stop that process first, or give this one "
                              "another pipeline.name or state.dir");
        else
            cdc_err_hint(err, "this run did nothing; the next run resumes "
                              "where the running one stops");
        close(fd);
        free(path);
        return -1;
    }
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)n, 0) != n)
        CDC_WARN("ckpt", "cannot write our pid into %s: %s", path,
                 strerror(errno)); /* informative only: the lock holds */
    free(path);
    *fdp = fd;
    return 0;
}

int cdc_state_lock_held(const char *state_dir, const char *pipeline,
                        const char *what, long *pid)
{
    char *path = cdc_state_lock_path(state_dir, pipeline, what);
    struct flock fl;
    char buf[32];
    ssize_t r;
    int fd = open(path, O_RDONLY | O_CLOEXEC), held = 0;

    free(path);
    *pid = 0;
    if (fd < 0)
        return 0; /* never taken */
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (!fcntl(fd, LOCK_GET, &fl) && fl.l_type != F_UNLCK) {
        held = 1;
        if (fl.l_pid > 0)
            *pid = (long)fl.l_pid;
        else if ((r = pread(fd, buf, sizeof(buf) - 1, 0)) > 0) {
            /* the holder wrote its pid after taking the lock */
            buf[r] = '\0';
            *pid = strtol(buf, NULL, 10);
        }
    }
    close(fd);
    return held;
}

void cdc_state_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the lock; the file stays, holding no pid */
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
