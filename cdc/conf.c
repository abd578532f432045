/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conf.c - flat dotted-key configuration, YAML loading, ${VAR} expansion,
 * secret detection and redaction.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "cdc/buf.h"
#include "cdc/conf.h"
#include "cdc/redact.h"

cdc_conf_t *cdc_conf_new(void)
{
    return cdc_xcalloc(1, sizeof(cdc_conf_t));
}

void cdc_conf_destroy(cdc_conf_t *conf)
{
    if (!conf)
        return;
    for (int i = 0; i < conf->n; i++) {
        free(conf->ents[i].key);
        free(conf->ents[i].val);
        free(conf->ents[i].where);
        free(conf->ents[i].unresolved);
    }
    free(conf->ents);
    free(conf);
}

static cdc_conf_ent_t *find(const cdc_conf_t *conf, const char *key)
{
    for (int i = 0; i < conf->n; i++)
        if (!strcmp(conf->ents[i].key, key))
            return &conf->ents[i];
    return NULL;
}

void cdc_conf_set(cdc_conf_t *conf, const char *key, const char *val,
                  const char *where)
{
    cdc_conf_ent_t *e = find(conf, key);

    if (!e) {
        if (conf->n == conf->cap) {
            conf->cap = conf->cap ? conf->cap * 2 : 32;
            conf->ents = cdc_xrealloc(conf->ents,
                                      conf->cap * sizeof(*conf->ents));
        }
        e = &conf->ents[conf->n++];
        e->key = cdc_xstrdup(key);
        e->val = NULL;
        e->where = NULL;
        e->unresolved = NULL;
    }
    free(e->val);
    free(e->where);
    free(e->unresolved);
    e->unresolved = NULL;
    e->val = cdc_xstrdup(val ? val : "");
    e->where = where ? cdc_xstrdup(where) : NULL;
    cdc_redact_learn(key, e->val);
}

const char *cdc_conf_get(const cdc_conf_t *conf, const char *key,
                         const char *def)
{
    cdc_conf_ent_t *e = conf ? find(conf, key) : NULL;
    return e ? e->val : def;
}

const char *cdc_conf_where(const cdc_conf_t *conf, const char *key)
{
    cdc_conf_ent_t *e = find(conf, key);
    return e ? e->where : NULL;
}

int cdc_conf_get_int(const cdc_conf_t *conf, const char *key, int64_t def,
                     int64_t *out, cdc_err_t *err)
{
    const char *v = cdc_conf_get(conf, key, NULL);
    char *end;
    long long n;

    if (!v || !*v) {
        *out = def;
        return 0;
    }
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno || *end) {
        const char *w = cdc_conf_where(conf, key);
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s%s%s: '%s' is not an integer",
                    w ? w : "", w ? ": " : "", key, v);
        cdc_err_hint(err, "set %s to a whole number", key);
        return -1;
    }
    *out = n;
    return 0;
}

int cdc_conf_get_bool(const cdc_conf_t *conf, const char *key, int def,
                      int *out, cdc_err_t *err)
{
    const char *v = cdc_conf_get(conf, key, NULL);

    if (!v || !*v)
        *out = def;
    else if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
             !strcasecmp(v, "on") || !strcmp(v, "1"))
        *out = 1;
    else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") ||
             !strcasecmp(v, "off") || !strcmp(v, "0"))
        *out = 0;
    else {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: '%s' is not a boolean",
                    key, v);
        cdc_err_hint(err, "use true or false");
        return -1;
    }
    return 0;
}

/* A duration: one or more <integer><unit> (s, m, h, d, w), e.g. "30d",
 * "12h", "1d12h"; "0" alone is zero.  µs in *us; -1 if it does not parse
 * or exceeds 100 years. */
static int parse_duration(const char *s, int64_t *us)
{
    const int64_t max = (int64_t)100 * 366 * 86400 * 1000000;
    int64_t total = 0;

    if (!strcmp(s, "0")) {
        *us = 0;
        return 0;
    }
    if (!*s)
        return -1;
    while (*s) {
        int64_t n = 0, unit;
        if (*s < '0' || *s > '9')
            return -1;
        for (; *s >= '0' && *s <= '9'; s++) {
            n = n * 10 + (*s - '0');
            if (n > max)
                return -1;
        }
        switch (*s++) {
        case 's': unit = 1000000; break;
        case 'm': unit = (int64_t)60 * 1000000; break;
        case 'h': unit = (int64_t)3600 * 1000000; break;
        case 'd': unit = (int64_t)86400 * 1000000; break;
        case 'w': unit = (int64_t)7 * 86400 * 1000000; break;
        default: return -1;
        }
        if (n > (max - total) / unit)
            return -1;
        total += n * unit;
    }
    *us = total;
    return 0;
}

int cdc_conf_get_duration(const cdc_conf_t *conf, const char *key,
                          const char *def, int positive,
                          const char *zero_hint, int64_t *us, cdc_err_t *err)
{
    const char *v = cdc_conf_get(conf, key, def);

    if (parse_duration(v, us) || (positive && *us < 1000000)) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: \"%s\" is not a duration%s",
                    key, v, positive ? " of at least 1s" : "");
        cdc_err_hint(err, "a number with a unit s, m, h, d or w, e.g. 30d or "
                     "12h (parts add up: 1d12h)%s%s", zero_hint ? "; " : "",
                     zero_hint ? zero_hint : "");
        return -1;
    }
    return 0;
}

/* ---- ${VAR} expansion ------------------------------------------------ */

char *cdc_conf_expand(const char *s, cdc_err_t *err)
{
    cdc_buf_t b = CDC_BUF_INIT;

    cdc_buf_puts(&b, "");
    while (*s) {
        if (s[0] == '$' && s[1] == '{' && s[2] == '{') {
            /* ${{...}} -> literal ${...} */
            const char *end = strstr(s + 3, "}}");
            if (!end)
                goto bad;
            cdc_buf_puts(&b, "${");
            cdc_buf_put(&b, s + 3, (size_t)(end - (s + 3)));
            cdc_buf_putc(&b, '}');
            s = end + 2;
        } else if (s[0] == '$' && s[1] == '{') {
            const char *end = strchr(s + 2, '}');
            const char *colon, *val;
            char name[256];
            size_t nlen;

            if (!end)
                goto bad;
            colon = memchr(s + 2, ':', (size_t)(end - (s + 2)));
            nlen = (size_t)((colon ? colon : end) - (s + 2));
            if (nlen == 0 || nlen >= sizeof(name))
                goto bad;
            memcpy(name, s + 2, nlen);
            name[nlen] = '\0';
            val = getenv(name);
            if (val && *val)
                cdc_buf_puts(&b, val);
            else if (colon)
                cdc_buf_put(&b, colon + 1, (size_t)(end - colon - 1));
            else {
                cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                            "environment variable %s is not set", name);
                cdc_err_hint(err, "export %s=... or write ${%s:default}",
                             name, name);
                cdc_buf_free(&b);
                return NULL;
            }
            s = end + 1;
        } else {
            cdc_buf_putc(&b, *s++);
        }
    }
    return b.p;
bad:
    cdc_err_set(err, CDC_EXIT_CONFIG, 0, "unterminated ${...} in '%s'", s);
    cdc_err_hint(err, "write ${VAR} or ${VAR:default}; ${{...}} for a "
                      "literal ${...}");
    cdc_buf_free(&b);
    return NULL;
}

/* ---- YAML ------------------------------------------------------------ */

/* Walker over libyaml events.  Keys are checked against the declared
 * table (cdc/conf_keys.c) as they are read, so an error points at the key:
 * unknown keys, duplicates, a mapping where a value belongs.  Nesting is
 * bounded, as in the mapping loader. */
#define MAX_NEST 64

typedef struct ywalk {
    yaml_parser_t parser;
    cdc_conf_t *conf;
    const char *name;
    cdc_err_t *err;
} ywalk_t;

static int ywalk_error(ywalk_t *w, const yaml_mark_t *m, const char *what)
{
    cdc_err_set(w->err, CDC_EXIT_CONFIG, 0, "%s:%zu:%zu: %s", w->name,
                m->line + 1, m->column + 1, what);
    cdc_err_hint(w->err, "fix the YAML syntax at that position");
    return -1;
}

static int ynext(ywalk_t *w, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&w->parser, ev)) {
        char what[600];
        snprintf(what, sizeof(what), "%s%s%s",
                 w->parser.problem ? w->parser.problem : "invalid YAML",
                 w->parser.context ? " " : "",
                 w->parser.context ? w->parser.context : "");
        return ywalk_error(w, &w->parser.problem_mark, what);
    }
    return 0;
}

static void mark_str(char *buf, size_t n, const char *name,
                     const yaml_mark_t *m)
{
    snprintf(buf, n, "%s:%zu:%zu", name, m->line + 1, m->column + 1);
}

/* A key that the table does not know, at the key's position. */
static int yunknown(ywalk_t *w, const char *path, const yaml_mark_t *km)
{
    char where[600];

    mark_str(where, sizeof(where), w->name, km);
    return cdc_conf_key_unknown(path, where, w->err);
}

/* Set path from a scalar; an unset ${VAR} is kept as a deferred error so
 * that a command that does not read the key runs without it. */
static int yset(ywalk_t *w, const char *path, const char *raw,
                const char *where)
{
    cdc_err_t e = {0};
    const char *prev = cdc_conf_where(w->conf, path);
    size_t nl = strlen(w->name);
    char *val;

    /* "mysql.dsn:" and "mysql: {dsn:}" in one file: the same key twice */
    if (prev && !strncmp(prev, w->name, nl) && prev[nl] == ':') {
        cdc_err_set(w->err, CDC_EXIT_CONFIG, 0, "%s: duplicate key '%s' "
                    "(first at %s)", where, path, prev + nl + 1);
        cdc_err_hint(w->err, "keep one of them: a later key would silently "
                     "replace the earlier one");
        return -1;
    }
    val = cdc_conf_expand(raw, &e);
    cdc_conf_set(w->conf, path, val ? val : raw, where);
    if (!val) {
        cdc_buf_t m = CDC_BUF_INIT;
        cdc_buf_printf(&m, "%s: %s: %s", where, path, e.msg);
        for (int i = 0; i < w->conf->n; i++)
            if (!strcmp(w->conf->ents[i].key, path)) {
                free(w->conf->ents[i].unresolved);
                w->conf->ents[i].unresolved = m.p;
            }
    }
    free(val);
    return 0;
}

/* A list key from a sequence of scalars: the items joined with commas. */
static int ylist(ywalk_t *w, const char *path, const yaml_mark_t *vm)
{
    cdc_buf_t b = CDC_BUF_INIT;
    yaml_event_t ev;
    char where[600];
    int rc = 0;

    mark_str(where, sizeof(where), w->name, vm);
    cdc_buf_puts(&b, "");
    for (int i = 0;; i++) {
        if (ynext(w, &ev)) {
            rc = -1;
            break;
        }
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            char what[600];
            snprintf(what, sizeof(what), "%s: list items must be plain "
                     "values", path);
            rc = ywalk_error(w, &ev.start_mark, what);
            yaml_event_delete(&ev);
            break;
        }
        if (i)
            cdc_buf_putc(&b, ',');
        cdc_buf_puts(&b, (const char *)ev.data.scalar.value);
        yaml_event_delete(&ev);
    }
    if (!rc)
        rc = yset(w, path, b.p, where);
    cdc_buf_free(&b);
    return rc;
}

static int ymapping(ywalk_t *w, const char *path, int depth);

/* The value of key path (key at km); consumes ev. */
static int yvalue(ywalk_t *w, yaml_event_t *ev, const char *path,
                  const yaml_mark_t *km, int depth)
{
    const cdc_conf_key_t *k = cdc_conf_key_find(path, NULL);
    int open = k && k->type == CDC_KT_NAMESPACE;
    int section = !k && cdc_conf_key_is_section(path);
    char what[1400];
    int rc = 0;

    if (!k && !section && ev->type != YAML_ALIAS_EVENT) {
        yaml_event_delete(ev);
        return yunknown(w, path, km);
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        if (section) {
            snprintf(what, sizeof(what), "%s is a section, not a value: "
                     "write %s: {key: value}", path, path);
            rc = ywalk_error(w, &ev->start_mark, what);
            cdc_err_hint(w->err, "autoglm-cdc config --reference lists the "
                         "keys of %s", path);
        } else {
            char where[600];
            mark_str(where, sizeof(where), w->name, &ev->start_mark);
            rc = yset(w, path, (const char *)ev->data.scalar.value, where);
        }
        break;
    case YAML_MAPPING_START_EVENT:
        if (k && !open) {
            snprintf(what, sizeof(what), "%s takes a value, not a mapping",
                     path);
            rc = ywalk_error(w, &ev->start_mark, what);
            cdc_err_hint(w->err, "%s is a %s; see autoglm-cdc config "
                         "--reference", path, k->type == CDC_KT_LIST
                         ? "list" : "single value");
        } else if (depth >= MAX_NEST) {
            snprintf(what, sizeof(what), "nested too deeply (more than %d "
                     "levels)", MAX_NEST);
            rc = ywalk_error(w, &ev->start_mark, what);
        } else
            rc = ymapping(w, path, depth + 1);
        break;
    case YAML_SEQUENCE_START_EVENT:
        if (section || (k->type != CDC_KT_LIST && !open)) {
            snprintf(what, sizeof(what), "%s takes a single value, not a "
                     "list", path);
            rc = ywalk_error(w, &ev->start_mark, what);
        } else
            rc = ylist(w, path, &ev->start_mark);
        break;
    case YAML_ALIAS_EVENT:
        rc = ywalk_error(w, &ev->start_mark, "YAML aliases are not supported");
        break;
    default:
        rc = ywalk_error(w, &ev->start_mark, "unexpected YAML event");
    }
    yaml_event_delete(ev);
    return rc;
}

typedef struct yseen {
    char *key;
    yaml_mark_t mark;
} yseen_t;

static int ymapping(ywalk_t *w, const char *path, int depth)
{
    yseen_t *seen = NULL;
    int nseen = 0, rc = 0;
    yaml_event_t ev;

    for (;;) {
        char key[512];
        yaml_mark_t km;
        if (ynext(w, &ev)) {
            rc = -1;
            break;
        }
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        km = ev.start_mark;
        if (ev.type != YAML_SCALAR_EVENT) {
            yaml_event_delete(&ev);
            rc = ywalk_error(w, &km, "mapping keys must be plain scalars");
            break;
        }
        snprintf(key, sizeof(key), "%s%s%s", path, *path ? "." : "",
                 (const char *)ev.data.scalar.value);
        for (int i = 0; i < nseen; i++)
            if (!strcmp(seen[i].key, (const char *)ev.data.scalar.value)) {
                char what[700];
                snprintf(what, sizeof(what), "duplicate key '%s' (first at "
                         "line %zu, column %zu)", key, seen[i].mark.line + 1,
                         seen[i].mark.column + 1);
                rc = ywalk_error(w, &km, what);
                cdc_err_hint(w->err, "keep one of them: a later key would "
                             "silently replace the earlier one");
                break;
            }
        if (!rc) {
            seen = cdc_xrealloc(seen, (size_t)(nseen + 1) * sizeof(*seen));
            seen[nseen].key = cdc_xstrdup((const char *)ev.data.scalar.value);
            seen[nseen++].mark = km;
        }
        yaml_event_delete(&ev);
        if (rc || ynext(w, &ev)) {
            rc = -1;
            break;
        }
        if (yvalue(w, &ev, key, &km, depth)) {
            rc = -1;
            break;
        }
    }
    for (int i = 0; i < nseen; i++)
        free(seen[i].key);
    free(seen);
    return rc;
}

int cdc_conf_load_yaml_str(cdc_conf_t *conf, const char *name,
                           const char *text, size_t len, cdc_err_t *err)
{
    ywalk_t w = {.conf = conf, .name = name, .err = err};
    yaml_event_t ev;
    int rc = -1, docs = 0;

    yaml_parser_initialize(&w.parser);
    yaml_parser_set_input_string(&w.parser, (const unsigned char *)text, len);
    for (;;) {
        if (ynext(&w, &ev))
            goto out;
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            yaml_mark_t m = ev.start_mark;
            yaml_event_delete(&ev);
            ywalk_error(&w, &m, "a second YAML document; the pipeline "
                        "file holds one");
            goto out;
        }
        if (ev.type == YAML_MAPPING_START_EVENT) {
            yaml_event_delete(&ev);
            if (ymapping(&w, "", 1))
                goto out;
        } else if (ev.type == YAML_SCALAR_EVENT &&
                   ev.data.scalar.length == 0) {
            yaml_event_delete(&ev); /* empty document */
        } else if (ev.type == YAML_SCALAR_EVENT ||
                   ev.type == YAML_SEQUENCE_START_EVENT) {
            yaml_mark_t m = ev.start_mark;
            yaml_event_delete(&ev);
            ywalk_error(&w, &m, "the top level must be a mapping (key: value)");
            goto out;
        } else {
            yaml_event_delete(&ev);
        }
    }
    rc = 0;
out:
    yaml_parser_delete(&w.parser);
    return rc;
}

int cdc_conf_load_yaml(cdc_conf_t *conf, const char *path, cdc_err_t *err)
{
    FILE *fp = fopen(path, "rb");
    cdc_buf_t b = CDC_BUF_INIT;
    char chunk[8192];
    size_t n;
    int rc;

    if (!fp) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "cannot open config file %s: %s",
                    path, strerror(errno));
        cdc_err_hint(err, "check the path given with -c");
        return -1;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        cdc_buf_put(&b, chunk, n);
    fclose(fp);
    rc = cdc_conf_load_yaml_str(conf, path, b.p ? b.p : "", b.len, err);
    cdc_buf_free(&b);
    return rc;
}

/* "mysql.server_id" and "MYSQL_SERVER_ID": equal when dots and
 * underscores are both read as underscores, case aside. */
static int env_match(const char *key, const char *name, size_t n)
{
    size_t i;

    for (i = 0; i < n && key[i]; i++) {
        char a = key[i] == '.' ? '_' : key[i];
        if (a != tolower((unsigned char)name[i]))
            return 0;
    }
    return i == n && !key[i];
}

/* The declared key that AUTOGLM_CDC_<name> sets; NULL if none. */
static const char *env_declared(const char *name, size_t n)
{
    for (const cdc_conf_key_t *k = cdc_conf_keys; k->name; k++)
        if (k->type != CDC_KT_NAMESPACE && env_match(k->name, name, n))
            return k->name;
    return NULL;
}

void cdc_conf_load_env(cdc_conf_t *conf)
{
    extern char **environ;
    static const char pfx[] = "AUTOGLM_CDC_";

    for (char **e = environ; e && *e; e++) {
        const char *eq, *name, *decl;
        char key[256], where[300];
        size_t n, j = 0;

        if (strncmp(*e, pfx, sizeof(pfx) - 1))
            continue;
        eq = strchr(*e, '=');
        if (!eq)
            continue;
        name = *e + sizeof(pfx) - 1;
        n = (size_t)(eq - name);
        if (n == 0 || n >= sizeof(key))
            continue;
        snprintf(where, sizeof(where), "env %.*s", (int)(eq - *e), *e);
        /* AUTOGLM_CDC_MYSQL__SERVER_ID: a double underscore keeps an
         * underscore, a single one is a dot (the rule for kafka.*). */
        for (size_t i = 0; i < n; i++) {
            if (name[i] == '_' && i + 1 < n && name[i + 1] == '_') {
                key[j++] = '_';
                i++;
            } else
                key[j++] = name[i] == '_' ? '.'
                                          : (char)tolower((unsigned char)name[i]);
        }
        key[j] = '\0';
        if (!cdc_conf_key_find(key, NULL) ||
            cdc_conf_key_find(key, NULL)->type == CDC_KT_NAMESPACE) {
            /* the table decides where the underscores are */
            if ((decl = env_declared(name, n)))
                snprintf(key, sizeof(key), "%s", decl);
            else if (n > 5 && !strncasecmp(name + n - 5, "_FILE", 5) &&
                     (decl = env_declared(name, n - 5)))
                snprintf(key, sizeof(key), "%s_file", decl);
            else if (j > 5 && !strcmp(key + j - 5, ".file")) {
                /* AUTOGLM_CDC_KAFKA_SASL_PASSWORD_FILE */
                key[j - 5] = '\0';
                if (cdc_conf_is_secret(key))
                    strcat(key, "_file");
                else
                    key[j - 5] = '.';
            }
        }
        cdc_conf_set(conf, key, eq + 1, where);
    }
}

/* ---- secrets --------------------------------------------------------- */

int cdc_conf_is_secret(const char *key)
{
    static const char *words[] = {"password", "secret", "token", "dsn",
                                  "sasl", "key.pem", "ssl.key.password",
                                  "oauthbearer.config", NULL};
    const char *last = strrchr(key, '.');
    last = last ? last + 1 : key;
    for (int i = 0; words[i]; i++)
        if (strcasestr(last, words[i]) || (strchr(words[i], '.') &&
                                           strcasestr(key, words[i])))
            return 1;
    return 0;
}

char *cdc_conf_redact(const char *s)
{
    return cdc_redact(s);
}

void cdc_conf_dump(const cdc_conf_t *conf, void *fpv)
{
    FILE *fp = fpv;

    for (int i = 0; i < conf->n; i++) {
        const cdc_conf_ent_t *e = &conf->ents[i];
        char *v = cdc_conf_is_secret(e->key) ? cdc_xstrdup("******")
                                             : cdc_conf_redact(e->val);
        fprintf(fp, "%s = %s%s%s\n", e->key, v, e->where ? "  # " : "",
                e->where ? e->where : "");
        free(v);
    }
}

char *cdc_conf_dup(const cdc_conf_t *conf, const char *key)
{
    const char *v = cdc_conf_get(conf, key, NULL);
    return v && *v ? cdc_xstrdup(v) : NULL;
}
