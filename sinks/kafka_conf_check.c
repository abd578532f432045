/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka_conf_check.c - the librdkafka side of the declared keys
 * (cdc/conf.h): a key of the open kafka.* namespace is checked by
 * librdkafka's own property table when the configuration is resolved, so
 * `validate` and every command name a misspelt property at its position
 * instead of the producer failing at start.
 */
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "cdc/conf.h"
#include "sinks/kafka.h"

int cdc_kafka_prop_check(const char *prop, const char *val, char *msg,
                         size_t msglen)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    char errstr[512] = "";
    rd_kafka_conf_res_t r = rd_kafka_conf_set(kc, prop, val, errstr,
                                              sizeof(errstr));

    rd_kafka_conf_destroy(kc);
    if (r == RD_KAFKA_CONF_OK)
        return 0;
    /* librdkafka's text names the property; a rejected value of a secret
     * property is not repeated by it */
    snprintf(msg, msglen, "%s", errstr[0] ? errstr : "rejected");
    return -1;
}
