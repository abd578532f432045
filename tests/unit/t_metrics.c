/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_metrics.c - the metrics registry (lag, readiness, Prometheus text,
 * /status JSON), the HTTP endpoint on a loopback port chosen by the kernel
 * (auth, status codes) and the status command over checkpoint files and a
 * live endpoint.  No servers besides our own.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "cdc/checkpoint.h"
#include "cdc/metrics.h"
#include "connectors/pg/pgutil.h"
#include "tests/unit/cdc_test.h"

int cdc_status_cli(const cdc_conf_t *conf, int argc, char **argv,
                   cdc_err_t *err);

static cdc_conf_t *mkconf(void)
{
    cdc_conf_t *c = cdc_conf_new();
    cdc_conf_set(c, "pipeline.name", "orders", NULL);
    cdc_conf_set(c, "application_id", "shop", NULL);
    cdc_conf_set(c, "source.type", "mysql", NULL);
    cdc_conf_set(c, "sink.type", "kafka", NULL);
    cdc_conf_set(c, "ready.max_lag_s", "10", NULL);
    cdc_conf_set(c, "ready.max_checkpoint_age_s", "5", NULL);
    cdc_conf_set(c, "ready.sink_stall_s", "3", NULL);
    return c;
}

static cdc_txn_t *mktxn(int64_t commit_us)
{
    cdc_txn_t *tx = cdc_txn_new();
    cdc_table_t *t = cdc_table_new("db", "t\"1", 1), *u = cdc_table_new("db", "u", 1);
    tx->commit_us = commit_us;
    cdc_txn_add(tx, 'c', t);
    cdc_txn_add(tx, 'c', t);
    cdc_txn_add(tx, 'u', u);
    cdc_table_destroy(t);
    cdc_table_destroy(u);
    return tx;
}

static yajl_val parse(const char *s)
{
    char eb[256];
    yajl_val v = yajl_tree_parse(s, eb, sizeof(eb));
    if (!v)
        printf("# json: %s\n# %s\n", eb, s);
    return v;
}

static const char *jget_str(yajl_val v, const char *a, const char *b)
{
    const char *p[] = {a, b, NULL};
    yajl_val x = yajl_tree_get(v, p, yajl_t_string);
    return x ? YAJL_GET_STRING(x) : NULL;
}

static int jget_bool(yajl_val v, const char *a, const char *b)
{
    const char *p[] = {a, b, NULL};
    yajl_val x = yajl_tree_get(v, p, yajl_t_any);
    return x && YAJL_IS_TRUE(x);
}

CDC_TEST(lag_and_readiness)
{
    cdc_conf_t *c = mkconf();
    cdc_err_t err = {0};
    cdc_buf_t r = CDC_BUF_INIT;
    int64_t now = cdc_metrics_now_us();
    cdc_pos_t pos;
    cdc_txn_t *tx;

    T_EQ_INT(cdc_metrics_init(c, &err), 0);
    /* not started: not ready */
    T_EQ_INT(cdc_metrics_ready(&r, now), 0);
    T_ASSERT(strstr(r.p, "source mysql disconnected"));
    cdc_metrics_source_state(1, NULL);
    cdc_buf_reset(&r);
    T_EQ_INT(cdc_metrics_ready(&r, now), 1);
    T_EQ_STR(r.p, "[]");

    /* a txn committed 20 s ago is in flight: lag 20 s, above 10 */
    tx = mktxn(now - 20000000);
    cdc_metrics_txn(tx);
    cdc_metrics_inflight(1, 1000, tx->commit_us);
    T_ASSERT(cdc_metrics_lag_us(now) >= 19900000);
    cdc_buf_reset(&r);
    T_EQ_INT(cdc_metrics_ready(&r, now), 0);
    T_ASSERT(strstr(r.p, "above ready.max_lag_s=10"));
    /* delivered, then caught up: lag 0 */
    cdc_metrics_delivered(tx->commit_us);
    cdc_metrics_inflight(0, 0, 0);
    T_ASSERT(cdc_metrics_lag_us(now) >= 19900000);
    cdc_metrics_caught_up(1);
    T_EQ_INT(cdc_metrics_lag_us(now), 0);
    /* delivered but not checkpointed for 6 s: stale */
    cdc_buf_reset(&r);
    T_EQ_INT(cdc_metrics_ready(&r, now + 6000000), 0);
    T_ASSERT(strstr(r.p, "checkpoint stale"));
    memset(&pos, 0, sizeof(pos));
    snprintf(pos.file, sizeof(pos.file), "bin.000001");
    pos.offset = 1234;
    cdc_metrics_checkpoint(&pos, tx->commit_us, 0);
    T_EQ_INT(cdc_metrics_ready(NULL, now + 6000000), 1);
    /* source lost: lag grows from the last delivered commit */
    cdc_metrics_source_state(0, "lost connection to mysql://cdc:hunter2@h:1");
    T_ASSERT(cdc_metrics_lag_us(now) >= 19900000);
    cdc_buf_reset(&r);
    T_EQ_INT(cdc_metrics_ready(&r, now), 0);
    T_ASSERT(strstr(r.p, "source mysql disconnected: lost connection"));
    T_ASSERT(!strstr(r.p, "hunter2"));
    cdc_metrics_source_state(1, NULL);
    cdc_metrics_reconnect();
    cdc_metrics_caught_up(1);
    T_EQ_INT(cdc_metrics_ready(NULL, now), 1);
    /* sink: nothing delivered for longer than ready.sink_stall_s */
    cdc_metrics_inflight(3, 100, cdc_metrics_now_us());
    cdc_buf_reset(&r);
    T_EQ_INT(cdc_metrics_ready(&r, cdc_metrics_now_us() + 4000000), 0);
    T_ASSERT(strstr(r.p, "sink kafka failing"));
    cdc_metrics_inflight(0, 0, 0);
    cdc_metrics_sink_state(0, "broker said no");
    cdc_buf_reset(&r);
    T_EQ_INT(cdc_metrics_ready(&r, now), 0);
    T_ASSERT(strstr(r.p, "sink kafka failing: broker said no"));
    cdc_metrics_sink_state(1, NULL);
    cdc_txn_destroy(tx);
    cdc_buf_free(&r);
    cdc_conf_destroy(c);
}

static void scrape_hook(void *arg)
{
    int64_t *v = arg;
    cdc_metric_t *m = cdc_metrics_register("t_scraped_bytes", "gauge",
                                           "Set at scrape time.", NULL);
    if (*v >= 0)
        cdc_metrics_set(m, *v);
    else
        cdc_metrics_unset(m);
}

static int64_t scraped;

CDC_TEST(prometheus_text)
{
    cdc_conf_t *c = mkconf();
    cdc_err_t err = {0};
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_txn_t *tx = mktxn(cdc_metrics_now_us() - 1000);

    T_EQ_INT(cdc_metrics_init(c, &err), 0);
    cdc_metrics_source_state(1, NULL);
    cdc_metrics_txn(tx);
    cdc_metrics_txn(tx);
    /* a plugin's own gauge (the Kafka sink registers this one) */
    cdc_metrics_set(cdc_metrics_register("kafka_inflight_messages", "gauge",
                                         "Messages not yet acknowledged.",
                                         "inflight_messages"), 7);
    cdc_metrics_sink_progress(0, "kafka", 3, 1500000, 2);
    /* a gauge read on demand: the scrape hook sets it */
    T_EQ_INT(cdc_metrics_scrape_add("t_scrape", scrape_hook, &scraped), 0);
    T_EQ_INT(cdc_metrics_scrape_add("t_scrape", scrape_hook, NULL), -1);
    scraped = 4096;
    cdc_metrics_scrape();
    cdc_metrics_scrape_remove("t_scrape", &scraped);
    cdc_metrics_backfill(1500, 2);
    cdc_metrics_render_prom(&b, cdc_metrics_now_us());
    T_ASSERT(strstr(b.p, "autoglm_cdc_build_info{version=\""));
    T_ASSERT(strstr(b.p, "application=\"shop\",pipeline=\"orders\"} 1\n"));
    T_ASSERT(strstr(b.p, "autoglm_cdc_source_events_total{table=\"db.t\\\"1\","
                         "op=\"c\"} 4\n"));
    T_ASSERT(strstr(b.p, "autoglm_cdc_source_events_total{table=\"db.u\","
                         "op=\"u\"} 2\n"));
    T_ASSERT(strstr(b.p, "# TYPE autoglm_cdc_source_events_total counter\n"));
    T_ASSERT(strstr(b.p, "autoglm_cdc_connected{component=\"source\","
                         "type=\"mysql\"} 1\n"));
    T_ASSERT(strstr(b.p, "autoglm_cdc_connected{component=\"sink\","
                         "type=\"kafka\"} 1\n"));
    T_ASSERT(strstr(b.p, "autoglm_cdc_kafka_inflight_messages 7\n"));
    T_ASSERT(strstr(b.p, "# TYPE autoglm_cdc_kafka_inflight_messages gauge\n"));
    T_ASSERT(strstr(b.p, "autoglm_cdc_sink_delivered_transactions_total"
                         "{sink=\"kafka\"} 3\n"));
    T_ASSERT(strstr(b.p, "autoglm_cdc_sink_queue_transactions{sink=\"kafka\"}"
                         " 2\n"));
    T_ASSERT(strstr(b.p, "autoglm_cdc_sink_last_commit_timestamp_seconds"
                         "{sink=\"kafka\"} 1.500000\n"));
    T_ASSERT(strstr(b.p, "# HELP autoglm_cdc_t_scraped_bytes Set at scrape "
                         "time.\n# TYPE autoglm_cdc_t_scraped_bytes gauge\n"
                         "autoglm_cdc_t_scraped_bytes 4096\n"));
    T_ASSERT(strstr(b.p, "autoglm_cdc_backfill_rows_done 1500\n"));
    T_ASSERT(strstr(b.p, "autoglm_cdc_backfill_tables_remaining 2\n"));
    T_ASSERT(strstr(b.p, "autoglm_cdc_source_transactions_total 2\n"));
    T_ASSERT(strstr(b.p, "autoglm_cdc_lag_seconds "));
    T_ASSERT(strstr(b.p, "autoglm_cdc_checkpoint_age_seconds "));
    T_ASSERT(strstr(b.p, "autoglm_cdc_queue_bytes 0\n"));
    /* every sample line is NAME{...} VALUE or NAME VALUE */
    for (char *l = b.p; *l;) {
        char *nl = strchr(l, '\n');
        T_ASSERT(nl);
        if (!nl)
            break;
        if (*l != '#') {
            T_ASSERT(!strncmp(l, "autoglm_cdc_", 12));
            T_ASSERT(memchr(l, ' ', (size_t)(nl - l)));
        }
        l = nl + 1;
    }
    /* many tables: the hash grows */
    for (int i = 0; i < 300; i++) {
        cdc_txn_t *t2 = cdc_txn_new();
        char name[32];
        cdc_table_t *t;
        snprintf(name, sizeof(name), "t%d", i);
        t = cdc_table_new("many", name, 1);
        cdc_txn_add(t2, 'd', t);
        cdc_table_destroy(t);
        cdc_metrics_txn(t2);
        cdc_metrics_txn(t2);
        cdc_txn_destroy(t2);
    }
    cdc_buf_reset(&b);
    cdc_metrics_render_prom(&b, cdc_metrics_now_us());
    T_ASSERT(strstr(b.p, "{table=\"many.t299\",op=\"d\"} 2\n"));
    T_ASSERT(strstr(b.p, "{table=\"many.t0\",op=\"d\"} 2\n"));
    cdc_txn_destroy(tx);
    cdc_buf_free(&b);
    cdc_conf_destroy(c);
}

CDC_TEST(status_json)
{
    cdc_conf_t *c = mkconf();
    cdc_err_t err = {0};
    cdc_buf_t b = CDC_BUF_INIT;
    yajl_val v;
    int64_t now = cdc_metrics_now_us();
    cdc_pos_t pos;

    T_EQ_INT(cdc_metrics_init(c, &err), 0);
    cdc_metrics_render_status(&b, now);
    v = parse(b.p);
    T_ASSERT(v);
    T_EQ_STR(jget_str(v, "application", NULL), "shop");
    T_EQ_STR(jget_str(v, "status", NULL), "offline");
    T_ASSERT(!jget_bool(v, "ready", NULL));
    yajl_tree_free(v);

    cdc_metrics_source_state(1, NULL);
    /* a transaction committed a minute before this process started (a
     * replay after a restart, or downtime caught up): last sync time, but
     * no phantom latency */
    cdc_metrics_delivered(now - 60000000);
    cdc_buf_reset(&b);
    cdc_metrics_render_status(&b, cdc_metrics_now_us());
    v = parse(b.p);
    T_ASSERT(v);
    T_ASSERT(jget_str(v, "last_sync_time", NULL));
    {
        const char *p[] = {"latency_ms", NULL};
        yajl_val x = yajl_tree_get(v, p, yajl_t_null);
        T_ASSERT(x != NULL);
    }
    yajl_tree_free(v);
    /* a change committed since the start: its latency */
    now = cdc_metrics_now_us();
    usleep(300000);
    cdc_metrics_delivered(now);
    now = cdc_metrics_now_us();
    memset(&pos, 0, sizeof(pos));
    pos.lsn = 0x16B3748;
    cdc_metrics_checkpoint(&pos, now - 300000, 0);
    cdc_metrics_caught_up(1);
    cdc_buf_reset(&b);
    cdc_metrics_render_status(&b, now);
    v = parse(b.p);
    T_ASSERT(v);
    T_EQ_STR(jget_str(v, "status", NULL), "online");
    T_ASSERT(jget_bool(v, "connected", NULL));
    T_ASSERT(jget_bool(v, "source", "connected"));
    T_ASSERT(jget_bool(v, "ready", NULL));
    T_EQ_STR(jget_str(v, "source", "type"), "mysql");
    T_ASSERT(jget_str(v, "last_sync_time", NULL));
    T_ASSERT(jget_str(v, "checkpoint", "position") &&
             strstr(jget_str(v, "checkpoint", "position"), "16B3748"));
    {
        const char *p[] = {"latency_ms", NULL};
        yajl_val x = yajl_tree_get(v, p, yajl_t_number);
        T_ASSERT(x && YAJL_GET_INTEGER(x) >= 290 &&
                 YAJL_GET_INTEGER(x) < 5000);
    }
    yajl_tree_free(v);
    cdc_buf_free(&b);
    cdc_conf_destroy(c);
}

/* GET path from 127.0.0.1:port; returns the status code, body in *body */
static int get(int port, const char *path, const char *auth, char *body,
               size_t n)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    char req[512], resp[65536];
    size_t got = 0;
    ssize_t r;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char *sep;

    struct timeval tv = {.tv_sec = 60}; /* a hung endpoint fails */

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        close(fd);
        return -1;
    }
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n%s%s%sConnection: close"
             "\r\n\r\n", path, auth ? "Authorization: " : "", auth ? auth : "",
             auth ? "\r\n" : "");
    if (write(fd, req, strlen(req)) < 0) {
        close(fd);
        return -1;
    }
    while (got < sizeof(resp) - 1 &&
           (r = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    resp[got] = '\0';
    sep = strstr(resp, "\r\n\r\n");
    snprintf(body, n, "%s", sep ? sep + 4 : "");
    return got > 12 ? atoi(resp + 9) : -1;
}

CDC_TEST(http_endpoint)
{
    cdc_conf_t *c = mkconf();
    cdc_err_t err = {0};
    cdc_http_t *h = NULL;
    char body[65536];
    int port;

    char dir[] = "/tmp/t_metrics_rec.XXXXXX", rec[64], rurl[128];
    long pid = 0;
    int lockfd = -1;
    FILE *fp;

    T_ASSERT(mkdtemp(dir));
    cdc_conf_set(c, "state.dir", dir, NULL);
    T_EQ_INT(cdc_metrics_init(c, &err), 0);
    snprintf(rec, sizeof(rec), "%s/orders.daemon", dir);
    /* nobody holds the run lock: not running */
    T_ASSERT(!cdc_daemon_running(dir, "orders", &pid, rurl, sizeof(rurl)));
    /* the run lock makes it running (asked from the holding process too:
     * the lock belongs to its descriptor, asking does not drop it) */
    T_EQ_INT(cdc_state_lock(dir, "orders", "run", &lockfd, &err), 0);
    T_ASSERT(cdc_daemon_running(dir, "orders", &pid, rurl, sizeof(rurl)));
    T_ASSERT(cdc_daemon_running(dir, "orders", &pid, rurl, sizeof(rurl)));
    T_ASSERT(pid == (long)getpid() && rurl[0] == '\0');
    {
        int fd2 = -1;
        cdc_err_t e2 = {0};
        T_EQ_INT(cdc_state_lock(dir, "orders", "run", &fd2, &e2), -1);
        T_EQ_INT(e2.code, CDC_EXIT_TEMPFAIL);
    }
    /* unset: no server, but the daemon is recorded (pid, no URL) */
    T_EQ_INT(cdc_http_start(c, &h, &err), 0);
    T_ASSERT(h != NULL && cdc_http_port(h) == 0);
    T_ASSERT(access(rec, F_OK) == 0);
    T_ASSERT(cdc_daemon_running(dir, "orders", &pid, rurl, sizeof(rurl)));
    T_ASSERT(pid == (long)getpid() && rurl[0] == '\0');
    cdc_http_stop(h);
    h = NULL;
    T_ASSERT(access(rec, F_OK) != 0);
    cdc_state_unlock(lockfd);
    T_ASSERT(!cdc_daemon_running(dir, "orders", &pid, rurl, sizeof(rurl)));
    /* a stale record whose pid was reused by a live process (this one):
     * without the run lock it is not a running daemon */
    fp = fopen(rec, "w");
    T_ASSERT(fp != NULL);
    if (fp) {
        fprintf(fp, "pid=%ld\nurl=http://127.0.0.1:1\n", (long)getpid());
        fclose(fp);
    }
    T_ASSERT(!cdc_daemon_running(dir, "orders", &pid, rurl, sizeof(rurl)));
    unlink(rec);
    T_EQ_INT(cdc_state_lock(dir, "orders", "run", &lockfd, &err), 0);
    cdc_conf_set(c, "http.listen", "nonsense:port", NULL);
    T_EQ_INT(cdc_http_start(c, &h, &err), -1);
    T_EQ_INT(err.code, CDC_EXIT_CONFIG);
    cdc_conf_set(c, "http.listen", "127.0.0.1:0", NULL);
    cdc_conf_set(c, "http.token", "s3cr3t-t0ken", NULL);
    T_EQ_INT(cdc_http_start(c, &h, &err), 0);
    T_ASSERT(h != NULL);
    port = cdc_http_port(h);
    T_ASSERT(port > 0);
    /* the record names the endpoint */
    T_ASSERT(cdc_daemon_running(dir, "orders", &pid, rurl, sizeof(rurl)));
    T_ASSERT(pid == (long)getpid());
    {
        char want[64];
        snprintf(want, sizeof(want), "http://127.0.0.1:%d", port);
        T_EQ_STR(rurl, want);
    }

    T_EQ_INT(get(port, "/livez", NULL, body, sizeof(body)), 200);
    T_EQ_INT(get(port, "/readyz", NULL, body, sizeof(body)), 503);
    T_ASSERT(strstr(body, "\"ready\":false"));
    T_ASSERT(strstr(body, "source mysql disconnected"));
    cdc_metrics_source_state(1, NULL);
    T_EQ_INT(get(port, "/readyz", NULL, body, sizeof(body)), 200);
    T_EQ_INT(get(port, "/metrics", NULL, body, sizeof(body)), 401);
    T_EQ_INT(get(port, "/metrics", "Bearer wrong", body, sizeof(body)), 401);
    T_EQ_INT(get(port, "/metrics", "Bearer s3cr3t-t0ke", body, sizeof(body)),
             401);
    T_EQ_INT(get(port, "/status", NULL, body, sizeof(body)), 401);
    T_EQ_INT(get(port, "/metrics", "Bearer s3cr3t-t0ken", body, sizeof(body)),
             200);
    T_ASSERT(strstr(body, "autoglm_cdc_build_info{"));
    T_ASSERT(!strstr(body, "s3cr3t"));
    T_EQ_INT(get(port, "/status", "Bearer s3cr3t-t0ken", body, sizeof(body)),
             200);
    T_ASSERT(strstr(body, "\"application\":\"shop\""));
    T_ASSERT(!strstr(body, "s3cr3t"));
    T_EQ_INT(get(port, "/nope", NULL, body, sizeof(body)), 404);

    /* the status command against the live endpoint */
    {
        char url[64];
        int rc;
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
        cdc_conf_set(c, "status.url", url, NULL);
        cdc_conf_set(c, "state.dir", "/nonexistent-dir", NULL);
        cdc_conf_set(c, "status.format", "json", NULL);
        fflush(stdout);
        printf("# ");
        fflush(stdout);
        rc = cdc_status_cli(c, 0, NULL, &err);
        T_EQ_INT(rc, 0);
    }
    cdc_http_stop(h);
    cdc_state_unlock(lockfd);
    {
        char *lp = cdc_state_lock_path(dir, "orders", "run");
        T_EQ_INT(unlink(lp), 0);
        free(lp);
    }
    T_EQ_INT(rmdir(dir), 0); /* the record went with the endpoint */
    cdc_conf_destroy(c);
}

/* ---- the token goes only to records and hosts that are safe ---------- */

/* A tiny HTTP listener on every address: counts the requests and those
 * that carried an Authorization header; answers 401. */
typedef struct spy {
    int fd, port;
    volatile int stop;
    int conns, auths; /* under the test's reading after a request */
    pthread_t thr;
} spy_t;

static void *spy_main(void *arg)
{
    spy_t *sp = arg;
    while (!sp->stop) {
        struct pollfd pf = {.fd = sp->fd, .events = POLLIN};
        char req[4096];
        size_t n = 0;
        int c;
        if (poll(&pf, 1, 50) <= 0)
            continue;
        c = accept(sp->fd, NULL, NULL);
        if (c < 0)
            continue;
        while (n < sizeof(req) - 1) {
            ssize_t r = recv(c, req + n, sizeof(req) - 1 - n, 0);
            if (r <= 0)
                break;
            n += (size_t)r;
            req[n] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        req[n] = '\0';
        __atomic_add_fetch(&sp->conns, 1, __ATOMIC_SEQ_CST);
        if (strcasestr(req, "\nAuthorization:"))
            __atomic_add_fetch(&sp->auths, 1, __ATOMIC_SEQ_CST);
        (void)!send(c, "HTTP/1.0 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
                    48, MSG_NOSIGNAL);
        close(c);
    }
    return NULL;
}

static void spy_start(spy_t *sp)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    int one = 1;
    memset(sp, 0, sizeof(*sp));
    sp->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(sp->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(sp->fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(sp->fd, 16) ||
        getsockname(sp->fd, (struct sockaddr *)&sa, &sl))
        abort();
    sp->port = ntohs(sa.sin_port);
    pthread_create(&sp->thr, NULL, spy_main, sp);
}

static void spy_stop(spy_t *sp)
{
    sp->stop = 1;
    pthread_join(sp->thr, NULL);
    close(sp->fd);
}

/* An IPv4 address of this machine that is not loopback ("" if none). */
static void non_loopback(char *out, size_t n)
{
    struct ifaddrs *ifa = NULL, *i;
    *out = '\0';
    if (getifaddrs(&ifa))
        return;
    for (i = ifa; i && !*out; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET) {
            const struct sockaddr_in *a = (const void *)i->ifa_addr;
            if ((ntohl(a->sin_addr.s_addr) >> 24) != 127)
                inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)n);
        }
    freeifaddrs(ifa);
}

static void plant(const char *dir, const char *name, const char *host,
                  int port, mode_t mode)
{
    char path[256];
    FILE *fp;
    snprintf(path, sizeof(path), "%s/%s.daemon", dir, name);
    unlink(path);
    fp = fopen(path, "w");
    if (!fp)
        abort();
    fprintf(fp, "pid=1\nurl=http://%s:%d\n", host, port);
    fclose(fp);
    chmod(path, mode);
}

/* Asks the peers of dir with token "tok3n" as a daemon listening on
 * listen; returns the requests (and those with the token) the spy saw. */
static void ask(spy_t *sp, const char *dir, const char *token,
                const char *listen, int *conns, int *auths, char *rows,
                size_t rn)
{
    cdc_buf_t b = CDC_BUF_INIT;
    int c0 = __atomic_load_n(&sp->conns, __ATOMIC_SEQ_CST);
    int a0 = __atomic_load_n(&sp->auths, __ATOMIC_SEQ_CST);
    cdc_status_peers_json(dir, "self", token, listen, 2000, &b);
    *conns = __atomic_load_n(&sp->conns, __ATOMIC_SEQ_CST) - c0;
    *auths = __atomic_load_n(&sp->auths, __ATOMIC_SEQ_CST) - a0;
    snprintf(rows, rn, "%s", b.p ? b.p : "");
    cdc_buf_free(&b);
}

CDC_TEST(peers_token_only_where_safe)
{
    char dir[] = "/tmp/t_metrics_peer.XXXXXX", other[] = "/tmp/t_metrics_o.XXXXXX";
    char path[256], tgt[256], ip[64], listen[96], rows[8192];
    spy_t sp;
    int conns, auths;

    T_ASSERT(mkdtemp(dir) && mkdtemp(other));
    spy_start(&sp);
    /* our own record (0600): asked with the token (the control) */
    plant(dir, "p", "127.0.0.1", sp.port, 0600);
    ask(&sp, dir, "tok3n", "127.0.0.1:0", &conns, &auths, rows, sizeof(rows));
    T_EQ_INT(conns, 1);
    T_EQ_INT(auths, 1);
    /* writable by others, or by the group: not asked at all */
    plant(dir, "p", "127.0.0.1", sp.port, 0666);
    ask(&sp, dir, "tok3n", "127.0.0.1:0", &conns, &auths, rows, sizeof(rows));
    T_EQ_INT(conns, 0);
    T_EQ_INT(auths, 0);
    plant(dir, "p", "127.0.0.1", sp.port, 0620);
    ask(&sp, dir, "tok3n", "127.0.0.1:0", &conns, &auths, rows, sizeof(rows));
    T_EQ_INT(conns, 0);
    /* without a token nothing can leak: asked as before */
    plant(dir, "p", "127.0.0.1", sp.port, 0666);
    ask(&sp, dir, "", "127.0.0.1:0", &conns, &auths, rows, sizeof(rows));
    T_EQ_INT(conns, 1);
    T_EQ_INT(auths, 0);
    /* a symbolic link to a good record elsewhere: not asked */
    snprintf(path, sizeof(path), "%s/p.daemon", dir);
    unlink(path);
    plant(other, "x", "127.0.0.1", sp.port, 0600);
    snprintf(tgt, sizeof(tgt), "%s/x.daemon", other);
    T_EQ_INT(symlink(tgt, path), 0);
    ask(&sp, dir, "tok3n", "127.0.0.1:0", &conns, &auths, rows, sizeof(rows));
    T_EQ_INT(conns, 0);
    unlink(path);
    /* another uid's record (only root can make one here) */
    if (geteuid() == 0) {
        plant(dir, "p", "127.0.0.1", sp.port, 0600);
        T_EQ_INT(chown(path, 65534, 65534), 0);
        ask(&sp, dir, "tok3n", "127.0.0.1:0", &conns, &auths, rows,
            sizeof(rows));
        T_EQ_INT(conns, 0);
        unlink(path);
    } else {
        printf("# skipped: another uid's record (needs root to chown)\n");
    }
    /* a host that is neither loopback nor ours: asked without the token;
     * with http.listen on that host, with it */
    non_loopback(ip, sizeof(ip));
    printf("# non-loopback address: %s\n", ip[0] ? ip : "(none)");
    T_ASSERT(ip[0]);
    if (ip[0]) {
        plant(dir, "p", ip, sp.port, 0600);
        ask(&sp, dir, "tok3n", "127.0.0.1:0", &conns, &auths, rows,
            sizeof(rows));
        T_EQ_INT(conns, 1);
        T_EQ_INT(auths, 0);
        ask(&sp, dir, "tok3n", "0.0.0.0:9464", &conns, &auths, rows,
            sizeof(rows));
        T_EQ_INT(auths, 0);
        snprintf(listen, sizeof(listen), "%s:9464", ip);
        ask(&sp, dir, "tok3n", listen, &conns, &auths, rows, sizeof(rows));
        T_EQ_INT(conns, 1);
        T_EQ_INT(auths, 1);
    }
    spy_stop(&sp);
    {
        char cmd[160];
        snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, other);
        T_EQ_INT(system(cmd), 0);
    }
}

/* The warning about a peer not asked is given once per peer however many
 * peers the state directory holds (the daemon's peers thread asks every
 * 2 s): 40 records that cannot be trusted with the token, asked twice,
 * make exactly 40 warnings, one per peer. */
CDC_TEST(peers_warning_once_per_peer_beyond_32)
{
    enum { NPEERS = 40 };
    char dir[] = "/tmp/t_metrics_wo.XXXXXX", name[32], cmd[96];
    int total = 0, seen[NPEERS] = {0};

    T_ASSERT(mkdtemp(dir));
    for (int i = 0; i < NPEERS; i++) {
        snprintf(name, sizeof(name), "wonce%02d", i);
        plant(dir, name, "127.0.0.1", 9, 0666); /* writable by others */
    }
    for (int round = 0; round < 2; round++) {
        FILE *tmp = tmpfile();
        int saved = dup(2);
        cdc_buf_t b = CDC_BUF_INIT;
        long n;
        char *out, *p;

        fflush(stderr);
        dup2(fileno(tmp), 2);
        cdc_status_peers_json(dir, "self", "tok3n", "127.0.0.1:0", 200, &b);
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        cdc_buf_free(&b);
        n = ftell(tmp);
        out = calloc(1, (size_t)n + 1);
        rewind(tmp);
        if (fread(out, 1, (size_t)n, tmp) != (size_t)n)
            out[0] = '\0';
        fclose(tmp);
        for (p = out; (p = strstr(p, "not asking pipeline wonce")); p++) {
            int k = atoi(p + strlen("not asking pipeline wonce"));
            total++;
            if (k >= 0 && k < NPEERS)
                seen[k]++;
        }
        free(out);
    }
    T_EQ_INT(total, NPEERS);
    for (int i = 0; i < NPEERS; i++)
        if (seen[i] != 1)
            T_FAIL_("peer wonce%02d warned %d times, not once", i, seen[i]);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    T_EQ_INT(system(cmd), 0);
}

/* A daemon's own record is closed to group and others whatever the umask,
 * so its peers trust it with the token. */
CDC_TEST(daemon_record_mode_ignores_umask)
{
    char dir[] = "/tmp/t_metrics_um.XXXXXX", rec[96];
    cdc_conf_t *c = mkconf();
    cdc_err_t err = {0};
    cdc_http_t *h = NULL;
    struct stat st;
    mode_t old;

    T_ASSERT(mkdtemp(dir));
    cdc_conf_set(c, "state.dir", dir, NULL);
    cdc_conf_set(c, "http.listen", "127.0.0.1:0", NULL);
    old = umask(0);
    T_EQ_INT(cdc_http_start(c, &h, &err), 0);
    umask(old);
    snprintf(rec, sizeof(rec), "%s/orders.daemon", dir);
    T_EQ_INT(stat(rec, &st), 0);
    T_EQ_INT(st.st_mode & 07777, 0644);
    cdc_http_stop(h);
    rmdir(dir);
    cdc_conf_destroy(c);
}

CDC_TEST(status_from_checkpoints)
{
    char dir[] = "/tmp/t_metrics.XXXXXX";
    cdc_conf_t *c = mkconf();
    cdc_err_t err = {0};
    cdc_ckpt_t ck;
    char *path, out[4096];
    FILE *fp;
    int saved, rc;
    size_t n;

    T_ASSERT(mkdtemp(dir));
    memset(&ck, 0, sizeof(ck));
    snprintf(ck.source, sizeof(ck.source), "mysql");
    snprintf(ck.pos.file, sizeof(ck.pos.file), "bin.000002");
    ck.commit_us = INT64_C(1795000000000000);
    path = cdc_ckpt_path(dir, "orders");
    T_EQ_INT(cdc_ckpt_store(path, &ck, &err), 0);
    free(path);
    path = cdc_ckpt_path(dir, "billing");
    T_EQ_INT(cdc_ckpt_store(path, &ck, &err), 0);
    free(path);
    path = cdc_ckpt_path(dir, "torn"); /* a damaged checkpoint is shown */
    fp = fopen(path, "w");
    T_ASSERT(fp != NULL);
    if (fp) {
        fputs("version=1\nsource=mysql\nfile=bin.0", fp);
        fclose(fp);
    }
    free(path);
    cdc_conf_set(c, "state.dir", dir, NULL);

    /* capture stdout */
    fflush(stdout);
    saved = dup(1);
    fp = tmpfile();
    dup2(fileno(fp), 1);
    rc = cdc_status_cli(c, 0, NULL, &err);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    rewind(fp);
    n = fread(out, 1, sizeof(out) - 1, fp);
    out[n] = '\0';
    fclose(fp);
    T_EQ_INT(rc, 0);
    T_ASSERT(strstr(out, "APPLICATION"));
    T_ASSERT(strstr(out, "LATENCY"));
    /* the configured pipeline shows its application id */
    T_ASSERT(strstr(out, "shop"));
    T_ASSERT(strstr(out, "billing"));
    T_ASSERT(strstr(out, "offline"));
    T_ASSERT(strstr(out, "2026-11-18T"));
    T_ASSERT(strstr(out, "torn") && strstr(out, "damaged"));
    {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        T_EQ_INT(system(cmd), 0);
    }
    /* nothing at all: 69 */
    cdc_conf_set(c, "state.dir", dir, NULL);
    T_EQ_INT(cdc_status_cli(c, 0, NULL, &err), CDC_EXIT_UNAVAILABLE);
    cdc_conf_destroy(c);
}

CDC_TEST(secrets_redacted)
{
    char *r = cdc_conf_redact("host=h sslpassword=k3y-pw user=u");
    T_ASSERT(!strstr(r, "k3y-pw"));
    T_ASSERT(strstr(r, "user=u"));
    free(r);
    r = cdc_conf_redact("sasl.password=s4sl client_secret=c1 clientSecret=c2");
    T_ASSERT(!strstr(r, "s4sl") && !strstr(r, "c1") && !strstr(r, "c2"));
    free(r);
    r = cdc_conf_redact("postgresql://u:pg-pw@h/db?sslmode=verify-full");
    T_ASSERT(!strstr(r, "pg-pw"));
    T_ASSERT(strstr(r, "sslmode=verify-full"));
    free(r);
    T_ASSERT(cdc_conf_is_secret("http.token"));
    T_ASSERT(cdc_conf_is_secret("kafka.sasl.password"));
    T_ASSERT(cdc_conf_is_secret("kafka.ssl.key.pem"));
    T_ASSERT(cdc_conf_is_secret("kafka.ssl.key.password"));
    T_ASSERT(cdc_conf_is_secret("kafka.ssl.keystore.password"));
    T_ASSERT(cdc_conf_is_secret("kafka.sasl.oauthbearer.config"));
    T_ASSERT(cdc_conf_is_secret("kafka.sasl.oauthbearer.client.secret"));
    T_ASSERT(cdc_conf_is_secret("postgres.dsn"));
    T_ASSERT(!cdc_conf_is_secret("mysql.ssl.ca"));
    T_ASSERT(!cdc_conf_is_secret("http.listen"));
}

/* hooks run only while registered; an unknown value is not rendered */
CDC_TEST(scrape_hooks)
{
    cdc_conf_t *c = mkconf();
    cdc_err_t err = {0};
    cdc_buf_t b = CDC_BUF_INIT;
    int64_t v = 11;

    T_EQ_INT(cdc_metrics_init(c, &err), 0);
    T_EQ_INT(cdc_metrics_scrape_add("t_scrape", scrape_hook, &v), 0);
    cdc_metrics_scrape();
    cdc_metrics_render_prom(&b, cdc_metrics_now_us());
    T_ASSERT(strstr(b.p, "autoglm_cdc_t_scraped_bytes 11\n"));
    v = -1;
    cdc_metrics_scrape();
    cdc_buf_reset(&b);
    cdc_metrics_render_prom(&b, cdc_metrics_now_us());
    T_ASSERT(!strstr(b.p, "t_scraped_bytes"));
    cdc_metrics_scrape_remove("t_scrape", &v);
    v = 12;
    cdc_metrics_scrape();
    cdc_buf_reset(&b);
    cdc_metrics_render_prom(&b, cdc_metrics_now_us());
    T_ASSERT(!strstr(b.p, "t_scraped_bytes"));
    /* removed: the name is free again */
    T_EQ_INT(cdc_metrics_scrape_add("t_scrape", scrape_hook, &v), 0);
    cdc_metrics_scrape_remove("t_scrape", &v);
    cdc_buf_free(&b);
    cdc_conf_destroy(c);
}

/* the PostgreSQL source's slot gauge: off by metrics.pg_slot, one per
 * process, absent while the server cannot be reached */
CDC_TEST(pg_slot_gauge)
{
    cdc_conf_t *c = mkconf();
    cdc_err_t err = {0};
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_pg_slot_gauge_t *g = NULL, *g2 = NULL;

    T_EQ_INT(cdc_metrics_init(c, &err), 0);
    cdc_conf_set(c, "postgres.dsn", "host=127.0.0.1 port=1 dbname=x", NULL);
    cdc_conf_set(c, "metrics.pg_slot", "false", NULL);
    T_EQ_INT(cdc_pg_slot_gauge_start(c, &g, &err), 0);
    T_ASSERT(g == NULL);
    cdc_conf_set(c, "metrics.pg_slot", "nope", NULL);
    T_EQ_INT(cdc_pg_slot_gauge_start(c, &g, &err), -1);
    cdc_conf_set(c, "metrics.pg_slot", "true", NULL);
    T_EQ_INT(cdc_pg_slot_gauge_start(c, &g, &err), 0);
    T_ASSERT(g != NULL);
    T_EQ_INT(cdc_pg_slot_gauge_start(c, &g2, &err), 0);
    T_ASSERT(g2 == NULL);
    cdc_metrics_scrape();
    cdc_metrics_render_prom(&b, cdc_metrics_now_us());
    T_ASSERT(!strstr(b.p, "pg_slot_retained_wal_bytes"));
    cdc_pg_slot_gauge_stop(g);
    /* stopped: the hook's name is free */
    T_EQ_INT(cdc_pg_slot_gauge_start(c, &g, &err), 0);
    T_ASSERT(g != NULL);
    cdc_pg_slot_gauge_stop(g);
    cdc_buf_free(&b);
    cdc_conf_destroy(c);
}

/* A PostgreSQL server that lets a client in and then never answers: it
 * declines TLS and GSS encryption, says AuthenticationOk and
 * ReadyForQuery, then reads whatever comes (queried) until EOF (eof). */
typedef struct fakepg {
    int lfd, port;
    volatile int queried, eof;
} fakepg_t;

static int read_n(int fd, void *p, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void *fakepg_main(void *arg)
{
    fakepg_t *f = arg;
    static const char ok[] = {'R', 0, 0, 0, 8, 0, 0, 0, 0,
                              'Z', 0, 0, 0, 5, 'I'};
    unsigned char b[4096];
    int fd = accept(f->lfd, NULL, NULL);

    for (;;) { /* SSLRequest / GSSENCRequest, then the startup packet */
        uint32_t len, code;
        if (fd < 0 || read_n(fd, b, 8))
            goto out;
        len = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
              (uint32_t)b[2] << 8 | b[3];
        code = (uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 |
               (uint32_t)b[6] << 8 | b[7];
        if (len < 8 || len > sizeof(b) || read_n(fd, b, len - 8))
            goto out;
        if (code == 80877103 || code == 80877104) {
            if (write(fd, "N", 1) != 1)
                goto out;
            continue;
        }
        break;
    }
    if (write(fd, ok, sizeof(ok)) != (ssize_t)sizeof(ok))
        goto out;
    while (read(fd, b, sizeof(b)) > 0)
        f->queried = 1; /* and never answered */
out:
    f->eof = 1;
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* wait for a flag (a hang, not a slow machine, fails after 120 s) */
static int wait_flag(volatile int *flag)
{
    for (int i = 0; i < 12000 && !*flag; i++)
        usleep(10000);
    return *flag;
}

/* A slot query that the server never answers blocks only the gauge's own
 * thread: /metrics, /livez answer meanwhile, and a stop ends the query. */
CDC_TEST(pg_slot_gauge_never_blocks_the_endpoint)
{
    cdc_conf_t *c = mkconf();
    cdc_err_t err = {0};
    cdc_http_t *h = NULL;
    cdc_pg_slot_gauge_t *g = NULL;
    fakepg_t f = {0};
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    pthread_t thr;
    char dsn[256], body[65536];
    int port;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f.lfd = socket(AF_INET, SOCK_STREAM, 0);
    T_ASSERT(!bind(f.lfd, (struct sockaddr *)&sa, sizeof(sa)) &&
             !listen(f.lfd, 4) &&
             !getsockname(f.lfd, (struct sockaddr *)&sa, &sl));
    pthread_create(&thr, NULL, fakepg_main, &f);
    snprintf(dsn, sizeof(dsn), "host=127.0.0.1 port=%d dbname=x user=u "
             "sslmode=disable gssencmode=disable", ntohs(sa.sin_port));
    cdc_conf_set(c, "postgres.dsn", dsn, NULL);
    cdc_conf_set(c, "http.listen", "127.0.0.1:0", NULL);
    T_EQ_INT(cdc_metrics_init(c, &err), 0);
    T_EQ_INT(cdc_http_start(c, &h, &err), 0);
    port = cdc_http_port(h);
    T_EQ_INT(cdc_pg_slot_gauge_start(c, &g, &err), 0);
    T_ASSERT(g != NULL);
    /* the first scrape wakes the gauge, which connects and asks */
    T_EQ_INT(get(port, "/metrics", NULL, body, sizeof(body)), 200);
    T_ASSERT(wait_flag(&f.queried));
    /* its query hangs: the endpoint answers all the same */
    T_EQ_INT(get(port, "/livez", NULL, body, sizeof(body)), 200);
    T_EQ_INT(get(port, "/metrics", NULL, body, sizeof(body)), 200);
    T_ASSERT(!strstr(body, "pg_slot_retained_wal_bytes")); /* unknown */
    T_ASSERT(!f.eof); /* the query was still waiting */
    cdc_pg_slot_gauge_stop(g); /* ends it */
    T_ASSERT(wait_flag(&f.eof));
    pthread_join(thr, NULL);
    close(f.lfd);
    cdc_http_stop(h);
    cdc_conf_destroy(c);
}

CDC_TEST_MAIN()
