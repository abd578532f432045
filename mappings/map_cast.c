/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map_cast.c - values to the canonical text of the target types
 * (docs/MAPPINGS.md, types).  Naive timestamps are read in the zone of
 * their mapping or source through its loaded rules (map_zone.c); nothing
 * here reads or changes process state.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/envelope.h"
#include "cdc/util.h"
#include "mappings/map_int.h"

static int digits(const char *s, size_t len, size_t at, int n, int *v)
{
    *v = 0;
    if (at + (size_t)n > len)
        return -1;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[at + i]))
            return -1;
        *v = *v * 10 + (s[at + i] - '0');
    }
    return 0;
}

static void fmt_ts(int64_t sec, int us, char *buf, size_t n)
{
    int64_t days = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
    int64_t rem = sec - days * 86400;
    /* civil from days (Howard Hinnant) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    int len = snprintf(buf, n, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d", y, m,
                       d, (int)(rem / 3600), (int)(rem / 60 % 60),
                       (int)(rem % 60));
    if (us) {
        len += snprintf(buf + len, n - (size_t)len, ".%06d", us);
        while (buf[len - 1] == '0')
            buf[--len] = '\0';
    }
    snprintf(buf + len, n - (size_t)len, "Z");
}

int cdc_map_parse_ts(const char *s, size_t len, const cdc_tz_t *zone,
                     int64_t *tsec, int *tus)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, us = 0;
    size_t i = 10;
    int64_t t;

    if (len >= 10 && !strncmp(s, "0000-00-00", 10))
        return 1;
    if (digits(s, len, 0, 4, &y) || len < 10 || s[4] != '-' ||
        digits(s, len, 5, 2, &mo) || s[7] != '-' || digits(s, len, 8, 2, &d) ||
        mo < 1 || mo > 12 || d < 1 || d > 31)
        return -1;
    if (i < len && (s[i] == ' ' || s[i] == 'T')) {
        if (digits(s, len, 11, 2, &h) || len < 16 || s[13] != ':' ||
            digits(s, len, 14, 2, &mi))
            return -1;
        i = 16;
        if (i < len && s[i] == ':') {
            if (digits(s, len, 17, 2, &sec))
                return -1;
            i = 19;
            if (i < len && s[i] == '.') {
                int nd = 0;
                i++;
                while (i < len && isdigit((unsigned char)s[i])) {
                    if (nd < 6) {
                        us = us * 10 + (s[i] - '0');
                        nd++;
                    }
                    i++;
                }
                if (!nd)
                    return -1;
                while (nd++ < 6)
                    us *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return -1;
    }
    t = cdc_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
        h * 3600 + mi * 60 + sec;
    if (i < len) {
        /* an explicit zone in the value wins over the declared one */
        if (s[i] == 'Z' && i + 1 == len)
            ;
        else if ((s[i] == '+' || s[i] == '-') && (len - i == 3 || len - i == 6 ||
                                                  len - i == 5)) {
            int hh, mm = 0;
            if (digits(s, len, i + 1, 2, &hh))
                return -1;
            if (len - i == 6 && (s[i + 3] != ':' || digits(s, len, i + 4, 2, &mm)))
                return -1;
            if (len - i == 5 && digits(s, len, i + 3, 2, &mm))
                return -1;
            t -= (hh * 3600 + mm * 60) * (s[i] == '-' ? -1 : 1);
        } else
            return -1;
    } else if (zone)
        t = cdc_tz_to_utc(zone, t);
    *tsec = t;
    *tus = us;
    return 0;
}

int cdc_map_cast_ts(const char *s, size_t len, const cdc_tz_t *zone,
                    char *out, size_t n)
{
    int64_t t;
    int us, rc = cdc_map_parse_ts(s, len, zone, &t, &us);
    if (!rc)
        fmt_ts(t, us, out, n);
    return rc;
}

const char *cdc_map_show_value(const char *s, size_t len, char *out,
                               size_t n)
{
    size_t o = 0, i = 0, chars = 0;

    while (i < len && chars < 60 && o + 8 < n) {
        const unsigned char *p = (const unsigned char *)s + i;
        size_t k = cdc_utf8_seq(p, len - i);
        if (k == 1 && (*p < 0x20 || *p == 0x7f || *p == '\\'))
            k = 0;
        if (k) {
            memcpy(out + o, p, k);
            o += k;
            i += k;
        } else {
            o += (size_t)snprintf(out + o, n - o, "\\x%02x", *p);
            i++;
        }
        chars++;
    }
    out[o] = '\0';
    if (i < len)
        snprintf(out + o, n - o, "... (%zu bytes)", len);
    return out;
}

static int cast_err(xctx_t *c, const cdc_map_field_t *f, const char *s,
                    size_t len, const char *why)
{
    char v[320];

    cdc_err_set(c->err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                "%s: mapping '%s': value '%s' does not fit field '%s' (%s): "
                "%s", c->where ? c->where : "mapping",
                c->mapping ? c->mapping : "?",
                cdc_map_show_value(s ? s : "", len, v, sizeof(v)),
                f->name, f->sqltype, why);
    cdc_err_hint(c->err, "fix the mapping (a cast, a value map or a filter) "
                 "or the source value, then run again: the transaction was "
                 "not applied and is read again");
    return -1;
}

/*
 * A decimal as text, for values beyond the 36 exact digits of xv_t:
 * [+-]digits[.digits] rounded half away from zero to scale (-1: keep),
 * then at most precision - scale integer digits (precision 0: any).
 * 0 ok (*out in the arena), -1 not a decimal, -2 too many digits.
 */
static int dec_text_fit(const char *s, size_t len, int precision, int scale,
                        cdc_arena_t *a, const char **out, size_t *outlen)
{
    size_t i = 0, ib, ie, fb, fe, nd, k;
    int neg = cdc_num_trim_sign(s, &i, &len);
    char *d, *o;

    ib = i;
    while (i < len && isdigit((unsigned char)s[i]))
        i++;
    ie = fb = fe = i;
    if (i < len && s[i] == '.') {
        fb = ++i;
        while (i < len && isdigit((unsigned char)s[i]))
            i++;
        fe = i;
    }
    if (i != len || (ie == ib && fe == fb))
        return -1;
    while (ib < ie && s[ib] == '0') /* leading zeros */
        ib++;
    if (scale < 0)
        scale = (int)(fe - fb);
    /* digits: a carry slot, the integer part, scale fractional digits */
    nd = 1 + (ie - ib) + (size_t)scale;
    d = cdc_arena_alloc(a, nd + 1);
    d[0] = '0';
    memcpy(d + 1, s + ib, ie - ib);
    for (k = 0; k < (size_t)scale; k++)
        d[1 + (ie - ib) + k] = fb + k < fe ? s[fb + k] : '0';
    if (fb + (size_t)scale < fe && s[fb + scale] >= '5')
        for (k = nd; k-- > 0;) {
            if (d[k] == '9') {
                d[k] = '0';
                continue;
            }
            d[k]++;
            break;
        }
    k = 0;
    while (k + 1 + (size_t)scale < nd && d[k] == '0') /* integer zeros */
        k++;
    if (precision && nd - k - (size_t)scale > (size_t)(precision - scale) &&
        !(nd - k - (size_t)scale == 1 && d[k] == '0'))
        return -2;
    o = cdc_arena_alloc(a, nd - k + 3);
    i = 0;
    {
        int zero = 1;
        for (size_t j = k; j < nd; j++)
            zero &= d[j] == '0';
        if (neg && !zero)
            o[i++] = '-';
    }
    memcpy(o + i, d + k, nd - k - (size_t)scale);
    i += nd - k - (size_t)scale;
    if (scale) {
        o[i++] = '.';
        memcpy(o + i, d + nd - scale, (size_t)scale);
        i += (size_t)scale;
    }
    o[i] = '\0';
    *out = o;
    *outlen = i;
    return 0;
}

/* A text or JSON value the target can hold: UTF-8, and no NUL where the
 * database has none (CDC_MAP_LIM_NUL). */
static int check_text(xctx_t *c, const cdc_map_field_t *f, const char *s,
                      size_t len)
{
    for (size_t i = 0; i < len;) {
        const unsigned char *p = (const unsigned char *)s + i;
        size_t k;
        if (*p < 0x80 && *p) {
            i++;
            continue;
        }
        if (!*p) {
            if (c->limits & CDC_MAP_LIM_NUL)
                return cast_err(c, f, s, len, "a NUL character, which "
                                "PostgreSQL text cannot hold");
            i++;
            continue;
        }
        k = cdc_utf8_seq(p, len - i);
        if (!k)
            return cast_err(c, f, s, len, "not valid UTF-8");
        i += k;
    }
    if (f->type == CDC_MT_JSON && (c->limits & CDC_MAP_LIM_NUL) &&
        memmem(s, len, "\\u0000", 6))
        return cast_err(c, f, s, len, "a \\u0000 escape, which PostgreSQL "
                        "jsonb cannot hold");
    return 0;
}

static int check_double(xctx_t *c, const cdc_map_field_t *f, double d,
                        const char *s, size_t len)
{
    if (!isfinite(d) && (c->limits & CDC_MAP_LIM_FINITE))
        return cast_err(c, f, s, len, "NaN and Infinity do not fit a MySQL "
                        "DOUBLE");
    return 0;
}

static int cast_bool(xctx_t *c, const cdc_map_field_t *f, const xv_t *v,
                     const char *s, size_t len, castres_t *r)
{
    int b;

    if (v->t == XV_BOOL)
        b = v->b;
    else if (v->t == XV_DEC)
        b = v->m != 0;
    else if (v->t == XV_DBL)
        b = v->d != 0;
    else {
        static const char *const t[] = {"true", "t", "yes", "y", "on", "1"};
        static const char *const fl[] = {"false", "f", "no", "n", "off", "0"};
        int k = -1;
        for (int i = 0; i < 6; i++) {
            if (strlen(t[i]) == len && !strncasecmp(s, t[i], len))
                k = 1;
            if (strlen(fl[i]) == len && !strncasecmp(s, fl[i], len))
                k = 0;
        }
        if (k < 0)
            return cast_err(c, f, s, len, "not a boolean");
        b = k;
    }
    r->s = b ? "true" : "false";
    r->len = strlen(r->s);
    return 0;
}

/* A decimal with precision: fits it after rounding to its scale? */
static int fit_precision(xctx_t *c, const cdc_map_field_t *f, xv_t *x,
                         const char *s, size_t len, castres_t *r, int *done)
{
    __int128 lim = 1;
    xv_t xo = *x;

    *done = 0;
    if (cdc_xv_rescale(x, f->scale)) {
        /* the scale pushed it past 36 digits: as text */
        size_t tl;
        const char *t = cdc_xv_text(&xo, c->arena, &tl);
        int rc = dec_text_fit(t, tl, f->precision, f->scale, c->arena, &r->s,
                              &r->len);
        *done = 1;
        if (rc)
            return cast_err(c, f, s, len, rc == -2
                            ? "too many digits for the declared precision"
                            : "out of range");
        return 0;
    }
    for (int i = 0; i < f->precision; i++)
        lim *= 10;
    if (x->m >= lim || x->m <= -lim)
        return cast_err(c, f, s, len, "too many digits for the declared "
                        "precision");
    return 0;
}

static int cast_number(xctx_t *c, const cdc_map_field_t *f, const xv_t *v,
                       const char *s, size_t len, castres_t *r)
{
    char buf[128];
    xv_t x;

    if (v->t == XV_DBL) {
        if (!isfinite(v->d))
            return cast_err(c, f, s, len, "not a finite number");
        snprintf(buf, sizeof(buf), "%.17g", v->d);
        if (strchr(buf, 'e')) {
            if (fabs(v->d) < 1e-30) {
                snprintf(buf, sizeof(buf), "0");
            } else
                snprintf(buf, sizeof(buf), "%.30f", v->d);
        }
        if (cdc_xv_parse_dec(buf, strlen(buf), &x))
            return cast_err(c, f, s, len, "out of range");
    } else if (v->t == XV_BOOL) {
        memset(&x, 0, sizeof(x));
        x.t = XV_DEC;
        x.m = v->b;
    } else if (v->t == XV_DEC)
        x = *v;
    else if (cdc_xv_parse_dec(s, len, &x)) {
        /* more digits than xv_t holds exactly: a numeric field takes
         * them as text, up to its declared precision */
        int rc = f->type == CDC_MT_DECIMAL
                     ? dec_text_fit(s, len, f->precision,
                                    f->precision ? f->scale : -1, c->arena,
                                    &r->s, &r->len)
                     : -1;
        if (rc == -2)
            return cast_err(c, f, s, len, "too many digits for the declared "
                            "precision");
        if (rc)
            return cast_err(c, f, s, len, "not a number");
        return 0;
    }
    if (f->type == CDC_MT_DECIMAL && f->precision > 36) {
        /* 10^precision does not fit xv_t: check and round as text */
        size_t tl;
        const char *t = cdc_xv_text(&x, c->arena, &tl);
        int rc = dec_text_fit(t, tl, f->precision, f->scale, c->arena, &r->s,
                              &r->len);
        if (rc)
            return cast_err(c, f, s, len, "too many digits for the declared "
                            "precision");
        return 0;
    }
    if (f->type == CDC_MT_INT) {
        if (cdc_xv_rescale(&x, 0) || x.m > INT64_MAX || x.m < INT64_MIN)
            return cast_err(c, f, s, len, "out of the 64-bit range");
    } else if (f->precision) {
        int done, rc = fit_precision(c, f, &x, s, len, r, &done);
        if (rc || done)
            return rc;
    } else if (c->limits & CDC_MAP_LIM_DEC38) {
        /* the sink's DECIMAL(38,10): 28 digits before the point */
        __int128 one = 1, lim = 1, ip;
        for (int i = 0; i < x.scale; i++)
            one *= 10;
        for (int i = 0; i < 28; i++)
            lim *= 10;
        ip = x.m / one;
        if (ip >= lim || ip <= -lim)
            return cast_err(c, f, s, len, "more than 28 integer digits (an "
                            "undeclared precision is DECIMAL(38,10) in "
                            "MySQL); declare decimal(p,s)");
    }
    r->s = cdc_xv_text(&x, c->arena, &r->len);
    return 0;
}

static int cast_double(xctx_t *c, const cdc_map_field_t *f, const xv_t *v,
                       const char *s, size_t len, castres_t *r)
{
    char buf[128], tmp[128], *end;
    double d;

    if (v->t == XV_DBL && check_double(c, f, v->d, s, len))
        return -1;
    if (v->t == XV_DBL) {
        r->s = s;
        r->len = len;
        return 0;
    }
    if (v->t == XV_DEC)
        d = strtod(s, NULL);
    else {
        if (len == 0 || len >= sizeof(tmp))
            return cast_err(c, f, s, len, "not a number");
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        d = strtod(tmp, &end);
        if (*end)
            return cast_err(c, f, s, len, "not a number");
        if (check_double(c, f, d, s, len))
            return -1;
    }
    /* the shortest text that reads back as the same double */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    r->s = cdc_arena_memdup(c->arena, buf, strlen(buf));
    r->len = strlen(buf);
    return 0;
}

static int cast_timestamp(xctx_t *c, const cdc_map_field_t *f, const xv_t *v,
                          const char *s, size_t len, const cdc_tz_t *zone,
                          castres_t *r)
{
    char buf[128];

    if (v->t == XV_DEC || v->t == XV_DBL) {
        /* epoch seconds */
        double d = v->t == XV_DBL ? v->d : (double)v->m / pow(10, v->scale);
        int64_t sec = (int64_t)floor(d);
        int us = (int)llround((d - (double)sec) * 1e6);
        if (!isfinite(d) || fabs(d) > 1e13)
            return cast_err(c, f, s, len, "not a time");
        if (us >= 1000000) {
            sec++;
            us -= 1000000;
        }
        fmt_ts(sec, us, buf, sizeof(buf));
    } else {
        int rc = cdc_map_cast_ts(s, len, zone, buf, sizeof(buf));
        if (rc < 0)
            return cast_err(c, f, s, len, "not a date-time "
                            "(YYYY-MM-DD[ HH:MM[:SS[.f]]][Z|+HH:MM])");
        if (rc == 1) {
            r->isnull = 1; /* zero date */
            return 0;
        }
    }
    r->len = strlen(buf);
    r->s = cdc_arena_memdup(c->arena, buf, r->len);
    return 0;
}

static int cast_date(xctx_t *c, const cdc_map_field_t *f, const char *s,
                     size_t len, castres_t *r)
{
    int y, mo, d;

    if (len >= 10 && !strncmp(s, "0000-00-00", 10)) {
        r->isnull = 1;
        return 0;
    }
    if (len < 10 || digits(s, len, 0, 4, &y) || s[4] != '-' ||
        digits(s, len, 5, 2, &mo) || s[7] != '-' ||
        digits(s, len, 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31 ||
        (len > 10 && s[10] != ' ' && s[10] != 'T'))
        return cast_err(c, f, s, len, "not a date (YYYY-MM-DD)");
    r->s = cdc_arena_memdup(c->arena, s, 10);
    r->len = 10;
    return 0;
}

int cdc_map_cast(xctx_t *c, const cdc_map_field_t *f, const xv_t *v,
                 const cdc_tz_t *zone, castres_t *r)
{
    size_t len;
    const char *s;

    memset(r, 0, sizeof(*r));
    if (v->t == XV_NULL) {
        r->isnull = 1;
        return 0;
    }
    s = cdc_xv_text(v, c->arena, &len);
    switch (f->type) {
    case CDC_MT_TEXT:
    case CDC_MT_JSON:
        if (check_text(c, f, s, len))
            return -1;
        r->s = s;
        r->len = len;
        return 0;
    case CDC_MT_BOOL:
        return cast_bool(c, f, v, s, len, r);
    case CDC_MT_INT:
    case CDC_MT_DECIMAL:
        return cast_number(c, f, v, s, len, r);
    case CDC_MT_DOUBLE:
        return cast_double(c, f, v, s, len, r);
    case CDC_MT_TIMESTAMP:
        return cast_timestamp(c, f, v, s, len, zone, r);
    case CDC_MT_DATE:
        return cast_date(c, f, s, len, r);
    }
    return 0;
}
