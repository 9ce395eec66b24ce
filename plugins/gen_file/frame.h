/*
 * frame.h - where one record of a user's file ends, for gen_file.
 *
 * gen_file reads a file through a bounded buffer (gen_file.c) and asks
 * frame_next() where the next record lies in the bytes it holds: a line, a
 * length-prefixed block, or one complete MessagePack object. The scanners
 * are pure functions over a byte span, never read outside it, and allocate
 * nothing, so they are fuzzed on their own (tests/fuzz/fuzz_gen_file.c).
 * frame_key_field() finds a named top-level field of a JSON object or a
 * MessagePack map inside a record, for the record's key.
 */
#ifndef GEN_FILE_FRAME_H
#define GEN_FILE_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum { FRAME_LINES = 0, FRAME_LENGTH = 1, FRAME_MSGPACK = 2 };
enum { FRAME_BE32 = 0, FRAME_LE32 = 1, FRAME_VARINT = 2 };

/* Bytes a record may take in the file beyond its max_record data bytes:
 * "\r\n" after a line, a length prefix (a varint takes up to 10). A span of
 * max_record + FRAME_OVERHEAD bytes is always enough for frame_next() to
 * decide, so it never answers FRAME_MORE for one. */
#define FRAME_OVERHEAD 16

typedef enum frame_status {
    FRAME_OK = 0,         /* a record: see frame.hdr, .len, .size */
    FRAME_END = 1,        /* the span is empty and the file has ended */
    FRAME_MORE = 2,       /* the span ends inside the record: read more */
    FRAME_TOO_LONG = -1,  /* the record has more than max_record data bytes */
    FRAME_TRUNCATED = -2, /* the file ends inside the record */
    FRAME_BAD = -3,       /* a byte that cannot be there, at frame.bad_at */
} frame_status;

/* How records are laid out in the file. */
typedef struct frame_format {
    int format;          /* FRAME_LINES, FRAME_LENGTH or FRAME_MSGPACK */
    int prefix;          /* FRAME_LENGTH: FRAME_BE32, FRAME_LE32 or FRAME_VARINT */
    int strip_cr;        /* FRAME_LINES: drop one '\r' that ends a line */
    uint64_t max_record; /* most data bytes of one record, at least 1 */
} frame_format;

/* Where the record at the start of a span lies, relative to that start. */
typedef struct frame {
    uint64_t hdr;    /* bytes before the data (a length prefix) */
    uint64_t len;    /* data bytes: the record is span[hdr, hdr + len) */
    uint64_t size;   /* bytes the record takes in the file, hdr + len + terminator */
    uint64_t value;  /* FRAME_TOO_LONG: the declared or found length, when known (else 0) */
    uint64_t bad_at; /* FRAME_BAD, FRAME_TRUNCATED: offset of the offending byte or the end */
    const char *why; /* a static description of a negative status, for messages */
} frame;

/*
 * Finds the record at the start of p[0, avail). `at_eof` says that the file
 * ends at p + avail (no more bytes will come). Returns a frame_status and
 * fills *f (f->why for the negative ones). Never reads outside p[0, avail).
 *
 * lines:   the bytes up to the next '\n' (not included); with strip_cr one
 *          '\r' before it is dropped too. At the end of the file, bytes
 *          after the last '\n' are a last record (with strip_cr, a final
 *          '\r' of it is dropped as well); a final '\n' ends the last line
 *          and starts none.
 * length:  a length L (4 bytes big- or little-endian, or a protobuf-style
 *          base-128 varint of at most 10 bytes), then L data bytes.
 * msgpack: one complete MessagePack object (containers with their
 *          elements, any depth; 0xc1 is never valid).
 */
frame_status frame_next(const frame_format *ff, const uint8_t *p, uint64_t avail, int at_eof,
                        frame *f);

/*
 * Finds the top-level field `name` (name_len bytes) of the record
 * p[0, len): for format lines, a member of the JSON object the record holds
 * (its key compared as written, escapes not decoded); for msgpack, the
 * entry of the map the record holds whose key is a str of those bytes. The
 * value is a string's bytes (between the quotes, as written; a msgpack str
 * or bin payload) or, for any other value, its text or encoding. Returns 1
 * and sets *val, *val_len (pointing into p) when found, 0 when the record is
 * not an object/map, has no such field, or is not well-formed enough to
 * tell. For format length, always 0.
 */
int frame_key_field(int format, const uint8_t *p, uint64_t len, const char *name, size_t name_len,
                    const uint8_t **val, uint64_t *val_len);

#endif /* GEN_FILE_FRAME_H */
