/*
 * xf_iot - parses IoT readings (JSON, binary or msgpack, recognised per
 * record) and aggregates them per device.
 *
 * A record of 32 bytes with the kind byte 0x11 at offset 24 is read as a
 * binary iot_reading (payload.h); else a record whose first byte is a
 * msgpack map header (0x80-0x8f, 0xde, 0xdf) as msgpack; anything else as
 * JSON (plugins/common/flatjson.h). No valid record is misread: JSON never
 * holds a raw 0x11 nor starts with a byte >= 0x80, and a valid msgpack
 * reading is at least 38 bytes long. Each reading is checked and counted on
 * exactly one outcome:
 *   - parse_error: not JSON / not one complete msgpack object / not a
 *     32-byte binary reading of kind 0x11;
 *   - schema_error: JSON or msgpack of the wrong shape (a missing, unknown,
 *     repeated or mistyped field, a device id beyond max_devices) or a binary
 *     reading whose check word does not match;
 *   - out_of_range: well formed, but a value outside the sensor's range
 *     (temperature -40..85 C, humidity 0..100 %, battery 2000..4200 mV);
 *   - valid: aggregated into its device's summary.
 * Every `every` valid readings of a device, one iot_summary record (40
 * bytes) is emitted for it, carrying the seq and intended time of the last
 * reading in it; flush() emits the devices with readings still pending.
 * Device state is an array indexed by device id, grown by doubling with
 * host->realloc (never on the steady path once every device has been seen).
 *
 * msgpack is decoded with libmsgpack's msgpack_unpack() into one zone (its
 * arena) per instance, made at init and cleared after every record: the
 * map's pairs are the only allocation, strings point into the record (zero
 * copy), and a cleared zone keeps its first chunk, so the steady path never
 * calls malloc. The alternatives cost more per record, measured on 68-byte
 * readings: msgpack_unpack_next() frees and mallocs an 8 KiB zone for every
 * object (1.2-1.3x the time) and msgpack_unpacker first copies the bytes
 * into its own buffer and also gives each object a new zone (1.3-1.4x).
 * Untrusted bytes go through mpk_check() first (common/mpk.h), which bounds
 * what the unpacker may allocate.
 */
#include <math.h>
#include <stdbool.h>

#include <observatory/stage.h>

#include "flatjson.h"
#include "fmt.h"
#include "mpk.h"
#include "payload.h"

/* Room for a reading's seven pairs (7 x 48 bytes) with plenty to spare;
 * larger maps make the zone malloc a chunk that the next clear frees. */
#define ZONE_CHUNK_BYTES 2048

static const obs_param_desc xf_iot_params[] = {
    {.name = "every",
     .type = OBS_PARAM_INT,
     .default_value = "10",
     .min = 1,
     .max = 1000000,
     .help = "emit a device's summary after this many valid readings of it"},
    {.name = "max_devices",
     .type = OBS_PARAM_INT,
     .default_value = "10000000",
     .min = 1,
     .max = 100000000,
     .help = "device ids must be below this; others are schema errors"},
};

typedef struct agg {
    uint64_t last_ts;
    int64_t sum;
    int32_t min, max;
    uint32_t n, n_alarm;
    uint16_t bat_min;
    uint64_t seq, t_intended; /* of the last reading */
} agg;

typedef struct xf_iot {
    const obs_host *host;
    uint32_t every, max_devices;
    agg *dev;
    uint32_t cap;
    int c_parse, c_schema, c_oor, c_valid;
    msgpack_zone zone; /* msgpack objects of the record being parsed */
} xf_iot;

enum { OK = 0, PARSE = 1, SCHEMA = 2, OOR = 3 };

static int xf_iot_init(const obs_host *host, const obs_params *params, void **instance)
{
    const obs_param_value *every = obs_param_get(params, "every");
    const obs_param_value *maxd = obs_param_get(params, "max_devices");
    if (!every || !maxd)
        return OBS_EINVAL;
    xf_iot *x = host->alloc(host, sizeof *x);
    if (!x)
        return OBS_ENOMEM;
    memset(x, 0, sizeof *x);
    x->host = host;
    x->every = (uint32_t)every->i;
    x->max_devices = (uint32_t)maxd->i;
    x->c_parse = host->counter_register(host, "parse_error", OBS_COUNTER_ERROR,
                                        "not JSON or msgpack, or not a 32-byte binary reading");
    x->c_schema = host->counter_register(host, "schema_error", OBS_COUNTER_ERROR,
                                         "wrong fields or types, or a bad check word");
    x->c_oor = host->counter_register(host, "out_of_range", OBS_COUNTER_ERROR,
                                      "a value outside the sensor's range");
    x->c_valid =
        host->counter_register(host, "readings", OBS_COUNTER_PLAIN, "valid readings aggregated");
    if (x->c_parse < 0 || x->c_schema < 0 || x->c_oor < 0 || x->c_valid < 0 ||
        !msgpack_zone_init(&x->zone, ZONE_CHUNK_BYTES)) {
        host->free(host, x);
        return OBS_ENOMEM;
    }
    *instance = x;
    return OBS_OK;
}

/* Reads one JSON reading into *rd; returns OK, PARSE or SCHEMA. */
static int parse_json(const obs_record *r, iot_reading *rd)
{
    static const char *const keys[7] = {"dev", "seq", "ts", "temp", "hum", "bat", "alarm"};
    fj_pair pr[8];
    int n = fj_parse(r->data, r->len, pr, 8);
    if (n == FJ_SYNTAX)
        return PARSE;
    if (n != 7)
        return SCHEMA;
    int64_t v[7];
    unsigned seen = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < 7 && !fj_key_is(&pr[i], keys[k]))
            k++;
        if (k == 7 || (seen & (1u << k)))
            return SCHEMA; /* unknown or repeated */
        seen |= 1u << k;
        if (fj_fixed(&pr[i], k == 3 || k == 4 ? 2 : 0, &v[k]) != 0)
            return SCHEMA;
    }
    if (v[0] < 0 || v[0] > UINT32_MAX || v[1] < 0 || v[1] > UINT32_MAX || v[2] < 0 ||
        v[3] < INT32_MIN || v[3] > INT32_MAX || v[4] < 0 || v[4] > UINT16_MAX || v[5] < 0 ||
        v[5] > UINT16_MAX || (v[6] != 0 && v[6] != 1))
        return SCHEMA;
    *rd = (iot_reading){.ts_ns = (uint64_t)v[2],
                        .device = (uint32_t)v[0],
                        .dev_seq = (uint32_t)v[1],
                        .temp_e2 = (int32_t)v[3],
                        .hum_e2 = (uint16_t)v[4],
                        .bat_mv = (uint16_t)v[5],
                        .type = IOT_READING,
                        .alarm = (uint8_t)v[6]};
    return OK;
}

/* A msgpack number as fixed point with `decimals` (0 or 2) decimals, like
 * fj_fixed() for JSON: an integer, or for decimals > 0 a float whose value
 * x 10^decimals is an integer up to the double's last bits (21.53 is 2153;
 * 21.535 is no value with two decimals). Returns 0 or -1. */
static int mp_fixed(const msgpack_object *o, int decimals, int64_t *out)
{
    int64_t scale = decimals ? 100 : 1;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)(INT64_MAX / scale))
            return -1;
        *out = (int64_t)o->via.u64 * scale;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        if (o->via.i64 < INT64_MIN / scale)
            return -1;
        *out = o->via.i64 * scale;
        return 0;
    }
    if (decimals == 0 || (o->type != MSGPACK_OBJECT_FLOAT64 && o->type != MSGPACK_OBJECT_FLOAT32))
        return -1;
    double x = o->via.f64 * (double)scale, r = nearbyint(x);
    if (!(fabs(r) <= 0x1p53) || fabs(x - r) > fabs(r) * 0x1p-50)
        return -1; /* also NaN and infinities */
    *out = (int64_t)r;
    return 0;
}

/* Reads one msgpack reading into *rd; returns OK, PARSE or SCHEMA. The same
 * fields, types and ranges as JSON (parse_json). */
static int parse_msgpack(xf_iot *x, const obs_record *r, iot_reading *rd)
{
    static const char *const keys[7] = {"dev", "seq", "ts", "temp", "hum", "bat", "alarm"};
    if (mpk_check(r->data, r->len) != 0)
        return PARSE;
    msgpack_object o;
    size_t off = 0;
    int st = OK;
    if (msgpack_unpack((const char *)r->data, r->len, &off, &x->zone, &o) !=
        MSGPACK_UNPACK_SUCCESS) {
        st = PARSE; /* nested deeper than libmsgpack's 32 levels */
        goto out;
    }
    if (o.type != MSGPACK_OBJECT_MAP || o.via.map.size != 7) {
        st = SCHEMA;
        goto out;
    }
    int64_t v[7];
    unsigned seen = 0;
    for (uint32_t i = 0; i < 7; i++) {
        const msgpack_object_kv *kv = &o.via.map.ptr[i];
        int k = 0;
        while (k < 7 && !mpk_str_is(&kv->key, keys[k]))
            k++;
        if (k == 7 || (seen & (1u << k)) || mp_fixed(&kv->val, k == 3 || k == 4 ? 2 : 0, &v[k])) {
            st = SCHEMA; /* unknown, repeated or mistyped */
            goto out;
        }
        seen |= 1u << k;
    }
    if (v[0] < 0 || v[0] > UINT32_MAX || v[1] < 0 || v[1] > UINT32_MAX || v[2] < 0 ||
        v[3] < INT32_MIN || v[3] > INT32_MAX || v[4] < 0 || v[4] > UINT16_MAX || v[5] < 0 ||
        v[5] > UINT16_MAX || (v[6] != 0 && v[6] != 1)) {
        st = SCHEMA;
        goto out;
    }
    *rd = (iot_reading){.ts_ns = (uint64_t)v[2],
                        .device = (uint32_t)v[0],
                        .dev_seq = (uint32_t)v[1],
                        .temp_e2 = (int32_t)v[3],
                        .hum_e2 = (uint16_t)v[4],
                        .bat_mv = (uint16_t)v[5],
                        .type = IOT_READING,
                        .alarm = (uint8_t)v[6]};
out:
    msgpack_zone_clear(&x->zone); /* o's pairs lived there */
    return st;
}

static int parse_binary(const obs_record *r, iot_reading *rd)
{
    if (r->len != IOT_READING_LEN || r->data[24] != IOT_READING)
        return PARSE;
    memcpy(rd, r->data, sizeof *rd);
    if (rd->check != fmt_fnv1a32(r->data, 28) || rd->alarm > 1 || rd->pad[0] || rd->pad[1])
        return SCHEMA;
    return OK;
}

/* Makes room for device `id`; false on allocation failure. */
static bool reserve(xf_iot *x, uint32_t id)
{
    if (id < x->cap)
        return true;
    uint64_t cap = x->cap ? x->cap : 1024;
    while (cap <= id)
        cap *= 2;
    if (cap > x->max_devices)
        cap = x->max_devices;
    agg *d = x->host->realloc(x->host, x->dev, cap * sizeof *d);
    if (!d)
        return false;
    memset(d + x->cap, 0, (cap - x->cap) * sizeof *d);
    x->dev = d;
    x->cap = (uint32_t)cap;
    return true;
}

static int emit(xf_iot *x, uint32_t id, obs_out *out)
{
    agg *a = &x->dev[id];
    iot_summary s = {.last_ts_ns = a->last_ts,
                     .device = id,
                     .n = a->n,
                     .temp_sum_e2 = a->sum,
                     .temp_min_e2 = a->min,
                     .temp_max_e2 = a->max,
                     .n_alarm = a->n_alarm,
                     .bat_min_mv = a->bat_min,
                     .type = IOT_SUMMARY};
    int rc = obs_out_emit(out, &s, sizeof s, a->seq, a->t_intended);
    a->n = 0;
    return rc;
}

static int xf_iot_process(void *instance, const obs_batch *in, obs_out *out)
{
    xf_iot *x = instance;
    uint64_t n_err[4] = {0}, valid = 0;
    int rc = OBS_OK;
    for (uint32_t i = 0; i < in->n_records && rc == OBS_OK; i++) {
        const obs_record *r = &in->records[i];
        iot_reading rd;
        int st = r->len == IOT_READING_LEN && r->data[24] == IOT_READING ? parse_binary(r, &rd)
                 : r->len && mpk_is_map_tag(r->data[0])                  ? parse_msgpack(x, r, &rd)
                                                                         : parse_json(r, &rd);
        if (st == OK && rd.device >= x->max_devices)
            st = SCHEMA;
        if (st == OK && (rd.temp_e2 < IOT_TEMP_MIN_E2 || rd.temp_e2 > IOT_TEMP_MAX_E2 ||
                         rd.hum_e2 > IOT_HUM_MAX_E2 || rd.bat_mv < IOT_BAT_MIN_MV ||
                         rd.bat_mv > IOT_BAT_MAX_MV))
            st = OOR;
        if (st != OK) {
            n_err[st]++;
            continue;
        }
        if (!reserve(x, rd.device)) {
            rc = OBS_ENOMEM;
            break;
        }
        agg *a = &x->dev[rd.device];
        if (a->n == 0) {
            a->sum = 0;
            a->min = INT32_MAX;
            a->max = INT32_MIN;
            a->n_alarm = 0;
            a->bat_min = UINT16_MAX;
        }
        a->n++;
        a->sum += rd.temp_e2;
        a->min = rd.temp_e2 < a->min ? rd.temp_e2 : a->min;
        a->max = rd.temp_e2 > a->max ? rd.temp_e2 : a->max;
        a->n_alarm += rd.alarm;
        a->bat_min = rd.bat_mv < a->bat_min ? rd.bat_mv : a->bat_min;
        a->last_ts = rd.ts_ns;
        a->seq = r->seq;
        a->t_intended = r->t_intended_ns;
        valid++;
        if (a->n >= x->every)
            rc = emit(x, rd.device, out);
    }
    const obs_host *h = x->host;
    if (n_err[PARSE])
        h->counter_add(h, x->c_parse, n_err[PARSE]);
    if (n_err[SCHEMA])
        h->counter_add(h, x->c_schema, n_err[SCHEMA]);
    if (n_err[OOR])
        h->counter_add(h, x->c_oor, n_err[OOR]);
    if (valid)
        h->counter_add(h, x->c_valid, valid);
    return rc;
}

static int xf_iot_flush(void *instance, obs_out *out)
{
    xf_iot *x = instance;
    for (uint32_t id = 0; out && id < x->cap; id++)
        if (x->dev[id].n) {
            int rc = emit(x, id, out);
            if (rc != OBS_OK)
                return rc;
        }
    return OBS_OK;
}

static void xf_iot_fini(void *instance)
{
    xf_iot *x = instance;
    if (!x)
        return;
    msgpack_zone_destroy(&x->zone);
    x->host->free(x->host, x->dev);
    x->host->free(x->host, x);
}

static const obs_stage_desc xf_iot_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "xf_iot",
    .version = "1.0.0",
    .description = "IoT readings (JSON, binary or msgpack) -> per-device summaries; malformed and "
                   "out-of-range readings counted",
    .params = xf_iot_params,
    .n_params = sizeof xf_iot_params / sizeof xf_iot_params[0],
    .init = xf_iot_init,
    .process = xf_iot_process,
    .flush = xf_iot_flush,
    .fini = xf_iot_fini,
};

OBS_DECLARE_STAGE(xf_iot_desc)
