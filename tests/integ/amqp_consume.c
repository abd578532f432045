/* SPDX-License-Identifier: Apache-2.0 */
/*
 * amqp_consume - test helper: what a real RabbitMQ holds, one JSON line
 * per message.
 *
 *   amqp_consume URL EXCHANGE QUEUE BINDKEY declare
 *       declare the durable topic exchange and a durable queue bound with
 *       BINDKEY (so mandatory publishes have a route), then exit
 *   amqp_consume URL EXCHANGE QUEUE BINDKEY drain IDLE_MS
 *       consume QUEUE, printing
 *       {"rk":..,"id":..,"app":..,"type":..,"persistent":0|1,
 *        "headers":{..},"body":".."}
 *       and acking each, until IDLE_MS pass without a message
 *   amqp_consume URL EXCHANGE QUEUE BINDKEY delete
 *       delete QUEUE
 * Exit 0, or 1 with a message on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "cdc/buf.h"
#include "cdc/envelope.h"

static void die_rpc(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return;
    fprintf(stderr, "amqp_consume: %s failed (reply type %d, %s)\n", what,
            r.reply_type,
            r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                ? amqp_error_string2(r.library_error)
                : "server exception");
    exit(1);
}

static void jbytes(cdc_buf_t *b, amqp_bytes_t x)
{
    cdc_json_string(b, x.bytes ? x.bytes : "", x.len);
}

int main(int argc, char **argv)
{
    struct amqp_connection_info ci;
    amqp_connection_state_t c;
    amqp_socket_t *sock;
    char *url;
    int drain;

    if (argc < 6 || (!strcmp(argv[5], "drain") && argc < 7)) {
        fprintf(stderr, "usage: amqp_consume URL EXCHANGE QUEUE BINDKEY "
                        "declare|delete|drain IDLE_MS\n");
        return 2;
    }
    drain = !strcmp(argv[5], "drain");
    url = strdup(argv[1]);
    amqp_default_connection_info(&ci);
    if (amqp_parse_url(url, &ci)) {
        fprintf(stderr, "amqp_consume: bad URL\n");
        return 1;
    }
    c = amqp_new_connection();
    sock = amqp_tcp_socket_new(c);
    if (amqp_socket_open(sock, ci.host, ci.port)) {
        fprintf(stderr, "amqp_consume: cannot connect to %s:%d\n", ci.host,
                ci.port);
        return 1;
    }
    die_rpc(amqp_login(c, *ci.vhost ? ci.vhost : "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                       ci.user, ci.password), "login");
    amqp_channel_open(c, 1);
    die_rpc(amqp_get_rpc_reply(c), "channel.open");
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(argv[2]),
                          amqp_cstring_bytes("topic"), 0, 1, 0, 0,
                          amqp_empty_table);
    die_rpc(amqp_get_rpc_reply(c), "exchange.declare");
    amqp_queue_declare(c, 1, amqp_cstring_bytes(argv[3]), 0, 1, 0, 0,
                       amqp_empty_table);
    die_rpc(amqp_get_rpc_reply(c), "queue.declare");
    amqp_queue_bind(c, 1, amqp_cstring_bytes(argv[3]),
                    amqp_cstring_bytes(argv[2]), amqp_cstring_bytes(argv[4]),
                    amqp_empty_table);
    die_rpc(amqp_get_rpc_reply(c), "queue.bind");
    if (!strcmp(argv[5], "delete")) {
        amqp_queue_delete(c, 1, amqp_cstring_bytes(argv[3]), 0, 0);
        die_rpc(amqp_get_rpc_reply(c), "queue.delete");
    }
    if (drain) {
        long idle = atol(argv[6]);
        cdc_buf_t b = CDC_BUF_INIT;
        amqp_basic_qos(c, 1, 0, 1000, 0);
        amqp_basic_consume(c, 1, amqp_cstring_bytes(argv[3]),
                           amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
        die_rpc(amqp_get_rpc_reply(c), "basic.consume");
        for (;;) {
            amqp_envelope_t env;
            struct timeval tv = {idle / 1000, (idle % 1000) * 1000};
            amqp_rpc_reply_t r;
            amqp_basic_properties_t *p;

            amqp_maybe_release_buffers(c);
            r = amqp_consume_message(c, &env, &tv, 0);
            if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                r.library_error == AMQP_STATUS_TIMEOUT)
                break;
            die_rpc(r, "consume");
            p = &env.message.properties;
            cdc_buf_reset(&b);
            cdc_buf_puts(&b, "{\"rk\":");
            jbytes(&b, env.routing_key);
            cdc_buf_puts(&b, ",\"id\":");
            jbytes(&b, p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG
                           ? p->message_id : amqp_empty_bytes);
            cdc_buf_puts(&b, ",\"app\":");
            jbytes(&b, p->_flags & AMQP_BASIC_APP_ID_FLAG ? p->app_id
                                                           : amqp_empty_bytes);
            cdc_buf_puts(&b, ",\"type\":");
            jbytes(&b, p->_flags & AMQP_BASIC_TYPE_FLAG ? p->type
                                                         : amqp_empty_bytes);
            cdc_buf_printf(&b, ",\"persistent\":%d,\"headers\":{",
                           p->delivery_mode == AMQP_DELIVERY_PERSISTENT);
            for (int i = 0; (p->_flags & AMQP_BASIC_HEADERS_FLAG) &&
                            i < p->headers.num_entries; i++) {
                amqp_table_entry_t *e = &p->headers.entries[i];
                if (i)
                    cdc_buf_putc(&b, ',');
                jbytes(&b, e->key);
                cdc_buf_putc(&b, ':');
                if (e->value.kind == AMQP_FIELD_KIND_UTF8 ||
                    e->value.kind == AMQP_FIELD_KIND_BYTES)
                    jbytes(&b, e->value.value.bytes);
                else
                    cdc_buf_puts(&b, "null");
            }
            cdc_buf_puts(&b, "},\"body\":");
            jbytes(&b, env.message.body);
            cdc_buf_puts(&b, "}\n");
            fwrite(b.p, 1, b.len, stdout);
            amqp_basic_ack(c, 1, env.delivery_tag, 0);
            amqp_destroy_envelope(&env);
        }
        cdc_buf_free(&b);
    }
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    free(url);
    return 0;
}
