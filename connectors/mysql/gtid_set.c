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
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/util.h"
#include "connectors/mysql/failover.h"
#include "connectors/mysql/gtid_set.h"

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
    errno = 0;
    *out = strtoull(*p, &e, 10);
    *p = e;
    return errno == ERANGE ? -1 : 0;
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

/* 8-4-4-4-12 hex digits */
static int uuid_ok(const char *u)
{
    for (int i = 0; i < 36; i++)
        if ((i == 8 || i == 13 || i == 18 || i == 23) ? u[i] != '-'
                                                       : !isxdigit((unsigned char)u[i]))
            return 0;
    return 1;
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
        if (k != 36 || *p != ':' || !uuid_ok(uuid))
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
        if (!x) /* a uuid or a tag without GTIDs */
            return -1;
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

/* ---- canonical text, union, binary encoding ------------------------ */

static int cmp_sid(const void *x, const void *y)
{
    return strcmp(((const sid_t *)x)->key, ((const sid_t *)y)->key);
}

/* Sources sorted by uuid, then tag ("" first): the keys are
 * "uuid" / "uuid:tag" with 36-character lower-case uuids, so strcmp
 * orders them as MySQL orders (uuid bytes, tag). */
static void gset_sort(gset_t *g)
{
    if (g->n > 1)
        qsort(g->s, g->n, sizeof(*g->s), cmp_sid);
}

static void gset_text(gset_t *g, cdc_buf_t *out)
{
    const char *prev = NULL;
    cdc_buf_reset(out);
    gset_sort(g);
    for (size_t i = 0; i < g->n; i++) {
        const sid_t *s = &g->s[i];
        if (!s->niv)
            continue;
        if (!prev || strncmp(prev, s->key, 36)) {
            cdc_buf_printf(out, "%s%.36s", out->len ? "," : "", s->key);
            prev = s->key;
        }
        if (s->key[36] == ':')
            cdc_buf_printf(out, ":%s", s->key + 37);
        for (size_t k = 0; k < s->niv; k++) {
            cdc_buf_printf(out, ":%" PRIu64, s->iv[k].a);
            if (s->iv[k].b > s->iv[k].a)
                cdc_buf_printf(out, "-%" PRIu64, s->iv[k].b);
        }
    }
}

int cdc_gtid_set_norm(const char *text, cdc_buf_t *out, cdc_err_t *err)
{
    gset_t g;
    if (parse(text, 0, &g, "given", err) < 0)
        return -1;
    gset_text(&g, out);
    gset_free(&g);
    return 0;
}

int cdc_gtid_set_union(const char *a, const char *b, cdc_buf_t *out,
                       cdc_err_t *err)
{
    gset_t g;
    if (parse(a, 0, &g, "given", err) < 0)
        return -1;
    if (parse_mysql(b ? b : "", &g) < 0) {
        gset_free(&g);
        cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_FATAL,
                    "cannot parse the given GTID set '%.200s'", b);
        return -1;
    }
    gset_text(&g, out);
    gset_free(&g);
    return 0;
}

static void put_le(cdc_buf_t *b, uint64_t v, int n)
{
    uint8_t x[8];
    for (int i = 0; i < n; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    cdc_buf_put(b, x, (size_t)n);
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

#define GNO_MAX ((uint64_t)INT64_MAX - 1) /* the last GTID number */

int cdc_gtid_set_encode(const char *text, cdc_buf_t *out, cdc_err_t *err)
{
    gset_t g;
    uint64_t n = 0;
    int tagged = 0;

    if (parse(text, 0, &g, "given", err) < 0)
        return -1;
    gset_sort(&g);
    for (size_t i = 0; i < g.n; i++) {
        const sid_t *s = &g.s[i];
        if (!s->niv)
            continue;
        n++;
        tagged |= s->key[36] == ':';
        if (s->iv[s->niv - 1].b > GNO_MAX) {
            cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_FATAL,
                        "GTID %.36s:%" PRIu64 " is beyond the largest GTID "
                        "number %" PRIu64,
                        s->key, s->iv[s->niv - 1].b, GNO_MAX);
            gset_free(&g);
            return -1;
        }
    }
    put_le(out, tagged ? (1ULL << 56 | n << 8 | 1) : n, 8);
    for (size_t i = 0; i < g.n; i++) {
        const sid_t *s = &g.s[i];
        uint8_t u[16];
        if (!s->niv)
            continue;
        for (int k = 0, h = 0; k < 36; k++) {
            if (s->key[k] == '-')
                continue;
            int v = cdc_hexval((unsigned char)s->key[k]);
            u[h / 2] = (uint8_t)((h & 1) ? (u[h / 2] << 4 | v) : v);
            h++;
        }
        cdc_buf_put(out, u, 16);
        if (tagged) {
            const char *tag = s->key[36] == ':' ? s->key + 37 : "";
            size_t tl = strlen(tag);
            put_le(out, (uint64_t)tl << 1, 1);
            cdc_buf_put(out, tag, tl);
        }
        put_le(out, s->niv, 8);
        for (size_t k = 0; k < s->niv; k++) {
            put_le(out, s->iv[k].a, 8);
            put_le(out, s->iv[k].b + 1, 8);
        }
    }
    gset_free(&g);
    return 0;
}

static int bad_enc(cdc_err_t *err, size_t at, size_t len, const char *what)
{
    cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_FATAL,
                "malformed GTID set encoding: %s at byte %zu of %zu", what,
                at, len);
    return -1;
}

int cdc_gtid_set_decode(const uint8_t *p, size_t len, cdc_buf_t *out,
                        cdc_err_t *err)
{
    gset_t g = {0};
    size_t o = 8;
    uint64_t v, n;
    int fmt, rc = -1;

    cdc_buf_reset(out);
    if (len < 8)
        return bad_enc(err, 0, len, "shorter than the 8-byte source count");
    v = get_le64(p);
    fmt = (int)(v >> 56);
    if (fmt == 0)
        n = v;
    else if (fmt == 1 && (v & 0xff) == 1)
        n = v >> 8 & 0xffffffffffffULL;
    else
        return bad_enc(err, 0, len, "unknown format in the source count");
    /* every source takes at least 24 bytes */
    if (n > (len - o) / 24)
        return bad_enc(err, 0, len, "source count larger than the data");
    for (uint64_t i = 0; i < n; i++) {
        static const char hx[] = "0123456789abcdef";
        char key[80], *k = key;
        uint64_t niv, last = 0;
        sid_t *s;
        if (len - o < 16)
            goto trunc;
        for (int b = 0; b < 16; b++) {
            if (b == 4 || b == 6 || b == 8 || b == 10)
                *k++ = '-';
            *k++ = hx[p[o + b] >> 4];
            *k++ = hx[p[o + b] & 15];
        }
        *k = '\0';
        o += 16;
        if (fmt == 1) {
            size_t tl;
            if (len - o < 1)
                goto trunc;
            if (p[o] & 1) {
                bad_enc(err, o, len, "tag length longer than one byte");
                goto out;
            }
            tl = p[o] >> 1;
            if (tl > 32) {
                bad_enc(err, o, len, "tag longer than 32 characters");
                goto out;
            }
            o++;
            if (len - o < tl)
                goto trunc;
            if (tl) {
                *k++ = ':';
                for (size_t c = 0; c < tl; c++) {
                    unsigned char ch = p[o + c];
                    if (!(isalnum(ch) || ch == '_') || (!c && isdigit(ch))) {
                        bad_enc(err, o + c, len, "invalid tag character");
                        goto out;
                    }
                    *k++ = (char)tolower(ch);
                }
                *k = '\0';
            }
            o += tl;
        }
        if (len - o < 8)
            goto trunc;
        niv = get_le64(p + o);
        o += 8;
        if (niv > (len - o) / 16) {
            bad_enc(err, o - 8, len, "interval count larger than the data");
            goto out;
        }
        s = gset_sid(&g, key);
        for (uint64_t j = 0; j < niv; j++, o += 16) {
            uint64_t a = get_le64(p + o), e = get_le64(p + o + 8);
            if (a <= last || e <= a || e > (uint64_t)INT64_MAX) {
                bad_enc(err, o, len, "interval not ascending or empty");
                goto out;
            }
            sid_push(s, a, e - 1);
            last = e;
        }
    }
    if (o != len) {
        bad_enc(err, o, len, "bytes after the last source");
        goto out;
    }
    for (size_t i = 0; i < g.n; i++)
        sid_norm(&g.s[i]);
    gset_text(&g, out);
    rc = 0;
    goto out;
trunc:
    bad_enc(err, o, len, "truncated");
out:
    gset_free(&g);
    return rc;
}

int cdc_my_dump_gtid_cmd(uint16_t flags, uint32_t server_id,
                         const char *file, uint64_t pos, const char *gtid_set,
                         cdc_buf_t *out, cdc_err_t *err)
{
    cdc_buf_t set = CDC_BUF_INIT;
    size_t fl = strlen(file ? file : "");

    if (cdc_gtid_set_encode(gtid_set, &set, err) < 0) {
        cdc_buf_free(&set);
        return -1;
    }
    cdc_buf_reset(out);
    put_le(out, CDC_MY_COM_BINLOG_DUMP_GTID, 1);
    put_le(out, flags, 2);
    put_le(out, server_id, 4);
    put_le(out, fl, 4);
    cdc_buf_put(out, file ? file : "", fl);
    put_le(out, pos, 8);
    put_le(out, set.len, 4);
    cdc_buf_put(out, set.p ? set.p : "", set.len);
    cdc_buf_free(&set);
    return 0;
}

void cdc_my_register_cmd(uint32_t server_id, const char *host,
                         uint16_t port, cdc_buf_t *out)
{
    size_t hl = strlen(host ? host : "");
    if (hl > 60)
        hl = 60;
    cdc_buf_reset(out);
    put_le(out, CDC_MY_COM_REGISTER_SLAVE, 1);
    put_le(out, server_id, 4);
    put_le(out, hl, 1);
    cdc_buf_put(out, host ? host : "", hl);
    put_le(out, 0, 1); /* user */
    put_le(out, 0, 1); /* password */
    put_le(out, port, 2);
    put_le(out, 0, 4); /* replication rank */
    put_le(out, 0, 4); /* master id */
}
