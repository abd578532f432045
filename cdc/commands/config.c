/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - `autoglm-cdc config`: the effective configuration (secrets
 * masked); `config --reference`: every declared key (docs/CONFIG.md).
 */
#include <stdio.h>

#include "cdc/commands/commands.h"

int cdc_cmd_config(const cdc_cmd_ctx_t *cx, int argc, char **argv,
                   cdc_err_t *err)
{
    (void)err;
    if (!cx->conf) { /* --reference: the declared keys, no pipeline */
        cdc_conf_reference(stdout);
        return CDC_EXIT_OK;
    }
    if (argc > 0)
        return cdc_cmd_usage_error("config: unexpected argument '%s'", argv[0]);
    cdc_conf_dump(cx->conf, stdout);
    return CDC_EXIT_OK;
}
