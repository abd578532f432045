/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_backfill.c - hermetic tests of the backfill helpers: progress file
 * round trip and torn-file refusal, pacing, ETA text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdc/backfill.h"
#include "tests/unit/cdc_test.h"

static char dir[64];

static void mkdir_tmp(void)
{
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/t_backfill.XXXXXX");
        if (!mkdtemp(dir))
            abort();
    }
}

CDC_TEST(progress_roundtrip)
{
    cdc_bf_prog_t p = {0}, q;
    cdc_err_t err = {0};
    char *path;

    mkdir_tmp();
    path = cdc_backfill_prog_path(dir, "pl");
    snprintf(p.mode, sizeof(p.mode), "incremental");
    snprintf(p.run, sizeof(p.run), "bf123");
    cdc_bf_tprog_t *a = cdc_backfill_prog_table(&p, "db.a");
    a->key = strdup("i42,s6162");
    a->rows = 10;
    a->chunks = 2;
    cdc_bf_tprog_t *b = cdc_backfill_prog_table(&p, "db.b");
    b->done = 1;
    b->rows = 7;
    T_EQ_INT(cdc_backfill_prog_store(path, &p, &err), 0);
    T_EQ_INT(cdc_backfill_prog_load(path, &q, &err), 1);
    T_EQ_INT(q.n, 2);
    T_EQ_STR(q.mode, "incremental");
    T_EQ_STR(q.run, "bf123");
    T_EQ_STR(q.t[0].name, "db.a");
    T_EQ_STR(q.t[0].key, "i42,s6162");
    T_EQ_INT(q.t[0].rows, 10);
    T_EQ_INT(q.t[0].chunks, 2);
    T_EQ_INT(q.t[0].done, 0);
    T_ASSERT(q.t[1].key == NULL);
    T_EQ_INT(q.t[1].done, 1);
    T_EQ_INT(q.t[1].rows, 7);
    cdc_backfill_prog_free(&p);
    cdc_backfill_prog_free(&q);
    free(path);
}

CDC_TEST(progress_torn_and_missing)
{
    cdc_bf_prog_t q;
    cdc_err_t err = {0};
    char path[128];
    FILE *fp;

    mkdir_tmp();
    snprintf(path, sizeof(path), "%s/none.backfill", dir);
    T_EQ_INT(cdc_backfill_prog_load(path, &q, &err), 0);
    snprintf(path, sizeof(path), "%s/torn.backfill", dir);
    fp = fopen(path, "w");
    fputs("autoglm-cdc-backfill 1\nmode initial\ntable db.a 0 1 1 i1\n", fp);
    fclose(fp);
    T_EQ_INT(cdc_backfill_prog_load(path, &q, &err), -1);
    T_ASSERT(strstr(err.msg, "damaged") != NULL);
    fp = fopen(path, "w");
    fputs("something else\nend\n", fp);
    fclose(fp);
    T_EQ_INT(cdc_backfill_prog_load(path, &q, &err), -1);
}

CDC_TEST(pacing)
{
    /* no limit */
    T_EQ_INT(cdc_backfill_pace_us(0, 0, 1000, 0), 0);
    /* 1000 rows at 1000 rows/s: due at 1 s */
    T_EQ_INT(cdc_backfill_pace_us(0, 0, 1000, 1000), 1000000);
    T_EQ_INT(cdc_backfill_pace_us(1000, 1500000, 1000, 1000), 500000);
    /* behind schedule: go now */
    T_EQ_INT(cdc_backfill_pace_us(1000, 5000000, 1000, 1000), 0);
}

CDC_TEST(eta_text)
{
    char b[32];
    cdc_backfill_fmt_eta(b, sizeof(b), 12.2);
    T_EQ_STR(b, "12s");
    cdc_backfill_fmt_eta(b, sizeof(b), 185);
    T_EQ_STR(b, "3m05s");
    cdc_backfill_fmt_eta(b, sizeof(b), 3720);
    T_EQ_STR(b, "1h02m");
    cdc_backfill_fmt_eta(b, sizeof(b), -1);
    T_EQ_STR(b, "0s");
}

CDC_TEST_MAIN()
