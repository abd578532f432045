/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_plugin_hooks.c - the optional plugin hooks that keep plugin names out
 * of the core (cdc/plugin.h): source aliases (cdc_source_find and the
 * snapshot drivers' lookup in cdc/registry.c) and the Kafka sink's bulk
 * hint (the settings backfill asks for, each only where unset); the
 * list the build generates from the Makefile fragments (cdc/plugin_list.h,
 * linked without --whole-archive: the registry's references alone pull
 * the plugins in); the check_value hooks that judge a conninfo or a
 * kafka.* property for the configuration layer.
 */
#include <string.h>

#include "cdc/backfill.h"
#include "cdc/conf.h"
#include "cdc/plugin.h"
#include "tests/unit/cdc_test.h"

CDC_TEST(source_aliases)
{
    const cdc_source_ops_t *my = cdc_source_find("mysql");
    const cdc_source_ops_t *pg = cdc_source_find("postgres");

    T_ASSERT(my && pg);
    T_ASSERT(cdc_source_find("mariadb") == my);
    T_ASSERT(cdc_source_find("postgresql") == pg);
    T_ASSERT(cdc_source_find("pg") == pg);
    T_ASSERT(cdc_source_find("kafka") != NULL);
    T_ASSERT(cdc_source_find("oracle") == NULL);
    T_ASSERT(cdc_source_find("") == NULL);
    /* the names list shows the names, not the aliases */
    T_ASSERT(strstr(cdc_source_names(), "mariadb") == NULL);
}

CDC_TEST(snapshot_drivers)
{
    const cdc_snap_ops_t *my = cdc_snap_find("mysql");
    const cdc_snap_ops_t *pg = cdc_snap_find("postgres");

    T_ASSERT(my && pg);
    if (!my || !pg)
        return;
    T_EQ_STR(my->name, "mysql");
    T_EQ_STR(pg->name, "postgres");
    T_ASSERT(cdc_snap_find("mariadb") == my);
    T_ASSERT(cdc_snap_find("postgresql") == pg);
    T_ASSERT(cdc_snap_find("pg") == pg);
    T_ASSERT(cdc_snap_find("kafka") == NULL); /* a source without one */
    T_ASSERT(cdc_snap_find("nosuch") == NULL);
    /* rows read without a window are stamped with the driver's connector */
    T_EQ_STR(my->connector, "mysql");
    T_EQ_STR(pg->connector, "postgresql");
}

/* run the Kafka sink's hook over conf; the returned copy holds the result */
static cdc_conf_t *bulk(cdc_conf_t *conf, int *rc)
{
    const cdc_sink_ops_t *k = cdc_sink_find("kafka");
    cdc_conf_t *b = cdc_conf_new();
    cdc_err_t err = {0};

    for (int i = 0; i < conf->n; i++)
        cdc_conf_set(b, conf->ents[i].key, conf->ents[i].val,
                     conf->ents[i].where);
    *rc = k && k->bulk_hint ? k->bulk_hint(conf, b, &err) : -2;
    return b;
}

CDC_TEST(kafka_bulk_hint)
{
    cdc_conf_t *c = cdc_conf_new(), *b;
    int rc;

    /* nothing configured: every bulk setting */
    b = bulk(c, &rc);
    T_EQ_INT(rc, 0);
    T_EQ_STR(cdc_conf_get(b, "kafka.linger.ms", NULL), "50");
    T_EQ_STR(cdc_conf_get(b, "kafka.batch.size", NULL), "4000000");
    T_EQ_STR(cdc_conf_get(b, "kafka.batch.num.messages", NULL), "100000");
    T_EQ_STR(cdc_conf_get(b, "kafka.compression.type", NULL), "lz4");
    T_EQ_STR(cdc_conf_get(b, "kafka.compression.level", NULL), "1");
    cdc_conf_destroy(b);

    /* a configured value or its librdkafka synonym wins */
    cdc_conf_set(c, "kafka.compression.codec", "gzip", "test");
    cdc_conf_set(c, "kafka.batch.size", "1000", "test");
    b = bulk(c, &rc);
    T_EQ_INT(rc, 0);
    T_ASSERT(cdc_conf_get(b, "kafka.compression.type", NULL) == NULL);
    T_EQ_STR(cdc_conf_get(b, "kafka.compression.codec", NULL), "gzip");
    T_EQ_STR(cdc_conf_get(b, "kafka.batch.size", NULL), "1000");
    T_EQ_STR(cdc_conf_get(b, "kafka.linger.ms", NULL), "50");
    cdc_conf_destroy(b);

    /* backfill.kafka_bulk=false: none */
    cdc_conf_set(c, "backfill.kafka_bulk", "false", "test");
    b = bulk(c, &rc);
    T_EQ_INT(rc, 0);
    T_ASSERT(cdc_conf_get(b, "kafka.linger.ms", NULL) == NULL);
    T_ASSERT(cdc_conf_get(b, "kafka.compression.level", NULL) == NULL);
    cdc_conf_destroy(b);
    cdc_conf_destroy(c);
}

/* only the Kafka sink asks for bulk settings today; the file sink has no
 * hook, so backfill creates it from the configuration as given */
CDC_TEST(other_sinks_no_hint)
{
    const cdc_sink_ops_t *f = cdc_sink_find("file");

    T_ASSERT(f != NULL);
    T_ASSERT(f && f->bulk_hint == NULL);
}

/* every plugin of the fragments is linked and listed, in their order
 * (the order of --help and of the "available ..." hints) */
CDC_TEST(plugin_list)
{
    T_EQ_STR(cdc_source_names(), "mysql, postgres, kafka");
    T_EQ_STR(cdc_sink_names(), "stdout, file, kafka, postgres, mysql, "
                               "rabbitmq, mqtt, http");
    T_ASSERT(cdc_sink_find("http") && cdc_sink_find("mqtt") &&
             cdc_sink_find("rabbitmq") && cdc_sink_find("file"));
    T_ASSERT(cdc_sink_find("nope") == NULL);
}

/* the configuration layer asks the plugins: libpq judges conninfo keys,
 * librdkafka the kafka.* properties; other keys are no plugin's */
CDC_TEST(check_value_hooks)
{
    cdc_err_t err = {0};

    T_EQ_INT(cdc_plugin_check_value(CDC_KT_CONNINFO, "postgres.dsn",
                                    "host=h dbname=d", NULL, &err), 0);
    T_EQ_INT(cdc_plugin_check_value(CDC_KT_CONNINFO, "postgres.dsn",
                                    "host=h dbnme=d password=s3cret",
                                    "f.yaml:2:3", &err), -1);
    T_EQ_INT(err.code, CDC_EXIT_CONFIG);
    T_ASSERT(strstr(err.msg, "f.yaml:2:3: postgres.dsn: libpq rejects"));
    T_ASSERT(strstr(err.msg, "dbnme"));
    T_ASSERT(!strstr(err.msg, "s3cret"));
    memset(&err, 0, sizeof(err));
    T_EQ_INT(cdc_plugin_check_value(CDC_KT_NAMESPACE, "kafka.acks", "all",
                                    NULL, &err), 0);
    T_EQ_INT(cdc_plugin_check_value(CDC_KT_NAMESPACE, "kafka.ackz", "all",
                                    NULL, &err), -1);
    T_EQ_INT(err.code, CDC_EXIT_CONFIG);
    T_ASSERT(strstr(err.msg, "kafka.ackz: librdkafka: "));
    /* not a plugin's format: nobody objects */
    T_EQ_INT(cdc_plugin_check_value(CDC_KT_STRING, "kafka.ackz", "x", NULL,
                                    &err), 0);
    T_EQ_INT(cdc_plugin_check_value(CDC_KT_NAMESPACE, "other.x", "y", NULL,
                                    &err), 0);
}

CDC_TEST_MAIN()
