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

/* Interleaved: how the blocks of several instances become one unit. Each
 * instance of the stage (and each of the sink) sums its share of a block in
 * fields only its thread touches and hands it over (exp_merge) once it has
 * moved on; the block is added to the statistics when every instance has
 * moved past it, or, when one lags (idle, or descheduled with batches in
 * its ring), once another has reached a block `lag` newer: EXP_LAG_NS, at
 * least EXP_LAG_MIN blocks. A share that comes later is left out
 * (late_records). A sink instance keeps EXP_SINK_OPEN blocks open, because
 * the records of a block still arrive from one stage instance after
 * another's first records of the next. */
#define EXP_LAG_NS 500000000u
enum { EXP_LAG_MIN = 8, EXP_SINK_OPEN = 4 };
_Static_assert(EXP_SINK_OPEN < EXP_LAG_MIN, "merge window sizes");

/* Sums over one block (or one instance's share of it). */
typedef struct exp_costs {
    uint64_t cpu_ns, wall_ns, allocs, records, batches;
} exp_costs;

/* A block being merged: the shares handed over so far. */
typedef struct exp_pending {
    int used;
    uint32_t block;
    int variant_b;   /* sink: the tag's variant */
    exp_costs c;     /* stage: the costs; sink: records only */
    histogram *hist; /* sink: the instances' latencies, merged */
} exp_pending;

/* The blocks of one side (the stage's instances, or the sink's) on their
 * way to the statistics; everything under the experiment's mutex. */
typedef struct exp_merge {
    exp_pending *slot; /* lag slots: block k in slot k % lag, next <= k < next + lag */
    uint32_t lag;      /* blocks a lagging instance is waited for */
    uint32_t next;     /* the oldest block not yet added or passed over */
    uint32_t newest;   /* the newest block any instance has reached */
    int any;           /* newest is set */
    uint32_t skip;     /* cursor into the experiment's skips */
    uint32_t n_held;
    uint32_t *held; /* per instance: its oldest open block, UINT32_MAX if none */
} exp_merge;

/* A stage instance's part of an experiment: the ctx of its variant slot's
 * hooks. Interleaved, the block it runs and that block's costs so far,
 * touched by its stage thread only. */
typedef struct exp_lane {
    struct experiment *e;
    uint32_t index; /* the instance */
    int open;
    uint32_t block;
    variant_ab variant;
    exp_costs sum;
} exp_lane;

/* One block a sink instance has open. */
typedef struct exp_sink_block {
    int used;
    uint32_t block;
    int variant_b;
    uint64_t records;
    histogram *hist;
} exp_sink_block;

/* A sink instance's open blocks, touched by its thread only. */
typedef struct exp_sink_lane {
    exp_sink_block open[EXP_SINK_OPEN];
    int any;
    uint32_t newest; /* the newest block it has seen */
} exp_sink_lane;

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

    /* Per stage instance: the hooks' ctx (lanes[k] for vars[k]). */
    exp_lane *lanes;
    /* Interleaved: each sink instance's open blocks (n_sink_lanes), and both
     * sides' blocks being merged (under mu). */
    exp_sink_lane *sink_lanes;
    uint32_t n_sink_lanes;
    exp_merge st_merge, sk_merge;
    uint64_t n_blocks_stage, n_blocks_sink; /* under mu: blocks added */
    exp_skip *skips;                        /* n_looks + 1 ranges, in block order */
    _Atomic uint32_t n_skips;               /* published (release) once lo is set */
    uint64_t n_blocks_skipped;              /* under mu: stage blocks left out */
    uint64_t n_late_records;                /* under mu: measured after their block was added */

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

/* Interleaved: allocates the sink instances' open blocks and both sides'
 * merges for `n_stage` stage and `n_sink` sink instances (freed by
 * experiment_blocks_free). Returns 0 or OBS_ENOMEM. */
int experiment_blocks_init(experiment *e, uint32_t n_stage, uint32_t n_sink);
void experiment_blocks_free(experiment *e);

/* "SAME", "FASTER", "SLOWER", "UNSTABLE" or "UNKNOWN". */
const char *experiment_verdict_name(abstats_verdict v);

#endif /* OBS_EXPERIMENT_INTERNAL_H */
