/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xml.c - format=xml (see xml.h).  libxml2's writer over our own
 * cdc_buf_t, through an xmlOutputBuffer with write callbacks.
 */
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlwriter.h>

#include "cdc/envelope.h"
#include "cdc/util.h"
#include "sinks/msg.h"
#include "sinks/xml.h"

typedef struct xml_pair {
    char *from; /* "col", "table.col" or "db.table.col"; for values
                 * "col:value" */
    char *to;
} xml_pair_t;

struct cdc_xml_opts {
    char *root;
    xml_pair_t *names, *values;
    size_t nnames, nvalues;
};

static int load_pairs(const cdc_conf_t *conf, const char *key,
                      xml_pair_t **out, size_t *n, cdc_err_t *err)
{
    const char *v = cdc_conf_get(conf, key, NULL);
    char *copy, *save = NULL;

    if (!v || !*v)
        return 0;
    copy = cdc_xstrdup(v);
    for (char *t = strtok_r(copy, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        char *eq;
        while (*t == ' ')
            t++;
        eq = strrchr(t, '=');
        if (!eq || eq == t || (!strcmp(key, "xml.values") && !strchr(t, ':'))) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: bad entry \"%s\"",
                        key, t);
            cdc_err_hint(err, !strcmp(key, "xml.values")
                                  ? "write column:value=replacement"
                                  : "write [db.]table.column=element or "
                                    "column=element");
            free(copy);
            return -1;
        }
        *out = cdc_xrealloc(*out, (*n + 1) * sizeof(**out));
        (*out)[*n].from = cdc_xstrndup(t, (size_t)(eq - t));
        (*out)[*n].to = cdc_xstrdup(eq + 1);
        (*n)++;
    }
    free(copy);
    return 0;
}

cdc_xml_opts_t *cdc_xml_opts_new(const cdc_conf_t *conf, cdc_err_t *err)
{
    cdc_xml_opts_t *xo = cdc_xcalloc(1, sizeof(*xo));

    xo->root = cdc_xstrdup(cdc_conf_get(conf, "xml.root", "change"));
    if (load_pairs(conf, "xml.names", &xo->names, &xo->nnames, err) ||
        load_pairs(conf, "xml.values", &xo->values, &xo->nvalues, err)) {
        cdc_xml_opts_free(xo);
        return NULL;
    }
    return xo;
}

void cdc_xml_opts_free(cdc_xml_opts_t *xo)
{
    if (!xo)
        return;
    for (size_t i = 0; i < xo->nnames; i++) {
        free(xo->names[i].from);
        free(xo->names[i].to);
    }
    for (size_t i = 0; i < xo->nvalues; i++) {
        free(xo->values[i].from);
        free(xo->values[i].to);
    }
    free(xo->names);
    free(xo->values);
    free(xo->root);
    free(xo);
}

static int out_write(void *ctx, const char *p, int n)
{
    cdc_buf_put(ctx, p, (size_t)n);
    return n;
}

/* legal XML name (ASCII subset; other bytes of UTF-8 names are kept) */
static void put_name(cdc_buf_t *b, const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9') || *s == '-' || *s == '.')
        cdc_buf_putc(b, '_');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int ok = c >= 0x80 || (c >= 'a' && c <= 'z') ||
                 (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || c == '.';
        cdc_buf_putc(b, ok ? (char)c : '_');
    }
}

static const char *col_name(const cdc_xml_opts_t *xo, const cdc_table_t *t,
                            const char *col, cdc_buf_t *tmp)
{
    for (size_t i = 0; i < xo->nnames; i++) {
        const char *f = xo->names[i].from;
        size_t dl = strlen(t->db), tl = strlen(t->name);
        if (!strcmp(f, col) ||
            (!strncmp(f, t->name, tl) && f[tl] == '.' &&
             !strcmp(f + tl + 1, col)) ||
            (!strncmp(f, t->db, dl) && f[dl] == '.' &&
             !strncmp(f + dl + 1, t->name, tl) && f[dl + 1 + tl] == '.' &&
             !strcmp(f + dl + tl + 2, col)))
            return xo->names[i].to;
    }
    cdc_buf_reset(tmp);
    put_name(tmp, col);
    return tmp->p;
}

/* 1 if s is UTF-8 that XML 1.0 can carry as character data */
static int xml_text_ok(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return 0;
            i++;
            continue;
        }
        if (c >= 0xc2 && c < 0xe0) { k = 1; cp = c & 0x1f; }
        else if (c >= 0xe0 && c < 0xf0) { k = 2; cp = c & 0x0f; }
        else if (c >= 0xf0 && c < 0xf5) { k = 3; cp = c & 0x07; }
        else return 0;
        if (i + k >= n)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            unsigned char d = (unsigned char)s[i + j];
            if ((d & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (d & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
            return 0;
        i += k + 1;
    }
    return 1;
}

static void write_value(xmlTextWriterPtr w, const cdc_xml_opts_t *xo,
                        const char *col, const cdc_value_t *v, cdc_buf_t *tmp)
{
    const char *text = NULL;
    int b64 = 0;

    cdc_buf_reset(tmp);
    switch (v->kind) {
    case CDC_V_NULL:
        xmlTextWriterWriteAttribute(w, BAD_CAST "null", BAD_CAST "true");
        return;
    case CDC_V_UNCHANGED:
        xmlTextWriterWriteAttribute(w, BAD_CAST "unchanged", BAD_CAST "true");
        return;
    case CDC_V_STRING:
    case CDC_V_DECIMAL:
    case CDC_V_JSON:
        if (xml_text_ok(v->s, v->len) && strlen(v->s) == v->len)
            text = v->s;
        else
            b64 = 1;
        break;
    case CDC_V_BYTES:
        b64 = 1;
        break;
    default:
        cdc_json_value(tmp, v); /* numbers and true/false */
        text = tmp->p;
    }
    if (b64) {
        cdc_buf_base64(tmp, (const uint8_t *)v->s, v->len);
        xmlTextWriterWriteAttribute(w, BAD_CAST "encoding", BAD_CAST "base64");
        xmlTextWriterWriteString(w, BAD_CAST tmp->p);
        return;
    }
    for (size_t i = 0; i < xo->nvalues; i++) {
        const char *f = xo->values[i].from, *c = strchr(f, ':');
        if ((size_t)(c - f) == strlen(col) && !strncmp(f, col, (size_t)(c - f)) &&
            !strcmp(c + 1, text)) {
            text = xo->values[i].to;
            break;
        }
    }
    xmlTextWriterWriteString(w, BAD_CAST text);
}

static void write_image(xmlTextWriterPtr w, const cdc_xml_opts_t *xo,
                        const char *tag, const cdc_table_t *t,
                        const cdc_value_t *vals, cdc_buf_t *tmp)
{
    cdc_buf_t nm = CDC_BUF_INIT;

    if (!vals)
        return;
    xmlTextWriterStartElement(w, BAD_CAST tag);
    for (uint32_t i = 0; i < t->ncols; i++) {
        if (vals[i].kind == CDC_V_ABSENT)
            continue;
        xmlTextWriterStartElement(
            w, BAD_CAST col_name(xo, t, t->cols[i].name, &nm));
        write_value(w, xo, t->cols[i].name, &vals[i], tmp);
        xmlTextWriterEndElement(w);
    }
    xmlTextWriterEndElement(w);
    cdc_buf_free(&nm);
}

void cdc_xml_envelope(cdc_buf_t *out, const cdc_xml_opts_t *xo,
                      const char *app, const cdc_txn_t *tx,
                      const cdc_change_t *ch)
{
    xmlOutputBufferPtr ob = xmlOutputBufferCreateIO(out_write, NULL, out,
                                                    NULL);
    xmlTextWriterPtr w = xmlNewTextWriter(ob);
    cdc_buf_t tmp = CDC_BUF_INIT, root = CDC_BUF_INIT;

    xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL);
    if (!strcmp(xo->root, "{table}"))
        put_name(&root, ch->tbl->name);
    else
        put_name(&root, xo->root);
    xmlTextWriterStartElement(w, BAD_CAST root.p);
    xmlTextWriterWriteAttribute(w, BAD_CAST "op",
                                BAD_CAST cdc_msg_op_word(ch->op));
    xmlTextWriterWriteAttribute(w, BAD_CAST "db", BAD_CAST ch->tbl->db);
    xmlTextWriterWriteAttribute(w, BAD_CAST "table", BAD_CAST ch->tbl->name);
    cdc_msg_change_id(&tmp, tx, ch);
    xmlTextWriterWriteAttribute(w, BAD_CAST "position", BAD_CAST tmp.p);
    xmlTextWriterWriteAttribute(w, BAD_CAST "application_id", BAD_CAST app);
    cdc_buf_reset(&tmp);
    cdc_json_iso_ms(&tmp, tx->commit_us);
    xmlTextWriterWriteAttribute(w, BAD_CAST "commit_ts", BAD_CAST tmp.p);
    write_image(w, xo, "before", ch->tbl, ch->before, &tmp);
    write_image(w, xo, "after", ch->tbl, ch->after, &tmp);
    xmlTextWriterEndDocument(w);
    xmlFreeTextWriter(w); /* flushes and closes ob */
    if (out->len && out->p[out->len - 1] == '\n')
        out->p[--out->len] = '\0';
    cdc_buf_free(&tmp);
    cdc_buf_free(&root);
}

void cdc_xml_envelope_line(cdc_buf_t *out, const cdc_xml_opts_t *xo,
                           const char *app, const cdc_txn_t *tx,
                           const cdc_change_t *ch)
{
    cdc_buf_t doc = CDC_BUF_INIT;
    size_t i = 0;

    cdc_xml_envelope(&doc, xo, app, tx, ch);
    /* the declaration ends in "?>\n": whitespace before the root that
     * may go; every later newline is inside the root element, and the
     * writer escapes them in attributes, so these are text content */
    if (doc.len > 2 && !strncmp(doc.p, "<?xml", 5)) {
        const char *e = strstr(doc.p, "?>");
        if (e) {
            i = (size_t)(e - doc.p) + 2;
            cdc_buf_put(out, doc.p, i);
            while (i < doc.len && doc.p[i] == '\n')
                i++;
        }
    }
    for (; i < doc.len; i++) {
        if (doc.p[i] == '\n')
            cdc_buf_puts(out, "&#10;");
        else
            cdc_buf_putc(out, doc.p[i]);
    }
    cdc_buf_free(&doc);
}
