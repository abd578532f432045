/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_map_vote.c - confidence, half_life and the per-source rules (vote,
 * weighted_mean, weighted with confidence): every order of a short
 * history of three sources with updates, clears, a row delete and ties,
 * and seeded shuffles with replays, converge to one result, and that
 * result equals an independent computation from the sources' final
 * rows.  Load errors and the data errors of confidence values.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc_test.h"
#include "cdc/envelope.h"
#include "mappings/map.h"

static cdc_table_t *mktable(const char *db)
{
    cdc_table_t *t = cdc_table_new(db, "t", 4);
    t->cols[0].name = cdc_xstrdup("id");
    t->cols[1].name = cdc_xstrdup("email");
    t->cols[2].name = cdc_xstrdup("amt");
    t->cols[3].name = cdc_xstrdup("verified");
    return t;
}

/* a row: id, email (NULL: "-"), amount text (NULL: "-"), verified
 * (0, 1; 2 = NULL, 3 = the text 'x', 4 = -1) */
typedef struct rowv {
    int id;
    const char *email, *amt;
    int ver;
} rowv_t;

static cdc_value_t *mkrow(cdc_txn_t *tx, const rowv_t *r)
{
    cdc_value_t *v;
    if (!r)
        return NULL;
    v = cdc_txn_values(tx, 4);
    memset(v, 0, 4 * sizeof(*v));
    v[0].kind = CDC_V_INT;
    v[0].u.i = r->id;
    if (r->email[0] == '-')
        v[1].kind = CDC_V_NULL;
    else {
        v[1].kind = CDC_V_STRING;
        v[1].len = strlen(r->email);
        v[1].s = cdc_arena_memdup(&tx->arena, r->email, v[1].len);
    }
    if (r->amt[0] == '-')
        v[2].kind = CDC_V_NULL;
    else {
        v[2].kind = CDC_V_DECIMAL;
        v[2].len = strlen(r->amt);
        v[2].s = cdc_arena_memdup(&tx->arena, r->amt, v[2].len);
    }
    if (r->ver == 2)
        v[3].kind = CDC_V_NULL;
    else if (r->ver == 3) {
        v[3].kind = CDC_V_STRING;
        v[3].len = 1;
        v[3].s = cdc_arena_memdup(&tx->arena, "x", 1);
    } else {
        v[3].kind = CDC_V_INT;
        v[3].u.i = r->ver == 4 ? -1 : r->ver;
    }
    return v;
}

static const char yaml[] =
    "sources: {a: {weight: 1}, b: {weight: 0.8}, c: {weight: 0.6}}\n"
    "targets:\n"
    "  cust:\n"
    "    key: id\n"
    "    fields:\n"
    "      id: bigint\n"
    "      email: {type: text, owners: [a, b, c], rule: vote}\n"
    "      amt: {type: 'numeric(12,2)', owners: [a, b, c], rule: weighted_mean}\n"
    "      pick: {type: text, owners: [a, b, c], rule: weighted}\n"
    "      email_d: {type: text, owners: [a, b, c], rule: vote, half_life: 60s}\n"
    "      amt_d: {type: 'numeric(12,2)', owners: [a, b, c], rule: weighted_mean, half_life: 1m}\n"
    "      pick_d: {type: text, owners: [a, b, c], rule: weighted, half_life: 60s}\n"
    "mappings:\n"
    "  - {source: a, table: a.t, target: cust, key: {id: id}, confidence: "
    "'case when verified then 1.0 else 0.6 end', fields: {email: email, amt: "
    "amt, pick: email, email_d: email, amt_d: amt, pick_d: email}}\n"
    "  - {source: b, table: b.t, target: cust, key: {id: id}, confidence: "
    "'case when verified then 1.0 else 0.6 end', fields: {email: email, amt: "
    "amt, pick: email, email_d: email, amt_d: amt, pick_d: email}}\n"
    "  - {source: c, table: c.t, target: cust, key: {id: id}, on_delete: "
    "delete, confidence: 'case when verified then 1.0 else 0.6 end', fields: "
    "{email: email, amt: amt, pick: email, email_d: email, amt_d: amt, "
    "pick_d: email}}\n";

typedef struct chg {
    int src; /* 0 a, 1 b, 2 c */
    char op;
    rowv_t before, after;
    int64_t t; /* seconds */
} chg_t;

#define R(id, e, a, v) {id, e, a, v}
#define NOROW {0, NULL, NULL, 0}
static const chg_t hist[] = {
    {0, 'c', NOROW, R(1, "x@1", "10.00", 1), 100},
    {1, 'c', NOROW, R(1, "y@1", "20.00", 1), 110},
    {2, 'c', NOROW, R(1, "y@1", "31.00", 0), 120},
    /* the confidence drops: email (unchanged) is scored again */
    {0, 'u', R(1, "x@1", "10.00", 1), R(1, "x@1", "12.50", 0), 130},
    /* b withdraws its votes (clear) */
    {1, 'd', R(1, "y@1", "20.00", 1), NOROW, 140},
    {0, 'c', NOROW, R(2, "p@2", "5.00", 1), 150},
    {2, 'c', NOROW, R(2, "q@2", "7.00", 1), 160},
    /* c deletes the row: deletions of c only */
    {2, 'd', R(2, "q@2", "7.00", 1), NOROW, 170},
    /* shuffles only: a tie (0.6 x 1 = 1.0 x 0.6), and an update that
     * changes only the amount (email keeps its older commit time) */
    {0, 'c', NOROW, R(3, "zz@3", "1.00", 0), 180},
    {2, 'c', NOROW, R(3, "aa@3", "2.00", 1), 190},
    {0, 'u', R(2, "p@2", "5.00", 1), R(2, "p@2", "6.00", 1), 200},
};
#define NH (int)(sizeof(hist) / sizeof(hist[0]))
#define NPERM 8

typedef struct run {
    cdc_map_t *m;
    cdc_wide_ops_t ops;
    cdc_wide_model_t *wm;
    cdc_table_t *tab[3];
} run_t;

static const char *const srcs[] = {"a", "b", "c"};

static int run_init(run_t *r)
{
    cdc_err_t err = {0};
    r->m = cdc_map_load_str("m.yaml", yaml, strlen(yaml), &err);
    if (!r->m) {
        T_FAIL_("load: %s (%s)", err.msg, err.hint);
        return -1;
    }
    cdc_wide_ops_init(&r->ops);
    r->wm = cdc_wide_model_new();
    r->tab[0] = mktable("a");
    r->tab[1] = mktable("b");
    r->tab[2] = mktable("c");
    return 0;
}

static void run_free(run_t *r)
{
    cdc_wide_ops_free(&r->ops);
    cdc_wide_model_free(r->wm);
    cdc_map_destroy(r->m);
    for (int i = 0; i < 3; i++)
        cdc_table_destroy(r->tab[i]);
}

static int apply_one(run_t *r, const char *src, cdc_table_t *t, char op,
                     const rowv_t *before, const rowv_t *after, int64_t t_us,
                     uint64_t pos, cdc_err_t *err)
{
    cdc_txn_t *tx = cdc_txn_new();
    cdc_change_t *ch = cdc_txn_add(tx, op, t);
    int n;
    tx->commit_us = t_us;
    tx->pos.lsn = pos;
    ch->before = mkrow(tx, before);
    ch->after = mkrow(tx, after);
    ch->pos = pos;
    memset(err, 0, sizeof(*err));
    cdc_wide_ops_reset(&r->ops);
    n = cdc_map_change(r->m, src, tx, ch, 0, &r->ops, err);
    for (uint32_t i = 0; n > 0 && i < r->ops.n; i++)
        cdc_wide_model_apply(r->wm, &r->ops.ops[i]);
    cdc_txn_destroy(tx);
    return n;
}

static void apply_hist(run_t *r, int i)
{
    const chg_t *h = &hist[i];
    cdc_err_t err;
    if (apply_one(r, srcs[h->src], r->tab[h->src], h->op,
                  h->before.email ? &h->before : NULL,
                  h->after.email ? &h->after : NULL, h->t * 1000000,
                  (uint64_t)i + 1, &err) < 0)
        T_FAIL_("apply %d: %s", i, err.msg);
}

static char *dump(run_t *r, int prov)
{
    static char buf[16384];
    FILE *fp;
    buf[0] = '\0';
    fp = fmemopen(buf, sizeof(buf), "w");
    cdc_wide_model_print(r->wm, fp, prov);
    fclose(fp);
    return buf;
}

/* ---- the independent computation ------------------------------------------ */

/* a source's current entry for one key and field */
typedef struct ent {
    int have, isnull, deleted;
    char val[32];
    int64_t sc;   /* integer score (millionths) */
    double L;     /* log2 score (half_life 60 s) */
    long long amt_m; /* the amount in hundredths */
    int64_t t;    /* commit time of the change that set it */
} ent_t;

static const double W[3] = {1.0, 0.8, 0.6};

/* The state of source s for key k and whether the field reads the
 * amount, from the changes in use (mask): its newest change decides; the
 * commit time of a decayed score is that of the newest change that
 * altered the value or the confidence. */
static ent_t current(const int *use, int s, int k, int amount)
{
    ent_t e = {0};
    int last = -1;
    for (int i = 0; i < NH; i++) {
        const chg_t *h = &hist[i];
        int id = h->after.email ? h->after.id : h->before.id;
        if (!use[i] || h->src != s || id != k)
            continue;
        if (last < 0 || h->t > hist[last].t)
            last = i;
    }
    if (last < 0)
        return e;
    {
        const chg_t *h = &hist[last];
        const rowv_t *row = h->op == 'd' ? &h->before : &h->after;
        double c = row->ver == 1 ? 1.0 : 0.6;
        int64_t tsc = h->t;
        const char *v = amount ? row->amt : row->email;
        e.have = 1;
        /* an update that altered neither the value nor the confidence
         * keeps the score (and rank) of the source's change before it */
        if (h->op == 'u') {
            const char *ov = amount ? h->before.amt : h->before.email;
            if (!strcmp(ov, v) && h->before.ver == h->after.ver) {
                int64_t prev = -1;
                for (int i = 0; i < NH; i++)
                    if (use[i] && hist[i].src == s && hist[i].t < h->t &&
                        hist[i].after.email && hist[i].after.id == k &&
                        hist[i].t > prev)
                        prev = hist[i].t;
                if (prev >= 0)
                    tsc = prev;
            }
        }
        e.t = tsc;
        e.sc = llround(c * 1e6) * llround(W[s] * 1e6) / 1000000;
        e.L = log2(c * W[s]) + (double)tsc / 60.0;
        if (h->op == 'd') {
            e.isnull = 1;
            e.deleted = s == 2;
            return e;
        }
        snprintf(e.val, sizeof(e.val), "%s", v);
        if (amount) {
            long long whole = 0, frac = 0;
            sscanf(v, "%lld.%lld", &whole, &frac);
            e.amt_m = whole * 100 + frac;
        }
    }
    return e;
}

static long long term(const ent_t *e, int n, int i, int decay)
{
    double lmax = -INFINITY;
    if (!decay)
        return e[i].sc;
    for (int j = 0; j < n; j++)
        if (e[j].have && !e[j].isnull && e[j].L > lmax)
            lmax = e[j].L;
    if (e[i].L - lmax < -100)
        return 0;
    return (long long)floor(pow(2.0, e[i].L - lmax) * 1e15 + 0.5);
}

/* vote: the value with the largest sum, ties to the smaller bytes */
static void vote(const ent_t *e, int decay, cdc_buf_t *out)
{
    const char *best = NULL;
    long long bs = 0;
    for (int i = 0; i < 3; i++) {
        long long sum = 0;
        if (!e[i].have || e[i].isnull)
            continue;
        for (int j = 0; j < 3; j++)
            if (e[j].have && !e[j].isnull && !strcmp(e[j].val, e[i].val))
                sum += term(e, 3, j, decay);
        if (!best || sum > bs || (sum == bs && strcmp(e[i].val, best) < 0)) {
            best = e[i].val;
            bs = sum;
        }
    }
    if (best)
        cdc_buf_printf(out, "\"%s\"", best);
    else
        cdc_buf_puts(out, "null");
}

static void mean(const ent_t *e, int decay, cdc_buf_t *out)
{
    __int128 n = 0, d = 0, q;
    for (int i = 0; i < 3; i++)
        if (e[i].have && !e[i].isnull) {
            n += (__int128)term(e, 3, i, decay) * e[i].amt_m;
            d += term(e, 3, i, decay);
        }
    if (d <= 0) {
        cdc_buf_puts(out, "null");
        return;
    }
    q = (2 * (n < 0 ? -n : n) + d) / (2 * d);
    if (n < 0)
        q = -q;
    cdc_buf_printf(out, "\"%s%lld.%02lld\"", q < 0 ? "-" : "",
                   (long long)(q < 0 ? -q : q) / 100,
                   (long long)(q < 0 ? -q : q) % 100);
}

/* weighted: the entry, NULL or not, with the largest score, then the
 * newest */
static void heaviest(const int *use, int k, const ent_t *e, int decay,
                     cdc_buf_t *out)
{
    int w = -1;
    (void)use;
    (void)k;
    for (int i = 0; i < 3; i++) {
        if (!e[i].have)
            continue;
        if (w < 0 || (decay ? e[i].L > e[w].L : e[i].sc > e[w].sc) ||
            ((decay ? e[i].L == e[w].L : e[i].sc == e[w].sc) &&
             e[i].t > e[w].t))
            w = i;
    }
    if (w < 0 || e[w].isnull)
        cdc_buf_puts(out, "null");
    else
        cdc_buf_printf(out, "\"%s\"", e[w].val);
}

static char *expected(const int *use)
{
    static char buf[16384];
    cdc_buf_t b = CDC_BUF_INIT;
    for (int k = 1; k <= 3; k++) {
        ent_t em[3], am[3];
        int visible = 0, any = 0;
        for (int s = 0; s < 3; s++) {
            em[s] = current(use, s, k, 0);
            am[s] = current(use, s, k, 1);
            any |= em[s].have;
            visible |= em[s].have && !em[s].deleted;
        }
        if (!any || !visible)
            continue;
        cdc_buf_printf(&b, "cust id=\"%d\"\n  email: ", k);
        vote(em, 0, &b);
        cdc_buf_puts(&b, "\n  amt: ");
        mean(am, 0, &b);
        cdc_buf_puts(&b, "\n  pick: ");
        heaviest(use, k, em, 0, &b);
        cdc_buf_puts(&b, "\n  email_d: ");
        vote(em, 1, &b);
        cdc_buf_puts(&b, "\n  amt_d: ");
        mean(am, 1, &b);
        cdc_buf_puts(&b, "\n  pick_d: ");
        heaviest(use, k, em, 1, &b);
        cdc_buf_putc(&b, '\n');
    }
    snprintf(buf, sizeof(buf), "%s", b.p ? b.p : "");
    cdc_buf_free(&b);
    return buf;
}

static int next_perm(int *a, int n)
{
    int i = n - 2, j = n - 1, t;
    while (i >= 0 && a[i] >= a[i + 1])
        i--;
    if (i < 0)
        return 0;
    while (a[j] <= a[i])
        j--;
    t = a[i];
    a[i] = a[j];
    a[j] = t;
    for (int l = i + 1, h = n - 1; l < h; l++, h--) {
        t = a[l];
        a[l] = a[h];
        a[h] = t;
    }
    return 1;
}

CDC_TEST(per_source_rules_converge_and_equal_the_final_state)
{
    int perm[NPERM], use[NH] = {0}, nperm = 0, bad = 0;
    char ref[16384], want[16384];
    const char *seed_env = getenv("CDC_TEST_SEED");
    unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : 1904;
    run_t r;

    for (int i = 0; i < NPERM; i++)
        use[i] = 1;
    snprintf(want, sizeof(want), "%s", expected(use));
    /* by hand, so that the independent computation is checked too: key 1
     * x@1 (a 0.6) against y@1 (c 0.6 x 0.6 = 0.36; b withdrew): x@1;
     * amount (0.6 x 12.50 + 0.36 x 31.00) / 0.96 = 19.4375; pick: b's
     * withdrawal (a NULL scored 0.8) is the heaviest entry */
    T_ASSERT(strstr(want, "cust id=\"1\"\n  email: \"x@1\"\n  amt: \"19.44\"\n"
                          "  pick: null\n") != NULL);
    T_ASSERT(strstr(want, "cust id=\"2\"\n  email: \"p@2\"\n  amt: \"5.00\"\n")
             != NULL);
    ref[0] = '\0';
    for (int i = 0; i < NPERM; i++)
        perm[i] = i;
    do {
        char *got;
        if (run_init(&r))
            return;
        for (int i = 0; i < NPERM; i++)
            apply_hist(&r, perm[i]);
        if (!ref[0])
            snprintf(ref, sizeof(ref), "%s", dump(&r, 1));
        else if (strcmp(dump(&r, 1), ref) && !bad++)
            T_FAIL_("permutation %d (provenance) differs:\n%s\nfirst:\n%s",
                    nperm, dump(&r, 1), ref);
        got = dump(&r, 0);
        if (strcmp(got, want) && !bad++)
            T_FAIL_("permutation %d:\n%s\nexpected from the final state:\n%s",
                    nperm, got, want);
        run_free(&r);
        nperm++;
    } while (next_perm(perm, NPERM));
    T_EQ_INT(nperm, 40320);
    T_ASSERT(strstr(ref, "score=") != NULL);

    /* every change, shuffled, each replayed 0-2 more times */
    for (int i = 0; i < NH; i++)
        use[i] = 1;
    snprintf(want, sizeof(want), "%s", expected(use));
    /* the tie of key 3 goes to the value first in byte order; decayed,
     * c's newer vote weighs more */
    T_ASSERT(strstr(want, "cust id=\"3\"\n  email: \"aa@3\"\n") != NULL);
    T_ASSERT(strstr(want, "  email_d: \"aa@3\"\n") != NULL);
    srand(seed);
    ref[0] = '\0';
    for (int k = 0; k < 3000; k++) {
        int seq[3 * NH], n = 0;
        for (int i = 0; i < NH; i++)
            for (int d = rand() % 3; d >= 0; d--)
                seq[n++] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = rand() % (i + 1), t = seq[i];
            seq[i] = seq[j];
            seq[j] = t;
        }
        if (run_init(&r))
            return;
        for (int i = 0; i < n; i++)
            apply_hist(&r, seq[i]);
        if (!ref[0])
            snprintf(ref, sizeof(ref), "%s", dump(&r, 1));
        else if (strcmp(dump(&r, 1), ref) && !bad++)
            T_FAIL_("CDC_TEST_SEED=%u shuffle %d (provenance):\n%s", seed, k,
                    dump(&r, 1));
        if (strcmp(dump(&r, 0), want) && !bad++)
            T_FAIL_("CDC_TEST_SEED=%u shuffle %d:\n%s\nexpected:\n%s", seed,
                    k, dump(&r, 0), want);
        run_free(&r);
    }
    T_EQ_INT(bad, 0);
}

/* existing files: weighted without confidence ranks as before */
CDC_TEST(weighted_without_confidence_keeps_its_rank)
{
    static const char y[] =
        "sources: {a: {weight: 0.25}}\n"
        "targets: {w: {key: id, fields: {id: int, v: {type: text, owner: a, "
        "rule: weighted}}}}\n"
        "mappings:\n  - {source: a, table: a.t, target: w, key: {id: id}, "
        "fields: {v: email}}\n";
    cdc_err_t err = {0};
    cdc_map_t *m = cdc_map_load_str("m.yaml", y, strlen(y), &err);
    cdc_table_t *t = mktable("a");
    cdc_txn_t *tx = cdc_txn_new();
    cdc_change_t *ch = cdc_txn_add(tx, 'c', t);
    cdc_wide_ops_t ops;
    rowv_t row = R(1, "e", "1.00", 1);
    cdc_buf_t pj = CDC_BUF_INIT;

    T_ASSERT(m != NULL);
    if (!m)
        return;
    cdc_wide_ops_init(&ops);
    tx->commit_us = 5;
    tx->pos.lsn = 1;
    ch->after = mkrow(tx, &row);
    ch->pos = 1;
    T_EQ_INT(cdc_map_change(m, "a", tx, ch, 0, &ops, &err), 1);
    /* weight 0.25 -> 250000 = 0x3d090, then the commit time */
    T_ASSERT(!strncmp(ops.ops[0].vals[0].rank, "000000000003d090"
                      "8000000000000005", 32));
    cdc_wide_prov_json(&pj, &ops.ops[0], &ops.ops[0].vals[0]);
    T_ASSERT(strstr(pj.p, "\"sc\"") == NULL);
    T_ASSERT(!m->targets[0].fields[1].per_source);
    cdc_buf_free(&pj);
    cdc_wide_ops_free(&ops);
    cdc_txn_destroy(tx);
    cdc_table_destroy(t);
    cdc_map_destroy(m);
}

CDC_TEST(confidence_values_and_load_errors)
{
    run_t r;
    cdc_err_t err;
    static const struct {
        int ver;
        const char *msg;
    } bad[] = {
        {2, "confidence value 'NULL' is NULL"},
        {3, "confidence value 'x' is not a number"},
        {4, "confidence value '-1' is negative"},
    };
    static const char y2[] =
        "sources: {a: {}}\n"
        "targets: {w: {key: id, fields: {id: int, v: {type: text, owner: a, "
        "rule: vote}}}}\n"
        "mappings:\n  - {source: a, table: a.t, target: w, key: {id: id}, "
        "confidence: 'verified', fields: {v: email}}\n";

    if (run_init(&r))
        return;
    run_free(&r);
    for (int i = 0; i < 3; i++) {
        cdc_map_t *m = cdc_map_load_str("m.yaml", y2, strlen(y2), &err);
        cdc_table_t *t = mktable("a");
        cdc_txn_t *tx = cdc_txn_new();
        cdc_change_t *ch = cdc_txn_add(tx, 'c', t);
        cdc_wide_ops_t ops;
        rowv_t row = R(1, "e", "1.00", bad[i].ver);
        T_ASSERT(m != NULL);
        if (!m)
            return;
        cdc_wide_ops_init(&ops);
        tx->commit_us = 5;
        ch->after = mkrow(tx, &row);
        ch->pos = 1;
        memset(&err, 0, sizeof(err));
        T_EQ_INT(cdc_map_change(m, "a", tx, ch, 0, &ops, &err), -1);
        T_EQ_INT(err.code, CDC_EXIT_DATA);
        if (!strstr(err.msg, bad[i].msg) || !strstr(err.msg, "mapping 'a:a.t'"))
            T_FAIL_("message: %s", err.msg);
        cdc_wide_ops_free(&ops);
        cdc_txn_destroy(tx);
        cdc_table_destroy(t);
        cdc_map_destroy(m);
    }
    {
        static const struct {
            const char *yaml, *msg;
        } le[] = {
            {"sources: {a: {}}\ntargets: {w: {key: id, fields: {id: int, v: "
             "{type: text, owner: a, rule: weighted_mean}}}}\n",
             "rule weighted_mean needs a bigint or numeric(p,s)"},
            {"sources: {a: {}}\ntargets: {w: {key: id, fields: {id: int, v: "
             "{type: text, owner: a, half_life: 30d}}}}\n",
             "half_life decays scores, and rule latest has none"},
            {"sources: {a: {}}\ntargets: {w: {key: id, fields: {id: int, v: "
             "{type: text, owner: a, rule: vote, half_life: 30x}}}}\n",
             "half_life must be a duration"},
            {"sources: {a: {}}\ntargets: {w: {key: id, fields: {id: int, v: "
             "{type: text, owner: a, rule: vot}}}}\n",
             "unknown rule 'vot'"},
            {"sources: {a: {}}\ntargets: {w: {key: id, fields: {id: int, v: "
             "{type: text, owner: a}}}}\nmappings:\n  - {source: a, table: "
             "a.t, target: w, key: {id: id}, confidence: '1', fields: {v: "
             "x}}\n",
             "'confidence' scores fields with rule weighted, vote or "
             "weighted_mean"},
            {"sources: {a: {}}\ntargets: {w: {key: id, fields: {id: int, v: "
             "{type: text, owner: a, rule: vote}}}}\nmappings:\n  - {source: "
             "a, table: a.t, target: w, lookup: true, key: {v: x}, fields: "
             "{v: x}}\n",
             "lookup mapping 'a:a.t' writes field 'v' (rule vote)"},
        };
        for (size_t i = 0; i < sizeof(le) / sizeof(le[0]); i++) {
            cdc_map_t *m;
            memset(&err, 0, sizeof(err));
            m = cdc_map_load_str("m.yaml", le[i].yaml, strlen(le[i].yaml),
                                 &err);
            T_ASSERT(m == NULL);
            T_EQ_INT(err.code, CDC_EXIT_CONFIG);
            if (!strstr(err.msg, le[i].msg))
                T_FAIL_("case %zu: %s", i, err.msg);
            cdc_map_destroy(m);
        }
    }
}

CDC_TEST_MAIN()
