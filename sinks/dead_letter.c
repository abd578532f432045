/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dead_letter.c - lossless dead letters (dead_letter.h).
 *
 * Encoding, one JSON object:
 *   {"v":1,"db":..,"table":..,"op":"u","connector":..,"commit_us":N,
 *    "file":..,"offset":N,"lsn":N,"gtid":..,"pos":N,"row":N,"idx":N,
 *    "cols":[names],"pk":[indexes],"before":[values]|null,"after":..}
 * A value is [kind] (absent, unchanged, NULL) or [kind, "text"]: integers
 * in decimal, doubles in C99 hex-float (%a, exact), booleans 0/1, and the
 * bytes of strings, decimals, JSON and binary values in hex.  Numbers
 * above 2^53 are strings, so no JSON reader rounds them.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "cdc/checkpoint.h"
#include "cdc/envelope.h"
#include "cdc/util.h"
#include "sinks/dead_letter.h"

int cdc_dl_conf(const cdc_conf_t *conf, int *dead, const char **table,
                cdc_err_t *err)
{
    const char *m = cdc_conf_get(conf, "errors.mode", "stop");

    *table = cdc_conf_get(conf, "errors.dead_letter_table", CDC_DL_TABLE);
    if (!strcmp(m, "stop"))
        *dead = 0;
    else if (!strcmp(m, "dead-letter"))
        *dead = 1;
    else {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "errors.mode: unknown mode '%s'",
                    m);
        cdc_err_hint(err, "use stop (the default: exit 65 at a change that "
                     "cannot be applied) or dead-letter");
        return -1;
    }
    if (!**table) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "errors.dead_letter_table is "
                    "empty");
        return -1;
    }
    return 0;
}

/* ---- encoding ----------------------------------------------------------- */

static void hex(cdc_buf_t *b, const char *s, size_t n)
{
    static const char d[] = "0123456789abcdef";
    cdc_buf_grow(b, 2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        b->p[b->len++] = d[(unsigned char)s[i] >> 4];
        b->p[b->len++] = d[(unsigned char)s[i] & 15];
    }
}

static void enc_image(cdc_buf_t *b, const cdc_value_t *row, uint32_t n)
{
    if (!row) {
        cdc_buf_puts(b, "null");
        return;
    }
    cdc_buf_putc(b, '[');
    for (uint32_t i = 0; i < n; i++) {
        const cdc_value_t *v = &row[i];
        cdc_buf_printf(b, "%s[%u", i ? "," : "", v->kind);
        switch (v->kind) {
        case CDC_V_BOOL: cdc_buf_printf(b, ",\"%d\"", v->u.b != 0); break;
        case CDC_V_INT: cdc_buf_printf(b, ",\"%" PRId64 "\"", v->u.i); break;
        case CDC_V_UINT: cdc_buf_printf(b, ",\"%" PRIu64 "\"", v->u.u); break;
        case CDC_V_FLOAT:
        case CDC_V_DOUBLE: cdc_buf_printf(b, ",\"%a\"", v->u.d); break;
        case CDC_V_DECIMAL:
        case CDC_V_STRING:
        case CDC_V_BYTES:
        case CDC_V_JSON:
            cdc_buf_puts(b, ",\"");
            hex(b, v->s ? v->s : "", v->len);
            cdc_buf_putc(b, '"');
            break;
        default: break;
        }
        cdc_buf_putc(b, ']');
    }
    cdc_buf_putc(b, ']');
}

static void jkey_str(cdc_buf_t *b, const char *k, const char *s)
{
    cdc_buf_printf(b, ",\"%s\":", k);
    cdc_json_string(b, s ? s : "", s ? strlen(s) : 0);
}

void cdc_dl_encode(cdc_buf_t *b, const cdc_txn_t *tx,
                   const cdc_change_t *ch, uint32_t idx)
{
    const cdc_table_t *t = ch->tbl;

    cdc_buf_puts(b, "{\"v\":1");
    jkey_str(b, "db", t->db);
    jkey_str(b, "table", t->name);
    cdc_buf_printf(b, ",\"op\":\"%c\"", ch->op);
    jkey_str(b, "connector", tx->connector);
    jkey_str(b, "file", tx->file ? tx->file : tx->pos.file);
    jkey_str(b, "gtid", tx->gtid);
    cdc_buf_printf(b, ",\"commit_us\":\"%" PRId64 "\",\"offset\":\"%" PRIu64
                   "\",\"lsn\":\"%" PRIu64 "\",\"pos\":\"%" PRIu64 "\","
                   "\"row\":%u,\"idx\":%u,\"xid\":\"%" PRIu64 "\","
                   "\"server_id\":%u,\"cols\":[", tx->commit_us,
                   tx->pos.offset, tx->pos.lsn, ch->pos, ch->row, idx,
                   tx->xid, tx->server_id);
    for (uint32_t i = 0; i < t->ncols; i++) {
        if (i)
            cdc_buf_putc(b, ',');
        cdc_json_string(b, t->cols[i].name, strlen(t->cols[i].name));
    }
    cdc_buf_puts(b, "],\"pk\":[");
    for (uint32_t i = 0; i < t->npk; i++)
        cdc_buf_printf(b, "%s%u", i ? "," : "", t->pk[i]);
    cdc_buf_puts(b, "],\"before\":");
    enc_image(b, ch->before, t->ncols);
    cdc_buf_puts(b, ",\"after\":");
    enc_image(b, ch->after, t->ncols);
    cdc_buf_putc(b, '}');
}

/* ---- decoding ----------------------------------------------------------- */

static int unhex(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                                  : -1;
}

static int dec_value(cdc_txn_t *tx, cdc_value_t *v, yajl_val a)
{
    const char *s;
    char *end;
    size_t n;

    if (!YAJL_IS_ARRAY(a) || !a->u.array.len ||
        !YAJL_IS_INTEGER(a->u.array.values[0]))
        return -1;
    v->kind = (uint8_t)YAJL_GET_INTEGER(a->u.array.values[0]);
    if (v->kind <= CDC_V_NULL)
        return a->u.array.len == 1 ? 0 : -1;
    if (a->u.array.len != 2 || !YAJL_IS_STRING(a->u.array.values[1]))
        return -1;
    s = YAJL_GET_STRING(a->u.array.values[1]);
    switch (v->kind) {
    case CDC_V_BOOL:
        v->u.b = *s == '1';
        return (*s == '0' || *s == '1') && !s[1] ? 0 : -1;
    case CDC_V_INT: v->u.i = strtoll(s, &end, 10); break;
    case CDC_V_UINT: v->u.u = strtoull(s, &end, 10); break;
    case CDC_V_FLOAT:
    case CDC_V_DOUBLE: v->u.d = strtod(s, &end); break;
    case CDC_V_DECIMAL:
    case CDC_V_STRING:
    case CDC_V_BYTES:
    case CDC_V_JSON: {
        char *out;
        n = strlen(s);
        if (n % 2)
            return -1;
        out = cdc_arena_alloc(&tx->arena, n / 2 + 1);
        for (size_t i = 0; i < n / 2; i++) {
            int h = unhex(s[2 * i]), l = unhex(s[2 * i + 1]);
            if (h < 0 || l < 0)
                return -1;
            out[i] = (char)(h << 4 | l);
        }
        out[n / 2] = '\0';
        v->s = out;
        v->len = n / 2;
        return 0;
    }
    default:
        return -1;
    }
    return *s && !*end ? 0 : -1;
}

static int dec_image(cdc_txn_t *tx, uint32_t ncols, yajl_val a,
                     cdc_value_t **out)
{
    *out = NULL;
    if (!a || YAJL_IS_NULL(a))
        return 0;
    if (!YAJL_IS_ARRAY(a) || a->u.array.len != ncols)
        return -1;
    *out = cdc_txn_values(tx, ncols);
    for (uint32_t i = 0; i < ncols; i++)
        if (dec_value(tx, &(*out)[i], a->u.array.values[i]))
            return -1;
    return 0;
}

/* the object's members we read, by name */
typedef struct dl_doc {
    const char *db, *table, *op, *connector, *file, *gtid;
    uint64_t commit_us, offset, lsn, pos, xid, row, idx, server_id;
    yajl_val cols, pk, before, after;
} dl_doc_t;

static uint64_t num(yajl_val v)
{
    if (YAJL_IS_STRING(v))
        return strtoull(v->u.string, NULL, 10);
    return YAJL_IS_INTEGER(v) ? (uint64_t)YAJL_GET_INTEGER(v) : 0;
}

static void read_doc(yajl_val root, dl_doc_t *d)
{
    memset(d, 0, sizeof(*d));
    for (size_t i = 0; i < root->u.object.len; i++) {
        const char *k = root->u.object.keys[i];
        yajl_val v = root->u.object.values[i];
        const char *s = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
        if (!strcmp(k, "db")) d->db = s;
        else if (!strcmp(k, "table")) d->table = s;
        else if (!strcmp(k, "op")) d->op = s;
        else if (!strcmp(k, "connector")) d->connector = s;
        else if (!strcmp(k, "file")) d->file = s;
        else if (!strcmp(k, "gtid")) d->gtid = s;
        else if (!strcmp(k, "commit_us")) d->commit_us = num(v);
        else if (!strcmp(k, "offset")) d->offset = num(v);
        else if (!strcmp(k, "lsn")) d->lsn = num(v);
        else if (!strcmp(k, "pos")) d->pos = num(v);
        else if (!strcmp(k, "xid")) d->xid = num(v);
        else if (!strcmp(k, "row")) d->row = num(v);
        else if (!strcmp(k, "idx")) d->idx = num(v);
        else if (!strcmp(k, "server_id")) d->server_id = num(v);
        else if (!strcmp(k, "cols")) d->cols = v;
        else if (!strcmp(k, "pk")) d->pk = v;
        else if (!strcmp(k, "before")) d->before = v;
        else if (!strcmp(k, "after")) d->after = v;
    }
}

/* connectors name themselves with static strings; keep ours static too */
static const char *connector_name(const char *s)
{
    static const char *const known[] = {"mysql", "mariadb", "postgresql"};
    for (size_t i = 0; s && i < sizeof(known) / sizeof(known[0]); i++)
        if (!strcmp(s, known[i]))
            return known[i];
    return "unknown";
}

cdc_txn_t *cdc_dl_decode(const char *text, uint32_t *idx, cdc_err_t *err)
{
    char eb[200];
    yajl_val root = yajl_tree_parse(text, eb, sizeof(eb));
    cdc_txn_t *tx = NULL;
    cdc_table_t *t = NULL;
    cdc_change_t *ch;
    dl_doc_t d;

    if (!root || !YAJL_IS_OBJECT(root))
        goto bad;
    read_doc(root, &d);
    if (!d.db || !d.table || !d.op || !d.op[0] || !d.cols ||
        !YAJL_IS_ARRAY(d.cols))
        goto bad;
    t = cdc_table_new(d.db, d.table, (uint32_t)d.cols->u.array.len);
    for (uint32_t i = 0; i < t->ncols; i++) {
        yajl_val c = d.cols->u.array.values[i];
        if (!YAJL_IS_STRING(c))
            goto bad;
        t->cols[i].name = cdc_xstrdup(YAJL_GET_STRING(c));
    }
    if (d.pk && YAJL_IS_ARRAY(d.pk) && d.pk->u.array.len) {
        t->npk = (uint32_t)d.pk->u.array.len;
        t->pk = cdc_xcalloc(t->npk, sizeof(*t->pk));
        for (uint32_t i = 0; i < t->npk; i++) {
            uint64_t k = num(d.pk->u.array.values[i]);
            if (k >= t->ncols)
                goto bad;
            t->pk[i] = (uint32_t)k;
            t->cols[k].flags |= CDC_COL_PK;
        }
    }
    tx = cdc_txn_new();
    tx->connector = connector_name(d.connector);
    tx->commit_us = (int64_t)d.commit_us;
    tx->xid = d.xid;
    tx->server_id = (uint32_t)d.server_id;
    snprintf(tx->gtid, sizeof(tx->gtid), "%s", d.gtid ? d.gtid : "");
    if (d.file && *d.file) {
        snprintf(tx->pos.file, sizeof(tx->pos.file), "%s", d.file);
        tx->file = cdc_arena_memdup(&tx->arena, d.file, strlen(d.file));
    }
    tx->pos.offset = d.offset;
    tx->pos.lsn = d.lsn;
    ch = cdc_txn_add(tx, d.op[0], t);
    ch->pos = d.pos;
    ch->row = (uint32_t)d.row;
    if (dec_image(tx, t->ncols, d.before, &ch->before) ||
        dec_image(tx, t->ncols, d.after, &ch->after))
        goto bad;
    *idx = (uint32_t)d.idx;
    cdc_table_destroy(t);
    yajl_tree_free(root);
    return tx;
bad:
    cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA, "dead letter: not a "
                "change this version wrote%s%s", root ? "" : ": ",
                root ? "" : eb);
    if (tx)
        cdc_txn_destroy(tx);
    cdc_table_destroy(t);
    yajl_tree_free(root);
    return NULL;
}

/* ---- the list ----------------------------------------------------------- */

void cdc_dl_add(cdc_dl_list_t *l, const cdc_txn_t *tx, uint32_t idx,
                const cdc_err_t *err)
{
    const cdc_change_t *ch = &tx->changes[idx];
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_dl_entry_t *e;

    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = cdc_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    e = &l->v[l->n++];
    memset(e, 0, sizeof(*e));
    cdc_buf_printf(&b, "%s.%s", ch->tbl->db, ch->tbl->name);
    e->table = cdc_xstrdup(b.p);
    e->op[0] = ch->op;
    e->position = cdc_xstrdup(cdc_pos_str(&tx->pos));
    e->commit_us = tx->commit_us;
    cdc_buf_reset(&b);
    cdc_buf_puts(&b, err->msg);
    if (err->detail[0])
        cdc_buf_printf(&b, " (%s)", err->detail);
    /* the table's text column takes UTF-8 only */
    for (size_t i = 0; i < b.len;) {
        size_t k = cdc_utf8_seq((const unsigned char *)b.p + i, b.len - i);
        if (!k)
            b.p[i] = '?';
        i += k ? k : 1;
    }
    e->error = cdc_xstrdup(b.p);
    cdc_buf_reset(&b);
    cdc_dl_encode(&b, tx, ch, idx);
    e->change = cdc_xstrdup(b.p);
    cdc_buf_free(&b);
}

void cdc_dl_clear(cdc_dl_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].table);
        free(l->v[i].position);
        free(l->v[i].error);
        free(l->v[i].change);
    }
    l->n = 0;
}

void cdc_dl_free(cdc_dl_list_t *l)
{
    cdc_dl_clear(l);
    free(l->v);
    l->v = NULL;
    l->cap = 0;
}

void cdc_dl_print(FILE *out, const char *id, const char *created,
                  const char *table, const char *op, const char *position,
                  const char *error, const char *change)
{
    cdc_err_t e = {0};
    uint32_t idx;
    cdc_txn_t *tx = cdc_dl_decode(change, &idx, &e);

    fprintf(out, "#%s  %s  %s  op=%s  at %s\n  error: %s\n", id, created,
            table, op, position, error);
    if (tx) {
        cdc_env_opts_t o = {.format = CDC_FMT_AUTOGLM,
                            .application_id = "dead-letter"};
        cdc_buf_t b = CDC_BUF_INIT;
        cdc_envelope_write(&b, &o, tx, &tx->changes[0]);
        fprintf(out, "  change: %s\n", b.p);
        cdc_buf_free(&b);
        cdc_txn_destroy(tx);
    } else
        fprintf(out, "  change: (%s)\n", e.msg);
}
