/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status.c - `autoglm-cdc status [-c pipeline.yaml] [--url URL]`: the
 * status table, one row per application.
 *
 * Rows come from running daemons first: GET <url>/status for each URL in
 * status.url (comma list), or http://<http.listen>/status when only
 * http.listen is configured.  Then every pipeline of state.dir that no
 * daemon reported: a running daemon records its pid and endpoint in
 * <state.dir>/<pipeline>.daemon (cdc/http.c), and that endpoint is asked;
 * without an answer, the checkpoint gives an "offline" row (or "unknown"
 * while a process holds the pipeline's run lock, <pipeline>.lock: the
 * lock, not the recorded pid, says whether it runs) whose last sync time is the
 * checkpoint's commit time.  --json (status.format=json) prints the rows
 * as a JSON array instead of the table.  Names from files and daemons
 * are printed with control characters escaped.
 *
 * Only the keys status reads must resolve: an unset ${VAR} in a database
 * DSN does not stop it (on-call staff may lack the secrets).
 *
 * Exit status: 0 when at least one row was printed, 69 when no daemon
 * answered and no checkpoint exists.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "cdc/buf.h"
#include "cdc/checkpoint.h"
#include "cdc/conf.h"
#include "cdc/envelope.h"
#include "cdc/log.h"
#include "cdc/metrics.h"

#define HTTP_TIMEOUT_MS 3000
#define HTTP_MAX_BODY (1 << 20)

int cdc_status_cli(const cdc_conf_t *conf, int argc, char **argv,
                   cdc_err_t *err);

/* Per-request timeout of http_get in this thread; 0: HTTP_TIMEOUT_MS.
 * The daemon's peer refresher (cdc_status_peers_json) sets it shorter. */
static _Thread_local int get_timeout_ms;

typedef struct row {
    char app[128], pipeline[128], status[16], last_sync[40], source[32],
        sink[256], where[600], error[900];
    int64_t latency_ms; /* -1 unknown */
    double lag_s;       /* < 0 unknown */
    int64_t events, dead_letters; /* -1 unknown */
} row_t;

typedef struct rows {
    row_t *v;
    size_t n;
} rows_t;

static char *esc(const char *s);

static row_t *row_add(rows_t *r)
{
    r->v = cdc_xrealloc(r->v, (r->n + 1) * sizeof(*r->v));
    memset(&r->v[r->n], 0, sizeof(*r->v));
    r->v[r->n].latency_ms = -1;
    r->v[r->n].lag_s = -1;
    r->v[r->n].events = -1;
    r->v[r->n].dead_letters = -1;
    return &r->v[r->n++];
}

/* ---- a minimal HTTP/1.0 GET over loopback TCP -------------------------- */

static int wait_fd(int fd, short ev, int64_t deadline_ms)
{
    struct timespec ts;
    int64_t now;
    struct pollfd p = {.fd = fd, .events = ev};

    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (now >= deadline_ms)
        return 0;
    return poll(&p, 1, (int)(deadline_ms - now)) > 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* url: http://HOST:PORT[/path]; path defaults to /status.  Fills body.
 * Returns the HTTP status code or -1 with err. */
/* http://HOST[:PORT][/PATH] (HOST may be [v6]) into its parts; -1 with
 * err (exit 64) when it is not such a URL. */
static int parse_url(const char *url, char *host, size_t hsz, char *port,
                     size_t psz, char *path, size_t pathsz, cdc_err_t *err)
{
    const char *p = url, *hs, *he, *slash;

    if (!strncmp(p, "http://", 7))
        p += 7;
    else if (strstr(p, "://")) {
        cdc_err_set(err, CDC_EXIT_USAGE, 0,
                    "status.url: only http:// URLs are supported");
        return -1;
    }
    slash = strchr(p, '/');
    hs = p;
    he = slash ? slash : p + strlen(p);
    if (*hs == '[') { /* [v6]:port */
        const char *rb = memchr(hs, ']', (size_t)(he - hs));
        if (!rb)
            goto bad;
        snprintf(host, hsz, "%.*s", (int)(rb - hs - 1), hs + 1);
        if (rb + 1 < he && rb[1] == ':')
            snprintf(port, psz, "%.*s", (int)(he - rb - 2), rb + 2);
    } else {
        const char *colon = memchr(hs, ':', (size_t)(he - hs));
        if ((size_t)((colon ? colon : he) - hs) >= hsz)
            goto bad;
        snprintf(host, hsz, "%.*s", (int)((colon ? colon : he) - hs), hs);
        if (colon) {
            if ((size_t)(he - colon - 1) >= psz)
                goto bad;
            snprintf(port, psz, "%.*s", (int)(he - colon - 1), colon + 1);
        }
    }
    if (!*host || !*port)
        goto bad;
    if (slash && slash[1])
        snprintf(path, pathsz, "%s", slash);
    return 0;
bad:
    cdc_err_set(err, CDC_EXIT_USAGE, 0, "'%s' is not an http://HOST:PORT URL",
                url);
    cdc_err_hint(err, "e.g. --url http://127.0.0.1:9464");
    return -1;
}

/* A non-blocking connection to host:port by the deadline; -1 with err. */
static int dial(const char *url, const char *host, const char *port,
                int64_t deadline, cdc_err_t *err)
{
    struct addrinfo hints, *ai = NULL, *a;
    int fd = -1, r;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if ((r = getaddrinfo(host, port, &hints, &ai)) != 0) {
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, 0, "%s: %s", url,
                    gai_strerror(r));
        return -1;
    }
    for (a = ai; a; a = a->ai_next) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 ||
            (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) &&
             !getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) && !soerr))
            break;
        if (soerr)
            errno = soerr;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, 0,
                    "no daemon answers at %s: %s", url,
                    errno ? strerror(errno) : "timeout");
    return fd;
}

/* Send req, then read the whole answer (at most HTTP_MAX_BODY) into resp
 * by the deadline; -1 on any failure. */
static int exchange(int fd, const cdc_buf_t *req, cdc_buf_t *resp,
                    int64_t deadline)
{
    for (size_t off = 0; off < req->len;) {
        ssize_t w = send(fd, req->p + off, req->len - off, MSG_NOSIGNAL);
        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno == EAGAIN && wait_fd(fd, POLLOUT, deadline))
            continue;
        else
            return -1;
    }
    for (;;) {
        char chunk[8192];
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n > 0) {
            if (resp->len + (size_t)n > HTTP_MAX_BODY)
                return -1;
            cdc_buf_put(resp, chunk, (size_t)n);
        } else if (n == 0)
            return 0;
        else if (errno == EAGAIN && wait_fd(fd, POLLIN, deadline))
            continue;
        else
            return -1;
    }
}

static int http_get(const char *url, const char *token, cdc_buf_t *body,
                    cdc_err_t *err)
{
    char host[256] = "", port[16] = "80", path[512] = "/status";
    int fd, code = -1;
    int64_t deadline =
        mono_ms() + (get_timeout_ms > 0 ? get_timeout_ms : HTTP_TIMEOUT_MS);
    cdc_buf_t req = CDC_BUF_INIT, resp = CDC_BUF_INIT;

    if (parse_url(url, host, sizeof(host), port, sizeof(port), path,
                  sizeof(path), err))
        return -1;
    fd = dial(url, host, port, deadline, err);
    if (fd < 0)
        return -1;
    cdc_buf_printf(&req, "GET %s HTTP/1.0\r\nHost: %s:%s\r\n"
                         "Accept: application/json\r\n", path, host, port);
    if (token && *token)
        cdc_buf_printf(&req, "Authorization: Bearer %s\r\n", token);
    cdc_buf_puts(&req, "Connection: close\r\n\r\n");
    if (!exchange(fd, &req, &resp, deadline)) {
        const char *sep = resp.p ? strstr(resp.p, "\r\n\r\n") : NULL;
        if (sep && !strncmp(resp.p, "HTTP/1.", 7) && resp.len >= 12) {
            code = atoi(resp.p + 9);
            cdc_buf_put(body, sep + 4, resp.len - (size_t)(sep + 4 - resp.p));
        }
    }
    if (code < 0)
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, 0,
                    "no valid HTTP answer from %s", url);
    /* the token was in the request; wipe it */
    if (req.p)
        memset(req.p, 0, req.len);
    cdc_buf_free(&req);
    cdc_buf_free(&resp);
    close(fd);
    return code;
}

/* ---- rows from a daemon ------------------------------------------------ */

static const char *jstr(yajl_val root, const char *a, const char *b)
{
    const char *path[3] = {a, b, NULL};
    yajl_val v = yajl_tree_get(root, path, yajl_t_string);
    return v ? YAJL_GET_STRING(v) : NULL;
}

static int from_daemon(rows_t *rows, const char *url, const char *token,
                       cdc_err_t *err)
{
    cdc_buf_t body = CDC_BUF_INIT;
    char eb[256];
    yajl_val root;
    int code = http_get(url, token, &body, err);
    row_t *r;

    if (code < 0) {
        cdc_buf_free(&body);
        return -1;
    }
    if (code != 200) {
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, 0, "%s answered HTTP %d", url,
                    code);
        if (code == 401)
            cdc_err_hint(err, "set http.token (or AUTOGLM_CDC_HTTP_TOKEN) "
                              "to the daemon's token");
        cdc_buf_free(&body);
        return -1;
    }
    root = yajl_tree_parse(body.p ? body.p : "", eb, sizeof(eb));
    cdc_buf_free(&body);
    if (!root || !YAJL_IS_OBJECT(root)) {
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, 0,
                    "%s: the answer is not a status document", url);
        yajl_tree_free(root);
        return -1;
    }
    r = row_add(rows);
    snprintf(r->app, sizeof(r->app), "%s",
             jstr(root, "application", NULL) ? jstr(root, "application", NULL)
                                             : "?");
    snprintf(r->pipeline, sizeof(r->pipeline), "%s",
             jstr(root, "pipeline", NULL) ? jstr(root, "pipeline", NULL)
                                          : r->app);
    snprintf(r->status, sizeof(r->status), "%s",
             jstr(root, "status", NULL) ? jstr(root, "status", NULL) : "?");
    snprintf(r->last_sync, sizeof(r->last_sync), "%s",
             jstr(root, "last_sync_time", NULL)
                 ? jstr(root, "last_sync_time", NULL)
                 : "-");
    snprintf(r->source, sizeof(r->source), "%s",
             jstr(root, "source", "type") ? jstr(root, "source", "type")
                                          : "");
    snprintf(r->sink, sizeof(r->sink), "%s",
             jstr(root, "sink", "type") ? jstr(root, "sink", "type") : "");
    {
        /* fan-out: each sink with the transactions it has not yet
         * acknowledged, "kafka (queue 0), postgres (queue 12)" */
        const char *ps[] = {"sinks", NULL};
        yajl_val a = yajl_tree_get(root, ps, yajl_t_array);
        if (a && YAJL_GET_ARRAY(a)->len > 1) {
            size_t o = 0;
            r->sink[0] = '\0';
            for (size_t i = 0; i < YAJL_GET_ARRAY(a)->len; i++) {
                yajl_val e = YAJL_GET_ARRAY(a)->values[i];
                const char *pt[] = {"type", NULL}, *pq[] = {"queue", NULL};
                yajl_val t = yajl_tree_get(e, pt, yajl_t_string);
                yajl_val q = yajl_tree_get(e, pq, yajl_t_number);
                int n = snprintf(r->sink + o, sizeof(r->sink) - o,
                                 "%s%s (queue %lld)", i ? ", " : "",
                                 t ? YAJL_GET_STRING(t) : "?",
                                 q ? (long long)YAJL_GET_DOUBLE(q) : -1LL);
                if (n < 0 || (size_t)n >= sizeof(r->sink) - o)
                    break;
                o += (size_t)n;
            }
        }
    }
    snprintf(r->where, sizeof(r->where), "%s", url);
    {
        const char *pl[] = {"latency_ms", NULL}, *pg[] = {"lag_seconds", NULL};
        const char *pe[] = {"events", NULL};
        const char *pd[] = {"sink", "dead_letters", NULL};
        yajl_val v = yajl_tree_get(root, pl, yajl_t_number);
        v = yajl_tree_get(root, pl, yajl_t_number);
        if (v)
            r->latency_ms = (int64_t)YAJL_GET_DOUBLE(v);
        v = yajl_tree_get(root, pg, yajl_t_number);
        if (v)
            r->lag_s = YAJL_GET_DOUBLE(v);
        v = yajl_tree_get(root, pe, yajl_t_number);
        if (v)
            r->events = (int64_t)YAJL_GET_DOUBLE(v);
        v = yajl_tree_get(root, pd, yajl_t_number);
        r->dead_letters = v ? (int64_t)YAJL_GET_DOUBLE(v) : 0;
    }
    snprintf(r->error, sizeof(r->error), "%s",
             jstr(root, "source", "error")  ? jstr(root, "source", "error")
             : jstr(root, "sink", "error") ? jstr(root, "sink", "error")
                                            : "");
    yajl_tree_free(root);
    return 0;
}

/* ---- rows from checkpoint files ---------------------------------------- */

static int shown(const rows_t *rows, const char *pipeline)
{
    for (size_t i = 0; i < rows->n; i++)
        if (!strcmp(rows->v[i].pipeline, pipeline))
            return 1;
    return 0;
}

/* <dir>/<pipeline>.daemon (cdc/http.c): pid and URL; -1 if absent.  With
 * unsafe (may be NULL): "" when the record can be trusted with http.token,
 * else why not and the remedy.  Only a regular file of this process's uid
 * that neither group nor others can write is ours: anyone else who can
 * write a record there would receive the token at a URL of their choice. */
static int read_record2(const char *dir, const char *pipeline, char *url,
                        size_t urln, long *pid, char *unsafe, size_t unsafen)
{
    cdc_buf_t p = CDC_BUF_INIT;
    char line[512];
    struct stat st;
    FILE *fp = NULL;
    int fd, flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC;

    cdc_buf_printf(&p, "%s/%s.daemon", dir, pipeline);
    if (unsafe)
        *unsafe = '\0';
    fd = open(p.p, flags | (unsafe ? O_NOFOLLOW : 0));
    if (fd < 0 && unsafe && errno == ELOOP) {
        snprintf(unsafe, unsafen, "%s is a symbolic link; remove it (a "
                 "running daemon writes its own record)", p.p);
        fd = open(p.p, flags); /* read for its pid and URL, not trusted */
    }
    /* a FIFO or a device is no record: never read from it */
    if (fd >= 0 && (fstat(fd, &st) || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
    }
    if (fd >= 0 && unsafe && !*unsafe) {
        if (st.st_uid != geteuid())
            snprintf(unsafe, unsafen, "%s belongs to uid %u, not to this "
                     "process's uid %u; run the pipelines of one state "
                     "directory as one user, or remove it", p.p,
                     (unsigned)st.st_uid, (unsigned)geteuid());
        else if (st.st_mode & (S_IWGRP | S_IWOTH))
            snprintf(unsafe, unsafen, "%s is writable by group or others "
                     "(mode %04o); chmod go-w it", p.p,
                     (unsigned)(st.st_mode & 07777));
    }
    cdc_buf_free(&p);
    if (fd >= 0 && !(fp = fdopen(fd, "r")))
        close(fd);
    if (!fp)
        return -1;
    *url = '\0';
    *pid = 0;
    while (fgets(line, sizeof(line), fp)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!strncmp(line, "url=", 4))
            snprintf(url, urln, "%s", line + 4);
        else if (!strncmp(line, "pid=", 4))
            *pid = strtol(line + 4, NULL, 10);
    }
    fclose(fp);
    return 0;
}

static int read_record(const char *dir, const char *pipeline, char *url,
                       size_t urln, long *pid)
{
    return read_record2(dir, pipeline, url, urln, pid, NULL, 0);
}

/* The host part of http.listen ("ADDR:PORT", "[V6]:PORT"): "" for none or
 * a wildcard address. */
static void listen_host(const char *listen, char *out, size_t n)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    size_t hl = colon ? (size_t)(colon - listen) : 0;

    *out = '\0';
    if (hl >= 2 && listen[0] == '[' && listen[hl - 1] == ']') {
        listen++;
        hl -= 2;
    }
    if (!hl || hl >= n)
        return;
    snprintf(out, n, "%.*s", (int)hl, listen);
    if (!strcmp(out, "0.0.0.0") || !strcmp(out, "::") || !strcmp(out, "*"))
        *out = '\0';
}

/* Whether the token may go to url: its host is a loopback address (or
 * localhost) or the host this process listens on (http.listen). */
static int token_host_ok(const char *url, const char *listen)
{
    char host[256] = "", port[16] = "", path[512], own[256];
    unsigned char a[16];
    cdc_err_t e = {0};

    if (parse_url(url, host, sizeof(host), port, sizeof(port), path,
                  sizeof(path), &e))
        return 0;
    if (!strcasecmp(host, "localhost"))
        return 1;
    if (inet_pton(AF_INET, host, a) == 1 && a[0] == 127)
        return 1;
    if (inet_pton(AF_INET6, host, a) == 1 &&
        (IN6_IS_ADDR_LOOPBACK((struct in6_addr *)a) ||
         (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)a) && a[12] == 127)))
        return 1;
    listen_host(listen, own, sizeof(own));
    return own[0] && !strcasecmp(host, own);
}

/* Warn once per process about a peer and a kind of reason (the daemon's
 * refresher asks every few seconds), however many peers there are: the
 * set of those warned about grows (a state directory holds a bounded
 * number of pipelines). */
static void warn_once(const char *pipeline, char kind, const char *msg)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static char (*seen)[136];
    static size_t nseen, capseen;
    char key[136];
    int dup = 0;

    snprintf(key, sizeof(key), "%c%s", kind, pipeline);
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nseen && !dup; i++)
        dup = !strcmp(seen[i], key);
    if (!dup) {
        if (nseen == capseen) {
            capseen = capseen ? capseen * 2 : 32;
            seen = cdc_xrealloc(seen, capseen * sizeof(*seen));
        }
        snprintf(seen[nseen++], sizeof(seen[0]), "%s", key);
    }
    pthread_mutex_unlock(&mu);
    if (!dup)
        CDC_WARN("status", "%s", msg);
}

int cdc_daemon_running(const char *state, const char *pipeline, long *pid,
                       char *url, size_t urln)
{
    long rpid = 0;

    /* the run lock says whether it runs; the record only adds the URL,
     * and only when it is that process's */
    *url = '\0';
    if (!cdc_state_lock_held(state, pipeline, "run", pid))
        return 0;
    if (read_record(state, pipeline, url, urln, &rpid) || rpid != *pid)
        *url = '\0';
    return 1;
}

static void from_ckpt(rows_t *rows, const cdc_conf_t *conf, const char *dir,
                      const char *pipeline, const char *token,
                      const char *listen)
{
    char *path, url[520], unsafe[700] = "";
    cdc_ckpt_t ck;
    cdc_err_t e = {0};
    const char *cname, *status = "offline";
    char note[900] = "";
    long pid = 0;
    int have_ck;
    row_t *r;

    if (shown(rows, pipeline))
        return;
    /* a daemon of this state directory recorded itself: ask its
     * endpoint, or at least say that it runs */
    if (!read_record2(dir, pipeline, url, sizeof(url), &pid, unsafe,
                      sizeof(unsafe))) {
        int ok = 0;
        const char *tok = token;
        char msg[1400];
        if (*url && token && *token && *unsafe) {
            /* the token would go to whoever wrote the record */
            snprintf(msg, sizeof(msg), "not asking pipeline %s at the URL "
                     "of its record, as http.token would go with the "
                     "request and %s", pipeline, unsafe);
            warn_once(pipeline, 'r', msg);
            snprintf(e.msg, sizeof(e.msg), "not asked, so that http.token "
                     "stays here, as %s", unsafe);
        } else if (*url) {
            cdc_buf_t u = CDC_BUF_INIT;
            if (token && *token && !token_host_ok(url, listen)) {
                snprintf(msg, sizeof(msg), "asking pipeline %s at %s "
                         "without http.token, as its host is neither "
                         "loopback nor this process's http.listen host; "
                         "let that daemon listen on loopback or on the same "
                         "address", pipeline, url);
                warn_once(pipeline, 'h', msg);
                tok = NULL;
            }
            cdc_buf_printf(&u, "%s/status", url);
            ok = !from_daemon(rows, u.p, tok, &e);
            cdc_buf_free(&u);
        } else
            snprintf(e.msg, sizeof(e.msg), "no HTTP endpoint (http.listen)");
        if (ok)
            return;
        long lpid = 0;
        if (cdc_state_lock_held(dir, pipeline, "run", &lpid)) {
            status = "unknown";
            snprintf(note, sizeof(note), "pid %ld runs; %s",
                     lpid > 0 ? lpid : pid, e.msg);
        } else
            snprintf(note, sizeof(note), "stale daemon record (pid %ld no "
                     "longer holds the pipeline's run lock)", pid);
    }
    path = cdc_ckpt_path(dir, pipeline);
    have_ck = cdc_ckpt_load(path, &ck, &e);
    if (have_ck < 0 && !note[0]) {
        /* shown, not hidden: `run` refuses to start from it */
        status = "damaged";
        snprintf(note, sizeof(note), "%s", e.msg);
    }
    if (have_ck != 1 && !note[0]) {
        free(path);
        return;
    }
    if (have_ck != 1)
        memset(&ck, 0, sizeof(ck));
    r = row_add(rows);
    cname = cdc_conf_get(conf, "source.type", NULL) ||
                    cdc_conf_get(conf, "pipeline.name", NULL)
                ? cdc_conf_pipeline(conf) : NULL;
    /* the checkpoint does not record the application id: take it from the
     * configuration when this is the configured pipeline */
    snprintf(r->app, sizeof(r->app), "%s",
             cname && !strcmp(cname, pipeline)
                 ? cdc_conf_get(conf, "application_id", pipeline)
                 : pipeline);
    snprintf(r->pipeline, sizeof(r->pipeline), "%s", pipeline);
    snprintf(r->status, sizeof(r->status), "%s", status);
    snprintf(r->error, sizeof(r->error), "%s", note);
    snprintf(r->source, sizeof(r->source), "%s", ck.source);
    if (ck.commit_us > 0) {
        cdc_buf_t b = CDC_BUF_INIT;
        cdc_json_iso_ms(&b, ck.commit_us);
        snprintf(r->last_sync, sizeof(r->last_sync), "%s", b.p);
        cdc_buf_free(&b);
    } else
        snprintf(r->last_sync, sizeof(r->last_sync), "-");
    snprintf(r->where, sizeof(r->where), "%s", have_ck ? path : url);
    free(path);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "X.ckpt" or "X.daemon": pipeline X, else NULL */
static const char *pipeline_of(const char *file, char *out, size_t n)
{
    size_t l = strlen(file);

    if (l > 5 && l - 5 < n && !strcmp(file + l - 5, ".ckpt")) {
        snprintf(out, n, "%.*s", (int)(l - 5), file);
        return out;
    }
    if (l > 7 && l - 7 < n && !strcmp(file + l - 7, ".daemon")) {
        snprintf(out, n, "%.*s", (int)(l - 7), file);
        return out;
    }
    return NULL;
}

static void scan_state(rows_t *rows, const cdc_conf_t *conf, const char *dir,
                       const char *token, const char *listen)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        names = cdc_xrealloc(names, (n + 1) * sizeof(*names));
        names[n++] = cdc_xstrdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 0; i < n; i++) {
        char p[128];
        if (pipeline_of(names[i], p, sizeof(p)))
            from_ckpt(rows, conf, dir, p, token, listen);
        free(names[i]);
    }
    free(names);
}

/* ---- output ------------------------------------------------------------ */

/* s with control characters (and backslash) as \xNN: a name from a file
 * or a daemon cannot move the cursor or retitle the terminal.  Malloc'd. */
static char *esc(const char *s)
{
    cdc_buf_t b = CDC_BUF_INIT;

    cdc_buf_puts(&b, "");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '\\')
            cdc_buf_printf(&b, "\\x%02x", c);
        else
            cdc_buf_putc(&b, (char)c);
    }
    return b.p;
}

static void print_table(const rows_t *rows)
{
    int wa = 11, wp = 8;
    char **app = cdc_xcalloc(rows->n + 1, sizeof(char *));
    char **pipe = cdc_xcalloc(rows->n + 1, sizeof(char *));

    for (size_t i = 0; i < rows->n; i++) {
        int la, lp;
        app[i] = esc(rows->v[i].app);
        pipe[i] = esc(rows->v[i].pipeline);
        la = (int)strlen(app[i]);
        lp = (int)strlen(pipe[i]);
        wa = la > wa ? la : wa;
        wp = lp > wp ? lp : wp;
    }
    printf("%-*s  %-*s  %-7s  %-24s  %10s  %9s  %12s  %s\n", wa,
           "APPLICATION", wp, "PIPELINE", "STATUS", "LAST SYNC", "LATENCY",
           "LAG", "DEAD LETTERS", "SOURCE");
    for (size_t i = 0; i < rows->n; i++) {
        const row_t *r = &rows->v[i];
        char lat[32] = "-", lag[32] = "-", dead[24] = "-", src[300];
        char *st = esc(r->status), *ls = esc(r->last_sync), *sc, *er;
        if (r->latency_ms >= 0)
            snprintf(lat, sizeof(lat), "%" PRId64 " ms", r->latency_ms);
        if (r->lag_s >= 0)
            snprintf(lag, sizeof(lag), "%.1f s", r->lag_s);
        if (r->dead_letters >= 0)
            snprintf(dead, sizeof(dead), "%" PRId64, r->dead_letters);
        snprintf(src, sizeof(src), "%s%s%s", r->source, r->sink[0] ? " -> " : "",
                 r->sink);
        sc = esc(src);
        er = esc(r->error);
        printf("%-*s  %-*s  %-7s  %-24s  %10s  %9s  %12s  %s%s%s\n", wa, app[i],
               wp, pipe[i], st, ls, lat, lag, dead, sc, er[0] ? "  " : "", er);
        free(st);
        free(ls);
        free(sc);
        free(er);
        free(app[i]);
        free(pipe[i]);
    }
    free(app);
    free(pipe);
}

static void json_field(cdc_buf_t *b, const char *name, const char *v)
{
    cdc_buf_printf(b, ",\"%s\":", name);
    if (v && *v && strcmp(v, "-"))
        cdc_json_string(b, v, strlen(v));
    else
        cdc_buf_puts(b, "null");
}

static void rows_json(cdc_buf_t *b0, const rows_t *rows, size_t from)
{
    cdc_buf_t b = *b0;

    cdc_buf_putc(&b, '[');
    for (size_t i = from; i < rows->n; i++) {
        const row_t *r = &rows->v[i];
        cdc_buf_puts(&b, i > from ? ",{\"application\":"
                                  : "{\"application\":");
        cdc_json_string(&b, r->app, strlen(r->app));
        json_field(&b, "pipeline", r->pipeline);
        json_field(&b, "status", r->status);
        json_field(&b, "last_sync_time", r->last_sync);
        if (r->latency_ms >= 0)
            cdc_buf_printf(&b, ",\"latency_ms\":%" PRId64, r->latency_ms);
        else
            cdc_buf_puts(&b, ",\"latency_ms\":null");
        if (r->lag_s >= 0)
            cdc_buf_printf(&b, ",\"lag_seconds\":%.3f", r->lag_s);
        else
            cdc_buf_puts(&b, ",\"lag_seconds\":null");
        if (r->events >= 0)
            cdc_buf_printf(&b, ",\"events\":%" PRId64, r->events);
        if (r->dead_letters >= 0)
            cdc_buf_printf(&b, ",\"dead_letters\":%" PRId64, r->dead_letters);
        json_field(&b, "source", r->source);
        json_field(&b, "sink", r->sink);
        json_field(&b, "error", r->error);
        json_field(&b, "from", r->where);
        cdc_buf_putc(&b, '}');
    }
    cdc_buf_puts(&b, "]");
    *b0 = b;
}

static void print_json(const rows_t *rows)
{
    cdc_buf_t b = CDC_BUF_INIT;

    rows_json(&b, rows, 0);
    cdc_buf_putc(&b, '\n');
    fputs(b.p, stdout);
    cdc_buf_free(&b);
}

int cdc_status_peers_json(const char *state_dir, const char *self,
                          const char *token, const char *listen,
                          int timeout_ms, cdc_buf_t *out)
{
    rows_t rows = {0};
    cdc_conf_t *none = cdc_conf_new(); /* peers: no application_id here */
    row_t *me = row_add(&rows);         /* skipped by scan_state */

    snprintf(me->pipeline, sizeof(me->pipeline), "%s", self);
    get_timeout_ms = timeout_ms;
    scan_state(&rows, none, state_dir, token, listen);
    get_timeout_ms = 0;
    rows_json(out, &rows, 1);
    free(rows.v);
    cdc_conf_destroy(none);
    return (int)rows.n - 1;
}

int cdc_status_cli(const cdc_conf_t *conf, int argc, char **argv,
                   cdc_err_t *err)
{
    const char *urls = cdc_conf_get(conf, "status.url", "");
    const char *listen = cdc_conf_get(conf, "http.listen", "");
    const char *token = cdc_conf_get(conf, "http.token", "");
    const char *fmt = cdc_conf_get(conf, "status.format", "table");
    const char *state = cdc_conf_get(conf, "state.dir", "state");
    rows_t rows = {0};
    cdc_buf_t derived = CDC_BUF_INIT;
    int rc = CDC_EXIT_OK;
    static const char *const needed[] = {
        "status.url", "http.listen", "http.token", "status.format",
        "state.dir", "pipeline.name", "source.type", "application_id", NULL};

    /* only what status reads must resolve (not the database secrets) */
    if (cdc_conf_need_resolved(conf, needed, err))
        return err->code;

    if (argc > 0) {
        cdc_err_set(err, CDC_EXIT_USAGE, 0,
                    "status: unexpected argument '%s'", argv[0]);
        cdc_err_hint(err, "autoglm-cdc status [-c pipeline.yaml] [--url URL] "
                     "[--json]");
        return CDC_EXIT_USAGE;
    }
    if (strcmp(fmt, "table") && strcmp(fmt, "json")) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "status.format: unknown format '%s'", fmt);
        cdc_err_hint(err, "use table or json");
        return CDC_EXIT_CONFIG;
    }
    if (!*urls && *listen) {
        /* the daemon's own endpoint; a wildcard address is asked on
         * loopback */
        const char *colon = strrchr(listen, ':');
        const char *port = colon ? colon + 1 : listen;
        size_t hl = colon ? (size_t)(colon - listen) : 0;
        if (!hl || !strncmp(listen, "0.0.0.0", hl) ||
            !strncmp(listen, "[::]", hl) || !strncmp(listen, "*", hl))
            cdc_buf_printf(&derived, "http://127.0.0.1:%s/status", port);
        else
            cdc_buf_printf(&derived, "http://%.*s:%s/status", (int)hl, listen,
                           port);
        urls = derived.p;
    }
    if (*urls) {
        char *dup = cdc_xstrdup(urls), *save = NULL;
        for (char *u = strtok_r(dup, ", ", &save); u;
             u = strtok_r(NULL, ", ", &save)) {
            cdc_err_t e = {0};
            if (from_daemon(&rows, u, token, &e)) {
                /* not fatal: fall back to the checkpoint files */
                char *red = cdc_conf_redact(e.msg), *er = esc(red);
                fprintf(stderr, "autoglm-cdc: %s%s%s\n", er,
                        e.hint[0] ? "; " : "", e.hint);
                free(red);
                free(er);
            }
        }
        free(dup);
    }
    scan_state(&rows, conf, state, token, listen);
    if (!rows.n) {
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, 0,
                    "no running pipeline answered and no checkpoint in %s",
                    state);
        cdc_err_hint(err, "give --url http://HOST:PORT of a daemon started "
                          "with --http, or -c/--state-dir of a pipeline");
        rc = CDC_EXIT_UNAVAILABLE;
    } else if (!strcmp(fmt, "json"))
        print_json(&rows);
    else
        print_table(&rows);
    free(rows.v);
    cdc_buf_free(&derived);
    return rc;
}
