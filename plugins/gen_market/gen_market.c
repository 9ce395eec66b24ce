/*
 * gen_market - generator of seeded market ticks as JSON text (or binary ticks,
 * or msgpack maps).
 *
 * Each record is one JSON object, no newline: a trade
 *   {"type":"trade","sym":"AAPL","ts":1000,"px":123.4500,"qty":100,"side":"B"}
 * or a quote
 *   {"type":"quote","sym":"AAPL","ts":1000,"bid":123.4500,"ask":123.4600,"bsz":300,"asz":500}
 * with "ts" the record's intended send time. This is the input of the two JSON
 * transforms (xf_json_jansson and xf_json_fast), so it is the stream on which
 * they are compared; it must therefore never be the bottleneck itself.
 *
 * Everything random comes from one xoshiro256** stream seeded with
 * host->seed, consumed in a fixed order per record, so the same seed and the
 * same requests give byte-identical output regardless of batch boundaries.
 * Symbols are drawn from a Zipf distribution through a CDF table built at
 * init (binary search per record). Prices are per-symbol random walks kept as
 * fixed-point int64 (units of 1e-4) and printed by hand with exactly four
 * decimals: no floating point and no snprintf on the data path, and no
 * allocation after init.
 *
 * News (off by default): with news_rate > 0, news events arrive as a
 * Poisson process in intended time, counted from the first record's
 * intended time; each lasts news_ms and concerns one of the ten most
 * popular symbols. During it, news_share of the ticks are for that symbol,
 * half of those that would be quotes become trades, and its price moves
 * news_volatility times as far per tick. News decisions use a second PRNG
 * stream, so the main stream is consumed exactly as without news and the
 * default output stays byte for byte what it always was. The rate of
 * records is the host's business: lay bursts over the load (docs/load.md)
 * to make the stream itself denser around the news.
 *
 * format=binary emits the 48-byte market_tick (market.h) that the JSON
 * transforms produce, for pipelines that skip parsing (e.g. into xf_window).
 * format=msgpack emits the JSON tick's fields as a msgpack map, same keys in
 * the same order: prices float 64 (the fixed-point value / 10^4, an exact
 * IEEE division, so the bytes stay deterministic), ts and sizes unsigned
 * integers, type, sym and side strings. No transform reads it yet.
 */
#include <math.h>
#include <stdbool.h>

#include <observatory/stage.h>

#include "fmt.h"
#include "market.h"
#include "mpk.h"
#include "rng.h"

/* Longest record: a quote with 8-letter symbol and maximal numbers is ~140
 * bytes; reserve generously so formatting needs no bound checks. */
#define TICK_MAX_LEN 192
#define PX_FLOOR_E4 10000 /* prices walk above 1.0000 */

enum { FMT_JSON = 0, FMT_BINARY = 1, FMT_MSGPACK = 2 };

static const obs_param_desc gen_market_params[] = {
    {.name = "symbols", .type = OBS_PARAM_INT, .default_value = "500", .min = 1, .max = 100000,
     .help = "number of distinct symbols (names of 1 to 8 uppercase letters, derived from the seed)"},
    {.name = "zipf_s", .type = OBS_PARAM_DOUBLE, .default_value = "1.1", .min = 0, .max = 10,
     .help = "Zipf exponent of symbol popularity (0: uniform; larger: more skewed)"},
    {.name = "trade_ratio", .type = OBS_PARAM_DOUBLE, .default_value = "0.3", .min = 0, .max = 1,
     .help = "fraction of ticks that are trades; the rest are quotes"},
    {.name = "format", .type = OBS_PARAM_STRING, .default_value = "json", .min = 1, .max = 8,
     .help = "json (text ticks), binary (48-byte market_tick) or msgpack"},
    {.name = "news_rate", .type = OBS_PARAM_DOUBLE, .default_value = "0", .min = 0, .max = 1000,
     .help = "news events per second of intended time (Poisson); 0: no news"},
    {.name = "news_ms", .type = OBS_PARAM_INT, .default_value = "2000", .min = 1, .max = 3600000,
     .help = "length of a news event in ms"},
    {.name = "news_share", .type = OBS_PARAM_DOUBLE, .default_value = "0.5", .min = 0, .max = 1,
     .help = "share of ticks on the news symbol during a news event"},
    {.name = "news_volatility", .type = OBS_PARAM_INT, .default_value = "10", .min = 1,
     .max = 1000, .help = "price steps of the news symbol are this many times larger"},
};

typedef struct gen_market {
    const obs_host *host;
    rng rng;
    uint32_t n_syms;
    uint64_t trade_threshold; /* a tick is a trade when 53 random bits < this */
    double *cdf;              /* n_syms cumulative Zipf probabilities, last = 1 */
    char (*names)[MARKET_SYM_MAX];
    uint8_t *name_len;
    int64_t *px_e4; /* last price per symbol */
    uint32_t *keys;    /* obs_key_hash of each symbol's name: the records' key */
    uint32_t last_sym; /* the symbol of the tick make_tick() formatted last */
    int format;     /* FMT_* */
    /* News (news_rate > 0 only). */
    double news_rate;
    uint64_t news_ns, news_share; /* share: threshold on 53 random bits */
    int64_t news_vol;
    rng news_rng;
    int news_started;
    uint64_t news_start, news_end;
    uint32_t news_sym;
} gen_market;

/* Writes a positive fixed-point price as <integer>.<4 digits>. */
static inline size_t fmt_price(char *dst, int64_t e4)
{
    uint64_t v = (uint64_t)e4;
    uint64_t frac = v % 10000;
    size_t n = fmt_u64(dst, v / 10000);
    dst[n] = '.';
    memcpy(dst + n + 1, fmt_digit_pairs + 2 * (frac / 100), 2);
    memcpy(dst + n + 3, fmt_digit_pairs + 2 * (frac % 100), 2);
    return n + 5;
}


static void gen_market_free(gen_market *g)
{
    const obs_host *h = g->host;
    h->free(h, g->cdf);
    h->free(h, g->names);
    h->free(h, g->name_len);
    h->free(h, g->px_e4);
    h->free(h, g->keys);
    h->free(h, g);
}

/*
 * Gives every symbol a distinct name of 1..8 uppercase letters drawn from the
 * generator's stream (so names depend on the seed only). Uniqueness is checked
 * with a temporary open-addressing set of the zero-padded names, freed before
 * returning. Returns 0 or OBS_ENOMEM.
 */
static int make_names(gen_market *g)
{
    const obs_host *h = g->host;
    size_t cap = 64;
    while (cap < 2 * (size_t)g->n_syms)
        cap *= 2;
    uint64_t *set = h->alloc(h, cap * sizeof *set);
    if (!set)
        return OBS_ENOMEM;
    memset(set, 0, cap * sizeof *set);

    for (uint32_t i = 0; i < g->n_syms; i++) {
        for (;;) {
            char name[MARKET_SYM_MAX] = {0};
            uint32_t len = 1 + (uint32_t)rng_below(&g->rng, MARKET_SYM_MAX);
            for (uint32_t k = 0; k < len; k++)
                name[k] = (char)('A' + rng_below(&g->rng, 26));
            uint64_t key;
            memcpy(&key, name, sizeof key);
            /* Linear probing; the set is at most half full. */
            size_t slot = (size_t)((key * 0x9e3779b97f4a7c15u) >> 20) & (cap - 1);
            while (set[slot] != 0 && set[slot] != key)
                slot = (slot + 1) & (cap - 1);
            if (set[slot] == key)
                continue; /* taken: draw another name */
            set[slot] = key;
            memcpy(g->names[i], name, sizeof name);
            g->name_len[i] = (uint8_t)len;
            break;
        }
    }
    h->free(h, set);
    return OBS_OK;
}

/* Builds the Zipf CDF: symbol of rank i (0-based) has weight 1/(i+1)^s. */
static void make_cdf(gen_market *g, double s)
{
    double sum = 0;
    for (uint32_t i = 0; i < g->n_syms; i++) {
        sum += pow((double)i + 1.0, -s);
        g->cdf[i] = sum;
    }
    for (uint32_t i = 0; i < g->n_syms; i++)
        g->cdf[i] /= sum;
    g->cdf[g->n_syms - 1] = 1.0; /* rng_unit() < 1, so the search always ends */
}

/* Creates an instance. Owns its tables (host->alloc) until fini. */
static int gen_market_init(const obs_host *host, const obs_params *params, void **instance)
{
    const obs_param_value *p_syms = obs_param_get(params, "symbols");
    const obs_param_value *p_s = obs_param_get(params, "zipf_s");
    const obs_param_value *p_tr = obs_param_get(params, "trade_ratio");
    const obs_param_value *p_fmt = obs_param_get(params, "format");
    const obs_param_value *p_nr = obs_param_get(params, "news_rate");
    const obs_param_value *p_nms = obs_param_get(params, "news_ms");
    const obs_param_value *p_nsh = obs_param_get(params, "news_share");
    const obs_param_value *p_nv = obs_param_get(params, "news_volatility");
    if (!p_syms || !p_s || !p_tr || p_syms->i < 1 || p_syms->i > 100000 || !(p_s->d >= 0) ||
        !(p_tr->d >= 0 && p_tr->d <= 1) ||
        (p_fmt && strcmp(p_fmt->s, "json") != 0 && strcmp(p_fmt->s, "binary") != 0 &&
         strcmp(p_fmt->s, "msgpack") != 0)) {
        host->log(host, OBS_LOG_ERROR, "gen_market: invalid parameters");
        return OBS_EINVAL;
    }

    gen_market *g = host->alloc(host, sizeof *g);
    if (!g)
        return OBS_ENOMEM;
    memset(g, 0, sizeof *g);
    g->host = host;
    g->n_syms = (uint32_t)p_syms->i;
    g->trade_threshold = (uint64_t)ldexp(p_tr->d, 53);
    rng_seed(&g->rng, host->seed);
    g->format = !p_fmt                             ? FMT_JSON
                : strcmp(p_fmt->s, "binary") == 0  ? FMT_BINARY
                : strcmp(p_fmt->s, "msgpack") == 0 ? FMT_MSGPACK
                                                   : FMT_JSON;
    g->news_rate = p_nr ? p_nr->d : 0;
    g->news_ns = (uint64_t)(p_nms ? p_nms->i : 2000) * 1000000u;
    g->news_share = (uint64_t)ldexp(p_nsh ? p_nsh->d : 0.5, 53);
    g->news_vol = p_nv ? p_nv->i : 10;
    rng_seed(&g->news_rng, host->seed ^ 0x4e455753u); /* "NEWS": a stream of its own */

    g->cdf = host->alloc(host, g->n_syms * sizeof *g->cdf);
    g->names = host->alloc(host, g->n_syms * sizeof *g->names);
    g->name_len = host->alloc(host, g->n_syms * sizeof *g->name_len);
    g->px_e4 = host->alloc(host, g->n_syms * sizeof *g->px_e4);
    g->keys = host->alloc(host, g->n_syms * sizeof *g->keys);
    if (!g->cdf || !g->names || !g->name_len || !g->px_e4 || !g->keys)
        goto fail;
    if (make_names(g) != OBS_OK)
        goto fail;
    for (uint32_t i = 0; i < g->n_syms; i++)
        g->keys[i] = obs_key_hash(g->names[i], g->name_len[i]);
    make_cdf(g, p_s->d);
    for (uint32_t i = 0; i < g->n_syms; i++) /* start in [10, 1000) */
        g->px_e4[i] = 100000 + (int64_t)rng_below(&g->rng, 9900000);

    *instance = g;
    return OBS_OK;

fail:
    gen_market_free(g);
    return OBS_ENOMEM;
}

/* Draws a symbol index: first i with u < cdf[i]. */
static inline uint32_t draw_symbol(const gen_market *g, double u)
{
    uint32_t lo = 0, hi = g->n_syms - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (u < g->cdf[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Moves the news window along to intended time ts: windows start after
 * exponential gaps (mean 1 / news_rate) from the first record's time. */
static void news_advance(gen_market *g, uint64_t ts)
{
    if (!g->news_started) {
        g->news_started = 1;
        g->news_end = ts;
        g->news_start = ts;
    }
    while (ts >= g->news_end) {
        double gap = -log(1.0 - rng_unit(&g->news_rng)) / g->news_rate * 1e9;
        g->news_start = g->news_end + (gap < 1e18 ? (uint64_t)gap : (uint64_t)1e18);
        g->news_end = g->news_start + g->news_ns;
        g->news_sym = (uint32_t)rng_below(&g->news_rng, g->n_syms < 10 ? g->n_syms : 10);
    }
}

/* Writes a binary tick (market.h) at out and returns its length. */
static size_t put_binary(const gen_market *g, uint8_t *out, uint64_t ts, bool trade, uint32_t s,
                         int64_t px, uint64_t r2)
{
    market_tick t;
    memset(&t, 0, sizeof t);
    t.ts_ns = ts;
    t.px_e4 = px;
    memcpy(t.sym, g->names[s], MARKET_SYM_MAX);
    if (trade) {
        t.qty = (uint32_t)(1 + (r2 & 1023));
        t.type = MARKET_TRADE;
        t.side = (r2 >> 10) & 1 ? 'S' : 'B';
    } else {
        t.ask_e4 = px + 1 + (int64_t)(r2 & 63);
        t.qty = (uint32_t)(100 * (1 + ((r2 >> 6) & 63)));
        t.ask_qty = (uint32_t)(100 * (1 + ((r2 >> 12) & 63)));
        t.type = MARKET_QUOTE;
    }
    memcpy(out, &t, sizeof t);
    return sizeof t;
}

/* Packs a tick as a msgpack map at out (at most 80 bytes) and returns its
 * length: the JSON tick's keys, in its order. */
static size_t put_msgpack(const gen_market *g, uint8_t *out, uint64_t ts, bool trade, uint32_t s,
                          int64_t px, uint64_t r2)
{
    mpk_sink sink = {out};
    msgpack_packer pk;
    mpk_packer_init(&pk, &sink);
    msgpack_pack_map(&pk, trade ? 6 : 7);
    MPK_STR(&pk, "type");
    if (trade)
        MPK_STR(&pk, "trade");
    else
        MPK_STR(&pk, "quote");
    MPK_STR(&pk, "sym");
    msgpack_pack_str(&pk, g->name_len[s]);
    msgpack_pack_str_body(&pk, g->names[s], g->name_len[s]);
    MPK_STR(&pk, "ts");
    msgpack_pack_uint64(&pk, ts);
    if (trade) {
        MPK_STR(&pk, "px");
        msgpack_pack_double(&pk, (double)px / 1e4);
        MPK_STR(&pk, "qty");
        msgpack_pack_uint32(&pk, (uint32_t)(1 + (r2 & 1023)));
        MPK_STR(&pk, "side");
        if ((r2 >> 10) & 1)
            MPK_STR(&pk, "S");
        else
            MPK_STR(&pk, "B");
    } else {
        MPK_STR(&pk, "bid");
        msgpack_pack_double(&pk, (double)px / 1e4);
        MPK_STR(&pk, "ask");
        msgpack_pack_double(&pk, (double)(px + 1 + (int64_t)(r2 & 63)) / 1e4);
        MPK_STR(&pk, "bsz");
        msgpack_pack_uint32(&pk, (uint32_t)(100 * (1 + ((r2 >> 6) & 63))));
        MPK_STR(&pk, "asz");
        msgpack_pack_uint32(&pk, (uint32_t)(100 * (1 + ((r2 >> 12) & 63))));
    }
    return (size_t)(sink.p - out);
}

/* Formats one tick at `out` (TICK_MAX_LEN bytes available) and returns its
 * length. Consumes the random stream in a fixed order. */
static inline size_t make_tick(gen_market *g, char *out, uint64_t ts)
{
    uint64_t r0 = rng_next(&g->rng);
    uint64_t r1 = rng_next(&g->rng);
    bool trade = (r0 >> 11) < g->trade_threshold;
    uint32_t s = draw_symbol(g, rng_unit(&g->rng));

    /* Random walk of at most +-0.0100 per tick, reflected at the floor. */
    int64_t step = (int64_t)((r1 >> 32) % 201) - 100;
    if (g->news_rate > 0) {
        news_advance(g, ts);
        if (ts >= g->news_start) {
            uint64_t u = rng_next(&g->news_rng);
            if ((u >> 11) < g->news_share) {
                s = g->news_sym;
                trade = trade || (u & 1);
            }
            if (s == g->news_sym)
                step *= g->news_vol;
        }
    }
    int64_t px = g->px_e4[s] + step;
    if (px < PX_FLOOR_E4 || px > MARKET_PX_MAX_E4 / 2)
        px = g->px_e4[s] - step;
    if (px < PX_FLOOR_E4) /* a news step can exceed the distance to the floor both ways */
        px = PX_FLOOR_E4;
    g->px_e4[s] = px;
    g->last_sym = s;
    uint64_t r2 = r1 & 0xffffffffu; /* the low half of r1 is still unused */
    if (g->format == FMT_BINARY)
        return put_binary(g, (uint8_t *)out, ts, trade, s, px, r2);
    if (g->format == FMT_MSGPACK)
        return put_msgpack(g, (uint8_t *)out, ts, trade, s, px, r2);

    char *p = out;
    if (trade) {
        FMT_PUT(p, "{\"type\":\"trade\",\"sym\":\"");
        memcpy(p, g->names[s], MARKET_SYM_MAX);
        p += g->name_len[s];
        FMT_PUT(p, "\",\"ts\":");
        p += fmt_u64(p, ts);
        FMT_PUT(p, ",\"px\":");
        p += fmt_price(p, px);
        FMT_PUT(p, ",\"qty\":");
        p += fmt_u64(p, 1 + (r2 & 1023));
        FMT_PUT(p, ",\"side\":\"");
        *p++ = (r2 >> 10) & 1 ? 'S' : 'B';
        FMT_PUT(p, "\"}");
    } else {
        int64_t spread = 1 + (int64_t)(r2 & 63);
        FMT_PUT(p, "{\"type\":\"quote\",\"sym\":\"");
        memcpy(p, g->names[s], MARKET_SYM_MAX);
        p += g->name_len[s];
        FMT_PUT(p, "\",\"ts\":");
        p += fmt_u64(p, ts);
        FMT_PUT(p, ",\"bid\":");
        p += fmt_price(p, px);
        FMT_PUT(p, ",\"ask\":");
        p += fmt_price(p, px + spread);
        FMT_PUT(p, ",\"bsz\":");
        p += fmt_u64(p, 100 * (1 + ((r2 >> 6) & 63)));
        FMT_PUT(p, ",\"asz\":");
        p += fmt_u64(p, 100 * (1 + ((r2 >> 12) & 63)));
        FMT_PUT(p, "}");
    }
    return (size_t)(p - out);
}

/* Emits exactly req->n_records ticks (seq = first_seq + i, ts and
 * t_intended_ns = req->t_intended_ns[i]), each keyed by its symbol.
 * Returns 0 or OBS_ENOMEM when the host's output bound is reached. */
static int gen_market_generate(void *instance, const obs_gen_request *req, obs_out *out)
{
    gen_market *g = instance;
    for (uint32_t i = 0; i < req->n_records; i++) {
        uint8_t *dst = obs_out_reserve(out, TICK_MAX_LEN);
        if (!dst)
            return OBS_ENOMEM;
        size_t len = make_tick(g, (char *)dst, req->t_intended_ns[i]);
        obs_out_commit(out, len, req->first_seq + i, req->t_intended_ns[i]);
        obs_out_set_key(out, g->keys[g->last_sym]);
    }
    return OBS_OK;
}

static int gen_market_flush(void *instance, obs_out *out)
{
    (void)instance;
    (void)out;
    return OBS_OK;
}

static void gen_market_fini(void *instance)
{
    if (instance)
        gen_market_free(instance);
}

static const obs_stage_desc gen_market_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_GENERATOR,
    .name = "gen_market",
    .version = "1.0.0",
    .description = "seeded market ticks (trades and quotes) as JSON text, binary ticks or msgpack, "
                   "Zipf-distributed symbols",
    .params = gen_market_params,
    .n_params = sizeof gen_market_params / sizeof gen_market_params[0],
    .init = gen_market_init,
    .generate = gen_market_generate,
    .flush = gen_market_flush,
    .fini = gen_market_fini,
};

OBS_DECLARE_STAGE(gen_market_desc)
