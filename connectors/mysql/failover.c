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
 * A MySQL candidate must also run with gtid_mode=ON: the source resumes
 * there with COM_BINLOG_DUMP_GTID (gtid_set.h), which a file/position of
 * the old primary cannot replace.
 *
 * cdc_my_candidate_decide() is the decision on the server's answers (no
 * I/O, unit-tested with made-up answers); cdc_my_candidate_check() asks
 * the server and calls it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cdc/util.h"
#include "connectors/mysql/failover.h"

int cdc_my_candidate_decide(int mariadb, const char *name, const char *ckpt,
                            const char *have, int read_only,
                            const char *gtid_mode, int follow_read_only,
                            char *why, size_t whysz, cdc_err_t *err)
{
    cdc_buf_t miss = CDC_BUF_INIT;
    int rc;

    if (!mariadb && strcasecmp(gtid_mode ? gtid_mode : "", "ON")) {
        /* OFF/OFF_PERMISSIVE/ON_PERMISSIVE: anonymous transactions may be
         * there, which no GTID set can position */
        snprintf(why, whysz, "MySQL server %s has gtid_mode=%s: the source "
                             "can resume on another server only by GTID "
                             "(SET PERSIST gtid_mode=ON there)",
                 name, gtid_mode && *gtid_mode ? gtid_mode : "unknown");
        return 1;
    }
    rc = cdc_gtid_missing(ckpt, have, mariadb, &miss, err);
    if (rc >= 0 && read_only && !follow_read_only) {
        snprintf(why, whysz, "server %s is read-only (a replica; set "
                             "mysql.failover_read_only=true to follow it)",
                 name);
        rc = 1;
    } else if (rc > 0 && read_only) {
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
    cdc_buf_free(&miss);
    return rc;
}

int cdc_my_candidate_check(MYSQL *m, int mariadb, const char *name,
                           const char *ckpt, int follow_read_only,
                           char *why, size_t whysz, cdc_err_t *err)
{
    const char *q = mariadb
                        ? "SELECT @@gtid_binlog_pos, @@read_only, 'ON'"
                        : "SELECT @@gtid_executed, @@read_only, @@gtid_mode";
    MYSQL_RES *res;
    MYSQL_ROW row;
    char *have, *mode;
    int ro, rc;

    if (mysql_query(m, q) || !(res = mysql_store_result(m))) {
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                    "failover candidate %s: %s failed: %s", name, q,
                    mysql_error(m));
        return -1;
    }
    row = mysql_fetch_row(res);
    if (!row || mysql_num_fields(res) < 3) {
        mysql_free_result(res);
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                    "failover candidate %s: %s returned no row", name, q);
        return -1;
    }
    have = cdc_xstrdup(row[0] ? row[0] : "");
    mode = cdc_xstrdup(row[2] ? row[2] : "");
    ro = row[1] && strcmp(row[1], "0");
    mysql_free_result(res);
    rc = cdc_my_candidate_decide(mariadb, name, ckpt, have, ro, mode,
                                 follow_read_only, why, whysz, err);
    free(have);
    free(mode);
    return rc;
}
