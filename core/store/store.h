/*
 * store.h - the run history in RocksDB: runs, metric series, histograms.
 *
 * One RocksDB database (config `store.path`) with a column family per kind
 * of data (runs, series, histograms, profiles), keys laid out big-endian so that one run's data is
 * one prefix scan (docs/storage.md has the exact layout). A run is opened when a pipeline starts
 * (its reproducibility facts are written at once), a snapshot of every metric and histogram is
 * appended once a second while it runs, and the end-of-run report is stored as JSON when it ends. A
 * run that never ended (hostd was killed) is marked incomplete by the next store_open(); nothing
 * written before the kill is lost (writes go through the WAL). A write that fails (a full disk) is
 * counted and the caller goes on (store_get_health); old runs are deleted by the retention limits
 * (store_set_retention).
 *
 * Thread safety: every function may be called from any thread concurrently
 * (RocksDB is thread-safe); the recorder writes while HTTP handlers read.
 */
#ifndef OBS_STORE_H
#define OBS_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "measure/snapshot.h"

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
    /* run.id: the name shared by the processes of one pipeline split over
     * several (facts "run_id"); NULL: none. */
    const char *run_id;
} run_info;

/* Opens (creating if needed) the store at `path`; marks runs that never
 * ended as incomplete. Returns 0 or a negative OBS_E* code with `err` set
 * ("store 'path': <rocksdb message>"). */
int store_open(const char *path, store **out, char *err, size_t errlen);

/* store_open with flags: STORE_CREATE creates a missing database (store_open
 * passes it); without it a missing one is an error (the `hostd runs`
 * readers, so a typo does not create an empty store). STORE_READONLY opens
 * without taking RocksDB's lock, so it works while a hostd has the store
 * open; it sees everything written before the open, marks nothing, and
 * every write fails with OBS_EINVAL. */
enum { STORE_CREATE = 1, STORE_READONLY = 2 };
int store_open_flags(const char *path, int flags, store **out, char *err, size_t errlen);

/* Closes and frees; NULL is a no-op. Everything returned by the store
 * stays valid (it is owned by the caller). */
void store_close(store *s);

/* The path the store was opened with; valid until store_close(). */
const char *store_path(const store *s);

/* Fault injection for tests: the n-th fallible step of the store from now
 * (1 = the next; a step is one allocation, one database write, or opening
 * the database) and every one after it fails, with OBS_ENOMEM or OBS_EIO;
 * 0 turns it off. Process-wide. A failed write writes nothing: each
 * logical write is one atomic RocksDB WriteBatch. */
void store_fail_after(uint64_t n);

/* Writes that failed (a full disk, an I/O error): the store counts every
 * logical write and every failed one, logs the first failure of a streak
 * and sums the rest up once a minute; the caller goes on. RocksDB retries
 * by itself when the disk has room again (docs/storage.md). */
typedef struct store_health {
    uint64_t n_writes;        /* successful writes since the store was opened */
    uint64_t n_writes_failed; /* failed ones */
    int failing;              /* the last write failed */
    char last_error[256];     /* the last failure's message, "" when none */
} store_health;
void store_get_health(store *s, store_health *h);
/* Adds "store": {path, writes, writes_failed, last_error, failing} to a
 * report (JSON object, borrowed), so the end-of-run report says what could
 * not be stored. Returns 0 or OBS_ENOMEM. */
int store_add_health(store *s, json_t *report);

/* Retention (docs/storage.md): runs that ended more than max_age_ns ago,
 * and the oldest runs while the store's files take more than max_bytes,
 * are deleted; 0 turns a limit off. store_set_retention() sets the limits
 * (the config's store.retention) and applies them at once;
 * store_apply_retention() applies them again (the recorder does, once a
 * minute). The run `keep_run_id` (the one being recorded; 0: none) and
 * runs still "running" are never deleted; when that run alone is over
 * max_bytes, its points older than the newest part that fits are. What was
 * deleted is counted in *res (may be NULL). Call it from the thread that
 * stores the run's snapshots (it rewrites the run's progress record).
 * Returns 0 or a negative code (OBS_EINVAL on a read-only store). */
typedef struct store_retention_result {
    uint64_t n_runs_deleted;    /* whole runs */
    uint64_t trimmed_before_ns; /* points of keep_run_id before this were deleted; 0: none */
    uint64_t bytes_before, bytes_after; /* size of the store's files */
} store_retention_result;
int store_set_retention(store *s, uint64_t max_age_ns, uint64_t max_bytes);
int store_apply_retention(store *s, uint64_t keep_run_id, store_retention_result *res);
/* The size of the store's files on disk (the directory's regular files). */
uint64_t store_disk_bytes(const store *s);

/* Starts a run: assigns the next run id (1, 2, ...) and records `info`
 * plus host facts gathered here (hostname, kernel, CPU model, compiler and
 * flags of hostd, start time). */
int store_run_begin(store *s, const run_info *info, uint64_t *run_id);

/* Appends one snapshot's metrics as series points at snap->t_wall_ns and
 * its histograms (non-empty buckets only). */
int store_put_snapshot(store *s, uint64_t run_id, const obs_snapshot *snap);

/* Ends a run: end time, whether it ended cleanly, and the report (JSON
 * object, borrowed; may be NULL), in one synced write. When that write
 * fails (a full disk), the end and the report go to a JSON file beside
 * the store or in $TMPDIR instead (logged with its path); readers show it
 * and the next read-write open stores it (docs/storage.md). Returns 0, or
 * a negative code when neither could be written. */
int store_run_end(store *s, uint64_t run_id, int clean, json_t *report);
/* Ends the record of a run that never started (hostd could not listen, say):
 * status "not started" and `why` (borrowed) as its error, so it is not
 * taken for a run that crashed. Returns 0 or a negative code. */
int store_run_not_started(store *s, uint64_t run_id, const char *why);

/* Readers. Each returns 0 and a new reference in *out, OBS_ENOENT for an
 * unknown run, or another negative code. A run's facts (docs/storage.md)
 * carry "status": "running", "complete", "failed" (ended, not cleanly) or
 * "incomplete" (hostd died; marked by the next store_open), and the
 * progress figures "n_snapshots", "first_snapshot_ns", "last_snapshot_ns".
 * The listing leaves out "config_text" and adds "has_report". */
int store_runs_json(store *s, json_t **out);                 /* array, newest first */
int store_run_json(store *s, uint64_t run_id, json_t **out); /* facts + "report" (or null) */
/* Points of one metric ("stage/<name>/<metric>", see docs/storage.md) with
 * from_ns <= t < to_ns (wall-clock ns; 0/UINT64_MAX for open ends), as an
 * array of [t_ns, value] pairs in time order. An unknown metric of a known
 * run gives an empty array. */
int store_series_json(store *s, uint64_t run_id, const char *metric, uint64_t from_ns,
                      uint64_t to_ns, json_t **out);
/* Appends an event of a run (a swap, an experiment's verdict: a JSON
 * object, borrowed) at wall time t_wall_ns. Events are written at once
 * (through the WAL), so they survive a kill of hostd. */
int store_put_event(store *s, uint64_t run_id, uint64_t t_wall_ns, const json_t *event);
/* The events of a run in time order (array; store_run_json includes them
 * as "events"). */
int store_events_json(store *s, uint64_t run_id, json_t **out);
/* Names of the metrics stored for a run (array of strings, sorted). */
int store_metrics_json(store *s, uint64_t run_id, json_t **out);

/* Reads histogram `name` ("stage/<name>/service|lag|latency") of a run as
 * stored by the last snapshot at or before `at_ns` (UINT64_MAX: the last
 * one) into `h` (caller's memory, overwritten), and that snapshot's time
 * into *t_ns (may be NULL). Returns 0, OBS_ENOENT when there is none, or
 * OBS_EIO for a malformed value. */
int store_histogram_get(store *s, uint64_t run_id, const char *name, uint64_t at_ns, histogram *h,
                        uint64_t *t_ns);

/* Profiles of continuous mode (docs/profiling.md), one value per window in
 * the "profiles" family: key run_id | start_ns (both big-endian), value the
 * blob of obs_prof_profile_encode() as given (`blob`, borrowed for the
 * call; the window's end is inside it, `end_ns` is only checked to be
 * >= start_ns). Written through the WAL without fsync, like snapshots; a
 * window with the same start replaces the earlier one. Returns 0, OBS_EINVAL
 * (end before start, read-only store), OBS_EIO. */
int store_put_profile(store *s, uint64_t run_id, uint64_t start_ns, uint64_t end_ns,
                      const void *blob, size_t len);
/* Calls fn for each stored window of a run whose start is in
 * [from_ns, to_ns) (wall-clock ns; 0/UINT64_MAX for open ends), in time
 * order; `blob` is borrowed for the call. A nonzero return of fn stops the
 * scan and is returned. Returns 0, OBS_ENOENT for an unknown run, OBS_EIO.
 * A store written before profiles existed, opened read-only, has none. */
int store_profiles_scan(store *s, uint64_t run_id, uint64_t from_ns, uint64_t to_ns,
                        int (*fn)(void *ctx, uint64_t start_ns, const void *blob, size_t len),
                        void *ctx);

#endif /* OBS_STORE_H */
