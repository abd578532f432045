/* SPDX-License-Identifier: Apache-2.0 */
/*
 * envelope_debezium.c - Debezium's JSON change events, as Kafka Connect's
 * JsonConverter writes them for Debezium's MySQL and PostgreSQL connectors.
 *
 * Value: {"before","after","source","transaction","op","ts_ms","ts_us",
 * "ts_ns"}, with "source" in Debezium's field order per connector.  With
 * debezium.schemas the key and the value are {"schema":…,"payload":…}; the
 * schema texts are built once per table version and cached in the table
 * (an ALTER gives a new cdc_table_t, so the schema follows the table).
 *
 * Column values follow Debezium's value modes (docs/ENVELOPE.md has the
 * table): temporal types from the source's text form (days / ms / µs
 * since the epoch), DECIMAL as Connect Decimal bytes, SET as "a,c", BIT(n)
 * as little-endian bytes, JSON columns as JSON strings, zero dates null.
 * Two deliberate differences: BIGINT UNSIGNED above 2^63-1 stays exact
 * (Debezium wraps it negative) and YEAR 0 stays 0 (Debezium says 1900).
 *
 * The source type codes are the MySQL wire type numbers and PostgreSQL
 * type OIDs that the connectors store in cdc_column_t (cdc/change.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "cdc/conf.h"
#include "cdc/envelope.h"
#include "cdc/util.h"
#include "cdc/err.h"

/* MySQL field types (protocol numbers) */
enum {
    MY_DECIMAL = 0, MY_TINY = 1, MY_SHORT = 2, MY_LONG = 3, MY_FLOAT = 4,
    MY_DOUBLE = 5, MY_TIMESTAMP = 7, MY_LONGLONG = 8, MY_INT24 = 9,
    MY_DATE = 10, MY_TIME = 11, MY_DATETIME = 12, MY_YEAR = 13,
    MY_NEWDATE = 14, MY_VARCHAR = 15, MY_BIT = 16, MY_TIMESTAMP2 = 17,
    MY_DATETIME2 = 18, MY_TIME2 = 19, MY_VECTOR = 242, MY_JSON = 245,
    MY_NEWDECIMAL = 246, MY_ENUM = 247, MY_SET = 248, MY_TINY_BLOB = 249,
    MY_MEDIUM_BLOB = 250, MY_LONG_BLOB = 251, MY_BLOB = 252,
    MY_VAR_STRING = 253, MY_STRING = 254, MY_GEOMETRY = 255,
};
/* PostgreSQL type OIDs */
enum {
    PG_BOOL = 16, PG_BYTEA = 17, PG_INT8 = 20, PG_INT2 = 21, PG_INT4 = 23,
    PG_OID = 26, PG_JSON = 114, PG_FLOAT4 = 700, PG_FLOAT8 = 701,
    PG_DATE = 1082, PG_TIME = 1083, PG_TIMESTAMP = 1114,
    PG_TIMESTAMPTZ = 1184, PG_TIMETZ = 1266, PG_NUMERIC = 1700,
    PG_UUID = 2950, PG_JSONB = 3802,
};

/* What a column becomes in Debezium's model. */
typedef enum {
    DK_TEXT,      /* our value as it is (strings, embedded arrays) */
    DK_BOOL, DK_INT16, DK_INT32, DK_INT64, DK_FLOAT32, DK_FLOAT64,
    DK_U64,       /* BIGINT UNSIGNED */
    DK_DECIMAL,   /* fixed scale */
    DK_VARDEC,    /* PG numeric without a typmod */
    DK_DATE, DK_TIME, DK_DATETIME, DK_ZONED, DK_ZONEDTIME, DK_YEAR,
    DK_BINARY, DK_ENUM, DK_SET, DK_BIT1, DK_BITS, DK_JSON, DK_JSONTEXT,
    DK_GEOMETRY, DK_UUID,
    DK_ARRAY,     /* PG one-dimensional arrays: prec = element dk_t */
} dk_t;

typedef struct col_info {
    dk_t k;
    int prec, scale; /* DECIMAL: precision and scale; temporal: fsp */
} col_info_t;

static int is_pg(const cdc_txn_t *tx)
{
    return tx->connector && !strcmp(tx->connector, "postgresql");
}

static col_info_t classify_mysql(const cdc_column_t *c)
{
    col_info_t ci = {DK_TEXT, 0, 0};
    int uns = (c->flags & CDC_COL_UNSIGNED) != 0;

    switch (c->type) {
    case MY_TINY: ci.k = DK_INT16; break;
    case MY_SHORT: ci.k = uns ? DK_INT32 : DK_INT16; break;
    case MY_INT24: ci.k = DK_INT32; break;
    case MY_LONG: ci.k = uns ? DK_INT64 : DK_INT32; break;
    case MY_LONGLONG: ci.k = uns ? DK_U64 : DK_INT64; break;
    case MY_FLOAT: ci.k = DK_FLOAT32; break;
    case MY_DOUBLE: ci.k = DK_FLOAT64; break;
    case MY_DECIMAL:
    case MY_NEWDECIMAL:
        ci.k = DK_DECIMAL;
        ci.prec = (int)(c->meta >> 8);
        ci.scale = (int)(c->meta & 0xFF);
        break;
    case MY_DATE: case MY_NEWDATE: ci.k = DK_DATE; break;
    case MY_TIME: case MY_TIME2:
        ci.k = DK_TIME;
        ci.prec = c->type == MY_TIME2 ? (int)c->meta : 0;
        break;
    case MY_DATETIME: case MY_DATETIME2:
        ci.k = DK_DATETIME;
        ci.prec = c->type == MY_DATETIME2 ? (int)c->meta : 0;
        break;
    case MY_TIMESTAMP: case MY_TIMESTAMP2: ci.k = DK_ZONED; break;
    case MY_YEAR: ci.k = DK_YEAR; break;
    case MY_BIT:
        ci.k = c->meta == 1 ? DK_BIT1 : DK_BITS;
        ci.prec = (int)c->meta;
        break;
    case MY_ENUM: ci.k = c->members ? DK_ENUM : DK_INT32; break;
    case MY_SET: ci.k = c->members ? DK_SET : DK_INT64; break;
    case MY_JSON: ci.k = DK_JSON; break;
    case MY_GEOMETRY: ci.k = DK_GEOMETRY; break;
    case MY_STRING: case MY_VARCHAR: case MY_VAR_STRING:
    case MY_TINY_BLOB: case MY_MEDIUM_BLOB: case MY_LONG_BLOB: case MY_BLOB:
        ci.k = c->flags & CDC_COL_BINARY ? DK_BINARY : DK_TEXT;
        break;
    default: break;
    }
    return ci;
}

static col_info_t classify_pg(const cdc_column_t *c)
{
    col_info_t ci = {DK_TEXT, 0, 0};
    int32_t mod = (int32_t)c->meta;

    switch (c->type) {
    case PG_BOOL: ci.k = DK_BOOL; break;
    case PG_INT2: ci.k = DK_INT16; break;
    case PG_INT4: ci.k = DK_INT32; break;
    case PG_INT8: case PG_OID: ci.k = DK_INT64; break;
    case PG_FLOAT4: ci.k = DK_FLOAT32; break;
    case PG_FLOAT8: ci.k = DK_FLOAT64; break;
    case PG_NUMERIC:
        if (mod >= 4) {
            ci.k = DK_DECIMAL;
            ci.prec = ((mod - 4) >> 16) & 0xFFFF;
            ci.scale = (mod - 4) & 0xFFFF;
        } else
            ci.k = DK_VARDEC;
        break;
    case PG_BYTEA: ci.k = DK_BINARY; break;
    case PG_DATE: ci.k = DK_DATE; break;
    case PG_TIME:
        ci.k = DK_TIME;
        ci.prec = mod >= 0 ? mod : 6;
        break;
    case PG_TIMESTAMP:
        ci.k = DK_DATETIME;
        ci.prec = mod >= 0 ? mod : 6;
        break;
    case PG_TIMESTAMPTZ: ci.k = DK_ZONED; break;
    case PG_TIMETZ: ci.k = DK_ZONEDTIME; break;
    case PG_JSON: case PG_JSONB: ci.k = DK_JSON; break;
    case PG_UUID: ci.k = DK_UUID; break;
    /* arrays whose elements our value rules write as JSON numbers,
     * booleans or strings */
    case 1000: ci.k = DK_ARRAY; ci.prec = DK_BOOL; break;
    case 1005: ci.k = DK_ARRAY; ci.prec = DK_INT16; break;
    case 1007: ci.k = DK_ARRAY; ci.prec = DK_INT32; break;
    case 1016: ci.k = DK_ARRAY; ci.prec = DK_INT64; break;
    case 1021: ci.k = DK_ARRAY; ci.prec = DK_FLOAT32; break;
    case 1022: ci.k = DK_ARRAY; ci.prec = DK_FLOAT64; break;
    case 1009: case 1014: case 1015: ci.k = DK_ARRAY; ci.prec = DK_TEXT; break;
    default: break;
    }
    return ci;
}

static col_info_t classify(const cdc_column_t *c, int pg)
{
    return pg ? classify_pg(c) : classify_mysql(c);
}

/* ---- temporal text -> numbers ------------------------------------------ */

/* Read n digits at s into *v; -1 if they are not all digits. */
static int digits(const char *s, size_t len, size_t at, int n, unsigned *v)
{
    unsigned r = 0;

    if (at + (size_t)n > len)
        return -1;
    for (int i = 0; i < n; i++) {
        char c = s[at + (size_t)i];
        if (c < '0' || c > '9')
            return -1;
        r = r * 10 + (unsigned)(c - '0');
    }
    *v = r;
    return 0;
}

/* "YYYY-MM-DD": 0, or 1 for a zero date (month or day 0), -1 for other
 * text (PG infinity, BC dates). */
static int parse_date(const char *s, size_t len, int64_t *days)
{
    unsigned y, m, d;

    if (digits(s, len, 0, 4, &y) || len < 10 || s[4] != '-' ||
        digits(s, len, 5, 2, &m) || s[7] != '-' || digits(s, len, 8, 2, &d))
        return -1;
    if (m == 0 || d == 0)
        return 1;
    if (m > 12 || d > 31)
        return -1;
    *days = cdc_days_from_civil(y, m, d);
    return 0;
}

/* "[-]H+:MM:SS[.f]" at s -> µs (signed); -1 if not that form. */
static int parse_hms(const char *s, size_t len, int64_t *us)
{
    size_t i = 0;
    int neg = 0;
    uint64_t h = 0;
    unsigned mi, se, frac = 0, scale = 100000;

    if (i < len && s[i] == '-')
        neg = 1, i++;
    if (i >= len || s[i] < '0' || s[i] > '9')
        return -1;
    while (i < len && s[i] >= '0' && s[i] <= '9' && h < 100000)
        h = h * 10 + (uint64_t)(s[i++] - '0');
    if (i >= len || s[i] != ':' || digits(s, len, i + 1, 2, &mi) ||
        i + 3 >= len || s[i + 3] != ':' || digits(s, len, i + 4, 2, &se))
        return -1;
    i += 6;
    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            frac += (unsigned)(s[i] - '0') * scale;
            scale /= 10;
        }
    }
    if (i != len)
        return -1;
    *us = (int64_t)((h * 3600 + mi * 60 + se) * 1000000 + frac);
    if (neg)
        *us = -*us;
    return 0;
}

/* "YYYY-MM-DD HH:MM:SS[.f]" -> µs since the epoch; 1 zero date, -1 other */
static int parse_datetime(const char *s, size_t len, int64_t *us)
{
    int64_t days, t;
    int r = parse_date(s, len, &days);

    if (r)
        return r;
    if (len < 19 || (s[10] != ' ' && s[10] != 'T') ||
        parse_hms(s + 11, len - 11, &t) < 0)
        return -1;
    *us = days * 86400000000LL + t;
    return 0;
}

/* ---- decimal -> Connect Decimal bytes ---------------------------------- */

/* Big-endian two's complement of the unscaled value of decimal text, in
 * the fewest bytes (Java's BigInteger.toByteArray); *scale_out the digits
 * after the point.  -1 for text that is not a finite decimal, or whose
 * value does not fit in cap bytes (dec_cap sizes it so that it fits). */
static int unscaled_bytes(const char *s, size_t len, int want_scale,
                          uint8_t *b, size_t cap, size_t *n, int *scale_out)
{
    size_t i = 0, nb = 1;
    int neg = 0, point = -1, sc = 0;

    memset(b, 0, cap);
    if (i < len && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (i >= len)
        return -1;
    for (; i < len; i++) {
        unsigned carry;
        if (s[i] == '.' && point < 0) {
            point = 1;
            continue;
        }
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (point > 0)
            sc++;
        carry = (unsigned)(s[i] - '0');
        for (size_t k = 0; k < cap; k++) { /* b = b * 10 + digit, LE */
            unsigned v = b[k] * 10u + carry;
            b[k] = (uint8_t)v;
            carry = v >> 8;
        }
        if (carry)
            return -1;
    }
    for (; want_scale >= 0 && sc < want_scale; sc++) {
        unsigned carry = 0;
        for (size_t k = 0; k < cap; k++) {
            unsigned v = b[k] * 10u + carry;
            b[k] = (uint8_t)v;
            carry = v >> 8;
        }
        if (carry)
            return -1;
    }
    if (neg) { /* two's complement */
        unsigned carry = 1;
        for (size_t k = 0; k < cap; k++) {
            unsigned v = (uint8_t)~b[k] + carry;
            b[k] = (uint8_t)v;
            carry = v >> 8;
        }
    }
    /* fewest bytes that keep the sign */
    for (nb = cap; nb > 1; nb--) {
        uint8_t top = b[nb - 1], next = b[nb - 2];
        if (!((top == 0 && !(next & 0x80)) || (top == 0xFF && (next & 0x80))))
            break;
    }
    for (size_t k = 0; k < nb / 2; k++) { /* to big-endian */
        uint8_t t = b[k];
        b[k] = b[nb - 1 - k];
        b[nb - 1 - k] = t;
    }
    *n = nb;
    *scale_out = sc;
    return 0;
}

/* ---- values -------------------------------------------------------------- */

static void put_b64(cdc_buf_t *out, const void *p, size_t n)
{
    cdc_buf_putc(out, '"');
    cdc_buf_base64(out, (const uint8_t *)p, n);
    cdc_buf_putc(out, '"');
}

static void put_binary(cdc_buf_t *out, const cdc_env_opts_t *o,
                       const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";

    if (o->binary_mode != CDC_DBZ_BIN_HEX) { /* bytes and base64 alike */
        put_b64(out, p, n);
        return;
    }
    cdc_buf_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        cdc_buf_putc(out, hex[(uint8_t)p[i] >> 4]);
        cdc_buf_putc(out, hex[(uint8_t)p[i] & 15]);
    }
    cdc_buf_putc(out, '"');
}

/* Bytes that hold the unscaled value of len characters of decimal text
 * padded to want_scale digits: a digit is log2(10) < 5/12 bytes, plus the
 * sign bit. */
static size_t dec_cap(size_t len, int want_scale)
{
    size_t digits = len + (want_scale > 0 ? (size_t)want_scale : 0);
    return digits * 5 / 12 + 2;
}

/* Decimal text under decimal.handling.mode; vardec: PG numeric without a
 * scale ({"scale","value"} in precise mode).  Any length: a PostgreSQL
 * numeric has up to 131072 digits before the point, and a value that is
 * there is never written as null. */
static void put_decimal(cdc_buf_t *out, const cdc_env_opts_t *o,
                        const char *s, size_t len, int scale, int vardec)
{
    uint8_t small[40], *b = small;
    size_t n, cap = dec_cap(len, vardec ? -1 : scale);
    int sc, r;

    if (o->decimal_mode == CDC_DBZ_DEC_STRING) {
        cdc_json_string(out, s, len);
        return;
    }
    if (o->decimal_mode == CDC_DBZ_DEC_DOUBLE) {
        char tmp[96], *t = len < sizeof(tmp) ? tmp : cdc_xmalloc(len + 1);
        memcpy(t, s, len);
        t[len] = '\0';
        cdc_json_double(out, strtod(t, NULL), 0);
        if (t != tmp)
            free(t);
        return;
    }
    if (cap > sizeof(small))
        b = cdc_xmalloc(cap);
    r = unscaled_bytes(s, len, vardec ? -1 : scale, b, cap, &n, &sc);
    if (r < 0) {
        cdc_buf_puts(out, "null"); /* NaN, ±Infinity: no Decimal for them */
        if (b != small)
            free(b);
        return;
    }
    if (vardec) {
        cdc_buf_puts(out, "{\"scale\":");
        cdc_json_i64(out, sc);
        cdc_buf_puts(out, ",\"value\":");
        put_b64(out, b, n);
        cdc_buf_putc(out, '}');
    } else
        put_b64(out, b, n);
    if (b != small)
        free(b);
}

/* A SET value (our JSON array of members) as "a,c". */
static void put_set(cdc_buf_t *out, const cdc_value_t *v)
{
    char ebuf[64];
    yajl_val arr = yajl_tree_parse(v->s, ebuf, sizeof(ebuf));
    cdc_buf_t b = CDC_BUF_INIT;

    if (!YAJL_IS_ARRAY(arr)) {
        yajl_tree_free(arr);
        cdc_json_string(out, v->s, v->len);
        return;
    }
    for (size_t i = 0; i < arr->u.array.len; i++) {
        const char *m = YAJL_GET_STRING(arr->u.array.values[i]);
        if (i)
            cdc_buf_putc(&b, ',');
        if (m)
            cdc_buf_puts(&b, m);
    }
    cdc_json_string(out, b.p ? b.p : "", b.len);
    cdc_buf_free(&b);
    yajl_tree_free(arr);
}

static void put_temporal(cdc_buf_t *out, const cdc_env_opts_t *o,
                         const col_info_t *ci, int pg, const cdc_value_t *v)
{
    int64_t x;
    int r;

    if (o->time_mode == CDC_DBZ_TIME_ISO) {
        cdc_json_value(out, v);
        return;
    }
    switch (ci->k) {
    case DK_DATE:
        r = parse_date(v->s, v->len, &x);
        break;
    case DK_DATETIME:
        r = parse_datetime(v->s, v->len, &x);
        if (r == 0 && (o->time_mode == CDC_DBZ_TIME_CONNECT || ci->prec <= 3))
            x = x >= 0 ? x / 1000 : -((-x + 999) / 1000); /* ms */
        break;
    default: /* DK_TIME */
        r = parse_hms(v->s, v->len, &x);
        if (r == 0 && (o->time_mode == CDC_DBZ_TIME_CONNECT ||
                       (pg && o->time_mode == CDC_DBZ_TIME_ADAPTIVE &&
                        ci->prec <= 3)))
            x /= 1000; /* ms */
        break;
    }
    if (r == 1)
        cdc_buf_puts(out, "null"); /* zero date, as Debezium */
    else if (r < 0)
        cdc_json_value(out, v); /* infinity and such: the text */
    else
        cdc_json_i64(out, x);
}

/* One column value the Debezium way. */
static void put_value(cdc_buf_t *out, const cdc_env_opts_t *o, int pg,
                      const cdc_column_t *c, const cdc_value_t *v)
{
    col_info_t ci;

    if (v->kind <= CDC_V_NULL) {
        cdc_buf_puts(out, "null");
        return;
    }
    ci = classify(c, pg);
    switch (ci.k) {
    case DK_U64:
        if (o->bigint_mode == CDC_DBZ_BIGINT_PRECISE && v->kind == CDC_V_UINT) {
            char tmp[24];
            int n = snprintf(tmp, sizeof(tmp), "%llu",
                             (unsigned long long)v->u.u);
            put_decimal(out, o, tmp, (size_t)n, 0, 0);
        } else
            cdc_json_value(out, v); /* exact, never wrapped */
        return;
    case DK_DECIMAL:
    case DK_VARDEC:
        if (v->kind == CDC_V_DECIMAL || v->kind == CDC_V_STRING)
            put_decimal(out, o, v->s, v->len, ci.scale, ci.k == DK_VARDEC);
        else
            cdc_json_value(out, v);
        return;
    case DK_DATE:
    case DK_DATETIME:
    case DK_TIME:
        if (v->kind == CDC_V_STRING)
            put_temporal(out, o, &ci, pg, v);
        else
            cdc_json_value(out, v);
        return;
    case DK_ZONED:
        if (v->kind == CDC_V_STRING && o->time_mode != CDC_DBZ_TIME_ISO &&
            v->len >= 10 && !memcmp(v->s, "0000-00-00", 10))
            cdc_buf_puts(out, "null");
        else
            cdc_json_value(out, v);
        return;
    case DK_BINARY:
        if (v->kind == CDC_V_BYTES)
            put_binary(out, o, v->s, v->len);
        else
            cdc_json_value(out, v);
        return;
    case DK_BIT1:
        cdc_buf_puts(out, v->kind == CDC_V_UINT && v->u.u ? "true" : "false");
        return;
    case DK_BITS:
        if (v->kind == CDC_V_UINT) { /* little-endian, (n+7)/8 bytes */
            uint8_t b[8];
            size_t nb = (size_t)(ci.prec + 7) / 8;
            for (size_t i = 0; i < nb; i++)
                b[i] = (uint8_t)(v->u.u >> (8 * i));
            put_b64(out, b, nb);
        } else
            cdc_json_value(out, v);
        return;
    case DK_SET:
        if (v->kind == CDC_V_JSON)
            put_set(out, v);
        else
            cdc_json_value(out, v);
        return;
    case DK_JSON:
    case DK_TEXT:
        if (v->kind == CDC_V_JSON) {
            /* JSON columns (MariaDB JSON too) as JSON-encoded strings, and
             * so PG arrays of types without an array schema here: the
             * text our value rules embed, as a string */
            cdc_buf_t j = CDC_BUF_INIT;
            cdc_json_value(&j, v);
            cdc_json_string(out, j.p, j.len);
            cdc_buf_free(&j);
            return;
        }
        cdc_json_value(out, v);
        return;
    default:
        cdc_json_value(out, v);
        return;
    }
}

struct value_ctx {
    const cdc_env_opts_t *o;
    int pg;
};

static void image_value(cdc_buf_t *out, const void *ctx,
                        const cdc_column_t *c, const cdc_value_t *v)
{
    const struct value_ctx *x = ctx;
    put_value(out, x->o, x->pg, c, v);
}

/* {"col":value,...} of the present columns; NULL image -> null. */
static void put_image(cdc_buf_t *out, const cdc_env_opts_t *o, int pg,
                      const cdc_table_t *t, const cdc_value_t *img)
{
    struct value_ctx x = {o, pg};
    cdc_json_image(out, t, img, image_value, &x);
}

static int same_value(const cdc_value_t *a, const cdc_value_t *b)
{
    if (a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case CDC_V_BOOL: return a->u.b == b->u.b;
    case CDC_V_INT: case CDC_V_UINT: return a->u.u == b->u.u;
    case CDC_V_FLOAT: case CDC_V_DOUBLE:
        return !memcmp(&a->u.d, &b->u.d, sizeof(a->u.d));
    case CDC_V_DECIMAL: case CDC_V_STRING: case CDC_V_BYTES: case CDC_V_JSON:
        return a->len == b->len && !memcmp(a->s, b->s, a->len);
    default: return 1;
    }
}

int cdc_dbz_key_changed(const cdc_change_t *ch)
{
    const cdc_table_t *t = ch->tbl;

    if (ch->op != CDC_OP_UPDATE || !ch->before || !ch->after || !t->npk)
        return 0;
    for (uint32_t k = 0; k < t->npk; k++) {
        const cdc_value_t *a = &ch->before[t->pk[k]], *b = &ch->after[t->pk[k]];
        if (a->kind == CDC_V_ABSENT || b->kind == CDC_V_ABSENT ||
            a->kind == CDC_V_UNCHANGED || b->kind == CDC_V_UNCHANGED)
            continue;
        if (!same_value(a, b))
            return 1;
    }
    return 0;
}

/* ---- schemas --------------------------------------------------------------- */

static void put_str(cdc_buf_t *out, const char *s)
{
    cdc_json_string(out, s, strlen(s));
}

/* "name":"…","version":1 of a logical type. */
static void put_logical(cdc_buf_t *out, const char *name)
{
    cdc_buf_puts(out, ",\"name\":");
    put_str(out, name);
    cdc_buf_puts(out, ",\"version\":1");
}

static const char *mysql_type_name(const cdc_column_t *c)
{
    switch (c->type) {
    case MY_TINY: return "TINYINT";
    case MY_SHORT: return "SMALLINT";
    case MY_INT24: return "MEDIUMINT";
    case MY_LONG: return "INT";
    case MY_LONGLONG: return "BIGINT";
    case MY_FLOAT: return "FLOAT";
    case MY_DOUBLE: return "DOUBLE";
    case MY_DECIMAL: case MY_NEWDECIMAL: return "DECIMAL";
    case MY_DATE: case MY_NEWDATE: return "DATE";
    case MY_TIME: case MY_TIME2: return "TIME";
    case MY_DATETIME: case MY_DATETIME2: return "DATETIME";
    case MY_TIMESTAMP: case MY_TIMESTAMP2: return "TIMESTAMP";
    case MY_YEAR: return "YEAR";
    case MY_BIT: return "BIT";
    case MY_ENUM: return "ENUM";
    case MY_SET: return "SET";
    case MY_JSON: return "JSON";
    case MY_GEOMETRY: return "GEOMETRY";
    case MY_STRING: return c->flags & CDC_COL_BINARY ? "BINARY" : "CHAR";
    case MY_VARCHAR: case MY_VAR_STRING:
        return c->flags & CDC_COL_BINARY ? "VARBINARY" : "VARCHAR";
    case MY_TINY_BLOB: case MY_MEDIUM_BLOB: case MY_LONG_BLOB: case MY_BLOB:
        return c->flags & CDC_COL_BINARY ? "BLOB" : "TEXT";
    default: return "UNKNOWN";
    }
}

static const char *pg_type_name(const cdc_column_t *c)
{
    switch (c->type) {
    case PG_BOOL: return "BOOL";
    case PG_BYTEA: return "BYTEA";
    case PG_INT2: return "INT2";
    case PG_INT4: return "INT4";
    case PG_INT8: return "INT8";
    case PG_FLOAT4: return "FLOAT4";
    case PG_FLOAT8: return "FLOAT8";
    case PG_NUMERIC: return "NUMERIC";
    case PG_DATE: return "DATE";
    case PG_TIME: return "TIME";
    case PG_TIMETZ: return "TIMETZ";
    case PG_TIMESTAMP: return "TIMESTAMP";
    case PG_TIMESTAMPTZ: return "TIMESTAMPTZ";
    case PG_JSON: return "JSON";
    case PG_JSONB: return "JSONB";
    case PG_UUID: return "UUID";
    case 25: return "TEXT";
    case 1043: return "VARCHAR";
    case 1042: return "BPCHAR";
    default: return "UNKNOWN";
    }
}

/* ,"parameters":{…} of a column: the logical type's own and, with
 * column.propagate.source.type, __debezium.source.column.*. */
static void put_params(cdc_buf_t *out, const cdc_env_opts_t *o, int pg,
                       const cdc_column_t *c, const col_info_t *ci,
                       int decimal)
{
    int any = 0;
    char tmp[32];

#define SEP() cdc_buf_puts(out, any++ ? "," : ",\"parameters\":{")
    if (decimal) {
        SEP();
        snprintf(tmp, sizeof(tmp), "%d", decimal > 1 ? 0 : ci->scale);
        cdc_buf_puts(out, "\"scale\":");
        put_str(out, tmp);
        if (decimal == 1 && ci->prec > 0) {
            snprintf(tmp, sizeof(tmp), "%d", ci->prec);
            cdc_buf_puts(out, ",\"connect.decimal.precision\":");
            put_str(out, tmp);
        } else if (decimal == 2) {
            cdc_buf_puts(out, ",\"connect.decimal.precision\":\"20\"");
        }
    }
    if ((ci->k == DK_ENUM || ci->k == DK_SET) && c->members) {
        cdc_buf_t b = CDC_BUF_INIT;
        for (uint32_t i = 0; i < c->nmembers; i++) {
            if (i)
                cdc_buf_putc(&b, ',');
            cdc_buf_puts(&b, c->members[i]);
        }
        SEP();
        cdc_buf_puts(out, "\"allowed\":");
        cdc_json_string(out, b.p ? b.p : "", b.len);
        cdc_buf_free(&b);
    }
    if (ci->k == DK_BITS) {
        SEP();
        snprintf(tmp, sizeof(tmp), "%d", ci->prec);
        cdc_buf_puts(out, "\"length\":");
        put_str(out, tmp);
    }
    if (o->src_type) {
        SEP();
        cdc_buf_puts(out, "\"__debezium.source.column.type\":");
        put_str(out, pg ? pg_type_name(c) : mysql_type_name(c));
        cdc_buf_puts(out, ",\"__debezium.source.column.name\":");
        put_str(out, c->name ? c->name : "?");
        if (ci->k == DK_DECIMAL) {
            snprintf(tmp, sizeof(tmp), "%d", ci->prec);
            cdc_buf_puts(out, ",\"__debezium.source.column.length\":");
            put_str(out, tmp);
            snprintf(tmp, sizeof(tmp), "%d", ci->scale);
            cdc_buf_puts(out, ",\"__debezium.source.column.scale\":");
            put_str(out, tmp);
        }
    }
    if (any)
        cdc_buf_putc(out, '}');
#undef SEP
}

/* ,"field":"<column name>"} closing a field schema. */
static void put_field_end(cdc_buf_t *out, const cdc_column_t *c)
{
    cdc_buf_puts(out, ",\"field\":");
    put_str(out, c->name ? c->name : "?");
    cdc_buf_putc(out, '}');
}

/* Connect type and logical name of a DATE, TIME or DATETIME column under
 * the time mode (iso_string: our text, a plain string). */
static void temporal_type(const col_info_t *ci, const cdc_env_opts_t *o,
                          int pg, const char **type, const char **name)
{
    int conn = o->time_mode == CDC_DBZ_TIME_CONNECT;

    if (o->time_mode == CDC_DBZ_TIME_ISO)
        return;
    if (ci->k == DK_DATE) {
        *type = "int32";
        *name = conn ? "org.apache.kafka.connect.data.Date"
                     : "io.debezium.time.Date";
    } else if (ci->k == DK_DATETIME) {
        *type = "int64";
        *name = conn ? "org.apache.kafka.connect.data.Timestamp"
                : ci->prec <= 3 ? "io.debezium.time.Timestamp"
                                : "io.debezium.time.MicroTimestamp";
    } else if (conn) {
        *type = "int32";
        *name = "org.apache.kafka.connect.data.Time";
    } else if (pg && o->time_mode == CDC_DBZ_TIME_ADAPTIVE && ci->prec <= 3) {
        *type = "int32";
        *name = "io.debezium.time.Time";
    } else { /* MySQL TIME: µs in both adaptive modes */
        *type = "int64";
        *name = "io.debezium.time.MicroTime";
    }
}

/* The struct and array schemas: PG numeric without a scale (precise
 * mode), PG arrays, geometry.  0 if the column's schema is a plain one. */
static int put_compound_schema(cdc_buf_t *out, const cdc_env_opts_t *o,
                               int pg, const cdc_column_t *c,
                               const col_info_t *ci, int optional)
{
    static const char *const et[] = {
        [DK_BOOL] = "boolean", [DK_INT16] = "int16", [DK_INT32] = "int32",
        [DK_INT64] = "int64", [DK_FLOAT32] = "float",
        [DK_FLOAT64] = "double", [DK_TEXT] = "string"};

    if (ci->k == DK_VARDEC && o->decimal_mode == CDC_DBZ_DEC_PRECISE) {
        cdc_buf_puts(out, "{\"type\":\"struct\",\"fields\":["
                          "{\"type\":\"int32\",\"optional\":false,"
                          "\"field\":\"scale\"},{\"type\":\"bytes\","
                          "\"optional\":false,\"field\":\"value\"}],"
                          "\"optional\":");
        cdc_buf_puts(out, optional ? "true" : "false");
        put_logical(out, "io.debezium.data.VariableScaleDecimal");
    } else if (ci->k == DK_ARRAY) {
        cdc_buf_puts(out, "{\"type\":\"array\",\"items\":{\"type\":\"");
        cdc_buf_puts(out, et[ci->prec]);
        cdc_buf_puts(out, "\",\"optional\":true},\"optional\":");
        cdc_buf_puts(out, optional ? "true" : "false");
    } else if (ci->k == DK_GEOMETRY) {
        cdc_buf_puts(out, "{\"type\":\"struct\",\"fields\":["
                          "{\"type\":\"int32\",\"optional\":true,"
                          "\"field\":\"srid\"},{\"type\":\"bytes\","
                          "\"optional\":false,\"field\":\"wkb\"}],"
                          "\"optional\":");
        cdc_buf_puts(out, optional ? "true" : "false");
        cdc_buf_puts(out, ",\"name\":\"io.debezium.data.geometry.Geometry\","
                          "\"version\":1,\"doc\":\"Geometry\"");
    } else
        return 0;
    put_params(out, o, pg, c, ci, 0);
    put_field_end(out, c);
    return 1;
}

/* The Connect schema of one column. */
static void put_field_schema(cdc_buf_t *out, const cdc_env_opts_t *o, int pg,
                             const cdc_column_t *c)
{
    col_info_t ci = classify(c, pg);
    const char *type = "string", *name = NULL;
    int decimal = 0, optional = !(c->flags & CDC_COL_PK);

    if (put_compound_schema(out, o, pg, c, &ci, optional))
        return;
    switch (ci.k) {
    case DK_BOOL: case DK_BIT1: type = "boolean"; break;
    case DK_INT16: type = "int16"; break;
    case DK_INT32: type = "int32"; break;
    case DK_INT64: type = "int64"; break;
    case DK_FLOAT32: type = "float"; break;
    case DK_FLOAT64: type = "double"; break;
    case DK_U64:
        type = "int64";
        if (o->bigint_mode == CDC_DBZ_BIGINT_PRECISE) {
            type = "bytes";
            name = "org.apache.kafka.connect.data.Decimal";
            decimal = 2;
        }
        break;
    case DK_DECIMAL:
    case DK_VARDEC: /* VARDEC in precise mode: a compound schema */
        if (o->decimal_mode == CDC_DBZ_DEC_DOUBLE)
            type = "double";
        else if (o->decimal_mode == CDC_DBZ_DEC_PRECISE) {
            type = "bytes";
            name = "org.apache.kafka.connect.data.Decimal";
            decimal = 1;
        }
        break;
    case DK_DATE: case DK_TIME: case DK_DATETIME:
        temporal_type(&ci, o, pg, &type, &name);
        break;
    case DK_ZONED: name = "io.debezium.time.ZonedTimestamp"; break;
    case DK_ZONEDTIME: name = "io.debezium.time.ZonedTime"; break;
    case DK_YEAR:
        type = "int32";
        if (o->time_mode != CDC_DBZ_TIME_CONNECT)
            name = "io.debezium.time.Year";
        break;
    case DK_BINARY:
        if (o->binary_mode == CDC_DBZ_BIN_BYTES)
            type = "bytes";
        break;
    case DK_ENUM: name = "io.debezium.data.Enum"; break;
    case DK_SET: name = "io.debezium.data.EnumSet"; break;
    case DK_BITS:
        type = "bytes";
        name = "io.debezium.data.Bits";
        break;
    case DK_JSON: name = "io.debezium.data.Json"; break;
    case DK_UUID: name = "io.debezium.data.Uuid"; break;
    default: break;
    }
    cdc_buf_puts(out, "{\"type\":\"");
    cdc_buf_puts(out, type);
    cdc_buf_puts(out, "\",\"optional\":");
    cdc_buf_puts(out, optional ? "true" : "false");
    if (name)
        put_logical(out, name);
    put_params(out, o, pg, c, &ci, decimal);
    put_field_end(out, c);
}

/* "<prefix>.<db>.<table>.<suffix>" as a JSON string. */
static void put_record_name(cdc_buf_t *out, const cdc_env_opts_t *o,
                            const cdc_table_t *t, const char *suffix)
{
    cdc_buf_t b = CDC_BUF_INIT;

    cdc_buf_printf(&b, "%s.%s.%s.%s",
                   o->application_id ? o->application_id : "autoglm-cdc",
                   t->db ? t->db : "", t->name ? t->name : "", suffix);
    cdc_json_string(out, b.p, b.len);
    cdc_buf_free(&b);
}

/* Key columns: the primary key, or every column without one. */
static int is_key_col(const cdc_table_t *t, uint32_t i)
{
    if (!t->npk)
        return 1;
    for (uint32_t k = 0; k < t->npk; k++)
        if (t->pk[k] == i)
            return 1;
    return 0;
}

static void put_row_schema(cdc_buf_t *out, const cdc_env_opts_t *o, int pg,
                           const cdc_table_t *t, int key)
{
    int first = 1;

    cdc_buf_puts(out, "{\"type\":\"struct\",\"fields\":[");
    if (key && t->npk) {
        for (uint32_t k = 0; k < t->npk; k++) {
            if (k)
                cdc_buf_putc(out, ',');
            put_field_schema(out, o, pg, &t->cols[t->pk[k]]);
        }
    } else {
        for (uint32_t i = 0; i < t->ncols; i++) {
            if (key && !is_key_col(t, i))
                continue;
            if (!first)
                cdc_buf_putc(out, ',');
            first = 0;
            put_field_schema(out, o, pg, &t->cols[i]);
        }
    }
    cdc_buf_puts(out, "],\"optional\":");
    cdc_buf_puts(out, key ? "false" : "true");
    cdc_buf_puts(out, ",\"name\":");
    put_record_name(out, o, t, key ? "Key" : "Value");
}

static const char *const src_mysql[] = {
    "string,false,version", "string,false,connector", "string,false,name",
    "int64,false,ts_ms", "snapshot", "string,false,db",
    "string,true,sequence", "int64,true,ts_us", "int64,true,ts_ns",
    "string,true,table", "int64,false,server_id", "string,true,gtid",
    "string,false,file", "int64,false,pos", "int32,false,row",
    "int64,true,thread", "string,true,query", NULL};
static const char *const src_pg[] = {
    "string,false,version", "string,false,connector", "string,false,name",
    "int64,false,ts_ms", "snapshot", "string,false,db",
    "string,true,sequence", "int64,true,ts_us", "int64,true,ts_ns",
    "string,false,schema", "string,false,table", "int64,true,txId",
    "int64,true,lsn", "int64,true,xmin", NULL};

static void put_source_schema(cdc_buf_t *out, const cdc_txn_t *tx, int pg)
{
    const char *const *f = pg ? src_pg : src_mysql;
    const char *conn = tx->connector ? tx->connector : "mysql";

    cdc_buf_puts(out, "{\"type\":\"struct\",\"fields\":[");
    for (int i = 0; f[i]; i++) {
        char type[16], opt[8];
        const char *name;
        if (i)
            cdc_buf_putc(out, ',');
        if (!strcmp(f[i], "snapshot")) {
            cdc_buf_puts(out, "{\"type\":\"string\",\"optional\":true,"
                              "\"name\":\"io.debezium.data.Enum\","
                              "\"version\":1,\"parameters\":{\"allowed\":"
                              "\"true,first,first_in_data_collection,"
                              "last_in_data_collection,last,false,"
                              "incremental\"},\"default\":\"false\","
                              "\"field\":\"snapshot\"}");
            continue;
        }
        name = strrchr(f[i], ',') + 1;
        sscanf(f[i], "%15[^,],%7[^,]", type, opt);
        cdc_buf_printf(out, "{\"type\":\"%s\",\"optional\":%s,"
                            "\"field\":\"%s\"}", type, opt, name);
    }
    cdc_buf_printf(out, "],\"optional\":false,\"name\":"
                        "\"io.debezium.connector.%s.Source\","
                        "\"version\":1,\"field\":\"source\"}",
                   conn);
}

static uint32_t opts_tag(const cdc_env_opts_t *o)
{
    uint32_t h = 2166136261u;
    const char *a = o->application_id ? o->application_id : "";

    h = (h ^ o->time_mode) * 16777619u;
    h = (h ^ o->decimal_mode) * 16777619u;
    h = (h ^ o->bigint_mode) * 16777619u;
    h = (h ^ o->binary_mode) * 16777619u;
    h = (h ^ o->src_type) * 16777619u;
    for (; *a; a++)
        h = (h ^ (uint8_t)*a) * 16777619u;
    return h | 1;
}

/* The cached key / envelope schema texts of t for o. */
static void table_schemas(const cdc_env_opts_t *o, const cdc_txn_t *tx,
                          const cdc_table_t *tc)
{
    cdc_table_t *t = (cdc_table_t *)tc; /* the cache is logically mutable */
    uint32_t tag = opts_tag(o);
    int pg = is_pg(tx);
    cdc_buf_t k = CDC_BUF_INIT, v = CDC_BUF_INIT;

    if (t->dbz_tag == tag && t->dbz_kschema)
        return;
    put_row_schema(&k, o, pg, t, 1);
    cdc_buf_putc(&k, '}');

    cdc_buf_puts(&v, "{\"type\":\"struct\",\"fields\":[");
    put_row_schema(&v, o, pg, t, 0);
    cdc_buf_puts(&v, ",\"field\":\"before\"},");
    put_row_schema(&v, o, pg, t, 0);
    cdc_buf_puts(&v, ",\"field\":\"after\"},");
    put_source_schema(&v, tx, pg);
    cdc_buf_puts(&v, ",{\"type\":\"struct\",\"fields\":["
                     "{\"type\":\"string\",\"optional\":false,"
                     "\"field\":\"id\"},{\"type\":\"int64\",\"optional\":"
                     "false,\"field\":\"total_order\"},{\"type\":\"int64\","
                     "\"optional\":false,\"field\":\"data_collection_order\"}"
                     "],\"optional\":true,\"name\":\"event.block\","
                     "\"version\":1,\"field\":\"transaction\"},"
                     "{\"type\":\"string\",\"optional\":false,"
                     "\"field\":\"op\"},{\"type\":\"int64\",\"optional\":"
                     "true,\"field\":\"ts_ms\"},{\"type\":\"int64\","
                     "\"optional\":true,\"field\":\"ts_us\"},{\"type\":"
                     "\"int64\",\"optional\":true,\"field\":\"ts_ns\"}],"
                     "\"optional\":false,\"name\":");
    put_record_name(&v, o, t, "Envelope");
    cdc_buf_puts(&v, ",\"version\":2}");

    free(t->dbz_kschema);
    free(t->dbz_vschema);
    t->dbz_kschema = k.p;
    t->dbz_vschema = v.p;
    t->dbz_tag = tag;
}

/* ---- envelope -------------------------------------------------------------- */

static void put_field_str(cdc_buf_t *out, const char *k, const char *v)
{
    cdc_buf_putc(out, ',');
    cdc_json_string(out, k, strlen(k));
    cdc_buf_putc(out, ':');
    if (v)
        cdc_json_string(out, v, strlen(v));
    else
        cdc_buf_puts(out, "null");
}

static void put_field_int(cdc_buf_t *out, const char *k, int64_t v)
{
    cdc_buf_puts(out, ",\"");
    cdc_buf_puts(out, k);
    cdc_buf_puts(out, "\":");
    cdc_json_i64(out, v);
}

/* The transaction id as Debezium writes it: the GTID (MySQL/MariaDB) or
 * "txId:lsn" (PostgreSQL); file:pos without a GTID. */
static void txn_id(cdc_buf_t *b, const cdc_txn_t *tx)
{
    if (is_pg(tx))
        cdc_buf_printf(b, "%llu:%llu", (unsigned long long)tx->xid,
                       (unsigned long long)tx->pos.lsn);
    else if (tx->gtid[0])
        cdc_buf_puts(b, tx->gtid);
    else
        cdc_buf_printf(b, "%s:%llu", tx->file ? tx->file : tx->pos.file,
                       (unsigned long long)tx->pos.offset);
}

static void put_source(cdc_buf_t *out, const cdc_env_opts_t *o,
                       const cdc_txn_t *tx, const cdc_change_t *ch)
{
    const char *conn = tx->connector ? tx->connector : "mysql";
    const char *app = o->application_id ? o->application_id : "autoglm-cdc";
    int64_t us = tx->commit_us;
    const cdc_table_t *t = ch->tbl;

    cdc_buf_puts(out, "{\"version\":\"" PACKAGE_VERSION "\",\"connector\":");
    put_str(out, conn);
    put_field_str(out, "name", app);
    put_field_int(out, "ts_ms", us / 1000);
    put_field_str(out, "snapshot", ch->op == CDC_OP_READ ? "true" : "false");
    if (is_pg(tx)) {
        char seq[64];
        put_field_str(out, "db", "");
        snprintf(seq, sizeof(seq), "[null,\"%llu\"]",
                 (unsigned long long)ch->pos);
        put_field_str(out, "sequence", seq);
        put_field_int(out, "ts_us", us);
        put_field_int(out, "ts_ns", us * 1000);
        put_field_str(out, "schema", t->db);
        put_field_str(out, "table", t->name);
        put_field_int(out, "txId", (int64_t)tx->xid);
        put_field_int(out, "lsn", (int64_t)ch->pos);
        cdc_buf_puts(out, ",\"xmin\":null}");
        return;
    }
    put_field_str(out, "db", t->db);
    cdc_buf_puts(out, ",\"sequence\":null");
    put_field_int(out, "ts_us", us);
    put_field_int(out, "ts_ns", us * 1000);
    put_field_str(out, "table", t->name);
    put_field_int(out, "server_id", tx->server_id);
    put_field_str(out, "gtid", tx->gtid[0] ? tx->gtid : NULL);
    put_field_str(out, "file", tx->file ? tx->file : tx->pos.file);
    put_field_int(out, "pos", (int64_t)ch->pos);
    put_field_int(out, "row", ch->row);
    cdc_buf_puts(out, ",\"thread\":null,\"query\":null}");
}

/* ---- transaction metadata across fragments (envelope.h) ---------------- */

static void dc_reset(cdc_dbz_txs_t *st)
{
    for (size_t i = 0; i < st->ndc; i++)
        free(st->dc[i].name);
    st->ndc = 0;
    st->last = 0;
}

void cdc_dbz_txs_free(cdc_dbz_txs_t *st)
{
    dc_reset(st);
    free(st->dc);
    memset(st, 0, sizeof(*st));
}

/* 1 if name is "db.table" of t */
static int dc_is(const char *name, const cdc_table_t *t)
{
    const char *db = t->db ? t->db : "";
    size_t n = strlen(db);
    return !strncmp(name, db, n) && name[n] == '.' &&
           !strcmp(name + n + 1, t->name);
}

/* The counter of table t ("db.table"; a new one at 0 if unseen).  Keyed
 * by the name: a table object of an earlier fragment may have been freed
 * since (its txn delivered, the decoder's TABLE_MAP cache cleared or
 * re-mapped mid-transaction) and another table allocated at its address,
 * so the pointer is a shortcut only where the name matches too. */
static size_t dc_find(cdc_dbz_txs_t *st, const cdc_table_t *t)
{
    const char *db = t->db ? t->db : "";
    char *name;

    if (st->last < st->ndc && st->dc[st->last].tbl == t &&
        dc_is(st->dc[st->last].name, t))
        return st->last;
    for (size_t i = 0; i < st->ndc; i++)
        if (dc_is(st->dc[i].name, t)) {
            st->dc[i].tbl = t;
            return st->last = i;
        }
    name = cdc_xmalloc(strlen(db) + strlen(t->name) + 2);
    sprintf(name, "%s.%s", db, t->name);
    if (st->ndc == st->capdc) {
        st->capdc = st->capdc ? st->capdc * 2 : 8;
        st->dc = cdc_xrealloc(st->dc, st->capdc * sizeof(*st->dc));
    }
    st->dc[st->ndc].name = name;
    st->dc[st->ndc].tbl = t;
    st->dc[st->ndc].n = 0;
    return st->last = st->ndc++;
}

/* Count the changes of the current fragment up to (not including) upto. */
static void dc_advance(cdc_dbz_txs_t *st, uint32_t upto)
{
    while (st->cur < upto) {
        size_t k = dc_find(st, st->tx->changes[st->cur].tbl); /* (may move
                                                                  st->dc) */
        st->dc[k].n++;
        st->cur++;
    }
}

static void txn_id(cdc_buf_t *b, const cdc_txn_t *tx);

int cdc_dbz_txs_begin(cdc_dbz_txs_t *st, const cdc_txn_t *tx)
{
    int start = !st->open || !tx->frag || tx->frag != st->next_frag;

    if (start) {
        /* a whole transaction or its first fragment (a fragment after a
         * gap starts over: it is numbered from itself) */
        cdc_buf_t id = CDC_BUF_INIT;
        dc_reset(st);
        st->base = 0;
        txn_id(&id, tx);
        snprintf(st->id, sizeof(st->id), "%s", id.p ? id.p : "");
        cdc_buf_free(&id);
        st->open = 1;
    }
    st->tx = tx;
    st->cur = 0;
    st->next_frag = tx->frag + 1;
    return start;
}

int cdc_dbz_txs_end(cdc_dbz_txs_t *st, const cdc_txn_t *tx)
{
    if (st->tx != tx || !st->open)
        return 0;
    dc_advance(st, tx->nchanges);
    st->base += tx->nchanges;
    st->cur = 0;
    if (tx->more)
        return 0;
    st->open = 0;
    return 1;
}

/* The writer's state for tx, or NULL (tx numbered alone). */
static cdc_dbz_txs_t *txs_of(const cdc_env_opts_t *o, const cdc_txn_t *tx)
{
    return o->txs && o->txs->tx == tx ? o->txs : NULL;
}

/* ,"transaction":{id,total_order,data_collection_order} or null. */
static void put_txblock(cdc_buf_t *out, const cdc_env_opts_t *o,
                        const cdc_txn_t *tx, const cdc_change_t *ch)
{
    uint32_t idx, dco = 0;
    cdc_buf_t id = CDC_BUF_INIT;
    cdc_dbz_txs_t *st = txs_of(o, tx);

    if (!o->txmeta || ch < tx->changes || ch >= tx->changes + tx->nchanges) {
        cdc_buf_puts(out, ",\"transaction\":null");
        return;
    }
    idx = (uint32_t)(ch - tx->changes);
    if (st && st->open) {
        /* counted up to ch; an earlier change written again (a key change
         * is two events) subtracts the later ones of its table */
        uint64_t n;
        size_t k;
        dc_advance(st, idx + 1);
        k = dc_find(st, ch->tbl);
        n = st->dc[k].n;
        for (uint32_t j = idx + 1; j < st->cur; j++)
            if (dc_find(st, tx->changes[j].tbl) == k)
                n--;
        cdc_buf_puts(out, ",\"transaction\":{\"id\":");
        cdc_json_string(out, st->id, strlen(st->id));
        put_field_int(out, "total_order", (int64_t)(st->base + idx + 1));
        put_field_int(out, "data_collection_order", (int64_t)n);
        cdc_buf_putc(out, '}');
        return;
    }
    for (uint32_t i = 0; i <= idx; i++) {
        const cdc_table_t *a = tx->changes[i].tbl;
        if (a == ch->tbl || (!strcmp(a->name, ch->tbl->name) &&
                             !strcmp(a->db ? a->db : "",
                                     ch->tbl->db ? ch->tbl->db : "")))
            dco++;
    }
    txn_id(&id, tx);
    cdc_buf_puts(out, ",\"transaction\":{\"id\":");
    cdc_json_string(out, id.p, id.len);
    put_field_int(out, "total_order", idx + 1);
    put_field_int(out, "data_collection_order", dco);
    cdc_buf_putc(out, '}');
    cdc_buf_free(&id);
}

void cdc_dbz_write(cdc_buf_t *out, const cdc_env_opts_t *o,
                   const cdc_txn_t *tx, const cdc_change_t *ch, char op,
                   const cdc_value_t *before, const cdc_value_t *after)
{
    int pg = is_pg(tx);
    int64_t now_us = cdc_now_us();
    char ops[2] = {op, 0};

    if (o->schemas) {
        table_schemas(o, tx, ch->tbl);
        cdc_buf_puts(out, "{\"schema\":");
        cdc_buf_puts(out, ch->tbl->dbz_vschema);
        cdc_buf_puts(out, ",\"payload\":");
    }
    cdc_buf_puts(out, "{\"before\":");
    put_image(out, o, pg, ch->tbl, before);
    cdc_buf_puts(out, ",\"after\":");
    put_image(out, o, pg, ch->tbl, after);
    /* Debezium would put a placeholder string in the column; a list
     * beside the images keeps "unchanged" apart from "dropped" without
     * faking a value of the column's type */
    if (after == ch->after)
        cdc_json_unchanged(out, ch);
    cdc_buf_puts(out, ",\"source\":");
    put_source(out, o, tx, ch);
    put_txblock(out, o, tx, ch);
    cdc_buf_puts(out, ",\"op\":\"");
    cdc_buf_puts(out, ops);
    cdc_buf_putc(out, '"');
    put_field_int(out, "ts_ms", now_us / 1000);
    put_field_int(out, "ts_us", now_us);
    put_field_int(out, "ts_ns", now_us * 1000);
    cdc_buf_putc(out, '}');
    if (o->schemas)
        cdc_buf_putc(out, '}');
}

/* The key object of img (fallback: where img lacks a key column). */
static void put_key_payload(cdc_buf_t *out, const cdc_env_opts_t *o, int pg,
                            const cdc_table_t *t, const cdc_value_t *img,
                            const cdc_value_t *fb)
{
    int first = 1;

    cdc_buf_putc(out, '{');
    for (uint32_t n = 0; img && n < (t->npk ? t->npk : t->ncols); n++) {
        uint32_t i = t->npk ? t->pk[n] : n;
        const cdc_value_t *v = &img[i];
        if ((v->kind == CDC_V_ABSENT || v->kind == CDC_V_UNCHANGED) && fb)
            v = &fb[i];
        if (!t->npk && (v->kind == CDC_V_ABSENT || v->kind == CDC_V_UNCHANGED))
            continue;
        if (!first)
            cdc_buf_putc(out, ',');
        first = 0;
        cdc_json_col_key(out, &t->cols[i]);
        put_value(out, o, pg, &t->cols[i], v);
    }
    cdc_buf_putc(out, '}');
}

void cdc_dbz_key(cdc_buf_t *out, const cdc_env_opts_t *o,
                 const cdc_txn_t *tx, const cdc_change_t *ch,
                 const cdc_value_t *img, const cdc_value_t *fallback)
{
    if (o->schemas) {
        table_schemas(o, tx, ch->tbl);
        cdc_buf_puts(out, "{\"schema\":");
        cdc_buf_puts(out, ch->tbl->dbz_kschema);
        cdc_buf_puts(out, ",\"payload\":");
    }
    put_key_payload(out, o, is_pg(tx), ch->tbl, img, fallback);
    if (o->schemas)
        cdc_buf_putc(out, '}');
}

/* ---- transaction metadata ------------------------------------------------ */

/* The id of tx's transaction: the writer's (taken at its first fragment)
 * or tx's own. */
static void txn_id_of(cdc_buf_t *b, const cdc_env_opts_t *o,
                      const cdc_txn_t *tx)
{
    const cdc_dbz_txs_t *st = txs_of(o, tx);
    if (st)
        cdc_buf_puts(b, st->id);
    else
        txn_id(b, tx);
}

void cdc_dbz_txn_key(cdc_buf_t *out, const cdc_env_opts_t *o,
                     const cdc_txn_t *tx)
{
    cdc_buf_t id = CDC_BUF_INIT;

    txn_id_of(&id, o, tx);
    if (o->schemas)
        cdc_buf_puts(out, "{\"schema\":{\"type\":\"struct\",\"fields\":["
                          "{\"type\":\"string\",\"optional\":false,"
                          "\"field\":\"id\"}],\"optional\":false,\"name\":"
                          "\"io.debezium.connector.common."
                          "TransactionMetadataKey\",\"version\":1},"
                          "\"payload\":");
    cdc_buf_puts(out, "{\"id\":");
    cdc_json_string(out, id.p, id.len);
    cdc_buf_putc(out, '}');
    if (o->schemas)
        cdc_buf_putc(out, '}');
    cdc_buf_free(&id);
}

/* BEGIN: {"status","id","event_count":null,"data_collections":null,
 * "ts_ms"}; END: the counts, per table in first-seen order. */
void cdc_dbz_txn_event(cdc_buf_t *out, const cdc_env_opts_t *o,
                       const cdc_txn_t *tx, int end)
{
    cdc_buf_t id = CDC_BUF_INIT;
    const cdc_dbz_txs_t *st = txs_of(o, tx);

    txn_id_of(&id, o, tx);
    if (o->schemas)
        cdc_buf_puts(out, "{\"schema\":{\"type\":\"struct\",\"fields\":["
                          "{\"type\":\"string\",\"optional\":false,"
                          "\"field\":\"status\"},{\"type\":\"string\","
                          "\"optional\":false,\"field\":\"id\"},{\"type\":"
                          "\"int64\",\"optional\":true,\"field\":"
                          "\"event_count\"},{\"type\":\"array\",\"items\":{"
                          "\"type\":\"struct\",\"fields\":[{\"type\":"
                          "\"string\",\"optional\":false,\"field\":"
                          "\"data_collection\"},{\"type\":\"int64\","
                          "\"optional\":false,\"field\":\"event_count\"}],"
                          "\"optional\":false},\"optional\":true,\"field\":"
                          "\"data_collections\"},{\"type\":\"int64\","
                          "\"optional\":false,\"field\":\"ts_ms\"}],"
                          "\"optional\":false,\"name\":"
                          "\"io.debezium.connector.common."
                          "TransactionMetadataValue\",\"version\":1},"
                          "\"payload\":");
    cdc_buf_puts(out, end ? "{\"status\":\"END\",\"id\":"
                          : "{\"status\":\"BEGIN\",\"id\":");
    cdc_json_string(out, id.p, id.len);
    if (!end) {
        cdc_buf_puts(out, ",\"event_count\":null,\"data_collections\":null");
    } else if (st) {
        /* every fragment's changes (cdc_dbz_txs_end() counted them) */
        int first = 1;
        put_field_int(out, "event_count", (int64_t)st->base);
        cdc_buf_puts(out, ",\"data_collections\":[");
        for (size_t i = 0; i < st->ndc; i++) {
            if (!st->dc[i].n)
                continue;
            cdc_buf_puts(out, first ? "{\"data_collection\":"
                                    : ",{\"data_collection\":");
            first = 0;
            cdc_json_string(out, st->dc[i].name, strlen(st->dc[i].name));
            put_field_int(out, "event_count", (int64_t)st->dc[i].n);
            cdc_buf_putc(out, '}');
        }
        cdc_buf_putc(out, ']');
    } else {
        int first = 1;
        put_field_int(out, "event_count", tx->nchanges);
        cdc_buf_puts(out, ",\"data_collections\":[");
        for (uint32_t i = 0; i < tx->nchanges; i++) {
            const cdc_table_t *t = tx->changes[i].tbl;
            uint32_t n = 0, seen = 0;
            for (uint32_t j = 0; j < tx->nchanges && !seen; j++) {
                const cdc_table_t *u = tx->changes[j].tbl;
                int same = u == t || (!strcmp(u->name, t->name) &&
                                      !strcmp(u->db ? u->db : "",
                                              t->db ? t->db : ""));
                if (same && j < i)
                    seen = 1;
                else if (same)
                    n++;
            }
            if (seen)
                continue;
            cdc_buf_puts(out, first ? "{\"data_collection\":"
                                    : ",{\"data_collection\":");
            first = 0;
            cdc_buf_t dc = CDC_BUF_INIT;
            cdc_buf_printf(&dc, "%s.%s", t->db ? t->db : "", t->name);
            cdc_json_string(out, dc.p, dc.len);
            cdc_buf_free(&dc);
            put_field_int(out, "event_count", n);
            cdc_buf_putc(out, '}');
        }
        cdc_buf_putc(out, ']');
    }
    put_field_int(out, "ts_ms", tx->commit_us / 1000);
    cdc_buf_putc(out, '}');
    if (o->schemas)
        cdc_buf_putc(out, '}');
    cdc_buf_free(&id);
}

/* ---- settings ---------------------------------------------------------- */

static int pick(const cdc_conf_t *conf, const char *key,
                const char *const *names, uint8_t *out, cdc_err_t *err)
{
    const char *v = cdc_conf_get(conf, key, NULL);
    cdc_buf_t b = CDC_BUF_INIT;

    if (!v)
        return 0;
    for (int i = 0; names[i]; i++)
        if (!strcmp(v, names[i])) {
            *out = (uint8_t)i;
            return 0;
        }
    for (int i = 0; names[i]; i++)
        cdc_buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
    cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: unknown value \"%s\"", key, v);
    cdc_err_hint(err, "use one of: %s", b.p);
    cdc_buf_free(&b);
    return -1;
}

int cdc_dbz_opts_conf(cdc_env_opts_t *o, const cdc_conf_t *conf,
                      cdc_err_t *err)
{
    static const char *const tm[] = {"adaptive", "adaptive_time_microseconds",
                                     "connect", "iso_string", NULL};
    static const char *const dm[] = {"precise", "string", "double", NULL};
    static const char *const bm[] = {"long", "precise", NULL};
    static const char *const xm[] = {"bytes", "base64", "hex", NULL};
    int b;

    if (pick(conf, "debezium.time.precision.mode", tm, &o->time_mode, err) ||
        pick(conf, "debezium.decimal.handling.mode", dm, &o->decimal_mode,
             err) ||
        pick(conf, "debezium.bigint.unsigned.handling.mode", bm,
             &o->bigint_mode, err) ||
        pick(conf, "debezium.binary.handling.mode", xm, &o->binary_mode, err))
        return -1;
    if (cdc_conf_get_bool(conf, "debezium.schemas", 0, &b, err) < 0)
        return -1;
    o->schemas = (uint8_t)b;
    if (cdc_conf_get_bool(conf, "debezium.provide.transaction.metadata", 0,
                          &b, err) < 0)
        return -1;
    o->txmeta = (uint8_t)b;
    if (cdc_conf_get_bool(conf, "debezium.column.propagate.source.type", 0,
                          &b, err) < 0)
        return -1;
    o->src_type = (uint8_t)b;
    return 0;
}
