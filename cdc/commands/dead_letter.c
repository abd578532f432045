/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dead_letter.c - `autoglm-cdc dead-letter list|retry -c pipeline.yaml`.
 *
 * The sink of the configuration keeps the dead letters (sinks/
 * dead_letter.h); this command opens it as `run` would and asks it, through
 * its optional dead_letter hook, to list them or to apply them again.
 */
#include <stdio.h>
#include <string.h>

#include "cdc/commands/commands.h"

int cdc_dead_letter_cli(const cdc_conf_t *conf, int argc, char **argv,
                        cdc_err_t *err)
{
    const char *sname = cdc_conf_get(conf, "sink.type", "stdout");
    const cdc_sink_ops_t *k;
    cdc_sink_t *snk;
    int rc;

    if (argc != 1 || (strcmp(argv[0], "list") && strcmp(argv[0], "retry"))) {
        if (!argc)
            cdc_err_set(err, CDC_EXIT_USAGE, 0, "dead-letter: missing "
                        "action (list or retry)");
        else
            cdc_err_set(err, CDC_EXIT_USAGE, 0, "dead-letter: unexpected "
                        "'%s'", argv[argc > 1 ? 1 : 0]);
        cdc_err_hint(err, "autoglm-cdc dead-letter list|retry -c "
                     "pipeline.yaml");
        return CDC_EXIT_USAGE;
    }
    k = cdc_cmd_sink(conf, "stdout", err);
    if (!k)
        return err->code;
    if (!k->dead_letter) {
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "sink '%s' keeps no dead-letter "
                    "table", sname);
        cdc_err_hint(err, "the postgres and mysql sinks keep dead letters in "
                     "their database; Kafka's go to a topic "
                     "(errors.dead_letter_topic), read them with a consumer");
        return CDC_EXIT_CONFIG;
    }
    snk = k->create(conf, err);
    if (!snk)
        return err->code ? err->code : CDC_EXIT_FAIL;
    rc = k->dead_letter(snk, argv[0], stdout, err);
    k->destroy(snk);
    return rc;
}
