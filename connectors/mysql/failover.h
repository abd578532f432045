/* SPDX-License-Identifier: Apache-2.0 */
/*
 * failover.h - following a MySQL/MariaDB primary to another server.
 *
 * gtid_set.c   pure GTID containment (MariaDB positions, MySQL sets);
 * failover.c   the server list (mysql.hosts, or several hosts in
 *              mysql.dsn) and the check of a candidate server.
 * The source (source.c) calls these when the current server is lost.
 */
#ifndef CDC_MYSQL_FAILOVER_H
#define CDC_MYSQL_FAILOVER_H

#include <mysql.h>

#include "cdc/buf.h"
#include "cdc/err.h"

/**
 * @brief The part of `need` (the checkpoint's GTID state) that `have` (a
 *        server's @@gtid_binlog_pos / @@gtid_executed) lacks, as text
 *        into out: MariaDB "d-s-a..d-s-b" per domain, MySQL a GTID set.
 * @returns 0 when need ⊆ have (out empty), 1 when something is missing,
 *          -1 with err (CDC_EXIT_DATA) when a text cannot be parsed.
 */
int cdc_gtid_missing(const char *need, const char *have, int mariadb,
                     cdc_buf_t *out, cdc_err_t *err);

/* A server of the list. */
typedef struct cdc_my_host {
    char *host;
    unsigned port;
} cdc_my_host_t;

/**
 * @brief Split a DSN whose host part lists several servers
 *        (mysql://u:p@h1:3306,h2:3307/db) into a DSN with the first one
 *        (*first, malloc'd; NULL when there is a single host) and the
 *        others appended to the list.
 */
int cdc_my_dsn_hosts(const char *dsn, char **first, cdc_my_host_t **hosts,
                     int *n, cdc_err_t *err);

/** @brief Append one server (host taken as is: may be an IPv6 address). */
void cdc_my_hosts_add(cdc_my_host_t **hosts, int *n, const char *host,
                      unsigned port);

/** @brief Append "h1:p1,h2[:p2],..." (mysql.hosts) to the list. */
int cdc_my_hosts_parse(const char *list, unsigned defport,
                       cdc_my_host_t **hosts, int *n, cdc_err_t *err);

void cdc_my_hosts_free(cdc_my_host_t *hosts, int n);

/**
 * @brief May the source follow the server on connection m?  ckpt is the
 *        GTID state delivered so far.
 * @returns 0 yes; 1 not now (read-only and follow_read_only is off: a
 *          replica that may be promoted later; why says so); -1 with err:
 *          CDC_EXIT_NORESUME when the server lacks delivered GTIDs (the
 *          message lists the missing range), else a query error.
 */
int cdc_my_candidate_check(MYSQL *m, int mariadb, const char *name,
                           const char *ckpt, int follow_read_only,
                           char *why, size_t whysz, cdc_err_t *err);

#endif
