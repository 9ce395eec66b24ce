/*
 * snapshot.h - a consistent copy of every metric of a running pipeline.
 *
 * Stage threads own their counters and histograms; nobody else writes them.
 * Readers (the HTTP server, the recorder, the end-of-run report) never read
 * them piecemeal: they take a snapshot, which copies every counter with
 * atomic loads and merges every histogram into a private copy. A snapshot is
 * plain data owned by the caller: it stays valid after the pipeline ends
 * (names are copied), and is freed with snapshot_free().
 */
#ifndef OBS_SNAPSHOT_H
#define OBS_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "measure/histogram.h"

#define SNAPSHOT_NAME_MAX 64

/* A plugin-defined counter (registered with host->counter_register). */
typedef struct snapshot_counter {
    char name[SNAPSHOT_NAME_MAX];
    char help[128];
    int kind; /* OBS_COUNTER_PLAIN or OBS_COUNTER_ERROR */
    uint64_t value;
} snapshot_counter;

typedef enum snapshot_state {
    SNAPSHOT_STARTING = 0, /* built, threads not yet running */
    SNAPSHOT_RUNNING = 1,
    SNAPSHOT_DRAINING = 2, /* stop requested, in-flight batches draining */
    SNAPSHOT_DONE = 3,
} snapshot_state;

typedef struct stage_sample {
    char name[SNAPSHOT_NAME_MAX];    /* stage name */
    char plugin[SNAPSHOT_NAME_MAX];  /* plugin name from its descriptor */
    char version[SNAPSHOT_NAME_MAX]; /* plugin version */
    char kind[16];                   /* "generator", "transform", "sink" */
    int source;                      /* a source generator: records from outside */
    char build_id[2 * 64 + 1];       /* hex, "" when the plugin has none */

    uint64_t records_in, records_out;
    uint64_t bytes_in, bytes_out;
    uint64_t batches_in, batches_out;
    uint64_t callback_errors;  /* callbacks that returned a negative code */
    uint64_t errors;           /* callback_errors + the plugin's error counters */
    uint64_t callback_wall_ns; /* wall time inside the plugin's callbacks */
    uint64_t callback_cpu_ns;  /* thread CPU time inside the callbacks (estimate: see docs) */
    uint64_t thread_cpu_ns;    /* all CPU time of the stage thread so far */
    uint64_t allocs;           /* allocations made by the plugin inside callbacks */
    uint64_t frees;
    uint64_t alloc_bytes;                   /* bytes requested by those allocations */
    uint64_t heap_live_bytes; /* heap the plugin holds: made minus freed (usable sizes) in
                                 its callbacks, init and fini (0 if it freed more than it
                                 made, and under sanitizers) */
    uint64_t heap_growing;    /* 1: it grew at every 10 s step of the last minute, by more
                                 than 32 MiB (the watchdog warned) */
    uint64_t blocked_ns;                    /* time blocked pushing into a full output ring */
    uint64_t callback_running_ns; /* how long the callback now running has run, 0: none
                                     (of a parallel stage: the longest) */
    uint32_t ring_occupancy, ring_capacity; /* output ring; 0/0 for sinks */

    /* Generator only. */
    uint64_t records_scheduled; /* records whose intended time has come */
    uint64_t late_records;      /* sent more than 1 ms after their intended time */
    uint64_t idle_ns;           /* time spent waiting for the schedule (headroom) */

    /* Histograms (heap, owned by the snapshot; NULL where not applicable). */
    histogram *service;    /* per-batch time inside the callback, all stages */
    histogram *lag;        /* generator: send time - intended time, per record */
    histogram *latency;    /* sink: end-to-end latency from the intended time, per record */
    histogram *swap_pause; /* hot swaps: how long each switch delayed its batch */
    uint64_t n_swaps;      /* hot swaps of this stage so far */

    snapshot_counter *counters;
    uint32_t n_counters;

    /* A stage run as parallel instances: every figure above is the sum
     * over them (histograms merged, plugin counters added by name), and
     * instances[] holds each one's own (n_instances of them, in instance
     * order, themselves without instances). One instance: 1 and NULL. */
    uint32_t n_instances;
    struct stage_sample *instances;
} stage_sample;

/* A stage's counters at one instant (end of warm-up, the stop): what the
 * report's rates over the measured window are computed from. */
typedef struct stage_snapshot {
    uint64_t records_in, records_out, bytes_in, bytes_out, callback_ns, errors;
    uint64_t sampled_cpu_ns, sampled_wall_ns, allocs, alloc_bytes;
} stage_snapshot;

typedef struct obs_snapshot {
    char pipeline[SNAPSHOT_NAME_MAX];
    char run_id[SNAPSHOT_NAME_MAX]; /* run.id, "" when none */
    snapshot_state state;
    uint64_t t_mono_ns;   /* CLOCK_MONOTONIC when taken */
    uint64_t t_wall_ns;   /* CLOCK_REALTIME when taken (Unix epoch ns) */
    uint64_t t_start_ns;  /* CLOCK_MONOTONIC at pipeline start, 0 before */
    uint64_t t_warm_ns;   /* end of warm-up, 0 before */
    uint64_t t_stop_ns;   /* stop requested, 0 before */
    uint64_t t_end_ns;    /* fully drained, 0 before */
    uint64_t duration_ns; /* configured run.duration (0 = until signal) */
    int unscheduled;      /* every load phase is `max` (or none): no intended times */
    /* The process (hostd with every plugin): resident and proportional set
     * size now (PSS 0 where the kernel has no smaps_rollup), and the peak
     * resident size so far. */
    uint64_t rss_bytes, pss_bytes, rss_peak_bytes;
    int failed;           /* a stage failed fatally */
    size_t n_stages;
    stage_sample *stages; /* in pipeline order */
} obs_snapshot;

void snapshot_free(obs_snapshot *s);

const char *snapshot_state_name(snapshot_state s);

#endif /* OBS_SNAPSHOT_H */
