/* SPDX-License-Identifier: Apache-2.0 */
/*
 * expr.c - the small, safe expression language of mapping files.
 *
 * A recursive-descent parser builds a tree; evaluation walks it.  Nothing
 * is ever executed but these node types: literals, column references,
 * arithmetic, comparison, boolean logic, concatenation, CASE and a fixed
 * table of pure functions.  Nesting depth is bounded (MAX_DEPTH), and so
 * is the number of binary operators (MAX_OPS, which bounds the depth of a
 * long chain), so a hostile file cannot exhaust the stack; the same parse
 * serves `validate` and the run, so both refuse it with the same error.
 * The text is bounds-checked byte by byte.
 *
 *   expr    := or
 *   or      := and ("or" and)*
 *   and     := not ("and" not)*
 *   not     := "not" not | cmp
 *   cmp     := concat [ ("=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") concat
 *                     | "is" ["not"] "null" ]
 *   concat  := add ("||" add)*
 *   add     := mul (("+" | "-") mul)*
 *   mul     := unary (("*" | "/" | "%") unary)*
 *   unary   := "-" unary | primary
 *   primary := NUMBER | 'string' | null | true | false
 *            | IDENT | "quoted ident" | IDENT "(" [expr ("," expr)*] ")"
 *            | "(" expr ")"
 *            | case (when expr then expr)+ [else expr] end
 *
 * Values: NULL, boolean, exact decimal (128-bit mantissa), double, text.
 * SQL-like NULL handling: arithmetic, comparison and concatenation with a
 * NULL give NULL (concat() skips NULLs); division by zero gives NULL.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mappings/expr_int.h"

#define MAX_DEPTH 64
#define MAX_ARGS 16
/* Binary operators per expression: the tree of a chain (a + b + c ...)
 * is as deep as it is long, and freeing and evaluating it recurse. */
#define MAX_OPS 1000

typedef enum {
    N_LIT, N_COL, N_NEG, N_NOT, N_AND, N_OR, N_BIN, N_CONCAT, N_ISNULL,
    N_CASE, N_CALL,
} ntype_t;

typedef enum {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_EQ, OP_NE, OP_LT, OP_LE,
    OP_GT, OP_GE,
} binop_t;

typedef enum {
    F_CONCAT, F_COALESCE, F_UPPER, F_LOWER, F_TRIM, F_LENGTH, F_SUBSTR,
    F_ROUND, F_ABS, F_NULLIF, F_COMMIT_TIME, F_SOURCE, F_GREATEST, F_LEAST,
} fn_t;

static const struct {
    const char *name;
    fn_t fn;
    int min, max;
} fns[] = {
    {"concat", F_CONCAT, 1, MAX_ARGS},
    {"coalesce", F_COALESCE, 1, MAX_ARGS},
    {"upper", F_UPPER, 1, 1},
    {"lower", F_LOWER, 1, 1},
    {"trim", F_TRIM, 1, 1},
    {"length", F_LENGTH, 1, 1},
    {"substr", F_SUBSTR, 2, 3},
    {"round", F_ROUND, 1, 2},
    {"abs", F_ABS, 1, 1},
    {"nullif", F_NULLIF, 2, 2},
    {"commit_time", F_COMMIT_TIME, 0, 0},
    {"source", F_SOURCE, 0, 0},
    {"greatest", F_GREATEST, 1, MAX_ARGS},
    {"least", F_LEAST, 1, MAX_ARGS},
};

typedef struct node node_t;
struct node {
    ntype_t t;
    int op;      /* binop_t / fn_t / N_ISNULL negation */
    xv_t lit;    /* N_LIT; strings owned (lit.s malloc'd) */
    char *name;  /* N_COL */
    node_t **kids;
    int nkids;
};

struct cdc_expr {
    node_t *root;
    int uses_commit_time;
    char **cols;
    int ncols;
};

/* ---- lexer -------------------------------------------------------------- */

typedef enum {
    T_EOF, T_NUM, T_STR, T_IDENT, T_QIDENT, T_OP, T_LP, T_RP, T_COMMA,
} tok_t;

typedef struct parser {
    const char *s;
    size_t n, i;
    tok_t tok;
    const char *tstart;
    size_t tlen;
    char op[3];
    int depth;
    int nops; /* binary operators so far */
    const char *where;
    cdc_err_t *err;
    cdc_expr_t *e;
} parser_t;

static int perr(parser_t *p, const char *msg, const char *what)
{
    cdc_err_set(p->err, CDC_EXIT_CONFIG, 0, "%s%sexpression '%.*s': %s%s%s",
                p->where ? p->where : "", p->where ? ": " : "",
                (int)(p->n > 120 ? 120 : p->n), p->s, msg,
                what ? " " : "", what ? what : "");
    cdc_err_detail(p->err, "at character %zu", (size_t)(p->tstart - p->s) + 1);
    return -1;
}

static int next(parser_t *p)
{
    const char *s = p->s;

    while (p->i < p->n && isspace((unsigned char)s[p->i]))
        p->i++;
    p->tstart = s + p->i;
    p->tlen = 0;
    if (p->i >= p->n) {
        p->tok = T_EOF;
        return 0;
    }
    unsigned char c = (unsigned char)s[p->i];
    if (isdigit(c) || (c == '.' && p->i + 1 < p->n &&
                       isdigit((unsigned char)s[p->i + 1]))) {
        size_t j = p->i;
        int dot = 0;
        while (j < p->n && (isdigit((unsigned char)s[j]) ||
                            (s[j] == '.' && !dot))) {
            if (s[j] == '.')
                dot = 1;
            j++;
        }
        if (j < p->n && (isalpha((unsigned char)s[j]) || s[j] == '_'))
            return perr(p, "bad number near", p->tstart);
        p->tok = T_NUM;
        p->tlen = j - p->i;
        p->i = j;
        return 0;
    }
    if (isalpha(c) || c == '_') {
        size_t j = p->i;
        while (j < p->n && (isalnum((unsigned char)s[j]) || s[j] == '_'))
            j++;
        p->tok = T_IDENT;
        p->tlen = j - p->i;
        p->i = j;
        return 0;
    }
    if (c == '\'' || c == '"') {
        /* 'text' with '' for a quote; "identifier" with "" likewise */
        size_t j = p->i + 1;
        for (;;) {
            if (j >= p->n)
                return perr(p, c == '\'' ? "unterminated string"
                                         : "unterminated quoted name",
                            NULL);
            if ((unsigned char)s[j] == c) {
                if (j + 1 < p->n && (unsigned char)s[j + 1] == c) {
                    j += 2;
                    continue;
                }
                break;
            }
            j++;
        }
        p->tok = c == '\'' ? T_STR : T_QIDENT;
        p->tstart = s + p->i + 1;
        p->tlen = j - p->i - 1;
        p->i = j + 1;
        return 0;
    }
    p->tlen = 1;
    switch (c) {
    case '(': p->tok = T_LP; p->i++; return 0;
    case ')': p->tok = T_RP; p->i++; return 0;
    case ',': p->tok = T_COMMA; p->i++; return 0;
    case '+': case '-': case '*': case '/': case '%': case '=':
        p->tok = T_OP;
        p->op[0] = (char)c;
        p->op[1] = '\0';
        p->i++;
        return 0;
    case '<': case '>': case '!': case '|':
        p->tok = T_OP;
        p->op[0] = (char)c;
        p->op[1] = '\0';
        p->i++;
        if (p->i < p->n && (s[p->i] == '=' || (c == '<' && s[p->i] == '>') ||
                            (c == '|' && s[p->i] == '|'))) {
            p->op[1] = s[p->i++];
            p->op[2] = '\0';
            p->tlen = 2;
        }
        if (!strcmp(p->op, "!") || !strcmp(p->op, "|"))
            return perr(p, "unexpected", p->op);
        return 0;
    default: {
        char bad[8];
        snprintf(bad, sizeof(bad), "'%c'", isprint(c) ? c : '?');
        return perr(p, "unexpected character", bad);
    }
    }
}

static int is_kw(const parser_t *p, const char *kw)
{
    return p->tok == T_IDENT && strlen(kw) == p->tlen &&
           !strncasecmp(p->tstart, kw, p->tlen);
}

static int is_op(const parser_t *p, const char *op)
{
    return p->tok == T_OP && !strcmp(p->op, op);
}

/* ---- tree --------------------------------------------------------------- */

static node_t *mk(ntype_t t, int op)
{
    node_t *n = cdc_xcalloc(1, sizeof(*n));
    n->t = t;
    n->op = op;
    return n;
}

static void add_kid(node_t *n, node_t *k)
{
    n->kids = cdc_xrealloc(n->kids, (size_t)(n->nkids + 1) * sizeof(*n->kids));
    n->kids[n->nkids++] = k;
}

static void node_free(node_t *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->name);
    if (n->t == N_LIT && n->lit.t == XV_STR)
        free((char *)n->lit.s);
    free(n);
}

static node_t *bin(int op, node_t *a, node_t *b)
{
    node_t *n = mk(N_BIN, op);
    add_kid(n, a);
    add_kid(n, b);
    return n;
}

/* Count one more binary operator: -1 (error set) past MAX_OPS. */
static int one_more_op(parser_t *p)
{
    if (++p->nops <= MAX_OPS)
        return 0;
    perr(p, "has too many operators (the limit is 1000)", NULL);
    cdc_err_hint(p->err, "split the computation over several fields, or "
                         "use concat(a, b, ...) for long concatenations");
    return -1;
}

static node_t *p_expr(parser_t *p);

/* unquote a '..' or ".." token body (doubled quote -> one) */
static char *unquote(const char *s, size_t n, char q, size_t *outlen)
{
    char *o = cdc_xmalloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        o[j++] = s[i];
        if (s[i] == q && i + 1 < n && s[i + 1] == q)
            i++;
    }
    o[j] = '\0';
    *outlen = j;
    return o;
}

static void note_col(cdc_expr_t *e, const char *name)
{
    for (int i = 0; i < e->ncols; i++)
        if (!strcmp(e->cols[i], name))
            return;
    e->cols = cdc_xrealloc(e->cols, (size_t)(e->ncols + 1) * sizeof(char *));
    e->cols[e->ncols++] = cdc_xstrdup(name);
}

/* CASE WHEN c THEN v [WHEN ...] [ELSE v] END, at CASE: kids are c, v
 * pairs, then the ELSE value (op 1). */
static node_t *p_case(parser_t *p)
{
    node_t *n = mk(N_CASE, 0);

    if (next(p))
        goto fail;
    if (!is_kw(p, "when")) {
        perr(p, "expected WHEN after CASE", NULL);
        goto fail;
    }
    while (is_kw(p, "when")) {
        node_t *c, *v;
        if (next(p) || !(c = p_expr(p)))
            goto fail;
        add_kid(n, c);
        if (!is_kw(p, "then")) {
            perr(p, "expected THEN", NULL);
            goto fail;
        }
        if (next(p) || !(v = p_expr(p)))
            goto fail;
        add_kid(n, v);
    }
    if (is_kw(p, "else")) {
        node_t *v;
        if (next(p) || !(v = p_expr(p)))
            goto fail;
        add_kid(n, v);
        n->op = 1; /* has else */
    }
    if (!is_kw(p, "end")) {
        perr(p, "expected END to close CASE", NULL);
        goto fail;
    }
    if (next(p))
        goto fail;
    return n;
fail:
    node_free(n);
    return NULL;
}

/* The function named name (len bytes) in fns, or -1 with the error and
 * a suggestion in p->err. */
static int find_fn(parser_t *p, const char *name, size_t len)
{
    const char *names[sizeof(fns) / sizeof(fns[0])];
    char fname[80];
    const char *sug;

    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
        if (strlen(fns[i].name) == len && !strncasecmp(fns[i].name, name, len))
            return (int)i;
    snprintf(fname, sizeof(fname), "'%.*s'", (int)(len > 60 ? 60 : len),
             name);
    perr(p, "unknown function", fname);
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
        names[i] = fns[i].name;
    snprintf(fname, sizeof(fname), "%.*s", (int)(len > 60 ? 60 : len), name);
    sug = cdc_map_suggest(fname, names, (int)(sizeof(fns) / sizeof(fns[0])));
    if (sug)
        cdc_err_hint(p->err, "did you mean '%s'?", sug);
    else
        cdc_err_hint(p->err, "functions: concat, coalesce, upper, lower, "
                     "trim, length, substr, round, abs, nullif, greatest, "
                     "least, commit_time, source");
    return -1;
}

/* name(args...), at the '(' after the name. */
static node_t *p_call(parser_t *p, const char *name, size_t len)
{
    int f = find_fn(p, name, len);
    node_t *n;

    if (f < 0)
        return NULL;
    n = mk(N_CALL, fns[f].fn);
    if (fns[f].fn == F_COMMIT_TIME)
        p->e->uses_commit_time = 1;
    if (next(p))
        goto fail;
    if (p->tok != T_RP) {
        for (;;) {
            node_t *a = p_expr(p);
            if (!a)
                goto fail;
            add_kid(n, a);
            if (n->nkids > MAX_ARGS) {
                perr(p, "too many arguments", NULL);
                goto fail;
            }
            if (p->tok == T_COMMA) {
                if (next(p))
                    goto fail;
                continue;
            }
            break;
        }
    }
    if (p->tok != T_RP) {
        perr(p, "expected ')' or ',' in call of", fns[f].name);
        goto fail;
    }
    if (n->nkids < fns[f].min || n->nkids > fns[f].max) {
        char m[96];
        snprintf(m, sizeof(m), "%s() takes %d..%d arguments, got %d",
                 fns[f].name, fns[f].min, fns[f].max, n->nkids);
        perr(p, m, NULL);
        goto fail;
    }
    if (next(p))
        goto fail;
    return n;
fail:
    node_free(n);
    return NULL;
}

static node_t *p_primary(parser_t *p)
{
    node_t *n;

    if (++p->depth > MAX_DEPTH) {
        perr(p, "nested too deeply", NULL);
        return NULL;
    }
    switch (p->tok) {
    case T_NUM:
        n = mk(N_LIT, 0);
        if (cdc_xv_parse_dec(p->tstart, p->tlen, &n->lit)) {
            /* more digits than an exact decimal holds: refuse rather than
             * round (a double would change the value silently) */
            perr(p, "number cannot be held exactly:", "more than 36 "
                 "significant digits or 30 after the point");
            cdc_err_hint(p->err, "shorten the literal, or write it as text "
                                 "('...') if it is not a number");
            goto fail;
        }
        if (next(p))
            goto fail;
        break;
    case T_STR:
        n = mk(N_LIT, 0);
        n->lit.t = XV_STR;
        n->lit.s = unquote(p->tstart, p->tlen, '\'', &n->lit.len);
        if (next(p))
            goto fail;
        break;
    case T_QIDENT: {
        size_t len;
        n = mk(N_COL, 0);
        n->name = unquote(p->tstart, p->tlen, '"', &len);
        if (!len) {
            perr(p, "empty quoted name", NULL);
            goto fail;
        }
        note_col(p->e, n->name);
        if (next(p))
            goto fail;
        break;
    }
    case T_LP:
        if (next(p))
            return NULL;
        n = p_expr(p);
        if (!n)
            return NULL;
        if (p->tok != T_RP) {
            perr(p, "expected ')'", NULL);
            goto fail;
        }
        if (next(p))
            goto fail;
        break;
    case T_IDENT:
        if (is_kw(p, "null") || is_kw(p, "true") || is_kw(p, "false")) {
            n = mk(N_LIT, 0);
            if (is_kw(p, "null"))
                n->lit.t = XV_NULL;
            else {
                n->lit.t = XV_BOOL;
                n->lit.b = is_kw(p, "true");
            }
            if (next(p))
                goto fail;
            break;
        }
        if (is_kw(p, "case")) {
            n = p_case(p);
            if (!n)
                return NULL;
            break;
        }
        {
            const char *name = p->tstart;
            size_t len = p->tlen;
            if (next(p))
                return NULL;
            if (p->tok == T_LP) {
                n = p_call(p, name, len);
                if (!n)
                    return NULL;
                break;
            }
            n = mk(N_COL, 0);
            n->name = cdc_xstrndup(name, len);
            note_col(p->e, n->name);
            break;
        }
    case T_EOF:
        perr(p, "unexpected end", NULL);
        return NULL;
    default: {
        char what[80];
        snprintf(what, sizeof(what), "'%.*s'", (int)p->tlen, p->tstart);
        perr(p, "unexpected", what);
        return NULL;
    }
    }
    p->depth--;
    return n;
fail:
    node_free(n);
    return NULL;
}

/* A prefix operator (the current token): node kind over the operand that
 * operand() parses after it; nesting counts against MAX_DEPTH. */
static node_t *p_prefix(parser_t *p, ntype_t kind,
                        node_t *(*operand)(parser_t *))
{
    node_t *k, *n;

    if (++p->depth > MAX_DEPTH) {
        perr(p, "nested too deeply", NULL);
        return NULL;
    }
    if (next(p) || !(k = operand(p)))
        return NULL;
    p->depth--;
    n = mk(kind, 0);
    add_kid(n, k);
    return n;
}

static node_t *p_unary(parser_t *p)
{
    return is_op(p, "-") ? p_prefix(p, N_NEG, p_unary) : p_primary(p);
}

static node_t *p_mul(parser_t *p)
{
    node_t *a = p_unary(p), *b;
    while (a && (is_op(p, "*") || is_op(p, "/") || is_op(p, "%"))) {
        int op = p->op[0] == '*' ? OP_MUL : p->op[0] == '/' ? OP_DIV : OP_MOD;
        if (one_more_op(p) || next(p) || !(b = p_unary(p))) {
            node_free(a);
            return NULL;
        }
        a = bin(op, a, b);
    }
    return a;
}

static node_t *p_add(parser_t *p)
{
    node_t *a = p_mul(p), *b;
    while (a && (is_op(p, "+") || is_op(p, "-"))) {
        int op = p->op[0] == '+' ? OP_ADD : OP_SUB;
        if (one_more_op(p) || next(p) || !(b = p_mul(p))) {
            node_free(a);
            return NULL;
        }
        a = bin(op, a, b);
    }
    return a;
}

/* a (tok operand)*, left-associative: each tok (an operator, or with kw a
 * keyword) makes a node of kind over what is on its two sides */
static node_t *p_chain(parser_t *p, node_t *a, const char *tok, int kw,
                       ntype_t kind, node_t *(*operand)(parser_t *))
{
    while (a && (kw ? is_kw(p, tok) : is_op(p, tok))) {
        node_t *b, *n;
        if (one_more_op(p) || next(p) || !(b = operand(p))) {
            node_free(a);
            return NULL;
        }
        n = mk(kind, 0);
        add_kid(n, a);
        add_kid(n, b);
        a = n;
    }
    return a;
}

static node_t *p_concat(parser_t *p)
{
    return p_chain(p, p_add(p), "||", 0, N_CONCAT, p_add);
}

static node_t *p_cmp(parser_t *p)
{
    node_t *a = p_concat(p), *b;
    static const struct { const char *s; int op; } ops[] = {
        {"=", OP_EQ}, {"!=", OP_NE}, {"<>", OP_NE}, {"<", OP_LT},
        {"<=", OP_LE}, {">", OP_GT}, {">=", OP_GE},
    };

    if (!a)
        return NULL;
    if (is_kw(p, "is")) {
        node_t *n = mk(N_ISNULL, 0);
        add_kid(n, a);
        if (next(p))
            goto fail;
        if (is_kw(p, "not")) {
            n->op = 1;
            if (next(p))
                goto fail;
        }
        if (!is_kw(p, "null")) {
            perr(p, "expected NULL after IS", NULL);
            goto fail;
        }
        if (next(p))
            goto fail;
        return n;
    fail:
        node_free(n);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (is_op(p, ops[i].s)) {
            if (one_more_op(p) || next(p) || !(b = p_concat(p))) {
                node_free(a);
                return NULL;
            }
            return bin(ops[i].op, a, b);
        }
    return a;
}

static node_t *p_not(parser_t *p)
{
    return is_kw(p, "not") ? p_prefix(p, N_NOT, p_not) : p_cmp(p);
}

static node_t *p_and(parser_t *p)
{
    return p_chain(p, p_not(p), "and", 1, N_AND, p_not);
}

static node_t *p_expr(parser_t *p)
{
    node_t *a;
    if (++p->depth > MAX_DEPTH) {
        perr(p, "nested too deeply", NULL);
        return NULL;
    }
    a = p_chain(p, p_and(p), "or", 1, N_OR, p_and);
    p->depth--;
    return a;
}

cdc_expr_t *cdc_expr_parse(const char *text, const char *where,
                           cdc_err_t *err)
{
    parser_t p = {.s = text, .n = strlen(text), .where = where, .err = err};
    cdc_expr_t *e = cdc_xcalloc(1, sizeof(*e));

    p.e = e;
    if (next(&p))
        goto fail;
    if (p.tok == T_EOF) {
        perr(&p, "empty expression", NULL);
        goto fail;
    }
    e->root = p_expr(&p);
    if (!e->root)
        goto fail;
    if (p.tok != T_EOF) {
        char what[80];
        snprintf(what, sizeof(what), "'%.*s'", (int)(p.tlen > 60 ? 60 : p.tlen),
                 p.tstart);
        perr(&p, "unexpected", what);
        goto fail;
    }
    return e;
fail:
    cdc_expr_free(e);
    return NULL;
}

void cdc_expr_free(cdc_expr_t *e)
{
    if (!e)
        return;
    node_free(e->root);
    for (int i = 0; i < e->ncols; i++)
        free(e->cols[i]);
    free(e->cols);
    free(e);
}

const char *const *cdc_expr_columns(const cdc_expr_t *e, int *n)
{
    *n = e->ncols;
    return (const char *const *)e->cols;
}

int cdc_expr_uses_commit_time(const cdc_expr_t *e)
{
    return e->uses_commit_time;
}

const char *cdc_expr_column(const cdc_expr_t *e)
{
    return e->root && e->root->t == N_COL ? e->root->name : NULL;
}

/* ---- values --------------------------------------------------------------- */

static const __int128 P10[] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
    1000000000, 10000000000LL, 100000000000LL, 1000000000000LL,
    10000000000000LL, 100000000000000LL, 1000000000000000LL,
    10000000000000000LL, 100000000000000000LL, 1000000000000000000LL,
};

static __int128 p10(int n)
{
    __int128 r = 1;
    if (n < 19)
        return P10[n];
    for (int i = 0; i < n; i++)
        r *= 10;
    return r;
}

/* |m| must stay below 10^36 so that scale alignment cannot overflow */
static int dec_ok(__int128 m)
{
    __int128 lim = p10(36);
    return m < lim && m > -lim;
}

int cdc_num_trim_sign(const char *s, size_t *i, size_t *len)
{
    int neg = 0;

    while (*i < *len && isspace((unsigned char)s[*i]))
        (*i)++;
    while (*len > *i && isspace((unsigned char)s[*len - 1]))
        (*len)--;
    if (*i < *len && (s[*i] == '-' || s[*i] == '+'))
        neg = s[(*i)++] == '-';
    return neg;
}

int cdc_xv_parse_dec(const char *s, size_t len, xv_t *out)
{
    size_t i = 0;
    int neg = cdc_num_trim_sign(s, &i, &len), scale = -1, digits = 0;
    __int128 m = 0;

    if (i >= len)
        return -1;
    for (; i < len; i++) {
        if (s[i] == '.') {
            if (scale >= 0)
                return -1;
            scale = 0;
            continue;
        }
        if (!isdigit((unsigned char)s[i]))
            return -1;
        if (digits || s[i] != '0')
            digits++;
        if (digits > 36 || (scale >= 0 && scale >= XV_MAX_SCALE))
            return -1;
        m = m * 10 + (s[i] - '0');
        if (scale >= 0)
            scale++;
    }
    memset(out, 0, sizeof(*out));
    out->t = XV_DEC;
    out->m = neg ? -m : m;
    out->scale = scale < 0 ? 0 : scale;
    return 0;
}

int cdc_xv_rescale(xv_t *v, int scale)
{
    if (scale == v->scale)
        return 0;
    if (scale > v->scale) {
        __int128 f, r;
        if (scale > XV_MAX_SCALE + 8 || scale - v->scale > 38)
            return -1;
        f = p10(scale - v->scale);
        if (v->m != 0 && !dec_ok(v->m * 1)) /* pre-check magnitude */
            return -1;
        /* checked: a signed overflow would be undefined, not detectable
         * after the fact */
        if (__builtin_mul_overflow(v->m, f, &r))
            return -1;
        v->m = r;
    } else {
        __int128 f = p10(v->scale - scale);
        __int128 q = v->m / f, rem = v->m % f;
        if (rem < 0)
            rem = -rem;
        if (rem * 2 >= f)
            q += v->m < 0 ? -1 : 1;
        v->m = q;
    }
    v->scale = scale;
    return dec_ok(v->m) ? 0 : -1;
}

static double dec2d(const xv_t *v)
{
    return (double)v->m / (double)p10(v->scale);
}

static void fmt_dbl(double d, char *buf, size_t n)
{
    if (isnan(d)) {
        snprintf(buf, n, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, n, d > 0 ? "Infinity" : "-Infinity");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

const char *cdc_xv_text(const xv_t *v, cdc_arena_t *a, size_t *len)
{
    char buf[128];
    switch (v->t) {
    case XV_NULL:
    case XV_MISSING:
        *len = 0;
        return NULL;
    case XV_STR:
        *len = v->len;
        return v->s;
    case XV_BOOL:
        *len = v->b ? 4 : 5;
        return v->b ? "true" : "false";
    case XV_DBL:
        fmt_dbl(v->d, buf, sizeof(buf));
        break;
    case XV_DEC: {
        unsigned __int128 u = v->m < 0 ? -(unsigned __int128)v->m
                                       : (unsigned __int128)v->m;
        char rev[64];
        int k = 0, j = 0;
        do {
            rev[k++] = (char)('0' + (int)(u % 10));
            u /= 10;
        } while (u && k < 60);
        while (k <= v->scale)
            rev[k++] = '0';
        if (v->m < 0)
            buf[j++] = '-';
        for (int i = k - 1; i >= 0; i--) {
            buf[j++] = rev[i];
            if (i == v->scale && i > 0)
                buf[j++] = '.';
        }
        buf[j] = '\0';
        break;
    }
    }
    *len = strlen(buf);
    return cdc_arena_memdup(a, buf, *len);
}

/* Numeric view of a value: DEC or DBL; -1 if a string is not a number. */
static int to_num(const xv_t *v, xv_t *out)
{
    switch (v->t) {
    case XV_DEC:
    case XV_DBL:
        *out = *v;
        return 0;
    case XV_BOOL:
        memset(out, 0, sizeof(*out));
        out->t = XV_DEC;
        out->m = v->b;
        return 0;
    case XV_STR:
        if (!cdc_xv_parse_dec(v->s, v->len, out))
            return 0;
        {
            char tmp[64], *end;
            if (v->len == 0 || v->len >= sizeof(tmp))
                return -1;
            memcpy(tmp, v->s, v->len);
            tmp[v->len] = '\0';
            double d = strtod(tmp, &end);
            if (*end || end == tmp)
                return -1;
            memset(out, 0, sizeof(*out));
            out->t = XV_DBL;
            out->d = d;
            return 0;
        }
    default:
        return -1;
    }
}

void cdc_xv_column(const xctx_t *ctx, const char *name, xv_t *out, int *found)
{
    const cdc_table_t *t = ctx->tbl;
    memset(out, 0, sizeof(*out));
    *found = 0;
    if (!t || !ctx->row)
        return;
    for (uint32_t i = 0; i < t->ncols; i++) {
        if (strcmp(t->cols[i].name, name))
            continue;
        const cdc_value_t *v = &ctx->row[i];
        *found = 1;
        switch (v->kind) {
        case CDC_V_ABSENT:
        case CDC_V_UNCHANGED: out->t = XV_MISSING; break;
        case CDC_V_NULL: out->t = XV_NULL; break;
        case CDC_V_BOOL: out->t = XV_BOOL; out->b = v->u.b != 0; break;
        case CDC_V_INT: out->t = XV_DEC; out->m = v->u.i; break;
        case CDC_V_UINT: out->t = XV_DEC; out->m = v->u.u; break;
        case CDC_V_FLOAT:
        case CDC_V_DOUBLE: out->t = XV_DBL; out->d = v->u.d; break;
        case CDC_V_DECIMAL:
            if (cdc_xv_parse_dec(v->s, v->len, out)) {
                out->t = XV_STR; /* NaN, Infinity */
                out->s = v->s;
                out->len = v->len;
            }
            break;
        case CDC_V_BYTES:
            /* binary data is text in base64 on every path: a live run
             * sees bytes, the Kafka source and `mapping test` read the
             * envelope's base64 - both give the same text */
        {
            cdc_buf_t b = CDC_BUF_INIT;
            cdc_buf_base64(&b, (const uint8_t *)(v->s ? v->s : ""), v->len);
            out->t = XV_STR;
            out->len = b.len;
            out->s = cdc_arena_memdup(ctx->arena, b.p ? b.p : "", b.len);
            cdc_buf_free(&b);
            break;
        }
        case CDC_V_JSON:
            out->json = 1;
            /* fall through */
        default:
            out->t = XV_STR;
            out->s = v->s ? v->s : "";
            out->len = v->len;
            break;
        }
        return;
    }
}

static int xerr(xctx_t *c, const char *fmt, const char *a)
{
    cdc_err_set(c->err, CDC_EXIT_DATA, CDC_ERR_F_DATA, "%s%s", c->where ? c->where : "",
                c->where ? ": " : "");
    size_t l = strlen(c->err->msg);
    snprintf(c->err->msg + l, sizeof(c->err->msg) - l, fmt, a);
    return -1;
}

static int truthy(const xv_t *v)
{
    switch (v->t) {
    case XV_BOOL: return v->b;
    case XV_DEC: return v->m != 0;
    case XV_DBL: return v->d != 0;
    case XV_STR: return v->len > 0;
    default: return 0;
    }
}

/* -1 a<b, 0, 1; *cmp_null if either is NULL */
static int compare(const xv_t *a, const xv_t *b)
{
    xv_t x, y;
    if (a->t != XV_STR || b->t != XV_STR) {
        if (!to_num(a, &x) && !to_num(b, &y)) {
            if (x.t == XV_DEC && y.t == XV_DEC) {
                int s = x.scale > y.scale ? x.scale : y.scale;
                if (!cdc_xv_rescale(&x, s) && !cdc_xv_rescale(&y, s))
                    return x.m < y.m ? -1 : x.m > y.m;
            }
            double dx = x.t == XV_DEC ? dec2d(&x) : x.d;
            double dy = y.t == XV_DEC ? dec2d(&y) : y.d;
            return dx < dy ? -1 : dx > dy;
        }
    }
    {
        /* as text */
        cdc_arena_t tmp;
        size_t la, lb;
        int r;
        cdc_arena_init(&tmp);
        const char *sa = cdc_xv_text(a, &tmp, &la);
        const char *sb = cdc_xv_text(b, &tmp, &lb);
        r = memcmp(sa, sb, la < lb ? la : lb);
        if (!r)
            r = la < lb ? -1 : la > lb;
        cdc_arena_destroy(&tmp);
        return r < 0 ? -1 : r > 0;
    }
}

static int arith(xctx_t *c, int op, const xv_t *a, const xv_t *b, xv_t *out)
{
    xv_t x, y;
    memset(out, 0, sizeof(*out));
    if (to_num(a, &x) || to_num(b, &y))
        return xerr(c, "arithmetic on a value that is not a number (%s)",
                    a->t == XV_STR ? "left" : "right");
    if (x.t == XV_DEC && y.t == XV_DEC) {
        xv_t r = {.t = XV_DEC};
        int s = x.scale > y.scale ? x.scale : y.scale;
        switch (op) {
        case OP_ADD:
        case OP_SUB:
            if (cdc_xv_rescale(&x, s) || cdc_xv_rescale(&y, s))
                goto dbl;
            r.m = op == OP_ADD ? x.m + y.m : x.m - y.m;
            r.scale = s;
            break;
        case OP_MUL:
            if (__builtin_mul_overflow(x.m, y.m, &r.m))
                goto dbl;
            r.scale = x.scale + y.scale;
            if (r.scale > XV_MAX_SCALE && cdc_xv_rescale(&r, XV_MAX_SCALE))
                goto dbl;
            break;
        case OP_DIV:
        case OP_MOD: {
            if (y.m == 0) {
                out->t = XV_NULL;
                return 0;
            }
            if (op == OP_MOD) {
                if (cdc_xv_rescale(&x, s) || cdc_xv_rescale(&y, s))
                    goto dbl;
                r.m = x.m % y.m;
                r.scale = s;
                break;
            }
            /* result scale: max(6, operands' scales), rounded half away */
            int rs = s > 6 ? s : 6;
            xv_t n = x;
            if (cdc_xv_rescale(&n, rs + 1 + y.scale))
                goto dbl;
            __int128 q = n.m / y.m; /* scale rs + 1 */
            r.m = q;
            r.scale = rs + 1;
            if (cdc_xv_rescale(&r, rs))
                goto dbl;
            break;
        }
        }
        if (!dec_ok(r.m))
            goto dbl;
        *out = r;
        return 0;
    }
dbl : {
    double dx = x.t == XV_DEC ? dec2d(&x) : x.d;
    double dy = y.t == XV_DEC ? dec2d(&y) : y.d;
    out->t = XV_DBL;
    switch (op) {
    case OP_ADD: out->d = dx + dy; break;
    case OP_SUB: out->d = dx - dy; break;
    case OP_MUL: out->d = dx * dy; break;
    case OP_DIV:
        if (dy == 0) {
            out->t = XV_NULL;
            return 0;
        }
        out->d = dx / dy;
        break;
    default:
        if (dy == 0) {
            out->t = XV_NULL;
            return 0;
        }
        out->d = fmod(dx, dy);
        break;
    }
    return 0;
}
}

static int str_of(xctx_t *c, const xv_t *v, const char **s, size_t *len)
{
    *s = cdc_xv_text(v, c->arena, len);
    return 0;
}

static int eval(const node_t *n, xctx_t *c, xv_t *out);

/* commit_time(): the transaction's commit time as UTC text
 * "YYYY-MM-DDTHH:MM:SS.ffffffZ" */
static int fn_commit_time(xctx_t *c, xv_t *out)
{
    char buf[64];
    time_t sec = (time_t)(c->commit_us / 1000000);
    long us = (long)(c->commit_us % 1000000);
    struct tm tm;

    if (us < 0) {
        us += 1000000;
        sec--;
    }
    gmtime_r(&sec, &tm);
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, us);
    out->t = XV_STR;
    out->len = strlen(buf);
    out->s = cdc_arena_memdup(c->arena, buf, out->len);
    return 0;
}

/* concat(), greatest(), least(), nullif(): NULL arguments have their own
 * rules; 1 when op is none of them. */
static int fn_nullable(const node_t *n, xctx_t *c, const xv_t *a, xv_t *out)
{
    switch ((fn_t)n->op) {
    case F_CONCAT: {
        cdc_buf_t b = CDC_BUF_INIT;
        for (int i = 0; i < n->nkids; i++) {
            const char *s;
            size_t l;
            if (a[i].t == XV_NULL)
                continue;
            str_of(c, &a[i], &s, &l);
            cdc_buf_put(&b, s, l);
        }
        out->t = XV_STR;
        out->len = b.len;
        out->s = cdc_arena_memdup(c->arena, b.p ? b.p : "", b.len);
        cdc_buf_free(&b);
        return 0;
    }
    case F_GREATEST:
    case F_LEAST: {
        int best = -1;
        for (int i = 0; i < n->nkids; i++) {
            if (a[i].t == XV_NULL)
                continue;
            if (best < 0)
                best = i;
            else {
                int r = compare(&a[i], &a[best]);
                if (n->op == F_GREATEST ? r > 0 : r < 0)
                    best = i;
            }
        }
        if (best >= 0)
            *out = a[best];
        return 0;
    }
    case F_NULLIF:
        if (a[0].t != XV_NULL && a[1].t != XV_NULL && !compare(&a[0], &a[1]))
            return 0;
        *out = a[0];
        return 0;
    default:
        return 1;
    }
}

/* upper(), lower(), trim() of a non-NULL value */
static int fn_case_trim(const node_t *n, xctx_t *c, const xv_t *a, xv_t *out)
{
    const char *s;
    size_t l, st = 0;
    char *o;

    str_of(c, &a[0], &s, &l);
    if (n->op == F_TRIM) {
        while (st < l && isspace((unsigned char)s[st]))
            st++;
        while (l > st && isspace((unsigned char)s[l - 1]))
            l--;
    }
    o = cdc_arena_memdup(c->arena, s + st, l - st);
    /* ASCII case mapping: other UTF-8 bytes are left alone */
    for (size_t i = 0; n->op != F_TRIM && i < l - st; i++)
        o[i] = (char)(n->op == F_UPPER ? toupper((unsigned char)o[i])
                                       : tolower((unsigned char)o[i]));
    out->t = XV_STR;
    out->s = o;
    out->len = l - st;
    return 0;
}

/* substr(s, from[, count]) of a non-NULL s: 1-based, in code points */
static int fn_substr(const node_t *n, xctx_t *c, const xv_t *a, xv_t *out)
{
    const char *s;
    size_t l, st, ln, i = 0, cp = 1;
    xv_t x, y;
    long long from, cnt;

    str_of(c, &a[0], &s, &l);
    if (a[1].t == XV_NULL || (n->nkids > 2 && a[2].t == XV_NULL))
        return 0;
    if (to_num(&a[1], &x) || x.t != XV_DEC || cdc_xv_rescale(&x, 0) ||
        (n->nkids > 2 && (to_num(&a[2], &y) || y.t != XV_DEC ||
                          cdc_xv_rescale(&y, 0))))
        return xerr(c, "substr() needs integer positions%s", "");
    from = (long long)x.m;
    cnt = n->nkids > 2 ? (long long)y.m : (long long)l;
    if (from < 1) {
        cnt += from - 1;
        from = 1;
    }
    if (cnt < 0)
        cnt = 0;
    while (i < l && (long long)cp < from) {
        i++;
        while (i < l && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        cp++;
    }
    st = i;
    while (i < l && cnt > 0) {
        i++;
        while (i < l && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        cnt--;
    }
    ln = i - st;
    out->t = XV_STR;
    out->s = cdc_arena_memdup(c->arena, s + st, ln);
    out->len = ln;
    return 0;
}

/* round(x[, digits]) and abs(x) of a non-NULL x */
static int fn_round_abs(const node_t *n, xctx_t *c, const xv_t *a, xv_t *out)
{
    xv_t x, d;
    int digits = 0;

    if (to_num(&a[0], &x))
        return xerr(c, "%s() of a value that is not a number",
                    n->op == F_ROUND ? "round" : "abs");
    if (n->op == F_ABS) {
        if (x.t == XV_DEC)
            x.m = x.m < 0 ? -x.m : x.m;
        else
            x.d = fabs(x.d);
        *out = x;
        return 0;
    }
    if (n->nkids > 1) {
        if (a[1].t == XV_NULL)
            return 0;
        if (to_num(&a[1], &d) || d.t != XV_DEC || cdc_xv_rescale(&d, 0) ||
            d.m < 0 || d.m > XV_MAX_SCALE)
            return xerr(c, "round() digits must be 0..30%s", "");
        digits = (int)d.m;
    }
    if (x.t == XV_DEC) {
        if (x.scale > digits && cdc_xv_rescale(&x, digits))
            return xerr(c, "round() overflow%s", "");
    } else {
        double f = pow(10, digits);
        x.d = round(x.d * f) / f;
    }
    *out = x;
    return 0;
}

static int eval_call(const node_t *n, xctx_t *c, xv_t *out)
{
    xv_t a[MAX_ARGS] = {{0}};
    int r;

    memset(out, 0, sizeof(*out));
    switch ((fn_t)n->op) {
    case F_COMMIT_TIME:
        return fn_commit_time(c, out);
    case F_SOURCE:
        out->t = XV_STR;
        out->s = c->source ? c->source : "";
        out->len = strlen(out->s);
        return 0;
    case F_COALESCE:
        for (int i = 0; i < n->nkids; i++) {
            if (eval(n->kids[i], c, out))
                return -1;
            if (out->t != XV_NULL)
                return 0;
        }
        return 0;
    default:
        break;
    }
    for (int i = 0; i < n->nkids; i++) {
        if (eval(n->kids[i], c, &a[i]))
            return -1;
        if (a[i].t == XV_MISSING) {
            *out = a[i];
            return 0;
        }
    }
    r = fn_nullable(n, c, a, out);
    if (r <= 0)
        return r;
    if (a[0].t == XV_NULL)
        return 0;
    switch ((fn_t)n->op) {
    case F_UPPER:
    case F_LOWER:
    case F_TRIM:
        return fn_case_trim(n, c, a, out);
    case F_LENGTH: {
        const char *s;
        size_t l, cps = 0;
        str_of(c, &a[0], &s, &l);
        for (size_t i = 0; i < l; i++) /* code points, not bytes */
            if (((unsigned char)s[i] & 0xC0) != 0x80)
                cps++;
        out->t = XV_DEC;
        out->m = (__int128)cps;
        return 0;
    }
    case F_SUBSTR:
        return fn_substr(n, c, a, out);
    case F_ROUND:
    case F_ABS:
        return fn_round_abs(n, c, a, out);
    default:
        return xerr(c, "internal: unknown function%s", "");
    }
}

/* -x, NOT x, x IS [NOT] NULL */
static int eval_unary(const node_t *n, xctx_t *c, xv_t *out)
{
    xv_t a;

    if (eval(n->kids[0], c, &a))
        return -1;
    if (a.t == XV_MISSING || (a.t == XV_NULL && n->t != N_ISNULL)) {
        *out = a;
        return 0;
    }
    switch (n->t) {
    case N_NEG:
        if (to_num(&a, out))
            return xerr(c, "minus of a value that is not a number%s", "");
        if (out->t == XV_DEC)
            out->m = -out->m;
        else
            out->d = -out->d;
        return 0;
    case N_NOT:
        out->t = XV_BOOL;
        out->b = !truthy(&a);
        return 0;
    default: /* N_ISNULL */
        out->t = XV_BOOL;
        out->b = (a.t == XV_NULL) != (n->op == 1);
        return 0;
    }
}

/* AND / OR, in three-valued logic */
static int eval_logic(const node_t *n, xctx_t *c, xv_t *out)
{
    xv_t a, b;

    if (eval(n->kids[0], c, &a))
        return -1;
    if (a.t == XV_MISSING) {
        *out = a;
        return 0;
    }
    if (a.t != XV_NULL && truthy(&a) == (n->t == N_OR)) {
        out->t = XV_BOOL;
        out->b = n->t == N_OR;
        return 0;
    }
    if (eval(n->kids[1], c, &b))
        return -1;
    if (b.t == XV_MISSING) {
        *out = b;
        return 0;
    }
    if (b.t != XV_NULL && truthy(&b) == (n->t == N_OR)) {
        out->t = XV_BOOL;
        out->b = n->t == N_OR;
        return 0;
    }
    if (a.t == XV_NULL || b.t == XV_NULL)
        return 0;
    out->t = XV_BOOL;
    out->b = n->t == N_AND;
    return 0;
}

/* a || b, arithmetic and comparisons: MISSING or NULL on either side
 * gives that; 1 (out filled with a and b) to go on */
static int eval_pair(const node_t *n, xctx_t *c, xv_t *a, xv_t *b,
                     xv_t *out)
{
    if (eval(n->kids[0], c, a) || eval(n->kids[1], c, b))
        return -1;
    if (a->t == XV_MISSING || b->t == XV_MISSING) {
        out->t = XV_MISSING;
        return 0;
    }
    if (a->t == XV_NULL || b->t == XV_NULL)
        return 0;
    return 1;
}

static int eval_concat(const node_t *n, xctx_t *c, xv_t *out)
{
    const char *sa, *sb;
    size_t la, lb;
    char *o;
    xv_t a, b;
    int r = eval_pair(n, c, &a, &b, out);

    if (r <= 0)
        return r;
    str_of(c, &a, &sa, &la);
    str_of(c, &b, &sb, &lb);
    o = cdc_arena_alloc(c->arena, la + lb + 1);
    memcpy(o, sa, la);
    memcpy(o + la, sb, lb);
    o[la + lb] = '\0';
    out->t = XV_STR;
    out->s = o;
    out->len = la + lb;
    return 0;
}

static int eval_bin(const node_t *n, xctx_t *c, xv_t *out)
{
    xv_t a, b;
    int r = eval_pair(n, c, &a, &b, out);

    if (r <= 0)
        return r;
    if (n->op <= OP_MOD)
        return arith(c, n->op, &a, &b, out);
    r = compare(&a, &b);
    out->t = XV_BOOL;
    switch (n->op) {
    case OP_EQ: out->b = r == 0; break;
    case OP_NE: out->b = r != 0; break;
    case OP_LT: out->b = r < 0; break;
    case OP_LE: out->b = r <= 0; break;
    case OP_GT: out->b = r > 0; break;
    default: out->b = r >= 0; break;
    }
    return 0;
}

static int eval_case(const node_t *n, xctx_t *c, xv_t *out)
{
    int pairs = (n->nkids - n->op) / 2;
    xv_t a;

    for (int i = 0; i < pairs; i++) {
        if (eval(n->kids[2 * i], c, &a))
            return -1;
        if (a.t == XV_MISSING) {
            *out = a;
            return 0;
        }
        if (a.t != XV_NULL && truthy(&a))
            return eval(n->kids[2 * i + 1], c, out);
    }
    if (n->op)
        return eval(n->kids[n->nkids - 1], c, out);
    return 0;
}

static int eval(const node_t *n, xctx_t *c, xv_t *out)
{
    memset(out, 0, sizeof(*out));
    switch (n->t) {
    case N_LIT:
        *out = n->lit;
        return 0;
    case N_COL: {
        int found;
        cdc_xv_column(c, n->name, out, &found);
        if (!found)
            return xerr(c, "no column '%s' in the source table", n->name);
        return 0;
    }
    case N_NEG:
    case N_NOT:
    case N_ISNULL:
        return eval_unary(n, c, out);
    case N_AND:
    case N_OR:
        return eval_logic(n, c, out);
    case N_CONCAT:
        return eval_concat(n, c, out);
    case N_BIN:
        return eval_bin(n, c, out);
    case N_CASE:
        return eval_case(n, c, out);
    case N_CALL:
        return eval_call(n, c, out);
    }
    return 0;
}

int cdc_expr_eval(const cdc_expr_t *e, xctx_t *ctx, xv_t *out)
{
    return eval(e->root, ctx, out);
}
