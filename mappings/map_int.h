/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map_int.h - internals of the mapping engine shared by its files.
 */
#ifndef CDC_MAP_INT_H
#define CDC_MAP_INT_H

#include "mappings/expr_int.h"
#include "cdc/strix.h"
#include "mappings/map.h"

enum { Y_SCALAR = 1, Y_MAP, Y_SEQ };

/* A YAML node.  Mappings hold kids as key, value, key, value, ... */
typedef struct ynode {
    int kind;
    char *val;   /* scalar text (owned), NUL-terminated */
    size_t len;
    int plain;   /* plain (unquoted) scalar: ~, null and "" mean NULL */
    int line, col;
    struct ynode **kids;
    int n, cap;
    cdc_strix_t keys; /* Y_MAP: key text -> index of the key in kids */
} ynode_t;

/** @brief Parse one YAML document; NULL with err ("name:line:col: ..."). */
ynode_t *cdc_yaml_parse(const char *name, const char *text, size_t len,
                        cdc_err_t *err);
void cdc_ynode_free(ynode_t *n);
/** @brief Value of key in a mapping node, or NULL. */
const ynode_t *cdc_ynode_get(const ynode_t *map, const char *key);
/** @brief 1 if n is absent or a plain null scalar. */
int cdc_ynode_isnull(const ynode_t *n);

/* One assignment: a target field computed from the source row. */
struct cdc_map_assign {
    uint32_t field;        /* index in target->fields */
    cdc_expr_t *expr;      /* value expression */
    char *text;            /* its source text (for listings) */
    char **map_from;       /* value map: source text -> target text */
    char **map_to;         /* NULL entry = SQL NULL */
    int nmap;
    int has_else;
    char *map_else;        /* NULL = SQL NULL (when has_else) */
    char *def;             /* default when the value is NULL (or NULL) */
    char *timezone;        /* naive timestamps: this zone (NULL: source) */
    char *where;
};

#endif
