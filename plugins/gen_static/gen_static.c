/*
 * gen_static - generator of fixed-size records with deterministic content,
 * for measuring the host itself (rings, batches, pools) rather than a stage.
 *
 * At init it fills a payload of `size` bytes from the stage seed; each
 * record is that payload copied with memcpy, with the record's seq stamped
 * little-endian into the first 8 bytes (when size >= 8 and stamp_seq is
 * true) so records stay distinguishable. The per-record cost is a reserve,
 * one memcpy and a commit: the least a generator can do.
 */
#include <stdbool.h>

#include <observatory/stage.h>

#include "rng.h"

static const obs_param_desc gen_static_params[] = {
    {.name = "size", .type = OBS_PARAM_INT, .default_value = "16", .min = 0, .max = 1048576,
     .help = "bytes per record"},
    {.name = "stamp_seq", .type = OBS_PARAM_BOOL, .default_value = "true", .min = 1, .max = 0,
     .help = "write the record's seq (little-endian u64) into its first 8 bytes"},
};

typedef struct gen_static {
    const obs_host *host;
    uint32_t size;
    bool stamp;
    uint8_t payload[]; /* size bytes */
} gen_static;

/* Creates an instance holding the precomputed payload (host->alloc). */
static int gen_static_init(const obs_host *host, const obs_params *params, void **instance)
{
    const obs_param_value *p_size = obs_param_get(params, "size");
    const obs_param_value *p_stamp = obs_param_get(params, "stamp_seq");
    if (!p_size || !p_stamp || p_size->i < 0 || p_size->i > 1048576) {
        host->log(host, OBS_LOG_ERROR, "gen_static: invalid parameters");
        return OBS_EINVAL;
    }
    gen_static *g = host->alloc(host, sizeof *g + (size_t)p_size->i);
    if (!g)
        return OBS_ENOMEM;
    g->host = host;
    g->size = (uint32_t)p_size->i;
    g->stamp = p_stamp->i != 0 && g->size >= 8;
    uint64_t sm = host->seed;
    for (uint32_t i = 0; i < g->size; i += 8) {
        uint64_t v = rng_splitmix64(&sm);
        memcpy(g->payload + i, &v, g->size - i < 8 ? g->size - i : 8);
    }
    *instance = g;
    return OBS_OK;
}

/* Emits exactly req->n_records copies of the payload. Returns 0 or
 * OBS_ENOMEM when the host's output bound is reached. */
static int gen_static_generate(void *instance, const obs_gen_request *req, obs_out *out)
{
    gen_static *g = instance;
    for (uint32_t i = 0; i < req->n_records; i++) {
        uint8_t *dst = obs_out_reserve(out, g->size);
        if (!dst)
            return OBS_ENOMEM;
        uint64_t seq = req->first_seq + i;
        if (g->size)
            memcpy(dst, g->payload, g->size);
        if (g->stamp)
            memcpy(dst, &seq, sizeof seq);
        obs_out_commit(out, g->size, seq, req->t_intended_ns[i]);
    }
    return OBS_OK;
}

static int gen_static_flush(void *instance, obs_out *out)
{
    (void)instance;
    (void)out;
    return OBS_OK;
}

static void gen_static_fini(void *instance)
{
    gen_static *g = instance;
    if (g)
        g->host->free(g->host, g);
}

static const obs_stage_desc gen_static_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_GENERATOR,
    .name = "gen_static",
    .version = "1.0.0",
    .description = "fixed-size records with deterministic content, to measure the host itself",
    .params = gen_static_params,
    .n_params = sizeof gen_static_params / sizeof gen_static_params[0],
    .init = gen_static_init,
    .generate = gen_static_generate,
    .flush = gen_static_flush,
    .fini = gen_static_fini,
};

OBS_DECLARE_STAGE(gen_static_desc)
