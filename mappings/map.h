/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map.h - the mapping engine: YAML mappings turn row changes of several
 * sources into "wide operations" on business-keyed wide tables.
 *
 * Pure: after loading, nothing here does I/O.  The same change always
 * gives the same operations, and every target field converges to the
 * same value under any order of application (docs/MAPPINGS.md):
 *
 *   Each candidate value of a field carries a rank, a fixed-width string
 *   whose byte order (C collation) is the field's conflict rule:
 *     latest    commit time, source priority, source id hash, position
 *     priority  source priority, commit time, source id hash, position
 *     weighted  source weight, commit time, source priority, source id
 *               hash, position
 *     ordered   order value (the mapping's order_by: a business column
 *               such as created_at or a version), commit time, source
 *               priority, source id hash, position
 *   A snapshot row (op 'r') has no known change time: its commit-time
 *   part is the lowest (all zeros) and its position part a hash of the
 *   value, so it loses to every streamed change of every source and
 *   re-reading the same value gives the same rank.
 *   A stored field is replaced only by a candidate of strictly greater
 *   rank.  "max" is commutative, associative and idempotent, so the same
 *   set of changes applied in any order, with duplicates, gives the same
 *   row and the same provenance.
 *
 * Ownership: a cdc_map_t owns everything hanging off it (targets,
 * fields, mappings).  Operations appended to a cdc_wide_ops_t live in its
 * arena until cdc_wide_ops_reset() / cdc_wide_ops_free(); they point into
 * the cdc_map_t, which must outlive them.
 */
#ifndef CDC_MAP_H
#define CDC_MAP_H

#include <stdint.h>
#include <stdio.h>

#include "cdc/buf.h"
#include "cdc/change.h"
#include "cdc/conf.h"
#include "cdc/err.h"
#include "cdc/strix.h"

/* Target field types (canonical text forms in docs/MAPPINGS.md). */
typedef enum cdc_mtype {
    CDC_MT_TEXT = 0,
    CDC_MT_INT,       /* 64-bit integer */
    CDC_MT_DECIMAL,   /* exact, fixed scale */
    CDC_MT_DOUBLE,
    CDC_MT_BOOL,
    CDC_MT_TIMESTAMP, /* UTC instant */
    CDC_MT_DATE,
    CDC_MT_JSON,
} cdc_mtype_t;

typedef enum cdc_mrule {
    CDC_RULE_LATEST = 0,
    CDC_RULE_PRIORITY,
    CDC_RULE_WEIGHTED,
    CDC_RULE_ORDERED,  /* the largest order_by value wins, then latest */
    CDC_RULE_VOTE,     /* the value with the highest summed score over the
                          sources' current values (map_vote.c) */
    CDC_RULE_WMEAN,    /* weighted_mean: sum(score * value) / sum(score)
                          over the sources' current values (numbers) */
} cdc_mrule_t;

/* Rules whose result is a pure function of every source's current value
 * (vote, weighted_mean): the sinks keep per-source state, not a winner
 * (so does weighted with confidence: cdc_map_field_t.per_source). */
#define CDC_RULE_STATEFUL(r) ((r) == CDC_RULE_VOTE || (r) == CDC_RULE_WMEAN)

typedef enum cdc_mdelete {
    CDC_DEL_CLEAR = 0, /* the source's fields become NULL (default) */
    CDC_DEL_ROW,       /* delete the wide row: a field-level tombstone
                          (NULL with a deletion mark) on every non-key
                          field; dead rows move to <table>_tombstones */
    CDC_DEL_IGNORE,    /* deletes change nothing */
} cdc_mdelete_t;

/* Aggregate functions of a field (mapping 'aggregates:', map_agg.c) */
typedef enum cdc_magg {
    CDC_AGG_NONE = 0,
    CDC_AGG_COUNT,          /* rows (or non-NULL values of an expression) */
    CDC_AGG_SUM,
    CDC_AGG_MIN,
    CDC_AGG_MAX,
    CDC_AGG_COUNT_DISTINCT, /* distinct values (their canonical text) */
} cdc_magg_t;

#define CDC_MAP_NAME_MAX 63  /* source ids, field and table names */
#define CDC_MAP_POS_LEN 32   /* hex digits of a change position */
#define CDC_MAP_RANK_LEN 88  /* longest rank string (fixed per rule) */
#define CDC_MAP_MAX_PRECISION 1000 /* numeric(p,s): PostgreSQL's limit */

typedef struct cdc_map_source {
    char *id;       /* application_id of the pipeline reading it */
    int priority;   /* higher wins (priority rule, latest ties) */
    double weight;  /* confidence, weighted rule */
    char *timezone; /* of naive timestamps ("UTC", "+02:00", IANA) */
    struct cdc_tz *tz; /* its rules (map_zone.c), loaded with the map */
    char *where;    /* "file:line:col" of its declaration */
} cdc_map_source_t;

typedef struct cdc_map_field {
    char *name;
    cdc_mtype_t type;
    int precision, scale; /* decimal(precision, scale); 0 = unset */
    cdc_mrule_t rule;
    char **owners;        /* source ids that may write it */
    int nowners;
    int is_key;
    char *sqltype;        /* declared type text, e.g. "numeric(12,2)" */
    int64_t half_life_us; /* score decay (half_life:), 0 = none */
    int per_source;       /* the value is a function of every source's
                             current value (map_vote.c): rules vote and
                             weighted_mean, and weighted when a mapping
                             that writes it has a confidence: */
    char *where;
    int group;            /* 1 + index into target->groups; 0: none */
    char *group_name;     /* its `group:` (NULL: none) */
    cdc_magg_t agg;       /* an aggregate field: computed per key from the
                             contributions of source rows (map_agg.c) */
} cdc_map_field_t;

/* A field group (`group: NAME` on target fields): its fields win
 * together, from the one source row of highest rank under the group's
 * rule (map_group.c, docs/MAPPINGS.md "Field groups"). */
typedef struct cdc_map_group {
    char *name;
    cdc_mrule_t rule;     /* the rule all its fields declare */
    uint32_t *fields;     /* indexes into target->fields, declared order */
    uint32_t nfields;
    char *where;          /* its first field's declaration */
} cdc_map_group_t;

typedef struct cdc_map_target {
    char *name;           /* logical name used by mappings */
    char *schema, *table; /* physical table (schema may be "") */
    cdc_map_field_t *fields;
    uint32_t nfields;
    cdc_strix_t fieldix;  /* field name -> index into fields */
    uint32_t *key;        /* indexes into fields, key order */
    uint32_t nkey;
    char *where;
    int tombstones;       /* some mapping deletes rows (on_delete: delete):
                             the sinks keep <table>_tombstones */
    cdc_map_group_t *groups; /* field groups: the sinks keep the source
                                rows' candidates in <table>_candidates */
    uint32_t ngroups;
    int aggregates;       /* some field is an aggregate: the sinks keep
                             <table>_contrib (per source row) */
    int agg_sources;      /* how many sources contribute to it */
} cdc_map_target_t;

typedef struct cdc_map_assign cdc_map_assign_t; /* opaque, map_int.h */
typedef struct cdc_map_agg cdc_map_agg_t;       /* opaque, map_int.h */
typedef struct cdc_tz cdc_tz_t;                 /* opaque, map_zone.c */
typedef struct cdc_expr cdc_expr_t;             /* opaque, expr.c */
typedef struct cdc_map_gwrite cdc_map_gwrite_t; /* opaque, map_int.h */

typedef struct cdc_map_mapping {
    char *name;
    const cdc_map_source_t *source;
    char *db, *table;         /* source table */
    const cdc_map_target_t *target;
    cdc_mdelete_t on_delete;
    cdc_expr_t *filter;       /* NULL = every row */
    cdc_map_assign_t *keys;   /* target key fields in key order; for a
                                 lookup mapping the fields to match */
    uint32_t nkeys;
    cdc_map_assign_t *fields; /* one per written non-key field */
    uint32_t nfields;
    char **include, **exclude;/* column copy lists ("*" = all) */
    int ninclude, nexclude;
    int lookup;               /* dimension mapping: set-based update */
    cdc_expr_t *order_by;     /* order value of a row (rule: ordered) */
    cdc_map_gwrite_t *gw;     /* the field groups it writes (map_group.c) */
    uint32_t ngw;
    cdc_expr_t *confidence;   /* per-row confidence (weighted, vote,
                                 weighted_mean); NULL = 1 */
    cdc_map_agg_t *aggs;      /* 'aggregates:' (map_agg.c) */
    uint32_t naggs;
    char **row_key;           /* source row identity columns (NULL: the
                                 table's primary key) */
    int nrow_key;
    char *where;
} cdc_map_mapping_t;

typedef struct cdc_map {
    cdc_map_source_t *sources;
    uint32_t nsources;
    cdc_map_target_t *targets;
    uint32_t ntargets;
    cdc_map_mapping_t *mappings;
    uint32_t nmappings;
    char **files;             /* loaded files, in order */
    int nfiles;
    unsigned limits;          /* CDC_MAP_LIM_*: set by the sink after
                                 loading (0: no limit beyond UTF-8 text) */
} cdc_map_t;

/* What the target database cannot hold.  A value that hits a limit is a
 * data error of its mapping (exit 65, field, value and mapping named),
 * found while mapping, before anything is written.  Text and JSON fields
 * always need valid UTF-8. */
#define CDC_MAP_LIM_NUL 0x1    /* no NUL in text, no \u0000 in JSON (PG) */
#define CDC_MAP_LIM_FINITE 0x2 /* doubles are finite: no NaN, no Infinity */
#define CDC_MAP_LIM_DEC38 0x4  /* a decimal without precision is
                                  DECIMAL(38,10): at most 28 integer digits */

/* ---- loading ------------------------------------------------------------ */

/**
 * @brief Load mapping files: a comma-separated list of YAML files and/or
 * directories (every *.yaml / *.yml inside, sorted by name).
 * @returns a new map, or NULL with err (CDC_EXIT_CONFIG; message
 *          "file:line:column: ...", a hint "did you mean 'x'?" for unknown
 *          keys and names).
 */
cdc_map_t *cdc_map_load(const char *files, cdc_err_t *err);
/** @brief Load one YAML text (name is used in messages). */
cdc_map_t *cdc_map_load_str(const char *name, const char *text, size_t len,
                            cdc_err_t *err);
void cdc_map_destroy(cdc_map_t *m);

/** @brief Levenshtein distance of a and b, capped at 100. */
int cdc_map_edit_distance(const char *a, const char *b);
/** @brief The candidate closest to word (within a third of its length,
 *  at least 2), or NULL. */
const char *cdc_map_suggest(const char *word, const char *const *cands,
                            int n);

/* ---- wide operations ----------------------------------------------------- */

typedef enum cdc_wide_kind {
    CDC_WIDE_UPSERT = 0, /* insert the row or offer values to its fields */
    CDC_WIDE_DELETE,     /* row delete: like an UPSERT (sinks merge and
                            apply it the same way) whose vals are a NULL
                            with the deletion mark for EVERY non-key field
                            of the target, ranked as writes are; a row
                            whose every provenance entry is a deletion is
                            dead (docs/MAPPINGS.md, deletes) */
    CDC_WIDE_LOOKUP,     /* set-based update of every row whose match
                            fields equal key[] (dimension change) */
    CDC_WIDE_GROUP,      /* a candidate of a field group: source row
                            rowid of the mapping offers the group's values
                            (vals, in group field order) or, gdeleted, is
                            gone; the group takes the values of the live
                            candidate with the greatest grank (map_group.c) */
    CDC_WIDE_CONTRIB,    /* the state of one source row's contribution to
                            the aggregate fields of key[] (row, crank,
                            gone; vals: one per aggregate of the mapping);
                            the sinks keep the highest-ranked state per
                            (mapping, row) and recompute the aggregates of
                            the keys it touched (docs/MAPPINGS.md) */
} cdc_wide_kind_t;

typedef struct cdc_wide_val {
    uint32_t field;      /* index into target->fields */
    int isnull;
    const char *s;       /* canonical text (arena), NULL when isnull */
    size_t len;
    char rank[CDC_MAP_RANK_LEN + 1];
    int deleted;         /* a row delete's NULL ("d":1 in provenance) */
    char score[32];      /* rules weighted, vote, weighted_mean: the score
                            (map_vote.c): an integer in millionths, or
                            with half_life a log2 score; "" otherwise */
} cdc_wide_val_t;

typedef struct cdc_wide_op {
    cdc_wide_kind_t kind;
    const cdc_map_target_t *target;
    const cdc_map_mapping_t *mapping;
    const char **key;    /* canonical texts of target->key (UPSERT,
                            DELETE) or of the lookup match fields */
    const uint32_t *keyfields; /* field indexes of key[] */
    uint32_t nkey;
    cdc_wide_val_t *vals;
    uint32_t nvals;
    const char *source;  /* source id */
    int64_t commit_us;
    char pos[CDC_MAP_POS_LEN + 1];
    char ord[17];        /* the row's order value, 16 sortable hex digits
                            (rule ordered; all zeros: none or NULL) */
    int snapshot;        /* from a snapshot row (op 'r': backfill, first
                            load): ranked below every streamed change
                            (docs/MAPPINGS.md, snapshot rows) */
    /* CDC_WIDE_GROUP only */
    uint32_t group;      /* index into target->groups */
    const char *rowid;   /* the source row: JSON array of its primary key */
    const char *vrank;   /* the change's rank within its source row (rule
                            latest; arena): the candidate keeps the change
                            of greatest vrank */
    const char *grank;   /* the row's rank under the group's rule (arena):
                            the live candidate of greatest grank wins */
    int gdeleted;        /* the source row is gone (a tombstone) */
    int64_t conf6;       /* the row's confidence in millionths (the
                            mapping's confidence:, else 1000000) */
    /* CDC_WIDE_CONTRIB: */
    const char *row;     /* source row identity: JSON array of its key */
    int gone;            /* the row no longer contributes (deleted, left
                            the filter, NULL key); key[] may be NULL */
    char crank[CDC_MAP_RANK_LEN + 1]; /* commit time, position (snapshot:
                            zeros, then a hash of the state) */
} cdc_wide_op_t;

typedef struct cdc_wide_ops {
    cdc_wide_op_t *ops;
    uint32_t n, cap;
    cdc_arena_t arena;
    uint64_t skipped;    /* rows skipped: NULL business key */
} cdc_wide_ops_t;

void cdc_wide_ops_init(cdc_wide_ops_t *o);
void cdc_wide_ops_reset(cdc_wide_ops_t *o);
void cdc_wide_ops_free(cdc_wide_ops_t *o);

/**
 * @brief Position of change number idx of tx as 32 sortable hex digits:
 * binlog file sequence (8), offset or LSN (16), row (8).  Positions of
 * one source compare bytewise in source order.
 */
void cdc_map_change_pos(const cdc_txn_t *tx, const cdc_change_t *ch,
                        uint32_t idx, char out[CDC_MAP_POS_LEN + 1]);
/**
 * @brief Sortable text of a transaction's resume position (file sequence
 * and offset, or LSN), for the sinks' offsets tables: 32 hex digits.
 */
void cdc_map_txn_pos(const cdc_pos_t *pos, char out[33]);

/**
 * @brief Map one change.  source is the id of the pipeline's source
 * (application_id); mappings of other sources or tables are ignored.
 * idx is the change's index within tx (tie-breaker when the change has
 * no own position).
 * @returns the number of operations appended to out, or -1 with err
 *          (CDC_EXIT_DATA: a value does not fit its target type).
 */
int cdc_map_change(const cdc_map_t *m, const char *source,
                   const cdc_txn_t *tx, const cdc_change_t *ch, uint32_t idx,
                   cdc_wide_ops_t *out, cdc_err_t *err);
/** @brief 1 if some mapping reads db.table of source. */
int cdc_map_wants(const cdc_map_t *m, const char *source, const char *db,
                  const char *table);

/** @brief A value for a message, in out (n >= 320): at most 60
 *  characters, bytes that are not printable UTF-8 as \\xHH, and the full
 *  length when shortened.  Returns out. */
const char *cdc_map_show_value(const char *s, size_t len, char *out,
                               size_t n);

/** @brief Provenance JSON of a value: {"s":..,"t":..,"r":..} and, for a
 *  row delete's NULL, "d":1; the rank ends with the position. */
void cdc_wide_prov_json(cdc_buf_t *out, const cdc_wide_op_t *op,
                        const cdc_wide_val_t *v);

/**
 * @brief Name of the sidecar table of target t that keeps the provenance
 * of dead rows (t->tombstones): "<table>_tombstones", same schema.
 */
void cdc_map_tombstone_table(const cdc_map_target_t *t, char *out, size_t n);
/** @brief Name of the contributions table of a target with aggregates:
 *  "<table>_contrib", same schema. */
void cdc_map_contrib_table(const cdc_map_target_t *t, char *out, size_t n);
/** @brief err (exit 78) for a sink that cannot keep target t's
 *  aggregates: names the target, its aggregate fields and the remedy. */
int cdc_map_agg_refuse(const cdc_map_target_t *t, const char *sink,
                       cdc_err_t *err);
/** @brief Name of an aggregate function ("count", "sum", ...). */
const char *cdc_map_agg_name(cdc_magg_t a);

/**
 * @brief Name of the side table of target t that keeps the candidates of
 * its field groups (t->ngroups): "<table>_candidates", same schema.
 */
void cdc_map_candidates_table(const cdc_map_target_t *t, char *out, size_t n);
/* ---- scores, vote and weighted mean (map_vote.c) -------------------------- */

/** @brief Name of a rule as written in mapping files. */
const char *cdc_map_rule_name(cdc_mrule_t r);

/** @brief 1 if values of field f carry a score: rule weighted, vote or
 *  weighted_mean. */
int cdc_map_scored(const cdc_map_field_t *f);

/**
 * @brief The score of a value of field f: confidence conf6 (millionths)
 * times the source's weight.  Without half_life an integer in millionths,
 * round(round(c,6) * round(w,6), 6) * 10^6; with half_life h the log2
 * score log2(c * w) + t / h (t: commit time, 0 for a snapshot row;
 * "-Infinity" when c * w is 0), "%.17g".  Text in out (32 bytes); the
 * 16 sortable hex digits of the rank's score part in hex (NULL: none).
 */
void cdc_map_score(const cdc_map_field_t *f, const cdc_map_source_t *s,
                   int64_t conf6, int64_t commit_us, int snapshot,
                   char out[32], char hex[17]);

/**
 * @brief For sinks that keep no per-source state (the MySQL wide sink):
 * the first target with a per-source field (vote, weighted_mean, weighted
 * with confidence) that source writes (NULL: any target) is refused.
 * @returns 0, or -1 with err (CDC_EXIT_CONFIG: target, field, rule and
 *          remedy named).
 */
int cdc_map_refuse_per_source(const cdc_map_t *m, const char *source,
                              const char *sink, cdc_err_t *err);

/** One source's current value of a vote / weighted_mean field. */
typedef struct cdc_vote_entry {
    const char *source;
    int isnull;
    const char *val;
    size_t len;
    const char *rank;    /* the source's own order of its changes */
    const char *score;   /* cdc_map_score() text */
    int deleted;
    int64_t t;
} cdc_vote_entry_t;

typedef struct cdc_vote_result {
    int set;             /* some entry */
    int isnull;
    int deleted;         /* every entry is a row delete's NULL */
    char *val;           /* the value (malloc), NULL when isnull */
    size_t len;
    int top;             /* index of the entry named in the provenance:
                            the newest voter of the result, else the
                            newest entry */
    char total[48];      /* the winner's summed terms (vote) or the sum
                            of the voters' terms (weighted_mean) */
} cdc_vote_result_t;

/**
 * @brief The value of a vote / weighted_mean field from every source's
 * current entry: pure, independent of the entries' order.  Terms: the
 * integer score; with half_life floor(2^(L - Lmax) * 10^15 + 0.5) (Lmax:
 * the largest log2 score of a non-NULL entry; 0 below 2^-100).  weighted
 * (per_source): the entry, NULL or not, with the largest score, then
 * rank.  vote: the
 * non-NULL value with the largest sum of terms, ties to the value first
 * in byte order.  weighted_mean: sum(term * value) / sum(term), rounded
 * half away from zero to the field's scale; NULL when no term is
 * positive.
 * @returns 0, or -1 when weighted_mean overflows 128 bits (not for
 *          fields that load: precision <= 18).
 */
int cdc_vote_compute(const cdc_map_field_t *f, const cdc_vote_entry_t *e,
                     size_t n, cdc_vote_result_t *out);

/* ---- in-memory model (tests, `mapping test`, batch merging) --------------- */

/* One field's best offered value: a max over ranks.  The model's cells
 * and reconcile's per-source candidates (cdc/commands/reconcile.c). */
typedef struct cdc_wide_cell {
    int set;             /* some value was offered */
    int isnull;
    int deleted;         /* a row delete's NULL */
    char *val;           /* malloc'd, NULL when isnull */
    size_t len;
    char rank[CDC_MAP_RANK_LEN + 1];
    char src[33];        /* source id */
    int64_t t;           /* commit time */
    char score[32];      /* the value's score (cdc_map_score), "" none */
    int showscore;       /* a confidence or half_life made the score: it is
                            shown in provenance */
} cdc_wide_cell_t;

/** @brief Offer value v of op to c: taken (1) when c has none or v's rank
 *  is strictly greater, else 0 and c unchanged.  Free c->val when done. */
int cdc_wide_cell_offer(cdc_wide_cell_t *c, const cdc_wide_op_t *op,
                        const cdc_wide_val_t *v);

typedef struct cdc_wide_model cdc_wide_model_t;

cdc_wide_model_t *cdc_wide_model_new(void);
void cdc_wide_model_free(cdc_wide_model_t *wm);
/** @brief Apply one operation with exactly the sinks' semantics. */
void cdc_wide_model_apply(cdc_wide_model_t *wm, const cdc_wide_op_t *op);
/** @brief Print every row, sorted by target and key:
 *  "target key=.. | field=value [source@commit_us] ...". */
void cdc_wide_model_print(const cdc_wide_model_t *wm, FILE *fp, int prov);
/** @brief Number of visible rows (dead rows, whose every field holds a
 *  deletion, are not counted nor printed). */
size_t cdc_wide_model_rows(const cdc_wide_model_t *wm);

typedef struct cdc_wide_diff {
    size_t rows;    /* visible rows on either side */
    size_t added, removed, changed, same;
    size_t fields;  /* fields that differ, over the changed rows */
} cdc_wide_diff_t;

/**
 * @brief Compare the visible rows of two models (the same changes through
 * two mapping sets): rows match by target name and key, fields by name,
 * values by their canonical text.  Prints to fp, in row order:
 *   "- ROW  (row gone)" / "+ ROW  (new row)" with every field, and
 *   "~ ROW" with "    field: OLD -> NEW" per field that differs
 *   ("(no field)" when one target lacks it); prov adds "[source
 *   commit_us]" to each value.  Rows that are the same print nothing.
 * @returns 1 if some row differs, else 0; st gets the counts.
 */
int cdc_wide_model_diff(const cdc_wide_model_t *old, const cdc_wide_model_t *new,
                        FILE *fp, int prov, cdc_wide_diff_t *st);

/* ---- expressions (expr.c) ------------------------------------------------ */

/**
 * @brief Parse an expression.  where prefixes messages ("file:line:col").
 * Grammar and functions: docs/MAPPINGS.md.  Depth is bounded (64).
 */
cdc_expr_t *cdc_expr_parse(const char *text, const char *where,
                           cdc_err_t *err);
void cdc_expr_free(cdc_expr_t *e);
/** @brief Column names an expression reads (borrowed, n returned). */
const char *const *cdc_expr_columns(const cdc_expr_t *e, int *n);
/** @brief 1 if the expression calls commit_time(): its value changes
 *  with every change, so it is offered even when no column changed. */
int cdc_expr_uses_commit_time(const cdc_expr_t *e);
/** @brief The column name if the expression is a bare column reference. */
const char *cdc_expr_column(const cdc_expr_t *e);

/* ---- command line (wired by cdc/cli.c) ----------------------------------- */

/** @brief `autoglm-cdc validate -c pipeline.yaml`: check the mapping files
 *  (mapping.files), the live schemas when DSNs are configured, and print
 *  what each mapping writes.  @returns an exit code. */
int cdc_map_cli_validate(const cdc_conf_t *conf, int argc, char **argv,
                         cdc_err_t *err);
/** @brief `autoglm-cdc mapping test FILE [ENVELOPES.jsonl]`: run the
 *  mapping over autoglm envelopes (stdin when no file) and print the
 *  operations and the resulting rows.  @returns an exit code. */
int cdc_map_cli_test(const cdc_conf_t *conf, int argc, char **argv,
                     cdc_err_t *err);
/** @brief The body of `mapping test` writing to out (for tests).
 *  flags: 1 = print operations, 2 = print provenance. */
int cdc_map_test_run(const char *mapfile, const char *envfile, FILE *out,
                     int flags, cdc_err_t *err);
/** @brief The body of `mapping test --diff OLD NEW [ENVELOPES]`: the
 *  same envelopes through both mapping sets, then what changed in the
 *  targets' declarations and cdc_wide_model_diff() of the two results,
 *  and a summary line "== N rows: A added, R removed, C changed (F
 *  fields), U unchanged".  flags: 2 = provenance.  @returns 1 if a
 *  declaration or a row differs, 0 if none, -1 with err (the set named
 *  in the message). */
int cdc_map_test_diff(const char *oldmap, const char *newmap,
                      const char *envfile, FILE *out, int flags,
                      cdc_wide_diff_t *st, cdc_err_t *err);

#endif
