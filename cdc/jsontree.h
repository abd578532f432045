/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jsontree.h - parse JSON into a yajl tree whose strings keep their length.
 *
 * yajl_tree_parse() keeps a string as a NUL-terminated char *, so a value
 * that holds "\u0000" is cut there by anyone who reads it back.  This
 * parser builds the same struct yajl_val_s tree (yajl_tree_get and the
 * YAJL_IS_ macros work on it, yajl_tree_free frees it) and also records
 * each string's byte length: read it with cdc_json_strlen().  Nesting is
 * bounded (CDC_JSON_MAX_DEPTH), so freeing cannot exhaust the stack.
 */
#ifndef CDC_JSONTREE_H
#define CDC_JSONTREE_H

#include <stddef.h>

#include <yajl/yajl_tree.h>

#define CDC_JSON_MAX_DEPTH 512

/** @brief Parse len bytes of JSON; NULL with a message in ebuf on error.
 *  Free the tree with yajl_tree_free(). */
yajl_val cdc_json_parse(const char *text, size_t len, char *ebuf,
                        size_t ebuf_len);
/** @brief Byte length of a string node of a tree from cdc_json_parse
 *  (only those: it aborts on a node yajl_tree_parse made). */
size_t cdc_json_strlen(const struct yajl_val_s *v);
/** @brief The member k of object o (the first, if repeated); NULL when o
 *  is not an object or has no such member. */
yajl_val cdc_json_get(yajl_val o, const char *k);
/** @brief 1 if s[0..len) is exactly one valid JSON text, else 0. */
int cdc_json_valid(const char *s, size_t len);

#endif
