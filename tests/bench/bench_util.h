/*
 * bench_util.h - what the benchmark programs share: the header every run
 * prints (exact command line, machine, build), medians, clocks and small
 * argument parsing helpers. Private to tests/bench/.
 *
 * Benchmarks are programs, not tests: each prints medians of several runs
 * and ratios against a baseline measured in the same invocation, with the
 * command that produced them, so a figure pasted anywhere can be reproduced.
 */
#ifndef OBS_BENCH_UTIL_H
#define OBS_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Prints "# command: ...", "# machine: ..." and "# build: ..." lines for
 * argv (borrowed) to f. */
void bench_print_header(FILE *f, const char *program, int argc, char **argv);

/* Median of n values (n >= 1); `v` is sorted in place. For an even n, the
 * mean of the two middle values. */
double bench_median(double *v, size_t n);

/* The nearest-rank quantile q (0..1) of n values already sorted ascending
 * (e.g. by bench_median); n >= 1. */
double bench_quantile_sorted(const double *v, size_t n, double q);

/* Exact (Clopper-Pearson) 95% interval [*lo, *hi] of a binomial proportion
 * k / n (0 <= k <= n, n >= 1). */
void bench_clopper_pearson(int k, int n, double *lo, double *hi);

/* Smallest and largest of n values (n >= 1). */
void bench_minmax(const double *v, size_t n, double *min, double *max);

/* CLOCK_MONOTONIC and this thread's CPU time, in nanoseconds. */
uint64_t bench_now_ns(void);
uint64_t bench_thread_cpu_ns(void);

/* Parses a comma-separated list of positive integers ("1,64,256") into
 * out[0..cap); returns how many, or -1 on a syntax error or overflow. */
int bench_parse_list(const char *s, uint32_t *out, int cap);

/* Parses a positive number of seconds ("2", "0.2"); returns 0 or -1. */
int bench_parse_seconds(const char *s, double *out);

#endif /* OBS_BENCH_UTIL_H */
