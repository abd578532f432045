/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_gtid_set.c - libFuzzer target for the MySQL GTID set codec
 * (connectors/mysql/gtid_set.h), and (built with -DCDC_FUZZ_REPLAY_MAIN)
 * a standalone main that replays tests/fuzz/corpus/gtid_set during
 * `make check`.
 *
 * Input, byte 0 = mode:
 *   even: the rest is a binary GTID set (PREVIOUS_GTIDS body /
 *         COM_BINLOG_DUMP_GTID data) for cdc_gtid_set_decode();
 *   odd:  the rest is a GTID set text for cdc_gtid_set_norm().
 * Whatever is accepted must survive a round trip unchanged: its canonical
 * text encodes to bytes that decode to the same text, the text is a fixed
 * point of norm(), and encoding is deterministic.  A violation aborts
 * (a crash for libFuzzer, a failed test for the replay).
 *
 * Debug one input:  ./fuzz_gtid_set_replay path/to/file
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/buf.h"
#include "cdc/log.h"
#include "connectors/mysql/gtid_set.h"

static void check_round_trip(const char *text)
{
    cdc_buf_t enc = CDC_BUF_INIT, enc2 = CDC_BUF_INIT, dec = CDC_BUF_INIT,
              norm = CDC_BUF_INIT;
    cdc_err_t err;

    if (cdc_gtid_set_norm(text, &norm, &err) < 0 || strcmp(norm.p ? norm.p : "", text))
        abort(); /* a canonical text is its own canonical form */
    if (cdc_gtid_set_encode(text, &enc, &err) == 0) {
        if (cdc_gtid_set_decode((const uint8_t *)enc.p, enc.len, &dec,
                                &err) < 0 ||
            strcmp(dec.p ? dec.p : "", text))
            abort();
        if (cdc_gtid_set_encode(text, &enc2, &err) < 0 ||
            enc2.len != enc.len || memcmp(enc.p, enc2.p, enc.len))
            abort();
        /* every shorter prefix is refused: lengths are checked */
        for (size_t n = 0; n < enc.len; n += 1 + n / 8)
            if (cdc_gtid_set_decode((const uint8_t *)enc.p, n, &dec, &err) == 0)
                abort();
    }
    cdc_buf_free(&enc);
    cdc_buf_free(&enc2);
    cdc_buf_free(&dec);
    cdc_buf_free(&norm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cdc_buf_t out = CDC_BUF_INIT;
    cdc_err_t err;

    if (size < 1)
        return 0;
    if (data[0] & 1) {
        char *t = malloc(size);
        if (!t)
            abort();
        memcpy(t, data + 1, size - 1);
        t[size - 1] = '\0';
        if (cdc_gtid_set_norm(t, &out, &err) == 0)
            check_round_trip(out.p ? out.p : "");
        free(t);
    } else if (cdc_gtid_set_decode(data + 1, size - 1, &out, &err) == 0) {
        check_round_trip(out.p ? out.p : "");
    }
    cdc_buf_free(&out);
    return 0;
}

#ifdef CDC_FUZZ_REPLAY_MAIN
#include <dirent.h>

static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    uint8_t buf[65536];
    size_t n;

    if (!fp)
        return -1;
    n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, n);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    char dir[4096];
    const char *top = getenv("top_srcdir");
    char **names = NULL;
    int nn = 0, fails = 0;
    struct dirent *de;
    DIR *dp;

    cdc_log_set_level(CDC_LOG_ERROR);
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            if (replay_file(argv[i]) < 0) {
                perror(argv[i]);
                return 1;
            }
        printf("replayed %d files\n", argc - 1);
        return 0;
    }
    snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/gtid_set",
             top ? top : ".");
    dp = opendir(dir);
    if (!dp) {
        printf("1..0 # SKIP no corpus at %s\n", dir);
        return 0;
    }
    while ((de = readdir(dp)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        names = realloc(names, (size_t)(nn + 1) * sizeof(*names));
        names[nn++] = strdup(de->d_name);
    }
    closedir(dp);
    qsort(names, (size_t)nn, sizeof(*names), cmp);
    printf("1..%d\n", nn);
    for (int i = 0; i < nn; i++) {
        char path[8192];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        int rc = replay_file(path);
        printf("%sok %d - %s\n", rc ? "not " : "", i + 1, names[i]);
        fails += rc != 0;
        free(names[i]);
    }
    free(names);
    return fails ? 1 : 0;
}
#endif
