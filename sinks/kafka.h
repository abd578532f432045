/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka.h - the Kafka sink (librdkafka producer).
 *
 * The sink itself is reached through cdc_sink_kafka_ops (cdc/registry.c);
 * this header only adds counters for tests and the benchmark.
 */
#ifndef CDC_SINK_KAFKA_H
#define CDC_SINK_KAFKA_H

#include <stdint.h>

#include "cdc/plugin.h"

extern const cdc_sink_ops_t cdc_sink_kafka_ops;

typedef struct cdc_sink_kafka_stats {
    uint64_t produced;     /* messages handed to librdkafka (incl. tombstones) */
    uint64_t delivered;    /* messages acknowledged by the broker */
    uint64_t failed;       /* messages whose delivery failed */
    uint64_t queue_full;   /* times producev returned QUEUE_FULL */
    uint64_t blocked_ms;   /* total time write() waited on a full queue */
    uint32_t topics;       /* cached topic handles */
} cdc_sink_kafka_stats_t;

/** @brief Copy the counters of a sink created by cdc_sink_kafka_ops.
 *  @param snk borrowed; must be a kafka sink. */
void cdc_sink_kafka_stats(const cdc_sink_t *snk, cdc_sink_kafka_stats_t *out);

#endif
