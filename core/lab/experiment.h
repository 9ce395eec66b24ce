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
 * the output batch with the block (batch.variant*), later transforms copy
 * the tag, and the sink charges each record's end-to-end latency to its
 * block. The data path's side of both designs is the engine's variant slot
 * (engine/variant.h); this module attaches B there and receives each
 * batch's or block's measurements through its hooks.
 * Per block: CPU, wall and allocations per record (stage thread, at the
 * block's end), p50 and p99 latency and throughput (sink thread, when a
 * block's batches have arrived); each is one abstats_block_add(). The unit
 * of analysis is the block, resampled in rounds. On parallel instances
 * (of the stage, the sink or both) every instance follows the same blocks
 * and a unit is all instances during one block: costs summed before they
 * are divided by the records summed, latency histograms merged before the
 * quantiles are read. The primary metric is p99 latency
 * (docs/experiments.md, "How an interleaved experiment runs").
 */
#ifndef OBS_EXPERIMENT_H
#define OBS_EXPERIMENT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "engine/pipeline.h"
#include "lab/abstats.h"

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

#endif /* OBS_EXPERIMENT_H */
