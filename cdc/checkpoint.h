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
/** @brief Load; returns 1 if found, 0 if no file, -1 on error.  A file
 *  that is not a whole version=1 checkpoint (empty, truncated, garbage) is
 *  an error with CDC_EXIT_CONFIG naming the file, never "no file". */
int cdc_ckpt_load(const char *path, cdc_ckpt_t *ck, cdc_err_t *err);
/** @brief Store atomically (creates state dir if needed). */
int cdc_ckpt_store(const char *path, const cdc_ckpt_t *ck, cdc_err_t *err);
/** @brief Refuse a checkpoint written by another source type, or one
 *  without a position of this source type (CDC_EXIT_CONFIG). */
int cdc_ckpt_check_source(const char *path, const cdc_ckpt_t *ck,
                          const char *source, cdc_err_t *err);
/** @brief Path of the lock file: <state_dir>/<pipeline>.lock for what
 *  "run", <state_dir>/<pipeline>.<what>.lock otherwise (malloc'd). */
char *cdc_state_lock_path(const char *state_dir, const char *pipeline,
                          const char *what);
/** @brief Take the pipeline's lock for what ("run", "backfill"): an fcntl
 *  write lock held as long as *fd is open; the file holds our pid.  A lock
 *  held by another process fails at once with CDC_EXIT_TEMPFAIL naming
 *  its pid ("another instance of pipeline P is running (pid N)"). */
int cdc_state_lock(const char *state_dir, const char *pipeline,
                   const char *what, int *fd, cdc_err_t *err);
/** @brief 1 if some process (this one included) holds the pipeline's lock
 *  for what, with its pid in *pid (0 if unknown); 0 if nobody does.  Asks
 *  the lock itself, so a stale pid file or a reused pid cannot fool it. */
int cdc_state_lock_held(const char *state_dir, const char *pipeline,
                        const char *what, long *pid);
/** @brief Release the lock taken by cdc_state_lock (fd < 0: nothing). */
void cdc_state_unlock(int fd);
/** @brief Parse "FILE:POS", "LSN X/Y" or a GTID state into pos. */
int cdc_pos_parse(const char *s, cdc_pos_t *pos, cdc_err_t *err);
/** @brief Human text of a position (static buffer per thread). */
const char *cdc_pos_str(const cdc_pos_t *pos);

#endif
