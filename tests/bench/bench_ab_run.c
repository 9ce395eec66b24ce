/*
 * bench_ab_run.c - how obs-bench-ab runs things: the pipeline (gen_static ->
 * tp_work -> sink_null in a thread of its own), one experiment on it through
 * the real runner (experiment_start, its looks and early stop) read back from
 * its JSON, and series of experiments within a time budget with their
 * verdict counts (tallies). Shared by every part through bench_ab.h.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_ab.h"
#include "bench_util.h"
#include "config/config.h"
#include "engine/pipeline.h"
#include "lab/experiment.h"

void ab_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void ab_print_load(const char *when)
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
int ab_pipe_start(bench_pipe *bp, const options *o, double rate, uint32_t units, double delay_us,
                  double linger_us, double warm_s)
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
        ab_sleep_ns(2000000);
    }
    ab_sleep_ns((uint64_t)(warm_s * 1e9));
    return 0;
}

/* Stops the run and frees it. Returns 0, or -1 if the run failed or lost
 * records between the generator and the sink. */
int ab_pipe_finish(bench_pipe *bp)
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

double ab_num(json_t *j)
{
    return json_is_number(j) ? json_number_value(j) : NAN;
}

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
    out->elapsed_s = ab_num(json_object_get(j, "elapsed_s"));
    out->samples = ab_num(json_object_get(j, "samples"));
    out->latency_blocks = ab_num(json_object_get(j, "latency_blocks"));
    out->cut = cut && strcmp(json_string_value(json_object_get(j, "state")), "stopped") == 0;
    out->delta = out->ci_lo = out->ci_hi = out->a = out->b = NAN;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(j, "metrics"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "name")), primary) != 0)
            continue;
        out->delta = ab_num(json_object_get(m, "delta"));
        out->ci_lo = ab_num(json_array_get(json_object_get(m, "ci"), 0));
        out->ci_hi = ab_num(json_array_get(json_object_get(m, "ci"), 1));
        out->a = ab_num(json_object_get(m, "a"));
        out->b = ab_num(json_object_get(m, "b"));
    }
    /* The runner stops at the first look that decides the primary metric. */
    out->t_decided_s = NAN;
    json_array_foreach(json_object_get(j, "history"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "metric")), primary) != 0)
            continue;
        abstats_verdict v = verdict_of(json_string_value(json_object_get(m, "verdict")));
        if (abstats_decided(v) && isnan(out->t_decided_s))
            out->t_decided_s = ab_num(json_object_get(m, "t_s"));
    }
    json_decref(j);
    return 0;
}

void ab_tally_init(tally *t, int cap)
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
abstats_verdict ab_verdict_of_tally(const tally *t)
{
    for (int v = 0; v < 5; v++)
        if (t->v[v])
            return (abstats_verdict)v;
    return ABSTATS_UNKNOWN;
}

void ab_tally_free(tally *t)
{
    free(t->t_stop);
    free(t->delta);
}

/* The mean of the primary deltas and its standard error (NaN below two
 * runs): in A/A a bias of the design shows here long before it shows in the
 * count of false verdicts. */
void ab_tally_mean_se(const tally *t, double *mean, double *se)
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
int ab_tally_false(const tally *t, double *lo, double *hi)
{
    int fp = t->v[ABSTATS_FASTER] + t->v[ABSTATS_SLOWER];
    *lo = 0, *hi = 1;
    if (t->n)
        bench_clopper_pearson(fp, t->n, lo, hi);
    return fp;
}

void ab_tally_print(tally *t, const char *unit_note)
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
        ab_tally_mean_se(t, &mean, &se);
        printf("primary delta: mean %+.3f%% (standard error %.3f%%, 95%% CI %+.3f%% .. %+.3f%%)\n",
               100 * mean, 100 * se, 100 * (mean - 1.96 * se), 100 * (mean + 1.96 * se));
    }
}

/* Seconds left before `deadline_ns`. */
double ab_left_s(uint64_t deadline_ns)
{
    uint64_t now = bench_now_ns();
    return deadline_ns > now ? (double)(deadline_ns - now) / 1e9 : 0;
}

/* Runs n experiments like `rq` (seeds rq->seed, +1, ...) within the budget:
 * a run starts only if its time limit fits in what is left, or, when
 * `min_cap_s` > 0, if at least that much is left, and is then stopped at
 * the deadline (censored). Returns 0 or -1. */
int ab_run_series(bench_pipe *bp, const options *o, exp_req rq, int n, uint64_t deadline,
                  double min_cap_s, tally *t, int verbose)
{
    for (int i = 0; i < n; i++) {
        double left = ab_left_s(deadline) + 1; /* a look takes a moment */
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
