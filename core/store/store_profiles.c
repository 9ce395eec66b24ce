/*
 * store_profiles.c - the windows of continuous profiling in the "profiles"
 * family (docs/profiling.md, docs/storage.md): store_put_profile() keeps
 * one window's blob, as obs_prof_profile_encode() made it, under
 * run_id | start_ns, and store_profiles_scan() hands back a run's windows
 * in a time range in order. The store never looks inside a blob;
 * run_profile.c decodes and merges what a scan returns. A store older
 * than the family, opened read-only, has none.
 */
#include "store/store_internal.h"

#include "observatory/stage.h"

int store_put_profile(store *s, uint64_t run_id, uint64_t start_ns, uint64_t end_ns,
                      const void *blob, size_t len)
{
    if (end_ns < start_ns || (!blob && len) || !s->cf[CF_PROFILES])
        return OBS_EINVAL;
    char key[16];
    store_put_be64(key, run_id);
    store_put_be64(key + 8, start_ns);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_writebatch_put_cf(b, s->cf[CF_PROFILES], key, sizeof(key), blob ? blob : "", len);
    int rc = store_batch_write(s, b, 0, "store profile window");
    rocksdb_writebatch_destroy(b);
    return rc;
}

typedef struct profile_scan {
    int (*fn)(void *ctx, uint64_t start_ns, const void *blob, size_t len);
    void *ctx;
    int rc; /* what fn returned when it stopped the scan */
} profile_scan;

static int profile_window(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    profile_scan *ps = arg;
    if (klen != 16)
        return 0;
    ps->rc = ps->fn(ps->ctx, store_get_be64(k + 8), v, vlen);
    return ps->rc != 0;
}

int store_profiles_scan(store *s, uint64_t run_id, uint64_t from_ns, uint64_t to_ns,
                        int (*fn)(void *ctx, uint64_t start_ns, const void *blob, size_t len),
                        void *ctx)
{
    int rc = store_run_exists(s, run_id);
    if (rc < 0)
        return rc;
    if (!s->cf[CF_PROFILES] || from_ns >= to_ns)
        return 0;
    char lo[16], hi[16];
    size_t hi_len = sizeof(hi);
    store_put_be64(lo, run_id);
    store_put_be64(lo + 8, from_ns);
    if (to_ns == UINT64_MAX) {
        /* Every window of the run: up to the next run's prefix. A run id of
         * UINT64_MAX has no next prefix; its 8-byte prefix followed by
         * 0xff.. bounds all but a window starting at UINT64_MAX ns. */
        if (run_id == UINT64_MAX) {
            store_put_be64(hi, run_id);
            store_put_be64(hi + 8, UINT64_MAX);
        } else {
            store_put_be64(hi, run_id + 1);
            hi_len = 8;
        }
    } else {
        store_put_be64(hi, run_id);
        store_put_be64(hi + 8, to_ns);
    }
    profile_scan ps = {.fn = fn, .ctx = ctx};
    rc = store_scan(s, CF_PROFILES, lo, sizeof(lo), hi, hi_len, profile_window, &ps);
    return rc < 0 ? rc : ps.rc;
}
