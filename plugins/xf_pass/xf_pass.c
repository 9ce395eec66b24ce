/*
 * xf_pass - a transform that passes every record through untouched.
 *
 * Each input record is handed downstream by reference with obs_out_pass: no
 * byte is copied, so a pipeline gen -> xf_pass -> sink measures the cost the
 * host adds per transform stage (batch handoff, ring, accounting) and nothing
 * else. It has no state and no parameters.
 */
#include <observatory/stage.h>

/* The instance pointer must be non-NULL to look initialised; there is no
 * state, so it points at a constant. */
static const int xf_pass_token;

static int xf_pass_init(const obs_host *host, const obs_params *params, void **instance)
{
    (void)host;
    (void)params;
    *instance = (void *)&xf_pass_token;
    return OBS_OK;
}

/* Passes all of `in` to `out`. Returns 0 or OBS_ENOMEM when the host's
 * record bound is reached. */
static int xf_pass_process(void *instance, const obs_batch *in, obs_out *out)
{
    (void)instance;
    for (uint32_t i = 0; i < in->n_records; i++)
        if (obs_out_pass(out, &in->records[i]) != OBS_OK)
            return OBS_ENOMEM;
    return OBS_OK;
}

static int xf_pass_flush(void *instance, obs_out *out)
{
    (void)instance;
    (void)out;
    return OBS_OK;
}

static void xf_pass_fini(void *instance)
{
    (void)instance;
}

static const obs_stage_desc xf_pass_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "xf_pass",
    .version = "1.0.0",
    .description = "zero-copy pass-through: every record is passed downstream by reference",
    .params = NULL,
    .n_params = 0,
    .init = xf_pass_init,
    .process = xf_pass_process,
    .flush = xf_pass_flush,
    .fini = xf_pass_fini,
};

OBS_DECLARE_STAGE(xf_pass_desc)
