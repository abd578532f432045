/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_gtid_set.c - the failover check's GTID containment (gtid_set.c):
 * MariaDB positions per domain, MySQL 8 GTID sets (intervals, several
 * source uuids, tags), the missing range it reports, and the server list
 * parsing of failover.c.  The MySQL sets also come from real binlogs:
 * the fixtures are decoded in place and the executed set after an early
 * transaction must lack exactly the GTIDs of the later transactions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/buf.h"
#include "connectors/mysql/binlog.h"
#include "connectors/mysql/failover.h"
#include "tests/unit/cdc_test.h"

/* missing(need, have) as text; "=" when contained, "!" on error */
static const char *miss(const char *need, const char *have, int mariadb)
{
    static char out[4][2048];
    static int k;
    char *o = out[k++ % 4];
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_err_t err = {0};
    int rc = cdc_gtid_missing(need, have, mariadb, &b, &err);
    if (rc < 0)
        snprintf(o, 2048, "!");
    else if (rc == 0)
        snprintf(o, 2048, "=");
    else
        snprintf(o, 2048, "%s", b.p);
    if (rc == 0 && b.len)
        snprintf(o, 2048, "contained but text '%s'", b.p);
    cdc_buf_free(&b);
    return o;
}

CDC_TEST(mariadb_positions)
{
    T_EQ_STR(miss("0-1-100", "0-1-100", 1), "=");
    T_EQ_STR(miss("0-1-100", "0-2-150", 1), "="); /* promoted replica wrote on */
    T_EQ_STR(miss("0-1-100", "0-1-90", 1), "0-1-91..0-1-100");
    T_EQ_STR(miss("0-1-100", "0-1-99", 1), "0-1-100");
    /* several domains; only the one behind is listed */
    T_EQ_STR(miss("0-1-10,1-5-7", "0-1-12,1-5-3", 1), "1-5-4..1-5-7");
    T_EQ_STR(miss("0-1-10, 1-5-7", "1-5-9,0-2-11", 1), "=");
    /* a domain the server never saw */
    T_EQ_STR(miss("0-1-10,2-3-4", "0-1-10", 1), "2-3-1..2-3-4");
    T_EQ_STR(miss("", "0-1-5", 1), "=");
    T_EQ_STR(miss("0-1-5", "", 1), "0-1-1..0-1-5");
    /* malformed texts are errors, not "empty" */
    T_EQ_STR(miss("0-1", "0-1-5", 1), "!");
    T_EQ_STR(miss("0-1-5", "0-1-x", 1), "!");
    T_EQ_STR(miss("0-1-5,0-2-6", "0-1-9", 1), "!"); /* two positions, one domain */
}

#define U1 "3e11fa47-71ca-11e1-9e33-c80aa9429562"
#define U2 "58cf6502-63db-11ed-8079-0242ac110002"

CDC_TEST(mysql_sets)
{
    T_EQ_STR(miss(U1 ":1-5", U1 ":1-5", 0), "=");
    T_EQ_STR(miss(U1 ":1-5", U1 ":1-10", 0), "=");
    T_EQ_STR(miss(U1 ":1-10", U1 ":1-5", 0), U1 ":6-10");
    T_EQ_STR(miss(U1 ":1-10", U1 ":1-3:5-7", 0), U1 ":4:8-10");
    T_EQ_STR(miss(U1 ":1-10", U1 ":2-9", 0), U1 ":1:10");
    /* several uuids, order and case and newlines as @@gtid_executed prints */
    T_EQ_STR(miss(U1 ":1-5," U2 ":1-20", U2 ":1-20,\n" U1 ":1-5", 0), "=");
    T_EQ_STR(miss(U1 ":1-5," U2 ":1-20",
                  "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5," U2 ":1-19", 0),
             U2 ":20");
    T_EQ_STR(miss(U1 ":1-5," U2 ":1-20", U1 ":1-5", 0), U2 ":1-20");
    /* the checkpoint's intervals may be unmerged and overlapping */
    T_EQ_STR(miss(U1 ":1-3:2-6:8", U1 ":1-6", 0), U1 ":8");
    /* tags (MySQL 8.3+) are separate sources */
    T_EQ_STR(miss(U1 ":1-3:blue:1-2", U1 ":1-3", 0), U1 ":blue:1-2");
    T_EQ_STR(miss(U1 ":1-3:blue:1-2", U1 ":1-3:blue:1-4", 0), "=");
    T_EQ_STR(miss("", U1 ":1", 0), "=");
    T_EQ_STR(miss(U1 ":1-3", "", 0), U1 ":1-3");
    T_EQ_STR(miss(U1 ":5-3", U1 ":1", 0), "!");
    T_EQ_STR(miss(U1 ":0", U1 ":1", 0), "!");
    T_EQ_STR(miss("3e11fa47:1", U1 ":1", 0), "!");
}

/* decoded fixture: the executed set after each txn and each txn's GTID */
typedef struct seen {
    char set[64][1024];
    char gtid[64][128];
    int n;
} seen_t;

static int keep(void *opaque, cdc_txn_t *tx, cdc_err_t *err)
{
    seen_t *s = opaque;
    (void)err;
    if (s->n < 64 && tx->gtid[0]) {
        snprintf(s->set[s->n], sizeof s->set[0], "%s", tx->pos.gtid);
        snprintf(s->gtid[s->n], sizeof s->gtid[0], "%s", tx->gtid);
        s->n++;
    }
    cdc_txn_destroy(tx);
    return 0;
}

static void fixture_sets(const char *rel, int min_txns)
{
    char path[2048];
    seen_t *s = calloc(1, sizeof(*s));
    cdc_err_t err = {0};
    cdc_binlog_t *bl = cdc_binlog_new(NULL);
    snprintf(path, sizeof path, "%s/binlog/%s", cdc_test_fixtures(), rel);
    T_EQ_INT(cdc_binlog_read_file(bl, path, 0, keep, s, &err), 0);
    cdc_binlog_destroy(bl);
    T_ASSERT(s->n >= min_txns);
    for (int i = 0; i < s->n; i++) {
        /* each set holds its own txn's GTID and every earlier set */
        T_EQ_STR(miss(s->gtid[i], s->set[i], 0), "=");
        if (i)
            T_EQ_STR(miss(s->set[i - 1], s->set[i], 0), "=");
        /* the last set lacks exactly the GTIDs after txn i */
        if (i < s->n - 1) {
            const char *m = miss(s->set[s->n - 1], s->set[i], 0);
            const char *first = strchr(s->gtid[i + 1], ':') + 1;
            const char *last = strchr(s->gtid[s->n - 1], ':') + 1;
            char want[300];
            size_t ul = (size_t)(strchr(s->gtid[i + 1], ':') - s->gtid[i + 1]);
            if (!strcmp(first, last))
                snprintf(want, sizeof want, "%.*s:%s", (int)ul, s->gtid[i + 1],
                         first);
            else
                snprintf(want, sizeof want, "%.*s:%s-%s", (int)ul,
                         s->gtid[i + 1], first, last);
            T_EQ_STR(m, want);
        }
    }
    free(s);
}

CDC_TEST(mysql_sets_from_fixtures)
{
    /* PREVIOUS_GTIDS with an earlier interval, then GTIDs 53.. */
    fixture_sets("mysql-binlog-connector-rust/mysql-bin.000080", 5);
    fixture_sets("boxercrab/33_35_gtid_prev_gtid/log.bin", 3);
}

CDC_TEST(server_lists)
{
    cdc_my_host_t *h = NULL;
    int n = 0;
    cdc_err_t err = {0};

    T_EQ_INT(cdc_my_hosts_parse("db1:3307, db2 ,db3:1", 3306, &h, &n, &err), 0);
    T_EQ_INT(n, 3);
    T_EQ_STR(h[0].host, "db1");
    T_EQ_INT(h[0].port, 3307);
    T_EQ_STR(h[1].host, "db2");
    T_EQ_INT(h[1].port, 3306);
    T_EQ_INT(h[2].port, 1);
    /* repeats are dropped; an IPv6 address is taken as is when added */
    T_EQ_INT(cdc_my_hosts_parse("db2:3306,db1:3307", 3306, &h, &n, &err), 0);
    T_EQ_INT(n, 3);
    cdc_my_hosts_add(&h, &n, "::1", 3306);
    T_EQ_INT(n, 4);
    T_EQ_STR(h[3].host, "::1");
    T_EQ_INT(cdc_my_hosts_parse("db4:99999", 3306, &h, &n, &err), -1);
    T_EQ_INT(err.code, CDC_EXIT_CONFIG);
    T_ASSERT(strstr(err.msg, "db4:99999") != NULL);
    cdc_my_hosts_free(h, n);

    /* several hosts in the DSN (conn.h): the first is followed first */
    {
        cdc_my_dsn_t d;
        T_EQ_INT(cdc_my_dsn_parse("mysql://u:p@a:1,b:2,c/db?ssl-mode=disabled",
                                  "mysql.dsn", &d, &err), 0);
        T_EQ_INT(d.nhosts, 3);
        T_EQ_STR(d.hosts[0].host, "a");
        T_EQ_INT(d.hosts[0].port, 1);
        T_EQ_STR(d.hosts[1].host, "b");
        T_EQ_INT(d.hosts[1].port, 2);
        T_EQ_STR(d.hosts[2].host, "c");
        T_EQ_INT(d.hosts[2].port, 0); /* not given: the default applies */
        T_EQ_STR(d.db, "db");
        T_EQ_INT(d.ssl_mode, CDC_MY_SSL_DISABLED);
        cdc_my_dsn_free(&d);
        T_EQ_INT(cdc_my_dsn_parse("mysql://u:p@a:1/db", "mysql.dsn", &d, &err),
                 0);
        T_EQ_INT(d.nhosts, 1);
        cdc_my_dsn_free(&d);
    }
}

CDC_TEST_MAIN_FIXTURES()
