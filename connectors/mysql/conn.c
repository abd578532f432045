/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conn.c - the one MySQL/MariaDB connection layer (conn.h): DSN parsing,
 * the server list, the settings of a configuration prefix, TLS and the
 * connect.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include "cdc/buf.h"
#include "cdc/util.h"
#include "connectors/mysql/conn.h"

/* ---- small helpers ------------------------------------------------------ */

/* Percent-decoded copy of s[0..n); NULL on a bad escape or a %00. */
static char *pct_decode(const char *s, size_t n)
{
    char *o = cdc_xmalloc(n + 1), *w = o;

    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *w++ = s[i];
            continue;
        }
        int hi = i + 2 < n ? cdc_hexval((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < n ? cdc_hexval((unsigned char)s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(o);
            return NULL;
        }
        *w++ = (char)(hi * 16 + lo);
        i += 2;
    }
    *w = '\0';
    return o;
}

/* s decoded in place of itself (freed); NULL on a bad escape. */
static char *pct_take(char *s)
{
    char *d = pct_decode(s, strlen(s));
    free(s);
    return d;
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? cdc_xstrdup(v) : NULL;
}

int cdc_my_ssl_mode(const char *v)
{
    static const char *names[] = {"disabled", "preferred", "required",
                                  "verify_ca", "verify_identity"};
    for (int i = 0; i < 5; i++) {
        size_t k = 0;
        /* the MySQL client spelling VERIFY-CA too */
        while (names[i][k] && v[k] &&
               (tolower((unsigned char)v[k]) == names[i][k] ||
                (v[k] == '-' && names[i][k] == '_')))
            k++;
        if (!names[i][k] && !v[k])
            return CDC_MY_SSL_DISABLED + i;
    }
    return -1;
}

/* ---- the server list ---------------------------------------------------- */

void cdc_my_hosts_add(cdc_my_host_t **hosts, int *n, const char *host,
                      unsigned port)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp((*hosts)[i].host, host) && (*hosts)[i].port == port)
            return; /* listed already */
    *hosts = cdc_xrealloc(*hosts, (size_t)(*n + 1) * sizeof(**hosts));
    (*hosts)[*n].host = cdc_xstrdup(host);
    (*hosts)[*n].port = port;
    (*n)++;
}

void cdc_my_hosts_free(cdc_my_host_t *hosts, int n)
{
    for (int i = 0; i < n; i++)
        free(hosts[i].host);
    free(hosts);
}

/*
 * One "host[:port]" or "[v6][:port]" entry s[0..n) (blanks around it
 * ignored) -> *host (malloc'd), *port (defport when absent).  0 or -1.
 */
static int host_entry(const char *s, size_t n, unsigned defport, char **host,
                      unsigned *port)
{
    const char *h, *c = NULL;
    size_t hl;

    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (n && *s == '[') {
        const char *rb = memchr(s, ']', n);
        if (!rb || rb == s + 1)
            return -1;
        h = s + 1;
        hl = (size_t)(rb - h);
        if (rb + 1 < s + n) {
            if (rb[1] != ':')
                return -1;
            c = rb + 1;
        }
    } else {
        c = memchr(s, ':', n);
        h = s;
        hl = c ? (size_t)(c - s) : n;
        /* a bare IPv6 address has several colons: it needs brackets */
        if (c && memchr(c + 1, ':', n - (size_t)(c - s) - 1))
            return -1;
    }
    if (!hl || memchr(h, '@', hl) || memchr(h, '/', hl))
        return -1;
    *port = defport;
    if (c) {
        size_t pl = (size_t)(s + n - c - 1);
        unsigned long v = 0;
        if (!pl || pl > 5)
            return -1;
        for (size_t i = 0; i < pl; i++) {
            if (!isdigit((unsigned char)c[1 + i]))
                return -1;
            v = v * 10 + (unsigned long)(c[1 + i] - '0');
        }
        if (v == 0 || v > 65535)
            return -1;
        *port = (unsigned)v;
    }
    *host = cdc_xstrndup(h, hl);
    return 0;
}

/* The comma-separated list s[0..n) appended to the hosts. */
static int hosts_list(const char *s, size_t n, unsigned defport,
                      int decode, cdc_my_host_t **hosts, int *nh,
                      const char *what, cdc_err_t *err)
{
    const char *p = s, *end = s + n;

    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        char *host = NULL;
        unsigned port;
        if (host_entry(p, (size_t)(e - p), defport, &host, &port) < 0 ||
            (decode && !(host = pct_take(host)))) {
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "%s: bad server '%.*s'", what, (int)(e - p), p);
            cdc_err_hint(err, "use host:port, [ipv6]:port, several "
                              "separated by commas (port 1 to 65535)");
            return -1;
        }
        cdc_my_hosts_add(hosts, nh, host, port);
        free(host);
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int cdc_my_hosts_parse(const char *list, unsigned defport,
                       cdc_my_host_t **hosts, int *n, cdc_err_t *err)
{
    if (!list || !*list)
        return 0;
    return hosts_list(list, strlen(list), defport, 0, hosts, n,
                      "mysql server list", err);
}

/* ---- the DSN ------------------------------------------------------------ */

void cdc_my_dsn_free(cdc_my_dsn_t *d)
{
    free(d->user);
    free(d->pass);
    free(d->db);
    cdc_my_hosts_free(d->hosts, d->nhosts);
    free(d->ssl_ca);
    free(d->ssl_cert);
    free(d->ssl_key);
    memset(d, 0, sizeof(*d));
    d->ssl_mode = CDC_MY_SSL_UNSET;
}

static int dsn_params(cdc_my_dsn_t *d, const char *q, const char *key,
                      cdc_err_t *err)
{
    char *qs = cdc_xstrdup(q), *save = NULL;
    int rc = 0;

    for (char *kv = strtok_r(qs, "&", &save); kv && !rc;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '='), *val;
        if (eq)
            *eq = '\0';
        val = pct_decode(eq ? eq + 1 : "", eq ? strlen(eq + 1) : 0);
        if (!val) {
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "%s: bad %%-escape in the value of '%s'", key, kv);
            cdc_err_hint(err, "write a '%%' as %%25");
            rc = -1;
            break;
        }
        if (!strcasecmp(kv, "ssl-mode") || !strcasecmp(kv, "ssl_mode") ||
            !strcasecmp(kv, "sslmode")) {
            d->ssl_mode = cdc_my_ssl_mode(val);
            if (d->ssl_mode < 0) {
                cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                            "%s: unknown ssl-mode '%s'", key, val);
                cdc_err_hint(err, "use disabled, preferred, required, "
                                  "verify_ca or verify_identity");
                rc = -1;
            }
        } else if (!strcasecmp(kv, "ssl-ca") || !strcasecmp(kv, "ssl_ca")) {
            set_str(&d->ssl_ca, val);
        } else if (!strcasecmp(kv, "ssl-cert") ||
                   !strcasecmp(kv, "ssl_cert")) {
            set_str(&d->ssl_cert, val);
        } else if (!strcasecmp(kv, "ssl-key") || !strcasecmp(kv, "ssl_key")) {
            set_str(&d->ssl_key, val);
        } else {
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "%s: unknown parameter '%s'", key, kv);
            cdc_err_hint(err, "supported: ssl-mode, ssl-ca, ssl-cert, "
                              "ssl-key; other settings are configuration "
                              "keys");
            rc = -1;
        }
        free(val);
    }
    free(qs);
    return rc;
}

int cdc_my_dsn_parse(const char *dsn, const char *key, cdc_my_dsn_t *d,
                     cdc_err_t *err)
{
    const char *p, *at = NULL, *hp, *hend, *slash, *qm, *end;

    memset(d, 0, sizeof(*d));
    d->ssl_mode = CDC_MY_SSL_UNSET;
    if (!strncmp(dsn, "mysql://", 8))
        p = dsn + 8;
    else if (!strncmp(dsn, "mariadb://", 10))
        p = dsn + 10;
    else {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "%s must start with mysql:// or mariadb://", key);
        cdc_err_hint(err, "use mysql://user:password@host:port[/database]");
        return -1;
    }
    end = p + strlen(p);
    /* the user info ends at the last '@' (a password may hold '@') */
    for (const char *s = p; s < end; s++)
        if (*s == '@')
            at = s;
    if (at) {
        const char *uc = memchr(p, ':', (size_t)(at - p));
        d->user = pct_decode(p, (size_t)((uc ? uc : at) - p));
        if (uc)
            d->pass = pct_decode(uc + 1, (size_t)(at - uc - 1));
        if (!d->user || (uc && !d->pass)) {
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "%s: bad %%-escape in the user or password", key);
            cdc_err_hint(err, "write a '%%' as %%25 (%%XX with two hex "
                              "digits, not %%00)");
            goto fail;
        }
        if (!*d->user) {
            free(d->user);
            d->user = NULL;
        }
        hp = at + 1;
    } else {
        hp = p;
    }
    qm = strchr(hp, '?');
    if (!qm)
        qm = end;
    slash = memchr(hp, '/', (size_t)(qm - hp));
    hend = slash ? slash : qm;
    if (hend > hp &&
        hosts_list(hp, (size_t)(hend - hp), 0, 1, &d->hosts, &d->nhosts,
                   key, err) < 0)
        goto fail;
    if (slash && slash + 1 < qm) {
        d->db = pct_decode(slash + 1, (size_t)(qm - slash - 1));
        if (!d->db || strchr(d->db, '/')) {
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "%s: bad database name '%.*s'", key,
                        (int)(qm - slash - 1), slash + 1);
            cdc_err_hint(err, "one database after the host: "
                              "mysql://user:password@host:port/database");
            goto fail;
        }
    }
    if (*qm == '?' && dsn_params(d, qm + 1, key, err) < 0)
        goto fail;
    return 0;
fail:
    cdc_my_dsn_free(d);
    return -1;
}

/* ---- the settings of a prefix ------------------------------------------- */

void cdc_my_conf_free(cdc_my_conf_t *c)
{
    free(c->host);
    free(c->user);
    free(c->pass);
    free(c->db);
    cdc_my_hosts_free(c->hosts, c->nhosts);
    free(c->ssl_ca);
    free(c->ssl_cert);
    free(c->ssl_key);
    memset(c, 0, sizeof(*c));
}

static const char *kget(const cdc_conf_t *conf, const cdc_my_conf_t *c,
                        const char *name)
{
    char key[96];
    snprintf(key, sizeof(key), "%s.%s", c->prefix, name);
    return cdc_conf_get(conf, key, NULL);
}

static int kint(const cdc_conf_t *conf, const cdc_my_conf_t *c,
                const char *name, int64_t def, int64_t lo, int64_t hi,
                int64_t *out, cdc_err_t *err)
{
    char key[96];
    snprintf(key, sizeof(key), "%s.%s", c->prefix, name);
    if (cdc_conf_get_int(conf, key, def, out, err) < 0)
        return -1;
    if (*out < lo || *out > hi) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "%s = %lld is out of range", key, (long long)*out);
        cdc_err_hint(err, "use a value from %lld to %lld", (long long)lo,
                     (long long)hi);
        return -1;
    }
    return 0;
}

/*
 * One rule for every part: the DSN gives the defaults, and an explicit
 * <prefix>.* key (host, port, user, password, database, ssl.mode, ssl.ca,
 * ssl.cert, ssl.key) overrides the DSN's part (docs/CONFIG.md, mysql.dsn).
 */
int cdc_my_conf_load(cdc_my_conf_t *c, const cdc_conf_t *conf,
                     const char *prefix, cdc_err_t *err)
{
    cdc_my_dsn_t d;
    const char *v;
    char key[96];
    int64_t iv;
    int dsn_mode = CDC_MY_SSL_UNSET;

    memset(c, 0, sizeof(*c));
    snprintf(c->prefix, sizeof(c->prefix), "%s", prefix);
    c->host = cdc_xstrdup("127.0.0.1");
    c->user = cdc_xstrdup("root");
    c->port = 3306;
    snprintf(key, sizeof(key), "%s.dsn", prefix);
    v = cdc_conf_get(conf, key, NULL);
    if (v && *v) {
        if (cdc_my_dsn_parse(v, key, &d, err) < 0)
            goto fail;
        if (d.user)
            set_str(&c->user, d.user);
        if (d.pass)
            set_str(&c->pass, d.pass);
        if (d.db)
            set_str(&c->db, d.db);
        if (d.nhosts) {
            set_str(&c->host, d.hosts[0].host);
            if (d.hosts[0].port)
                c->port = d.hosts[0].port;
            for (int i = 1; i < d.nhosts; i++)
                cdc_my_hosts_add(&c->hosts, &c->nhosts, d.hosts[i].host,
                                 d.hosts[i].port ? d.hosts[i].port : 3306);
        }
        dsn_mode = d.ssl_mode;
        set_str(&c->ssl_ca, d.ssl_ca);
        set_str(&c->ssl_cert, d.ssl_cert);
        set_str(&c->ssl_key, d.ssl_key);
        cdc_my_dsn_free(&d);
    }
    if ((v = kget(conf, c, "host")) && *v)
        set_str(&c->host, v);
    if ((v = kget(conf, c, "user")) && *v)
        set_str(&c->user, v);
    if ((v = kget(conf, c, "password")))
        set_str(&c->pass, v);
    if ((v = kget(conf, c, "database")) && *v)
        set_str(&c->db, v);
    if (kget(conf, c, "port")) {
        if (kint(conf, c, "port", 3306, 1, 65535, &iv, err) < 0)
            goto fail;
        c->port = (unsigned)iv;
    }
    if ((v = kget(conf, c, "ssl.ca")) && *v)
        set_str(&c->ssl_ca, v);
    if ((v = kget(conf, c, "ssl.cert")) && *v)
        set_str(&c->ssl_cert, v);
    if ((v = kget(conf, c, "ssl.key")) && *v)
        set_str(&c->ssl_key, v);
    /* with a CA, verify the server certificate and host name unless told
     * otherwise; without one, use TLS when offered */
    c->ssl_mode = c->ssl_ca ? CDC_MY_SSL_VERIFY_IDENTITY
                            : CDC_MY_SSL_PREFERRED;
    if (dsn_mode != CDC_MY_SSL_UNSET)
        c->ssl_mode = dsn_mode;
    if ((v = kget(conf, c, "ssl.mode")) && *v) {
        c->ssl_mode = cdc_my_ssl_mode(v);
        if (c->ssl_mode < 0) {
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "%s.ssl.mode: unknown mode '%s'", prefix, v);
            cdc_err_hint(err, "use disabled, preferred, required, "
                              "verify_ca or verify_identity");
            goto fail;
        }
    }
    if (kint(conf, c, "connect_timeout_ms", 10000, 100, 3600000, &iv, err) < 0)
        goto fail;
    c->connect_timeout_s = (unsigned)((iv + 999) / 1000);
    return 0;
fail:
    cdc_my_conf_free(c);
    return -1;
}

/* ---- connecting --------------------------------------------------------- */

int cdc_my_retriable(unsigned e)
{
    if (e >= 2000 && e < 3000) /* client-side: CR_SERVER_LOST, ... */
        return e != CR_SSL_CONNECTION_ERROR;
    switch (e) {
    case ER_SERVER_SHUTDOWN:
    case ER_CON_COUNT_ERROR:
    case ER_ABORTING_CONNECTION:
    case ER_NET_READ_ERROR:
    case ER_NET_READ_INTERRUPTED:
    case ER_NET_ERROR_ON_WRITE:
    case ER_NET_WRITE_INTERRUPTED:
    case ER_CONNECTION_KILLED:
        return 1;
    default:
        return 0;
    }
}

int cdc_my_fail(MYSQL *m, const char *prefix, const char *host,
                unsigned port, const char *what, cdc_err_t *err)
{
    unsigned e = mysql_errno(m);
    int retry = cdc_my_retriable(e);

    if (e == ER_ACCESS_DENIED_ERROR || e == ER_DBACCESS_DENIED_ERROR) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "%s: mysql %s:%u: %s", what, host, port, mysql_error(m));
        cdc_err_hint(err, "check %s.user / %s.password (or the "
                          "user:password part of %s.dsn)",
                     prefix, prefix, prefix);
        return -1;
    }
    cdc_err_set(err, retry ? CDC_EXIT_UNAVAILABLE : CDC_EXIT_FAIL,
                retry ? CDC_ERR_F_RETRIABLE : CDC_ERR_F_FATAL,
                "%s: mysql %s:%u: %s (error %u)", what, host, port,
                mysql_error(m), e);
    if (e == CR_CONN_HOST_ERROR || e == CR_CONNECTION_ERROR ||
        e == CR_UNKNOWN_HOST)
        cdc_err_hint(err, "is the server running and reachable at "
                          "%s:%u? (%s.dsn)", host, port, prefix);
    return -1;
}

static MYSQL *connect_once(const cdc_my_conf_t *c, const char *host,
                           unsigned port, unsigned read_timeout_s, int flags,
                           int use_ssl, const char *what, cdc_err_t *err)
{
    MYSQL *m = mysql_init(NULL);
    unsigned ct = c->connect_timeout_s ? c->connect_timeout_s : 10;
    unsigned long maxpkt = 1UL << 30;
    unsigned proto = MYSQL_PROTOCOL_TCP; /* "localhost" too: host:port */
    my_bool on = 1, off = 0;

    if (!m) {
        cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                    "mysql_init failed (out of memory)");
        return NULL;
    }
    mysql_options(m, MYSQL_OPT_PROTOCOL, &proto);
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    if (read_timeout_s) {
        mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &read_timeout_s);
        mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &read_timeout_s);
    }
    mysql_options(m, MYSQL_OPT_MAX_ALLOWED_PACKET, &maxpkt);
    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(m, MYSQL_READ_DEFAULT_GROUP, NULL);
    if (use_ssl) {
        if (c->ssl_ca)
            mysql_options(m, MYSQL_OPT_SSL_CA, c->ssl_ca);
        if (c->ssl_cert)
            mysql_options(m, MYSQL_OPT_SSL_CERT, c->ssl_cert);
        if (c->ssl_key)
            mysql_options(m, MYSQL_OPT_SSL_KEY, c->ssl_key);
        mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &on);
        /* libmariadb verifies the chain and the host name together */
        mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT,
                      c->ssl_mode >= CDC_MY_SSL_VERIFY_CA ? &on : &off);
    }
    if (!mysql_real_connect(m, host, c->user, c->pass,
                            (flags & CDC_MY_NO_DB) ? NULL : c->db, port, NULL,
                            (flags & CDC_MY_FOUND_ROWS) ? CLIENT_FOUND_ROWS
                                                        : 0)) {
        cdc_my_fail(m, c->prefix, host, port, what, err);
        if (mysql_errno(m) == CR_SSL_CONNECTION_ERROR ||
            (use_ssl && strstr(mysql_error(m), "SSL"))) {
            err->code = CDC_EXIT_CONFIG;
            err->flags = CDC_ERR_F_FATAL;
            cdc_err_hint(err, "check %s.ssl.mode/ca/cert/key (or the DSN's "
                              "ssl-mode) and the server's TLS setup "
                              "(have_ssl)", c->prefix);
        }
        mysql_close(m);
        return NULL;
    }
    return m;
}

int cdc_my_greeting_tls(const unsigned char *p, size_t n)
{
    size_t i = 1;

    if (n < 1 || p[0] != 10)
        return -1;
    while (i < n && p[i]) /* server version, NUL-terminated */
        i++;
    /* NUL, thread id (4), scramble part 1 (8), filler (1), caps low (2) */
    if (i >= n || n - i < 1 + 4 + 8 + 1 + 2)
        return -1;
    i += 1 + 4 + 8 + 1;
    return (p[i] | p[i + 1] << 8) & 0x0800 ? 1 : 0; /* CLIENT_SSL */
}

/* Reads the first packet of host:port within timeout_s and closes the
 * connection without answering it.  1 TLS offered, 0 not, -1 unknown
 * (cannot connect, timeout, not a v10 greeting). */
static int probe_tls(const char *host, unsigned port, unsigned timeout_s)
{
    struct addrinfo hints = {0}, *ai = NULL;
    unsigned char buf[1024];
    size_t got = 0, want = 4;
    char sport[16];
    int fd = -1, rc = -1;

    hints.ai_socktype = SOCK_STREAM;
    snprintf(sport, sizeof(sport), "%u", port);
    if (getaddrinfo(host, sport, &hints, &ai) || !ai)
        return -1;
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        goto out;
    while (got < want) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        ssize_t r;
        if (poll(&pf, 1, (int)timeout_s * 1000) <= 0)
            goto out;
        r = recv(fd, buf + got, want - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto out;
        got += (size_t)r;
        if (got == 4) { /* 3-byte length, sequence id */
            size_t len = buf[0] | buf[1] << 8 | (size_t)buf[2] << 16;
            if (len == 0 || len > sizeof(buf) - 4)
                goto out;
            want = 4 + len;
        }
    }
    rc = cdc_my_greeting_tls(buf + 4, want - 4);
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return rc;
}

/* libmariadb 3.3 treats MYSQL_OPT_SSL_ENFORCE as "use TLS when the server
 * offers it" and only refuses a plain connection when verification is
 * on: against a server without TLS it sends the login (user name and
 * password scramble) in clear text.  So with ssl.mode=required the
 * server's greeting is read first, on a connection of its own that is
 * closed unanswered, and a server that does not offer TLS is refused
 * before any credential leaves; the check after the handshake stays for
 * a server whose second greeting differs. */
MYSQL *cdc_my_connect(const cdc_my_conf_t *c, const char *host,
                      unsigned port, unsigned read_timeout_s, int flags,
                      const char *what, cdc_err_t *err)
{
    MYSQL *m;

    if (!host) {
        host = c->host;
        port = c->port;
    }
    if (c->ssl_mode == CDC_MY_SSL_REQUIRED &&
        probe_tls(host, port, c->connect_timeout_s ? c->connect_timeout_s
                                                   : 10) == 0) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "mysql server %s:%u does not offer TLS but "
                    "%s.ssl.mode is required (nothing was sent to it)",
                    host, port, c->prefix);
        cdc_err_hint(err, "configure TLS on the server (ssl_cert, ssl_key), "
                          "or set %s.ssl.mode=verify_ca with %s.ssl.ca so "
                          "the server is authenticated too",
                     c->prefix, c->prefix);
        return NULL;
    }
    m = connect_once(c, host, port, read_timeout_s, flags,
                     c->ssl_mode != CDC_MY_SSL_DISABLED, what, err);
    if (m && c->ssl_mode >= CDC_MY_SSL_REQUIRED && !mysql_get_ssl_cipher(m)) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "mysql server %s:%u does not offer TLS but "
                    "%s.ssl.mode is required",
                    host, port, c->prefix);
        cdc_err_hint(err, "configure TLS on the server (ssl_cert, ssl_key) "
                          "or set %s.ssl.mode=preferred", c->prefix);
        mysql_close(m);
        return NULL;
    }
    return m;
}
