/* SPDX-License-Identifier: Apache-2.0 */
/*
 * offsets.c - `autoglm-cdc offsets show|set POSITION|reset`: the stored
 * checkpoint of the pipeline.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdc/checkpoint.h"
#include "cdc/commands/commands.h"
#include "cdc/envelope.h"

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
 * works on, so a wrong -c or --pipeline is visible.  set and reset take
 * the pipeline's run lock: a running daemon would write its own position
 * over the change at its next checkpoint (75 while one runs). */
int cdc_cmd_offsets(const cdc_cmd_ctx_t *cx, int argc, char **argv,
                    cdc_err_t *err)
{
    const char *name = cdc_conf_pipeline(cx->conf);
    const char *state = cdc_conf_get(cx->conf, "state.dir", "state");
    const char *what = argc > 0 ? argv[0] : "show";
    int nargs = !strcmp(what, "set") ? 2 : 1;
    char *path;
    cdc_ckpt_t ck;
    int rc = CDC_EXIT_OK, r, lockfd = -1;

    if (strcmp(what, "show") && strcmp(what, "set") && strcmp(what, "reset"))
        return cdc_cmd_usage_error("unknown offsets command '%s' (show, set, reset)",
                           what);
    if (argc < nargs)
        return cdc_cmd_usage_error("offsets set needs a %s",
                           "POSITION (FILE:POS, GTID or LSN)");
    if (argc > nargs)
        return cdc_cmd_usage_error("offsets: unexpected argument '%s'", argv[nargs]);
    if (strcmp(what, "show") &&
        cdc_state_lock(state, name, "run", &lockfd, err)) {
        if (err->code == CDC_EXIT_TEMPFAIL)
            cdc_err_hint(err, "stop the pipeline first: it would write its "
                              "own position over the checkpoint; the "
                              "checkpoint was not changed");
        return err->code;
    }
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
    cdc_state_unlock(lockfd);
    return rc;
}
