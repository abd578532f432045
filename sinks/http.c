/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c - the HTTP webhook sink: changes POSTed to a URL through libcurl
 * (one easy handle, so the connection is kept alive and reused; HTTP/1.1,
 * or HTTP/2 where TLS offers it; TLS verification by libcurl).
 *
 * Requests
 *   URL       webhook.url template ({source}, {db}, {table}, {op} replaced,
 *             URL-escaped).  Consecutive changes with the same URL share a
 *             request.
 *   body      webhook.batch=1 (default): one envelope.  webhook.batch=N: up to
 *             N envelopes as a JSON array (webhook.batch_format=array) or
 *             one per line (ndjson); a batch waits at most webhook.linger_ms.
 *             format=xml is one document per request (webhook.batch=1).
 *   headers   Content-Type; Idempotency-Key: the change id (sinks/msg.h),
 *             for a batch "<first id>..<last id>", the same on every retry
 *             and on a replay after a restart, so a receiver can drop
 *             repeats; with webhook.hmac_secret, webhook.signature_header
 *             (default X-Autoglm-Signature-256): "sha256=" + hex
 *             HMAC-SHA256 of the body; with webhook.bearer_token,
 *             Authorization: Bearer; with webhook.jwt.secret (HS256) or
 *             webhook.jwt.key_file (RS256/ES256), Authorization: Bearer
 *             <JWT> signed by libjwt with iss, iat, exp (exp - iat =
 *             webhook.jwt.lifetime_s), aud and webhook.jwt.claims; a
 *             token is re-signed once half its lifetime has passed, so
 *             every request (retries too) carries a token valid for at
 *             least half the lifetime.
 *   version   webhook.version=2: https asks for h2 by ALPN (and logs it
 *             when the receiver offers only HTTP/1.1); http:// speaks h2c
 *             with prior knowledge (the receiver must speak HTTP/2).
 *
 * Answers
 *   2xx                  delivered: the changes' txns are acknowledged.
 *   408, 429, 5xx, no    retried with capped, jittered exponential backoff
 *   answer / timeout     (webhook.retry_backoff_ms .. webhook.retry_max_backoff_ms);
 *                        a Retry-After (seconds or date) is honoured as the
 *                        delay, capped at webhook.retry_max_backoff_ms x 10.
 *                        After webhook.retry_timeout_ms of failures the run
 *                        stops with exit 69.
 *   401, 403             the receiver refuses our credentials (bearer token,
 *                        JWT, signature): the run stops with exit 78
 *                        (configuration), never dead-letters, since no
 *                        change is at fault.
 *   other 4xx            the receiver refuses the data: with
 *                        errors.mode=dead-letter every change of the
 *                        request is appended to errors.dead_letter_file
 *                        (JSON lines: error, url, status and the lossless
 *                        change of sinks/dead_letter.h) and counts as
 *                        handled; otherwise the run stops with exit 65.
 *   3xx                  not followed (a webhook URL should not move):
 *                        exit 65 naming the Location.
 *
 * Delivery is synchronous: write() (or poll() after the linger) sends and
 * retries in place, so the reader waits while the receiver is slow or
 * down; nothing is buffered beyond one batch.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "cdc/conf.h"
#include "cdc/log.h"
#include "cdc/metrics.h"
#include "cdc/pipeline.h"
#include "cdc/plugin.h"
#include "cdc/util.h"
#include "sinks/dead_letter.h"
#include "sinks/msg.h"

#define FAC "http"

extern const cdc_sink_ops_t cdc_sink_http_ops;

typedef struct http_item {
    cdc_txn_t *tx;
    uint32_t idx;
} http_item_t;

typedef struct http_sink {
    cdc_sink_t base;
    CURL *c;
    cdc_msg_fmt_t fmt;
    char *url_tmpl, *sig_header, *hmac, *bearer, *dl_path;
    /* JWT bearer (webhook.jwt.*): key, claims, the current token */
    jwt_alg_t jwt_alg;
    cdc_buf_t jwt_key;
    char *jwt_iss, *jwt_aud, *jwt_claims, *jwt_tok;
    int64_t jwt_life_s, jwt_iat;
    int h2_checked;
    int ndjson, dead_letter, version;
    int64_t batch, linger_ms, timeout_ms, connect_timeout_ms;
    int64_t backoff_ms, max_backoff_ms, retry_timeout_ms;
    /* the batch being built */
    http_item_t *items;
    size_t nitems;
    int body_closed; /* the batch's body is complete (build_body) */
    int64_t first_us;
    cdc_buf_t url, next, body, tmp, ph, resp, hdr, idem;
    FILE *dl;
    uint64_t requests, retries;
} http_sink_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    cdc_buf_t *b = ud;
    if (b->len < 4096) /* keep the start of an error answer */
        cdc_buf_put(b, p, sz * n > 4096 ? 4096 : sz * n);
    return sz * n;
}

static void url_expand(http_sink_t *s, const cdc_change_t *ch, cdc_buf_t *out)
{
    const char *p = s->url_tmpl;

    cdc_buf_reset(out);
    while (*p) {
        const char *e;
        char *esc;
        if (*p != '{' || !(e = strchr(p, '}'))) {
            cdc_buf_putc(out, *p++);
            continue;
        }
        /* one placeholder through the shared expander, then escaped */
        cdc_buf_reset(&s->ph);
        cdc_buf_put(&s->ph, p, (size_t)(e - p + 1));
        cdc_buf_reset(&s->tmp);
        cdc_msg_tmpl_expand(&s->tmp, s->ph.p, s->fmt.app, ch, "");
        esc = curl_easy_escape(s->c, s->tmp.p, (int)s->tmp.len);
        cdc_buf_puts(out, esc);
        curl_free(esc);
        p = e + 1;
    }
}

static void hmac_hex(const char *key, const cdc_buf_t *body, cdc_buf_t *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)body->p,
         body->len, md, &n);
    cdc_buf_puts(out, "sha256=");
    for (unsigned i = 0; i < n; i++)
        cdc_buf_printf(out, "%02x", md[i]);
}

/* The body is rendered as the changes are written (add_item), while the
 * Debezium transaction blocks of their transaction are numbered
 * (cdc_msg_txn_begin/end); sending closes it. */
static void add_item(http_sink_t *s, cdc_txn_t *tx, uint32_t i)
{
    if (!s->nitems) {
        cdc_buf_reset(&s->body);
        s->body_closed = 0;
        if (s->batch > 1 && !s->ndjson)
            cdc_buf_putc(&s->body, '[');
    } else if (!s->ndjson)
        cdc_buf_putc(&s->body, ',');
    cdc_msg_body(&s->fmt, &s->body, tx, &tx->changes[i]);
    if (s->ndjson)
        cdc_buf_putc(&s->body, '\n');
    s->items[s->nitems++] = (http_item_t){tx, i};
}

static void build_body(http_sink_t *s)
{
    if (s->batch > 1 && !s->ndjson && !s->body_closed)
        cdc_buf_putc(&s->body, ']');
    s->body_closed = 1;
}

/* Sign a fresh token (iat = now); -1 with err (exit 78). */
static int jwt_sign(http_sink_t *s, int64_t now, cdc_err_t *err)
{
    jwt_t *j = NULL;
    char *tok;
    int rc, ret = -1;

    if (jwt_new(&j))
        return cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                           "cannot create a JWT (out of memory)");
    rc = jwt_set_alg(j, s->jwt_alg, (const unsigned char *)s->jwt_key.p,
                     (int)s->jwt_key.len);
    if (rc) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "cannot use the JWT key with %s", jwt_alg_str(s->jwt_alg));
        goto out;
    }
    if (s->jwt_claims && jwt_add_grants_json(j, s->jwt_claims)) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "webhook.jwt.claims is not a JSON object: %s",
                    s->jwt_claims);
        cdc_err_hint(err, "give the extra claims as one JSON object, e.g. "
                          "{\"sub\":\"cdc\",\"scope\":\"ingest\"}");
        goto out;
    }
    rc = jwt_add_grant(j, "iss", s->jwt_iss) ||
         jwt_add_grant_int(j, "iat", (long)now) ||
         jwt_add_grant_int(j, "exp", (long)(now + s->jwt_life_s)) ||
         (s->jwt_aud && jwt_add_grant(j, "aud", s->jwt_aud));
    if (rc) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "webhook.jwt.claims sets iss, iat, exp or aud");
        cdc_err_hint(err, "set the issuer with webhook.jwt.issuer, the "
                          "audience with webhook.jwt.audience and the "
                          "lifetime with webhook.jwt.lifetime_s");
        goto out;
    }
    tok = jwt_encode_str(j);
    if (!tok) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "cannot sign a JWT with %s%s", jwt_alg_str(s->jwt_alg),
                    s->jwt_alg == JWT_ALG_HS256
                        ? ""
                        : ": webhook.jwt.key_file does not hold a matching "
                          "private key");
        cdc_err_hint(err, "RS256 needs an RSA private key, ES256 an EC "
                          "P-256 private key, both in PEM");
        goto out;
    }
    free(s->jwt_tok);
    s->jwt_tok = tok;
    s->jwt_iat = now;
    ret = 0;
out:
    jwt_free(j);
    return ret;
}

/* The current token, re-signed once half its lifetime has passed (or the
 * clock went back). */
static const char *jwt_current(http_sink_t *s, cdc_err_t *err)
{
    int64_t now = (int64_t)time(NULL);

    if (!s->jwt_tok || now < s->jwt_iat ||
        now - s->jwt_iat >= s->jwt_life_s / 2) {
        if (jwt_sign(s, now, err))
            return NULL;
    }
    return s->jwt_tok;
}

static struct curl_slist *build_headers(http_sink_t *s, cdc_err_t *err)
{
    struct curl_slist *h = NULL;
    const http_item_t *a = &s->items[0], *z = &s->items[s->nitems - 1];

    cdc_buf_reset(&s->hdr);
    cdc_buf_printf(&s->hdr, "Content-Type: %s",
                   s->fmt.xml      ? "application/xml"
                   : s->ndjson     ? "application/x-ndjson"
                                   : "application/json");
    h = curl_slist_append(h, s->hdr.p);
    cdc_buf_reset(&s->idem);
    cdc_msg_change_id(&s->idem, a->tx, &a->tx->changes[a->idx]);
    if (s->nitems > 1) {
        cdc_buf_puts(&s->idem, "..");
        cdc_msg_change_id(&s->idem, z->tx, &z->tx->changes[z->idx]);
    }
    cdc_buf_reset(&s->hdr);
    cdc_buf_printf(&s->hdr, "Idempotency-Key: %s", s->idem.p);
    h = curl_slist_append(h, s->hdr.p);
    if (s->hmac) {
        cdc_buf_reset(&s->hdr);
        cdc_buf_printf(&s->hdr, "%s: ", s->sig_header);
        hmac_hex(s->hmac, &s->body, &s->hdr);
        h = curl_slist_append(h, s->hdr.p);
    }
    if (s->bearer || s->jwt_key.len) {
        const char *tok = s->bearer ? s->bearer : jwt_current(s, err);
        if (!tok) {
            curl_slist_free_all(h);
            return NULL;
        }
        cdc_buf_reset(&s->hdr);
        cdc_buf_printf(&s->hdr, "Authorization: Bearer %s", tok);
        h = curl_slist_append(h, s->hdr.p);
    }
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    return h;
}

static void items_done(http_sink_t *s)
{
    for (size_t i = 0; i < s->nitems; i++)
        s->items[i].tx->pending--;
    s->nitems = 0;
}

static int to_dead_letter(http_sink_t *s, long status, cdc_err_t *err)
{
    cdc_buf_t line = CDC_BUF_INIT;
    cdc_err_t why;

    cdc_err_set(&why, CDC_EXIT_DATA, CDC_ERR_F_DATA, "HTTP %ld from %s: %s",
                status, s->url.p, s->resp.p ? s->resp.p : "");
    for (size_t i = 0; i < s->nitems; i++) {
        const cdc_txn_t *tx = s->items[i].tx;
        cdc_buf_reset(&line);
        cdc_buf_puts(&line, "{\"error\":");
        cdc_json_string(&line, why.msg, strlen(why.msg));
        cdc_buf_printf(&line, ",\"status\":%ld,\"url\":", status);
        cdc_json_string(&line, s->url.p, s->url.len);
        cdc_buf_puts(&line, ",\"change\":");
        cdc_dl_encode(&line, tx, &tx->changes[s->items[i].idx],
                      s->items[i].idx);
        while (line.len && line.p[line.len - 1] == '\n')
            line.p[--line.len] = '\0';
        cdc_buf_puts(&line, "}\n");
        if (fwrite(line.p, 1, line.len, s->dl) != line.len) {
            cdc_buf_free(&line);
            return cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                               "cannot write %s", s->dl_path);
        }
    }
    cdc_buf_free(&line);
    if (fflush(s->dl) || fsync(fileno(s->dl)))
        return cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                           "cannot write %s", s->dl_path);
    CDC_WARN(FAC, "HTTP %ld from %s: %zu change(s) written to the "
                  "dead-letter file %s", status, s->url.p, s->nitems,
             s->dl_path);
    cdc_metrics_dead_letters(s->nitems);
    items_done(s);
    return 0;
}

/* Send the batch until it is delivered, dead-lettered or fails. */
static int send_batch(http_sink_t *s, cdc_err_t *err)
{
    struct curl_slist *h = NULL;
    int64_t start = cdc_now_us();
    int attempt = 0;
    char ebuf[CURL_ERROR_SIZE];

    if (!s->nitems)
        return 0;
    build_body(s);
    curl_easy_setopt(s->c, CURLOPT_URL, s->url.p);
    curl_easy_setopt(s->c, CURLOPT_POSTFIELDS, s->body.p);
    curl_easy_setopt(s->c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body.len);
    curl_easy_setopt(s->c, CURLOPT_ERRORBUFFER, ebuf);
    for (;;) {
        long status = 0;
        curl_off_t ra = 0;
        int64_t wait_ms;
        CURLcode rc;

        /* headers per attempt: a retry much later needs a fresh JWT */
        curl_slist_free_all(h);
        h = build_headers(s, err);
        if (!h)
            return -1;
        curl_easy_setopt(s->c, CURLOPT_HTTPHEADER, h);
        cdc_buf_reset(&s->resp);
        ebuf[0] = '\0';
        s->requests++;
        rc = curl_easy_perform(s->c);
        if (rc == CURLE_OK)
            curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &status);
        if (rc == CURLE_OK && status >= 200 && status < 300) {
            if (s->version && !s->h2_checked) {
                long hv = 0;
                s->h2_checked = 1;
                curl_easy_getinfo(s->c, CURLINFO_HTTP_VERSION, &hv);
                if (hv == CURL_HTTP_VERSION_2_0)
                    CDC_INFO(FAC, "%s speaks HTTP/2", s->url.p);
                else
                    CDC_WARN(FAC, "%s did not offer HTTP/2 (ALPN): using "
                                  "HTTP/1.1", s->url.p);
            }
            if (attempt)
                CDC_INFO(FAC, "%s accepted the request after %d retr%s",
                         s->url.p, attempt, attempt == 1 ? "y" : "ies");
            items_done(s);
            curl_slist_free_all(h);
            return 0;
        }
        if (rc == CURLE_OK && (status == 401 || status == 403)) {
            curl_slist_free_all(h);
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "the webhook %s refused our credentials: HTTP %ld",
                        s->url.p, status);
            cdc_err_detail(err, "%s", s->resp.p ? s->resp.p : "(no body)");
            cdc_err_hint(err, "check webhook.jwt.* (secret or key, issuer, "
                              "audience), webhook.bearer_token or "
                              "webhook.hmac_secret against what the "
                              "receiver expects; nothing was dead-lettered "
                              "and the checkpoint stays before this request");
            return -1;
        }
        if (rc == CURLE_OK && status != 408 && status != 429 &&
            status < 500) {
            curl_slist_free_all(h);
            if (status >= 400 && s->dead_letter)
                return to_dead_letter(s, status, err);
            cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_FATAL | CDC_ERR_F_DATA,
                        "the webhook %s answered HTTP %ld to the request "
                        "with Idempotency-Key %s", s->url.p, status,
                        s->idem.p);
            cdc_err_detail(err, "%s", s->resp.p ? s->resp.p : "(no body)");
            cdc_err_hint(err, status >= 400
                                  ? "fix the receiver or the data; "
                                    "errors.mode=dead-letter keeps such "
                                    "changes in errors.dead_letter_file "
                                    "and goes on"
                                  : "point webhook.url at the final URL (3xx "
                                    "answers are not followed)");
            return -1;
        }
        if (rc == CURLE_PEER_FAILED_VERIFICATION ||
            rc == CURLE_SSL_CACERT_BADFILE) {
            curl_slist_free_all(h);
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "the webhook %s: TLS certificate not accepted: %s",
                        s->url.p, ebuf[0] ? ebuf : curl_easy_strerror(rc));
            cdc_err_hint(err, "webhook.tls.ca must hold the CA that signed "
                              "the receiver's certificate");
            return -1;
        }
        /* retriable: 408, 429, 5xx, transport errors */
        if (rc == CURLE_OK)
            curl_easy_getinfo(s->c, CURLINFO_RETRY_AFTER, &ra);
        wait_ms = cdc_msg_backoff_ms(attempt, (int)s->backoff_ms,
                                     (int)s->max_backoff_ms);
        if (ra > 0) { /* libcurl gives 0 when there is none */
            wait_ms = (int64_t)ra * 1000;
            if (wait_ms > s->max_backoff_ms * 10)
                wait_ms = s->max_backoff_ms * 10;
        }
        if ((cdc_now_us() - start) / 1000 + wait_ms > s->retry_timeout_ms) {
            curl_slist_free_all(h);
            cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                        "the webhook %s did not accept a request within "
                        "%" PRId64 " ms (%d attempts; last: %s)", s->url.p,
                        s->retry_timeout_ms, attempt + 1,
                        rc != CURLE_OK ? (ebuf[0] ? ebuf
                                                  : curl_easy_strerror(rc))
                                       : "an HTTP error status");
            cdc_err_hint(err, "check the receiver; webhook.retry_timeout_ms "
                              "sets how long to keep trying");
            return -1;
        }
        if (attempt == 0 || attempt % 10 == 0) {
            if (rc != CURLE_OK)
                CDC_WARN(FAC, "%s: %s; retrying in %" PRId64 " ms", s->url.p,
                         ebuf[0] ? ebuf : curl_easy_strerror(rc), wait_ms);
            else
                CDC_WARN(FAC, "%s answered HTTP %ld; retrying in %" PRId64
                              " ms%s", s->url.p, status, wait_ms,
                         ra > 0 ? " (Retry-After)" : "");
        }
        s->retries++;
        attempt++;
        for (int64_t t = 0; t < wait_ms && !cdc_pipeline_stop; t += 100)
            usleep((useconds_t)(wait_ms - t < 100 ? wait_ms - t : 100) * 1000);
        if (cdc_pipeline_stop) {
            /* SIGTERM while retrying: the batch is not delivered, the
             * checkpoint stays before it */
            curl_slist_free_all(h);
            return cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                               "stopped while the webhook %s was failing",
                               s->url.p);
        }
    }
}

static int http_write(cdc_sink_t *snk, cdc_txn_t *tx, cdc_err_t *err)
{
    http_sink_t *s = (http_sink_t *)snk;

    tx->pending = tx->skipped ? 0 : (int)tx->nchanges;
    if (!tx->skipped)
        cdc_msg_txn_begin(&s->fmt, tx);
    for (uint32_t i = 0; !tx->skipped && i < tx->nchanges; i++) {
        url_expand(s, &tx->changes[i], &s->next);
        /* a different URL or a full batch sends what is there */
        if (s->nitems && (strcmp(s->next.p, s->url.p) ||
                          (int64_t)s->nitems >= s->batch) &&
            send_batch(s, err))
            return -1;
        if (!s->nitems) {
            cdc_buf_reset(&s->url);
            cdc_buf_put(&s->url, s->next.p, s->next.len);
            s->first_us = cdc_now_us();
        }
        add_item(s, tx, i);
    }
    if (!tx->skipped)
        cdc_msg_txn_end(&s->fmt, tx);
    if ((int64_t)s->nitems >= s->batch)
        return send_batch(s, err);
    return 0;
}

static int http_poll(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    http_sink_t *s = (http_sink_t *)snk;

    (void)timeout_ms;
    if (s->nitems && cdc_now_us() - s->first_us >= s->linger_ms * 1000)
        return send_batch(s, err);
    return 0;
}

static int http_flush(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    (void)timeout_ms;
    return send_batch((http_sink_t *)snk, err);
}

static void http_destroy(cdc_sink_t *snk)
{
    http_sink_t *s = (http_sink_t *)snk;

    if (!s)
        return;
    if (s->requests)
        CDC_INFO(FAC, "%" PRIu64 " request(s), %" PRIu64 " retr%s",
                 s->requests, s->retries, s->retries == 1 ? "y" : "ies");
    if (s->c)
        curl_easy_cleanup(s->c);
    if (s->dl)
        fclose(s->dl);
    cdc_msg_fmt_free(&s->fmt);
    free(s->url_tmpl); free(s->sig_header); free(s->hmac); free(s->bearer);
    free(s->dl_path);
    free(s->jwt_iss); free(s->jwt_aud); free(s->jwt_claims);
    if (s->jwt_tok)
        free(s->jwt_tok);
    if (s->jwt_key.p) /* the HS256 secret or the private key */
        OPENSSL_cleanse(s->jwt_key.p, s->jwt_key.len);
    cdc_buf_free(&s->jwt_key);
    free(s->items);
    cdc_buf_free(&s->url); cdc_buf_free(&s->body); cdc_buf_free(&s->tmp);
    cdc_buf_free(&s->resp); cdc_buf_free(&s->hdr); cdc_buf_free(&s->idem);
    cdc_buf_free(&s->next); cdc_buf_free(&s->ph);
    free(s);
}

static int open_dead_letter(http_sink_t *s, const cdc_conf_t *conf,
                            cdc_err_t *err)
{
    const char *unused;
    cdc_buf_t def = CDC_BUF_INIT;

    if (cdc_dl_conf(conf, &s->dead_letter, &unused, err))
        return -1;
    if (!s->dead_letter)
        return 0;
    cdc_buf_printf(&def, "%s/%s.dead_letter.jsonl",
                   cdc_conf_get(conf, "state.dir", "state"),
                   cdc_conf_pipeline(conf));
    s->dl_path = cdc_xstrdup(cdc_conf_get(conf, "errors.dead_letter_file",
                                          def.p));
    cdc_buf_free(&def);
    s->dl = fopen(s->dl_path, "a");
    if (!s->dl) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "cannot open the dead-letter "
                    "file %s", s->dl_path);
        cdc_err_hint(err, "set errors.dead_letter_file to a writable path");
        return -1;
    }
    return 0;
}

/* webhook.jwt.*: 0 (none configured, or ready and a first token signed),
 * -1 with err (exit 78). */
static int jwt_conf(http_sink_t *s, const cdc_conf_t *conf, cdc_err_t *err)
{
    const char *alg = cdc_conf_get(conf, "webhook.jwt.alg", "HS256");
    const char *secret = cdc_conf_get(conf, "webhook.jwt.secret", NULL);
    const char *keyf = cdc_conf_get(conf, "webhook.jwt.key_file", NULL);
    const char *v;

    if (secret && !*secret)
        secret = NULL;
    if (keyf && !*keyf)
        keyf = NULL;
    if (!secret && !keyf)
        return 0;
    if (s->bearer) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "webhook.bearer_token and "
                    "webhook.jwt.* both set the Authorization header");
        cdc_err_hint(err, "keep one of them");
        return -1;
    }
    s->jwt_alg = jwt_str_alg(alg);
    if (s->jwt_alg != JWT_ALG_HS256 && s->jwt_alg != JWT_ALG_RS256 &&
        s->jwt_alg != JWT_ALG_ES256) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "webhook.jwt.alg: %s is not "
                    "supported", alg);
        cdc_err_hint(err, "use HS256, RS256 or ES256");
        return -1;
    }
    if (s->jwt_alg == JWT_ALG_HS256) {
        if (!secret) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "webhook.jwt.alg=HS256 "
                        "needs webhook.jwt.secret");
            cdc_err_hint(err, "set webhook.jwt.secret (or "
                              "webhook.jwt.secret_file), or choose RS256 or "
                              "ES256 with webhook.jwt.key_file");
            return -1;
        }
        cdc_buf_puts(&s->jwt_key, secret);
    } else {
        FILE *f;
        char b[4096];
        size_t n;
        if (!keyf) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "webhook.jwt.alg=%s needs "
                        "webhook.jwt.key_file", alg);
            cdc_err_hint(err, "point webhook.jwt.key_file at the PEM "
                              "private key the receiver has the public key "
                              "of");
            return -1;
        }
        f = fopen(keyf, "rb");
        if (!f) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "cannot read "
                        "webhook.jwt.key_file %s: %s", keyf, strerror(errno));
            return -1;
        }
        while ((n = fread(b, 1, sizeof(b), f)) > 0)
            cdc_buf_put(&s->jwt_key, b, n);
        fclose(f);
        OPENSSL_cleanse(b, sizeof(b));
        if (!s->jwt_key.len) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "webhook.jwt.key_file %s "
                        "is empty", keyf);
            return -1;
        }
    }
    s->jwt_iss = cdc_xstrdup(cdc_conf_get(conf, "webhook.jwt.issuer",
                                          s->fmt.app));
    s->jwt_aud = cdc_conf_dup(conf, "webhook.jwt.audience");
    s->jwt_claims = cdc_conf_dup(conf, "webhook.jwt.claims");
    if ((v = s->jwt_claims) && !*v) {
        free(s->jwt_claims);
        s->jwt_claims = NULL;
    }
    if (cdc_conf_get_int(conf, "webhook.jwt.lifetime_s", 300, &s->jwt_life_s,
                         err))
        return -1;
    if (s->jwt_life_s < 2) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "webhook.jwt.lifetime_s must "
                    "be at least 2");
        return -1;
    }
    /* sign once now: a bad key or bad claims stop the start, not the
     * first request */
    if (jwt_sign(s, (int64_t)time(NULL), err))
        return -1;
    CDC_INFO(FAC, "JWT bearer %s, issuer %s, lifetime %" PRId64 " s",
             jwt_alg_str(s->jwt_alg), s->jwt_iss, s->jwt_life_s);
    return 0;
}

static cdc_sink_t *http_create(const cdc_conf_t *conf, cdc_err_t *err)
{
    http_sink_t *s = cdc_xcalloc(1, sizeof(*s));
    const char *v;
    int verify = 1, h2c;

    s->base.ops = &cdc_sink_http_ops;
    if (cdc_msg_fmt_init(&s->fmt, conf, err))
        goto fail;
    s->url_tmpl = cdc_conf_dup(conf, "webhook.url");
    if (!s->url_tmpl) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "the http sink needs webhook.url");
        cdc_err_hint(err, "add -X webhook.url=https://host/path (placeholders "
                          "{source}, {db}, {table}, {op})");
        goto fail;
    }
    s->sig_header = cdc_xstrdup(cdc_conf_get(conf, "webhook.signature_header",
                                             "X-Autoglm-Signature-256"));
    s->hmac = cdc_conf_dup(conf, "webhook.hmac_secret");
    s->bearer = cdc_conf_dup(conf, "webhook.bearer_token");
    v = cdc_conf_get(conf, "webhook.batch_format", "array");
    s->ndjson = !strcmp(v, "ndjson");
    v = cdc_conf_get(conf, "webhook.version", "1.1");
    s->version = !strcmp(v, "2");
    if (cdc_msg_tmpl_check("webhook.url", s->url_tmpl, err) ||
        cdc_conf_get_int(conf, "webhook.batch", 1, &s->batch, err) ||
        cdc_conf_get_int(conf, "webhook.linger_ms", 100, &s->linger_ms, err) ||
        cdc_conf_get_int(conf, "webhook.timeout_ms", 30000, &s->timeout_ms,
                         err) ||
        cdc_conf_get_int(conf, "webhook.connect_timeout_ms", 10000,
                         &s->connect_timeout_ms, err) ||
        cdc_conf_get_int(conf, "webhook.retry_backoff_ms", 200, &s->backoff_ms,
                         err) ||
        cdc_conf_get_int(conf, "webhook.retry_max_backoff_ms", 30000,
                         &s->max_backoff_ms, err) ||
        cdc_conf_get_int(conf, "webhook.retry_timeout_ms", 300000,
                         &s->retry_timeout_ms, err) ||
        cdc_conf_get_bool(conf, "webhook.tls.verify", 1, &verify, err) ||
        jwt_conf(s, conf, err) || open_dead_letter(s, conf, err))
        goto fail;
    if (s->fmt.xml && s->batch > 1) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "format=xml is one document "
                    "per request: webhook.batch must be 1");
        goto fail;
    }
    s->items = cdc_xcalloc((size_t)s->batch, sizeof(*s->items));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s->c = curl_easy_init();
    if (!s->c) {
        cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                    "cannot create a libcurl handle");
        goto fail;
    }
    curl_easy_setopt(s->c, CURLOPT_POST, 1L);
    curl_easy_setopt(s->c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(s->c, CURLOPT_WRITEDATA, &s->resp);
    curl_easy_setopt(s->c, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
    curl_easy_setopt(s->c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)s->connect_timeout_ms);
    curl_easy_setopt(s->c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(s->c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(s->c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->c, CURLOPT_USERAGENT, "autoglm-cdc");
    if (s->version && !(curl_version_info(CURLVERSION_NOW)->features &
                        CURL_VERSION_HTTP2)) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "webhook.version=2: this "
                    "libcurl has no HTTP/2 support");
        cdc_err_hint(err, "install a libcurl built with nghttp2 (Debian's "
                          "libcurl4-openssl-dev is), or use "
                          "webhook.version=1.1");
        goto fail;
    }
    /* http:// has nothing to negotiate with: h2c by prior knowledge */
    h2c = s->version && !strncasecmp(s->url_tmpl, "http://", 7);
    curl_easy_setopt(s->c, CURLOPT_HTTP_VERSION,
                     !s->version ? (long)CURL_HTTP_VERSION_1_1
                     : h2c ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
                           : (long)CURL_HTTP_VERSION_2TLS);
    if (h2c && curl_version_info(CURLVERSION_NOW)->version_num < 0x080000) {
        /* libcurl before 8.0 fails the second request on a reused
         * prior-knowledge connection ("Error in the HTTP2 framing
         * layer", curl PR 10643): a fresh connection per request */
        curl_easy_setopt(s->c, CURLOPT_FORBID_REUSE, 1L);
        CDC_WARN(FAC, "libcurl %s cannot reuse an h2c connection: one "
                      "connection per request (https keeps one connection)",
                 curl_version_info(CURLVERSION_NOW)->version);
    }
    curl_easy_setopt(s->c, CURLOPT_SSL_VERIFYPEER, (long)verify);
    curl_easy_setopt(s->c, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if ((v = cdc_conf_get(conf, "webhook.tls.ca", NULL)) && *v)
        curl_easy_setopt(s->c, CURLOPT_CAINFO, v);
    CDC_INFO(FAC, "posting to %s (batch %" PRId64 "%s)", s->url_tmpl,
             s->batch, s->batch > 1 ? (s->ndjson ? ", ndjson" : ", array")
                                    : "");
    return &s->base;
fail:
    http_destroy(&s->base);
    return NULL;
}

const cdc_sink_ops_t cdc_sink_http_ops = {
    .name = "http",
    .abi = CDC_PLUGIN_ABI,
    .create = http_create,
    .write = http_write,
    .poll = http_poll,
    .flush = http_flush,
    .destroy = http_destroy,
};
