/*
 * bench_ab.h - what the compilation units of obs-bench-ab share (private to
 * the program): its options and part bits, the summary the parts fill in, a
 * pipeline running in a thread of its own, one experiment's request and
 * outcome, the verdict counts of a series of experiments, and the functions
 * that run them. bench_ab.c parses the options and calls the parts;
 * bench_ab_run.c runs pipelines and experiments; the parts live in
 * bench_ab_duet.c (aa, detect, drift), bench_ab_interleaved.c (interleaved,
 * ilmax) and bench_ab_units.c (units).
 */
#ifndef OBS_BENCH_AB_H
#define OBS_BENCH_AB_H

#include <pthread.h>
#include <stdint.h>

#include "config/config.h"
#include "engine/pipeline.h"
#include "lab/experiment.h"

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

typedef struct bench_pipe {
    obs_config *cfg;
    pipeline *p;
    pthread_t thread;
    int rc;
} bench_pipe;

typedef struct exp_out {
    abstats_verdict verdict; /* of the primary metric */
    double t_decided_s;      /* time of the deciding look; NaN if undecided */
    double elapsed_s;
    double delta, ci_lo, ci_hi, a, b; /* primary metric */
    double samples, latency_blocks;
    int cut; /* stopped by the benchmark's budget before its time limit */
} exp_out;

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

/* Verdict counts of a series of experiments. */
typedef struct tally {
    int n, v[5];
    double *t_stop; /* time to the end of each (decided look, or time limit) */
    double *delta;  /* primary delta of each */
    int n_budget;   /* runs left out by the budget */
    int n_cut;      /* runs stopped by the budget before their time limit */
} tally;

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

/* bench_ab_run.c: clocks, pipelines, experiments and their tallies. */
void ab_sleep_ns(uint64_t ns);
void ab_print_load(const char *when);
int ab_pipe_start(bench_pipe *bp, const options *o, double rate, uint32_t units, double delay_us,
                  double linger_us, double warm_s);
int ab_pipe_finish(bench_pipe *bp);
double ab_num(json_t *j);
void ab_tally_init(tally *t, int cap);
abstats_verdict ab_verdict_of_tally(const tally *t);
void ab_tally_free(tally *t);
void ab_tally_mean_se(const tally *t, double *mean, double *se);
int ab_tally_false(const tally *t, double *lo, double *hi);
void ab_tally_print(tally *t, const char *unit_note);
double ab_left_s(uint64_t deadline_ns);
int ab_run_series(bench_pipe *bp, const options *o, exp_req rq, int n, uint64_t deadline,
                  double min_cap_s, tally *t, int verbose);

/* The parts. Each starts and stops its own pipelines, prints its report,
 * fills in its fields of *sm and returns 0, or -1 when a pipeline or an
 * experiment failed. */
int ab_part_aa(const options *o, summary *sm);          /* bench_ab_duet.c */
int ab_part_detect(const options *o, summary *sm);      /* bench_ab_duet.c */
int ab_part_drift(const options *o, summary *sm);       /* bench_ab_duet.c */
int ab_part_interleaved(const options *o, summary *sm); /* bench_ab_interleaved.c */
int ab_part_ilmax(const options *o, summary *sm);       /* bench_ab_interleaved.c */
int ab_part_units(const options *o, summary *sm);       /* bench_ab_units.c */

#endif
