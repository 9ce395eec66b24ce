/*
 * bench_load.c - the load generator's own figures: how punctual
 * the open-loop schedule is, what it costs, and how fast each payload family
 * can be produced.
 *
 * 1. Send lag and generator CPU at a given rate (default 100,000/s): the
 *    real pipeline gen_static (16 B) -> sink_null with a constant load,
 *    uniform and Poisson arrivals, batch 1 and batch 256 with several
 *    max_batch_delay values (--delays), with normal scheduling and, where
 *    the process may, with run.realtime_priority (SCHED_FIFO). The
 *    generator's lag histogram holds, per record, (end of the generate()
 *    call that produced it) - (its intended time). With batch 1 that is pure
 *    scheduling jitter; with batch 256 it also includes the deliberate wait
 *    of up to max_batch_delay for the batch to fill. Generator CPU = the
 *    generator thread's CPU time / the run's wall time. The ring holds 1024
 *    batches, so a sink that is descheduled for a while does not push back
 *    on the generator: this measures the sender, not the pipeline.
 *    Baseline, alternating with it in the same invocation: the timer floor,
 *    a loop on this thread that sleeps to the same wake-up times (same
 *    schedule, same batching rule, same timer slack and priority) and does
 *    nothing else. Its lag and CPU are what any sleeping sender pays on this
 *    machine for that wake-up pattern; the generator is reported as ratios
 *    to it (medians of per-pair ratios).
 * 2. Maximum rate per core of each payload family and format: generate()
 *    called directly in a loop on this thread (batches of 256), records per
 *    second of thread CPU; and the matching transform's process() on those
 *    records.
 * Every figure is the median of --runs runs (default 5); the command line is
 * printed first.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "bench_util.h"
#include "config/config.h"
#include "measure/histogram.h"
#include "engine/pipeline.h"
#include "engine/schedule.h"

typedef struct options {
    double rate, seconds;
    int runs;
    uint64_t delays_ns[6];
    int n_delays;
    uint32_t rt;
    const char *plugin_dir;
    uint32_t records;
} options;

/* ------------------------------------------------- 1. jitter and CPU */

typedef struct lag_case {
    uint32_t batch;
    uint64_t delay_ns; /* max_batch_delay */
    const char *arrival;
    uint32_t rt; /* run.realtime_priority, 0 = normal scheduling */
} lag_case;

typedef struct lag_sample {
    double p50_us, p99_us, p999_us, cpu_pct, late_pct, wakes_per_s;
} lag_sample;

static void lag_from_histogram(const histogram *h, lag_sample *ls)
{
    ls->p50_us = (double)histogram_quantile_ns(h, 0.50) / 1e3;
    ls->p99_us = (double)histogram_quantile_ns(h, 0.99) / 1e3;
    ls->p999_us = (double)histogram_quantile_ns(h, 0.999) / 1e3;
}

static int run_pipeline(const options *o, const lag_case *c, lag_sample *ls)
{
    char yaml[2048], err[2048];
    snprintf(yaml, sizeof yaml,
             "pipeline: bench-load\nbatch_size: %u\nring_capacity: 1024\n"
             "max_batch_delay: %" PRIu64 "ns\n"
             "run: {duration: %.3fs, seed: 1, realtime_priority: %u}\n"
             "load:\n  - {shape: constant, rate: %.0f, arrival: %s}\n"
             "stages:\n  - {name: gen, plugin: gen_static, params: {size: 16}}\n"
             "  - {name: sink, plugin: sink_null}\n",
             c->batch, c->delay_ns, o->seconds, c->rt, o->rate, c->arrival);
    obs_config *cfg = NULL;
    pipeline *p = NULL;
    int ret = -1;
    if (config_load_string("bench-load.yaml", yaml, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "obs-bench-load: %s\n", err);
        return -1;
    }
    char *dirs[1] = {(char *)o->plugin_dir};
    if (pipeline_create(cfg, dirs, 1, &p, err, sizeof err) != 0) {
        fprintf(stderr, "obs-bench-load: %s\n", err);
        goto out;
    }
    if (pipeline_run(p, NULL, NULL) != 0)
        goto out;
    stage *g = &p->stages[0];
    double wall = (double)(p->t_end_ns - p->t_start_ns);
    lag_from_histogram(g->lag, ls);
    ls->cpu_pct = 100.0 * (double)atomic_load(&g->stats.cpu_ns) / wall;
    uint64_t n = atomic_load(&g->stats.records_out);
    ls->late_pct = n ? 100.0 * (double)atomic_load(&g->stats.late_records) / (double)n : 0;
    ls->wakes_per_s = 0; /* the generator does not count its wake-ups */
    ret = 0;
out:
    pipeline_destroy(p);
    config_free(cfg);
    return ret;
}

static void sleep_until_ns(uint64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000u), .tv_nsec = (long)(t % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* The timer floor: the same schedule and the same wake-up rule as the
 * generator (wake when a batch is full or its first record has waited
 * max_batch_delay), on this thread, with the same timer slack, doing nothing
 * else. Its lag is what any sleeping generator pays on this machine at this
 * wake-up pattern; its CPU is the cost of the wake-ups alone. */
static int run_floor(const options *o, const lag_case *c, lag_sample *ls)
{
    cfg_load_phase ph = {.shape = CFG_SHAPE_CONSTANT,
                         .rate = o->rate,
                         .arrival = strcmp(c->arrival, "poisson") ? CFG_ARRIVAL_UNIFORM
                                                                  : CFG_ARRIVAL_POISSON};
    histogram *h = calloc(1, sizeof *h);
    uint64_t *times = malloc(c->batch * sizeof *times);
    if (!h || !times) {
        free(h), free(times);
        return -1;
    }
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    struct sched_param rt = {.sched_priority = (int)c->rt}, normal = {0};
    if (c->rt && pthread_setschedparam(pthread_self(), SCHED_FIFO, &rt) != 0)
        return -1;
    uint64_t start = bench_now_ns(), end = start + (uint64_t)(o->seconds * 1e9);
    uint64_t c0 = bench_thread_cpu_ns(), wakes = 0, n = 0, late = 0;
    schedule sc;
    schedule_init(&sc, &ph, 1, 1, start);
    for (uint64_t now = start; now < end;) {
        uint64_t t_first = schedule_peek(&sc, now);
        if (t_first > now) {
            uint64_t wake = t_first + c->delay_ns;
            schedule look = sc;
            if (schedule_fill(&look, wake, times, c->batch) == c->batch &&
                times[c->batch - 1] < wake)
                wake = times[c->batch - 1];
            sleep_until_ns(wake);
            wakes++;
        }
        now = bench_now_ns();
        uint32_t k = schedule_fill(&sc, now, times, c->batch);
        for (uint32_t i = 0; i < k; i++) {
            uint64_t lag = now - times[i];
            histogram_record(h, lag);
            late += lag > 1000000u;
        }
        n += k;
    }
    double wall = (double)(bench_now_ns() - start);
    lag_from_histogram(h, ls);
    ls->cpu_pct = 100.0 * (double)(bench_thread_cpu_ns() - c0) / wall;
    ls->late_pct = n ? 100.0 * (double)late / (double)n : 0;
    ls->wakes_per_s = (double)wakes / (wall / 1e9);
    prctl(PR_SET_TIMERSLACK, 0UL, 0UL, 0UL, 0UL);
    if (c->rt)
        pthread_setschedparam(pthread_self(), SCHED_OTHER, &normal);
    free(h);
    free(times);
    return 0;
}

static void print_lag_row(const char *who, const lag_case *c, double v[6][16], int n)
{
    char delay[32];
    if (c->batch == 1)
        snprintf(delay, sizeof delay, "-");
    else
        snprintf(delay, sizeof delay, "%" PRIu64 "us", c->delay_ns / 1000);
    printf("%-6u %-7s %-8s %-3s %-9s %9.1f %9.1f %9.1f %8.2f %8.3f", c->batch, delay, c->arrival,
           c->rt ? "rt" : "-", who, bench_median(v[0], (size_t)n), bench_median(v[1], (size_t)n),
           bench_median(v[2], (size_t)n), bench_median(v[3], (size_t)n),
           bench_median(v[4], (size_t)n));
}

static void bench_jitter(const options *o)
{
    /* Realtime rows only where this process may use SCHED_FIFO. */
    struct sched_param probe = {.sched_priority = (int)o->rt}, normal = {0};
    int modes = 1;
    if (o->rt && pthread_setschedparam(pthread_self(), SCHED_FIFO, &probe) == 0) {
        pthread_setschedparam(pthread_self(), SCHED_OTHER, &normal);
        modes = 2;
    }
    lag_case cases[32];
    int n_cases = 0;
    for (int m = 0; m < modes; m++) {
        uint32_t rt = m ? o->rt : 0;
        /* Batch 1 only at normal priority: at this rate it can exceed what
         * a core can wake for, and a SCHED_FIFO thread that never catches
         * up would hold a core for the whole run. */
        if (!rt)
            cases[n_cases++] = (lag_case){1, 0, "uniform", rt};
        for (int d = 0; d < o->n_delays; d++) {
            cases[n_cases++] = (lag_case){256, o->delays_ns[d], "uniform", rt};
            cases[n_cases++] = (lag_case){256, o->delays_ns[d], "poisson", rt};
        }
    }
    printf("\n# 1. send lag (end of generate() - intended time) and generator CPU at %.0f "
           "records/s, %.1f s runs, median of %d;\n"
           "#    'floor' = the same wake-ups with nothing else to do (this machine's timer "
           "floor), run alternately in the same invocation\n",
           o->rate, o->seconds, o->runs);
    if (o->rt && modes == 1)
        printf("#    (no 'rt' rows: SCHED_FIFO is not permitted to this process)\n");
    printf("%-6s %-7s %-8s %-3s %-9s %9s %9s %9s %8s %8s %9s %9s\n", "batch", "delay", "arrival",
           "rt", "who", "p50_us", "p99_us", "p99.9_us", "cpu_%", "late_%", "p99/floor",
           "cpu/floor");
    for (int c = 0; c < n_cases; c++) {
        double g[6][16], f[6][16], r99[16], rcpu[16], wakes[16];
        int n = 0;
        for (int r = 0; r < o->runs && r < 16; r++) {
            lag_sample gs, fs;
            /* Alternate which goes first, so drift of the machine during a
             * pair does not always favour the same side. */
            if (r % 2) {
                if (run_pipeline(o, &cases[c], &gs) != 0 || run_floor(o, &cases[c], &fs) != 0)
                    exit(1);
            } else if (run_floor(o, &cases[c], &fs) != 0 || run_pipeline(o, &cases[c], &gs) != 0)
                exit(1);
            g[0][n] = gs.p50_us, g[1][n] = gs.p99_us, g[2][n] = gs.p999_us;
            g[3][n] = gs.cpu_pct, g[4][n] = gs.late_pct;
            f[0][n] = fs.p50_us, f[1][n] = fs.p99_us, f[2][n] = fs.p999_us;
            f[3][n] = fs.cpu_pct, f[4][n] = fs.late_pct;
            r99[n] = fs.p99_us > 0 ? gs.p99_us / fs.p99_us : 0;
            rcpu[n] = fs.cpu_pct > 0 ? gs.cpu_pct / fs.cpu_pct : 0;
            wakes[n] = fs.wakes_per_s;
            n++;
        }
        print_lag_row("floor", &cases[c], f, n);
        printf(" %9s %9s   (%.0f wake-ups/s)\n", "", "", bench_median(wakes, (size_t)n));
        print_lag_row("generator", &cases[c], g, n);
        printf(" %9.2f %9.2f\n", bench_median(r99, (size_t)n), bench_median(rcpu, (size_t)n));
    }
    printf("# batch 1: the lag is scheduling jitter only; batch 256: it also includes the\n"
           "# deliberate wait of up to max_batch_delay for more records of the batch.\n"
           "# rt: run.realtime_priority %u (SCHED_FIFO) for the generator and the floor.\n"
           "# The ratios are medians of per-pair ratios; late = more than 1 ms after the "
           "intended time.\n",
           o->rt);
}

/* ------------------------------- 0. the schedule's own cost per record */

static void bench_schedule(const options *o)
{
    static const double steps[] = {1000, 5000, 20000, 100000};
    const cfg_load_phase phases[] = {
        {.shape = CFG_SHAPE_CONSTANT, .rate = 1e6, .arrival = CFG_ARRIVAL_UNIFORM},
        {.shape = CFG_SHAPE_POISSON, .rate = 1e6, .arrival = CFG_ARRIVAL_POISSON},
        {.shape = CFG_SHAPE_RAMP,
         .from = 0,
         .to = 2e6,
         .duration_ns = 100000000000ull,
         .arrival = CFG_ARRIVAL_POISSON,
         .burst_factor = 5,
         .burst_ns = 500000000,
         .gap_ns = 9500000000ull,
         .burst_dist = CFG_DIST_PARETO,
         .alpha = 1.5},
        {.shape = CFG_SHAPE_STEPS,
         .steps = (double *)steps,
         .n_steps = 4,
         .step_ns = 1000000000,
         .arrival = CFG_ARRIVAL_UNIFORM},
        {.shape = CFG_SHAPE_SINE,
         .rate = 1e6,
         .amplitude = 0.9,
         .period_ns = 1000000000,
         .arrival = CFG_ARRIVAL_UNIFORM},
    };
    static const char *const names[] = {"constant", "poisson", "ramp+poisson+pareto bursts",
                                        "steps", "sine"};
    const uint32_t n = 2000000;
    uint64_t t[256];
    printf("\n# 0. schedule_fill() cost per intended time, %u times per run, median of %d\n", n,
           o->runs);
    printf("%-28s %10s\n", "shape", "ns/record");
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++) {
        double v[16];
        int runs = o->runs < 16 ? o->runs : 16;
        for (int r = 0; r < runs; r++) {
            schedule sc;
            schedule_init(&sc, &phases[i], 1, 1, 0);
            uint64_t got = 0, c0 = bench_thread_cpu_ns();
            while (got < n)
                got += schedule_fill(&sc, UINT64_MAX - 1, t, 256);
            v[r] = (double)(bench_thread_cpu_ns() - c0) / (double)got;
        }
        printf("%-28s %10.1f\n", names[i], bench_median(v, (size_t)runs));
    }
}

/* ----------------------------------------- 2. payload rate per core */

typedef struct inst {
    obs_host host;
    const obs_stage_desc *desc;
    void *instance;
    obs_param_value values[16];
} inst;

static void h_log(const obs_host *h, int level, const char *fmt, ...)
{
    (void)h, (void)level, (void)fmt;
}
static int h_counter_register(const obs_host *h, const char *n, int k, const char *help)
{
    (void)h, (void)n, (void)k, (void)help;
    return 0;
}
static void h_counter_add(const obs_host *h, int id, uint64_t d)
{
    (void)h, (void)id, (void)d;
}
static void *h_alloc(const obs_host *h, size_t n)
{
    (void)h;
    return malloc(n ? n : 1);
}
static void *h_realloc(const obs_host *h, void *p, size_t n)
{
    (void)h;
    return realloc(p, n ? n : 1);
}
static void h_free(const obs_host *h, void *p)
{
    (void)h;
    free(p);
}

/* Opens plugin `name` with its defaults except "k=v" overrides. */
static inst *inst_open(const options *o, const char *name, const char *const *ov)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.so", o->plugin_dir, name);
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "obs-bench-load: %s\n", dlerror());
        exit(1);
    }
    inst *s = calloc(1, sizeof *s);
    s->desc = ((obs_stage_entry_fn)dlsym(dl, OBS_STAGE_ENTRY_NAME))();
    for (uint32_t i = 0; i < s->desc->n_params && i < 16; i++) {
        const obs_param_desc *pd = &s->desc->params[i];
        const char *t = pd->default_value;
        for (const char *const *x = ov; x && *x; x++)
            if (strncmp(*x, pd->name, strlen(pd->name)) == 0 && (*x)[strlen(pd->name)] == '=')
                t = *x + strlen(pd->name) + 1;
        s->values[i] = (obs_param_value){.name = pd->name,
                                         .type = pd->type,
                                         .s = t,
                                         .d = strtod(t, NULL),
                                         .i = strtoll(t, NULL, 10)};
    }
    obs_params prm = {.values = s->values, .n_values = s->desc->n_params};
    s->host = (obs_host){.struct_size = sizeof s->host,
                         .abi_major = OBS_ABI_MAJOR,
                         .abi_minor = OBS_ABI_MINOR,
                         .stage_name = name,
                         .seed = 1,
                         .batch_size = 256,
                         .log = h_log,
                         .counter_register = h_counter_register,
                         .counter_add = h_counter_add,
                         .now_ns = bench_now_ns,
                         .alloc = h_alloc,
                         .realloc = h_realloc,
                         .free = h_free};
    if (s->desc->init(&s->host, &prm, &s->instance) != 0) {
        fprintf(stderr, "obs-bench-load: init %s failed\n", name);
        exit(1);
    }
    return s;
}

static int out_grow(obs_out *o, uint32_t n_records, uint64_t n_bytes)
{
    while (o->cap_records - o->n_records < n_records) {
        o->cap_records = o->cap_records ? 2 * o->cap_records : 256;
        o->records = realloc(o->records, o->cap_records * sizeof *o->records);
    }
    if (o->arena_cap - o->arena_used < n_bytes) {
        uintptr_t old = (uintptr_t)o->arena;
        uint64_t cap = o->arena_cap ? o->arena_cap : 1 << 16;
        while (cap - o->arena_used < n_bytes)
            cap *= 2;
        o->arena = realloc(o->arena, cap);
        for (uint32_t i = 0; i < o->n_records; i++)
            if ((uintptr_t)o->records[i].data >= old &&
                (uintptr_t)o->records[i].data <= old + o->arena_used)
                o->records[i].data = o->arena + ((uintptr_t)o->records[i].data - old);
        o->arena_cap = cap;
    }
    return o->records && o->arena ? 0 : OBS_ENOMEM;
}

static void bench_payloads(const options *o)
{
    static const struct {
        const char *gen, *fmt, *xf;
    } fam[] = {
        {"gen_market", "json", "xf_json_fast"}, {"gen_market", "binary", NULL},
        {"gen_market", "msgpack", NULL},        {"gen_iot", "json", "xf_iot"},
        {"gen_iot", "binary", "xf_iot"},        {"gen_iot", "msgpack", "xf_iot"},
        {"gen_logs", "json", "xf_logs"},        {"gen_logs", "binary", "xf_logs"},
        {"gen_logs", "msgpack", "xf_logs"},
    };
    printf("\n# 2. maximum rate per core (thread CPU), %u records per run in batches of 256, "
           "default parameters, median of %d\n",
           o->records, o->runs);
    printf("%-11s %-7s %12s %10s %12s %14s\n", "generator", "format", "gen_rec/s", "bytes/rec",
           "transform", "xf_rec/s");
    const uint32_t n = o->records;
    uint64_t *t = malloc(256 * sizeof *t);
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        char fmt[32];
        snprintf(fmt, sizeof fmt, "format=%s", fam[f].fmt);
        const char *ov[] = {fmt, NULL};
        double g_rate[16], x_rate[16], bytes = 0;
        int runs = o->runs < 16 ? o->runs : 16;
        for (int r = 0; r < runs; r++) {
            inst *g = inst_open(o, fam[f].gen, ov);
            obs_out out = {.grow = out_grow};
            uint64_t c0 = bench_thread_cpu_ns();
            for (uint32_t first = 0; first < n; first += 256) {
                uint32_t k = n - first < 256 ? n - first : 256;
                for (uint32_t i = 0; i < k; i++)
                    t[i] = 1000000000ull + (uint64_t)(first + i) * 10000u;
                obs_gen_request req = {.n_records = k, .first_seq = first, .t_intended_ns = t};
                if (g->desc->generate(g->instance, &req, &out) != 0)
                    exit(1);
            }
            uint64_t c1 = bench_thread_cpu_ns();
            g_rate[r] = (double)n / ((double)(c1 - c0) / 1e9);
            bytes = (double)out.arena_used / n;
            x_rate[r] = 0;
            if (fam[f].xf) {
                inst *x = inst_open(o, fam[f].xf, NULL);
                obs_out xo = {.grow = out_grow};
                uint64_t x0 = bench_thread_cpu_ns();
                for (uint32_t first = 0; first < n; first += 256) {
                    uint32_t k = n - first < 256 ? n - first : 256;
                    obs_batch b = {.records = out.records + first, .n_records = k};
                    xo.n_records = 0, xo.arena_used = 0, xo.n_passed = 0;
                    x->desc->process(x->instance, &b, &xo);
                }
                x_rate[r] = (double)n / ((double)(bench_thread_cpu_ns() - x0) / 1e9);
                x->desc->fini(x->instance);
                free(xo.records), free(xo.arena), free(x);
            }
            g->desc->fini(g->instance);
            free(out.records), free(out.arena), free(g);
        }
        printf("%-11s %-7s %12.0f %10.1f %12s %14.0f\n", fam[f].gen, fam[f].fmt,
               bench_median(g_rate, (size_t)runs), bytes, fam[f].xf ? fam[f].xf : "-",
               fam[f].xf ? bench_median(x_rate, (size_t)runs) : 0.0);
    }
    free(t);
}

int main(int argc, char **argv)
{
    options o = {.rate = 100000,
                 .seconds = 3,
                 .runs = 5,
                 .plugin_dir = OBS_BENCH_PLUGIN_DIR,
                 .records = 200000,
                 .delays_ns = {200000, 50000, 20000},
                 .n_delays = 3,
                 .rt = 10};
    int skip_jitter = 0, skip_payloads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rate") && i + 1 < argc)
            o.rate = atof(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            o.seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            o.runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--records") && i + 1 < argc)
            o.records = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--plugin-dir") && i + 1 < argc)
            o.plugin_dir = argv[++i];
        else if (!strcmp(argv[i], "--delays") && i + 1 < argc) {
            uint32_t us[6];
            o.n_delays = bench_parse_list(argv[++i], us, 6);
            if (o.n_delays < 1)
                return 2;
            for (int d = 0; d < o.n_delays; d++)
                o.delays_ns[d] = (uint64_t)us[d] * 1000u;
        } else if (!strcmp(argv[i], "--realtime") && i + 1 < argc) {
            o.rt = (uint32_t)atoi(argv[++i]);
            if (o.rt > 99)
                return 2;
        } else if (!strcmp(argv[i], "--no-jitter"))
            skip_jitter = 1;
        else if (!strcmp(argv[i], "--no-payloads"))
            skip_payloads = 1;
        else {
            fprintf(
                stderr,
                "usage: obs-bench-load [--rate R] [--seconds S] [--runs N] [--records N] "
                "[--plugin-dir DIR] [--delays US,US,...] [--realtime PRIO (0: none)] [--no-jitter] "
                "[--no-payloads]\n");
            return 2;
        }
    }
    if (o.runs < 1 || o.rate <= 0 || o.seconds <= 0 || o.records < 256)
        return 2;
    bench_print_header(stdout, "obs-bench-load", argc, argv);
    bench_schedule(&o);
    if (!skip_jitter)
        bench_jitter(&o);
    if (!skip_payloads)
        bench_payloads(&o);
    return 0;
}
