/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pgutil.c - libpq helpers: conninfo checks for the declared keys
 * (cdc/conf.h: a conninfo-typed key is checked by libpq's own parser, so
 * every libpq keyword and only those is accepted, with libpq's message
 * otherwise), server notices through the logger, and the connect of the
 * source and the snapshot (cdc_pg_connect).
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
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

const char *cdc_pg_errline(PGconn *c)
{
    static __thread char b[400];
    const char *m = c ? PQerrorMessage(c) : "no connection";
    char *nl;

    snprintf(b, sizeof(b), "%s", m);
    if ((nl = strchr(b, '\n')))
        *nl = '\0';
    return b;
}

PGconn *cdc_pg_connect(const char *dsn, const cdc_pg_connopt_t *o,
                       cdc_err_t *err)
{
    const char *kw[8], *val[8];
    char opts[1024];
    PQconninfoOption *ci;
    char *perr = NULL;
    int n = 0, has_root = 0, has_mode = getenv("PGSSLMODE") != NULL;
    const char *user_opts = "";
    PGconn *c;

    ci = PQconninfoParse(dsn, &perr);
    if (!ci) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "postgres.dsn cannot be parsed: %s",
                    perr ? perr : "out of memory");
        PQfreemem(perr);
        return NULL;
    }
    for (PQconninfoOption *p = ci; p->keyword; p++) {
        if (!strcmp(p->keyword, "options") && p->val)
            user_opts = p->val;
        if (!strcmp(p->keyword, "sslrootcert") && p->val && *p->val)
            has_root = 1;
        if (!strcmp(p->keyword, "sslmode") && p->val && *p->val)
            has_mode = 1;
    }
    /* the DSN's own options come last: they win over the session's */
    snprintf(opts, sizeof(opts), "%s %s", o->session ? o->session : "",
             user_opts);
    PQconninfoFree(ci);

    kw[n] = "dbname", val[n++] = dsn;
    /* a CA given without a mode: verify the certificate and the host name
     * (libpq's own default, prefer, would not check either) */
    if (o->verify_with_ca && has_root && !has_mode)
        kw[n] = "sslmode", val[n++] = "verify-full";
    kw[n] = "options", val[n++] = opts;
    kw[n] = "application_name", val[n++] = o->app;
    if (o->replication)
        kw[n] = "replication", val[n++] = "database";
    kw[n] = NULL, val[n] = NULL;
    c = PQconnectdbParams(kw, val, 1);
    cdc_pg_log_notices(c, o->fac);
    if (PQstatus(c) != CONNECTION_OK) {
        char *red = cdc_conf_redact(dsn);
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                    "postgres: cannot connect%s: %s",
                    o->replication ? " for replication" : "",
                    cdc_pg_errline(c));
        cdc_err_detail(err, "dsn: %s", red);
        free(red);
        if (o->hba_hint && o->replication &&
            strstr(PQerrorMessage(c), "pg_hba.conf"))
            cdc_err_hint(err, "allow replication connections in pg_hba.conf "
                              "(host replication or host all) for this role");
        PQfinish(c);
        return NULL;
    }
    return c;
}
