/* SPDX-License-Identifier: Apache-2.0 */
/*
 * checkpoint.h - the durable source position of a pipeline.
 *
 * One small text file per pipeline, <state.dir>/<pipeline>.ckpt, replaced
 * atomically: write a temp file, fsync it, rename it over the old one,
 * fsync the directory.  A reader never sees a torn file.
 */
#ifndef CDC_CHECKPOINT_H
#define CDC_CHECKPOINT_H

#include "cdc/change.h"
#include "cdc/err.h"

typedef struct cdc_ckpt {
    cdc_pos_t pos;
    int64_t commit_us;  /* commit time of the last delivered txn */
    int64_t updated_us; /* when the checkpoint was written */
    uint64_t txns;      /* transactions delivered since the file was made */
    char source[32];    /* source type that wrote it */
} cdc_ckpt_t;

/** @brief Path of the checkpoint file (malloc'd). */
char *cdc_ckpt_path(const char *state_dir, const char *pipeline);
/** @brief Load; returns 1 if found, 0 if no file, -1 on error. */
int cdc_ckpt_load(const char *path, cdc_ckpt_t *ck, cdc_err_t *err);
/** @brief Store atomically (creates state dir if needed). */
int cdc_ckpt_store(const char *path, const cdc_ckpt_t *ck, cdc_err_t *err);
/** @brief Parse "FILE:POS", "LSN X/Y" or a GTID state into pos. */
int cdc_pos_parse(const char *s, cdc_pos_t *pos, cdc_err_t *err);
/** @brief Human text of a position (static buffer per thread). */
const char *cdc_pos_str(const cdc_pos_t *pos);

#endif
