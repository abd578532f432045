/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conf.h - configuration: a flat map of dotted keys to string values.
 *
 * Sources of values, lowest precedence first: built-in defaults, the YAML
 * file (-c), AUTOGLM_CDC_<KEY> environment variables (dots become
 * underscores, upper case), command-line flags and -X key=value.
 * YAML mappings are flattened ("kafka: {acks: all}" -> "kafka.acks") and
 * checked against the declared keys below as they are read (unknown and
 * duplicate keys are errors at file:line:column); a sequence is accepted
 * for a list key and joined with commas.  ${VAR} and ${VAR:default} are
 * expanded in YAML values at load time; an unset VAR leaves the value
 * unresolved, an error only for a command that needs the key
 * (cdc_conf_need_resolved).  ${{...}} is a literal "${...}".  Keys whose last part contains
 * "password", "secret", "token", "key.pem" or "dsn" are secrets:
 * cdc_conf_dump() and the logger never print their values.
 */
#ifndef CDC_CONF_H
#define CDC_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "cdc/err.h"

typedef struct cdc_conf_ent {
    char *key;
    char *val;
    char *where; /* "file:line:col", "env NAME", "cli", "default" */
    char *unresolved; /* why val could not be resolved (${VAR} unset, an
                       * unreadable *_file); NULL when val is good */
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

/* ---- the declared keys (cdc/conf_keys.c) -------------------------------
 *
 * Every key is declared once in a table: name, type, default, bounds or
 * allowed values, secret flag, the components that read it, and a short
 * description.  YAML, AUTOGLM_CDC_*, command-line options and -X all
 * resolve through it; docs/CONFIG.md is generated from it
 * (autoglm-cdc config --reference).  A name ending in ".*" declares an
 * open namespace whose keys go verbatim to a library (kafka.* ->
 * librdkafka).  A secret key K may also be given as K_file: the file's
 * content (one trailing newline dropped) becomes K's value. */
typedef enum cdc_ktype {
    CDC_KT_STRING,   /* any text */
    CDC_KT_INT,      /* whole number within [min, max] */
    CDC_KT_BOOL,     /* true/false/yes/no/on/off/1/0 */
    CDC_KT_DURATION, /* 30s, 5m, 1d12h; min = least µs (0: 0 allowed) */
    CDC_KT_ENUM,     /* one of allowed ("a|b|c") */
    CDC_KT_LIST,     /* comma list, or a YAML sequence of scalars */
    CDC_KT_NAME,     /* a name used in file names: no '/', no "..", not empty */
    CDC_KT_CONNINFO, /* libpq conninfo or URI, checked by libpq's parser */
    CDC_KT_NAMESPACE /* "prefix.*": keys passed through to a library */
} cdc_ktype_t;

#define CDC_KF_SECRET 1u /* value never printed; K_file accepted */

typedef struct cdc_conf_key {
    const char *name;    /* "mysql.server_id", or "kafka.*" */
    cdc_ktype_t type;
    const char *def;     /* default as text (for docs); NULL: unset */
    int64_t min, max;    /* CDC_KT_INT bounds */
    const char *allowed; /* CDC_KT_ENUM: "a|b|c" */
    unsigned flags;      /* CDC_KF_* */
    const char *opt;     /* command-line option ("--mysql-dsn") or NULL */
    const char *comps;   /* components that read it */
    const char *doc;     /* one or two sentences */
} cdc_conf_key_t;

/** @brief The table, terminated by an entry with name NULL. */
extern const cdc_conf_key_t cdc_conf_keys[];
/** @brief The declaration of key (exact, or its open namespace); NULL if
 *  the key is unknown.  *base gets the secret key K for "K_file". */
const cdc_conf_key_t *cdc_conf_key_find(const char *key, const char **base);
/** @brief 1 if prefix names a section of keys ("mysql", "mysql.ssl"). */
int cdc_conf_key_is_section(const char *prefix);
/** @brief The closest declared key to an unknown one, or NULL. */
const char *cdc_conf_key_suggest(const char *key);
/** @brief Error for an unknown key: "<where>: unknown key 'k'", "did you
 *  mean" in the hint.  Returns -1. */
int cdc_conf_key_unknown(const char *key, const char *where, cdc_err_t *err);
/** @brief Check val against the declaration of key; -1 with an error that
 *  names the key (and where) otherwise. */
int cdc_conf_key_check(const cdc_conf_key_t *k, const char *key,
                       const char *val, const char *where, cdc_err_t *err);
/** @brief Resolve conf after all layers are in: K_file secrets are read,
 *  every key must be declared, every resolved value must fit its type.
 *  Values that could not be resolved stay marked (see
 *  cdc_conf_need_resolved). */
int cdc_conf_resolve(cdc_conf_t *conf, cdc_err_t *err);
/** @brief -1 with the deferred error if one of keys (NULL: any key) holds
 *  an unresolved value (an unset ${VAR}, an unreadable K_file). */
int cdc_conf_need_resolved(const cdc_conf_t *conf, const char *const *keys,
                           cdc_err_t *err);
/** @brief The pipeline name: pipeline.name, else source.type, else "cdc".
 *  The one place the default is derived. */
const char *cdc_conf_pipeline(const cdc_conf_t *conf);

/** @brief A copy of key's value when it is set and not empty, else NULL
 *  (free it). */
char *cdc_conf_dup(const cdc_conf_t *conf, const char *key);
/** @brief application_id, else the pipeline name. */
const char *cdc_conf_app_id(const cdc_conf_t *conf);
/** @brief Print the Markdown reference (docs/CONFIG.md). */
void cdc_conf_reference(void *FILE_fp);

#endif
