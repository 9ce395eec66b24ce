/*
 * util.c - small building blocks of the profiler: a byte-string interner
 * (dense ids for strings, frames, stacks and tags, so that everything else
 * is arrays indexed by id), a growing text buffer with XML and JSON
 * escaping, clocks and error formatting. Never used by the signal handler.
 * Interface and place in the whole: util.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "observatory/stage.h"
#include "util.h"

uint64_t prof_hash(const void *key, size_t len)
{
    /* FNV-1a, then a final mix so that the low bits (the table index) depend
     * on every input byte. */
    const uint8_t *p = key;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static int blobs_rehash(prof_blobs *b, uint32_t tcap)
{
    uint32_t *t = calloc(tcap, sizeof *t);
    if (!t)
        return OBS_ENOMEM;
    for (uint32_t id = 0; id < b->n; id++) {
        uint64_t h = prof_hash(b->data + b->off[id], b->blen[id]);
        uint32_t i = (uint32_t)h & (tcap - 1);
        while (t[i])
            i = (i + 1) & (tcap - 1);
        t[i] = id + 1;
    }
    free(b->table);
    b->table = t;
    b->tcap = tcap;
    return 0;
}

int64_t prof_blobs_find(const prof_blobs *b, const void *key, uint32_t len)
{
    if (!b->tcap)
        return -1;
    uint32_t i = (uint32_t)prof_hash(key, len) & (b->tcap - 1);
    while (b->table[i]) {
        uint32_t id = b->table[i] - 1;
        if (b->blen[id] == len && memcmp(b->data + b->off[id], key, len) == 0)
            return id;
        i = (i + 1) & (b->tcap - 1);
    }
    return -1;
}

int prof_blobs_intern(prof_blobs *b, const void *key, uint32_t len, uint32_t *id)
{
    int64_t f = prof_blobs_find(b, key, len);
    if (f >= 0) {
        *id = (uint32_t)f;
        return 0;
    }
    if ((uint64_t)(b->n + 1) * 2 > b->tcap) {
        if (blobs_rehash(b, b->tcap ? b->tcap * 2 : 64) != 0)
            return OBS_ENOMEM;
    }
    if (b->n == b->ncap) {
        uint32_t nc = b->ncap ? b->ncap * 2 : 64;
        size_t *o = realloc(b->off, nc * sizeof *o);
        if (!o)
            return OBS_ENOMEM;
        b->off = o;
        uint32_t *l = realloc(b->blen, nc * sizeof *l);
        if (!l)
            return OBS_ENOMEM;
        b->blen = l;
        b->ncap = nc;
    }
    if (b->len + len + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024;
        while (nc < b->len + len + 1)
            nc *= 2;
        uint8_t *d = realloc(b->data, nc);
        if (!d)
            return OBS_ENOMEM;
        b->data = d;
        b->cap = nc;
    }
    if (len)
        memcpy(b->data + b->len, key, len);
    b->off[b->n] = b->len;
    b->blen[b->n] = len;
    b->len += len;
    uint32_t i = (uint32_t)prof_hash(key, len) & (b->tcap - 1);
    while (b->table[i])
        i = (i + 1) & (b->tcap - 1);
    b->table[i] = b->n + 1;
    *id = b->n++;
    return 0;
}

void prof_blobs_free(prof_blobs *b)
{
    free(b->data);
    free(b->off);
    free(b->blen);
    free(b->table);
    memset(b, 0, sizeof *b);
}

static int buf_reserve(prof_buf *b, size_t extra)
{
    if (b->failed)
        return -1;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < b->len + extra + 1)
        nc *= 2;
    char *p = realloc(b->p, nc);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->p = p;
    b->cap = nc;
    return 0;
}

void prof_buf_put(prof_buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) != 0)
        return;
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = 0;
}

void prof_buf_puts(prof_buf *b, const char *s)
{
    prof_buf_put(b, s, strlen(s));
}

void prof_buf_printf(prof_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) != 0) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void prof_buf_xml(prof_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': prof_buf_puts(b, "&lt;"); break;
        case '>': prof_buf_puts(b, "&gt;"); break;
        case '&': prof_buf_puts(b, "&amp;"); break;
        case '"': prof_buf_puts(b, "&quot;"); break;
        case '\'': prof_buf_puts(b, "&apos;"); break;
        default:
            /* Control characters are not allowed in XML 1.0. */
            if ((unsigned char)*s < 0x20)
                prof_buf_put(b, "?", 1);
            else
                prof_buf_put(b, s, 1);
        }
    }
}

void prof_buf_json(prof_buf *b, const char *s)
{
    prof_buf_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            prof_buf_put(b, e, 2);
        } else if (c < 0x20) {
            prof_buf_printf(b, "\\u%04x", c);
        } else {
            prof_buf_put(b, s, 1);
        }
    }
    prof_buf_put(b, "\"", 1);
}

int prof_buf_finish(prof_buf *b, char **out, size_t *len)
{
    if (!b->failed && buf_reserve(b, 0) != 0)
        b->failed = 1;
    if (b->failed) {
        free(b->p);
        memset(b, 0, sizeof *b);
        return OBS_ENOMEM;
    }
    b->p[b->len] = 0;
    *out = b->p;
    if (len)
        *len = b->len;
    memset(b, 0, sizeof *b);
    return 0;
}

uint64_t prof_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t prof_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void prof_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
