/* SPDX-License-Identifier: Apache-2.0 */
/*
 * source.c - the live MySQL/MariaDB source ("mysql").
 *
 * Connects with libmariadb, checks the server's settings (refusing to
 * start with one message per wrong setting), positions a binlog dump and
 * feeds the raw events to the pure decoder of binlog.h.
 *
 * Threads: start() runs in the caller's thread; afterwards one reader
 * thread owns the replication connection, the metadata connection and the
 * decoder.  It reads packets (mysql_net_read_packet, bypassing the event
 * parser of mariadb_rpl, see PROTOCOLS.md 1.18), decodes them and pushes
 * committed transactions into the engine's bounded feed (cdc/flight.h);
 * next() pops from it with a timeout.  A full feed blocks the reader
 * (back-pressure); the server's
 * heartbeats keep the idle connection alive and a socket read timeout of
 * mysql.heartbeat_s detects a dead server or a half-open link (see
 * hb_settings()).
 *
 * Reconnect: a lost connection (server restart, network) is re-opened by
 * the reader with the engine's backoff (cdc_backoff: 0.5 s doubling to
 * 30 s, jittered) and the dump resumes at the position after the last
 * transaction pushed into the feed (MariaDB: by GTID state when there is
 * one, else file:pos; MySQL with gtid_mode=ON: by the delivered GTID set
 * with COM_BINLOG_DUMP_GTID, else file:pos; mysql.position=file|gtid
 * forces one way).  The decoder is recreated for every connection, so a
 * group cut in half by the disconnect is dropped and re-read whole:
 * nothing is lost and nothing already handed out is emitted twice.  With
 * mysql.reconnect=false the error is handed to the pipeline instead
 * (next() returns -1 with CDC_ERR_F_RETRIABLE).
 *
 * A purged binlog (error 1236) stops with CDC_EXIT_NORESUME; the source
 * never skips ahead.
 *
 * Failover: with several servers (mysql.hosts, or host:port,host:port in
 * mysql.dsn), a reconnect that cannot reach the current server tries the
 * others; one is followed only when failover.c accepts it (writable, its
 * binlog holds every delivered GTID), and the dump resumes there at the
 * GTID state (MariaDB: @slave_connect_state; MySQL: COM_BINLOG_DUMP_GTID
 * with the delivered set, which libmariadb cannot send, so the source
 * builds the command itself, gtid_set.h).  A writable server lacking
 * delivered GTIDs stops the source with CDC_EXIT_NORESUME naming the
 * missing range; a MySQL server is followed only with gtid_mode=ON.
 *
 * MariaDB JSON columns are LONGTEXT with a CHECK (json_valid(`col`))
 * constraint; on the first change of a table the reader looks them up in
 * information_schema.CHECK_CONSTRAINTS (cached per table id, flushed on
 * DDL) and marks their values CDC_V_JSON when they parse as JSON.  The
 * lookup sees the current schema, not the one at the time of an old
 * event.
 *
 * Configuration: mysql.dsn (mysql://user:pass@host:port[/db][?ssl-mode=])
 * or mysql.host/port/user/password (override the DSN's parts),
 * mysql.server_id (default 4000 + FNV-1a(pipeline.name) % 100000),
 * mysql.from (now|beginning|FILE:POS|GTID state or set, default now),
 * mysql.position (auto|gtid|file, default auto),
 * mysql.heartbeat_s (detection timeout, 5), mysql.heartbeat_ms (period
 * asked of the server, mysql.heartbeat_s / 4), mysql.ssl.mode
 * (disabled|preferred|required|verify_ca|verify_identity, default
 * preferred), mysql.ssl.ca/cert/key, mysql.reconnect (true),
 * mysql.queue_txns (128), mysql.queue_mb (4), mysql.connect_timeout_ms
 * (10000), pipeline.fragment_rows (4096) / pipeline.fragment_kb (1024):
 * a transaction bigger than that is queued in fragments as it is decoded
 * (binlog.h), so mysql.queue_mb bounds memory whatever its size.
 * mysql.queue_txns and mysql.queue_mb bound the feed.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>
#include <mariadb_rpl.h>
#include <yajl/yajl_parse.h>

#include "cdc/jsontree.h"
#include "cdc/util.h"
#include "cdc/buf.h"
#include "cdc/change.h"
#include "cdc/conf.h"
#include "cdc/err.h"
#include "cdc/log.h"
#include "cdc/plugin.h"
#include "cdc/flight.h"
#include "cdc/metrics.h"
#include "connectors/mysql/binlog.h"
#include "connectors/mysql/binlog_value_int.h"
#include "connectors/mysql/conn.h"
#include "connectors/mysql/failover.h"

#define FAC "mysql"

/* binlog event types used here */
#define QUERY_EVENT 2
#define ROTATE_EVENT 4
#define HEARTBEAT_LOG_EVENT 27
#define HEARTBEAT_LOG_EVENT_V2 41
#define QUERY_COMPRESSED_EVENT 165

/* mysql.position */
enum { POS_AUTO, POS_GTID, POS_FILE };

/* Per-table JSON column marks (MariaDB). */
typedef struct json_tab {
    uint64_t table_id;
    char *db, *name;
    uint32_t ncols;     /* columns of the table map the mask was built for */
    uint8_t *mask;      /* ncols entries, 1 = JSON column; NULL = none */
    char **cols;        /* JSON column names from CHECK_CONSTRAINTS */
    int ncolnames;
} json_tab_t;

typedef struct mysql_src {
    cdc_source_t base;

    /* configuration */
    cdc_my_conf_t cc;  /* connection settings (conn.h) */
    char *host;        /* the server followed now (cc's, or a failover) */
    unsigned port;
    uint32_t server_id;
    char *from;
    int64_t heartbeat_ms;     /* period the server is asked for */
    int64_t silent_ms;        /* mysql.heartbeat_s: no packet for this long
                                 = the link is dead */
    char *pipeline;    /* pipeline.name: our replica identity */
    char report_host[61];
    int reconnect;
    cdc_my_host_t *hosts;  /* the servers to fail over between; [0] first */
    int nhosts;
    int cur_host;          /* index of the server followed now */
    int follow_ro;         /* mysql.failover_read_only */
    int pos_mode;          /* mysql.position: POS_AUTO, POS_GTID, POS_FILE */
    int force_gtid;        /* after a failover: file:pos of the old server
                              is meaningless, resume by GTID */
    int skip_own;      /* mysql.skip_own: drop our sinks' transactions */
    uint32_t frag_rows; /* pipeline.fragment_rows */
    size_t frag_bytes;  /* pipeline.fragment_kb */

    /* server */
    int mariadb;
    int gtid_on;           /* MySQL with gtid_mode=ON */
    unsigned long version; /* major * 10000 + minor * 100 + patch */
    char version_str[128];

    /* connections and stream state (reader thread after start) */
    MYSQL *meta;          /* preflight and metadata queries */
    MYSQL *repl;          /* the dump */
    MARIADB_RPL *rpl;
    cdc_binlog_t *bl;
    cdc_pos_t resume;     /* position after the last txn pushed */
    int first_packet;
    uint64_t events;
    int64_t last_packet_ms;  /* when the last packet arrived */

    /* JSON column cache (MariaDB) */
    json_tab_t *jt;
    int njt, capjt;
    int jt_last;

    /* decoded txns on their way to next(): the engine's feed, which also
     * carries the reader's error and the stop */
    cdc_feed_t *feed;
    pthread_mutex_t mu;
    int repl_fd;             /* socket of repl (for stop), under mu */
    pthread_t thr;
    int thr_started;
    int started;
} mysql_src_t;

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static uint32_t fnv1a32(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? cdc_xstrdup(v) : NULL;
}

/* Does v start with a MySQL source uuid and a colon ("uuid:...")? */
static int uuid_prefix(const char *v)
{
    for (int i = 0; i < 36; i++)
        if ((i == 8 || i == 13 || i == 18 || i == 23)
                ? v[i] != '-'
                : !isxdigit((unsigned char)v[i]))
            return 0;
    return v[36] == ':';
}

/* Validate a mysql.from value (no I/O). */
static int check_from(const char *v, cdc_err_t *err)
{
    if (!strcmp(v, "now") || !strcmp(v, "beginning"))
        return 0;
    const char *c = strrchr(v, ':');
    /* FILE:POS: a colon followed by digits only, file without '-' ranges */
    if (c && c != v && c[1] && !uuid_prefix(v)) {
        const char *d = c + 1;
        while (isdigit((unsigned char)*d))
            d++;
        if (!*d && !strchr(v, ',') && strlen(v) < 256)
            return 0;
    }
    if (strlen(v) >= sizeof(((cdc_pos_t *)0)->gtid))
        goto bad;
    if (uuid_prefix(v)) { /* MySQL uuid[:tag]:a-b[,...] */
        cdc_buf_t b = CDC_BUF_INIT;
        cdc_err_t e;
        int rc = cdc_gtid_set_norm(v, &b, &e);
        cdc_buf_free(&b);
        if (rc == 0)
            return 0;
        goto bad;
    }
    /* MariaDB d-s-n[,d-s-n] */
    for (const char *p = v; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr("-,\n ", *p))
            goto bad;
    return 0;
bad:
    cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                "mysql.from: cannot parse '%s'", v);
    cdc_err_hint(err, "use now, beginning, FILE:POS (mysql-bin.000003:4) "
                      "or a GTID state (MariaDB 0-1-100) or set (MySQL "
                      "uuid:1-100)");
    return -1;
}

static int is_file_pos(const char *v, char *file, size_t fsz, uint64_t *pos)
{
    const char *c = strrchr(v, ':');
    if (!c || c == v || !c[1] || strchr(v, ','))
        return 0;
    for (const char *d = c + 1; *d; d++)
        if (!isdigit((unsigned char)*d))
            return 0;
    if (uuid_prefix(v)) /* uuid:n is a MySQL GTID */
        return 0;
    if ((size_t)(c - v) >= fsz)
        return 0;
    memcpy(file, v, (size_t)(c - v));
    file[c - v] = '\0';
    *pos = strtoull(c + 1, NULL, 10);
    return 1;
}

/* ------------------------------------------------------------------ */
/* create / destroy                                                    */

static void json_cache_clear(mysql_src_t *src)
{
    for (int i = 0; i < src->njt; i++) {
        json_tab_t *t = &src->jt[i];
        free(t->db);
        free(t->name);
        free(t->mask);
        for (int k = 0; k < t->ncolnames; k++)
            free(t->cols[k]);
        free(t->cols);
    }
    src->njt = 0;
    src->jt_last = -1;
}

static void src_free(mysql_src_t *src)
{
    if (!src)
        return;
    json_cache_clear(src);
    free(src->jt);
    cdc_feed_free(src->feed);
    if (src->rpl)
        mariadb_rpl_close(src->rpl);
    if (src->repl)
        mysql_close(src->repl);
    if (src->meta)
        mysql_close(src->meta);
    cdc_binlog_destroy(src->bl);
    free(src->host);
    cdc_my_conf_free(&src->cc);
    free(src->from);
    free(src->pipeline);
    cdc_my_hosts_free(src->hosts, src->nhosts);
    pthread_mutex_destroy(&src->mu);
    free(src);
}

static int conf_int(const cdc_conf_t *conf, const char *key, int64_t def,
                    int64_t lo, int64_t hi, int64_t *out, cdc_err_t *err)
{
    if (cdc_conf_get_int(conf, key, def, out, err) < 0)
        return -1;
    if (*out < lo || *out > hi) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "%s = %" PRId64 " is out of range", key, *out);
        cdc_err_hint(err, "use a value from %" PRId64 " to %" PRId64, lo,
                     hi);
        return -1;
    }
    return 0;
}

/*
 * Heartbeats.  mysql.heartbeat_s (default 5) is how long the binlog link
 * may stay silent (no event, no heartbeat) before it counts as dead and
 * is reconnected; it is the socket read timeout of the dump connection,
 * so a half-open link (a peer that stopped answering without closing) is
 * noticed within it.  The server is asked for a heartbeat every
 * mysql.heartbeat_ms (default a quarter of the timeout), which must be at
 * most half of it.  Given mysql.heartbeat_ms alone, the timeout is three
 * periods (rounded up to whole seconds), as before mysql.heartbeat_s.
 */
static int hb_settings(mysql_src_t *src, const cdc_conf_t *conf,
                       cdc_err_t *err)
{
    int64_t s = 5;
    int has_s = cdc_conf_get(conf, "mysql.heartbeat_s", NULL) != NULL;
    int has_ms = cdc_conf_get(conf, "mysql.heartbeat_ms", NULL) != NULL;

    if (has_s && conf_int(conf, "mysql.heartbeat_s", 5, 1, 3600, &s, err) < 0)
        return -1;
    if (has_ms) {
        if (conf_int(conf, "mysql.heartbeat_ms", 5000, 100, 3600000,
                     &src->heartbeat_ms, err) < 0)
            return -1;
        if (!has_s)
            s = (src->heartbeat_ms * 3 + 999) / 1000;
    } else {
        src->heartbeat_ms = s * 1000 / 4;
    }
    src->silent_ms = (s < 2 && !has_s ? 2 : s) * 1000;
    if (src->heartbeat_ms * 2 > src->silent_ms) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "mysql.heartbeat_ms = %" PRId64 " is more than half of "
                    "mysql.heartbeat_s = %" PRId64,
                    src->heartbeat_ms, s);
        cdc_err_hint(err, "leave mysql.heartbeat_ms unset (a quarter of "
                          "mysql.heartbeat_s) or lower it");
        return -1;
    }
    return 0;
}

/* The failover list: the configured server first, then the DSN's other
 * hosts and mysql.hosts (without repeats of the first). */
static int hosts_config(mysql_src_t *src, const cdc_conf_t *conf,
                        cdc_err_t *err)
{
    cdc_my_host_t *all = NULL;
    int n = 0;
    const char *v = cdc_conf_get(conf, "mysql.hosts", NULL);

    cdc_my_hosts_add(&all, &n, src->host, src->port);
    for (int i = 0; i < src->cc.nhosts; i++)
        cdc_my_hosts_add(&all, &n, src->cc.hosts[i].host,
                         src->cc.hosts[i].port);
    if (v && *v && cdc_my_hosts_parse(v, src->port, &all, &n, err) < 0) {
        cdc_my_hosts_free(all, n);
        return -1;
    }
    cdc_my_hosts_free(src->hosts, src->nhosts);
    src->hosts = all;
    src->nhosts = n;
    src->cur_host = 0;
    return cdc_conf_get_bool(conf, "mysql.failover_read_only", 0,
                             &src->follow_ro, err);
}

static cdc_source_t *my_create(const cdc_conf_t *conf, cdc_err_t *err)
{
    mysql_src_t *src = cdc_xcalloc(1, sizeof *src);
    const char *v;
    int64_t iv, qtxns;

    src->base.ops = NULL; /* set below */
    pthread_mutex_init(&src->mu, NULL);
    src->repl_fd = -1;
    src->jt_last = -1;
    /* mysql.dsn (several hosts: the failover list), mysql.host/port/
     * user/password/database, mysql.ssl.*, mysql.connect_timeout_ms */
    if (cdc_my_conf_load(&src->cc, conf, "mysql", err) < 0)
        goto fail;
    src->host = cdc_xstrdup(src->cc.host);
    src->port = src->cc.port;
    if (hosts_config(src, conf, err) < 0)
        goto fail;

    /* the replica identity follows the pipeline (its checkpoint), not the
     * application id, which several pipelines may share */
    src->pipeline = cdc_xstrdup(cdc_conf_pipeline(conf));
    snprintf(src->report_host, sizeof src->report_host, "autoglm-cdc:%s",
             src->pipeline);

    if (cdc_conf_get(conf, "mysql.server_id", NULL)) {
        if (conf_int(conf, "mysql.server_id", 1, 1, 4294967295LL, &iv,
                     err) < 0)
            goto fail;
        src->server_id = (uint32_t)iv;
    } else {
        src->server_id = 4000 + fnv1a32(src->pipeline) % 100000;
    }
    v = cdc_conf_get(conf, "mysql.from", "now");
    if (check_from(v, err) < 0)
        goto fail;
    src->from = cdc_xstrdup(v);
    v = cdc_conf_get(conf, "mysql.position", "auto");
    if (!strcmp(v, "auto"))
        src->pos_mode = POS_AUTO;
    else if (!strcmp(v, "gtid"))
        src->pos_mode = POS_GTID;
    else if (!strcmp(v, "file"))
        src->pos_mode = POS_FILE;
    else {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "mysql.position = '%s' is not auto, gtid or file", v);
        cdc_err_hint(err, "leave it unset (auto: by GTID when the server "
                          "keeps GTIDs)");
        goto fail;
    }
    if (hb_settings(src, conf, err) < 0)
        goto fail;
    int b;
    if (cdc_conf_get_bool(conf, "mysql.reconnect", 1, &b, err) < 0)
        goto fail;
    src->reconnect = b;
    if (conf_int(conf, "mysql.queue_txns", 128, 1, 1000000, &iv, err) < 0)
        goto fail;
    qtxns = iv;
    if (cdc_conf_get_bool(conf, "mysql.skip_own", 1, &src->skip_own, err) < 0)
        goto fail;
    if (conf_int(conf, "mysql.queue_mb", 4, 1, 65536, &iv, err) < 0)
        goto fail;
    src->feed = cdc_feed_new((size_t)qtxns, (size_t)iv << 20);
    /* any transaction size in bounded memory: big transactions go out in
     * fragments, so the queue bound holds inside a transaction too */
    if (conf_int(conf, "pipeline.fragment_rows", 4096, 0, 100000000, &iv,
                 err) < 0)
        goto fail;
    src->frag_rows = (uint32_t)iv;
    if (conf_int(conf, "pipeline.fragment_kb", 1024, 0, 4194304, &iv, err) < 0)
        goto fail;
    src->frag_bytes = (size_t)iv << 10;
    if ((src->cc.ssl_mode == CDC_MY_SSL_DISABLED) &&
        (src->cc.ssl_ca || src->cc.ssl_cert || src->cc.ssl_key))
        CDC_WARN(FAC, "mysql.ssl.mode is disabled: mysql.ssl.ca/cert/key "
                      "are ignored");
    return &src->base;
fail:
    src_free(src);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* connecting and querying                                             */

/* Fill err from the connection's last error. */
static int my_fail(mysql_src_t *src, MYSQL *m, cdc_err_t *err,
                   const char *what)
{
    return cdc_my_fail(m, "mysql", src->host, src->port, what, err);
}

/* Connect to the server followed now (conn.h: TLS per mysql.ssl.mode). */
static MYSQL *my_connect_mode(mysql_src_t *src, unsigned read_timeout_s,
                              cdc_err_t *err)
{
    return cdc_my_connect(&src->cc, src->host, src->port, read_timeout_s, 0,
                          "cannot connect", err);
}

static int q_exec(mysql_src_t *src, MYSQL *m, const char *sql,
                  cdc_err_t *err)
{
    if (mysql_query(m, sql)) {
        char what[160];
        snprintf(what, sizeof what, "query failed (%.120s)", sql);
        return my_fail(src, m, err, what);
    }
    return 0;
}

static MYSQL_RES *q_result(mysql_src_t *src, MYSQL *m, const char *sql,
                           cdc_err_t *err)
{
    MYSQL_RES *res;
    if (q_exec(src, m, sql, err) < 0)
        return NULL;
    res = mysql_store_result(m);
    if (!res) {
        if (mysql_errno(m))
            my_fail(src, m, err, "reading a result failed");
        else
            cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                        "query returned no result set: %.120s", sql);
        return NULL;
    }
    return res;
}

/* ------------------------------------------------------------------ */
/* preflight                                                           */

typedef struct srv_status {
    char file[256];
    uint64_t pos;
    char gtid[1024]; /* MariaDB gtid_binlog_pos / MySQL Executed_Gtid_Set */
    char first_file[256];
    char gtid_purged[1024];
} srv_status_t;

static void parse_version(mysql_src_t *src, const char *v, const char *cmt)
{
    unsigned a = 0, b = 0, c = 0;
    snprintf(src->version_str, sizeof src->version_str, "%.120s", v);
    src->mariadb = (strcasestr(v, "mariadb") ||
                    (cmt && strcasestr(cmt, "mariadb")));
    if (src->mariadb && strlen(v) > 6 && !memcmp(v, "5.5.5-", 6))
        v += 6;
    sscanf(v, "%u.%u.%u", &a, &b, &c);
    src->version = a * 10000UL + b * 100UL + c;
}

static void problem(cdc_buf_t *pb, int *n, const char *fmt, ...)
    CDC_PRINTF(3, 4);
static void problem(cdc_buf_t *pb, int *n, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    CDC_ERROR(FAC, "%s", line);
    if (pb->len)
        cdc_buf_puts(pb, "; ");
    cdc_buf_puts(pb, line);
    (*n)++;
}

static const char *var_of(char vars[][2][256], int nvars, const char *name)
{
    for (int i = 0; i < nvars; i++)
        if (!strcasecmp(vars[i][0], name))
            return vars[i][1];
    return NULL;
}

/* The user part of CURRENT_USER() as 'user'@'host'. */
static void current_user(mysql_src_t *src, MYSQL *m, char *out, size_t n)
{
    cdc_err_t e;
    MYSQL_RES *res = q_result(src, m, "SELECT CURRENT_USER()", &e);
    MYSQL_ROW row;
    snprintf(out, n, "'%s'@'%%'", src->cc.user);
    if (!res)
        return;
    if ((row = mysql_fetch_row(res)) && row[0]) {
        const char *at = strrchr(row[0], '@');
        if (at)
            snprintf(out, n, "'%.*s'@'%s'", (int)(at - row[0]), row[0],
                     at + 1);
    }
    mysql_free_result(res);
}

/* Look for the privileges in SHOW GRANTS: slave / client set to 1 when
 * granted on *.*; *roles to 1 when a role is granted (privileges may come
 * from it). */
static void parse_grants(const char *line, int *slave, int *client,
                         int *roles)
{
    char buf[4096];
    size_t n = strlen(line);
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)toupper((unsigned char)line[i]);
    buf[n] = '\0';
    if (strncmp(buf, "GRANT ", 6))
        return;
    char *on = strstr(buf, " ON ");
    if (!on) {
        /* GRANT `role` TO `user`@`host` */
        if (strstr(buf, " TO "))
            *roles = 1;
        return;
    }
    if (strncmp(on, " ON *.* ", 8))
        return;
    *on = '\0';
    char *save = NULL;
    for (char *p = strtok_r(buf + 6, ",", &save); p;
         p = strtok_r(NULL, ",", &save)) {
        while (*p == ' ')
            p++;
        char *e = p + strlen(p);
        while (e > p && e[-1] == ' ')
            *--e = '\0';
        if (!strcmp(p, "ALL PRIVILEGES") || !strcmp(p, "ALL")) {
            *slave = *client = 1;
        } else if (!strcmp(p, "REPLICATION SLAVE") ||
                   !strcmp(p, "REPLICATION REPLICA")) {
            *slave = 1;
        } else if (!strcmp(p, "REPLICATION CLIENT") ||
                   !strcmp(p, "BINLOG MONITOR") || !strcmp(p, "SUPER")) {
            *client = 1;
        }
    }
}

/* A row of SHOW SLAVE HOSTS / SHOW REPLICAS (Server_id, Host, Port, ...)
 * as "'host'" or "'host' port N" (our dumps report port 0). */
static void replica_name(MYSQL_ROW row, char *out, size_t n)
{
    int port = row[2] && strcmp(row[2], "0");
    snprintf(out, n, "'%s'%s%s", row[1] ? row[1] : "?", port ? " port " : "",
             port ? row[2] : "");
}

static int preflight(mysql_src_t *src, MYSQL *m, srv_status_t *st,
                     int initial, cdc_err_t *err)
{
    cdc_buf_t pb = CDC_BUF_INIT;
    int nprob = 0, rc = -1;
    char vars[16][2][256];
    int nvars = 0;
    MYSQL_RES *res = NULL;
    MYSQL_ROW row;
    const char *v;
    char user[300];

    memset(st, 0, sizeof *st);
    res = q_result(src, m,
                   "SHOW GLOBAL VARIABLES WHERE Variable_name IN ("
                   "'version','version_comment','server_id','log_bin',"
                   "'binlog_format','binlog_row_image','binlog_row_metadata',"
                   "'binlog_checksum','log_bin_compress',"
                   "'log_bin_compress_min_len','binlog_transaction_compression',"
                   "'gtid_mode','gtid_strict_mode','binlog_row_value_options')",
                   err);
    if (!res)
        goto out;
    while ((row = mysql_fetch_row(res)) && nvars < 16) {
        snprintf(vars[nvars][0], 256, "%s", row[0] ? row[0] : "");
        snprintf(vars[nvars][1], 256, "%s", row[1] ? row[1] : "");
        nvars++;
    }
    mysql_free_result(res);
    res = NULL;

    v = var_of(vars, nvars, "version");
    parse_version(src, v ? v : "unknown",
                  var_of(vars, nvars, "version_comment"));
    if (initial)
        CDC_INFO(FAC, "connected to %s %s at %s:%u (%s)",
                 src->mariadb ? "MariaDB" : "MySQL", src->version_str,
                 src->host, src->port,
                 mysql_get_ssl_cipher(m) ? mysql_get_ssl_cipher(m)
                                         : "no TLS");

    /* GTIDs (MySQL): positioning by GTID set needs gtid_mode=ON */
    if (!src->mariadb) {
        v = var_of(vars, nvars, "gtid_mode");
        src->gtid_on = v && !strcasecmp(v, "ON");
        if (src->pos_mode == POS_GTID && !src->gtid_on)
            problem(&pb, &nprob,
                    "mysql.position=gtid, but the server has gtid_mode=%s: "
                    "SET PERSIST enforce_gtid_consistency = ON; then SET "
                    "PERSIST gtid_mode to OFF_PERMISSIVE, ON_PERMISSIVE and "
                    "ON, one step at a time (or leave mysql.position unset)",
                    v && *v ? v : "unknown");
    }

    /* binary log settings */
    v = var_of(vars, nvars, "log_bin");
    if (!v || (strcasecmp(v, "ON") && strcmp(v, "1")))
        problem(&pb, &nprob,
                "binary logging is off (log_bin=%s): start the server with "
                "--log-bin (add log_bin=ON, e.g. log-bin=mysql-bin, under "
                "[mysqld] in my.cnf and restart; log_bin cannot be set at "
                "run time)",
                v ? v : "unknown");
    v = var_of(vars, nvars, "binlog_format");
    if (!v || strcasecmp(v, "ROW"))
        problem(&pb, &nprob,
                "binlog_format is %s, must be ROW: SET GLOBAL binlog_format "
                "= 'ROW'; (and binlog_format=ROW in my.cnf; sessions "
                "already open keep their old format)",
                v ? v : "unknown");
    v = var_of(vars, nvars, "binlog_row_image");
    if (!v || strcasecmp(v, "FULL"))
        problem(&pb, &nprob,
                "binlog_row_image is %s, must be FULL: SET GLOBAL "
                "binlog_row_image = 'FULL'; (and binlog_row_image=FULL in "
                "my.cnf)",
                v ? v : "unknown");
    v = var_of(vars, nvars, "binlog_row_metadata");
    if (!v)
        problem(&pb, &nprob,
                "the server (%s) has no binlog_row_metadata setting, so "
                "column names are not in the binlog: MariaDB >= 10.5 or "
                "MySQL >= 8.0.1 is required",
                src->version_str);
    else if (strcasecmp(v, "FULL"))
        problem(&pb, &nprob,
                "binlog_row_metadata is %s, must be FULL: SET GLOBAL "
                "binlog_row_metadata = 'FULL'; (and binlog_row_metadata=FULL "
                "in my.cnf)",
                v);

    /* server ids */
    v = var_of(vars, nvars, "server_id");
    unsigned long sid = v ? strtoul(v, NULL, 10) : 0;
    if (sid == 0)
        problem(&pb, &nprob,
                "the server's server_id is 0, which refuses replication "
                "clients: SET GLOBAL server_id = 1; (and server_id=1 in "
                "my.cnf)");
    else if (sid == src->server_id)
        problem(&pb, &nprob,
                "mysql.server_id %" PRIu32 " is the server's own server_id: "
                "choose another one, e.g. -X mysql.server_id=%" PRIu32,
                src->server_id, src->server_id + 1);
    if (initial) {
        const char *sql = (!src->mariadb && src->version >= 80022)
                              ? "SHOW REPLICAS"
                              : "SHOW SLAVE HOSTS";
        cdc_err_t e;
        res = q_result(src, m, sql, &e);
        if (!res) {
            CDC_INFO(FAC, "cannot check that mysql.server_id %" PRIu32
                          " is unused: %s failed (%s)%s",
                     src->server_id, sql, mysql_error(m),
                     src->mariadb ? "; GRANT REPLICATION MASTER ADMIN "
                                    "lets the check run"
                                  : "");
        } else {
            while ((row = mysql_fetch_row(res))) {
                if (!row[0] || strtoul(row[0], NULL, 10) != src->server_id)
                    continue;
                /* our own previous connection (killed, not yet noticed by
                 * the server) registered with our report host */
                if (row[1] && !strcmp(row[1], src->report_host))
                    continue;
                char who[300];
                replica_name(row, who, sizeof who);
                problem(&pb, &nprob,
                        "mysql.server_id %" PRIu32 " is already used by the "
                        "replica %s: set a unique one, e.g. -X "
                        "mysql.server_id=%" PRIu32,
                        src->server_id, who,
                        src->server_id + 1 + (uint32_t)(rand() % 1000));
            }
            mysql_free_result(res);
            res = NULL;
        }
    }

    /* grants */
    current_user(src, m, user, sizeof user);
    {
        int slave = 0, client = 0, roles = 0;
        cdc_err_t e;
        res = q_result(src, m, "SHOW GRANTS", &e);
        if (res) {
            while ((row = mysql_fetch_row(res)))
                if (row[0])
                    parse_grants(row[0], &slave, &client, &roles);
            mysql_free_result(res);
            res = NULL;
        }
        if (!slave && !roles)
            problem(&pb, &nprob,
                    "the user %s lacks the REPLICATION SLAVE privilege "
                    "needed to read the binlog: GRANT REPLICATION SLAVE ON "
                    "*.* TO %s;",
                    user, user);
        else if (!slave)
            CDC_WARN(FAC, "REPLICATION SLAVE not granted directly to %s "
                          "(maybe through a role); the dump will fail "
                          "without it",
                     user);
        (void)client; /* verified below by running the status statement */
    }

    /* status statement */
    {
        const char *sql;
        cdc_err_t e;
        if (src->mariadb)
            sql = src->version >= 100502 ? "SHOW BINLOG STATUS"
                                         : "SHOW MASTER STATUS";
        else
            sql = src->version >= 80200 ? "SHOW BINARY LOG STATUS"
                                        : "SHOW MASTER STATUS";
        res = q_result(src, m, sql, &e);
        if (!res) {
            if (mysql_errno(m) == ER_SPECIFIC_ACCESS_DENIED_ERROR ||
                mysql_errno(m) == ER_ACCESS_DENIED_ERROR)
                problem(&pb, &nprob,
                        "the user %s may not read the binlog position (%s: "
                        "%s): GRANT %s ON *.* TO %s;",
                        user, sql, mysql_error(m),
                        (src->mariadb && src->version >= 100502)
                            ? "BINLOG MONITOR"
                            : "REPLICATION CLIENT",
                        user);
            else {
                *err = e;
                goto out;
            }
        } else {
            if ((row = mysql_fetch_row(res)) && row[0]) {
                unsigned nf = mysql_num_fields(res);
                MYSQL_FIELD *f = mysql_fetch_fields(res);
                snprintf(st->file, sizeof st->file, "%s", row[0]);
                st->pos = row[1] ? strtoull(row[1], NULL, 10) : 4;
                for (unsigned i = 0; i < nf; i++)
                    if (!strcasecmp(f[i].name, "Executed_Gtid_Set") &&
                        row[i]) {
                        size_t k = 0;
                        for (const char *p = row[i];
                             *p && k + 1 < sizeof st->gtid; p++)
                            if (*p != '\n' && *p != ' ')
                                st->gtid[k++] = *p;
                        st->gtid[k] = '\0';
                    }
            } else if (!nprob) {
                problem(&pb, &nprob,
                        "%s returned no binlog position: is log_bin on?",
                        sql);
            }
            mysql_free_result(res);
            res = NULL;
        }
    }
    if (src->mariadb && !nprob) {
        cdc_err_t e;
        res = q_result(src, m, "SELECT @@GLOBAL.gtid_binlog_pos", &e);
        if (res) {
            if ((row = mysql_fetch_row(res)) && row[0])
                snprintf(st->gtid, sizeof st->gtid, "%s", row[0]);
            mysql_free_result(res);
            res = NULL;
        }
    }
    if (!src->mariadb && !nprob) {
        cdc_err_t e;
        res = q_result(src, m, "SELECT @@GLOBAL.gtid_purged", &e);
        if (res) {
            if ((row = mysql_fetch_row(res)) && row[0]) {
                size_t k = 0;
                for (const char *p = row[0];
                     *p && k + 1 < sizeof st->gtid_purged; p++)
                    if (*p != '\n' && *p != ' ')
                        st->gtid_purged[k++] = *p;
                st->gtid_purged[k] = '\0';
            }
            mysql_free_result(res);
            res = NULL;
        }
    }

    /* compression and checksums: supported, report what is in use */
    if (initial) {
        const char *c1 = var_of(vars, nvars, "log_bin_compress");
        const char *c2 =
            var_of(vars, nvars, "binlog_transaction_compression");
        const char *ck = var_of(vars, nvars, "binlog_checksum");
        const char *pj = var_of(vars, nvars, "binlog_row_value_options");
        CDC_INFO(FAC, "binlog: checksum=%s%s%s%s%s, server_id=%lu, ours=%"
                      PRIu32,
                 ck ? ck : "?", c1 ? ", log_bin_compress=" : "",
                 c1 ? c1 : "", c2 ? ", binlog_transaction_compression=" : "",
                 c2 ? c2 : "", sid, src->server_id);
        if (pj && *pj)
            CDC_WARN(FAC, "binlog_row_value_options=%s: partial JSON "
                          "updates are logged as diffs",
                     pj);
    }

    if (nprob) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "mysql server %s:%u is not ready for change capture "
                    "(%d wrong setting%s)",
                    src->host, src->port, nprob, nprob > 1 ? "s" : "");
        cdc_err_detail(err, "%s", pb.p);
        cdc_err_hint(err, "run the statements above as an administrator, "
                          "then start again");
        goto out;
    }
    rc = 0;
out:
    if (res)
        mysql_free_result(res);
    cdc_buf_free(&pb);
    return rc;
}

/* ------------------------------------------------------------------ */
/* MariaDB JSON columns                                                */

static int meta_reconnect(mysql_src_t *src, cdc_err_t *err)
{
    if (src->meta)
        mysql_close(src->meta);
    src->meta = my_connect_mode(src, 30, err);
    return src->meta ? 0 : -1;
}

/* Load the JSON columns of db.name into t (fresh entry). */
static int json_load(mysql_src_t *src, json_tab_t *t, cdc_err_t *err)
{
    char q[1200], edb[520], etb[520];
    MYSQL_RES *res = NULL;
    MYSQL_ROW row;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (!src->meta && meta_reconnect(src, err) < 0)
            return -1;
        if (strlen(t->db) > 256 || strlen(t->name) > 256)
            return 0;
        mysql_real_escape_string(src->meta, edb, t->db, strlen(t->db));
        mysql_real_escape_string(src->meta, etb, t->name, strlen(t->name));
        snprintf(q, sizeof q,
                 "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS"
                 " WHERE CONSTRAINT_SCHEMA = '%s' AND TABLE_NAME = '%s'",
                 edb, etb);
        res = q_result(src, src->meta, q, err);
        if (res)
            break;
        if (!(err->flags & CDC_ERR_F_RETRIABLE) || attempt)
            return -1;
        mysql_close(src->meta);
        src->meta = NULL;
    }
    while ((row = mysql_fetch_row(res))) {
        char *c = row[0] ? cdc_mysql_json_check_col(row[0]) : NULL;
        if (!c)
            continue;
        t->cols = cdc_xrealloc(t->cols,
                               (size_t)(t->ncolnames + 1) * sizeof *t->cols);
        t->cols[t->ncolnames++] = c;
    }
    mysql_free_result(res);
    return 0;
}

static json_tab_t *json_lookup(mysql_src_t *src, const cdc_table_t *tbl,
                               cdc_err_t *err)
{
    json_tab_t *t;
    const char *db = tbl->db ? tbl->db : "", *nm = tbl->name ? tbl->name : "";

    if (src->jt_last >= 0) {
        t = &src->jt[src->jt_last];
        if (t->table_id == tbl->id && !strcmp(t->name, nm) &&
            !strcmp(t->db, db))
            goto have;
    }
    for (int i = 0; i < src->njt; i++) {
        t = &src->jt[i];
        if (t->table_id == tbl->id && !strcmp(t->name, nm) &&
            !strcmp(t->db, db)) {
            src->jt_last = i;
            goto have;
        }
    }
    if (src->njt == src->capjt) {
        src->capjt = src->capjt ? src->capjt * 2 : 16;
        src->jt = cdc_xrealloc(src->jt, (size_t)src->capjt * sizeof *src->jt);
    }
    t = &src->jt[src->njt];
    memset(t, 0, sizeof *t);
    t->table_id = tbl->id;
    t->db = cdc_xstrdup(db);
    t->name = cdc_xstrdup(nm);
    t->ncols = UINT32_MAX;
    if (json_load(src, t, err) < 0) {
        free(t->db);
        free(t->name);
        for (int k = 0; k < t->ncolnames; k++)
            free(t->cols[k]);
        free(t->cols);
        return NULL;
    }
    src->jt_last = src->njt++;
have:
    if (t->ncols != tbl->ncols) {
        free(t->mask);
        t->mask = NULL;
        t->ncols = tbl->ncols;
        for (uint32_t c = 0; c < tbl->ncols && t->ncolnames; c++) {
            for (int k = 0; k < t->ncolnames; k++) {
                if (tbl->cols[c].name && !strcmp(tbl->cols[c].name,
                                                 t->cols[k])) {
                    if (!t->mask)
                        t->mask = cdc_xcalloc(tbl->ncols, 1);
                    t->mask[c] = 1;
                }
            }
        }
    }
    return t;
}

static void json_mark(cdc_value_t *vals, const json_tab_t *t)
{
    if (!vals)
        return;
    for (uint32_t c = 0; c < t->ncols; c++) {
        cdc_value_t *v = &vals[c];
        if (!t->mask[c])
            continue;
        if ((v->kind == CDC_V_STRING || v->kind == CDC_V_BYTES) && v->s &&
            cdc_json_valid(v->s, v->len))
            v->kind = CDC_V_JSON;
    }
}

static int json_postprocess(mysql_src_t *src, cdc_txn_t *tx, cdc_err_t *err)
{
    for (uint32_t i = 0; i < tx->nchanges; i++) {
        cdc_change_t *ch = &tx->changes[i];
        json_tab_t *t;
        if (!ch->tbl)
            continue;
        t = json_lookup(src, ch->tbl, err);
        if (!t)
            return -1;
        if (!t->mask)
            continue;
        json_mark(ch->before, t);
        json_mark(ch->after, t);
    }
    return 0;
}

/* QUERY event other than BEGIN/COMMIT/XA/SAVEPOINT: schema may change. */
static void maybe_ddl(mysql_src_t *src, const uint8_t *ev, size_t len)
{
    size_t crc = cdc_binlog_checksum_alg(src->bl) == 1 ? 4 : 0;
    size_t off, status_len, db_len;
    if (!src->njt)
        return;
    if (ev[4] == QUERY_COMPRESSED_EVENT) {
        json_cache_clear(src);
        return;
    }
    /* post-header: thread_id 4, exec_time 4, db_len 1, error 2,
     * status_vars_len 2 */
    if (len < CDC_BINLOG_HEADER_LEN + 13 + crc)
        return;
    db_len = ev[CDC_BINLOG_HEADER_LEN + 8];
    status_len = (size_t)ev[CDC_BINLOG_HEADER_LEN + 11] |
                 (size_t)ev[CDC_BINLOG_HEADER_LEN + 12] << 8;
    off = CDC_BINLOG_HEADER_LEN + 13 + status_len + db_len + 1;
    if (off > len - crc) {
        json_cache_clear(src);
        return;
    }
    const char *q = (const char *)ev + off;
    size_t qn = len - crc - off;
    static const char *const tx_words[] = {"BEGIN", "COMMIT", "ROLLBACK",
                                           "XA ", "SAVEPOINT", "RELEASE"};
    for (size_t i = 0; i < sizeof tx_words / sizeof *tx_words; i++) {
        size_t wn = strlen(tx_words[i]);
        if (qn >= wn && !strncasecmp(q, tx_words[i], wn))
            return;
    }
    CDC_DEBUG(FAC, "DDL seen: JSON column cache flushed");
    json_cache_clear(src);
}

/* ------------------------------------------------------------------ */
/* the dump                                                            */

static void stream_close(mysql_src_t *src)
{
    pthread_mutex_lock(&src->mu);
    src->repl_fd = -1;
    pthread_mutex_unlock(&src->mu);
    if (src->rpl) {
        /* mariadb_rpl_close() does not close the connection */
        mariadb_rpl_close(src->rpl);
        src->rpl = NULL;
    }
    if (src->repl) {
        mysql_close(src->repl);
        src->repl = NULL;
    }
}

/*
 * MySQL GTID auto-positioning: COM_REGISTER_SLAVE, then
 * COM_BINLOG_DUMP_GTID with the delivered set (gtid_set.h), sent through
 * the connection's command method: libmariadb's mariadb_rpl only ever
 * sends COM_BINLOG_DUMP (PROTOCOLS.md 1.18).  The name is empty and the
 * position 4: the server picks the first binlog with a GTID the set
 * lacks and skips the groups the set holds.  Events are then read as for
 * COM_BINLOG_DUMP.
 */
static int send_dump_gtid(mysql_src_t *src, const char *set, cdc_err_t *err)
{
    cdc_buf_t cmd = CDC_BUF_INIT;
    MYSQL *m = src->repl;
    int rc = -1;

    cdc_my_register_cmd(src->server_id, src->report_host, 0, &cmd);
    if (m->methods->db_command(m, (enum enum_server_command)(uint8_t)cmd.p[0],
                               cmd.p + 1, cmd.len - 1, 0, NULL)) {
        my_fail(src, m, err, "registering as a replica (COM_REGISTER_SLAVE) "
                             "failed");
        goto out;
    }
    if (cdc_my_dump_gtid_cmd(0, src->server_id, "", 4, set, &cmd, err) < 0) {
        cdc_err_hint(err, "the checkpoint's GTID set is damaged: set a "
                          "position with autoglm-cdc offsets set");
        goto out;
    }
    if (m->methods->db_command(m, (enum enum_server_command)(uint8_t)cmd.p[0],
                               cmd.p + 1, cmd.len - 1, 1, NULL)) {
        my_fail(src, m, err, "binlog dump request (COM_BINLOG_DUMP_GTID) "
                             "failed");
        goto out;
    }
    rc = 0;
out:
    cdc_buf_free(&cmd);
    return rc;
}

/* Start a dump at pos; by GTID when by_gtid (MariaDB: the GTID state,
 * MySQL: the GTID set). */
static int stream_open(mysql_src_t *src, const cdc_pos_t *pos, int by_gtid,
                       cdc_err_t *err)
{
    char sql[2600];
    unsigned rt = (unsigned)(src->silent_ms / 1000);
    const char *fname = by_gtid ? "" : pos->file;
    unsigned long start = by_gtid ? 4 : (unsigned long)pos->offset;
    unsigned int sid = src->server_id, flags = 0;

    src->repl = my_connect_mode(src, rt, err);
    if (!src->repl)
        return -1;
    snprintf(sql, sizeof sql,
             "SET @master_binlog_checksum = @@global.binlog_checksum, "
             "@source_binlog_checksum = @@global.binlog_checksum, "
             "@mariadb_slave_capability = 4, "
             "@master_heartbeat_period = %" PRId64 ", "
             "@source_heartbeat_period = %" PRId64,
             src->heartbeat_ms * 1000000, src->heartbeat_ms * 1000000);
    if (q_exec(src, src->repl, sql, err) < 0)
        goto fail;
    if (by_gtid && !src->mariadb) {
        if (send_dump_gtid(src, pos->gtid, err) < 0)
            goto fail;
        goto opened;
    }
    if (by_gtid) {
        char esc[2100];
        size_t n = strnlen(pos->gtid, sizeof pos->gtid);
        mysql_real_escape_string(src->repl, esc, pos->gtid, n);
        snprintf(sql, sizeof sql,
                 "SET @slave_connect_state = '%s', "
                 "@slave_gtid_strict_mode = 1, "
                 "@slave_gtid_ignore_duplicates = 0",
                 esc);
        if (q_exec(src, src->repl, sql, err) < 0)
            goto fail;
    }
    src->rpl = mariadb_rpl_init(src->repl);
    if (!src->rpl) {
        my_fail(src, src->repl, err, "mariadb_rpl_init failed");
        goto fail;
    }
    if (mariadb_rpl_optionsv(src->rpl, MARIADB_RPL_FILENAME, fname,
                             strlen(fname)) ||
        mariadb_rpl_optionsv(src->rpl, MARIADB_RPL_START, start) ||
        mariadb_rpl_optionsv(src->rpl, MARIADB_RPL_SERVER_ID, sid) ||
        mariadb_rpl_optionsv(src->rpl, MARIADB_RPL_FLAGS, flags) ||
        mariadb_rpl_optionsv(src->rpl, MARIADB_RPL_HOST, src->report_host) ||
        mariadb_rpl_optionsv(src->rpl, MARIADB_RPL_PORT, 0)) {
        cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                    "mariadb_rpl_optionsv failed");
        goto fail;
    }
    if (mariadb_rpl_open(src->rpl)) {
        my_fail(src, src->repl, err, "binlog dump request failed");
        goto fail;
    }
opened:
    pthread_mutex_lock(&src->mu);
    src->repl_fd = (int)mysql_get_socket(src->repl);
    pthread_mutex_unlock(&src->mu);
    src->first_packet = 1;
    src->last_packet_ms = now_ms();

    /* a fresh decoder per connection: a group cut by a disconnect is
     * dropped and re-read whole */
    cdc_binlog_destroy(src->bl);
    {
        /* loop prevention: our sinks' transactions are not captured */
        cdc_binlog_opts_t bo = {.verify_checksum = 1,
                                .skip_marked = src->skip_own,
                                .frag_rows = src->frag_rows,
                                .frag_bytes = src->frag_bytes};
        src->bl = cdc_binlog_new(&bo);
    }
    if (!by_gtid)
        cdc_binlog_set_file(src->bl, pos->file);
    if (pos->gtid[0])
        cdc_binlog_set_gtid_state(src->bl, pos->gtid);
    if (by_gtid)
        CDC_INFO(FAC, "binlog dump requested at GTID %s '%s' (server_id %u)",
                 src->mariadb ? "state" : "set", pos->gtid, sid);
    else
        CDC_INFO(FAC, "binlog dump requested at %s:%" PRIu64 " (server_id %u)",
                 pos->file, pos->offset, sid);
    return 0;
fail:
    stream_close(src);
    return -1;
}

static int is_purged_msg(const char *m)
{
    return strcasestr(m, "purged") ||
           strcasestr(m, "Could not find first log") ||
           strcasestr(m, "Could not find GTID") ||
           strcasestr(m, "not in the master's binlog") ||
           strcasestr(m, "not found in the binlog") ||
           strcasestr(m, "requested to start from GTID");
}

static void pos_str(const mysql_src_t *src, const cdc_pos_t *pos, int by_gtid,
                    char *out, size_t n)
{
    if (by_gtid)
        snprintf(out, n, "GTID %s '%s'", src->mariadb ? "state" : "set",
                 pos->gtid);
    else
        snprintf(out, n, "%s:%" PRIu64 "%s%s%s", pos->file, pos->offset,
                 pos->gtid[0] ? " (GTID set '" : "", pos->gtid,
                 pos->gtid[0] ? "')" : "");
}

/* "host:port" of the replica registered with server_id sid (SHOW SLAVE
 * HOSTS / SHOW REPLICAS on a fresh connection), or why it is unknown. */
static void replica_of_id(mysql_src_t *src, uint32_t sid, char *out,
                          size_t n)
{
    const char *sql = (!src->mariadb && src->version >= 80022)
                          ? "SHOW REPLICAS"
                          : "SHOW SLAVE HOSTS";
    cdc_err_t e;
    MYSQL *m = my_connect_mode(src, 10, &e);
    MYSQL_RES *res = m ? q_result(src, m, sql, &e) : NULL;
    MYSQL_ROW row;

    snprintf(out, n, "unknown (%s: %s)", sql,
             m ? mysql_error(m) : "cannot connect");
    while (res && (row = mysql_fetch_row(res)))
        if (row[0] && strtoul(row[0], NULL, 10) == sid)
            replica_name(row, out, n);
    if (res)
        mysql_free_result(res);
    if (m)
        mysql_close(m);
}

static int stream_error(mysql_src_t *src, int by_gtid, cdc_err_t *err)
{
    MYSQL *m = src->repl;
    unsigned e = mysql_errno(m);
    char where[1400];

    pos_str(src, &src->resume, by_gtid, where, sizeof where);
    if (e == ER_SLAVE_SAME_ID) {
        /* another replica connected with our server_id and the server
         * dropped our dump: reconnecting would only drop theirs in turn */
        char who[300];
        replica_of_id(src, src->server_id, who, sizeof who);
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "mysql server %s:%u dropped our binlog dump: another "
                    "replica connected with the same server_id %" PRIu32
                    " (replica %s)",
                    src->host, src->port, src->server_id, who);
        cdc_err_detail(err, "%s (error %u)", mysql_error(m), e);
        cdc_err_hint(err, "give every replica its own mysql.server_id (the "
                          "default derives it from pipeline.name, so two "
                          "pipelines with one name share it), e.g. -X "
                          "mysql.server_id=%" PRIu32,
                     src->server_id + 1 + (uint32_t)(rand() % 1000));
        return -1;
    }
    if (e == ER_MASTER_FATAL_ERROR_READING_BINLOG) {
        const char *msg = mysql_error(m);
        if (strcasestr(msg, "more GTIDs than the")) {
            /* MySQL: our set holds GTIDs the server never executed (its
             * text also names SERVER_UUID: not a server_id clash) */
            cdc_err_set(err, CDC_EXIT_NORESUME, CDC_ERR_F_FATAL,
                        "cannot resume at %s: mysql server %s:%u lacks "
                        "GTIDs already delivered",
                        where, src->host, src->port);
            cdc_err_detail(err, "%s (error %u)", msg, e);
            cdc_err_hint(err, "the server lost transactions that were "
                              "delivered (a truncated binlog, or a split "
                              "brain): promote a server that has them, or "
                              "run a backfill and reset the offsets");
            return -1;
        }
        if (strcasestr(msg, "same server_id") ||
            strcasestr(msg, "server_uuid")) {
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "mysql server refused the binlog dump: %s", msg);
            cdc_err_hint(err, "set a unique mysql.server_id");
            return -1;
        }
        if (strcasestr(msg, "max_allowed_packet")) {
            cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                        "binlog dump at %s failed: %s (error %u)", where,
                        msg, e);
            cdc_err_hint(err, "raise max_allowed_packet on the server");
            return -1;
        }
        /* anything else: the position cannot be served */
        cdc_err_set(err, CDC_EXIT_NORESUME, CDC_ERR_F_FATAL,
                    "cannot resume at %s: %s", where, msg);
        cdc_err_detail(err, "mysql server %s:%u error %u", src->host,
                       src->port, e);
        if (is_purged_msg(msg))
            cdc_err_hint(err, "the binlog needed to resume was purged; run "
                              "a backfill (autoglm-cdc backfill) and reset "
                              "the offsets (autoglm-cdc offsets reset)");
        else
            cdc_err_hint(err, "the position is not valid on this server; "
                              "run a backfill (autoglm-cdc backfill) and "
                              "reset the offsets (autoglm-cdc offsets "
                              "reset)");
        return -1;
    }
    if (e == CR_SERVER_LOST &&
        now_ms() - src->last_packet_ms >= src->silent_ms - 250) {
        /* the read timeout: neither events nor heartbeats arrived */
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                    "binlog link to %s:%u silent: no event or heartbeat for "
                    "%" PRId64 " s (mysql.heartbeat_s)",
                    src->host, src->port, src->silent_ms / 1000);
        cdc_err_hint(err, "the server or the network stopped answering; the "
                          "source reconnects and resumes at %s", where);
        return -1;
    }
    return my_fail(src, m, err, "binlog stream lost");
}

/* More of the stream already waiting on the socket? (Then the feed's
 * wake-up of the consumer can wait for it: cdc_feed_handover.) */
static int socket_ready(void *ctx)
{
    mysql_src_t *src = ctx;
    struct pollfd pfd;
    pfd.fd = (int)mysql_get_socket(src->repl);
    pfd.events = POLLIN;
    pfd.revents = 0;
    return pfd.fd >= 0 && poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

static inline uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/*
 * Read and handle one packet.  Returns 0, or -1 with err.  A completed
 * txn is pushed into the queue.
 */
static int stream_step(mysql_src_t *src, int by_gtid, cdc_err_t *err)
{
    unsigned long len;
    const uint8_t *p, *ev;
    size_t evlen;
    uint32_t evsize, logpos;
    uint64_t offset;
    cdc_txn_t *tx = NULL;
    int rc;

    if (cdc_feed_stopped(src->feed)) {
        cdc_err_set(err, CDC_EXIT_OK, 0, "stopped");
        return -1;
    }
    cdc_feed_handover(src->feed, socket_ready, src);
    len = mysql_net_read_packet(src->repl);
    if (len == packet_error || len == 0) {
        if (cdc_feed_stopped(src->feed)) {
            cdc_err_set(err, CDC_EXIT_OK, 0, "stopped");
            return -1;
        }
        if (len == 0) {
            cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                        "binlog stream from %s:%u: empty packet", src->host,
                        src->port);
            return -1;
        }
        return stream_error(src, by_gtid, err);
    }
    src->last_packet_ms = now_ms();
    p = src->repl->net.read_pos;
    if (p[0] == 0xFE && len < 9) {
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                    "mysql server %s:%u ended the binlog stream", src->host,
                    src->port);
        return -1;
    }
    if (p[0] != 0x00) {
        cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_FATAL,
                    "binlog stream from %s:%u: unexpected packet type 0x%02x "
                    "(length %lu)",
                    src->host, src->port, p[0], len);
        return -1;
    }
    ev = p + 1;
    evlen = len - 1;
    if (evlen < CDC_BINLOG_HEADER_LEN) {
        cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_FATAL,
                    "binlog stream: event of %zu bytes is shorter than its "
                    "header",
                    evlen);
        return -1;
    }
    evsize = le32(ev + 9);
    logpos = le32(ev + 13);
    if (evsize != evlen) {
        cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_FATAL,
                    "binlog stream: event size %" PRIu32 " does not match "
                    "the packet (%zu bytes)",
                    evsize, evlen);
        return -1;
    }
    src->first_packet = 0;
    src->events++;
    if (ev[4] == HEARTBEAT_LOG_EVENT || ev[4] == HEARTBEAT_LOG_EVENT_V2)
        return 0;
    /* offset of the event in its file; artificial events (fake ROTATE,
     * FDE replayed at a later position) carry log_pos 0 */
    offset = (logpos >= evsize) ? (uint64_t)(logpos - evsize) : 0;
    rc = cdc_binlog_feed(src->bl, ev, evlen, offset, &tx, err);
    if (rc < 0) {
        char where[1400];
        pos_str(src, &src->resume, by_gtid, where, sizeof where);
        cdc_err_detail(err, "while decoding the stream after %s", where);
        err->flags |= CDC_ERR_F_FATAL;
        return -1;
    }
    if (src->mariadb &&
        (ev[4] == QUERY_EVENT || ev[4] == QUERY_COMPRESSED_EVENT))
        maybe_ddl(src, ev, evlen);
    if (rc == 1 && tx) {
        if (src->mariadb && tx->nchanges &&
            json_postprocess(src, tx, err) < 0) {
            cdc_txn_destroy(tx);
            return -1;
        }
        /* a fragment's pos is not a resume point: after a reconnect the
         * group is read again from its start (fragment 0 again) */
        if (!tx->more)
            src->resume = tx->pos;
        if (cdc_feed_push(src->feed, tx) < 0) {
            cdc_err_set(err, CDC_EXIT_OK, 0, "stopped");
            return -1;
        }
    }
    return 0;
}

/* Can pos be sent as a MySQL GTID set: not empty (an empty set would
 * replay the whole binlog) and not cut at the checkpoint's size limit? */
static int set_usable(const cdc_pos_t *pos)
{
    size_t n = strnlen(pos->gtid, sizeof pos->gtid);
    return n > 0 && n < sizeof pos->gtid - 1;
}

/* Should the next connection resume by GTID?  MariaDB: when there is a
 * state; MySQL: with gtid_mode=ON and a usable set; mysql.position=file:
 * never, except after a failover (force_gtid), where the old server's
 * file:pos means nothing, and before the first transaction of a start at
 * a GTID (no file:pos known). */
static int use_gtid(const mysql_src_t *src, const cdc_pos_t *pos)
{
    if (src->force_gtid)
        return 1;
    if (!pos->file[0]) /* started at a GTID, no transaction yet */
        return pos->gtid[0] != '\0';
    if (src->pos_mode == POS_FILE)
        return 0;
    if (src->mariadb)
        return pos->gtid[0] != '\0';
    return src->gtid_on && set_usable(pos);
}

/*
 * Another server of the list that failover.c accepts for the GTID state
 * ckpt ("" = none yet: any writable one).  Returns its index with *mp
 * connected to it; -1 with err: CDC_EXIT_NORESUME for a server that lacks
 * delivered GTIDs, else none is acceptable now (err untouched).
 */
static int pick_host(mysql_src_t *src, const char *ckpt, MYSQL **mp,
                     cdc_err_t *err)
{
    for (int i = 0; i < src->nhosts; i++) {
        char *host = src->host, name[300], why[400] = "";
        unsigned port = src->port;
        cdc_err_t e;
        MYSQL *m;
        int rc, maria;

        if (i == src->cur_host)
            continue;
        snprintf(name, sizeof name, "%s:%u", src->hosts[i].host,
                 src->hosts[i].port);
        src->host = src->hosts[i].host; /* borrowed while probing */
        src->port = src->hosts[i].port;
        m = my_connect_mode(src, 30, &e);
        src->host = host;
        src->port = port;
        if (!m) {
            CDC_INFO(FAC, "failover candidate %s unreachable: %s", name,
                     e.msg);
            continue;
        }
        maria = strstr(mysql_get_server_info(m), "MariaDB") != NULL;
        rc = cdc_my_candidate_check(m, maria, name, ckpt, src->follow_ro,
                                    why, sizeof why, &e);
        if (rc == 0) {
            *mp = m;
            return i;
        }
        mysql_close(m);
        if (rc < 0 && e.code == CDC_EXIT_NORESUME) {
            *err = e;
            return -1;
        }
        CDC_INFO(FAC, "failover candidate %s not taken: %s", name,
                 rc > 0 ? why : e.msg);
    }
    return -1;
}

/* A MySQL source can follow another server only by GTID set: not with
 * mysql.position=file, nor without a usable delivered set.  Returns 1
 * with err (CDC_EXIT_NORESUME) when so. */
static int mysql_failover_refused(mysql_src_t *src, const cdc_pos_t *pos,
                                  cdc_err_t *err)
{
    const char *why = NULL;
    if (src->pos_mode == POS_FILE)
        why = "mysql.position=file";
    else if (!pos->gtid[0])
        why = "no GTID was delivered yet (gtid_mode=ON on the old primary?)";
    else if (!set_usable(pos))
        why = "the delivered GTID set is longer than a checkpoint holds";
    if (!why)
        return 0;
    cdc_err_set(err, CDC_EXIT_NORESUME, CDC_ERR_F_FATAL,
                "cannot follow the MySQL primary %s:%u to another server: "
                "%s, and its binlog file:pos means nothing elsewhere",
                src->host, src->port, why);
    cdc_err_hint(err, "find the binlog file:pos of GTID set '%.300s' on the "
                      "new primary and store it with autoglm-cdc offsets "
                      "set, then restart with mysql.dsn naming it",
                 pos->gtid);
    return 1;
}

/* Make server i of the list the current one. */
static void switch_host(mysql_src_t *src, int i)
{
    CDC_WARN(FAC, "failing over from %s:%u to %s:%u at GTID %s '%s'",
             src->host, src->port, src->hosts[i].host, src->hosts[i].port,
             src->mariadb ? "state" : "set", src->resume.gtid);
    set_str(&src->host, src->hosts[i].host);
    src->port = src->hosts[i].port;
    src->cur_host = i;
    src->force_gtid = 1;
    if (!src->mariadb)
        src->gtid_on = 1; /* the candidate check asked @@gtid_mode */
    if (src->meta) { /* reconnected to the new server on demand */
        mysql_close(src->meta);
        src->meta = NULL;
    }
}

/*
 * Follow another server of the list (the current one is unreachable).
 * Returns 0 streaming from it, -1 with err: the original (retriable)
 * error when none is acceptable yet, or CDC_EXIT_NORESUME.
 */
static int failover(mysql_src_t *src, int *by_gtid, cdc_err_t *err)
{
    MYSQL *m = NULL;
    int i;
    if (!src->mariadb && mysql_failover_refused(src, &src->resume, err))
        return -1;
    i = pick_host(src, src->resume.gtid, &m, err);
    if (i < 0)
        return -1;
    mysql_close(m);
    switch_host(src, i);
    *by_gtid = 1;
    return stream_open(src, &src->resume, 1, err);
}

/* start(): the configured server, else another of the list that holds
 * the checkpoint's GTIDs (the tool restarted after a failover). */
static MYSQL *start_connect(mysql_src_t *src, const cdc_pos_t *resume,
                            cdc_err_t *err)
{
    MYSQL *m = my_connect_mode(src, 30, err);
    int i;
    if (m || src->nhosts < 2 || !(err->flags & CDC_ERR_F_RETRIABLE))
        return m;
    if (resume)
        src->resume = *resume; /* for the log line of switch_host */
    i = pick_host(src, resume ? resume->gtid : "", &m, err);
    if (i < 0)
        return NULL;
    if (resume && (resume->file[0] || resume->gtid[0]) &&
        !strstr(mysql_get_server_info(m), "MariaDB") &&
        mysql_failover_refused(src, resume, err)) {
        mysql_close(m);
        return NULL;
    }
    switch_host(src, i);
    return m;
}

/* Reconnect: the current server, else (several configured) another. */
static int reopen(mysql_src_t *src, int *by_gtid, cdc_err_t *err)
{
    if (stream_open(src, &src->resume, *by_gtid, err) == 0)
        return 0;
    if (src->nhosts < 2 || !(err->flags & CDC_ERR_F_RETRIABLE) ||
        !src->resume.gtid[0])
        return -1;
    return failover(src, by_gtid, err);
}

/* The source state for /readyz while reconnecting: why the link was
 * lost and, after a failed attempt, why the attempt failed. */
static void attempt_state(const char *why, int attempt, const cdc_err_t *err)
{
    char msg[sizeof err->msg * 2 + 64];
    if (attempt == 1 || !strcmp(why, err->msg))
        snprintf(msg, sizeof msg, "%s", why);
    else
        snprintf(msg, sizeof msg, "%s; reconnect attempt %d failed: %s",
                 why, attempt - 1, err->msg);
    cdc_metrics_source_state(0, msg);
}

static void *reader_main(void *arg)
{
    mysql_src_t *src = arg;
    cdc_err_t err;
    int by_gtid = use_gtid(src, &src->resume);
    cdc_backoff_t bo;

    cdc_backoff_init(&bo, 0, 0);
    for (;;) {
        while (stream_step(src, by_gtid, &err) == 0)
            ;
        /* hand over what is queued before any backoff */
        cdc_feed_handover(src->feed, NULL, NULL);
        if (cdc_feed_stopped(src->feed))
            break;
        if (!(err.flags & CDC_ERR_F_RETRIABLE) || !src->reconnect) {
            cdc_feed_fail(src->feed, &err);
            break;
        }
        /* reconnect with the engine's backoff */
        char why[sizeof err.msg];
        stream_close(src);
        /* /readyz keeps the cause of the loss, plus the last attempt's */
        snprintf(why, sizeof why, "%s", err.msg);
        for (;;) {
            char where[1400];
            int64_t ms = cdc_backoff_next(&bo);
            CDC_WARN(FAC, "%s; reconnecting in %" PRId64 " ms (attempt %d)",
                     err.msg, ms, bo.attempt);
            attempt_state(why, bo.attempt, &err);
            if (cdc_feed_nap(src->feed, ms))
                goto out;
            by_gtid = use_gtid(src, &src->resume);
            pos_str(src, &src->resume, by_gtid, where, sizeof where);
            if (reopen(src, &by_gtid, &err) == 0) {
                CDC_INFO(FAC, "reconnected to %s:%u, resuming at %s",
                         src->host, src->port, where);
                cdc_metrics_source_state(1, NULL);
                cdc_metrics_reconnect();
                cdc_backoff_reset(&bo);
                break;
            }
            if (!(err.flags & CDC_ERR_F_RETRIABLE)) {
                cdc_feed_fail(src->feed, &err);
                goto out;
            }
        }
    }
out:
    return NULL;
}

/* ------------------------------------------------------------------ */
/* ops                                                                 */

/* Resolve the start position from resume or mysql.from. */
static int resolve_start(mysql_src_t *src, const cdc_pos_t *resume,
                         const srv_status_t *st, cdc_pos_t *pos,
                         int *by_gtid, cdc_err_t *err)
{
    const char *from = src->from;
    memset(pos, 0, sizeof *pos);
    *by_gtid = 0;

    if (resume && (resume->file[0] || resume->gtid[0])) {
        *pos = *resume;
        *by_gtid = use_gtid(src, pos);
        if (!*by_gtid && !pos->file[0]) {
            cdc_err_set(err, CDC_EXIT_NORESUME, CDC_ERR_F_FATAL,
                        "checkpoint has a GTID set but no binlog file, and "
                        "%s",
                        src->pos_mode == POS_FILE
                            ? "mysql.position=file"
                            : "the server has gtid_mode other than ON");
            cdc_err_hint(err, "set a position with autoglm-cdc offsets set, "
                              "or run a backfill and reset the offsets");
            return -1;
        }
        if (pos->file[0] && pos->offset < 4)
            pos->offset = 4;
        return 0;
    }
    if (!strcmp(from, "now")) {
        snprintf(pos->file, sizeof pos->file, "%s", st->file);
        pos->offset = st->pos;
        snprintf(pos->gtid, sizeof pos->gtid, "%s", st->gtid);
        *by_gtid = !src->mariadb && use_gtid(src, pos);
        return 0;
    }
    if (!strcmp(from, "beginning")) {
        cdc_err_t e;
        MYSQL_RES *res = q_result(src, src->meta, "SHOW BINARY LOGS", err);
        MYSQL_ROW row;
        if (!res)
            return -1;
        if ((row = mysql_fetch_row(res)) && row[0])
            snprintf(pos->file, sizeof pos->file, "%s", row[0]);
        mysql_free_result(res);
        if (!pos->file[0]) {
            cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                        "SHOW BINARY LOGS returned no file");
            return -1;
        }
        pos->offset = 4;
        if (!src->mariadb) {
            /* by GTID: the purged set, so the server sends every GTID it
             * still has; by file: the first file, whose PREVIOUS_GTIDS
             * (the purged set) the decoder merges */
            snprintf(pos->gtid, sizeof pos->gtid, "%s", st->gtid_purged);
            *by_gtid = use_gtid(src, pos);
        } else {
            char q[700], ef[520];
            mysql_real_escape_string(src->meta, ef, pos->file,
                                     strlen(pos->file));
            snprintf(q, sizeof q, "SELECT BINLOG_GTID_POS('%s', 4)", ef);
            res = q_result(src, src->meta, q, &e);
            if (res) {
                if ((row = mysql_fetch_row(res)) && row[0])
                    snprintf(pos->gtid, sizeof pos->gtid, "%s", row[0]);
                mysql_free_result(res);
            }
        }
        return 0;
    }
    if (is_file_pos(from, pos->file, sizeof pos->file, &pos->offset)) {
        if (pos->offset < 4)
            pos->offset = 4;
        if (src->mariadb) {
            char q[700], ef[520];
            cdc_err_t e;
            MYSQL_RES *res;
            MYSQL_ROW row;
            mysql_real_escape_string(src->meta, ef, pos->file,
                                     strlen(pos->file));
            snprintf(q, sizeof q, "SELECT BINLOG_GTID_POS('%s', %" PRIu64 ")",
                     ef, pos->offset);
            res = q_result(src, src->meta, q, &e);
            if (res) {
                if ((row = mysql_fetch_row(res)) && row[0])
                    snprintf(pos->gtid, sizeof pos->gtid, "%s", row[0]);
                mysql_free_result(res);
            }
        } else if (src->gtid_on && src->pos_mode != POS_FILE) {
            /* the set at FILE:POS is unknown: a later resume by GTID from
             * a partial set would replay the server's binlog */
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "mysql.from=%s: MySQL server %s:%u has "
                        "gtid_mode=ON and the source resumes by GTID set, "
                        "but the GTID set at a file position is not known",
                        from, src->host, src->port);
            cdc_err_hint(err, "give mysql.from the GTID set instead (the "
                              "Executed_Gtid_Set SHOW BINARY LOG STATUS "
                              "printed with that position), or set "
                              "mysql.position=file (no failover then)");
            return -1;
        } else {
            CDC_WARN(FAC, "starting at %s:%" PRIu64 " on MySQL: the executed "
                          "GTID set is tracked from here on only",
                     pos->file, pos->offset);
        }
        return 0;
    }
    /* a GTID state (MariaDB) or set (MySQL) */
    if (!src->mariadb && (!src->gtid_on || src->pos_mode == POS_FILE)) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "mysql.from=%s: starting MySQL at a GTID set needs "
                    "gtid_mode=ON on the server%s",
                    from, src->pos_mode == POS_FILE
                              ? " and mysql.position other than file"
                              : "");
        cdc_err_hint(err, "start at FILE:POS (SHOW BINARY LOG STATUS), now "
                          "or beginning");
        return -1;
    }
    if (!src->mariadb && !uuid_prefix(from)) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "mysql.from=%s is a MariaDB GTID state, but the server "
                    "%s:%u is MySQL",
                    from, src->host, src->port);
        cdc_err_hint(err, "give a MySQL GTID set (uuid:1-100)");
        return -1;
    }
    if (src->mariadb && uuid_prefix(from)) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "mysql.from=%s is a MySQL GTID set, but the server "
                    "%s:%u is MariaDB",
                    from, src->host, src->port);
        cdc_err_hint(err, "give a MariaDB GTID state (0-1-100)");
        return -1;
    }
    snprintf(pos->gtid, sizeof pos->gtid, "%s", from);
    *by_gtid = 1;
    return 0;
}

/* The first GTID domain of state want ("d-s-n,...") that no GTID of
 * have names; -1 when every domain is known (or want is not a state). */
static long missing_domain(const char *want, const char *have)
{
    for (const char *w = want; *w;) {
        char *end;
        unsigned long d = strtoul(w, &end, 10);
        int found = 0;
        if (end == w || *end != '-')
            return -1;
        for (const char *h = have; *h && !found;) {
            char *he;
            unsigned long hd = strtoul(h, &he, 10);
            if (he == h)
                break;
            found = hd == d && *he == '-';
            h = strchr(h, ',') ? strchr(h, ',') + 1 : h + strlen(h);
        }
        if (!found)
            return (long)d;
        w = strchr(w, ',') ? strchr(w, ',') + 1 : w + strlen(w);
    }
    return -1;
}

/* A MariaDB server asked to start at a GTID in a domain its binlog has
 * never had starts that domain from its first binlog instead (it assumes
 * the domain is yet to come), replaying everything: refuse. */
static int check_gtid_domains(const mysql_src_t *src, const cdc_pos_t *pos,
                              const srv_status_t *st, cdc_err_t *err)
{
    long d = missing_domain(pos->gtid, st->gtid);
    if (d < 0)
        return 0;
    cdc_err_set(err, CDC_EXIT_NORESUME, CDC_ERR_F_FATAL,
                "cannot resume at GTID state '%s': mysql server %s:%u has "
                "no GTID domain %ld in its binlog",
                pos->gtid, src->host, src->port, d);
    cdc_err_detail(err, "the server's binlog state is '%s'; it would replay "
                        "its binlog from the start instead",
                   st->gtid[0] ? st->gtid : "empty");
    cdc_err_hint(err, "the position belongs to another server, or this "
                      "server's binlog was reset (RESET MASTER): check "
                      "mysql.dsn, else run a backfill (autoglm-cdc backfill) "
                      "and reset the offsets (autoglm-cdc offsets reset)");
    return -1;
}

/* A MySQL server asked to start at GTID set pos->gtid: it must hold
 * every GTID of the set (else it refuses: the set comes from another
 * server) and still have the binlogs of every GTID the set lacks (else
 * they were purged undelivered).  Both are checked here to name the GTIDs
 * (texts cut at the status buffer's size are not compared). */
static int check_gtid_set(const mysql_src_t *src, const cdc_pos_t *pos,
                          const srv_status_t *st, cdc_err_t *err)
{
    cdc_buf_t miss = CDC_BUF_INIT;
    cdc_err_t e; /* a text that does not parse: the server judges */
    int rc = 0;

    if (strlen(st->gtid) < sizeof st->gtid - 1 &&
        cdc_gtid_missing(pos->gtid, st->gtid, 0, &miss, &e) > 0) {
        cdc_err_set(err, CDC_EXIT_NORESUME, CDC_ERR_F_FATAL,
                    "cannot resume at GTID set '%.300s': mysql server %s:%u "
                    "lacks GTIDs already delivered: %.300s",
                    pos->gtid, src->host, src->port, miss.p);
        cdc_err_hint(err, "the position belongs to another server, or this "
                          "one lost transactions: check mysql.dsn, else run "
                          "a backfill (autoglm-cdc backfill) and reset the "
                          "offsets (autoglm-cdc offsets reset)");
        rc = -1;
    } else if (strlen(st->gtid_purged) < sizeof st->gtid_purged - 1 &&
               cdc_gtid_missing(st->gtid_purged, pos->gtid, 0, &miss, &e) >
                   0) {
        cdc_err_set(err, CDC_EXIT_NORESUME, CDC_ERR_F_FATAL,
                    "cannot resume at GTID set '%.300s': mysql server %s:%u "
                    "purged the binlogs of GTIDs not delivered yet: %.300s",
                    pos->gtid, src->host, src->port, miss.p);
        cdc_err_hint(err, "the binlog needed to resume was purged; run a "
                          "backfill (autoglm-cdc backfill) and reset the "
                          "offsets (autoglm-cdc offsets reset)");
        rc = -1;
    }
    cdc_buf_free(&miss);
    return rc;
}

static int my_start(cdc_source_t *base, const cdc_pos_t *resume,
                    cdc_err_t *err)
{
    mysql_src_t *src = (mysql_src_t *)base;
    srv_status_t st;
    cdc_pos_t pos;
    int by_gtid;

    if (src->started) {
        cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                    "mysql source started twice");
        return -1;
    }
    src->meta = start_connect(src, resume, err);
    if (!src->meta)
        return -1;
    if (preflight(src, src->meta, &st, 1, err) < 0)
        return -1;
    if (resolve_start(src, resume, &st, &pos, &by_gtid, err) < 0 ||
        (by_gtid && src->mariadb &&
         check_gtid_domains(src, &pos, &st, err) < 0) ||
        (by_gtid && !src->mariadb && check_gtid_set(src, &pos, &st, err) < 0))
        return -1;
    if (!src->mariadb) {
        /* the metadata connection is only needed for MariaDB JSON */
        mysql_close(src->meta);
        src->meta = NULL;
    }
    src->resume = pos;
    if (stream_open(src, &pos, by_gtid, err) < 0)
        return -1;
    /* the first packet is the fake ROTATE or the server's refusal (purged
     * binlog, unknown GTID): report that from start() */
    if (stream_step(src, by_gtid, err) < 0) {
        stream_close(src);
        return -1;
    }
    src->started = 1;
    if (pthread_create(&src->thr, NULL, reader_main, src)) {
        cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                    "cannot start the binlog reader thread: %s",
                    strerror(errno));
        return -1;
    }
    src->thr_started = 1;
    return 0;
}

static int my_next(cdc_source_t *base, cdc_txn_t **out, int timeout_ms,
                   cdc_err_t *err)
{
    mysql_src_t *src = (mysql_src_t *)base;

    *out = NULL;
    if (!src->started) {
        cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                    "mysql source not started");
        return -1;
    }
    return cdc_feed_pop(src->feed, out, timeout_ms, err);
}

static int my_confirm(cdc_source_t *base, const cdc_pos_t *durable,
                      cdc_err_t *err)
{
    /* The server keeps no per-client state for a binlog dump: the
     * checkpoint file is the only record of progress. */
    (void)base;
    (void)durable;
    (void)err;
    return 0;
}

static void my_destroy(cdc_source_t *base)
{
    mysql_src_t *src = (mysql_src_t *)base;
    if (!src)
        return;
    if (src->thr_started) {
        /* the stop first: a read woken by the shutdown sees it */
        cdc_feed_stop(src->feed);
        pthread_mutex_lock(&src->mu);
        if (src->repl_fd >= 0)
            shutdown(src->repl_fd, SHUT_RDWR); /* wake a blocked read */
        pthread_mutex_unlock(&src->mu);
        pthread_join(src->thr, NULL);
    }
    stream_close(src);
    src_free(src);
}

static cdc_source_t *my_create_ops(const cdc_conf_t *conf, cdc_err_t *err);

const cdc_source_ops_t cdc_source_mysql_ops = {
    .name = "mysql",
    .abi = CDC_PLUGIN_ABI,
    .create = my_create_ops,
    .start = my_start,
    .next = my_next,
    .confirm = my_confirm,
    .destroy = my_destroy,
    .aliases = (const char *const[]){"mariadb", NULL},
    .position = CDC_POS_BINLOG,
};

static cdc_source_t *my_create_ops(const cdc_conf_t *conf, cdc_err_t *err)
{
    cdc_source_t *s = my_create(conf, err);
    if (s)
        s->ops = &cdc_source_mysql_ops;
    return s;
}
