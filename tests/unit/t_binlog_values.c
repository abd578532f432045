/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_binlog_values.c - column value decoding (connectors/mysql/
 * binlog_value.c, binlog_json.c, charset.c) on handcrafted row-image
 * bytes.
 *
 * The byte vectors below were produced by a throwaway encoder written from
 * the format descriptions in PROTOCOLS.md §1.7-§1.11 (decimal2bin,
 * TIME2/DATETIME2/TIMESTAMP2 packing, binary JSON); the eight "opaque
 * fixture" JSON documents are the row bytes of
 * rust_mysql_common/json-opaque.binlog (expected renderings from
 * fixtures/PROVENANCE.md, with DECIMAL as a JSON number as MySQL prints
 * it).  Every vector is also decoded with one byte missing, which must
 * fail cleanly.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/buf.h"
#include "cdc/change.h"
#include "cdc/err.h"
#include "connectors/mysql/binlog.h"
#include "connectors/mysql/binlog_value_int.h"
#include "tests/unit/cdc_test.h"

#define U CDC_COL_UNSIGNED
#define BIN CDC_COL_BINARY

typedef struct vec {
    const char *name;
    uint32_t type, meta, flags;
    uint16_t cs;
    const char *in;
    size_t inlen;
    int kind;
    const char *exp;
    size_t explen;
} vec_t;

/* name, type, meta, flags, collation, bytes, kind, expected text */
static const vec_t vecs[] = {
    {"tiny_min", 1, 0, 0, 0, "\x80", 1, CDC_V_INT, "-128", 4},
    {"tiny_max", 1, 0, 0, 0, "\x7f", 1, CDC_V_INT, "127", 3},
    {"tiny_u", 1, 0, 2, 0, "\xff", 1, CDC_V_UINT, "255", 3},
    {"short_min", 2, 0, 0, 0, "\x00\x80", 2, CDC_V_INT, "-32768", 6},
    {"short_u", 2, 0, 2, 0, "\xff\xff", 2, CDC_V_UINT, "65535", 5},
    {"int24_min", 9, 0, 0, 0, "\x00\x00\x80", 3, CDC_V_INT, "-8388608", 8},
    {"int24_max", 9, 0, 0, 0, "\xff\xff\x7f", 3, CDC_V_INT, "8388607", 7},
    {"int24_u", 9, 0, 2, 0, "\xff\xff\xff", 3, CDC_V_UINT, "16777215", 8},
    {"int24_m1", 9, 0, 0, 0, "\xff\xff\xff", 3, CDC_V_INT, "-1", 2},
    {"long_min", 3, 0, 0, 0, "\x00\x00\x00\x80", 4, CDC_V_INT, "-2147483648", 11},
    {"long_u", 3, 0, 2, 0, "\xff\xff\xff\xff", 4, CDC_V_UINT, "4294967295", 10},
    {"long_u3e9", 3, 0, 2, 0, "\x00^\xd0\xb2", 4, CDC_V_UINT, "3000000000", 10},
    {"ll_min", 8, 0, 0, 0, "\x00\x00\x00\x00\x00\x00\x00\x80", 8, CDC_V_INT, "-9223372036854775808", 20},
    {"ll_max", 8, 0, 0, 0, "\xff\xff\xff\xff\xff\xff\xff\x7f", 8, CDC_V_INT, "9223372036854775807", 19},
    {"ll_u", 8, 0, 2, 0, "\xff\xff\xff\xff\xff\xff\xff\xff", 8, CDC_V_UINT, "18446744073709551615", 20},
    {"ll_u2", 8, 0, 2, 0, "\xd2\x0a\x1f\xeb\x8c\xa9T\xab", 8, CDC_V_UINT, "12345678901234567890", 20},
    {"year0", 13, 0, 0, 0, "\x00", 1, CDC_V_INT, "0", 1},
    {"year1901", 13, 0, 0, 0, "\x01", 1, CDC_V_INT, "1901", 4},
    {"year2155", 13, 0, 0, 0, "\xff", 1, CDC_V_INT, "2155", 4},
    {"year2023", 13, 0, 0, 0, "{", 1, CDC_V_INT, "2023", 4},
    {"bit1", 16, 1, 0, 0, "\x01", 1, CDC_V_UINT, "1", 1},
    {"bit13", 16, 13, 0, 0, "\x15U", 2, CDC_V_UINT, "5461", 4},
    {"bit13_hi", 16, 13, 0, 0, "\x10\x00", 2, CDC_V_UINT, "4096", 4},
    {"bit64", 16, 64, 0, 0, "\xff\xff\xff\xff\xff\xff\xff\xff", 8, CDC_V_UINT, "18446744073709551615", 20},
    {"bit64_b", 16, 64, 0, 0, "\x80\x00\x00\x00\x00\x00\x00\x01", 8, CDC_V_UINT, "9223372036854775809", 19},
    {"dec_10_2_n", 246, 2562, 0, 0, "z\x0a\x1f\x00\x9c", 5, CDC_V_DECIMAL, "-99999999.99", 12},
    {"dec_10_2_p", 246, 2562, 0, 0, "\x85\xf5\xe0\xff" "c", 5, CDC_V_DECIMAL, "99999999.99", 11},
    {"dec_10_2_p", 246, 2562, 0, 0, "\x80\x00\x00\x00\x00", 5, CDC_V_DECIMAL, "0.00", 4},
    {"dec_10_2_n", 246, 2562, 0, 0, "\x7f\xff\xff\xff\xfe", 5, CDC_V_DECIMAL, "-0.01", 5},
    {"dec_10_2_p", 246, 2562, 0, 0, "\x80\x00\x00\x01\x17", 5, CDC_V_DECIMAL, "1.23", 4},
    {"dec_5_0_n", 246, 1280, 0, 0, "~y`", 3, CDC_V_DECIMAL, "-99999", 6},
    {"dec_5_0_p", 246, 1280, 0, 0, "\x81\x86\x9f", 3, CDC_V_DECIMAL, "99999", 5},
    {"dec_5_0_p", 246, 1280, 0, 0, "\x80\x00\x00", 3, CDC_V_DECIMAL, "0", 1},
    {"dec_18_9_n", 246, 4617, 0, 0, "De6\x00\xc4" "e6\x00", 8, CDC_V_DECIMAL, "-999999999.999999999", 20},
    {"dec_18_9_p", 246, 4617, 0, 0, "\x80\x00\x00\x00\x00\x00\x00\x01", 8, CDC_V_DECIMAL, "0.000000001", 11},
    {"dec_18_9_n", 246, 4617, 0, 0, "\x7f\xff\xff\xff\xe2" "2\x9a\xff", 8, CDC_V_DECIMAL, "-0.500000000", 12},
    {"dec_18_9_p", 246, 4617, 0, 0, "\x87[\xcd\x15\x07[\xcd\x15", 8, CDC_V_DECIMAL, "123456789.123456789", 19},
    {"dec_65_30_n", 246, 16670, 0, 0, "z\x0a\x1f\x00\xc4" "e6\x00\xc4" "e6\x00\xc4" "e6\x00\xc4" "e6\x00\xc4" "e6\x00\xc4" "e6\x00\xfc\x18", 30, CDC_V_DECIMAL, "-99999999999999999999999999999999999.999999999999999999999999999999", 67},
    {"dec_65_30_p", 246, 16670, 0, 0, "\x85\xf5\xe0\xff;\x9a\xc9\xff;\x9a\xc9\xff;\x9a\xc9\xff;\x9a\xc9\xff;\x9a\xc9\xff;\x9a\xc9\xff\x03\xe7", 30, CDC_V_DECIMAL, "99999999999999999999999999999999999.999999999999999999999999999999", 66},
    {"dec_65_30_p", 246, 16670, 0, 0, "\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", 30, CDC_V_DECIMAL, "0.000000000000000000000000000001", 32},
    {"dec_65_30_n", 246, 16670, 0, 0, "\x7f\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xf2\x04\xc7-\xfa\x1c\xf5\x87\xfa\x0a\x1e\xff\xff\xff\xff\xff\xff\xff", 30, CDC_V_DECIMAL, "-1234567890.098765432100000000000000000000", 42},
    {"dec_65_30_p", 246, 16670, 0, 0, "\x80\x00\x00\x00\x00\x12\xd6\x87" "5\x0e" "4\xc0/\x07_y\x07[\xcd\x15\x00\xbc" "aN5\xb7\xbf\x87\x03z", 30, CDC_V_DECIMAL, "1234567890123456789012345.123456789012345678901234567890", 56},
    {"dec_12_4_p", 246, 3076, 0, 0, "\x80\x00\x00\x00\x00\x00", 6, CDC_V_DECIMAL, "0.0000", 6},
    {"dec_12_4_p", 246, 3076, 0, 0, "\x85\xf5\xe0\xff'\x0f", 6, CDC_V_DECIMAL, "99999999.9999", 13},
    {"dec_12_4_p", 246, 3076, 0, 0, "\x80\x00\x00\x01\x13\x88", 6, CDC_V_DECIMAL, "1.5000", 6},
    {"dec_4_2_n", 246, 1026, 0, 0, "\x7f\xcd", 2, CDC_V_DECIMAL, "-0.50", 5},
    {"dec_1_1_p", 246, 257, 0, 0, "\x85", 1, CDC_V_DECIMAL, "0.5", 3},
    {"dec_1_1_n", 246, 257, 0, 0, "z", 1, CDC_V_DECIMAL, "-0.5", 4},
    {"dec_65_0_p", 246, 16640, 0, 0, "\xe3;\x9a\xc9\xff;\x9a\xc9\xff;\x9a\xc9\xff;\x9a\xc9\xff;\x9a\xc9\xff;\x9a\xc9\xff;\x9a\xc9\xff", 29, CDC_V_DECIMAL, "99999999999999999999999999999999999999999999999999999999999999999", 65},
    {"dec_65_0_n", 246, 16640, 0, 0, "\x1c\xc4" "e6\x00\xc4" "e6\x00\xc4" "e6\x00\xc4" "e6\x00\xc4" "e6\x00\xc4" "e6\x00\xc4" "e6\x00", 29, CDC_V_DECIMAL, "-99999999999999999999999999999999999999999999999999999999999999999", 66},
    {"dec_30_25_n", 246, 7705, 0, 0, "\x7f\xfb-\xde&\xaf" "4\xe4\xc5\xf3\xeb\xff\xcb@\xea", 15, CDC_V_DECIMAL, "-1234.5678901234567890123456789", 31},
    {"float_m05", 4, 4, 0, 0, "\x00\x00\x00\xbf", 4, CDC_V_FLOAT, "-0.5", 4},
    {"double_01", 5, 8, 0, 0, "\x9a\x99\x99\x99\x99\x99\xb9\?", 8, CDC_V_DOUBLE, "0.1", 3},
    {"double_min", 5, 8, 0, 0, "\xff\xff\xff\xff\xff\xff\xef\xff", 8, CDC_V_DOUBLE, "-1.7976931348623157e+308", 24},
    {"time2_f0_m8385959", 19, 0, 0, 0, "K\x91\x05", 3, CDC_V_STRING, "-838:59:59", 10},
    {"time2_f0_8385959", 19, 0, 0, 0, "\xb4n\xfb", 3, CDC_V_STRING, "838:59:59", 9},
    {"time2_f0_000000", 19, 0, 0, 0, "\x80\x00\x00", 3, CDC_V_STRING, "00:00:00", 8},
    {"time2_f0_m5074827", 19, 0, 0, 0, "`C\xe5", 3, CDC_V_STRING, "-507:48:27", 10},
    {"time2_f1_m8385958_9", 19, 1, 0, 0, "K\x91\x05\xa6", 4, CDC_V_STRING, "-838:59:58.9", 12},
    {"time2_f1_m123456_5", 19, 1, 0, 0, "\x7f" "7G\xce", 4, CDC_V_STRING, "-12:34:56.5", 11},
    {"time2_f1_000000_0", 19, 1, 0, 0, "\x80\x00\x00\x00", 4, CDC_V_STRING, "00:00:00.0", 10},
    {"time2_f2_m000000_01", 19, 2, 0, 0, "\x7f\xff\xff\xff", 4, CDC_V_STRING, "-00:00:00.01", 12},
    {"time2_f3_m000000_001", 19, 3, 0, 0, "\x7f\xff\xff\xff\xf6", 5, CDC_V_STRING, "-00:00:00.001", 13},
    {"time2_f3_123456_789", 19, 3, 0, 0, "\x80\xc8\xb8\x1e\xd2", 5, CDC_V_STRING, "12:34:56.789", 12},
    {"time2_f4_m000001_0001", 19, 4, 0, 0, "\x7f\xff\xfe\xff\xff", 5, CDC_V_STRING, "-00:00:01.0001", 14},
    {"time2_f5_m100000_00001", 19, 5, 0, 0, "\x7f_\xff\xff\xff\xf6", 6, CDC_V_STRING, "-10:00:00.00001", 15},
    {"time2_f6_m000000_000001", 19, 6, 0, 0, "\x7f\xff\xff\xff\xff\xff", 6, CDC_V_STRING, "-00:00:00.000001", 16},
    {"time2_f6_m010203_456789", 19, 6, 0, 0, "\x7f\xef|\xf9\x07\xab", 6, CDC_V_STRING, "-01:02:03.456789", 16},
    {"time2_f6_8385958_999999", 19, 6, 0, 0, "\xb4n\xfa\x0f" "B\?", 6, CDC_V_STRING, "838:59:58.999999", 16},
    {"time2_f6_m8385959_000000", 19, 6, 0, 0, "K\x91\x05\x00\x00\x00", 6, CDC_V_STRING, "-838:59:59.000000", 17},
    {"time2_f3_235959_999", 19, 3, 0, 0, "\x81~\xfb'\x06", 5, CDC_V_STRING, "23:59:59.999", 12},
    {"time2_f0_000000", 19, 0, 0, 0, "\x80\x00\x00", 3, CDC_V_STRING, "00:00:00", 8},
    {"dt2_zero_f0", 18, 0, 0, 0, "\x80\x00\x00\x00\x00", 5, CDC_V_STRING, "0000-00-00 00:00:00", 19},
    {"dt2_min_f0", 18, 0, 0, 0, "\x8c\xb2" "B\x00\x00", 5, CDC_V_STRING, "1000-01-01 00:00:00", 19},
    {"dt2_max_f0", 18, 0, 0, 0, "\xfe\xf3\xff~\xfb", 5, CDC_V_STRING, "9999-12-31 23:59:59", 19},
    {"dt2_zero_f1", 18, 1, 0, 0, "\x80\x00\x00\x00\x00\x00", 6, CDC_V_STRING, "0000-00-00 00:00:00.0", 21},
    {"dt2_min_f1", 18, 1, 0, 0, "\x8c\xb2" "B\x00\x00\x0a", 6, CDC_V_STRING, "1000-01-01 00:00:00.1", 21},
    {"dt2_max_f1", 18, 1, 0, 0, "\xfe\xf3\xff~\xfbZ", 6, CDC_V_STRING, "9999-12-31 23:59:59.9", 21},
    {"dt2_zero_f2", 18, 2, 0, 0, "\x80\x00\x00\x00\x00\x00", 6, CDC_V_STRING, "0000-00-00 00:00:00.00", 22},
    {"dt2_min_f2", 18, 2, 0, 0, "\x8c\xb2" "B\x00\x00\x01", 6, CDC_V_STRING, "1000-01-01 00:00:00.01", 22},
    {"dt2_max_f2", 18, 2, 0, 0, "\xfe\xf3\xff~\xfb" "c", 6, CDC_V_STRING, "9999-12-31 23:59:59.99", 22},
    {"dt2_zero_f3", 18, 3, 0, 0, "\x80\x00\x00\x00\x00\x00\x00", 7, CDC_V_STRING, "0000-00-00 00:00:00.000", 23},
    {"dt2_min_f3", 18, 3, 0, 0, "\x8c\xb2" "B\x00\x00\x00\x0a", 7, CDC_V_STRING, "1000-01-01 00:00:00.001", 23},
    {"dt2_max_f3", 18, 3, 0, 0, "\xfe\xf3\xff~\xfb'\x06", 7, CDC_V_STRING, "9999-12-31 23:59:59.999", 23},
    {"dt2_zero_f4", 18, 4, 0, 0, "\x80\x00\x00\x00\x00\x00\x00", 7, CDC_V_STRING, "0000-00-00 00:00:00.0000", 24},
    {"dt2_min_f4", 18, 4, 0, 0, "\x8c\xb2" "B\x00\x00\x00\x01", 7, CDC_V_STRING, "1000-01-01 00:00:00.0001", 24},
    {"dt2_max_f4", 18, 4, 0, 0, "\xfe\xf3\xff~\xfb'\x0f", 7, CDC_V_STRING, "9999-12-31 23:59:59.9999", 24},
    {"dt2_zero_f5", 18, 5, 0, 0, "\x80\x00\x00\x00\x00\x00\x00\x00", 8, CDC_V_STRING, "0000-00-00 00:00:00.00000", 25},
    {"dt2_min_f5", 18, 5, 0, 0, "\x8c\xb2" "B\x00\x00\x00\x00\x0a", 8, CDC_V_STRING, "1000-01-01 00:00:00.00001", 25},
    {"dt2_max_f5", 18, 5, 0, 0, "\xfe\xf3\xff~\xfb\x0f" "B6", 8, CDC_V_STRING, "9999-12-31 23:59:59.99999", 25},
    {"dt2_zero_f6", 18, 6, 0, 0, "\x80\x00\x00\x00\x00\x00\x00\x00", 8, CDC_V_STRING, "0000-00-00 00:00:00.000000", 26},
    {"dt2_min_f6", 18, 6, 0, 0, "\x8c\xb2" "B\x00\x00\x00\x00\x01", 8, CDC_V_STRING, "1000-01-01 00:00:00.000001", 26},
    {"dt2_max_f6", 18, 6, 0, 0, "\xfe\xf3\xff~\xfb\x0f" "B\?", 8, CDC_V_STRING, "9999-12-31 23:59:59.999999", 26},
    {"dt2_f6", 18, 6, 0, 0, "\x99\xb1\x9d" "cT\x00=\x09", 8, CDC_V_STRING, "2023-11-14 22:13:20.015625", 26},
    {"dt2_leap", 18, 6, 0, 0, "\x99\xb2\xba\xc0\x00\x07\xa1 ", 8, CDC_V_STRING, "2024-02-29 12:00:00.500000", 26},
    {"ts2_1", 17, 0, 0, 0, "\x00\x00\x00\x01", 4, CDC_V_STRING, "1970-01-01T00:00:01Z", 20},
    {"ts2_1001", 17, 3, 0, 0, "\x00\x00\x00\x01\x00\x0a", 6, CDC_V_STRING, "1970-01-01T00:00:01.001Z", 24},
    {"ts2_max", 17, 6, 0, 0, "\x7f\xff\xff\xff\x0f" "B\?", 7, CDC_V_STRING, "2038-01-19T03:14:07.999999Z", 27},
    {"ts2_3", 17, 3, 0, 0, "eS\xf1\x00\x04\xce", 6, CDC_V_STRING, "2023-11-14T22:13:20.123Z", 24},
    {"ts2_zero", 17, 0, 0, 0, "\x00\x00\x00\x00", 4, CDC_V_STRING, "0000-00-00 00:00:00", 19},
    {"ts2_zero3", 17, 3, 0, 0, "\x00\x00\x00\x00\x00\x00", 6, CDC_V_STRING, "0000-00-00 00:00:00.000", 23},
    {"ts2_leap", 17, 6, 0, 0, "e\xe0q\xc0\x07\xa1 ", 7, CDC_V_STRING, "2024-02-29T12:00:00.500000Z", 27},
    {"ts2_2000", 17, 1, 0, 0, "8\xbb\x0c\x00\x00", 5, CDC_V_STRING, "2000-02-29T00:00:00.0Z", 22},
    {"ts2_2099", 17, 0, 0, 0, "\xf4\x86V\xff", 4, CDC_V_STRING, "2099-12-31T23:59:59Z", 20},
    {"date_min", 10, 0, 0, 0, "!\xd0\x07", 3, CDC_V_STRING, "1000-01-01", 10},
    {"date_max", 10, 0, 0, 0, "\x9f\x1fN", 3, CDC_V_STRING, "9999-12-31", 10},
    {"date_zero", 10, 0, 0, 0, "\x00\x00\x00", 3, CDC_V_STRING, "0000-00-00", 10},
    {"date_partial", 10, 0, 0, 0, "`\xcf\x0f", 3, CDC_V_STRING, "2023-11-00", 10},
    {"time_old_neg", 11, 0, 0, 0, "Y\x0a\x80", 3, CDC_V_STRING, "-838:59:59", 10},
    {"time_old", 11, 0, 0, 0, "@\xe2\x01", 3, CDC_V_STRING, "12:34:56", 8},
    {"datetime_old", 12, 0, 0, 0, "\x08g`lf\x12\x00\x00", 8, CDC_V_STRING, "2023-11-14 22:13:20", 19},
    {"datetime_old_zero", 12, 0, 0, 0, "\x00\x00\x00\x00\x00\x00\x00\x00", 8, CDC_V_STRING, "0000-00-00 00:00:00", 19},
    {"timestamp_old", 7, 0, 0, 0, "\x00\xf1Se", 4, CDC_V_STRING, "2023-11-14T22:13:20Z", 20},
    {"timestamp_old_zero", 7, 0, 0, 0, "\x00\x00\x00\x00", 4, CDC_V_STRING, "0000-00-00 00:00:00", 19},
    {"varchar_utf8mb4", 15, 1020, 0, 45, "\x18\x00" "emoji \xf0\x9f\x98\x80 and \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 26, CDC_V_STRING, "emoji 😀 and 日本語", 24},
    {"varchar_utf8mb3", 15, 60, 0, 33, "\x0b\xc3\x9cn\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9", 12, CDC_V_STRING, "Ünïcödé", 11},
    {"latin1", 15, 20, 0, 8, "\x04" "caf\xe9", 5, CDC_V_STRING, "café", 5},
    {"latin1_cp1252", 15, 20, 0, 8, "\x04\x80\x81\x9f\xff", 5, CDC_V_STRING, "€\xc2\x81Ÿÿ", 9},
    {"latin1_2", 15, 20, 0, 8, "\x08\xc5ngstr\xf6m", 9, CDC_V_STRING, "Ångström", 10},
    {"ucs2", 15, 20, 0, 35, "\x06\x00u\x00" "c\x00s", 7, CDC_V_STRING, "ucs", 3},
    {"ucs2_2", 15, 20, 0, 35, "\x02\x00\xe4", 3, CDC_V_STRING, "ä", 2},
    {"ucs2_unicode", 15, 20, 0, 128, "\x02" "e\xe5", 3, CDC_V_STRING, "日", 3},
    {"utf16", 15, 40, 0, 54, "\x06\xd8=\xde\x00\x00" "a", 7, CDC_V_STRING, "😀a", 5},
    {"utf16le", 15, 40, 0, 56, "\x06=\xd8\x00\xde" "a\x00", 7, CDC_V_STRING, "😀a", 5},
    {"utf32", 15, 40, 0, 60, "\x08\x00\x01\xf6\x00\x00\x00\x00" "a", 9, CDC_V_STRING, "😀a", 5},
    {"ascii", 15, 40, 0, 11, "\x03" "abc", 4, CDC_V_STRING, "abc", 3},
    {"uca1400", 15, 40, 0, 2304, "\x02\xc3\xa9", 3, CDC_V_STRING, "é", 2},
    {"mysql0900", 15, 40, 0, 255, "\x02\xc3\xa9", 3, CDC_V_STRING, "é", 2},
    {"nocharset_utf8", 15, 40, 0, 0, "\x02\xc3\xa9", 3, CDC_V_STRING, "é", 2},
    {"nocharset_bytes", 15, 40, 0, 0, "\x02\xff\x00", 3, CDC_V_BYTES, "\xff\x00", 2},
    {"char", 254, 40, 0, 45, "\x06padded", 7, CDC_V_STRING, "padded", 6},
    {"binary_pad", 254, 4, 8, 63, "\x02" "ab", 3, CDC_V_BYTES, "ab\x00\x00", 4},
    {"binary_empty", 254, 4, 8, 63, "\x00", 1, CDC_V_BYTES, "\x00\x00\x00\x00", 4},
    {"uuid_zero", 254, 16, 8, 63, "\x00", 1, CDC_V_BYTES, "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 16},
    {"binary_full_cs63", 254, 4, 0, 63, "\x04\x01\x02\x03\x04", 5, CDC_V_BYTES, "\x01\x02\x03\x04", 4},
    {"char_2byte_len", 254, 1020, 0, 45, ",\x01xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 302, CDC_V_STRING, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 300},
    {"varbinary", 15, 64, 8, 63, "\x04\x00\xff\x00\xff", 5, CDC_V_BYTES, "\x00\xff\x00\xff", 4},
    {"varbinary_empty", 15, 64, 8, 63, "\x00", 1, CDC_V_BYTES, "", 0},
    {"blob", 252, 2, 8, 63, "\x05\x00\x00\x01\x02\x03\x04", 7, CDC_V_BYTES, "\x00\x01\x02\x03\x04", 5},
    {"tinytext", 252, 1, 0, 45, "\x04tiny", 5, CDC_V_STRING, "tiny", 4},
    {"mediumtext", 252, 3, 0, 45, "\x05\x00\x00med\xc3\xa9", 8, CDC_V_STRING, "medé", 5},
    {"longtext", 252, 4, 0, 45, "\x04\x00\x00\x00long", 8, CDC_V_STRING, "long", 4},
    {"mariadb_json", 252, 4, 0, 46, "\x02\x00\x00\x00[]", 6, CDC_V_STRING, "[]", 2},
    {"geometry", 255, 4, 0, 0, "\x19\x00\x00\x00\xe6\x10\x00\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf0\?\x00\x00\x00\x00\x00\x00\x00@", 29, CDC_V_JSON, "{\"srid\":4326,\"wkb\":\"AQEAAAAAAAAAAADwPwAAAAAAAABA\"}", 50},
    {"vector1", 242, 4, 0, 0, "\x0c\x00\x00\x00\xcd\xcc\x8c\?\xcd\xcc\x0c@33S@", 16, CDC_V_JSON, "[1.1,2.2,3.3]", 13},
    {"vector2", 242, 4, 0, 0, "\x0c\x00\x00\x00\x00\x00\x80\?\x00\x00\x80\xbf\x00\x00\x00\x00", 16, CDC_V_JSON, "[1,-1,0]", 8},
    {"vector_empty", 242, 4, 0, 0, "\x00\x00\x00\x00", 4, CDC_V_JSON, "[]", 2},
    {"json_empty", 245, 4, 0, 0, "\x00\x00\x00\x00", 4, CDC_V_JSON, "null", 4},
    {"json_col", 245, 4, 0, 0, "W\x00\x00\x00\x00\x03\x00V\x00\x19\x00\x01\x00\x1a\x00\x01\x00\x1b\x00\x01\x00\x05\x01\x00\x02\x1c\x00\x00@\x00" "abc\x06\x00$\x00\x05\x01\x00\x0b\x16\x00\x0c\x1e\x00\x04\x00\x00\x04\x01\x00\x04\x02\x00\x00\x00\x00\x00\x00\x00\x04@\x05three\x01\x00\x16\x00\x0b\x00\x06\x00\x0c\x11\x00nested\x04\xf0\x9f\x98\x80", 91, CDC_V_JSON, "{\"a\":1,\"b\":[1,2.5,\"three\",null,true,false],\"c\":{\"nested\":\"😀\"}}", 65},
};

typedef struct jvec {
    const char *name;
    const char *doc;
    size_t len;
    const char *exp;
} jvec_t;

static const jvec_t jvecs[] = {
    {"small_object", "\x00\x03\x00V\x00\x19\x00\x01\x00\x1a\x00\x01\x00\x1b\x00\x01\x00\x05\x01\x00\x02\x1c\x00\x00@\x00" "abc\x06\x00$\x00\x05\x01\x00\x0b\x16\x00\x0c\x1e\x00\x04\x00\x00\x04\x01\x00\x04\x02\x00\x00\x00\x00\x00\x00\x00\x04@\x05three\x01\x00\x16\x00\x0b\x00\x06\x00\x0c\x11\x00nested\x04\xf0\x9f\x98\x80", 87, "{\"a\":1,\"b\":[1,2.5,\"three\",null,true,false],\"c\":{\"nested\":\"😀\"}}"},
    {"large_object", "\x01\x03\x00\x00\x00~\x00\x00\x00)\x00\x00\x00\x01\x00*\x00\x00\x00\x01\x00+\x00\x00\x00\x01\x00\x05\x01\x00\x00\x00\x03,\x00\x00\x00\x01`\x00\x00\x00" "abc\x06\x00\x00\x00" "4\x00\x00\x00\x05\x01\x00\x00\x00\x0b&\x00\x00\x00\x0c.\x00\x00\x00\x04\x00\x00\x00\x00\x04\x01\x00\x00\x00\x04\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04@\x05three\x01\x00\x00\x00\x1e\x00\x00\x00\x13\x00\x00\x00\x06\x00\x0c\x19\x00\x00\x00nested\x04\xf0\x9f\x98\x80", 127, "{\"a\":1,\"b\":[1,2.5,\"three\",null,true,false],\"c\":{\"nested\":\"😀\"}}"},
    {"empty_array", "\x02\x00\x00\x04\x00", 5, "[]"},
    {"empty_object", "\x00\x00\x00\x04\x00", 5, "{}"},
    {"large_empty_array", "\x03\x00\x00\x00\x00\x08\x00\x00\x00", 9, "[]"},
    {"top_string", "\x0c\x0djust a string", 15, "\"just a string\""},
    {"top_null", "\x04\x00", 2, "null"},
    {"top_true", "\x04\x01", 2, "true"},
    {"top_false", "\x04\x02", 2, "false"},
    {"top_int16", "\x05\xfb\xff", 3, "-5"},
    {"top_int64", "\x09\x00\x00\x00\x00\x00\x00\x00\x80", 9, "-9223372036854775808"},
    {"top_uint64", "\x0a\xff\xff\xff\xff\xff\xff\xff\xff", 9, "18446744073709551615"},
    {"top_double", "\x0b\x9a\x99\x99\x99\x99\x99\xb9\?", 9, "0.1"},
    {"top_double_int", "\x0b\x00\x00\x00\x00\x00\x00\xf0\?", 9, "1.0"},
    {"numbers_small", "\x02\x0b\x00]\x00\x05\x00\x80\x05\xff\x7f\x06\xff\xff\x07%\x00\x08)\x00\x09-\x00\x0a" "5\x00\x0b=\x00\x0b" "E\x00\x0bM\x00\x0aU\x00\x00\x00\x00\x80\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x80\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\xf0\?\x9a\x99\x99\x99\x99\x99\xb9\?5X\x00" "f-\xeb" "A\xfe\xd2\x0a\x1f\xeb\x8c\xa9T\xab", 94, "[-32768,32767,65535,-2147483648,4294967295,-9223372036854775808,18446744073709551615,1.0,0.1,-1.5e+300,12345678901234567890]"},
    {"numbers_large", "\x03\x0b\x00\x00\x00o\x00\x00\x00\x05\x00\x80\x00\x00\x05\xff\x7f\x00\x00\x06\xff\xff\x00\x00\x07\x00\x00\x00\x80\x08\xff\xff\xff\xff\x09\?\x00\x00\x00\x0aG\x00\x00\x00\x0bO\x00\x00\x00\x0bW\x00\x00\x00\x0b_\x00\x00\x00\x0ag\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\xf0\?\x9a\x99\x99\x99\x99\x99\xb9\?5X\x00" "f-\xeb" "A\xfe\xd2\x0a\x1f\xeb\x8c\xa9T\xab", 112, "[-32768,32767,65535,-2147483648,4294967295,-9223372036854775808,18446744073709551615,1.0,0.1,-1.5e+300,12345678901234567890]"},
    {"escapes", "\x00\x01\x00\x1e\x00\x0b\x00\x03\x00\x0c\x0e\x00k\"\\\x0fq\"b\\s\x0a\x09\x01/\xc3\xa9\x0d\x08\x0c\x1f", 31, "{\"k\\\"\\\\\":\"q\\\"b\\\\s\\n\\t\\u0001/é\\r\\b\\f\\u001f\"}"},
    {"long_string", "\x0c\xac\x02xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 303, "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\""},
    {"nested", "\x02\x01\x00" "3\x00\x02\x07\x00\x01\x00,\x00\x02\x07\x00\x01\x00%\x00\x02\x07\x00\x01\x00\x1e\x00\x00\x07\x00\x01\x00\x17\x00\x0b\x00\x01\x00\x02\x0c\x00" "a\x01\x00\x0b\x00\x00\x07\x00\x00\x00\x04\x00", 52, "[[[[{\"a\":[{}]}]]]]"},
    {"opaque_fixture_1", "\x00\x01\x00\x0f\x00\x0b\x00\x01\x00\x0f\x0c\x00" "a\x0f\x01U", 16, "{\"a\":\"base64:type15:VQ==\"}"},
    {"opaque_fixture_2", "\x00\x01\x00\x16\x00\x0b\x00\x01\x00\x0f\x0c\x00" "b\x0a\x08\x00\x00\x00\x00\x00\xe4\x8b\x19", 23, "{\"b\":\"2012-03-18\"}"},
    {"opaque_fixture_3", "\x00\x01\x00\x16\x00\x0b\x00\x01\x00\x0f\x0c\x00" "c\x0c\x08\x00\x00\x00\xad\xb7\xe4\x8b\x19", 23, "{\"c\":\"2012-03-18 11:30:45.000000\"}"},
    {"opaque_fixture_4", "\x00\x01\x00\x16\x00\x0b\x00\x01\x00\x0f\x0c\x00" "c\x0b\x08\xf1\xfb\x09\xeew\x05\x00\x00", 23, "{\"c\":\"87:31:46.654321\"}"},
    {"opaque_fixture_5", "\x00\x01\x00\x14\x00\x0b\x00\x01\x00\x0f\x0c\x00" "d\xf6\x06\x06\x03\x80{\x01\xc8", 21, "{\"d\":123.456}"},
    {"opaque_fixture_6", "\x00\x01\x00\x15\x00\x0b\x00\x01\x00\x0f\x0c\x00" "e\xf6\x07\x0b\x02\x80\x00\x00\x09\x00", 22, "{\"e\":9.00}"},
    {"opaque_fixture_7", "\x00\x01\x00\x1c\x00\x0b\x00\x01\x00\x02\x0c\x00" "e\x04\x00\x10\x00\x05\x00\x00\x05\x01\x00\x04\x01\x00\x04\x02\x00", 29, "{\"e\":[0,1,true,false]}"},
    {"opaque_fixture_8", "\x00\x01\x00\x0c\x00\x0b\x00\x01\x00\x04\x00\x00" "e", 13, "{\"e\":null}"},
    {"opaque_time_neg", "\x0f\x0b\x08\x00\x00\x00\x05\x91\xcb\xff\xff", 11, "\"-838:59:59.000000\""},
    {"opaque_decimal_neg", "\x0f\xf6\x04\x04\x02s\xcd", 7, "-12.50"},
    {"opaque_blob", "\x0f\xfc\x03\x00\x01\x02", 6, "\"base64:type252:AAEC\""},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static cdc_column_t col_of(const vec_t *v)
{
    cdc_column_t c;
    memset(&c, 0, sizeof(c));
    c.name = (char *)v->name;
    c.type = v->type;
    c.meta = v->meta;
    c.flags = v->flags;
    c.charset = v->cs;
    return c;
}

/* Text of a decoded value for comparison with vec_t.exp. */
static void text_of(const cdc_value_t *val, char *b, size_t n, size_t *len)
{
    switch (val->kind) {
    case CDC_V_INT:
        *len = (size_t)snprintf(b, n, "%" PRId64, val->u.i);
        break;
    case CDC_V_UINT:
        *len = (size_t)snprintf(b, n, "%" PRIu64, val->u.u);
        break;
    case CDC_V_FLOAT:
        *len = (size_t)snprintf(b, n, "%.9g", val->u.d);
        break;
    case CDC_V_DOUBLE:
        *len = (size_t)snprintf(b, n, "%.17g", val->u.d);
        break;
    default:
        *len = val->len < n ? val->len : n - 1;
        memcpy(b, val->s, *len);
        b[*len] = '\0';
    }
}

CDC_TEST(value_vectors)
{
    cdc_arena_t a;
    cdc_arena_init(&a);
    for (size_t i = 0; i < NELEM(vecs); i++) {
        const vec_t *v = &vecs[i];
        cdc_column_t c = col_of(v);
        cdc_value_t val;
        cdc_err_t err;
        size_t used = 0, len;
        char b[512];
        char *in = malloc(v->inlen + 1); /* exact size: ASan sees overreads */

        memcpy(in, v->in, v->inlen);
        memset(&err, 0, sizeof(err));
        if (cdc_mysql_value(&c, (const uint8_t *)in, v->inlen, &a, &val,
                            &used, &err) != 0) {
            T_FAIL_("%zu %s: error: %s", i, v->name, err.msg);
            free(in);
            continue;
        }
        if (val.kind != v->kind)
            T_FAIL_("%zu %s: kind %d, expected %d", i, v->name, val.kind,
                    v->kind);
        if (used != v->inlen)
            T_FAIL_("%zu %s: used %zu of %zu", i, v->name, used, v->inlen);
        if (v->kind == CDC_V_FLOAT || v->kind == CDC_V_DOUBLE) {
            if (val.u.d != strtod(v->exp, NULL))
                T_FAIL_("%zu %s: %.17g, expected %s", i, v->name, val.u.d,
                        v->exp);
        } else {
            text_of(&val, b, sizeof(b), &len);
            if (len != v->explen || memcmp(b, v->exp, len) != 0)
                T_FAIL_("%zu %s: got \"%s\" (%zu bytes), expected \"%s\"",
                        i, v->name, b, len, v->exp);
            if (val.s && val.s[val.len] != '\0')
                T_FAIL_("%zu %s: not NUL-terminated", i, v->name);
        }
        /* one byte short must fail, never read past the end */
        if (v->inlen > 0) {
            cdc_err_t e2;
            memset(&e2, 0, sizeof(e2));
            if (cdc_mysql_value(&c, (const uint8_t *)in, v->inlen - 1, &a,
                                &val, &used, &e2) != -1)
                T_FAIL_("%zu %s: truncated input accepted", i, v->name);
            else if (e2.code != CDC_EXIT_DATA || !(e2.flags & CDC_ERR_F_DATA))
                T_FAIL_("%zu %s: wrong error code %d", i, v->name, e2.code);
        }
        free(in);
    }
    cdc_arena_destroy(&a);
}

static int json_of(const char *doc, size_t len, cdc_buf_t *out, cdc_err_t *err)
{
    char *in = malloc(len + 1);
    int rc;
    memcpy(in, doc, len);
    cdc_buf_reset(out);
    rc = cdc_mysql_json_text((const uint8_t *)in, len, out, err);
    free(in);
    return rc;
}

CDC_TEST(json_documents)
{
    cdc_buf_t out = CDC_BUF_INIT;
    for (size_t i = 0; i < NELEM(jvecs); i++) {
        const jvec_t *j = &jvecs[i];
        cdc_err_t err;
        memset(&err, 0, sizeof(err));
        if (json_of(j->doc, j->len, &out, &err) != 0) {
            T_FAIL_("%s: error: %s", j->name, err.msg);
            continue;
        }
        if (strcmp(out.p, j->exp) != 0)
            T_FAIL_("%s: got %s\n#   expected %s", j->name, out.p, j->exp);
        /* every proper prefix is truncated: an error, no overread */
        for (size_t k = 1; k < j->len; k++) {
            if (json_of(j->doc, k, &out, &err) == 0)
                T_FAIL_("%s: prefix of %zu bytes accepted: %s", j->name, k,
                        out.p);
        }
    }
    cdc_buf_free(&out);
}

CDC_TEST(json_empty_is_null)
{
    cdc_buf_t out = CDC_BUF_INIT;
    cdc_err_t err;
    T_EQ_INT(cdc_mysql_json_text((const uint8_t *)"", 0, &out, &err), 0);
    T_EQ_STR(out.p, "null");
    cdc_buf_free(&out);
}

CDC_TEST(json_corrupt)
{
    static const struct { const char *name, *doc; size_t len; } bad[] = {
        {"unknown type", "\x0d\x00", 2},
        {"unknown literal", "\x04\x07", 2},
        {"offset beyond", "\x02\x01\x00\x07\x00\x0c\x7f\x00", 8},
        {"size beyond", "\x02\x01\x00\x40\x00\x05\x01\x00", 8},
        {"count beyond", "\x02\x09\x00\x07\x00\x05\x01\x00", 8},
        {"key beyond", "\x00\x01\x00\x0c\x00\x0b\x00\x09\x00\x05\x01\x00a",
         13},
        {"bad utf8 string", "\x0c\x02\xc3\x28", 4},
        {"string length overflow", "\x0c\xff\xff\xff\xff\x7f", 6},
        {"opaque decimal garbage", "\x0f\xf6\x04\x04\x02\xff\xff", 7},
    };
    cdc_buf_t out = CDC_BUF_INIT;
    for (size_t i = 0; i < NELEM(bad); i++) {
        cdc_err_t err;
        memset(&err, 0, sizeof(err));
        if (json_of(bad[i].doc, bad[i].len, &out, &err) != -1)
            T_FAIL_("%s: accepted as %s", bad[i].name, out.p);
        else if (err.code != CDC_EXIT_DATA || out.len != 0)
            T_FAIL_("%s: code %d, %zu bytes left in out", bad[i].name,
                    err.code, out.len);
    }
    cdc_buf_free(&out);
}

CDC_TEST(json_depth_limit)
{
    /* 300 nested small arrays [[[...]]] */
    enum { N = 300 };
    uint8_t doc[1 + N * 7 + 4];
    size_t off = 0;
    cdc_buf_t out = CDC_BUF_INIT;
    cdc_err_t err;
    doc[0] = 0x02;
    /* build from the innermost out: inner = 4-byte empty array */
    {
        uint8_t cur[N * 7 + 8];
        size_t len = 4;
        memcpy(cur, "\x00\x00\x04\x00", 4);
        for (int i = 0; i < N; i++) {
            uint8_t nxt[N * 7 + 8];
            size_t sz = 7 + len;
            nxt[0] = 1; nxt[1] = 0;
            nxt[2] = (uint8_t)sz; nxt[3] = (uint8_t)(sz >> 8);
            nxt[4] = 0x02; nxt[5] = 7; nxt[6] = 0;
            memcpy(nxt + 7, cur, len);
            len = sz;
            memcpy(cur, nxt, len);
        }
        memcpy(doc + 1, cur, len);
        off = 1 + len;
    }
    T_EQ_INT(cdc_mysql_json_text(doc, off, &out, &err), -1);
    T_ASSERT(strstr(err.msg, "deeply") != NULL);
    cdc_buf_free(&out);
}

static cdc_column_t mkcol(uint32_t type, uint32_t meta, uint16_t cs,
                          char **members, uint32_t n)
{
    cdc_column_t c;
    memset(&c, 0, sizeof(c));
    c.name = "c";
    c.type = type;
    c.meta = meta;
    c.charset = cs;
    c.members = members;
    c.nmembers = n;
    return c;
}

static int dec1(const cdc_column_t *c, const char *in, size_t n,
                cdc_arena_t *a, cdc_value_t *v, cdc_err_t *err)
{
    size_t used;
    return cdc_mysql_value(c, (const uint8_t *)in, n, a, v, &used, err);
}

CDC_TEST(enum_members)
{
    char *m[] = {"small", "medium", "large", "x-large"};
    char *big[260];
    char names[260][8];
    cdc_arena_t a;
    cdc_value_t v;
    cdc_err_t err;
    cdc_column_t c = mkcol(247, 1, 45, m, 4);

    cdc_arena_init(&a);
    T_EQ_INT(dec1(&c, "\x01", 1, &a, &v, &err), 0);
    T_EQ_INT(v.kind, CDC_V_STRING);
    T_EQ_STR(v.s, "small");
    T_EQ_INT(dec1(&c, "\x04", 1, &a, &v, &err), 0);
    T_EQ_STR(v.s, "x-large");
    T_EQ_INT(dec1(&c, "\x00", 1, &a, &v, &err), 0); /* '' error value */
    T_EQ_INT(v.kind, CDC_V_STRING);
    T_EQ_INT(v.len, 0);
    T_EQ_INT(dec1(&c, "\x05", 1, &a, &v, &err), -1);
    T_ASSERT(strstr(err.msg, "beyond") != NULL);
    T_EQ_INT(dec1(&c, "", 0, &a, &v, &err), -1);

    for (int i = 0; i < 260; i++) {
        snprintf(names[i], sizeof(names[i]), "v%03d", i);
        big[i] = names[i];
    }
    c = mkcol(247, 2, 45, big, 260);
    T_EQ_INT(dec1(&c, "\x04\x01", 2, &a, &v, &err), 0); /* 260 */
    T_EQ_STR(v.s, "v259");
    T_EQ_INT(dec1(&c, "\x81\x00", 2, &a, &v, &err), 0); /* 129 */
    T_EQ_STR(v.s, "v128");
    T_EQ_INT(dec1(&c, "\x04", 1, &a, &v, &err), -1);

    c = mkcol(247, 2, 45, NULL, 0); /* MINIMAL metadata: the index */
    T_EQ_INT(dec1(&c, "\x04\x01", 2, &a, &v, &err), 0);
    T_EQ_INT(v.kind, CDC_V_UINT);
    T_EQ_INT(v.u.u, 260);

    {
        /* member names are converted from the column's charset when the
         * TABLE_MAP is read: latin1, and ucs2, whose names hold NULs */
        cdc_buf_t u = CDC_BUF_INIT;
        T_EQ_INT(cdc_mysql_member_utf8(8, (const uint8_t *)"caf\xe9", 4, &u,
                                       &err),
                 0);
        T_EQ_STR(u.p, "caf\xc3\xa9");
        cdc_buf_reset(&u);
        T_EQ_INT(cdc_mysql_member_utf8(35, (const uint8_t *)"\0a\0\xe9", 4,
                                       &u, &err),
                 0);
        T_EQ_STR(u.p, "a\xc3\xa9");
        T_EQ_INT(cdc_mysql_member_utf8(45, (const uint8_t *)"\xe9", 1, &u,
                                       &err),
                 -1);
        cdc_buf_free(&u);
    }
    cdc_arena_destroy(&a);
}

CDC_TEST(set_members)
{
    char *m[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    char *odd[] = {"q\"", "back\\slash", "x,y"};
    cdc_arena_t a;
    cdc_value_t v;
    cdc_err_t err;
    cdc_column_t c = mkcol(248, 2, 45, m, 9);

    cdc_arena_init(&a);
    T_EQ_INT(dec1(&c, "\x05\x01", 2, &a, &v, &err), 0);
    T_EQ_INT(v.kind, CDC_V_JSON);
    T_EQ_STR(v.s, "[\"a\",\"c\",\"i\"]");
    T_EQ_INT(dec1(&c, "\x0a\x00", 2, &a, &v, &err), 0);
    T_EQ_STR(v.s, "[\"b\",\"d\"]");
    T_EQ_INT(dec1(&c, "\x00\x00", 2, &a, &v, &err), 0);
    T_EQ_STR(v.s, "[]");
    T_EQ_INT(dec1(&c, "\x00\x02", 2, &a, &v, &err), -1); /* bit 9 */
    T_EQ_INT(dec1(&c, "\x05", 1, &a, &v, &err), -1);

    c = mkcol(248, 1, 45, odd, 3);
    T_EQ_INT(dec1(&c, "\x07", 1, &a, &v, &err), 0);
    T_EQ_STR(v.s, "[\"q\\\"\",\"back\\\\slash\",\"x,y\"]");

    c = mkcol(248, 8, 45, NULL, 0);
    T_EQ_INT(dec1(&c, "\xff\xff\xff\xff\xff\xff\xff\xff", 8, &a, &v, &err),
             0);
    T_EQ_INT(v.kind, CDC_V_UINT);
    T_ASSERT(v.u.u == UINT64_MAX);
    cdc_arena_destroy(&a);
}

/* The value functions the snapshot shares with the decoder
 * (binlog_value_int.h): the same text for the same broken-down value as
 * the decoder gives for the row-image bytes of the vectors above. */
static const char *tm_text(int what, unsigned y, unsigned mo, unsigned d,
                           unsigned h, unsigned mi, unsigned s, unsigned us,
                           int neg, int fsp)
{
    static char b[64];
    cdc_mysql_tm_t t = {y, mo, d, h, mi, s, us, neg};
    int n = cdc_mysql_time_text(what, &t, fsp, b);
    if (n < 0 || (size_t)n != strlen(b))
        return "(length mismatch)";
    return b;
}

/* the decoder's text for vector `name` of vecs[] */
static const char *vec_text(const char *name)
{
    static char out[128];
    for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) {
        if (strcmp(vecs[i].name, name))
            continue;
        cdc_column_t c = mkcol(vecs[i].type, vecs[i].meta, vecs[i].cs, NULL, 0);
        cdc_arena_t a;
        cdc_value_t v;
        cdc_err_t err;
        cdc_arena_init(&a);
        c.flags = vecs[i].flags;
        if (dec1(&c, vecs[i].in, vecs[i].inlen, &a, &v, &err) < 0)
            snprintf(out, sizeof(out), "(error %.100s)", err.msg);
        else
            snprintf(out, sizeof(out), "%.*s", (int)v.len, v.s);
        cdc_arena_destroy(&a);
        return out;
    }
    return "(no such vector)";
}

CDC_TEST(shared_with_the_snapshot)
{
    enum { D = CDC_MYTIME_DATE, T = CDC_MYTIME_TIME,
           DT = CDC_MYTIME_DATETIME, TS = CDC_MYTIME_TIMESTAMP };
    T_EQ_STR(tm_text(TS, 1970, 1, 1, 0, 0, 1, 1000, 0, 3), vec_text("ts2_1001"));
    T_EQ_STR(tm_text(TS, 2038, 1, 19, 3, 14, 7, 999999, 0, 6),
             vec_text("ts2_max"));
    T_EQ_STR(tm_text(TS, 0, 0, 0, 0, 0, 0, 0, 0, 0), vec_text("ts2_zero"));
    T_EQ_STR(tm_text(TS, 0, 0, 0, 0, 0, 0, 0, 0, 2), "0000-00-00 00:00:00.00");
    T_EQ_STR(tm_text(DT, 9999, 12, 31, 23, 59, 59, 900000, 0, 1),
             vec_text("dt2_max_f1"));
    T_EQ_STR(tm_text(DT, 0, 0, 0, 0, 0, 0, 0, 0, 1), vec_text("dt2_zero_f1"));
    T_EQ_STR(tm_text(T, 0, 0, 0, 838, 59, 58, 900000, 1, 1),
             vec_text("time2_f1_m8385958_9"));
    T_EQ_STR(tm_text(T, 0, 0, 0, 0, 0, 0, 1, 1, 6),
             vec_text("time2_f6_m000000_000001"));
    T_EQ_STR(tm_text(T, 0, 0, 0, 12, 34, 56, 789000, 0, 3),
             vec_text("time2_f3_123456_789"));
    T_EQ_STR(tm_text(D, 2024, 2, 29, 0, 0, 0, 0, 0, 0), "2024-02-29");
    T_EQ_STR(tm_text(D, 0, 0, 0, 0, 0, 0, 0, 0, 0), "0000-00-00");

    T_EQ_INT(cdc_mysql_bit_uint((const uint8_t *)"\x15U", 2), 5461);
    T_ASSERT(cdc_mysql_bit_uint((const uint8_t *)"\x80\0\0\0\0\0\0\x01", 8) ==
             9223372036854775809ULL);

    {
        cdc_buf_t b = CDC_BUF_INIT;
        cdc_mysql_set_end(&b);
        T_EQ_STR(b.p, "[]");
        cdc_buf_free(&b);
        cdc_mysql_set_member(&b, "a", 1);
        cdc_mysql_set_member(&b, "q\"", 2);
        cdc_mysql_set_member(&b, "\xc3\xbc", 2);
        cdc_mysql_set_end(&b);
        T_EQ_STR(b.p, "[\"a\",\"q\\\"\",\"\xc3\xbc\"]");
        cdc_buf_free(&b);
    }
    {
        cdc_buf_t b = CDC_BUF_INIT;
        /* SRID 4326, then 5 WKB bytes */
        T_EQ_INT(cdc_mysql_geometry_json((const uint8_t *)"\xe6\x10\0\0\x01\x02\x03\x04\x05",
                                         9, &b), 0);
        T_EQ_STR(b.p, "{\"srid\":4326,\"wkb\":\"AQIDBAU=\"}");
        cdc_buf_free(&b);
        T_EQ_INT(cdc_mysql_geometry_json((const uint8_t *)"\xe6\x10\0", 3, &b), -1);
        cdc_buf_free(&b);
    }
}

/* MariaDB JSON columns: the CHECK clause names the column */
CDC_TEST(json_check_clause)
{
    static const struct { const char *in, *out; } c[] = {
        {"json_valid(`doc`)", "doc"},
        {"JSON_VALID(`a``b`)", "a`b"},
        {"json_valid(``)", ""},
        {"json_valid(`doc`) and 1", NULL},
        {"json_valid(`doc`", NULL},
        {"json_valid(doc)", NULL},
        {"length(`doc`) < 5", NULL},
        {"json_valid(`a``", NULL},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char *got = cdc_mysql_json_check_col(c[i].in);
        if (c[i].out)
            T_EQ_STR(got, c[i].out);
        else if (got)
            T_FAIL_("'%s' gave '%s', expected none", c[i].in, got);
        free(got);
    }
}

CDC_TEST(charset_errors)
{
    cdc_arena_t a;
    cdc_value_t v;
    cdc_err_t err;
    cdc_column_t c = mkcol(15, 40, 28, NULL, 0); /* gbk_chinese_ci */
    cdc_buf_t b = CDC_BUF_INIT;

    cdc_arena_init(&a);
    T_EQ_INT(dec1(&c, "\x02\xc4\xe3", 3, &a, &v, &err), -1);
    T_ASSERT(strstr(err.msg, "collation id 28") != NULL);
    T_ASSERT(strstr(err.hint, "utf8mb4") != NULL);
    T_ASSERT(strstr(err.msg, "column c") != NULL);

    c = mkcol(15, 40, 45, NULL, 0); /* invalid UTF-8 in utf8mb4 */
    T_EQ_INT(dec1(&c, "\x03" "a\xc3(", 4, &a, &v, &err), -1);
    T_ASSERT(strstr(err.msg, "invalid utf8mb4") != NULL);
    T_EQ_INT(dec1(&c, "\x03\xed\xa0\x80", 4, &a, &v, &err), -1); /* surrogate */
    T_EQ_INT(dec1(&c, "\x02\xc0\xaf", 3, &a, &v, &err), -1);     /* overlong */

    c = mkcol(15, 40, 35, NULL, 0); /* ucs2 with an odd byte count */
    T_EQ_INT(dec1(&c, "\x03\x00" "a\x00", 4, &a, &v, &err), -1);
    c = mkcol(15, 40, 11, NULL, 0); /* ascii with a high byte */
    T_EQ_INT(dec1(&c, "\x01\xe9", 2, &a, &v, &err), -1);

    T_EQ_INT(cdc_mysql_to_utf8(8, (const uint8_t *)"\xe9t\xe9", 3, &b, &err),
             0);
    T_EQ_STR(b.p, "\xc3\xa9t\xc3\xa9");
    T_EQ_INT(cdc_mysql_to_utf8(999, (const uint8_t *)"x", 1, &b, &err), -1);
    T_ASSERT(strstr(err.msg, "999") != NULL);
    T_EQ_INT(cdc_mysql_to_utf8(63, (const uint8_t *)"x", 1, &b, &err), -1);
    cdc_buf_free(&b);
    cdc_arena_destroy(&a);
}

CDC_TEST(unknown_and_bad_metadata)
{
    cdc_arena_t a;
    cdc_value_t v;
    cdc_err_t err;
    cdc_column_t c = mkcol(20, 0, 0, NULL, 0);

    cdc_arena_init(&a);
    T_EQ_INT(dec1(&c, "\x00\x00", 2, &a, &v, &err), -1);
    T_ASSERT(strstr(err.msg, "unknown column type 20") != NULL);
    T_EQ_INT(err.code, CDC_EXIT_DATA);
    T_ASSERT(err.flags & CDC_ERR_F_DATA);
    c = mkcol(0, 0, 0, NULL, 0); /* pre-5.0 DECIMAL */
    T_EQ_INT(dec1(&c, "\x00", 1, &a, &v, &err), -1);
    c = mkcol(246, 66 << 8 | 2, 0, NULL, 0); /* precision 66 */
    T_EQ_INT(dec1(&c, "\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                      "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                      "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                  35, &a, &v, &err), -1);
    c = mkcol(246, 4 << 8 | 2, 0, NULL, 0); /* digit group 100 > 99 */
    T_EQ_INT(dec1(&c, "\xe4\x00", 2, &a, &v, &err), -1);
    T_ASSERT(strstr(err.msg, "corrupt DECIMAL") != NULL);
    c = mkcol(19, 7, 0, NULL, 0); /* TIME(7) */
    T_EQ_INT(dec1(&c, "\x80\x00\x00\x00\x00\x00\x00\x00", 8, &a, &v, &err),
             -1);
    c = mkcol(16, 65, 0, NULL, 0); /* BIT(65) */
    T_EQ_INT(dec1(&c, "\x00\x00\x00\x00\x00\x00\x00\x00\x00", 9, &a, &v,
                  &err), -1);
    c = mkcol(252, 5, 0, NULL, 0); /* 5-byte length prefix */
    T_EQ_INT(dec1(&c, "\x00\x00\x00\x00\x00", 5, &a, &v, &err), -1);
    c = mkcol(252, 4, 0, NULL, 0); /* length beyond the row image */
    T_EQ_INT(dec1(&c, "\xff\xff\xff\xff" "abc", 7, &a, &v, &err), -1);
    T_ASSERT(strstr(err.msg, "truncated") != NULL);
    c = mkcol(255, 4, 0, NULL, 0); /* geometry without SRID */
    T_EQ_INT(dec1(&c, "\x02\x00\x00\x00\x01\x02", 6, &a, &v, &err), -1);
    c = mkcol(242, 4, 0, NULL, 0); /* vector of 5 bytes */
    T_EQ_INT(dec1(&c, "\x05\x00\x00\x00\x00\x00\x80\x3f\x00", 9, &a, &v,
                  &err), -1);
    c = mkcol(18, 0, 0, NULL, 0); /* DATETIME2 below its offset */
    T_EQ_INT(dec1(&c, "\x00\x00\x00\x00\x00", 5, &a, &v, &err), -1);
    c = mkcol(17, 6, 0, NULL, 0); /* TIMESTAMP2 fraction > 999999 */
    T_EQ_INT(dec1(&c, "\x00\x00\x00\x01\xff\xff\xff", 7, &a, &v, &err), -1);
    cdc_arena_destroy(&a);
}

CDC_TEST(float_and_double_json)
{
    cdc_buf_t b = CDC_BUF_INIT;
    T_EQ_INT(cdc_mysql_json_double(&b, 0.1), 0);
    T_EQ_STR(b.p, "0.1");
    cdc_buf_reset(&b);
    T_EQ_INT(cdc_mysql_json_double(&b, 2.718281828459045), 0);
    T_EQ_STR(b.p, "2.718281828459045");
    cdc_buf_reset(&b);
    T_EQ_INT(cdc_mysql_json_double(&b, 1e300 * 1e300), -1);
    T_EQ_INT(cdc_mysql_json_float(&b, 3.14159f), 0);
    T_EQ_STR(b.p, "3.14159");
    cdc_buf_free(&b);
}

CDC_TEST_MAIN()
