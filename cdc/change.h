/* SPDX-License-Identifier: Apache-2.0 */
/*
 * change.h - the row/value model shared by every source, mapping and sink.
 *
 * A source turns committed work into cdc_txn_t objects: one transaction,
 * its commit time, its source position and the row changes in commit
 * order.  All memory of a txn (values, strings, the change array) lives in
 * the txn's arena and is released by cdc_txn_destroy().  Table metadata
 * (cdc_table_t) is shared between txns and reference counted.
 *
 * Three states of a column that must never be confused:
 *   CDC_V_ABSENT    the column is not in this row image (MINIMAL/NOBLOB
 *                   binlog images, key-only old tuples): say nothing.
 *   CDC_V_UNCHANGED the value exists but was not sent because it did not
 *                   change (PostgreSQL unchanged TOAST): sinks keep theirs.
 *   CDC_V_NULL      SQL NULL.
 */
#ifndef CDC_CHANGE_H
#define CDC_CHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "cdc/buf.h"

typedef enum cdc_vkind {
    CDC_V_ABSENT = 0,
    CDC_V_UNCHANGED,
    CDC_V_NULL,
    CDC_V_BOOL,    /* u.b */
    CDC_V_INT,     /* u.i */
    CDC_V_UINT,    /* u.u */
    CDC_V_FLOAT,   /* u.d holds a float32 value; printed shortest for float */
    CDC_V_DOUBLE,  /* u.d */
    CDC_V_DECIMAL, /* s/len: exact decimal text, emitted as a JSON string */
    CDC_V_STRING,  /* s/len: UTF-8 text, emitted as a JSON string */
    CDC_V_BYTES,   /* s/len: raw bytes, emitted as base64 */
    CDC_V_JSON,    /* s/len: a valid JSON text, embedded compactly */
} cdc_vkind_t;

typedef struct cdc_value {
    uint8_t kind; /* cdc_vkind_t */
    union {
        int b;
        int64_t i;
        uint64_t u;
        double d;
    } u;
    const char *s; /* arena-owned, NUL-terminated after len */
    size_t len;
} cdc_value_t;

/* Column flags. */
#define CDC_COL_PK 0x01
#define CDC_COL_UNSIGNED 0x02
#define CDC_COL_NULLABLE 0x04
#define CDC_COL_BINARY 0x08 /* binary collation: strings are bytes */

typedef struct cdc_column {
    char *name;     /* owned by the table; "@N" (1-based) if unknown */
    uint32_t type;  /* source type code (MySQL field type / PG type oid) */
    uint32_t meta;  /* source type metadata (MySQL) / typmod (PG) */
    uint32_t flags; /* CDC_COL_* */
    uint16_t charset; /* MySQL collation id, 0 unknown */
    char **members;   /* ENUM/SET member strings (owned), NULL if none */
    uint32_t nmembers;
    uint32_t extra;   /* source specific (geometry type, dims, ...) */
    char *jkey;       /* envelope writer cache: "\"name\":" (owned, lazy) */
    uint32_t jkeylen;
} cdc_column_t;

typedef struct cdc_table {
    int refcnt;
    char *db;       /* database (MySQL) or schema (PG) */
    char *name;
    uint64_t id;    /* MySQL table_id / PG relid */
    uint32_t ncols;
    cdc_column_t *cols;
    uint32_t npk;
    uint32_t *pk;   /* indexes of primary key columns, in key order */
    void *priv;     /* source-private data, freed with priv_free */
    /* Debezium writer cache (owned, lazy): key and value schema texts,
     * valid for the writer settings hashed in dbz_tag */
    char *dbz_kschema, *dbz_vschema;
    uint32_t dbz_tag;
    void (*priv_free)(void *);
} cdc_table_t;

/** @brief New table with ncols zeroed columns, refcnt 1. */
cdc_table_t *cdc_table_new(const char *db, const char *name, uint32_t ncols);
cdc_table_t *cdc_table_keep(cdc_table_t *t);
/** @brief Drop one reference; frees on the last.  NULL is a no-op. */
void cdc_table_destroy(cdc_table_t *t);

typedef enum cdc_op {
    CDC_OP_CREATE = 'c',
    CDC_OP_UPDATE = 'u',
    CDC_OP_DELETE = 'd',
    CDC_OP_READ = 'r',     /* snapshot / backfill */
    CDC_OP_TRUNCATE = 't',
} cdc_op_t;

typedef struct cdc_change {
    char op;              /* cdc_op_t */
    cdc_table_t *tbl;     /* reference held by the txn */
    cdc_value_t *before;  /* tbl->ncols values, or NULL (insert) */
    cdc_value_t *after;   /* tbl->ncols values, or NULL (delete/truncate) */
    uint64_t pos;         /* source offset of the event holding the row
                             (binlog) or LSN of the change (PG) */
    uint32_t row;         /* index of the row within that event */
} cdc_change_t;

/* A source position: where to resume after the transaction it belongs to.
 * Kept as plain data so checkpoints can store and compare it. */
typedef struct cdc_pos {
    char file[256];  /* binlog file name ("" for PG) */
    uint64_t offset; /* binlog offset after the commit event */
    char gtid[1024]; /* MariaDB GTID state "d-s-n,..." or MySQL GTID set */
    uint64_t lsn;    /* PG: end LSN of the commit */
} cdc_pos_t;

typedef struct cdc_txn {
    uint64_t seq;          /* pipeline sequence number (set by pipeline) */
    int64_t commit_us;     /* commit time, µs since the Unix epoch, UTC */
    uint32_t server_id;    /* MySQL server_id of the origin */
    const char *connector; /* "mysql", "mariadb", "postgresql" (static) */
    char gtid[128];        /* GTID of this transaction ("" if none) */
    uint64_t xid;          /* PG txid / MySQL xid */
    const char *file;      /* binlog file of the changes (arena) */
    cdc_pos_t pos;         /* resume position after this txn */
    cdc_change_t *changes;
    uint32_t nchanges, capchanges;
    cdc_arena_t arena;
    int pending;           /* sink: messages not yet acknowledged */
    int failed;            /* sink: delivery failed */
    int skipped;           /* source: filtered/own write; no output */
    /* source: a fragment of a larger transaction (any transaction size in
     * bounded memory).  frag is the fragment's index in its transaction
     * (0 = first); more != 0 while fragments of the same transaction
     * follow.  The pos of a fragment with more set is not a resume point:
     * the checkpoint never stops there, and a sink that applies a
     * transaction atomically commits only at the fragment without more. */
    uint32_t frag;
    int more;
} cdc_txn_t;

cdc_txn_t *cdc_txn_new(void);
/** @brief Append a change; returns it zeroed except op/tbl (tbl is kept). */
cdc_change_t *cdc_txn_add(cdc_txn_t *tx, char op, cdc_table_t *tbl);
/** @brief Array of n ABSENT values in the txn arena. */
cdc_value_t *cdc_txn_values(cdc_txn_t *tx, uint32_t n);
void cdc_txn_destroy(cdc_txn_t *tx);

#endif
