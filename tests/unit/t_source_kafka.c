/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_source_kafka.c - the Kafka source against librdkafka's mock cluster.
 *
 * Hermetic (in-process mock broker): autoglm and Debezium envelopes
 * become one-change txns with typed values, positions and commit times;
 * tombstones, other applications' envelopes and (with bad_message=skip)
 * non-envelopes become empty skipped txns; a bad message stops the
 * source by default; offsets are committed only at confirm(), up to the
 * confirmed txn.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cdc/conf.h"
#include "cdc/err.h"
#include "cdc/plugin.h"
#include "tests/unit/cdc_test.h"

extern const cdc_source_ops_t cdc_source_kafka_ops;

static rd_kafka_t *mrk;
static rd_kafka_mock_cluster_t *mc;
static const char *boot;

static void mock_up(void)
{
    char errstr[256];
    rd_kafka_conf_t *kc;
    if (mrk)
        return;
    kc = rd_kafka_conf_new();
    rd_kafka_conf_set(kc, "log_level", "0", errstr, sizeof(errstr));
    mrk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
    if (!mrk || !(mc = rd_kafka_mock_cluster_new(mrk, 1))) {
        fprintf(stderr, "no mock cluster: %s\n", errstr);
        exit(99);
    }
    boot = rd_kafka_mock_cluster_bootstraps(mc);
}

static void produce(const char *topic, const char *const *vals, int n)
{
    char errstr[256];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_t *p;
    rd_kafka_conf_set(kc, "bootstrap.servers", boot, errstr, sizeof(errstr));
    p = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
    for (int i = 0; i < n; i++)
        rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic),
                          RD_KAFKA_V_VALUE((void *)vals[i], vals[i] ? strlen(vals[i]) : 0),
                          RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_END);
    rd_kafka_flush(p, 5000);
    rd_kafka_destroy(p);
}

static cdc_source_t *open_src(const char *topic, const char *group,
                              const char *bad)
{
    cdc_conf_t *c = cdc_conf_new();
    cdc_err_t err = {0};
    cdc_source_t *s;
    cdc_conf_set(c, "kafka.brokers", boot, NULL);
    cdc_conf_set(c, "kafka.topics", topic, NULL);
    cdc_conf_set(c, "kafka.group.id", group, NULL);
    cdc_conf_set(c, "application_id", "crm", NULL);
    cdc_conf_set(c, "kafka.log_level", "0", NULL);
    if (bad)
        cdc_conf_set(c, "kafka_source.bad_message", bad, NULL);
    s = cdc_source_kafka_ops.create(c, &err);
    if (!s || cdc_source_kafka_ops.start(s, NULL, &err)) {
        printf("# %s\n", err.msg);
        exit(1);
    }
    cdc_conf_destroy(c);
    return s;
}

/* a new topic holding msgs, read by a new source (group "g" + topic) */
static cdc_source_t *topic_src(const char *topic, const char *const *msgs,
                               int n, const char *bad)
{
    char group[64];
    mock_up();
    rd_kafka_mock_topic_create(mc, topic, 1, 1);
    produce(topic, msgs, n);
    snprintf(group, sizeof(group), "g%s", topic);
    return open_src(topic, group, bad);
}

static int next(cdc_source_t *s, cdc_txn_t **tx, cdc_err_t *err)
{
    for (int i = 0; i < 150; i++) {
        int r = cdc_source_kafka_ops.next(s, tx, 100, err);
        if (r != CDC_SRC_IDLE)
            return r;
    }
    return CDC_SRC_IDLE;
}

static int64_t committed(const char *group, const char *topic)
{
    char errstr[256];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_t *c;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    int64_t off;
    rd_kafka_conf_set(kc, "bootstrap.servers", boot, errstr, sizeof(errstr));
    rd_kafka_conf_set(kc, "group.id", group, errstr, sizeof(errstr));
    c = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, sizeof(errstr));
    rd_kafka_topic_partition_list_add(l, topic, 0);
    rd_kafka_committed(c, l, 5000);
    off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(c);
    return off;
}

static const cdc_value_t *col(const cdc_change_t *ch, const cdc_value_t *img,
                              const char *name)
{
    static cdc_value_t absent;
    for (uint32_t i = 0; i < ch->tbl->ncols; i++)
        if (!strcmp(ch->tbl->cols[i].name, name))
            return &img[i];
    return &absent;
}

CDC_TEST(envelopes_to_txns_and_offsets_at_confirm)
{
    const char *msgs[] = {
        "{\"application_id\":\"crm\",\"timestamp\":\"x\",\"version\":1,\"payload\":"
        "{\"op\":\"u\",\"key\":{\"id\":7},\"before\":{\"id\":7,\"note\":null},"
        "\"after\":{\"id\":7,\"note\":\"hi\",\"price\":\"-0.50\",\"big\":18446744073709551615,"
        "\"d\":1.5,\"ok\":true,\"j\":{\"a\":[1,\"x\"]},\"n\":null,\"t\":\"toast\"},"
        "\"unchanged\":[\"t\"]},\"source\":{\"connector\":\"mariadb\",\"server_id\":1,"
        "\"db\":\"shop\",\"table\":\"orders\",\"file\":\"mysql-bin.000003\",\"pos\":2507,"
        "\"gtid\":\"0-1-4\",\"row\":3,\"ts_ms\":1700000000123}}",
        "{\"before\":null,\"after\":{\"id\":8},\"source\":{\"version\":\"x\",\"connector\":"
        "\"postgresql\",\"name\":\"crm\",\"ts_ms\":1700000000456,\"db\":\"cdctest\","
        "\"schema\":\"public\",\"table\":\"acc\",\"lsn\":4096,\"txId\":9},\"op\":\"c\","
        "\"ts_ms\":1}",
        NULL, /* tombstone */
        "{\"application_id\":\"erp\",\"timestamp\":\"x\",\"version\":1,\"payload\":{\"op\":\"d\","
        "\"key\":{\"id\":1},\"before\":{\"id\":1},\"after\":null},\"source\":{\"connector\":"
        "\"postgresql\",\"schema\":\"public\",\"table\":\"x\",\"lsn\":1,\"ts_ms\":1}}",
    };
    cdc_err_t err = {0};
    cdc_txn_t *tx[4] = {0};
    cdc_source_t *s;

    mock_up();
    rd_kafka_mock_topic_create(mc, "t1", 1, 1);
    produce("t1", msgs, 4);
    s = open_src("t1", "g1", NULL);
    for (int i = 0; i < 4; i++)
        T_EQ_INT(next(s, &tx[i], &err), CDC_SRC_TXN);
    if (!tx[3])
        return;
    /* autoglm */
    T_EQ_INT(tx[0]->nchanges, 1);
    {
        const cdc_change_t *ch = &tx[0]->changes[0];
        T_EQ_INT(ch->op, 'u');
        T_EQ_STR(ch->tbl->db, "shop");
        T_EQ_STR(ch->tbl->name, "orders");
        T_EQ_INT(ch->pos, 2507);
        T_EQ_INT(ch->row, 3);
        T_EQ_STR(tx[0]->file, "mysql-bin.000003");
        T_EQ_STR(tx[0]->connector, "mariadb");
        T_EQ_STR(tx[0]->gtid, "0-1-4");
        T_EQ_INT(tx[0]->commit_us, 1700000000123000LL);
        T_EQ_INT(col(ch, ch->after, "id")->kind, CDC_V_INT);
        T_EQ_INT(col(ch, ch->after, "id")->u.i, 7);
        T_ASSERT(ch->tbl->npk == 1 && (ch->tbl->cols[ch->tbl->pk[0]].flags & CDC_COL_PK));
        T_EQ_INT(col(ch, ch->after, "price")->kind, CDC_V_STRING);
        T_EQ_STR(col(ch, ch->after, "price")->s, "-0.50");
        T_EQ_INT(col(ch, ch->after, "big")->kind, CDC_V_UINT);
        T_ASSERT(col(ch, ch->after, "big")->u.u == UINT64_MAX);
        T_EQ_INT(col(ch, ch->after, "d")->kind, CDC_V_DOUBLE);
        T_EQ_INT(col(ch, ch->after, "ok")->kind, CDC_V_BOOL);
        T_EQ_INT(col(ch, ch->after, "j")->kind, CDC_V_JSON);
        T_EQ_STR(col(ch, ch->after, "j")->s, "{\"a\":[1,\"x\"]}");
        T_EQ_INT(col(ch, ch->after, "n")->kind, CDC_V_NULL);
        T_EQ_INT(col(ch, ch->after, "t")->kind, CDC_V_UNCHANGED);
        T_EQ_INT(col(ch, ch->before, "note")->kind, CDC_V_NULL);
        T_EQ_INT(col(ch, ch->before, "price")->kind, CDC_V_ABSENT);
        /* no position of its own: sinks do not compare it */
        T_ASSERT(!tx[0]->pos.file[0] && !tx[0]->pos.lsn && tx[0]->pos.offset == 1);
    }
    /* Debezium, PostgreSQL: schema is the namespace, lsn the position */
    T_EQ_INT(tx[1]->nchanges, 1);
    T_EQ_STR(tx[1]->changes[0].tbl->db, "public");
    T_EQ_INT(tx[1]->changes[0].pos, 4096);
    T_EQ_INT(tx[1]->changes[0].op, 'c');
    T_ASSERT(tx[1]->changes[0].before == NULL);
    T_EQ_STR(tx[1]->connector, "postgresql");
    /* tombstone and another application: empty, skipped */
    T_ASSERT(tx[2]->skipped && tx[2]->nchanges == 0);
    T_ASSERT(tx[3]->skipped && tx[3]->nchanges == 0);
    /* nothing committed before confirm; then up to the confirmed txn */
    T_EQ_INT(committed("g1", "t1"), RD_KAFKA_OFFSET_INVALID);
    T_EQ_INT(cdc_source_kafka_ops.confirm(s, &tx[1]->pos, &err), 0);
    T_EQ_INT(committed("g1", "t1"), 2);
    T_EQ_INT(cdc_source_kafka_ops.confirm(s, &tx[3]->pos, &err), 0);
    T_EQ_INT(committed("g1", "t1"), 4);
    for (int i = 0; i < 4; i++)
        cdc_txn_destroy(tx[i]);
    cdc_source_kafka_ops.destroy(s);
}

/* Text read back keeps its length through NULs (\u0000), also inside
 * JSON columns. */
CDC_TEST(text_keeps_nul_bytes)
{
    const char *msgs[] = {
        "{\"application_id\":\"crm\",\"timestamp\":\"x\",\"version\":1,\"payload\":"
        "{\"op\":\"c\",\"key\":{\"id\":1},\"before\":null,\"after\":{\"id\":1,"
        "\"note\":\"a\\u0000b\\u0000\",\"j\":{\"k\":\"x\\u0000y\"}}},"
        "\"source\":{\"connector\":\"mariadb\",\"server_id\":1,\"db\":\"shop\","
        "\"table\":\"notes\",\"file\":\"mysql-bin.000001\",\"pos\":4,\"row\":0,"
        "\"ts_ms\":1}}",
    };
    cdc_err_t err = {0};
    cdc_txn_t *tx = NULL;
    cdc_source_t *s = topic_src("tnul", msgs, 1, NULL);

    T_EQ_INT(next(s, &tx, &err), CDC_SRC_TXN);
    if (tx && tx->nchanges == 1) {
        const cdc_change_t *ch = &tx->changes[0];
        const cdc_value_t *v = col(ch, ch->after, "note");
        T_EQ_INT(v->kind, CDC_V_STRING);
        T_EQ_INT(v->len, 4);
        T_ASSERT(v->len == 4 && !memcmp(v->s, "a\0b\0", 4));
        v = col(ch, ch->after, "j");
        T_EQ_INT(v->kind, CDC_V_JSON);
        T_EQ_STR(v->s, "{\"k\":\"x\\u0000y\"}");
    } else
        T_ASSERT(!"one change");
    cdc_txn_destroy(tx);
    cdc_source_kafka_ops.destroy(s);
}

/* The messages of one table share one table object (a cache of shapes,
 * bounded); any difference of shape (columns, their order, the key, the
 * connector) is another table; past the bound a shape is built again,
 * and a table dropped from the cache stays valid in the txns holding it. */
#define SHAPE_MSG(conn, tb, key, after)                                      \
    "{\"application_id\":\"crm\",\"timestamp\":\"x\",\"version\":1,"        \
    "\"payload\":{\"op\":\"c\",\"key\":" key ",\"before\":null,\"after\":"  \
    after "},\"source\":{\"connector\":\"" conn "\",\"server_id\":1,"       \
    "\"db\":\"shop\",\"table\":\"" tb "\",\"file\":\"mysql-bin.000001\","   \
    "\"pos\":4,\"row\":0,\"ts_ms\":1}}"

CDC_TEST(table_shared_per_shape)
{
    enum { NEVICT = 80 };
    static char evict[NEVICT][400];
    const char *msgs[7 + NEVICT + 1];
    cdc_err_t err = {0};
    cdc_txn_t *tx[7 + NEVICT + 1] = {0};
    int n = 0, nmsgs;
    cdc_source_t *s;

    msgs[n++] = SHAPE_MSG("mariadb", "orders", "{\"id\":1}", "{\"id\":1,\"note\":\"a\"}");
    msgs[n++] = SHAPE_MSG("mariadb", "orders", "{\"id\":2}", "{\"id\":2,\"note\":\"b\"}");
    msgs[n++] = SHAPE_MSG("mariadb", "orders", "{\"id\":3}", "{\"id\":3,\"note\":\"c\",\"x\":1}");
    msgs[n++] = SHAPE_MSG("mariadb", "orders", "{\"note\":\"d\"}", "{\"id\":4,\"note\":\"d\"}");
    msgs[n++] = SHAPE_MSG("mysql", "orders", "{\"id\":5}", "{\"id\":5,\"note\":\"e\"}");
    msgs[n++] = SHAPE_MSG("mariadb", "orders", "{\"id\":6}", "{\"note\":\"f\",\"id\":6}");
    msgs[n++] = SHAPE_MSG("mariadb", "orders", "{\"id\":7}", "{\"id\":7,\"note\":\"g\"}");
    for (int i = 0; i < NEVICT; i++) {
        snprintf(evict[i], sizeof(evict[i]),
                 SHAPE_MSG("mariadb", "t%d", "{\"id\":1}", "{\"id\":1}"), i);
        msgs[n++] = evict[i];
    }
    msgs[n++] = SHAPE_MSG("mariadb", "orders", "{\"id\":8}", "{\"id\":8,\"note\":\"h\"}");
    nmsgs = n;
    s = topic_src("tshape", msgs, nmsgs, NULL);
    for (int i = 0; i < nmsgs; i++) {
        T_EQ_INT(next(s, &tx[i], &err), CDC_SRC_TXN);
        if (!tx[i] || tx[i]->nchanges != 1) {
            T_ASSERT(!"one change per message");
            goto out;
        }
    }
#define TB(i) (tx[i]->changes[0].tbl)
    T_ASSERT(TB(0) == TB(1));  /* same shape: one table */
    T_ASSERT(TB(0) == TB(6));
    T_ASSERT(TB(2) != TB(0));  /* another column */
    T_EQ_INT(TB(2)->ncols, 3);
    T_ASSERT(TB(3) != TB(0));  /* another key */
    T_EQ_STR(TB(3)->cols[TB(3)->pk[0]].name, "note");
    T_ASSERT(TB(4) != TB(0));  /* another connector */
    T_ASSERT(TB(5) != TB(0));  /* the columns in another order */
    T_EQ_STR(TB(5)->cols[0].name, "note");
    for (int i = 7; i < 7 + NEVICT; i++) {
        char want[16];
        snprintf(want, sizeof(want), "t%d", i - 7);
        T_EQ_STR(TB(i)->name, want);
    }
    /* orders was dropped from the cache by the 80 other shapes: built
     * again, equal, while the old one is still whole in its txns */
    T_EQ_STR(TB(nmsgs - 1)->name, "orders");
    T_EQ_INT(TB(nmsgs - 1)->ncols, 2);
    T_EQ_INT(TB(nmsgs - 1)->npk, 1);
    T_EQ_STR(TB(0)->name, "orders");
    T_EQ_STR(TB(0)->cols[1].name, "note");
    T_EQ_INT(TB(0)->cols[TB(0)->pk[0]].flags & CDC_COL_PK, CDC_COL_PK);
#undef TB
out:
    cdc_source_kafka_ops.destroy(s);
    for (int i = 0; i < nmsgs; i++)
        cdc_txn_destroy(tx[i]);
}

CDC_TEST(bad_message_fails_or_is_skipped)
{
    const char *msgs[] = {"not json", "{\"x\":1}"};
    cdc_err_t err = {0};
    cdc_txn_t *tx = NULL;
    cdc_source_t *s = topic_src("t2", msgs, 2, NULL);

    T_EQ_INT(next(s, &tx, &err), -1);
    T_EQ_INT(err.code, CDC_EXIT_DATA);
    T_ASSERT(strstr(err.msg, "t2[0] offset 0") != NULL);
    cdc_source_kafka_ops.destroy(s);
    T_EQ_INT(committed("g2", "t2"), RD_KAFKA_OFFSET_INVALID);
    s = open_src("t2", "g2b", "skip");
    for (int i = 0; i < 2; i++) {
        cdc_err_t e2 = {0};
        T_EQ_INT(next(s, &tx, &e2), CDC_SRC_TXN);
        T_ASSERT(tx && tx->skipped && !tx->nchanges);
        T_EQ_INT(cdc_source_kafka_ops.confirm(s, &tx->pos, &e2), 0);
        cdc_txn_destroy(tx);
    }
    T_EQ_INT(committed("g2b", "t2"), 2);
    cdc_source_kafka_ops.destroy(s);
}

CDC_TEST(config_errors)
{
    cdc_conf_t *c = cdc_conf_new();
    cdc_err_t err = {0};
    T_ASSERT(cdc_source_kafka_ops.create(c, &err) == NULL);
    T_EQ_INT(err.code, CDC_EXIT_CONFIG); /* no kafka.topics */
    cdc_conf_set(c, "kafka.topics", "a", NULL);
    cdc_err_clear(&err);
    T_ASSERT(cdc_source_kafka_ops.create(c, &err) == NULL);
    T_ASSERT(strstr(err.msg, "kafka.brokers") != NULL);
    cdc_conf_set(c, "kafka.brokers", "127.0.0.1:1", NULL);
    cdc_conf_set(c, "kafka_source.bad_message", "ignore", NULL);
    cdc_err_clear(&err);
    T_ASSERT(cdc_source_kafka_ops.create(c, &err) == NULL);
    T_ASSERT(strstr(err.msg, "bad_message") != NULL);
    cdc_conf_destroy(c);
}

int main(void)
{
    int rc = cdc_test_run();
    if (mc)
        rd_kafka_mock_cluster_destroy(mc);
    if (mrk)
        rd_kafka_destroy(mrk);
    return rc;
}
