/*
 * bench_scale.c - obs-bench-scale: how the JSON pipeline scales with the
 * parallelism of its parse stage.
 *
 * gen_market -> PARSER (parallelism N, round robin) -> sink_null, load shape
 * max, for N = 1 .. --max (default: the machine's cores), through the real
 * pipeline code, for each parser: xf_json_jansson (about 3.7 us a record:
 * the parse stage is the bottleneck and the rest of the pipeline needs
 * little CPU, so a second parser can use a second core) and xf_json_fast
 * (about 0.25 us: the generator's own CPU is of the same order, so one
 * parser already keeps most of two cores busy). Runs are interleaved (run 1 of every N, then run 2,
 * ...) so that the drift of a shared machine spreads over all of them; each
 * figure is the median over the runs, and the ratios are against N = 1 of
 * the same invocation.
 *
 *   records/s   records the sink consumed in the measured window / window.
 *   cpu ns/rec  thread CPU of every stage thread (all instances) over the
 *               whole run / records consumed: what a record costs the
 *               machine, whatever the number of threads.
 *   parse ns/rec the parse instances' thread CPU alone / records.
 *   cores       CPU of all threads / run wall time.
 *
 * The pipeline has 2 + N threads (generator, N parsers, sink), so once they
 * outnumber the cores, more parsers only share the same cores: the output
 * says how many cores this machine has and what more would need. Exits
 * nonzero when a run fails or loses records.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "config/config.h"
#include "engine/host.h"
#include "engine/pipeline.h"

#ifndef OBS_BENCH_PLUGIN_DIR
#define OBS_BENCH_PLUGIN_DIR "plugins"
#endif

#define MAX_N 16
#define MAX_RUNS 51

typedef struct options {
    double seconds, warmup;
    int runs;
    uint32_t max_n, batch;
    const char *plugin_dir;
    char parsers[4][64];
    int n_parsers;
} options;

enum { M_RATE, M_CPU, M_PARSE, M_CORES, M_COUNT };

static void usage(FILE *f)
{
    fprintf(f,
            "usage: obs-bench-scale [options]\n"
            "  --seconds S      measured seconds per run (default 2)\n"
            "  --warmup S       warm-up seconds before each measured window (default 0.5)\n"
            "  --runs N         runs per parallelism; medians are printed (default 5)\n"
            "  --max N          parse parallelism 1..N (default: the number of cores)\n"
            "  --batch N        batch size (default 256)\n"
            "  --parsers LIST   comma-separated parse plugins (default "
            "xf_json_jansson,xf_json_fast)\n"
            "  --plugin-dir DIR where gen_market/xf_json_fast/sink_null live\n"
            "                   (default $OBS_PLUGIN_DIR, else %s)\n",
            OBS_BENCH_PLUGIN_DIR);
}

static int parse_args(int argc, char **argv, options *o)
{
    static const struct option longs[] = {
        {"seconds", required_argument, 0, 's'},
        {"warmup", required_argument, 0, 'w'},
        {"runs", required_argument, 0, 'r'},
        {"max", required_argument, 0, 'm'},
        {"batch", required_argument, 0, 'b'},
        {"plugin-dir", required_argument, 0, 'p'},
        {"parsers", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (options){.seconds = 2, .warmup = 0.5, .runs = 5, .batch = 256};
    o->max_n = cores < 1 ? 1 : cores > MAX_N ? MAX_N : (uint32_t)cores;
    const char *parsers = "xf_json_jansson,xf_json_fast";
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
            if (bench_parse_list(optarg, one, 1) != 1 || one[0] < 1 || one[0] > MAX_RUNS)
                goto bad;
            o->runs = (int)one[0];
            break;
        case 'm':
            if (bench_parse_list(optarg, one, 1) != 1 || one[0] < 1 || one[0] > MAX_N)
                goto bad;
            o->max_n = one[0];
            break;
        case 'b':
            if (bench_parse_list(optarg, one, 1) != 1 || one[0] < 1)
                goto bad;
            o->batch = one[0];
            break;
        case 'p': o->plugin_dir = optarg; break;
        case 'P': parsers = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "obs-bench-scale: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    for (const char *p = parsers; *p && o->n_parsers < 4;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof o->parsers[0]) {
            fprintf(stderr, "obs-bench-scale: invalid --parsers '%s'\n", parsers);
            return -1;
        }
        memcpy(o->parsers[o->n_parsers], p, len);
        o->parsers[o->n_parsers++][len] = '\0';
        p += len + (p[len] == ',');
    }
    return 0;
bad:
    fprintf(stderr, "obs-bench-scale: invalid value '%s'\n", optarg);
    usage(stderr);
    return -1;
}

/* Thread CPU of every instance of pipeline stage s. */
static uint64_t stage_cpu(const stage *s)
{
    uint64_t ns = 0;
    for (uint32_t k = 0; k < s->n_instances; k++)
        ns += atomic_load(&s->instances[k]->stats.cpu_ns);
    return ns;
}

/* Builds, runs and measures parallelism n once into m[]. Returns 0 or -1. */
static int run_one(const options *o, const char *parser, uint32_t n, double *m)
{
    char yaml[2048], err[2048];
    uint64_t warm_ms = (uint64_t)llround(o->warmup * 1000);
    uint64_t dur_ms = warm_ms + (uint64_t)llround(o->seconds * 1000);
    snprintf(yaml, sizeof yaml,
             "pipeline: bench-scale-%u\nbatch_size: %u\n"
             "run: {duration: %" PRIu64 "ms, warmup: %" PRIu64 "ms, seed: 1}\n"
             "load: [{shape: max}]\n"
             "stages:\n"
             "  - {name: ticks, plugin: gen_market}\n"
             "  - {name: parse, plugin: %s, parallelism: %u}\n"
             "  - {name: sink, plugin: sink_null}\n",
             n, o->batch, dur_ms, warm_ms, parser, n);
    obs_config *cfg = NULL;
    pipeline *p = NULL;
    int ret = -1;
    if (config_load_string("bench.yaml", yaml, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "obs-bench-scale: config:\n%s\n", err);
        return -1;
    }
    char *dirs[1] = {(char *)o->plugin_dir};
    if (pipeline_create(cfg, dirs, 1, &p, err, sizeof err) != 0) {
        fprintf(stderr, "obs-bench-scale: %s\n", err);
        goto out;
    }
    int rc = pipeline_run(p, NULL, NULL);
    if (rc != 0) {
        fprintf(stderr, "obs-bench-scale: run failed: %s (%d)\n", obs_strerror(rc), rc);
        goto out;
    }
    const stage *gen = &p->stages[0], *parse = &p->stages[1], *sink = &p->stages[2];
    uint64_t window = p->t_stop_ns - p->t_warm_ns;
    uint64_t produced = atomic_load(&((stage *)gen)->stats.records_out);
    uint64_t consumed = atomic_load(&((stage *)sink)->stats.records_in);
    if (!consumed || !window || produced != consumed) {
        fprintf(stderr,
                "obs-bench-scale: parallelism %u: generator emitted %" PRIu64
                " records, sink consumed %" PRIu64 "\n",
                n, produced, consumed);
        goto out;
    }
    uint64_t cpu = stage_cpu(gen) + stage_cpu(parse) + stage_cpu(sink);
    m[M_RATE] = (double)(sink->stop.records_in - sink->warm.records_in) * 1e9 / (double)window;
    m[M_CPU] = (double)cpu / (double)consumed;
    m[M_PARSE] = (double)stage_cpu(parse) / (double)consumed;
    m[M_CORES] = (double)cpu / (double)(p->t_end_ns - p->t_start_ns);
    ret = 0;
out:
    pipeline_destroy(p);
    config_free(cfg);
    return ret;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    host_set_log_level(OBS_LOG_WARN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_print_header(
        stdout, "obs-bench-scale: gen_market -> PARSER x N (round robin) -> sink_null", argc, argv);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("# plan: parallelism 1..%u x %d runs, %.2f s measured + %.2f s warm-up each, batch %u, "
           "load shape max, runs interleaved\n",
           o.max_n, o.runs, o.seconds, o.warmup, o.batch);

    static double v[4][MAX_N + 1][M_COUNT][MAX_RUNS];
    for (int r = 0; r < o.runs; r++) {
        printf("# run %d/%d:", r + 1, o.runs);
        for (int q = 0; q < o.n_parsers; q++)
            for (uint32_t n = 1; n <= o.max_n; n++) {
                double m[M_COUNT];
                if (run_one(&o, o.parsers[q], n, m) != 0)
                    return 1;
                for (int k = 0; k < M_COUNT; k++)
                    v[q][n][k][r] = m[k];
                printf(" %s/N=%u %.3fM", o.parsers[q], n, m[M_RATE] / 1e6);
            }
        printf("\n");
    }

    printf("\n# medians of %d runs; ratios against parallelism 1 of the same parser, this "
           "invocation\n",
           o.runs);
    printf("%-16s %7s %7s %12s %22s %8s %11s %12s %6s\n", "parser", "parse_N", "threads",
           "records/s", "[min..max]", "vs_N=1", "cpu_ns/rec", "parse_ns/rec", "cores");
    for (int q = 0; q < o.n_parsers; q++) {
        double med[MAX_N + 1][M_COUNT];
        for (uint32_t n = 1; n <= o.max_n; n++)
            for (int k = 0; k < M_COUNT; k++)
                med[n][k] = bench_median(v[q][n][k], (size_t)o.runs);
        for (uint32_t n = 1; n <= o.max_n; n++) {
            double lo, hi;
            bench_minmax(v[q][n][M_RATE], (size_t)o.runs, &lo, &hi);
            char range[48];
            snprintf(range, sizeof range, "[%.0f..%.0f]", lo, hi);
            printf("%-16s %7u %7u %12.0f %22s %7.2fx %11.1f %12.1f %6.2f\n", o.parsers[q], n, n + 2,
                   med[n][M_RATE], range, med[n][M_RATE] / med[1][M_RATE], med[n][M_CPU],
                   med[n][M_PARSE], med[n][M_CORES]);
        }
        if (o.max_n >= 2)
            printf("%s: parallelism 2 vs 1: %.2fx records/s (%s)\n", o.parsers[q],
                   med[2][M_RATE] / med[1][M_RATE],
                   med[2][M_RATE] > med[1][M_RATE] ? "faster" : "not faster");
    }
    printf("\n# this machine has %ld core(s); the pipeline runs N + 2 threads (generator, N "
           "parsers, sink).\n",
           cores);
    printf("# a parse stage scales until the generator, the sink and the parsers together need "
           "more cores than there are: to show more than %ld parsers' worth, run this on a "
           "machine with more cores (--max N, up to %d).\n",
           cores, MAX_N);
    return 0;
}
