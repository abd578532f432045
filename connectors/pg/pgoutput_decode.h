/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pgoutput_decode.h - pure decoder of PostgreSQL pgoutput messages (no I/O).
 *
 * The replication stream (repl_stream.c) strips the CopyData / XLogData
 * framing and feeds the decoder one pgoutput message at a time together
 * with the XLogData dataStart LSN.  The decoder keeps the relation cache
 * (refreshed by every Relation message, so schema changes mid-stream
 * decode correctly), the open transaction and, for protocol version 2,
 * every streamed in-progress transaction per xid until its Stream Commit
 * (dropped on Stream Abort).  It hands out one cdc_txn_t per committed
 * transaction with every row decoded into the value model of
 * cdc/change.h.  Every read is bounds-checked; malformed input is an
 * error (CDC_EXIT_DATA), never a crash.
 *
 * Column metadata stored in cdc_column_t by Relation decoding:
 *   name   attribute name          type   type oid
 *   meta   atttypmod (as uint32)   flags  CDC_COL_PK when the Relation
 *                                         message flags it as part of the
 *                                         replica identity key
 *   table db = schema (nspname), name = relname, id = relid.
 * (An on_relation callback may re-mark CDC_COL_PK, e.g. with the real
 * primary key of a REPLICA IDENTITY FULL table; the decoder keeps its own
 * copy of the identity flags for key-only old tuples.)
 *
 * Values (text format, as produced by a session with DateStyle=ISO,
 * IntervalStyle=postgres, TimeZone=UTC, bytea_output=hex):
 *   int2/int4/int8 -> INT, oid/xid -> UINT, numeric -> DECIMAL (also NaN,
 *   Infinity, -Infinity), float4 -> FLOAT, float8 -> DOUBLE (NaN and
 *   +-Infinity -> STRING), bool -> BOOL, text/varchar/bpchar/name/char ->
 *   STRING, bytea -> BYTES, date/time/timetz/timestamp/interval/uuid/
 *   inet/cidr/macaddr -> STRING of the text form, timestamptz -> STRING
 *   "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" (UTC), json/jsonb -> JSON, arrays of
 *   any of these -> JSON array text (nested arrays nest), enums -> STRING,
 *   domains -> their base type (both via the resolve_type callback),
 *   anything else -> STRING of the text form with a one-time warning.
 *   TupleData 'n' -> NULL, 'u' -> UNCHANGED; in key-only ('K') old tuples
 *   columns outside the key are ABSENT.
 */
#ifndef CDC_PGOUTPUT_DECODE_H
#define CDC_PGOUTPUT_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "cdc/change.h"
#include "cdc/err.h"

/* Microseconds between the Unix epoch and the PostgreSQL epoch 2000-01-01. */
#define CDC_PG_EPOCH_OFFSET_US INT64_C(946684800000000)

/* What the resolver knows about a type oid (from pg_type). */
typedef struct cdc_pg_typeinfo {
    char typtype;      /* 'b' base, 'e' enum, 'd' domain, 'c' composite,
                          'r' range, 'm' multirange, 'p' pseudo */
    char typcategory;  /* 'A' for arrays */
    uint32_t basetype; /* domains: typbasetype */
    uint32_t elemtype; /* arrays: typelem */
} cdc_pg_typeinfo_t;

typedef struct cdc_pgoutput_opts {
    /* Look up a type oid that is not built in (enums, domains, arrays of
     * those); 0 with *ti filled, -1 if unknown.  May do I/O; NULL = every
     * unknown oid is decoded as text. */
    int (*resolve_type)(void *opaque, uint32_t oid, cdc_pg_typeinfo_t *ti);
    /* Called after a Relation message built a new table (refcnt 1, owned
     * by the cache); may adjust CDC_COL_PK / pk.  replident is 'd', 'n',
     * 'f' or 'i'.  May be NULL. */
    void (*on_relation)(void *opaque, cdc_table_t *t, char replident);
    void *opaque;
    /* Loop prevention (docs/TWO-WAY.md): a transaction whose Origin
     * message names an origin matching this fnmatch pattern (e.g.
     * "autoglm_cdc_*", the origins of our own sinks) is handed out with
     * skipped = 1 and no changes, so its position still advances.  NULL
     * or "" = keep every transaction. */
    const char *skip_origins;
    /* Any transaction size in bounded memory (0 = off for each):
     *  - frag_rows / frag_bytes: a transaction is handed out in fragments
     *    (cdc_txn_t.frag/more) of at most about this many changes/bytes:
     *    a non-streamed one as its changes arrive (it is committed: the
     *    server sends it only at its commit), a streamed one at its Stream
     *    Commit; cdc_pgoutput_next() hands out the fragments after the
     *    first.  A fragment with more set carries the xid, the commit time
     *    (Begin / Stream Commit) and as pos.lsn the commit record's LSN
     *    (not a resume point; the last fragment carries the end LSN).
     *  - work_mem: a streamed in-progress transaction that holds more is
     *    written to a spill file spill_prefix.<xid> (dropped at Stream
     *    Abort, read back at Stream Commit, removed after delivery);
     *  - max_spill: the spill files together may hold this many bytes;
     *    beyond, feed() fails with CDC_EXIT_CONFIG (state.max_spill_mb). */
    uint32_t frag_rows;
    size_t frag_bytes;
    size_t work_mem;
    const char *spill_prefix;
    uint64_t max_spill;
} cdc_pgoutput_opts_t;

typedef struct cdc_pgoutput cdc_pgoutput_t;

/** @brief New decoder; o may be NULL.  proto_version 1 or 2 (2 enables the
 *  xid field inside Stream Start .. Stream Stop). */
cdc_pgoutput_t *cdc_pgoutput_new(const cdc_pgoutput_opts_t *o,
                                 int proto_version);
/** @brief Free the decoder, open and buffered transactions.  NULL ok. */
void cdc_pgoutput_destroy(cdc_pgoutput_t *d);

/**
 * @brief Decode one pgoutput message (the payload of an XLogData).
 * @param lsn  XLogData dataStart: becomes the change's pos.
 * @returns 0 (consumed), 1 (a transaction committed: *out is a new txn,
 *          ownership to the caller; pos.lsn = the commit end_lsn, xid,
 *          commit_us, connector "postgresql") or -1 with err filled
 *          (CDC_EXIT_DATA, flag CDC_ERR_F_DATA) for malformed input.
 */
int cdc_pgoutput_feed(cdc_pgoutput_t *d, const uint8_t *msg, size_t len,
                      uint64_t lsn, cdc_txn_t **out, cdc_err_t *err);

/** @brief After feed() returned a fragment with more set: the next
 *  fragment of a transaction read back from its spill file.  Returns 1
 *  (*out, ownership to the caller), 0 when no read-back is going on, -1
 *  with err (a spill file that cannot be read). */
int cdc_pgoutput_next(cdc_pgoutput_t *d, cdc_txn_t **out, cdc_err_t *err);
/** @brief Remove spill files spill_prefix.* left by an earlier run. */
void cdc_pgoutput_spill_cleanup(const char *spill_prefix);

/** @brief 1 while a transaction is open or a streamed one is buffered. */
int cdc_pgoutput_busy(const cdc_pgoutput_t *d);

/** @brief Drop the open and buffered transactions (after a reconnect the
 *  server re-sends them from their beginning).  Relations stay cached. */
void cdc_pgoutput_reset(cdc_pgoutput_t *d);

/** @brief Cached table of relid (borrowed) or NULL. */
cdc_table_t *cdc_pgoutput_table(const cdc_pgoutput_t *d, uint32_t relid);

/** @brief Counters for tests and logs. */
typedef struct cdc_pgoutput_stats {
    uint64_t messages;     /* 'M' messages seen */
    uint64_t last_msg_lsn; /* lsn of the last 'M' */
    uint64_t origins;      /* 'O' messages seen */
    uint64_t types;        /* 'Y' messages seen */
    uint64_t aborted;      /* streamed (sub)transactions dropped */
    uint64_t origin_skipped; /* transactions dropped: skip_origins */
} cdc_pgoutput_stats_t;
const cdc_pgoutput_stats_t *cdc_pgoutput_stats(const cdc_pgoutput_t *d);

/**
 * @brief Convert one text-format value of type oid (built-in types only;
 *        exposed for tests) into out; strings are copied into a.
 * @returns 0 or -1 with err when the text is not valid for the type.
 */
int cdc_pg_value_text(uint32_t oid, const char *s, size_t len,
                      cdc_arena_t *a, cdc_value_t *out, cdc_err_t *err);

#endif
