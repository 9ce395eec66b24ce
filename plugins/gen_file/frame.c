/*
 * frame.c - the record scanners of gen_file (see frame.h): lines,
 * length-prefixed blocks and MessagePack objects, and the lookup of a
 * record's key field.
 *
 * The MessagePack scanner needs no stack: an object's extent is found by
 * counting the objects still to be read (one at the start; each container
 * header adds its element count), so nesting depth costs nothing and
 * cannot overflow anything. Every length read from the data is checked
 * against the bytes available before it is used, and the count of pending
 * objects against the bytes max_record leaves (each takes at least one), so
 * a 5-byte "map of 4 billion entries" is refused at once as too long
 * instead of being scanned, and no sum can overflow.
 */
#include "frame.h"

#include <string.h>

static uint64_t rd_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static uint64_t rd_le32(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
}

static frame_status frame_line(const frame_format *ff, const uint8_t *p, uint64_t avail, int at_eof,
                               frame *f)
{
    /* A line of max_record bytes may be followed by "\r\n": looking that
     * far is enough to decide. */
    uint64_t look = avail < ff->max_record + 2 ? avail : ff->max_record + 2;
    const uint8_t *nl = memchr(p, '\n', (size_t)look);
    uint64_t len, size;
    if (nl) {
        len = (uint64_t)(nl - p);
        size = len + 1;
    } else if (look == ff->max_record + 2) {
        f->why = "line longer than max_record";
        return FRAME_TOO_LONG;
    } else if (!at_eof) {
        return FRAME_MORE;
    } else {
        len = size = avail; /* the last line, without a newline */
    }
    if (ff->strip_cr && len > 0 && p[len - 1] == '\r')
        len--;
    if (len > ff->max_record) {
        f->value = len;
        f->why = "line longer than max_record";
        return FRAME_TOO_LONG;
    }
    f->hdr = 0;
    f->len = len;
    f->size = size;
    return FRAME_OK;
}

static frame_status frame_length(const frame_format *ff, const uint8_t *p, uint64_t avail,
                                 int at_eof, frame *f)
{
    uint64_t len = 0, hdr;
    if (ff->prefix != FRAME_VARINT) {
        if (avail < 4)
            goto short_prefix;
        len = ff->prefix == FRAME_BE32 ? rd_be(p, 4) : rd_le32(p);
        hdr = 4;
    } else {
        /* Base-128, least significant group first, as protobuf writes a
         * message length; at most 10 bytes (64 bits), and non-minimal
         * encodings are accepted as protobuf accepts them. */
        uint64_t i = 0;
        for (;;) {
            if (i == avail)
                goto short_prefix;
            uint8_t b = p[i++];
            if (i == 10 && b > 1) {
                f->bad_at = i - 1;
                f->why = "length varint longer than 64 bits";
                return FRAME_BAD;
            }
            len |= (uint64_t)(b & 0x7f) << (7 * (i - 1));
            if (!(b & 0x80))
                break;
        }
        hdr = i;
    }
    if (len > ff->max_record) {
        f->value = len;
        f->why = "length above max_record";
        return FRAME_TOO_LONG;
    }
    if (avail - hdr < len) {
        if (!at_eof)
            return FRAME_MORE;
        f->bad_at = avail;
        f->value = len;
        f->why = "file ends inside the record";
        return FRAME_TRUNCATED;
    }
    f->hdr = hdr;
    f->len = len;
    f->size = hdr + len;
    return FRAME_OK;

short_prefix:
    if (!at_eof)
        return FRAME_MORE;
    f->bad_at = avail;
    f->why = "file ends inside the length prefix";
    return FRAME_TRUNCATED;
}

/* Header layout of MessagePack type byte t: `hdr` bytes of header, of which
 * the last `n_size` (1, 2 or 4, big-endian) are a size; without a size,
 * `body` fixed bytes follow, or `children` objects. `size_is` says what the
 * size counts: 0 payload bytes, 1 array elements, 2 map entries. Returns 0
 * for the one invalid byte, 0xc1. */
typedef struct mp_head {
    uint8_t hdr, n_size, size_is;
    uint32_t body, children;
} mp_head;

static int mp_head_of(uint8_t t, mp_head *h)
{
    *h = (mp_head){.hdr = 1};
    if (t <= 0x7f || t >= 0xe0) /* positive and negative fixint */
        return 1;
    if (t <= 0x8f) {
        h->children = 2u * (t & 0x0f);
        return 1;
    }
    if (t <= 0x9f) {
        h->children = t & 0x0f;
        return 1;
    }
    if (t <= 0xbf) {
        h->body = t & 0x1f;
        return 1;
    }
    switch (t) {
    case 0xc0: /* nil */
    case 0xc2: /* false */
    case 0xc3: return 1;
    case 0xc1: return 0;
    case 0xc4: /* bin 8, 16, 32 */
    case 0xd9: /* str 8 */ *h = (mp_head){.hdr = 2, .n_size = 1}; return 1;
    case 0xc5:
    case 0xda: *h = (mp_head){.hdr = 3, .n_size = 2}; return 1;
    case 0xc6:
    case 0xdb: *h = (mp_head){.hdr = 5, .n_size = 4}; return 1;
    case 0xc7: /* ext 8, 16, 32: size, then a type byte */
        *h = (mp_head){.hdr = 3, .n_size = 1};
        return 1;
    case 0xc8: *h = (mp_head){.hdr = 4, .n_size = 2}; return 1;
    case 0xc9: *h = (mp_head){.hdr = 6, .n_size = 4}; return 1;
    case 0xca: h->body = 4; return 1; /* float 32 */
    case 0xcb: h->body = 8; return 1; /* float 64 */
    case 0xcc:
    case 0xd0: h->body = 1; return 1; /* (u)int 8 */
    case 0xcd:
    case 0xd1: h->body = 2; return 1;
    case 0xce:
    case 0xd2: h->body = 4; return 1;
    case 0xcf:
    case 0xd3: h->body = 8; return 1;
    case 0xd4: h->body = 2; return 1; /* fixext 1..16: a type byte and the data */
    case 0xd5: h->body = 3; return 1;
    case 0xd6: h->body = 5; return 1;
    case 0xd7: h->body = 9; return 1;
    case 0xd8: h->body = 17; return 1;
    case 0xdc: *h = (mp_head){.hdr = 3, .n_size = 2, .size_is = 1}; return 1;
    case 0xdd: *h = (mp_head){.hdr = 5, .n_size = 4, .size_is = 1}; return 1;
    case 0xde: *h = (mp_head){.hdr = 3, .n_size = 2, .size_is = 2}; return 1;
    default: /* 0xdf */ *h = (mp_head){.hdr = 5, .n_size = 4, .size_is = 2}; return 1;
    }
}

static frame_status frame_msgpack(const frame_format *ff, const uint8_t *p, uint64_t avail,
                                  int at_eof, frame *f)
{
    uint64_t max = ff->max_record;
    uint64_t lim = avail < max ? avail : max; /* the bytes this object may use */
    uint64_t pos = 0, pending = 1, need;
    while (pending) {
        pending--;
        if (pos >= lim) {
            need = pos + 1;
            goto out_of_bytes;
        }
        mp_head h;
        if (!mp_head_of(p[pos], &h)) {
            f->bad_at = pos;
            f->why = "byte 0xc1 (never used in MessagePack)";
            return FRAME_BAD;
        }
        if (h.hdr > lim - pos) {
            need = pos + h.hdr;
            goto out_of_bytes;
        }
        uint64_t body = h.body, children = h.children;
        if (h.n_size) {
            /* The size field ends the header (ext has its type byte after it). */
            uint64_t size = rd_be(p + pos + 1, h.n_size);
            if (h.size_is == 0)
                body = size;
            else
                children = h.size_is == 2 ? 2 * size : size;
        }
        pos += h.hdr;
        if (body > lim - pos) {
            need = pos + body;
            goto out_of_bytes;
        }
        pos += body;
        /* Each pending object takes at least one byte: more than max_record
         * leaves cannot fit, whatever follows (pos <= lim <= max here). */
        if (pending > max - pos || children > max - pos - pending) {
            f->why = "object longer than max_record (its containers declare more elements)";
            return FRAME_TOO_LONG;
        }
        pending += children;
    }
    f->hdr = 0;
    f->len = f->size = pos;
    return FRAME_OK;

out_of_bytes:
    if (need > max) {
        f->value = need;
        f->why = "object longer than max_record";
        return FRAME_TOO_LONG;
    }
    if (!at_eof)
        return FRAME_MORE;
    f->bad_at = avail;
    f->why = "file ends inside the object";
    return FRAME_TRUNCATED;
}

frame_status frame_next(const frame_format *ff, const uint8_t *p, uint64_t avail, int at_eof,
                        frame *f)
{
    *f = (frame){0};
    if (avail == 0)
        return at_eof ? FRAME_END : FRAME_MORE;
    switch (ff->format) {
    case FRAME_LINES: return frame_line(ff, p, avail, at_eof, f);
    case FRAME_LENGTH: return frame_length(ff, p, avail, at_eof, f);
    default: return frame_msgpack(ff, p, avail, at_eof, f);
    }
}

/* ------------------------------------------------------------ key fields */

static uint64_t json_ws(const uint8_t *p, uint64_t i, uint64_t len)
{
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

/* p[i] is '"': sets *end after the closing quote; 0 when there is none. */
static int json_string_end(const uint8_t *p, uint64_t i, uint64_t len, uint64_t *end)
{
    for (uint64_t j = i + 1; j < len; j++) {
        if (p[j] == '\\')
            j++; /* the escaped byte cannot close the string */
        else if (p[j] == '"') {
            *end = j + 1;
            return 1;
        }
    }
    return 0;
}

/* Sets *end after the value starting at p[i] (a string, an object or array
 * with everything nested in it, or a scalar token); 0 when it does not end
 * inside p[0, len). Not a validator: it only has to find the end. */
static int json_value_end(const uint8_t *p, uint64_t i, uint64_t len, uint64_t *end)
{
    if (p[i] == '"')
        return json_string_end(p, i, len, end);
    if (p[i] == '{' || p[i] == '[') {
        uint64_t depth = 0;
        for (uint64_t j = i; j < len;) {
            uint8_t c = p[j];
            if (c == '"') {
                if (!json_string_end(p, j, len, &j))
                    return 0;
                continue;
            }
            if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0) {
                    *end = j + 1;
                    return 1;
                }
            }
            j++;
        }
        return 0;
    }
    uint64_t j = i;
    while (j < len && !memchr(",}] \t\r\n", p[j], 7))
        j++;
    *end = j;
    return j > i;
}

static int json_field(const uint8_t *p, uint64_t len, const char *name, size_t name_len,
                      const uint8_t **val, uint64_t *val_len)
{
    uint64_t i = json_ws(p, 0, len), e;
    if (i >= len || p[i] != '{')
        return 0;
    i++;
    for (;;) {
        i = json_ws(p, i, len);
        if (i >= len || p[i] != '"' || !json_string_end(p, i, len, &e))
            return 0;
        uint64_t ks = i + 1, kn = e - 1 - ks;
        i = json_ws(p, e, len);
        if (i >= len || p[i] != ':')
            return 0;
        i = json_ws(p, i + 1, len);
        if (i >= len || !json_value_end(p, i, len, &e))
            return 0;
        if (kn == name_len && memcmp(p + ks, name, name_len) == 0) {
            if (p[i] == '"') {
                *val = p + i + 1;
                *val_len = e - i - 2;
            } else {
                *val = p + i;
                *val_len = e - i;
            }
            return 1;
        }
        i = json_ws(p, e, len);
        if (i >= len || p[i] != ',')
            return 0;
        i++;
    }
}

/* The extent of the MessagePack object at p[0, len); 0 if it is not complete. */
static int mp_extent(const uint8_t *p, uint64_t len, uint64_t *size)
{
    frame_format ff = {.format = FRAME_MSGPACK, .max_record = len};
    frame f;
    if (frame_next(&ff, p, len, 1, &f) != FRAME_OK)
        return 0;
    *size = f.size;
    return 1;
}

/* For a str or bin object of `size` bytes at p: the payload's offset. */
static int mp_payload(const uint8_t *p, uint64_t *off, int *is_str)
{
    uint8_t t = p[0];
    *is_str = (t >= 0xa0 && t <= 0xbf) || (t >= 0xd9 && t <= 0xdb);
    if (t >= 0xa0 && t <= 0xbf)
        *off = 1;
    else if (t == 0xd9 || t == 0xc4)
        *off = 2;
    else if (t == 0xda || t == 0xc5)
        *off = 3;
    else if (t == 0xdb || t == 0xc6)
        *off = 5;
    else
        return 0;
    return 1;
}

static int mp_field(const uint8_t *p, uint64_t len, const char *name, size_t name_len,
                    const uint8_t **val, uint64_t *val_len)
{
    uint64_t n, pos, ks, vs, off;
    int is_str;
    if (len == 0)
        return 0;
    if (p[0] >= 0x80 && p[0] <= 0x8f) {
        n = p[0] & 0x0f;
        pos = 1;
    } else if (p[0] == 0xde && len >= 3) {
        n = rd_be(p + 1, 2);
        pos = 3;
    } else if (p[0] == 0xdf && len >= 5) {
        n = rd_be(p + 1, 4);
        pos = 5;
    } else {
        return 0;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (!mp_extent(p + pos, len - pos, &ks))
            return 0;
        int match = mp_payload(p + pos, &off, &is_str) && is_str && ks - off == name_len &&
                    memcmp(p + pos + off, name, name_len) == 0;
        pos += ks;
        if (!mp_extent(p + pos, len - pos, &vs))
            return 0;
        if (match) {
            if (mp_payload(p + pos, &off, &is_str)) {
                *val = p + pos + off;
                *val_len = vs - off;
            } else {
                *val = p + pos;
                *val_len = vs;
            }
            return 1;
        }
        pos += vs;
    }
    return 0;
}

int frame_key_field(int format, const uint8_t *p, uint64_t len, const char *name, size_t name_len,
                    const uint8_t **val, uint64_t *val_len)
{
    if (format == FRAME_LINES)
        return json_field(p, len, name, name_len, val, val_len);
    if (format == FRAME_MSGPACK)
        return mp_field(p, len, name, name_len, val, val_len);
    return 0;
}
