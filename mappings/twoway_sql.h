/* SPDX-License-Identifier: Apache-2.0 */
/*
 * twoway_sql.h - the conflict triggers of two-way tables, generated from
 * the mapping set (docs/TWO-WAY.md, "Ranking direct edits").
 *
 * A two-way table is a physical table that is the source table of one
 * mapping (direction A: its direct edits are attributed to A's source)
 * and the table of a target written by another mapping (direction B).
 * Its two-way fields are the fields of that target that B writes and A
 * reads back as a bare column (or `from:`) of the same name.  For each
 * such table the generator prints, for its engine:
 *
 *   - `_provenance` DDL (ALTER TABLE ... ADD COLUMN IF NOT EXISTS);
 *   - PostgreSQL: one plpgsql trigger function per schema
 *     (autoglm_cdc_twoway_stamp, rule-agnostic: each field's rank prefix
 *     and suffix are trigger arguments) and a BEFORE INSERT OR UPDATE
 *     trigger `autoglm_cdc_twoway` on the table;
 *   - MariaDB/MySQL: BEFORE INSERT and BEFORE UPDATE triggers
 *     `<table>_2w_ins` / `<table>_2w_upd` (in `DELIMITER //` blocks, as
 *     the mariadb/mysql clients read them).
 *
 * The rank of an edit is prefix || T || suffix, where T is the 16 hex
 * digits of the edit's time in µs with the top bit set and prefix/suffix
 * are cut out of cdc_twoway_rank() (mappings/reverse.h) for the field's
 * rule and the source's priority, weight and id: the SQL computes
 * byte-identical ranks for latest, priority and weighted.
 *
 * Names are quoted as identifiers ("x" with "" doubled; `x` with ``
 * doubled) and as literals ('' doubled; a MySQL literal holding a
 * backslash is written as a hex literal), so no name can break out.
 */
#ifndef CDC_TWOWAY_SQL_H
#define CDC_TWOWAY_SQL_H

#include "cdc/buf.h"
#include "cdc/conf.h"
#include "cdc/err.h"
#include "mappings/map.h"

typedef enum cdc_twsql_engine {
    CDC_TWSQL_UNKNOWN = 0,
    CDC_TWSQL_POSTGRES,
    CDC_TWSQL_MYSQL, /* MariaDB and MySQL */
} cdc_twsql_engine_t;

typedef struct cdc_twsql_opts {
    /* Engines of one pipeline (its source id app, source and sink type):
     * tables read by app's mappings are on src, targets they write are
     * on sink.  NULL / UNKNOWN: no hint. */
    const char *app;
    cdc_twsql_engine_t src, sink;
    /* UNKNOWN: every table whose engine is known; otherwise only this
     * engine's tables, and tables of unknown engine are taken to be on
     * it (the operator named the engine). */
    cdc_twsql_engine_t only;
} cdc_twsql_opts_t;

/** @brief Engine of a source.type / sink.type / command-line word
 *  (mysql, mariadb, postgres, postgresql, pg), UNKNOWN otherwise. */
cdc_twsql_engine_t cdc_twsql_engine(const char *word);

/**
 * @brief Append the trigger SQL of every two-way table of m to out
 * (caller-owned buffer), engine by engine (PostgreSQL first), each
 * section headed by a comment naming its engine.
 * @returns the number of tables written, or -1 with err
 *          (CDC_EXIT_CONFIG: a two-way table of unknown engine and no
 *          opts->only; the hint says how to name it).
 */
int cdc_twsql_generate(const cdc_map_t *m, const cdc_twsql_opts_t *opts,
                       cdc_buf_t *out, cdc_err_t *err);

/* ---- command line (wired by cdc/cli.c) ----------------------------------- */

/** @brief `autoglm-cdc mapping triggers [-c pipeline.yaml | --mapping
 *  FILES] [postgres|mysql]`: print the trigger SQL (mapping.files; the
 *  engines from source.type, sink.type and application_id).
 *  @returns an exit code. */
int cdc_twsql_cli_triggers(const cdc_conf_t *conf, int argc, char **argv,
                           cdc_err_t *err);
/** @brief `autoglm-cdc mapping reverse MAPPING SOURCE TARGET [-c ... |
 *  --mapping FILES]`: print cdc_map_reverse_yaml() of MAPPING.
 *  @returns an exit code. */
int cdc_twsql_cli_reverse(const cdc_conf_t *conf, int argc, char **argv,
                          cdc_err_t *err);

#endif
