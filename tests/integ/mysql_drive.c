/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mysql_drive.c - drive the live mysql source directly (integration tests).
 *
 * Calls cdc_source_mysql_ops create/start/next/destroy without the
 * pipeline and prints every change as one line:
 *   <op> <db>.<table> gtid=<gtid> pos=<file>:<offset> [before{..}] [after{..}]
 * with values as name=<kind>:<text> (int:5, str:"x", json:{..}, null, ...).
 *
 * Usage: mysql_drive [-v] [-X key=value]... [--resume FILE:POS[@GTID]]
 *                    [--resume-gtid GTID] [--max-txns N] [--idle-exit MS]
 *                    [--pos-file PATH]
 * --pos-file writes "file offset gtid" after each txn (a poor man's
 * checkpoint, replaced atomically).  Exit status: 0 on --max-txns/idle
 * exit/SIGTERM, else the error's exit code (3 = cannot resume, 78 =
 * configuration).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/change.h"
#include "cdc/conf.h"
#include "cdc/err.h"
#include "cdc/log.h"
#include "cdc/plugin.h"

extern const cdc_source_ops_t cdc_source_mysql_ops;

static volatile sig_atomic_t stop_flag;

static void on_sig(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void print_vals(const char *tag, const cdc_table_t *t,
                       const cdc_value_t *v)
{
    if (!v)
        return;
    printf(" %s{", tag);
    for (uint32_t i = 0; i < t->ncols; i++) {
        const cdc_value_t *x = &v[i];
        printf("%s%s=", i ? " " : "", t->cols[i].name);
        switch (x->kind) {
        case CDC_V_ABSENT: printf("absent"); break;
        case CDC_V_UNCHANGED: printf("unchanged"); break;
        case CDC_V_NULL: printf("null"); break;
        case CDC_V_BOOL: printf("bool:%d", x->u.b); break;
        case CDC_V_INT: printf("int:%" PRId64, x->u.i); break;
        case CDC_V_UINT: printf("uint:%" PRIu64, x->u.u); break;
        case CDC_V_FLOAT:
        case CDC_V_DOUBLE: printf("num:%.17g", x->u.d); break;
        case CDC_V_DECIMAL: printf("dec:%.*s", (int)x->len, x->s); break;
        case CDC_V_STRING: printf("str:\"%.*s\"", (int)x->len, x->s); break;
        case CDC_V_BYTES: printf("bytes:%zu", x->len); break;
        case CDC_V_JSON: printf("json:%.*s", (int)x->len, x->s); break;
        default: printf("kind%d", x->kind); break;
        }
    }
    printf("}");
}

static void write_pos(const char *path, const cdc_pos_t *pos)
{
    char tmp[4096];
    FILE *f;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "%s %" PRIu64 " %s\n", pos->file, pos->offset, pos->gtid);
    fclose(f);
    rename(tmp, path);
}

int main(int argc, char **argv)
{
    cdc_conf_t *conf = cdc_conf_new();
    cdc_err_t err;
    cdc_source_t *src;
    cdc_pos_t resume;
    int have_resume = 0;
    long max_txns = -1, idle_exit = -1, ntx = 0;
    const char *pos_file = NULL;
    int64_t idle_ms = 0;

    memset(&resume, 0, sizeof resume);
    memset(&err, 0, sizeof err);
    cdc_log_set_level(CDC_LOG_INFO);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-v")) {
            cdc_log_set_level(CDC_LOG_DEBUG);
        } else if (!strcmp(a, "-X") && i + 1 < argc) {
            char *kv = strdup(argv[++i]), *eq = strchr(kv, '=');
            if (!eq) {
                fprintf(stderr, "mysql_drive: -X needs key=value\n");
                return 2;
            }
            *eq = '\0';
            cdc_conf_set(conf, kv, eq + 1, "cli");
            free(kv);
        } else if (!strcmp(a, "--resume") && i + 1 < argc) {
            char *v = argv[++i], *at = strchr(v, '@'), *c;
            if (at) {
                snprintf(resume.gtid, sizeof resume.gtid, "%s", at + 1);
                *at = '\0';
            }
            c = strrchr(v, ':');
            if (!c) {
                fprintf(stderr, "mysql_drive: --resume FILE:POS\n");
                return 2;
            }
            *c = '\0';
            snprintf(resume.file, sizeof resume.file, "%s", v);
            resume.offset = strtoull(c + 1, NULL, 10);
            have_resume = 1;
        } else if (!strcmp(a, "--resume-gtid") && i + 1 < argc) {
            snprintf(resume.gtid, sizeof resume.gtid, "%s", argv[++i]);
            have_resume = 1;
        } else if (!strcmp(a, "--max-txns") && i + 1 < argc) {
            max_txns = atol(argv[++i]);
        } else if (!strcmp(a, "--idle-exit") && i + 1 < argc) {
            idle_exit = atol(argv[++i]);
        } else if (!strcmp(a, "--pos-file") && i + 1 < argc) {
            pos_file = argv[++i];
        } else {
            fprintf(stderr, "mysql_drive: unknown argument %s\n", a);
            return 2;
        }
    }
    signal(SIGTERM, on_sig);
    signal(SIGINT, on_sig);
    setvbuf(stdout, NULL, _IOLBF, 0);

    src = cdc_source_mysql_ops.create(conf, &err);
    if (!src)
        goto fail;
    if (cdc_source_mysql_ops.start(src, have_resume ? &resume : NULL,
                                   &err) < 0)
        goto fail;
    fprintf(stderr, "mysql_drive: started\n");
    while (!stop_flag) {
        cdc_txn_t *tx = NULL;
        int rc = cdc_source_mysql_ops.next(src, &tx, 200, &err);
        if (rc < 0)
            goto fail;
        if (rc == CDC_SRC_IDLE) {
            idle_ms += 200;
            if (idle_exit >= 0 && idle_ms >= idle_exit)
                break;
            continue;
        }
        idle_ms = 0;
        for (uint32_t i = 0; i < tx->nchanges; i++) {
            const cdc_change_t *ch = &tx->changes[i];
            printf("%c %s.%s gtid=%s pos=%s:%" PRIu64, ch->op,
                   ch->tbl->db, ch->tbl->name, tx->gtid, tx->pos.file,
                   tx->pos.offset);
            print_vals("before", ch->tbl, ch->before);
            print_vals("after", ch->tbl, ch->after);
            printf("\n");
        }
        if (pos_file && !tx->more) /* a fragment's pos is no resume point */
            write_pos(pos_file, &tx->pos);
        cdc_txn_destroy(tx);
        ntx++;
        if (max_txns >= 0 && ntx >= max_txns)
            break;
    }
    cdc_source_mysql_ops.destroy(src);
    cdc_conf_destroy(conf);
    fprintf(stderr, "mysql_drive: %ld txns\n", ntx);
    return 0;
fail:
    cdc_err_print(&err);
    if (src)
        cdc_source_mysql_ops.destroy(src);
    cdc_conf_destroy(conf);
    return err.code ? err.code : 1;
}
