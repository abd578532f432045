/* SPDX-License-Identifier: Apache-2.0 */
/*
 * binlog_value_int.h - helpers shared by binlog_value.c, binlog_json.c and
 * charset.c (private to connectors/mysql; not part of the decoder API).
 */
#ifndef CDC_BINLOG_VALUE_INT_H
#define CDC_BINLOG_VALUE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "cdc/buf.h"
#include "cdc/err.h"

/* Character set families of cdc_mysql_charset_kind(). */
enum {
    CDC_CS_UNKNOWN = 0,
    CDC_CS_BINARY,
    CDC_CS_UTF8, /* utf8mb3 and utf8mb4 */
    CDC_CS_LATIN1,
    CDC_CS_ASCII,
    CDC_CS_UCS2,
    CDC_CS_UTF16,
    CDC_CS_UTF16LE,
    CDC_CS_UTF32,
};

/** @brief Family of a collation id (CDC_CS_UNKNOWN for 0 or unknown). */
int cdc_mysql_charset_kind(uint16_t collation);

/** @brief An ENUM/SET member name of the TABLE_MAP metadata, in the
 *  column's collation (0 = unknown: must be UTF-8), appended to b as UTF-8.
 *  Returns 0, or -1 with err (CDC_EXIT_DATA). */
int cdc_mysql_member_utf8(uint16_t collation, const uint8_t *m, size_t n,
                          cdc_buf_t *b, cdc_err_t *err);

/** @brief Length of the valid UTF-8 prefix of p (n when all is valid). */
size_t cdc_mysql_utf8_valid(const uint8_t *p, size_t n);

/* Longest text of cdc_mysql_decimal_text(): sign, 65 digits, point, NUL
 * (and a leading "0" when there is no integer part). */
#define CDC_DECIMAL_TEXT_MAX 72

/**
 * @brief Binary NEWDECIMAL (precision, scale) at p -> text in buf (size
 *        CDC_DECIMAL_TEXT_MAX), e.g. "-0.50".
 * @returns text length; -1 with err when avail is short or the bytes are
 *          not a valid decimal.  *used = bytes consumed.
 */
int cdc_mysql_decimal_text(const uint8_t *p, size_t avail, unsigned precision,
                           unsigned scale, char *buf, size_t *used,
                           cdc_err_t *err);

/* Formats of cdc_mysql_packed_text(): MySQL's in-memory packed temporal
 * longlong (used by binary JSON opaque values and TIME2 decoding). */
enum { CDC_PACKED_DATE, CDC_PACKED_TIME, CDC_PACKED_DATETIME };

/** @brief Packed temporal -> text with fsp fraction digits (0..6) into
 *  buf (>= 40 bytes).  @returns text length. */
int cdc_mysql_packed_text(int64_t packed, int what, int fsp, char *buf);

/** @brief Append s as a JSON string literal (s must be valid UTF-8). */
void cdc_mysql_json_str(cdc_buf_t *out, const char *s, size_t n);

/** @brief Append a double as a JSON number that reads back to the same
 *  double; -1 for NaN/infinity (no JSON form). */
int cdc_mysql_json_double(cdc_buf_t *out, double d);

/** @brief Same for a float32 value (shortest digits that read back). */
int cdc_mysql_json_float(cdc_buf_t *out, float f);

#endif
