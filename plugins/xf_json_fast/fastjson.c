/*
 * plugins/xf_json_fast/fastjson.c - single-pass, zero-copy JSON tick parser.
 *
 * The parser walks the record once, left to right, and never builds a tree.
 * Members of the top-level object are dispatched on their (decoded) key: the
 * ten keys of the tick schema are parsed into fixed slots, and every other
 * value is skipped by a generic validator. The schema is checked only at the
 * end, because jansson (which xf_json_jansson uses and this parser must agree
 * with) first parses the whole text and only then is the schema applied: a
 * syntax error anywhere wins over a schema error anywhere, and a repeated key
 * keeps its last value.
 *
 * Agreement with jansson 2.14 (json_loadb, flags 0) covers its corner cases
 * too, all of which make a record a parse error unless said otherwise:
 * strict RFC 8259 grammar (no leading zeros, no trailing commas, whitespace
 * only space/tab/CR/LF); UTF-8 validated like jansson's utf8_check_full
 * (no overlongs, no surrogates, nothing above U+10FFFF); escapes limited to the
 * RFC set, \u surrogates correctly paired; \u0000 refused in keys and values;
 * integers beyond int64 and reals whose strtod overflows to infinity refused
 * (underflow is fine); values nested deeper than 2048 refused (a value inside
 * 2047 containers is still fine); and one quirk kept on purpose: jansson
 * reads one byte past a number or a literal and pushes it back, and a pushed
 * back NUL byte is lost, so a single NUL byte right after a number or
 * true/false/null is ignored.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fastjson.h"

/* jansson's JSON_PARSER_MAX_DEPTH: depth counts the value itself plus the
 * containers around it. */
#define FJ_MAX_DEPTH 2048

/* Internal results besides 0: a syntax error, or scratch allocation failed. */
#define FJ_FAIL (-1)
#define FJ_NOMEM (-2)

/* The keys of the schema (union of trade and quote keys). */
enum { K_TYPE, K_SYM, K_TS, K_PX, K_QTY, K_SIDE, K_BID, K_ASK, K_BSZ, K_ASZ, K_N, K_UNKNOWN };
#define KEYBIT(k) (1u << (k))
#define TRADE_KEYS                                                                                 \
    (KEYBIT(K_TYPE) | KEYBIT(K_SYM) | KEYBIT(K_TS) | KEYBIT(K_PX) | KEYBIT(K_QTY) | KEYBIT(K_SIDE))
#define QUOTE_KEYS                                                                                 \
    (KEYBIT(K_TYPE) | KEYBIT(K_SYM) | KEYBIT(K_TS) | KEYBIT(K_BID) | KEYBIT(K_ASK) |                \
     KEYBIT(K_BSZ) | KEYBIT(K_ASZ))

/* What one parse has seen so far. A key seen with an acceptable value is in
 * `ok`; a key seen with any other value is in `present` only. A later
 * occurrence of the same key overwrites both (last one wins). */
typedef struct fields {
    uint32_t present, ok;
    int unknown; /* a key outside the schema was seen */
    int type;    /* MARKET_TRADE or MARKET_QUOTE when ok */
    uint8_t side;
    uint8_t sym_len;
    char sym[MARKET_SYM_MAX];
    uint64_t ts;
    int64_t px, bid, ask;
    uint32_t qty, bsz, asz;
} fields;

/* A scanned number token. */
typedef struct num {
    const uint8_t *start;
    size_t len;
    const uint8_t *int_digits; /* after the sign */
    size_t n_int, n_frac;      /* digit counts; the fraction follows int + '.' */
    int neg, has_exp, is_int;  /* is_int: no fraction and no exponent */
    uint64_t mant;             /* the digits as an integer (if <= 19 of them) */
    int64_t ival;              /* value of an integer token */
} num;

typedef struct cursor {
    const uint8_t *p, *end;
    fastjson *fp;
} cursor;

/* Character classes, one table lookup per byte on the hot loops. C_PLAIN:
 * a string byte that stands for itself (ASCII from 0x20, except '"' and
 * '\\'); C_WS: JSON whitespace; C_DIGIT: 0-9. */
enum { C_PLAIN = 1, C_WS = 2, C_DIGIT = 4 };
#define R4(x) x, x, x, x
#define R16(x) R4(x), R4(x), R4(x), R4(x)
static const uint8_t char_class[256] = {
    /* 0x00 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, C_WS, C_WS, 0, 0, C_WS, 0, 0,
    /* 0x10 */ R16(0),
    /* 0x20 */ C_PLAIN | C_WS, C_PLAIN, 0 /* '"' */, C_PLAIN, R4(C_PLAIN), R4(C_PLAIN), R4(C_PLAIN),
    /* 0x30 */ R4(C_PLAIN | C_DIGIT), R4(C_PLAIN | C_DIGIT), C_PLAIN | C_DIGIT,
    C_PLAIN | C_DIGIT, C_PLAIN, C_PLAIN, R4(C_PLAIN),
    /* 0x40 */ R16(C_PLAIN),
    /* 0x50 */ R4(C_PLAIN), R4(C_PLAIN), R4(C_PLAIN), 0 /* '\\' */, C_PLAIN, C_PLAIN, C_PLAIN,
    /* 0x60 */ R16(C_PLAIN),
    /* 0x70 */ R16(C_PLAIN),
    /* 0x80 */ R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0),
};

static inline int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static inline int is_alpha(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline void skip_ws(cursor *c)
{
    const uint8_t *p = c->p, *end = c->end;
    while (p < end && (char_class[*p] & C_WS))
        p++;
    c->p = p;
}

/* Reads 4 hex digits at p (caller checked they exist). -1 if not hex. */
static int32_t hex4(const uint8_t *p)
{
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* Stores the UTF-8 encoding of cp at dst[n..] as far as cap allows and
 * returns its length. */
static size_t put_utf8(char *dst, size_t cap, size_t n, uint32_t cp)
{
    uint8_t b[4];
    size_t len;
    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        len = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | (cp >> 6));
        b[1] = (uint8_t)(0x80 | (cp & 0x3F));
        len = 2;
    } else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | (cp >> 12));
        b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F));
        len = 3;
    } else {
        b[0] = (uint8_t)(0xF0 | (cp >> 18));
        b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (uint8_t)(0x80 | (cp & 0x3F));
        len = 4;
    }
    for (size_t i = 0; i < len && n + i < cap; i++)
        dst[n + i] = (char)b[i];
    return len;
}

/* Length of the UTF-8 sequence starting with byte c >= 0x80, 0 if c cannot
 * start one (continuation byte, C0/C1, F5..FF), as jansson's utf8_check_first. */
static size_t utf8_len(uint8_t c)
{
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 0;
}

/* Validates a multi-byte sequence of n bytes at p as jansson's
 * utf8_check_full: continuation bytes, range, surrogates, overlongs. */
static int utf8_ok(const uint8_t *p, size_t n)
{
    uint32_t v = p[0] & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
    for (size_t i = 1; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    if ((n == 2 && v < 0x80) || (n == 3 && v < 0x800) || (n == 4 && v < 0x10000))
        return 0;
    return 1;
}

/*
 * Scans the string starting at the opening quote under the cursor. Its
 * decoded bytes are stored at dst as far as cap allows (cap may be 0) and its
 * decoded length goes to *len. Returns 0 or FJ_FAIL.
 */
static int scan_string(cursor *c, char *dst, size_t cap, size_t *len)
{
    const uint8_t *p = c->p + 1, *end = c->end;
    size_t n = 0;
    for (;;) {
        if (p >= end)
            return FJ_FAIL;
        uint8_t ch = *p;
        if (ch == '"')
            break;
        if (char_class[ch] & C_PLAIN) {
            /* A run of plain ASCII: find its end, copy what fits. */
            const uint8_t *run = p;
            while (++p < end && (char_class[*p] & C_PLAIN))
                ;
            size_t k = (size_t)(p - run);
            for (size_t i = 0; i < k && n + i < cap; i++) /* cap is tiny */
                dst[n + i] = (char)run[i];
            n += k;
            continue;
        }
        if (ch < 0x20)
            return FJ_FAIL; /* control characters, raw NUL included */
        if (ch >= 0x80) {
            size_t k = utf8_len(ch);
            if (k == 0 || (size_t)(end - p) < k || !utf8_ok(p, k))
                return FJ_FAIL;
            for (size_t i = 0; i < k; i++, n++)
                if (n < cap)
                    dst[n] = (char)p[i];
            p += k;
            continue;
        }
        /* An escape. */
        if (end - p < 2)
            return FJ_FAIL;
        uint32_t cp;
        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
            cp = p[1];
            break;
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u': {
            if (end - p < 6)
                return FJ_FAIL;
            int32_t v = hex4(p + 2);
            if (v < 0)
                return FJ_FAIL;
            if (v >= 0xD800 && v <= 0xDBFF) {
                /* A high surrogate must be followed by an escaped low one. */
                if (end - p < 12 || p[6] != '\\' || p[7] != 'u')
                    return FJ_FAIL;
                int32_t lo = hex4(p + 8);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return FJ_FAIL;
                v = ((v - 0xD800) << 10) + (lo - 0xDC00) + 0x10000;
                p += 6;
            } else if (v >= 0xDC00 && v <= 0xDFFF) {
                return FJ_FAIL;
            }
            if (v == 0)
                return FJ_FAIL; /* jansson refuses NUL in keys and values */
            cp = (uint32_t)v;
            p += 4; /* the hex digits; the 2 of "\u" follow below */
            break;
        }
        default:
            return FJ_FAIL;
        }
        n += put_utf8(dst, cap, n, cp);
        p += 2;
    }
    c->p = p + 1;
    *len = n;
    return 0;
}

/* jansson reads one byte past a number or literal and pushes it back; a
 * pushed-back NUL is lost (its stream buffer treats NUL as "empty"). */
static inline void skip_lost_nul(cursor *c)
{
    if (c->p < c->end && *c->p == 0)
        c->p++;
}

/* Scans a number token under the cursor (at '-' or a digit) into *n, in
 * one pass that also accumulates the digits. Integer tokens are range
 * checked as strtoll would (out of int64: FJ_FAIL); real tokens are not
 * checked here (see real_value). */
static int scan_number(cursor *c, num *n)
{
    const uint8_t *p = c->p, *end = c->end;
    uint64_t mant = 0; /* int and fraction digits; exact while <= 19 of them */
    n->start = p;
    n->neg = 0;
    if (*p == '-') {
        n->neg = 1;
        p++;
    }
    n->int_digits = p;
    if (p >= end)
        return FJ_FAIL;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return FJ_FAIL; /* leading zero */
    } else if (is_digit(*p)) {
        do
            mant = mant * 10 + (uint64_t)(*p++ - '0');
        while (p < end && is_digit(*p));
    } else {
        return FJ_FAIL;
    }
    n->n_int = (size_t)(p - n->int_digits);
    n->n_frac = 0;
    n->has_exp = 0;
    int has_dot = 0;
    if (p < end && *p == '.') {
        const uint8_t *f = ++p;
        while (p < end && is_digit(*p))
            mant = mant * 10 + (uint64_t)(*p++ - '0');
        n->n_frac = (size_t)(p - f);
        if (n->n_frac == 0)
            return FJ_FAIL;
        has_dot = 1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const uint8_t *e = p;
        while (p < end && is_digit(*p))
            p++;
        if (p == e)
            return FJ_FAIL;
        n->has_exp = 1;
    }
    n->len = (size_t)(p - n->start);
    n->mant = mant;
    n->is_int = !has_dot && !n->has_exp;
    if (n->is_int) {
        /* No leading zeros, so 20 or more digits are always >= 1e19. */
        if (n->n_int > 19 || mant > (uint64_t)INT64_MAX + n->neg)
            return FJ_FAIL;
        n->ival = n->neg ? (int64_t)(0 - mant) : (int64_t)mant;
    }
    c->p = p;
    skip_lost_nul(c);
    return 0;
}

/*
 * Converts a real token with strtod, exactly as jansson does (strtod in the
 * "C" locale; an overflow to +-HUGE_VAL with ERANGE is a parse error,
 * underflow is not). The token is copied to the scratch buffer because the
 * record is not NUL terminated. Returns 0, FJ_FAIL or FJ_NOMEM.
 */
static int real_value(cursor *c, const num *n, double *out)
{
    fastjson *fp = c->fp;
    if (n->len + 1 > fp->scratch_cap) {
        size_t cap = fp->scratch_cap ? fp->scratch_cap : 64;
        while (cap < n->len + 1)
            cap *= 2;
        char *s = fp->host->realloc(fp->host, fp->scratch, cap);
        if (!s)
            return FJ_NOMEM;
        fp->scratch = s;
        fp->scratch_cap = cap;
    }
    memcpy(fp->scratch, n->start, n->len);
    fp->scratch[n->len] = '\0';
    errno = 0;
    double d = strtod_l(fp->scratch, NULL, fp->c_locale);
    if ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE)
        return FJ_FAIL;
    *out = d;
    return 0;
}

/* Checks that a real token does not overflow; cheap when it obviously
 * cannot (no exponent and fewer than 300 digits). */
static int real_check(cursor *c, const num *n)
{
    double d;
    if (!n->has_exp && n->len < 300)
        return 0;
    return real_value(c, n, &d);
}

/*
 * Converts a real price token. Returns 0 with *ok set to whether it is a
 * valid price (and *e4 its value), or FJ_FAIL / FJ_NOMEM. The fast path takes
 * positive texts without exponent, with at most 4 decimals and 15 digits:
 * their value k / 1e4 is exact in an int64 and market_price_from_double would
 * accept exactly k (see market.h), so strtod is not needed.
 */
static int price_real(cursor *c, const num *n, int *ok, int64_t *e4)
{
    if (!n->neg && !n->has_exp && n->n_frac <= 4 && n->n_int + n->n_frac <= 15) {
        static const int64_t scale[5] = {10000, 1000, 100, 10, 1};
        int64_t k = (int64_t)n->mant * scale[n->n_frac];
        *ok = k >= 1 && k <= MARKET_PX_MAX_E4;
        *e4 = k;
        return 0;
    }
    double d;
    int rc = real_value(c, n, &d);
    if (rc != 0)
        return rc;
    *ok = market_price_from_double(d, e4) == 0;
    return 0;
}

/* Scans true, false or null. jansson reads a whole run of letters, so
 * "truex" is one invalid word, not true followed by garbage. */
static int scan_literal(cursor *c)
{
    const uint8_t *p = c->p, *s = p;
    while (p < c->end && is_alpha(*p))
        p++;
    size_t n = (size_t)(p - s);
    if (!((n == 4 && memcmp(s, "true", 4) == 0) || (n == 5 && memcmp(s, "false", 5) == 0) ||
          (n == 4 && memcmp(s, "null", 4) == 0)))
        return FJ_FAIL;
    c->p = p;
    skip_lost_nul(c);
    return 0;
}

/*
 * Validates and skips any JSON value under the cursor. `depth` is the
 * depth of the container holding it (the value itself is at depth + 1).
 * Nested containers are tracked in a bit stack rather than by recursion, so
 * the C stack stays small whatever the input. Returns 0, FJ_FAIL or FJ_NOMEM.
 */
static int skip_value(cursor *c, unsigned depth)
{
    uint64_t is_object[FJ_MAX_DEPTH / 64 + 1]; /* bit per open container */
    unsigned top = 0;                            /* containers opened here */
    size_t len;
    num n;
    int rc;

value:
    if (depth + top + 1 > FJ_MAX_DEPTH || c->p >= c->end)
        return FJ_FAIL;
    switch (*c->p) {
    case '{':
    case '[': {
        int obj = *c->p == '{';
        if (obj)
            is_object[top / 64] |= UINT64_C(1) << (top % 64);
        else
            is_object[top / 64] &= ~(UINT64_C(1) << (top % 64));
        top++;
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == (obj ? '}' : ']')) {
            c->p++;
            top--;
            goto after;
        }
        if (obj)
            goto member;
        goto value;
    }
    case '"':
        if (scan_string(c, NULL, 0, &len) != 0)
            return FJ_FAIL;
        goto after;
    case '-':
    case '0' ... '9':
        if (scan_number(c, &n) != 0)
            return FJ_FAIL;
        if (!n.is_int && (rc = real_check(c, &n)) != 0)
            return rc;
        goto after;
    default:
        if (!is_alpha(*c->p) || scan_literal(c) != 0)
            return FJ_FAIL;
        goto after;
    }

member: /* at the key of an object member */
    if (c->p >= c->end || *c->p != '"' || scan_string(c, NULL, 0, &len) != 0)
        return FJ_FAIL;
    skip_ws(c);
    if (c->p >= c->end || *c->p != ':')
        return FJ_FAIL;
    c->p++;
    skip_ws(c);
    goto value;

after: /* a value is complete */
    if (top == 0)
        return 0;
    skip_ws(c);
    if (c->p >= c->end)
        return FJ_FAIL;
    {
        int obj = (is_object[(top - 1) / 64] >> ((top - 1) % 64)) & 1;
        if (*c->p == ',') {
            c->p++;
            skip_ws(c);
            if (obj)
                goto member;
            goto value;
        }
        if (*c->p == (obj ? '}' : ']')) {
            c->p++;
            top--;
            goto after;
        }
    }
    return FJ_FAIL;
}

/* Maps a decoded key to its K_* id (K_UNKNOWN if not in the schema). Only
 * the first 4 bytes are in k; n is the full length. */
static inline int key_id(const char *k, size_t n)
{
    switch (n) {
    case 2:
        if (k[0] == 't' && k[1] == 's')
            return K_TS;
        if (k[0] == 'p' && k[1] == 'x')
            return K_PX;
        break;
    case 3:
        if (memcmp(k, "sym", 3) == 0)
            return K_SYM;
        if (memcmp(k, "qty", 3) == 0)
            return K_QTY;
        if (memcmp(k, "bid", 3) == 0)
            return K_BID;
        if (memcmp(k, "ask", 3) == 0)
            return K_ASK;
        if (memcmp(k, "bsz", 3) == 0)
            return K_BSZ;
        if (memcmp(k, "asz", 3) == 0)
            return K_ASZ;
        break;
    case 4:
        if (memcmp(k, "type", 4) == 0)
            return K_TYPE;
        if (memcmp(k, "side", 4) == 0)
            return K_SIDE;
        break;
    }
    return K_UNKNOWN;
}

/* Parses the value of schema key `id` (cursor at its first byte) into
 * *fl. A value of the wrong JSON type is still validated, then marked not
 * ok. Returns 0, FJ_FAIL or FJ_NOMEM. */
static int parse_member(cursor *c, int id, fields *fl)
{
    uint8_t ch = *c->p;
    int ok = 0, rc;
    num n;

    if (id == K_UNKNOWN) {
        fl->unknown = 1;
        return skip_value(c, 1);
    }
    fl->present |= KEYBIT(id);

    switch (id) {
    case K_TYPE:
    case K_SYM:
    case K_SIDE:
        if (ch != '"')
            break;
        char buf[MARKET_SYM_MAX];
        size_t len;
        if (scan_string(c, buf, sizeof buf, &len) != 0)
            return FJ_FAIL;
        if (id == K_TYPE) {
            if (len == 5 && memcmp(buf, "trade", 5) == 0)
                fl->type = MARKET_TRADE, ok = 1;
            else if (len == 5 && memcmp(buf, "quote", 5) == 0)
                fl->type = MARKET_QUOTE, ok = 1;
        } else if (id == K_SYM) {
            if (market_sym_ok(buf, len)) {
                memcpy(fl->sym, buf, len);
                fl->sym_len = (uint8_t)len;
                ok = 1;
            }
        } else if (len == 1 && (buf[0] == 'B' || buf[0] == 'S')) {
            fl->side = (uint8_t)buf[0];
            ok = 1;
        }
        goto done;

    case K_TS:
    case K_QTY:
    case K_BSZ:
    case K_ASZ:
        if (ch != '-' && !is_digit(ch))
            break;
        if (scan_number(c, &n) != 0)
            return FJ_FAIL;
        if (!n.is_int) {
            if ((rc = real_check(c, &n)) != 0)
                return rc;
            goto done; /* a real where an integer is required */
        }
        if (id == K_TS) {
            ok = n.ival >= 0;
            fl->ts = (uint64_t)n.ival;
        } else {
            ok = n.ival >= 0 && n.ival <= UINT32_MAX;
            uint32_t v = (uint32_t)n.ival;
            if (id == K_QTY)
                fl->qty = v;
            else if (id == K_BSZ)
                fl->bsz = v;
            else
                fl->asz = v;
        }
        goto done;

    case K_PX:
    case K_BID:
    case K_ASK: {
        if (ch != '-' && !is_digit(ch))
            break;
        if (scan_number(c, &n) != 0)
            return FJ_FAIL;
        int64_t e4 = 0;
        if (n.is_int)
            ok = market_price_from_int(n.ival, &e4) == 0;
        else if ((rc = price_real(c, &n, &ok, &e4)) != 0)
            return rc;
        if (id == K_PX)
            fl->px = e4;
        else if (id == K_BID)
            fl->bid = e4;
        else
            fl->ask = e4;
        goto done;
    }
    }
    /* Wrong JSON type for this key: validate and skip the value. */
    if ((rc = skip_value(c, 1)) != 0)
        return rc;
done:
    if (ok)
        fl->ok |= KEYBIT(id);
    else
        fl->ok &= ~KEYBIT(id);
    return 0;
}

/* Applies the schema to what the parse collected (the same rules as
 * xf_json_jansson's tick_from_json) and fills *t. */
static int check_fields(const fields *fl, market_tick *t)
{
    if (!(fl->ok & KEYBIT(K_TYPE)) || fl->unknown)
        return MARKET_SCHEMA_ERROR;
    uint32_t want = fl->type == MARKET_TRADE ? TRADE_KEYS : QUOTE_KEYS;
    if (fl->present != want || fl->ok != want)
        return MARKET_SCHEMA_ERROR;

    memset(t, 0, sizeof *t);
    t->ts_ns = fl->ts;
    memcpy(t->sym, fl->sym, fl->sym_len);
    t->type = (uint8_t)fl->type;
    if (fl->type == MARKET_TRADE) {
        t->px_e4 = fl->px;
        t->qty = fl->qty;
        t->side = fl->side;
    } else {
        t->px_e4 = fl->bid;
        t->ask_e4 = fl->ask;
        t->qty = fl->bsz;
        t->ask_qty = fl->asz;
    }
    return MARKET_OK;
}

static int map_rc(int rc)
{
    return rc == FJ_NOMEM ? OBS_ENOMEM : MARKET_PARSE_ERROR;
}

int fastjson_parse_tick(fastjson *fp, const uint8_t *data, size_t len, market_tick *t)
{
    if (!data) /* an empty record may have no storage at all */
        data = (const uint8_t *)"";
    cursor c = {.p = data, .end = data + len, .fp = fp};
    fields fl;
    int rc;
    fl.present = fl.ok = 0;
    fl.unknown = 0;
    fl.type = 0;
    fl.sym_len = 0;

    skip_ws(&c);
    if (c.p >= c.end)
        return MARKET_PARSE_ERROR;
    if (*c.p == '[') {
        /* Valid JSON (jansson accepts an array at top level), never a tick. */
        if ((rc = skip_value(&c, 0)) != 0)
            return map_rc(rc);
        skip_ws(&c);
        return c.p == c.end ? MARKET_SCHEMA_ERROR : MARKET_PARSE_ERROR;
    }
    if (*c.p != '{')
        return MARKET_PARSE_ERROR;
    c.p++;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
    } else {
        for (;;) {
            if (c.p >= c.end || *c.p != '"')
                return MARKET_PARSE_ERROR;
            /* Fast path: a key of at most 4 plain bytes is matched in place;
             * anything else (escapes, long keys) is decoded by scan_string. */
            const uint8_t *k = c.p + 1;
            size_t lim = (size_t)(c.end - k) < 5 ? (size_t)(c.end - k) : 5, klen = 0;
            while (klen < lim && (char_class[k[klen]] & C_PLAIN))
                klen++;
            int id;
            if (klen < lim && k[klen] == '"') {
                id = key_id((const char *)k, klen);
                c.p = k + klen + 1;
            } else {
                char key[4];
                if (scan_string(&c, key, sizeof key, &klen) != 0)
                    return MARKET_PARSE_ERROR;
                id = key_id(key, klen);
            }
            skip_ws(&c);
            if (c.p >= c.end || *c.p != ':')
                return MARKET_PARSE_ERROR;
            c.p++;
            skip_ws(&c);
            if (c.p >= c.end)
                return MARKET_PARSE_ERROR;
            if ((rc = parse_member(&c, id, &fl)) != 0)
                return map_rc(rc);
            skip_ws(&c);
            if (c.p >= c.end)
                return MARKET_PARSE_ERROR;
            if (*c.p == ',') {
                c.p++;
                skip_ws(&c);
                continue;
            }
            if (*c.p == '}') {
                c.p++;
                break;
            }
            return MARKET_PARSE_ERROR;
        }
    }
    skip_ws(&c);
    if (c.p != c.end)
        return MARKET_PARSE_ERROR; /* jansson's end-of-input check */
    return check_fields(&fl, t);
}

int fastjson_init(fastjson *fp, const obs_host *host)
{
    memset(fp, 0, sizeof *fp);
    fp->host = host;
    fp->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    return fp->c_locale ? OBS_OK : OBS_ENOMEM;
}

void fastjson_fini(fastjson *fp)
{
    if (fp->scratch)
        fp->host->free(fp->host, fp->scratch);
    if (fp->c_locale)
        freelocale(fp->c_locale);
    fp->scratch = NULL;
    fp->c_locale = (locale_t)0;
}
