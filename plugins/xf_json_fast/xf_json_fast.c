/*
 * xf_json_fast - JSON tick parser without a library ("version B" of the
 * built-in A/B demonstration; xf_json_jansson is version A).
 *
 * Same contract as xf_json_jansson, decision for decision: each input record
 * is one JSON tick; a valid one is emitted as a binary market_tick
 * (plugins/common/market.h) with the input's seq and intended time, a record
 * that is not JSON (as jansson 2.14 reads it) is counted on "parse_error", one
 * that is JSON but not a valid tick on "schema_error", and both are skipped.
 * The parsing itself is in fastjson.c: one pass over the borrowed record
 * bytes, no tree and no allocation, which makes it more than ten times faster
 * than the jansson version (see docs/plugins.md for measurements).
 */
#include <observatory/stage.h>

#include "fastjson.h"
#include "market.h"

typedef struct xf_fast {
    const obs_host *host;
    fastjson parser;
    int c_parse; /* error counter ids */
    int c_schema;
} xf_fast;

static void xf_fast_fini(void *instance)
{
    xf_fast *x = instance;
    if (!x)
        return;
    fastjson_fini(&x->parser);
    x->host->free(x->host, x);
}

static int xf_fast_init(const obs_host *host, const obs_params *params, void **instance)
{
    (void)params;
    int rc;
    xf_fast *x = host->alloc(host, sizeof *x);
    if (!x)
        return OBS_ENOMEM;
    memset(x, 0, sizeof *x);
    x->host = host;
    if ((rc = fastjson_init(&x->parser, host)) != OBS_OK)
        goto fail;
    x->c_parse = host->counter_register(host, "parse_error", OBS_COUNTER_ERROR,
                                        "records that are not valid JSON (as jansson reads it)");
    x->c_schema = host->counter_register(host, "schema_error", OBS_COUNTER_ERROR,
                                         "JSON records that are not a valid tick");
    if (x->c_parse < 0 || x->c_schema < 0) {
        rc = x->c_parse < 0 ? x->c_parse : x->c_schema;
        goto fail;
    }
    *instance = x;
    return OBS_OK;

fail:
    xf_fast_fini(x);
    return rc;
}

/* Parses every record of `in`; valid ticks go to `out` as market_tick
 * records, invalid ones are counted and skipped. Returns 0 or OBS_ENOMEM. */
static int xf_fast_process(void *instance, const obs_batch *in, obs_out *out)
{
    xf_fast *x = instance;
    uint64_t n_parse = 0, n_schema = 0;
    int rc = OBS_OK;
    for (uint32_t i = 0; i < in->n_records; i++) {
        const obs_record *r = &in->records[i];
        market_tick t;
        int verdict = fastjson_parse_tick(&x->parser, r->data, r->len, &t);
        if (verdict == MARKET_OK) {
            if (obs_out_emit(out, &t, sizeof t, r->seq, r->t_intended_ns) != OBS_OK) {
                rc = OBS_ENOMEM;
                break;
            }
        } else if (verdict == MARKET_PARSE_ERROR) {
            n_parse++;
        } else if (verdict == MARKET_SCHEMA_ERROR) {
            n_schema++;
        } else {
            rc = verdict;
            break;
        }
    }
    if (n_parse)
        x->host->counter_add(x->host, x->c_parse, n_parse);
    if (n_schema)
        x->host->counter_add(x->host, x->c_schema, n_schema);
    return rc;
}

static int xf_fast_flush(void *instance, obs_out *out)
{
    (void)instance;
    (void)out;
    return OBS_OK;
}

static const obs_stage_desc xf_fast_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "xf_json_fast",
    .version = "1.0.0",
    .description = "JSON ticks to binary ticks, hand-written zero-copy parser (version B of the "
                   "JSON A/B demo)",
    .params = NULL,
    .n_params = 0,
    .init = xf_fast_init,
    .process = xf_fast_process,
    .flush = xf_fast_flush,
    .fini = xf_fast_fini,
};

OBS_DECLARE_STAGE(xf_fast_desc)
