/*
 * bench_ab_duet.c - the duet parts of obs-bench-ab on the CPU metric, each on
 * a constant stream: aa (false positives of A/A experiments), detect (time
 * to detect B with 2% more work) and drift (the estimate of a known effect
 * while another process loads a core for the middle third of the run).
 */
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_ab.h"
#include "bench_util.h"

/* ----------------------------------------------------------- 1. A/A duet */

int ab_part_aa(const options *o, summary *sm)
{
    printf("\n## aa: %d A/A duet experiments, tp_work units %u against itself, %.0f records/s, "
           "batch %u, time limit %.1f s, threshold %.1f%%, alpha 1%%, 10 looks\n",
           o->aa_runs, o->units, o->rate, o->batch, o->aa_seconds, 100 * o->threshold);
    ab_print_load("before");
    uint64_t deadline = bench_now_ns() + (uint64_t)(o->aa_budget * 1e9);
    bench_pipe bp;
    if (ab_pipe_start(&bp, o, o->rate, o->units, 0, 0, o->warm_s) != 0)
        return -1;
    tally t;
    ab_tally_init(&t, o->aa_runs);
    exp_req rq = {.aa = 1, .mode = EXP_DUET, .seconds = o->aa_seconds, .seed = 1001};
    uint64_t t0 = bench_now_ns();
    int rc = ab_run_series(&bp, o, rq, o->aa_runs, deadline, 0, &t, 0);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    if (ab_pipe_finish(&bp) != 0)
        rc = -1;
    if (rc == 0) {
        ab_tally_print(&t, " A/A runs");
        double lo, hi;
        int fp = ab_tally_false(&t, &lo, &hi);
        printf("false-positive rate: %d/%d = %.2f%% [exact 95%% CI %.2f..%.2f%%] (%.0f s in all)\n",
               fp, t.n, t.n ? 100.0 * fp / t.n : 0, 100 * lo, 100 * hi, secs);
        sm->aa_fp = fp, sm->aa_n = t.n, sm->aa_lo = lo, sm->aa_hi = hi;
    }
    ab_print_load("after");
    ab_tally_free(&t);
    return rc;
}

/* -------------------------------------------------- 2. time to detect 2% */

int ab_part_detect(const options *o, summary *sm)
{
    printf("\n## detect: %d duet experiments, B = tp_work units %u against A = %u (%+.1f%% work), "
           "%.0f records/s, batch %u, time limit %.0f s, threshold %.1f%%, 10 looks\n",
           o->detect_runs, o->detect_units, o->units,
           100.0 * ((double)o->detect_units / o->units - 1), o->rate, o->batch, o->detect_seconds,
           100 * o->threshold);
    ab_print_load("before");
    uint64_t deadline = bench_now_ns() + (uint64_t)(o->detect_budget * 1e9);
    bench_pipe bp;
    if (ab_pipe_start(&bp, o, o->rate, o->units, 0, 0, o->warm_s) != 0)
        return -1;
    tally t;
    ab_tally_init(&t, o->detect_runs);
    exp_req rq = {
        .units = o->detect_units, .mode = EXP_DUET, .seconds = o->detect_seconds, .seed = 2001};
    int rc = ab_run_series(&bp, o, rq, o->detect_runs, deadline, 0, &t, 1);
    if (ab_pipe_finish(&bp) != 0)
        rc = -1;
    if (rc == 0) {
        ab_tally_print(&t, " runs");
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
    ab_print_load("after");
    ab_tally_free(&t);
    return rc;
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
        ab_sleep_ns(third);
        pid_t pid = busy_start(pinned);
        ab_sleep_ns(third);
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
            x->delta = ab_num(json_object_get(m, "delta"));
            x->ci_lo = ab_num(json_array_get(json_object_get(m, "ci"), 0));
            x->ci_hi = ab_num(json_array_get(json_object_get(m, "ci"), 1));
        }
    }
    x->samples = ab_num(json_object_get(j, "samples"));
    json_decref(j);
    return 0;
}

int ab_part_drift(const options *o, summary *sm)
{
    printf("\n## drift: %d repetitions of (quiet, loaded, quiet) duet runs, B = units %u "
           "against %u (%+.0f%% work), %.0f records/s, %.0f s each, one look at the end; "
           "loaded: a busy-loop process over the middle third\n",
           o->drift_reps, o->drift_units, o->units, 100.0 * ((double)o->drift_units / o->units - 1),
           o->rate, o->drift_seconds);
    ab_print_load("before");
    uint64_t deadline = bench_now_ns() + (uint64_t)(o->drift_budget * 1e9);
    bench_pipe bp;
    if (ab_pipe_start(&bp, o, o->rate, o->units, 0, 0, o->warm_s) != 0)
        return -1;
    double d_load[64], d_base[64];
    int n = 0, rc = 0, pinned = -1, left_out = 0;
    printf("%4s %12s %12s %12s %14s %14s\n", "rep", "quiet1_%", "loaded_%", "quiet2_%",
           "loaded-q1_pp", "q2-q1_pp");
    for (int r = 0; r < o->drift_reps && r < 64; r++) {
        if (ab_left_s(deadline) < 3 * (o->drift_seconds + 1) + 1) {
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
    if (ab_pipe_finish(&bp) != 0)
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
    ab_print_load("after");
    return rc;
}
