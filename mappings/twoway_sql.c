/* SPDX-License-Identifier: Apache-2.0 */
/*
 * twoway_sql.c - generate the conflict triggers of two-way tables from
 * the mapping set (mappings/twoway_sql.h, docs/TWO-WAY.md), and the
 * `mapping triggers` / `mapping reverse` commands.
 *
 * Invariant: the rank a trigger writes is the rank cdc_twoway_rank()
 * computes for the same rule, source and time.  The generator does not
 * restate the rank layout: it calls cdc_twoway_rank() with t = 0 and
 * t = INT64_MAX, finds the 16 hex digits of the time slot where the two
 * differ, and hands the SQL the constant text before and after it.  The
 * SQL only fills the slot: '8' || 15 hex digits of t (t >= 0, < 2^60).
 *
 * Everything derived from the mapping files (schema, table, field and
 * source names) reaches the SQL through the quoting helpers below, and
 * comments go through comment_text(), which drops control characters (a
 * newline would end a `--` comment).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/log.h"
#include "mappings/map_int.h"
#include "mappings/reverse.h"
#include "mappings/twoway_sql.h"

#define T_SLOT 16 /* hex digits of the time part of a rank */

/* ---- quoting --------------------------------------------------------------- */

static void pg_ident(cdc_buf_t *b, const char *s)
{
    cdc_buf_quoted(b, s, '"');
}

/* 'x' with '' doubled; E'x' (\ doubled too) when x holds a backslash,
 * so the text is the same whatever standard_conforming_strings says */
static void pg_lit(cdc_buf_t *b, const char *s)
{
    int bs = strchr(s, '\\') != NULL;
    cdc_buf_puts(b, bs ? "E'" : "'");
    for (; *s; s++) {
        if (*s == '\'' || (bs && *s == '\\'))
            cdc_buf_putc(b, *s);
        cdc_buf_putc(b, *s);
    }
    cdc_buf_putc(b, '\'');
}

static void my_ident(cdc_buf_t *b, const char *s)
{
    cdc_buf_quoted(b, s, '`');
}

/* 'x' with '' doubled; a text with a backslash or a control character
 * is written as a hex literal, whose meaning does not depend on
 * NO_BACKSLASH_ESCAPES */
static void my_lit(cdc_buf_t *b, const char *s)
{
    int plain = 1;
    for (const unsigned char *c = (const unsigned char *)s; *c && plain; c++)
        plain = *c != '\\' && *c >= 0x20 && *c != 0x7f;
    if (!plain) {
        cdc_buf_puts(b, "CONVERT(X'");
        for (const unsigned char *c = (const unsigned char *)s; *c; c++)
            cdc_buf_printf(b, "%02x", *c);
        cdc_buf_puts(b, "' USING utf8mb4)");
        return;
    }
    cdc_buf_putc(b, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            cdc_buf_putc(b, '\'');
        cdc_buf_putc(b, *s);
    }
    cdc_buf_putc(b, '\'');
}

/* a JSON path member: the name as a JSON string ("a\"b"), which both
 * MariaDB and MySQL accept after "$." */
static void json_member(cdc_buf_t *b, const char *s)
{
    cdc_buf_putc(b, '"');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            cdc_buf_putc(b, '\\');
            cdc_buf_putc(b, (char)*c);
        } else if (*c < 0x20)
            cdc_buf_printf(b, "\\u%04x", *c);
        else
            cdc_buf_putc(b, (char)*c);
    }
    cdc_buf_putc(b, '"');
}

/* the literal '$."name"' + rest (rest: "", ".t", ".r", ".s") */
static void my_path(cdc_buf_t *b, const char *name, const char *rest)
{
    cdc_buf_t p = CDC_BUF_INIT;
    cdc_buf_puts(&p, "$.");
    json_member(&p, name);
    cdc_buf_puts(&p, rest);
    my_lit(b, p.p);
    cdc_buf_free(&p);
}

/* names in comments: control characters become '?' */
static void comment_text(cdc_buf_t *b, const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        cdc_buf_putc(b, *c < 0x20 || *c == 0x7f ? '?' : (char)*c);
}

/* schema.table (or table) of a target, for comments */
static void comment_table(cdc_buf_t *b, const cdc_map_target_t *t)
{
    if (*t->schema) {
        comment_text(b, t->schema);
        cdc_buf_putc(b, '.');
    }
    comment_text(b, t->table);
}

static void qual(cdc_buf_t *b, int pg, const char *schema, const char *name)
{
    if (schema && *schema) {
        (pg ? pg_ident : my_ident)(b, schema);
        cdc_buf_putc(b, '.');
    }
    (pg ? pg_ident : my_ident)(b, name);
}

static void obj_name(cdc_buf_t *b, int pg, const char *table,
                     const char *what);

/* ---- the two-way tables of a mapping set ---------------------------------- */

static const char *const rule_names[] = {"latest", "priority", "weighted",
                                         "ordered", "vote", "weighted_mean"};

typedef struct twfield {
    const cdc_map_field_t *f;              /* of the target over the table */
    char pre[CDC_MAP_RANK_LEN + 1];        /* rank text before the time */
    char suf[CDC_MAP_RANK_LEN + 1];        /* and after it */
} twfield_t;

typedef struct twtable {
    const cdc_map_target_t *t;             /* the target over the table */
    const cdc_map_mapping_t *reader;       /* reads it: the edits' source */
    cdc_twsql_engine_t engine;
    twfield_t *fields;
    uint32_t nfields;
    twfield_t *dfields;                    /* deletes: every non-key field */
    uint32_t ndfields;                     /* 0: deletes are not two-way */
    cdc_buf_t notes;                       /* "-- skipped: ..." lines */
} twtable_t;

cdc_twsql_engine_t cdc_twsql_engine(const char *w)
{
    if (!w)
        return CDC_TWSQL_UNKNOWN;
    if (!strcmp(w, "mysql") || !strcmp(w, "mariadb"))
        return CDC_TWSQL_MYSQL;
    if (!strcmp(w, "postgres") || !strcmp(w, "postgresql") ||
        !strcmp(w, "pg"))
        return CDC_TWSQL_POSTGRES;
    return CDC_TWSQL_UNKNOWN;
}

/* does mapping mp read the physical table of target t? */
static int reads_table(const cdc_map_mapping_t *mp, const cdc_map_target_t *t)
{
    if (strcmp(mp->table, t->table))
        return 0;
    return !*t->schema || !mp->db || !*mp->db || !strcmp(mp->db, t->schema);
}

static int same_table(const cdc_map_target_t *a, const cdc_map_target_t *b)
{
    return !strcmp(a->table, b->table) && !strcmp(a->schema, b->schema);
}

/* The rank of rule r for source s as prefix || T || suffix. */
static void rank_split(cdc_mrule_t r, const cdc_map_source_t *s, char *pre,
                       char *suf)
{
    char a[CDC_MAP_RANK_LEN + 1], z[CDC_MAP_RANK_LEN + 1];
    size_t off = 0, n;

    cdc_twoway_rank(r, s->priority, s->weight, s->id, 0, a);
    cdc_twoway_rank(r, s->priority, s->weight, s->id, INT64_MAX, z);
    n = strlen(a);
    while (off < n && a[off] == z[off])
        off++;
    if (off + T_SLOT > n) /* cannot happen: every rule has a time part */
        off = n - T_SLOT;
    memcpy(pre, a, off);
    pre[off] = '\0';
    memcpy(suf, a + off + T_SLOT, n - off - T_SLOT + 1);
}

static const cdc_map_assign_t *reads_column(const cdc_map_mapping_t *mp,
                                            const char *col)
{
    for (uint32_t i = 0; i < mp->nfields; i++) {
        const char *c = mp->fields[i].expr
                            ? cdc_expr_column(mp->fields[i].expr) : NULL;
        if (c && !strcmp(c, col))
            return &mp->fields[i];
    }
    return NULL;
}

static int writes_field(const cdc_map_t *m, const cdc_map_target_t *t,
                        uint32_t fi, const cdc_map_source_t *not_src)
{
    for (uint32_t i = 0; i < m->nmappings; i++) {
        const cdc_map_mapping_t *mp = &m->mappings[i];
        if (mp->target != t || mp->lookup || mp->source == not_src)
            continue;
        for (uint32_t k = 0; k < mp->nfields; k++)
            if (mp->fields[k].field == fi)
                return 1;
    }
    return 0;
}

static cdc_twsql_engine_t engine_of(const cdc_map_t *m,
                                    const cdc_twsql_opts_t *o,
                                    const twtable_t *tt)
{
    if (!o || !o->app)
        return CDC_TWSQL_UNKNOWN;
    if (o->src && !strcmp(tt->reader->source->id, o->app))
        return o->src;
    for (uint32_t i = 0; o->sink && i < m->nmappings; i++)
        if (!strcmp(m->mappings[i].source->id, o->app) &&
            same_table(m->mappings[i].target, tt->t))
            return o->sink;
    return CDC_TWSQL_UNKNOWN;
}

/* Fill tt for target t; 0 if t's table is not two-way. */
static int find_twoway(const cdc_map_t *m, const cdc_map_target_t *t,
                       twtable_t *tt)
{
    memset(tt, 0, sizeof(*tt));
    tt->t = t;
    for (uint32_t i = 0; i < m->nmappings && !tt->reader; i++) {
        const cdc_map_mapping_t *mp = &m->mappings[i];
        if (!mp->lookup && mp->target != t && reads_table(mp, t))
            tt->reader = mp;
    }
    if (!tt->reader)
        return 0;
    for (uint32_t fi = 0; fi < t->nfields; fi++) {
        const cdc_map_field_t *f = &t->fields[fi];
        const cdc_map_assign_t *a;
        const cdc_map_field_t *back;
        if (f->is_key || !writes_field(m, t, fi, tt->reader->source) ||
            !(a = reads_column(tt->reader, f->name)))
            continue;
        back = &tt->reader->target->fields[a->field];
        if (f->per_source || back->per_source) {
            /* the result is not one source's value with a rank */
            cdc_buf_puts(&tt->notes, "-- skipped: ");
            comment_text(&tt->notes, f->name);
            cdc_buf_puts(&tt->notes, " (rule vote / weighted_mean, or "
                         "weighted with confidence: the value is computed "
                         "from every source's value; two-way fields use "
                         "latest, priority or weighted)\n");
            continue;
        }
        if (f->rule == CDC_RULE_ORDERED || back->rule == CDC_RULE_ORDERED) {
            /* a direct edit has no order value to rank with */
            cdc_buf_puts(&tt->notes, "-- skipped: ");
            comment_text(&tt->notes, f->name);
            cdc_buf_puts(&tt->notes, " (rule ordered: a direct edit carries "
                         "no order_by value; two-way fields use latest, "
                         "priority or weighted)\n");
            continue;
        }
        if (back->rule != f->rule) {
            cdc_buf_puts(&tt->notes, "-- skipped: ");
            comment_text(&tt->notes, f->name);
            cdc_buf_printf(&tt->notes, " (rule %s here, %s in target ",
                           rule_names[f->rule], rule_names[back->rule]);
            comment_text(&tt->notes, tt->reader->target->name);
            cdc_buf_puts(&tt->notes, "; declare the same rule on both)\n");
            continue;
        }
        tt->fields = realloc(tt->fields, (tt->nfields + 1) * sizeof(*tt->fields));
        if (!tt->fields)
            abort();
        tt->fields[tt->nfields].f = f;
        rank_split(f->rule, tt->reader->source, tt->fields[tt->nfields].pre,
                   tt->fields[tt->nfields].suf);
        tt->nfields++;
    }
    /* row deletes are two-way when this table's reader deletes rows in
     * the other side (on_delete: delete) and the other side deletes rows
     * here (the target keeps <table>_tombstones): a direct delete is then
     * a tombstone with this side's ranks on every non-key field, as the
     * engine makes of a delete it reads */
    if (tt->nfields && t->tombstones &&
        tt->reader->on_delete == CDC_DEL_ROW) {
        tt->dfields = calloc(t->nfields, sizeof(*tt->dfields));
        if (!tt->dfields)
            abort();
        for (uint32_t fi = 0; fi < t->nfields; fi++) {
            twfield_t *d = &tt->dfields[tt->ndfields];
            if (t->fields[fi].is_key)
                continue;
            d->f = &t->fields[fi];
            rank_split(d->f->rule, tt->reader->source, d->pre, d->suf);
            tt->ndfields++;
        }
    }
    return tt->nfields > 0 || tt->notes.len > 0;
}

/* ---- PostgreSQL ------------------------------------------------------------- */

/* TG_ARGV: the source id, then per field: name, rule, rank prefix, rank
 * suffix.  A direct edit (a session without our replication origin) of
 * a field gets the rank prefix || T || suffix, T from the statement's
 * time but at least the stored time + 1 µs; if that rank does not beat
 * the stored one (a higher-priority or higher-weight source owns the
 * value) the edit is undone for that field and a NOTICE says so. */
static const char pg_function_body[] =
    "DECLARE\n"
    "    f text; rule text; t bigint; r text; n jsonb; o jsonb; stored text;\n"
    "BEGIN\n"
    "    IF pg_replication_origin_session_is_setup() THEN\n"
    "        RETURN NEW;             -- one of our sinks: its ranks travel with the values\n"
    "    END IF;\n"
    "    n := to_jsonb(NEW);\n"
    "    o := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) ELSE '{}'::jsonb END;\n"
    "    FOR i IN 0 .. (TG_NARGS - 1) / 4 - 1 LOOP\n"
    "        f := TG_ARGV[1 + 4 * i];\n"
    "        rule := TG_ARGV[2 + 4 * i];\n"
    "        CONTINUE WHEN TG_OP = 'UPDATE' AND n -> f IS NOT DISTINCT FROM o -> f;\n"
    "        CONTINUE WHEN TG_OP = 'INSERT' AND coalesce(n -> f, 'null'::jsonb) = 'null'::jsonb;\n"
    "        t := greatest((extract(epoch FROM clock_timestamp()) * 1000000)::bigint,\n"
    "                      coalesce((o #>> ARRAY['_provenance', f, 't'])::bigint, 0) + 1);\n"
    "        r := TG_ARGV[3 + 4 * i] || '8' || lpad(to_hex(t), 15, '0') || TG_ARGV[4 + 4 * i];\n"
    "        stored := coalesce(o #>> ARRAY['_provenance', f, 'r'], '');\n"
    "        IF r COLLATE \"C\" <= stored COLLATE \"C\" THEN\n"
    "            NEW := jsonb_populate_record(NEW, jsonb_build_object(f, o -> f));\n"
    "            RAISE NOTICE 'autoglm-cdc: % keeps % from % (rule %): this edit ranks lower',\n"
    "                f, o -> f, o #>> ARRAY['_provenance', f, 's'], rule;\n"
    "        ELSE\n"
    "            NEW._provenance := coalesce(NEW._provenance, '{}'::jsonb) ||\n"
    "                jsonb_build_object(f, jsonb_build_object('s', TG_ARGV[0], 't', t, 'r', r));\n"
    "        END IF;\n"
    "    END LOOP;\n"
    "    RETURN NEW;\n"
    "END\n";

/* "RETURNS trigger ... AS <tag> body <tag>;": the dollar tag is one that
 * does not occur in body, so no name inside it can end the body early */
static void pg_function(cdc_buf_t *b, const char *body)
{
    char tag[40];
    unsigned n = 0;

    snprintf(tag, sizeof(tag), "$autoglm_cdc$");
    while (strstr(body, tag))
        snprintf(tag, sizeof(tag), "$autoglm_cdc_%u$", ++n);
    cdc_buf_printf(b, "RETURNS trigger\nLANGUAGE plpgsql SECURITY DEFINER SET "
                      "search_path = pg_catalog, pg_temp AS %s\n", tag);
    cdc_buf_puts(b, body);
    cdc_buf_printf(b, "%s;\n", tag);
}

static void source_comment(cdc_buf_t *b, const twtable_t *tt)
{
    const cdc_map_source_t *s = tt->reader->source;
    cdc_buf_puts(b, "-- ");
    comment_table(b, tt->t);
    cdc_buf_puts(b, ": direct edits rank as source ");
    comment_text(b, s->id);
    cdc_buf_printf(b, " (priority %d, weight %g)\n", s->priority, s->weight);
    for (uint32_t i = 0; i < tt->nfields; i++) {
        cdc_buf_puts(b, "--   ");
        comment_text(b, tt->fields[i].f->name);
        cdc_buf_printf(b, ": rule %s, rank %s || T || %s\n",
                       rule_names[tt->fields[i].f->rule],
                       *tt->fields[i].pre ? tt->fields[i].pre : "''",
                       tt->fields[i].suf);
    }
    if (tt->notes.len)
        cdc_buf_put(b, tt->notes.p, tt->notes.len);
}

static void pg_delete(cdc_buf_t *b, const twtable_t *tt);
static void pg_reinsert(cdc_buf_t *b, const twtable_t *tt);

static void pg_table(cdc_buf_t *b, const twtable_t *tt, int with_function)
{
    const cdc_map_target_t *t = tt->t;

    if (with_function) {
        cdc_buf_puts(b, "CREATE OR REPLACE FUNCTION ");
        qual(b, 1, t->schema, "autoglm_cdc_twoway_stamp");
        cdc_buf_puts(b, "() ");
        pg_function(b, pg_function_body);
        cdc_buf_puts(b, "\n");
    }
    source_comment(b, tt);
    if (!tt->nfields)
        return;
    cdc_buf_puts(b, "ALTER TABLE ");
    qual(b, 1, t->schema, t->table);
    cdc_buf_puts(b, " ADD COLUMN IF NOT EXISTS _provenance jsonb NOT NULL "
                    "DEFAULT '{}';\nDROP TRIGGER IF EXISTS autoglm_cdc_twoway ON ");
    qual(b, 1, t->schema, t->table);
    cdc_buf_puts(b, ";\nCREATE TRIGGER autoglm_cdc_twoway BEFORE INSERT OR "
                    "UPDATE ON ");
    qual(b, 1, t->schema, t->table);
    cdc_buf_puts(b, "\n    FOR EACH ROW EXECUTE FUNCTION ");
    qual(b, 1, t->schema, "autoglm_cdc_twoway_stamp");
    cdc_buf_puts(b, "(\n        ");
    pg_lit(b, tt->reader->source->id);
    for (uint32_t i = 0; i < tt->nfields; i++) {
        const twfield_t *f = &tt->fields[i];
        cdc_buf_puts(b, ",\n        ");
        pg_lit(b, f->f->name);
        cdc_buf_printf(b, ", '%s', '%s', '%s'", rule_names[f->f->rule],
                       f->pre, f->suf);
    }
    cdc_buf_puts(b, ");\n\n");
    if (tt->ndfields) {
        pg_delete(b, tt);
        pg_reinsert(b, tt);
    }
}

/* ---- row deletes ------------------------------------------------------------ */

/* the key column types of <table>_tombstones: as the sinks create it */
static const char *key_type(const cdc_map_field_t *f, int pg, char *buf,
                            size_t n)
{
    switch (f->type) {
    case CDC_MT_INT: return pg ? "bigint" : "BIGINT";
    case CDC_MT_DECIMAL:
        if (pg && !f->precision)
            return "numeric";
        snprintf(buf, n, pg ? "numeric(%d,%d)" : "DECIMAL(%d,%d)",
                 f->precision ? f->precision : 38, f->precision ? f->scale : 10);
        return buf;
    case CDC_MT_DOUBLE: return pg ? "double precision" : "DOUBLE";
    case CDC_MT_BOOL: return pg ? "boolean" : "BOOLEAN";
    case CDC_MT_TIMESTAMP: return pg ? "timestamptz" : "DATETIME(6)";
    case CDC_MT_DATE: return pg ? "date" : "DATE";
    case CDC_MT_JSON: return pg ? "jsonb" : "LONGTEXT";
    default: return pg ? "text" : "VARCHAR(255)";
    }
}

/* CREATE TABLE IF NOT EXISTS <table>_tombstones (keys, _provenance) */
static void tomb_ddl(cdc_buf_t *b, int pg, const cdc_map_target_t *t)
{
    char name[200], tb[40];
    cdc_map_tombstone_table(t, name, sizeof(name));
    cdc_buf_puts(b, "CREATE TABLE IF NOT EXISTS ");
    qual(b, pg, pg && !*t->schema ? "public" : t->schema, name);
    cdc_buf_puts(b, " (");
    for (uint32_t k = 0; k < t->nkey; k++) {
        const cdc_map_field_t *f = &t->fields[t->key[k]];
        (pg ? pg_ident : my_ident)(b, f->name);
        cdc_buf_printf(b, " %s NOT NULL, ", key_type(f, pg, tb, sizeof(tb)));
    }
    cdc_buf_puts(b, pg ? "_provenance jsonb NOT NULL, PRIMARY KEY ("
                       : "`_provenance` LONGTEXT NOT NULL, PRIMARY KEY (");
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_puts(b, k ? ", " : "");
        (pg ? pg_ident : my_ident)(b, t->fields[t->key[k]].name);
    }
    cdc_buf_puts(b, pg ? "));\n" : ")) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
                                   "COLLATE=utf8mb4_bin;\n");
}

/* ARRAY['name', 'x'] (a jsonb path) */
static void pg_path(cdc_buf_t *b, const char *name, const char *x)
{
    cdc_buf_puts(b, "ARRAY[");
    pg_lit(b, name);
    cdc_buf_printf(b, ", '%s']", x);
}

/* x.k1 = <rec>.k1 AND ... (PostgreSQL, alias x of the tombstones table) or
 * `k1` = <rec>.`k1` AND ... (MariaDB/MySQL) over the key columns of t */
static void key_match(cdc_buf_t *b, int pg, const cdc_map_target_t *t,
                      const char *rec)
{
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_puts(b, k ? " AND " : "");
        cdc_buf_puts(b, pg ? "x." : "");
        (pg ? pg_ident : my_ident)(b, t->fields[t->key[k]].name);
        cdc_buf_printf(b, " = %s.", rec);
        (pg ? pg_ident : my_ident)(b, t->fields[t->key[k]].name);
    }
}

/* DECLARE decl BEGIN, nothing for our sinks' sessions (RETURN rec), and
 * tp := the _provenance of rec's key in <table>_tombstones (locked) */
static void pg_tomb_prologue(cdc_buf_t *fb, const twtable_t *tt,
                             const char *decl, const char *rec,
                             const char *why)
{
    const cdc_map_target_t *t = tt->t;
    char name[200];

    cdc_map_tombstone_table(t, name, sizeof(name));
    cdc_buf_printf(fb, "DECLARE\n    %s\nBEGIN\n"
                       "    IF pg_replication_origin_session_is_setup() THEN\n"
                       "        RETURN %s;             -- one of our sinks: %s\n"
                       "    END IF;\n    SELECT x._provenance INTO tp FROM ",
                   decl, rec, why);
    qual(fb, 1, *t->schema ? t->schema : "public", name);
    cdc_buf_puts(fb, " x WHERE ");
    key_match(fb, 1, t, rec);
    cdc_buf_puts(fb, " FOR UPDATE;\n");
}

/* CREATE OR REPLACE FUNCTION <schema>.<table>_2w_<what>() ... body;
 * DROP/CREATE TRIGGER <trigger> <when> ON the table */
static void pg_table_function(cdc_buf_t *b, const twtable_t *tt,
                              const char *what, const char *body,
                              const char *trigger, const char *when)
{
    const cdc_map_target_t *t = tt->t;
    const char *sch = *t->schema ? t->schema : "public";

    cdc_buf_puts(b, "CREATE OR REPLACE FUNCTION ");
    pg_ident(b, sch);
    cdc_buf_putc(b, '.');
    obj_name(b, 1, t->table, what);
    cdc_buf_puts(b, "() ");
    pg_function(b, body);
    cdc_buf_printf(b, "DROP TRIGGER IF EXISTS %s ON ", trigger);
    qual(b, 1, t->schema, t->table);
    cdc_buf_printf(b, ";\nCREATE TRIGGER %s %s ON ", trigger, when);
    qual(b, 1, t->schema, t->table);
    cdc_buf_puts(b, "\n    FOR EACH ROW EXECUTE FUNCTION ");
    pg_ident(b, sch);
    cdc_buf_putc(b, '.');
    obj_name(b, 1, t->table, what);
    cdc_buf_puts(b, "();\n\n");
}

/* A direct DELETE (not one of our sinks) leaves a tombstone: for every
 * non-key field {"s", "t", "r", "d": 1}, t the statement time but at
 * least the stored time + 1 µs (of the row and of a tombstone the key
 * may still have), merged into <table>_tombstones; an entry of higher
 * rank already there stays.  A delete that does not beat a stored value
 * (rules priority/weighted) is refused with an error. */
static void pg_delete(cdc_buf_t *b, const twtable_t *tt)
{
    const cdc_map_target_t *t = tt->t;
    const char *sch = *t->schema ? t->schema : "public";
    char name[200];
    cdc_buf_t fb = CDC_BUF_INIT;

    cdc_map_tombstone_table(t, name, sizeof(name));
    tomb_ddl(b, 1, t);
    pg_tomb_prologue(&fb, tt, "o jsonb; tp jsonb; p jsonb; t bigint; r text; "
                     "now_us bigint;", "OLD", "its tombstones carry their ranks");
    cdc_buf_puts(&fb, "    o := coalesce(OLD._provenance, '{}'::jsonb);\n"
        "    tp := coalesce(tp, '{}'::jsonb);\n"
        "    p := tp;\n"
        "    now_us := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;\n");
    for (uint32_t i = 0; i < tt->ndfields; i++) {
        const twfield_t *f = &tt->dfields[i];
        cdc_buf_puts(&fb, "    -- ");
        comment_text(&fb, f->f->name);
        cdc_buf_printf(&fb, " (rule %s)\n    t := greatest(now_us, coalesce((o #>> ",
                       rule_names[f->f->rule]);
        pg_path(&fb, f->f->name, "t");
        cdc_buf_puts(&fb, ")::bigint, 0) + 1,\n                  coalesce((tp #>> ");
        pg_path(&fb, f->f->name, "t");
        cdc_buf_printf(&fb, ")::bigint, 0) + 1);\n    r := '%s' || '8' || lpad(to_hex(t), "
                       "15, '0') || '%s';\n", f->pre, f->suf);
        if (f->f->rule != CDC_RULE_LATEST) {
            cdc_buf_puts(&fb, "    IF r COLLATE \"C\" <= coalesce(o #>> ");
            pg_path(&fb, f->f->name, "r");
            cdc_buf_puts(&fb, ", '') COLLATE \"C\" THEN\n"
                "        RAISE EXCEPTION 'autoglm-cdc: % keeps its value from % (rule %): this delete ranks lower',\n"
                "            ");
            pg_lit(&fb, f->f->name);
            cdc_buf_puts(&fb, ", o #>> ");
            pg_path(&fb, f->f->name, "s");
            cdc_buf_printf(&fb, ", '%s'\n            USING HINT = 'delete it from the "
                           "side whose value it is, or clear the field';\n"
                           "    END IF;\n", rule_names[f->f->rule]);
        }
        cdc_buf_puts(&fb, "    IF r COLLATE \"C\" > coalesce(tp #>> ");
        pg_path(&fb, f->f->name, "r");
        cdc_buf_puts(&fb, ", '') COLLATE \"C\" THEN\n        p := p || jsonb_build_object(");
        pg_lit(&fb, f->f->name);
        cdc_buf_puts(&fb, ", jsonb_build_object('s', ");
        pg_lit(&fb, tt->reader->source->id);
        cdc_buf_puts(&fb, ", 't', t, 'r', r, 'd', 1));\n    END IF;\n");
    }
    cdc_buf_puts(&fb, "    INSERT INTO ");
    qual(&fb, 1, sch, name);
    cdc_buf_puts(&fb, " (");
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_puts(&fb, k ? ", " : "");
        pg_ident(&fb, t->fields[t->key[k]].name);
    }
    cdc_buf_puts(&fb, ", _provenance) VALUES (");
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_puts(&fb, k ? ", OLD." : "OLD.");
        pg_ident(&fb, t->fields[t->key[k]].name);
    }
    cdc_buf_puts(&fb, ", p)\n        ON CONFLICT (");
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_puts(&fb, k ? ", " : "");
        pg_ident(&fb, t->fields[t->key[k]].name);
    }
    cdc_buf_puts(&fb, ") DO UPDATE SET _provenance = EXCLUDED._provenance;\n"
                      "    RETURN OLD;\nEND\n");
    pg_table_function(b, tt, "del", fb.p, "autoglm_cdc_twoway_del",
                      "AFTER DELETE");
    cdc_buf_free(&fb);
}

/* is field f one of tt's two-way (edit-stamped) fields? */
static const twfield_t *edit_field(const twtable_t *tt,
                                   const cdc_map_field_t *f)
{
    for (uint32_t i = 0; i < tt->nfields; i++)
        if (tt->fields[i].f == f)
            return &tt->fields[i];
    return NULL;
}

/* A direct INSERT of a key that has a tombstone (a re-insert after a
 * delete): fires after autoglm_cdc_twoway (trigger names fire in
 * alphabetical order), which stamped the insert's two-way values.  Each
 * such value is re-ranked at least 1 µs after the tombstone's deletion of
 * the field; one that still does not beat it (rules priority/weighted:
 * a higher source deleted it) is undone to NULL, and the field keeps the
 * deletion entry, as does every field the insert leaves NULL.  The
 * tombstone is then merged into the row and deleted, as the sinks merge
 * it.  An insert that wins no field is refused. */
static void pg_reinsert(cdc_buf_t *b, const twtable_t *tt)
{
    const cdc_map_target_t *t = tt->t;
    const char *sch = *t->schema ? t->schema : "public";
    char name[200];
    cdc_buf_t fb = CDC_BUF_INIT;

    cdc_map_tombstone_table(t, name, sizeof(name));
    pg_tomb_prologue(&fb, tt, "tp jsonb; e jsonb; d jsonb; t bigint; r text; "
                     "live boolean := false;", "NEW", "it merges tombstones itself");
    cdc_buf_puts(&fb, "    IF tp IS NULL THEN\n"
        "        RETURN NEW;             -- no tombstone: a plain insert\n"
        "    END IF;\n"
        "    NEW._provenance := coalesce(NEW._provenance, '{}'::jsonb);\n");
    for (uint32_t i = 0; i < tt->ndfields; i++) {
        const twfield_t *f = &tt->dfields[i];
        const twfield_t *ef = edit_field(tt, f->f);
        cdc_buf_puts(&fb, "    -- ");
        comment_text(&fb, f->f->name);
        cdc_buf_printf(&fb, " (rule %s)\n    d := tp -> ", rule_names[f->f->rule]);
        pg_lit(&fb, f->f->name);
        cdc_buf_puts(&fb, ";\n    e := NEW._provenance -> ");
        pg_lit(&fb, f->f->name);
        cdc_buf_puts(&fb, ";\n");
        if (ef) {
            cdc_buf_puts(&fb, "    IF e IS NOT NULL AND d IS NOT NULL THEN\n"
                "        t := greatest((e ->> 't')::bigint, (d ->> 't')::bigint + 1);\n");
            cdc_buf_printf(&fb, "        r := '%s' || '8' || lpad(to_hex(t), 15, '0') || '%s';\n",
                           ef->pre, ef->suf);
            cdc_buf_puts(&fb, "        IF r COLLATE \"C\" <= (d ->> 'r') COLLATE \"C\" THEN\n"
                "            NEW := jsonb_populate_record(NEW, jsonb_build_object(");
            pg_lit(&fb, f->f->name);
            cdc_buf_puts(&fb, ", NULL));\n            e := NULL;\n"
                "            RAISE NOTICE 'autoglm-cdc: % stays deleted by % (rule %): this insert ranks lower',\n                ");
            pg_lit(&fb, f->f->name);
            cdc_buf_printf(&fb, ", d ->> 's', '%s';\n        ELSE\n"
                           "            e := jsonb_build_object('s', ", rule_names[f->f->rule]);
            pg_lit(&fb, tt->reader->source->id);
            cdc_buf_puts(&fb, ", 't', t, 'r', r);\n        END IF;\n    END IF;\n");
        }
        cdc_buf_puts(&fb, "    IF e IS NOT NULL THEN\n"
            "        NEW._provenance := NEW._provenance || jsonb_build_object(");
        pg_lit(&fb, f->f->name);
        cdc_buf_puts(&fb, ", e);\n        live := live OR NOT (e ? 'd');\n"
            "    ELSIF d IS NOT NULL AND to_jsonb(NEW) -> ");
        pg_lit(&fb, f->f->name);
        cdc_buf_puts(&fb, " = 'null'::jsonb THEN\n"
            "        NEW._provenance := NEW._provenance || jsonb_build_object(");
        pg_lit(&fb, f->f->name);
        cdc_buf_puts(&fb, ", d);\n    END IF;\n");
    }
    cdc_buf_puts(&fb, "    IF NOT live THEN\n"
        "        RAISE EXCEPTION 'autoglm-cdc: this insert ranks lower than the "
        "delete of its key on every field'\n"
        "            USING HINT = 'insert it on the side that deleted it, or "
        "with values a higher source may write';\n"
        "    END IF;\n    DELETE FROM ");
    qual(&fb, 1, sch, name);
    cdc_buf_puts(&fb, " x WHERE ");
    key_match(&fb, 1, t, "NEW");
    cdc_buf_puts(&fb, ";\n    RETURN NEW;\nEND\n");
    pg_table_function(b, tt, "reins", fb.p, "autoglm_cdc_twoway_reins",
                      "BEFORE INSERT");
    cdc_buf_free(&fb);
}

/* ---- MariaDB / MySQL -------------------------------------------------------- */

/* `<table>_2w_<what>`, within MySQL's 64 characters (PostgreSQL's 63
 * bytes: pg) */
static void obj_name(cdc_buf_t *b, int pg, const char *table, const char *what)
{
    cdc_buf_t n = CDC_BUF_INIT;
    size_t len = strlen(table);
    if (len + 4 + strlen(what) <= (size_t)(pg ? 63 : 64))
        cdc_buf_printf(&n, "%s_2w_%s", table, what);
    else {
        uint32_t h = 2166136261u;
        size_t cut = 40;
        for (const char *c = table; *c; c++)
            h = (h ^ (unsigned char)*c) * 16777619u;
        while (cut > 0 && ((unsigned char)table[cut] & 0xc0) == 0x80)
            cut--; /* not inside a UTF-8 sequence */
        cdc_buf_printf(&n, "%.*s_%08x_2w_%s", (int)cut, table, h, what);
    }
    (pg ? pg_ident : my_ident)(b, n.p);
    cdc_buf_free(&n);
}

static void my_trigger_name(cdc_buf_t *b, const char *table, const char *what)
{
    obj_name(b, 0, table, what);
}

static void my_rank_expr(cdc_buf_t *b, const twfield_t *f)
{
    cdc_buf_puts(b, "CONCAT(");
    if (*f->pre)
        cdc_buf_printf(b, "'%s', ", f->pre);
    cdc_buf_printf(b, "'8', LPAD(LOWER(HEX(t)), 15, '0'), '%s')", f->suf);
}

static void my_stamp(cdc_buf_t *b, const twtable_t *tt, const twfield_t *f,
                     const char *rank, const char *ind)
{
    cdc_buf_printf(b, "%sSET NEW.`_provenance` = JSON_SET(COALESCE("
                      "NEW.`_provenance`, '{}'), ", ind);
    my_path(b, f->f->name, "");
    cdc_buf_printf(b, ",\n%s    JSON_OBJECT('s', ", ind);
    my_lit(b, tt->reader->source->id);
    cdc_buf_printf(b, ", 't', t, 'r', %s));\n", rank);
}

/* The AFTER DELETE trigger: as pg_delete() (a delete that does not beat
 * a stored value is refused with SQLSTATE 45000). */
static void my_delete(cdc_buf_t *b, const twtable_t *tt)
{
    const cdc_map_target_t *t = tt->t;
    char name[200];

    cdc_map_tombstone_table(t, name, sizeof(name));
    cdc_buf_puts(b, "CREATE TRIGGER ");
    if (*t->schema) {
        my_ident(b, t->schema);
        cdc_buf_putc(b, '.');
    }
    my_trigger_name(b, t->table, "del");
    cdc_buf_puts(b, " AFTER DELETE ON ");
    qual(b, 0, t->schema, t->table);
    cdc_buf_puts(b, " FOR EACH ROW\nBEGIN\n"
                    "    DECLARE t BIGINT;\n    DECLARE now_us BIGINT;\n"
                    "    DECLARE r VARCHAR(88);\n    DECLARE tp LONGTEXT;\n"
                    "    DECLARE p LONGTEXT;\n"
                    "    IF COALESCE(@autoglm_cdc_sink, 0) = 0 THEN\n"
                    "        SET tp = COALESCE((SELECT `_provenance` FROM ");
    qual(b, 0, t->schema, name);
    cdc_buf_puts(b, " WHERE ");
    key_match(b, 0, t, "OLD");
    cdc_buf_puts(b, " FOR UPDATE), '{}');\n        SET p = tp;\n"
                    "        SET now_us = CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 "
                    "AS SIGNED);\n");
    for (uint32_t i = 0; i < tt->ndfields; i++) {
        const twfield_t *f = &tt->dfields[i];
        cdc_buf_puts(b, "        -- ");
        comment_text(b, f->f->name);
        cdc_buf_printf(b, " (rule %s)\n        SET t = GREATEST(now_us,\n"
                          "            COALESCE(CAST(JSON_UNQUOTE(JSON_EXTRACT("
                          "OLD.`_provenance`, ", rule_names[f->f->rule]);
        my_path(b, f->f->name, ".t");
        cdc_buf_puts(b, ")) AS SIGNED), 0) + 1,\n            COALESCE(CAST("
                        "JSON_UNQUOTE(JSON_EXTRACT(tp, ");
        my_path(b, f->f->name, ".t");
        cdc_buf_puts(b, ")) AS SIGNED), 0) + 1);\n        SET r = ");
        my_rank_expr(b, f);
        cdc_buf_puts(b, ";\n");
        if (f->f->rule != CDC_RULE_LATEST) {
            cdc_buf_puts(b, "        IF BINARY r <= BINARY COALESCE(JSON_UNQUOTE("
                            "JSON_EXTRACT(OLD.`_provenance`, ");
            my_path(b, f->f->name, ".r");
            cdc_buf_printf(b, ")), '') THEN\n            SIGNAL SQLSTATE '45000' "
                           "SET MESSAGE_TEXT = 'autoglm-cdc: this delete ranks "
                           "lower than a stored value (rule %s): refused';\n"
                           "        END IF;\n", rule_names[f->f->rule]);
        }
        cdc_buf_puts(b, "        IF BINARY r > BINARY COALESCE(JSON_UNQUOTE("
                        "JSON_EXTRACT(tp, ");
        my_path(b, f->f->name, ".r");
        cdc_buf_puts(b, ")), '') THEN\n            SET p = JSON_SET(p, ");
        my_path(b, f->f->name, "");
        cdc_buf_puts(b, ", JSON_OBJECT('s', ");
        my_lit(b, tt->reader->source->id);
        cdc_buf_puts(b, ", 't', t, 'r', r, 'd', 1));\n        END IF;\n");
    }
    cdc_buf_puts(b, "        INSERT INTO ");
    qual(b, 0, t->schema, name);
    cdc_buf_puts(b, " (");
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_puts(b, k ? ", " : "");
        my_ident(b, t->fields[t->key[k]].name);
    }
    cdc_buf_puts(b, ", `_provenance`) VALUES (");
    for (uint32_t k = 0; k < t->nkey; k++) {
        cdc_buf_puts(b, k ? ", OLD." : "OLD.");
        my_ident(b, t->fields[t->key[k]].name);
    }
    cdc_buf_puts(b, ", p)\n            ON DUPLICATE KEY UPDATE `_provenance` = "
                    "VALUES(`_provenance`);\n    END IF;\nEND//\n");
}

/* The body of the BEFORE INSERT trigger of a table whose deletes are
 * two-way, after "DECLARE t BIGINT;": as pg_reinsert(), in one trigger
 * (a value is ranked at least 1 µs after the key's tombstone; one that
 * still does not beat it becomes NULL and the field keeps the deletion;
 * the tombstone merges into the row and goes; an insert that wins no
 * field is refused with SQLSTATE 45000).  Without a tombstone it stamps
 * like the plain insert trigger. */
static void my_reinsert(cdc_buf_t *b, const twtable_t *tt)
{
    const cdc_map_target_t *t = tt->t;
    char name[200];

    cdc_map_tombstone_table(t, name, sizeof(name));
    cdc_buf_puts(b, "    DECLARE now_us BIGINT;\n    DECLARE r VARCHAR(88);\n"
                    "    DECLARE tp LONGTEXT;\n    DECLARE live INT DEFAULT 0;\n"
                    "    IF COALESCE(@autoglm_cdc_sink, 0) = 0 THEN\n"
                    "        SET now_us = CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 "
                    "AS SIGNED);\n        SET tp = (SELECT `_provenance` FROM ");
    qual(b, 0, t->schema, name);
    cdc_buf_puts(b, " WHERE ");
    key_match(b, 0, t, "NEW");
    cdc_buf_puts(b, " FOR UPDATE);\n");
    for (uint32_t i = 0; i < tt->nfields; i++) {
        const twfield_t *f = &tt->fields[i];
        cdc_buf_puts(b, "        IF NEW.");
        my_ident(b, f->f->name);
        cdc_buf_puts(b, " IS NOT NULL THEN\n            SET t = GREATEST(now_us, "
                        "COALESCE(CAST(JSON_UNQUOTE(JSON_EXTRACT(tp, ");
        my_path(b, f->f->name, ".t");
        cdc_buf_puts(b, ")) AS SIGNED), 0) + 1);\n            SET r = ");
        my_rank_expr(b, f);
        cdc_buf_puts(b, ";\n            IF BINARY r <= BINARY COALESCE(JSON_UNQUOTE("
                        "JSON_EXTRACT(tp, ");
        my_path(b, f->f->name, ".r");
        cdc_buf_puts(b, ")), '') THEN\n                SET NEW.");
        my_ident(b, f->f->name);
        cdc_buf_puts(b, " = NULL; -- the key's delete ranks higher: undone\n"
                        "            ELSE\n");
        my_stamp(b, tt, f, "r", "                ");
        cdc_buf_puts(b, "                SET live = 1;\n            END IF;\n"
                        "        END IF;\n");
    }
    cdc_buf_puts(b, "        IF tp IS NOT NULL THEN\n");
    for (uint32_t i = 0; i < tt->ndfields; i++) {
        const twfield_t *f = &tt->dfields[i];
        cdc_buf_puts(b, "            IF NEW.");
        my_ident(b, f->f->name);
        cdc_buf_puts(b, " IS NULL AND JSON_EXTRACT(tp, ");
        my_path(b, f->f->name, "");
        cdc_buf_puts(b, ") IS NOT NULL THEN\n                SET NEW.`_provenance` = "
                        "JSON_SET(COALESCE(NEW.`_provenance`, '{}'), ");
        my_path(b, f->f->name, "");
        cdc_buf_puts(b, ", JSON_EXTRACT(tp, ");
        my_path(b, f->f->name, "");
        cdc_buf_puts(b, "));\n            END IF;\n");
    }
    cdc_buf_puts(b, "            IF live = 0 THEN\n                SIGNAL SQLSTATE "
                    "'45000' SET MESSAGE_TEXT = 'autoglm-cdc: this insert ranks "
                    "lower than the delete of its key on every field: refused';\n"
                    "            END IF;\n            DELETE FROM ");
    qual(b, 0, t->schema, name);
    cdc_buf_puts(b, " WHERE ");
    key_match(b, 0, t, "NEW");
    cdc_buf_puts(b, ";\n        END IF;\n    END IF;\nEND//\n");
}

static void my_table(cdc_buf_t *b, const twtable_t *tt)
{
    const cdc_map_target_t *t = tt->t;

    source_comment(b, tt);
    if (!tt->nfields)
        return;
    cdc_buf_puts(b, "ALTER TABLE ");
    qual(b, 0, t->schema, t->table);
    cdc_buf_puts(b, " ADD COLUMN IF NOT EXISTS `_provenance` LONGTEXT NOT "
                    "NULL DEFAULT '{}';\n");
    for (int u = 0; u < 2; u++) {
        cdc_buf_puts(b, "DROP TRIGGER IF EXISTS ");
        if (*t->schema) {
            my_ident(b, t->schema);
            cdc_buf_putc(b, '.');
        }
        my_trigger_name(b, t->table, u ? "upd" : "ins");
        cdc_buf_puts(b, ";\n");
    }
    if (tt->ndfields) {
        cdc_buf_puts(b, "DROP TRIGGER IF EXISTS ");
        if (*t->schema) {
            my_ident(b, t->schema);
            cdc_buf_putc(b, '.');
        }
        my_trigger_name(b, t->table, "del");
        cdc_buf_puts(b, ";\n");
        tomb_ddl(b, 0, t);
    }
    cdc_buf_puts(b, "DELIMITER //\n");
    for (int u = 0; u < 2; u++) {
        cdc_buf_puts(b, "CREATE TRIGGER ");
        if (*t->schema) {
            my_ident(b, t->schema);
            cdc_buf_putc(b, '.');
        }
        my_trigger_name(b, t->table, u ? "upd" : "ins");
        cdc_buf_printf(b, " BEFORE %s ON ", u ? "UPDATE" : "INSERT");
        qual(b, 0, t->schema, t->table);
        cdc_buf_puts(b, " FOR EACH ROW\nBEGIN\n    DECLARE t BIGINT;\n");
        if (!u && tt->ndfields) {
            my_reinsert(b, tt);
            continue;
        }
        if (u)
            cdc_buf_puts(b, "    DECLARE r VARCHAR(88);\n");
        cdc_buf_puts(b, "    IF COALESCE(@autoglm_cdc_sink, 0) = 0 THEN\n");
        if (!u)
            cdc_buf_puts(b, "        SET t = CAST(UNIX_TIMESTAMP(NOW(6)) * "
                            "1000000 AS SIGNED);\n");
        for (uint32_t i = 0; i < tt->nfields; i++) {
            const twfield_t *f = &tt->fields[i];
            cdc_buf_t rank = CDC_BUF_INIT;
            if (!u) {
                cdc_buf_puts(b, "        IF NEW.");
                my_ident(b, f->f->name);
                cdc_buf_puts(b, " IS NOT NULL THEN\n");
                my_rank_expr(&rank, f);
                my_stamp(b, tt, f, rank.p, "            ");
                cdc_buf_puts(b, "        END IF;\n");
                cdc_buf_free(&rank);
                continue;
            }
            cdc_buf_puts(b, "        IF NOT (NEW.");
            my_ident(b, f->f->name);
            cdc_buf_puts(b, " <=> OLD.");
            my_ident(b, f->f->name);
            cdc_buf_puts(b, ") THEN\n            SET t = GREATEST(CAST("
                            "UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED),\n"
                            "                COALESCE(CAST(JSON_UNQUOTE("
                            "JSON_EXTRACT(OLD.`_provenance`, ");
            my_path(b, f->f->name, ".t");
            cdc_buf_puts(b, ")) AS SIGNED), 0) + 1);\n            SET r = ");
            my_rank_expr(b, f);
            cdc_buf_puts(b, ";\n            IF BINARY r <= BINARY COALESCE("
                            "JSON_UNQUOTE(JSON_EXTRACT(OLD.`_provenance`, ");
            my_path(b, f->f->name, ".r");
            cdc_buf_puts(b, ")), '') THEN\n                SET NEW.");
            my_ident(b, f->f->name);
            cdc_buf_puts(b, " = OLD.");
            my_ident(b, f->f->name);
            cdc_buf_puts(b, "; -- this edit ranks lower: undone\n"
                            "            ELSE\n");
            my_stamp(b, tt, f, "r", "                ");
            cdc_buf_puts(b, "            END IF;\n        END IF;\n");
        }
        cdc_buf_puts(b, "    END IF;\nEND//\n");
    }
    if (tt->ndfields)
        my_delete(b, tt);
    cdc_buf_puts(b, "DELIMITER ;\n\n");
}

/* ---- generate ---------------------------------------------------------------- */

int cdc_twsql_generate(const cdc_map_t *m, const cdc_twsql_opts_t *opts,
                       cdc_buf_t *out, cdc_err_t *err)
{
    twtable_t *tts = calloc(m->ntargets ? m->ntargets : 1, sizeof(*tts));
    uint32_t ntt = 0;
    int written = 0, rc = 0;
    cdc_twsql_engine_t only = opts ? opts->only : CDC_TWSQL_UNKNOWN;

    if (!tts)
        abort();
    for (uint32_t i = 0; i < m->ntargets; i++) {
        int dup = 0;
        for (uint32_t j = 0; j < ntt && !dup; j++)
            dup = same_table(tts[j].t, &m->targets[i]);
        if (dup || !find_twoway(m, &m->targets[i], &tts[ntt])) {
            if (!dup) {
                free(tts[ntt].fields);
                free(tts[ntt].dfields);
                cdc_buf_free(&tts[ntt].notes);
            }
            continue;
        }
        tts[ntt].engine = engine_of(m, opts, &tts[ntt]);
        if (!tts[ntt].engine && only)
            tts[ntt].engine = only;
        if (!tts[ntt].engine) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "two-way table %s%s%s "
                        "(target %s): its engine is unknown",
                        tts[ntt].t->schema, *tts[ntt].t->schema ? "." : "",
                        tts[ntt].t->table, tts[ntt].t->name);
            cdc_err_hint(err, "give the pipeline file of one direction "
                         "(-c pipeline.yaml: application_id, source.type, "
                         "sink.type), or name the engine: mapping triggers "
                         "postgres|mysql");
            rc = -1;
        }
        ntt++;
    }
    if (rc)
        goto out;
    for (int e = CDC_TWSQL_POSTGRES; e <= CDC_TWSQL_MYSQL; e++) {
        int any = 0;
        if (only && (int)only != e)
            continue;
        for (uint32_t i = 0; i < ntt; i++) {
            if ((int)tts[i].engine != e)
                continue;
            if (!any)
                cdc_buf_puts(out, e == CDC_TWSQL_POSTGRES
                    ? "-- autoglm-cdc mapping triggers: PostgreSQL (run with psql as a superuser:\n"
                      "-- the function is SECURITY DEFINER because\n"
                      "-- pg_replication_origin_session_is_setup() is not granted to PUBLIC)\n"
                    : "-- autoglm-cdc mapping triggers: MariaDB/MySQL (run with the mariadb or\n"
                      "-- mysql client; our sinks' sessions set @autoglm_cdc_sink = 1)\n");
            any = 1;
            if (e == CDC_TWSQL_POSTGRES) {
                int fn = tts[i].nfields > 0;
                for (uint32_t j = 0; j < i && fn; j++)
                    fn = !((int)tts[j].engine == e && tts[j].nfields &&
                           !strcmp(tts[j].t->schema, tts[i].t->schema));
                pg_table(out, &tts[i], fn);
            } else
                my_table(out, &tts[i]);
            written++;
        }
    }
    rc = written;
out:
    for (uint32_t i = 0; i < ntt; i++) {
        free(tts[i].fields);
        free(tts[i].dfields);
        cdc_buf_free(&tts[i].notes);
    }
    free(tts);
    return rc;
}

/* ---- command line ------------------------------------------------------------ */

/* NULL when nothing names the application */
static const char *app_of(const cdc_conf_t *conf)
{
    if (!cdc_conf_get(conf, "application_id", NULL) &&
        !cdc_conf_get(conf, "pipeline.name", NULL) &&
        !cdc_conf_get(conf, "source.type", NULL))
        return NULL;
    return cdc_conf_app_id(conf);
}

static cdc_map_t *load_files(const cdc_conf_t *conf, const char *cmd,
                             cdc_err_t *err)
{
    const char *files = cdc_conf_get(conf, "mapping.files", NULL);
    if (!files || !*files) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "mapping %s: no mapping files",
                    cmd);
        cdc_err_hint(err, "give -c pipeline.yaml (mapping.files) or "
                          "--mapping FILES");
        return NULL;
    }
    return cdc_map_load(files, err);
}

int cdc_twsql_cli_triggers(const cdc_conf_t *conf, int argc, char **argv,
                           cdc_err_t *err)
{
    cdc_twsql_opts_t o = {0};
    cdc_buf_t out = CDC_BUF_INIT;
    cdc_map_t *m;
    int n;

    if (argc > 1 || (argc == 1 && !(o.only = cdc_twsql_engine(argv[0])))) {
        cdc_err_set(err, CDC_EXIT_USAGE, 0, "mapping triggers: %s '%s'",
                    argc > 1 ? "unexpected argument" : "unknown engine "
                    "(postgres, mysql)", argv[argc > 1 ? 1 : 0]);
        cdc_err_hint(err, "options first: autoglm-cdc mapping triggers "
                          "-c pipeline.yaml [postgres|mysql]");
        return CDC_EXIT_USAGE;
    }
    if (!(m = load_files(conf, "triggers", err)))
        return err->code;
    o.app = app_of(conf);
    o.src = cdc_twsql_engine(cdc_conf_get(conf, "source.type", NULL));
    o.sink = cdc_twsql_engine(cdc_conf_get(conf, "sink.type", NULL));
    n = cdc_twsql_generate(m, &o, &out, err);
    cdc_map_destroy(m);
    if (n < 0) {
        cdc_buf_free(&out);
        return err->code;
    }
    if (n == 0) {
        cdc_buf_free(&out);
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "mapping triggers: no two-way "
                    "table%s", o.only ? " of that engine" : "");
        cdc_err_hint(err, "a two-way table is the source table of one "
                          "mapping and the table of a target another "
                          "source's mapping writes (docs/TWO-WAY.md)");
        return CDC_EXIT_CONFIG;
    }
    fwrite(out.p, 1, out.len, stdout);
    cdc_buf_free(&out);
    return fflush(stdout) ? CDC_EXIT_FAIL : CDC_EXIT_OK;
}

int cdc_twsql_cli_reverse(const cdc_conf_t *conf, int argc, char **argv,
                          cdc_err_t *err)
{
    cdc_buf_t out = CDC_BUF_INIT;
    cdc_map_t *m;
    int n;

    if (argc != 3) {
        cdc_err_set(err, CDC_EXIT_USAGE, 0, "mapping reverse needs MAPPING "
                    "SOURCE TARGET");
        cdc_err_hint(err, "options first: autoglm-cdc mapping reverse "
                          "--mapping twoway.yaml forward platform "
                          "crm_customers");
        return CDC_EXIT_USAGE;
    }
    if (!(m = load_files(conf, "reverse", err)))
        return err->code;
    n = cdc_map_reverse_yaml(m, argv[0], argv[1], argv[2], &out, err);
    cdc_map_destroy(m);
    if (n < 0) {
        cdc_buf_free(&out);
        return err->code;
    }
    fwrite(out.p, 1, out.len, stdout);
    cdc_buf_free(&out);
    return fflush(stdout) ? CDC_EXIT_FAIL : CDC_EXIT_OK;
}
