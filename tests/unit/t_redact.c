/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_redact.c - no DSN form lets its password through: one table of forms
 * (mysql:// and postgresql:// URIs, libpq conninfo with every quoting rule,
 * sslpassword, SASL-style pairs), each pushed through every surface that
 * prints text: text and JSON logs, error details, /status, /metrics,
 * `config` (cdc_conf_dump), the status command's error line (cdc_redact).
 * Conninfo forms are also read back with libpq's own PQconninfoParse: the
 * redacted string must parse to the same options with only the secret
 * ones replaced by the mask.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cdc/conf.h"
#include "cdc/log.h"
#include "cdc/metrics.h"
#include "cdc/redact.h"
#include "tests/unit/cdc_test.h"

struct form {
    const char *dsn;
    const char *secret;  /* must not appear (nor any part given in part) */
    const char *part;    /* a piece of the secret that must not survive */
    const char *keep;    /* must still appear: the text stays useful */
    int conninfo;        /* 1: libpq must parse it */
};

static const struct form forms[] = {
    {"mysql://cdc:a@SECRET-1@db.example:3306/shop", "a@SECRET-1", "SECRET-1",
     "db.example:3306/shop", 0},
    {"mariadb://cdc:p%40ss%3Aw0rd-2@h:3306", "p%40ss%3Aw0rd-2", "w0rd-2",
     "h:3306", 0},
    {"mysql://cdc:sl/ash@pw-3@h:3306/db", "sl/ash@pw-3", "pw-3", "h:3306/db",
     0},
    {"postgresql://cdc:pg-pw-4@h:5432/app?sslmode=require", "pg-pw-4", NULL,
     "sslmode=require", 1},
    {"postgresql://cdc@h/app?password=qp-pw-5&sslmode=disable", "qp-pw-5",
     NULL, "sslmode=disable", 1},
    {"host=h user=cdc password = sp-pw-6 dbname=app", "sp-pw-6", NULL,
     "dbname=app", 1},
    {"host=h password=a\\ Xesc-pw-7 user=cdc", "Xesc-pw-7", "esc-pw-7",
     "user=cdc", 1},
    {"host=h password='a\\' Xq-pw-8' user=cdc", "Xq-pw-8", "q-pw-8",
     "user=cdc", 1},
    {"host=h sslpassword=ssl-pw-9 sslkey=/k.pem user=cdc", "ssl-pw-9", NULL,
     "sslkey=/k.pem", 1},
    {"host=h password='with space-10' dbname=app", "space-10", NULL,
     "dbname=app", 1},
    {"host=h\tpassword\t=\t'tab-pw-11'\tdbname=app", "tab-pw-11", NULL,
     "dbname=app", 1},
    {"dbname=app password=end-pw-12", "end-pw-12", NULL, "dbname=app", 1},
    {"host=h password='unterminated-13", "unterminated-13", NULL, "host=h",
     0},
    {"sasl.password=s4sl-14 client_secret=cs-15 sasl.username=u",
     "s4sl-14", "cs-15", "sasl.username=u", 0},
    {"{\"password\": \"json-pw-16\", \"user\": \"u\"}", "json-pw-16", NULL,
     "\"user\": \"u\"", 0},
    {"--kafka-sasl-password=cli-pw-17 --user u", "cli-pw-17", NULL,
     "--user u", 0},
};
#define NFORMS (sizeof(forms) / sizeof(forms[0]))

static void check_clean(const char *where, const struct form *f,
                        const char *out)
{
    if (strstr(out, f->secret) || (f->part && strstr(out, f->part))) {
        T_FAIL_("%s: the secret of '%s' shows: %s", where, f->dsn, out);
    }
}

/* Run fn with stderr captured; returns what it wrote (malloc'd). */
static char *capture_stderr(void (*fn)(const struct form *),
                            const struct form *f)
{
    FILE *tmp = tmpfile();
    int saved = dup(2);
    long n;
    char *out;

    fflush(stderr);
    dup2(fileno(tmp), 2);
    fn(f);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    n = ftell(tmp);
    out = calloc(1, (size_t)n + 1);
    rewind(tmp);
    if (fread(out, 1, (size_t)n, tmp) != (size_t)n)
        out[0] = '\0';
    fclose(tmp);
    return out;
}

static void log_plain(const struct form *f)
{
    CDC_ERROR("test", "cannot connect to %s: refused", f->dsn);
}

static void log_err_detail(const struct form *f)
{
    cdc_err_t err = {0};
    cdc_err_set(&err, CDC_EXIT_UNAVAILABLE, 0, "postgres: cannot connect");
    cdc_err_detail(&err, "dsn: %s", f->dsn);
    cdc_err_hint(&err, "check %s", f->dsn);
    cdc_err_print(&err);
}

CDC_TEST(every_form_every_surface)
{
    cdc_redact_forget();
    for (size_t i = 0; i < NFORMS; i++) {
        const struct form *f = &forms[i];
        char *out;

        /* the redactor itself, as the status command uses it */
        out = cdc_redact(f->dsn);
        check_clean("cdc_redact", f, out);
        if (!strstr(out, f->keep))
            T_FAIL_("'%s' lost '%s': %s", f->dsn, f->keep, out);
        if (!strstr(out, CDC_REDACT_MASK))
            T_FAIL_("'%s' has no mask: %s", f->dsn, out);
        free(out);

        for (int json = 0; json < 2; json++) {
            cdc_log_set_format(json ? "json" : "text");
            out = capture_stderr(log_plain, f);
            check_clean(json ? "json log" : "text log", f, out);
            T_ASSERT(strstr(out, "cannot connect to"));
            free(out);
            out = capture_stderr(log_err_detail, f);
            check_clean(json ? "json error detail" : "error detail", f, out);
            T_ASSERT(strstr(out, "detail"));
            free(out);
        }
        cdc_log_set_format("text");
    }
}

CDC_TEST(status_metrics_config)
{
    cdc_redact_forget();
    for (size_t i = 0; i < NFORMS; i++) {
        const struct form *f = &forms[i];
        cdc_conf_t *c = cdc_conf_new();
        cdc_err_t err = {0};
        cdc_buf_t b = CDC_BUF_INIT;
        char why[600];
        char *out;
        size_t n;
        FILE *tmp;

        cdc_conf_set(c, "pipeline.name", "p", NULL);
        cdc_conf_set(c, "source.type", "postgres", NULL);
        cdc_conf_set(c, "sink.type", "stdout", NULL);
        T_EQ_INT(cdc_metrics_init(c, &err), 0);
        snprintf(why, sizeof(why), "cannot connect to %s", f->dsn);
        cdc_metrics_source_state(0, why);
        cdc_metrics_sink_state(0, why);
        cdc_metrics_render_status(&b, cdc_metrics_now_us());
        check_clean("/status", f, b.p);
        T_ASSERT(strstr(b.p, "cannot connect to"));
        cdc_buf_reset(&b);
        cdc_metrics_render_prom(&b, cdc_metrics_now_us());
        check_clean("/metrics", f, b.p);
        cdc_buf_free(&b);

        /* `config`: as the DSN key and inside an ordinary value */
        cdc_redact_forget();
        cdc_conf_set(c, "postgres.dsn", f->dsn, "test");
        cdc_conf_set(c, "pipeline.description", why, "test");
        tmp = tmpfile();
        cdc_conf_dump(c, tmp);
        n = (size_t)ftell(tmp);
        out = calloc(1, n + 1);
        rewind(tmp);
        T_EQ_INT(fread(out, 1, n, tmp), n);
        fclose(tmp);
        check_clean("config", f, out);
        T_ASSERT(strstr(out, "pipeline.description = cannot connect to"));
        free(out);
        cdc_conf_destroy(c);
    }
    cdc_redact_forget();
}

/* A configured DSN's password is masked wherever it shows later, even
 * bare (a server that echoes it, a message built without the DSN). */
CDC_TEST(learned_from_configuration)
{
    cdc_conf_t *c = cdc_conf_new();
    char *out;

    cdc_redact_forget();
    cdc_conf_set(c, "mysql.dsn", "mysql://cdc:p%40ss-L1@h:3306", NULL);
    cdc_conf_set(c, "postgres.dsn", "host=h password='q\\'L2 x' user=u",
                 NULL);
    cdc_conf_set(c, "kafka.sasl.password", "sasl-L3", NULL);
    cdc_conf_set(c, "http.token", "tok-L4", NULL);
    cdc_conf_set(c, "mysql.user", "cdc", NULL);
    out = cdc_redact("echo p@ss-L1 / p%40ss-L1 / q'L2 x / sasl-L3 / tok-L4 "
                     "user cdc");
    T_ASSERT(!strstr(out, "L1") && !strstr(out, "L2") &&
             !strstr(out, "L3") && !strstr(out, "L4"));
    T_ASSERT(strstr(out, "user cdc"));
    free(out);
    /* a *_file key holds a path, not the secret */
    cdc_conf_set(c, "mysql.password_file", "/run/credentials/pw", NULL);
    out = cdc_redact("cannot read /run/credentials/pw");
    T_EQ_STR(out, "cannot read /run/credentials/pw");
    free(out);
    /* short values are not learned (they would mask ordinary words) */
    cdc_conf_set(c, "mysql.password", "abc", NULL);
    out = cdc_redact("abc");
    T_EQ_STR(out, "abc");
    free(out);
    cdc_conf_destroy(c);
    cdc_redact_forget();
}

/* libpq reads the redacted conninfo as the same options, secrets masked. */
CDC_TEST(conninfo_reparses_with_libpq)
{
    cdc_redact_forget();
    for (size_t i = 0; i < NFORMS; i++) {
        const struct form *f = &forms[i];
        PQconninfoOption *a, *b;
        char *e1 = NULL, *e2 = NULL, *out;

        if (!f->conninfo)
            continue;
        out = cdc_redact(f->dsn);
        a = PQconninfoParse(f->dsn, &e1);
        b = PQconninfoParse(out, &e2);
        if (!a || !b) {
            T_FAIL_("libpq cannot parse '%s' -> '%s': %s", f->dsn, out,
                    e2 ? e2 : e1 ? e1 : "?");
        } else {
            int masked = 0;
            for (int k = 0; a[k].keyword; k++) {
                const char *va = a[k].val, *vb = b[k].val;
                int secret = cdc_redact_is_secret_word(
                    a[k].keyword, strlen(a[k].keyword));
                if (secret && va) {
                    masked++;
                    if (!vb || strcmp(vb, CDC_REDACT_MASK))
                        T_FAIL_("%s: %s = '%s' after redaction", f->dsn,
                                a[k].keyword, vb ? vb : "(null)");
                } else if ((va == NULL) != (vb == NULL) ||
                           (va && strcmp(va, vb)))
                    T_FAIL_("%s: %s changed: '%s' -> '%s'", f->dsn,
                            a[k].keyword, va ? va : "(null)",
                            vb ? vb : "(null)");
            }
            T_ASSERT(masked == 1);
        }
        PQconninfoFree(a);
        PQconninfoFree(b);
        PQfreemem(e1);
        PQfreemem(e2);
        free(out);
    }
}

CDC_TEST_MAIN()
