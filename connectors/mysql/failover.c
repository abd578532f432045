/* SPDX-License-Identifier: Apache-2.0 */
/*
 * failover.c - the server list and the check of a failover candidate.
 *
 * A candidate is followed only when its binlog holds every GTID already
 * delivered (the checkpoint's state ⊆ @@gtid_binlog_pos on MariaDB,
 * @@gtid_executed on MySQL) and it is writable (@@read_only off), unless
 * mysql.failover_read_only=true lets the source follow a replica.  A
 * writable candidate that lacks delivered GTIDs took writes that are not
 * a continuation of what we delivered (a lost-write split brain): that is
 * CDC_EXIT_NORESUME with the missing range, never followed silently.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/util.h"
#include "connectors/mysql/failover.h"

static int host_add(const char *s, size_t n, unsigned defport,
                    cdc_my_host_t **hosts, int *nh, cdc_err_t *err)
{
    const char *c = memchr(s, ':', n), *h = s;
    size_t hl = c ? (size_t)(c - s) : n;
    unsigned port = defport;

    while (hl && isspace((unsigned char)*h))
        h++, hl--;
    while (hl && isspace((unsigned char)h[hl - 1]))
        hl--;
    if (c) {
        char buf[8];
        size_t pl = n - (size_t)(c - s) - 1;
        char *e;
        long v;
        if (!pl || pl >= sizeof(buf))
            goto bad;
        memcpy(buf, c + 1, pl);
        buf[pl] = '\0';
        v = strtol(buf, &e, 10);
        if (*e || v <= 0 || v > 65535)
            goto bad;
        port = (unsigned)v;
    }
    if (!hl)
        goto bad;
    {
        char *name = cdc_xstrndup(h, hl);
        cdc_my_hosts_add(hosts, nh, name, port);
        free(name);
    }
    return 0;
bad:
    cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                "mysql server list: bad entry '%.*s'", (int)n, s);
    cdc_err_hint(err, "use host:port,host:port (mysql.hosts or the host "
                      "part of mysql.dsn)");
    return -1;
}

void cdc_my_hosts_add(cdc_my_host_t **hosts, int *n, const char *host,
                      unsigned port)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp((*hosts)[i].host, host) && (*hosts)[i].port == port)
            return; /* listed already */
    *hosts = cdc_xrealloc(*hosts, (size_t)(*n + 1) * sizeof(**hosts));
    (*hosts)[*n].host = cdc_xstrdup(host);
    (*hosts)[*n].port = port;
    (*n)++;
}

int cdc_my_hosts_parse(const char *list, unsigned defport,
                       cdc_my_host_t **hosts, int *n, cdc_err_t *err)
{
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (host_add(p, len, defport, hosts, n, err) < 0)
            return -1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

void cdc_my_hosts_free(cdc_my_host_t *hosts, int n)
{
    for (int i = 0; i < n; i++)
        free(hosts[i].host);
    free(hosts);
}

int cdc_my_dsn_hosts(const char *dsn, char **first, cdc_my_host_t **hosts,
                     int *n, cdc_err_t *err)
{
    const char *p = strstr(dsn, "://"), *hp, *end, *comma;
    *first = NULL;
    if (!p)
        return 0;
    p += 3;
    end = p + strcspn(p, "/?");
    hp = p;
    for (const char *s = p; s < end; s++)
        if (*s == '@')
            hp = s + 1;
    comma = memchr(hp, ',', (size_t)(end - hp));
    if (!comma)
        return 0;
    {
        char *rest = cdc_xstrndup(comma + 1, (size_t)(end - comma - 1));
        int rc = cdc_my_hosts_parse(rest, 3306, hosts, n, err);
        free(rest);
        if (rc < 0)
            return -1;
    }
    /* the DSN with only the first host */
    size_t a = (size_t)(comma - dsn);
    *first = cdc_xmalloc(a + strlen(end) + 1);
    memcpy(*first, dsn, a);
    strcpy(*first + a, end);
    return 0;
}

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
