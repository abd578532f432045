/* SPDX-License-Identifier: Apache-2.0 */
/*
 * failover.c - the check of a failover candidate.
 *
 * A candidate is followed only when its binlog holds every GTID already
 * delivered (the checkpoint's state ⊆ @@gtid_binlog_pos on MariaDB,
 * @@gtid_executed on MySQL) and it is writable (@@read_only off), unless
 * mysql.failover_read_only=true lets the source follow a replica.  A
 * writable candidate that lacks delivered GTIDs took writes that are not
 * a continuation of what we delivered (a lost-write split brain): that is
 * CDC_EXIT_NORESUME with the missing range, never followed silently.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/util.h"
#include "connectors/mysql/failover.h"

int cdc_my_candidate_check(MYSQL *m, int mariadb, const char *name,
                           const char *ckpt, int follow_read_only,
                           char *why, size_t whysz, cdc_err_t *err)
{
    const char *q = mariadb ? "SELECT @@gtid_binlog_pos, @@read_only"
                            : "SELECT @@gtid_executed, @@read_only";
    MYSQL_RES *res;
    MYSQL_ROW row;
    cdc_buf_t miss = CDC_BUF_INIT;
    char *have;
    int ro, rc;

    if (mysql_query(m, q) || !(res = mysql_store_result(m))) {
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                    "failover candidate %s: %s failed: %s", name, q,
                    mysql_error(m));
        return -1;
    }
    row = mysql_fetch_row(res);
    have = cdc_xstrdup(row && row[0] ? row[0] : "");
    ro = row && row[1] && strcmp(row[1], "0");
    mysql_free_result(res);
    rc = cdc_gtid_missing(ckpt, have, mariadb, &miss, err);
    if (rc >= 0 && ro && !follow_read_only) {
        snprintf(why, whysz, "server %s is read-only (a replica; set "
                             "mysql.failover_read_only=true to follow it)",
                 name);
        rc = 1;
    } else if (rc > 0 && ro) {
        /* a replica that has not caught up yet: maybe later */
        snprintf(why, whysz, "read-only server %s lacks delivered GTIDs "
                             "%.200s (not caught up)",
                 name, miss.p);
    } else if (rc > 0) {
        cdc_err_set(err, CDC_EXIT_NORESUME, CDC_ERR_F_FATAL,
                    "failover refused: server %s lacks GTIDs already "
                    "delivered: %.300s",
                    name, miss.p);
        cdc_err_detail(err, "delivered up to '%.300s'; the server's %s is "
                            "'%.300s'",
                       ckpt, mariadb ? "@@gtid_binlog_pos" : "@@gtid_executed",
                       have);
        cdc_err_hint(err, "this server did not receive every transaction "
                          "of the old primary (lost writes, split brain): "
                          "promote a replica that has them, or run a "
                          "backfill and reset the offsets");
        rc = -1;
    }
    free(have);
    cdc_buf_free(&miss);
    return rc;
}
