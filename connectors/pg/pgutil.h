/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pgutil.h - small libpq helpers shared by every PostgreSQL connection of
 * the tool (source, snapshot, wide sink, validate, metrics).
 */
#ifndef CDC_PG_PGUTIL_H
#define CDC_PG_PGUTIL_H

#include <libpq-fe.h>

#include "cdc/conf.h"
#include "cdc/err.h"

/** @brief Route the server's NOTICE/WARNING/INFO messages of c through
 *  the logger (facility fac, a string that outlives c) instead of libpq's
 *  default, which writes them raw to stderr and so breaks
 *  --log-format json. */
void cdc_pg_log_notices(PGconn *c, const char *fac);
/** Checks a libpq conninfo string with libpq's parser (the source's
 *  check_value hook).  0, or -1 with msg (no password text in it). */
int cdc_pg_conninfo_check(const char *conninfo, char *msg, size_t msglen);

/* The slot's retained WAL in /metrics (connectors/pg/slot_gauge.c). */
typedef struct cdc_pg_slot_gauge cdc_pg_slot_gauge_t;
/** Registers the scrape hook unless metrics.pg_slot is false or
 *  postgres.dsn is empty (*out NULL then).  0, or -1 with err. */
int cdc_pg_slot_gauge_start(const cdc_conf_t *conf, cdc_pg_slot_gauge_t **out,
                            cdc_err_t *err);
/** Removes the hook (waiting for a scrape in progress) and frees g. */
void cdc_pg_slot_gauge_stop(cdc_pg_slot_gauge_t *g);

/** @brief The first line of c's last error (thread-local buffer, valid
 *  until the next call on this thread); "no connection" for NULL. */
const char *cdc_pg_errline(PGconn *c);

/* How cdc_pg_connect() connects. */
typedef struct cdc_pg_connopt {
    const char *session;   /* -c settings put before the DSN's "options" */
    const char *app;       /* application_name */
    int replication;       /* replication=database (a walsender session) */
    int verify_with_ca;    /* sslrootcert without sslmode (nor PGSSLMODE):
                              sslmode=verify-full */
    int hba_hint;          /* name pg_hba.conf when replication is refused */
    const char *fac;       /* log facility of the server's notices */
} cdc_pg_connopt_t;

/**
 * @brief Connect with postgres.dsn (conninfo or URI, expanded as dbname)
 *        and the settings of o; notices go through the logger.
 * @returns the connection, or NULL with err: CDC_EXIT_CONFIG when the DSN
 *          cannot be parsed, CDC_EXIT_UNAVAILABLE (retriable) when the
 *          server cannot be reached ("postgres: cannot connect[ for
 *          replication]: ...", the redacted DSN in the detail).
 */
PGconn *cdc_pg_connect(const char *dsn, const cdc_pg_connopt_t *o,
                       cdc_err_t *err);

#endif
