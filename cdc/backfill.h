/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backfill.h - snapshot existing rows as op 'r' transactions (issue 7).
 *
 * `autoglm-cdc backfill` reads tables in primary-key order, one chunk per
 * short transaction (keyset pagination: WHERE (pk) > (last) ORDER BY pk
 * LIMIT n, never OFFSET), emits every chunk as one transaction of op 'r'
 * changes through the configured sink, waits until the sink acknowledged
 * it and then records the chunk's last key in <state.dir>/<pipeline>.backfill
 * (replaced atomically), so a rerun resumes after the last finished
 * chunk.  docs/BACKFILL.md describes the consistency rules (watermarks,
 * consistent first load) and the exit codes.
 *
 * The generic loop lives in cdc/backfill.c; each source type provides a
 * snapshot driver (connectors/mysql/snapshot.c, connectors/pg/snapshot.c)
 * behind cdc_snap_ops_t.  Drivers produce values with exactly the value
 * rules of the streaming decoders (docs/ENVELOPE.md), so a row read by a
 * backfill and the same row read from the binlog/WAL give the same JSON.
 */
#ifndef CDC_BACKFILL_H
#define CDC_BACKFILL_H

#include <stdint.h>

#include "cdc/buf.h"
#include "cdc/change.h"
#include "cdc/conf.h"
#include "cdc/err.h"

typedef struct cdc_snap cdc_snap_t;

/* Where the rows of a chunk sit in the source's order: every change of
 * the chunk is stamped with it (envelope source.file/pos/row or lsn). */
typedef struct cdc_snap_stamp {
    const char *connector; /* "mysql", "mariadb", "postgresql" (static) */
    uint32_t server_id;
    char file[256];        /* binlog file ("" for PostgreSQL) */
    uint64_t pos;          /* binlog offset of the high watermark / LSN */
    char gtid[128];
    int64_t commit_us;     /* commit time of the high watermark */
} cdc_snap_stamp_t;

/* Transactions that a chunk's SELECT did not see although they may be
 * ahead of the low watermark in the change stream (PostgreSQL snapshot:
 * xmin, xmax, in-progress xids).  Empty for MySQL. */
typedef struct cdc_snap_vis {
    uint64_t xmin, xmax;
    uint64_t *xip;
    uint32_t nxip;
} cdc_snap_vis_t;

typedef struct cdc_snap_ops {
    const char *name; /* "mysql", "postgres" */
    /** Connect; no table work yet. */
    cdc_snap_t *(*open)(const cdc_conf_t *conf, int worker, cdc_err_t *err);
    /** Column metadata and key of db.table; est = estimated rows.  The
     *  table's priv holds the driver's per-table state.  pk columns are
     *  marked CDC_COL_PK and listed in tbl->pk (never empty: a table
     *  without a primary or not-null unique key is an error). */
    int (*describe)(cdc_snap_t *s, const char *db, const char *table,
                    cdc_table_t **out, uint64_t *est, cdc_err_t *err);
    /** Tables to back up when none are given (backfill.tables empty):
     *  comma list "db.table" in *out (malloc'd). */
    int (*list_tables)(cdc_snap_t *s, const cdc_conf_t *conf, char **out,
                       cdc_err_t *err);
    /** Open one consistent snapshot for every following chunk and report
     *  the change-stream position it corresponds to (MySQL: binlog
     *  file/offset/GTID state; PostgreSQL: consistent_point LSN of a new
     *  slot).  Returns 0, 1 when not possible here (the caller falls back
     *  to watermarks) or -1.  tables: the backfill's "db.table" list. */
    int (*begin_consistent)(cdc_snap_t *s, const char *tables,
                            cdc_snap_stamp_t *st, char *pos_text,
                            size_t pos_len, cdc_err_t *err);
    /** Commit/close the consistent snapshot. */
    int (*end_consistent)(cdc_snap_t *s, cdc_err_t *err);
    /**
     * Read up to limit rows of tbl after the key `after` (NULL = from the
     * first row) and not beyond `upto` (NULL = no bound), in key order,
     * honouring `where` (NULL = all rows).
     * Appends one op 'r' change per row to tx (after image only).  Sets
     * *last to the key of the last row read (malloc'd, opaque one-word
     * text for the progress file), *nrows to the rows read.  vis (may be
     * NULL) receives the visibility of the statement's snapshot.
     */
    int (*read_chunk)(cdc_snap_t *s, cdc_table_t *tbl, const char *after,
                      const char *upto, const char *where, uint32_t limit,
                      cdc_txn_t *tx, char **last, uint32_t *nrows,
                      cdc_snap_vis_t *vis, cdc_err_t *err);
    /** The largest key of tbl (honouring where) now, in read_chunk's key
     *  form (*out malloc'd, NULL when no row).  A watermarked backfill
     *  stops there (upto): rows inserted later come with the stream, and a
     *  table with a busy insert tail would otherwise never end. */
    int (*max_key)(cdc_snap_t *s, cdc_table_t *tbl, const char *where,
                   char **out, cdc_err_t *err);
    /** Create the signal table if missing (sig = "db.table"/"schema.table"). */
    int (*signal_init)(cdc_snap_t *s, const char *sig, cdc_err_t *err);
    /** Write one watermark row (own short transaction) with id. */
    int (*watermark)(cdc_snap_t *s, const char *sig, const char *id,
                     cdc_err_t *err);
    /** Remove this run's signal rows (ids starting with prefix). */
    int (*signal_cleanup)(cdc_snap_t *s, const char *sig, const char *prefix,
                          cdc_err_t *err);
    /** Settings of the change-stream reader that watches the watermark
     *  window (a second instance of the streaming source): set its own
     *  replica id / slot, start "now", tables = comma list incl. sig. */
    void (*window_conf)(cdc_snap_t *s, cdc_conf_t *wconf, int worker,
                        const char *tables, const char *sig);
    /** Release what the window reader left on the server (slot); may be
     *  NULL. */
    void (*window_drop)(cdc_snap_t *s, const cdc_conf_t *wconf);
    void (*close)(cdc_snap_t *s);
    /** The envelope's source.connector of rows read without a watermark
     *  window or consistent snapshot ("mysql", "postgresql"). */
    const char *connector;
} cdc_snap_ops_t;

struct cdc_snap {
    const cdc_snap_ops_t *ops;
};

/* Drivers: cdc_snap_<name>_ops of each CDC_SNAPSHOT_TYPES name of the
 * Makefile fragments, listed by cdc/registry.c. */

/** @brief The snapshot driver of a source (its name or an alias of it,
 *  cdc_source_ops_t.aliases); NULL when the build has none. */
const cdc_snap_ops_t *cdc_snap_find(const char *source);

/* ---- progress file ------------------------------------------------------ */

typedef struct cdc_bf_tprog {
    char *name;     /* "db.table" */
    char *key;      /* last finished key (NULL = none yet) */
    uint64_t rows;  /* rows emitted so far */
    uint64_t chunks;
    int done;
} cdc_bf_tprog_t;

typedef struct cdc_bf_prog {
    char mode[16];  /* "initial" or "incremental" of the run that wrote it */
    char run[40];   /* run id (signal row prefix) */
    cdc_bf_tprog_t *t;
    int n;
} cdc_bf_prog_t;

/** @brief Path <state_dir>/<pipeline>.backfill (malloc'd). */
char *cdc_backfill_prog_path(const char *state_dir, const char *pipeline);
/** @brief Load; 1 found, 0 no file, -1 error (a torn or foreign file). */
int cdc_backfill_prog_load(const char *path, cdc_bf_prog_t *p, cdc_err_t *err);
/** @brief Store atomically (temp file, fsync, rename, fsync dir). */
int cdc_backfill_prog_store(const char *path, const cdc_bf_prog_t *p,
                            cdc_err_t *err);
/** @brief Entry of table name, created when missing. */
cdc_bf_tprog_t *cdc_backfill_prog_table(cdc_bf_prog_t *p, const char *name);
void cdc_backfill_prog_free(cdc_bf_prog_t *p);

/** @brief Token-bucket pacing: how long (µs) to wait before emitting n
 *  more rows at rate rows/s when done rows were emitted in elapsed µs
 *  (0 = go). */
int64_t cdc_backfill_pace_us(uint64_t done, int64_t elapsed_us, uint64_t n,
                             int64_t rate);

/** @brief Format a duration in seconds as "1h02m", "3m05s", "12s". */
void cdc_backfill_fmt_eta(char *out, size_t n, double secs);

/** @brief Append db.table as --table and the progress file name it: a
 *  part with a blank, dot, comma or quote in double quotes ("" inside). */
void cdc_backfill_name_put(cdc_buf_t *b, const char *db, const char *tb);

/** @brief `autoglm-cdc backfill`: see docs/BACKFILL.md.  @returns an exit
 *  code (CDC_EXIT_*), err filled when non-zero. */
int cdc_backfill_cli(const cdc_conf_t *conf, int argc, char **argv,
                     cdc_err_t *err);

#endif
