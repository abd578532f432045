/* SPDX-License-Identifier: Apache-2.0 */
/*
 * binlog_value.c - one column value of a binlog row image -> cdc_value_t.
 *
 * The row decoder (binlog_decode.c) calls cdc_mysql_value() for every
 * present, non-NULL column with the column's TABLE_MAP metadata (see the
 * table in binlog.h).  Value kinds follow the envelope value rules of
 * docs/ENVELOPE.md:
 *
 *   integers            INT / UINT (UINT when CDC_COL_UNSIGNED)
 *   YEAR                INT: 0 for the zero year, else 1900 + byte
 *   BIT(n)              UINT (big-endian bytes)
 *   NEWDECIMAL          DECIMAL text with exactly the column's scale
 *   FLOAT / DOUBLE      FLOAT (u.d = the float32 value) / DOUBLE
 *   CHAR/VARCHAR/TEXT   STRING, converted to UTF-8 from the collation
 *   binary collation    BYTES; BINARY(n) right-padded with 0x00 to n
 *   DATE                "YYYY-MM-DD"
 *   DATETIME(n)         "YYYY-MM-DD HH:MM:SS[.n digits]"
 *   TIMESTAMP(n)        "YYYY-MM-DDTHH:MM:SS[.n digits]Z" (UTC)
 *   TIME(n)             "[-]HH:MM:SS[.n digits]", hours up to 838
 *   ENUM                member STRING ("" for index 0)
 *   SET                 JSON array of member strings in definition order
 *   JSON (MySQL)        JSON text of the binary document
 *   GEOMETRY            JSON {"srid": N, "wkb": "<base64>"}
 *   VECTOR              JSON array of float32 numbers
 *
 * Choices worth knowing:
 *   - Zero dates are the server's literal text: DATE "0000-00-00",
 *     DATETIME "0000-00-00 00:00:00" plus n zero fraction digits.  A zero
 *     TIMESTAMP (0 seconds, 0 fraction) is also emitted as the literal
 *     "0000-00-00 00:00:00[.000..]" - what SELECT prints - and not as a
 *     "...Z" instant, because it is not an instant (1970-01-01T00:00:00Z
 *     cannot be stored in a TIMESTAMP).
 *   - ENUM/SET without member strings (binlog_row_metadata=MINIMAL or
 *     NO_LOG): ENUM -> UINT index, SET -> UINT bitmap.
 *   - Character columns without a collation in the TABLE_MAP (charset 0:
 *     MariaDB's default binlog_row_metadata=NO_LOG, pre-8.0 MySQL): valid
 *     UTF-8 becomes a STRING, anything else BYTES, so no byte is lost.
 *     Known but unsupported collations are an error naming the id.
 *   - A MySQL JSON value of length 0 is the JSON null literal (MySQL's
 *     own reading of an empty JSON field).
 *
 * Invariants: pure (no I/O); every read is checked against `avail`;
 * strings/bytes/JSON text are copied into the caller's arena.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cdc/buf.h"
#include "cdc/change.h"
#include "cdc/err.h"
#include "connectors/mysql/binlog.h"
#include "connectors/mysql/binlog_value_int.h"

/* MySQL enum_field_types codes (include/field_types.h). */
enum {
    T_DECIMAL = 0, T_TINY = 1, T_SHORT = 2, T_LONG = 3, T_FLOAT = 4,
    T_DOUBLE = 5, T_NULL = 6, T_TIMESTAMP = 7, T_LONGLONG = 8, T_INT24 = 9,
    T_DATE = 10, T_TIME = 11, T_DATETIME = 12, T_YEAR = 13, T_NEWDATE = 14,
    T_VARCHAR = 15, T_BIT = 16, T_TIMESTAMP2 = 17, T_DATETIME2 = 18,
    T_TIME2 = 19, T_VECTOR = 242, T_JSON = 245, T_NEWDECIMAL = 246,
    T_ENUM = 247, T_SET = 248, T_TINY_BLOB = 249, T_MEDIUM_BLOB = 250,
    T_LONG_BLOB = 251, T_BLOB = 252, T_VAR_STRING = 253, T_STRING = 254,
    T_GEOMETRY = 255,
};

/* ---- little helpers ------------------------------------------------- */

static uint64_t rd_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint64_t rd_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static int short_input(cdc_err_t *err, size_t need, size_t avail)
{
    return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                       "value truncated: needs %zu bytes, %zu left in the "
                       "row image", need, avail);
}

static int corrupt(cdc_err_t *err, const char *what)
{
    return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                       "corrupt %s value", what);
}

static void set_str(cdc_value_t *out, int kind, cdc_arena_t *a,
                    const void *p, size_t n)
{
    out->kind = (uint8_t)kind;
    out->s = cdc_arena_memdup(a, p, n);
    out->len = n;
}

static const uint32_t pow10_u32[10] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
    1000000000,
};

/* ---- NEWDECIMAL (strings/decimal.c bin2decimal) ---------------------- */

static const uint8_t dig2bytes[10] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};

/* Appends the `digits` decimal digits of group value v (zero padded). */
static char *put_group(char *d, uint32_t v, unsigned digits)
{
    for (unsigned i = digits; i-- > 0;) {
        d[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return d + digits;
}

int cdc_mysql_decimal_text(const uint8_t *p, size_t avail, unsigned precision,
                           unsigned scale, char *buf, size_t *used,
                           cdc_err_t *err)
{
    uint8_t b[40];
    char digits[80], *d = digits, *ip;
    unsigned intg, intg0, intg0x, frac0, frac0x, size, pos = 0, n;
    uint8_t mask;
    int nonzero = 0;
    size_t len = 0;

    if (precision == 0 || precision > 65 || scale > precision || scale > 38) {
        return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                           "invalid DECIMAL(%u,%u) metadata", precision,
                           scale);
    }
    intg = precision - scale;
    intg0 = intg / 9;
    intg0x = intg % 9;
    frac0 = scale / 9;
    frac0x = scale % 9;
    size = intg0 * 4 + dig2bytes[intg0x] + frac0 * 4 + dig2bytes[frac0x];
    if (avail < size)
        return short_input(err, size, avail);
    memcpy(b, p, size);
    /* top bit set = non-negative; negative numbers are stored inverted */
    mask = (b[0] & 0x80) ? 0 : 0xFF;
    b[0] ^= 0x80;
    for (unsigned i = 0; i < size; i++)
        b[i] ^= mask;

    /* integer part: leading partial group, then full groups */
    if (intg0x) {
        n = dig2bytes[intg0x];
        uint32_t v = (uint32_t)rd_be(b, n);
        if (v >= pow10_u32[intg0x])
            return corrupt(err, "DECIMAL");
        d = put_group(d, v, intg0x);
        pos += n;
    }
    for (unsigned i = 0; i < intg0; i++, pos += 4) {
        uint32_t v = (uint32_t)rd_be(b + pos, 4);
        if (v > 999999999)
            return corrupt(err, "DECIMAL");
        d = put_group(d, v, 9);
    }
    ip = digits; /* strip leading zeros of the integer part */
    while (ip < d && *ip == '0')
        ip++;
    nonzero = ip < d;
    if (mask)
        buf[len++] = '-'; /* removed below if the value is all zeros */
    if (ip == d)
        buf[len++] = '0';
    else {
        memcpy(buf + len, ip, (size_t)(d - ip));
        len += (size_t)(d - ip);
    }
    if (scale) {
        char *f0;
        buf[len++] = '.';
        d = f0 = buf + len;
        for (unsigned i = 0; i < frac0; i++, pos += 4) {
            uint32_t v = (uint32_t)rd_be(b + pos, 4);
            if (v > 999999999)
                return corrupt(err, "DECIMAL");
            d = put_group(d, v, 9);
        }
        if (frac0x) {
            n = dig2bytes[frac0x];
            uint32_t v = (uint32_t)rd_be(b + pos, n);
            if (v >= pow10_u32[frac0x])
                return corrupt(err, "DECIMAL");
            d = put_group(d, v, frac0x);
            pos += n;
        }
        for (char *c = f0; c < d; c++)
            if (*c != '0')
                nonzero = 1;
        len = (size_t)(d - buf);
    }
    buf[len] = '\0';
    if (mask && !nonzero) { /* "-0.00" is not a server value: drop '-' */
        memmove(buf, buf + 1, len);
        len--;
    }
    *used = size;
    return (int)len;
}

/* ---- temporal -------------------------------------------------------- */

/* "." + fsp digits of usec (fsp 0: nothing). */
static int put_frac(char *b, unsigned usec, int fsp)
{
    if (fsp <= 0)
        return 0;
    b[0] = '.';
    put_group(b + 1, (usec / pow10_u32[6 - fsp]) % pow10_u32[fsp],
              (unsigned)fsp);
    return fsp + 1;
}

/* Digits by hand: snprintf was ~10% of decode time (make bench). */
static inline void two(char *b, unsigned v)
{
    b[0] = (char)('0' + v / 10 % 10);
    b[1] = (char)('0' + v % 10);
}

static int fmt_date(char *b, unsigned y, unsigned mo, unsigned d)
{
    y %= 10000;
    two(b, y / 100);
    two(b + 2, y % 100);
    b[4] = '-';
    two(b + 5, mo % 100);
    b[7] = '-';
    two(b + 8, d % 100);
    b[10] = '\0';
    return 10;
}

static int fmt_hms(char *b, unsigned h, unsigned mi, unsigned s)
{
    int n = 0;
    h %= 100000;
    if (h >= 100) { /* TIME hours go up to 838 (and the raw field further) */
        char t[8];
        int k = 0;
        while (h >= 10) {
            t[k++] = (char)('0' + h % 10);
            h /= 10;
        }
        t[k++] = (char)('0' + h);
        while (k)
            b[n++] = t[--k];
    } else {
        two(b, h);
        n = 2;
    }
    b[n++] = ':';
    two(b + n, mi % 100);
    n += 2;
    b[n++] = ':';
    two(b + n, s % 100);
    n += 2;
    b[n] = '\0';
    return n;
}

static int fmt_datetime(char *b, unsigned y, unsigned mo, unsigned d,
                        unsigned h, unsigned mi, unsigned s, unsigned usec,
                        int fsp, char sep)
{
    int n = fmt_date(b, y, mo, d);
    b[n++] = sep;
    n += fmt_hms(b + n, h, mi, s);
    n += put_frac(b + n, usec, fsp);
    b[n] = '\0';
    return n;
}

static int fmt_time(char *b, int neg, unsigned h, unsigned mi, unsigned s,
                    unsigned usec, int fsp)
{
    int n = 0;
    if (neg)
        b[n++] = '-';
    n += fmt_hms(b + n, h, mi, s);
    n += put_frac(b + n, usec, fsp);
    b[n] = '\0';
    return n;
}

int cdc_mysql_packed_text(int64_t packed, int what, int fsp, char *buf)
{
    int neg = packed < 0;
    uint64_t v = neg ? (uint64_t)0 - (uint64_t)packed : (uint64_t)packed;
    unsigned usec = (unsigned)(v & 0xFFFFFF);
    uint64_t ip = v >> 24;

    if (what == CDC_PACKED_TIME) {
        unsigned hms = (unsigned)(ip & 0xFFFFFFFF);
        return fmt_time(buf, neg, (hms >> 12) & 0x3FF, (hms >> 6) & 63,
                        hms & 63, usec, fsp);
    }
    uint64_t ymd = ip >> 17, ym = ymd >> 5;
    unsigned hms = (unsigned)(ip & 0x1FFFF);
    if (what == CDC_PACKED_DATE) {
        int n = fmt_date(buf, (unsigned)(ym / 13), (unsigned)(ym % 13),
                         (unsigned)(ymd & 31));
        buf[n] = '\0';
        return n;
    }
    return fmt_datetime(buf, (unsigned)(ym / 13), (unsigned)(ym % 13),
                        (unsigned)(ymd & 31), hms >> 12, (hms >> 6) & 63,
                        hms & 63, usec, fsp, ' ');
}

/* Days since 1970-01-01 -> civil date (proleptic Gregorian). */
static void civil_from_days(int64_t z, unsigned *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (unsigned)(yy + (*m <= 2));
}

int cdc_mysql_time_text(int what, const cdc_mysql_tm_t *t, int fsp,
                        char *b)
{
    int n;

    switch (what) {
    case CDC_MYTIME_DATE:
        return fmt_date(b, t->year, t->month, t->day);
    case CDC_MYTIME_TIME:
        return fmt_time(b, t->neg, t->hour, t->minute, t->second, t->usec,
                        fsp);
    case CDC_MYTIME_TIMESTAMP:
        if (!t->year && !t->month && !t->day && !t->hour && !t->minute &&
            !t->second && !t->usec) /* zero TIMESTAMP: the literal */
            return fmt_datetime(b, 0, 0, 0, 0, 0, 0, 0, fsp, ' ');
        n = fmt_datetime(b, t->year, t->month, t->day, t->hour, t->minute,
                         t->second, t->usec, fsp, 'T');
        b[n++] = 'Z';
        b[n] = '\0';
        return n;
    default:
        return fmt_datetime(b, t->year, t->month, t->day, t->hour,
                            t->minute, t->second, t->usec, fsp, ' ');
    }
}

/* Epoch seconds (the binlog's TIMESTAMP) -> text; 0 is the zero value. */
static int fmt_timestamp(char *b, uint64_t sec, unsigned usec, int fsp)
{
    cdc_mysql_tm_t t = {0};
    unsigned tod = (unsigned)(sec % 86400);

    if (sec != 0 || usec != 0) {
        civil_from_days((int64_t)(sec / 86400), &t.year, &t.month, &t.day);
        t.hour = tod / 3600;
        t.minute = tod / 60 % 60;
        t.second = tod % 60;
        t.usec = usec;
    }
    return cdc_mysql_time_text(CDC_MYTIME_TIMESTAMP, &t, fsp, b);
}

/* Bytes of the fractional part of TIME2/DATETIME2/TIMESTAMP2 by fsp. */
static unsigned frac_bytes(int fsp)
{
    return (unsigned)(fsp + 1) / 2;
}

/* Fraction -> microseconds (big-endian, 1-3 bytes). */
static unsigned frac_usec(const uint8_t *p, int fsp)
{
    switch (frac_bytes(fsp)) {
    case 1: return p[0] * 10000u;
    case 2: return (unsigned)rd_be(p, 2) * 100u;
    case 3: return (unsigned)rd_be(p, 3);
    default: return 0;
    }
}

static int temporal(const cdc_column_t *col, const uint8_t *p, size_t avail,
                    cdc_arena_t *a, cdc_value_t *out, size_t *used,
                    cdc_err_t *err)
{
    char b[48];
    int n, fsp = (int)col->meta;
    size_t need;

    if ((col->type == T_TIMESTAMP2 || col->type == T_DATETIME2 ||
         col->type == T_TIME2) && (fsp < 0 || fsp > 6)) {
        return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                           "invalid fractional precision %u", col->meta);
    }
    switch (col->type) {
    case T_DATE:
    case T_NEWDATE: {
        if (avail < 3)
            return short_input(err, 3, avail);
        uint32_t v = (uint32_t)rd_le(p, 3);
        n = fmt_date(b, v >> 9, (v >> 5) & 15, v & 31);
        need = 3;
        break;
    }
    case T_TIME: { /* pre-5.6: signed 3-byte [-]HHMMSS */
        if (avail < 3)
            return short_input(err, 3, avail);
        int32_t v = (int32_t)rd_le(p, 3);
        if (v & 0x800000)
            v -= 0x1000000;
        uint32_t u = v < 0 ? (uint32_t)-v : (uint32_t)v;
        n = fmt_time(b, v < 0, u / 10000, u / 100 % 100, u % 100, 0, 0);
        need = 3;
        break;
    }
    case T_DATETIME: { /* pre-5.6: 8-byte YYYYMMDDhhmmss */
        if (avail < 8)
            return short_input(err, 8, avail);
        uint64_t v = rd_le(p, 8), dt = v / 1000000, tm = v % 1000000;
        n = fmt_datetime(b, (unsigned)(dt / 10000), (unsigned)(dt / 100 % 100),
                         (unsigned)(dt % 100), (unsigned)(tm / 10000),
                         (unsigned)(tm / 100 % 100), (unsigned)(tm % 100), 0, 0,
                         ' ');
        need = 8;
        break;
    }
    case T_TIMESTAMP: /* pre-5.6: 4-byte LE epoch seconds */
        if (avail < 4)
            return short_input(err, 4, avail);
        n = fmt_timestamp(b, rd_le(p, 4), 0, 0);
        need = 4;
        break;
    case T_TIMESTAMP2: {
        need = 4 + frac_bytes(fsp);
        if (avail < need)
            return short_input(err, need, avail);
        unsigned usec = frac_usec(p + 4, fsp);
        if (usec > 999999)
            return corrupt(err, "TIMESTAMP");
        n = fmt_timestamp(b, rd_be(p, 4), usec, fsp);
        break;
    }
    case T_DATETIME2: {
        need = 5 + frac_bytes(fsp);
        if (avail < need)
            return short_input(err, need, avail);
        uint64_t v = rd_be(p, 5);
        unsigned usec = frac_usec(p + 5, fsp);
        if (v < 0x8000000000ULL || usec > 999999)
            return corrupt(err, "DATETIME");
        uint64_t ip = v - 0x8000000000ULL, ymd = ip >> 17, ym = ymd >> 5;
        unsigned hms = (unsigned)(ip & 0x1FFFF);
        n = fmt_datetime(b, (unsigned)(ym / 13), (unsigned)(ym % 13),
                         (unsigned)(ymd & 31), hms >> 12, (hms >> 6) & 63,
                         hms & 63, usec, fsp, ' ');
        break;
    }
    case T_TIME2: {
        int64_t ip, packed;
        need = 3 + frac_bytes(fsp);
        if (avail < need)
            return short_input(err, need, avail);
        ip = (int64_t)rd_be(p, 3) - 0x800000;
        switch (fsp) {
        case 1:
        case 2: {
            int64_t frac = p[3];
            if (ip < 0 && frac) {
                ip++;
                frac -= 0x100;
            }
            packed = ip * (1 << 24) + frac * 10000;
            break;
        }
        case 3:
        case 4: {
            int64_t frac = (int64_t)rd_be(p + 3, 2);
            if (ip < 0 && frac) {
                ip++;
                frac -= 0x10000;
            }
            packed = ip * (1 << 24) + frac * 100;
            break;
        }
        case 5:
        case 6:
            packed = (int64_t)rd_be(p, 6) - 0x800000000000LL;
            break;
        default:
            packed = ip * (1 << 24);
            break;
        }
        uint64_t mag = packed < 0 ? (uint64_t)-packed : (uint64_t)packed;
        if ((mag & 0xFFFFFF) > 999999)
            return corrupt(err, "TIME");
        n = cdc_mysql_packed_text(packed, CDC_PACKED_TIME, fsp, b);
        break;
    }
    default:
        return -1; /* not reached: caller dispatches temporal types only */
    }
    set_str(out, CDC_V_STRING, a, b, (size_t)n);
    *used = need;
    return 0;
}

/* ---- character data ------------------------------------------------- */

static int is_binary(const cdc_column_t *col)
{
    return (col->flags & CDC_COL_BINARY) || col->charset == 63;
}

/* Character data of a (non-binary) column -> STRING (or BYTES when no
 * collation is known and the bytes are not UTF-8). */
static int text_value(const cdc_column_t *col, const uint8_t *p, size_t n,
                      cdc_arena_t *a, cdc_value_t *out, cdc_err_t *err)
{
    int cs = cdc_mysql_charset_kind(col->charset);
    cdc_buf_t b = CDC_BUF_INIT;
    size_t i;

    switch (cs) {
    case CDC_CS_UTF8: /* the common case: validate and copy */
        if (cdc_mysql_utf8_valid(p, n) != n)
            goto convert; /* reports the bad byte */
        set_str(out, CDC_V_STRING, a, p, n);
        return 0;
    case CDC_CS_ASCII:
    case CDC_CS_LATIN1: /* pure ASCII needs no conversion */
        for (i = 0; i < n && p[i] < 0x80; i++)
            ;
        if (i != n)
            goto convert;
        set_str(out, CDC_V_STRING, a, p, n);
        return 0;
    case CDC_CS_UNKNOWN:
        if (col->charset == 0) {
            set_str(out, cdc_mysql_utf8_valid(p, n) == n ? CDC_V_STRING
                                                          : CDC_V_BYTES,
                    a, p, n);
            return 0;
        }
        goto convert; /* reports the unknown collation */
    default:
        goto convert;
    }
convert:
    if (cdc_mysql_to_utf8(col->charset, p, n, &b, err) < 0) {
        cdc_buf_free(&b);
        return -1;
    }
    set_str(out, CDC_V_STRING, a, b.p ? b.p : "", b.len);
    cdc_buf_free(&b);
    return 0;
}

/* Reads a length prefix of `pl` bytes and checks the data fits. */
static int prefixed(const uint8_t *p, size_t avail, unsigned pl,
                    size_t *len, size_t *used, cdc_err_t *err)
{
    if (pl < 1 || pl > 4) {
        return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                           "invalid length-prefix size %u in metadata", pl);
    }
    if (avail < pl)
        return short_input(err, pl, avail);
    *len = (size_t)rd_le(p, pl);
    if (avail - pl < *len)
        return short_input(err, pl + *len, avail);
    *used = pl + *len;
    return 0;
}

/* ---- ENUM / SET ------------------------------------------------------ */

int cdc_mysql_member_utf8(uint16_t collation, const uint8_t *m, size_t n,
                          cdc_buf_t *b, cdc_err_t *err)
{
    int cs = cdc_mysql_charset_kind(collation);

    if (collation == 0 || cs == CDC_CS_UTF8 || cs == CDC_CS_BINARY) {
        if (cdc_mysql_utf8_valid(m, n) != n)
            return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                               "ENUM/SET member is not valid UTF-8");
        cdc_buf_put(b, m, n);
        return 0;
    }
    return cdc_mysql_to_utf8(collation, m, n, b, err);
}

static int enum_value(const cdc_column_t *col, const uint8_t *p, size_t avail,
                      cdc_arena_t *a, cdc_value_t *out, size_t *used,
                      cdc_err_t *err)
{
    unsigned pl = col->meta;
    uint64_t idx;

    if (pl != 1 && pl != 2)
        return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                           "invalid ENUM pack length %u", pl);
    if (avail < pl)
        return short_input(err, pl, avail);
    idx = rd_le(p, pl);
    *used = pl;
    if (!col->members) { /* no ENUM_STR_VALUE metadata: the index */
        out->kind = CDC_V_UINT;
        out->u.u = idx;
        return 0;
    }
    if (idx == 0) { /* the '' error value */
        set_str(out, CDC_V_STRING, a, "", 0);
        return 0;
    }
    if (idx > col->nmembers)
        return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                           "ENUM index %" PRIu64 " beyond its %u members",
                           idx, col->nmembers);
    /* members are UTF-8 (converted when the TABLE_MAP was read) */
    set_str(out, CDC_V_STRING, a, col->members[idx - 1],
            strlen(col->members[idx - 1]));
    return 0;
}

void cdc_mysql_set_member(cdc_buf_t *out, const char *s, size_t n)
{
    cdc_buf_putc(out, out->len ? ',' : '[');
    cdc_mysql_json_str(out, s, n);
}

void cdc_mysql_set_end(cdc_buf_t *out)
{
    if (!out->len)
        cdc_buf_putc(out, '[');
    cdc_buf_putc(out, ']');
}

static int set_value(const cdc_column_t *col, const uint8_t *p, size_t avail,
                     cdc_arena_t *a, cdc_value_t *out, size_t *used,
                     cdc_err_t *err)
{
    unsigned pl = col->meta;
    uint64_t bits;
    cdc_buf_t b = CDC_BUF_INIT;

    if (pl < 1 || pl > 8)
        return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                           "invalid SET pack length %u", pl);
    if (avail < pl)
        return short_input(err, pl, avail);
    bits = rd_le(p, pl);
    *used = pl;
    if (!col->members) { /* no SET_STR_VALUE metadata: the bitmap */
        out->kind = CDC_V_UINT;
        out->u.u = bits;
        return 0;
    }
    if (col->nmembers < 64 && (bits >> col->nmembers) != 0) {
        return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                           "SET bitmap 0x%" PRIx64 " has bits beyond its %u "
                           "members", bits, col->nmembers);
    }
    for (uint32_t i = 0; i < col->nmembers && i < 64; i++)
        if (bits >> i & 1)
            cdc_mysql_set_member(&b, col->members[i],
                                 strlen(col->members[i]));
    cdc_mysql_set_end(&b);
    set_str(out, CDC_V_JSON, a, b.p, b.len);
    cdc_buf_free(&b);
    return 0;
}

/* ---- BIT, GEOMETRY ---------------------------------------------------- */

uint64_t cdc_mysql_bit_uint(const uint8_t *p, size_t n)
{
    return rd_be(p, (unsigned)(n > 8 ? 8 : n));
}

int cdc_mysql_geometry_json(const uint8_t *p, size_t n, cdc_buf_t *out)
{
    if (n < 4)
        return -1;
    cdc_buf_printf(out, "{\"srid\":%" PRIu32 ",\"wkb\":\"",
                   (uint32_t)rd_le(p, 4));
    cdc_buf_base64(out, p + 4, n - 4);
    cdc_buf_puts(out, "\"}");
    return 0;
}

/* ---- MariaDB JSON columns --------------------------------------------- */

char *cdc_mysql_json_check_col(const char *clause)
{
    const char *p = clause;
    cdc_buf_t b = CDC_BUF_INIT;

    if (strncasecmp(p, "json_valid(`", 12))
        return NULL;
    for (p += 12;; p++) {
        if (!*p)
            goto bad;
        if (*p == '`') {
            if (p[1] != '`')
                break;
            p++; /* `` is one backtick */
        }
        cdc_buf_putc(&b, *p);
    }
    if (strcmp(p, "`)"))
        goto bad;
    if (!b.p)
        cdc_buf_puts(&b, "");
    return b.p;
bad:
    cdc_buf_free(&b);
    return NULL;
}

/* ---- the dispatcher -------------------------------------------------- */

static int value(const cdc_column_t *col, const uint8_t *p, size_t avail,
                 cdc_arena_t *a, cdc_value_t *out, size_t *used,
                 cdc_err_t *err)
{
    int uns = (col->flags & CDC_COL_UNSIGNED) != 0;
    unsigned w;
    size_t len, u;

    switch (col->type) {
    case T_TINY: w = 1; goto integer;
    case T_SHORT: w = 2; goto integer;
    case T_INT24: w = 3; goto integer;
    case T_LONG: w = 4; goto integer;
    case T_LONGLONG:
        w = 8;
    integer:
        if (avail < w)
            return short_input(err, w, avail);
        {
            uint64_t v = rd_le(p, w);
            if (uns) {
                out->kind = CDC_V_UINT;
                out->u.u = v;
            } else {
                if (w < 8 && (v >> (8 * w - 1)) & 1)
                    v |= ~(uint64_t)0 << (8 * w); /* sign-extend */
                out->kind = CDC_V_INT;
                out->u.i = (int64_t)v;
            }
        }
        *used = w;
        return 0;

    case T_YEAR:
        if (avail < 1)
            return short_input(err, 1, avail);
        out->kind = CDC_V_INT;
        out->u.i = p[0] ? 1900 + p[0] : 0;
        *used = 1;
        return 0;

    case T_FLOAT: {
        float f;
        uint32_t v;
        if (avail < 4)
            return short_input(err, 4, avail);
        v = (uint32_t)rd_le(p, 4);
        memcpy(&f, &v, 4);
        out->kind = CDC_V_FLOAT;
        out->u.d = f;
        *used = 4;
        return 0;
    }
    case T_DOUBLE: {
        uint64_t v;
        if (avail < 8)
            return short_input(err, 8, avail);
        v = rd_le(p, 8);
        memcpy(&out->u.d, &v, 8);
        out->kind = CDC_V_DOUBLE;
        *used = 8;
        return 0;
    }

    case T_NEWDECIMAL: {
        char b[CDC_DECIMAL_TEXT_MAX];
        int n = cdc_mysql_decimal_text(p, avail, col->meta >> 8,
                                       col->meta & 0xFF, b, used, err);
        if (n < 0)
            return -1;
        set_str(out, CDC_V_DECIMAL, a, b, (size_t)n);
        return 0;
    }

    case T_BIT: {
        unsigned bits = col->meta, nb = (bits + 7) / 8;
        if (bits < 1 || bits > 64)
            return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                               "invalid BIT(%u) metadata", bits);
        if (avail < nb)
            return short_input(err, nb, avail);
        out->kind = CDC_V_UINT;
        out->u.u = cdc_mysql_bit_uint(p, nb);
        *used = nb;
        return 0;
    }

    case T_DATE:
    case T_NEWDATE:
    case T_TIME:
    case T_DATETIME:
    case T_TIMESTAMP:
    case T_TIMESTAMP2:
    case T_DATETIME2:
    case T_TIME2:
        return temporal(col, p, avail, a, out, used, err);

    case T_ENUM:
        return enum_value(col, p, avail, a, out, used, err);
    case T_SET:
        return set_value(col, p, avail, a, out, used, err);

    case T_STRING: /* CHAR / BINARY; meta = max length in bytes */
    case T_VARCHAR:
    case T_VAR_STRING:
        if (prefixed(p, avail, col->meta < 256 ? 1 : 2, &len, used, err) < 0)
            return -1;
        p += *used - len;
        if (!is_binary(col))
            return text_value(col, p, len, a, out, err);
        if (col->type == T_STRING && len < col->meta) {
            /* BINARY(n): the server stripped trailing 0x00; put them back */
            char *s = cdc_arena_calloc(a, (size_t)col->meta + 1);
            memcpy(s, p, len);
            out->kind = CDC_V_BYTES;
            out->s = s;
            out->len = col->meta;
            return 0;
        }
        set_str(out, CDC_V_BYTES, a, p, len);
        return 0;

    case T_TINY_BLOB:
    case T_MEDIUM_BLOB:
    case T_LONG_BLOB:
    case T_BLOB:
        if (prefixed(p, avail, col->meta, &len, used, err) < 0)
            return -1;
        p += *used - len;
        if (!is_binary(col))
            return text_value(col, p, len, a, out, err);
        set_str(out, CDC_V_BYTES, a, p, len);
        return 0;

    case T_JSON: {
        cdc_buf_t b = CDC_BUF_INIT;
        if (prefixed(p, avail, col->meta, &len, &u, err) < 0)
            return -1;
        if (len == 0) { /* MySQL reads an empty JSON field as null */
            set_str(out, CDC_V_JSON, a, "null", 4);
            *used = u;
            return 0;
        }
        if (cdc_mysql_json_text(p + u - len, len, &b, err) < 0) {
            cdc_buf_free(&b);
            return -1;
        }
        set_str(out, CDC_V_JSON, a, b.p, b.len);
        cdc_buf_free(&b);
        *used = u;
        return 0;
    }

    case T_GEOMETRY: {
        cdc_buf_t b = CDC_BUF_INIT;
        if (prefixed(p, avail, col->meta, &len, &u, err) < 0)
            return -1;
        p += u - len;
        if (cdc_mysql_geometry_json(p, len, &b) < 0)
            return corrupt(err, "GEOMETRY (shorter than its SRID)");
        set_str(out, CDC_V_JSON, a, b.p, b.len);
        cdc_buf_free(&b);
        *used = u;
        return 0;
    }

    case T_VECTOR: {
        cdc_buf_t b = CDC_BUF_INIT;
        if (prefixed(p, avail, col->meta, &len, &u, err) < 0)
            return -1;
        p += u - len;
        if (len % 4)
            return corrupt(err, "VECTOR (length not a multiple of 4)");
        cdc_buf_putc(&b, '[');
        for (size_t i = 0; i < len; i += 4) {
            uint32_t v = (uint32_t)rd_le(p + i, 4);
            float f;
            memcpy(&f, &v, 4);
            if (i)
                cdc_buf_putc(&b, ',');
            if (cdc_mysql_json_float(&b, f) < 0) {
                cdc_buf_free(&b);
                return corrupt(err, "VECTOR (NaN or infinity)");
            }
        }
        cdc_buf_putc(&b, ']');
        set_str(out, CDC_V_JSON, a, b.p, b.len);
        cdc_buf_free(&b);
        *used = u;
        return 0;
    }

    default:
        cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                    "unknown column type %u (metadata %u)", col->type,
                    col->meta);
        cdc_err_hint(err, "this column type is not supported by the "
                          "decoder; please report it with the binlog file");
        return -1;
    }
}

int cdc_mysql_value(const cdc_column_t *col, const uint8_t *p, size_t avail,
                    cdc_arena_t *a, cdc_value_t *out, size_t *used,
                    cdc_err_t *err)
{
    out->s = NULL;
    out->len = 0;
    out->u.u = 0;
    *used = 0;
    if (value(col, p, avail, a, out, used, err) == 0)
        return 0;
    /* name the column: "column c (type 246): <what failed>" */
    {
        char msg[sizeof(err->msg) + 160];
        size_t k;
        snprintf(msg, sizeof(msg), "column %.100s (type %u): %s",
                 col->name ? col->name : "?", col->type, err->msg);
        k = strlen(msg);
        if (k >= sizeof(err->msg))
            k = sizeof(err->msg) - 1;
        memcpy(err->msg, msg, k);
        err->msg[k] = '\0';
    }
    out->kind = CDC_V_ABSENT;
    return -1;
}
