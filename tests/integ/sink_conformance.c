/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sink_conformance.c - the same workload through any sink's ops table,
 * for tests/integ/t_sink_conformance.py.
 *
 *   sink_conformance --sink NAME --txns N --keys K [--seed S] [--rate R]
 *                    [-X key=value ...]
 *
 * A generator source feeds cdc_pipeline_run() (the real pipeline: batching,
 * acknowledgements, checkpoints in state.dir, resume) with N transactions
 * of 1-3 changes on table conf.t (id INT key, v INT, note TEXT).  Per key
 * the values of v are 1, 2, 3, ... (an insert, then updates), note is
 * "k<id> v<v>", and transaction i sits at position gen-bin.000001:i with
 * commit time 1700000000 s + i ms.  The workload is a function of the seed
 * alone, so a run killed with SIGKILL resumes from its checkpoint and
 * produces exactly the transactions that follow, and the test knows what
 * every key must end with:
 *
 *   sink_conformance --txns N --keys K --seed S --expect
 *
 * prints "KEY LAST_V COMMIT_US" per key (the commit time of the key's last
 * change) and "changes TOTAL".  --rate paces the source (transactions per
 * second) so that kills and outages land mid-run.  Exit: the pipeline's
 * (0 when all N were delivered, 69 sink unavailable, ...), 2 usage.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cdc/change.h"
#include "cdc/checkpoint.h"
#include "cdc/conf.h"
#include "cdc/err.h"
#include "cdc/log.h"
#include "cdc/pipeline.h"
#include "cdc/plugin.h"

#define GEN_FILE "gen-bin.000001"
#define GEN_T0_US 1700000000000000LL

/* The workload: change j of the flat arrays belongs to transaction
 * txn_of[j]; first[i] indexes the first change of transaction i (1-based,
 * first[N + 1] is the end). */
typedef struct workload {
    int ntxns, nkeys;
    int *first;
    int *key;   /* per change */
    int *val;   /* per change: v after it */
} workload_t;

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void workload_build(workload_t *w, int ntxns, int nkeys, uint64_t seed)
{
    uint64_t s = seed ? seed : 1;
    int *last = calloc((size_t)nkeys + 1, sizeof(int));
    int cap = ntxns * 3, n = 0;

    w->ntxns = ntxns;
    w->nkeys = nkeys;
    w->first = calloc((size_t)ntxns + 2, sizeof(int));
    w->key = calloc((size_t)cap, sizeof(int));
    w->val = calloc((size_t)cap, sizeof(int));
    for (int i = 1; i <= ntxns; i++) {
        int c = 1 + (int)(rng_next(&s) % 3);
        w->first[i] = n;
        for (int j = 0; j < c && j < nkeys; j++) {
            int k, dup;
            do { /* distinct keys within a transaction */
                k = 1 + (int)(rng_next(&s) % (uint64_t)nkeys);
                dup = 0;
                for (int q = w->first[i]; q < n; q++)
                    dup |= w->key[q] == k;
            } while (dup);
            w->key[n] = k;
            w->val[n] = ++last[k];
            n++;
        }
    }
    w->first[ntxns + 1] = n;
    free(last);
}

static void workload_free(workload_t *w)
{
    free(w->first);
    free(w->key);
    free(w->val);
}

/* ---- the generator source ---------------------------------------------- */

typedef struct gen_source {
    cdc_source_t base;
    const workload_t *w;
    cdc_table_t *tbl;
    int next;          /* next transaction to hand out */
    double rate;       /* transactions per second, 0: unpaced */
    int64_t start_us;  /* when pacing started */
    int started_at;    /* the first transaction of this run */
} gen_source_t;

static const workload_t *g_work;
static double g_rate;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static cdc_source_t *gen_create(const cdc_conf_t *conf, cdc_err_t *err)
{
    gen_source_t *g = cdc_xcalloc(1, sizeof(*g));
    (void)conf;
    (void)err;
    g->w = g_work;
    g->rate = g_rate;
    g->tbl = cdc_table_new("conf", "t", 3);
    g->tbl->cols[0].name = cdc_xstrdup("id");
    g->tbl->cols[0].flags = CDC_COL_PK;
    g->tbl->cols[1].name = cdc_xstrdup("v");
    g->tbl->cols[2].name = cdc_xstrdup("note");
    g->tbl->npk = 1;
    g->tbl->pk = cdc_xcalloc(1, sizeof(uint32_t));
    return &g->base;
}

static int gen_start(cdc_source_t *src, const cdc_pos_t *resume,
                     cdc_err_t *err)
{
    gen_source_t *g = (gen_source_t *)src;

    if (resume && strcmp(resume->file, GEN_FILE)) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "checkpoint %s is not a generator position",
                    cdc_pos_str(resume));
        return -1;
    }
    g->next = resume ? (int)resume->offset + 1 : 1;
    g->started_at = g->next;
    g->start_us = now_us();
    fprintf(stderr, "sink_conformance: source starts at transaction %d\n",
            g->next);
    return 0;
}

static cdc_value_t *row(cdc_txn_t *tx, int key, int v)
{
    cdc_value_t *r = cdc_txn_values(tx, 3);
    char note[48];
    int n = snprintf(note, sizeof(note), "k%d v%d", key, v);

    r[0].kind = CDC_V_INT;
    r[0].u.i = key;
    r[1].kind = CDC_V_INT;
    r[1].u.i = v;
    r[2].kind = CDC_V_STRING;
    r[2].s = cdc_arena_memdup(&tx->arena, note, (size_t)n);
    r[2].len = (size_t)n;
    return r;
}

static int gen_next(cdc_source_t *src, cdc_txn_t **out, int timeout_ms,
                    cdc_err_t *err)
{
    gen_source_t *g = (gen_source_t *)src;
    const workload_t *w = g->w;
    cdc_txn_t *tx;
    int i = g->next;

    (void)err;
    if (i > w->ntxns)
        return CDC_SRC_EOF;
    if (g->rate > 0) {
        int64_t due = g->start_us +
                      (int64_t)((i - g->started_at) * 1e6 / g->rate);
        int64_t wait = due - now_us();
        if (wait > 0) {
            if (wait > (int64_t)timeout_ms * 1000) {
                usleep((useconds_t)timeout_ms * 1000);
                return CDC_SRC_IDLE;
            }
            usleep((useconds_t)wait);
        }
    }
    tx = cdc_txn_new();
    tx->connector = "mariadb";
    tx->server_id = 1;
    tx->commit_us = GEN_T0_US + (int64_t)i * 1000;
    tx->xid = (uint64_t)i;
    snprintf(tx->gtid, sizeof(tx->gtid), "0-1-%d", i);
    tx->file = cdc_arena_memdup(&tx->arena, GEN_FILE, sizeof(GEN_FILE));
    snprintf(tx->pos.file, sizeof(tx->pos.file), "%s", GEN_FILE);
    tx->pos.offset = (uint64_t)i;
    for (int j = w->first[i]; j < w->first[i + 1]; j++) {
        int v = w->val[j];
        cdc_change_t *ch = cdc_txn_add(
            tx, v == 1 ? CDC_OP_CREATE : CDC_OP_UPDATE, g->tbl);
        ch->before = v == 1 ? NULL : row(tx, w->key[j], v - 1);
        ch->after = row(tx, w->key[j], v);
        ch->pos = (uint64_t)i;
        ch->row = (uint32_t)(j - w->first[i]);
    }
    g->next++;
    *out = tx;
    return CDC_SRC_TXN;
}

static void gen_destroy(cdc_source_t *src)
{
    gen_source_t *g = (gen_source_t *)src;
    cdc_table_destroy(g->tbl);
    free(g);
}

static const cdc_source_ops_t gen_ops = {
    .name = "generator",
    .abi = CDC_PLUGIN_ABI,
    .create = gen_create,
    .start = gen_start,
    .next = gen_next,
    .destroy = gen_destroy,
};

/* ---- main ------------------------------------------------------------- */

static void usage(const char *me)
{
    fprintf(stderr,
            "usage: %s --sink NAME --txns N --keys K [--seed S] [--rate R] "
            "[-X key=value ...]\n"
            "       %s --txns N --keys K [--seed S] --expect\n",
            me, me);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"sink", required_argument, NULL, 's'},
        {"txns", required_argument, NULL, 'n'},
        {"keys", required_argument, NULL, 'k'},
        {"seed", required_argument, NULL, 'S'},
        {"rate", required_argument, NULL, 'r'},
        {"expect", no_argument, NULL, 'e'},
        {NULL, 0, NULL, 0},
    };
    const char *sink = NULL;
    int ntxns = 0, nkeys = 0, expect = 0, opt, rc;
    uint64_t seed = 1;
    cdc_conf_t *conf = cdc_conf_new();
    cdc_err_t err = {0};
    workload_t w;

    while ((opt = getopt_long(argc, argv, "X:", opts, NULL)) != -1) {
        switch (opt) {
        case 's': sink = optarg; break;
        case 'n': ntxns = atoi(optarg); break;
        case 'k': nkeys = atoi(optarg); break;
        case 'S': seed = strtoull(optarg, NULL, 10); break;
        case 'r': g_rate = atof(optarg); break;
        case 'e': expect = 1; break;
        case 'X': {
            char *eq = strchr(optarg, '=');
            if (!eq) {
                usage(argv[0]);
                return 2;
            }
            *eq = '\0';
            cdc_conf_set(conf, optarg, eq + 1, "cli");
            break;
        }
        default:
            usage(argv[0]);
            return 2;
        }
    }
    if (ntxns < 1 || nkeys < 1 || (!expect && !sink)) {
        usage(argv[0]);
        return 2;
    }
    workload_build(&w, ntxns, nkeys, seed);
    if (expect) {
        int64_t *at = calloc((size_t)nkeys + 1, sizeof(int64_t));
        int *last = calloc((size_t)nkeys + 1, sizeof(int));
        for (int i = 1; i <= ntxns; i++)
            for (int j = w.first[i]; j < w.first[i + 1]; j++) {
                last[w.key[j]] = w.val[j];
                at[w.key[j]] = GEN_T0_US + (int64_t)i * 1000;
            }
        for (int k = 1; k <= nkeys; k++)
            if (last[k])
                printf("%d %d %lld\n", k, last[k], (long long)at[k]);
        printf("changes %d\n", w.first[ntxns + 1]);
        free(at);
        free(last);
        workload_free(&w);
        cdc_conf_destroy(conf);
        return 0;
    }
    const cdc_sink_ops_t *kops = cdc_sink_find(sink);
    if (!kops) {
        fprintf(stderr, "no sink %s (have: %s)\n", sink, cdc_sink_names());
        return 2;
    }
    cdc_conf_set(conf, "source.type", "mysql", "default");
    g_work = &w;
    rc = cdc_pipeline_run(conf, &gen_ops, kops, &err);
    if (rc)
        cdc_err_print(&err);
    workload_free(&w);
    cdc_conf_destroy(conf);
    return rc;
}
