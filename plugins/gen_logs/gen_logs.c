/*
 * gen_logs - generator of seeded log events, as JSON, binary or MessagePack.
 *
 * Each event has a level drawn from the configured mix, a service, and a
 * message made from one of a fixed set of templates (placeholders filled
 * with random numbers) padded with filler words to a length drawn from a
 * log-normal distribution (median `size_median`, shape `size_sigma`, cut to
 * [16, max_size]): most lines are short, a few are very long, as in real
 * logs. The filler is a block of words built at init, so a message costs a
 * template pass and a memcpy.
 *
 * JSON:    {"ts":1000,"level":"warn","svc":"svc-007","tmpl":3,"msg":"request 912 timed out ..."}
 * binary:  log_header (16 bytes, plugins/common/payload.h) + the message.
 * msgpack: a map of the same five keys in the same order, ts and tmpl
 *          unsigned integers, level, svc and msg strings (libmsgpack's
 *          packer: shortest encodings). The message is written to a scratch
 *          buffer first, since its length, which precedes it, is known only
 *          at the end.
 * Messages contain only printable ASCII without '"' or '\', so the JSON
 * needs no escapes.
 *
 * Determinism: one xoshiro256** stream from host->seed, exactly four draws
 * per record plus one per template placeholder (a template's number of
 * placeholders is fixed): the same seed and requests give the same bytes
 * whatever the batch sizes.
 */
#include <math.h>

#include <observatory/stage.h>

#include "fmt.h"
#include "mpk.h"
#include "payload.h"
#include "rng.h"

#define FILLER_LEN 65536
#define MAX_SERVICES 1000

enum { FMT_JSON = 0, FMT_BINARY = 1, FMT_MSGPACK = 2 };

static const obs_param_desc gen_logs_params[] = {
    {.name = "format",
     .type = OBS_PARAM_STRING,
     .default_value = "json",
     .min = 1,
     .max = 8,
     .help = "json, binary (16-byte log_header + message) or msgpack"},
    {.name = "services",
     .type = OBS_PARAM_INT,
     .default_value = "20",
     .min = 1,
     .max = MAX_SERVICES,
     .help = "number of services (svc-00 ...)"},
    {.name = "debug",
     .type = OBS_PARAM_DOUBLE,
     .default_value = "0.25",
     .min = 0,
     .max = 1e9,
     .help = "relative weight of level debug"},
    {.name = "info",
     .type = OBS_PARAM_DOUBLE,
     .default_value = "0.6",
     .min = 0,
     .max = 1e9,
     .help = "relative weight of level info"},
    {.name = "warn",
     .type = OBS_PARAM_DOUBLE,
     .default_value = "0.1",
     .min = 0,
     .max = 1e9,
     .help = "relative weight of level warn"},
    {.name = "error",
     .type = OBS_PARAM_DOUBLE,
     .default_value = "0.05",
     .min = 0,
     .max = 1e9,
     .help = "relative weight of level error"},
    {.name = "size_median",
     .type = OBS_PARAM_INT,
     .default_value = "120",
     .min = 16,
     .max = 60000,
     .help = "median message length in bytes (log-normal)"},
    {.name = "size_sigma",
     .type = OBS_PARAM_DOUBLE,
     .default_value = "0.6",
     .min = 0,
     .max = 4,
     .help = "log-normal shape: the standard deviation of ln(length)"},
    {.name = "max_size",
     .type = OBS_PARAM_INT,
     .default_value = "4096",
     .min = 16,
     .max = 60000,
     .help = "longest message in bytes"},
};

/* '#' is a placeholder for a random number. */
static const char *const templates[] = {
    "user # logged in from 10.#.#.#",
    "GET /api/v1/items/# returned # in # ms",
    "cache miss for key k#, fetching from backend #",
    "connection to db-# lost, retrying in # ms",
    "processed batch # with # records",
    "disk usage at # percent on volume #",
    "request # timed out after # ms",
    "config reloaded, version #",
    "worker # started job # of queue #",
    "payment # declined: code #",
    "slow query # took # ms on shard #",
    "session # expired after # s",
};
#define N_TEMPLATES (sizeof templates / sizeof templates[0])

static const char *const words[] = {
    "alpha", "bravo", "node",  "pool",  "retry", "upstream", "token", "shard",   "lease",  "commit",
    "flush", "index", "queue", "batch", "epoch", "region",   "zone",  "replica", "leader", "span",
};

typedef struct gen_logs {
    const obs_host *host;
    rng rng;
    int format;
    uint32_t n_svc, max_size;
    uint64_t level_cdf[LOG_N_LEVELS]; /* thresholds on 53 random bits */
    double mu, sigma;
    char *filler;
    char *msg; /* msgpack: the message before it is packed (max_size + 64 bytes) */
} gen_logs;

static int gen_logs_init(const obs_host *host, const obs_params *params, void **instance)
{
    const obs_param_value *v[9];
    for (uint32_t i = 0; i < 9; i++)
        if (!(v[i] = obs_param_get(params, gen_logs_params[i].name)))
            return OBS_EINVAL;
    int format = strcmp(v[0]->s, "json") == 0      ? FMT_JSON
                 : strcmp(v[0]->s, "binary") == 0  ? FMT_BINARY
                 : strcmp(v[0]->s, "msgpack") == 0 ? FMT_MSGPACK
                                                   : -1;
    double wsum = v[2]->d + v[3]->d + v[4]->d + v[5]->d;
    if (format < 0 || !(wsum > 0) || v[6]->i > v[8]->i) {
        host->log(host, OBS_LOG_ERROR,
                  "gen_logs: format must be json, binary or msgpack, some level weight > 0, and "
                  "size_median <= max_size");
        return OBS_EINVAL;
    }
    gen_logs *g = host->alloc(host, sizeof *g);
    if (!g)
        return OBS_ENOMEM;
    memset(g, 0, sizeof *g);
    g->host = host;
    g->format = format;
    g->n_svc = (uint32_t)v[1]->i;
    double acc = 0;
    for (int l = 0; l < LOG_N_LEVELS; l++) {
        acc += v[2 + l]->d;
        g->level_cdf[l] = (uint64_t)ldexp(acc / wsum, 53);
    }
    g->level_cdf[LOG_N_LEVELS - 1] = 1ull << 53;
    g->mu = log((double)v[6]->i);
    g->sigma = v[7]->d;
    g->max_size = (uint32_t)v[8]->i;
    rng_seed(&g->rng, host->seed);
    g->filler = host->alloc(host, FILLER_LEN);
    g->msg = host->alloc(host, (size_t)g->max_size + 64);
    if (!g->filler || !g->msg) {
        host->free(host, g->filler);
        host->free(host, g->msg);
        host->free(host, g);
        return OBS_ENOMEM;
    }
    size_t n = 0;
    while (n < FILLER_LEN) {
        const char *w = words[rng_below(&g->rng, sizeof words / sizeof words[0])];
        size_t wl = strlen(w);
        g->filler[n++] = ' ';
        for (size_t i = 0; i < wl && n < FILLER_LEN; i++)
            g->filler[n++] = w[i];
    }
    *instance = g;
    return OBS_OK;
}

/* Writes one message at p (at least max_size + 64 bytes); returns its length. */
static size_t make_msg(gen_logs *g, char *p, uint32_t tmpl, uint64_t r_size1, uint64_t r_size2,
                       uint64_t r_fill)
{
    char *start = p;
    for (const char *t = templates[tmpl]; *t; t++) {
        if (*t == '#')
            p += fmt_u64(p, rng_next(&g->rng) % 100000);
        else
            *p++ = *t;
    }
    /* Log-normal length by Box-Muller from two draws. */
    double u1 = ((double)(r_size1 >> 11) + 1) * 0x1p-53, u2 = (double)(r_size2 >> 11) * 0x1p-53;
    double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
    double want = exp(g->mu + g->sigma * z);
    size_t len = (size_t)(p - start);
    size_t target = want < 16 ? 16 : want > g->max_size ? g->max_size : (size_t)want;
    if (target > len) {
        size_t pad = target - len, off = (size_t)(r_fill % (FILLER_LEN - pad));
        memcpy(p, g->filler + off, pad);
        p += pad;
    }
    return (size_t)(p - start);
}

/* A line's key: obs_key_hash of its service's name ("svc-007"), as every
 * format writes it (the binary header carries the number only). */
static uint32_t svc_key(uint32_t svc)
{
    char name[7] = {'s',
                    'v',
                    'c',
                    '-',
                    (char)('0' + svc / 100),
                    (char)('0' + svc / 10 % 10),
                    (char)('0' + svc % 10)};
    return obs_key_hash(name, sizeof name);
}

/* Emits exactly req->n_records lines, each keyed by its service. */
static int gen_logs_generate(void *instance, const obs_gen_request *req, obs_out *out)
{
    gen_logs *g = instance;
    for (uint32_t i = 0; i < req->n_records; i++) {
        uint64_t ts = req->t_intended_ns[i];
        uint8_t *dst = obs_out_reserve(out, (uint64_t)g->max_size + 256);
        if (!dst)
            return OBS_ENOMEM;
        uint64_t r0 = rng_next(&g->rng), r1 = rng_next(&g->rng);
        uint64_t r2 = rng_next(&g->rng), r3 = rng_next(&g->rng);
        uint8_t level = 0;
        while (level < LOG_N_LEVELS - 1 && (r0 >> 11) >= g->level_cdf[level])
            level++;
        uint32_t svc = (uint32_t)((r3 >> 32) % g->n_svc);
        uint32_t tmpl = (uint32_t)((r3 & 0xffffffffu) % N_TEMPLATES);
        size_t len;
        if (g->format == FMT_BINARY) {
            size_t m = make_msg(g, (char *)dst + LOG_HEADER_LEN, tmpl, r1, r2, r0 >> 20);
            log_header h = {.ts_ns = ts,
                            .msg_len = (uint16_t)m,
                            .service = (uint16_t)svc,
                            .tmpl = (uint16_t)tmpl,
                            .level = level,
                            .type = LOG_EVENT};
            memcpy(dst, &h, sizeof h);
            len = LOG_HEADER_LEN + m;
        } else if (g->format == FMT_MSGPACK) {
            size_t m = make_msg(g, g->msg, tmpl, r1, r2, r0 >> 20);
            char svc_name[7] = {'s',
                                'v',
                                'c',
                                '-',
                                (char)('0' + svc / 100),
                                (char)('0' + svc / 10 % 10),
                                (char)('0' + svc % 10)};
            mpk_sink s = {dst};
            msgpack_packer pk;
            mpk_packer_init(&pk, &s);
            msgpack_pack_map(&pk, 5);
            MPK_STR(&pk, "ts");
            msgpack_pack_uint64(&pk, ts);
            MPK_STR(&pk, "level");
            size_t ln = strlen(log_level_names[level]);
            msgpack_pack_str(&pk, ln);
            msgpack_pack_str_body(&pk, log_level_names[level], ln);
            MPK_STR(&pk, "svc");
            msgpack_pack_str(&pk, sizeof svc_name);
            msgpack_pack_str_body(&pk, svc_name, sizeof svc_name);
            MPK_STR(&pk, "tmpl");
            msgpack_pack_uint32(&pk, tmpl);
            MPK_STR(&pk, "msg");
            msgpack_pack_str(&pk, m);
            msgpack_pack_str_body(&pk, g->msg, m);
            len = (size_t)(s.p - dst);
        } else {
            char *p = (char *)dst;
            FMT_PUT(p, "{\"ts\":");
            p += fmt_u64(p, ts);
            FMT_PUT(p, ",\"level\":\"");
            size_t ln = strlen(log_level_names[level]);
            memcpy(p, log_level_names[level], ln);
            p += ln;
            FMT_PUT(p, "\",\"svc\":\"svc-");
            *p++ = (char)('0' + svc / 100);
            *p++ = (char)('0' + svc / 10 % 10);
            *p++ = (char)('0' + svc % 10);
            FMT_PUT(p, "\",\"tmpl\":");
            p += fmt_u64(p, tmpl);
            FMT_PUT(p, ",\"msg\":\"");
            p += make_msg(g, p, tmpl, r1, r2, r0 >> 20);
            FMT_PUT(p, "\"}");
            len = (size_t)(p - (char *)dst);
        }
        obs_out_commit(out, len, req->first_seq + i, ts);
        obs_out_set_key(out, svc_key(svc));
    }
    return OBS_OK;
}

static void gen_logs_fini(void *instance)
{
    gen_logs *g = instance;
    if (!g)
        return;
    g->host->free(g->host, g->filler);
    g->host->free(g->host, g->msg);
    g->host->free(g->host, g);
}

static const obs_stage_desc gen_logs_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_GENERATOR,
    .name = "gen_logs",
    .version = "1.0.0",
    .description = "seeded log events (JSON, binary or msgpack): level mix, templated messages, "
                   "log-normal sizes",
    .params = gen_logs_params,
    .n_params = sizeof gen_logs_params / sizeof gen_logs_params[0],
    .init = gen_logs_init,
    .generate = gen_logs_generate,
    .fini = gen_logs_fini,
};

OBS_DECLARE_STAGE(gen_logs_desc)
