/* SPDX-License-Identifier: Apache-2.0 */
/*
 * expr_int.h - internals shared by expr.c and the map_*.c files: evaluated values and
 * the evaluation context.  Not part of the public mapping API.
 */
#ifndef CDC_EXPR_INT_H
#define CDC_EXPR_INT_H

#include "mappings/map.h"

typedef enum xv_type {
    XV_NULL = 0,
    XV_BOOL,    /* b */
    XV_DEC,     /* m / 10^scale, exact */
    XV_DBL,     /* d */
    XV_STR,     /* s/len (arena or borrowed) */
    XV_MISSING, /* a referenced column is ABSENT or UNCHANGED */
} xv_type_t;

#define XV_MAX_SCALE 30

typedef struct xv {
    xv_type_t t;
    int b;
    __int128 m;
    int scale;
    double d;
    const char *s;
    size_t len;
    int json; /* STR holding JSON text (from a JSON column) */
} xv_t;

typedef struct xctx {
    const cdc_table_t *tbl;
    const cdc_value_t *row;   /* tbl->ncols values */
    int64_t commit_us;
    const char *source;
    cdc_arena_t *arena;       /* results live here */
    cdc_err_t *err;
    const char *where;        /* mapping location for messages */
    const char *mapping;      /* its name, for messages */
    unsigned limits;          /* CDC_MAP_LIM_* of the target database */
} xctx_t;

/** @brief Evaluate; -1 with ctx->err on a data error. */
int cdc_expr_eval(const cdc_expr_t *e, xctx_t *ctx, xv_t *out);
/** @brief Value of a source column (XV_MISSING if absent/unchanged, and
 *  an error-free XV_NULL with *found=0 if no such column). */
void cdc_xv_column(const xctx_t *ctx, const char *name, xv_t *out,
                   int *found);
/** @brief Skip the blanks around s[*i, *len) and a sign; 1 if it was
 *  '-'. */
int cdc_num_trim_sign(const char *s, size_t *i, size_t *len);
/** @brief Parse decimal text ("-12.50", "1e3" is not accepted) into a
 *  DEC; 0 ok, -1 not a number. */
int cdc_xv_parse_dec(const char *s, size_t len, xv_t *out);
/** @brief Text of a value (DEC exactly at its scale, DBL shortest,
 *  BOOL true/false); NULL for XV_NULL. */
const char *cdc_xv_text(const xv_t *v, cdc_arena_t *a, size_t *len);
/** @brief Rescale a DEC, rounding half away from zero; -1 on overflow. */
int cdc_xv_rescale(xv_t *v, int scale);

#endif
