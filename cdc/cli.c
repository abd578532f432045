/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.c - the command line: options, the command words, --help, and the
 * dispatch to the command's handler.
 *
 *   autoglm-cdc [COMMAND [SUB]] [OPTIONS] [OPERANDS]
 *
 * The commands live in cdc/commands/, one file each, and are listed in
 * the command table (cdc/commands/table.c) with the options they accept.
 * Options may stand before and after the command words.  Most options map
 * onto a configuration key (cdc/conf.h), so the same settings can live in
 * the YAML file given with -c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/buf.h"
#include "cdc/cli.h"
#include "cdc/commands/commands.h"
#include "cdc/conf.h"
#include "cdc/envelope.h"
#include "cdc/log.h"
#include "cdc/plugin.h"
#include "cdc/util.h"

/* --help: the usage lines and the command summaries come from the command
 * table, between these texts. */
static const char help_intro[] =
"\n"
"Change-data capture from MySQL/MariaDB binlogs and PostgreSQL WAL into\n"
"JSON envelopes on Kafka, files or stdout.\n"
"\n"
"Commands:\n";

static const char help_options[] =
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
"      --json               status: one JSON document; reconcile: one JSON\n"
"                           object per line               (status.format)\n"
"      --reference          config: every key, its type, default, bounds\n"
"      --start-position P   decode: FILE:POS or POS to start from\n"
"      --events             decode: list events (offset type size)\n"
"      --diff               mapping test: OLD.yaml NEW.yaml [ENVELOPES]: the\n"
"                           rows and fields that change, old -> new\n"
"      --json-columns LIST  decode: db.table.column globs of MariaDB JSON\n"
"                           columns to embed as JSON (decode.json_columns)\n"
"      --max-txns N         stop after N transactions      (run.max_txns)\n"
"      --idle-exit MS       stop after MS ms without changes (run.idle_exit_ms)\n"
"      --target T           reconcile: the target (wide table) to check\n"
"      --repair             reconcile: apply the recomputed values\n"
"      --partitions N       reconcile: read the sources N times, keeping the\n"
"                           rows of 1/N of the keys in memory each time\n"
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
"Exit status: 0 ok, 1 failure (reconcile: drift found), 2 usage, 3 cannot\n"
"resume without data loss (binlog purged, slot dropped: run a backfill),\n"
"65 undecodable input, 69 source or sink unavailable, 75 temporary (lock\n"
"held), 78 bad config.\n"
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
 * The options.  key: the configuration key the value sets; a switch (arg
 * 0) sets it to "true", or to the value given as "key=value"; list: each
 * use appends to a comma list.  An own option without a key is handed to
 * the command's handler (cdc_cmd_ctx_t.opts); the others without a key
 * are handled by name in apply_opt.
 */
enum {
    OPT_ANY,  /* every command */
    OPT_PIPE, /* the commands that read the pipeline (CDC_CMD_PIPELINE) */
    OPT_OWN,  /* the commands that list it in their row's options */
};

typedef struct cli_opt {
    const char *name;
    char letter;     /* short form, or 0 */
    char arg;        /* 1: takes a value */
    char scope;      /* OPT_* */
    char list;       /* 1: repeatable, accumulates a comma list in key */
    const char *key;
} cli_opt_t;

static const cli_opt_t cli_opts[] = {
    {"config", 'c', 1, OPT_PIPE, 0, NULL},
    {"source", 0, 1, OPT_PIPE, 0, "source.type"},
    {"sink", 0, 1, OPT_PIPE, 0, "sink.type"},
    {"format", 0, 1, OPT_PIPE, 0, "format"},
    {"application-id", 0, 1, OPT_PIPE, 0, "application_id"},
    {"output", 'o', 1, OPT_PIPE, 0, "output"},
    {"mysql-dsn", 0, 1, OPT_PIPE, 0, "mysql.dsn"},
    {"server-id", 0, 1, OPT_PIPE, 0, "mysql.server_id"},
    {"from", 0, 1, OPT_PIPE, 0, NULL},
    {"postgres-dsn", 0, 1, OPT_PIPE, 0, "postgres.dsn"},
    {"kafka-brokers", 0, 1, OPT_PIPE, 0, "kafka.brokers"},
    {"topic", 0, 1, OPT_PIPE, 0, "kafka.topic"},
    {"include", 0, 1, OPT_PIPE, 0, "filter.include"},
    {"exclude", 0, 1, OPT_PIPE, 0, "filter.exclude"},
    {"pipeline", 0, 1, OPT_PIPE, 0, "pipeline.name"},
    {"state-dir", 0, 1, OPT_PIPE, 0, "state.dir"},
    {"mapping", 0, 1, OPT_PIPE, 0, "mapping.files"},
    {"set", 'X', 1, OPT_PIPE, 0, NULL},
    {"table", 0, 1, OPT_OWN, 1, "backfill.tables"},
    {"where", 0, 1, OPT_OWN, 0, "backfill.where"},
    {"chunk-size", 0, 1, OPT_OWN, 0, "backfill.chunk_size"},
    {"max-rows-per-sec", 0, 1, OPT_OWN, 0, "backfill.max_rows_per_sec"},
    {"parallel", 0, 1, OPT_OWN, 0, "backfill.parallel"},
    {"http", 0, 1, OPT_OWN, 0, "http.listen"},
    {"url", 0, 1, OPT_OWN, 0, "status.url"},
    {"json", 0, 0, OPT_OWN, 0, "status.format=json"},
    {"reference", 0, 0, OPT_OWN, 0, NULL},
    {"start-position", 0, 1, OPT_OWN, 0, NULL},
    {"events", 0, 0, OPT_OWN, 0, NULL},
    {"diff", 0, 0, OPT_OWN, 0, NULL},
    {"json-columns", 0, 1, OPT_OWN, 0, "decode.json_columns"},
    {"max-txns", 0, 1, OPT_OWN, 0, "run.max_txns"},
    {"idle-exit", 0, 1, OPT_OWN, 0, "run.idle_exit_ms"},
    {"target", 0, 1, OPT_OWN, 0, NULL},
    {"repair", 0, 0, OPT_OWN, 0, NULL},
    {"partitions", 0, 1, OPT_OWN, 0, NULL},
    {"log-format", 0, 1, OPT_ANY, 0, NULL},
    {"verbose", 'v', 0, OPT_ANY, 0, NULL},
    {"quiet", 'q', 0, OPT_ANY, 0, NULL},
    {"help", 'h', 0, OPT_ANY, 0, NULL},
    {"version", 'V', 0, OPT_ANY, 0, NULL},
};
#define N_OPTS (sizeof(cli_opts) / sizeof(cli_opts[0]))

typedef struct cli {
    cdc_conf_t *conf;    /* defaults + file + env + cli (final) */
    cdc_conf_t *cli;     /* command-line settings, applied last */
    cdc_conf_t *opts;    /* the command's own options without a key */
    const char *config_path;
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

int cdc_cmd_usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "autoglm-cdc: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'autoglm-cdc --help' for more information.\n");
    return CDC_EXIT_USAGE;
}
#define usage_error cdc_cmd_usage_error

int cdc_cli_option_known(const char *name)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (!strcmp(cli_opts[i].name, name))
            return 1;
    return 0;
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
    } else if (o->key && o->list) {
        /* repeatable: accumulate a comma list */
        const char *old = cdc_conf_get(c->cli, o->key, NULL);
        cdc_buf_t b = CDC_BUF_INIT;
        cdc_buf_printf(&b, "%s%s%s", old ? old : "", old ? "," : "", val);
        set_cli(c, o->key, b.p);
        cdc_buf_free(&b);
    } else if (o->key) {
        set_cli(c, o->key, o->arg ? val : "true");
    } else if (o->scope == OPT_OWN) {
        /* the command reads it (--start-position, --events, --reference) */
        cdc_conf_set(c->opts, o->name, o->arg ? val : "true", "cli");
    } else if (!strcmp(o->name, "config")) {
        c->config_path = val;
    } else if (!strcmp(o->name, "from")) {
        set_cli(c, "mysql.from", val);
        set_cli(c, "postgres.from", val);
    } else if (!strcmp(o->name, "set")) {
        char *eq = strchr(val, '=');
        if (!eq || eq == val)
            return usage_error("-X needs KEY=VALUE, got '%s'", val);
        *eq = '\0';
        set_cli(c, val, eq + 1);
        *eq = '=';
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
    if (!src && strchr(v, ','))
        cdc_err_hint(err, "one sink per sink.type; for several use the list "
                          "key sinks, e.g. -X sinks=%s (available: %s)",
                     v, cdc_sink_names());
    else
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


const cdc_sink_ops_t *cdc_cmd_sink(const cdc_conf_t *conf, const char *def,
                                   cdc_err_t *err)
{
    const char *name = cdc_conf_get(conf, "sink.type", def);
    const cdc_sink_ops_t *k = cdc_sink_find(name);

    if (!k) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "unknown sink '%s'", name);
        cdc_err_hint(err, "available sinks: %s", cdc_sink_names());
    }
    return k;
}

/* ---- dispatch ---------------------------------------------------------- */

/* The command the words name ("run" when there are none); *used is the
 * number of command words.  NULL after a usage error was printed. */
static const cdc_command_t *find_cmd(const argv_split_t *sp, int *used)
{
    const char *w = sp->nwords ? sp->words[0] : "run";
    const char *sub = sp->nwords > 1 ? sp->words[1] : NULL;
    int known = 0;
    cdc_buf_t subs = CDC_BUF_INIT;

    for (size_t i = 0; i < cdc_ncommands; i++) {
        const cdc_command_t *cmd = &cdc_commands[i];
        if (strcmp(cmd->word, w))
            continue;
        known = 1;
        if (!cmd->sub) {
            *used = sp->nwords ? 1 : 0;
            cdc_buf_free(&subs);
            return cmd;
        }
        if (sub && !strcmp(cmd->sub, sub)) {
            *used = 2;
            cdc_buf_free(&subs);
            return cmd;
        }
        cdc_buf_printf(&subs, "%s%s", subs.len ? ", " : "", cmd->sub);
    }
    if (known && !sub) {
        usage_error("%s needs a command (%s)", w, subs.p);
    } else if (known) {
        usage_error("unknown %s command '%s' (%s)", w, sub, subs.p);
    } else {
        for (size_t i = 0; i < cdc_ncommands; i++)
            if (!i || strcmp(cdc_commands[i].word, cdc_commands[i - 1].word))
                cdc_buf_printf(&subs, "%s%s", i ? ", " : "",
                               cdc_commands[i].word);
        usage_error("unknown command '%s' (%s)", w, subs.p);
    }
    cdc_buf_free(&subs);
    return NULL;
}

/* "word" or "word sub" of a command, appended to b. */
static void cmd_name(const cdc_command_t *cmd, cdc_buf_t *b)
{
    cdc_buf_printf(b, "%s%s%s", cmd->word, cmd->sub ? " " : "",
                   cmd->sub ? cmd->sub : "");
}

/* 1 if the command accepts the option (its row in the command table). */
static int accepts(const cdc_command_t *cmd, const cli_opt_t *o)
{
    if (o->scope == OPT_ANY)
        return 1;
    if (o->scope == OPT_PIPE)
        return (cmd->flags & CDC_CMD_PIPELINE) != 0;
    for (const char *const *n = cmd->options; n && *n; n++)
        if (!strcmp(*n, o->name))
            return 1;
    return 0;
}

static void print_help(void)
{
    for (size_t i = 0; i < cdc_ncommands; i++)
        printf("%s%s\n", i ? "       autoglm-cdc " : "Usage: autoglm-cdc ",
               cdc_commands[i].synopsis);
    fputs(help_intro, stdout);
    for (size_t i = 0; i < cdc_ncommands; i++)
        fputs(cdc_commands[i].summary, stdout);
    fputs(help_options, stdout);
}

/* --help and --version, wherever they stand, before anything else;
 * -1 when neither was given. */
static int help_or_version(const argv_split_t *sp)
{
    for (int i = 0; i < sp->ngiven; i++) {
        const char *n = cli_opts[sp->given[i].opt].name;
        if (!strcmp(n, "help")) {
            print_help();
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
                      const cdc_command_t *cmd)
{
    int rc = -1;

    for (int i = 0; rc < 0 && i < sp->ngiven; i++) {
        const cli_opt_t *o = &cli_opts[sp->given[i].opt];
        cdc_buf_t here = CDC_BUF_INIT, where = CDC_BUF_INIT;

        if (accepts(cmd, o)) {
            rc = apply_opt(c, o, sp->given[i].val);
            continue;
        }
        cmd_name(cmd, &here);
        for (size_t k = 0; k < cdc_ncommands; k++)
            if (accepts(&cdc_commands[k], o)) {
                if (where.len)
                    cdc_buf_puts(&where, ", ");
                cmd_name(&cdc_commands[k], &where);
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

/* A ${VAR} left unset is an error, in every key or in the keys the
 * command names (cdc_command_t.needs), unless it checks them itself. */
static int need_resolved(const cli_t *c, const cdc_command_t *cmd,
                         cdc_err_t *err)
{
    if (cmd->flags & CDC_CMD_OWN_UNSET)
        return 0;
    return cdc_conf_need_resolved(c->conf, cmd->needs, err);
}

int cdc_cli_main(int argc, char **argv)
{
    cli_t c = {0};
    cdc_err_t err = {0};
    argv_split_t sp;
    const cdc_command_t *cmd = NULL;
    int rc, used = 0;

    c.cli = cdc_conf_new();
    c.opts = cdc_conf_new();
    rc = split_argv(argc, argv, &sp);
    if (rc < 0)
        rc = help_or_version(&sp);
    if (rc < 0 && !(cmd = find_cmd(&sp, &used)))
        rc = CDC_EXIT_USAGE;
    if (rc < 0)
        rc = apply_opts(&c, &sp, cmd);
    if (rc < 0) {
        cdc_cmd_ctx_t cx = {NULL, c.opts};
        if (cmd->bare_option && cdc_conf_get(c.opts, cmd->bare_option, NULL))
            rc = cmd->handler(&cx, sp.nwords - used, sp.words + used, &err);
        else if (build_conf(&c, &err) || need_resolved(&c, cmd, &err))
            rc = err.code;
        else {
            cx.conf = c.conf;
            rc = cmd->handler(&cx, sp.nwords - used, sp.words + used, &err);
        }
        if (rc != CDC_EXIT_OK && err.msg[0])
            cdc_err_print(&err);
    }
    free(sp.given);
    free(sp.words);
    cdc_conf_destroy(c.conf);
    cdc_conf_destroy(c.cli);
    cdc_conf_destroy(c.opts);
    return check_stdout(rc);
}
