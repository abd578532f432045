/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_core.c - unit tests of the core: buffers, base64, JSON writer and
 * envelopes (parsed back with yajl), configuration, checkpoints, filters.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <yajl/yajl_tree.h>

#include "cdc/buf.h"
#include "cdc/checkpoint.h"
#include "cdc/conf.h"
#include "cdc/envelope.h"
#include "cdc/jsontree.h"
#include "cdc/pipeline.h"
#include "tests/unit/cdc_test.h"

static yajl_val parse(const char *s)
{
    char eb[256];
    /* cdc_json_parse: its strings keep their length (cdc_json_strlen) */
    yajl_val v = cdc_json_parse(s, strlen(s), eb, sizeof(eb));
    if (!v)
        printf("# yajl: %s in %s\n", eb, s);
    return v;
}

static const char *jstr(yajl_val root, const char **path)
{
    yajl_val v = yajl_tree_get(root, path, yajl_t_any);
    return v && YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

CDC_TEST(base64)
{
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_buf_base64(&b, (const uint8_t *)"", 0);
    T_EQ_STR(b.p ? b.p : "", "");
    cdc_buf_reset(&b);
    cdc_buf_base64(&b, (const uint8_t *)"f", 1);
    T_EQ_STR(b.p, "Zg==");
    cdc_buf_reset(&b);
    cdc_buf_base64(&b, (const uint8_t *)"fo", 2);
    T_EQ_STR(b.p, "Zm8=");
    cdc_buf_reset(&b);
    cdc_buf_base64(&b, (const uint8_t *)"foobar", 6);
    T_EQ_STR(b.p, "Zm9vYmFy");
    cdc_buf_reset(&b);
    cdc_buf_base64(&b, (const uint8_t *)"\xff\x00\xfe", 3);
    T_EQ_STR(b.p, "/wD+");
    cdc_buf_free(&b);
}

CDC_TEST(buf_quoted)
{
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_buf_quoted(&b, "a`b``c`", '`');
    T_EQ_STR(b.p, "`a``b````c```");
    cdc_buf_reset(&b);
    cdc_buf_quoted(&b, "", '"');
    T_EQ_STR(b.p, "\"\"");
    cdc_buf_reset(&b);
    cdc_buf_quoted(&b, "it's; DROP TABLE x;--", '\'');
    T_EQ_STR(b.p, "'it''s; DROP TABLE x;--'");
    cdc_buf_free(&b);
}

CDC_TEST(arena)
{
    cdc_arena_t a;
    cdc_arena_init(&a);
    for (int i = 0; i < 10000; i++) {
        char *p = cdc_arena_memdup(&a, "hello", 5);
        T_ASSERT(((uintptr_t)p & 15) == 0);
        T_ASSERT(!strcmp(p, "hello"));
    }
    char *big = cdc_arena_alloc(&a, 1 << 20);
    memset(big, 1, 1 << 20);
    cdc_arena_reset(&a);
    T_EQ_INT(a.total, 0);
    cdc_arena_destroy(&a);
}

CDC_TEST(json_string_escapes_and_invalid_utf8)
{
    cdc_buf_t b = CDC_BUF_INIT;
    const char in[] = "a\"b\\c\n\t\x01\x7f \xc3\xa9 \xf0\x9f\x98\x80 \xff\xc3";
    cdc_json_string(&b, in, sizeof(in) - 1);
    T_EQ_STR(b.p, "\"a\\\"b\\\\c\\n\\t\\u0001\x7f \xc3\xa9 \xf0\x9f\x98\x80 "
                  "\xef\xbf\xbd\xef\xbf\xbd\"");
    yajl_val v = parse(b.p);
    T_ASSERT(v && YAJL_IS_STRING(v));
    yajl_tree_free(v);
    /* overlong encodings and surrogates are rejected */
    cdc_buf_reset(&b);
    cdc_json_string(&b, "\xc0\xaf\xed\xa0\x80", 5);
    v = parse(b.p);
    T_ASSERT(v != NULL);
    yajl_tree_free(v);
    cdc_buf_free(&b);
}

/* the shared tree lookup and validity check (cdc/jsontree.h) */
CDC_TEST(json_get_and_valid)
{
    char eb[128];
    const char *doc = "{\"a\":1,\"b\":{\"c\":\"x\"},\"a\":2}";
    yajl_val v = cdc_json_parse(doc, strlen(doc), eb, sizeof(eb));
    T_ASSERT(v != NULL);
    T_ASSERT(cdc_json_get(v, "a") && YAJL_IS_NUMBER(cdc_json_get(v, "a")));
    T_EQ_STR(cdc_json_get(v, "a")->u.number.r, "1"); /* the first */
    T_EQ_STR(cdc_json_get(cdc_json_get(v, "b"), "c")->u.string, "x");
    T_ASSERT(cdc_json_get(v, "z") == NULL);
    T_ASSERT(cdc_json_get(cdc_json_get(v, "a"), "a") == NULL); /* not an object */
    T_ASSERT(cdc_json_get(NULL, "a") == NULL);
    yajl_tree_free(v);
    T_EQ_INT(cdc_json_valid("{\"k\":[1,2,null]}", 16), 1);
    T_EQ_INT(cdc_json_valid("\"s\"", 3), 1);
    T_EQ_INT(cdc_json_valid("{\"k\":", 5), 0);
    T_EQ_INT(cdc_json_valid("[1] [2]", 7), 0);
    T_EQ_INT(cdc_json_valid("nope", 4), 0);
    T_EQ_INT(cdc_json_valid("", 0), 0);
}

CDC_TEST(json_numbers_roundtrip)
{
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_value_t v = {.kind = CDC_V_UINT};
    v.u.u = UINT64_MAX;
    cdc_json_value(&b, &v);
    T_EQ_STR(b.p, "18446744073709551615");
    cdc_buf_reset(&b);
    v.kind = CDC_V_INT;
    v.u.i = INT64_MIN;
    cdc_json_value(&b, &v);
    T_EQ_STR(b.p, "-9223372036854775808");
    cdc_buf_reset(&b);
    v.kind = CDC_V_DOUBLE;
    v.u.d = 0.1;
    cdc_json_value(&b, &v);
    T_EQ_STR(b.p, "0.1");
    cdc_buf_reset(&b);
    v.u.d = 1.7976931348623157e308;
    cdc_json_value(&b, &v);
    T_ASSERT(strtod(b.p, NULL) == 1.7976931348623157e308);
    cdc_buf_reset(&b);
    v.kind = CDC_V_FLOAT;
    v.u.d = (double)3.40282e38f;
    cdc_json_value(&b, &v);
    T_EQ_STR(b.p, "3.40282e+38");
    cdc_buf_reset(&b);
    v.u.d = (double)-0.5f;
    cdc_json_value(&b, &v);
    T_EQ_STR(b.p, "-0.5");
    cdc_buf_reset(&b);
    v.kind = CDC_V_DOUBLE;
    v.u.d = NAN;
    cdc_json_value(&b, &v);
    T_EQ_STR(b.p, "\"NaN\"");
    cdc_buf_free(&b);
}

/* Embedded JSON is compact: whitespace between tokens goes, strings stay
 * (escapes kept), a raw control character inside a string is escaped. */
CDC_TEST(json_embedded_compact)
{
    static const char *const in[][2] = {
        {"{\n  \"a b\" :\t[1 ,\r\n 2.50e3],\n  \"a b\": \"x  y\\n\"\n}",
         "{\"a b\":[1,2.50e3],\"a b\":\"x  y\\n\"}"},
        {" \"tab\there\" ", "\"tab\\u0009here\""},
        {"[\"\\\"\", \"\\\\\", \" \" ]", "[\"\\\"\",\"\\\\\",\" \"]"},
        {"null", "null"}};
    cdc_buf_t b = CDC_BUF_INIT;

    for (size_t i = 0; i < sizeof(in) / sizeof(*in); i++) {
        cdc_value_t v = {.kind = CDC_V_JSON, .s = in[i][0],
                         .len = strlen(in[i][0])};
        cdc_buf_reset(&b);
        cdc_json_value(&b, &v);
        T_EQ_STR(b.p, in[i][1]);
    }
    cdc_buf_free(&b);
}

/* The fast double formatter against the snprintf/strtod reference loop:
 * random bit patterns over the whole range, values of the kinds tables
 * hold (i/7, cents, integers, powers of 2 and 10), ties and boundaries. */
static int double_same(double d, char *why, size_t cap)
{
    char a[40], b[40];
    if (!isfinite(d)) /* not numbers in JSON; put_double quotes them */
        return 1;
    size_t la = cdc_json_double_fmt(a, d), lb = cdc_json_double_fmt_ref(b, d);
    if (la != lb || strcmp(a, b)) {
        snprintf(why, cap, "%a: fast \"%s\" reference \"%s\"", d, a, b);
        return 0;
    }
    return 1;
}

CDC_TEST(json_double_fast_equals_reference)
{
    char why[160] = "";
    int ok = 1;
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    long n = getenv("CDC_DOUBLE_N") ? atol(getenv("CDC_DOUBLE_N")) : 300000;

    for (long i = 0; ok && i < n; i++) {
        uint64_t bits;
        double d;
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        bits = s;
        memcpy(&d, &bits, 8);
        if (isfinite(d))
            ok = double_same(d, why, sizeof(why));
        if (ok)
            ok = double_same((double)(int64_t)(s >> 20) / 7.0, why, sizeof(why));
        if (ok)
            ok = double_same((double)(int64_t)(s % 100000000) / 100.0, why,
                             sizeof(why));
        if (ok)
            ok = double_same(-(double)(s % 1000003) * 1e-7, why, sizeof(why));
    }
    for (int e = -1074; ok && e <= 1023; e++)
        ok = double_same(ldexp(1.0, e), why, sizeof(why)) &&
             double_same(nextafter(ldexp(1.0, e), INFINITY), why, sizeof(why)) &&
             double_same(nextafter(ldexp(1.0, e), 0), why, sizeof(why));
    for (int e = -300; ok && e <= 308; e++) {
        double p = pow(10.0, e);
        ok = double_same(p, why, sizeof(why)) &&
             double_same(nextafter(p, INFINITY), why, sizeof(why)) &&
             double_same(nextafter(p, 0), why, sizeof(why)) &&
             double_same(5 * p, why, sizeof(why)) &&
             double_same(9.999999999999999 * p, why, sizeof(why));
    }
    {
        static const double fixed[] = {0.0, -0.0, 0.1, 0.3, 1.0 / 3, 2.0 / 3,
                                       123456789012345678.0, 1e15, 1e16,
                                       1e17, 9007199254740993.0, 5e-324,
                                       1.7976931348623157e308, 1e-5, 1e-4,
                                       0.5, 100, 1e21, 123.456, -2.5e-7};
        for (size_t i = 0; ok && i < sizeof(fixed) / sizeof(fixed[0]); i++)
            ok = double_same(fixed[i], why, sizeof(why));
    }
    if (!ok)
        fprintf(stderr, "# %s\n", why);
    T_ASSERT(ok);
}

static int float_same(float f, char *why, size_t cap)
{
    char a[40], b[40];
    if (!isfinite(f))
        return 1;
    size_t la = cdc_json_float_fmt(a, f), lb = cdc_json_float_fmt_ref(b, f);
    if (la != lb || strcmp(a, b)) {
        snprintf(why, cap, "%a: fast \"%s\" reference \"%s\"", (double)f, a, b);
        return 0;
    }
    return 1;
}

/* floats the same way: random bit patterns, decimal-like values, every
 * power of two and of ten with their neighbours */
CDC_TEST(json_float_fast_equals_reference)
{
    char why[160] = "";
    int ok = 1;
    uint32_t s = 0x9e3779b9u;
    long n = getenv("CDC_DOUBLE_N") ? atol(getenv("CDC_DOUBLE_N")) : 300000;

    for (long i = 0; ok && i < n; i++) {
        float f;
        s ^= s << 13; s ^= s >> 17; s ^= s << 5;
        memcpy(&f, &s, 4);
        ok = float_same(f, why, sizeof(why)) &&
             float_same((float)(int32_t)(s >> 8) / 7.0f, why, sizeof(why)) &&
             float_same((float)(s % 10000000) / 100.0f, why, sizeof(why)) &&
             float_same(-(float)(s % 100003) * 1e-5f, why, sizeof(why));
    }
    for (int e = -149; ok && e <= 127; e++) {
        float p = ldexpf(1.0f, e);
        ok = float_same(p, why, sizeof(why)) &&
             float_same(nextafterf(p, INFINITY), why, sizeof(why)) &&
             float_same(nextafterf(p, 0), why, sizeof(why));
    }
    for (int e = -45; ok && e <= 38; e++) {
        float p = (float)pow(10.0, e);
        ok = float_same(p, why, sizeof(why)) &&
             float_same(nextafterf(p, INFINITY), why, sizeof(why)) &&
             float_same(nextafterf(p, 0), why, sizeof(why)) &&
             float_same(3 * p, why, sizeof(why));
    }
    {
        static const float fixed[] = {0.0f, -0.0f, 0.1f, 0.3f, 3.40282e38f,
                                      -0.5f, 1e-5f, 1e-4f, 123456.7f,
                                      16777217.0f, 1.17549435e-38f};
        for (size_t i = 0; ok && i < sizeof(fixed) / sizeof(fixed[0]); i++)
            ok = float_same(fixed[i], why, sizeof(why));
    }
    if (!ok)
        fprintf(stderr, "# %s\n", why);
    T_ASSERT(ok);
}

CDC_TEST(iso_time)
{
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_json_iso_ms(&b, 1700000000123456LL);
    T_EQ_STR(b.p, "2023-11-14T22:13:20.123Z");
    cdc_buf_reset(&b);
    cdc_json_iso_ms(&b, 0);
    T_EQ_STR(b.p, "1970-01-01T00:00:00.000Z");
    cdc_buf_free(&b);
}

static cdc_table_t *mk_table(void)
{
    cdc_table_t *t = cdc_table_new("shop", "orders", 4);
    const char *names[] = {"id", "note", "blob", "price"};
    for (int i = 0; i < 4; i++)
        t->cols[i].name = cdc_xstrdup(names[i]);
    t->npk = 1;
    t->pk = cdc_xmalloc(sizeof(uint32_t));
    t->pk[0] = 0;
    return t;
}

/* ---- property: every envelope is one line that parses ----------------- */


/* Bytes of any kind: control characters, quotes, backslashes, newlines,
 * valid multi-byte UTF-8 and invalid sequences. */
static void rnd_bytes(cdc_buf_t *b)
{
    static const char *const bits[] = {"\n", "\r\n", "\t", "\"", "\\", "\x01",
                                       "\x1f", "\x7f", "\xc3\xa9", "\xe2\x80\xa8",
                                       "\xf0\x9f\x98\x80", "\xff", "\xc3",
                                       "\xed\xa0\x80", "a", " ", "}", "{"};
    uint32_t n = cdc_test_rand(12);
    for (uint32_t i = 0; i < n; i++)
        cdc_buf_puts(b, bits[cdc_test_rand(sizeof(bits) / sizeof(*bits))]);
}

static void rnd_ws(cdc_buf_t *b)
{
    static const char *const ws[] = {"", " ", "\n", "\r\n", "\t", "  \n\t "};
    cdc_buf_puts(b, ws[cdc_test_rand(6)]);
}

/* A random valid JSON text with random whitespace (raw newlines too)
 * between the tokens, as PostgreSQL `json` keeps it. */
static void rnd_json(cdc_buf_t *b, int depth)
{
    uint32_t k = depth > 3 ? cdc_test_rand(4) : cdc_test_rand(6), n;
    static const char *const atoms[] = {"null", "true", "false", "0", "-1.5e3",
                                        "12345678901234567890", "\"\"",
                                        "\"a\\nb\\\"c\\u00e9\"", "\"\xc3\xa9 x\""};
    rnd_ws(b);
    switch (k) {
    case 0: case 1: case 2: case 3:
        cdc_buf_puts(b, atoms[cdc_test_rand(sizeof(atoms) / sizeof(*atoms))]);
        break;
    case 4:
        cdc_buf_putc(b, '[');
        n = cdc_test_rand(4);
        for (uint32_t i = 0; i < n; i++) {
            if (i)
                cdc_buf_putc(b, ',');
            rnd_json(b, depth + 1);
        }
        rnd_ws(b);
        cdc_buf_putc(b, ']');
        break;
    default:
        cdc_buf_putc(b, '{');
        n = cdc_test_rand(4);
        for (uint32_t i = 0; i < n; i++) {
            if (i)
                cdc_buf_putc(b, ',');
            rnd_ws(b);
            cdc_buf_printf(b, "\"k%u \\t\"", cdc_test_rand(3)); /* duplicates kept */
            rnd_ws(b);
            cdc_buf_putc(b, ':');
            rnd_json(b, depth + 1);
        }
        rnd_ws(b);
        cdc_buf_putc(b, '}');
    }
    rnd_ws(b);
}

static void rnd_value(cdc_txn_t *tx, cdc_value_t *v, char **json_in)
{
    cdc_buf_t b = CDC_BUF_INIT;
    static const double dd[] = {0.0, -0.0, 1e308, 5e-324, 0.1, NAN, INFINITY,
                                -INFINITY, 123456.789};

    memset(v, 0, sizeof(*v));
    *json_in = NULL;
    v->kind = (int)cdc_test_rand(CDC_V_JSON + 1);
    switch (v->kind) {
    case CDC_V_BOOL:
        v->u.b = (int)cdc_test_rand(2);
        break;
    case CDC_V_INT:
        v->u.i = cdc_test_rand(2) ? INT64_MIN : (int64_t)cdc_test_rand(1000) - 500;
        break;
    case CDC_V_UINT:
        v->u.u = cdc_test_rand(2) ? UINT64_MAX : cdc_test_rand(1000);
        break;
    case CDC_V_FLOAT: /* holds a float32 value */
        v->u.d = (double)(float)dd[cdc_test_rand(sizeof(dd) / sizeof(*dd))];
        break;
    case CDC_V_DOUBLE:
        v->u.d = dd[cdc_test_rand(sizeof(dd) / sizeof(*dd))];
        break;
    case CDC_V_DECIMAL:
        cdc_buf_puts(&b, cdc_test_rand(2) ? "-0.50" : "12345678901234567890.123");
        break;
    case CDC_V_STRING:
    case CDC_V_BYTES:
        rnd_bytes(&b);
        break;
    case CDC_V_JSON:
        rnd_json(&b, 0);
        *json_in = cdc_xstrdup(b.p);
        break;
    default:
        break;
    }
    if (b.p) {
        v->len = b.len;
        v->s = cdc_arena_memdup(&tx->arena, b.p, b.len);
    }
    cdc_buf_free(&b);
}

/* Compact text of a parsed tree, for comparing JSON values. */
static char *tree_text(yajl_val v)
{
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_json_tree_text(&b, v);
    return b.p;
}

CDC_TEST(envelope_one_line_property)
{
    for (int round = 0; round < 3000; round++) {
        uint32_t ncols = 1 + cdc_test_rand(6);
        cdc_table_t *t;
        cdc_txn_t *tx = cdc_txn_new();
        cdc_change_t *ch;
        char *jin[2][8] = {{0}};
        static const char ops[] = "cudr";
        cdc_buf_t nm = CDC_BUF_INIT;

        rnd_bytes(&nm);
        t = cdc_table_new(nm.p ? nm.p : "", "t\nx", ncols);
        cdc_buf_free(&nm);
        for (uint32_t i = 0; i < ncols; i++) {
            cdc_buf_t cn = CDC_BUF_INIT;
            cdc_buf_printf(&cn, "c%u", i);
            rnd_bytes(&cn);
            t->cols[i].name = cn.p;
        }
        t->npk = 1;
        t->pk = cdc_xmalloc(sizeof(uint32_t));
        t->pk[0] = cdc_test_rand(ncols);
        tx->commit_us = (int64_t)cdc_test_rand(2000000000) * 1000000;
        tx->connector = cdc_test_rand(2) ? "postgresql" : "mariadb";
        /* JSON columns (PG json, MySQL JSON): the Debezium writer types
         * values by their column */
        for (uint32_t i = 0; i < ncols; i++)
            t->cols[i].type = tx->connector[0] == 'p' ? 114 : 245;
        tx->file = "f\n1";
        ch = cdc_txn_add(tx, ops[cdc_test_rand(4)], t);
        cdc_table_destroy(t);
        for (int img = 0; img < 2; img++) {
            cdc_value_t *row;
            if (cdc_test_rand(4) == 0)
                continue;
            row = cdc_txn_values(tx, ncols);
            for (uint32_t i = 0; i < ncols; i++)
                rnd_value(tx, &row[i], &jin[img][i]);
            if (img)
                ch->after = row;
            else
                ch->before = row;
        }
        for (int f = 0; f < 2; f++) {
            cdc_env_opts_t o = {.format = f ? CDC_FMT_DEBEZIUM : CDC_FMT_AUTOGLM,
                                .application_id = "a\nb"};
            cdc_buf_t b = CDC_BUF_INIT;
            yajl_val root;

            cdc_envelope_write(&b, &o, tx, ch);
            T_ASSERT(b.p && !memchr(b.p, '\n', b.len) &&
                     !memchr(b.p, '\r', b.len));
            root = parse(b.p);
            T_ASSERT(root != NULL);
            /* every embedded JSON value is the value that came in */
            for (int img = 0; root && img < 2; img++) {
                const char *path[] = {f ? NULL : "payload",
                                      img ? "after" : "before", NULL};
                yajl_val im = yajl_tree_get(root, f ? path + 1 : path,
                                            yajl_t_object);
                for (uint32_t i = 0; im && i < im->u.object.len; i++) {
                    uint32_t c;
                    for (c = 0; c < ch->tbl->ncols; c++) {
                        cdc_buf_t k = CDC_BUF_INIT;
                        yajl_val kv;
                        cdc_json_string(&k, ch->tbl->cols[c].name,
                                        strlen(ch->tbl->cols[c].name));
                        kv = parse(k.p);
                        int same = kv && YAJL_IS_STRING(kv) &&
                                   !strcmp(kv->u.string, im->u.object.keys[i]);
                        yajl_tree_free(kv);
                        cdc_buf_free(&k);
                        if (same)
                            break;
                    }
                    if (c == ch->tbl->ncols || !jin[img][c])
                        continue;
                    yajl_val want = parse(jin[img][c]);
                    yajl_val got = im->u.object.values[i], inner = NULL;
                    /* debezium: a JSON column is its JSON text as a string */
                    if (f) {
                        T_ASSERT(YAJL_IS_STRING(got));
                        got = inner = YAJL_IS_STRING(got)
                                          ? parse(got->u.string) : NULL;
                    }
                    char *a = tree_text(want), *g = tree_text(got);
                    T_EQ_STR(g, a);
                    free(a);
                    free(g);
                    yajl_tree_free(want);
                    yajl_tree_free(inner);
                }
            }
            /* unchanged columns are named in both formats */
            if (ch->after) {
                int nun = 0;
                for (uint32_t i = 0; i < ch->tbl->ncols; i++)
                    nun += ch->after[i].kind == CDC_V_UNCHANGED;
                const char *up[] = {"payload", "unchanged", NULL};
                yajl_val u = root ? yajl_tree_get(root, f ? up + 1 : up,
                                                  yajl_t_array)
                                  : NULL;
                T_EQ_INT(u ? (int)u->u.array.len : 0, nun);
            }
            yajl_tree_free(root);
            cdc_buf_free(&b);
        }
        for (int img = 0; img < 2; img++)
            for (int i = 0; i < 8; i++)
                free(jin[img][i]);
        cdc_txn_destroy(tx);
    }
}

CDC_TEST(envelope_autoglm)
{
    cdc_table_t *t = mk_table();
    cdc_txn_t *tx = cdc_txn_new();
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_env_opts_t o = {.format = CDC_FMT_AUTOGLM, .application_id = "crm"};
    cdc_change_t *ch;

    tx->commit_us = 1700000000000000LL;
    tx->server_id = 1;
    tx->connector = "mariadb";
    snprintf(tx->gtid, sizeof(tx->gtid), "0-1-4");
    tx->file = "mariadb-bin.000001";
    ch = cdc_txn_add(tx, 'u', t);
    ch->pos = 2507;
    ch->row = 3;
    ch->before = cdc_txn_values(tx, 4);
    ch->after = cdc_txn_values(tx, 4);
    ch->before[0] = (cdc_value_t){.kind = CDC_V_INT, .u.i = 7};
    ch->before[1] = (cdc_value_t){.kind = CDC_V_NULL};
    /* before[2] stays ABSENT: not in the image */
    ch->before[3] = (cdc_value_t){.kind = CDC_V_DECIMAL, .s = "-0.50",
                                  .len = 5};
    ch->after[0] = (cdc_value_t){.kind = CDC_V_INT, .u.i = 7};
    ch->after[1] = (cdc_value_t){.kind = CDC_V_STRING,
                                 .s = "'); DROP TABLE x; --", .len = 20};
    ch->after[2] = (cdc_value_t){.kind = CDC_V_UNCHANGED};
    ch->after[3] = (cdc_value_t){.kind = CDC_V_DECIMAL, .s = "1.00",
                                 .len = 4};
    cdc_envelope_write(&b, &o, tx, ch);
    T_EQ_STR(b.p,
             "{\"application_id\":\"crm\",\"timestamp\":"
             "\"2023-11-14T22:13:20.000Z\",\"version\":1,\"payload\":{"
             "\"op\":\"u\",\"key\":{\"id\":7},\"before\":{\"id\":7,"
             "\"note\":null,\"price\":\"-0.50\"},\"after\":{\"id\":7,"
             "\"note\":\"'); DROP TABLE x; --\",\"price\":\"1.00\"},"
             "\"unchanged\":[\"blob\"]},\"source\":{\"connector\":\"mariadb\","
             "\"server_id\":1,\"db\":\"shop\",\"table\":\"orders\",\"file\":"
             "\"mariadb-bin.000001\",\"pos\":2507,\"gtid\":\"0-1-4\","
             "\"row\":3,\"ts_ms\":1700000000000}}");
    yajl_val v = parse(b.p);
    T_ASSERT(v != NULL);
    yajl_tree_free(v);

    cdc_buf_reset(&b);
    o.format = CDC_FMT_DEBEZIUM;
    cdc_envelope_write(&b, &o, tx, ch);
    v = parse(b.p);
    T_ASSERT(v != NULL);
    if (v) {
        const char *op[] = {"op", NULL};
        const char *name[] = {"source", "name", NULL};
        const char *file[] = {"source", "file", NULL};
        T_EQ_STR(jstr(v, op), "u");
        T_EQ_STR(jstr(v, name), "crm");
        T_EQ_STR(jstr(v, file), "mariadb-bin.000001");
        yajl_tree_free(v);
    }
    cdc_buf_reset(&b);
    cdc_envelope_key(&b, ch);
    T_EQ_STR(b.p, "{\"id\":7}");
    cdc_buf_free(&b);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
}

CDC_TEST(conf_yaml_env_precedence)
{
    cdc_conf_t *c = cdc_conf_new();
    cdc_err_t err = {0};
    const char *y = "source:\n  type: mysql\nmysql:\n  dsn: "
                    "mysql://u:${CDC_T_PW:dflt}@h:3306\nkafka:\n  acks: all\n"
                    "filter: {include: [a.*, b.c]}\n";
    setenv("CDC_T_PW", "s3cret", 1);
    T_EQ_INT(cdc_conf_load_yaml_str(c, "p.yaml", y, strlen(y), &err), 0);
    T_EQ_STR(cdc_conf_get(c, "source.type", NULL), "mysql");
    T_EQ_STR(cdc_conf_get(c, "mysql.dsn", NULL), "mysql://u:s3cret@h:3306");
    T_EQ_STR(cdc_conf_get(c, "kafka.acks", NULL), "all");
    T_EQ_STR(cdc_conf_get(c, "filter.include", NULL), "a.*,b.c");
    T_EQ_STR(cdc_conf_where(c, "kafka.acks"), "p.yaml:6:9");
    unsetenv("CDC_T_PW");
    setenv("AUTOGLM_CDC_KAFKA_BROKERS", "127.0.0.1:1", 1);
    setenv("AUTOGLM_CDC_MYSQL_SERVER__ID", "77", 1);
    cdc_conf_load_env(c);
    T_EQ_STR(cdc_conf_get(c, "kafka.brokers", NULL), "127.0.0.1:1");
    T_EQ_STR(cdc_conf_get(c, "mysql.server_id", NULL), "77");
    cdc_conf_destroy(c);
}

CDC_TEST(conf_errors)
{
    cdc_conf_t *c = cdc_conf_new();
    cdc_err_t err = {0};
    const char *bad = "a: b\n c: [\n";
    const char *unset = "mysql:\n  password: ${CDC_T_SURELY_UNSET}\n";
    T_EQ_INT(cdc_conf_load_yaml_str(c, "bad.yaml", bad, strlen(bad), &err),
             -1);
    T_ASSERT(strstr(err.msg, "bad.yaml:") == err.msg);
    T_EQ_INT(err.code, CDC_EXIT_CONFIG);
    /* an unset variable is an error when the key is needed, not before */
    cdc_err_clear(&err);
    T_EQ_INT(cdc_conf_load_yaml_str(c, "u.yaml", unset, strlen(unset), &err),
             0);
    {
        const char *other[] = {"state.dir", NULL};
        const char *pw[] = {"mysql.password", NULL};
        T_EQ_INT(cdc_conf_need_resolved(c, other, &err), 0);
        T_EQ_INT(cdc_conf_need_resolved(c, pw, &err), -1);
        T_ASSERT(strstr(err.msg, "CDC_T_SURELY_UNSET") != NULL);
        T_ASSERT(strstr(err.msg, "u.yaml:2:13") != NULL);
        T_EQ_INT(cdc_conf_need_resolved(c, NULL, &err), -1);
    }
    char *lit = cdc_conf_expand("x${{HOME}}y", &err);
    T_EQ_STR(lit, "x${HOME}y");
    free(lit);
    cdc_conf_destroy(c);
}

/* The declared keys: unknown keys with "did you mean", duplicates, types
 * and bounds, structure, nesting, env names, *_file. */
CDC_TEST(conf_declared_keys)
{
    cdc_conf_t *c = cdc_conf_new();
    cdc_err_t err = {0};
    const char *typo = "source: {type: mysql}\nmysql:\n  dns: x\n";
    const char *dup = "pipeline: {name: a}\nstate: {dir: s}\npipeline: {name: b}\n";
    const char *nested_dup = "mysql:\n  port: 1\n  port: 2\n";
    const char *sect = "mysql: x\n";
    const char *notmap = "mysql: {port: {a: 1}}\n";
    const char *notlist = "mysql: {port: [1, 2]}\n";
    const char *open = "kafka: {sasl: {mechanisms: PLAIN}}\n";
    const char *top = "kafka_broker: x\n";

    T_EQ_INT(cdc_conf_load_yaml_str(c, "t.yaml", typo, strlen(typo), &err), -1);
    T_ASSERT(strstr(err.msg, "t.yaml:3:3: unknown configuration key 'mysql.dns'") == err.msg);
    T_ASSERT(strstr(err.hint, "'mysql.dsn'") != NULL);
    T_EQ_INT(err.code, CDC_EXIT_CONFIG);
    T_EQ_INT(cdc_conf_load_yaml_str(c, "t.yaml", top, strlen(top), &err), -1);
    T_ASSERT(strstr(err.hint, "'kafka.brokers'") != NULL);
    T_EQ_INT(cdc_conf_load_yaml_str(c, "d.yaml", dup, strlen(dup), &err), -1);
    T_ASSERT(strstr(err.msg, "d.yaml:3:1: duplicate key 'pipeline'") == err.msg);
    T_ASSERT(strstr(err.msg, "line 1, column 1") != NULL);
    T_EQ_INT(cdc_conf_load_yaml_str(c, "d.yaml", nested_dup, strlen(nested_dup),
                                    &err), -1);
    T_ASSERT(strstr(err.msg, "d.yaml:3:3: duplicate key 'mysql.port'") == err.msg);
    {
        const char *flat = "mysql.dsn: a\nmysql:\n  dsn: b\n";
        T_EQ_INT(cdc_conf_load_yaml_str(c, "f.yaml", flat, strlen(flat), &err),
                 -1);
        T_ASSERT(strstr(err.msg, "f.yaml:3:8: duplicate key 'mysql.dsn' "
                        "(first at 1:12)") == err.msg);
    }
    T_EQ_INT(cdc_conf_load_yaml_str(c, "s.yaml", sect, strlen(sect), &err), -1);
    T_ASSERT(strstr(err.msg, "mysql is a section") != NULL);
    T_EQ_INT(cdc_conf_load_yaml_str(c, "s.yaml", notmap, strlen(notmap), &err), -1);
    T_ASSERT(strstr(err.msg, "mysql.port takes a value") != NULL);
    T_EQ_INT(cdc_conf_load_yaml_str(c, "s.yaml", notlist, strlen(notlist), &err), -1);
    T_ASSERT(strstr(err.msg, "not a list") != NULL);
    T_EQ_INT(cdc_conf_load_yaml_str(c, "o.yaml", open, strlen(open), &err), 0);
    T_EQ_STR(cdc_conf_get(c, "kafka.sasl.mechanisms", NULL), "PLAIN");
    cdc_conf_destroy(c);

    /* nesting 10,000 deep: an error, not a stack overflow (flow and block,
     * inside the open kafka.* namespace where every key is allowed) */
    for (int form = 0; form < 2; form++) {
        cdc_buf_t b = CDC_BUF_INIT;
        c = cdc_conf_new();
        cdc_buf_puts(&b, "kafka:");
        for (int i = 0; i < 10000; i++)
            if (form)
                cdc_buf_printf(&b, "\n%*sa:", 2 * (i + 1), "");
            else
                cdc_buf_puts(&b, " {a:");
        cdc_buf_puts(&b, " 1");
        for (int i = 0; !form && i < 10000; i++)
            cdc_buf_putc(&b, '}');
        cdc_buf_putc(&b, '\n');
        cdc_err_clear(&err);
        T_EQ_INT(cdc_conf_load_yaml_str(c, "n.yaml", b.p, b.len, &err), -1);
        T_ASSERT(strstr(err.msg, "nested too deeply") != NULL);
        cdc_buf_free(&b);
        cdc_conf_destroy(c);
    }

    /* values are checked against the table, naming the key and where */
    c = cdc_conf_new();
    cdc_conf_set(c, "mysql.port", "70000", "p.yaml:2:9");
    T_EQ_INT(cdc_conf_resolve(c, &err), -1);
    T_ASSERT(strstr(err.msg, "p.yaml:2:9: mysql.port = 70000 is out of range") == err.msg);
    cdc_conf_set(c, "mysql.port", "33o6", "cli");
    T_EQ_INT(cdc_conf_resolve(c, &err), -1);
    T_ASSERT(strstr(err.msg, "command line: mysql.port: '33o6'") == err.msg);
    cdc_conf_set(c, "mysql.port", "3306", "cli");
    cdc_conf_set(c, "format", "yaml", "cli");
    T_EQ_INT(cdc_conf_resolve(c, &err), -1);
    T_ASSERT(strstr(err.hint, "autoglm|debezium|xml") != NULL);
    cdc_conf_set(c, "format", "debezium", "cli");
    cdc_conf_set(c, "mysql.reconnect", "maybe", "env AUTOGLM_CDC_MYSQL_RECONNECT");
    T_EQ_INT(cdc_conf_resolve(c, &err), -1);
    T_ASSERT(strstr(err.msg, "env AUTOGLM_CDC_MYSQL_RECONNECT: mysql.reconnect") == err.msg);
    cdc_conf_set(c, "mysql.reconnect", "off", "cli");
    for (int i = 0; i < 4; i++) {
        static const char *bad[] = {"a/b", "..", "x/../y", ""};
        cdc_conf_set(c, "pipeline.name", bad[i], "cli");
        T_EQ_INT(cdc_conf_resolve(c, &err), -1);
        T_ASSERT(strstr(err.msg, "pipeline.name") != NULL);
    }
    cdc_conf_set(c, "pipeline.name", "crm-1.x", "cli");
    T_EQ_INT(cdc_conf_resolve(c, &err), 0);
    T_EQ_STR(cdc_conf_pipeline(c), "crm-1.x");
    cdc_conf_set(c, "postgres_sink.tombstone_purge_every", "0", "cli");
    T_EQ_INT(cdc_conf_resolve(c, &err), -1);
    T_ASSERT(strstr(err.msg, "postgres_sink.tombstone_purge_every") != NULL);
    cdc_conf_destroy(c);

    /* the default pipeline name is derived in one place */
    c = cdc_conf_new();
    T_EQ_STR(cdc_conf_pipeline(c), "cdc");
    cdc_conf_set(c, "source.type", "postgres", NULL);
    T_EQ_STR(cdc_conf_pipeline(c), "postgres");
    T_EQ_STR(cdc_conf_app_id(c), "postgres");
    cdc_conf_set(c, "application_id", "erp", NULL);
    T_EQ_STR(cdc_conf_app_id(c), "erp");
    T_EQ_STR(cdc_conf_pipeline(c), "postgres");
    cdc_conf_destroy(c);

    /* environment names: the table decides where the underscores go */
    c = cdc_conf_new();
    setenv("AUTOGLM_CDC_POSTGRES_SINK_BATCH_ROWS", "7", 1);
    setenv("AUTOGLM_CDC_KAFKA_SASL_MECHANISMS", "PLAIN", 1);
    setenv("AUTOGLM_CDC_KAFKA_SASL_PASSWORD_FILE", "/run/pw", 1);
    setenv("AUTOGLM_CDC_MYSQL_PASSWORD_FILE", "/run/mpw", 1);
    cdc_conf_load_env(c);
    unsetenv("AUTOGLM_CDC_POSTGRES_SINK_BATCH_ROWS");
    unsetenv("AUTOGLM_CDC_KAFKA_SASL_MECHANISMS");
    unsetenv("AUTOGLM_CDC_KAFKA_SASL_PASSWORD_FILE");
    unsetenv("AUTOGLM_CDC_MYSQL_PASSWORD_FILE");
    T_EQ_STR(cdc_conf_get(c, "kafka.sasl.password_file", NULL), "/run/pw");
    T_EQ_STR(cdc_conf_get(c, "mysql.password_file", NULL), "/run/mpw");
    T_EQ_STR(cdc_conf_get(c, "postgres_sink.batch_rows", NULL), "7");
    T_EQ_STR(cdc_conf_where(c, "postgres_sink.batch_rows"),
             "env AUTOGLM_CDC_POSTGRES_SINK_BATCH_ROWS");
    T_EQ_STR(cdc_conf_get(c, "kafka.sasl.mechanisms", NULL), "PLAIN");
    setenv("AUTOGLM_CDC_MYSQL_SERVERID", "7", 1);
    cdc_conf_load_env(c);
    unsetenv("AUTOGLM_CDC_MYSQL_SERVERID");
    T_EQ_INT(cdc_conf_resolve(c, &err), -1);
    T_ASSERT(strstr(err.msg, "env AUTOGLM_CDC_MYSQL_SERVERID: unknown") == err.msg);
    T_ASSERT(strstr(err.hint, "mysql.server_id") != NULL);
    cdc_conf_destroy(c);

    /* every declared secret is a secret to the redaction code too */
    for (const cdc_conf_key_t *k = cdc_conf_keys; k->name; k++)
        if (k->type != CDC_KT_NAMESPACE)
            T_EQ_INT(!!(k->flags & CDC_KF_SECRET), cdc_conf_is_secret(k->name));
}

/* K_file reads a secret from a file; the higher layer wins. */
CDC_TEST(conf_secret_files)
{
    char path[] = "/tmp/cdc_t_secretXXXXXX";
    int fd = mkstemp(path);
    cdc_conf_t *c = cdc_conf_new();
    cdc_err_t err = {0};

    T_ASSERT(fd >= 0);
    T_ASSERT(write(fd, "pa ss\n", 6) == 6);
    close(fd);
    cdc_conf_set(c, "mysql.password_file", path, "p.yaml:3:18");
    cdc_conf_set(c, "kafka.sasl.password_file", path, "cli");
    T_EQ_INT(cdc_conf_resolve(c, &err), 0);
    T_EQ_STR(cdc_conf_get(c, "mysql.password", NULL), "pa ss");
    T_EQ_STR(cdc_conf_get(c, "kafka.sasl.password", NULL), "pa ss");
    /* the K_file keys are gone: librdkafka would reject sasl.password_file */
    T_ASSERT(cdc_conf_get(c, "kafka.sasl.password_file", NULL) == NULL);
    T_ASSERT(cdc_conf_get(c, "mysql.password_file", NULL) == NULL);
    cdc_conf_destroy(c);
    /* a password given on a higher layer beats the file */
    c = cdc_conf_new();
    cdc_conf_set(c, "mysql.password_file", path, "p.yaml:3:18");
    cdc_conf_set(c, "mysql.password", "env-pw", "env AUTOGLM_CDC_MYSQL_PASSWORD");
    T_EQ_INT(cdc_conf_resolve(c, &err), 0);
    T_EQ_STR(cdc_conf_get(c, "mysql.password", NULL), "env-pw");
    cdc_conf_destroy(c);
    unlink(path);
    /* an unreadable file is a deferred error naming the file */
    c = cdc_conf_new();
    cdc_conf_set(c, "postgres.dsn_file", path, "cli");
    T_EQ_INT(cdc_conf_resolve(c, &err), 0);
    {
        const char *k[] = {"postgres.dsn", NULL};
        T_EQ_INT(cdc_conf_need_resolved(c, k, &err), -1);
        T_ASSERT(strstr(err.msg, path) != NULL);
    }
    /* not every key has a _file form: only secrets */
    cdc_conf_set(c, "mysql.user_file", path, "cli");
    T_EQ_INT(cdc_conf_resolve(c, &err), -1);
    T_ASSERT(strstr(err.msg, "unknown configuration key 'mysql.user_file'") != NULL);
    cdc_conf_destroy(c);
}

CDC_TEST(conf_durations)
{
    cdc_conf_t *c = cdc_conf_new();
    cdc_err_t err = {0};
    int64_t us = -1;

    T_EQ_INT(cdc_conf_get_duration(c, "k", "1d12h", 0, NULL, &us, &err), 0);
    T_ASSERT(us == (int64_t)36 * 3600 * 1000000);
    cdc_conf_set(c, "k", "0", NULL);
    T_EQ_INT(cdc_conf_get_duration(c, "k", "5m", 0, NULL, &us, &err), 0);
    T_ASSERT(us == 0);
    /* 0 where a positive duration is needed; units; overflow */
    T_EQ_INT(cdc_conf_get_duration(c, "k", NULL, 1, NULL, &us, &err), -1);
    T_ASSERT(strstr(err.msg, "of at least 1s") != NULL);
    cdc_conf_set(c, "k", "30x", NULL);
    cdc_err_clear(&err);
    T_EQ_INT(cdc_conf_get_duration(c, "k", NULL, 0, "0 keeps them", &us, &err), -1);
    T_EQ_INT(err.code, CDC_EXIT_CONFIG);
    T_ASSERT(strstr(err.hint, "0 keeps them") != NULL);
    cdc_conf_set(c, "k", "999999999999w", NULL);
    T_EQ_INT(cdc_conf_get_duration(c, "k", NULL, 0, NULL, &us, &err), -1);
    cdc_conf_set(c, "k", "h", NULL);
    T_EQ_INT(cdc_conf_get_duration(c, "k", NULL, 0, NULL, &us, &err), -1);
    cdc_conf_destroy(c);
}

CDC_TEST(redaction)
{
    char *r = cdc_conf_redact("connect mysql://cdc:hunter2@127.0.0.1:3306 ok");
    T_EQ_STR(r, "connect mysql://cdc:******@127.0.0.1:3306 ok");
    free(r);
    r = cdc_conf_redact("host=x password=hunter2 user=y");
    T_EQ_STR(r, "host=x password=****** user=y");
    free(r);
    r = cdc_conf_redact("password='a b' x");
    T_EQ_STR(r, "password=****** x");
    free(r);
    T_ASSERT(cdc_conf_is_secret("mysql.password"));
    T_ASSERT(cdc_conf_is_secret("mysql.dsn"));
    T_ASSERT(cdc_conf_is_secret("kafka.sasl.password"));
    T_ASSERT(!cdc_conf_is_secret("kafka.brokers"));
}

CDC_TEST(checkpoint_roundtrip)
{
    char dir[] = "/tmp/cdc_t_ckptXXXXXX";
    cdc_ckpt_t ck = {0}, back;
    cdc_err_t err = {0};
    char *path;

    T_ASSERT(mkdtemp(dir) != NULL);
    path = cdc_ckpt_path(dir, "p1");
    T_EQ_INT(cdc_ckpt_load(path, &back, &err), 0);
    snprintf(ck.pos.file, sizeof(ck.pos.file), "mariadb-bin.000003");
    ck.pos.offset = 1234567890123ULL;
    snprintf(ck.pos.gtid, sizeof(ck.pos.gtid), "0-1-55,1-1-2");
    ck.pos.lsn = 0x16B3748ULL | (5ULL << 32);
    ck.commit_us = 42;
    T_EQ_INT(cdc_ckpt_store(path, &ck, &err), 0);
    T_EQ_INT(cdc_ckpt_load(path, &back, &err), 1);
    T_EQ_STR(back.pos.file, "mariadb-bin.000003");
    T_EQ_INT(back.pos.offset, 1234567890123ULL);
    T_EQ_STR(back.pos.gtid, "0-1-55,1-1-2");
    T_EQ_INT(back.pos.lsn, ck.pos.lsn);
    T_EQ_INT(back.commit_us, 42);
    unlink(path);
    rmdir(dir);
    free(path);
}

static void write_file(const char *path, const char *p, size_t n)
{
    FILE *fp = fopen(path, "w");
    if (fp) {
        fwrite(p, 1, n, fp);
        fclose(fp);
    }
}

/* A checkpoint that is not whole is refused with exit 78 naming the file:
 * every cut of a real file, garbage, repeated and unknown keys. */
CDC_TEST(checkpoint_damaged_refused)
{
    char dir[] = "/tmp/cdc_t_ckdXXXXXX";
    cdc_ckpt_t ck = {0}, back;
    cdc_err_t err = {0};
    char *path, good[4096];
    size_t n;
    FILE *fp;
    static const char *const bad[] = {
        "garbage\n", "\x01\x02\x03", "version=2\n",
        "{\"lsn\":\"0/16B3748\"}\n", "version=1\nversion=1\n",
        "version=1\nsource=mysql\nfile=a\noffset=x\ngtid=\nlsn=0/0\n"
        "commit_us=0\nupdated_us=0\ntxns=0\n",
        "version=1\nsource=mysql\nfile=a\noffset=4\ngtid=\nlsn=0/0\n"
        "commit_us=0\nupdated_us=0\ntxns=0\nextra=1\n",
        "source=mysql\nversion=1\nfile=a\noffset=4\ngtid=\nlsn=0/0\n"
        "commit_us=0\nupdated_us=0\ntxns=0\n"};

    T_ASSERT(mkdtemp(dir) != NULL);
    path = cdc_ckpt_path(dir, "p1");
    snprintf(ck.source, sizeof(ck.source), "mysql");
    snprintf(ck.pos.file, sizeof(ck.pos.file), "mariadb-bin.000003");
    ck.pos.offset = 98765;
    snprintf(ck.pos.gtid, sizeof(ck.pos.gtid), "0-1-55");
    ck.txns = 12345;
    T_EQ_INT(cdc_ckpt_store(path, &ck, &err), 0);
    fp = fopen(path, "r");
    T_ASSERT(fp != NULL);
    n = fp ? fread(good, 1, sizeof(good), fp) : 0;
    if (fp)
        fclose(fp);
    T_ASSERT(n > 50);
    for (size_t cut = 0; cut < n; cut++) {
        write_file(path, good, cut);
        cdc_err_clear(&err);
        T_EQ_INT(cdc_ckpt_load(path, &back, &err), -1);
        T_EQ_INT(err.code, CDC_EXIT_CONFIG);
        T_ASSERT(strstr(err.msg, path) != NULL);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        write_file(path, bad[i], strlen(bad[i]));
        cdc_err_clear(&err);
        T_EQ_INT(cdc_ckpt_load(path, &back, &err), -1);
        T_EQ_INT(err.code, CDC_EXIT_CONFIG);
        T_ASSERT(strstr(err.msg, path) != NULL);
    }
    /* a MySQL 8.3+ tagged GTID set is a whole checkpoint too */
    snprintf(ck.pos.gtid, sizeof(ck.pos.gtid),
             "55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:my_tag:1-2");
    T_EQ_INT(cdc_ckpt_store(path, &ck, &err), 0);
    T_EQ_INT(cdc_ckpt_load(path, &back, &err), 1);
    T_EQ_STR(back.pos.gtid, ck.pos.gtid);
    write_file(path, good, n);
    T_EQ_INT(cdc_ckpt_load(path, &back, &err), 1);
    T_EQ_INT(back.txns, 12345);
    /* the engine that wrote it must be the one that reads it */
    T_EQ_INT(cdc_ckpt_check_source(path, &back, "mysql", &err), 0);
    T_EQ_INT(cdc_ckpt_check_source(path, &back, "postgres", &err), -1);
    T_EQ_INT(err.code, CDC_EXIT_CONFIG);
    T_ASSERT(strstr(err.msg, path) != NULL);
    back.source[0] = '\0'; /* as `offsets set` writes it */
    T_EQ_INT(cdc_ckpt_check_source(path, &back, "postgres", &err), -1);
    /* the other source is named from the sources' position kinds */
    T_ASSERT(strstr(err.msg, "by source mysql (it holds a binlog position)"));
    memset(&back.pos, 0, sizeof(back.pos));
    back.pos.lsn = 0x16B3748;
    T_EQ_INT(cdc_ckpt_check_source(path, &back, "postgres", &err), 0);
    T_EQ_INT(cdc_ckpt_check_source(path, &back, "mysql", &err), -1);
    T_ASSERT(strstr(err.msg, "by source postgres (it holds an LSN)"));
    /* a source without a position kind (kafka) is not checked */
    T_EQ_INT(cdc_ckpt_check_source(path, &back, "kafka", &err), 0);
    back.pos.lsn = 0;
    T_EQ_INT(cdc_ckpt_check_source(path, &back, "mysql", &err), -1);
    T_ASSERT(strstr(err.msg, "no mysql position") != NULL);
    unlink(path);
    rmdir(dir);
    free(path);
}

CDC_TEST(pipeline_lock)
{
    char dir[] = "/tmp/cdc_t_lockXXXXXX";
    cdc_err_t err = {0};
    int fd = -1, st = 0;
    pid_t child;
    char *lp;

    T_ASSERT(mkdtemp(dir) != NULL);
    T_EQ_INT(cdc_state_lock(dir, "p", "run", &fd, &err), 0);
    T_ASSERT(fd >= 0);
    fflush(stdout);
    child = fork();
    if (child == 0) {
        /* another process: refused at once, naming our pid */
        char want[64];
        int fd2 = -1;
        snprintf(want, sizeof(want), "pid %ld", (long)getppid());
        _exit(cdc_state_lock(dir, "p", "run", &fd2, &err) == -1 &&
                      err.code == CDC_EXIT_TEMPFAIL &&
                      strstr(err.msg, want)
                  ? 0
                  : 1);
    }
    T_ASSERT(child > 0 && waitpid(child, &st, 0) == child);
    T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cdc_state_unlock(fd);
    child = fork();
    if (child == 0) {
        int fd2 = -1;
        _exit(cdc_state_lock(dir, "p", "run", &fd2, &err) == 0 ? 0 : 1);
    }
    T_ASSERT(child > 0 && waitpid(child, &st, 0) == child);
    T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    lp = cdc_state_lock_path(dir, "p", "run");
    unlink(lp);
    free(lp);
    rmdir(dir);
}

CDC_TEST(position_parse)
{
    cdc_pos_t p;
    cdc_err_t err = {0};
    T_EQ_INT(cdc_pos_parse("mariadb-bin.000003:4", &p, &err), 0);
    T_EQ_STR(p.file, "mariadb-bin.000003");
    T_EQ_INT(p.offset, 4);
    T_EQ_INT(cdc_pos_parse("0-1-42,1-2-3", &p, &err), 0);
    T_EQ_STR(p.gtid, "0-1-42,1-2-3");
    T_EQ_INT(cdc_pos_parse("5/16B3748", &p, &err), 0);
    T_EQ_INT(p.lsn, (5ULL << 32) | 0x16B3748);
    T_EQ_INT(cdc_pos_parse("what?", &p, &err), -1);
}

CDC_TEST(filter)
{
    cdc_conf_t *c = cdc_conf_new();
    cdc_conf_set(c, "filter.include", "shop.*, crm.customers", NULL);
    cdc_conf_set(c, "filter.exclude", "shop.tmp_*", NULL);
    cdc_filter_t *f = cdc_filter_new(c);
    T_ASSERT(cdc_filter_match(f, "shop", "orders"));
    T_ASSERT(!cdc_filter_match(f, "shop", "tmp_x"));
    T_ASSERT(cdc_filter_match(f, "crm", "customers"));
    T_ASSERT(!cdc_filter_match(f, "crm", "leads"));
    cdc_filter_destroy(f);
    cdc_conf_destroy(c);
}

CDC_TEST_MAIN()
