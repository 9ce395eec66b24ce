/*
 * json_u64.h - an unsigned 64-bit value as JSON.
 */
#ifndef OBS_JSON_U64_H
#define OBS_JSON_U64_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* An unsigned value as a JSON integer (jansson's are signed 64-bit): values
 * above INT64_MAX become decimal strings rather than wrapping. */
static inline json_t *json_u64(uint64_t v)
{
    if (v <= INT64_MAX)
        return json_integer((json_int_t)v);
    char b[24];
    snprintf(b, sizeof(b), "%" PRIu64, v);
    return json_string(b);
}

#endif /* OBS_JSON_U64_H */
