/*
 * bench_account.c - what the per-stage cost account costs: the null
 * pipeline (gen_static -> xf_pass -> sink_null, 16-byte records, load shape
 * max) with the cost account on and off (pipeline.cost_account), in paired
 * runs of alternating order, so that drift of the shared machine hits both
 * sides alike. Prints the median records/s of each side and the median of
 * the per-pair ratios (off/on - 1 = the account's cost). Target: <= 3% at
 * batch 256.
 *
 *   obs-bench-account [--plugin-dir DIR] [--batch N] [--seconds S] [--pairs N]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "config/config.h"
#include "engine/pipeline.h"

static double run_once(const char *dir, uint32_t batch, double seconds, int account)
{
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "pipeline: account\n"
             "plugin_dirs: [%s]\n"
             "batch_size: %u\n"
             "run: {duration: %.0fms, warmup: 200ms}\n"
             "load: [{shape: max}]\n"
             "stages:\n"
             "  - {name: gen, plugin: gen_static, params: {size: 16}}\n"
             "  - {name: pass, plugin: xf_pass}\n"
             "  - {name: sink, plugin: sink_null}\n",
             dir, batch, (seconds + 0.2) * 1000.0);
    obs_config *cfg = NULL;
    pipeline *p = NULL;
    char err[4096];
    if (config_load_string("account.yaml", yaml, &cfg, err, sizeof(err)) != 0 ||
        pipeline_create(cfg, NULL, 0, &p, err, sizeof(err)) != 0) {
        fprintf(stderr, "obs-bench-account: %s\n", err);
        exit(1);
    }
    p->cost_account = account;
    if (pipeline_run(p, NULL, NULL) != 0) {
        fprintf(stderr, "obs-bench-account: run failed\n");
        exit(1);
    }
    const stage *sink = &p->stages[2];
    uint64_t n = sink->stop.records_in - sink->warm.records_in;
    double rate = (double)n * 1e9 / (double)(p->t_stop_ns - p->t_warm_ns);
    if (p->stages[0].stats.records_out != sink->stats.records_in) {
        fprintf(stderr, "obs-bench-account: records lost\n");
        exit(1);
    }
    pipeline_destroy(p);
    config_free(cfg);
    return rate;
}

int main(int argc, char **argv)
{
    const char *dir = OBS_BENCH_PLUGIN_DIR;
    uint32_t batch = 256;
    double seconds = 2.0;
    int pairs = 5;
    static const struct option opts[] = {{"plugin-dir", required_argument, NULL, 'P'},
                                         {"batch", required_argument, NULL, 'b'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {"pairs", required_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'P': dir = optarg; break;
        case 'b': batch = (uint32_t)atoi(optarg); break;
        case 's':
            if (bench_parse_seconds(optarg, &seconds) != 0)
                return 2;
            break;
        case 'n': pairs = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: obs-bench-account [--plugin-dir DIR] [--batch N] "
                            "[--seconds S] [--pairs N]\n");
            return 2;
        }
    }
    if (pairs < 1 || pairs > 100 || batch < 1) {
        fprintf(stderr, "obs-bench-account: --pairs 1..100, --batch >= 1\n");
        return 2;
    }
    bench_print_header(stdout, "obs-bench-account", argc, argv);
    printf("# null pipeline gen_static(16 B) -> xf_pass -> sink_null, batch %u, %.1f s per run, "
           "%d pairs, order alternating\n",
           batch, seconds, pairs);
    double *on = calloc((size_t)pairs, sizeof(double));
    double *off = calloc((size_t)pairs, sizeof(double));
    double *cost = calloc((size_t)pairs, sizeof(double));
    if (!on || !off || !cost)
        return 1;
    for (int i = 0; i < pairs; i++) {
        if (i % 2 == 0) {
            on[i] = run_once(dir, batch, seconds, 1);
            off[i] = run_once(dir, batch, seconds, 0);
        } else {
            off[i] = run_once(dir, batch, seconds, 0);
            on[i] = run_once(dir, batch, seconds, 1);
        }
        cost[i] = off[i] / on[i] - 1.0;
        printf("pair %d: account on %.2f M rec/s, off %.2f M rec/s, cost %+.1f%%\n", i + 1,
               on[i] / 1e6, off[i] / 1e6, 100.0 * cost[i]);
        fflush(stdout);
    }
    double m_on = bench_median(on, (size_t)pairs), m_off = bench_median(off, (size_t)pairs);
    double m_cost = bench_median(cost, (size_t)pairs);
    printf("median: account on %.2f M rec/s, off %.2f M rec/s; median per-pair cost %+.1f%% "
           "(target <= 3%% at batch 256): %s\n",
           m_on / 1e6, m_off / 1e6, 100.0 * m_cost, m_cost <= 0.03 ? "MET" : "MISSED");
    free(on);
    free(off);
    free(cost);
    return 0;
}
