/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka.c - the Kafka sink: one message per row change through librdkafka.
 *
 * Message layout
 *   topic  kafka.topic template, default "{source}.{db}.{table}";
 *          {source} = application_id (default pipeline.name, default
 *          source.type).  Substituted names keep [A-Za-z0-9._-]; any other
 *          byte becomes '_' (Kafka's legal topic alphabet).
 *   key    cdc_envelope_key(): JSON object of the primary key, so every
 *          change of one row lands in one partition, in order
 *          (kafka.key=none sends no key).
 *   value  cdc_envelope_write() in conf "format" (autoglm|debezium).
 *   A delete is followed by a tombstone (same key, NULL value) when
 *   kafka.tombstones=true, for log-compacted topics.
 *
 * Delivery and checkpoints
 *   Every message carries its cdc_txn_t as msg_opaque.  write() sets
 *   tx->pending to the number of messages produced for the txn (0 for an
 *   empty or skipped txn); the delivery-report callback decrements it and
 *   sets tx->failed on a failed delivery.  All librdkafka callbacks
 *   (delivery reports, errors, logs via log.queue) run on the caller's
 *   thread from rd_kafka_poll()/rd_kafka_flush(), so no locking is needed.
 *   Once any delivery failed or the producer hit a fatal error it cannot
 *   recover from (below), poll(), flush() and write() return -1 and the
 *   pipeline stops with its checkpoint at the last fully delivered txn.
 *
 * Fatal idempotent-producer errors (recreating the producer)
 *   The sink keeps every message librdkafka has not acknowledged in a
 *   list in produce order (kmsg_t; librdkafka references the payload
 *   instead of copying it, so this costs no second copy).  When the
 *   idempotent producer raises a fatal error that cluster faults cause
 *   (OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID, an epoch or
 *   sequence mismatch after a leader change), the sink purges and
 *   destroys that producer, creates a new one with the same settings and
 *   produces every unacknowledged message again, in the original order,
 *   before anything new.  Per partition the unacknowledged messages are a
 *   suffix of what was produced, so the topic may hold that suffix twice
 *   (at-least-once: duplicates only inside the unacknowledged window) but
 *   never out of order and never with a gap.  At most
 *   KAFKA_RECREATE_MAX recreations within KAFKA_RECREATE_WINDOW_MS; one
 *   more fails the run (exit 69) with the last error.  Other fatal errors
 *   (authorization, a bug) fail the run at once (exit 1).
 *
 * Bounded memory
 *   librdkafka's queue is capped (queue.buffering.max.messages=50000,
 *   queue.buffering.max.kbytes=8192 unless overridden); when it is full
 *   write() serves delivery reports and retries, so the reader blocks.
 *   Nothing is dropped and nothing is buffered without limit.
 *
 * Broker outages
 *   librdkafka retries for message.timeout.ms (default here 300000 = 5 min,
 *   librdkafka's own default); a message still undelivered then fails the
 *   run with a non-zero exit rather than blocking forever.
 *
 * Dead letters (errors.mode=dead-letter, sinks/dead_letter.h)
 *   A message the broker or librdkafka refuses for good (too large for the
 *   topic, topic missing or forbidden, invalid record) is produced again,
 *   same key and value, to errors.dead_letter_topic (default
 *   "{source}.dead_letter") with headers autoglm.error, autoglm.topic and
 *   autoglm.pipeline, as Kafka Connect's dead-letter queue does.  Its txn
 *   stays pending until the dead letter is delivered, so the checkpoint
 *   covers it only then; a dead letter that fails fails the run.  A broker
 *   refuses a whole batch: the other messages of a batch too large for the
 *   topic become dead letters as well (kafka.batch.num.messages=1 avoids
 *   it, at a cost in throughput).
 *
 * Producer defaults (each overridable with kafka.<property>):
 *   enable.idempotence=true acks=all compression.type=zstd.
 *
 * Topics are created by the broker on first use (auto-creation) unless a
 * kafka.topic_* setting asks for explicit settings (kafka_topics.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "cdc/conf.h"
#include "cdc/envelope.h"
#include "cdc/log.h"
#include "cdc/pipeline.h"
#include "cdc/plugin.h"
#include "cdc/metrics.h"
#include "sinks/dead_letter.h"
#include "sinks/kafka.h"
#include "sinks/xml.h"

#define FAC "kafka"

#define KAFKA_DEF_TOPIC "{source}.{db}.{table}"
#define KAFKA_DEF_QMSGS "50000"
#define KAFKA_DEF_QKB "8192"
#define KAFKA_DEF_MSG_TIMEOUT "300000"
#define KAFKA_BLOCK_WARN_MS 5000 /* repeat "reader blocked" every 5 s */
#define KAFKA_DOWN_WARN_MS 30000 /* repeat "brokers still down" */
#define KAFKA_DESTROY_FLUSH_MS 2000
#define KAFKA_TOPIC_MAX 249
#define KAFKA_RECREATE_MAX 5           /* producer recreations ... */
#define KAFKA_RECREATE_WINDOW_MS 600000 /* ... within 10 minutes */

typedef struct topic_ent {
    struct topic_ent *next;
    uint32_t hash;
    char *db;
    char *table;
    char *name; /* topic name, to recreate rkt with a new producer */
    rd_kafka_topic_t *rkt;
} topic_ent_t;

/* A message produced and not yet acknowledged (or finally failed).  One
 * allocation: the struct, then topic name, key and value bytes. */
typedef struct kmsg {
    struct kmsg *prev, *next;
    cdc_txn_t *tx;
    rd_kafka_headers_t *hdrs; /* NULL or ours; copies are produced */
    const char *topic;
    const char *key, *val; /* val NULL: tombstone */
    size_t klen, vlen;
    int dl;   /* a dead letter */
    int live; /* handed to the current producer, delivery report due */
} kmsg_t;

typedef struct kafka_sink {
    cdc_sink_t base;
    rd_kafka_t *rk;
    char *tmpl;   /* kafka.topic */
    char *source; /* {source} */
    cdc_xml_opts_t *xo; /* format=xml: one XML document per message */
    int tombstones;
    int with_key;
    int rd_debug; /* kafka.debug set */
    int64_t msg_timeout_ms;
    int64_t qmax_msgs;
    int64_t qmax_kb;
    cdc_kafka_topic_spec_t tspec; /* kafka.topic_* */
    cdc_env_opts_t eo;
    rd_kafka_topic_t *txtopic; /* debezium transaction metadata, lazy */
    cdc_dbz_txs_t txs;         /* its state across fragments (eo.txs) */
    int txbegun;               /* the BEGIN of the open transaction is out */

    topic_ent_t **tab; /* topic handle cache by (db, table) */
    uint32_t tabsz;
    uint32_t ntopics;

    cdc_buf_t key;
    cdc_buf_t val;

    /* Set from callbacks (served on the caller's thread). */
    int fatal;        /* ERR__FATAL seen */
    int failed;       /* some delivery failed; derr holds the first */
    cdc_err_t derr;
    int detached;     /* destroy(): txns may be gone, do not touch them */
    int brokers_down; /* ERR__ALL_BROKERS_DOWN seen, not yet recovered */
    int tls_auth_errs; /* consecutive TLS / SASL failures */
    int64_t down_since_ms, down_warn_ms;

    /* Unacknowledged messages in produce order, and what a producer
     * recreation needs. */
    kmsg_t *uhead, *utail;
    uint64_t unacked;
    rd_kafka_conf_t *kc_tmpl; /* copy of the producer configuration */
    char *dl_name;            /* dead-letter topic name */
    int fatal_final;          /* a fatal error that ends the run */
    int recreate_n;           /* recreations in the current window */
    int64_t recreate_win_ms;  /* start of that window */
    uint64_t recreations;     /* total, for tests and logs */

    int64_t block_since_ms; /* write() waiting on a full queue since */
    int64_t block_warn_ms;  /* last "reader blocked" warning */
    cdc_sink_kafka_stats_t st;

    int dead_letter;           /* errors.mode=dead-letter */
    rd_kafka_topic_t *dl_rkt;  /* errors.dead_letter_topic */
    char *pipeline;
} kafka_sink_t;

static int dead_letter(kafka_sink_t *s, cdc_txn_t *tx, const char *topic,
                       const void *key, size_t klen, const void *val,
                       size_t vlen, rd_kafka_resp_err_t why);

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* Topic names                                                         */
/* ------------------------------------------------------------------ */

static int topic_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static void put_sanitized(cdc_buf_t *b, const char *s)
{
    for (; *s; s++)
        cdc_buf_putc(b, topic_char_ok((unsigned char)*s) ? *s : '_');
}

/* Expand the template into b.  -1 with err on an unknown placeholder, an
 * unterminated "{" or a literal byte Kafka does not accept. */
static int topic_expand(const char *tmpl, const char *source,
                        const char *db, const char *table, cdc_buf_t *b,
                        cdc_err_t *err)
{
    const char *p = tmpl;

    cdc_buf_reset(b);
    while (*p) {
        if (*p == '{') {
            const char *e = strchr(p, '}');
            size_t n;

            if (!e) {
                cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                            "kafka.topic \"%s\": unterminated \"{\"", tmpl);
                cdc_err_hint(err, "placeholders are {source}, {db} and "
                                  "{table}");
                return -1;
            }
            n = (size_t)(e - p - 1);
            if (n == 6 && !memcmp(p + 1, "source", 6))
                put_sanitized(b, source);
            else if (n == 2 && !memcmp(p + 1, "db", 2))
                put_sanitized(b, db);
            else if (n == 5 && !memcmp(p + 1, "table", 5))
                put_sanitized(b, table);
            else {
                cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                            "kafka.topic \"%s\": unknown placeholder "
                            "\"%.*s\"", tmpl, (int)(e - p + 1), p);
                cdc_err_hint(err, "placeholders are {source}, {db} and "
                                  "{table}");
                return -1;
            }
            p = e + 1;
            continue;
        }
        if (!topic_char_ok((unsigned char)*p)) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                        "kafka.topic \"%s\": character '%c' is not allowed "
                        "in a Kafka topic name", tmpl, *p);
            cdc_err_hint(err, "topic names may contain only letters, "
                              "digits, '.', '_' and '-'");
            return -1;
        }
        cdc_buf_putc(b, *p++);
    }
    return 0;
}

static uint32_t hash_names(const char *db, const char *table)
{
    uint32_t h = 2166136261u;

    for (const char *p = db; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    h = (h ^ 0xffu) * 16777619u; /* separator */
    for (const char *p = table; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
}

static void topic_cache_grow(kafka_sink_t *s)
{
    uint32_t nsz = s->tabsz ? s->tabsz * 2 : 64;
    topic_ent_t **ntab = cdc_xcalloc(nsz, sizeof(*ntab));

    for (uint32_t i = 0; i < s->tabsz; i++) {
        topic_ent_t *t = s->tab[i], *next;

        for (; t; t = next) {
            next = t->next;
            t->next = ntab[t->hash & (nsz - 1)];
            ntab[t->hash & (nsz - 1)] = t;
        }
    }
    free(s->tab);
    s->tab = ntab;
    s->tabsz = nsz;
}

/* The cached topic handle for tbl, created on first use. */
static rd_kafka_topic_t *topic_get(kafka_sink_t *s, const cdc_table_t *tbl,
                                   cdc_err_t *err)
{
    const char *db = tbl->db ? tbl->db : "";
    const char *table = tbl->name ? tbl->name : "";
    uint32_t h = hash_names(db, table);
    topic_ent_t *t;
    cdc_buf_t name = CDC_BUF_INIT;
    rd_kafka_topic_t *rkt;

    if (s->tabsz) {
        for (t = s->tab[h & (s->tabsz - 1)]; t; t = t->next)
            if (t->hash == h && !strcmp(t->db, db) &&
                !strcmp(t->table, table))
                return t->rkt;
    }
    if (topic_expand(s->tmpl, s->source, db, table, &name, err) < 0)
        goto fail;
    if (name.len == 0 || name.len > KAFKA_TOPIC_MAX ||
        !strcmp(name.p, ".") || !strcmp(name.p, "..")) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "kafka: topic name \"%s\" for table %s.%s is not a "
                    "valid Kafka topic name", name.p ? name.p : "", db,
                    table);
        cdc_err_detail(err, "a topic name has 1 to %d characters and is "
                            "not \".\" or \"..\"", KAFKA_TOPIC_MAX);
        cdc_err_hint(err, "change kafka.topic (now \"%s\")", s->tmpl);
        goto fail;
    }
    if (s->tspec.create &&
        cdc_kafka_topic_create(s->rk, name.p, &s->tspec, s->msg_timeout_ms,
                               err) < 0)
        goto fail;
    rkt = rd_kafka_topic_new(s->rk, name.p, NULL);
    if (!rkt) {
        cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                    "kafka: cannot create topic handle \"%s\": %s", name.p,
                    rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    if (s->ntopics >= s->tabsz)
        topic_cache_grow(s);
    t = cdc_xcalloc(1, sizeof(*t));
    t->hash = h;
    t->db = cdc_xstrdup(db);
    t->table = cdc_xstrdup(table);
    t->name = cdc_xstrdup(name.p);
    t->rkt = rkt;
    t->next = s->tab[h & (s->tabsz - 1)];
    s->tab[h & (s->tabsz - 1)] = t;
    s->ntopics++;
    CDC_DEBUG(FAC, "table %s.%s -> topic %s", db, table, name.p);
    cdc_buf_free(&name);
    return rkt;
fail:
    cdc_buf_free(&name);
    return NULL;
}

static void topic_cache_free(kafka_sink_t *s)
{
    for (uint32_t i = 0; i < s->tabsz; i++) {
        topic_ent_t *t = s->tab[i], *next;

        for (; t; t = next) {
            next = t->next;
            if (t->rkt)
                rd_kafka_topic_destroy(t->rkt);
            free(t->name);
            free(t->db);
            free(t->table);
            free(t);
        }
    }
    free(s->tab);
    s->tab = NULL;
    s->tabsz = s->ntopics = 0;
}

/* ------------------------------------------------------------------ */
/* Unacknowledged messages                                             */
/* ------------------------------------------------------------------ */

static kmsg_t *kmsg_new(cdc_txn_t *tx, const char *topic, const void *key,
                        size_t klen, const void *val, size_t vlen,
                        rd_kafka_headers_t *hdrs, int dl)
{
    size_t tlen = strlen(topic);
    kmsg_t *r = cdc_xmalloc(sizeof(*r) + tlen + 1 + klen + vlen);
    char *p = (char *)(r + 1);

    memset(r, 0, sizeof(*r));
    r->tx = tx;
    r->hdrs = hdrs;
    r->dl = dl;
    memcpy(p, topic, tlen + 1);
    r->topic = p;
    p += tlen + 1;
    if (key) {
        memcpy(p, key, klen);
        r->key = p;
        r->klen = klen;
        p += klen;
    }
    if (val) {
        memcpy(p, val, vlen);
        r->val = p;
        r->vlen = vlen;
    }
    return r;
}

static void kmsg_free(kmsg_t *r)
{
    if (r->hdrs)
        rd_kafka_headers_destroy(r->hdrs);
    free(r);
}

static void kmsg_append(kafka_sink_t *s, kmsg_t *r)
{
    r->next = NULL;
    r->prev = s->utail;
    if (s->utail)
        s->utail->next = r;
    else
        s->uhead = r;
    s->utail = r;
    s->unacked++;
}

static void kmsg_unlink(kafka_sink_t *s, kmsg_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        s->uhead = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        s->utail = r->prev;
    r->prev = r->next = NULL;
    s->unacked--;
}

/* Hand r to the current producer (rkt, or by topic name when NULL); r
 * must stay allocated until its delivery report.  Not linked here. */
static rd_kafka_resp_err_t kmsg_send(kafka_sink_t *s, kmsg_t *r,
                                     rd_kafka_topic_t *rkt)
{
    rd_kafka_headers_t *h = r->hdrs ? rd_kafka_headers_copy(r->hdrs) : NULL;
    rd_kafka_resp_err_t e;

    if (rkt)
        e = rd_kafka_producev(
            s->rk, RD_KAFKA_V_RKT(rkt),
            RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(0),
            RD_KAFKA_V_KEY((void *)r->key, r->klen),
            RD_KAFKA_V_VALUE((void *)r->val, r->vlen), RD_KAFKA_V_OPAQUE(r),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    else
        e = rd_kafka_producev(
            s->rk, RD_KAFKA_V_TOPIC(r->topic),
            RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(0),
            RD_KAFKA_V_KEY((void *)r->key, r->klen),
            RD_KAFKA_V_VALUE((void *)r->val, r->vlen), RD_KAFKA_V_OPAQUE(r),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (e && h)
        rd_kafka_headers_destroy(h);
    if (!e)
        r->live = 1;
    return e;
}

/* ------------------------------------------------------------------ */
/* librdkafka callbacks (all on the thread calling poll/flush)         */
/* ------------------------------------------------------------------ */

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                      void *opaque)
{
    kafka_sink_t *s = opaque;
    kmsg_t *r = m->_private;
    cdc_txn_t *tx = r ? r->tx : NULL;
    char fbuf[8];

    if (!r)
        return;
    r->live = 0;
    if (m->err && !s->detached && !s->fatal_final &&
        (s->fatal || rd_kafka_fatal_error(rk, fbuf, sizeof(fbuf)))) {
        /* failed because the producer is in a fatal state: kept, and
         * produced again by the recreated producer (check_failures) */
        return;
    }
    kmsg_unlink(s, r);
    if (m->err && tx && !s->detached && !r->dl &&
        !dead_letter(s, tx, r->topic, r->key, r->klen, r->val, r->vlen,
                     m->err)) {
        /* the dead letter holds the txn now (pending moved to it); the
         * refused message counts as failed, the in-flight gauge drops */
        s->st.failed++;
        tx->pending--;
        kmsg_free(r);
        return;
    }
    if (m->err) {
        s->st.failed++;
        if (!s->failed) {
            cdc_err_t *e = &s->derr;
            int to = m->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT;

            s->failed = 1;
            cdc_err_set(e, to ? CDC_EXIT_UNAVAILABLE : CDC_EXIT_FAIL,
                        CDC_ERR_F_FATAL,
                        "kafka: delivery to topic \"%s\" failed: %s",
                        m->rkt ? rd_kafka_topic_name(m->rkt) : "?",
                        rd_kafka_err2str(m->err));
            if (m->partition >= 0)
                cdc_err_detail(e, "%s (partition %" PRId32 ")%s",
                               rd_kafka_err2name(m->err), m->partition,
                               s->brokers_down ? "; all brokers were down"
                                               : "");
            else
                cdc_err_detail(e, "%s%s", rd_kafka_err2name(m->err),
                               s->brokers_down ? "; all brokers were down"
                                               : "");
            if (to)
                cdc_err_hint(e, "check that the brokers in kafka.brokers "
                                "are reachable, or raise "
                                "kafka.message.timeout.ms (now %" PRId64
                                " ms); the run resumes at the last "
                                "delivered transaction",
                             s->msg_timeout_ms);
            else
                cdc_err_hint(e, "fix the broker-side problem (topic, "
                                "ACLs, size limits) and restart; the run "
                                "resumes at the last delivered "
                                "transaction");
        }
        CDC_DEBUG(FAC, "delivery to topic %s failed: %s",
                  m->rkt ? rd_kafka_topic_name(m->rkt) : "?",
                  rd_kafka_err2str(m->err));
    } else {
        s->st.delivered++;
        s->tls_auth_errs = 0;
        if (r->dl)
            cdc_metrics_dead_letters(1);
        if (s->brokers_down) {
            s->brokers_down = 0;
            if (s->down_since_ms)
                CDC_INFO(FAC, "brokers reachable again after %.1f s",
                         (now_ms() - s->down_since_ms) / 1000.0);
            else
                CDC_INFO(FAC, "brokers reachable again");
            s->down_since_ms = s->down_warn_ms = 0;
        }
    }
    if (tx && !s->detached) {
        if (m->err)
            tx->failed = 1;
        tx->pending--;
    }
    kmsg_free(r);
}

static void error_cb(rd_kafka_t *rk, int e, const char *reason, void *opaque)
{
    kafka_sink_t *s = opaque;

    (void)rk;
    switch (e) {
    case RD_KAFKA_RESP_ERR__FATAL:
        /* librdkafka logs it (FATAL); poll() reports it as the error. */
        s->fatal = 1;
        CDC_DEBUG(FAC, "fatal error raised: %s", reason);
        break;
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        if (!s->brokers_down) {
            s->brokers_down = 1;
            s->down_since_ms = s->down_warn_ms = now_ms();
            CDC_WARN(FAC, "all brokers down, waiting for them to come back "
                          "(messages are retried for up to %" PRId64
                          " ms, kafka.message.timeout.ms)",
                     s->msg_timeout_ms);
        }
        break;
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
        /* A bad certificate or password does not heal by retrying: after
         * two in a row, fail the run with the real cause instead of
         * "all brokers down" when the message timeout expires. */
        CDC_ERROR(FAC, "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)e),
                  reason);
        if (++s->tls_auth_errs >= 2 && !s->failed) {
            s->failed = 1;
            cdc_err_set(&s->derr, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "kafka: %s failed: %s",
                        e == RD_KAFKA_RESP_ERR__SSL ? "TLS handshake"
                                                    : "SASL authentication",
                        reason);
            cdc_err_hint(&s->derr,
                         e == RD_KAFKA_RESP_ERR__SSL
                             ? "check kafka.ssl.ca.location and that the "
                               "broker certificate names the host in "
                               "kafka.brokers"
                             : "check kafka.sasl.mechanisms, "
                               "kafka.sasl.username and kafka.sasl.password");
        }
        break;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__RESOLVE:
        /* librdkafka already logs these through log_cb. */
        CDC_DEBUG(FAC, "%s", reason);
        break;
    default:
        CDC_WARN(FAC, "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)e),
                 reason);
        break;
    }
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
    const kafka_sink_t *s = rd_kafka_opaque(rk);
    int lvl;

    if (level <= 2)
        lvl = CDC_LOG_ERROR;
    else if (level <= 4) /* transient conditions librdkafka retries */
        lvl = CDC_LOG_WARN;
    else if (level <= 6)
        lvl = CDC_LOG_INFO;
    else /* kafka.debug=... asks for these explicitly: show them */
        lvl = s && s->rd_debug ? CDC_LOG_INFO : CDC_LOG_DEBUG;
    if (lvl > cdc_log_get_level())
        return;
    cdc_log(lvl, FAC, "%s: %s", fac, buf);
}

/* ------------------------------------------------------------------ */
/* Failure state                                                       */
/* ------------------------------------------------------------------ */

/* Fatal errors the idempotent producer raises for cluster faults (leader
 * loss, lost in-flight batches, a producer id the new leader does not
 * know): a new producer with a new id can deliver what is left. */
static int recreatable(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_DUPLICATE_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_ID_MAPPING:
    case RD_KAFKA_RESP_ERR__INCONSISTENT:
    case RD_KAFKA_RESP_ERR__GAPLESS_GUARANTEE:
        return 1;
    default:
        return 0;
    }
}

/* Give up after a fatal error: messages kept for a new producer fail
 * now (their txns fail, the checkpoint stays before them). */
static void fail_kept(kafka_sink_t *s)
{
    kmsg_t *r = s->uhead, *next;

    s->fatal_final = 1;
    for (; r; r = next) {
        next = r->next;
        if (r->live)
            continue; /* its delivery report fails it */
        kmsg_unlink(s, r);
        s->st.failed++;
        if (r->tx && !s->detached) {
            r->tx->failed = 1;
            r->tx->pending--;
        }
        kmsg_free(r);
    }
}

/* Destroy the producer that raised fe and create a new one that produces
 * every unacknowledged message again, in order.  0 when done (a new
 * fatal error during it is left for the next check), -1 with err when
 * the bound is reached or the new producer cannot be created. */
static int recreate(kafka_sink_t *s, rd_kafka_resp_err_t fe,
                    const char *reason, cdc_err_t *err)
{
    int64_t t = now_ms();
    rd_kafka_t *old = s->rk;
    rd_kafka_conf_t *kc;
    char errstr[512];
    topic_ent_t *te;
    uint64_t n = 0;

    if (!s->recreate_win_ms || t - s->recreate_win_ms > KAFKA_RECREATE_WINDOW_MS) {
        s->recreate_win_ms = t;
        s->recreate_n = 0;
    }
    if (++s->recreate_n > KAFKA_RECREATE_MAX) {
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_FATAL,
                    "kafka: fatal producer error: %s", reason);
        cdc_err_detail(err, "%s again after the producer was recreated %d "
                            "times within %d s; %" PRIu64 " messages not "
                            "acknowledged", rd_kafka_err2name(fe),
                       KAFKA_RECREATE_MAX, KAFKA_RECREATE_WINDOW_MS / 1000,
                       s->unacked);
        cdc_err_hint(err, "the cluster keeps losing in-flight messages: "
                          "check the broker logs and that enough in-sync "
                          "replicas are up; restart to resume at the last "
                          "delivered transaction");
        return -1;
    }
    CDC_WARN(FAC, "fatal idempotent-producer error %s (%s): recreating the "
                  "producer and producing the %" PRIu64 " unacknowledged "
                  "messages again, in order (recreation %d of at most %d "
                  "within %d s)",
             rd_kafka_err2name(fe), reason, s->unacked, s->recreate_n,
             KAFKA_RECREATE_MAX, KAFKA_RECREATE_WINDOW_MS / 1000);

    /* Old producer: fail what it holds (delivery reports keep those
     * messages, see dr_msg_cb), serve the reports, drop its handles. */
    rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(old, 0);
    for (uint32_t i = 0; i < s->tabsz; i++)
        for (te = s->tab[i]; te; te = te->next)
            if (te->rkt) {
                rd_kafka_topic_destroy(te->rkt);
                te->rkt = NULL;
            }
    if (s->txtopic) {
        rd_kafka_topic_destroy(s->txtopic);
        s->txtopic = NULL;
    }
    if (s->dl_rkt) {
        rd_kafka_topic_destroy(s->dl_rkt);
        s->dl_rkt = NULL;
    }
    s->rk = NULL;
    rd_kafka_destroy(old);
    /* no delivery report is due for anything left: all of it goes again */
    for (kmsg_t *r = s->uhead; r; r = r->next)
        r->live = 0;

    kc = rd_kafka_conf_dup(s->kc_tmpl);
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
    if (!s->rk) {
        rd_kafka_conf_destroy(kc);
        cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                    "kafka: cannot create a new producer after a fatal "
                    "error: %s", errstr);
        cdc_err_hint(err, "restart to resume at the last delivered "
                          "transaction");
        return -1;
    }
    rd_kafka_set_log_queue(s->rk, NULL);
    s->fatal = 0;
    s->recreations++;
    for (uint32_t i = 0; i < s->tabsz; i++)
        for (te = s->tab[i]; te; te = te->next)
            te->rkt = rd_kafka_topic_new(s->rk, te->name, NULL);
    if (s->dl_name)
        s->dl_rkt = rd_kafka_topic_new(s->rk, s->dl_name, NULL);

    /* Everything unacknowledged again, oldest first. */
    for (kmsg_t *r = s->uhead; r; r = r->next) {
        rd_kafka_resp_err_t e;

        while ((e = kmsg_send(s, r, NULL)) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(s->rk, 100);
            if (s->fatal || rd_kafka_fatal_error(s->rk, errstr, sizeof(errstr)))
                return 0; /* kept; the next check recreates again */
        }
        if (e == RD_KAFKA_RESP_ERR__FATAL)
            return 0;
        if (e) {
            cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                        "kafka: cannot produce to topic \"%s\" again after "
                        "recreating the producer: %s", r->topic,
                        rd_kafka_err2str(e));
            cdc_err_hint(err, "restart to resume at the last delivered "
                              "transaction");
            return -1;
        }
        n++;
    }
    CDC_INFO(FAC, "new producer %s: %" PRIu64 " messages produced again",
             rd_kafka_name(s->rk), n);
    return 0;
}

/* -1 with err once the producer is unusable or a delivery failed.  A
 * recreatable fatal error is handled here (recreate()). */
static int check_failures(kafka_sink_t *s, cdc_err_t *err)
{
    char buf[512];
    rd_kafka_resp_err_t fe;

    if (!s->rk) { /* a recreation failed */
        *err = s->derr;
        return -1;
    }
    if (!s->fatal) {
        buf[0] = '\0';
        fe = rd_kafka_fatal_error(s->rk, buf, sizeof(buf));
        if (fe)
            s->fatal = 1;
    }
    while (s->fatal && !s->fatal_final) {
        buf[0] = '\0';
        fe = rd_kafka_fatal_error(s->rk, buf, sizeof(buf));
        if (!recreatable(fe))
            break;
        if (recreate(s, fe, buf, err) < 0) {
            fail_kept(s);
            if (!s->failed)
                s->derr = *err;
            s->failed = 1;
            *err = s->derr;
            return -1;
        }
        if (!s->fatal)
            s->fatal = rd_kafka_fatal_error(s->rk, buf, sizeof(buf)) != 0;
    }
    if (s->fatal && !s->fatal_final) {
        buf[0] = '\0';
        fe = rd_kafka_fatal_error(s->rk, buf, sizeof(buf));
        fail_kept(s);
        if (!s->failed) {
            cdc_err_set(&s->derr, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                        "kafka: fatal producer error: %s", buf);
            cdc_err_detail(&s->derr, "%s; the idempotent producer can no "
                                     "longer guarantee ordered, "
                                     "duplicate-free delivery",
                           rd_kafka_err2name(fe));
            cdc_err_hint(&s->derr, "check the broker logs; restart to "
                                   "resume at the last delivered "
                                   "transaction");
        }
        s->failed = 1;
    }
    if (s->failed) {
        *err = s->derr;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Producing                                                           */
/* ------------------------------------------------------------------ */

/* End of a wait on a full queue; resumed = 0 when giving up. */
static void note_unblocked(kafka_sink_t *s, int resumed)
{
    int64_t waited;

    if (!s->block_since_ms)
        return;
    waited = now_ms() - s->block_since_ms;
    s->st.blocked_ms += (uint64_t)waited;
    if (resumed && s->block_warn_ms)
        CDC_INFO(FAC, "producer queue has room again, reader resumed "
                      "after %.1f s", waited / 1000.0);
    s->block_since_ms = 0;
    s->block_warn_ms = 0;
}

/* Produce one message of tx; waits (serving delivery reports) while the
 * local queue is full. */
static int produce_h(kafka_sink_t *s, rd_kafka_topic_t *rkt, cdc_txn_t *tx,
                     const char *key, size_t klen, const char *val,
                     size_t vlen, const char *hname, const cdc_buf_t *hval,
                     cdc_err_t *err)
{
    rd_kafka_resp_err_t e;
    int alone = 0; /* QUEUE_FULL with an empty queue */
    /* one header (Debezium's key-change headers); the record keeps it */
    rd_kafka_headers_t *hdrs = NULL;
    kmsg_t *r;
    const char *tname = rd_kafka_topic_name(rkt);
    topic_ent_t *te = NULL;

    if (hname) {
        hdrs = rd_kafka_headers_new(1);
        rd_kafka_header_add(hdrs, hname, -1, hval->p, (ssize_t)hval->len);
    }
    r = kmsg_new(tx, tname, key, klen, val, vlen, hdrs, 0);
    /* a recreation while waiting replaces rkt: find it again by name */
    for (uint32_t i = 0; i < s->tabsz && !te; i++)
        for (topic_ent_t *t = s->tab[i]; t && !te; t = t->next)
            if (t->rkt == rkt)
                te = t;
    for (;;) {
        uint64_t gen = s->recreations;

        tx->pending++;
        e = kmsg_send(s, r, rkt);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            kmsg_append(s, r);
            s->st.produced++;
            note_unblocked(s, 1);
            return 0;
        }
        tx->pending--;
        if (e == RD_KAFKA_RESP_ERR__FATAL) {
            /* recreated (then produce r with the new producer) or not */
            s->fatal = 1;
            if (check_failures(s, err) < 0) {
                kmsg_free(r);
                return -1;
            }
            rkt = te ? te->rkt : NULL;
            continue;
        }
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;

        /* Back-pressure: block the reader until librdkafka has room. */
        s->st.queue_full++;
        if (rd_kafka_outq_len(s->rk) == 0 && ++alone > 1) {
            /* nothing queued and still no room: it can never fit */
            note_unblocked(s, 0);
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "kafka: message of %zu bytes for topic \"%s\" does "
                        "not fit the producer queue", klen + vlen, r->topic);
            kmsg_free(r);
            cdc_err_hint(err, "raise kafka.queue.buffering.max.kbytes "
                              "(now %" PRId64 ")", s->qmax_kb);
            return -1;
        }
        int64_t t = now_ms();
        if (!s->block_since_ms)
            s->block_since_ms = t;
        if (t - s->block_since_ms >= KAFKA_BLOCK_WARN_MS &&
            t - s->block_warn_ms >= KAFKA_BLOCK_WARN_MS) {
            s->block_warn_ms = t;
            CDC_WARN(FAC, "producer queue full (%" PRId64 " messages / %"
                          PRId64 " KB): brokers slow or unreachable, "
                          "reader blocked for %.0f s",
                     s->qmax_msgs, s->qmax_kb,
                     (t - s->block_since_ms) / 1000.0);
        }
        rd_kafka_poll(s->rk, 100);
        if (check_failures(s, err) < 0) {
            note_unblocked(s, 0);
            kmsg_free(r);
            return -1;
        }
        if (gen != s->recreations) /* handles of the new producer */
            rkt = te ? te->rkt : NULL;
        if (cdc_pipeline_stop) {
            /* SIGTERM while blocked: this txn is only partly produced, so
             * it must not count as delivered; the checkpoint stays at the
             * last fully delivered txn. */
            note_unblocked(s, 0);
            kmsg_free(r);
            cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                        "kafka: stopped while waiting for room in the "
                        "producer queue");
            cdc_err_detail(err, "the brokers did not accept messages; the "
                                "current transaction was not fully "
                                "produced");
            cdc_err_hint(err, "check that the brokers in kafka.brokers are "
                              "reachable; the next run resumes at the last "
                              "delivered transaction");
            return -1;
        }
    }

    if (!dead_letter(s, tx, r->topic, key, klen, val, vlen, e)) {
        kmsg_free(r);
        return 0;
    }
    cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                "kafka: cannot produce to topic \"%s\": %s", r->topic,
                rd_kafka_err2str(e));
    kmsg_free(r);
    cdc_err_detail(err, "%s, message of %zu bytes (key %zu bytes)",
                   rd_kafka_err2name(e), vlen, klen);
    if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
        cdc_err_hint(err, "raise kafka.message.max.bytes (and the topic's "
                          "max.message.bytes on the broker)");
    else
        cdc_err_hint(err, "check the kafka.* settings and the topic");
    return -1;
}

static int produce(kafka_sink_t *s, rd_kafka_topic_t *rkt, cdc_txn_t *tx,
                   const char *key, size_t klen, const char *val,
                   size_t vlen, cdc_err_t *err)
{
    return produce_h(s, rkt, tx, key, klen, val, vlen, NULL, NULL, err);
}

/* rkt for tbl again when the producer was recreated since *gen (the old
 * producer's handles are gone); NULL with err on failure. */
static rd_kafka_topic_t *rkt_fresh(kafka_sink_t *s, rd_kafka_topic_t *rkt,
                                   uint64_t *gen, const cdc_table_t *tbl,
                                   cdc_err_t *err)
{
    if (*gen == s->recreations)
        return rkt;
    *gen = s->recreations;
    return topic_get(s, tbl, err);
}

/* Debezium transaction metadata: BEGIN (end = 0) or END of tx on
 * "<source>.transaction". */
static int produce_txmeta(kafka_sink_t *s, cdc_txn_t *tx, int end,
                          cdc_err_t *err)
{
    if (!s->txtopic) {
        cdc_buf_t name = CDC_BUF_INIT;
        put_sanitized(&name, s->source);
        cdc_buf_puts(&name, ".transaction");
        s->txtopic = rd_kafka_topic_new(s->rk, name.p, NULL);
        cdc_buf_free(&name);
        if (!s->txtopic) {
            cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                        "kafka: cannot create the transaction topic "
                        "handle: %s", rd_kafka_err2str(rd_kafka_last_error()));
            return -1;
        }
    }
    cdc_buf_reset(&s->key);
    cdc_dbz_txn_key(&s->key, &s->eo, tx);
    cdc_buf_reset(&s->val);
    cdc_dbz_txn_event(&s->val, &s->eo, tx, end);
    return produce(s, s->txtopic, tx, s->key.p, s->key.len, s->val.p,
                   s->val.len, err);
}

/* A Debezium primary-key change: 'd' under the old key (header
 * __debezium.newkey), its tombstone, then 'c' under the new key (header
 * __debezium.oldkey). */
static int produce_key_change(kafka_sink_t *s, rd_kafka_topic_t *rkt,
                              cdc_txn_t *tx, const cdc_change_t *ch,
                              cdc_err_t *err)
{
    cdc_buf_t oldk = CDC_BUF_INIT, newk = CDC_BUF_INIT;
    cdc_buf_t oldh = CDC_BUF_INIT, newh = CDC_BUF_INIT;
    cdc_env_opts_t plain = s->eo;
    int rc = -1;
    uint64_t gen = s->recreations;

    cdc_dbz_key(&oldk, &s->eo, tx, ch, ch->before, NULL);
    cdc_dbz_key(&newk, &s->eo, tx, ch, ch->after, ch->before);
    /* headers: the key payload alone, which Kafka Connect's default
     * SimpleHeaderConverter reads as a map (a schema envelope there is
     * a map of mixed values it rejects) */
    plain.schemas = 0;
    cdc_dbz_key(&oldh, &plain, tx, ch, ch->before, NULL);
    cdc_dbz_key(&newh, &plain, tx, ch, ch->after, ch->before);
    cdc_buf_reset(&s->val);
    cdc_dbz_write(&s->val, &s->eo, tx, ch, CDC_OP_DELETE, ch->before, NULL);
    if (produce_h(s, rkt, tx, oldk.p, oldk.len, s->val.p, s->val.len,
                  "__debezium.newkey", &newh, err) < 0)
        goto out;
    if (s->tombstones &&
        (!(rkt = rkt_fresh(s, rkt, &gen, ch->tbl, err)) ||
         produce(s, rkt, tx, oldk.p, oldk.len, NULL, 0, err) < 0))
        goto out;
    cdc_buf_reset(&s->val);
    cdc_dbz_write(&s->val, &s->eo, tx, ch, CDC_OP_CREATE, NULL, ch->after);
    if (!(rkt = rkt_fresh(s, rkt, &gen, ch->tbl, err)) ||
        produce_h(s, rkt, tx, newk.p, newk.len, s->val.p, s->val.len,
                  "__debezium.oldkey", &oldh, err) < 0)
        goto out;
    rc = 0;
out:
    cdc_buf_free(&oldk);
    cdc_buf_free(&newk);
    cdc_buf_free(&oldh);
    cdc_buf_free(&newh);
    return rc;
}

static int kafka_write(cdc_sink_t *snk, cdc_txn_t *tx, cdc_err_t *err)
{
    kafka_sink_t *s = (kafka_sink_t *)snk;
    int dbz = s->eo.format == CDC_FMT_DEBEZIUM;

    tx->pending = 0;
    if (check_failures(s, err) < 0)
        return -1;
    if (tx->skipped)
        return 0;
    /* one BEGIN and one END per transaction, however many fragments it
     * comes in; the END counts all of them */
    if (dbz && s->eo.txmeta && cdc_dbz_txs_begin(&s->txs, tx)) {
        s->txbegun = 0;
        if (tx->nchanges || tx->more) {
            if (produce_txmeta(s, tx, 0, err) < 0)
                goto fail;
            s->txbegun = 1;
        }
    }
    for (uint32_t i = 0; i < tx->nchanges; i++) {
        const cdc_change_t *ch = &tx->changes[i];
        rd_kafka_topic_t *rkt = topic_get(s, ch->tbl, err);
        const char *key = NULL;
        size_t klen = 0;
        uint64_t gen = s->recreations;

        if (!rkt)
            goto fail;
        if (dbz && s->with_key && cdc_dbz_key_changed(ch)) {
            if (produce_key_change(s, rkt, tx, ch, err) < 0)
                goto fail;
            continue;
        }
        cdc_buf_reset(&s->key);
        if (s->with_key && ch->op != CDC_OP_TRUNCATE && dbz) {
            /* Debezium: a table without a primary key has no key */
            if (ch->tbl->npk) {
                cdc_dbz_key(&s->key, &s->eo, tx, ch,
                            ch->after ? ch->after : ch->before,
                            ch->before);
                key = s->key.p;
                klen = s->key.len;
            }
        } else if (s->with_key && ch->op != CDC_OP_TRUNCATE) {
            cdc_envelope_key(&s->key, ch);
            key = s->key.p;
            klen = s->key.len;
        }
        cdc_buf_reset(&s->val);
        if (s->xo)
            cdc_xml_envelope(&s->val, s->xo, s->source, tx, ch);
        else
            cdc_envelope_write(&s->val, &s->eo, tx, ch);
        if (produce(s, rkt, tx, key, klen, s->val.p, s->val.len, err) < 0)
            goto fail;
        if (ch->op == CDC_OP_DELETE && s->tombstones && key &&
            (!(rkt = rkt_fresh(s, rkt, &gen, ch->tbl, err)) ||
             produce(s, rkt, tx, key, klen, NULL, 0, err) < 0))
            goto fail;
    }
    if (dbz && s->eo.txmeta && cdc_dbz_txs_end(&s->txs, tx) && s->txbegun &&
        produce_txmeta(s, tx, 1, err) < 0)
        goto fail;
    return 0;
fail:
    tx->failed = 1;
    return -1;
}

/* Refused for good: retrying or restarting cannot deliver it. */
static int permanent(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
        return 1;
    default:
        return 0;
    }
}

/* errors.mode=dead-letter: the message to the dead-letter topic instead,
 * for tx (pending counted here).  0 when produced, -1 when not (another
 * mode, a transient error, or the dead-letter topic refuses it too). */
static int dead_letter(kafka_sink_t *s, cdc_txn_t *tx, const char *topic,
                       const void *key, size_t klen, const void *val,
                       size_t vlen, rd_kafka_resp_err_t why)
{
    const char *es = rd_kafka_err2str(why);
    rd_kafka_resp_err_t e;
    rd_kafka_headers_t *h;
    kmsg_t *r;

    if (!s->dead_letter || !s->dl_name || !permanent(why) ||
        !strcmp(topic, s->dl_name))
        return -1;
    h = rd_kafka_headers_new(3);
    rd_kafka_header_add(h, "autoglm.error", -1, es, (ssize_t)strlen(es));
    rd_kafka_header_add(h, "autoglm.topic", -1, topic,
                        (ssize_t)strlen(topic));
    rd_kafka_header_add(h, "autoglm.pipeline", -1, s->pipeline,
                        (ssize_t)strlen(s->pipeline));
    r = kmsg_new(tx, s->dl_name, key, klen, val, vlen, h, 1);
    tx->pending++;
    e = kmsg_send(s, r, s->dl_rkt);
    if (!e)
        kmsg_append(s, r);
    if (e) {
        kmsg_free(r);
        tx->pending--;
        CDC_ERROR(FAC, "dead letter for topic %s (%s) not produced: %s",
                  topic, es, rd_kafka_err2str(e));
        return -1;
    }
    s->st.produced++;
    CDC_WARN(FAC, "message of %zu bytes for topic %s refused (%s): written "
             "to the dead-letter topic %s", vlen, topic, es, s->dl_name);
    return 0;
}

/* While all brokers are down, say every 30 s how much is waiting. */
static void remind_down(kafka_sink_t *s)
{
    int64_t t;

    if (!s->brokers_down)
        return;
    t = now_ms();
    if (!s->down_since_ms) {
        s->down_since_ms = s->down_warn_ms = t;
        return;
    }
    if (t - s->down_warn_ms < KAFKA_DOWN_WARN_MS)
        return;
    s->down_warn_ms = t;
    CDC_WARN(FAC, "all brokers still down after %.0f s, %d messages "
                  "waiting for delivery",
             (t - s->down_since_ms) / 1000.0, rd_kafka_outq_len(s->rk));
}

static int kafka_poll(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    kafka_sink_t *s = (kafka_sink_t *)snk;

    if (s->rk) {
        rd_kafka_poll(s->rk, timeout_ms < 0 ? 0 : timeout_ms);
        remind_down(s);
    }
    return check_failures(s, err);
}

static int kafka_flush(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    kafka_sink_t *s = (kafka_sink_t *)snk;
    int64_t end = now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;

    for (;;) {
        uint64_t gen = s->recreations;
        int left = timeout_ms < 0 ? -1 : (int)(end - now_ms());

        if (timeout_ms >= 0 && left < 0)
            left = 0;
        if (s->rk)
            e = rd_kafka_flush(s->rk, left);
        if (check_failures(s, err) < 0)
            return -1;
        if (gen == s->recreations)
            break;
        /* a new producer took over the unacknowledged messages: the
         * flush covers them too, within what is left of timeout_ms */
        if (timeout_ms >= 0 && now_ms() >= end) {
            e = rd_kafka_outq_len(s->rk) ? RD_KAFKA_RESP_ERR__TIMED_OUT
                                         : RD_KAFKA_RESP_ERR_NO_ERROR;
            break;
        }
    }
    if (e == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                    "kafka: %d messages not acknowledged after %d ms",
                    rd_kafka_outq_len(s->rk), timeout_ms);
        cdc_err_detail(err, "%s", s->brokers_down ? "all brokers are down"
                                                  : "brokers are slow");
        cdc_err_hint(err, "check that the brokers in kafka.brokers are "
                          "reachable; the next run resumes at the last "
                          "delivered transaction");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Create / destroy                                                    */
/* ------------------------------------------------------------------ */

static int conf_prop(rd_kafka_conf_t *kc, const cdc_conf_t *conf,
                     const char *ckey, const char *prop, const char *val,
                     cdc_err_t *err)
{
    char errstr[512];
    const char *where = ckey ? cdc_conf_where(conf, ckey) : NULL;

    if (rd_kafka_conf_set(kc, prop, val, errstr, sizeof(errstr)) ==
        RD_KAFKA_CONF_OK)
        return 0;
    cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                "kafka: invalid producer property \"%s\"%s%s%s", prop,
                where ? " (set at " : "", where ? where : "",
                where ? ")" : "");
    if (ckey && cdc_conf_is_secret(ckey))
        cdc_err_detail(err, "librdkafka rejected the value (not shown: "
                            "secret)");
    else
        cdc_err_detail(err, "%s", errstr);
    cdc_err_hint(err, "librdkafka properties are listed in its "
                      "CONFIGURATION.md; pass them as -X kafka.%s=VALUE or "
                      "under \"kafka:\" in the YAML file", prop);
    return -1;
}

static int is_reserved(const char *k)
{
    return !strcmp(k, "brokers") || !strcmp(k, "topic") ||
           !strcmp(k, "tombstones") || !strcmp(k, "key") ||
           !strncmp(k, "topic_", 6);
}

static int parse_i64(const char *v, int64_t *out)
{
    char *end;
    long long n;

    if (!v || !*v)
        return -1;
    n = strtoll(v, &end, 10);
    if (*end)
        return -1;
    *out = n;
    return 0;
}

static void kafka_destroy(cdc_sink_t *snk);

static cdc_sink_t *kafka_create(const cdc_conf_t *conf, cdc_err_t *err)
{
    kafka_sink_t *s = cdc_xcalloc(1, sizeof(*s));
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    const char *v, *fmt, *brokers;
    char errstr[512];
    cdc_buf_t probe = CDC_BUF_INIT;
    int has_bootstrap = 0;
    static const struct { const char *k, *v; } defs[] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"compression.type", "zstd"},
        /* Java clients' partitioner: a key lands where a Java producer
         * (Kafka Connect, Debezium) puts it */
        {"partitioner", "murmur2_random"},
        {"queue.buffering.max.messages", KAFKA_DEF_QMSGS},
        {"queue.buffering.max.kbytes", KAFKA_DEF_QKB},
        {"message.timeout.ms", KAFKA_DEF_MSG_TIMEOUT},
        {"log.queue", "true"},
    };

    s->base.ops = &cdc_sink_kafka_ops;

    /* Envelope and message layout. */
    fmt = cdc_conf_get(conf, "format", "autoglm");
    if (!strcmp(fmt, "xml")) {
        if (!(s->xo = cdc_xml_opts_new(conf, err)))
            goto fail;
    } else if (cdc_format_parse(fmt, &s->eo.format) < 0) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "unknown format \"%s\"", fmt);
        cdc_err_hint(err, "use format=autoglm or format=debezium");
        goto fail;
    }
    s->source = cdc_xstrdup(cdc_conf_app_id(conf));
    s->pipeline = cdc_xstrdup(cdc_conf_pipeline(conf));
    s->eo.application_id = s->source;
    {
        const char *unused;
        if (cdc_dl_conf(conf, &s->dead_letter, &unused, err) < 0)
            goto fail;
    }
    s->tmpl = cdc_xstrdup(cdc_conf_get(conf, "kafka.topic", KAFKA_DEF_TOPIC));
    if (topic_expand(s->tmpl, s->source, "db", "table", &probe, err) < 0)
        goto fail;
    if (s->eo.format == CDC_FMT_DEBEZIUM &&
        cdc_dbz_opts_conf(&s->eo, conf, err) < 0)
        goto fail;
    if (s->eo.format == CDC_FMT_DEBEZIUM && s->eo.txmeta)
        s->eo.txs = &s->txs;
    /* Debezium's tombstones.on.delete defaults to true */
    if (cdc_conf_get_bool(conf, "kafka.tombstones",
                          s->eo.format == CDC_FMT_DEBEZIUM, &s->tombstones,
                          err) < 0)
        goto fail;
    if (cdc_kafka_topic_spec_read(conf, &s->tspec, err) < 0)
        goto fail;
    v = cdc_conf_get(conf, "kafka.key", "pk");
    if (!strcmp(v, "pk"))
        s->with_key = 1;
    else if (!strcmp(v, "none"))
        s->with_key = 0;
    else {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "kafka.key: unknown value \"%s\"", v);
        cdc_err_hint(err, "use kafka.key=pk (JSON object of the primary "
                          "key) or kafka.key=none");
        goto fail;
    }

    /* Producer configuration: defaults, then kafka.* verbatim. */
    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
        if (conf_prop(kc, conf, NULL, defs[i].k, defs[i].v, err) < 0)
            goto fail;
    brokers = cdc_conf_get(conf, "kafka.brokers", NULL);
    if (brokers && *brokers) {
        if (conf_prop(kc, conf, "kafka.brokers", "bootstrap.servers",
                      brokers, err) < 0)
            goto fail;
        has_bootstrap = 1;
    }
    for (int i = 0; conf && i < conf->n; i++) {
        const char *k = conf->ents[i].key;

        if (strncmp(k, "kafka.", 6) != 0 || is_reserved(k + 6))
            continue;
        if (!k[6]) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                        "kafka: empty producer property name");
            goto fail;
        }
        if (conf_prop(kc, conf, k, k + 6, conf->ents[i].val, err) < 0)
            goto fail;
        if (!strcmp(k + 6, "bootstrap.servers") ||
            !strcmp(k + 6, "metadata.broker.list") ||
            !strcmp(k + 6, "test.mock.num.brokers"))
            has_bootstrap = 1;
    }
    v = cdc_conf_get(conf, "kafka.debug", NULL);
    s->rd_debug = v && *v;
    if (!has_bootstrap) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "kafka.brokers is not set");
        cdc_err_hint(err, "pass --kafka-brokers HOST:PORT[,HOST:PORT] or "
                          "-X kafka.brokers=HOST:PORT");
        goto fail;
    }
    /* Read back what librdkafka will use, for messages and the cap. */
    {
        size_t n = sizeof(errstr);

        if (rd_kafka_conf_get(kc, "message.timeout.ms", errstr, &n) ==
            RD_KAFKA_CONF_OK)
            parse_i64(errstr, &s->msg_timeout_ms);
        n = sizeof(errstr);
        if (rd_kafka_conf_get(kc, "queue.buffering.max.messages", errstr,
                              &n) == RD_KAFKA_CONF_OK)
            parse_i64(errstr, &s->qmax_msgs);
        n = sizeof(errstr);
        if (rd_kafka_conf_get(kc, "queue.buffering.max.kbytes", errstr,
                              &n) == RD_KAFKA_CONF_OK)
            parse_i64(errstr, &s->qmax_kb);
    }
    if (s->msg_timeout_ms == 0)
        CDC_WARN(FAC, "kafka.message.timeout.ms=0: undelivered messages "
                      "are retried forever and a dead broker blocks the "
                      "pipeline without an error");

    rd_kafka_conf_set_opaque(kc, s);
    rd_kafka_conf_set_dr_msg_cb(kc, dr_msg_cb);
    rd_kafka_conf_set_error_cb(kc, error_cb);
    rd_kafka_conf_set_log_cb(kc, log_cb);
    /* kept for a new producer after a fatal error (recreate()) */
    s->kc_tmpl = rd_kafka_conf_dup(kc);

    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
    if (!s->rk) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "kafka: cannot create producer: %s", errstr);
        cdc_err_hint(err, "check the kafka.* settings");
        goto fail;
    }
    kc = NULL; /* owned by rk now */
    /* log.queue=true: logs are served by rd_kafka_poll on our thread. */
    rd_kafka_set_log_queue(s->rk, NULL);
    if (s->dead_letter) {
        const char *dlt = cdc_conf_get(conf, "errors.dead_letter_topic",
                                       "{source}.dead_letter");
        cdc_buf_t name = CDC_BUF_INIT;
        if (topic_expand(dlt, s->source, "", "", &name, err) < 0 ||
            !name.len) {
            if (!name.len && !err->msg[0])
                cdc_err_set(err, CDC_EXIT_CONFIG, 0, "errors.dead_letter_topic "
                            "is empty");
            cdc_buf_free(&name);
            goto fail;
        }
        s->dl_rkt = rd_kafka_topic_new(s->rk, name.p, NULL);
        s->dl_name = cdc_xstrdup(name.p);
        cdc_buf_free(&name);
    }
    CDC_INFO(FAC, "producer %s for %s, topics \"%s\", format %s%s",
             rd_kafka_name(s->rk), brokers ? brokers : "(kafka.* config)",
             s->tmpl, fmt, s->tombstones ? ", tombstones" : "");
    cdc_buf_free(&probe);
    return &s->base;
fail:
    if (kc)
        rd_kafka_conf_destroy(kc);
    cdc_buf_free(&probe);
    kafka_destroy(&s->base);
    return NULL;
}

static void kafka_destroy(cdc_sink_t *snk)
{
    kafka_sink_t *s = (kafka_sink_t *)snk;

    if (!s)
        return;
    if (s->rk) {
        /* The pipeline may already have released its txns: from here on
         * delivery reports must not touch them. */
        s->detached = 1;
        if (rd_kafka_flush(s->rk, KAFKA_DESTROY_FLUSH_MS) ==
            RD_KAFKA_RESP_ERR__TIMED_OUT) {
            CDC_WARN(FAC, "closing with %d undelivered messages; they are "
                          "produced again on the next run",
                     rd_kafka_outq_len(s->rk));
            rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE |
                                      RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_poll(s->rk, 0);
        }
    }
    topic_cache_free(s);
    if (s->txtopic)
        rd_kafka_topic_destroy(s->txtopic);
    if (s->dl_rkt)
        rd_kafka_topic_destroy(s->dl_rkt);
    if (s->rk)
        rd_kafka_destroy(s->rk);
    /* librdkafka referenced the payloads until here */
    while (s->uhead) {
        kmsg_t *r = s->uhead;

        kmsg_unlink(s, r);
        kmsg_free(r);
    }
    if (s->kc_tmpl)
        rd_kafka_conf_destroy(s->kc_tmpl);
    free(s->dl_name);
    cdc_buf_free(&s->key);
    cdc_buf_free(&s->val);
    free(s->tmpl);
    free(s->source);
    cdc_xml_opts_free(s->xo);
    cdc_dbz_txs_free(&s->txs);
    free(s->pipeline);
    free(s);
}

void cdc_sink_kafka_stats(const cdc_sink_t *snk, cdc_sink_kafka_stats_t *out)
{
    const kafka_sink_t *s = (const kafka_sink_t *)snk;

    *out = s->st;
    out->topics = s->ntopics;
    out->recreated = s->recreations;
}

/* The producer's counters are this sink's own metrics (cdc/metrics.h);
 * registering again by name is cheap and survives cdc_metrics_init. */
static void kafka_stats(cdc_sink_t *snk)
{
    const kafka_sink_t *s = (const kafka_sink_t *)snk;
    uint64_t done = s->st.delivered + s->st.failed;

    cdc_metrics_set(
        cdc_metrics_register("kafka_inflight_messages", "gauge",
                             "Messages handed to librdkafka and not yet "
                             "acknowledged.", "inflight_messages"),
        s->st.produced > done ? (int64_t)(s->st.produced - done) : 0);
    cdc_metrics_set(
        cdc_metrics_register("kafka_delivered_messages_total", "counter",
                             "Messages acknowledged by the Kafka brokers.",
                             NULL),
        (int64_t)s->st.delivered);
    cdc_metrics_set(
        cdc_metrics_register("kafka_failed_messages_total", "counter",
                             "Messages whose delivery failed.", NULL),
        (int64_t)s->st.failed);
}

/*
 * A bulk load (backfill): bigger batches and a cheaper compression, each
 * only where not configured, unless backfill.kafka_bulk=false.
 */
static int kafka_bulk_hint(const cdc_conf_t *conf, cdc_conf_t *bulk,
                           cdc_err_t *err)
{
    /* key, the librdkafka synonym that configures it as well, value */
    static const char *const defs[][3] = {
        {"kafka.linger.ms", "kafka.queue.buffering.max.ms", "50"},
        {"kafka.batch.size", NULL, "4000000"},
        {"kafka.batch.num.messages", NULL, "100000"},
        /* lz4 over the stream's zstd: make bench measured 0.41x vs 0.36x
         * mariadb-dump's rows/s on 2 cores shared with the broker */
        {"kafka.compression.type", "kafka.compression.codec", "lz4"},
        {"kafka.compression.level", NULL, "1"},
    };
    int on = 1;

    if (cdc_conf_get_bool(conf, "backfill.kafka_bulk", 1, &on, err))
        return -1;
    for (size_t i = 0; on && i < sizeof(defs) / sizeof(defs[0]); i++)
        if (!cdc_conf_get(conf, defs[i][0], NULL) &&
            (!defs[i][1] || !cdc_conf_get(conf, defs[i][1], NULL)))
            cdc_conf_set(bulk, defs[i][0], defs[i][2], "backfill");
    return 0;
}

/* check_value: a kafka.<property> key goes to librdkafka, whose own
 * property table decides (for the sink and the Kafka source alike) */
static int kafka_check_value(int type, const char *key, const char *val,
                             const char *where, cdc_err_t *err)
{
    char msg[600];

    if (type != CDC_KT_NAMESPACE || strncmp(key, "kafka.", 6) ||
        !cdc_kafka_prop_check(key + 6, val, msg, sizeof(msg)))
        return 0;
    cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s%s%s: librdkafka: %s",
                where ? where : "", where ? ": " : "", key, msg);
    cdc_err_hint(err, "kafka.<property> passes a librdkafka property "
                 "(CONFIGURATION.md of librdkafka); autoglm-cdc config "
                 "--reference lists our own kafka keys");
    return -1;
}

const cdc_sink_ops_t cdc_sink_kafka_ops = {
    .name = "kafka",
    .abi = CDC_PLUGIN_ABI,
    .create = kafka_create,
    .write = kafka_write,
    .poll = kafka_poll,
    .flush = kafka_flush,
    .destroy = kafka_destroy,
    .bulk_hint = kafka_bulk_hint,
    .stats = kafka_stats,
    .check_value = kafka_check_value,
};
