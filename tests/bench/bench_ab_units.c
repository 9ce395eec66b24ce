/*
 * bench_ab_units.c - the units part of obs-bench-ab: one long A/A duet whose
 * batch pairs are kept, then, on those pairs, the standard error of delta
 * from blocks of growing length against the bootstrap's with the former and
 * the current duet unit counts, and the runner replayed on short segments.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench_ab.h"
#include "bench_util.h"

/* ------------------------------------------------ 5. duet units */

/* SE of log(sum_b / sum_a) from non-overlapping blocks of `len` units of
 * units [from, to) (the delta method on block sums: each block's share of
 * B's total minus its share of A's). What the standard error is when every
 * correlation shorter than a block is counted. NaN with < 8 blocks. */
static double block_se(const abstats_unit *u, size_t from, size_t to, size_t len)
{
    size_t nb = (to - from) / len;
    if (nb < 8)
        return NAN;
    double ta = 0, tb = 0;
    for (size_t i = from; i < from + nb * len; i++)
        ta += u[i].sum_a, tb += u[i].sum_b;
    double ss = 0;
    for (size_t k = 0; k < nb; k++) {
        double a = 0, b = 0;
        for (size_t i = from + k * len; i < from + (k + 1) * len; i++)
            a += u[i].sum_a, b += u[i].sum_b;
        double d = b / tb - a / ta;
        ss += d * d;
    }
    return sqrt(ss * (double)nb / (double)(nb - 1));
}

/* Adds units [from, to) to a duet accumulator, each as one pair of its
 * means with its weight: the accumulator merges it as it would have merged
 * its pairs. */
static void add_units(abstats_acc *acc, const abstats_unit *u, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        abstats_paired_add(acc, u[i].sum_a / u[i].w_a, u[i].sum_b / u[i].w_b, u[i].w_a);
}

/* The bootstrap's standard error and 95% interval for units [from, to) fed
 * to an accumulator of `max_units`, as the runner's last look sees them. */
static int boot_se(const abstats_unit *u, size_t from, size_t to, uint32_t max_units,
                   abstats_result *r)
{
    abstats_acc acc;
    if (abstats_init(&acc, ABSTATS_DUET, 1, max_units) != 0)
        return -1;
    add_units(&acc, u, from, to);
    abstats_opts op;
    abstats_opts_default(&op);
    op.seed = 7 + from;
    int rc = abstats_estimate(&acc, &op, r);
    abstats_destroy(&acc);
    return rc;
}

/* Replays the runner on units [from, to) as if they were one A/A experiment
 * of `looks` planned looks with an accumulator of `max_units`: estimates at
 * each look (horizon: the segment) and stops at the first decided verdict.
 * Returns the verdict; *stop_frac is the share of the segment used. */
static abstats_verdict replay(const abstats_unit *u, size_t from, size_t to, uint32_t max_units,
                              const options *o, uint32_t looks, double *stop_frac)
{
    abstats_acc acc;
    abstats_verdict v = ABSTATS_UNKNOWN;
    *stop_frac = 1;
    if (abstats_init(&acc, ABSTATS_DUET, 1, max_units) != 0)
        return v;
    size_t next = from;
    for (uint32_t k = 1; k <= looks; k++) {
        size_t until = from + (to - from) * k / looks;
        add_units(&acc, u, next, until);
        next = until;
        abstats_opts op;
        abstats_opts_default(&op);
        op.threshold = o->threshold;
        op.n_looks = looks;
        op.seed = 11 + from + k;
        op.horizon = to - from; /* adds (units) by the end of the segment */
        abstats_result r;
        if (abstats_estimate(&acc, &op, &r) != 0)
            break;
        v = r.verdict;
        if (abstats_decided(v) || k == looks) {
            *stop_frac = (double)k / looks;
            break;
        }
    }
    abstats_destroy(&acc);
    return v;
}

int ab_part_units(const options *o, summary *sm)
{
    printf("\n## units: one A/A duet of %.0f s with its batch pairs kept (tp_work units %u, "
           "%.0f records/s, batch %u); the standard error of delta from blocks of L pairs, and "
           "the bootstrap's with %u units (before) and %u (now)\n",
           o->units_seconds, o->units, o->rate, o->batch, ABSTATS_DEFAULT_MAX_UNITS,
           EXP_DUET_MAX_UNITS);
    ab_print_load("before");
    bench_pipe bp;
    if (ab_pipe_start(&bp, o, o->rate, o->units, 0, 0, o->warm_s) != 0)
        return -1;
    exp_spec spec = {.stage = "work",
                     .aa = 1,
                     .threshold = o->threshold,
                     .max_seconds = o->units_seconds,
                     .n_looks = 1,
                     .seed = 6001,
                     .max_units = o->units_kept};
    experiment *e = NULL;
    char err[1024];
    abstats_acc all;
    memset(&all, 0, sizeof all);
    int rc = 0;
    if (experiment_start(bp.p, &spec, NULL, 0, &e, err, sizeof err) != 0) {
        fprintf(stderr, "obs-bench-ab: experiment_start: %s\n", err);
        rc = -1;
    } else if (!experiment_wait(e, (uint64_t)((o->units_seconds + 300) * 1e9)) ||
               experiment_copy_acc(e, EXP_M_CPU, &all) != 0) {
        rc = -1;
    }
    if (ab_pipe_finish(&bp) != 0)
        rc = -1;
    if (rc != 0 || all.n_units < 1000) {
        if (rc == 0)
            fprintf(stderr, "obs-bench-ab: units: only %zu units kept\n", all.n_units);
        abstats_destroy(&all);
        return -1;
    }
    const abstats_unit *u = all.units;
    size_t n = all.n_units, pu = (size_t)all.per_unit;
    double per_s = (double)(n * pu) / o->units_seconds;
    printf("%zu pairs in %zu units of %zu (%.0f pairs per second)\n", n * pu, n, pu, per_s);
    /* The reference: the longest blocks that still number 64 or more. */
    printf("%8s %10s %8s %12s %8s\n", "L_pairs", "L_seconds", "blocks", "se_log_%", "ratio");
    double se1 = block_se(u, 0, n, 1), se_ref = NAN;
    for (size_t len = 1; len <= n / 64; len *= 2) {
        double se = block_se(u, 0, n, len);
        printf("%8zu %10.4f %8zu %12.4f %8.2f\n", len * pu, (double)(len * pu) / per_s, n / len,
               100 * se, se / se1);
        se_ref = se;
    }
    sm->units_growth = se_ref / se1;
    sm->units_pairs = pu;
    {
        abstats_result r;
        if (boot_se(u, 0, n, EXP_DUET_MAX_UNITS, &r) == 0)
            printf("whole run: delta %+.3f%% [%+.3f%%, %+.3f%%]\n", 100 * r.delta, 100 * r.ci_lo,
                   100 * r.ci_hi);
    }
    /* Segments as long as typical experiments: the bootstrap's standard
     * error against the reference (the longest blocks' over the whole run,
     * scaled to the segment's length), and how often its 95% interval
     * misses 0 (the truth, A against A). */
    static const double seg_s[] = {5, 30};
    static const uint32_t mu[] = {ABSTATS_DEFAULT_MAX_UNITS, EXP_DUET_MAX_UNITS};
    for (size_t si = 0; si < sizeof seg_s / sizeof *seg_s; si++) {
        size_t seg = (size_t)(seg_s[si] * per_s) / pu, nseg = n / seg;
        if (nseg < 2)
            continue;
        double ref = se_ref * sqrt((double)n / (double)seg);
        for (size_t mi = 0; mi < 2; mi++) {
            double ratio[256];
            int miss = 0, k = 0;
            size_t units = 0;
            for (size_t g = 0; g < nseg && k < 256; g++) {
                abstats_result r;
                if (boot_se(u, g * seg, (g + 1) * seg, mu[mi], &r) != 0) {
                    abstats_destroy(&all);
                    return -1;
                }
                ratio[k++] = r.se_log / ref;
                if (r.ci_lo > 0 || r.ci_hi < 0) {
                    miss++;
                    printf("  segment %zu (%.0f..%.0f s), max_units %u: delta %+.3f%% [%+.3f%%, "
                           "%+.3f%%] misses 0\n",
                           g + 1, g * seg_s[si], (g + 1) * seg_s[si], mu[mi], 100 * r.delta,
                           100 * r.ci_lo, 100 * r.ci_hi);
                }
                units = r.n_units;
            }
            double med = bench_median(ratio, (size_t)k);
            printf("segments of %.0f s (%zu): max_units %4u (%zu units of %zu pairs): bootstrap "
                   "se / reference se median %.2f; 95%% CI misses 0 in %d/%d\n",
                   seg_s[si], nseg, mu[mi], units, seg * pu / (units ? units : 1), med, miss, k);
            if (si == 0)
                sm->units_se_ratio[mi] = med;
        }
    }
    /* The runner replayed on 5 s segments (10 looks, as the aa part's
     * experiments), with each capacity, on the same pairs. */
    size_t seg = (size_t)(5 * per_s) / pu, nseg = n / seg;
    for (size_t mi = 0; mi < 2 && nseg > 0; mi++) {
        int cnt[5] = {0};
        double t[1024];
        size_t k = 0;
        for (size_t g = 0; g < nseg && k < 1024; g++) {
            double f;
            cnt[replay(u, g * seg, (g + 1) * seg, mu[mi], o, 10, &f)]++;
            t[k++] = 5 * f;
        }
        printf("replay of %zu A/A experiments of 5 s, max_units %4u: same %d, faster %d, slower "
               "%d, unknown %d, unstable %d; time to the end median %.1f s\n",
               k, mu[mi], cnt[ABSTATS_SAME], cnt[ABSTATS_FASTER], cnt[ABSTATS_SLOWER],
               cnt[ABSTATS_UNKNOWN], cnt[ABSTATS_UNSTABLE], bench_median(t, k));
        sm->units_fp[mi] = cnt[ABSTATS_FASTER] + cnt[ABSTATS_SLOWER];
        sm->units_same[mi] = cnt[ABSTATS_SAME];
        sm->units_n = (int)k;
    }
    abstats_destroy(&all);
    ab_print_load("after");
    sm->units_done = 1;
    return 0;
}
