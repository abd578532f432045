/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msg.c - rendering shared by the message sinks (see msg.h).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/flight.h"
#include "cdc/log.h"
#include "cdc/util.h"
#include "sinks/msg.h"
#include "sinks/xml.h"

int cdc_msg_fmt_init(cdc_msg_fmt_t *f, const cdc_conf_t *conf,
                     cdc_err_t *err)
{
    const char *fmt = cdc_conf_get(conf, "format", "autoglm");

    memset(f, 0, sizeof(*f));
    if (!strcmp(fmt, "xml")) {
        f->xml = 1;
        f->xo = cdc_xml_opts_new(conf, err);
        if (!f->xo)
            return -1;
    } else if (cdc_format_parse(fmt, &f->env.format)) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "unknown format '%s'", fmt);
        cdc_err_hint(err, "use --format autoglm, debezium or xml");
        return -1;
    } else if (f->env.format == CDC_FMT_DEBEZIUM &&
               cdc_dbz_opts_conf(&f->env, conf, err) < 0)
        return -1;
    f->app = cdc_xstrdup(cdc_conf_app_id(conf));
    f->env.application_id = f->app;
    if (!f->xml && f->env.format == CDC_FMT_DEBEZIUM && f->env.txmeta)
        f->env.txs = &f->txs;
    return 0;
}

int cdc_msg_txn_begin(cdc_msg_fmt_t *f, const cdc_txn_t *tx)
{
    if (!f->env.txs)
        return 0;
    cdc_dbz_txs_begin(f->env.txs, tx);
    return 1;
}

void cdc_msg_txn_end(cdc_msg_fmt_t *f, const cdc_txn_t *tx)
{
    if (f->env.txs)
        cdc_dbz_txs_end(f->env.txs, tx);
}

void cdc_msg_fmt_free(cdc_msg_fmt_t *f)
{
    cdc_xml_opts_free(f->xo);
    cdc_dbz_txs_free(&f->txs);
    free(f->app);
    memset(f, 0, sizeof(*f));
}

void cdc_msg_body(const cdc_msg_fmt_t *f, cdc_buf_t *out,
                  const cdc_txn_t *tx, const cdc_change_t *ch)
{
    if (f->xml)
        cdc_xml_envelope(out, f->xo, f->app, tx, ch);
    else
        cdc_envelope_write(out, &f->env, tx, ch);
}

const char *cdc_msg_content_type(const cdc_msg_fmt_t *f)
{
    return f->xml ? "application/xml" : "application/json";
}

const char *cdc_msg_op_word(char op)
{
    switch (op) {
    case CDC_OP_CREATE: return "insert";
    case CDC_OP_UPDATE: return "update";
    case CDC_OP_DELETE: return "delete";
    case CDC_OP_READ: return "read";
    case CDC_OP_TRUNCATE: return "truncate";
    }
    return "unknown";
}

/* index of the placeholder at p ("{db}" ...), its length in *n; -1 */
static int placeholder(const char *p, size_t *n)
{
    static const char *const names[] = {"{source}", "{db}", "{table}",
                                        "{op}"};
    for (int i = 0; i < 4; i++) {
        size_t l = strlen(names[i]);
        if (!strncmp(p, names[i], l)) {
            *n = l;
            return i;
        }
    }
    return -1;
}

int cdc_msg_tmpl_check(const char *key, const char *tmpl, cdc_err_t *err)
{
    for (const char *p = tmpl; *p; p++) {
        size_t n;
        if (*p == '}') {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                        "%s \"%s\": \"}\" without \"{\"", key, tmpl);
            goto hint;
        }
        if (*p != '{')
            continue;
        if (placeholder(p, &n) < 0) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                        "%s \"%s\": unknown placeholder at \"%.16s\"", key,
                        tmpl, p);
            goto hint;
        }
        p += n - 1;
    }
    return 0;
hint:
    cdc_err_hint(err, "placeholders are {source}, {db}, {table} and {op}");
    return -1;
}

static void put_clean(cdc_buf_t *out, const char *s, const char *bad)
{
    for (; *s; s++)
        cdc_buf_putc(out, strchr(bad, *s) ? '_' : *s);
}

void cdc_msg_tmpl_expand(cdc_buf_t *out, const char *tmpl,
                         const char *source, const cdc_change_t *ch,
                         const char *bad)
{
    const char *p = tmpl;

    while (*p) {
        size_t n;
        int i = *p == '{' ? placeholder(p, &n) : -1;
        if (i < 0) {
            cdc_buf_putc(out, *p++);
            continue;
        }
        put_clean(out,
                  i == 0   ? source
                  : i == 1 ? ch->tbl->db
                  : i == 2 ? ch->tbl->name
                           : cdc_msg_op_word(ch->op),
                  bad);
        p += n;
    }
}

void cdc_msg_change_id(cdc_buf_t *out, const cdc_txn_t *tx,
                       const cdc_change_t *ch)
{
    if (tx->file && tx->file[0])
        cdc_buf_printf(out, "%s:%" PRIu64 ":%u", tx->file, ch->pos, ch->row);
    else
        cdc_buf_printf(out, "%X/%X:%u", (unsigned)(ch->pos >> 32),
                       (unsigned)ch->pos, ch->row);
}

int cdc_msg_backoff_ms(int attempt, int base_ms, int cap_ms)
{
    /* the engine's one backoff policy (cdc/flight.h) */
    return (int)cdc_backoff_delay(attempt, base_ms, cap_ms,
                                  (unsigned)random());
}

int cdc_msg_retry_failed(cdc_msg_retry_t *r, cdc_err_t *e, int64_t t,
                         const char *fac, const char *timeout_key)
{
    if (!(e->flags & CDC_ERR_F_RETRIABLE))
        return 1;
    if (!r->down_since_us)
        r->down_since_us = t;
    if (t - r->down_since_us > r->timeout_ms * 1000) {
        cdc_err_hint(e, "the broker stayed unreachable for %" PRId64
                     " ms (%s)", r->timeout_ms, timeout_key);
        return 1;
    }
    if (r->attempt % 10 == 0)
        cdc_log_err(fac, e);
    r->retry_at_us = t + 1000LL * cdc_msg_backoff_ms(r->attempt++, 200,
                                                      10000);
    return 0;
}

void cdc_msg_retry_ok(cdc_msg_retry_t *r)
{
    r->down_since_us = 0;
    r->attempt = 0;
}
