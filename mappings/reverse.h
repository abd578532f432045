/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reverse.h - two-way sync support for the mapping engine
 * (docs/TWO-WAY.md).
 *
 * In a two-way setup both tables - the business table and the wide
 * table - keep a `_provenance` column, and a trigger on each stamps every
 * direct edit (one not made by our sinks) of a two-way field with its
 * rank: {"s": source, "t": µs, "r": rank}, computed with the field's
 * rule from the edit's time (at least the stored time + 1 µs), the
 * source's priority and id hash.  A value carries that rank everywhere:
 * cdc_twoway_restamp() replaces the rank the engine computed from the
 * commit time with the one stored in the row, so both sides compare the
 * same ranks and resolve every conflict identically.  A direct row
 * delete leaves no row: its trigger writes the ranks into the key's row of
 * `<table>_tombstones` in the same transaction, and
 * cdc_twoway_restamp_delete() takes them from there.
 */
#ifndef CDC_REVERSE_H
#define CDC_REVERSE_H

#include "mappings/map.h"

/**
 * @brief For the operations ops->ops[from .. ops->n) made from change ch:
 * when ch's new row has a `_provenance` column with an entry for the
 * column a value was read from (a bare column or `from:`), and that
 * entry's rank has the layout of the field's rule, use it as the value's
 * rank (and its "t" as the operation's commit time when all values of
 * the operation agree).  Rows without `_provenance` are left alone.
 * @returns the number of values restamped.
 */
uint32_t cdc_twoway_restamp(const cdc_change_t *ch, cdc_wide_ops_t *ops,
                            uint32_t from);

/**
 * @brief Two-way row deletes: change idx of tx is a row delete that made
 * the CDC_WIDE_DELETE operations among ops->ops[from .. ops->n).  When tx
 * also writes the deleted key's row of `<table>_tombstones` (same
 * database; the generated AFTER DELETE trigger does, in the deleting
 * transaction), the deletion entries ("d") of that row's `_provenance`
 * give the deletes' ranks and time, read like cdc_twoway_restamp() reads
 * a row's entries (by the column each field is read from).  Without such
 * a row the engine's commit-time ranks stay.  The search starts at
 * *cursor (0 for a new transaction) and wraps; *cursor moves past the row
 * found, so the deletes of one statement, whose trigger rows follow in the
 * same order (MariaDB: each right after its delete; PostgreSQL: all after
 * the statement), cost O(1) each instead of a scan of the transaction.
 * @returns the number of values restamped.
 */
uint32_t cdc_twoway_restamp_delete(const cdc_txn_t *tx, uint32_t idx,
                                   cdc_wide_ops_t *ops, uint32_t from,
                                   uint32_t *cursor);
/** @brief 1 if a change of tx writes a table named *_tombstones (only then
 *  can cdc_twoway_restamp_delete() find anything in it). */
int cdc_twoway_txn_has_tombstones(const cdc_txn_t *tx);

/** @brief Length of a rank under rule r (latest/priority 64, weighted 80). */
size_t cdc_twoway_rank_len(cdc_mrule_t r);

/** @brief The rank a trigger writes for a direct edit: rule r, source
 *  priority and weight, source id, time in µs; the position part is
 *  zeros.  out must hold CDC_MAP_RANK_LEN + 1 bytes. */
void cdc_twoway_rank(cdc_mrule_t r, int priority, double weight,
                     const char *source, int64_t t_us, char *out);

/**
 * @brief Write the reverse of mapping fwd as a YAML mapping entry (to
 * paste under `mappings:`): source rsource reads fwd's target table and
 * writes target rtarget (a declared target over fwd's source table).
 *   key     {fwd source column: wide key field} for each key field read
 *           from a bare column;
 *   fields  for every field of fwd read from a bare column or `from:`
 *           whose column is a field of rtarget owned by rsource ("only the
 *           fields that direction owns"): `{from: wide field}`, with the
 *           value map inverted.
 * Fields computed by expressions, maps with `else:` or that are not
 * one-to-one cannot be reversed; they are listed in a comment.
 * @returns the number of reversed fields, or -1 with err (CDC_EXIT_CONFIG:
 *          unknown mapping/target/source, or no key column).
 */
int cdc_map_reverse_yaml(const cdc_map_t *m, const char *fwd,
                         const char *rsource, const char *rtarget,
                         cdc_buf_t *out, cdc_err_t *err);

#endif
