/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strix.h - a string index: NUL-terminated keys (borrowed, they must
 * outlive the index) to non-negative ints, open addressing, FNV-1a.
 * Loading a mapping with n fields looks names up in O(1), not O(n).
 */
#ifndef CDC_STRIX_H
#define CDC_STRIX_H

#include <stddef.h>

typedef struct cdc_strix {
    const char **keys; /* NULL: empty slot */
    int *vals;
    size_t cap, n;     /* cap: a power of two, or 0 */
} cdc_strix_t;

#define CDC_STRIX_INIT {NULL, NULL, 0, 0}

/** @brief The value of key, or -1. */
int cdc_strix_get(const cdc_strix_t *x, const char *key);
/** @brief Add key -> val (val >= 0) unless key is there: returns -1 when
 *  added, else the value it already had (unchanged). */
int cdc_strix_put(cdc_strix_t *x, const char *key, int val);
void cdc_strix_free(cdc_strix_t *x);

#endif
