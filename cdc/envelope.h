/* SPDX-License-Identifier: Apache-2.0 */
/*
 * envelope.h - JSON envelopes, one object per row change.
 *
 * Formats: "autoglm" (the platform contract, default) and "debezium"
 * (Debezium's schema-less JSON as read by Flink debezium-json).  The value
 * rules are identical in both (docs/ENVELOPE.md).  The writer is a small
 * purpose-built emitter (chosen over yajl_gen by `make bench`); its output
 * is checked with yajl's parser in the tests.
 */
#ifndef CDC_ENVELOPE_H
#define CDC_ENVELOPE_H

#include "cdc/buf.h"
#include "cdc/change.h"

#define CDC_ENVELOPE_VERSION 1

typedef enum { CDC_FMT_AUTOGLM = 0, CDC_FMT_DEBEZIUM = 1 } cdc_format_t;

typedef struct cdc_env_opts {
    cdc_format_t format;
    const char *application_id; /* autoglm: application_id; debezium: name */
} cdc_env_opts_t;

/** @brief Parse "autoglm" / "debezium"; -1 if unknown. */
int cdc_format_parse(const char *s, cdc_format_t *out);

/** @brief Append the envelope of ch (no trailing newline). */
void cdc_envelope_write(cdc_buf_t *out, const cdc_env_opts_t *o,
                        const cdc_txn_t *tx, const cdc_change_t *ch);
/** @brief Append the message key: JSON object of the primary-key columns
 *  (from after, or before for deletes); all columns if no key is known. */
void cdc_envelope_key(cdc_buf_t *out, const cdc_change_t *ch);
/** @brief Append one value by the value rules (ABSENT/UNCHANGED -> null). */
void cdc_json_value(cdc_buf_t *out, const cdc_value_t *v);
/** @brief Append a JSON string literal; invalid UTF-8 becomes U+FFFD. */
void cdc_json_string(cdc_buf_t *out, const char *s, size_t len);
/** @brief Format a finite double as JSON: the shortest of %.15g, %.16g,
 *  %.17g that reads back as d (tmp >= 32 bytes); returns the length.
 *  cdc_json_double_fmt_ref() is the plain snprintf/strtod loop it must
 *  equal byte for byte. */
size_t cdc_json_double_fmt(char *tmp, double d);
size_t cdc_json_double_fmt_ref(char *tmp, double d);
/** @brief The same for a float: the shortest of %.6g .. %.9g that reads
 *  back (strtof) as f; cdc_json_float_fmt_ref() is that plain loop. */
size_t cdc_json_float_fmt(char *tmp, float f);
size_t cdc_json_float_fmt_ref(char *tmp, float f);
/** @brief Append UTC time "YYYY-MM-DDTHH:MM:SS.mmmZ" of µs since epoch. */
void cdc_json_iso_ms(cdc_buf_t *out, int64_t us);

/* -- reading envelopes back (Kafka source, mapping test); the trees come
 * from cdc_json_parse (cdc/jsontree.h), so strings keep their length */
struct yajl_val_s;
/** @brief Append the JSON text of a parsed yajl tree node (NULL: null). */
void cdc_json_tree_text(cdc_buf_t *out, const struct yajl_val_s *v);
/** @brief Type an envelope value: null, bool, integers (INT, or UINT when
 *  above int64, or DECIMAL digits when above uint64), other numbers
 *  DOUBLE, strings STRING, arrays/objects JSON; strings copied into a. */
void cdc_json_to_value(cdc_arena_t *a, cdc_value_t *cv,
                       const struct yajl_val_s *v);

/** @brief Length of the valid UTF-8 sequence at p (1..4; n > 0), 0 if
 *  invalid or n == 0. */
size_t cdc_utf8_seq(const unsigned char *p, size_t n);

#endif
