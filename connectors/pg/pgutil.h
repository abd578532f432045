/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pgutil.h - small libpq helpers shared by every PostgreSQL connection of
 * the tool (source, snapshot, wide sink, validate, metrics).
 */
#ifndef CDC_PG_PGUTIL_H
#define CDC_PG_PGUTIL_H

#include <libpq-fe.h>

/** @brief Route the server's NOTICE/WARNING/INFO messages of c through
 *  the logger (facility fac, a string that outlives c) instead of libpq's
 *  default, which writes them raw to stderr and so breaks
 *  --log-format json. */
void cdc_pg_log_notices(PGconn *c, const char *fac);

#endif
