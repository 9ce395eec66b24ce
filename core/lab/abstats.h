/*
 * abstats.h - the statistics of A/B experiments: relative difference of B
 * against A with bootstrap confidence intervals, rank tests alongside, and a
 * verdict per metric (SAME, FASTER, SLOWER, UNKNOWN, UNSTABLE) that stays
 * honest when the experiment runner looks at it repeatedly and stops early.
 *
 * One accumulator per metric. The experiment runner (pipeline.c) feeds it
 * units of analysis, never individual records:
 *  - duet: one abstats_paired_add() per batch pair (A's and B's cost on the
 *    same batch, e.g. CPU ns/record, weighted by the batch's record count);
 *  - interleaved: one abstats_block_add() per block (the value of the
 *    variant active in it); consecutive blocks are grouped into rounds of
 *    `round_len` (4 = one ABBA or BAAB round), and the round is what the
 *    bootstrap resamples, so drift across the run cancels inside each
 *    resampled unit as it does in the design.
 *
 * The estimate is the ratio of (weighted) means, delta = mean_B / mean_A - 1.
 * Its bootstrap resamples the units (pairs, rounds) with replacement. Memory
 * is fixed at init (max_units units of 32 bytes; 64 KiB by default) and an
 * add never allocates: when the units fill up, adjacent ones are merged in
 * pairs and later units hold twice as many adds. Merging keeps every sum
 * exact, and resampling merged units is a non-overlapping block bootstrap
 * with longer blocks, which is still valid (and more robust to
 * autocorrelation). docs/experiments.md explains the statistics and the
 * sequential rule; tests/unit/test_abstats.c checks them against known
 * distributions, tests/bench/bench_abstats.c measures false positives.
 *
 * Not thread-safe: an accumulator belongs to the thread that feeds it, and
 * abstats_estimate() must not run concurrently with an add.
 */
#ifndef OBS_ABSTATS_H
#define OBS_ABSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum abstats_design {
    ABSTATS_DUET,        /* paired: both variants on every batch */
    ABSTATS_INTERLEAVED, /* blocks of one variant at a time, in rounds */
} abstats_design;

typedef enum abstats_variant { ABSTATS_A, ABSTATS_B } abstats_variant;

/* Which way is better: costs and latencies are better lower, throughput
 * higher. Only the naming of the verdict depends on it. */
typedef enum abstats_direction {
    ABSTATS_LOWER_IS_BETTER,
    ABSTATS_HIGHER_IS_BETTER,
} abstats_direction;

/* How an accumulator averages its values. Arithmetic (the default): the
 * ratio of (weighted) means, for costs a user pays and throughput.
 * Geometric: the mean of log(value), i.e. the ratio of geometric means, for
 * heavy-tailed per-block values such as a block's p99 latency, where one
 * block hit by another process (10x the others) would dominate an
 * arithmetic mean and its interval; on the log scale its weight is bounded.
 * Both are a log ratio to the bootstrap, so intervals and verdicts work
 * the same; an A/A comparison is unbiased on either scale. */
typedef enum abstats_scale {
    ABSTATS_ARITHMETIC,
    ABSTATS_GEOMETRIC,
} abstats_scale;

typedef enum abstats_verdict {
    ABSTATS_UNKNOWN,  /* not enough data yet */
    ABSTATS_SAME,     /* the decision interval lies inside +-threshold */
    ABSTATS_FASTER,   /* B is better (interval excludes 0 on B's good side) */
    ABSTATS_SLOWER,   /* B is worse */
    ABSTATS_UNSTABLE, /* undecided, and the interval projected to the time
                         limit is still too wide to decide at this threshold */
} abstats_verdict;

#define ABSTATS_DEFAULT_MAX_UNITS 2048

/* A unit of analysis: weighted sums of each variant's values. For a duet
 * pair w_a == w_b; a merged unit holds the sums of its parts. */
typedef struct abstats_unit {
    double sum_a, w_a; /* sum of weight * value of A (weight * log(value) on
                          the geometric scale), and of weights */
    double sum_b, w_b;
} abstats_unit;

typedef struct abstats_acc {
    abstats_design design;
    uint32_t round_len;  /* adds per unit before any merge (1 for duet) */
    uint32_t max_units;  /* capacity of units[], a power of two */
    uint64_t per_unit;   /* adds that close a unit now: round_len << n_merges */
    uint32_t n_merges;   /* times the units were merged in pairs */
    abstats_scale scale; /* ARITHMETIC unless set before the first add */
    abstats_unit *units; /* units[0..n_units): closed units, owned */
    size_t n_units;
    abstats_unit open;  /* the unit being filled */
    uint64_t open_adds; /* adds in `open` */
    uint64_t n_adds_a;  /* values added per variant (a pair adds one each) */
    uint64_t n_adds_b;
} abstats_acc;

/* Prepares an accumulator. `round_len` is the number of blocks per round for
 * ABSTATS_INTERLEAVED (0 means 4, one ABBA round) and must be 0 or 1 for
 * ABSTATS_DUET; `max_units` is rounded up to a power of two, at least 16
 * (0 means ABSTATS_DEFAULT_MAX_UNITS). Allocates max_units * 32 bytes, owned
 * by the accumulator until abstats_destroy(). Returns 0, OBS_EINVAL or
 * OBS_ENOMEM (then nothing is held). */
int abstats_init(abstats_acc *acc, abstats_design design, uint32_t round_len, uint32_t max_units);
/* Frees the units; the accumulator may be initialised again. NULL-safe. */
void abstats_destroy(abstats_acc *acc);
/* Forgets every value, keeping the memory and the scale (to start over,
 * e.g. after warm-up). */
void abstats_reset(abstats_acc *acc);
/* Chooses how values are averaged (see abstats_scale); allowed only while
 * nothing has been added. Returns 0 or OBS_EINVAL. */
int abstats_set_scale(abstats_acc *acc, abstats_scale scale);

/* Duet: one batch pair. `a` and `b` are the two variants' values on the
 * same batch (finite, >= 0; > 0 on the geometric scale), `weight` (finite, > 0) what the mean is
 * weighted by: the batch's record count for per-record costs, 1 otherwise.
 * Never allocates. Returns 0, or OBS_EINVAL (nothing added) for bad values
 * or an interleaved accumulator. */
int abstats_paired_add(abstats_acc *acc, double a, double b, double weight);

/* Interleaved: one block of `variant`, in the order the blocks ran. Same
 * rules for value and weight as above (a block's record count for per-record
 * metrics; 1 for a block's p50, p99 or throughput). Never allocates.
 * Returns 0, or OBS_EINVAL for bad values or a duet accumulator. */
int abstats_block_add(abstats_acc *acc, abstats_variant variant, double value, double weight);

/* Values added so far: pairs for a duet, blocks of each variant. */
uint64_t abstats_count(const abstats_acc *acc, abstats_variant variant);

typedef struct abstats_opts {
    double threshold;     /* relative difference that matters (0.01 = 1%) */
    double confidence;    /* level of the reported interval ci_lo..ci_hi (0.95) */
    double alpha;         /* false FASTER/SLOWER (or false SAME) rate allowed over
                             the whole experiment, all looks together (0.01) */
    uint32_t n_looks;     /* planned looks at the verdict (Bonferroni), >= 1 (10) */
    uint32_t n_boot;      /* bootstrap replicates, >= 100 (2000) */
    uint32_t min_samples; /* fewest units (pairs, rounds) for any verdict (30) */
    uint64_t horizon;     /* adds expected by the time limit (pairs, or blocks of
                             both variants); 0 = unknown, then never UNSTABLE */
    uint64_t seed;        /* bootstrap seed: same data + same seed = same result */
    abstats_direction direction;
} abstats_opts;

/* Fills the defaults shown above (lower is better, horizon unknown, seed 1). */
void abstats_opts_default(abstats_opts *opts);

typedef struct abstats_result {
    abstats_verdict verdict;
    uint64_t n_a, n_b;     /* values added per variant */
    size_t n_units;        /* units resampled (after merges) */
    double mean_a, mean_b; /* weighted means (geometric means on that scale) */
    double delta;          /* mean_b / mean_a - 1 (NaN when undefined) */
    double ci_lo, ci_hi;   /* percentile bootstrap interval of delta at
                              opts->confidence (NaN below min_samples) */
    double decision_lo;    /* the interval the verdict is taken from: level */
    double decision_hi;    /*   1 - alpha / n_looks, see docs/experiments.md */
    double decision_level;
    double se_log;         /* bootstrap standard error of log(mean_b/mean_a) */
    double projected_half; /* the decision interval's half-width (log scale)
                              projected to `horizon` adds; NaN if unknown */
    double u_mann_whitney; /* U of B's unit means against A's */
    double p_mann_whitney; /* two-sided, normal approximation, tie-corrected */
    double p_signed_rank;  /* Wilcoxon signed-rank on per-unit log(b/a) */
} abstats_result;

/* Estimates delta, its intervals, the rank tests and the verdict from what
 * `acc` holds. Deterministic given opts->seed. Allocates scratch
 * (8 * (n_boot + 4 * n_units) bytes) for the call only. The verdict:
 * UNKNOWN below min_samples units; otherwise SAME, FASTER or SLOWER from the
 * decision interval; otherwise UNSTABLE if the interval projected to
 * opts->horizon could decide neither way, else UNKNOWN. For the error rate
 * alpha to hold, call it at most n_looks times per experiment (at looks
 * planned in advance, e.g. every time_limit / n_looks) and stop at the first
 * decided verdict. Returns 0, OBS_EINVAL (bad opts) or OBS_ENOMEM. */
int abstats_estimate(const abstats_acc *acc, const abstats_opts *opts, abstats_result *out);

/* "same", "faster", "slower", "unknown", "unstable" (static strings). */
const char *abstats_verdict_name(abstats_verdict v);
/* True for SAME, FASTER and SLOWER: the metric needs no more data. */
bool abstats_decided(abstats_verdict v);

/* Mann-Whitney U test of y against x (arrays borrowed for the call):
 * *u = number of pairs (x_i, y_j) with y_j > x_i plus half the ties; *p the
 * two-sided p-value from the normal approximation with tie correction and
 * continuity correction (1 when either sample is empty or all values tie).
 * Returns 0 or OBS_ENOMEM. */
int abstats_mann_whitney(const double *x, size_t nx, const double *y, size_t ny, double *u,
                         double *p);

/* Wilcoxon signed-rank test of d[0..n) against 0 (zeros dropped): *w_plus is
 * the sum of the ranks of |d| of the positive d, *p two-sided as above.
 * Returns 0 or OBS_ENOMEM. */
int abstats_signed_rank(const double *d, size_t n, double *w_plus, double *p);

/* The standard normal quantile: x with P(Z <= x) = prob, 0 < prob < 1
 * (relative error below 1e-12). */
double abstats_normal_quantile(double prob);

#endif /* OBS_ABSTATS_H */
