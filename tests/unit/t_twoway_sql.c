/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_twoway_sql.c - the trigger SQL generated for two-way tables
 * (mappings/twoway_sql.c): which tables and fields are two-way, the rank
 * text for rules latest, priority and weighted (prefix || T || suffix
 * equals cdc_twoway_rank(), and the parts have the documented layout),
 * quoting of hostile table and field names, engine selection, and that
 * the example setup files hold exactly the generated SQL.
 */
#include <inttypes.h>

#include "cdc/err.h"
#include "mappings/map_int.h"
#include "mappings/reverse.h"
#include "mappings/twoway_sql.h"
#include "tests/unit/cdc_test.h"

static const char *yaml3 =
    "sources:\n"
    "  crm: {priority: 2, weight: 0.75}\n"
    "  platform: {priority: 1, weight: 0.25}\n"
    "targets:\n"
    "  wide:\n"
    "    table: public.w\n"
    "    key: id\n"
    "    fields:\n"
    "      id: bigint\n"
    "      a: {type: text, owners: [crm, platform], rule: latest}\n"
    "      b: {type: text, owners: [crm, platform], rule: priority}\n"
    "      c: {type: text, owners: [crm, platform], rule: weighted}\n"
    "      only_fwd: {type: text, owner: crm}\n"
    "  biz:\n"
    "    table: shop.cust\n"
    "    key: id\n"
    "    fields:\n"
    "      id: bigint\n"
    "      a: {type: text, owners: [crm, platform], rule: latest}\n"
    "      b: {type: text, owners: [crm, platform], rule: priority}\n"
    "      x: {type: text, owners: [crm, platform], rule: weighted}\n"
    "mappings:\n"
    "  - name: fwd\n"
    "    source: crm\n"
    "    table: shop.cust\n"
    "    target: wide\n"
    "    key: {id: id}\n"
    "    fields:\n"
    "      a: a\n"
    "      b: b\n"
    "      c: {from: x}\n"
    "      only_fwd: \"upper(a)\"\n"
    "  - name: rev\n"
    "    source: platform\n"
    "    table: public.w\n"
    "    target: biz\n"
    "    key: {id: id}\n"
    "    fields:\n"
    "      a: a\n"
    "      b: b\n"
    "      x: {from: c}\n";

static char *gen(const cdc_map_t *m, const char *app, const char *src,
                 const char *sink, const char *only, int *n)
{
    cdc_twsql_opts_t o = {app, cdc_twsql_engine(src), cdc_twsql_engine(sink),
                          cdc_twsql_engine(only)};
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_err_t err = {0};
    *n = cdc_twsql_generate(m, &o, &b, &err);
    if (*n < 0)
        printf("# generate: %s\n", err.msg);
    return b.p ? b.p : cdc_xstrdup("");
}

#define T_HAS(hay, needle)                                                 \
    do {                                                                   \
        if (!strstr((hay), (needle)))                                      \
            T_FAIL_("output lacks: %s", (needle));                         \
    } while (0)
#define T_HASNT(hay, needle)                                               \
    do {                                                                   \
        if (strstr((hay), (needle)))                                       \
            T_FAIL_("output has: %s", (needle));                           \
    } while (0)

/* the rank the SQL builds from pre, the time slot and suf */
static void sql_rank(const char *pre, int64_t t, const char *suf, char *out,
                     size_t outsz)
{
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_buf_printf(&b, "%s8%015" PRIx64 "%s", pre, (uint64_t)t, suf);
    snprintf(out, outsz, "%s", b.p);
    cdc_buf_free(&b);
}

/* the prefix and suffix arguments following "'field', 'rule', " */
static int pg_args(const char *sql, const char *field, const char *rule,
                   char *pre, char *suf)
{
    char key[128];
    const char *p;
    snprintf(key, sizeof(key), "'%s', '%s', '", field, rule);
    if (!(p = strstr(sql, key)))
        return -1;
    p += strlen(key);
    return sscanf(p, "%88[0-9a-f]', '%88[0-9a-f]'", pre, suf) == 2 ? 0
           : sscanf(p, "', '%88[0-9a-f]'", suf) == 1 ? (*pre = '\0', 0)
                                                     : -1;
}

CDC_TEST(three_rules_rank_like_the_engine)
{
    cdc_err_t err = {0};
    cdc_map_t *m = cdc_map_load_str("m.yaml", yaml3, strlen(yaml3), &err);
    char pre[CDC_MAP_RANK_LEN + 1], suf[CDC_MAP_RANK_LEN + 1];
    char want[CDC_MAP_RANK_LEN + 1], got[CDC_MAP_RANK_LEN + 1];
    const char *rules[] = {"latest", "priority", "weighted"};
    const char *fields[] = {"a", "b", "c"};
    const int64_t times[] = {0, 1, 1767225600123456, (INT64_C(1) << 60) - 1};
    char *pg, *my;
    int n;

    T_ASSERT(m != NULL);
    if (!m) {
        printf("# %s\n", err.msg);
        return;
    }
    pg = gen(m, "platform", "postgres", "mysql", "postgres", &n);
    T_EQ_INT(n, 1);
    /* wide table public.w: edits rank as platform (priority 1, weight
     * 0.25); a, b, c are two-way, only_fwd is not (rev does not read it) */
    T_HAS(pg, "ALTER TABLE \"public\".\"w\" ADD COLUMN IF NOT EXISTS "
              "_provenance jsonb NOT NULL DEFAULT '{}';");
    T_HAS(pg, "CREATE TRIGGER autoglm_cdc_twoway BEFORE INSERT OR UPDATE ON "
              "\"public\".\"w\"");
    T_HAS(pg, "EXECUTE FUNCTION \"public\".\"autoglm_cdc_twoway_stamp\"(\n"
              "        'platform',\n");
    T_HASNT(pg, "'only_fwd'");
    T_HAS(pg, "pg_replication_origin_session_is_setup()");
    T_HAS(pg, "RAISE NOTICE 'autoglm-cdc: % keeps % from % (rule %): this "
              "edit ranks lower'");
    /* the documented layouts, spelled out */
    T_HAS(pg, "'a', 'latest', '', '800000012a4a32b2"
              "00000000000000000000000000000000'");
    T_HAS(pg, "'b', 'priority', '80000001', '2a4a32b2"
              "00000000000000000000000000000000'");
    /* weighted: weight 0.25 -> llround(250000) = 0x3d090 in 16 digits */
    T_HAS(pg, "'c', 'weighted', '000000000003d090', '800000012a4a32b2"
              "00000000000000000000000000000000'");
    for (int r = 0; r < 3; r++) {
        T_ASSERT(pg_args(pg, fields[r], rules[r], pre, suf) == 0);
        for (size_t k = 0; k < sizeof(times) / sizeof(*times); k++) {
            cdc_twoway_rank((cdc_mrule_t)r, 1, 0.25, "platform", times[k],
                            want);
            sql_rank(pre, times[k], suf, got, sizeof(got));
            T_EQ_STR(got, want);
            T_EQ_INT(strlen(got), cdc_twoway_rank_len((cdc_mrule_t)r));
        }
    }

    my = gen(m, "crm", "mysql", "postgres", "mysql", &n);
    T_EQ_INT(n, 1);
    /* business table shop.cust: edits rank as crm (priority 2, weight
     * 0.75 -> 750000 = 0xb71b0); fields a, b and x (read by fwd as
     * `from: x`, written by rev) */
    T_HAS(my, "ALTER TABLE `shop`.`cust` ADD COLUMN IF NOT EXISTS "
              "`_provenance` LONGTEXT NOT NULL DEFAULT '{}';");
    T_HAS(my, "CREATE TRIGGER `shop`.`cust_2w_ins` BEFORE INSERT ON "
              "`shop`.`cust` FOR EACH ROW");
    T_HAS(my, "CREATE TRIGGER `shop`.`cust_2w_upd` BEFORE UPDATE ON "
              "`shop`.`cust` FOR EACH ROW");
    T_HAS(my, "IF COALESCE(@autoglm_cdc_sink, 0) = 0 THEN");
    T_HAS(my, "DELIMITER //\n");
    T_HAS(my, "END//\nDELIMITER ;\n");
    T_HAS(my, "SET r = CONCAT('8', LPAD(LOWER(HEX(t)), 15, '0'), "
              "'80000002ed44d67700000000000000000000000000000000');");
    T_HAS(my, "SET r = CONCAT('80000002', '8', LPAD(LOWER(HEX(t)), 15, '0'), "
              "'ed44d67700000000000000000000000000000000');");
    T_HAS(my, "SET r = CONCAT('00000000000b71b0', '8', LPAD(LOWER(HEX(t)), "
              "15, '0'), '80000002ed44d67700000000000000000000000000000000');");
    T_HAS(my, "IF NOT (NEW.`x` <=> OLD.`x`) THEN");
    T_HAS(my, "JSON_EXTRACT(OLD.`_provenance`, '$.\"x\".t')");
    T_HAS(my, "SET NEW.`x` = OLD.`x`; -- this edit ranks lower: undone");
    T_HAS(my, "JSON_OBJECT('s', 'crm', 't', t, 'r', r)");
    {
        char r0[CDC_MAP_RANK_LEN + 1];
        cdc_twoway_rank(CDC_RULE_WEIGHTED, 2, 0.75, "crm", 5, r0);
        T_EQ_STR(r0, "00000000000b71b0800000000000000580000002ed44d677"
                     "00000000000000000000000000000000");
    }
    free(pg);
    free(my);

    /* both engines (no filter): PostgreSQL first, each with its header */
    pg = gen(m, "crm", "mysql", "postgres", NULL, &n);
    T_EQ_INT(n, 2);
    T_ASSERT(strstr(pg, "PostgreSQL") && strstr(pg, "MariaDB/MySQL") &&
             strstr(pg, "PostgreSQL") < strstr(pg, "MariaDB/MySQL"));
    free(pg);
    /* no engine hints and no filter: an error naming the table */
    {
        cdc_twsql_opts_t o = {0};
        cdc_buf_t b = CDC_BUF_INIT;
        T_EQ_INT(cdc_twsql_generate(m, &o, &b, &err), -1);
        T_EQ_INT(err.code, CDC_EXIT_CONFIG);
        T_ASSERT(strstr(err.msg, "engine is unknown") != NULL);
        cdc_buf_free(&b);
    }
    cdc_map_destroy(m);
}

CDC_TEST(rule_mismatch_is_skipped_with_a_note)
{
    static const char *y =
        "sources: {s1: {priority: 1}, s2: {priority: 1}}\n"
        "targets:\n"
        "  w: {table: p.w, key: id, fields: {id: bigint,\n"
        "      a: {type: text, owners: [s1, s2], rule: latest}}}\n"
        "  b: {table: q.b, key: id, fields: {id: bigint,\n"
        "      a: {type: text, owners: [s1, s2], rule: priority}}}\n"
        "mappings:\n"
        "  - {source: s1, table: q.b, target: w, key: {id: id}, fields: {a: a}}\n"
        "  - {source: s2, table: p.w, target: b, key: {id: id}, fields: {a: a}}\n";
    cdc_err_t err = {0};
    cdc_map_t *m = cdc_map_load_str("m.yaml", y, strlen(y), &err);
    char *s;
    int n;
    T_ASSERT(m != NULL);
    if (!m)
        return;
    s = gen(m, NULL, NULL, NULL, "postgres", &n);
    T_EQ_INT(n, 2);
    T_HAS(s, "-- skipped: a (rule latest here, priority in target b; "
             "declare the same rule on both)");
    T_HASNT(s, "CREATE TRIGGER");
    free(s);
    cdc_map_destroy(m);
}

/* Table names may be anything but a dot in the schema; field names are
 * restricted by the loader, so the test renames one after loading (the
 * generator takes any cdc_map_t). */
static const char *yamlh =
    "sources: {crm: {priority: 1}, plat: {priority: 1, weight: 2}}\n"
    "targets:\n"
    "  wide:\n"
    "    table: \"we\\\"ird.t'a`b; DROP TABLE x; --\\n\"\n"
    "    key: id\n"
    "    fields:\n"
    "      id: bigint\n"
    "      hx: {type: text, owners: [crm, plat], rule: weighted}\n"
    "  biz:\n"
    "    table: \"db`1.cu\\\\st'\"\n"
    "    key: id\n"
    "    fields:\n"
    "      id: bigint\n"
    "      hy: {type: text, owners: [crm, plat], rule: weighted}\n"
    "mappings:\n"
    "  - name: fwd\n"
    "    source: crm\n"
    "    table: \"db`1.cu\\\\st'\"\n"
    "    target: wide\n"
    "    key: {id: id}\n"
    "    fields:\n"
    "      hx: {from: \"x\\\"; DROP TABLE t; --\\n'`\\\\\"}\n"
    "  - name: rev\n"
    "    source: plat\n"
    "    table: \"we\\\"ird.t'a`b; DROP TABLE x; --\\n\"\n"
    "    target: biz\n"
    "    key: {id: id}\n"
    "    fields:\n"
    "      hy: {from: \"x\\\"; DROP TABLE t; --\\n'`\\\\\"}\n";

static void rename_field(cdc_map_t *m, const char *target, const char *from,
                         const char *to)
{
    for (uint32_t i = 0; i < m->ntargets; i++)
        for (uint32_t k = 0; k < m->targets[i].nfields; k++)
            if (!strcmp(m->targets[i].name, target) &&
                !strcmp(m->targets[i].fields[k].name, from)) {
                free(m->targets[i].fields[k].name);
                m->targets[i].fields[k].name = cdc_xstrdup(to);
            }
}

CDC_TEST(hostile_identifiers_are_quoted)
{
    const char *evil = "x\"; DROP TABLE t; --\n'`\\";
    cdc_err_t err = {0};
    cdc_map_t *m = cdc_map_load_str("h.yaml", yamlh, strlen(yamlh), &err);
    char *pg, *my;
    int n;

    T_ASSERT(m != NULL);
    if (!m) {
        printf("# %s\n", err.msg);
        return;
    }
    rename_field(m, "wide", "hx", evil);
    rename_field(m, "biz", "hy", evil);
    pg = gen(m, "plat", "postgres", "mysql", NULL, &n);
    T_EQ_INT(n, 2);
    /* identifiers: "" doubled; the newline stays inside the quotes */
    T_HAS(pg, "ALTER TABLE \"we\"\"ird\".\"t'a`b; DROP TABLE x; --\n\" ADD "
              "COLUMN IF NOT EXISTS _provenance");
    T_HAS(pg, "CREATE OR REPLACE FUNCTION \"we\"\"ird\"."
              "\"autoglm_cdc_twoway_stamp\"()");
    /* the field name is a trigger argument: E'' with ' and \ doubled */
    T_HAS(pg, "        E'x\"; DROP TABLE t; --\n''`\\\\', 'weighted', "
              "'00000000001e8480', '80000001cdcbe9b4");
    /* comments: control characters become '?', so no comment line ends
     * early and lets a name run as SQL */
    T_HAS(pg, "-- we\"ird.t'a`b; DROP TABLE x; --?: direct edits rank as "
              "source plat");
    T_HAS(pg, "--   x\"; DROP TABLE t; --?'`\\: rule weighted");
    T_HASNT(pg, "\nDROP TABLE");
    /* MySQL: backticks doubled; the JSON path holds a backslash, so it
     * is a hex literal; the trigger name is quoted too */
    T_HAS(pg, "ALTER TABLE `db``1`.`cu\\st'` ADD COLUMN IF NOT EXISTS");
    T_HAS(pg, "CREATE TRIGGER `db``1`.`cu\\st'_2w_upd` BEFORE UPDATE ON "
              "`db``1`.`cu\\st'`");
    T_HAS(pg, "IF NOT (NEW.`x\"; DROP TABLE t; --\n'``\\` <=> "
              "OLD.`x\"; DROP TABLE t; --\n'``\\`) THEN");
    {
        /* '$."x\"; DROP TABLE t; --\u000a'`\\".t' as hex */
        cdc_buf_t h = CDC_BUF_INIT;
        const char *path = "$.\"x\\\"; DROP TABLE t; --\\u000a'`\\\\\".t";
        cdc_buf_puts(&h, "JSON_EXTRACT(OLD.`_provenance`, CONVERT(X'");
        for (const char *c = path; *c; c++)
            cdc_buf_printf(&h, "%02x", (unsigned char)*c);
        cdc_buf_puts(&h, "' USING utf8mb4))");
        T_HAS(pg, h.p);
        cdc_buf_free(&h);
    }
    T_HASNT(pg, "'$.\"x");
    my = pg;
    (void)my;
    free(pg);
    cdc_map_destroy(m);
}

CDC_TEST(long_mysql_table_names_keep_trigger_names_short)
{
    static const char *y =
        "sources: {s1: {priority: 1}, s2: {priority: 1}}\n"
        "targets:\n"
        "  w: {table: p.w, key: id, fields: {id: bigint,\n"
        "      a: {type: text, owners: [s1, s2], rule: latest}}}\n"
        "  b: {table: q.a_very_long_business_table_name_that_goes_on_and_on_x,"
        " key: id, fields: {id: bigint,\n"
        "      a: {type: text, owners: [s1, s2], rule: latest}}}\n"
        "mappings:\n"
        "  - {source: s1, table: q.a_very_long_business_table_name_that_goes_"
        "on_and_on_x, target: w, key: {id: id}, fields: {a: a}}\n"
        "  - {source: s2, table: p.w, target: b, key: {id: id}, fields: {a: a}}\n";
    cdc_err_t err = {0};
    cdc_map_t *m = cdc_map_load_str("m.yaml", y, strlen(y), &err);
    char *s, *p;
    int n;
    T_ASSERT(m != NULL);
    if (!m)
        return;
    s = gen(m, "s1", "mysql", "postgres", "mysql", &n);
    T_EQ_INT(n, 1);
    p = strstr(s, "CREATE TRIGGER `q`.`");
    T_ASSERT(p != NULL);
    if (p) {
        char *e = strchr(p + 20, '`');
        T_ASSERT(e && e - (p + 20) <= 64);
        T_ASSERT(strncmp(e - 7, "_2w_ins", 7) == 0);
    }
    free(s);
    cdc_map_destroy(m);
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    cdc_buf_t b = CDC_BUF_INIT;
    char tmp[4096];
    size_t n;
    if (!fp)
        return NULL;
    while ((n = fread(tmp, 1, sizeof(tmp), fp)) > 0)
        cdc_buf_put(&b, tmp, n);
    fclose(fp);
    return b.p ? b.p : cdc_xstrdup("");
}

CDC_TEST(delete_triggers_when_both_directions_delete)
{
    cdc_err_t err = {0};
    char y[4096];
    const char *s = yaml3;
    cdc_buf_t b = CDC_BUF_INIT;
    cdc_map_t *m;
    char *pg, *my;
    int n;

    /* on_delete: delete after each mapping's table line */
    for (const char *p; (p = strstr(s, "    target: ")); s = p + 1) {
        cdc_buf_put(&b, s, (size_t)(p - s));
        cdc_buf_puts(&b, "    on_delete: delete\n");
        cdc_buf_putc(&b, *p);
    }
    cdc_buf_puts(&b, s);
    snprintf(y, sizeof(y), "%s", b.p);
    cdc_buf_free(&b);
    m = cdc_map_load_str("d.yaml", y, strlen(y), &err);
    T_ASSERT(m != NULL);
    if (!m) {
        printf("# %s\n", err.msg);
        return;
    }
    pg = gen(m, "crm", "mysql", "postgres", "postgres", &n);
    T_EQ_INT(n, 1);
    T_HAS(pg, "CREATE TABLE IF NOT EXISTS \"public\".\"w_tombstones\" (\"id\" bigint NOT NULL, _provenance jsonb NOT NULL, PRIMARY KEY (\"id\"));");
    T_HAS(pg, "CREATE TRIGGER autoglm_cdc_twoway_del AFTER DELETE ON \"public\".\"w\"");
    T_HAS(pg, "'t', t, 'r', r, 'd', 1)");
    T_HAS(pg, "-- only_fwd (rule latest)"); /* every non-key field */
    T_HAS(pg, "this delete ranks lower");    /* b is priority */
    my = gen(m, "crm", "mysql", "postgres", "mysql", &n);
    T_EQ_INT(n, 1);
    T_HAS(my, "CREATE TABLE IF NOT EXISTS `shop`.`cust_tombstones` (`id` BIGINT NOT NULL, `_provenance` LONGTEXT NOT NULL, PRIMARY KEY (`id`))");
    T_HAS(my, "CREATE TRIGGER `shop`.`cust_2w_del` AFTER DELETE ON `shop`.`cust` FOR EACH ROW");
    T_HAS(my, "SIGNAL SQLSTATE '45000'");
    T_HAS(my, "JSON_OBJECT('s', 'crm', 't', t, 'r', r, 'd', 1)"); /* shop.cust is read by crm */
    free(pg);
    free(my);
    cdc_map_destroy(m);
    /* without row deletes: no delete trigger */
    m = cdc_map_load_str("y.yaml", yaml3, strlen(yaml3), &err);
    T_ASSERT(m != NULL);
    if (!m)
        return;
    pg = gen(m, "crm", "mysql", "postgres", NULL, &n);
    T_HASNT(pg, "AFTER DELETE");
    T_HASNT(pg, "_tombstones");
    free(pg);
    cdc_map_destroy(m);
}

CDC_TEST(example_setup_files_hold_the_generated_sql)
{
    const char *top = getenv("top_srcdir");
    char path[4096];
    const char *eng[] = {"postgres", "mysql"};
    const char *file[] = {"twoway-setup-postgres.sql",
                          "twoway-setup-mariadb.sql"};
    cdc_err_t err = {0};
    cdc_map_t *m;

    snprintf(path, sizeof(path), "%s/mappings/examples/twoway.yaml",
             top ? top : ".");
    m = cdc_map_load(path, &err);
    T_ASSERT(m != NULL);
    if (!m) {
        printf("# %s\n", err.msg);
        return;
    }
    for (int e = 0; e < 2; e++) {
        int n;
        /* as `mapping triggers -c twoway-forward.yaml ENGINE` */
        char *want = gen(m, "crm", "mysql", "postgres", eng[e], &n);
        char *have;
        snprintf(path, sizeof(path), "%s/mappings/examples/%s",
                 top ? top : ".", file[e]);
        have = slurp(path);
        T_EQ_INT(n, 1);
        T_ASSERT(have != NULL);
        if (have && !strstr(have, want))
            T_FAIL_("%s does not hold the output of `autoglm-cdc mapping "
                    "triggers -c mappings/examples/twoway-forward.yaml %s`; "
                    "regenerate it (docs/TWO-WAY.md)", file[e], eng[e]);
        free(want);
        free(have);
    }
    cdc_map_destroy(m);
}

CDC_TEST_MAIN()
