/* SPDX-License-Identifier: Apache-2.0 */
/*
 * envelope.c - the JSON envelope writer (hot path).
 *
 * A small purpose-built emitter straight into a cdc_buf_t: no tree, no
 * per-token callbacks.  Strings are escaped per RFC 8259 and invalid
 * UTF-8 is replaced by U+FFFD, so the output is always valid JSON (the
 * tests parse every envelope back with yajl).
 */
#include <math.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <limits.h>
#include <float.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "cdc/envelope.h"
#include "cdc/jsontree.h"
#include "cdc/pow10_tab.h"

int cdc_format_parse(const char *s, cdc_format_t *out)
{
    if (!strcmp(s, "autoglm"))
        *out = CDC_FMT_AUTOGLM;
    else if (!strcmp(s, "debezium") || !strcmp(s, "debezium-json"))
        *out = CDC_FMT_DEBEZIUM;
    else
        return -1;
    return 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && p[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && p[1] > 0x9F)
            return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
            (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)
            return 0;
        if (c == 0xF4 && p[1] > 0x8F)
            return 0;
        return 4;
    }
    return 0;
}

/* 1 = needs escaping or is non-ASCII (slow path). */
static const unsigned char special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20 '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x5c '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, /* 0x7f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

void cdc_json_string(cdc_buf_t *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, start;

    /* worst case: every byte becomes \u00XX (6) or U+FFFD (3) */
    if (out->len + len * 6 + 3 > out->cap)
        cdc_buf_grow(out, len * 6 + 3);
    out->p[out->len++] = '"';
    while (i < len) {
#ifdef __SSE2__
        /* 16 bytes at a time, stored as we go: a signed compare with 0x20
         * catches control bytes and every byte >= 0x80 (slow path) */
        {
            const __m128i quote = _mm_set1_epi8('"');
            const __m128i bslash = _mm_set1_epi8('\\');
            const __m128i space = _mm_set1_epi8(0x20);
            while (i + 16 <= len) {
                __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
                __m128i m = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, quote),
                                 _mm_cmpeq_epi8(v, bslash)),
                    _mm_cmplt_epi8(v, space));
                if (_mm_movemask_epi8(m))
                    break;
                _mm_storeu_si128((__m128i *)(out->p + out->len), v);
                out->len += 16;
                i += 16;
            }
        }
#endif
        start = i;
        /* 8 bytes at a time while none is < 0x20, '"', '\\' or >= 0x80 */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            const uint64_t ones = 0x0101010101010101ULL,
                           high = 0x8080808080808080ULL;
            uint64_t lt20 = (w - ones * 0x20) & ~w;
            uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
            uint64_t hasq = (q - ones) & ~q, hasbs = (bs - ones) & ~bs;
            if ((lt20 | hasq | hasbs | w) & high)
                break;
            i += 8;
        }
        while (i < len && !special[p[i]])
            i++;
        if (i > start) {
            memcpy(out->p + out->len, p + start, i - start);
            out->len += i - start;
        }
        if (i >= len)
            break;
        unsigned char c = p[i];
        if (c < 0x80) {
            char *o = out->p + out->len;
            switch (c) {
            case '"': o[0] = '\\'; o[1] = '"'; out->len += 2; break;
            case '\\': o[0] = '\\'; o[1] = '\\'; out->len += 2; break;
            case '\n': o[0] = '\\'; o[1] = 'n'; out->len += 2; break;
            case '\r': o[0] = '\\'; o[1] = 'r'; out->len += 2; break;
            case '\t': o[0] = '\\'; o[1] = 't'; out->len += 2; break;
            case '\b': o[0] = '\\'; o[1] = 'b'; out->len += 2; break;
            case '\f': o[0] = '\\'; o[1] = 'f'; out->len += 2; break;
            default:
                if (c == 0x7f) {
                    o[0] = 0x7f;
                    out->len += 1;
                } else {
                    static const char hex[] = "0123456789abcdef";
                    o[0] = '\\'; o[1] = 'u'; o[2] = '0'; o[3] = '0';
                    o[4] = hex[c >> 4]; o[5] = hex[c & 15];
                    out->len += 6;
                }
            }
            i++;
        } else {
            size_t n = utf8_len(p + i, len - i);
            if (n) {
                memcpy(out->p + out->len, p + i, n);
                out->len += n;
                i += n;
            } else {
                memcpy(out->p + out->len, "\xef\xbf\xbd", 3);
                out->len += 3;
                i++;
            }
        }
    }
    out->p[out->len++] = '"';
    out->p[out->len] = '\0';
}

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

/* Two digits per division (put_u64 was 8% of the writer thread). */
static void put_u64(cdc_buf_t *out, uint64_t v)
{
    char tmp[24];
    int n = 24;

    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        n -= 2;
        memcpy(tmp + n, digit_pairs + 2 * r, 2);
    }
    if (v >= 10) {
        n -= 2;
        memcpy(tmp + n, digit_pairs + 2 * v, 2);
    } else
        tmp[--n] = (char)('0' + v);
    cdc_buf_put(out, tmp + n, (size_t)(24 - n));
}

static void put_i64(cdc_buf_t *out, int64_t v)
{
    if (v < 0) {
        cdc_buf_putc(out, '-');
        put_u64(out, (uint64_t)0 - (uint64_t)v);
    } else
        put_u64(out, (uint64_t)v);
}

/* The reference rule for doubles: the shortest of %.15g, %.16g and %.17g
 * that reads back as d. */
static size_t fmt_double_slow(char *tmp, size_t cap, double d)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, cap, "%.*g", prec, d);
        if (prec == 17 || strtod(tmp, NULL) == d)
            break;
    }
    return strlen(tmp);
}

/* %.Pg layout of digits dig[0..P) with decimal exponent x (trailing
 * zeros dropped), as glibc prints it. */
static size_t layout_g(char *out, int neg, const char *dig, int p, int x)
{
    char *o = out;
    int n = p;

    while (n > 1 && dig[n - 1] == '0')
        n--;
    if (neg)
        *o++ = '-';
    if (x < -4 || x >= p) {
        *o++ = dig[0];
        if (n > 1) {
            *o++ = '.';
            memcpy(o, dig + 1, (size_t)n - 1);
            o += n - 1;
        }
        *o++ = 'e';
        *o++ = x < 0 ? '-' : '+';
        x = x < 0 ? -x : x;
        if (x >= 100)
            *o++ = (char)('0' + x / 100);
        *o++ = (char)('0' + x / 10 % 10);
        *o++ = (char)('0' + x % 10);
    } else if (x < 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -x - 1; i++)
            *o++ = '0';
        memcpy(o, dig, (size_t)n);
        o += n;
    } else {
        for (int i = 0; i <= x; i++)
            *o++ = i < n ? dig[i] : '0';
        if (n > x + 1) {
            *o++ = '.';
            memcpy(o, dig + x + 1, (size_t)(n - x - 1));
            o += n - x - 1;
        }
    }
    *o = '\0';
    return (size_t)(o - out);
}

/* a * 10^k for the k that puts a's first significant digit at 10^16:
 * its integer part *nfl in [1e16, 1e17) and fraction *phi, from 10^k held
 * to 128 bits (cdc/pow10_tab.h) and a 192-bit product, so both are exact
 * to ~2^-60 of a unit.  *x10: decimal exponent of the first digit;
 * *units: half an ulp of a in the same units.  -1 (ask printf) for
 * magnitudes outside the table. */
static int scale17(double a, uint64_t *nfl, double *phi, int *x10,
                   double *units)
{
    int bexp;
    double f = frexp(a, &bexp);
    uint64_t m = (uint64_t)ldexp(f, 53);
    int q = bexp - 53; /* a = m * 2^q exactly */
    /* floor(log10(a)), or one less */
    int x = (int)floor((bexp - 1) * 0.30102999566398120);

    for (int tries = 0; tries < 3; tries++) {
        int k = 16 - x;
        if (k < CDC_POW10_KMIN || k > CDC_POW10_KMAX)
            return -1;
        uint64_t phi_ = cdc_pow10_tab[k - CDC_POW10_KMIN].hi,
                 plo = cdc_pow10_tab[k - CDC_POW10_KMIN].lo;
        int ps = cdc_pow10_tab[k - CDC_POW10_KMIN].s, sh = -(q + ps);
        unsigned __int128 lo = (unsigned __int128)m * plo,
                          hi = (unsigned __int128)m * phi_;
        unsigned __int128 mid = (lo >> 64) + (uint64_t)hi;
        /* a * 10^k = (top * 2^64 + low 64 bits of lo) / 2^sh */
        unsigned __int128 top = ((hi >> 64) + (mid >> 64)) << 64 |
                                (uint64_t)mid;
        if (sh <= 64 || sh > 128)
            return -1;
        int tsh = sh - 64;
        uint64_t n = tsh == 64 ? (uint64_t)(top >> 64)
                               : (uint64_t)(top >> tsh);
        if (n < 10000000000000000ULL) {
            x--;
            continue;
        }
        if (n >= 100000000000000000ULL) {
            x++;
            continue;
        }
        unsigned __int128 mask = (((unsigned __int128)1) << tsh) - 1;
        unsigned __int128 frac = (top & mask) << 64 | (uint64_t)lo;
        *nfl = n;
        *phi = ldexp((double)frac, -sh);
        *x10 = x;
        *units = ldexp((double)phi_, q - 1 + ps + 64);
        return 0;
    }
    return -1;
}

/* The shortest %.Pg, P = pmin..pmax, that reads back, from the exact
 * position of the value on the 17-digit grid (scale17: nfl + phi, decimal
 * exponent x) and half its reading-back interval (units, same scale): the
 * P-digit roundings are taken directly, and one reads back when its
 * distance to the value is below units.  P = pmax always reads back.  -1
 * for ties and distances within 1e-9 of the bound (too close to call). */
static long fmt_grid(char *tmp, int neg, uint64_t nfl, double phi, int x,
                     double units, int pmin, int pmax)
{
    char dig[18];
    uint64_t div = 1;

    for (int i = pmin; i < 17; i++)
        div *= 10;
    for (int keep = pmin; keep <= pmax; keep++, div /= 10) {
        double rem = (double)(nfl % div) + phi, halfc = div / 2.0, dist;
        uint64_t c;
        int up, xx = x;

        if (fabs(rem - halfc) < 1e-6) /* a tie, or too close to call */
            return -1;
        up = rem > halfc;
        dist = up ? (double)div - rem : rem;
        if (keep < pmax) {
            if (fabs(dist - units) <= units * 1e-9)
                return -1;
            if (dist > units) /* does not read back */
                continue;
        }
        c = nfl / div + (uint64_t)up;
        if (c == 100000000000000000ULL / div) { /* 9...9 rounded up */
            c /= 10;
            xx++;
        }
        for (int i = keep - 1; i >= 0; i--, c /= 10)
            dig[i] = (char)('0' + c % 10);
        return (long)layout_g(tmp, neg, dig, keep, xx);
    }
    return -1;
}

/* Same text as fmt_double_slow() for a finite d, without printf (the
 * 15-, 16- and 17-digit roundings on the exact grid, fmt_grid); the
 * reference loop only for what is too close to call.  tmp holds >= 32. */
size_t cdc_json_double_fmt(char *tmp, double d)
{
    int x, bexp;
    double a = fabs(d), phi, units;
    uint64_t nfl;
    long n;

    /* zero, subnormals, and powers of two (whose rounding interval is
     * narrower below than above): the reference loop */
    if (!(a >= DBL_MIN) || frexp(a, &bexp) == 0.5 ||
        scale17(a, &nfl, &phi, &x, &units) < 0 ||
        (n = fmt_grid(tmp, signbit(d) != 0, nfl, phi, x, units, 15, 17)) < 0)
        return fmt_double_slow(tmp, 32, d);
    return (size_t)n;
}

/* The reference rule for floats: the shortest of %.6g .. %.9g that reads
 * back (strtof) as f. */
static size_t fmt_float_slow(char *tmp, size_t cap, float f)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(tmp, cap, "%.*g", prec, (double)f);
        if (prec == 9 || strtof(tmp, NULL) == f)
            break;
    }
    return strlen(tmp);
}

size_t cdc_json_float_fmt(char *tmp, float f)
{
    int x, bexp;
    double a = fabs((double)f), phi, units;
    uint64_t nfl;
    long n;

    /* as for doubles; a float's half ulp is 2^29 times its double's */
    if (!(a >= FLT_MIN) || frexp(a, &bexp) == 0.5 ||
        scale17(a, &nfl, &phi, &x, &units) < 0 ||
        (n = fmt_grid(tmp, signbit(f) != 0, nfl, phi, x,
                      ldexp(units, 29), 6, 9)) < 0)
        return fmt_float_slow(tmp, 32, f);
    return (size_t)n;
}

size_t cdc_json_float_fmt_ref(char *tmp, float f)
{
    return fmt_float_slow(tmp, 32, f);
}

static void put_double(cdc_buf_t *out, double d, int is_float)
{
    char tmp[40];

    if (!isfinite(d)) {
        cdc_json_string(out, isnan(d) ? "NaN" : d > 0 ? "Infinity"
                                                       : "-Infinity",
                        isnan(d) ? 3 : d > 0 ? 8 : 9);
        return;
    }
    if (is_float)
        cdc_buf_put(out, tmp, cdc_json_float_fmt(tmp, (float)d));
    else
        cdc_buf_put(out, tmp, cdc_json_double_fmt(tmp, d));
}

/* The reference (for tests): the shortest %.Pg, P = 15..17, that reads
 * back as d. */
size_t cdc_json_double_fmt_ref(char *tmp, double d)
{
    return fmt_double_slow(tmp, 32, d);
}

/*
 * An embedded JSON value, compact: the whitespace between tokens goes
 * (PostgreSQL `json` and MariaDB JSON keep the text as written, raw
 * newlines included), strings are copied as they are, and a raw control
 * character inside a string (not valid JSON) is escaped.  The value and
 * its key order stay the same; the envelope stays one line.
 */
static void put_json_compact(cdc_buf_t *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    int in_str = 0, esc = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
            else if (c < 0x20) {
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                cdc_buf_put(out, s + start, i - start);
                cdc_buf_put(out, u, sizeof(u));
                start = i + 1;
            }
        } else if (c == '"') {
            in_str = 1;
        } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t' ||
                   c < 0x20) {
            cdc_buf_put(out, s + start, i - start);
            start = i + 1;
        }
    }
    cdc_buf_put(out, s + start, n - start);
}

void cdc_json_value(cdc_buf_t *out, const cdc_value_t *v)
{
    switch (v->kind) {
    case CDC_V_BOOL:
        cdc_buf_puts(out, v->u.b ? "true" : "false");
        break;
    case CDC_V_INT:
        put_i64(out, v->u.i);
        break;
    case CDC_V_UINT:
        put_u64(out, v->u.u);
        break;
    case CDC_V_FLOAT:
        put_double(out, v->u.d, 1);
        break;
    case CDC_V_DOUBLE:
        put_double(out, v->u.d, 0);
        break;
    case CDC_V_DECIMAL:
    case CDC_V_STRING:
        cdc_json_string(out, v->s, v->len);
        break;
    case CDC_V_BYTES:
        cdc_buf_putc(out, '"');
        cdc_buf_base64(out, (const uint8_t *)v->s, v->len);
        cdc_buf_putc(out, '"');
        break;
    case CDC_V_JSON:
        if (v->len)
            put_json_compact(out, v->s, v->len);
        else
            cdc_buf_puts(out, "null");
        break;
    default:
        cdc_buf_puts(out, "null");
    }
}

/* Cached formatting of the seconds part: envelopes of one transaction
 * share a commit time. */
void cdc_json_iso_ms(cdc_buf_t *out, int64_t us)
{
    static __thread int64_t last_sec = INT64_MIN;
    static __thread char last_txt[80];
    int64_t sec = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    int ms = (int)((us - sec * 1000000) / 1000);
    char tmp[8];

    if (sec != last_sec) {
        struct tm tm;
        time_t t = (time_t)sec;
        gmtime_r(&t, &tm);
        snprintf(last_txt, sizeof(last_txt), "%04d-%02d-%02dT%02d:%02d:%02d",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
        last_sec = sec;
    }
    tmp[0] = '.';
    tmp[1] = (char)('0' + ms / 100 % 10);
    tmp[2] = (char)('0' + ms / 10 % 10);
    tmp[3] = (char)('0' + ms % 10);
    tmp[4] = 'Z';
    cdc_buf_puts(out, last_txt);
    cdc_buf_put(out, tmp, 5);
}

static void put_key(cdc_buf_t *out, const char *k)
{
    cdc_json_string(out, k, strlen(k));
    cdc_buf_putc(out, ':');
}

/* Column name as an escaped JSON key, cached in the column. */
static void put_col_key(cdc_buf_t *out, const cdc_column_t *cc)
{
    cdc_column_t *c = (cdc_column_t *)cc; /* the cache is logically mutable */
    if (!c->jkey) {
        cdc_buf_t b = CDC_BUF_INIT;
        put_key(&b, c->name ? c->name : "?");
        c->jkey = b.p;
        c->jkeylen = (uint32_t)b.len;
    }
    cdc_buf_put(out, c->jkey, c->jkeylen);
}

/* {"col":value,...} over the present columns of an image; NULL -> null.
 * Unchanged columns are left out (and listed separately). */
static void put_image(cdc_buf_t *out, const cdc_table_t *t,
                      const cdc_value_t *img)
{
    int first = 1;

    if (!img) {
        cdc_buf_puts(out, "null");
        return;
    }
    cdc_buf_putc(out, '{');
    for (uint32_t i = 0; i < t->ncols; i++) {
        if (img[i].kind == CDC_V_ABSENT || img[i].kind == CDC_V_UNCHANGED)
            continue;
        if (!first)
            cdc_buf_putc(out, ',');
        first = 0;
        put_col_key(out, &t->cols[i]);
        cdc_json_value(out, &img[i]);
    }
    cdc_buf_putc(out, '}');
}

void cdc_envelope_key(cdc_buf_t *out, const cdc_change_t *ch)
{
    const cdc_table_t *t = ch->tbl;
    const cdc_value_t *img = ch->after ? ch->after : ch->before;
    int first = 1;

    cdc_buf_putc(out, '{');
    if (img) {
        if (t->npk) {
            for (uint32_t k = 0; k < t->npk; k++) {
                uint32_t i = t->pk[k];
                /* an update's after image may lack an unchanged key
                 * column (MINIMAL): take it from before */
                const cdc_value_t *v = &img[i];
                if ((v->kind == CDC_V_ABSENT || v->kind == CDC_V_UNCHANGED)
                    && ch->before)
                    v = &ch->before[i];
                if (!first)
                    cdc_buf_putc(out, ',');
                first = 0;
                put_col_key(out, &t->cols[i]);
                cdc_json_value(out, v);
            }
        } else {
            for (uint32_t i = 0; i < t->ncols; i++) {
                if (img[i].kind == CDC_V_ABSENT ||
                    img[i].kind == CDC_V_UNCHANGED)
                    continue;
                if (!first)
                    cdc_buf_putc(out, ',');
                first = 0;
                put_col_key(out, &t->cols[i]);
                cdc_json_value(out, &img[i]);
            }
        }
    }
    cdc_buf_putc(out, '}');
}

static void put_unchanged(cdc_buf_t *out, const cdc_change_t *ch)
{
    const cdc_table_t *t = ch->tbl;
    int first = 1;

    if (!ch->after)
        return;
    for (uint32_t i = 0; i < t->ncols; i++) {
        if (ch->after[i].kind != CDC_V_UNCHANGED)
            continue;
        cdc_buf_puts(out, first ? ",\"unchanged\":[" : ",");
        first = 0;
        cdc_json_string(out, t->cols[i].name, strlen(t->cols[i].name));
    }
    if (!first)
        cdc_buf_putc(out, ']');
}

static void put_str_field(cdc_buf_t *out, const char *k, const char *v)
{
    cdc_buf_putc(out, ',');
    put_key(out, k);
    if (v)
        cdc_json_string(out, v, strlen(v));
    else
        cdc_buf_puts(out, "null");
}

static void put_source_common(cdc_buf_t *out, const cdc_txn_t *tx,
                              const cdc_change_t *ch)
{
    const char *conn = tx->connector ? tx->connector : "mysql";
    int pg = !strcmp(conn, "postgresql");

    if (pg) {
        put_str_field(out, "schema", ch->tbl->db);
        put_str_field(out, "table", ch->tbl->name);
        cdc_buf_puts(out, ",\"lsn\":");
        put_u64(out, ch->pos);
        cdc_buf_puts(out, ",\"txId\":");
        put_u64(out, tx->xid);
    } else {
        cdc_buf_puts(out, ",\"server_id\":");
        put_u64(out, tx->server_id);
        put_str_field(out, "db", ch->tbl->db);
        put_str_field(out, "table", ch->tbl->name);
        put_str_field(out, "file", tx->file ? tx->file : tx->pos.file);
        cdc_buf_puts(out, ",\"pos\":");
        put_u64(out, ch->pos);
        put_str_field(out, "gtid", tx->gtid[0] ? tx->gtid : NULL);
        cdc_buf_puts(out, ",\"row\":");
        put_u64(out, ch->row);
    }
    cdc_buf_puts(out, ",\"ts_ms\":");
    put_i64(out, tx->commit_us / 1000);
}

void cdc_envelope_write(cdc_buf_t *out, const cdc_env_opts_t *o,
                        const cdc_txn_t *tx, const cdc_change_t *ch)
{
    const char *app = o->application_id ? o->application_id : "autoglm-cdc";
    const char *conn = tx->connector ? tx->connector : "mysql";
    char op[2] = {ch->op, 0};

    if (o->format == CDC_FMT_DEBEZIUM) {
        struct timeval tv;
        cdc_buf_puts(out, "{\"before\":");
        put_image(out, ch->tbl, ch->before);
        cdc_buf_puts(out, ",\"after\":");
        put_image(out, ch->tbl, ch->after);
        /* Debezium would put a placeholder string in the column; a list
         * beside the images keeps "unchanged" apart from "dropped" without
         * faking a value of the column's type */
        put_unchanged(out, ch);
        cdc_buf_puts(out, ",\"source\":{\"version\":\"" PACKAGE_VERSION
                          "\",\"connector\":");
        cdc_json_string(out, conn, strlen(conn));
        put_str_field(out, "name", app);
        put_str_field(out, "snapshot", ch->op == CDC_OP_READ ? "true"
                                                             : "false");
        put_source_common(out, tx, ch);
        cdc_buf_puts(out, "},\"op\":\"");
        cdc_buf_puts(out, op);
        cdc_buf_puts(out, "\",\"ts_ms\":");
        gettimeofday(&tv, NULL);
        put_i64(out, (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000);
        cdc_buf_putc(out, '}');
        return;
    }
    cdc_buf_puts(out, "{\"application_id\":");
    cdc_json_string(out, app, strlen(app));
    cdc_buf_puts(out, ",\"timestamp\":\"");
    cdc_json_iso_ms(out, tx->commit_us);
    cdc_buf_puts(out, "\",\"version\":");
    put_u64(out, CDC_ENVELOPE_VERSION);
    cdc_buf_puts(out, ",\"payload\":{\"op\":\"");
    cdc_buf_puts(out, op);
    cdc_buf_puts(out, "\",\"key\":");
    cdc_envelope_key(out, ch);
    cdc_buf_puts(out, ",\"before\":");
    put_image(out, ch->tbl, ch->before);
    cdc_buf_puts(out, ",\"after\":");
    put_image(out, ch->tbl, ch->after);
    put_unchanged(out, ch);
    cdc_buf_puts(out, "},\"source\":{\"connector\":");
    cdc_json_string(out, conn, strlen(conn));
    put_source_common(out, tx, ch);
    cdc_buf_puts(out, "}}");
}

/* ---- reading envelopes back ------------------------------------------- */

void cdc_json_tree_text(cdc_buf_t *b, const struct yajl_val_s *v)
{
    if (!v || YAJL_IS_NULL(v))
        cdc_buf_puts(b, "null");
    else if (YAJL_IS_TRUE(v))
        cdc_buf_puts(b, "true");
    else if (YAJL_IS_FALSE(v))
        cdc_buf_puts(b, "false");
    else if (YAJL_IS_STRING(v))
        cdc_json_string(b, v->u.string, cdc_json_strlen(v));
    else if (YAJL_IS_NUMBER(v))
        cdc_buf_puts(b, v->u.number.r);
    else if (YAJL_IS_ARRAY(v)) {
        cdc_buf_putc(b, '[');
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (i)
                cdc_buf_putc(b, ',');
            cdc_json_tree_text(b, v->u.array.values[i]);
        }
        cdc_buf_putc(b, ']');
    } else {
        cdc_buf_putc(b, '{');
        for (size_t i = 0; i < v->u.object.len; i++) {
            if (i)
                cdc_buf_putc(b, ',');
            cdc_json_string(b, v->u.object.keys[i],
                            strlen(v->u.object.keys[i]));
            cdc_buf_putc(b, ':');
            cdc_json_tree_text(b, v->u.object.values[i]);
        }
        cdc_buf_putc(b, '}');
    }
}

void cdc_json_to_value(cdc_arena_t *a, cdc_value_t *cv,
                       const struct yajl_val_s *v)
{
    memset(cv, 0, sizeof(*cv));
    if (!v || YAJL_IS_NULL(v)) {
        cv->kind = CDC_V_NULL;
    } else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        cv->kind = CDC_V_BOOL;
        cv->u.b = YAJL_IS_TRUE(v);
    } else if (YAJL_IS_STRING(v)) {
        cv->kind = CDC_V_STRING;
        cv->len = cdc_json_strlen(v);
        cv->s = cdc_arena_memdup(a, v->u.string, cv->len);
    } else if (YAJL_IS_INTEGER(v)) {
        cv->kind = CDC_V_INT;
        cv->u.i = v->u.number.i;
    } else if (YAJL_IS_NUMBER(v) && !strpbrk(v->u.number.r, ".eE")) {
        /* an integer beyond int64: unsigned if it fits, else exact digits */
        char *end;
        unsigned long long u = strtoull(v->u.number.r, &end, 10);
        if (v->u.number.r[0] != '-' && !*end &&
            (u != ULLONG_MAX ||
             !strcmp(v->u.number.r, "18446744073709551615"))) {
            cv->kind = CDC_V_UINT;
            cv->u.u = u;
        } else {
            cv->kind = CDC_V_DECIMAL;
            cv->len = strlen(v->u.number.r);
            cv->s = cdc_arena_memdup(a, v->u.number.r, cv->len);
        }
    } else if (YAJL_IS_NUMBER(v)) {
        cv->kind = CDC_V_DOUBLE;
        cv->u.d = v->u.number.d;
    } else {
        cdc_buf_t b = CDC_BUF_INIT;
        cdc_json_tree_text(&b, v);
        cv->kind = CDC_V_JSON;
        cv->len = b.len;
        cv->s = cdc_arena_memdup(a, b.p ? b.p : "", b.len);
        cdc_buf_free(&b);
    }
}

size_t cdc_utf8_seq(const unsigned char *p, size_t n)
{
    return n ? utf8_len(p, n) : 0;
}
