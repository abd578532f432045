/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map.c - compile mapping files and map row changes to wide operations.
 *
 * Loading walks the YAML tree of every file twice: first sources and
 * targets (a mapping may name a target declared in another file), then
 * mappings.  Every unknown key or name is reported with its file, line
 * and column and, when a known name is close, "did you mean".
 *
 * Mapping a change is pure: evaluate the row filter, the business key
 * and each assignment (expression, value map, default, cast to the
 * target type) over the row image, then attach to every value its rank
 * under the field's conflict rule (see map.h).
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

static int check_zone(loader_t *L, const ynode_t *n, const char *z)
{
    const char *tzdir;
    char path[512];
    int hh, mm;
    char sign;
    if (!strcmp(z, "UTC") || !strcmp(z, "Z"))
        return 0;
    if (sscanf(z, "%c%2d:%2d", &sign, &hh, &mm) == 3 &&
        (sign == '+' || sign == '-') && strlen(z) == 6 && hh <= 14 && mm < 60)
        return 0;
    if (strstr(z, "..") || z[0] == '/')
        return lerr(L, n, "bad time zone '%s'", z);
    /* the zone database where the C library reads it: TZDIR, else the
     * system's (Debian package tzdata) */
    tzdir = getenv("TZDIR");
    if (!tzdir || !*tzdir)
        tzdir = "/usr/share/zoneinfo";
    snprintf(path, sizeof(path), "%s/%s", tzdir, z);
    if (access(path, R_OK))
        return lerr(L, n, "unknown time zone '%s' (no %s)", z, path),
               cdc_err_hint(L->err, "use an IANA name like Europe/Berlin, "
                            "UTC, or a fixed offset like +02:00; the zone "
                            "files come from TZDIR or the tzdata package"),
               -1;
    return 0;
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

static int find_field(const cdc_map_target_t *t, const char *name)
{
    return cdc_strix_get(&t->fieldix, name);
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
            if (scalar(L, x, "timezone", &z) || check_zone(L, x, z))
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

static int load_target(loader_t *L, const ynode_t *k, const ynode_t *v)
{
    static const char *const keys[] = {"table", "key", "fields", "description"};
    static const char *const fkeys[] = {"type", "owner", "owners", "rule",
                                        "description"};
    static const char *const rules[] = {"latest", "priority", "weighted"};
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
        const ynode_t *fk = fields->kids[i], *fv = fields->kids[i + 1];
        cdc_map_field_t *f = &t->fields[t->nfields++];
        const char *type = NULL;
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
            if (check_keys(L, fv, "a target field", fkeys, 5))
                return -1;
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
                for (int j = 0; j < 3; j++)
                    if (!strcmp(r, rules[j])) {
                        f->rule = (cdc_mrule_t)j;
                        ok = 1;
                    }
                if (!ok)
                    return unknown_name(L, x, "rule", r, rules, 3);
            }
        }
        if (parse_type(L, fv->kind == Y_SCALAR ? fv : cdc_ynode_get(fv, "type"),
                       f, type))
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
            fi = find_field(t, kn->val);
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
    return 0;
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
        if (scalar(L, x, "timezone", &z) || check_zone(L, x, z))
            return -1;
        if (t->fields[fi].type != CDC_MT_TIMESTAMP)
            return lerr(L, x, "'timezone' applies to timestamp fields only "
                        "('%s' is %s)", t->fields[fi].name,
                        t->fields[fi].sqltype);
        a->timezone = cdc_xstrdup(z);
    }
    return 0;
}

static int owns(const cdc_map_field_t *f, const char *src)
{
    for (int i = 0; i < f->nowners; i++)
        if (!strcmp(f->owners[i], src))
            return 1;
    return 0;
}

static int field_ref(loader_t *L, const cdc_map_target_t *t,
                     const ynode_t *kn, int want_key, const char *src)
{
    int fi = find_field(t, kn->val);
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
    if (!want_key && src && !owns(&t->fields[fi], src)) {
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

static int load_mapping(loader_t *L, const ynode_t *v)
{
    static const char *const keys[] = {"name", "source", "table", "target",
                                       "key", "fields", "filter", "on_delete",
                                       "columns", "lookup", "description"};
    static const char *const dels[] = {"clear", "delete", "ignore"};
    static const char *const ckeys[] = {"include", "exclude"};
    cdc_map_mapping_t *mp;
    const ynode_t *x, *key;
    const char *s;
    char buf[300];

    if (check_keys(L, v, "a mapping", keys, 11))
        return -1;
    L->m->mappings = cdc_xrealloc(L->m->mappings,
                                  (L->m->nmappings + 1) * sizeof(*mp));
    mp = &L->m->mappings[L->m->nmappings++];
    memset(mp, 0, sizeof(*mp));
    mp->where = mark(L, v);
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
                fi = find_field(mp->target, kn->val);
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
    x = cdc_ynode_get(v, "fields");
    if (x && x->kind != Y_MAP)
        return lerr(L, x, "'fields' must map target fields to columns or "
                    "expressions");
    if (x) {
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
        if (rc)
            return -1;
    }
    if (mp->lookup && !mp->nfields)
        return lerr(L, v, "a lookup mapping needs 'fields' to set");
    if ((x = cdc_ynode_get(v, "columns"))) {
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
            fi = find_field(mp->target, mp->include[i]);
            if (fi < 0 || mp->target->fields[fi].is_key ||
                !owns(&mp->target->fields[fi], mp->source->id)) {
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
    }
    return 0;
}

static int nmatch(const cdc_map_mapping_t *mp)
{
    return (int)mp->nkeys;
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
    /* row deletes leave tombstones in the sinks */
    for (uint32_t i = 0; i < m->nmappings; i++) {
        const cdc_map_mapping_t *mp = &m->mappings[i];
        if (mp->on_delete == CDC_DEL_ROW && !mp->lookup)
            ((cdc_map_target_t *)mp->target)->tombstones = 1;
    }
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

/* ---- positions and ranks -------------------------------------------------- */

static uint64_t file_seq(const char *f)
{
    const char *dot;
    if (!f || !*f)
        return 0;
    dot = strrchr(f, '.');
    return dot ? strtoull(dot + 1, NULL, 10) : 0;
}

void cdc_map_change_pos(const cdc_txn_t *tx, const cdc_change_t *ch,
                        uint32_t idx, char out[CDC_MAP_POS_LEN + 1])
{
    const char *file = tx->file ? tx->file : tx->pos.file;
    uint64_t seq = file_seq(file), off = ch->pos;
    uint32_t row = ch->row;

    if (!off) {
        /* no position of its own: the txn's, then the index in it */
        off = file && *file ? tx->pos.offset : tx->pos.lsn;
        row = idx;
    }
    cdc_hex(cdc_hex(cdc_hex(out, (uint32_t)seq, 8), off, 16), row, 8)[0] = '\0';
}

void cdc_map_txn_pos(const cdc_pos_t *pos, char out[33])
{
    if (pos->file[0])
        cdc_hex(cdc_hex(out, file_seq(pos->file), 16), pos->offset, 16)[0] = '\0';
    else
        cdc_hex(cdc_hex(out, 0, 16), pos->lsn, 16)[0] = '\0';
}

static void make_rank(const cdc_map_field_t *f, const cdc_map_source_t *s,
                      int64_t commit_us, const char *pos, char *out)
{
    char T[16], P[8], W[16], S[8], *o = out;
    double w = s->weight * 1e6;
    size_t plen;
    uint32_t h = 2166136261u;

    /* ties between sources break by a hash of the id: deterministic and
     * short (every byte of provenance is written for every row) */
    for (const char *c = s->id; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;

    /* fixed-width hex, built without printf (this runs for every field of
     * every change) */
    cdc_hex(T, (uint64_t)commit_us ^ ((uint64_t)1 << 63), 16);
    cdc_hex(P, (uint32_t)s->priority ^ 0x80000000u, 8);
    cdc_hex(W, (uint64_t)llround(w < 0 ? 0 : w), 16);
    cdc_hex(S, h, 8);
    switch (f->rule) {
    case CDC_RULE_PRIORITY:
        memcpy(o, P, 8), o += 8;
        memcpy(o, T, 16), o += 16;
        break;
    case CDC_RULE_WEIGHTED:
        memcpy(o, W, 16), o += 16;
        memcpy(o, T, 16), o += 16;
        memcpy(o, P, 8), o += 8;
        break;
    default:
        memcpy(o, T, 16), o += 16;
        memcpy(o, P, 8), o += 8;
        break;
    }
    memcpy(o, S, 8), o += 8;
    plen = strnlen(pos, CDC_MAP_RANK_LEN - (size_t)(o - out));
    memcpy(o, pos, plen);
    o[plen] = '\0';
}

/* ---- casts to target types ----------------------------------------------- */

static const char *cur_tz; /* zone last put into TZ (IANA zones only) */

/* local broken-down time in zone -> UTC seconds */
static int zone_to_utc(const char *zone, int y, int mo, int d, int h, int mi,
                       int s, int64_t *out)
{
    int64_t base = cdc_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
                   h * 3600 + mi * 60 + s;
    int hh, mm;
    char sign;

    if (!zone || !strcmp(zone, "UTC") || !strcmp(zone, "Z")) {
        *out = base;
        return 0;
    }
    if (sscanf(zone, "%c%2d:%2d", &sign, &hh, &mm) == 3 &&
        (sign == '+' || sign == '-')) {
        int off = (hh * 3600 + mm * 60) * (sign == '-' ? -1 : 1);
        *out = base - off;
        return 0;
    }
    /* IANA zone: the C library's tz database through TZ */
    if (!cur_tz || strcmp(cur_tz, zone)) {
        static char zbuf[256];
        snprintf(zbuf, sizeof(zbuf), "%s", zone);
        setenv("TZ", zbuf, 1);
        tzset();
        cur_tz = zbuf;
    }
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                    .tm_hour = h, .tm_min = mi, .tm_sec = s, .tm_isdst = -1};
    time_t t = mktime(&tm);
    if (t == (time_t)-1 && !(y == 1969 && mo == 12 && d == 31))
        return -1;
    *out = (int64_t)t;
    return 0;
}

static int digits(const char *s, size_t len, size_t at, int n, int *v)
{
    *v = 0;
    if (at + (size_t)n > len)
        return -1;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[at + i]))
            return -1;
        *v = *v * 10 + (s[at + i] - '0');
    }
    return 0;
}

static void fmt_ts(int64_t sec, int us, char *buf, size_t n)
{
    int64_t days = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
    int64_t rem = sec - days * 86400;
    /* civil from days (Howard Hinnant) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    int len = snprintf(buf, n, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d", y, m,
                       d, (int)(rem / 3600), (int)(rem / 60 % 60),
                       (int)(rem % 60));
    if (us) {
        len += snprintf(buf + len, n - (size_t)len, ".%06d", us);
        while (buf[len - 1] == '0')
            buf[--len] = '\0';
    }
    snprintf(buf + len, n - (size_t)len, "Z");
}

/* Timestamp text -> canonical UTC text; 1 if a zero date (-> NULL). */
static int cast_ts(const char *s, size_t len, const char *zone, char *out,
                   size_t n)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, us = 0;
    size_t i = 10;
    const char *z = zone;
    char zb[8];
    int64_t t;

    if (len >= 10 && !strncmp(s, "0000-00-00", 10))
        return 1;
    if (digits(s, len, 0, 4, &y) || len < 10 || s[4] != '-' ||
        digits(s, len, 5, 2, &mo) || s[7] != '-' || digits(s, len, 8, 2, &d) ||
        mo < 1 || mo > 12 || d < 1 || d > 31)
        return -1;
    if (i < len && (s[i] == ' ' || s[i] == 'T')) {
        if (digits(s, len, 11, 2, &h) || len < 16 || s[13] != ':' ||
            digits(s, len, 14, 2, &mi))
            return -1;
        i = 16;
        if (i < len && s[i] == ':') {
            if (digits(s, len, 17, 2, &sec))
                return -1;
            i = 19;
            if (i < len && s[i] == '.') {
                int nd = 0;
                i++;
                while (i < len && isdigit((unsigned char)s[i])) {
                    if (nd < 6) {
                        us = us * 10 + (s[i] - '0');
                        nd++;
                    }
                    i++;
                }
                if (!nd)
                    return -1;
                while (nd++ < 6)
                    us *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return -1;
    }
    if (i < len) {
        /* an explicit zone in the value wins over the declared one */
        if (s[i] == 'Z' && i + 1 == len)
            z = "UTC";
        else if ((s[i] == '+' || s[i] == '-') && (len - i == 3 || len - i == 6 ||
                                                  len - i == 5)) {
            int hh, mm = 0;
            if (digits(s, len, i + 1, 2, &hh))
                return -1;
            if (len - i == 6 && (s[i + 3] != ':' || digits(s, len, i + 4, 2, &mm)))
                return -1;
            if (len - i == 5 && digits(s, len, i + 3, 2, &mm))
                return -1;
            snprintf(zb, sizeof(zb), "%c%02d:%02d", s[i], hh, mm);
            z = zb;
        } else
            return -1;
    }
    if (zone_to_utc(z, y, mo, d, h, mi, sec, &t))
        return -1;
    fmt_ts(t, us, out, n);
    return 0;
}

typedef struct castres {
    int isnull;
    const char *s;
    size_t len;
} castres_t;

const char *cdc_map_show_value(const char *s, size_t len, char *out,
                               size_t n)
{
    size_t o = 0, i = 0, chars = 0;

    while (i < len && chars < 60 && o + 8 < n) {
        const unsigned char *p = (const unsigned char *)s + i;
        size_t k = cdc_utf8_seq(p, len - i);
        if (k == 1 && (*p < 0x20 || *p == 0x7f || *p == '\\'))
            k = 0;
        if (k) {
            memcpy(out + o, p, k);
            o += k;
            i += k;
        } else {
            o += (size_t)snprintf(out + o, n - o, "\\x%02x", *p);
            i++;
        }
        chars++;
    }
    out[o] = '\0';
    if (i < len)
        snprintf(out + o, n - o, "... (%zu bytes)", len);
    return out;
}

static int cast_err(xctx_t *c, const cdc_map_field_t *f, const char *s,
                    size_t len, const char *why)
{
    char v[320];

    cdc_err_set(c->err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                "%s: mapping '%s': value '%s' does not fit field '%s' (%s): "
                "%s", c->where ? c->where : "mapping",
                c->mapping ? c->mapping : "?",
                cdc_map_show_value(s ? s : "", len, v, sizeof(v)),
                f->name, f->sqltype, why);
    cdc_err_hint(c->err, "fix the mapping (a cast, a value map or a filter) "
                 "or the source value, then run again: the transaction was "
                 "not applied and is read again");
    return -1;
}

/*
 * A decimal as text, for values beyond the 36 exact digits of xv_t:
 * [+-]digits[.digits] rounded half away from zero to scale (-1: keep),
 * then at most precision - scale integer digits (precision 0: any).
 * 0 ok (*out in the arena), -1 not a decimal, -2 too many digits.
 */
static int dec_text_fit(const char *s, size_t len, int precision, int scale,
                        cdc_arena_t *a, const char **out, size_t *outlen)
{
    size_t i = 0, ib, ie, fb, fe, nd, k;
    int neg = cdc_num_trim_sign(s, &i, &len);
    char *d, *o;

    ib = i;
    while (i < len && isdigit((unsigned char)s[i]))
        i++;
    ie = fb = fe = i;
    if (i < len && s[i] == '.') {
        fb = ++i;
        while (i < len && isdigit((unsigned char)s[i]))
            i++;
        fe = i;
    }
    if (i != len || (ie == ib && fe == fb))
        return -1;
    while (ib < ie && s[ib] == '0') /* leading zeros */
        ib++;
    if (scale < 0)
        scale = (int)(fe - fb);
    /* digits: a carry slot, the integer part, scale fractional digits */
    nd = 1 + (ie - ib) + (size_t)scale;
    d = cdc_arena_alloc(a, nd + 1);
    d[0] = '0';
    memcpy(d + 1, s + ib, ie - ib);
    for (k = 0; k < (size_t)scale; k++)
        d[1 + (ie - ib) + k] = fb + k < fe ? s[fb + k] : '0';
    if (fb + (size_t)scale < fe && s[fb + scale] >= '5')
        for (k = nd; k-- > 0;) {
            if (d[k] == '9') {
                d[k] = '0';
                continue;
            }
            d[k]++;
            break;
        }
    k = 0;
    while (k + 1 + (size_t)scale < nd && d[k] == '0') /* integer zeros */
        k++;
    if (precision && nd - k - (size_t)scale > (size_t)(precision - scale) &&
        !(nd - k - (size_t)scale == 1 && d[k] == '0'))
        return -2;
    o = cdc_arena_alloc(a, nd - k + 3);
    i = 0;
    {
        int zero = 1;
        for (size_t j = k; j < nd; j++)
            zero &= d[j] == '0';
        if (neg && !zero)
            o[i++] = '-';
    }
    memcpy(o + i, d + k, nd - k - (size_t)scale);
    i += nd - k - (size_t)scale;
    if (scale) {
        o[i++] = '.';
        memcpy(o + i, d + nd - scale, (size_t)scale);
        i += (size_t)scale;
    }
    o[i] = '\0';
    *out = o;
    *outlen = i;
    return 0;
}

/* A text or JSON value the target can hold: UTF-8, and no NUL where the
 * database has none (CDC_MAP_LIM_NUL). */
static int check_text(xctx_t *c, const cdc_map_field_t *f, const char *s,
                      size_t len)
{
    for (size_t i = 0; i < len;) {
        const unsigned char *p = (const unsigned char *)s + i;
        size_t k;
        if (*p < 0x80 && *p) {
            i++;
            continue;
        }
        if (!*p) {
            if (c->limits & CDC_MAP_LIM_NUL)
                return cast_err(c, f, s, len, "a NUL character, which "
                                "PostgreSQL text cannot hold");
            i++;
            continue;
        }
        k = cdc_utf8_seq(p, len - i);
        if (!k)
            return cast_err(c, f, s, len, "not valid UTF-8");
        i += k;
    }
    if (f->type == CDC_MT_JSON && (c->limits & CDC_MAP_LIM_NUL) &&
        memmem(s, len, "\\u0000", 6))
        return cast_err(c, f, s, len, "a \\u0000 escape, which PostgreSQL "
                        "jsonb cannot hold");
    return 0;
}

static int check_double(xctx_t *c, const cdc_map_field_t *f, double d,
                        const char *s, size_t len)
{
    if (!isfinite(d) && (c->limits & CDC_MAP_LIM_FINITE))
        return cast_err(c, f, s, len, "NaN and Infinity do not fit a MySQL "
                        "DOUBLE");
    return 0;
}

static int cast(xctx_t *c, const cdc_map_field_t *f, const xv_t *v,
                const char *zone, castres_t *r)
{
    size_t len;
    const char *s;
    char buf[128];
    xv_t x;

    memset(r, 0, sizeof(*r));
    if (v->t == XV_NULL) {
        r->isnull = 1;
        return 0;
    }
    s = cdc_xv_text(v, c->arena, &len);
    switch (f->type) {
    case CDC_MT_TEXT:
    case CDC_MT_JSON:
        if (check_text(c, f, s, len))
            return -1;
        r->s = s;
        r->len = len;
        return 0;
    case CDC_MT_BOOL:
        if (v->t == XV_BOOL)
            x.b = v->b;
        else if (v->t == XV_DEC)
            x.b = v->m != 0;
        else if (v->t == XV_DBL)
            x.b = v->d != 0;
        else {
            static const char *const t[] = {"true", "t", "yes", "y", "on", "1"};
            static const char *const fl[] = {"false", "f", "no", "n", "off",
                                             "0"};
            int k = -1;
            for (int i = 0; i < 6; i++) {
                if (strlen(t[i]) == len && !strncasecmp(s, t[i], len))
                    k = 1;
                if (strlen(fl[i]) == len && !strncasecmp(s, fl[i], len))
                    k = 0;
            }
            if (k < 0)
                return cast_err(c, f, s, len, "not a boolean");
            x.b = k;
        }
        r->s = x.b ? "true" : "false";
        r->len = strlen(r->s);
        return 0;
    case CDC_MT_INT:
    case CDC_MT_DECIMAL:
        if (v->t == XV_DBL) {
            if (!isfinite(v->d))
                return cast_err(c, f, s, len, "not a finite number");
            snprintf(buf, sizeof(buf), "%.17g", v->d);
            if (strchr(buf, 'e')) {
                if (fabs(v->d) < 1e-30) {
                    snprintf(buf, sizeof(buf), "0");
                } else
                    snprintf(buf, sizeof(buf), "%.30f", v->d);
            }
            if (cdc_xv_parse_dec(buf, strlen(buf), &x))
                return cast_err(c, f, s, len, "out of range");
        } else if (v->t == XV_BOOL) {
            memset(&x, 0, sizeof(x));
            x.t = XV_DEC;
            x.m = v->b;
        } else if (v->t == XV_DEC)
            x = *v;
        else if (cdc_xv_parse_dec(s, len, &x)) {
            /* more digits than xv_t holds exactly: a numeric field takes
             * them as text, up to its declared precision */
            int rc = f->type == CDC_MT_DECIMAL
                         ? dec_text_fit(s, len, f->precision,
                                        f->precision ? f->scale : -1,
                                        c->arena, &r->s, &r->len)
                         : -1;
            if (rc == -2)
                return cast_err(c, f, s, len, "too many digits for the "
                                "declared precision");
            if (rc)
                return cast_err(c, f, s, len, "not a number");
            return 0;
        }
        if (f->type == CDC_MT_DECIMAL && f->precision > 36) {
            /* 10^precision does not fit xv_t: check and round as text */
            size_t tl;
            const char *t = cdc_xv_text(&x, c->arena, &tl);
            int rc = dec_text_fit(t, tl, f->precision, f->scale, c->arena,
                                  &r->s, &r->len);
            if (rc)
                return cast_err(c, f, s, len, "too many digits for the "
                                "declared precision");
            return 0;
        }
        if (f->type == CDC_MT_INT) {
            if (cdc_xv_rescale(&x, 0) || x.m > INT64_MAX || x.m < INT64_MIN)
                return cast_err(c, f, s, len, "out of the 64-bit range");
        } else if (f->precision) {
            __int128 lim = 1;
            xv_t xo = x;
            if (cdc_xv_rescale(&x, f->scale)) {
                /* the scale pushed it past 36 digits: as text */
                size_t tl;
                const char *t = cdc_xv_text(&xo, c->arena, &tl);
                int rc = dec_text_fit(t, tl, f->precision, f->scale,
                                      c->arena, &r->s, &r->len);
                if (rc)
                    return cast_err(c, f, s, len, rc == -2
                                    ? "too many digits for the declared "
                                      "precision" : "out of range");
                return 0;
            }
            for (int i = 0; i < f->precision; i++)
                lim *= 10;
            if (x.m >= lim || x.m <= -lim)
                return cast_err(c, f, s, len, "too many digits for the "
                                "declared precision");
        } else if (c->limits & CDC_MAP_LIM_DEC38) {
            /* the sink's DECIMAL(38,10): 28 digits before the point */
            __int128 one = 1, lim = 1, ip;
            for (int i = 0; i < x.scale; i++)
                one *= 10;
            for (int i = 0; i < 28; i++)
                lim *= 10;
            ip = x.m / one;
            if (ip >= lim || ip <= -lim)
                return cast_err(c, f, s, len, "more than 28 integer digits "
                                "(an undeclared precision is DECIMAL(38,10) "
                                "in MySQL); declare decimal(p,s)");
        }
        r->s = cdc_xv_text(&x, c->arena, &r->len);
        return 0;
    case CDC_MT_DOUBLE:
        if (v->t == XV_DBL && check_double(c, f, v->d, s, len))
            return -1;
        if (v->t == XV_DBL || v->t == XV_DEC) {
            r->s = s;
            r->len = len;
            if (v->t == XV_DEC) {
                double d = strtod(s, NULL);
                snprintf(buf, sizeof(buf), "%.17g", d);
                for (int prec = 15; prec <= 17; prec++) {
                    snprintf(buf, sizeof(buf), "%.*g", prec, d);
                    if (strtod(buf, NULL) == d)
                        break;
                }
                r->s = cdc_arena_memdup(c->arena, buf, strlen(buf));
                r->len = strlen(buf);
            }
            return 0;
        }
        {
            char tmp[128], *end;
            if (len == 0 || len >= sizeof(tmp))
                return cast_err(c, f, s, len, "not a number");
            memcpy(tmp, s, len);
            tmp[len] = '\0';
            double d = strtod(tmp, &end);
            if (*end)
                return cast_err(c, f, s, len, "not a number");
            if (check_double(c, f, d, s, len))
                return -1;
            for (int prec = 15; prec <= 17; prec++) {
                snprintf(buf, sizeof(buf), "%.*g", prec, d);
                if (strtod(buf, NULL) == d)
                    break;
            }
            r->s = cdc_arena_memdup(c->arena, buf, strlen(buf));
            r->len = strlen(buf);
            return 0;
        }
    case CDC_MT_TIMESTAMP: {
        int rc;
        if (v->t == XV_DEC || v->t == XV_DBL) {
            /* epoch seconds */
            double d = v->t == XV_DBL ? v->d : (double)v->m / pow(10, v->scale);
            int64_t sec = (int64_t)floor(d);
            int us = (int)llround((d - (double)sec) * 1e6);
            if (!isfinite(d) || fabs(d) > 1e13)
                return cast_err(c, f, s, len, "not a time");
            if (us >= 1000000) {
                sec++;
                us -= 1000000;
            }
            fmt_ts(sec, us, buf, sizeof(buf));
        } else {
            rc = cast_ts(s, len, zone, buf, sizeof(buf));
            if (rc < 0)
                return cast_err(c, f, s, len, "not a date-time "
                                "(YYYY-MM-DD[ HH:MM[:SS[.f]]][Z|+HH:MM])");
            if (rc == 1) {
                r->isnull = 1; /* zero date */
                return 0;
            }
        }
        r->len = strlen(buf);
        r->s = cdc_arena_memdup(c->arena, buf, r->len);
        return 0;
    }
    case CDC_MT_DATE: {
        int y, mo, d;
        if (len >= 10 && !strncmp(s, "0000-00-00", 10)) {
            r->isnull = 1;
            return 0;
        }
        if (len < 10 || digits(s, len, 0, 4, &y) || s[4] != '-' ||
            digits(s, len, 5, 2, &mo) || s[7] != '-' ||
            digits(s, len, 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31 ||
            (len > 10 && s[10] != ' ' && s[10] != 'T'))
            return cast_err(c, f, s, len, "not a date (YYYY-MM-DD)");
        r->s = cdc_arena_memdup(c->arena, s, 10);
        r->len = 10;
        return 0;
    }
    }
    return 0;
}

/* ---- mapping a change ------------------------------------------------------ */

void cdc_wide_ops_init(cdc_wide_ops_t *o)
{
    memset(o, 0, sizeof(*o));
    cdc_arena_init(&o->arena);
}

void cdc_wide_ops_reset(cdc_wide_ops_t *o)
{
    o->n = 0;
    cdc_arena_reset(&o->arena);
}

void cdc_wide_ops_free(cdc_wide_ops_t *o)
{
    free(o->ops);
    cdc_arena_destroy(&o->arena);
    memset(o, 0, sizeof(*o));
}

static cdc_wide_op_t *new_op(cdc_wide_ops_t *o)
{
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 16;
        o->ops = cdc_xrealloc(o->ops, o->cap * sizeof(*o->ops));
    }
    memset(&o->ops[o->n], 0, sizeof(o->ops[0]));
    return &o->ops[o->n++];
}

int cdc_map_wants(const cdc_map_t *m, const char *source, const char *db,
                  const char *table)
{
    for (uint32_t i = 0; i < m->nmappings; i++) {
        const cdc_map_mapping_t *mp = &m->mappings[i];
        if (!strcmp(mp->source->id, source) && !strcmp(mp->db, db) &&
            !strcmp(mp->table, table))
            return 1;
    }
    return 0;
}

/* value map: compare as numbers when both sides are numbers */
static int map_match(const char *key, const xv_t *v, const char *s, size_t len)
{
    xv_t a, b;
    if (strlen(key) == len && !memcmp(key, s, len))
        return 1;
    if ((v->t == XV_DEC || v->t == XV_DBL || v->t == XV_STR) &&
        !cdc_xv_parse_dec(key, strlen(key), &a) &&
        !cdc_xv_parse_dec(s, len, &b)) {
        int sc = a.scale > b.scale ? a.scale : b.scale;
        if (!cdc_xv_rescale(&a, sc) && !cdc_xv_rescale(&b, sc))
            return a.m == b.m;
    }
    if (v->t == XV_BOOL) {
        if ((!strcasecmp(key, "true") || !strcmp(key, "1")) && v->b)
            return 1;
        if ((!strcasecmp(key, "false") || !strcmp(key, "0")) && !v->b)
            return 1;
    }
    return 0;
}

/* Evaluate one assignment; 1 = skip (a column is absent), 0 ok, -1 err. */
static int compute(const cdc_map_mapping_t *mp, const cdc_map_field_t *f,
                   const cdc_map_assign_t *a, const char *colname, xctx_t *c,
                   castres_t *r)
{
    xv_t v;
    const char *zone = a && a->timezone ? a->timezone : mp->source->timezone;

    c->where = a ? a->where : mp->where;
    c->mapping = mp->name;
    if (a && a->expr) {
        if (cdc_expr_eval(a->expr, c, &v))
            return -1;
    } else if (colname) {
        int found;
        cdc_xv_column(c, colname, &v, &found);
    } else
        v.t = XV_NULL;
    if (v.t == XV_MISSING)
        return 1;
    if (a && a->nmap && v.t != XV_NULL) {
        size_t len;
        const char *s = cdc_xv_text(&v, c->arena, &len);
        int hit = -1;
        for (int i = 0; i < a->nmap && hit < 0; i++)
            if (map_match(a->map_from[i], &v, s, len))
                hit = i;
        if (hit >= 0 || a->has_else) {
            const char *to = hit >= 0 ? a->map_to[hit] : a->map_else;
            memset(&v, 0, sizeof(v));
            if (to) {
                v.t = XV_STR;
                v.s = to;
                v.len = strlen(to);
            }
        }
    }
    if (a && a->def && v.t == XV_NULL) {
        memset(&v, 0, sizeof(v));
        v.t = XV_STR;
        v.s = a->def;
        v.len = strlen(a->def);
    }
    return cast(c, f, &v, zone, r);
}

static int filter_pass(const cdc_map_mapping_t *mp, xctx_t *c, int *pass)
{
    xv_t v;
    *pass = 1;
    if (!mp->filter)
        return 0;
    c->where = mp->where;
    if (cdc_expr_eval(mp->filter, c, &v))
        return -1;
    /* a filter that reads an absent column cannot decide: keep the row */
    *pass = v.t == XV_MISSING ? 1 : (v.t != XV_NULL && (v.t == XV_BOOL ? v.b
                                     : v.t == XV_DEC ? v.m != 0
                                     : v.t == XV_STR ? v.len > 0 : v.d != 0));
    return 0;
}

/* Key texts of a row; 1 if a key is NULL or absent (row skipped). */
static int compute_key(const cdc_map_mapping_t *mp, xctx_t *c,
                       const char **key)
{
    int nk = nmatch(mp);
    for (int i = 0; i < nk; i++) {
        castres_t r;
        const cdc_map_assign_t *a = &mp->keys[i];
        int rc = compute(mp, &mp->target->fields[a->field], a, NULL, c, &r);
        if (rc)
            return rc;
        if (r.isnull)
            return 1;
        key[i] = r.s;
    }
    return 0;
}

static int included(const cdc_map_mapping_t *mp, const char *col)
{
    int inc = 0;
    for (int i = 0; i < mp->ninclude && !inc; i++)
        inc = !strcmp(mp->include[i], "*") || !strcmp(mp->include[i], col);
    for (int i = 0; i < mp->nexclude && inc; i++)
        inc = strcmp(mp->exclude[i], col) != 0;
    return inc;
}

static cdc_wide_op_t *start_op(cdc_wide_ops_t *out, const cdc_map_mapping_t *mp,
                               cdc_wide_kind_t kind, const char **key,
                               int64_t commit_us, const char *pos)
{
    cdc_wide_op_t *op = new_op(out);
    int nk = nmatch(mp);
    uint32_t *kf = cdc_arena_alloc(&out->arena, sizeof(uint32_t) * (size_t)nk);
    const char **kc = cdc_arena_alloc(&out->arena, sizeof(char *) * (size_t)nk);

    for (int i = 0; i < nk; i++) {
        kf[i] = mp->keys[i].field;
        kc[i] = key[i];
    }
    op->kind = kind;
    op->target = mp->target;
    op->mapping = mp;
    op->key = kc;
    op->keyfields = kf;
    op->nkey = (uint32_t)nk;
    op->source = mp->source->id;
    op->commit_us = commit_us;
    memcpy(op->pos, pos, CDC_MAP_POS_LEN + 1);
    return op;
}

static void add_val(cdc_wide_ops_t *out, cdc_wide_op_t *op, uint32_t field,
                    const castres_t *r, uint32_t cap)
{
    cdc_wide_val_t *v;
    if (!op->vals)
        op->vals = cdc_arena_calloc(&out->arena, sizeof(*op->vals) * (cap + 1));
    v = &op->vals[op->nvals++];
    v->field = field;
    v->isnull = r->isnull;
    v->s = r->s;
    v->len = r->len;
    if (op->snapshot) {
        /* a snapshot value's change time is unknown: below every commit
         * time (T = 0), then the value's hash in place of the position, so
         * a re-read of the same value ranks the same (a second backfill
         * writes nothing) and two snapshot values compare alike in every
         * order */
        char sp[CDC_MAP_POS_LEN + 1];
        uint64_t h = 14695981039346656037ull;
        h = (h ^ (unsigned char)(r->isnull ? 0 : 1)) * 1099511628211ull;
        for (size_t i = 0; !r->isnull && i < r->len; i++)
            h = (h ^ (unsigned char)r->s[i]) * 1099511628211ull;
        cdc_hex(cdc_hex(sp, 0, 16), h, 16)[0] = '\0';
        make_rank(&op->target->fields[field], op->mapping->source, INT64_MIN,
                  sp, v->rank);
        return;
    }
    make_rank(&op->target->fields[field], op->mapping->source, op->commit_us,
              op->pos, v->rank);
}

static uint32_t max_vals(const cdc_map_mapping_t *mp, const cdc_table_t *t)
{
    return mp->nfields + (mp->ninclude > 0 ? t->ncols : 0);
}

/* the delete action of a mapping for key */
static void emit_delete(const cdc_map_mapping_t *mp, const cdc_table_t *tbl,
                        const char **key, int64_t commit_us, const char *pos,
                        cdc_wide_ops_t *out)
{
    cdc_wide_op_t *op;
    castres_t nul = {.isnull = 1};

    if (mp->on_delete == CDC_DEL_IGNORE || mp->lookup)
        return;
    if (mp->on_delete == CDC_DEL_ROW) {
        /* a field-level tombstone: NULL with the deletion mark, ranked as a
         * write of this change, on every non-key field of the target (not
         * only ours): it wins exactly where the delete is the newest (under
         * each field's rule), whatever the order of arrival */
        const cdc_map_target_t *t = mp->target;
        op = start_op(out, mp, CDC_WIDE_DELETE, key, commit_us, pos);
        for (uint32_t f = 0; f < t->nfields; f++) {
            if (t->fields[f].is_key)
                continue;
            add_val(out, op, f, &nul, t->nfields);
            op->vals[op->nvals - 1].deleted = 1;
        }
        return;
    }
    op = start_op(out, mp, CDC_WIDE_UPSERT, key, commit_us, pos);
    for (uint32_t i = 0; i < mp->nfields; i++)
        add_val(out, op, mp->fields[i].field, &nul, max_vals(mp, tbl));
    if (mp->ninclude > 0)
        for (uint32_t c = 0; c < tbl->ncols; c++) {
            int fi = find_field(mp->target, tbl->cols[c].name);
            int dup = 0;
            if (fi < 0 || mp->target->fields[fi].is_key ||
                !owns(&mp->target->fields[fi], mp->source->id) ||
                !included(mp, tbl->cols[c].name))
                continue;
            for (uint32_t k = 0; k < op->nvals; k++)
                dup |= op->vals[k].field == (uint32_t)fi;
            if (!dup)
                add_val(out, op, (uint32_t)fi, &nul, max_vals(mp, tbl));
        }
}

static int same_key(const char **a, const char **b, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(a[i], b[i]))
            return 0;
    return 1;
}

static int map_one(const cdc_map_t *m, const cdc_map_mapping_t *mp,
                   const cdc_txn_t *tx, const cdc_change_t *ch,
                   const char *pos, cdc_wide_ops_t *out, cdc_err_t *err)
{
    xctx_t ca = {.tbl = ch->tbl, .row = ch->after, .commit_us = tx->commit_us,
                 .source = mp->source->id, .arena = &out->arena, .err = err,
                 .mapping = mp->name, .limits = m->limits};
    xctx_t cb = ca;
    int nk = nmatch(mp);
    const char *ka[64], *kb[64];
    int pass_a = 0, pass_b = 0, have_a = 0, have_b = 0, rc;
    uint32_t n0 = out->n;

    cb.row = ch->before;
    if (nk > 64)
        return cdc_err_set(err, CDC_EXIT_CONFIG, 0, "too many key fields");
    if (ch->op == CDC_OP_TRUNCATE)
        return 0; /* a truncate names no business keys */
    if (ch->after && filter_pass(mp, &ca, &pass_a))
        return -1;
    if (ch->before && filter_pass(mp, &cb, &pass_b))
        return -1;
    if (ch->after && pass_a) {
        rc = compute_key(mp, &ca, ka);
        if (rc < 0)
            return -1;
        have_a = rc == 0;
        if (rc == 1)
            out->skipped++;
    }
    if (ch->before && pass_b) {
        rc = compute_key(mp, &cb, kb);
        if (rc < 0)
            return -1;
        have_b = rc == 0;
    }
    if (ch->op == CDC_OP_DELETE) {
        if (have_b)
            emit_delete(mp, ch->tbl, kb, tx->commit_us, pos, out);
        return (int)(out->n - n0);
    }
    /* update that moves the row out of the filter or to another key */
    if (have_b && (!have_a || !same_key(ka, kb, nk)))
        emit_delete(mp, ch->tbl, kb, tx->commit_us, pos, out);
    if (!have_a)
        return (int)(out->n - n0);
    {
        int cmp_before = have_b && same_key(ka, kb, nk) &&
                         ch->op == CDC_OP_UPDATE;
        cdc_wide_op_t *op = start_op(out, mp, mp->lookup ? CDC_WIDE_LOOKUP
                                                         : CDC_WIDE_UPSERT,
                                     ka, tx->commit_us, pos);
        uint32_t cap = max_vals(mp, ch->tbl);
        op->snapshot = ch->op == CDC_OP_READ;
        for (uint32_t i = 0; i < mp->nfields + (mp->ninclude > 0 ? ch->tbl->ncols : 0);
             i++) {
            const cdc_map_assign_t *a = NULL;
            const char *col = NULL;
            uint32_t fi;
            castres_t r, rb;
            if (i < mp->nfields) {
                a = &mp->fields[i];
                fi = a->field;
            } else {
                int f, dup = 0;
                col = ch->tbl->cols[i - mp->nfields].name;
                f = find_field(mp->target, col);
                if (f < 0 || mp->target->fields[f].is_key ||
                    !owns(&mp->target->fields[f], mp->source->id) ||
                    !included(mp, col))
                    continue;
                for (uint32_t k = 0; k < mp->nfields; k++)
                    dup |= mp->fields[k].field == (uint32_t)f;
                if (dup)
                    continue;
                fi = (uint32_t)f;
            }
            const cdc_map_field_t *f = &mp->target->fields[fi];
            rc = compute(mp, f, a, col, &ca, &r);
            if (rc < 0)
                return -1;
            if (rc == 1)
                continue;
            /* priority: only non-null values compete */
            if (r.isnull && f->rule == CDC_RULE_PRIORITY)
                continue;
            if (cmp_before && !(a && a->expr &&
                                cdc_expr_uses_commit_time(a->expr))) {
                int rcb = compute(mp, f, a, col, &cb, &rb);
                if (rcb < 0) {
                    cdc_err_clear(err); /* the old image may not cast */
                } else if (rcb == 0 && rb.isnull == r.isnull &&
                           (r.isnull || (rb.len == r.len &&
                                         !memcmp(rb.s, r.s, r.len))))
                    continue; /* this field did not change */
            }
            add_val(out, op, fi, &r, cap);
        }
        /* an update that changed none of our fields: nothing to do */
        if (!op->nvals && (ch->op == CDC_OP_UPDATE || mp->lookup))
            out->n--;
    }
    return (int)(out->n - n0);
}

int cdc_map_change(const cdc_map_t *m, const char *source,
                   const cdc_txn_t *tx, const cdc_change_t *ch, uint32_t idx,
                   cdc_wide_ops_t *out, cdc_err_t *err)
{
    char pos[CDC_MAP_POS_LEN + 1];
    int total = 0, got = 0;

    for (uint32_t i = 0; i < m->nmappings; i++) {
        const cdc_map_mapping_t *mp = &m->mappings[i];
        int r;
        if (strcmp(mp->source->id, source) || strcmp(mp->db, ch->tbl->db) ||
            strcmp(mp->table, ch->tbl->name))
            continue;
        if (!got) {
            cdc_map_change_pos(tx, ch, idx, pos);
            got = 1;
        }
        r = map_one(m, mp, tx, ch, pos, out, err);
        if (r < 0)
            return -1;
        total += r;
    }
    return total;
}

void cdc_wide_prov_json(cdc_buf_t *out, const cdc_wide_op_t *op,
                        const cdc_wide_val_t *v)
{
    cdc_buf_puts(out, "{\"s\":");
    cdc_json_string(out, op->source, strlen(op->source));
    char num[24];
    int n = 24;
    uint64_t u = op->commit_us < 0 ? (uint64_t)0 - (uint64_t)op->commit_us
                                   : (uint64_t)op->commit_us;
    do
        num[--n] = (char)('0' + u % 10);
    while (u /= 10);
    if (op->commit_us < 0)
        num[--n] = '-';
    /* per field of every row: no printf */
    cdc_buf_puts(out, ",\"t\":");
    cdc_buf_put(out, num + n, (size_t)(24 - n));
    cdc_buf_puts(out, ",\"r\":\"");
    cdc_buf_puts(out, v->rank);
    cdc_buf_puts(out, v->deleted ? "\",\"d\":1}" : "\"}");
}

void cdc_map_tombstone_table(const cdc_map_target_t *t, char *out, size_t n)
{
    snprintf(out, n, "%s_tombstones", t->table);
}

/* ---- in-memory model ------------------------------------------------------- */

typedef struct mcell {
    int set;       /* has a winner (provenance) */
    int isnull;
    char *val;
    size_t len;
    char rank[CDC_MAP_RANK_LEN + 1];
    char src[33];
    int64_t t;
    int deleted;   /* the winner is a row delete's NULL */
} mcell_t;

typedef struct mrow {
    const cdc_map_target_t *target;
    char *keytext;  /* target \x1f key \x1f key ... */
    char **key;
    mcell_t *cells; /* target->nfields */
    int live;
} mrow_t;

struct cdc_wide_model {
    mrow_t **rows;
    size_t n, cap;
    size_t *hash;   /* open addressing: index+1 into rows, 0 empty */
    size_t hcap;
};

cdc_wide_model_t *cdc_wide_model_new(void)
{
    return cdc_xcalloc(1, sizeof(cdc_wide_model_t));
}

static void row_free(mrow_t *r)
{
    for (uint32_t i = 0; i < r->target->nfields; i++)
        free(r->cells[i].val);
    for (uint32_t i = 0; i < r->target->nkey; i++)
        free(r->key[i]);
    free(r->key);
    free(r->cells);
    free(r->keytext);
    free(r);
}

void cdc_wide_model_free(cdc_wide_model_t *wm)
{
    if (!wm)
        return;
    for (size_t i = 0; i < wm->n; i++)
        row_free(wm->rows[i]);
    free(wm->rows);
    free(wm->hash);
    free(wm);
}

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void rehash(cdc_wide_model_t *wm)
{
    size_t ncap = wm->hcap ? wm->hcap * 2 : 1024;
    free(wm->hash);
    wm->hash = cdc_xcalloc(ncap, sizeof(size_t));
    wm->hcap = ncap;
    for (size_t i = 0; i < wm->n; i++) {
        size_t h = fnv(wm->rows[i]->keytext) & (ncap - 1);
        while (wm->hash[h])
            h = (h + 1) & (ncap - 1);
        wm->hash[h] = i + 1;
    }
}

static mrow_t *find_row(cdc_wide_model_t *wm, const cdc_map_target_t *t,
                        const char *const *key, int create)
{
    cdc_buf_t kt = CDC_BUF_INIT;
    size_t h;
    mrow_t *r;

    cdc_buf_puts(&kt, t->name);
    for (uint32_t i = 0; i < t->nkey; i++) {
        cdc_buf_putc(&kt, '\x1f');
        cdc_buf_puts(&kt, key[i]);
    }
    if (wm->hcap) {
        h = fnv(kt.p) & (wm->hcap - 1);
        while (wm->hash[h]) {
            r = wm->rows[wm->hash[h] - 1];
            if (!strcmp(r->keytext, kt.p)) {
                cdc_buf_free(&kt);
                return r;
            }
            h = (h + 1) & (wm->hcap - 1);
        }
    }
    if (!create) {
        cdc_buf_free(&kt);
        return NULL;
    }
    r = cdc_xcalloc(1, sizeof(*r));
    r->target = t;
    r->keytext = kt.p;
    r->key = cdc_xcalloc(t->nkey, sizeof(char *));
    for (uint32_t i = 0; i < t->nkey; i++)
        r->key[i] = cdc_xstrdup(key[i]);
    r->cells = cdc_xcalloc(t->nfields, sizeof(mcell_t));
    if (wm->n == wm->cap) {
        wm->cap = wm->cap ? wm->cap * 2 : 256;
        wm->rows = cdc_xrealloc(wm->rows, wm->cap * sizeof(*wm->rows));
    }
    wm->rows[wm->n++] = r;
    if (wm->n * 2 > wm->hcap)
        rehash(wm);
    else {
        h = fnv(r->keytext) & (wm->hcap - 1);
        while (wm->hash[h])
            h = (h + 1) & (wm->hcap - 1);
        wm->hash[h] = wm->n;
    }
    return r;
}

static void cell_offer(mcell_t *c, const cdc_wide_op_t *op,
                       const cdc_wide_val_t *v)
{
    if (c->set && strcmp(v->rank, c->rank) <= 0)
        return;
    free(c->val);
    c->set = 1;
    c->isnull = v->isnull;
    c->val = v->isnull ? NULL : cdc_xstrndup(v->s, v->len);
    c->len = v->len;
    memcpy(c->rank, v->rank, sizeof(c->rank));
    snprintf(c->src, sizeof(c->src), "%s", op->source);
    c->t = op->commit_us;
    c->deleted = v->deleted;
}

/* Visible: upserted and not dead.  Dead = some field has a winner and
 * every winner is a deletion (what the sinks move to the tombstones). */
static int row_visible(const mrow_t *r)
{
    int any = 0;
    if (!r->live)
        return 0;
    for (uint32_t i = 0; i < r->target->nfields; i++) {
        if (!r->cells[i].set)
            continue;
        if (!r->cells[i].deleted)
            return 1;
        any = 1;
    }
    return !any;
}

void cdc_wide_model_apply(cdc_wide_model_t *wm, const cdc_wide_op_t *op)
{
    const cdc_map_target_t *t = op->target;
    mrow_t *r;

    if (op->kind == CDC_WIDE_UPSERT || op->kind == CDC_WIDE_DELETE) {
        /* a dead row keeps its cells: that is its tombstone */
        r = find_row(wm, t, op->key, 1);
        r->live = 1;
        for (uint32_t i = 0; i < op->nvals; i++)
            cell_offer(&r->cells[op->vals[i].field], op, &op->vals[i]);
    } else {
        /* lookup: every live row whose match fields equal key[] */
        for (size_t k = 0; k < wm->n; k++) {
            int ok;
            r = wm->rows[k];
            if (r->target != t || !row_visible(r))
                continue;
            ok = 1;
            for (uint32_t j = 0; j < op->nkey && ok; j++) {
                const mcell_t *c = &r->cells[op->keyfields[j]];
                const char *cur = t->fields[op->keyfields[j]].is_key
                                      ? NULL
                                      : c->val;
                if (t->fields[op->keyfields[j]].is_key) {
                    for (uint32_t q = 0; q < t->nkey; q++)
                        if (t->key[q] == op->keyfields[j])
                            cur = r->key[q];
                }
                ok = cur && !strcmp(cur, op->key[j]);
            }
            if (ok)
                for (uint32_t i = 0; i < op->nvals; i++)
                    cell_offer(&r->cells[op->vals[i].field], op, &op->vals[i]);
        }
    }
}

size_t cdc_wide_model_rows(const cdc_wide_model_t *wm)
{
    size_t n = 0;
    for (size_t i = 0; i < wm->n; i++)
        n += row_visible(wm->rows[i]);
    return n;
}

static int row_cmp(const void *a, const void *b)
{
    const mrow_t *x = *(mrow_t *const *)a, *y = *(mrow_t *const *)b;
    int c = strcmp(x->target->name, y->target->name);
    if (c)
        return c;
    for (uint32_t i = 0; i < x->target->nkey; i++) {
        xv_t p, q;
        /* numeric keys in numeric order */
        if (!cdc_xv_parse_dec(x->key[i], strlen(x->key[i]), &p) &&
            !cdc_xv_parse_dec(y->key[i], strlen(y->key[i]), &q) &&
            p.scale == 0 && q.scale == 0) {
            if (p.m != q.m)
                return p.m < q.m ? -1 : 1;
            continue;
        }
        c = strcmp(x->key[i], y->key[i]);
        if (c)
            return c;
    }
    return 0;
}

void cdc_wide_model_print(const cdc_wide_model_t *wm, FILE *fp, int prov)
{
    mrow_t **v = cdc_xcalloc(wm->n + 1, sizeof(*v));
    size_t n = 0;
    cdc_buf_t b = CDC_BUF_INIT;

    for (size_t i = 0; i < wm->n; i++)
        if (row_visible(wm->rows[i]))
            v[n++] = wm->rows[i];
    qsort(v, n, sizeof(*v), row_cmp);
    for (size_t i = 0; i < n; i++) {
        const mrow_t *r = v[i];
        const cdc_map_target_t *t = r->target;
        cdc_buf_reset(&b);
        cdc_buf_printf(&b, "%s", t->name);
        for (uint32_t k = 0; k < t->nkey; k++) {
            cdc_buf_printf(&b, " %s=", t->fields[t->key[k]].name);
            cdc_json_string(&b, r->key[k], strlen(r->key[k]));
        }
        cdc_buf_putc(&b, '\n');
        for (uint32_t f = 0; f < t->nfields; f++) {
            const mcell_t *c = &r->cells[f];
            if (t->fields[f].is_key)
                continue;
            cdc_buf_printf(&b, "  %s: ", t->fields[f].name);
            if (!c->set || c->isnull)
                cdc_buf_puts(&b, "null");
            else
                cdc_json_string(&b, c->val, c->len);
            if (prov && c->set)
                cdc_buf_printf(&b, "  [%s %" PRId64 "%s]", c->src, c->t,
                               c->deleted ? " deleted" : "");
            cdc_buf_putc(&b, '\n');
        }
        fputs(b.p, fp);
    }
    cdc_buf_free(&b);
    free(v);
}
