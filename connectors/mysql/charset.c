/* SPDX-License-Identifier: Apache-2.0 */
/*
 * charset.c - MySQL/MariaDB column bytes -> UTF-8.
 *
 * Row images carry character data in the column's own character set,
 * identified by a collation id from TABLE_MAP metadata.  This file maps
 * collation ids to the few character sets we convert (the ids were taken
 * from MariaDB 10.11's information_schema.COLLATION_CHARACTER_SET_
 * APPLICABILITY and MySQL 8.0's documented utf8mb4 0900 range) and does the
 * conversion.  An id we do not know is an error, never a guess: the
 * message names the id and suggests utf8mb4.
 *
 * Invariants: pure functions, every byte read is bounds-checked against n,
 * the output is always valid UTF-8 on success.
 */
#include <stdint.h>
#include <string.h>

#include "cdc/buf.h"
#include "cdc/err.h"
#include "connectors/mysql/binlog.h"
#include "connectors/mysql/binlog_value_int.h"

/* Collation id ranges per character set.  MariaDB >= 10.10 numbers its
 * UCA-14.0.0 collations in blocks of 256 per character set (2048..3327). */
typedef struct cs_range {
    uint16_t lo, hi;
    uint8_t cs;
} cs_range_t;

static const cs_range_t cs_ranges[] = {
    {5, 5, CDC_CS_LATIN1},       /* latin1_german1_ci */
    {8, 8, CDC_CS_LATIN1},       /* latin1_swedish_ci */
    {11, 11, CDC_CS_ASCII},      /* ascii_general_ci */
    {15, 15, CDC_CS_LATIN1},     /* latin1_danish_ci */
    {31, 31, CDC_CS_LATIN1},     /* latin1_german2_ci */
    {33, 33, CDC_CS_UTF8},       /* utf8mb3_general_ci */
    {35, 35, CDC_CS_UCS2},       /* ucs2_general_ci */
    {45, 46, CDC_CS_UTF8},       /* utf8mb4_general_ci, utf8mb4_bin */
    {47, 49, CDC_CS_LATIN1},     /* latin1_bin, _general_ci, _general_cs */
    {54, 55, CDC_CS_UTF16},      /* utf16_general_ci, utf16_bin */
    {56, 56, CDC_CS_UTF16LE},    /* utf16le_general_ci */
    {60, 61, CDC_CS_UTF32},      /* utf32_general_ci, utf32_bin */
    {62, 62, CDC_CS_UTF16LE},    /* utf16le_bin */
    {63, 63, CDC_CS_BINARY},     /* binary */
    {65, 65, CDC_CS_ASCII},      /* ascii_bin */
    {76, 76, CDC_CS_UTF8},       /* MySQL 8 utf8mb3_tolower_ci */
    {83, 83, CDC_CS_UTF8},       /* utf8mb3_bin */
    {90, 90, CDC_CS_UCS2},       /* ucs2_bin */
    {94, 94, CDC_CS_LATIN1},     /* latin1_spanish_ci */
    {101, 124, CDC_CS_UTF16},    /* utf16_*_ci */
    {128, 151, CDC_CS_UCS2},     /* ucs2_*_ci */
    {159, 159, CDC_CS_UCS2},     /* ucs2_general_mysql500_ci */
    {160, 183, CDC_CS_UTF32},    /* utf32_*_ci */
    {192, 215, CDC_CS_UTF8},     /* utf8mb3_*_ci */
    {223, 223, CDC_CS_UTF8},     /* utf8mb3_general_mysql500_ci */
    {224, 247, CDC_CS_UTF8},     /* utf8mb4_*_ci */
    {255, 323, CDC_CS_UTF8},     /* MySQL 8 utf8mb4_*_0900_* */
    {576, 578, CDC_CS_UTF8},     /* MariaDB utf8mb3_*_mysql561_ci */
    {608, 610, CDC_CS_UTF8},     /* MariaDB utf8mb4_*_mysql561_ci */
    {640, 642, CDC_CS_UCS2},     /* MariaDB ucs2_*_mysql561_ci */
    {672, 674, CDC_CS_UTF16},    /* MariaDB utf16_*_mysql561_ci */
    {736, 738, CDC_CS_UTF32},    /* MariaDB utf32_*_mysql561_ci */
    {1032, 1032, CDC_CS_LATIN1}, /* MariaDB latin1_*_nopad_* */
    {1035, 1035, CDC_CS_ASCII},  /* MariaDB ascii_general_nopad_ci */
    {1057, 1057, CDC_CS_UTF8},   /* MariaDB utf8mb3_general_nopad_ci */
    {1059, 1059, CDC_CS_UCS2},   /* MariaDB ucs2_general_nopad_ci */
    {1069, 1070, CDC_CS_UTF8},   /* MariaDB utf8mb4_*_nopad_* */
    {1071, 1071, CDC_CS_LATIN1}, /* MariaDB latin1_nopad_bin */
    {1078, 1079, CDC_CS_UTF16},  /* MariaDB utf16_*_nopad_* */
    {1080, 1080, CDC_CS_UTF16LE},/* MariaDB utf16le_general_nopad_ci */
    {1084, 1085, CDC_CS_UTF32},  /* MariaDB utf32_*_nopad_* */
    {1086, 1086, CDC_CS_UTF16LE},/* MariaDB utf16le_nopad_bin */
    {1089, 1089, CDC_CS_ASCII},  /* MariaDB ascii_nopad_bin */
    {1107, 1107, CDC_CS_UTF8},   /* MariaDB utf8mb3_nopad_bin */
    {1114, 1114, CDC_CS_UCS2},   /* MariaDB ucs2_nopad_bin */
    {1125, 1125, CDC_CS_UTF16},  /* MariaDB utf16_unicode_nopad_ci */
    {1147, 1147, CDC_CS_UTF16},  /* MariaDB utf16_unicode_520_nopad_ci */
    {1152, 1152, CDC_CS_UCS2},   /* MariaDB ucs2_unicode_nopad_ci */
    {1174, 1174, CDC_CS_UCS2},   /* MariaDB ucs2_unicode_520_nopad_ci */
    {1184, 1184, CDC_CS_UTF32},  /* MariaDB utf32_unicode_nopad_ci */
    {1206, 1206, CDC_CS_UTF32},  /* MariaDB utf32_unicode_520_nopad_ci */
    {1216, 1216, CDC_CS_UTF8},   /* MariaDB utf8mb3_unicode_nopad_ci */
    {1238, 1238, CDC_CS_UTF8},   /* MariaDB utf8mb3_unicode_520_nopad_ci */
    {1248, 1248, CDC_CS_UTF8},   /* MariaDB utf8mb4_unicode_nopad_ci */
    {1270, 1270, CDC_CS_UTF8},   /* MariaDB utf8mb4_unicode_520_nopad_ci */
    {2048, 2303, CDC_CS_UTF8},   /* MariaDB utf8mb3_uca1400_* */
    {2304, 2559, CDC_CS_UTF8},   /* MariaDB utf8mb4_uca1400_* */
    {2560, 2815, CDC_CS_UCS2},   /* MariaDB ucs2_uca1400_* */
    {2816, 3071, CDC_CS_UTF16},  /* MariaDB utf16_uca1400_* */
    {3072, 3327, CDC_CS_UTF32},  /* MariaDB utf32_uca1400_* */
};

int cdc_mysql_charset_kind(uint16_t collation)
{
    size_t lo = 0, hi = sizeof(cs_ranges) / sizeof(cs_ranges[0]);

    if (collation == 0)
        return CDC_CS_UNKNOWN;
    while (lo < hi) { /* binary search over the sorted ranges */
        size_t mid = (lo + hi) / 2;
        if (collation < cs_ranges[mid].lo)
            hi = mid;
        else if (collation > cs_ranges[mid].hi)
            lo = mid + 1;
        else
            return cs_ranges[mid].cs;
    }
    return CDC_CS_UNKNOWN;
}

/* MySQL's latin1 is Windows-1252; its five undefined bytes map to the C1
 * controls of the same value (MySQL strings/ctype-latin1.c behaviour). */
static const uint16_t cp1252_80[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

static void put_cp(cdc_buf_t *out, uint32_t c)
{
    char u[4];

    if (c < 0x80) {
        cdc_buf_putc(out, (char)c);
    } else if (c < 0x800) {
        u[0] = (char)(0xC0 | (c >> 6));
        u[1] = (char)(0x80 | (c & 0x3F));
        cdc_buf_put(out, u, 2);
    } else if (c < 0x10000) {
        u[0] = (char)(0xE0 | (c >> 12));
        u[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        u[2] = (char)(0x80 | (c & 0x3F));
        cdc_buf_put(out, u, 3);
    } else {
        u[0] = (char)(0xF0 | (c >> 18));
        u[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((c >> 6) & 0x3F));
        u[3] = (char)(0x80 | (c & 0x3F));
        cdc_buf_put(out, u, 4);
    }
}

size_t cdc_mysql_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = p[i];
        uint32_t cp;
        size_t k;

        /* ASCII runs 8 bytes at a time (decode profile: this function
         * was 6% of the time on text-heavy rows) */
        if (c < 0x80 && i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (n - i - 1 < k)
            return i;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        /* overlong forms, surrogates, > U+10FFFF */
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return i;
        i += k + 1;
    }
    return n;
}

static const char *cs_name(int cs)
{
    switch (cs) {
    case CDC_CS_UTF8: return "utf8mb4";
    case CDC_CS_LATIN1: return "latin1";
    case CDC_CS_ASCII: return "ascii";
    case CDC_CS_UCS2: return "ucs2";
    case CDC_CS_UTF16: return "utf16";
    case CDC_CS_UTF16LE: return "utf16le";
    case CDC_CS_UTF32: return "utf32";
    default: return "?";
    }
}

static int bad_bytes(cdc_err_t *err, uint16_t collation, int cs, size_t at)
{
    cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                "invalid %s byte sequence at byte %zu of a value "
                "(collation %u)", cs_name(cs), at, (unsigned)collation);
    cdc_err_hint(err, "the value is not valid in the column's character "
                      "set; check how it was written");
    return -1;
}

int cdc_mysql_to_utf8(uint16_t collation, const uint8_t *p, size_t n,
                      cdc_buf_t *out, cdc_err_t *err)
{
    int cs = cdc_mysql_charset_kind(collation);
    size_t i, ok;

    switch (cs) {
    case CDC_CS_UTF8:
        ok = cdc_mysql_utf8_valid(p, n);
        if (ok != n)
            return bad_bytes(err, collation, cs, ok);
        cdc_buf_put(out, p, n);
        return 0;
    case CDC_CS_ASCII:
        for (i = 0; i < n; i++)
            if (p[i] >= 0x80)
                return bad_bytes(err, collation, cs, i);
        cdc_buf_put(out, p, n);
        return 0;
    case CDC_CS_LATIN1:
        cdc_buf_grow(out, n * 2 + 1);
        for (i = 0; i < n; i++) {
            uint8_t c = p[i];
            if (c < 0x80)
                cdc_buf_putc(out, (char)c);
            else if (c < 0xA0)
                put_cp(out, cp1252_80[c - 0x80]);
            else
                put_cp(out, c);
        }
        return 0;
    case CDC_CS_UCS2:
        if (n % 2)
            return bad_bytes(err, collation, cs, n - 1);
        for (i = 0; i < n; i += 2) {
            uint32_t c = (uint32_t)p[i] << 8 | p[i + 1];
            if (c >= 0xD800 && c <= 0xDFFF)
                return bad_bytes(err, collation, cs, i);
            put_cp(out, c);
        }
        return 0;
    case CDC_CS_UTF16:
    case CDC_CS_UTF16LE:
        if (n % 2)
            return bad_bytes(err, collation, cs, n - 1);
        for (i = 0; i < n; i += 2) {
            uint32_t c = cs == CDC_CS_UTF16 ? (uint32_t)p[i] << 8 | p[i + 1]
                                            : (uint32_t)p[i + 1] << 8 | p[i];
            if (c >= 0xDC00 && c <= 0xDFFF)
                return bad_bytes(err, collation, cs, i);
            if (c >= 0xD800 && c <= 0xDBFF) {
                uint32_t lo;
                if (n - i < 4)
                    return bad_bytes(err, collation, cs, i);
                lo = cs == CDC_CS_UTF16 ? (uint32_t)p[i + 2] << 8 | p[i + 3]
                                        : (uint32_t)p[i + 3] << 8 | p[i + 2];
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return bad_bytes(err, collation, cs, i);
                c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                i += 2;
            }
            put_cp(out, c);
        }
        return 0;
    case CDC_CS_UTF32:
        if (n % 4)
            return bad_bytes(err, collation, cs, n - n % 4);
        for (i = 0; i < n; i += 4) {
            uint32_t c = (uint32_t)p[i] << 24 | (uint32_t)p[i + 1] << 16 |
                         (uint32_t)p[i + 2] << 8 | p[i + 3];
            if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
                return bad_bytes(err, collation, cs, i);
            put_cp(out, c);
        }
        return 0;
    case CDC_CS_BINARY:
        cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                    "collation 63 (binary) has no character set to convert "
                    "from");
        cdc_err_hint(err, "binary values are emitted as bytes (base64)");
        return -1;
    default:
        cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                    "unsupported character set: collation id %u",
                    (unsigned)collation);
        cdc_err_detail(err, "converted are latin1, ascii, utf8mb3, utf8mb4, "
                            "ucs2, utf16, utf16le, utf32 and binary");
        cdc_err_hint(err, "convert the column to utf8mb4 (ALTER TABLE ... "
                          "CONVERT TO CHARACTER SET utf8mb4)");
        return -1;
    }
}
