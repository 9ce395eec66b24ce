/*
 * tp_burn.c - a transform that burns CPU in two functions in a known 3:1
 * ratio, for the profiler's accuracy and hot-swap tests.
 *
 * Each process() call runs tp_burn_heavy for 3 * units loop iterations and
 * tp_burn_light for `units` iterations of the same loop body, so thread CPU
 * time splits about 75% / 25% between them. About: on a busy machine a
 * sibling hyperthread or a frequency change slows one loop more than the
 * other, so the plugin also measures the thread CPU time each function
 * really used (tp_burn_cpu_ns, exported for the profiler tests) and the
 * tests compare the samples with that, not with 3:1. One call (heavy + light) lasts tens
 * of microseconds, far below the 4 ms kernel tick at which CPU timers
 * fire, so sampling cannot alias with the call pattern. Records pass
 * through untouched when there is an output to pass them to. Built twice:
 * tp_burn.so (1.0.0) and tp_burn-2.0.0.so (2.0.0), the same code in two
 * files, like two versions of a plugin during a hot swap.
 */
#include <observatory/stage.h>

#include <time.h>

#ifndef TP_BURN_VERSION
#define TP_BURN_VERSION "1.0.0"
#endif

/* noipa: never inlined, cloned or merged with its identical twin (gcc's
 * identical code folding would make the two functions one symbol). */
#if defined(__clang__)
#define TP_NOIPA __attribute__((noinline, optnone))
#else
#define TP_NOIPA __attribute__((noipa))
#endif

static volatile uint64_t tp_burn_sink;

TP_NOIPA static uint64_t tp_burn_heavy(uint64_t n)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (uint64_t i = 0; i < n; i++)
        x = (x ^ (x >> 29)) * 0xbf58476d1ce4e5b9ULL + i;
    return x;
}

TP_NOIPA static uint64_t tp_burn_light(uint64_t n)
{
    uint64_t x = 0x94d049bb133111ebULL;
    for (uint64_t i = 0; i < n; i++)
        x = (x ^ (x >> 29)) * 0xbf58476d1ce4e5b9ULL + i;
    return x;
}

/* Thread CPU nanoseconds used in each function, summed over every call
 * in the process: [0] heavy, [1] light, [2] an empty interval (what the
 * clock reads at either end add to each of the other two). */
static uint64_t tp_burn_ns[3];

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Not part of the stage ABI: the profiler tests find it with dlsym.
 * out[0] and out[1] are the CPU time in tp_burn_heavy and tp_burn_light
 * with the clock reads' own cost taken out. */
__attribute__((visibility("default"))) void tp_burn_cpu_ns(uint64_t out[2])
{
    uint64_t clock = __atomic_load_n(&tp_burn_ns[2], __ATOMIC_RELAXED);
    for (int i = 0; i < 2; i++) {
        uint64_t t = __atomic_load_n(&tp_burn_ns[i], __ATOMIC_RELAXED);
        out[i] = t > clock ? t - clock : 0;
    }
}

static const obs_param_desc burn_params[] = {
    {.name = "units",
     .type = OBS_PARAM_INT,
     .default_value = "10000",
     .min = 1,
     .max = 1e9,
     .help = "loop iterations of the light function per call (the heavy one runs 3x as many)"},
};

static uint64_t units_default = 10000;

typedef struct burn {
    const obs_host *host;
    uint64_t units;
} burn;

static int burn_init(const obs_host *host, const obs_params *params, void **instance)
{
    burn *b = host->alloc(host, sizeof *b);
    if (!b)
        return OBS_ENOMEM;
    b->host = host;
    b->units = params->n_values ? (uint64_t)params->values[0].i : units_default;
    *instance = b;
    return OBS_OK;
}

/* instance may be NULL (tests call process directly): default units. */
static int burn_process(void *instance, const obs_batch *in, obs_out *out)
{
    uint64_t units = instance ? ((burn *)instance)->units : units_default;
    uint64_t t0 = thread_cpu_ns();
    uint64_t t1 = thread_cpu_ns();
    tp_burn_sink += tp_burn_heavy(3 * units);
    uint64_t t2 = thread_cpu_ns();
    tp_burn_sink += tp_burn_light(units);
    uint64_t t3 = thread_cpu_ns();
    __atomic_fetch_add(&tp_burn_ns[0], t2 - t1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&tp_burn_ns[1], t3 - t2, __ATOMIC_RELAXED);
    __atomic_fetch_add(&tp_burn_ns[2], t1 - t0, __ATOMIC_RELAXED);
    if (in && out)
        for (uint32_t i = 0; i < in->n_records; i++) {
            int rc = obs_out_pass(out, &in->records[i]);
            if (rc)
                return rc;
        }
    return OBS_OK;
}

static void burn_fini(void *instance)
{
    burn *b = instance;
    b->host->free(b->host, b);
}

static const obs_stage_desc desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "tp_burn",
    .version = TP_BURN_VERSION,
    .description = "burns CPU in tp_burn_heavy and tp_burn_light, 3:1",
    .params = burn_params,
    .n_params = sizeof burn_params / sizeof burn_params[0],
    .init = burn_init,
    .process = burn_process,
    .fini = burn_fini,
};

OBS_DECLARE_STAGE(desc)
