/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map_yaml.c - YAML text to a small node tree with source marks.
 *
 * libyaml's event API feeds a tree of scalars, mappings and sequences;
 * every node keeps its 1-based line and column so that the mapping
 * compiler (map_load.c) can report "file:line:column: ..." for any mistake.
 * Aliases are refused (a mapping file has no use for them and they would
 * make ownership of shared nodes murky); duplicate keys are errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "mappings/map_int.h"

#define MAX_NEST 64

static ynode_t *ynew(int kind, const yaml_mark_t *m)
{
    ynode_t *n = cdc_xcalloc(1, sizeof(*n));
    n->kind = kind;
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    return n;
}

static void yadd(ynode_t *p, ynode_t *k)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 8;
        p->kids = cdc_xrealloc(p->kids, (size_t)p->cap * sizeof(*p->kids));
    }
    p->kids[p->n++] = k;
}

void cdc_ynode_free(ynode_t *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->n; i++)
        cdc_ynode_free(n->kids[i]);
    free(n->kids);
    free(n->val);
    cdc_strix_free(&n->keys);
    free(n);
}

int cdc_ynode_isnull(const ynode_t *n)
{
    return !n || (n->kind == Y_SCALAR && n->plain &&
                  (!n->len || !strcmp(n->val, "~") || !strcmp(n->val, "null") ||
                   !strcmp(n->val, "Null") || !strcmp(n->val, "NULL")));
}

static int yerr(cdc_err_t *err, const char *name, const yaml_parser_t *p)
{
    const yaml_mark_t *m = &p->problem_mark;
    if (p->error == YAML_MEMORY_ERROR)
        return cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s: out of memory", name);
    cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s:%zu:%zu: YAML syntax error: %s",
                name, m->line + 1, m->column + 1,
                p->problem ? p->problem : "unknown problem");
    if (p->context)
        cdc_err_detail(err, "%s (line %zu, column %zu)", p->context,
                       p->context_mark.line + 1, p->context_mark.column + 1);
    cdc_err_hint(err, "check indentation and quoting near that position");
    return -1;
}

ynode_t *cdc_yaml_parse(const char *name, const char *text, size_t len,
                        cdc_err_t *err)
{
    yaml_parser_t p;
    yaml_event_t ev;
    ynode_t *stack[MAX_NEST + 1];
    int depth = 0, done = 0;
    ynode_t *root = NULL;

    if (!yaml_parser_initialize(&p)) {
        cdc_err_set(err, CDC_EXIT_FAIL, 0, "cannot initialise the YAML parser");
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    while (!done) {
        ynode_t *n = NULL;
        if (!yaml_parser_parse(&p, &ev)) {
            yerr(err, name, &p);
            goto fail;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (root) {
                cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                            "%s:%zu:%zu: only one YAML document per mapping "
                            "file", name, ev.start_mark.line + 1,
                            ev.start_mark.column + 1);
                yaml_event_delete(&ev);
                goto fail;
            }
            break;
        case YAML_ALIAS_EVENT:
            cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                        "%s:%zu:%zu: YAML aliases (*name) are not supported "
                        "in mapping files", name, ev.start_mark.line + 1,
                        ev.start_mark.column + 1);
            cdc_err_hint(err, "write the value out");
            yaml_event_delete(&ev);
            goto fail;
        case YAML_SCALAR_EVENT:
            n = ynew(Y_SCALAR, &ev.start_mark);
            n->val = cdc_xstrndup((const char *)ev.data.scalar.value,
                                  ev.data.scalar.length);
            n->len = ev.data.scalar.length;
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            break;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            n = ynew(ev.type == YAML_MAPPING_START_EVENT ? Y_MAP : Y_SEQ,
                     &ev.start_mark);
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            break;
        default:
            break;
        }
        if (n) {
            if (depth > 0) {
                ynode_t *par = stack[depth - 1];
                /* duplicate key check */
                if (par->kind == Y_MAP && !(par->n & 1) &&
                    n->kind == Y_SCALAR) {
                    int i = cdc_strix_put(&par->keys, n->val, par->n);
                    if (i >= 0) {
                        cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                                    "%s:%d:%d: duplicate key '%s'", name,
                                    n->line, n->col, n->val);
                        cdc_err_detail(err, "first given at line %d, "
                                       "column %d", par->kids[i]->line,
                                       par->kids[i]->col);
                        cdc_ynode_free(n);
                        yaml_event_delete(&ev);
                        goto fail;
                    }
                }
                if (par->kind == Y_MAP && !(par->n & 1) &&
                    n->kind != Y_SCALAR) {
                    cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                                "%s:%d:%d: a key must be a plain value",
                                name, n->line, n->col);
                    cdc_ynode_free(n);
                    yaml_event_delete(&ev);
                    goto fail;
                }
                yadd(par, n);
            } else if (!root)
                root = n;
            else
                cdc_ynode_free(n);
            if (n->kind != Y_SCALAR) {
                if (depth >= MAX_NEST) {
                    cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                                "%s:%d:%d: nested too deeply", name, n->line,
                                n->col);
                    yaml_event_delete(&ev);
                    goto fail;
                }
                stack[depth++] = n;
            }
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (!root) {
        /* empty file: an empty mapping */
        yaml_mark_t m = {0, 0, 0};
        root = ynew(Y_MAP, &m);
    }
    return root;
fail:
    yaml_parser_delete(&p);
    cdc_ynode_free(root);
    return NULL;
}

const ynode_t *cdc_ynode_get(const ynode_t *map, const char *key)
{
    int i;
    if (!map || map->kind != Y_MAP)
        return NULL;
    i = cdc_strix_get(&map->keys, key);
    return i >= 0 && i + 1 < map->n ? map->kids[i + 1] : NULL;
}
