/* SPDX-License-Identifier: Apache-2.0 */
/*
 * err.h - error objects and exit codes.
 *
 * Convention: functions return 0 on success or -1 with *err filled;
 * constructors return NULL and fill *err.  An error carries what failed
 * (msg), why (detail) and what to do (hint).  Messages are lower-case,
 * one line, no final period.
 */
#ifndef CDC_ERR_H
#define CDC_ERR_H

#include <stddef.h>

/* Exit codes (documented in autoglm-cdc(1), EXIT STATUS). */
enum {
    CDC_EXIT_OK = 0,
    CDC_EXIT_FAIL = 1,        /* runtime failure */
    CDC_EXIT_USAGE = 2,       /* bad command line */
    CDC_EXIT_NORESUME = 3,    /* cannot resume without data loss */
    CDC_EXIT_DATA = 65,       /* bad input data (undecodable event) */
    CDC_EXIT_UNAVAILABLE = 69,/* source or sink unreachable */
    CDC_EXIT_TEMPFAIL = 75,   /* transient (e.g. lock held): retry later */
    CDC_EXIT_CONFIG = 78,     /* invalid configuration */
};

/* Error flags. */
#define CDC_ERR_F_RETRIABLE 0x1 /* reconnect / retry may help */
#define CDC_ERR_F_FATAL 0x2     /* stop the pipeline */
#define CDC_ERR_F_DATA 0x4      /* a row / event could not be decoded */

typedef struct cdc_err {
    int code;         /* one of CDC_EXIT_* */
    int flags;        /* CDC_ERR_F_* */
    char msg[512];    /* what failed */
    char detail[512]; /* why (optional) */
    char hint[512];   /* what to do (optional) */
} cdc_err_t;

#if defined(__GNUC__)
#define CDC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CDC_PRINTF(a, b)
#endif

/** @brief Set code, flags and message; clears detail and hint.
 *  @returns -1, so callers may write `return cdc_err_set(...)`. */
int cdc_err_set(cdc_err_t *err, int code, int flags, const char *fmt, ...)
    CDC_PRINTF(4, 5);
/** @brief Set the "why" part. */
void cdc_err_detail(cdc_err_t *err, const char *fmt, ...) CDC_PRINTF(2, 3);
/** @brief Set the "what to do" part. */
void cdc_err_hint(cdc_err_t *err, const char *fmt, ...) CDC_PRINTF(2, 3);
/** @brief Clear the error. */
void cdc_err_clear(cdc_err_t *err);
/** @brief Print "autoglm-cdc: error: msg\n  detail: ..\n  hint: .." to stderr
 *  (through the logger when it is in JSON mode). */
void cdc_err_print(const cdc_err_t *err);
/** @brief Name of an exit code ("ok", "usage", ...). */
const char *cdc_exit2str(int code);

#endif
