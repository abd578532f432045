/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.c - sub-commands and options.
 *
 *   autoglm-cdc [run] [OPTIONS]            stream changes (the daemon)
 *   autoglm-cdc decode [OPTIONS] FILE...   binlog files -> envelopes
 *   autoglm-cdc offsets show|set POS|reset [OPTIONS]
 *   autoglm-cdc config [OPTIONS]           print the effective config
 *
 * Every option maps onto a configuration key (cdc/conf.h), so the same
 * settings can live in the YAML file given with -c.
 */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdc/checkpoint.h"
#include "cdc/cli.h"
#include "cdc/conf.h"
#include "cdc/envelope.h"
#include "cdc/log.h"
#include "cdc/pipeline.h"
#include "cdc/plugin.h"
#include "connectors/mysql/binlog.h"
#include <yajl/yajl_parse.h>

/* The decoder is referenced weakly so a partial build still links. */
#pragma weak cdc_binlog_new
#pragma weak cdc_binlog_destroy
#pragma weak cdc_binlog_set_file
#pragma weak cdc_binlog_read_file

/* The mapping engine (mappings/map.h) provides these. */
int cdc_map_cli_validate(const cdc_conf_t *conf, int argc, char **argv,
                         cdc_err_t *err) __attribute__((weak));
int cdc_map_cli_test(const cdc_conf_t *conf, int argc, char **argv,
                     cdc_err_t *err) __attribute__((weak));
/* Two-way sync (mappings/twoway_sql.h) provides these. */
int cdc_twsql_cli_triggers(const cdc_conf_t *conf, int argc, char **argv,
                           cdc_err_t *err) __attribute__((weak));
int cdc_twsql_cli_reverse(const cdc_conf_t *conf, int argc, char **argv,
                          cdc_err_t *err) __attribute__((weak));
/* Backfill (cdc/backfill.c) and status (cdc/status.c) commands. */
int cdc_backfill_cli(const cdc_conf_t *conf, int argc, char **argv,
                     cdc_err_t *err) __attribute__((weak));
int cdc_status_cli(const cdc_conf_t *conf, int argc, char **argv,
                   cdc_err_t *err) __attribute__((weak));
/* Dead letters (cdc/dead_letter_cli.c). */
int cdc_dead_letter_cli(const cdc_conf_t *conf, int argc, char **argv,
                        cdc_err_t *err) __attribute__((weak));

static const char usage_text[] =
"Usage: autoglm-cdc [run] [OPTIONS]\n"
"       autoglm-cdc decode [OPTIONS] FILE...\n"
"       autoglm-cdc offsets show|set POSITION|reset [OPTIONS]\n"
"       autoglm-cdc config [OPTIONS] | config --reference\n"
"       autoglm-cdc validate -c pipeline.yaml\n"
"       autoglm-cdc mapping test MAPPING.yaml [ENVELOPES.jsonl]\n"
"       autoglm-cdc mapping triggers -c pipeline.yaml [postgres|mysql]\n"
"       autoglm-cdc mapping reverse -c pipeline.yaml MAPPING SOURCE TARGET\n"
"       autoglm-cdc backfill -c pipeline.yaml [--table T]... [OPTIONS]\n"
"       autoglm-cdc status [-c pipeline.yaml] [--url URL] [--json]\n"
"       autoglm-cdc dead-letter list|retry -c pipeline.yaml\n"
"\n"
"Change-data capture from MySQL/MariaDB binlogs and PostgreSQL WAL into\n"
"JSON envelopes on Kafka, files or stdout.\n"
"\n"
"Commands:\n"
"  run (default)   stream committed changes from --source to --sink,\n"
"                  resuming from the checkpoint in --state-dir\n"
"  decode FILE...  decode binlog files to envelopes (like mariadb-binlog,\n"
"                  but JSON); --events lists the events instead\n"
"  offsets show    print the stored checkpoint of the pipeline\n"
"  offsets set POS store POS (FILE:POS, GTID state or LSN X/Y)\n"
"  offsets reset   delete the checkpoint (next run starts at --from)\n"
"  config          print the effective configuration (secrets masked);\n"
"                  --reference prints every key (docs/CONFIG.md)\n"
"  validate        check mappings against the live schemas; print what\n"
"                  each mapping writes\n"
"  mapping test F  run mapping F over envelopes (file or stdin) and print\n"
"                  the resulting wide rows / SQL\n"
"  mapping triggers print the SQL (_provenance column, triggers) that ranks\n"
"                  direct edits of the two-way tables of mapping.files\n"
"                  (--mapping); engines from the pipeline's source/sink\n"
"                  types, or only the named engine's tables\n"
"  mapping reverse M S T  print mapping M reversed (source S, target T)\n"
"                  as YAML to paste under mappings:\n"
"  backfill        snapshot existing rows (op r) through the same mappings\n"
"                  and sinks, resumable; for cron (75 = another run holds\n"
"                  the lock)\n"
"  status          the status table: application, online/offline, last\n"
"                  sync time, latency\n"
"  dead-letter list  the changes the sink kept as dead letters\n"
"                  (errors.mode: dead-letter); retry maps and applies them\n"
"                  again (after the mapping was fixed), 65 if some still fail\n"
"\n"
"Options:\n"
"  -c, --config FILE        YAML configuration (keys as below, nested)\n"
"      --source TYPE        mysql | postgres | kafka       (source.type)\n"
"      --sink TYPE          stdout | file | kafka | postgres | mysql |\n"
"                           rabbitmq | mqtt | http           (sink.type)\n"
"      --mapping FILES      mapping YAML files or a directory (mapping.files)\n"
"      --format FMT         autoglm (default) | debezium | xml (format)\n"
"      --application-id ID  envelope application_id       (application_id)\n"
"  -o, --output PATH        file sink path; .zst = zstd    (output)\n"
"      --mysql-dsn DSN      mysql://user:pass@host:port    (mysql.dsn)\n"
"      --server-id N        our replica server_id          (mysql.server_id)\n"
"      --from WHERE         now | beginning | FILE:POS | GTID (mysql.from)\n"
"      --postgres-dsn DSN   libpq conninfo or URI          (postgres.dsn)\n"
"                           Keep passwords out of the command line (ps):\n"
"                           AUTOGLM_CDC_MYSQL_DSN=..., ${VAR} in the YAML,\n"
"                           or a *_file key: -X mysql.password_file=PATH,\n"
"                           postgres.dsn_file, kafka.sasl.password_file\n"
"      --kafka-brokers L    host:port,...                  (kafka.brokers)\n"
"      --topic TEMPLATE     default {source}.{db}.{table}  (kafka.topic)\n"
"      --include LIST       db.table globs to capture      (filter.include)\n"
"      --exclude LIST       db.table globs to skip         (filter.exclude)\n"
"      --pipeline NAME      pipeline name (checkpoint file) (pipeline.name)\n"
"      --state-dir DIR      checkpoint directory, default ./state (state.dir)\n"
"  -X, --set KEY=VALUE      set any key; -X kafka.<prop>=V passes a\n"
"                           librdkafka property\n"
"      --table T            backfill: table to snapshot (repeatable)\n"
"      --where SQL          backfill: row condition      (backfill.where)\n"
"      --chunk-size N       backfill: rows per chunk     (backfill.chunk_size)\n"
"      --max-rows-per-sec N backfill: throttle     (backfill.max_rows_per_sec)\n"
"      --parallel N         backfill: tables in parallel (backfill.parallel)\n"
"      --http ADDR:PORT     serve /metrics /status /livez /readyz (http.listen)\n"
"      --url URL            status: endpoint of a running daemon (status.url)\n"
"      --json               status: one JSON document     (status.format)\n"
"      --reference          config: every key, its type, default, bounds\n"
"      --start-position P   decode: FILE:POS or POS to start from\n"
"      --events             decode: list events (offset type size)\n"
"      --json-columns LIST  decode: db.table.column globs of MariaDB JSON\n"
"                           columns to embed as JSON (decode.json_columns)\n"
"      --max-txns N         stop after N transactions      (run.max_txns)\n"
"      --idle-exit MS       stop after MS ms without changes (run.idle_exit_ms)\n"
"      --log-format F       text (default) | json\n"
"  -v, --verbose            debug logging;  -q, --quiet: errors only\n"
"  -h, --help               this help;  -V, --version: version\n"
"\n"
"Environment: AUTOGLM_CDC_<KEY> sets KEY (e.g. AUTOGLM_CDC_KAFKA_BROKERS);\n"
"YAML values may use ${VAR} and ${VAR:default}; a secret key K may be read\n"
"from a file with K_file. Precedence: defaults < YAML < environment <\n"
"command line. Unknown keys are errors. Secrets are never printed.\n"
"\n"
"Exit status: 0 ok, 1 failure, 2 usage, 3 cannot resume without data loss\n"
"(binlog purged, slot dropped: run a backfill), 65 undecodable input,\n"
"69 source or sink unavailable, 75 temporary (lock held), 78 bad config.\n"
"\n"
"Examples:\n"
"  autoglm-cdc --source mysql --mysql-dsn mysql://cdc:***@127.0.0.1:3306 \\\n"
"              --sink kafka --kafka-brokers 127.0.0.1:9092\n"
"  autoglm-cdc decode mariadb-bin.000001 > changes.jsonl\n"
"  autoglm-cdc decode --sink file -o changes.jsonl.zst mariadb-bin.00000*\n";

enum {
    O_SOURCE = 256, O_SINK, O_FORMAT, O_APP, O_MYSQL_DSN, O_SERVER_ID,
    O_FROM, O_PG_DSN, O_BROKERS, O_TOPIC, O_INCLUDE, O_EXCLUDE, O_PIPELINE,
    O_STATE, O_STARTPOS, O_EVENTS, O_MAXTXNS, O_IDLE, O_LOGFMT, O_MAPPING,
    O_TABLE, O_WHERE, O_CHUNK, O_RATE, O_PARALLEL, O_URL, O_HTTP, O_JSONCOLS,
    O_REFERENCE, O_JSON,
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"source", required_argument, NULL, O_SOURCE},
    {"sink", required_argument, NULL, O_SINK},
    {"format", required_argument, NULL, O_FORMAT},
    {"application-id", required_argument, NULL, O_APP},
    {"output", required_argument, NULL, 'o'},
    {"mysql-dsn", required_argument, NULL, O_MYSQL_DSN},
    {"server-id", required_argument, NULL, O_SERVER_ID},
    {"from", required_argument, NULL, O_FROM},
    {"postgres-dsn", required_argument, NULL, O_PG_DSN},
    {"kafka-brokers", required_argument, NULL, O_BROKERS},
    {"topic", required_argument, NULL, O_TOPIC},
    {"include", required_argument, NULL, O_INCLUDE},
    {"exclude", required_argument, NULL, O_EXCLUDE},
    {"pipeline", required_argument, NULL, O_PIPELINE},
    {"state-dir", required_argument, NULL, O_STATE},
    {"set", required_argument, NULL, 'X'},
    {"start-position", required_argument, NULL, O_STARTPOS},
    {"events", no_argument, NULL, O_EVENTS},
    {"max-txns", required_argument, NULL, O_MAXTXNS},
    {"idle-exit", required_argument, NULL, O_IDLE},
    {"log-format", required_argument, NULL, O_LOGFMT},
    {"mapping", required_argument, NULL, O_MAPPING},
    {"table", required_argument, NULL, O_TABLE},
    {"where", required_argument, NULL, O_WHERE},
    {"chunk-size", required_argument, NULL, O_CHUNK},
    {"max-rows-per-sec", required_argument, NULL, O_RATE},
    {"parallel", required_argument, NULL, O_PARALLEL},
    {"url", required_argument, NULL, O_URL},
    {"http", required_argument, NULL, O_HTTP},
    {"json-columns", required_argument, NULL, O_JSONCOLS},
    {"reference", no_argument, NULL, O_REFERENCE},
    {"json", no_argument, NULL, O_JSON},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

typedef struct cli {
    cdc_conf_t *conf;    /* defaults + file + env + cli (final) */
    cdc_conf_t *cli;     /* command-line settings, applied last */
    const char *config_path;
    const char *start_position;
    int events;
    int reference; /* config --reference */
} cli_t;

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "autoglm-cdc: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'autoglm-cdc --help' for more information.\n");
    return CDC_EXIT_USAGE;
}

static void set_cli(cli_t *c, const char *key, const char *val)
{
    cdc_conf_set(c->cli, key, val, "cli");
}

/* Parse options into c; returns -1 to continue, or an exit code.  Options
 * may follow the arguments (`offsets set POS --state-dir DIR`, as --help
 * shows): getopt moves the arguments to the end ("--" ends the options). */
static int parse_opts(cli_t *c, int argc, char **argv)
{
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:o:X:vqhV", long_opts, NULL)) !=
           -1) {
        switch (opt) {
        case 'c': c->config_path = optarg; break;
        case O_SOURCE: set_cli(c, "source.type", optarg); break;
        case O_SINK: set_cli(c, "sink.type", optarg); break;
        case O_FORMAT: set_cli(c, "format", optarg); break;
        case O_APP: set_cli(c, "application_id", optarg); break;
        case 'o': set_cli(c, "output", optarg); break;
        case O_MYSQL_DSN: set_cli(c, "mysql.dsn", optarg); break;
        case O_SERVER_ID: set_cli(c, "mysql.server_id", optarg); break;
        case O_FROM:
            set_cli(c, "mysql.from", optarg);
            set_cli(c, "postgres.from", optarg);
            break;
        case O_PG_DSN: set_cli(c, "postgres.dsn", optarg); break;
        case O_BROKERS: set_cli(c, "kafka.brokers", optarg); break;
        case O_TOPIC: set_cli(c, "kafka.topic", optarg); break;
        case O_INCLUDE: set_cli(c, "filter.include", optarg); break;
        case O_EXCLUDE: set_cli(c, "filter.exclude", optarg); break;
        case O_PIPELINE: set_cli(c, "pipeline.name", optarg); break;
        case O_MAPPING: set_cli(c, "mapping.files", optarg); break;
        case O_TABLE: {
            /* repeatable: accumulate a comma list */
            const char *old = cdc_conf_get(c->cli, "backfill.tables", NULL);
            cdc_buf_t b = CDC_BUF_INIT;
            cdc_buf_printf(&b, "%s%s%s", old ? old : "", old ? "," : "",
                           optarg);
            set_cli(c, "backfill.tables", b.p);
            cdc_buf_free(&b);
            break;
        }
        case O_WHERE: set_cli(c, "backfill.where", optarg); break;
        case O_CHUNK: set_cli(c, "backfill.chunk_size", optarg); break;
        case O_RATE: set_cli(c, "backfill.max_rows_per_sec", optarg); break;
        case O_PARALLEL: set_cli(c, "backfill.parallel", optarg); break;
        case O_URL: set_cli(c, "status.url", optarg); break;
        case O_HTTP: set_cli(c, "http.listen", optarg); break;
        case O_JSONCOLS: set_cli(c, "decode.json_columns", optarg); break;
        case O_REFERENCE: c->reference = 1; break;
        case O_JSON: set_cli(c, "status.format", "json"); break;
        case O_STATE: set_cli(c, "state.dir", optarg); break;
        case O_STARTPOS: c->start_position = optarg; break;
        case O_EVENTS: c->events = 1; break;
        case O_MAXTXNS: set_cli(c, "run.max_txns", optarg); break;
        case O_IDLE: set_cli(c, "run.idle_exit_ms", optarg); break;
        case O_LOGFMT:
            if (cdc_log_set_format(optarg))
                return usage_error("unknown log format '%s' (use text or "
                                   "json)", optarg);
            break;
        case 'X': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg)
                return usage_error("-X needs KEY=VALUE, got '%s'", optarg);
            *eq = '\0';
            set_cli(c, optarg, eq + 1);
            *eq = '=';
            break;
        }
        case 'v': cdc_log_set_level(CDC_LOG_DEBUG); break;
        case 'q': cdc_log_set_level(CDC_LOG_ERROR); break;
        case 'h': fputs(usage_text, stdout); return CDC_EXIT_OK;
        case 'V': printf("autoglm-cdc %s\n", PACKAGE_VERSION);
            return CDC_EXIT_OK;
        default:
            fprintf(stderr, "Try 'autoglm-cdc --help' for more "
                            "information.\n");
            return CDC_EXIT_USAGE;
        }
    }
    return -1;
}

/* key (source.type or sink.type) unset or a registered plugin; else -1
 * with an error at the key's position listing the plugins */
static int plugin_known(const cdc_conf_t *conf, const char *key,
                        const char *what, cdc_err_t *err)
{
    const char *v = cdc_conf_get(conf, key, NULL);
    const char *w = cdc_conf_where(conf, key);
    int src = !strcmp(what, "source");

    if (!v || (src ? cdc_source_find(v) != NULL : cdc_sink_find(v) != NULL))
        return 0;
    if (w && !strcmp(w, "cli"))
        w = NULL;
    cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s%s%s: unknown %s '%s'",
                w ? w : "", w ? ": " : "", key, what, v);
    cdc_err_hint(err, "available %ss: %s", what,
                 src ? cdc_source_names() : cdc_sink_names());
    return -1;
}

/* defaults < YAML < env < cli */
static int build_conf(cli_t *c, cdc_err_t *err)
{
    c->conf = cdc_conf_new();
    cdc_conf_set(c->conf, "format", "autoglm", "default");
    cdc_conf_set(c->conf, "state.dir", "state", "default");
    if (c->config_path && cdc_conf_load_yaml(c->conf, c->config_path, err))
        return -1;
    cdc_conf_load_env(c->conf);
    for (int i = 0; i < c->cli->n; i++)
        cdc_conf_set(c->conf, c->cli->ents[i].key, c->cli->ents[i].val,
                     "cli");
    /* every key declared, every value of its type (cdc/conf_keys.c) */
    if (cdc_conf_resolve(c->conf, err))
        return -1;
    /* source.type and sink.type name registered plugins: a typo is an
     * error here, for validate and config too, not only for run */
    if (plugin_known(c->conf, "source.type", "source", err) ||
        plugin_known(c->conf, "sink.type", "sink", err))
        return -1;
    {
        const char *lf = cdc_conf_get(c->conf, "log.format", NULL);
        if (lf && cdc_log_set_format(lf)) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "unknown log.format '%s'",
                        lf);
            cdc_err_hint(err, "use text or json");
            return -1;
        }
    }
    {
        const char *fmt = cdc_conf_get(c->conf, "format", "autoglm");
        cdc_format_t f;
        /* xml is rendered by the message sinks (sinks/xml.c) */
        if (strcmp(fmt, "xml") && cdc_format_parse(fmt, &f)) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0, "unknown format '%s'", fmt);
            cdc_err_hint(err, "use --format autoglm, debezium or xml");
            return -1;
        }
    }
    return 0;
}

static int finish(cli_t *c, int rc, const cdc_err_t *err)
{
    if (rc != CDC_EXIT_OK && err && err->msg[0])
        cdc_err_print(err);
    cdc_conf_destroy(c->conf);
    cdc_conf_destroy(c->cli);
    return rc;
}

static const cdc_sink_ops_t *pick_sink(cli_t *c, const char *def,
                                       cdc_err_t *err)
{
    const char *name = cdc_conf_get(c->conf, "sink.type", def);
    const cdc_sink_ops_t *k = cdc_sink_find(name);

    if (!k) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "unknown sink '%s'", name);
        cdc_err_hint(err, "available sinks: %s", cdc_sink_names());
    }
    return k;
}

/* ---- decode ------------------------------------------------------------ */

typedef struct decode_ctx {
    const cdc_sink_ops_t *kops;
    cdc_sink_t *snk;
    cdc_filter_t *filter;
    cdc_txn_t **held;
    size_t nheld, capheld;
    size_t held_bytes; /* arena bytes of the held txns */
    uint64_t rows;
    char **json_pats;  /* --json-columns: db.table.column globs */
    int njson;
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

static void mark_json(decode_ctx_t *d, cdc_txn_t *tx)
{
    for (uint32_t i = 0; i < tx->nchanges; i++) {
        cdc_change_t *ch = &tx->changes[i];
        cdc_table_t *t = ch->tbl;
        for (uint32_t c = 0; c < t->ncols; c++) {
            char name[768];
            int hit = 0;
            snprintf(name, sizeof(name), "%s.%s.%s", t->db, t->name,
                     t->cols[c].name ? t->cols[c].name : "");
            for (int k = 0; k < d->njson && !hit; k++)
                hit = !fnmatch(d->json_pats[k], name, 0);
            if (!hit)
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

/* Free the delivered prefix of the held txns; -1 if one failed. */
static int release_delivered(decode_ctx_t *d, cdc_err_t *err)
{
    size_t done = 0;

    while (done < d->nheld && d->held[done]->pending == 0 &&
           !d->held[done]->failed) {
        d->held_bytes -= d->held[done]->arena.total;
        cdc_txn_destroy(d->held[done++]);
    }
    if (done < d->nheld && d->held[done]->failed)
        return cdc_err_set(err, CDC_EXIT_FAIL, CDC_ERR_F_FATAL,
                           "the %s sink failed to deliver a transaction",
                           d->kops->name);
    if (done) {
        memmove(d->held, d->held + done, (d->nheld - done) * sizeof(*d->held));
        d->nheld -= done;
    }
    return 0;
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
    if (d->kops->write(d->snk, tx, err)) {
        cdc_txn_destroy(tx);
        return -1;
    }
    /* keep txns until the sink reports them delivered, then free them:
     * memory stays bounded by what the sink buffers */
    if (d->nheld == d->capheld) {
        d->capheld = d->capheld ? d->capheld * 2 : 256;
        d->held = cdc_xrealloc(d->held, d->capheld * sizeof(*d->held));
    }
    d->held[d->nheld++] = tx;
    d->held_bytes += tx->arena.total;
    if (d->kops->poll(d->snk, 0, err) || release_delivered(d, err))
        return -1;
    /* asynchronous sinks (Kafka): wait for acknowledgements once 8 MiB of
     * transactions are held, instead of growing */
    while (d->nheld && (d->held_bytes > (8u << 20) || d->nheld >= 4096)) {
        if (d->kops->poll(d->snk, 50, err) || release_delivered(d, err))
            return -1;
        if (d->nheld && d->held_bytes > (8u << 20) &&
            d->kops->flush(d->snk, 60000, err))
            return -1;
        if (release_delivered(d, err))
            return -1;
    }
    return 0;
}

/*
 * decode runs as two threads: this one reads and decodes the binlog, a
 * writer thread turns the txns into envelopes and hands them to the sink.
 * The hand-off queue is bounded in rows, so memory stays flat.
 */
#define HANDOFF_MAX_ROWS 8192

typedef struct handoff {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cdc_txn_t **q;
    size_t cap, head, n, rows;
    int done, failed;
    cdc_err_t err;
    decode_ctx_t *d;
} handoff_t;

static int handoff_push(void *opaque, cdc_txn_t *tx, cdc_err_t *err)
{
    handoff_t *h = opaque;

    pthread_mutex_lock(&h->mu);
    while (!h->failed && h->n &&
           (h->rows + tx->nchanges > HANDOFF_MAX_ROWS || h->n == h->cap))
        pthread_cond_wait(&h->cv, &h->mu);
    if (h->failed) {
        *err = h->err;
        pthread_mutex_unlock(&h->mu);
        cdc_txn_destroy(tx);
        return -1;
    }
    if (h->n == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 256;
        cdc_txn_t **nq = cdc_xmalloc(ncap * sizeof(*nq));
        for (size_t i = 0; i < h->n; i++)
            nq[i] = h->q[(h->head + i) % h->cap];
        free(h->q);
        h->q = nq;
        h->cap = ncap;
        h->head = 0;
    }
    h->q[(h->head + h->n) % h->cap] = tx;
    h->n++;
    h->rows += tx->nchanges;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

static void *handoff_writer(void *arg)
{
    handoff_t *h = arg;

    for (;;) {
        cdc_txn_t *tx;
        cdc_err_t e = {0};

        pthread_mutex_lock(&h->mu);
        while (!h->n && !h->done)
            pthread_cond_wait(&h->cv, &h->mu);
        if (!h->n) {
            pthread_mutex_unlock(&h->mu);
            break;
        }
        tx = h->q[h->head];
        h->head = (h->head + 1) % h->cap;
        h->n--;
        h->rows -= tx->nchanges;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        if (h->failed) {
            cdc_txn_destroy(tx);
            continue;
        }
        if (decode_txn(h->d, tx, &e)) {
            pthread_mutex_lock(&h->mu);
            h->failed = 1;
            h->err = e;
            pthread_cond_broadcast(&h->cv);
            pthread_mutex_unlock(&h->mu);
        }
    }
    return NULL;
}

static int cmd_decode(cli_t *c, int argc, char **argv, cdc_err_t *err)
{
    handoff_t h = {.mu = PTHREAD_MUTEX_INITIALIZER,
                   .cv = PTHREAD_COND_INITIALIZER};
    pthread_t writer;
    int threaded = 0;
    decode_ctx_t d = {0};
    cdc_binlog_opts_t bo = {.verify_checksum = 1};
    uint64_t start = 0;
    const char *start_file = NULL;
    int rc = CDC_EXIT_OK;
    char startbuf[256];

    if (optind >= argc)
        return usage_error("decode needs at least one binlog %s", "FILE");
    if (!cdc_binlog_new) {
        cdc_err_set(err, CDC_EXIT_FAIL, 0, "this build has no binlog decoder");
        return CDC_EXIT_FAIL;
    }
    if (c->start_position) {
        const char *colon = strrchr(c->start_position, ':');
        if (colon) {
            snprintf(startbuf, sizeof(startbuf), "%.*s",
                     (int)(colon - c->start_position), c->start_position);
            start_file = startbuf;
            start = strtoull(colon + 1, NULL, 10);
        } else
            start = strtoull(c->start_position, NULL, 10);
    }
    if (c->events) {
        bo.on_event = print_event;
    } else {
        d.kops = pick_sink(c, "stdout", err);
        if (!d.kops)
            return err->code;
        d.snk = d.kops->create(c->conf, err);
        if (!d.snk)
            return err->code;
        d.filter = cdc_filter_new(c->conf);
        {
            const char *jc = cdc_conf_get(c->conf, "decode.json_columns", "");
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
        threaded = pthread_create(&writer, NULL, handoff_writer, &h) == 0;
    }
    for (int i = optind; i < argc && rc == CDC_EXIT_OK; i++) {
        cdc_binlog_t *bl = cdc_binlog_new(&bo);
        const char *base = strrchr(argv[i], '/');
        uint64_t from = 0;

        base = base ? base + 1 : argv[i];
        if (start_file && !strcmp(start_file, base))
            from = start;
        else if (start_file && strcmp(start_file, base) < 0 && i == optind)
            from = 0;
        else if (!start_file && i == optind)
            from = start;
        if (start_file && strcmp(base, start_file) < 0) {
            cdc_binlog_destroy(bl);
            continue; /* before the start file */
        }
        cdc_binlog_set_file(bl, base);
        if (c->events)
            printf("== %s\n", base);
        if (cdc_binlog_read_file(bl, argv[i], from,
                                 c->events ? NULL
                                 : threaded ? handoff_push : decode_txn,
                                 threaded ? (void *)&h : (void *)&d, err))
            rc = err->code ? err->code : CDC_EXIT_DATA;
        cdc_binlog_destroy(bl);
    }
    if (threaded) {
        pthread_mutex_lock(&h.mu);
        h.done = 1;
        pthread_cond_broadcast(&h.cv);
        pthread_mutex_unlock(&h.mu);
        pthread_join(writer, NULL);
        if (h.failed && rc == CDC_EXIT_OK) {
            *err = h.err;
            rc = err->code ? err->code : CDC_EXIT_FAIL;
        }
        free(h.q);
    }
    if (d.snk) {
        cdc_err_t e2 = {0};
        if (d.kops->flush(d.snk, 60000, rc ? &e2 : err) && !rc)
            rc = err->code ? err->code : CDC_EXIT_FAIL;
        for (size_t i = 0; i < d.nheld; i++)
            cdc_txn_destroy(d.held[i]);
        free(d.held);
        d.kops->destroy(d.snk);
        CDC_DEBUG("decode", "%" PRIu64 " row changes", d.rows);
    }
    cdc_filter_destroy(d.filter);
    for (int i = 0; i < d.njson; i++)
        free(d.json_pats[i]);
    free(d.json_pats);
    return rc;
}

/* ---- offsets --------------------------------------------------------- */

static int cmd_offsets(cli_t *c, int argc, char **argv, cdc_err_t *err)
{
    const char *name = cdc_conf_pipeline(c->conf);
    const char *state = cdc_conf_get(c->conf, "state.dir", "state");
    char *path = cdc_ckpt_path(state, name);
    const char *what = optind < argc ? argv[optind] : "show";
    cdc_ckpt_t ck;
    int rc = CDC_EXIT_OK, r;

    if (!strcmp(what, "show")) {
        r = cdc_ckpt_load(path, &ck, err);
        if (r < 0)
            rc = err->code;
        else if (r == 0)
            printf("pipeline %s: no checkpoint (%s)\n", name, path);
        else
            printf("pipeline %s: %s\n  commit time: %" PRId64
                   " us\n  transactions: %" PRIu64 "\n  file: %s\n",
                   name, cdc_pos_str(&ck.pos), ck.commit_us, ck.txns, path);
    } else if (!strcmp(what, "set")) {
        if (optind + 1 >= argc) {
            free(path);
            return usage_error("offsets set needs a %s",
                               "POSITION (FILE:POS, GTID or LSN)");
        }
        memset(&ck, 0, sizeof(ck));
        if (cdc_pos_parse(argv[optind + 1], &ck.pos, err) ||
            cdc_ckpt_store(path, &ck, err))
            rc = err->code;
        else
            printf("pipeline %s: checkpoint set to %s\n", name,
                   cdc_pos_str(&ck.pos));
    } else if (!strcmp(what, "reset")) {
        if (unlink(path) && errno != ENOENT) {
            cdc_err_set(err, CDC_EXIT_FAIL, 0, "cannot remove %s: %m", path);
            rc = err->code;
        } else
            printf("pipeline %s: checkpoint removed\n", name);
    } else {
        free(path);
        return usage_error("unknown offsets command '%s' (show, set, reset)",
                           what);
    }
    free(path);
    return rc;
}

/* ---- run ------------------------------------------------------------- */

static int cmd_run(cli_t *c, int argc, char **argv, cdc_err_t *err)
{
    const char *sname = cdc_conf_get(c->conf, "source.type", NULL);
    const cdc_source_ops_t *s;
    const cdc_sink_ops_t *k;

    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!sname) {
        cdc_err_set(err, CDC_EXIT_USAGE, 0, "no source given");
        cdc_err_hint(err, "add --source mysql or --source postgres (or "
                          "source.type in the YAML file)");
        return CDC_EXIT_USAGE;
    }
    s = cdc_source_find(sname);
    if (!s) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "unknown source '%s'", sname);
        cdc_err_hint(err, "available sources: %s", cdc_source_names());
        return CDC_EXIT_CONFIG;
    }
    k = pick_sink(c, "stdout", err);
    if (!k)
        return err->code;
    return cdc_pipeline_run(c->conf, s, k, err);
}

int cdc_cli_main(int argc, char **argv)
{
    cli_t c = {0};
    cdc_err_t err = {0};
    const char *cmd = "run";
    char *dl_action = NULL;
    int rc;

    c.cli = cdc_conf_new();
    if (argc > 1 && argv[1][0] != '-') {
        cmd = argv[1];
        argc--;
        argv++;
    }
    if (!strcmp(cmd, "mapping")) {
        /* "mapping test|triggers|reverse ...": the sub-command word is
         * consumed here */
        if (argc < 2 || (strcmp(argv[1], "test") &&
                         strcmp(argv[1], "triggers") &&
                         strcmp(argv[1], "reverse"))) {
            cdc_conf_destroy(c.cli);
            return usage_error("unknown mapping command '%s' (test, "
                               "triggers, reverse)", argc < 2 ? "" : argv[1]);
        }
        cmd = !strcmp(argv[1], "test")       ? "mapping test"
              : !strcmp(argv[1], "triggers") ? "mapping triggers"
                                             : "mapping reverse";
        argc--;
        argv++;
    }
    if (!strcmp(cmd, "dead-letter") && argc >= 2 && argv[1][0] != '-') {
        /* "dead-letter list|retry [OPTIONS]": the action is checked by
         * cdc_dead_letter_cli, options may follow it */
        dl_action = argv[1];
        argc--;
        argv++;
    }
    if (strcmp(cmd, "run") && strcmp(cmd, "decode") &&
        strcmp(cmd, "offsets") && strcmp(cmd, "config") &&
        strcmp(cmd, "validate") && strcmp(cmd, "mapping test") &&
        strcmp(cmd, "mapping triggers") && strcmp(cmd, "mapping reverse") &&
        strcmp(cmd, "backfill") && strcmp(cmd, "status") &&
        strcmp(cmd, "dead-letter")) {
        cdc_conf_destroy(c.cli);
        return usage_error("unknown command '%s' (run, decode, offsets, "
                           "config, validate, mapping test|triggers|reverse, "
                           "backfill, status, dead-letter)", cmd);
    }
    rc = parse_opts(&c, argc, argv);
    if (rc >= 0)
        return finish(&c, rc, NULL);
    if (!strcmp(cmd, "config") && c.reference) {
        cdc_conf_reference(stdout);
        return finish(&c, CDC_EXIT_OK, NULL);
    }
    if (build_conf(&c, &err))
        return finish(&c, err.code, &err);
    /* a ${VAR} left unset is an error for every command but status and
     * offsets, which check only the keys they read (on-call staff lack
     * the database secrets) */
    {
        static const char *const offsets_keys[] = {
            "state.dir", "pipeline.name", "source.type", NULL};
        if (strcmp(cmd, "status") &&
            cdc_conf_need_resolved(c.conf, strcmp(cmd, "offsets")
                                   ? NULL : offsets_keys, &err))
            return finish(&c, err.code, &err);
    }
    if (!strcmp(cmd, "decode"))
        rc = cmd_decode(&c, argc, argv, &err);
    else if (!strcmp(cmd, "offsets"))
        rc = cmd_offsets(&c, argc, argv, &err);
    else if (!strcmp(cmd, "validate") || !strncmp(cmd, "mapping ", 8) ||
             !strcmp(cmd, "backfill") || !strcmp(cmd, "status") ||
             !strcmp(cmd, "dead-letter")) {
        int (*fn)(const cdc_conf_t *, int, char **, cdc_err_t *) =
            !strcmp(cmd, "validate")     ? cdc_map_cli_validate
            : !strcmp(cmd, "mapping test") ? cdc_map_cli_test
            : !strcmp(cmd, "mapping triggers") ? cdc_twsql_cli_triggers
            : !strcmp(cmd, "mapping reverse") ? cdc_twsql_cli_reverse
            : !strcmp(cmd, "backfill")     ? cdc_backfill_cli
            : !strcmp(cmd, "dead-letter")  ? cdc_dead_letter_cli
                                           : cdc_status_cli;
        if (dl_action) {
            /* the action word goes first again */
            argv[--optind] = dl_action;
        }
        if (!fn) {
            cdc_err_set(&err, CDC_EXIT_FAIL, 0,
                        "this build has no '%s' command", cmd);
            rc = CDC_EXIT_FAIL;
        } else
            rc = fn(c.conf, argc - optind, argv + optind, &err);
    } else if (!strcmp(cmd, "config")) {
        cdc_conf_dump(c.conf, stdout);
        rc = CDC_EXIT_OK;
    } else
        rc = cmd_run(&c, argc, argv, &err);
    return finish(&c, rc, &err);
}
