/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h - leveled logging to stderr, text or JSON lines.
 *
 * Text: "2026-11-27T08:00:00.123Z level fac: message".
 * JSON: {"ts":..,"level":..,"fac":..,"msg":..}.  Messages pass through
 * cdc_conf_redact(), so a DSN with a password is never printed.
 */
#ifndef CDC_LOG_H
#define CDC_LOG_H

#include "cdc/err.h"

enum { CDC_LOG_ERROR = 3, CDC_LOG_WARN = 4, CDC_LOG_INFO = 6,
       CDC_LOG_DEBUG = 7 };

void cdc_log_set_level(int lvl);
int cdc_log_get_level(void);
/** @brief "text" or "json"; -1 if unknown. */
int cdc_log_set_format(const char *fmt);
void cdc_log(int lvl, const char *fac, const char *fmt, ...) CDC_PRINTF(3, 4);
/** @brief Log an error object (msg, detail, hint). */
void cdc_log_err(const char *fac, const cdc_err_t *err);

#define CDC_ERROR(fac, ...) cdc_log(CDC_LOG_ERROR, fac, __VA_ARGS__)
#define CDC_WARN(fac, ...) cdc_log(CDC_LOG_WARN, fac, __VA_ARGS__)
#define CDC_INFO(fac, ...) cdc_log(CDC_LOG_INFO, fac, __VA_ARGS__)
#define CDC_DEBUG(fac, ...)                                                \
    do {                                                                   \
        if (cdc_log_get_level() >= CDC_LOG_DEBUG)                          \
            cdc_log(CDC_LOG_DEBUG, fac, __VA_ARGS__);                      \
    } while (0)

#endif
