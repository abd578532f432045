/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redact.c - mask secrets in printed text (see redact.h for the rules).
 *
 * The conninfo pass follows libpq's conninfo_parse() (fe-connect.c): blanks
 * are isspace(); a keyword runs to a blank or '='; a quoted value ends at
 * the first unescaped '\''; an unquoted value ends at the first unescaped
 * blank.  tests/unit/t_redact.c checks, for every conninfo form, that
 * PQconninfoParse() reads the redacted text with the same options and only
 * the secret ones changed to the mask.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "cdc/buf.h"
#include "cdc/conf.h"
#include "cdc/redact.h"

static pthread_mutex_t learned_mu = PTHREAD_MUTEX_INITIALIZER;
static char **learned;
static size_t nlearned;

int cdc_redact_is_secret_word(const char *kw, size_t n)
{
    static const char *words[] = {"password", "passwd", "secret", "token",
                                  NULL};
    char low[64];
    size_t i, start = 0;

    if (n == 0 || n >= sizeof(low))
        return 0;
    for (i = 0; i < n; i++) {
        low[i] = (char)tolower((unsigned char)kw[i]);
        if (low[i] == '.')
            start = i + 1;
    }
    low[n] = '\0';
    if (!strcmp(low + start, "pwd"))
        return 1;
    for (i = 0; words[i]; i++)
        if (strstr(low + start, words[i]))
            return 1;
    return 0;
}

/* ---- learned secrets ----------------------------------------------------- */

static void learn(const char *s, size_t n)
{
    if (n < CDC_REDACT_MIN_LEARN)
        return;
    pthread_mutex_lock(&learned_mu);
    for (size_t i = 0; i < nlearned; i++)
        if (strlen(learned[i]) == n && !memcmp(learned[i], s, n)) {
            pthread_mutex_unlock(&learned_mu);
            return;
        }
    learned = cdc_xrealloc(learned, (nlearned + 1) * sizeof(*learned));
    learned[nlearned++] = cdc_xstrndup(s, n);
    pthread_mutex_unlock(&learned_mu);
}

void cdc_redact_forget(void)
{
    pthread_mutex_lock(&learned_mu);
    for (size_t i = 0; i < nlearned; i++)
        free(learned[i]);
    free(learned);
    learned = NULL;
    nlearned = 0;
    pthread_mutex_unlock(&learned_mu);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* the secret as a URI parser hands it on: %XX decoded */
static void learn_pct(const char *s, size_t n)
{
    char *d = cdc_xstrndup(s, n);
    size_t j = 0;

    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n &&
            (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)s[i + 2])) >= 0) {
            d[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else
            d[j++] = s[i];
    }
    learn(d, j);
    free(d);
}

/* ---- scanners ------------------------------------------------------------- */

/* Length of a URI scheme followed by "://" at s (0 if none). */
static size_t uri_scheme(const char *s)
{
    size_t n = 0;

    if (!isalpha((unsigned char)s[0]))
        return 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '+' || s[n] == '-' ||
           s[n] == '.')
        n++;
    return strncmp(s + n, "://", 3) ? 0 : n + 3;
}

/* End of the URI token that starts at s: the first blank or quote. */
static const char *uri_end(const char *s)
{
    return s + strcspn(s, " \t\r\n\f\v'\"`<>");
}

/* The password of the URI whose authority starts at a (after "://"),
 * token end e: [*pw, *pwe) or 0.  *at is the '@' that ends the user info. */
static int uri_password(const char *a, const char *e, const char **pw,
                        const char **pwe, const char **at)
{
    const char *last = NULL, *colon;

    for (const char *p = a; p < e; p++)
        if (*p == '@')
            last = p;
    if (!last)
        return 0;
    *at = last;
    colon = memchr(a, ':', (size_t)(last - a));
    if (!colon)
        return 0;
    *pw = colon + 1;
    *pwe = last;
    return 1;
}

/* libpq value grammar at v: returns the end of the value. */
static const char *conninfo_value_end(const char *v)
{
    /* '...' as libpq quotes; "..." as JSON or SASL-style values */
    if (*v == '\'' || *v == '"') {
        char q = *v;
        for (v++; *v; v++) {
            if (*v == '\\' && v[1])
                v++;
            else if (*v == q)
                return v + 1;
        }
        return v;
    }
    for (; *v && !isspace((unsigned char)*v); v++)
        if (*v == '\\' && v[1])
            v++;
    return v;
}

static int kwchar(int c)
{
    return isalnum(c) || c == '_' || c == '.' || c == '-';
}

/*
 * A secret pair at p: keyword [blanks] ('=' | ':') [blanks] value.  On a
 * match, vs and ve bound the value and 1 is returned.  A keyword may sit in
 * double quotes ("password": "x").  Inside a URI query (in_query), a value
 * also ends at '&' or '#'.
 */
static int secret_pair(const char *text, const char *p, int in_query,
                       const char **vs, const char **ve)
{
    const char *k = p, *ke, *q;
    int quoted = 0;

    /* a keyword starts a word; after '-' too (--sasl-password=) */
    if (p > text && ((kwchar((unsigned char)p[-1]) && p[-1] != '-') ||
                     p[-1] == '\\'))
        return 0;
    if (*k == '"') {
        quoted = 1;
        k++;
    }
    if (!isalpha((unsigned char)*k) && *k != '_')
        return 0;
    for (ke = k; kwchar((unsigned char)*ke); ke++)
        ;
    if (!cdc_redact_is_secret_word(k, (size_t)(ke - k)))
        return 0;
    q = ke;
    if (quoted) {
        if (*q != '"')
            return 0;
        q++;
    }
    while (*q == ' ' || *q == '\t')
        q++;
    if (*q != '=' && *q != ':')
        return 0;
    q++;
    while (isspace((unsigned char)*q) && !in_query)
        q++;
    *vs = q;
    if (in_query)
        *ve = q + strcspn(q, "&# \t\r\n'\"`<>");
    else
        *ve = conninfo_value_end(q);
    return 1;
}

/* Pass 1: learned secrets, longest first so a secret that contains
 * another goes whole. */
static char *mask_learned(const char *text)
{
    cdc_buf_t b = CDC_BUF_INIT;
    const char *p = text;

    pthread_mutex_lock(&learned_mu);
    if (!nlearned) {
        pthread_mutex_unlock(&learned_mu);
        return cdc_xstrdup(text);
    }
    cdc_buf_puts(&b, "");
    while (*p) {
        size_t best = 0;
        for (size_t i = 0; i < nlearned; i++) {
            size_t n = strlen(learned[i]);
            if (n > best && learned[i][0] == *p && !strncmp(p, learned[i], n))
                best = n;
        }
        if (best) {
            cdc_buf_puts(&b, CDC_REDACT_MASK);
            p += best;
        } else
            cdc_buf_putc(&b, *p++);
    }
    pthread_mutex_unlock(&learned_mu);
    return b.p;
}

char *cdc_redact(const char *text)
{
    cdc_buf_t b = CDC_BUF_INIT;
    char *src = mask_learned(text ? text : "");
    const char *p = src, *uend = NULL;

    cdc_buf_puts(&b, "");
    while (*p) {
        const char *vs, *ve, *pw, *pwe, *at;
        size_t sl;

        if (uend && p >= uend)
            uend = NULL;
        /* scheme://user:password@host... */
        if (!uend && (p == src || !isalnum((unsigned char)p[-1])) &&
            (sl = uri_scheme(p)) > 0) {
            const char *e = uri_end(p);
            if (uri_password(p + sl, e, &pw, &pwe, &at)) {
                cdc_buf_put(&b, p, (size_t)(pw - p));
                cdc_buf_puts(&b, CDC_REDACT_MASK);
                p = pwe;
            } else {
                cdc_buf_put(&b, p, sl);
                p += sl;
            }
            uend = e;
            continue;
        }
        if (secret_pair(src, p, uend && (p[-1] == '?' || p[-1] == '&'),
                        &vs, &ve)) {
            cdc_buf_put(&b, p, (size_t)(vs - p));
            cdc_buf_puts(&b, CDC_REDACT_MASK);
            p = ve;
            continue;
        }
        cdc_buf_putc(&b, *p++);
    }
    free(src);
    return b.p;
}

/* ---- learning from configuration ---------------------------------------- */

static void learn_conninfo(const char *dsn)
{
    char *perr = NULL;
    PQconninfoOption *ci = PQconninfoParse(dsn, &perr);

    if (!ci) {
        /* not valid conninfo: still take what the grammar finds */
        PQfreemem(perr);
        for (const char *p = dsn; *p; p++) {
            const char *vs, *ve;
            if (secret_pair(dsn, p, 0, &vs, &ve)) {
                learn(vs, (size_t)(ve - vs));
                p = ve - (ve > p);
            }
        }
        return;
    }
    for (PQconninfoOption *o = ci; o->keyword; o++)
        if (o->val && cdc_redact_is_secret_word(o->keyword,
                                                strlen(o->keyword)))
            learn(o->val, strlen(o->val));
    PQconninfoFree(ci);
}

void cdc_redact_learn(const char *key, const char *val)
{
    size_t kl, sl;

    if (!key || !val || !*val)
        return;
    kl = strlen(key);
    if (kl >= 3 && !strcasecmp(key + kl - 3, "dsn")) {
        const char *pw, *pwe, *at = NULL;
        if ((sl = uri_scheme(val)) > 0) {
            const char *e = val + strlen(val);
            if (uri_password(val + sl, e, &pw, &pwe, &at)) {
                learn(pw, (size_t)(pwe - pw));
                learn_pct(pw, (size_t)(pwe - pw));
            }
            /* postgresql://h/db?password=x */
            for (const char *p = at ? at : val; *p; p++) {
                const char *vs, *ve;
                if ((*p == '?' || *p == '&') &&
                    secret_pair(val, p + 1, 1, &vs, &ve)) {
                    learn(vs, (size_t)(ve - vs));
                    learn_pct(vs, (size_t)(ve - vs));
                }
            }
        } else
            learn_conninfo(val);
        return;
    }
    /* a *_file key names where the secret is, not the secret */
    if (cdc_conf_is_secret(key) &&
        !(kl > 5 && !strcasecmp(key + kl - 5, "_file")))
        learn(val, strlen(val));
}
