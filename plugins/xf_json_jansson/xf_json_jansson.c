/*
 * xf_json_jansson - JSON tick parser built on jansson ("version A" of the
 * built-in A/B demonstration; xf_json_fast is version B).
 *
 * Each input record is one JSON tick as gen_market writes it. It is parsed
 * with json_loadb (no flags: duplicate keys keep the last value, as jansson
 * does by default), checked against the schema documented in docs/plugins.md
 * and emitted as a binary market_tick (plugins/common/market.h), with the
 * input's seq and intended time. A record that is not JSON is counted on the
 * error counter "parse_error", one that is JSON but not a valid tick on
 * "schema_error"; either is skipped. The decisions that could differ between
 * parsers (the symbol alphabet, price conversion) live in market.h and are
 * shared with xf_json_fast, which must agree with this plugin on every input;
 * tests/unit/test_json_equiv.c checks that.
 *
 * This version is the straightforward one: a DOM per record, allocated and
 * freed by jansson (about 3.5 us per 91-byte tick on the reference machine).
 */
#include <jansson.h>

#include <observatory/stage.h>

#include "market.h"

typedef struct xf_jansson {
    const obs_host *host;
    int c_parse; /* error counter ids */
    int c_schema;
} xf_jansson;

/* Which keys each tick type has: all required, no others. */
static const char *const trade_keys[] = {"type", "sym", "ts", "px", "qty", "side"};
static const char *const quote_keys[] = {"type", "sym", "ts", "bid", "ask", "bsz", "asz"};

static int key_allowed(const char *key, const char *const *keys, size_t n_keys)
{
    for (size_t i = 0; i < n_keys; i++)
        if (strcmp(key, keys[i]) == 0)
            return 1;
    return 0;
}

/* A non-negative JSON integer no larger than max. */
static int get_uint(const json_t *obj, const char *key, uint64_t max, uint64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* A price: JSON integer or real, converted by the shared rules. */
static int get_price(const json_t *obj, const char *key, int64_t *e4)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return market_price_from_int(json_integer_value(v), e4);
    if (json_is_real(v))
        return market_price_from_double(json_real_value(v), e4);
    return -1;
}

/* A string value of `key`, with its length; NULL if absent or not a string. */
static const char *get_string(const json_t *obj, const char *key, size_t *len)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

/* Checks a parsed tick against the schema and fills *t. Returns MARKET_OK or
 * MARKET_SCHEMA_ERROR. `root` is borrowed. */
static int tick_from_json(const json_t *root, market_tick *t)
{
    if (!json_is_object(root))
        return MARKET_SCHEMA_ERROR;
    size_t len;
    const char *type = get_string(root, "type", &len);
    if (!type || len != 5)
        return MARKET_SCHEMA_ERROR;
    int trade;
    if (memcmp(type, "trade", 5) == 0)
        trade = 1;
    else if (memcmp(type, "quote", 5) == 0)
        trade = 0;
    else
        return MARKET_SCHEMA_ERROR;

    const char *const *keys = trade ? trade_keys : quote_keys;
    size_t n_keys = trade ? 6 : 7;
    const char *key;
    const json_t *value;
    /* Keys are unique in a jansson object, so "only allowed keys" plus
     * "as many keys as required" means "exactly the required keys". */
    if (json_object_size(root) != n_keys)
        return MARKET_SCHEMA_ERROR;
    json_object_foreach ((json_t *)root, key, value)
        if (!key_allowed(key, keys, n_keys))
            return MARKET_SCHEMA_ERROR;

    memset(t, 0, sizeof *t);
    const char *sym = get_string(root, "sym", &len);
    if (!sym || !market_sym_ok(sym, len))
        return MARKET_SCHEMA_ERROR;
    memcpy(t->sym, sym, len);

    uint64_t u;
    if (get_uint(root, "ts", INT64_MAX, &u) != 0)
        return MARKET_SCHEMA_ERROR;
    t->ts_ns = u;

    if (trade) {
        t->type = MARKET_TRADE;
        if (get_price(root, "px", &t->px_e4) != 0 || get_uint(root, "qty", UINT32_MAX, &u) != 0)
            return MARKET_SCHEMA_ERROR;
        t->qty = (uint32_t)u;
        const char *side = get_string(root, "side", &len);
        if (!side || len != 1 || (side[0] != 'B' && side[0] != 'S'))
            return MARKET_SCHEMA_ERROR;
        t->side = (uint8_t)side[0];
    } else {
        t->type = MARKET_QUOTE;
        if (get_price(root, "bid", &t->px_e4) != 0 || get_price(root, "ask", &t->ask_e4) != 0 ||
            get_uint(root, "bsz", UINT32_MAX, &u) != 0)
            return MARKET_SCHEMA_ERROR;
        t->qty = (uint32_t)u;
        if (get_uint(root, "asz", UINT32_MAX, &u) != 0)
            return MARKET_SCHEMA_ERROR;
        t->ask_qty = (uint32_t)u;
    }
    return MARKET_OK;
}

static int xf_jansson_init(const obs_host *host, const obs_params *params, void **instance)
{
    (void)params;
    xf_jansson *x = host->alloc(host, sizeof *x);
    if (!x)
        return OBS_ENOMEM;
    x->host = host;
    x->c_parse = host->counter_register(host, "parse_error", OBS_COUNTER_ERROR,
                                        "records that are not valid JSON (per jansson)");
    x->c_schema = host->counter_register(host, "schema_error", OBS_COUNTER_ERROR,
                                         "JSON records that are not a valid tick");
    if (x->c_parse < 0 || x->c_schema < 0) {
        int rc = x->c_parse < 0 ? x->c_parse : x->c_schema;
        host->free(host, x);
        return rc;
    }
    *instance = x;
    return OBS_OK;
}

/* Parses every record of `in`; valid ticks go to `out` as market_tick
 * records, invalid ones are counted and skipped. Returns 0 or OBS_ENOMEM. */
static int xf_jansson_process(void *instance, const obs_batch *in, obs_out *out)
{
    xf_jansson *x = instance;
    uint64_t n_parse = 0, n_schema = 0;
    int rc = OBS_OK;
    for (uint32_t i = 0; i < in->n_records; i++) {
        const obs_record *r = &in->records[i];
        json_error_t err;
        json_t *root = json_loadb(r->data ? (const char *)r->data : "", r->len, 0, &err);
        if (!root) {
            n_parse++;
            continue;
        }
        market_tick t;
        int verdict = tick_from_json(root, &t);
        json_decref(root);
        if (verdict != MARKET_OK) {
            n_schema++;
            continue;
        }
        if (obs_out_emit(out, &t, sizeof t, r->seq, r->t_intended_ns) != OBS_OK) {
            rc = OBS_ENOMEM;
            break;
        }
    }
    if (n_parse)
        x->host->counter_add(x->host, x->c_parse, n_parse);
    if (n_schema)
        x->host->counter_add(x->host, x->c_schema, n_schema);
    return rc;
}

static int xf_jansson_flush(void *instance, obs_out *out)
{
    (void)instance;
    (void)out;
    return OBS_OK;
}

static void xf_jansson_fini(void *instance)
{
    xf_jansson *x = instance;
    if (x)
        x->host->free(x->host, x);
}

static const obs_stage_desc xf_jansson_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "xf_json_jansson",
    .version = "1.0.0",
    .description = "JSON ticks to binary ticks with jansson (version A of the JSON A/B demo)",
    .params = NULL,
    .n_params = 0,
    .init = xf_jansson_init,
    .process = xf_jansson_process,
    .flush = xf_jansson_flush,
    .fini = xf_jansson_fini,
};

OBS_DECLARE_STAGE(xf_jansson_desc)
