/*
 * fuzz_gen_file.c - libFuzzer harness for gen_file's record scanners
 * (plugins/gen_file/frame.c, compiled in for coverage): lines,
 * length-prefixed records (be32, le32, varint) and the MessagePack extent
 * scanner, and the key-field lookup in JSON lines and msgpack maps.
 *
 * The first input byte picks the format, the length prefix and strip_cr,
 * the second max_record; the rest is a file, copied into an allocation of
 * exactly its size so that ASan sees any read past it. Properties checked
 * (abort() on a violation):
 *  - every record lies inside the span, takes at least one byte and at most
 *    max_record data bytes; an error's offset lies inside the span;
 *  - the file read through a buffer of max_record + FRAME_OVERHEAD bytes in
 *    chunks of varying size (as gen_file reads it) gives exactly the records
 *    and the final status of scanning it whole, and never asks for more
 *    with a full buffer;
 *  - each msgpack record is exactly one object for libmsgpack
 *    (msgpack_unpack succeeds and consumes all of it, unless it nests
 *    deeper than libmsgpack's 32 levels), and a span refused for 0xc1 or
 *    truncation is not one complete object for libmsgpack either;
 *  - a key field found lies inside its record.
 *
 *   CC=clang cmake -S . -B build-fuzz -G Ninja && ninja -C build-fuzz fuzz_gen_file
 *   mkdir -p build-fuzz/corpus-gen-file
 *   build-fuzz/tests/fuzz/fuzz_gen_file -dict=tests/fuzz/msgpack.dict -max_total_time=300 \
 *       build-fuzz/corpus-gen-file
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "frame.h"

#define MAX_RECS 4096

typedef struct rec {
    uint64_t start, hdr, len;
} rec;

/* Scans p[0, n) whole; returns the final status and the records. */
static frame_status scan_whole(const frame_format *ff, const uint8_t *p, uint64_t n, rec *r,
                               size_t *n_r, uint64_t *end_off)
{
    uint64_t off = 0;
    *n_r = 0;
    for (;;) {
        frame f;
        frame_status st = frame_next(ff, p + off, n - off, 1, &f);
        if (st == FRAME_MORE)
            abort(); /* never at the end of the file */
        if (st != FRAME_OK) {
            if (st == FRAME_BAD && f.bad_at >= n - off)
                abort();
            if (st == FRAME_TRUNCATED && f.bad_at != n - off)
                abort();
            if (st < 0 && !f.why)
                abort();
            *end_off = off;
            return st;
        }
        if (f.size == 0 || f.size > n - off || f.hdr + f.len > f.size || f.len > ff->max_record)
            abort();
        if (ff->format == FRAME_LINES) {
            if (memchr(p + off, '\n', (size_t)f.len))
                abort();
            if (off + f.size < n && p[off + f.size - 1] != '\n')
                abort();
        }
        if (*n_r < MAX_RECS)
            r[(*n_r)++] = (rec){off, f.hdr, f.len};
        off += f.size;
    }
}

/* Reads p[0, n) through a buffer of cap bytes in chunks as gen_file does;
 * the records and the final status must equal the whole scan's. */
static void scan_streamed(const frame_format *ff, const uint8_t *p, uint64_t n, const rec *want,
                          size_t n_want, frame_status want_st, uint64_t want_end)
{
    uint64_t cap = ff->max_record + FRAME_OVERHEAD;
    uint8_t *buf = malloc(cap);
    if (!buf)
        abort();
    uint64_t head = 0, tail = 0, off = 0, read_pos = 0, step = 1;
    size_t k = 0;
    int eof = 0;
    frame_status st;
    for (;;) {
        frame f;
        st = frame_next(ff, buf + head, tail - head, eof, &f);
        if (st == FRAME_MORE) {
            if (tail - head == cap)
                abort(); /* the buffer is large enough for any decision */
            memmove(buf, buf + head, tail - head);
            tail -= head;
            head = 0;
            /* A read of varying size, as from a pipe. */
            uint64_t want_n = step = step * 7 % 61 + 1;
            if (want_n > cap - tail)
                want_n = cap - tail;
            if (want_n > n - read_pos)
                want_n = n - read_pos;
            if (want_n == 0)
                eof = 1;
            memcpy(buf + tail, p + read_pos, (size_t)want_n);
            tail += want_n;
            read_pos += want_n;
            continue;
        }
        if (st != FRAME_OK)
            break;
        if (k < n_want && (want[k].start != off || want[k].hdr != f.hdr || want[k].len != f.len ||
                           memcmp(buf + head + f.hdr, p + off + f.hdr, (size_t)f.len) != 0))
            abort();
        k++;
        head += f.size;
        off += f.size;
    }
    if (st != want_st || off != want_end || (k != n_want && n_want < MAX_RECS))
        abort();
    free(buf);
}

/* libmsgpack must agree on every record's extent. */
static void msgpack_agrees(const uint8_t *p, uint64_t n, const rec *r, size_t n_r, frame_status st,
                           uint64_t end)
{
    msgpack_zone z;
    msgpack_zone_init(&z, 2048);
    for (size_t i = 0; i < n_r; i++) {
        msgpack_object o;
        size_t off = 0;
        int rc = msgpack_unpack((const char *)p + r[i].start, (size_t)r[i].len, &off, &z, &o);
        if (rc != MSGPACK_UNPACK_NOMEM_ERROR && (rc != MSGPACK_UNPACK_SUCCESS || off != r[i].len))
            abort();
        msgpack_zone_clear(&z);
    }
    if (st == FRAME_BAD || st == FRAME_TRUNCATED) {
        /* Counts were checked against the bytes left, so decoding the
         * rest allocates at most in proportion to it. */
        msgpack_object o;
        size_t off = 0;
        int rc = msgpack_unpack((const char *)p + end, (size_t)(n - end), &off, &z, &o);
        if (rc == MSGPACK_UNPACK_SUCCESS || rc == MSGPACK_UNPACK_EXTRA_BYTES)
            abort();
    }
    msgpack_zone_destroy(&z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    frame_format ff = {.format = data[0] % 3,
                       .prefix = (data[0] / 3) % 3,
                       .strip_cr = (data[0] >> 4) & 1,
                       .max_record = 1 + (uint64_t)data[1] * data[1]};
    uint64_t n = size - 2;
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        abort();
    memcpy(p, data + 2, n);

    static rec r[MAX_RECS];
    size_t n_r;
    uint64_t end;
    frame_status st = scan_whole(&ff, p, n, r, &n_r, &end);
    scan_streamed(&ff, p, n, r, n_r, st, end);
    if (ff.format == FRAME_MSGPACK)
        msgpack_agrees(p, n, r, n_r, st, end);
    for (size_t i = 0; i < n_r; i++) {
        const uint8_t *v;
        uint64_t vlen;
        const uint8_t *q = p + r[i].start + r[i].hdr;
        static const char *const names[] = {"sym", "a", ""};
        const char *name = names[(data[0] >> 5) % 3];
        if (frame_key_field(ff.format, q, r[i].len, name, strlen(name), &v, &vlen) &&
            (v < q || vlen > r[i].len || v + vlen > q + r[i].len))
            abort();
    }
    free(p);
    return 0;
}
