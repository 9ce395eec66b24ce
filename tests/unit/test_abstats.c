/*
 * test_abstats.c - the A/B statistics against known distributions: interval
 * coverage over simulated experiments with a known true difference, A/A
 * giving SAME, +-10% giving SLOWER/FASTER through the sequential looks,
 * UNKNOWN and UNSTABLE, the direction of throughput, drift cancelling in
 * interleaved rounds, the geometric scale (exact ratios, and what it gains on
 * blocks with stalls without losing the A/A guarantee), merging of units in
 * fixed memory, and the rank tests against small cases computed by hand.
 * Every simulation has a fixed seed, so a run is deterministic; the
 * tolerances are chosen so that a correct implementation passes for almost
 * every seed (stated at each test) while the mistakes they guard against
 * fail by a wide margin.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lab/abstats.h"
#include "observatory/stage.h"

/* The simulations' own generator (independent of the one inside abstats). */
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

/* A duet batch pair: the batch's own cost (shared by both variants, spread
 * sigma_batch), each variant's run noise (sigma), B scaled by 1 + delta.
 * Both noises are lognormal with the same law, so the true ratio of means
 * is exactly 1 + delta. */
static void sim_pair(uint64_t *s, double delta, double sigma_batch, double sigma, double *a,
                     double *b)
{
    double c = 1000 * exp(sigma_batch * sim_normal(s));
    *a = c * exp(sigma * sim_normal(s));
    *b = c * (1 + delta) * exp(sigma * sim_normal(s));
}

static abstats_opts test_opts(uint64_t seed)
{
    abstats_opts o;
    abstats_opts_default(&o);
    o.n_boot = 500; /* enough for a standard error within ~3%; keeps tests fast */
    o.seed = seed;
    return o;
}

/* A whole sequential duet experiment: `horizon` pairs at most, n_looks
 * looks evenly spaced, stopping at the first decided verdict. */
static abstats_verdict run_duet(uint64_t seed, double delta, double sigma, uint64_t horizon,
                                uint32_t n_looks, abstats_result *res)
{
    abstats_acc acc;
    assert_int_equal(abstats_init(&acc, ABSTATS_DUET, 0, 0), OBS_OK);
    abstats_opts o = test_opts(seed);
    o.horizon = horizon;
    o.n_looks = n_looks;
    uint64_t s = seed * 7919 + 17, added = 0;
    for (uint32_t k = 1; k <= n_looks; k++) {
        for (; added < horizon * k / n_looks; added++) {
            double a, b;
            sim_pair(&s, delta, 0.3, sigma, &a, &b);
            assert_int_equal(abstats_paired_add(&acc, a, b, 64), OBS_OK);
        }
        assert_int_equal(abstats_estimate(&acc, &o, res), OBS_OK);
        if (abstats_decided(res->verdict))
            break;
    }
    abstats_destroy(&acc);
    return res->verdict;
}

/* 200 experiments of 100 pairs with a true delta of +5% (sigma 0.2 per
 * variant on top of a 0.3 batch spread). The number of 95% intervals that
 * cover the truth is Binomial(200, 0.95) for an exact interval: mean 190,
 * sd 3.1. At least 180 (-3.2 sd, P(fail) ~ 0.2% for a correct interval,
 * a little more for the percentile bootstrap's slight undercoverage at
 * n = 100) and at most 199 (P(all 200) = 0.95^200 = 3.5e-5). An interval
 * half as wide as it should be covers ~68% (136 of 200); one twice as wide
 * covers all 200. The same bounds apply to the decision interval set to
 * 95% (alpha 0.05, one look). */
static void test_ci_coverage(void **state)
{
    (void)state;
    const double truth = 0.05;
    int covered = 0, covered_decision = 0;
    abstats_acc acc;
    assert_int_equal(abstats_init(&acc, ABSTATS_DUET, 0, 0), OBS_OK);
    for (uint64_t e = 0; e < 200; e++) {
        abstats_reset(&acc);
        uint64_t s = 1000 + e;
        for (int i = 0; i < 100; i++) {
            double a, b;
            sim_pair(&s, truth, 0.3, 0.2, &a, &b);
            assert_int_equal(abstats_paired_add(&acc, a, b, 1), OBS_OK);
        }
        abstats_opts o = test_opts(e + 1);
        o.alpha = 0.05;
        o.n_looks = 1;
        abstats_result r;
        assert_int_equal(abstats_estimate(&acc, &o, &r), OBS_OK);
        assert_int_equal(r.n_units, 100);
        assert_true(r.ci_lo <= r.delta && r.delta <= r.ci_hi);
        covered += r.ci_lo <= truth && truth <= r.ci_hi;
        covered_decision += r.decision_lo <= truth && truth <= r.decision_hi;
        assert_true(fabs(r.decision_level - 0.95) < 1e-12);
    }
    abstats_destroy(&acc);
    print_message("coverage of the 95%% interval: percentile %d/200, normal %d/200\n", covered,
                  covered_decision);
    assert_in_range(covered, 180, 199);
    assert_in_range(covered_decision, 180, 199);
}

/* A/A: 20 short sequential runs (1000 pairs, 5 looks, sigma 0.03 per
 * variant): at the end the decision interval's half-width is ~0.4%, so the
 * estimate has to stray 3 standard errors to miss SAME. The requirement is
 * at least 19 of 20; a false FASTER/SLOWER is allowed alpha = 1% of the time
 * overall, so none is expected here. */
static void test_aa_gives_same(void **state)
{
    (void)state;
    int same = 0, false_pos = 0;
    for (uint64_t e = 0; e < 20; e++) {
        abstats_result r;
        abstats_verdict v = run_duet(e + 1, 0.0, 0.03, 1000, 5, &r);
        same += v == ABSTATS_SAME;
        false_pos += v == ABSTATS_FASTER || v == ABSTATS_SLOWER;
        assert_true(fabs(r.delta) < 0.01);
    }
    print_message("A/A: %d/20 same, %d false positives\n", same, false_pos);
    assert_true(same >= 19);
    assert_int_equal(false_pos, 0);
}

/* +10% and -10% work, same runs: decided in the first look (200 pairs, where
 * the decision half-width is ~1%), in every one of 10 runs. */
static void test_plus_minus_ten_percent(void **state)
{
    (void)state;
    for (uint64_t e = 0; e < 10; e++) {
        abstats_result r;
        assert_int_equal(run_duet(100 + e, 0.10, 0.03, 1000, 5, &r), ABSTATS_SLOWER);
        assert_int_equal(r.n_a, 200);
        assert_true(fabs(r.delta - 0.10) < 0.02); /* 0.02 is ~6 standard errors */
        assert_true(r.decision_lo > 0.05);
        assert_true(r.p_mann_whitney < 0.01);
        assert_true(r.p_signed_rank < 1e-6);
        assert_int_equal(run_duet(200 + e, -0.10, 0.03, 1000, 5, &r), ABSTATS_FASTER);
        assert_true(fabs(r.delta + 0.10) < 0.02);
        assert_true(r.decision_hi < -0.05);
    }
}

/* Below min_samples units nothing is decided, however clear the data; the
 * point estimate is still given, the intervals are not. */
static void test_tiny_sample_is_unknown(void **state)
{
    (void)state;
    abstats_acc acc;
    assert_int_equal(abstats_init(&acc, ABSTATS_DUET, 0, 0), OBS_OK);
    abstats_opts o = test_opts(3);
    abstats_result r;
    assert_int_equal(abstats_estimate(&acc, &o, &r), OBS_OK);
    assert_int_equal(r.verdict, ABSTATS_UNKNOWN);
    assert_true(isnan(r.delta));
    for (int i = 0; i < 5; i++)
        assert_int_equal(abstats_paired_add(&acc, 100, 150, 1), OBS_OK);
    o.horizon = 10; /* even at the time limit: too few to say anything */
    assert_int_equal(abstats_estimate(&acc, &o, &r), OBS_OK);
    assert_int_equal(r.verdict, ABSTATS_UNKNOWN);
    assert_int_equal(r.n_units, 5);
    assert_true(fabs(r.delta - 0.5) < 1e-12);
    assert_true(isnan(r.ci_lo) && isnan(r.decision_hi));
    abstats_destroy(&acc);
}

/* Noise of sigma 1 (costs varying by a factor of e between runs of the same
 * batch) with a horizon of 200 pairs: after 100, the decision interval is
 * about +-50%, and projected to 200 still +-35%, nowhere near +-1%:
 * UNSTABLE. Without a horizon the same data are only UNKNOWN. */
static void test_huge_noise_is_unstable(void **state)
{
    (void)state;
    abstats_acc acc;
    assert_int_equal(abstats_init(&acc, ABSTATS_DUET, 0, 0), OBS_OK);
    uint64_t s = 42;
    for (int i = 0; i < 100; i++) {
        double a, b;
        sim_pair(&s, 0.0, 0.3, 1.0, &a, &b);
        assert_int_equal(abstats_paired_add(&acc, a, b, 1), OBS_OK);
    }
    abstats_opts o = test_opts(4);
    abstats_result r;
    assert_int_equal(abstats_estimate(&acc, &o, &r), OBS_OK);
    assert_int_equal(r.verdict, ABSTATS_UNKNOWN);
    assert_true(isnan(r.projected_half));
    o.horizon = 200;
    assert_int_equal(abstats_estimate(&acc, &o, &r), OBS_OK);
    assert_int_equal(r.verdict, ABSTATS_UNSTABLE);
    assert_string_equal(abstats_verdict_name(r.verdict), "unstable");
    assert_false(abstats_decided(r.verdict));
    assert_true(r.projected_half > 0.1);
    /* With a horizon a hundred times longer it could still be decided. */
    o.horizon = 20000000;
    assert_int_equal(abstats_estimate(&acc, &o, &r), OBS_OK);
    assert_int_equal(r.verdict, ABSTATS_UNKNOWN);
    abstats_destroy(&acc);
}

/* Interleaved ABBA/BAAB rounds of per-block values: a strong drift (the
 * machine gets 3x slower over the run) and block noise of 5%. */
static void fill_interleaved(abstats_acc *acc, uint64_t seed, int n_rounds, double delta)
{
    uint64_t s = seed;
    for (int k = 0; k < n_rounds; k++) {
        bool abba = sim_next(&s) & 1;
        for (int j = 0; j < 4; j++) {
            int block = 4 * k + j;
            bool is_b = abba ? (j == 1 || j == 2) : (j == 0 || j == 3);
            double drift = 1 + 2.0 * block / (4.0 * n_rounds);
            double v = 100 * drift * (is_b ? 1 + delta : 1) * exp(0.05 * sim_normal(&s));
            assert_int_equal(abstats_block_add(acc, is_b ? ABSTATS_B : ABSTATS_A, v, 1), OBS_OK);
        }
    }
}

/* Throughput is better higher: +10% throughput of B is FASTER, and the same
 * numbers read as a cost are SLOWER. */
static void test_throughput_direction(void **state)
{
    (void)state;
    abstats_acc acc;
    assert_int_equal(abstats_init(&acc, ABSTATS_INTERLEAVED, 4, 0), OBS_OK);
    fill_interleaved(&acc, 5, 100, 0.10);
    assert_int_equal(abstats_count(&acc, ABSTATS_A), 200);
    assert_int_equal(abstats_count(&acc, ABSTATS_B), 200);
    abstats_opts o = test_opts(5);
    abstats_result r;
    o.direction = ABSTATS_HIGHER_IS_BETTER;
    assert_int_equal(abstats_estimate(&acc, &o, &r), OBS_OK);
    assert_int_equal(r.n_units, 100);
    assert_int_equal(r.verdict, ABSTATS_FASTER);
    assert_true(fabs(r.delta - 0.10) < 0.02);
    o.direction = ABSTATS_LOWER_IS_BETTER;
    assert_int_equal(abstats_estimate(&acc, &o, &r), OBS_OK);
    assert_int_equal(r.verdict, ABSTATS_SLOWER);
    abstats_destroy(&acc);
}

/* The drift above spreads each variant's blocks by +-50%, ten times the
 * block noise. Resampling whole rounds keeps each round's A and B together,
 * so the interval reflects the 5% noise, not the drift: A/A is SAME with a
 * decision interval ~1.3% wide (2 * 2.576 * 0.05 / sqrt(400)). Resampling
 * the blocks of each variant separately would see the drift's spread
 * (coefficient of variation 0.29) and give one ~7% wide. */
static void test_interleaved_rounds_cancel_drift(void **state)
{
    (void)state;
    abstats_acc acc;
    assert_int_equal(abstats_init(&acc, ABSTATS_INTERLEAVED, 0, 0), OBS_OK);
    fill_interleaved(&acc, 6, 400, 0.0);
    abstats_opts o = test_opts(6);
    o.n_looks = 1;
    abstats_result r;
    assert_int_equal(abstats_estimate(&acc, &o, &r), OBS_OK);
    assert_int_equal(r.verdict, ABSTATS_SAME);
    assert_true(r.decision_hi - r.decision_lo < 0.02);
    assert_true(fabs(r.delta) < 0.005);
    /* The rank tests on round means see no difference either. */
    assert_true(r.p_signed_rank > 0.01);
    abstats_destroy(&acc);
}

/* Past max_units, units merge in pairs: memory stays fixed, sums stay exact,
 * and the estimate is that of the same data. */
static void test_units_merge_in_fixed_memory(void **state)
{
    (void)state;
    abstats_acc acc;
    assert_int_equal(abstats_init(&acc, ABSTATS_DUET, 0, 10), OBS_OK);
    assert_int_equal(acc.max_units, 16);
    uint64_t s = 9;
    double sa = 0, sb = 0, w = 0;
    for (int i = 0; i < 1000; i++) {
        double a, b, wt = 1 + (double)(i % 7);
        sim_pair(&s, 0.2, 0.3, 0.05, &a, &b);
        sa += wt * a;
        sb += wt * b;
        w += wt;
        assert_int_equal(abstats_paired_add(&acc, a, b, wt), OBS_OK);
        assert_true(acc.n_units <= 16);
    }
    /* 1000 pairs in units of 64 after 6 merges: 15 full ones + 40 open. */
    assert_int_equal(acc.n_merges, 6);
    assert_int_equal(acc.per_unit, 64);
    assert_int_equal(acc.n_units, 15);
    assert_int_equal(acc.open_adds, 40);
    abstats_opts o = test_opts(9);
    o.min_samples = 10;
    abstats_result r;
    assert_int_equal(abstats_estimate(&acc, &o, &r), OBS_OK);
    assert_int_equal(r.n_units, 16);
    assert_int_equal(r.n_a, 1000);
    assert_true(fabs(r.mean_a / (sa / w) - 1) < 1e-12);
    assert_true(fabs(r.mean_b / (sb / w) - 1) < 1e-12);
    assert_true(fabs(r.delta - 0.2) < 0.02);
    assert_int_equal(r.verdict, ABSTATS_SLOWER);
    /* The bootstrap reads the closed units and the open one, nothing else:
     * poisoning the slots after the closed units changes nothing. */
    for (size_t k = acc.n_units; k < acc.max_units; k++)
        acc.units[k] = (abstats_unit){1e300, 1, -1e300, 1};
    abstats_result p;
    assert_int_equal(abstats_estimate(&acc, &o, &p), OBS_OK);
    assert_int_equal(p.verdict, r.verdict);
    assert_true(p.ci_lo == r.ci_lo && p.ci_hi == r.ci_hi && p.se_log == r.se_log);
    assert_true(p.decision_lo == r.decision_lo && p.decision_hi == r.decision_hi);
    abstats_destroy(&acc);
}

/* Same data and seed, same result to the bit; another seed moves the
 * interval a little, not the verdict. */
static void test_deterministic(void **state)
{
    (void)state;
    abstats_acc acc;
    assert_int_equal(abstats_init(&acc, ABSTATS_DUET, 0, 0), OBS_OK);
    uint64_t s = 10;
    for (int i = 0; i < 300; i++) {
        double a, b;
        sim_pair(&s, 0.03, 0.3, 0.05, &a, &b);
        assert_int_equal(abstats_paired_add(&acc, a, b, 1), OBS_OK);
    }
    abstats_opts o = test_opts(77);
    abstats_result r1, r2, r3;
    assert_int_equal(abstats_estimate(&acc, &o, &r1), OBS_OK);
    assert_int_equal(abstats_estimate(&acc, &o, &r2), OBS_OK);
    assert_memory_equal(&r1, &r2, sizeof(r1));
    o.seed = 78;
    assert_int_equal(abstats_estimate(&acc, &o, &r3), OBS_OK);
    assert_true(r1.ci_lo != r3.ci_lo);
    assert_true(fabs(r1.ci_lo - r3.ci_lo) < 0.005);
    assert_int_equal(r1.verdict, r3.verdict);
    assert_true(r1.delta == r3.delta);
    /* The decision interval is Bonferroni's over the planned looks: with
     * alpha 1% and 10 looks, log R +- z(1 - 0.0005) * SE, z = 3.2905. */
    assert_true(fabs(r1.decision_level - 0.999) < 1e-12);
    double half = (log1p(r1.decision_hi) - log1p(r1.decision_lo)) / 2;
    assert_true(fabs(half / r1.se_log - 3.290526731491926) < 1e-9);
    assert_true(fabs((log1p(r1.decision_hi) + log1p(r1.decision_lo)) / 2 - log1p(r1.delta)) <
                1e-12);
    abstats_destroy(&acc);
}

/* Allocations/record of two allocation-free versions is 0 vs 0: SAME
 * exactly. If only B allocates there is no relative scale, but the sign is
 * certain. */
static void test_zero_means(void **state)
{
    (void)state;
    abstats_acc acc;
    assert_int_equal(abstats_init(&acc, ABSTATS_DUET, 0, 0), OBS_OK);
    abstats_opts o = test_opts(11);
    abstats_result r;
    for (int i = 0; i < 40; i++)
        assert_int_equal(abstats_paired_add(&acc, 0, 0, 64), OBS_OK);
    assert_int_equal(abstats_estimate(&acc, &o, &r), OBS_OK);
    assert_int_equal(r.verdict, ABSTATS_SAME);
    assert_true(r.delta == 0 && r.ci_lo == 0 && r.ci_hi == 0);
    assert_true(r.p_mann_whitney == 1);
    abstats_reset(&acc);
    for (int i = 0; i < 40; i++)
        assert_int_equal(abstats_paired_add(&acc, 0, i % 2 ? 1 : 2, 64), OBS_OK);
    assert_int_equal(abstats_estimate(&acc, &o, &r), OBS_OK);
    assert_true(isinf(r.delta) && r.delta > 0);
    assert_int_equal(r.verdict, ABSTATS_SLOWER);
    abstats_destroy(&acc);
}

static void test_invalid_input(void **state)
{
    (void)state;
    abstats_acc acc;
    assert_int_equal(abstats_init(&acc, ABSTATS_DUET, 4, 0), OBS_EINVAL);
    assert_int_equal(abstats_init(&acc, (abstats_design)7, 0, 0), OBS_EINVAL);
    assert_int_equal(abstats_init(&acc, ABSTATS_DUET, 0, 0), OBS_OK);
    assert_int_equal(abstats_paired_add(&acc, NAN, 1, 1), OBS_EINVAL);
    assert_int_equal(abstats_paired_add(&acc, 1, INFINITY, 1), OBS_EINVAL);
    assert_int_equal(abstats_paired_add(&acc, -1, 1, 1), OBS_EINVAL);
    assert_int_equal(abstats_paired_add(&acc, 1, 1, 0), OBS_EINVAL);
    assert_int_equal(abstats_block_add(&acc, ABSTATS_A, 1, 1), OBS_EINVAL);
    assert_int_equal(abstats_count(&acc, ABSTATS_A), 0);
    abstats_opts o;
    abstats_opts_default(&o);
    abstats_result r;
    o.threshold = 0;
    assert_int_equal(abstats_estimate(&acc, &o, &r), OBS_EINVAL);
    abstats_opts_default(&o);
    o.n_looks = 0;
    assert_int_equal(abstats_estimate(&acc, &o, &r), OBS_EINVAL);
    abstats_destroy(&acc);
    abstats_destroy(NULL);
    assert_int_equal(abstats_init(&acc, ABSTATS_INTERLEAVED, 0, 0), OBS_OK);
    assert_int_equal(acc.round_len, 4);
    assert_int_equal(abstats_paired_add(&acc, 1, 1, 1), OBS_EINVAL);
    assert_int_equal(abstats_block_add(&acc, (abstats_variant)2, 1, 1), OBS_EINVAL);
    abstats_destroy(&acc);
}

/* The geometric scale: the same comparison on log values. Constant blocks
 * give the exact ratio and the geometric means; the scale can be set only
 * before the first add, survives a reset, and refuses values <= 0 (whose
 * log would be -inf or NaN) where the arithmetic scale accepts 0. */
static void test_geometric_scale_exact(void **state)
{
    (void)state;
    abstats_acc acc;
    assert_int_equal(abstats_init(&acc, ABSTATS_INTERLEAVED, 0, 0), OBS_OK);
    assert_int_equal(acc.scale, ABSTATS_ARITHMETIC);
    assert_int_equal(abstats_set_scale(&acc, (abstats_scale)5), OBS_EINVAL);
    assert_int_equal(abstats_set_scale(&acc, ABSTATS_GEOMETRIC), OBS_OK);
    assert_int_equal(abstats_block_add(&acc, ABSTATS_A, 0, 1), OBS_EINVAL);
    assert_int_equal(abstats_block_add(&acc, ABSTATS_A, -1, 1), OBS_EINVAL);
    for (int k = 0; k < 40; k++) {
        assert_int_equal(abstats_block_add(&acc, ABSTATS_A, 400, 1), OBS_OK);
        assert_int_equal(abstats_block_add(&acc, ABSTATS_B, 420, 1), OBS_OK);
        assert_int_equal(abstats_block_add(&acc, ABSTATS_B, 420, 1), OBS_OK);
        assert_int_equal(abstats_block_add(&acc, ABSTATS_A, 400, 1), OBS_OK);
    }
    assert_int_equal(abstats_set_scale(&acc, ABSTATS_ARITHMETIC), OBS_EINVAL);
    abstats_opts o = test_opts(9);
    abstats_result r;
    assert_int_equal(abstats_estimate(&acc, &o, &r), OBS_OK);
    assert_true(fabs(r.mean_a - 400) < 1e-9);
    assert_true(fabs(r.mean_b - 420) < 1e-9);
    assert_true(fabs(r.delta - 0.05) < 1e-12);
    assert_int_equal(r.verdict, ABSTATS_SLOWER);
    /* Geometric means of 100 and 400 (A) against 200 and 200 (B): 200 each,
     * where the arithmetic means (250 against 200) differ by -20%. */
    abstats_reset(&acc);
    assert_int_equal(acc.scale, ABSTATS_GEOMETRIC);
    for (int k = 0; k < 40; k++) {
        assert_int_equal(abstats_block_add(&acc, ABSTATS_A, 100, 1), OBS_OK);
        assert_int_equal(abstats_block_add(&acc, ABSTATS_B, 200, 1), OBS_OK);
        assert_int_equal(abstats_block_add(&acc, ABSTATS_B, 200, 1), OBS_OK);
        assert_int_equal(abstats_block_add(&acc, ABSTATS_A, 400, 1), OBS_OK);
    }
    assert_int_equal(abstats_estimate(&acc, &o, &r), OBS_OK);
    assert_true(fabs(r.delta) < 1e-12);
    assert_true(fabs(r.mean_a - 200) < 1e-9);
    assert_int_equal(r.verdict, ABSTATS_SAME);
    abstats_destroy(&acc);
    assert_int_equal(abstats_init(&acc, ABSTATS_DUET, 0, 0), OBS_OK);
    assert_int_equal(abstats_paired_add(&acc, 0, 1, 1), OBS_OK);
    assert_int_equal(abstats_set_scale(&acc, ABSTATS_GEOMETRIC), OBS_EINVAL);
    abstats_destroy(&acc);
}

/* A block's p99 latency on a shared machine: lognormal (sigma 0.3) around
 * 400 us, and in 30% of the blocks another process held a core, which
 * multiplies it by a Pareto factor (alpha 0.9, at least 1, at most 1000):
 * heavy enough that the arithmetic mean has no finite variance, like the
 * 50 ms blocks measured by obs-bench-ab (median 0.4 ms, a quarter above
 * 1 ms, the largest 260 ms; standard deviation of the log ~0.95). B is A
 * times 1 + delta. */
static void fill_stalls(abstats_acc *acc, uint64_t seed, int n_rounds, double delta)
{
    uint64_t s = seed;
    for (int k = 0; k < n_rounds; k++) {
        bool abba = sim_next(&s) & 1;
        for (int j = 0; j < 4; j++) {
            bool is_b = abba ? (j == 1 || j == 2) : (j == 0 || j == 3);
            double stall = sim_unit(&s) < 0.3 ? fmin(pow(sim_unit(&s), -1 / 0.9), 1000) : 1;
            double v = 400e3 * exp(0.3 * sim_normal(&s)) * stall * (is_b ? 1 + delta : 1);
            assert_int_equal(abstats_block_add(acc, is_b ? ABSTATS_B : ABSTATS_A, v, 1), OBS_OK);
        }
    }
}

/* Why p99 is compared on the geometric scale. On the blocks above, the
 * log values have a standard deviation of ~0.85 where the raw values have
 * none to speak of: over 2000 rounds (8000 blocks, under 7 minutes of
 * 50 ms blocks) the geometric comparison's standard error is ~0.02, the
 * arithmetic one's several times that and erratic (asserted: mean geometric
 * error < half the arithmetic one). A +10% change, at the level of one of
 * 10 looks: the geometric scale decides SLOWER in ~19 of 20 experiments
 * (asserted >= 16), the arithmetic one in a few (asserted: at least 8
 * fewer). A/A on the same model: false FASTER/SLOWER stay within alpha /
 * n_looks (0.1%): 0 of 200 expected, at most 2 allowed (P(> 2) ~ 1e-3 for
 * a correct interval; one half as wide as it should be gives ~17). */
static void test_geometric_scale_with_stalls(void **state)
{
    (void)state;
    abstats_acc geo, ari;
    assert_int_equal(abstats_init(&geo, ABSTATS_INTERLEAVED, 0, 0), OBS_OK);
    assert_int_equal(abstats_set_scale(&geo, ABSTATS_GEOMETRIC), OBS_OK);
    assert_int_equal(abstats_init(&ari, ABSTATS_INTERLEAVED, 0, 0), OBS_OK);
    int geo_hits = 0, ari_hits = 0;
    double se_geo = 0, se_ari = 0;
    for (uint64_t e = 0; e < 20; e++) {
        abstats_reset(&geo);
        abstats_reset(&ari);
        fill_stalls(&geo, 100 + e, 2000, 0.10);
        fill_stalls(&ari, 100 + e, 2000, 0.10);
        abstats_opts o = test_opts(e + 1);
        abstats_result rg, ra;
        assert_int_equal(abstats_estimate(&geo, &o, &rg), OBS_OK);
        assert_int_equal(abstats_estimate(&ari, &o, &ra), OBS_OK);
        assert_int_not_equal(rg.verdict, ABSTATS_FASTER);
        geo_hits += rg.verdict == ABSTATS_SLOWER;
        ari_hits += ra.verdict == ABSTATS_SLOWER;
        se_geo += rg.se_log / 20;
        se_ari += ra.se_log / 20;
    }
    printf("stalls, +10%%: geometric %d/20 slower (se %.4f), arithmetic %d/20 (se %.4f)\n",
           geo_hits, se_geo, ari_hits, se_ari);
    assert_true(se_geo < 0.5 * se_ari);
    assert_true(geo_hits >= 16);
    assert_true(geo_hits >= ari_hits + 8);
    int fp = 0;
    for (uint64_t e = 0; e < 200; e++) {
        abstats_reset(&geo);
        fill_stalls(&geo, 1000 + e, 150, 0.0);
        abstats_opts o = test_opts(e + 1);
        abstats_result r;
        assert_int_equal(abstats_estimate(&geo, &o, &r), OBS_OK);
        fp += r.verdict == ABSTATS_FASTER || r.verdict == ABSTATS_SLOWER;
    }
    printf("stalls, A/A: %d of 200 false FASTER/SLOWER on the geometric scale\n", fp);
    assert_true(fp <= 2);
    abstats_destroy(&geo);
    abstats_destroy(&ari);
}

/* Mann-Whitney, by hand.
 * (1) x = {1,2,3}, y = {4,5,6}: every y beats every x, U = 9; mean 4.5,
 *     variance 3*3*7/12 = 5.25, z = (9 - 4.5 - 0.5)/sqrt(5.25) = 1.7457,
 *     p = 2(1 - Phi(z)) = 0.0808556 (scipy's mannwhitneyu, asymptotic).
 * (2) x = {1,2,2,3}, y = {2,3,4,4}: mid-ranks 1 | 3 3 3 | 5.5 5.5 | 7.5 7.5,
 *     R_y = 3 + 5.5 + 7.5 + 7.5 = 23.5, U = 23.5 - 10 = 13.5 (counting pairs:
 *     2 -> 1 + 2*0.5, 3 -> 3 + 0.5, 4 -> 4, 4 -> 4). Ties (3,2,2) give
 *     sum(t^3 - t) = 36, variance 16/12 * (9 - 36/56) = 11.142857,
 *     z = (13.5 - 8 - 0.5)/3.338092 = 1.49786, p = 0.1341692.
 * (3) y == x: U = n^2/2, p = 1. */
static void test_mann_whitney_by_hand(void **state)
{
    (void)state;
    double u, p;
    const double x1[] = {1, 2, 3}, y1[] = {4, 5, 6};
    assert_int_equal(abstats_mann_whitney(x1, 3, y1, 3, &u, &p), OBS_OK);
    assert_true(u == 9);
    assert_true(fabs(p - 0.0808555983700523) < 1e-9);
    /* Swapped: U counts the other way, p is the same. */
    assert_int_equal(abstats_mann_whitney(y1, 3, x1, 3, &u, &p), OBS_OK);
    assert_true(u == 0);
    assert_true(fabs(p - 0.0808555983700523) < 1e-9);
    const double x2[] = {1, 2, 2, 3}, y2[] = {2, 3, 4, 4};
    assert_int_equal(abstats_mann_whitney(x2, 4, y2, 4, &u, &p), OBS_OK);
    assert_true(u == 13.5);
    assert_true(fabs(p - 0.13416918012812573) < 1e-9);
    assert_int_equal(abstats_mann_whitney(x2, 4, x2, 4, &u, &p), OBS_OK);
    assert_true(u == 8);
    assert_true(p == 1);
    assert_int_equal(abstats_mann_whitney(x2, 4, NULL, 0, &u, &p), OBS_OK);
    assert_true(p == 1);
}

/* Signed rank, by hand: d = {1, -2, 3, 4, -5, 6, 0, 2}. The zero is
 * dropped (n = 7); |d| sorted 1 2 2 3 4 5 6 has ranks 1 2.5 2.5 4 5 6 7;
 * the positive ones (1, 2, 3, 4, 6) sum to 1 + 2.5 + 4 + 5 + 7 = 19.5.
 * Mean 7*8/4 = 14, variance 7*8*15/24 - (8 - 2)/48 = 34.875,
 * z = (19.5 - 14 - 0.5)/5.9055 = 0.84667, p = 0.3971805. */
static void test_signed_rank_by_hand(void **state)
{
    (void)state;
    const double d[] = {1, -2, 3, 4, -5, 6, 0, 2};
    double w, p;
    assert_int_equal(abstats_signed_rank(d, 8, &w, &p), OBS_OK);
    assert_true(w == 19.5);
    assert_true(fabs(p - 0.39718047121992006) < 1e-9);
}

static void test_normal_quantile(void **state)
{
    (void)state;
    assert_true(fabs(abstats_normal_quantile(0.5)) < 1e-15);
    assert_true(fabs(abstats_normal_quantile(0.975) - 1.959963984540054) < 1e-12);
    assert_true(fabs(abstats_normal_quantile(0.9995) - 3.290526731491926) < 1e-12);
    assert_true(fabs(abstats_normal_quantile(0.025) + 1.959963984540054) < 1e-12);
    assert_true(fabs(abstats_normal_quantile(1e-10) + 6.361340902404056) < 1e-9);
    assert_true(isnan(abstats_normal_quantile(1.5)));
}

static void test_verdict_names(void **state)
{
    (void)state;
    assert_string_equal(abstats_verdict_name(ABSTATS_SAME), "same");
    assert_string_equal(abstats_verdict_name(ABSTATS_FASTER), "faster");
    assert_string_equal(abstats_verdict_name(ABSTATS_SLOWER), "slower");
    assert_string_equal(abstats_verdict_name(ABSTATS_UNKNOWN), "unknown");
    assert_string_equal(abstats_verdict_name(ABSTATS_UNSTABLE), "unstable");
    assert_true(abstats_decided(ABSTATS_SAME) && abstats_decided(ABSTATS_SLOWER));
    assert_false(abstats_decided(ABSTATS_UNKNOWN));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ci_coverage),
        cmocka_unit_test(test_aa_gives_same),
        cmocka_unit_test(test_plus_minus_ten_percent),
        cmocka_unit_test(test_tiny_sample_is_unknown),
        cmocka_unit_test(test_huge_noise_is_unstable),
        cmocka_unit_test(test_throughput_direction),
        cmocka_unit_test(test_interleaved_rounds_cancel_drift),
        cmocka_unit_test(test_units_merge_in_fixed_memory),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_zero_means),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_geometric_scale_exact),
        cmocka_unit_test(test_geometric_scale_with_stalls),
        cmocka_unit_test(test_mann_whitney_by_hand),
        cmocka_unit_test(test_signed_rank_by_hand),
        cmocka_unit_test(test_normal_quantile),
        cmocka_unit_test(test_verdict_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
