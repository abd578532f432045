/* SPDX-License-Identifier: Apache-2.0 */
/*
 * binlog.h - pure MySQL/MariaDB binlog decoder (no I/O).
 *
 * The decoder is fed complete events (19-byte header .. checksum) from a
 * file reader or a replication stream, keeps the format description,
 * table maps and the open transaction, and hands out one cdc_txn_t per
 * committed transaction, with every row change decoded into the value
 * model of cdc/change.h.  Every read is bounds-checked; an event or a
 * column type it does not know stops decoding with an error naming the
 * type and the byte offset.  Nothing is skipped silently.
 *
 * Column metadata as stored in cdc_column_t by TABLE_MAP decoding:
 *   type     real MySQL field type: for STRING (254) columns the real type
 *            from the metadata (254 CHAR/BINARY, 247 ENUM, 248 SET)
 *   meta     254: max length in bytes; 247/248: pack length (1/2, 1..8);
 *            246 NEWDECIMAL: precision << 8 | scale; 4/5: pack length;
 *            15/253 VARCHAR: max length in bytes; 252/255/245/242: pack
 *            length (1..4); 16 BIT: total bits; 17/18/19: fsp (0..6);
 *            others 0
 *   flags    CDC_COL_UNSIGNED (SIGNEDNESS), CDC_COL_NULLABLE (null bits),
 *            CDC_COL_BINARY (collation 63), CDC_COL_PK (primary key)
 *   charset  collation id (0 when unknown)
 *   members  ENUM/SET strings, converted to UTF-8 from the column's
 *            charset; extra: geometry type or vector dimensions
 *   name     from COLUMN_NAME metadata, else "@N" (N 1-based)
 */
#ifndef CDC_BINLOG_H
#define CDC_BINLOG_H

#include <stddef.h>
#include <stdint.h>

#include "cdc/change.h"
#include "cdc/err.h"

#define CDC_BINLOG_MAGIC "\xfe" "bin"
#define CDC_BINLOG_HEADER_LEN 19

/* Summary of one event, for listings (decode --events) and tests. */
typedef struct cdc_binlog_evinfo {
    uint64_t offset;    /* offset of the event in its file/stream */
    uint32_t timestamp;
    uint8_t type;
    uint32_t server_id;
    uint32_t size;      /* event_size */
    uint32_t log_pos;
    uint16_t flags;
    int depth;          /* 1 for events inside a TRANSACTION_PAYLOAD */
    const char *name;   /* type name as in the .events.txt fixtures */
} cdc_binlog_evinfo_t;

typedef struct cdc_binlog_opts {
    int verify_checksum;          /* verify CRC32 (default on) */
    const char *connector;        /* overrides "mysql"/"mariadb" detection */
    /* Called for every event (and every event inside a payload) before it
     * is decoded; may be NULL. */
    void (*on_event)(void *opaque, const cdc_binlog_evinfo_t *ev);
    void *opaque;
    /* Loop prevention (docs/TWO-WAY.md): hand out a transaction as
     * skipped = 1 with no changes when a rows event of it carries
     * LOG_EVENT_SKIP_REPLICATION_F (0x8000: MariaDB `SET SESSION
     * skip_replication=1`) or it writes a table named autoglm_cdc_marker
     * (any database: the marker row our wide sinks add to each of their
     * transactions).  0 (default) = keep everything. */
    int skip_marked;
    /* Any transaction size in bounded memory: once the open group holds
     * frag_rows changes or frag_bytes bytes, the changes decoded so far
     * are handed out (return 1) as a fragment (cdc_txn_t.frag/more) before
     * the group commits; the last fragment is the one the commit event
     * completes.  0 and 0 (default) = whole transactions only.  XA
     * branches, groups without BEGIN and TRANSACTION_PAYLOAD contents are
     * never cut.  A fragment with more set carries the group's GTID, its
     * commit time as far as known (MySQL: original_commit_timestamp of the
     * GTID event, exact; MariaDB: the timestamp of the group's last decoded
     * event, as the commit time only comes with the XID event), xid 0 and
     * as pos the resume point before the group (never a checkpoint). */
    uint32_t frag_rows;
    size_t frag_bytes;
} cdc_binlog_opts_t;

typedef struct cdc_binlog cdc_binlog_t;

/** @brief New decoder.  o may be NULL (defaults). */
cdc_binlog_t *cdc_binlog_new(const cdc_binlog_opts_t *o);
void cdc_binlog_destroy(cdc_binlog_t *bl);

/** @brief Set the name of the file the following events belong to (a
 *  ROTATE event also sets it). */
void cdc_binlog_set_file(cdc_binlog_t *bl, const char *name);
/** @brief Name of the current file ("" if none; borrowed). */
const char *cdc_binlog_get_file(const cdc_binlog_t *bl);

/**
 * @brief Decode one complete event of len bytes that starts at `offset`
 *        in the current file.
 * @returns 0 (consumed, no transaction completed), 1 (a transaction
 *          committed: *out is a new txn, ownership to the caller), or -1
 *          with err filled (code CDC_EXIT_DATA for undecodable input).
 * With frag_rows/frag_bytes, 1 is also returned for a fragment of an
 * open group (*out->more set).  A group cut into fragments that then
 * turns out not to commit (ROLLBACK, a new group before its end) is an
 * error (CDC_EXIT_DATA): its first fragments are out already.
 * Changes of rolled-back/absent work never appear; XA-prepared rows are
 * held back and emitted at XA COMMIT.  DDL statements end the current
 * group and invalidate cached table maps.
 */
int cdc_binlog_feed(cdc_binlog_t *bl, const uint8_t *ev, size_t len,
                    uint64_t offset, cdc_txn_t **out, cdc_err_t *err);

/** @brief Checksum algorithm from the last FDE: 0 none, 1 CRC32, -1 none
 *  seen yet. */
int cdc_binlog_checksum_alg(const cdc_binlog_t *bl);
/** @brief 1 if the last FDE says MariaDB. */
int cdc_binlog_is_mariadb(const cdc_binlog_t *bl);
/** @brief Position after the last complete transaction (resume point):
 *  file, offset, GTID state (MariaDB "d-s-n,..." per domain; MySQL
 *  executed set "uuid:1-5,..."). */
const cdc_pos_t *cdc_binlog_pos(const cdc_binlog_t *bl);
/** @brief Seed the GTID state (e.g. from a checkpoint). */
void cdc_binlog_set_gtid_state(cdc_binlog_t *bl, const char *state);

/** @brief Name of an event type code ("WRITE_ROWS_V1", ...) or NULL. */
const char *cdc_binlog_type_name(uint8_t type);

/*
 * Reading files (decode): reads a whole binlog file, checks the magic and
 * calls cb for each committed txn.  start_offset 0 = from the beginning
 * (else events before it are decoded for state but not emitted).
 * Truncated files and files without the magic give a clear error.
 * Each txn passed to cb belongs to cb (also when cb fails); cb may be
 * NULL (txns are then destroyed).  Without a file name set, the file's
 * base name is used.
 */
typedef int (*cdc_binlog_txn_cb)(void *opaque, cdc_txn_t *tx, cdc_err_t *err);
int cdc_binlog_read_file(cdc_binlog_t *bl, const char *path,
                         uint64_t start_offset, cdc_binlog_txn_cb cb,
                         void *opaque, cdc_err_t *err);

/* -- value decoding (binlog_value.c), used by the row decoder -------- */

/**
 * @brief Decode one non-NULL column value at p (avail bytes left in the
 *        row image) by col->type / col->meta into out.  Strings and bytes
 *        are copied into arena a.  *used = bytes consumed.
 * @returns 0, or -1 with err (CDC_EXIT_DATA) naming the column type when
 *          the type is unknown or the value does not fit in avail.
 */
int cdc_mysql_value(const cdc_column_t *col, const uint8_t *p, size_t avail,
                    cdc_arena_t *a, cdc_value_t *out, size_t *used,
                    cdc_err_t *err);

/** @brief MySQL binary JSON document -> JSON text appended to out. */
int cdc_mysql_json_text(const uint8_t *p, size_t len, cdc_buf_t *out,
                        cdc_err_t *err);

/** @brief Convert n bytes in collation `collation` to UTF-8 (appended).
 *  Returns 0, or -1 for an unknown charset (err says which). */
int cdc_mysql_to_utf8(uint16_t collation, const uint8_t *p, size_t n,
                      cdc_buf_t *out, cdc_err_t *err);

#endif
