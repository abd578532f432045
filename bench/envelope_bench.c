/* SPDX-License-Identifier: Apache-2.0 */
/*
 * envelope_bench.c - cost of one envelope: our writer vs yajl_gen.
 *
 * Both produce the same autoglm envelope for the benchmark row shape of
 * docs/PERFORMANCE.md (bigint pk, 3 ints, varchar(32), decimal(12,2),
 * char(3), 2 x datetime(6), varchar(255), JSON).  Prints ns per envelope
 * and the ratio.  Run by `make bench`; not a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_gen.h>

#include "cdc/envelope.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void ystr(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void yval(yajl_gen g, const cdc_value_t *v)
{
    char tmp[32];
    switch (v->kind) {
    case CDC_V_INT:
        yajl_gen_integer(g, v->u.i);
        break;
    case CDC_V_UINT:
        snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v->u.u);
        yajl_gen_number(g, tmp, strlen(tmp));
        break;
    case CDC_V_JSON:
        yajl_gen_number(g, v->s, v->len); /* verbatim, like ours */
        break;
    case CDC_V_NULL:
        yajl_gen_null(g);
        break;
    default:
        yajl_gen_string(g, (const unsigned char *)v->s, v->len);
    }
}

static void yajl_envelope(yajl_gen g, const cdc_txn_t *tx,
                          const cdc_change_t *ch)
{
    const cdc_table_t *t = ch->tbl;
    char ts[64], num[32];
    cdc_buf_t b = CDC_BUF_INIT;

    cdc_json_iso_ms(&b, tx->commit_us);
    snprintf(ts, sizeof(ts), "%s", b.p);
    cdc_buf_free(&b);
    yajl_gen_map_open(g);
    ystr(g, "application_id"); ystr(g, "bench");
    ystr(g, "timestamp"); ystr(g, ts);
    ystr(g, "version"); yajl_gen_integer(g, 1);
    ystr(g, "payload");
    yajl_gen_map_open(g);
    ystr(g, "op"); ystr(g, "c");
    ystr(g, "key");
    yajl_gen_map_open(g);
    ystr(g, t->cols[0].name); yval(g, &ch->after[0]);
    yajl_gen_map_close(g);
    ystr(g, "before"); yajl_gen_null(g);
    ystr(g, "after");
    yajl_gen_map_open(g);
    for (uint32_t i = 0; i < t->ncols; i++) {
        ystr(g, t->cols[i].name);
        yval(g, &ch->after[i]);
    }
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    ystr(g, "source");
    yajl_gen_map_open(g);
    ystr(g, "connector"); ystr(g, "mariadb");
    ystr(g, "server_id"); yajl_gen_integer(g, 1);
    ystr(g, "db"); ystr(g, t->db);
    ystr(g, "table"); ystr(g, t->name);
    ystr(g, "file"); ystr(g, tx->file);
    ystr(g, "pos"); yajl_gen_integer(g, (long long)ch->pos);
    ystr(g, "gtid"); ystr(g, tx->gtid);
    ystr(g, "row"); yajl_gen_integer(g, ch->row);
    snprintf(num, sizeof(num), "%lld", (long long)(tx->commit_us / 1000));
    ystr(g, "ts_ms"); yajl_gen_number(g, num, strlen(num));
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    const char *names[] = {"id", "customer_id", "qty", "status", "sku",
                           "amount", "currency", "created_at", "updated_at",
                           "note", "attrs"};
    cdc_table_t *t = cdc_table_new("bench", "orders", 11);
    cdc_txn_t *tx = cdc_txn_new();
    cdc_env_opts_t o = {.format = CDC_FMT_AUTOGLM, .application_id = "bench"};
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_change_t *ch;
    double t0, t_ours, t_yajl;
    size_t bytes_ours = 0, bytes_yajl = 0;
    yajl_gen g;

    for (int i = 0; i < 11; i++)
        t->cols[i].name = cdc_xstrdup(names[i]);
    t->npk = 1;
    t->pk = cdc_xcalloc(1, sizeof(uint32_t));
    tx->commit_us = 1700000000123000LL;
    tx->server_id = 1;
    tx->connector = "mariadb";
    tx->file = "mariadb-bin.000001";
    snprintf(tx->gtid, sizeof(tx->gtid), "0-1-12345");
    ch = cdc_txn_add(tx, 'c', t);
    ch->pos = 123456;
    ch->after = cdc_txn_values(tx, 11);
    ch->after[0] = (cdc_value_t){.kind = CDC_V_INT, .u.i = 987654};
    ch->after[1] = (cdc_value_t){.kind = CDC_V_INT, .u.i = 4242};
    ch->after[2] = (cdc_value_t){.kind = CDC_V_INT, .u.i = 3};
    ch->after[3] = (cdc_value_t){.kind = CDC_V_INT, .u.i = 1};
    ch->after[4] = (cdc_value_t){.kind = CDC_V_STRING, .s = "SKU-00042-XL",
                                 .len = 12};
    ch->after[5] = (cdc_value_t){.kind = CDC_V_DECIMAL, .s = "1234.56",
                                 .len = 7};
    ch->after[6] = (cdc_value_t){.kind = CDC_V_STRING, .s = "EUR", .len = 3};
    ch->after[7] = (cdc_value_t){.kind = CDC_V_STRING,
                                 .s = "2026-11-27 08:00:00.123456",
                                 .len = 26};
    ch->after[8] = ch->after[7];
    ch->after[9] = (cdc_value_t){
        .kind = CDC_V_STRING,
        .s = "customer asked for gift wrapping and a delivery after 18:00 "
             "on weekdays",
        .len = 71};
    ch->after[10] = (cdc_value_t){.kind = CDC_V_JSON,
                                  .s = "{\"color\":\"red\",\"size\":42}",
                                  .len = 25};

    t0 = now_s();
    for (long i = 0; i < n; i++) {
        cdc_buf_reset(&b);
        ch->row = (uint32_t)i;
        cdc_envelope_write(&b, &o, tx, ch);
        bytes_ours += b.len;
    }
    t_ours = now_s() - t0;

    g = yajl_gen_alloc(NULL);
    t0 = now_s();
    for (long i = 0; i < n; i++) {
        const unsigned char *out;
        size_t len;
        ch->row = (uint32_t)i;
        yajl_envelope(g, tx, ch);
        yajl_gen_get_buf(g, &out, &len);
        bytes_yajl += len;
        yajl_gen_reset(g, NULL);
        yajl_gen_clear(g);
    }
    t_yajl = now_s() - t0;
    yajl_gen_free(g);

    printf("envelope writer: ours %.0f ns/envelope (%.0f B), yajl_gen %.0f "
           "ns/envelope (%.0f B); ours is %.1fx faster\n",
           t_ours / n * 1e9, (double)bytes_ours / n, t_yajl / n * 1e9,
           (double)bytes_yajl / n, t_yajl / t_ours);
    cdc_buf_free(&b);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
    return 0;
}
