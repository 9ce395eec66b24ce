/*
 * store.h - the run history in RocksDB: runs, metric series, histograms.
 *
 * One RocksDB database (config `store.path`) with a column family per kind
 * of data, keys laid out big-endian so that one run's data is one prefix
 * scan (docs/storage.md has the exact layout). A run is opened when a
 * pipeline starts (its reproducibility facts are written at once), a
 * snapshot of every metric and histogram is appended once a second while
 * it runs, and the end-of-run report is stored as JSON when it ends. A run
 * that never ended (hostd was killed) is marked incomplete by the next
 * store_open(); nothing written before the kill is lost (writes go through
 * the WAL).
 *
 * Thread safety: every function may be called from any thread concurrently
 * (RocksDB is thread-safe); the recorder writes while HTTP handlers read.
 */
#ifndef OBS_STORE_H
#define OBS_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"

typedef struct store store;

/* What makes a run reproducible; strings are borrowed for the call. */
typedef struct run_info {
    const char *pipeline;
    const char *config_path;
    const char *config_text;
    uint64_t seed;
    /* Plugins: one entry per stage, in pipeline order. */
    size_t n_stages;
    const char *const *stage_names;
    const char *const *plugin_names;
    const char *const *plugin_versions;
    const char *const *plugin_paths;
    const char *const *plugin_build_ids; /* hex */
} run_info;

/* Opens (creating if needed) the store at `path`; marks runs that never
 * ended as incomplete. Returns 0 or a negative OBS_E* code with `err` set
 * ("store 'path': <rocksdb message>"). */
int store_open(const char *path, store **out, char *err, size_t errlen);
void store_close(store *s);

/* Starts a run: assigns the next run id (1, 2, ...) and records `info`
 * plus host facts gathered here (hostname, kernel, CPU model, compiler and
 * flags of hostd, start time). */
int store_run_begin(store *s, const run_info *info, uint64_t *run_id);

/* Appends one snapshot's metrics as series points at snap->t_wall_ns and
 * its histograms (non-empty buckets only). */
int store_put_snapshot(store *s, uint64_t run_id, const obs_snapshot *snap);

/* Ends a run: end time, whether it ended cleanly, and the report (JSON
 * object; borrowed). */
int store_run_end(store *s, uint64_t run_id, int clean, json_t *report);

/* Readers. Each returns 0 and a new reference in *out, OBS_ENOENT for an
 * unknown run, or another negative code. */
int store_runs_json(store *s, json_t **out);                   /* array, newest first */
int store_run_json(store *s, uint64_t run_id, json_t **out);   /* facts + report */
/* Points of one metric ("stage/<name>/<metric>", see docs/storage.md) with
 * from_ns <= t < to_ns (wall-clock ns; 0/UINT64_MAX for open ends). */
int store_series_json(store *s, uint64_t run_id, const char *metric, uint64_t from_ns,
                      uint64_t to_ns, json_t **out);
/* Names of the metrics stored for a run (array of strings). */
int store_metrics_json(store *s, uint64_t run_id, json_t **out);

/* The recorder: a thread that takes a pipeline snapshot every
 * `interval_ns` and stores it, until recorder_stop(). */
typedef struct recorder recorder;
int recorder_start(store *s, uint64_t run_id, const struct pipeline *p, uint64_t interval_ns,
                   recorder **out);
/* Takes a last snapshot, stores it, joins the thread and frees. */
void recorder_stop(recorder *r);

#endif /* OBS_STORE_H */
