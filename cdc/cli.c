/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.c - sub-commands and options.
 *
 *   autoglm-cdc [run] [OPTIONS]            stream changes (the daemon)
 *   autoglm-cdc decode [OPTIONS] FILE...   binlog files -> envelopes
 *   autoglm-cdc offsets show|set POS|reset [OPTIONS]
 *   autoglm-cdc config [OPTIONS]           print the effective config
 *
 * (and the commands of other components, see cli_cmds).  Options may
 * stand before and after the command words.  Most options map onto a
 * configuration key (cdc/conf.h), so the same settings can live in the
 * YAML file given with -c.
 */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
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
"       autoglm-cdc validate [-c pipeline.yaml] [FILE]\n"
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
"      --from WHERE         now | beginning | FILE:POS | GTID | LSN\n"
"                           (mysql.from, postgres.from)\n"
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
"      --table T            backfill: table to snapshot, repeatable; quote\n"
"                           odd names: '\"my db\".\"order items\"'\n"
"                           (backfill.tables)\n"
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
"      --log-format F       text (default) | json          (log.format)\n"
"  -v, --verbose            debug logging\n"
"  -q, --quiet              errors only\n"
"  -h, --help               this help\n"
"  -V, --version            print the version\n"
"Options may stand before or after the command words; \"--\" ends them.\n"
"An option that does not apply to the command is a usage error.\n"
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
"  autoglm-cdc decode --sink file -o changes.jsonl.zst mariadb-bin.00000*\n"
"\n"
"Signals: SIGTERM, SIGINT and SIGHUP stop run with a final checkpoint\n"
"(exit 0) and backfill after its chunk in flight (exit 75, resumable).\n"
"Manual: man autoglm-cdc.\n"
"Report bugs to: " PACKAGE_BUGREPORT "\n";

/*
 * Commands.  Options may come before and after the command words; each
 * option names the commands it applies to, and one given to a command it
 * cannot apply to is a usage error (exit 2), never silently ignored.
 */
enum {
    CMD_RUN = 1u << 0,
    CMD_DECODE = 1u << 1,
    CMD_OFFSETS = 1u << 2,
    CMD_CONFIG = 1u << 3,
    CMD_VALIDATE = 1u << 4,
    CMD_MAP_TEST = 1u << 5,
    CMD_MAP_TRIGGERS = 1u << 6,
    CMD_MAP_REVERSE = 1u << 7,
    CMD_BACKFILL = 1u << 8,
    CMD_STATUS = 1u << 9,
    CMD_DEAD_LETTER = 1u << 10,
};
#define CMD_ANY 0xffffffffu
/* the commands that read the pipeline configuration: all but mapping test */
#define CMD_PIPE (CMD_ANY & ~(unsigned)CMD_MAP_TEST)

/*
 * The options.  key: the configuration key the value sets; a switch (arg
 * 0) sets it to "true", or to the value given as "key=value"; NULL:
 * handled by name in apply_opt.  cmds: where it applies; `config` prints
 * the effective configuration, so every key-setting option applies to it.
 */
typedef struct cli_opt {
    const char *name;
    char letter;     /* short form, or 0 */
    char arg;        /* 1: takes a value */
    const char *key;
    unsigned cmds;
} cli_opt_t;

static const cli_opt_t cli_opts[] = {
    {"config", 'c', 1, NULL, CMD_PIPE},
    {"source", 0, 1, "source.type", CMD_PIPE},
    {"sink", 0, 1, "sink.type", CMD_PIPE},
    {"format", 0, 1, "format", CMD_PIPE},
    {"application-id", 0, 1, "application_id", CMD_PIPE},
    {"output", 'o', 1, "output", CMD_PIPE},
    {"mysql-dsn", 0, 1, "mysql.dsn", CMD_PIPE},
    {"server-id", 0, 1, "mysql.server_id", CMD_PIPE},
    {"from", 0, 1, NULL, CMD_PIPE},
    {"postgres-dsn", 0, 1, "postgres.dsn", CMD_PIPE},
    {"kafka-brokers", 0, 1, "kafka.brokers", CMD_PIPE},
    {"topic", 0, 1, "kafka.topic", CMD_PIPE},
    {"include", 0, 1, "filter.include", CMD_PIPE},
    {"exclude", 0, 1, "filter.exclude", CMD_PIPE},
    {"pipeline", 0, 1, "pipeline.name", CMD_PIPE},
    {"state-dir", 0, 1, "state.dir", CMD_PIPE},
    {"mapping", 0, 1, "mapping.files", CMD_PIPE},
    {"set", 'X', 1, NULL, CMD_PIPE},
    {"table", 0, 1, NULL, CMD_BACKFILL | CMD_CONFIG},
    {"where", 0, 1, "backfill.where", CMD_BACKFILL | CMD_CONFIG},
    {"chunk-size", 0, 1, "backfill.chunk_size", CMD_BACKFILL | CMD_CONFIG},
    {"max-rows-per-sec", 0, 1, "backfill.max_rows_per_sec",
     CMD_BACKFILL | CMD_CONFIG},
    {"parallel", 0, 1, "backfill.parallel", CMD_BACKFILL | CMD_CONFIG},
    {"http", 0, 1, "http.listen", CMD_RUN | CMD_STATUS | CMD_CONFIG},
    {"url", 0, 1, "status.url", CMD_STATUS | CMD_CONFIG},
    {"json", 0, 0, "status.format=json", CMD_STATUS | CMD_CONFIG},
    {"reference", 0, 0, NULL, CMD_CONFIG},
    {"start-position", 0, 1, NULL, CMD_DECODE},
    {"events", 0, 0, NULL, CMD_DECODE},
    {"json-columns", 0, 1, "decode.json_columns", CMD_DECODE | CMD_CONFIG},
    {"max-txns", 0, 1, "run.max_txns", CMD_RUN | CMD_CONFIG},
    {"idle-exit", 0, 1, "run.idle_exit_ms", CMD_RUN | CMD_CONFIG},
    {"log-format", 0, 1, NULL, CMD_ANY},
    {"verbose", 'v', 0, NULL, CMD_ANY},
    {"quiet", 'q', 0, NULL, CMD_ANY},
    {"help", 'h', 0, NULL, CMD_ANY},
    {"version", 'V', 0, NULL, CMD_ANY},
};
#define N_OPTS (sizeof(cli_opts) / sizeof(cli_opts[0]))

typedef struct cli {
    cdc_conf_t *conf;    /* defaults + file + env + cli (final) */
    cdc_conf_t *cli;     /* command-line settings, applied last */
    const char *config_path;
    const char *start_position;
    int events;
    int reference; /* config --reference */
} cli_t;

/* One option as given: which one and its value, applied once the command
 * is known. */
typedef struct given {
    int opt;           /* index into cli_opts */
    char *val;
} given_t;

/* The command line split into options and words, in order. */
typedef struct argv_split {
    given_t *given;
    int ngiven;
    char **words;      /* non-option words: command words, then operands */
    int nwords;
} argv_split_t;

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "autoglm-cdc: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'autoglm-cdc --help' for more information.\n");
    return CDC_EXIT_USAGE;
}

static void set_cli(cli_t *c, const char *key, const char *val)
{
    cdc_conf_set(c->cli, key, val, "cli");
}

/*
 * Split argv into options and words with getopt_long in "return in order"
 * mode ('-' first), so options are found on both sides of the command
 * words whatever POSIXLY_CORRECT says; "--" ends the options.  Returns -1,
 * or the exit code of a syntax error (getopt has printed it).
 */
static int split_argv(int argc, char **argv, argv_split_t *sp)
{
    struct option lo[N_OPTS + 1];
    char shorts[2 + 2 * N_OPTS + 1];
    size_t ns = 0;
    int opt, idx;

    shorts[ns++] = '-';
    for (size_t i = 0; i < N_OPTS; i++) {
        lo[i] = (struct option){cli_opts[i].name,
                                cli_opts[i].arg ? required_argument
                                                : no_argument,
                                NULL, 256 + (int)i};
        if (cli_opts[i].letter) {
            shorts[ns++] = cli_opts[i].letter;
            if (cli_opts[i].arg)
                shorts[ns++] = ':';
        }
    }
    shorts[ns] = '\0';
    lo[N_OPTS] = (struct option){NULL, 0, NULL, 0};
    sp->given = cdc_xmalloc((size_t)argc * sizeof(*sp->given));
    sp->words = cdc_xmalloc((size_t)argc * sizeof(*sp->words));
    sp->ngiven = sp->nwords = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        if (opt == 1) {
            sp->words[sp->nwords++] = optarg;
            continue;
        }
        if (opt == '?' || opt == ':') {
            fprintf(stderr, "Try 'autoglm-cdc --help' for more "
                            "information.\n");
            return CDC_EXIT_USAGE;
        }
        idx = opt - 256;
        if (opt < 256)
            for (idx = 0; cli_opts[idx].letter != opt; idx++)
                ;
        sp->given[sp->ngiven++] = (given_t){idx, optarg};
    }
    while (optind < argc) /* after "--" */
        sp->words[sp->nwords++] = argv[optind++];
    return -1;
}

/* Apply one option; returns -1 to continue, or an exit code. */
static int apply_opt(cli_t *c, const cli_opt_t *o, char *val)
{
    const char *fixed = o->key ? strchr(o->key, '=') : NULL;

    if (fixed) {
        /* a switch that sets a fixed value: "status.format=json" */
        char k[128];
        snprintf(k, sizeof(k), "%.*s", (int)(fixed - o->key), o->key);
        set_cli(c, k, fixed + 1);
    } else if (o->key) {
        set_cli(c, o->key, o->arg ? val : "true");
    } else if (!strcmp(o->name, "config")) {
        c->config_path = val;
    } else if (!strcmp(o->name, "from")) {
        set_cli(c, "mysql.from", val);
        set_cli(c, "postgres.from", val);
    } else if (!strcmp(o->name, "table")) {
        /* repeatable: accumulate a comma list */
        const char *old = cdc_conf_get(c->cli, "backfill.tables", NULL);
        cdc_buf_t b = CDC_BUF_INIT;
        cdc_buf_printf(&b, "%s%s%s", old ? old : "", old ? "," : "", val);
        set_cli(c, "backfill.tables", b.p);
        cdc_buf_free(&b);
    } else if (!strcmp(o->name, "set")) {
        char *eq = strchr(val, '=');
        if (!eq || eq == val)
            return usage_error("-X needs KEY=VALUE, got '%s'", val);
        *eq = '\0';
        set_cli(c, val, eq + 1);
        *eq = '=';
    } else if (!strcmp(o->name, "start-position")) {
        c->start_position = val;
    } else if (!strcmp(o->name, "events")) {
        c->events = 1;
    } else if (!strcmp(o->name, "reference")) {
        c->reference = 1;
    } else if (!strcmp(o->name, "log-format")) {
        if (cdc_log_set_format(val))
            return usage_error("unknown log format '%s' (use text or json)",
                               val);
    } else if (!strcmp(o->name, "verbose")) {
        cdc_log_set_level(CDC_LOG_DEBUG);
    } else if (!strcmp(o->name, "quiet")) {
        cdc_log_set_level(CDC_LOG_ERROR);
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

    if (argc < 1)
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

static void print_ckpt(const char *name, const char *path, const cdc_ckpt_t *ck)
{
    cdc_buf_t t = CDC_BUF_INIT;

    if (ck->commit_us)
        cdc_json_iso_ms(&t, ck->commit_us);
    else
        cdc_buf_puts(&t, "unknown (set by hand)");
    printf("pipeline %s: %s\n  commit time: %s\n  transactions: %" PRIu64
           "\n  file: %s\n", name, cdc_pos_str(&ck->pos), t.p, ck->txns,
           path);
    cdc_buf_free(&t);
}

/* offsets show | set POSITION | reset: every form names the file it
 * works on, so a wrong -c or --pipeline is visible. */
static int cmd_offsets(cli_t *c, int argc, char **argv, cdc_err_t *err)
{
    const char *name = cdc_conf_pipeline(c->conf);
    const char *state = cdc_conf_get(c->conf, "state.dir", "state");
    const char *what = argc > 0 ? argv[0] : "show";
    int nargs = !strcmp(what, "set") ? 2 : 1;
    char *path;
    cdc_ckpt_t ck;
    int rc = CDC_EXIT_OK, r;

    if (strcmp(what, "show") && strcmp(what, "set") && strcmp(what, "reset"))
        return usage_error("unknown offsets command '%s' (show, set, reset)",
                           what);
    if (argc < nargs)
        return usage_error("offsets set needs a %s",
                           "POSITION (FILE:POS, GTID or LSN)");
    if (argc > nargs)
        return usage_error("offsets: unexpected argument '%s'", argv[nargs]);
    path = cdc_ckpt_path(state, name);
    if (!strcmp(what, "show")) {
        r = cdc_ckpt_load(path, &ck, err);
        if (r < 0)
            rc = err->code;
        else if (r == 0)
            printf("pipeline %s: no checkpoint (%s)\n", name, path);
        else
            print_ckpt(name, path, &ck);
    } else if (!strcmp(what, "set")) {
        memset(&ck, 0, sizeof(ck));
        if (cdc_pos_parse(argv[1], &ck.pos, err) ||
            cdc_ckpt_store(path, &ck, err))
            rc = err->code;
        else
            printf("pipeline %s: checkpoint set to %s (%s)\n", name,
                   cdc_pos_str(&ck.pos), path);
    } else if (unlink(path) == 0) {
        printf("pipeline %s: checkpoint %s removed\n", name, path);
    } else if (errno == ENOENT) {
        printf("pipeline %s: no checkpoint to remove (%s)\n", name, path);
    } else {
        cdc_err_set(err, CDC_EXIT_FAIL, 0, "cannot remove %s: %m", path);
        rc = err->code;
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

    if (argc > 0)
        return usage_error("unexpected argument '%s'", argv[0]);
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

static int cmd_config(cli_t *c, int argc, char **argv, cdc_err_t *err)
{
    (void)err;
    if (argc > 0)
        return usage_error("config: unexpected argument '%s'", argv[0]);
    cdc_conf_dump(c->conf, stdout);
    return CDC_EXIT_OK;
}

/* ---- dispatch ---------------------------------------------------------- */

typedef int (*ext_fn_t)(const cdc_conf_t *conf, int argc, char **argv,
                        cdc_err_t *err);

/* word [sub]: run by fn, or by ext, which another component provides
 * (a weak reference: NULL when that component is not built in).  A new
 * command is a CMD_ bit, a row here and a synopsis line in usage_text; a
 * command that reads the pipeline gets the pipeline options (CMD_PIPE),
 * its own options name it in cli_opts. */
static const struct cmd_def {
    const char *word, *sub;
    unsigned id;
    int (*fn)(cli_t *c, int argc, char **argv, cdc_err_t *err);
    ext_fn_t ext;
} cli_cmds[] = {
    {"run", NULL, CMD_RUN, cmd_run, NULL},
    {"decode", NULL, CMD_DECODE, cmd_decode, NULL},
    {"offsets", NULL, CMD_OFFSETS, cmd_offsets, NULL},
    {"config", NULL, CMD_CONFIG, cmd_config, NULL},
    {"validate", NULL, CMD_VALIDATE, NULL, cdc_map_cli_validate},
    {"mapping", "test", CMD_MAP_TEST, NULL, cdc_map_cli_test},
    {"mapping", "triggers", CMD_MAP_TRIGGERS, NULL, cdc_twsql_cli_triggers},
    {"mapping", "reverse", CMD_MAP_REVERSE, NULL, cdc_twsql_cli_reverse},
    {"backfill", NULL, CMD_BACKFILL, NULL, cdc_backfill_cli},
    {"status", NULL, CMD_STATUS, NULL, cdc_status_cli},
    /* dead-letter list|retry: the action word is cdc_dead_letter_cli's */
    {"dead-letter", NULL, CMD_DEAD_LETTER, NULL, cdc_dead_letter_cli},
};
#define N_CMDS (sizeof(cli_cmds) / sizeof(cli_cmds[0]))

/* The command the words name ("run" when there are none); *used is the
 * number of command words.  NULL after a usage error was printed. */
static const struct cmd_def *find_cmd(const argv_split_t *sp, int *used)
{
    const char *w = sp->nwords ? sp->words[0] : "run";
    const char *sub = sp->nwords > 1 ? sp->words[1] : NULL;
    int known = 0;
    cdc_buf_t subs = CDC_BUF_INIT;

    for (size_t i = 0; i < N_CMDS; i++) {
        if (strcmp(cli_cmds[i].word, w))
            continue;
        known = 1;
        if (!cli_cmds[i].sub) {
            *used = sp->nwords ? 1 : 0;
            cdc_buf_free(&subs);
            return &cli_cmds[i];
        }
        if (sub && !strcmp(cli_cmds[i].sub, sub)) {
            *used = 2;
            cdc_buf_free(&subs);
            return &cli_cmds[i];
        }
        cdc_buf_printf(&subs, "%s%s", subs.len ? ", " : "", cli_cmds[i].sub);
    }
    if (known && !sub) {
        usage_error("%s needs a command (%s)", w, subs.p);
    } else if (known) {
        usage_error("unknown %s command '%s' (%s)", w, sub, subs.p);
    } else {
        for (size_t i = 0; i < N_CMDS; i++)
            if (!i || strcmp(cli_cmds[i].word, cli_cmds[i - 1].word))
                cdc_buf_printf(&subs, "%s%s", i ? ", " : "",
                               cli_cmds[i].word);
        usage_error("unknown command '%s' (%s)", w, subs.p);
    }
    cdc_buf_free(&subs);
    return NULL;
}

/* "word" or "word sub" of a command, appended to b. */
static void cmd_name(const struct cmd_def *cmd, cdc_buf_t *b)
{
    cdc_buf_printf(b, "%s%s%s", cmd->word, cmd->sub ? " " : "",
                   cmd->sub ? cmd->sub : "");
}

/* --help and --version, wherever they stand, before anything else;
 * -1 when neither was given. */
static int help_or_version(const argv_split_t *sp)
{
    for (int i = 0; i < sp->ngiven; i++) {
        const char *n = cli_opts[sp->given[i].opt].name;
        if (!strcmp(n, "help")) {
            fputs(usage_text, stdout);
            return CDC_EXIT_OK;
        }
        if (!strcmp(n, "version")) {
            printf("autoglm-cdc %s\n", PACKAGE_VERSION);
            return CDC_EXIT_OK;
        }
    }
    return -1;
}

/* Apply the options, in order, once the command is known; one that cannot
 * apply to it is a usage error naming the commands it applies to. */
static int apply_opts(cli_t *c, const argv_split_t *sp,
                      const struct cmd_def *cmd)
{
    int rc = -1;

    for (int i = 0; rc < 0 && i < sp->ngiven; i++) {
        const cli_opt_t *o = &cli_opts[sp->given[i].opt];
        cdc_buf_t here = CDC_BUF_INIT, where = CDC_BUF_INIT;

        if (o->cmds & cmd->id) {
            rc = apply_opt(c, o, sp->given[i].val);
            continue;
        }
        cmd_name(cmd, &here);
        for (size_t k = 0; k < N_CMDS; k++)
            if (o->cmds & cli_cmds[k].id) {
                if (where.len)
                    cdc_buf_puts(&where, ", ");
                cmd_name(&cli_cmds[k], &where);
            }
        rc = usage_error("option --%s does not apply to '%s' (only to: %s)",
                         o->name, here.p, where.p);
        cdc_buf_free(&here);
        cdc_buf_free(&where);
    }
    return rc;
}

/* Standard output is checked once at the end: output that could not be
 * written (a full disk, a closed pipe) is a failure, not success. */
static int check_stdout(int rc)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return rc;
    if (errno)
        fprintf(stderr, "autoglm-cdc: error writing to standard output: "
                        "%s\n", strerror(errno));
    else
        fprintf(stderr, "autoglm-cdc: error writing to standard output\n");
    return rc == CDC_EXIT_OK ? CDC_EXIT_FAIL : rc;
}

/* A ${VAR} left unset is an error for every command but status and
 * offsets, which check only the keys they read (on-call staff lack the
 * database secrets). */
static int need_resolved(const cli_t *c, const struct cmd_def *cmd,
                         cdc_err_t *err)
{
    static const char *const offsets_keys[] = {"state.dir", "pipeline.name",
                                               "source.type", NULL};

    if (cmd->id == CMD_STATUS)
        return 0;
    return cdc_conf_need_resolved(
        c->conf, cmd->id == CMD_OFFSETS ? offsets_keys : NULL, err);
}

int cdc_cli_main(int argc, char **argv)
{
    cli_t c = {0};
    cdc_err_t err = {0};
    argv_split_t sp;
    const struct cmd_def *cmd = NULL;
    int rc, used = 0;

    c.cli = cdc_conf_new();
    rc = split_argv(argc, argv, &sp);
    if (rc < 0)
        rc = help_or_version(&sp);
    if (rc < 0 && !(cmd = find_cmd(&sp, &used)))
        rc = CDC_EXIT_USAGE;
    if (rc < 0)
        rc = apply_opts(&c, &sp, cmd);
    if (rc < 0 && cmd->id == CMD_CONFIG && c.reference) {
        cdc_conf_reference(stdout); /* the declared keys, no pipeline */
        rc = CDC_EXIT_OK;
    }
    if (rc >= 0)
        goto out;
    if (build_conf(&c, &err) || need_resolved(&c, cmd, &err)) {
        rc = err.code;
    } else if (cmd->fn) {
        rc = cmd->fn(&c, sp.nwords - used, sp.words + used, &err);
    } else if (cmd->ext) {
        rc = cmd->ext(c.conf, sp.nwords - used, sp.words + used, &err);
    } else {
        cdc_buf_t b = CDC_BUF_INIT;
        cmd_name(cmd, &b);
        cdc_err_set(&err, CDC_EXIT_FAIL, 0, "this build has no '%s' command",
                    b.p);
        rc = CDC_EXIT_FAIL;
        cdc_buf_free(&b);
    }
    if (rc != CDC_EXIT_OK && err.msg[0])
        cdc_err_print(&err);
out:
    free(sp.given);
    free(sp.words);
    cdc_conf_destroy(c.conf);
    cdc_conf_destroy(c.cli);
    return check_stdout(rc);
}
