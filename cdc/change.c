/* SPDX-License-Identifier: Apache-2.0 */
/*
 * change.c - tables and transactions of the row/value model.
 */
#include <stdlib.h>

#include "cdc/change.h"

cdc_table_t *cdc_table_new(const char *db, const char *name, uint32_t ncols)
{
    cdc_table_t *t = cdc_xcalloc(1, sizeof(*t));

    t->refcnt = 1;
    t->db = cdc_xstrdup(db ? db : "");
    t->name = cdc_xstrdup(name ? name : "");
    t->ncols = ncols;
    t->cols = cdc_xcalloc(ncols ? ncols : 1, sizeof(*t->cols));
    return t;
}

/* The reference count is atomic: a source's reader thread (the mysql
 * source decodes in its own thread) takes references while the pipeline
 * drops others when it frees delivered txns. */
cdc_table_t *cdc_table_keep(cdc_table_t *t)
{
    if (t)
        __atomic_add_fetch(&t->refcnt, 1, __ATOMIC_RELAXED);
    return t;
}

void cdc_table_destroy(cdc_table_t *t)
{
    if (!t || __atomic_sub_fetch(&t->refcnt, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    for (uint32_t i = 0; i < t->ncols; i++) {
        cdc_column_t *c = &t->cols[i];
        free(c->name);
        free(c->jkey);
        for (uint32_t j = 0; j < c->nmembers; j++)
            free(c->members[j]);
        free(c->members);
    }
    if (t->priv && t->priv_free)
        t->priv_free(t->priv);
    free(t->cols);
    free(t->pk);
    free(t->dbz_kschema);
    free(t->dbz_vschema);
    free(t->db);
    free(t->name);
    free(t);
}

cdc_txn_t *cdc_txn_new(void)
{
    cdc_txn_t *tx = cdc_xcalloc(1, sizeof(*tx));
    cdc_arena_init(&tx->arena);
    return tx;
}

cdc_change_t *cdc_txn_add(cdc_txn_t *tx, char op, cdc_table_t *tbl)
{
    cdc_change_t *ch;

    if (tx->nchanges == tx->capchanges) {
        tx->capchanges = tx->capchanges ? tx->capchanges * 2 : 16;
        tx->changes = cdc_xrealloc(tx->changes,
                                   tx->capchanges * sizeof(*tx->changes));
    }
    ch = &tx->changes[tx->nchanges++];
    memset(ch, 0, sizeof(*ch));
    ch->op = op;
    ch->tbl = cdc_table_keep(tbl);
    return ch;
}

cdc_value_t *cdc_txn_values(cdc_txn_t *tx, uint32_t n)
{
    return cdc_arena_calloc(&tx->arena, (n ? n : 1) * sizeof(cdc_value_t));
}

void cdc_txn_destroy(cdc_txn_t *tx)
{
    if (!tx)
        return;
    for (uint32_t i = 0; i < tx->nchanges; i++)
        cdc_table_destroy(tx->changes[i].tbl);
    free(tx->changes);
    cdc_arena_destroy(&tx->arena);
    free(tx);
}
