/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_sink_kafka.c - the Kafka sink against librdkafka's mock cluster.
 *
 * Hermetic: every test starts its own in-process mock cluster (one
 * broker), produces through cdc_sink_kafka_ops, serves delivery reports
 * and, where the content matters, consumes the topics back with a plain
 * librdkafka consumer.  Faults: broker down/up, retriable and permanent
 * Produce errors, message timeout, a tiny local queue.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <yajl/yajl_tree.h>

#include "cdc/change.h"
#include "cdc/conf.h"
#include "cdc/err.h"
#include "cdc/log.h"
#include "cdc/pipeline.h"
#include "cdc/plugin.h"
#include "sinks/kafka.h"
#include "tests/unit/cdc_test.h"

#define PRODUCE_API 0 /* Kafka ApiKey of Produce */

/* ---- fixtures ------------------------------------------------------ */

typedef struct mock {
    rd_kafka_t *rk; /* handle that owns the cluster */
    rd_kafka_mock_cluster_t *mc;
    const char *boot;
} mock_t;

static void mock_start(mock_t *m)
{
    char errstr[256];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();

    rd_kafka_conf_set(kc, "log_level", "0", errstr, sizeof(errstr));
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
    if (!m->rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", errstr);
        exit(99);
    }
    m->mc = rd_kafka_mock_cluster_new(m->rk, 1);
    if (!m->mc) {
        fprintf(stderr, "cannot create mock cluster\n");
        exit(99);
    }
    m->boot = rd_kafka_mock_cluster_bootstraps(m->mc);
}

static void mock_stop(mock_t *m)
{
    rd_kafka_mock_cluster_destroy(m->mc);
    rd_kafka_destroy(m->rk);
}

/* Conf with kafka.brokers at the mock and NULL-terminated key/val pairs. */
static cdc_conf_t *mkconf_v(const mock_t *m, va_list ap)
{
    cdc_conf_t *conf = cdc_conf_new();
    const char *k;

    cdc_conf_set(conf, "source.type", "mysql", "default");
    cdc_conf_set(conf, "application_id", "app", "test");
    if (m)
        cdc_conf_set(conf, "kafka.brokers", m->boot, "test");
    cdc_conf_set(conf, "kafka.linger.ms", "1", "test");
    cdc_conf_set(conf, "kafka.reconnect.backoff.max.ms", "500", "test");
    while ((k = va_arg(ap, const char *)) != NULL)
        cdc_conf_set(conf, k, va_arg(ap, const char *), "test");
    return conf;
}

static cdc_conf_t *mkconf(const mock_t *m, ...)
{
    va_list ap;
    cdc_conf_t *conf;

    va_start(ap, m);
    conf = mkconf_v(m, ap);
    va_end(ap);
    return conf;
}

static cdc_sink_t *mksink(cdc_conf_t *conf)
{
    cdc_err_t err;
    cdc_sink_t *snk = cdc_sink_kafka_ops.create(conf, &err);

    if (!snk)
        printf("# create: %s (%s)\n", err.msg, err.detail);
    return snk;
}

/* shop.orders(id INT PK, note VARCHAR) */
static cdc_table_t *orders_table(const char *db, const char *name)
{
    cdc_table_t *t = cdc_table_new(db, name, 2);

    t->cols[0].name = cdc_xstrdup("id");
    t->cols[0].flags = CDC_COL_PK;
    t->cols[1].name = cdc_xstrdup("note");
    t->cols[1].flags = CDC_COL_NULLABLE;
    t->npk = 1;
    t->pk = cdc_xcalloc(1, sizeof(uint32_t));
    t->pk[0] = 0;
    return t;
}

/* One test's world: a mock cluster, a sink configured at it (extra
 * NULL-terminated key/value pairs) and the table db.name.  0 when the sink
 * was created; otherwise everything is released again. */
typedef struct kfx {
    mock_t m;
    cdc_conf_t *conf;
    cdc_sink_t *snk;
    cdc_table_t *t;
} kfx_t;

static int kfx_open(kfx_t *f, const char *db, const char *name, ...)
{
    va_list ap;

    mock_start(&f->m);
    va_start(ap, name);
    f->conf = mkconf_v(&f->m, ap);
    va_end(ap);
    f->snk = mksink(f->conf);
    T_ASSERT(f->snk != NULL);
    if (!f->snk) {
        cdc_conf_destroy(f->conf);
        mock_stop(&f->m);
        return -1;
    }
    f->t = orders_table(db, name);
    return 0;
}

/* Destroy the sink, then the rest (txns hold their own table reference). */
static void kfx_close(kfx_t *f)
{
    cdc_sink_kafka_ops.destroy(f->snk);
    cdc_table_destroy(f->t);
    cdc_conf_destroy(f->conf);
    mock_stop(&f->m);
}

static cdc_value_t *row(cdc_txn_t *tx, int64_t id, const char *note)
{
    cdc_value_t *v = cdc_txn_values(tx, 2);

    v[0].kind = CDC_V_INT;
    v[0].u.i = id;
    if (note) {
        v[1].kind = CDC_V_STRING;
        v[1].s = cdc_arena_memdup(&tx->arena, note, strlen(note));
        v[1].len = strlen(note);
    } else {
        v[1].kind = CDC_V_NULL;
    }
    return v;
}

static cdc_txn_t *txn_inserts(cdc_table_t *t, int64_t first, int n)
{
    cdc_txn_t *tx = cdc_txn_new();

    tx->connector = "mysql";
    tx->commit_us = 1700000000000000LL;
    for (int i = 0; i < n; i++) {
        cdc_change_t *ch = cdc_txn_add(tx, CDC_OP_CREATE, t);
        ch->after = row(tx, first + i, "x");
    }
    return tx;
}

/* Serve delivery reports until every txn is settled or timeout. */
static int settle(cdc_sink_t *snk, cdc_txn_t **txs, int n, int timeout_ms,
                  cdc_err_t *err)
{
    int waited = 0;

    for (;;) {
        int busy = 0;

        if (cdc_sink_kafka_ops.poll(snk, 100, err) < 0)
            return -1;
        for (int i = 0; i < n; i++)
            busy += txs[i]->pending;
        if (!busy)
            return 0;
        waited += 100;
        if (waited >= timeout_ms)
            return 1;
    }
}

/* ---- consuming back ------------------------------------------------ */

typedef struct msg {
    char *key;
    size_t klen;
    char *val; /* NULL for a tombstone */
    size_t vlen;
} msg_t;

/* Read topic (partition 0) from the beginning until `expect` messages
 * arrived (or timeout), then 300 ms more to catch extra ones (duplicates);
 * at most max. */
static int consume(const mock_t *m, const char *topic, msg_t *out,
                   int expect, int max, int timeout_ms)
{
    char errstr[256];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_t *c;
    rd_kafka_topic_partition_list_t *tp;
    int n = 0, waited = 0;

    rd_kafka_conf_set(kc, "bootstrap.servers", m->boot, errstr,
                      sizeof(errstr));
    rd_kafka_conf_set(kc, "group.id", "t_sink_kafka", errstr, sizeof(errstr));
    rd_kafka_conf_set(kc, "enable.auto.commit", "false", errstr,
                      sizeof(errstr));
    rd_kafka_conf_set(kc, "log_level", "0", errstr, sizeof(errstr));
    c = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, sizeof(errstr));
    if (!c)
        return -1;
    tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, topic, 0)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    while (n < max && waited < timeout_ms) {
        rd_kafka_message_t *rm = rd_kafka_consumer_poll(c, 100);

        if (n == expect && waited < timeout_ms - 300)
            waited = timeout_ms - 300; /* linger briefly for extras */

        if (!rm) {
            waited += 100;
            continue;
        }
        if (!rm->err) {
            out[n].klen = rm->key_len;
            out[n].key = rm->key ? cdc_xstrndup(rm->key, rm->key_len)
                                 : NULL;
            out[n].vlen = rm->len;
            out[n].val = rm->payload ? cdc_xstrndup(rm->payload, rm->len)
                                     : NULL;
            n++;
        }
        rd_kafka_message_destroy(rm);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return n;
}

static void msgs_free(msg_t *ms, int n)
{
    for (int i = 0; i < n; i++) {
        free(ms[i].key);
        free(ms[i].val);
    }
}

/* Integer at path in JSON text, or INT64_MIN. */
static long long json_int(const char *text, const char **path)
{
    char eb[128];
    yajl_val v = yajl_tree_parse(text, eb, sizeof(eb)), x;
    long long r = INT64_MIN;

    if (!v)
        return r;
    x = yajl_tree_get(v, path, yajl_t_number);
    if (x && YAJL_IS_INTEGER(x))
        r = YAJL_GET_INTEGER(x);
    yajl_tree_free(v);
    return r;
}

/* String at path in JSON text (static buffer), or "". */
static const char *json_str(const char *text, const char **path)
{
    static char out[256];
    char eb[128];
    yajl_val v = yajl_tree_parse(text, eb, sizeof(eb)), x;

    out[0] = '\0';
    if (!v)
        return out;
    x = yajl_tree_get(v, path, yajl_t_string);
    if (x)
        snprintf(out, sizeof(out), "%s", YAJL_GET_STRING(x));
    yajl_tree_free(v);
    return out;
}

static int json_valid(const char *text)
{
    char eb[128];
    yajl_val v = yajl_tree_parse(text, eb, sizeof(eb));

    if (!v)
        printf("# invalid JSON: %s\n#   %s\n", eb, text);
    yajl_tree_free(v);
    return v != NULL;
}

static const char *P_ID[] = {"id", NULL};
static const char *P_OP[] = {"payload", "op", NULL};
static const char *P_DBZ_OP[] = {"op", NULL};
static const char *P_APP[] = {"application_id", NULL};
static const char *P_NOTE[] = {"payload", "after", "note", NULL};

/* ---- tests --------------------------------------------------------- */

CDC_TEST(produce_keys_values_tombstones)
{
    kfx_t f;
    if (kfx_open(&f, "shop", "orders", "kafka.tombstones", "true", NULL))
        return;
    rd_kafka_mock_topic_create(f.m.mc, "app.shop.orders", 1, 1);
    rd_kafka_mock_topic_create(f.m.mc, "app.shop.items", 1, 1);
    cdc_sink_t *snk = f.snk;
    cdc_table_t *orders = f.t;
    cdc_table_t *items = orders_table("shop", "items");
    cdc_txn_t *tx[3];
    cdc_change_t *ch;
    cdc_err_t err;

    tx[0] = cdc_txn_new();
    tx[0]->connector = "mysql";
    ch = cdc_txn_add(tx[0], CDC_OP_CREATE, orders);
    ch->after = row(tx[0], 1, "new");
    ch = cdc_txn_add(tx[0], CDC_OP_UPDATE, orders);
    ch->before = row(tx[0], 1, "new");
    ch->after = row(tx[0], 1, NULL);
    ch = cdc_txn_add(tx[0], CDC_OP_CREATE, items);
    ch->after = row(tx[0], 7, "\xc3\xa9t\xc3\xa9 \"q\"");
    tx[1] = cdc_txn_new();
    tx[1]->connector = "mysql";
    ch = cdc_txn_add(tx[1], CDC_OP_DELETE, orders);
    ch->before = row(tx[1], 1, NULL);
    tx[2] = cdc_txn_new(); /* empty: delivered at once */

    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx[0], &err), 0);
    T_EQ_INT(tx[0]->pending, 3);
    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx[1], &err), 0);
    T_EQ_INT(tx[1]->pending, 2); /* delete + tombstone */
    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx[2], &err), 0);
    T_EQ_INT(tx[2]->pending, 0);
    T_EQ_INT(cdc_sink_kafka_ops.flush(snk, 10000, &err), 0);
    for (int i = 0; i < 3; i++) {
        T_EQ_INT(tx[i]->pending, 0);
        T_EQ_INT(tx[i]->failed, 0);
    }
    cdc_sink_kafka_stats_t st;
    cdc_sink_kafka_stats(snk, &st);
    T_EQ_INT(st.produced, 5);
    T_EQ_INT(st.delivered, 5);
    T_EQ_INT(st.failed, 0);
    T_EQ_INT(st.topics, 2);

    msg_t ms[8];
    int n = consume(&f.m, "app.shop.orders", ms, 4, 8, 5000);
    T_EQ_INT(n, 4);
    if (n == 4) {
        static const char ops[] = "cud";
        for (int i = 0; i < 3; i++) {
            T_ASSERT(ms[i].val && json_valid(ms[i].val));
            T_ASSERT(ms[i].key && json_valid(ms[i].key));
            T_EQ_INT(json_int(ms[i].key, P_ID), 1);
            char op[2] = {ops[i], 0};
            T_EQ_STR(json_str(ms[i].val, P_OP), op);
            T_EQ_STR(json_str(ms[i].val, P_APP), "app");
        }
        T_ASSERT(ms[3].val == NULL); /* tombstone */
        T_EQ_INT(ms[3].vlen, 0);
        T_ASSERT(ms[3].key && ms[2].key && !strcmp(ms[3].key, ms[2].key));
    }
    msgs_free(ms, n);
    n = consume(&f.m, "app.shop.items", ms, 1, 8, 5000);
    T_EQ_INT(n, 1);
    if (n == 1) {
        T_EQ_INT(json_int(ms[0].key, P_ID), 7);
        T_ASSERT(json_valid(ms[0].val));
    }
    msgs_free(ms, n);

    kfx_close(&f);
    for (int i = 0; i < 3; i++)
        cdc_txn_destroy(tx[i]);
    cdc_table_destroy(items);
}

CDC_TEST(topic_template_debezium_no_key)
{
    kfx_t f;
    if (kfx_open(&f, "my db", "t$1",
                 "kafka.topic", "cdc-{db}-{table}", "kafka.key", "none", "format", "debezium", "kafka.tombstones", "true", NULL))
        return;
    /* {db}/{table} bytes outside Kafka's alphabet become '_' */
    rd_kafka_mock_topic_create(f.m.mc, "cdc-my_db-t_1", 1, 1);
    cdc_sink_t *snk = f.snk;
    cdc_table_t *t = f.t;
    cdc_txn_t *tx = cdc_txn_new();
    cdc_err_t err;
    cdc_change_t *ch = cdc_txn_add(tx, CDC_OP_DELETE, t);

    ch->before = row(tx, 3, "gone");
    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx, &err), 0);
    T_EQ_INT(tx->pending, 1); /* no key: no tombstone */
    T_EQ_INT(cdc_sink_kafka_ops.flush(snk, 10000, &err), 0);
    T_EQ_INT(tx->pending, 0);

    msg_t ms[4];
    int n = consume(&f.m, "cdc-my_db-t_1", ms, 1, 4, 5000);
    T_EQ_INT(n, 1);
    if (n == 1) {
        T_ASSERT(ms[0].key == NULL);
        T_EQ_STR(json_str(ms[0].val, P_DBZ_OP), "d");
    }
    msgs_free(ms, n);
    kfx_close(&f);
    cdc_txn_destroy(tx);
}

static void expect_config_error(cdc_conf_t *conf, const char *needle)
{
    cdc_err_t err;
    cdc_sink_t *snk;

    memset(&err, 0, sizeof(err));
    snk = cdc_sink_kafka_ops.create(conf, &err);
    T_ASSERT(snk == NULL);
    if (snk) {
        cdc_sink_kafka_ops.destroy(snk);
    } else {
        T_EQ_INT(err.code, CDC_EXIT_CONFIG);
        if (!strstr(err.msg, needle))
            T_FAIL_("error \"%s\" does not name \"%s\"", err.msg, needle);
    }
    cdc_conf_destroy(conf);
}

CDC_TEST(config_errors)
{
    static const char boot[] = "127.0.0.1:1";

    cdc_conf_t *c = mkconf(NULL, "kafka.brokers", boot,
                           "kafka.no.such.property", "1", NULL);
    expect_config_error(c, "no.such.property");
    expect_config_error(mkconf(NULL, "kafka.brokers", boot, "kafka.acks",
                               "most", NULL), "acks");
    expect_config_error(mkconf(NULL, "kafka.brokers", boot,
                               "kafka.compression.type", "rar", NULL),
                        "compression.type");
    expect_config_error(mkconf(NULL, "kafka.brokers", boot, "kafka.topic",
                               "{source}.{schema}", NULL), "{schema}");
    expect_config_error(mkconf(NULL, "kafka.brokers", boot, "kafka.topic",
                               "a/{table}", NULL), "kafka.topic");
    expect_config_error(mkconf(NULL, "kafka.brokers", boot, "kafka.key",
                               "row", NULL), "kafka.key");
    expect_config_error(mkconf(NULL, "kafka.brokers", boot, "format", "yaml",
                               NULL), "yaml");
    expect_config_error(mkconf(NULL, NULL), "kafka.brokers");
    expect_config_error(mkconf(NULL, "kafka.brokers", boot,
                               "kafka.topic_replication_factor", "0", NULL),
                        "kafka.topic_replication_factor");
    expect_config_error(mkconf(NULL, "kafka.brokers", boot,
                               "kafka.topic_min_insync_replicas", "0", NULL),
                        "kafka.topic_min_insync_replicas");
}

CDC_TEST(broker_down_then_up_nothing_lost)
{
    kfx_t f;
    if (kfx_open(&f, "shop", "orders", NULL))
        return;
    rd_kafka_mock_topic_create(f.m.mc, "app.shop.orders", 1, 1);
    cdc_sink_t *snk = f.snk;
    cdc_table_t *t = f.t;
    cdc_txn_t *tx[2] = {txn_inserts(t, 1, 10), NULL};
    cdc_err_t err;

    /* connected and delivering first */
    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx[0], &err), 0);
    T_EQ_INT(settle(snk, tx, 1, 10000, &err), 0);
    rd_kafka_mock_broker_set_down(f.m.mc, 1);
    tx[1] = txn_inserts(t, 11, 20);
    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx[1], &err), 0);
    T_EQ_INT(settle(snk, tx + 1, 1, 2500, &err), 1); /* still waiting */
    T_ASSERT(tx[1]->pending > 0);
    T_EQ_INT(tx[1]->failed, 0);
    rd_kafka_mock_broker_set_up(f.m.mc, 1);
    T_EQ_INT(cdc_sink_kafka_ops.flush(snk, 30000, &err), 0);
    T_EQ_INT(tx[1]->pending, 0);
    T_EQ_INT(tx[1]->failed, 0);

    msg_t ms[40];
    int n = consume(&f.m, "app.shop.orders", ms, 30, 40, 5000);
    T_EQ_INT(n, 30); /* every row once, in order */
    for (int i = 0; i < n; i++)
        T_EQ_INT(json_int(ms[i].key, P_ID), i + 1);
    msgs_free(ms, n);
    kfx_close(&f);
    cdc_txn_destroy(tx[0]);
    cdc_txn_destroy(tx[1]);
}

CDC_TEST(retriable_produce_errors_delivered_once)
{
    kfx_t f;
    if (kfx_open(&f, "shop", "orders", NULL))
        return;
    rd_kafka_mock_topic_create(f.m.mc, "app.shop.orders", 1, 1);
    cdc_sink_t *snk = f.snk;
    cdc_table_t *t = f.t;
    cdc_txn_t *tx = txn_inserts(t, 1, 5);
    cdc_err_t err;

    /* warm up so the errors hit Produce requests, not metadata */
    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx, &err), 0);
    T_EQ_INT(settle(snk, &tx, 1, 10000, &err), 0);
    cdc_txn_destroy(tx);
    rd_kafka_mock_push_request_errors(
        f.m.mc, PRODUCE_API, 4, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
    tx = txn_inserts(t, 6, 15);
    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx, &err), 0);
    T_EQ_INT(cdc_sink_kafka_ops.flush(snk, 30000, &err), 0);
    T_EQ_INT(tx->pending, 0);
    T_EQ_INT(tx->failed, 0);

    msg_t ms[40];
    int n = consume(&f.m, "app.shop.orders", ms, 20, 40, 5000);
    T_EQ_INT(n, 20); /* idempotence: retries leave no duplicates */
    for (int i = 0; i < n; i++)
        T_EQ_INT(json_int(ms[i].key, P_ID), i + 1);
    msgs_free(ms, n);
    kfx_close(&f);
    cdc_txn_destroy(tx);
}

CDC_TEST(message_timeout_fails_run)
{
    kfx_t f;
    if (kfx_open(&f, "shop", "orders",
                 "kafka.message.timeout.ms", "1500", NULL))
        return;
    rd_kafka_mock_topic_create(f.m.mc, "app.shop.orders", 1, 1);
    cdc_sink_t *snk = f.snk;
    cdc_table_t *t = f.t;
    cdc_txn_t *ok = txn_inserts(t, 1, 2), *tx;
    cdc_err_t err;

    T_EQ_INT(cdc_sink_kafka_ops.write(snk, ok, &err), 0);
    T_EQ_INT(settle(snk, &ok, 1, 10000, &err), 0);
    rd_kafka_mock_broker_set_down(f.m.mc, 1);
    tx = txn_inserts(t, 3, 4);
    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx, &err), 0);
    memset(&err, 0, sizeof(err));
    T_EQ_INT(settle(snk, &tx, 1, 15000, &err), -1);
    T_EQ_INT(tx->failed, 1);
    T_EQ_INT(ok->failed, 0);
    T_EQ_INT(err.code, CDC_EXIT_UNAVAILABLE);
    T_ASSERT(strstr(err.msg, "app.shop.orders") != NULL);
    T_ASSERT(strstr(err.hint, "message.timeout.ms") != NULL);
    printf("# %s\n#   %s\n#   %s\n", err.msg, err.detail, err.hint);
    /* all of tx settles, and the sink refuses further work */
    T_EQ_INT(cdc_sink_kafka_ops.flush(snk, 5000, &err), -1);
    T_EQ_INT(tx->pending, 0);
    cdc_txn_t *more = txn_inserts(t, 10, 1);
    T_EQ_INT(cdc_sink_kafka_ops.write(snk, more, &err), -1);
    rd_kafka_mock_broker_set_up(f.m.mc, 1);
    kfx_close(&f);
    cdc_txn_destroy(more);
    cdc_txn_destroy(tx);
    cdc_txn_destroy(ok);
}

CDC_TEST(permanent_produce_error_fails_run)
{
    kfx_t f;
    if (kfx_open(&f, "shop", "orders", NULL))
        return;
    rd_kafka_mock_topic_create(f.m.mc, "app.shop.orders", 1, 1);
    cdc_sink_t *snk = f.snk;
    cdc_table_t *t = f.t;
    cdc_txn_t *tx = txn_inserts(t, 1, 1);
    cdc_err_t err;

    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx, &err), 0);
    T_EQ_INT(settle(snk, &tx, 1, 10000, &err), 0);
    cdc_txn_destroy(tx);
    rd_kafka_mock_push_request_errors(
        f.m.mc, PRODUCE_API, 1, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    tx = txn_inserts(t, 2, 3);
    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx, &err), 0);
    memset(&err, 0, sizeof(err));
    T_EQ_INT(settle(snk, &tx, 1, 10000, &err), -1);
    T_EQ_INT(tx->failed, 1);
    T_ASSERT(err.code != 0);
    T_ASSERT(strstr(err.msg, "app.shop.orders") != NULL ||
             strstr(err.msg, "fatal") != NULL);
    printf("# %s\n#   %s\n", err.msg, err.detail);
    cdc_sink_kafka_ops.flush(snk, 5000, &err);
    T_EQ_INT(tx->pending, 0);
    kfx_close(&f);
    cdc_txn_destroy(tx);
}

/* Per key the values (note = "1", "2", ...) in delivery order must be
 * 1..n with duplicates only as the replay of a window that was not yet
 * acknowledged (tests/integ/ledger.py's rule): a replay starts at or
 * before the previous value and runs on in order; a new value comes only
 * once the replay caught up.  Returns the number of duplicates, -1 on a
 * violation (printed). */
static int ledger_check(msg_t *ms, int n, int keys, const int *want)
{
    int dups = 0;

    for (int k = 1; k <= keys; k++) {
        int prev = 0, top = 0;

        for (int i = 0; i < n; i++) {
            int v;

            if (!ms[i].key || !ms[i].val || json_int(ms[i].key, P_ID) != k)
                continue;
            v = atoi(json_str(ms[i].val, P_NOTE));
            if (v <= top) {
                dups++;
                if (!(v <= prev || v == prev + 1)) {
                    printf("# key %d: replay jumps from %d to %d\n", k,
                           prev, v);
                    return -1;
                }
            } else {
                if (prev != top || v != top + 1) {
                    printf("# key %d: value %d after %d (top %d)\n", k, v,
                           prev, top);
                    return -1;
                }
                top = v;
            }
            prev = v;
        }
        if (top != want[k]) {
            printf("# key %d: last value %d, expected %d\n", k, top,
                   want[k]);
            return -1;
        }
    }
    return dups;
}

/* ntx txns of per changes each on keys 1..keys (round robin), values
 * counting per key in want[]. */
static void txns_counting(cdc_table_t *t, cdc_txn_t **txs, int ntx, int per,
                          int keys, int *want)
{
    for (int j = 0; j < ntx; j++) {
        cdc_txn_t *tx = cdc_txn_new();

        tx->connector = "mysql";
        tx->commit_us = 1700000000000000LL;
        for (int i = 0; i < per; i++) {
            int k = (j * per + i) % keys + 1;
            char note[16];
            cdc_change_t *ch = cdc_txn_add(tx, CDC_OP_CREATE, t);

            snprintf(note, sizeof(note), "%d", ++want[k]);
            ch->after = row(tx, k, note);
        }
        txs[j] = tx;
    }
}

CDC_TEST(fatal_idempotence_error_recreates_producer)
{
    /* The broker claims a sequence gap (as a partition leader that lost
     * in-flight batches does): librdkafka raises a fatal idempotent-
     * producer error.  The sink recreates the producer and produces all
     * unacknowledged messages again, in order: nothing lost, per key in
     * order, duplicates only as a replayed window. */
    kfx_t f;
    if (kfx_open(&f, "shop", "orders", NULL))
        return;
    rd_kafka_mock_topic_create(f.m.mc, "app.shop.orders", 1, 1);
    cdc_sink_t *snk = f.snk;
    cdc_table_t *t = f.t;
    enum { NTX = 8, PER = 6, KEYS = 4 };
    int want[KEYS + 1] = {0};
    cdc_txn_t *first[1], *txs[NTX];
    cdc_err_t err;
    cdc_sink_kafka_stats_t st;

    txns_counting(t, first, 1, KEYS, KEYS, want);
    T_EQ_INT(cdc_sink_kafka_ops.write(snk, first[0], &err), 0);
    T_EQ_INT(settle(snk, first, 1, 10000, &err), 0);
    rd_kafka_mock_push_request_errors(
        f.m.mc, PRODUCE_API, 1, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    txns_counting(t, txs, NTX, PER, KEYS, want);
    for (int j = 0; j < NTX; j++)
        T_EQ_INT(cdc_sink_kafka_ops.write(snk, txs[j], &err), 0);
    memset(&err, 0, sizeof(err));
    T_EQ_INT(settle(snk, txs, NTX, 20000, &err), 0);
    if (err.msg[0])
        printf("# %s\n#   %s\n", err.msg, err.detail);
    for (int j = 0; j < NTX; j++) {
        T_EQ_INT(txs[j]->failed, 0);
        T_EQ_INT(txs[j]->pending, 0);
    }
    T_EQ_INT(cdc_sink_kafka_ops.flush(snk, 5000, &err), 0);
    cdc_sink_kafka_stats(snk, &st);
    T_ASSERT(st.recreated >= 1);
    T_EQ_INT(st.failed, 0);

    int total = KEYS + NTX * PER, cap = 2 * total + 8;
    msg_t *ms = cdc_xcalloc((size_t)cap, sizeof(*ms));
    int n = consume(&f.m, "app.shop.orders", ms, total, cap, 10000);
    int dups = ledger_check(ms, n, KEYS, want);
    printf("# %d messages read back for %d changes, %d duplicate(s), "
           "%" PRIu64 " recreation(s)\n", n, total, dups, st.recreated);
    T_ASSERT(n >= total);
    T_ASSERT(dups >= 0);
    msgs_free(ms, n);
    free(ms);
    kfx_close(&f);
    cdc_txn_destroy(first[0]);
    for (int j = 0; j < NTX; j++)
        cdc_txn_destroy(txs[j]);
}

CDC_TEST(fatal_error_again_and_again_gives_up)
{
    /* every Produce request answered with a sequence error: after the
     * bounded number of recreations the run fails (exit 69) naming it,
     * and the txn is failed, not left pending */
    kfx_t f;
    if (kfx_open(&f, "shop", "orders", NULL))
        return;
    rd_kafka_mock_topic_create(f.m.mc, "app.shop.orders", 1, 1);
    cdc_sink_t *snk = f.snk;
    cdc_table_t *t = f.t;
    cdc_txn_t *tx = txn_inserts(t, 1, 1);
    cdc_err_t err;
    cdc_sink_kafka_stats_t st;

    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx, &err), 0);
    T_EQ_INT(settle(snk, &tx, 1, 10000, &err), 0);
    cdc_txn_destroy(tx);
    for (int i = 0; i < 40; i++)
        rd_kafka_mock_push_request_errors(
            f.m.mc, PRODUCE_API, 1,
            RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    tx = txn_inserts(t, 2, 3);
    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx, &err), 0);
    memset(&err, 0, sizeof(err));
    T_EQ_INT(settle(snk, &tx, 1, 30000, &err), -1);
    printf("# %s\n#   %s\n#   %s\n", err.msg, err.detail, err.hint);
    T_ASSERT(strstr(err.msg, "fatal producer error") != NULL);
    T_ASSERT(strstr(err.detail, "OUT_OF_ORDER_SEQUENCE_NUMBER") != NULL);
    T_ASSERT(strstr(err.detail, "recreated 5 times") != NULL);
    T_EQ_INT(err.code, CDC_EXIT_UNAVAILABLE);
    cdc_sink_kafka_stats(snk, &st);
    T_EQ_INT(st.recreated, 5);
    cdc_sink_kafka_ops.flush(snk, 5000, &err);
    T_EQ_INT(tx->pending, 0);
    T_EQ_INT(tx->failed, 1);
    /* and it stays failed */
    T_EQ_INT(cdc_sink_kafka_ops.poll(snk, 0, &err), -1);
    kfx_close(&f);
    cdc_txn_destroy(tx);
}

CDC_TEST(fatal_error_of_another_kind_stops_at_once)
{
    /* the cluster refuses the producer id for good (authorization): a
     * fatal error that a new producer cannot cure either, so the run
     * fails at once (exit 1), without recreating */
    mock_t m;
    cdc_conf_t *conf;
    cdc_sink_t *snk;
    cdc_table_t *t;
    cdc_txn_t *tx;
    cdc_err_t err;
    cdc_sink_kafka_stats_t st;

    mock_start(&m);
    rd_kafka_mock_topic_create(m.mc, "app.shop.orders", 1, 1);
    rd_kafka_mock_push_request_errors(
        m.mc, 22 /* InitProducerId */, 1,
        RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED);
    conf = mkconf(&m, NULL);
    snk = mksink(conf);
    T_ASSERT(snk != NULL);
    if (!snk) {
        cdc_conf_destroy(conf);
        mock_stop(&m);
        return;
    }
    t = orders_table("shop", "orders");
    tx = txn_inserts(t, 1, 2);
    memset(&err, 0, sizeof(err));
    if (cdc_sink_kafka_ops.write(snk, tx, &err) == 0)
        T_EQ_INT(settle(snk, &tx, 1, 10000, &err), -1);
    printf("# %s\n#   %s\n", err.msg, err.detail);
    T_ASSERT(strstr(err.msg, "fatal producer error") != NULL);
    T_EQ_INT(err.code, CDC_EXIT_FAIL);
    cdc_sink_kafka_stats(snk, &st);
    T_EQ_INT(st.recreated, 0);
    cdc_sink_kafka_ops.flush(snk, 5000, &err);
    T_EQ_INT(tx->pending, 0);
    T_EQ_INT(tx->failed, 1);
    cdc_sink_kafka_ops.destroy(snk);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
    cdc_conf_destroy(conf);
    mock_stop(&m);
}

CDC_TEST(queue_full_blocks_reader_without_loss)
{
    kfx_t f;
    if (kfx_open(&f, "shop", "orders",
                 "kafka.queue.buffering.max.messages", "5", NULL))
        return;
    rd_kafka_mock_topic_create(f.m.mc, "app.shop.orders", 1, 1);
    rd_kafka_mock_broker_set_rtt(f.m.mc, 1, 20);
    cdc_sink_t *snk = f.snk;
    cdc_table_t *t = f.t;
    cdc_txn_t *tx = txn_inserts(t, 1, 200);
    cdc_err_t err;
    cdc_sink_kafka_stats_t st;

    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx, &err), 0);
    cdc_sink_kafka_stats(snk, &st);
    T_ASSERT(st.queue_full > 0);
    T_EQ_INT(st.produced, 200);
    T_ASSERT(tx->pending <= 5);
    T_EQ_INT(cdc_sink_kafka_ops.flush(snk, 30000, &err), 0);
    T_EQ_INT(tx->pending, 0);
    T_EQ_INT(tx->failed, 0);

    msg_t *ms = cdc_xcalloc(256, sizeof(*ms));
    int n = consume(&f.m, "app.shop.orders", ms, 200, 256, 5000);
    T_EQ_INT(n, 200);
    for (int i = 0; i < n; i++)
        T_EQ_INT(json_int(ms[i].key, P_ID), i + 1);
    msgs_free(ms, n);
    free(ms);
    kfx_close(&f);
    cdc_txn_destroy(tx);
}

CDC_TEST(stop_while_blocked_fails_txn)
{
    kfx_t f;
    if (kfx_open(&f, "shop", "orders",
                 "kafka.queue.buffering.max.messages", "2", NULL))
        return;
    rd_kafka_mock_topic_create(f.m.mc, "app.shop.orders", 1, 1);
    cdc_sink_t *snk = f.snk;
    cdc_table_t *t = f.t;
    cdc_txn_t *tx = txn_inserts(t, 1, 10);
    cdc_err_t err;

    /* broker down and queue full: write blocks; SIGTERM must end it
     * with the txn marked failed (only part of it was produced) */
    rd_kafka_mock_broker_set_down(f.m.mc, 1);
    cdc_pipeline_stop = 1;
    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx, &err), -1);
    cdc_pipeline_stop = 0;
    T_EQ_INT(tx->failed, 1);
    T_EQ_INT(err.code, CDC_EXIT_UNAVAILABLE);
    T_ASSERT(strstr(err.msg, "stopped") != NULL);
    rd_kafka_mock_broker_set_up(f.m.mc, 1);
    cdc_sink_kafka_ops.flush(snk, 10000, &err);
    T_EQ_INT(tx->pending, 0);
    kfx_close(&f);
    cdc_txn_destroy(tx);
}

CDC_TEST(destroy_after_txns_freed)
{
    /* the pipeline frees its txns before destroying the sink: delivery
     * reports served during destroy must not touch them */
    kfx_t f;
    if (kfx_open(&f, "shop", "orders", NULL))
        return;
    cdc_sink_t *snk = f.snk;
    cdc_table_t *t = f.t;
    cdc_txn_t *tx = txn_inserts(t, 1, 50);
    cdc_err_t err;

    rd_kafka_mock_broker_set_down(f.m.mc, 1);
    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx, &err), 0);
    T_ASSERT(tx->pending > 0);
    cdc_txn_destroy(tx);
    kfx_close(&f); /* the sink flushes 2 s, purges the rest */
}

CDC_TEST(message_larger_than_queue_is_an_error)
{
    kfx_t f;
    if (kfx_open(&f, "shop", "orders",
                 "kafka.queue.buffering.max.kbytes", "1", NULL))
        return;
    cdc_sink_t *snk = f.snk;
    cdc_table_t *t = f.t;
    cdc_txn_t *tx = cdc_txn_new();
    cdc_change_t *ch = cdc_txn_add(tx, CDC_OP_CREATE, t);
    char big[4000];
    cdc_err_t err;

    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ch->after = row(tx, 1, big);
    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx, &err), -1); /* no hang */
    T_EQ_INT(tx->failed, 1);
    T_EQ_INT(tx->pending, 0);
    T_ASSERT(strstr(err.hint, "queue.buffering.max.kbytes") != NULL);
    kfx_close(&f);
    cdc_txn_destroy(tx);
}

CDC_TEST(skipped_txn_is_delivered_at_once)
{
    cdc_conf_t *conf = mkconf(NULL, "kafka.brokers", "127.0.0.1:1", NULL);
    cdc_sink_t *snk = mksink(conf);
    T_ASSERT(snk != NULL);
    if (!snk)
        return;
    cdc_table_t *t = orders_table("shop", "orders");
    cdc_txn_t *tx = txn_inserts(t, 1, 3);
    cdc_err_t err;

    tx->skipped = 1;
    T_EQ_INT(cdc_sink_kafka_ops.write(snk, tx, &err), 0);
    T_EQ_INT(tx->pending, 0);
    T_EQ_INT(cdc_sink_kafka_ops.poll(snk, 0, &err), 0);
    cdc_sink_kafka_ops.destroy(snk);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
    cdc_conf_destroy(conf);
}

int main(void)
{
    if (!getenv("CDC_TEST_VERBOSE"))
        cdc_log_set_level(CDC_LOG_ERROR - 1); /* quiet unless asked */
    return cdc_test_run();
}
