/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_map.c - the mapping engine: YAML errors (file:line:column, did you
 * mean), expressions, value maps, casts and time zones, and the
 * order independence of the conflict rules (every permutation, shuffles
 * with duplicates), plus `mapping test` over tests/data/mappings/.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdc_test.h"
#include "cdc/envelope.h"
#include "mappings/expr_int.h"
#include "mappings/map.h"

/* ---- helpers ------------------------------------------------------------ */

static cdc_table_t *mktable(const char *db, const char *name, const char *cols)
{
    char *dup = cdc_xstrdup(cols), *save = NULL, *tok;
    uint32_t n = 1;
    cdc_table_t *t;
    for (const char *p = cols; *p; p++)
        n += *p == ',';
    t = cdc_table_new(db, name, n);
    n = 0;
    for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        t->cols[n++].name = cdc_xstrdup(tok);
    free(dup);
    return t;
}

/* "i:5" int, "s:txt" string, "d:1.50" decimal, "f:1.5" double, "b:1" bool,
 * "n" NULL, "a" absent */
static void setval(cdc_txn_t *tx, cdc_value_t *v, const char *spec)
{
    memset(v, 0, sizeof(*v));
    switch (spec[0]) {
    case 'i': v->kind = CDC_V_INT; v->u.i = strtoll(spec + 2, NULL, 10); break;
    case 's':
    case 'd':
    case 'j':
        v->kind = spec[0] == 's' ? CDC_V_STRING
                  : spec[0] == 'd' ? CDC_V_DECIMAL : CDC_V_JSON;
        v->len = strlen(spec + 2);
        v->s = cdc_arena_memdup(&tx->arena, spec + 2, v->len);
        break;
    case 'f': v->kind = CDC_V_DOUBLE; v->u.d = strtod(spec + 2, NULL); break;
    case 'b': v->kind = CDC_V_BOOL; v->u.b = spec[2] == '1'; break;
    case 'n': v->kind = CDC_V_NULL; break;
    default: v->kind = CDC_V_ABSENT; break;
    }
}

/* row spec: values separated by '|', one per column */
static cdc_value_t *mkrow(cdc_txn_t *tx, cdc_table_t *t, const char *spec)
{
    cdc_value_t *row;
    char *dup, *save = NULL, *tok;
    uint32_t i = 0;
    if (!spec)
        return NULL;
    row = cdc_txn_values(tx, t->ncols);
    dup = cdc_xstrdup(spec);
    for (tok = strtok_r(dup, "|", &save); tok && i < t->ncols;
         tok = strtok_r(NULL, "|", &save))
        setval(tx, &row[i++], tok);
    free(dup);
    return row;
}

static cdc_txn_t *mktxn(cdc_table_t *t, char op, const char *before,
                        const char *after, int64_t commit_us, uint64_t pos)
{
    cdc_txn_t *tx = cdc_txn_new();
    cdc_change_t *ch = cdc_txn_add(tx, op, t);
    tx->commit_us = commit_us;
    tx->pos.lsn = pos;
    ch->before = mkrow(tx, t, before);
    ch->after = mkrow(tx, t, after);
    ch->pos = pos;
    return tx;
}

static cdc_map_t *load(const char *yaml, cdc_err_t *err)
{
    memset(err, 0, sizeof(*err));
    return cdc_map_load_str("m.yaml", yaml, strlen(yaml), err);
}

/* evaluate an expression over a one-row table */
static char *ev(const char *expr, const char *cols, const char *row)
{
    static char out[1024];
    cdc_err_t err = {0};
    cdc_table_t *t = mktable("db", "t", cols);
    cdc_txn_t *tx = cdc_txn_new();
    cdc_value_t *r = mkrow(tx, t, row);
    cdc_expr_t *e = cdc_expr_parse(expr, "x", &err);
    xctx_t c = {.tbl = t, .row = r, .commit_us = 1700000000123456LL,
                .source = "crm", .arena = &tx->arena, .err = &err,
                .where = "x"};
    xv_t v;
    size_t len;
    const char *s;

    if (!e) {
        snprintf(out, sizeof(out), "PARSE: %s", err.msg);
        goto done;
    }
    if (cdc_expr_eval(e, &c, &v)) {
        snprintf(out, sizeof(out), "EVAL: %s", err.msg);
        goto done;
    }
    s = cdc_xv_text(&v, &tx->arena, &len);
    if (v.t == XV_MISSING)
        snprintf(out, sizeof(out), "MISSING");
    else
        snprintf(out, sizeof(out), "%s", s ? s : "NULL");
done:
    cdc_expr_free(e);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
    return out;
}

/* ---- YAML errors ----------------------------------------------------------- */

static const char base_yaml[] =
    "sources:\n"
    "  crm: {priority: 2, timezone: Europe/Berlin}\n"
    "  erp: {priority: 1, weight: 0.9}\n"
    "targets:\n"
    "  customer_wide:\n"
    "    table: public.customer_wide\n"
    "    key: customer_id\n"
    "    fields:\n"
    "      customer_id: bigint\n"
    "      name: {type: text, owners: [crm, erp], rule: latest}\n"
    "      status: {type: text, owner: crm}\n"
    "      balance: {type: 'decimal(12,2)', owner: erp}\n"
    "      signup_at: {type: timestamp, owner: crm}\n"
    "      tier: {type: text, owners: [crm, erp], rule: priority}\n"
    "      score: {type: double, owners: [crm, erp], rule: weighted}\n"
    "mappings:\n"
    "  - source: crm\n"
    "    table: crm.customers\n"
    "    target: customer_wide\n"
    "    key: {customer_id: id}\n"
    "    filter: \"email is null or email != 'test@example.com'\"\n"
    "    fields:\n"
    "      name: \"trim(first_name || ' ' || last_name)\"\n"
    "      status: {from: is_active, map: {1: enabled, 0: disabled}, "
    "else: unknown}\n"
    "      signup_at: created\n"
    "      tier: tier\n"
    "      score: {expr: 'score * 1.0'}\n"
    "  - source: erp\n"
    "    table: public.accounts\n"
    "    target: customer_wide\n"
    "    on_delete: clear\n"
    "    key: {customer_id: customer_ref}\n"
    "    fields:\n"
    "      name: account_name\n"
    "      balance: balance\n"
    "      tier: tier\n"
    "      score: score\n";

CDC_TEST(yaml_loads_example)
{
    cdc_err_t err;
    cdc_map_t *m = load(base_yaml, &err);
    T_ASSERT(m != NULL);
    if (!m) {
        printf("# %s\n# %s\n", err.msg, err.hint);
        return;
    }
    T_EQ_INT(m->nsources, 2);
    T_EQ_INT(m->ntargets, 1);
    T_EQ_INT(m->nmappings, 2);
    T_EQ_STR(m->targets[0].schema, "public");
    T_EQ_INT(m->targets[0].fields[3].scale, 2);
    cdc_map_destroy(m);
}

static void expect_err(const char *yaml, const char *msg, const char *hint)
{
    cdc_err_t err;
    cdc_map_t *m = load(yaml, &err);
    T_ASSERT(m == NULL);
    cdc_map_destroy(m);
    if (!strstr(err.msg, msg))
        T_FAIL_("message '%s' lacks '%s'", err.msg, msg);
    if (hint && !strstr(err.hint, hint))
        T_FAIL_("hint '%s' lacks '%s'", err.hint, hint);
    T_EQ_INT(err.code, CDC_EXIT_CONFIG);
}

static char *patch(const char *from, const char *to)
{
    static char buf[4096];
    const char *p = strstr(base_yaml, from);
    if (!p) {
        T_FAIL_("no '%s' in base yaml", from);
        return (char *)base_yaml;
    }
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(p - base_yaml), base_yaml,
             to, p + strlen(from));
    return buf;
}

CDC_TEST(yaml_errors_have_positions_and_suggestions)
{
    expect_err(patch("    table: public.customer_wide", "    tabel: x"),
               "m.yaml:6:5: unknown key 'tabel' in a target", "'table'");
    expect_err(patch("    on_delete: clear", "    on_delet: clear"),
               "m.yaml:31:5: unknown key 'on_delet'", "'on_delete'");
    expect_err(patch("      balance: balance", "      balanse: balance"),
               "m.yaml:35:7: unknown field 'balanse'", "'balance'");
    expect_err(patch("    target: customer_wide\n    on_delete",
                     "    target: customer_wid\n    on_delete"),
               "m.yaml:30:13: unknown target 'customer_wid'",
               "'customer_wide'");
    expect_err(patch("  - source: erp", "  - source: epr"),
               "m.yaml:28:13: unknown source 'epr'", "'erp'");
    expect_err(patch("rule: weighted", "rule: weigted"),
               "unknown rule 'weigted'", "'weighted'");
    expect_err(patch("type: timestamp", "type: timestmp"),
               "m.yaml:13:25: unknown type 'timestmp'", "'timestamp'");
    expect_err(patch("on_delete: clear", "on_delete: remove"),
               "unknown on_delete action 'remove'", NULL);
    expect_err(patch("status: {type: text, owner: crm}",
                     "status: {type: text, owner: crn}"),
               "owner 'crn' of field 'status'", "'crm'");
    expect_err(patch("      balance: balance", "      status: balance"),
               "source 'erp' does not own field 'status'", NULL);
    expect_err(patch("timezone: Europe/Berlin", "timezone: Europe/Berln"),
               "unknown time zone 'Europe/Berln'", NULL);
    expect_err(patch("\"trim(first_name", "\"trm(first_name"),
               "unknown function", "'trim'");
    expect_err(patch("    key: {customer_id: customer_ref}",
                     "    key: {customer: customer_ref}"),
               "unknown field 'customer'", "customer_id");
    /* YAML syntax: position of the problem */
    expect_err("targets:\n  a: [1, 2\n", "m.yaml:3:1: YAML syntax error",
               NULL);
    expect_err("sources:\n  crm: {}\n  crm: {}\n",
               "m.yaml:3:3: duplicate key 'crm'", NULL);
    expect_err(patch("status: {type: text, owner: crm}", "status: text"),
               "field 'status' of target 'customer_wide' has no owner", NULL);
    expect_err("mapings: []\n", "m.yaml:1:1: unknown key 'mapings'",
               "'mappings'");
}

CDC_TEST(edit_distance)
{
    T_EQ_INT(cdc_map_edit_distance("table", "tabel"), 2);
    T_EQ_INT(cdc_map_edit_distance("", "abc"), 3);
    T_EQ_INT(cdc_map_edit_distance("same", "same"), 0);
    const char *c[] = {"latest", "priority", "weighted"};
    T_EQ_STR(cdc_map_suggest("lates", c, 3), "latest");
    T_ASSERT(cdc_map_suggest("zzzzzz", c, 3) == NULL);
}

/* ---- expressions ------------------------------------------------------------ */

CDC_TEST(expressions)
{
    const char *cols = "a,b,s,t,n,x";
    const char *row = "i:7|d:2.50|s:Hello|s:World|n|a";
    T_EQ_STR(ev("a + b", cols, row), "9.50");
    T_EQ_STR(ev("a * b", cols, row), "17.50");
    T_EQ_STR(ev("a / 2", cols, row), "3.500000");
    T_EQ_STR(ev("a - 10", cols, row), "-3");
    T_EQ_STR(ev("-a % 4", cols, row), "-3");
    T_EQ_STR(ev("1 + 2 * 3", cols, row), "7");
    T_EQ_STR(ev("(1 + 2) * 3", cols, row), "9");
    T_EQ_STR(ev("a / 0", cols, row), "NULL");
    T_EQ_STR(ev("s || ' ' || t", cols, row), "Hello World");
    T_EQ_STR(ev("s || n", cols, row), "NULL");
    T_EQ_STR(ev("concat(s, n, '!', a)", cols, row), "Hello!7");
    T_EQ_STR(ev("coalesce(n, b, 0)", cols, row), "2.50");
    T_EQ_STR(ev("upper(s) || lower(t)", cols, row), "HELLOworld");
    T_EQ_STR(ev("length('héllo')", cols, row), "5");
    T_EQ_STR(ev("substr(s, 2, 3)", cols, row), "ell");
    T_EQ_STR(ev("trim('  x  ')", cols, row), "x");
    T_EQ_STR(ev("round(2.345, 2)", cols, row), "2.35");
    T_EQ_STR(ev("round(-2.5)", cols, row), "-3");
    T_EQ_STR(ev("abs(-4.5)", cols, row), "4.5");
    T_EQ_STR(ev("nullif(a, 7)", cols, row), "NULL");
    T_EQ_STR(ev("greatest(1, a, 3)", cols, row), "7");
    T_EQ_STR(ev("case when a > 5 then 'big' else 'small' end", cols, row),
             "big");
    T_EQ_STR(ev("case when n is null then 'none' end", cols, row), "none");
    T_EQ_STR(ev("case when a = 1 then 'one' end", cols, row), "NULL");
    T_EQ_STR(ev("a = 7 and not (s = 'x')", cols, row), "true");
    T_EQ_STR(ev("n = 1 or a = 7", cols, row), "true");
    T_EQ_STR(ev("n = 1 and a = 7", cols, row), "NULL");
    T_EQ_STR(ev("a <> 7", cols, row), "false");
    T_EQ_STR(ev("'10' > 9", cols, row), "true");
    T_EQ_STR(ev("commit_time()", cols, row), "2023-11-14T22:13:20.123456Z");
    T_EQ_STR(ev("source()", cols, row), "crm");
    T_EQ_STR(ev("x || 'y'", cols, row), "MISSING");
    T_EQ_STR(ev("'it''s'", cols, row), "it's");
    T_EQ_STR(ev("\"s\"", cols, row), "Hello");
    T_EQ_STR(ev("0.1 + 0.2", cols, row), "0.3");
    T_EQ_STR(ev("99999999999999999999 * 10", cols, row),
             "999999999999999999990");
    /* errors */
    T_ASSERT(strstr(ev("a +", cols, row), "PARSE: x: expression 'a +': "
                                          "unexpected end"));
    T_ASSERT(strstr(ev("foo(a)", cols, row), "unknown function 'foo'"));
    T_ASSERT(strstr(ev("'abc", cols, row), "unterminated string"));
    T_ASSERT(strstr(ev("a ; b", cols, row), "unexpected character"));
    T_ASSERT(strstr(ev("upper(a, b)", cols, row), "upper() takes 1..1"));
    T_ASSERT(strstr(ev("s + 1", cols, row), "EVAL: x: arithmetic"));
    T_ASSERT(strstr(ev("nope", cols, row), "EVAL: x: no column 'nope'"));
    T_ASSERT(strstr(ev("case a end", cols, row), "expected WHEN"));
    {
        /* bounded depth: deep nesting is refused, not a stack overflow */
        char deep[4096];
        size_t k = 0;
        for (int i = 0; i < 1000; i++)
            deep[k++] = '(';
        deep[k++] = '1';
        for (int i = 0; i < 1000; i++)
            deep[k++] = ')';
        deep[k] = '\0';
        T_ASSERT(strstr(ev(deep, cols, row), "nested too deeply"));
        k = 0;
        for (int i = 0; i < 1000; i++)
            deep[k++] = '-';
        deep[k++] = '1';
        deep[k] = '\0';
        T_ASSERT(strstr(ev(deep, cols, row), "nested too deeply"));        k = 0;
        for (int i = 0; i < 900; i++) {
            memcpy(deep + k, "not ", 4);
            k += 4;
        }
        memcpy(deep + k, "1 = 1", 6);
        T_ASSERT(strstr(ev(deep, cols, row), "nested too deeply"));
    }
}

/* ---- mapping changes ------------------------------------------------------ */

typedef struct run {
    cdc_map_t *m;
    cdc_wide_ops_t ops;
    cdc_wide_model_t *wm;
} run_t;

static void run_init(run_t *r, const char *yaml)
{
    cdc_err_t err;
    r->m = load(yaml, &err);
    if (!r->m)
        T_FAIL_("load: %s (%s)", err.msg, err.hint);
    cdc_wide_ops_init(&r->ops);
    r->wm = cdc_wide_model_new();
}

static void run_free(run_t *r)
{
    cdc_wide_ops_free(&r->ops);
    cdc_wide_model_free(r->wm);
    cdc_map_destroy(r->m);
}

static int apply(run_t *r, const char *src, cdc_txn_t *tx, cdc_err_t *err)
{
    int n;
    memset(err, 0, sizeof(*err));
    cdc_wide_ops_reset(&r->ops);
    n = cdc_map_change(r->m, src, tx, &tx->changes[0], 0, &r->ops, err);
    for (uint32_t i = 0; n > 0 && i < r->ops.n; i++)
        cdc_wide_model_apply(r->wm, &r->ops.ops[i]);
    return n;
}

static char *dump(run_t *r, int prov)
{
    static char buf[8192];
    FILE *fp;
    buf[0] = '\0'; /* nothing written: empty, not the last dump */
    fp = fmemopen(buf, sizeof(buf), "w");
    cdc_wide_model_print(r->wm, fp, prov);
    fclose(fp);
    return buf;
}

#define CRM_COLS "id,first_name,last_name,email,is_active,created,tier,score"
#define ERP_COLS "customer_ref,account_name,balance,tier,score"

CDC_TEST(value_maps_casts_and_time_zones)
{
    run_t r;
    cdc_err_t err;
    cdc_table_t *crm = mktable("crm", "customers", CRM_COLS);
    cdc_table_t *erp = mktable("public", "accounts", ERP_COLS);
    cdc_txn_t *t1, *t2, *t3, *t4;

    run_init(&r, base_yaml);
    if (!r.m)
        return;
    /* summer: Berlin is UTC+2 */
    t1 = mktxn(crm, 'c', NULL,
               "i:1|s:Ann|s:Lee|n|i:1|s:2023-07-01 12:00:00.250|s:gold|f:0.5",
               1000, 10);
    T_EQ_INT(apply(&r, "crm", t1, &err), 1);
    /* winter: UTC+1; is_active 0 -> disabled; unmapped -> else */
    t2 = mktxn(crm, 'c', NULL,
               "i:2|s:Bo|s:Ek|s:b@x|i:0|s:2023-01-15 00:30:00|n|i:3", 1001,
               11);
    apply(&r, "crm", t2, &err);
    t3 = mktxn(crm, 'c', NULL,
               "i:3|s:Cy|s:Do|n|i:7|s:2023-03-26T01:00:00Z|n|n", 1002, 12);
    apply(&r, "crm", t3, &err);
    /* decimal(12,2) rounds half away from zero */
    t4 = mktxn(erp, 'c', NULL, "i:1|s:ANN LTD|d:1234.565|s:silver|f:0.25",
               1003, 13);
    apply(&r, "erp", t4, &err);
    T_EQ_STR(dump(&r, 0),
             "customer_wide customer_id=\"1\"\n"
             "  name: \"ANN LTD\"\n"
             "  status: \"enabled\"\n"
             "  balance: \"1234.57\"\n"
             "  signup_at: \"2023-07-01T10:00:00.25Z\"\n"
             "  tier: \"gold\"\n"
             "  score: \"0.5\"\n"
             "customer_wide customer_id=\"2\"\n"
             "  name: \"Bo Ek\"\n"
             "  status: \"disabled\"\n"
             "  balance: null\n"
             "  signup_at: \"2023-01-14T23:30:00Z\"\n"
             "  tier: null\n"
             "  score: \"3\"\n"
             "customer_wide customer_id=\"3\"\n"
             "  name: \"Cy Do\"\n"
             "  status: \"unknown\"\n"
             "  balance: null\n"
             "  signup_at: \"2023-03-26T01:00:00Z\"\n"
             "  tier: null\n"
             "  score: null\n");
    /* the filter drops the test account; a bad number is a data error */
    {
        cdc_txn_t *t5 = mktxn(crm, 'c', NULL,
                              "i:9|s:T|s:T|s:test@example.com|i:1|n|n|n", 1,
                              1);
        T_EQ_INT(apply(&r, "crm", t5, &err), 0);
        cdc_txn_destroy(t5);
        t5 = mktxn(erp, 'c', NULL, "i:9|s:X|s:12abc|n|n", 1, 1);
        T_EQ_INT(apply(&r, "erp", t5, &err), -1);
        T_EQ_INT(err.code, CDC_EXIT_DATA);
        T_ASSERT(strstr(err.msg, "value '12abc' does not fit field "
                                 "'balance' (decimal(12,2))") != NULL);
        cdc_txn_destroy(t5);
        /* other sources' changes, other tables: nothing */
        t5 = mktxn(erp, 'c', NULL, "i:9|s:X|d:1|n|n", 1, 1);
        T_EQ_INT(apply(&r, "crm", t5, &err), 0);
        cdc_txn_destroy(t5);
    }
    cdc_txn_destroy(t1);
    cdc_txn_destroy(t2);
    cdc_txn_destroy(t3);
    cdc_txn_destroy(t4);
    cdc_table_destroy(crm);
    cdc_table_destroy(erp);
    run_free(&r);
}

CDC_TEST(time_zone_offsets_and_dst)
{
    static const char y[] =
        "sources: {s: {timezone: '+05:30'}, ny: {timezone: America/New_York}}\n"
        "targets:\n"
        "  w: {key: k, fields: {k: int, a: {type: timestamp, owners: [s, ny]},"
        " d: {type: date, owners: [s, ny]}}}\n"
        "mappings:\n"
        "  - {source: s, table: db.t, target: w, key: {k: id}, fields: {a: ts,"
        " d: ts}}\n"
        "  - {source: ny, table: db.t, target: w, key: {k: id}, fields: {a: "
        "{from: ts}}}\n";
    run_t r;
    cdc_err_t err;
    cdc_table_t *t = mktable("db", "t", "id,ts");
    const char *cases[][3] = {
        {"s", "s:2024-02-29 00:10:00", "2024-02-28T18:40:00Z"},
        {"s", "s:2024-02-29 00:10:00+01:00", "2024-02-28T23:10:00Z"},
        {"s", "s:2024-02-29", "2024-02-28T18:30:00Z"},
        {"ny", "s:2024-07-04 12:00:00", "2024-07-04T16:00:00Z"},
        {"ny", "s:2024-12-04 12:00:00.000001", "2024-12-04T17:00:00.000001Z"},
        {"ny", "i:86400", "1970-01-02T00:00:00Z"},
        {"ny", "s:0000-00-00 00:00:00", NULL},
    };
    run_init(&r, y);
    if (!r.m)
        return;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char row[128];
        cdc_txn_t *tx;
        snprintf(row, sizeof(row), "i:1|%s", cases[i][1]);
        tx = mktxn(t, 'c', NULL, row, 1, 1);
        cdc_wide_ops_reset(&r.ops);
        T_EQ_INT(cdc_map_change(r.m, cases[i][0], tx, &tx->changes[0], 0,
                                &r.ops, &err), 1);
        if (r.ops.n == 1) {
            const cdc_wide_val_t *v = &r.ops.ops[0].vals[0];
            if (cases[i][2])
                T_EQ_STR(v->s, cases[i][2]);
            else
                T_ASSERT(v->isnull);
        }
        if (!strcmp(cases[i][0], "s") && r.ops.n == 1 && i == 0)
            T_EQ_STR(r.ops.ops[0].vals[1].s, "2024-02-29");
        cdc_txn_destroy(tx);
    }
    {
        cdc_txn_t *tx = mktxn(t, 'c', NULL, "i:1|s:yesterday", 1, 1);
        cdc_wide_ops_reset(&r.ops);
        T_EQ_INT(cdc_map_change(r.m, "s", tx, &tx->changes[0], 0, &r.ops,
                                &err), -1);
        T_ASSERT(strstr(err.msg, "not a date-time") != NULL);
        cdc_txn_destroy(tx);
    }
    cdc_table_destroy(t);
    run_free(&r);
}

/* ---- order independence ---------------------------------------------------- */

typedef struct chg {
    const char *src;
    int erp;
    char op;
    const char *before, *after;
    int64_t t;
    uint64_t pos;
} chg_t;

/* a small history: both sources write the same customers; equal commit
 * times tie-break by priority; updates, a delete (clear) and a key move */
static const chg_t history[] = {
    {"crm", 0, 'c', NULL, "i:1|s:Ann|s:Lee|n|i:1|n|s:gold|f:0.5", 100, 1},
    {"erp", 1, 'c', NULL, "i:1|s:ANN LTD|d:10|s:bronze|f:0.7", 100, 1},
    {"crm", 0, 'u', "i:1|s:Ann|s:Lee|n|i:1|n|s:gold|f:0.5",
     "i:1|s:Ann|s:Lee|n|i:0|n|n|f:0.9", 200, 2},
    {"erp", 1, 'u', "i:1|s:ANN LTD|d:10|s:bronze|f:0.7",
     "i:1|s:Ann Ltd|d:12.5|s:silver|f:0.1", 150, 2},
    {"crm", 0, 'c', NULL, "i:2|s:Bo|s:Ek|n|i:1|n|s:plat|f:1", 120, 3},
    {"erp", 1, 'c', NULL, "i:2|s:Bo AB|d:3|n|f:2", 300, 3},
    {"erp", 1, 'd', "i:2|s:Bo AB|d:3|n|f:2", NULL, 310, 4},
    {"crm", 0, 'u', "i:2|s:Bo|s:Ek|n|i:1|n|s:plat|f:1",
     "i:3|s:Bo|s:Ek|n|i:1|n|s:plat|f:1", 320, 4},
};
#define NH (int)(sizeof(history) / sizeof(history[0]))

static void apply_hist(run_t *r, cdc_table_t *crm, cdc_table_t *erp, int i)
{
    const chg_t *h = &history[i];
    cdc_err_t err;
    cdc_txn_t *tx = mktxn(h->erp ? erp : crm, h->op, h->before, h->after, h->t,
                          h->pos);
    if (apply(r, h->src, tx, &err) < 0)
        T_FAIL_("apply %d: %s", i, err.msg);
    cdc_txn_destroy(tx);
}

static int next_perm(int *a, int n)
{
    int i = n - 2, j = n - 1;
    while (i >= 0 && a[i] >= a[i + 1])
        i--;
    if (i < 0)
        return 0;
    while (a[j] <= a[i])
        j--;
    int t = a[i];
    a[i] = a[j];
    a[j] = t;
    for (int l = i + 1, h = n - 1; l < h; l++, h--) {
        t = a[l];
        a[l] = a[h];
        a[h] = t;
    }
    return 1;
}

/* 0..n-1, each once and replayed 0-2 more times, in random order (rand());
 * seq holds 3n; returns its length */
static int shuffled_replays(int *seq, int n)
{
    int len = 0;
    for (int i = 0; i < n; i++) {
        seq[len++] = i;
        for (int d = rand() % 3; d > 0; d--)
            seq[len++] = i;
    }
    for (int i = len - 1; i > 0; i--) {
        int j = rand() % (i + 1), t = seq[i];
        seq[i] = seq[j];
        seq[j] = t;
    }
    return len;
}

CDC_TEST(conflict_rules_converge_in_any_order)
{
    cdc_table_t *crm = mktable("crm", "customers", CRM_COLS);
    cdc_table_t *erp = mktable("public", "accounts", ERP_COLS);
    char ref[8192];
    int perm[NH], nperm = 0, bad = 0;
    run_t r;

    run_init(&r, base_yaml);
    if (!r.m)
        return;
    for (int i = 0; i < NH; i++)
        apply_hist(&r, crm, erp, i);
    snprintf(ref, sizeof(ref), "%s", dump(&r, 1));
    run_free(&r);
    /* latest: name of 1 is erp's (t=150; crm's update at 200 did not
     * change the name, so it offers nothing); priority: tier of 1 is
     * crm's non-null gold (prio 2, crm's later NULL is not a candidate);
     * weighted: score of 1 is crm's (weight 1 > 0.9); erp's delete of 2
     * clears erp's fields; crm moved 2 to 3, clearing crm's fields of 2 */
    T_EQ_STR(ref,
             "customer_wide customer_id=\"1\"\n"
             "  name: \"Ann Ltd\"  [erp 150]\n"
             "  status: \"disabled\"  [crm 200]\n"
             "  balance: \"12.50\"  [erp 150]\n"
             "  signup_at: null  [crm 100]\n"
             "  tier: \"gold\"  [crm 100]\n"
             "  score: \"0.9\"  [crm 200]\n"
             "customer_wide customer_id=\"2\"\n"
             "  name: null  [crm 320]\n"
             "  status: null  [crm 320]\n"
             "  balance: null  [erp 310]\n"
             "  signup_at: null  [crm 320]\n"
             "  tier: null  [crm 320]\n"
             "  score: null  [crm 320]\n"
             "customer_wide customer_id=\"3\"\n"
             "  name: \"Bo Ek\"  [crm 320]\n"
             "  status: \"enabled\"  [crm 320]\n"
             "  balance: null\n"
             "  signup_at: null  [crm 320]\n"
             "  tier: \"plat\"  [crm 320]\n"
             "  score: \"1\"  [crm 320]\n");
    /* every permutation */
    for (int i = 0; i < NH; i++)
        perm[i] = i;
    do {
        run_init(&r, base_yaml);
        for (int i = 0; i < NH; i++)
            apply_hist(&r, crm, erp, perm[i]);
        if (strcmp(dump(&r, 1), ref) && !bad++)
            T_FAIL_("permutation %d differs:\n%s", nperm, dump(&r, 1));
        run_free(&r);
        nperm++;
    } while (next_perm(perm, NH));
    T_EQ_INT(nperm, 40320);
    /* random shuffles with duplicates (replays) */
    srand(42);
    for (int k = 0; k < 500; k++) {
        int seq[3 * NH], n = shuffled_replays(seq, NH);
        run_init(&r, base_yaml);
        for (int i = 0; i < n; i++)
            apply_hist(&r, crm, erp, seq[i]);
        if (strcmp(dump(&r, 1), ref) && !bad++)
            T_FAIL_("shuffle %d differs:\n%s", k, dump(&r, 1));
        run_free(&r);
    }
    T_EQ_INT(bad, 0);
    cdc_table_destroy(crm);
    cdc_table_destroy(erp);
}

/* ---- rule ordered: the largest order_by value wins ---------------------- */

static const char ordered_yaml[] =
    "sources: {crm: {priority: 1}, erp: {priority: 2}}\n"
    "targets:\n"
    "  customer_last:\n"
    "    key: cust\n"
    "    fields:\n"
    "      cust: bigint\n"
    "      last_order_id: {type: bigint, owners: [crm, erp], rule: ordered}\n"
    "      last_amount: {type: 'numeric(12,2)', owners: [crm, erp], rule: "
    "ordered}\n"
    "mappings:\n"
    "  - {source: crm, table: shop.orders, target: customer_last, key: {cust: "
    "cust}, order_by: created_at, on_delete: clear, fields: {last_order_id: "
    "oid, last_amount: amount}}\n"
    "  - {source: erp, table: public.orders, target: customer_last, key: "
    "{cust: cust}, order_by: created_at, fields: {last_order_id: oid, "
    "last_amount: amount}}\n";

/* oid|cust|amount|created_at.  Commit times (t) deliberately disagree
 * with created_at. */
static const chg_t ordered_hist[] = {
    /* customer 1: erp's order 20 is the newest by created_at although it
     * committed early; its amount update (t 400) re-offers only the
     * amount; crm's order 12 has the same created_at and an earlier
     * commit: it loses the tie */
    {"erp", 1, 'c', NULL, "i:20|i:1|d:7.00|s:2024-01-05 09:00:00", 90, 1},
    {"erp", 1, 'u', "i:20|i:1|d:7.00|s:2024-01-05 09:00:00",
     "i:20|i:1|d:8.00|s:2024-01-05 09:00:00", 400, 2},
    {"crm", 0, 'c', NULL, "i:12|i:1|d:1.00|s:2024-01-05 09:00:00", 50, 3},
    /* customer 2: order 31, then its delete (clear: NULL ranked with the
     * deleted row's created_at, later commit); a snapshot row of order 32
     * with a newer created_at wins over both although a snapshot has the
     * lowest commit time */
    {"crm", 0, 'c', NULL, "i:31|i:2|d:4.00|s:2024-02-02 00:00:00", 110, 4},
    {"crm", 0, 'd', "i:31|i:2|d:4.00|s:2024-02-02 00:00:00", NULL, 500, 5},
    {"crm", 0, 'r', NULL, "i:32|i:2|d:6.00|s:2024-02-03 00:00:00", 700, 6},
    /* customer 3: order 40 moves its created_at past the snapshot of 41;
     * neither of its fields changed, the new order value re-offers them */
    {"crm", 0, 'u', "i:40|i:3|d:2.00|s:2024-03-01 00:00:00",
     "i:40|i:3|d:2.00|s:2024-03-05 00:00:00", 600, 7},
    {"crm", 0, 'r', NULL, "i:41|i:3|d:9.00|s:2024-03-03 00:00:00", 700, 8},
};
#define NO (int)(sizeof(ordered_hist) / sizeof(ordered_hist[0]))

static void apply_ordered(run_t *r, cdc_table_t *crm, cdc_table_t *erp, int i)
{
    const chg_t *h = &ordered_hist[i];
    cdc_err_t err;
    cdc_txn_t *tx = mktxn(h->erp ? erp : crm, h->op, h->before, h->after, h->t,
                          h->pos);
    if (apply(r, h->src, tx, &err) < 0)
        T_FAIL_("apply %d: %s", i, err.msg);
    cdc_txn_destroy(tx);
}

CDC_TEST(ordered_rule_converges_in_any_order)
{
    cdc_table_t *crm = mktable("shop", "orders", "oid,cust,amount,created_at");
    cdc_table_t *erp = mktable("public", "orders", "oid,cust,amount,created_at");
    /* derived by hand from the rule: per field the candidate with the
     * largest created_at, ties by commit time */
    static const char want[] =
        "customer_last cust=\"1\"\n"
        "  last_order_id: \"20\"  [erp 90]\n"
        "  last_amount: \"8.00\"  [erp 400]\n"
        "customer_last cust=\"2\"\n"
        "  last_order_id: \"32\"  [crm 700]\n"
        "  last_amount: \"6.00\"  [crm 700]\n"
        "customer_last cust=\"3\"\n"
        "  last_order_id: \"40\"  [crm 600]\n"
        "  last_amount: \"2.00\"  [crm 600]\n";
    const char *seed_env = getenv("CDC_TEST_SEED");
    unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : 19;
    int perm[NO], nperm = 0, bad = 0;
    run_t r;

    run_init(&r, ordered_yaml);
    if (!r.m)
        return;
    run_free(&r);
    for (int i = 0; i < NO; i++)
        perm[i] = i;
    do {
        run_init(&r, ordered_yaml);
        for (int i = 0; i < NO; i++)
            apply_ordered(&r, crm, erp, perm[i]);
        if (strcmp(dump(&r, 1), want) && !bad++)
            T_FAIL_("permutation %d:\n%s", nperm, dump(&r, 1));
        run_free(&r);
        nperm++;
    } while (next_perm(perm, NO));
    T_EQ_INT(nperm, 40320);
    /* shuffles with replays (duplicates) */
    srand(seed);
    for (int k = 0; k < 500; k++) {
        int seq[3 * NO], n = shuffled_replays(seq, NO);
        run_init(&r, ordered_yaml);
        for (int i = 0; i < n; i++)
            apply_ordered(&r, crm, erp, seq[i]);
        if (strcmp(dump(&r, 1), want) && !bad++)
            T_FAIL_("CDC_TEST_SEED=%u shuffle %d:\n%s", seed, k, dump(&r, 1));
        run_free(&r);
    }
    T_EQ_INT(bad, 0);
    /* integers order as numbers (a version column), NULL below all */
    {
        static const char vy[] =
            "sources: {s: {}}\n"
            "targets: {w: {key: k, fields: {k: int, v: {type: text, owner: s,"
            " rule: ordered}}}}\n"
            "mappings:\n"
            "  - {source: s, table: d.t, target: w, key: {k: id}, order_by: "
            "ver, fields: {v: val}}\n";
        cdc_table_t *t = mktable("d", "t", "id,ver,val");
        static const char *const rows[] = {"i:1|i:9|s:nine", "i:1|i:10|s:ten",
                                           "i:1|n|s:null-version",
                                           "i:1|i:-5|s:minus"};
        cdc_err_t err;
        run_init(&r, vy);
        for (int i = 0; r.m && i < 4; i++) {
            cdc_txn_t *tx = mktxn(t, 'c', NULL, rows[i], 1000 - i, (uint64_t)i + 1);
            T_EQ_INT(apply(&r, "s", tx, &err), 1);
            cdc_txn_destroy(tx);
        }
        T_EQ_STR(dump(&r, 0), "w k=\"1\"\n  v: \"ten\"\n");
        if (r.m) {
            cdc_txn_t *tx = mktxn(t, 'c', NULL, "i:1|s:soon|s:x", 5, 9);
            T_EQ_INT(apply(&r, "s", tx, &err), -1);
            T_EQ_INT(err.code, CDC_EXIT_DATA);
            T_ASSERT(strstr(err.msg, "order_by value 'soon' is neither an "
                                     "integer nor a date-time") != NULL);
            cdc_txn_destroy(tx);
        }
        run_free(&r);
        cdc_table_destroy(t);
    }
    /* load errors name the field or the key */
    {
        cdc_err_t err;
        cdc_map_t *m = load("sources: {s: {}}\ntargets: {w: {key: k, fields: "
                            "{k: int, v: {type: text, owner: s, rule: "
                            "ordered}}}}\nmappings:\n  - {source: s, table: "
                            "d.t, target: w, key: {k: id}, fields: {v: val}}"
                            "\n", &err);
        T_ASSERT(m == NULL);
        T_ASSERT(strstr(err.msg, "writes field 'v' (rule: ordered) but has "
                                 "no 'order_by'") != NULL);
        m = load("sources: {s: {}}\ntargets: {w: {key: k, fields: {k: int, "
                 "v: {type: text, owner: s}}}}\nmappings:\n  - {source: s, "
                 "table: d.t, target: w, key: {k: id}, order_by: ver, fields: "
                 "{v: val}}\n", &err);
        T_ASSERT(m == NULL);
        T_ASSERT(strstr(err.msg, "'order_by' orders fields with rule: "
                                 "ordered") != NULL);
    }
    cdc_table_destroy(crm);
    cdc_table_destroy(erp);
}

CDC_TEST(same_value_update_and_absent_columns)
{
    run_t r;
    cdc_err_t err;
    cdc_table_t *erp = mktable("public", "accounts", ERP_COLS);
    cdc_txn_t *tx;

    run_init(&r, base_yaml);
    if (!r.m)
        return;
    /* only the balance changed: one value, the other fields not offered */
    tx = mktxn(erp, 'u', "i:1|s:A|d:1.00|s:x|f:1", "i:1|s:A|d:1.001|s:x|f:1",
               5, 5);
    T_EQ_INT(apply(&r, "erp", tx, &err), 0); /* 1.001 -> 1.00: same */
    cdc_txn_destroy(tx);
    tx = mktxn(erp, 'u', "i:1|s:A|d:1.00|s:x|f:1", "i:1|s:A|d:2|s:x|f:1", 6,
               6);
    T_EQ_INT(apply(&r, "erp", tx, &err), 1);
    T_EQ_INT(r.ops.ops[0].nvals, 1);
    T_EQ_STR(r.ops.ops[0].vals[0].s, "2.00");
    cdc_txn_destroy(tx);
    /* absent (MINIMAL image) and unchanged (TOAST) columns say nothing */
    tx = mktxn(erp, 'u', NULL, "i:1|a|d:3|a|a", 7, 7);
    tx->changes[0].after[3].kind = CDC_V_UNCHANGED;
    T_EQ_INT(apply(&r, "erp", tx, &err), 1);
    T_EQ_INT(r.ops.ops[0].nvals, 1);
    cdc_txn_destroy(tx);
    cdc_table_destroy(erp);
    run_free(&r);
}

CDC_TEST(delete_row_and_lookup)
{
    static const char y[] =
        "sources: {a: {}, b: {}}\n"
        "targets:\n"
        "  w:\n"
        "    key: [k]\n"
        "    fields:\n"
        "      k: int\n"
        "      x: {type: text, owner: a}\n"
        "      y: {type: text, owner: b}\n"
        "      tier_id: {type: int, owner: a}\n"
        "      tier_name: {type: text, owner: b}\n"
        "mappings:\n"
        "  - {source: a, table: d.a, target: w, key: {k: id}, on_delete: "
        "delete, fields: {x: v, tier_id: tier}}\n"
        "  - {source: b, table: d.b, target: w, key: {k: id}, fields: {y: v},"
        " columns: {include: ['*'], exclude: [secret]}}\n"
        "  - {source: b, table: d.tiers, target: w, lookup: true, key: "
        "{tier_id: id}, fields: {tier_name: name}}\n";
    run_t r;
    cdc_err_t err;
    cdc_table_t *a = mktable("d", "a", "id,v,tier");
    cdc_table_t *b = mktable("d", "b", "id,v,tier_name,secret");
    cdc_table_t *tiers = mktable("d", "tiers", "id,name");
    cdc_txn_t *tx;

    run_init(&r, y);
    if (!r.m)
        return;
    tx = mktxn(a, 'c', NULL, "i:1|s:one|i:5", 10, 1);
    apply(&r, "a", tx, &err);
    cdc_txn_destroy(tx);
    tx = mktxn(a, 'c', NULL, "i:2|s:two|i:5", 10, 2);
    apply(&r, "a", tx, &err);
    cdc_txn_destroy(tx);
    tx = mktxn(b, 'c', NULL, "i:1|s:bee|s:ignored-not-owned|s:pw", 20, 1);
    apply(&r, "b", tx, &err);
    cdc_txn_destroy(tx);
    /* a dimension change updates every row with tier_id 5 */
    tx = mktxn(tiers, 'u', "i:5|s:Gold", "i:5|s:Platinum", 30, 2);
    T_EQ_INT(apply(&r, "b", tx, &err), 1);
    T_EQ_INT(r.ops.ops[0].kind, CDC_WIDE_LOOKUP);
    cdc_txn_destroy(tx);
    T_EQ_STR(dump(&r, 0), "w k=\"1\"\n  x: \"one\"\n  y: \"bee\"\n"
                          "  tier_id: \"5\"\n  tier_name: \"Platinum\"\n"
                          "w k=\"2\"\n  x: \"two\"\n  y: null\n"
                          "  tier_id: \"5\"\n  tier_name: \"Platinum\"\n");
    /* delete row: refused while b wrote after it, done otherwise */
    tx = mktxn(a, 'd', "i:1|s:one|i:5", NULL, 25, 3);
    apply(&r, "a", tx, &err);
    cdc_txn_destroy(tx);
    tx = mktxn(a, 'd', "i:2|s:two|i:5", NULL, 40, 4);
    apply(&r, "a", tx, &err);
    cdc_txn_destroy(tx);
    T_EQ_INT(cdc_wide_model_rows(r.wm), 1);
    cdc_table_destroy(a);
    cdc_table_destroy(b);
    cdc_table_destroy(tiers);
    run_free(&r);
}

/* ---- row deletes: field-level tombstones ------------------------------------ */

static const char tomb_yaml[] =
    "sources: {a: {priority: 2}, b: {priority: 1}}\n"
    "targets:\n"
    "  w:\n"
    "    key: k\n"
    "    fields:\n"
    "      k: int\n"
    "      x: {type: text, owner: a}\n"
    "      y: {type: text, owner: b}\n"
    "      z: {type: text, owners: [a, b]}\n"
    "      p: {type: text, owners: [a, b], rule: priority}\n"
    "mappings:\n"
    "  - {source: a, table: d.a, target: w, key: {k: id}, on_delete: delete,"
    " fields: {x: v, z: v, p: v}}\n"
    "  - {source: b, table: d.b, target: w, key: {k: id}, on_delete: delete,"
    " fields: {y: v, z: v, p: v}}\n";

/* deletes of both sources; older changes that arrive after a delete; a
 * delete of a key nobody wrote yet; a delete older than the insert */
static const chg_t tomb_hist[] = {
    {"a", 0, 'c', NULL, "i:1|s:a1", 100, 1},
    {"b", 1, 'c', NULL, "i:1|s:b1", 110, 1},
    {"a", 0, 'd', "i:1|s:a1", NULL, 200, 2},
    {"b", 1, 'u', "i:1|s:b1", "i:1|s:b2", 150, 2},
    {"b", 1, 'd', "i:2|s:b0", NULL, 300, 3},
    {"a", 0, 'c', NULL, "i:2|s:a4", 400, 3},
    {"b", 1, 'c', NULL, "i:3|s:b3", 100, 4},
    {"a", 0, 'd', "i:3|s:a0", NULL, 50, 4},
};
#define NT (int)(sizeof(tomb_hist) / sizeof(tomb_hist[0]))

static void apply_tomb(run_t *r, cdc_table_t *ta, cdc_table_t *tb, int i)
{
    const chg_t *h = &tomb_hist[i];
    cdc_err_t err;
    cdc_txn_t *tx = mktxn(h->erp ? tb : ta, h->op, h->before, h->after, h->t,
                          h->pos);
    if (apply(r, h->src, tx, &err) < 0)
        T_FAIL_("apply %d: %s", i, err.msg);
    cdc_txn_destroy(tx);
}

CDC_TEST(row_deletes_are_tombstones_in_any_order)
{
    cdc_table_t *ta = mktable("d", "a", "id,v"), *tb = mktable("d", "b", "id,v");
    static const char want[] =
        /* 1: a's delete at 200 is newer than everything: dead, gone */
        "w k=\"2\"\n"
        "  x: \"a4\"  [a 400]\n"
        "  y: null  [b 300 deleted]\n"
        "  z: \"a4\"  [a 400]\n"
        "  p: \"a4\"  [a 400]\n"
        "w k=\"3\"\n"
        "  x: null  [a 50 deleted]\n"
        "  y: \"b3\"  [b 100]\n"
        "  z: \"b3\"  [b 100]\n"
        "  p: null  [a 50 deleted]\n";
    int perm[NT], nperm = 0, bad = 0;
    run_t r;

    run_init(&r, tomb_yaml);
    if (!r.m)
        return;
    T_ASSERT(r.m->targets[0].tombstones);
    {
        /* the delete is a NULL with the deletion mark on EVERY non-key
         * field, b's fields too, ranked like a write */
        cdc_err_t err;
        cdc_buf_t pj = CDC_BUF_INIT;
        cdc_txn_t *tx = mktxn(ta, 'd', "i:1|s:a1", NULL, 200, 2);
        T_EQ_INT(apply(&r, "a", tx, &err), 1);
        T_EQ_INT(r.ops.ops[0].kind, CDC_WIDE_DELETE);
        T_EQ_INT(r.ops.ops[0].nvals, 4);
        for (uint32_t i = 0; i < r.ops.ops[0].nvals; i++)
            T_ASSERT(r.ops.ops[0].vals[i].isnull &&
                     r.ops.ops[0].vals[i].deleted);
        cdc_wide_prov_json(&pj, &r.ops.ops[0], &r.ops.ops[0].vals[0]);
        T_ASSERT(strstr(pj.p, "\"t\":200,") && strstr(pj.p, ",\"d\":1}"));
        cdc_buf_free(&pj);
        cdc_txn_destroy(tx);
        /* a delete alone leaves no visible row */
        T_EQ_INT(cdc_wide_model_rows(r.wm), 0);
        T_EQ_STR(dump(&r, 1), "");
    }
    {
        char name[80];
        cdc_map_tombstone_table(&r.m->targets[0], name, sizeof(name));
        T_EQ_STR(name, "w_tombstones");
    }
    run_free(&r);
    for (int i = 0; i < NT; i++)
        perm[i] = i;
    do {
        run_init(&r, tomb_yaml);
        for (int i = 0; i < NT; i++)
            apply_tomb(&r, ta, tb, perm[i]);
        if (strcmp(dump(&r, 1), want) && !bad++)
            T_FAIL_("permutation %d differs:\n%s", nperm, dump(&r, 1));
        if (cdc_wide_model_rows(r.wm) != 2 && !bad++)
            T_FAIL_("permutation %d: %zu rows", nperm,
                    cdc_wide_model_rows(r.wm));
        run_free(&r);
        nperm++;
    } while (next_perm(perm, NT));
    T_EQ_INT(nperm, 40320);
    srand(7);
    for (int k = 0; k < 500; k++) {
        int seq[3 * NT], n = shuffled_replays(seq, NT);
        run_init(&r, tomb_yaml);
        for (int i = 0; i < n; i++)
            apply_tomb(&r, ta, tb, seq[i]);
        if (strcmp(dump(&r, 1), want) && !bad++)
            T_FAIL_("shuffle %d differs:\n%s", k, dump(&r, 1));
        run_free(&r);
    }
    T_EQ_INT(bad, 0);
    cdc_table_destroy(ta);
    cdc_table_destroy(tb);
}

/* a delete (clear) is order independent too: its NULLs are ranked writes */
CDC_TEST(clear_deletes_converge_in_any_order)
{
    static const char y[] =
        "sources: {a: {}, b: {}}\n"
        "targets: {w: {key: k, fields: {k: int, x: {type: text, owners: [a, b]}}}}\n"
        "mappings:\n"
        "  - {source: a, table: d.a, target: w, key: {k: id}, fields: {x: v}}\n"
        "  - {source: b, table: d.b, target: w, key: {k: id}, fields: {x: v}}\n";
    cdc_table_t *ta = mktable("d", "a", "id,v"), *tb = mktable("d", "b", "id,v");
    struct { int b; char op; const char *bf, *af; int64_t t; } h[] = {
        {0, 'c', NULL, "i:1|s:a1", 100}, {1, 'c', NULL, "i:1|s:b1", 150},
        {0, 'd', "i:1|s:a1", NULL, 200}, {1, 'u', "i:1|s:b1", "i:1|s:b2", 180},
    };
    int perm[4] = {0, 1, 2, 3}, bad = 0;
    do {
        run_t r;
        cdc_err_t err;
        run_init(&r, y);
        for (int i = 0; i < 4; i++) {
            int j = perm[i];
            cdc_txn_t *tx = mktxn(h[j].b ? tb : ta, h[j].op, h[j].bf, h[j].af,
                                  h[j].t, (uint64_t)j + 1);
            apply(&r, h[j].b ? "b" : "a", tx, &err);
            cdc_txn_destroy(tx);
        }
        bad += strcmp(dump(&r, 1), "w k=\"1\"\n  x: null  [a 200]\n") != 0;
        run_free(&r);
    } while (next_perm(perm, 4));
    T_EQ_INT(bad, 0);
    cdc_table_destroy(ta);
    cdc_table_destroy(tb);
}

/* ---- binary data into text fields ----------------------------------------- */

/* One rule on every path: a binary value reaches a text field as standard
 * padded base64.  A live run hands the engine raw bytes (CDC_V_BYTES);
 * the Kafka source and `mapping test` read the envelope's base64 string.
 * Random byte strings (NULs, high bytes, every length mod 3) go both ways
 * and must give the same rows, whose text decodes back to the bytes. */
static const char bin_yaml[] =
    "sources: {s: {}}\n"
    "targets:\n"
    "  w:\n"
    "    table: public.w\n"
    "    key: id\n"
    "    fields: {id: bigint, t: {type: text, owner: s},\n"
    "             n: {type: bigint, owner: s}}\n"
    "mappings:\n"
    "  - {name: m, source: s, table: d.t, target: w, key: {id: id},\n"
    "     fields: {t: b, n: length(b)}}\n";

static int b64val(int c)
{
    const char *tab =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(tab, c) : NULL;
    return p ? (int)(p - tab) : -1;
}

/* decode standard padded base64; -1 if malformed */
static long unb64(const char *s, size_t n, unsigned char *out)
{
    long k = 0;
    if (n % 4)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++)
            v[j] = s[i + j] == '=' && i + 4 == n && j >= 2 ? 0
                                                           : b64val(s[i + j]);
        if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0)
            return -1;
        out[k++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        if (s[i + 2] != '=')
            out[k++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
        if (s[i + 3] != '=')
            out[k++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
    }
    return k;
}

CDC_TEST(binary_into_text_is_base64_on_every_path)
{
    enum { N = 60 };
    unsigned char bytes[N][48];
    size_t lens[N];
    char mp[] = "/tmp/t_map_bin.XXXXXX", in[64], *live, *viaenv = NULL;
    size_t vl = 0;
    FILE *fp;
    run_t r;
    cdc_err_t err;
    cdc_table_t *t = mktable("d", "t", "id,b");
    int fd;
    const char *seed_env = getenv("CDC_TEST_SEED");
    unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : 13;
    int failed_before = cdc_test_failed_;

    srand(seed);
    for (int i = 0; i < N; i++) {
        lens[i] = (size_t)(rand() % 48);
        for (size_t j = 0; j < lens[i]; j++)
            bytes[i][j] = (unsigned char)(j % 7 == 0 ? 0 : rand() % 256);
    }
    fd = mkstemp(mp);
    T_ASSERT(fd >= 0 && write(fd, bin_yaml, strlen(bin_yaml)) ==
                            (ssize_t)strlen(bin_yaml));
    close(fd);
    snprintf(in, sizeof(in), "%s.jsonl", mp);
    fp = fopen(in, "w");

    /* live: raw bytes into the engine */
    run_init(&r, bin_yaml);
    for (int i = 0; i < N; i++) {
        cdc_txn_t *tx = mktxn(t, 'c', NULL, "i:0|n", 1000000, (uint64_t)i + 1);
        cdc_value_t *b = &tx->changes[0].after[1];
        cdc_buf_t env = CDC_BUF_INIT;
        tx->changes[0].after[0].u.i = i;
        b->kind = CDC_V_BYTES;
        b->len = lens[i];
        b->s = cdc_arena_memdup(&tx->arena, bytes[i], lens[i]);
        T_ASSERT(apply(&r, "s", tx, &err) > 0);
        /* the envelope of the same change, as a source writes it */
        cdc_buf_printf(&env, "{\"application_id\":\"s\",\"timestamp\":\"x\","
                       "\"version\":1,\"payload\":{\"op\":\"c\",\"key\":"
                       "{\"id\":%d},\"before\":null,\"after\":{\"id\":%d,"
                       "\"b\":", i, i);
        cdc_json_value(&env, b);
        cdc_buf_printf(&env, "}},\"source\":{\"connector\":\"mariadb\","
                       "\"server_id\":1,\"db\":\"d\",\"table\":\"t\",\"file\":"
                       "\"f.000001\",\"pos\":%d,\"row\":0,\"ts_ms\":1000}}\n",
                       i + 1);
        fputs(env.p, fp);
        cdc_buf_free(&env);
        cdc_txn_destroy(tx);
    }
    fclose(fp);
    live = cdc_xstrdup(dump(&r, 0));
    run_free(&r);

    /* `mapping test` (the Kafka source reads envelopes the same way) */
    fp = open_memstream(&viaenv, &vl);
    T_EQ_INT(cdc_map_test_run(mp, in, fp, 0, &err), 0);
    fclose(fp);
    T_ASSERT(viaenv && strstr(viaenv, live));
    if (viaenv && !strstr(viaenv, live))
        printf("# live:\n%s# mapping test:\n%s", live, viaenv);

    /* and the text is the base64 of the bytes */
    for (int i = 0; i < N; i++) {
        char pat[32];
        const char *p, *q;
        unsigned char back[64];
        long k;
        snprintf(pat, sizeof(pat), "w id=\"%d\"\n", i);
        p = strstr(live, pat);
        T_ASSERT(p && (p = strstr(p, "t: \"")) && (q = strchr(p + 4, '"')));
        if (!p || !q)
            continue;
        k = unb64(p + 4, (size_t)(q - p - 4), back);
        T_EQ_INT(k, (long)lens[i]);
        T_ASSERT(k == (long)lens[i] && !memcmp(back, bytes[i], lens[i]));
    }
    if (cdc_test_failed_ && !failed_before)
        printf("# CDC_TEST_SEED=%u\n", seed);
    free(live);
    free(viaenv);
    unlink(mp);
    unlink(in);
    cdc_table_destroy(t);
}

/* Snapshot rows (op 'r', docs/MAPPINGS.md): below every streamed change of
 * any source, whatever the snapshot's own commit time; equal values rank
 * equal (a re-read writes nothing); and any order of a history with
 * snapshots converges. */
CDC_TEST(snapshot_rows_rank_below_streamed_changes)
{
    static const char y[] =
        "sources: {a: {priority: 1}, c: {priority: 2}}\n"
        "targets: {w: {key: k, fields: {k: int,\n"
        "  x: {type: text, owners: [a, c]},\n"
        "  p: {type: text, owners: [a, c], rule: priority}}}}\n"
        "mappings:\n"
        "  - {source: a, table: d.a, target: w, key: {k: id}, fields: {x: v, p: v}}\n"
        "  - {source: c, table: d.c, target: w, key: {k: id}, fields: {x: v, p: v}}\n";
    cdc_table_t *ta = mktable("d", "a", "id,v"), *tc = mktable("d", "c", "id,v");
    /* a's snapshot read at t=900 (after c's change at 500) and a re-read
     * at 950; c's streamed update at 500; c's snapshot at 100 */
    struct { int c; char op; const char *bf, *af; int64_t t; } h[] = {
        {1, 'u', "i:1|s:c0", "i:1|s:c1", 500}, {0, 'r', NULL, "i:1|s:a0", 900},
        {0, 'r', NULL, "i:1|s:a0", 950}, {1, 'r', NULL, "i:1|s:c1", 100},
        {0, 'r', NULL, "i:2|s:a2", 900}, {1, 'r', NULL, "i:2|s:c2", 100},
    };
    int perm[6] = {0, 1, 2, 3, 4, 5}, bad = 0;
    run_t r;
    cdc_err_t err;
    char want[512];
    /* x (latest): c's streamed c1 beats a's later-read snapshot; key 2 has
     * snapshots only: the higher priority (c) wins.  p (priority): c is
     * higher anyway. */
    snprintf(want, sizeof(want), "%s",
             "w k=\"1\"\n  x: \"c1\"  [c 500]\n  p: \"c1\"  [c 500]\n"
             "w k=\"2\"\n  x: \"c2\"  [c 100]\n  p: \"c2\"  [c 100]\n");
    do {
        run_init(&r, y);
        for (int i = 0; i < 6; i++) {
            int j = perm[i];
            cdc_txn_t *tx = mktxn(h[j].c ? tc : ta, h[j].op, h[j].bf, h[j].af,
                                  h[j].t, (uint64_t)j + 1);
            apply(&r, h[j].c ? "c" : "a", tx, &err);
            cdc_txn_destroy(tx);
        }
        if (strcmp(dump(&r, 1), want) && !bad++)
            T_EQ_STR(dump(&r, 1), want);
        run_free(&r);
    } while (next_perm(perm, 6));
    T_EQ_INT(bad, 0);
    /* the same value read twice, at other times and positions: one rank */
    {
        cdc_txn_t *t1 = mktxn(ta, 'r', NULL, "i:1|s:a0", 900, 7);
        cdc_txn_t *t2 = mktxn(ta, 'r', NULL, "i:1|s:a0", 1900, 70);
        cdc_txn_t *t3 = mktxn(ta, 'c', NULL, "i:1|s:a0", 1, 1);
        char r1[CDC_MAP_RANK_LEN + 1];
        run_init(&r, y);
        apply(&r, "a", t1, &err);
        T_EQ_INT(r.ops.ops[0].snapshot, 1);
        snprintf(r1, sizeof(r1), "%s", r.ops.ops[0].vals[0].rank);
        T_ASSERT(!strncmp(r1, "0000000000000000", 16));
        apply(&r, "a", t2, &err);
        T_EQ_STR(r.ops.ops[0].vals[0].rank, r1);
        apply(&r, "a", t3, &err); /* streamed, even at t = 1 µs: above */
        T_ASSERT(strcmp(r.ops.ops[0].vals[0].rank, r1) > 0);
        run_free(&r);
        cdc_txn_destroy(t1);
        cdc_txn_destroy(t2);
        cdc_txn_destroy(t3);
    }
    cdc_table_destroy(ta);
    cdc_table_destroy(tc);
}

/* ---- `mapping test` cases ------------------------------------------------ */

/* The final rows of `mapping test` output, one "ROW FIELD=VALUE" line per
 * field, provenance dropped: from "-- rows", a row line, then its fields
 * as "  FIELD: VALUE  [provenance]". */
static char *final_rows(const char *out)
{
    char *res = NULL, row[1024] = "";
    size_t rl = 0;
    FILE *fp = open_memstream(&res, &rl);
    const char *p = strstr(out, "\n-- rows\n");

    for (p = p ? p + 9 : ""; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (p[0] != ' ') {
            snprintf(row, sizeof(row), "%.*s", (int)n, p);
        } else {
            const char *c = memchr(p, ':', n), *end = p + n;
            for (const char *q = c; q && q + 2 < end; q++)
                if (q[0] == ' ' && q[1] == ' ' && q[2] == '[') {
                    end = q;
                    break;
                }
            if (c && c + 2 <= end)
                fprintf(fp, "%s %.*s=%.*s\n", row, (int)(c - p - 2), p + 2,
                        (int)(end - c - 2), c + 2);
        }
        p += n + (e != NULL);
    }
    fclose(fp);
    return res;
}

/* expect.txt without its comments and blank lines */
static char *expected_rows(const char *path)
{
    char *res = NULL, line[2048];
    size_t rl = 0;
    FILE *fp = open_memstream(&res, &rl), *in = fopen(path, "r");

    while (in && fgets(line, sizeof(line), in))
        if (line[0] != '#' && line[0] != '\n')
            fputs(line, fp);
    if (in)
        fclose(in);
    fclose(fp);
    return res;
}

/* Each case under tests/data/mappings: out.txt is a snapshot of what
 * `mapping test` printed when it was last reviewed (a change detector,
 * regenerated when the format changes; it proves nothing by itself), and
 * expect.txt the final rows derived by hand from the rules, which the
 * output must match field by field. */
CDC_TEST(mapping_test_cases)
{
    const char *top = getenv("top_srcdir");
    char dir[1024];
    DIR *d;
    struct dirent *de;
    int ncases = 0;

    snprintf(dir, sizeof(dir), "%s/tests/data/mappings", top ? top : ".");
    d = opendir(dir);
    T_ASSERT(d != NULL);
    if (!d)
        return;
    while ((de = readdir(d))) {
        char mp[1400], in[1400], exp[1400], hand[1400];
        char *got = NULL, *want;
        size_t gl = 0;
        FILE *fp, *ef;
        cdc_err_t err = {0};
        long n;
        if (de->d_name[0] == '.')
            continue;
        snprintf(mp, sizeof(mp), "%s/%s/map.yaml", dir, de->d_name);
        snprintf(in, sizeof(in), "%s/%s/in.jsonl", dir, de->d_name);
        snprintf(exp, sizeof(exp), "%s/%s/out.txt", dir, de->d_name);
        snprintf(hand, sizeof(hand), "%s/%s/expect.txt", dir, de->d_name);
        fp = open_memstream(&got, &gl);
        if (cdc_map_test_run(mp, in, fp, 1 | 2, &err))
            fprintf(fp, "error: %s\n", err.msg);
        fclose(fp);
        ef = fopen(exp, "rb");
        T_ASSERT(ef != NULL);
        if (!ef) {
            free(got);
            continue;
        }
        fseek(ef, 0, SEEK_END);
        n = ftell(ef);
        rewind(ef);
        want = calloc(1, (size_t)n + 1);
        if (fread(want, 1, (size_t)n, ef) != (size_t)n)
            T_FAIL_("short read %s", exp);
        fclose(ef);
        if (strcmp(got, want))
            T_FAIL_("case %s: the output changed (out.txt is a snapshot: "
                    "review, then regenerate it); got:\n%s", de->d_name, got);
        {
            char *rows = final_rows(got), *hrows = expected_rows(hand);
            T_ASSERT(access(hand, R_OK) == 0);
            T_ASSERT(hrows[0] != '\0');
            if (strcmp(rows, hrows))
                T_FAIL_("case %s: final rows differ from the hand-derived "
                        "expect.txt; got:\n%s", de->d_name, rows);
            free(rows);
            free(hrows);
        }
        free(got);
        free(want);
        ncases++;
    }
    closedir(d);
    T_ASSERT(ncases > 0);
}

/* What the target database cannot hold is refused while mapping, naming the
 * field, the mapping and the (escaped) value; without the sink's limit the
 * same value passes.  Text must be UTF-8 whatever the sink. */
CDC_TEST(target_limits_name_field_value_mapping)
{
    static const char y[] =
        "sources: {s: {}}\n"
        "targets:\n"
        "  w: {key: k, fields: {k: bigint, t: {type: text, owner: s},\n"
        "      d: {type: double, owner: s}, x: {type: decimal, owner: s}}}\n"
        "mappings:\n"
        "  - {name: lim, source: s, table: db.t, target: w, key: {k: id},\n"
        "     fields: {t: t, d: d, x: x}}\n";
    static const struct {
        unsigned limits;
        int col;           /* 1 t, 2 d, 3 x */
        int kind;
        const char *s;     /* bytes (len below) */
        size_t len;
        double d;
        const char *why;   /* NULL: accepted */
        const char *shown;
    } cases[] = {
        {CDC_MAP_LIM_NUL, 1, CDC_V_STRING, "ab\0cd", 5, 0, "NUL", "ab\\x00cd"},
        {0, 1, CDC_V_STRING, "ab\0cd", 5, 0, NULL, NULL},
        /* binary data is base64 text (binary_into_text_is_base64_...) */
        {0, 1, CDC_V_BYTES, "\xff\xfe", 2, 0, NULL, NULL},
        {0, 1, CDC_V_STRING, "a\xc3", 2, 0, "not valid UTF-8", "a\\xc3"},
        {0, 1, CDC_V_BYTES, "caf\xc3\xa9", 5, 0, NULL, NULL},
        {CDC_MAP_LIM_FINITE, 2, CDC_V_DOUBLE, NULL, 0, NAN, "NaN", NULL},
        {CDC_MAP_LIM_FINITE, 2, CDC_V_DOUBLE, NULL, 0, -INFINITY, "NaN", NULL},
        {CDC_MAP_LIM_FINITE, 2, CDC_V_STRING, "inf", 3, 0, "NaN", "'inf'"},
        {0, 2, CDC_V_DOUBLE, NULL, 0, NAN, NULL, NULL},
        {CDC_MAP_LIM_DEC38, 3, CDC_V_DECIMAL,
         "12345678901234567890123456789.5", 31, 0, "28 integer digits",
         "12345678901234567890123456789.5"},
        {CDC_MAP_LIM_DEC38, 3, CDC_V_DECIMAL,
         "-1234567890123456789012345678.123", 33, 0, NULL, NULL},
        {0, 3, CDC_V_DECIMAL, "12345678901234567890123456789.5", 31, 0, NULL,
         NULL},
    };
    cdc_table_t *t = mktable("db", "t", "id,t,d,x");
    run_t r;
    cdc_err_t err;

    run_init(&r, y);
    if (!r.m)
        return;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cdc_txn_t *tx = mktxn(t, 'c', NULL, "i:1|n|n|n", 1, 1);
        cdc_value_t *v = &tx->changes[0].after[cases[i].col];
        int n;
        v->kind = (uint8_t)cases[i].kind;
        v->u.d = cases[i].d;
        if (cases[i].s) {
            v->s = cdc_arena_memdup(&tx->arena, cases[i].s, cases[i].len);
            v->len = cases[i].len;
        }
        r.m->limits = cases[i].limits;
        n = apply(&r, "s", tx, &err);
        if (!cases[i].why)
            T_EQ_INT(n, 1);
        else {
            T_EQ_INT(n, -1);
            T_EQ_INT(err.code, CDC_EXIT_DATA);
            T_ASSERT(strstr(err.msg, cases[i].why) != NULL);
            T_ASSERT(strstr(err.msg, "mapping 'lim'") != NULL);
            T_ASSERT(strstr(err.msg, cases[i].col == 1 ? "field 't'"
                            : cases[i].col == 2 ? "field 'd'" : "field 'x'"));
            if (cases[i].shown && !strstr(err.msg, cases[i].shown))
                T_FAIL_("case %zu: %s does not show %s", i, err.msg,
                        cases[i].shown);
        }
        cdc_txn_destroy(tx);
    }
    {
        /* a long value is shortened to 60 characters, with its length */
        cdc_txn_t *tx = mktxn(t, 'c', NULL, "i:1|n|n|n", 1, 1);
        cdc_value_t *v = &tx->changes[0].after[1];
        char big[300];
        memset(big, 'q', sizeof(big));
        big[150] = '\0';
        v->kind = CDC_V_STRING;
        v->s = cdc_arena_memdup(&tx->arena, big, sizeof(big));
        v->len = sizeof(big);
        r.m->limits = CDC_MAP_LIM_NUL;
        T_EQ_INT(apply(&r, "s", tx, &err), -1);
        T_ASSERT(strstr(err.msg, "... (300 bytes)") != NULL);
        T_ASSERT(strlen(err.msg) < 400);
        cdc_txn_destroy(tx);
    }
    cdc_table_destroy(t);
    run_free(&r);
}

/* ---- aggregates: count, sum, min, max, count_distinct per key ------------- */

static const char agg_yaml[] =
    "sources: {shop: {}, pos: {}}\n"
    "targets:\n"
    "  agg360:\n"
    "    key: cust\n"
    "    fields:\n"
    "      cust: bigint\n"
    "      order_count: {type: bigint, owners: [shop, pos]}\n"
    "      total: {type: 'numeric(12,2)', owners: [shop, pos]}\n"
    "      first_at: {type: timestamp, owners: [shop, pos]}\n"
    "      last_at: {type: timestamp, owners: [shop, pos]}\n"
    "      products: {type: bigint, owners: [shop, pos]}\n"
    "mappings:\n"
    "  - source: shop\n"
    "    table: shop.orders\n"
    "    target: agg360\n"
    "    key: {cust: cust}\n"
    "    aggregates: {order_count: count, total: {sum: amount}, first_at: "
    "{min: created_at}, last_at: {max: created_at}, products: "
    "{count_distinct: prod}}\n"
    "  - source: pos\n"
    "    table: public.orders\n"
    "    target: agg360\n"
    "    key: {cust: cust}\n"
    "    aggregates: {order_count: count, total: {sum: amount}, first_at: "
    "{min: created_at}, last_at: {max: created_at}, products: "
    "{count_distinct: prod}}\n";

#define AGG_COLS "oid,cust,amount,created_at,prod"

/* oid|cust|amount|created_at|prod.  shop's order 1 moves from customer 1
 * to 2 (and a snapshot of its final state arrives too: counted once);
 * order 2 is inserted and deleted, and a snapshot read before the delete
 * must not bring it back; pos's order 1 (another row: another mapping)
 * and order 3, known only from a snapshot, go to customer 3.  Customer 1
 * ends without orders: its row goes. */
static const chg_t agg_hist[] = {
    {"shop", 0, 'c', NULL, "i:1|i:1|d:5.00|s:2024-01-01 00:00:00|i:1", 100, 1},
    {"shop", 0, 'u', "i:1|i:1|d:5.00|s:2024-01-01 00:00:00|i:1",
     "i:1|i:2|d:7.50|s:2024-01-05 00:00:00|i:1", 200, 2},
    {"shop", 0, 'c', NULL, "i:2|i:1|d:3.00|s:2024-01-02 00:00:00|i:2", 250, 3},
    {"shop", 0, 'd', "i:2|i:1|d:3.00|s:2024-01-02 00:00:00|i:2", NULL, 300, 4},
    {"shop", 0, 'r', NULL, "i:1|i:2|d:7.50|s:2024-01-05 00:00:00|i:1", 900, 9},
    {"shop", 0, 'r', NULL, "i:2|i:1|d:3.00|s:2024-01-02 00:00:00|i:2", 900, 9},
    {"pos", 1, 'c', NULL, "i:1|i:3|d:10.00|s:2024-02-01 00:00:00|i:1", 120, 1},
    {"pos", 1, 'r', NULL, "i:3|i:3|d:2.00|s:2023-12-31 23:00:00|i:2", 900, 9},
};
#define NA (int)(sizeof(agg_hist) / sizeof(agg_hist[0]))

/* The source rows after the history, by source and table */
typedef struct final_order {
    int cust;
    long cents;
    const char *at; /* canonical UTC text: its order is time order */
    int prod;
} final_order_t;

static const final_order_t agg_final[] = {
    {2, 750, "2024-01-05T00:00:00Z", 1},  /* shop order 1 */
    {3, 1000, "2024-02-01T00:00:00Z", 1}, /* pos order 1 */
    {3, 200, "2023-12-31T23:00:00Z", 2},  /* pos order 3 */
};

/* the aggregates computed from the final rows alone, printed as the
 * model prints rows */
static void agg_expected(char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (int c = 1; c <= 3; c++) {
        long cnt = 0, cents = 0;
        const char *lo = NULL, *hi = NULL;
        int prods[8] = {0}, np = 0;
        for (size_t i = 0; i < sizeof(agg_final) / sizeof(agg_final[0]); i++) {
            const final_order_t *o = &agg_final[i];
            if (o->cust != c)
                continue;
            cnt++;
            cents += o->cents;
            if (!lo || strcmp(o->at, lo) < 0)
                lo = o->at;
            if (!hi || strcmp(o->at, hi) > 0)
                hi = o->at;
            np += !prods[o->prod]++;
        }
        if (!cnt)
            continue; /* no contribution, no other field: no row */
        len += (size_t)snprintf(out + len, n - len,
                                "agg360 cust=\"%d\"\n  order_count: \"%ld\"\n"
                                "  total: \"%ld.%02ld\"\n  first_at: \"%s\"\n"
                                "  last_at: \"%s\"\n  products: \"%d\"\n",
                                c, cnt, cents / 100, cents % 100, lo, hi, np);
    }
}

static void apply_agg(run_t *r, cdc_table_t *shop, cdc_table_t *pos, int i)
{
    const chg_t *h = &agg_hist[i];
    cdc_err_t err;
    cdc_txn_t *tx = mktxn(h->erp ? pos : shop, h->op, h->before, h->after,
                          h->t, h->pos);
    if (apply(r, h->src, tx, &err) < 0)
        T_FAIL_("apply %d: %s", i, err.msg);
    cdc_txn_destroy(tx);
}

static cdc_table_t *keyed(const char *db, const char *name, const char *cols)
{
    cdc_table_t *t = mktable(db, name, cols);
    t->pk = cdc_xcalloc(1, sizeof(*t->pk));
    t->pk[0] = 0;
    t->npk = 1;
    return t;
}

CDC_TEST(aggregates_converge_in_any_order)
{
    cdc_table_t *shop = keyed("shop", "orders", AGG_COLS);
    cdc_table_t *pos = keyed("public", "orders", AGG_COLS);
    const char *seed_env = getenv("CDC_TEST_SEED");
    unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : 23;
    char want[2048];
    int perm[NA], nperm = 0, bad = 0;
    run_t r;

    agg_expected(want, sizeof(want));
    T_ASSERT(strstr(want, "cust=\"2\"") && strstr(want, "cust=\"3\"") &&
             !strstr(want, "cust=\"1\""));
    run_init(&r, agg_yaml);
    if (!r.m)
        return;
    run_free(&r);
    for (int i = 0; i < NA; i++)
        perm[i] = i;
    do {
        run_init(&r, agg_yaml);
        for (int i = 0; i < NA; i++)
            apply_agg(&r, shop, pos, perm[i]);
        if (strcmp(dump(&r, 0), want) && !bad++)
            T_FAIL_("permutation %d:\n%s\nwant:\n%s", nperm, dump(&r, 0), want);
        run_free(&r);
        nperm++;
    } while (next_perm(perm, NA));
    T_EQ_INT(nperm, 40320);
    /* shuffles with replays (duplicates) */
    srand(seed);
    for (int k = 0; k < 500; k++) {
        int seq[3 * NA], n = shuffled_replays(seq, NA);
        run_init(&r, agg_yaml);
        for (int i = 0; i < n; i++)
            apply_agg(&r, shop, pos, seq[i]);
        if (strcmp(dump(&r, 0), want) && !bad++)
            T_FAIL_("CDC_TEST_SEED=%u shuffle %d:\n%s", seed, k, dump(&r, 0));
        run_free(&r);
    }
    T_EQ_INT(bad, 0);
    /* a row left with no contribution but with a written field shows 0
     * and NULLs; a NULL argument is not counted by count_distinct */
    {
        static const char y2[] =
            "sources: {s: {}}\n"
            "targets: {w: {key: k, fields: {k: int, name: {type: text, owner:"
            " s}, n: {type: 'numeric(6,1)', owner: s}, d: {type: int, owner: "
            "s}, lo: {type: text, owner: s}}}}\n"
            "mappings:\n"
            "  - {source: s, table: d.c, target: w, key: {k: id}, fields: "
            "{name: nm}}\n"
            "  - {source: s, table: d.o, target: w, key: {k: c}, aggregates: "
            "{n: count, d: {count_distinct: p}, lo: {min: p}}}\n";
        cdc_table_t *c = keyed("d", "c", "id,nm"), *o = keyed("d", "o", "id,c,p");
        cdc_txn_t *tx;
        run_init(&r, y2);
        if (r.m) {
            cdc_err_t err;
            tx = mktxn(c, 'c', NULL, "i:1|s:Ann", 10, 1);
            apply(&r, "s", tx, &err);
            cdc_txn_destroy(tx);
            T_EQ_STR(dump(&r, 0), "w k=\"1\"\n  name: \"Ann\"\n  n: \"0.0\"\n"
                                  "  d: \"0\"\n  lo: null\n");
            tx = mktxn(o, 'c', NULL, "i:5|i:1|n", 11, 2);
            apply(&r, "s", tx, &err);
            cdc_txn_destroy(tx);
            tx = mktxn(o, 'c', NULL, "i:6|i:1|s:b", 12, 3);
            apply(&r, "s", tx, &err);
            cdc_txn_destroy(tx);
            tx = mktxn(o, 'c', NULL, "i:7|i:1|s:a", 12, 4);
            apply(&r, "s", tx, &err);
            cdc_txn_destroy(tx);
            T_EQ_STR(dump(&r, 0), "w k=\"1\"\n  name: \"Ann\"\n  n: \"3.0\"\n"
                                  "  d: \"2\"\n  lo: \"a\"\n");
            /* the row key names the row: without one it is a data error */
            o->npk = 0;
            tx = mktxn(o, 'c', NULL, "i:8|i:1|s:c", 13, 5);
            T_EQ_INT(apply(&r, "s", tx, &err), -1);
            T_EQ_INT(err.code, CDC_EXIT_DATA);
            T_ASSERT(strstr(err.msg, "no primary key") != NULL);
            T_ASSERT(strstr(err.hint, "row_key") != NULL);
            cdc_txn_destroy(tx);
            run_free(&r);
        }
        cdc_table_destroy(c);
        cdc_table_destroy(o);
    }
    cdc_table_destroy(shop);
    cdc_table_destroy(pos);
}

CDC_TEST(aggregate_load_errors)
{
    static const char head[] =
        "sources: {s: {}}\n"
        "targets: {w: {key: k, fields: {k: int, n: {type: int, owner: s}, "
        "t: {type: text, owner: s}, b: {type: boolean, owner: s}}}}\n"
        "mappings:\n"
        "  - source: s\n"
        "    table: d.o\n"
        "    target: w\n"
        "    key: {k: c}\n";
    char y[1024];

    snprintf(y, sizeof(y), "%s    aggregates: {n: {summ: x}}\n", head);
    expect_err(y, "m.yaml:8:22: unknown aggregate function 'summ'", "'sum'");
    snprintf(y, sizeof(y), "%s    aggregates: {t: {sum: x}}\n", head);
    expect_err(y, "m.yaml:8:22: aggregate 't': sum does not fit the field's "
               "type text", "bigint, numeric or double");
    snprintf(y, sizeof(y), "%s    aggregates: {b: {max: x}}\n", head);
    expect_err(y, "aggregate 'b': max does not fit", "not boolean or json");
    snprintf(y, sizeof(y), "%s    aggregates: {nn: count}\n", head);
    expect_err(y, "m.yaml:8:18: unknown field 'nn' in aggregates", "'n'");
    snprintf(y, sizeof(y), "%s    aggregates: {k: count}\n", head);
    expect_err(y, "'k' is a key field", NULL);
    snprintf(y, sizeof(y), "%s    aggregates: {n: sum}\n", head);
    expect_err(y, "sum needs a column or expression", NULL);
    snprintf(y, sizeof(y), "%s    aggregates: {n: count}\n    fields: {n: x}\n",
             head);
    expect_err(y, "m.yaml:9:17: field 'n' is an aggregate (count) and cannot "
               "also be written", NULL);
    snprintf(y, sizeof(y), "%s    row_key: [id]\n", head);
    expect_err(y, "'row_key' names the source row of 'aggregates'", NULL);
    snprintf(y, sizeof(y), "%s    aggregates: {n: count}\n  - {source: s, "
             "table: d.p, target: w, key: {k: c}, aggregates: {n: {max: x}}}\n",
             head);
    expect_err(y, "field 'n' is already count in another mapping", NULL);
    snprintf(y, sizeof(y), "%s    aggregates: {n: count}\n  - {source: s, "
             "table: d.o, target: w, key: {k: c}, aggregates: {n: count}}\n",
             head);
    expect_err(y, "m.yaml:9:5: mapping 's:d.o' has aggregates into target "
               "'w' like the mapping at m.yaml:4:5, under the same name",
               "distinct 'name:'");
    snprintf(y, sizeof(y), "%s    aggregates: {n: {count: x}, t: {min: "
             "\"x +\"}}\n", head);
    expect_err(y, "m.yaml:8:", NULL);
}

CDC_TEST_MAIN()
