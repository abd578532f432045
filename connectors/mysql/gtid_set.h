/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gtid_set.h - MySQL GTID sets as text and on the wire (gtid_set.c).
 *
 * Text:   "uuid[:tag]:a-b[:c],uuid2:..." as @@gtid_executed prints it
 *         (case, spaces and newlines are tolerated on input).  The
 *         canonical form, which the binlog decoder also writes into
 *         checkpoints, lists the sources sorted by uuid then tag ("" first),
 *         a uuid once with its untagged intervals first, intervals merged.
 * Binary: the encoding of sql/rpl_gtid_set.cc (PREVIOUS_GTIDS bodies and
 *         the data of COM_BINLOG_DUMP_GTID):
 *           n_sids u64 LE; per source: uuid 16 bytes, [tag], n_intervals
 *           u64 LE, intervals [start, end) as two u64 LE (end exclusive).
 *         Untagged format: n_sids is the whole first u64.  Tagged format
 *         (MySQL 8.3+; used only when the set holds a tagged GTID, as
 *         older servers refuse it): the first u64 is
 *         1 << 56 | n_sids << 8 | 1 and every source carries its tag as a
 *         length byte (length << 1, the serialization library's one-byte
 *         varlen; tags have at most 32 characters) plus the characters;
 *         untagged sources have the length byte 0.
 * Pure: no I/O.
 */
#ifndef CDC_MYSQL_GTID_SET_H
#define CDC_MYSQL_GTID_SET_H

#include <stddef.h>
#include <stdint.h>

#include "cdc/buf.h"
#include "cdc/err.h"

/* MySQL command bytes of the dump protocol */
#define CDC_MY_COM_REGISTER_SLAVE 0x15
#define CDC_MY_COM_BINLOG_DUMP_GTID 0x1e

/**
 * @brief Canonical text of a MySQL GTID set into out (replaced).
 * @returns 0, or -1 with err (CDC_EXIT_DATA) for a malformed text.
 */
int cdc_gtid_set_norm(const char *text, cdc_buf_t *out, cdc_err_t *err);

/**
 * @brief The union of two MySQL GTID sets, canonical text into out.
 * @returns 0, or -1 with err (CDC_EXIT_DATA).
 */
int cdc_gtid_set_union(const char *a, const char *b, cdc_buf_t *out,
                       cdc_err_t *err);

/**
 * @brief Binary encoding of a MySQL GTID set (text) appended to out.
 * @returns 0, or -1 with err (CDC_EXIT_DATA) for a malformed text or a
 *          GTID number that does not fit (>= 2^63 - 1).
 */
int cdc_gtid_set_encode(const char *text, cdc_buf_t *out, cdc_err_t *err);

/**
 * @brief Decode a binary GTID set of exactly len bytes into canonical text
 *        (out replaced).  Every length is checked against len; intervals
 *        must be ascending, non-empty and not adjacent, as the server
 *        writes them.
 * @returns 0, or -1 with err (CDC_EXIT_DATA) naming the byte offset.
 */
int cdc_gtid_set_decode(const uint8_t *p, size_t len, cdc_buf_t *out,
                        cdc_err_t *err);

/**
 * @brief The COM_BINLOG_DUMP_GTID command (command byte 0x1e first) into
 *        out (replaced): flags u16, server_id u32, name_size u32, name,
 *        pos u64, data_size u32, data = cdc_gtid_set_encode(gtid_set).
 * @returns 0, or -1 with err (CDC_EXIT_DATA) for a malformed set.
 */
int cdc_my_dump_gtid_cmd(uint16_t flags, uint32_t server_id,
                         const char *file, uint64_t pos, const char *gtid_set,
                         cdc_buf_t *out, cdc_err_t *err);

/**
 * @brief The COM_REGISTER_SLAVE command (0x15 first) into out (replaced):
 *        server_id u32, host (u8 length + bytes, at most 60), user and
 *        password empty, port u16, rank u32 0, master_id u32 0.
 */
void cdc_my_register_cmd(uint32_t server_id, const char *host,
                         uint16_t port, cdc_buf_t *out);

#endif
