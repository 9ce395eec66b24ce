/*
 * gen_iot - generator of seeded IoT sensor readings, as JSON, binary or
 * MessagePack.
 *
 * `devices` sensors report in turn (round robin: with the host's load at
 * rate R, each device reports every devices/R seconds), each reading stamped
 * with the device's own measurement time: the intended send time minus a
 * random delay of up to `jitter_ms` (clocks and radios are not punctual).
 * Temperature, humidity and battery are per-device random walks in fixed
 * point. Now and then (`burst_prob` per reading) a correlated burst starts:
 * for the next `burst_len` readings, the devices of one site (`burst_devices`
 * consecutive ids) report instead, with the alarm flag and a temperature
 * spike, as a fire or a power cut would make them. A fraction `malformed` of
 * records is damaged (truncated, a field of the wrong type, garbage bytes, a
 * bad check word) and a fraction `out_of_range` carries a value outside the
 * sensor's range: what xf_iot must count without crashing.
 *
 * JSON:    {"dev":17,"seq":4,"ts":1000,"temp":21.53,"hum":45.20,"bat":3712,"alarm":0}
 * binary:  iot_reading (32 bytes, plugins/common/payload.h).
 * msgpack: a map of the same seven keys in the same order; temp and hum
 *          float 64 (the fixed-point value / 100), the others unsigned
 *          integers in their shortest encoding (libmsgpack's packer).
 * Damage is the same in JSON and msgpack: truncated in the middle, the
 * string "hot" as temp, "bat" renamed "bad", line noise.
 *
 * Determinism: one xoshiro256** stream seeded with host->seed, exactly four
 * draws per record in a fixed order, plus per-device state: the same seed
 * and requests give the same bytes whatever the batch sizes. No snprintf or
 * allocation per record; the only floating point is msgpack's two divisions
 * by 100, exact IEEE operations, so the bytes do not depend on the machine.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#include <observatory/stage.h>

#include "fmt.h"
#include "mpk.h"
#include "payload.h"
#include "rng.h"

#define READING_MAX_LEN 160

enum { FMT_JSON = 0, FMT_BINARY = 1, FMT_MSGPACK = 2 };

static const obs_param_desc gen_iot_params[] = {
    {.name = "devices",
     .type = OBS_PARAM_INT,
     .default_value = "1000",
     .min = 1,
     .max = 10000000,
     .help = "number of devices; they report in turn"},
    {.name = "format",
     .type = OBS_PARAM_STRING,
     .default_value = "json",
     .min = 1,
     .max = 8,
     .help = "json, binary (the 32-byte iot_reading) or msgpack"},
    {.name = "jitter_ms",
     .type = OBS_PARAM_DOUBLE,
     .default_value = "50",
     .min = 0,
     .max = 60000,
     .help = "a reading's ts is its intended time minus a uniform delay of up to this"},
    {.name = "burst_prob",
     .type = OBS_PARAM_DOUBLE,
     .default_value = "0.0002",
     .min = 0,
     .max = 1,
     .help = "probability per reading that a correlated burst starts"},
    {.name = "burst_devices",
     .type = OBS_PARAM_INT,
     .default_value = "50",
     .min = 1,
     .max = 10000000,
     .help = "devices of one site that report together in a burst"},
    {.name = "burst_len",
     .type = OBS_PARAM_INT,
     .default_value = "500",
     .min = 1,
     .max = 100000000,
     .help = "readings in one burst"},
    {.name = "malformed",
     .type = OBS_PARAM_DOUBLE,
     .default_value = "0.001",
     .min = 0,
     .max = 1,
     .help = "fraction of records that are damaged (syntax, types, truncation, check word)"},
    {.name = "out_of_range",
     .type = OBS_PARAM_DOUBLE,
     .default_value = "0.001",
     .min = 0,
     .max = 1,
     .help = "fraction of well-formed readings with a value outside the sensor's range"},
};

typedef struct device {
    int32_t temp_e2;
    uint16_t hum_e2, bat_mv;
    uint32_t seq;
    uint32_t key; /* obs_key_hash of the device id in decimal: the records' key */
} device;

typedef struct gen_iot {
    const obs_host *host;
    rng rng;
    int format;
    uint32_t n_dev, burst_devices, burst_len;
    uint64_t jitter_ns;
    uint64_t p_burst, p_malformed, p_oor; /* thresholds on 53 random bits */
    uint64_t k;                           /* readings generated */
    uint32_t burst_left, burst_first, burst_i;
    uint32_t last_dev; /* the device of the reading make_reading() formatted last */
    device *dev;
} gen_iot;

static uint64_t threshold(double p)
{
    return (uint64_t)ldexp(p, 53);
}

static int gen_iot_init(const obs_host *host, const obs_params *params, void **instance)
{
    const obs_param_value *v[8];
    for (uint32_t i = 0; i < 8; i++)
        if (!(v[i] = obs_param_get(params, gen_iot_params[i].name)))
            return OBS_EINVAL;
    int format = strcmp(v[1]->s, "json") == 0      ? FMT_JSON
                 : strcmp(v[1]->s, "binary") == 0  ? FMT_BINARY
                 : strcmp(v[1]->s, "msgpack") == 0 ? FMT_MSGPACK
                                                   : -1;
    if (format < 0) {
        host->log(host, OBS_LOG_ERROR, "gen_iot: format '%s': expected json, binary or msgpack",
                  v[1]->s);
        return OBS_EINVAL;
    }
    gen_iot *g = host->alloc(host, sizeof *g);
    if (!g)
        return OBS_ENOMEM;
    memset(g, 0, sizeof *g);
    g->host = host;
    g->format = format;
    g->n_dev = (uint32_t)v[0]->i;
    g->jitter_ns = (uint64_t)(v[2]->d * 1e6);
    g->p_burst = threshold(v[3]->d);
    g->burst_devices = (uint32_t)v[4]->i < g->n_dev ? (uint32_t)v[4]->i : g->n_dev;
    g->burst_len = (uint32_t)v[5]->i;
    g->p_malformed = threshold(v[6]->d);
    g->p_oor = threshold(v[7]->d);
    rng_seed(&g->rng, host->seed);
    g->dev = host->alloc(host, (size_t)g->n_dev * sizeof *g->dev);
    if (!g->dev) {
        host->free(host, g);
        return OBS_ENOMEM;
    }
    for (uint32_t i = 0; i < g->n_dev; i++) {
        uint64_t r = rng_next(&g->rng);
        g->dev[i] = (device){.temp_e2 = 1500 + (int32_t)(r % 1500),         /* 15..30 C */
                             .hum_e2 = (uint16_t)(3000 + (r >> 16) % 4000), /* 30..70 % */
                             .bat_mv = (uint16_t)(3600 + (r >> 32) % 600)};
        char id[16];
        int n = snprintf(id, sizeof id, "%u", i);
        g->dev[i].key = obs_key_hash(id, (size_t)n);
    }
    *instance = g;
    return OBS_OK;
}

/* Packs reading rd as a msgpack map at out (at most 72 bytes) and returns
 * its length. Damage on request: `hot`, the string "hot" as temp; `bad_key`,
 * the key "bad" instead of "bat". */
static size_t put_msgpack(uint8_t *out, const iot_reading *rd, bool hot, bool bad_key)
{
    mpk_sink s = {out};
    msgpack_packer pk;
    mpk_packer_init(&pk, &s);
    msgpack_pack_map(&pk, 7);
    MPK_STR(&pk, "dev");
    msgpack_pack_uint32(&pk, rd->device);
    MPK_STR(&pk, "seq");
    msgpack_pack_uint32(&pk, rd->dev_seq);
    MPK_STR(&pk, "ts");
    msgpack_pack_uint64(&pk, rd->ts_ns);
    MPK_STR(&pk, "temp");
    if (hot)
        MPK_STR(&pk, "hot");
    else
        msgpack_pack_double(&pk, (double)rd->temp_e2 / 100.0);
    MPK_STR(&pk, "hum");
    msgpack_pack_double(&pk, (double)rd->hum_e2 / 100.0);
    if (bad_key)
        MPK_STR(&pk, "bad");
    else
        MPK_STR(&pk, "bat");
    msgpack_pack_uint16(&pk, rd->bat_mv);
    MPK_STR(&pk, "alarm");
    msgpack_pack_uint8(&pk, rd->alarm);
    return (size_t)(s.p - out);
}

/* Formats one reading at `out` (READING_MAX_LEN bytes) and returns its length. */
static size_t make_reading(gen_iot *g, uint8_t *out, uint64_t t_intended)
{
    /* Four draws per record, always, in this order. */
    uint64_t r0 = rng_next(&g->rng), r1 = rng_next(&g->rng);
    uint64_t r2 = rng_next(&g->rng), r3 = rng_next(&g->rng);

    if (!g->burst_left && g->p_burst && (r0 >> 11) < g->p_burst) {
        g->burst_left = g->burst_len;
        g->burst_first = (uint32_t)((r3 >> 32) % (g->n_dev - g->burst_devices + 1));
        g->burst_i = 0;
    }
    uint32_t id;
    bool alarm = g->burst_left > 0;
    if (alarm) {
        id = g->burst_first + g->burst_i++ % g->burst_devices;
        g->burst_left--;
    } else {
        id = (uint32_t)(g->k % g->n_dev);
    }
    g->k++;
    g->last_dev = id;
    device *d = &g->dev[id];

    /* Random walks: temperature +-0.10 C, humidity +-0.20 %, battery down
     * 1 mV every 64 readings; kept inside the sensor's range. */
    int32_t t = d->temp_e2 + (int32_t)(r1 % 21) - 10;
    d->temp_e2 = t < -3000 ? -3000 : t > 6000 ? 6000 : t;
    int32_t h = (int32_t)d->hum_e2 + (int32_t)((r1 >> 8) % 41) - 20;
    d->hum_e2 = (uint16_t)(h < 500 ? 500 : h > 9500 ? 9500 : h);
    if (((r1 >> 16) & 63) == 0 && d->bat_mv > IOT_BAT_MIN_MV + 100)
        d->bat_mv--;
    d->seq++;

    iot_reading rd = {
        .ts_ns = g->jitter_ns && t_intended > g->jitter_ns
                     ? t_intended - (uint64_t)(((r2 >> 11) * (unsigned __int128)g->jitter_ns) >> 53)
                     : t_intended,
        .device = id,
        .dev_seq = d->seq,
        .temp_e2 = alarm ? d->temp_e2 + 2000 : d->temp_e2, /* a spike of +20 C */
        .hum_e2 = d->hum_e2,
        .bat_mv = d->bat_mv,
        .type = IOT_READING,
        .alarm = alarm,
    };
    /* Damage decisions come from the low bits of r0 and r3 (the high bits
     * of r0 decided the burst). */
    uint64_t u_bad = r3 & ((1ull << 53) - 1), u_oor = (r0 << 11 | r2 >> 53) & ((1ull << 53) - 1);
    bool malformed = u_bad < g->p_malformed;
    unsigned how = (unsigned)(r2 & 7);
    if (!malformed && u_oor < g->p_oor) {
        switch (how & 3) {
        case 0: rd.temp_e2 = 12000 + (int32_t)(r2 >> 40) % 8000; break; /* 120..200 C */
        case 1: rd.temp_e2 = -6000 - (int32_t)(r2 >> 40) % 4000; break;
        case 2: rd.hum_e2 = (uint16_t)(IOT_HUM_MAX_E2 + 1 + (r2 >> 40) % 5000); break;
        default: rd.bat_mv = (uint16_t)(500 + (r2 >> 40) % 1000); break;
        }
    }

    if (g->format == FMT_BINARY) {
        rd.check = fmt_fnv1a32(&rd, 28);
        memcpy(out, &rd, sizeof rd);
        if (!malformed)
            return sizeof rd;
        switch (how % 4) {
        case 0: return 17;                  /* truncated */
        case 1: out[24] = 0x7f; return 32;  /* unknown kind byte */
        case 2: out[16] ^= 0x5a; return 32; /* damaged in transit: check mismatch */
        default: memset(out, 0xff, 32); return 32;
        }
    }

    if (g->format == FMT_MSGPACK) {
        /* The JSON damage below, in msgpack terms. */
        unsigned damage = malformed ? how % 4 : 4; /* 4: none */
        size_t len = put_msgpack(out, &rd, damage == 1, damage == 2);
        if (damage == 0)
            return len / 2; /* truncated in the middle */
        if (damage == 3)
            for (size_t i = 0; i < len; i++) /* line noise */
                out[i] = (uint8_t)(r2 >> (8 * (i % 8))) | 0x80;
        return len;
    }

    char *p = (char *)out;
    FMT_PUT(p, "{\"dev\":");
    p += fmt_u64(p, rd.device);
    FMT_PUT(p, ",\"seq\":");
    p += fmt_u64(p, rd.dev_seq);
    FMT_PUT(p, ",\"ts\":");
    p += fmt_u64(p, rd.ts_ns);
    FMT_PUT(p, ",\"temp\":");
    if (malformed && how % 4 == 1)
        FMT_PUT(p, "\"hot\""); /* a string where a number belongs */
    else
        p += fmt_e2(p, rd.temp_e2);
    FMT_PUT(p, ",\"hum\":");
    p += fmt_e2(p, rd.hum_e2);
    FMT_PUT(p, ",\"bat\":");
    p += fmt_u64(p, rd.bat_mv);
    FMT_PUT(p, ",\"alarm\":");
    *p++ = alarm ? '1' : '0';
    *p++ = '}';
    size_t len = (size_t)(p - (char *)out);
    if (!malformed)
        return len;
    switch (how % 4) {
    case 0: /* truncated in the middle */ return len / 2;
    case 1: /* written above */ return len;
    case 2: /* a missing field: "bat" renamed */
        for (size_t i = 0; i + 5 < len; i++)
            if (memcmp(out + i, "\"bat\"", 5) == 0) {
                memcpy(out + i, "\"bad\"", 5);
                break;
            }
        return len;
    default: /* line noise */
        for (size_t i = 0; i < len; i++)
            out[i] = (uint8_t)(r2 >> (8 * (i % 8))) | 0x80;
        return len;
    }
}

static int gen_iot_generate(void *instance, const obs_gen_request *req, obs_out *out)
{
    gen_iot *g = instance;
    for (uint32_t i = 0; i < req->n_records; i++) {
        uint8_t *dst = obs_out_reserve(out, READING_MAX_LEN);
        if (!dst)
            return OBS_ENOMEM;
        size_t len = make_reading(g, dst, req->t_intended_ns[i]);
        obs_out_commit(out, len, req->first_seq + i, req->t_intended_ns[i]);
        obs_out_set_key(out, g->dev[g->last_dev].key);
    }
    return OBS_OK;
}

static void gen_iot_fini(void *instance)
{
    gen_iot *g = instance;
    if (!g)
        return;
    g->host->free(g->host, g->dev);
    g->host->free(g->host, g);
}

static const obs_stage_desc gen_iot_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_GENERATOR,
    .name = "gen_iot",
    .version = "1.0.0",
    .description =
        "seeded IoT sensor readings (JSON, binary or msgpack) with jitter, correlated bursts "
        "and a share of malformed or out-of-range records",
    .params = gen_iot_params,
    .n_params = sizeof gen_iot_params / sizeof gen_iot_params[0],
    .init = gen_iot_init,
    .generate = gen_iot_generate,
    .fini = gen_iot_fini,
};

OBS_DECLARE_STAGE(gen_iot_desc)
