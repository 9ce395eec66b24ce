/*
 * plugins/common/mpk.h - MessagePack helpers for the payload families
 * (private to plugins/), on top of libmsgpack (msgpack-c, <msgpack.h>).
 *
 * Writing: mpk_packer_init() gives a msgpack_packer whose write callback
 * appends to a buffer the caller has already sized (obs_out_reserve), so a
 * generator packs a record with libmsgpack's msgpack_pack_* functions and no
 * allocation or bound check per item. msgpack-c always picks the shortest
 * encoding of an integer or a string length, so equal values give equal
 * bytes.
 *
 * Reading untrusted bytes: libmsgpack's unpacker allocates a container's
 * element array from the count in the container's header, before it has
 * seen a single element, so a 5-byte record "df ff ff ff ff" (a map that
 * claims 2^32 - 1 pairs) asks its zone for 192 GiB. mpk_check() runs first:
 * one pass without allocation that accepts exactly one complete msgpack
 * object and refuses any container that declares more elements than bytes
 * are left to hold them (every element takes at least one byte). After it,
 * the element arrays take at most 24 bytes (one msgpack_object) per input
 * byte.
 */
#ifndef OBS_PLUGINS_MPK_H
#define OBS_PLUGINS_MPK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

/* The write cursor of an mpk packer: the next byte to write. */
typedef struct mpk_sink {
    uint8_t *p;
} mpk_sink;

static inline int mpk_write(void *data, const char *buf, size_t len)
{
    mpk_sink *s = data;
    memcpy(s->p, buf, len);
    s->p += len;
    return 0;
}

/* Points pk at s: what is packed lands at s->p, which advances. The caller
 * guarantees room for everything it packs. */
static inline void mpk_packer_init(msgpack_packer *pk, mpk_sink *s)
{
    msgpack_packer_init(pk, s, mpk_write);
}

/* Packs a string literal (a map key or a short value). */
#define MPK_STR(pk, lit)                                                                           \
    do {                                                                                           \
        msgpack_pack_str((pk), sizeof(lit) - 1);                                                   \
        msgpack_pack_str_body((pk), (lit), sizeof(lit) - 1);                                       \
    } while (0)

/* True for the first byte of a msgpack map (fixmap, map 16, map 32): what
 * the transforms look at to tell a msgpack record from JSON text, which
 * never starts with a byte >= 0x80. */
static inline int mpk_is_map_tag(uint8_t b)
{
    return (b & 0xf0) == 0x80 || b == 0xde || b == 0xdf;
}

/* Returns 0 when p[0..len) is exactly one complete msgpack object (no
 * trailing bytes, no never-used tag 0xc1) in which no container declares
 * more elements than bytes remain after its header; -1 otherwise. Reads only
 * p[0..len). Nesting depth is not limited here (libmsgpack refuses more than
 * 32 levels itself, without allocating). */
static inline int mpk_check(const uint8_t *p, size_t len)
{
    size_t i = 0;
    uint64_t pending = 1; /* objects still to read, each at least one byte */
    while (pending) {
        if (i >= len)
            return -1;
        uint8_t t = p[i++];
        pending--;
        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
            continue;       /* fixint, nil, false, true: the tag is the whole object */
        uint64_t n = 0;     /* payload bytes, or elements of a container */
        unsigned per = 0;   /* objects per element: 1 array, 2 map, 0 not a container */
        unsigned w = 0;     /* width of the big-endian length or count after the tag */
        unsigned extra = 0; /* bytes between that field and the payload (ext type) */
        if (t <= 0x8f) {
            n = t & 0x0f, per = 2;
        } else if (t <= 0x9f) {
            n = t & 0x0f, per = 1;
        } else if (t <= 0xbf) {
            n = t & 0x1f;
        } else {
            switch (t) {
            case 0xc4:               /* bin 8 */
            case 0xd9: w = 1; break; /* str 8 */
            case 0xc5:
            case 0xda: w = 2; break;
            case 0xc6:
            case 0xdb: w = 4; break;
            case 0xc7: w = 1, extra = 1; break; /* ext 8 */
            case 0xc8: w = 2, extra = 1; break;
            case 0xc9: w = 4, extra = 1; break;
            case 0xcc: /* uint 8 */
            case 0xd0: n = 1; break;
            case 0xcd:
            case 0xd1: n = 2; break;
            case 0xca: /* float 32 */
            case 0xce:
            case 0xd2: n = 4; break;
            case 0xcb:
            case 0xcf:
            case 0xd3: n = 8; break;
            case 0xd4: n = 2; break; /* fixext 1: type byte + 1 */
            case 0xd5: n = 3; break;
            case 0xd6: n = 5; break;
            case 0xd7: n = 9; break;
            case 0xd8: n = 17; break;
            case 0xdc: w = 2, per = 1; break; /* array 16 */
            case 0xdd: w = 4, per = 1; break;
            case 0xde: w = 2, per = 2; break; /* map 16 */
            case 0xdf: w = 4, per = 2; break;
            default: return -1; /* 0xc1 */
            }
        }
        if (len - i < w)
            return -1;
        for (unsigned k = 0; k < w; k++)
            n = n << 8 | p[i++];
        if (per) {
            pending += per * n;
            if (pending > len - i)
                return -1;
        } else {
            if (len - i < extra || len - i - extra < n)
                return -1;
            i += extra + (size_t)n;
        }
    }
    return i == len ? 0 : -1;
}

/* True when msgpack object o is the string `s`. */
static inline int mpk_str_is(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

#endif /* OBS_PLUGINS_MPK_H */
