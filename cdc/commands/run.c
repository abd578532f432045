/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run.c - `autoglm-cdc [run]`: stream committed changes from the source
 * to the sink (the daemon; cdc/pipeline.c).
 */
#include "cdc/commands/commands.h"
#include "cdc/pipeline.h"

int cdc_cmd_run(const cdc_cmd_ctx_t *cx, int argc, char **argv,
                cdc_err_t *err)
{
    const char *sname = cdc_conf_get(cx->conf, "source.type", NULL);
    const cdc_source_ops_t *s;
    const cdc_sink_ops_t *k;

    if (argc > 0)
        return cdc_cmd_usage_error("unexpected argument '%s'", argv[0]);
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
    k = cdc_cmd_sink(cx->conf, "stdout", err);
    if (!k)
        return err->code;
    return cdc_pipeline_run(cx->conf, s, k, err);
}
