/*
 * util.h - the small building blocks every other file of obsprofiler uses:
 * a byte-string interner (dense ids for strings, frames, stacks and tags,
 * so that everything else is arrays indexed by id), a growing text buffer
 * with XML and JSON escaping, clocks and error formatting. None of it is
 * safe in a signal handler, and none of it knows what a profile is.
 *
 * Layer: the bottom. This module may include: nothing of the profiler
 * (system headers only).
 */
#ifndef OBS_PROF_UTIL_H
#define OBS_PROF_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Interns byte strings: equal keys get the same dense id (0, 1, ...). The
 * bytes are copied into one growing buffer; pointers from prof_blobs_get
 * stay valid until the next intern. A zeroed struct is an empty set. */
typedef struct prof_blobs {
    uint8_t *data;
    size_t len, cap;
    size_t *off;
    uint32_t *blen;
    uint32_t n, ncap;
    uint32_t *table; /* open addressing: id + 1, 0 empty */
    uint32_t tcap;   /* power of two */
} prof_blobs;

/* Interns key (len bytes, copied); *id gets its id. 0 or OBS_ENOMEM. */
int prof_blobs_intern(prof_blobs *b, const void *key, uint32_t len, uint32_t *id);
/* Id of an existing key, or -1. */
int64_t prof_blobs_find(const prof_blobs *b, const void *key, uint32_t len);
/* The bytes of id (and their length in *len when not NULL), owned by b. */
static inline const void *prof_blobs_get(const prof_blobs *b, uint32_t id, uint32_t *len)
{
    if (len)
        *len = b->blen[id];
    return b->data + b->off[id];
}
/* Frees everything b holds and leaves it empty. */
void prof_blobs_free(prof_blobs *b);
uint64_t prof_hash(const void *key, size_t len);

/* A growing malloc'd buffer; on allocation failure `failed` is set and
 * further appends do nothing, so callers check once at the end. */
typedef struct prof_buf {
    char *p;
    size_t len, cap;
    int failed;
} prof_buf;
void prof_buf_put(prof_buf *b, const void *data, size_t len);
void prof_buf_puts(prof_buf *b, const char *s);
void prof_buf_printf(prof_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void prof_buf_xml(prof_buf *b, const char *s);  /* XML-escaped */
void prof_buf_json(prof_buf *b, const char *s); /* quoted JSON string */
/* Hands the buffer (NUL-terminated, malloc'd: the caller frees it) to the
 * caller; OBS_ENOMEM if anything failed. */
int prof_buf_finish(prof_buf *b, char **out, size_t *len);

uint64_t prof_realtime_ns(void);
uint64_t prof_monotonic_ns(void);
/* Formats a message into err (errlen bytes; nothing when err is NULL). */
void prof_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif /* OBS_PROF_UTIL_H */
