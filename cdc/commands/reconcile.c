/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile.c - `autoglm-cdc reconcile -c pipeline.yaml --target T
 * [--repair] [--json] [PIPELINE.yaml...]` (issue 19 item 5).
 *
 * Recomputes what the PostgreSQL wide table of target T should hold from
 * the sources' current rows and prints the difference:
 *
 *   1. every pipeline given (the -c one and each operand) names one
 *      source (application_id); every source that some mapping of T reads
 *      must be among them.  Each source's tables are read through its
 *      snapshot driver (cdc_snap_find, the drivers of `backfill`) as op 'r'
 *      rows and mapped with the same mapping files (cdc_map_change): the
 *      same ranks a backfill would give.
 *   2. per wide row and field the best candidate of every source is kept
 *      (cdc_wide_cell_offer, the model's max); the recomputed value is the
 *      best of them (the rank rules), and a source's candidate is
 *      *admissible* when it ranks level with the winner before the commit
 *      time (rule latest: every source; priority: the same priority;
 *      weighted: the same weight), because a snapshot has no commit times
 *      and cannot tell which of those a stream made win.  Derived fields
 *      (rc_derive) are recomputed from the side state the snapshot rows
 *      make, with the sinks' pure rules: a field group from every live
 *      source row's candidate (winner: greatest grank, then mapping, then
 *      row; a candidate whose grank head before the commit time equals
 *      the winner's is admissible), an aggregate from the contributions
 *      (cdc_map_agg_fold), a vote / weighted_mean / per-source weighted
 *      field from each source's entry (cdc_vote_compute; weighted: any
 *      entry of the top score is admissible).  A per-source field with
 *      half_life takes each source's commit time from <T>_votes when the
 *      entry there holds the value the snapshot recomputes
 *      (rc_side_times); else the time is unknown, the entry is side
 *      drift, and a candidate some time no later than the snapshot could
 *      make win is admissible (vote_adm).  A group ranks by its rule and
 *      the static weight (map_group.c): half_life changes nothing there.
 *   3. the candidates go to a shadow table (temporary, in the target
 *      database, ON COMMIT DROP), and SQL compares it with T in one
 *      transaction, with PostgreSQL's own types doing the comparison.
 *      A stored field is consistent when it equals the recomputed value,
 *      or the admissible candidate of the source its provenance names, or
 *      it is a NULL that a source whose row is gone wrote (a delete,
 *      on_delete: clear).  A stored row that no source row makes is extra
 *      unless every field is NULL (the shell that clear-deletes leave).
 *      The side tables (<T>_candidates, _contrib, _votes) are compared
 *      with the recomputed candidates, contributions and entries through
 *      shadow tables of their own (rc_side_compare): kind 'side'.
 *   4. --repair, in the same transaction with T locked against writes
 *      (EXCLUSIVE: readers go on) from before the sources are read until
 *      the commit (tgt_open): extra rows are deleted, missing rows
 *      inserted with the recomputed values and their snapshot ranks, and a
 *      differing field takes the value of its stored source's candidate
 *      keeping the stored rank (the change that won it is real; only the
 *      value was altered), or else the recomputed value with its rank (a
 *      snapshot rank: any later streamed change wins over it, as after a
 *      backfill).  Side tables first (rc_side_repair: lost deletes marked,
 *      wrong states replaced under their stored ranks (a half_life
 *      entry of unknown time: under the snapshot's), missing rows
 *      inserted with snapshot ranks), then the derived fields of the
 *      touched keys recomputed by the sink's own statements
 *      (rc_recompute).
 *
 * With --partitions N (or reconcile.max_memory_mb, from the source
 * tables' estimated row counts) steps 1-2 run N times, each pass keeping
 * only the keys whose hash falls in its partition (rc_mine) and putting
 * them into the shadow tables before the next; steps 3-4 run once over
 * all of them, in the one transaction (with --repair, under the lock
 * taken before the first pass).  The output is the same as in one pass.
 *
 * Exit: 0 no drift (or, with --repair, all of it repaired), 1 drift
 * found, errors with their codes (69 a database unreachable, 78 a
 * configuration or mapping error, 2 usage).
 */
#include "cdc/commands/reconcile_int.h"

static const cdc_map_target_t *find_target(const cdc_map_t *m,
                                           const char *name)
{
    for (uint32_t i = 0; i < m->ntargets; i++) {
        const cdc_map_target_t *t = &m->targets[i];
        char full[300];
        snprintf(full, sizeof(full), "%s%s%s", t->schema ? t->schema : "",
                 t->schema && *t->schema ? "." : "", t->table);
        if (!strcmp(t->name, name) || !strcmp(t->table, name) ||
            !strcmp(full, name))
            return t;
    }
    return NULL;
}

/* The shadow tables, empty: the recomputed rows and each source's
 * candidates (rc_shadow), the differences (rc_diff), the side tables'
 * (reconcile_side.c).  Temporary, dropped at the commit. */
static int shadow_create(rc_t *rc, tgt_t *g, cdc_err_t *err)
{
    pgx_t *x = &g->x;

    cdc_buf_reset(&x->sql);
    cdc_buf_printf(&x->sql,
                   "CREATE TEMP TABLE rc_shadow ON COMMIT DROP AS SELECT %s, "
                   "_provenance FROM %s WITH NO DATA; ALTER TABLE "
                   "pg_temp.rc_shadow ADD _src text NOT NULL, ADD _has "
                   "text[], ADD _adm text[], ADD _row jsonb; "
                   "CREATE TEMP TABLE rc_diff ON COMMIT DROP AS SELECT %s "
                   "FROM %s WITH NO DATA; ALTER TABLE pg_temp.rc_diff ADD "
                   "kind text, ADD field text, ADD sval text, ADD sprov "
                   "jsonb, ADD nval text, ADD nprov jsonb, ADD keep boolean "
                   "NOT NULL DEFAULT false",
                   g->cols.p, g->qread.p, g->keys.p, g->qt.p);
    if (rc_pg_run(x, x->sql.p, err)) {
        if (strstr(err->msg, "does not exist"))
            err->code = CDC_EXIT_CONFIG;
        return -1;
    }
    return rc_side_create(rc, x, g->keys.p, err);
}

/* Once every partition is in the shadow tables: compare them with the
 * wide table and its side tables in SQL, report, repair, commit.  One
 * comparison over all partitions: a contribution that moved between two
 * keys of different partitions is one difference, and the report is in
 * key order as with one partition. */
static int tgt_run(rc_t *rc, tgt_t *g, int repair, int json, rc_sum_t *sum,
                   cdc_err_t *err)
{
    pgx_t *x = &g->x;

    cdc_buf_reset(&x->sql);
    cdc_buf_printf(&x->sql, "CREATE INDEX ON pg_temp.rc_shadow (%s, _src); "
                            "ANALYZE pg_temp.rc_shadow",
                   g->keys.p);
    if (rc_pg_run(x, x->sql.p, err) ||
        rc_compare(rc, x, g->qread.p, g->keys.p, err) ||
        rc_side_compare(rc, x, g->qt.p, g->keys.p, err) ||
        rc_report(rc, x, json, sum, err))
        return -1;
    if (repair && (sum->missing || sum->extra || sum->differs || sum->side) &&
        rc_repair(rc, x, g->qt.p, g->keys.p, err))
        return -1;
    return rc_pg_run(x, "COMMIT", err);
}

/* Every source that writes T must be read: its pipeline is the -c one or
 * an operand (else 2, naming it). */
static int check_sources(const rc_t *rc, const cdc_conf_t *conf,
                         cdc_conf_t **others, int argc, const char *target,
                         cdc_err_t *err)
{
    const cdc_map_t *m = rc->map;

    for (uint32_t i = 0; i < m->nmappings; i++) {
        const cdc_map_mapping_t *mp = &m->mappings[i];
        int si = rc_src_index(m, mp->source->id), given = 0;
        if (mp->target != rc->t || si < 0)
            continue;
        given = !strcmp(cdc_conf_app_id(conf), mp->source->id);
        for (int k = 0; k < argc && !given; k++)
            given = !strcmp(cdc_conf_app_id(others[k]), mp->source->id);
        if (!given) {
            cdc_err_set(err, CDC_EXIT_USAGE, 0,
                        "reconcile: source '%s' writes %s (mapping %s) but "
                        "no pipeline of it was given: add its pipeline file "
                        "as an operand (reconcile -c a.yaml --target %s "
                        "b.yaml ...)",
                        mp->source->id, rc->t->name,
                        mp->name ? mp->name : mp->where, target);
            return CDC_EXIT_USAGE;
        }
    }
    return 0;
}

/* Read every source (the -c pipeline's, then each operand's) into the
 * model, apply the lookups once every row is known, derive. */
static int read_all(rc_t *rc, pgx_t *x, const cdc_conf_t *conf,
                    cdc_conf_t **others, int argc, char **argv, char *seen,
                    cdc_err_t *err)
{
    if (rc_read_source(rc, conf, "-c", seen, err))
        return -1;
    for (int i = 0; i < argc; i++)
        if (rc_read_source(rc, others[i], argv[i], seen, err))
            return -1;
    for (size_t i = 0; i < rc->nlk; i++)
        rc_apply(rc, &rc->lk[i], rc->lkrows[i]);
    if (rc_side_times(rc, x, err))
        return -1;
    rc_derive(rc);
    CDC_INFO(FAC, "%" PRIu64 " source rows make %zu rows of %s", rc->read,
             rc->n, rc->t->name);
    return 0;
}

/* How many partitions: --partitions N, else as many as
 * reconcile.max_memory_mb needs for the estimated rows (0: one). */
static int pick_partitions(rc_t *rc, const cdc_conf_t *conf,
                           cdc_conf_t **others, int argc, char **argv,
                           uint32_t *n, cdc_err_t *err)
{
    int64_t cap = 0;
    uint64_t rows = 0, bytes = 0, per;
    char *seen;
    int r = 0;

    if (*n)
        return 0; /* given */
    *n = 1;
    if (cdc_conf_get_int(conf, "reconcile.max_memory_mb", 0, &cap, err))
        return -1;
    if (cap <= 0)
        return 0;
    seen = cdc_xcalloc(rc->map->nsources + 1, 1);
    r = rc_estimate_source(rc, conf, "-c", seen, &rows, &bytes, err);
    for (int i = 0; i < argc && !r; i++)
        r = rc_estimate_source(rc, others[i], argv[i], seen, &rows, &bytes,
                               err);
    free(seen);
    if (r)
        return -1;
    per = (uint64_t)cap << 20;
    *n = (uint32_t)((bytes + per - 1) / per);
    if (*n < 1)
        *n = 1;
    if (*n > RC_MAX_PARTS)
        *n = RC_MAX_PARTS;
    CDC_INFO(FAC, "about %" PRIu64 " source rows, an estimated %" PRIu64
                  " MB: %u partition%s for reconcile.max_memory_mb %" PRId64,
             rows, bytes >> 20, *n, *n == 1 ? "" : "s", cap);
    return 0;
}

/* Read the sources once per partition, each time keeping the rows of
 * that partition's keys, and put them into the shadow tables; *rows and
 * *read (source rows of one pass) for the summary. */
static int passes(rc_t *rc, tgt_t *g, const cdc_conf_t *conf,
                  cdc_conf_t **others, int argc, char **argv, size_t *rows,
                  uint64_t *read, cdc_err_t *err)
{
    char *seen = cdc_xcalloc(rc->map->nsources + 1, 1);
    uint32_t n = rc->nparts;
    int r = 0;

    for (uint32_t p = 0; p < n && !r; p++) {
        if (p)
            rc_reset(rc);
        rc->part = p;
        memset(seen, 0, rc->map->nsources + 1);
        r = read_all(rc, &g->x, conf, others, argc, argv, seen, err) ||
            rc_shadow_fill(rc, &g->x, g->cols.p, err) ||
            rc_side_fill(rc, &g->x, err);
        *rows += rc->n;
        if (!p)
            *read = rc->read;
    }
    free(seen);
    return r ? -1 : 0;
}

static void print_summary(const rc_t *rc, size_t rows, uint64_t read,
                          const rc_sum_t *sum, int repair, int json)
{
    long all = sum->missing + sum->extra + sum->differs + sum->side;
    int sides = rc->t->ngroups || rc->t->aggregates || cdc_pgv_target(rc->t);
    char side[80] = "";

    if (sides)
        snprintf(side, sizeof(side), ", %ld side-table rows differ",
                 sum->side);
    if (json)
        printf("{\"kind\":\"summary\",\"target\":\"%s\",\"rows\":%zu,"
               "\"missing\":%ld,\"extra\":%ld,\"differs\":%ld,"
               "\"side\":%ld,\"repaired\":%s}\n",
               rc->t->name, rows, sum->missing, sum->extra, sum->differs,
               sum->side, repair && all ? "true" : "false");
    else
        printf("%s: %zu rows recomputed from %" PRIu64 " source rows; %ld "
               "missing, %ld extra, %ld fields differ%s%s\n",
               rc->t->name, rows, read, sum->missing, sum->extra,
               sum->differs, side,
               all ? (repair ? "; repaired" : "") : "; no drift");
}

int cdc_cmd_reconcile(const cdc_cmd_ctx_t *cx, int argc, char **argv,
                      cdc_err_t *err)
{
    const cdc_conf_t *conf = cx->conf;
    const char *target = cdc_conf_get(cx->opts, "target", NULL);
    int repair = cdc_conf_get(cx->opts, "repair", NULL) != NULL;
    const char *fmt = cdc_conf_get(conf, "status.format", "text");
    int json = !strcmp(fmt, "json");
    const char *files = cdc_conf_get(conf, "mapping.files", NULL);
    const char *parts = cdc_conf_get(cx->opts, "partitions", NULL);
    uint32_t nparts = 0;
    size_t rows = 0;
    uint64_t read = 0;
    cdc_map_t *m = NULL;
    cdc_conf_t **others = NULL;
    rc_t rc;
    rc_sum_t sum = {0, 0, 0, 0};
    tgt_t g;
    int code = CDC_EXIT_FAIL;

    memset(&g, 0, sizeof(g));

    memset(&rc, 0, sizeof(rc));
    if (!target || !*target)
        return cdc_cmd_usage_error("reconcile: --target T is required (a "
                                   "target of the mapping files)");
    if (parts) {
        char *end = NULL;
        unsigned long v = strtoul(parts, &end, 10);
        if (!*parts || *end || parts[0] == '-' || v < 1 || v > RC_MAX_PARTS)
            return cdc_cmd_usage_error("reconcile: --partitions '%s': give a "
                                       "number from 1 to %u",
                                       parts, RC_MAX_PARTS);
        nparts = (uint32_t)v;
    }
    if (!files || !*files) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "reconcile: mapping.files is not set: give the "
                    "pipeline of a wide-table sink (-c pipeline.yaml)");
        return CDC_EXIT_CONFIG;
    }
    if (!(m = cdc_map_load(files, err)))
        return err->code ? err->code : CDC_EXIT_CONFIG;
    m->limits = CDC_MAP_LIM_NUL;
    rc.map = m;
    if (!(rc.t = find_target(m, target))) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "reconcile: no target '%s' in %s (its name or its "
                    "table)",
                    target, files);
        code = CDC_EXIT_CONFIG;
        goto out;
    }
    code = CDC_EXIT_FAIL;
    others = cdc_xcalloc((size_t)argc + 1, sizeof(*others));
    for (int i = 0; i < argc; i++) {
        others[i] = cdc_conf_new();
        if (cdc_conf_load_yaml(others[i], argv[i], err) ||
            cdc_conf_resolve(others[i], err)) {
            code = err->code ? err->code : CDC_EXIT_CONFIG;
            goto out;
        }
    }
    /* every source that writes T must be read; the target first (an
     * unreachable one fails before the long part; --repair locks it) */
    if ((code = check_sources(&rc, conf, others, argc, target, err)))
        goto out;
    if (rc_tgt_open(&rc, conf, repair, &g, err) ||
        pick_partitions(&rc, conf, others, argc, argv, &nparts, err))
        goto fail;
    rc.nparts = nparts;
    if (shadow_create(&rc, &g, err) ||
        passes(&rc, &g, conf, others, argc, argv, &rows, &read, err) ||
        tgt_run(&rc, &g, repair, json, &sum, err))
        goto fail;
    print_summary(&rc, rows, read, &sum, repair, json);
    if (fflush(stdout)) {
        cdc_err_set(err, CDC_EXIT_FAIL, 0, "reconcile: cannot write the "
                                           "standard output");
        goto fail;
    }
    code = (sum.missing || sum.extra || sum.differs || sum.side) && !repair
               ? CDC_EXIT_FAIL
               : CDC_EXIT_OK;
    goto out;
fail:
    code = err->code ? err->code : CDC_EXIT_FAIL;
out:
    rc_tgt_close(&g);
    if (others)
        for (int i = 0; i < argc; i++)
            if (others[i])
                cdc_conf_destroy(others[i]);
    free(others);
    if (rc.t)
        rc_free(&rc);
    cdc_map_destroy(m);
    return code;
}
