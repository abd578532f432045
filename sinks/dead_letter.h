/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dead_letter.h - changes a sink could not apply, kept instead of stopping
 * (errors.mode: dead-letter; docs/OPERATIONS.md, "Dead letters").
 *
 * With errors.mode=stop (the default) a change that cannot be applied
 * stops the pipeline with exit 65 before anything of its transaction is
 * written.  With errors.mode=dead-letter the change is written, with its
 * error, to the dead-letter table of the sink's database (wide sinks) in
 * the same database transaction as the batch and its offsets, and the
 * pipeline goes on.  `autoglm-cdc dead-letter list|retry` reads the table
 * back; retry maps each change again (after the mapping was fixed) and
 * applies it and deletes its row in one transaction.
 *
 * A dead letter keeps the change losslessly: every value with its kind,
 * text and bytes hex-encoded, so a retry sees exactly the change the
 * source delivered (NUL, invalid UTF-8 and NaN included) and maps it at
 * its original position and commit time.
 */
#ifndef CDC_DEAD_LETTER_H
#define CDC_DEAD_LETTER_H

#include <stdint.h>
#include <stdio.h>

#include "cdc/buf.h"
#include "cdc/change.h"
#include "cdc/conf.h"
#include "cdc/err.h"

#define CDC_DL_TABLE "autoglm_cdc_dead_letter"

/* One change kept for the dead-letter table. */
typedef struct cdc_dl_entry {
    char *table;     /* source db.table */
    char op[2];      /* c u d r */
    char *position;  /* resume position of its transaction (text) */
    int64_t commit_us;
    char *error;     /* message, detail and hint */
    char *change;    /* lossless encoding (cdc_dl_encode) */
} cdc_dl_entry_t;

typedef struct cdc_dl_list {
    cdc_dl_entry_t *v;
    size_t n, cap;
} cdc_dl_list_t;

/**
 * @brief Read errors.mode: 0 stop (default), 1 dead-letter; and
 *        errors.dead_letter_table into *table (default CDC_DL_TABLE).
 * @returns 0, or -1 with err (CDC_EXIT_CONFIG) for another value.
 */
int cdc_dl_conf(const cdc_conf_t *conf, int *dead, const char **table,
                cdc_err_t *err);

/** @brief Append change idx of tx, with its error, to l. */
void cdc_dl_add(cdc_dl_list_t *l, const cdc_txn_t *tx, uint32_t idx,
                const cdc_err_t *err);
/** @brief Free every entry (the list stays usable). */
void cdc_dl_clear(cdc_dl_list_t *l);
void cdc_dl_free(cdc_dl_list_t *l);

/** @brief Append the lossless encoding of change ch of tx, its index in
 *  the source's txn being idx (one JSON line). */
void cdc_dl_encode(cdc_buf_t *out, const cdc_txn_t *tx,
                   const cdc_change_t *ch, uint32_t idx);
/**
 * @brief Decode a cdc_dl_encode() text: a new txn with that one change at
 *        its original position (*idx: its index in the original txn).
 * @returns the txn, or NULL with err (CDC_EXIT_DATA).
 */
cdc_txn_t *cdc_dl_decode(const char *text, uint32_t *idx, cdc_err_t *err);

/**
 * @brief Print one dead letter for `dead-letter list`: a header line
 *        (id, when, table, op, position), the error, and the change as an
 *        autoglm envelope.
 */
void cdc_dl_print(FILE *out, const char *id, const char *created,
                  const char *table, const char *op, const char *position,
                  const char *error, const char *change);

#endif
