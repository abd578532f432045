/* SPDX-License-Identifier: Apache-2.0 */
/*
 * table.c - the command table: every command of autoglm-cdc, its usage
 * line, its lines in --help, its handler and the options it accepts.
 *
 * A new command: a file in cdc/commands/ with its handler (cdc_cmd_fn,
 * declared in commands.h) and one row here.  The order of the rows is the
 * order of --help and of the lists in usage errors.
 */
#include "cdc/commands/commands.h"
#include "cdc/backfill.h"
#include "mappings/map.h"
#include "mappings/twoway_sql.h"

/* Handlers whose bodies take the configuration alone (tests call them
 * that way) */
#define CONF_ONLY(name, body)                                               \
    int name(const cdc_cmd_ctx_t *cx, int argc, char **argv,               \
             cdc_err_t *err)                                               \
    {                                                                      \
        return body(cx->conf, argc, argv, err);                            \
    }
CONF_ONLY(cdc_cmd_validate, cdc_map_cli_validate)
CONF_ONLY(cdc_cmd_mapping_triggers, cdc_twsql_cli_triggers)
CONF_ONLY(cdc_cmd_mapping_reverse, cdc_twsql_cli_reverse)
CONF_ONLY(cdc_cmd_backfill, cdc_backfill_cli)
CONF_ONLY(cdc_cmd_status, cdc_status_cli)
CONF_ONLY(cdc_cmd_dead_letter, cdc_dead_letter_cli)

#define OPTS(...) ((const char *const[]){__VA_ARGS__, NULL})

const cdc_command_t cdc_commands[] = {
    {"run", NULL, "[run] [OPTIONS]",
     "  run (default)   stream committed changes from --source to --sink,\n"
     "                  resuming from the checkpoint in --state-dir\n",
     cdc_cmd_run, CDC_CMD_PIPELINE, OPTS("http", "max-txns", "idle-exit"),
     NULL, NULL},
    {"decode", NULL, "decode [OPTIONS] FILE...",
     "  decode FILE...  decode binlog files to envelopes (like mariadb-binlog,\n"
     "                  but JSON); --events lists the events instead\n",
     cdc_cmd_decode, CDC_CMD_PIPELINE,
     OPTS("start-position", "events", "json-columns"), NULL, NULL},
    {"offsets", NULL, "offsets show|set POSITION|reset [OPTIONS]",
     "  offsets show    print the stored checkpoint of the pipeline\n"
     "  offsets set POS store POS (FILE:POS, GTID state or LSN X/Y)\n"
     "  offsets reset   delete the checkpoint (next run starts at --from)\n",
     cdc_cmd_offsets, CDC_CMD_PIPELINE, NULL,
     /* on-call staff may lack the database secrets */
     OPTS("state.dir", "pipeline.name", "source.type"), NULL},
    {"config", NULL, "config [OPTIONS] | config --reference",
     "  config          print the effective configuration (secrets masked);\n"
     "                  --reference prints every key (docs/CONFIG.md)\n",
     cdc_cmd_config, CDC_CMD_PIPELINE,
     /* it prints the effective configuration: every option that sets a
      * key applies */
     OPTS("table", "where", "chunk-size", "max-rows-per-sec", "parallel",
          "http", "url", "json", "reference", "json-columns", "max-txns",
          "idle-exit"),
     NULL, "reference"},
    {"validate", NULL, "validate [-c pipeline.yaml] [FILE]",
     "  validate        check mappings against the live schemas; print what\n"
     "                  each mapping writes\n",
     cdc_cmd_validate, CDC_CMD_PIPELINE, NULL, NULL, NULL},
    {"mapping", "test",
     "mapping test [--diff OLD.yaml] MAPPING.yaml [ENVELOPES.jsonl]",
     "  mapping test F  run mapping F over envelopes (file or stdin) and print\n"
     "                  the resulting wide rows / SQL; --diff OLD F: how the\n"
     "                  rows change from OLD to F (exit 0 same, 1 differ)\n",
     cdc_cmd_mapping_test, 0, OPTS("diff"), NULL, NULL},
    {"mapping", "triggers",
     "mapping triggers -c pipeline.yaml [postgres|mysql]",
     "  mapping triggers print the SQL (_provenance column, triggers) that ranks\n"
     "                  direct edits of the two-way tables of mapping.files\n"
     "                  (--mapping); engines from the pipeline's source/sink\n"
     "                  types, or only the named engine's tables\n",
     cdc_cmd_mapping_triggers, CDC_CMD_PIPELINE, NULL, NULL, NULL},
    {"mapping", "reverse",
     "mapping reverse -c pipeline.yaml MAPPING SOURCE TARGET",
     "  mapping reverse M S T  print mapping M reversed (source S, target T)\n"
     "                  as YAML to paste under mappings:\n",
     cdc_cmd_mapping_reverse, CDC_CMD_PIPELINE, NULL, NULL, NULL},
    {"backfill", NULL, "backfill -c pipeline.yaml [--table T]... [OPTIONS]",
     "  backfill        snapshot existing rows (op r) through the same mappings\n"
     "                  and sinks, resumable; for cron (75 = another run holds\n"
     "                  the lock)\n",
     cdc_cmd_backfill, CDC_CMD_PIPELINE,
     OPTS("table", "where", "chunk-size", "max-rows-per-sec", "parallel"),
     NULL, NULL},
    {"reconcile", NULL,
     "reconcile -c pipeline.yaml --target T [--repair] [--json] "
     "[PIPELINE.yaml...]",
     "  reconcile       recompute wide table T from the sources' current rows\n"
     "                  (each source's pipeline: -c and the operands) and\n"
     "                  print rows missing, extra and fields that differ with\n"
     "                  both provenances; 1 = drift found; --repair fixes it\n",
     cdc_cmd_reconcile, CDC_CMD_PIPELINE, OPTS("target", "repair", "json", "partitions"),
     NULL, NULL},
    {"status", NULL, "status [-c pipeline.yaml] [--url URL] [--json]",
     "  status          the status table: application, online/offline, last\n"
     "                  sync time, latency\n",
     cdc_cmd_status, CDC_CMD_PIPELINE | CDC_CMD_OWN_UNSET,
     OPTS("http", "url", "json"), NULL, NULL},
    /* dead-letter list|retry: the action word is the handler's */
    {"dead-letter", NULL, "dead-letter list|retry -c pipeline.yaml",
     "  dead-letter list  the changes the sink kept as dead letters\n"
     "                  (errors.mode: dead-letter); retry maps and applies them\n"
     "                  again (after the mapping was fixed), 65 if some still fail\n",
     cdc_cmd_dead_letter, CDC_CMD_PIPELINE, NULL, NULL, NULL},
};

const size_t cdc_ncommands = sizeof(cdc_commands) / sizeof(cdc_commands[0]);
