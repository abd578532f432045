/* SPDX-License-Identifier: Apache-2.0 */
/*
 * commands.h - the command table and what a command's handler gets.
 *
 * cdc/cli.c parses the command line (options may stand before and after
 * the command words), finds the command in cdc_commands[] (table.c),
 * checks that every option given is one the command accepts, builds the
 * configuration and calls the handler.  --help is assembled from the
 * rows' synopsis and summary, so a command is one row in table.c plus
 * its file in cdc/commands/; nothing else in the core names it.
 */
#ifndef CDC_COMMANDS_H
#define CDC_COMMANDS_H

#include <stddef.h>

#include "cdc/conf.h"
#include "cdc/err.h"
#include "cdc/plugin.h"

/** What a handler gets besides its operands. */
typedef struct cdc_cmd_ctx {
    /** The effective configuration: defaults < YAML < environment <
     *  command line, resolved (NULL only for a command run with its
     *  bare_option, see cdc_command_t). */
    const cdc_conf_t *conf;
    /** The command's own options that set no configuration key, by long
     *  name ("start-position" -> its value; a switch -> "true"). */
    const cdc_conf_t *opts;
} cdc_cmd_ctx_t;

/** A command's handler: argc/argv are the operands after the command
 *  words.  Returns an exit code (CDC_EXIT_*); err is printed by the
 *  caller when it is set and the code is not 0. */
typedef int cdc_cmd_fn(const cdc_cmd_ctx_t *cx, int argc, char **argv,
                       cdc_err_t *err);

/** cdc_command_t.flags */
enum {
    /** Reads the pipeline configuration: accepts the pipeline options
     *  (-c, --source, --sink, -X ...). */
    CDC_CMD_PIPELINE = 1u << 0,
    /** Checks itself for ${VAR}s left unset in the keys it reads (status:
     *  on-call staff lack the database secrets). */
    CDC_CMD_OWN_UNSET = 1u << 1,
};

/** One row of the command table. */
typedef struct cdc_command {
    const char *word;     /**< "backfill" */
    const char *sub;      /**< second word ("mapping test"), or NULL */
    const char *synopsis; /**< usage line after "autoglm-cdc " */
    const char *summary;  /**< its lines under "Commands:" in --help */
    cdc_cmd_fn *handler;
    unsigned flags;       /**< CDC_CMD_* */
    /** Options of its own (long names, NULL-terminated), besides the
     *  pipeline options (CDC_CMD_PIPELINE) and those every command takes
     *  (-v, -q, --log-format, -h, -V).  Any other is a usage error. */
    const char *const *options;
    /** Keys that must have no unset ${VAR} (NULL-terminated); NULL: every
     *  key (unless CDC_CMD_OWN_UNSET). */
    const char *const *needs;
    /** An option that makes the command run without a configuration
     *  (cx->conf NULL): `config --reference`.  NULL: none. */
    const char *bare_option;
} cdc_command_t;

/** The commands, in the order of --help; "run" is the default. */
extern const cdc_command_t cdc_commands[];
extern const size_t cdc_ncommands;

/* ---- for handlers (cdc/cli.c) ----------------------------------------- */

/** @brief Print "autoglm-cdc: <message>" and the --help hint to stderr;
 *  returns CDC_EXIT_USAGE. */
int cdc_cmd_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/** @brief The sink of sink.type (def when unset); NULL with err set
 *  (CDC_EXIT_CONFIG, the available sinks) when none has that name. */
const cdc_sink_ops_t *cdc_cmd_sink(const cdc_conf_t *conf, const char *def,
                                   cdc_err_t *err);
/** @brief 1 if name is an option of the command line (long name). */
int cdc_cli_option_known(const char *name);

/* ---- the handlers (one file each in cdc/commands/) --------------------- */

cdc_cmd_fn cdc_cmd_run, cdc_cmd_decode, cdc_cmd_offsets, cdc_cmd_config,
    cdc_cmd_validate, cdc_cmd_mapping_test, cdc_cmd_mapping_triggers,
    cdc_cmd_mapping_reverse, cdc_cmd_backfill, cdc_cmd_status,
    cdc_cmd_dead_letter, cdc_cmd_reconcile;

/* The command bodies that tests call with a configuration alone. */
int cdc_status_cli(const cdc_conf_t *conf, int argc, char **argv,
                   cdc_err_t *err);
int cdc_dead_letter_cli(const cdc_conf_t *conf, int argc, char **argv,
                        cdc_err_t *err);

#endif
