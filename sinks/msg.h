/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msg.h - what the message sinks (rabbitmq, mqtt, http) share: the body
 * of one change in the configured format, the routing name (exchange
 * routing key, MQTT topic, URL path) from a template, and the change id
 * used for headers and idempotency keys.
 *
 * Kept apart from any one sink so that the fan-out engine can render a
 * change once for several sinks later.
 */
#ifndef CDC_SINKS_MSG_H
#define CDC_SINKS_MSG_H

#include "cdc/buf.h"
#include "cdc/change.h"
#include "cdc/conf.h"
#include "cdc/envelope.h"
#include "cdc/err.h"

typedef struct cdc_msg_fmt {
    cdc_env_opts_t env;
    int xml;   /* format=xml: sinks/xml.c renders the envelope */
    char *app; /* application id (owned) */
    struct cdc_xml_opts *xo; /* format=xml only */
    /* Debezium with transaction metadata: the "transaction" blocks across
     * the fragments of a transaction (env.txs points here; the struct is
     * not copied after init) */
    cdc_dbz_txs_t txs;
} cdc_msg_fmt_t;

/** @brief Read format and application_id; -1 with err (exit 78). */
int cdc_msg_fmt_init(cdc_msg_fmt_t *f, const cdc_conf_t *conf,
                     cdc_err_t *err);
void cdc_msg_fmt_free(cdc_msg_fmt_t *f);
/** @brief Append the body of ch (no newline). */
void cdc_msg_body(const cdc_msg_fmt_t *f, cdc_buf_t *out,
                  const cdc_txn_t *tx, const cdc_change_t *ch);
/**
 * @brief Number a transaction's Debezium "transaction" blocks across its
 * fragments (cdc_dbz_txs_*, the one implementation the Kafka and file
 * sinks use): call begin before the changes of tx are rendered with
 * cdc_msg_body, end after the last of them.  Render them in between: a
 * sink that sends later (a batch, a republish after a reconnect) keeps
 * what it rendered.  No-ops for other formats; begin returns 1 when the
 * numbering is on.
 */
int cdc_msg_txn_begin(cdc_msg_fmt_t *f, const cdc_txn_t *tx);
void cdc_msg_txn_end(cdc_msg_fmt_t *f, const cdc_txn_t *tx);
/** @brief "application/json" or "application/xml". */
const char *cdc_msg_content_type(const cdc_msg_fmt_t *f);

/** @brief Operation word: insert, update, delete, read, truncate. */
const char *cdc_msg_op_word(char op);

/** @brief Check a template: only {source}, {db}, {table}, {op};
 *  -1 with err naming key (exit 78) otherwise. */
int cdc_msg_tmpl_check(const char *key, const char *tmpl, cdc_err_t *err);
/** @brief Expand a checked template; bytes of the substituted names that
 *  are in `bad` (and NUL) become '_'. */
void cdc_msg_tmpl_expand(cdc_buf_t *out, const char *tmpl,
                         const char *source, const cdc_change_t *ch,
                         const char *bad);

/** @brief Append the change id: "FILE:POS:ROW" (binlog) or
 *  "LSN:ROW" (PostgreSQL, LSN as X/Y); unique and stable per change. */
void cdc_msg_change_id(cdc_buf_t *out, const cdc_txn_t *tx,
                       const cdc_change_t *ch);

/** @brief Backoff for attempt n (0-based): base * 2^n capped at cap_ms,
 *  then jittered to [half, full] of that. */
int cdc_msg_backoff_ms(int attempt, int base_ms, int cap_ms);

/** @brief Reconnect schedule of a message sink: attempts, when the next
 *  one is due, since when the link is down, how long it may stay down. */
typedef struct cdc_msg_retry {
    int attempt;
    int64_t retry_at_us, down_since_us;
    int64_t timeout_ms; /* <prefix>.reconnect_timeout_ms */
} cdc_msg_retry_t;

/** @brief A reconnect attempt at time t (µs) failed with *e: 1 when the
 *  run must stop (e not retriable, or the link down longer than
 *  timeout_ms; *e then says which key bounds it), else 0 with the next
 *  attempt scheduled by backoff and the error logged now and then. */
int cdc_msg_retry_failed(cdc_msg_retry_t *r, cdc_err_t *e, int64_t t,
                         const char *fac, const char *timeout_key);

/** @brief A reconnect succeeded: the schedule starts over. */
void cdc_msg_retry_ok(cdc_msg_retry_t *r);

#endif
