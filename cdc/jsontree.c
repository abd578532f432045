/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jsontree.c - a yajl tree builder that keeps string lengths (jsontree.h).
 *
 * A string node is allocated as a jstr_t: the yajl node first (so the
 * pointer yajl_tree_free() frees is the allocation), then a magic word and
 * the length.  Everything else is laid out as yajl_tree.c does it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "cdc/buf.h"
#include "cdc/jsontree.h"

#define JSTR_MAGIC UINT64_C(0x6a73747273747231) /* "jstrstr1" */

typedef struct jstr {
    struct yajl_val_s v;
    uint64_t magic;
    size_t len;
} jstr_t;

typedef struct jb {
    yajl_val stack[CDC_JSON_MAX_DEPTH];
    int depth;
    yajl_val root;
    char *key; /* pending object key */
    int too_deep;
} jb_t;

size_t cdc_json_strlen(const struct yajl_val_s *v)
{
    const jstr_t *s = (const jstr_t *)v;

    if (!v || !YAJL_IS_STRING(v))
        return 0;
    if (s->magic != JSTR_MAGIC) /* not from cdc_json_parse: a bug */
        abort();
    return s->len;
}

static yajl_val node(yajl_type t)
{
    yajl_val v = cdc_xcalloc(1, sizeof(*v));
    v->type = t;
    return v;
}

/* attach v to the open container (or make it the root) */
static int add(jb_t *b, yajl_val v)
{
    yajl_val top;

    if (b->depth == 0) {
        b->root = v;
        return 1;
    }
    top = b->stack[b->depth - 1];
    if (YAJL_IS_OBJECT(top)) {
        size_t n = top->u.object.len;
        top->u.object.keys = cdc_xrealloc((void *)top->u.object.keys,
                                          (n + 1) * sizeof(char *));
        top->u.object.values =
            cdc_xrealloc(top->u.object.values, (n + 1) * sizeof(yajl_val));
        top->u.object.keys[n] = b->key ? b->key : cdc_xstrdup("");
        top->u.object.values[n] = v;
        top->u.object.len = n + 1;
        b->key = NULL;
    } else {
        size_t n = top->u.array.len;
        top->u.array.values =
            cdc_xrealloc(top->u.array.values, (n + 1) * sizeof(yajl_val));
        top->u.array.values[n] = v;
        top->u.array.len = n + 1;
    }
    return 1;
}

static int open_container(jb_t *b, yajl_type t)
{
    yajl_val v;

    if (b->depth >= CDC_JSON_MAX_DEPTH) {
        b->too_deep = 1;
        return 0;
    }
    v = node(t);
    add(b, v);
    b->stack[b->depth++] = v;
    return 1;
}

static int cb_null(void *ctx)
{
    return add(ctx, node(yajl_t_null));
}

static int cb_bool(void *ctx, int val)
{
    return add(ctx, node(val ? yajl_t_true : yajl_t_false));
}

/* as yajl_tree.c: the text, and the integer/double when representable */
static int cb_number(void *ctx, const char *s, size_t len)
{
    yajl_val v = node(yajl_t_number);
    char *end;

    v->u.number.r = cdc_xstrndup(s, len);
    errno = 0;
    v->u.number.i = strtoll(v->u.number.r, &end, 10);
    if (errno == 0 && *end == '\0')
        v->u.number.flags |= YAJL_NUMBER_INT_VALID;
    errno = 0;
    v->u.number.d = strtod(v->u.number.r, &end);
    if (errno == 0 && *end == '\0')
        v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
    return add(ctx, v);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    jstr_t *j = cdc_xcalloc(1, sizeof(*j));

    j->v.type = yajl_t_string;
    j->v.u.string = cdc_xstrndup((const char *)s, len); /* copies len */
    j->magic = JSTR_MAGIC;
    j->len = len;
    return add(ctx, &j->v);
}

static int cb_start_map(void *ctx)
{
    return open_container(ctx, yajl_t_object);
}

static int cb_key(void *ctx, const unsigned char *s, size_t len)
{
    jb_t *b = ctx;
    free(b->key);
    b->key = cdc_xstrndup((const char *)s, len);
    return 1;
}

static int cb_end(void *ctx)
{
    jb_t *b = ctx;
    b->depth--;
    return 1;
}

static int cb_start_array(void *ctx)
{
    return open_container(ctx, yajl_t_array);
}

static const yajl_callbacks callbacks = {
    cb_null, cb_bool, NULL, NULL, cb_number, cb_string, cb_start_map,
    cb_key,  cb_end,  cb_start_array, cb_end,
};

yajl_val cdc_json_parse(const char *text, size_t len, char *ebuf,
                        size_t ebuf_len)
{
    jb_t *b = cdc_xcalloc(1, sizeof(*b));
    yajl_handle h = yajl_alloc(&callbacks, NULL, b);
    yajl_status st;
    yajl_val root;

    yajl_config(h, yajl_allow_comments, 1);
    st = yajl_parse(h, (const unsigned char *)text, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    if (st != yajl_status_ok || !b->root) {
        if (ebuf && ebuf_len) {
            if (b->too_deep)
                snprintf(ebuf, ebuf_len, "nested deeper than %d levels",
                         CDC_JSON_MAX_DEPTH);
            else if (st != yajl_status_ok) {
                unsigned char *m = yajl_get_error(h, 0, NULL, 0);
                snprintf(ebuf, ebuf_len, "%s", (char *)m);
                yajl_free_error(h, m);
            } else
                snprintf(ebuf, ebuf_len, "no JSON value");
        }
        yajl_tree_free(b->root);
        free(b->key);
        yajl_free(h);
        free(b);
        return NULL;
    }
    root = b->root;
    free(b->key);
    yajl_free(h);
    free(b);
    return root;
}

yajl_val cdc_json_get(yajl_val o, const char *k)
{
    if (!o || !YAJL_IS_OBJECT(o))
        return NULL;
    for (size_t i = 0; i < o->u.object.len; i++)
        if (!strcmp(o->u.object.keys[i], k))
            return o->u.object.values[i];
    return NULL;
}

int cdc_json_valid(const char *s, size_t len)
{
    yajl_handle h = yajl_alloc(NULL, NULL, NULL);
    int ok;

    if (!h)
        return 0;
    ok = yajl_parse(h, (const unsigned char *)s, len) == yajl_status_ok &&
         yajl_complete_parse(h) == yajl_status_ok;
    yajl_free(h);
    return ok;
}
