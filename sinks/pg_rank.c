/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg_rank.c - the stored form of a field's rank and provenance in the
 * PostgreSQL wide table (pg_rank.h).
 */
#include <stdio.h>
#include <string.h>

#include "cdc/util.h"
#include "mappings/map_int.h"
#include "sinks/pg_rank.h"

int cdc_pgrank_col(char *out, size_t n, const char *field)
{
    int len = snprintf(out, n, CDC_PGRANK_PREFIX "%s", field);
    return len < 0 || (size_t)len >= n || len > CDC_PGRANK_NAMEMAX ? -1 : 0;
}

void cdc_pgrank_put(cdc_buf_t *b, const char *rank, int64_t commit_us,
                    int deleted, const char *source, int copy)
{
    size_t rl = strlen(rank), sl = strlen(source);
    char *o;

    if (sl > 255)
        sl = 255;
    /* \\x, rank, 16 + 2 digits, the source's digits, 2 */
    if (b->len + rl + 2 * sl + 32 > b->cap)
        cdc_buf_grow(b, rl + 2 * sl + 32);
    o = b->p + b->len;
    if (copy)
        *o++ = '\\';
    *o++ = '\\';
    *o++ = 'x';
    /* an odd digit count cannot be bytea: pad (ranks are even) */
    memcpy(o, rank, rl);
    o += rl;
    if (rl & 1)
        *o++ = '0';
    o = cdc_hex(o, (uint64_t)commit_us, 16);
    *o++ = '0';
    *o++ = deleted ? '1' : '0';
    for (size_t i = 0; i < sl; i++)
        o = cdc_hex(o, (unsigned char)source[i], 2);
    /* no extra object: its length 0, then the source's length */
    memcpy(o, "00000000", 8);
    o += 8;
    o = cdc_hex(o, sl, 2);
    b->len = (size_t)(o - b->p);
    b->p[b->len] = '\0';
}

int cdc_pgrank_bytes(const cdc_map_field_t *f)
{
    cdc_map_source_t s;
    char pos[CDC_MAP_POS_LEN + 1], r[CDC_MAP_RANK_LEN + 1];

    memset(&s, 0, sizeof(s));
    s.id = (char *)"x";
    memset(pos, '0', CDC_MAP_POS_LEN);
    pos[CDC_MAP_POS_LEN] = '\0';
    cdc_map_make_rank(f, &s, 0, pos, NULL, NULL, r);
    return (int)(strlen(r) + 1) / 2;
}

void cdc_pgrank_none(PGconn *pg, cdc_buf_t *b, const cdc_map_target_t *t,
                     const char *alias, int rank)
{
    if (!rank) {
        cdc_buf_printf(b, "%s._provenance = '{}'::jsonb", alias);
        return;
    }
    cdc_buf_puts(b, "(true");
    for (uint32_t f = 0; f < t->nfields; f++) {
        char col[200], *q;
        if (t->fields[f].is_key)
            continue;
        cdc_pgrank_col(col, sizeof(col), t->fields[f].name);
        q = PQescapeIdentifier(pg, col, strlen(col));
        cdc_buf_printf(b, " AND %s.%s IS NULL", alias, q ? q : "\"\"");
        PQfreemem(q);
    }
    cdc_buf_puts(b, ")");
}

void cdc_pgrank_functions_sql(cdc_buf_t *b, const char *qs)
{
    /* x: n length, l source length (last byte), e extra length (the 4
     * bytes before it); the source, then the extra, end before those */
    cdc_buf_printf(b,
        "CREATE OR REPLACE FUNCTION %s.autoglm_cdc_prov(r bytea) RETURNS "
        "jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT CASE WHEN "
        "r IS NULL THEN NULL ELSE jsonb_strip_nulls(jsonb_build_object("
        "'s', convert_from(substr(r, x.n - x.l - x.e - 4, x.l), 'UTF8'), "
        "'t', ('x' || encode(substr(r, x.n - x.l - x.e - 13, 8), 'hex'))"
        "::bit(64)::bigint, "
        "'r', encode(substr(r, 1, x.n - x.l - x.e - 14), 'hex'), "
        "'d', CASE WHEN get_byte(r, x.n - x.l - x.e - 6) = 1 THEN 1 END)) "
        "|| CASE WHEN x.e > 0 THEN convert_from(substr(r, x.n - x.e - 4, "
        "x.e), 'UTF8')::jsonb ELSE '{}'::jsonb END END "
        "FROM (SELECT length(r) AS n, get_byte(r, length(r) - 1) AS l, "
        "('x' || encode(substr(r, length(r) - 4, 4), 'hex'))::bit(32)::int "
        "AS e) x $f$; ", qs);
    cdc_buf_printf(b,
        "CREATE OR REPLACE FUNCTION %s.autoglm_cdc_deleted(r bytea) RETURNS "
        "boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT "
        "COALESCE(get_byte(r, length(r) - get_byte(r, length(r) - 1) - "
        "('x' || encode(substr(r, length(r) - 4, 4), 'hex'))::bit(32)::int "
        "- 6) = 1, false) $f$; ", qs);
    cdc_buf_printf(b,
        "CREATE OR REPLACE FUNCTION %s.autoglm_cdc_rank(e jsonb) RETURNS "
        "bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT CASE WHEN "
        "e IS NULL OR jsonb_typeof(e) <> 'object' THEN NULL "
        "ELSE decode(COALESCE(e->>'r', ''), 'hex') || int8send(COALESCE("
        "(e->>'t')::bigint, 0)) || CASE WHEN e ? 'd' THEN '\\x01'::bytea "
        "ELSE '\\x00'::bytea END || x.s || x.x || int4send(length(x.x)) || "
        "set_byte('\\x00'::bytea, 0, length(x.s)) END FROM (SELECT "
        "substr(convert_to(COALESCE(e->>'s', ''), 'UTF8'), 1, 255) AS s, "
        "CASE WHEN (e - 's' - 't' - 'r' - 'd') = '{}'::jsonb THEN ''::bytea "
        "ELSE convert_to((e - 's' - 't' - 'r' - 'd')::text, 'UTF8') END AS x) "
        "x $f$", qs);
}
