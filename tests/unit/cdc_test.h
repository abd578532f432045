/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cdc_test.h - a tiny TAP harness for the C unit tests.
 *
 *   CDC_TEST(name) { T_ASSERT(x); T_EQ_INT(a, b); T_EQ_STR(a, b); }
 *   int main(void) { return cdc_test_run(); }    // or CDC_TEST_MAIN()
 *
 * Each test prints "ok N - name" or "not ok N - name" with the failed
 * assertions as "# file:line: ..." diagnostics; automake's tap-driver.sh
 * reads the stream.
 */
#ifndef CDC_TEST_H
#define CDC_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*cdc_test_fn)(void);
struct cdc_test_ent { const char *name; cdc_test_fn fn; };
static struct cdc_test_ent cdc_tests_[512];
static int cdc_ntests_;
static int cdc_test_failed_;

#define CDC_TEST(tn_)                                                    \
    static void t_##tn_(void);                                           \
    __attribute__((constructor)) static void reg_##tn_(void)             \
    {                                                                    \
        cdc_tests_[cdc_ntests_].name = #tn_;                             \
        cdc_tests_[cdc_ntests_++].fn = t_##tn_;                          \
    }                                                                    \
    static void t_##tn_(void)

#define T_FAIL_(...)                                                     \
    do {                                                                 \
        printf("# %s:%d: ", __FILE__, __LINE__);                         \
        printf(__VA_ARGS__);                                             \
        printf("\n");                                                    \
        cdc_test_failed_ = 1;                                            \
    } while (0)

#define T_ASSERT(x)                                                      \
    do { if (!(x)) T_FAIL_("assertion failed: %s", #x); } while (0)
#define T_EQ_INT(a, b)                                                   \
    do {                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);              \
        if (a_ != b_) T_FAIL_("%s == %lld, expected %s == %lld", #a, a_, \
                              #b, b_);                                   \
    } while (0)
#define T_EQ_STR(a, b)                                                   \
    do {                                                                 \
        const char *a_ = (a), *b_ = (b);                                 \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                           \
            T_FAIL_("%s == \"%s\"\n#   expected \"%s\"", #a,             \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");             \
    } while (0)

static inline int cdc_test_run(void)
{
    int fails = 0;
    printf("1..%d\n", cdc_ntests_);
    for (int i = 0; i < cdc_ntests_; i++) {
        cdc_test_failed_ = 0;
        cdc_tests_[i].fn();
        printf("%sok %d - %s\n", cdc_test_failed_ ? "not " : "", i + 1,
               cdc_tests_[i].name);
        fflush(stdout);
        fails += cdc_test_failed_;
    }
    return fails ? 1 : 0;
}
#define CDC_TEST_MAIN() int main(void) { return cdc_test_run(); }

/* A fixed-seed xorshift64 for generated tests: 0 .. n-1, reproducible. */
static uint64_t cdc_test_rng_ = 0x9E3779B97F4A7C15ULL;
static inline uint32_t cdc_test_rand(uint32_t n)
{
    cdc_test_rng_ ^= cdc_test_rng_ << 13;
    cdc_test_rng_ ^= cdc_test_rng_ >> 7;
    cdc_test_rng_ ^= cdc_test_rng_ << 17;
    return (uint32_t)(cdc_test_rng_ % n);
}

/* The fixture tree: $CDC_FIXTURES when set, else $CDC_FIXTURES_DEFAULT
 * (make check: beside the source tree), else ../shared/fixtures. */
#include <sys/stat.h>
static inline const char *cdc_test_fixtures(void)
{
    const char *f = getenv("CDC_FIXTURES");
    if (!f || !*f)
        f = getenv("CDC_FIXTURES_DEFAULT");
    return f && *f ? f : "../shared/fixtures";
}

/* For tests that read the fixtures: skip (TAP "1..0 # SKIP") when
 * <fixtures>/binlog is not there, e.g. in a release tarball; but when
 * CDC_FIXTURES names them, their absence is a failure (Bail out!). */
static inline int cdc_test_have_fixtures(void)
{
    const char *set = getenv("CDC_FIXTURES");
    char p[4096];
    struct stat st;
    snprintf(p, sizeof(p), "%s/binlog", cdc_test_fixtures());
    if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
        return 1;
    if (set && *set) {
        printf("Bail out! CDC_FIXTURES=%s has no binlog/ directory\n", set);
        exit(1);
    }
    printf("1..0 # SKIP fixtures not found at %s (set CDC_FIXTURES)\n", p);
    return 0;
}
#define CDC_TEST_MAIN_FIXTURES()                                           \
    int main(void)                                                       \
    {                                                                    \
        return cdc_test_have_fixtures() ? cdc_test_run() : 0;            \
    }

#endif
