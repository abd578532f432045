/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_pgoutput.c - libFuzzer target for the pgoutput decoder, and (built
 * with -DCDC_FUZZ_REPLAY_MAIN) a standalone main that replays the corpus
 * in tests/fuzz/corpus/pgoutput during `make check` (SQLite fuzzcheck
 * style).
 *
 * Input format: byte 0 selects the protocol version (even: 1, odd: 2);
 * then frames of [u16 big-endian length][message bytes], each fed to one
 * decoder as a separate pgoutput message with a growing fake LSN.  A
 * final frame whose length runs past the end is fed truncated.  The
 * decoder must return 0, 1 or -1 and never crash, hang or leak; every
 * returned transaction is rendered to envelopes to exercise the values.
 *
 * Debug one input:  ./fuzz_pgoutput_replay path/to/file
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/envelope.h"
#include "cdc/log.h"
#include "connectors/pg/pgoutput_decode.h"

static int fuzz_resolve(void *opaque, uint32_t oid, cdc_pg_typeinfo_t *ti)
{
    (void)opaque;
    memset(ti, 0, sizeof(*ti));
    /* A deterministic universe of custom types keyed by the oid. */
    switch (oid % 5) {
    case 0: ti->typtype = 'e'; return 0;                     /* enum */
    case 1: ti->typtype = 'd'; ti->basetype = oid % 3 ? 20 : oid - 1;
        return 0;                                           /* domain */
    case 2: ti->typcategory = 'A'; ti->typtype = 'b';
        ti->elemtype = oid - 2; return 0;                   /* array */
    case 3: ti->typtype = 'c'; return 0;
    }
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cdc_pgoutput_opts_t o = {.resolve_type = fuzz_resolve};
    cdc_pgoutput_t *d;
    cdc_buf_t out = CDC_BUF_INIT;
    cdc_env_opts_t eo = {.format = CDC_FMT_AUTOGLM, .application_id = "fuzz"};
    size_t off = 1;
    uint64_t lsn = 0x1000000;

    if (size < 1)
        return 0;
    d = cdc_pgoutput_new(&o, (data[0] & 1) ? 2 : 1);
    while (off + 2 <= size) {
        size_t n = (size_t)data[off] << 8 | data[off + 1];
        off += 2;
        if (n > size - off)
            n = size - off;
        cdc_txn_t *tx = NULL;
        cdc_err_t err;
        int rc = cdc_pgoutput_feed(d, data + off, n, lsn, &tx, &err);
        if (rc == 1) {
            for (uint32_t i = 0; i < tx->nchanges; i++) {
                cdc_buf_reset(&out);
                cdc_envelope_write(&out, &eo, tx, &tx->changes[i]);
                cdc_envelope_key(&out, &tx->changes[i]);
            }
            cdc_txn_destroy(tx);
        } else if (rc != 0 && rc != -1) {
            abort();
        } else if (tx) {
            abort(); /* no txn may be handed out without rc 1 */
        }
        off += n;
        lsn += n + 1;
    }
    cdc_buf_free(&out);
    cdc_pgoutput_destroy(d);
    return 0;
}

#ifdef CDC_FUZZ_REPLAY_MAIN
#include <dirent.h>

static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;

    if (!fp)
        return -1;
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
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
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
    snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/pgoutput",
             top ? top : ".");
    DIR *dp = opendir(dir);
    if (!dp) {
        printf("1..0 # SKIP no corpus at %s\n", dir);
        return 0;
    }
    struct dirent *de;
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
