/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_twoway.c - two-way ranks (mappings/reverse.c): the trigger's rank
 * formula equals the engine's rank for the same source, time and a zero
 * position; cdc_twoway_restamp() takes a value's rank from the row's
 * _provenance (bare column and from: with a value map), leaves fields
 * without an entry or with a rank of another layout alone.
 */
#include "cdc/err.h"
#include "mappings/map_int.h"
#include "mappings/reverse.h"
#include "tests/unit/cdc_test.h"

static const char *yaml =
    "sources:\n"
    "  crm: {priority: 1}\n"
    "  platform: {priority: 3, weight: 0.5}\n"
    "targets:\n"
    "  w:\n"
    "    table: public.w\n"
    "    key: id\n"
    "    fields:\n"
    "      id: bigint\n"
    "      name: {type: text, owners: [crm, platform], rule: latest}\n"
    "      status: {type: text, owners: [crm, platform], rule: latest}\n"
    "      note: {type: text, owners: [crm, platform], rule: priority}\n"
    "      score: {type: text, owners: [crm, platform], rule: weighted}\n"
    "mappings:\n"
    "  - source: platform\n"
    "    table: public.src\n"
    "    target: w\n"
    "    key: {id: id}\n"
    "    fields:\n"
    "      name: name\n"
    "      status: {from: is_active, map: {1: enabled, 0: disabled}}\n"
    "      note: \"upper(note)\"\n"
    "      score: score\n";

static cdc_value_t sval(cdc_txn_t *tx, const char *s)
{
    cdc_value_t v = {0};
    v.kind = CDC_V_STRING;
    v.len = strlen(s);
    v.s = cdc_arena_memdup(&tx->arena, s, v.len);
    return v;
}

static const cdc_wide_val_t *val_of(const cdc_wide_op_t *op, const char *f)
{
    static cdc_wide_val_t none = {.s = "(none)", .rank = "(none)"};
    for (uint32_t i = 0; i < op->nvals; i++)
        if (!strcmp(op->target->fields[op->vals[i].field].name, f))
            return &op->vals[i];
    return &none;
}

/* public.src with the first ncols of id, name, is_active, note, score,
 * _provenance; public.src_tombstones (id, _provenance) */
static cdc_table_t *src_table(uint32_t ncols)
{
    static const char *names[] = {"id", "name", "is_active", "note", "score",
                                  "_provenance"};
    cdc_table_t *t = cdc_table_new("public", "src", ncols);
    for (uint32_t i = 0; i < ncols; i++)
        t->cols[i].name = cdc_xstrdup(names[i]);
    return t;
}

static cdc_table_t *tomb_table(void)
{
    cdc_table_t *t = cdc_table_new("public", "src_tombstones", 2);
    t->cols[0].name = cdc_xstrdup("id");
    t->cols[1].name = cdc_xstrdup("_provenance");
    return t;
}

CDC_TEST(trigger_rank_equals_engine_rank)
{
    cdc_err_t err = {0};
    cdc_map_t *m = cdc_map_load_str("m.yaml", yaml, strlen(yaml), &err);
    cdc_wide_ops_t ops;
    cdc_txn_t *tx = cdc_txn_new();
    cdc_table_t *t = src_table(5);
    char r[CDC_MAP_RANK_LEN + 1];

    T_ASSERT(m != NULL);
    if (!m)
        return;
    cdc_wide_ops_init(&ops);
    tx->commit_us = 1767225600123456;
    cdc_change_t *ch = cdc_txn_add(tx, 'c', t);
    ch->after = cdc_txn_values(tx, 5);
    ch->after[0].kind = CDC_V_INT;
    ch->after[0].u.i = 7;
    ch->after[1] = sval(tx, "Ann");
    ch->after[2].kind = CDC_V_INT;
    ch->after[2].u.i = 1;
    ch->after[3] = sval(tx, "x");
    ch->after[4] = sval(tx, "9");
    T_EQ_INT(cdc_map_change(m, "platform", tx, ch, 0, &ops, &err), 1);
    /* position 0 (no file, no LSN, change index 0): 32 zeros */
    cdc_twoway_rank(CDC_RULE_LATEST, 3, 0.5, "platform", tx->commit_us, r);
    T_EQ_STR(val_of(&ops.ops[0], "name")->rank, r);
    T_EQ_INT((long long)strlen(r), (long long)cdc_twoway_rank_len(CDC_RULE_LATEST));
    cdc_twoway_rank(CDC_RULE_PRIORITY, 3, 0.5, "platform", tx->commit_us, r);
    T_EQ_STR(val_of(&ops.ops[0], "note")->rank, r);
    cdc_twoway_rank(CDC_RULE_WEIGHTED, 3, 0.5, "platform", tx->commit_us, r);
    T_EQ_STR(val_of(&ops.ops[0], "score")->rank, r);
    T_EQ_INT((long long)strlen(r), (long long)cdc_twoway_rank_len(CDC_RULE_WEIGHTED));
    /* the documented trigger formula for latest, priority 1, 'crm' */
    cdc_twoway_rank(CDC_RULE_LATEST, 1, 1, "crm", 0x6613eeab04e1a, r);
    T_EQ_STR(r, "8006613eeab04e1a80000001ed44d677"
                "00000000000000000000000000000000");
    cdc_wide_ops_free(&ops);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
    cdc_map_destroy(m);
}

CDC_TEST(restamp_from_provenance)
{
    cdc_err_t err = {0};
    cdc_map_t *m = cdc_map_load_str("m.yaml", yaml, strlen(yaml), &err);
    cdc_wide_ops_t ops;
    cdc_txn_t *tx = cdc_txn_new();
    cdc_table_t *t = src_table(6);
    const char *rn = "8006613eeab04e0080000001ed44d677"
                     "00000000000000000000000000000000";
    const char *rs = "8006613eeab04e1a80000001ed44d677"
                     "00000000000000000000000000000000";
    char prov[600], before_name[CDC_MAP_RANK_LEN + 1];

    T_ASSERT(m != NULL);
    if (!m)
        return;
    cdc_wide_ops_init(&ops);
    tx->commit_us = 1767225600123456;
    cdc_change_t *ch = cdc_txn_add(tx, 'u', t);
    ch->after = cdc_txn_values(tx, 6);
    ch->after[0].kind = CDC_V_INT;
    ch->after[0].u.i = 7;
    ch->after[1] = sval(tx, "Ann");
    ch->after[2].kind = CDC_V_INT;
    ch->after[2].u.i = 0;
    ch->after[3] = sval(tx, "x");
    ch->after[4] = sval(tx, "9");
    /* name and is_active stamped; score's entry has a latest-layout rank
     * (64) although score is weighted (80): not used */
    snprintf(prov, sizeof(prov),
             "{\"name\": {\"s\": \"crm\", \"t\": 1795772713554176, \"r\": \"%s\"},"
             " \"is_active\": {\"s\": \"crm\", \"t\": 1795772713554202, \"r\": \"%s\"},"
             " \"score\": {\"s\": \"crm\", \"t\": 1, \"r\": \"%s\"}}", rn, rs, rn);
    ch->after[5] = sval(tx, prov);
    ch->after[5].kind = CDC_V_JSON;
    T_EQ_INT(cdc_map_change(m, "platform", tx, ch, 0, &ops, &err), 1);
    snprintf(before_name, sizeof(before_name), "%s",
             val_of(&ops.ops[0], "note")->rank);
    T_EQ_INT(cdc_twoway_restamp(ch, &ops, 0), 2);
    T_EQ_STR(val_of(&ops.ops[0], "name")->rank, rn);
    T_EQ_STR(val_of(&ops.ops[0], "status")->rank, rs); /* from: is_active */
    T_EQ_STR(val_of(&ops.ops[0], "status")->s, "disabled");
    T_EQ_STR(val_of(&ops.ops[0], "note")->rank, before_name); /* expression */
    T_ASSERT(strcmp(val_of(&ops.ops[0], "score")->rank, rn) != 0);
    /* the values disagree on t: the op keeps its commit time */
    T_EQ_INT(ops.ops[0].commit_us, tx->commit_us);
    cdc_wide_ops_free(&ops);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
    cdc_map_destroy(m);
}

CDC_TEST(restamp_delete_from_the_tombstone_of_its_transaction)
{
    /* the yaml above with on_delete: delete: a direct DELETE of key 7 and,
     * in the same transaction, the trigger's tombstone row for key 7
     * (after one for key 8, which must not be taken) */
    cdc_err_t err = {0};
    char y[2048];
    cdc_map_t *m;
    cdc_wide_ops_t ops;
    cdc_txn_t *tx = cdc_txn_new();
    cdc_table_t *t = src_table(6);
    cdc_table_t *tb = tomb_table();
    const char *rd = "8006613eeab04e0080000001ed44d677"
                     "00000000000000000000000000000000";
    const char *r8 = "8006613eeab04eff80000001ed44d677"
                     "00000000000000000000000000000000";
    char prov[600], before_note[CDC_MAP_RANK_LEN + 1];
    uint32_t cursor;

    snprintf(y, sizeof(y), "%s    on_delete: delete\n", yaml);
    m = cdc_map_load_str("m.yaml", y, strlen(y), &err);
    T_ASSERT(m != NULL);
    if (!m)
        return;
    cdc_wide_ops_init(&ops);
    tx->commit_us = 1767225600000000;
    cdc_change_t *ch = cdc_txn_add(tx, 'd', t);
    ch->before = cdc_txn_values(tx, 6);
    ch->before[0].kind = CDC_V_INT;
    ch->before[0].u.i = 7;
    for (int k = 8; k >= 7; k--) {
        cdc_change_t *c = cdc_txn_add(tx, 'c', tb);
        c->after = cdc_txn_values(tx, 2);
        c->after[0].kind = CDC_V_INT;
        c->after[0].u.i = k;
        snprintf(prov, sizeof(prov),
                 "{\"name\": {\"s\": \"platform\", \"t\": \"1795772713554176\", "
                 "\"r\": \"%s\", \"d\": 1}, \"is_active\": {\"s\": \"platform\", "
                 "\"t\": 1795772713554176, \"r\": \"%s\", \"d\": 1}}",
                 k == 7 ? rd : r8, k == 7 ? rd : r8);
        c->after[1] = sval(tx, prov);
        c->after[1].kind = CDC_V_JSON;
    }
    ch = &tx->changes[0];
    T_EQ_INT(cdc_map_change(m, "platform", tx, ch, 0, &ops, &err), 1);
    T_EQ_INT(ops.ops[0].kind, CDC_WIDE_DELETE);
    snprintf(before_note, sizeof(before_note), "%s",
             val_of(&ops.ops[0], "note")->rank);
    T_EQ_INT(cdc_twoway_txn_has_tombstones(tx), 1);
    cursor = 0;
    T_EQ_INT(cdc_twoway_restamp_delete(tx, 0, &ops, 0, &cursor), 2);
    T_EQ_INT(cursor, 3); /* past the tombstone row of key 7 */
    T_EQ_STR(val_of(&ops.ops[0], "name")->rank, rd);
    T_EQ_STR(val_of(&ops.ops[0], "status")->rank, rd); /* from: is_active */
    T_EQ_INT(val_of(&ops.ops[0], "status")->deleted, 1);
    T_EQ_STR(val_of(&ops.ops[0], "note")->rank, before_note); /* no entry */
    T_EQ_INT(ops.ops[0].commit_us, 1795772713554176);
    /* the tombstone row itself and an upsert are not deletes */
    T_EQ_INT(cdc_twoway_restamp_delete(tx, 1, &ops, 0, &cursor), 0);
    cdc_wide_ops_free(&ops);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
    cdc_table_destroy(tb);
    cdc_map_destroy(m);
}

/* A statement deleting many rows: every delete takes the rank of its own
 * trigger row, whether those rows follow each delete (MariaDB's binlog) or
 * all come after the statement (PostgreSQL's AFTER ROW triggers). */
CDC_TEST(restamp_bulk_delete_pairs_each_row_with_its_tombstone)
{
    enum { N = 3000 };
    cdc_err_t err = {0};
    char y[2048], prov[400], rank[80];
    cdc_map_t *m;

    snprintf(y, sizeof(y), "%s    on_delete: delete\n", yaml);
    m = cdc_map_load_str("m.yaml", y, strlen(y), &err);
    T_ASSERT(m != NULL);
    if (!m)
        return;
    for (int layout = 0; layout < 2; layout++) {
        cdc_txn_t *tx = cdc_txn_new();
        cdc_table_t *t = src_table(6);
        cdc_table_t *tb = tomb_table();
        cdc_wide_ops_t ops;
        uint32_t cursor = 0, bad = 0;
        cdc_wide_ops_init(&ops);
        tx->commit_us = 1767225600000000;
        /* layout 0: delete 1, tombstone 1, delete 2, ...;
         * layout 1: delete 1..N, then tombstones 1..N */
        for (int e = 0; e < 2 * N; e++) {
            int is_del = layout == 0 ? e % 2 == 0 : e < N;
            int k = layout == 0 ? e / 2 + 1 : e % N + 1;
            cdc_change_t *c = cdc_txn_add(tx, is_del ? 'd' : 'c',
                                          is_del ? t : tb);
            cdc_value_t *v = cdc_txn_values(tx, is_del ? 6 : 2);
            v[0].kind = CDC_V_INT;
            v[0].u.i = k;
            if (is_del) {
                c->before = v;
                continue;
            }
            snprintf(rank, sizeof(rank), "8006613eeab0%04x"
                     "80000001ed44d67700000000000000000000000000000000", k);
            snprintf(prov, sizeof(prov),
                     "{\"name\": {\"s\": \"platform\", \"t\": "
                     "\"1795772713554176\", \"r\": \"%s\", \"d\": 1}}",
                     rank);
            v[1] = sval(tx, prov);
            v[1].kind = CDC_V_JSON;
            c->after = v;
        }
        T_EQ_INT(cdc_twoway_txn_has_tombstones(tx), 1);
        for (uint32_t i = 0; i < tx->nchanges; i++) {
            const cdc_change_t *ch = &tx->changes[i];
            uint32_t n0 = ops.n;
            if (ch->op != CDC_OP_DELETE)
                continue;
            T_EQ_INT(cdc_map_change(m, "platform", tx, ch, i, &ops, &err), 1);
            T_EQ_INT(cdc_twoway_restamp_delete(tx, i, &ops, n0, &cursor), 1);
            snprintf(rank, sizeof(rank), "8006613eeab0%04x"
                     "80000001ed44d67700000000000000000000000000000000",
                     (unsigned)ch->before[0].u.i);
            bad += strcmp(val_of(&ops.ops[n0], "name")->rank, rank) != 0;
        }
        T_EQ_INT(ops.n, N);
        T_EQ_INT(bad, 0);
        cdc_wide_ops_free(&ops);
        cdc_txn_destroy(tx);
        cdc_table_destroy(t);
        cdc_table_destroy(tb);
    }
    cdc_map_destroy(m);
}

CDC_TEST(restamp_without_provenance_is_a_no_op)
{
    cdc_err_t err = {0};
    cdc_map_t *m = cdc_map_load_str("m.yaml", yaml, strlen(yaml), &err);
    cdc_wide_ops_t ops;

    T_ASSERT(m != NULL);
    if (!m)
        return;
    cdc_wide_ops_init(&ops);
    /* no _provenance column; then one that is not JSON */
    for (int ncols = 5; ncols <= 6; ncols++) {
        cdc_txn_t *tx = cdc_txn_new();
        cdc_table_t *t = src_table((uint32_t)ncols);
        cdc_change_t *ch = cdc_txn_add(tx, 'c', t);
        ch->after = cdc_txn_values(tx, (uint32_t)ncols);
        ch->after[0].kind = CDC_V_INT;
        ch->after[0].u.i = 1;
        ch->after[1] = sval(tx, "Bo");
        ch->after[2].kind = CDC_V_INT;
        ch->after[2].u.i = 1;
        ch->after[3] = sval(tx, "n");
        ch->after[4] = sval(tx, "1");
        if (ncols == 6)
            ch->after[5] = sval(tx, "{not json");
        cdc_wide_ops_reset(&ops);
        T_EQ_INT(cdc_map_change(m, "platform", tx, ch, 0, &ops, &err), 1);
        T_EQ_INT(cdc_twoway_restamp(ch, &ops, 0), 0);
        cdc_txn_destroy(tx);
        cdc_table_destroy(t);
    }
    cdc_wide_ops_free(&ops);
    cdc_map_destroy(m);
}

/* the example's reverse mapping is the generated reverse of its forward
 * mapping: key swapped, value map inverted, only platform-owned fields */
CDC_TEST(reverse_of_the_example)
{
    const char *top = getenv("top_srcdir");
    char path[1024];
    cdc_err_t err = {0};
    cdc_buf_t y = CDC_BUF_INIT, doc = CDC_BUF_INIT;
    cdc_map_t *m, *m2;
    int n;

    snprintf(path, sizeof(path), "%s/mappings/examples/twoway.yaml",
             top ? top : ".");
    m = cdc_map_load(path, &err);
    T_ASSERT(m != NULL);
    if (!m) {
        printf("# %s\n", err.msg);
        return;
    }
    n = cdc_map_reverse_yaml(m, "forward", "platform", "crm_customers", &y,
                             &err);
    T_EQ_INT(n, 2);
    T_ASSERT(strstr(y.p, "key: {'id': 'customer_id'}") != NULL);
    T_ASSERT(strstr(y.p, "'is_active': {from: 'status', map: {'enabled': "
                         "'1', 'disabled': '0'}}") != NULL);
    T_ASSERT(strstr(y.p, "'name': {from: 'name'}") != NULL);
    T_ASSERT(strstr(y.p, "# not reversed: email") != NULL);
    /* the generated text loads, with the example's targets */
    {
        FILE *fp = fopen(path, "r");
        char buf[4096];
        size_t k;
        while (fp && (k = fread(buf, 1, sizeof(buf), fp)) > 0)
            cdc_buf_put(&doc, buf, k);
        if (fp)
            fclose(fp);
        cdc_buf_putc(&doc, '\0');
    }
    {
        /* keep sources and targets, replace the mappings */
        char *cut = strstr(doc.p, "\nmappings:");
        T_ASSERT(cut != NULL);
        if (cut) {
            cdc_buf_t t = CDC_BUF_INIT;
            cdc_buf_put(&t, doc.p, (size_t)(cut - doc.p) + 1);
            cdc_buf_puts(&t, "mappings:\n");
            cdc_buf_put(&t, y.p, y.len);
            m2 = cdc_map_load_str("rev.yaml", t.p, t.len, &err);
            T_ASSERT(m2 != NULL);
            if (!m2)
                printf("# %s\n%s", err.msg, t.p);
            else {
                const cdc_map_mapping_t *g = &m2->mappings[0], *d = NULL;
                T_EQ_INT(m2->nmappings, 1);
                for (uint32_t i = 0; i < m->nmappings; i++)
                    if (!strcmp(m->mappings[i].name, "reverse"))
                        d = &m->mappings[i];
                T_ASSERT(d != NULL);
                /* the same fields from the same columns with the same maps
                 * as the example's declared reverse mapping */
                T_EQ_INT(g->nfields, d ? (long long)d->nfields : -1);
                for (uint32_t i = 0; d && i < g->nfields && i < d->nfields;
                     i++) {
                    const cdc_map_assign_t *ga = &g->fields[i];
                    const cdc_map_assign_t *da = &d->fields[i];
                    T_EQ_STR(g->target->fields[ga->field].name,
                             d->target->fields[da->field].name);
                    T_EQ_STR(cdc_expr_column(ga->expr),
                             cdc_expr_column(da->expr));
                    T_EQ_INT(ga->nmap, da->nmap);
                    for (int k = 0; k < ga->nmap && k < da->nmap; k++) {
                        T_EQ_STR(ga->map_from[k], da->map_from[k]);
                        T_EQ_STR(ga->map_to[k], da->map_to[k]);
                    }
                }
                cdc_map_destroy(m2);
            }
            cdc_buf_free(&t);
        }
    }
    cdc_err_clear(&err);
    T_EQ_INT(cdc_map_reverse_yaml(m, "nope", "platform", "crm_customers", &y,
                                  &err), -1);
    T_EQ_INT(err.code, CDC_EXIT_CONFIG);
    cdc_buf_free(&y);
    cdc_buf_free(&doc);
    cdc_map_destroy(m);
}

CDC_TEST_MAIN()
