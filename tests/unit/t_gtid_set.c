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
#include "connectors/mysql/gtid_set.h"
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

/* ---- the codec and the dump command (gtid_set.h) ------------------ */

static const char *hex(const cdc_buf_t *b)
{
    static char out[4][8192];
    static int k;
    char *o = out[k++ % 4];
    for (size_t i = 0; i < b->len && 2 * i + 2 < sizeof out[0]; i++)
        snprintf(o + 2 * i, 3, "%02x", (uint8_t)b->p[i]);
    if (!b->len)
        o[0] = '\0';
    return o;
}

static const char *norm(const char *t)
{
    static char out[4][4096];
    static int k;
    char *o = out[k++ % 4];
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_err_t err = {0};
    if (cdc_gtid_set_norm(t, &b, &err) < 0)
        snprintf(o, 4096, "!");
    else
        snprintf(o, 4096, "%s", b.p ? b.p : "");
    cdc_buf_free(&b);
    return o;
}

CDC_TEST(canonical_text)
{
    T_EQ_STR(norm(""), "");
    T_EQ_STR(norm(U2 ":1-20,\n" U1 ":7:1-5"), U1 ":1-5:7," U2 ":1-20");
    T_EQ_STR(norm(U1 ":blue:3:1-2:red:1,3E11FA47-71CA-11E1-9E33-C80AA9429562:4"),
             U1 ":4:blue:1-3:red:1"); /* a tag applies to what follows */
    T_EQ_STR(norm(U1 ":1-3:4-6:8"), U1 ":1-6:8");
    T_EQ_STR(norm(U1 ":1-3:x"), "!");            /* a tag without GTIDs */
    T_EQ_STR(norm("3e11fa47x71ca-11e1-9e33-c80aa9429562:1"), "!");
    T_EQ_STR(norm(U1 ":99999999999999999999999"), "!"); /* overflow */
    T_EQ_STR(norm(U1 ":" "a23456789012345678901234567890123:1"), "!");
    {
        cdc_buf_t b = CDC_BUF_INIT;
        cdc_err_t err = {0};
        T_EQ_INT(cdc_gtid_set_union(U1 ":1-5:blue:1", U1 ":6-9," U2 ":3", &b,
                                    &err), 0);
        T_EQ_STR(b.p, U1 ":1-9:blue:1," U2 ":3");
        T_EQ_INT(cdc_gtid_set_union("", "", &b, &err), 0);
        T_EQ_STR(b.p ? b.p : "", "");
        T_EQ_INT(cdc_gtid_set_union(U1 ":1", "junk", &b, &err), -1);
        T_EQ_INT(err.code, CDC_EXIT_DATA);
        cdc_buf_free(&b);
    }
}

/* COM_BINLOG_DUMP_GTID, computed by hand from the layout in
 * PROTOCOLS.md 1.17 / sql/rpl_gtid_set.cc */
CDC_TEST(dump_gtid_command_bytes)
{
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_err_t err = {0};

    T_EQ_INT(cdc_my_dump_gtid_cmd(0, 0x01020304, "", 4, U1 ":7:1-5", &b,
                                  &err), 0);
    T_EQ_STR(hex(&b),
             "1e"                               /* COM_BINLOG_DUMP_GTID */
             "0000"                             /* flags */
             "04030201"                         /* server_id */
             "00000000"                         /* name_size, no name */
             "0400000000000000"                 /* pos 4 */
             "40000000"                         /* data_size 64 */
             "0100000000000000"                 /* n_sids 1 */
             "3e11fa4771ca11e19e33c80aa9429562" /* uuid */
             "0200000000000000"                 /* 2 intervals */
             "0100000000000000" "0600000000000000"  /* [1, 6) */
             "0700000000000000" "0800000000000000"); /* [7, 8) */

    /* a tagged GTID switches the whole set to the tagged format */
    T_EQ_INT(cdc_my_dump_gtid_cmd(0, 7, "binlog.000007", 0x1234,
                                  U1 ":blue:1-2," U1 ":1-3", &b, &err), 0);
    T_EQ_STR(hex(&b),
             "1e" "0000" "07000000"
             "0d000000" "62696e6c6f672e303030303037" /* 13, binlog.000007 */
             "3412000000000000"
             "5e000000"                         /* data_size 94 */
             "0102000000000001"                 /* 1<<56 | 2<<8 | 1 */
             "3e11fa4771ca11e19e33c80aa9429562" "00" /* untagged first */
             "0100000000000000"
             "0100000000000000" "0400000000000000"
             "3e11fa4771ca11e19e33c80aa9429562" "08" "626c7565" /* "blue" */
             "0100000000000000"
             "0100000000000000" "0300000000000000");

    /* the empty set: everything the server has */
    T_EQ_INT(cdc_my_dump_gtid_cmd(0, 1, "", 4, "", &b, &err), 0);
    T_EQ_STR(hex(&b), "1e" "0000" "01000000" "00000000" "0400000000000000"
                      "08000000" "0000000000000000");

    /* a set that cannot be sent is an error, not an empty set */
    T_EQ_INT(cdc_my_dump_gtid_cmd(0, 1, "", 4, U1 ":0", &b, &err), -1);
    T_EQ_INT(err.code, CDC_EXIT_DATA);
    T_EQ_INT(cdc_my_dump_gtid_cmd(0, 1, "", 4, U1 ":9223372036854775807",
                                  &b, &err), -1);
    T_ASSERT(strstr(err.msg, "9223372036854775807") != NULL);
    T_EQ_INT(cdc_my_dump_gtid_cmd(0, 1, "", 4, U1 ":9223372036854775806",
                                  &b, &err), 0);

    cdc_my_register_cmd(0x01020304, "autoglm-cdc:p1", 0, &b);
    T_EQ_STR(hex(&b), "15" "04030201" "0e" "6175746f676c6d2d6364633a7031"
                      "00" "00" "0000" "00000000" "00000000");
    cdc_buf_free(&b);
}

static int dec(const char *hexs, cdc_buf_t *out, cdc_err_t *err)
{
    uint8_t raw[512];
    size_t n = strlen(hexs) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hexs + 2 * i, "%2x", &v);
        raw[i] = (uint8_t)v;
    }
    return cdc_gtid_set_decode(raw, n, out, err);
}

CDC_TEST(decode_checks_every_length)
{
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_err_t err = {0};
#define SID1 "3e11fa4771ca11e19e33c80aa9429562"
    T_EQ_INT(dec("0000000000000000", &b, &err), 0);
    T_EQ_STR(b.p ? b.p : "", "");
    T_EQ_INT(dec("01000000000000" "00" SID1 "0100000000000000"
                 "0100000000000000" "0600000000000000", &b, &err), 0);
    T_EQ_STR(b.p, U1 ":1-5");
    /* too short, n_sids too large, intervals past the end, trailing */
    T_EQ_INT(dec("00000000000000", &b, &err), -1);
    T_EQ_INT(err.code, CDC_EXIT_DATA);
    T_EQ_INT(dec("0200000000000000" SID1 "0100000000000000"
                 "0100000000000000" "0600000000000000", &b, &err), -1);
    T_EQ_INT(dec("0100000000000000" SID1 "0200000000000000"
                 "0100000000000000" "0600000000000000", &b, &err), -1);
    T_EQ_INT(dec("0000000000000000" "00", &b, &err), -1);
    T_ASSERT(strstr(err.msg, "byte 8 of 9") != NULL);
    /* adjacent, reversed, empty and zero intervals, as the server refuses */
    T_EQ_INT(dec("0100000000000000" SID1 "0200000000000000"
                 "0100000000000000" "0300000000000000"
                 "0300000000000000" "0500000000000000", &b, &err), -1);
    T_EQ_INT(dec("0100000000000000" SID1 "0100000000000000"
                 "0500000000000000" "0500000000000000", &b, &err), -1);
    T_EQ_INT(dec("0100000000000000" SID1 "0100000000000000"
                 "0000000000000000" "0500000000000000", &b, &err), -1);
    /* unknown format byte; tagged with a bad tag */
    T_EQ_INT(dec("0000000000000002", &b, &err), -1);
    T_EQ_INT(dec("0101000000000001" SID1 "07" "626c" "0100000000000000"
                 "0100000000000000" "0300000000000000", &b, &err), -1);
    T_EQ_INT(dec("0101000000000001" SID1 "04" "3162" "0100000000000000"
                 "0100000000000000" "0300000000000000", &b, &err), -1);
    T_EQ_INT(dec("0101000000000001" SID1 "04" "4262" "0100000000000000"
                 "0100000000000000" "0300000000000000", &b, &err), 0);
    T_EQ_STR(b.p, U1 ":bb:1-2"); /* tags are lower-cased, as MySQL does */
    cdc_buf_free(&b);
#undef SID1
}

/* Random sets (fixed seed): text -> bytes -> text is the identity on
 * canonical texts, every cut of the bytes is refused, and flipped bytes
 * never crash the decoder. */
CDC_TEST(codec_round_trip_random)
{
    static const char *uu[] = {U1, U2, "00000000-0000-0000-0000-000000000001",
                               "ffffffff-ffff-ffff-ffff-ffffffffffff"};
    static const char *tags[] = {"", "blue", "x_1", "a23456789012345678901234567890ab"};
    cdc_buf_t t = CDC_BUF_INIT, n1 = CDC_BUF_INIT, e = CDC_BUF_INIT,
              d = CDC_BUF_INIT;
    cdc_err_t err = {0};

    for (int round = 0; round < 300; round++) {
        cdc_buf_reset(&t);
        int nsrc = (int)cdc_test_rand(5);
        for (int i = 0; i < nsrc; i++) {
            const char *tag = tags[cdc_test_rand(4)];
            uint64_t g = 1 + cdc_test_rand(50);
            cdc_buf_printf(&t, "%s%s%s%s", t.len ? "," : "",
                           uu[cdc_test_rand(4)], *tag ? ":" : "", tag);
            for (int k = 1 + (int)cdc_test_rand(4); k > 0; k--) {
                uint64_t a = g, b = a + cdc_test_rand(3) *
                                            (round % 7 ? 1 : 1000000007ULL);
                cdc_buf_printf(&t, ":%" PRIu64 "-%" PRIu64, a, b);
                g = b + cdc_test_rand(4); /* may touch or overlap */
            }
        }
        T_EQ_INT(cdc_gtid_set_norm(t.p ? t.p : "", &n1, &err), 0);
        cdc_buf_reset(&e);
        T_EQ_INT(cdc_gtid_set_encode(t.p ? t.p : "", &e, &err), 0);
        T_EQ_INT(cdc_gtid_set_decode((const uint8_t *)e.p, e.len, &d, &err),
                 0);
        T_EQ_STR(d.p ? d.p : "", n1.p ? n1.p : "");
        /* the decoder's own output encodes to the same bytes */
        {
            cdc_buf_t e2 = CDC_BUF_INIT;
            T_EQ_INT(cdc_gtid_set_encode(d.p ? d.p : "", &e2, &err), 0);
            T_ASSERT(e2.len == e.len && !memcmp(e2.p, e.p, e.len));
            cdc_buf_free(&e2);
        }
        for (size_t cut = 0; cut < e.len; cut++)
            if (cdc_gtid_set_decode((const uint8_t *)e.p, cut, &d, &err) == 0)
                T_FAIL_("prefix %zu of %zu bytes of '%s' accepted", cut,
                        e.len, n1.p);
        for (int f = 0; f < 8 && e.len; f++) {
            size_t at = cdc_test_rand((uint32_t)e.len);
            char keep = e.p[at];
            e.p[at] = (char)(keep ^ (1 << cdc_test_rand(8)));
            int rc = cdc_gtid_set_decode((const uint8_t *)e.p, e.len, &d, &err);
            T_ASSERT(rc == 0 || rc == -1);
            e.p[at] = keep;
        }
    }
    cdc_buf_free(&t);
    cdc_buf_free(&n1);
    cdc_buf_free(&e);
    cdc_buf_free(&d);
}

/* ---- the failover decision on made-up server answers --------------- */

static int decide(int mariadb, const char *ckpt, const char *have, int ro,
                  const char *mode, int follow, char *why, cdc_err_t *err)
{
    memset(err, 0, sizeof(*err));
    why[0] = '\0';
    return cdc_my_candidate_decide(mariadb, "db2:3306", ckpt, have, ro, mode,
                                   follow, why, 400, err);
}

CDC_TEST(mysql_candidate_decision)
{
    char why[400];
    cdc_err_t err;

    /* contained, writable, gtid_mode=ON: followed */
    T_EQ_INT(decide(0, U1 ":1-10", U1 ":1-10", 0, "ON", 0, why, &err), 0);
    /* extra GTIDs on the candidate (it wrote on after promotion): fine */
    T_EQ_INT(decide(0, U1 ":1-10", U1 ":1-10," U2 ":1-500\n", 0, "ON", 0,
                    why, &err), 0);
    /* a missing range on a writable server: split brain, exit 3 */
    T_EQ_INT(decide(0, U1 ":1-10," U2 ":1-7", U1 ":1-4:8-10," U2 ":1-7", 0,
                    "ON", 0, why, &err), -1);
    T_EQ_INT(err.code, CDC_EXIT_NORESUME);
    T_ASSERT(strstr(err.msg, "db2:3306") != NULL);
    T_ASSERT(strstr(err.msg, U1 ":5-7") != NULL);
    T_ASSERT(strstr(err.detail, "@@gtid_executed") != NULL);
    /* a tagged GTID the candidate lacks */
    T_EQ_INT(decide(0, U1 ":1-3:blue:1-2", U1 ":1-3:blue:1", 0, "ON", 0, why,
                    &err), -1);
    T_EQ_INT(err.code, CDC_EXIT_NORESUME);
    T_ASSERT(strstr(err.msg, U1 ":blue:2") != NULL);
    T_EQ_INT(decide(0, U1 ":1-3:blue:1-2", U1 ":1-3:blue:1-9:red:1", 0, "ON",
                    0, why, &err), 0);
    /* the empty set: nothing delivered by GTID yet, any server holds it */
    T_EQ_INT(decide(0, "", "", 0, "ON", 0, why, &err), 0);
    T_EQ_INT(decide(0, "", U2 ":1-3", 0, "ON", 0, why, &err), 0);
    /* read-only: not now, unless asked; behind: not caught up, not fatal */
    T_EQ_INT(decide(0, U1 ":1-10", U1 ":1-10", 1, "ON", 0, why, &err), 1);
    T_ASSERT(strstr(why, "mysql.failover_read_only") != NULL);
    T_EQ_INT(decide(0, U1 ":1-10", U1 ":1-10", 1, "ON", 1, why, &err), 0);
    T_EQ_INT(decide(0, U1 ":1-10", U1 ":1-9", 1, "ON", 1, why, &err), 1);
    T_ASSERT(strstr(why, "not caught up") != NULL);
    T_ASSERT(strstr(why, U1 ":10") != NULL);
    T_EQ_INT(err.code, 0);
    /* gtid_mode other than ON: never followed (nor called split brain) */
    T_EQ_INT(decide(0, U1 ":1-10", "", 0, "OFF", 0, why, &err), 1);
    T_ASSERT(strstr(why, "gtid_mode=OFF") != NULL);
    T_EQ_INT(decide(0, U1 ":1-10", U1 ":1-10", 0, "ON_PERMISSIVE", 0, why,
                    &err), 1);
    T_EQ_INT(err.code, 0);
    T_EQ_INT(decide(0, U1 ":1-10", U1 ":1-10", 0, "on", 0, why, &err), 0);
    /* an answer that does not parse is an error, never "empty" */
    T_EQ_INT(decide(0, U1 ":1-10", "garbage", 0, "ON", 0, why, &err), -1);
    T_EQ_INT(err.code, CDC_EXIT_DATA);
    /* MariaDB: gtid_mode is not asked */
    T_EQ_INT(decide(1, "0-1-10", "0-2-12", 0, NULL, 0, why, &err), 0);
    T_EQ_INT(decide(1, "0-1-10", "0-1-8", 0, NULL, 0, why, &err), -1);
    T_ASSERT(strstr(err.msg, "0-1-9..0-1-10") != NULL);
}

/* ---- the delivered set after every transaction of the fixtures ------ */

typedef struct txlog {
    char gtid[128][128];
    char set[128][1100];
    int n;
} txlog_t;

static int log_txn(void *opaque, cdc_txn_t *tx, cdc_err_t *err)
{
    txlog_t *l = opaque;
    (void)err;
    if (l->n < 128 && !tx->more) {
        snprintf(l->gtid[l->n], sizeof l->gtid[0], "%s", tx->gtid);
        snprintf(l->set[l->n], sizeof l->set[0], "%s", tx->pos.gtid);
        l->n++;
    }
    cdc_txn_destroy(tx);
    return 0;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p;
    long sz;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc((size_t)sz + 1);
    *n = fread(p, 1, (size_t)sz, f);
    fclose(f);
    return p;
}

/*
 * One MySQL fixture: the PREVIOUS_GTIDS body (located by its listing
 * line) decodes, re-encodes to the same bytes, and equals prev_want when
 * PROVENANCE.md states it; then the set the decoder hands out after each
 * transaction is PREVIOUS_GTIDS plus the GTIDs the listing shows up to
 * that transaction (extra: GTIDs the listing does not print, in order).
 * Returns the number of transactions that carried a GTID.
 */
static int fixture_progression(const char *rel, const char *prev_want,
                               const char *const *extra)
{
    char path[2048], line[1024];
    char gtids[128][128];
    int ng = 0, crc = 0, with_gtid = 0;
    uint64_t poff = 0, psz = 0;
    size_t flen = 0;
    uint8_t *file;
    FILE *lst;
    cdc_buf_t prev = CDC_BUF_INIT, want = CDC_BUF_INIT, enc = CDC_BUF_INIT;
    cdc_err_t err = {0};
    txlog_t *l = calloc(1, sizeof(*l));
    cdc_binlog_t *bl;

    snprintf(path, sizeof path, "%s/binlog/%s.events.txt",
             cdc_test_fixtures(), rel);
    lst = fopen(path, "r");
    T_ASSERT(lst != NULL);
    if (!lst) {
        free(l);
        return 0;
    }
    while (fgets(line, sizeof line, lst)) {
        unsigned long long off, sz;
        char type[64];
        if (sscanf(line, " %llu %63s %llu", &off, type, &sz) != 3)
            continue;
        if (!strcmp(type, "FORMAT_DESCRIPTION"))
            crc = strstr(line, "alg=1") != NULL;
        else if (!strcmp(type, "PREVIOUS_GTIDS") && !psz) {
            poff = off;
            psz = sz;
        } else if (!strcmp(type, "GTID") && ng < 128) {
            const char *g = strstr(line, "gtid=");
            T_ASSERT(g != NULL);
            if (g)
                sscanf(g + 5, "%127s", gtids[ng++]);
        }
    }
    fclose(lst);
    for (; extra && *extra && ng < 128; extra++)
        snprintf(gtids[ng++], sizeof gtids[0], "%s", *extra);

    snprintf(path, sizeof path, "%s/binlog/%s", cdc_test_fixtures(), rel);
    file = slurp(path, &flen);
    T_ASSERT(file && psz > (uint64_t)(19 + 4 * crc) && poff + psz <= flen);
    if (!file || psz <= (uint64_t)(19 + 4 * crc) || poff + psz > flen)
        goto out;
    {
        const uint8_t *body = file + poff + 19;
        size_t blen = (size_t)psz - 19 - (crc ? 4 : 0);
        T_EQ_INT(cdc_gtid_set_decode(body, blen, &prev, &err), 0);
        if (prev_want)
            T_EQ_STR(prev.p ? prev.p : "", prev_want);
        /* our encoder writes the server's bytes */
        T_EQ_INT(cdc_gtid_set_encode(prev.p ? prev.p : "", &enc, &err), 0);
        T_ASSERT(enc.len == blen && !memcmp(enc.p, body, blen));
    }

    bl = cdc_binlog_new(NULL);
    T_EQ_INT(cdc_binlog_read_file(bl, path, 0, log_txn, l, &err), 0);
    cdc_binlog_destroy(bl);
    T_ASSERT(l->n > 0);
    {
        int upto = -1; /* GTIDs of the listing applied so far */
        for (int i = 0; i < l->n; i++) {
            cdc_buf_t acc = CDC_BUF_INIT;
            if (l->gtid[i][0]) {
                int k;
                for (k = 0; k < ng && strcmp(gtids[k], l->gtid[i]); k++)
                    ;
                if (k == ng) {
                    T_FAIL_("%s: txn %d has GTID %s, not in the listing",
                            rel, i, l->gtid[i]);
                    continue;
                }
                T_ASSERT(k > upto); /* in binlog order */
                upto = k;
                with_gtid++;
            }
            cdc_buf_printf(&acc, "%s", prev.p ? prev.p : "");
            for (int k = 0; k <= upto; k++)
                cdc_buf_printf(&acc, "%s%s", acc.len ? "," : "", gtids[k]);
            T_EQ_INT(cdc_gtid_set_norm(acc.p ? acc.p : "", &want, &err), 0);
            if (strcmp(l->set[i], want.p ? want.p : ""))
                T_FAIL_("%s: set after txn %d (%s) is '%s', expected '%s'",
                        rel, i, l->gtid[i][0] ? l->gtid[i] : "anonymous",
                        l->set[i], want.p ? want.p : "");
            cdc_buf_free(&acc);
        }
    }
out:
    free(file);
    free(l);
    cdc_buf_free(&prev);
    cdc_buf_free(&want);
    cdc_buf_free(&enc);
    return with_gtid;
}

CDC_TEST(delivered_set_per_transaction)
{
    static const char *const gtid_files[] = {
        "boxercrab/02_query/log.bin", "boxercrab/05_intvar/log.bin",
        "boxercrab/13_rand/log.bin", "boxercrab/14_user_var/log.bin",
        "boxercrab/16_xid/log.bin", "boxercrab/19_table_map/log.bin",
        "boxercrab/29_row_query/log.bin", "boxercrab/30_write_rows_v2/log.bin",
        "boxercrab/31_update_rows_v2/log.bin",
        "boxercrab/32_delete_rows_v2/log.bin",
        "boxercrab/33_35_gtid_prev_gtid/log.bin",
        "mysql-binlog-connector-rust/mysql-bin.000057",
        "mysql-binlog-connector-rust/mysql-bin.000080",
        "rust_mysql_common/binlog_transaction_with_GTID.000001",
        "rust_mysql_common/binlog_56_gtid_reserved_word.000001",
        "rust_mysql_common/binlog-invisible-columns.000001",
        "rust_mysql_common/rpl_atomic_ddl_rollback_full.000001",
        "rust_mysql_common/rpl_atomic_ddl_rollback_table.000001",
        "rust_mysql_common/rpl_atomic_ddl_rollback_view.000001",
        "rust_mysql_common/mysql_type_bit.000001",
        "rust_mysql_common/mysql-enum-string-set.000001",
        NULL};
    /* gtid_mode=OFF: anonymous GTIDs leave the set as PREVIOUS_GTIDS */
    static const char *const anon_files[] = {
        "boxercrab/34_anonymous_gtid/log.bin",
        "mysql-binlog-connector-java/mysql-bin.checksum-crc32",
        "mysql-binlog-connector-java/mysql-bin.compressed",
        "rust_mysql_common/binlog_transaction_with_anonymous_GTID.000001",
        "rust_mysql_common/bug27213339-bin.000001",
        "rust_mysql_common/transaction_compression.000001",
        NULL};
    static const char *const tagged[] = {
        "55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3", NULL};

    for (int i = 0; gtid_files[i]; i++)
        T_ASSERT(fixture_progression(gtid_files[i], NULL, NULL) > 0);
    for (int i = 0; anon_files[i]; i++)
        T_EQ_INT(fixture_progression(anon_files[i], NULL, NULL), 0);
    /* PROVENANCE.md: MySQL 9.6 tagged PREVIOUS_GTIDS and GTID_TAGGED */
    T_EQ_INT(fixture_progression(
                 "rust_mysql_common/binlog_transaction_with_GTID_TAG.000001",
                 "55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:mytag:1-2",
                 tagged),
             1);
    /* PROVENANCE.md: 8.0.40 untagged PREVIOUS_GTIDS (no transaction) */
    {
        char path[2048];
        size_t n = 0;
        uint8_t *f;
        cdc_buf_t b = CDC_BUF_INIT;
        cdc_err_t err = {0};
        snprintf(path, sizeof path, "%s/binlog/rust_mysql_common/"
                 "binlog_transaction_previous_GTID_no_tag.000001",
                 cdc_test_fixtures());
        f = slurp(path, &n);
        T_ASSERT(f != NULL);
        /* FDE at 4; PREVIOUS_GTIDS follows it */
        if (f && n > 4 + 19) {
            uint32_t fde = (uint32_t)f[4 + 9] | (uint32_t)f[4 + 10] << 8;
            const uint8_t *ev = f + 4 + fde;
            uint32_t sz = (uint32_t)ev[9] | (uint32_t)ev[10] << 8;
            T_EQ_INT(ev[4], 35);
            T_EQ_INT(cdc_gtid_set_decode(ev + 19, sz - 19 - 4, &b, &err), 0);
            T_EQ_STR(b.p, "b9b88c66-0755-11f1-9899-4a9da94c4d71:1-2");
        }
        free(f);
        cdc_buf_free(&b);
    }
}

/* Fragments of a big transaction (frag_rows) never move the delivered
 * set: a fragment handed out before its group commits carries the set
 * before the group (its GTID not in it); the piece that ends the group
 * carries the set with it. */
typedef struct fraglog {
    int more[64], n;
    char gtid[64][128], set[64][1100];
} fraglog_t;

static int log_frag(void *opaque, cdc_txn_t *tx, cdc_err_t *err)
{
    fraglog_t *l = opaque;
    (void)err;
    if (l->n < 64) {
        l->more[l->n] = tx->more;
        snprintf(l->gtid[l->n], sizeof l->gtid[0], "%s", tx->gtid);
        snprintf(l->set[l->n], sizeof l->set[0], "%s", tx->pos.gtid);
        l->n++;
    }
    cdc_txn_destroy(tx);
    return 0;
}

CDC_TEST(fragments_keep_the_set)
{
    char path[2048];
    cdc_binlog_opts_t o = {.verify_checksum = 1, .frag_rows = 1};
    cdc_binlog_t *bl = cdc_binlog_new(&o);
    fraglog_t *l = calloc(1, sizeof(*l));
    cdc_err_t err = {0};
    int frags = 0;
    const char *before = U2 ":1-52"; /* PREVIOUS_GTIDS of the file */

    /* GTIDs 53 and 54 delete two rows each: cut after the first row */
    snprintf(path, sizeof path, "%s/binlog/mysql-binlog-connector-rust/"
             "mysql-bin.000080", cdc_test_fixtures());
    T_EQ_INT(cdc_binlog_read_file(bl, path, 0, log_frag, l, &err), 0);
    cdc_binlog_destroy(bl);
    for (int i = 0; i < l->n; i++) {
        if (l->more[i]) {
            frags++;
            T_EQ_STR(l->set[i], before);
            T_EQ_STR(miss(l->gtid[i], l->set[i], 0), l->gtid[i]);
        } else {
            if (l->gtid[i][0])
                T_EQ_STR(miss(l->gtid[i], l->set[i], 0), "=");
            before = l->set[i];
        }
    }
    T_ASSERT(frags >= 2);
    T_EQ_STR(before, U2 ":1-62");
    free(l);
}

CDC_TEST_MAIN_FIXTURES()
