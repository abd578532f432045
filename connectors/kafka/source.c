/* SPDX-License-Identifier: Apache-2.0 */
/*
 * source.c - `--source kafka`: envelopes from Kafka topics back into
 * transactions, consumed as a consumer group.
 *
 * Every message is one autoglm or Debezium envelope (detected per
 * message, docs/ENVELOPE.md) and becomes one cdc_txn_t with one change.
 * Its table is described by the envelope (connector, db or schema, table,
 * the column names of the images in order, which of them the key names)
 * and taken from a bounded cache of such shapes (tcache_t), so the
 * messages of one table share one cdc_table_t as a binlog's rows do;
 * values are typed from JSON: integers -> INT/UINT,
 * other numbers -> DOUBLE, strings -> STRING (decimal strings stay
 * strings), objects/arrays -> JSON, booleans, null.  The change keeps the
 * envelope's own position (binlog file/pos/row or LSN) and commit time,
 * so the mapping engine ranks it exactly as if it came from the original
 * source.
 *
 * Offsets: auto commit and auto offset store are off.  Each handed-out
 * txn gets a process-local sequence number in pos.offset (pos.file and
 * pos.lsn stay empty: Kafka partitions have no total order, so sinks do
 * not compare these positions); the source remembers (seq, topic,
 * partition, offset).  confirm(pos) - called by the pipeline only after
 * the sink delivered every txn up to pos durably - commits, synchronously,
 * the next offset of every partition covered.  So a killed worker loses
 * nothing (uncommitted messages are consumed again by whoever gets the
 * partition) and the only duplicates are the messages delivered after its
 * last commit; the wide sinks make those no-ops (a value replaces a field
 * only with a strictly greater rank, and a replay carries the same rank).
 *
 * Rebalances: on revoke, what is confirmed is committed and the pending
 * entries of the revoked partitions are forgotten (txns of them still in
 * the pipeline are delivered; their new owner may deliver them again, as
 * no-ops).  Eager and cooperative assignment protocols are both handled.
 *
 * Configuration: kafka.brokers, kafka.topics (comma list, or a regex
 * starting with ^), kafka.group.id (default autoglm-cdc-<pipeline.name>),
 * kafka_source.from (earliest|latest: where a group without committed
 * offsets starts; default earliest), kafka_source.bad_message (fail|skip),
 * application_id (envelopes of other applications are skipped, counted
 * and reported once per id), any other kafka.<prop> is passed to
 * librdkafka.  Memory: one txn per message, so the pipeline's in-flight
 * bounds hold.  librdkafka's own buffers are bounded by defaults that
 * kafka.<prop> may override: one fetch adds at most fetch.max.bytes (1 MB
 * instead of 50 MB) and max.partition.fetch.bytes (128 KB instead of 1 MB)
 * per partition - of compressed bytes, which a zstd batch of envelopes
 * multiplies by up to 40 when it is decompressed (librdkafka's defaults
 * queued 40 MB from one fetch of 1 MB); a broker still returns at least one
 * whole record batch.  The prefetch queue (queued.max.messages.kbytes,
 * 24 MB instead of 64 MB) is checked before each fetch; librdkafka 2.0
 * looks at a full queue again only a second later, so the queue must hold
 * a second of consumption: 8 MB starved the consumer (300k envelopes of
 * 480 bytes took 1.6 times as long), 24 MB keeps the speed of the
 * unbounded defaults at 0.75 times their peak RSS (docs/OPERATIONS.md).
 * The offsets to commit (pend) are kept per run of consecutive messages of
 * a partition, so they do not grow with the messages between two
 * checkpoints either (pend_t).
 */
#include <inttypes.h>
#include <limits.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <yajl/yajl_tree.h>

#include "cdc/conf.h"
#include "cdc/envelope.h"
#include "cdc/jsontree.h"
#include "cdc/log.h"
#include "cdc/plugin.h"

extern const cdc_source_ops_t cdc_source_kafka_ops;

#define FAC "kafkasrc"

/* The offsets to commit as the pipeline confirms: a run of messages of one
 * partition with consecutive offsets, handed out with consecutive seqs
 * seq0..seq (the message of seq0 + k is at offset next0 - 1 + k), so a
 * confirmation inside the run commits exactly up to it.  Past PEND_MAX
 * entries (partitions interleaved message by message, gaps in the offsets)
 * a message joins the latest run of its partition anyway, which then
 * commits only as a whole (seq0 = seq): later, never lost, and the list
 * stays bounded however long a checkpoint takes. */
#define PEND_MAX 4096
typedef struct pend {
    uint64_t seq0, seq;
    char *topic;
    int32_t part;
    int64_t next0, next; /* offset to commit after seq0's / seq's message */
} pend_t;

/* The tables of the shapes seen lately: a message's table is looked up by
 * its shape (tshape_key), so the messages of one table share one table
 * object (and the Debezium writer's schema texts cached in it) instead of
 * building one per message.  At most TCACHE_MAX shapes; past that the
 * oldest entry is dropped (txns still holding it keep it alive). */
#define TCACHE_MAX 64
typedef struct tcache_ent {
    uint64_t hash;
    cdc_buf_t key;
    cdc_table_t *t; /* our reference */
} tcache_ent_t;

typedef struct ksrc {
    cdc_source_t base;
    tcache_ent_t tc[TCACHE_MAX];
    int ntc, tc_next, tc_last;
    cdc_buf_t tkey;
    rd_kafka_t *rk;
    char *topics;
    char *group;
    char *app;
    int bad_skip;
    uint64_t seq;
    pend_t *pend;
    size_t npend, cap;
    uint64_t foreign, bad, consumed;
    char **foreign_ids;
    int nforeign_ids;
    int fatal;
    char fatal_msg[400];
} ksrc_t;

static int is_reserved(const char *k)
{
    return !strcmp(k, "brokers") || !strcmp(k, "topic") ||
           !strcmp(k, "topics") || !strcmp(k, "tombstones") ||
           !strcmp(k, "key");
}

static int setp(rd_kafka_conf_t *kc, const cdc_conf_t *conf, const char *ckey,
                const char *prop, const char *val, cdc_err_t *err)
{
    char errstr[512];
    if (rd_kafka_conf_set(kc, prop, val, errstr, sizeof(errstr)) ==
        RD_KAFKA_CONF_OK)
        return 0;
    cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                "kafka source: invalid consumer property \"%s\"", prop);
    if (ckey && cdc_conf_is_secret(ckey))
        cdc_err_detail(err, "librdkafka rejected the value (not shown: "
                            "secret)");
    else
        cdc_err_detail(err, "%s", errstr);
    if (ckey && cdc_conf_where(conf, ckey))
        cdc_err_hint(err, "set at %s; librdkafka properties are listed in its "
                          "CONFIGURATION.md", cdc_conf_where(conf, ckey));
    return -1;
}

/* ---- offsets ------------------------------------------------------------- */

/* Commit the next offset of every partition whose pending entries have
 * seq <= upto, and forget those entries. */
static int commit_upto(ksrc_t *s, uint64_t upto, cdc_err_t *err)
{
    rd_kafka_topic_partition_list_t *l;
    size_t j = 0;
    rd_kafka_resp_err_t e;

    while (j < s->npend && s->pend[j].seq0 > upto) /* (coarse runs are */
        j++;                                       /*  out of order) */
    if (j == s->npend)
        return 0;
    j = 0;
    l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < s->npend; i++) {
        pend_t *p = &s->pend[i];
        int64_t next = p->next;
        if (p->seq0 > upto) {
            s->pend[j++] = *p;
            continue;
        }
        if (p->seq > upto) { /* inside the run: up to upto's message */
            next = p->next0 + (int64_t)(upto - p->seq0);
            p->seq0 = upto + 1;
            p->next0 = next + 1;
        }
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(l, p->topic, p->part);
        if (!tp)
            tp = rd_kafka_topic_partition_list_add(l, p->topic, p->part);
        if (next > tp->offset)
            tp->offset = next;
        if (p->seq > upto)
            s->pend[j++] = *p;
        else
            free(p->topic);
    }
    s->npend = j;
    e = rd_kafka_commit(s->rk, l, 0);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        /* a partition moved to another member meanwhile: its new owner
         * re-reads from the last commit (duplicates, never a loss) */
        if (e == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
            e == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
            e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
            e == RD_KAFKA_RESP_ERR__STATE || e == RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST) {
            CDC_WARN(FAC, "offset commit refused during a rebalance (%s); the "
                     "partitions' new owner re-delivers from the previous "
                     "commit", rd_kafka_err2str(e));
        } else {
            rd_kafka_topic_partition_list_destroy(l);
            cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                        "kafka source: committing offsets failed: %s",
                        rd_kafka_err2str(e));
            cdc_err_hint(err, "check the brokers; uncommitted messages are "
                              "consumed again (the sink makes them no-ops)");
            return -1;
        }
    } else {
        for (int i = 0; i < l->cnt; i++)
            CDC_DEBUG(FAC, "committed %s[%" PRId32 "] @ %" PRId64,
                      l->elems[i].topic, l->elems[i].partition,
                      l->elems[i].offset);
    }
    rd_kafka_topic_partition_list_destroy(l);
    return 0;
}

static void forget_parts(ksrc_t *s, const rd_kafka_topic_partition_list_t *l)
{
    size_t j = 0;
    for (size_t i = 0; i < s->npend; i++) {
        pend_t *p = &s->pend[i];
        if (rd_kafka_topic_partition_list_find(
                (rd_kafka_topic_partition_list_t *)l, p->topic, p->part)) {
            free(p->topic);
            continue;
        }
        s->pend[j++] = *p;
    }
    s->npend = j;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    ksrc_t *s = opaque;
    int coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    rd_kafka_error_t *ke = NULL;

    for (int i = 0; i < parts->cnt; i++)
        CDC_INFO(FAC, "%s %s[%" PRId32 "]",
                 e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assigned"
                                                           : "revoked",
                 parts->elems[i].topic, parts->elems[i].partition);
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (coop)
            ke = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
    } else {
        /* what is confirmed was committed at confirm(); the rest of these
         * partitions is not ours to commit any more */
        forget_parts(s, parts);
        if (coop)
            ke = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
    }
    if (ke) {
        CDC_WARN(FAC, "rebalance: %s", rd_kafka_error_string(ke));
        rd_kafka_error_destroy(ke);
    }
}

static void error_cb(rd_kafka_t *rk, int e, const char *reason, void *opaque)
{
    ksrc_t *s = opaque;
    (void)rk;
    if (e == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[300];
        rd_kafka_fatal_error(s->rk, buf, sizeof(buf));
        s->fatal = 1;
        snprintf(s->fatal_msg, sizeof(s->fatal_msg), "%s", buf);
        return;
    }
    CDC_WARN(FAC, "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)e), reason);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
    (void)rk;
    if (level <= 4)
        CDC_WARN(FAC, "librdkafka %s: %s", fac, buf);
    else
        CDC_DEBUG(FAC, "librdkafka %s: %s", fac, buf);
}

/* ---- create / start ------------------------------------------------------ */

static void ks_destroy(cdc_source_t *base);

static cdc_source_t *ks_create(const cdc_conf_t *conf, cdc_err_t *err)
{
    ksrc_t *s = cdc_xcalloc(1, sizeof(*s));
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    const char *pipe = cdc_conf_pipeline(conf);
    const char *v;
    char gbuf[300], errstr[512];
    int have_boot = 0;

    s->base.ops = &cdc_source_kafka_ops;
    s->app = cdc_xstrdup(cdc_conf_get(conf, "application_id", pipe));
    v = cdc_conf_get(conf, "kafka.topics", NULL);
    if (!v || !*v) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "the kafka source needs "
                    "kafka.topics");
        cdc_err_hint(err, "-X kafka.topics=crm.crm.customers,erp.public.accounts "
                          "or a regex: -X 'kafka.topics=^crm\\..*'");
        goto fail;
    }
    s->topics = cdc_xstrdup(v);
    snprintf(gbuf, sizeof(gbuf), "autoglm-cdc-%s", pipe);
    s->group = cdc_xstrdup(cdc_conf_get(conf, "kafka.group.id", gbuf));
    v = cdc_conf_get(conf, "kafka_source.bad_message", "fail");
    if (strcmp(v, "fail") && strcmp(v, "skip")) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "kafka_source.bad_message: unknown value \"%s\"", v);
        cdc_err_hint(err, "fail (stop at a message that is not an envelope) "
                          "or skip (log it with its offset and go on)");
        goto fail;
    }
    s->bad_skip = !strcmp(v, "skip");
    v = cdc_conf_get(conf, "kafka_source.from", "earliest");
    if (strcmp(v, "earliest") && strcmp(v, "latest")) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "kafka_source.from: unknown value \"%s\"", v);
        cdc_err_hint(err, "earliest or latest (only used when the group has "
                          "no committed offset)");
        goto fail;
    }
    if (setp(kc, conf, NULL, "auto.offset.reset", v, err) ||
        setp(kc, conf, NULL, "enable.auto.commit", "false", err) ||
        setp(kc, conf, NULL, "enable.auto.offset.store", "false", err) ||
        setp(kc, conf, NULL, "enable.partition.eof", "false", err) ||
        setp(kc, conf, NULL, "group.id", s->group, err) ||
        /* bounded memory (the header): kafka.<prop> may set them again */
        setp(kc, conf, NULL, "queued.max.messages.kbytes", "24576", err) ||
        setp(kc, conf, NULL, "fetch.max.bytes", "1048576", err) ||
        setp(kc, conf, NULL, "max.partition.fetch.bytes", "131072", err))
        goto fail;
    v = cdc_conf_get(conf, "kafka.brokers", NULL);
    if (v && *v) {
        if (setp(kc, conf, "kafka.brokers", "bootstrap.servers", v, err))
            goto fail;
        have_boot = 1;
    }
    for (int i = 0; i < conf->n; i++) {
        const char *k = conf->ents[i].key;
        if (strncmp(k, "kafka.", 6) || is_reserved(k + 6) || !k[6])
            continue;
        /* producer-only settings of a shared file are not for us */
        if (!strcmp(k + 6, "enable.idempotence") || !strcmp(k + 6, "acks") ||
            !strncmp(k + 6, "linger", 6) || !strcmp(k + 6, "compression.type")
            || !strncmp(k + 6, "queue.buffering", 15) ||
            !strcmp(k + 6, "message.timeout.ms") ||
            !strcmp(k + 6, "batch.size") || !strcmp(k + 6, "batch.num.messages"))
            continue;
        if (setp(kc, conf, k, k + 6, conf->ents[i].val, err))
            goto fail;
        if (!strcmp(k + 6, "bootstrap.servers") ||
            !strcmp(k + 6, "metadata.broker.list"))
            have_boot = 1;
    }
    if (!have_boot) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "kafka.brokers is not set");
        cdc_err_hint(err, "--kafka-brokers HOST:PORT or -X kafka.brokers=...");
        goto fail;
    }
    rd_kafka_conf_set_opaque(kc, s);
    rd_kafka_conf_set_rebalance_cb(kc, rebalance_cb);
    rd_kafka_conf_set_error_cb(kc, error_cb);
    rd_kafka_conf_set_log_cb(kc, log_cb);
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, sizeof(errstr));
    if (!s->rk) {
        kc = NULL; /* owned by rd_kafka_new only on success */
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "kafka source: %s", errstr);
        goto fail;
    }
    kc = NULL;
    rd_kafka_poll_set_consumer(s->rk);
    return &s->base;
fail:
    if (kc)
        rd_kafka_conf_destroy(kc);
    ks_destroy(&s->base);
    return NULL;
}

static int ks_start(cdc_source_t *base, const cdc_pos_t *resume,
                    cdc_err_t *err)
{
    ksrc_t *s = (ksrc_t *)base;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    char *dup = cdc_xstrdup(s->topics), *save = NULL;
    rd_kafka_resp_err_t e;

    (void)resume; /* the group's committed offsets are the position */
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (*t)
            rd_kafka_topic_partition_list_add(l, t, RD_KAFKA_PARTITION_UA);
    }
    free(dup);
    e = rd_kafka_subscribe(s->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "kafka source: subscribing to "
                    "%s failed: %s", s->topics, rd_kafka_err2str(e));
        cdc_err_hint(err, "kafka.topics: comma-separated names, or one regex "
                          "starting with ^");
        return -1;
    }
    CDC_INFO(FAC, "consuming %s as group %s (application %s)", s->topics,
             s->group, s->app);
    return 0;
}

/* ---- envelopes -> txns --------------------------------------------------- */

static const char *jstr(yajl_val o, const char *k)
{
    yajl_val v = cdc_json_get(o, k);
    return v && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

static int jint(yajl_val o, const char *k, int64_t *out)
{
    yajl_val v = cdc_json_get(o, k);
    if (!v || !YAJL_IS_INTEGER(v))
        return -1;
    *out = v->u.number.i;
    return 0;
}

static int has_name(char **names, uint32_t n, const char *k)
{
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(names[i], k))
            return 1;
    return 0;
}

static cdc_value_t *image(cdc_txn_t *tx, const cdc_table_t *t, yajl_val img,
                          yajl_val unchanged)
{
    cdc_value_t *row;
    if (!img || !YAJL_IS_OBJECT(img))
        return NULL;
    row = cdc_txn_values(tx, t->ncols); /* ABSENT unless present */
    for (size_t i = 0; i < img->u.object.len; i++)
        for (uint32_t c = 0; c < t->ncols; c++)
            if (!strcmp(t->cols[c].name, img->u.object.keys[i])) {
                cdc_json_to_value(&tx->arena, &row[c],
                                  img->u.object.values[i]);
                break;
            }
    if (unchanged && YAJL_IS_ARRAY(unchanged))
        for (size_t i = 0; i < unchanged->u.array.len; i++) {
            yajl_val u = unchanged->u.array.values[i];
            for (uint32_t c = 0; u && YAJL_IS_STRING(u) && c < t->ncols; c++)
                if (!strcmp(t->cols[c].name, u->u.string))
                    row[c].kind = CDC_V_UNCHANGED;
        }
    return row;
}

static void tkey_str(cdc_buf_t *b, const char *str)
{
    uint32_t len = (uint32_t)strlen(str);
    cdc_buf_put(b, &len, sizeof(len));
    cdc_buf_put(b, str, len);
}

static uint64_t tkey_hash(const cdc_buf_t *b)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < b->len; i++)
        h = (h ^ (uint8_t)b->p[i]) * 1099511628211ull;
    return h;
}

/* The table of this shape (a new reference): from the cache, or built
 * and cached.  The shape is everything the table is made of: the
 * connector (the Debezium schema texts cached in a table depend on it),
 * db, table, the column names in order and which of them are key. */
static cdc_table_t *table_for(ksrc_t *s, const char *conn, const char *db,
                              const char *table, char **names, uint32_t n,
                              yajl_val key)
{
    cdc_buf_t *k = &s->tkey;
    uint64_t h;
    tcache_ent_t *e;
    cdc_table_t *t;

    cdc_buf_reset(k);
    tkey_str(k, conn ? conn : "");
    tkey_str(k, db);
    tkey_str(k, table);
    for (uint32_t i = 0; i < n; i++) {
        tkey_str(k, names[i]);
        cdc_buf_putc(k, cdc_json_get(key, names[i]) ? 'k' : '-');
    }
    h = tkey_hash(k);
    for (int i = 0, j = s->tc_last; i < s->ntc; i++, j = (j + 1) % s->ntc) {
        e = &s->tc[j];
        if (e->hash == h && e->key.len == k->len &&
            !memcmp(e->key.p, k->p, k->len)) {
            s->tc_last = j;
            return cdc_table_keep(e->t);
        }
    }
    t = cdc_table_new(db, table, n);
    for (uint32_t i = 0; i < n; i++) {
        t->cols[i].name = cdc_xstrdup(names[i]);
        if (cdc_json_get(key, names[i])) {
            t->cols[i].flags |= CDC_COL_PK;
            t->pk = cdc_xrealloc(t->pk, (t->npk + 1) * sizeof(*t->pk));
            t->pk[t->npk++] = i;
        }
    }
    if (s->ntc < TCACHE_MAX) {
        e = &s->tc[s->ntc++];
        memset(e, 0, sizeof(*e));
    } else {
        e = &s->tc[s->tc_next];
        s->tc_next = (s->tc_next + 1) % TCACHE_MAX;
        cdc_table_destroy(e->t);
        cdc_buf_reset(&e->key);
    }
    cdc_buf_put(&e->key, k->p, k->len);
    e->hash = h;
    e->t = cdc_table_keep(t);
    s->tc_last = (int)(e - s->tc);
    return t;
}

static const char *static_connector(const char *c)
{
    if (!c)
        return "mysql";
    if (!strcmp(c, "mariadb"))
        return "mariadb";
    if (!strcmp(c, "postgresql"))
        return "postgresql";
    return "mysql";
}

/* One envelope -> a txn with one change.  Returns the txn, or NULL with
 * err (not an envelope), or NULL without err and *foreign set to the
 * application id when the envelope belongs to another application. */
static cdc_txn_t *decode(ksrc_t *s, const char *text, size_t tlen,
                         char *foreign, size_t flen, cdc_err_t *err)
{
    char ebuf[256];
    yajl_val root = cdc_json_parse(text, tlen, ebuf, sizeof(ebuf));
    yajl_val payload, source, before, after, key;
    const char *op, *app, *db, *table, *conn, *file, *lsn;
    cdc_txn_t *tx = NULL;
    cdc_table_t *t;
    char **names = NULL;
    uint32_t n = 0;
    int64_t v;

    foreign[0] = '\0';
    if (!root) {
        cdc_err_set(err, CDC_EXIT_DATA, 0, "not JSON: %s", ebuf);
        return NULL;
    }
    payload = cdc_json_get(root, "payload");
    source = cdc_json_get(root, "source");
    app = jstr(root, "application_id");
    op = payload ? jstr(payload, "op") : NULL;
    if (!app || !op) {
        /* Debezium: {before, after, source{name,...}, op, ts_ms} */
        payload = root;
        op = jstr(root, "op");
        app = source ? jstr(source, "name") : NULL;
    }
    if (!source || !app || !op || !op[0] || !strchr("cudrt", op[0])) {
        cdc_err_set(err, CDC_EXIT_DATA, 0, "not an autoglm or Debezium "
                    "envelope (application_id, payload.op, source / op, "
                    "source.name)");
        goto out;
    }
    if (strcmp(app, s->app)) {
        snprintf(foreign, flen, "%s", app);
        goto out;
    }
    conn = jstr(source, "connector");
    db = jstr(source, "schema");
    if (!db || (conn && strcmp(conn, "postgresql")))
        db = jstr(source, "db") ? jstr(source, "db") : db;
    table = jstr(source, "table");
    if (!db || !table) {
        cdc_err_set(err, CDC_EXIT_DATA, 0, "envelope without source.db (or "
                    "source.schema) and source.table");
        goto out;
    }
    before = cdc_json_get(payload, "before");
    after = cdc_json_get(payload, "after");
    key = cdc_json_get(payload, "key");
    for (int pass = 0; pass < 2; pass++) {
        yajl_val img = pass ? before : after;
        if (!img || !YAJL_IS_OBJECT(img))
            continue;
        for (size_t i = 0; i < img->u.object.len; i++)
            if (!has_name(names, n, img->u.object.keys[i])) {
                names = cdc_xrealloc(names, (n + 1) * sizeof(*names));
                names[n++] = (char *)img->u.object.keys[i];
            }
    }
    t = table_for(s, conn, db, table, names, n, key);
    free(names);
    tx = cdc_txn_new();
    {
        cdc_change_t *ch = cdc_txn_add(tx, op[0], t);
        cdc_table_destroy(t); /* the txn holds its reference */
        ch->before = image(tx, t, before, NULL);
        ch->after = image(tx, t, after, cdc_json_get(payload, "unchanged"));
        tx->connector = static_connector(conn);
        if (!jint(source, "ts_ms", &v))
            tx->commit_us = v * 1000;
        if (!jint(source, "server_id", &v))
            tx->server_id = (uint32_t)v;
        if (jstr(source, "gtid"))
            snprintf(tx->gtid, sizeof(tx->gtid), "%s", jstr(source, "gtid"));
        if (!jint(source, "txId", &v))
            tx->xid = (uint64_t)v;
        file = jstr(source, "file");
        if (file)
            tx->file = cdc_arena_memdup(&tx->arena, file, strlen(file));
        if (!jint(source, "pos", &v))
            ch->pos = (uint64_t)v;
        if (!jint(source, "row", &v))
            ch->row = (uint32_t)v;
        lsn = jstr(source, "lsn");
        {
            unsigned hi, lo;
            if (lsn && sscanf(lsn, "%X/%X", &hi, &lo) == 2)
                ch->pos = ((uint64_t)hi << 32) | lo;
            else if (!jint(source, "lsn", &v))
                ch->pos = (uint64_t)v;
        }
    }
out:
    yajl_tree_free(root);
    return tx;
}

static int remember(ksrc_t *s, const rd_kafka_message_t *m, uint64_t seq)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    pend_t *p = s->npend ? &s->pend[s->npend - 1] : NULL;

    if (p && p->part == m->partition && p->seq + 1 == seq &&
        p->next == m->offset && !strcmp(p->topic, topic)) {
        p->seq = seq; /* the run goes on */
        p->next = m->offset + 1;
        return 0;
    }
    for (size_t i = s->npend, k = 0; s->npend >= PEND_MAX && i > 0 && k < 64;
         i--, k++) {
        p = &s->pend[i - 1];
        if (p->part != m->partition || strcmp(p->topic, topic))
            continue;
        /* committing next needs every message before seq confirmed, which
         * confirm(seq) says (confirmations are prefixes) */
        p->seq0 = p->seq = seq;
        if (m->offset + 1 > p->next)
            p->next = m->offset + 1;
        p->next0 = p->next;
        return 0;
    }
    if (s->npend == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->pend = cdc_xrealloc(s->pend, s->cap * sizeof(*s->pend));
    }
    p = &s->pend[s->npend++];
    p->seq0 = p->seq = seq;
    p->topic = cdc_xstrdup(topic);
    p->part = m->partition;
    p->next0 = p->next = m->offset + 1;
    return 0;
}

static int ks_next(cdc_source_t *base, cdc_txn_t **out, int timeout_ms,
                   cdc_err_t *err)
{
    ksrc_t *s = (ksrc_t *)base;
    rd_kafka_message_t *m;
    cdc_txn_t *tx = NULL;
    char foreign[128];
    cdc_err_t de = {0};

    *out = NULL;
    if (s->fatal)
        return cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_FATAL,
                           "kafka source: fatal consumer error: %s",
                           s->fatal_msg);
    m = rd_kafka_consumer_poll(s->rk, timeout_ms);
    if (!m)
        return CDC_SRC_IDLE;
    if (m->err) {
        rd_kafka_resp_err_t e = m->err;
        char msg[300];
        snprintf(msg, sizeof(msg), "%s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        if (e == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            return CDC_SRC_IDLE;
        if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
            e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "kafka source: %s", msg);
            cdc_err_hint(err, "create the topics first or fix kafka.topics");
            return -1;
        }
        CDC_WARN(FAC, "consumer: %s", msg);
        return CDC_SRC_IDLE;
    }
    s->consumed++;
    if (m->payload && m->len) {
        char *text = cdc_xstrndup(m->payload, m->len);
        tx = decode(s, text, m->len, foreign, sizeof(foreign), &de);
        free(text);
    } else
        foreign[0] = '\0'; /* tombstone: nothing to apply */
    if (!tx && de.msg[0]) {
        s->bad++;
        if (!s->bad_skip) {
            cdc_err_set(err, CDC_EXIT_DATA, 0, "kafka source: %s[%" PRId32
                        "] offset %" PRId64 ": %s", rd_kafka_topic_name(m->rkt),
                        m->partition, m->offset, de.msg);
            cdc_err_hint(err, "fix the producer, or set "
                              "kafka_source.bad_message=skip to log and pass "
                              "over such messages");
            rd_kafka_message_destroy(m);
            return -1;
        }
        CDC_WARN(FAC, "skipping %s[%" PRId32 "] offset %" PRId64 ": %s",
                 rd_kafka_topic_name(m->rkt), m->partition, m->offset, de.msg);
    }
    if (!tx && foreign[0]) {
        int seen = 0;
        s->foreign++;
        for (int i = 0; i < s->nforeign_ids && !seen; i++)
            seen = !strcmp(s->foreign_ids[i], foreign);
        if (!seen && s->nforeign_ids < 64) {
            s->foreign_ids = cdc_xrealloc(s->foreign_ids,
                                          (size_t)(s->nforeign_ids + 1) *
                                              sizeof(char *));
            s->foreign_ids[s->nforeign_ids++] = cdc_xstrdup(foreign);
            CDC_WARN(FAC, "envelopes of application '%s' are skipped: this "
                     "pipeline maps application '%s' (set application_id, or "
                     "run one worker group per application)", foreign, s->app);
        }
    }
    if (!tx) {
        /* still a txn, so that its offset is committed in order */
        tx = cdc_txn_new();
        tx->skipped = 1;
        tx->connector = "kafka";
    }
    tx->pos.offset = ++s->seq;
    remember(s, m, s->seq);
    rd_kafka_message_destroy(m);
    *out = tx;
    return CDC_SRC_TXN;
}

static int ks_confirm(cdc_source_t *base, const cdc_pos_t *durable,
                      cdc_err_t *err)
{
    ksrc_t *s = (ksrc_t *)base;
    return commit_upto(s, durable->offset, err);
}

static void ks_destroy(cdc_source_t *base)
{
    ksrc_t *s = (ksrc_t *)base;
    if (!s)
        return;
    if (s->rk) {
        /* leave the group: the partitions move at once; nothing that was
         * not confirmed is committed */
        rd_kafka_consumer_close(s->rk);
        rd_kafka_destroy(s->rk);
    }
    if (s->consumed)
        CDC_INFO(FAC, "consumed %" PRIu64 " messages (%" PRIu64 " of other "
                 "applications, %" PRIu64 " not envelopes)", s->consumed,
                 s->foreign, s->bad);
    for (size_t i = 0; i < s->npend; i++)
        free(s->pend[i].topic);
    free(s->pend);
    for (int i = 0; i < s->ntc; i++) {
        cdc_table_destroy(s->tc[i].t);
        cdc_buf_free(&s->tc[i].key);
    }
    cdc_buf_free(&s->tkey);
    for (int i = 0; i < s->nforeign_ids; i++)
        free(s->foreign_ids[i]);
    free(s->foreign_ids);
    free(s->topics);
    free(s->group);
    free(s->app);
    free(s);
}

const cdc_source_ops_t cdc_source_kafka_ops = {
    .name = "kafka",
    .abi = CDC_PLUGIN_ABI,
    .create = ks_create,
    .start = ks_start,
    .next = ks_next,
    .confirm = ks_confirm,
    .destroy = ks_destroy,
};
