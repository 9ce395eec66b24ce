/*
 * bench_ab_interleaved.c - the interleaved parts of obs-bench-ab, on the p99
 * latency: interleaved (B waits a calibrated fraction of A's p99 longer per
 * batch; calibration and verification runs without an experiment, then
 * detection per block length and A/A, optionally with the CPUs kept awake)
 * and ilmax (interleaved A/A experiments on a saturating stream).
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_ab.h"
#include "bench_util.h"
#include "measure/histogram.h"

/* ------------------------------------------------- 3. interleaved p99 */

/* Keeping the CPUs awake. In a VM an idle vCPU is halted by the
 * hypervisor, and waking it for the next batch takes from tens of
 * microseconds to milliseconds: with the machine otherwise idle, that wake-up
 * sets the pipeline's p99 (measured: the typical 50 ms block's p99 went from
 * 0.4 ms with neighbours busy to 3 ms with the machine idle), and a variant
 * that spins longer keeps its vCPU from halting and looks faster. One
 * spinner per CPU at SCHED_IDLE priority (it runs only when nothing else
 * wants that CPU and yields at once to any wake-up) makes the machine's
 * idle behave the same for both variants, as idle=poll would. Off by
 * default (--keep-awake): on a shared VM the spinners burn the VM's CPU
 * time, and other processes' timing tests failed while they ran. */
typedef struct keep_awake {
    pthread_t threads[64];
    int n;
    _Atomic int stop;
} keep_awake;

static keep_awake awake;

static void *awake_main(void *arg)
{
    int cpu = (int)(intptr_t)arg;
    struct sched_param sp = {0};
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pthread_setaffinity_np(pthread_self(), sizeof one, &one);
    while (!atomic_load_explicit(&awake.stop, memory_order_relaxed))
        __builtin_ia32_pause();
    return NULL;
}

static void awake_start(void)
{
    cpu_set_t set;
    atomic_store(&awake.stop, 0);
    awake.n = 0;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    for (int c = 0; c < CPU_SETSIZE && awake.n < 64; c++)
        if (CPU_ISSET(c, &set) &&
            pthread_create(&awake.threads[awake.n], NULL, awake_main, (void *)(intptr_t)c) == 0)
            awake.n++;
}

static void awake_stop(void)
{
    atomic_store(&awake.stop, 1);
    for (int i = 0; i < awake.n; i++)
        pthread_join(awake.threads[i], NULL);
    awake.n = 0;
}

/* Latency of one run without an experiment: p50 and p99 over the whole
 * window, and for each block length the mean (and coefficient of
 * variation) over consecutive windows of that length of the window's p99:
 * the quantity an interleaved experiment averages. */
typedef struct lat_run {
    double p50_us, p99_us;
    double win_mean_us[MAX_BLOCKS], win_cv[MAX_BLOCKS];
    double win_gmean_us[MAX_BLOCKS], win_logsd[MAX_BLOCKS];
    double records_per_batch, busy; /* transform: records per batch, busy share */
} lat_run;

/* The q-quantile of the records recorded between snapshots prev and cur
 * (within a bucket's width, 0.8%, like histogram_quantile_ns). */
static double window_quantile(const histogram *cur, const histogram *prev, double q, histogram *tmp)
{
    uint64_t n = 0, lo = UINT64_MAX, hi = 0;
    for (uint32_t i = 0; i < HISTOGRAM_N_BUCKETS; i++) {
        uint64_t c = atomic_load_explicit(&cur->counts[i], memory_order_relaxed) -
                     atomic_load_explicit(&prev->counts[i], memory_order_relaxed);
        atomic_store_explicit(&tmp->counts[i], c, memory_order_relaxed);
        n += c;
        if (c && lo == UINT64_MAX)
            lo = histogram_bucket_lower_ns(i);
        if (c)
            hi = histogram_bucket_le_ns(i);
    }
    /* The window's extremes are known only to their buckets. */
    atomic_store(&tmp->n_values, n);
    atomic_store(&tmp->min_ns, lo);
    atomic_store(&tmp->max_ns, hi);
    return n ? (double)histogram_quantile_ns(tmp, q) / 1e3 : NAN;
}

static int measure_latency(const options *o, double delay_us, double seconds, lat_run *lr)
{
    bench_pipe bp;
    if (ab_pipe_start(&bp, o, o->inter_rate, o->units, delay_us, o->inter_linger_us, o->warm_s) !=
        0)
        return -1;
    const uint32_t tick_ms = 10;
    histogram *h = calloc(3 + (size_t)o->n_blocks, sizeof(histogram));
    if (!h) {
        ab_pipe_finish(&bp);
        return -1;
    }
    histogram *first = &h[0], *cur = &h[1], *tmp = &h[2], *prev = &h[3];
    stage *sink = &bp.p->stages[2], *work = &bp.p->stages[1];
    histogram_merge(first, sink->latency);
    for (int b = 0; b < o->n_blocks; b++)
        memcpy(&prev[b], first, sizeof *first);
    double sum[MAX_BLOCKS] = {0}, sum2[MAX_BLOCKS] = {0}, lsum[MAX_BLOCKS] = {0},
           lsum2[MAX_BLOCKS] = {0};
    int nw[MAX_BLOCKS] = {0};
    uint64_t b0 = atomic_load(&work->stats.batches_in), r0 = atomic_load(&work->stats.records_in);
    uint64_t c0 = atomic_load(&work->stats.callback_ns);
    uint64_t t0 = bench_now_ns();
    uint32_t n_ticks = (uint32_t)(seconds * 1000 / tick_ms);
    for (uint32_t k = 1; k <= n_ticks; k++) {
        uint64_t until = t0 + (uint64_t)k * tick_ms * 1000000u, now = bench_now_ns();
        if (until > now)
            ab_sleep_ns(until - now);
        memset(cur, 0, sizeof *cur);
        histogram_merge(cur, sink->latency);
        for (int b = 0; b < o->n_blocks; b++) {
            if ((k * tick_ms) % o->blocks[b])
                continue;
            double v = window_quantile(cur, &prev[b], 0.99, tmp);
            if (!isnan(v)) {
                sum[b] += v, sum2[b] += v * v;
                lsum[b] += log(v), lsum2[b] += log(v) * log(v);
                nw[b]++;
            }
            memcpy(&prev[b], cur, sizeof *cur);
        }
    }
    double wall = (double)(bench_now_ns() - t0);
    uint64_t b1 = atomic_load(&work->stats.batches_in), r1 = atomic_load(&work->stats.records_in);
    uint64_t c1 = atomic_load(&work->stats.callback_ns);
    lr->p50_us = window_quantile(cur, first, 0.50, tmp);
    lr->p99_us = window_quantile(cur, first, 0.99, tmp);
    for (int b = 0; b < o->n_blocks; b++) {
        double m = nw[b] ? sum[b] / nw[b] : NAN;
        double var = nw[b] > 1 ? (sum2[b] - nw[b] * m * m) / (nw[b] - 1) : NAN;
        lr->win_mean_us[b] = m;
        lr->win_cv[b] = var > 0 ? sqrt(var) / m : NAN;
        double lm = nw[b] ? lsum[b] / nw[b] : NAN;
        double lvar = nw[b] > 1 ? (lsum2[b] - nw[b] * lm * lm) / (nw[b] - 1) : NAN;
        lr->win_gmean_us[b] = exp(lm);
        lr->win_logsd[b] = lvar > 0 ? sqrt(lvar) : NAN;
    }
    lr->records_per_batch = b1 > b0 ? (double)(r1 - r0) / (double)(b1 - b0) : 0;
    lr->busy = (double)(c1 - c0) / wall;
    free(h);
    return ab_pipe_finish(&bp);
}

static int part_interleaved_run(const options *o, summary *sm);

int ab_part_interleaved(const options *o, summary *sm)
{
    if (o->keep_awake)
        awake_start();
    printf("\n## interleaved: %s\n",
           o->keep_awake ? "the CPUs are kept awake by a SCHED_IDLE spinner each (--keep-awake)"
                         : "the CPUs idle as they will (--keep-awake: kept awake)");
    int rc = part_interleaved_run(o, sm);
    if (o->keep_awake)
        awake_stop();
    return rc;
}

static int part_interleaved_run(const options *o, summary *sm)
{
    char linger[32] = "200us (default)";
    if (o->inter_linger_us > 0)
        snprintf(linger, sizeof linger, "%.0fus", o->inter_linger_us);
    printf("p99 latency, tp_work units %u, %.0f records/s, batch %u, max_batch_delay %s; A waits "
           "%.1f us per batch, B that plus %.0f%% of the p99 of A's typical block\n",
           o->units, o->inter_rate, o->batch, linger, o->base_delay_us, 100 * o->effect);
    ab_print_load("before");
    int np = o->cal_pairs;
    lat_run *ra = calloc((size_t)np, sizeof *ra), *rb = calloc((size_t)np, sizeof *rb);
    double v[64], w[64];
    if (!ra || !rb) {
        free(ra), free(rb);
        return -1;
    }
    /* Calibration: A alone, np runs. The p99 over a whole run is set by
     * other processes when they take a core (it ranged from 0.33 to 3.2 ms
     * between 10 s runs here), so B's wait is `effect` of the p99 of A's
     * typical block: the geometric mean over the runs' windows of the
     * shortest block length of the window's p99 (median over runs), which
     * is stable, and is what the pipeline itself sets: the generator's
     * linger, the batch's processing, two thread wake-ups. */
    for (int i = 0; i < np; i++) {
        if (measure_latency(o, o->base_delay_us, o->cal_seconds, &ra[i]) != 0)
            goto fail;
        v[i] = ra[i].p99_us, w[i] = ra[i].win_gmean_us[0];
    }
    double run_p99 = bench_median(v, (size_t)np), ref_p99 = bench_median(w, (size_t)np);
    double delay_us = o->delay_us > 0 ? o->delay_us : round(o->effect * ref_p99 * 10) / 10;
    for (int i = 0; i < np; i++)
        v[i] = ra[i].p50_us;
    printf("calibration: A alone, %d runs of %.0f s: median p50 %.1f us, whole-run p99 %.1f us, "
           "p99 of the typical %u ms window %.1f us (%.1f records/batch); B waits %.1f us more "
           "per batch%s\n",
           np, o->cal_seconds, bench_median(v, (size_t)np), run_p99, o->blocks[0], ref_p99,
           ra[0].records_per_batch, delay_us, o->delay_us > 0 ? " (--delay-us)" : "");

    /* Verification: A alone and B alone, alternating, no experiment. */
    printf("verification: %d pairs of %.0f s runs without an experiment (A, B alternating)\n", np,
           o->cal_seconds);
    printf("%4s %10s %10s %7s", "pair", "A_p99_us", "B_p99_us", "B/A");
    for (int b = 0; b < o->n_blocks; b++)
        printf("  %5ums:A_gm/B_gm", o->blocks[b]);
    printf("\n");
    for (int i = 0; i < np; i++) {
        int b_first = i & 1; /* neither always runs first */
        double first = b_first ? o->base_delay_us + delay_us : o->base_delay_us;
        double second = b_first ? o->base_delay_us : o->base_delay_us + delay_us;
        if (measure_latency(o, first, o->cal_seconds, b_first ? &rb[i] : &ra[i]) ||
            measure_latency(o, second, o->cal_seconds, b_first ? &ra[i] : &rb[i]))
            goto fail;
        printf("%4d %10.1f %10.1f %7.3f", i + 1, ra[i].p99_us, rb[i].p99_us,
               rb[i].p99_us / ra[i].p99_us);
        for (int b = 0; b < o->n_blocks; b++)
            printf("  %8.0f/%-8.0f", ra[i].win_gmean_us[b], rb[i].win_gmean_us[b]);
        printf("\n");
        fflush(stdout);
    }
    for (int i = 0; i < np; i++)
        v[i] = ra[i].p99_us, w[i] = rb[i].p99_us;
    double ma = bench_median(v, (size_t)np), mb = bench_median(w, (size_t)np);
    for (int i = 0; i < np; i++)
        v[i] = rb[i].p99_us / ra[i].p99_us, w[i] = rb[i].busy;
    double lo, hi;
    bench_minmax(v, (size_t)np, &lo, &hi);
    sm->true_ratio = bench_median(v, (size_t)np), sm->delay_us = delay_us;
    printf("true p99 (whole runs): A %.1f us, B %.1f us: B/A %.3f (median of medians); pair "
           "ratios median %.3f, range %.3f..%.3f; B's transform busy %.0f%%\n",
           ma, mb, mb / ma, bench_median(v, (size_t)np), lo, hi, 100 * bench_median(w, (size_t)np));
    printf("per block length, over windows of that length in the same runs (medians over runs):\n");
    for (int b = 0; b < o->n_blocks; b++) {
        double am[64], bm[64], ag[64], bg[64], cv[64], lsd[64];
        for (int i = 0; i < np; i++) {
            am[i] = ra[i].win_mean_us[b], bm[i] = rb[i].win_mean_us[b];
            ag[i] = ra[i].win_gmean_us[b], bg[i] = rb[i].win_gmean_us[b];
            cv[i] = ra[i].win_cv[b], lsd[i] = ra[i].win_logsd[b];
        }
        double a1 = bench_median(am, (size_t)np), b1 = bench_median(bm, (size_t)np);
        double a2 = bench_median(ag, (size_t)np), b2 = bench_median(bg, (size_t)np);
        printf("  %4u ms: window p99 arithmetic mean A %.0f B %.0f us (B/A %.3f), geometric mean "
               "A %.0f B %.0f us (B/A %.3f, what the experiment estimates); spread of A's window "
               "p99: cv %.2f, sd of log %.2f\n",
               o->blocks[b], a1, b1, b1 / a1, a2, b2, b2 / a2, bench_median(cv, (size_t)np),
               bench_median(lsd, (size_t)np));
    }
    free(ra), free(rb);
    ra = rb = NULL;
    fflush(stdout);

    /* Detection per block length, then A/A. */
    bench_pipe bp;
    if (ab_pipe_start(&bp, o, o->inter_rate, o->units, o->base_delay_us, o->inter_linger_us,
                      o->warm_s) != 0)
        return -1;
    int rc = 0;
    uint64_t deadline = bench_now_ns() + (uint64_t)(o->inter_budget * 1e9);
    /* One run per block length first, each with an equal share of the
     * budget left (a run decided early leaves its rest to the next ones; a
     * run whose share is shorter than its time limit is stopped at the end
     * of it, undecided: censored); then more rounds while a whole run
     * still fits. */
    tally *tb = calloc((size_t)o->n_blocks, sizeof *tb);
    if (!tb) {
        ab_pipe_finish(&bp);
        return -1;
    }
    for (int b = 0; b < o->n_blocks; b++)
        ab_tally_init(&tb[b], o->inter_runs);
    for (int r = 0; r < o->inter_runs && rc == 0; r++) {
        for (int b = 0; b < o->n_blocks && rc == 0; b++) {
            exp_req rq = {.units = o->units,
                          .delay_us = o->base_delay_us + delay_us,
                          .mode = EXP_INTERLEAVED,
                          .block_ms = o->blocks[b],
                          .seconds = o->inter_seconds,
                          .seed = 3001 + 100 * (uint64_t)b + (uint64_t)r};
            uint64_t share = r == 0 ? (uint64_t)(ab_left_s(deadline) / (o->n_blocks - b) * 1e9)
                                    : (uint64_t)(ab_left_s(deadline) * 1e9);
            printf("\n### block %u ms, run %d: time limit %.0f s, 10 looks, B waits %.1f us more "
                   "per batch\n",
                   o->blocks[b], r + 1, o->inter_seconds, delay_us);
            ab_print_load("before");
            tally one;
            ab_tally_init(&one, 1);
            rc = ab_run_series(&bp, o, rq, 1, bench_now_ns() + share,
                               r == 0 ? o->inter_seconds / 4 : 0, &one, 1);
            tally *t = &tb[b];
            if (one.n) {
                t->v[ab_verdict_of_tally(&one)]++;
                t->n_cut += one.n_cut;
                t->t_stop[t->n] = one.t_stop[0];
                t->delta[t->n] = one.delta[0];
                t->n++;
            } else {
                printf("(left out: the part's time budget would have been exceeded)\n");
                t->n_budget++;
            }
            ab_tally_free(&one);
        }
    }
    for (int b = 0; b < o->n_blocks && rc == 0; b++) {
        tally *t = &tb[b];
        printf("\n### block %u ms: %d runs\n", o->blocks[b], t->n);
        ab_tally_print(t, " runs");
        sm->blk_n[b] = t->n, sm->blk_hits[b] = t->v[ABSTATS_SLOWER], sm->blk_cut[b] = t->n_cut;
        sm->blk_med[b] = t->n ? bench_median(t->t_stop, (size_t)t->n) : NAN;
        printf("block %u ms: detected %d/%d; time to the end: median %.0f s\n", o->blocks[b],
               t->v[ABSTATS_SLOWER], t->n, sm->blk_med[b]);
    }
    for (int b = 0; b < o->n_blocks; b++)
        ab_tally_free(&tb[b]);
    free(tb);
    if (rc == 0 && o->inter_aa_runs > 0) {
        printf("\n### A/A interleaved: %d experiments, block %u ms, time limit %.0f s, 10 looks\n",
               o->inter_aa_runs, o->inter_aa_block, o->inter_aa_seconds);
        ab_print_load("before");
        tally t;
        ab_tally_init(&t, o->inter_aa_runs);
        exp_req rq = {.aa = 1,
                      .mode = EXP_INTERLEAVED,
                      .block_ms = o->inter_aa_block,
                      .seconds = o->inter_aa_seconds,
                      .seed = 4001};
        rc = ab_run_series(&bp, o, rq, o->inter_aa_runs,
                           bench_now_ns() + (uint64_t)(o->inter_aa_budget * 1e9), 0, &t, 0);
        if (rc == 0) {
            ab_tally_print(&t, " A/A runs");
            double lo, hi;
            int fp = ab_tally_false(&t, &lo, &hi);
            printf("p99 false-positive rate: %d/%d = %.1f%% [exact 95%% CI %.1f..%.1f%%]\n", fp,
                   t.n, t.n ? 100.0 * fp / t.n : 0, 100 * lo, 100 * hi);
            sm->aa_i_fp = fp, sm->aa_i_n = t.n, sm->aa_i_lo = lo, sm->aa_i_hi = hi;
        }
        ab_tally_free(&t);
    }
    if (ab_pipe_finish(&bp) != 0)
        rc = -1;
    sm->inter_done = rc == 0;
    ab_print_load("after");
    return rc;
fail:
    free(ra), free(rb);
    return -1;
}

/* ------------------------- 6. interleaved A/A on a saturating stream */

/* The setting of test_experiment's interleaved checks: the stage is the
 * bottleneck of a max-rate stream, so the sink's latency is queueing set by
 * the stage; 20 ms blocks, 4 s, 4 looks, threshold 2%. Every experiment has
 * its own seed. Reports the rate of false p99 verdicts and the mean Delta of
 * p99 with its standard error (a bias shows there first). */
int ab_part_ilmax(const options *o, summary *sm)
{
    printf("\n## ilmax: %d interleaved A/A experiments on a saturating stream (load: max), "
           "tp_work units 200, batch %u, 20 ms blocks, time limit 4 s, 4 looks, threshold 2%%\n",
           o->ilmax_runs, o->batch);
    ab_print_load("before");
    uint64_t deadline = bench_now_ns() + (uint64_t)(o->ilmax_budget * 1e9);
    bench_pipe bp;
    if (ab_pipe_start(&bp, o, 0, 200, 0, 0, o->warm_s) != 0)
        return -1;
    tally t;
    ab_tally_init(&t, o->ilmax_runs);
    exp_req rq = {.aa = 1,
                  .mode = EXP_INTERLEAVED,
                  .block_ms = 20,
                  .seconds = 4,
                  .n_looks = 4,
                  .threshold = 0.02,
                  .seed = 9001};
    int rc = ab_run_series(&bp, o, rq, o->ilmax_runs, deadline, 0, &t, 0);
    if (ab_pipe_finish(&bp) != 0)
        rc = -1;
    if (rc == 0) {
        ab_tally_print(&t, " A/A runs");
        double lo, hi;
        int fp = ab_tally_false(&t, &lo, &hi);
        ab_tally_mean_se(&t, &sm->ilmax_mean, &sm->ilmax_se);
        printf("p99 false-positive rate: %d/%d = %.1f%% [exact 95%% CI %.1f..%.1f%%]\n", fp, t.n,
               t.n ? 100.0 * fp / t.n : 0, 100 * lo, 100 * hi);
        sm->ilmax_fp = fp, sm->ilmax_n = t.n, sm->ilmax_lo = lo, sm->ilmax_hi = hi;
    }
    ab_print_load("after");
    ab_tally_free(&t);
    return rc;
}
