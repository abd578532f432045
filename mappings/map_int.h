/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map_int.h - internals of the mapping engine shared by its files:
 *   map_yaml.c   YAML text -> nodes
 *   map_load.c   nodes -> the model of sources, targets and mappings
 *   map_zone.c   time zones (rules read once, no process TZ)
 *   map_cast.c   values -> canonical text of the target types
 *   map_rank.c   positions and the ranks of the conflict rules
 *   map_apply.c  a row change -> wide operations
 *   map_model.c  the in-memory wide table (tests, `mapping test`)
 *   map_group.c  field groups: loading checks, candidates, the winner
 * Everything after loading is pure: no I/O, no process state.
 */
#ifndef CDC_MAP_INT_H
#define CDC_MAP_INT_H

#include <string.h>

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
    cdc_tz_t *tz;          /* its rules, loaded with the mapping */
    char *where;
};

/* The fields of one group a mapping writes (all of them). */
struct cdc_map_gwrite {
    uint32_t group;                 /* index into target->groups */
    const cdc_map_assign_t **assign;/* per group field, group order */
};

/* One aggregate of a mapping: target field = func(expr) over the rows. */
struct cdc_map_agg {
    uint32_t field;        /* index in target->fields */
    cdc_magg_t func;
    cdc_expr_t *expr;      /* NULL: count of rows */
    char *text;            /* its source text */
    char *where;
};

/* ---- aggregates (map_agg.c) ---------------------------------------------- */

/** @brief Load 'aggregates:' (x) and 'row_key:' (rk, may be NULL) of a
 *  mapping.  loader context: file name for messages. */
int cdc_map_agg_load(const char *file, cdc_map_mapping_t *mp,
                     const ynode_t *x, const ynode_t *rk, cdc_err_t *err);
/** @brief After every mapping loaded: aggregate fields are written by
 *  nothing else, one function per field; counts sources per target. */
int cdc_map_agg_check(cdc_map_t *m, cdc_err_t *err);
void cdc_map_agg_free(cdc_map_mapping_t *mp);
/** @brief The contributions of one change (map_apply.c): ca/cb the
 *  after/before images' contexts, ka/kb their keys when have_a/have_b.
 *  Returns 0 or -1 with c->err. */
int cdc_map_agg_emit(const cdc_map_mapping_t *mp, const cdc_txn_t *tx,
                     const cdc_change_t *ch, const char *pos, xctx_t *ca,
                     xctx_t *cb, int have_a, const char **ka, int have_b,
                     const char **kb, cdc_wide_ops_t *out);
/** @brief A new zeroed operation at the end of out (map_apply.c). */
cdc_wide_op_t *cdc_wide_ops_new(cdc_wide_ops_t *out);
/** @brief Model side: the value of aggregate field f over the live
 *  contribution values vals[0..n) (canonical texts, NULL = NULL) into
 *  *out (malloc'd, NULL = SQL NULL). */
void cdc_map_agg_fold(const cdc_map_field_t *f, const char *const *vals,
                      const size_t *lens, size_t n, char **out, size_t *len);

/* ---- helpers shared by loading and applying ------------------------------ */

static inline int cdc_map_find_field(const cdc_map_target_t *t,
                                     const char *name)
{
    return cdc_strix_get(&t->fieldix, name);
}

/** @brief 1 if source src may write field f. */
static inline int cdc_map_owns(const cdc_map_field_t *f, const char *src)
{
    for (int i = 0; i < f->nowners; i++)
        if (!strcmp(f->owners[i], src))
            return 1;
    return 0;
}

/* ---- time zones (map_zone.c) --------------------------------------------- */

/** @brief Load a zone: "UTC", "Z", "+HH:MM" or an IANA name (read from
 *  TZDIR, else /usr/share/zoneinfo).  NULL with err (CDC_EXIT_CONFIG). */
cdc_tz_t *cdc_tz_load(const char *name, cdc_err_t *err);
/** @brief Parse a zone file's bytes (TZif, RFC 8536); every length is
 *  checked.  NULL with err. */
cdc_tz_t *cdc_tz_parse(const char *name, const unsigned char *p, size_t len,
                       cdc_err_t *err);
void cdc_tz_free(cdc_tz_t *z);
/** @brief "+HH:MM"/"-HH:MM" -> seconds east of UTC; -1 if not one. */
int cdc_tz_parse_offset(const char *s, int32_t *off);
/** @brief Pure: local wall-clock seconds (as if UTC) -> UTC seconds.  A
 *  time in a gap takes the offset before the transition, an ambiguous
 *  time the offset after it (PostgreSQL's rule). */
int64_t cdc_tz_to_utc(const cdc_tz_t *z, int64_t local);
/** @brief Pure: offset (seconds east of UTC) in force at UTC instant t. */
int32_t cdc_tz_offset(const cdc_tz_t *z, int64_t t, int *isdst);

/* ---- casts (map_cast.c) -------------------------------------------------- */

typedef struct castres {
    int isnull;
    const char *s;
    size_t len;
} castres_t;

/** @brief Cast a value to field f's type, text in c->arena; zone (NULL:
 *  UTC) reads naive timestamps.  -1 with c->err (CDC_EXIT_DATA). */
int cdc_map_cast(xctx_t *c, const cdc_map_field_t *f, const xv_t *v,
                 const cdc_tz_t *zone, castres_t *r);
/** @brief Timestamp text -> UTC seconds and microseconds; 1 for a zero
 *  date (NULL), -1 if not a date-time.  zone NULL: UTC. */
int cdc_map_parse_ts(const char *s, size_t len, const cdc_tz_t *zone,
                     int64_t *sec, int *us);
/** @brief Timestamp text -> canonical UTC text ("...Z") in out; 1 for a
 *  zero date (NULL), -1 if not a date-time. */
int cdc_map_cast_ts(const char *s, size_t len, const cdc_tz_t *zone,
                    char *out, size_t n);

/* ---- ranks (map_rank.c) -------------------------------------------------- */

/** @brief The rank of a value of field f from source s (map.h); ord:
 *  the row's order value (16 hex digits, rule ordered), or NULL; score:
 *  the score part of rule weighted (16 hex digits, cdc_map_score()), or
 *  NULL for the source's weight alone.  vote and weighted_mean rank like
 *  latest: the order of one source's changes. */
void cdc_map_make_rank(const cdc_map_field_t *f, const cdc_map_source_t *s,
                       int64_t commit_us, const char *pos, const char *ord,
                       const char *score, char *out);

/* ---- applying (map_apply.c), for map_group.c ----------------------------- */

/** @brief Evaluate assignment a (or copy column colname) of mapping mp
 *  for field f over c's row.  1 = a column is absent, 0 ok, -1 err. */
int cdc_map_compute(const cdc_map_mapping_t *mp, const cdc_map_field_t *f,
                    const cdc_map_assign_t *a, const char *colname, xctx_t *c,
                    castres_t *r);
/** @brief Append an operation of mp for key (texts in key order). */
cdc_wide_op_t *cdc_map_start_op(cdc_wide_ops_t *out,
                                const cdc_map_mapping_t *mp,
                                cdc_wide_kind_t kind, const char **key,
                                int64_t commit_us, const char *pos,
                                const char *ord);

/* ---- field groups (map_group.c) ------------------------------------------ */

/** @brief After target t's fields and key are loaded: build t->groups
 *  from the fields' `group:` (one rule per group, no key fields).
 *  -1 with err (CDC_EXIT_CONFIG, "file:line:col: ..."). */
int cdc_map_groups_build(cdc_map_target_t *t, cdc_err_t *err);
/** @brief After mapping mp is loaded: a mapping writes all fields of a
 *  group or none; lookups write none.  Fills mp->gw.  -1 with err. */
int cdc_map_groups_bind(cdc_map_mapping_t *mp, cdc_err_t *err);
/** @brief After everything is loaded: what groups cannot be combined
 *  with (row deletes).  -1 with err. */
int cdc_map_groups_check(const cdc_map_t *m, cdc_err_t *err);
void cdc_map_groups_free_target(cdc_map_target_t *t);
void cdc_map_groups_free_mapping(cdc_map_mapping_t *mp);
/** @brief The candidate operations of one row image for the groups mp
 *  writes: ca is the image that offers (NULL for a tombstone), cb the
 *  image the source row is gone from (NULL: none).  See map_group.c.
 *  @returns 0, or -1 with err (CDC_EXIT_DATA). */
int cdc_map_group_ops(const cdc_map_mapping_t *mp, const cdc_txn_t *tx,
                      const cdc_change_t *ch, const char *pos, xctx_t *ca,
                      const char **ka, const char *orda, xctx_t *cb,
                      const char **kb, const char *ordb, int cmp_before,
                      cdc_wide_ops_t *out);

/* The candidates of one wide row (the model). */
typedef struct cdc_gcands cdc_gcands_t;
/** @brief Offer a CDC_WIDE_GROUP op to the row's candidates: kept when its
 *  vrank is greater than the stored one of the same source row. */
void cdc_gcands_offer(cdc_gcands_t **gc, const cdc_wide_op_t *op);
/** @brief The winner of group g: values (n = group's fields), source,
 *  commit time, grank; 0 if no live candidate. */
int cdc_gcands_winner(const cdc_gcands_t *gc, uint32_t g, const char ***vals,
                      const size_t **lens, const char **src, int64_t *t,
                      const char **grank);
void cdc_gcands_free(cdc_gcands_t *gc);

#endif
