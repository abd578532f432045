/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_binlog_framing.c - every binlog fixture's framing against the
 * `.events.txt` listing beside it.
 *
 * For each file X under $CDC_FIXTURES/binlog with X.events.txt beside it
 * (mysql-bin.sakila.gz is gunzipped to a temp file first), the decoder's
 * on_event callback must report exactly the listed events: offset, type
 * name, size and depth (events inside a TRANSACTION_PAYLOAD are indented
 * in the listing).  Files that are broken on purpose must stop with a
 * clean error that names the offset; the framing of the events after
 * such an error is still checked by feeding the rest event by event.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cdc/log.h"
#include "connectors/mysql/binlog.h"
#include "tests/unit/cdc_test.h"

/* Files that must fail, where, and why. */
static const struct {
    const char *name;
    uint64_t offset;
    const char *needle;
} expected_errors[] = {
    {"binlog_truncated_event.000001", 4, "truncated event at offset 4"},
    {"binlog_truncated_prev_gtid_event.000001", 120,
     "truncated event at offset 120"},
    {"bug40482-bin.000001", 106, "incident"},
    {"corrupt-relay-bin.000624", 91204, "too short"},
    /* PARTIAL_JSON diff over a MINIMAL before image: nothing to apply it
     * to */
    {"json.binlog.000001", 3750, "partial JSON"},
    {"ver_5_1-wl2325_r.001", 549, "too short"},
    {"ver_5_1-wl2325_s.001", 411, "pre-GA"},
};

typedef struct line {
    int depth;
    uint64_t off;
    char name[40];
    uint32_t size;
} line_t;

typedef struct list {
    line_t *v;
    size_t n, cap;
} list_t;

static void list_add(list_t *l, int depth, uint64_t off, const char *name,
                     uint32_t size)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
    }
    line_t *x = &l->v[l->n++];
    x->depth = depth;
    x->off = off;
    snprintf(x->name, sizeof(x->name), "%s", name);
    x->size = size;
}

static void on_event(void *opaque, const cdc_binlog_evinfo_t *ev)
{
    list_add(opaque, ev->depth, ev->offset, ev->name ? ev->name : "?",
             ev->size);
}

static int load_listing(const char *path, list_t *l)
{
    FILE *f = fopen(path, "r");
    char buf[4096];
    if (!f)
        return -1;
    while (fgets(buf, sizeof(buf), f)) {
        if (!strncmp(buf, "==", 2))
            continue;
        size_t sp = strspn(buf, " ");
        unsigned long long off;
        char name[40];
        unsigned size;
        int used = 0;
        if (sscanf(buf + sp, "%llu%n", &off, &used) != 1)
            continue;
        /* inner events are indented by 4 more columns */
        int depth = sp + (size_t)used >= 10;
        if (sscanf(buf + sp + used, "%39s %u", name, &size) != 2)
            continue;
        if (!strcmp(name, "-1"))
            continue; /* TRAILING bytes: not an event */
        list_add(l, depth, off, name, size);
    }
    fclose(f);
    return 0;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(sz > 0 ? (size_t)sz : 1);
    if (sz > 0 && fread(p, 1, (size_t)sz, f) != (size_t)sz) {
        free(p);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return p;
}

/* gunzip path into a temp file; returns its malloc'ed name */
static char *gunzip_tmp(const char *path)
{
    const char *td = getenv("TMPDIR");
    char *tmp;
    if (asprintf(&tmp, "%s/t_binlog_framing.XXXXXX", td ? td : "/tmp") < 0)
        return NULL;
    int fd = mkstemp(tmp);
    gzFile gz = gzopen(path, "rb");
    char buf[65536];
    int n;
    if (fd < 0 || !gz) {
        free(tmp);
        return NULL;
    }
    while ((n = gzread(gz, buf, sizeof(buf))) > 0)
        if (write(fd, buf, (size_t)n) != n)
            n = -1;
    gzclose(gz);
    close(fd);
    return tmp;
}

static int nfiles, nevents;

static void check_file(const char *path, const char *listing)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    list_t want = {0}, got = {0};
    if (load_listing(listing, &want) < 0) {
        T_FAIL_("%s: cannot read listing", listing);
        return;
    }
    char *tmp = NULL;
    const char *real = path;
    size_t bl_ = strlen(base);
    if (bl_ > 3 && !strcmp(base + bl_ - 3, ".gz")) {
        tmp = gunzip_tmp(path);
        T_ASSERT(tmp != NULL);
        if (!tmp)
            return;
        real = tmp;
    }
    cdc_binlog_opts_t o = {.verify_checksum = 1, .on_event = on_event,
                           .opaque = &got};
    cdc_binlog_t *bl = cdc_binlog_new(&o);
    cdc_binlog_set_file(bl, base);
    cdc_err_t err = {0};
    int rc = cdc_binlog_read_file(bl, real, 0, NULL, NULL, &err);

    int idx = -1;
    for (size_t i = 0; i < sizeof(expected_errors) / sizeof(*expected_errors);
         i++)
        if (!strcmp(expected_errors[i].name, base))
            idx = (int)i;
    if (idx < 0) {
        if (rc != 0)
            T_FAIL_("%s: unexpected error: %s", base, err.msg);
    } else {
        char offs[32];
        snprintf(offs, sizeof(offs), "%" PRIu64,
                 expected_errors[idx].offset);
        if (rc == 0)
            T_FAIL_("%s: expected an error at offset %s", base, offs);
        else if (!strstr(err.msg, offs) ||
                 !strcasestr(err.msg, expected_errors[idx].needle))
            T_FAIL_("%s: error does not name offset %s / '%s': %s", base,
                    offs, expected_errors[idx].needle, err.msg);
        T_EQ_INT(err.code, CDC_EXIT_DATA);
        /* framing of the rest: feed it event by event, errors allowed */
        size_t n = 0;
        uint8_t *p = slurp(real, &n);
        uint64_t off = expected_errors[idx].offset;
        if (p && off + 19 <= n) {
            uint32_t sz = (uint32_t)p[off + 9] | (uint32_t)p[off + 10] << 8 |
                          (uint32_t)p[off + 11] << 16 |
                          (uint32_t)p[off + 12] << 24;
            off += sz;
            while (off + 19 <= n) {
                sz = (uint32_t)p[off + 9] | (uint32_t)p[off + 10] << 8 |
                     (uint32_t)p[off + 11] << 16 |
                     (uint32_t)p[off + 12] << 24;
                if (sz < 19 || sz > n - off)
                    break;
                cdc_txn_t *tx = NULL;
                cdc_err_t e2 = {0};
                cdc_binlog_feed(bl, p + off, sz, off, &tx, &e2);
                cdc_txn_destroy(tx);
                off += sz;
            }
        }
        free(p);
    }
    cdc_binlog_destroy(bl);

    size_t m = want.n < got.n ? want.n : got.n;
    int bad = 0;
    for (size_t i = 0; i < m && bad < 5; i++) {
        line_t *a = &got.v[i], *b = &want.v[i];
        if (a->depth != b->depth || a->off != b->off || a->size != b->size ||
            strcmp(a->name, b->name)) {
            T_FAIL_("%s: event %zu: got %d %" PRIu64 " %s %u, listing has "
                    "%d %" PRIu64 " %s %u",
                    base, i, a->depth, a->off, a->name, a->size, b->depth,
                    b->off, b->name, b->size);
            bad++;
        }
    }
    if (want.n != got.n)
        T_FAIL_("%s: %zu events, listing has %zu", base, got.n, want.n);
    nfiles++;
    nevents += (int)got.n;
    free(want.v);
    free(got.v);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
}

static void walk(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    if (!d)
        return;
    char **names = NULL;
    size_t n = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        names = realloc(names, (n + 1) * sizeof(*names));
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names),
          (int (*)(const void *, const void *))strcmp);
    for (size_t i = 0; i < n; i++) {
        char *path, *listing;
        struct stat st;
        if (asprintf(&path, "%s/%s", dir, names[i]) < 0)
            continue;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            walk(path);
        } else if (asprintf(&listing, "%s.events.txt", path) >= 0) {
            if (access(listing, R_OK) == 0)
                check_file(path, listing);
            free(listing);
        }
        free(path);
        free(names[i]);
    }
    free(names);
}

static const char *fixtures(void)
{
    static char buf[1024];
    snprintf(buf, sizeof(buf), "%s/binlog", cdc_test_fixtures());
    return buf;
}

CDC_TEST(every_fixture_matches_its_listing)
{
    cdc_log_set_level(CDC_LOG_ERROR); /* the Aurora padding WARN */
    walk(fixtures());
    printf("# %d files, %d events\n", nfiles, nevents);
    T_ASSERT(nfiles >= 70);
    T_ASSERT(nevents > 4000);
}

CDC_TEST(non_binlog_rejected)
{
    char path[1100];
    snprintf(path, sizeof(path), "%s/mysql-binlog-connector-rust/non-binlog",
             fixtures());
    cdc_binlog_t *bl = cdc_binlog_new(NULL);
    cdc_err_t err = {0};
    T_EQ_INT(cdc_binlog_read_file(bl, path, 0, NULL, NULL, &err), -1);
    T_ASSERT(strstr(err.msg, "not a binlog file (bad magic)") != NULL);
    T_ASSERT(strstr(err.msg, "non-binlog") != NULL);
    T_ASSERT(err.hint[0] != '\0');
    T_EQ_INT(err.code, CDC_EXIT_DATA);
    cdc_binlog_destroy(bl);
}

CDC_TEST(type_names)
{
    T_EQ_STR(cdc_binlog_type_name(23), "WRITE_ROWS_V1");
    T_EQ_STR(cdc_binlog_type_name(162), "MARIA_GTID");
    T_EQ_STR(cdc_binlog_type_name(42), "GTID_TAGGED");
    T_ASSERT(cdc_binlog_type_name(100) == NULL);
}

CDC_TEST_MAIN_FIXTURES()
