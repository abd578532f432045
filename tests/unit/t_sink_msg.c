/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_sink_msg.c - what the message sinks share (sinks/msg.c) and the XML
 * envelope (sinks/xml.c): templates, change ids, backoff bounds, and XML
 * that libxml2's own parser reads back with the exact values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "cdc/conf.h"
#include "cdc/util.h"
#include "sinks/msg.h"
#include "sinks/xml.h"
#include "tests/unit/cdc_test.h"

static cdc_table_t *mk_table(void)
{
    cdc_table_t *t = cdc_table_new("shop", "users", 4);
    const char *names[] = {"userId", "userName", "isActive", "1st col"};
    for (int i = 0; i < 4; i++)
        t->cols[i].name = cdc_xstrdup(names[i]);
    return t;
}

static cdc_txn_t *mk_txn(cdc_table_t *t, char op)
{
    cdc_txn_t *tx = cdc_txn_new();
    cdc_change_t *ch;

    tx->commit_us = 1700000000000000LL;
    tx->file = "mariadb-bin.000002";
    ch = cdc_txn_add(tx, op, t);
    ch->pos = 4711;
    ch->row = 2;
    ch->after = cdc_txn_values(tx, 4);
    ch->after[0] = (cdc_value_t){.kind = CDC_V_INT, .u.i = 42};
    ch->after[1] = (cdc_value_t){.kind = CDC_V_STRING,
                                 .s = "<Ann & \"Bo\">]]>", .len = 15};
    ch->after[2] = (cdc_value_t){.kind = CDC_V_INT, .u.i = 1};
    ch->after[3] = (cdc_value_t){.kind = CDC_V_STRING, .s = "a\001b",
                                 .len = 3};
    return tx;
}

CDC_TEST(template_expand_and_check)
{
    cdc_table_t *t = mk_table();
    cdc_txn_t *tx = mk_txn(t, 'u');
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_err_t err;

    T_EQ_INT(cdc_msg_tmpl_check("k", "{db}.{table}.{op}", &err), 0);
    cdc_msg_tmpl_expand(&b, "{source}/{db}.{table}.{op}", "app", &tx->changes[0], "");
    T_EQ_STR(b.p, "app/shop.users.update");
    T_EQ_INT(cdc_msg_tmpl_check("rabbitmq.routing_key", "{db}.{tabel}", &err), -1);
    T_ASSERT(strstr(err.msg, "rabbitmq.routing_key") != NULL);
    T_ASSERT(strstr(err.msg, "{tabel}") != NULL);
    T_EQ_INT(err.code, CDC_EXIT_CONFIG);
    T_EQ_INT(cdc_msg_tmpl_check("k", "a}b", &err), -1);
    /* MQTT: wildcards in names become '_' */
    free(t->name);
    t->name = cdc_xstrdup("a+b#c");
    cdc_buf_reset(&b);
    cdc_msg_tmpl_expand(&b, "{db}/{table}", "x", &tx->changes[0], "+#/");
    T_EQ_STR(b.p, "shop/a_b_c");
    cdc_buf_free(&b);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
}

CDC_TEST(change_id)
{
    cdc_table_t *t = mk_table();
    cdc_txn_t *tx = mk_txn(t, 'c');
    cdc_buf_t b = CDC_BUF_INIT;

    cdc_msg_change_id(&b, tx, &tx->changes[0]);
    T_EQ_STR(b.p, "mariadb-bin.000002:4711:2");
    tx->file = NULL;
    tx->changes[0].pos = 0x16B374D48ULL;
    cdc_buf_reset(&b);
    cdc_msg_change_id(&b, tx, &tx->changes[0]);
    T_EQ_STR(b.p, "1/6B374D48:2");
    cdc_buf_free(&b);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
}

CDC_TEST(backoff_bounds)
{
    for (int a = 0; a < 40; a++)
        for (int k = 0; k < 50; k++) {
            int d = cdc_msg_backoff_ms(a, 100, 5000);
            int full = a >= 6 ? 5000 : 100 << a;
            if (full > 5000)
                full = 5000;
            T_ASSERT(d >= full / 2 && d <= full);
        }
}

static const char *child_text(xmlNode *n, const char *name, xmlNode **out)
{
    for (xmlNode *c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name)) {
            if (out)
                *out = c;
            return c->children && c->children->type == XML_TEXT_NODE
                       ? (const char *)c->children->content
                       : "";
        }
    return NULL;
}

CDC_TEST(xml_envelope_roundtrip)
{
    cdc_table_t *t = mk_table();
    cdc_txn_t *tx = mk_txn(t, 'c');
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_conf_t *conf = cdc_conf_new();
    cdc_err_t err;
    cdc_xml_opts_t *xo;
    xmlDoc *doc;
    xmlNode *root, *after = NULL, *odd = NULL;
    xmlChar *attr;

    cdc_conf_set(conf, "xml.root", "user", NULL);
    cdc_conf_set(conf, "xml.names", "userId=id, users.userName=name,isActive=status", NULL);
    cdc_conf_set(conf, "xml.values", "isActive:1=enabled,isActive:0=disabled", NULL);
    xo = cdc_xml_opts_new(conf, &err);
    T_ASSERT(xo != NULL);
    cdc_xml_envelope(&b, xo, "crm", tx, &tx->changes[0]);
    doc = xmlReadMemory(b.p, (int)b.len, "x.xml", NULL, XML_PARSE_NONET);
    T_ASSERT(doc != NULL);
    root = xmlDocGetRootElement(doc);
    T_EQ_STR((const char *)root->name, "user");
    attr = xmlGetProp(root, BAD_CAST "op");
    T_EQ_STR((const char *)attr, "insert");
    xmlFree(attr);
    attr = xmlGetProp(root, BAD_CAST "position");
    T_EQ_STR((const char *)attr, "mariadb-bin.000002:4711:2");
    xmlFree(attr);
    T_ASSERT(child_text(root, "after", &after) != NULL);
    T_EQ_STR(child_text(after, "id", NULL), "42");
    T_EQ_STR(child_text(after, "name", NULL), "<Ann & \"Bo\">]]>");
    T_EQ_STR(child_text(after, "status", NULL), "enabled");
    /* a control character cannot be XML text: base64, value intact */
    T_EQ_STR(child_text(after, "_1st_col", &odd), "YQFi");
    attr = xmlGetProp(odd, BAD_CAST "encoding");
    T_EQ_STR((const char *)attr, "base64");
    xmlFree(attr);
    T_ASSERT(child_text(root, "before", NULL) == NULL);
    xmlFreeDoc(doc);

    /* bad entries name the key */
    cdc_xml_opts_free(xo);
    cdc_conf_set(conf, "xml.values", "isActive=1", NULL);
    T_ASSERT(cdc_xml_opts_new(conf, &err) == NULL);
    T_ASSERT(strstr(err.msg, "xml.values") != NULL);
    cdc_conf_destroy(conf);
    cdc_buf_free(&b);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
}

/* The file sink's form: one line per document, and a value holding
 * newlines (and \r, <, &) reads back byte for byte. */
CDC_TEST(xml_envelope_one_line)
{
    cdc_table_t *t = mk_table();
    cdc_txn_t *tx = mk_txn(t, 'c');
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_conf_t *conf = cdc_conf_new();
    cdc_err_t err;
    cdc_xml_opts_t *xo;
    xmlDoc *doc;
    xmlNode *root, *after = NULL;
    static const char v[] = "line 1\nline 2\r\n<3 & 4>\n";
    static const char pre[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><change ";

    tx->changes[0].after[1].s = v;
    tx->changes[0].after[1].len = sizeof(v) - 1;
    xo = cdc_xml_opts_new(conf, &err);
    T_ASSERT(xo != NULL);
    cdc_xml_envelope_line(&b, xo, "crm", tx, &tx->changes[0]);
    T_ASSERT(memchr(b.p, '\n', b.len) == NULL);
    T_ASSERT(strncmp(b.p, pre, strlen(pre)) == 0);
    doc = xmlReadMemory(b.p, (int)b.len, "x.xml", NULL, XML_PARSE_NONET);
    T_ASSERT(doc != NULL);
    root = xmlDocGetRootElement(doc);
    T_ASSERT(child_text(root, "after", &after) != NULL);
    T_EQ_STR(child_text(after, "userName", NULL), v);
    T_EQ_STR(child_text(after, "userId", NULL), "42");
    xmlFreeDoc(doc);
    cdc_xml_opts_free(xo);
    cdc_conf_destroy(conf);
    cdc_buf_free(&b);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
}

/* format=debezium through the message sinks takes the debezium.* settings
 * (here: schemas, so the body is {"schema","payload"}), and refuses a bad
 * mode like the Kafka sink. */
CDC_TEST(debezium_settings)
{
    cdc_table_t *t = mk_table();
    cdc_txn_t *tx = mk_txn(t, 'c');
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_conf_t *conf = cdc_conf_new();
    cdc_err_t err;
    cdc_msg_fmt_t f;

    cdc_conf_set(conf, "format", "debezium", NULL);
    cdc_conf_set(conf, "debezium.schemas", "true", NULL);
    T_EQ_INT(cdc_msg_fmt_init(&f, conf, &err), 0);
    cdc_msg_body(&f, &b, tx, &tx->changes[0]);
    T_ASSERT(b.p && !strncmp(b.p, "{\"schema\":{", 11));
    T_ASSERT(b.p && strstr(b.p, ",\"payload\":{\"before\":null") != NULL);
    cdc_msg_fmt_free(&f);
    cdc_conf_set(conf, "debezium.decimal.handling.mode", "exact", NULL);
    T_EQ_INT(cdc_msg_fmt_init(&f, conf, &err), -1);
    cdc_msg_fmt_free(&f);
    cdc_conf_destroy(conf);
    cdc_buf_free(&b);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
}

CDC_TEST_MAIN()
