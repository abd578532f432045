/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redact.h - keep secrets out of every text the tool prints: logs, error
 * details, /status, /metrics, `config`, the status command.
 *
 * Three passes, each over the whole text:
 *   1. known secrets: every value of a secret configuration key, and every
 *      password read out of a configured DSN, is replaced wherever it
 *      occurs (values shorter than CDC_REDACT_MIN_LEARN are left to 2, 3);
 *   2. URIs (scheme://user:password@host): the user info ends at the last
 *      '@' of the URI token, as the MySQL DSN parsers read it (libpq takes
 *      the first, which is never later), and query parameters with a secret
 *      name (?password=) are masked too;
 *   3. conninfo pairs, with libpq's grammar: keyword, optional blanks, '=',
 *      optional blanks, then a value that is either '-quoted (backslash
 *      escapes any character) or runs to the next blank (backslash escapes
 *      the next character).  A secret keyword (…password, …secret, …token)
 *      has its value masked.
 * The mask is "******".  All functions are thread-safe.
 */
#ifndef CDC_REDACT_H
#define CDC_REDACT_H

#define CDC_REDACT_MASK "******"
#define CDC_REDACT_MIN_LEARN 4

/** @brief Copy of text with every secret masked; malloc'd. */
char *cdc_redact(const char *text);
/** @brief Remember the secrets in a configuration value: the whole value of
 *  a secret key (see cdc_redact_is_secret_key), the passwords inside a DSN
 *  (key ending in "dsn"), parsed with the DSN's own grammar. */
void cdc_redact_learn(const char *key, const char *val);
/** @brief Forget every learned secret (tests). */
void cdc_redact_forget(void);
/** @brief 1 if a conninfo keyword or query parameter names a secret. */
int cdc_redact_is_secret_word(const char *kw, size_t n);

#endif
