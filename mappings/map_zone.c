/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map_zone.c - time zones for naive timestamps, without the process TZ.
 *
 * A zone is loaded once, with the mapping files: "UTC"/"Z", a fixed
 * offset "+HH:MM", or an IANA name read from the zone database (TZDIR,
 * else /usr/share/zoneinfo) in its binary form (TZif, RFC 8536): the
 * table of transitions and, after the last one, the POSIX TZ rule of its
 * footer.  Converting a local time to UTC afterwards reads only the
 * loaded rules: no setenv("TZ"), no tzset(), no mktime(), so it neither
 * depends on nor changes process state, and the same input always gives
 * the same instant.
 *
 * Local times that do not exist or exist twice follow PostgreSQL's rule
 * (docs/MAPPINGS.md, time zones): a time in a spring-forward gap takes
 * the offset in force just before the transition, an ambiguous time in a
 * fall-back overlap the offset in force just after it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/util.h"
#include "mappings/map_int.h"

#define TZ_MAX_FILE (1 << 20)  /* zone files are a few KB */
#define TZ_MAX_TIMES 4096
#define TZ_MAX_TYPES 256
#define TZ_WINDOW (27 * 3600)  /* every solution t of t = L - off(t) */

/* A POSIX TZ rule date: Jn, n or Mm.w.d, and the local time of day. */
typedef struct tzdate {
    char kind;     /* 'J', 'D' (zero-based day) or 'M' */
    int n, m, w, d;
    int32_t secs;  /* time of day, may be negative or beyond 24 h */
} tzdate_t;

typedef struct tzrule {
    int present;
    int32_t std_off, dst_off; /* seconds east of UTC */
    int has_dst;
    tzdate_t start, end;
} tzrule_t;

struct cdc_tz {
    int64_t *times;      /* transition instants, ascending */
    uint8_t *idx;        /* type index after each transition */
    uint32_t ntimes;
    int32_t *offs;       /* per type: seconds east of UTC */
    uint8_t *dst;
    uint32_t ntypes;
    tzrule_t rule;       /* after the last transition (footer) */
    char *name;
};

void cdc_tz_free(cdc_tz_t *z)
{
    if (!z)
        return;
    free(z->times);
    free(z->idx);
    free(z->offs);
    free(z->dst);
    free(z->name);
    free(z);
}

static cdc_tz_t *tz_fixed(const char *name, int32_t off)
{
    cdc_tz_t *z = cdc_xcalloc(1, sizeof(*z));
    z->rule.present = 1;
    z->rule.std_off = off;
    z->name = cdc_xstrdup(name);
    return z;
}

/* "+HH:MM" / "-HH:MM" (hours <= 14): 0 with *off, else -1. */
int cdc_tz_parse_offset(const char *s, int32_t *off)
{
    if (strlen(s) != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':')
        return -1;
    for (int i = 1; i < 6; i++)
        if (i != 3 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int hh = (s[1] - '0') * 10 + (s[2] - '0');
    int mm = (s[4] - '0') * 10 + (s[5] - '0');
    if (hh > 14 || mm > 59)
        return -1;
    *off = (hh * 3600 + mm * 60) * (s[0] == '-' ? -1 : 1);
    return 0;
}

/* ---- POSIX TZ rule (the TZif footer) -------------------------------------- */

typedef struct rd {
    const char *s;
    size_t i, n;
} rd_t;

static int rd_num(rd_t *r, int max, int *v)
{
    int k = 0;
    *v = 0;
    while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9') {
        *v = *v * 10 + (r->s[r->i++] - '0');
        if (++k > 3 || *v > max)
            return -1;
    }
    return k ? 0 : -1;
}

/* [+-]hh[:mm[:ss]]; hours up to 167 (RFC 8536 extension) */
static int rd_hms(rd_t *r, int32_t *secs)
{
    int sign = 1, h, m = 0, s = 0;
    if (r->i < r->n && (r->s[r->i] == '+' || r->s[r->i] == '-'))
        sign = r->s[r->i++] == '-' ? -1 : 1;
    if (rd_num(r, 167, &h))
        return -1;
    if (r->i < r->n && r->s[r->i] == ':') {
        r->i++;
        if (rd_num(r, 59, &m))
            return -1;
        if (r->i < r->n && r->s[r->i] == ':') {
            r->i++;
            if (rd_num(r, 59, &s))
                return -1;
        }
    }
    *secs = sign * (h * 3600 + m * 60 + s);
    return 0;
}

static int rd_name(rd_t *r)
{
    size_t st = r->i;
    if (r->i < r->n && r->s[r->i] == '<') {
        while (r->i < r->n && r->s[r->i] != '>')
            r->i++;
        if (r->i >= r->n || r->i - st < 4)
            return -1;
        r->i++;
        return 0;
    }
    while (r->i < r->n && ((r->s[r->i] >= 'A' && r->s[r->i] <= 'Z') ||
                           (r->s[r->i] >= 'a' && r->s[r->i] <= 'z')))
        r->i++;
    return r->i - st >= 3 ? 0 : -1;
}

static int rd_date(rd_t *r, tzdate_t *d)
{
    memset(d, 0, sizeof(*d));
    d->secs = 2 * 3600;
    if (r->i < r->n && r->s[r->i] == 'J') {
        r->i++;
        d->kind = 'J';
        if (rd_num(r, 365, &d->n) || d->n < 1)
            return -1;
    } else if (r->i < r->n && r->s[r->i] == 'M') {
        r->i++;
        d->kind = 'M';
        if (rd_num(r, 12, &d->m) || d->m < 1 || r->i >= r->n ||
            r->s[r->i++] != '.' || rd_num(r, 5, &d->w) || d->w < 1 ||
            r->i >= r->n || r->s[r->i++] != '.' || rd_num(r, 6, &d->d))
            return -1;
    } else {
        d->kind = 'D';
        if (rd_num(r, 365, &d->n))
            return -1;
    }
    if (r->i < r->n && r->s[r->i] == '/') {
        r->i++;
        if (rd_hms(r, &d->secs))
            return -1;
    }
    return 0;
}

/* 0 ok (an empty rule leaves present = 0), -1 malformed */
static int parse_rule(const char *s, size_t n, tzrule_t *t)
{
    rd_t r = {s, 0, n};
    int32_t o;

    memset(t, 0, sizeof(*t));
    if (!n)
        return 0;
    if (rd_name(&r) || rd_hms(&r, &o))
        return -1;
    t->present = 1;
    t->std_off = -o; /* POSIX offsets count west of UTC */
    if (r.i == n)
        return 0;
    if (rd_name(&r))
        return -1;
    t->has_dst = 1;
    t->dst_off = t->std_off + 3600;
    if (r.i < n && r.s[r.i] != ',') {
        if (rd_hms(&r, &o))
            return -1;
        t->dst_off = -o;
    }
    /* TZif footers always carry the rule dates when there is DST */
    if (r.i >= n || r.s[r.i++] != ',' || rd_date(&r, &t->start) ||
        r.i >= n || r.s[r.i++] != ',' || rd_date(&r, &t->end) || r.i != n)
        return -1;
    return 0;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since the epoch of a rule date in year y. */
static int64_t rule_day(const tzdate_t *d, int64_t y)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t jan1 = cdc_days_from_civil(y, 1, 1);

    if (d->kind == 'J')
        return jan1 + d->n - 1 + (is_leap(y) && d->n >= 60);
    if (d->kind == 'D')
        return jan1 + d->n;
    int64_t first = cdc_days_from_civil(y, (unsigned)d->m, 1);
    int wd = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01: Thursday */
    int len = mdays[d->m - 1] + (d->m == 2 && is_leap(y));
    int64_t day = first + (d->d - wd + 7) % 7 + (int64_t)(d->w - 1) * 7;
    while (day >= first + len)
        day -= 7;
    return day;
}

static int64_t year_of(int64_t t)
{
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    return yoe + era * 400 + (mp >= 10);
}

/* Offset under a POSIX rule at instant t, and the next change after t. */
static void rule_at(const tzrule_t *r, int64_t t, int32_t *off, int *dst,
                    int64_t *next)
{
    int64_t tr[6], y = year_of(t);
    int on[6], n = 0, cur = 0;

    *off = r->std_off;
    *dst = 0;
    *next = INT64_MAX;
    if (!r->has_dst)
        return;
    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        /* the start is given in standard time, the end in daylight time */
        tr[n] = rule_day(&r->start, yy) * 86400 + r->start.secs - r->std_off;
        on[n++] = 1;
        tr[n] = rule_day(&r->end, yy) * 86400 + r->end.secs - r->dst_off;
        on[n++] = 0;
    }
    for (int i = 1; i < n; i++) /* insertion sort of six */
        for (int j = i; j > 0 && tr[j] < tr[j - 1]; j--) {
            int64_t a = tr[j];
            int b = on[j];
            tr[j] = tr[j - 1], on[j] = on[j - 1];
            tr[j - 1] = a, on[j - 1] = b;
        }
    cur = !on[0]; /* before the first change: the opposite state */
    for (int i = 0; i < n; i++) {
        if (tr[i] > t) {
            *next = tr[i];
            break;
        }
        cur = on[i];
    }
    *off = cur ? r->dst_off : r->std_off;
    *dst = cur;
}

/* Offset of zone z at instant t and the instant of its next change. */
static void zone_at(const cdc_tz_t *z, int64_t t, int32_t *off, int *dst,
                    int64_t *next)
{
    uint32_t lo = 0, hi = z->ntimes;

    if (!z->ntimes || t < z->times[0]) {
        if (!z->ntypes || (!z->ntimes && z->rule.present)) {
            rule_at(&z->rule, t, off, dst, next);
            return;
        }
        *off = z->offs[0]; /* RFC 8536: type 0 before the first */
        *dst = z->dst[0];
        *next = z->ntimes ? z->times[0] : INT64_MAX;
        return;
    }
    if (t >= z->times[z->ntimes - 1] && z->rule.present) {
        rule_at(&z->rule, t, off, dst, next);
        return;
    }
    while (hi - lo > 1) { /* last transition <= t */
        uint32_t mid = lo + (hi - lo) / 2;
        if (z->times[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    *off = z->offs[z->idx[lo]];
    *dst = z->dst[z->idx[lo]];
    *next = lo + 1 < z->ntimes ? z->times[lo + 1] : INT64_MAX;
}

int32_t cdc_tz_offset(const cdc_tz_t *z, int64_t t, int *isdst)
{
    int32_t off;
    int dst;
    int64_t next;
    zone_at(z, t, &off, &dst, &next);
    if (isdst)
        *isdst = dst;
    return off;
}

int64_t cdc_tz_to_utc(const cdc_tz_t *z, int64_t local)
{
    /* Walk the pieces of constant offset around local; in each, the
     * solution of t = local - off is local - off if it falls inside. */
    int64_t t = local - TZ_WINDOW, end = local + TZ_WINDOW, best = 0;
    int64_t past = local; /* gap: offset of the last piece passed */
    int found = 0;

    while (t < end) {
        int32_t off;
        int dst;
        int64_t next, cand;
        zone_at(z, t, &off, &dst, &next);
        cand = local - off;
        if (cand >= t && cand < next) {
            best = cand; /* an overlap keeps the later: offset after */
            found = 1;
        } else if (cand >= next)
            past = cand;
        if (next == INT64_MAX)
            break;
        t = next;
    }
    return found ? best : past;
}

/* ---- TZif ------------------------------------------------------------------ */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct tzhead {
    uint32_t isut, isstd, leap, times, types, chars;
} tzhead_t;

static int read_head(const unsigned char *p, size_t len, tzhead_t *h)
{
    if (len < 44 || memcmp(p, "TZif", 4))
        return -1;
    h->isut = be32(p + 20);
    h->isstd = be32(p + 24);
    h->leap = be32(p + 28);
    h->times = be32(p + 32);
    h->types = be32(p + 36);
    h->chars = be32(p + 40);
    if (h->times > TZ_MAX_TIMES || !h->types || h->types > TZ_MAX_TYPES ||
        h->chars > 65536 || h->leap > 65536 ||
        (h->isut && h->isut != h->types) || (h->isstd && h->isstd != h->types))
        return -1;
    return 0;
}

static size_t body_len(const tzhead_t *h, int tsize)
{
    return (size_t)h->times * (size_t)(tsize + 1) + (size_t)h->types * 6 +
           h->chars + (size_t)h->leap * (size_t)(tsize + 4) + h->isstd +
           h->isut;
}

static const char *tz_bad(cdc_err_t *err, const char *name, const char *why)
{
    cdc_err_set(err, CDC_EXIT_CONFIG, 0, "time zone '%s': %s", name, why);
    cdc_err_hint(err, "reinstall the zone files (the tzdata package, or "
                 "TZDIR), or use a fixed offset like +02:00");
    return NULL;
}

cdc_tz_t *cdc_tz_parse(const char *name, const unsigned char *p, size_t len,
                       cdc_err_t *err)
{
    tzhead_t h;
    int tsize = 4;
    size_t at, blen;
    cdc_tz_t *z;

    if (read_head(p, len, &h))
        return (void *)tz_bad(err, name, "not a zone file (TZif header)");
    blen = body_len(&h, 4);
    if (len - 44 < blen)
        return (void *)tz_bad(err, name, "zone file is truncated");
    at = 44;
    if (p[4] >= '2') { /* skip the 32-bit part: read the 64-bit one */
        at += blen;
        if (read_head(p + at, len - at, &h))
            return (void *)tz_bad(err, name, "bad second TZif header");
        at += 44;
        tsize = 8;
        blen = body_len(&h, 8);
        if (len - at < blen)
            return (void *)tz_bad(err, name, "zone file is truncated");
    }
    if (h.leap)
        return (void *)tz_bad(err, name, "zone counts leap seconds (a "
                              "right/ zone); use the plain zone");
    z = cdc_xcalloc(1, sizeof(*z));
    z->name = cdc_xstrdup(name);
    z->ntimes = h.times;
    z->ntypes = h.types;
    z->times = cdc_xcalloc(h.times + 1, sizeof(int64_t));
    z->idx = cdc_xcalloc(h.times + 1, 1);
    z->offs = cdc_xcalloc(h.types, sizeof(int32_t));
    z->dst = cdc_xcalloc(h.types, 1);
    for (uint32_t i = 0; i < h.times; i++, at += (size_t)tsize) {
        z->times[i] = tsize == 8 ? be64(p + at) : (int32_t)be32(p + at);
        if (i && z->times[i] <= z->times[i - 1])
            return cdc_tz_free(z), (void *)tz_bad(err, name, "transitions "
                                                  "out of order");
    }
    for (uint32_t i = 0; i < h.times; i++, at++) {
        z->idx[i] = p[at];
        if (p[at] >= h.types)
            return cdc_tz_free(z), (void *)tz_bad(err, name, "bad type index");
    }
    for (uint32_t i = 0; i < h.types; i++, at += 6) {
        z->offs[i] = (int32_t)be32(p + at);
        z->dst[i] = p[at + 4];
        if (z->offs[i] <= -90000 || z->offs[i] >= 90000)
            return cdc_tz_free(z), (void *)tz_bad(err, name, "offset beyond "
                                                  "25 hours");
    }
    at += h.chars + h.isstd + h.isut; /* no leap records (checked) */
    if (tsize == 8) {
        /* footer: "\n" rule "\n" */
        size_t e;
        if (at >= len || p[at] != '\n')
            return cdc_tz_free(z), (void *)tz_bad(err, name, "no footer");
        for (e = at + 1; e < len && p[e] != '\n'; e++)
            ;
        if (e >= len || parse_rule((const char *)p + at + 1, e - at - 1,
                                   &z->rule))
            return cdc_tz_free(z), (void *)tz_bad(err, name, "bad TZ rule "
                                                  "in the footer");
    }
    return z;
}

cdc_tz_t *cdc_tz_load(const char *name, cdc_err_t *err)
{
    const char *tzdir;
    char path[512];
    int32_t off;
    FILE *fp;
    unsigned char *buf;
    size_t len;
    cdc_tz_t *z;

    if (!strcmp(name, "UTC") || !strcmp(name, "Z"))
        return tz_fixed(name, 0);
    if (!cdc_tz_parse_offset(name, &off))
        return tz_fixed(name, off);
    if (!*name || strstr(name, "..") || name[0] == '/' || name[0] == '+' ||
        name[0] == '-') {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "bad time zone '%s'", name);
        return NULL;
    }
    /* the zone database where the C library reads it: TZDIR, else the
     * system's (Debian package tzdata) */
    tzdir = getenv("TZDIR");
    if (!tzdir || !*tzdir)
        tzdir = "/usr/share/zoneinfo";
    snprintf(path, sizeof(path), "%s/%s", tzdir, name);
    if (!(fp = fopen(path, "rb"))) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "unknown time zone '%s' (no %s)",
                    name, path);
        cdc_err_hint(err, "use an IANA name like Europe/Berlin, UTC, or a "
                     "fixed offset like +02:00; the zone files come from "
                     "TZDIR or the tzdata package");
        return NULL;
    }
    buf = cdc_xmalloc(TZ_MAX_FILE);
    len = fread(buf, 1, TZ_MAX_FILE, fp);
    if (ferror(fp) || len == TZ_MAX_FILE) {
        fclose(fp);
        free(buf);
        return (void *)tz_bad(err, name, len == TZ_MAX_FILE ? "zone file "
                              "larger than 1 MB" : strerror(errno));
    }
    fclose(fp);
    z = cdc_tz_parse(name, buf, len, err);
    free(buf);
    return z;
}
