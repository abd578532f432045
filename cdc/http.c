/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c - the operational HTTP endpoint (libmicrohttpd, run by one
 * thread of ours):
 *
 *   GET /         the status page: an HTML table that refreshes itself
 *                 from /status and /status/peers, one row per pipeline
 *                 (token required if http.token)
 *   GET /metrics  Prometheus text format (token required if http.token)
 *   GET /status   JSON status document (token required if http.token)
 *   GET /status/peers  {"age_ms":N,"rows":[...]}: the `status --json`
 *                 rows of the other pipelines of state.dir (token too)
 *   GET /livez    200 "ok" while the process serves requests
 *   GET /readyz   200 {"ready":true} or 503 {"ready":false,"reasons":[..]}
 *
 * Bound to 127.0.0.1 unless http.listen names another address.  The
 * token is compared in constant time and never logged; it comes in the
 * Authorization header or the autoglm_cdc_token cookie (the page sets
 * it), never in the URL: a request whose query names a token is refused.
 * While the daemon runs, <state.dir>/<pipeline>.daemon records its pid
 * and, when listening, the endpoint's URL: `status` asks every pipeline
 * sharing a state directory, and a backfill knows that a daemon runs.
 *
 * Slow clients cannot starve the probes.  Our own thread runs the daemon
 * (MHD external mode) and keeps a table of open connections:
 *   - at most HTTP_MAX_CONN connections, HTTP_MAX_PER_ADDR from one address;
 *   - a request's headers must arrive within http.header_timeout_ms
 *     (default 3000) of the connect, or the connection is closed;
 *   - at either limit a new connection takes the place of the oldest one
 *     stuck in its headers (or older than the header timeout), else of the
 *     oldest that has sent nothing yet; a complete request waiting to be
 *     read never gives way.  So a probe, which sends its
 *     request at once, always gets a slot and an answer; only when no
 *     connection can give way is the new one refused;
 *   - refusals and evictions are counted and logged at most once per
 *     HTTP_LOG_EVERY_US, as are libmicrohttpd's own messages;
 *   - the table's state (open, stuck in their headers) and the running
 *     totals are published after each turn of the loop for
 *     cdc_http_stats, read by other threads.
 *
 * The other pipelines of the state directory are asked by a refresher
 * thread of ours every HTTP_PEERS_EVERY_MS (HTTP_PEERS_TIMEOUT_MS per
 * request, cdc_status_peers_json), never by the HTTP thread: a request
 * for /status/peers is served from its last result, so a peer that hangs
 * cannot block this endpoint, and two daemons asking each other cannot
 * deadlock.  A peer that does not answer is "unknown" (it holds its run
 * lock) or "offline"; a result older than 10 s is marked stale by the page.
 *
 * A scrape of /metrics first runs the plugins' scrape hooks
 * (cdc_metrics_scrape), which refresh the gauges read on demand.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cdc/buf.h"
#include "cdc/conf.h"
#include "cdc/log.h"
#include "cdc/metrics.h"

#define FAC "http"
#define HTTP_MAX_CONN 64
#define HTTP_MAX_PER_ADDR 8
#define HTTP_LOG_EVERY_US INT64_C(10000000)
#define HTTP_POLL_MS 100
#define HTTP_PEERS_EVERY_MS 2000
#define HTTP_PEERS_TIMEOUT_MS 1000

/* one open connection (HTTP thread only) */
typedef struct http_conn {
    int used, fd;
    int line_seen;    /* the request line arrived */
    int headers_done; /* the request line and headers arrived */
    int closing;      /* shut down by us, MHD closes it next */
    int spared;       /* victim(): has a request waiting, skip */
    int64_t start_us;
    struct sockaddr_storage addr;
} http_conn_t;

struct cdc_http {
    struct MHD_Daemon *d;
    pthread_t thr;
    int thr_started;
    volatile int stop;
    /* the connection table, MHD's own limit; larger than ours, as a
     * connection we shut down lingers until MHD notices */
    http_conn_t conns[4 * HTTP_MAX_CONN];
    /* throttled logging */
    int64_t log_next_us;
    unsigned n_refused, n_evicted, n_timed_out, n_mhd_quiet;
    unsigned mhd_lines; /* MHD messages logged in this window */
    int64_t header_timeout_us; /* http.header_timeout_ms */
    /* running totals and the table's state, written by the HTTP thread
     * (atomically: cdc_http_stats reads them from others) */
    uint64_t tot_refused, tot_evicted, tot_timed_out;
    unsigned st_open, st_stuck;
    char *token;   /* NULL = no auth */
    int port;
    char *record; /* <state.dir>/<pipeline>.daemon, removed at stop */
    /* the other pipelines of state.dir (refresher thread) */
    pthread_t peers_thr;
    int peers_started;
    pthread_mutex_t peers_mu;
    cdc_buf_t peers;   /* JSON array, under peers_mu */
    int64_t peers_at_us; /* when gathered, 0 never */
    char *state, *self;
    char *listen; /* http.listen: peers on its host may get the token */
};

#define TOKEN_COOKIE "autoglm_cdc_token"

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    cdc_http_t *h = cls;
    char msg[1024];
    size_t n;

    if (h && h->mhd_lines >= 3) { /* throttled: counted, reported later */
        h->n_mhd_quiet++;
        return;
    }
    if (h)
        h->mhd_lines++;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    CDC_WARN(FAC, "%s", msg);
}

/* Constant-time comparison of a presented credential (p, n bytes). */
static int token_eq(const cdc_http_t *h, const char *p, size_t n)
{
    size_t m = strlen(h->token);
    unsigned char diff = 0;

    for (size_t i = 0; i < m; i++)
        diff |= (unsigned char)(h->token[i] ^ (i < n ? p[i] : 0));
    return diff == 0 && n == m;
}

/* The token from "Authorization: Bearer" or the autoglm_cdc_token
 * cookie (the status page sets it; a browser cannot send a header on
 * navigation). */
static int token_ok(const cdc_http_t *h, struct MHD_Connection *c)
{
    const char *auth, *p;

    if (!h->token)
        return 1;
    auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth && !strncasecmp(auth, "Bearer ", 7)) {
        p = auth + 7;
        while (*p == ' ')
            p++;
        return token_eq(h, p, strlen(p));
    }
    p = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, TOKEN_COOKIE);
    return p && token_eq(h, p, strlen(p));
}

/* Any query argument naming a token: the token never goes in a URL
 * (it would stay in histories, proxies and logs). */
static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind,
                                 const char *key, const char *value)
{
    int *found = cls;
    (void)kind;
    (void)value;
    if (key && (strcasestr(key, "token") || strcasestr(key, "auth")))
        *found = 1;
    return MHD_YES;
}

static int token_in_url(struct MHD_Connection *c)
{
    int found = 0;
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_arg, &found);
    return found;
}

/*
 * The status page: a table that fetches /status every 2 s (same origin,
 * so the cookie goes along).  Without a valid token, a form that stores
 * the token as a SameSite=Strict cookie and reloads: it never goes in
 * the URL.  Values are inserted as text (textContent), never as HTML.
 */
static const char page_html[] =
"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
"<meta name=\"viewport\" content=\"width=device-width\">\n"
"<title>autoglm-cdc status</title>\n<style>\n"
"body{font:14px system-ui,sans-serif;margin:2em;color:#222}\n"
"table{border-collapse:collapse}th,td{padding:.4em .8em;border-bottom:1px "
"solid #ddd;text-align:left}\n"
"td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}\n"
".online{color:#080;font-weight:bold}.offline{color:#b00;font-weight:bold}\n"
".unknown{color:#a60;font-weight:bold}\n"
"#updated{color:#777;margin-top:1em}#err{color:#b00}\n</style></head>\n"
"<body><h1>Linkage status</h1>\n"
"<table id=\"status\"><thead><tr><th>Application</th><th>Pipeline</th>"
"<th>Status</th><th>Last sync</th><th>Latency</th><th>Lag</th>"
"<th>Throughput</th><th>Dead letters</th><th>Last error</th></tr></thead>\n"
"<tbody></tbody></table>\n<p id=\"updated\"></p><p id=\"err\"></p>\n"
"<script>\n"
"'use strict';\n"
"// one row per pipeline: this daemon's own /status document first, then\n"
"// the other pipelines of its state directory (/status/peers, gathered in\n"
"// the background by the daemon: a peer that does not answer is \"unknown\")\n"
"const prev = {};\n"
"function cell(tr, text, cls) {\n"
"  const td = document.createElement('td');\n"
"  td.textContent = text;\n"
"  if (cls) td.className = cls;\n"
"  tr.appendChild(td);\n"
"}\n"
"function num(v) { return typeof v === 'number' ? v : null; }\n"
"function own(d) {\n"
"  return {application: d.application, pipeline: d.pipeline,\n"
"    status: d.status, last_sync_time: d.last_sync_time,\n"
"    latency_ms: num(d.latency_ms), lag_seconds: num(d.lag_seconds),\n"
"    events: num(d.events),\n"
"    dead_letters: d.sink && d.sink.dead_letters !== undefined ?\n"
"      d.sink.dead_letters : 0,\n"
"    error: (d.source && d.source.error) || (d.sink && d.sink.error) || ''};\n"
"}\n"
"function peer(r, stale) {\n"
"  return {application: r.application, pipeline: r.pipeline,\n"
"    status: (r.status || '?') + (stale ? ' (stale)' : ''),\n"
"    last_sync_time: r.last_sync_time, latency_ms: num(r.latency_ms),\n"
"    lag_seconds: num(r.lag_seconds), events: num(r.events),\n"
"    dead_letters: num(r.dead_letters), error: r.error || ''};\n"
"}\n"
"function render(rows) {\n"
"  const tb = document.querySelector('#status tbody');\n"
"  tb.textContent = '';\n"
"  const now = Date.now();\n"
"  for (const r of rows) {\n"
"    const tr = document.createElement('tr');\n"
"    const key = r.pipeline || '';\n"
"    tr.dataset.pipeline = key;\n"
"    let tput = '-';\n"
"    const p = prev[key];\n"
"    if (p && p.events !== null && r.events !== null && now > p.t)\n"
"      tput = ((r.events - p.events) * 1000 / (now - p.t)).toFixed(1) +\n"
"        ' changes/s';\n"
"    cell(tr, r.application || '');\n"
"    cell(tr, r.pipeline || '');\n"
"    const st = (r.status || '?').split(' ')[0];\n"
"    cell(tr, r.status || '?', st === 'online' || st === 'unknown' ? st :\n"
"      'offline');\n"
"    cell(tr, r.last_sync_time || '-');\n"
"    cell(tr, r.latency_ms === null ? '-' : r.latency_ms + ' ms', 'num');\n"
"    cell(tr, r.lag_seconds === null ? '-' :\n"
"      r.lag_seconds.toFixed(1) + ' s', 'num');\n"
"    cell(tr, tput, 'num');\n"
"    cell(tr, r.dead_letters === null ? '-' : String(r.dead_letters), 'num');\n"
"    cell(tr, r.error);\n"
"    tb.appendChild(tr);\n"
"    prev[key] = {events: r.events, t: now};\n"
"  }\n"
"  document.getElementById('updated').textContent = 'updated ' +\n"
"    new Date(now).toISOString();\n"
"}\n"
"async function getJSON(path) {\n"
"  const r = await fetch(path, {credentials: 'same-origin', cache: 'no-store'});\n"
"  if (!r.ok) throw new Error(path + ' answered HTTP ' + r.status);\n"
"  return r.json();\n"
"}\n"
"async function refresh() {\n"
"  const errs = [];\n"
"  let mine = null, others = [];\n"
"  const got = await Promise.allSettled([getJSON('/status'),\n"
"                                        getJSON('/status/peers')]);\n"
"  if (got[0].status === 'fulfilled') mine = own(got[0].value);\n"
"  else errs.push(String(got[0].reason.message || got[0].reason));\n"
"  if (got[1].status === 'fulfilled') {\n"
"    const p = got[1].value;\n"
"    const stale = p.age_ms === null || p.age_ms > 10000;\n"
"    others = (p.rows || []).map(r => peer(r, stale));\n"
"  } else errs.push(String(got[1].reason.message || got[1].reason));\n"
"  if (mine) render([mine].concat(others));\n"
"  document.getElementById('err').textContent = errs.join('; ');\n"
"}\n"
"refresh();\nsetInterval(refresh, 2000);\n"
"</script></body></html>\n";

static const char login_html[] =
"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
"<title>autoglm-cdc status: token</title></head><body>\n"
"<h1>Token required</h1><p>This endpoint has http.token set. The token is "
"kept in a cookie for this site; it never goes in the URL.</p>\n"
"<form id=\"f\"><input type=\"password\" id=\"t\" autocomplete="
"\"current-password\" aria-label=\"token\"> <button>Open</button></form>\n"
"<script>\n"
"document.getElementById('f').addEventListener('submit', function (e) {\n"
"  e.preventDefault();\n"
"  document.cookie = '" TOKEN_COOKIE "=' + encodeURIComponent("
"document.getElementById('t').value) + '; path=/; SameSite=Strict';\n"
"  location.reload();\n"
"});\n"
"</script></body></html>\n";

/* ---- connection table (HTTP thread only) -------------------------------- */

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    if (a->ss_family != b->sa_family)
        return 0;
    if (b->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (b->sa_family == AF_INET6)
        return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                       &((const struct sockaddr_in6 *)b)->sin6_addr,
                       sizeof(struct in6_addr));
    return 0;
}

/* How readily k gives way to a new connection: 2 a request stuck in its
 * headers (or a connection older than the header timeout), 1 one that has
 * sent nothing yet (its client may just not have been scheduled since the
 * connect: it goes after the stuck ones), 0 not at all. */
static int give_way(const cdc_http_t *h, const http_conn_t *k, int64_t now)
{
    if (now - k->start_us > h->header_timeout_us)
        return 2;
    if (k->headers_done)
        return 0;
    return k->line_seen ? 2 : 1;
}

static void conn_close(http_conn_t *k)
{
    k->closing = 1;
    shutdown(k->fd, SHUT_RDWR); /* MHD reads EOF and closes it */
}

/* 1 if a complete request head waits unread on k's socket: it is about to
 * be served (a probe sends its request at once), so it must not give way. */
static int head_waiting(const http_conn_t *k)
{
    char buf[4096];
    ssize_t n = recv(k->fd, buf, sizeof(buf) - 1, MSG_PEEK | MSG_DONTWAIT);

    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return memmem(buf, (size_t)n, "\r\n\r\n", 4) != NULL;
}

/* The oldest connection that may give way to one from addr (any address
 * when addr is NULL), or NULL. */
static http_conn_t *victim(cdc_http_t *h, const struct sockaddr *addr,
                           int64_t now)
{
    http_conn_t *best;
    int best_w;

    for (;;) {
        best = NULL;
        best_w = 0;
        for (size_t i = 0; i < sizeof(h->conns) / sizeof(h->conns[0]); i++) {
            http_conn_t *k = &h->conns[i];
            int w;
            if (!k->used || k->closing || k->spared ||
                (addr && !same_addr(&k->addr, addr)) ||
                !(w = give_way(h, k, now)))
                continue;
            if (!best || w > best_w ||
                (w == best_w && k->start_us < best->start_us)) {
                best = k;
                best_w = w;
            }
        }
        if (!best || !head_waiting(best))
            break;
        best->spared = 1;
    }
    for (size_t i = 0; i < sizeof(h->conns) / sizeof(h->conns[0]); i++)
        h->conns[i].spared = 0;
    return best;
}

/* Make room for a connection from addr: MHD_YES if it may be accepted. */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr,
                                     socklen_t addrlen)
{
    cdc_http_t *h = cls;
    int64_t now = cdc_metrics_now_us();
    int n_all = 0, n_any = 0, n_here = 0;

    (void)addrlen;
    for (size_t i = 0; i < sizeof(h->conns) / sizeof(h->conns[0]); i++) {
        http_conn_t *k = &h->conns[i];
        if (!k->used)
            continue;
        n_all++; /* what MHD counts against its own limit */
        if (k->closing)
            continue;
        n_any++;
        n_here += same_addr(&k->addr, addr);
    }
    if (n_all >= (int)(sizeof(h->conns) / sizeof(h->conns[0])) - 1) {
        h->n_refused++;
        __atomic_add_fetch(&h->tot_refused, 1, __ATOMIC_RELAXED);
        return MHD_NO;
    }
    if (n_here >= HTTP_MAX_PER_ADDR || n_any >= HTTP_MAX_CONN) {
        http_conn_t *v = victim(h, n_here >= HTTP_MAX_PER_ADDR ? addr : NULL,
                                now);
        if (!v) {
            h->n_refused++;
            __atomic_add_fetch(&h->tot_refused, 1, __ATOMIC_RELAXED);
            return MHD_NO;
        }
        conn_close(v);
        h->n_evicted++;
        __atomic_add_fetch(&h->tot_evicted, 1, __ATOMIC_RELAXED);
    }
    return MHD_YES;
}

static void notify_conn(void *cls, struct MHD_Connection *c,
                        void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
    cdc_http_t *h = cls;
    const union MHD_ConnectionInfo *ci;
    http_conn_t *k = NULL;

    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (*socket_context)
            memset(*socket_context, 0, sizeof(http_conn_t));
        *socket_context = NULL;
        return;
    }
    for (size_t i = 0; i < sizeof(h->conns) / sizeof(h->conns[0]); i++)
        if (!h->conns[i].used) {
            k = &h->conns[i];
            break;
        }
    *socket_context = k;
    if (!k) /* cannot happen: MHD's limit is the table's size */
        return;
    k->used = 1;
    k->start_us = cdc_metrics_now_us();
    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    k->fd = ci ? ci->connect_fd : -1;
    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        socklen_t l = ci->client_addr->sa_family == AF_INET6
                          ? sizeof(struct sockaddr_in6)
                          : sizeof(struct sockaddr_in);
        memcpy(&k->addr, ci->client_addr, l);
    }
}

/* MHD_OPTION_URI_LOG_CALLBACK: the request line has arrived */
static void *line_arrived(void *cls, const char *uri, struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    (void)cls;
    (void)uri;
    if (ci && ci->socket_context)
        ((http_conn_t *)ci->socket_context)->line_seen = 1;
    return NULL; /* the access handler's *req stays NULL on its first call */
}

static void headers_arrived(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci && ci->socket_context)
        ((http_conn_t *)ci->socket_context)->headers_done = 1;
}

/* Close connections whose headers are late, publish the table's state;
 * report throttled counts. */
static void housekeep(cdc_http_t *h)
{
    int64_t now = cdc_metrics_now_us();
    unsigned open = 0, stuck = 0;

    for (size_t i = 0; i < sizeof(h->conns) / sizeof(h->conns[0]); i++) {
        http_conn_t *k = &h->conns[i];
        if (k->used && !k->closing && !k->headers_done && k->fd >= 0 &&
            now - k->start_us > h->header_timeout_us) {
            /* counted before the close: whoever sees the close sees it */
            h->n_timed_out++;
            __atomic_add_fetch(&h->tot_timed_out, 1, __ATOMIC_RELEASE);
            conn_close(k);
        }
        if (k->used && !k->closing) {
            open++;
            stuck += k->line_seen && !k->headers_done;
        }
    }
    __atomic_store_n(&h->st_open, open, __ATOMIC_RELEASE);
    __atomic_store_n(&h->st_stuck, stuck, __ATOMIC_RELEASE);
    if (now < h->log_next_us)
        return;
    if (h->n_refused || h->n_evicted || h->n_timed_out || h->n_mhd_quiet) {
        CDC_WARN(FAC, "in the last %d s: %u connection(s) refused, %u closed "
                 "to make room, %u closed for sending headers too slowly, "
                 "%u server message(s) not shown (limits: %d connections, "
                 "%d per address, headers within %d ms)",
                 (int)(HTTP_LOG_EVERY_US / 1000000), h->n_refused,
                 h->n_evicted, h->n_timed_out, h->n_mhd_quiet, HTTP_MAX_CONN,
                 HTTP_MAX_PER_ADDR, (int)(h->header_timeout_us / 1000));
        h->n_refused = h->n_evicted = h->n_timed_out = h->n_mhd_quiet = 0;
    }
    h->mhd_lines = 0;
    h->log_next_us = now + HTTP_LOG_EVERY_US;
}

static void *http_loop(void *arg)
{
    cdc_http_t *h = arg;

    while (!h->stop) {
        MHD_run_wait(h->d, HTTP_POLL_MS);
        housekeep(h);
    }
    return NULL;
}

/* The refresher: gathers the peers' rows off the HTTP thread. */
static void *peers_loop(void *arg)
{
    cdc_http_t *h = arg;

    while (!h->stop) {
        cdc_buf_t b = CDC_BUF_INIT;

        cdc_status_peers_json(h->state, h->self, h->token, h->listen,
                              HTTP_PEERS_TIMEOUT_MS, &b);
        pthread_mutex_lock(&h->peers_mu);
        cdc_buf_free(&h->peers);
        h->peers = b;
        h->peers_at_us = cdc_metrics_now_us();
        pthread_mutex_unlock(&h->peers_mu);
        for (int i = 0; i < HTTP_PEERS_EVERY_MS / 100 && !h->stop; i++)
            usleep(100000);
    }
    return NULL;
}

static void peers_render(cdc_http_t *h, cdc_buf_t *b, int64_t now)
{
    pthread_mutex_lock(&h->peers_mu);
    if (h->peers_at_us && h->peers.p)
        cdc_buf_printf(b, "{\"age_ms\":%lld,\"rows\":%s}\n",
                       (long long)((now - h->peers_at_us) / 1000),
                       h->peers.p);
    else
        cdc_buf_puts(b, "{\"age_ms\":null,\"rows\":[]}\n");
    pthread_mutex_unlock(&h->peers_mu);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
                             const char *ctype, cdc_buf_t *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        body->len, body->p ? body->p : (void *)"", MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc;

    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"autoglm-cdc\"");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **req)
{
    cdc_http_t *h = cls;
    cdc_buf_t b = CDC_BUF_INIT;
    int64_t now = cdc_metrics_now_us();
    unsigned status = MHD_HTTP_OK;
    const char *ctype = "application/json";
    enum MHD_Result rc;

    (void)version;
    (void)upload;
    if (!*req) { /* first call: headers only */
        *req = (void *)1;
        headers_arrived(c);
        return MHD_YES;
    }
    if (*upload_size) { /* no request bodies */
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        cdc_buf_puts(&b, "{\"error\":\"method not allowed\"}\n");
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else if (token_in_url(c)) {
        cdc_buf_puts(&b, "{\"error\":\"the token never goes in the URL: "
                         "send Authorization: Bearer or the "
                         TOKEN_COOKIE " cookie\"}\n");
        status = MHD_HTTP_BAD_REQUEST;
    } else if (!strcmp(url, "/")) {
        ctype = "text/html; charset=utf-8";
        if (token_ok(h, c))
            cdc_buf_puts(&b, page_html);
        else {
            cdc_buf_puts(&b, login_html);
            status = MHD_HTTP_UNAUTHORIZED;
        }
    } else if (!strcmp(url, "/livez")) {
        cdc_buf_puts(&b, "ok\n");
        ctype = "text/plain; charset=utf-8";
    } else if (!strcmp(url, "/readyz")) {
        cdc_buf_t r = CDC_BUF_INIT;
        int ready = cdc_metrics_ready(&r, now);
        cdc_buf_printf(&b, "{\"ready\":%s,\"reasons\":%s}\n",
                       ready ? "true" : "false", r.p);
        cdc_buf_free(&r);
        status = ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
    } else if (!strcmp(url, "/metrics") || !strcmp(url, "/status") ||
               !strcmp(url, "/status/peers")) {
        if (!token_ok(h, c)) {
            cdc_buf_puts(&b, "{\"error\":\"missing or wrong bearer "
                             "token\"}\n");
            status = MHD_HTTP_UNAUTHORIZED;
        } else if (url[1] == 'm') {
            cdc_metrics_scrape();
            cdc_metrics_render_prom(&b, now);
            ctype = "text/plain; version=0.0.4; charset=utf-8";
        } else if (url[7] == '/')
            peers_render(h, &b, now);
        else
            cdc_metrics_render_status(&b, now);
    } else {
        cdc_buf_puts(&b, "{\"error\":\"not found\",\"endpoints\":"
                         "[\"/\",\"/metrics\",\"/status\","
                         "\"/status/peers\",\"/livez\",\"/readyz\"]}\n");
        status = MHD_HTTP_NOT_FOUND;
    }
    rc = reply(c, status, ctype, &b);
    cdc_buf_free(&b);
    return rc;
}

/* "ADDR:PORT", "[V6]:PORT", ":PORT" or "PORT"; ADDR defaults to
 * 127.0.0.1. */
static int parse_listen(const char *s, struct sockaddr_storage *ss,
                        socklen_t *sslen, cdc_err_t *err)
{
    char host[256] = "127.0.0.1", port[16];
    const char *colon = strrchr(s, ':');
    struct addrinfo hints, *ai = NULL;
    int r;

    if (colon) {
        const char *h0 = s, *h1 = colon;
        if (*h0 == '[' && h1 > h0 && h1[-1] == ']')
            h0++, h1--;
        if (h1 > h0) {
            if ((size_t)(h1 - h0) >= sizeof(host))
                goto bad;
            memcpy(host, h0, (size_t)(h1 - h0));
            host[h1 - h0] = '\0';
        }
        s = colon + 1;
    }
    if (!*s || strlen(s) >= sizeof(port) || strspn(s, "0123456789") !=
                                                  strlen(s) ||
        atoi(s) > 65535)
        goto bad;
    snprintf(port, sizeof(port), "%s", s);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    r = getaddrinfo(host, port, &hints, &ai);
    if (r || !ai) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "http.listen: cannot resolve '%s': %s", host,
                    gai_strerror(r));
        cdc_err_hint(err, "use ADDR:PORT, e.g. 127.0.0.1:9464");
        if (ai)
            freeaddrinfo(ai);
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sslen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
bad:
    cdc_err_set(err, CDC_EXIT_CONFIG, 0, "http.listen: '%s' is not ADDR:PORT",
                s);
    cdc_err_hint(err, "use ADDR:PORT, e.g. 127.0.0.1:9464 (or just a port)");
    return -1;
}

static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >>
                24) == 127;
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(
            &((const struct sockaddr_in6 *)ss)->sin6_addr);
    return 0;
}

/* <state.dir>/<pipeline>.daemon: "pid=N" and, when listening,
 * "url=http://ADDR:PORT" (a wildcard address is reached on loopback). */
static void write_record(cdc_http_t *h, const cdc_conf_t *conf,
                         const struct sockaddr_storage *ss, const char *addr)
{
    const char *state = cdc_conf_get(conf, "state.dir", "state");
    cdc_buf_t path = CDC_BUF_INIT, body = CDC_BUF_INIT, tmp = CDC_BUF_INIT;
    FILE *fp;
    int fd;

    mkdir(state, 0755);
    cdc_buf_printf(&path, "%s/%s.daemon", state, cdc_conf_pipeline(conf));
    cdc_buf_printf(&tmp, "%s.tmp", path.p);
    cdc_buf_printf(&body, "pid=%ld\n", (long)getpid());
    if (ss) {
        int any = ss->ss_family == AF_INET
                      ? ((const struct sockaddr_in *)ss)->sin_addr.s_addr ==
                            htonl(INADDR_ANY)
                      : IN6_IS_ADDR_UNSPECIFIED(
                            &((const struct sockaddr_in6 *)ss)->sin6_addr);
        if (any)
            cdc_buf_printf(&body, "url=http://%s:%d\n",
                           ss->ss_family == AF_INET ? "127.0.0.1" : "[::1]",
                           h->port);
        else if (ss->ss_family == AF_INET6)
            cdc_buf_printf(&body, "url=http://[%s]:%d\n", addr, h->port);
        else
            cdc_buf_printf(&body, "url=http://%s:%d\n", addr, h->port);
    }
    /* 0644 whatever the umask: `status` and the peers of this state
     * directory trust a record with the token only when neither group nor
     * others can write it (cdc/commands/status.c) */
    fd = open(tmp.p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0 && fchmod(fd, 0644)) {
        close(fd);
        fd = -1;
    }
    fp = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!fp && fd >= 0)
        close(fd);
    if (fp && fputs(body.p, fp) >= 0 && !fclose(fp) &&
        !rename(tmp.p, path.p)) {
        h->record = path.p;
        path.p = NULL;
    } else {
        CDC_DEBUG(FAC, "cannot write %s", tmp.p);
        unlink(tmp.p);
    }
    cdc_buf_free(&path);
    cdc_buf_free(&body);
    cdc_buf_free(&tmp);
}

int cdc_http_start(const cdc_conf_t *conf, cdc_http_t **out, cdc_err_t *err)
{
    const char *listen = cdc_conf_get(conf, "http.listen", "");
    const char *token = cdc_conf_get(conf, "http.token", "");
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    int64_t header_ms;
    cdc_http_t *h;
    char addr[INET6_ADDRSTRLEN] = "?";
    const union MHD_DaemonInfo *di;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;

    *out = NULL;
    if (!*listen) {
        /* no endpoint: the record alone says that the daemon runs */
        h = cdc_xcalloc(1, sizeof(*h));
        write_record(h, conf, NULL, NULL);
        *out = h;
        return 0;
    }
    if (parse_listen(listen, &ss, &sslen, err) ||
        cdc_conf_get_int(conf, "http.header_timeout_ms", 3000, &header_ms,
                         err))
        return -1;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h = cdc_xcalloc(1, sizeof(*h));
    h->header_timeout_us = header_ms * 1000;
    pthread_mutex_init(&h->peers_mu, NULL);
    if (*token)
        h->token = cdc_xstrdup(token);
    h->state = cdc_xstrdup(cdc_conf_get(conf, "state.dir", "state"));
    h->self = cdc_xstrdup(cdc_conf_pipeline(conf));
    h->listen = cdc_xstrdup(listen);
    h->d = MHD_start_daemon(
        flags, 0, accept_policy, h, handle, h, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(4 * HTTP_MAX_CONN),
        MHD_OPTION_NOTIFY_CONNECTION, notify_conn, h,
        MHD_OPTION_URI_LOG_CALLBACK, line_arrived, h, MHD_OPTION_END);
    if (h->d && pthread_create(&h->thr, NULL, http_loop, h) == 0)
        h->thr_started = 1;
    else if (h->d) {
        MHD_stop_daemon(h->d);
        h->d = NULL;
    }
    if (!h->d) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "http.listen: cannot listen on %s", listen);
        cdc_err_detail(err, "the address is in use or not local");
        cdc_err_hint(err, "pick a free port with --http ADDR:PORT");
        cdc_http_stop(h);
        return -1;
    }
    di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : 0;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr,
                  sizeof(addr));
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr,
                  sizeof(addr));
    CDC_INFO(FAC, "serving / /metrics /status /livez /readyz on %s:%d%s",
             addr, h->port, h->token ? " (bearer token required)" : "");
    write_record(h, conf, &ss, addr);
    if (pthread_create(&h->peers_thr, NULL, peers_loop, h) == 0)
        h->peers_started = 1;
    else
        CDC_WARN(FAC, "cannot start the thread that asks the other "
                      "pipelines of %s: the status page shows only this "
                      "one", h->state);
    if (!is_loopback(&ss) && !h->token)
        CDC_WARN(FAC, "http.listen %s is not a loopback address and "
                      "http.token is not set: anyone who can reach it can "
                      "read /metrics and /status", addr);
    *out = h;
    return 0;
}

int cdc_http_port(const cdc_http_t *h)
{
    return h ? h->port : 0;
}

void cdc_http_stats(cdc_http_t *h, cdc_http_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    if (!h)
        return;
    st->open = __atomic_load_n(&h->st_open, __ATOMIC_ACQUIRE);
    st->stuck = __atomic_load_n(&h->st_stuck, __ATOMIC_ACQUIRE);
    st->refused = __atomic_load_n(&h->tot_refused, __ATOMIC_RELAXED);
    st->evicted = __atomic_load_n(&h->tot_evicted, __ATOMIC_RELAXED);
    st->timed_out = __atomic_load_n(&h->tot_timed_out, __ATOMIC_RELAXED);
    st->max_conn = HTTP_MAX_CONN;
    st->max_per_addr = HTTP_MAX_PER_ADDR;
}

void cdc_http_stop(cdc_http_t *h)
{
    if (!h)
        return;
    h->stop = 1;
    if (h->thr_started)
        pthread_join(h->thr, NULL);
    if (h->peers_started)
        pthread_join(h->peers_thr, NULL);
    if (h->d)
        MHD_stop_daemon(h->d);
    if (h->record) {
        unlink(h->record);
        free(h->record);
    }
    if (h->token) {
        memset(h->token, 0, strlen(h->token));
        free(h->token);
    }
    cdc_buf_free(&h->peers);
    if (h->d || h->state) /* the listening kind initialised the mutex */
        pthread_mutex_destroy(&h->peers_mu);
    free(h->state);
    free(h->self);
    free(h->listen);
    free(h);
}
