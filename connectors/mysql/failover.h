/* SPDX-License-Identifier: Apache-2.0 */
/*
 * failover.h - following a MySQL/MariaDB primary to another server.
 *
 * gtid_set.c   pure GTID containment (MariaDB positions, MySQL sets);
 * failover.c   the check of a candidate server; the server list
 *              (mysql.hosts, or several hosts in mysql.dsn) is parsed by
 *              the connection layer (conn.h).
 * The source (source.c) calls these when the current server is lost.
 */
#ifndef CDC_MYSQL_FAILOVER_H
#define CDC_MYSQL_FAILOVER_H

#include <mysql.h>

#include "cdc/buf.h"
#include "cdc/err.h"
#include "connectors/mysql/conn.h"
#include "connectors/mysql/gtid_set.h"

/**
 * @brief The part of `need` (the checkpoint's GTID state) that `have` (a
 *        server's @@gtid_binlog_pos / @@gtid_executed) lacks, as text
 *        into out: MariaDB "d-s-a..d-s-b" per domain, MySQL a GTID set.
 * @returns 0 when need ⊆ have (out empty), 1 when something is missing,
 *          -1 with err (CDC_EXIT_DATA) when a text cannot be parsed.
 */
int cdc_gtid_missing(const char *need, const char *have, int mariadb,
                     cdc_buf_t *out, cdc_err_t *err);

/**
 * @brief The decision of cdc_my_candidate_check() on the server's
 *        answers: have = @@gtid_binlog_pos (MariaDB) / @@gtid_executed
 *        (MySQL, as printed, newlines allowed), read_only = @@read_only
 *        != 0, gtid_mode = @@gtid_mode (MySQL: anything but ON is not
 *        followed, 1 with why; ignored for MariaDB).  Returns as below.
 */
int cdc_my_candidate_decide(int mariadb, const char *name, const char *ckpt,
                            const char *have, int read_only,
                            const char *gtid_mode, int follow_read_only,
                            char *why, size_t whysz, cdc_err_t *err);

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
