/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mapping.c - `autoglm-cdc mapping test` and `autoglm-cdc validate`.
 *
 * mapping test: read autoglm envelopes (JSON lines), turn each back into
 * a one-change transaction, map it and apply the operations to the
 * in-memory model that has the sinks' semantics; print the operations
 * and the resulting rows with their provenance.
 *
 * validate: load the mapping files named by mapping.files, then (when
 * the DSNs are configured) compare every target table with the live
 * PostgreSQL sink database and every source table of this pipeline's
 * source with the live source schema; finally list what each mapping
 * writes.
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "cdc/commands/commands.h"
#include "cdc/envelope.h"
#include "cdc/jsontree.h"
#include "cdc/log.h"
#include "cdc/plugin.h"
#include "connectors/mysql/conn.h"
#include "connectors/pg/pgutil.h"
#include "mappings/map_int.h"

/* ---- envelopes back into changes ----------------------------------------- */

static const char *jstr(yajl_val o, const char *k)
{
    const char *path[] = {k, NULL};
    yajl_val v = yajl_tree_get(o, path, yajl_t_any);
    return v && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

static int jnum(yajl_val o, const char *k, int64_t *out)
{
    const char *path[] = {k, NULL};
    yajl_val v = yajl_tree_get(o, path, yajl_t_any);
    if (!v || !YAJL_IS_NUMBER(v))
        return -1;
    *out = strtoll(v->u.number.r, NULL, 10);
    return 0;
}

static void add_cols(cdc_buf_t *names, int *n, yajl_val img)
{
    if (!img || !YAJL_IS_OBJECT(img))
        return;
    for (size_t i = 0; i < img->u.object.len; i++) {
        const char *k = img->u.object.keys[i];
        int dup = 0;
        const char *p = names->p;
        for (int j = 0; j < *n && !dup; j++) {
            dup = !strcmp(p, k);
            p += strlen(p) + 1;
        }
        if (!dup) {
            cdc_buf_put(names, k, strlen(k) + 1);
            (*n)++;
        }
    }
}

static cdc_value_t *image(cdc_txn_t *tx, cdc_table_t *t, yajl_val img,
                          yajl_val unchanged)
{
    cdc_value_t *row;
    if (!img || !YAJL_IS_OBJECT(img))
        return NULL;
    row = cdc_txn_values(tx, t->ncols); /* ABSENT by default */
    for (uint32_t c = 0; c < t->ncols; c++) {
        const char *path[] = {t->cols[c].name, NULL};
        yajl_val v = yajl_tree_get(img, path, yajl_t_any);
        int found = 0;
        for (size_t i = 0; i < img->u.object.len && !found; i++)
            found = !strcmp(img->u.object.keys[i], t->cols[c].name);
        if (found)
            cdc_json_to_value(&tx->arena, &row[c], v);
        if (unchanged && YAJL_IS_ARRAY(unchanged))
            for (size_t i = 0; i < unchanged->u.array.len; i++) {
                yajl_val u = unchanged->u.array.values[i];
                if (YAJL_IS_STRING(u) && !strcmp(u->u.string, t->cols[c].name))
                    row[c].kind = CDC_V_UNCHANGED;
            }
    }
    return row;
}

/* One envelope line -> a txn with one change; *src = application_id. */
static cdc_txn_t *envelope_txn(const char *line, size_t len, char *src,
                               size_t srclen, const char *where,
                               cdc_err_t *err)
{
    char ebuf[256];
    yajl_val root = cdc_json_parse(line, len, ebuf, sizeof(ebuf)), payload,
             source, before, after;
    cdc_txn_t *tx = NULL;
    cdc_table_t *t;
    const char *op, *db, *table, *app, *file;
    cdc_buf_t names = CDC_BUF_INIT;
    int n = 0;
    int64_t v;

    if (!root) {
        cdc_err_set(err, CDC_EXIT_DATA, 0, "%s: not JSON: %s", where, ebuf);
        return NULL;
    }
    payload = cdc_json_get(root, "payload");
    source = cdc_json_get(root, "source");
    app = jstr(root, "application_id");
    if (!payload || !source || !app || !(op = jstr(payload, "op"))) {
        /* debezium: {before, after, source, op} */
        if (jstr(root, "op") && source) {
            payload = root;
            op = jstr(root, "op");
            app = jstr(source, "name");
        }
        if (!payload || !source || !app || !op) {
            cdc_err_set(err, CDC_EXIT_DATA, 0, "%s: not an autoglm or debezium "
                        "envelope (application_id, payload.op, source)", where);
            yajl_tree_free(root);
            return NULL;
        }
    }
    db = jstr(source, "db");
    /* PostgreSQL: the schema (Debezium's "db" is the database) */
    if (!db || (jstr(source, "schema") && jstr(source, "connector") &&
                !strcmp(jstr(source, "connector"), "postgresql")))
        db = jstr(source, "schema");
    table = jstr(source, "table");
    if (!db || !table) {
        cdc_err_set(err, CDC_EXIT_DATA, 0, "%s: source.db/schema and "
                    "source.table are required", where);
        yajl_tree_free(root);
        return NULL;
    }
    snprintf(src, srclen, "%s", app);
    before = cdc_json_get(payload, "before");
    after = cdc_json_get(payload, "after");
    add_cols(&names, &n, after);
    add_cols(&names, &n, before);
    t = cdc_table_new(db, table, (uint32_t)n);
    {
        const char *p = names.p;
        for (int i = 0; i < n; i++) {
            t->cols[i].name = cdc_xstrdup(p);
            p += strlen(p) + 1;
        }
    }
    cdc_buf_free(&names);
    {
        /* the row's identity (aggregates): the envelope's key columns */
        yajl_val key = cdc_json_get(payload, "key");
        if (key && YAJL_IS_OBJECT(key) && key->u.object.len) {
            t->pk = cdc_xcalloc(key->u.object.len, sizeof(*t->pk));
            for (size_t i = 0; i < key->u.object.len; i++)
                for (uint32_t c = 0; c < t->ncols; c++)
                    if (!strcmp(t->cols[c].name, key->u.object.keys[i])) {
                        t->pk[t->npk++] = c;
                        break;
                    }
        }
    }
    tx = cdc_txn_new();
    {
        cdc_change_t *ch = cdc_txn_add(tx, op[0] == 'r' ? 'r' : op[0], t);
        cdc_table_destroy(t);
        ch->before = image(tx, t, before, NULL);
        ch->after = image(tx, t, after, cdc_json_get(payload, "unchanged"));
        if (!jnum(source, "ts_ms", &v))
            tx->commit_us = v * 1000;
        file = jstr(source, "file");
        if (file) {
            tx->file = cdc_arena_memdup(&tx->arena, file, strlen(file));
            snprintf(tx->pos.file, sizeof(tx->pos.file), "%s", file);
        }
        if (!jnum(source, "pos", &v))
            ch->pos = (uint64_t)v;
        if (!jnum(source, "row", &v))
            ch->row = (uint32_t)v;
        {
            const char *lsn = jstr(source, "lsn");
            unsigned hi, lo;
            if (lsn && sscanf(lsn, "%X/%X", &hi, &lo) == 2)
                ch->pos = ((uint64_t)hi << 32) | lo;
            else if (!jnum(source, "lsn", &v))
                ch->pos = (uint64_t)v;
            tx->pos.lsn = ch->pos;
        }
    }
    yajl_tree_free(root);
    return tx;
}

static void print_op(FILE *out, const cdc_wide_op_t *op, int prov)
{
    cdc_buf_t b = CDC_BUF_INIT;
    const cdc_map_target_t *t = op->target;
    static const char *const kinds[] = {"upsert", "delete", "lookup",
                                        "candidate", "contrib"};

    cdc_buf_printf(&b, "%s %s", kinds[op->kind], t->name);
    if (op->kind == CDC_WIDE_CONTRIB)
        cdc_buf_printf(&b, " row=%s%s", op->row, op->gone ? " gone" : "");
    for (uint32_t i = 0; i < op->nkey; i++) {
        if (!op->key[i])
            continue; /* a gone contribution without a key */
        cdc_buf_printf(&b, " %s=", t->fields[op->keyfields[i]].name);
        cdc_json_string(&b, op->key[i], strlen(op->key[i]));
    }
    if (op->kind == CDC_WIDE_GROUP)
        /* a field group's candidate: the source row, or its tombstone */
        cdc_buf_printf(&b, " group %s row %s%s", t->groups[op->group].name,
                       op->rowid, op->gdeleted ? " (gone)" : "");
    if (op->nvals)
        cdc_buf_puts(&b, " |");
    for (uint32_t i = 0; i < op->nvals; i++) {
        const cdc_wide_val_t *v = &op->vals[i];
        cdc_buf_printf(&b, " %s=", t->fields[v->field].name);
        if (v->isnull)
            cdc_buf_puts(&b, "null");
        else
            cdc_json_string(&b, v->s, v->len);
    }
    if (prov)
        cdc_buf_printf(&b, "  [%s %" PRId64 " %s]", op->source, op->commit_us,
                       op->pos);
    fprintf(out, "%s\n", b.p);
    cdc_buf_free(&b);
}

/* Feed the envelopes of envfile (stdin: NULL or "-") through n mapping
 * sets into their models; flags 1 prints the operations (of the first
 * set), 2 with provenance.  names[k] prefixes the errors of set k. */
static int test_feed(cdc_map_t *const *maps, cdc_wide_model_t *const *wms,
                     int n, const char *const *names, const char *envfile,
                     FILE *out, int flags, cdc_err_t *err)
{
    FILE *in;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    cdc_wide_ops_t ops;
    int rc = 0;

    in = envfile && strcmp(envfile, "-") ? fopen(envfile, "rb") : stdin;
    if (!in) {
        cdc_err_set(err, CDC_EXIT_USAGE, 0, "cannot open %s: %s", envfile,
                    strerror(errno));
        return -1;
    }
    cdc_wide_ops_init(&ops);
    while (!rc && (len = getline(&line, &cap, in)) >= 0) {
        char where[1100], src[128];
        cdc_txn_t *tx;
        lineno++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (!len || line[0] == '#')
            continue;
        snprintf(where, sizeof(where), "%s:%ld",
                 envfile ? envfile : "<stdin>", lineno);
        tx = envelope_txn(line, (size_t)len, src, sizeof(src), where, err);
        if (!tx) {
            rc = -1;
            break;
        }
        for (int k = 0; k < n && !rc; k++) {
            cdc_wide_ops_reset(&ops);
            if (cdc_map_change(maps[k], src, tx, &tx->changes[0], 0, &ops,
                               err) < 0) {
                char msg[sizeof(err->msg)];
                snprintf(msg, sizeof(msg), "%s", err->msg);
                snprintf(err->msg, sizeof(err->msg), "%s%s%.200s: %.300s",
                         names ? names[k] : "", names ? ": " : "", where, msg);
                rc = -1;
                break;
            }
            for (uint32_t i = 0; i < ops.n; i++) {
                if ((flags & 1) && k == 0)
                    print_op(out, &ops.ops[i], flags & 2);
                cdc_wide_model_apply(wms[k], &ops.ops[i]);
            }
        }
        cdc_txn_destroy(tx);
    }
    free(line);
    if (in != stdin)
        fclose(in);
    cdc_wide_ops_free(&ops);
    return rc;
}

int cdc_map_test_run(const char *mapfile, const char *envfile, FILE *out,
                     int flags, cdc_err_t *err)
{
    cdc_map_t *m = cdc_map_load(mapfile, err);
    cdc_wide_model_t *wm;
    int rc;

    if (!m)
        return -1;
    wm = cdc_wide_model_new();
    rc = test_feed(&m, &wm, 1, NULL, envfile, out, flags, err);
    if (!rc) {
        if (flags & 1)
            fprintf(out, "-- rows\n");
        cdc_wide_model_print(wm, out, flags & 2);
    }
    cdc_wide_model_free(wm);
    cdc_map_destroy(m);
    return rc;
}

static const cdc_map_target_t *target_named(const cdc_map_t *m,
                                            const char *name)
{
    for (uint32_t i = 0; i < m->ntargets; i++)
        if (!strcmp(m->targets[i].name, name))
            return &m->targets[i];
    return NULL;
}

/* a half_life for messages: "30d", "12h", "90m", "45s"; "none" */
static const char *half_life_text(int64_t us, char *buf, size_t n)
{
    int64_t s = us / 1000000;
    if (!us)
        return "none";
    if (s % 86400 == 0)
        snprintf(buf, n, "%" PRId64 "d", s / 86400);
    else if (s % 3600 == 0)
        snprintf(buf, n, "%" PRId64 "h", s / 3600);
    else if (s % 60 == 0)
        snprintf(buf, n, "%" PRId64 "m", s / 60);
    else
        snprintf(buf, n, "%" PRId64 "s", s);
    return buf;
}

/* What changed in the targets' declarations: targets and fields only on
 * one side, and fields whose type, rule or half_life changed. */
static int diff_shape(const cdc_map_t *a, const cdc_map_t *b, FILE *out)
{
    static const char *const rules[] = {"latest", "priority", "weighted",
                                            "ordered", "vote", "weighted_mean"};
    int nd = 0;

    for (int side = 0; side < 2; side++) {
        const cdc_map_t *x = side ? b : a, *y = side ? a : b;
        for (uint32_t i = 0; i < x->ntargets; i++) {
            const cdc_map_target_t *t = &x->targets[i];
            const cdc_map_target_t *u = target_named(y, t->name);
            if (!u) {
                fprintf(out, "target %s: only in %s\n", t->name,
                        side ? "NEW" : "OLD");
                nd++;
                continue;
            }
            for (uint32_t f = 0; f < t->nfields; f++) {
                const cdc_map_field_t *fa = &t->fields[f];
                int g = cdc_map_find_field(u, fa->name);
                const cdc_map_field_t *fb = g >= 0 ? &u->fields[g] : NULL;
                if (!fb)
                    fprintf(out, "target %s: field %s only in %s\n",
                            t->name, fa->name, side ? "NEW" : "OLD");
                else if (side)
                    continue; /* both sides: reported once, from OLD */
                else if (strcmp(fa->sqltype, fb->sqltype))
                    fprintf(out, "target %s: field %s: %s -> %s\n", t->name,
                            fa->name, fa->sqltype, fb->sqltype);
                else if (fa->rule != fb->rule)
                    fprintf(out, "target %s: field %s: rule %s -> %s\n",
                            t->name, fa->name, rules[fa->rule],
                            rules[fb->rule]);
                else if (fa->half_life_us != fb->half_life_us) {
                    char ha[32], hb[32];
                    fprintf(out, "target %s: field %s: half_life %s -> %s\n",
                            t->name, fa->name,
                            half_life_text(fa->half_life_us, ha, sizeof(ha)),
                            half_life_text(fb->half_life_us, hb, sizeof(hb)));
                } else
                    continue;
                nd++;
            }
        }
    }
    return nd;
}

int cdc_map_test_diff(const char *oldmap, const char *newmap,
                      const char *envfile, FILE *out, int flags,
                      cdc_wide_diff_t *st, cdc_err_t *err)
{
    cdc_map_t *m[2] = {NULL, NULL};
    cdc_wide_model_t *wm[2] = {NULL, NULL};
    const char *names[2] = {"OLD mapping", "NEW mapping"};
    int rc = -1;

    memset(st, 0, sizeof(*st));
    if (!(m[0] = cdc_map_load(oldmap, err)) ||
        !(m[1] = cdc_map_load(newmap, err)))
        goto out;
    wm[0] = cdc_wide_model_new();
    wm[1] = cdc_wide_model_new();
    if (test_feed(m, wm, 2, names, envfile, out, 0, err))
        goto out;
    fprintf(out, "--- OLD %s\n+++ NEW %s\n", oldmap, newmap);
    rc = diff_shape(m[0], m[1], out) > 0;
    rc |= cdc_wide_model_diff(wm[0], wm[1], out, flags & 2, st);
    fprintf(out, "== %zu rows: %zu added, %zu removed, %zu changed (%zu "
            "fields), %zu unchanged\n", st->rows, st->added, st->removed,
            st->changed, st->fields, st->same);
out:
    cdc_wide_model_free(wm[0]);
    cdc_wide_model_free(wm[1]);
    cdc_map_destroy(m[0]);
    cdc_map_destroy(m[1]);
    return rc;
}

int cdc_map_cli_test(const cdc_conf_t *conf, int argc, char **argv,
                     cdc_err_t *err)
{
    int flags = 1 | 2;
    (void)conf;
    if (argc < 1) {
        cdc_err_set(err, CDC_EXIT_USAGE, 0, "mapping test needs a mapping "
                    "FILE (and an envelopes file, or envelopes on stdin)");
        cdc_err_hint(err, "autoglm-cdc mapping test map.yaml changes.jsonl");
        return CDC_EXIT_USAGE;
    }
    if (argc > 2) {
        cdc_err_set(err, CDC_EXIT_USAGE, 0, "unexpected argument '%s'",
                    argv[2]);
        return CDC_EXIT_USAGE;
    }
    if (cdc_map_test_run(argv[0], argc > 1 ? argv[1] : NULL, stdout, flags,
                         err))
        return err->code ? err->code : CDC_EXIT_FAIL;
    return CDC_EXIT_OK;
}

/* `mapping test --diff OLD.yaml NEW.yaml [ENVELOPES]`: 0 nothing differs,
 * 1 something does (as diff(1)); errors keep their codes (2, 65, 78). */
static int cli_test_diff(int argc, char **argv, cdc_err_t *err)
{
    cdc_wide_diff_t st;
    int rc;

    if (argc < 2 || argc > 3) {
        if (argc < 2)
            cdc_err_set(err, CDC_EXIT_USAGE, 0, "mapping test --diff needs "
                        "the OLD and the NEW mapping");
        else
            cdc_err_set(err, CDC_EXIT_USAGE, 0, "mapping test --diff: "
                        "unexpected argument '%s'", argv[3]);
        cdc_err_hint(err, "autoglm-cdc mapping test --diff old.yaml new.yaml "
                     "changes.jsonl");
        return CDC_EXIT_USAGE;
    }
    rc = cdc_map_test_diff(argv[0], argv[1], argc > 2 ? argv[2] : NULL,
                           stdout, 0, &st, err);
    /* 1 means "differs": an error never exits 1 (every error here has
     * its own code; one without is bad input) */
    if (rc < 0)
        return err->code && err->code != CDC_EXIT_FAIL ? err->code
                                                        : CDC_EXIT_DATA;
    return rc ? CDC_EXIT_FAIL : CDC_EXIT_OK;
}

int cdc_cmd_mapping_test(const cdc_cmd_ctx_t *cx, int argc, char **argv,
                         cdc_err_t *err)
{
    if (cdc_conf_get(cx->opts, "diff", NULL))
        return cli_test_diff(argc, argv, err);
    return cdc_map_cli_test(cx->conf, argc, argv, err);
}

/* ---- validate ------------------------------------------------------------ */

static const char *const mt_names[] = {"text", "bigint", "numeric", "double",
                                       "boolean", "timestamptz", "date",
                                       "jsonb"};

/* PostgreSQL type names (format_type) compatible with a field type */
static int pg_type_ok(cdc_mtype_t t, const char *pg)
{
    switch (t) {
    case CDC_MT_TEXT:
        return !strcmp(pg, "text") || !strncmp(pg, "character", 9) ||
               !strcmp(pg, "citext");
    case CDC_MT_INT:
        return !strcmp(pg, "bigint") || !strcmp(pg, "integer") ||
               !strcmp(pg, "smallint") || !strncmp(pg, "numeric", 7);
    case CDC_MT_DECIMAL:
        return !strncmp(pg, "numeric", 7);
    case CDC_MT_DOUBLE:
        return !strcmp(pg, "double precision") || !strcmp(pg, "real") ||
               !strncmp(pg, "numeric", 7);
    case CDC_MT_BOOL:
        return !strcmp(pg, "boolean");
    case CDC_MT_TIMESTAMP:
        return !strncmp(pg, "timestamp", 9);
    case CDC_MT_DATE:
        return !strcmp(pg, "date");
    case CDC_MT_JSON:
        return !strcmp(pg, "jsonb") || !strcmp(pg, "json");
    }
    return 0;
}

typedef struct colset {
    char **names, **types;
    int n;
} colset_t;

static void colset_free(colset_t *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->names[i]);
        free(c->types[i]);
    }
    free(c->names);
    free(c->types);
    memset(c, 0, sizeof(*c));
}

/* columns of schema.table; 0 found, 1 no such table, -1 error */
static int pg_columns(PGconn *pg, const char *schema, const char *table,
                      colset_t *out, cdc_err_t *err)
{
    const char *params[2] = {schema && *schema ? schema : "public", table};
    PGresult *r = PQexecParams(
        pg,
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 "
        "AND NOT a.attisdropped ORDER BY a.attnum",
        2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, 0, "cannot read the schema of "
                    "%s.%s: %s", params[0], table, PQerrorMessage(pg));
        PQclear(r);
        return -1;
    }
    memset(out, 0, sizeof(*out));
    out->n = PQntuples(r);
    out->names = cdc_xcalloc((size_t)out->n + 1, sizeof(char *));
    out->types = cdc_xcalloc((size_t)out->n + 1, sizeof(char *));
    for (int i = 0; i < out->n; i++) {
        out->names[i] = cdc_xstrdup(PQgetvalue(r, i, 0));
        out->types[i] = cdc_xstrdup(PQgetvalue(r, i, 1));
    }
    PQclear(r);
    return out->n ? 0 : 1;
}

static int problem(int *nprob, const char *where, const char *fmt, ...)
    CDC_PRINTF(3, 4);
static int problem(int *nprob, const char *where, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", where);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    (*nprob)++;
    return 0;
}

/* MySQL column types (information_schema COLUMN_TYPE) per field type */
static int my_type_ok(cdc_mtype_t t, const char *ty)
{
    switch (t) {
    case CDC_MT_TEXT:
        return strstr(ty, "char") || strstr(ty, "text");
    case CDC_MT_INT:
        return strstr(ty, "int") || !strncmp(ty, "decimal", 7);
    case CDC_MT_DECIMAL:
        return !strncmp(ty, "decimal", 7);
    case CDC_MT_DOUBLE:
        return !strncmp(ty, "double", 6) || !strncmp(ty, "float", 5) ||
               !strncmp(ty, "decimal", 7);
    case CDC_MT_BOOL:
        return !strncmp(ty, "tinyint", 7) || !strcmp(ty, "bit(1)");
    case CDC_MT_TIMESTAMP:
        return !strncmp(ty, "datetime", 8) || !strncmp(ty, "timestamp", 9);
    case CDC_MT_DATE:
        return !strcmp(ty, "date");
    case CDC_MT_JSON:
        return strstr(ty, "text") || !strcmp(ty, "json");
    }
    return 0;
}

/* Broad class of a source column type (PostgreSQL or MySQL spelling). */
enum { SC_NUM, SC_BOOL, SC_TEXT, SC_TIME, SC_JSON, SC_BYTES, SC_OTHER };

static int src_class(const char *ty)
{
    if (!strncmp(ty, "tinyint(1)", 10) || !strcmp(ty, "boolean"))
        return SC_BOOL;
    if (strstr(ty, "int") || !strncmp(ty, "numeric", 7) ||
        !strncmp(ty, "decimal", 7) || !strncmp(ty, "double", 6) ||
        !strncmp(ty, "float", 5) || !strcmp(ty, "real") ||
        !strncmp(ty, "year", 4) || !strncmp(ty, "bit", 3))
        return SC_NUM;
    if (strstr(ty, "char") || strstr(ty, "text") || !strncmp(ty, "enum", 4) ||
        !strncmp(ty, "set(", 4) || !strcmp(ty, "uuid") || !strcmp(ty, "citext"))
        return SC_TEXT;
    if (!strncmp(ty, "timestamp", 9) || !strncmp(ty, "datetime", 8) ||
        !strcmp(ty, "date"))
        return SC_TIME;
    if (!strncmp(ty, "json", 4))
        return SC_JSON;
    if (strstr(ty, "blob") || strstr(ty, "binary") || !strcmp(ty, "bytea"))
        return SC_BYTES;
    return SC_OTHER;
}

/* Integer digits a source integer type can have; 0 if not an integer. */
static int int_digits(const char *ty)
{
    static const struct { const char *name; int d; } t[] = {
        {"tinyint", 3}, {"smallint", 5}, {"mediumint", 8}, {"bigint", 19},
        {"integer", 10}, {"int", 10}, {"year", 4},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (!strncmp(ty, t[i].name, strlen(t[i].name)))
            return t[i].d + (!strcmp(t[i].name, "bigint") &&
                             strstr(ty, "unsigned") != NULL);
    return 0;
}

/* decimal(p,s) / numeric(p,s): 1 with *p, *s; 0 for an unbounded
 * numeric; -1 if ty is no decimal type. */
static int dec_type(const char *ty, int *p, int *s)
{
    const char *par = strchr(ty, '(');

    if (strncmp(ty, "decimal", 7) && strncmp(ty, "numeric", 7))
        return -1;
    *p = *s = 0;
    if (!par)
        return 0;
    if (sscanf(par, "(%d,%d)", p, s) < 1)
        return 0;
    return 1;
}

/*
 * Can a column of source type ty, copied as is, feed field f without
 * losing or refusing values?  NULL if so, else why not (in why).
 */
static const char *src_fit(const cdc_map_field_t *f, const char *ty,
                           char *why, size_t n)
{
    int c = src_class(ty), ip = int_digits(ty), p = 0, s = 0;
    int dec = dec_type(ty, &p, &s);
    int approx = !strncmp(ty, "double", 6) || !strncmp(ty, "float", 5) ||
                 !strcmp(ty, "real");

    if (c == SC_BOOL)
        ip = 1;
    switch (f->type) {
    case CDC_MT_TEXT:
        if (c == SC_BYTES)
            return snprintf(why, n, "binary data is not text"), why;
        return NULL;
    case CDC_MT_BOOL:
        if (c == SC_TEXT)
            return snprintf(why, n, "text values other than true/false/"
                            "yes/no/on/off/1/0 stop the run"), why;
        return c == SC_NUM || c == SC_BOOL || c == SC_OTHER
                   ? NULL : (snprintf(why, n, "not a boolean"), why);
    case CDC_MT_INT:
    case CDC_MT_DECIMAL:
    case CDC_MT_DOUBLE:
        if (c == SC_TEXT)
            return snprintf(why, n, "text values that are not numbers stop "
                            "the run"), why;
        if (c != SC_NUM && c != SC_BOOL && c != SC_OTHER)
            return snprintf(why, n, "not a number"), why;
        if (c == SC_OTHER)
            return NULL;
        if (f->type == CDC_MT_INT) {
            if (approx || (dec >= 0 && s > 0))
                return snprintf(why, n, "fractions would be rounded away"),
                       why;
            if (dec == 0 || (dec > 0 && p - s > 18) || ip > 19 ||
                (ip == 20))
                return snprintf(why, n, "values may exceed the 64-bit "
                                "range"), why;
            return NULL;
        }
        if (f->type == CDC_MT_DOUBLE) {
            if ((dec > 0 && p > 15) || dec == 0 || ip > 15)
                return snprintf(why, n, "a double keeps 15 significant "
                                "digits; longer values would be altered"),
                       why;
            return NULL;
        }
        if (!f->precision)
            return NULL; /* an unbounded numeric holds any number */
        if (approx)
            return snprintf(why, n, "approximate values may need more than "
                            "numeric(%d,%d) holds", f->precision, f->scale),
                   why;
        if (dec == 0)
            return snprintf(why, n, "an unbounded numeric may hold more "
                            "digits than numeric(%d,%d)", f->precision,
                            f->scale), why;
        if (dec > 0 && s > f->scale)
            return snprintf(why, n, "%d decimals would be rounded to %d", s,
                            f->scale), why;
        if ((dec > 0 ? p - s : ip) > f->precision - f->scale)
            return snprintf(why, n, "%d integer digits do not fit the %d of "
                            "numeric(%d,%d)", dec > 0 ? p - s : ip,
                            f->precision - f->scale, f->precision, f->scale),
                   why;
        return NULL;
    case CDC_MT_TIMESTAMP:
        return c == SC_TIME || c == SC_NUM || c == SC_TEXT || c == SC_OTHER
                   ? NULL : (snprintf(why, n, "not a time"), why);
    case CDC_MT_DATE:
        return c == SC_TIME || c == SC_TEXT || c == SC_OTHER
                   ? NULL : (snprintf(why, n, "not a date"), why);
    case CDC_MT_JSON:
        return c == SC_JSON || c == SC_TEXT || c == SC_OTHER
                   ? NULL : (snprintf(why, n, "not JSON"), why);
    }
    return NULL;
}

typedef int (*colfetch_t)(void *conn, const char *schema, const char *table,
                          colset_t *out, cdc_err_t *err);

static int pg_fetch(void *conn, const char *schema, const char *table,
                    colset_t *out, cdc_err_t *err)
{
    return pg_columns(conn, schema, table, out, err);
}

static int my_fetch(void *conn, const char *db, const char *table,
                    colset_t *out, cdc_err_t *err)
{
    MYSQL *m = conn;
    char q[1200], e1[300], e2[300];
    MYSQL_RES *r;
    MYSQL_ROW row;

    if (strlen(db) > 140 || strlen(table) > 140) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "name too long");
        return -1;
    }
    mysql_real_escape_string(m, e1, db, (unsigned long)strlen(db));
    mysql_real_escape_string(m, e2, table, (unsigned long)strlen(table));
    snprintf(q, sizeof(q), "SELECT COLUMN_NAME, COLUMN_TYPE FROM "
             "information_schema.COLUMNS WHERE TABLE_SCHEMA = '%s' AND "
             "TABLE_NAME = '%s' ORDER BY ORDINAL_POSITION", e1, e2);
    if (mysql_query(m, q) || !(r = mysql_store_result(m))) {
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, 0, "cannot read the schema of "
                    "%s.%s: %s", db, table, mysql_error(m));
        return -1;
    }
    memset(out, 0, sizeof(*out));
    out->names = cdc_xcalloc(mysql_num_rows(r) + 1, sizeof(char *));
    out->types = cdc_xcalloc(mysql_num_rows(r) + 1, sizeof(char *));
    while ((row = mysql_fetch_row(r))) {
        out->names[out->n] = cdc_xstrdup(row[0] ? row[0] : "");
        out->types[out->n++] = cdc_xstrdup(row[1] ? row[1] : "");
    }
    mysql_free_result(r);
    return out->n ? 0 : 1;
}

static void check_target(colfetch_t fetch, void *conn, int mysql,
                         const char *db, const cdc_map_target_t *t, int *nprob,
                         int *ok_tables, cdc_err_t *err)
{
    colset_t cs;
    const char *schema = mysql ? db : (*t->schema ? t->schema : "public");
    int r;

    /* MySQL's DECIMAL is narrower than PostgreSQL's numeric */
    for (uint32_t i = 0; mysql && i < t->nfields; i++)
        if (t->fields[i].type == CDC_MT_DECIMAL &&
            (t->fields[i].precision > 65 || t->fields[i].scale > 30))
            problem(nprob, t->fields[i].where, "field '%s' is %s, but a "
                    "MySQL DECIMAL holds at most 65 digits and 30 decimals",
                    t->fields[i].name, t->fields[i].sqltype);
    r = fetch(conn, schema, t->table, &cs, err);
    if (r < 0) {
        problem(nprob, t->where, "%s", err->msg);
        return;
    }
    if (r == 1) {
        /* the sinks create missing tables: not an error */
        printf("target %s: table %s.%s does not exist yet (the %s sink "
               "creates it)\n", t->name, schema, t->table,
               mysql ? "mysql" : "postgres");
        colset_free(&cs);
        return;
    }
    (*ok_tables)++;
    for (uint32_t i = 0; i < t->nfields; i++) {
        const cdc_map_field_t *f = &t->fields[i];
        int found = -1;
        for (int c = 0; c < cs.n; c++)
            if (!strcmp(cs.names[c], f->name))
                found = c;
        if (found < 0) {
            const char *s = cdc_map_suggest(f->name, (const char *const *)cs.names,
                                            cs.n);
            problem(nprob, f->where, "target table %s.%s has no column '%s'%s%s%s",
                    schema, t->table, f->name, s ? " (did you mean '" : "",
                    s ? s : "", s ? "'?)" : "");
        } else if (!(mysql ? my_type_ok(f->type, cs.types[found])
                           : pg_type_ok(f->type, cs.types[found])))
            problem(nprob, f->where, "type mismatch: field '%s' is %s but "
                    "column %s.%s is %s", f->name, f->sqltype, t->table,
                    f->name, cs.types[found]);
    }
    {
        int prov = 0;
        for (int c = 0; c < cs.n; c++)
            prov |= !strcmp(cs.names[c], "_provenance") ||
                    (!mysql && !strncmp(cs.names[c], "_r_", 3));
        if (!prov)
            problem(nprob, t->where, "target table %s lacks the _provenance "
                    "column%s", t->table, mysql ? "" : " (or the rank "
                    "columns _r_<field> the PostgreSQL sink creates)");
    }
    colset_free(&cs);
}

static void check_source(colfetch_t fetch, void *conn,
                         const cdc_map_mapping_t *mp, int *nprob, int *ok,
                         cdc_err_t *err)
{
    colset_t cs;
    int r = fetch(conn, mp->db, mp->table, &cs, err);
    if (r < 0) {
        problem(nprob, mp->where, "%s", err->msg);
        return;
    }
    if (r == 1) {
        problem(nprob, mp->where, "source table %s.%s does not exist", mp->db,
                mp->table);
        colset_free(&cs);
        return;
    }
    (*ok)++;
    for (int pass = 0; pass < 2; pass++) {
        uint32_t n = pass ? mp->nfields : mp->nkeys;
        const cdc_map_assign_t *as = pass ? mp->fields : mp->keys;
        for (uint32_t i = 0; i < n; i++) {
            int nc;
            const char *const *cols;
            const char *bare;
            if (!as[i].expr)
                continue;
            cols = cdc_expr_columns(as[i].expr, &nc);
            for (int k = 0; k < nc; k++) {
                int found = -1;
                for (int c = 0; c < cs.n && found < 0; c++)
                    if (!strcmp(cs.names[c], cols[k]))
                        found = c;
                if (found < 0) {
                    const char *s = cdc_map_suggest(
                        cols[k], (const char *const *)cs.names, cs.n);
                    problem(nprob, as[i].where, "source table %s.%s has no "
                            "column '%s'%s%s%s", mp->db, mp->table, cols[k],
                            s ? " (did you mean '" : "", s ? s : "",
                            s ? "'?)" : "");
                    continue;
                }
                /* a column copied as is must fit the field's type */
                bare = cdc_expr_column(as[i].expr);
                if (bare && !as[i].nmap && !as[i].def) {
                    const cdc_map_field_t *f = &mp->target->fields[as[i].field];
                    char why[200];
                    if (src_fit(f, cs.types[found], why, sizeof(why)))
                        problem(nprob, as[i].where, "type mismatch: column "
                                "%s.%s.%s is %s, field '%s' is %s: %s (change the field's type, or convert with an expression)",
                                mp->db, mp->table, cols[k], cs.types[found],
                                f->name, f->sqltype, why);
                }
            }
        }
    }
    colset_free(&cs);
}

/* The connection of a prefix (mysql, mysql_sink), as the source and the
 * sink make it (connectors/mysql/conn.h); db gets the DSN's database. */
static MYSQL *my_open(const cdc_conf_t *conf, const char *prefix,
                      const char *what, char *db, size_t dbn, cdc_err_t *err)
{
    cdc_my_conf_t cc;
    char label[96];
    MYSQL *m;

    db[0] = '\0';
    if (cdc_my_conf_load(&cc, conf, prefix, err) < 0)
        return NULL;
    snprintf(db, dbn, "%s", cc.db ? cc.db : "");
    snprintf(label, sizeof(label), "cannot connect to the %s database", what);
    m = cdc_my_connect(&cc, NULL, 0, 0, CDC_MY_NO_DB, label, err);
    cdc_my_conf_free(&cc);
    return m;
}

static PGconn *pg_open(const char *dsn, const char *what, cdc_err_t *err)
{
    PGconn *pg = PQconnectdb(dsn);
    cdc_pg_log_notices(pg, "validate");
    if (PQstatus(pg) != CONNECTION_OK) {
        char *red = cdc_conf_redact(dsn);
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                    "cannot connect to the %s database (%s): %s", what, red,
                    PQerrorMessage(pg));
        free(red);
        {
            size_t l = strlen(err->msg);
            while (l && err->msg[l - 1] == '\n')
                err->msg[--l] = '\0';
        }
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

/* What a mapping writes: its keys, fields, filter and delete rule. */
static void print_mapping(const cdc_map_mapping_t *mp)
{
    const cdc_map_target_t *t = mp->target;
    static const char *const dels[] = {"clear its fields", "delete the row",
                                       "ignored"};
    static const char *const rules[] = {"latest", "priority", "weighted",
                                        "ordered", "vote", "weighted_mean"};
    printf("mapping %s: %s %s.%s -> %s (%s%s%s)%s\n", mp->name,
           mp->source->id, mp->db, mp->table, t->name,
           *t->schema ? t->schema : "", *t->schema ? "." : "", t->table,
           mp->lookup ? " [lookup: set-based update]" : "");
    for (uint32_t k = 0; k < mp->nkeys; k++)
        printf("  %s %-20s <- %s\n", mp->lookup ? "match" : "key  ",
               t->fields[mp->keys[k].field].name,
               mp->keys[k].text ? mp->keys[k].text : "");
    for (uint32_t k = 0; k < mp->nfields; k++) {
        const cdc_map_assign_t *a = &mp->fields[k];
        const cdc_map_field_t *f = &t->fields[a->field];
        printf("  field %-20s <- %s%s%s  (%s, %s%s%s%s%s)\n", f->name,
               a->text ? a->text : "", a->nmap ? " mapped" : "",
               a->def ? " default" : "", f->sqltype,
               rules[f->rule], f->nowners > 1 ? " among " : "",
               f->nowners > 1 ? "owners" : "",
               f->group ? ", group " : "", f->group ? f->group_name : "");
    }
    for (uint32_t k = 0; k < mp->naggs; k++) {
        const cdc_map_field_t *f = &t->fields[mp->aggs[k].field];
        char ct[200];
        cdc_map_contrib_table(t, ct, sizeof(ct));
        printf("  aggregate %-16s <- %s(%s)  (%s, per key from %s%s%s)\n",
               f->name, cdc_map_agg_name(f->agg), mp->aggs[k].text,
               f->sqltype, *t->schema ? t->schema : "", *t->schema ? "." : "",
               ct);
    }
    if (mp->ninclude)
        printf("  columns included by name: %s%s\n", mp->include[0],
               mp->ninclude > 1 ? ", ..." : "");
    if (mp->filter)
        printf("  filter: yes\n");
    if (mp->order_by)
        printf("  order_by: yes (fields with rule ordered)\n");
    if (!mp->lookup && mp->on_delete == CDC_DEL_ROW) {
        char tomb[200];
        cdc_map_tombstone_table(t, tomb, sizeof(tomb));
        printf("  on delete: %s (tombstones in %s%s%s, created by the "
               "sink)\n", dels[mp->on_delete], *t->schema ? t->schema : "",
               *t->schema ? "." : "", tomb);
    } else if (!mp->lookup && (mp->nfields || mp->ninclude || !mp->naggs))
        printf("  on delete: %s\n", dels[mp->on_delete]);
    if (mp->naggs)
        printf("  on delete: the row's contribution to the aggregates goes\n");
}

int cdc_map_cli_validate(const cdc_conf_t *conf, int argc, char **argv,
                         cdc_err_t *err)
{
    const char *files = cdc_conf_get(conf, "mapping.files", NULL);
    const char *sink_dsn = cdc_conf_get(conf, "postgres_sink.dsn", NULL);
    const cdc_source_ops_t *src_ops =
        cdc_source_find(cdc_conf_get(conf, "source.type", ""));
    const char *src_type = src_ops ? src_ops->name : ""; /* no alias */
    const char *src_dsn = cdc_conf_get(conf, "postgres.dsn", NULL);
    const char *app = cdc_conf_app_id(conf);
    cdc_map_t *m;
    int nprob = 0, ok_tables = 0;

    if (argc > 0)
        files = argv[0]; /* `validate FILE` checks that file alone */
    if (!files) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "no mapping files to validate");
        cdc_err_hint(err, "set mapping.files in the pipeline YAML (or give "
                     "the file: autoglm-cdc validate FILE)");
        return CDC_EXIT_CONFIG;
    }
    m = cdc_map_load(files, err);
    if (!m)
        return err->code;
    if (sink_dsn && *sink_dsn) {
        PGconn *pg = pg_open(sink_dsn, "postgres sink", err);
        if (!pg) {
            cdc_map_destroy(m);
            return err->code;
        }
        for (uint32_t i = 0; i < m->ntargets; i++)
            check_target(pg_fetch, pg, 0, NULL, &m->targets[i], &nprob,
                         &ok_tables, err);
        PQfinish(pg);
    }
    if (cdc_conf_get(conf, "mysql_sink.dsn", NULL) &&
        cdc_map_refuse_per_source(m, NULL, "the MySQL wide sink "
                                  "(mysql_sink.dsn)", err)) {
        cdc_map_destroy(m);
        return err->code;
    }
    if (cdc_conf_get(conf, "mysql_sink.dsn", NULL)) {
        char db[128];
        MYSQL *my;
        int grouped = 0;
        /* field groups need the candidates table: PostgreSQL only */
        for (uint32_t i = 0; i < m->ntargets; i++)
            if (m->targets[i].ngroups && ++grouped)
                problem(&nprob, m->targets[i].groups[0].where, "target '%s' "
                        "has field group '%s', which the MySQL wide sink "
                        "(mysql_sink.dsn) does not support: write the target "
                        "with the PostgreSQL wide sink (postgres_sink.dsn), "
                        "or remove 'group:' from its fields",
                        m->targets[i].name, m->targets[i].groups[0].name);
        /* the MySQL wide sink keeps no aggregates */
        for (uint32_t i = 0; i < m->ntargets; i++) {
            cdc_err_t e = {0};
            if (!m->targets[i].aggregates)
                continue;
            cdc_map_agg_refuse(&m->targets[i], "MySQL", &e);
            fprintf(stderr, "%s\n  hint: %s\n", e.msg, e.hint);
            nprob++;
        }
        my = grouped ? NULL : my_open(conf, "mysql_sink", "mysql sink", db,
                                      sizeof(db), err);
        if (grouped)
            goto checked_mysql;
        if (!my) {
            cdc_map_destroy(m);
            return err->code;
        }
        for (uint32_t i = 0; i < m->ntargets; i++)
            check_target(my_fetch, my, 1, db, &m->targets[i], &nprob,
                         &ok_tables, err);
        mysql_close(my);
    }
checked_mysql:
    if (src_dsn && *src_dsn && !strcmp(src_type, "postgres")) {
        PGconn *pg = pg_open(src_dsn, "postgres source", err);
        if (!pg) {
            cdc_map_destroy(m);
            return err->code;
        }
        for (uint32_t i = 0; i < m->nmappings; i++)
            if (!strcmp(m->mappings[i].source->id, app))
                check_source(pg_fetch, pg, &m->mappings[i], &nprob,
                             &ok_tables, err);
        PQfinish(pg);
    }
    if (!strcmp(src_type, "mysql") &&
        (cdc_conf_get(conf, "mysql.dsn", NULL) ||
         cdc_conf_get(conf, "mysql.host", NULL))) {
        char db[128];
        MYSQL *my = my_open(conf, "mysql", "mysql source", db, sizeof(db),
                            err);
        if (!my) {
            cdc_map_destroy(m);
            return err->code;
        }
        for (uint32_t i = 0; i < m->nmappings; i++)
            if (!strcmp(m->mappings[i].source->id, app))
                check_source(my_fetch, my, &m->mappings[i], &nprob,
                             &ok_tables, err);
        mysql_close(my);
    }
    /* what each mapping writes */
    for (uint32_t i = 0; i < m->nmappings; i++)
        print_mapping(&m->mappings[i]);
    (void)mt_names;
    {
        uint32_t nm = m->nmappings, nt = m->ntargets;
        cdc_map_destroy(m);
        if (!nprob)
            printf("ok: %u mapping%s onto %u target%s%s\n", nm,
                   nm == 1 ? "" : "s", nt, nt == 1 ? "" : "s",
                   ok_tables ? ", checked against the live schemas" : "");
    }
    if (nprob) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%d problem%s found", nprob,
                    nprob > 1 ? "s" : "");
        cdc_err_hint(err, "fix the mapping files or the schemas named above");
        return CDC_EXIT_CONFIG;
    }
    return CDC_EXIT_OK;
}
