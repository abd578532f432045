/* SPDX-License-Identifier: Apache-2.0 */
/*
 * decode.c - `autoglm-cdc decode [OPTIONS] FILE...`: binlog files to
 * envelopes on a sink (stdout by default), like mariadb-binlog but JSON;
 * --events lists the events instead.
 */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "cdc/commands/commands.h"
#include "cdc/envelope.h"
#include "cdc/flight.h"
#include "cdc/log.h"
#include "cdc/pipeline.h"
#include "connectors/mysql/binlog.h"

/* ---- decode ------------------------------------------------------------ */

/* --json-columns of one table version: which columns the globs name */
typedef struct json_tab {
    cdc_table_t *t; /* a reference: the pointer stays this table's */
    uint8_t *hit;   /* per column */
    int any;
} json_tab_t;

typedef struct decode_ctx {
    const cdc_sink_ops_t *kops;
    cdc_sink_t *snk;
    cdc_filter_t *filter;
    /* txns written and not yet delivered (cdc/flight.h): memory stays
     * bounded by what the sink buffers */
    cdc_flight_t *fl;
    uint64_t rows;
    char **json_pats;  /* --json-columns: db.table.column globs */
    int njson;
    json_tab_t *jt;    /* the globs matched once per table version */
    size_t njt, capjt, jlast;
    yajl_handle yh;    /* validates candidate JSON texts */
} decode_ctx_t;

/*
 * --json-columns: a MariaDB JSON column is a LONGTEXT with a json_valid()
 * check, which the binlog does not record.  For the columns named here a
 * text value that parses as JSON is embedded as JSON; anything else stays
 * a string (never altered).
 */
static int is_json_text(decode_ctx_t *d, const char *s, size_t n)
{
    yajl_status st;

    if (!d->yh) {
        d->yh = yajl_alloc(NULL, NULL, NULL);
        yajl_config(d->yh, yajl_allow_multiple_values, 0);
    }
    st = yajl_parse(d->yh, (const unsigned char *)s, n);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(d->yh);
    yajl_free(d->yh);
    d->yh = NULL;
    return st == yajl_status_ok && n > 0;
}

/* The columns of t that --json-columns names, matched on first sight of
 * this table version (an ALTER makes a new one), not per row. */
static const json_tab_t *json_cols(decode_ctx_t *d, cdc_table_t *t)
{
    json_tab_t *e;

    if (d->njt && d->jt[d->jlast].t == t)
        return &d->jt[d->jlast];
    for (size_t i = 0; i < d->njt; i++)
        if (d->jt[i].t == t) {
            d->jlast = i;
            return &d->jt[i];
        }
    if (d->njt == d->capjt) {
        d->capjt = d->capjt ? d->capjt * 2 : 16;
        d->jt = cdc_xrealloc(d->jt, d->capjt * sizeof(*d->jt));
    }
    e = &d->jt[d->njt];
    e->t = cdc_table_keep(t);
    e->hit = cdc_xcalloc(t->ncols ? t->ncols : 1, 1);
    e->any = 0;
    for (uint32_t c = 0; c < t->ncols; c++) {
        char name[768];
        snprintf(name, sizeof(name), "%s.%s.%s", t->db, t->name,
                 t->cols[c].name ? t->cols[c].name : "");
        for (int k = 0; k < d->njson && !e->hit[c]; k++)
            e->hit[c] = !fnmatch(d->json_pats[k], name, 0);
        e->any |= e->hit[c];
    }
    d->jlast = d->njt++;
    return e;
}

static void json_cols_free(decode_ctx_t *d)
{
    for (size_t i = 0; i < d->njt; i++) {
        cdc_table_destroy(d->jt[i].t);
        free(d->jt[i].hit);
    }
    free(d->jt);
}

static void mark_json(decode_ctx_t *d, cdc_txn_t *tx)
{
    for (uint32_t i = 0; i < tx->nchanges; i++) {
        cdc_change_t *ch = &tx->changes[i];
        cdc_table_t *t = ch->tbl;
        const json_tab_t *jt = json_cols(d, t);
        for (uint32_t c = 0; jt->any && c < t->ncols; c++) {
            if (!jt->hit[c])
                continue;
            cdc_value_t *imgs[2] = {ch->before, ch->after};
            for (int k = 0; k < 2; k++) {
                cdc_value_t *v = imgs[k] ? &imgs[k][c] : NULL;
                if (v && v->kind == CDC_V_STRING && is_json_text(d, v->s, v->len))
                    v->kind = CDC_V_JSON;
            }
        }
    }
}

static void print_event(void *opaque, const cdc_binlog_evinfo_t *ev)
{
    (void)opaque;
    printf("%*s%6" PRIu64 " %-28s %6" PRIu32 "\n", ev->depth * 4, "",
           ev->offset, ev->name ? ev->name : "UNKNOWN", ev->size);
}

static int decode_txn(void *opaque, cdc_txn_t *tx, cdc_err_t *err)
{
    decode_ctx_t *d = opaque;

    cdc_filter_txn(d->filter, tx);
    if (d->njson)
        mark_json(d, tx);
    d->rows += tx->nchanges;
    if (cdc_flight_write(d->fl, tx, err))
        return -1;
    if (cdc_flight_poll(d->fl, 0, err) || cdc_flight_advance(d->fl, err))
        return -1;
    /* asynchronous sinks (Kafka): wait for acknowledgements once 8 MiB of
     * transactions are held, instead of growing */
    while (cdc_flight_full(d->fl)) {
        if (cdc_flight_poll(d->fl, 50, err) || cdc_flight_advance(d->fl, err))
            return -1;
        if (cdc_flight_full(d->fl) && cdc_flight_bytes(d->fl) > (8u << 20) &&
            cdc_flight_flush(d->fl, 60000, err))
            return -1;
    }
    return 0;
}

/*
 * decode runs as two threads: this one reads and decodes the binlog, a
 * writer thread turns the txns into envelopes and hands them to the sink.
 * They meet in the engine's bounded feed (cdc/flight.h), bounded in
 * transactions and bytes, so memory stays flat however big the rows are.
 */
#define HANDOFF_MAX_TXNS 256
#define HANDOFF_MAX_BYTES (8u << 20)

typedef struct handoff {
    cdc_feed_t *feed;
    cdc_err_t err;  /* the writer's error; written before it stops the feed */
    int failed;
    decode_ctx_t *d;
} handoff_t;

static int handoff_push(void *opaque, cdc_txn_t *tx, cdc_err_t *err)
{
    handoff_t *h = opaque;

    if (!cdc_feed_push(h->feed, tx))
        return 0;
    *err = h->err; /* stopped by the writer, which failed */
    return -1;
}

static void *handoff_writer(void *arg)
{
    handoff_t *h = arg;

    for (;;) {
        cdc_txn_t *tx;
        cdc_err_t e = {0};
        int r = cdc_feed_pop(h->feed, &tx, 1000, &e);

        if (r == CDC_SRC_EOF)
            break;
        if (r != CDC_SRC_TXN)
            continue;
        if (decode_txn(h->d, tx, &e)) {
            h->err = e;
            h->failed = 1;
            cdc_feed_stop(h->feed); /* the reader's push fails from here */
            break;
        }
    }
    return NULL;
}

int cdc_cmd_decode(const cdc_cmd_ctx_t *cx, int argc, char **argv,
                   cdc_err_t *err)
{
    const char *start_position = cdc_conf_get(cx->opts, "start-position",
                                              NULL);
    int events = cdc_conf_get(cx->opts, "events", NULL) != NULL;
    handoff_t h = {0};
    pthread_t writer;
    int threaded = 0;
    decode_ctx_t d = {0};
    cdc_binlog_opts_t bo = {.verify_checksum = 1};
    uint64_t start = 0;
    const char *start_file = NULL;
    int rc = CDC_EXIT_OK;
    char startbuf[256];

    if (argc < 1)
        return cdc_cmd_usage_error("decode needs at least one binlog %s",
                                   "FILE");
    if (start_position) {
        const char *colon = strrchr(start_position, ':');
        const char *num = colon ? colon + 1 : start_position;
        char *end = NULL;
        /* FILE:POS or POS, POS a decimal offset: anything else would
         * silently decode from another place */
        if (colon) {
            if (colon == start_position ||
                (size_t)(colon - start_position) >= sizeof(startbuf))
                num = "";
            snprintf(startbuf, sizeof(startbuf), "%.*s",
                     (int)(colon - start_position), start_position);
            start_file = startbuf;
        }
        errno = 0;
        if (*num >= '0' && *num <= '9')
            start = strtoull(num, &end, 10);
        if (!end || *end || errno)
            return cdc_cmd_usage_error("decode --start-position: '%s' is "
                                       "not FILE:POS or POS (a byte offset)",
                                       start_position);
    }
    if (events) {
        bo.on_event = print_event;
    } else {
        d.kops = cdc_cmd_sink(cx->conf, "stdout", err);
        if (!d.kops)
            return err->code;
        d.snk = d.kops->create(cx->conf, err);
        if (!d.snk)
            return err->code;
        d.filter = cdc_filter_new(cx->conf);
        d.fl = cdc_flight_new(&d.snk, 1, 4096, 8u << 20, NULL, NULL);
        {
            const char *jc = cdc_conf_get(cx->conf, "decode.json_columns", "");
            char *dup = cdc_xstrdup(jc), *tok, *save = NULL;
            for (tok = strtok_r(dup, ", ", &save); tok;
                 tok = strtok_r(NULL, ", ", &save)) {
                d.json_pats = cdc_xrealloc(d.json_pats, (size_t)(d.njson + 1) *
                                                            sizeof(char *));
                d.json_pats[d.njson++] = cdc_xstrdup(tok);
            }
            free(dup);
        }
        h.d = &d;
        h.feed = cdc_feed_new(HANDOFF_MAX_TXNS, HANDOFF_MAX_BYTES);
        threaded = pthread_create(&writer, NULL, handoff_writer, &h) == 0;
    }
    for (int i = 0; i < argc && rc == CDC_EXIT_OK; i++) {
        cdc_binlog_t *bl = cdc_binlog_new(&bo);
        const char *base = strrchr(argv[i], '/');
        uint64_t from = 0;

        base = base ? base + 1 : argv[i];
        if (start_file && !strcmp(start_file, base))
            from = start;
        else if (start_file && strcmp(start_file, base) < 0 && i == 0)
            from = 0;
        else if (!start_file && i == 0)
            from = start;
        if (start_file && strcmp(base, start_file) < 0) {
            cdc_binlog_destroy(bl);
            continue; /* before the start file */
        }
        cdc_binlog_set_file(bl, base);
        if (events)
            printf("== %s\n", base);
        if (cdc_binlog_read_file(bl, argv[i], from,
                                 events ? NULL
                                 : threaded ? handoff_push : decode_txn,
                                 threaded ? (void *)&h : (void *)&d, err))
            rc = err->code ? err->code : CDC_EXIT_DATA;
        cdc_binlog_destroy(bl);
    }
    if (threaded) {
        cdc_feed_end(h.feed);
        pthread_join(writer, NULL);
        if (h.failed && rc == CDC_EXIT_OK) {
            *err = h.err;
            rc = err->code ? err->code : CDC_EXIT_FAIL;
        }
    }
    cdc_feed_free(h.feed);
    if (d.snk) {
        cdc_err_t e2 = {0};
        if (cdc_flight_flush(d.fl, 60000, rc ? &e2 : err) && !rc)
            rc = err->code ? err->code : CDC_EXIT_FAIL;
        cdc_flight_free(d.fl);
        d.kops->destroy(d.snk);
        CDC_DEBUG("decode", "%" PRIu64 " row changes", d.rows);
    }
    cdc_filter_destroy(d.filter);
    for (int i = 0; i < d.njson; i++)
        free(d.json_pats[i]);
    free(d.json_pats);
    json_cols_free(&d);
    return rc;
}
