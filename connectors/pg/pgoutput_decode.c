/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pgoutput_decode.c - pure decoder of pgoutput logical replication messages.
 *
 * Wire format: PostgreSQL src/backend/replication/logical/proto.c (see
 * docs PROTOCOLS.md §2.3).  All integers are big-endian, strings are
 * NUL-terminated.  Invariants:
 *   - every byte is read through the rd_* helpers, which check bounds;
 *   - a message is consumed completely or rejected (trailing bytes are an
 *     error, except after Stream Abort, which grows in protocol 4);
 *   - the decoder never logs row data; it only warns once per type oid it
 *     has to pass through as text.
 */
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <inttypes.h>
#include <unistd.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cdc/util.h"
#include "cdc/envelope.h"
#include "cdc/log.h"
#include "cdc/metrics.h"
#include "connectors/pg/pgoutput_decode.h"

/* ---------------------------------------------------------------------
 * Type oids (pg_type.dat) and value conversions
 * ------------------------------------------------------------------- */

enum {
    OID_BOOL = 16, OID_BYTEA = 17, OID_CHAR = 18, OID_NAME = 19,
    OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_TEXT = 25,
    OID_OID = 26, OID_XID = 28, OID_CID = 29, OID_JSON = 114,
    OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_MACADDR8 = 774,
    OID_MACADDR = 829, OID_INET = 869, OID_CIDR = 650, OID_BPCHAR = 1042,
    OID_VARCHAR = 1043, OID_DATE = 1082, OID_TIME = 1083,
    OID_TIMESTAMP = 1114, OID_TIMESTAMPTZ = 1184, OID_INTERVAL = 1186,
    OID_TIMETZ = 1266, OID_NUMERIC = 1700, OID_UUID = 2950,
    OID_PG_LSN = 3220, OID_JSONB = 3802,
};

/* Conversion kinds. */
enum {
    K_UNKNOWN = 0, /* text form + one-time warning */
    K_TEXT,        /* text form, silently (dates, uuid, inet, ...) */
    K_INT,
    K_UINT,
    K_NUMERIC,
    K_FLOAT4,
    K_FLOAT8,
    K_BOOL,
    K_BYTEA,
    K_TSTZ,
    K_JSON,
    K_ARRAY, /* element kind in the high byte */
};

typedef uint16_t conv_t; /* kind | element kind << 8 */
#define CONV(k, ek) ((conv_t)((k) | ((ek) << 8)))
#define CONV_K(c) ((c) & 0xff)
#define CONV_EK(c) (((c) >> 8) & 0xff)

static int builtin_scalar(uint32_t oid)
{
    switch (oid) {
    case OID_INT2: case OID_INT4: case OID_INT8:
        return K_INT;
    case OID_OID: case OID_XID: case OID_CID:
        return K_UINT;
    case OID_NUMERIC:
        return K_NUMERIC;
    case OID_FLOAT4:
        return K_FLOAT4;
    case OID_FLOAT8:
        return K_FLOAT8;
    case OID_BOOL:
        return K_BOOL;
    case OID_BYTEA:
        return K_BYTEA;
    case OID_TIMESTAMPTZ:
        return K_TSTZ;
    case OID_JSON: case OID_JSONB:
        return K_JSON;
    case OID_TEXT: case OID_VARCHAR: case OID_BPCHAR: case OID_NAME:
    case OID_CHAR: case OID_DATE: case OID_TIME: case OID_TIMETZ:
    case OID_TIMESTAMP: case OID_INTERVAL: case OID_UUID: case OID_INET:
    case OID_CIDR: case OID_MACADDR: case OID_MACADDR8: case OID_PG_LSN:
        return K_TEXT;
    }
    return -1;
}

/* Element type of the built-in array types, 0 if oid is not one. */
static uint32_t builtin_array_elem(uint32_t oid)
{
    switch (oid) {
    case 1000: return OID_BOOL;
    case 1001: return OID_BYTEA;
    case 1002: return OID_CHAR;
    case 1003: return OID_NAME;
    case 1005: return OID_INT2;
    case 1007: return OID_INT4;
    case 1009: return OID_TEXT;
    case 1011: return OID_XID;
    case 1014: return OID_BPCHAR;
    case 1015: return OID_VARCHAR;
    case 1016: return OID_INT8;
    case 1021: return OID_FLOAT4;
    case 1022: return OID_FLOAT8;
    case 1028: return OID_OID;
    case 1040: return OID_MACADDR;
    case 1041: return OID_INET;
    case 651: return OID_CIDR;
    case 775: return OID_MACADDR8;
    case 1115: return OID_TIMESTAMP;
    case 1182: return OID_DATE;
    case 1183: return OID_TIME;
    case 1185: return OID_TIMESTAMPTZ;
    case 1187: return OID_INTERVAL;
    case 1231: return OID_NUMERIC;
    case 1270: return OID_TIMETZ;
    case 2951: return OID_UUID;
    case 199: return OID_JSON;
    case 3807: return OID_JSONB;
    case 3221: return OID_PG_LSN;
    }
    return 0;
}

static int data_err(cdc_err_t *err, const char *fmt, ...) CDC_PRINTF(2, 3);
static int data_err(cdc_err_t *err, const char *fmt, ...)
{
    char m[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA, "pgoutput: %s", m);
}

/* Copy of s[0..len) as a C string in a small buffer; 0 if too long. */
static int small_cstr(char *dst, size_t cap, const char *s, size_t len)
{
    if (len + 1 > cap)
        return 0;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 1;
}

static int parse_int(const char *s, size_t len, int64_t *out)
{
    char b[32], *end;

    if (len == 0 || !small_cstr(b, sizeof(b), s, len))
        return -1;
    if (!(b[0] == '-' || (b[0] >= '0' && b[0] <= '9')))
        return -1;
    errno = 0;
    *out = strtoll(b, &end, 10);
    return (errno || *end) ? -1 : 0;
}

static int parse_uint(const char *s, size_t len, uint64_t *out)
{
    char b[32], *end;

    if (len == 0 || !small_cstr(b, sizeof(b), s, len) || b[0] < '0' ||
        b[0] > '9')
        return -1;
    errno = 0;
    *out = strtoull(b, &end, 10);
    return (errno || *end) ? -1 : 0;
}

static int is_special_float(const char *s, size_t len)
{
    return (len == 3 && memcmp(s, "NaN", 3) == 0) ||
           (len == 8 && memcmp(s, "Infinity", 8) == 0) ||
           (len == 9 && memcmp(s, "-Infinity", 9) == 0);
}

static int valid_numeric(const char *s, size_t len)
{
    size_t i = 0, digits = 0;

    if (is_special_float(s, len))
        return 1;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        i++;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (digits == 0)
        return 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t ed = 0;
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+'))
            i++;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, ed++;
        if (!ed)
            return 0;
    }
    return i == len;
}

static int parse_double(const char *s, size_t len, double *out)
{
    char b[64], *end;

    if (len == 0 || !small_cstr(b, sizeof(b), s, len))
        return -1;
    if (!((b[0] >= '0' && b[0] <= '9') || b[0] == '-' || b[0] == '.'))
        return -1;
    errno = 0;
    *out = strtod(b, &end);
    if (*end || !isfinite(*out))
        return -1; /* (ERANGE underflow to a subnormal is fine) */
    return 0;
}

/* bytea text: "\x" hex (bytea_output=hex) or the escape format. */
static int decode_bytea(const char *s, size_t len, cdc_arena_t *a,
                        cdc_value_t *out)
{
    uint8_t *p;
    size_t n = 0;

    if (len >= 2 && s[0] == '\\' && s[1] == 'x') {
        if ((len - 2) % 2)
            return -1;
        p = cdc_arena_alloc(a, (len - 2) / 2 + 1);
        for (size_t i = 2; i < len; i += 2) {
            int hi = cdc_hexval((unsigned char)s[i]);
            int lo = cdc_hexval((unsigned char)s[i + 1]);
            if (hi < 0 || lo < 0)
                return -1;
            p[n++] = (uint8_t)(hi << 4 | lo);
        }
    } else {
        p = cdc_arena_alloc(a, len + 1);
        for (size_t i = 0; i < len;) {
            if (s[i] != '\\') {
                p[n++] = (uint8_t)s[i++];
            } else if (i + 1 < len && s[i + 1] == '\\') {
                p[n++] = '\\';
                i += 2;
            } else if (i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' &&
                       s[i + 2] >= '0' && s[i + 2] <= '7' &&
                       s[i + 3] >= '0' && s[i + 3] <= '7') {
                p[n++] = (uint8_t)((s[i + 1] - '0') << 6 |
                                   (s[i + 2] - '0') << 3 | (s[i + 3] - '0'));
                i += 4;
            } else {
                return -1;
            }
        }
    }
    p[n] = 0;
    out->kind = CDC_V_BYTES;
    out->s = (const char *)p;
    out->len = n;
    return 0;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Read exactly n digits at s[*i]; -1 if not there. */
static int64_t digits_n(const char *s, size_t len, size_t *i, size_t n)
{
    int64_t v = 0;

    if (*i + n > len)
        return -1;
    for (size_t k = 0; k < n; k++) {
        char c = s[*i + k];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *i += n;
    return v;
}

/*
 * timestamptz text "YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM[:SS]]" -> UTC
 * "YYYY-MM-DDTHH:MM:SS[.ffffff]Z".  Returns 0 and the new text in a, or
 * -1 when the text is not in that shape (infinity, BC dates): the caller
 * then keeps the text as it is.
 */
static int tstz_to_utc(const char *s, size_t len, cdc_arena_t *a,
                       cdc_value_t *out)
{
    size_t i = 0, ydig = 0, fs, fl = 0;
    int64_t y = 0, mo, dd, hh, mi, ss, oh, om = 0, os = 0;
    int sign;

    while (i < len && s[i] >= '0' && s[i] <= '9' && ydig < 9)
        y = y * 10 + (s[i++] - '0'), ydig++;
    if (ydig < 4 || i >= len || s[i++] != '-')
        return -1;
    if ((mo = digits_n(s, len, &i, 2)) < 1 || mo > 12 || i >= len ||
        s[i++] != '-')
        return -1;
    if ((dd = digits_n(s, len, &i, 2)) < 1 || dd > 31 || i >= len ||
        s[i++] != ' ')
        return -1;
    if ((hh = digits_n(s, len, &i, 2)) < 0 || hh > 24 || i >= len ||
        s[i++] != ':')
        return -1;
    if ((mi = digits_n(s, len, &i, 2)) < 0 || mi > 59 || i >= len ||
        s[i++] != ':')
        return -1;
    if ((ss = digits_n(s, len, &i, 2)) < 0 || ss > 60)
        return -1;
    fs = i;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        fl = i - fs;
        if (fl < 2 || fl > 10)
            return -1;
    }
    if (i >= len || (s[i] != '+' && s[i] != '-'))
        return -1;
    sign = s[i++] == '-' ? -1 : 1;
    if ((oh = digits_n(s, len, &i, 2)) < 0)
        return -1;
    if (i < len && s[i] == ':') {
        i++;
        if ((om = digits_n(s, len, &i, 2)) < 0)
            return -1;
        if (i < len && s[i] == ':') {
            i++;
            if ((os = digits_n(s, len, &i, 2)) < 0)
                return -1;
        }
    }
    if (i != len)
        return -1; /* " BC" and anything unexpected */

    int64_t secs = cdc_days_from_civil(y, (unsigned)mo, (unsigned)dd) * 86400 +
                   hh * 3600 + mi * 60 + ss - sign * (oh * 3600 + om * 60 + os);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400;
    int64_t uy;
    unsigned um, ud;
    civil_from_days(days, &uy, &um, &ud);
    if (uy < 1)
        return -1;
    char b[96];
    int n = snprintf(b, sizeof(b), "%04lld-%02u-%02uT%02lld:%02lld:%02lld",
                     (long long)uy, um, ud, (long long)(rem / 3600),
                     (long long)(rem / 60 % 60), (long long)(rem % 60));
    if (n < 0 || (size_t)n + fl + 2 > sizeof(b))
        return -1;
    memcpy(b + n, s + fs, fl);
    n += (int)fl;
    b[n++] = 'Z';
    out->kind = CDC_V_STRING;
    out->s = cdc_arena_memdup(a, b, (size_t)n);
    out->len = (size_t)n;
    return 0;
}

static void set_str(cdc_value_t *out, uint8_t kind, const char *s,
                    size_t len, cdc_arena_t *a)
{
    out->kind = kind;
    out->s = cdc_arena_memdup(a, s, len);
    out->len = len;
}

/* One scalar of conversion kind k (not K_ARRAY). */
static int scalar_value(int k, const char *s, size_t len, cdc_arena_t *a,
                        cdc_value_t *out)
{
    memset(out, 0, sizeof(*out));
    switch (k) {
    case K_INT:
        out->kind = CDC_V_INT;
        return parse_int(s, len, &out->u.i);
    case K_UINT:
        out->kind = CDC_V_UINT;
        return parse_uint(s, len, &out->u.u);
    case K_NUMERIC:
        if (!valid_numeric(s, len))
            return -1;
        set_str(out, CDC_V_DECIMAL, s, len, a);
        return 0;
    case K_FLOAT4:
    case K_FLOAT8:
        if (is_special_float(s, len)) {
            set_str(out, CDC_V_STRING, s, len, a);
            return 0;
        }
        out->kind = k == K_FLOAT4 ? CDC_V_FLOAT : CDC_V_DOUBLE;
        if (parse_double(s, len, &out->u.d) < 0)
            return -1;
        if (k == K_FLOAT4)
            out->u.d = (double)(float)out->u.d;
        return 0;
    case K_BOOL:
        out->kind = CDC_V_BOOL;
        if ((len == 1 && s[0] == 't') || (len == 4 && !memcmp(s, "true", 4)))
            out->u.b = 1;
        else if ((len == 1 && s[0] == 'f') ||
                 (len == 5 && !memcmp(s, "false", 5)))
            out->u.b = 0;
        else
            return -1;
        return 0;
    case K_BYTEA:
        return decode_bytea(s, len, a, out);
    case K_TSTZ:
        if (tstz_to_utc(s, len, a, out) == 0)
            return 0;
        set_str(out, CDC_V_STRING, s, len, a);
        return 0;
    case K_JSON:
        if (len == 0)
            return -1;
        set_str(out, CDC_V_JSON, s, len, a);
        return 0;
    default:
        set_str(out, CDC_V_STRING, s, len, a);
        return 0;
    }
}

static const char *kind_name(int k)
{
    static const char *const names[] = {
        "text", "text", "integer", "oid", "numeric", "float4", "float8",
        "bool", "bytea", "timestamptz", "json", "array"};
    return k >= 0 && k <= K_ARRAY ? names[k] : "?";
}

/* ---------------------------------------------------------------------
 * Array text format -> JSON array
 * ------------------------------------------------------------------- */

typedef struct arr_ctx {
    const char *s;
    size_t len, i;
    int ek;
    cdc_buf_t *json;
    cdc_buf_t *tmp;     /* de-escaped element */
    cdc_arena_t *arena; /* element conversions (scratch) */
} arr_ctx_t;

static void arr_ws(arr_ctx_t *c)
{
    while (c->i < c->len && (c->s[c->i] == ' ' || c->s[c->i] == '\t' ||
                             c->s[c->i] == '\n' || c->s[c->i] == '\r'))
        c->i++;
}

static int arr_elem(arr_ctx_t *c, int quoted)
{
    cdc_value_t v;
    const char *t = c->tmp->p ? c->tmp->p : "";
    size_t n = c->tmp->len;

    if (!quoted && n == 4 && strncasecmp(t, "NULL", 4) == 0) {
        cdc_buf_puts(c->json, "null");
        return 0;
    }
    if (scalar_value(c->ek, t, n, c->arena, &v) < 0)
        return -1;
    cdc_json_value(c->json, &v);
    return 0;
}

static int arr_parse(arr_ctx_t *c, int depth)
{
    int first = 1;

    if (depth > 6 || c->i >= c->len || c->s[c->i] != '{')
        return -1;
    c->i++;
    cdc_buf_putc(c->json, '[');
    arr_ws(c);
    if (c->i < c->len && c->s[c->i] == '}') {
        c->i++;
        cdc_buf_putc(c->json, ']');
        return 0;
    }
    for (;;) {
        arr_ws(c);
        if (c->i >= c->len)
            return -1;
        if (!first)
            cdc_buf_putc(c->json, ',');
        first = 0;
        if (c->s[c->i] == '{') {
            if (arr_parse(c, depth + 1) < 0)
                return -1;
        } else {
            int quoted = 0;
            cdc_buf_reset(c->tmp);
            if (c->s[c->i] == '"') {
                quoted = 1;
                c->i++;
                for (;;) {
                    if (c->i >= c->len)
                        return -1;
                    char ch = c->s[c->i++];
                    if (ch == '"')
                        break;
                    if (ch == '\\') {
                        if (c->i >= c->len)
                            return -1;
                        ch = c->s[c->i++];
                    }
                    cdc_buf_putc(c->tmp, ch);
                }
            } else {
                size_t last = 0; /* length without trailing blanks */
                while (c->i < c->len && c->s[c->i] != ',' &&
                       c->s[c->i] != '}') {
                    char ch = c->s[c->i++];
                    int esc = 0;
                    if (ch == '{' || ch == '"')
                        return -1;
                    if (ch == '\\') {
                        if (c->i >= c->len)
                            return -1;
                        ch = c->s[c->i++];
                        esc = 1;
                    }
                    cdc_buf_putc(c->tmp, ch);
                    if (esc || (ch != ' ' && ch != '\t' && ch != '\n' &&
                                ch != '\r'))
                        last = c->tmp->len;
                }
                c->tmp->len = last;
                if (c->tmp->p)
                    c->tmp->p[last] = '\0';
                if (last == 0)
                    return -1;
            }
            if (arr_elem(c, quoted) < 0)
                return -1;
        }
        arr_ws(c);
        if (c->i >= c->len)
            return -1;
        if (c->s[c->i] == ',') {
            c->i++;
            continue;
        }
        if (c->s[c->i] == '}') {
            c->i++;
            cdc_buf_putc(c->json, ']');
            return 0;
        }
        return -1;
    }
}

/* Whole array text (optional "[lo:hi]...=" dimension decoration, whose
 * bounds JSON cannot carry) -> JSON array text in json. */
static int arr_to_json(const char *s, size_t len, int ek, cdc_buf_t *json,
                       cdc_buf_t *tmp, cdc_arena_t *scratch)
{
    arr_ctx_t ac = {s, len, 0, ek, json, tmp, scratch};
    int rc;

    cdc_buf_reset(json);
    if (len > 0 && s[0] == '[') {
        const char *eq = memchr(s, '=', len);
        if (!eq)
            return -1;
        ac.i = (size_t)(eq - s) + 1;
    }
    rc = arr_parse(&ac, 0);
    if (rc == 0 && ac.i != len)
        rc = -1;
    cdc_arena_reset(scratch);
    return rc;
}

/* ---------------------------------------------------------------------
 * Small maps: relid -> relation, oid -> conversion
 * ------------------------------------------------------------------- */

typedef struct u32map {
    uint32_t *keys;
    void **vals;
    uint8_t *used;
    size_t cap, n;
} u32map_t;

static size_t u32_slot(const u32map_t *m, uint32_t k)
{
    size_t h = (size_t)(k * 2654435761u) & (m->cap - 1);
    while (m->used[h] && m->keys[h] != k)
        h = (h + 1) & (m->cap - 1);
    return h;
}

static void **u32map_get(const u32map_t *m, uint32_t k)
{
    if (!m->cap)
        return NULL;
    size_t h = u32_slot(m, k);
    return m->used[h] ? &m->vals[h] : NULL;
}

static void u32map_put(u32map_t *m, uint32_t k, void *v)
{
    if ((m->n + 1) * 2 > m->cap) {
        u32map_t nm = {0};
        nm.cap = m->cap ? m->cap * 2 : 64;
        nm.keys = cdc_xcalloc(nm.cap, sizeof(*nm.keys));
        nm.vals = cdc_xcalloc(nm.cap, sizeof(*nm.vals));
        nm.used = cdc_xcalloc(nm.cap, 1);
        for (size_t i = 0; i < m->cap; i++)
            if (m->used[i]) {
                size_t h = u32_slot(&nm, m->keys[i]);
                nm.used[h] = 1;
                nm.keys[h] = m->keys[i];
                nm.vals[h] = m->vals[i];
                nm.n++;
            }
        free(m->keys);
        free(m->vals);
        free(m->used);
        *m = nm;
    }
    size_t h = u32_slot(m, k);
    if (!m->used[h]) {
        m->used[h] = 1;
        m->keys[h] = k;
        m->n++;
    }
    m->vals[h] = v;
}

static void u32map_free(u32map_t *m, void (*fr)(void *))
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->used[i] && fr)
            fr(m->vals[i]);
    free(m->keys);
    free(m->vals);
    free(m->used);
    memset(m, 0, sizeof(*m));
}

/* ---------------------------------------------------------------------
 * Decoder state
 * ------------------------------------------------------------------- */

/* Decoder-private part of a cached relation (table->priv). */
typedef struct relpriv {
    uint32_t ncols;
    uint8_t *ident; /* 1 = part of the replica identity key */
    conv_t *conv;
    char replident;
} relpriv_t;

static void relpriv_free(void *p)
{
    relpriv_t *rp = p;
    if (!rp)
        return;
    free(rp->ident);
    free(rp->conv);
    free(rp);
}

/* Tables a spill file refers to (one reference each), by index. */
typedef struct spill_tbls {
    cdc_table_t **t;
    uint32_t n, cap, last;
} spill_tbls_t;

/* A streamed (protocol 2) transaction being buffered. */
typedef struct stxn {
    uint32_t xid;
    cdc_txn_t *tx;
    uint32_t *subxid; /* per change: the (sub)transaction that made it */
    size_t capsub;
    /* past work_mem: the changes so far are in a spill file */
    FILE *spill;
    char *path;
    uint64_t spilled;     /* bytes in the file */
    spill_tbls_t tbls;
    uint32_t *aborted;    /* subtransactions aborted after spilling */
    size_t naborted, capaborted;
} stxn_t;

/* A committed streamed transaction being read back from its spill file. */
typedef struct replay {
    FILE *f;
    char *path;
    uint64_t bytes;
    spill_tbls_t tbls;
    uint32_t *aborted;
    size_t naborted;
    cdc_txn_t *tail; /* the changes that were still in memory */
    uint32_t xid, frag;
    uint64_t commit_lsn, end_lsn;
    int64_t ts;
    int skipped;
} replay_t;

struct cdc_pgoutput {
    cdc_pgoutput_opts_t o;
    int proto;
    u32map_t rels;  /* relid -> cdc_table_t * (one reference) */
    u32map_t types; /* oid -> (void *)(uintptr_t)(conv | 0x10000) */
    cdc_txn_t *cur; /* open non-streamed transaction */
    uint32_t cur_xid;
    int in_stream;
    uint32_t stream_xid;
    stxn_t *streams;
    size_t nstreams, capstreams;
    cdc_buf_t json, tmp; /* array conversion scratch */
    cdc_arena_t scratch;
    cdc_pgoutput_stats_t stats;
    /* fragments of the open non-streamed transaction */
    uint32_t cur_frag;
    uint64_t cur_commit_lsn;
    int64_t cur_ts;
    /* spill files */
    uint64_t spill_total;
    replay_t *rp;
    cdc_buf_t sbuf;
};

static void table_unref(void *t)
{
    cdc_table_destroy(t);
}

cdc_pgoutput_t *cdc_pgoutput_new(const cdc_pgoutput_opts_t *o,
                                 int proto_version)
{
    cdc_pgoutput_t *d = cdc_xcalloc(1, sizeof(*d));
    if (o)
        d->o = *o;
    d->proto = proto_version;
    cdc_arena_init(&d->scratch);
    return d;
}

static void tbls_free(spill_tbls_t *t)
{
    for (uint32_t i = 0; i < t->n; i++)
        cdc_table_destroy(t->t[i]);
    free(t->t);
    memset(t, 0, sizeof(*t));
}

/* Close and remove a spill file holding bytes. */
static void spill_drop(cdc_pgoutput_t *d, FILE **f, char **path,
                       uint64_t bytes)
{
    if (*f)
        fclose(*f);
    if (*path) {
        unlink(*path);
        cdc_metrics_spill(0, -1);
    }
    free(*path);
    *f = NULL;
    *path = NULL;
    d->spill_total = d->spill_total > bytes ? d->spill_total - bytes : 0;
}

static void stxn_free(cdc_pgoutput_t *d, stxn_t *st)
{
    cdc_txn_destroy(st->tx);
    free(st->subxid);
    spill_drop(d, &st->spill, &st->path, st->spilled);
    tbls_free(&st->tbls);
    free(st->aborted);
}

static void replay_end(cdc_pgoutput_t *d)
{
    replay_t *rp = d->rp;

    if (!rp)
        return;
    spill_drop(d, &rp->f, &rp->path, rp->bytes);
    tbls_free(&rp->tbls);
    free(rp->aborted);
    cdc_txn_destroy(rp->tail);
    free(rp);
    d->rp = NULL;
}

void cdc_pgoutput_reset(cdc_pgoutput_t *d)
{
    cdc_txn_destroy(d->cur);
    d->cur = NULL;
    d->cur_frag = 0;
    for (size_t i = 0; i < d->nstreams; i++)
        stxn_free(d, &d->streams[i]);
    d->nstreams = 0;
    d->in_stream = 0;
    replay_end(d);
}

void cdc_pgoutput_destroy(cdc_pgoutput_t *d)
{
    if (!d)
        return;
    cdc_pgoutput_reset(d);
    free(d->streams);
    u32map_free(&d->rels, table_unref);
    u32map_free(&d->types, NULL);
    cdc_buf_free(&d->json);
    cdc_buf_free(&d->tmp);
    cdc_arena_destroy(&d->scratch);
    cdc_buf_free(&d->sbuf);
    free(d);
}

int cdc_pgoutput_busy(const cdc_pgoutput_t *d)
{
    return d->cur != NULL || d->nstreams > 0 || d->in_stream || d->rp;
}

cdc_table_t *cdc_pgoutput_table(const cdc_pgoutput_t *d, uint32_t relid)
{
    void **v = u32map_get(&d->rels, relid);
    return v ? *v : NULL;
}

const cdc_pgoutput_stats_t *cdc_pgoutput_stats(const cdc_pgoutput_t *d)
{
    return &d->stats;
}

/* Conversion of a type oid: built-in, cached, or via the resolver. */
static conv_t conv_for(cdc_pgoutput_t *d, uint32_t oid, int depth)
{
    int k = builtin_scalar(oid);
    uint32_t elem;
    void **v;
    conv_t c = CONV(K_UNKNOWN, 0);
    cdc_pg_typeinfo_t ti;

    if (k >= 0)
        return CONV(k, 0);
    if ((elem = builtin_array_elem(oid)) != 0)
        return CONV(K_ARRAY, builtin_scalar(elem));
    if ((v = u32map_get(&d->types, oid)) != NULL)
        return (conv_t)((uintptr_t)*v & 0xffff);
    if (depth < 8 && d->o.resolve_type &&
        d->o.resolve_type(d->o.opaque, oid, &ti) == 0) {
        if (ti.typtype == 'e') {
            c = CONV(K_TEXT, 0);
        } else if (ti.typtype == 'd' && ti.basetype) {
            c = conv_for(d, ti.basetype, depth + 1);
        } else if (ti.typcategory == 'A' && ti.elemtype) {
            conv_t ec = conv_for(d, ti.elemtype, depth + 1);
            if (CONV_K(ec) != K_ARRAY && CONV_K(ec) != K_UNKNOWN)
                c = CONV(K_ARRAY, CONV_K(ec));
        }
    }
    if (CONV_K(c) == K_UNKNOWN)
        CDC_WARN("pgoutput",
                 "type oid %u has no JSON mapping; its values are passed "
                 "through as text strings",
                 oid);
    u32map_put(&d->types, oid, (void *)(uintptr_t)(c | 0x10000));
    return c;
}

/* ---------------------------------------------------------------------
 * Bounds-checked reader
 * ------------------------------------------------------------------- */

typedef struct rd {
    const uint8_t *p;
    size_t len, off;
    const char *what; /* message name for errors */
    cdc_err_t *err;
} rd_t;

static int rd_short(rd_t *r, size_t need)
{
    return data_err(r->err,
                    "truncated %s message: need %zu bytes at offset %zu, "
                    "message has %zu",
                    r->what, need, r->off, r->len);
}

static int rd_u8(rd_t *r, uint8_t *v)
{
    if (r->len - r->off < 1) {
        *v = 0;
        return rd_short(r, 1);
    }
    *v = r->p[r->off++];
    return 0;
}

static int rd_u16(rd_t *r, uint16_t *v)
{
    if (r->len - r->off < 2) {
        *v = 0;
        return rd_short(r, 2);
    }
    *v = (uint16_t)(r->p[r->off] << 8 | r->p[r->off + 1]);
    r->off += 2;
    return 0;
}

static int rd_u32(rd_t *r, uint32_t *v)
{
    const uint8_t *p = r->p + r->off;
    if (r->len - r->off < 4) {
        *v = 0;
        return rd_short(r, 4);
    }
    *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
    r->off += 4;
    return 0;
}

static int rd_u64(rd_t *r, uint64_t *v)
{
    uint32_t hi, lo;
    if (r->len - r->off < 8) {
        *v = 0;
        return rd_short(r, 8);
    }
    rd_u32(r, &hi);
    rd_u32(r, &lo);
    *v = (uint64_t)hi << 32 | lo;
    return 0;
}

static int rd_str(rd_t *r, const char **s, size_t *n)
{
    const uint8_t *z = memchr(r->p + r->off, 0, r->len - r->off);
    *s = NULL;
    *n = 0;
    if (!z)
        return data_err(r->err,
                        "%s message: unterminated string at offset %zu",
                        r->what, r->off);
    *s = (const char *)r->p + r->off;
    *n = (size_t)(z - (r->p + r->off));
    r->off += *n + 1;
    return 0;
}

static int rd_end(rd_t *r)
{
    if (r->off != r->len)
        return data_err(r->err, "%s message: %zu unexpected trailing bytes",
                        r->what, r->len - r->off);
    return 0;
}

/* ---------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------- */

static stxn_t *stream_find(cdc_pgoutput_t *d, uint32_t xid)
{
    for (size_t i = 0; i < d->nstreams; i++)
        if (d->streams[i].xid == xid)
            return &d->streams[i];
    return NULL;
}

static stxn_t *stream_get(cdc_pgoutput_t *d, uint32_t xid)
{
    stxn_t *st = stream_find(d, xid);
    if (st)
        return st;
    if (d->nstreams == d->capstreams) {
        d->capstreams = d->capstreams ? d->capstreams * 2 : 4;
        d->streams =
            cdc_xrealloc(d->streams, d->capstreams * sizeof(*d->streams));
    }
    st = &d->streams[d->nstreams++];
    memset(st, 0, sizeof(*st));
    st->xid = xid;
    st->tx = cdc_txn_new();
    st->tx->xid = xid;
    st->tx->connector = "postgresql";
    return st;
}

static void stream_remove(cdc_pgoutput_t *d, stxn_t *st, int destroy)
{
    size_t i = (size_t)(st - d->streams);
    if (destroy)
        stxn_free(d, st);
    else /* Stream Commit: its parts moved to the read-back */
        free(st->subxid);
    memmove(&d->streams[i], &d->streams[i + 1],
            (d->nstreams - i - 1) * sizeof(*d->streams));
    d->nstreams--;
}

/* Leading [xid] of messages inside a streamed block. */
static int rd_stream_xid(cdc_pgoutput_t *d, rd_t *r, uint32_t *xid)
{
    *xid = 0;
    if (d->in_stream && d->proto >= 2)
        return rd_u32(r, xid);
    return 0;
}

/* The txn a change goes to; records the subxid of streamed changes
 * (called before cdc_txn_add). */
static cdc_txn_t *target_txn(cdc_pgoutput_t *d, rd_t *r, uint32_t subxid)
{
    if (d->in_stream) {
        stxn_t *st = stream_get(d, d->stream_xid);
        cdc_txn_t *tx = st->tx;
        if (tx->nchanges >= st->capsub) {
            st->capsub = st->capsub ? st->capsub * 2 : 16;
            st->subxid =
                cdc_xrealloc(st->subxid, st->capsub * sizeof(*st->subxid));
        }
        st->subxid[tx->nchanges] = subxid;
        return tx;
    }
    if (!d->cur)
        data_err(r->err, "%s message outside a transaction", r->what);
    return d->cur;
}

static int msg_relation(cdc_pgoutput_t *d, rd_t *r)
{
    uint32_t xid, relid, typoid, typmod;
    const char *nsp, *rel, *name;
    size_t nn, rn, an;
    uint8_t replident, flags;
    uint16_t natts;
    cdc_table_t *t;
    relpriv_t *rp;

    if (rd_stream_xid(d, r, &xid) || rd_u32(r, &relid) ||
        rd_str(r, &nsp, &nn) || rd_str(r, &rel, &rn) ||
        rd_u8(r, &replident) || rd_u16(r, &natts))
        return -1;
    if (!strchr("dnfi", replident) || replident == 0)
        return data_err(r->err, "Relation %s.%s: unknown replica identity "
                        "0x%02x", nsp, rel, replident);
    /* Each attribute needs at least 1 + 1 + 4 + 4 bytes. */
    if ((size_t)natts * 10 > r->len - r->off)
        return rd_short(r, (size_t)natts * 10);
    t = cdc_table_new(nsp, rel, natts);
    t->id = relid;
    rp = cdc_xcalloc(1, sizeof(*rp));
    rp->ncols = natts;
    rp->ident = cdc_xcalloc(natts ? natts : 1, 1);
    rp->conv = cdc_xcalloc(natts ? natts : 1, sizeof(*rp->conv));
    rp->replident = (char)replident;
    t->priv = rp;
    t->priv_free = relpriv_free;
    t->pk = cdc_xcalloc(natts ? natts : 1, sizeof(*t->pk));
    for (uint16_t i = 0; i < natts; i++) {
        if (rd_u8(r, &flags) || rd_str(r, &name, &an) ||
            rd_u32(r, &typoid) || rd_u32(r, &typmod)) {
            cdc_table_destroy(t);
            return -1;
        }
        t->cols[i].name = cdc_xstrndup(name, an);
        t->cols[i].type = typoid;
        t->cols[i].meta = typmod;
        if (flags & 1) {
            t->cols[i].flags |= CDC_COL_PK;
            rp->ident[i] = 1;
            t->pk[t->npk++] = i;
        }
    }
    if (rd_end(r) < 0) {
        cdc_table_destroy(t);
        return -1;
    }
    for (uint16_t i = 0; i < natts; i++)
        rp->conv[i] = conv_for(d, t->cols[i].type, 0);
    if (d->o.on_relation)
        d->o.on_relation(d->o.opaque, t, (char)replident);
    void **old = u32map_get(&d->rels, relid);
    if (old)
        cdc_table_destroy(*old);
    u32map_put(&d->rels, relid, t);
    return 0;
}

static int get_rel(cdc_pgoutput_t *d, rd_t *r, uint32_t relid,
                   cdc_table_t **t)
{
    void **v = u32map_get(&d->rels, relid);
    *t = NULL;
    if (!v)
        return data_err(r->err,
                        "%s message for relation %u before its Relation "
                        "message",
                        r->what, relid);
    *t = *v;
    return 0;
}

/* TupleData -> values.  keyonly: columns outside the identity are ABSENT. */
static int read_tuple(cdc_pgoutput_t *d, rd_t *r, cdc_txn_t *tx,
                      cdc_table_t *t, int keyonly, cdc_value_t **out)
{
    relpriv_t *rp = t->priv;
    uint16_t ncols;
    cdc_value_t *vals;

    if (rd_u16(r, &ncols))
        return -1;
    if (ncols != t->ncols)
        return data_err(r->err,
                        "%s message for %s.%s has %u columns, its Relation "
                        "has %u",
                        r->what, t->db, t->name, ncols, t->ncols);
    vals = cdc_txn_values(tx, ncols);
    for (uint16_t i = 0; i < ncols; i++) {
        uint8_t kind;
        uint32_t len;
        cdc_value_t *v = &vals[i];
        if (rd_u8(r, &kind))
            return -1;
        switch (kind) {
        case 'n':
            v->kind = CDC_V_NULL;
            break;
        case 'u':
            v->kind = CDC_V_UNCHANGED;
            break;
        case 't': {
            if (rd_u32(r, &len))
                return -1;
            if (len > r->len - r->off)
                return rd_short(r, len);
            const char *s = (const char *)r->p + r->off;
            r->off += len;
            conv_t c = rp->conv[i];
            int rc;
            if (CONV_K(c) == K_ARRAY) {
                rc = arr_to_json(s, len, CONV_EK(c), &d->json, &d->tmp,
                                 &d->scratch);
                if (rc == 0)
                    set_str(v, CDC_V_JSON, d->json.p, d->json.len,
                            &tx->arena);
            } else {
                rc = scalar_value(CONV_K(c), s, len, &tx->arena, v);
            }
            if (rc < 0) {
                int shown = len > 40 ? 40 : (int)len;
                return data_err(r->err,
                                "column %s.%s.%s: invalid %s text \"%.*s\"%s",
                                t->db, t->name, t->cols[i].name,
                                kind_name(CONV_K(c)), shown, s,
                                len > 40 ? "..." : "");
            }
            break;
        }
        case 'b':
            return data_err(r->err,
                            "column %s.%s.%s: binary tuple data is not "
                            "supported (do not set binary 'true')",
                            t->db, t->name, t->cols[i].name);
        default:
            return data_err(r->err,
                            "%s message: unknown tuple column kind 0x%02x "
                            "at offset %zu",
                            r->what, kind, r->off - 1);
        }
        if (keyonly && !rp->ident[i])
            v->kind = CDC_V_ABSENT;
    }
    *out = vals;
    return 0;
}

static int msg_change(cdc_pgoutput_t *d, rd_t *r, char tag)
{
    uint32_t xid, relid;
    uint8_t k;
    cdc_table_t *t;
    cdc_txn_t *tx;
    cdc_value_t *before = NULL, *after = NULL;
    char op = tag == 'I' ? CDC_OP_CREATE
                         : tag == 'U' ? CDC_OP_UPDATE : CDC_OP_DELETE;

    if (rd_stream_xid(d, r, &xid) || rd_u32(r, &relid) ||
        get_rel(d, r, relid, &t))
        return -1;
    if (!(tx = target_txn(d, r, xid)))
        return -1;
    if (rd_u8(r, &k))
        return -1;
    if (tag != 'I' && (k == 'K' || k == 'O')) {
        if (read_tuple(d, r, tx, t, k == 'K', &before))
            return -1;
        if (tag == 'U' && rd_u8(r, &k))
            return -1;
    } else if (tag == 'D') {
        return data_err(r->err, "Delete message: expected 'K' or 'O', got "
                        "0x%02x",
                        k);
    }
    if (tag != 'D') {
        if (k != 'N')
            return data_err(r->err, "%s message: expected 'N', got 0x%02x",
                            r->what, k);
        if (read_tuple(d, r, tx, t, 0, &after))
            return -1;
    }
    if (rd_end(r) < 0)
        return -1;
    cdc_change_t *ch = cdc_txn_add(tx, op, t);
    ch->before = before;
    ch->after = after;
    return 0;
}

static int msg_truncate(cdc_pgoutput_t *d, rd_t *r)
{
    uint32_t xid, nrels, relid;
    uint8_t options;
    cdc_txn_t *tx;
    cdc_table_t *t;

    if (rd_stream_xid(d, r, &xid) || rd_u32(r, &nrels) ||
        rd_u8(r, &options))
        return -1;
    if ((uint64_t)nrels * 4 != r->len - r->off)
        return data_err(r->err,
                        "Truncate message: %u relations need %llu bytes, "
                        "%zu left",
                        nrels, (unsigned long long)nrels * 4,
                        r->len - r->off);
    for (uint32_t i = 0; i < nrels; i++) {
        if (rd_u32(r, &relid) || get_rel(d, r, relid, &t))
            return -1;
        if (!(tx = target_txn(d, r, xid)))
            return -1;
        cdc_txn_add(tx, CDC_OP_TRUNCATE, t);
    }
    return 0;
}

static void finish_txn(cdc_txn_t *tx, uint64_t end_lsn, int64_t commit_time)
{
    if (tx->skipped) {
        /* written by one of our sinks (Origin): nothing to capture */
        for (uint32_t i = 0; i < tx->nchanges; i++)
            cdc_table_destroy(tx->changes[i].tbl);
        tx->nchanges = 0;
    }
    tx->pos.lsn = end_lsn;
    tx->commit_us = commit_time + CDC_PG_EPOCH_OFFSET_US;
    tx->connector = "postgresql";
    if (tx->nchanges == 0 && !tx->frag) /* a last fragment is not */
        tx->skipped = 1;
}

/* Set the pos of the changes added by the last message. */
static void stamp(cdc_txn_t *tx, uint32_t from, uint64_t lsn)
{
    for (uint32_t i = from; tx && i < tx->nchanges; i++) {
        tx->changes[i].pos = lsn;
        tx->changes[i].row = i - from;
    }
}

static cdc_txn_t *current_txn(cdc_pgoutput_t *d)
{
    if (d->in_stream) {
        stxn_t *st = stream_find(d, d->stream_xid);
        return st ? st->tx : NULL;
    }
    return d->cur;
}

/* ---------------------------------------------------------------------
 * Big transactions: fragments and spill files
 *
 * A spill record is one change: u32 length of the rest, u8 op, u32 table
 * index (into the spill's table list), u64 pos, u32 row, u32 subxid, u8
 * images (1 before, 2 after), u32 ncols, then per image ncols values: u8
 * kind and, by kind, 8 bytes (bool/int/uint/float/double, the union's
 * bits) or u32 length + bytes (decimal/string/bytes/json).  Big-endian.
 * ------------------------------------------------------------------- */

static void sp_u32(cdc_buf_t *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    cdc_buf_put(b, x, 4);
}

static void sp_u64(cdc_buf_t *b, uint64_t v)
{
    sp_u32(b, (uint32_t)(v >> 32));
    sp_u32(b, (uint32_t)v);
}

static int kind_has_bits(int k)
{
    return k == CDC_V_BOOL || k == CDC_V_INT || k == CDC_V_UINT ||
           k == CDC_V_FLOAT || k == CDC_V_DOUBLE;
}

static int kind_has_text(int k)
{
    return k == CDC_V_DECIMAL || k == CDC_V_STRING || k == CDC_V_BYTES ||
           k == CDC_V_JSON;
}

static uint32_t tbl_index(spill_tbls_t *t, cdc_table_t *tbl)
{
    if (t->n && t->t[t->last] == tbl)
        return t->last;
    for (uint32_t i = 0; i < t->n; i++)
        if (t->t[i] == tbl)
            return t->last = i;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->t = cdc_xrealloc(t->t, t->cap * sizeof(*t->t));
    }
    t->t[t->n] = cdc_table_keep(tbl);
    return t->last = t->n++;
}

static void put_values(cdc_buf_t *b, const cdc_value_t *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint64_t bits = 0;
        cdc_buf_putc(b, (char)v[i].kind);
        if (kind_has_bits(v[i].kind)) {
            memcpy(&bits, &v[i].u, sizeof(bits));
            sp_u64(b, bits);
        } else if (kind_has_text(v[i].kind)) {
            sp_u32(b, (uint32_t)v[i].len);
            cdc_buf_put(b, v[i].s, v[i].len);
        }
    }
}

static size_t txn_bytes(const cdc_txn_t *tx)
{
    return tx->arena.total + (size_t)tx->capchanges * sizeof(cdc_change_t);
}

static int over(size_t rows, size_t bytes, size_t max_rows, size_t max_bytes)
{
    return (max_rows && rows >= max_rows) || (max_bytes && bytes >= max_bytes);
}

/* Write the in-memory changes of st to its spill file (created on first
 * use) and empty st->tx. */
static int spill_out(cdc_pgoutput_t *d, stxn_t *st, cdc_err_t *err)
{
    cdc_txn_t *tx = st->tx, *nt;
    uint64_t written = 0;

    if (!tx->skipped && !st->spill) {
        cdc_buf_t p = CDC_BUF_INIT;
        cdc_buf_printf(&p, "%s.%u", d->o.spill_prefix, st->xid);
        st->path = p.p;
        st->spill = fopen(st->path, "w+b");
        if (!st->spill) {
            cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                        "postgres: cannot create the spill file %s: %s",
                        st->path, strerror(errno));
            cdc_err_hint(err, "state.dir must be writable; big streamed "
                              "transactions are spilled there past "
                              "postgres.work_mem");
            free(st->path);
            st->path = NULL;
            return -1;
        }
        cdc_metrics_spill(0, 1);
        CDC_INFO("postgres", "streamed transaction xid %u holds more than "
                 "postgres.work_mem: spilling it to %s", st->xid, st->path);
    }
    for (uint32_t i = 0; !tx->skipped && i < tx->nchanges; i++) {
        const cdc_change_t *ch = &tx->changes[i];
        cdc_buf_t *b = &d->sbuf;
        uint32_t nc = ch->tbl->ncols, len;
        cdc_buf_reset(b);
        sp_u32(b, 0);
        cdc_buf_putc(b, ch->op);
        sp_u32(b, tbl_index(&st->tbls, ch->tbl));
        sp_u64(b, ch->pos);
        sp_u32(b, ch->row);
        sp_u32(b, st->subxid ? st->subxid[i] : st->xid);
        cdc_buf_putc(b, (char)((ch->before ? 1 : 0) | (ch->after ? 2 : 0)));
        sp_u32(b, nc);
        if (ch->before)
            put_values(b, ch->before, nc);
        if (ch->after)
            put_values(b, ch->after, nc);
        len = (uint32_t)(b->len - 4);
        b->p[0] = (char)(len >> 24);
        b->p[1] = (char)(len >> 16);
        b->p[2] = (char)(len >> 8);
        b->p[3] = (char)len;
        if (fwrite(b->p, 1, b->len, st->spill) != b->len)
            return cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                               "postgres: writing the spill file %s: %s",
                               st->path, strerror(errno));
        written += b->len;
    }
    st->spilled += written;
    d->spill_total += written;
    if (written)
        cdc_metrics_spill(written, 0);
    nt = cdc_txn_new();
    nt->xid = tx->xid;
    nt->skipped = tx->skipped;
    nt->connector = tx->connector;
    cdc_txn_destroy(tx);
    st->tx = nt;
    if (d->o.max_spill && d->spill_total > d->o.max_spill) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "postgres: spill files of streamed transactions hold "
                    "%" PRIu64 " MB, more than state.max_spill_mb (%" PRIu64
                    " MB)",
                    d->spill_total >> 20, d->o.max_spill >> 20);
        cdc_err_hint(err, "raise state.max_spill_mb (or free room in "
                          "state.dir); nothing of the open transactions was "
                          "delivered and the restart reads them again");
        return -1;
    }
    return 0;
}

typedef struct sprd {
    const uint8_t *p;
    size_t n, off;
    int bad;
} sprd_t;

static uint64_t sprd_n(sprd_t *r, int bytes)
{
    uint64_t v = 0;
    if (r->bad || r->n - r->off < (size_t)bytes) {
        r->bad = 1;
        return 0;
    }
    for (int i = 0; i < bytes; i++)
        v = v << 8 | r->p[r->off++];
    return v;
}

static int get_values(sprd_t *r, cdc_txn_t *tx, cdc_value_t *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        int k = (int)sprd_n(r, 1);
        if (r->bad || k > CDC_V_JSON)
            return -1;
        v[i].kind = (uint8_t)k;
        if (kind_has_bits(k)) {
            uint64_t bits = sprd_n(r, 8);
            memcpy(&v[i].u, &bits, sizeof(bits));
        } else if (kind_has_text(k)) {
            uint32_t len = (uint32_t)sprd_n(r, 4);
            if (r->bad || r->n - r->off < len)
                return -1;
            v[i].s = cdc_arena_memdup(&tx->arena, r->p + r->off, len);
            v[i].len = len;
            r->off += len;
        }
    }
    return r->bad ? -1 : 0;
}

/* Read one record into tx; 0 at the end of the file, 1, or -1. */
static int spill_read(cdc_pgoutput_t *d, replay_t *rp, cdc_txn_t *tx,
                      cdc_err_t *err)
{
    uint8_t hdr[4];
    size_t got = fread(hdr, 1, 4, rp->f);
    uint32_t len, ti, sub, nc;
    sprd_t r;
    char op;
    int img;
    cdc_change_t *ch;
    uint64_t pos;
    uint32_t row;

    if (got == 0 && feof(rp->f))
        return 0;
    if (got != 4)
        goto bad;
    len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
          (uint32_t)hdr[2] << 8 | hdr[3];
    if (len > (1u << 30))
        goto bad;
    cdc_buf_reset(&d->sbuf);
    cdc_buf_grow(&d->sbuf, len);
    if (fread(d->sbuf.p, 1, len, rp->f) != len)
        goto bad;
    r = (sprd_t){(const uint8_t *)d->sbuf.p, len, 0, 0};
    op = (char)sprd_n(&r, 1);
    ti = (uint32_t)sprd_n(&r, 4);
    pos = sprd_n(&r, 8);
    row = (uint32_t)sprd_n(&r, 4);
    sub = (uint32_t)sprd_n(&r, 4);
    img = (int)sprd_n(&r, 1);
    nc = (uint32_t)sprd_n(&r, 4);
    if (r.bad || ti >= rp->tbls.n || nc != rp->tbls.t[ti]->ncols)
        goto bad;
    /* what we write: c and u with an after image, d with a before image
     * at most, t with neither (anything else is a damaged file) */
    if (img & ~3 || !((op == CDC_OP_CREATE && (img & 2)) ||
                      (op == CDC_OP_UPDATE && (img & 2)) ||
                      (op == CDC_OP_DELETE && !(img & 2)) ||
                      (op == CDC_OP_TRUNCATE && img == 0)))
        goto bad;
    for (size_t i = 0; i < rp->naborted; i++)
        if (rp->aborted[i] == sub)
            return 1; /* its subtransaction rolled back */
    ch = cdc_txn_add(tx, op, rp->tbls.t[ti]);
    ch->pos = pos;
    ch->row = row;
    if (img & 1) {
        ch->before = cdc_txn_values(tx, nc);
        if (get_values(&r, tx, ch->before, nc))
            goto bad;
    }
    if (img & 2) {
        ch->after = cdc_txn_values(tx, nc);
        if (get_values(&r, tx, ch->after, nc))
            goto bad;
    }
    if (r.off != r.n)
        goto bad;
    return 1;
bad:
    return cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                       "postgres: the spill file %s of xid %u is damaged "
                       "(offset %ld)",
                       rp->path, rp->xid, ftell(rp->f));
}

int cdc_pgoutput_next(cdc_pgoutput_t *d, cdc_txn_t **out, cdc_err_t *err)
{
    replay_t *rp = d->rp;
    cdc_txn_t *tx;
    int rc = 1;

    *out = NULL;
    if (!rp)
        return 0;
    tx = cdc_txn_new();
    tx->xid = rp->xid;
    tx->connector = "postgresql";
    while (rp->f &&
           !over(tx->nchanges, txn_bytes(tx), d->o.frag_rows ? d->o.frag_rows
                                                              : 4096,
                 d->o.frag_bytes ? d->o.frag_bytes : (size_t)1 << 20)) {
        rc = spill_read(d, rp, tx, err);
        if (rc < 0) {
            cdc_txn_destroy(tx);
            return -1;
        }
        if (rc == 0) { /* the file is read: it goes now */
            spill_drop(d, &rp->f, &rp->path, rp->bytes);
            rp->bytes = 0;
        }
    }
    if (tx->nchanges || rp->f) {
        /* a fragment; the changes still in memory come last */
        tx->pos.lsn = rp->commit_lsn;
        tx->commit_us = rp->ts + CDC_PG_EPOCH_OFFSET_US;
        tx->frag = rp->frag++;
        tx->more = 1;
        *out = tx;
        return 1;
    }
    cdc_txn_destroy(tx);
    tx = rp->tail;
    rp->tail = NULL;
    tx->frag = rp->frag;
    tx->more = 0;
    tx->pos.lsn = rp->end_lsn;
    tx->commit_us = rp->ts + CDC_PG_EPOCH_OFFSET_US;
    tx->connector = "postgresql";
    replay_end(d);
    *out = tx;
    return 1;
}

/* Stream Commit of a spilled transaction: read it back in fragments. */
static int replay_start(cdc_pgoutput_t *d, stxn_t *st, uint64_t commit_lsn,
                        uint64_t end_lsn, int64_t ts, cdc_txn_t **out,
                        cdc_err_t *err)
{
    replay_t *rp = cdc_xcalloc(1, sizeof(*rp));

    rp->f = st->spill;
    rp->path = st->path;
    rp->bytes = st->spilled;
    rp->tbls = st->tbls;
    rp->aborted = st->aborted;
    rp->naborted = st->naborted;
    rp->tail = st->tx;
    rp->xid = st->xid;
    rp->commit_lsn = commit_lsn;
    rp->end_lsn = end_lsn;
    rp->ts = ts;
    st->spill = NULL;
    st->path = NULL;
    st->tx = NULL;
    st->aborted = NULL;
    memset(&st->tbls, 0, sizeof(st->tbls));
    stream_remove(d, st, 0);
    d->rp = rp;
    if (fflush(rp->f) || fseek(rp->f, 0, SEEK_SET))
        return cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                           "postgres: rewinding the spill file %s: %s",
                           rp->path, strerror(errno));
    return cdc_pgoutput_next(d, out, err);
}

void cdc_pgoutput_spill_cleanup(const char *prefix)
{
    cdc_buf_t pat = CDC_BUF_INIT;
    glob_t g;

    if (!prefix || !*prefix)
        return;
    cdc_buf_printf(&pat, "%s.*", prefix);
    if (glob(pat.p, GLOB_NOSORT, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            CDC_INFO("postgres", "removing the spill file %s of an earlier "
                     "run", g.gl_pathv[i]);
            unlink(g.gl_pathv[i]);
        }
        globfree(&g);
    }
    cdc_buf_free(&pat);
}

/* After a change message: hand out the open transaction's changes so far
 * as a fragment (non-streamed), or spill a streamed one past work_mem. */
static int after_change(cdc_pgoutput_t *d, cdc_txn_t **out, cdc_err_t *err)
{
    if (d->in_stream) {
        stxn_t *st = stream_find(d, d->stream_xid);
        if (st && d->o.work_mem && d->o.spill_prefix &&
            txn_bytes(st->tx) >= d->o.work_mem)
            return spill_out(d, st, err);
        return 0;
    }
    if (!d->cur || d->cur->skipped || !d->cur->nchanges ||
        !over(d->cur->nchanges, txn_bytes(d->cur), d->o.frag_rows,
              d->o.frag_bytes))
        return 0;
    cdc_txn_t *tx = d->cur;
    d->cur = cdc_txn_new();
    d->cur->xid = tx->xid;
    d->cur->connector = "postgresql";
    tx->pos.lsn = d->cur_commit_lsn; /* not a resume point */
    tx->commit_us = d->cur_ts + CDC_PG_EPOCH_OFFSET_US;
    tx->connector = "postgresql";
    tx->frag = d->cur_frag++;
    tx->more = 1;
    *out = tx;
    return 1;
}

int cdc_pgoutput_feed(cdc_pgoutput_t *d, const uint8_t *msg, size_t len,
                      uint64_t lsn, cdc_txn_t **out, cdc_err_t *err)
{
    rd_t r = {msg, len, 1, "?", err};
    uint64_t u64a, u64b;
    uint32_t xid, sub;
    int64_t ts;
    uint8_t flags;
    const char *s;
    size_t n;

    *out = NULL;
    if (len == 0)
        return data_err(err, "empty message");
    switch (msg[0]) {
    case 'B': /* Begin: final_lsn, commit_time, xid */
        r.what = "Begin";
        if (rd_u64(&r, &u64a) || rd_u64(&r, &u64b) || rd_u32(&r, &xid) ||
            rd_end(&r))
            return -1;
        if (d->cur)
            return data_err(err, "Begin of xid %u inside open transaction "
                            "xid %u",
                            xid, d->cur_xid);
        if (d->in_stream)
            return data_err(err, "Begin inside a streamed block");
        d->cur = cdc_txn_new();
        d->cur->xid = xid;
        d->cur->connector = "postgresql";
        d->cur_xid = xid;
        d->cur_frag = 0;
        d->cur_commit_lsn = u64a;
        d->cur_ts = (int64_t)u64b;
        return 0;
    case 'C': /* Commit: flags, commit_lsn, end_lsn, commit_time */
        r.what = "Commit";
        if (rd_u8(&r, &flags) || rd_u64(&r, &u64a) || rd_u64(&r, &u64b) ||
            rd_u64(&r, (uint64_t *)&ts) || rd_end(&r))
            return -1;
        if (!d->cur)
            return data_err(err, "Commit without Begin");
        d->cur->frag = d->cur_frag;
        d->cur_frag = 0;
        finish_txn(d->cur, u64b, ts);
        *out = d->cur;
        d->cur = NULL;
        return 1;
    case 'O': /* Origin: origin_lsn, name */
        r.what = "Origin";
        if (rd_u64(&r, &u64a) || rd_str(&r, &s, &n) || rd_end(&r))
            return -1;
        d->stats.origins++;
        if (d->o.skip_origins && *d->o.skip_origins) {
            char name[520];
            cdc_txn_t *otx = current_txn(d);
            snprintf(name, sizeof(name), "%.*s", (int)(n < 512 ? n : 512), s);
            if (otx && !otx->skipped &&
                !fnmatch(d->o.skip_origins, name, 0)) {
                otx->skipped = 1;
                d->stats.origin_skipped++;
            }
        }
        return 0;
    case 'R':
        r.what = "Relation";
        return msg_relation(d, &r);
    case 'Y': /* Type: [xid] oid, nspname, typname */
        r.what = "Type";
        if (rd_stream_xid(d, &r, &xid) || rd_u32(&r, &sub) ||
            rd_str(&r, &s, &n) || rd_str(&r, &s, &n) || rd_end(&r))
            return -1;
        d->stats.types++;
        return 0;
    case 'I':
    case 'U':
    case 'D':
    case 'T': {
        r.what = msg[0] == 'I' ? "Insert"
               : msg[0] == 'U' ? "Update"
               : msg[0] == 'D' ? "Delete" : "Truncate";
        cdc_txn_t *tx = current_txn(d);
        uint32_t from = tx ? tx->nchanges : 0;
        int rc = msg[0] == 'T' ? msg_truncate(d, &r)
                               : msg_change(d, &r, (char)msg[0]);
        if (rc < 0)
            return -1;
        stamp(current_txn(d), from, lsn);
        return after_change(d, out, err);
    }
    case 'M': { /* Message: [xid] flags, lsn, prefix, length, content */
        uint32_t clen;
        r.what = "Message";
        if (rd_stream_xid(d, &r, &xid) || rd_u8(&r, &flags) ||
            rd_u64(&r, &u64a) || rd_str(&r, &s, &n) || rd_u32(&r, &clen))
            return -1;
        if (clen != r.len - r.off)
            return data_err(err, "Message: content length %u, %zu bytes "
                            "left",
                            clen, r.len - r.off);
        d->stats.messages++;
        d->stats.last_msg_lsn = u64a;
        return 0;
    }
    case 'S': /* Stream Start: xid, first_segment */
        r.what = "Stream Start";
        if (rd_u32(&r, &xid) || rd_u8(&r, &flags) || rd_end(&r))
            return -1;
        if (d->in_stream)
            return data_err(err, "Stream Start of xid %u inside the "
                            "streamed block of xid %u",
                            xid, d->stream_xid);
        if (d->cur)
            return data_err(err, "Stream Start inside an open transaction");
        if (flags == 1) {
            stxn_t *st = stream_find(d, xid);
            if (st) /* re-sent from its first segment: start over */
                stream_remove(d, st, 1);
        }
        if (flags != 1 && !stream_find(d, xid))
            return data_err(err, "Stream Start continues xid %u whose first "
                            "segment was not received",
                            xid);
        d->in_stream = 1;
        d->stream_xid = xid;
        stream_get(d, xid);
        return 0;
    case 'E': /* Stream Stop */
        r.what = "Stream Stop";
        if (rd_end(&r))
            return -1;
        if (!d->in_stream)
            return data_err(err, "Stream Stop without Stream Start");
        d->in_stream = 0;
        return 0;
    case 'c': { /* Stream Commit: xid, flags, commit_lsn, end_lsn, time */
        stxn_t *st;
        r.what = "Stream Commit";
        if (rd_u32(&r, &xid) || rd_u8(&r, &flags) || rd_u64(&r, &u64a) ||
            rd_u64(&r, &u64b) || rd_u64(&r, (uint64_t *)&ts) || rd_end(&r))
            return -1;
        if (d->in_stream)
            return data_err(err, "Stream Commit inside a streamed block");
        if (!(st = stream_find(d, xid)))
            return data_err(err, "Stream Commit of unknown xid %u", xid);
        if (st->spill)
            return replay_start(d, st, u64a, u64b, ts, out, err);
        *out = st->tx;
        finish_txn(st->tx, u64b, ts);
        stream_remove(d, st, 0);
        return 1;
    }
    case 'A': { /* Stream Abort: xid, subxid [, abort_lsn, abort_time] */
        stxn_t *st;
        r.what = "Stream Abort";
        if (rd_u32(&r, &xid) || rd_u32(&r, &sub))
            return -1;
        if (r.len - r.off != 0 && r.len - r.off != 16)
            return rd_end(&r);
        if (d->in_stream)
            return data_err(err, "Stream Abort inside a streamed block");
        d->stats.aborted++;
        if (!(st = stream_find(d, xid)))
            return 0; /* nothing of it was buffered */
        if (sub == xid) {
            stream_remove(d, st, 1); /* its spill file goes too */
            return 0;
        }
        if (st->spill) { /* its spilled changes are dropped at read-back */
            if (st->naborted == st->capaborted) {
                st->capaborted = st->capaborted ? st->capaborted * 2 : 4;
                st->aborted = cdc_xrealloc(
                    st->aborted, st->capaborted * sizeof(*st->aborted));
            }
            st->aborted[st->naborted++] = sub;
        }
        /* Drop the changes of the aborted subtransaction only. */
        cdc_txn_t *tx = st->tx;
        uint32_t w = 0;
        for (uint32_t i = 0; i < tx->nchanges; i++) {
            if (st->subxid[i] == sub) {
                cdc_table_destroy(tx->changes[i].tbl);
                continue;
            }
            st->subxid[w] = st->subxid[i];
            tx->changes[w++] = tx->changes[i];
        }
        tx->nchanges = w;
        return 0;
    }
    case 'b': case 'P': case 'K': case 'r': case 'p':
        return data_err(err, "two-phase message '%c' received, but two_phase "
                        "was not requested",
                        msg[0]);
    default:
        return data_err(err, "unknown message type 0x%02x", msg[0]);
    }
}

int cdc_pg_value_text(uint32_t oid, const char *s, size_t len,
                      cdc_arena_t *a, cdc_value_t *out, cdc_err_t *err)
{
    int k = builtin_scalar(oid);
    uint32_t elem = builtin_array_elem(oid);

    if (elem) {
        cdc_buf_t json = CDC_BUF_INIT, tmp = CDC_BUF_INIT;
        cdc_arena_t scratch;
        cdc_arena_init(&scratch);
        int rc = arr_to_json(s, len, builtin_scalar(elem), &json, &tmp,
                             &scratch);
        if (rc == 0) {
            memset(out, 0, sizeof(*out));
            set_str(out, CDC_V_JSON, json.p, json.len, a);
        }
        cdc_buf_free(&json);
        cdc_buf_free(&tmp);
        cdc_arena_destroy(&scratch);
        if (rc < 0)
            return data_err(err, "invalid array text for type oid %u", oid);
        return 0;
    }
    if (k < 0)
        k = K_UNKNOWN;
    if (scalar_value(k, s, len, a, out) < 0)
        return data_err(err, "invalid %s text for type oid %u",
                        kind_name(k), oid);
    return 0;
}
