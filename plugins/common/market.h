/*
 * plugins/common/market.h - the market-data record formats shared by the
 * market plugins (private to plugins/; the layouts are documented for users in
 * docs/plugins.md).
 *
 * gen_market emits ticks as JSON text. The two JSON transforms, xf_json_jansson
 * (library based) and xf_json_fast (hand written), must agree on every input,
 * so everything that decides whether a tick is valid and what it becomes is
 * defined once, here: the binary tick record both emit, the window record
 * xf_window emits, the symbol alphabet, and the conversion of prices to
 * fixed point. The records are little-endian with fixed-width fields and no
 * implicit padding; explicit padding is always zero, so equal ticks are equal
 * bytes. Both record kinds keep the event time at offset 0, the symbol at
 * offset 32 and the kind byte at offset 40, so a consumer (sink_rocksdb,
 * obs-dbread) can recognise them without knowing which stage wrote them.
 */
#ifndef OBS_PLUGINS_MARKET_H
#define OBS_PLUGINS_MARKET_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "market records are stored in host order, which must be little-endian"
#endif

/* Kind byte at offset 40. */
enum { MARKET_TRADE = 1, MARKET_QUOTE = 2, MARKET_WINDOW = 3 };

/* Longest symbol; shorter ones are zero padded. */
#define MARKET_SYM_MAX 8
/* Largest price, in units of 1e-4 (a price of 1e9). Small enough that a
 * double holds every valid price with 4 decimals with room to spare, which
 * is what makes the two JSON parsers agree (see market_price_from_double). */
#define MARKET_PX_MAX_E4 INT64_C(10000000000000)
#define MARKET_PX_MAX_INT INT64_C(1000000000)

/* The binary tick: what both JSON transforms emit for a valid tick. */
typedef struct market_tick {
    uint64_t ts_ns;   /* 0: event time, the JSON "ts" */
    int64_t px_e4;    /* 8: trade price, or quote bid, times 1e4 */
    int64_t ask_e4;   /* 16: quote ask times 1e4; 0 for a trade */
    uint32_t qty;     /* 24: trade quantity, or quote bid size */
    uint32_t ask_qty; /* 28: quote ask size; 0 for a trade */
    char sym[8];      /* 32: symbol, zero padded */
    uint8_t type;     /* 40: MARKET_TRADE or MARKET_QUOTE */
    uint8_t side;     /* 41: 'B' or 'S' for a trade; 0 for a quote */
    uint8_t pad[6];   /* 42: zero */
} market_tick;
#define MARKET_TICK_LEN 48
_Static_assert(sizeof(market_tick) == MARKET_TICK_LEN, "tick layout");
_Static_assert(offsetof(market_tick, sym) == 32 && offsetof(market_tick, type) == 40, "tick layout");

/* One sliding window of one symbol, emitted by xf_window. */
typedef struct market_window {
    uint64_t end_ns;    /* 0: window end (exclusive), event time */
    int64_t vwap_e4;    /* 8: volume weighted trade price; 0 without trade volume */
    int64_t min_e4;     /* 16: lowest tick price (trade price or quote mid) */
    int64_t max_e4;     /* 24: highest tick price */
    char sym[8];        /* 32: symbol, zero padded */
    uint8_t type;       /* 40: MARKET_WINDOW */
    uint8_t pad[3];     /* 41: zero */
    uint32_t window_ms; /* 44: window length; the window is [end - window, end) */
    uint32_t n_trades;  /* 48 */
    uint32_t n_quotes;  /* 52 */
    uint64_t volume;    /* 56: sum of trade quantities */
} market_window;
#define MARKET_WINDOW_LEN 64
_Static_assert(sizeof(market_window) == MARKET_WINDOW_LEN, "window layout");
_Static_assert(offsetof(market_window, sym) == 32 && offsetof(market_window, type) == 40,
               "window layout");

/* Returns the kind of a record in one of the layouts above (MARKET_TRADE,
 * MARKET_QUOTE or MARKET_WINDOW), or 0 when its length and kind byte do not
 * match any. */
static inline int market_record_kind(const uint8_t *data, uint32_t len)
{
    if (len == MARKET_TICK_LEN && (data[40] == MARKET_TRADE || data[40] == MARKET_QUOTE))
        return data[40];
    if (len == MARKET_WINDOW_LEN && data[40] == MARKET_WINDOW)
        return MARKET_WINDOW;
    return 0;
}

/* Reads a little-endian u64 from an unaligned pointer. */
static inline uint64_t market_load_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Symbols are 1..8 characters from this alphabet. */
static inline int market_sym_char_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

/* Checks a decoded symbol of `len` bytes; returns 1 if valid. */
static inline int market_sym_ok(const char *s, size_t len)
{
    if (len < 1 || len > MARKET_SYM_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!market_sym_char_ok((unsigned char)s[i]))
            return 0;
    return 1;
}

/*
 * Converts a JSON integer price to fixed point. Returns 0 and sets *e4, or -1
 * when the price is not in [1, MARKET_PX_MAX_INT].
 */
static inline int market_price_from_int(int64_t v, int64_t *e4)
{
    if (v < 1 || v > MARKET_PX_MAX_INT)
        return -1;
    *e4 = v * 10000;
    return 0;
}

/*
 * Converts a JSON real price, as the correctly rounded double `d` of its
 * text, to fixed point. This is THE definition of a valid real price, shared
 * by both JSON transforms: x = d * 1e4 rounded to the nearest integer r must
 * lie in [1, MARKET_PX_MAX_E4], and x must be within r * 2^-50 of r.
 *
 * Why this tolerance: for a text with at most 4 fractional digits, value
 * k / 1e4 with k < 2^51, d and the product each add at most one rounding of
 * relative size 2^-53, so |x - k| <= k * 2^-52: the check accepts it with r =
 * k, a quarter of the tolerance. Digits beyond the fourth decimal move x
 * away from an integer by their value times 1e4; that is rejected unless it
 * is below r * 2^-50, i.e. unless those digits sit around the 15th
 * significant digit or further, where the double cannot tell them apart
 * anyway ("1.00001" is rejected, "1.0000000000000000001" is 1.0000). The
 * fast parser accepts
 * texts with at most 4 decimals and at most 15 digits without calling this
 * (provably the same answer) and calls it with strtod's result otherwise.
 * Returns 0 and sets *e4, or -1.
 */
static inline int market_price_from_double(double d, int64_t *e4)
{
    double x = d * 10000.0;
    /* Written so that NaN fails too; the bounds keep r within int64. */
    if (!(x >= 0.5 && x < (double)MARKET_PX_MAX_E4 + 0.5))
        return -1;
    double r = nearbyint(x);
    if (fabs(x - r) > ldexp(r, -50))
        return -1;
    *e4 = (int64_t)r;
    return 0;
}

/* Outcome of parsing one JSON tick; the transforms count the last two on
 * the error counters "parse_error" and "schema_error". */
enum { MARKET_OK = 0, MARKET_PARSE_ERROR = 1, MARKET_SCHEMA_ERROR = 2 };

#endif /* OBS_PLUGINS_MARKET_H */
