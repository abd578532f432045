/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map_pg_bench.c - changes per second through the mapping engine and the
 * PostgreSQL wide sink.
 *
 *   map_pg_bench DSN MAPPING.yaml [CHANGES] [ROWS_PER_TXN]
 *
 * Generates CHANGES synthetic crm.customers changes (inserts of KEYS
 * distinct customers, then updates of random ones; KEYS = CHANGES/4) in
 * transactions of ROWS_PER_TXN rows, feeds them to the postgres sink as
 * the pipeline would (write, poll, flush) and prints the rate.  The
 * target table is dropped first.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <libpq-fe.h>

#include "cdc/buf.h"
#include "cdc/conf.h"
#include "cdc/log.h"
#include "cdc/plugin.h"

extern const cdc_sink_ops_t cdc_sink_postgres_ops;

static int64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static const char *const cols[] = {"id", "first_name", "last_name", "email",
                                   "is_active", "created_at", "tier_id",
                                   "credit_limit"};

static void str(cdc_txn_t *tx, cdc_value_t *v, const char *s)
{
    v->kind = CDC_V_STRING;
    v->len = strlen(s);
    v->s = cdc_arena_memdup(&tx->arena, s, v->len);
}

/* The baselines, in the same run: PostgreSQL's own batched ingest of the
 * same change stream (same keys, values and batch size) into a plain
 * table of the source's columns: COPY into a staging table, then one
 * INSERT ... ON CONFLICT DO UPDATE of every column (latest change of a
 * key per batch), one transaction per batch -- no mapping, no conflict
 * rules.  With prov, each row also carries a provenance object of the
 * size ours has (8 fields) merged with || on update: the same bytes
 * without the per-field rules.  Returns changes/s, or -1. */
static double baseline(const char *dsn, long n, long keys, int batch,
                       int prov)
{
    PGconn *pg = PQconnectdb(dsn);
    PGresult *r;
    char buf[256];
    int64_t t0, t1;
    long i = 0, seq = 0;
    cdc_buf_t data = CDC_BUF_INIT;
    int ok = PQstatus(pg) == CONNECTION_OK;

#define BQ(sql) do { r = PQexec(pg, sql); \
        ok = ok && (PQresultStatus(r) == PGRES_COMMAND_OK || \
                    PQresultStatus(r) == PGRES_COPY_IN); PQclear(r); } while (0)
    BQ("DROP TABLE IF EXISTS bench_baseline");
    BQ("CREATE TABLE bench_baseline (id bigint PRIMARY KEY, first_name text, "
       "last_name text, email text, is_active int, created_at timestamptz, "
       "tier_id bigint, credit_limit numeric(12,2), _provenance jsonb) "
       "WITH (fillfactor = 80)");
    BQ("CREATE TEMP TABLE bench_stage (seq bigint, id bigint, first_name "
       "text, last_name text, email text, is_active int, created_at "
       "timestamptz, tier_id bigint, credit_limit numeric(12,2), p jsonb) "
       "ON COMMIT DELETE ROWS");
    srand(1);
    t0 = now_us();
    while (ok && i < n) {
        BQ("BEGIN");
        BQ("COPY bench_stage FROM STDIN");
        cdc_buf_reset(&data);
        for (int k = 0; k < batch && i < n; k++, i++) {
            long id = i < keys ? i + 1 : 1 + rand() % keys;
            int len = snprintf(buf, sizeof(buf),
                               "%ld\t%ld\tFirst%ld\tLast\tu%ld@example.org\t%ld\t"
                               "2024-07-01 12:00:00\t%ld\t%ld.50\t", seq++, id,
                               i, id, i & 1, 1 + id % 3, i % 30000);
            cdc_buf_put(&data, buf, (size_t)len);
            if (!prov) {
                cdc_buf_puts(&data, "\\N\n");
                continue;
            }
            cdc_buf_putc(&data, '{');
            for (int f = 0; f < 8; f++)
                cdc_buf_printf(&data, "%s\"f%d\": {\"s\": \"crm\", \"t\": %ld, "
                               "\"r\": \"%016lx%048d\"}", f ? ", " : "", f,
                               1700000000000000L + i * 100, 
                               (unsigned long)(0x8006000000000000UL + (unsigned long)i), f);
            cdc_buf_puts(&data, "}\n");
        }
        ok = ok && PQputCopyData(pg, data.p, (int)data.len) == 1 &&
             PQputCopyEnd(pg, NULL) == 1;
        while ((r = PQgetResult(pg))) {
            ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
            PQclear(r);
        }
        BQ("INSERT INTO bench_baseline SELECT DISTINCT ON (id) id, first_name, "
           "last_name, email, is_active, created_at, tier_id, credit_limit, p "
           "FROM bench_stage ORDER BY id, seq DESC ON CONFLICT (id) DO UPDATE "
           "SET first_name = EXCLUDED.first_name, last_name = "
           "EXCLUDED.last_name, email = EXCLUDED.email, is_active = "
           "EXCLUDED.is_active, created_at = EXCLUDED.created_at, tier_id = "
           "EXCLUDED.tier_id, credit_limit = EXCLUDED.credit_limit, "
           "_provenance = bench_baseline._provenance || EXCLUDED._provenance");
        BQ("COMMIT");
    }
    t1 = now_us();
#undef BQ
    if (!ok)
        fprintf(stderr, "baseline: %s", PQerrorMessage(pg));
    PQclear(PQexec(pg, "DROP TABLE IF EXISTS bench_baseline"));
    PQfinish(pg);
    cdc_buf_free(&data);
    return ok ? (double)n / ((double)(t1 - t0) / 1e6) : -1;
}

int main(int argc, char **argv)
{
    cdc_err_t err = {0};
    cdc_conf_t *conf = cdc_conf_new();
    const cdc_sink_ops_t *ops = &cdc_sink_postgres_ops;
    long n = argc > 3 ? atol(argv[3]) : 1000000;
    int per = argc > 4 ? atoi(argv[4]) : 10;
    long keys = n / 4 > 0 ? n / 4 : 1;
    cdc_txn_t **held;
    size_t nheld = 0;
    cdc_table_t *t;
    cdc_sink_t *snk;
    int64_t t0, t1;
    uint64_t off = 4;

    if (argc < 3) {
        fprintf(stderr, "usage: map_pg_bench DSN MAPPING.yaml [CHANGES] "
                        "[ROWS_PER_TXN]\n");
        return 2;
    }
    {
        PGconn *pg = PQconnectdb(argv[1]);
        PGresult *r = PQexec(pg, "DROP TABLE IF EXISTS customer_wide; DELETE "
                                 "FROM autoglm_cdc_offsets WHERE pipeline = "
                                 "'bench'");
        PQclear(r);
        PQfinish(pg);
    }
    cdc_conf_set(conf, "postgres_sink.dsn", argv[1], NULL);
    cdc_conf_set(conf, "mapping.files", argv[2], NULL);
    cdc_conf_set(conf, "pipeline.name", "bench", NULL);
    cdc_conf_set(conf, "application_id", "crm", NULL);
    if (getenv("BENCH_BATCH_ROWS"))
        cdc_conf_set(conf, "postgres_sink.batch_rows", getenv("BENCH_BATCH_ROWS"),
                     NULL);
    if (getenv("BENCH_FILLFACTOR"))
        cdc_conf_set(conf, "postgres_sink.fillfactor", getenv("BENCH_FILLFACTOR"),
                     NULL);
    if (getenv("BENCH_DEBUG"))
        cdc_log_set_level(CDC_LOG_DEBUG);
    snk = ops->create(conf, &err);
    if (!snk) {
        fprintf(stderr, "create: %s\n", err.msg);
        return 1;
    }
    t = cdc_table_new("crm", "customers", 8);
    for (int i = 0; i < 8; i++)
        t->cols[i].name = strdup(cols[i]);
    held = calloc((size_t)(n / per + 2), sizeof(*held));
    srand(1);
    t0 = now_us();
    for (long i = 0; i < n;) {
        cdc_txn_t *tx = cdc_txn_new();
        tx->commit_us = 1700000000000000LL + i * 1000;
        snprintf(tx->pos.file, sizeof(tx->pos.file), "mysql-bin.000001");
        for (int k = 0; k < per && i < n; k++, i++) {
            long id = i < keys ? i + 1 : 1 + rand() % keys;
            cdc_change_t *ch = cdc_txn_add(tx, i < keys ? 'c' : 'u', t);
            cdc_value_t *a = cdc_txn_values(tx, 8);
            char buf[64];
            a[0].kind = CDC_V_INT;
            a[0].u.i = id;
            snprintf(buf, sizeof(buf), "First%ld", i);
            str(tx, &a[1], buf);
            str(tx, &a[2], "Last");
            snprintf(buf, sizeof(buf), "u%ld@example.org", id);
            str(tx, &a[3], buf);
            a[4].kind = CDC_V_INT;
            a[4].u.i = i & 1;
            str(tx, &a[5], "2024-07-01 12:00:00");
            a[6].kind = CDC_V_INT;
            a[6].u.i = 1 + id % 3;
            a[7].kind = CDC_V_DECIMAL;
            snprintf(buf, sizeof(buf), "%ld.50", i % 30000);
            a[7].len = strlen(buf);
            a[7].s = cdc_arena_memdup(&tx->arena, buf, a[7].len);
            ch->after = a;
            ch->pos = off;
            ch->row = (uint32_t)k;
        }
        tx->pos.offset = ++off;
        if (ops->write(snk, tx, &err) || ops->poll(snk, 0, &err)) {
            fprintf(stderr, "write: %s\n", err.msg);
            return 1;
        }
        held[nheld++] = tx;
        /* free what is delivered (the pipeline does this in order) */
        if (nheld > 20000) {
            size_t j = 0;
            for (size_t q = 0; q < nheld; q++)
                if (held[q]->pending)
                    held[j++] = held[q];
                else
                    cdc_txn_destroy(held[q]);
            nheld = j;
        }
    }
    if (ops->flush(snk, 60000, &err)) {
        fprintf(stderr, "flush: %s\n", err.msg);
        return 1;
    }
    t1 = now_us();
    printf("map_pg_bench: %ld changes (%ld keys, %d per txn) in %.2f s = "
           "%.0f changes/s\n", n, keys, per, (double)(t1 - t0) / 1e6,
           (double)n / ((double)(t1 - t0) / 1e6));
    for (size_t q = 0; q < nheld; q++)
        cdc_txn_destroy(held[q]);
    free(held);
    ops->destroy(snk);
    if (!getenv("BENCH_NO_BASELINE")) {
        double ours = (double)n / ((double)(t1 - t0) / 1e6);
        double plain = baseline(argv[1], n, keys, 20000, 0);
        double withp = baseline(argv[1], n, keys, 20000, 1);
        if (plain > 0 && withp > 0)
            printf("map_pg_bench: baselines, PostgreSQL's batched upsert of "
                   "the same changes (COPY + INSERT ON CONFLICT, 20000 per "
                   "txn, no rules): plain columns %.0f changes/s, with a "
                   "provenance object as large as ours %.0f changes/s; ours "
                   "= %.2fx / %.2fx (target >= 50000 changes/s)\n", plain,
                   withp, ours / plain, ours / withp);
    }
    cdc_table_destroy(t);
    cdc_conf_destroy(conf);
    return 0;
}
