/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot.c - the PostgreSQL snapshot driver of `autoglm-cdc backfill`
 * (cdc/backfill.h).
 *
 * Values: the session uses the streaming source's settings (DateStyle=ISO,
 * IntervalStyle=postgres, TimeZone=UTC, extra_float_digits=3,
 * bytea_output=hex), so SELECT returns every value in exactly the text
 * form pgoutput sends, and cdc_pg_value_text() - the decoder's own
 * conversion - turns it into the same cdc_value_t.  Types the decoder
 * resolves through pg_type are resolved the same way here: enums are text,
 * domains their base type, arrays of those the built-in array of the
 * element's base.  Generated columns are left out, as pgoutput leaves them
 * out.
 *
 * Chunks: SELECT cols FROM t WHERE (k1, k2) > ($1, $2) [AND (where)]
 * ORDER BY k1, k2 LIMIT n - PostgreSQL turns the row comparison into an
 * index range.  Keys travel as text parameters; in the progress file a key
 * is the hex of each column's text joined by ','.  Each chunk runs in its
 * own short REPEATABLE READ transaction whose first statement reads
 * pg_current_snapshot(): the backfill uses it to treat transactions that
 * committed before the low watermark but were not yet visible to the chunk
 * as changes inside the window.
 *
 * Consistent first load: CREATE_REPLICATION_SLOT ... (SNAPSHOT 'export')
 * on a walsender connection (kept open: the snapshot lives as long as that
 * session is idle), SET TRANSACTION SNAPSHOT on the reading session, and
 * the slot's consistent_point as the position (the stream's checkpoint).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cdc/util.h"
#include "cdc/backfill.h"
#include "cdc/buf.h"
#include "cdc/log.h"
#include "connectors/pg/pgutil.h"
#include "cdc/pipeline.h"
#include "connectors/pg/pgoutput_decode.h"

/* this driver's ops table (defined at the end, listed by the registry) */
extern const cdc_snap_ops_t cdc_snap_postgres_ops;

#define FAC "backfill"
#define SESSION_OPTIONS                                                     \
    "-c datestyle=ISO -c intervalstyle=postgres -c timezone=UTC "           \
    "-c extra_float_digits=3 -c bytea_output=hex"

typedef struct pg_snap {
    cdc_snap_t base;
    const cdc_conf_t *conf;
    PGconn *c;
    PGconn *repl;      /* exporting walsender session (first load) */
    int in_snapshot;
    int server_version;
} pg_snap_t;

typedef struct pg_tab {
    char *sql[4];      /* chunk queries, by [after][upto] */
    char *where;
    uint32_t limit;
    uint32_t *oid;     /* effective type oid per column */
} pg_tab_t;

static const char *pqerr(PGconn *c)
{
    return cdc_pg_errline(c);
}

static PGresult *q(pg_snap_t *s, cdc_err_t *err, const char *sql, int n,
                   const char *const *params)
{
    PGresult *r = PQexecParams(s->c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    if (PQstatus(s->c) != CONNECTION_OK)
        cdc_err_set(err, CDC_EXIT_UNAVAILABLE, CDC_ERR_F_RETRIABLE,
                    "postgres: connection lost: %s", pqerr(s->c));
    else
        cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                    "postgres: query failed: %s", pqerr(s->c));
    cdc_err_detail(err, "%.400s", sql);
    PQclear(r);
    return NULL;
}

static int exec(pg_snap_t *s, const char *sql, cdc_err_t *err)
{
    PGresult *r = q(s, err, sql, 0, NULL);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

static PGconn *connect_pg(const cdc_conf_t *conf, int replication,
                          cdc_err_t *err)
{
    const char *dsn = cdc_conf_get(conf, "postgres.dsn", "");
    cdc_pg_connopt_t o = {SESSION_OPTIONS, "autoglm-cdc backfill",
                          replication, 0, 0, FAC};

    if (!*dsn) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "postgres.dsn is not set");
        cdc_err_hint(err, "pass --postgres-dsn 'host=... dbname=... user=...'");
        return NULL;
    }
    return cdc_pg_connect(dsn, &o, err);
}

static cdc_snap_t *pg_open(const cdc_conf_t *conf, int worker, cdc_err_t *err)
{
    pg_snap_t *s = cdc_xcalloc(1, sizeof(*s));
    (void)worker;
    s->conf = conf;
    s->c = connect_pg(conf, 0, err);
    if (!s->c) {
        free(s);
        return NULL;
    }
    s->server_version = PQserverVersion(s->c);
    s->base.ops = &cdc_snap_postgres_ops;
    return &s->base;
}

static void pg_close(cdc_snap_t *base)
{
    pg_snap_t *s = (pg_snap_t *)base;
    if (!s)
        return;
    if (s->c)
        PQfinish(s->c);
    if (s->repl)
        PQfinish(s->repl);
    free(s);
}

/* ---- names and types ---------------------------------------------------- */

static void put_ident(pg_snap_t *s, cdc_buf_t *b, const char *id)
{
    char *e = PQescapeIdentifier(s->c, id, strlen(id));
    cdc_buf_puts(b, e ? e : "\"\"");
    PQfreemem(e);
}

static void tab_free(void *p)
{
    pg_tab_t *t = p;
    if (!t)
        return;
    for (int i = 0; i < 4; i++)
        free(t->sql[i]);
    free(t->where);
    free(t->oid);
    free(t);
}

/* The oid whose built-in conversion matches the decoder's for type oid. */
static uint32_t eff_oid(pg_snap_t *s, uint32_t oid, int depth)
{
    char b[16];
    const char *p[1] = {b};
    cdc_err_t err;
    PGresult *r;
    uint32_t out = oid;

    if (oid < 10000 || depth > 8) /* built-in types keep their oid */
        return oid;
    snprintf(b, sizeof(b), "%u", oid);
    r = q(s, &err,
          "SELECT typtype, typcategory, typbasetype, typelem FROM pg_type "
          "WHERE oid = $1::oid", 1, p);
    if (!r)
        return oid;
    if (PQntuples(r) == 1) {
        char tt = PQgetvalue(r, 0, 0)[0], cat = PQgetvalue(r, 0, 1)[0];
        uint32_t base = (uint32_t)strtoul(PQgetvalue(r, 0, 2), NULL, 10);
        uint32_t elem = (uint32_t)strtoul(PQgetvalue(r, 0, 3), NULL, 10);
        if (tt == 'e') {
            out = 25; /* text */
        } else if (tt == 'd' && base) {
            out = eff_oid(s, base, depth + 1);
        } else if (cat == 'A' && elem) {
            uint32_t e = eff_oid(s, elem, depth + 1);
            PGresult *r2;
            snprintf(b, sizeof(b), "%u", e);
            r2 = q(s, &err, "SELECT typarray FROM pg_type WHERE oid = $1::oid",
                   1, p);
            if (r2) {
                if (PQntuples(r2) == 1)
                    out = (uint32_t)strtoul(PQgetvalue(r2, 0, 0), NULL, 10);
                PQclear(r2);
            }
        }
    }
    PQclear(r);
    return out;
}

static int pg_describe(cdc_snap_t *base, const char *db, const char *table,
                       cdc_table_t **out, uint64_t *est, cdc_err_t *err)
{
    pg_snap_t *s = (pg_snap_t *)base;
    cdc_buf_t name = CDC_BUF_INIT;
    const char *p[1];
    PGresult *r = NULL;
    cdc_table_t *t = NULL;
    pg_tab_t *pt = NULL;
    uint32_t n;
    int rc = -1;

    *out = NULL;
    *est = 0;
    put_ident(s, &name, db);
    cdc_buf_putc(&name, '.');
    put_ident(s, &name, table);
    p[0] = name.p;
    r = q(s, err,
          "SELECT a.attname, a.atttypid, a.atttypmod, a.attnotnull, "
          " c.reltuples::bigint, c.oid "
          "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
          "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT "
          "a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum",
          1, p);
    if (!r)
        goto out;
    n = (uint32_t)PQntuples(r);
    if (!n) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "postgres: table %s.%s does not exist (or has no "
                    "columns)", db, table);
        cdc_err_hint(err, "check --table (schema.table)");
        goto out;
    }
    t = cdc_table_new(db, table, n);
    t->id = strtoull(PQgetvalue(r, 0, 5), NULL, 10);
    {
        long long rt = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
        *est = rt > 0 ? (uint64_t)rt : 0;
    }
    pt = cdc_xcalloc(1, sizeof(*pt));
    pt->oid = cdc_xcalloc(n, sizeof(*pt->oid));
    t->priv = pt;
    t->priv_free = tab_free;
    for (uint32_t i = 0; i < n; i++) {
        t->cols[i].name = cdc_xstrdup(PQgetvalue(r, (int)i, 0));
        t->cols[i].type = (uint32_t)strtoul(PQgetvalue(r, (int)i, 1), NULL, 10);
        t->cols[i].meta = (uint32_t)strtol(PQgetvalue(r, (int)i, 2), NULL, 10);
        if (PQgetvalue(r, (int)i, 3)[0] != 't')
            t->cols[i].flags |= CDC_COL_NULLABLE;
    }
    PQclear(r);
    for (uint32_t i = 0; i < n; i++)
        pt->oid[i] = eff_oid(s, t->cols[i].type, 0);

    /* key: the primary key, else a unique index over NOT NULL columns */
    r = q(s, err,
          "SELECT i.indexrelid, a.attname, a.attnotnull, i.indisprimary "
          "FROM pg_index i "
          "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
          "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
          "WHERE i.indrelid = to_regclass($1) AND i.indisunique AND "
          "i.indpred IS NULL AND i.indexprs IS NULL "
          "ORDER BY i.indisprimary DESC, i.indexrelid, k.ord",
          1, p);
    if (!r)
        goto out;
    t->pk = cdc_xcalloc(n, sizeof(*t->pk));
    {
        const char *cur = NULL;
        int bad = 0;
        for (int row = 0; row < PQntuples(r); row++) {
            const char *idx = PQgetvalue(r, row, 0);
            if (!cur || strcmp(cur, idx)) {
                if (cur && !bad && t->npk)
                    break; /* the previous index qualifies */
                cur = idx;
                bad = 0;
                t->npk = 0;
            }
            if (PQgetvalue(r, row, 2)[0] != 't')
                bad = 1;
            for (uint32_t i = 0; i < n && !bad; i++)
                if (!strcmp(t->cols[i].name, PQgetvalue(r, row, 1)))
                    t->pk[t->npk++] = i;
        }
        if (bad)
            t->npk = 0;
    }
    PQclear(r);
    r = NULL;
    if (!t->npk) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "postgres: table %s.%s has no primary key (nor a unique "
                    "key over NOT NULL columns)", db, table);
        cdc_err_hint(err, "keyset chunks need a key: add a primary key, or "
                          "leave the table out of the backfill");
        goto out;
    }
    for (uint32_t k = 0; k < t->npk; k++)
        t->cols[t->pk[k]].flags |= CDC_COL_PK;
    *out = t;
    t = NULL;
    rc = 0;
out:
    if (r)
        PQclear(r);
    cdc_table_destroy(t);
    cdc_buf_free(&name);
    return rc;
}

static int pg_list_tables(cdc_snap_t *base, const cdc_conf_t *conf,
                          char **out, cdc_err_t *err)
{
    pg_snap_t *s = (pg_snap_t *)base;
    const char *tl = cdc_conf_get(conf, "postgres.tables", "");
    cdc_filter_t *f;
    cdc_buf_t b = CDC_BUF_INIT;
    PGresult *r;

    if (*tl) {
        *out = cdc_xstrdup(tl);
        return 0;
    }
    r = q(s, err,
          "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
          "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND "
          "n.nspname NOT IN ('pg_catalog', 'information_schema') AND "
          "n.nspname NOT LIKE 'pg_toast%' AND NOT c.relispartition AND "
          "c.relname <> 'autoglm_cdc_signal' ORDER BY 1, 2",
          0, NULL);
    if (!r)
        return -1;
    f = cdc_filter_new(conf);
    for (int i = 0; i < PQntuples(r); i++)
        if (cdc_filter_match(f, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1))) {
            if (b.len)
                cdc_buf_putc(&b, ',');
            cdc_backfill_name_put(&b, PQgetvalue(r, i, 0),
                                  PQgetvalue(r, i, 1));
        }
    cdc_filter_destroy(f);
    PQclear(r);
    *out = b.p ? b.p : cdc_xstrdup("");
    return 0;
}

/* ---- consistent first load --------------------------------------------- */

static int parse_lsn(const char *str, uint64_t *out)
{
    unsigned hi, lo;
    if (!str || sscanf(str, "%X/%X", &hi, &lo) != 2)
        return -1;
    *out = (uint64_t)hi << 32 | lo;
    return 0;
}

static int pg_begin_consistent(cdc_snap_t *base, const char *bftables,
                               cdc_snap_stamp_t *st, char *pos_text,
                               size_t pos_len, cdc_err_t *err)
{
    pg_snap_t *s = (pg_snap_t *)base;
    const char *slot = cdc_conf_get(s->conf, "postgres.slot", "autoglm_cdc");
    const char *pub = cdc_conf_get(s->conf, "postgres.publication",
                                   "autoglm_cdc");
    const char *tables = cdc_conf_get(s->conf, "postgres.tables", "");
    const char *p[1] = {slot};
    char cmd[512];
    PGresult *r;
    uint64_t lsn = 0;
    struct timeval tv;

    memset(st, 0, sizeof(*st));
    pos_text[0] = '\0';
    (void)pos_len;
    r = q(s, err, "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
          1, p);
    if (!r)
        return -1;
    if (PQntuples(r)) {
        PQclear(r);
        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                    "replication slot %s already exists", slot);
        return 1; /* the stream owns a slot already: use watermarks */
    }
    PQclear(r);
    /* the publication must exist before the slot: pgoutput reads it with
     * the catalog as of each change */
    p[0] = pub;
    r = q(s, err, "SELECT 1 FROM pg_publication WHERE pubname = $1", 1, p);
    if (!r)
        return -1;
    if (!PQntuples(r)) {
        /* as the stream would create it (postgres.tables, else every
         * table); without the privilege for FOR ALL TABLES, the tables
         * being loaded */
        cdc_buf_t b = CDC_BUF_INIT;
        char *pq = PQescapeIdentifier(s->c, pub, strlen(pub));
        int rc;
        if (*tables)
            cdc_buf_printf(&b, "CREATE PUBLICATION %s FOR TABLE %s", pq,
                           tables);
        else
            cdc_buf_printf(&b, "CREATE PUBLICATION %s FOR ALL TABLES", pq);
        rc = exec(s, b.p, err);
        if (rc && !*tables && strstr(err->msg, "superuser")) {
            CDC_WARN(FAC, "%s: %s; publishing the backfilled tables only",
                     b.p, err->msg);
            cdc_err_clear(err);
            cdc_buf_reset(&b);
            cdc_buf_printf(&b, "CREATE PUBLICATION %s FOR TABLE %s", pq,
                           bftables);
            rc = exec(s, b.p, err);
        }
        PQfreemem(pq);
        if (rc) {
            cdc_err_hint(err, "create the publication yourself: %s", b.p);
            cdc_buf_free(&b);
            PQclear(r);
            return -1;
        }
        CDC_INFO(FAC, "%s", b.p);
        cdc_buf_free(&b);
    }
    PQclear(r);
    s->repl = connect_pg(s->conf, 1, err);
    if (!s->repl)
        return -1;
    if (s->server_version >= 150000)
        snprintf(cmd, sizeof(cmd),
                 "CREATE_REPLICATION_SLOT \"%s\" LOGICAL pgoutput "
                 "(SNAPSHOT 'export')", slot);
    else
        snprintf(cmd, sizeof(cmd),
                 "CREATE_REPLICATION_SLOT \"%s\" LOGICAL pgoutput "
                 "EXPORT_SNAPSHOT", slot);
    r = PQexec(s->repl, cmd);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
        PQnfields(r) < 3 || parse_lsn(PQgetvalue(r, 0, 1), &lsn)) {
        cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                    "postgres: cannot create replication slot %s: %s", slot,
                    pqerr(s->repl));
        PQclear(r);
        return -1;
    }
    {
        cdc_buf_t b = CDC_BUF_INIT;
        char *lit = PQescapeLiteral(s->c, PQgetvalue(r, 0, 2),
                                    strlen(PQgetvalue(r, 0, 2)));
        cdc_buf_printf(&b, "SET TRANSACTION SNAPSHOT %s", lit ? lit : "''");
        PQfreemem(lit);
        PQclear(r);
        if (exec(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err) ||
            exec(s, b.p, err)) {
            cdc_buf_free(&b);
            return -1;
        }
        cdc_buf_free(&b);
    }
    CDC_INFO(FAC, "created replication slot %s at %X/%X with an exported "
                  "snapshot", slot, (unsigned)(lsn >> 32), (unsigned)lsn);
    gettimeofday(&tv, NULL);
    st->connector = "postgresql";
    st->pos = lsn;
    st->commit_us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
    s->in_snapshot = 1;
    return 0;
}

static int pg_end_consistent(cdc_snap_t *base, cdc_err_t *err)
{
    pg_snap_t *s = (pg_snap_t *)base;
    int rc = 0;
    if (s->in_snapshot)
        rc = exec(s, "COMMIT", err);
    s->in_snapshot = 0;
    if (s->repl) {
        PQfinish(s->repl);
        s->repl = NULL;
    }
    return rc;
}

/* ---- chunks -------------------------------------------------------------- */

/* The four chunk queries: [after key?][up to a key?]. */
static void build_sql(pg_snap_t *s, pg_tab_t *pt, const cdc_table_t *t,
                      const char *where, uint32_t limit)
{
    cdc_buf_t b = CDC_BUF_INIT, order = CDC_BUF_INIT;

    cdc_buf_puts(&b, "SELECT ");
    for (uint32_t i = 0; i < t->ncols; i++) {
        if (i)
            cdc_buf_putc(&b, ',');
        put_ident(s, &b, t->cols[i].name);
    }
    cdc_buf_puts(&b, " FROM ");
    put_ident(s, &b, t->db);
    cdc_buf_putc(&b, '.');
    put_ident(s, &b, t->name);
    for (uint32_t k = 0; k < t->npk; k++) {
        if (k)
            cdc_buf_putc(&order, ',');
        put_ident(s, &order, t->cols[t->pk[k]].name);
    }
    for (int v = 0; v < 4; v++) {
        cdc_buf_t q = CDC_BUF_INIT;
        int n = 0, par = 1;
        cdc_buf_puts(&q, b.p);
        for (int side = 0; side < 2; side++) {
            if (!(v & (1 << side)))
                continue;
            cdc_buf_printf(&q, "%s(%s) %s (", n++ ? " AND " : " WHERE ",
                           order.p, side ? "<=" : ">");
            for (uint32_t k = 0; k < t->npk; k++)
                cdc_buf_printf(&q, "%s$%d", k ? "," : "", par++);
            cdc_buf_putc(&q, ')');
        }
        if (where)
            cdc_buf_printf(&q, "%s(%s)", n ? " AND " : " WHERE ", where);
        cdc_buf_printf(&q, " ORDER BY %s LIMIT %u", order.p, limit);
        free(pt->sql[v]);
        pt->sql[v] = q.p;
    }
    cdc_buf_free(&b);
    cdc_buf_free(&order);
}

/* "xmin:xmax:xip,xip" (xid8 text) -> vis, 32-bit xids. */
static void parse_vis(const char *txt, cdc_snap_vis_t *vis)
{
    unsigned long long xmin, xmax;
    const char *p;
    if (sscanf(txt, "%llu:%llu:", &xmin, &xmax) != 2)
        return;
    vis->xmin = xmin & 0xffffffffu;
    vis->xmax = xmax & 0xffffffffu;
    if (!vis->xmax)
        vis->xmax = 1;
    p = strchr(txt, ':');
    p = p ? strchr(p + 1, ':') : NULL;
    for (p = p ? p + 1 : NULL; p && *p;) {
        char *e;
        unsigned long long x = strtoull(p, &e, 10);
        if (e == p)
            break;
        vis->xip = cdc_xrealloc(vis->xip, (vis->nxip + 1) * sizeof(*vis->xip));
        vis->xip[vis->nxip++] = x & 0xffffffffu;
        p = *e == ',' ? e + 1 : e;
    }
}

/* Progress-file key -> one text parameter per key column. */
static int decode_key(const cdc_table_t *t, const char *txt, char **params,
                      cdc_err_t *err)
{
    const char *p = txt;
    for (uint32_t k = 0; k < t->npk; k++) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len % 2 || (k + 1 < t->npk && !e))
            goto bad;
        params[k] = cdc_xmalloc(len / 2 + 1);
        for (size_t i = 0; i < len / 2; i++) {
            int h = cdc_hexval(p[2 * i]), l = cdc_hexval(p[2 * i + 1]);
            if (h < 0 || l < 0)
                goto bad;
            params[k][i] = (char)(h * 16 + l);
        }
        params[k][len / 2] = '\0';
        p = e ? e + 1 : p + len;
    }
    return 0;
bad:
    cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_FATAL,
                "backfill progress of %s.%s has a malformed key", t->db,
                t->name);
    cdc_err_hint(err, "delete the progress file to start the table over");
    return -1;
}

/* Hex words of the key columns of row `row` of r, joined by ','. */
static char *key_word(const cdc_table_t *t, PGresult *r, int row,
                      const uint32_t *colidx)
{
    static const char hx[] = "0123456789abcdef";
    cdc_buf_t kb = CDC_BUF_INIT;
    for (uint32_t k = 0; k < t->npk; k++) {
        int c = (int)(colidx ? colidx[k] : k);
        const unsigned char *v = (const unsigned char *)PQgetvalue(r, row, c);
        int len = PQgetlength(r, row, c);
        if (k)
            cdc_buf_putc(&kb, ',');
        for (int i = 0; i < len; i++) {
            cdc_buf_putc(&kb, hx[v[i] >> 4]);
            cdc_buf_putc(&kb, hx[v[i] & 15]);
        }
    }
    if (!kb.p)
        cdc_buf_puts(&kb, "");
    return kb.p;
}

static int pg_read_chunk(cdc_snap_t *base, cdc_table_t *t, const char *after,
                         const char *upto, const char *where, uint32_t limit,
                         cdc_txn_t *tx, char **last, uint32_t *nrows,
                         cdc_snap_vis_t *vis, cdc_err_t *err)
{
    pg_snap_t *s = (pg_snap_t *)base;
    pg_tab_t *pt = t->priv;
    char **params = NULL;
    PGresult *r = NULL;
    int rc = -1, own_txn = !s->in_snapshot;
    int nr, v = (after ? 1 : 0) | (upto ? 2 : 0);
    uint32_t np = 0;

    *last = NULL;
    *nrows = 0;
    if (vis)
        memset(vis, 0, sizeof(*vis));
    if (limit != pt->limit || (where && (!pt->where || strcmp(where,
                                                                pt->where)))) {
        free(pt->where);
        pt->where = where ? cdc_xstrdup(where) : NULL;
        pt->limit = limit;
        build_sql(s, pt, t, where, limit);
    }
    params = cdc_xcalloc(2 * (size_t)t->npk + 1, sizeof(*params));
    if (after && decode_key(t, after, params, err))
        goto out;
    if (upto && decode_key(t, upto, params + (after ? t->npk : 0), err))
        goto out;
    np = (after ? t->npk : 0) + (upto ? t->npk : 0);
    if (own_txn) {
        if (exec(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err))
            goto out;
        r = q(s, err,
              s->server_version >= 130000
                  ? "SELECT pg_current_snapshot()::text"
                  : "SELECT txid_current_snapshot()::text",
              0, NULL);
        if (!r)
            goto out;
        if (vis && PQntuples(r) == 1)
            parse_vis(PQgetvalue(r, 0, 0), vis);
        PQclear(r);
        r = NULL;
    }
    r = q(s, err, pt->sql[v], (int)np, (const char *const *)params);
    if (!r)
        goto out;
    nr = PQntuples(r);
    if ((uint32_t)PQnfields(r) != t->ncols) {
        cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                    "postgres: %s.%s returned %d columns, expected %u",
                    t->db, t->name, PQnfields(r), t->ncols);
        goto out;
    }
    for (int row = 0; row < nr; row++) {
        cdc_change_t *ch = cdc_txn_add(tx, CDC_OP_READ, t);
        cdc_value_t *vals = cdc_txn_values(tx, t->ncols);
        for (uint32_t i = 0; i < t->ncols; i++) {
            if (PQgetisnull(r, row, (int)i)) {
                vals[i].kind = CDC_V_NULL;
                continue;
            }
            if (cdc_pg_value_text(pt->oid[i], PQgetvalue(r, row, (int)i),
                                  (size_t)PQgetlength(r, row, (int)i),
                                  &tx->arena, &vals[i], err)) {
                cdc_err_detail(err, "column %s of %s.%s", t->cols[i].name,
                               t->db, t->name);
                goto out;
            }
        }
        ch->after = vals;
    }
    if (nr)
        *last = key_word(t, r, nr - 1, t->pk);
    *nrows = (uint32_t)nr;
    rc = 0;
out:
    if (r)
        PQclear(r);
    if (own_txn && PQtransactionStatus(s->c) != PQTRANS_IDLE) {
        cdc_err_t e2;
        exec(s, rc ? "ROLLBACK" : "COMMIT", rc ? &e2 : err);
    }
    if (params)
        for (uint32_t k = 0; k < 2 * t->npk; k++)
            free(params[k]);
    free(params);
    if (rc) {
        free(*last);
        *last = NULL;
    }
    return rc;
}

static int pg_max_key(cdc_snap_t *base, cdc_table_t *t, const char *where,
                      char **out, cdc_err_t *err)
{
    pg_snap_t *s = (pg_snap_t *)base;
    cdc_buf_t sql = CDC_BUF_INIT;
    PGresult *r;

    *out = NULL;
    cdc_buf_puts(&sql, "SELECT ");
    for (uint32_t k = 0; k < t->npk; k++) {
        if (k)
            cdc_buf_putc(&sql, ',');
        put_ident(s, &sql, t->cols[t->pk[k]].name);
    }
    cdc_buf_puts(&sql, " FROM ");
    put_ident(s, &sql, t->db);
    cdc_buf_putc(&sql, '.');
    put_ident(s, &sql, t->name);
    if (where)
        cdc_buf_printf(&sql, " WHERE (%s)", where);
    cdc_buf_puts(&sql, " ORDER BY ");
    for (uint32_t k = 0; k < t->npk; k++) {
        if (k)
            cdc_buf_putc(&sql, ',');
        put_ident(s, &sql, t->cols[t->pk[k]].name);
        cdc_buf_puts(&sql, " DESC");
    }
    cdc_buf_puts(&sql, " LIMIT 1");
    r = q(s, err, sql.p, 0, NULL);
    cdc_buf_free(&sql);
    if (!r)
        return -1;
    if (PQntuples(r) == 1)
        *out = key_word(t, r, 0, NULL);
    PQclear(r);
    return 0;
}

/* ---- signal table and window reader -------------------------------------- */

static int sig_name(pg_snap_t *s, const char *sig, cdc_buf_t *b,
                    cdc_err_t *err)
{
    /* the last dot: the signal table's own name has none, a schema may */
    const char *dot = strrchr(sig, '.');
    char sch[256];
    if (!dot || dot == sig || !dot[1] || (size_t)(dot - sig) >= sizeof(sch))
        return cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                           "backfill.signal_table '%s' is not schema.table",
                           sig);
    memcpy(sch, sig, (size_t)(dot - sig));
    sch[dot - sig] = '\0';
    put_ident(s, b, sch);
    cdc_buf_putc(b, '.');
    put_ident(s, b, dot + 1);
    return 0;
}

static int pg_signal_init(cdc_snap_t *base, const char *sig, cdc_err_t *err)
{
    pg_snap_t *s = (pg_snap_t *)base;
    cdc_buf_t b = CDC_BUF_INIT;
    int rc;
    cdc_buf_puts(&b, "CREATE TABLE IF NOT EXISTS ");
    if (sig_name(s, sig, &b, err)) {
        cdc_buf_free(&b);
        return -1;
    }
    cdc_buf_puts(&b, " (id text PRIMARY KEY, kind text NOT NULL, ts "
                     "timestamptz NOT NULL DEFAULT now())");
    rc = exec(s, b.p, err);
    if (rc)
        cdc_err_hint(err, "create the signal table yourself or grant CREATE "
                          "on its schema; see docs/BACKFILL.md");
    cdc_buf_free(&b);
    return rc;
}

static int pg_watermark(cdc_snap_t *base, const char *sig, const char *id,
                        cdc_err_t *err)
{
    pg_snap_t *s = (pg_snap_t *)base;
    cdc_buf_t b = CDC_BUF_INIT;
    const char *kind = strrchr(id, '-');
    const char *p[2] = {id, kind ? kind + 1 : "w"};
    PGresult *r;
    cdc_buf_puts(&b, "INSERT INTO ");
    if (sig_name(s, sig, &b, err)) {
        cdc_buf_free(&b);
        return -1;
    }
    cdc_buf_puts(&b, " (id, kind) VALUES ($1, $2)");
    r = q(s, err, b.p, 2, p);
    cdc_buf_free(&b);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

static int pg_signal_cleanup(cdc_snap_t *base, const char *sig,
                             const char *prefix, cdc_err_t *err)
{
    pg_snap_t *s = (pg_snap_t *)base;
    cdc_buf_t b = CDC_BUF_INIT, pat = CDC_BUF_INIT;
    const char *p[1];
    PGresult *r;
    cdc_buf_puts(&b, "DELETE FROM ");
    if (sig_name(s, sig, &b, err)) {
        cdc_buf_free(&b);
        return -1;
    }
    cdc_buf_printf(&pat, "%s%%", prefix);
    p[0] = pat.p;
    cdc_buf_puts(&b, " WHERE id LIKE $1");
    r = q(s, err, b.p, 1, p);
    cdc_buf_free(&b);
    cdc_buf_free(&pat);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

static void window_slot(const cdc_conf_t *conf, int worker, char *out,
                        size_t n)
{
    const char *slot = cdc_conf_get(conf, "postgres.slot", "autoglm_cdc");
    snprintf(out, n, "%.50s_bf%d", slot, worker);
}

static void drop_slot(pg_snap_t *s, const char *slot)
{
    const char *p[1] = {slot};
    cdc_err_t err;
    for (int i = 0; i < 50; i++) {
        PGresult *r = q(s, &err,
                        "SELECT pg_drop_replication_slot(slot_name) FROM "
                        "pg_replication_slots WHERE slot_name = $1 AND "
                        "active_pid IS NULL",
                        1, p);
        if (r)
            PQclear(r);
        r = q(s, &err, "SELECT 1 FROM pg_replication_slots WHERE slot_name "
                       "= $1", 1, p);
        if (!r)
            return;
        int left = PQntuples(r);
        PQclear(r);
        if (!left)
            return;
        usleep(100000); /* the walsender is still exiting */
    }
    CDC_WARN(FAC, "replication slot %s is still active; drop it when its "
                  "session ended: SELECT pg_drop_replication_slot('%s')",
             slot, slot);
}

/* The window reader's own publication, created by its source and
 * dropped with its slot (docs/BACKFILL.md). */
static void drop_publication(pg_snap_t *s, const char *pub)
{
    cdc_buf_t b = CDC_BUF_INIT;
    char *pq = PQescapeIdentifier(s->c, pub, strlen(pub));
    cdc_err_t err = {0};

    if (!pq)
        return;
    cdc_buf_printf(&b, "DROP PUBLICATION IF EXISTS %s", pq);
    if (exec(s, b.p, &err))
        CDC_WARN(FAC, "cannot drop the backfill's publication %s: %s; drop "
                 "it yourself: %s", pub, err.msg, b.p);
    PQfreemem(pq);
    cdc_buf_free(&b);
}

static void pg_window_conf(cdc_snap_t *base, cdc_conf_t *wconf, int worker,
                           const char *tables, const char *sig)
{
    pg_snap_t *s = (pg_snap_t *)base;
    char slot[80];
    cdc_buf_t b = CDC_BUF_INIT;
    const char *pub = cdc_conf_get(wconf, "postgres.publication",
                                   "autoglm_cdc");

    window_slot(wconf, worker, slot, sizeof(slot));
    drop_slot(s, slot); /* left by a killed run */
    cdc_conf_set(wconf, "postgres.slot", slot, "backfill");
    /* one per worker, like the slot: a worker that finishes drops its
     * own without pulling the rug from the others */
    cdc_buf_printf(&b, "%.50s_bf%d", pub, worker);
    drop_publication(s, b.p); /* left by a killed run, maybe other tables */
    cdc_conf_set(wconf, "postgres.publication", b.p, "backfill");
    cdc_buf_reset(&b);
    {
        /* the tables are quoted where needed; quote the signal table too
         * (its schema is a table's, which may hold anything) */
        const char *dot = strrchr(sig, '.');
        char sch[256];
        snprintf(sch, sizeof(sch), "%.*s", dot ? (int)(dot - sig) : 0, sig);
        cdc_buf_printf(&b, "%s,", tables);
        cdc_backfill_name_put(&b, sch, dot ? dot + 1 : sig);
    }
    cdc_conf_set(wconf, "postgres.tables", b.p, "backfill");
    cdc_conf_set(wconf, "postgres.from", "now", "backfill");
    cdc_buf_free(&b);
}

static void pg_window_drop(cdc_snap_t *base, const cdc_conf_t *wconf)
{
    pg_snap_t *s = (pg_snap_t *)base;
    drop_slot(s, cdc_conf_get(wconf, "postgres.slot", ""));
    drop_publication(s, cdc_conf_get(wconf, "postgres.publication", ""));
}

const cdc_snap_ops_t cdc_snap_postgres_ops = {
    .name = "postgres",
    .connector = "postgresql",
    .open = pg_open,
    .describe = pg_describe,
    .list_tables = pg_list_tables,
    .begin_consistent = pg_begin_consistent,
    .end_consistent = pg_end_consistent,
    .read_chunk = pg_read_chunk,
    .max_key = pg_max_key,
    .signal_init = pg_signal_init,
    .watermark = pg_watermark,
    .signal_cleanup = pg_signal_cleanup,
    .window_conf = pg_window_conf,
    .window_drop = pg_window_drop,
    .close = pg_close,
};
