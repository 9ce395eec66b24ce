/*
 * bench_histogram.c - obs-bench-histogram: what histogram_record costs.
 *
 * One thread records `--records` values per run into one histogram, from a
 * table of 4096 precomputed values (log-normal, median 100 us, sigma 2, a
 * fixed seed) read in order, so the values land in many buckets and the
 * branch predictor cannot learn them. The baseline is the same loop adding
 * the values into a sum instead, measured in the same invocation, so the
 * figure that matters is the difference: what recording adds per value.
 * A second case records one constant value (one hot bucket). Then the
 * reader side: the time of one histogram_merge of the full histogram.
 *
 * Printed: median wall ns per record over `--runs` runs with [min..max],
 * and for merges the median us per merge. Runs alternate the cases so that
 * frequency drift does not favour one. Asserts no timing; exits nonzero
 * only when the recorded count is wrong.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

#include "bench_util.h"
#include "measure/histogram.h"

#define MAX_RUNS 101
#define N_TABLE 4096

enum { CASE_BASELINE, CASE_SPREAD, CASE_CONSTANT, N_CASES };
static const char *const case_names[N_CASES] = {"baseline (sum only)", "record (spread)",
                                                "record (constant)"};

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)
{
    return ((double)(rng_next(s) >> 11) + 1.0) / 9007199254740992.0;
}

/* One timed pass; returns wall ns per value. */
static double run_case(int which, histogram *h, const uint64_t *table, uint64_t n)
{
    uint64_t sum = 0;
    uint64_t t0 = bench_now_ns();
    switch (which) {
    case CASE_BASELINE:
        for (uint64_t i = 0; i < n; i++) {
            sum += table[i & (N_TABLE - 1)];
            /* Keeps the loop a loop: no vectorised or closed-form sum. */
            __asm__ volatile("" : "+r"(sum));
        }
        break;
    case CASE_SPREAD:
        for (uint64_t i = 0; i < n; i++)
            histogram_record(h, table[i & (N_TABLE - 1)]);
        break;
    case CASE_CONSTANT:
        for (uint64_t i = 0; i < n; i++)
            histogram_record(h, table[0]);
        break;
    }
    uint64_t t1 = bench_now_ns();
    __asm__ volatile("" : : "r"(sum));
    return (double)(t1 - t0) / (double)n;
}

int main(int argc, char **argv)
{
    uint64_t n_records = 20000000;
    uint32_t runs = 5;
    int c;
    while ((c = getopt(argc, argv, "n:r:h")) != -1) {
        switch (c) {
        case 'n': n_records = strtoull(optarg, NULL, 10); break;
        case 'r': runs = (uint32_t)strtoul(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: %s [-n records_per_run] [-r runs]\n", argv[0]);
            return c == 'h' ? 0 : 2;
        }
    }
    if (n_records == 0 || runs == 0 || runs > MAX_RUNS) {
        fprintf(stderr, "records must be > 0 and runs in 1..%d\n", MAX_RUNS);
        return 2;
    }
    bench_print_header(stdout, "obs-bench-histogram", argc, argv);

    uint64_t table[N_TABLE], seed = 42;
    for (int i = 0; i < N_TABLE; i++) {
        double z = sqrt(-2.0 * log(rng_unit(&seed))) * cos(2.0 * M_PI * rng_unit(&seed));
        table[i] = (uint64_t)exp(log(1e5) + 2.0 * z);
    }
    histogram *h = calloc(1, sizeof(*h)), *dst = calloc(1, sizeof(*dst));
    if (!h || !dst)
        return 1;

    double ns[N_CASES][MAX_RUNS], merge_us[MAX_RUNS];
    for (uint32_t r = 0; r < runs; r++) {
        for (int k = 0; k < N_CASES; k++) {
            int which = (int)(r % 2 ? N_CASES - 1 - k : k);
            histogram_reset(h);
            ns[which][r] = run_case(which, h, table, n_records);
            if (which != CASE_BASELINE && histogram_count(h) != n_records) {
                fprintf(stderr, "count %" PRIu64 " != %" PRIu64 "\n", histogram_count(h),
                        n_records);
                return 1;
            }
        }
        /* h holds the last recording case's values; fill it for merging. */
        for (int i = 0; i < N_TABLE; i++)
            histogram_record(h, table[i]);
        enum { N_MERGES = 200 };
        uint64_t t0 = bench_now_ns();
        for (int m = 0; m < N_MERGES; m++) {
            histogram_reset(dst);
            histogram_merge(dst, h);
        }
        merge_us[r] = (double)(bench_now_ns() - t0) / N_MERGES / 1000.0;
    }

    printf("# %" PRIu64 " values per run, %u runs; histogram %zu bytes, %d buckets\n", n_records,
           runs, sizeof(histogram), HISTOGRAM_N_BUCKETS);
    double base = bench_median(ns[CASE_BASELINE], runs);
    for (int k = 0; k < N_CASES; k++) {
        double lo, hi;
        bench_minmax(ns[k], runs, &lo, &hi);
        double med = bench_median(ns[k], runs);
        printf("%-22s %6.2f ns/value [%.2f..%.2f]", case_names[k], med, lo, hi);
        if (k != CASE_BASELINE)
            printf("  (+%.2f ns over baseline, ratio %.2f)", med - base, med / base);
        printf("\n");
    }
    printf("%-22s %6.2f us/merge (reset + merge of a %d-value histogram)\n", "merge",
           bench_median(merge_us, runs), N_TABLE);
    free(h);
    free(dst);
    return 0;
}
