/*
 * stage.h - the shape of a running pipeline: its stages, each stage's slot
 * (the plugin instance that runs in it), its counters and histograms, and
 * the pipeline that holds them. Plain types shared by the engine's files:
 * the stage threads (pipeline.c), hot swap (swap.c), the variant slot
 * (variant.c) and snapshots (snapshot.c) all read and write these; layers
 * above read them through snapshots, or, for the lab, attach a variant.
 * (The plugin ABI's public header is observatory/stage.h; this one is the
 * host's private view of a stage.)
 */
#ifndef OBS_ENGINE_STAGE_H
#define OBS_ENGINE_STAGE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "config/config.h"
#include "engine/alloc.h"
#include "engine/host.h"
#include "engine/plugin.h"
#include "engine/pool.h"
#include "engine/ring.h"
#include "measure/histogram.h"
#include "measure/snapshot.h"

/* Per-stage counters, written by the stage thread only, read by anyone. */
typedef struct stage_stats {
    _Atomic uint64_t records_in, records_out;
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic uint64_t batches_in, batches_out;
    _Atomic uint64_t callback_errors; /* callbacks that returned a negative code */
    _Atomic uint64_t callback_ns;     /* wall time inside the plugin's callbacks */
    /* Thread CPU time is read around a sample of callbacks (a read costs
     * microseconds here): the CPU and wall time of the sampled callbacks. */
    _Atomic uint64_t sampled_cpu_ns, sampled_wall_ns;
    _Atomic uint64_t cpu_ns; /* thread CPU time of the stage thread, stored at exit */
    /* Allocations made inside callbacks (alloc.h), freed blocks and bytes. */
    _Atomic uint64_t allocs, frees, alloc_bytes;
    /* Heap bytes (usable sizes) made and freed inside callbacks: the live
     * heap of the stage is their difference plus heap_init. */
    _Atomic uint64_t heap_made, heap_freed;
    _Atomic int64_t heap_init; /* left by init (and swaps' inits), any thread */
    _Atomic uint64_t blocked_ns; /* time blocked pushing into a full ring */
    /* Generator only. */
    _Atomic uint64_t late_records; /* sent more than 1 ms after their intended time */
    _Atomic uint64_t max_lag_ns;
    _Atomic uint64_t scheduled; /* records whose intended time has come */
    _Atomic uint64_t idle_ns;   /* time asleep waiting for the schedule */
} stage_stats;

/* What runs in a stage: one plugin instance and everything it was given.
 * A slot is immutable once published, except that its instance is
 * finalised when a swap retires it; retired slots stay allocated (readers on
 * other threads may still hold them) until pipeline_destroy(). */
typedef struct stage_slot {
    const obs_module *module;
    const obs_stage_desc *desc;
    cfg_param_values params;
    obs_params params_view;
    obs_host *api; /* given to init: the stage's host.api, or a copy naming this module */
    void *instance;
    int initialised;      /* init succeeded and fini has not run */
    uint32_t prof_tag;    /* the profiler's tag for samples of this slot */
    uint64_t t_active_ns; /* when it became the active slot */
    struct stage_slot *retired_next;
} stage_slot;

struct swap_request;
struct stage_variant;

/* A stage of the pipeline runs as one thread, or as n_instances threads
 * (parallelism: N), each a `stage` of its own: its own plugin instance,
 * slot, counters and histograms. p->stages[i] is instance 0 of pipeline
 * stage i; instances[] lists all of them (instances[0] is p->stages[i]).
 * Every instance has one input ring per upstream instance and one output
 * ring per downstream instance; the downstream stage's partition chooses
 * the output ring of each batch (stage_thread.c). */
typedef struct stage {
    size_t index; /* position in the pipeline (config stage index) */
    uint32_t instance, n_instances;
    struct stage **instances;
    const cfg_stage *cfg;
    obs_kind kind;
    stage_slot first;           /* the slot pipeline_create builds */
    _Atomic(stage_slot *) slot; /* the active slot; written only by the stage thread */
    stage_slot *retired;        /* slots replaced by swaps (under the pipeline's swap lock) */
    _Atomic(struct swap_request *) pending; /* a swap waiting for the next batch boundary */
    _Atomic uint64_t n_swaps;
    _Atomic(struct stage_variant *) variant; /* B beside the active slot (variant.h), or NULL */
    histogram *swap_pause;                   /* stage thread: batches delayed by each switch */
    host_ctx host;
    ring *in, *out; /* ins[0] and outs[0]; NULL for the generator's input and the sink's output */
    ring **ins, **outs;   /* one ring per upstream / downstream instance */
    uint32_t n_in, n_out; /* 0 for the generator's input and the sink's output */
    ring_bell bell;       /* n_in > 1: where the upstream instances signal this one */
    uint32_t in_next;     /* stage thread: the input ring to try first */
    uint32_t out_next;    /* stage thread: the next output ring, round robin */
    int out_by_key;       /* the downstream stage is partitioned by key */
    int keep_keys;        /* a stage downstream routes by key: new records inherit keys */
    pthread_t thread;
    int thread_started;
    struct pipeline *pipeline;
    stage_stats stats;
    /* Histograms, each recorded only by the stage thread (histogram.h). */
    histogram *service;          /* every stage: wall time of each batch callback */
    histogram *lag;              /* generator: send time - intended time, per record */
    histogram *latency;          /* sink: end-to-end latency from the intended time */
    uint64_t last_cpu_sample_ns; /* stage thread only */
    clockid_t cpu_clock;         /* the stage thread's CPU clock, valid while running */
    _Atomic int cpu_clock_valid;
    stage_snapshot warm, stop; /* at the end of warm-up and when the stop came */
    /* When the plugin callback now running began (CLOCK_MONOTONIC), 0 when
     * none runs: the watchdog and a drain that times out read it. */
    _Atomic uint64_t in_callback_since_ns;
    uint64_t warned_since_ns; /* the callback the watchdog last warned about */
    /* The heap watch (main thread; the stage's first instance holds it for
     * all): the stage's live heap every HEAP_WATCH_STEP_NS, the last
     * HEAP_WATCH_STEPS + 1 of them, and the size last warned about. */
    int64_t heap_seen[7];
    uint32_t heap_n;
    uint64_t heap_next_ns;
    int64_t heap_warned;
    _Atomic int heap_growing; /* its live heap grew at every step of the last minute */
    _Atomic int thread_done;  /* the stage thread has finished its work */
} stage;

typedef struct pipeline {
    const obs_config *cfg;
    char **dirs;
    size_t n_dirs;
    stage *stages;
    size_t n_stages;
    ring *rings; /* sum over i of n_instances(i) * n_instances(i + 1) */
    size_t n_rings;
    stage *more;      /* the instances beyond the first of every parallel stage */
    size_t n_threads; /* instances of all stages */
    pool pool;
    _Atomic int stop;
    _Atomic int generator_done; /* end of data or a fatal generator error */
    _Atomic int failed;         /* a fatal error occurred during the run */
    _Atomic uint64_t t_start_ns, t_warm_ns, t_stop_ns, t_end_ns;
    _Atomic int running;  /* threads started and not yet joined */
    /* The drain was abandoned (run.drain_timeout passed, or stop_check
     * asked for it): stage threads may still run, so the pipeline must not
     * be destroyed; the process is to exit. */
    _Atomic int abandoned;
    uint64_t cpu_read_ns; /* CPU cost of reading the thread CPU clock twice */
    /* 1 (default): charge allocations, sampled CPU time and a service-time
     * histogram to each callback. 0: only counts and wall time (to measure
     * what the cost account itself costs). Set before pipeline_run(). */
    int cost_account;
    /* The heap watch (pipeline.c): its step (default 10 s) and the growth
     * over its last 6 steps it warns past (default 32 MiB). Set before
     * pipeline_run(). */
    uint64_t heap_watch_step_ns;
    int64_t heap_watch_min;
    pthread_mutex_t swap_lock; /* one swap at a time; guards stage.retired, variants, extension */
    /* What a layer above keeps per pipeline (the lab's experiments), under
     * swap_lock; pipeline_destroy calls extension_free first, while every
     * stage still exists. */
    void *extension;
    void (*extension_free)(struct pipeline *p);
} pipeline;

/* The active slot of a stage (any thread). */
static inline stage_slot *stage_active(const stage *s)
{
    return atomic_load_explicit(&((stage *)s)->slot, memory_order_acquire);
}

/* Charges to stage s the heap the calling thread made minus freed since it
 * read *a0 (alloc.h): for a plugin's init and fini, which run outside the
 * stage thread's callbacks (at start, and on the thread doing a swap).
 * stage_thread.c. */
void stage_heap_charge(stage *s, const alloc_counters *a0);

#endif /* OBS_ENGINE_STAGE_H */
