/*
 * config.h - pipeline.yaml: loading, validation and plugin parameter checks.
 *
 * The typed part of the file (pipeline name, run settings, stage list) is
 * parsed with libcyaml against a static schema; a stage's `params` mapping is
 * not known to that schema (each plugin declares its own), so it is read
 * with libyaml keeping every node's position. Every error message names
 * file:line:column, the field (as a path like stages[2].params.window_ms) and
 * what is allowed.
 */
#ifndef OBS_CONFIG_H
#define OBS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "observatory/stage.h"

/* A plugin parameter as written by the user: key and scalar text, with the
 * position of the value (1-based line and column). */
typedef struct cfg_param {
    char *key;
    char *value;
    int line, column;         /* of the value */
    int key_line, key_column; /* of the key */
} cfg_param;

/* A stage's `ab:` mapping: an A/B experiment on the stage (a transform) that
 * hostd starts once warm-up is over, as `--ab` does (docs/experiments.md).
 * Only what the file says is checked here: B's plugin is opened, its
 * parameters checked (config_check_ab_params) and its instance initialised
 * when the experiment starts. Zero means "the experiment's default" for
 * every number. */
typedef enum cfg_ab_mode { CFG_AB_DUET = 1, CFG_AB_INTERLEAVED = 2 } cfg_ab_mode;

typedef struct cfg_ab {
    char *plugin;      /* B's plugin; NULL: the stage's own (with version: that version) */
    char *version;     /* NULL: any */
    cfg_param *params; /* B's whole parameter set, as written (owned) */
    size_t n_params;
    int params_given;     /* 0: B gets the stage's params */
    int aa;               /* A/A: B is a second instance of the stage itself */
    cfg_ab_mode mode;     /* default CFG_AB_DUET */
    uint64_t duration_ns; /* time limit, (0, 24h]; 0: the rest of the run */
    uint32_t n_looks;     /* 1..1000; 0: 10 */
    uint32_t block_ms;    /* interleaved only, 10..10000; 0: 200 */
    double threshold;     /* (0, 1); 0: 0.01 */
    uint64_t seed;        /* 0: a fresh one per experiment */
    int line, column;     /* position of the `ab:` mapping */
} cfg_ab;

/* How batches are spread over a stage's parallel instances. */
typedef enum cfg_partition {
    CFG_PARTITION_ROUND_ROBIN = 0, /* whole batches, to each instance in turn */
    CFG_PARTITION_KEY = 1,         /* every record of one key to the same instance */
} cfg_partition;

/* The most instances a stage may run (parallelism). */
#define CFG_MAX_PARALLELISM 64
/* The most stages a pipeline and parameters a stage may have. */
#define CFG_MAX_STAGES 256
#define CFG_MAX_PARAMS 1024

typedef struct cfg_stage {
    char *name;
    char *plugin;  /* plugin name ("xf_json_fast") or a .so file name/path */
    char *version; /* NULL when not given */
    cfg_param *params;
    size_t n_params;
    int line, column;     /* position of the stage's mapping */
    cfg_ab *ab;           /* NULL: no experiment (owned) */
    uint32_t parallelism; /* instances (threads) of a transform or sink; 1 by default */
    cfg_partition partition;
} cfg_stage;

/* One phase of the generator's load. A phase is a rate function r(t)
 * (constant, ramp, steps, sine/diurnal, optionally with on/off bursts laid
 * over it) and an arrival process (uniform spacing or Poisson), or a replay
 * of timestamps, or "as fast as possible" (max). core/schedule.c turns a list
 * of phases into intended send times; docs/load.md describes every shape. */
typedef enum cfg_shape {
    CFG_SHAPE_CONSTANT = 1,
    CFG_SHAPE_MAX = 2,
    CFG_SHAPE_POISSON = 3, /* constant rate, Poisson arrivals */
    CFG_SHAPE_RAMP = 4,    /* linear from `from` to `to` over the duration */
    CFG_SHAPE_STEPS = 5,   /* steps[i] for `step_ns` each; the last one holds */
    CFG_SHAPE_SINE = 6,    /* rate * (1 + amplitude * sin(2 pi t / period)) */
    CFG_SHAPE_DIURNAL = 7, /* rate * (1 - amplitude * cos(2 pi t / period)): starts at the trough */
    CFG_SHAPE_BURSTS = 8,  /* `rate` between bursts (0: on/off), burst_rate/factor during them */
    CFG_SHAPE_REPLAY = 9,  /* the timestamps of a file */
} cfg_shape;

typedef enum cfg_arrival { CFG_ARRIVAL_UNIFORM = 1, CFG_ARRIVAL_POISSON = 2 } cfg_arrival;
typedef enum cfg_dist { CFG_DIST_FIXED = 1, CFG_DIST_PARETO = 2 } cfg_dist;

typedef struct cfg_load_phase {
    cfg_shape shape;
    double rate;          /* records per second: CONSTANT, POISSON; mean of SINE/DIURNAL;
                           * between bursts for BURSTS (may be 0) */
    uint64_t duration_ns; /* 0: until the run ends (last phase only) */
    /* The load shapes; all zero when not given. */
    cfg_arrival arrival; /* uniform or Poisson; POISSON implies Poisson */
    double from, to;     /* RAMP: rates at the start and at the end */
    double *steps;       /* STEPS: rates, n_steps >= 1 (owned) */
    size_t n_steps;
    uint64_t step_ns;   /* STEPS: length of each step */
    uint64_t period_ns; /* SINE, DIURNAL */
    double amplitude;   /* SINE, DIURNAL: 0..1 of the mean rate */
    /* On/off bursts over any rate shape but MAX and REPLAY: active when
     * burst_ns > 0. During a burst the rate is burst_rate when > 0, else the
     * shape's rate times burst_factor. Bursts and gaps alternate, a gap first;
     * their lengths are fixed or Pareto distributed with these means. */
    double burst_rate, burst_factor;
    uint64_t burst_ns, gap_ns;
    cfg_dist burst_dist;
    double alpha;        /* Pareto shape (> 1) */
    char *replay_path;   /* REPLAY: the file as resolved (owned) */
    uint64_t *replay_ns; /* REPLAY: offsets from the first timestamp, non-decreasing (owned) */
    size_t n_replay;
} cfg_load_phase;

typedef struct obs_config {
    char *path; /* as given */
    char *text; /* the whole file, NUL-terminated (recorded with each run) */
    char *dir;  /* directory of the file: relative paths resolve against it */

    char *pipeline;     /* pipeline name */
    char **plugin_dirs; /* absolute or relative-to-dir, as written */
    size_t n_plugin_dirs;
    cfg_stage *stages;
    size_t n_stages;
    cfg_load_phase *load;
    size_t n_load;

    uint32_t batch_size;         /* records per batch, default 256, 1..65536 */
    uint32_t ring_capacity;      /* batches per ring, default 16, power of two 2..4096 */
    uint64_t max_batch_bytes;    /* arena bound per batch, default 64 MiB */
    uint64_t max_batch_delay_ns; /* longest wait of a due record for its batch
                                    to fill, default 200 us, 0..1 s */
    uint64_t duration_ns;        /* run.duration, default 0 = until SIGINT/SIGTERM */
    uint64_t warmup_ns;          /* run.warmup, default 0 */
    uint64_t drain_timeout_ns;   /* run.drain_timeout, default 30 s; 0: wait for ever */
    uint64_t callback_warn_ns;   /* run.callback_warn, default 10 s; 0: never */
    uint64_t seed;               /* run.seed, default 1 */
    uint32_t realtime_priority;  /* run.realtime_priority: SCHED_FIFO priority of
                                    the generator thread, default 0 = normal */
    char *http_listen;           /* http.listen, default "127.0.0.1:9464" */
    char **http_allowed_hosts;   /* http.allowed_hosts: Host names answered besides addresses */
    size_t n_http_allowed_hosts;
    char *store_path; /* store.path, default "observatory-data" */
    /* store.retention: runs older than max_age and the oldest runs while
     * the store is over max_size are deleted; 0 = no limit. Defaults: no
     * age limit, 1 GiB. */
    uint64_t store_max_age_ns, store_max_bytes;
    /* run.id (or hostd --run-id): names one run of a pipeline split over
     * several processes, the same in each; NULL: none. [A-Za-z0-9._-],
     * 1..64 characters (config_run_id_problem). */
    char *run_id;
} obs_config;

/* NULL when `id` is a valid run.id, else why not. */
const char *config_run_id_problem(const char *id);

/* Loads and validates `path`. On success *out owns everything (free with
 * config_free). On failure returns OBS_ECONFIG (or OBS_EIO/OBS_ENOMEM), *out
 * is NULL and `err` holds one or more lines "file:line:col: field: message". */
int config_load(const char *path, obs_config **out, char *err, size_t errlen);

/* Same, from a string; `name` is used in messages in place of a file name. */
int config_load_string(const char *name, const char *text, obs_config **out, char *err,
                       size_t errlen);

void config_free(obs_config *cfg);

/* Validated parameter values of one stage instance, in the plugin's
 * declaration order; owns its strings. */
typedef struct cfg_param_values {
    obs_param_value *values;
    uint32_t n_values;
} cfg_param_values;

/* Checks stage `st` (index `stage_index` in cfg->stages) against `desc`'s
 * declared parameters: unknown keys (message lists the allowed ones), type
 * errors, range errors, missing required parameters. Fills `out` (free with
 * config_param_values_free). Returns 0 or OBS_ECONFIG with `err` set. */
int config_check_params(const obs_config *cfg, size_t stage_index, const obs_stage_desc *desc,
                        cfg_param_values *out, char *err, size_t errlen);

/* The same for parameters given instead of the stage's own (a swap or an
 * experiment requested over HTTP): `params` (borrowed) are checked as if
 * they stood in the stage, and errors name `origin` ("swap request") where
 * they would name the file. */
int config_check_params_given(const obs_config *cfg, size_t stage_index, const cfg_param *params,
                              size_t n_params, const char *origin, const obs_stage_desc *desc,
                              cfg_param_values *out, char *err, size_t errlen);

/* The same for the parameters of variant B of stage `stage_index`'s `ab:`
 * (which must be there, with params given), so that errors point at
 * stages[i].ab.params in the file. */
int config_check_ab_params(const obs_config *cfg, size_t stage_index, const obs_stage_desc *desc,
                           cfg_param_values *out, char *err, size_t errlen);

void config_param_values_free(cfg_param_values *v);

/* Parses "250ms", "30s", "2m", "1h", "1500us", "10ns" or a bare number of
 * seconds into nanoseconds. Returns 0 or OBS_EINVAL. */
int config_parse_duration(const char *s, uint64_t *ns);

#endif /* OBS_CONFIG_H */
