/*
 * store_internal.h - what the files of the store share and nobody else may
 * see: the store struct, its column families and key tags, and the helpers
 * every part uses (fault injection, big-endian keys, batch writes, the JSON
 * values and progress record of the "runs" family, range scans).
 *
 * The store is split by idea: store.c opens and closes the database,
 * store_db.c holds these helpers, store_run.c begins and ends runs,
 * store_snapshot.c writes snapshots, store_read.c reads runs, series,
 * metrics and histograms back, store_event.c handles a run's events and
 * store_profiles.c the windows of continuous profiling. Callers outside
 * core/store include only store.h; docs/storage.md is the byte layout all
 * of them must agree with.
 */
#ifndef OBS_STORE_INTERNAL_H
#define OBS_STORE_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <rocksdb/c.h>

#include "store/store.h"

/* Tags after the run id in the "runs" family (docs/storage.md). */
#define TAG_INFO 'i'
#define TAG_PROGRESS 'p'
#define TAG_REPORT 'r'
/* Events of a run (swaps, experiments): key run_id | 'e' | be64 wall ns |
 * be64 sequence, value JSON. */
#define TAG_EVENT 'e'

enum { CF_RUNS, CF_SERIES, CF_HISTOGRAMS, CF_META, CF_PROFILES, CF_COUNT };

struct store {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_writeoptions_t *wo;      /* snapshots: WAL, no fsync */
    rocksdb_writeoptions_t *wo_sync; /* run begin and end: WAL + fsync */
    rocksdb_readoptions_t *ro;
    rocksdb_column_family_handle_t *cf[CF_COUNT];
    rocksdb_column_family_handle_t **handles; /* every family opened, ours included */
    size_t n_handles;
    int readonly;
    char *path;
    pthread_mutex_t lock; /* run ids and read-modify-write of a run's facts */

    /* Write accounting (store_batch_write): every logical write and every
     * failed one. The first failure of a streak is logged, the rest are
     * counted and summed up once a minute and when writing works again. */
    _Atomic uint64_t n_writes, n_writes_failed;
    rocksdb_writeoptions_t *wo_nowal; /* no WAL: the gate before each write (store_db.c) */
    pthread_mutex_t err_lock;         /* the fields below */
    int failing;                      /* the last write failed */
    uint64_t streak_failed;           /* failed writes in the current streak */
    uint64_t streak_logged_ns;
    char last_error[256];

    /* Retention (store_retention.c): 0 = no limit. */
    uint64_t max_age_ns, max_bytes;
};

/* Progress record of a run: first and last snapshot time, number of
 * snapshots. Zeros when none was stored. */
typedef struct store_progress {
    uint64_t first_ns, last_ns, n;
} store_progress;

/* Big-endian integers of keys and values: 8 bytes at p. */
static inline void store_put_be64(char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (char)(v & 0xff);
}

static inline uint64_t store_get_be64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | (uint8_t)p[i];
    return v;
}

/* The key run_id | tag of the "runs" family. */
static inline void store_info_key(char key[9], uint64_t run_id, char tag)
{
    store_put_be64(key, run_id);
    key[8] = tag;
}

/* Fault injection (store_fail_after): true when this fallible step must
 * fail. Each call is one step. */
int store_fault_hit(void);

/* malloc that counts as a fallible step: NULL when out of memory or when
 * the step is made to fail. The caller frees the result with free(). */
void *store_xmalloc(size_t n);

/* Wall-clock time (CLOCK_REALTIME), Unix epoch ns. */
uint64_t store_wall_ns(void);

/* Writes `ns` as ISO 8601 UTC with milliseconds, e.g.
 * 2026-11-27T12:31:38.123Z, into buf (len bytes, caller's). */
void store_iso_time(uint64_t ns, char *buf, size_t len);

/* Logs a RocksDB error with the store's path and `what`, and frees `err`
 * (which may be NULL: then it says "failed"). */
void store_log_db_error(const store *s, const char *what, char *err);

/* Writes a batch (borrowed; the caller destroys it) with fsync when `sync`;
 * fault injection counts it as one step. Returns 0, OBS_EINVAL on a
 * read-only store, or OBS_EIO (logged with `what`). */
int store_batch_write(store *s, rocksdb_writebatch_t *b, int sync, const char *what);

/* Reads one value of the "runs" family as JSON. Returns 0, OBS_ENOENT, or
 * OBS_EIO. *out is a new reference. */
int store_get_json(store *s, uint64_t run_id, char tag, json_t **out);

/* Adds `j` (borrowed) as compact JSON under run_id | tag of the "runs"
 * family to the batch. A fallible step. Returns 0 or OBS_ENOMEM. */
int store_put_json(rocksdb_writebatch_t *b, store *s, uint64_t run_id, char tag, const json_t *j);

/* Reads a run's progress record into *pr (zeros when there is none).
 * Returns 0 or OBS_EIO. */
int store_get_progress(store *s, uint64_t run_id, store_progress *pr);

/* Calls `fn` for each key of family `cf` in [lo, hi) (bytewise), stopping
 * when it returns nonzero; key and value are borrowed for the call. Returns
 * 0 or OBS_EIO. */
int store_scan(store *s, int cf, const char *lo, size_t lo_len, const char *hi, size_t hi_len,
               int (*fn)(const char *k, size_t klen, const char *v, size_t vlen, void *arg),
               void *arg);

/* Does a run exist? 0, OBS_ENOENT or OBS_EIO. */
int store_run_exists(store *s, uint64_t run_id);

/* Marks every run whose facts still say "running" as incomplete: its hostd
 * died without store_run_end(). Called by store_open_flags() with the
 * database open read-write, before anyone else can use it. Returns 0,
 * OBS_ENOMEM or OBS_EIO. */
int store_mark_incomplete(store *s);

/* The end of a run that could not be written (store_pending.c). */

/* Writes `facts` and `report` (borrowed; report may be NULL) of run
 * `run_id` as a JSON file beside the store, or, when that fails, in
 * $TMPDIR (docs/storage.md), and logs where. Returns 0 or OBS_EIO. */
int store_pending_write(store *s, uint64_t run_id, const json_t *facts, const json_t *report);
/* Read-write stores: writes every pending end found for this store into
 * it (one synced batch per run) and removes the files written. Returns the
 * number imported (>= 0); failures are logged and leave the files. */
int store_pending_import(store *s);
/* Readers: when a pending end of run `run_id` exists, replaces *facts
 * (owned by the caller; the new one too) with its facts plus
 * "report_pending": the file's path, and sets *report (a new reference)
 * when it holds one. Returns 1 when applied, 0 when there is none. */
int store_pending_apply(store *s, uint64_t run_id, json_t **facts, json_t **report);
/* Removes any pending file of run `run_id` (retention deleted the run). */
void store_pending_remove(store *s, uint64_t run_id);

#endif /* OBS_STORE_INTERNAL_H */
