/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka_topics.c - create the Kafka sink's topics with explicit settings.
 *
 * Durability on a cluster needs topics with a replication factor of 3 and
 * min.insync.replicas=2 (with the producer's acks=all and idempotence,
 * an acknowledged message then survives the loss of one broker, and with
 * two brokers gone the producer stalls instead of writing to a lone
 * replica).  Topics made by broker auto-creation get the broker's
 * defaults, which are often 1 and 1.  With any of
 *   kafka.topic_replication_factor   (e.g. 3; -1 = the broker's default)
 *   kafka.topic_min_insync_replicas  (e.g. 2)
 *   kafka.topic_partitions           (-1 = the broker's default)
 * set, the sink creates each topic on its first use with CreateTopics.
 * A topic that exists already is left as it is (logged).  Timeouts
 * (brokers down, no controller yet) are retried for kafka's
 * message.timeout.ms, as a message would be.  A refusal
 * (replication factor above the number of brokers, no permission) stops
 * the run with a configuration error naming the topic and the setting.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "cdc/conf.h"
#include "cdc/log.h"
#include "sinks/kafka.h"

#define FAC "kafka"
#define CREATE_TIMEOUT_MS 10000 /* one attempt */

int cdc_kafka_topic_spec_read(const cdc_conf_t *conf,
                              cdc_kafka_topic_spec_t *spec, cdc_err_t *err)
{
    static const struct {
        const char *key;
        size_t off;
        int64_t lo;
    } keys[] = {
        {"kafka.topic_replication_factor",
         offsetof(cdc_kafka_topic_spec_t, replication_factor), -1},
        {"kafka.topic_min_insync_replicas",
         offsetof(cdc_kafka_topic_spec_t, min_insync_replicas), 1},
        {"kafka.topic_partitions",
         offsetof(cdc_kafka_topic_spec_t, partitions), -1},
    };
    memset(spec, 0, sizeof(*spec));
    spec->replication_factor = spec->partitions = -1;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        int64_t v;
        if (!cdc_conf_get(conf, keys[i].key, NULL))
            continue;
        if (cdc_conf_get_int(conf, keys[i].key, 0, &v, err) < 0)
            return -1;
        if (v < keys[i].lo || v == 0 || v > 10000) {
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "%s = %" PRId64 " is out of range", keys[i].key, v);
            cdc_err_hint(err, "use %s1 to 10000",
                         keys[i].lo < 0 ? "-1 (broker default) or " : "");
            return -1;
        }
        *(int *)((char *)spec + keys[i].off) = (int)v;
        spec->create = 1;
    }
    return 0;
}

/* One CreateTopics request: 0 created or exists, 1 timed out (err set),
 * -1 refused (err set). */
static int create_once(rd_kafka_t *rk, const char *name,
                       const cdc_kafka_topic_spec_t *spec, cdc_err_t *err)
{
    char es[512], v[16];
    rd_kafka_NewTopic_t *nt;
    rd_kafka_AdminOptions_t *ao;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    rd_kafka_resp_err_t e;
    const char *emsg = "";
    int rc = -1;

    nt = rd_kafka_NewTopic_new(name, spec->partitions,
                               spec->replication_factor, es, sizeof(es));
    if (!nt) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "kafka: cannot describe topic %s for creation: %s", name,
                    es);
        return -1;
    }
    if (spec->min_insync_replicas > 0) {
        snprintf(v, sizeof(v), "%d", spec->min_insync_replicas);
        rd_kafka_NewTopic_set_config(nt, "min.insync.replicas", v);
    }
    ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(ao, CREATE_TIMEOUT_MS, es,
                                              sizeof(es));
    rd_kafka_AdminOptions_set_operation_timeout(ao, CREATE_TIMEOUT_MS, es,
                                                sizeof(es));
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    ev = rd_kafka_queue_poll(q, CREATE_TIMEOUT_MS + 5000);
    if (!ev) {
        e = RD_KAFKA_RESP_ERR__TIMED_OUT;
    } else if ((e = rd_kafka_event_error(ev))) {
        emsg = rd_kafka_event_error_string(ev);
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(
            rd_kafka_event_CreateTopics_result(ev), &n);
        e = n ? rd_kafka_topic_result_error(tr[0]) : RD_KAFKA_RESP_ERR_NO_ERROR;
        emsg = n && rd_kafka_topic_result_error_string(tr[0])
                   ? rd_kafka_topic_result_error_string(tr[0])
                   : "";
    }
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        CDC_INFO(FAC, "created topic %s (partitions %d, replication factor "
                      "%d, min.insync.replicas %d; -1/0 = broker default)",
                 name, spec->partitions, spec->replication_factor,
                 spec->min_insync_replicas);
        rc = 0;
    } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        CDC_INFO(FAC, "topic %s exists; its settings are left as they are",
                 name);
        rc = 0;
    } else if (e == RD_KAFKA_RESP_ERR__TIMED_OUT ||
               e == RD_KAFKA_RESP_ERR__TRANSPORT ||
               e == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT) {
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                    "kafka: creating topic %s timed out: %s", name,
                    *emsg ? emsg : rd_kafka_err2str(e));
        rc = 1;
    } else {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "kafka: the cluster refused to create topic %s: %s (%s)",
                    name, *emsg ? emsg : rd_kafka_err2str(e),
                    rd_kafka_err2name(e));
        cdc_err_hint(err, "check kafka.topic_replication_factor (at most "
                          "the number of brokers), "
                          "kafka.topic_min_insync_replicas (at most the "
                          "replication factor) and the principal's "
                          "CREATE permission, or create the topic yourself");
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* A topic just created may not be in every broker's metadata yet; a
 * produce that sees "0 partitions" fails with UNKNOWN_TOPIC or
 * _UNKNOWN_PARTITION (when a later metadata refresh from a lagging broker
 * takes the partitions away again).  Wait (up to METADATA_WAIT_MS) until
 * the cluster has reported its partitions in every answer for
 * METADATA_STABLE_MS (each request goes to some broker). */
#define METADATA_WAIT_MS 15000
#define METADATA_STABLE_MS 1500
static void await_metadata(rd_kafka_t *rk, const char *name)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, name, NULL);
    int stable = 0;

    for (int waited = 0; rkt && waited < METADATA_WAIT_MS; waited += 100) {
        const struct rd_kafka_metadata *md = NULL;
        int ok = rd_kafka_metadata(rk, 0, rkt, &md, 2000) ==
                     RD_KAFKA_RESP_ERR_NO_ERROR &&
                 md->topic_cnt == 1 && !md->topics[0].err &&
                 md->topics[0].partition_cnt > 0;
        if (md)
            rd_kafka_metadata_destroy(md);
        stable = ok ? stable + 100 : 0;
        if (stable >= METADATA_STABLE_MS)
            break;
        rd_kafka_poll(rk, 100);
    }
    if (rkt)
        rd_kafka_topic_destroy(rkt);
}

int cdc_kafka_topic_create(rd_kafka_t *rk, const char *name,
                           const cdc_kafka_topic_spec_t *spec,
                           int64_t budget_ms, cdc_err_t *err)
{
    int64_t spent = 0;
    int rc;
    while ((rc = create_once(rk, name, spec, err)) == 1) {
        spent += CREATE_TIMEOUT_MS;
        if (budget_ms > 0 && spent >= budget_ms)
            return -1;
        CDC_WARN(FAC, "%s; retrying", err->msg);
        rd_kafka_poll(rk, 0); /* serve what queued meanwhile */
    }
    if (rc == 0)
        await_metadata(rk, name);
    return rc;
}
