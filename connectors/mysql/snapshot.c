/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot.c - the MySQL/MariaDB snapshot driver of `autoglm-cdc backfill`
 * (cdc/backfill.h).
 *
 * Rows are read with server-side prepared statements, i.e. the binary
 * result protocol: integers, FLOAT and DOUBLE arrive as their binary
 * values (no text round trip can lose a float's bits), DECIMAL as the
 * server's exact text, temporal values as MYSQL_TIME, strings as bytes in
 * the session character set (utf8mb4: the server converts latin1, ucs2,
 * ... exactly as the binlog decoder's tables do) and binary strings,
 * BLOBs, BIT and GEOMETRY as raw bytes.  The session runs with
 * time_zone '+00:00', so TIMESTAMP values are UTC.  The conversion into
 * cdc_value_t follows the binlog decoder (binlog_value.c) type by type:
 *
 *   integers        INT / UINT (UNSIGNED_FLAG)      YEAR   INT (0 or yyyy)
 *   FLOAT / DOUBLE  FLOAT / DOUBLE                  DECIMAL DECIMAL text
 *   BIT(n)          UINT (big-endian bytes)
 *   DATE            "YYYY-MM-DD"     DATETIME(n) "YYYY-MM-DD HH:MM:SS[.n]"
 *   TIMESTAMP(n)    "YYYY-MM-DDTHH:MM:SS[.n]Z"; zero: "0000-00-00 00:00:00[.0]"
 *   TIME(n)         "[-]HH:MM:SS[.n]"
 *   ENUM            STRING           SET  JSON array in definition order
 *   text            STRING           binary collation  BYTES (BINARY(n) whole)
 *   JSON (MySQL)    JSON text        MariaDB JSON (json_valid check)  JSON
 *   GEOMETRY        JSON {"srid":N,"wkb":"<base64>"}
 *
 * Chunks: keyset pagination on the primary key (or, without one, the
 * first unique index over NOT NULL columns):
 *   SELECT cols FROM t WHERE (k1 > ? OR (k1 = ? AND k2 > ?) ...)
 *     [AND (where)] ORDER BY k1, k2 LIMIT n
 * The expanded OR form is what MariaDB's range optimizer turns into index
 * ranges (it does not for row constructors).  The last key of a chunk is
 * kept as typed cells and bound as parameters of the next chunk; in the
 * progress file it is one word: cells joined by ',' as
 *   i<int> u<uint> f<hex double> n<decimal> s<hex utf8> b<hex bytes>
 *   t<y>.<mo>.<d>.<h>.<mi>.<s>.<us>.<neg>.<type>
 *
 * Consistent first load: MariaDB START TRANSACTION WITH CONSISTENT
 * SNAPSHOT and the status variables binlog_snapshot_file/position (the
 * binlog position of exactly that snapshot, no lock); MySQL the same under
 * a brief FLUSH TABLES WITH READ LOCK and SHOW MASTER / BINARY LOG STATUS.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <mysql.h>
#include <yajl/yajl_parse.h>

#include "cdc/jsontree.h"
#include "cdc/util.h"
#include "cdc/backfill.h"
#include "cdc/buf.h"
#include "cdc/log.h"
#include "cdc/pipeline.h"
#include "connectors/mysql/binlog_value_int.h"
#include "connectors/mysql/conn.h"

/* this driver's ops table (defined at the end, listed by the registry) */
extern const cdc_snap_ops_t cdc_snap_mysql_ops;

#define FAC "backfill"

typedef struct my_snap {
    cdc_snap_t base;
    MYSQL *m;
    int mariadb;
    uint32_t server_id;
    int in_snapshot;
} my_snap_t;

/* Per-table driver state (tbl->priv). */
typedef struct my_tab {
    char *sql[4];               /* chunk statements, by [after][upto] */
    MYSQL_STMT *stmt[4];
    uint32_t limit;             /* LIMIT the statements were built for */
    char *where;
    uint8_t *json;              /* MariaDB JSON columns (ncols) or NULL */
    uint32_t ncols;
} my_tab_t;

/* One typed key cell. */
typedef struct kcell {
    char kind;     /* i u f n s b t */
    long long i;
    double d;
    MYSQL_TIME tm;
    char *s;       /* n/s/b: bytes (malloc'd) */
    unsigned long len;
} kcell_t;

/* ---- helpers ------------------------------------------------------------ */

static int my_fail(MYSQL *m, cdc_err_t *err, const char *what)
{
    unsigned e = mysql_errno(m);
    int gone = e == 2006 || e == 2013 || e == 2002 || e == 2003;
    cdc_err_set(err, gone ? CDC_EXIT_UNAVAILABLE : CDC_EXIT_FAIL,
                gone ? CDC_ERR_F_RETRIABLE : CDC_ERR_F_FATAL,
                "mysql: %s: %s (error %u)", what, mysql_error(m), e);
    return -1;
}

static int stmt_fail(MYSQL_STMT *st, cdc_err_t *err, const char *what)
{
    unsigned e = mysql_stmt_errno(st);
    int gone = e == 2006 || e == 2013;
    cdc_err_set(err, gone ? CDC_EXIT_UNAVAILABLE : CDC_EXIT_FAIL,
                gone ? CDC_ERR_F_RETRIABLE : CDC_ERR_F_FATAL,
                "mysql: %s: %s (error %u)", what, mysql_stmt_error(st), e);
    return -1;
}

static int exec(my_snap_t *s, const char *sql, cdc_err_t *err)
{
    if (mysql_real_query(s->m, sql, strlen(sql))) {
        my_fail(s->m, err, "query failed");
        cdc_err_detail(err, "%.400s", sql);
        return -1;
    }
    MYSQL_RES *r = mysql_store_result(s->m);
    if (r)
        mysql_free_result(r);
    return 0;
}

static MYSQL_RES *query(my_snap_t *s, const char *sql, cdc_err_t *err)
{
    MYSQL_RES *r;
    if (mysql_real_query(s->m, sql, strlen(sql))) {
        my_fail(s->m, err, "query failed");
        cdc_err_detail(err, "%.400s", sql);
        return NULL;
    }
    r = mysql_store_result(s->m);
    if (!r) {
        my_fail(s->m, err, "query returned no result");
        cdc_err_detail(err, "%.400s", sql);
    }
    return r;
}

/* 'str' escaped into b as a quoted SQL string literal. */
static void put_lit(my_snap_t *s, cdc_buf_t *b, const char *str)
{
    size_t n = strlen(str);
    char *e = cdc_xmalloc(2 * n + 1);
    mysql_real_escape_string(s->m, e, str, (unsigned long)n);
    cdc_buf_printf(b, "'%s'", e);
    free(e);
}

/* Identifier quoted with backticks. */
static void put_ident(cdc_buf_t *b, const char *id)
{
    cdc_buf_quoted(b, id, '`');
}

/* "db.table" -> db, table (split at the first dot). */
static int split_name(const char *full, char *db, size_t dn, char *tb,
                      size_t tn)
{
    /* the last dot: the signal table's own name has none, a database
     * name may */
    const char *dot = strrchr(full, '.');
    if (!dot || dot == full || !dot[1] || (size_t)(dot - full) >= dn ||
        strlen(dot + 1) >= tn)
        return -1;
    memcpy(db, full, (size_t)(dot - full));
    db[dot - full] = '\0';
    strcpy(tb, dot + 1);
    return 0;
}

/* ---- connect ------------------------------------------------------------ */

static cdc_snap_t *my_open(const cdc_conf_t *conf, int worker, cdc_err_t *err)
{
    cdc_my_conf_t cc;
    my_snap_t *s = NULL;
    (void)worker;

    /* mysql.dsn and the mysql.* connection keys, as the binlog source
     * reads them (conn.h); the tables are named with their database */
    if (cdc_my_conf_load(&cc, conf, "mysql", err) < 0)
        return NULL;
    s = cdc_xcalloc(1, sizeof(*s));
    s->m = cdc_my_connect(&cc, NULL, 0, 3600,
                          CDC_MY_NO_DB | CDC_MY_FOUND_ROWS,
                          "backfill: cannot connect", err);
    if (!s->m)
        goto fail;
    s->mariadb = strstr(mysql_get_server_info(s->m), "MariaDB") != NULL;
    if (exec(s, "SET NAMES utf8mb4", err) ||
        exec(s, "SET SESSION time_zone = '+00:00'", err) ||
        exec(s, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
             err))
        goto fail;
    {
        MYSQL_RES *r = query(s, "SELECT @@server_id", err);
        MYSQL_ROW row;
        if (!r)
            goto fail;
        if ((row = mysql_fetch_row(r)) && row[0])
            s->server_id = (uint32_t)strtoul(row[0], NULL, 10);
        mysql_free_result(r);
    }
    s->base.ops = &cdc_snap_mysql_ops;
    cdc_my_conf_free(&cc);
    return &s->base;
fail:
    if (s) {
        if (s->m)
            mysql_close(s->m);
        free(s);
    }
    cdc_my_conf_free(&cc);
    return NULL;
}

static void my_close(cdc_snap_t *base)
{
    my_snap_t *s = (my_snap_t *)base;
    if (!s)
        return;
    if (s->m)
        mysql_close(s->m);
    free(s);
}

/* ---- describe ----------------------------------------------------------- */

static void tab_free(void *p)
{
    my_tab_t *t = p;
    if (!t)
        return;
    for (int i = 0; i < 4; i++) {
        if (t->stmt[i])
            mysql_stmt_close(t->stmt[i]);
        free(t->sql[i]);
    }
    free(t->where);
    free(t->json);
    free(t);
}

static int my_describe(cdc_snap_t *base, const char *db, const char *table,
                       cdc_table_t **out, uint64_t *est, cdc_err_t *err)
{
    my_snap_t *s = (my_snap_t *)base;
    cdc_buf_t q = CDC_BUF_INIT;
    MYSQL_RES *r = NULL;
    MYSQL_ROW row;
    cdc_table_t *t = NULL;
    my_tab_t *mt;
    char **names = NULL;
    int *nullable = NULL;
    uint32_t n = 0;
    int rc = -1;

    *out = NULL;
    *est = 0;
    cdc_buf_puts(&q, "SELECT COLUMN_NAME, IS_NULLABLE FROM "
                     "information_schema.COLUMNS WHERE TABLE_SCHEMA = ");
    put_lit(s, &q, db);
    cdc_buf_puts(&q, " AND TABLE_NAME = ");
    put_lit(s, &q, table);
    cdc_buf_puts(&q, " ORDER BY ORDINAL_POSITION");
    if (!(r = query(s, q.p, err)))
        goto out;
    while ((row = mysql_fetch_row(r))) {
        names = cdc_xrealloc(names, (n + 1) * sizeof(*names));
        nullable = cdc_xrealloc(nullable, (n + 1) * sizeof(*nullable));
        names[n] = cdc_xstrdup(row[0] ? row[0] : "");
        nullable[n++] = row[1] && !strcmp(row[1], "YES");
    }
    mysql_free_result(r);
    r = NULL;
    if (!n) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "mysql: table %s.%s does not exist (or has no columns "
                    "visible to this user)", db, table);
        cdc_err_hint(err, "check --table (db.table) and the user's SELECT "
                          "grant");
        goto out;
    }
    t = cdc_table_new(db, table, n);
    for (uint32_t i = 0; i < n; i++) {
        t->cols[i].name = names[i];
        names[i] = NULL;
        if (nullable[i])
            t->cols[i].flags |= CDC_COL_NULLABLE;
    }
    t->pk = cdc_xcalloc(n, sizeof(*t->pk));

    /* key: PRIMARY, else the first unique index of NOT NULL columns */
    cdc_buf_reset(&q);
    cdc_buf_puts(&q, "SELECT INDEX_NAME, COLUMN_NAME, NULLABLE FROM "
                     "information_schema.STATISTICS WHERE TABLE_SCHEMA = ");
    put_lit(s, &q, db);
    cdc_buf_puts(&q, " AND TABLE_NAME = ");
    put_lit(s, &q, table);
    cdc_buf_puts(&q, " AND NON_UNIQUE = 0 ORDER BY INDEX_NAME <> 'PRIMARY', "
                     "INDEX_NAME, SEQ_IN_INDEX");
    if (!(r = query(s, q.p, err)))
        goto out;
    {
        char idx[256] = "";
        int bad = 0, chosen = 0;
        while ((row = mysql_fetch_row(r))) {
            if (chosen && strcmp(row[0], idx))
                break; /* finished the chosen index */
            if (strcmp(row[0], idx)) {
                snprintf(idx, sizeof(idx), "%s", row[0]);
                t->npk = 0;
                bad = 0;
            }
            if (bad)
                continue;
            if (row[2] && !strcmp(row[2], "YES")) {
                bad = 1;
                t->npk = 0;
                continue;
            }
            for (uint32_t i = 0; i < n; i++)
                if (!strcmp(t->cols[i].name, row[1]))
                    t->pk[t->npk++] = i;
            chosen = 1;
        }
        if (bad)
            t->npk = 0;
    }
    mysql_free_result(r);
    r = NULL;
    if (!t->npk) {
        cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                    "mysql: table %s.%s has no primary key (nor a unique key "
                    "over NOT NULL columns)", db, table);
        cdc_err_hint(err, "keyset chunks need a key: add a primary key, or "
                          "leave the table out of the backfill");
        goto out;
    }
    for (uint32_t k = 0; k < t->npk; k++)
        t->cols[t->pk[k]].flags |= CDC_COL_PK;

    /* estimate */
    cdc_buf_reset(&q);
    cdc_buf_puts(&q, "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE "
                     "TABLE_SCHEMA = ");
    put_lit(s, &q, db);
    cdc_buf_puts(&q, " AND TABLE_NAME = ");
    put_lit(s, &q, table);
    if (!(r = query(s, q.p, err)))
        goto out;
    if ((row = mysql_fetch_row(r)) && row[0])
        *est = strtoull(row[0], NULL, 10);
    mysql_free_result(r);
    r = NULL;

    mt = cdc_xcalloc(1, sizeof(*mt));
    mt->ncols = n;
    t->priv = mt;
    t->priv_free = tab_free;

    /* MariaDB JSON columns: LONGTEXT with CHECK (json_valid(`c`)) */
    if (s->mariadb) {
        cdc_err_t e2 = {0};
        cdc_buf_reset(&q);
        cdc_buf_puts(&q, "SELECT CHECK_CLAUSE FROM "
                         "information_schema.CHECK_CONSTRAINTS WHERE "
                         "CONSTRAINT_SCHEMA = ");
        put_lit(s, &q, db);
        cdc_buf_puts(&q, " AND TABLE_NAME = ");
        put_lit(s, &q, table);
        if ((r = query(s, q.p, &e2))) {
            while ((row = mysql_fetch_row(r))) {
                char *c = row[0] ? cdc_mysql_json_check_col(row[0]) : NULL;
                if (!c)
                    continue;
                for (uint32_t i = 0; i < n; i++)
                    if (!strcmp(t->cols[i].name, c)) {
                        if (!mt->json)
                            mt->json = cdc_xcalloc(n, 1);
                        mt->json[i] = 1;
                    }
                free(c);
            }
            mysql_free_result(r);
            r = NULL;
        }
    }
    *out = t;
    t = NULL;
    rc = 0;
out:
    if (r)
        mysql_free_result(r);
    for (uint32_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(nullable);
    cdc_table_destroy(t);
    cdc_buf_free(&q);
    return rc;
}

static int my_list_tables(cdc_snap_t *base, const cdc_conf_t *conf,
                          char **out, cdc_err_t *err)
{
    my_snap_t *s = (my_snap_t *)base;
    cdc_filter_t *f = cdc_filter_new(conf);
    MYSQL_RES *r;
    MYSQL_ROW row;
    cdc_buf_t b = CDC_BUF_INIT;

    r = query(s, "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema."
                 "TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT "
                 "IN ('mysql', 'information_schema', 'performance_schema', "
                 "'sys') AND TABLE_NAME <> 'autoglm_cdc_signal' "
                 "ORDER BY 1, 2", err);
    if (!r) {
        cdc_filter_destroy(f);
        return -1;
    }
    while ((row = mysql_fetch_row(r))) {
        if (!cdc_filter_match(f, row[0], row[1]))
            continue;
        if (b.len)
            cdc_buf_putc(&b, ',');
        cdc_backfill_name_put(&b, row[0], row[1]);
    }
    mysql_free_result(r);
    cdc_filter_destroy(f);
    *out = b.p ? b.p : cdc_xstrdup("");
    return 0;
}

/* ---- consistent snapshot ------------------------------------------------ */

static int my_begin_consistent(cdc_snap_t *base, const char *tables,
                               cdc_snap_stamp_t *st, char *pos_text,
                               size_t pos_len, cdc_err_t *err)
{
    my_snap_t *s = (my_snap_t *)base;
    MYSQL_RES *r;
    MYSQL_ROW row;
    struct timeval tv;

    (void)tables;
    memset(st, 0, sizeof(*st));
    if (s->mariadb) {
        if (exec(s, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
                 err))
            return -1;
        if (!(r = query(s, "SHOW STATUS LIKE 'binlog_snapshot_%'", err)))
            return -1;
        while ((row = mysql_fetch_row(r))) {
            if (!strcasecmp(row[0], "binlog_snapshot_file") && row[1])
                snprintf(st->file, sizeof(st->file), "%s", row[1]);
            else if (!strcasecmp(row[0], "binlog_snapshot_position") &&
                     row[1])
                st->pos = strtoull(row[1], NULL, 10);
        }
        mysql_free_result(r);
        if (!st->file[0]) {
            exec(s, "ROLLBACK", err);
            cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                        "mysql: the server reports no binlog snapshot "
                        "position (is log_bin on?)");
            return -1;
        }
        {
            cdc_buf_t q = CDC_BUF_INIT;
            cdc_buf_puts(&q, "SELECT BINLOG_GTID_POS(");
            put_lit(s, &q, st->file);
            cdc_buf_printf(&q, ", %" PRIu64 ")", st->pos);
            r = query(s, q.p, err);
            cdc_buf_free(&q);
            if (!r)
                return -1;
            if ((row = mysql_fetch_row(r)) && row[0])
                snprintf(pos_text, pos_len, "%s", row[0]);
            else
                pos_text[0] = '\0';
            mysql_free_result(r);
        }
    } else {
        /* MySQL: no snapshot position variable; take it under a brief
         * global read lock (what mysqldump --single-transaction
         * --source-data does). */
        if (exec(s, "FLUSH TABLES WITH READ LOCK", err))
            return -1;
        if (exec(s, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
                 err)) {
            cdc_err_t e2;
            exec(s, "UNLOCK TABLES", &e2);
            return -1;
        }
        r = query(s, "SHOW BINARY LOG STATUS", err);
        if (!r) {
            cdc_err_clear(err);
            r = query(s, "SHOW MASTER STATUS", err);
        }
        if (r) {
            if ((row = mysql_fetch_row(r)) && row[0]) {
                snprintf(st->file, sizeof(st->file), "%s", row[0]);
                st->pos = row[1] ? strtoull(row[1], NULL, 10) : 0;
                snprintf(pos_text, pos_len, "%s",
                         mysql_num_fields(r) > 4 && row[4] ? row[4] : "");
            }
            mysql_free_result(r);
        }
        {
            cdc_err_t e2;
            exec(s, "UNLOCK TABLES", &e2);
        }
        if (!r)
            return -1;
    }
    gettimeofday(&tv, NULL);
    st->connector = s->mariadb ? "mariadb" : "mysql";
    st->server_id = s->server_id;
    st->commit_us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
    s->in_snapshot = 1;
    return 0;
}

static int my_end_consistent(cdc_snap_t *base, cdc_err_t *err)
{
    my_snap_t *s = (my_snap_t *)base;
    if (!s->in_snapshot)
        return 0;
    s->in_snapshot = 0;
    return exec(s, "COMMIT", err);
}

/* ---- key cells ---------------------------------------------------------- */

static void put_hex(cdc_buf_t *b, const char *p, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        cdc_buf_putc(b, hx[(unsigned char)p[i] >> 4]);
        cdc_buf_putc(b, hx[(unsigned char)p[i] & 15]);
    }
}

static void kcells_free(kcell_t *c, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        free(c[i].s);
}

/* Parse the progress-file form; -1 if malformed. */
static int kcells_parse(const char *txt, kcell_t *c, uint32_t n)
{
    const char *p = txt;
    memset(c, 0, n * sizeof(*c));
    for (uint32_t i = 0; i < n; i++) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (!len || (i + 1 < n && !e) || (i + 1 == n && e))
            return -1;
        c[i].kind = p[0];
        char *body = cdc_xstrndup(p + 1, len - 1);
        switch (p[0]) {
        case 'i': c[i].i = strtoll(body, NULL, 10); break;
        case 'u': c[i].i = (long long)strtoull(body, NULL, 10); break;
        case 'f': c[i].d = strtod(body, NULL); break;
        case 'n':
            c[i].s = body;
            c[i].len = (unsigned long)strlen(body);
            body = NULL;
            break;
        case 's':
        case 'b': {
            size_t bl = strlen(body);
            if (bl % 2) {
                free(body);
                return -1;
            }
            c[i].s = cdc_xmalloc(bl / 2 + 1);
            for (size_t k = 0; k < bl / 2; k++) {
                int h = cdc_hexval(body[2 * k]), l = cdc_hexval(body[2 * k + 1]);
                if (h < 0 || l < 0) {
                    free(body);
                    return -1;
                }
                c[i].s[k] = (char)(h * 16 + l);
            }
            c[i].len = (unsigned long)(bl / 2);
            break;
        }
        case 't': {
            unsigned v[9];
            if (sscanf(body, "%u.%u.%u.%u.%u.%u.%u.%u.%u", &v[0], &v[1], &v[2],
                       &v[3], &v[4], &v[5], &v[6], &v[7], &v[8]) != 9) {
                free(body);
                return -1;
            }
            c[i].tm.year = v[0];
            c[i].tm.month = v[1];
            c[i].tm.day = v[2];
            c[i].tm.hour = v[3];
            c[i].tm.minute = v[4];
            c[i].tm.second = v[5];
            c[i].tm.second_part = v[6];
            c[i].tm.neg = (my_bool)v[7];
            c[i].tm.time_type = (enum enum_mysql_timestamp_type)v[8];
            if (c[i].tm.time_type == MYSQL_TIMESTAMP_TIME) {
                /* the wire format carries days and hours < 24 */
                c[i].tm.day = c[i].tm.hour / 24;
                c[i].tm.hour %= 24;
            }
            break;
        }
        default:
            free(body);
            return -1;
        }
        free(body);
        p = e ? e + 1 : p + len;
    }
    return 0;
}

static void bind_cell(MYSQL_BIND *b, kcell_t *c)
{
    memset(b, 0, sizeof(*b));
    switch (c->kind) {
    case 'i':
    case 'u':
        b->buffer_type = MYSQL_TYPE_LONGLONG;
        b->buffer = &c->i;
        b->is_unsigned = c->kind == 'u';
        break;
    case 'f':
        b->buffer_type = MYSQL_TYPE_DOUBLE;
        b->buffer = &c->d;
        break;
    case 'n':
    case 's':
    case 'b':
        b->buffer_type = c->kind == 'n'   ? MYSQL_TYPE_NEWDECIMAL
                         : c->kind == 's' ? MYSQL_TYPE_STRING
                                          : MYSQL_TYPE_BLOB;
        b->buffer = c->s;
        b->buffer_length = c->len;
        b->length = &c->len;
        break;
    case 't':
        b->buffer_type = c->tm.time_type == MYSQL_TIMESTAMP_DATE
                             ? MYSQL_TYPE_DATE
                         : c->tm.time_type == MYSQL_TIMESTAMP_TIME
                             ? MYSQL_TYPE_TIME
                             : MYSQL_TYPE_DATETIME;
        b->buffer = &c->tm;
        break;
    }
}

/* ---- values ------------------------------------------------------------- */

/* Result column buffers for one chunk. */
typedef struct colbuf {
    MYSQL_FIELD *f;
    int kind;           /* how to convert (enum below) */
    union {
        long long i;
        float fl;
        double d;
        MYSQL_TIME tm;
    } u;
    char *buf;          /* strings */
    unsigned long cap, len;
    my_bool isnull, error;
} colbuf_t;

enum {
    K_INT, K_FLOAT, K_DOUBLE, K_DECIMAL, K_BIT, K_YEAR, K_DATE, K_DATETIME,
    K_TIMESTAMP, K_TIME, K_ENUM, K_SET, K_TEXT, K_BYTES, K_JSON, K_GEOMETRY,
};

static int col_kind(const MYSQL_FIELD *f)
{
    switch (f->type) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_LONGLONG:
        return K_INT;
    case MYSQL_TYPE_YEAR: return K_YEAR;
    case MYSQL_TYPE_FLOAT: return K_FLOAT;
    case MYSQL_TYPE_DOUBLE: return K_DOUBLE;
    case MYSQL_TYPE_DECIMAL:
    case MYSQL_TYPE_NEWDECIMAL: return K_DECIMAL;
    case MYSQL_TYPE_BIT: return K_BIT;
    case MYSQL_TYPE_DATE:
    case MYSQL_TYPE_NEWDATE: return K_DATE;
    case MYSQL_TYPE_DATETIME: return K_DATETIME;
    case MYSQL_TYPE_TIMESTAMP: return K_TIMESTAMP;
    case MYSQL_TYPE_TIME: return K_TIME;
    case MYSQL_TYPE_JSON: return K_JSON;
    case MYSQL_TYPE_GEOMETRY: return K_GEOMETRY;
    default:
        if (f->flags & ENUM_FLAG)
            return K_ENUM;
        if (f->flags & SET_FLAG)
            return K_SET;
        return f->charsetnr == 63 ? K_BYTES : K_TEXT;
    }
}

static int fsp_of(const MYSQL_FIELD *f)
{
    return f->decimals <= 6 ? (int)f->decimals : 0;
}

/* Text of a temporal value (buffer >= 48 bytes), written by the binlog
 * decoder's function (binlog_value_int.h); returns its length. */
static int fmt_temporal(const colbuf_t *c, char *b)
{
    const MYSQL_TIME *m = &c->u.tm;
    cdc_mysql_tm_t t = {m->year, m->month, m->day, m->hour, m->minute,
                        m->second, (unsigned)m->second_part, m->neg != 0};
    int what = c->kind == K_DATE        ? CDC_MYTIME_DATE
               : c->kind == K_TIME      ? CDC_MYTIME_TIME
               : c->kind == K_TIMESTAMP ? CDC_MYTIME_TIMESTAMP
                                        : CDC_MYTIME_DATETIME;

    if (what == CDC_MYTIME_TIME) { /* the binary protocol splits off days */
        t.hour = m->day * 24 + m->hour;
        t.day = 0;
    }
    return cdc_mysql_time_text(what, &t, fsp_of(c->f), b);
}

static void set_str(cdc_value_t *v, int kind, cdc_arena_t *a, const char *p,
                    size_t n)
{
    v->kind = (uint8_t)kind;
    v->s = cdc_arena_memdup(a, p, n);
    v->len = n;
}

static int convert(const colbuf_t *c, int is_json, cdc_arena_t *a,
                   cdc_value_t *v, cdc_err_t *err)
{
    char b[64];
    int n;

    if (c->isnull) {
        v->kind = CDC_V_NULL;
        return 0;
    }
    switch (c->kind) {
    case K_INT:
        if (c->f->flags & UNSIGNED_FLAG) {
            v->kind = CDC_V_UINT;
            v->u.u = (uint64_t)c->u.i;
        } else {
            v->kind = CDC_V_INT;
            v->u.i = c->u.i;
        }
        return 0;
    case K_YEAR:
        v->kind = CDC_V_INT;
        v->u.i = c->u.i;
        return 0;
    case K_FLOAT:
        v->kind = CDC_V_FLOAT;
        v->u.d = c->u.fl;
        return 0;
    case K_DOUBLE:
        v->kind = CDC_V_DOUBLE;
        v->u.d = c->u.d;
        return 0;
    case K_DECIMAL:
        set_str(v, CDC_V_DECIMAL, a, c->buf, c->len);
        return 0;
    case K_BIT:
        v->kind = CDC_V_UINT;
        v->u.u = cdc_mysql_bit_uint((const uint8_t *)c->buf, c->len);
        return 0;
    case K_DATE:
    case K_DATETIME:
    case K_TIMESTAMP:
    case K_TIME:
        n = fmt_temporal(c, b);
        set_str(v, CDC_V_STRING, a, b, (size_t)n);
        return 0;
    case K_ENUM:
        set_str(v, CDC_V_STRING, a, c->buf, c->len);
        return 0;
    case K_SET: {
        cdc_buf_t j = CDC_BUF_INIT;
        unsigned long st = 0;
        /* the server lists the members in definition order, comma
         * separated (a member cannot hold a comma) */
        for (unsigned long i = 0; c->len && i <= c->len; i++) {
            if (i == c->len || c->buf[i] == ',') {
                cdc_mysql_set_member(&j, c->buf + st, i - st);
                st = i + 1;
            }
        }
        cdc_mysql_set_end(&j);
        set_str(v, CDC_V_JSON, a, j.p, j.len);
        cdc_buf_free(&j);
        return 0;
    }
    case K_TEXT:
        if (cdc_mysql_utf8_valid((const uint8_t *)c->buf, c->len) != c->len)
            return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                               "column %s: the server sent invalid UTF-8",
                               c->f->name);
        if (is_json && cdc_json_valid(c->buf, c->len))
            set_str(v, CDC_V_JSON, a, c->buf, c->len);
        else
            set_str(v, CDC_V_STRING, a, c->buf, c->len);
        return 0;
    case K_BYTES:
        if (is_json && cdc_json_valid(c->buf, c->len))
            set_str(v, CDC_V_JSON, a, c->buf, c->len);
        else
            set_str(v, CDC_V_BYTES, a, c->buf, c->len);
        return 0;
    case K_JSON:
        set_str(v, CDC_V_JSON, a, c->len ? c->buf : "null",
                c->len ? c->len : 4);
        return 0;
    case K_GEOMETRY: {
        cdc_buf_t j = CDC_BUF_INIT;
        if (cdc_mysql_geometry_json((const uint8_t *)c->buf, c->len, &j) < 0)
            return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                               "column %s: GEOMETRY shorter than its SRID",
                               c->f->name);
        set_str(v, CDC_V_JSON, a, j.p, j.len);
        cdc_buf_free(&j);
        return 0;
    }
    }
    return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                       "column %s: unsupported type %d", c->f->name,
                       (int)c->f->type);
}

/* The key cell of a result column. */
static void cell_text(cdc_buf_t *b, const colbuf_t *c)
{
    char tmp[64];
    switch (c->kind) {
    case K_INT:
    case K_YEAR:
        if (c->f->flags & UNSIGNED_FLAG)
            cdc_buf_printf(b, "u%llu", (unsigned long long)c->u.i);
        else
            cdc_buf_printf(b, "i%lld", c->u.i);
        break;
    case K_FLOAT:
        snprintf(tmp, sizeof(tmp), "f%a", (double)c->u.fl);
        cdc_buf_puts(b, tmp);
        break;
    case K_DOUBLE:
        snprintf(tmp, sizeof(tmp), "f%a", c->u.d);
        cdc_buf_puts(b, tmp);
        break;
    case K_DECIMAL:
        cdc_buf_putc(b, 'n');
        cdc_buf_put(b, c->buf, c->len);
        break;
    case K_DATE:
    case K_DATETIME:
    case K_TIMESTAMP:
    case K_TIME: {
        const MYSQL_TIME *t = &c->u.tm;
        int tt = c->kind == K_DATE   ? MYSQL_TIMESTAMP_DATE
                 : c->kind == K_TIME ? MYSQL_TIMESTAMP_TIME
                                     : MYSQL_TIMESTAMP_DATETIME;
        cdc_buf_printf(b, "t%u.%u.%u.%u.%u.%u.%lu.%u.%d", t->year, t->month,
                       tt == MYSQL_TIMESTAMP_TIME ? 0 : t->day, tt == MYSQL_TIMESTAMP_TIME ? t->hour + t->day * 24
                                                          : t->hour,
                       t->minute, t->second,
                       t->second_part, (unsigned)t->neg, tt);
        break;
    }
    case K_BYTES:
    case K_BIT:
    case K_GEOMETRY:
        cdc_buf_putc(b, 'b');
        put_hex(b, c->buf, c->len);
        break;
    default:
        cdc_buf_putc(b, 's');
        put_hex(b, c->buf, c->len);
        break;
    }
}

/* Result buffers for nf columns: fixed types in place, strings in small
 * buffers that fix_truncated() grows. */
static void bind_cols(MYSQL_FIELD *fields, uint32_t nf, colbuf_t *cb,
                      MYSQL_BIND *rb)
{
    for (uint32_t i = 0; i < nf; i++) {
        MYSQL_FIELD *f = &fields[i];
        colbuf_t *c = &cb[i];
        MYSQL_BIND *b = &rb[i];
        c->f = f;
        c->kind = col_kind(f);
        b->is_null = &c->isnull;
        b->error = &c->error;
        b->length = &c->len;
        switch (c->kind) {
        case K_INT:
        case K_YEAR:
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = &c->u.i;
            b->is_unsigned = (f->flags & UNSIGNED_FLAG) != 0;
            break;
        case K_FLOAT:
            b->buffer_type = MYSQL_TYPE_FLOAT;
            b->buffer = &c->u.fl;
            break;
        case K_DOUBLE:
            b->buffer_type = MYSQL_TYPE_DOUBLE;
            b->buffer = &c->u.d;
            break;
        case K_DATE:
        case K_DATETIME:
        case K_TIMESTAMP:
        case K_TIME:
            b->buffer_type = f->type;
            b->buffer = &c->u.tm;
            b->buffer_length = sizeof(c->u.tm);
            break;
        default:
            c->cap = f->length + 1 < 256 ? f->length + 1 : 256;
            c->buf = cdc_xmalloc(c->cap);
            b->buffer_type = c->kind == K_BYTES || c->kind == K_BIT ||
                                     c->kind == K_GEOMETRY
                                 ? MYSQL_TYPE_BLOB
                                 : MYSQL_TYPE_STRING;
            b->buffer = c->buf;
            b->buffer_length = c->cap;
            break;
        }
    }
}

/* After MYSQL_DATA_TRUNCATED: fetch the cut values again, whole. */
static int fix_truncated(MYSQL_STMT *st, colbuf_t *cb, MYSQL_BIND *rb,
                         uint32_t nf, cdc_err_t *err)
{
    int rebind = 0;
    for (uint32_t i = 0; i < nf; i++) {
        colbuf_t *c = &cb[i];
        if (!c->error || !c->buf)
            continue;
        if (c->len + 1 > c->cap) {
            c->cap = c->len + 1 + c->len / 4;
            c->buf = cdc_xrealloc(c->buf, c->cap);
            rb[i].buffer = c->buf;
            rb[i].buffer_length = c->cap;
            rebind = 1;
        }
        if (mysql_stmt_fetch_column(st, &rb[i], i, 0))
            return stmt_fail(st, err, "cannot fetch a long value");
        c->error = 0;
    }
    if (rebind && mysql_stmt_bind_result(st, rb))
        return stmt_fail(st, err, "cannot bind the chunk result");
    return 0;
}

/* ---- chunks ------------------------------------------------------------- */

/* The four chunk statements: [after key?][up to a key?]. */
static int build_sql(my_tab_t *mt, const cdc_table_t *t, const char *where,
                     uint32_t limit)
{
    cdc_buf_t b = CDC_BUF_INIT, order = CDC_BUF_INIT, gt = CDC_BUF_INIT,
              le = CDC_BUF_INIT;

    cdc_buf_puts(&b, "SELECT ");
    for (uint32_t i = 0; i < t->ncols; i++) {
        if (i)
            cdc_buf_putc(&b, ',');
        put_ident(&b, t->cols[i].name);
    }
    cdc_buf_puts(&b, " FROM ");
    put_ident(&b, t->db);
    cdc_buf_putc(&b, '.');
    put_ident(&b, t->name);
    for (uint32_t k = 0; k < t->npk; k++) {
        if (k)
            cdc_buf_putc(&order, ',');
        put_ident(&order, t->cols[t->pk[k]].name);
    }
    /* key > after: (k1 > ?) OR (k1 = ? AND k2 > ?) OR ...
     * key <= upto: (k1 < ?) OR (k1 = ? AND k2 < ?) OR ... OR (k1 = ? AND
     * k2 = ?) - the expanded forms MariaDB turns into index ranges */
    cdc_buf_putc(&gt, '(');
    cdc_buf_putc(&le, '(');
    for (uint32_t j = 0; j <= t->npk; j++) {
        for (int pass = 0; pass < 2; pass++) {
            cdc_buf_t *c = pass ? &le : &gt;
            if (!pass && j == t->npk)
                continue;
            if (j)
                cdc_buf_puts(c, " OR ");
            cdc_buf_putc(c, '(');
            for (uint32_t k = 0; k <= j && k < t->npk; k++) {
                if (k)
                    cdc_buf_puts(c, " AND ");
                put_ident(c, t->cols[t->pk[k]].name);
                cdc_buf_puts(c, k < j ? " = ?" : pass ? " < ?" : " > ?");
            }
            cdc_buf_putc(c, ')');
        }
    }
    cdc_buf_putc(&gt, ')');
    cdc_buf_putc(&le, ')');

    for (int v = 0; v < 4; v++) {
        cdc_buf_t q = CDC_BUF_INIT;
        int n = 0;
        cdc_buf_puts(&q, b.p);
        if (v & 1) {
            cdc_buf_printf(&q, " WHERE %s", gt.p);
            n++;
        }
        if (v & 2) {
            cdc_buf_printf(&q, "%s%s", n ? " AND " : " WHERE ", le.p);
            n++;
        }
        if (where)
            cdc_buf_printf(&q, "%s(%s)", n ? " AND " : " WHERE ", where);
        cdc_buf_printf(&q, " ORDER BY %s LIMIT %u", order.p, limit);
        free(mt->sql[v]);
        mt->sql[v] = q.p;
    }
    cdc_buf_free(&b);
    cdc_buf_free(&order);
    cdc_buf_free(&gt);
    cdc_buf_free(&le);
    return 0;
}

static int parse_key(const cdc_table_t *t, const char *txt, kcell_t *kc,
                     cdc_err_t *err)
{
    if (kcells_parse(txt, kc, t->npk) == 0)
        return 0;
    cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_FATAL,
                "backfill progress of %s.%s has a malformed key '%s'", t->db,
                t->name, txt);
    cdc_err_hint(err, "delete the progress file to start the table over");
    return -1;
}

static int my_read_chunk(cdc_snap_t *base, cdc_table_t *t, const char *after,
                         const char *upto, const char *where, uint32_t limit,
                         cdc_txn_t *tx, char **last, uint32_t *nrows,
                         cdc_snap_vis_t *vis, cdc_err_t *err)
{
    my_snap_t *s = (my_snap_t *)base;
    my_tab_t *mt = t->priv;
    MYSQL_STMT *st;
    MYSQL_RES *meta = NULL;
    MYSQL_BIND *pb = NULL, *rb = NULL;
    colbuf_t *cb = NULL;
    kcell_t *kc = NULL, *ku = NULL;
    uint32_t nf = 0, rows = 0, np = 0, n = t->npk;
    int rc = -1, r, v = (after ? 1 : 0) | (upto ? 2 : 0);

    *last = NULL;
    *nrows = 0;
    if (vis)
        memset(vis, 0, sizeof(*vis));
    if (limit != mt->limit || (where && (!mt->where || strcmp(where,
                                                                mt->where)))) {
        for (int i = 0; i < 4; i++) {
            if (mt->stmt[i])
                mysql_stmt_close(mt->stmt[i]);
            mt->stmt[i] = NULL;
        }
        mt->limit = limit;
        free(mt->where);
        mt->where = where ? cdc_xstrdup(where) : NULL;
        build_sql(mt, t, where, limit);
    }
    if (!mt->stmt[v]) {
        mt->stmt[v] = mysql_stmt_init(s->m);
        if (mysql_stmt_prepare(mt->stmt[v], mt->sql[v], strlen(mt->sql[v]))) {
            stmt_fail(mt->stmt[v], err, "cannot prepare the chunk query");
            cdc_err_detail(err, "%.400s", mt->sql[v]);
            mysql_stmt_close(mt->stmt[v]);
            mt->stmt[v] = NULL;
            return -1;
        }
    }
    st = mt->stmt[v];
    pb = cdc_xcalloc(n * (n + 1) + n + 1, sizeof(*pb));
    if (after) {
        kc = cdc_xcalloc(n, sizeof(*kc));
        if (parse_key(t, after, kc, err))
            goto out;
        for (uint32_t j = 0; j < n; j++)
            for (uint32_t i = 0; i <= j; i++)
                bind_cell(&pb[np++], &kc[i]);
    }
    if (upto) {
        ku = cdc_xcalloc(n, sizeof(*ku));
        if (parse_key(t, upto, ku, err))
            goto out;
        for (uint32_t j = 0; j <= n; j++)
            for (uint32_t i = 0; i <= j && i < n; i++)
                bind_cell(&pb[np++], &ku[i]);
    }
    if (np && mysql_stmt_bind_param(st, pb)) {
        stmt_fail(st, err, "cannot bind the chunk key");
        goto out;
    }
    /* rows are converted while the server still sends (no
     * store_result): string buffers start small and grow on truncation */
    if (mysql_stmt_execute(st)) {
        stmt_fail(st, err, "chunk query failed");
        cdc_err_detail(err, "%.400s", mt->sql[v]);
        goto out;
    }
    meta = mysql_stmt_result_metadata(st);
    nf = meta ? mysql_num_fields(meta) : 0;
    if (nf != t->ncols) {
        cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                    "mysql: %s.%s returned %u columns, expected %u (table "
                    "altered during the backfill?)", t->db, t->name, nf,
                    t->ncols);
        goto out;
    }
    cb = cdc_xcalloc(nf, sizeof(*cb));
    rb = cdc_xcalloc(nf, sizeof(*rb));
    bind_cols(meta->fields, nf, cb, rb);
    if (mysql_stmt_bind_result(st, rb)) {
        stmt_fail(st, err, "cannot bind the chunk result");
        goto out;
    }
    while ((r = mysql_stmt_fetch(st)) == 0 || r == MYSQL_DATA_TRUNCATED) {
        cdc_change_t *ch;
        cdc_value_t *vals;
        if (r == MYSQL_DATA_TRUNCATED && fix_truncated(st, cb, rb, nf, err))
            goto out;
        ch = cdc_txn_add(tx, CDC_OP_READ, t);
        vals = cdc_txn_values(tx, t->ncols);
        for (uint32_t i = 0; i < nf; i++)
            if (convert(&cb[i], mt->json && mt->json[i], &tx->arena,
                        &vals[i], err))
                goto out;
        ch->after = vals;
        rows++;
    }
    if (r != MYSQL_NO_DATA) {
        stmt_fail(st, err, "fetching a chunk failed");
        goto out;
    }
    if (rows) { /* the buffers still hold the last row */
        cdc_buf_t kb = CDC_BUF_INIT;
        for (uint32_t k = 0; k < t->npk; k++) {
            if (k)
                cdc_buf_putc(&kb, ',');
            cell_text(&kb, &cb[t->pk[k]]);
        }
        *last = kb.p;
    }
    *nrows = rows;
    rc = 0;
out:
    if (st)
        mysql_stmt_free_result(st);
    if (meta)
        mysql_free_result(meta);
    if (cb)
        for (uint32_t i = 0; i < nf; i++)
            free(cb[i].buf);
    free(cb);
    free(rb);
    free(pb);
    if (kc) {
        kcells_free(kc, t->npk);
        free(kc);
    }
    if (ku) {
        kcells_free(ku, t->npk);
        free(ku);
    }
    if (rc) {
        free(*last);
        *last = NULL;
    }
    return rc;
}

/* The largest key now (the end of the table for this run; rows inserted
 * later reach the sink through the stream). */
static int my_max_key(cdc_snap_t *base, cdc_table_t *t, const char *where,
                      char **out, cdc_err_t *err)
{
    my_snap_t *s = (my_snap_t *)base;
    cdc_buf_t q = CDC_BUF_INIT, kb = CDC_BUF_INIT;
    MYSQL_STMT *st = mysql_stmt_init(s->m);
    MYSQL_RES *meta = NULL;
    MYSQL_BIND *rb = NULL;
    colbuf_t *cb = NULL;
    uint32_t nf = 0;
    int rc = -1, r;

    *out = NULL;
    cdc_buf_puts(&q, "SELECT ");
    for (uint32_t k = 0; k < t->npk; k++) {
        if (k)
            cdc_buf_putc(&q, ',');
        put_ident(&q, t->cols[t->pk[k]].name);
    }
    cdc_buf_puts(&q, " FROM ");
    put_ident(&q, t->db);
    cdc_buf_putc(&q, '.');
    put_ident(&q, t->name);
    if (where)
        cdc_buf_printf(&q, " WHERE (%s)", where);
    cdc_buf_puts(&q, " ORDER BY ");
    for (uint32_t k = 0; k < t->npk; k++) {
        if (k)
            cdc_buf_putc(&q, ',');
        put_ident(&q, t->cols[t->pk[k]].name);
        cdc_buf_puts(&q, " DESC");
    }
    cdc_buf_puts(&q, " LIMIT 1");
    if (mysql_stmt_prepare(st, q.p, q.len) || mysql_stmt_execute(st)) {
        stmt_fail(st, err, "cannot read the largest key");
        cdc_err_detail(err, "%.400s", q.p);
        goto out;
    }
    meta = mysql_stmt_result_metadata(st);
    nf = meta ? mysql_num_fields(meta) : 0;
    if (nf != t->npk) {
        cdc_err_set(err, CDC_EXIT_FAIL, 0, "mysql: key query returned %u "
                    "columns", nf);
        goto out;
    }
    cb = cdc_xcalloc(nf, sizeof(*cb));
    rb = cdc_xcalloc(nf, sizeof(*rb));
    bind_cols(meta->fields, nf, cb, rb);
    if (mysql_stmt_bind_result(st, rb)) {
        stmt_fail(st, err, "cannot bind the key result");
        goto out;
    }
    r = mysql_stmt_fetch(st);
    if (r == MYSQL_DATA_TRUNCATED && fix_truncated(st, cb, rb, nf, err))
        goto out;
    if (r == 0 || r == MYSQL_DATA_TRUNCATED) {
        for (uint32_t k = 0; k < nf; k++) {
            if (k)
                cdc_buf_putc(&kb, ',');
            cell_text(&kb, &cb[k]);
        }
        *out = kb.p;
        kb.p = NULL;
        while (mysql_stmt_fetch(st) == 0)
            ;
    } else if (r != MYSQL_NO_DATA) {
        stmt_fail(st, err, "cannot read the largest key");
        goto out;
    }
    rc = 0;
out:
    if (meta)
        mysql_free_result(meta);
    if (cb)
        for (uint32_t i = 0; i < nf; i++)
            free(cb[i].buf);
    free(cb);
    free(rb);
    mysql_stmt_close(st);
    cdc_buf_free(&q);
    cdc_buf_free(&kb);
    return rc;
}

/* ---- signal table ------------------------------------------------------- */

static int sig_name(const char *sig, cdc_buf_t *b, cdc_err_t *err)
{
    char db[256], tb[256];
    if (split_name(sig, db, sizeof(db), tb, sizeof(tb)))
        return cdc_err_set(err, CDC_EXIT_CONFIG, CDC_ERR_F_FATAL,
                           "backfill.signal_table '%s' is not db.table", sig);
    put_ident(b, db);
    cdc_buf_putc(b, '.');
    put_ident(b, tb);
    return 0;
}

static int my_signal_init(cdc_snap_t *base, const char *sig, cdc_err_t *err)
{
    my_snap_t *s = (my_snap_t *)base;
    cdc_buf_t b = CDC_BUF_INIT;
    int rc;
    cdc_buf_puts(&b, "CREATE TABLE IF NOT EXISTS ");
    if (sig_name(sig, &b, err)) {
        cdc_buf_free(&b);
        return -1;
    }
    cdc_buf_puts(&b, " (id VARCHAR(64) NOT NULL PRIMARY KEY, kind VARCHAR(16) "
                     "NOT NULL, ts TIMESTAMP(6) NOT NULL DEFAULT "
                     "CURRENT_TIMESTAMP(6)) ENGINE=InnoDB");
    rc = exec(s, b.p, err);
    if (rc)
        cdc_err_hint(err, "create the signal table yourself or grant CREATE "
                          "on its database; see docs/BACKFILL.md");
    cdc_buf_free(&b);
    return rc;
}

static int my_watermark(cdc_snap_t *base, const char *sig, const char *id,
                        cdc_err_t *err)
{
    my_snap_t *s = (my_snap_t *)base;
    cdc_buf_t b = CDC_BUF_INIT;
    const char *kind = strrchr(id, '-');
    int rc;
    cdc_buf_puts(&b, "INSERT INTO ");
    if (sig_name(sig, &b, err)) {
        cdc_buf_free(&b);
        return -1;
    }
    cdc_buf_puts(&b, " (id, kind) VALUES (");
    put_lit(s, &b, id);
    cdc_buf_puts(&b, ", ");
    put_lit(s, &b, kind ? kind + 1 : "w");
    cdc_buf_putc(&b, ')');
    rc = exec(s, b.p, err);
    cdc_buf_free(&b);
    return rc;
}

static int my_signal_cleanup(cdc_snap_t *base, const char *sig,
                             const char *prefix, cdc_err_t *err)
{
    my_snap_t *s = (my_snap_t *)base;
    cdc_buf_t b = CDC_BUF_INIT, p = CDC_BUF_INIT;
    int rc;
    cdc_buf_puts(&b, "DELETE FROM ");
    if (sig_name(sig, &b, err)) {
        cdc_buf_free(&b);
        return -1;
    }
    cdc_buf_printf(&p, "%s%%", prefix);
    cdc_buf_puts(&b, " WHERE id LIKE ");
    put_lit(s, &b, p.p);
    rc = exec(s, b.p, err);
    cdc_buf_free(&b);
    cdc_buf_free(&p);
    return rc;
}

/* ---- watermark window reader ------------------------------------------- */

static void my_window_conf(cdc_snap_t *base, cdc_conf_t *wconf, int worker,
                           const char *tables, const char *sig)
{
    char b[32];
    const char *sid = cdc_conf_get(wconf, "backfill.server_id", NULL);
    uint32_t id;
    (void)base;
    (void)tables;
    (void)sig;
    /* a replica id of its own: never the streaming daemon's */
    if (sid && *sid)
        id = (uint32_t)strtoul(sid, NULL, 10) + (uint32_t)worker;
    else
        id = 900000000u + ((uint32_t)getpid() % 1000000u) * 64u +
             (uint32_t)worker;
    snprintf(b, sizeof(b), "%" PRIu32, id);
    cdc_conf_set(wconf, "mysql.server_id", b, "backfill");
    cdc_conf_set(wconf, "mysql.from", "now", "backfill");
    cdc_conf_set(wconf, "mysql.reconnect", "true", "backfill");
}

const cdc_snap_ops_t cdc_snap_mysql_ops = {
    .name = "mysql",
    .connector = "mysql",
    .open = my_open,
    .describe = my_describe,
    .list_tables = my_list_tables,
    .begin_consistent = my_begin_consistent,
    .end_consistent = my_end_consistent,
    .read_chunk = my_read_chunk,
    .max_key = my_max_key,
    .signal_init = my_signal_init,
    .watermark = my_watermark,
    .signal_cleanup = my_signal_cleanup,
    .window_conf = my_window_conf,
    .close = my_close,
};
