/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conn.h - the one connection layer for MySQL and MariaDB: the DSN
 * grammar, the connection settings of a configuration prefix (mysql.*,
 * mysql_sink.*), TLS and the connect itself.  The binlog source, the
 * snapshot, the MySQL wide sink, the failover list and `validate` all
 * connect through here.
 *
 * DSN grammar (docs/CONFIG.md, mysql.dsn):
 *
 *   mysql://[user[:password]@]host[:port][,host[:port]...][/database][?params]
 *
 *   - the scheme is mysql:// or mariadb://;
 *   - the user info ends at the LAST '@' of the DSN (so a password may
 *     hold '@', ':', '/' and '?' as they are); user and password are
 *     percent-decoded (%40 is '@'); an '@' inside a query value must be
 *     written %40.  cdc/redact.c reads the password with the same rule;
 *   - a host is a name, an IPv4 address or an IPv6 address in brackets
 *     ([::1]:3306); several hosts separated by commas list the servers to
 *     fail over between (the first one is followed first);
 *   - the database is the percent-decoded path up to the '?': the query
 *     never becomes part of it;
 *   - params (& separated, values percent-decoded): ssl-mode (also
 *     ssl_mode, sslmode), ssl-ca, ssl-cert, ssl-key; any other is an
 *     error naming it.
 *
 * Every length is checked; a parse error is CDC_EXIT_CONFIG and names the
 * configuration key and the remedy.
 */
#ifndef CDC_MYSQL_CONN_H
#define CDC_MYSQL_CONN_H

#include <mysql.h>

#include "cdc/conf.h"
#include "cdc/err.h"

/* TLS modes, in the order of strictness (mysql.ssl.mode). */
enum {
    CDC_MY_SSL_UNSET = -1,
    CDC_MY_SSL_DISABLED = 0,
    CDC_MY_SSL_PREFERRED,
    CDC_MY_SSL_REQUIRED,
    CDC_MY_SSL_VERIFY_CA,
    CDC_MY_SSL_VERIFY_IDENTITY
};

/* A server of a list (the DSN's hosts, mysql.hosts). */
typedef struct cdc_my_host {
    char *host;     /* as given; an IPv6 address without its brackets */
    unsigned port;  /* 0: not given (the caller's default applies) */
} cdc_my_host_t;

/* A parsed DSN; NULL / 0 / CDC_MY_SSL_UNSET for what it does not give.
 * Every string and the host list are malloc'd and owned by the struct:
 * cdc_my_dsn_free() releases them. */
typedef struct cdc_my_dsn {
    char *user, *pass, *db;
    cdc_my_host_t *hosts;
    int nhosts;
    int ssl_mode;
    char *ssl_ca, *ssl_cert, *ssl_key;
} cdc_my_dsn_t;

/**
 * @brief Parse dsn (grammar above) into d (zeroed first).  key names the
 *        configuration key in the messages ("mysql.dsn").
 * @returns 0, or -1 with err (CDC_EXIT_CONFIG) and d left empty.
 */
int cdc_my_dsn_parse(const char *dsn, const char *key, cdc_my_dsn_t *d,
                     cdc_err_t *err);
void cdc_my_dsn_free(cdc_my_dsn_t *d);

/** @brief "disabled" ... "verify_identity" (also VERIFY-CA) -> CDC_MY_SSL_*,
 *         -1 if unknown. */
int cdc_my_ssl_mode(const char *name);

/** @brief Append one server unless listed already (host taken as is). */
void cdc_my_hosts_add(cdc_my_host_t **hosts, int *n, const char *host,
                      unsigned port);
/** @brief Append "h1:p1,h2[:p2],[v6]:p3,..." (mysql.hosts) to the list;
 *         a host without a port gets defport. */
int cdc_my_hosts_parse(const char *list, unsigned defport,
                       cdc_my_host_t **hosts, int *n, cdc_err_t *err);
void cdc_my_hosts_free(cdc_my_host_t *hosts, int n);

/*
 * The connection settings of a configuration prefix: <prefix>.dsn gives
 * the defaults, and every explicit key overrides the DSN's part:
 * <prefix>.host, .port, .user, .password, .database, .ssl.mode, .ssl.ca,
 * .ssl.cert, .ssl.key; then <prefix>.connect_timeout_ms.  Defaults: 127.0.0.1:3306, user root, TLS
 * preferred (verify_identity when a CA is configured).  Keys that the
 * configuration table does not have for a prefix are simply unset.
 */
/* Owned strings and list, released by cdc_my_conf_free(). */
typedef struct cdc_my_conf {
    char prefix[32];
    char *host, *user, *pass, *db;
    unsigned port;
    cdc_my_host_t *hosts;  /* the DSN's further servers (failover) */
    int nhosts;
    int ssl_mode;
    char *ssl_ca, *ssl_cert, *ssl_key;
    unsigned connect_timeout_s;
} cdc_my_conf_t;

/** @returns 0, or -1 with err (CDC_EXIT_CONFIG); c is freed on error. */
int cdc_my_conf_load(cdc_my_conf_t *c, const cdc_conf_t *conf,
                     const char *prefix, cdc_err_t *err);
void cdc_my_conf_free(cdc_my_conf_t *c);

/**
 * @brief Does a server greeting (the payload of the first packet, an
 *        initial handshake v10) offer TLS (CLIENT_SSL)?
 * @returns 1 yes, 0 no, -1 not a v10 handshake (malformed, truncated, or
 *          an error packet such as "too many connections": let the
 *          client library report that).  Reads only p[0..n).
 */
int cdc_my_greeting_tls(const unsigned char *p, size_t n);

/* cdc_my_connect flags */
#define CDC_MY_NO_DB 1        /* do not select the configured database */
#define CDC_MY_FOUND_ROWS 2   /* CLIENT_FOUND_ROWS */

/**
 * @brief Connect to host:port (NULL/0: the configured server) with the
 *        settings of c: TCP, utf8mb4, TLS per ssl_mode ("required" and
 *        stricter refuse a server without TLS), read/write timeout
 *        read_timeout_s (0: none).  what starts the error message
 *        ("cannot connect").
 * @returns the connection (the caller closes it with mysql_close), or NULL
 *          with err: CDC_EXIT_CONFIG for refused
 *          credentials and TLS failures, CDC_EXIT_UNAVAILABLE (retriable)
 *          for an unreachable server.
 */
MYSQL *cdc_my_connect(const cdc_my_conf_t *c, const char *host,
                      unsigned port, unsigned read_timeout_s, int flags,
                      const char *what, cdc_err_t *err);

/**
 * @brief err from the connection's last error: "<what>: mysql host:port:
 *        <error> (error N)"; refused credentials are CDC_EXIT_CONFIG,
 *        lost or unreachable servers CDC_EXIT_UNAVAILABLE (retriable).
 * @returns -1
 */
int cdc_my_fail(MYSQL *m, const char *prefix, const char *host,
                unsigned port, const char *what, cdc_err_t *err);

/** @brief 1 if a client error number means "try again later". */
int cdc_my_retriable(unsigned errnum);

#endif
