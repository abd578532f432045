/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map_load.c - compile mapping files (YAML) into the model of sources,
 * targets and mappings (map.h).
 *
 * Loading walks the YAML tree of every file twice: first sources and
 * targets (a mapping may name a target declared in another file), then
 * mappings.  Every unknown key or name is reported with its file, line
 * and column and, when a known name is close, "did you mean".  Time
 * zones are read here, once, so that mapping a change (map_apply.c)
 * needs no I/O and no process state.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cdc/envelope.h"
#include "cdc/util.h"
#include "mappings/map_int.h"

/* ---- did you mean ---------------------------------------------------------- */

int cdc_map_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int row[101];

    if (la > 100 || lb > 100)
        return 100;
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0], cur;
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cost = tolower((unsigned char)a[i - 1]) !=
                       tolower((unsigned char)b[j - 1]);
            cur = row[j];
            int v = prev + cost;
            if (row[j] + 1 < v)
                v = row[j] + 1;
            if (row[j - 1] + 1 < v)
                v = row[j - 1] + 1;
            row[j] = v;
            prev = cur;
        }
    }
    return row[lb] > 100 ? 100 : row[lb];
}

const char *cdc_map_suggest(const char *word, const char *const *cands, int n)
{
    int best = 1000, lim = (int)strlen(word) / 3;
    const char *pick = NULL;

    if (lim < 2)
        lim = 2;
    for (int i = 0; i < n; i++) {
        int d = cdc_map_edit_distance(word, cands[i]);
        if (d < best) {
            best = d;
            pick = cands[i];
        }
    }
    return best <= lim ? pick : NULL;
}

/* ---- loader ------------------------------------------------------------- */

typedef struct loader {
    cdc_map_t *m;
    const char *file; /* current file name */
    cdc_err_t *err;
} loader_t;

static char *mark(const loader_t *L, const ynode_t *n)
{
    char buf[600];
    snprintf(buf, sizeof(buf), "%s:%d:%d", L->file, n ? n->line : 1,
             n ? n->col : 1);
    return cdc_xstrdup(buf);
}

static int lerr(loader_t *L, const ynode_t *n, const char *fmt, ...)
    CDC_PRINTF(3, 4);
static int lerr(loader_t *L, const ynode_t *n, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return cdc_err_set(L->err, CDC_EXIT_CONFIG, 0, "%s:%d:%d: %s", L->file,
                       n ? n->line : 1, n ? n->col : 1, msg);
}

/* Every key of map must be one of allowed; what names the context. */
static int check_keys(loader_t *L, const ynode_t *map, const char *what,
                      const char *const *allowed, int n)
{
    if (map->kind != Y_MAP)
        return lerr(L, map, "%s must be a mapping (key: value lines)", what);
    for (int i = 0; i + 1 < map->n; i += 2) {
        const ynode_t *k = map->kids[i];
        int ok = 0;
        for (int j = 0; j < n && !ok; j++)
            ok = !strcmp(k->val, allowed[j]);
        if (!ok) {
            const char *s = cdc_map_suggest(k->val, allowed, n);
            lerr(L, k, "unknown key '%s' in %s", k->val, what);
            if (s)
                cdc_err_hint(L->err, "did you mean '%s'?", s);
            else {
                char list[300] = "";
                for (int j = 0; j < n; j++) {
                    size_t l = strlen(list);
                    snprintf(list + l, sizeof(list) - l, "%s%s", j ? ", " : "",
                             allowed[j]);
                }
                cdc_err_hint(L->err, "known keys: %s", list);
            }
            return -1;
        }
    }
    return 0;
}

static int scalar(loader_t *L, const ynode_t *n, const char *what,
                  const char **out)
{
    *out = "";
    if (!n || n->kind != Y_SCALAR)
        return lerr(L, n, "%s must be a single value", what);
    *out = n->val;
    return 0;
}

static int valid_name(const char *s, int max)
{
    size_t n = strlen(s);
    if (!n || (int)n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' &&
            s[i] != '.')
            return 0;
    return 1;
}

static int parse_int(const char *s, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return errno || end == s || *end ? -1 : 0;
}

/* Read zone z (named at n) into *out. */
static int load_zone(loader_t *L, const ynode_t *n, const char *z,
                     cdc_tz_t **out)
{
    cdc_err_t e;

    cdc_err_clear(&e);
    if ((*out = cdc_tz_load(z, &e)))
        return 0;
    lerr(L, n, "%s", e.msg);
    if (e.detail[0])
        cdc_err_detail(L->err, "%s", e.detail);
    if (e.hint[0])
        cdc_err_hint(L->err, "%s", e.hint);
    return -1;
}

static int parse_type(loader_t *L, const ynode_t *n, cdc_map_field_t *f,
                      const char *t)
{
    static const char *const names[] = {
        "text", "varchar", "string", "int", "integer", "bigint", "smallint",
        "decimal", "numeric", "double", "float", "real", "bool", "boolean",
        "timestamp", "timestamptz", "datetime", "date", "json", "jsonb",
    };
    char base[32];
    size_t i = 0;
    int p = 0, s = 0;

    while (t[i] && t[i] != '(' && i < sizeof(base) - 1) {
        base[i] = (char)tolower((unsigned char)t[i]);
        i++;
    }
    base[i] = '\0';
    while (i && base[i - 1] == ' ')
        base[--i] = '\0';
    if (t[i] == '(') {
        if (sscanf(t + i, "(%d,%d)", &p, &s) != 2 &&
            sscanf(t + i, "(%d)", &p) != 1)
            return lerr(L, n, "bad type '%s'", t);
    }
    f->sqltype = cdc_xstrdup(t);
    if (!strcmp(base, "text") || !strcmp(base, "varchar") ||
        !strcmp(base, "string"))
        f->type = CDC_MT_TEXT;
    else if (!strcmp(base, "int") || !strcmp(base, "integer") ||
             !strcmp(base, "bigint") || !strcmp(base, "smallint"))
        f->type = CDC_MT_INT;
    else if (!strcmp(base, "decimal") || !strcmp(base, "numeric")) {
        f->type = CDC_MT_DECIMAL;
        /* PostgreSQL's limits: precision 1..1000, scale 0..precision
         * (values beyond 36 digits are checked and rounded as text) */
        if (p < 0 || p > CDC_MAP_MAX_PRECISION || s < 0 || s > p) {
            lerr(L, n, "bad precision or scale in '%s'", t);
            cdc_err_hint(L->err, "numeric(p,s) needs 1 <= p <= %d (the "
                         "PostgreSQL limit) and 0 <= s <= p",
                         CDC_MAP_MAX_PRECISION);
            return -1;
        }
        f->precision = p;
        f->scale = s;
    } else if (!strcmp(base, "double") || !strcmp(base, "float") ||
               !strcmp(base, "real"))
        f->type = CDC_MT_DOUBLE;
    else if (!strcmp(base, "bool") || !strcmp(base, "boolean"))
        f->type = CDC_MT_BOOL;
    else if (!strcmp(base, "timestamp") || !strcmp(base, "timestamptz") ||
             !strcmp(base, "datetime"))
        f->type = CDC_MT_TIMESTAMP;
    else if (!strcmp(base, "date"))
        f->type = CDC_MT_DATE;
    else if (!strcmp(base, "json") || !strcmp(base, "jsonb"))
        f->type = CDC_MT_JSON;
    else {
        const char *sg = cdc_map_suggest(base, names,
                                         (int)(sizeof(names) / sizeof(names[0])));
        lerr(L, n, "unknown type '%s'", t);
        cdc_err_hint(L->err, sg ? "did you mean '%s'?" : "types: text, bigint, "
                     "decimal(p,s), double, boolean, timestamp, date, json%s",
                     sg ? sg : "");
        return -1;
    }
    return 0;
}

static const cdc_map_source_t *find_source(const cdc_map_t *m, const char *id)
{
    for (uint32_t i = 0; i < m->nsources; i++)
        if (!strcmp(m->sources[i].id, id))
            return &m->sources[i];
    return NULL;
}

static int unknown_name(loader_t *L, const ynode_t *n, const char *what,
                        const char *name, const char *const *cands, int nc)
{
    const char *s = cdc_map_suggest(name, cands, nc);
    lerr(L, n, "unknown %s '%s'", what, name);
    if (s)
        cdc_err_hint(L->err, "did you mean '%s'?", s);
    else if (nc) {
        char list[300] = "";
        for (int j = 0; j < nc; j++) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof(list) - l, "%s%s", j ? ", " : "",
                     cands[j]);
        }
        cdc_err_hint(L->err, "declared: %s", list);
    } else
        cdc_err_hint(L->err, "declare it first");
    return -1;
}

static int load_sources(loader_t *L, const ynode_t *srcs)
{
    static const char *const keys[] = {"priority", "weight", "timezone",
                                       "engine", "description"};
    if (srcs->kind != Y_MAP)
        return lerr(L, srcs, "'sources' must map source ids to settings");
    for (int i = 0; i + 1 < srcs->n; i += 2) {
        const ynode_t *k = srcs->kids[i], *v = srcs->kids[i + 1], *x;
        cdc_map_source_t *s;
        if (!valid_name(k->val, 32))
            return lerr(L, k, "bad source id '%s' (1-32 of A-Z a-z 0-9 _ - .)",
                        k->val);
        if (find_source(L->m, k->val))
            return lerr(L, k, "source '%s' declared twice", k->val);
        L->m->sources = cdc_xrealloc(L->m->sources, (L->m->nsources + 1) *
                                                        sizeof(*s));
        s = &L->m->sources[L->m->nsources++];
        memset(s, 0, sizeof(*s));
        s->id = cdc_xstrdup(k->val);
        s->weight = 1.0;
        s->where = mark(L, k);
        if (cdc_ynode_isnull(v))
            continue;
        if (check_keys(L, v, "a source", keys, 5))
            return -1;
        if ((x = cdc_ynode_get(v, "priority"))) {
            long long p;
            if (x->kind != Y_SCALAR || parse_int(x->val, &p) || p < -1000000 ||
                p > 1000000)
                return lerr(L, x, "priority must be an integer "
                            "(-1000000..1000000)");
            s->priority = (int)p;
        }
        if ((x = cdc_ynode_get(v, "weight"))) {
            char *end;
            if (x->kind != Y_SCALAR)
                return lerr(L, x, "weight must be a number");
            s->weight = strtod(x->val, &end);
            if (*end || end == x->val || !(s->weight >= 0) ||
                s->weight > 1000000)
                return lerr(L, x, "weight must be a number 0..1000000");
        }
        if ((x = cdc_ynode_get(v, "timezone"))) {
            const char *z;
            if (scalar(L, x, "timezone", &z) || load_zone(L, x, z, &s->tz))
                return -1;
            s->timezone = cdc_xstrdup(z);
        }
    }
    return 0;
}

static int load_owners(loader_t *L, const ynode_t *x, cdc_map_field_t *f)
{
    if (x->kind == Y_SCALAR) {
        f->owners = cdc_xcalloc(1, sizeof(char *));
        f->owners[f->nowners++] = cdc_xstrdup(x->val);
    } else if (x->kind == Y_SEQ) {
        f->owners = cdc_xcalloc((size_t)x->n + 1, sizeof(char *));
        for (int i = 0; i < x->n; i++) {
            if (x->kids[i]->kind != Y_SCALAR)
                return lerr(L, x->kids[i], "owners are source ids");
            f->owners[f->nowners++] = cdc_xstrdup(x->kids[i]->val);
        }
    } else
        return lerr(L, x, "owner must be a source id or a list of them");
    return 0;
}

/* "30d", "12h", "1d12h": units s m h d w; microseconds in *us, -1 if
 * not one or not positive */
static int parse_half_life(const char *s, int64_t *us)
{
    int64_t total = 0;
    if (!*s)
        return -1;
    while (*s) {
        int64_t n = 0, mul;
        if (*s < '0' || *s > '9')
            return -1;
        while (*s >= '0' && *s <= '9') {
            if (n > 100000000)
                return -1;
            n = n * 10 + (*s++ - '0');
        }
        switch (*s++) {
        case 's': mul = 1; break;
        case 'm': mul = 60; break;
        case 'h': mul = 3600; break;
        case 'd': mul = 86400; break;
        case 'w': mul = 604800; break;
        default: return -1;
        }
        total += n * mul;
        if (total > (int64_t)100 * 365 * 86400)
            return -1;
    }
    if (total < 1)
        return -1;
    *us = total * 1000000;
    return 0;
}

/* half_life and the rules that need numbers (after the type) */
static int field_score_keys(loader_t *L, const ynode_t *fv, cdc_map_field_t *f)
{
    const ynode_t *x = cdc_ynode_get(fv, "half_life");

    if (CDC_RULE_STATEFUL(f->rule))
        f->per_source = 1;
    if (f->rule == CDC_RULE_WMEAN &&
        !(f->type == CDC_MT_INT ||
          (f->type == CDC_MT_DECIMAL && f->precision && f->precision <= 18))) {
        lerr(L, cdc_ynode_get(fv, "rule"), "field '%s': rule weighted_mean "
             "needs a bigint or numeric(p,s) field with p <= 18 (is %s)",
             f->name, f->sqltype);
        cdc_err_hint(L->err, "the mean is exact decimal arithmetic: declare "
                     "the field e.g. {type: 'numeric(12,2)'}");
        return -1;
    }
    if (!x)
        return 0;
    if (!cdc_map_scored(f)) {
        lerr(L, x, "field '%s': half_life decays scores, and rule %s has "
             "none", f->name, cdc_map_rule_name(f->rule));
        cdc_err_hint(L->err, "use it with rule weighted, vote or "
                     "weighted_mean");
        return -1;
    }
    if (x->kind != Y_SCALAR || parse_half_life(x->val, &f->half_life_us)) {
        lerr(L, x, "half_life must be a duration such as 30d, 12h or 1d12h "
             "(units s m h d w, at least 1s, at most 100 years)");
        return -1;
    }
    return 0;
}

/* One field of target t: "name: type" or "name: {type, owner(s), rule}". */
static int load_field(loader_t *L, cdc_map_target_t *t, const ynode_t *fk,
                      const ynode_t *fv)
{
    static const char *const fkeys[] = {"type", "owner", "owners", "rule",
                                        "description", "group", "half_life"};
    static const char *const rules[] = {"latest", "priority", "weighted",
                                        "ordered", "vote", "weighted_mean"};
    cdc_map_field_t *f = &t->fields[t->nfields++];
    const char *type = NULL;
    const ynode_t *x;

    f->name = cdc_xstrdup(fk->val);
    cdc_strix_put(&t->fieldix, f->name, (int)t->nfields - 1);
    f->where = mark(L, fk);
    if (!valid_name(fk->val, CDC_MAP_NAME_MAX) || strchr(fk->val, '.') ||
        fk->val[0] == '_')
        return lerr(L, fk, "bad field name '%s' (letters, digits, _, -; "
                    "not starting with _)", fk->val);
    if (fv->kind == Y_SCALAR)
        type = fv->val;
    else {
        /* {type: numeric(12,2)}: the comma ended the flow value, and
         * "2)" became a key; say to quote the type */
        const ynode_t *tv = cdc_ynode_get(fv, "type");
        if (fv->kind == Y_MAP && tv && tv->kind == Y_SCALAR &&
            strchr(tv->val, '(') && !strchr(tv->val, ')'))
            for (int j = 0; j + 1 < fv->n; j += 2)
                if (strchr(fv->kids[j]->val, ')')) {
                    lerr(L, tv, "field '%s': type '%s' was cut at a "
                         "comma", fk->val, tv->val);
                    cdc_err_hint(L->err, "inside {...} a comma separates "
                                 "entries: quote the type, {type: "
                                 "'%s,%s', ...}", tv->val,
                                 fv->kids[j]->val);
                    return -1;
                }
        if (check_keys(L, fv, "a target field", fkeys, 7))
            return -1;
        if ((x = cdc_ynode_get(fv, "group"))) {
            const char *g;
            if (scalar(L, x, "group", &g))
                return -1;
            if (!valid_name(g, CDC_MAP_NAME_MAX))
                return lerr(L, x, "bad group name '%s'", g);
            f->group_name = cdc_xstrdup(g);
        }
        if (!(x = cdc_ynode_get(fv, "type")) ||
            scalar(L, x, "type", &type))
            return lerr(L, fv, "field '%s' needs a type", fk->val);
        if ((x = cdc_ynode_get(fv, "owner")) ||
            (x = cdc_ynode_get(fv, "owners")))
            if (load_owners(L, x, f))
                return -1;
        if ((x = cdc_ynode_get(fv, "rule"))) {
            const char *r;
            int ok = 0;
            if (scalar(L, x, "rule", &r))
                return -1;
            for (int j = 0; j < 6; j++)
                if (!strcmp(r, rules[j])) {
                    f->rule = (cdc_mrule_t)j;
                    ok = 1;
                }
            if (!ok)
                return unknown_name(L, x, "rule", r, rules, 6);
        }
    }
    if (parse_type(L, fv->kind == Y_SCALAR ? fv : cdc_ynode_get(fv, "type"),
                   f, type))
        return -1;
    return fv->kind == Y_MAP ? field_score_keys(L, fv, f) : 0;
}

static int load_target(loader_t *L, const ynode_t *k, const ynode_t *v)
{
    static const char *const keys[] = {"table", "key", "fields", "description"};
    cdc_map_target_t *t;
    const ynode_t *x, *fields, *key;

    for (uint32_t i = 0; i < L->m->ntargets; i++)
        if (!strcmp(L->m->targets[i].name, k->val))
            return lerr(L, k, "target '%s' declared twice", k->val);
    if (!valid_name(k->val, CDC_MAP_NAME_MAX))
        return lerr(L, k, "bad target name '%s'", k->val);
    if (check_keys(L, v, "a target", keys, 4))
        return -1;
    L->m->targets = cdc_xrealloc(L->m->targets,
                                 (L->m->ntargets + 1) * sizeof(*t));
    t = &L->m->targets[L->m->ntargets++];
    memset(t, 0, sizeof(*t));
    t->name = cdc_xstrdup(k->val);
    t->where = mark(L, k);
    if ((x = cdc_ynode_get(v, "table"))) {
        const char *tab, *dot;
        if (scalar(L, x, "table", &tab))
            return -1;
        dot = strchr(tab, '.');
        t->schema = dot ? cdc_xstrndup(tab, (size_t)(dot - tab)) : cdc_xstrdup("");
        t->table = cdc_xstrdup(dot ? dot + 1 : tab);
        if (!*t->table || (dot && !*t->schema))
            return lerr(L, x, "bad table name '%s' (use schema.table)", tab);
    } else {
        t->schema = cdc_xstrdup("");
        t->table = cdc_xstrdup(k->val);
    }
    fields = cdc_ynode_get(v, "fields");
    if (!fields || fields->kind != Y_MAP || !fields->n)
        return lerr(L, fields ? fields : k, "target '%s' needs 'fields' "
                    "(name: type, or name: {type, owner, rule})", k->val);
    t->fields = cdc_xcalloc((size_t)fields->n / 2, sizeof(*t->fields));
    for (int i = 0; i + 1 < fields->n; i += 2) {
        if (load_field(L, t, fields->kids[i], fields->kids[i + 1]))
            return -1;
    }
    key = cdc_ynode_get(v, "key");
    if (!key)
        return lerr(L, k, "target '%s' needs a business 'key' (field or list "
                    "of fields)", k->val);
    {
        int nk = key->kind == Y_SEQ ? key->n : 1;
        t->key = cdc_xcalloc((size_t)nk, sizeof(*t->key));
        for (int i = 0; i < nk; i++) {
            const ynode_t *kn = key->kind == Y_SEQ ? key->kids[i] : key;
            int fi;
            if (kn->kind != Y_SCALAR)
                return lerr(L, kn, "key must name fields");
            fi = cdc_map_find_field(t, kn->val);
            if (fi < 0) {
                const char **names = cdc_xcalloc(t->nfields, sizeof(char *));
                for (uint32_t j = 0; j < t->nfields; j++)
                    names[j] = t->fields[j].name;
                unknown_name(L, kn, "key field", kn->val, names,
                             (int)t->nfields);
                free(names);
                return -1;
            }
            t->fields[fi].is_key = 1;
            t->key[t->nkey++] = (uint32_t)fi;
        }
    }
    return cdc_map_groups_build(t, L->err);
}

static int check_owner_sources(loader_t *L, const ynode_t *targets)
{
    /* after every file's sources are known */
    for (uint32_t ti = 0; ti < L->m->ntargets; ti++) {
        cdc_map_target_t *t = &L->m->targets[ti];
        for (uint32_t i = 0; i < t->nfields; i++) {
            cdc_map_field_t *f = &t->fields[i];
            if (!f->is_key && !f->nowners) {
                cdc_err_set(L->err, CDC_EXIT_CONFIG, 0,
                            "%s: field '%s' of target '%s' has no owner",
                            f->where, f->name, t->name);
                cdc_err_hint(L->err, "add 'owner: SOURCE' (or 'owners: [A, "
                             "B]' with a 'rule') to the field");
                return -1;
            }
            for (int j = 0; j < f->nowners; j++)
                if (!find_source(L->m, f->owners[j])) {
                    const char **ids = cdc_xcalloc(L->m->nsources + 1,
                                                   sizeof(char *));
                    const char *s;
                    for (uint32_t q = 0; q < L->m->nsources; q++)
                        ids[q] = L->m->sources[q].id;
                    s = cdc_map_suggest(f->owners[j], ids, (int)L->m->nsources);
                    cdc_err_set(L->err, CDC_EXIT_CONFIG, 0,
                                "%s: owner '%s' of field '%s' is not a "
                                "declared source", f->where, f->owners[j],
                                f->name);
                    if (s)
                        cdc_err_hint(L->err, "did you mean '%s'?", s);
                    else
                        cdc_err_hint(L->err, "declare it under 'sources:'");
                    free(ids);
                    return -1;
                }
        }
    }
    (void)targets;
    return 0;
}

static void assign_free(cdc_map_assign_t *a)
{
    cdc_expr_free(a->expr);
    free(a->text);
    for (int i = 0; i < a->nmap; i++) {
        free(a->map_from[i]);
        free(a->map_to[i]);
    }
    free(a->map_from);
    free(a->map_to);
    free(a->map_else);
    free(a->def);
    free(a->timezone);
    cdc_tz_free(a->tz);
    free(a->where);
}

static int load_assign(loader_t *L, const cdc_map_target_t *t, int fi,
                       const ynode_t *v, cdc_map_assign_t *a)
{
    static const char *const keys[] = {"from", "expr", "map", "else",
                                       "default", "timezone", "description"};
    const ynode_t *x;
    const char *text = NULL;

    a->field = (uint32_t)fi;
    a->where = mark(L, v);
    if (v->kind == Y_SCALAR) {
        text = v->val;
        a->text = cdc_xstrdup(text);
        a->expr = cdc_expr_parse(text, a->where, L->err);
        return a->expr ? 0 : -1;
    }
    if (check_keys(L, v, "a field mapping", keys, 7))
        return -1;
    if ((x = cdc_ynode_get(v, "from"))) {
        /* a column name, taken literally */
        char *q;
        size_t j = 0;
        if (x->kind != Y_SCALAR)
            return lerr(L, x, "'from' must be a column name");
        q = cdc_xmalloc(2 * x->len + 3);
        q[j++] = '"';
        for (size_t i = 0; i < x->len; i++) {
            q[j++] = x->val[i];
            if (x->val[i] == '"')
                q[j++] = '"';
        }
        q[j++] = '"';
        q[j] = '\0';
        a->expr = cdc_expr_parse(q, a->where, L->err);
        a->text = q;
        if (!a->expr)
            return -1;
        if (cdc_ynode_get(v, "expr"))
            return lerr(L, cdc_ynode_get(v, "expr"),
                        "give either 'from' or 'expr', not both");
    } else if ((x = cdc_ynode_get(v, "expr"))) {
        char *w;
        if (scalar(L, x, "expr", &text))
            return -1;
        w = mark(L, x);
        a->text = cdc_xstrdup(text);
        a->expr = cdc_expr_parse(text, w, L->err);
        free(w);
        if (!a->expr)
            return -1;
    } else if (!cdc_ynode_get(v, "default"))
        return lerr(L, v, "field '%s' needs 'from' (a column), 'expr' or "
                    "'default'", t->fields[fi].name);
    if ((x = cdc_ynode_get(v, "map"))) {
        if (x->kind != Y_MAP)
            return lerr(L, x, "'map' must map source values to target "
                        "values, e.g. {1: enabled, 0: disabled}");
        a->map_from = cdc_xcalloc((size_t)x->n / 2 + 1, sizeof(char *));
        a->map_to = cdc_xcalloc((size_t)x->n / 2 + 1, sizeof(char *));
        for (int i = 0; i + 1 < x->n; i += 2) {
            if (x->kids[i + 1]->kind != Y_SCALAR)
                return lerr(L, x->kids[i + 1], "map values must be single "
                            "values");
            a->map_from[a->nmap] = cdc_xstrdup(x->kids[i]->val);
            a->map_to[a->nmap] = cdc_ynode_isnull(x->kids[i + 1])
                                     ? NULL
                                     : cdc_xstrdup(x->kids[i + 1]->val);
            a->nmap++;
        }
    }
    if ((x = cdc_ynode_get(v, "else"))) {
        if (x->kind != Y_SCALAR)
            return lerr(L, x, "'else' must be a single value");
        a->has_else = 1;
        a->map_else = cdc_ynode_isnull(x) ? NULL : cdc_xstrdup(x->val);
    }
    if ((x = cdc_ynode_get(v, "default"))) {
        if (x->kind != Y_SCALAR || cdc_ynode_isnull(x))
            return lerr(L, x, "'default' must be a value");
        a->def = cdc_xstrdup(x->val);
    }
    if ((x = cdc_ynode_get(v, "timezone"))) {
        const char *z;
        if (scalar(L, x, "timezone", &z) || load_zone(L, x, z, &a->tz))
            return -1;
        if (t->fields[fi].type != CDC_MT_TIMESTAMP)
            return lerr(L, x, "'timezone' applies to timestamp fields only "
                        "('%s' is %s)", t->fields[fi].name,
                        t->fields[fi].sqltype);
        a->timezone = cdc_xstrdup(z);
    }
    return 0;
}

static int field_ref(loader_t *L, const cdc_map_target_t *t,
                     const ynode_t *kn, int want_key, const char *src)
{
    int fi = cdc_map_find_field(t, kn->val);
    if (fi < 0) {
        const char **names = cdc_xcalloc(t->nfields, sizeof(char *));
        for (uint32_t j = 0; j < t->nfields; j++)
            names[j] = t->fields[j].name;
        unknown_name(L, kn, "field", kn->val, names, (int)t->nfields);
        cdc_err_detail(L->err, "target '%s' has no such field", t->name);
        free(names);
        return -1;
    }
    if (want_key && !t->fields[fi].is_key)
        return lerr(L, kn, "'%s' is not a key field of target '%s'", kn->val,
                    t->name);
    if (!want_key && t->fields[fi].is_key)
        return lerr(L, kn, "'%s' is a key field: set it under 'key:'",
                    kn->val);
    if (!want_key && src && !cdc_map_owns(&t->fields[fi], src)) {
        lerr(L, kn, "source '%s' does not own field '%s' of target '%s'", src,
             kn->val, t->name);
        cdc_err_hint(L->err, "add '%s' to the field's owners in the target "
                     "declaration (%s)", src, t->fields[fi].where);
        return -1;
    }
    return fi;
}

static int load_strlist(loader_t *L, const ynode_t *x, char ***out, int *n)
{
    int cnt = x->kind == Y_SEQ ? x->n : 1;
    *out = cdc_xcalloc((size_t)cnt + 1, sizeof(char *));
    for (int i = 0; i < cnt; i++) {
        const ynode_t *e = x->kind == Y_SEQ ? x->kids[i] : x;
        if (e->kind != Y_SCALAR)
            return lerr(L, e, "expected a column name");
        (*out)[(*n)++] = cdc_xstrdup(e->val);
    }
    return 0;
}

/* A mapping's source, table, target and name. */
static int mapping_refs(loader_t *L, const ynode_t *v, cdc_map_mapping_t *mp)
{
    const ynode_t *x;
    const char *s;
    char buf[300];

    x = cdc_ynode_get(v, "source");
    if (!x)
        return lerr(L, v, "mapping needs 'source' (a source id)");
    if (scalar(L, x, "source", &s))
        return -1;
    mp->source = find_source(L->m, s);
    if (!mp->source) {
        const char **ids = cdc_xcalloc(L->m->nsources + 1, sizeof(char *));
        for (uint32_t q = 0; q < L->m->nsources; q++)
            ids[q] = L->m->sources[q].id;
        unknown_name(L, x, "source", s, ids, (int)L->m->nsources);
        free(ids);
        return -1;
    }
    x = cdc_ynode_get(v, "table");
    if (!x)
        return lerr(L, v, "mapping needs 'table' (db.table or schema.table "
                    "of the source)");
    if (scalar(L, x, "table", &s))
        return -1;
    {
        const char *dot = strchr(s, '.');
        if (!dot || dot == s || !dot[1])
            return lerr(L, x, "table must be db.table (schema.table), got "
                        "'%s'", s);
        mp->db = cdc_xstrndup(s, (size_t)(dot - s));
        mp->table = cdc_xstrdup(dot + 1);
    }
    x = cdc_ynode_get(v, "target");
    if (!x)
        return lerr(L, v, "mapping needs 'target' (a declared target)");
    if (scalar(L, x, "target", &s))
        return -1;
    for (uint32_t i = 0; i < L->m->ntargets; i++)
        if (!strcmp(L->m->targets[i].name, s))
            mp->target = &L->m->targets[i];
    if (!mp->target) {
        const char **ids = cdc_xcalloc(L->m->ntargets + 1, sizeof(char *));
        for (uint32_t q = 0; q < L->m->ntargets; q++)
            ids[q] = L->m->targets[q].name;
        unknown_name(L, x, "target", s, ids, (int)L->m->ntargets);
        free(ids);
        return -1;
    }
    if ((x = cdc_ynode_get(v, "name"))) {
        if (scalar(L, x, "name", &s))
            return -1;
        mp->name = cdc_xstrdup(s);
    } else {
        snprintf(buf, sizeof(buf), "%s:%s.%s", mp->source->id, mp->db,
                 mp->table);
        mp->name = cdc_xstrdup(buf);
    }
    return 0;
}

/* The key: target key fields (a lookup: the fields to match). */
static int mapping_keys(loader_t *L, const ynode_t *v, cdc_map_mapping_t *mp)
{
    const ynode_t *key;

    key = cdc_ynode_get(v, "key");
    if (!key || key->kind != Y_MAP)
        return lerr(L, key ? key : v, "mapping needs 'key': the target key "
                    "fields from source columns, e.g. {customer_id: id}");
    {
        /* lookup mappings match on any fields, not the key */
        uint32_t nk = (uint32_t)key->n / 2;
        if (!mp->lookup && nk != mp->target->nkey)
            return lerr(L, key, "mapping gives %u key fields, target '%s' "
                        "has %u", nk, mp->target->name, mp->target->nkey);
        if (!nk)
            return lerr(L, key, "'key' is empty");
        mp->keys = cdc_xcalloc(nk, sizeof(*mp->keys));
        mp->nkeys = nk;
        for (uint32_t i = 0; i < nk; i++) {
            const ynode_t *kn = key->kids[2 * i], *kv = key->kids[2 * i + 1];
            int fi;
            uint32_t slot = i;
            if (mp->lookup) {
                fi = cdc_map_find_field(mp->target, kn->val);
                if (fi < 0)
                    return field_ref(L, mp->target, kn, 0, NULL);
            } else {
                fi = field_ref(L, mp->target, kn, 1, NULL);
                if (fi < 0)
                    return -1;
                for (uint32_t q = 0; q < mp->target->nkey; q++)
                    if (mp->target->key[q] == (uint32_t)fi)
                        slot = q;
            }
            if (mp->keys[slot].where)
                return lerr(L, kn, "key field '%s' given twice", kn->val);
            if (load_assign(L, mp->target, fi, kv, &mp->keys[slot]))
                return -1;
            mp->keys[slot].field = (uint32_t)fi;
        }
    }
    return 0;
}

/* 'fields' (x, a map): target field -> column or expression. */
static int mapping_fields(loader_t *L, const ynode_t *x, cdc_map_mapping_t *mp)
{
    /* which target fields this mapping sets already */
    char *set = cdc_xcalloc(mp->target->nfields + 1, 1);
    int rc = 0;
    mp->fields = cdc_xcalloc((size_t)x->n / 2 + 1, sizeof(*mp->fields));
    for (int i = 0; i + 1 < x->n && !rc; i += 2) {
        int fi = field_ref(L, mp->target, x->kids[i], 0, mp->source->id);
        if (fi < 0)
            rc = -1;
        else if (set[fi])
            rc = lerr(L, x->kids[i], "field '%s' mapped twice",
                      x->kids[i]->val);
        /* counted even when it fails, so the cleanup frees what the
         * half-loaded assignment holds */
        else if (load_assign(L, mp->target, fi, x->kids[i + 1],
                             &mp->fields[mp->nfields++]))
            rc = -1;
        else
            set[fi] = 1;
    }
    free(set);
    return rc ? -1 : 0;
}

/* 'columns' (x): include/exclude lists of copied columns. */
static int mapping_columns(loader_t *L, const ynode_t *x,
                           cdc_map_mapping_t *mp)
{
    static const char *const ckeys[] = {"include", "exclude"};
    const ynode_t *y;

    if (mp->lookup)
        return lerr(L, x, "'columns' is not allowed in a lookup mapping");
    if (check_keys(L, x, "columns", ckeys, 2))
        return -1;
    if ((y = cdc_ynode_get(x, "include")) &&
        load_strlist(L, y, &mp->include, &mp->ninclude))
        return -1;
    if ((y = cdc_ynode_get(x, "exclude")) &&
        load_strlist(L, y, &mp->exclude, &mp->nexclude))
        return -1;
    if (!mp->ninclude) {
        mp->include = cdc_xrealloc(mp->include, 2 * sizeof(char *));
        mp->include[mp->ninclude++] = cdc_xstrdup("*");
        mp->include[mp->ninclude] = NULL;
    }
    for (int i = 0; i < mp->ninclude; i++) {
        int fi;
        if (!strcmp(mp->include[i], "*"))
            continue;
        fi = cdc_map_find_field(mp->target, mp->include[i]);
        if (fi < 0 || mp->target->fields[fi].is_key ||
            !cdc_map_owns(&mp->target->fields[fi], mp->source->id)) {
            const ynode_t *y2 = cdc_ynode_get(x, "include");
            if (y2 && y2->kind == Y_SEQ && i < y2->n)
                y2 = y2->kids[i];
            if (fi < 0)
                return field_ref(L, mp->target, y2, 0, mp->source->id);
            return lerr(L, y2, "included column '%s' must be a non-key "
                        "field owned by '%s'", mp->include[i],
                        mp->source->id);
        }
    }
    return 0;
}

/* 'order_by': the order value of fields with rule ordered.  A mapping
 * that may write such a field (or deletes rows of its target) needs one;
 * one that cannot is told so. */
static int mapping_order(loader_t *L, const ynode_t *v, cdc_map_mapping_t *mp)
{
    const cdc_map_target_t *t = mp->target;
    const ynode_t *x = cdc_ynode_get(v, "order_by");
    const char *need = NULL, *any = NULL, *s;

    for (uint32_t f = 0; f < t->nfields; f++) {
        const cdc_map_field_t *fd = &t->fields[f];
        int writes = mp->on_delete == CDC_DEL_ROW && !mp->lookup;
        if (fd->rule != CDC_RULE_ORDERED)
            continue;
        any = fd->name;
        for (uint32_t i = 0; i < mp->nfields && !writes; i++)
            writes = mp->fields[i].field == f;
        if (mp->ninclude && cdc_map_owns(fd, mp->source->id))
            writes = 1;
        if (writes && !need)
            need = fd->name;
    }
    if (!x) {
        if (!need)
            return 0;
        lerr(L, v, "mapping '%s' writes field '%s' (rule: ordered) but has "
             "no 'order_by'", mp->name, need);
        cdc_err_hint(L->err, "add order_by: COLUMN (a date-time or an integer "
                     "such as created_at or a version) to the mapping");
        return -1;
    }
    if (!any)
        return lerr(L, x, "'order_by' orders fields with rule: ordered, and "
                    "target '%s' has none", t->name);
    if (mp->lookup)
        return lerr(L, x, "'order_by' is not allowed in a lookup mapping");
    if (scalar(L, x, "order_by", &s))
        return -1;
    {
        char *w = mark(L, x);
        mp->order_by = cdc_expr_parse(s, w, L->err);
        free(w);
    }
    return mp->order_by ? 0 : -1;
}

/* 'confidence': the per-row score factor of fields with rule weighted,
 * vote or weighted_mean; a lookup mapping may not write vote or
 * weighted_mean fields (they need every source's value per row). */
static int mapping_confidence(loader_t *L, const ynode_t *v,
                              cdc_map_mapping_t *mp)
{
    const cdc_map_target_t *t = mp->target;
    const ynode_t *x = cdc_ynode_get(v, "confidence");
    const char *s;
    int any = 0;

    for (uint32_t f = 0; f < t->nfields; f++)
        any |= !t->fields[f].is_key && cdc_map_scored(&t->fields[f]);
    if (!x)
        return 0;
    if (!any)
        return lerr(L, x, "'confidence' scores fields with rule weighted, "
                    "vote or weighted_mean, and target '%s' has none",
                    t->name);
    if (mp->lookup)
        return lerr(L, x, "'confidence' is not allowed in a lookup mapping");
    if (scalar(L, x, "confidence", &s))
        return -1;
    {
        char *w = mark(L, x);
        mp->confidence = cdc_expr_parse(s, w, L->err);
        free(w);
    }
    return mp->confidence ? 0 : -1;
}

static int load_mapping(loader_t *L, const ynode_t *v)
{
    static const char *const keys[] = {"name", "source", "table", "target",
                                       "key", "fields", "filter", "on_delete",
                                       "columns", "lookup", "description",
                                       "order_by", "aggregates", "row_key",
                                       "confidence"};
    static const char *const dels[] = {"clear", "delete", "ignore"};
    cdc_map_mapping_t *mp;
    const ynode_t *x;
    const char *s;

    if (check_keys(L, v, "a mapping", keys, 15))
        return -1;
    L->m->mappings = cdc_xrealloc(L->m->mappings,
                                  (L->m->nmappings + 1) * sizeof(*mp));
    mp = &L->m->mappings[L->m->nmappings++];
    memset(mp, 0, sizeof(*mp));
    mp->where = mark(L, v);
    if (mapping_refs(L, v, mp))
        return -1;
    if ((x = cdc_ynode_get(v, "lookup"))) {
        if (x->kind != Y_SCALAR || (strcmp(x->val, "true") &&
                                    strcmp(x->val, "false")))
            return lerr(L, x, "lookup must be true or false");
        mp->lookup = !strcmp(x->val, "true");
    }
    if ((x = cdc_ynode_get(v, "on_delete"))) {
        int ok = 0;
        if (scalar(L, x, "on_delete", &s))
            return -1;
        for (int j = 0; j < 3; j++)
            if (!strcmp(s, dels[j])) {
                mp->on_delete = (cdc_mdelete_t)j;
                ok = 1;
            }
        if (!ok)
            return unknown_name(L, x, "on_delete action", s, dels, 3);
    }
    if ((x = cdc_ynode_get(v, "filter"))) {
        char *w;
        if (scalar(L, x, "filter", &s))
            return -1;
        w = mark(L, x);
        mp->filter = cdc_expr_parse(s, w, L->err);
        free(w);
        if (!mp->filter)
            return -1;
    }
    if (mapping_keys(L, v, mp))
        return -1;
    x = cdc_ynode_get(v, "fields");
    if (x && x->kind != Y_MAP)
        return lerr(L, x, "'fields' must map target fields to columns or "
                    "expressions");
    if (x && mapping_fields(L, x, mp))
        return -1;
    if (mp->lookup && !mp->nfields)
        return lerr(L, v, "a lookup mapping needs 'fields' to set");
    if ((x = cdc_ynode_get(v, "columns")) && mapping_columns(L, x, mp))
        return -1;
    if (cdc_map_agg_load(L->file, mp, cdc_ynode_get(v, "aggregates"),
                         cdc_ynode_get(v, "row_key"), L->err))
        return -1;
    if (mapping_order(L, v, mp))
        return -1;
    if (mapping_confidence(L, v, mp))
        return -1;
    return cdc_map_groups_bind(mp, L->err);
}

static char *read_file(const char *path, size_t *len, cdc_err_t *err)
{
    FILE *fp = fopen(path, "rb");
    cdc_buf_t b = CDC_BUF_INIT;
    char tmp[8192];
    size_t n;

    if (!fp) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "cannot open mapping file %s: %s",
                    path, strerror(errno));
        return NULL;
    }
    while ((n = fread(tmp, 1, sizeof(tmp), fp)) > 0) {
        cdc_buf_put(&b, tmp, n);
        if (b.len > 64 << 20) {
            fclose(fp);
            cdc_buf_free(&b);
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "mapping file %s is larger "
                        "than 64 MiB", path);
            return NULL;
        }
    }
    fclose(fp);
    *len = b.len;
    if (!b.p)
        return cdc_xstrdup("");
    return b.p;
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Expand the comma list into file names (directories: *.yaml, *.yml). */
static int list_files(const char *list, char ***out, int *n, cdc_err_t *err)
{
    char *dup = cdc_xstrdup(list), *tok, *save = NULL;

    for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        struct stat st;
        while (*tok == ' ')
            tok++;
        for (size_t l = strlen(tok); l && tok[l - 1] == ' '; l--)
            tok[l - 1] = '\0';
        if (!*tok)
            continue;
        if (stat(tok, &st)) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "mapping file %s: %s", tok,
                        strerror(errno));
            cdc_err_hint(err, "mapping.files is a comma list of YAML files "
                         "or directories");
            free(dup);
            return -1;
        }
        if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(tok);
            struct dirent *de;
            char **names = NULL;
            int nn = 0;
            if (!d) {
                cdc_err_set(err, CDC_EXIT_CONFIG, 0, "cannot read %s: %s", tok,
                            strerror(errno));
                free(dup);
                return -1;
            }
            while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (de->d_name[0] == '.' ||
                    !((l > 5 && !strcmp(de->d_name + l - 5, ".yaml")) ||
                      (l > 4 && !strcmp(de->d_name + l - 4, ".yml"))))
                    continue;
                names = cdc_xrealloc(names, (size_t)(nn + 1) * sizeof(char *));
                names[nn] = cdc_xmalloc(strlen(tok) + l + 2);
                sprintf(names[nn++], "%s/%s", tok, de->d_name);
            }
            closedir(d);
            qsort(names, (size_t)nn, sizeof(char *), cmpstr);
            for (int i = 0; i < nn; i++) {
                *out = cdc_xrealloc(*out, (size_t)(*n + 1) * sizeof(char *));
                (*out)[(*n)++] = names[i];
            }
            free(names);
        } else {
            *out = cdc_xrealloc(*out, (size_t)(*n + 1) * sizeof(char *));
            (*out)[(*n)++] = cdc_xstrdup(tok);
        }
    }
    free(dup);
    if (!*n) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "no mapping files in '%s'", list);
        return -1;
    }
    return 0;
}

static cdc_map_t *load_trees(cdc_map_t *m, ynode_t **roots, char **names,
                             int n, cdc_err_t *err)
{
    static const char *const top[] = {"version", "sources", "targets",
                                      "mappings", "description"};
    loader_t L = {.m = m, .err = err};
    const ynode_t *x;

    for (int i = 0; i < n; i++) {
        L.file = names[i];
        if (roots[i]->kind != Y_MAP)
            return lerr(&L, roots[i], "a mapping file is a YAML mapping with "
                        "sources, targets and mappings"), NULL;
        if (check_keys(&L, roots[i], "the mapping file", top, 5))
            return NULL;
        if ((x = cdc_ynode_get(roots[i], "version")) &&
            (x->kind != Y_SCALAR || strcmp(x->val, "1")))
            return lerr(&L, x, "unsupported mapping file version (this "
                        "program reads version 1)"), NULL;
        if ((x = cdc_ynode_get(roots[i], "sources")) && !cdc_ynode_isnull(x) &&
            load_sources(&L, x))
            return NULL;
    }
    for (int i = 0; i < n; i++) {
        L.file = names[i];
        if ((x = cdc_ynode_get(roots[i], "targets")) && !cdc_ynode_isnull(x)) {
            if (x->kind != Y_MAP)
                return lerr(&L, x, "'targets' must map names to tables"), NULL;
            for (int j = 0; j + 1 < x->n; j += 2)
                if (load_target(&L, x->kids[j], x->kids[j + 1]))
                    return NULL;
        }
    }
    L.file = n ? names[0] : "mapping";
    if (check_owner_sources(&L, NULL))
        return NULL;
    /* mappings point into targets/sources: those arrays are final now */
    for (int i = 0; i < n; i++) {
        L.file = names[i];
        if ((x = cdc_ynode_get(roots[i], "mappings")) && !cdc_ynode_isnull(x)) {
            if (x->kind != Y_SEQ)
                return lerr(&L, x, "'mappings' must be a list (lines starting "
                            "with '- ')"), NULL;
            for (int j = 0; j < x->n; j++)
                if (load_mapping(&L, x->kids[j]))
                    return NULL;
        }
    }
    if (cdc_map_agg_check(m, err))
        return NULL;
    /* per-source fields: vote, weighted_mean, and weighted written by a
     * mapping with a confidence (a source's newer value replaces its
     * older one whatever their scores) */
    for (uint32_t i = 0; i < m->nmappings; i++) {
        const cdc_map_mapping_t *mp = &m->mappings[i];
        cdc_map_target_t *t = (cdc_map_target_t *)mp->target;
        if (!mp->confidence)
            continue;
        for (uint32_t f = 0; f < t->nfields; f++) {
            cdc_map_field_t *fd = &t->fields[f];
            int writes = mp->ninclude && cdc_map_owns(fd, mp->source->id);
            for (uint32_t k = 0; k < mp->nfields && !writes; k++)
                writes = mp->fields[k].field == f;
            if (writes && fd->rule == CDC_RULE_WEIGHTED)
                fd->per_source = 1;
        }
    }
    for (uint32_t i = 0; i < m->nmappings; i++) {
        const cdc_map_mapping_t *mp = &m->mappings[i];
        const cdc_map_target_t *t = mp->target;
        for (uint32_t k = 0; mp->lookup && k < mp->nfields; k++) {
            const cdc_map_field_t *fd = &t->fields[mp->fields[k].field];
            if (fd->per_source) {
                cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: lookup mapping "
                            "'%s' writes field '%s' (rule %s%s), whose value "
                            "needs each source's own value per row",
                            mp->where, mp->name, fd->name,
                            cdc_map_rule_name(fd->rule),
                            fd->rule == CDC_RULE_WEIGHTED
                                ? " with confidence" : "");
                cdc_err_hint(err, "write it from a keyed mapping, or use "
                             "rule latest, priority or weighted without "
                             "confidence");
                return NULL;
            }
        }
    }
    /* row deletes leave tombstones in the sinks */
    for (uint32_t i = 0; i < m->nmappings; i++) {
        const cdc_map_mapping_t *mp = &m->mappings[i];
        if (mp->on_delete == CDC_DEL_ROW && !mp->lookup)
            ((cdc_map_target_t *)mp->target)->tombstones = 1;
    }
    if (cdc_map_groups_check(m, err))
        return NULL;
    return m;
}

static cdc_map_t *load_texts(char **names, char **texts, size_t *lens, int n,
                             cdc_err_t *err)
{
    cdc_map_t *m = cdc_xcalloc(1, sizeof(*m));
    ynode_t **roots = cdc_xcalloc((size_t)n + 1, sizeof(*roots));
    cdc_map_t *ok = NULL;
    int i;

    for (i = 0; i < n; i++) {
        roots[i] = cdc_yaml_parse(names[i], texts[i], lens[i], err);
        if (!roots[i])
            goto out;
    }
    ok = load_trees(m, roots, names, n, err);
    if (ok && !m->nmappings && !m->ntargets) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: no targets and no mappings",
                    n ? names[0] : "mapping");
        ok = NULL;
    }
out:
    for (int j = 0; j < n; j++)
        cdc_ynode_free(roots[j]);
    free(roots);
    m->files = cdc_xcalloc((size_t)n + 1, sizeof(char *));
    for (int j = 0; j < n; j++)
        m->files[m->nfiles++] = cdc_xstrdup(names[j]);
    if (!ok) {
        cdc_map_destroy(m);
        return NULL;
    }
    return m;
}

cdc_map_t *cdc_map_load_str(const char *name, const char *text, size_t len,
                            cdc_err_t *err)
{
    char *names[1] = {(char *)name}, *texts[1] = {(char *)text};
    size_t lens[1] = {len};
    return load_texts(names, texts, lens, 1, err);
}

cdc_map_t *cdc_map_load(const char *files, cdc_err_t *err)
{
    char **names = NULL, **texts;
    size_t *lens;
    int n = 0;
    cdc_map_t *m = NULL;

    if (!files || !*files) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "no mapping files configured");
        cdc_err_hint(err, "set mapping.files (YAML files or a directory)");
        return NULL;
    }
    if (list_files(files, &names, &n, err)) {
        for (int i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return NULL;
    }
    texts = cdc_xcalloc((size_t)n, sizeof(char *));
    lens = cdc_xcalloc((size_t)n, sizeof(size_t));
    for (int i = 0; i < n; i++)
        if (!(texts[i] = read_file(names[i], &lens[i], err)))
            goto out;
    m = load_texts(names, texts, lens, n, err);
out:
    for (int i = 0; i < n; i++) {
        free(names[i]);
        free(texts[i]);
    }
    free(names);
    free(texts);
    free(lens);
    return m;
}

void cdc_map_destroy(cdc_map_t *m)
{
    if (!m)
        return;
    for (uint32_t i = 0; i < m->nsources; i++) {
        free(m->sources[i].id);
        free(m->sources[i].timezone);
        cdc_tz_free(m->sources[i].tz);
        free(m->sources[i].where);
    }
    free(m->sources);
    for (uint32_t i = 0; i < m->ntargets; i++) {
        cdc_map_target_t *t = &m->targets[i];
        for (uint32_t j = 0; j < t->nfields; j++) {
            cdc_map_field_t *f = &t->fields[j];
            free(f->name);
            free(f->sqltype);
            free(f->where);
            for (int k = 0; k < f->nowners; k++)
                free(f->owners[k]);
            free(f->owners);
        }
        cdc_map_groups_free_target(t);
        free(t->fields);
        cdc_strix_free(&t->fieldix);
        free(t->key);
        free(t->name);
        free(t->schema);
        free(t->table);
        free(t->where);
    }
    free(m->targets);
    for (uint32_t i = 0; i < m->nmappings; i++) {
        cdc_map_mapping_t *mp = &m->mappings[i];
        for (uint32_t k = 0; k < mp->nkeys; k++)
            assign_free(&mp->keys[k]);
        free(mp->keys);
        for (uint32_t k = 0; k < mp->nfields; k++)
            assign_free(&mp->fields[k]);
        free(mp->fields);
        for (int k = 0; k < mp->ninclude; k++)
            free(mp->include[k]);
        free(mp->include);
        for (int k = 0; k < mp->nexclude; k++)
            free(mp->exclude[k]);
        free(mp->exclude);
        cdc_expr_free(mp->filter);
        cdc_expr_free(mp->order_by);
        cdc_map_groups_free_mapping(mp);
        cdc_expr_free(mp->confidence);
        cdc_map_agg_free(mp);
        free(mp->name);
        free(mp->db);
        free(mp->table);
        free(mp->where);
    }
    free(m->mappings);
    for (int i = 0; i < m->nfiles; i++)
        free(m->files[i]);
    free(m->files);
    free(m);
}

