/*
 * tp_hang.c - a transform that stops returning: after `after` batches its
 * process() never returns (it sleeps in a loop), like a plugin caught in
 * an endless loop or a lost lock. The fault tests use it for the watchdog
 * (run.callback_warn), the drain timeout (run.drain_timeout) and the second
 * SIGTERM.
 */
#include <observatory/stage.h>

#include <time.h>

static const obs_param_desc hang_params[] = {
    {.name = "after", .type = OBS_PARAM_INT, .default_value = "10", .min = 0, .max = 1e9,
     .help = "batches passed through before process() hangs"},
};

typedef struct hang {
    const obs_host *host;
    uint64_t after, seen;
} hang;

static int hang_init(const obs_host *host, const obs_params *params, void **instance)
{
    hang *h = host->alloc(host, sizeof *h);
    if (!h)
        return OBS_ENOMEM;
    h->host = host;
    h->after = (uint64_t)params->values[0].i;
    h->seen = 0;
    *instance = h;
    return OBS_OK;
}

static int hang_process(void *instance, const obs_batch *in, obs_out *out)
{
    hang *h = instance;
    if (h->seen++ >= h->after)
        for (;;) {
            struct timespec ts = {0, 50000000};
            nanosleep(&ts, NULL);
        }
    for (uint32_t i = 0; i < in->n_records; i++) {
        int rc = obs_out_pass(out, &in->records[i]);
        if (rc)
            return rc;
    }
    return OBS_OK;
}

static void hang_fini(void *instance)
{
    hang *h = instance;
    h->host->free(h->host, h);
}

static const obs_stage_desc desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "tp_hang",
    .version = "1.0.0",
    .description = "a transform whose process() stops returning after some batches",
    .params = hang_params,
    .n_params = 1,
    .init = hang_init,
    .process = hang_process,
    .fini = hang_fini,
};

OBS_DECLARE_STAGE(desc)
