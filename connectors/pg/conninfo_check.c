/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conninfo_check.c - the libpq side of the declared keys (cdc/conf.h):
 * a conninfo-typed key is checked by libpq's own parser, so every libpq
 * keyword (and only those) is accepted, with libpq's message otherwise.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "cdc/conf.h"

int cdc_pg_conninfo_check(const char *conninfo, char *msg, size_t msglen)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
    size_t n;

    if (opts) {
        PQconninfoFree(opts);
        return 0;
    }
    snprintf(msg, msglen, "%s", errmsg ? errmsg : "out of memory");
    /* 'missing "=" after "WORD"' quotes text that may be part of a
     * password: keep libpq's words, not the quoted input */
    {
        char *after = strstr(msg, " after \"");
        if (after)
            snprintf(after, msglen - (size_t)(after - msg),
                     " after a word (text not shown; quote values that "
                     "contain spaces: key='a b')");
    }
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    PQfreemem(errmsg);
    return -1;
}
