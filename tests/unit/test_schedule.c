/*
 * test_schedule.c - unit tests of core/engine/schedule.c: intended send times from
 * load phases.
 *
 * The schedule is pure (the test passes the time), so every test runs in
 * microseconds of "schedule time" per record, whatever the wall clock does.
 * Deterministic shapes (uniform arrivals) are checked exactly, to within the
 * one record that integer truncation of a time can move across a window
 * edge. Random ones (Poisson arrivals, Pareto burst lengths) are checked
 * against their expectation with a tolerance of 5 standard errors derived
 * from the sample size, stated next to each check: a correct schedule fails
 * such a check with probability below 1e-6, a wrong mean or rate by more
 * than the tolerance fails it reliably. The seeds are fixed, so the tests
 * are reproducible as well.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/schedule.h"

#define S 1000000000ull /* one second in ns */
#define T0 (5 * S)      /* an arbitrary start time */

/* Takes every record intended before `until` (absolute), as the generator
 * would with batches of `batch`; returns the count, times in *out (malloc). */
static size_t collect(schedule *sc, uint64_t until, uint32_t batch, uint64_t **out)
{
    size_t n = 0, cap = 1024;
    uint64_t *v = malloc(cap * sizeof *v);
    assert_non_null(v);
    for (;;) {
        if (n + batch > cap) {
            cap = 2 * (n + batch);
            v = realloc(v, cap * sizeof *v);
            assert_non_null(v);
        }
        uint64_t t = schedule_peek(sc, until - 1);
        if (t == SCHEDULE_NEVER || t >= until)
            break;
        uint32_t got = schedule_fill(sc, until - 1, v + n, batch);
        assert_true(got > 0);
        n += got;
    }
    *out = v;
    return n;
}

/* Records in [a, b) (absolute). */
static size_t count_in(const uint64_t *v, size_t n, uint64_t a, uint64_t b)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += v[i] >= a && v[i] < b;
    return c;
}

static void assert_near(double got, double want, double tol, const char *what)
{
    if (fabs(got - want) > tol)
        fail_msg("%s: got %.6g, want %.6g +- %.3g", what, got, want, tol);
}

/* ---------------------------------------------------------------- tests */

/* A constant rate with uniform arrivals keeps the formula of the first
 * scheduler exactly (start + floor(k * 1e9 / rate)), so existing pipelines
 * see the same intended times. */
static void test_constant_legacy(void **state)
{
    (void)state;
    cfg_load_phase ph = {
        .shape = CFG_SHAPE_CONSTANT, .rate = 3333.3, .arrival = CFG_ARRIVAL_UNIFORM};
    schedule sc;
    schedule_init(&sc, &ph, 1, 42, T0);
    uint64_t *v;
    size_t n = collect(&sc, T0 + 2 * S, 7, &v);
    assert_int_equal(n, 6667); /* k * 1e9 / 3333.3 < 2e9 for k = 0 .. 6666 */
    for (size_t k = 0; k < n; k++)
        assert_int_equal(v[k], T0 + (uint64_t)((double)k * 1e9 / 3333.3));
    free(v);
}

/* Same seed and phases: the same times, whatever the batch sizes and however
 * far behind the caller is; another seed: other Poisson times. */
static void test_determinism(void **state)
{
    (void)state;
    double steps[] = {1000, 5000, 0, 2000};
    cfg_load_phase ph[] = {
        {.shape = CFG_SHAPE_POISSON,
         .rate = 20000,
         .arrival = CFG_ARRIVAL_POISSON,
         .duration_ns = S / 2,
         .burst_factor = 4,
         .burst_ns = S / 20,
         .gap_ns = S / 10,
         .burst_dist = CFG_DIST_PARETO,
         .alpha = 1.5},
        {.shape = CFG_SHAPE_STEPS,
         .steps = steps,
         .n_steps = 4,
         .step_ns = S / 10,
         .duration_ns = S / 2,
         .arrival = CFG_ARRIVAL_POISSON},
        {.shape = CFG_SHAPE_SINE,
         .rate = 8000,
         .amplitude = 1,
         .period_ns = S / 3,
         .arrival = CFG_ARRIVAL_POISSON,
         .duration_ns = S},
        {.shape = CFG_SHAPE_RAMP,
         .from = 100,
         .to = 30000,
         .duration_ns = S,
         .arrival = CFG_ARRIVAL_UNIFORM},
    };
    schedule a, b, c;
    schedule_init(&a, ph, 4, 7, T0);
    schedule_init(&b, ph, 4, 7, T0);
    schedule_init(&c, ph, 4, 8, T0);
    uint64_t *va, *vb, *vc;
    size_t na = collect(&a, T0 + 3 * S, 1, &va);
    /* b: a late caller taking big batches at odd moments. */
    size_t nb = 0, cap = na + 1024;
    vb = malloc(cap * sizeof *vb);
    for (uint64_t now = T0; now < T0 + 3 * S; now += 37 * 1000 * 1000 + 123) {
        uint32_t got;
        while ((got = schedule_fill(&b, now, vb + nb, 256)) > 0) {
            nb += got;
            assert_true(nb + 256 <= cap);
        }
    }
    nb += schedule_fill(&b, T0 + 3 * S - 1, vb + nb, (uint32_t)(cap - nb));
    size_t nc = collect(&c, T0 + 3 * S, 64, &vc);
    assert_int_equal(na, nb);
    assert_memory_equal(va, vb, na * sizeof *va);
    assert_true(na > 10000);
    assert_true(nc != na || memcmp(va, vc, na * sizeof *va) != 0);
    for (size_t i = 1; i < na; i++)
        assert_true(va[i] >= va[i - 1]); /* never out of order */
    /* The load ends after the last phase's duration. */
    assert_int_equal(schedule_peek(&a, T0 + 10 * S), SCHEDULE_NEVER);
    free(va);
    free(vb);
    free(vc);
}

/* Poisson arrivals at 100,000/s: inter-arrival gaps are Exp with mean and
 * standard deviation mu = 10 us. Over n = 200,000 gaps, the sample mean has
 * standard error mu/sqrt(n) (22 ns): tolerance 5 of them (0.11 us, 1.1%).
 * The sample variance of Exp has standard error mu^2 sqrt(8/n): tolerance 5
 * of them (3.2%). Counts in 1 ms windows have variance = mean (index of
 * dispersion 1); over 2,000 windows, tolerance 5 sqrt(2/2000) = 0.16. */
static void test_poisson_gaps(void **state)
{
    (void)state;
    const double rate = 100000, mu = 1e9 / rate;
    const size_t n = 200000;
    cfg_load_phase ph = {.shape = CFG_SHAPE_POISSON, .rate = rate, .arrival = CFG_ARRIVAL_POISSON};
    schedule sc;
    schedule_init(&sc, &ph, 1, 12345, T0);
    uint64_t *v;
    size_t got = collect(&sc, T0 + 2 * S + S / 100, 256, &v);
    assert_true(got > n);
    double sum = 0, sum2 = 0;
    for (size_t i = 1; i <= n; i++) {
        double g = (double)(v[i] - v[i - 1]);
        sum += g;
        sum2 += g * g;
    }
    double mean = sum / (double)n, var = sum2 / (double)n - mean * mean;
    assert_near(mean, mu, 5 * mu / sqrt((double)n), "Poisson gap mean (ns)");
    assert_near(var, mu * mu, 5 * mu * mu * sqrt(8.0 / (double)n), "Poisson gap variance (ns^2)");

    double cs = 0, cs2 = 0;
    enum { windows = 2000 };
    static double counts[windows];
    memset(counts, 0, sizeof counts);
    for (size_t i = 0; i < got; i++)
        if (v[i] < T0 + windows * (S / 1000))
            counts[(v[i] - T0) / (S / 1000)]++;
    for (size_t w = 0; w < windows; w++) {
        double c = counts[w];
        cs += c;
        cs2 += c * c;
    }
    double cm = cs / (double)windows, cv = cs2 / (double)windows - cm * cm;
    assert_near(cm, 100, 5 * sqrt(100.0 / (double)windows), "records per 1 ms window");
    assert_near(cv / cm, 1, 5 * sqrt(2.0 / (double)windows), "index of dispersion");
    free(v);
}

/* Least-squares slope of the per-second rates of `bins` 1 s bins. */
static double slope(const uint64_t *v, size_t n, size_t bins, double *max_count)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    *max_count = 0;
    for (size_t i = 0; i < bins; i++) {
        double x = (double)i + 0.5, y = (double)count_in(v, n, T0 + i * S, T0 + (i + 1) * S);
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
        if (y > *max_count)
            *max_count = y;
    }
    double b = (double)bins;
    return (b * sxy - sx * sy) / (b * sxx - sx * sx);
}

/* A ramp 0 -> 100,000/s over 10 s. Uniform arrivals: each 1 s bin holds the
 * integral of r over it (10,000 i + 5,000) to within one record, so the
 * fitted slope is 10,000/s per s within 0.1%. Poisson arrivals: bin counts
 * have standard deviation at most sqrt(max count); the slope's standard
 * error is that over sqrt(sum (x - mean x)^2) = sqrt(82.5): tolerance 5 of
 * them (~1.2%). */
static void test_ramp_slope(void **state)
{
    (void)state;
    for (int poisson = 0; poisson <= 1; poisson++) {
        cfg_load_phase ph = {.shape = CFG_SHAPE_RAMP,
                             .from = 0,
                             .to = 100000,
                             .duration_ns = 10 * S,
                             .arrival = poisson ? CFG_ARRIVAL_POISSON : CFG_ARRIVAL_UNIFORM};
        schedule sc;
        schedule_init(&sc, &ph, 1, 99, T0);
        uint64_t *v;
        size_t n = collect(&sc, T0 + 10 * S, 256, &v);
        double maxc, b = slope(v, n, 10, &maxc);
        if (!poisson) {
            assert_near((double)n, 500000, 1, "records in the ramp");
            for (size_t i = 0; i < 10; i++)
                assert_near((double)count_in(v, n, T0 + i * S, T0 + (i + 1) * S),
                            10000.0 * (double)i + 5000, 1, "records in a 1 s bin");
            assert_near(b, 10000, 10, "ramp slope (records/s per s)");
        } else {
            assert_near(b, 10000, 5 * sqrt(maxc) / sqrt(82.5), "Poisson ramp slope");
        }
        /* The ramp was the last phase and had a duration: the load ends. */
        assert_int_equal(schedule_peek(&sc, T0 + 11 * S), SCHEDULE_NEVER);
        free(v);
    }
    /* A ramp down, 50,000 -> 10,000 over 4 s: 120,000 records. */
    cfg_load_phase down = {.shape = CFG_SHAPE_RAMP,
                           .from = 50000,
                           .to = 10000,
                           .duration_ns = 4 * S,
                           .arrival = CFG_ARRIVAL_UNIFORM};
    schedule sc;
    schedule_init(&sc, &down, 1, 1, T0);
    uint64_t *v;
    size_t n = collect(&sc, T0 + 4 * S, 100, &v);
    assert_near((double)n, 120000, 1, "records in the ramp down");
    double maxc;
    assert_near(slope(v, n, 4, &maxc), -10000, 10, "ramp-down slope");
    free(v);
}

/* On/off bursts with fixed lengths: a 900 ms gap at 1,000/s, then a 100 ms
 * burst at 10x; the windows hold exactly 900 and 1,000 records (+-1). */
static void test_burst_timing(void **state)
{
    (void)state;
    cfg_load_phase ph = {.shape = CFG_SHAPE_CONSTANT,
                         .rate = 1000,
                         .arrival = CFG_ARRIVAL_UNIFORM,
                         .burst_factor = 10,
                         .burst_ns = S / 10,
                         .gap_ns = 9 * S / 10,
                         .burst_dist = CFG_DIST_FIXED};
    schedule sc;
    schedule_init(&sc, &ph, 1, 3, T0);
    uint64_t *v;
    size_t n = collect(&sc, T0 + 10 * S, 256, &v);
    for (uint64_t i = 0; i < 10; i++) {
        uint64_t g = T0 + i * S, b = g + 9 * S / 10;
        assert_near((double)count_in(v, n, g, b), 900, 1, "records in a gap");
        assert_near((double)count_in(v, n, b, b + S / 10), 1000, 1, "records in a burst");
    }
    free(v);

    /* burst_rate instead of a factor, over a zero base (shape bursts). */
    cfg_load_phase onoff = {.shape = CFG_SHAPE_BURSTS,
                            .rate = 0,
                            .burst_rate = 50000,
                            .burst_ns = S / 5,
                            .gap_ns = S / 5,
                            .arrival = CFG_ARRIVAL_UNIFORM,
                            .burst_dist = CFG_DIST_FIXED};
    schedule_init(&sc, &onoff, 1, 3, T0);
    n = collect(&sc, T0 + 2 * S, 256, &v);
    assert_near((double)n, 5 * 10000, 1, "on/off records");
    assert_int_equal(count_in(v, n, T0, T0 + S / 5), 0); /* a gap comes first */
    assert_near((double)count_in(v, n, T0 + S / 5, T0 + 2 * S / 5), 10000, 1, "first burst");
    free(v);
}

/* Pareto burst and gap lengths: on/off bursts at 1e6/s make every burst a
 * dense cluster (1 us spacing) between silent gaps of >= 6 ms. With alpha
 * 2.5 and mean m, a length has standard deviation m / sqrt(alpha (alpha - 2))
 * = 0.894 m; over N bursts the mean's standard error is 0.894 m / sqrt(N):
 * tolerance 5 of them (~10% with N ~ 2,000). */
static void test_pareto_bursts(void **state)
{
    (void)state;
    const double m = 10e6; /* 10 ms */
    cfg_load_phase ph = {.shape = CFG_SHAPE_BURSTS,
                         .rate = 0,
                         .burst_rate = 1e6,
                         .burst_ns = (uint64_t)m,
                         .gap_ns = (uint64_t)m,
                         .arrival = CFG_ARRIVAL_UNIFORM,
                         .burst_dist = CFG_DIST_PARETO,
                         .alpha = 2.5};
    schedule sc;
    schedule_init(&sc, &ph, 1, 2024, T0);
    uint64_t *v;
    size_t n = collect(&sc, T0 + 40 * S, 4096, &v);
    double sum = 0, sd = 0.894 * m;
    size_t bursts = 0, first = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i == n || v[i] - v[i - 1] > 100000) { /* a silence of > 100 us ends a burst */
            if (i < n) { /* the last burst may be cut by the end of the window */
                sum += (double)(v[i - 1] - v[first]) + 1000; /* + one spacing */
                bursts++;
            }
            first = i;
        }
    }
    assert_true(bursts > 1500);
    assert_near(sum / (double)bursts, m, 5 * sd / sqrt((double)bursts), "mean Pareto burst (ns)");
    free(v);
}

/* Steps: each step holds rate * step records; a zero step holds none; the
 * last step's rate holds after the steps when the phase is open. */
static void test_steps(void **state)
{
    (void)state;
    double steps[] = {1000, 0, 3000, 500};
    cfg_load_phase ph = {.shape = CFG_SHAPE_STEPS,
                         .steps = steps,
                         .n_steps = 4,
                         .step_ns = S,
                         .arrival = CFG_ARRIVAL_UNIFORM};
    schedule sc;
    schedule_init(&sc, &ph, 1, 5, T0);
    uint64_t *v;
    size_t n = collect(&sc, T0 + 6 * S, 256, &v);
    double want[] = {1000, 0, 3000, 500, 500, 500};
    for (size_t i = 0; i < 6; i++)
        assert_near((double)count_in(v, n, T0 + i * S, T0 + (i + 1) * S), want[i], 1,
                    "records in a step");
    free(v);
}

/* Sine and diurnal: a 1 s bin holds the integral of r over it (+-1). Sine
 * starts at the mean going up, diurnal at the trough. */
static void test_sine(void **state)
{
    (void)state;
    for (int diurnal = 0; diurnal <= 1; diurnal++) {
        const double R = 10000, A = 0.8, P = 8;
        cfg_load_phase ph = {.shape = diurnal ? CFG_SHAPE_DIURNAL : CFG_SHAPE_SINE,
                             .rate = R,
                             .amplitude = A,
                             .period_ns = 8 * S,
                             .arrival = CFG_ARRIVAL_UNIFORM};
        schedule sc;
        schedule_init(&sc, &ph, 1, 5, T0);
        uint64_t *v;
        size_t n = collect(&sc, T0 + 16 * S, 256, &v);
        double w = 2 * M_PI / P, phi = diurnal ? -M_PI / 2 : 0;
        for (size_t i = 0; i < 16; i++) {
            double a = (double)i, b = a + 1;
            double want = R * (1 + A * (cos(w * a + phi) - cos(w * b + phi)) / w);
            assert_near((double)count_in(v, n, T0 + i * S, T0 + (i + 1) * S), want, 1.5,
                        diurnal ? "diurnal bin" : "sine bin");
        }
        free(v);
    }
    /* Amplitude 1 touches rate 0 at the trough: no record is lost there. */
    cfg_load_phase full = {.shape = CFG_SHAPE_DIURNAL,
                           .rate = 1000,
                           .amplitude = 1,
                           .period_ns = S,
                           .arrival = CFG_ARRIVAL_UNIFORM};
    schedule sc;
    schedule_init(&sc, &full, 1, 5, T0);
    uint64_t *v;
    size_t n = collect(&sc, T0 + 10 * S, 256, &v);
    assert_near((double)n, 10000, 1, "records over 10 full periods");
    free(v);
}

/* Phases follow each other at their exact end; max phases take `now`;
 * replay reproduces offsets; skip counts what fill would take. */
static void test_phases(void **state)
{
    (void)state;
    uint64_t offsets[] = {0, 10, 10, 500000, 999999};
    cfg_load_phase ph[] = {
        {.shape = CFG_SHAPE_CONSTANT,
         .rate = 1000,
         .duration_ns = S,
         .arrival = CFG_ARRIVAL_UNIFORM},
        {.shape = CFG_SHAPE_MAX, .duration_ns = S},
        {.shape = CFG_SHAPE_REPLAY, .replay_ns = offsets, .n_replay = 5},
        {.shape = CFG_SHAPE_CONSTANT, .rate = 2000, .arrival = CFG_ARRIVAL_UNIFORM},
    };
    schedule sc, due;
    schedule_init(&sc, ph, 4, 1, T0);
    due = sc;
    uint64_t t[300];
    /* Late by 0.5 s: 500 records due, skip counts them, fill hands them out. */
    assert_int_equal(schedule_skip(&due, T0 + S / 2 - 1, 1000000), 500);
    assert_int_equal(schedule_fill(&sc, T0 + S / 2 - 1, t, 300), 300);
    assert_int_equal(schedule_fill(&sc, T0 + S / 2 - 1, t, 300), 200);
    assert_int_equal(t[199], T0 + 499 * (S / 1000));
    assert_false(schedule_is_max(&sc));
    assert_int_equal(schedule_fill(&sc, T0 + S - 1, t, 300), 300);
    assert_int_equal(schedule_fill(&sc, T0 + S - 1, t, 300), 200);
    /* The max phase: records intended now, until its end. */
    assert_int_equal(schedule_peek(&sc, T0 + S + 5), T0 + S + 5);
    assert_true(schedule_is_max(&sc));
    assert_int_equal(schedule_fill(&sc, T0 + S + 5, t, 4), 4);
    assert_int_equal(t[3], T0 + S + 5);
    assert_int_equal(sc.n_max, 4);
    assert_int_equal(schedule_skip(&due, T0 + S + 5, 1000000), 500); /* stops at max */
    /* After it, the replay starts exactly at its end (T0 + 2 s). */
    assert_int_equal(schedule_peek(&sc, T0 + 2 * S + 7), T0 + 2 * S);
    assert_int_equal(schedule_fill(&sc, T0 + 3 * S, t, 10), 10);
    for (int i = 0; i < 5; i++)
        assert_int_equal(t[i], T0 + 2 * S + offsets[i]);
    /* The replay ends one ns after its last timestamp, then 2,000/s. */
    assert_int_equal(t[5], T0 + 2 * S + 1000000);
    assert_int_equal(t[6], T0 + 2 * S + 1000000 + 500000);
    assert_int_equal(sc.n_timed, 1000 + 5 + 5);

    /* A replay as the last phase ends the load after its last timestamp. */
    schedule_init(&sc, &ph[2], 1, 1, T0);
    assert_int_equal(schedule_fill(&sc, T0 + S, t, 10), 5);
    assert_int_equal(schedule_peek(&sc, T0 + S), SCHEDULE_NEVER);
    /* No phases: one max phase. */
    schedule_init(&sc, NULL, 0, 1, T0);
    assert_true(schedule_is_max(&sc));
    assert_int_equal(schedule_fill(&sc, T0 + 9, t, 3), 3);
    assert_int_equal(t[2], T0 + 9);
    /* A last phase whose rate stays 0 ends the load. */
    double steps[] = {1000, 0};
    cfg_load_phase st = {.shape = CFG_SHAPE_STEPS,
                         .steps = steps,
                         .n_steps = 2,
                         .step_ns = S,
                         .arrival = CFG_ARRIVAL_UNIFORM};
    schedule_init(&sc, &st, 1, 1, T0);
    assert_int_equal(schedule_skip(&sc, T0 + 100 * S, 1000000), 1000);
    assert_int_equal(schedule_peek(&sc, T0 + 100 * S), SCHEDULE_NEVER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constant_legacy), cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_poisson_gaps),    cmocka_unit_test(test_ramp_slope),
        cmocka_unit_test(test_burst_timing),    cmocka_unit_test(test_pareto_bursts),
        cmocka_unit_test(test_steps),           cmocka_unit_test(test_sine),
        cmocka_unit_test(test_phases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
