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
