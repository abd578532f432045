/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buf.c - growable buffers, arenas, aborting allocators, base64.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cdc/buf.h"

static void oom(size_t n)
{
    fprintf(stderr, "autoglm-cdc: out of memory (allocating %zu bytes)\n", n);
    abort();
}

void *cdc_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *cdc_xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p)
        oom(n * m);
    return p;
}

void *cdc_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *cdc_xstrdup(const char *s)
{
    return cdc_xstrndup(s, strlen(s));
}

char *cdc_xstrndup(const char *s, size_t n)
{
    char *p = cdc_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void cdc_buf_grow(cdc_buf_t *b, size_t extra)
{
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 256;

    while (cap < need)
        cap *= 2;
    b->p = cdc_xrealloc(b->p, cap);
    b->cap = cap;
}

void cdc_buf_printf(cdc_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0,
                  fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (!b->p || (size_t)n + 1 > b->cap - b->len) {
        cdc_buf_grow(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void cdc_buf_free(cdc_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void cdc_buf_base64(cdc_buf_t *b, const uint8_t *p, size_t n)
{
    size_t out = (n + 2) / 3 * 4;
    char *o;
    size_t i;

    if (b->len + out + 1 > b->cap)
        cdc_buf_grow(b, out + 1);
    o = b->p + b->len;
    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = b64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = '=';
    }
    b->len += out;
    b->p[b->len] = '\0';
}

/* ---- arena ---------------------------------------------------------- */

struct cdc_arena_chunk {
    cdc_arena_chunk_t *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

#define ARENA_CHUNK 65536
/* A fresh arena starts with a small chunk: most txns are small, and
 * thousands of them in flight (one per Kafka message, say) would each
 * hold a 64 KB chunk the in-flight accounting (arena.total) does not see */
#define ARENA_FIRST 2048

void cdc_arena_init(cdc_arena_t *a)
{
    a->head = a->free = NULL;
    a->total = 0;
}

void *cdc_arena_alloc(cdc_arena_t *a, size_t n)
{
    cdc_arena_chunk_t *c = a->head;
    void *p;

    n = (n + 15) & ~(size_t)15;
    if (!c || c->size - c->used < n) {
        if (n <= ARENA_CHUNK && a->free) {
            c = a->free;
            a->free = c->next;
            c->used = 0;
        } else {
            size_t sz = n > ARENA_CHUNK ? n : ARENA_CHUNK;
            if (!a->head && n <= ARENA_FIRST)
                sz = ARENA_FIRST;
            c = cdc_xmalloc(sizeof(*c) + sz);
            c->size = sz;
            c->used = 0;
        }
        c->next = a->head;
        a->head = c;
    }
    p = c->data + c->used;
    c->used += n;
    a->total += n;
    return p;
}

void *cdc_arena_calloc(cdc_arena_t *a, size_t n)
{
    void *p = cdc_arena_alloc(a, n);
    memset(p, 0, n);
    return p;
}

char *cdc_arena_memdup(cdc_arena_t *a, const void *p, size_t n)
{
    char *d = cdc_arena_alloc(a, n + 1);
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

void cdc_arena_reset(cdc_arena_t *a)
{
    cdc_arena_chunk_t *c = a->head, *next;

    for (; c; c = next) {
        next = c->next;
        if (c->size == ARENA_CHUNK) {
            c->next = a->free;
            a->free = c;
        } else {
            free(c);
        }
    }
    a->head = NULL;
    a->total = 0;
}

void cdc_arena_destroy(cdc_arena_t *a)
{
    cdc_arena_chunk_t *c, *next;

    cdc_arena_reset(a);
    for (c = a->free; c; c = next) {
        next = c->next;
        free(c);
    }
    a->free = NULL;
}

void cdc_buf_quoted(cdc_buf_t *b, const char *s, char q)
{
    cdc_buf_putc(b, q);
    for (const char *e; (e = strchr(s, q)); s = e + 1) {
        cdc_buf_put(b, s, (size_t)(e - s) + 1);
        cdc_buf_putc(b, q);
    }
    cdc_buf_puts(b, s);
    cdc_buf_putc(b, q);
}
