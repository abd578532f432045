/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_binlog_decode.c - binlog decoder behaviour on the recorded fixtures:
 * checksums, table-map metadata, row images, transaction grouping (XA,
 * DDL, rollback), compressed events, TRANSACTION_PAYLOAD, GTID state,
 * start offsets.  Hermetic: fixtures are read in place from
 * $CDC_FIXTURES/binlog.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/log.h"
#include "connectors/mysql/binlog.h"
#include "tests/unit/cdc_test.h"

static char *fx(const char *rel)
{
    static char buf[8][1100];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, 1100, "%s/binlog/%s", cdc_test_fixtures(), rel);
    return b;
}

typedef struct txns {
    cdc_txn_t **v;
    size_t n;
} txns_t;

static int collect(void *opaque, cdc_txn_t *tx, cdc_err_t *err)
{
    (void)err;
    txns_t *t = opaque;
    t->v = realloc(t->v, (t->n + 1) * sizeof(*t->v));
    t->v[t->n++] = tx;
    return 0;
}

static void txns_free(txns_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        cdc_txn_destroy(t->v[i]);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

/* decode a fixture; returns read_file's rc */
static int decode(const char *rel, uint64_t start, txns_t *t,
                  cdc_pos_t *pos, cdc_err_t *err)
{
    cdc_binlog_t *bl = cdc_binlog_new(NULL);
    memset(err, 0, sizeof(*err));
    int rc = cdc_binlog_read_file(bl, fx(rel), start, collect, t, err);
    if (pos)
        *pos = *cdc_binlog_pos(bl);
    cdc_binlog_destroy(bl);
    return rc;
}

static size_t nchanges(const txns_t *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        n += t->v[i]->nchanges;
    return n;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)sz);
    if (fread(p, 1, (size_t)sz, f) != (size_t)sz) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return p;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Feed an in-memory file event by event; returns the offset of the
 * failing event or 0 when all decoded. */
static uint64_t feed_all(cdc_binlog_t *bl, const uint8_t *p, size_t n,
                         cdc_err_t *err)
{
    uint64_t off = 4;
    while (off + 19 <= n) {
        uint32_t sz = le32(p + off + 9);
        cdc_txn_t *tx = NULL;
        if (cdc_binlog_feed(bl, p + off, sz, off, &tx, err) < 0)
            return off;
        cdc_txn_destroy(tx);
        off += sz;
    }
    return 0;
}

static const cdc_table_t *find_table(const txns_t *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        for (uint32_t k = 0; k < t->v[i]->nchanges; k++)
            if (!strcmp(t->v[i]->changes[k].tbl->name, name))
                return t->v[i]->changes[k].tbl;
    return NULL;
}

static int col_index(const cdc_table_t *tb, const char *name)
{
    for (uint32_t i = 0; i < tb->ncols; i++)
        if (!strcmp(tb->cols[i].name, name))
            return (int)i;
    return -1;
}

/* ---- checksums ---------------------------------------------------------- */

CDC_TEST(crc_mismatch_detected)
{
    size_t n;
    uint8_t *p = slurp(fx("mariadb-10.11/01_types.binlog"), &n);
    T_ASSERT(p != NULL);
    if (!p)
        return;
    /* third event: the BINLOG_CHECKPOINT at 299 (after FDE, GTID_LIST) */
    uint64_t victim = 4 + le32(p + 4 + 9);
    victim += le32(p + victim + 9);
    p[victim + 25] ^= 0x40;
    cdc_err_t err;
    cdc_binlog_t *bl = cdc_binlog_new(NULL);
    T_EQ_INT(feed_all(bl, p, n, &err), victim);
    T_ASSERT(strstr(err.msg, "CRC32 checksum mismatch") != NULL);
    char offs[32];
    snprintf(offs, sizeof(offs), "offset %" PRIu64, victim);
    T_ASSERT(strstr(err.msg, offs) != NULL);
    T_EQ_INT(err.code, CDC_EXIT_DATA);
    cdc_binlog_destroy(bl);

    /* verification off: the damaged event passes */
    cdc_binlog_opts_t o = {.verify_checksum = 0};
    bl = cdc_binlog_new(&o);
    T_EQ_INT(feed_all(bl, p, n, &err), 0);
    cdc_binlog_destroy(bl);

    /* a damaged FDE is caught too (its CRC is computed with the in-use
     * flag cleared) */
    p[victim + 25] ^= 0x40;
    p[4 + 30] ^= 0x01;
    bl = cdc_binlog_new(NULL);
    T_EQ_INT(feed_all(bl, p, n, &err), 4);
    T_ASSERT(strstr(err.msg, "FORMAT_DESCRIPTION") != NULL);
    cdc_binlog_destroy(bl);
    free(p);
}

CDC_TEST(fde_in_use_flag_crc)
{
    /* FDEs with LOG_EVENT_BINLOG_IN_USE_F set still verify */
    txns_t t = {0};
    cdc_err_t err;
    T_EQ_INT(decode("rust_mysql_common/mariadb-bin.000001", 0, &t, NULL,
                    &err), 0);
    T_ASSERT(nchanges(&t) > 0);
    txns_free(&t);
}

CDC_TEST(checksum_none)
{
    txns_t a = {0}, b = {0};
    cdc_err_t err;
    cdc_binlog_t *bl = cdc_binlog_new(NULL);
    T_EQ_INT(cdc_binlog_checksum_alg(bl), -1);
    T_EQ_INT(cdc_binlog_read_file(
                 bl, fx("mariadb-10.11/21_row_images_checksum_none.binlog"),
                 0, collect, &a, &err),
             0);
    T_EQ_INT(cdc_binlog_checksum_alg(bl), 0);
    T_EQ_INT(cdc_binlog_is_mariadb(bl), 1);
    cdc_binlog_destroy(bl);
    T_EQ_INT(decode("mariadb-10.11/03_row_images.binlog", 0, &b, NULL, &err),
             0);
    T_ASSERT(nchanges(&a) > 0);
    T_EQ_INT(nchanges(&a), nchanges(&b));
    txns_free(&a);
    txns_free(&b);

    T_EQ_INT(decode("mysql-binlog-connector-java/mysql-bin.checksum-none", 0,
                    &a, NULL, &err),
             0);
    T_EQ_INT(nchanges(&a), 36); /* 36 rows events, one row each */
    T_EQ_STR(a.v[0]->connector, "mysql");
    txns_free(&a);
}

/* ---- TABLE_MAP metadata --------------------------------------------------- */

CDC_TEST(table_map_metadata)
{
    txns_t t = {0};
    cdc_err_t err;
    T_EQ_INT(decode("mariadb-10.11/01_types.binlog", 0, &t, NULL, &err), 0);
    const cdc_table_t *m = find_table(&t, "t_misc");
    T_ASSERT(m != NULL);
    if (!m)
        return;
    T_EQ_STR(m->db, "cdc_fixture");
    T_EQ_STR(m->cols[0].name, "id");
    T_EQ_INT(m->npk, 1);
    T_EQ_INT(m->pk[0], 0);
    T_ASSERT(m->cols[0].flags & CDC_COL_PK);
    T_ASSERT(m->cols[0].flags & CDC_COL_UNSIGNED);
    T_ASSERT(!(m->cols[0].flags & CDC_COL_NULLABLE));
    int e = col_index(m, "c_enum");
    T_ASSERT(e > 0);
    if (e > 0) {
        T_EQ_INT(m->cols[e].type, 247);
        T_EQ_INT(m->cols[e].meta, 1);
        T_EQ_INT(m->cols[e].nmembers, 4);
        T_EQ_STR(m->cols[e].members[2], "large");
        T_ASSERT(m->cols[e].flags & CDC_COL_NULLABLE);
    }
    int eb = col_index(m, "c_enum_big");
    T_ASSERT(eb > 0);
    if (eb > 0) {
        T_EQ_INT(m->cols[eb].meta, 2);
        T_EQ_INT(m->cols[eb].nmembers, 260);
        T_EQ_STR(m->cols[eb].members[259], "v259");
    }
    int s = col_index(m, "c_set");
    T_ASSERT(s > 0);
    if (s > 0) {
        T_EQ_INT(m->cols[s].type, 248);
        T_EQ_INT(m->cols[s].meta, 2);
        T_EQ_INT(m->cols[s].nmembers, 9);
        T_EQ_STR(m->cols[s].members[8], "i");
    }
    int b = col_index(m, "c_bit13");
    T_ASSERT(b > 0);
    if (b > 0) {
        T_EQ_INT(m->cols[b].type, 16);
        T_EQ_INT(m->cols[b].meta, 13);
    }
    int pt = col_index(m, "c_point");
    T_ASSERT(pt > 0);
    if (pt > 0) {
        T_EQ_INT(m->cols[pt].type, 255);
        T_EQ_INT(m->cols[pt].extra, 1); /* POINT */
    }
    int u = col_index(m, "c_uuid");
    T_ASSERT(u > 0);
    if (u > 0) {
        T_EQ_INT(m->cols[u].type, 254);
        T_EQ_INT(m->cols[u].meta, 16);
        T_ASSERT(m->cols[u].flags & CDC_COL_BINARY);
    }
    int j = col_index(m, "c_json");
    T_ASSERT(j > 0);
    if (j > 0) {
        T_EQ_INT(m->cols[j].type, 252);
        T_EQ_INT(m->cols[j].charset, 46); /* utf8mb4_bin */
    }
    /* GEOMETRY columns count in the charset TLV (binary): every character
     * column after them keeps its own charset */
    for (uint32_t i = 0; i < m->ncols; i++) {
        if (m->cols[i].type == 255)
            T_EQ_INT(m->cols[i].charset, 63);
        if (i > (uint32_t)pt && m->cols[i].type == 254)
            T_EQ_INT(m->cols[i].charset, 63); /* UUID, INET6 */
    }

    const cdc_table_t *n = find_table(&t, "t_numeric");
    T_ASSERT(n != NULL);
    if (n) {
        int k = 0;
        for (uint32_t i = 0; i < n->ncols; i++)
            k += (n->cols[i].flags & CDC_COL_UNSIGNED) != 0;
        T_ASSERT(k >= 5);
        for (uint32_t i = 0; i < n->ncols; i++)
            if (n->cols[i].type == 246)
                T_ASSERT((n->cols[i].meta >> 8) >= 5);
    }
    const cdc_table_t *st = find_table(&t, "t_string");
    T_ASSERT(st != NULL);
    if (st) {
        int vc = -1;
        for (uint32_t i = 0; i < st->ncols; i++)
            if (st->cols[i].type == 15 && st->cols[i].meta > 255)
                vc = (int)i;
        T_ASSERT(vc >= 0); /* VARCHAR(1000) meta in bytes */
    }
    txns_free(&t);
}

CDC_TEST(table_map_mysql8_metadata)
{
    txns_t t = {0};
    cdc_err_t err;
    /* MySQL 9 VECTOR dimensionality */
    T_EQ_INT(decode("rust_mysql_common/vector.binlog", 0, &t, NULL, &err), 0);
    const cdc_table_t *bar = find_table(&t, "bar");
    T_ASSERT(bar != NULL);
    if (bar) {
        int dims[2], k = 0;
        for (uint32_t i = 0; i < bar->ncols && k < 2; i++)
            if (bar->cols[i].type == 242)
                dims[k++] = (int)bar->cols[i].extra;
        T_EQ_INT(k, 2);
        T_EQ_INT(dims[0], 2);
        T_EQ_INT(dims[1], 4);
        /* VECTOR is a character column (binary) in the charset TLV: the
         * TEXT after it keeps utf8mb4_0900_ai_ci, and its value is text */
        int foo = col_index(bar, "foo");
        T_ASSERT(foo > 0);
        if (foo > 0) {
            T_EQ_INT(bar->cols[foo].charset, 255);
            T_EQ_INT(bar->cols[1].charset, 63);
            for (size_t i = 0; i < t.n; i++)
                for (uint32_t c = 0; c < t.v[i]->nchanges; c++) {
                    const cdc_change_t *ch = &t.v[i]->changes[c];
                    if (ch->tbl != bar || !ch->after ||
                        ch->after[foo].kind == CDC_V_NULL)
                        continue;
                    T_EQ_INT(ch->after[foo].kind, CDC_V_STRING);
                    T_EQ_STR(ch->after[foo].s, "bar");
                }
        }
    }
    txns_free(&t);
    /* MINIMAL metadata: no names, signedness only from SIGNEDNESS */
    T_EQ_INT(decode("rust_mysql_common/minimal_row_metadata.000001", 0, &t,
                    NULL, &err),
             0);
    T_ASSERT(t.n > 0);
    for (size_t i = 0; i < t.n; i++)
        for (uint32_t k = 0; k < t.v[i]->nchanges; k++) {
            const cdc_change_t *c = &t.v[i]->changes[k];
            T_EQ_STR(c->tbl->cols[0].name, "@1");
            T_EQ_INT(c->tbl->cols[1].charset, 63); /* BLOB */
            T_ASSERT(c->tbl->cols[1].flags & CDC_COL_BINARY);
            T_EQ_INT(c->tbl->cols[2].charset, 255);
            T_ASSERT(c->tbl->cols[4].flags & CDC_COL_UNSIGNED);
            T_ASSERT(!(c->tbl->cols[3].flags & CDC_COL_UNSIGNED));
            const cdc_value_t *v = c->after ? c->after : c->before;
            T_EQ_INT(v[1].kind, CDC_V_ABSENT);
            T_EQ_INT(v[3].kind, CDC_V_ABSENT);
            T_EQ_INT(v[4].kind, CDC_V_UINT);
            if (v[4].kind == CDC_V_UINT)
                T_EQ_INT(v[4].u.u, 3230202323u);
        }
    txns_free(&t);
}

/* ---- charset metadata, generated ----------------------------------------- */

/* Column classes of the generator; the charset TLVs list one entry per
 * "character" column in the server's own way (see is_char() in the
 * decoder), so a class it miscounts shifts every later column. */
enum { G_CHAR, G_VARCHAR, G_TEXT, G_ENUM, G_SET, G_GEOM, G_JSON, G_BIT, G_INT,
       G_BLOB, G_NCLASS };

typedef struct gcol {
    int cls;
    uint16_t cs; /* collation */
    int null;
} gcol_t;


static void put_le(cdc_buf_t *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        cdc_buf_putc(b, (char)(v >> (8 * i)));
}

static void put_lenenc(cdc_buf_t *b, uint64_t v)
{
    if (v < 251) {
        cdc_buf_putc(b, (char)v);
    } else {
        cdc_buf_putc(b, (char)0xfc);
        put_le(b, v, 2);
    }
}

/* UTF-8 text (ASCII and U+00E9 only) in the collation's charset: 8 latin1,
 * 35 ucs2, anything else (UTF-8, binary) as it is. */
static void put_text(cdc_buf_t *b, uint16_t cs, const char *utf8)
{
    for (const unsigned char *p = (const unsigned char *)utf8; *p; p++) {
        uint32_t c = *p;
        if (c == 0xc3) /* the only two-byte character used: U+00E9 */
            c = 0xe9, p++;
        if (cs == 35)
            cdc_buf_putc(b, 0);
        if (cs == 8 || cs == 35 || c < 0x80)
            cdc_buf_putc(b, (char)c);
        else
            cdc_buf_put(b, "\xc3\xa9", 2);
    }
}

static const char *const gmembers[] = {"a", "\xc3\xa9", "zz"};

/* One event: header, body, 4 checksum bytes (not verified). */
static int gfeed(cdc_binlog_t *bl, uint8_t type, const cdc_buf_t *body,
                 cdc_txn_t **tx, cdc_err_t *err)
{
    cdc_buf_t ev = CDC_BUF_INIT;
    int rc;
    put_le(&ev, 1700000000, 4);
    cdc_buf_putc(&ev, (char)type);
    put_le(&ev, 1, 4);
    put_le(&ev, 19 + body->len + 4, 4);
    put_le(&ev, 0, 4);
    put_le(&ev, 0, 2);
    if (body->len)
        cdc_buf_put(&ev, body->p, body->len);
    put_le(&ev, 0, 4);
    rc = cdc_binlog_feed(bl, (const uint8_t *)ev.p, ev.len, 5000, tx, err);
    cdc_buf_free(&ev);
    return rc;
}

/* The TABLE_MAP and WRITE_ROWS of one generated table, in MariaDB's form
 * (JSON is a LONGTEXT, ROWS v1) or MySQL 8's (binary JSON 245, ROWS v2). */
static void gen_events(const gcol_t *c, int n, int mariadb, cdc_buf_t *tm,
                       cdc_buf_t *wr)
{
    cdc_buf_t meta = CDC_BUF_INIT, tlv = CDC_BUF_INIT, v = CDC_BUF_INIT;
    uint16_t chars[64];
    int nchar = 0, nes = 0;
    uint16_t es[64];

    put_le(tm, 4242, 6);
    put_le(tm, 1, 2);
    cdc_buf_putc(tm, 2);
    cdc_buf_put(tm, "db", 3);
    cdc_buf_putc(tm, 1);
    cdc_buf_put(tm, "t", 2);
    put_lenenc(tm, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        static const uint8_t ty[G_NCLASS] = {254, 15, 252, 254, 254,
                                             255, 245, 16, 3, 252};
        uint8_t t = ty[c[i].cls];
        if (c[i].cls == G_JSON && mariadb)
            t = 252;
        cdc_buf_putc(tm, (char)t);
        switch (c[i].cls) {
        case G_CHAR: cdc_buf_put(&meta, "\xfe\x3c", 2); break;
        case G_VARCHAR: put_le(&meta, 60, 2); break;
        case G_TEXT: case G_BLOB: cdc_buf_putc(&meta, 2); break;
        case G_ENUM: cdc_buf_put(&meta, "\xf7\x01", 2); break;
        case G_SET: cdc_buf_put(&meta, "\xf8\x01", 2); break;
        case G_GEOM: case G_JSON: cdc_buf_putc(&meta, 4); break;
        case G_BIT: cdc_buf_put(&meta, "\x00\x01", 2); break;
        default: break;
        }
        /* what the servers count as character columns */
        if (c[i].cls <= G_TEXT || c[i].cls == G_BLOB || c[i].cls == G_GEOM ||
            (c[i].cls == G_JSON && mariadb))
            chars[nchar++] = c[i].cs;
        if (c[i].cls == G_ENUM || c[i].cls == G_SET)
            es[nes++] = c[i].cs;
    }
    put_lenenc(tm, meta.len);
    if (meta.len)
        cdc_buf_put(tm, meta.p, meta.len);
    for (int i = 0; i < (n + 7) / 8; i++)
        cdc_buf_putc(tm, (char)0xff);
    /* charsets: the (default, exceptions) form or one per column, as the
     * server picks the shorter; both are generated here */
    for (int k = 0; k < 2; k++) {
        const uint16_t *cs = k ? es : chars;
        int cnt = k ? nes : nchar, byc = cdc_test_rand(2);
        if (!cnt)
            continue;
        cdc_buf_reset(&v);
        if (byc) {
            for (int i = 0; i < cnt; i++)
                put_lenenc(&v, cs[i]);
        } else {
            uint16_t def = cs[cdc_test_rand((uint32_t)cnt)];
            put_lenenc(&v, def);
            for (int i = 0; i < cnt; i++)
                if (cs[i] != def) {
                    put_lenenc(&v, (uint64_t)i);
                    put_lenenc(&v, cs[i]);
                }
        }
        cdc_buf_putc(&tlv, (char)(k ? (byc ? 11 : 10) : (byc ? 3 : 2)));
        put_lenenc(&tlv, v.len);
        if (v.len)
            cdc_buf_put(&tlv, v.p, v.len);
    }
    /* member names (ENUM_STR_VALUE 6, SET_STR_VALUE 5) in their charsets */
    for (int k = 5; k <= 6; k++) {
        cdc_buf_reset(&v);
        for (int i = 0; i < n; i++) {
            if (c[i].cls != (k == 6 ? G_ENUM : G_SET))
                continue;
            put_lenenc(&v, 3);
            for (int m = 0; m < 3; m++) {
                cdc_buf_t t = CDC_BUF_INIT;
                put_text(&t, c[i].cs, gmembers[m]);
                put_lenenc(&v, t.len);
                if (t.len)
                    cdc_buf_put(&v, t.p, t.len);
                cdc_buf_free(&t);
            }
        }
        if (!v.len)
            continue;
        cdc_buf_putc(&tlv, (char)k);
        put_lenenc(&tlv, v.len);
        if (v.len)
            cdc_buf_put(&tlv, v.p, v.len);
    }
    if (tlv.len)
        cdc_buf_put(tm, tlv.p, tlv.len);

    /* one row: every column present */
    put_le(wr, 4242, 6);
    put_le(wr, 1, 2); /* STMT_END_F */
    if (!mariadb)
        put_le(wr, 2, 2); /* v2: no extra row info */
    put_lenenc(wr, (uint64_t)n);
    for (int i = 0; i < (n + 7) / 8; i++)
        cdc_buf_putc(wr, (char)0xff);
    for (int i = 0; i < (n + 7) / 8; i++) {
        uint8_t nb = 0;
        for (int b = 0; b < 8 && i * 8 + b < n; b++)
            if (c[i * 8 + b].null)
                nb |= (uint8_t)(1u << b);
        cdc_buf_putc(wr, (char)nb);
    }
    for (int i = 0; i < n; i++) {
        cdc_buf_t t = CDC_BUF_INIT;
        if (c[i].null)
            continue;
        switch (c[i].cls) {
        case G_CHAR: case G_VARCHAR:
            put_text(&t, c[i].cs, "x\xc3\xa9");
            cdc_buf_putc(wr, (char)t.len);
            break;
        case G_TEXT: case G_BLOB:
            put_text(&t, c[i].cs, "x\xc3\xa9");
            put_le(wr, t.len, 2);
            break;
        case G_JSON: /* MariaDB only: a LONGTEXT */
            cdc_buf_puts(&t, "[1]");
            put_le(wr, t.len, 4);
            break;
        case G_ENUM: cdc_buf_putc(wr, 2); break;
        case G_SET: cdc_buf_putc(wr, 5); break;
        case G_INT: put_le(wr, (uint64_t)i, 4); break;
        default: break;
        }
        if (t.len)
            cdc_buf_put(wr, t.p, t.len);
        cdc_buf_free(&t);
    }
    cdc_buf_free(&meta);
    cdc_buf_free(&tlv);
    cdc_buf_free(&v);
}

/* Random column orders of every class with latin1, utf8mb4, ucs2 and binary
 * charsets, both charset TLV forms, in MariaDB's and MySQL 8's metadata
 * forms: every value decodes to the text (or bytes) that was written. */
CDC_TEST(charset_metadata_generated)
{
    static const struct { const char *file; uint64_t fde, gtid, begin, xid; }
        srv[2] = {{"rust_mysql_common/json.binlog.000001", 4, 845, 924, 1164},
                  {"mariadb-10.11/04_gtid_domains.binlog", 4, 1013, 0, 1219}};
    for (int mariadb = 0; mariadb < 2; mariadb++) {
        size_t fn;
        uint8_t *f = slurp(fx(srv[mariadb].file), &fn);
        T_ASSERT(f != NULL);
        if (!f)
            continue;
        for (int round = 0; round < 300; round++) {
            static const uint16_t text_cs[2][4] = {{8, 255, 35, 63},
                                                   {8, 45, 35, 63}};
            gcol_t c[24];
            int n = 1 + (int)cdc_test_rand(24);
            cdc_buf_t tm = CDC_BUF_INIT, wr = CDC_BUF_INIT;
            cdc_binlog_opts_t o = {.verify_checksum = 0};
            cdc_binlog_t *bl = cdc_binlog_new(&o);
            cdc_txn_t *tx = NULL;
            cdc_err_t err = {0};
            int rc = 0;

            for (int i = 0; i < n; i++) {
                c[i].cls = (int)cdc_test_rand(G_NCLASS);
                c[i].cs = text_cs[mariadb][cdc_test_rand(c[i].cls <= G_TEXT ? 4 : 3)];
                if (c[i].cls == G_GEOM || c[i].cls == G_BLOB)
                    c[i].cs = 63;
                if (c[i].cls == G_JSON)
                    c[i].cs = mariadb ? 46 : 63;
                c[i].null = c[i].cls == G_GEOM || c[i].cls == G_BIT ||
                            (c[i].cls == G_JSON && !mariadb) || !cdc_test_rand(8);
            }
            gen_events(c, n, mariadb, &tm, &wr);
            uint64_t offs[] = {srv[mariadb].fde, srv[mariadb].gtid,
                               srv[mariadb].begin};
            for (int k = 0; k < 3 && rc >= 0; k++)
                if (offs[k])
                    rc = cdc_binlog_feed(bl, f + offs[k], le32(f + offs[k] + 9),
                                         offs[k], &tx, &err);
            if (rc >= 0)
                rc = gfeed(bl, 19, &tm, &tx, &err);
            if (rc >= 0)
                rc = gfeed(bl, mariadb ? 23 : 30, &wr, &tx, &err);
            if (rc >= 0)
                rc = cdc_binlog_feed(bl, f + srv[mariadb].xid,
                                     le32(f + srv[mariadb].xid + 9),
                                     srv[mariadb].xid, &tx, &err);
            if (rc < 0)
                printf("# %s round %d: %s\n", mariadb ? "mariadb" : "mysql",
                       round, err.msg);
            T_ASSERT(rc >= 0);
            T_ASSERT(tx && tx->nchanges == 1);
            for (int i = 0; rc >= 0 && tx && tx->nchanges == 1 && i < n; i++) {
                const cdc_value_t *val = &tx->changes[0].after[i];
                if (c[i].null) {
                    T_EQ_INT(val->kind, CDC_V_NULL);
                    continue;
                }
                switch (c[i].cls) {
                case G_CHAR: case G_VARCHAR: case G_TEXT: case G_BLOB:
                    if (c[i].cs == 63) {
                        /* BINARY(60) keeps its 60 bytes, zero-padded */
                        size_t want = c[i].cls == G_CHAR ? 60 : 3;
                        T_EQ_INT(val->kind, CDC_V_BYTES);
                        T_ASSERT(val->len == want &&
                                 !memcmp(val->s, "x\xc3\xa9", 3));
                        for (size_t z = 3; z < val->len && z < want; z++)
                            T_EQ_INT(val->s[z], 0);
                    } else {
                        T_EQ_INT(val->kind, CDC_V_STRING);
                        T_ASSERT(val->len == 3 &&
                                 !memcmp(val->s, "x\xc3\xa9", 3));
                    }
                    break;
                case G_JSON:
                    T_ASSERT(val->len == 3 && !memcmp(val->s, "[1]", 3));
                    break;
                case G_ENUM:
                    T_ASSERT(val->len == 2 && !memcmp(val->s, "\xc3\xa9", 2));
                    break;
                case G_SET:
                    T_ASSERT(val->len == 10 &&
                             !memcmp(val->s, "[\"a\",\"zz\"]", 10));
                    break;
                case G_INT:
                    T_EQ_INT(val->u.i, i);
                    break;
                default:
                    break;
                }
            }
            cdc_txn_destroy(tx);
            cdc_binlog_destroy(bl);
            cdc_buf_free(&tm);
            cdc_buf_free(&wr);
        }
        free(f);
    }
}

/* A transaction of our own (skip_marked, its first rows event flagged
 * LOG_EVENT_SKIP_REPLICATION_F like a wide sink's marker row) is dropped
 * without holding its rows: 3000 rows events of it leave an empty
 * transaction whose arena holds no row values, while the same events
 * unflagged give 3000 changes (the rows were there to hold). */
static int gfeed_flags(cdc_binlog_t *bl, uint8_t type, uint16_t flags,
                       const cdc_buf_t *body, cdc_txn_t **tx, cdc_err_t *err)
{
    cdc_buf_t ev = CDC_BUF_INIT;
    int rc;
    put_le(&ev, 1700000000, 4);
    cdc_buf_putc(&ev, (char)type);
    put_le(&ev, 1, 4);
    put_le(&ev, 19 + body->len + 4, 4);
    put_le(&ev, 0, 4);
    put_le(&ev, flags, 2);
    cdc_buf_put(&ev, body->p, body->len);
    put_le(&ev, 0, 4);
    rc = cdc_binlog_feed(bl, (const uint8_t *)ev.p, ev.len, 5000, tx, err);
    cdc_buf_free(&ev);
    return rc;
}

CDC_TEST(own_transaction_not_held)
{
    static const uint64_t fde = 4, gtid = 1013, xid = 1219;
    size_t fn;
    uint8_t *f = slurp(fx("mariadb-10.11/04_gtid_domains.binlog"), &fn);
    gcol_t c[6];
    cdc_buf_t tm = CDC_BUF_INIT, wr = CDC_BUF_INIT;

    T_ASSERT(f != NULL);
    if (!f)
        return;
    for (int i = 0; i < 6; i++) {
        c[i].cls = i % 2 ? G_VARCHAR : G_INT;
        c[i].cs = 8;
        c[i].null = 0;
    }
    gen_events(c, 6, 1, &tm, &wr);
    for (int own = 0; own < 2; own++) {
        cdc_binlog_opts_t o = {.verify_checksum = 0, .skip_marked = 1};
        cdc_binlog_t *bl = cdc_binlog_new(&o);
        cdc_txn_t *tx = NULL;
        cdc_err_t err = {0};
        int rc = 0;

        rc = cdc_binlog_feed(bl, f + fde, le32(f + fde + 9), fde, &tx, &err);
        if (rc >= 0)
            rc = cdc_binlog_feed(bl, f + gtid, le32(f + gtid + 9), gtid, &tx,
                                 &err);
        for (int k = 0; k < 3000 && rc >= 0; k++) {
            /* the flag on the first rows event only: the marker row */
            uint16_t fl = own && !k ? 0x8000 : 0;
            rc = gfeed_flags(bl, 19, 0, &tm, &tx, &err);
            if (rc >= 0)
                rc = gfeed_flags(bl, 23, fl, &wr, &tx, &err);
            T_ASSERT(tx == NULL);
        }
        if (rc >= 0)
            rc = cdc_binlog_feed(bl, f + xid, le32(f + xid + 9), xid, &tx,
                                 &err);
        if (rc < 0)
            printf("# own %d: %s\n", own, err.msg);
        T_ASSERT(rc >= 0);
        T_ASSERT(tx != NULL);
        if (tx) {
            T_EQ_INT(tx->nchanges, own ? 0 : 3000);
            if (own)
                T_ASSERT(tx->arena.total < 4096);
            else
                T_ASSERT(tx->arena.total > 3000 * 6);
        }
        cdc_txn_destroy(tx);
        cdc_binlog_destroy(bl);
    }
    cdc_buf_free(&tm);
    cdc_buf_free(&wr);
    free(f);
}

/* ---- row images ------------------------------------------------------------ */

CDC_TEST(minimal_image_absent)
{
    txns_t t = {0};
    cdc_err_t err;
    T_EQ_INT(decode("mariadb-10.11/03_row_images.binlog", 0, &t, NULL, &err),
             0);
    /* INSERT (1,2,3) ; MINIMAL: insert 4, update 1, delete 2 ; NOBLOB:
     * update 3 twice, delete 3 ; FULL: update 1 */
    const cdc_change_t *ch[16];
    size_t n = 0;
    for (size_t i = 0; i < t.n; i++)
        for (uint32_t k = 0; k < t.v[i]->nchanges && n < 16; k++)
            ch[n++] = &t.v[i]->changes[k];
    T_EQ_INT(n, 10);
    if (n != 10) {
        txns_free(&t);
        return;
    }
    /* MINIMAL insert (id, a): b, c, d absent (not NULL) */
    T_EQ_INT(ch[3]->op, 'c');
    T_EQ_INT(ch[3]->after[0].kind, CDC_V_INT);
    T_EQ_INT(ch[3]->after[2].kind, CDC_V_ABSENT);
    T_EQ_INT(ch[3]->after[4].kind, CDC_V_ABSENT);
    /* MINIMAL update: before = PK only, after = changed column only */
    T_EQ_INT(ch[4]->op, 'u');
    T_EQ_INT(ch[4]->before[0].kind, CDC_V_INT);
    T_EQ_INT(ch[4]->before[0].u.i, 1);
    T_EQ_INT(ch[4]->before[1].kind, CDC_V_ABSENT);
    T_EQ_INT(ch[4]->after[0].kind, CDC_V_ABSENT);
    T_EQ_INT(ch[4]->after[2].kind, CDC_V_STRING);
    T_EQ_STR(ch[4]->after[2].s, "ONE");
    /* MINIMAL delete: PK only */
    T_EQ_INT(ch[5]->op, 'd');
    T_ASSERT(ch[5]->after == NULL);
    T_EQ_INT(ch[5]->before[0].u.i, 2);
    T_EQ_INT(ch[5]->before[3].kind, CDC_V_ABSENT);
    /* NOBLOB update of a: c (TEXT) and d (BLOB) absent */
    T_EQ_INT(ch[6]->after[1].u.i, 31);
    T_EQ_INT(ch[6]->after[3].kind, CDC_V_ABSENT);
    T_EQ_INT(ch[6]->after[4].kind, CDC_V_ABSENT);
    /* NOBLOB update of c: c present */
    T_EQ_INT(ch[7]->after[3].kind, CDC_V_STRING);
    T_EQ_INT(ch[7]->after[4].kind, CDC_V_ABSENT);
    /* FULL update: everything present */
    for (int i = 0; i < 5; i++) {
        T_ASSERT(ch[9]->before[i].kind != CDC_V_ABSENT);
        T_ASSERT(ch[9]->after[i].kind != CDC_V_ABSENT);
    }
    /* positions: each change names its rows event and row index */
    T_ASSERT(ch[0]->pos > 0);
    T_EQ_INT(ch[0]->row, 0);
    T_EQ_INT(ch[1]->row, 1);
    T_EQ_INT(ch[2]->row, 2);
    T_EQ_INT(ch[0]->pos, ch[2]->pos);
    txns_free(&t);
}

/* ---- transactions ----------------------------------------------------------- */

static const cdc_txn_t *by_gtid(const txns_t *t, const char *gtid)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i]->gtid, gtid))
            return t->v[i];
    return NULL;
}

CDC_TEST(txn_grouping_ddl_xa)
{
    txns_t t = {0};
    cdc_err_t err;
    cdc_pos_t pos;
    T_EQ_INT(decode("mariadb-10.11/02_txn_ddl.binlog", 0, &t, &pos, &err), 0);
    T_ASSERT(t.n > 20);
    /* first group: CREATE DATABASE, standalone DDL -> empty txn */
    T_EQ_STR(t.v[0]->gtid, "0-1-24");
    T_EQ_INT(t.v[0]->nchanges, 0);
    T_EQ_INT(t.v[0]->pos.offset, 550);
    T_EQ_STR(t.v[0]->pos.gtid, "0-1-24");
    T_EQ_STR(t.v[0]->connector, "mariadb");
    T_EQ_INT(t.v[0]->server_id, 1);
    T_EQ_STR(t.v[0]->file, "02_txn_ddl.binlog");
    T_EQ_INT(t.v[0]->commit_us % 1000000, 0);
    T_ASSERT(t.v[0]->commit_us > 1600000000LL * 1000000);
    /* autocommit insert: XID ends it */
    const cdc_txn_t *x = by_gtid(&t, "0-1-30");
    T_ASSERT(x != NULL);
    if (x) {
        T_EQ_INT(x->nchanges, 1);
        T_EQ_INT(x->xid, 56);
        T_EQ_INT(x->pos.offset, 2429);
        T_EQ_INT(x->changes[0].pos, 2334);
    }
    /* XA: nothing at PREPARE (0-1-55); the rows come with XA COMMIT */
    T_ASSERT(by_gtid(&t, "0-1-55") == NULL);
    x = by_gtid(&t, "0-1-56");
    T_ASSERT(x != NULL);
    if (x) {
        T_EQ_INT(x->nchanges, 1);
        T_EQ_INT(x->changes[0].op, 'c');
        T_EQ_STR(x->changes[0].tbl->name, "orders");
        T_EQ_INT(x->pos.offset, 140192);
        int c = col_index(x->changes[0].tbl, "customer");
        T_ASSERT(c >= 0);
        if (c >= 0)
            T_EQ_STR(x->changes[0].after[c].s, "xa");
    }
    /* GTIDs strictly sequential: every group appears once, in order */
    for (size_t i = 1; i < t.n; i++) {
        unsigned long a = strtoul(strrchr(t.v[i - 1]->gtid, '-') + 1, 0, 10);
        unsigned long b = strtoul(strrchr(t.v[i]->gtid, '-') + 1, 0, 10);
        T_ASSERT(b > a);
        T_ASSERT(t.v[i]->pos.offset > t.v[i - 1]->pos.offset);
    }
    /* rolled-back work never appears: no row of a 'rollback' customer */
    for (size_t i = 0; i < t.n; i++)
        for (uint32_t k = 0; k < t.v[i]->nchanges; k++) {
            const cdc_change_t *ch = &t.v[i]->changes[k];
            int c = col_index(ch->tbl, "customer");
            const cdc_value_t *v = ch->after ? ch->after : ch->before;
            if (c >= 0 && v[c].kind == CDC_V_STRING)
                T_ASSERT(strstr(v[c].s, "rolled") == NULL &&
                         strstr(v[c].s, "undone") == NULL);
        }
    /* 600-row INSERT ... SELECT over several events is one transaction */
    size_t big = 0;
    for (size_t i = 0; i < t.n; i++)
        if (t.v[i]->nchanges > big)
            big = t.v[i]->nchanges;
    T_ASSERT(big >= 600);
    /* the ROTATE at the end moves the resume point to the next file */
    T_EQ_STR(t.v[t.n - 1]->pos.file, "02_txn_ddl.binlog");
    T_EQ_STR(pos.file, "mariadb-bin.000005");
    T_EQ_INT(pos.offset, 4);
    T_EQ_STR(pos.gtid, t.v[t.n - 1]->pos.gtid);
    txns_free(&t);
}

CDC_TEST(compressed_same_changes)
{
    txns_t a = {0}, b = {0};
    cdc_err_t err;
    T_EQ_INT(decode("mariadb-10.11/01_types.binlog", 0, &a, NULL, &err), 0);
    T_EQ_INT(decode("mariadb-10.11/11_types_compressed.binlog", 0, &b, NULL,
                    &err),
             0);
    T_ASSERT(nchanges(&a) > 10);
    T_EQ_INT(nchanges(&a), nchanges(&b));
    txns_free(&a);
    txns_free(&b);
    T_EQ_INT(decode("mariadb-10.11/02_txn_ddl.binlog", 0, &a, NULL, &err), 0);
    T_EQ_INT(decode("mariadb-10.11/12_txn_ddl_compressed.binlog", 0, &b, NULL,
                    &err),
             0);
    T_ASSERT(nchanges(&a) > 600);
    T_EQ_INT(nchanges(&a), nchanges(&b));
    txns_free(&a);
    txns_free(&b);
}

CDC_TEST(transaction_payload)
{
    txns_t t = {0};
    cdc_err_t err;
    T_EQ_INT(decode("rust_mysql_common/transaction_compression.000001", 0, &t,
                    NULL, &err),
             0);
    T_EQ_INT(t.n, 1);
    if (t.n == 1) {
        const cdc_txn_t *x = t.v[0];
        T_EQ_INT(x->nchanges, 1);
        T_EQ_INT(x->xid, 462);
        T_EQ_INT(x->pos.offset, 431); /* after the payload event */
        T_EQ_STR(x->gtid, "");        /* anonymous */
        T_EQ_STR(x->connector, "mysql");
        if (x->nchanges) {
            T_EQ_STR(x->changes[0].tbl->name, "tb1");
            T_EQ_INT(x->changes[0].pos, 274);
            T_EQ_INT(x->changes[0].after[0].kind == CDC_V_INT ||
                         x->changes[0].after[0].kind == CDC_V_UINT,
                     1);
        }
        /* MySQL 8: commit time from the GTID event, microseconds */
        T_ASSERT(x->commit_us % 1000000 != 0);
    }
    txns_free(&t);
    T_EQ_INT(decode("mysql-binlog-connector-java/mysql-bin.compressed", 0, &t,
                    NULL, &err),
             0);
    T_EQ_INT(nchanges(&t), 1);
    for (size_t i = 0; i < t.n; i++)
        for (uint32_t k = 0; k < t.v[i]->nchanges; k++) {
            T_EQ_INT(t.v[i]->changes[k].op, 'u');
            T_EQ_STR(t.v[i]->changes[k].tbl->name, "movies");
            T_EQ_INT(t.v[i]->changes[k].row, k);
        }
    txns_free(&t);
    T_EQ_INT(decode("mysql-binlog-connector-rust/mysql-bin.000057", 0, &t,
                    NULL, &err),
             0);
    T_ASSERT(nchanges(&t) >= 2);
    txns_free(&t);
}

/* ---- GTID state --------------------------------------------------------------- */

CDC_TEST(gtid_state_mariadb)
{
    txns_t t = {0};
    cdc_err_t err;
    cdc_pos_t pos;
    T_EQ_INT(decode("mariadb-10.11/04_gtid_domains.binlog", 0, &t, &pos, &err),
             0);
    T_ASSERT(by_gtid(&t, "2-2-100") != NULL);
    T_ASSERT(by_gtid(&t, "1-1-1") != NULL);
    /* last GTID per domain, sorted by domain */
    T_EQ_STR(pos.gtid, "0-1-76,1-1-1,2-2-100");
    txns_free(&t);

    /* seeded state: the GTID_LIST of the file merges into it */
    cdc_binlog_t *bl = cdc_binlog_new(NULL);
    cdc_binlog_set_gtid_state(bl, "5-9-7");
    T_EQ_STR(cdc_binlog_pos(bl)->gtid, "5-9-7");
    T_EQ_INT(cdc_binlog_read_file(bl,
                                  fx("mariadb-10.11/11_types_compressed.binlog"),
                                  0, collect, &t, &err),
             0);
    T_ASSERT(strstr(cdc_binlog_pos(bl)->gtid, "5-9-7") != NULL);
    T_ASSERT(strstr(cdc_binlog_pos(bl)->gtid, "1-1-1") != NULL);
    cdc_binlog_destroy(bl);
    txns_free(&t);
}

CDC_TEST(gtid_state_mysql)
{
    txns_t t = {0};
    cdc_err_t err;
    cdc_pos_t pos;
    T_EQ_INT(decode("rust_mysql_common/binlog_transaction_with_GTID_TAG.000001",
                    0, &t, &pos, &err),
             0);
    T_EQ_INT(t.n, 1);
    if (t.n)
        T_EQ_STR(t.v[0]->gtid,
                 "55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3");
    T_EQ_STR(pos.gtid, "55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:mytag:1-3");
    txns_free(&t);

    T_EQ_INT(decode("rust_mysql_common/binlog_transaction_previous_GTID_no_tag."
                    "000001",
                    0, &t, &pos, &err),
             0);
    T_EQ_STR(pos.gtid, "b9b88c66-0755-11f1-9899-4a9da94c4d71:1-2");
    txns_free(&t);

    /* sequential gnos extend the executed set */
    T_EQ_INT(decode("mysql-binlog-connector-rust/mysql-bin.000080", 0, &t, &pos,
                    &err),
             0);
    T_ASSERT(t.n >= 5);
    if (t.n) {
        const char *g = t.v[t.n - 1]->gtid;
        const char *colon = strchr(g, ':');
        T_ASSERT(colon != NULL);
        if (colon)
            T_ASSERT(!strncmp(pos.gtid, g, (size_t)(colon - g)));
        T_ASSERT(strchr(pos.gtid, '-') != NULL);
    }
    txns_free(&t);

    cdc_binlog_t *bl = cdc_binlog_new(NULL);
    cdc_binlog_set_gtid_state(bl, " 3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7,"
                                  "3e11fa47-71ca-11e1-9e33-c80aa9429562:t1:2");
    T_EQ_STR(cdc_binlog_pos(bl)->gtid,
             "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7:t1:2");
    cdc_binlog_destroy(bl);
}

/* ---- files ----------------------------------------------------------------- */

CDC_TEST(start_offset)
{
    txns_t all = {0}, part = {0};
    cdc_err_t err;
    T_EQ_INT(decode("mariadb-10.11/02_txn_ddl.binlog", 0, &all, NULL, &err), 0);
    /* resume after the 5th transaction */
    uint64_t from = all.v[4]->pos.offset;
    T_EQ_INT(decode("mariadb-10.11/02_txn_ddl.binlog", from, &part, NULL,
                    &err),
             0);
    T_EQ_INT(part.n, all.n - 5);
    if (part.n)
        T_EQ_STR(part.v[0]->gtid, all.v[5]->gtid);
    txns_free(&part);
    /* not an event boundary */
    T_EQ_INT(decode("mariadb-10.11/02_txn_ddl.binlog", from + 3, &part, NULL,
                    &err),
             -1);
    T_ASSERT(strstr(err.msg, "boundary") != NULL);
    txns_free(&part);
    txns_free(&all);
}

CDC_TEST(truncated_file)
{
    txns_t t = {0};
    cdc_err_t err;
    T_EQ_INT(decode("rust_mysql_common/binlog_truncated_prev_gtid_event.000001",
                    0, &t, NULL, &err),
             -1);
    T_EQ_INT(err.code, CDC_EXIT_DATA);
    T_ASSERT(strstr(err.msg, "truncated event at offset 120") != NULL);
    T_ASSERT(err.hint[0] != '\0');
    txns_free(&t);
    /* a short event handed to feed */
    cdc_binlog_t *bl = cdc_binlog_new(NULL);
    uint8_t ev[10] = {0};
    T_EQ_INT(cdc_binlog_feed(bl, ev, sizeof(ev), 4, NULL, &err), -1);
    T_ASSERT(strstr(err.msg, "offset 4") != NULL);
    cdc_binlog_destroy(bl);
}

CDC_TEST(unknown_event_rule)
{
    txns_t t = {0};
    cdc_err_t err;
    /* Aurora type 100 padding between transactions: skipped by design */
    T_EQ_INT(decode("mysql-binlog-connector-java/mysql-bin.aurora-padding", 0,
                    &t, NULL, &err),
             0);
    txns_free(&t);
    /* an unknown type right after a TABLE_MAP may be row data: error */
    size_t n;
    uint8_t *p = slurp(fx("mariadb-10.11/02_txn_ddl.binlog"), &n);
    T_ASSERT(p != NULL);
    if (!p)
        return;
    /* WRITE_ROWS_V1 at 2334 follows the TABLE_MAP at 2190 */
    T_EQ_INT(p[2334 + 4], 23);
    p[2334 + 4] = 100;
    cdc_binlog_opts_t o = {.verify_checksum = 0};
    cdc_binlog_t *bl = cdc_binlog_new(&o);
    T_EQ_INT(feed_all(bl, p, n, &err), 2334);
    T_ASSERT(strstr(err.msg, "unknown event type 100") != NULL);
    cdc_binlog_destroy(bl);
    /* with the IGNORABLE flag it is skipped */
    p[2334 + 17] |= 0x80;
    bl = cdc_binlog_new(&o);
    T_EQ_INT(feed_all(bl, p, n, &err), 0);
    cdc_binlog_destroy(bl);
    /* between transactions too, every unknown type stops decoding (exit
     * 65): the BINLOG_CHECKPOINT at 299 retyped to each unknown number */
    T_EQ_INT(p[299 + 4], 161);
    for (int ty = 43; ty < 256; ty++) {
        if (ty == 100 || (ty >= 160 && ty <= 171))
            continue;
        p[299 + 4] = (uint8_t)ty;
        cdc_err_clear(&err);
        bl = cdc_binlog_new(&o);
        T_EQ_INT(feed_all(bl, p, n, &err), 299);
        T_EQ_INT(err.code, CDC_EXIT_DATA);
        T_ASSERT(strstr(err.msg, "unknown event type") != NULL);
        cdc_binlog_destroy(bl);
    }
    free(p);
}

CDC_TEST(connector_override)
{
    cdc_binlog_opts_t o = {.verify_checksum = 1, .connector = "x-mariadb"};
    cdc_binlog_t *bl = cdc_binlog_new(&o);
    txns_t t = {0};
    cdc_err_t err;
    T_EQ_INT(cdc_binlog_read_file(bl, fx("mariadb-10.11/04_gtid_domains.binlog"),
                                  0, collect, &t, &err),
             0);
    T_ASSERT(t.n > 0);
    if (t.n)
        T_EQ_STR(t.v[0]->connector, "x-mariadb");
    cdc_binlog_destroy(bl);
    txns_free(&t);
}

/* ---- dump stream captures --------------------------------------------------- */

/* Feed a capture of COM_BINLOG_DUMP replies ([u32 LE length][0x00 +
 * event]) like the live source does: offset = log_pos - event_size, 0 for
 * artificial events. */
static int feed_capture(const char *rel, txns_t *t, cdc_binlog_t *bl,
                        cdc_err_t *err)
{
    size_t n;
    uint8_t *p = slurp(fx(rel), &n);
    int rc = 0;
    if (!p)
        return -1;
    for (size_t off = 0; off + 4 <= n;) {
        uint32_t len = le32(p + off);
        off += 4;
        if (len > n - off || len < 20 || p[off] != 0) {
            rc = -1;
            break;
        }
        const uint8_t *ev = p + off + 1;
        uint32_t sz = len - 1, logpos = le32(ev + 13);
        uint64_t evoff = logpos >= sz ? logpos - sz : 0;
        cdc_txn_t *tx = NULL;
        int r = cdc_binlog_feed(bl, ev, sz, evoff, &tx, err);
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 1)
            collect(t, tx, err);
        off += len;
    }
    free(p);
    return rc;
}

CDC_TEST(dump_stream_checksum_changes)
{
    txns_t s = {0}, f = {0};
    cdc_err_t err;
    cdc_binlog_t *bl = cdc_binlog_new(NULL);
    /* crosses CRC32 -> NONE -> CRC32 files; fake ROTATEs name the files */
    T_EQ_INT(feed_capture("mariadb-10.11/stream/dump_from_000008.capture", &s,
                          bl, &err),
             0);
    if (err.msg[0] && s.n == 0)
        printf("# %s\n", err.msg);
    static const char *files[] = {
        "mariadb-10.11/04_gtid_domains.binlog",
        "mariadb-10.11/11_types_compressed.binlog",
        "mariadb-10.11/12_txn_ddl_compressed.binlog",
        "mariadb-10.11/21_row_images_checksum_none.binlog"};
    for (int i = 0; i < 4; i++)
        T_EQ_INT(decode(files[i], 0, &f, NULL, &err), 0);
    T_ASSERT(nchanges(&s) > 600);
    T_EQ_INT(nchanges(&s), nchanges(&f));
    /* positions name the server's files */
    int named = 0;
    for (size_t i = 0; i < s.n; i++)
        named += !strncmp(s.v[i]->pos.file, "mariadb-bin.0000", 16);
    T_EQ_INT(named, (int)s.n);
    T_EQ_STR(s.v[0]->pos.file, "mariadb-bin.000008");
    cdc_binlog_destroy(bl);
    txns_free(&s);
    txns_free(&f);

    /* GTID dump: artificial GTID_LIST events, then 2-2-100 onwards */
    bl = cdc_binlog_new(NULL);
    T_EQ_INT(feed_capture("mariadb-10.11/stream/dump_gtid_0-1-75_1-1-1_2-2-1."
                          "capture",
                          &s, bl, &err),
             0);
    T_ASSERT(s.n > 0);
    if (s.n)
        T_EQ_STR(s.v[0]->gtid, "2-2-100");
    cdc_binlog_destroy(bl);
    txns_free(&s);

    /* heartbeats: no transactions, no errors */
    bl = cdc_binlog_new(NULL);
    T_EQ_INT(feed_capture("mariadb-10.11/stream/heartbeat.capture", &s, bl,
                          &err),
             0);
    T_EQ_INT(s.n, 0);
    cdc_binlog_destroy(bl);
}

/* Fragments (binlog.h frag_rows): cut after every rows event, every
 * transaction comes as fragments 0..k, more set on all but the last, and
 * together they hold exactly the changes of the whole transaction in
 * order; the last one carries the whole one's position and GTID. */
CDC_TEST(fragments_equal_whole)
{
    static const char *const files[] = {
        "mariadb-10.11/01_types.binlog", "mariadb-10.11/02_txn_ddl.binlog",
        "mariadb-10.11/03_row_images.binlog",
        "mariadb-10.11/04_gtid_domains.binlog"};
    for (size_t fi = 0; fi < sizeof(files) / sizeof(*files); fi++) {
        txns_t whole = {0}, parts = {0};
        cdc_err_t err;
        cdc_binlog_opts_t o = {.verify_checksum = 1, .frag_rows = 1};
        cdc_binlog_t *bl;
        size_t j = 0;

        if (decode(files[fi], 0, &whole, NULL, &err) != 0) {
            printf("# %s: %s\n", files[fi], err.msg);
            continue; /* not every fixture set has every file */
        }
        bl = cdc_binlog_new(&o);
        memset(&err, 0, sizeof(err));
        T_EQ_INT(cdc_binlog_read_file(bl, fx(files[fi]), 0, collect, &parts,
                                      &err), 0);
        cdc_binlog_destroy(bl);
        for (size_t i = 0; i < whole.n; i++) {
            const cdc_txn_t *w = whole.v[i];
            uint32_t k = 0, frag = 0;
            for (;;) {
                const cdc_txn_t *p;
                T_ASSERT(j < parts.n);
                if (j >= parts.n)
                    break;
                p = parts.v[j++];
                T_EQ_INT(p->frag, frag);
                frag++;
                T_EQ_STR(p->gtid, w->gtid);
                for (uint32_t c = 0; c < p->nchanges && k < w->nchanges;
                     c++, k++) {
                    T_EQ_INT(p->changes[c].pos, w->changes[k].pos);
                    T_EQ_INT(p->changes[c].row, w->changes[k].row);
                    T_EQ_INT(p->changes[c].op, w->changes[k].op);
                }
                if (!p->more) {
                    T_EQ_INT(p->pos.offset, w->pos.offset);
                    T_EQ_STR(p->pos.gtid, w->pos.gtid);
                    break;
                }
                /* cut after a rows event: all of its rows, at least one */
                T_ASSERT(p->nchanges >= 1);
            }
            T_EQ_INT(k, w->nchanges);
        }
        T_EQ_INT(j, parts.n);
        T_ASSERT(parts.n >= whole.n);
        txns_free(&whole);
        txns_free(&parts);
    }
}

int main(void)
{
    cdc_log_set_level(CDC_LOG_ERROR);
    if (!cdc_test_have_fixtures())
        return 0;
    return cdc_test_run();
}
