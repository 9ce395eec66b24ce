/*
 * run_profile.h - the profiles of stored runs: continuous mode writing its
 * windows into the store, and reading them back as one profile per run and
 * time range, filtered by tag labels, plain or as the difference of two.
 *
 * The profiler library (obs_profiler.h) knows nothing of runs or RocksDB,
 * and the store (store.h) knows nothing of profiles but their bytes; this
 * is the glue both ways, shared by hostd (--profile-continuous), the HTTP
 * routes /api/v1/runs/{id}/profile and /api/v1/profiles/diff
 * (server/http_runprof.h), and `hostd profile-diff`. docs/profiling.md describes the use,
 * docs/storage.md the bytes.
 */
#ifndef OBS_RUN_PROFILE_H
#define OBS_RUN_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "obs_profiler.h"

struct store;

/* Starts continuous mode with windows of `window_ns` (>= 100 ms), each one
 * stored with store_put_profile() under `run_id`. `s` is borrowed and must
 * stay open until run_profile_record_stop(). One recording per process (the
 * profiler's continuous mode is process-wide). Returns 0, OBS_EINVAL (window
 * too short), OBS_EAGAIN (already recording), OBS_ESTATE (profiler not
 * initialised), OBS_ECONFIG (not the native backend). */
int run_profile_record_start(struct store *s, uint64_t run_id, uint64_t window_ns);
/* Stores the partial last window and stops; a no-op when not recording.
 * Returns how many windows the store refused since the start (they are
 * logged as they happen). */
uint64_t run_profile_record_stop(void);

/* One side of a request: a run, a time range of it and tag labels. */
typedef struct run_profile_sel {
    uint64_t run_id;
    uint64_t from_ns, to_ns; /* windows starting in [from_ns, to_ns); 0 / UINT64_MAX: all */
    obs_prof_label match[OBS_PROF_MAX_LABELS]; /* strings borrowed */
    size_t n_match;
} run_profile_sel;

/* Merges the stored windows `sel` selects and keeps the samples whose tag
 * has every label of sel->match. *out is the caller's (obs_prof_profile_free).
 * On failure returns a negative code and a message for the user in `err`:
 * OBS_ENOENT (no such run; no window stored in the range; a label value no
 * sample of the range has, with the values there are), OBS_EIO (store read
 * or a malformed window), OBS_ENOMEM. *n_windows (may be NULL) gets the
 * number of windows merged. */
int run_profile_select(struct store *s, const run_profile_sel *sel, obs_prof_profile **out,
                       size_t *n_windows, char *err, size_t errlen);

#endif /* OBS_RUN_PROFILE_H */
