/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile_int.h - private to the files of `reconcile`
 * (cdc/commands/reconcile*.c): the model of the recomputed table, the
 * target database's connection, and the functions the files share.
 */
#ifndef CDC_COMMANDS_RECONCILE_INT_H
#define CDC_COMMANDS_RECONCILE_INT_H

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdc/backfill.h"
#include "cdc/buf.h"
#include "cdc/commands/commands.h"
#include "cdc/envelope.h"
#include "cdc/log.h"
#include "cdc/util.h"
#include "connectors/pg/pgutil.h"
#include "mappings/map.h"
#include "mappings/map_int.h"
#include "sinks/pg_rank.h"
#include "sinks/pg_sql.h"
#include "sinks/pg_wide_agg.h"
#include "sinks/pg_wide_group.h"
#include "sinks/pg_wide_vote.h"

#define FAC "reconcile"
#define RC_CHUNK 50000u
#define RC_MAX_PARTS 1024u /* --partitions */

/* One source's best candidate for one field of one row: the same max
 * over ranks as the model's cells (cdc_wide_cell_offer). */
typedef struct rc_cell {
    cdc_wide_cell_t w;
    const char *row; /* the source row: "db.table[pk,...]" (rc_t.strs) */
    int known;       /* half_life: the side table's entry for this source
                        holds this value, so its commit time, rank and
                        score are taken from there (rc_side_times) */
} rc_cell_t;

/* A group candidate: one live source row (snapshot rows are live). */
typedef struct rc_gcand {
    uint32_t group;
    const cdc_map_mapping_t *mp;
    const char *rowid;  /* JSON array of its primary key (rc_t.strs) */
    const char *from;   /* "db.table[pk,...]" (rc_t.strs) */
    const char *src;    /* source id (rc_t.strs) */
    char grank[CDC_MAP_RANK_LEN + 1], vrank[CDC_MAP_RANK_LEN + 1];
    int64_t t;
    char **vals;        /* the group's fields, NULL = SQL NULL */
    size_t *lens;
} rc_gcand_t;

/* A live contribution of one source row to the aggregates of a row. */
typedef struct rc_contrib {
    const cdc_map_mapping_t *mp;
    const char *rowid;  /* JSON array (rc_t.strs) */
    char crank[CDC_MAP_RANK_LEN + 1];
    uint32_t nvals;
    uint32_t *field;
    char **vals;
    size_t *lens;
} rc_contrib_t;

/* The recomputed value of a derived field (a group's, an aggregate, a
 * per-source field: rc_derive). */
typedef struct rc_calc {
    int set, isnull;
    char *val;
    size_t len;
    char *prov;         /* its provenance object (JSON), NULL: none */
    int top;            /* per-source: the source of the entry named */
    char *adm;          /* per-source with half_life and some commit time
                           unknown: per source, 1 when some commit time
                           no later than the snapshot makes its value win */
} rc_calc_t;

typedef struct rc_row {
    char *keytext; /* key texts joined by \x1f (index key) */
    char **key;
    rc_cell_t **blk; /* per source: target->nfields cells, NULL until the
                        source offers a value */
    rc_gcand_t *gc;  /* group candidates */
    size_t ngc, capgc;
    rc_contrib_t *ct; /* contributions */
    size_t nct, capct;
    rc_calc_t *calc; /* target->nfields, derived fields (rc_derive) */
    int *gwin;       /* per group: index into gc of the winner, -1 none */
} rc_row_t;

typedef struct rc {
    const cdc_map_t *map;
    const cdc_map_target_t *t;
    rc_row_t **rows;
    size_t n, cap;
    cdc_strix_t ix;
    /* lookup operations, applied after every row is known: deep copies
     * (an operation's texts may point into its transaction) */
    cdc_wide_op_t *lk;
    const char **lkrows;    /* the source row of each */
    size_t nlk, caplk;
    cdc_strix_t pool;       /* source row texts, each kept once */
    char **strs;
    size_t nstrs, capstrs;
    uint64_t read;          /* source rows read */
    /* this pass reads the keys of partition part of nparts (the wide
     * key's hash, rc_mine); 0 of 1: every key */
    uint32_t part, nparts;
} rc_t;

typedef struct pgx {
    PGconn *c;
    cdc_buf_t sql;
    /* the table keeps its ranks in rank columns (sinks/pg_rank.h): read
     * through <table>_provenance(), the functions in schema qs */
    int rank;
    cdc_buf_t qs;
} pgx_t;

typedef struct rc_sum {
    long missing, extra, differs, side;
} rc_sum_t;

/* The target database's side: one connection, one transaction. */
typedef struct tgt {
    pgx_t x;
    cdc_buf_t qt, cols, keys; /* quoted table, columns, key columns */
    cdc_buf_t qread;          /* what the table is read from: itself, or
                                 <table>_provenance() (rank columns) */
    int open;
} tgt_t;

/* Cell of field f from source s, NULL when s offered nothing to r. */
static inline rc_cell_t *rc_cell(const rc_row_t *r, int s, uint32_t f)
{
    return r->blk[s] ? &r->blk[s][f] : NULL;
}

/* reconcile_read.c */
int rc_mine(const rc_t *rc, const char *const *key);
void rc_reset(rc_t *rc);
int rc_estimate_source(rc_t *rc, const cdc_conf_t *conf, const char *file,
                       char *seen, uint64_t *rows, uint64_t *bytes,
                       cdc_err_t *err);
int rc_src_index(const cdc_map_t *m, const char *id);
void rc_apply(rc_t *rc, const cdc_wide_op_t *op, const char *rowtext);
int rc_read_source(rc_t *rc, const cdc_conf_t *conf, const char *file,
                   char *seen, cdc_err_t *err);
void rc_free(rc_t *rc);
/* reconcile_derive.c */
int rc_winner(const rc_t *rc, const rc_row_t *r, uint32_t f);
int rc_admissible(const rc_t *rc, uint32_t f, int s, int w,
                  const rc_cell_t *c, const rc_cell_t *cw);
int rc_derived(const cdc_map_field_t *fd);
int rc_gc_admissible(const rc_t *rc, const rc_row_t *r,
                     const rc_gcand_t *c);
void rc_gc_prov(const rc_t *rc, cdc_buf_t *b, const rc_gcand_t *c);
void rc_derive(rc_t *rc);
/* reconcile_target.c */
int rc_pg_ok(pgx_t *x, PGresult *res, const char *what, cdc_err_t *err);
int rc_pg_run(pgx_t *x, const char *sql, cdc_err_t *err);
void rc_ident(pgx_t *x, cdc_buf_t *b, const char *name);
void rc_lit(pgx_t *x, cdc_buf_t *b, const char *s);
void rc_copy_val(cdc_buf_t *b, const char *s, size_t n);
void rc_put_key(rc_t *rc, cdc_buf_t *b, const rc_row_t *r);
void rc_key_eq(rc_t *rc, pgx_t *x, cdc_buf_t *b, const char *a,
               const char *c);
void rc_key_cols(rc_t *rc, pgx_t *x, cdc_buf_t *b, const char *a);
void rc_side_name(rc_t *rc, pgx_t *x, cdc_buf_t *b, const char *name);
int rc_copy_begin(pgx_t *x, const char *sql, cdc_err_t *err);
int rc_copy_put(pgx_t *x, cdc_buf_t *data, cdc_err_t *err);
int rc_copy_end(pgx_t *x, cdc_err_t *err);
void rc_put_text(cdc_buf_t *b, const char *s, int last);
char *rc_col_type(pgx_t *x, const char *qt, const char *col,
                  cdc_err_t *err);
void rc_tgt_close(tgt_t *g);
int rc_tgt_open(rc_t *rc, const cdc_conf_t *conf, int repair, tgt_t *g,
                cdc_err_t *err);
/* reconcile_compare.c */
int rc_shadow_fill(rc_t *rc, pgx_t *x, const char *cols, cdc_err_t *err);
int rc_compare(rc_t *rc, pgx_t *x, const char *qt, const char *keys,
               cdc_err_t *err);
int rc_report(rc_t *rc, pgx_t *x, int json, rc_sum_t *sum,
              cdc_err_t *err);
/* reconcile_side.c */
int rc_side_create(rc_t *rc, pgx_t *x, const char *keys, cdc_err_t *err);
int rc_side_fill(rc_t *rc, pgx_t *x, cdc_err_t *err);
int rc_side_compare(rc_t *rc, pgx_t *x, const char *qt,
                    const char *keys, cdc_err_t *err);
int rc_side_repair(rc_t *rc, pgx_t *x, const char *keys,
                   cdc_err_t *err);
int rc_side_times(rc_t *rc, pgx_t *x, cdc_err_t *err);
void rc_hl_score(const cdc_map_field_t *fd, const char *snap, int64_t t,
                 char out[32]);
/* reconcile_repair.c */
int rc_repair(rc_t *rc, pgx_t *x, const char *qt, const char *keys,
              cdc_err_t *err);

#endif
