/*
 * bench_pipeline.c - obs-bench-pipeline: throughput and host overhead of the
 * null pipeline (gen_static -> N x xf_pass -> sink_null).
 *
 * Each configuration (batch size x number of hops) is built in memory from a
 * YAML string, run with load shape `max` through the real pipeline code
 * (pipeline_create/pipeline_run, one thread per stage, rings, pool), and
 * measured from the stage counters the pipeline keeps. Runs are interleaved:
 * run 1 of every configuration, then run 2 of every configuration, ... so
 * that slow drift of a shared machine spreads over all configurations rather
 * than landing on one. Each figure printed is the median over the runs,
 * computed per metric.
 *
 * Definitions (also in docs/benchmarks.md):
 *   hops            rings a record crosses: stages - 1 (1 = gen -> sink).
 *   records/s       records the sink consumed in the measured window (after
 *                   warm-up, until the stop) / window length.
 *   cpu ns/rec      sum over stage threads of thread CPU time (whole thread
 *                   life, CLOCK_THREAD_CPUTIME_ID) / records the sink
 *                   consumed over the whole run.
 *   plugin ns/rec   sum over stages of the wall time inside plugin callbacks
 *                   (stats.callback_ns) / same records.
 *   host ns/rec/hop (cpu ns - plugin ns) / records / hops: CPU the host spends
 *                   per record and per ring crossing outside plugin code
 *                   (rings, pool, accounting, clocks, spinning while waiting).
 *   marginal ns/hop difference of cpu ns/rec between h and h-1 hops at the
 *                   same batch size: what one more pass-through stage costs,
 *                   plugin and host together.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench_util.h"
#include "config/config.h"
#include "engine/host.h"
#include "engine/pipeline.h"
#include "engine/snapshot.h"

#ifndef OBS_BENCH_PLUGIN_DIR
#define OBS_BENCH_PLUGIN_DIR "plugins"
#endif

#define MAX_LIST 16
#define MAX_RUNS 101

/* Targets from the benchmark issue, checked (not asserted) at the end. */
#define TARGET_RATE 20e6        /* records/s at batch 1024, gen -> pass -> null */
#define TARGET_RATE_BATCH 1024
#define TARGET_HOST_NS 25.0     /* host ns per record per hop at batch 256 */
#define TARGET_HOST_BATCH 256
#define TARGET_HOPS 2

typedef struct options {
    double seconds, warmup;
    int runs;
    uint32_t batches[MAX_LIST];
    int n_batches;
    uint32_t hops[MAX_LIST];
    int n_hops;
    uint32_t size;
    uint32_t ring_capacity;
    const char *plugin_dir;
    const char *csv;
    int verbose;
} options;

/* One run's figures. */
typedef struct sample {
    double rate, cpu_ns, cb_ns, host_ns, cores, empty_waits, full_waits, pool_waits, vcsw, ivcsw;
} sample;

enum { M_RATE, M_CPU, M_CB, M_HOST, M_CORES, M_EMPTY, M_FULL, M_POOL, M_VCSW, M_IVCSW, M_COUNT };

typedef struct config_result {
    uint32_t batch, hops;
    sample runs[MAX_RUNS];
    int n_runs;
    double med[M_COUNT], min[M_COUNT], max[M_COUNT];
} config_result;

static double metric(const sample *s, int m)
{
    switch (m) {
    case M_RATE: return s->rate;
    case M_CPU: return s->cpu_ns;
    case M_CB: return s->cb_ns;
    case M_HOST: return s->host_ns;
    case M_CORES: return s->cores;
    case M_EMPTY: return s->empty_waits;
    case M_FULL: return s->full_waits;
    case M_POOL: return s->pool_waits;
    case M_VCSW: return s->vcsw;
    default: return s->ivcsw;
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: obs-bench-pipeline [options]\n"
            "  --seconds S      measured seconds per run (default 2)\n"
            "  --warmup S       warm-up seconds before each measured window (default 0.5)\n"
            "  --runs N         runs per configuration; medians are printed (default 5)\n"
            "  --batch LIST     batch sizes, e.g. 1,64,256,1024 (default)\n"
            "  --hops LIST      rings crossed: 1 = gen->sink, 2 = gen->pass->sink, ... (default 1,2,3)\n"
            "  --size BYTES     record size of gen_static (default 16)\n"
            "  --ring N         ring_capacity in batches (default: the config default)\n"
            "  --plugin-dir DIR where gen_static/xf_pass/sink_null live\n"
            "                   (default $OBS_PLUGIN_DIR, else %s)\n"
            "  --csv FILE       also write every run's figures as CSV\n"
            "  --verbose        print hostd's report after every run\n",
            OBS_BENCH_PLUGIN_DIR);
}

static int parse_args(int argc, char **argv, options *o)
{
    static const struct option longs[] = {
        {"seconds", required_argument, 0, 's'}, {"warmup", required_argument, 0, 'w'},
        {"runs", required_argument, 0, 'r'},    {"batch", required_argument, 0, 'b'},
        {"hops", required_argument, 0, 'H'},    {"size", required_argument, 0, 'z'},
        {"ring", required_argument, 0, 'R'},    {"plugin-dir", required_argument, 0, 'p'},
        {"csv", required_argument, 0, 'c'},     {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    *o = (options){.seconds = 2, .warmup = 0.5, .runs = 5, .size = 16};
    o->n_batches = bench_parse_list("1,64,256,1024", o->batches, MAX_LIST);
    o->n_hops = bench_parse_list("1,2,3", o->hops, MAX_LIST);
    const char *env = getenv("OBS_PLUGIN_DIR");
    o->plugin_dir = env && *env ? env : OBS_BENCH_PLUGIN_DIR;
    int c;
    uint32_t one[1];
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 's':
            if (bench_parse_seconds(optarg, &o->seconds) != 0)
                goto bad;
            break;
        case 'w':
            if (strcmp(optarg, "0") == 0)
                o->warmup = 0;
            else if (bench_parse_seconds(optarg, &o->warmup) != 0)
                goto bad;
            break;
        case 'r':
            if (bench_parse_list(optarg, one, 1) != 1 || one[0] > MAX_RUNS)
                goto bad;
            o->runs = (int)one[0];
            break;
        case 'b':
            if ((o->n_batches = bench_parse_list(optarg, o->batches, MAX_LIST)) <= 0)
                goto bad;
            break;
        case 'H':
            if ((o->n_hops = bench_parse_list(optarg, o->hops, MAX_LIST)) <= 0)
                goto bad;
            for (int i = 0; i < o->n_hops; i++)
                if (o->hops[i] > 32)
                    goto bad;
            break;
        case 'z':
            if (bench_parse_list(optarg, one, 1) != 1)
                goto bad;
            o->size = one[0];
            break;
        case 'R':
            if (bench_parse_list(optarg, one, 1) != 1)
                goto bad;
            o->ring_capacity = one[0];
            break;
        case 'p': o->plugin_dir = optarg; break;
        case 'c': o->csv = optarg; break;
        case 'v': o->verbose = 1; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "obs-bench-pipeline: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "obs-bench-pipeline: invalid value '%s'\n", optarg);
    usage(stderr);
    return -1;
}

/* Writes the pipeline.yaml of one configuration into buf. */
static int build_yaml(const options *o, uint32_t batch, uint32_t hops, char *buf, size_t len)
{
    size_t n = 0;
    uint64_t warm_ms = (uint64_t)llround(o->warmup * 1000);
    uint64_t dur_ms = warm_ms + (uint64_t)llround(o->seconds * 1000);
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(buf + n, len - n, __VA_ARGS__);                                          \
        if (w_ < 0 || (size_t)w_ >= len - n)                                                       \
            return -1;                                                                             \
        n += (size_t)w_;                                                                           \
    } while (0)
    PUT("pipeline: bench-null-b%u-h%u\n", batch, hops);
    PUT("batch_size: %u\n", batch);
    if (o->ring_capacity)
        PUT("ring_capacity: %u\n", o->ring_capacity);
    PUT("run:\n  duration: %" PRIu64 "ms\n  warmup: %" PRIu64 "ms\n  seed: 1\n", dur_ms, warm_ms);
    PUT("load:\n  - shape: max\n");
    PUT("stages:\n");
    PUT("  - name: gen\n    plugin: gen_static\n    params:\n      size: %u\n", o->size);
    for (uint32_t i = 1; i < hops; i++)
        PUT("  - name: pass%u\n    plugin: xf_pass\n", i);
    PUT("  - name: sink\n    plugin: sink_null\n");
#undef PUT
    return 0;
}

/* Builds, runs and measures one configuration once. Returns 0 or -1. */
static int run_one(const options *o, uint32_t batch, uint32_t hops, sample *out)
{
    char yaml[4096], err[2048];
    obs_config *cfg = NULL;
    pipeline *p = NULL;
    int ret = -1;
    if (build_yaml(o, batch, hops, yaml, sizeof yaml) != 0) {
        fprintf(stderr, "obs-bench-pipeline: configuration too long\n");
        return -1;
    }
    if (config_load_string("bench.yaml", yaml, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "obs-bench-pipeline: config:\n%s\n--- yaml ---\n%s", err, yaml);
        return -1;
    }
    char *dirs[1] = {(char *)o->plugin_dir};
    int rc = pipeline_create(cfg, dirs, 1, &p, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "obs-bench-pipeline: %s\n", err);
        goto out;
    }
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    rc = pipeline_run(p, NULL, NULL);
    getrusage(RUSAGE_SELF, &ru1);
    if (rc != 0) {
        fprintf(stderr, "obs-bench-pipeline: run failed: %s (%d)\n", obs_strerror(rc), rc);
        goto out;
    }
    if (o->verbose)
        pipeline_report(p, stdout);

    const stage *gen = &p->stages[0], *sink = &p->stages[p->n_stages - 1];
    uint64_t window = p->t_stop_ns - p->t_warm_ns;
    uint64_t win_records = sink->stop.records_in - sink->warm.records_in;
    uint64_t produced = atomic_load(&((stage *)gen)->stats.records_out);
    uint64_t consumed = atomic_load(&((stage *)sink)->stats.records_in);
    if (consumed == 0 || window == 0) {
        fprintf(stderr, "obs-bench-pipeline: batch %u hops %u: no records reached the sink\n",
                batch, hops);
        goto out;
    }
    if (produced != consumed) {
        fprintf(stderr,
                "obs-bench-pipeline: batch %u hops %u: generator emitted %" PRIu64
                " records, sink consumed %" PRIu64 "\n",
                batch, hops, produced, consumed);
        goto out;
    }
    uint64_t cpu = 0, cb = 0, batches = 0, empty = 0, full = 0;
    for (size_t i = 0; i < p->n_stages; i++) {
        stage *s = &p->stages[i];
        cpu += atomic_load(&s->stats.cpu_ns);
        cb += atomic_load(&s->stats.callback_ns);
    }
    for (size_t i = 0; i + 1 < p->n_stages; i++) {
        empty += p->rings[i].n_empty_waits;
        full += p->rings[i].n_full_waits;
    }
    batches = atomic_load(&((stage *)sink)->stats.batches_in);
    double rec = (double)consumed;
    out->rate = (double)win_records * 1e9 / (double)window;
    out->cpu_ns = (double)cpu / rec;
    out->cb_ns = (double)cb / rec;
    out->host_ns = ((double)cpu - (double)cb) / rec / hops;
    out->cores = (double)cpu / (double)(p->t_end_ns - p->t_start_ns);
    /* Per 1000 batches crossing each ring. */
    out->empty_waits = batches ? 1000.0 * (double)empty / (double)batches / hops : 0;
    out->full_waits = batches ? 1000.0 * (double)full / (double)batches / hops : 0;
    out->pool_waits = batches ? 1000.0 * (double)p->pool.n_get_waits / (double)batches : 0;
    /* Context switches of the whole process (all stage threads): voluntary
     * ones are futex sleeps, involuntary ones preemption by other threads. */
    out->vcsw = batches ? 1000.0 * (double)(ru1.ru_nvcsw - ru0.ru_nvcsw) / (double)batches : 0;
    out->ivcsw = batches ? 1000.0 * (double)(ru1.ru_nivcsw - ru0.ru_nivcsw) / (double)batches : 0;
    ret = 0;
out:
    pipeline_destroy(p);
    config_free(cfg);
    return ret;
}

static config_result *find(config_result *r, int n, uint32_t batch, uint32_t hops)
{
    for (int i = 0; i < n; i++)
        if (r[i].batch == batch && r[i].hops == hops)
            return &r[i];
    return NULL;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    host_set_log_level(OBS_LOG_WARN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    bench_print_header(stdout, "obs-bench-pipeline: null pipeline gen_static -> N x xf_pass -> sink_null",
                       argc, argv);
    int n_cfg = o.n_batches * o.n_hops;
    printf("# plan: %d configurations x %d runs, %.2f s measured + %.2f s warm-up each "
           "(~%.0f s), record size %u B, load shape max, runs interleaved across configurations\n",
           n_cfg, o.runs, o.seconds, o.warmup, n_cfg * o.runs * (o.seconds + o.warmup), o.size);
    printf("# plugin dir: %s\n", o.plugin_dir);

    config_result *res = calloc((size_t)n_cfg, sizeof *res);
    FILE *csv = NULL;
    if (!res)
        return 1;
    if (o.csv) {
        csv = fopen(o.csv, "w");
        if (!csv) {
            perror(o.csv);
            return 1;
        }
        fprintf(csv, "run,batch,hops,records_per_s,cpu_ns_per_rec,plugin_ns_per_rec,"
                     "host_ns_per_rec_hop,cores,empty_waits_per_kbatch,full_waits_per_kbatch,"
                     "pool_waits_per_kbatch,vcsw_per_kbatch,ivcsw_per_kbatch\n");
    }
    for (int b = 0; b < o.n_batches; b++)
        for (int h = 0; h < o.n_hops; h++) {
            res[b * o.n_hops + h].batch = o.batches[b];
            res[b * o.n_hops + h].hops = o.hops[h];
        }

    for (int r = 0; r < o.runs; r++) {
        printf("# run %d/%d:", r + 1, o.runs);
        for (int i = 0; i < n_cfg; i++) {
            sample s;
            if (run_one(&o, res[i].batch, res[i].hops, &s) != 0) {
                printf("\n");
                return 1;
            }
            res[i].runs[res[i].n_runs++] = s;
            printf(" b%u/h%u=%.2fM", res[i].batch, res[i].hops, s.rate / 1e6);
            if (csv)
                fprintf(csv, "%d,%u,%u,%.0f,%.2f,%.2f,%.2f,%.3f,%.2f,%.2f,%.2f,%.2f,%.2f\n", r + 1,
                        res[i].batch, res[i].hops, s.rate, s.cpu_ns, s.cb_ns, s.host_ns, s.cores,
                        s.empty_waits, s.full_waits, s.pool_waits, s.vcsw, s.ivcsw);
        }
        printf("\n");
    }
    if (csv)
        fclose(csv);

    for (int i = 0; i < n_cfg; i++) {
        config_result *c = &res[i];
        for (int m = 0; m < M_COUNT; m++) {
            double v[MAX_RUNS];
            for (int k = 0; k < c->n_runs; k++)
                v[k] = metric(&c->runs[k], m);
            bench_minmax(v, (size_t)c->n_runs, &c->min[m], &c->max[m]);
            c->med[m] = bench_median(v, (size_t)c->n_runs);
        }
    }

    printf("\n# medians of %d runs (per metric); [min..max] of records/s; baseline for the ratios:"
           " the 1-hop run (gen -> sink) of the same batch size\n",
           o.runs);
    printf("# host ns/rec/hop = (sum of stage thread CPU - time in plugin callbacks) / records / hops\n");
    printf("# marginal ns/hop = cpu ns/rec(h hops) - cpu ns/rec(h-1 hops), same batch size\n");
    printf("# waits: per 1000 batches per ring (empty: consumer found the ring empty; full: producer"
           " found it full); pool: gets that found the pool empty\n");
    printf("# vcsw/ivcsw: voluntary (futex sleeps) / involuntary (preempted) context switches of the"
           " process per 1000 batches; cores: stage CPU / run wall time\n");
    printf("%6s %4s %12s %25s %8s %10s %10s %12s %10s %6s %7s %7s %7s %7s %7s\n", "batch", "hops",
           "records/s", "[min..max]", "vs_1hop", "cpu_ns/rec", "plugin_ns", "host_ns/hop",
           "marg_ns", "cores", "empty", "full", "pool", "vcsw", "ivcsw");
    for (int i = 0; i < n_cfg; i++) {
        config_result *c = &res[i];
        config_result *base = find(res, n_cfg, c->batch, 1);
        config_result *prev = c->hops > 1 ? find(res, n_cfg, c->batch, c->hops - 1) : NULL;
        char ratio[16] = "-", marg[16] = "-", range[48];
        if (base && base != c)
            snprintf(ratio, sizeof ratio, "%.2fx", c->med[M_RATE] / base->med[M_RATE]);
        else if (base)
            snprintf(ratio, sizeof ratio, "1.00x");
        if (prev)
            snprintf(marg, sizeof marg, "%.1f", c->med[M_CPU] - prev->med[M_CPU]);
        snprintf(range, sizeof range, "[%.0f..%.0f]", c->min[M_RATE], c->max[M_RATE]);
        printf("%6u %4u %12.0f %25s %8s %10.1f %10.1f %12.1f %10s %6.2f %7.1f %7.1f %7.1f %7.1f %7.1f\n",
               c->batch, c->hops, c->med[M_RATE], range, ratio, c->med[M_CPU], c->med[M_CB],
               c->med[M_HOST], marg, c->med[M_CORES], c->med[M_EMPTY], c->med[M_FULL],
               c->med[M_POOL], c->med[M_VCSW], c->med[M_IVCSW]);
    }

    printf("\n# targets (gen_static size %u -> xf_pass -> sink_null, %d hops):\n", o.size, TARGET_HOPS);
    config_result *t1 = find(res, n_cfg, TARGET_RATE_BATCH, TARGET_HOPS);
    config_result *t2 = find(res, n_cfg, TARGET_HOST_BATCH, TARGET_HOPS);
    if (t1)
        printf("target records/s at batch %d >= %.0f M: %.2f M  %s%s\n", TARGET_RATE_BATCH,
               TARGET_RATE / 1e6, t1->med[M_RATE] / 1e6,
               t1->med[M_RATE] >= TARGET_RATE ? "MET" : "MISSED",
               o.size == 16 ? "" : " (record size is not 16: not comparable)");
    else
        printf("target records/s at batch %d: not measured in this invocation\n", TARGET_RATE_BATCH);
    if (t2)
        printf("target host ns/record/hop at batch %d <= %.0f: %.1f  %s\n", TARGET_HOST_BATCH,
               TARGET_HOST_NS, t2->med[M_HOST], t2->med[M_HOST] <= TARGET_HOST_NS ? "MET" : "MISSED");
    else
        printf("target host ns/record/hop at batch %d: not measured in this invocation\n",
               TARGET_HOST_BATCH);
    double load[3] = {-1, -1, -1};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = -1;
        fclose(la);
    }
    printf("# finished: loadavg=%.2f,%.2f,%.2f\n", load[0], load[1], load[2]);
    free(res);
    return 0;
}
