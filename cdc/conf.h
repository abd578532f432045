/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conf.h - configuration: a flat map of dotted keys to string values.
 *
 * Sources of values, lowest precedence first: built-in defaults, the YAML
 * file (-c), AUTOGLM_CDC_<KEY> environment variables (dots become
 * underscores, upper case), command-line flags and -X key=value.
 * YAML mappings are flattened ("kafka: {acks: all}" -> "kafka.acks");
 * sequences become "key.0", "key.1", ... and "key.#" holds the count.
 * ${VAR} and ${VAR:default} are expanded in YAML values at load time;
 * ${{...}} is a literal "${...}".  Keys whose last part contains
 * "password", "secret", "token", "key.pem" or "dsn" are secrets:
 * cdc_conf_dump() and the logger never print their values.
 */
#ifndef CDC_CONF_H
#define CDC_CONF_H

#include <stdint.h>

#include "cdc/err.h"

typedef struct cdc_conf_ent {
    char *key;
    char *val;
    char *where; /* "file:line:col", "env", "cli", "default" */
} cdc_conf_ent_t;

typedef struct cdc_conf {
    cdc_conf_ent_t *ents;
    int n, cap;
} cdc_conf_t;

cdc_conf_t *cdc_conf_new(void);
void cdc_conf_destroy(cdc_conf_t *conf);
/** @brief Set (replace) key; val copied. where may be NULL. */
void cdc_conf_set(cdc_conf_t *conf, const char *key, const char *val,
                  const char *where);
/** @brief Value of key or def (borrowed, valid until the key is set again). */
const char *cdc_conf_get(const cdc_conf_t *conf, const char *key,
                         const char *def);
/** @brief Where a key was set ("file:line:col", ...) or NULL. */
const char *cdc_conf_where(const cdc_conf_t *conf, const char *key);
/** @brief Integer value; -1 with err if it does not parse. */
int cdc_conf_get_int(const cdc_conf_t *conf, const char *key, int64_t def,
                     int64_t *out, cdc_err_t *err);
/** @brief Boolean (true/false/yes/no/on/off/1/0). */
int cdc_conf_get_bool(const cdc_conf_t *conf, const char *key, int def,
                      int *out, cdc_err_t *err);
/** @brief Duration: one or more <integer><unit> (s, m, h, d, w), e.g.
 *  "30d", "1d12h"; "0" is zero.  µs in *us.  positive: refuse less than
 *  1s; zero_hint: what 0 means, added to the hint (NULL: nothing). */
int cdc_conf_get_duration(const cdc_conf_t *conf, const char *key,
                          const char *def, int positive,
                          const char *zero_hint, int64_t *us, cdc_err_t *err);
/** @brief Load a YAML file into conf (values override). */
int cdc_conf_load_yaml(cdc_conf_t *conf, const char *path, cdc_err_t *err);
/** @brief Load YAML text (name used in messages). */
int cdc_conf_load_yaml_str(cdc_conf_t *conf, const char *name,
                           const char *text, size_t len, cdc_err_t *err);
/** @brief Apply AUTOGLM_CDC_* environment variables. */
void cdc_conf_load_env(cdc_conf_t *conf);
/** @brief Expand ${VAR}, ${VAR:default}, ${{..}} in s; malloc'd result or
 *  NULL with err when VAR is unset and has no default. */
char *cdc_conf_expand(const char *s, cdc_err_t *err);
/** @brief 1 if the key names a secret. */
int cdc_conf_is_secret(const char *key);
/** @brief Copy of s with every secret masked (cdc/redact.h); malloc'd. */
char *cdc_conf_redact(const char *s);
/** @brief Print every key as "key = value  # where", secrets as ******. */
void cdc_conf_dump(const cdc_conf_t *conf, void *FILE_fp);

#endif
