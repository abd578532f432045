/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry.c - the list of sources, sinks and snapshot drivers.
 *
 * Plugins are referenced weakly so that a build without one of them (or
 * a unit test that links only part of libcdc.a) still links; a missing
 * plugin is simply not offered.
 */
#include <string.h>

#include "cdc/backfill.h"
#include "cdc/plugin.h"

extern const cdc_source_ops_t cdc_source_mysql_ops __attribute__((weak));
extern const cdc_source_ops_t cdc_source_postgres_ops __attribute__((weak));
extern const cdc_source_ops_t cdc_source_kafka_ops __attribute__((weak));
extern const cdc_sink_ops_t cdc_sink_stdout_ops __attribute__((weak));
extern const cdc_sink_ops_t cdc_sink_file_ops __attribute__((weak));
extern const cdc_sink_ops_t cdc_sink_kafka_ops __attribute__((weak));
extern const cdc_sink_ops_t cdc_sink_postgres_ops __attribute__((weak));
extern const cdc_sink_ops_t cdc_sink_mysql_ops __attribute__((weak));
extern const cdc_sink_ops_t cdc_sink_rabbitmq_ops __attribute__((weak));
extern const cdc_sink_ops_t cdc_sink_mqtt_ops __attribute__((weak));
extern const cdc_sink_ops_t cdc_sink_http_ops __attribute__((weak));
/* snapshot drivers (backfill), named as their streaming source */
extern const cdc_snap_ops_t cdc_snap_mysql_ops __attribute__((weak));
extern const cdc_snap_ops_t cdc_snap_postgres_ops __attribute__((weak));

static const cdc_source_ops_t *sources(int i)
{
    const cdc_source_ops_t *all[] = {&cdc_source_mysql_ops,
                                     &cdc_source_postgres_ops,
                                     &cdc_source_kafka_ops};
    return i < (int)(sizeof(all) / sizeof(all[0])) ? all[i] : (void *)-1;
}

static const cdc_sink_ops_t *sinks(int i)
{
    const cdc_sink_ops_t *all[] = {&cdc_sink_stdout_ops, &cdc_sink_file_ops,
                                   &cdc_sink_kafka_ops, &cdc_sink_postgres_ops,
                                   &cdc_sink_mysql_ops, &cdc_sink_rabbitmq_ops,
                                   &cdc_sink_mqtt_ops, &cdc_sink_http_ops};
    return i < (int)(sizeof(all) / sizeof(all[0])) ? all[i] : (void *)-1;
}

static const cdc_snap_ops_t *snaps(int i)
{
    const cdc_snap_ops_t *all[] = {&cdc_snap_mysql_ops,
                                   &cdc_snap_postgres_ops};
    return i < (int)(sizeof(all) / sizeof(all[0])) ? all[i] : (void *)-1;
}

static int valid_src(const cdc_source_ops_t *o)
{
    return o && o->abi == CDC_PLUGIN_ABI && o->create && o->start &&
           o->next && o->destroy;
}

static int valid_snk(const cdc_sink_ops_t *o)
{
    return o && o->abi == CDC_PLUGIN_ABI && o->create && o->write &&
           o->poll && o->flush && o->destroy;
}

const cdc_source_ops_t *cdc_source_find(const char *name)
{
    const cdc_source_ops_t *o;
    for (int i = 0; (o = sources(i)) != (void *)-1; i++)
        if (valid_src(o) && !strcmp(o->name, name))
            return o;
    for (int i = 0; (o = sources(i)) != (void *)-1; i++)
        for (const char *const *a = valid_src(o) ? o->aliases : NULL; a && *a;
             a++)
            if (!strcmp(*a, name))
                return o;
    return NULL;
}

const cdc_snap_ops_t *cdc_snap_find(const char *source)
{
    const cdc_source_ops_t *src = cdc_source_find(source);
    const char *name = src ? src->name : source;
    const cdc_snap_ops_t *d;

    for (int i = 0; (d = snaps(i)) != (void *)-1; i++)
        if (d && d->open && !strcmp(d->name, name))
            return d;
    return NULL;
}

const cdc_sink_ops_t *cdc_sink_find(const char *name)
{
    const cdc_sink_ops_t *o;
    for (int i = 0; (o = sinks(i)) != (void *)-1; i++)
        if (valid_snk(o) && !strcmp(o->name, name))
            return o;
    return NULL;
}

const char *cdc_source_names(void)
{
    static char buf[256];
    const cdc_source_ops_t *o;
    buf[0] = '\0';
    for (int i = 0; (o = sources(i)) != (void *)-1; i++)
        if (valid_src(o)) {
            if (buf[0])
                strcat(buf, ", ");
            strcat(buf, o->name);
        }
    return buf;
}

const char *cdc_sink_names(void)
{
    static char buf[256];
    const cdc_sink_ops_t *o;
    buf[0] = '\0';
    for (int i = 0; (o = sinks(i)) != (void *)-1; i++)
        if (valid_snk(o)) {
            if (buf[0])
                strcat(buf, ", ");
            strcat(buf, o->name);
        }
    return buf;
}
