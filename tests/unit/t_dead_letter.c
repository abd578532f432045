/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_dead_letter.c - dead letters keep a change losslessly
 * (sinks/dead_letter.h): random changes with every value kind, NUL and
 * invalid UTF-8 in strings, NaN, infinities, -0 and the integer extremes,
 * encoded, decoded and compared field by field; the decoded change
 * encodes to the same text; broken texts are refused.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cdc_test.h"
#include "cdc/util.h"
#include "sinks/dead_letter.h"

static uint64_t rng = 88172645463325252ULL;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void random_value(cdc_txn_t *tx, cdc_value_t *v)
{
    static const double dd[] = {0.0, -0.0, 1.5, -1e308, 5e-324, INFINITY,
                                -INFINITY, NAN};
    static const int64_t ii[] = {0, -1, INT64_MIN, INT64_MAX, 42};
    memset(v, 0, sizeof(*v));
    v->kind = (uint8_t)(rnd() % (CDC_V_JSON + 1));
    switch (v->kind) {
    case CDC_V_BOOL: v->u.b = (int)(rnd() & 1); break;
    case CDC_V_INT: v->u.i = rnd() & 1 ? ii[rnd() % 5] : (int64_t)rnd(); break;
    case CDC_V_UINT: v->u.u = rnd() & 1 ? UINT64_MAX : rnd(); break;
    case CDC_V_FLOAT:
    case CDC_V_DOUBLE:
        if (rnd() & 1)
            v->u.d = dd[rnd() % 8];
        else {
            uint64_t bits = rnd();
            memcpy(&v->u.d, &bits, sizeof(bits));
        }
        break;
    case CDC_V_DECIMAL:
    case CDC_V_STRING:
    case CDC_V_BYTES:
    case CDC_V_JSON: {
        size_t n = rnd() % 40;
        char *s = cdc_arena_alloc(&tx->arena, n + 1);
        for (size_t i = 0; i < n; i++)
            s[i] = (char)(rnd() & 0xff); /* NUL and invalid UTF-8 too */
        s[n] = '\0';
        v->s = s;
        v->len = n;
        break;
    }
    default: break;
    }
}

static int same_value(const cdc_value_t *a, const cdc_value_t *b)
{
    if (a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case CDC_V_BOOL: return !a->u.b == !b->u.b;
    case CDC_V_INT: return a->u.i == b->u.i;
    case CDC_V_UINT: return a->u.u == b->u.u;
    case CDC_V_FLOAT:
    case CDC_V_DOUBLE:
        return isnan(a->u.d) ? isnan(b->u.d)
                             : !memcmp(&a->u.d, &b->u.d, sizeof(double));
    case CDC_V_DECIMAL:
    case CDC_V_STRING:
    case CDC_V_BYTES:
    case CDC_V_JSON:
        return a->len == b->len && !memcmp(a->s, b->s, a->len);
    default: return 1;
    }
}

CDC_TEST(round_trip_is_lossless)
{
    for (int iter = 0; iter < 2000; iter++) {
        uint32_t ncols = (uint32_t)(rnd() % 6) + 1, idx, got_idx = 0;
        cdc_table_t *t = cdc_table_new(rnd() & 1 ? "shop" : "sch\"ema",
                                       "t\\ble", ncols);
        cdc_txn_t *tx = cdc_txn_new(), *back;
        cdc_buf_t a = CDC_BUF_INIT, b = CDC_BUF_INIT;
        cdc_err_t err = {0};
        static const char ops[] = "cudr";
        char op = ops[rnd() % 4];

        for (uint32_t i = 0; i < ncols; i++) {
            char nm[16];
            snprintf(nm, sizeof(nm), "c%u\xc3\xa9", i);
            t->cols[i].name = cdc_xstrdup(nm);
        }
        t->npk = 1;
        t->pk = cdc_xcalloc(1, sizeof(*t->pk));
        t->pk[0] = (uint32_t)(rnd() % ncols);
        tx->connector = rnd() & 1 ? "mariadb" : "postgresql";
        tx->commit_us = (int64_t)(rnd() >> 1);
        tx->xid = rnd();
        tx->pos.offset = rnd();
        tx->pos.lsn = rnd();
        if (rnd() & 1)
            snprintf(tx->pos.file, sizeof(tx->pos.file), "bin.%06u",
                     (unsigned)(rnd() % 1000));
        snprintf(tx->gtid, sizeof(tx->gtid), "0-1-%u", (unsigned)rnd());
        /* the change of interest is not the first */
        idx = (uint32_t)(rnd() % 3);
        for (uint32_t k = 0; k <= idx; k++) {
            cdc_change_t *ch = cdc_txn_add(tx, op, t);
            ch->pos = rnd();
            ch->row = (uint32_t)rnd();
            if (op != 'c') {
                ch->before = cdc_txn_values(tx, ncols);
                for (uint32_t i = 0; i < ncols; i++)
                    random_value(tx, &ch->before[i]);
            }
            if (op != 'd') {
                ch->after = cdc_txn_values(tx, ncols);
                for (uint32_t i = 0; i < ncols; i++)
                    random_value(tx, &ch->after[i]);
            }
        }
        cdc_dl_encode(&a, tx, &tx->changes[idx], idx);
        back = cdc_dl_decode(a.p, &got_idx, &err);
        T_ASSERT(back != NULL);
        if (!back) {
            T_FAIL_("%s: %s", err.msg, a.p);
            break;
        }
        {
            const cdc_change_t *x = &tx->changes[idx], *y = &back->changes[0];
            T_EQ_INT(got_idx, idx);
            T_EQ_INT(back->nchanges, 1);
            T_EQ_STR(y->tbl->db, x->tbl->db);
            T_EQ_STR(y->tbl->name, x->tbl->name);
            T_EQ_INT(y->tbl->ncols, ncols);
            T_EQ_INT(y->tbl->npk, 1);
            T_EQ_INT(y->tbl->pk[0], t->pk[0]);
            T_EQ_INT(y->op, x->op);
            T_EQ_INT(y->pos, x->pos);
            T_EQ_INT(y->row, x->row);
            T_EQ_INT(back->commit_us, tx->commit_us);
            T_ASSERT(back->pos.offset == tx->pos.offset);
            T_ASSERT(back->pos.lsn == tx->pos.lsn);
            T_ASSERT(back->xid == tx->xid);
            T_EQ_STR(back->pos.file, tx->pos.file);
            T_EQ_STR(back->gtid, tx->gtid);
            T_EQ_STR(back->connector, tx->connector);
            T_ASSERT(!x->before == !y->before);
            T_ASSERT(!x->after == !y->after);
            for (uint32_t i = 0; i < ncols; i++) {
                T_EQ_STR(y->tbl->cols[i].name, t->cols[i].name);
                if (x->before && !same_value(&x->before[i], &y->before[i]))
                    T_FAIL_("iteration %d: before[%u] differs", iter, i);
                if (x->after && !same_value(&x->after[i], &y->after[i]))
                    T_FAIL_("iteration %d: after[%u] differs", iter, i);
            }
        }
        cdc_dl_encode(&b, back, &back->changes[0], got_idx);
        T_EQ_STR(b.p, a.p);
        cdc_txn_destroy(back);
        cdc_txn_destroy(tx);
        cdc_table_destroy(t);
        cdc_buf_free(&a);
        cdc_buf_free(&b);
    }
}

CDC_TEST(broken_texts_are_refused)
{
    static const char *const bad[] = {
        "", "[]", "{\"v\":1}", "not json",
        "{\"db\":\"d\",\"table\":\"t\",\"op\":\"c\",\"cols\":[\"a\"],"
        "\"after\":[[7,\"zz\"]]}",
        "{\"db\":\"d\",\"table\":\"t\",\"op\":\"c\",\"cols\":[\"a\"],"
        "\"after\":[[9,\"abc\"]]}",
        "{\"db\":\"d\",\"table\":\"t\",\"op\":\"c\",\"cols\":[\"a\"],"
        "\"after\":[[9,\"zz\"]]}",
        "{\"db\":\"d\",\"table\":\"t\",\"op\":\"c\",\"cols\":[\"a\"],"
        "\"after\":[[2],[2]]}",
        "{\"db\":\"d\",\"table\":\"t\",\"op\":\"c\",\"cols\":[\"a\"],"
        "\"pk\":[3],\"after\":[[2]]}",
        "{\"db\":\"d\",\"table\":\"t\",\"op\":\"c\",\"cols\":[\"a\"],"
        "\"after\":[[99,\"1\"]]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cdc_err_t err = {0};
        uint32_t idx;
        cdc_txn_t *tx = cdc_dl_decode(bad[i], &idx, &err);
        if (tx) {
            T_FAIL_("accepted: %s", bad[i]);
            cdc_txn_destroy(tx);
        } else
            T_EQ_INT(err.code, CDC_EXIT_DATA);
    }
}

CDC_TEST_MAIN()
