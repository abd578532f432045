/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_http_slow.c - the HTTP endpoint under a slow-client attack: 200
 * clients (half from 127.0.0.1, half spread over 127.0.0.2-51) each send a
 * request line and then one header line every 2 s, and reconnect whenever
 * they are closed.  For 12 s, /livez and /readyz are probed from
 * 127.0.0.1 every 250 ms: every probe must be answered within 1 s.  The
 * server's log lines about the attack must stay few (throttled).
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

#define NSLOW 200
#define ATTACK_S 12

static int port;
static volatile int attack_on;
static unsigned connects, reconnects;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* a non-blocking connection from 127.0.0.<host> */
static int slow_connect(int host)
{
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family =
                                                                 AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

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
    connects++;
    return fd;
}

static void *attacker(void *arg)
{
    int fd[NSLOW], host[NSLOW];
    int64_t next[NSLOW], t;
    int sent_line[NSLOW];
    (void)arg;

    for (int i = 0; i < NSLOW; i++) {
        host[i] = i % 2 ? 2 + i % 50 : 1;
        fd[i] = slow_connect(host[i]);
        next[i] = now_ms();
        sent_line[i] = 0;
    }
    while (attack_on) {
        t = now_ms();
        for (int i = 0; i < NSLOW; i++) {
            char junk[256];
            ssize_t r;
            if (fd[i] < 0 || t < next[i])
                continue;
            /* closed by the server? reconnect and start over */
            r = recv(fd[i], junk, sizeof(junk), MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                           errno != ENOTCONN)) {
                close(fd[i]);
                fd[i] = slow_connect(host[i]);
                reconnects++;
                sent_line[i] = 0;
                next[i] = t + 50;
                continue;
            }
            if (!sent_line[i]) {
                const char *l = "GET /livez HTTP/1.1\r\n";
                if (send(fd[i], l, strlen(l), MSG_NOSIGNAL) > 0)
                    sent_line[i] = 1;
            } else
                (void)!send(fd[i], "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
            next[i] = t + 2000;
        }
        usleep(20000);
    }
    for (int i = 0; i < NSLOW; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    return NULL;
}

/* One probe; returns the HTTP status or -1, time taken in *ms. */
static int probe(const char *path, int64_t *ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct timeval tv = {.tv_sec = 2};
    char req[128], resp[1024];
    size_t got = 0;
    ssize_t r;
    int64_t t0 = now_ms();
    int fd = socket(AF_INET, SOCK_STREAM, 0), st = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n"
             "Connection: close\r\n\r\n", path);
    if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
        write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
        while (got < sizeof(resp) - 1 &&
               (r = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
            got += (size_t)r;
        resp[got] = '\0';
        if (got > 12 && !strncmp(resp, "HTTP/1.", 7))
            st = atoi(resp + 9);
    }
    close(fd);
    *ms = now_ms() - t0;
    return st;
}

CDC_TEST(probes_answer_under_slow_clients)
{
    cdc_conf_t *c = cdc_conf_new();
    cdc_err_t err = {0};
    cdc_http_t *h = NULL;
    pthread_t thr;
    int64_t end, worst = 0, ms;
    int nprobes = 0, nbad = 0, saved;
    FILE *log = tmpfile();
    char line[2048];
    int nlines = 0;

    cdc_conf_set(c, "pipeline.name", "p", NULL);
    cdc_conf_set(c, "source.type", "mysql", NULL);
    cdc_conf_set(c, "sink.type", "stdout", NULL);
    cdc_conf_set(c, "http.listen", "127.0.0.1:0", NULL);
    T_EQ_INT(cdc_metrics_init(c, &err), 0);
    cdc_metrics_source_state(1, NULL);
    T_EQ_INT(cdc_http_start(c, &h, &err), 0);
    T_ASSERT(h != NULL);
    port = cdc_http_port(h);

    /* the server's log goes to a file for the attack */
    fflush(stderr);
    saved = dup(2);
    dup2(fileno(log), 2);

    attack_on = 1;
    pthread_create(&thr, NULL, attacker, NULL);
    sleep(1); /* let every slow client connect */
    end = now_ms() + ATTACK_S * 1000;
    while (now_ms() < end) {
        const char *path = nprobes % 2 ? "/readyz" : "/livez";
        int st = probe(path, &ms);
        nprobes++;
        if (ms > worst)
            worst = ms;
        if (st != 200 || ms > 1000) {
            nbad++;
            printf("# %s: status %d after %lld ms\n", path, st,
                   (long long)ms);
        }
        usleep(250000);
    }
    attack_on = 0;
    pthread_join(thr, NULL);

    /* no pressure: one client that dribbles its headers is closed after the
     * header timeout (3 s), though it sends a line every second (the old
     * 10 s idle timeout never fired) */
    {
        int fd = slow_connect(1);
        int64_t t0 = now_ms(), closed_ms = -1;
        char b[64];
        (void)!send(fd, "GET /livez HTTP/1.1\r\n", 21, MSG_NOSIGNAL);
        int64_t next_line = t0 + 1000;
        while (now_ms() - t0 < 8000) {
            ssize_t r;
            usleep(50000);
            if (now_ms() >= next_line) {
                (void)!send(fd, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
                next_line += 1000;
            }
            r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN)) {
                closed_ms = now_ms() - t0;
                break;
            }
        }
        close(fd);
        printf("# a lone slow client was closed after %lld ms\n",
               (long long)closed_ms);
        T_ASSERT(closed_ms >= 2500 && closed_ms <= 5000);
    }
    cdc_http_stop(h);

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(log);
    while (fgets(line, sizeof(line), log))
        if (strstr(line, "http")) {
            nlines++;
        }
    fclose(log);
    printf("# %d probes, worst %lld ms, %u attacker connects "
           "(%u after being closed), %d log lines\n",
           nprobes, (long long)worst, connects, reconnects, nlines);
    T_ASSERT(nprobes >= ATTACK_S * 2);
    T_EQ_INT(nbad, 0);
    /* the attackers were really there and were pushed out */
    T_ASSERT(connects >= NSLOW);
    T_ASSERT(reconnects > 0);
    /* throttled: one summary per 10 s window (plus a few server lines) */
    T_ASSERT(nlines <= 2 * (ATTACK_S / 10 + 2) + 3);
    cdc_conf_destroy(c);
}

CDC_TEST_MAIN()
