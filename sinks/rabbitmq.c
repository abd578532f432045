/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rabbitmq.c - the RabbitMQ sink: one AMQP 0-9-1 message per row change
 * through librabbitmq (rabbitmq-c), with publisher confirms.
 *
 * Why librabbitmq: it is the C client RabbitMQ's own team keeps, in
 * Debian, and it already implements framing, heartbeats, TLS and SASL;
 * we only drive it.
 *
 * Messages
 *   exchange     rabbitmq.exchange (declared durable, rabbitmq.exchange_type,
 *                topic by default, unless rabbitmq.declare=false)
 *   routing key  rabbitmq.routing_key template, default {db}.{table}.{op}
 *   body         the envelope in conf "format" (autoglm, debezium, xml)
 *   properties   persistent (delivery_mode 2), content_type, app_id =
 *                application id, message_id = change id (sinks/msg.h),
 *                timestamp = commit time, headers op, db, table, position
 *   Published with mandatory=true: a message no queue takes comes back
 *   (basic.return) and stops the run with exit 65, unless
 *   rabbitmq.unroutable=drop (then it is logged and counted).
 *   With rabbitmq.event=true every non-empty transaction is followed by
 *   one "data-updated" event (rabbitmq.event_routing_key) naming the
 *   tables it changed.
 *
 * Delivery and checkpoints
 *   The channel is in confirm mode.  Every message has an entry in a FIFO
 *   (txn, change index, delivery tag); basic.ack (single or multiple)
 *   decrements its txn's pending count, so a txn counts as delivered only
 *   when the broker confirmed every message of it, and the pipeline never
 *   checkpoints past an unconfirmed change.  At most
 *   rabbitmq.max_unconfirmed messages are outstanding; write() waits for
 *   confirms beyond that, so the reader blocks.
 *
 * Broker outages
 *   A lost connection, a nack or a channel error closes the connection;
 *   we reconnect with capped, jittered backoff and republish, in order,
 *   every message not yet confirmed (duplicates are possible only for
 *   those).  After rabbitmq.reconnect_timeout_ms without a connection the
 *   run stops with exit 69.  Refused credentials or vhost are exit 78 at
 *   once: retrying cannot help.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "cdc/checkpoint.h"
#include "cdc/conf.h"
#include "cdc/log.h"
#include "cdc/pipeline.h"
#include "cdc/plugin.h"
#include "cdc/util.h"
#include "sinks/msg.h"

#define FAC "rabbitmq"
#define CH 1

extern const cdc_sink_ops_t cdc_sink_rabbitmq_ops;

typedef struct rmq_ent {
    cdc_txn_t *tx;
    int32_t idx;  /* change index, -1: the data-updated event */
    int acked;
    uint64_t tag; /* delivery tag on the current channel, 0: not sent */
    /* the body rendered when queued (owned), or NULL: rendered when
     * published.  Debezium transaction blocks are numbered as the txns
     * are written, so a republish after a reconnect, when later txns
     * were written, must send what was rendered then */
    char *body;
    size_t blen;
} rmq_ent_t;

typedef struct rmq_sink {
    cdc_sink_t base;
    cdc_msg_fmt_t fmt;
    /* settings */
    char *host, *vhost, *user, *pass;
    int port, tls, verify, heartbeat_s;
    char *ca, *cert, *key;
    char *exchange, *ex_type, *rk_tmpl, *ev_rk;
    int declare, drop_unroutable, event;
    int64_t max_unconfirmed;
    /* connection */
    amqp_connection_state_t conn;
    int connected;
    uint64_t next_tag;
    cdc_msg_retry_t rt;
    /* FIFO of messages not yet confirmed: q[head .. n) */
    rmq_ent_t *q;
    size_t head, n, cap;
    size_t unsent; /* q[unsent .. n) not published on this connection */
    /* failure */
    int fatal;
    cdc_err_t ferr;
    uint64_t dropped;
    cdc_buf_t body, rk, id, tmp;
} rmq_sink_t;


/* ------------------------------------------------------------------ */
/* connection                                                          */
/* ------------------------------------------------------------------ */

/* Turn a failed RPC reply into err; 78 for refusals, 69 otherwise. */
static int rpc_err(amqp_rpc_reply_t r, const char *what, rmq_sink_t *s,
                   cdc_err_t *err)
{
    uint16_t code = 0;
    amqp_bytes_t text = {0, NULL};

    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            code = m->reply_code;
            text = m->reply_text;
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            code = m->reply_code;
            text = m->reply_text;
        }
        if (code == 403 || code == 530 || code == 406 || code == 404) {
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "RabbitMQ %s:%d refused %s: %d %.*s", s->host,
                        s->port, what, code, (int)text.len,
                        (const char *)text.bytes);
            cdc_err_hint(err,
                         code == 403 && !strcmp(what, "the login")
                             ? "check rabbitmq.user and rabbitmq.password "
                               "(or rabbitmq.password_file)"
                         : code == 406
                             ? "the exchange exists with other settings: "
                               "match rabbitmq.exchange_type or use "
                               "another rabbitmq.exchange"
                             : "check the user's permissions on "
                               "rabbitmq.vhost and rabbitmq.exchange");
            return -1;
        }
        return cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                           "RabbitMQ %s:%d closed the connection during "
                           "%s: %d %.*s", s->host, s->port, what, code,
                           (int)text.len, (const char *)text.bytes);
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        !strcmp(what, "the login") &&
        (r.library_error == AMQP_STATUS_CONNECTION_CLOSED ||
         r.library_error == AMQP_STATUS_SOCKET_CLOSED)) {
        /* brokers without authentication_failure_close just hang up */
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "RabbitMQ %s:%d closed the connection at login", s->host,
                    s->port);
        cdc_err_hint(err, "check rabbitmq.user, rabbitmq.password and "
                          "rabbitmq.vhost");
        return -1;
    }
    return cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                       "RabbitMQ %s:%d: %s failed: %s", s->host, s->port,
                       what,
                       r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                           ? amqp_error_string2(r.library_error)
                           : "no reply");
}

static void drop_conn(rmq_sink_t *s)
{
    if (s->conn)
        amqp_destroy_connection(s->conn);
    s->conn = NULL;
    s->connected = 0;
    /* everything not confirmed is published again on the next channel */
    for (size_t i = s->head; i < s->n; i++)
        s->q[i].tag = 0;
    s->unsent = s->head;
}

static int rmq_connect(rmq_sink_t *s, cdc_err_t *err)
{
    amqp_socket_t *sock;
    struct timeval tv = {10, 0};
    int rc;

    s->conn = amqp_new_connection();
    sock = s->tls ? amqp_ssl_socket_new(s->conn) : amqp_tcp_socket_new(s->conn);
    if (!sock) {
        drop_conn(s);
        return cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                           "cannot create an AMQP socket");
    }
    if (s->tls) {
        amqp_ssl_socket_set_verify_peer(sock, s->verify);
        amqp_ssl_socket_set_verify_hostname(sock, s->verify);
        if ((s->ca && amqp_ssl_socket_set_cacert(sock, s->ca)) ||
            (s->cert && amqp_ssl_socket_set_key(sock, s->cert, s->key))) {
            drop_conn(s);
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "cannot load the TLS files rabbitmq.tls.ca / "
                        "rabbitmq.tls.cert / rabbitmq.tls.key");
            cdc_err_hint(err, "give readable PEM files");
            return -1;
        }
    }
    rc = amqp_socket_open_noblock(sock, s->host, s->port, &tv);
    if (rc == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED ||
        rc == AMQP_STATUS_SSL_PEER_VERIFY_FAILED) {
        drop_conn(s);
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "RabbitMQ %s:%d: TLS certificate not accepted: %s",
                    s->host, s->port, amqp_error_string2(rc));
        cdc_err_hint(err, "rabbitmq.tls.ca must hold the CA that signed the "
                          "broker's certificate, and the URL's host must be "
                          "a DNS name of it (librabbitmq does not match IP "
                          "addresses)");
        return -1;
    }
    if (rc) {
        drop_conn(s);
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                    "cannot connect to RabbitMQ at %s:%d: %s", s->host,
                    s->port, amqp_error_string2(rc));
        cdc_err_hint(err, "check rabbitmq.url and that the broker runs%s",
                     s->tls ? " (and its certificate)" : "");
        return -1;
    }
    if (rpc_err(amqp_login(s->conn, s->vhost, 0, 131072, s->heartbeat_s,
                           AMQP_SASL_METHOD_PLAIN, s->user, s->pass),
                "the login", s, err))
        goto fail;
    amqp_channel_open(s->conn, CH);
    if (rpc_err(amqp_get_rpc_reply(s->conn), "channel.open", s, err))
        goto fail;
    amqp_confirm_select(s->conn, CH);
    if (rpc_err(amqp_get_rpc_reply(s->conn), "confirm.select", s, err))
        goto fail;
    if (s->declare) {
        amqp_exchange_declare(s->conn, CH, amqp_cstring_bytes(s->exchange),
                              amqp_cstring_bytes(s->ex_type), 0, 1, 0, 0,
                              amqp_empty_table);
        if (rpc_err(amqp_get_rpc_reply(s->conn), "exchange.declare", s, err))
            goto fail;
    }
    s->connected = 1;
    s->next_tag = 1;
    cdc_msg_retry_ok(&s->rt);
    return 0;
fail:
    drop_conn(s);
    return -1;
}

/* Try to (re)connect when the backoff allows; fatal errors stick. */
static void reconnect(rmq_sink_t *s)
{
    cdc_err_t e;
    int64_t t = cdc_now_us();

    if (s->connected || s->fatal || t < s->rt.retry_at_us)
        return;
    if (!rmq_connect(s, &e)) {
        CDC_INFO(FAC, "connected to %s:%d; republishing %zu unconfirmed "
                      "message(s)", s->host, s->port, s->n - s->head);
        return;
    }
    if (cdc_msg_retry_failed(&s->rt, &e, t, FAC,
                             "rabbitmq.reconnect_timeout_ms")) {
        s->fatal = 1;
        s->ferr = e;
    }
}

static void lost(rmq_sink_t *s, const char *why)
{
    CDC_WARN(FAC, "connection to %s:%d lost (%s); reconnecting", s->host,
             s->port, why);
    drop_conn(s);
    s->rt.down_since_us = cdc_now_us();
    s->rt.retry_at_us = 0;
}

/* ------------------------------------------------------------------ */
/* publishing                                                          */
/* ------------------------------------------------------------------ */

static void event_body(rmq_sink_t *s, const cdc_txn_t *tx, cdc_buf_t *b)
{
    cdc_buf_puts(b, "{\"event\":\"data-updated\",\"application_id\":");
    cdc_json_string(b, s->fmt.app, strlen(s->fmt.app));
    cdc_buf_puts(b, ",\"position\":");
    cdc_buf_reset(&s->tmp);
    cdc_buf_puts(&s->tmp, cdc_pos_str(&tx->pos));
    cdc_json_string(b, s->tmp.p, s->tmp.len);
    cdc_buf_puts(b, ",\"commit_ts\":\"");
    cdc_json_iso_ms(b, tx->commit_us);
    cdc_buf_printf(b, "\",\"changes\":%u,\"tables\":[", tx->nchanges);
    for (uint32_t i = 0; i < tx->nchanges; i++) {
        const cdc_table_t *t = tx->changes[i].tbl;
        uint32_t j;
        for (j = 0; j < i && tx->changes[j].tbl != t; j++)
            ;
        if (j < i)
            continue;
        cdc_buf_reset(&s->tmp);
        cdc_buf_printf(&s->tmp, "%s.%s", t->db, t->name);
        if (i)
            cdc_buf_putc(b, ',');
        cdc_json_string(b, s->tmp.p, s->tmp.len);
    }
    cdc_buf_puts(b, "]}");
}

static void set_hdr(amqp_table_entry_t *e, const char *k, const char *v)
{
    e->key = amqp_cstring_bytes(k);
    e->value.kind = AMQP_FIELD_KIND_UTF8;
    e->value.value.bytes = amqp_cstring_bytes(v);
}

/* Publish one entry; 0, or -1 when the connection failed. */
static int publish(rmq_sink_t *s, rmq_ent_t *e)
{
    const cdc_txn_t *tx = e->tx;
    const cdc_change_t *ch = e->idx >= 0 ? &tx->changes[e->idx] : NULL;
    amqp_basic_properties_t p;
    amqp_table_entry_t h[4];
    int rc;

    cdc_buf_reset(&s->body);
    cdc_buf_reset(&s->rk);
    cdc_buf_reset(&s->id);
    memset(&p, 0, sizeof(p));
    if (ch) {
        if (e->body)
            cdc_buf_put(&s->body, e->body, e->blen);
        else
            cdc_msg_body(&s->fmt, &s->body, tx, ch);
        cdc_msg_tmpl_expand(&s->rk, s->rk_tmpl, s->fmt.app, ch, "");
        cdc_msg_change_id(&s->id, tx, ch);
        set_hdr(&h[0], "op", cdc_msg_op_word(ch->op));
        set_hdr(&h[1], "db", ch->tbl->db);
        set_hdr(&h[2], "table", ch->tbl->name);
        p.content_type = amqp_cstring_bytes(cdc_msg_content_type(&s->fmt));
    } else {
        event_body(s, tx, &s->body);
        cdc_buf_puts(&s->rk, s->ev_rk);
        cdc_buf_puts(&s->id, cdc_pos_str(&tx->pos));
        set_hdr(&h[0], "op", "event");
        set_hdr(&h[1], "db", "");
        set_hdr(&h[2], "table", "");
        p.content_type = amqp_cstring_bytes("application/json");
        p.type = amqp_cstring_bytes("data-updated");
        p._flags |= AMQP_BASIC_TYPE_FLAG;
    }
    set_hdr(&h[3], "position", s->id.p);
    p._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_HEADERS_FLAG;
    p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    p.app_id = amqp_cstring_bytes(s->fmt.app);
    p.message_id = amqp_cstring_bytes(s->id.p);
    p.timestamp = (uint64_t)(tx->commit_us / 1000000);
    p.headers.num_entries = 4;
    p.headers.entries = h;
    rc = amqp_basic_publish(s->conn, CH, amqp_cstring_bytes(s->exchange),
                            amqp_cstring_bytes(s->rk.p), 1, 0, &p,
                            (amqp_bytes_t){s->body.len, s->body.p});
    if (rc) {
        lost(s, amqp_error_string2(rc));
        return -1;
    }
    e->tag = s->next_tag++;
    return 0;
}

static void pump(rmq_sink_t *s)
{
    while (s->connected && !s->fatal && s->unsent < s->n) {
        rmq_ent_t *e = &s->q[s->unsent];
        if (!e->acked && publish(s, e))
            return;
        s->unsent++;
    }
}

static void pop_acked(rmq_sink_t *s)
{
    while (s->head < s->n && s->q[s->head].acked) {
        free(s->q[s->head].body);
        s->q[s->head].body = NULL;
        s->head++;
    }
    if (s->head == s->n) {
        s->head = s->n = s->unsent = 0;
    } else if (s->head > 4096 && s->head * 2 > s->n) {
        memmove(s->q, s->q + s->head, (s->n - s->head) * sizeof(*s->q));
        s->n -= s->head;
        s->unsent -= s->head;
        s->head = 0;
    }
}

static void on_ack(rmq_sink_t *s, uint64_t tag, int multiple)
{
    for (size_t i = s->head; i < s->unsent; i++) {
        rmq_ent_t *e = &s->q[i];
        if (e->tag > tag)
            break;
        if (!e->acked && (e->tag == tag || multiple)) {
            e->acked = 1;
            e->tx->pending--;
        }
    }
    pop_acked(s);
}

static void on_return(rmq_sink_t *s, const amqp_basic_return_t *r)
{
    amqp_message_t m;
    amqp_rpc_reply_t rr = amqp_read_message(s->conn, CH, &m, 0);
    cdc_buf_t id = CDC_BUF_INIT;

    if (rr.reply_type == AMQP_RESPONSE_NORMAL) {
        if (m.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
            cdc_buf_put(&id, m.properties.message_id.bytes,
                        m.properties.message_id.len);
        amqp_destroy_message(&m);
    }
    if (s->drop_unroutable) {
        s->dropped++;
        CDC_WARN(FAC, "dropped unroutable message %s (exchange %.*s, routing "
                      "key %.*s; rabbitmq.unroutable=drop)",
                 id.p ? id.p : "?", (int)r->exchange.len,
                 (const char *)r->exchange.bytes, (int)r->routing_key.len,
                 (const char *)r->routing_key.bytes);
    } else {
        s->fatal = 1;
        cdc_err_set(&s->ferr, CDC_EXIT_DATA, CDC_ERR_F_FATAL | CDC_ERR_F_DATA,
                    "RabbitMQ could not route message %s: exchange %.*s, "
                    "routing key %.*s: %d %.*s", id.p ? id.p : "?",
                    (int)r->exchange.len, (const char *)r->exchange.bytes,
                    (int)r->routing_key.len,
                    (const char *)r->routing_key.bytes, r->reply_code,
                    (int)r->reply_text.len,
                    (const char *)r->reply_text.bytes);
        cdc_err_hint(&s->ferr, "bind a queue to the exchange for this "
                               "routing key, or set rabbitmq.unroutable=drop");
    }
    cdc_buf_free(&id);
}

/* Serve frames: wait up to timeout_ms for the first, then take what is
 * already there and return (so write() can publish again at once). */
static void serve(rmq_sink_t *s, int timeout_ms)
{
    int64_t end = cdc_now_us() + (int64_t)timeout_ms * 1000;
    int got = 0;

    for (;;) {
        amqp_frame_t f;
        struct timeval tv;
        int64_t left = end - cdc_now_us();
        int rc;

        reconnect(s);
        pump(s);
        if (s->fatal)
            return;
        if (!s->connected) {
            int64_t w = s->rt.retry_at_us - cdc_now_us();
            if (left <= 0)
                return;
            if (w > left)
                w = left;
            if (w > 0)
                usleep((useconds_t)w);
            continue;
        }
        if (left < 0 || got)
            left = 0;
        tv.tv_sec = left / 1000000;
        tv.tv_usec = left % 1000000;
        rc = amqp_simple_wait_frame_noblock(s->conn, &f, &tv);
        if (rc == AMQP_STATUS_TIMEOUT) {
            amqp_maybe_release_buffers(s->conn);
            return;
        }
        if (rc) {
            lost(s, amqp_error_string2(rc));
            continue;
        }
        got = 1;
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (f.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            on_ack(s, a->delivery_tag, a->multiple);
            break;
        }
        case AMQP_BASIC_NACK_METHOD:
            lost(s, "the broker nacked a message");
            break;
        case AMQP_BASIC_RETURN_METHOD:
            on_return(s, f.payload.method.decoded);
            if (s->fatal)
                return;
            break;
        case AMQP_CHANNEL_CLOSE_METHOD: {
            amqp_channel_close_t *c = f.payload.method.decoded;
            amqp_rpc_reply_t r = {AMQP_RESPONSE_SERVER_EXCEPTION,
                                  f.payload.method, 0};
            cdc_err_t e;
            rpc_err(r, "a publish", s, &e);
            if (!(e.flags & CDC_ERR_F_RETRIABLE)) {
                s->fatal = 1;
                s->ferr = e;
                return;
            }
            (void)c;
            lost(s, "channel closed");
            break;
        }
        case AMQP_CONNECTION_CLOSE_METHOD:
            lost(s, "the broker closed the connection");
            break;
        }
    }
}

/* ------------------------------------------------------------------ */
/* ops                                                                 */
/* ------------------------------------------------------------------ */

static int fatal_err(rmq_sink_t *s, cdc_err_t *err)
{
    *err = s->ferr;
    return -1;
}

static void enqueue(rmq_sink_t *s, cdc_txn_t *tx, int32_t idx)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->q = cdc_xrealloc(s->q, s->cap * sizeof(*s->q));
    }
    s->q[s->n++] = (rmq_ent_t){tx, idx, 0, 0, NULL, 0};
}

/* Render the body of the change queued last, now (see rmq_ent_t.body). */
static void render_last(rmq_sink_t *s)
{
    rmq_ent_t *e = &s->q[s->n - 1];

    cdc_buf_reset(&s->tmp);
    cdc_msg_body(&s->fmt, &s->tmp, e->tx, &e->tx->changes[e->idx]);
    e->blen = s->tmp.len;
    e->body = cdc_xmalloc(e->blen ? e->blen : 1);
    memcpy(e->body, s->tmp.p ? s->tmp.p : "", e->blen);
}

static int rmq_write(cdc_sink_t *snk, cdc_txn_t *tx, cdc_err_t *err)
{
    rmq_sink_t *s = (rmq_sink_t *)snk;
    int render;

    if (s->fatal)
        return fatal_err(s, err);
    tx->pending = 0;
    if (tx->skipped)
        return 0;
    /* a fragment without changes (the empty last one after a full
     * fragment, or one whose rows the filter left out) still starts or
     * ends its transaction's Debezium numbering, as in the other sinks:
     * else the next transaction could go on with this one's */
    render = cdc_msg_txn_begin(&s->fmt, tx);
    if (!tx->nchanges) {
        cdc_msg_txn_end(&s->fmt, tx);
        return 0;
    }
    for (uint32_t i = 0; i < tx->nchanges; i++) {
        enqueue(s, tx, (int32_t)i);
        if (render)
            render_last(s);
    }
    cdc_msg_txn_end(&s->fmt, tx);
    if (s->event)
        enqueue(s, tx, -1);
    tx->pending = (int)tx->nchanges + (s->event ? 1 : 0);
    pump(s);
    while (!s->fatal && (int64_t)(s->n - s->head) > s->max_unconfirmed) {
        if (cdc_pipeline_stop) /* the txn stays pending: no checkpoint */
            return cdc_err_set(err, CDC_EXIT_UNAVAILABLE,
                               CDC_ERR_F_RETRIABLE, "stopped while waiting "
                               "for RabbitMQ to confirm messages");
        serve(s, 100);
    }
    return s->fatal ? fatal_err(s, err) : 0;
}

static int rmq_poll(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    rmq_sink_t *s = (rmq_sink_t *)snk;

    if (!s->fatal)
        serve(s, timeout_ms);
    return s->fatal ? fatal_err(s, err) : 0;
}

static int rmq_flush(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    rmq_sink_t *s = (rmq_sink_t *)snk;
    int64_t end = cdc_now_us() + (int64_t)timeout_ms * 1000;

    while (!s->fatal && s->head < s->n && cdc_now_us() < end)
        serve(s, 100);
    if (s->fatal)
        return fatal_err(s, err);
    if (s->head < s->n)
        return cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                           "%zu message(s) not confirmed by RabbitMQ "
                           "within %d ms", s->n - s->head, timeout_ms);
    return 0;
}

static void rmq_destroy(cdc_sink_t *snk)
{
    rmq_sink_t *s = (rmq_sink_t *)snk;

    if (!s)
        return;
    if (s->dropped)
        CDC_WARN(FAC, "%" PRIu64 " unroutable message(s) dropped",
                 s->dropped);
    if (s->conn && s->connected) {
        amqp_channel_close(s->conn, CH, AMQP_REPLY_SUCCESS);
        amqp_connection_close(s->conn, AMQP_REPLY_SUCCESS);
    }
    if (s->conn)
        amqp_destroy_connection(s->conn);
    cdc_msg_fmt_free(&s->fmt);
    for (size_t i = s->head; i < s->n; i++)
        free(s->q[i].body);
    free(s->host); free(s->vhost); free(s->user); free(s->pass);
    free(s->ca); free(s->cert); free(s->key);
    free(s->exchange); free(s->ex_type); free(s->rk_tmpl); free(s->ev_rk);
    free(s->q);
    cdc_buf_free(&s->body); cdc_buf_free(&s->rk); cdc_buf_free(&s->id);
    cdc_buf_free(&s->tmp);
    free(s);
}

static int read_url(rmq_sink_t *s, const cdc_conf_t *conf, cdc_err_t *err)
{
    const char *url = cdc_conf_get(conf, "rabbitmq.url",
                                   "amqp://127.0.0.1:5672/");
    char *copy = cdc_xstrdup(url);
    struct amqp_connection_info ci;
    const char *u, *p;

    amqp_default_connection_info(&ci);
    if (amqp_parse_url(copy, &ci)) {
        free(copy);
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "rabbitmq.url is not an AMQP URL");
        cdc_err_hint(err, "write amqp://[user[:password]@]host[:port]"
                          "[/vhost] or amqps://...");
        return -1;
    }
    s->host = cdc_xstrdup(ci.host);
    s->port = ci.port;
    s->vhost = cdc_xstrdup(ci.vhost && *ci.vhost ? ci.vhost : "/");
    s->tls = ci.ssl;
    /* rabbitmq.user / rabbitmq.password win over the URL */
    u = cdc_conf_get(conf, "rabbitmq.user", NULL);
    p = cdc_conf_get(conf, "rabbitmq.password", NULL);
    s->user = cdc_xstrdup(u ? u : strstr(url, "@") ? ci.user : "guest");
    s->pass = cdc_xstrdup(p ? p : strstr(url, "@") ? ci.password : "guest");
    free(copy);
    return 0;
}

static cdc_sink_t *rmq_create(const cdc_conf_t *conf, cdc_err_t *err)
{
    rmq_sink_t *s = cdc_xcalloc(1, sizeof(*s));
    int64_t hb;
    const char *v;

    s->base.ops = &cdc_sink_rabbitmq_ops;
    if (cdc_msg_fmt_init(&s->fmt, conf, err) || read_url(s, conf, err))
        goto fail;
    s->exchange = cdc_xstrdup(cdc_conf_get(conf, "rabbitmq.exchange",
                                           "autoglm-cdc"));
    s->ex_type = cdc_xstrdup(cdc_conf_get(conf, "rabbitmq.exchange_type",
                                          "topic"));
    s->rk_tmpl = cdc_xstrdup(cdc_conf_get(conf, "rabbitmq.routing_key",
                                          "{db}.{table}.{op}"));
    s->ev_rk = cdc_xstrdup(cdc_conf_get(conf, "rabbitmq.event_routing_key",
                                        "event.data-updated"));
    s->ca = cdc_conf_dup(conf, "rabbitmq.tls.ca");
    s->cert = cdc_conf_dup(conf, "rabbitmq.tls.cert");
    s->key = cdc_conf_dup(conf, "rabbitmq.tls.key");
    v = cdc_conf_get(conf, "rabbitmq.unroutable", "fail");
    s->drop_unroutable = !strcmp(v, "drop");
    if (cdc_msg_tmpl_check("rabbitmq.routing_key", s->rk_tmpl, err) ||
        cdc_conf_get_bool(conf, "rabbitmq.declare", 1, &s->declare, err) ||
        cdc_conf_get_bool(conf, "rabbitmq.event", 0, &s->event, err) ||
        cdc_conf_get_bool(conf, "rabbitmq.tls.verify", 1, &s->verify, err) ||
        cdc_conf_get_int(conf, "rabbitmq.max_unconfirmed", 10000,
                         &s->max_unconfirmed, err) ||
        cdc_conf_get_int(conf, "rabbitmq.reconnect_timeout_ms", 300000,
                         &s->rt.timeout_ms, err) ||
        cdc_conf_get_int(conf, "rabbitmq.heartbeat_s", 30, &hb, err))
        goto fail;
    s->heartbeat_s = (int)hb;
    if (s->ca || s->cert)
        s->tls = 1;
    if (rmq_connect(s, err))
        goto fail;
    CDC_INFO(FAC, "connected to %s:%d vhost %s, exchange %s (%s), confirms "
                  "on", s->host, s->port, s->vhost, s->exchange, s->ex_type);
    return &s->base;
fail:
    rmq_destroy(&s->base);
    return NULL;
}

const cdc_sink_ops_t cdc_sink_rabbitmq_ops = {
    .name = "rabbitmq",
    .abi = CDC_PLUGIN_ABI,
    .create = rmq_create,
    .write = rmq_write,
    .poll = rmq_poll,
    .flush = rmq_flush,
    .destroy = rmq_destroy,
};
