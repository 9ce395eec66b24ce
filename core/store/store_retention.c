/*
 * store_retention.c - the store's bound: deleting old runs by age and by
 * size (store_set_retention, store_apply_retention; config
 * store.retention, docs/storage.md).
 *
 * A run is deleted whole: one range deletion of its prefix run_id(8) in
 * every family that holds runs, so a reader sees all of it or none. The
 * space comes back when RocksDB drops the SST files that lie inside the
 * deleted range (before the range deletion is written, so that no file
 * holding it can be dropped while older data it covers stays) and compacts
 * the range. The size limit counts the store directory's files (SST files,
 * WAL, manifest); per-run sizes come from RocksDB's estimate of the SST
 * bytes of each run's range. The run being recorded is never deleted; when
 * it alone is over the limit (a run that goes on for days), its oldest
 * points are deleted instead, metric by metric, and its facts say from
 * when it is kept ("trimmed_before_ns").
 */
#include "store/store_internal.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/host.h"
#include "observatory/stage.h"
#include "util/json_u64.h"

/* The families whose keys start with run_id(8). */
static const int run_families[] = {CF_RUNS, CF_SERIES, CF_HISTOGRAMS, CF_PROFILES};
#define N_RUN_FAMILIES (sizeof run_families / sizeof run_families[0])

typedef struct run_entry {
    uint64_t id;
    uint64_t end_ns; /* when it ended, or started when it has no end */
    int running;
} run_entry;

uint64_t store_disk_bytes(const store *s)
{
    DIR *d = opendir(s->path);
    if (!d)
        return 0;
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[4352];
        struct stat st;
        if (snprintf(p, sizeof p, "%s/%s", s->path, e->d_name) < (int)sizeof p &&
            stat(p, &st) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_blocks * 512u;
    }
    closedir(d);
    return total;
}

static uint64_t facts_u64(const json_t *facts, const char *key)
{
    json_t *v = json_object_get(facts, key);
    if (json_is_integer(v) && json_integer_value(v) > 0)
        return (uint64_t)json_integer_value(v);
    if (json_is_string(v))
        return strtoull(json_string_value(v), NULL, 10);
    return 0;
}

/* The runs of the store, oldest first, into a malloc'd array. */
static int list_runs(store *s, run_entry **out, size_t *n_out)
{
    run_entry *runs = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_RUNS]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen != 9 || k[8] != TAG_INFO)
            continue;
        const char *v = rocksdb_iter_value(it, &vlen);
        json_t *facts = json_loadb(v, vlen, 0, NULL);
        if (!facts)
            continue;
        if (n == cap) {
            run_entry *bigger = realloc(runs, (cap = cap ? 2 * cap : 64) * sizeof *runs);
            if (!bigger || store_fault_hit()) {
                free(bigger ? bigger : runs);
                runs = NULL;
                json_decref(facts);
                rc = OBS_ENOMEM;
                break;
            }
            runs = bigger;
        }
        const char *status = json_string_value(json_object_get(facts, "status"));
        uint64_t end = facts_u64(facts, "end_ns");
        runs[n].id = store_get_be64(k);
        runs[n].end_ns = end ? end : facts_u64(facts, "start_ns");
        runs[n].running = status && strcmp(status, "running") == 0;
        n++;
        json_decref(facts);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        store_log_db_error(s, "retention: list runs", err);
        rc = OBS_EIO;
    }
    if (rc < 0) {
        free(runs);
        return rc;
    }
    *out = runs;
    *n_out = n;
    return 0;
}

/* RocksDB's estimate of the SST bytes of run `id` in every family. */
static uint64_t run_bytes(store *s, uint64_t id)
{
    char lo[8], hi[8];
    store_put_be64(lo, id);
    store_put_be64(hi, id + 1);
    const char *los[1] = {lo}, *his[1] = {hi};
    size_t lens[1] = {8};
    uint64_t total = 0;
    for (size_t f = 0; f < N_RUN_FAMILIES; f++) {
        uint64_t size = 0;
        char *err = NULL;
        if (!s->cf[run_families[f]])
            continue;
        rocksdb_approximate_sizes_cf(s->db, s->cf[run_families[f]], 1, los, lens, his, lens, &size,
                                     &err);
        rocksdb_free(err);
        total += size;
    }
    return total;
}

/* Adds to `b` the deletion of the key range [lo, hi) of family `cf`,
 * after dropping the SST files that lie wholly inside it (before the range
 * deletion is written: a file holding it must never be dropped while
 * older data it covers stays elsewhere). */
static void drop_range(store *s, int cf, const char *lo, size_t lo_len, const char *hi,
                       size_t hi_len, rocksdb_writebatch_t *b)
{
    char *err = NULL;
    rocksdb_delete_file_in_range_cf(s->db, s->cf[cf], lo, lo_len, hi, hi_len, &err);
    rocksdb_free(err); /* only a shortcut: the range deletion does the work */
    rocksdb_writebatch_delete_range_cf(b, s->cf[cf], lo, lo_len, hi, hi_len);
}

/* Compacts [lo, hi) of family `cf` down to the last level, which drops
 * what the range deletions cover and gives the space back. */
static void compact(store *s, int cf, const char *lo, size_t lo_len, const char *hi, size_t hi_len)
{
    rocksdb_compactoptions_t *o = rocksdb_compactoptions_create();
    rocksdb_compactoptions_set_bottommost_level_compaction(o, 2 /* kForce */);
    rocksdb_compact_range_cf_opt(s->db, s->cf[cf], o, lo, lo_len, hi, hi_len);
    rocksdb_compactoptions_destroy(o);
}

/* Deletes the runs ids[0..n), all in one batch, then compacts their
 * range. Returns 0 or a negative code. */
static int delete_runs(store *s, const uint64_t *ids, size_t n)
{
    if (n == 0)
        return 0;
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    char lo[8], hi[8];
    for (size_t i = 0; i < n; i++) {
        store_put_be64(lo, ids[i]);
        store_put_be64(hi, ids[i] + 1);
        for (size_t f = 0; f < N_RUN_FAMILIES; f++)
            if (s->cf[run_families[f]])
                drop_range(s, run_families[f], lo, 8, hi, 8, b);
    }
    int rc = store_batch_write(s, b, 1, "retention: delete old runs");
    rocksdb_writebatch_destroy(b);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        store_pending_remove(s, ids[i]);
    uint64_t min = ids[0], max = ids[0];
    for (size_t i = 1; i < n; i++) {
        min = ids[i] < min ? ids[i] : min;
        max = ids[i] > max ? ids[i] : max;
    }
    store_put_be64(lo, min);
    store_put_be64(hi, max + 1);
    for (size_t f = 0; f < N_RUN_FAMILIES; f++)
        if (s->cf[run_families[f]])
            compact(s, run_families[f], lo, 8, hi, 8);
    return 0;
}

/* Adds to `b` the deletion of every point of run `id` in family `cf`
 * (keys run | name | 0x00 | t) with t < before_ns, name by name. */
static int trim_family(store *s, int cf, uint64_t id, uint64_t before_ns, rocksdb_writebatch_t *b)
{
    char seek[8 + 256 + 1];
    size_t seek_len = 8;
    char run_hi[8];
    store_put_be64(seek, id);
    store_put_be64(run_hi, id + 1);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, run_hi, 8);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[cf]);
    for (rocksdb_iter_seek(it, seek, seek_len); rocksdb_iter_valid(it);
         rocksdb_iter_seek(it, seek, seek_len)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *nul = klen > 8 ? memchr(k + 8, 0, klen - 8) : NULL;
        size_t nlen = nul ? (size_t)(nul - (k + 8)) : 0;
        if (!nul || nlen > 255)
            break; /* not a point key of this layout: leave the rest alone */
        char lo[8 + 256 + 8], hi[8 + 256 + 8];
        memcpy(lo, k, 8 + nlen + 1);
        memcpy(hi, k, 8 + nlen + 1);
        store_put_be64(lo + 8 + nlen + 1, 0);
        store_put_be64(hi + 8 + nlen + 1, before_ns);
        rocksdb_writebatch_delete_range_cf(b, s->cf[cf], lo, 8 + nlen + 9, hi, 8 + nlen + 9);
        /* The next name: past every key of this one (run | name | 0x01). */
        memcpy(seek, k, 8 + nlen);
        seek[8 + nlen] = 1;
        seek_len = 8 + nlen + 1;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (err) {
        store_log_db_error(s, "retention: scan a run's points", err);
        return OBS_EIO;
    }
    return 0;
}

/* Deletes the points of run `id` older than before_ns in the series,
 * histograms and profiles, moves its progress record's first snapshot to
 * before_ns and notes the cut in its facts; compacts the run's range when
 * `reclaim` (the size limit needs the space now; the age limit leaves it to
 * RocksDB's own compactions). */
static int trim_run(store *s, uint64_t id, uint64_t before_ns, const store_progress *pr,
                    int reclaim)
{
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    json_t *facts = NULL;
    int rc = trim_family(s, CF_SERIES, id, before_ns, b);
    if (rc == 0)
        rc = trim_family(s, CF_HISTOGRAMS, id, before_ns, b);
    char lo[16], hi[16];
    if (rc == 0 && s->cf[CF_PROFILES]) {
        store_put_be64(lo, id);
        store_put_be64(lo + 8, 0);
        store_put_be64(hi, id);
        store_put_be64(hi + 8, before_ns);
        rocksdb_writebatch_delete_range_cf(b, s->cf[CF_PROFILES], lo, 16, hi, 16);
    }
    char key[9], val[24];
    store_info_key(key, id, TAG_PROGRESS);
    store_put_be64(val, before_ns);
    store_put_be64(val + 8, pr->last_ns);
    store_put_be64(val + 16, pr->n);
    rocksdb_writebatch_put_cf(b, s->cf[CF_RUNS], key, sizeof key, val, sizeof val);
    pthread_mutex_lock(&s->lock);
    if (rc == 0 && (rc = store_get_json(s, id, TAG_INFO, &facts)) == 0) {
        if (json_object_set_new(facts, "trimmed_before_ns", json_u64(before_ns)) < 0)
            rc = OBS_ENOMEM;
        if (rc == 0)
            rc = store_put_json(b, s, id, TAG_INFO, facts);
        if (rc == 0)
            rc = store_batch_write(s, b, 0, "retention: delete a run's oldest points");
    }
    pthread_mutex_unlock(&s->lock);
    json_decref(facts);
    rocksdb_writebatch_destroy(b);
    if (rc < 0 || !reclaim)
        return rc;
    store_put_be64(lo, id);
    store_put_be64(hi, id + 1);
    compact(s, CF_SERIES, lo, 8, hi, 8);
    compact(s, CF_HISTOGRAMS, lo, 8, hi, 8);
    if (s->cf[CF_PROFILES])
        compact(s, CF_PROFILES, lo, 8, hi, 8);
    return 0;
}

int store_set_retention(store *s, uint64_t max_age_ns, uint64_t max_bytes)
{
    s->max_age_ns = max_age_ns;
    s->max_bytes = max_bytes;
    return store_apply_retention(s, 0, NULL);
}

int store_apply_retention(store *s, uint64_t keep_run_id, store_retention_result *res)
{
    store_retention_result r = {0};
    if (res)
        *res = r;
    if (s->readonly)
        return OBS_EINVAL;
    if (!s->max_age_ns && !s->max_bytes)
        return 0;
    run_entry *runs = NULL;
    size_t n = 0, n_del = 0;
    int rc = list_runs(s, &runs, &n);
    if (rc < 0)
        return rc;
    uint64_t *del = n ? malloc(n * sizeof *del) : NULL;
    if (n && !del) {
        free(runs);
        return OBS_ENOMEM;
    }
    uint64_t now = store_wall_ns();
    uint64_t cutoff = s->max_age_ns && now > s->max_age_ns ? now - s->max_age_ns : 0;
    r.bytes_before = store_disk_bytes(s);
    uint64_t est = r.bytes_before;
    uint64_t target = s->max_bytes - s->max_bytes / 10; /* room before the next pass */
    for (size_t i = 0; i < n; i++) {
        if (runs[i].id == keep_run_id || runs[i].running)
            continue;
        int old = cutoff && runs[i].end_ns < cutoff;
        int big = s->max_bytes && est > target;
        if (!old && !big)
            continue;
        uint64_t b = run_bytes(s, runs[i].id);
        est = est > b ? est - b : 0;
        del[n_del++] = runs[i].id;
    }
    if ((rc = delete_runs(s, del, n_del)) == 0)
        r.n_runs_deleted = n_del;
    if (rc == 0 && n_del)
        host_log(NULL, OBS_LOG_INFO,
                 "store '%s': retention deleted %zu run(s) (oldest %" PRIu64 ")", s->path, n_del,
                 del[0]);

    /* The run being recorded, alone over the limits: its oldest points. */
    store_progress pr;
    uint64_t trim = 0;
    int reclaim = 0;
    if (rc == 0 && keep_run_id && store_get_progress(s, keep_run_id, &pr) == 0 && pr.n > 1) {
        /* By age in steps of a tenth of max_age: each cut is a range
         * deletion per metric, which reads pass over until compacted. */
        if (cutoff > pr.first_ns && cutoff - pr.first_ns >= s->max_age_ns / 10)
            trim = cutoff;
        uint64_t now_bytes = store_disk_bytes(s);
        if (s->max_bytes && now_bytes > s->max_bytes) {
            uint64_t mine = run_bytes(s, keep_run_id);
            uint64_t others = now_bytes > mine ? now_bytes - mine : 0;
            /* Keep the newest share of the run that fits under target. */
            double keep = mine && target > others ? (double)(target - others) / (double)mine : 0;
            keep = keep < 0.1 ? 0.1 : keep > 1 ? 1 : keep;
            uint64_t t = pr.last_ns - (uint64_t)(keep * (double)(pr.last_ns - pr.first_ns));
            reclaim = t > pr.first_ns;
            trim = t > trim ? t : trim;
        }
        if (trim > pr.first_ns && (rc = trim_run(s, keep_run_id, trim, &pr, reclaim)) == 0)
            r.trimmed_before_ns = trim;
        if (r.trimmed_before_ns && reclaim)
            host_log(NULL, OBS_LOG_INFO,
                     "store '%s': retention deleted the points of run %" PRIu64
                     " older than %.0f s before its last snapshot",
                     s->path, keep_run_id, (double)(pr.last_ns - trim) / 1e9);
    }
    r.bytes_after = store_disk_bytes(s);
    free(del);
    free(runs);
    if (res)
        *res = r;
    return rc;
}
