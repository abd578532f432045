/* SPDX-License-Identifier: Apache-2.0 */
/*
 * err.c - error objects and the exit-code table.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cdc/err.h"
#include "cdc/log.h"

int cdc_err_set(cdc_err_t *err, int code, int flags, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return -1;
    err->code = code;
    err->flags = flags;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->detail[0] = '\0';
    err->hint[0] = '\0';
    return -1;
}

void cdc_err_detail(cdc_err_t *err, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
    va_end(ap);
}

void cdc_err_hint(cdc_err_t *err, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
    va_end(ap);
}

void cdc_err_clear(cdc_err_t *err)
{
    memset(err, 0, sizeof(*err));
}

void cdc_err_print(const cdc_err_t *err)
{
    cdc_log_err(NULL, err);
}

static const struct {
    int code;
    const char *name;
} exit_names[] = {
    {CDC_EXIT_OK, "ok"},
    {CDC_EXIT_FAIL, "failure"},
    {CDC_EXIT_USAGE, "usage"},
    {CDC_EXIT_NORESUME, "cannot resume without data loss"},
    {CDC_EXIT_DATA, "bad input data"},
    {CDC_EXIT_UNAVAILABLE, "unavailable"},
    {CDC_EXIT_TEMPFAIL, "temporary failure"},
    {CDC_EXIT_CONFIG, "configuration error"},
};

const char *cdc_exit2str(int code)
{
    for (size_t i = 0; i < sizeof(exit_names) / sizeof(exit_names[0]); i++)
        if (exit_names[i].code == code)
            return exit_names[i].name;
    return "unknown";
}
