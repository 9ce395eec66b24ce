/*
 * plugins/xf_json_fast/fastjson.h - the hand-written single-pass JSON tick
 * parser behind xf_json_fast.
 *
 * It reads a tick straight from the record bytes (no copy, no DOM, no
 * allocation on the valid path) and makes, for every input, the decision that
 * jansson 2.14 plus the schema check of xf_json_jansson would make: the
 * accepted language is written down in docs/plugins.md ("The JSON tick
 * language"). Valid ticks take a fast path; anything odd (exponents, long
 * numbers, nested values under unknown keys) takes slower but exact paths.
 */
#ifndef OBS_PLUGINS_FASTJSON_H
#define OBS_PLUGINS_FASTJSON_H

#include <locale.h>
#include <stddef.h>
#include <stdint.h>

#include <observatory/stage.h>

#include "market.h"

/* Parser state kept between records: a scratch buffer for the rare numbers
 * that must go through strtod (which needs a terminated string) and the "C"
 * locale it runs in, so the host's locale cannot change the decimal point. */
typedef struct fastjson {
    const obs_host *host;
    char *scratch;
    size_t scratch_cap;
    locale_t c_locale;
} fastjson;

/* Prepares `fp`; returns 0 or OBS_ENOMEM. Release with fastjson_fini. */
int fastjson_init(fastjson *fp, const obs_host *host);
void fastjson_fini(fastjson *fp);

/*
 * Parses one JSON tick of `len` bytes at `data` (borrowed, not terminated).
 * Returns MARKET_OK and fills *t, MARKET_PARSE_ERROR (not JSON as jansson
 * reads it), MARKET_SCHEMA_ERROR (JSON, but not a valid tick), or OBS_ENOMEM
 * when a long number could not be copied for strtod.
 */
int fastjson_parse_tick(fastjson *fp, const uint8_t *data, size_t len, market_tick *t);

#endif /* OBS_PLUGINS_FASTJSON_H */
