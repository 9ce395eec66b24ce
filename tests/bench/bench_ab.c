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
 *
 * This file holds the options, the usage text and main, which runs the
 * chosen parts in order and prints the summary; bench_ab.h says which file
 * holds each part and what they share.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_ab.h"
#include "bench_util.h"

#ifndef OBS_BENCH_PLUGIN_DIR
#define OBS_BENCH_PLUGIN_DIR "plugins"
#endif
#ifndef OBS_BENCH_TEST_PLUGIN_DIR
#define OBS_BENCH_TEST_PLUGIN_DIR "tests/plugins"
#endif

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
        rc = ab_part_aa(&o, &sm);
    if (rc == 0 && (o.parts & PART_DETECT))
        rc = ab_part_detect(&o, &sm);
    if (rc == 0 && (o.parts & PART_INTER))
        rc = ab_part_interleaved(&o, &sm);
    if (rc == 0 && (o.parts & PART_DRIFT))
        rc = ab_part_drift(&o, &sm);
    if (rc == 0 && (o.parts & PART_UNITS))
        rc = ab_part_units(&o, &sm);
    if (rc == 0 && (o.parts & PART_ILMAX))
        rc = ab_part_ilmax(&o, &sm);
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
