/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wide_batch.c - batching shared by the wide-table sinks (wide_batch.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdc/checkpoint.h"
#include "cdc/flight.h"
#include "cdc/log.h"
#include "cdc/metrics.h"
#include "cdc/util.h"
#include "mappings/reverse.h"
#include "sinks/wide_batch.h"

/* A txn without a position of its own (the Kafka source: partitions have
 * no total order) is never compared with the stored position; replays of
 * it are no-ops through the ranks. */
static int unordered(const cdc_pos_t *p)
{
    return !p->file[0] && !p->lsn;
}

/* ops n0 .. ops->n came from change i of tx */
static void note_origin(cdc_wide_batch_t *b, const cdc_wide_ops_t *ops,
                        uint32_t n0, cdc_txn_t *tx, uint32_t i)
{
    if (ops->n > b->capop) {
        b->capop = ops->cap > ops->n ? ops->cap : ops->n;
        b->op_tx = cdc_xrealloc(b->op_tx, b->capop * sizeof(*b->op_tx));
        b->op_ch = cdc_xrealloc(b->op_ch, b->capop * sizeof(*b->op_ch));
    }
    for (uint32_t k = n0; k < ops->n; k++) {
        b->op_tx[k] = tx;
        b->op_ch[k] = i;
    }
}

int cdc_wide_batch_add(cdc_wide_batch_t *b, cdc_map_t *map, const char *source,
                       cdc_wide_ops_t *ops, cdc_txn_t *tx, cdc_err_t *err)
{
    char pos[33];

    cdc_map_txn_pos(&tx->pos, pos);
    if (tx->more || tx->frag) {
        /* a fragment: the pos of one with more is not its transaction's;
         * the last one decides whether it was applied before a crash */
        b->has_frag = 1;
        b->in_frag = tx->more != 0;
        if (!tx->more && b->have_stored && !unordered(&tx->pos) &&
            strcmp(pos, b->stored) <= 0) {
            b->skipped_dups++;
            b->frag_dup = 1;
            goto add;
        }
    } else if (b->have_stored && !unordered(&tx->pos) &&
               strcmp(pos, b->stored) <= 0) {
        /* applied before a crash: the database already has it */
        b->skipped_dups++;
        tx->pending = 0;
        return 0;
    }
    /* two-way deletes: the trigger rows that carry their ranks */
    int tombs = cdc_twoway_txn_has_tombstones(tx);
    uint32_t cursor = 0, tx_ops = ops->n;
    uint64_t tx_changes = b->batch_changes;
    for (uint32_t i = 0; i < tx->nchanges; i++) {
        const cdc_change_t *ch = &tx->changes[i];
        uint32_t n0;
        if (!cdc_map_wants(map, source, ch->tbl->db, ch->tbl->name))
            continue;
        b->batch_changes++;
        n0 = ops->n;
        if (cdc_map_change(map, source, tx, ch, i, ops, err) < 0) {
            char pbuf[80];
            snprintf(pbuf, sizeof(pbuf), "%s", cdc_pos_str(&tx->pos));
            cdc_err_detail(err, "change %u of %s.%s in the transaction ending "
                           "at %s", i, ch->tbl->db, ch->tbl->name, pbuf);
            if (b->dead_letter) {
                /* kept with the batch, written in its transaction */
                ops->n = n0;
                cdc_dl_add(&b->dead, tx, i, err);
                CDC_WARN("deadletter", "%s (%s): written to the dead-letter "
                         "table", err->msg, err->detail);
                cdc_err_clear(err);
                continue;
            }
            /* nothing of it goes out with the batch's other txns, and it is
             * never acknowledged: the positions stay before it */
            ops->n = tx_ops;
            b->batch_changes = tx_changes;
            tx->failed = 1;
            return -1;
        }
        note_origin(b, ops, n0, tx, i);
        /* two-way: a value keeps the rank stored with it; a direct delete
         * the rank its trigger stored in the tombstones table */
        cdc_twoway_restamp(ch, ops, n0);
        if (tombs)
            cdc_twoway_restamp_delete(tx, i, ops, n0, &cursor);
    }
add:
    if (b->ntxns == b->captxns) {
        b->captxns = b->captxns ? b->captxns * 2 : 256;
        b->txns = cdc_xrealloc(b->txns, b->captxns * sizeof(*b->txns));
    }
    if (!b->ntxns)
        b->batch_start_us = cdc_now_us();
    b->txns[b->ntxns++] = tx;
    tx->pending = 1;
    b->batch_ends += !tx->more;
    if (tx->more)
        ; /* not a position of the batch */
    else if (unordered(&tx->pos))
        b->batch_unordered = 1;
    else {
        memcpy(b->batch_pos, pos, sizeof(pos));
        b->batch_cpos = tx->pos;
    }
    if (!tx->more)
        b->batch_commit_us = tx->commit_us;
    return (int64_t)ops->n >= b->batch_rows || b->frag_dup;
}

int cdc_wide_batch_frag_check(const cdc_wide_batch_t *b, const cdc_txn_t *tx)
{
    /* fragments with more were added and not yet the last one (with
     * frag_open alone, the last one waits in the batch: whole txns join
     * its database transaction) */
    int going = b->in_frag;

    if (going && !tx->frag)
        return 2; /* fragment 0 (or a whole txn) again: begun anew */
    if (!going && tx->more && b->ntxns)
        return 1;
    return 0;
}

void cdc_wide_batch_frag_reset(cdc_wide_batch_t *b, cdc_wide_ops_t *ops)
{
    for (size_t i = 0; i < b->ntxns; i++)
        b->txns[i]->pending = 0;
    cdc_dl_clear(&b->dead);
    b->ntxns = 0;
    b->batch_ends = 0;
    b->batch_changes = 0;
    b->batch_unordered = 0;
    b->has_frag = b->in_frag = b->frag_open = b->frag_dup = 0;
    cdc_wide_ops_reset(ops);
}

int cdc_wide_batch_retry_add(cdc_wide_batch_t *b, cdc_map_t *map,
                             const char *source, cdc_wide_ops_t *ops,
                             cdc_txn_t *tx, uint32_t orig_idx, int64_t id,
                             cdc_err_t *err)
{
    uint32_t n0 = ops->n;

    if (cdc_map_change(map, source, tx, &tx->changes[0], orig_idx, ops,
                       err) < 0) {
        ops->n = n0;
        return -1;
    }
    if (b->nretry == b->capretry) {
        b->capretry = b->capretry ? b->capretry * 2 : 64;
        b->retry_ids = cdc_xrealloc(b->retry_ids,
                                    b->capretry * sizeof(*b->retry_ids));
        b->retry_op0 = cdc_xrealloc(b->retry_op0,
                                    b->capretry * sizeof(*b->retry_op0));
    }
    b->retry_op0[b->nretry] = n0;
    b->retry_ids[b->nretry++] = id;
    b->batch_changes++;
    return 0;
}

/* `dead-letter retry` when the database refused the whole set: each
 * letter in its own transaction; returns how many still fail (*rc set on
 * an error that is not about a value) */
static size_t retry_alone(cdc_wide_batch_t *b, cdc_wide_ops_t *ops,
                          int (*apply)(void *sink, cdc_err_t *err),
                          void *sink, FILE *out, cdc_err_t *err, int *rc)
{
    cdc_wide_op_t *all = ops->ops;
    uint32_t n = ops->n;
    int64_t *ids = b->retry_ids;
    size_t nids = b->nretry, failed = 0;

    for (size_t j = 0; j < nids && !*rc; j++) {
        cdc_err_t e = {0};
        uint32_t end = j + 1 < nids ? b->retry_op0[j + 1] : n;
        ops->ops = all + b->retry_op0[j];
        ops->n = end - b->retry_op0[j];
        b->retry_ids = ids + j;
        b->nretry = 1;
        if (!apply(sink, &e))
            continue;
        if (!(e.flags & CDC_ERR_F_DATA)) {
            *rc = e.code ? e.code : CDC_EXIT_FAIL;
            *err = e;
            break;
        }
        fprintf(out, "#%" PRId64 " still fails: %s\n", ids[j], e.msg);
        failed++;
        *err = e;
    }
    ops->ops = all;
    ops->n = n;
    b->retry_ids = ids;
    b->nretry = nids;
    return failed;
}

int cdc_wide_dead_letter(cdc_wide_batch_t *b, cdc_map_t *map,
                         const char *source, cdc_wide_ops_t *ops,
                         const char *action, FILE *out, size_t nrows,
                         const char *(*get)(void *rows, size_t r, int c),
                         void *rows, int (*apply)(void *sink, cdc_err_t *err),
                         void *sink, cdc_err_t *err)
{
    cdc_txn_t **txs;
    size_t failed = 0;
    int rc = 0;

    if (!strcmp(action, "list")) {
        for (size_t r = 0; r < nrows; r++)
            cdc_dl_print(out, get(rows, r, CDC_DLC_ID),
                         get(rows, r, CDC_DLC_CREATED),
                         get(rows, r, CDC_DLC_TABLE), get(rows, r, CDC_DLC_OP),
                         get(rows, r, CDC_DLC_POS), get(rows, r, CDC_DLC_ERROR),
                         get(rows, r, CDC_DLC_CHANGE));
        fprintf(out, "%zu dead letter%s\n", nrows, nrows == 1 ? "" : "s");
        return 0;
    }
    txs = cdc_xcalloc(nrows ? nrows : 1, sizeof(*txs));
    cdc_wide_ops_reset(ops);
    b->nretry = 0;
    b->batch_changes = 0;
    for (size_t r = 0; r < nrows; r++) {
        const char *id = get(rows, r, CDC_DLC_ID);
        cdc_err_t e = {0};
        uint32_t idx;
        txs[r] = cdc_dl_decode(get(rows, r, CDC_DLC_CHANGE), &idx, &e);
        if (txs[r] && !cdc_wide_batch_retry_add(b, map, source, ops, txs[r],
                                                idx, strtoll(id, NULL, 10),
                                                &e))
            continue;
        fprintf(out, "#%s still fails: %s\n", id, e.msg);
        if (!failed++)
            *err = e;
    }
    if (b->nretry) {
        cdc_err_t e = {0};
        b->retry = 1;
        if (apply(sink, &e)) {
            if (e.flags & CDC_ERR_F_DATA)
                /* the database refuses some: each alone */
                failed += retry_alone(b, ops, apply, sink, out, &e, &rc);
            else
                rc = e.code ? e.code : CDC_EXIT_FAIL;
            if (rc || !err->msg[0])
                *err = e;
        }
        b->retry = 0;
    }
    if (!rc)
        fprintf(out, "retried %zu dead letter%s: %zu applied, %zu still "
                "failing\n", nrows, nrows == 1 ? "" : "s", nrows - failed,
                failed);
    if (!rc && failed) {
        rc = CDC_EXIT_DATA;
        cdc_err_hint(err, "%zu dead letter%s still cannot be applied: fix the "
                     "mapping and retry again (`dead-letter list` shows "
                     "them)", failed, failed == 1 ? "" : "s");
    }
    b->nretry = 0;
    cdc_wide_ops_reset(ops);
    for (size_t r = 0; r < nrows; r++)
        if (txs[r])
            cdc_txn_destroy(txs[r]);
    free(txs);
    return rc;
}

int cdc_wide_batch_due(const cdc_wide_batch_t *b, int timeout_ms)
{
    return b->ntxns &&
           (cdc_now_us() - b->batch_start_us >= b->flush_ms * 1000 ||
            timeout_ms > 0);
}

void cdc_wide_batch_committed(cdc_wide_batch_t *b)
{
    if (!b->batch_unordered) {
        memcpy(b->stored, b->batch_pos, sizeof(b->stored));
        b->have_stored = 1;
    }
}

void cdc_wide_batch_finish(cdc_wide_batch_t *b, cdc_wide_ops_t *ops, int ok)
{
    for (size_t i = 0; i < b->ntxns; i++) {
        if (ok)
            b->txns[i]->pending = 0;
        else
            b->txns[i]->failed = 1;
    }
    if (!ok)
        return;
    if (b->dead.n)
        cdc_metrics_dead_letters(b->dead.n);
    cdc_dl_clear(&b->dead);
    b->nretry = 0;
    b->ntxns = 0;
    b->batch_ends = 0;
    if (!b->in_frag) /* else the offsets row of its end counts them */
        b->batch_changes = 0;
    b->batch_unordered = 0;
    b->has_frag = b->frag_dup = 0; /* in_frag stays: the txn goes on */
    cdc_wide_ops_reset(ops);
}

/* err about the change ch (index i of tx) whose ops are ops: the
 * mapping, the change, the target, and each field with its value */
static void name_change(cdc_err_t *err, const cdc_txn_t *tx,
                        const cdc_change_t *ch, uint32_t i,
                        const cdc_wide_ops_t *ops)
{
    cdc_buf_t d = CDC_BUF_INIT;
    char v[320];

    cdc_buf_printf(&d, "mapping '%s', change %u of %s.%s (target %s) in the "
                   "transaction ending at %s", ops->ops[0].mapping ?
                   ops->ops[0].mapping->name : "?", i, ch->tbl->db,
                   ch->tbl->name, ops->ops[0].target->name,
                   cdc_pos_str(&tx->pos));
    if (err->detail[0])
        cdc_buf_printf(&d, "; %s", err->detail);
    for (uint32_t k = 0; k < ops->n; k++)
        for (uint32_t f = 0; f < ops->ops[k].nvals; f++) {
            const cdc_wide_val_t *x = &ops->ops[k].vals[f];
            cdc_buf_printf(&d, "; field '%s' = %s%s%s",
                           ops->ops[k].target->fields[x->field].name,
                           x->isnull ? "" : "'", x->isnull ? "NULL" :
                           cdc_map_show_value(x->s, x->len, v, sizeof(v)),
                           x->isnull ? "" : "'");
        }
    cdc_err_detail(err, "%s", d.p);
    cdc_buf_free(&d);
}

/*
 * The database refused a value of the batch: apply it change by change.
 * dry (errors.mode=stop): each change in a transaction rolled back, to name
 * the first refused one in err; -1 always.  Otherwise (dead letters): each
 * change in its own committed transaction, the refused ones kept as dead
 * letters, then the dead letters and the offset.  A crash in between
 * replays the batch, and the changes applied again change nothing (their
 * ranks are stored).
 */
static int isolate(cdc_wide_batch_t *b, cdc_wide_ops_t *ops,
                   int (*apply)(void *ctx, cdc_err_t *err), void *ctx,
                   int dry, cdc_err_t *err)
{
    cdc_wide_op_t *all = ops->ops;
    uint32_t n = ops->n, s = 0;
    int rc = 0;

    if (!dry)
        CDC_WARN("deadletter", "%s: applying the batch change by change to "
                 "find the refused ones", err->msg);
    b->isolate = dry ? 2 : 1;
    while (s < n) {
        uint32_t e = s + 1, k = s;
        cdc_txn_t *tx = b->op_tx[k];
        const cdc_change_t *ch = &tx->changes[b->op_ch[k]];
        cdc_err_t e1 = {0};
        while (e < n && b->op_tx[e] == tx && b->op_ch[e] == b->op_ch[k])
            e++;
        ops->ops = all + s;
        ops->n = e - s;
        s = e;
        if (!apply(ctx, &e1))
            continue;
        if (e1.flags & CDC_ERR_F_DATA)
            name_change(&e1, tx, ch, b->op_ch[k], ops);
        if (dry || !(e1.flags & CDC_ERR_F_DATA)) {
            /* the first refused change named, or a failure that is not
             * about a value */
            *err = e1;
            rc = -1;
            break;
        }
        cdc_dl_add(&b->dead, tx, b->op_ch[k], &e1);
        CDC_WARN("deadletter", "%s (%s): written to the dead-letter table",
                 e1.msg, e1.detail);
    }
    b->isolate = 0;
    ops->ops = all;
    if (rc || dry) {
        ops->n = n;
        return -1;
    }
    ops->n = 0;
    return apply(ctx, err);
}

static int lost(const cdc_err_t *e)
{
    return e->code == CDC_EXIT_UNAVAILABLE && (e->flags & CDC_ERR_F_RETRIABLE);
}

/*
 * The connection was lost (*e says how): reconnect in place, at once and
 * then with the engine's backoff, bounded by b->reconnect_timeout_ms and
 * the stop token.  0 reconnected; -1 with *e the last failure.
 */
static int reconnect_in_place(cdc_wide_batch_t *b, void *ctx, cdc_err_t *e)
{
    int64_t t0 = cdc_now_us(), limit = b->reconnect_timeout_ms * 1000;
    cdc_backoff_t bo;

    cdc_backoff_init(&bo, 0, 0);
    cdc_metrics_sink_state(0, e->msg);
    for (;;) {
        cdc_err_t e2 = {0};
        int64_t left = limit - (cdc_now_us() - t0), ms;
        if (bo.attempt) {
            if (left <= 0) {
                cdc_err_hint(e, "the database stayed unreachable for %" PRId64
                             " ms (%s); the pipeline resumes from its "
                             "checkpoint when started again",
                             b->reconnect_timeout_ms, b->reconnect_key);
                b->reconnect_gave_up = 1;
                return -1;
            }
            ms = cdc_backoff_next(&bo);
            if (ms > left)
                ms = left;
            /* bo.attempt 1 was the try at once: log the first wait and
             * every tenth */
            if (bo.attempt == 2 || bo.attempt % 10 == 0)
                CDC_WARN("wide", "%s; reconnecting in %" PRId64 " ms "
                         "(attempt %d; the other sinks go on up to the "
                         "pipeline's in-flight bound)", e->msg, ms,
                         bo.attempt);
            if (cdc_flight_nap(ms, NULL)) {
                b->reconnect_gave_up = 1; /* stopping */
                return -1;
            }
        } else
            bo.attempt = 1; /* the first try at once */
        if (!b->reconnect(ctx, &e2)) {
            b->reconnects++;
            CDC_INFO("wide", "reconnected after %.1f s; applying the batch "
                     "again", (double)(cdc_now_us() - t0) / 1e6);
            cdc_metrics_sink_state(1, NULL);
            return 0;
        }
        if (!lost(&e2)) {
            *e = e2;
            b->reconnect_gave_up = 1;
            return -1;
        }
        snprintf(e->msg, sizeof(e->msg), "%s", e2.msg);
    }
}

int cdc_wide_batch_apply(cdc_wide_batch_t *b, cdc_wide_ops_t *ops,
                         int (*apply)(void *ctx, cdc_err_t *err),
                         int (*retriable)(const cdc_err_t *err), void *ctx,
                         cdc_err_t *err)
{
    int tries = 0, open0 = b->frag_open, frag = b->has_frag;

    if (!b->ntxns)
        return 0;
    for (;;) {
        cdc_err_t e = {0};
        if (!apply(ctx, &e))
            break;
        /* the connection was lost: reconnect in place and apply the
         * batch again (not inside a fragmented transaction whose earlier
         * batches went with the session) */
        if (!open0 && lost(&e) && b->reconnect && !b->reconnect_gave_up &&
            b->reconnect_timeout_ms > 0 && !reconnect_in_place(b, ctx, &e))
            continue;
        /* a failure inside an open fragmented transaction rolled back its
         * earlier batches too: no retry, no change-by-change run, the
         * whole transaction fails and is read again on restart */
        if (open0 || frag) {
            if (!open0 && !(e.flags & CDC_ERR_F_DATA) && retriable(&e) &&
                ++tries < 8) {
                /* its first batch: nothing before it was lost */
                usleep((useconds_t)(10000 * tries + random() % 20000));
                continue;
            }
            b->frag_open = 0;
            b->in_frag = 0;
            *err = e;
            cdc_err_detail(err, "a transaction applied in fragments; it is "
                           "rolled back as a whole");
            cdc_wide_batch_finish(b, ops, 0);
            return -1;
        }
        if (++tries < 8 && retriable(&e)) {
            usleep((useconds_t)(10000 * tries + random() % 20000));
            continue;
        }
        /* a value the database refused: with dead letters, keep the
         * refused changes and go on; else name the first one */
        if ((e.flags & CDC_ERR_F_DATA) && ops->n &&
            !isolate(b, ops, apply, ctx, !b->dead_letter, &e))
            break;
        *err = e;
        cdc_wide_batch_finish(b, ops, 0);
        return -1;
    }
    cdc_wide_batch_finish(b, ops, 1);
    return 0;
}

int cdc_wide_source_writes(const cdc_map_t *map, const char *source,
                           const cdc_map_target_t *t)
{
    for (uint32_t i = 0; i < map->nmappings; i++)
        if (map->mappings[i].target == t &&
            !strcmp(map->mappings[i].source->id, source))
            return 1;
    return 0;
}

int cdc_wide_purge_conf(cdc_wide_purge_t *p, const cdc_conf_t *conf,
                        const char *prefix, cdc_err_t *err)
{
    char k1[96], k2[96];

    snprintf(k1, sizeof(k1), "%s.tombstone_keep", prefix);
    snprintf(k2, sizeof(k2), "%s.tombstone_purge_every", prefix);
    p->next_us = 0;
    p->side = NULL;
    p->more = 0;
    if (cdc_conf_get_duration(conf, k1, "0", 0, "0 keeps tombstones forever",
                              &p->keep_us, err) ||
        cdc_conf_get_duration(conf, k2, "5m", 1, NULL, &p->every_us, err))
        return -1;
    return 0;
}

void cdc_wide_purge_due(cdc_wide_purge_t *p, const cdc_map_t *map,
                        const char *source,
                        int (*purge)(void *ctx, const cdc_map_target_t *t,
                                     int64_t cutoff_us, long *n,
                                     cdc_err_t *err),
                        void *ctx, const char *fac)
{
    int64_t now = cdc_now_us();
    long total = 0;
    int full = 0;

    if (!p->keep_us || now < p->next_us)
        return;
    p->next_us = now + p->every_us;
    for (uint32_t i = 0; i < map->ntargets; i++) {
        const cdc_map_target_t *t = &map->targets[i];
        cdc_err_t e = {0};
        long n = 0;
        if (!(t->tombstones || (p->side && p->side(t))) ||
            !cdc_wide_source_writes(map, source, t))
            continue;
        p->more = 0;
        if (purge(ctx, t, now - p->keep_us, &n, &e)) {
            CDC_WARN(fac, "target %s: %s; tried again in %" PRId64 " s",
                     t->name, e.msg, p->every_us / 1000000);
            return;
        }
        if (n)
            CDC_INFO(fac, "target %s: purged %ld tombstones whose deletion is "
                     "older than tombstone_keep (%" PRId64 " s)", t->name, n,
                     p->keep_us / 1000000);
        total += n;
        full |= n >= CDC_WIDE_PURGE_ROWS || p->more;
    }
    if (!total)
        CDC_DEBUG(fac, "no tombstone older than tombstone_keep");
    /* more to purge: again in a second, batches run in between */
    if (full)
        p->next_us = now + 1000000;
}

void cdc_wide_batch_free(cdc_wide_batch_t *b, const char *fac)
{
    if (b->skipped_dups)
        CDC_INFO(fac, "skipped %" PRIu64 " transactions already applied",
                 b->skipped_dups);
    free(b->txns);
    b->txns = NULL;
    cdc_dl_free(&b->dead);
    free(b->retry_ids);
    free(b->retry_op0);
    b->retry_ids = NULL;
    b->retry_op0 = NULL;
    free(b->op_tx);
    free(b->op_ch);
    b->op_tx = NULL;
    b->op_ch = NULL;
}

int cdc_wide_batch_write(cdc_wide_batch_t *b, cdc_map_t *map,
                         const char *source, cdc_wide_ops_t *ops,
                         cdc_txn_t *tx,
                         int (*flush)(void *ctx, cdc_err_t *err),
                         void (*rollback)(void *ctx), void *ctx,
                         const char *fac, cdc_err_t *err)
{
    int r;

    switch (cdc_wide_batch_frag_check(b, tx)) {
    case 1: /* whole transactions commit before a fragmented one opens */
        if (flush(ctx, err))
            return -1;
        break;
    case 2: /* the source began the open transaction again */
        CDC_WARN(fac, "transaction begun again by the source: what was "
                 "applied of it is rolled back");
        if (b->frag_open)
            rollback(ctx);
        cdc_wide_batch_frag_reset(b, ops);
        break;
    }
    r = cdc_wide_batch_add(b, map, source, ops, tx, err);
    return r > 0 ? flush(ctx, err) : r;
}

int cdc_wide_batch_already_applied(const cdc_wide_batch_t *b, const char *fac)
{
    if (b->retry || b->isolate || !b->have_stored || b->batch_unordered ||
        b->has_frag || strcmp(b->batch_pos, b->stored) > 0)
        return 0;
    CDC_WARN(fac, "batch up to %s is already in the target database; "
             "skipped", b->batch_pos);
    return 1;
}
