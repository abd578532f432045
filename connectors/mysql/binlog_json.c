/* SPDX-License-Identifier: Apache-2.0 */
/*
 * binlog_json.c - MySQL binary JSON (sql-common/json_binary.h) -> JSON text.
 *
 * A document is a type byte followed by the value.  Objects and arrays
 * come in a small (2-byte offsets/sizes) and a large (4-byte) form:
 *
 *   element_count, total_size          (2|4 bytes each)
 *   key entries   (objects only)       key_offset (2|4), key_length (u16)
 *   value entries                      type u8, offset_or_inlined (2|4)
 *   keys, then values                  (offsets relative to the byte after
 *                                       the container's type byte)
 *
 * Literals and 16-bit integers are inlined in the value entry, 32-bit
 * integers too in the large form.  Strings carry a variable-length size
 * (7 bits per byte, low group first).  Opaque values carry a MySQL field
 * type and raw bytes.
 *
 * Output is compact JSON (no spaces), object members in stored order (the
 * order MySQL prints).  Renderings follow MySQL's own JSON printer:
 * doubles keep a ".0" when integral and read back to the same double;
 * opaque DECIMAL is a JSON number with exactly its digits and scale
 * ("9.00"), DATE "YYYY-MM-DD", TIME "[-]HH:MM:SS.ffffff", DATETIME and
 * TIMESTAMP "YYYY-MM-DD HH:MM:SS.ffffff" (JSON strings); any other opaque
 * type is the string "base64:typeNN:<base64>".
 *
 * Invariants: pure; every offset and length is checked against the
 * enclosing container before it is followed; nesting is limited.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/buf.h"
#include "cdc/err.h"
#include "connectors/mysql/binlog.h"
#include "connectors/mysql/binlog_value_int.h"

/* json_binary.h type codes */
enum {
    JSONB_SMALL_OBJECT = 0x00,
    JSONB_LARGE_OBJECT = 0x01,
    JSONB_SMALL_ARRAY = 0x02,
    JSONB_LARGE_ARRAY = 0x03,
    JSONB_LITERAL = 0x04, /* 0 null, 1 true, 2 false */
    JSONB_INT16 = 0x05,
    JSONB_UINT16 = 0x06,
    JSONB_INT32 = 0x07,
    JSONB_UINT32 = 0x08,
    JSONB_INT64 = 0x09,
    JSONB_UINT64 = 0x0A,
    JSONB_DOUBLE = 0x0B,
    JSONB_STRING = 0x0C,
    JSONB_OPAQUE = 0x0F,
};

#define JSONB_MAX_DEPTH 150 /* MySQL itself stops at 100 */

static uint64_t rd_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int jerr(cdc_err_t *err, const char *what)
{
    return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                       "corrupt binary JSON: %s", what);
}

/* ---- text helpers shared with binlog_value.c ------------------------ */

void cdc_mysql_json_str(cdc_buf_t *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, run = 0;

    cdc_buf_grow(out, n + 2);
    cdc_buf_putc(out, '"');
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[6];

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        cdc_buf_put(out, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            cdc_buf_put(out, u, 6);
            continue;
        }
        cdc_buf_puts(out, esc);
    }
    cdc_buf_put(out, s + run, n - run);
    cdc_buf_putc(out, '"');
}

int cdc_mysql_json_double(cdc_buf_t *out, double d)
{
    char b[48];

    if (!isfinite(d))
        return -1;
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(b, sizeof(b), "%.*g", prec, d);
        if (strtod(b, NULL) == d)
            break;
    }
    if (!strpbrk(b, ".eE"))
        strcat(b, ".0"); /* keep it a double, as MySQL prints it */
    cdc_buf_puts(out, b);
    return 0;
}

int cdc_mysql_json_float(cdc_buf_t *out, float f)
{
    char b[48];

    if (!isfinite(f))
        return -1;
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(b, sizeof(b), "%.*g", prec, (double)f);
        if (strtof(b, NULL) == f)
            break;
    }
    cdc_buf_puts(out, b);
    return 0;
}

/* ---- decoder --------------------------------------------------------- */

/* Variable-length size: 7 bits per byte, least significant group first. */
static int varlen(const uint8_t *p, size_t len, uint32_t *v, size_t *n,
                  cdc_err_t *err)
{
    uint64_t x = 0;

    for (size_t i = 0; i < 5; i++) {
        if (i >= len)
            return jerr(err, "truncated length");
        x |= (uint64_t)(p[i] & 0x7F) << (7 * i);
        if (!(p[i] & 0x80)) {
            if (x > UINT32_MAX)
                break;
            *v = (uint32_t)x;
            *n = i + 1;
            return 0;
        }
    }
    return jerr(err, "length does not fit in 32 bits");
}

static int put_utf8_str(cdc_buf_t *out, const uint8_t *s, size_t n,
                        cdc_err_t *err)
{
    if (cdc_mysql_utf8_valid(s, n) != n)
        return jerr(err, "string is not valid UTF-8");
    cdc_mysql_json_str(out, (const char *)s, n);
    return 0;
}

static int opaque(const uint8_t *p, size_t len, cdc_buf_t *out,
                  cdc_err_t *err)
{
    uint32_t n;
    size_t h;
    unsigned mtype;
    char b[64];

    if (len < 1)
        return jerr(err, "truncated opaque value");
    mtype = p[0];
    if (varlen(p + 1, len - 1, &n, &h, err) < 0)
        return -1;
    if (len - 1 - h < n)
        return jerr(err, "opaque value beyond its container");
    p += 1 + h;

    switch (mtype) {
    case 246: { /* NEWDECIMAL: precision, scale, binary decimal */
        char d[CDC_DECIMAL_TEXT_MAX];
        size_t used;
        int k;
        if (n < 2)
            return jerr(err, "truncated opaque DECIMAL");
        k = cdc_mysql_decimal_text(p + 2, n - 2, p[0], p[1], d, &used, err);
        if (k < 0)
            return -1;
        cdc_buf_put(out, d, (size_t)k);
        return 0;
    }
    case 10: /* DATE */
    case 14: /* NEWDATE */
    case 11: /* TIME */
    case 19: /* TIME2 */
    case 12: /* DATETIME */
    case 18: /* DATETIME2 */
    case 7:  /* TIMESTAMP */
    case 17: /* TIMESTAMP2 */ {
        int what, k;
        if (n < 8)
            return jerr(err, "truncated opaque temporal value");
        if (mtype == 10 || mtype == 14)
            what = CDC_PACKED_DATE;
        else if (mtype == 11 || mtype == 19)
            what = CDC_PACKED_TIME;
        else
            what = CDC_PACKED_DATETIME;
        k = cdc_mysql_packed_text((int64_t)rd_le(p, 8), what, 6, b);
        cdc_mysql_json_str(out, b, (size_t)k);
        return 0;
    }
    default:
        snprintf(b, sizeof(b), "\"base64:type%u:", mtype);
        cdc_buf_puts(out, b);
        cdc_buf_base64(out, p, n);
        cdc_buf_putc(out, '"');
        return 0;
    }
}

static int value(const uint8_t *p, size_t len, unsigned type, int depth,
                 cdc_buf_t *out, cdc_err_t *err);

/* A scalar stored in a value entry (literal, int16/uint16, and in large
 * containers int32/uint32).  p points at the offset_or_inlined field. */
static int inlined(unsigned type, const uint8_t *p, cdc_buf_t *out,
                   cdc_err_t *err)
{
    char b[32];

    switch (type) {
    case JSONB_LITERAL:
        switch (p[0]) {
        case 0: cdc_buf_puts(out, "null"); return 0;
        case 1: cdc_buf_puts(out, "true"); return 0;
        case 2: cdc_buf_puts(out, "false"); return 0;
        default: return jerr(err, "unknown literal");
        }
    case JSONB_INT16:
        snprintf(b, sizeof(b), "%d", (int)(int16_t)rd_le(p, 2));
        break;
    case JSONB_UINT16:
        snprintf(b, sizeof(b), "%u", (unsigned)rd_le(p, 2));
        break;
    case JSONB_INT32:
        snprintf(b, sizeof(b), "%" PRId32, (int32_t)rd_le(p, 4));
        break;
    case JSONB_UINT32:
        snprintf(b, sizeof(b), "%" PRIu32, (uint32_t)rd_le(p, 4));
        break;
    default:
        return jerr(err, "type cannot be inlined");
    }
    cdc_buf_puts(out, b);
    return 0;
}

static int container(const uint8_t *p, size_t len, int large, int obj,
                     int depth, cdc_buf_t *out, cdc_err_t *err)
{
    unsigned w = large ? 4 : 2;
    uint64_t count, size, kes = obj ? w + 2 : 0, ves = 1 + w, ventries;

    if (depth > JSONB_MAX_DEPTH)
        return jerr(err, "nested too deeply");
    if (len < 2 * w)
        return jerr(err, "truncated container header");
    count = rd_le(p, w);
    size = rd_le(p + w, w);
    if (size > len || size < 2 * w)
        return jerr(err, "container size beyond the document");
    ventries = 2 * w + count * kes;
    if (ventries + count * ves > size)
        return jerr(err, "container entries beyond its size");

    cdc_buf_putc(out, obj ? '{' : '[');
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *ve = p + ventries + i * ves;
        unsigned t = ve[0];

        if (i)
            cdc_buf_putc(out, ',');
        if (obj) {
            const uint8_t *ke = p + 2 * w + i * kes;
            uint64_t koff = rd_le(ke, w), klen = rd_le(ke + w, 2);
            if (koff + klen > size)
                return jerr(err, "key beyond its container");
            if (put_utf8_str(out, p + koff, (size_t)klen, err) < 0)
                return -1;
            cdc_buf_putc(out, ':');
        }
        if (t == JSONB_LITERAL || t == JSONB_INT16 || t == JSONB_UINT16 ||
            (large && (t == JSONB_INT32 || t == JSONB_UINT32))) {
            if (inlined(t, ve + 1, out, err) < 0)
                return -1;
        } else {
            uint64_t off = rd_le(ve + 1, w);
            if (off >= size)
                return jerr(err, "value offset beyond its container");
            if (value(p + off, (size_t)(size - off), t, depth + 1, out,
                      err) < 0)
                return -1;
        }
    }
    cdc_buf_putc(out, obj ? '}' : ']');
    return 0;
}

/* One value of `type` whose data starts at p (len bytes available). */
static int value(const uint8_t *p, size_t len, unsigned type, int depth,
                 cdc_buf_t *out, cdc_err_t *err)
{
    static const uint8_t width[16] = {
        [JSONB_LITERAL] = 1, [JSONB_INT16] = 2, [JSONB_UINT16] = 2,
        [JSONB_INT32] = 4, [JSONB_UINT32] = 4, [JSONB_INT64] = 8,
        [JSONB_UINT64] = 8, [JSONB_DOUBLE] = 8,
    };
    char b[32];

    switch (type) {
    case JSONB_SMALL_OBJECT:
    case JSONB_LARGE_OBJECT:
    case JSONB_SMALL_ARRAY:
    case JSONB_LARGE_ARRAY:
        return container(p, len, type & 1, type < JSONB_SMALL_ARRAY, depth,
                         out, err);
    case JSONB_STRING: {
        uint32_t n;
        size_t h;
        if (varlen(p, len, &n, &h, err) < 0)
            return -1;
        if (len - h < n)
            return jerr(err, "string beyond its container");
        return put_utf8_str(out, p + h, n, err);
    }
    case JSONB_OPAQUE:
        return opaque(p, len, out, err);
    case JSONB_LITERAL:
    case JSONB_INT16:
    case JSONB_UINT16:
    case JSONB_INT32:
    case JSONB_UINT32:
    case JSONB_INT64:
    case JSONB_UINT64:
    case JSONB_DOUBLE:
        if (len < width[type])
            return jerr(err, "truncated scalar");
        break;
    default:
        cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                    "corrupt binary JSON: unknown value type 0x%02x", type);
        return -1;
    }
    switch (type) {
    case JSONB_INT64:
        snprintf(b, sizeof(b), "%" PRId64, (int64_t)rd_le(p, 8));
        break;
    case JSONB_UINT64:
        snprintf(b, sizeof(b), "%" PRIu64, rd_le(p, 8));
        break;
    case JSONB_DOUBLE: {
        uint64_t v = rd_le(p, 8);
        double d;
        memcpy(&d, &v, 8);
        if (cdc_mysql_json_double(out, d) < 0)
            return jerr(err, "double is NaN or infinite");
        return 0;
    }
    default: /* literal, 16/32-bit integers stored out of line */
        return inlined(type, p, out, err);
    }
    cdc_buf_puts(out, b);
    return 0;
}

int cdc_mysql_json_text(const uint8_t *p, size_t len, cdc_buf_t *out,
                        cdc_err_t *err)
{
    size_t start = out->len;

    if (len == 0) { /* MySQL reads an empty JSON value as null */
        cdc_buf_puts(out, "null");
        return 0;
    }
    if (value(p + 1, len - 1, p[0], 0, out, err) < 0) {
        out->len = start; /* leave no half document behind */
        if (out->p)
            out->p[start] = '\0';
        return -1;
    }
    return 0;
}
