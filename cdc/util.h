/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.h - tiny helpers shared by every component.
 */
#ifndef CDC_UTIL_H
#define CDC_UTIL_H

#include <stdint.h>
#include <sys/time.h>

/** @brief Wall-clock time in µs since the Unix epoch. */
static inline int64_t cdc_now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/** @brief Days since 1970-01-01 of proleptic Gregorian y-m-d (H. Hinnant's
 *  days_from_civil). */
static inline int64_t cdc_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/** @brief Value of one hex digit, or -1. */
static inline int cdc_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/** @brief Write v as exactly n lower-case hex digits (the low 4n bits,
 *  zero-padded; like "%0*x", without printf), no terminator; returns
 *  out + n. */
static inline char *cdc_hex(char *out, uint64_t v, int n)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = n - 1; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 15];
    return out + n;
}

#endif
