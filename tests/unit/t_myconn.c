/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_myconn.c - the one MySQL connection layer (connectors/mysql/conn.h):
 * every DSN form, the ones where the four former parsers disagreed
 * (IPv6, %-decoding, an '@' in the password, the ?query that ended up in
 * the database name, ssl-mode), the settings of a prefix (keys over the
 * DSN, K_file secrets, TLS defaults), and that cdc/redact.c masks the
 * password of every form.  No server: connecting is tested by the
 * integration tests (t_mysql_*, t_ops_tls_mysql.sh, t_wide_*).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdc/conf.h"
#include "cdc/redact.h"
#include "connectors/mysql/conn.h"
#include "tests/unit/cdc_test.h"

#define NOSTR "(none)"
static const char *str(const char *s) { return s ? s : NOSTR; }

/* One accepted form and what it must give. */
typedef struct {
    const char *dsn;
    const char *user, *pass, *host;
    unsigned port;
    const char *db;
    int ssl;
} form_t;

static const form_t good[] = {
    {"mysql://u:pw@h:3307/db", "u", "pw", "h", 3307, "db", CDC_MY_SSL_UNSET},
    {"mariadb://u:pw@h/db", "u", "pw", "h", 0, "db", CDC_MY_SSL_UNSET},
    {"mysql://h", NOSTR, NOSTR, "h", 0, NOSTR, CDC_MY_SSL_UNSET},
    {"mysql://u@h:1", "u", NOSTR, "h", 1, NOSTR, CDC_MY_SSL_UNSET},
    {"mysql://u:@h", "u", "", "h", 0, NOSTR, CDC_MY_SSL_UNSET},
    {"mysql://", NOSTR, NOSTR, NOSTR, 0, NOSTR, CDC_MY_SSL_UNSET},
    {"mysql://u:pw@10.0.0.7:65535", "u", "pw", "10.0.0.7", 65535, NOSTR,
     CDC_MY_SSL_UNSET},
    /* IPv6 in brackets, with and without a port */
    {"mysql://u:pw@[::1]:3308/db", "u", "pw", "::1", 3308, "db",
     CDC_MY_SSL_UNSET},
    {"mysql://u:pw@[fe80::1%25eth0]/db", "u", "pw", "fe80::1%eth0", 0, "db",
     CDC_MY_SSL_UNSET},
    /* %-decoding in user, password and database */
    {"mysql://us%3Aer:p%40ss%25w@h/my%20db", "us:er", "p@ss%w", "h", 0,
     "my db", CDC_MY_SSL_UNSET},
    /* an '@' in the password as it is: the user info ends at the last '@'
     * (the sink and validate agreed, the source and snapshot too, but
     * not with a '/' before it) */
    {"mysql://u:p@ss@h:1/db", "u", "p@ss", "h", 1, "db", CDC_MY_SSL_UNSET},
    {"mysql://u:a/b?c@d@h/db", "u", "a/b?c@d", "h", 0, "db",
     CDC_MY_SSL_UNSET},
    {"mysql://u:a:b:c@h", "u", "a:b:c", "h", 0, NOSTR, CDC_MY_SSL_UNSET},
    /* the query never becomes part of the database (the sink and the
     * snapshot took "db?ssl-mode=required" or ignored ssl-mode) */
    {"mysql://u:pw@h/db?ssl-mode=required", "u", "pw", "h", 0, "db",
     CDC_MY_SSL_REQUIRED},
    {"mysql://u:pw@h:5?ssl-mode=disabled", "u", "pw", "h", 5, NOSTR,
     CDC_MY_SSL_DISABLED},
    {"mysql://u:pw@h/?sslmode=VERIFY-CA", "u", "pw", "h", 0, NOSTR,
     CDC_MY_SSL_VERIFY_CA},
    {"mysql://u:pw@h/db?ssl_mode=verify_identity&ssl-ca=/etc/c%20a.pem",
     "u", "pw", "h", 0, "db", CDC_MY_SSL_VERIFY_IDENTITY},
    {"mysql://u:pw@h/db?ssl-mode=preferred", "u", "pw", "h", 0, "db",
     CDC_MY_SSL_PREFERRED},
};

CDC_TEST(dsn_forms)
{
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        const form_t *f = &good[i];
        cdc_my_dsn_t d;
        cdc_err_t err = {0};
        if (cdc_my_dsn_parse(f->dsn, "mysql.dsn", &d, &err) < 0) {
            T_FAIL_("'%s' refused: %s", f->dsn, err.msg);
            continue;
        }
        printf("# %s\n", f->dsn);
        T_EQ_STR(str(d.user), f->user);
        T_EQ_STR(str(d.pass), f->pass);
        T_EQ_STR(d.nhosts ? d.hosts[0].host : NOSTR, f->host);
        T_EQ_INT(d.nhosts ? d.hosts[0].port : 0, f->port);
        T_EQ_STR(str(d.db), f->db);
        T_EQ_INT(d.ssl_mode, f->ssl);
        cdc_my_dsn_free(&d);
    }
}

CDC_TEST(dsn_tls_params)
{
    cdc_my_dsn_t d;
    cdc_err_t err = {0};
    T_EQ_INT(cdc_my_dsn_parse("mysql://u:pw@h/db?ssl-mode=verify_ca&"
                              "ssl-ca=/c/ca.pem&ssl-cert=/c/c%26.pem&"
                              "ssl_key=/c/k.pem",
                              "mysql.dsn", &d, &err), 0);
    T_EQ_INT(d.ssl_mode, CDC_MY_SSL_VERIFY_CA);
    T_EQ_STR(d.ssl_ca, "/c/ca.pem");
    T_EQ_STR(d.ssl_cert, "/c/c&.pem");
    T_EQ_STR(d.ssl_key, "/c/k.pem");
    T_EQ_STR(d.db, "db");
    cdc_my_dsn_free(&d);
}

CDC_TEST(dsn_several_hosts)
{
    cdc_my_dsn_t d;
    cdc_err_t err = {0};
    T_EQ_INT(cdc_my_dsn_parse("mysql://u:p@w@[::1]:1, h2 ,[fe80::2],h3:4/d?"
                              "ssl-mode=disabled", "mysql.dsn", &d, &err), 0);
    T_EQ_STR(d.pass, "p@w");
    T_EQ_INT(d.nhosts, 4);
    if (d.nhosts == 4) {
        T_EQ_STR(d.hosts[0].host, "::1");
        T_EQ_INT(d.hosts[0].port, 1);
        T_EQ_STR(d.hosts[1].host, "h2");
        T_EQ_INT(d.hosts[1].port, 0);
        T_EQ_STR(d.hosts[2].host, "fe80::2");
        T_EQ_STR(d.hosts[3].host, "h3");
        T_EQ_INT(d.hosts[3].port, 4);
    }
    T_EQ_STR(d.db, "d");
    cdc_my_dsn_free(&d);
    /* mysql.hosts takes the same entries */
    {
        cdc_my_host_t *h = NULL;
        int n = 0;
        T_EQ_INT(cdc_my_hosts_parse("[::1]:3307,db2", 3306, &h, &n, &err), 0);
        T_EQ_INT(n, 2);
        if (n == 2) {
            T_EQ_STR(h[0].host, "::1");
            T_EQ_INT(h[0].port, 3307);
            T_EQ_INT(h[1].port, 3306);
        }
        T_EQ_INT(cdc_my_hosts_parse("::1:3307", 3306, &h, &n, &err), -1);
        cdc_my_hosts_free(h, n);
    }
}

/* Refused forms: CDC_EXIT_CONFIG, the key and the offending part named. */
CDC_TEST(dsn_refused)
{
    static const struct {
        const char *dsn, *says;
    } bad[] = {
        {"postgres://u:p@h/db", "must start with mysql://"},
        {"mysql:/h", "must start with mysql://"},
        {"mysql://u:p@h:0/db", "bad server 'h:0'"},
        {"mysql://u:p@h:65536/db", "bad server"},
        {"mysql://u:p@h:3x06/db", "bad server"},
        {"mysql://u:p@h:/db", "bad server"},
        {"mysql://u:p@h:123456/db", "bad server"},
        {"mysql://u:p@::1/db", "bad server '::1'"},
        {"mysql://u:p@[::1/db", "bad server"},
        {"mysql://u:p@[::1]x/db", "bad server"},
        {"mysql://u:p@[]/db", "bad server"},
        {"mysql://u:p@h1,,h2/db", "bad server"},
        {"mysql://u:p@h%zz/db", "bad server"},
        {"mysql://u:p%4@h/db", "bad %-escape"},
        {"mysql://u:p%zz@h/db", "bad %-escape"},
        {"mysql://u:p%00x@h/db", "bad %-escape"},
        {"mysql://u%:p@h/db", "bad %-escape"},
        {"mysql://u:p@h/a/b", "bad database name"},
        {"mysql://u:p@h/d%zz", "bad database name"},
        {"mysql://u:p@h/db?ssl-mode=sometimes", "unknown ssl-mode 'sometimes'"},
        {"mysql://u:p@h/db?charset=latin1", "unknown parameter 'charset'"},
        {"mysql://u:p@h/db?ssl-ca=%G0", "bad %-escape in the value"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cdc_my_dsn_t d;
        cdc_err_t err = {0};
        int rc = cdc_my_dsn_parse(bad[i].dsn, "mysql_sink.dsn", &d, &err);
        if (rc != -1) {
            T_FAIL_("'%s' accepted", bad[i].dsn);
            cdc_my_dsn_free(&d);
            continue;
        }
        T_EQ_INT(err.code, CDC_EXIT_CONFIG);
        if (!strstr(err.msg, bad[i].says) || !strstr(err.msg, "mysql_sink.dsn"))
            T_FAIL_("'%s': message '%s' lacks '%s' or the key", bad[i].dsn,
                    err.msg, bad[i].says);
        T_ASSERT(err.hint[0] != '\0');
        T_ASSERT(d.nhosts == 0 && !d.user && !d.pass && !d.db);
    }
}

CDC_TEST(ssl_mode_names)
{
    T_EQ_INT(cdc_my_ssl_mode("disabled"), CDC_MY_SSL_DISABLED);
    T_EQ_INT(cdc_my_ssl_mode("PREFERRED"), CDC_MY_SSL_PREFERRED);
    T_EQ_INT(cdc_my_ssl_mode("Required"), CDC_MY_SSL_REQUIRED);
    T_EQ_INT(cdc_my_ssl_mode("verify-ca"), CDC_MY_SSL_VERIFY_CA);
    T_EQ_INT(cdc_my_ssl_mode("VERIFY_IDENTITY"), CDC_MY_SSL_VERIFY_IDENTITY);
    T_EQ_INT(cdc_my_ssl_mode("verify"), -1);
    T_EQ_INT(cdc_my_ssl_mode("required2"), -1);
    T_EQ_INT(cdc_my_ssl_mode(""), -1);
}

/* The settings of a prefix: defaults, keys over the DSN, TLS. */
CDC_TEST(conf_prefix)
{
    cdc_conf_t *c = cdc_conf_new();
    cdc_my_conf_t cc;
    cdc_err_t err = {0};

    T_EQ_INT(cdc_my_conf_load(&cc, c, "mysql", &err), 0);
    T_EQ_STR(cc.host, "127.0.0.1");
    T_EQ_INT(cc.port, 3306);
    T_EQ_STR(cc.user, "root");
    T_ASSERT(!cc.pass && !cc.db);
    T_EQ_INT(cc.ssl_mode, CDC_MY_SSL_PREFERRED);
    T_EQ_INT(cc.connect_timeout_s, 10);
    cdc_my_conf_free(&cc);

    cdc_conf_set(c, "mysql.dsn", "mysql://cdc:s%40cret@[::1]:3310,h2/src"
                 "?ssl-mode=required", "test");
    T_EQ_INT(cdc_my_conf_load(&cc, c, "mysql", &err), 0);
    T_EQ_STR(cc.host, "::1");
    T_EQ_INT(cc.port, 3310);
    T_EQ_STR(cc.user, "cdc");
    T_EQ_STR(cc.pass, "s@cret");
    T_EQ_STR(cc.db, "src");
    T_EQ_INT(cc.nhosts, 1);
    if (cc.nhosts == 1) {
        T_EQ_STR(cc.hosts[0].host, "h2");
        T_EQ_INT(cc.hosts[0].port, 3306);
    }
    T_EQ_INT(cc.ssl_mode, CDC_MY_SSL_REQUIRED);
    cdc_my_conf_free(&cc);

    /* the keys override the DSN's parts, ssl-mode too; a CA alone means
     * verify_identity */
    cdc_conf_set(c, "mysql.host", "db.example", "test");
    cdc_conf_set(c, "mysql.port", "3400", "test");
    cdc_conf_set(c, "mysql.user", "other", "test");
    cdc_conf_set(c, "mysql.password", "pw2", "test");
    cdc_conf_set(c, "mysql.ssl.mode", "disabled", "test");
    cdc_conf_set(c, "mysql.connect_timeout_ms", "2500", "test");
    T_EQ_INT(cdc_my_conf_load(&cc, c, "mysql", &err), 0);
    T_EQ_STR(cc.host, "db.example");
    T_EQ_INT(cc.port, 3400);
    T_EQ_STR(cc.user, "other");
    T_EQ_STR(cc.pass, "pw2");
    T_EQ_INT(cc.ssl_mode, CDC_MY_SSL_DISABLED);
    T_EQ_INT(cc.connect_timeout_s, 3);
    cdc_my_conf_free(&cc);

    cdc_conf_set(c, "mysql.dsn", "mysql://u@h/db", "test");
    cdc_conf_set(c, "mysql.ssl.mode", "", "test");
    cdc_conf_set(c, "mysql.ssl.ca", "/etc/ca.pem", "test");
    T_EQ_INT(cdc_my_conf_load(&cc, c, "mysql", &err), 0);
    T_EQ_INT(cc.ssl_mode, CDC_MY_SSL_VERIFY_IDENTITY);
    T_EQ_STR(cc.ssl_ca, "/etc/ca.pem");
    cdc_my_conf_free(&cc);

    cdc_conf_set(c, "mysql.ssl.mode", "maybe", "test");
    T_EQ_INT(cdc_my_conf_load(&cc, c, "mysql", &err), -1);
    T_EQ_INT(err.code, CDC_EXIT_CONFIG);
    T_ASSERT(strstr(err.msg, "mysql.ssl.mode") != NULL);
    cdc_conf_set(c, "mysql.ssl.mode", "", "test");
    cdc_conf_set(c, "mysql.port", "70000", "test");
    T_EQ_INT(cdc_my_conf_load(&cc, c, "mysql", &err), -1);
    T_ASSERT(strstr(err.msg, "mysql.port") != NULL);
    cdc_conf_destroy(c);

    /* another prefix reads its own keys only */
    c = cdc_conf_new();
    cdc_conf_set(c, "mysql.dsn", "mysql://a:b@src/x", "test");
    cdc_conf_set(c, "mysql_sink.dsn", "mysql://w:v@dst:3399/wide?"
                 "ssl-mode=disabled", "test");
    T_EQ_INT(cdc_my_conf_load(&cc, c, "mysql_sink", &err), 0);
    T_EQ_STR(cc.host, "dst");
    T_EQ_INT(cc.port, 3399);
    T_EQ_STR(cc.db, "wide");
    T_EQ_STR(cc.user, "w");
    T_EQ_INT(cc.ssl_mode, CDC_MY_SSL_DISABLED);
    cdc_my_conf_free(&cc);
    cdc_conf_destroy(c);
}

/* One precedence rule for every part: the DSN gives the value, an
 * explicit key overrides exactly its part and nothing else. */
static void expect_parts(const cdc_my_conf_t *cc, const char *set)
{
#define PART(name, got, dsnv, keyv) \
    T_EQ_STR(got, !strcmp(set, name) ? keyv : dsnv)
    PART("host", cc->host, "dh", "kh");
    PART("user", cc->user, "du", "ku");
    PART("password", cc->pass, "dp", "kp");
    PART("database", cc->db, "ddb", "kdb");
    PART("ssl.ca", cc->ssl_ca, "/d/ca.pem", "/k/ca.pem");
    PART("ssl.cert", cc->ssl_cert, "/d/cert.pem", "/k/cert.pem");
    PART("ssl.key", cc->ssl_key, "/d/key.pem", "/k/key.pem");
#undef PART
    T_EQ_INT(cc->port, !strcmp(set, "port") ? 4444u : 1111u);
    T_EQ_INT(cc->ssl_mode, !strcmp(set, "ssl.mode") ? CDC_MY_SSL_VERIFY_CA
                                                    : CDC_MY_SSL_REQUIRED);
}

CDC_TEST(keys_override_every_dsn_part)
{
    static const struct {
        const char *part, *val;
    } keys[] = {
        {"", NULL},
        {"host", "kh"},
        {"port", "4444"},
        {"user", "ku"},
        {"password", "kp"},
        {"database", "kdb"},
        {"ssl.mode", "verify_ca"},
        {"ssl.ca", "/k/ca.pem"},
        {"ssl.cert", "/k/cert.pem"},
        {"ssl.key", "/k/key.pem"},
    };

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        cdc_conf_t *c = cdc_conf_new();
        cdc_my_conf_t cc;
        cdc_err_t err = {0};
        char key[64];

        cdc_conf_set(c, "mysql.dsn", "mysql://du:dp@dh:1111/ddb?ssl-mode="
                     "required&ssl-ca=/d/ca.pem&ssl-cert=/d/cert.pem&"
                     "ssl-key=/d/key.pem", "test");
        if (keys[i].val) {
            snprintf(key, sizeof(key), "mysql.%s", keys[i].part);
            cdc_conf_set(c, key, keys[i].val, "test");
        }
        printf("# %s\n", keys[i].val ? key : "the DSN alone");
        T_EQ_INT(cdc_my_conf_load(&cc, c, "mysql", &err), 0);
        if (!err.code) {
            expect_parts(&cc, keys[i].part);
            cdc_my_conf_free(&cc);
        }
        cdc_conf_destroy(c);
    }
}

/* A secret given as mysql.password_file reaches the connection. */
CDC_TEST(conf_secret_file)
{
    char path[] = "/tmp/t_myconn_XXXXXX";
    int fd = mkstemp(path);
    cdc_conf_t *c = cdc_conf_new();
    cdc_my_conf_t cc;
    cdc_err_t err = {0};

    T_ASSERT(fd >= 0);
    if (fd < 0)
        return;
    T_EQ_INT(write(fd, "from-a-file\n", 12), 12);
    close(fd);
    cdc_conf_set(c, "source.type", "mysql", "test");
    cdc_conf_set(c, "mysql.dsn", "mysql://cdc@h/db", "test");
    cdc_conf_set(c, "mysql.password_file", path, "test");
    if (cdc_conf_resolve(c, &err) < 0)
        T_FAIL_("resolve: %s", err.msg);
    T_EQ_INT(cdc_my_conf_load(&cc, c, "mysql", &err), 0);
    T_EQ_STR(cc.pass, "from-a-file");
    T_EQ_STR(cc.user, "cdc");
    cdc_my_conf_free(&cc);
    cdc_conf_destroy(c);
    unlink(path);
}

/* Redaction masks the password of every accepted form, in the DSN as
 * written and as the parser hands it on (decoded). */
CDC_TEST(redaction_every_form)
{
    static const char *dsns[] = {
        "mysql://u:pw12@h:3307/db",
        "mariadb://u:pw12@h/db",
        "mysql://u:pw12@[::1]:3308/db",
        "mysql://us%3Aer:p%40ss%25w@h/my%20db",
        "mysql://u:p@ss@h:1/db",
        "mysql://u:a/b?c@d@h/db",
        "mysql://u:a:b:c@h",
        "mysql://u:pw12@h/db?ssl-mode=required",
        "mysql://u:pw12@[::1]:1,h2,[fe80::2]/d?ssl-mode=disabled",
    };
    for (size_t i = 0; i < sizeof(dsns) / sizeof(dsns[0]); i++) {
        cdc_my_dsn_t d;
        cdc_err_t err = {0};
        char line[512];
        char *out;
        T_EQ_INT(cdc_my_dsn_parse(dsns[i], "mysql.dsn", &d, &err), 0);
        if (!d.pass)
            continue;
        cdc_redact_forget();
        /* pass 2 alone: the DSN as it is written */
        out = cdc_redact(dsns[i]);
        if (strstr(out, d.pass) && strlen(d.pass) >= 3)
            T_FAIL_("'%s' shows its password '%s': %s", dsns[i], d.pass, out);
        free(out);
        /* pass 1: the learned secret, decoded, anywhere in a text */
        cdc_redact_learn("mysql.dsn", dsns[i]);
        snprintf(line, sizeof(line), "cannot log in with password %s ok",
                 d.pass);
        out = cdc_redact(line);
        if (strstr(out, d.pass))
            T_FAIL_("'%s': its password '%s' shows: %s", dsns[i], d.pass,
                    out);
        T_ASSERT(strstr(out, "cannot log in") != NULL);
        free(out);
        cdc_my_dsn_free(&d);
    }
    cdc_redact_forget();
}

/* The greeting check run before a login with ssl.mode=required: a v10
 * handshake as MariaDB 10.11 sends it, with and without CLIENT_SSL;
 * every truncation and other packets are "unknown", never read past n;
 * and seeded random bytes (a small fuzz run: ASan sees any overread). */
CDC_TEST(greeting_tls_flag)
{
    unsigned char g[128];
    size_t n = 0;
    const char *ver = "5.5.5-10.11.19-MariaDB";
    unsigned caps = 0xf7fe & ~0x0800u;

    g[n++] = 10;
    memcpy(g + n, ver, strlen(ver) + 1);
    n += strlen(ver) + 1;
    memset(g + n, 7, 4 + 8 + 1); /* thread id, scramble, filler */
    n += 4 + 8 + 1;
    g[n++] = caps & 0xff;
    g[n++] = caps >> 8;
    memset(g + n, 0, 20); /* charset, status, caps high, ... */
    n += 20;
    T_EQ_INT(cdc_my_greeting_tls(g, n), 0);
    g[n - 20 - 1] |= 0x08; /* CLIENT_SSL is bit 11 of the low word */
    T_EQ_INT(cdc_my_greeting_tls(g, n), 1);
    for (size_t k = 0; k < strlen(ver) + 1 + 4 + 8 + 1 + 2; k++) {
        unsigned char *cut = malloc(k ? k : 1); /* exact size for ASan */
        memcpy(cut, g, k);
        T_EQ_INT(cdc_my_greeting_tls(cut, k), -1);
        free(cut);
    }
    static const unsigned char errpkt[] = {0xff, 0x10, 0x04, '#', 'H'};
    T_EQ_INT(cdc_my_greeting_tls(errpkt, sizeof(errpkt)), -1);
    unsigned seed = 20261207;
    for (int r = 0; r < 20000; r++) {
        size_t len = (size_t)(rand_r(&seed) % 64);
        unsigned char *b = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++)
            b[i] = (unsigned char)rand_r(&seed);
        if (len && r % 2)
            b[0] = 10;
        int v = cdc_my_greeting_tls(b, len);
        T_ASSERT(v >= -1 && v <= 1);
        free(b);
    }
}

CDC_TEST_MAIN()
