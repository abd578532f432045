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

/* Debezium value modes (docs/ENVELOPE.md); 0 is Debezium's default. */
typedef enum {
    CDC_DBZ_TIME_ADAPTIVE = 0,
    CDC_DBZ_TIME_ADAPTIVE_US, /* adaptive_time_microseconds */
    CDC_DBZ_TIME_CONNECT,
    CDC_DBZ_TIME_ISO,         /* iso_string: our own text values */
} cdc_dbz_time_t;
typedef enum {
    CDC_DBZ_DEC_PRECISE = 0,
    CDC_DBZ_DEC_STRING,
    CDC_DBZ_DEC_DOUBLE,
} cdc_dbz_dec_t;
typedef enum { CDC_DBZ_BIGINT_LONG = 0, CDC_DBZ_BIGINT_PRECISE } cdc_dbz_bigint_t;
typedef enum {
    CDC_DBZ_BIN_BYTES = 0,
    CDC_DBZ_BIN_BASE64,
    CDC_DBZ_BIN_HEX,
} cdc_dbz_bin_t;

typedef struct cdc_env_opts {
    cdc_format_t format;
    const char *application_id; /* autoglm: application_id; debezium: name
                                   and the schema/topic prefix */
    /* debezium only (zero = Debezium's defaults) */
    uint8_t schemas;      /* debezium.schemas: {"schema","payload"} */
    uint8_t time_mode;    /* cdc_dbz_time_t */
    uint8_t decimal_mode; /* cdc_dbz_dec_t */
    uint8_t bigint_mode;  /* cdc_dbz_bigint_t */
    uint8_t binary_mode;  /* cdc_dbz_bin_t */
    uint8_t txmeta;       /* provide.transaction.metadata */
    uint8_t src_type;     /* column.propagate.source.type */
    /* the writer's transaction-metadata state across the fragments of a
     * transaction (cdc_dbz_txs_*), or NULL: each txn numbered alone */
    struct cdc_dbz_txs *txs;
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

/* -- Debezium (envelope_debezium.c) -------------------------------- */
struct cdc_conf;
struct cdc_err;
/** @brief Read the debezium.* keys of conf into o (format stays). */
int cdc_dbz_opts_conf(cdc_env_opts_t *o, const struct cdc_conf *conf,
                      struct cdc_err *err);
/** @brief Append a Debezium value for change ch with op and the given
 *  images (a key change is written as 'd' then 'c'); {"schema","payload"}
 *  when o->schemas. */
void cdc_dbz_write(cdc_buf_t *out, const cdc_env_opts_t *o,
                   const cdc_txn_t *tx, const cdc_change_t *ch, char op,
                   const cdc_value_t *before, const cdc_value_t *after);
/** @brief Append the Debezium key of ch from img (its key columns, or all
 *  present columns without a key; missing ones from fallback), values by
 *  the modes of o. */
void cdc_dbz_key(cdc_buf_t *out, const cdc_env_opts_t *o,
                 const cdc_txn_t *tx, const cdc_change_t *ch,
                 const cdc_value_t *img, const cdc_value_t *fallback);
/** @brief 1 if ch is an update that changes the primary key. */
int cdc_dbz_key_changed(const cdc_change_t *ch);
/** @brief Transaction metadata: the BEGIN (end = 0) or END event of tx,
 *  and its key {"id":...}. */
void cdc_dbz_txn_event(cdc_buf_t *out, const cdc_env_opts_t *o,
                       const cdc_txn_t *tx, int end);
void cdc_dbz_txn_key(cdc_buf_t *out, const cdc_env_opts_t *o,
                     const cdc_txn_t *tx);

/*
 * Transaction metadata of a transaction that comes in fragments
 * (cdc_txn_t.frag/more): a writer that sets o->txs = a zeroed state calls
 * cdc_dbz_txs_begin() before it writes a txn (a fragment or a whole
 * transaction) and cdc_dbz_txs_end() after its last change.  The
 * "transaction" block's total_order and data_collection_order then go on
 * across the fragments, and its id, BEGIN and END (cdc_dbz_txn_event(),
 * cdc_dbz_txn_key()) are those of the whole transaction: the id is taken
 * at its first fragment, END counts the changes of every fragment, per
 * table in first-seen order.  A replay starts again at fragment 0 and
 * numbers the same.  Returns of begin: 1 if tx starts a transaction (the
 * writer's BEGIN is due), else 0; of end: 1 if tx ends it (END is due).
 */
typedef struct cdc_dbz_txs {
    int open;            /* a transaction is open (its next fragment due) */
    uint32_t next_frag;  /* the fragment index expected next */
    uint64_t base;       /* changes of the earlier fragments, then after
                            end(): of all fragments so far */
    const cdc_txn_t *tx; /* the fragment being written */
    uint32_t cur;        /* changes of tx counted into dc[] so far */
    char id[320];        /* the transaction id, from its first fragment */
    struct cdc_dbz_dc {
        char *name;              /* "db.table" (owned) */
        const cdc_table_t *tbl;  /* last table object seen with it */
        uint64_t n;              /* changes counted */
    } *dc;
    size_t ndc, capdc;
    size_t last;         /* dc index of the last change counted */
} cdc_dbz_txs_t;
int cdc_dbz_txs_begin(cdc_dbz_txs_t *st, const cdc_txn_t *tx);
int cdc_dbz_txs_end(cdc_dbz_txs_t *st, const cdc_txn_t *tx);
void cdc_dbz_txs_free(cdc_dbz_txs_t *st);

/* -- shared by the writers (not for other callers) ------------------ */
void cdc_json_u64(cdc_buf_t *out, uint64_t v);
void cdc_json_i64(cdc_buf_t *out, int64_t v);
void cdc_json_double(cdc_buf_t *out, double d, int is_float);
/** @brief {"col":value,...} over the present columns of an image (NULL:
 *  null); values by fn(out, ctx, column, value), or cdc_json_value() when
 *  fn is NULL.  ABSENT and UNCHANGED columns are left out. */
typedef void (*cdc_json_value_fn)(cdc_buf_t *out, const void *ctx,
                                  const cdc_column_t *c,
                                  const cdc_value_t *v);
void cdc_json_image(cdc_buf_t *out, const cdc_table_t *t,
                    const cdc_value_t *img, cdc_json_value_fn fn,
                    const void *ctx);
/** @brief ,"unchanged":["col",...] of the columns of ch's after image that
 *  exist but were not sent (PostgreSQL unchanged TOAST); nothing when none. */
void cdc_json_unchanged(cdc_buf_t *out, const cdc_change_t *ch);
/** @brief "\"name\":" of a column, cached in the column. */
void cdc_json_col_key(cdc_buf_t *out, const cdc_column_t *c);

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
