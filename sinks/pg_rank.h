/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg_rank.h - how the PostgreSQL wide table stores the rank and
 * provenance of a field (docs/MAPPINGS.md, "The PostgreSQL wide sink").
 *
 * Every non-key field f of a wide table has a column "_r_<f>" (bytea)
 * next to its value: the field's stored rank, in binary, followed by the
 * rest of its provenance:
 *
 *   rank bytes | commit µs (8, big-endian, signed) | deleted (1: 0 or 1)
 *   | source id (UTF-8) | extra (UTF-8 JSON object, may be empty)
 *   | length of extra (4, big-endian) | length of the source id (1)
 *
 * extra holds what a recomputed field shows beyond source, time, rank and
 * deletion (per-source votes and scores, say): autoglm_cdc_rank() keeps
 * every other key of the entry there and autoglm_cdc_prov() merges it
 * back into the object.
 *
 * The rank bytes come first and ranks of one field have one length (the
 * rule's), so comparing two stored ranks bytewise (bytea's `>`, memcmp)
 * compares the ranks exactly as the text ranks compared: a field takes
 * a value only when the incoming column compares greater, and
 * GREATEST(stored, incoming) is the winner's.  A NULL column is no
 * provenance (every rank is greater).  The trailer is read from the end,
 * so the layout needs no knowledge of the rule.
 *
 * SQL functions created next to the table (cdc_pgrank_functions_sql):
 *   autoglm_cdc_prov(bytea) -> jsonb   {"s":..,"t":..,"r":hex,"d":1,
 *                                     ..extra} (the old _provenance entry)
 *   autoglm_cdc_rank(jsonb) -> bytea   the inverse (migration, repair)
 *   autoglm_cdc_deleted(bytea) -> bool the deletion mark (false for NULL)
 * and the function <table>_provenance(): the table's fields and
 * _provenance jsonb, the object the table held before (one entry per
 * field with provenance).
 *
 * Any other state that stores a rank for a field (side tables) should
 * use the same column type, encoding and functions.
 */
#ifndef CDC_PG_RANK_H
#define CDC_PG_RANK_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "cdc/buf.h"
#include "mappings/map.h"

#define CDC_PGRANK_PREFIX "_r_"
/* longest column name PostgreSQL keeps (NAMEDATALEN - 1) */
#define CDC_PGRANK_NAMEMAX 63

/** @brief The rank column of field into out ("_r_<field>"); -1 when the
 *  name would be longer than PostgreSQL keeps (the caller refuses). */
int cdc_pgrank_col(char *out, size_t n, const char *field);

/**
 * @brief Append the stored form of one field's provenance as bytea input
 *        text ("\x" and hex digits); copy: for COPY text format (the
 *        backslash doubled).  rank is the engine's hex rank (map.h).
 */
void cdc_pgrank_put(cdc_buf_t *b, const char *rank, int64_t commit_us,
                    int deleted, const char *source, int copy);

/** @brief Bytes of the rank of field f (its rule's fixed length): the
 *  part of the stored column that decides, compared as substr(c, 1, n). */
int cdc_pgrank_bytes(const cdc_map_field_t *f);

/** @brief "no field of row alias has provenance": every rank column NULL
 *  (rank), or an empty _provenance object (!rank). */
void cdc_pgrank_none(PGconn *pg, cdc_buf_t *b, const cdc_map_target_t *t,
                     const char *alias, int rank);

/** @brief The CREATE OR REPLACE FUNCTION statements of the helper
 *  functions in schema qschema (quoted), separated by ";". */
void cdc_pgrank_functions_sql(cdc_buf_t *b, const char *qschema);

#endif
