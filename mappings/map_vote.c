/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map_vote.c - scores (confidence x weight, optional decay by age) and
 * the two rules that are a pure function of every source's current
 * value: vote and weighted_mean (docs/MAPPINGS.md, "Confidence, vote and
 * weighted mean").
 *
 * A decay 2^(-(now - t)/h) multiplies every candidate by the same factor
 * 2^(-now/h) at any one moment, so comparisons, sums and weighted means
 * do not depend on "now".  The stored score is therefore time-free: the
 * log2 score L = log2(c * w) + t/h.  Sums use terms relative to the
 * largest L of the field, quantised to integers, so that the sinks' SQL
 * and this code compute the same exact numbers.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/util.h"
#include "mappings/map_int.h"

const char *cdc_map_rule_name(cdc_mrule_t r)
{
    static const char *const names[] = {"latest", "priority", "weighted",
                                        "ordered", "vote", "weighted_mean"};
    return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

int cdc_map_scored(const cdc_map_field_t *f)
{
    return f->rule == CDC_RULE_WEIGHTED || CDC_RULE_STATEFUL(f->rule);
}

int cdc_map_refuse_per_source(const cdc_map_t *m, const char *source,
                              const char *sink, cdc_err_t *err)
{
    for (uint32_t i = 0; i < m->ntargets; i++) {
        const cdc_map_target_t *t = &m->targets[i];
        int writes = !source;
        for (uint32_t k = 0; k < m->nmappings && !writes; k++)
            writes = m->mappings[k].target == t &&
                     !strcmp(m->mappings[k].source->id, source);
        for (uint32_t f = 0; writes && f < t->nfields; f++) {
            const cdc_map_field_t *fd = &t->fields[f];
            if (fd->is_key || !fd->per_source)
                continue;
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: %s does not support "
                        "target '%s': field '%s' has rule %s%s, which needs "
                        "each source's current value per row", fd->where,
                        sink, t->name, fd->name, cdc_map_rule_name(fd->rule),
                        fd->rule == CDC_RULE_WEIGHTED
                            ? " with a mapping's confidence" : "");
            cdc_err_hint(err, "write this target with the PostgreSQL wide "
                         "sink (--sink postgres, which keeps %s_votes), or "
                         "use rule latest, priority or weighted without "
                         "confidence for the MySQL wide sink",
                         t->table);
            return -1;
        }
    }
    return 0;
}

/* 16 hex digits whose byte order is the numeric order of d */
static void dbl_hex(double d, char hex[17])
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    u = (u >> 63) ? ~u : u ^ ((uint64_t)1 << 63);
    cdc_hex(hex, u, 16)[0] = '\0';
}

void cdc_map_score(const cdc_map_field_t *f, const cdc_map_source_t *s,
                   int64_t conf6, int64_t commit_us, int snapshot,
                   char out[32], char hex[17])
{
    double w = s->weight * 1e6;
    int64_t w6 = llround(w < 0 ? 0 : w);
    __int128 p = (__int128)(conf6 < 0 ? 0 : conf6) * w6;
    int64_t sc = (int64_t)((p + 500000) / 1000000);

    if (!f->half_life_us) {
        /* every scored value of every change: no printf */
        char tmp[24];
        int k = 24;
        uint64_t u = (uint64_t)sc;
        do
            tmp[--k] = (char)('0' + u % 10);
        while (u /= 10);
        memcpy(out, tmp + k, (size_t)(24 - k));
        out[24 - k] = '\0';
        if (hex)
            cdc_hex(hex, (uint64_t)sc, 16)[0] = '\0';
        return;
    }
    {
        double t = snapshot ? 0.0 : (double)commit_us;
        double L = p == 0 ? -INFINITY
                          : log2((double)conf6 / 1e6 * ((double)w6 / 1e6)) +
                                t / (double)f->half_life_us;
        if (isinf(L))
            snprintf(out, 32, "-Infinity");
        else
            snprintf(out, 32, "%.17g", L);
        if (hex)
            dbl_hex(L, hex);
    }
}

/* the integer term of each entry (non-NULL ones; NULLs get 0) */
static void terms(const cdc_map_field_t *f, const cdc_vote_entry_t *e,
                  size_t n, __int128 *tm)
{
    if (!f->half_life_us) {
        for (size_t i = 0; i < n; i++)
            tm[i] = e[i].isnull ? 0 : (__int128)strtoll(e[i].score, NULL, 10);
        return;
    }
    {
        double lmax = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            double L = strtod(e[i].score, NULL);
            if (!e[i].isnull && L > lmax)
                lmax = L;
        }
        for (size_t i = 0; i < n; i++) {
            double L = strtod(e[i].score, NULL), d;
            tm[i] = 0;
            if (e[i].isnull || isinf(L))
                continue;
            d = L - lmax;
            if (d < -100)
                continue;
            tm[i] = (__int128)floor(pow(2.0, d) * 1e15 + 0.5);
        }
    }
}

static void i128_text(__int128 v, char *out, size_t n)
{
    char tmp[48];
    int k = 47, neg = v < 0;
    unsigned __int128 u = neg ? (unsigned __int128)0 - (unsigned __int128)v
                              : (unsigned __int128)v;
    tmp[k] = '\0';
    do
        tmp[--k] = (char)('0' + (int)(u % 10));
    while (u /= 10);
    if (neg)
        tmp[--k] = '-';
    snprintf(out, n, "%s", tmp + k);
}

/* numeric order of two entries' scores */
static int score_cmp(const cdc_map_field_t *f, const cdc_vote_entry_t *a,
                     const cdc_vote_entry_t *b)
{
    if (!f->half_life_us) {
        long long x = strtoll(a->score, NULL, 10), y = strtoll(b->score, NULL, 10);
        return x < y ? -1 : x > y;
    } else {
        double x = strtod(a->score, NULL), y = strtod(b->score, NULL);
        return x < y ? -1 : x > y;
    }
}

/* bytewise order of two values, a shorter prefix first (COLLATE "C") */
static int val_cmp(const cdc_vote_entry_t *a, const cdc_vote_entry_t *b)
{
    size_t m = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->val, b->val, m);
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int same_val(const cdc_vote_entry_t *a, const cdc_vote_entry_t *b)
{
    return a->len == b->len && !memcmp(a->val, b->val, a->len);
}

/* the field's scale: bigint 0, numeric(p,s) s */
static int field_scale(const cdc_map_field_t *f)
{
    return f->type == CDC_MT_DECIMAL ? f->scale : 0;
}

int cdc_vote_compute(const cdc_map_field_t *f, const cdc_vote_entry_t *e,
                     size_t n, cdc_vote_result_t *out)
{
    __int128 *tm = cdc_xcalloc(n + 1, sizeof(*tm));
    int win = -1, rc = 0;
    __int128 best = 0;

    memset(out, 0, sizeof(*out));
    out->top = -1;
    out->isnull = 1;
    if (!n) {
        free(tm);
        return 0;
    }
    out->set = 1;
    out->deleted = 1;
    for (size_t i = 0; i < n; i++)
        out->deleted &= e[i].deleted;
    terms(f, e, n, tm);
    if (f->rule == CDC_RULE_WEIGHTED) {
        /* the largest score, NULL or not, then the newest */
        for (size_t i = 0; i < n; i++) {
            int c = win < 0 ? 1 : score_cmp(f, &e[i], &e[win]);
            if (c > 0 || (c == 0 && strcmp(e[i].rank, e[win].rank) > 0))
                win = (int)i;
        }
        out->deleted = e[win].deleted;
        out->top = win;
        snprintf(out->total, sizeof(out->total), "%s", e[win].score);
        if (!e[win].isnull) {
            out->isnull = 0;
            out->len = e[win].len;
            out->val = cdc_xstrndup(e[win].val, e[win].len);
        }
        free(tm);
        return 0;
    }
    if (f->rule == CDC_RULE_VOTE) {
        for (size_t i = 0; i < n; i++) {
            __int128 sum = 0;
            int first = 1;
            if (e[i].isnull)
                continue;
            for (size_t j = 0; j < n; j++)
                if (!e[j].isnull && same_val(&e[i], &e[j])) {
                    sum += tm[j];
                    first &= j >= i;
                }
            if (!first)
                continue; /* this value was summed at its first entry */
            if (win < 0 || sum > best ||
                (sum == best && val_cmp(&e[i], &e[win]) < 0)) {
                win = (int)i;
                best = sum;
            }
        }
        if (win >= 0) {
            out->isnull = 0;
            out->len = e[win].len;
            out->val = cdc_xstrndup(e[win].val, e[win].len);
            i128_text(best, out->total, sizeof(out->total));
        }
    } else {
        __int128 num = 0, den = 0;
        int sc = field_scale(f);
        for (size_t i = 0; i < n && !rc; i++) {
            xv_t v;
            __int128 p;
            if (e[i].isnull)
                continue;
            if (cdc_xv_parse_dec(e[i].val, e[i].len, &v) ||
                cdc_xv_rescale(&v, sc) ||
                __builtin_mul_overflow(tm[i], v.m, &p) ||
                __builtin_add_overflow(num, p, &num) ||
                __builtin_add_overflow(den, tm[i], &den))
                rc = -1;
        }
        if (!rc && den > 0) {
            __int128 a = num < 0 ? -num : num, q;
            char digits[64], txt[80];
            size_t k = 0;
            if (__builtin_mul_overflow(a, 2, &a) ||
                __builtin_add_overflow(a, den, &a))
                rc = -1;
            else {
                q = a / (2 * den);
                if (num < 0)
                    q = -q;
                i128_text(q < 0 ? -q : q, digits, sizeof(digits));
                /* mantissa q at scale sc -> text */
                if (q < 0)
                    txt[k++] = '-';
                {
                    size_t nd = strlen(digits);
                    if ((int)nd <= sc) {
                        txt[k++] = '0';
                        txt[k++] = '.';
                        for (int z = 0; z < sc - (int)nd; z++)
                            txt[k++] = '0';
                        memcpy(txt + k, digits, nd);
                        k += nd;
                    } else {
                        memcpy(txt + k, digits, nd - (size_t)sc);
                        k += nd - (size_t)sc;
                        if (sc) {
                            txt[k++] = '.';
                            memcpy(txt + k, digits + nd - (size_t)sc,
                                   (size_t)sc);
                            k += (size_t)sc;
                        }
                    }
                }
                txt[k] = '\0';
                out->isnull = 0;
                out->val = cdc_xstrdup(txt);
                out->len = k;
            }
        }
        i128_text(den, out->total, sizeof(out->total));
        win = -2;
    }
    /* the entry the provenance names: the newest voter for the result
     * (weighted_mean: of every voter), else the newest entry */
    for (size_t i = 0; i < n; i++) {
        int voter = !e[i].isnull &&
                    (win == -2 || (win >= 0 && same_val(&e[i], &e[win])));
        int any_voter = win != -1 && !out->isnull;
        if (any_voter && !voter)
            continue;
        if (out->top < 0 || strcmp(e[i].rank, e[out->top].rank) > 0)
            out->top = (int)i;
    }
    free(tm);
    return rc;
}
