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

/*
 * The value functions the snapshot (snapshot.c) shares with the decoder,
 * so that a row read by a backfill and the same row read from the binlog
 * give the same bytes: temporal text, BIT, SET and GEOMETRY.
 */

/* What cdc_mysql_time_text() writes. */
enum { CDC_MYTIME_DATE, CDC_MYTIME_TIME, CDC_MYTIME_DATETIME,
       CDC_MYTIME_TIMESTAMP };

/* A broken-down temporal value (TIMESTAMP in UTC; TIME: hour may pass
 * 23, up to 838 and beyond for the raw field). */
typedef struct cdc_mysql_tm {
    unsigned year, month, day, hour, minute, second, usec;
    int neg; /* TIME only */
} cdc_mysql_tm_t;

/**
 * @brief The text of a temporal value, fsp (0..6) fraction digits, into
 *        buf (>= 48 bytes): DATE "YYYY-MM-DD", TIME "[-]HH:MM:SS[.f]",
 *        DATETIME "YYYY-MM-DD HH:MM:SS[.f]", TIMESTAMP
 *        "YYYY-MM-DDTHH:MM:SS[.f]Z" and the zero TIMESTAMP (every field 0)
 *        "0000-00-00 00:00:00[.f]".
 * @returns the text length.
 */
int cdc_mysql_time_text(int what, const cdc_mysql_tm_t *t, int fsp,
                        char *buf);

/** @brief BIT(n) as an unsigned number: n big-endian bytes (n <= 8). */
uint64_t cdc_mysql_bit_uint(const uint8_t *p, size_t n);

/** @brief A SET value as a JSON array of its members in definition order:
 *  append each member with cdc_mysql_set_member (out starts empty), then
 *  close with cdc_mysql_set_end ("[]" for the empty set). */
void cdc_mysql_set_member(cdc_buf_t *out, const char *s, size_t n);
void cdc_mysql_set_end(cdc_buf_t *out);

/** @brief A GEOMETRY value (4-byte little-endian SRID, then WKB) as JSON
 *  {"srid":N,"wkb":"<base64>"} appended to out; -1 when n < 4. */
int cdc_mysql_geometry_json(const uint8_t *p, size_t n, cdc_buf_t *out);

/** @brief The column of a MariaDB JSON column's CHECK clause: exactly
 *  "json_valid(`name`)" -> name with `` unescaped (malloc'd), else NULL. */
char *cdc_mysql_json_check_col(const char *clause);

/** @brief Append s as a JSON string literal (s must be valid UTF-8). */
void cdc_mysql_json_str(cdc_buf_t *out, const char *s, size_t n);

/** @brief Append a double as a JSON number that reads back to the same
 *  double; -1 for NaN/infinity (no JSON form). */
int cdc_mysql_json_double(cdc_buf_t *out, double d);

/** @brief Same for a float32 value (shortest digits that read back). */
int cdc_mysql_json_float(cdc_buf_t *out, float f);

#endif
