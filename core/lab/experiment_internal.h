/*
 * experiment_internal.h - what the files of an experiment share: the
 * experiment's state (written by the stage thread, the sink thread and the
 * experiment's own thread, each part saying who owns it), the hooks the
 * engine's variant slot calls (experiment_feed.c), and the names the JSON
 * and the looks both use (experiment_json.c). Private to core/lab.
 */
#ifndef OBS_EXPERIMENT_INTERNAL_H
#define OBS_EXPERIMENT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "engine/host.h"
#include "engine/variant.h"
#include "lab/experiment.h"
#include "measure/histogram.h"

/* The metrics' names, in EXP_M_* order (JSON, history). */
extern const char *const experiment_metric_names[EXP_N_METRICS];

/* Interleaved: blocks per round (ABBA or BAAB), and the last block of the
 * round that block k is in. */
enum { ROUND = 4 };
static inline uint32_t round_end(uint32_t k)
{
    return (k / ROUND + 1) * ROUND - 1;
}

/* Interleaved: blocks lo..hi are left out of the analysis by both the
 * stage and the sink thread. Ranges are whole rounds, so every unit keeps
 * its ABBA/BAAB balance: the first round (warm-up: B was just attached),
 * and the round in which each look but the last computes. A look's
 * bootstrap takes CPU from the pipeline for milliseconds, and the queue it
 * leaves behind takes longer to drain: blocks it overlaps had a p99 up to
 * 1.6 times their neighbours' (docs/experiments.md). Charged to whichever
 * variant ran then, that was a bias, the same in every experiment with the
 * same schedule. */
typedef struct exp_skip {
    uint32_t lo;         /* first block left out, a round's first */
    _Atomic uint32_t hi; /* last block left out; UINT32_MAX while the look runs */
} exp_skip;

struct experiment {
    uint64_t id;
    pipeline *p;
    stage *s;
    char stage_name[64];
    int aa;
    double threshold, max_seconds;
    uint32_t n_looks;
    uint64_t seed;
    struct store *st;
    uint64_t run_id;
    exp_mode mode;
    uint64_t block_ns; /* interleaved */
    int n_metrics;     /* 3 for duet, 6 for interleaved */
    int primary;       /* the metric whose verdict is the experiment's */

    /* Variant B: the variant slot that holds it (var.b) and B's own host
     * context (its counters and allocations are not the stage's). */
    stage_variant *vars; /* one per instance of the stage; vars[0].b describes B */
    uint32_t n_vars;
    host_ctx *b_hosts; /* n_vars */

    /* Shared with the stage thread. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    abstats_acc acc[EXP_N_METRICS]; /* under mu */
    uint64_t n_pairs, n_records;    /* under mu */
    int released;                   /* under mu: every instance let go of B */
    uint32_t n_released;            /* under mu: instances that let go of B */
    int stop_req;                   /* under mu */
    int finished;                   /* under mu: the last look is taken, no more adds */

    /* Interleaved, stage thread only: the block it runs and its costs. */
    int st_open;
    uint32_t st_block;
    variant_ab st_variant;
    uint64_t st_cpu_ns, st_wall_ns, st_allocs, st_records, st_batches;
    /* Interleaved, sink thread only: the block it receives. */
    histogram *sk_hist;
    int sk_open;
    uint32_t sk_block;
    int sk_variant;
    uint64_t sk_records;
    uint64_t n_blocks_stage, n_blocks_sink; /* under mu: blocks added */
    exp_skip *skips;                        /* n_looks + 1 ranges, in block order */
    _Atomic uint32_t n_skips;               /* published (release) once lo is set */
    uint32_t st_skip, sk_skip;              /* each thread's cursor into skips */
    uint64_t n_blocks_skipped;              /* under mu: stage blocks left out */

    /* Experiment thread. */
    pthread_t thread;
    int thread_started;
    _Atomic int state;
    uint64_t t_start_ns, t_end_ns;
    abstats_result res[EXP_N_METRICS]; /* under mu once written */
    int have_res;
    int looks_done;
    json_t *history; /* under mu */
    char why[256];

    struct experiment *next;
};

/* The experiments of one pipeline, newest first: the pipeline's extension
 * (engine/stage.h), under its swap lock. */
typedef struct lab_list {
    experiment *head;
    uint64_t n; /* experiments started: the last id */
} lab_list;

/* The hooks experiment_start() gives the variant slot (experiment_feed.c). */
extern const variant_hooks experiment_hooks;

/* "SAME", "FASTER", "SLOWER", "UNSTABLE" or "UNKNOWN". */
const char *experiment_verdict_name(abstats_verdict v);

#endif /* OBS_EXPERIMENT_INTERNAL_H */
