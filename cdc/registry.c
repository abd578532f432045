/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry.c - the list of sources, sinks and snapshot drivers.
 *
 * The list is cdc/plugin_list.h, which make generates from the names that
 * the plugins' Makefile fragments append to CDC_SOURCE_TYPES,
 * CDC_SINK_TYPES and CDC_SNAPSHOT_TYPES: one CDC_PLUGIN(kind, name) line
 * each, naming the ops table cdc_<kind>_<name>_ops.  The references below are ordinary ones,
 * so a static link pulls every listed plugin out of libcdc.a; the core
 * itself names none.
 */
#include <string.h>

#include "cdc/backfill.h"
#include "cdc/plugin.h"

#define CDC_PLUGIN(kind, name) \
    extern const cdc_##kind##_ops_t cdc_##kind##_##name##_ops;
#include "cdc/plugin_list.h"
#undef CDC_PLUGIN

/* each table: the plugins of one kind, in the fragments' order, NULL last */
#define CDC_PLUGIN(kind, name) CDC_PLUGIN_##kind(name)
#define CDC_PLUGIN_source(name) &cdc_source_##name##_ops,
#define CDC_PLUGIN_sink(name)
#define CDC_PLUGIN_snap(name)
static const cdc_source_ops_t *const all_sources[] = {
#include "cdc/plugin_list.h"
    NULL};
#undef CDC_PLUGIN_source
#undef CDC_PLUGIN_sink
#define CDC_PLUGIN_source(name)
#define CDC_PLUGIN_sink(name) &cdc_sink_##name##_ops,
static const cdc_sink_ops_t *const all_sinks[] = {
#include "cdc/plugin_list.h"
    NULL};
#undef CDC_PLUGIN_sink
#undef CDC_PLUGIN_snap
#define CDC_PLUGIN_sink(name)
#define CDC_PLUGIN_snap(name) &cdc_snap_##name##_ops,
static const cdc_snap_ops_t *const all_snaps[] = {
#include "cdc/plugin_list.h"
    NULL};
#undef CDC_PLUGIN_source
#undef CDC_PLUGIN_sink
#undef CDC_PLUGIN_snap
#undef CDC_PLUGIN

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
    for (int i = 0; (o = all_sources[i]) != NULL; i++)
        if (valid_src(o) && !strcmp(o->name, name))
            return o;
    for (int i = 0; (o = all_sources[i]) != NULL; i++)
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

    for (int i = 0; (d = all_snaps[i]) != NULL; i++)
        if (d && d->open && !strcmp(d->name, name))
            return d;
    return NULL;
}

const cdc_sink_ops_t *cdc_sink_find(const char *name)
{
    const cdc_sink_ops_t *o;
    for (int i = 0; (o = all_sinks[i]) != NULL; i++)
        if (valid_snk(o) && !strcmp(o->name, name))
            return o;
    return NULL;
}

const char *cdc_source_by_position(int kind)
{
    for (int i = 0; all_sources[i]; i++)
        if (valid_src(all_sources[i]) && all_sources[i]->position == kind)
            return all_sources[i]->name;
    return NULL;
}

int cdc_plugin_check_value(int type, const char *key, const char *val,
                           const char *where, cdc_err_t *err)
{
    for (int i = 0; all_sources[i]; i++)
        if (valid_src(all_sources[i]) && all_sources[i]->check_value &&
            all_sources[i]->check_value(type, key, val, where, err))
            return -1;
    for (int i = 0; all_sinks[i]; i++)
        if (valid_snk(all_sinks[i]) && all_sinks[i]->check_value &&
            all_sinks[i]->check_value(type, key, val, where, err))
            return -1;
    return 0;
}

const char *cdc_source_names(void)
{
    static char buf[256];
    const cdc_source_ops_t *o;
    buf[0] = '\0';
    for (int i = 0; (o = all_sources[i]) != NULL; i++)
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
    for (int i = 0; (o = all_sinks[i]) != NULL; i++)
        if (valid_snk(o)) {
            if (buf[0])
                strcat(buf, ", ");
            strcat(buf, o->name);
        }
    return buf;
}
