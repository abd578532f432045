/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_map_zone.c - time zones of the mapping engine (mappings/map_zone.c):
 * casts with a mapping's zone neither read nor change the process TZ,
 * gaps and overlaps follow one documented rule whatever was cast before,
 * the zone rules agree with the C library's reading of the same files
 * (including the footer rule after the last transition), and the TZif
 * parser rejects truncated or damaged files without reading past them.
 *
 * Random cases take their seed from CDC_TEST_SEED (printed on failure).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdc_test.h"
#include "cdc/util.h"
#include "mappings/map_int.h"

static unsigned long long seed;

static void seed_rng(void)
{
    const char *s = getenv("CDC_TEST_SEED");
    seed = s && *s ? strtoull(s, NULL, 10) : 20261207ULL;
    cdc_test_rng_ = seed * 0x9E3779B97F4A7C15ULL + 1;
}

/* Map one naive timestamp of source src; the canonical text or NULL. */
static const char *cast_via(const cdc_map_t *m, const char *src,
                            const char *ts, char *out, size_t n)
{
    cdc_table_t *t = cdc_table_new("db", "t", 2);
    cdc_txn_t *tx = cdc_txn_new();
    cdc_change_t *ch;
    cdc_wide_ops_t ops;
    cdc_err_t err = {0};
    const char *res = NULL;

    t->cols[0].name = cdc_xstrdup("id");
    t->cols[1].name = cdc_xstrdup("ts");
    ch = cdc_txn_add(tx, 'c', t);
    tx->commit_us = 1;
    tx->pos.lsn = 1;
    ch->pos = 1;
    ch->after = cdc_txn_values(tx, 2);
    ch->after[0].kind = CDC_V_INT;
    ch->after[0].u.i = 1;
    ch->after[1].kind = CDC_V_STRING;
    ch->after[1].len = strlen(ts);
    ch->after[1].s = cdc_arena_memdup(&tx->arena, ts, ch->after[1].len);
    cdc_wide_ops_init(&ops);
    if (cdc_map_change(m, src, tx, ch, 0, &ops, &err) == 1 &&
        ops.ops[0].nvals == 1 && !ops.ops[0].vals[0].isnull) {
        snprintf(out, n, "%s", ops.ops[0].vals[0].s);
        res = out;
    } else
        fprintf(stderr, "# cast of '%s' (%s): %s\n", ts, src, err.msg);
    cdc_wide_ops_free(&ops);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
    return res;
}

static const char yaml[] =
    "sources: {ny: {timezone: America/New_York}, be: {timezone: "
    "Europe/Berlin}, du: {timezone: Europe/Dublin}, lh: {timezone: "
    "Australia/Lord_Howe}, ka: {timezone: Asia/Kathmandu}, fx: {timezone: "
    "'-03:30'}}\n"
    "targets:\n"
    "  w: {key: k, fields: {k: int, a: {type: timestamp, owners: [ny, be, du,"
    " lh, ka, fx]}}}\n"
    "mappings:\n"
    "  - {source: ny, table: db.t, target: w, key: {k: id}, fields: {a: ts}}\n"
    "  - {source: be, table: db.t, target: w, key: {k: id}, fields: {a: ts}}\n"
    "  - {source: du, table: db.t, target: w, key: {k: id}, fields: {a: ts}}\n"
    "  - {source: lh, table: db.t, target: w, key: {k: id}, fields: {a: ts}}\n"
    "  - {source: ka, table: db.t, target: w, key: {k: id}, fields: {a: ts}}\n"
    "  - {source: fx, table: db.t, target: w, key: {k: id}, fields: {a: ts}}\n";

/* source, local time, UTC result.  Gaps take the offset before the
 * transition, overlaps the offset after it (PostgreSQL's rule). */
static const char *const cases[][3] = {
    {"ny", "2024-07-04 12:00:00", "2024-07-04T16:00:00Z"},
    {"ny", "2024-03-10 02:30:00", "2024-03-10T07:30:00Z"}, /* gap */
    {"ny", "2024-11-03 01:30:00", "2024-11-03T06:30:00Z"}, /* overlap */
    {"ny", "2061-07-04 12:00:00", "2061-07-04T16:00:00Z"}, /* footer rule */
    {"ny", "2061-12-04 12:00:00", "2061-12-04T17:00:00Z"},
    {"ny", "1850-01-01 00:00:00", "1850-01-01T04:56:02Z"}, /* LMT */
    {"be", "2024-03-31 02:30:00", "2024-03-31T01:30:00Z"}, /* gap */
    {"be", "2024-10-27 02:30:00", "2024-10-27T01:30:00Z"}, /* overlap */
    {"be", "2024-02-29 00:10:00.25", "2024-02-28T23:10:00.25Z"},
    {"du", "2024-03-31 01:30:00", "2024-03-31T01:30:00Z"}, /* gap, IST */
    {"du", "2024-10-27 01:30:00", "2024-10-27T01:30:00Z"}, /* overlap */
    {"lh", "2024-04-07 01:45:00", "2024-04-06T15:15:00Z"}, /* 30 min back */
    {"lh", "2024-10-06 02:15:00", "2024-10-05T15:45:00Z"}, /* 30 min gap */
    {"ka", "2024-01-01 05:45:00", "2024-01-01T00:00:00Z"},
    {"fx", "2024-01-01 00:00:00", "2024-01-01T03:30:00Z"},
    {"ny", "2024-07-04 12:00:00+02:00", "2024-07-04T10:00:00Z"},
    {"ny", "2024-07-04 12:00:00Z", "2024-07-04T12:00:00Z"},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static void run_cases(const cdc_map_t *m, const char *tzname)
{
    char out[64];
    for (size_t i = 0; i < NCASES; i++) {
        const char *got = cast_via(m, cases[i][0], cases[i][1], out,
                                   sizeof(out));
        T_ASSERT(got != NULL);
        if (got && strcmp(got, cases[i][2]))
            fprintf(stderr, "# TZ=%s: %s '%s'\n", tzname, cases[i][0],
                    cases[i][1]);
        if (got)
            T_EQ_STR(got, cases[i][2]);
    }
}

/* The process TZ is neither read nor written by a cast. */
CDC_TEST(casts_ignore_and_keep_the_process_tz)
{
    static const char *const odd[] = {"Pacific/Chatham", "<+0345>-3:45",
                                      "America/St_Johns", "UTC", NULL};
    cdc_err_t err = {0};
    cdc_map_t *m = cdc_map_load_str("z.yaml", yaml, strlen(yaml), &err);

    T_ASSERT(m != NULL);
    if (!m) {
        fprintf(stderr, "# %s\n", err.msg);
        return;
    }
    for (int k = 0; k < 5; k++) {
        const char *tz = odd[k];
        time_t zero = 0;
        struct tm lt;
        long off_before;

        if (tz)
            setenv("TZ", tz, 1);
        else
            unsetenv("TZ");
        tzset();
        localtime_r(&zero, &lt);
        off_before = lt.tm_gmtoff;
        run_cases(m, tz ? tz : "(unset)");
        /* still the same TZ, and the C library still reads it */
        if (tz) {
            T_ASSERT(getenv("TZ") != NULL);
            if (getenv("TZ"))
                T_EQ_STR(getenv("TZ"), tz);
        } else
            T_ASSERT(getenv("TZ") == NULL);
        localtime_r(&zero, &lt);
        T_EQ_INT(lt.tm_gmtoff, off_before);
    }
    unsetenv("TZ");
    tzset();
    cdc_map_destroy(m);
}

/* An overlap's result does not depend on what was cast before (mktime's
 * did: it starts from the offset of its previous call). */
CDC_TEST(overlap_result_does_not_depend_on_history)
{
    cdc_err_t err = {0};
    cdc_map_t *m = cdc_map_load_str("z.yaml", yaml, strlen(yaml), &err);
    char a[64], b[64], c[64];

    T_ASSERT(m != NULL);
    if (!m)
        return;
    T_ASSERT(cast_via(m, "ny", "2024-07-01 01:30:00", a, sizeof(a)) != NULL);
    T_ASSERT(cast_via(m, "ny", "2024-11-03 01:30:00", b, sizeof(b)) != NULL);
    T_ASSERT(cast_via(m, "ny", "2024-12-01 01:30:00", a, sizeof(a)) != NULL);
    T_ASSERT(cast_via(m, "ny", "2024-11-03 01:30:00", c, sizeof(c)) != NULL);
    T_EQ_STR(b, c);
    T_EQ_STR(b, "2024-11-03T06:30:00Z");
    cdc_map_destroy(m);
}

/* For random instants from 1880 to 2150, the offset equals the C
 * library's (tm_gmtoff with TZ set here, in the test), and local -> UTC
 * gives back the instant, or for an ambiguous local time the other
 * instant that shows the same wall clock, the later one. */
CDC_TEST(offsets_agree_with_the_c_library)
{
    static const char *const zones[] = {
        "America/New_York", "Europe/Berlin", "Europe/Dublin",
        "Australia/Lord_Howe", "Asia/Kathmandu", "America/Sao_Paulo",
        "Pacific/Apia", "Africa/Casablanca", "America/Santiago",
        "Asia/Tehran", "Europe/London", "Antarctica/Troll"};
    int bad = 0;

    seed_rng();
    for (size_t zi = 0; zi < sizeof(zones) / sizeof(zones[0]); zi++) {
        cdc_err_t err = {0};
        cdc_tz_t *z = cdc_tz_load(zones[zi], &err);
        T_ASSERT(z != NULL);
        if (!z) {
            fprintf(stderr, "# %s\n", err.msg);
            continue;
        }
        setenv("TZ", zones[zi], 1);
        tzset();
        for (int i = 0; i < 4000; i++) {
            int64_t lo = -2840140800LL, span = 8520000000LL; /* 1880..2150 */
            int64_t t = lo + (int64_t)(((uint64_t)cdc_test_rand(1u << 30) << 30 |
                                        cdc_test_rand(1u << 30)) %
                                       (uint64_t)span);
            time_t tt = (time_t)t;
            struct tm lt;
            int dst;
            int32_t off;
            int64_t back;

            localtime_r(&tt, &lt);
            off = cdc_tz_offset(z, t, &dst);
            if (off != lt.tm_gmtoff && bad++ < 5)
                fprintf(stderr, "# seed %llu: %s at %lld: offset %d, C "
                        "library %ld\n", seed, zones[zi], (long long)t, off,
                        lt.tm_gmtoff);
            back = cdc_tz_to_utc(z, t + off);
            if (back != t) {
                /* an overlap: the other instant has the same wall clock
                 * and is the later one */
                int32_t o2 = cdc_tz_offset(z, back, NULL);
                if ((back + o2 != t + off || back < t) && bad++ < 5)
                    fprintf(stderr, "# seed %llu: %s: local %lld -> %lld, "
                            "expected %lld\n", seed, zones[zi],
                            (long long)(t + off), (long long)back,
                            (long long)t);
            }
        }
        cdc_tz_free(z);
    }
    unsetenv("TZ");
    tzset();
    T_EQ_INT(bad, 0);
}

/* Every truncation and random damage of a real zone file: rejected with
 * an error naming the zone, or loaded into rules that still convert. */
CDC_TEST(damaged_zone_files_are_rejected)
{
    const char *dir = getenv("TZDIR");
    char path[512];
    unsigned char *buf, *cp;
    size_t len;
    FILE *fp;
    int ok = 0, rejected = 0;

    seed_rng();
    snprintf(path, sizeof(path), "%s/America/New_York",
             dir && *dir ? dir : "/usr/share/zoneinfo");
    fp = fopen(path, "rb");
    T_ASSERT(fp != NULL);
    if (!fp)
        return;
    buf = cdc_xmalloc(1 << 16);
    len = fread(buf, 1, 1 << 16, fp);
    fclose(fp);
    {
        cdc_err_t err = {0};
        cdc_tz_t *z = cdc_tz_parse("x", buf, len, &err);
        T_ASSERT(z != NULL);
        cdc_tz_free(z);
    }
    for (size_t n = 0; n < len; n++) {
        cdc_err_t err = {0};
        cdc_tz_t *z;
        /* an exact-size copy, so reading past n is an ASan error */
        cp = cdc_xmalloc(n + 1);
        memcpy(cp, buf, n);
        z = cdc_tz_parse("x", cp, n, &err);
        if (z) {
            ok++;
            cdc_tz_free(z);
        } else {
            rejected++;
            T_ASSERT(strstr(err.msg, "time zone 'x'") != NULL);
        }
        free(cp);
    }
    /* v2 files need the 64-bit part and the footer: every cut fails */
    T_EQ_INT(ok, 0);
    T_EQ_INT(rejected, (int)len);
    for (int i = 0; i < 3000; i++) {
        cdc_err_t err = {0};
        cdc_tz_t *z;
        cp = cdc_xmalloc(len);
        memcpy(cp, buf, len);
        for (int k = 0; k < 1 + (int)cdc_test_rand(4); k++)
            cp[cdc_test_rand((uint32_t)len)] = (unsigned char)cdc_test_rand(256);
        z = cdc_tz_parse("x", cp, len, &err);
        if (z) {
            for (int k = 0; k < 20; k++) {
                int64_t l = (int64_t)cdc_test_rand(1u << 31) * 4 - (1LL << 32);
                (void)cdc_tz_to_utc(z, l);
            }
            cdc_tz_free(z);
        }
        free(cp);
    }
    free(buf);
}

CDC_TEST(zone_names)
{
    cdc_err_t err = {0};
    int32_t off;
    cdc_tz_t *z;

    T_EQ_INT(cdc_tz_parse_offset("+05:45", &off), 0);
    T_EQ_INT(off, 5 * 3600 + 45 * 60);
    T_EQ_INT(cdc_tz_parse_offset("-14:00", &off), 0);
    T_EQ_INT(off, -14 * 3600);
    T_EQ_INT(cdc_tz_parse_offset("+15:00", &off), -1);
    T_EQ_INT(cdc_tz_parse_offset("+5:45", &off), -1);
    T_ASSERT(cdc_tz_load("../etc/passwd", &err) == NULL);
    T_ASSERT(strstr(err.msg, "bad time zone") != NULL);
    z = cdc_tz_load("Europe/Berln", &err);
    T_ASSERT(z == NULL);
    T_ASSERT(strstr(err.msg, "unknown time zone 'Europe/Berln'") != NULL);
    T_ASSERT(strstr(err.hint, "tzdata") != NULL);
    z = cdc_tz_load("Z", &err);
    T_ASSERT(z != NULL);
    if (z)
        T_EQ_INT(cdc_tz_to_utc(z, 1000), 1000);
    cdc_tz_free(z);
}

CDC_TEST_MAIN()
