/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_binlog.c - libFuzzer target for the binlog event decoder, and
 * (built with -DCDC_FUZZ_REPLAY_MAIN) a standalone main that replays the
 * corpus in tests/fuzz/corpus/binlog during `make check` (SQLite
 * fuzzcheck style), plus single events cut from the fixtures at run time.
 *
 * Input format, byte 0 = mode:
 *   bit 0 set: FILE mode - the rest, after the "\xfebin" magic this
 *              target prepends, is a whole binlog file read through
 *              cdc_binlog_read_file (from a memfd, no disk I/O);
 *   bit 0 clear: EVENT mode - a valid FORMAT_DESCRIPTION is fed first
 *              (bit 1: MySQL 8.0 layout, else MariaDB 10.11; bit 3:
 *              checksum NONE, else CRC32), then frames of
 *              [u16 little-endian length][event bytes].  Each frame's
 *              event_size field is set to the frame length and, with
 *              bit 2, its CRC32 trailer is recomputed so mutations get
 *              past the checksum (bit 2 clear: verification off).
 * The decoder must return 0, 1 or -1 and never crash, hang or leak;
 * every transaction it returns is rendered to envelopes.
 *
 * Debug one input:  ./fuzz_binlog_replay path/to/file
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "cdc/envelope.h"
#include "cdc/log.h"
#include "connectors/mysql/binlog.h"

/* Post-header lengths of the FDEs written by MariaDB 10.11 (types 1..171)
 * and MySQL 8.0 (types 1..41). */
static const char maria_phl[] =
    "380d000800120004040404120000e400041a08000000080808020000000a0a0a0000"
    "000000000a0a0a00000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000041304000d0808080a0a0a";
static const char mysql_phl[] =
    "000d0008000000000400040000006200041a08000000080808020000000a0a0a2a2a00"
    "1234000a2800";

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* A FORMAT_DESCRIPTION event; returns its length. */
static size_t make_fde(uint8_t *ev, int mysql, int crc)
{
    const char *hex = mysql ? mysql_phl : maria_phl;
    const char *ver = mysql ? "8.0.32" : "10.11.19-MariaDB-log";
    size_t nphl = strlen(hex) / 2, n = 19 + 57 + nphl + 5;
    memset(ev, 0, n);
    put32(ev, 1700000000);
    ev[4] = 15;
    put32(ev + 5, 1);
    put32(ev + 9, (uint32_t)n);
    put32(ev + 13, (uint32_t)(4 + n));
    ev[19] = 4;
    memcpy(ev + 21, ver, strlen(ver));
    ev[19 + 56] = 19;
    for (size_t i = 0; i < nphl; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        ev[19 + 57 + i] = (uint8_t)v;
    }
    ev[n - 5] = (uint8_t)(crc ? 1 : 0);
    put32(ev + n - 4, (uint32_t)crc32(0, ev, (uInt)(n - 4)));
    return n;
}

static cdc_buf_t env_out = CDC_BUF_INIT;
static int debug = -1; /* FUZZ_BINLOG_DEBUG=1: print errors and txns */

static void show_err(int rc, const cdc_err_t *err)
{
    if (debug && rc < 0)
        fprintf(stderr, "error: %s\n", err->msg);
}

static void render(cdc_txn_t *tx)
{
    if (debug)
        fprintf(stderr, "txn %s: %u changes, pos %s:%llu [%s]\n", tx->gtid,
                tx->nchanges, tx->pos.file,
                (unsigned long long)tx->pos.offset, tx->pos.gtid);
    cdc_env_opts_t eo = {CDC_FMT_AUTOGLM, "fuzz"};
    for (uint32_t i = 0; i < tx->nchanges; i++) {
        cdc_buf_reset(&env_out);
        cdc_envelope_write(&env_out, &eo, tx, &tx->changes[i]);
        cdc_envelope_key(&env_out, &tx->changes[i]);
    }
}

static int file_cb(void *opaque, cdc_txn_t *tx, cdc_err_t *err)
{
    (void)opaque;
    (void)err;
    render(tx);
    cdc_txn_destroy(tx);
    return 0;
}

static void fuzz_file(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_binlog", MFD_CLOEXEC);
    if (fd < 0)
        return;
    if (write(fd, "\xfe" "bin", 4) != 4 ||
        (size && write(fd, data, size) != (ssize_t)size)) {
        close(fd);
        return;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    cdc_binlog_opts_t o = {.verify_checksum = 1};
    cdc_binlog_t *bl = cdc_binlog_new(&o);
    cdc_err_t err;
    show_err(cdc_binlog_read_file(bl, path, 0, file_cb, NULL, &err), &err);
    cdc_binlog_destroy(bl);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (debug < 0)
        debug = getenv("FUZZ_BINLOG_DEBUG") != NULL;
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    if (mode & 1) {
        fuzz_file(data + 1, size - 1);
        return 0;
    }
    int mysql = (mode & 2) != 0, fixcrc = (mode & 4) != 0;
    int crc = !(mode & 8);
    cdc_binlog_opts_t o = {.verify_checksum = fixcrc};
    cdc_binlog_t *bl = cdc_binlog_new(&o);
    cdc_binlog_set_file(bl, "fuzz-bin.000001");
    uint8_t fde[512];
    size_t fl = make_fde(fde, mysql, crc);
    cdc_err_t err;
    cdc_txn_t *tx = NULL;
    if (cdc_binlog_feed(bl, fde, fl, 4, &tx, &err) != 0)
        abort(); /* the seed FDE must be accepted */
    uint64_t off = 4 + fl;
    size_t pos = 1;
    uint8_t *ev = NULL;
    while (pos + 2 <= size) {
        size_t n = (size_t)data[pos] | (size_t)data[pos + 1] << 8;
        pos += 2;
        if (n > size - pos)
            n = size - pos;
        ev = realloc(ev, n ? n : 1);
        if (!ev)
            abort();
        memcpy(ev, data + pos, n);
        if (n >= 19)
            put32(ev + 9, (uint32_t)n);
        if (fixcrc && crc && n >= 23)
            put32(ev + n - 4, (uint32_t)crc32(0, ev, (uInt)(n - 4)));
        tx = NULL;
        int rc = cdc_binlog_feed(bl, ev, n, off, &tx, &err);
        show_err(rc, &err);
        if (rc == 1) {
            if (!tx)
                abort();
            render(tx);
            cdc_txn_destroy(tx);
        } else if (rc != 0 && rc != -1) {
            abort();
        } else if (tx) {
            abort(); /* no txn may be handed out without rc 1 */
        }
        pos += n;
        off += n;
    }
    free(ev);
    cdc_binlog_destroy(bl);
    return 0;
}

#ifdef CDC_FUZZ_REPLAY_MAIN
#include <dirent.h>

static uint8_t *slurp(const char *path, size_t *np)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    if (!fp)
        return NULL;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        size_t r = fread(buf + n, 1, cap - n, fp);
        if (r == 0)
            break;
        n += r;
    }
    fclose(fp);
    *np = n;
    return buf;
}

static int replay_file(const char *path)
{
    size_t n;
    uint8_t *buf = slurp(path, &n);
    if (!buf)
        return -1;
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Cut the events (<= 4 KB) of a fixture into EVENT-mode inputs: each
 * event alone, and each event after its predecessor, under both seed
 * FDEs and with/without CRC fixing; also a FILE-mode run with bytes
 * flipped every 97 bytes.  Returns the number of inputs run. */
static int replay_fixture(const char *path, int mysql)
{
    size_t n;
    uint8_t *p = slurp(path, &n);
    int runs = 0;
    if (!p || n < 4)
        return 0;
    size_t off = 4, prev = 0;
    uint8_t *in = malloc(1 + 2 * (2 + 4096));
    while (off + 19 <= n) {
        uint32_t sz = (uint32_t)p[off + 9] | (uint32_t)p[off + 10] << 8 |
                      (uint32_t)p[off + 11] << 16 |
                      (uint32_t)p[off + 12] << 24;
        if (sz < 19 || sz > n - off)
            break;
        if (sz <= 4096 && p[off + 4] != 15) {
            for (int m = 0; m < 2; m++) {
                size_t k = 0;
                in[k++] = (uint8_t)((mysql ? 2 : 0) | (m ? 4 : 0));
                if (prev && off - prev <= 4096) {
                    size_t pl = off - prev;
                    in[k++] = (uint8_t)pl;
                    in[k++] = (uint8_t)(pl >> 8);
                    memcpy(in + k, p + prev, pl);
                    k += pl;
                }
                in[k++] = (uint8_t)sz;
                in[k++] = (uint8_t)(sz >> 8);
                memcpy(in + k, p + off, sz);
                k += sz;
                LLVMFuzzerTestOneInput(in, k);
                runs++;
            }
        }
        prev = off;
        off += sz;
    }
    free(in);
    /* damaged whole file */
    uint8_t *d = malloc(n - 3);
    d[0] = 1;
    memcpy(d + 1, p + 4, n - 4);
    for (size_t i = 1; i < n - 3; i += 97)
        d[i] ^= 0x5a;
    LLVMFuzzerTestOneInput(d, n - 3);
    runs++;
    free(d);
    free(p);
    return runs;
}

int main(int argc, char **argv)
{
    char dir[4096];
    const char *top = getenv("top_srcdir");
    /* the fixture tree: CDC_FIXTURES (then every file must be there),
     * else CDC_FIXTURES_DEFAULT (make check) where a missing file is a
     * TAP skip of its own */
    const char *fx = getenv("CDC_FIXTURES");
    int fx_required = fx && *fx;
    if (!fx_required)
        fx = getenv("CDC_FIXTURES_DEFAULT");
    if (!fx || !*fx)
        fx = "../shared/fixtures";
    char **names = NULL;
    int nn = 0, fails = 0;
    static const struct {
        const char *rel;
        int mysql;
    } fixtures[] = {
        {"mariadb-10.11/01_types.binlog", 0},
        {"mariadb-10.11/02_txn_ddl.binlog", 0},
        {"mariadb-10.11/03_row_images.binlog", 0},
        {"mariadb-10.11/04_gtid_domains.binlog", 0},
        {"mariadb-10.11/11_types_compressed.binlog", 0},
        {"mariadb-10.11/12_txn_ddl_compressed.binlog", 0},
        {"rust_mysql_common/transaction_compression.000001", 1},
        {"rust_mysql_common/json.binlog.000001", 1},
        {"rust_mysql_common/vector.binlog", 1},
        {"rust_mysql_common/binlog_transaction_with_GTID_TAG.000001", 1},
        {"rust_mysql_common/mysql-enum-string-set.000001", 1},
        {"mysql-binlog-connector-java/mysql-bin.compressed", 1},
        {"mysql-binlog-connector-rust/mysql-bin.000057", 1},
    };

    cdc_log_set_level(CDC_LOG_ERROR - 1); /* silence expected errors */
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            if (replay_file(argv[i]) < 0) {
                perror(argv[i]);
                return 1;
            }
        printf("replayed %d files\n", argc - 1);
        cdc_buf_free(&env_out);
        return 0;
    }
    snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/binlog",
             top ? top : ".");
    DIR *dp = opendir(dir);
    if (dp) {
        struct dirent *de;
        while ((de = readdir(dp)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            names = realloc(names, (size_t)(nn + 1) * sizeof(*names));
            names[nn++] = strdup(de->d_name);
        }
        closedir(dp);
        if (nn)
            qsort(names, (size_t)nn, sizeof(*names), cmp);
    }
    int nfx = (int)(sizeof(fixtures) / sizeof(*fixtures));
    printf("1..%d\n", nn + nfx);
    for (int i = 0; i < nn; i++) {
        char path[8192];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        int rc = replay_file(path);
        printf("%sok %d - %s\n", rc ? "not " : "", i + 1, names[i]);
        fails += rc != 0;
        free(names[i]);
    }
    free(names);
    for (int i = 0; i < nfx; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/binlog/%s", fx, fixtures[i].rel);
        if (access(path, R_OK) != 0 && fx_required) {
            printf("not ok %d - %s: missing from CDC_FIXTURES=%s\n",
                   nn + i + 1, fixtures[i].rel, fx);
            fails++;
            continue;
        }
        if (access(path, R_OK) != 0) {
            printf("ok %d - %s # SKIP fixture missing at %s\n", nn + i + 1,
                   fixtures[i].rel, path);
            continue;
        }
        int runs = replay_fixture(path, fixtures[i].mysql);
        printf("ok %d - %s (%d inputs)\n", nn + i + 1, fixtures[i].rel,
               runs);
    }
    cdc_buf_free(&env_out);
    return fails ? 1 : 0;
}
#endif
