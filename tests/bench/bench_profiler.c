/*
 * bench_profiler.c - obs-bench-profiler: what the profiler costs.
 *
 * 1. Cost per sample of each unwinder: a thread recursing to a stack depth
 *    of --depth frames burns CPU while sampled at 250 Hz; the handler times
 *    itself (obs_prof_config.measure_handler: two vDSO clock reads, ~40 ns,
 *    included in the figure), so the figure is the real in-signal cost at
 *    that depth (unwind + ring write), median over --runs runs.
 * 2. Pipeline throughput with the profiler at --hz (default 99) vs off: the
 *    real pipeline (gen_static -> xf_pass -> sink_null, max load, batch
 *    --batch) is run in pairs, off and on in alternating order; "on" means
 *    every stage thread attached (as thread_begin will do) and a window
 *    open, so the timers run. The stage threads are attached by wrapping
 *    pthread_create at link time (-Wl,--wrap=pthread_create), which is how
 *    this benchmark gets what the core integration will do without editing
 *    the core. Printed: the median of the per-pair ratios on/off, and the
 *    median rates.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "config/config.h"
#include "obs_profiler.h"
#include "engine/pipeline.h"

#ifndef OBS_BENCH_PLUGIN_DIR
#define OBS_BENCH_PLUGIN_DIR "plugins"
#endif
#define MAX_RUNS 101

/* ------------------------------------------------ attaching stage threads */

int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);

static _Atomic int attach_new_threads;

typedef struct tramp {
    void *(*fn)(void *);
    void *arg;
} tramp;

static void *tramp_main(void *p)
{
    tramp tr = *(tramp *)p;
    free(p);
    obs_prof_label l[] = {{"stage", "bench"}};
    int arc = obs_prof_thread_attach(l, 1), attached = arc == 0;
    if (getenv("OBS_BENCH_DEBUG"))
        fprintf(stderr, "attach: %d\n", arc);
    void *r = tr.fn(tr.arg);
    if (attached)
        obs_prof_thread_detach();
    return r;
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    if (!atomic_load(&attach_new_threads))
        return __real_pthread_create(t, a, fn, arg);
    tramp *tr = malloc(sizeof *tr);
    if (!tr)
        return ENOMEM;
    tr->fn = fn;
    tr->arg = arg;
    int rc = __real_pthread_create(t, a, tramp_main, tr);
    if (rc)
        free(tr);
    return rc;
}

/* ------------------------------------------------------- cost per sample */

typedef struct deep_arg {
    int depth;
    double cpu_s;
} deep_arg;

__attribute__((noinline)) static uint64_t deep(int n, double until)
{
    if (n > 0) {
        uint64_t r = deep(n - 1, until);
        __asm__ volatile("" ::: "memory"); /* no tail call: keep the frame */
        return r + 1;
    }
    uint64_t x = 1;
    while ((double)bench_thread_cpu_ns() / 1e9 < until)
        for (int i = 0; i < 10000; i++)
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x;
}

static void *deep_main(void *p)
{
    deep_arg *a = p;
    obs_prof_thread_attach(NULL, 0);
    volatile uint64_t sink = deep(a->depth, (double)bench_thread_cpu_ns() / 1e9 + a->cpu_s);
    (void)sink;
    obs_prof_thread_detach();
    return NULL;
}

/* ns per sample and mean depth of one run with `unwinder`. */
static int cost_run(uint32_t unwinder, int depth, double cpu_s, double *ns, double *mean_depth)
{
    char err[256];
    obs_prof_config cfg = {.hz = 250, .unwinder = unwinder, .measure_handler = 1, .max_depth = 128};
    if (obs_prof_init(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "obs-bench-profiler: %s\n", err);
        return -1;
    }
    obs_prof_window *w;
    obs_prof_window_begin(&w);
    deep_arg a = {depth, cpu_s};
    pthread_t t;
    __real_pthread_create(&t, NULL, deep_main, &a);
    pthread_join(t, NULL);
    obs_prof_stats st;
    obs_prof_get_stats(&st);
    obs_prof_profile *p = NULL;
    obs_prof_window_end(w, &p);
    /* Mean depth from the JSON-free route: folded lines count frames. */
    char *folded;
    size_t len;
    double frames = 0, weight = 0;
    if (p && obs_prof_render_folded(p, 0, &folded, &len) == 0) {
        for (char *l = folded; *l;) {
            char *nl = strchr(l, '\n');
            char *sp = nl;
            while (sp > l && sp[-1] != ' ')
                sp--;
            double wgt = atof(sp);
            double f = 1;
            for (char *c = l; c < sp; c++)
                f += *c == ';';
            frames += f * wgt;
            weight += wgt;
            l = nl + 1;
        }
        free(folded);
    }
    obs_prof_profile_free(p);
    obs_prof_shutdown();
    *ns = st.n_samples ? (double)st.handler_ns / (double)st.n_samples : 0;
    *mean_depth = weight ? frames / weight : 0;
    return st.n_samples ? 0 : -1;
}

/* ------------------------------------------------------------- pipeline */

static int pipeline_rate(const char *plugin_dir, uint32_t batch, double seconds, double warmup,
                         int profiled, double *rate, uint64_t *samples)
{
    char yaml[2048], err[2048];
    snprintf(yaml, sizeof yaml,
             "pipeline: bench-profiler\nbatch_size: %u\nrun:\n  duration: %lldms\n  warmup: %lldms\n"
             "  seed: 1\nload:\n  - shape: max\nstages:\n  - name: gen\n    plugin: gen_static\n"
             "  - name: pass\n    plugin: xf_pass\n  - name: sink\n    plugin: sink_null\n",
             batch, (long long)llround((seconds + warmup) * 1000), (long long)llround(warmup * 1000));
    obs_config *cfg = NULL;
    pipeline *p = NULL;
    int ret = -1;
    if (config_load_string("bench.yaml", yaml, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "obs-bench-profiler: config: %s\n", err);
        return -1;
    }
    char *dirs[1] = {(char *)plugin_dir};
    if (pipeline_create(cfg, dirs, 1, &p, err, sizeof err) != 0) {
        fprintf(stderr, "obs-bench-profiler: %s\n", err);
        goto out;
    }
    obs_prof_window *w = NULL;
    obs_prof_stats s0, s1;
    obs_prof_get_stats(&s0);
    if (profiled) {
        int wrc = obs_prof_window_begin(&w);
        if (wrc != 0) {
            fprintf(stderr, "obs-bench-profiler: cannot open a profiling window (%d)\n", wrc);
            goto out;
        }
        atomic_store(&attach_new_threads, 1);
    }
    int rc = pipeline_run(p, NULL, NULL);
    atomic_store(&attach_new_threads, 0);
    obs_prof_get_stats(&s1);
    if (w)
        obs_prof_window_cancel(w);
    if (rc != 0) {
        fprintf(stderr, "obs-bench-profiler: run failed (%d)\n", rc);
        goto out;
    }
    const stage *sink = &p->stages[p->n_stages - 1];
    uint64_t window = p->t_stop_ns - p->t_warm_ns;
    *rate = (double)(sink->stop.records_in - sink->warm.records_in) * 1e9 / (double)window;
    *samples = s1.n_samples - s0.n_samples;
    ret = 0;
out:
    pipeline_destroy(p);
    config_free(cfg);
    return ret;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int runs = 9, depth = 36;
    uint32_t batch = 256, hz = 99;
    double seconds = 1.0, warmup = 0.2, cost_s = 1.0;
    const char *env = getenv("OBS_PLUGIN_DIR");
    const char *plugin_dir = env && *env ? env : OBS_BENCH_PLUGIN_DIR;
    static const struct option lo[] = {
        {"runs", required_argument, 0, 'r'},     {"seconds", required_argument, 0, 's'},
        {"warmup", required_argument, 0, 'w'},   {"batch", required_argument, 0, 'b'},
        {"hz", required_argument, 0, 'z'},       {"depth", required_argument, 0, 'd'},
        {"cost-seconds", required_argument, 0, 'c'}, {"plugin-dir", required_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'r': runs = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'b': batch = (uint32_t)atoi(optarg); break;
        case 'z': hz = (uint32_t)atoi(optarg); break;
        case 'd': depth = atoi(optarg); break;
        case 'c': cost_s = atof(optarg); break;
        case 'p': plugin_dir = optarg; break;
        default:
            printf("usage: obs-bench-profiler [--runs N] [--seconds S] [--warmup S] [--batch N] "
                   "[--hz N] [--depth N] [--cost-seconds S] [--plugin-dir DIR]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (runs < 1 || runs > MAX_RUNS || seconds <= 0 || depth < 0 || depth > 120 || hz == 0) {
        fprintf(stderr, "obs-bench-profiler: bad arguments (runs 1..%d, depth 0..120)\n", MAX_RUNS);
        return 2;
    }
    bench_print_header(stdout, "obs-bench-profiler", argc, argv);

    /* 1. cost per sample */
    static const char *names[] = {"libunwind", "frame-pointer"};
    for (uint32_t u = 0; u < 2; u++) {
        double ns[MAX_RUNS], d = 0;
        int n = runs < 5 ? runs : 5;
        for (int i = 0; i < n; i++)
            if (cost_run(u, depth, cost_s, &ns[i], &d) != 0) {
                fprintf(stderr, "obs-bench-profiler: no samples taken\n");
                return 1;
            }
        printf("cost per sample  %-14s %8.3f us  (median of %d runs, mean stack depth %.1f frames)\n",
               names[u], bench_median(ns, (size_t)n) / 1000, n, d);
    }

    /* 2. pipeline throughput, paired */
    char err[256];
    obs_prof_config cfg = {.hz = hz};
    if (obs_prof_init(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "obs-bench-profiler: %s\n", err);
        return 1;
    }
    double ratio[MAX_RUNS], off[MAX_RUNS], on[MAX_RUNS];
    uint64_t total_samples = 0;
    for (int i = 0; i < runs; i++) {
        uint64_t s = 0, s_off;
        int first_on = i & 1;
        for (int k = 0; k < 2; k++) {
            int prof = k == 0 ? first_on : !first_on;
            if (pipeline_rate(plugin_dir, batch, seconds, warmup, prof, prof ? &on[i] : &off[i],
                              prof ? &s : &s_off) != 0)
                return 1;
        }
        total_samples += s;
        ratio[i] = on[i] / off[i];
        printf("pair %2d: off %.3f Mrec/s, on %.3f Mrec/s, on/off %.4f, %" PRIu64 " samples\n", i + 1,
               off[i] / 1e6, on[i] / 1e6, ratio[i], s);
    }
    obs_prof_shutdown();
    double mr = bench_median(ratio, (size_t)runs);
    qsort(off, (size_t)runs, sizeof *off, cmp_double);
    qsort(on, (size_t)runs, sizeof *on, cmp_double);
    printf("pipeline gen_static -> xf_pass -> sink_null, batch %u, %d pairs of %.1f s: "
           "median off %.3f Mrec/s, on (%u Hz) %.3f Mrec/s; median on/off %.4f "
           "(loss %.2f%%, target <= 1%%); %.0f samples/run\n",
           batch, runs, seconds, bench_median(off, (size_t)runs) / 1e6, hz,
           bench_median(on, (size_t)runs) / 1e6, mr, 100 * (1 - mr),
           (double)total_samples / runs);
    return 0;
}
