/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_debezium.c - the Debezium writer (cdc/envelope_debezium.c): envelope
 * and source field order, every value mode over generated values (the
 * expected numbers computed here independently: timegm() for dates and
 * times, __int128 for Decimal bytes), schemas and their logical names,
 * key changes and transaction blocks.  Every output is parsed with yajl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#include "cdc/buf.h"
#include "cdc/conf.h"
#include "cdc/envelope.h"
#include "cdc/err.h"
#include "tests/unit/cdc_test.h"

/* column kinds of the test table (MySQL wire type, meta, flags) */
enum {
    C_ID, C_DATE, C_DT6, C_DT2, C_TM3, C_DEC, C_SET, C_BIT10, C_BIT1,
    C_JSON, C_BLOB, C_UBIG, C_YEAR, C_TS, C_ENUM, C_NCOLS
};
static const struct {
    const char *name;
    uint32_t type, meta, flags;
} cols[C_NCOLS] = {
    {"id", 3, 0, CDC_COL_PK},
    {"d", 10, 0, CDC_COL_NULLABLE},
    {"dt6", 18, 6, CDC_COL_NULLABLE},
    {"dt2", 18, 2, CDC_COL_NULLABLE},
    {"tm3", 19, 3, CDC_COL_NULLABLE},
    {"dec", 246, 20 << 8 | 6, CDC_COL_NULLABLE},
    {"s", 248, 1, CDC_COL_NULLABLE},
    {"b10", 16, 10, CDC_COL_NULLABLE},
    {"b1", 16, 1, CDC_COL_NULLABLE},
    {"j", 245, 4, CDC_COL_NULLABLE},
    {"bin", 252, 2, CDC_COL_NULLABLE | CDC_COL_BINARY},
    {"ub", 8, 0, CDC_COL_NULLABLE | CDC_COL_UNSIGNED},
    {"y", 13, 0, CDC_COL_NULLABLE},
    {"ts", 17, 3, CDC_COL_NULLABLE},
    {"e", 247, 1, CDC_COL_NULLABLE},
};

static cdc_table_t *mk_table(void)
{
    cdc_table_t *t = cdc_table_new("shop", "items", C_NCOLS);
    for (int i = 0; i < C_NCOLS; i++) {
        t->cols[i].name = cdc_xstrdup(cols[i].name);
        t->cols[i].type = cols[i].type;
        t->cols[i].meta = cols[i].meta;
        t->cols[i].flags = cols[i].flags;
    }
    for (int i = C_SET; i <= C_ENUM; i += C_ENUM - C_SET) {
        t->cols[i].nmembers = 3;
        t->cols[i].members = cdc_xmalloc(3 * sizeof(char *));
        t->cols[i].members[0] = cdc_xstrdup("a");
        t->cols[i].members[1] = cdc_xstrdup("b");
        t->cols[i].members[2] = cdc_xstrdup("c");
    }
    t->npk = 1;
    t->pk = cdc_xmalloc(sizeof(uint32_t));
    t->pk[0] = C_ID;
    return t;
}

static cdc_value_t sval(cdc_txn_t *tx, int kind, const char *s)
{
    cdc_value_t v = {.kind = (uint8_t)kind};
    v.len = strlen(s);
    v.s = cdc_arena_memdup(&tx->arena, s, v.len);
    return v;
}

static cdc_txn_t *mk_txn(const char *connector)
{
    cdc_txn_t *tx = cdc_txn_new();
    tx->commit_us = 1709212455123456LL;
    tx->server_id = 1;
    tx->connector = connector;
    snprintf(tx->gtid, sizeof(tx->gtid), "0-1-42");
    tx->file = "mariadb-bin.000003";
    return tx;
}

/* A fresh table and transaction with one insert of key id (other
 * columns ABSENT). */
static cdc_change_t *mk_insert(cdc_table_t **t, cdc_txn_t **tx, int64_t id)
{
    cdc_change_t *ch;

    *t = mk_table();
    *tx = mk_txn("mariadb");
    ch = cdc_txn_add(*tx, 'c', *t);
    ch->after = cdc_txn_values(*tx, C_NCOLS);
    ch->after[C_ID] = (cdc_value_t){.kind = CDC_V_INT, .u.i = id};
    return ch;
}

static yajl_val parse(const char *s)
{
    char eb[256];
    yajl_val v = yajl_tree_parse(s, eb, sizeof(eb));
    if (!v)
        printf("# yajl: %s in %.300s\n", eb, s);
    return v;
}

static yajl_val get(yajl_val root, const char *a, const char *b)
{
    const char *p[] = {a, b, NULL};
    return yajl_tree_get(root, p, yajl_t_any);
}

/* Write one insert of `after` and return its parsed "after" object's
 * member `col` (the tree in *root, to free). */
static yajl_val after_of(const cdc_env_opts_t *o, cdc_txn_t *tx,
                         cdc_change_t *ch, const char *col, yajl_val *root)
{
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_dbz_write(&b, o, tx, ch, ch->op, ch->before, ch->after);
    *root = parse(b.p);
    cdc_buf_free(&b);
    return *root ? get(*root, "after", col) : NULL;
}

static size_t b64dec(const char *s, uint8_t *out)
{
    static const char al[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0;
    unsigned acc = 0, bits = 0;
    for (; *s && *s != '='; s++) {
        const char *p = strchr(al, *s);
        if (!p)
            return (size_t)-1;
        acc = acc << 6 | (unsigned)(p - al);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return n;
}

CDC_TEST(structure_and_source_order)
{
    cdc_table_t *t = mk_table();
    cdc_txn_t *tx = mk_txn("mariadb");
    cdc_env_opts_t o = {.format = CDC_FMT_DEBEZIUM, .application_id = "crm"};
    cdc_change_t *ch = cdc_txn_add(tx, 'c', t);
    cdc_buf_t b = CDC_BUF_INIT;
    static const char *const top[] = {"before", "after", "source",
                                      "transaction", "op", "ts_ms", "ts_us",
                                      "ts_ns"};
    static const char *const src[] = {
        "version", "connector", "name", "ts_ms", "snapshot", "db",
        "sequence", "ts_us", "ts_ns", "table", "server_id", "gtid", "file",
        "pos", "row", "thread", "query"};
    static const char *const pgsrc[] = {
        "version", "connector", "name", "ts_ms", "snapshot", "db",
        "sequence", "ts_us", "ts_ns", "schema", "table", "txId", "lsn",
        "xmin"};

    ch->after = cdc_txn_values(tx, C_NCOLS);
    ch->after[C_ID] = (cdc_value_t){.kind = CDC_V_INT, .u.i = 5};
    ch->pos = 777;
    ch->row = 2;
    cdc_dbz_write(&b, &o, tx, ch, 'c', NULL, ch->after);
    yajl_val v = parse(b.p);
    T_ASSERT(v && YAJL_IS_OBJECT(v));
    if (v) {
        T_EQ_INT(v->u.object.len, 8);
        for (size_t i = 0; i < 8 && i < v->u.object.len; i++)
            T_EQ_STR(v->u.object.keys[i], top[i]);
        yajl_val s = get(v, "source", NULL);
        T_EQ_INT(s->u.object.len, 17);
        for (size_t i = 0; i < 17 && i < s->u.object.len; i++)
            T_EQ_STR(s->u.object.keys[i], src[i]);
        T_EQ_INT(YAJL_GET_INTEGER(get(s, "ts_ms", NULL)), 1709212455123);
        T_EQ_INT(YAJL_GET_INTEGER(get(s, "ts_us", NULL)), 1709212455123456);
        T_EQ_INT(YAJL_GET_INTEGER(get(s, "ts_ns", NULL)),
                 1709212455123456000);
        T_EQ_INT(YAJL_GET_INTEGER(get(s, "pos", NULL)), 777);
        T_EQ_INT(YAJL_GET_INTEGER(get(s, "row", NULL)), 2);
        T_EQ_STR(YAJL_GET_STRING(get(s, "gtid", NULL)), "0-1-42");
        T_EQ_STR(YAJL_GET_STRING(get(s, "name", NULL)), "crm");
        T_ASSERT(YAJL_IS_NULL(get(v, "transaction", NULL)));
        T_ASSERT(YAJL_IS_NULL(get(v, "before", NULL)));
        int64_t ms = YAJL_GET_INTEGER(get(v, "ts_ms", NULL)),
                us = YAJL_GET_INTEGER(get(v, "ts_us", NULL));
        T_ASSERT(us / 1000 == ms && us > 1709212455123456LL);
    }
    yajl_tree_free(v);

    tx->connector = "postgresql";
    tx->xid = 991;
    cdc_buf_reset(&b);
    cdc_dbz_write(&b, &o, tx, ch, 'c', NULL, ch->after);
    v = parse(b.p);
    T_ASSERT(v != NULL);
    if (v) {
        yajl_val s = get(v, "source", NULL);
        T_EQ_INT(s->u.object.len, 14);
        for (size_t i = 0; i < 14 && i < s->u.object.len; i++)
            T_EQ_STR(s->u.object.keys[i], pgsrc[i]);
        T_EQ_INT(YAJL_GET_INTEGER(get(s, "txId", NULL)), 991);
        T_EQ_INT(YAJL_GET_INTEGER(get(s, "lsn", NULL)), 777);
        T_EQ_STR(YAJL_GET_STRING(get(s, "schema", NULL)), "shop");
    }
    yajl_tree_free(v);
    cdc_buf_free(&b);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
}

/* Random dates, datetimes and times in every time.precision.mode; the
 * expected numbers from timegm(). */
CDC_TEST(temporal_modes_generated)
{
    cdc_table_t *t = mk_table();
    unsigned seed = 16;
    const char *modes[] = {"adaptive", "adaptive_time_microseconds",
                           "connect", "iso_string"};

    for (int mode = 0; mode < 4; mode++) {
        cdc_env_opts_t o = {.format = CDC_FMT_DEBEZIUM, .time_mode = (uint8_t)mode};
        for (int n = 0; n < 2000; n++) {
            cdc_txn_t *tx = mk_txn("mariadb");
            cdc_change_t *ch = cdc_txn_add(tx, 'c', t);
            struct tm tm = {0};
            char d[48], dt6[96], dt2[96], tm3[64];
            unsigned us = (unsigned)rand_r(&seed) % 1000000;
            int h = rand_r(&seed) % 839, neg = rand_r(&seed) % 4 == 0;
            int mi = rand_r(&seed) % 60, se = rand_r(&seed) % 60,
                ms = rand_r(&seed) % 1000;
            yajl_val root, x;

            tm.tm_year = 1000 + rand_r(&seed) % 9000 - 1900;
            tm.tm_mon = rand_r(&seed) % 12;
            tm.tm_mday = 1 + rand_r(&seed) % 28;
            tm.tm_hour = rand_r(&seed) % 24;
            tm.tm_min = rand_r(&seed) % 60;
            tm.tm_sec = rand_r(&seed) % 60;
            int64_t secs = (int64_t)timegm(&tm);
            int64_t day0 = secs - (tm.tm_hour * 3600 + tm.tm_min * 60 +
                                   tm.tm_sec);
            snprintf(d, sizeof(d), "%04d-%02d-%02d", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday);
            snprintf(dt6, sizeof(dt6), "%s %02d:%02d:%02d.%06u", d,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, us);
            snprintf(dt2, sizeof(dt2), "%s %02d:%02d:%02d.%02u", d,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, us / 10000);
            snprintf(tm3, sizeof(tm3), "%s%02d:%02d:%02d.%03d",
                     neg ? "-" : "", h, mi, se, ms);
            ch->after = cdc_txn_values(tx, C_NCOLS);
            ch->after[C_ID] = (cdc_value_t){.kind = CDC_V_INT, .u.i = n};
            ch->after[C_DATE] = sval(tx, CDC_V_STRING, d);
            ch->after[C_DT6] = sval(tx, CDC_V_STRING, dt6);
            ch->after[C_DT2] = sval(tx, CDC_V_STRING, dt2);
            ch->after[C_TM3] = sval(tx, CDC_V_STRING, tm3);

            int64_t tus = ((int64_t)h * 3600 + mi * 60 + se) * 1000000 +
                          ms * 1000;
            if (neg)
                tus = -tus;
            x = after_of(&o, tx, ch, "d", &root);
            if (mode == 3) {
                T_EQ_STR(YAJL_GET_STRING(x), d);
                T_EQ_STR(YAJL_GET_STRING(get(root, "after", "tm3")), tm3);
                T_EQ_STR(YAJL_GET_STRING(get(root, "after", "dt6")), dt6);
            } else {
                T_EQ_INT(YAJL_GET_INTEGER(x), day0 / 86400);
                x = get(root, "after", "dt6");
                T_EQ_INT(YAJL_GET_INTEGER(x),
                         mode == 2 ? secs * 1000 + us / 1000
                                   : secs * 1000000 + us);
                x = get(root, "after", "dt2"); /* DATETIME(2): ms always */
                T_EQ_INT(YAJL_GET_INTEGER(x),
                         secs * 1000 + us / 10000 * 10);
                x = get(root, "after", "tm3"); /* MySQL TIME: µs */
                T_EQ_INT(YAJL_GET_INTEGER(x), mode == 2 ? tus / 1000 : tus);
            }
            if (cdc_test_failed_) {
                printf("# mode %s: %s %s %s\n", modes[mode], d, dt6, tm3);
                n = 2000;
                mode = 4;
            }
            yajl_tree_free(root);
            cdc_txn_destroy(tx);
        }
    }
    cdc_table_destroy(t);
}

/* Zero dates are null (not in iso_string); YEAR 0 stays 0; TIMESTAMP is
 * our UTC text (ZonedTimestamp). */
CDC_TEST(zero_dates_year_timestamp)
{
    cdc_table_t *t;
    cdc_txn_t *tx;
    cdc_change_t *ch = mk_insert(&t, &tx, 1);
    cdc_env_opts_t o = {.format = CDC_FMT_DEBEZIUM};
    yajl_val root, x;

    ch->after[C_DATE] = sval(tx, CDC_V_STRING, "0000-00-00");
    ch->after[C_DT6] = sval(tx, CDC_V_STRING, "0000-00-00 00:00:00.000000");
    ch->after[C_DT2] = sval(tx, CDC_V_STRING, "2024-00-10 00:00:00.00");
    ch->after[C_YEAR] = (cdc_value_t){.kind = CDC_V_INT, .u.i = 0};
    ch->after[C_TS] = sval(tx, CDC_V_STRING, "2024-02-29T13:14:15.125Z");
    x = after_of(&o, tx, ch, "d", &root);
    T_ASSERT(YAJL_IS_NULL(x));
    T_ASSERT(YAJL_IS_NULL(get(root, "after", "dt6")));
    T_ASSERT(YAJL_IS_NULL(get(root, "after", "dt2")));
    T_EQ_INT(YAJL_GET_INTEGER(get(root, "after", "y")), 0);
    T_EQ_STR(YAJL_GET_STRING(get(root, "after", "ts")),
             "2024-02-29T13:14:15.125Z");
    yajl_tree_free(root);
    o.time_mode = CDC_DBZ_TIME_ISO;
    x = after_of(&o, tx, ch, "d", &root);
    T_EQ_STR(YAJL_GET_STRING(x), "0000-00-00");
    yajl_tree_free(root);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
}

/* DECIMAL(20,6) in precise / string / double over generated values: the
 * precise bytes read back (two's complement, big-endian) as the unscaled
 * value that generated the text. */
CDC_TEST(decimal_modes_generated)
{
    cdc_table_t *t = mk_table();
    unsigned seed = 7;

    for (int n = 0; n < 3000; n++) {
        cdc_txn_t *tx = mk_txn("mariadb");
        cdc_change_t *ch = cdc_txn_add(tx, 'c', t);
        cdc_env_opts_t o = {.format = CDC_FMT_DEBEZIUM};
        __int128 u = 0;
        int digs = 1 + rand_r(&seed) % 20, neg = rand_r(&seed) % 2;
        char txt[64], *p = txt;
        yajl_val root, x;
        uint8_t bytes[32];

        for (int i = 0; i < digs; i++)
            u = u * 10 + rand_r(&seed) % 10;
        if (n < 3) /* 0, the smallest and the largest of DECIMAL(20,6) */
            u = n == 0 ? 0 : (__int128)99999999999999ULL * 1000000 + 999999;
        if (neg && u)
            *p++ = '-';
        {
            char rev[48];
            int k = 0;
            __int128 w = u;
            do {
                rev[k++] = (char)('0' + (int)(w % 10));
                w /= 10;
            } while (w || k <= 6);
            while (k > 6)
                *p++ = rev[--k];
            *p++ = '.';
            while (k > 0)
                *p++ = rev[--k];
            *p = '\0';
        }
        if (neg && u)
            u = -u;
        ch->after = cdc_txn_values(tx, C_NCOLS);
        ch->after[C_ID] = (cdc_value_t){.kind = CDC_V_INT, .u.i = n};
        ch->after[C_DEC] = sval(tx, CDC_V_DECIMAL, txt);
        x = after_of(&o, tx, ch, "dec", &root);
        size_t nb = YAJL_IS_STRING(x) ? b64dec(YAJL_GET_STRING(x), bytes) : 0;
        __int128 got = nb && (bytes[0] & 0x80) ? -1 : 0;
        for (size_t i = 0; i < nb; i++)
            got = got * 256 + bytes[i];
        T_ASSERT(nb > 0 && got == u);
        /* fewest bytes: dropping the first would change the value */
        if (nb > 1)
            T_ASSERT(!((bytes[0] == 0 && !(bytes[1] & 0x80)) ||
                       (bytes[0] == 0xFF && (bytes[1] & 0x80))));
        yajl_tree_free(root);
        o.decimal_mode = CDC_DBZ_DEC_STRING;
        x = after_of(&o, tx, ch, "dec", &root);
        T_EQ_STR(YAJL_GET_STRING(x), txt);
        yajl_tree_free(root);
        o.decimal_mode = CDC_DBZ_DEC_DOUBLE;
        x = after_of(&o, tx, ch, "dec", &root);
        T_ASSERT(YAJL_IS_NUMBER(x) && YAJL_GET_DOUBLE(x) == strtod(txt, NULL));
        yajl_tree_free(root);
        if (cdc_test_failed_) {
            printf("# decimal %s\n", txt);
            n = 3000;
        }
        cdc_txn_destroy(tx);
    }
    cdc_table_destroy(t);
}

/* Decimal bytes (big-endian two's complement) as decimal text, by long
 * division: independent of the writer's multiplication. */
static void bytes_to_dec(const uint8_t *b, size_t n, char *out)
{
    uint8_t m[512];
    char rev[1300];
    size_t k = 0, nz = 1;
    int neg = n && (b[0] & 0x80);

    memcpy(m, b, n);
    if (neg) { /* magnitude: invert and add one */
        unsigned carry = 1;
        for (size_t i = n; i-- > 0;) {
            unsigned v = (uint8_t)~m[i] + carry;
            m[i] = (uint8_t)v;
            carry = v >> 8;
        }
    }
    while (nz) {
        unsigned rem = 0;
        nz = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned cur = rem * 256 + m[i];
            m[i] = (uint8_t)(cur / 10);
            rem = cur % 10;
            nz |= m[i];
        }
        rev[k++] = (char)('0' + rem);
    }
    if (neg)
        *out++ = '-';
    while (k > 1 && rev[k - 1] == '0')
        k--;
    while (k)
        *out++ = rev[--k];
    *out = '\0';
}

/* A decimal longer than any fixed buffer (a PostgreSQL numeric may have
 * 131072 digits before the point) is written exactly in precise mode and
 * as a number in double mode, never as null. */
CDC_TEST(decimal_of_any_length)
{
    cdc_table_t *t = mk_table();
    unsigned seed = 11;

    for (int n = 0; n < 40; n++) {
        cdc_txn_t *tx = mk_txn("mariadb");
        cdc_change_t *ch = cdc_txn_add(tx, 'c', t);
        cdc_env_opts_t o = {.format = CDC_FMT_DEBEZIUM};
        int ndig = 60 + n * 25, neg = n % 2; /* 60 .. 1035 digits */
        char txt[1200], unscaled[1200], got[1300], *p = txt, *u = unscaled;
        uint8_t bytes[512];
        size_t nb;
        yajl_val root, x;

        if (neg) {
            *p++ = '-';
            *u++ = '-';
        }
        for (int i = 0; i < ndig; i++) {
            char d = (char)('0' + (i ? rand_r(&seed) % 10 : 1 + rand_r(&seed) % 9));
            *p++ = d;
            *u++ = d;
            if (i == ndig - 7)
                *p++ = '.'; /* scale 6, as the column */
        }
        *p = *u = '\0';
        ch->after = cdc_txn_values(tx, C_NCOLS);
        ch->after[C_ID] = (cdc_value_t){.kind = CDC_V_INT, .u.i = n};
        ch->after[C_DEC] = sval(tx, CDC_V_DECIMAL, txt);
        x = after_of(&o, tx, ch, "dec", &root);
        T_ASSERT(YAJL_IS_STRING(x));
        nb = YAJL_IS_STRING(x) ? b64dec(YAJL_GET_STRING(x), bytes) : 0;
        T_ASSERT(nb > 0 && nb != (size_t)-1);
        if (nb > 0 && nb != (size_t)-1) {
            bytes_to_dec(bytes, nb, got);
            T_EQ_STR(got, unscaled);
        }
        yajl_tree_free(root);
        o.decimal_mode = CDC_DBZ_DEC_DOUBLE;
        x = after_of(&o, tx, ch, "dec", &root);
        T_ASSERT(root != NULL);
        if (ndig < 300) /* beyond, a double is infinite: JSON has no such */
            T_ASSERT(YAJL_IS_NUMBER(x) &&
                     YAJL_GET_DOUBLE(x) == strtod(txt, NULL));
        yajl_tree_free(root);
        if (cdc_test_failed_) {
            printf("# %d digits: %s\n", ndig, txt);
            n = 40;
        }
        cdc_txn_destroy(tx);
    }
    cdc_table_destroy(t);
}

/* BIGINT UNSIGNED (exact in long mode, Decimal bytes in precise), binary
 * modes, SET, BIT(n), BIT(1), JSON, ENUM. */
CDC_TEST(other_types_and_modes)
{
    cdc_table_t *t;
    cdc_txn_t *tx;
    cdc_change_t *ch = mk_insert(&t, &tx, 1);
    cdc_env_opts_t o = {.format = CDC_FMT_DEBEZIUM};
    yajl_val root, x;
    uint8_t bytes[16];
    static const uint8_t bin[] = {0x00, 0xff, 0x10, 0x7f};

    ch->after[C_UBIG] = (cdc_value_t){.kind = CDC_V_UINT,
                                      .u.u = 18446744073709551615ULL};
    ch->after[C_BLOB] = (cdc_value_t){.kind = CDC_V_BYTES,
                                      .s = (const char *)bin, .len = 4};
    ch->after[C_SET] = sval(tx, CDC_V_JSON, "[\"a\",\"c\"]");
    ch->after[C_BIT10] = (cdc_value_t){.kind = CDC_V_UINT, .u.u = 0x2A5};
    ch->after[C_BIT1] = (cdc_value_t){.kind = CDC_V_UINT, .u.u = 1};
    ch->after[C_JSON] = sval(tx, CDC_V_JSON, "{\"k\":[1,2]}");
    ch->after[C_ENUM] = sval(tx, CDC_V_STRING, "b");

    x = after_of(&o, tx, ch, "ub", &root);
    T_ASSERT(YAJL_IS_NUMBER(x));
    T_EQ_STR(x ? x->u.number.r : "", "18446744073709551615");
    T_EQ_STR(YAJL_GET_STRING(get(root, "after", "bin")), "AP8Qfw==");
    T_EQ_STR(YAJL_GET_STRING(get(root, "after", "s")), "a,c");
    x = get(root, "after", "b10");
    T_EQ_INT(b64dec(YAJL_GET_STRING(x), bytes), 2);
    T_EQ_INT(bytes[0], 0xA5); /* little-endian */
    T_EQ_INT(bytes[1], 0x02);
    T_ASSERT(YAJL_IS_TRUE(get(root, "after", "b1")));
    T_EQ_STR(YAJL_GET_STRING(get(root, "after", "j")), "{\"k\":[1,2]}");
    T_EQ_STR(YAJL_GET_STRING(get(root, "after", "e")), "b");
    yajl_tree_free(root);

    o.bigint_mode = CDC_DBZ_BIGINT_PRECISE;
    o.binary_mode = CDC_DBZ_BIN_HEX;
    x = after_of(&o, tx, ch, "ub", &root);
    T_EQ_INT(b64dec(YAJL_GET_STRING(x), bytes), 9);
    T_ASSERT(bytes[0] == 0 && bytes[1] == 0xFF && bytes[8] == 0xFF);
    T_EQ_STR(YAJL_GET_STRING(get(root, "after", "bin")), "00ff107f");
    yajl_tree_free(root);
    o.binary_mode = CDC_DBZ_BIN_BASE64;
    x = after_of(&o, tx, ch, "bin", &root);
    T_EQ_STR(YAJL_GET_STRING(x), "AP8Qfw==");
    yajl_tree_free(root);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
}

/* The schema of a field by name, from {"schema":…} of a value. */
static yajl_val field_schema(yajl_val root, const char *image,
                             const char *col)
{
    yajl_val f = get(root, "schema", "fields");
    for (size_t i = 0; f && i < f->u.array.len; i++) {
        yajl_val s = f->u.array.values[i];
        const char *fn = YAJL_GET_STRING(get(s, "field", NULL));
        if (!fn || strcmp(fn, image))
            continue;
        yajl_val cf = get(s, "fields", NULL);
        for (size_t j = 0; cf && j < cf->u.array.len; j++) {
            const char *cn = YAJL_GET_STRING(get(cf->u.array.values[j],
                                                 "field", NULL));
            if (cn && !strcmp(cn, col))
                return cf->u.array.values[j];
        }
    }
    return NULL;
}

CDC_TEST(schemas_logical_names)
{
    cdc_table_t *t;
    cdc_txn_t *tx;
    cdc_change_t *ch = mk_insert(&t, &tx, 9);
    cdc_env_opts_t o = {.format = CDC_FMT_DEBEZIUM, .application_id = "crm",
                        .schemas = 1, .src_type = 1};
    cdc_buf_t b = CDC_BUF_INIT;
    static const struct { const char *col, *type, *name; } want[] = {
        {"id", "int32", NULL},
        {"d", "int32", "io.debezium.time.Date"},
        {"dt6", "int64", "io.debezium.time.MicroTimestamp"},
        {"dt2", "int64", "io.debezium.time.Timestamp"},
        {"tm3", "int64", "io.debezium.time.MicroTime"},
        {"dec", "bytes", "org.apache.kafka.connect.data.Decimal"},
        {"s", "string", "io.debezium.data.EnumSet"},
        {"b10", "bytes", "io.debezium.data.Bits"},
        {"b1", "boolean", NULL},
        {"j", "string", "io.debezium.data.Json"},
        {"bin", "bytes", NULL},
        {"ub", "int64", NULL},
        {"y", "int32", "io.debezium.time.Year"},
        {"ts", "string", "io.debezium.time.ZonedTimestamp"},
        {"e", "string", "io.debezium.data.Enum"},
    };

    cdc_dbz_write(&b, &o, tx, ch, 'c', NULL, ch->after);
    yajl_val v = parse(b.p);
    T_ASSERT(v && get(v, "schema", NULL) && get(v, "payload", NULL));
    for (size_t i = 0; v && i < sizeof(want) / sizeof(want[0]); i++) {
        yajl_val f = field_schema(v, "after", want[i].col);
        T_ASSERT(f != NULL);
        if (!f)
            continue;
        T_EQ_STR(YAJL_GET_STRING(get(f, "type", NULL)), want[i].type);
        yajl_val nm = get(f, "name", NULL);
        const char *wn = want[i].name ? want[i].name : "(none)";
        T_EQ_STR(nm ? YAJL_GET_STRING(nm) : "(none)", wn);
        const char *p[] = {"parameters", "__debezium.source.column.type",
                           NULL};
        T_ASSERT(YAJL_IS_STRING(yajl_tree_get(f, p, yajl_t_any)));
    }
    if (v) {
        yajl_val f = field_schema(v, "after", "dec");
        const char *ps[] = {"parameters", "scale", NULL};
        const char *pp[] = {"parameters", "connect.decimal.precision", NULL};
        T_EQ_STR(YAJL_GET_STRING(yajl_tree_get(f, ps, yajl_t_any)), "6");
        T_EQ_STR(YAJL_GET_STRING(yajl_tree_get(f, pp, yajl_t_any)), "20");
        T_EQ_STR(YAJL_GET_STRING(get(get(v, "schema", NULL), "name", NULL)),
                 "crm.shop.items.Envelope");
        T_ASSERT(YAJL_IS_FALSE(get(field_schema(v, "after", "id"),
                                   "optional", NULL)));
    }
    yajl_tree_free(v);

    /* the key, and a new table version (ALTER) gets a new schema */
    cdc_buf_reset(&b);
    cdc_dbz_key(&b, &o, tx, ch, ch->after, NULL);
    v = parse(b.p);
    T_ASSERT(v != NULL);
    if (v) {
        T_EQ_INT(YAJL_GET_INTEGER(get(v, "payload", "id")), 9);
        T_EQ_STR(YAJL_GET_STRING(get(get(v, "schema", NULL), "name", NULL)),
                 "crm.shop.items.Key");
    }
    yajl_tree_free(v);
    o.time_mode = CDC_DBZ_TIME_CONNECT;
    cdc_buf_reset(&b);
    cdc_dbz_write(&b, &o, tx, ch, 'c', NULL, ch->after);
    v = parse(b.p);
    T_EQ_STR(YAJL_GET_STRING(get(field_schema(v, "after", "d"), "name",
                                 NULL)),
             "org.apache.kafka.connect.data.Date");
    yajl_tree_free(v);
    cdc_buf_free(&b);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
}

/* PostgreSQL: int[] and text[] are Connect arrays of int32 / string; an
 * array of a type without such a schema here (numeric[]) is a string, so
 * JsonConverter with schemas reads both. */
CDC_TEST(pg_arrays)
{
    cdc_table_t *t = cdc_table_new("public", "a", 4);
    cdc_txn_t *tx = mk_txn("postgresql");
    cdc_change_t *ch = cdc_txn_add(tx, 'c', t);
    cdc_env_opts_t o = {.format = CDC_FMT_DEBEZIUM, .schemas = 1};
    cdc_buf_t b = CDC_BUF_INIT;
    static const char *const names[] = {"id", "ai", "at", "an"};
    static const uint32_t oids[] = {23, 1007, 1009, 1231};

    for (int i = 0; i < 4; i++) {
        t->cols[i].name = cdc_xstrdup(names[i]);
        t->cols[i].type = oids[i];
    }
    ch->after = cdc_txn_values(tx, 4);
    ch->after[0] = (cdc_value_t){.kind = CDC_V_INT, .u.i = 1};
    ch->after[1] = sval(tx, CDC_V_JSON, "[1,-2,3]");
    ch->after[2] = sval(tx, CDC_V_JSON, "[\"x\",null]");
    ch->after[3] = sval(tx, CDC_V_JSON, "[\"1.50\"]");
    cdc_dbz_write(&b, &o, tx, ch, 'c', NULL, ch->after);
    yajl_val v = parse(b.p);
    T_ASSERT(v != NULL);
    if (v) {
        const char *pa[] = {"payload", "after", "ai", NULL};
        const char *pn[] = {"payload", "after", "an", NULL};
        yajl_val ai = yajl_tree_get(v, pa, yajl_t_any);
        T_ASSERT(YAJL_IS_ARRAY(ai) && ai->u.array.len == 3);
        T_EQ_STR(YAJL_GET_STRING(yajl_tree_get(v, pn, yajl_t_any)),
                 "[\"1.50\"]");
        yajl_val f = field_schema(v, "after", "ai");
        T_EQ_STR(YAJL_GET_STRING(get(f, "type", NULL)), "array");
        T_EQ_STR(YAJL_GET_STRING(get(get(f, "items", NULL), "type", NULL)),
                 "int32");
        f = field_schema(v, "after", "at");
        T_EQ_STR(YAJL_GET_STRING(get(get(f, "items", NULL), "type", NULL)),
                 "string");
        f = field_schema(v, "after", "an");
        T_EQ_STR(YAJL_GET_STRING(get(f, "type", NULL)), "string");
    }
    yajl_tree_free(v);
    cdc_buf_free(&b);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
}

CDC_TEST(key_change_and_transaction_block)
{
    cdc_table_t *t = mk_table(), *t2 = cdc_table_new("shop", "other", 1);
    cdc_txn_t *tx = mk_txn("mariadb");
    cdc_env_opts_t o = {.format = CDC_FMT_DEBEZIUM, .txmeta = 1};
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_change_t *ch;

    t2->cols[0].name = cdc_xstrdup("x");
    for (int i = 0; i < 5; i++) {
        ch = cdc_txn_add(tx, i == 2 ? 'c' : 'u', i == 2 ? t2 : t);
        ch->after = cdc_txn_values(tx, C_NCOLS);
        ch->after[0] = (cdc_value_t){.kind = CDC_V_INT, .u.i = 10 + i};
        if (i != 2) {
            ch->before = cdc_txn_values(tx, C_NCOLS);
            ch->before[0] = (cdc_value_t){.kind = CDC_V_INT,
                                          .u.i = i == 4 ? 99 : 10 + i};
        }
    }
    T_EQ_INT(cdc_dbz_key_changed(&tx->changes[0]), 0);
    T_EQ_INT(cdc_dbz_key_changed(&tx->changes[4]), 1);
    T_EQ_INT(cdc_dbz_key_changed(&tx->changes[2]), 0);
    cdc_dbz_write(&b, &o, tx, &tx->changes[3], 'u', tx->changes[3].before,
                  tx->changes[3].after);
    yajl_val v = parse(b.p);
    T_EQ_STR(YAJL_GET_STRING(get(v, "transaction", "id")), "0-1-42");
    T_EQ_INT(YAJL_GET_INTEGER(get(v, "transaction", "total_order")), 4);
    T_EQ_INT(YAJL_GET_INTEGER(get(v, "transaction",
                                  "data_collection_order")), 3);
    yajl_tree_free(v);

    cdc_buf_reset(&b);
    cdc_dbz_txn_event(&b, &o, tx, 1);
    v = parse(b.p);
    T_EQ_STR(YAJL_GET_STRING(get(v, "status", NULL)), "END");
    T_EQ_INT(YAJL_GET_INTEGER(get(v, "event_count", NULL)), 5);
    yajl_val dc = get(v, "data_collections", NULL);
    T_ASSERT(YAJL_IS_ARRAY(dc) && dc->u.array.len == 2);
    if (YAJL_IS_ARRAY(dc) && dc->u.array.len == 2) {
        T_EQ_STR(YAJL_GET_STRING(get(dc->u.array.values[0],
                                     "data_collection", NULL)), "shop.items");
        T_EQ_INT(YAJL_GET_INTEGER(get(dc->u.array.values[0], "event_count",
                                      NULL)), 4);
        T_EQ_INT(YAJL_GET_INTEGER(get(dc->u.array.values[1], "event_count",
                                      NULL)), 1);
    }
    yajl_tree_free(v);
    cdc_buf_reset(&b);
    cdc_dbz_txn_event(&b, &o, tx, 0);
    v = parse(b.p);
    T_EQ_STR(YAJL_GET_STRING(get(v, "status", NULL)), "BEGIN");
    T_ASSERT(YAJL_IS_NULL(get(v, "event_count", NULL)));
    yajl_tree_free(v);
    cdc_buf_free(&b);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
    cdc_table_destroy(t2);
}

/* One change of table t in fragment frag of a transaction (more: fragments
 * follow), written with the writer's state st; the data_collection_order
 * it got. */
static int64_t frag_write(cdc_dbz_txs_t *st, const cdc_env_opts_t *o,
                          cdc_txn_t *tx, cdc_table_t *t, uint32_t frag,
                          int more)
{
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_change_t *ch;
    int64_t dco = -1;
    yajl_val v;

    tx->frag = frag;
    tx->more = more;
    ch = cdc_txn_add(tx, 'c', t);
    ch->after = cdc_txn_values(tx, t->ncols);
    ch->after[0] = (cdc_value_t){.kind = CDC_V_INT, .u.i = frag};
    cdc_dbz_txs_begin(st, tx);
    cdc_dbz_write(&b, o, tx, ch, 'c', NULL, ch->after);
    v = parse(b.p);
    T_ASSERT(v != NULL);
    if (v)
        dco = YAJL_GET_INTEGER(get(v, "transaction",
                                   "data_collection_order"));
    yajl_tree_free(v);
    cdc_buf_free(&b);
    return dco;
}

/* The per-table counters of a fragmented transaction are keyed by the
 * table's name: a table object of an earlier fragment can be freed and
 * another table allocated at its address (the binlog decoder drops its
 * TABLE_MAP cache mid-transaction).  The same object renamed stands for
 * that reuse, deterministically: shop.b's change is the first of shop.b. */
CDC_TEST(fragments_count_tables_by_name)
{
    cdc_table_t *t = cdc_table_new("shop", "a", 1);
    cdc_txn_t *f0 = mk_txn("mariadb"), *f1 = mk_txn("mariadb");
    cdc_dbz_txs_t st;
    cdc_env_opts_t o = {.format = CDC_FMT_DEBEZIUM, .txmeta = 1, .txs = &st};
    cdc_buf_t b = CDC_BUF_INIT;
    yajl_val v, dc;

    memset(&st, 0, sizeof(st));
    t->cols[0].name = cdc_xstrdup("id");
    T_EQ_INT(frag_write(&st, &o, f0, t, 0, 1), 1);
    T_EQ_INT(cdc_dbz_txs_end(&st, f0), 0);
    free(t->name);
    t->name = cdc_xstrdup("b");
    T_EQ_INT(frag_write(&st, &o, f1, t, 1, 0), 1);
    T_EQ_INT(cdc_dbz_txs_end(&st, f1), 1);
    cdc_dbz_txn_event(&b, &o, f1, 1);
    v = parse(b.p);
    T_EQ_INT(YAJL_GET_INTEGER(get(v, "event_count", NULL)), 2);
    dc = get(v, "data_collections", NULL);
    T_ASSERT(YAJL_IS_ARRAY(dc) && dc->u.array.len == 2);
    if (YAJL_IS_ARRAY(dc) && dc->u.array.len == 2)
        for (int i = 0; i < 2; i++) {
            T_EQ_STR(YAJL_GET_STRING(get(dc->u.array.values[i],
                                         "data_collection", NULL)),
                     i ? "shop.b" : "shop.a");
            T_EQ_INT(YAJL_GET_INTEGER(get(dc->u.array.values[i],
                                          "event_count", NULL)), 1);
        }
    yajl_tree_free(v);
    cdc_buf_free(&b);
    cdc_dbz_txs_free(&st);
    cdc_txn_destroy(f0);
    cdc_txn_destroy(f1);
    cdc_table_destroy(t);
}

/* The values Debezium 3.6.1 wrote for the same MariaDB changes, as
 * measured side by side (shared/docs/DEBEZIUM-FORMAT.md): DATE 2024-02-29
 * is 19782, TIME(3) 13:14:15.125 is 47655125000, SET is "a,c". */
CDC_TEST(values_measured_from_debezium)
{
    cdc_table_t *t;
    cdc_txn_t *tx;
    cdc_change_t *ch = mk_insert(&t, &tx, 1);
    cdc_env_opts_t o = {.format = CDC_FMT_DEBEZIUM};
    yajl_val root;

    ch->after[C_DATE] = sval(tx, CDC_V_STRING, "2024-02-29");
    ch->after[C_TM3] = sval(tx, CDC_V_STRING, "13:14:15.125");
    ch->after[C_SET] = sval(tx, CDC_V_JSON, "[\"a\",\"c\"]");
    T_EQ_INT(YAJL_GET_INTEGER(after_of(&o, tx, ch, "d", &root)), 19782);
    T_EQ_INT(YAJL_GET_INTEGER(get(root, "after", "tm3")), 47655125000LL);
    T_EQ_STR(YAJL_GET_STRING(get(root, "after", "s")), "a,c");
    yajl_tree_free(root);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
}

CDC_TEST(settings)
{
    cdc_conf_t *c = cdc_conf_new();
    cdc_env_opts_t o = {.format = CDC_FMT_DEBEZIUM};
    cdc_err_t err = {0};

    T_EQ_INT(cdc_dbz_opts_conf(&o, c, &err), 0);
    T_EQ_INT(o.time_mode, CDC_DBZ_TIME_ADAPTIVE);
    T_EQ_INT(o.decimal_mode, CDC_DBZ_DEC_PRECISE);
    T_EQ_INT(o.bigint_mode, CDC_DBZ_BIGINT_LONG);
    T_EQ_INT(o.binary_mode, CDC_DBZ_BIN_BYTES);
    cdc_conf_set(c, "debezium.time.precision.mode", "connect", "test");
    cdc_conf_set(c, "debezium.decimal.handling.mode", "string", "test");
    cdc_conf_set(c, "debezium.bigint.unsigned.handling.mode", "precise",
                 "test");
    cdc_conf_set(c, "debezium.binary.handling.mode", "hex", "test");
    cdc_conf_set(c, "debezium.schemas", "true", "test");
    T_EQ_INT(cdc_dbz_opts_conf(&o, c, &err), 0);
    T_EQ_INT(o.time_mode, CDC_DBZ_TIME_CONNECT);
    T_EQ_INT(o.decimal_mode, CDC_DBZ_DEC_STRING);
    T_EQ_INT(o.bigint_mode, CDC_DBZ_BIGINT_PRECISE);
    T_EQ_INT(o.binary_mode, CDC_DBZ_BIN_HEX);
    T_EQ_INT(o.schemas, 1);
    cdc_conf_set(c, "debezium.time.precision.mode", "nanos", "test");
    T_EQ_INT(cdc_dbz_opts_conf(&o, c, &err), -1);
    cdc_conf_destroy(c);
}

CDC_TEST_MAIN()
