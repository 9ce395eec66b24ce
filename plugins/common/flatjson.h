/*
 * plugins/common/flatjson.h - a small reader for flat JSON objects, shared by
 * xf_iot and xf_logs (private to plugins/).
 *
 * The IoT and log records are one JSON object whose values are numbers,
 * strings, true, false or null - never nested. This reader checks that
 * grammar (RFC 8259 numbers, strings with the standard escapes, no raw
 * control characters, nothing but whitespace around the object) and hands
 * out each pair as spans of the input, in one pass without allocation. A
 * nested value or more pairs than the caller has room for is a schema
 * problem, not a syntax one, and is reported as such. It reads only `len`
 * bytes: records are not NUL terminated.
 */
#ifndef OBS_PLUGINS_FLATJSON_H
#define OBS_PLUGINS_FLATJSON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { FJ_SYNTAX = -1, FJ_SCHEMA = -2 };

typedef struct fj_pair {
    const char *key, *val; /* key without quotes; string values without quotes, escapes raw */
    size_t key_len, val_len;
    char kind; /* 'n' number, 's' string, 't' true, 'f' false, 'z' null */
} fj_pair;

static inline const char *fj_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A string starting after its opening quote; returns the closing quote or NULL. */
static inline const char *fj_string(const char *p, const char *end)
{
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            if (++p >= end)
                return NULL;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (p + i >= end || !strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
                        return NULL;
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
                return NULL;
            }
        }
        p++;
    }
    return NULL;
}

static inline int fj_digit(const char *p, const char *end)
{
    return p < end && *p >= '0' && *p <= '9';
}

/* A number; returns the byte after it or NULL. */
static inline const char *fj_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (!fj_digit(p, end))
        return NULL;
    if (*p == '0')
        p++;
    else
        while (fj_digit(p, end))
            p++;
    if (p < end && *p == '.') {
        if (!fj_digit(++p, end))
            return NULL;
        while (fj_digit(p, end))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!fj_digit(p, end))
            return NULL;
        while (fj_digit(p, end))
            p++;
    }
    return p;
}

/* Parses data[0..len) as a flat object into pairs[0..cap). Returns the
 * number of pairs, FJ_SYNTAX or FJ_SCHEMA (nested value, too many pairs). */
static inline int fj_parse(const uint8_t *data, size_t len, fj_pair *pairs, int cap)
{
    const char *p = (const char *)data, *end = p + len;
    int n = 0, schema = 0;
    p = fj_ws(p, end);
    if (p == end || *p != '{')
        return FJ_SYNTAX;
    p = fj_ws(p + 1, end);
    if (p < end && *p == '}') {
        p = fj_ws(p + 1, end);
        return p == end ? 0 : FJ_SYNTAX;
    }
    for (;;) {
        fj_pair pr;
        if (p == end || *p != '"')
            return FJ_SYNTAX;
        pr.key = p + 1;
        const char *q = fj_string(pr.key, end);
        if (!q)
            return FJ_SYNTAX;
        pr.key_len = (size_t)(q - pr.key);
        p = fj_ws(q + 1, end);
        if (p == end || *p != ':')
            return FJ_SYNTAX;
        p = fj_ws(p + 1, end);
        if (p == end)
            return FJ_SYNTAX;
        pr.val = p;
        if (*p == '"') {
            pr.val = p + 1;
            q = fj_string(pr.val, end);
            if (!q)
                return FJ_SYNTAX;
            pr.val_len = (size_t)(q - pr.val);
            pr.kind = 's';
            p = q + 1;
        } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
            q = fj_number(p, end);
            if (!q)
                return FJ_SYNTAX;
            pr.val_len = (size_t)(q - p);
            pr.kind = 'n';
            p = q;
        } else if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
            pr.kind = 't', pr.val_len = 4, p += 4;
        } else if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
            pr.kind = 'f', pr.val_len = 5, p += 5;
        } else if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
            pr.kind = 'z', pr.val_len = 4, p += 4;
        } else if (*p == '{' || *p == '[') {
            return FJ_SCHEMA; /* nested: not one of our records */
        } else {
            return FJ_SYNTAX;
        }
        if (n < cap)
            pairs[n++] = pr;
        else
            schema = 1;
        p = fj_ws(p, end);
        if (p < end && *p == ',') {
            p = fj_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') {
            p = fj_ws(p + 1, end);
            if (p != end)
                return FJ_SYNTAX;
            return schema ? FJ_SCHEMA : n;
        }
        return FJ_SYNTAX;
    }
}

static inline int fj_key_is(const fj_pair *p, const char *key)
{
    size_t n = strlen(key);
    return p->key_len == n && memcmp(p->key, key, n) == 0;
}

/* A number with at most `decimals` fraction digits and no exponent, scaled
 * by 10^decimals, within int64 ("21.5" with 2 decimals: 2150). Returns 0 or
 * -1. */
static inline int fj_fixed(const fj_pair *p, int decimals, int64_t *out)
{
    const char *s = p->val, *end = s + p->val_len;
    int neg = 0, frac = -1;
    uint64_t v = 0;
    if (p->kind != 'n')
        return -1;
    if (s < end && *s == '-')
        neg = 1, s++;
    for (; s < end; s++) {
        if (*s == '.') {
            frac = 0;
            continue;
        }
        if (*s < '0' || *s > '9')
            return -1; /* exponent */
        if (frac >= 0 && ++frac > decimals)
            return -1;
        if (v > (UINT64_MAX / 10 - 9))
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    for (int f = frac < 0 ? 0 : frac; f < decimals; f++) {
        if (v > UINT64_MAX / 10)
            return -1;
        v *= 10;
    }
    if (v > (uint64_t)INT64_MAX)
        return -1;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

#endif /* OBS_PLUGINS_FLATJSON_H */
