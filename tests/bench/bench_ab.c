/*
 * bench_ab.c - obs-bench-ab: what A/B experiments achieve on real runs:
 * the real pipeline (gen_static -> tp_work -> sink_null, constant load, or
 * max for ilmax, in this process), the real experiment runner (experiment_start, its looks
 * and early stop) and the real statistics.
 * obs-bench-abstats answers the same questions on simulated data in
 * seconds; this program checks them where the noise is the machine's own.
 *
 * Parts (--part, default all):
 *
 * - aa: N A/A duet experiments (the stage against a second instance of
 *   itself), each with a short time limit: verdict counts and the
 *   false-positive rate (FASTER or SLOWER) with its exact (Clopper-Pearson)
 *   95% interval. Target: <= 1%.
 * - detect: N duet experiments with B = tp_work with 2% more units (500
 *   against 510): detection rate (SLOWER), median and p90 time to the
 *   deciding look. Target: <= 60 s.
 * - interleaved: p99 latency in interleaved mode. A waits a fixed time per
 *   batch (tp_work delay_us, --base-delay-us, 50 us) and B waits longer,
 *   which delays every record of the batch by the same amount, so it moves
 *   every latency quantile by that much. Both wait so that both keep the
 *   CPU about as busy: a variant that alone spins keeps its vCPU from
 *   idling, its neighbours' wake-ups get faster, and that was measured to
 *   outweigh its own wait (--keep-awake goes further, see keep_awake).
 *   The stream lingers (max_batch_delay, --inter-linger-us, 2 ms): at 5 000
 *   records/s a batch never fills, so each record waits up to 2 ms for its
 *   batch and the p99 is the linger plus the batch's processing, two thread
 *   wake-ups and whatever other processes add. With the default linger
 *   (200 us, --inter-linger-us 200) the last part dominates and moves p99
 *   by more than 5% between runs on a shared VM, so no B could be verified
 *   5% slower there (docs/experiments.md). B's extra wait is a fraction
 *   (--effect, 5%) of the p99 of A's typical block (geometric mean over
 *   windows of the shortest block length, median of runs of A alone); it is
 *   verified by separate runs of A alone and B alone, alternating (no
 *   experiment): the whole-run p99 and, per block length, the arithmetic
 *   and geometric means over windows of the window's p99 (the experiment
 *   estimates the geometric one). Then experiments with a 10 min limit, one
 *   per block length first, more while the budget allows (detection, time
 *   to detect), and A/A experiments for the false-positive rate of p99.
 *   Target: a 5% p99 change detected in <= 10 min.
 * - drift: the estimate of a known effect (+10% units) when another
 *   process loads a core for the middle third of the run (a forked busy
 *   loop, pinned to one core when sched_setaffinity allows), against a
 *   quiet run just before; a second quiet run gives the quiet runs' own
 *   repeatability, the baseline. One look (at the time limit), so every run
 *   covers the whole window. Target: <= 0.5 percentage points.
 * - units: one A/A duet whose batch pairs are kept (in units of 4-16): the
 *   standard error of delta from non-overlapping blocks of L pairs, which
 *   grows with L while neighbouring pairs share noise; and, on segments as
 *   long as typical experiments (5 s, 30 s), the bootstrap's standard
 *   error with 2048 units (the former duet default) and 128 (the current
 *   one) against that of the longest blocks, and how often its 95%
 *   interval misses 0.
 * - ilmax: N interleaved A/A experiments where test_experiment runs them:
 *   the stage is the bottleneck of a max load (tp_work 200 units), 20 ms
 *   blocks, 4 s, 4 looks, threshold 2%, a seed per experiment. The rate of
 *   false p99 verdicts and the mean p99 delta with its standard error.
 *   Target: <= 1%.
 *
 * Every part has a time budget: a run starts only if its time limit fits
 * in what is left, so the whole program finishes in bounded time; runs left
 * out are reported. Medians and the command line are printed; nothing about
 * rates is asserted (tests assert, benchmarks report). Exits nonzero only
 * when a pipeline or an experiment fails.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "config/config.h"
#include "lab/experiment.h"
#include "measure/histogram.h"
#include "engine/pipeline.h"

#ifndef OBS_BENCH_PLUGIN_DIR
#define OBS_BENCH_PLUGIN_DIR "plugins"
#endif
#ifndef OBS_BENCH_TEST_PLUGIN_DIR
#define OBS_BENCH_TEST_PLUGIN_DIR "tests/plugins"
#endif

#define MAX_BLOCKS 8

typedef struct options {
    const char *plugin_dir, *test_plugin_dir;
    int parts; /* bit set of PART_* */
    int quick;
    double warm_s; /* after the first records reach the sink */
    uint32_t batch, units;
    double threshold;
    /* duet stream */
    double rate;
    int aa_runs;
    double aa_seconds, aa_budget;
    int detect_runs;
    uint32_t detect_units;
    double detect_seconds, detect_budget;
    /* interleaved */
    double inter_rate, effect, delay_us, base_delay_us, inter_seconds, inter_budget, cal_seconds;
    double inter_linger_us; /* the interleaved stream's max_batch_delay (0: default) */
    int keep_awake;         /* SCHED_IDLE spinners during the interleaved part */
    int inter_runs, cal_pairs;
    uint32_t blocks[MAX_BLOCKS];
    int n_blocks;
    int inter_aa_runs;
    uint32_t inter_aa_block;
    double inter_aa_seconds, inter_aa_budget;
    /* interleaved A/A on a saturating stream */
    int ilmax_runs;
    double ilmax_budget;
    /* drift */
    int drift_reps;
    uint32_t drift_units;
    double drift_seconds, drift_budget;
    /* duet units */
    double units_seconds;
    /* Units the A/A run keeps: 2^18 are 4-16 pairs each over 2-5 minutes at
     * ~7 000 pairs per second (single pairs would make the runner's own
     * look, a bootstrap over every unit, take minutes). */
    uint32_t units_kept;
} options;

enum {
    PART_AA = 1,
    PART_DETECT = 2,
    PART_INTER = 4,
    PART_DRIFT = 8,
    PART_UNITS = 16,
    PART_ILMAX = 32,
};

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void print_load(const char *when)
{
    double l[3] = {-1, -1, -1};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3)
            l[0] = -1;
        fclose(f);
    }
    printf("# loadavg %s: %.2f %.2f %.2f\n", when, l[0], l[1], l[2]);
    fflush(stdout);
}

/* ---------------------------------------------------------- the pipeline */

typedef struct bench_pipe {
    obs_config *cfg;
    pipeline *p;
    pthread_t thread;
    int rc;
} bench_pipe;

static void *pipe_thread(void *arg)
{
    bench_pipe *bp = arg;
    bp->rc = pipeline_run(bp->p, NULL, NULL);
    return NULL;
}

/* Starts gen_static -> tp_work(units, delay_us) -> sink_null at a constant
 * `rate` (0: as fast as the pipeline takes them, load shape max) in a thread of its own and waits
 * until records reach the sink and `warm_s` more seconds have passed; `linger_us` is
 * max_batch_delay (0: the default). Returns 0 or -1 (message printed). */
static int pipe_start(bench_pipe *bp, const options *o, double rate, uint32_t units,
                      double delay_us, double linger_us, double warm_s)
{
    char yaml[2048], err[2048], linger[64] = "", load[64] = "{shape: max}";
    if (rate > 0)
        snprintf(load, sizeof load, "{shape: constant, rate: %.0f}", rate);
    if (linger_us > 0)
        snprintf(linger, sizeof linger, "max_batch_delay: %.0fus\n", linger_us);
    snprintf(yaml, sizeof yaml,
             "pipeline: bench-ab\nplugin_dirs: [%s, %s]\nbatch_size: %u\n%s"
             "run: {duration: 0, seed: 1}\nload: [%s]\n"
             "stages:\n  - {name: gen, plugin: gen_static, params: {size: 16}}\n"
             "  - {name: work, plugin: tp_work, params: {units: %u, noise: 0.05, "
             "delay_us: %.3f}}\n"
             "  - {name: sink, plugin: sink_null}\n",
             o->plugin_dir, o->test_plugin_dir, o->batch, linger, load, units, delay_us);
    memset(bp, 0, sizeof *bp);
    if (config_load_string("bench-ab.yaml", yaml, &bp->cfg, err, sizeof err) != 0) {
        fprintf(stderr, "obs-bench-ab: %s\n", err);
        return -1;
    }
    if (pipeline_create(bp->cfg, NULL, 0, &bp->p, err, sizeof err) != 0) {
        fprintf(stderr, "obs-bench-ab: %s\n", err);
        config_free(bp->cfg);
        return -1;
    }
    if (pthread_create(&bp->thread, NULL, pipe_thread, bp) != 0) {
        pipeline_destroy(bp->p);
        config_free(bp->cfg);
        return -1;
    }
    uint64_t t0 = bench_now_ns();
    while (!atomic_load(&bp->p->running) || atomic_load(&bp->p->stages[2].stats.records_in) < 100) {
        if (bench_now_ns() - t0 > 10000000000ull) {
            fprintf(stderr, "obs-bench-ab: no record reached the sink in 10 s\n");
            pipeline_stop(bp->p);
            pthread_join(bp->thread, NULL);
            pipeline_destroy(bp->p);
            config_free(bp->cfg);
            return -1;
        }
        sleep_ns(2000000);
    }
    sleep_ns((uint64_t)(warm_s * 1e9));
    return 0;
}

/* Stops the run and frees it. Returns 0, or -1 if the run failed or lost
 * records between the generator and the sink. */
static int pipe_finish(bench_pipe *bp)
{
    pipeline_stop(bp->p);
    pthread_join(bp->thread, NULL);
    int rc = bp->rc;
    uint64_t out = atomic_load(&bp->p->stages[0].stats.records_out);
    uint64_t in = atomic_load(&bp->p->stages[2].stats.records_in);
    if (rc == 0 && out != in) {
        fprintf(stderr, "obs-bench-ab: %llu records sent, %llu reached the sink\n",
                (unsigned long long)out, (unsigned long long)in);
        rc = -1;
    }
    pipeline_destroy(bp->p);
    config_free(bp->cfg);
    return rc;
}

/* ---------------------------------------------------------- experiments */

typedef struct exp_out {
    abstats_verdict verdict; /* of the primary metric */
    double t_decided_s;      /* time of the deciding look; NaN if undecided */
    double elapsed_s;
    double delta, ci_lo, ci_hi, a, b; /* primary metric */
    double samples, latency_blocks;
    int cut; /* stopped by the benchmark's budget before its time limit */
} exp_out;

static abstats_verdict verdict_of(const char *s)
{
    if (!s)
        return ABSTATS_UNKNOWN;
    if (!strcmp(s, "SAME"))
        return ABSTATS_SAME;
    if (!strcmp(s, "FASTER"))
        return ABSTATS_FASTER;
    if (!strcmp(s, "SLOWER"))
        return ABSTATS_SLOWER;
    if (!strcmp(s, "UNSTABLE"))
        return ABSTATS_UNSTABLE;
    return ABSTATS_UNKNOWN;
}

static double num(json_t *j)
{
    return json_is_number(j) ? json_number_value(j) : NAN;
}

typedef struct exp_req {
    int aa;
    uint32_t units;
    double delay_us;
    exp_mode mode;
    uint32_t block_ms;
    double seconds;
    uint32_t n_looks; /* 0: the runner's default (10) */
    double threshold; /* 0: --threshold */
    uint64_t seed;
    double cap_s; /* > 0: stop the experiment after this long (budget) */
} exp_req;

/* Runs one experiment on the running pipeline to its end. Returns 0 or -1. */
static int run_experiment(bench_pipe *bp, const options *o, const exp_req *rq, exp_out *out)
{
    char units[32], delay[32];
    snprintf(units, sizeof units, "%u", rq->units);
    snprintf(delay, sizeof delay, "%.3f", rq->delay_us);
    cfg_param prm[3] = {{.key = "units", .value = units},
                        {.key = "noise", .value = "0.05"},
                        {.key = "delay_us", .value = delay}};
    exp_spec spec = {.stage = "work",
                     .plugin = rq->aa ? NULL : "tp_work",
                     .aa = rq->aa,
                     .params = prm,
                     .n_params = 3,
                     .params_given = !rq->aa,
                     .threshold = rq->threshold > 0 ? rq->threshold : o->threshold,
                     .max_seconds = rq->seconds,
                     .n_looks = rq->n_looks,
                     .seed = rq->seed,
                     .mode = rq->mode,
                     .block_ms = rq->block_ms};
    experiment *e = NULL;
    char err[1024];
    if (experiment_start(bp->p, &spec, NULL, 0, &e, err, sizeof err) != 0) {
        fprintf(stderr, "obs-bench-ab: experiment_start: %s\n", err);
        return -1;
    }
    int cut = 0;
    if (rq->cap_s > 0 && !experiment_wait(e, (uint64_t)(rq->cap_s * 1e9))) {
        experiment_stop(e);
        cut = 1;
    }
    if (!experiment_wait(e, (uint64_t)((rq->seconds + 60) * 1e9))) {
        fprintf(stderr, "obs-bench-ab: the experiment did not end in time\n");
        return -1;
    }
    json_t *j = experiment_json(e);
    if (!j)
        return -1;
    const char *primary = rq->mode == EXP_INTERLEAVED ? "p99_latency_ns" : "cpu_ns_per_record";
    memset(out, 0, sizeof *out);
    out->verdict = verdict_of(json_string_value(json_object_get(j, "verdict")));
    out->elapsed_s = num(json_object_get(j, "elapsed_s"));
    out->samples = num(json_object_get(j, "samples"));
    out->latency_blocks = num(json_object_get(j, "latency_blocks"));
    out->cut = cut && strcmp(json_string_value(json_object_get(j, "state")), "stopped") == 0;
    out->delta = out->ci_lo = out->ci_hi = out->a = out->b = NAN;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(j, "metrics"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "name")), primary) != 0)
            continue;
        out->delta = num(json_object_get(m, "delta"));
        out->ci_lo = num(json_array_get(json_object_get(m, "ci"), 0));
        out->ci_hi = num(json_array_get(json_object_get(m, "ci"), 1));
        out->a = num(json_object_get(m, "a"));
        out->b = num(json_object_get(m, "b"));
    }
    /* The runner stops at the first look that decides the primary metric. */
    out->t_decided_s = NAN;
    json_array_foreach(json_object_get(j, "history"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "metric")), primary) != 0)
            continue;
        abstats_verdict v = verdict_of(json_string_value(json_object_get(m, "verdict")));
        if (abstats_decided(v) && isnan(out->t_decided_s))
            out->t_decided_s = num(json_object_get(m, "t_s"));
    }
    json_decref(j);
    return 0;
}

/* Verdict counts of a series of experiments. */
typedef struct tally {
    int n, v[5];
    double *t_stop; /* time to the end of each (decided look, or time limit) */
    double *delta;  /* primary delta of each */
    int n_budget;   /* runs left out by the budget */
    int n_cut;      /* runs stopped by the budget before their time limit */
} tally;

static void tally_init(tally *t, int cap)
{
    memset(t, 0, sizeof *t);
    t->t_stop = calloc((size_t)cap + 1, sizeof(double));
    t->delta = calloc((size_t)cap + 1, sizeof(double));
}

static void tally_add(tally *t, const exp_out *x)
{
    t->v[x->verdict]++;
    t->n_cut += x->cut;
    t->t_stop[t->n] = isnan(x->t_decided_s) ? x->elapsed_s : x->t_decided_s;
    t->delta[t->n] = x->delta;
    t->n++;
}

/* The verdict of a tally of one run. */
static abstats_verdict verdict_of_tally(const tally *t)
{
    for (int v = 0; v < 5; v++)
        if (t->v[v])
            return (abstats_verdict)v;
    return ABSTATS_UNKNOWN;
}

static void tally_free(tally *t)
{
    free(t->t_stop);
    free(t->delta);
}

/* The mean of the primary deltas and its standard error (NaN below two
 * runs): in A/A a bias of the design shows here long before it shows in the
 * count of false verdicts. */
static void tally_mean_se(const tally *t, double *mean, double *se)
{
    double sum = 0, ss = 0;
    for (int i = 0; i < t->n; i++)
        sum += t->delta[i];
    *mean = t->n ? sum / t->n : NAN;
    for (int i = 0; i < t->n; i++)
        ss += (t->delta[i] - *mean) * (t->delta[i] - *mean);
    *se = t->n >= 2 ? sqrt(ss / (t->n - 1) / t->n) : NAN;
}

/* False verdicts of A/A runs (FASTER or SLOWER), with their exact
 * (Clopper-Pearson) 95% interval in *lo..*hi. */
static int tally_false(const tally *t, double *lo, double *hi)
{
    int fp = t->v[ABSTATS_FASTER] + t->v[ABSTATS_SLOWER];
    *lo = 0, *hi = 1;
    if (t->n)
        bench_clopper_pearson(fp, t->n, lo, hi);
    return fp;
}

static void tally_print(tally *t, const char *unit_note)
{
    printf("verdicts: same %d, faster %d, slower %d, unknown %d, unstable %d (of %d%s)\n",
           t->v[ABSTATS_SAME], t->v[ABSTATS_FASTER], t->v[ABSTATS_SLOWER], t->v[ABSTATS_UNKNOWN],
           t->v[ABSTATS_UNSTABLE], t->n, unit_note);
    if (t->n_budget)
        printf("(%d more runs left out: the part's time budget would have been exceeded)\n",
               t->n_budget);
    if (t->n_cut)
        printf("(%d runs stopped by the time budget before their time limit, undecided: "
               "censored)\n",
               t->n_cut);
    if (!t->n)
        return;
    double med = bench_median(t->t_stop, (size_t)t->n);
    printf("time to the end (deciding look, or the time limit): median %.1f s, p90 %.1f s, "
           "max %.1f s\n",
           med, bench_quantile_sorted(t->t_stop, (size_t)t->n, 0.9), t->t_stop[t->n - 1]);
    double lo, hi;
    bench_minmax(t->delta, (size_t)t->n, &lo, &hi);
    printf("primary delta: median %+.2f%%, range %+.2f%% .. %+.2f%%\n",
           100 * bench_median(t->delta, (size_t)t->n), 100 * lo, 100 * hi);
    if (t->n >= 2) {
        double mean, se;
        tally_mean_se(t, &mean, &se);
        printf("primary delta: mean %+.3f%% (standard error %.3f%%, 95%% CI %+.3f%% .. %+.3f%%)\n",
               100 * mean, 100 * se, 100 * (mean - 1.96 * se), 100 * (mean + 1.96 * se));
    }
}

/* Seconds left before `deadline_ns`. */
static double left_s(uint64_t deadline_ns)
{
    uint64_t now = bench_now_ns();
    return deadline_ns > now ? (double)(deadline_ns - now) / 1e9 : 0;
}

/* Runs n experiments like `rq` (seeds rq->seed, +1, ...) within the budget:
 * a run starts only if its time limit fits in what is left, or, when
 * `min_cap_s` > 0, if at least that much is left, and is then stopped at
 * the deadline (censored). Returns 0 or -1. */
static int run_series(bench_pipe *bp, const options *o, exp_req rq, int n, uint64_t deadline,
                      double min_cap_s, tally *t, int verbose)
{
    for (int i = 0; i < n; i++) {
        double left = left_s(deadline) + 1; /* a look takes a moment */
        rq.cap_s = 0;
        if (left < rq.seconds) {
            if (min_cap_s <= 0 || left < min_cap_s) {
                t->n_budget = n - i;
                break;
            }
            rq.cap_s = left;
        }
        exp_out x;
        if (run_experiment(bp, o, &rq, &x) != 0)
            return -1;
        tally_add(t, &x);
        if (verbose || x.verdict == ABSTATS_FASTER || x.verdict == ABSTATS_SLOWER) {
            printf("  run %3d: %-8s at %6.1f s%s, delta %+.2f%% [%+.2f%%, %+.2f%%], "
                   "%.0f samples\n",
                   i + 1, abstats_verdict_name(x.verdict),
                   isnan(x.t_decided_s) ? x.elapsed_s : x.t_decided_s,
                   x.cut ? " (cut by the budget)" : "", 100 * x.delta, 100 * x.ci_lo, 100 * x.ci_hi,
                   x.samples);
            fflush(stdout);
        }
        rq.seed++;
    }
    return 0;
}

/* ----------------------------------------------------------- 1. A/A duet */

typedef struct summary {
    int aa_fp, aa_n;
    double aa_lo, aa_hi;
    int det_n, det_hits;
    double det_med, det_p90;
    int inter_done;
    int blk_n[MAX_BLOCKS], blk_hits[MAX_BLOCKS], blk_cut[MAX_BLOCKS];
    double blk_med[MAX_BLOCKS];
    double true_ratio, delay_us;
    int aa_i_fp, aa_i_n;
    double aa_i_lo, aa_i_hi;
    double drift_med, drift_base_med;
    int drift_n;
    int units_done;
    double units_growth, units_se_ratio[2];
    size_t units_pairs; /* pairs per kept unit: the shortest block */
    int units_fp[2], units_same[2], units_n;
    int ilmax_fp, ilmax_n;
    double ilmax_lo, ilmax_hi, ilmax_mean, ilmax_se;
} summary;

static int part_aa(const options *o, summary *sm)
{
    printf("\n## aa: %d A/A duet experiments, tp_work units %u against itself, %.0f records/s, "
           "batch %u, time limit %.1f s, threshold %.1f%%, alpha 1%%, 10 looks\n",
           o->aa_runs, o->units, o->rate, o->batch, o->aa_seconds, 100 * o->threshold);
    print_load("before");
    uint64_t deadline = bench_now_ns() + (uint64_t)(o->aa_budget * 1e9);
    bench_pipe bp;
    if (pipe_start(&bp, o, o->rate, o->units, 0, 0, o->warm_s) != 0)
        return -1;
    tally t;
    tally_init(&t, o->aa_runs);
    exp_req rq = {.aa = 1, .mode = EXP_DUET, .seconds = o->aa_seconds, .seed = 1001};
    uint64_t t0 = bench_now_ns();
    int rc = run_series(&bp, o, rq, o->aa_runs, deadline, 0, &t, 0);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    if (pipe_finish(&bp) != 0)
        rc = -1;
    if (rc == 0) {
        tally_print(&t, " A/A runs");
        double lo, hi;
        int fp = tally_false(&t, &lo, &hi);
        printf("false-positive rate: %d/%d = %.2f%% [exact 95%% CI %.2f..%.2f%%] (%.0f s in all)\n",
               fp, t.n, t.n ? 100.0 * fp / t.n : 0, 100 * lo, 100 * hi, secs);
        sm->aa_fp = fp, sm->aa_n = t.n, sm->aa_lo = lo, sm->aa_hi = hi;
    }
    print_load("after");
    tally_free(&t);
    return rc;
}

/* -------------------------------------------------- 2. time to detect 2% */

static int part_detect(const options *o, summary *sm)
{
    printf("\n## detect: %d duet experiments, B = tp_work units %u against A = %u (%+.1f%% work), "
           "%.0f records/s, batch %u, time limit %.0f s, threshold %.1f%%, 10 looks\n",
           o->detect_runs, o->detect_units, o->units,
           100.0 * ((double)o->detect_units / o->units - 1), o->rate, o->batch, o->detect_seconds,
           100 * o->threshold);
    print_load("before");
    uint64_t deadline = bench_now_ns() + (uint64_t)(o->detect_budget * 1e9);
    bench_pipe bp;
    if (pipe_start(&bp, o, o->rate, o->units, 0, 0, o->warm_s) != 0)
        return -1;
    tally t;
    tally_init(&t, o->detect_runs);
    exp_req rq = {
        .units = o->detect_units, .mode = EXP_DUET, .seconds = o->detect_seconds, .seed = 2001};
    int rc = run_series(&bp, o, rq, o->detect_runs, deadline, 0, &t, 1);
    if (pipe_finish(&bp) != 0)
        rc = -1;
    if (rc == 0) {
        tally_print(&t, " runs");
        double lo = 0, hi = 1;
        if (t.n)
            bench_clopper_pearson(t.v[ABSTATS_SLOWER], t.n, &lo, &hi);
        printf("detected (slower): %d/%d [exact 95%% CI %.1f..%.1f%%]; time to the verdict "
               "(looks every %.1f s): median %.1f s, p90 %.1f s\n",
               t.v[ABSTATS_SLOWER], t.n, 100 * lo, 100 * hi, o->detect_seconds / 10,
               t.n ? bench_median(t.t_stop, (size_t)t.n) : NAN,
               t.n ? bench_quantile_sorted(t.t_stop, (size_t)t.n, 0.9) : NAN);
        sm->det_n = t.n, sm->det_hits = t.v[ABSTATS_SLOWER];
        sm->det_med = t.n ? bench_median(t.t_stop, (size_t)t.n) : NAN;
        sm->det_p90 = t.n ? bench_quantile_sorted(t.t_stop, (size_t)t.n, 0.9) : NAN;
    }
    print_load("after");
    tally_free(&t);
    return rc;
}

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
    if (pipe_start(&bp, o, o->inter_rate, o->units, delay_us, o->inter_linger_us, o->warm_s) != 0)
        return -1;
    const uint32_t tick_ms = 10;
    histogram *h = calloc(3 + (size_t)o->n_blocks, sizeof(histogram));
    if (!h) {
        pipe_finish(&bp);
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
            sleep_ns(until - now);
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
    return pipe_finish(&bp);
}

static int part_interleaved_run(const options *o, summary *sm);

static int part_interleaved(const options *o, summary *sm)
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
    print_load("before");
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
    if (pipe_start(&bp, o, o->inter_rate, o->units, o->base_delay_us, o->inter_linger_us,
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
        pipe_finish(&bp);
        return -1;
    }
    for (int b = 0; b < o->n_blocks; b++)
        tally_init(&tb[b], o->inter_runs);
    for (int r = 0; r < o->inter_runs && rc == 0; r++) {
        for (int b = 0; b < o->n_blocks && rc == 0; b++) {
            exp_req rq = {.units = o->units,
                          .delay_us = o->base_delay_us + delay_us,
                          .mode = EXP_INTERLEAVED,
                          .block_ms = o->blocks[b],
                          .seconds = o->inter_seconds,
                          .seed = 3001 + 100 * (uint64_t)b + (uint64_t)r};
            uint64_t share = r == 0 ? (uint64_t)(left_s(deadline) / (o->n_blocks - b) * 1e9)
                                    : (uint64_t)(left_s(deadline) * 1e9);
            printf("\n### block %u ms, run %d: time limit %.0f s, 10 looks, B waits %.1f us more "
                   "per batch\n",
                   o->blocks[b], r + 1, o->inter_seconds, delay_us);
            print_load("before");
            tally one;
            tally_init(&one, 1);
            rc = run_series(&bp, o, rq, 1, bench_now_ns() + share,
                            r == 0 ? o->inter_seconds / 4 : 0, &one, 1);
            tally *t = &tb[b];
            if (one.n) {
                t->v[verdict_of_tally(&one)]++;
                t->n_cut += one.n_cut;
                t->t_stop[t->n] = one.t_stop[0];
                t->delta[t->n] = one.delta[0];
                t->n++;
            } else {
                printf("(left out: the part's time budget would have been exceeded)\n");
                t->n_budget++;
            }
            tally_free(&one);
        }
    }
    for (int b = 0; b < o->n_blocks && rc == 0; b++) {
        tally *t = &tb[b];
        printf("\n### block %u ms: %d runs\n", o->blocks[b], t->n);
        tally_print(t, " runs");
        sm->blk_n[b] = t->n, sm->blk_hits[b] = t->v[ABSTATS_SLOWER], sm->blk_cut[b] = t->n_cut;
        sm->blk_med[b] = t->n ? bench_median(t->t_stop, (size_t)t->n) : NAN;
        printf("block %u ms: detected %d/%d; time to the end: median %.0f s\n", o->blocks[b],
               t->v[ABSTATS_SLOWER], t->n, sm->blk_med[b]);
    }
    for (int b = 0; b < o->n_blocks; b++)
        tally_free(&tb[b]);
    free(tb);
    if (rc == 0 && o->inter_aa_runs > 0) {
        printf("\n### A/A interleaved: %d experiments, block %u ms, time limit %.0f s, 10 looks\n",
               o->inter_aa_runs, o->inter_aa_block, o->inter_aa_seconds);
        print_load("before");
        tally t;
        tally_init(&t, o->inter_aa_runs);
        exp_req rq = {.aa = 1,
                      .mode = EXP_INTERLEAVED,
                      .block_ms = o->inter_aa_block,
                      .seconds = o->inter_aa_seconds,
                      .seed = 4001};
        rc = run_series(&bp, o, rq, o->inter_aa_runs,
                        bench_now_ns() + (uint64_t)(o->inter_aa_budget * 1e9), 0, &t, 0);
        if (rc == 0) {
            tally_print(&t, " A/A runs");
            double lo, hi;
            int fp = tally_false(&t, &lo, &hi);
            printf("p99 false-positive rate: %d/%d = %.1f%% [exact 95%% CI %.1f..%.1f%%]\n", fp,
                   t.n, t.n ? 100.0 * fp / t.n : 0, 100 * lo, 100 * hi);
            sm->aa_i_fp = fp, sm->aa_i_n = t.n, sm->aa_i_lo = lo, sm->aa_i_hi = hi;
        }
        tally_free(&t);
    }
    if (pipe_finish(&bp) != 0)
        rc = -1;
    sm->inter_done = rc == 0;
    print_load("after");
    return rc;
fail:
    free(ra), free(rb);
    return -1;
}

/* ------------------------------------------------------- 4. drift */

/* A child process that spins, pinned to the last CPU this process may run
 * on when sched_setaffinity allows. Returns its pid (or -1); *pinned is the
 * CPU or -1. */
static pid_t busy_start(int *pinned)
{
    cpu_set_t set;
    int cpu = -1;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set))
                cpu = c;
    pid_t pid = fork();
    if (pid == 0) {
        volatile uint64_t x = 1;
        for (;;)
            x = x * 6364136223846793005ull + 1;
    }
    /* Pinned by the parent, so the result is known here. */
    *pinned = -1;
    cpu_set_t one;
    CPU_ZERO(&one);
    if (pid > 0 && cpu >= 0) {
        CPU_SET(cpu, &one);
        if (sched_setaffinity(pid, sizeof one, &one) == 0)
            *pinned = cpu;
    }
    return pid;
}

/* One drift run: a duet of `seconds` with one look; with `load`, the busy
 * loop runs over its middle third. */
static int drift_run(bench_pipe *bp, const options *o, int load, uint64_t seed, exp_out *x,
                     int *pinned)
{
    char units[32];
    snprintf(units, sizeof units, "%u", o->drift_units);
    cfg_param prm[2] = {{.key = "units", .value = units}, {.key = "noise", .value = "0.05"}};
    exp_spec spec = {.stage = "work",
                     .plugin = "tp_work",
                     .params = prm,
                     .n_params = 2,
                     .params_given = 1,
                     .threshold = o->threshold,
                     .max_seconds = o->drift_seconds,
                     .n_looks = 1,
                     .seed = seed};
    experiment *e = NULL;
    char err[1024];
    if (experiment_start(bp->p, &spec, NULL, 0, &e, err, sizeof err) != 0) {
        fprintf(stderr, "obs-bench-ab: experiment_start: %s\n", err);
        return -1;
    }
    if (load) {
        uint64_t third = (uint64_t)(o->drift_seconds / 3 * 1e9);
        sleep_ns(third);
        pid_t pid = busy_start(pinned);
        sleep_ns(third);
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
    if (!experiment_wait(e, (uint64_t)((o->drift_seconds + 60) * 1e9)))
        return -1;
    json_t *j = experiment_json(e);
    size_t i;
    json_t *m;
    memset(x, 0, sizeof *x);
    x->delta = NAN;
    json_array_foreach(json_object_get(j, "metrics"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "name")), "cpu_ns_per_record") == 0) {
            x->delta = num(json_object_get(m, "delta"));
            x->ci_lo = num(json_array_get(json_object_get(m, "ci"), 0));
            x->ci_hi = num(json_array_get(json_object_get(m, "ci"), 1));
        }
    }
    x->samples = num(json_object_get(j, "samples"));
    json_decref(j);
    return 0;
}

static int part_drift(const options *o, summary *sm)
{
    printf("\n## drift: %d repetitions of (quiet, loaded, quiet) duet runs, B = units %u "
           "against %u (%+.0f%% work), %.0f records/s, %.0f s each, one look at the end; "
           "loaded: a busy-loop process over the middle third\n",
           o->drift_reps, o->drift_units, o->units, 100.0 * ((double)o->drift_units / o->units - 1),
           o->rate, o->drift_seconds);
    print_load("before");
    uint64_t deadline = bench_now_ns() + (uint64_t)(o->drift_budget * 1e9);
    bench_pipe bp;
    if (pipe_start(&bp, o, o->rate, o->units, 0, 0, o->warm_s) != 0)
        return -1;
    double d_load[64], d_base[64];
    int n = 0, rc = 0, pinned = -1, left_out = 0;
    printf("%4s %12s %12s %12s %14s %14s\n", "rep", "quiet1_%", "loaded_%", "quiet2_%",
           "loaded-q1_pp", "q2-q1_pp");
    for (int r = 0; r < o->drift_reps && r < 64; r++) {
        if (left_s(deadline) < 3 * (o->drift_seconds + 1) + 1) {
            left_out = o->drift_reps - r;
            break;
        }
        exp_out q1, ld, q2;
        uint64_t seed = 5001 + 10 * (uint64_t)r;
        if (drift_run(&bp, o, 0, seed, &q1, &pinned) ||
            drift_run(&bp, o, 1, seed + 1, &ld, &pinned) ||
            drift_run(&bp, o, 0, seed + 2, &q2, &pinned)) {
            rc = -1;
            break;
        }
        d_load[n] = 100 * (ld.delta - q1.delta);
        d_base[n] = 100 * (q2.delta - q1.delta);
        printf("%4d %+12.2f %+12.2f %+12.2f %+14.2f %+14.2f\n", r + 1, 100 * q1.delta,
               100 * ld.delta, 100 * q2.delta, d_load[n], d_base[n]);
        fflush(stdout);
        n++;
    }
    if (pipe_finish(&bp) != 0)
        rc = -1;
    if (rc == 0 && n > 0) {
        double al[64], ab[64], lo, hi, blo, bhi;
        bench_minmax(d_load, (size_t)n, &lo, &hi);
        bench_minmax(d_base, (size_t)n, &blo, &bhi);
        for (int i = 0; i < n; i++)
            al[i] = fabs(d_load[i]), ab[i] = fabs(d_base[i]);
        sm->drift_med = bench_median(al, (size_t)n);
        sm->drift_base_med = bench_median(ab, (size_t)n);
        sm->drift_n = n;
        if (pinned >= 0)
            printf("busy loop: pinned to cpu %d\n", pinned);
        else
            printf("busy loop: not pinned (sched_setaffinity refused)\n");
        printf("loaded - quiet1: median |diff| %.2f pp, range %+.2f .. %+.2f pp\n", sm->drift_med,
               lo, hi);
        printf("quiet2 - quiet1 (baseline): median |diff| %.2f pp, range %+.2f .. %+.2f pp\n",
               sm->drift_base_med, blo, bhi);
    }
    if (left_out)
        printf("(%d repetitions left out: the part's time budget would have been exceeded)\n",
               left_out);
    print_load("after");
    return rc;
}

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

/* ------------------------- 6. interleaved A/A on a saturating stream */

/* The setting of test_experiment's interleaved checks: the stage is the
 * bottleneck of a max-rate stream, so the sink's latency is queueing set by
 * the stage; 20 ms blocks, 4 s, 4 looks, threshold 2%. Every experiment has
 * its own seed. Reports the rate of false p99 verdicts and the mean Delta of
 * p99 with its standard error (a bias shows there first). */
static int part_ilmax(const options *o, summary *sm)
{
    printf("\n## ilmax: %d interleaved A/A experiments on a saturating stream (load: max), "
           "tp_work units 200, batch %u, 20 ms blocks, time limit 4 s, 4 looks, threshold 2%%\n",
           o->ilmax_runs, o->batch);
    print_load("before");
    uint64_t deadline = bench_now_ns() + (uint64_t)(o->ilmax_budget * 1e9);
    bench_pipe bp;
    if (pipe_start(&bp, o, 0, 200, 0, 0, o->warm_s) != 0)
        return -1;
    tally t;
    tally_init(&t, o->ilmax_runs);
    exp_req rq = {.aa = 1,
                  .mode = EXP_INTERLEAVED,
                  .block_ms = 20,
                  .seconds = 4,
                  .n_looks = 4,
                  .threshold = 0.02,
                  .seed = 9001};
    int rc = run_series(&bp, o, rq, o->ilmax_runs, deadline, 0, &t, 0);
    if (pipe_finish(&bp) != 0)
        rc = -1;
    if (rc == 0) {
        tally_print(&t, " A/A runs");
        double lo, hi;
        int fp = tally_false(&t, &lo, &hi);
        tally_mean_se(&t, &sm->ilmax_mean, &sm->ilmax_se);
        printf("p99 false-positive rate: %d/%d = %.1f%% [exact 95%% CI %.1f..%.1f%%]\n", fp, t.n,
               t.n ? 100.0 * fp / t.n : 0, 100 * lo, 100 * hi);
        sm->ilmax_fp = fp, sm->ilmax_n = t.n, sm->ilmax_lo = lo, sm->ilmax_hi = hi;
    }
    print_load("after");
    tally_free(&t);
    return rc;
}

static int part_units(const options *o, summary *sm)
{
    printf("\n## units: one A/A duet of %.0f s with its batch pairs kept (tp_work units %u, "
           "%.0f records/s, batch %u); the standard error of delta from blocks of L pairs, and "
           "the bootstrap's with %u units (before) and %u (now)\n",
           o->units_seconds, o->units, o->rate, o->batch, ABSTATS_DEFAULT_MAX_UNITS,
           EXP_DUET_MAX_UNITS);
    print_load("before");
    bench_pipe bp;
    if (pipe_start(&bp, o, o->rate, o->units, 0, 0, o->warm_s) != 0)
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
    if (pipe_finish(&bp) != 0)
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
    print_load("after");
    sm->units_done = 1;
    return 0;
}

/* ------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: obs-bench-ab [--part aa|detect|interleaved|drift|units|ilmax|all[,...]] [--quick]\n"
        "  [--units N] [--rate R] [--batch N] [--threshold F]\n"
        "  [--aa-runs N] [--aa-seconds S]\n"
        "  [--detect-runs N] [--detect-units N] [--detect-seconds S]\n"
        "  [--inter-rate R] [--inter-linger-us US] [--effect F] [--delay-us US]\n"
        "  [--base-delay-us US] [--keep-awake]\n"
        "  [--blocks MS,MS,...] [--inter-runs N]\n"
        "  [--inter-seconds S] [--cal-seconds S] [--cal-pairs N]\n"
        "  [--inter-aa-runs N] [--inter-aa-block MS] [--inter-aa-seconds S]\n"
        "  [--drift-reps N] [--drift-units N] [--drift-seconds S] [--units-seconds S]\n"
        "  [--ilmax-runs N]\n"
        "  [--budget-scale F] [--plugin-dir DIR] [--test-plugin-dir DIR]\n"
        "defaults: --units 500 --rate 100000 --batch 256 --threshold 0.01 --aa-runs 200\n"
        "  --aa-seconds 5 --detect-runs 20 --detect-units 510 --detect-seconds 60\n"
        "  --inter-rate 5000 --inter-linger-us 2000 --effect 0.05 --base-delay-us 50\n"
        "  --blocks 50,200,1000 --inter-runs 3 (--delay-us: B's extra wait instead of the\n"
        "  calibrated one) --inter-seconds 600 --cal-seconds 10 --cal-pairs 5 --inter-aa-runs 20\n"
        "  --inter-aa-block 50 --inter-aa-seconds 10 --drift-reps 5 --drift-units 550\n"
        "  --drift-seconds 15 --units-seconds 300 --ilmax-runs 100; time budgets (minutes):\n"
        "  aa 12, detect 6, interleaved 3 + 30 (one run per block length first, more while\n"
        "  a whole run fits) + A/A 5.5, drift 5, units 7, ilmax 8 (at most about 80 in\n"
        "  all), scaled by --budget-scale.\n"
        "--quick: every part, short (about 1 minute).\n");
}

int main(int argc, char **argv)
{
    options o = {.plugin_dir = OBS_BENCH_PLUGIN_DIR,
                 .test_plugin_dir = OBS_BENCH_TEST_PLUGIN_DIR,
                 .parts = PART_AA | PART_DETECT | PART_INTER | PART_DRIFT | PART_UNITS | PART_ILMAX,
                 .batch = 256,
                 .units = 500,
                 .warm_s = 1.0,
                 .threshold = 0.01,
                 .rate = 100000,
                 .aa_runs = 200,
                 .aa_seconds = 5,
                 .aa_budget = 12 * 60,
                 .detect_runs = 20,
                 .detect_units = 510,
                 .detect_seconds = 60,
                 .detect_budget = 6 * 60,
                 .inter_rate = 5000,
                 .effect = 0.05,
                 .base_delay_us = 50,
                 .inter_seconds = 600,
                 .inter_budget = 30 * 60,
                 .cal_seconds = 10,
                 .inter_runs = 3,
                 .inter_linger_us = 2000,
                 .cal_pairs = 5,
                 .blocks = {50, 200, 1000},
                 .n_blocks = 3,
                 .inter_aa_runs = 20,
                 .inter_aa_block = 50,
                 .inter_aa_seconds = 10,
                 .inter_aa_budget = 5.5 * 60,
                 .ilmax_runs = 100,
                 .ilmax_budget = 8 * 60,
                 .drift_reps = 5,
                 .drift_units = 550,
                 .drift_seconds = 15,
                 .drift_budget = 5 * 60,
                 .units_seconds = 300,
                 .units_kept = 1u << 18};
    double scale = 1;
    /* --quick first, so explicit options given with it win. */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--quick")) {
            o.quick = 1;
            o.warm_s = 0.3;
            o.aa_runs = 8, o.aa_seconds = 1, o.aa_budget = 13;
            o.detect_runs = 3, o.detect_seconds = 3, o.detect_budget = 10;
            o.cal_seconds = 1, o.cal_pairs = 1;
            o.blocks[0] = 50, o.n_blocks = 1;
            o.inter_runs = 1, o.inter_seconds = 6, o.inter_budget = 8;
            o.inter_aa_runs = 1, o.inter_aa_seconds = 4, o.inter_aa_budget = 6;
            o.ilmax_runs = 2, o.ilmax_budget = 10;
            o.drift_reps = 1, o.drift_seconds = 2, o.drift_budget = 12;
            o.units_seconds = 3, o.units_kept = 4096;
        }
    static const struct option lo[] = {{"part", required_argument, 0, 'P'},
                                       {"quick", no_argument, 0, 'q'},
                                       {"units", required_argument, 0, 'u'},
                                       {"rate", required_argument, 0, 'r'},
                                       {"batch", required_argument, 0, 'b'},
                                       {"threshold", required_argument, 0, 't'},
                                       {"aa-runs", required_argument, 0, 1},
                                       {"aa-seconds", required_argument, 0, 2},
                                       {"detect-runs", required_argument, 0, 3},
                                       {"detect-units", required_argument, 0, 4},
                                       {"detect-seconds", required_argument, 0, 5},
                                       {"inter-rate", required_argument, 0, 6},
                                       {"effect", required_argument, 0, 7},
                                       {"delay-us", required_argument, 0, 22},
                                       {"base-delay-us", required_argument, 0, 23},
                                       {"keep-awake", no_argument, 0, 24},
                                       {"blocks", required_argument, 0, 8},
                                       {"inter-runs", required_argument, 0, 9},
                                       {"inter-seconds", required_argument, 0, 10},
                                       {"cal-seconds", required_argument, 0, 11},
                                       {"cal-pairs", required_argument, 0, 12},
                                       {"inter-aa-runs", required_argument, 0, 13},
                                       {"inter-aa-block", required_argument, 0, 14},
                                       {"inter-aa-seconds", required_argument, 0, 15},
                                       {"drift-reps", required_argument, 0, 16},
                                       {"drift-units", required_argument, 0, 17},
                                       {"drift-seconds", required_argument, 0, 18},
                                       {"budget-scale", required_argument, 0, 19},
                                       {"plugin-dir", required_argument, 0, 20},
                                       {"test-plugin-dir", required_argument, 0, 21},
                                       {"units-seconds", required_argument, 0, 25},
                                       {"inter-linger-us", required_argument, 0, 26},
                                       {"ilmax-runs", required_argument, 0, 27},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    int c, bad = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'P': {
            /* A comma-separated list of parts (split in a copy: argv is
             * printed as given). */
            char list[128];
            snprintf(list, sizeof list, "%s", optarg);
            o.parts = 0;
            for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
                if (!strcmp(tok, "aa"))
                    o.parts |= PART_AA;
                else if (!strcmp(tok, "detect"))
                    o.parts |= PART_DETECT;
                else if (!strcmp(tok, "interleaved"))
                    o.parts |= PART_INTER;
                else if (!strcmp(tok, "drift"))
                    o.parts |= PART_DRIFT;
                else if (!strcmp(tok, "units"))
                    o.parts |= PART_UNITS;
                else if (!strcmp(tok, "ilmax"))
                    o.parts |= PART_ILMAX;
                else if (!strcmp(tok, "all"))
                    o.parts |=
                        PART_AA | PART_DETECT | PART_INTER | PART_DRIFT | PART_UNITS | PART_ILMAX;
                else
                    bad = 1;
            }
            bad |= o.parts == 0;
            break;
        }
        case 'q': break;
        case 'u': o.units = (uint32_t)atoi(optarg); break;
        case 'r': o.rate = atof(optarg); break;
        case 'b': o.batch = (uint32_t)atoi(optarg); break;
        case 't': o.threshold = atof(optarg); break;
        case 1: o.aa_runs = atoi(optarg); break;
        case 2: bad |= bench_parse_seconds(optarg, &o.aa_seconds); break;
        case 3: o.detect_runs = atoi(optarg); break;
        case 4: o.detect_units = (uint32_t)atoi(optarg); break;
        case 5: bad |= bench_parse_seconds(optarg, &o.detect_seconds); break;
        case 6: o.inter_rate = atof(optarg); break;
        case 7: o.effect = atof(optarg); break;
        case 8:
            o.n_blocks = bench_parse_list(optarg, o.blocks, MAX_BLOCKS);
            bad |= o.n_blocks < 1;
            break;
        case 9: o.inter_runs = atoi(optarg); break;
        case 10: bad |= bench_parse_seconds(optarg, &o.inter_seconds); break;
        case 11: bad |= bench_parse_seconds(optarg, &o.cal_seconds); break;
        case 12: o.cal_pairs = atoi(optarg); break;
        case 13: o.inter_aa_runs = atoi(optarg); break;
        case 14: o.inter_aa_block = (uint32_t)atoi(optarg); break;
        case 15: bad |= bench_parse_seconds(optarg, &o.inter_aa_seconds); break;
        case 16: o.drift_reps = atoi(optarg); break;
        case 17: o.drift_units = (uint32_t)atoi(optarg); break;
        case 18: bad |= bench_parse_seconds(optarg, &o.drift_seconds); break;
        case 19: scale = atof(optarg); break;
        case 20: o.plugin_dir = optarg; break;
        case 21: o.test_plugin_dir = optarg; break;
        case 22: o.delay_us = atof(optarg); break;
        case 23: o.base_delay_us = atof(optarg); break;
        case 24: o.keep_awake = 1; break;
        case 25: bad |= bench_parse_seconds(optarg, &o.units_seconds); break;
        case 26: o.inter_linger_us = atof(optarg); break;
        case 27: o.ilmax_runs = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: bad = 1;
        }
    }
    for (int b = 0; b < o.n_blocks; b++)
        bad |= o.blocks[b] < 10 || o.blocks[b] > 10000 || o.blocks[b] % 10;
    if (bad || optind < argc || o.units < 1 || o.batch < 1 || !(o.rate > 0) ||
        !(o.inter_rate > 0) || o.aa_runs < 0 || o.detect_runs < 0 || o.inter_runs < 0 ||
        o.ilmax_runs < 0 || o.cal_pairs < 1 || o.cal_pairs > 64 || o.drift_reps < 0 ||
        !(scale > 0) || !(o.effect > 0) || o.inter_aa_block < 10 || o.inter_aa_block > 10000) {
        usage(stderr);
        return 2;
    }
    o.aa_budget *= scale, o.detect_budget *= scale, o.inter_budget *= scale;
    o.inter_aa_budget *= scale, o.drift_budget *= scale, o.ilmax_budget *= scale;
    bench_print_header(stdout, "obs-bench-ab", argc, argv);
    printf("# pipeline: gen_static (16 B) -> tp_work (units, noise 0.05) -> sink_null, constant "
           "load (ilmax: max), batch_size %u; experiments in this process (experiment_start)\n",
           o.batch);
    fflush(stdout);
    summary sm;
    memset(&sm, 0, sizeof sm);
    uint64_t t0 = bench_now_ns();
    int rc = 0;
    if (rc == 0 && (o.parts & PART_AA))
        rc = part_aa(&o, &sm);
    if (rc == 0 && (o.parts & PART_DETECT))
        rc = part_detect(&o, &sm);
    if (rc == 0 && (o.parts & PART_INTER))
        rc = part_interleaved(&o, &sm);
    if (rc == 0 && (o.parts & PART_DRIFT))
        rc = part_drift(&o, &sm);
    if (rc == 0 && (o.parts & PART_UNITS))
        rc = part_units(&o, &sm);
    if (rc == 0 && (o.parts & PART_ILMAX))
        rc = part_ilmax(&o, &sm);
    printf("\n## summary (%.1f min)\n", (double)(bench_now_ns() - t0) / 60e9);
    if (o.parts & PART_AA && sm.aa_n)
        printf("A/A duet false positives: %d/%d = %.2f%% [95%% CI %.2f..%.2f%%] (target <= 1%%)\n",
               sm.aa_fp, sm.aa_n, 100.0 * sm.aa_fp / sm.aa_n, 100 * sm.aa_lo, 100 * sm.aa_hi);
    if (o.parts & PART_DETECT && sm.det_n)
        printf("2%% CPU change (duet): detected %d/%d, time to the verdict median %.1f s, "
               "p90 %.1f s (target <= 60 s)\n",
               sm.det_hits, sm.det_n, sm.det_med, sm.det_p90);
    if (o.parts & PART_DRIFT && sm.drift_n)
        printf("effect drift with a loaded core: median %.2f pp (quiet baseline %.2f pp) over %d "
               "repetitions (target <= 0.5 pp)\n",
               sm.drift_med, sm.drift_base_med, sm.drift_n);
    if (o.parts & PART_UNITS && sm.units_done && sm.units_se_ratio[0] > 0)
        printf("duet units: se of delta grows %.2fx from blocks of %zu pairs to the longest; "
               "bootstrap se / that, 5 s segments: %.2f with %u units, %.2f with %u (1 = "
               "honest)\n",
               sm.units_growth, sm.units_pairs, sm.units_se_ratio[0], ABSTATS_DEFAULT_MAX_UNITS,
               sm.units_se_ratio[1], EXP_DUET_MAX_UNITS);
    if (o.parts & PART_UNITS && sm.units_done && sm.units_n)
        printf("duet units, replayed A/A (5 s, 10 looks) on %d segments: false %d / %d, same %d / "
               "%d (%u / %u units)\n",
               sm.units_n, sm.units_fp[0], sm.units_fp[1], sm.units_same[0], sm.units_same[1],
               ABSTATS_DEFAULT_MAX_UNITS, EXP_DUET_MAX_UNITS);
    if (o.parts & PART_INTER && sm.inter_done) {
        printf("interleaved p99, B waits %.1f us more per batch than A (whole-run p99 B/A %.3f, "
               "median of pairs); target: detected in <= 10 min\n",
               sm.delay_us, sm.true_ratio);
        for (int b = 0; b < o.n_blocks; b++)
            printf("  block %4u ms: detected %d/%d, time to the end median %.0f s%s\n", o.blocks[b],
                   sm.blk_hits[b], sm.blk_n[b], sm.blk_med[b],
                   sm.blk_cut[b] ? " (some runs cut by the budget)" : "");
        if (sm.aa_i_n)
            printf("  A/A p99 false positives: %d/%d [95%% CI %.1f..%.1f%%]\n", sm.aa_i_fp,
                   sm.aa_i_n, 100 * sm.aa_i_lo, 100 * sm.aa_i_hi);
    }
    if (o.parts & PART_ILMAX && sm.ilmax_n)
        printf("interleaved A/A, saturating stream, 20 ms blocks, 4 s: p99 false positives %d/%d "
               "[95%% CI %.1f..%.1f%%], mean p99 delta %+.2f%% (standard error %.2f%%)\n",
               sm.ilmax_fp, sm.ilmax_n, 100 * sm.ilmax_lo, 100 * sm.ilmax_hi, 100 * sm.ilmax_mean,
               100 * sm.ilmax_se);
    if (rc != 0)
        fprintf(stderr, "obs-bench-ab: a run failed\n");
    return rc != 0;
}
