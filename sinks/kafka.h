/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka.h - the Kafka sink (librdkafka producer).
 *
 * The sink itself is reached through cdc_sink_kafka_ops (cdc/registry.c);
 * this header adds counters for tests and the benchmark, and the topic
 * creation of kafka_topics.c.
 */
#ifndef CDC_SINK_KAFKA_H
#define CDC_SINK_KAFKA_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "cdc/conf.h"
#include "cdc/err.h"
#include "cdc/plugin.h"

extern const cdc_sink_ops_t cdc_sink_kafka_ops;

typedef struct cdc_sink_kafka_stats {
    uint64_t produced;     /* messages handed to librdkafka (incl. tombstones) */
    uint64_t delivered;    /* messages acknowledged by the broker */
    uint64_t failed;       /* messages whose delivery failed */
    uint64_t queue_full;   /* times producev returned QUEUE_FULL */
    uint64_t blocked_ms;   /* total time write() waited on a full queue */
    uint64_t recreated;    /* producers recreated after a fatal error */
    uint32_t topics;       /* cached topic handles */
} cdc_sink_kafka_stats_t;

/** @brief Copy the counters of a sink created by cdc_sink_kafka_ops.
 *  @param snk borrowed; must be a kafka sink. */
void cdc_sink_kafka_stats(const cdc_sink_t *snk, cdc_sink_kafka_stats_t *out);

/* Settings for topics the sink creates (kafka_topics.c). */
typedef struct cdc_kafka_topic_spec {
    int create;              /* any of the keys below set */
    int replication_factor;  /* kafka.topic_replication_factor, -1 default */
    int min_insync_replicas; /* kafka.topic_min_insync_replicas, 0 unset */
    int partitions;          /* kafka.topic_partitions, -1 default */
} cdc_kafka_topic_spec_t;

/** @brief Read the kafka.topic_* keys; -1 with err on a bad value. */
int cdc_kafka_topic_spec_read(const cdc_conf_t *conf,
                              cdc_kafka_topic_spec_t *spec, cdc_err_t *err);

/** @brief Create topic name with spec; an existing topic is fine.
 *  Timeouts are retried for budget_ms (0 = forever).  -1 with err when the
 *  cluster refuses or the budget is spent. */
int cdc_kafka_topic_create(rd_kafka_t *rk, const char *name,
                           const cdc_kafka_topic_spec_t *spec,
                           int64_t budget_ms, cdc_err_t *err);

/** Checks a librdkafka property (name without "kafka.") and value with
 *  librdkafka's own table (sinks/kafka_conf_check.c; the sink's
 *  check_value hook).  0, or -1 with msg. */
int cdc_kafka_prop_check(const char *prop, const char *val, char *msg,
                         size_t msglen);

#endif
