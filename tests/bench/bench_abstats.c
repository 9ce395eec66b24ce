/*
 * bench_abstats.c - obs-bench-abstats: how often the A/B statistics are
 * wrong, and how fast they are right, on simulated experiments.
 *
 * Nothing here runs a pipeline: the experiments are drawn from noise models
 * that resemble what the experiment runner feeds abstats, so that hundreds
 * of them take seconds, and the truth is known.
 *  - duet, per batch pair (CPU ns/record): the batch's own cost, lognormal
 *    (sigma 0.3), shared by both variants; machine drift shared by the pair
 *    (a +-10% slow sine and a +15% step over the middle third of the run,
 *    like frequency scaling or a neighbour taking the core); a 3% discount
 *    for whichever variant runs second (warm caches; the order is drawn
 *    per batch); each variant's own run noise, lognormal (sigma 0.1); and
 *    outliers: 1% of runs cost 2-10x (preemption, interrupts). B is scaled
 *    by 1 + delta. `--rate` pairs per second turn pairs into seconds.
 *  - interleaved, per block (p99 latency of a 1 s block): lognormal
 *    (sigma 0.15) with the same kind of drift and 2% outlier blocks of
 *    1.5-4x, in randomized ABBA/BAAB rounds.
 * Each experiment is sequential as the runner will do it: `--looks` looks
 * evenly spaced up to the time limit, stopping at the first decided verdict
 * (SAME, FASTER, SLOWER); at the time limit it ends with what it has.
 *
 * Printed per scenario: verdict counts, the false-positive rate (FASTER or
 * SLOWER when A and B are the same, with its exact 95% binomial interval) or
 * the detection rate, and the median and 90th percentile of the data (and
 * seconds) needed to stop. The baseline, on the same A/A data in the same
 * invocation: the naive rule (the 95% interval excluding 0 at any of the
 * same looks, no correction for looking repeatedly). Also the mean-of-ratios
 * bias in A/A, and what one abstats_estimate costs. Asserts nothing about
 * rates; exits nonzero only if abstats fails.
 */
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lab/abstats.h"
#include "bench_util.h"

static uint64_t sim_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static double sim_unit(uint64_t *s)
{
    return ((double)(sim_next(s) >> 11) + 0.5) / 9007199254740992.0;
}

static double sim_normal(uint64_t *s)
{
    return sqrt(-2 * log(sim_unit(s))) * cos(2 * M_PI * sim_unit(s));
}

/* Shared machine drift at fraction f of the run. */
static double drift(double f)
{
    return (1 + 0.1 * sin(2 * M_PI * 3 * f)) * (f > 1.0 / 3 && f < 2.0 / 3 ? 1.15 : 1.0);
}

static double outlier(uint64_t *s, double p, double lo, double hi)
{
    return sim_unit(s) < p ? lo + (hi - lo) * sim_unit(s) : 1.0;
}

typedef struct scenario {
    const char *name;
    abstats_design design;
    double delta;
    uint64_t horizon;             /* pairs, or blocks */
    double per_s;                 /* pairs or blocks per second */
    double out_p, out_lo, out_hi; /* outliers: probability, range of the factor */
} scenario;

/* One draw: a duet pair (i-th of n) or a block. */
static void sim_pair(const scenario *sc, uint64_t *s, uint64_t i, double *a, double *b)
{
    uint64_t n = sc->horizon;
    double delta = sc->delta;
    double c = 1000 * exp(0.3 * sim_normal(s)) * drift((double)i / (double)n);
    double second = 0.97; /* the variant running second in the pair */
    int b_first = (int)(sim_next(s) >> 63);
    *a = c * (b_first ? second : 1) * exp(0.1 * sim_normal(s)) *
         outlier(s, sc->out_p, sc->out_lo, sc->out_hi);
    *b = c * (b_first ? 1 : second) * (1 + delta) * exp(0.1 * sim_normal(s)) *
         outlier(s, sc->out_p, sc->out_lo, sc->out_hi);
}

static double sim_block(const scenario *sc, uint64_t *s, uint64_t i, bool is_b)
{
    return 5e6 * drift((double)i / (double)sc->horizon) * (is_b ? 1 + sc->delta : 1) *
           exp(0.15 * sim_normal(s)) * outlier(s, sc->out_p, sc->out_lo, sc->out_hi);
}

typedef struct outcome {
    int verdicts[5];
    int naive_fp;        /* naive rule, same data */
    double *stop;        /* adds at the stop, per experiment */
    double mor_bias_sum; /* mean-of-ratios minus 1, summed (duet A/A) */
    double rom_bias_sum; /* ratio of means minus 1, summed */
} outcome;

/* Runs experiment `e` of scenario `sc`. Returns 0 or -1 if abstats failed. */
static int run_one(const scenario *sc, uint32_t e, uint32_t n_looks, uint32_t n_boot,
                   abstats_acc *acc, outcome *o)
{
    uint64_t s = UINT64_C(0x5eed) + e * UINT64_C(1000003) + (uint64_t)(sc->delta * 1e6);
    abstats_opts opts, naive;
    abstats_opts_default(&opts);
    opts.n_looks = n_looks;
    opts.n_boot = n_boot;
    opts.horizon = sc->horizon;
    opts.seed = e + 1;
    /* The naive rule: a 95% interval read as if each look were the only one. */
    naive = opts;
    naive.alpha = 0.05;
    naive.n_looks = 1;
    abstats_reset(acc);
    uint64_t added = 0;
    double mor = 0, sum_a = 0, sum_b = 0;
    bool naive_fired = false, naive_done = sc->delta != 0, done = false;
    uint64_t stop = 0;
    abstats_result r = {.verdict = ABSTATS_UNKNOWN};
    bool abba = false;
    for (uint32_t k = 1; k <= n_looks; k++) {
        for (; added < sc->horizon * k / n_looks; added++) {
            int rc;
            if (sc->design == ABSTATS_DUET) {
                double a, b;
                sim_pair(sc, &s, added, &a, &b);
                mor += b / a;
                sum_a += a;
                sum_b += b;
                rc = abstats_paired_add(acc, a, b, 256);
            } else {
                if (added % 4 == 0)
                    abba = sim_next(&s) & 1;
                int j = (int)(added % 4);
                bool is_b = abba ? (j == 1 || j == 2) : (j == 0 || j == 3);
                double v = sim_block(sc, &s, added, is_b);
                rc = abstats_block_add(acc, is_b ? ABSTATS_B : ABSTATS_A, v, 1);
            }
            if (rc != 0)
                return -1;
        }
        if (!naive_done) {
            abstats_result nr;
            if (abstats_estimate(acc, &naive, &nr) != 0)
                return -1;
            naive_fired = nr.verdict == ABSTATS_FASTER || nr.verdict == ABSTATS_SLOWER;
            naive_done = naive_fired || nr.verdict == ABSTATS_SAME;
        }
        if (!done) {
            if (abstats_estimate(acc, &opts, &r) != 0)
                return -1;
            done = abstats_decided(r.verdict);
            stop = added;
        }
        /* Both rules see the same stream; it goes on while either needs it. */
        if (done && naive_done)
            break;
    }
    o->verdicts[r.verdict]++;
    o->naive_fp += naive_fired;
    o->stop[e] = (double)stop;
    if (sc->design == ABSTATS_DUET && added > 0) {
        o->mor_bias_sum += mor / (double)added - 1;
        o->rom_bias_sum += sum_b / sum_a - 1;
    }
    return 0;
}

static int run_scenario(const scenario *sc, uint32_t n_exp, uint32_t n_looks, uint32_t n_boot)
{
    abstats_acc acc;
    if (abstats_init(&acc, sc->design, 0, 0) != 0)
        return -1;
    outcome o = {.stop = calloc(n_exp, sizeof(double))};
    if (!o.stop) {
        abstats_destroy(&acc);
        return -1;
    }
    uint64_t t0 = bench_now_ns();
    int rc = 0;
    for (uint32_t e = 0; e < n_exp && rc == 0; e++)
        rc = run_one(sc, e, n_looks, n_boot, &acc, &o);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    if (rc == 0) {
        const char *unit = sc->design == ABSTATS_DUET ? "pairs" : "blocks";
        printf("\n## %s: %s, delta %+.1f%%, time limit %.0f s = %llu %s, %u experiments "
               "(%.1f s of compute)\n",
               sc->name, sc->design == ABSTATS_DUET ? "duet" : "interleaved", sc->delta * 100,
               (double)sc->horizon / sc->per_s, (unsigned long long)sc->horizon, unit, n_exp, secs);
        printf("verdicts: same %d, faster %d, slower %d, unknown %d, unstable %d\n",
               o.verdicts[ABSTATS_SAME], o.verdicts[ABSTATS_FASTER], o.verdicts[ABSTATS_SLOWER],
               o.verdicts[ABSTATS_UNKNOWN], o.verdicts[ABSTATS_UNSTABLE]);
        double lo, hi;
        if (sc->delta == 0) {
            int fp = o.verdicts[ABSTATS_FASTER] + o.verdicts[ABSTATS_SLOWER];
            bench_clopper_pearson(fp, (int)n_exp, &lo, &hi);
            printf("false-positive rate (abstats, alpha 1%% over %u looks): %d/%u = %.2f%% "
                   "[95%% CI %.2f..%.2f%%]\n",
                   n_looks, fp, n_exp, 100.0 * fp / n_exp, 100 * lo, 100 * hi);
            bench_clopper_pearson(o.naive_fp, (int)n_exp, &lo, &hi);
            printf("false-positive rate (baseline: naive 95%% CI at every look):   %d/%u = "
                   "%.2f%% [95%% CI %.2f..%.2f%%]\n",
                   o.naive_fp, n_exp, 100.0 * o.naive_fp / n_exp, 100 * lo, 100 * hi);
            if (sc->design == ABSTATS_DUET)
                printf("A/A bias, mean over experiments: ratio of means %+.3f%%, mean of "
                       "per-pair ratios %+.3f%%\n",
                       100 * o.rom_bias_sum / n_exp, 100 * o.mor_bias_sum / n_exp);
        } else {
            abstats_verdict want = sc->delta > 0 ? ABSTATS_SLOWER : ABSTATS_FASTER;
            bench_clopper_pearson(o.verdicts[want], (int)n_exp, &lo, &hi);
            printf("detected (%s): %d/%u = %.1f%% [95%% CI %.1f..%.1f%%]\n",
                   abstats_verdict_name(want), o.verdicts[want], n_exp,
                   100.0 * o.verdicts[want] / n_exp, 100 * lo, 100 * hi);
        }
        double med = bench_median(o.stop, n_exp); /* sorts o.stop */
        double p90 = bench_quantile_sorted(o.stop, n_exp, 0.9);
        printf("data at the stop: median %.0f %s (%.1f s), p90 %.0f %s (%.1f s)\n", med, unit,
               med / sc->per_s, p90, unit, p90 / sc->per_s);
    }
    free(o.stop);
    abstats_destroy(&acc);
    return rc;
}

/* Median wall time of abstats_estimate on a full accumulator. */
static int time_estimate(uint32_t n_boot)
{
    abstats_acc acc;
    if (abstats_init(&acc, ABSTATS_DUET, 0, 0) != 0)
        return -1;
    uint64_t s = 99;
    const scenario sc = {"cost", ABSTATS_DUET, 0, acc.max_units, 1, 0.01, 1.2, 2};
    for (uint32_t i = 0; i < acc.max_units; i++) {
        double a, b;
        sim_pair(&sc, &s, i, &a, &b);
        if (abstats_paired_add(&acc, a, b, 256) != 0)
            return -1;
    }
    abstats_opts opts;
    abstats_opts_default(&opts);
    opts.n_boot = n_boot;
    double t[7];
    for (int k = 0; k < 7; k++) {
        abstats_result r;
        uint64_t t0 = bench_now_ns();
        if (abstats_estimate(&acc, &opts, &r) != 0)
            return -1;
        t[k] = (double)(bench_now_ns() - t0) / 1e6;
    }
    printf("\n## cost: abstats_estimate over %u units, %u replicates: median %.1f ms (7 runs)\n",
           acc.max_units, n_boot, bench_median(t, 7));
    abstats_destroy(&acc);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: obs-bench-abstats [-n experiments] [-l looks] [-b replicates] "
               "[-r duet pairs/s] [-t duet time limit s] [-i interleaved time limit s] "
               "[-s only scenarios whose name contains this]\n"
               "defaults: -n 200 -l 10 -b 2000 -r 100 -t 60 -i 600 (blocks of 1 s)\n");
}

int main(int argc, char **argv)
{
    uint32_t n_exp = 200, n_looks = 10, n_boot = 2000;
    double rate = 100, t_duet = 60, t_inter = 600;
    const char *only = NULL;
    int c;
    while ((c = getopt(argc, argv, "n:l:b:r:t:i:s:h")) != -1) {
        switch (c) {
        case 'n': n_exp = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'l': n_looks = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'b': n_boot = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'r': rate = strtod(optarg, NULL); break;
        case 't': t_duet = strtod(optarg, NULL); break;
        case 'i': t_inter = strtod(optarg, NULL); break;
        case 's': only = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (n_exp == 0 || n_looks == 0 || n_boot < 100 || !(rate > 0) || !(t_duet > 0) ||
        !(t_inter >= 4)) {
        usage(stderr);
        return 2;
    }
    bench_print_header(stdout, "obs-bench-abstats", argc, argv);
    printf("# threshold 1%%, alpha 1%%, %u looks, %u bootstrap replicates; duet at %.0f "
           "pairs/s\n",
           n_looks, n_boot, rate);
    uint64_t h_duet = (uint64_t)(t_duet * rate), h_inter = (uint64_t)t_inter;
    /* CPU time does not count time off the CPU: its outliers are runs
     * slowed by cold caches after a context switch or an interrupt (1% of
     * runs, 1.2-2x). Wall time also counts preemption: 1% of runs 2-10x. */
    const scenario scenarios[] = {
        {"A/A, CPU ns/record", ABSTATS_DUET, 0.0, h_duet, rate, 0.01, 1.2, 2},
        {"+2% CPU ns/record", ABSTATS_DUET, 0.02, h_duet, rate, 0.01, 1.2, 2},
        {"-2% CPU ns/record", ABSTATS_DUET, -0.02, h_duet, rate, 0.01, 1.2, 2},
        {"A/A, wall ns/record", ABSTATS_DUET, 0.0, h_duet, rate, 0.01, 2, 10},
        {"+2% wall ns/record", ABSTATS_DUET, 0.02, h_duet, rate, 0.01, 2, 10},
        {"A/A, p99 latency", ABSTATS_INTERLEAVED, 0.0, h_inter, 1, 0.02, 1.5, 4},
        {"+5% p99 latency", ABSTATS_INTERLEAVED, 0.05, h_inter, 1, 0.02, 1.5, 4},
    };
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        if ((!only || strstr(scenarios[i].name, only)) &&
            run_scenario(&scenarios[i], n_exp, n_looks, n_boot) != 0) {
            fprintf(stderr, "obs-bench-abstats: abstats failed in '%s'\n", scenarios[i].name);
            return 1;
        }
    if (time_estimate(n_boot) != 0) {
        fprintf(stderr, "obs-bench-abstats: abstats failed while timing\n");
        return 1;
    }
    return 0;
}
