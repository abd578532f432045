/* SPDX-License-Identifier: Apache-2.0 */
/*
 * slot_gauge.c - the replication slot's retained WAL in /metrics.
 *
 * A refresher thread of its own reads pg_replication_slots over a libpq
 * session of its own (postgres.dsn, 3 s connect timeout), never the HTTP
 * thread: a server that accepts and then stops answering blocks only the
 * refresher, and /livez, /readyz and /metrics go on being served.  The
 * source registers a scrape hook (cdc/metrics.h) that only wakes the
 * refresher: nothing connects until /metrics is first scraped, and then at
 * most every 10 s (30 s after a failed connect).  A scrape shows the last
 * value read.  metrics.pg_slot = false turns it off.  The value is the
 * gauge autoglm_cdc_pg_slot_retained_wal_bytes, absent while unknown.
 *
 * Stopping shuts the session's socket down, which ends a query in
 * progress at once; a connect in progress ends within its timeout.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

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
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wanted;      /* a scrape asked for a value (under mu) */
    int stop;        /* under mu */
    PGconn *pg;      /* the refresher's; set and cleared under mu */
    int64_t next_us; /* refresher only */
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

/* The refresher's session: connected, or NULL (logged, gauge unset). */
static PGconn *session(cdc_pg_slot_gauge_t *g, int64_t t)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name",
                          NULL};
    const char *vals[] = {g->dsn, "3", "autoglm-cdc-metrics", NULL};
    PGconn *c;

    pthread_mutex_lock(&g->mu);
    c = g->pg;
    pthread_mutex_unlock(&g->mu);
    if (c && PQstatus(c) == CONNECTION_OK)
        return c;
    pthread_mutex_lock(&g->mu);
    g->pg = NULL;
    pthread_mutex_unlock(&g->mu);
    PQfinish(c);
    c = PQconnectdbParams(keys, vals, 1);
    cdc_pg_log_notices(c, FAC);
    if (PQstatus(c) != CONNECTION_OK) {
        CDC_DEBUG(FAC, "slot metrics: cannot connect: %s",
                  PQerrorMessage(c));
        PQfinish(c);
        g->next_us = t + RETRY_US;
        publish(-1);
        return NULL;
    }
    pthread_mutex_lock(&g->mu);
    g->pg = c; /* from now on, a stop shuts its socket down */
    if (g->stop)
        shutdown(PQsocket(c), SHUT_RDWR);
    pthread_mutex_unlock(&g->mu);
    return c;
}

static void refresh(cdc_pg_slot_gauge_t *g)
{
    int64_t t = cdc_metrics_now_us();
    const char *params[1];
    PGconn *c;
    PGresult *res;

    g->next_us = t + REFRESH_US;
    if (!(c = session(g, t)))
        return;
    params[0] = g->slot;
    res = PQexecParams(c,
                       "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), "
                       "restart_lsn)::bigint FROM pg_replication_slots "
                       "WHERE slot_name = $1",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
        !PQgetisnull(res, 0, 0))
        publish(strtoll(PQgetvalue(res, 0, 0), NULL, 10));
    else {
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            CDC_DEBUG(FAC, "slot metrics: %s", PQerrorMessage(c));
        publish(-1);
    }
    PQclear(res);
}

/* The refresher: a value when a scrape wants one, at most every
 * REFRESH_US. */
static void *refresher(void *arg)
{
    cdc_pg_slot_gauge_t *g = arg;

    pthread_mutex_lock(&g->mu);
    for (;;) {
        int64_t now = cdc_metrics_now_us();
        if (g->stop)
            break;
        if (g->wanted && now >= g->next_us) {
            g->wanted = 0;
            pthread_mutex_unlock(&g->mu);
            refresh(g);
            pthread_mutex_lock(&g->mu);
            continue;
        }
        if (g->wanted) {
            struct timespec ts;
            int64_t wait_us = g->next_us - now;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += (time_t)(wait_us / 1000000);
            ts.tv_nsec += (long)(wait_us % 1000000) * 1000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        } else
            pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* The scrape hook (HTTP thread): wakes the refresher, never waits. */
static void wake(void *arg)
{
    cdc_pg_slot_gauge_t *g = arg;

    pthread_mutex_lock(&g->mu);
    g->wanted = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void gauge_free(cdc_pg_slot_gauge_t *g);

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
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (pthread_create(&g->thr, NULL, refresher, g)) {
        CDC_WARN(FAC, "cannot start the thread that reads the slot's "
                      "retained WAL: /metrics goes without it");
        gauge_free(g);
        return 0;
    }
    /* one gauge per process: a second reader of the same source (the
     * watermark window of a backfill) leaves it to the first */
    if (cdc_metrics_scrape_add(HOOK, wake, g)) {
        cdc_pg_slot_gauge_stop(g);
        return 0;
    }
    *out = g;
    return 0;
}

static void gauge_free(cdc_pg_slot_gauge_t *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g->dsn);
    free(g->slot);
    free(g);
}

void cdc_pg_slot_gauge_stop(cdc_pg_slot_gauge_t *g)
{
    if (!g)
        return;
    /* no scrape wakes it from now on (a scrape in progress is waited for) */
    cdc_metrics_scrape_remove(HOOK, g);
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    if (g->pg) /* a query in progress ends at once */
        shutdown(PQsocket(g->pg), SHUT_RDWR);
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thr, NULL);
    PQfinish(g->pg);
    gauge_free(g);
}
