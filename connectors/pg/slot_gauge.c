/* SPDX-License-Identifier: Apache-2.0 */
/*
 * slot_gauge.c - the replication slot's retained WAL in /metrics.
 *
 * The source registers a scrape hook (cdc/metrics.h): the HTTP thread runs
 * it before rendering /metrics, and it reads pg_replication_slots over a
 * libpq session of its own (postgres.dsn, 3 s connect timeout), at most
 * every 10 s (30 s after a failed connect).  metrics.pg_slot = false turns
 * it off.  The value is the gauge autoglm_cdc_pg_slot_retained_wal_bytes,
 * absent while unknown.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cdc/conf.h"
#include "cdc/log.h"
#include "cdc/metrics.h"
#include "cdc/util.h"
#include "connectors/pg/pgutil.h"

#define FAC "http"
#define HOOK "pg_slot"
#define REFRESH_US INT64_C(10000000)
#define RETRY_US INT64_C(30000000)

struct cdc_pg_slot_gauge {
    char *dsn, *slot;
    PGconn *pg;         /* HTTP thread only */
    int64_t next_us;    /* HTTP thread only */
};

static void publish(int64_t bytes)
{
    cdc_metric_t *m = cdc_metrics_register(
        "pg_slot_retained_wal_bytes", "gauge",
        "WAL the replication slot keeps on the server "
        "(current WAL LSN minus restart_lsn).",
        NULL);
    if (bytes >= 0)
        cdc_metrics_set(m, bytes);
    else
        cdc_metrics_unset(m);
}

static void refresh(void *arg)
{
    cdc_pg_slot_gauge_t *g = arg;
    int64_t t = cdc_metrics_now_us();
    const char *params[1];
    PGresult *res;

    if (t < g->next_us)
        return;
    g->next_us = t + REFRESH_US;
    if (!g->pg || PQstatus(g->pg) != CONNECTION_OK) {
        const char *keys[] = {"dbname", "connect_timeout",
                              "application_name", NULL};
        const char *vals[] = {g->dsn, "3", "autoglm-cdc-metrics", NULL};
        PQfinish(g->pg);
        g->pg = PQconnectdbParams(keys, vals, 1);
        cdc_pg_log_notices(g->pg, FAC);
        if (PQstatus(g->pg) != CONNECTION_OK) {
            CDC_DEBUG(FAC, "slot metrics: cannot connect: %s",
                      PQerrorMessage(g->pg));
            PQfinish(g->pg);
            g->pg = NULL;
            g->next_us = t + RETRY_US;
            publish(-1);
            return;
        }
    }
    params[0] = g->slot;
    res = PQexecParams(g->pg,
                       "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), "
                       "restart_lsn)::bigint FROM pg_replication_slots "
                       "WHERE slot_name = $1",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
        !PQgetisnull(res, 0, 0))
        publish(strtoll(PQgetvalue(res, 0, 0), NULL, 10));
    else {
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            CDC_DEBUG(FAC, "slot metrics: %s", PQerrorMessage(g->pg));
        publish(-1);
    }
    PQclear(res);
}

int cdc_pg_slot_gauge_start(const cdc_conf_t *conf, cdc_pg_slot_gauge_t **out,
                            cdc_err_t *err)
{
    cdc_pg_slot_gauge_t *g;
    int on;

    *out = NULL;
    if (cdc_conf_get_bool(conf, "metrics.pg_slot", 1, &on, err) < 0)
        return -1;
    if (!on || !*cdc_conf_get(conf, "postgres.dsn", ""))
        return 0;
    g = cdc_xcalloc(1, sizeof(*g));
    g->dsn = cdc_xstrdup(cdc_conf_get(conf, "postgres.dsn", ""));
    g->slot = cdc_xstrdup(cdc_conf_get(conf, "postgres.slot", "autoglm_cdc"));
    /* one gauge per process: a second reader of the same source (the
     * watermark window of a backfill) leaves it to the first */
    if (cdc_metrics_scrape_add(HOOK, refresh, g)) {
        cdc_pg_slot_gauge_stop(g);
        return 0;
    }
    *out = g;
    return 0;
}

void cdc_pg_slot_gauge_stop(cdc_pg_slot_gauge_t *g)
{
    if (!g)
        return;
    cdc_metrics_scrape_remove(HOOK, g);
    PQfinish(g->pg);
    free(g->dsn);
    free(g->slot);
    free(g);
}
