/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_pgoutput.c - hermetic tests of the pgoutput decoder: hand-built
 * messages for every message type and value type, malformed input.
 */
#include <math.h>
#include <unistd.h>

#include "cdc/buf.h"
#include "cdc/change.h"
#include "cdc/envelope.h"
#include "cdc/log.h"
#include "connectors/pg/pgoutput_decode.h"
#include "tests/unit/cdc_test.h"

/* cdc_test.h's CDC_TEST(name) substitutes its parameter into the ".name"
 * member access; use a parameter name that cannot collide. */
#undef CDC_TEST
#define CDC_TEST(tn_)                                                    \
    static void t_##tn_(void);                                           \
    __attribute__((constructor)) static void reg_##tn_(void)             \
    {                                                                    \
        cdc_tests_[cdc_ntests_].name = #tn_;                             \
        cdc_tests_[cdc_ntests_++].fn = t_##tn_;                          \
    }                                                                    \
    static void t_##tn_(void)

/* ---- message builder ---------------------------------------------- */

static void p8(cdc_buf_t *b, uint8_t v) { cdc_buf_putc(b, (char)v); }
static void p16(cdc_buf_t *b, uint16_t v)
{
    p8(b, v >> 8);
    p8(b, v & 0xff);
}
static void p32(cdc_buf_t *b, uint32_t v)
{
    p16(b, v >> 16);
    p16(b, v & 0xffff);
}
static void p64(cdc_buf_t *b, uint64_t v)
{
    p32(b, (uint32_t)(v >> 32));
    p32(b, (uint32_t)v);
}
static void pstr(cdc_buf_t *b, const char *s) { cdc_buf_put(b, s, strlen(s) + 1); }
/* Tuple column: NULL -> 'n', "\001" -> 'u', else 't' text. */
#define UNCH "\001"
static void pcol(cdc_buf_t *b, const char *v)
{
    if (!v) {
        p8(b, 'n');
    } else if (strcmp(v, UNCH) == 0) {
        p8(b, 'u');
    } else {
        p8(b, 't');
        p32(b, (uint32_t)strlen(v));
        cdc_buf_put(b, v, strlen(v));
    }
}
static void ptuple(cdc_buf_t *b, int n, const char *const *v)
{
    p16(b, (uint16_t)n);
    for (int i = 0; i < n; i++)
        pcol(b, v[i]);
}

typedef struct att { const char *name; uint32_t oid; int key; } att_t;

static void m_begin(cdc_buf_t *b, uint64_t final_lsn, int64_t ts, uint32_t xid)
{
    cdc_buf_reset(b);
    p8(b, 'B');
    p64(b, final_lsn);
    p64(b, (uint64_t)ts);
    p32(b, xid);
}
static void m_commit(cdc_buf_t *b, uint64_t commit_lsn, uint64_t end_lsn,
                     int64_t ts)
{
    cdc_buf_reset(b);
    p8(b, 'C');
    p8(b, 0);
    p64(b, commit_lsn);
    p64(b, end_lsn);
    p64(b, (uint64_t)ts);
}
static void m_relation(cdc_buf_t *b, int64_t xid, uint32_t relid,
                       const char *nsp, const char *rel, char ident, int n,
                       const att_t *atts)
{
    cdc_buf_reset(b);
    p8(b, 'R');
    if (xid >= 0)
        p32(b, (uint32_t)xid);
    p32(b, relid);
    pstr(b, nsp);
    pstr(b, rel);
    p8(b, (uint8_t)ident);
    p16(b, (uint16_t)n);
    for (int i = 0; i < n; i++) {
        p8(b, atts[i].key ? 1 : 0);
        pstr(b, atts[i].name);
        p32(b, atts[i].oid);
        p32(b, 0xffffffffu);
    }
}
static void m_insert(cdc_buf_t *b, int64_t xid, uint32_t relid, int n,
                     const char *const *v)
{
    cdc_buf_reset(b);
    p8(b, 'I');
    if (xid >= 0)
        p32(b, (uint32_t)xid);
    p32(b, relid);
    p8(b, 'N');
    ptuple(b, n, v);
}

typedef struct fx {
    cdc_pgoutput_t *d;
    cdc_buf_t b;
    cdc_err_t err;
    cdc_txn_t *tx;
} fx_t;

static int feed(fx_t *f, uint64_t lsn)
{
    if (f->tx) {
        cdc_txn_destroy(f->tx);
        f->tx = NULL;
    }
    int rc = cdc_pgoutput_feed(f->d, (const uint8_t *)f->b.p, f->b.len, lsn,
                               &f->tx, &f->err);
    if (rc < 0)
        printf("# feed error: %s\n", f->err.msg);
    return rc;
}

static void fx_init(fx_t *f, int proto)
{
    memset(f, 0, sizeof(*f));
    f->d = cdc_pgoutput_new(NULL, proto);
}
static void fx_done(fx_t *f)
{
    cdc_txn_destroy(f->tx);
    cdc_pgoutput_destroy(f->d);
    cdc_buf_free(&f->b);
}

static const char *json_of(const cdc_value_t *v)
{
    static cdc_buf_t jb;
    cdc_buf_reset(&jb);
    cdc_json_value(&jb, v);
    return jb.p ? jb.p : "";
}

#define ATTS(...) ((const att_t[]){__VA_ARGS__})
#define VALS(...) ((const char *const[]){__VA_ARGS__})

/* ---- tests ---------------------------------------------------------- */

CDC_TEST(begin_relation_insert_commit)
{
    fx_t f;
    fx_init(&f, 1);
    m_begin(&f.b, 0x1000, 0, 742);
    T_EQ_INT(feed(&f, 0x0f00), 0);
    T_ASSERT(cdc_pgoutput_busy(f.d));
    m_relation(&f.b, -1, 16384, "public", "t1", 'd', 2,
               ATTS({"id", 23, 1}, {"name", 25, 0}));
    T_EQ_INT(feed(&f, 0x0f00), 0);
    m_insert(&f.b, -1, 16384, 2, VALS("7", "hello"));
    T_EQ_INT(feed(&f, 0x0f10), 0);
    m_commit(&f.b, 0x1000, 0x1030, 1000000);
    T_EQ_INT(feed(&f, 0x1000), 1);
    T_ASSERT(!cdc_pgoutput_busy(f.d));
    T_ASSERT(f.tx != NULL);
    if (f.tx) {
        T_EQ_INT(f.tx->xid, 742);
        T_EQ_INT(f.tx->pos.lsn, 0x1030);
        T_EQ_INT(f.tx->commit_us, CDC_PG_EPOCH_OFFSET_US + 1000000);
        T_EQ_STR(f.tx->connector, "postgresql");
        T_EQ_INT(f.tx->nchanges, 1);
        cdc_change_t *ch = &f.tx->changes[0];
        T_EQ_INT(ch->op, 'c');
        T_EQ_INT(ch->pos, 0x0f10);
        T_ASSERT(ch->before == NULL);
        T_EQ_STR(ch->tbl->db, "public");
        T_EQ_STR(ch->tbl->name, "t1");
        T_EQ_INT(ch->tbl->id, 16384);
        T_EQ_INT(ch->tbl->ncols, 2);
        T_EQ_STR(ch->tbl->cols[0].name, "id");
        T_EQ_INT(ch->tbl->cols[0].type, 23);
        T_EQ_INT(ch->tbl->cols[0].flags & CDC_COL_PK, CDC_COL_PK);
        T_EQ_INT(ch->tbl->cols[1].flags & CDC_COL_PK, 0);
        T_EQ_INT(ch->tbl->npk, 1);
        T_EQ_INT(ch->tbl->pk[0], 0);
        T_EQ_INT(ch->after[0].kind, CDC_V_INT);
        T_EQ_INT(ch->after[0].u.i, 7);
        T_EQ_INT(ch->after[1].kind, CDC_V_STRING);
        T_EQ_STR(ch->after[1].s, "hello");
    }
    fx_done(&f);
}

static const att_t T2[] = {{"id", 23, 1}, {"a", 25, 0}, {"b", 20, 0}};

static void setup_t2(fx_t *f, char ident)
{
    m_begin(&f->b, 0x2000, 0, 1);
    feed(f, 0);
    m_relation(&f->b, -1, 2, "s", "t2", ident, 3, T2);
    feed(f, 0);
}

CDC_TEST(update_key_old_new)
{
    fx_t f;
    fx_init(&f, 1);
    setup_t2(&f, 'd');
    /* Update with a key change: 'K' old key, 'N' new row with unchanged
     * TOAST in a. */
    cdc_buf_reset(&f.b);
    p8(&f.b, 'U');
    p32(&f.b, 2);
    p8(&f.b, 'K');
    ptuple(&f.b, 3, VALS("1", NULL, NULL));
    p8(&f.b, 'N');
    ptuple(&f.b, 3, VALS("2", UNCH, NULL));
    T_EQ_INT(feed(&f, 0x10), 0);
    /* Update without old tuple. */
    cdc_buf_reset(&f.b);
    p8(&f.b, 'U');
    p32(&f.b, 2);
    p8(&f.b, 'N');
    ptuple(&f.b, 3, VALS("2", "x", "-9223372036854775808"));
    T_EQ_INT(feed(&f, 0x20), 0);
    /* Delete with key. */
    cdc_buf_reset(&f.b);
    p8(&f.b, 'D');
    p32(&f.b, 2);
    p8(&f.b, 'K');
    ptuple(&f.b, 3, VALS("2", NULL, NULL));
    T_EQ_INT(feed(&f, 0x30), 0);
    m_commit(&f.b, 0x2000, 0x2010, 0);
    T_EQ_INT(feed(&f, 0x40), 1);
    T_ASSERT(f.tx && f.tx->nchanges == 3);
    if (f.tx && f.tx->nchanges == 3) {
        cdc_change_t *u = &f.tx->changes[0];
        T_EQ_INT(u->op, 'u');
        T_EQ_INT(u->before[0].kind, CDC_V_INT);
        T_EQ_INT(u->before[0].u.i, 1);
        T_EQ_INT(u->before[1].kind, CDC_V_ABSENT);
        T_EQ_INT(u->before[2].kind, CDC_V_ABSENT);
        T_EQ_INT(u->after[1].kind, CDC_V_UNCHANGED);
        T_EQ_INT(u->after[2].kind, CDC_V_NULL);
        T_EQ_INT(u->pos, 0x10);
        cdc_change_t *u2 = &f.tx->changes[1];
        T_ASSERT(u2->before == NULL);
        T_EQ_INT(u2->after[2].u.i, INT64_MIN);
        cdc_change_t *dl = &f.tx->changes[2];
        T_EQ_INT(dl->op, 'd');
        T_ASSERT(dl->after == NULL);
        T_EQ_INT(dl->before[0].u.i, 2);
        T_EQ_INT(dl->before[1].kind, CDC_V_ABSENT);
    }
    fx_done(&f);
}

CDC_TEST(update_full_old_row)
{
    fx_t f;
    fx_init(&f, 1);
    static const att_t full[] = {{"id", 23, 1}, {"a", 25, 1}, {"b", 20, 1}};
    m_begin(&f.b, 0x2000, 0, 1);
    feed(&f, 0);
    m_relation(&f.b, -1, 3, "s", "full", 'f', 3, full);
    feed(&f, 0);
    cdc_buf_reset(&f.b);
    p8(&f.b, 'U');
    p32(&f.b, 3);
    p8(&f.b, 'O');
    ptuple(&f.b, 3, VALS("1", "old", NULL));
    p8(&f.b, 'N');
    ptuple(&f.b, 3, VALS("1", "new", "5"));
    T_EQ_INT(feed(&f, 1), 0);
    cdc_buf_reset(&f.b);
    p8(&f.b, 'D');
    p32(&f.b, 3);
    p8(&f.b, 'O');
    ptuple(&f.b, 3, VALS("1", "new", "5"));
    T_EQ_INT(feed(&f, 2), 0);
    m_commit(&f.b, 0, 0x3000, 0);
    T_EQ_INT(feed(&f, 3), 1);
    if (f.tx && f.tx->nchanges == 2) {
        T_EQ_STR(f.tx->changes[0].before[1].s, "old");
        T_EQ_INT(f.tx->changes[0].before[2].kind, CDC_V_NULL);
        T_EQ_INT(f.tx->changes[0].after[2].u.i, 5);
        T_EQ_INT(f.tx->changes[1].before[2].u.i, 5);
    } else {
        T_ASSERT(0);
    }
    fx_done(&f);
}

CDC_TEST(truncate_origin_type_message)
{
    fx_t f;
    fx_init(&f, 1);
    setup_t2(&f, 'd');
    m_relation(&f.b, -1, 9, "s", "other", 'n', 1, ATTS({"x", 25, 0}));
    T_EQ_INT(feed(&f, 0), 0);
    cdc_buf_reset(&f.b);
    p8(&f.b, 'O');
    p64(&f.b, 0x99);
    pstr(&f.b, "pg_16999");
    T_EQ_INT(feed(&f, 0), 0);
    cdc_buf_reset(&f.b);
    p8(&f.b, 'Y');
    p32(&f.b, 70000);
    pstr(&f.b, "public");
    pstr(&f.b, "mood");
    T_EQ_INT(feed(&f, 0), 0);
    cdc_buf_reset(&f.b);
    p8(&f.b, 'M');
    p8(&f.b, 1);
    p64(&f.b, 0x555);
    pstr(&f.b, "autoglm");
    p32(&f.b, 3);
    cdc_buf_put(&f.b, "abc", 3);
    T_EQ_INT(feed(&f, 0), 0);
    cdc_buf_reset(&f.b);
    p8(&f.b, 'T');
    p32(&f.b, 2);
    p8(&f.b, 1);
    p32(&f.b, 2);
    p32(&f.b, 9);
    T_EQ_INT(feed(&f, 0x77), 0);
    m_commit(&f.b, 0, 0x4000, 0);
    T_EQ_INT(feed(&f, 0), 1);
    T_ASSERT(f.tx && f.tx->nchanges == 2);
    if (f.tx && f.tx->nchanges == 2) {
        T_EQ_INT(f.tx->changes[0].op, 't');
        T_EQ_STR(f.tx->changes[0].tbl->name, "t2");
        T_EQ_STR(f.tx->changes[1].tbl->name, "other");
        T_ASSERT(f.tx->changes[1].before == NULL &&
                 f.tx->changes[1].after == NULL);
        T_EQ_INT(f.tx->changes[1].pos, 0x77);
    }
    const cdc_pgoutput_stats_t *st = cdc_pgoutput_stats(f.d);
    T_EQ_INT(st->messages, 1);
    T_EQ_INT(st->last_msg_lsn, 0x555);
    T_EQ_INT(st->origins, 1);
    T_EQ_INT(st->types, 1);
    fx_done(&f);
}

CDC_TEST(empty_txn_is_skipped)
{
    fx_t f;
    fx_init(&f, 1);
    m_begin(&f.b, 1, 0, 5);
    feed(&f, 0);
    m_commit(&f.b, 1, 2, 0);
    T_EQ_INT(feed(&f, 0), 1);
    T_ASSERT(f.tx && f.tx->skipped && f.tx->nchanges == 0);
    fx_done(&f);
}

CDC_TEST(relation_refresh_mid_stream)
{
    fx_t f;
    fx_init(&f, 1);
    m_begin(&f.b, 1, 0, 5);
    feed(&f, 0);
    m_relation(&f.b, -1, 7, "public", "t", 'd', 1, ATTS({"id", 23, 1}));
    feed(&f, 0);
    m_insert(&f.b, -1, 7, 1, VALS("1"));
    T_EQ_INT(feed(&f, 0), 0);
    /* ALTER TABLE ADD COLUMN: a new Relation, then wider tuples. */
    m_relation(&f.b, -1, 7, "public", "t", 'd', 2,
               ATTS({"id", 23, 1}, {"extra", 1700, 0}));
    T_EQ_INT(feed(&f, 0), 0);
    m_insert(&f.b, -1, 7, 2, VALS("2", "3.14"));
    T_EQ_INT(feed(&f, 0), 0);
    /* Old width is now an error. */
    m_insert(&f.b, -1, 7, 1, VALS("3"));
    T_EQ_INT(feed(&f, 0), -1);
    T_EQ_INT(f.err.code, CDC_EXIT_DATA);
    m_commit(&f.b, 1, 2, 0);
    T_EQ_INT(feed(&f, 0), 1);
    T_ASSERT(f.tx && f.tx->nchanges == 2);
    if (f.tx && f.tx->nchanges == 2) {
        T_EQ_INT(f.tx->changes[0].tbl->ncols, 1);
        T_EQ_INT(f.tx->changes[1].tbl->ncols, 2);
        T_EQ_INT(f.tx->changes[1].after[1].kind, CDC_V_DECIMAL);
        T_EQ_STR(f.tx->changes[1].after[1].s, "3.14");
    }
    fx_done(&f);
}

static void stream_start(fx_t *f, uint32_t xid, int first)
{
    cdc_buf_reset(&f->b);
    p8(&f->b, 'S');
    p32(&f->b, xid);
    p8(&f->b, (uint8_t)first);
}
static void stream_stop(fx_t *f)
{
    cdc_buf_reset(&f->b);
    p8(&f->b, 'E');
}

CDC_TEST(streaming_commit_abort)
{
    fx_t f;
    fx_init(&f, 2);
    /* xid 100: two segments, a subtransaction 101 aborted. */
    stream_start(&f, 100, 1);
    T_EQ_INT(feed(&f, 0), 0);
    m_relation(&f.b, 100, 7, "public", "t", 'd', 1, ATTS({"id", 23, 1}));
    T_EQ_INT(feed(&f, 0), 0);
    m_insert(&f.b, 100, 7, 1, VALS("1"));
    T_EQ_INT(feed(&f, 0x10), 0);
    m_insert(&f.b, 101, 7, 1, VALS("2"));
    T_EQ_INT(feed(&f, 0x20), 0);
    stream_stop(&f);
    T_EQ_INT(feed(&f, 0), 0);
    /* xid 200 interleaved, aborted entirely. */
    stream_start(&f, 200, 1);
    T_EQ_INT(feed(&f, 0), 0);
    m_insert(&f.b, 200, 7, 1, VALS("99"));
    T_EQ_INT(feed(&f, 0x30), 0);
    stream_stop(&f);
    T_EQ_INT(feed(&f, 0), 0);
    stream_start(&f, 100, 0);
    T_EQ_INT(feed(&f, 0), 0);
    m_insert(&f.b, 100, 7, 1, VALS("3"));
    T_EQ_INT(feed(&f, 0x40), 0);
    stream_stop(&f);
    T_EQ_INT(feed(&f, 0), 0);
    T_ASSERT(cdc_pgoutput_busy(f.d));
    /* abort subxact 101 and the whole of 200 */
    cdc_buf_reset(&f.b);
    p8(&f.b, 'A');
    p32(&f.b, 100);
    p32(&f.b, 101);
    T_EQ_INT(feed(&f, 0), 0);
    cdc_buf_reset(&f.b);
    p8(&f.b, 'A');
    p32(&f.b, 200);
    p32(&f.b, 200);
    T_EQ_INT(feed(&f, 0), 0);
    /* A non-streamed transaction may commit in between. */
    m_begin(&f.b, 0x500, 0, 300);
    T_EQ_INT(feed(&f, 0), 0);
    m_insert(&f.b, -1, 7, 1, VALS("50"));
    T_EQ_INT(feed(&f, 0x50), 0);
    m_commit(&f.b, 0x500, 0x510, 0);
    T_EQ_INT(feed(&f, 0), 1);
    T_ASSERT(f.tx && f.tx->xid == 300 && f.tx->nchanges == 1);
    cdc_buf_reset(&f.b);
    p8(&f.b, 'c');
    p32(&f.b, 100);
    p8(&f.b, 0);
    p64(&f.b, 0x600);
    p64(&f.b, 0x610);
    p64(&f.b, 5);
    T_EQ_INT(feed(&f, 0), 1);
    T_ASSERT(f.tx && f.tx->nchanges == 2);
    if (f.tx && f.tx->nchanges == 2) {
        T_EQ_INT(f.tx->xid, 100);
        T_EQ_INT(f.tx->pos.lsn, 0x610);
        T_EQ_INT(f.tx->changes[0].after[0].u.i, 1);
        T_EQ_INT(f.tx->changes[1].after[0].u.i, 3);
        T_EQ_INT(f.tx->changes[1].pos, 0x40);
    }
    T_ASSERT(!cdc_pgoutput_busy(f.d));
    T_EQ_INT(cdc_pgoutput_stats(f.d)->aborted, 2);
    /* Unknown streamed xid continuing, commit of unknown xid: errors. */
    stream_start(&f, 400, 0);
    T_EQ_INT(feed(&f, 0), -1);
    cdc_buf_reset(&f.b);
    p8(&f.b, 'c');
    p32(&f.b, 401);
    p8(&f.b, 0);
    p64(&f.b, 0);
    p64(&f.b, 0);
    p64(&f.b, 0);
    T_EQ_INT(feed(&f, 0), -1);
    fx_done(&f);
}

CDC_TEST(stream_reset_drops_buffered)
{
    fx_t f;
    fx_init(&f, 2);
    stream_start(&f, 100, 1);
    feed(&f, 0);
    T_ASSERT(cdc_pgoutput_busy(f.d));
    cdc_pgoutput_reset(f.d);
    T_ASSERT(!cdc_pgoutput_busy(f.d));
    fx_done(&f);
}

/* One value of a type through a table with that column type. */
static int conv1(uint32_t oid, const char *text, cdc_value_t *out,
                 cdc_arena_t *a)
{
    cdc_err_t err;
    return cdc_pg_value_text(oid, text, strlen(text), a, out, &err);
}

#define CHECK_JSON(oid, text, expect)                                    \
    do {                                                                 \
        cdc_value_t v_;                                                  \
        T_EQ_INT(conv1(oid, text, &v_, &a), 0);                          \
        T_EQ_STR(json_of(&v_), expect);                                  \
    } while (0)
#define CHECK_KIND(oid, text, k)                                         \
    do {                                                                 \
        cdc_value_t v_;                                                  \
        T_EQ_INT(conv1(oid, text, &v_, &a), 0);                          \
        T_EQ_INT(v_.kind, k);                                            \
    } while (0)
#define CHECK_BAD(oid, text)                                             \
    do {                                                                 \
        cdc_value_t v_;                                                  \
        T_EQ_INT(conv1(oid, text, &v_, &a), -1);                         \
    } while (0)

CDC_TEST(value_types)
{
    cdc_arena_t a;
    cdc_arena_init(&a);
    CHECK_JSON(21, "-32768", "-32768");
    CHECK_JSON(23, "2147483647", "2147483647");
    CHECK_JSON(20, "9223372036854775807", "9223372036854775807");
    CHECK_KIND(20, "1", CDC_V_INT);
    CHECK_BAD(20, "9223372036854775808");
    CHECK_BAD(23, "12a");
    CHECK_BAD(23, "");
    CHECK_KIND(26, "4294967295", CDC_V_UINT);
    CHECK_JSON(26, "4294967295", "4294967295");
    CHECK_BAD(26, "-1");
    CHECK_JSON(1700, "12345678901234567890.000000000000000001",
               "\"12345678901234567890.000000000000000001\"");
    CHECK_KIND(1700, "-0.5", CDC_V_DECIMAL);
    CHECK_JSON(1700, "NaN", "\"NaN\"");
    CHECK_JSON(1700, "Infinity", "\"Infinity\"");
    CHECK_JSON(1700, "-Infinity", "\"-Infinity\"");
    CHECK_BAD(1700, "1.2.3");
    CHECK_BAD(1700, "--1");
    CHECK_KIND(700, "1.5", CDC_V_FLOAT);
    CHECK_JSON(700, "1.5", "1.5");
    CHECK_KIND(701, "3.141592653589793", CDC_V_DOUBLE);
    CHECK_JSON(701, "3.141592653589793", "3.141592653589793");
    CHECK_JSON(701, "-1e+308", "-1e+308");
    CHECK_JSON(701, "NaN", "\"NaN\"");
    CHECK_JSON(700, "Infinity", "\"Infinity\"");
    CHECK_JSON(701, "-Infinity", "\"-Infinity\"");
    CHECK_KIND(701, "NaN", CDC_V_STRING);
    CHECK_BAD(701, "abc");
    CHECK_JSON(16, "t", "true");
    CHECK_JSON(16, "f", "false");
    CHECK_BAD(16, "x");
    CHECK_JSON(25, "a \"q\" \\ é", "\"a \\\"q\\\" \\\\ é\"");
    CHECK_JSON(1043, "v", "\"v\"");
    CHECK_JSON(1042, "ab  ", "\"ab  \"");
    CHECK_JSON(19, "pg_catalog", "\"pg_catalog\"");
    {
        cdc_value_t v;
        T_EQ_INT(conv1(17, "\\x00ff41", &v, &a), 0);
        T_EQ_INT(v.kind, CDC_V_BYTES);
        T_EQ_INT(v.len, 3);
        T_ASSERT(memcmp(v.s, "\x00\xff\x41", 3) == 0);
        T_EQ_STR(json_of(&v), "\"AP9B\"");
        T_EQ_INT(conv1(17, "a\\000\\\\b", &v, &a), 0); /* escape format */
        T_EQ_INT(v.len, 4);
        T_ASSERT(memcmp(v.s, "a\0\\b", 4) == 0);
        T_EQ_INT(conv1(17, "\\x", &v, &a), 0);
        T_EQ_INT(v.len, 0);
    }
    CHECK_BAD(17, "\\x0");
    CHECK_BAD(17, "\\xzz");
    CHECK_JSON(1082, "2024-02-29", "\"2024-02-29\"");
    CHECK_JSON(1082, "infinity", "\"infinity\"");
    CHECK_JSON(1083, "23:59:59.999999", "\"23:59:59.999999\"");
    CHECK_JSON(1266, "10:00:00+02", "\"10:00:00+02\"");
    CHECK_JSON(1114, "2024-01-02 03:04:05.5", "\"2024-01-02 03:04:05.5\"");
    CHECK_JSON(1184, "2024-01-02 03:04:05+00", "\"2024-01-02T03:04:05Z\"");
    CHECK_JSON(1184, "2024-01-02 03:04:05.123456+00",
               "\"2024-01-02T03:04:05.123456Z\"");
    CHECK_JSON(1184, "2024-01-01 01:30:00+02",
               "\"2023-12-31T23:30:00Z\"");
    CHECK_JSON(1184, "2024-02-28 22:00:00.5-05:30",
               "\"2024-02-29T03:30:00.5Z\"");
    CHECK_JSON(1184, "1900-01-01 00:00:00+00:19:32",
               "\"1899-12-31T23:40:28Z\"");
    CHECK_JSON(1184, "infinity", "\"infinity\"");
    CHECK_JSON(1184, "0044-03-15 12:00:00+00 BC",
               "\"0044-03-15 12:00:00+00 BC\"");
    CHECK_JSON(1186, "1 year 2 mons 3 days 04:05:06.5",
               "\"1 year 2 mons 3 days 04:05:06.5\"");
    CHECK_JSON(2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
               "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"");
    /* json and jsonb are embedded compactly: one line, same value, same
     * key order (json keeps the text as written, raw newlines included) */
    CHECK_JSON(114, "{\"a\": [1, 2]}", "{\"a\":[1,2]}");
    CHECK_JSON(114, "{\n\t\"b\" : [1,\r\n 2],\n \"a\": \"x y\\n\\\" {\"\n}",
               "{\"b\":[1,2],\"a\":\"x y\\n\\\" {\"}");
    CHECK_JSON(3802, "{\"a\": [1, 2]}", "{\"a\":[1,2]}");
    CHECK_KIND(3802, "null", CDC_V_JSON);
    CHECK_JSON(869, "192.168.0.1/24", "\"192.168.0.1/24\"");
    CHECK_JSON(650, "10.0.0.0/8", "\"10.0.0.0/8\"");
    CHECK_JSON(829, "08:00:2b:01:02:03", "\"08:00:2b:01:02:03\"");
    /* unknown oid: text */
    CHECK_JSON(600, "(1,2)", "\"(1,2)\"");
    cdc_arena_destroy(&a);
}

CDC_TEST(value_arrays)
{
    cdc_arena_t a;
    cdc_arena_init(&a);
    CHECK_JSON(1007, "{1,2,3}", "[1,2,3]");
    CHECK_JSON(1007, "{}", "[]");
    CHECK_JSON(1007, "{{1,2},{3,NULL}}", "[[1,2],[3,null]]");
    CHECK_JSON(1007, "[0:1]={5,6}", "[5,6]");
    CHECK_JSON(1009, "{a,\"b c\",NULL,\"NULL\",\"q\\\"x\\\\\"}",
               "[\"a\",\"b c\",null,\"NULL\",\"q\\\"x\\\\\"]");
    CHECK_JSON(1231, "{1.5,NaN}", "[\"1.5\",\"NaN\"]");
    CHECK_JSON(1022, "{1.5,Infinity,-0}", "[1.5,\"Infinity\",-0]");
    CHECK_JSON(1000, "{t,f}", "[true,false]");
    CHECK_JSON(1001, "{\"\\\\x0102\"}", "[\"AQI=\"]");
    CHECK_JSON(1185, "{\"2024-01-02 03:04:05+00\"}",
               "[\"2024-01-02T03:04:05Z\"]");
    CHECK_JSON(3807, "{\"{\\\"a\\\": 1}\",\"[1]\"}", "[{\"a\":1},[1]]");
    CHECK_JSON(2951, "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
               "[\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"]");
    CHECK_BAD(1007, "{1,2");
    CHECK_BAD(1007, "{1,,2}");
    CHECK_BAD(1007, "{1,x}");
    CHECK_BAD(1007, "{1}}");
    CHECK_BAD(1009, "{\"abc}");
    CHECK_BAD(1007, "{{{{{{{{1}}}}}}}}");
    cdc_arena_destroy(&a);
}

/* Resolver for enum (70000), domain over int8 (70001), array of the enum
 * (70002), domain over domain (70003), composite (70004). */
static int resolver_calls;
static int test_resolve(void *opaque, uint32_t oid, cdc_pg_typeinfo_t *ti)
{
    (void)opaque;
    resolver_calls++;
    memset(ti, 0, sizeof(*ti));
    switch (oid) {
    case 70000: ti->typtype = 'e'; ti->typcategory = 'E'; return 0;
    case 70001: ti->typtype = 'd'; ti->basetype = 20; return 0;
    case 70002: ti->typtype = 'b'; ti->typcategory = 'A';
        ti->elemtype = 70000; return 0;
    case 70003: ti->typtype = 'd'; ti->basetype = 70001; return 0;
    case 70004: ti->typtype = 'c'; return 0;
    }
    return -1;
}

CDC_TEST(enums_domains_via_resolver)
{
    cdc_pgoutput_opts_t o = {.resolve_type = test_resolve};
    fx_t f;
    memset(&f, 0, sizeof(f));
    f.d = cdc_pgoutput_new(&o, 1);
    m_begin(&f.b, 1, 0, 1);
    feed(&f, 0);
    m_relation(&f.b, -1, 5, "public", "typed", 'd', 5,
               ATTS({"mood", 70000, 0}, {"d", 70001, 0}, {"moods", 70002, 0},
                    {"dd", 70003, 0}, {"comp", 70004, 0}));
    T_EQ_INT(feed(&f, 0), 0);
    m_insert(&f.b, -1, 5, 5, VALS("happy", "42", "{sad,\"very happy\"}",
                                  "-7", "(1,x)"));
    T_EQ_INT(feed(&f, 0), 0);
    m_insert(&f.b, -1, 5, 5, VALS("ok", "x", NULL, NULL, NULL));
    T_EQ_INT(feed(&f, 0), -1); /* "x" is not an int8 domain value */
    m_commit(&f.b, 1, 2, 0);
    T_EQ_INT(feed(&f, 0), 1);
    if (f.tx && f.tx->nchanges == 1) {
        cdc_value_t *v = f.tx->changes[0].after;
        T_EQ_STR(json_of(&v[0]), "\"happy\"");
        T_EQ_INT(v[1].kind, CDC_V_INT);
        T_EQ_INT(v[1].u.i, 42);
        T_EQ_STR(json_of(&v[2]), "[\"sad\",\"very happy\"]");
        T_EQ_INT(v[3].u.i, -7);
        T_EQ_STR(json_of(&v[4]), "\"(1,x)\"");
    } else {
        T_ASSERT(0);
    }
    int calls = resolver_calls;
    m_relation(&f.b, -1, 5, "public", "typed", 'd', 1,
               ATTS({"mood", 70000, 0}));
    T_EQ_INT(feed(&f, 0), 0);
    T_EQ_INT(resolver_calls, calls); /* cached */
    fx_done(&f);
}

/* on_relation may replace the identity flags with the real primary key. */
static void test_on_rel(void *opaque, cdc_table_t *t, char ident)
{
    (void)opaque;
    if (ident != 'f')
        return;
    for (uint32_t i = 0; i < t->ncols; i++)
        t->cols[i].flags &= ~(uint32_t)CDC_COL_PK;
    t->cols[0].flags |= CDC_COL_PK;
    t->npk = 1;
    t->pk[0] = 0;
}

CDC_TEST(on_relation_hook)
{
    cdc_pgoutput_opts_t o = {.on_relation = test_on_rel};
    fx_t f;
    memset(&f, 0, sizeof(f));
    f.d = cdc_pgoutput_new(&o, 1);
    m_relation(&f.b, -1, 3, "s", "full", 'f', 2,
               ATTS({"id", 23, 1}, {"a", 25, 1}));
    T_EQ_INT(feed(&f, 0), 0);
    cdc_table_t *t = cdc_pgoutput_table(f.d, 3);
    T_ASSERT(t && t->npk == 1 && !(t->cols[1].flags & CDC_COL_PK));
    T_ASSERT(cdc_pgoutput_table(f.d, 4) == NULL);
    fx_done(&f);
}

CDC_TEST(protocol_errors)
{
    fx_t f;
    fx_init(&f, 1);
    /* empty, unknown type, two-phase */
    cdc_buf_reset(&f.b);
    T_EQ_INT(cdc_pgoutput_feed(f.d, (const uint8_t *)"", 0, 0, &f.tx, &f.err),
             -1);
    cdc_buf_putc(&f.b, 'Z');
    T_EQ_INT(feed(&f, 0), -1);
    cdc_buf_reset(&f.b);
    cdc_buf_putc(&f.b, 'P');
    T_EQ_INT(feed(&f, 0), -1);
    /* insert outside a transaction */
    m_relation(&f.b, -1, 7, "public", "t", 'd', 1, ATTS({"id", 23, 1}));
    T_EQ_INT(feed(&f, 0), 0);
    m_insert(&f.b, -1, 7, 1, VALS("1"));
    T_EQ_INT(feed(&f, 0), -1);
    /* commit without begin */
    m_commit(&f.b, 1, 2, 0);
    T_EQ_INT(feed(&f, 0), -1);
    m_begin(&f.b, 1, 0, 5);
    T_EQ_INT(feed(&f, 0), 0);
    /* double begin */
    T_EQ_INT(feed(&f, 0), -1);
    /* unknown relation */
    m_insert(&f.b, -1, 8, 1, VALS("1"));
    T_EQ_INT(feed(&f, 0), -1);
    T_ASSERT(strstr(f.err.msg, "before its Relation") != NULL);
    /* binary column */
    cdc_buf_reset(&f.b);
    p8(&f.b, 'I');
    p32(&f.b, 7);
    p8(&f.b, 'N');
    p16(&f.b, 1);
    p8(&f.b, 'b');
    p32(&f.b, 4);
    p32(&f.b, 1);
    T_EQ_INT(feed(&f, 0), -1);
    /* bad int text names the column */
    m_insert(&f.b, -1, 7, 1, VALS("one"));
    T_EQ_INT(feed(&f, 0), -1);
    T_ASSERT(strstr(f.err.msg, "public.t.id") != NULL);
    /* trailing bytes */
    m_insert(&f.b, -1, 7, 1, VALS("1"));
    p8(&f.b, 0);
    T_EQ_INT(feed(&f, 0), -1);
    /* delete without K/O */
    cdc_buf_reset(&f.b);
    p8(&f.b, 'D');
    p32(&f.b, 7);
    p8(&f.b, 'N');
    ptuple(&f.b, 1, VALS("1"));
    T_EQ_INT(feed(&f, 0), -1);
    /* huge natts must not allocate wildly */
    cdc_buf_reset(&f.b);
    p8(&f.b, 'R');
    p32(&f.b, 9);
    pstr(&f.b, "s");
    pstr(&f.b, "t");
    p8(&f.b, 'd');
    p16(&f.b, 65535);
    T_EQ_INT(feed(&f, 0), -1);
    /* bad replica identity */
    m_relation(&f.b, -1, 9, "s", "t", 'x', 1, ATTS({"id", 23, 1}));
    T_EQ_INT(feed(&f, 0), -1);
    /* string without NUL */
    cdc_buf_reset(&f.b);
    p8(&f.b, 'O');
    p64(&f.b, 1);
    cdc_buf_put(&f.b, "abc", 3);
    T_EQ_INT(feed(&f, 0), -1);
    /* Message with wrong content length */
    cdc_buf_reset(&f.b);
    p8(&f.b, 'M');
    p8(&f.b, 0);
    p64(&f.b, 1);
    pstr(&f.b, "p");
    p32(&f.b, 100);
    T_EQ_INT(feed(&f, 0), -1);
    /* truncate with wrong count */
    cdc_buf_reset(&f.b);
    p8(&f.b, 'T');
    p32(&f.b, 0x40000000);
    p8(&f.b, 0);
    T_EQ_INT(feed(&f, 0), -1);
    /* the open transaction is still usable */
    m_insert(&f.b, -1, 7, 1, VALS("1"));
    T_EQ_INT(feed(&f, 0), 0);
    m_commit(&f.b, 1, 2, 0);
    T_EQ_INT(feed(&f, 0), 1);
    T_ASSERT(f.tx && f.tx->nchanges == 1);
    fx_done(&f);
}

/* Every prefix of every valid message is rejected cleanly; random bit
 * flips never crash (the fuzz target does this at scale). */
CDC_TEST(truncated_and_garbage)
{
    cdc_buf_t msgs[8];
    int nm = 0;
    cdc_buf_t b = CDC_BUF_INIT;
    memset(msgs, 0, sizeof(msgs));
    m_begin(&b, 1, 2, 3);
    cdc_buf_put(&msgs[nm++], b.p, b.len);
    m_relation(&b, -1, 7, "public", "t", 'd', 3,
               ATTS({"id", 23, 1}, {"a", 1009, 0}, {"b", 1184, 0}));
    cdc_buf_put(&msgs[nm++], b.p, b.len);
    m_insert(&b, -1, 7, 3, VALS("1", "{a,b}", "2024-01-01 00:00:00+00"));
    cdc_buf_put(&msgs[nm++], b.p, b.len);
    cdc_buf_reset(&b);
    p8(&b, 'U');
    p32(&b, 7);
    p8(&b, 'O');
    ptuple(&b, 3, VALS("1", UNCH, NULL));
    p8(&b, 'N');
    ptuple(&b, 3, VALS("1", "{}", NULL));
    cdc_buf_put(&msgs[nm++], b.p, b.len);
    m_commit(&b, 1, 2, 3);
    cdc_buf_put(&msgs[nm++], b.p, b.len);

    int crashes = 0;
    for (int m = 0; m < nm; m++) {
        for (size_t cut = 0; cut < msgs[m].len; cut++) {
            cdc_pgoutput_t *d = cdc_pgoutput_new(NULL, 2);
            cdc_txn_t *tx = NULL;
            cdc_err_t err;
            for (int k = 0; k < m; k++) {
                cdc_pgoutput_feed(d, (const uint8_t *)msgs[k].p, msgs[k].len,
                                  0, &tx, &err);
                cdc_txn_destroy(tx);
                tx = NULL;
            }
            int rc = cdc_pgoutput_feed(d, (const uint8_t *)msgs[m].p, cut, 0,
                                       &tx, &err);
            if (rc != -1) {
                printf("# msg %d cut %zu accepted\n", m, cut);
                crashes++;
            }
            cdc_txn_destroy(tx);
            cdc_pgoutput_destroy(d);
        }
    }
    T_EQ_INT(crashes, 0);

    /* bit flips: just must not crash or leak (ASan build) */
    uint32_t seed = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        cdc_pgoutput_t *d = cdc_pgoutput_new(NULL, 2);
        for (int m = 0; m < nm; m++) {
            char tmp[256];
            size_t n = msgs[m].len < sizeof(tmp) ? msgs[m].len : sizeof(tmp);
            memcpy(tmp, msgs[m].p, n);
            seed = seed * 1103515245u + 12345u;
            if ((seed >> 16) % 2)
                tmp[(seed >> 8) % n] ^= (char)(1u << ((seed >> 4) % 8));
            cdc_txn_t *tx = NULL;
            cdc_err_t err;
            cdc_pgoutput_feed(d, (const uint8_t *)tmp, n, 0, &tx, &err);
            cdc_txn_destroy(tx);
        }
        cdc_pgoutput_destroy(d);
    }
    for (int m = 0; m < nm; m++)
        cdc_buf_free(&msgs[m]);
    cdc_buf_free(&b);
}

int main(void)
{
    cdc_log_set_level(CDC_LOG_ERROR); /* the unknown-type warnings */
    return cdc_test_run();
}

/* Big transactions: a streamed one spilled past work_mem (every change
 * here), a subtransaction aborted after its changes were spilled, read
 * back at Stream Commit in fragments of 2 changes with every value kind
 * intact; the spill file is gone afterwards.  A non-streamed one comes in
 * fragments as its changes arrive. */
/* A spill record whose op byte (or image flags) is not one the writer
 * produces is a damaged file: an error naming it, never a change. */
CDC_TEST(spill_damaged_op)
{
    for (int variant = 0; variant < 2; variant++) {
        char dir[] = "/tmp/t_pgoutput_spill.XXXXXX", prefix[64], path[96];
        cdc_pgoutput_opts_t o = {0};
        fx_t f;
        FILE *fp;

        T_ASSERT(mkdtemp(dir) != NULL);
        snprintf(prefix, sizeof(prefix), "%s/p.spill", dir);
        snprintf(path, sizeof(path), "%s.100", prefix);
        o.frag_rows = 2;
        o.work_mem = 1;
        o.spill_prefix = prefix;
        memset(&f, 0, sizeof(f));
        f.d = cdc_pgoutput_new(&o, 2);
        stream_start(&f, 100, 1);
        T_EQ_INT(feed(&f, 0), 0);
        m_relation(&f.b, 100, 7, "public", "t", 'd', 2,
                   ATTS({"id", 23, 1}, {"s", 25, 0}));
        T_EQ_INT(feed(&f, 0), 0);
        /* past stdio's buffer, so the first record is on disk while
         * the writer still holds the file open */
        for (int i = 1; i <= 300; i++) {
            char id[16];
            snprintf(id, sizeof(id), "%d", i);
            m_insert(&f.b, 100, 7, 2,
                     VALS(id, "0123456789012345678901234567890123456789"));
            T_EQ_INT(feed(&f, 0x10 + (uint64_t)i), 0);
        }
        stream_stop(&f);
        T_EQ_INT(feed(&f, 0), 0);
        fp = fopen(path, "r+b");
        T_ASSERT(fp != NULL);
        if (!fp)
            return;
        /* record: 4-byte length, op, table (4), pos (8), row (4), sub (4),
         * image flags */
        fseek(fp, variant ? 4 + 1 + 4 + 8 + 4 + 4 : 4, SEEK_SET);
        fputc(variant ? 1 : 'x', fp); /* an insert without its after image */
        fclose(fp);
        cdc_buf_reset(&f.b);
        p8(&f.b, 'c');
        p32(&f.b, 100);
        p8(&f.b, 0);
        p64(&f.b, 0x600);
        p64(&f.b, 0x610);
        p64(&f.b, 5);
        T_EQ_INT(feed(&f, 0), -1);
        T_ASSERT(strstr(f.err.msg, "damaged") != NULL);
        T_ASSERT(f.tx == NULL);
        fx_done(&f);
        unlink(path);
        rmdir(dir);
    }
}

CDC_TEST(spill_and_fragments)
{
    char dir[] = "/tmp/t_pgoutput_spill.XXXXXX", prefix[64], path[96];
    cdc_pgoutput_opts_t o = {0};
    fx_t f;
    int ids[8], n = 0, frags = 0, more = 1;

    T_ASSERT(mkdtemp(dir) != NULL);
    snprintf(prefix, sizeof(prefix), "%s/p.spill", dir);
    snprintf(path, sizeof(path), "%s.100", prefix);
    o.frag_rows = 2;
    o.work_mem = 1;
    o.spill_prefix = prefix;
    memset(&f, 0, sizeof(f));
    f.d = cdc_pgoutput_new(&o, 2);
    stream_start(&f, 100, 1);
    T_EQ_INT(feed(&f, 0), 0);
    m_relation(&f.b, 100, 7, "public", "t", 'd', 3,
               ATTS({"id", 23, 1}, {"s", 25, 0}, {"f", 701, 0}));
    T_EQ_INT(feed(&f, 0), 0);
    m_insert(&f.b, 100, 7, 3, VALS("1", "a\tb", "1.5"));
    T_EQ_INT(feed(&f, 0x10), 0);
    m_insert(&f.b, 101, 7, 3, VALS("2", "gone", "2"));
    T_EQ_INT(feed(&f, 0x20), 0);
    m_insert(&f.b, 100, 7, 3, VALS("3", NULL, "-0.25"));
    T_EQ_INT(feed(&f, 0x30), 0);
    stream_stop(&f);
    T_EQ_INT(feed(&f, 0), 0);
    T_ASSERT(access(path, F_OK) == 0);
    /* subtransaction 101 aborts after it was spilled */
    cdc_buf_reset(&f.b);
    p8(&f.b, 'A');
    p32(&f.b, 100);
    p32(&f.b, 101);
    T_EQ_INT(feed(&f, 0), 0);
    stream_start(&f, 100, 0);
    T_EQ_INT(feed(&f, 0), 0);
    m_insert(&f.b, 100, 7, 3, VALS("4", "", "0"));
    T_EQ_INT(feed(&f, 0x40), 0);
    m_insert(&f.b, 100, 7, 3, VALS("5", "e", "1e300"));
    T_EQ_INT(feed(&f, 0x50), 0);
    stream_stop(&f);
    T_EQ_INT(feed(&f, 0), 0);
    cdc_buf_reset(&f.b);
    p8(&f.b, 'c');
    p32(&f.b, 100);
    p8(&f.b, 0);
    p64(&f.b, 0x600);
    p64(&f.b, 0x610);
    p64(&f.b, 5);
    T_EQ_INT(feed(&f, 0), 1);
    while (f.tx) {
        T_EQ_INT(f.tx->frag, (uint32_t)frags);
        T_EQ_INT(f.tx->xid, 100);
        T_EQ_INT(f.tx->pos.lsn, f.tx->more ? 0x600 : 0x610);
        T_ASSERT(f.tx->nchanges <= 2);
        for (uint32_t i = 0; i < f.tx->nchanges && n < 8; i++) {
            const cdc_value_t *a = f.tx->changes[i].after;
            ids[n++] = (int)a[0].u.i;
            if (a[0].u.i == 1) {
                T_EQ_INT(a[1].kind, CDC_V_STRING);
                T_EQ_INT(a[1].len, 3);
                T_ASSERT(!memcmp(a[1].s, "a\tb", 4));
                T_ASSERT(a[2].u.d == 1.5);
                T_EQ_INT(f.tx->changes[i].pos, 0x10);
            }
            if (a[0].u.i == 3)
                T_EQ_INT(a[1].kind, CDC_V_NULL);
            if (a[0].u.i == 5)
                T_ASSERT(a[2].u.d == 1e300);
        }
        frags++;
        more = f.tx->more;
        cdc_txn_destroy(f.tx);
        f.tx = NULL;
        if (!more)
            break;
        T_EQ_INT(cdc_pgoutput_next(f.d, &f.tx, &f.err), 1);
    }
    T_EQ_INT(more, 0);
    T_EQ_INT(n, 4);
    T_ASSERT(n == 4 && ids[0] == 1 && ids[1] == 3 && ids[2] == 4 &&
             ids[3] == 5);
    T_ASSERT(frags >= 2);
    T_ASSERT(access(path, F_OK) != 0);
    T_ASSERT(!cdc_pgoutput_busy(f.d));
    /* non-streamed: fragments as the changes arrive */
    m_begin(&f.b, 0x700, 7, 300);
    T_EQ_INT(feed(&f, 0), 0);
    m_insert(&f.b, -1, 7, 3, VALS("6", "x", "1"));
    T_EQ_INT(feed(&f, 0x70), 0);
    m_insert(&f.b, -1, 7, 3, VALS("7", "y", "2"));
    T_EQ_INT(feed(&f, 0x71), 1);
    T_ASSERT(f.tx && f.tx->more && f.tx->frag == 0 && f.tx->nchanges == 2 &&
             f.tx->pos.lsn == 0x700);
    m_insert(&f.b, -1, 7, 3, VALS("8", "z", "3"));
    T_EQ_INT(feed(&f, 0x72), 0);
    m_commit(&f.b, 0x700, 0x710, 7);
    T_EQ_INT(feed(&f, 0), 1);
    T_ASSERT(f.tx && !f.tx->more && f.tx->frag == 1 && f.tx->nchanges == 1 &&
             f.tx->pos.lsn == 0x710 && !f.tx->skipped);
    fx_done(&f);
    rmdir(dir);
}
