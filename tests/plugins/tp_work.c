/*
 * tp_work.c - a pass-through transform whose cost is a parameter, for the
 * experiment tests: for every record it does `units` rounds of integer busy
 * work (a xorshift chain the compiler cannot fold), plus a seeded random
 * `noise` fraction more or less, then passes the record on unchanged.
 * Two instances with the same parameters cost the same on average; units
 * 220 against 200 costs 10% more. `delay_us` adds a fixed wait to every
 * batch (busy, on the monotonic clock, so it is exact to a microsecond and
 * needs no timer wake-up): a per-batch latency such as a synchronous call,
 * which shifts every record's end-to-end latency by the same amount.
 * tests/bench/bench_ab.c uses it to build a variant whose p99 latency is a
 * known percentage higher.
 */
#include <observatory/stage.h>

enum { P_UNITS, P_NOISE, P_DELAY_US };

static const obs_param_desc work_params[] = {
    [P_UNITS] = {.name = "units",
                 .type = OBS_PARAM_INT,
                 .default_value = "200",
                 .min = 0,
                 .max = 1000000,
                 .help = "rounds of busy work per record"},
    [P_NOISE] = {.name = "noise",
                 .type = OBS_PARAM_DOUBLE,
                 .default_value = "0.05",
                 .min = 0,
                 .max = 1,
                 .help = "relative random variation of the work per batch"},
    [P_DELAY_US] = {.name = "delay_us",
                    .type = OBS_PARAM_DOUBLE,
                    .default_value = "0",
                    .min = 0,
                    .max = 1000000,
                    .help = "busy wait per batch, in microseconds (a fixed per-batch latency)"},
};

typedef struct work {
    const obs_host *host;
    uint64_t units;
    double noise;
    uint64_t delay_ns;
    uint64_t rng;
    volatile uint64_t sink;
} work;

static uint64_t next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int w_init(const obs_host *host, const obs_params *params, void **instance)
{
    work *w = host->alloc(host, sizeof *w);
    if (!w)
        return OBS_ENOMEM;
    w->host = host;
    w->units = (uint64_t)params->values[P_UNITS].i;
    w->noise = params->values[P_NOISE].d;
    w->delay_ns = (uint64_t)(params->values[P_DELAY_US].d * 1000.0 + 0.5);
    w->rng = host->seed | 1;
    w->sink = 0;
    *instance = w;
    return OBS_OK;
}

static int w_process(void *instance, const obs_batch *in, obs_out *out)
{
    work *w = instance;
    /* One noise draw per batch: uniform in [1 - noise, 1 + noise]. */
    double f = 1.0 + w->noise * (2.0 * (double)(next(&w->rng) >> 11) / 9007199254740992.0 - 1.0);
    uint64_t rounds = (uint64_t)((double)w->units * f);
    uint64_t x = w->sink | 1;
    for (uint32_t i = 0; i < in->n_records; i++) {
        for (uint64_t k = 0; k < rounds; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        if (obs_out_pass(out, &in->records[i]) != OBS_OK)
            return OBS_ENOMEM;
    }
    w->sink = x;
    if (w->delay_ns) {
        uint64_t until = w->host->now_ns() + w->delay_ns;
        while (w->host->now_ns() < until)
            ;
    }
    return OBS_OK;
}

static void w_fini(void *instance)
{
    work *w = instance;
    w->host->free(w->host, w);
}

static const obs_stage_desc work_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "tp_work",
    .version = "1.0.0",
    .description = "pass-through with a parameterised amount of busy work",
    .params = work_params,
    .n_params = sizeof(work_params) / sizeof(work_params[0]),
    .init = w_init,
    .process = w_process,
    .fini = w_fini,
};

OBS_DECLARE_STAGE(work_desc)
