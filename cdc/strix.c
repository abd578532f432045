/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strix.c - string index (strix.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/buf.h"
#include "cdc/strix.h"

static uint64_t fnv1a(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return h;
}

/* the slot of key, or of the empty slot where it would go */
static size_t slot(const cdc_strix_t *x, const char *key)
{
    size_t i = (size_t)fnv1a(key) & (x->cap - 1);
    while (x->keys[i] && strcmp(x->keys[i], key))
        i = (i + 1) & (x->cap - 1);
    return i;
}

int cdc_strix_get(const cdc_strix_t *x, const char *key)
{
    size_t i;
    if (!x->cap)
        return -1;
    i = slot(x, key);
    return x->keys[i] ? x->vals[i] : -1;
}

static void grow(cdc_strix_t *x)
{
    cdc_strix_t y = {NULL, NULL, x->cap ? 2 * x->cap : 16, 0};

    y.keys = cdc_xcalloc(y.cap, sizeof(*y.keys));
    y.vals = cdc_xcalloc(y.cap, sizeof(*y.vals));
    for (size_t i = 0; i < x->cap; i++)
        if (x->keys[i]) {
            size_t j = slot(&y, x->keys[i]);
            y.keys[j] = x->keys[i];
            y.vals[j] = x->vals[i];
            y.n++;
        }
    cdc_strix_free(x);
    *x = y;
}

int cdc_strix_put(cdc_strix_t *x, const char *key, int val)
{
    size_t i;
    if (2 * (x->n + 1) > x->cap)
        grow(x);
    i = slot(x, key);
    if (x->keys[i])
        return x->vals[i];
    x->keys[i] = key;
    x->vals[i] = val;
    x->n++;
    return -1;
}

void cdc_strix_free(cdc_strix_t *x)
{
    free(x->keys);
    free(x->vals);
    x->keys = NULL;
    x->vals = NULL;
    x->cap = x->n = 0;
}
