/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buf.h - growable byte buffers and arenas.
 *
 * cdc_buf_t: binary-safe growable buffer, always NUL-terminated after
 * `len` (the NUL is not counted).  cdc_arena_t: bump allocator whose
 * memory is released all at once by cdc_arena_reset()/destroy(); used for
 * everything hanging off one transaction.
 * Allocation failure aborts (cdc_xmalloc), so none of these return NULL.
 */
#ifndef CDC_BUF_H
#define CDC_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

void *cdc_xmalloc(size_t n);
void *cdc_xcalloc(size_t n, size_t m);
void *cdc_xrealloc(void *p, size_t n);
char *cdc_xstrdup(const char *s);
char *cdc_xstrndup(const char *s, size_t n);

typedef struct cdc_buf {
    char *p;
    size_t len;
    size_t cap;
} cdc_buf_t;

#define CDC_BUF_INIT {NULL, 0, 0}

void cdc_buf_grow(cdc_buf_t *b, size_t extra);
static inline void cdc_buf_put(cdc_buf_t *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap)
        cdc_buf_grow(b, n + 1);
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}
static inline void cdc_buf_putc(cdc_buf_t *b, char c)
{
    if (b->len + 2 > b->cap)
        cdc_buf_grow(b, 2);
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}
static inline void cdc_buf_puts(cdc_buf_t *b, const char *s)
{
    cdc_buf_put(b, s, strlen(s));
}
void cdc_buf_printf(cdc_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void cdc_buf_reset(cdc_buf_t *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}
void cdc_buf_free(cdc_buf_t *b);
/** @brief Append s between quote characters q, every q inside doubled:
 *  SQL identifiers ("x" for PostgreSQL, `x` for MySQL) and ' literals of
 *  SQL or YAML. */
void cdc_buf_quoted(cdc_buf_t *b, const char *s, char q);

/* Standard padded base64 of n bytes appended to b. */
void cdc_buf_base64(cdc_buf_t *b, const uint8_t *p, size_t n);

typedef struct cdc_arena_chunk cdc_arena_chunk_t;
typedef struct cdc_arena {
    cdc_arena_chunk_t *head; /* current chunk */
    cdc_arena_chunk_t *free; /* chunks kept for reuse after reset */
    size_t total;            /* bytes handed out since last reset */
} cdc_arena_t;

void cdc_arena_init(cdc_arena_t *a);
/** @brief n bytes, 16-byte aligned, valid until reset/destroy. */
void *cdc_arena_alloc(cdc_arena_t *a, size_t n);
void *cdc_arena_calloc(cdc_arena_t *a, size_t n);
/** @brief Copy of n bytes plus a terminating NUL. */
char *cdc_arena_memdup(cdc_arena_t *a, const void *p, size_t n);
void cdc_arena_reset(cdc_arena_t *a);
void cdc_arena_destroy(cdc_arena_t *a);

#endif
