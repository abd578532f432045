/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xml.h - the change envelope as one XML document (format=xml), written
 * with libxml2's xmlTextWriter so that escaping and well-formedness are
 * the library's job, not ours.
 *
 *   <?xml version="1.0" encoding="UTF-8"?>
 *   <change op="update" db="shop" table="users" position="..."
 *           application_id="..." commit_ts="2026-...Z">
 *     <before><id>7</id>...</before>
 *     <after><id>7</id><name>Ann</name>...</after>
 *   </change>
 *
 * The names come from a mapping of the configuration (the design's legacy
 * example: {userId, userName, isActive} -> <user><id/><name/><status/>):
 *   xml.root       root element, "{table}" for the table name (default
 *                  "change")
 *   xml.names      list of [db.]table.column=element or column=element
 *   xml.values     list of column:value=replacement (isActive:1=enabled)
 * A name that is not a legal XML name has its illegal bytes replaced by
 * '_' (and '_' prepended before a leading digit).  Values are never
 * altered: SQL NULL is <c null="true"/>, an unchanged TOAST value is
 * <c unchanged="true"/>, bytes and any text XML 1.0 cannot carry
 * (control characters, invalid UTF-8) are base64 with encoding="base64".
 */
#ifndef CDC_SINKS_XML_H
#define CDC_SINKS_XML_H

#include "cdc/buf.h"
#include "cdc/change.h"
#include "cdc/conf.h"
#include "cdc/err.h"

typedef struct cdc_xml_opts cdc_xml_opts_t;

/** @brief Read xml.root, xml.names, xml.values; NULL with err (78). */
cdc_xml_opts_t *cdc_xml_opts_new(const cdc_conf_t *conf, cdc_err_t *err);
void cdc_xml_opts_free(cdc_xml_opts_t *xo);
/** @brief Append the XML document of ch to out. */
void cdc_xml_envelope(cdc_buf_t *out, const cdc_xml_opts_t *xo,
                      const char *app, const cdc_txn_t *tx,
                      const cdc_change_t *ch);

/** @brief Append the same document on one line, for line-oriented
 *  outputs (the file sink): no newline after the XML declaration, and a
 *  newline inside a value written as the character reference &#10; (the
 *  same text to any XML parser). */
void cdc_xml_envelope_line(cdc_buf_t *out, const cdc_xml_opts_t *xo,
                           const char *app, const cdc_txn_t *tx,
                           const cdc_change_t *ch);

#endif
