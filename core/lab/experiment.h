/*
 * experiment.h - A/B experiments on a live transform stage.
 *
 * Duet design (the default, and what this module runs): a variant B is
 * loaded and initialised beside the stage's active version A, off the data
 * path, and handed to the stage thread. From the next batch on, the stage
 * thread runs both on every batch, through the same code, in an order
 * drawn at random per batch, each with its own instance and state; only
 * A's output goes downstream, B's is discarded. For each batch pair it measures both
 * variants' CPU time, wall time and allocations per record, which feed
 * paired accumulators (abstats.h): the batch pair is the unit of analysis,
 * never the record. An experiment thread looks at the data at planned times
 * (n_looks over the time limit), computes relative differences with
 * bootstrap intervals and verdicts, and stops early once every primary
 * metric (CPU and wall ns per record) is decided. B is then released and
 * finalised; the result stays readable (and is stored as an event of the
 * run). An A/A experiment runs the stage's own version as B: its verdicts
 * measure the false-positive rate on this machine.
 *
 * Interleaved design: A and B take turns on the live stream in blocks of
 * block_ms, grouped into rounds of four (ABBA or BAAB, chosen at random from
 * the experiment's seed). The stage thread runs only the current block's
 * variant on each batch and its output goes downstream either way; it tags
 * the output batch with the block (batch.exp*), later transforms copy the
 * tag, and the sink charges each record's end-to-end latency to its block.
 * Per block: CPU, wall and allocations per record (stage thread, at the
 * block's end), p50 and p99 latency and throughput (sink thread, when a
 * newer block's batch arrives); each is one abstats_block_add(). The unit
 * of analysis is the block, resampled in rounds. The primary metric is p99
 * latency (docs/experiments.md, "How an interleaved experiment runs").
 */
#ifndef OBS_EXPERIMENT_H
#define OBS_EXPERIMENT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "abstats.h"
#include "alloc.h"
#include "pipeline.h"

struct store;

/* Duet uses the first three metrics, interleaved all six. */
enum { EXP_M_CPU, EXP_M_WALL, EXP_M_ALLOCS, EXP_M_P50, EXP_M_P99, EXP_M_THROUGHPUT, EXP_N_METRICS };

typedef enum exp_mode { EXP_DUET = 0, EXP_INTERLEAVED = 1 } exp_mode;

typedef enum exp_state {
    EXP_STARTING = 0, /* B built, waiting for the stage thread to take it */
    EXP_RUNNING = 1,
    EXP_DONE = 2,    /* decided, or at its time limit */
    EXP_STOPPED = 3, /* stopped on request or by the end of the run */
    EXP_FAILED = 4,
} exp_state;

typedef struct exp_spec {
    const char *stage;
    const char *plugin;  /* B's plugin; NULL with aa: the stage's own */
    const char *version; /* NULL: any */
    const cfg_param *params;
    size_t n_params;
    int params_given;
    /* The params are the stage's ab.params in the pipeline's config: errors
     * name their place in the file (config_check_ab_params). */
    int params_in_config;
    int aa;             /* B is a second instance of A's plugin and parameters */
    double threshold;   /* 0: 0.01 */
    double max_seconds; /* 0: 60 */
    uint32_t n_looks;   /* 0: 10 */
    uint64_t seed;      /* 0: a fresh one (reported in the result) */
    exp_mode mode;      /* EXP_DUET (default) or EXP_INTERLEAVED */
    uint32_t block_ms;  /* interleaved: block length, 10..10000 (0: 200) */
    /* Units the statistics keep before merging neighbours (abstats_init);
     * 0: EXP_DUET_MAX_UNITS for a duet, ABSTATS_DEFAULT_MAX_UNITS for
     * interleaved. */
    uint32_t max_units;
} exp_spec;

/* A duet's units: neighbouring batch pairs share noise (another process's
 * phase, the CPU's frequency) that does not cancel within a pair, so a unit
 * must span many pairs for the bootstrap to see it. With 128 units, a
 * unit is 1/64..1/128 of the pairs so far (docs/experiments.md). */
#define EXP_DUET_MAX_UNITS 128

typedef struct experiment experiment;

/* Starts an experiment (duet or interleaved) on a running transform stage.
 * One interleaved experiment per pipeline at a time (its tags travel to the
 * sink). Returns 0 with
 * *out (owned by the pipeline's experiment list; valid until
 * pipeline_destroy) or a negative code with `err` set. */
int experiment_start(pipeline *p, const exp_spec *spec, struct store *st, uint64_t run_id,
                     experiment **out, char *err, size_t errlen);

/* Asks an experiment to stop now (its result is what the data says so far). */
void experiment_stop(experiment *e);

/* Waits until the experiment has finished (or `timeout_ns` passed; 0:
 * forever). Returns 1 if finished. */
int experiment_wait(experiment *e, uint64_t timeout_ns);

/* The experiment's state and results as JSON (a new reference): id, stage,
 * mode, state, a/b plugins, elapsed_s, samples, metrics[] with a, b,
 * delta, ci, p_value, verdict, the overall verdict, history[]. */
json_t *experiment_json(experiment *e);

/* All experiments of the pipeline, newest first (a new reference). */
json_t *experiments_json(pipeline *p);

/* The experiment with this id, or NULL. */
experiment *experiment_find(pipeline *p, uint64_t id);

/* Copies metric `metric`'s accumulator as it is now (for analysis: its
 * units and sums). The copy owns its units (abstats_destroy). Returns 0,
 * OBS_EINVAL (no such metric in this mode) or OBS_ENOMEM. */
int experiment_copy_acc(experiment *e, int metric, abstats_acc *out);

/* Prints the result table (metric, A, B, delta, 95% CI, verdict). */
void experiment_print(experiment *e, FILE *f);

/* pipeline_destroy(): stops every experiment, joins their threads, frees. */
void experiments_free(pipeline *p);

/* What one variant's callback cost on one batch (stage thread). */
typedef struct exp_cost {
    uint64_t wall0, cpu0, wall_ns, cpu_ns;
    alloc_counters a0;
    uint64_t allocs, frees, bytes; /* during the call */
} exp_cost;

void exp_cost_begin(exp_cost *c);
void exp_cost_end(exp_cost *c);

/* Stage thread, once per batch while a duet is attached: runs both
 * variants on `in`, in an order drawn at random for this batch, each through
 * the same code (profiler tag, clocks, callback, clocks). The variant that
 * runs first writes into `first`, the other into `second`; *a_first tells
 * which A was. Returns A's callback code (B's is not acted on: its output
 * is discarded). */
int experiment_duet(experiment *e, const stage_slot *a, const obs_batch *in, obs_out *first,
                    obs_out *second, exp_cost *ca, exp_cost *cb, int *a_first);
/* Stage thread: records one batch pair; detaches the experiment from the
 * stage when it has asked to be released. */
void experiment_add_pair(experiment *e, stage *s, const exp_cost *a, const exp_cost *b,
                         uint32_t n_records);
/* Stage thread, at its end: releases an attached experiment. */
void experiment_release(stage *s);

/* 1 for an interleaved experiment (any thread; fixed at start). */
int experiment_interleaved(const experiment *e);
/* Stage thread, interleaved: the block the batch starting now belongs to
 * (*block) and its variant (ABSTATS_A or ABSTATS_B). When the block
 * changes, the stage's costs of the previous block are added. */
abstats_variant experiment_block_now(experiment *e, uint32_t *block);
/* Stage thread, interleaved: runs variant `v` (A being the stage's active
 * slot `a`) on `in` into `out` (the stage's output batch), measured and
 * tagged for the profiler, through the same code as a duet's calls.
 * Returns the callback's code. */
int experiment_process_block(experiment *e, const stage_slot *a, abstats_variant v,
                             const obs_batch *in, obs_out *out, exp_cost *cost);
/* Stage thread, interleaved: charges one batch's cost to the current block;
 * detaches the experiment when it has asked to be released. Returns 1 when
 * it detached (the caller then flushes B: experiment_flush_b). */
int experiment_add_block_batch(experiment *e, stage *s, const exp_cost *c, uint32_t n_records);
/* Stage thread, interleaved, after detaching: B's flush into `out` (records
 * B still holds go downstream). Returns the callback's code (OBS_OK when B
 * has no flush). */
int experiment_flush_b(experiment *e, obs_out *out);
/* Sink thread: one consumed batch tagged with block `block` of `variant`
 * of experiment e, finished at `t_end_ns`. Records the latencies into the
 * open block and closes the previous block when this one is newer. */
void experiment_sink_batch(experiment *e, uint32_t block, int variant, const obs_batch *view,
                           uint64_t t_end_ns);

#endif /* OBS_EXPERIMENT_H */
