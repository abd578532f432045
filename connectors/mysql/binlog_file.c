/* SPDX-License-Identifier: Apache-2.0 */
/*
 * binlog_file.c - read a whole binlog file and feed its events to the
 * decoder (the only I/O of the binlog decoder).
 *
 * The file is mapped read-only (read into memory if mmap fails); offsets
 * are 64-bit, so files beyond 4 GiB (where the header's 32-bit log_pos
 * wraps) are framed by event_size alone.  A file without the magic, an
 * event cut short at the end of the file, or a start offset that is not
 * an event boundary gives an error naming the path and the offset.
 *
 * Ownership: every txn passed to cb belongs to cb (it must destroy it,
 * also when it fails); with cb == NULL the txns are destroyed here.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connectors/mysql/binlog.h"

static int read_all(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

int cdc_binlog_read_file(cdc_binlog_t *bl, const char *path,
                         uint64_t start_offset, cdc_binlog_txn_cb cb,
                         void *opaque, cdc_err_t *err)
{
    int rc = -1, fd;
    struct stat st;
    uint8_t *p = NULL;
    size_t size = 0;
    int mapped = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cdc_err_set(err, errno == ENOENT ? CDC_EXIT_USAGE : CDC_EXIT_FAIL, 0,
                    "cannot open binlog file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        cdc_err_set(err, CDC_EXIT_FAIL, 0, "cannot stat %s: %s", path,
                    strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        cdc_err_set(err, CDC_EXIT_USAGE, 0, "%s is not a regular file", path);
        goto out;
    }
    size = (size_t)st.st_size;
    if (size >= 4) {
        p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            mapped = 1;
            madvise(p, size, MADV_SEQUENTIAL);
        } else {
            p = malloc(size);
            if (!p || read_all(fd, p, size) < 0) {
                cdc_err_set(err, CDC_EXIT_FAIL, 0, "cannot read %s: %s",
                            path, strerror(errno ? errno : EIO));
                goto out;
            }
        }
    }
    if (size < 4 || memcmp(p, CDC_BINLOG_MAGIC, 4) != 0) {
        cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                    "%s: not a binlog file (bad magic)", path);
        cdc_err_hint(err, "a binlog file starts with the bytes fe 62 69 6e; "
                          "pass a MySQL/MariaDB binary log such as "
                          "mysql-bin.000001 (not the .index file or a dump)");
        goto out;
    }
    if (start_offset > size) {
        cdc_err_set(err, CDC_EXIT_USAGE, 0,
                    "start position %" PRIu64 " is beyond the end of %s "
                    "(%zu bytes)",
                    start_offset, path, size);
        goto out;
    }

    if (!cdc_binlog_get_file(bl)[0]) {
        const char *base = strrchr(path, '/');
        cdc_binlog_set_file(bl, base ? base + 1 : path);
    }
    uint64_t off = 4, released = 0;
    const uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
    while (off < size) {
        /* Keep RSS flat on big files: drop the pages already decoded from
         * our mapping every 8 MiB.  For a private read-only file mapping
         * MADV_DONTNEED only unmaps them; a later access would fault them
         * back in from the page cache, so nothing can go stale. */
        if (mapped && off - released >= (8u << 20)) {
            uint64_t upto = off & ~(pg - 1);
            madvise(p + released, (size_t)(upto - released), MADV_DONTNEED);
            released = upto;
        }
        size_t left = size - (size_t)off;
        if (start_offset > off && start_offset < off + 19 && left >= 19)
            goto not_boundary;
        if (left < CDC_BINLOG_HEADER_LEN) {
            cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                        "%s: truncated event at offset %" PRIu64
                        ": %zu bytes left, an event header needs 19",
                        path, off, left);
            cdc_err_hint(err, "the file is cut short (still being written or "
                              "copied); the events before this offset were "
                              "decoded");
            goto out;
        }
        uint32_t evsize;
        memcpy(&evsize, p + off + 9, 4);
        evsize = le32toh(evsize);
        if (evsize < CDC_BINLOG_HEADER_LEN) {
            cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                        "%s: bad event size %" PRIu32 " at offset %" PRIu64,
                        path, evsize, off);
            cdc_err_hint(err, "the binlog is corrupt at this offset");
            goto out;
        }
        if (evsize > left) {
            cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                        "%s: truncated event at offset %" PRIu64
                        ": event_size is %" PRIu32 " but only %zu bytes are "
                        "left",
                        path, off, evsize, left);
            cdc_err_hint(err, "the file is cut short (still being written or "
                              "copied); the events before this offset were "
                              "decoded");
            goto out;
        }
        if (start_offset > off && start_offset < off + evsize)
            goto not_boundary;
        cdc_txn_t *tx = NULL;
        int r = cdc_binlog_feed(bl, p + off, evsize, off, &tx, err);
        if (r < 0)
            goto out;
        if (r == 1 && tx) {
            if (off < start_offset || !cb) {
                /* before the start: decoded for state only */
                cdc_txn_destroy(tx);
            } else if (cb(opaque, tx, err)) {
                goto out;
            }
        }
        off += evsize;
    }
    rc = 0;
    goto out;

not_boundary:
    cdc_err_set(err, CDC_EXIT_USAGE, 0,
                "start position %" PRIu64 " in %s is not at an event "
                "boundary",
                start_offset, path);
    cdc_err_hint(err, "use a position printed by SHOW BINARY LOG STATUS or "
                      "a pos from a previous envelope");
out:
    if (mapped)
        munmap(p, size);
    else
        free(p);
    close(fd);
    return rc;
}
