/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map_rank.c - change positions and the ranks of the conflict rules.
 *
 * A rank is a fixed-width string whose byte order is the field's rule
 * (map.h): the sinks and the model keep a value only when a candidate's
 * rank is strictly greater, which makes the result order-independent.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/util.h"
#include "mappings/map_int.h"

static uint64_t file_seq(const char *f)
{
    const char *dot;
    if (!f || !*f)
        return 0;
    dot = strrchr(f, '.');
    return dot ? strtoull(dot + 1, NULL, 10) : 0;
}

void cdc_map_change_pos(const cdc_txn_t *tx, const cdc_change_t *ch,
                        uint32_t idx, char out[CDC_MAP_POS_LEN + 1])
{
    const char *file = tx->file ? tx->file : tx->pos.file;
    uint64_t seq = file_seq(file), off = ch->pos;
    uint32_t row = ch->row;

    if (!off) {
        /* no position of its own: the txn's, then the index in it */
        off = file && *file ? tx->pos.offset : tx->pos.lsn;
        row = idx;
    }
    cdc_hex(cdc_hex(cdc_hex(out, (uint32_t)seq, 8), off, 16), row, 8)[0] = '\0';
}

void cdc_map_txn_pos(const cdc_pos_t *pos, char out[33])
{
    if (pos->file[0])
        cdc_hex(cdc_hex(out, file_seq(pos->file), 16), pos->offset, 16)[0] = '\0';
    else
        cdc_hex(cdc_hex(out, 0, 16), pos->lsn, 16)[0] = '\0';
}

void cdc_map_make_rank(const cdc_map_field_t *f, const cdc_map_source_t *s,
                       int64_t commit_us, const char *pos, const char *ord,
                       const char *score, char *out)
{
    char T[16], P[8], W[16], S[8], *o = out;
    double w = s->weight * 1e6;
    size_t plen;
    uint32_t h = 2166136261u;

    /* ties between sources break by a hash of the id: deterministic and
     * short (every byte of provenance is written for every row) */
    for (const char *c = s->id; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;

    /* fixed-width hex, built without printf (this runs for every field of
     * every change) */
    cdc_hex(T, (uint64_t)commit_us ^ ((uint64_t)1 << 63), 16);
    cdc_hex(P, (uint32_t)s->priority ^ 0x80000000u, 8);
    if (score)
        memcpy(W, score, 16);
    else
        cdc_hex(W, (uint64_t)llround(w < 0 ? 0 : w), 16);
    cdc_hex(S, h, 8);
    switch (f->rule) {
    case CDC_RULE_PRIORITY:
        memcpy(o, P, 8), o += 8;
        memcpy(o, T, 16), o += 16;
        break;
    case CDC_RULE_ORDERED:
        if (ord)
            memcpy(o, ord, 16);
        else
            memset(o, '0', 16);
        o += 16;
        memcpy(o, T, 16), o += 16;
        memcpy(o, P, 8), o += 8;
        break;
    case CDC_RULE_WEIGHTED:
        if (f->per_source) /* the order of the source's own changes */
            goto latest;
        memcpy(o, W, 16), o += 16;
        memcpy(o, T, 16), o += 16;
        memcpy(o, P, 8), o += 8;
        break;
    default:
    latest:
        memcpy(o, T, 16), o += 16;
        memcpy(o, P, 8), o += 8;
        break;
    }
    memcpy(o, S, 8), o += 8;
    plen = strnlen(pos, CDC_MAP_RANK_LEN - (size_t)(o - out));
    memcpy(o, pos, plen);
    o[plen] = '\0';
}

