/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka_produce_check.c - drive the Kafka sink against a real broker.
 *
 *   kafka_produce_check -b HOST:PORT -a APP [-n ROWS] [-f FORMAT] [-t]
 *                       [-X key=value ...]
 *
 * Produces, through cdc_sink_kafka_ops, a fixed workload on two tables
 * (topics APP.integ.orders and APP.integ.items): ROWS inserts into orders
 * in transactions of 10, an update of every 10th row, a delete of every
 * 20th row (plus a tombstone with -t), and 5 inserts into items.  Waits
 * until every transaction is acknowledged, then prints
 *     topic NAME MESSAGES
 * per topic and "delivered N" for tests/integ/t_kafka_sink.sh to check
 * against what kcat reads back.  Exit 0 when everything was delivered,
 * otherwise the exit code of the sink's error (69 when the broker is
 * unreachable), or 1 when a transaction is left unacknowledged.  -X passes extra configuration keys
 * (e.g. -X kafka.message.timeout.ms=5000).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdc/change.h"
#include "cdc/conf.h"
#include "cdc/err.h"
#include "cdc/log.h"
#include "cdc/plugin.h"
#include "sinks/kafka.h"

static cdc_table_t *mktable(const char *name)
{
    cdc_table_t *t = cdc_table_new("integ", name, 3);

    t->cols[0].name = cdc_xstrdup("id");
    t->cols[0].flags = CDC_COL_PK;
    t->cols[1].name = cdc_xstrdup("note");
    t->cols[2].name = cdc_xstrdup("amount");
    t->npk = 1;
    t->pk = cdc_xcalloc(1, sizeof(uint32_t));
    return t;
}

static cdc_value_t *row(cdc_txn_t *tx, int64_t id, int version)
{
    cdc_value_t *v = cdc_txn_values(tx, 3);
    char note[64];
    int n = snprintf(note, sizeof(note), "row %lld v%d \"q\" \xc3\xa9",
                     (long long)id, version);

    v[0].kind = CDC_V_INT;
    v[0].u.i = id;
    v[1].kind = CDC_V_STRING;
    v[1].s = cdc_arena_memdup(&tx->arena, note, (size_t)n);
    v[1].len = (size_t)n;
    v[2].kind = CDC_V_DECIMAL;
    v[2].s = cdc_arena_memdup(&tx->arena, "12.50", 5);
    v[2].len = 5;
    return v;
}

typedef struct run {
    cdc_sink_t *snk;
    cdc_txn_t **txs;
    int ntx, cap;
} run_t;

static cdc_txn_t *txn(run_t *r)
{
    cdc_txn_t *tx = cdc_txn_new();

    tx->connector = "mariadb";
    tx->commit_us = 1700000000000000LL + (int64_t)r->ntx * 1000;
    tx->server_id = 1;
    snprintf(tx->gtid, sizeof(tx->gtid), "0-1-%d", r->ntx + 1);
    if (r->ntx == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->txs = cdc_xrealloc(r->txs, (size_t)r->cap * sizeof(*r->txs));
    }
    r->txs[r->ntx++] = tx;
    return tx;
}

static int send_txn(run_t *r, cdc_txn_t *tx, cdc_err_t *err)
{
    if (r->snk->ops->write(r->snk, tx, err) < 0)
        return -1;
    return r->snk->ops->poll(r->snk, 0, err);
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *app = NULL, *fmt = "autoglm";
    int rows = 1000, tombstones = 0, opt, rc = 1;
    cdc_conf_t *conf = cdc_conf_new();
    cdc_err_t err;
    run_t r = {0};
    cdc_table_t *orders = mktable("orders"), *items = mktable("items");
    long n_orders = 0, n_items = 0;

    while ((opt = getopt(argc, argv, "b:a:n:f:tX:v")) != -1) {
        switch (opt) {
        case 'b': brokers = optarg; break;
        case 'a': app = optarg; break;
        case 'n': rows = atoi(optarg); break;
        case 'f': fmt = optarg; break;
        case 't': tombstones = 1; break;
        case 'v': cdc_log_set_level(CDC_LOG_DEBUG); break;
        case 'X': {
            char *eq = strchr(optarg, '=');
            if (!eq) {
                fprintf(stderr, "-X wants key=value\n");
                return 2;
            }
            *eq = '\0';
            cdc_conf_set(conf, optarg, eq + 1, "cli");
            break;
        }
        default:
            fprintf(stderr, "usage: %s -b BROKERS -a APP [-n ROWS] "
                            "[-f FORMAT] [-t] [-X key=value]\n", argv[0]);
            return 2;
        }
    }
    if (!brokers || !app || rows < 20) {
        fprintf(stderr, "need -b BROKERS -a APP and -n >= 20\n");
        return 2;
    }
    cdc_conf_set(conf, "kafka.brokers", brokers, "cli");
    cdc_conf_set(conf, "application_id", app, "cli");
    cdc_conf_set(conf, "format", fmt, "cli");
    cdc_conf_set(conf, "kafka.tombstones", tombstones ? "true" : "false",
                 "cli");

    r.snk = cdc_sink_kafka_ops.create(conf, &err);
    if (!r.snk)
        goto fail;
    for (int id = 1; id <= rows; id += 10) {
        cdc_txn_t *tx = txn(&r);
        for (int k = id; k < id + 10 && k <= rows; k++) {
            cdc_change_t *ch = cdc_txn_add(tx, CDC_OP_CREATE, orders);
            ch->after = row(tx, k, 1);
            n_orders++;
        }
        if (send_txn(&r, tx, &err) < 0)
            goto fail;
    }
    cdc_txn_t *tx = txn(&r);
    for (int id = 10; id <= rows; id += 10) {
        cdc_change_t *ch = cdc_txn_add(tx, CDC_OP_UPDATE, orders);
        ch->before = row(tx, id, 1);
        ch->after = row(tx, id, 2);
        n_orders++;
    }
    if (send_txn(&r, tx, &err) < 0)
        goto fail;
    tx = txn(&r);
    for (int id = 20; id <= rows; id += 20) {
        cdc_change_t *ch = cdc_txn_add(tx, CDC_OP_DELETE, orders);
        ch->before = row(tx, id, 2);
        n_orders += 1 + tombstones;
    }
    if (send_txn(&r, tx, &err) < 0)
        goto fail;
    tx = txn(&r);
    for (int id = 1; id <= 5; id++) {
        cdc_change_t *ch = cdc_txn_add(tx, CDC_OP_CREATE, items);
        ch->after = row(tx, id, 1);
        n_items++;
    }
    if (send_txn(&r, tx, &err) < 0)
        goto fail;
    if (r.snk->ops->flush(r.snk, 120000, &err) < 0)
        goto fail;
    for (int i = 0; i < r.ntx; i++) {
        if (r.txs[i]->pending || r.txs[i]->failed) {
            fprintf(stderr, "txn %d: pending %d failed %d after flush\n", i,
                    r.txs[i]->pending, r.txs[i]->failed);
            goto out;
        }
    }
    cdc_sink_kafka_stats_t st;
    cdc_sink_kafka_stats(r.snk, &st);
    printf("topic %s.integ.orders %ld\n", app, n_orders);
    printf("topic %s.integ.items %ld\n", app, n_items);
    printf("delivered %llu\n", (unsigned long long)st.delivered);
    rc = st.delivered == (uint64_t)(n_orders + n_items) ? 0 : 1;
    goto out;
fail:
    cdc_err_print(&err);
    rc = err.code ? err.code : 1;
out:
    if (r.snk)
        r.snk->ops->destroy(r.snk);
    for (int i = 0; i < r.ntx; i++)
        cdc_txn_destroy(r.txs[i]);
    free(r.txs);
    cdc_table_destroy(orders);
    cdc_table_destroy(items);
    cdc_conf_destroy(conf);
    return rc;
}
