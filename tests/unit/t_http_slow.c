/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_http_slow.c - the HTTP endpoint under a slow-client attack.  Every
 * check waits on state the server publishes (cdc_http_stats: connections
 * open, stuck in their headers, evicted, refused, timed out) or on what a
 * client sees (an answer, an EOF), never on how long something took, so
 * the test holds on a loaded machine.  A safety bound (SAFETY_S) only
 * turns a hang into a failure.
 *
 *  1. Starvation: the header timeout is an hour, so no slot frees itself.
 *     As many slow clients as the table holds (its limits come from
 *     cdc_http_stats: 64, of them the per-address limit of 8 from
 *     127.0.0.1, the rest two each from 127.0.0.2 on) send a request line
 *     and hold every slot (the server shows them all open and stuck).  Then probes, alternately /livez from 127.0.0.1
 *     (the per-address limit is full) and /readyz from 127.0.0.200 (the
 *     table is full), must each be answered 200, by exactly one eviction
 *     of the oldest slow client of the pool concerned, nothing refused;
 *     the evicted client sees EOF, reconnects, and the table is full again
 *     before the next probe.
 *  2. Churn: 200 slow clients reconnect whenever closed while probes from
 *     127.0.0.200 are each answered 200, until the server has evicted 2000
 *     connections and logged its first summary; the server's log lines
 *     stay within one summary and three server messages per 10 s window
 *     of the time that took.
 *  3. Header timeout (1 s): a lone client that dribbles a header line
 *     every 100 ms is closed all the same, not before the timeout, and
 *     the server counts it as timed out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cdc/metrics.h"
#include "tests/unit/cdc_test.h"

#define MAX_HELD 256 /* at least the table's limit (cdc_http_stats) */
#define NPROBES 20
#define NCHURN 200
#define CHURN_EVICTIONS 2000
#define SAFETY_S 120
#define PROBE_HOST 200

static int port;
static int max_conn, max_per_addr; /* the server's limits */
static cdc_http_t *srv;
static cdc_conf_t *srv_conf;
static volatile int attack_on;
static unsigned long churn_probes;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* a connection from 127.0.0.<host>; nonblock: do not wait for the
 * handshake */
static int connect_from(int host, int nonblock)
{
    struct sockaddr_in src = {.sin_family = AF_INET};
    struct sockaddr_in dst = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);

    src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + (uint32_t)host - 1);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    dst.sin_port = htons((uint16_t)port);
    if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
        (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) &&
         errno != EINPROGRESS)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void st_now(cdc_http_stats_t *st)
{
    cdc_http_stats(srv, st);
}

/* 1 when the safety bound since t0 has passed (a hang) */
static int hung(int64_t t0)
{
    return now_ms() - t0 > SAFETY_S * 1000;
}

/* One probe from 127.0.0.<host>; returns the HTTP status or -1. */
static int probe(int host, const char *path)
{
    struct timeval tv = {.tv_sec = SAFETY_S};
    char req[128], resp[1024];
    size_t got = 0;
    ssize_t r;
    int fd = connect_from(host, 0), st = -1;

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n"
             "Connection: close\r\n\r\n", path);
    if (write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
        while (got < sizeof(resp) - 1 &&
               (r = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
            got += (size_t)r;
        resp[got] = '\0';
        if (got > 12 && !strncmp(resp, "HTTP/1.", 7))
            st = atoi(resp + 9);
    }
    close(fd);
    return st;
}

/* ---- 1. starvation: a table full of slow clients ---------------------- */

typedef struct holder {
    int fd, host;
} holder_t;

static int hold(holder_t *k)
{
    static const char line[] = "GET /livez HTTP/1.1\r\n";

    k->fd = connect_from(k->host, 0);
    return k->fd >= 0 &&
           send(k->fd, line, sizeof(line) - 1, MSG_NOSIGNAL) ==
               (ssize_t)sizeof(line) - 1;
}

/* closed by the server (EOF or reset)? */
static int closed(int fd)
{
    char b[256];
    ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* Wait until the server shows every slot held by a slow client. */
static int wait_full(void)
{
    cdc_http_stats_t st;
    int64_t t0 = now_ms();

    for (;;) {
        st_now(&st);
        if (st.open == (unsigned)max_conn && st.stuck == (unsigned)max_conn)
            return 1;
        if (hung(t0)) {
            printf("# table not full: %u open, %u stuck\n", st.open,
                   st.stuck);
            return 0;
        }
        usleep(10000);
    }
}

/* Wait for the one holder that the server closed; -1 if none (hang) */
static int wait_evicted(holder_t *k, int n)
{
    struct pollfd pf[MAX_HELD];

    for (int i = 0; i < n; i++)
        pf[i] = (struct pollfd){.fd = k[i].fd, .events = POLLIN};
    if (poll(pf, (nfds_t)n, SAFETY_S * 1000) <= 0)
        return -1;
    for (int i = 0; i < n; i++)
        if (pf[i].revents && closed(k[i].fd))
            return i;
    return -1;
}

static void starvation(void)
{
    holder_t k[MAX_HELD];
    cdc_http_stats_t st0, st1;

    st_now(&st0);
    max_conn = (int)st0.max_conn;
    max_per_addr = (int)st0.max_per_addr;
    T_ASSERT(max_conn <= MAX_HELD && max_per_addr >= 1 &&
             max_per_addr < max_conn);
    if (cdc_test_failed_)
        return;

    /* k[0..7] from 127.0.0.1, then two each from 127.0.0.2.. */
    for (int i = 0; i < max_conn; i++) {
        k[i].host = i < max_per_addr ? 1 : 2 + (i - max_per_addr) / 2;
        T_ASSERT(hold(&k[i]));
    }
    for (int p = 0; p < NPROBES; p++) {
        int local = p % 2 == 0, st, v;
        T_ASSERT(wait_full());
        /* the slow clients stay active (libmicrohttpd's idle timeout) */
        for (int i = 0; i < max_conn; i++)
            (void)!send(k[i].fd, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
        st_now(&st0);
        st = probe(local ? 1 : PROBE_HOST, local ? "/livez" : "/readyz");
        st_now(&st1);
        if (st != 200)
            printf("# probe %d from 127.0.0.%d: status %d\n", p,
                   local ? 1 : PROBE_HOST, st);
        T_EQ_INT(st, 200);
        /* it got its slot by evicting one slow client */
        v = wait_evicted(k, max_conn);
        T_ASSERT(v >= 0);
        if (v < 0)
            break;
        if (local)
            T_EQ_INT(k[v].host, 1); /* from its own address's pool */
        T_EQ_INT((int)(st1.evicted - st0.evicted), 1);
        T_EQ_INT((int)(st1.refused - st0.refused), 0);
        T_EQ_INT((int)st1.timed_out, 0);
        close(k[v].fd);
        T_ASSERT(hold(&k[v]));
        if (cdc_test_failed_)
            break;
    }
    for (int i = 0; i < max_conn; i++)
        close(k[i].fd);
}

/* ---- 2. churn ------------------------------------------------------- */

static void *attacker(void *arg)
{
    int fd[NCHURN], host[NCHURN], sent_line[NCHURN];
    (void)arg;

    for (int i = 0; i < NCHURN; i++) {
        host[i] = i % 2 ? 2 + i % 50 : 1;
        fd[i] = connect_from(host[i], 1);
        sent_line[i] = 0;
    }
    while (attack_on) {
        for (int i = 0; i < NCHURN; i++) {
            if (fd[i] >= 0 && !closed(fd[i])) {
                if (!sent_line[i]) {
                    const char *l = "GET /livez HTTP/1.1\r\n";
                    if (send(fd[i], l, strlen(l), MSG_NOSIGNAL) > 0)
                        sent_line[i] = 1;
                } else
                    (void)!send(fd[i], "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
                continue;
            }
            /* closed by the server: reconnect and start over */
            if (fd[i] >= 0)
                close(fd[i]);
            fd[i] = connect_from(host[i], 1);
            sent_line[i] = 0;
        }
        usleep(20000);
    }
    for (int i = 0; i < NCHURN; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    return NULL;
}

/* server lines in the log, and whether one is a summary */
static int count_lines(FILE *log, int *summaries)
{
    char line[2048];
    int n = 0;

    fflush(log);
    rewind(log);
    *summaries = 0;
    while (fgets(line, sizeof(line), log))
        if (strstr(line, "http")) {
            n++;
            *summaries += strstr(line, "closed to make room") != NULL;
        }
    fseek(log, 0, SEEK_END);
    return n;
}

static void churn(void)
{
    cdc_http_stats_t st0, st;
    pthread_t thr;
    FILE *log = tmpfile();
    int saved, nlines, nsum = 0, nbad = 0;
    unsigned long retries = 0;
    int64_t t0 = now_ms(), elapsed_s;

    T_ASSERT(log != NULL);
    st_now(&st0);
    fflush(stderr);
    saved = dup(2);
    dup2(fileno(log), 2);
    attack_on = 1;
    pthread_create(&thr, NULL, attacker, NULL);
    for (;;) {
        const char *path = churn_probes % 2 ? "/readyz" : "/livez";
        int s = probe(PROBE_HOST, path);
        churn_probes++;
        /* a probe whose request the loaded server has not read yet can be
         * the oldest connection stuck in its headers when 200 clients
         * reconnect at once, and be evicted like them (no answer: -1); a
         * health checker retries, and so does this one, once.  Retries
         * must stay rare, and a probe must never fail twice. */
        if (s == -1) {
            retries++;
            s = probe(PROBE_HOST, path);
        }
        if (s != 200 && nbad++ < 5)
            printf("# churn probe %lu: status %d\n", churn_probes, s);
        st_now(&st);
        fflush(stderr);
        count_lines(log, &nsum);
        if ((st.evicted - st0.evicted >= CHURN_EVICTIONS && nsum) ||
            hung(t0))
            break;
        usleep(20000); /* pacing only: no check depends on it */
    }
    attack_on = 0;
    pthread_join(thr, NULL);
    fflush(stderr);
    elapsed_s = (now_ms() - t0) / 1000;
    dup2(saved, 2);
    close(saved);
    nlines = count_lines(log, &nsum);
    fclose(log);
    printf("# churn: %lu probes (%lu retried), %llu evictions, %llu "
           "refusals in %lld s, %d log lines\n",
           churn_probes, retries,
           (unsigned long long)(st.evicted - st0.evicted),
           (unsigned long long)(st.refused - st0.refused),
           (long long)elapsed_s, nlines);
    T_EQ_INT(nbad, 0);
    T_ASSERT(retries * 50 <= churn_probes); /* at most 2% retried */
    T_ASSERT(st.evicted - st0.evicted >= CHURN_EVICTIONS);
    T_ASSERT(nsum >= 1);
    /* throttled: at most one summary and three server messages per 10 s
     * window of the elapsed time (plus the window open at each end) */
    T_ASSERT(nlines <= 4 * (int)(elapsed_s / 10 + 2));
}

/* ---- 3. header timeout ------------------------------------------------ */

static void header_timeout(void)
{
    cdc_http_stats_t st0, st;
    int fd, is_closed = 0;
    int64_t t0;

    st_now(&st0);
    t0 = now_ms();
    fd = connect_from(1, 0);
    T_ASSERT(fd >= 0);
    (void)!send(fd, "GET /livez HTTP/1.1\r\n", 21, MSG_NOSIGNAL);
    while (!hung(t0)) {
        usleep(100000);
        if ((is_closed = closed(fd)))
            break;
        (void)!send(fd, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
    }
    close(fd);
    printf("# a lone slow client was closed after %lld ms\n",
           (long long)(now_ms() - t0));
    /* the HTTP thread counts the timeout after it closed the connection:
     * wait for the counter (it may lag the close on a busy machine) */
    for (int64_t t1 = now_ms(); now_ms() - t1 < 2000; usleep(10000)) {
        st_now(&st);
        if (st.timed_out != st0.timed_out)
            break;
    }
    st_now(&st);
    T_ASSERT(is_closed);
    T_ASSERT(now_ms() - t0 >= 1000); /* not before the timeout */
    T_EQ_INT((int)(st.timed_out - st0.timed_out), 1);
    T_EQ_INT((int)(st.evicted - st0.evicted), 0);
}

static cdc_http_t *start(const char *state, const char *timeout_ms)
{
    cdc_conf_t *c = cdc_conf_new();
    cdc_err_t err = {0};
    cdc_http_t *h = NULL;

    cdc_conf_set(c, "pipeline.name", "p", NULL);
    cdc_conf_set(c, "source.type", "mysql", NULL);
    cdc_conf_set(c, "sink.type", "stdout", NULL);
    cdc_conf_set(c, "state.dir", state, NULL);
    cdc_conf_set(c, "http.listen", "127.0.0.1:0", NULL);
    cdc_conf_set(c, "http.header_timeout_ms", timeout_ms, NULL);
    if (cdc_metrics_init(c, &err) || cdc_http_start(c, &h, &err))
        printf("# cannot start: %s\n", err.msg);
    srv_conf = c;
    srv = h;
    port = cdc_http_port(h);
    return h;
}

CDC_TEST(slow_clients_cannot_starve_probes)
{
    char state[] = "/tmp/t_http_slow.XXXXXX";

    T_ASSERT(mkdtemp(state) != NULL);
    T_ASSERT(start(state, "3600000") != NULL);
    cdc_metrics_source_state(1, NULL);
    starvation();
    churn();
    cdc_http_stop(srv);
    cdc_conf_destroy(srv_conf);
    rmdir(state);
}

CDC_TEST(headers_must_arrive_in_time)
{
    char state[] = "/tmp/t_http_slow.XXXXXX";

    T_ASSERT(mkdtemp(state) != NULL);
    T_ASSERT(start(state, "1000") != NULL);
    header_timeout();
    cdc_http_stop(srv);
    cdc_conf_destroy(srv_conf);
    rmdir(state);
}

CDC_TEST_MAIN()
