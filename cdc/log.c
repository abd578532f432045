/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c - leveled logging to stderr, as text or JSON lines.
 * Every message passes through cdc_conf_redact() so credentials embedded
 * in DSNs or conninfo strings never reach the log.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "cdc/buf.h"
#include "cdc/conf.h"
#include "cdc/envelope.h"
#include "cdc/log.h"

static int log_level = CDC_LOG_INFO;
static int log_json;

void cdc_log_set_level(int lvl)
{
    log_level = lvl;
}

int cdc_log_get_level(void)
{
    return log_level;
}

int cdc_log_set_format(const char *fmt)
{
    if (!strcmp(fmt, "text"))
        log_json = 0;
    else if (!strcmp(fmt, "json"))
        log_json = 1;
    else
        return -1;
    return 0;
}

static const char *lvl_name(int lvl)
{
    switch (lvl) {
    case CDC_LOG_ERROR: return "error";
    case CDC_LOG_WARN: return "warn";
    case CDC_LOG_INFO: return "info";
    default: return "debug";
    }
}

static void emit(int lvl, const char *fac, const char *msg,
                 const char *detail, const char *hint)
{
    struct timeval tv;
    cdc_buf_t b = CDC_BUF_INIT;
    char *red;

    gettimeofday(&tv, NULL);
    if (log_json) {
        cdc_buf_puts(&b, "{\"ts\":\"");
        cdc_json_iso_ms(&b, (int64_t)tv.tv_sec * 1000000 + tv.tv_usec);
        cdc_buf_printf(&b, "\",\"level\":\"%s\"", lvl_name(lvl));
        /* every line has a facility; the final error of a command has
         * none of its own */
        if (!fac)
            fac = "main";
        cdc_buf_puts(&b, ",\"fac\":");
        cdc_json_string(&b, fac, strlen(fac));
        red = cdc_conf_redact(msg);
        cdc_buf_puts(&b, ",\"msg\":");
        cdc_json_string(&b, red, strlen(red));
        free(red);
        if (detail && *detail) {
            red = cdc_conf_redact(detail);
            cdc_buf_puts(&b, ",\"detail\":");
            cdc_json_string(&b, red, strlen(red));
            free(red);
        }
        if (hint && *hint) {
            red = cdc_conf_redact(hint);
            cdc_buf_puts(&b, ",\"hint\":");
            cdc_json_string(&b, red, strlen(red));
            free(red);
        }
        cdc_buf_puts(&b, "}\n");
    } else {
        cdc_json_iso_ms(&b, (int64_t)tv.tv_sec * 1000000 + tv.tv_usec);
        cdc_buf_printf(&b, " %s %s%s", lvl_name(lvl), fac ? fac : "",
                       fac ? ": " : "");
        red = cdc_conf_redact(msg);
        cdc_buf_puts(&b, red);
        free(red);
        cdc_buf_putc(&b, '\n');
        if (detail && *detail) {
            red = cdc_conf_redact(detail);
            cdc_buf_printf(&b, "  detail: %s\n", red);
            free(red);
        }
        if (hint && *hint) {
            red = cdc_conf_redact(hint);
            cdc_buf_printf(&b, "  hint: %s\n", red);
            free(red);
        }
    }
    fwrite(b.p, 1, b.len, stderr);
    fflush(stderr);
    cdc_buf_free(&b);
}

void cdc_log(int lvl, const char *fac, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    if (lvl > log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    emit(lvl, fac, msg, NULL, NULL);
}

void cdc_log_err(const char *fac, const cdc_err_t *err)
{
    emit(CDC_LOG_ERROR, fac, err->msg[0] ? err->msg : "unknown error",
         err->detail, err->hint);
}
