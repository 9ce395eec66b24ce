/*
 * experiment.h - A/B experiments on a live transform stage.
 *
 * Duet design (the default, and what this module runs): a variant B is
 * loaded and initialised beside the stage's active version A, off the data
 * path, and handed to the stage thread. From the next batch on, the stage
 * thread runs both on every batch, in alternating order (A then B, then B
 * then A), each with its own instance and state; only A's output goes
 * downstream, B's is discarded. For each batch pair it measures both
 * variants' CPU time, wall time and allocations per record, which feed
 * paired accumulators (abstats.h): the batch pair is the unit of analysis,
 * never the record. An experiment thread looks at the data at planned times
 * (n_looks over the time limit), computes relative differences with
 * bootstrap intervals and verdicts, and stops early once every primary
 * metric (CPU and wall ns per record) is decided. B is then released and
 * finalised; the result stays readable (and is stored as an event of the
 * run). An A/A experiment runs the stage's own version as B: its verdicts
 * measure the false-positive rate on this machine.
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

enum { EXP_M_CPU, EXP_M_WALL, EXP_M_ALLOCS, EXP_N_METRICS };

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
    int aa;             /* B is a second instance of A's plugin and parameters */
    double threshold;   /* 0: 0.01 */
    double max_seconds; /* 0: 60 */
    uint32_t n_looks;   /* 0: 10 */
    uint64_t seed;      /* 0: the run's seed */
} exp_spec;

typedef struct experiment experiment;

/* Starts a duet experiment on a running transform stage. Returns 0 with
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

/* Prints the result table (metric, A, B, delta, 95% CI, verdict). */
void experiment_print(experiment *e, FILE *f);

/* pipeline_destroy(): stops every experiment, joins their threads, frees. */
void experiments_free(pipeline *p);

/* What one variant's callback cost on one batch (stage thread). */
typedef struct exp_cost {
    uint64_t wall0, cpu0, wall_ns, cpu_ns;
    alloc_counters a0;
    uint64_t allocs;
} exp_cost;

void exp_cost_begin(exp_cost *c);
void exp_cost_end(exp_cost *c);

/* Stage thread, once per batch while an experiment is attached: 1 when B
 * runs first on this batch (the order alternates). */
int experiment_b_first(experiment *e);
/* Stage thread: runs B on the batch (its output is discarded), measured. */
void experiment_run_b(experiment *e, stage *s, const obs_batch *in, exp_cost *cost);
/* Stage thread: records one batch pair; detaches the experiment from the
 * stage when it has asked to be released. */
void experiment_add_pair(experiment *e, stage *s, const exp_cost *a, const exp_cost *b,
                         uint32_t n_records);
/* Stage thread, at its end: releases an attached experiment. */
void experiment_release(stage *s);

#endif /* OBS_EXPERIMENT_H */
