/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gtid_set.c - does a server's binlog hold every GTID we delivered?
 *
 * The failover check (failover.c): before the source follows another
 * server, the checkpoint's GTID state must be contained in the server's
 * (@@gtid_binlog_pos on MariaDB, @@gtid_executed on MySQL).  What is not
 * contained was delivered from the old primary but never reached the
 * candidate: a lost-write split brain, reported with the missing range.
 *
 *   MariaDB  "d-s-n,..." is a position per replication domain d (server s,
 *            sequence n; sequences grow within a domain under
 *            gtid_strict_mode).  need ⊆ have when, for every domain of
 *            need, have has the domain with a sequence >= need's.  The
 *            missing range of a domain is "d-s-(m+1)..d-s-n".
 *   MySQL    "uuid[:tag]:a-b:c,..." is a set of intervals per source uuid
 *            (and tag, 8.3+).  need ⊆ have by interval arithmetic; the
 *            missing part is printed as a GTID set.
 *
 * Pure: no I/O.  Texts come from the servers or the checkpoint, so they
 * are parsed strictly and a malformed one is an error, never "empty".
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/util.h"
#include "connectors/mysql/failover.h"

typedef struct ivl {
    uint64_t a, b; /* inclusive */
} ivl_t;

typedef struct sid {
    char key[80]; /* MySQL: lower-case uuid[:tag]; MariaDB: domain */
    uint64_t domain, server; /* MariaDB */
    ivl_t *iv;
    size_t niv, cap;
} sid_t;

typedef struct gset {
    sid_t *s;
    size_t n;
} gset_t;

static void gset_free(gset_t *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->s[i].iv);
    free(g->s);
    g->s = NULL;
    g->n = 0;
}

static sid_t *gset_sid(gset_t *g, const char *key)
{
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->s[i].key, key))
            return &g->s[i];
    g->s = cdc_xrealloc(g->s, (g->n + 1) * sizeof(*g->s));
    sid_t *s = &g->s[g->n++];
    memset(s, 0, sizeof(*s));
    snprintf(s->key, sizeof(s->key), "%s", key);
    return s;
}

static void sid_push(sid_t *s, uint64_t a, uint64_t b)
{
    if (s->niv == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4;
        s->iv = cdc_xrealloc(s->iv, s->cap * sizeof(*s->iv));
    }
    s->iv[s->niv].a = a;
    s->iv[s->niv].b = b;
    s->niv++;
}

static int cmp_ivl(const void *x, const void *y)
{
    const ivl_t *p = x, *q = y;
    return p->a < q->a ? -1 : p->a > q->a;
}

/* sort and merge a sid's intervals */
static void sid_norm(sid_t *s)
{
    size_t w = 0;
    if (!s->niv)
        return;
    qsort(s->iv, s->niv, sizeof(*s->iv), cmp_ivl);
    for (size_t k = 1; k < s->niv; k++) {
        if (s->iv[k].a <= s->iv[w].b + 1) {
            if (s->iv[k].b > s->iv[w].b)
                s->iv[w].b = s->iv[k].b;
        } else {
            s->iv[++w] = s->iv[k];
        }
    }
    s->niv = w + 1;
}

static void skip_ws(const char **p)
{
    while (isspace((unsigned char)**p))
        (*p)++;
}

/* After an item: 0 at the end, 1 after a ',' (more follow), -1 else. */
static int next_item(const char **p)
{
    skip_ws(p);
    if (!**p)
        return 0;
    if (*(*p)++ != ',')
        return -1;
    skip_ws(p);
    return 1;
}

static int num(const char **p, uint64_t *out)
{
    char *e;
    if (!isdigit((unsigned char)**p))
        return -1;
    *out = strtoull(*p, &e, 10);
    *p = e;
    return 0;
}

static int parse_mariadb(const char *t, gset_t *g)
{
    const char *p = t;
    int more;
    skip_ws(&p);
    while (*p) {
        uint64_t d, s, n;
        char key[24];
        if (num(&p, &d) || *p++ != '-' || num(&p, &s) || *p++ != '-' ||
            num(&p, &n))
            return -1;
        snprintf(key, sizeof(key), "%" PRIu64, d);
        sid_t *x = gset_sid(g, key);
        if (x->niv) /* one position per domain */
            return -1;
        x->domain = d;
        x->server = s;
        sid_push(x, 1, n);
        if ((more = next_item(&p)) <= 0)
            return more;
    }
    return 0;
}

static int parse_mysql(const char *t, gset_t *g)
{
    const char *p = t;
    int more;
    skip_ws(&p);
    while (*p) {
        char uuid[37], key[80];
        size_t k = 0;
        sid_t *x = NULL;
        while (k < 36 && (isxdigit((unsigned char)*p) || *p == '-'))
            uuid[k++] = (char)tolower((unsigned char)*p++);
        uuid[k] = '\0';
        if (k != 36 || *p != ':')
            return -1;
        snprintf(key, sizeof(key), "%s", uuid);
        while (*p == ':') {
            p++;
            if (isdigit((unsigned char)*p)) {
                uint64_t a, b;
                if (num(&p, &a))
                    return -1;
                b = a;
                if (*p == '-') {
                    p++;
                    if (num(&p, &b) || b < a)
                        return -1;
                }
                if (a == 0)
                    return -1;
                if (!x)
                    x = gset_sid(g, key);
                sid_push(x, a, b);
            } else { /* a tag (MySQL 8.3+): applies to what follows */
                char tag[33];
                size_t n = 0;
                while ((isalnum((unsigned char)*p) || *p == '_') &&
                       n < sizeof(tag) - 1)
                    tag[n++] = (char)tolower((unsigned char)*p++);
                tag[n] = '\0';
                if (!n)
                    return -1;
                snprintf(key, sizeof(key), "%s:%s", uuid, tag);
                x = NULL;
            }
        }
        if ((more = next_item(&p)) < 0)
            return -1;
        if (!more)
            break;
    }
    for (size_t i = 0; i < g->n; i++)
        sid_norm(&g->s[i]);
    return 0;
}

static int parse(const char *t, int mariadb, gset_t *g, const char *what,
                 cdc_err_t *err)
{
    memset(g, 0, sizeof(*g));
    if ((mariadb ? parse_mariadb : parse_mysql)(t ? t : "", g) < 0) {
        gset_free(g);
        cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_FATAL,
                    "cannot parse the %s GTID %s '%.200s'", what,
                    mariadb ? "position" : "set", t ? t : "");
        return -1;
    }
    return 0;
}

/* Append need's intervals of x not covered by y (may be NULL). */
static void sid_minus(const sid_t *x, const sid_t *y, cdc_buf_t *out,
                      int *first)
{
    int any = 0;
    for (size_t i = 0; i < x->niv; i++) {
        uint64_t a = x->iv[i].a, b = x->iv[i].b;
        for (size_t k = 0; y && k < y->niv && a <= b; k++) {
            if (y->iv[k].b < a || y->iv[k].a > b)
                continue;
            if (y->iv[k].a > a) {
                if (!any++)
                    cdc_buf_printf(out, "%s%s", *first ? "" : ",", x->key);
                *first = 0;
                cdc_buf_printf(out, ":%" PRIu64, a);
                if (y->iv[k].a - 1 > a)
                    cdc_buf_printf(out, "-%" PRIu64, y->iv[k].a - 1);
            }
            a = y->iv[k].b + 1;
            if (y->iv[k].b == UINT64_MAX)
                a = b + 1;
        }
        if (a <= b) {
            if (!any++)
                cdc_buf_printf(out, "%s%s", *first ? "" : ",", x->key);
            *first = 0;
            cdc_buf_printf(out, ":%" PRIu64, a);
            if (b > a)
                cdc_buf_printf(out, "-%" PRIu64, b);
        }
    }
}

int cdc_gtid_missing(const char *need, const char *have, int mariadb,
                     cdc_buf_t *out, cdc_err_t *err)
{
    gset_t n, h;
    int first = 1;

    cdc_buf_reset(out);
    if (parse(need, mariadb, &n, "checkpoint's", err) < 0)
        return -1;
    if (parse(have, mariadb, &h, "server's", err) < 0) {
        gset_free(&n);
        return -1;
    }
    for (size_t i = 0; i < n.n; i++) {
        const sid_t *x = &n.s[i], *y = NULL;
        for (size_t k = 0; k < h.n; k++)
            if (!strcmp(h.s[k].key, x->key))
                y = &h.s[k];
        if (!mariadb) {
            sid_minus(x, y, out, &first);
            continue;
        }
        uint64_t m = y ? y->iv[0].b : 0;
        if (m >= x->iv[0].b)
            continue;
        cdc_buf_printf(out, "%s%" PRIu64 "-%" PRIu64 "-%" PRIu64, first ? "" : ",",
                       x->domain, x->server, m + 1);
        if (x->iv[0].b > m + 1)
            cdc_buf_printf(out, "..%" PRIu64 "-%" PRIu64 "-%" PRIu64,
                           x->domain, x->server, x->iv[0].b);
        first = 0;
    }
    gset_free(&n);
    gset_free(&h);
    return out->len > 0;
}
