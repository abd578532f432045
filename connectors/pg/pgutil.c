/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pgutil.c - libpq helpers: conninfo checks for the declared keys
 * (cdc/conf.h: a conninfo-typed key is checked by libpq's own parser, so
 * every libpq keyword and only those is accepted, with libpq's message
 * otherwise), and server notices through the logger.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "cdc/conf.h"
#include "cdc/log.h"
#include "connectors/pg/pgutil.h"

static void notice(void *arg, const PGresult *res)
{
    const char *fac = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *det = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    int lvl = CDC_LOG_INFO;

    if (!sev)
        sev = "NOTICE";
    if (!strcmp(sev, "WARNING"))
        lvl = CDC_LOG_WARN;
    else if (!strcmp(sev, "DEBUG"))
        lvl = CDC_LOG_DEBUG;
    cdc_log(lvl, fac, "server %s: %s%s%s%s", sev, msg ? msg : "",
            det ? " (" : "", det ? det : "", det ? ")" : "");
}

void cdc_pg_log_notices(PGconn *c, const char *fac)
{
    if (c)
        PQsetNoticeReceiver(c, notice, (void *)fac);
}

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
