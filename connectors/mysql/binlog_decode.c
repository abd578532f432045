/* SPDX-License-Identifier: Apache-2.0 */
/*
 * binlog_decode.c - pure MySQL/MariaDB binlog event decoder (no I/O).
 *
 * Input: complete events (19-byte common header .. checksum), one at a
 * time, from a file reader (binlog_file.c) or a replication stream.
 * Output: one cdc_txn_t per committed transaction (see binlog.h).
 *
 * Invariants:
 *  - every byte read goes through the bounds-checked rd_t cursor (or an
 *    explicit length check right before it);
 *  - an event we cannot decode stops decoding with an error that names
 *    the event type and the byte offset (CDC_EXIT_DATA);
 *  - nothing is skipped silently: events that carry no row data for a ROW
 *    binlog (statement context, LOAD blocks, Aurora padding, events flagged
 *    IGNORABLE) are consumed by design (listed in dispatch() and in
 *    docs/OPERATIONS.md); any other type stops decoding (CDC_EXIT_DATA);
 *  - changes of rolled-back work never appear; XA-prepared rows are held
 *    back until XA COMMIT and dropped at XA ROLLBACK;
 *  - a change's pos is the offset of its rows event (for events inside a
 *    TRANSACTION_PAYLOAD: the offset of the payload event, with `row`
 *    counting across all inner rows events so (pos,row) stays unique).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "cdc/util.h"
#include "cdc/log.h"
#include "connectors/mysql/binlog.h"
#include "connectors/mysql/binlog_value_int.h"

#define FAC "binlog"

/* ==== Event type codes (upstream names) ============================== */

enum {
    UNKNOWN_EVENT = 0,
    START_EVENT_V3 = 1,
    QUERY_EVENT = 2,
    STOP_EVENT = 3,
    ROTATE_EVENT = 4,
    INTVAR_EVENT = 5,
    LOAD_EVENT = 6,
    SLAVE_EVENT = 7,
    CREATE_FILE_EVENT = 8,
    APPEND_BLOCK_EVENT = 9,
    EXEC_LOAD_EVENT = 10,
    DELETE_FILE_EVENT = 11,
    NEW_LOAD_EVENT = 12,
    RAND_EVENT = 13,
    USER_VAR_EVENT = 14,
    FORMAT_DESCRIPTION_EVENT = 15,
    XID_EVENT = 16,
    BEGIN_LOAD_QUERY_EVENT = 17,
    EXECUTE_LOAD_QUERY_EVENT = 18,
    TABLE_MAP_EVENT = 19,
    PRE_GA_WRITE_ROWS_EVENT = 20,
    PRE_GA_UPDATE_ROWS_EVENT = 21,
    PRE_GA_DELETE_ROWS_EVENT = 22,
    WRITE_ROWS_EVENT_V1 = 23,
    UPDATE_ROWS_EVENT_V1 = 24,
    DELETE_ROWS_EVENT_V1 = 25,
    INCIDENT_EVENT = 26,
    HEARTBEAT_LOG_EVENT = 27,
    IGNORABLE_LOG_EVENT = 28,
    ROWS_QUERY_LOG_EVENT = 29,
    WRITE_ROWS_EVENT = 30,
    UPDATE_ROWS_EVENT = 31,
    DELETE_ROWS_EVENT = 32,
    GTID_LOG_EVENT = 33,
    ANONYMOUS_GTID_LOG_EVENT = 34,
    PREVIOUS_GTIDS_LOG_EVENT = 35,
    TRANSACTION_CONTEXT_EVENT = 36,
    VIEW_CHANGE_EVENT = 37,
    XA_PREPARE_LOG_EVENT = 38,
    PARTIAL_UPDATE_ROWS_EVENT = 39,
    TRANSACTION_PAYLOAD_EVENT = 40,
    HEARTBEAT_LOG_EVENT_V2 = 41,
    GTID_TAGGED_LOG_EVENT = 42,
    AURORA_PADDING_EVENT = 100, /* Amazon Aurora, between transactions */
    /* MariaDB */
    ANNOTATE_ROWS_EVENT = 160,
    BINLOG_CHECKPOINT_EVENT = 161,
    MARIA_GTID_EVENT = 162,
    GTID_LIST_EVENT = 163,
    START_ENCRYPTION_EVENT = 164,
    QUERY_COMPRESSED_EVENT = 165,
    WRITE_ROWS_COMPRESSED_EVENT_V1 = 166,
    UPDATE_ROWS_COMPRESSED_EVENT_V1 = 167,
    DELETE_ROWS_COMPRESSED_EVENT_V1 = 168,
    WRITE_ROWS_COMPRESSED_EVENT = 169,
    UPDATE_ROWS_COMPRESSED_EVENT = 170,
    DELETE_ROWS_COMPRESSED_EVENT = 171,
};

/* Common header flags. */
#define LOG_EVENT_BINLOG_IN_USE_F 0x0001
#define LOG_EVENT_ARTIFICIAL_F 0x0020
#define LOG_EVENT_IGNORABLE_F 0x0080
#define LOG_EVENT_SKIP_REPLICATION_F 0x8000 /* MariaDB skip_replication */

/* ROWS event flags. */
#define STMT_END_F 0x0001

/* MariaDB GTID flags2. */
#define FL_STANDALONE 0x01
#define FL_GROUP_COMMIT_ID 0x02
#define FL_TRANSACTIONAL 0x04
#define FL_DDL 0x20
#define FL_PREPARED_XA 0x40
#define FL_COMPLETED_XA 0x80

/* Names exactly as the .events.txt fixture listings print them. */
static const char *const type_names[256] = {
    [START_EVENT_V3] = "START_V3",
    [QUERY_EVENT] = "QUERY",
    [STOP_EVENT] = "STOP",
    [ROTATE_EVENT] = "ROTATE",
    [INTVAR_EVENT] = "INTVAR",
    [LOAD_EVENT] = "LOAD",
    [SLAVE_EVENT] = "SLAVE",
    [CREATE_FILE_EVENT] = "CREATE_FILE",
    [APPEND_BLOCK_EVENT] = "APPEND_BLOCK",
    [EXEC_LOAD_EVENT] = "EXEC_LOAD",
    [DELETE_FILE_EVENT] = "DELETE_FILE",
    [NEW_LOAD_EVENT] = "NEW_LOAD",
    [RAND_EVENT] = "RAND",
    [USER_VAR_EVENT] = "USER_VAR",
    [FORMAT_DESCRIPTION_EVENT] = "FORMAT_DESCRIPTION",
    [XID_EVENT] = "XID",
    [BEGIN_LOAD_QUERY_EVENT] = "BEGIN_LOAD_QUERY",
    [EXECUTE_LOAD_QUERY_EVENT] = "EXECUTE_LOAD_QUERY",
    [TABLE_MAP_EVENT] = "TABLE_MAP",
    [PRE_GA_WRITE_ROWS_EVENT] = "PRE_GA_WRITE_ROWS",
    [PRE_GA_UPDATE_ROWS_EVENT] = "PRE_GA_UPDATE_ROWS",
    [PRE_GA_DELETE_ROWS_EVENT] = "PRE_GA_DELETE_ROWS",
    [WRITE_ROWS_EVENT_V1] = "WRITE_ROWS_V1",
    [UPDATE_ROWS_EVENT_V1] = "UPDATE_ROWS_V1",
    [DELETE_ROWS_EVENT_V1] = "DELETE_ROWS_V1",
    [INCIDENT_EVENT] = "INCIDENT",
    [HEARTBEAT_LOG_EVENT] = "HEARTBEAT",
    [IGNORABLE_LOG_EVENT] = "IGNORABLE",
    [ROWS_QUERY_LOG_EVENT] = "ROWS_QUERY",
    [WRITE_ROWS_EVENT] = "WRITE_ROWS_V2",
    [UPDATE_ROWS_EVENT] = "UPDATE_ROWS_V2",
    [DELETE_ROWS_EVENT] = "DELETE_ROWS_V2",
    [GTID_LOG_EVENT] = "GTID",
    [ANONYMOUS_GTID_LOG_EVENT] = "ANONYMOUS_GTID",
    [PREVIOUS_GTIDS_LOG_EVENT] = "PREVIOUS_GTIDS",
    [TRANSACTION_CONTEXT_EVENT] = "TRANSACTION_CONTEXT",
    [VIEW_CHANGE_EVENT] = "VIEW_CHANGE",
    [XA_PREPARE_LOG_EVENT] = "XA_PREPARE",
    [PARTIAL_UPDATE_ROWS_EVENT] = "PARTIAL_UPDATE_ROWS",
    [TRANSACTION_PAYLOAD_EVENT] = "TRANSACTION_PAYLOAD",
    [HEARTBEAT_LOG_EVENT_V2] = "HEARTBEAT_V2",
    [GTID_TAGGED_LOG_EVENT] = "GTID_TAGGED",
    [ANNOTATE_ROWS_EVENT] = "MARIA_ANNOTATE_ROWS",
    [BINLOG_CHECKPOINT_EVENT] = "MARIA_BINLOG_CHECKPOINT",
    [MARIA_GTID_EVENT] = "MARIA_GTID",
    [GTID_LIST_EVENT] = "MARIA_GTID_LIST",
    [START_ENCRYPTION_EVENT] = "MARIA_START_ENCRYPTION",
    [QUERY_COMPRESSED_EVENT] = "MARIA_QUERY_COMPRESSED",
    [WRITE_ROWS_COMPRESSED_EVENT_V1] = "MARIA_WRITE_ROWS_COMPRESSED_V1",
    [UPDATE_ROWS_COMPRESSED_EVENT_V1] = "MARIA_UPDATE_ROWS_COMPRESSED_V1",
    [DELETE_ROWS_COMPRESSED_EVENT_V1] = "MARIA_DELETE_ROWS_COMPRESSED_V1",
    [WRITE_ROWS_COMPRESSED_EVENT] = "MARIA_WRITE_ROWS_COMPRESSED",
    [UPDATE_ROWS_COMPRESSED_EVENT] = "MARIA_UPDATE_ROWS_COMPRESSED",
    [DELETE_ROWS_COMPRESSED_EVENT] = "MARIA_DELETE_ROWS_COMPRESSED",
};

const char *cdc_binlog_type_name(uint8_t type)
{
    return type_names[type];
}

/* ==== Bounds-checked reader ========================================== */

/* A cursor over [p, end).  Every read checks the remaining length; a
 * short read sets `bad` and returns zeros / NULL, so a parser can read a
 * whole structure and test `bad` once before using what it read. */
typedef struct rd {
    const uint8_t *p, *end;
    int bad;
} rd_t;

static inline void rd_init(rd_t *r, const uint8_t *p, size_t n)
{
    r->p = p;
    r->end = p + n;
    r->bad = 0;
}

static inline size_t rd_left(const rd_t *r)
{
    return r->bad || r->p > r->end ? 0 : (size_t)(r->end - r->p);
}

static inline const uint8_t *rd_take(rd_t *r, size_t n)
{
    if (r->bad || r->p > r->end || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *q = r->p;
    r->p += n;
    return q;
}

static inline uint64_t le_n(const uint8_t *q, size_t n)
{
    uint64_t v = 0;
    while (n--)
        v = (v << 8) | q[n];
    return v;
}

static inline uint64_t rd_le(rd_t *r, size_t n)
{
    const uint8_t *q = rd_take(r, n);
    return q ? le_n(q, n) : 0;
}

#define rd_u8(r) ((uint8_t)rd_le((r), 1))
#define rd_u16(r) ((uint16_t)rd_le((r), 2))
#define rd_u32(r) ((uint32_t)rd_le((r), 4))
#define rd_u64(r) (rd_le((r), 8))

/* MySQL length-encoded integer; 0xFB (NULL) and 0xFF are invalid here. */
static uint64_t rd_lenenc(rd_t *r)
{
    uint8_t b = rd_u8(r);
    if (r->bad)
        return 0;
    if (b < 0xfb)
        return b;
    if (b == 0xfc)
        return rd_le(r, 2);
    if (b == 0xfd)
        return rd_le(r, 3);
    if (b == 0xfe)
        return rd_le(r, 8);
    r->bad = 1;
    return 0;
}

/* MySQL serialization library variable-length unsigned integer: the
 * number of trailing one bits of the first byte + 1 gives the byte count
 * (9 when the first byte is 0xff); the value is the little-endian number
 * shifted right by that count. */
static uint64_t rd_varlen(rd_t *r)
{
    const uint8_t *q = rd_take(r, 1);
    if (!q)
        return 0;
    unsigned n = 1;
    while (n <= 8 && (q[0] >> (n - 1)) & 1)
        n++;
    if (n == 9) {
        return rd_le(r, 8);
    }
    r->p--; /* re-read the first byte as part of the number */
    const uint8_t *b = rd_take(r, n);
    if (!b)
        return 0;
    return le_n(b, n) >> n;
}

static int64_t rd_varlen_signed(rd_t *r)
{
    uint64_t u = rd_varlen(r);
    return (u & 1) ? -(int64_t)(u >> 1) - 1 : (int64_t)(u >> 1);
}

/* ==== Decoder state =================================================== */

typedef struct tmap_ent {
    uint64_t id;
    cdc_table_t *tbl;
    uint8_t *raw; /* TABLE_MAP data after the common header (for reuse) */
    size_t rawlen;
} tmap_ent_t;

typedef struct maria_gtid {
    uint32_t domain, server;
    uint64_t seq;
} maria_gtid_t;

typedef struct gno_iv {
    int64_t start, end; /* [start, end) */
} gno_iv_t;

typedef struct mysql_sid {
    uint8_t uuid[16];
    char tag[33];
    gno_iv_t *iv;
    size_t niv, cap;
} mysql_sid_t;

/* The GTID that opened the current group. */
typedef struct grp_gtid {
    int kind; /* 0 none, 1 MariaDB, 2 MySQL, 3 MySQL anonymous */
    char text[128];
    uint32_t server_id;
    int64_t commit_us; /* MySQL commit timestamp, 0 if absent */
    uint8_t flags;     /* MariaDB flags2 */
    maria_gtid_t mg;
    uint8_t uuid[16];
    char tag[33];
    int64_t gno;
    char xa_key[300]; /* MariaDB COMPLETED_XA: the XID it completes */
} grp_gtid_t;

typedef struct xa_held {
    char key[300];
    cdc_txn_t *tx;
    grp_gtid_t gtid; /* GTID of the prepare group */
} xa_held_t;

/* The event being decoded. */
typedef struct evctx {
    const uint8_t *ev;
    size_t len;    /* without the checksum */
    uint64_t off;  /* offset in the file/stream (outer event if depth) */
    uint64_t ioff; /* offset inside the payload when depth == 1 */
    uint32_t size; /* event_size of the (outer) event */
    uint8_t type;
    uint32_t ts, server_id, log_pos;
    uint16_t flags;
    int depth;
} evctx_t;

struct cdc_binlog {
    cdc_binlog_opts_t o;

    /* format, from the last FDE */
    int have_fde;
    int checksum; /* -1 unknown, 0 none, 1 crc32 */
    int mariadb;
    char server_version[51];
    uint8_t phl[256]; /* post-header length by type code */

    char file[256];

    /* table maps by table_id */
    tmap_ent_t *maps;
    size_t nmaps, capmaps;

    /* the open event group */
    int in_group;     /* BEGIN seen or implied */
    int implicit;     /* opened by a rows event without BEGIN */
    int xa_group;     /* the group is an XA transaction branch */
    int rows_pending; /* TABLE_MAP seen, statement not ended */
    grp_gtid_t g;
    cdc_txn_t *cur;
    uint32_t frag;      /* fragments of the open group handed out */
    uint32_t frag_lost; /* fragments of a group that did not commit */
    uint32_t emit_frag; /* fragment index of the group emit() finishes */
    uint32_t payload_row; /* row counter inside a TRANSACTION_PAYLOAD */
    cdc_txn_t *payload_out;

    /* XA transactions prepared but not yet committed */
    xa_held_t *xa;
    size_t nxa;

    /* GTID state */
    maria_gtid_t *mg;
    size_t nmg;
    mysql_sid_t *ms;
    size_t nms;

    cdc_pos_t pos;
    int warned_gtid_len;
    int warned_stmt; /* statement-based DML seen (warned once) */

    cdc_buf_t zbuf; /* decompressed rows / statement */
    cdc_buf_t pbuf; /* decompressed transaction payload */
    cdc_buf_t tbuf; /* scratch text */
    ZSTD_DCtx *zstd;
    char evname[8];
};

static int dispatch(cdc_binlog_t *bl, evctx_t *e, cdc_txn_t **out,
                    cdc_err_t *err);
static int binlog_feed1(cdc_binlog_t *bl, const uint8_t *ev, size_t len,
                        uint64_t offset, cdc_txn_t **out, cdc_err_t *err);
static int is_rows_type(uint8_t t);

/* ==== Errors ========================================================== */

static const char *ev_name(cdc_binlog_t *bl, uint8_t type)
{
    if (type_names[type])
        return type_names[type];
    snprintf(bl->evname, sizeof(bl->evname), "%u", type);
    return bl->evname;
}

static const char *file_or_stream(const cdc_binlog_t *bl)
{
    return bl->file[0] ? bl->file : "stream";
}

/* Error naming what failed, the event type and its byte offset. */
static int everr(cdc_binlog_t *bl, const evctx_t *e, cdc_err_t *err,
                 const char *fmt, ...) CDC_PRINTF(4, 5);
static int everr(cdc_binlog_t *bl, const evctx_t *e, cdc_err_t *err,
                 const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (e->depth)
        cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                    "%s (%s event at offset %" PRIu64
                    " inside the TRANSACTION_PAYLOAD at offset %" PRIu64
                    " of %s)",
                    what, ev_name(bl, e->type), e->ioff, e->off,
                    file_or_stream(bl));
    else
        cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                    "%s (%s event at offset %" PRIu64 " of %s)", what,
                    ev_name(bl, e->type), e->off, file_or_stream(bl));
    return -1;
}

static int short_event(cdc_binlog_t *bl, const evctx_t *e, cdc_err_t *err)
{
    everr(bl, e, err, "event body too short (%zu bytes)", e->len);
    cdc_err_hint(err, "the binlog is corrupt or truncated; check it with "
                      "mysqlbinlog/mariadb-binlog");
    return -1;
}

/* ==== Construction ==================================================== */

cdc_binlog_t *cdc_binlog_new(const cdc_binlog_opts_t *o)
{
    cdc_binlog_t *bl = cdc_xcalloc(1, sizeof(*bl));
    if (o)
        bl->o = *o;
    else
        bl->o.verify_checksum = 1;
    bl->checksum = -1;
    /* Before the first FDE (a dump stream starts with a fake ROTATE)
     * assume the binlog v4 post-header lengths of the events that may
     * precede it. */
    bl->phl[ROTATE_EVENT] = 8;
    return bl;
}

static void sid_free_all(cdc_binlog_t *bl)
{
    for (size_t i = 0; i < bl->nms; i++)
        free(bl->ms[i].iv);
    free(bl->ms);
    bl->ms = NULL;
    bl->nms = 0;
}

static void maps_clear(cdc_binlog_t *bl)
{
    for (size_t i = 0; i < bl->nmaps; i++) {
        cdc_table_destroy(bl->maps[i].tbl);
        free(bl->maps[i].raw);
    }
    bl->nmaps = 0;
}

static void group_reset(cdc_binlog_t *bl)
{
    if (bl->frag) { /* commit_group() clears frag first */
        bl->frag_lost = bl->frag;
        bl->frag = 0;
    }
    cdc_txn_destroy(bl->cur);
    bl->cur = NULL;
    bl->in_group = 0;
    bl->implicit = 0;
    bl->xa_group = 0;
    bl->rows_pending = 0;
    memset(&bl->g, 0, sizeof(bl->g));
}

void cdc_binlog_destroy(cdc_binlog_t *bl)
{
    if (!bl)
        return;
    group_reset(bl);
    maps_clear(bl);
    free(bl->maps);
    for (size_t i = 0; i < bl->nxa; i++)
        cdc_txn_destroy(bl->xa[i].tx);
    free(bl->xa);
    cdc_txn_destroy(bl->payload_out);
    free(bl->mg);
    sid_free_all(bl);
    cdc_buf_free(&bl->zbuf);
    cdc_buf_free(&bl->pbuf);
    cdc_buf_free(&bl->tbuf);
    ZSTD_freeDCtx(bl->zstd);
    free(bl);
}

void cdc_binlog_set_file(cdc_binlog_t *bl, const char *name)
{
    snprintf(bl->file, sizeof(bl->file), "%s", name ? name : "");
}

const char *cdc_binlog_get_file(const cdc_binlog_t *bl)
{
    return bl->file;
}

int cdc_binlog_checksum_alg(const cdc_binlog_t *bl)
{
    return bl->checksum;
}

int cdc_binlog_is_mariadb(const cdc_binlog_t *bl)
{
    return bl->mariadb;
}

const cdc_pos_t *cdc_binlog_pos(const cdc_binlog_t *bl)
{
    return &bl->pos;
}

/* ==== GTID state ====================================================== */

static void uuid_text(const uint8_t *u, char out[37])
{
    static const char hx[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hx[u[i] >> 4];
        *o++ = hx[u[i] & 15];
    }
    *o = '\0';
}

/* Parse 32 hex digits (dashes anywhere allowed); returns chars used. */
static int uuid_parse(const char *s, uint8_t u[16])
{
    int n = 0, i = 0;
    while (n < 32) {
        if (s[i] == '-') {
            i++;
            continue;
        }
        int h = cdc_hexval((unsigned char)s[i]);
        if (h < 0)
            return -1;
        if (n & 1)
            u[n / 2] = (uint8_t)(u[n / 2] << 4 | h);
        else
            u[n / 2] = (uint8_t)h;
        n++;
        i++;
    }
    return i;
}

static void maria_state_set(cdc_binlog_t *bl, const maria_gtid_t *g)
{
    size_t i;
    for (i = 0; i < bl->nmg; i++)
        if (bl->mg[i].domain == g->domain) {
            bl->mg[i] = *g;
            return;
        }
    /* keep sorted by domain */
    bl->mg = cdc_xrealloc(bl->mg, (bl->nmg + 1) * sizeof(*bl->mg));
    for (i = bl->nmg; i > 0 && bl->mg[i - 1].domain > g->domain; i--)
        bl->mg[i] = bl->mg[i - 1];
    bl->mg[i] = *g;
    bl->nmg++;
}

static mysql_sid_t *sid_get(cdc_binlog_t *bl, const uint8_t *uuid,
                            const char *tag)
{
    size_t i;
    for (i = 0; i < bl->nms; i++)
        if (!memcmp(bl->ms[i].uuid, uuid, 16) && !strcmp(bl->ms[i].tag, tag))
            return &bl->ms[i];
    /* keep sorted by uuid, then tag ("" first) */
    bl->ms = cdc_xrealloc(bl->ms, (bl->nms + 1) * sizeof(*bl->ms));
    for (i = bl->nms; i > 0; i--) {
        int c = memcmp(bl->ms[i - 1].uuid, uuid, 16);
        if (c < 0 || (c == 0 && strcmp(bl->ms[i - 1].tag, tag) < 0))
            break;
        bl->ms[i] = bl->ms[i - 1];
    }
    mysql_sid_t *s = &bl->ms[i];
    memset(s, 0, sizeof(*s));
    memcpy(s->uuid, uuid, 16);
    snprintf(s->tag, sizeof(s->tag), "%s", tag);
    bl->nms++;
    return s;
}

/* Add [start, end) to a sid's interval list, merging neighbours. */
static void sid_add(mysql_sid_t *s, int64_t start, int64_t end)
{
    if (end <= start)
        return;
    /* fast path: sequential gnos extend the last interval */
    if (s->niv && s->iv[s->niv - 1].end == start) {
        s->iv[s->niv - 1].end = end;
        return;
    }
    if (s->niv == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4;
        s->iv = cdc_xrealloc(s->iv, s->cap * sizeof(*s->iv));
    }
    size_t i = s->niv;
    while (i > 0 && s->iv[i - 1].start > start) {
        s->iv[i] = s->iv[i - 1];
        i--;
    }
    s->iv[i].start = start;
    s->iv[i].end = end;
    s->niv++;
    /* merge overlapping/adjacent intervals */
    size_t w = 0;
    for (size_t k = 1; k < s->niv; k++) {
        if (s->iv[k].start <= s->iv[w].end) {
            if (s->iv[k].end > s->iv[w].end)
                s->iv[w].end = s->iv[k].end;
        } else {
            s->iv[++w] = s->iv[k];
        }
    }
    s->niv = w + 1;
}

/* Format the GTID state into out (cap bytes); returns 0, -1 if cut. */
static int state_text(cdc_binlog_t *bl, char *out, size_t cap)
{
    cdc_buf_t *b = &bl->tbuf;
    cdc_buf_reset(b);
    if (bl->mariadb || (!bl->nms && bl->nmg)) {
        for (size_t i = 0; i < bl->nmg; i++)
            cdc_buf_printf(b, "%s%" PRIu32 "-%" PRIu32 "-%" PRIu64,
                           i ? "," : "", bl->mg[i].domain, bl->mg[i].server,
                           bl->mg[i].seq);
    } else {
        for (size_t i = 0; i < bl->nms; i++) {
            mysql_sid_t *s = &bl->ms[i];
            if (!s->niv)
                continue;
            if (i == 0 || memcmp(bl->ms[i - 1].uuid, s->uuid, 16)) {
                char u[37];
                uuid_text(s->uuid, u);
                cdc_buf_printf(b, "%s%s", b->len ? "," : "", u);
            }
            if (s->tag[0])
                cdc_buf_printf(b, ":%s", s->tag);
            for (size_t k = 0; k < s->niv; k++) {
                if (s->iv[k].end - 1 == s->iv[k].start)
                    cdc_buf_printf(b, ":%" PRId64, s->iv[k].start);
                else
                    cdc_buf_printf(b, ":%" PRId64 "-%" PRId64, s->iv[k].start,
                                   s->iv[k].end - 1);
            }
        }
    }
    snprintf(out, cap, "%s", b->p ? b->p : "");
    return b->len < cap ? 0 : -1;
}

static void skip_space(const char **s)
{
    while (**s == ' ' || **s == '\t' || **s == '\n' || **s == '\r')
        (*s)++;
}

void cdc_binlog_set_gtid_state(cdc_binlog_t *bl, const char *state)
{
    bl->nmg = 0;
    sid_free_all(bl);
    if (!state)
        return;
    const char *s = state;
    if (!strchr(state, ':')) {
        /* MariaDB: d-s-n,d-s-n */
        while (*s) {
            skip_space(&s);
            char *e;
            maria_gtid_t g;
            unsigned long long d = strtoull(s, &e, 10);
            if (e == s || *e != '-')
                break;
            s = e + 1;
            unsigned long long sv = strtoull(s, &e, 10);
            if (e == s || *e != '-')
                break;
            s = e + 1;
            unsigned long long n = strtoull(s, &e, 10);
            if (e == s)
                break;
            g.domain = (uint32_t)d;
            g.server = (uint32_t)sv;
            g.seq = n;
            maria_state_set(bl, &g);
            s = e;
            skip_space(&s);
            if (*s != ',')
                break;
            s++;
        }
    } else {
        /* MySQL: uuid[:tag]:a-b:c,uuid2:... */
        while (*s) {
            skip_space(&s);
            uint8_t u[16];
            int n = uuid_parse(s, u);
            if (n < 0)
                break;
            s += n;
            char tag[33] = "";
            while (*s == ':') {
                s++;
                if (*s >= '0' && *s <= '9') {
                    char *e;
                    long long a = strtoll(s, &e, 10), b = a;
                    s = e;
                    if (*s == '-') {
                        s++;
                        b = strtoll(s, &e, 10);
                        s = e;
                    }
                    sid_add(sid_get(bl, u, tag), a, b + 1);
                } else {
                    size_t k = 0;
                    while ((isalnum((unsigned char)*s) || *s == '_') &&
                           k < sizeof(tag) - 1)
                        tag[k++] = *s++;
                    tag[k] = '\0';
                }
            }
            skip_space(&s);
            if (*s != ',')
                break;
            s++;
        }
    }
    state_text(bl, bl->pos.gtid, sizeof(bl->pos.gtid));
}

/* ==== Transactions ==================================================== */

static cdc_txn_t *cur_txn(cdc_binlog_t *bl)
{
    if (!bl->cur)
        bl->cur = cdc_txn_new();
    return bl->cur;
}

/* Record the group's GTID in the state (at commit). */
static void state_apply(cdc_binlog_t *bl, const grp_gtid_t *g)
{
    if (g->kind == 1)
        maria_state_set(bl, &g->mg);
    else if (g->kind == 2 && g->gno > 0)
        sid_add(sid_get(bl, g->uuid, g->tag), g->gno, g->gno + 1);
}

/* Finish a transaction: tx (NULL = an empty one) committed by event e.
 * Fills commit time, origin, GTID and the resume position, and hands it
 * out through *out (or holds it until the end of a TRANSACTION_PAYLOAD).
 * Returns 1, or -1 on error. */
/* Forgets the changes decoded so far of tx (our own write, skipped). */
static void drop_changes(cdc_txn_t *tx)
{
    for (uint32_t i = 0; i < tx->nchanges; i++)
        cdc_table_destroy(tx->changes[i].tbl);
    tx->nchanges = 0;
}

static int emit(cdc_binlog_t *bl, const evctx_t *e, cdc_txn_t *tx,
                const grp_gtid_t *g, uint64_t xid, cdc_txn_t **out,
                cdc_err_t *err)
{
    if (!tx)
        tx = cdc_txn_new();
    if (tx->skipped && tx->nchanges) {
        drop_changes(tx);
    }
    if (g->commit_us > 0)
        tx->commit_us = g->commit_us;
    else
        tx->commit_us = (int64_t)e->ts * 1000000;
    tx->server_id = g->kind ? g->server_id : e->server_id;
    if (bl->o.connector)
        tx->connector = bl->o.connector;
    else
        tx->connector = bl->mariadb ? "mariadb" : "mysql";
    snprintf(tx->gtid, sizeof(tx->gtid), "%s", g->text);
    tx->xid = xid;
    tx->file = cdc_arena_memdup(&tx->arena, bl->file, strlen(bl->file));
    tx->frag = bl->emit_frag; /* the last fragment of a cut group */
    tx->more = 0;
    bl->emit_frag = 0;
    state_apply(bl, g);
    snprintf(tx->pos.file, sizeof(tx->pos.file), "%s", bl->file);
    tx->pos.offset = e->off + e->size;
    if (state_text(bl, tx->pos.gtid, sizeof(tx->pos.gtid)) < 0 &&
        !bl->warned_gtid_len) {
        bl->warned_gtid_len = 1;
        CDC_WARN(FAC, "GTID state longer than %zu bytes is cut in the "
                      "position; resume by file/offset",
                 sizeof(tx->pos.gtid) - 1);
    }
    bl->pos = tx->pos;
    if (e->depth) {
        if (bl->payload_out) {
            cdc_txn_destroy(tx);
            return everr(bl, e, err,
                         "more than one transaction in one "
                         "TRANSACTION_PAYLOAD");
        }
        bl->payload_out = tx;
        return 0;
    }
    *out = tx;
    return 1;
}

/* Commit the open group (XID, QUERY COMMIT, STMT_END of an implicit
 * group, standalone DDL). */
static int commit_group(cdc_binlog_t *bl, const evctx_t *e, uint64_t xid,
                        cdc_txn_t **out, cdc_err_t *err)
{
    cdc_txn_t *tx = bl->cur;
    grp_gtid_t g = bl->g;
    bl->cur = NULL;
    bl->emit_frag = bl->frag;
    bl->frag = 0;
    group_reset(bl);
    return emit(bl, e, tx, &g, xid, out, err);
}

/* Drop the open group (ROLLBACK): its rows never appear. */
static void rollback_group(cdc_binlog_t *bl)
{
    group_reset(bl);
}

static xa_held_t *xa_find(cdc_binlog_t *bl, const char *key)
{
    for (size_t i = 0; i < bl->nxa; i++)
        if (!strcmp(bl->xa[i].key, key))
            return &bl->xa[i];
    return NULL;
}

static void xa_remove(cdc_binlog_t *bl, xa_held_t *h)
{
    size_t i = (size_t)(h - bl->xa);
    memmove(&bl->xa[i], &bl->xa[i + 1], (bl->nxa - i - 1) * sizeof(*h));
    bl->nxa--;
}

static void xid_key(char *out, size_t cap, uint32_t format_id,
                    const uint8_t *gtrid, size_t glen, const uint8_t *bqual,
                    size_t blen)
{
    static const char hx[] = "0123456789abcdef";
    size_t o = 0;
    int n = snprintf(out, cap, "%" PRIu32 ":", format_id);
    o = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; i < glen && o + 3 < cap; i++) {
        out[o++] = hx[gtrid[i] >> 4];
        out[o++] = hx[gtrid[i] & 15];
    }
    if (o + 2 < cap)
        out[o++] = ':';
    for (size_t i = 0; i < blen && o + 3 < cap; i++) {
        out[o++] = hx[bqual[i] >> 4];
        out[o++] = hx[bqual[i] & 15];
    }
    out[o < cap ? o : cap - 1] = '\0';
}

/* Parse one XID component of an XA statement: X'hex', 'text' or 0xhex.
 * Returns bytes stored in buf (max 64) or -1. */
static int xa_lit(const char **sp, uint8_t *buf)
{
    const char *s = *sp;
    int n = 0;
    skip_space(&s);
    if ((s[0] == 'X' || s[0] == 'x') && s[1] == '\'') {
        s += 2;
        while (*s && *s != '\'') {
            int h1 = cdc_hexval((unsigned char)s[0]);
            int h2 = h1 < 0 ? -1 : cdc_hexval((unsigned char)s[1]);
            if (h2 < 0 || n >= 64)
                return -1;
            buf[n++] = (uint8_t)(h1 << 4 | h2);
            s += 2;
        }
        if (*s != '\'')
            return -1;
        s++;
    } else if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        while (cdc_hexval((unsigned char)s[0]) >= 0 &&
               cdc_hexval((unsigned char)s[1]) >= 0 && n < 64) {
            buf[n++] = (uint8_t)(cdc_hexval((unsigned char)s[0]) << 4 |
                                 cdc_hexval((unsigned char)s[1]));
            s += 2;
        }
    } else if (s[0] == '\'' || s[0] == '"') {
        char q = *s++;
        while (*s && n < 64) {
            if (*s == q && s[1] == q) {
                buf[n++] = (uint8_t)q;
                s += 2;
                continue;
            }
            if (*s == q)
                break;
            if (*s == '\\' && s[1])
                s++;
            buf[n++] = (uint8_t)*s++;
        }
        if (*s != q)
            return -1;
        s++;
    } else {
        return -1;
    }
    *sp = s;
    return n;
}

/* XID of "XA COMMIT <xid> ..." (s points after the keywords). */
static int xa_stmt_key(const char *s, char *key, size_t cap)
{
    uint8_t g[64], b[64];
    int gl, bln = 0;
    unsigned long fmt = 1;
    gl = xa_lit(&s, g);
    if (gl < 0)
        return -1;
    skip_space(&s);
    if (*s == ',') {
        s++;
        bln = xa_lit(&s, b);
        if (bln < 0)
            return -1;
        skip_space(&s);
        if (*s == ',') {
            s++;
            skip_space(&s);
            char *e;
            fmt = strtoul(s, &e, 10);
            if (e == s)
                return -1;
        }
    }
    xid_key(key, cap, (uint32_t)fmt, g, (size_t)gl, b, (size_t)bln);
    return 0;
}

/* Move the open group to the held XA list (XA PREPARE). */
static void xa_hold(cdc_binlog_t *bl, const char *key)
{
    xa_held_t *h = xa_find(bl, key);
    if (h) {
        CDC_WARN(FAC, "XA transaction %s prepared twice; keeping the newer",
                 key);
        cdc_txn_destroy(h->tx);
        xa_remove(bl, h);
    }
    bl->xa = cdc_xrealloc(bl->xa, (bl->nxa + 1) * sizeof(*bl->xa));
    h = &bl->xa[bl->nxa++];
    memset(h, 0, sizeof(*h));
    snprintf(h->key, sizeof(h->key), "%s", key);
    h->tx = bl->cur ? bl->cur : cdc_txn_new();
    h->gtid = bl->g;
    bl->cur = NULL;
    group_reset(bl);
}

/* XA COMMIT/ROLLBACK of a prepared transaction (commit=0: rollback). */
static int xa_finish(cdc_binlog_t *bl, const evctx_t *e, const char *key,
                     int commit, cdc_txn_t **out, cdc_err_t *err)
{
    xa_held_t *h = key ? xa_find(bl, key) : NULL;
    cdc_txn_t *tx = NULL;
    grp_gtid_t g = bl->g;
    if (h) {
        /* the prepare group's GTID is done too */
        state_apply(bl, &h->gtid);
        if (commit)
            tx = h->tx;
        else
            cdc_txn_destroy(h->tx);
        xa_remove(bl, h);
    } else if (commit) {
        CDC_WARN(FAC,
                 "XA COMMIT of %s at offset %" PRIu64 " in %s: its XA "
                 "PREPARE was not seen (before the start position); the "
                 "transaction's rows are not in this output",
                 key ? key : "an unparsable XID", e->off, file_or_stream(bl));
    }
    group_reset(bl);
    return emit(bl, e, tx, &g, 0, out, err);
}

/* ==== QUERY =========================================================== */

enum {
    Q_OTHER,
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_SAVEPOINT, /* SAVEPOINT, ROLLBACK TO, RELEASE SAVEPOINT */
    Q_XA_START,
    Q_XA_END,
    Q_XA_PREPARE,
    Q_XA_COMMIT,
    Q_XA_ROLLBACK,
};

/* Skip blanks and comments (but not executable comments, which start
 * with a slash, a star and a bang). */
static const char *sql_skip(const char *s, const char *end)
{
    for (;;) {
        while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' ||
                           *s == '\r' || *s == ';'))
            s++;
        if (end - s >= 2 && s[0] == '/' && s[1] == '*' &&
            !(end - s >= 3 && s[2] == '!')) {
            const char *c = s + 2;
            while (end - c >= 2 && !(c[0] == '*' && c[1] == '/'))
                c++;
            s = end - c >= 2 ? c + 2 : end;
            continue;
        }
        if (end - s >= 2 && s[0] == '-' && s[1] == '-') {
            while (s < end && *s != '\n')
                s++;
            continue;
        }
        if (s < end && *s == '#') {
            while (s < end && *s != '\n')
                s++;
            continue;
        }
        return s;
    }
}

/* Case-insensitive keyword match followed by a word boundary. */
static int kw(const char **sp, const char *end, const char *word)
{
    const char *s = sql_skip(*sp, end);
    size_t n = strlen(word);
    if ((size_t)(end - s) < n || strncasecmp(s, word, n) != 0)
        return 0;
    if ((size_t)(end - s) > n &&
        (isalnum((unsigned char)s[n]) || s[n] == '_'))
        return 0;
    *sp = s + n;
    return 1;
}

static int classify(const char *q, size_t n, const char **rest)
{
    const char *s = q, *end = q + n;
    *rest = end;
    if (kw(&s, end, "BEGIN"))
        return Q_BEGIN;
    if (kw(&s, end, "COMMIT"))
        return Q_COMMIT;
    if (kw(&s, end, "SAVEPOINT") || kw(&s, end, "RELEASE"))
        return Q_SAVEPOINT;
    if (kw(&s, end, "ROLLBACK")) {
        const char *t = s;
        if (kw(&t, end, "TO"))
            return Q_SAVEPOINT;
        if (kw(&t, end, "WORK") && kw(&t, end, "TO"))
            return Q_SAVEPOINT;
        return Q_ROLLBACK;
    }
    if (kw(&s, end, "XA")) {
        int r = Q_OTHER;
        if (kw(&s, end, "START") || kw(&s, end, "BEGIN"))
            r = Q_XA_START;
        else if (kw(&s, end, "END"))
            r = Q_XA_END;
        else if (kw(&s, end, "PREPARE"))
            r = Q_XA_PREPARE;
        else if (kw(&s, end, "COMMIT"))
            r = Q_XA_COMMIT;
        else if (kw(&s, end, "ROLLBACK"))
            r = Q_XA_ROLLBACK;
        *rest = s;
        return r;
    }
    return Q_OTHER;
}

/* MariaDB compressed block (header 0x80|alg<<4|n, n-byte BE length,
 * zlib stream) -> bl->zbuf. */
static int maria_uncompress(cdc_binlog_t *bl, const evctx_t *e,
                            const uint8_t *p, size_t n, cdc_err_t *err)
{
    if (n < 1)
        return everr(bl, e, err, "empty compressed block");
    uint8_t h = p[0];
    unsigned lb = h & 7, alg = (h >> 4) & 7;
    if (!(h & 0x80) || alg != 0 || lb < 1 || lb > 4)
        return everr(bl, e, err,
                     "bad compressed block header 0x%02x (algorithm %u, "
                     "length bytes %u)",
                     h, alg, lb);
    if (n < 1 + lb)
        return everr(bl, e, err, "compressed block too short");
    uint64_t ulen = 0;
    for (unsigned i = 0; i < lb; i++)
        ulen = ulen << 8 | p[1 + i];
    size_t clen = n - 1 - lb;
    /* zlib cannot expand more than ~1032:1; reject lengths beyond that
     * before allocating */
    if (ulen > (uint64_t)clen * 1032 + 64)
        return everr(bl, e, err,
                     "compressed block claims %" PRIu64
                     " bytes from %zu compressed",
                     ulen, clen);
    cdc_buf_reset(&bl->zbuf);
    cdc_buf_grow(&bl->zbuf, (size_t)ulen + 1);
    uLongf dlen = (uLongf)ulen;
    int zr = uncompress((Bytef *)bl->zbuf.p, &dlen, p + 1 + lb, (uLong)clen);
    if (zr != Z_OK || dlen != ulen)
        return everr(bl, e, err,
                     "zlib decompression failed (%s; %lu of %" PRIu64
                     " bytes)",
                     zr == Z_OK ? "short output" : zError(zr),
                     (unsigned long)dlen, ulen);
    bl->zbuf.len = (size_t)ulen;
    bl->zbuf.p[ulen] = '\0';
    return 0;
}

static int ev_query(cdc_binlog_t *bl, evctx_t *e, cdc_txn_t **out,
                    cdc_err_t *err)
{
    rd_t r;
    size_t ph = bl->phl[e->type];
    if (ph < 11)
        ph = e->type == EXECUTE_LOAD_QUERY_EVENT ? 26 : 13;
    rd_init(&r, e->ev + CDC_BINLOG_HEADER_LEN,
            e->len - CDC_BINLOG_HEADER_LEN);
    const uint8_t *post = rd_take(&r, ph);
    if (!post)
        return short_event(bl, e, err);
    uint8_t db_len = post[8];
    uint16_t sv_len = ph >= 13 ? (uint16_t)le_n(post + 11, 2) : 0;
    rd_take(&r, sv_len);
    rd_take(&r, (size_t)db_len + 1);
    if (r.bad)
        return short_event(bl, e, err);
    const char *q = (const char *)r.p;
    size_t qn = rd_left(&r);
    if (e->type == QUERY_COMPRESSED_EVENT) {
        if (maria_uncompress(bl, e, r.p, qn, err) < 0)
            return -1;
        q = bl->zbuf.p;
        qn = bl->zbuf.len;
    }
    const char *rest;
    int k = classify(q, qn, &rest);
    char key[300];
    switch (k) {
    case Q_BEGIN:
        if (bl->in_group && !bl->implicit) {
            CDC_WARN(FAC,
                     "BEGIN at offset %" PRIu64 " in %s inside an open "
                     "group; dropping the unfinished group",
                     e->off, file_or_stream(bl));
            grp_gtid_t g = bl->g;
            group_reset(bl);
            bl->g = g;
        }
        bl->in_group = 1;
        bl->implicit = 0;
        return 0;
    case Q_COMMIT:
        return commit_group(bl, e, 0, out, err);
    case Q_ROLLBACK: {
        /* the rolled-back group still consumed its GTID and position */
        grp_gtid_t g = bl->g;
        rollback_group(bl);
        return emit(bl, e, NULL, &g, 0, out, err);
    }
    case Q_SAVEPOINT:
        return 0;
    case Q_XA_START:
        bl->in_group = 1;
        bl->xa_group = 1;
        return 0;
    case Q_XA_END:
    case Q_XA_PREPARE:
        return 0;
    case Q_XA_COMMIT:
    case Q_XA_ROLLBACK: {
        const char *end = q + qn;
        int have = 0;
        if (bl->g.xa_key[0]) {
            snprintf(key, sizeof(key), "%s", bl->g.xa_key);
            have = 1;
        } else {
            size_t rl = (size_t)(end - rest);
            char *tmp = cdc_xstrndup(rest, rl);
            have = xa_stmt_key(tmp, key, sizeof(key)) == 0;
            free(tmp);
        }
        /* XA COMMIT ... ONE PHASE of the branch in this very group */
        if (bl->in_group && bl->xa_group) {
            if (k == Q_XA_COMMIT)
                return commit_group(bl, e, 0, out, err);
            grp_gtid_t g = bl->g;
            rollback_group(bl);
            return emit(bl, e, NULL, &g, 0, out, err);
        }
        return xa_finish(bl, e, have ? key : NULL, k == Q_XA_COMMIT, out,
                         err);
    }
    default:
        break;
    }
    /* DDL, or a statement-based change (which has no row images and so
     * yields no changes).  Schema may have changed: cached table maps are
     * invalid (table_ids change after ALTER). */
    maps_clear(bl);
    {
        const char *t = q;
        const char *end = q + qn;
        if (!bl->warned_stmt &&
            (kw(&t, end, "INSERT") || kw(&t, end, "UPDATE") ||
             kw(&t, end, "DELETE") || kw(&t, end, "REPLACE") ||
             kw(&t, end, "LOAD"))) {
            bl->warned_stmt = 1;
            CDC_WARN(FAC, "statement-based change at offset %" PRIu64
                          " of %s is not captured (only row-based events "
                          "carry row images; use binlog_format=ROW)",
                     e->off, file_or_stream(bl));
        }
    }
    if (bl->in_group)
        return 0;
    /* standalone statement: its own (empty) transaction */
    return commit_group(bl, e, 0, out, err);
}

/* ==== GTID events ===================================================== */

/* A new GTID while a group is still open: the group never committed (a
 * server crash truncates it); drop it loudly. */
static void drop_unfinished(cdc_binlog_t *bl, const evctx_t *e)
{
    if (bl->in_group || bl->cur) {
        CDC_WARN(FAC,
                 "%s at offset %" PRIu64 " in %s starts a new group while "
                 "%s%s is unfinished; dropping its %u uncommitted changes",
                 ev_name(bl, e->type), e->off, file_or_stream(bl),
                 bl->g.text[0] ? "group " : "a group",
                 bl->g.text, bl->cur ? bl->cur->nchanges : 0);
    }
    group_reset(bl);
}

static int ev_maria_gtid(cdc_binlog_t *bl, evctx_t *e, cdc_err_t *err)
{
    rd_t r;
    rd_init(&r, e->ev + CDC_BINLOG_HEADER_LEN,
            e->len - CDC_BINLOG_HEADER_LEN);
    uint64_t seq = rd_u64(&r);
    uint32_t domain = rd_u32(&r);
    uint8_t fl = rd_u8(&r);
    if (r.bad)
        return short_event(bl, e, err);
    drop_unfinished(bl, e);
    grp_gtid_t *g = &bl->g;
    g->kind = 1;
    g->flags = fl;
    g->server_id = e->server_id;
    g->mg.domain = domain;
    g->mg.server = e->server_id;
    g->mg.seq = seq;
    snprintf(g->text, sizeof(g->text), "%" PRIu32 "-%" PRIu32 "-%" PRIu64,
             domain, e->server_id, seq);
    if (fl & FL_GROUP_COMMIT_ID)
        rd_u64(&r);
    if (fl & (FL_PREPARED_XA | FL_COMPLETED_XA)) {
        uint32_t fmt = rd_u32(&r);
        uint8_t gl = rd_u8(&r), bq = rd_u8(&r);
        const uint8_t *d = rd_take(&r, (size_t)gl + bq);
        if (!d || gl > 64 || bq > 64)
            return everr(bl, e, err, "bad XID in GTID %s", g->text);
        if (fl & FL_COMPLETED_XA)
            xid_key(g->xa_key, sizeof(g->xa_key), fmt, d, gl, d + gl, bq);
    }
    if (!(fl & FL_STANDALONE)) {
        /* MariaDB writes no BEGIN: the GTID opens the group */
        bl->in_group = 1;
        if (fl & FL_PREPARED_XA)
            bl->xa_group = 1;
    }
    return 0;
}

static int ev_mysql_gtid(cdc_binlog_t *bl, evctx_t *e, cdc_err_t *err)
{
    rd_t r;
    rd_init(&r, e->ev + CDC_BINLOG_HEADER_LEN,
            e->len - CDC_BINLOG_HEADER_LEN);
    rd_take(&r, 1); /* flags */
    const uint8_t *sid = rd_take(&r, 16);
    int64_t gno = (int64_t)rd_u64(&r);
    if (r.bad)
        return short_event(bl, e, err);
    drop_unfinished(bl, e);
    grp_gtid_t *g = &bl->g;
    g->server_id = e->server_id;
    memcpy(g->uuid, sid, 16);
    g->gno = gno;
    if (e->type == ANONYMOUS_GTID_LOG_EVENT || gno <= 0) {
        g->kind = 3;
    } else {
        char u[37];
        uuid_text(sid, u);
        g->kind = 2;
        snprintf(g->text, sizeof(g->text), "%s:%" PRId64, u, gno);
    }
    /* 5.7.6+: logical clock; 8.0.1+: commit timestamps */
    if (rd_left(&r) >= 17) {
        rd_take(&r, 17); /* lt_type, last_committed, sequence_number */
        if (rd_left(&r) >= 7) {
            uint64_t imm = rd_le(&r, 7), orig = imm;
            if (imm & (1ULL << 55)) {
                imm &= ~(1ULL << 55);
                orig = rd_left(&r) >= 7 ? rd_le(&r, 7) : imm;
            }
            g->commit_us = (int64_t)orig;
        }
    }
    return 0;
}

/* GTID_TAGGED_LOG_EVENT (42): MySQL serialization library message:
 * version u8, payload size, last non-ignorable field id, then
 * (field id, value) pairs, all variable-length integers. */
static int ev_gtid_tagged(cdc_binlog_t *bl, evctx_t *e, cdc_err_t *err)
{
    rd_t r;
    rd_init(&r, e->ev + CDC_BINLOG_HEADER_LEN,
            e->len - CDC_BINLOG_HEADER_LEN);
    rd_take(&r, 1); /* serialization format version */
    uint64_t size = rd_varlen(&r);
    uint64_t last_ni = rd_varlen(&r);
    /* size counts from the version byte and must cover what was read */
    if (r.bad || size > e->len - CDC_BINLOG_HEADER_LEN ||
        e->ev + CDC_BINLOG_HEADER_LEN + size < r.p)
        return short_event(bl, e, err);
    r.end = e->ev + CDC_BINLOG_HEADER_LEN + size;
    uint8_t uuid[16] = {0};
    char tag[33] = "";
    int64_t gno = 0;
    uint64_t imm = 0, orig = 0;
    int have_orig = 0;
    while (rd_left(&r) && !r.bad) {
        uint64_t id = rd_varlen(&r);
        switch (id) {
        case 0: /* gtid_flags */
        case 4: /* last_committed */
        case 5: /* sequence_number */
        case 8: /* transaction_length */
        case 9: /* immediate_server_version */
        case 10: /* original_server_version */
        case 11: /* commit_group_ticket */
            rd_varlen(&r);
            break;
        case 1:
            for (int i = 0; i < 16; i++)
                uuid[i] = (uint8_t)rd_varlen(&r);
            break;
        case 2:
            gno = rd_varlen_signed(&r);
            break;
        case 3: {
            uint64_t n = rd_varlen(&r);
            const uint8_t *t = rd_take(&r, n);
            if (!t || n >= sizeof(tag))
                return everr(bl, e, err, "bad GTID tag (length %" PRIu64 ")",
                             n);
            memcpy(tag, t, n);
            tag[n] = '\0';
            break;
        }
        case 6:
            imm = rd_varlen(&r);
            break;
        case 7:
            orig = rd_varlen(&r);
            have_orig = 1;
            break;
        default:
            if (id <= last_ni)
                return everr(bl, e, err,
                             "unknown non-ignorable field %" PRIu64, id);
            r.p = r.end; /* ignorable trailing fields */
            break;
        }
    }
    if (r.bad)
        return short_event(bl, e, err);
    drop_unfinished(bl, e);
    grp_gtid_t *g = &bl->g;
    char u[37];
    uuid_text(uuid, u);
    g->kind = 2;
    g->server_id = e->server_id;
    memcpy(g->uuid, uuid, 16);
    snprintf(g->tag, sizeof(g->tag), "%s", tag);
    g->gno = gno;
    g->commit_us = (int64_t)(have_orig ? orig : imm);
    if (tag[0])
        snprintf(g->text, sizeof(g->text), "%s:%s:%" PRId64, u, tag, gno);
    else
        snprintf(g->text, sizeof(g->text), "%s:%" PRId64, u, gno);
    return 0;
}

/* PREVIOUS_GTIDS: the GTIDs of all earlier files; merged into the state.
 * Untagged: n_sids u64, then per sid uuid[16], n_intervals u64,
 * intervals [start, end).  Tagged (8.3+): the first u64 has format 1 in
 * its top byte and n_sids in bytes 1..6, and every sid carries a
 * variable-length tag after its uuid. */
static int ev_previous_gtids(cdc_binlog_t *bl, evctx_t *e, cdc_err_t *err)
{
    rd_t r;
    rd_init(&r, e->ev + CDC_BINLOG_HEADER_LEN,
            e->len - CDC_BINLOG_HEADER_LEN);
    uint64_t v = rd_u64(&r);
    int tagged = (v >> 56) == 1;
    uint64_t n = tagged ? (v >> 8) & 0xffffffffffffULL : v;
    if (r.bad || n > rd_left(&r) / 16)
        return short_event(bl, e, err);
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *u = rd_take(&r, 16);
        char tag[33] = "";
        if (tagged) {
            uint64_t tl = rd_varlen(&r);
            const uint8_t *t = rd_take(&r, tl);
            if (!t || tl >= sizeof(tag))
                return everr(bl, e, err, "bad GTID tag in PREVIOUS_GTIDS");
            memcpy(tag, t, tl);
            tag[tl] = '\0';
        }
        uint64_t niv = rd_u64(&r);
        if (r.bad || niv > rd_left(&r) / 16)
            return short_event(bl, e, err);
        mysql_sid_t *s = sid_get(bl, u, tag);
        for (uint64_t k = 0; k < niv; k++) {
            int64_t a = (int64_t)rd_u64(&r), b = (int64_t)rd_u64(&r);
            sid_add(s, a, b);
        }
    }
    if (r.bad)
        return short_event(bl, e, err);
    if (!bl->in_group) {
        state_text(bl, bl->pos.gtid, sizeof(bl->pos.gtid));
    }
    return 0;
}

static int ev_gtid_list(cdc_binlog_t *bl, evctx_t *e, cdc_err_t *err)
{
    rd_t r;
    rd_init(&r, e->ev + CDC_BINLOG_HEADER_LEN,
            e->len - CDC_BINLOG_HEADER_LEN);
    uint32_t n = rd_u32(&r) & 0x0fffffff;
    if (r.bad || n > rd_left(&r) / 16)
        return short_event(bl, e, err);
    for (uint32_t i = 0; i < n; i++) {
        maria_gtid_t g;
        g.domain = rd_u32(&r);
        g.server = rd_u32(&r);
        g.seq = rd_u64(&r);
        /* a file's GTID_LIST may predate a state seeded from a checkpoint:
         * never move a domain backwards */
        size_t k;
        for (k = 0; k < bl->nmg; k++)
            if (bl->mg[k].domain == g.domain)
                break;
        if (k == bl->nmg || bl->mg[k].seq < g.seq)
            maria_state_set(bl, &g);
    }
    if (!bl->in_group)
        state_text(bl, bl->pos.gtid, sizeof(bl->pos.gtid));
    return 0;
}

/* ==== Control events ================================================== */

static int ev_xid(cdc_binlog_t *bl, evctx_t *e, cdc_txn_t **out,
                  cdc_err_t *err)
{
    rd_t r;
    if (bl->phl[XID_EVENT] > e->len - CDC_BINLOG_HEADER_LEN)
        return short_event(bl, e, err);
    rd_init(&r, e->ev + CDC_BINLOG_HEADER_LEN + bl->phl[XID_EVENT],
            e->len - CDC_BINLOG_HEADER_LEN - bl->phl[XID_EVENT]);
    uint64_t xid = rd_u64(&r);
    if (r.bad)
        return short_event(bl, e, err);
    return commit_group(bl, e, xid, out, err);
}

static int ev_xa_prepare(cdc_binlog_t *bl, evctx_t *e, cdc_txn_t **out,
                         cdc_err_t *err)
{
    rd_t r;
    rd_init(&r, e->ev + CDC_BINLOG_HEADER_LEN,
            e->len - CDC_BINLOG_HEADER_LEN);
    uint8_t one_phase = rd_u8(&r);
    uint32_t fmt = rd_u32(&r);
    uint32_t gl = rd_u32(&r), bq = rd_u32(&r);
    if (r.bad || gl > 64 || bq > 64)
        return everr(bl, e, err, "bad XID (gtrid %" PRIu32 ", bqual %" PRIu32
                                 " bytes)", gl, bq);
    const uint8_t *d = rd_take(&r, (size_t)gl + bq);
    if (!d)
        return short_event(bl, e, err);
    if (one_phase)
        return commit_group(bl, e, 0, out, err);
    char key[300];
    xid_key(key, sizeof(key), fmt, d, gl, d + gl, bq);
    xa_hold(bl, key);
    return 0;
}

static int ev_rotate(cdc_binlog_t *bl, evctx_t *e, cdc_err_t *err)
{
    size_t ph = bl->phl[ROTATE_EVENT];
    if (e->len < CDC_BINLOG_HEADER_LEN + ph)
        return short_event(bl, e, err);
    uint64_t pos = ph >= 8 ? le_n(e->ev + CDC_BINLOG_HEADER_LEN, 8) : 4;
    const char *name = (const char *)e->ev + CDC_BINLOG_HEADER_LEN + ph;
    size_t n = e->len - CDC_BINLOG_HEADER_LEN - ph;
    if (n == 0 || n >= sizeof(bl->file))
        return everr(bl, e, err, "bad file name length %zu", n);
    memcpy(bl->file, name, n);
    bl->file[n] = '\0';
    if (!bl->in_group) {
        snprintf(bl->pos.file, sizeof(bl->pos.file), "%s", bl->file);
        bl->pos.offset = pos;
    }
    return 0;
}

static int ev_incident(cdc_binlog_t *bl, evctx_t *e, cdc_err_t *err)
{
    rd_t r;
    rd_init(&r, e->ev + CDC_BINLOG_HEADER_LEN,
            e->len - CDC_BINLOG_HEADER_LEN);
    uint16_t kind = rd_u16(&r);
    uint8_t ml = rd_u8(&r);
    const uint8_t *m = rd_take(&r, ml);
    everr(bl, e, err,
          "the source logged an incident (type %u%s%.*s): changes may be "
          "missing from the binlog",
          kind, m && ml ? ": " : "", m ? (int)ml : 0,
          m ? (const char *)m : "");
    cdc_err_hint(err, "the source server lost events (e.g. a failed "
                      "non-transactional write); re-snapshot the affected "
                      "tables and restart capture after this position");
    return -1;
}

/* ==== TABLE_MAP ======================================================= */

/* Bytes of per-column metadata by column type; -1 = unknown type. */
static int meta_size(uint8_t t)
{
    switch (t) {
    case 0: /* DECIMAL (old) */
    case 1: case 2: case 3: case 8: case 9: /* integers */
    case 6: /* NULL */
    case 7: case 10: case 11: case 12: case 13: case 14: /* temporal */
        return 0;
    case 4: case 5: /* FLOAT, DOUBLE: pack length */
    case 17: case 18: case 19: /* TIMESTAMP2, DATETIME2, TIME2: fsp */
    case 242: case 245: case 249: case 250: case 251: case 252: case 255:
        return 1;
    case 15: case 16: case 246: case 247: case 248: case 253: case 254:
        return 2;
    default:
        return -1;
    }
}

/* Columns counted by the SIGNEDNESS bitmap.  MariaDB builds it from every
 * Field_num, and its YEAR (13) is a Field_num; MySQL uses the binlog type
 * and leaves YEAR out. */
static int is_numeric(uint8_t t, int mariadb)
{
    return t == 1 || t == 2 || t == 3 || t == 8 || t == 9 || t == 4 ||
           t == 5 || t == 246 || (mariadb && t == 13);
}

/* Columns counted by the charset TLVs (DEFAULT_CHARSET, COLUMN_CHARSET).
 * Both servers select them by the field's real type with the same switch
 * (is_character_type() in log_event.cc / log_event_server.cc): STRING (not
 * ENUM/SET, whose real type the metadata gives), VARCHAR, BLOB/TEXT (and
 * MariaDB's JSON, a LONGTEXT) and GEOMETRY ("base class is blob", charset
 * binary); MySQL 9 adds VECTOR (binary).  Not counted: numbers, temporal
 * types, BIT, MySQL's binary JSON (245), ENUM and SET (their own TLVs).
 * Missing one here shifts every later column's charset, so the TLVs are
 * checked to hold exactly one entry per counted column. */
static int is_char(uint8_t t)
{
    return t == 254 || t == 15 || t == 253 || t == 252 ||
           (t >= 249 && t <= 251) || t == 255 || t == 242;
}

static int is_enumset(uint8_t t)
{
    return t == 247 || t == 248;
}

static tmap_ent_t *map_find(cdc_binlog_t *bl, uint64_t id)
{
    for (size_t i = bl->nmaps; i-- > 0;)
        if (bl->maps[i].id == id)
            return &bl->maps[i];
    return NULL;
}

/* Apply a (default, exceptions) or per-column charset TLV to the columns
 * selected by sel(). */
static int tlv_charsets(cdc_table_t *t, const uint8_t *v, size_t n,
                        int per_column, int (*sel)(uint8_t))
{
    rd_t r;
    rd_init(&r, v, n);
    if (per_column) {
        for (uint32_t i = 0; i < t->ncols; i++) {
            if (!sel((uint8_t)t->cols[i].type))
                continue;
            t->cols[i].charset = (uint16_t)rd_lenenc(&r);
        }
        /* one entry per selected column, no more, no fewer */
        return r.bad || rd_left(&r) ? -1 : 0;
    }
    uint16_t def = (uint16_t)rd_lenenc(&r);
    for (uint32_t i = 0; i < t->ncols; i++)
        if (sel((uint8_t)t->cols[i].type))
            t->cols[i].charset = def;
    while (rd_left(&r)) {
        uint64_t idx = rd_lenenc(&r), coll = rd_lenenc(&r);
        if (r.bad)
            return -1;
        uint64_t k = 0;
        uint32_t i;
        for (i = 0; i < t->ncols; i++) {
            if (!sel((uint8_t)t->cols[i].type))
                continue;
            if (k++ == idx) {
                t->cols[i].charset = (uint16_t)coll;
                break;
            }
        }
        if (i == t->ncols) /* an exception for a column we do not count */
            return -1;
    }
    return r.bad ? -1 : 0;
}

/* ENUM_STR_VALUE / SET_STR_VALUE: the member names, in the column's
 * charset (so read after the ENUM_AND_SET charset TLVs; ucs2 names hold NUL
 * bytes), stored as UTF-8. */
static int tlv_strvalues(cdc_table_t *t, const uint8_t *v, size_t n,
                         uint8_t type, cdc_err_t *err)
{
    rd_t r;
    rd_init(&r, v, n);
    for (uint32_t i = 0; i < t->ncols; i++) {
        cdc_column_t *c = &t->cols[i];
        if (c->type != type)
            continue;
        uint64_t cnt = rd_lenenc(&r);
        if (r.bad || cnt > rd_left(&r))
            return -1;
        if (c->members) {
            for (uint32_t k = 0; k < c->nmembers; k++)
                free(c->members[k]);
            free(c->members);
        }
        c->members = cdc_xcalloc(cnt ? cnt : 1, sizeof(char *));
        c->nmembers = (uint32_t)cnt;
        for (uint64_t k = 0; k < cnt; k++) {
            uint64_t l = rd_lenenc(&r);
            const uint8_t *s = rd_take(&r, l);
            cdc_buf_t u = CDC_BUF_INIT;
            if (!s)
                return -1;
            if (cdc_mysql_member_utf8(c->charset, s, l, &u, err) < 0) {
                cdc_buf_free(&u);
                return -2;
            }
            c->members[k] = cdc_xstrndup(u.p ? u.p : "", u.len);
            cdc_buf_free(&u);
        }
    }
    return r.bad ? -1 : 0;
}

static int tlv_extra(cdc_table_t *t, const uint8_t *v, size_t n,
                     uint8_t type)
{
    rd_t r;
    rd_init(&r, v, n);
    for (uint32_t i = 0; i < t->ncols; i++)
        if (t->cols[i].type == type)
            t->cols[i].extra = (uint32_t)rd_lenenc(&r);
    return r.bad ? -1 : 0;
}

static int tlv_pk(cdc_table_t *t, const uint8_t *v, size_t n, int prefix)
{
    rd_t r;
    rd_init(&r, v, n);
    uint32_t cap = 0;
    free(t->pk);
    t->pk = NULL;
    t->npk = 0;
    while (rd_left(&r)) {
        uint64_t idx = rd_lenenc(&r);
        if (prefix)
            rd_lenenc(&r); /* prefix length, 0 = whole column */
        if (r.bad || idx >= t->ncols)
            return -1;
        if (t->npk == cap) {
            cap = cap ? cap * 2 : 4;
            t->pk = cdc_xrealloc(t->pk, cap * sizeof(*t->pk));
        }
        t->pk[t->npk++] = (uint32_t)idx;
        t->cols[idx].flags |= CDC_COL_PK;
    }
    return 0;
}

static int ev_table_map(cdc_binlog_t *bl, evctx_t *e, cdc_err_t *err)
{
    size_t ph = bl->phl[TABLE_MAP_EVENT] ? bl->phl[TABLE_MAP_EVENT] : 8;
    size_t idlen = ph == 6 ? 4 : 6;
    const uint8_t *data = e->ev + CDC_BINLOG_HEADER_LEN;
    size_t dlen = e->len - CDC_BINLOG_HEADER_LEN;
    rd_t r;
    rd_init(&r, data, dlen);
    const uint8_t *post = rd_take(&r, ph);
    if (!post || ph < idlen)
        return short_event(bl, e, err);
    uint64_t id = le_n(post, idlen);
    bl->rows_pending = 1;

    /* the same definition again (every transaction re-logs its maps):
     * reuse the table */
    tmap_ent_t *ent = map_find(bl, id);
    if (ent && ent->rawlen == dlen && !memcmp(ent->raw, data, dlen))
        return 0;

    uint8_t dbl = rd_u8(&r);
    const uint8_t *db = rd_take(&r, (size_t)dbl + 1);
    uint8_t tl = rd_u8(&r);
    const uint8_t *tn = rd_take(&r, (size_t)tl + 1);
    uint64_t ncols = rd_lenenc(&r);
    if (r.bad || ncols > rd_left(&r))
        return short_event(bl, e, err);
    const uint8_t *types = rd_take(&r, ncols);
    uint64_t mlen = rd_lenenc(&r);
    const uint8_t *meta = rd_take(&r, mlen);
    const uint8_t *nulls = rd_take(&r, (ncols + 7) / 8);
    if (r.bad)
        return short_event(bl, e, err);

    char *dbs = cdc_xstrndup((const char *)db, dbl);
    char *tns = cdc_xstrndup((const char *)tn, tl);
    cdc_table_t *t = cdc_table_new(dbs, tns, (uint32_t)ncols);
    free(dbs);
    free(tns);
    t->id = id;

    rd_t mr;
    rd_init(&mr, meta, mlen);
    for (uint32_t i = 0; i < ncols; i++) {
        cdc_column_t *c = &t->cols[i];
        uint8_t ty = types[i];
        int ms = meta_size(ty);
        if (ms < 0) {
            everr(bl, e, err, "unknown column type %u (column %u of %s.%s)",
                  ty, i + 1, t->db, t->name);
            cdc_err_hint(err, "this server version writes a column type "
                              "the decoder does not know");
            cdc_table_destroy(t);
            return -1;
        }
        const uint8_t *m = rd_take(&mr, (size_t)ms);
        if (!m) {
            cdc_table_destroy(t);
            return everr(bl, e, err, "column metadata too short (%" PRIu64
                                     " bytes for %" PRIu64 " columns)",
                         mlen, ncols);
        }
        c->type = ty;
        switch (ty) {
        case 254: {
            uint8_t b0 = m[0], b1 = m[1];
            uint32_t len = b1;
            uint8_t real = b0;
            if ((b0 & 0x30) != 0x30) {
                len = b1 | (((uint32_t)(b0 & 0x30) ^ 0x30) << 4);
                real = b0 | 0x30;
            }
            if (real == 247 || real == 248) {
                c->type = real;
                c->meta = b1;
            } else {
                c->meta = len;
            }
            break;
        }
        case 247: case 248:
            c->meta = m[1];
            break;
        case 246:
            c->meta = (uint32_t)m[0] << 8 | m[1];
            break;
        case 15: case 253:
            c->meta = (uint32_t)le_n(m, 2);
            break;
        case 16:
            c->meta = (uint32_t)m[1] * 8 + m[0];
            break;
        default:
            c->meta = ms == 1 ? m[0] : 0;
            break;
        }
        if (nulls[i / 8] & (1u << (i % 8)))
            c->flags |= CDC_COL_NULLABLE;
        char nm[16];
        snprintf(nm, sizeof(nm), "@%u", i + 1);
        c->name = cdc_xstrdup(nm);
    }
    if (rd_left(&mr)) {
        cdc_table_destroy(t);
        return everr(bl, e, err,
                     "column metadata has %zu unexpected trailing bytes",
                     rd_left(&mr));
    }

    /* optional metadata TLVs, in any order; unknown types are skipped */
    const uint8_t *setv = NULL, *enumv = NULL;
    size_t setl = 0, enuml = 0;
    while (rd_left(&r)) {
        uint8_t ty = rd_u8(&r);
        uint64_t l = rd_lenenc(&r);
        const uint8_t *v = rd_take(&r, l);
        int rc = 0;
        if (!v) {
            cdc_table_destroy(t);
            return everr(bl, e, err, "truncated optional metadata field %u",
                         ty);
        }
        switch (ty) {
        case 1: { /* SIGNEDNESS: numeric columns, MSB first */
            uint32_t k = 0;
            for (uint32_t i = 0; i < t->ncols; i++) {
                if (!is_numeric((uint8_t)t->cols[i].type, bl->mariadb))
                    continue;
                if (k / 8 >= l) {
                    rc = -1;
                    break;
                }
                if (v[k / 8] & (0x80u >> (k % 8)))
                    t->cols[i].flags |= CDC_COL_UNSIGNED;
                k++;
            }
            break;
        }
        case 2:
            rc = tlv_charsets(t, v, l, 0, is_char);
            break;
        case 3:
            rc = tlv_charsets(t, v, l, 1, is_char);
            break;
        case 4: { /* COLUMN_NAME */
            rd_t nr;
            rd_init(&nr, v, l);
            for (uint32_t i = 0; i < t->ncols && !nr.bad; i++) {
                uint64_t nl = rd_lenenc(&nr);
                const uint8_t *s = rd_take(&nr, nl);
                if (!s)
                    break;
                free(t->cols[i].name);
                t->cols[i].name = cdc_xstrndup((const char *)s, nl);
            }
            rc = nr.bad ? -1 : 0;
            break;
        }
        case 5: /* after the loop, when the charsets are known */
            setv = v, setl = l;
            break;
        case 6:
            enumv = v, enuml = l;
            break;
        case 7:
            rc = tlv_extra(t, v, l, 255);
            break;
        case 8:
            rc = tlv_pk(t, v, l, 0);
            break;
        case 9:
            rc = tlv_pk(t, v, l, 1);
            break;
        case 10:
            rc = tlv_charsets(t, v, l, 0, is_enumset);
            break;
        case 11:
            rc = tlv_charsets(t, v, l, 1, is_enumset);
            break;
        case 12: /* COLUMN_VISIBILITY: no place in the model; checked */
            rc = l * 8 >= t->ncols ? 0 : -1;
            break;
        case 13:
            rc = tlv_extra(t, v, l, 242);
            break;
        default:
            break;
        }
        if (rc < 0) {
            everr(bl, e, err, "malformed optional metadata field %u of %s.%s",
                  ty, t->db, t->name);
            cdc_table_destroy(t);
            return -1;
        }
    }
    for (int k = 0; k < 2; k++) {
        const uint8_t *v = k ? enumv : setv;
        int rc = v ? tlv_strvalues(t, v, k ? enuml : setl, k ? 247 : 248, err)
                   : 0;
        if (rc == -2) { /* a name not in its charset: err says why */
            char why[sizeof(err->msg)];
            snprintf(why, sizeof(why), "%s", err->msg);
            everr(bl, e, err, "%s name of %s.%s: %s", k ? "ENUM" : "SET",
                  t->db, t->name, why);
        } else if (rc < 0) {
            everr(bl, e, err, "malformed optional metadata field %d of %s.%s",
                  k ? 6 : 5, t->db, t->name);
        }
        if (rc < 0) {
            cdc_table_destroy(t);
            return -1;
        }
    }
    for (uint32_t i = 0; i < t->ncols; i++)
        if (t->cols[i].charset == 63)
            t->cols[i].flags |= CDC_COL_BINARY;

    if (!ent) {
        /* bound the cache: maps are re-logged in every transaction */
        if (bl->nmaps >= 4096)
            maps_clear(bl);
        if (bl->nmaps == bl->capmaps) {
            bl->capmaps = bl->capmaps ? bl->capmaps * 2 : 16;
            bl->maps = cdc_xrealloc(bl->maps, bl->capmaps * sizeof(*ent));
        }
        ent = &bl->maps[bl->nmaps++];
        memset(ent, 0, sizeof(*ent));
    } else {
        cdc_table_destroy(ent->tbl);
        free(ent->raw);
    }
    ent->id = id;
    ent->tbl = t;
    ent->raw = cdc_xmalloc(dlen ? dlen : 1);
    memcpy(ent->raw, data, dlen);
    ent->rawlen = dlen;
    return 0;
}

/* ==== ROWS ============================================================ */

static inline int bit_lsb(const uint8_t *bm, uint32_t i)
{
    return (bm[i / 8] >> (i % 8)) & 1;
}

/* Re-raise an error from cdc_mysql_value with the row context added. */
static int value_err(cdc_binlog_t *bl, const evctx_t *e, cdc_err_t *err,
                     const cdc_table_t *t, uint32_t col, uint32_t row)
{
    char msg[sizeof(err->msg)], detail[sizeof(err->detail)],
        hint[sizeof(err->hint)];
    snprintf(msg, sizeof(msg), "%s", err->msg);
    snprintf(detail, sizeof(detail), "%s", err->detail);
    snprintf(hint, sizeof(hint), "%s", err->hint);
    everr(bl, e, err, "%s: column %s (%u) of %s.%s, row %u", msg,
          t->cols[col].name, col + 1, t->db, t->name, row);
    if (detail[0])
        cdc_err_detail(err, "%s", detail);
    if (hint[0])
        cdc_err_hint(err, "%s", hint);
    return -1;
}

/* One row image: null bitmap over the present columns, then the values
 * of the present non-NULL columns.  Columns not present stay
 * CDC_V_ABSENT.  partial (PARTIAL_UPDATE_ROWS after image): bitmap over
 * the table's JSON columns, 1 = the column holds a JSON diff. */
static int decode_image(cdc_binlog_t *bl, const evctx_t *e, cdc_txn_t *tx,
                        const cdc_table_t *t, const uint8_t *present,
                        uint32_t width, rd_t *r, const uint8_t *partial,
                        uint32_t row, cdc_value_t **outv, cdc_err_t *err)
{
    uint32_t npresent = 0;
    for (uint32_t i = 0; i < width; i++)
        npresent += (uint32_t)bit_lsb(present, i);
    const uint8_t *nulls = rd_take(r, (npresent + 7) / 8);
    if (!nulls)
        return everr(bl, e, err, "row %u of %s.%s: null bitmap truncated",
                     row, t->db, t->name);
    cdc_value_t *v = cdc_txn_values(tx, t->ncols);
    uint32_t k = 0, json_idx = 0;
    for (uint32_t i = 0; i < width; i++) {
        int is_json = t->cols[i].type == 245;
        uint32_t ji = json_idx;
        json_idx += (uint32_t)is_json;
        if (!bit_lsb(present, i))
            continue;
        if (bit_lsb(nulls, k++)) {
            v[i].kind = CDC_V_NULL;
            continue;
        }
        if (partial && is_json && bit_lsb(partial, ji)) {
            /* a JSON diff (binlog_row_value_options=PARTIAL_JSON) instead
             * of the document: without the full document there is
             * nothing exact to emit */
            everr(bl, e, err,
                  "partial JSON update of column %s of %s.%s, row %u, "
                  "cannot be decoded into a full document",
                  t->cols[i].name, t->db, t->name, row);
            cdc_err_hint(err, "set binlog_row_value_options='' (and "
                              "binlog_row_image=FULL) on the source so full "
                              "JSON documents are logged");
            return -1;
        }
        size_t avail = rd_left(r), used = 0;
        if (cdc_mysql_value(&t->cols[i], r->p, avail, &tx->arena, &v[i],
                            &used, err) < 0)
            return value_err(bl, e, err, t, i, row);
        if (used > avail)
            return everr(bl, e, err,
                         "column %s of %s.%s, row %u: value overruns the "
                         "event",
                         t->cols[i].name, t->db, t->name, row);
        r->p += used;
    }
    *outv = v;
    return 0;
}

static int ev_rows(cdc_binlog_t *bl, evctx_t *e, cdc_txn_t **out,
                   cdc_err_t *err)
{
    uint8_t ty = e->type;
    char op;
    int compressed = 0;
    switch (ty) {
    case PRE_GA_WRITE_ROWS_EVENT:
    case PRE_GA_UPDATE_ROWS_EVENT:
    case PRE_GA_DELETE_ROWS_EVENT:
        everr(bl, e, err, "pre-GA rows event (MySQL 5.1 beta format) is not "
                          "supported");
        cdc_err_hint(err, "this binlog comes from a MySQL 5.1 pre-release; "
                          "it cannot be decoded");
        return -1;
    case WRITE_ROWS_COMPRESSED_EVENT_V1:
    case WRITE_ROWS_COMPRESSED_EVENT:
        compressed = 1;
        /* fall through */
    case WRITE_ROWS_EVENT_V1:
    case WRITE_ROWS_EVENT:
        op = CDC_OP_CREATE;
        break;
    case UPDATE_ROWS_COMPRESSED_EVENT_V1:
    case UPDATE_ROWS_COMPRESSED_EVENT:
        compressed = 1;
        /* fall through */
    case UPDATE_ROWS_EVENT_V1:
    case UPDATE_ROWS_EVENT:
    case PARTIAL_UPDATE_ROWS_EVENT:
        op = CDC_OP_UPDATE;
        break;
    case DELETE_ROWS_COMPRESSED_EVENT_V1:
    case DELETE_ROWS_COMPRESSED_EVENT:
        compressed = 1;
        /* fall through */
    default:
        op = CDC_OP_DELETE;
        break;
    }
    size_t ph = bl->phl[ty];
    if (!ph)
        ph = (ty >= WRITE_ROWS_EVENT_V1 && ty <= DELETE_ROWS_EVENT_V1) ||
                     (ty >= WRITE_ROWS_COMPRESSED_EVENT_V1 &&
                      ty <= DELETE_ROWS_COMPRESSED_EVENT_V1)
                 ? 8
                 : 10;
    size_t idlen = ph == 6 ? 4 : 6;
    rd_t r;
    rd_init(&r, e->ev + CDC_BINLOG_HEADER_LEN,
            e->len - CDC_BINLOG_HEADER_LEN);
    const uint8_t *post = rd_take(&r, ph);
    if (!post || ph < idlen + 2)
        return short_event(bl, e, err);
    uint64_t id = le_n(post, idlen);
    uint16_t flags = (uint16_t)le_n(post + idlen, 2);
    if (ph >= idlen + 4) {
        /* v2: extra row info, length includes its own two bytes */
        uint16_t xl = (uint16_t)le_n(post + idlen + 2, 2);
        if (xl < 2 || !rd_take(&r, xl - 2u))
            return everr(bl, e, err, "bad extra row info length %u", xl);
    }
    tmap_ent_t *ent = map_find(bl, id);
    if (!ent) {
        /* MySQL closes a statement with a dummy rows event (table id
         * ~0, no rows) when no table was mapped */
        if ((id == 0xffffffULL || id == 0xffffffffffffULL) &&
            (flags & STMT_END_F)) {
            bl->rows_pending = 0;
            return 0;
        }
        everr(bl, e, err, "rows event for table_id %" PRIu64
                          " without a preceding TABLE_MAP", id);
        cdc_err_hint(err, "start reading at a transaction boundary (the "
                          "TABLE_MAP precedes the rows in each transaction)");
        return -1;
    }
    cdc_table_t *t = ent->tbl;
    uint64_t width = rd_lenenc(&r);
    if (r.bad)
        return short_event(bl, e, err);
    if (width > t->ncols)
        return everr(bl, e, err,
                     "rows event has %" PRIu64 " columns, TABLE_MAP of %s.%s "
                     "has %u",
                     width, t->db, t->name, t->ncols);
    size_t nb = (width + 7) / 8;
    const uint8_t *cols_b = rd_take(&r, nb), *cols_a = cols_b;
    if (op == CDC_OP_UPDATE)
        cols_a = rd_take(&r, nb);
    if (r.bad)
        return short_event(bl, e, err);
    if (compressed) {
        if (maria_uncompress(bl, e, r.p, rd_left(&r), err) < 0)
            return -1;
        rd_init(&r, (const uint8_t *)bl->zbuf.p, bl->zbuf.len);
    }

    if (!bl->in_group) {
        bl->in_group = 1;
        bl->implicit = 1;
    }
    cdc_txn_t *tx = cur_txn(bl);
    if (bl->o.skip_marked && !tx->skipped &&
        ((e->flags & LOG_EVENT_SKIP_REPLICATION_F) ||
         !strcmp(t->name, "autoglm_cdc_marker"))) {
        CDC_DEBUG(FAC, "transaction at %s:%" PRIu64 " written by autoglm-cdc:"
                  " skipped", file_or_stream(bl), e->off);
        tx->skipped = 1; /* our own write: dropped at commit */
    }
    if (tx->skipped) {
        /* our own write (a wide sink's transaction echoed by the binlog):
         * its rows are neither decoded nor kept, so it costs no memory
         * whatever its size; what was decoded of it before the marker
         * goes now instead of at its commit */
        drop_changes(tx);
        goto end;
    }
    uint32_t njson = 0;
    for (uint32_t i = 0; i < t->ncols; i++)
        njson += t->cols[i].type == 245;
    uint32_t row = 0;
    while (rd_left(&r)) {
        cdc_value_t *before = NULL, *after = NULL;
        const uint8_t *partial = NULL;
        const uint8_t *row_start = r.p;
        uint32_t ri = e->depth ? bl->payload_row : row;
        if (op != CDC_OP_CREATE &&
            decode_image(bl, e, tx, t, cols_b, (uint32_t)width, &r, NULL, ri,
                         &before, err) < 0)
            return -1;
        if (ty == PARTIAL_UPDATE_ROWS_EVENT) {
            uint64_t vo = rd_lenenc(&r);
            if (vo & 1)
                partial = rd_take(&r, (njson + 7) / 8);
            if (r.bad)
                return short_event(bl, e, err);
        }
        if (op != CDC_OP_DELETE &&
            decode_image(bl, e, tx, t, cols_a, (uint32_t)width, &r, partial,
                         ri, &after, err) < 0)
            return -1;
        if (r.p == row_start)
            /* no column present: the row would repeat forever */
            return everr(bl, e, err,
                         "row %u of %s.%s has an empty image (no column "
                         "present) but %zu bytes follow",
                         ri, t->db, t->name, rd_left(&r));
        cdc_change_t *ch = cdc_txn_add(tx, op, t);
        ch->before = before;
        ch->after = after;
        ch->pos = e->off;
        ch->row = ri;
        row++;
        if (e->depth)
            bl->payload_row++;
    }
end:
    if (flags & STMT_END_F) {
        bl->rows_pending = 0;
        if (bl->implicit)
            return commit_group(bl, e, 0, out, err);
    }
    return 0;
}

/* ==== TRANSACTION_PAYLOAD ============================================= */

#define PAYLOAD_MAX ((size_t)1 << 30)

static int zstd_inflate(cdc_binlog_t *bl, const evctx_t *e, const uint8_t *p,
                        size_t n, uint64_t usize, cdc_err_t *err)
{
    if (!bl->zstd)
        bl->zstd = ZSTD_createDCtx();
    if (!bl->zstd)
        return everr(bl, e, err, "cannot create a zstd decompression context");
    ZSTD_DCtx_reset(bl->zstd, ZSTD_reset_session_only);
    cdc_buf_t *b = &bl->pbuf;
    cdc_buf_reset(b);
    size_t want = usize && usize < ((size_t)64 << 20) ? (size_t)usize + 1
                                                       : (size_t)1 << 16;
    if (b->cap < want)
        cdc_buf_grow(b, want);
    ZSTD_inBuffer in = {p, n, 0};
    for (;;) {
        if (b->cap - b->len < 2) {
            if (b->len >= PAYLOAD_MAX)
                return everr(bl, e, err, "payload decompresses to more than "
                                         "%zu bytes", PAYLOAD_MAX);
            cdc_buf_grow(b, b->cap);
        }
        ZSTD_outBuffer o = {b->p + b->len, b->cap - b->len - 1, 0};
        size_t rc = ZSTD_decompressStream(bl->zstd, &o, &in);
        if (ZSTD_isError(rc))
            return everr(bl, e, err, "zstd decompression failed: %s",
                         ZSTD_getErrorName(rc));
        b->len += o.pos;
        if (usize && b->len > usize)
            return everr(bl, e, err, "payload decompresses to more than its "
                                     "declared %" PRIu64 " bytes", usize);
        if (rc == 0 && in.pos == in.size)
            break;
        if (in.pos == in.size && o.pos < o.size)
            return everr(bl, e, err, "zstd frame truncated");
    }
    b->p[b->len] = '\0';
    if (usize && b->len != usize)
        return everr(bl, e, err,
                     "payload decompressed to %zu bytes, declared %" PRIu64,
                     b->len, usize);
    return 0;
}

static int ev_payload(cdc_binlog_t *bl, evctx_t *e, cdc_txn_t **out,
                      cdc_err_t *err)
{
    if (e->depth)
        return everr(bl, e, err, "nested TRANSACTION_PAYLOAD");
    rd_t r;
    rd_init(&r, e->ev + CDC_BINLOG_HEADER_LEN,
            e->len - CDC_BINLOG_HEADER_LEN);
    uint64_t psize = UINT64_MAX, ctype = 0, usize = 0;
    /* TLV header: type lenenc (0 = end), length lenenc, value = lenenc
     * integer inside `length` bytes */
    for (;;) {
        uint64_t ft = rd_lenenc(&r);
        if (r.bad)
            return short_event(bl, e, err);
        if (ft == 0)
            break;
        uint64_t fl = rd_lenenc(&r);
        const uint8_t *v = rd_take(&r, fl);
        if (!v)
            return short_event(bl, e, err);
        rd_t vr;
        rd_init(&vr, v, fl);
        uint64_t val = rd_lenenc(&vr);
        if (ft <= 3 && vr.bad)
            return everr(bl, e, err, "bad payload header field %" PRIu64, ft);
        if (ft == 1)
            psize = val;
        else if (ft == 2)
            ctype = val;
        else if (ft == 3)
            usize = val;
    }
    size_t n = rd_left(&r);
    if (psize != UINT64_MAX) {
        if (psize > n)
            return everr(bl, e, err,
                         "payload size %" PRIu64 " exceeds the %zu bytes left",
                         psize, n);
        n = (size_t)psize;
    }
    const uint8_t *p = r.p;
    if (ctype == 0) {
        if (zstd_inflate(bl, e, p, n, usize, err) < 0)
            return -1;
        p = (const uint8_t *)bl->pbuf.p;
        n = bl->pbuf.len;
    } else if (ctype != 255) {
        return everr(bl, e, err, "unknown payload compression type %" PRIu64,
                     ctype);
    }

    /* inner events: ordinary headers, log_pos 0, no checksums */
    bl->payload_row = 0;
    size_t off = 0;
    while (off < n) {
        evctx_t ie = *e;
        ie.depth = 1;
        ie.ioff = off;
        if (n - off < CDC_BINLOG_HEADER_LEN) {
            ie.type = 0;
            return everr(bl, &ie, err, "truncated inner event header (%zu "
                                       "bytes left)", n - off);
        }
        const uint8_t *h = p + off;
        ie.ev = h;
        ie.ts = (uint32_t)le_n(h, 4);
        ie.type = h[4];
        ie.server_id = (uint32_t)le_n(h + 5, 4);
        uint32_t sz = (uint32_t)le_n(h + 9, 4);
        ie.log_pos = (uint32_t)le_n(h + 13, 4);
        ie.flags = (uint16_t)le_n(h + 17, 2);
        if (sz < CDC_BINLOG_HEADER_LEN || sz > n - off)
            return everr(bl, &ie, err, "bad inner event size %" PRIu32, sz);
        ie.len = sz;
        if (bl->o.on_event) {
            cdc_binlog_evinfo_t inf = {off, ie.ts, ie.type, ie.server_id,
                                       sz, ie.log_pos, ie.flags, 1,
                                       ev_name(bl, ie.type)};
            bl->o.on_event(bl->o.opaque, &inf);
        }
        if (ie.type == FORMAT_DESCRIPTION_EVENT)
            return everr(bl, &ie, err, "FORMAT_DESCRIPTION inside a payload");
        if (dispatch(bl, &ie, out, err) < 0) {
            cdc_txn_destroy(bl->payload_out);
            bl->payload_out = NULL;
            return -1;
        }
        off += sz;
    }
    if (bl->payload_out) {
        *out = bl->payload_out;
        bl->payload_out = NULL;
        return 1;
    }
    return 0;
}

/* ==== FORMAT_DESCRIPTION and checksums ================================ */

/* version >= a.b.c ? */
static int version_ge(const char *v, int a, int b, int c)
{
    int x[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (!isdigit((unsigned char)*v))
            break;
        x[i] = (int)strtol(v, (char **)&v, 10);
        if (*v == '.')
            v++;
        else
            break;
    }
    if (x[0] != a)
        return x[0] > a;
    if (x[1] != b)
        return x[1] > b;
    return x[2] >= c;
}

static uint32_t ev_crc(const uint8_t *ev, size_t n, int clear_in_use)
{
    uLong c = crc32(0L, Z_NULL, 0);
    if (clear_in_use && n >= CDC_BINLOG_HEADER_LEN) {
        uint8_t fl[2] = {(uint8_t)(ev[17] & ~LOG_EVENT_BINLOG_IN_USE_F),
                         ev[18]};
        c = crc32(c, ev, 17);
        c = crc32(c, fl, 2);
        c = crc32(c, ev + 19, (uInt)(n - 19));
    } else {
        c = crc32(c, ev, (uInt)n);
    }
    return (uint32_t)c;
}

static int crc_err(cdc_binlog_t *bl, const evctx_t *e, uint32_t stored,
                   uint32_t computed, cdc_err_t *err)
{
    everr(bl, e, err, "CRC32 checksum mismatch (stored 0x%08" PRIx32
                      ", computed 0x%08" PRIx32 ")",
          stored, computed);
    cdc_err_hint(err, "the binlog is corrupt; verify it with mysqlbinlog "
                      "--verify-binlog-checksum (checksum verification can "
                      "be turned off, at your own risk)");
    return -1;
}

static int ev_fde(cdc_binlog_t *bl, evctx_t *e, size_t full,
                  cdc_err_t *err)
{
    const uint8_t *ev = e->ev;
    if (full < CDC_BINLOG_HEADER_LEN + 57)
        return short_event(bl, e, err);
    const uint8_t *b = ev + CDC_BINLOG_HEADER_LEN;
    uint16_t bver = (uint16_t)le_n(b, 2);
    char ver[51];
    memcpy(ver, b + 2, 50);
    ver[50] = '\0';
    uint8_t hl = b[56];
    if (bver != 4 || hl != CDC_BINLOG_HEADER_LEN) {
        everr(bl, e, err, "binlog format version %u (header length %u) is "
                          "not supported",
              bver, hl);
        cdc_err_hint(err, "only binlog format v4 (MySQL >= 5.0, MariaDB) "
                          "can be decoded");
        return -1;
    }
    int mariadb = strstr(ver, "MariaDB") != NULL;
    int has_alg = mariadb ? version_ge(ver, 5, 3, 0) : version_ge(ver, 5, 6, 1);
    int alg = 0;
    size_t nphl;
    if (has_alg) {
        if (full < CDC_BINLOG_HEADER_LEN + 57 + 5)
            return short_event(bl, e, err);
        /* the alg byte sits right after the post-header lengths and is
         * followed by 4 checksum bytes (present, if unused, for NONE) */
        alg = ev[full - 5];
        nphl = full - CDC_BINLOG_HEADER_LEN - 57 - 5;
        if (alg != 0 && alg != 1) {
            everr(bl, e, err, "unknown checksum algorithm %d", alg);
            return -1;
        }
        if (alg == 1 && bl->o.verify_checksum) {
            uint32_t stored = (uint32_t)le_n(ev + full - 4, 4);
            uint32_t c = ev_crc(ev, full - 4, 1);
            if (c != stored)
                return crc_err(bl, e, stored, c, err);
        }
    } else {
        nphl = full - CDC_BINLOG_HEADER_LEN - 57;
    }
    memset(bl->phl, 0, sizeof(bl->phl));
    for (size_t i = 0; i < nphl && i < 255; i++)
        bl->phl[i + 1] = b[57 + i];
    bl->checksum = alg;
    bl->mariadb = mariadb;
    memcpy(bl->server_version, ver, sizeof(ver));
    bl->have_fde = 1;
    return 0;
}

/* ==== Dispatch ======================================================== */

static int is_rows_type(uint8_t t)
{
    return (t >= PRE_GA_WRITE_ROWS_EVENT && t <= DELETE_ROWS_EVENT_V1) ||
           (t >= WRITE_ROWS_EVENT && t <= DELETE_ROWS_EVENT) ||
           t == PARTIAL_UPDATE_ROWS_EVENT ||
           (t >= WRITE_ROWS_COMPRESSED_EVENT_V1 &&
            t <= DELETE_ROWS_COMPRESSED_EVENT);
}

static int dispatch(cdc_binlog_t *bl, evctx_t *e, cdc_txn_t **out,
                    cdc_err_t *err)
{
    uint8_t t = e->type;
    if (is_rows_type(t))
        return ev_rows(bl, e, out, err);
    switch (t) {
    case QUERY_EVENT:
    case QUERY_COMPRESSED_EVENT:
    case EXECUTE_LOAD_QUERY_EVENT:
        return ev_query(bl, e, out, err);
    case XID_EVENT:
        return ev_xid(bl, e, out, err);
    case TABLE_MAP_EVENT:
        return ev_table_map(bl, e, err);
    case GTID_LOG_EVENT:
    case ANONYMOUS_GTID_LOG_EVENT:
        return ev_mysql_gtid(bl, e, err);
    case GTID_TAGGED_LOG_EVENT:
        return ev_gtid_tagged(bl, e, err);
    case MARIA_GTID_EVENT:
        return ev_maria_gtid(bl, e, err);
    case PREVIOUS_GTIDS_LOG_EVENT:
        return ev_previous_gtids(bl, e, err);
    case GTID_LIST_EVENT:
        return ev_gtid_list(bl, e, err);
    case XA_PREPARE_LOG_EVENT:
        return ev_xa_prepare(bl, e, out, err);
    case ROTATE_EVENT:
        return ev_rotate(bl, e, err);
    case INCIDENT_EVENT:
        return ev_incident(bl, e, err);
    case TRANSACTION_PAYLOAD_EVENT:
        return ev_payload(bl, e, out, err);
    case FORMAT_DESCRIPTION_EVENT:
        return 0; /* handled by the caller */
    case START_ENCRYPTION_EVENT:
        everr(bl, e, err, "encrypted binlogs are not supported");
        cdc_err_hint(err, "read the binlog through a replication connection "
                          "(the server decrypts it) instead of the file");
        return -1;
    case START_EVENT_V3:
        everr(bl, e, err, "binlog format v1/v3 (MySQL < 5.0) is not "
                          "supported");
        return -1;
    /* Consumed by design, no row data: statement-based context (INTVAR,
     * RAND, USER_VAR), LOAD DATA blocks of statement-based logging,
     * informational text (ROWS_QUERY, ANNOTATE_ROWS), crash-recovery and
     * group-replication bookkeeping, heartbeats, server stop. */
    case STOP_EVENT:
    case INTVAR_EVENT:
    case RAND_EVENT:
    case USER_VAR_EVENT:
    case LOAD_EVENT:
    case SLAVE_EVENT:
    case CREATE_FILE_EVENT:
    case APPEND_BLOCK_EVENT:
    case EXEC_LOAD_EVENT:
    case DELETE_FILE_EVENT:
    case NEW_LOAD_EVENT:
    case BEGIN_LOAD_QUERY_EVENT:
    case HEARTBEAT_LOG_EVENT:
    case HEARTBEAT_LOG_EVENT_V2:
    case IGNORABLE_LOG_EVENT:
    case ROWS_QUERY_LOG_EVENT:
    case TRANSACTION_CONTEXT_EVENT:
    case VIEW_CHANGE_EVENT:
    case ANNOTATE_ROWS_EVENT:
    case BINLOG_CHECKPOINT_EVENT:
        return 0;
    default:
        break;
    }
    /* Unknown type.  Skipped by design only when the server says a reader
     * may skip it (the IGNORABLE flag) and, outside a row statement, the
     * padding events Amazon Aurora writes (type 100).  Anything else may
     * carry changes of a newer server: stop rather than drop them. */
    if (e->flags & LOG_EVENT_IGNORABLE_F) {
        CDC_DEBUG(FAC, "skipping ignorable event type %u at offset %" PRIu64,
                  t, e->off);
        return 0;
    }
    if (t == AURORA_PADDING_EVENT && !bl->rows_pending) {
        CDC_DEBUG(FAC, "skipping Aurora padding event at offset %" PRIu64,
                  e->off);
        return 0;
    }
    everr(bl, e, err, "unknown event type %u (%" PRIu32 " bytes)%s", t,
          e->size,
          bl->rows_pending ? " after a TABLE_MAP whose statement has not "
                             "ended"
                           : "");
    cdc_err_detail(err, "an event the decoder does not know may carry row "
                        "changes; skipping it could lose them");
    cdc_err_hint(err, "this server writes an event type this version of "
                      "autoglm-cdc does not know; upgrade autoglm-cdc");
    return -1;
}

/* ==== Fragments ======================================================= */

/* After a rows event: is the open group big enough to hand out? */
static int frag_due(const cdc_binlog_t *bl, const evctx_t *e)
{
    const cdc_txn_t *tx = bl->cur;

    if (!tx || !tx->nchanges || !is_rows_type(e->type) || !bl->in_group ||
        bl->implicit || bl->xa_group || tx->skipped)
        return 0;
    return (bl->o.frag_rows && tx->nchanges >= bl->o.frag_rows) ||
           (bl->o.frag_bytes &&
            tx->arena.total + (size_t)tx->capchanges * sizeof(cdc_change_t) >=
                bl->o.frag_bytes);
}

/* Hand out the open group's changes so far as a fragment (more set). */
static int frag_out(cdc_binlog_t *bl, const evctx_t *e, cdc_txn_t **out)
{
    cdc_txn_t *tx = bl->cur;
    const grp_gtid_t *g = &bl->g;

    bl->cur = NULL;
    tx->commit_us = g->commit_us > 0 ? g->commit_us : (int64_t)e->ts * 1000000;
    tx->server_id = g->kind ? g->server_id : e->server_id;
    tx->connector = bl->o.connector ? bl->o.connector
                    : bl->mariadb   ? "mariadb"
                                    : "mysql";
    snprintf(tx->gtid, sizeof(tx->gtid), "%s", g->text);
    tx->xid = 0;
    tx->file = cdc_arena_memdup(&tx->arena, bl->file, strlen(bl->file));
    tx->pos = bl->pos; /* not a resume point: the one before the group */
    tx->frag = bl->frag++;
    tx->more = 1;
    *out = tx;
    return 1;
}

static int frag_lost_err(cdc_binlog_t *bl, const evctx_t *e, cdc_err_t *err)
{
    uint32_t n = bl->frag_lost;

    bl->frag_lost = 0;
    everr(bl, e, err,
          "a transaction handed out in %" PRIu32 " fragments did not commit "
          "(ROLLBACK or a group cut off in the binlog)", n);
    cdc_err_hint(err, "its first fragments were delivered already; raise "
                      "pipeline.fragment_rows and pipeline.fragment_kb above "
                      "the size of that transaction so it is held whole, "
                      "and restart");
    return -1;
}

int cdc_binlog_feed(cdc_binlog_t *bl, const uint8_t *ev, size_t len,
                    uint64_t offset, cdc_txn_t **out, cdc_err_t *err)
{
    cdc_txn_t *tx = NULL;
    int rc = binlog_feed1(bl, ev, len, offset, &tx, err);

    if (out)
        *out = NULL;
    if (bl->frag_lost && rc >= 0) {
        evctx_t e;
        memset(&e, 0, sizeof(e));
        e.off = offset;
        e.type = len > 4 ? ev[4] : 0;
        cdc_txn_destroy(tx);
        return frag_lost_err(bl, &e, err);
    }
    if (rc == 0 && (bl->o.frag_rows || bl->o.frag_bytes) &&
        len >= CDC_BINLOG_HEADER_LEN) {
        evctx_t e;
        memset(&e, 0, sizeof(e));
        e.type = ev[4];
        e.ts = (uint32_t)le_n(ev, 4);
        e.server_id = (uint32_t)le_n(ev + 5, 4);
        if (frag_due(bl, &e))
            rc = frag_out(bl, &e, &tx);
    }
    if (out)
        *out = tx;
    else
        cdc_txn_destroy(tx);
    return rc;
}

static int binlog_feed1(cdc_binlog_t *bl, const uint8_t *ev, size_t len,
                        uint64_t offset, cdc_txn_t **out, cdc_err_t *err)
{
    cdc_txn_t *dummy = NULL;
    if (!out)
        out = &dummy;
    *out = NULL;
    evctx_t e;
    memset(&e, 0, sizeof(e));
    e.ev = ev;
    e.off = offset;
    if (len < CDC_BINLOG_HEADER_LEN) {
        return cdc_err_set(err, CDC_EXIT_DATA, CDC_ERR_F_DATA,
                           "truncated event at offset %" PRIu64 " of %s: %zu "
                           "bytes, the header alone is 19",
                           offset, file_or_stream(bl), len);
    }
    e.ts = (uint32_t)le_n(ev, 4);
    e.type = ev[4];
    e.server_id = (uint32_t)le_n(ev + 5, 4);
    uint32_t size = (uint32_t)le_n(ev + 9, 4);
    e.log_pos = (uint32_t)le_n(ev + 13, 4);
    e.flags = (uint16_t)le_n(ev + 17, 2);
    e.size = (uint32_t)len;
    e.len = len;
    if (size != len)
        return everr(bl, &e, err, "event_size %" PRIu32 " does not match the "
                                  "%zu bytes of the event",
                     size, len);
    if (bl->o.on_event) {
        cdc_binlog_evinfo_t inf = {offset, e.ts, e.type, e.server_id, size,
                                   e.log_pos, e.flags, 0, ev_name(bl, e.type)};
        bl->o.on_event(bl->o.opaque, &inf);
    }
    if (e.type == FORMAT_DESCRIPTION_EVENT)
        return ev_fde(bl, &e, len, err);

    /* checksum of this event */
    int crc = bl->checksum == 1;
    if ((e.type == ROTATE_EVENT || e.type == HEARTBEAT_LOG_EVENT ||
         e.type == HEARTBEAT_LOG_EVENT_V2) &&
        (bl->checksum < 0 || (e.flags & LOG_EVENT_ARTIFICIAL_F) ||
         !bl->have_fde)) {
        /* the fake ROTATE / heartbeat of a dump carries a CRC only if
         * checksums were negotiated, whatever the next file uses */
        crc = len >= CDC_BINLOG_HEADER_LEN + 4 &&
              ev_crc(ev, len - 4, 0) == (uint32_t)le_n(ev + len - 4, 4);
    }
    if (crc) {
        if (len < CDC_BINLOG_HEADER_LEN + 4)
            return short_event(bl, &e, err);
        e.len = len - 4;
        if (bl->o.verify_checksum) {
            uint32_t stored = (uint32_t)le_n(ev + len - 4, 4);
            uint32_t c = ev_crc(ev, len - 4, 0);
            if (c != stored)
                return crc_err(bl, &e, stored, c, err);
        }
    }
    if (!bl->have_fde && e.type != ROTATE_EVENT &&
        e.type != HEARTBEAT_LOG_EVENT && e.type != HEARTBEAT_LOG_EVENT_V2) {
        everr(bl, &e, err, "event before the FORMAT_DESCRIPTION event");
        cdc_err_hint(err, "decoding must start at offset 4 of a binlog file "
                          "(or at the start of a dump stream)");
        return -1;
    }
    return dispatch(bl, &e, out, err);
}
