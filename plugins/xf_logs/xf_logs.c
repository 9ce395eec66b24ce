/*
 * xf_logs - parses log events (JSON, binary or msgpack, recognised per
 * record), counts them per level and passes on those at or above
 * `min_level`.
 *
 * A record with the kind byte 0x13 at offset 15 is read as a binary log
 * event (payload.h: 16-byte header, then msg_len bytes); else a record
 * whose first byte is a msgpack map header (0x80-0x8f, 0xde, 0xdf) as
 * msgpack; anything else as JSON (plugins/common/flatjson.h). Both text
 * forms have exactly the keys ts, level, svc, tmpl, msg: ts and tmpl
 * numbers, the others strings. JSON never holds a raw 0x13 nor starts with
 * a byte >= 0x80; a msgpack event from gen_logs (ts first) never has 0x13 at
 * offset 15 (that byte falls in ts, the key "level", or the level's string
 * header or name).
 * Outcomes: parse_error (not JSON / not one complete msgpack object / a
 * binary record of the wrong length or kind), schema_error (wrong keys or
 * types, unknown level), else the event is counted on the plain counter of
 * its level (debug, info, warn, error) and, when its level is at least
 * min_level, passed downstream unchanged and without a copy (obs_out_pass).
 *
 * msgpack goes through mpk_check() (common/mpk.h: bounds what libmsgpack
 * may allocate) and then msgpack_unpack() into a zone made at init and
 * cleared after each record, the fastest of libmsgpack's decoders here (see
 * xf_iot.c): strings, the message too, point into the record. No
 * allocation after init on the steady path (the zone mallocs only for a
 * record with more than ~40 pairs, and frees it at the next clear).
 */
#include <observatory/stage.h>

#include "flatjson.h"
#include "mpk.h"
#include "payload.h"

#define ZONE_CHUNK_BYTES 2048

static const obs_param_desc xf_logs_params[] = {
    {.name = "min_level",
     .type = OBS_PARAM_STRING,
     .default_value = "warn",
     .min = 1,
     .max = 8,
     .help = "pass on events at or above this level: debug, info, warn or error"},
};

typedef struct xf_logs {
    const obs_host *host;
    int min_level;
    int c_parse, c_schema, c_level[LOG_N_LEVELS];
    msgpack_zone zone; /* msgpack objects of the record being parsed */
} xf_logs;

enum { PARSE = -1, SCHEMA = -2 };

static int level_of(const char *s, size_t n)
{
    for (int l = 0; l < LOG_N_LEVELS; l++)
        if (strlen(log_level_names[l]) == n && memcmp(s, log_level_names[l], n) == 0)
            return l;
    return SCHEMA;
}

static int xf_logs_init(const obs_host *host, const obs_params *params, void **instance)
{
    const obs_param_value *ml = obs_param_get(params, "min_level");
    int min = ml ? level_of(ml->s, strlen(ml->s)) : SCHEMA;
    if (min < 0) {
        host->log(host, OBS_LOG_ERROR,
                  "xf_logs: min_level '%s': expected debug, info, warn or "
                  "error",
                  ml ? ml->s : "");
        return OBS_EINVAL;
    }
    xf_logs *x = host->alloc(host, sizeof *x);
    if (!x)
        return OBS_ENOMEM;
    memset(x, 0, sizeof *x);
    x->host = host;
    x->min_level = min;
    x->c_parse = host->counter_register(host, "parse_error", OBS_COUNTER_ERROR,
                                        "not JSON or msgpack, or not a binary log event");
    x->c_schema = host->counter_register(host, "schema_error", OBS_COUNTER_ERROR,
                                         "wrong keys or types, or an unknown level");
    int bad = x->c_parse < 0 || x->c_schema < 0;
    for (int l = 0; l < LOG_N_LEVELS; l++) {
        x->c_level[l] = host->counter_register(host, log_level_names[l], OBS_COUNTER_PLAIN,
                                               "events of this level");
        bad |= x->c_level[l] < 0;
    }
    if (bad || !msgpack_zone_init(&x->zone, ZONE_CHUNK_BYTES)) {
        host->free(host, x);
        return OBS_ENOMEM;
    }
    *instance = x;
    return OBS_OK;
}

static int is_number(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
           o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER || o->type == MSGPACK_OBJECT_FLOAT64 ||
           o->type == MSGPACK_OBJECT_FLOAT32;
}

/* A msgpack event's level, PARSE or SCHEMA; the same rules as JSON. */
static int classify_msgpack(xf_logs *x, const obs_record *r)
{
    static const char *const keys[5] = {"ts", "level", "svc", "tmpl", "msg"};
    if (mpk_check(r->data, r->len) != 0)
        return PARSE;
    msgpack_object o;
    size_t off = 0;
    int level = SCHEMA;
    if (msgpack_unpack((const char *)r->data, r->len, &off, &x->zone, &o) !=
        MSGPACK_UNPACK_SUCCESS) {
        level = PARSE; /* nested deeper than libmsgpack's 32 levels */
        goto out;
    }
    if (o.type != MSGPACK_OBJECT_MAP || o.via.map.size != 5)
        goto out;
    unsigned seen = 0;
    for (uint32_t i = 0; i < 5; i++) {
        const msgpack_object_kv *kv = &o.via.map.ptr[i];
        int k = 0;
        while (k < 5 && !mpk_str_is(&kv->key, keys[k]))
            k++;
        if (k == 5 || (seen & (1u << k)) ||
            (k == 0 || k == 3 ? !is_number(&kv->val) : kv->val.type != MSGPACK_OBJECT_STR)) {
            level = SCHEMA;
            goto out;
        }
        seen |= 1u << k;
        if (k == 1)
            level = level_of(kv->val.via.str.ptr, kv->val.via.str.size);
    }
out:
    msgpack_zone_clear(&x->zone); /* o's pairs lived there */
    return level;
}

/* Returns the event's level, PARSE or SCHEMA. */
static int classify(xf_logs *x, const obs_record *r)
{
    int binary = r->len >= LOG_HEADER_LEN && r->data[15] == LOG_EVENT;
    if (!binary && r->len && mpk_is_map_tag(r->data[0]))
        return classify_msgpack(x, r);
    if (!binary) {
        static const char *const keys[5] = {"ts", "level", "svc", "tmpl", "msg"};
        static const char kinds[5] = {'n', 's', 's', 'n', 's'};
        fj_pair pr[6];
        int n = fj_parse(r->data, r->len, pr, 6), level = SCHEMA;
        if (n == FJ_SYNTAX)
            return PARSE;
        if (n != 5)
            return SCHEMA;
        unsigned seen = 0;
        for (int i = 0; i < n; i++) {
            int k = 0;
            while (k < 5 && !fj_key_is(&pr[i], keys[k]))
                k++;
            if (k == 5 || (seen & (1u << k)) || pr[i].kind != kinds[k])
                return SCHEMA;
            seen |= 1u << k;
            if (k == 1)
                level = level_of(pr[i].val, pr[i].val_len);
        }
        return level;
    }
    log_header h;
    memcpy(&h, r->data, sizeof h);
    if (r->len != LOG_HEADER_LEN + (uint32_t)h.msg_len)
        return PARSE;
    return h.level < LOG_N_LEVELS ? h.level : SCHEMA;
}

static int xf_logs_process(void *instance, const obs_batch *in, obs_out *out)
{
    xf_logs *x = instance;
    uint64_t n_parse = 0, n_schema = 0, n_level[LOG_N_LEVELS] = {0};
    int rc = OBS_OK;
    for (uint32_t i = 0; i < in->n_records; i++) {
        int level = classify(x, &in->records[i]);
        if (level == PARSE) {
            n_parse++;
        } else if (level == SCHEMA) {
            n_schema++;
        } else {
            n_level[level]++;
            if (level >= x->min_level && (rc = obs_out_pass(out, &in->records[i])) != OBS_OK)
                break;
        }
    }
    const obs_host *h = x->host;
    if (n_parse)
        h->counter_add(h, x->c_parse, n_parse);
    if (n_schema)
        h->counter_add(h, x->c_schema, n_schema);
    for (int l = 0; l < LOG_N_LEVELS; l++)
        if (n_level[l])
            h->counter_add(h, x->c_level[l], n_level[l]);
    return rc;
}

static void xf_logs_fini(void *instance)
{
    xf_logs *x = instance;
    if (!x)
        return;
    msgpack_zone_destroy(&x->zone);
    x->host->free(x->host, x);
}

static const obs_stage_desc xf_logs_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "xf_logs",
    .version = "1.0.0",
    .description =
        "log events (JSON, binary or msgpack) -> the events at or above min_level, passed "
        "through; counts per level",
    .params = xf_logs_params,
    .n_params = sizeof xf_logs_params / sizeof xf_logs_params[0],
    .init = xf_logs_init,
    .process = xf_logs_process,
    .fini = xf_logs_fini,
};

OBS_DECLARE_STAGE(xf_logs_desc)
