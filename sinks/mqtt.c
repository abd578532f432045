/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mqtt.c - the MQTT sink: one PUBLISH per row change through libmosquitto
 * (Eclipse Mosquitto's client library: MQTT 3.1.1 and 5, TLS, in-flight
 * bookkeeping and resend on reconnect, so we do not write a protocol
 * stack).
 *
 * Messages
 *   topic    mqtt.topic template, default {source}/{db}/{table}; '+', '#'
 *            and NUL in substituted names become '_'.  With
 *            mqtt.retain=true the topic gets "/<key>" (the primary-key
 *            values joined by ',') and every message is retained, so a
 *            device connecting late finds the last state of each row; a
 *            delete publishes an empty retained message, which clears it.
 *   payload  the envelope in conf "format" (autoglm, debezium, xml)
 *   QoS      mqtt.qos, 1 by default.  MQTT 5 messages also carry the
 *            content type and user properties op and position.
 *
 * Session
 *   A stable client id (mqtt.client_id, default autoglm-cdc-<pipeline>)
 *   and clean session off (MQTT 5: clean start off and a session expiry),
 *   so messages in flight survive a reconnect; keepalive mqtt.keepalive_s;
 *   TCP_NODELAY on (mqtt.tcp_nodelay).
 *
 * Delivery and checkpoints
 *   We drive libmosquitto's network loop from poll() on the caller's
 *   thread (no library thread, no locks).  A message is delivered when
 *   its on_publish callback fires: PUBACK for QoS 1, PUBCOMP for QoS 2,
 *   sent for QoS 0.  The message id indexes its txn (at most
 *   mqtt.max_inflight < 65535 outstanding); the txn's pending count
 *   drops per callback.  An MQTT 5 PUBACK with an error reason stops the
 *   run (exit 65).
 *
 * Broker outages
 *   A lost connection is retried with capped, jittered backoff;
 *   libmosquitto resends the unacknowledged messages on reconnect.  After
 *   mqtt.reconnect_timeout_ms without a connection the run stops (69).
 *   A refused login is exit 78 at once.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "cdc/conf.h"
#include "cdc/log.h"
#include "cdc/pipeline.h"
#include "cdc/plugin.h"
#include "cdc/util.h"
#include "sinks/msg.h"

#define FAC "mqtt"
#define MQTT_BAD "+#"

extern const cdc_sink_ops_t cdc_sink_mqtt_ops;

typedef struct mqtt_sink {
    cdc_sink_t base;
    struct mosquitto *m;
    cdc_msg_fmt_t fmt;
    char *host, *topic, *client_id;
    int port, proto, qos, retain, keepalive;
    int64_t max_inflight, session_expiry_s;
    /* state set by callbacks */
    int connected;     /* CONNACK accepted */
    int connack;       /* last CONNACK reason, -1 none yet */
    int64_t inflight;
    cdc_msg_retry_t rt;
    int fatal;
    cdc_err_t ferr;
    cdc_txn_t **by_mid; /* [65536] */
    cdc_buf_t body, top, id, tmp;
} mqtt_sink_t;

static int auth_refused(int proto, int rc)
{
    if (proto == MQTT_PROTOCOL_V5)
        return rc == MQTT_RC_BAD_USERNAME_OR_PASSWORD ||
               rc == MQTT_RC_NOT_AUTHORIZED || rc == MQTT_RC_BANNED ||
               rc == MQTT_RC_CLIENTID_NOT_VALID;
    return rc == CONNACK_REFUSED_BAD_USERNAME_PASSWORD ||
           rc == CONNACK_REFUSED_NOT_AUTHORIZED ||
           rc == CONNACK_REFUSED_IDENTIFIER_REJECTED;
}

static const char *connack_str(int proto, int rc)
{
    return proto == MQTT_PROTOCOL_V5 ? mosquitto_reason_string(rc)
                                     : mosquitto_connack_string(rc);
}

static void on_connect(struct mosquitto *m, void *o, int rc, int flags,
                       const mosquitto_property *p)
{
    mqtt_sink_t *s = o;

    (void)m; (void)flags; (void)p;
    s->connack = rc;
    s->connected = rc == 0;
}

static void on_disconnect(struct mosquitto *m, void *o, int rc,
                          const mosquitto_property *p)
{
    mqtt_sink_t *s = o;

    (void)m; (void)p;
    if (s->connected)
        CDC_WARN(FAC, "connection to %s:%d lost (%s); reconnecting",
                 s->host, s->port, mosquitto_strerror(rc));
    s->connected = 0;
    if (!s->rt.down_since_us)
        s->rt.down_since_us = cdc_now_us();
}

static void on_publish(struct mosquitto *m, void *o, int mid, int rc,
                       const mosquitto_property *p)
{
    mqtt_sink_t *s = o;
    cdc_txn_t *tx = s->by_mid[mid & 0xffff];

    (void)m; (void)p;
    if (!tx)
        return;
    s->by_mid[mid & 0xffff] = NULL;
    s->inflight--;
    if (rc >= 0x80) {
        tx->failed = 1;
        if (!s->fatal) {
            s->fatal = 1;
            cdc_err_set(&s->ferr, CDC_EXIT_DATA,
                        CDC_ERR_F_FATAL | CDC_ERR_F_DATA,
                        "the MQTT broker refused a message: %s (reason %d)",
                        mosquitto_reason_string(rc), rc);
            cdc_err_hint(&s->ferr, "check the user's ACL for mqtt.topic "
                                   "and the broker's message size limit");
        }
        return;
    }
    tx->pending--;
}

/* The handshake failed: an untrusted certificate, not worth retrying. */
static int tls_refused(mqtt_sink_t *s, cdc_err_t *err)
{
    cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                "MQTT broker %s:%d: the TLS handshake failed", s->host,
                s->port);
    cdc_err_hint(err, "mqtt.tls.ca must hold the CA that signed the "
                      "broker's certificate, issued for mqtt.host");
    return -1;
}

/* Connect (first time or again); 0 when CONNACK accepted us. */
static int mq_connect(mqtt_sink_t *s, int first, cdc_err_t *err)
{
    mosquitto_property *props = NULL;
    int64_t end = cdc_now_us() + 10000000;
    int rc;

    s->connack = -1;
    if (s->proto == MQTT_PROTOCOL_V5)
        mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                     (uint32_t)s->session_expiry_s);
    rc = first ? mosquitto_connect_bind_v5(s->m, s->host, s->port,
                                           s->keepalive, NULL, props)
               : mosquitto_reconnect(s->m);
    mosquitto_property_free_all(&props);
    if (rc == MOSQ_ERR_TLS)
        return tls_refused(s, err);
    if (rc != MOSQ_ERR_SUCCESS) {
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                    "cannot connect to MQTT broker %s:%d: %s", s->host,
                    s->port, rc == MOSQ_ERR_ERRNO ? strerror(errno)
                                                  : mosquitto_strerror(rc));
        cdc_err_hint(err, "check mqtt.host, mqtt.port and that the broker "
                          "runs");
        return -1;
    }
    while (s->connack < 0 && cdc_now_us() < end) {
        rc = mosquitto_loop(s->m, 100, 1);
        if (rc != MOSQ_ERR_SUCCESS && s->connack < 0)
            break;
    }
    if (s->connack == 0)
        return 0;
    if (s->connack < 0 && rc == MOSQ_ERR_TLS)
        return tls_refused(s, err);
    if (s->connack < 0 && rc != MOSQ_ERR_SUCCESS)
        return cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                           "MQTT broker %s:%d: %s", s->host, s->port,
                           mosquitto_strerror(rc));
    if (s->connack > 0 && auth_refused(s->proto, s->connack)) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "MQTT broker %s:%d refused the connection: %s", s->host,
                    s->port, connack_str(s->proto, s->connack));
        cdc_err_hint(err, "check mqtt.user, mqtt.password (or "
                          "mqtt.password_file) and mqtt.client_id");
        return -1;
    }
    return cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                       "MQTT broker %s:%d: %s", s->host, s->port,
                       s->connack > 0 ? connack_str(s->proto, s->connack)
                                      : "no CONNACK within 10 s");
}

static void reconnect(mqtt_sink_t *s)
{
    cdc_err_t e;
    int64_t t = cdc_now_us();

    if (s->connected || s->fatal || t < s->rt.retry_at_us)
        return;
    if (!mq_connect(s, 0, &e)) {
        CDC_INFO(FAC, "reconnected to %s:%d; %" PRId64 " message(s) in "
                      "flight are resent", s->host, s->port, s->inflight);
        cdc_msg_retry_ok(&s->rt);
        return;
    }
    if (cdc_msg_retry_failed(&s->rt, &e, t, FAC,
                             "mqtt.reconnect_timeout_ms")) {
        s->fatal = 1;
        s->ferr = e;
    }
}

/* Run the network loop for up to timeout_ms, returning early once
 * acknowledgements came in. */
static void serve(mqtt_sink_t *s, int timeout_ms)
{
    int64_t end = cdc_now_us() + (int64_t)timeout_ms * 1000;
    int64_t before = s->inflight;

    do {
        int64_t left = (end - cdc_now_us()) / 1000;
        reconnect(s);
        if (s->fatal)
            return;
        if (!s->connected) {
            int64_t w = (s->rt.retry_at_us - cdc_now_us()) / 1000;
            if (w > left)
                w = left;
            if (w > 0)
                usleep((useconds_t)w * 1000);
            continue;
        }
        if (mosquitto_loop(s->m, (int)(left > 0 ? left : 0), 64) !=
            MOSQ_ERR_SUCCESS) {
            if (s->connected)
                on_disconnect(s->m, s, MOSQ_ERR_CONN_LOST, NULL);
            s->rt.retry_at_us = 0;
        }
    } while (!s->fatal && s->inflight >= before && cdc_now_us() < end);
}

static void key_text(mqtt_sink_t *s, const cdc_change_t *ch, cdc_buf_t *out)
{
    const cdc_table_t *t = ch->tbl;
    const cdc_value_t *img = ch->after ? ch->after : ch->before;

    for (uint32_t i = 0; i < (t->npk ? t->npk : t->ncols); i++) {
        uint32_t c = t->npk ? t->pk[i] : i;
        cdc_buf_reset(&s->tmp);
        if (img[c].kind == CDC_V_STRING || img[c].kind == CDC_V_DECIMAL)
            cdc_buf_put(&s->tmp, img[c].s, img[c].len);
        else
            cdc_json_value(&s->tmp, &img[c]);
        if (i)
            cdc_buf_putc(out, ',');
        for (size_t j = 0; j < s->tmp.len; j++) {
            char b = s->tmp.p[j];
            cdc_buf_putc(out, b == '+' || b == '#' || b == '/' || !b ? '_'
                                                                     : b);
        }
    }
}

static int publish(mqtt_sink_t *s, cdc_txn_t *tx, const cdc_change_t *ch,
                   cdc_err_t *err)
{
    mosquitto_property *props = NULL;
    int mid = 0, rc;

    cdc_buf_reset(&s->body);
    cdc_buf_reset(&s->top);
    cdc_buf_reset(&s->id);
    cdc_msg_tmpl_expand(&s->top, s->topic, s->fmt.app, ch, MQTT_BAD);
    if (s->retain) {
        cdc_buf_putc(&s->top, '/');
        key_text(s, ch, &s->top);
    }
    if (!(s->retain && ch->op == CDC_OP_DELETE))
        cdc_msg_body(&s->fmt, &s->body, tx, ch);
    cdc_msg_change_id(&s->id, tx, ch);
    if (s->proto == MQTT_PROTOCOL_V5) {
        mosquitto_property_add_string(&props, MQTT_PROP_CONTENT_TYPE,
                                      cdc_msg_content_type(&s->fmt));
        mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY,
                                           "op", cdc_msg_op_word(ch->op));
        mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY,
                                           "position", s->id.p);
    }
    for (;;) {
        rc = mosquitto_publish_v5(s->m, &mid, s->top.p, (int)s->body.len,
                                  s->body.p, s->qos, s->retain != 0, props);
        if (rc != MOSQ_ERR_NO_CONN && rc != MOSQ_ERR_CONN_LOST &&
            rc != MOSQ_ERR_ERRNO)
            break;
        /* not connected (ERRNO: the write found the socket dead, e.g.
         * EPIPE while the broker stops, before the loop noticed): wait
         * for the reconnect and publish again.  libmosquitto may have
         * queued the first copy too and resend it: a duplicate, whose
         * PUBACK (an unknown mid) is ignored; never a loss */
        serve(s, 100);
        if (s->fatal)
            break;
        if (cdc_pipeline_stop) {
            mosquitto_property_free_all(&props);
            return cdc_err_set(err, CDC_EXIT_UNAVAILABLE,
                               CDC_ERR_F_RETRIABLE, "stopped while the MQTT "
                               "broker was unreachable");
        }
    }
    mosquitto_property_free_all(&props);
    if (s->fatal) {
        *err = s->ferr;
        return -1;
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        cdc_err_set(err, rc == MOSQ_ERR_PAYLOAD_SIZE ? CDC_EXIT_DATA
                                                     : CDC_EXIT_FAIL,
                    CDC_ERR_F_FATAL, "MQTT publish to %s failed: %s",
                    s->top.p, mosquitto_strerror(rc));
        return -1;
    }
    if (s->qos == 0) { /* libmosquitto reports QoS 0 as sent at once */
        return 0;
    }
    s->by_mid[mid & 0xffff] = tx;
    s->inflight++;
    return 0;
}

static int mqtt_write(cdc_sink_t *snk, cdc_txn_t *tx, cdc_err_t *err)
{
    mqtt_sink_t *s = (mqtt_sink_t *)snk;

    if (s->fatal) {
        *err = s->ferr;
        return -1;
    }
    tx->pending = s->qos ? (int)tx->nchanges : 0;
    if (tx->skipped)
        tx->pending = 0;
    if (!tx->skipped)
        cdc_msg_txn_begin(&s->fmt, tx);
    for (uint32_t i = 0; !tx->skipped && i < tx->nchanges; i++) {
        while (!s->fatal && s->inflight >= s->max_inflight &&
               !cdc_pipeline_stop)
            serve(s, 50);
        if (s->inflight >= s->max_inflight && !s->fatal)
            return cdc_err_set(err, CDC_EXIT_UNAVAILABLE,
                               CDC_ERR_F_RETRIABLE, "stopped while waiting "
                               "for the MQTT broker");
        if (publish(s, tx, &tx->changes[i], err))
            return -1;
    }
    if (!tx->skipped)
        cdc_msg_txn_end(&s->fmt, tx);
    return 0;
}

static int mqtt_poll(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    mqtt_sink_t *s = (mqtt_sink_t *)snk;

    serve(s, timeout_ms);
    if (s->fatal) {
        *err = s->ferr;
        return -1;
    }
    return 0;
}

static int mqtt_flush(cdc_sink_t *snk, int timeout_ms, cdc_err_t *err)
{
    mqtt_sink_t *s = (mqtt_sink_t *)snk;
    int64_t end = cdc_now_us() + (int64_t)timeout_ms * 1000;

    /* QoS 0: one pass of the loop writes what is queued */
    do
        serve(s, 50);
    while (!s->fatal && s->inflight > 0 && cdc_now_us() < end);
    if (s->fatal) {
        *err = s->ferr;
        return -1;
    }
    if (s->inflight > 0)
        return cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                           "%" PRId64 " MQTT message(s) not acknowledged "
                           "within %d ms", s->inflight, timeout_ms);
    return 0;
}

static void mqtt_destroy(cdc_sink_t *snk)
{
    mqtt_sink_t *s = (mqtt_sink_t *)snk;

    if (!s)
        return;
    if (s->m) {
        if (s->connected) {
            s->connected = 0; /* ours: no "lost" warning */
            mosquitto_disconnect(s->m);
        }
        mosquitto_destroy(s->m);
    }
    cdc_msg_fmt_free(&s->fmt);
    free(s->host); free(s->topic); free(s->client_id);
    free(s->by_mid);
    cdc_buf_free(&s->body); cdc_buf_free(&s->top); cdc_buf_free(&s->id);
    cdc_buf_free(&s->tmp);
    free(s);
}

static int tls_setup(mqtt_sink_t *s, const cdc_conf_t *conf, cdc_err_t *err)
{
    const char *ca = cdc_conf_get(conf, "mqtt.tls.ca", NULL);
    const char *cert = cdc_conf_get(conf, "mqtt.tls.cert", NULL);
    const char *key = cdc_conf_get(conf, "mqtt.tls.key", NULL);
    int verify = 1;

    if (!ca || !*ca)
        return 0;
    if (cdc_conf_get_bool(conf, "mqtt.tls.verify", 1, &verify, err))
        return -1;
    if (mosquitto_tls_set(s->m, ca, NULL, cert, key, NULL) !=
            MOSQ_ERR_SUCCESS ||
        mosquitto_tls_insecure_set(s->m, !verify) != MOSQ_ERR_SUCCESS) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "cannot use the TLS files "
                                             "mqtt.tls.ca / mqtt.tls.cert / "
                                             "mqtt.tls.key");
        cdc_err_hint(err, "give readable PEM files");
        return -1;
    }
    return 0;
}

static cdc_sink_t *mqtt_create(const cdc_conf_t *conf, cdc_err_t *err)
{
    mqtt_sink_t *s = cdc_xcalloc(1, sizeof(*s));
    const char *v, *user, *pass;
    int64_t port, qos, ka;
    int clean = 0, nodelay = 1;
    cdc_buf_t cid = CDC_BUF_INIT;

    s->base.ops = &cdc_sink_mqtt_ops;
    mosquitto_lib_init();
    if (cdc_msg_fmt_init(&s->fmt, conf, err))
        goto fail;
    s->host = cdc_xstrdup(cdc_conf_get(conf, "mqtt.host", "127.0.0.1"));
    s->topic = cdc_xstrdup(cdc_conf_get(conf, "mqtt.topic",
                                        "{source}/{db}/{table}"));
    if (strpbrk(s->topic, MQTT_BAD)) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "mqtt.topic \"%s\": '+' and "
                    "'#' are wildcards, not allowed in a topic to publish "
                    "to", s->topic);
        goto fail;
    }
    v = cdc_conf_get(conf, "mqtt.protocol", "5");
    s->proto = !strcmp(v, "5") ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311;
    cdc_buf_printf(&cid, "autoglm-cdc-%s", s->fmt.app);
    s->client_id = cdc_xstrdup(cdc_conf_get(conf, "mqtt.client_id", cid.p));
    cdc_buf_free(&cid);
    if (cdc_msg_tmpl_check("mqtt.topic", s->topic, err) ||
        cdc_conf_get_int(conf, "mqtt.port", 1883, &port, err) ||
        cdc_conf_get_int(conf, "mqtt.qos", 1, &qos, err) ||
        cdc_conf_get_int(conf, "mqtt.keepalive_s", 60, &ka, err) ||
        cdc_conf_get_int(conf, "mqtt.max_inflight", 1000, &s->max_inflight,
                         err) ||
        cdc_conf_get_int(conf, "mqtt.reconnect_timeout_ms", 300000,
                         &s->rt.timeout_ms, err) ||
        cdc_conf_get_int(conf, "mqtt.session_expiry_s", 86400,
                         &s->session_expiry_s, err) ||
        cdc_conf_get_bool(conf, "mqtt.retain", 0, &s->retain, err) ||
        cdc_conf_get_bool(conf, "mqtt.clean_session", 0, &clean, err) ||
        cdc_conf_get_bool(conf, "mqtt.tcp_nodelay", 1, &nodelay, err))
        goto fail;
    s->port = (int)port;
    s->qos = (int)qos;
    s->keepalive = (int)ka;
    if (s->max_inflight > 65000)
        s->max_inflight = 65000;
    s->by_mid = cdc_xcalloc(65536, sizeof(*s->by_mid));
    s->m = mosquitto_new(s->client_id, clean != 0, s);
    if (!s->m) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "cannot create an MQTT client "
                    "with client id \"%s\"", s->client_id);
        goto fail;
    }
    mosquitto_int_option(s->m, MOSQ_OPT_PROTOCOL_VERSION, s->proto);
    mosquitto_int_option(s->m, MOSQ_OPT_TCP_NODELAY, nodelay);
    mosquitto_int_option(s->m, MOSQ_OPT_SEND_MAXIMUM, (int)s->max_inflight);
    mosquitto_connect_v5_callback_set(s->m, on_connect);
    mosquitto_disconnect_v5_callback_set(s->m, on_disconnect);
    mosquitto_publish_v5_callback_set(s->m, on_publish);
    user = cdc_conf_get(conf, "mqtt.user", NULL);
    pass = cdc_conf_get(conf, "mqtt.password", NULL);
    if (user && mosquitto_username_pw_set(s->m, user, pass)) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "mqtt.user is not valid UTF-8");
        goto fail;
    }
    if (tls_setup(s, conf, err) || mq_connect(s, 1, err))
        goto fail;
    CDC_INFO(FAC, "connected to %s:%d as %s (MQTT %s, QoS %d%s)", s->host,
             s->port, s->client_id,
             s->proto == MQTT_PROTOCOL_V5 ? "5" : "3.1.1", s->qos,
             s->retain ? ", retained per key" : "");
    return &s->base;
fail:
    mqtt_destroy(&s->base);
    return NULL;
}

const cdc_sink_ops_t cdc_sink_mqtt_ops = {
    .name = "mqtt",
    .abi = CDC_PLUGIN_ABI,
    .create = mqtt_create,
    .write = mqtt_write,
    .poll = mqtt_poll,
    .flush = mqtt_flush,
    .destroy = mqtt_destroy,
};
