/*
 * store_read.c - reading runs back, for `hostd runs` / `hostd report` and the
 * HTTP API: the listing of runs and one run's facts with its report and
 * progress figures (store_runs_json, store_run_json), the points of one
 * metric over a time range and the names of a run's metrics
 * (store_series_json, store_metrics_json), and one stored histogram
 * (store_histogram_get, decoded by measure/histogram.c). Reads work on a
 * read-only store next to a writing hostd; nothing here writes. A run whose
 * end could not be written (a full disk) is shown with its pending end
 * (store_pending.c).
 */
#include "store/store_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/host.h"
#include "measure/histogram.h"
#include "observatory/stage.h"
#include "util/json_u64.h"

/* Adds the progress figures to a run's facts. */
static void add_progress(json_t *facts, const store_progress *pr)
{
    json_object_set_new(facts, "n_snapshots", json_u64(pr->n));
    json_object_set_new(facts, "first_snapshot_ns", pr->n ? json_u64(pr->first_ns) : json_null());
    json_object_set_new(facts, "last_snapshot_ns", pr->n ? json_u64(pr->last_ns) : json_null());
}

int store_runs_json(store *s, json_t **out)
{
    int rc = 0;
    json_t *arr = json_array();
    *out = NULL;
    if (!arr || store_fault_hit()) {
        json_decref(arr);
        return OBS_ENOMEM;
    }
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_RUNS]);
    for (rocksdb_iter_seek_to_last(it); rocksdb_iter_valid(it); rocksdb_iter_prev(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen != 9 || k[8] != TAG_INFO)
            continue;
        uint64_t run_id = store_get_be64(k);
        const char *v = rocksdb_iter_value(it, &vlen);
        json_t *facts = json_loadb(v, vlen, 0, NULL);
        if (!facts) {
            host_log(NULL, OBS_LOG_ERROR, "store '%s': run %" PRIu64 ": bad JSON, skipped", s->path,
                     run_id);
            continue;
        }
        /* The listing stays small: the config text is in store_run_json. */
        json_object_del(facts, "config_text");
        store_progress pr;
        if ((rc = store_get_progress(s, run_id, &pr)) < 0) {
            json_decref(facts);
            break;
        }
        add_progress(facts, &pr);
        char rkey[9];
        size_t rlen;
        char *err = NULL;
        store_info_key(rkey, run_id, TAG_REPORT);
        char *rv = rocksdb_get_cf(s->db, s->ro, s->cf[CF_RUNS], rkey, sizeof(rkey), &rlen, &err);
        rocksdb_free(err);
        json_t *pending_report = NULL;
        int pending = !rv && store_pending_apply(s, run_id, &facts, &pending_report) == 1;
        json_object_del(facts, "config_text");
        json_object_set_new(facts, "has_report", json_boolean(rv != NULL || pending_report));
        json_decref(pending_report);
        if (pending)
            add_progress(facts, &pr);
        rocksdb_free(rv);
        json_array_append_new(arr, facts);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        store_log_db_error(s, "list runs", err);
        rc = OBS_EIO;
    }
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

int store_run_json(store *s, uint64_t run_id, json_t **out)
{
    json_t *facts = NULL, *report = NULL;
    *out = NULL;
    int rc = store_get_json(s, run_id, TAG_INFO, &facts);
    if (rc < 0)
        return rc;
    rc = store_get_json(s, run_id, TAG_REPORT, &report);
    if (rc < 0 && rc != OBS_ENOENT) {
        json_decref(facts);
        return rc;
    }
    if (!report)
        /* The end of a run that could not be written: its pending file. */
        store_pending_apply(s, run_id, &facts, &report);
    json_object_set_new(facts, "report", report ? report : json_null());
    store_progress pr;
    if ((rc = store_get_progress(s, run_id, &pr)) < 0) {
        json_decref(facts);
        return rc;
    }
    add_progress(facts, &pr);
    json_t *events = NULL;
    if (store_events_json(s, run_id, &events) == 0)
        json_object_set_new(facts, "events", events);
    *out = facts;
    return 0;
}

static int series_point(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    json_t *arr = arg;
    if (klen < 8 + 1 + 8 || vlen != 8)
        return 0;
    json_array_append_new(arr, json_pack("[o, o]", json_u64(store_get_be64(k + klen - 8)),
                                         json_u64(store_get_be64(v))));
    return 0;
}

int store_series_json(store *s, uint64_t run_id, const char *metric, uint64_t from_ns,
                      uint64_t to_ns, json_t **out)
{
    *out = NULL;
    int rc = store_run_exists(s, run_id);
    if (rc < 0)
        return rc;
    size_t nlen = strlen(metric), klen = 8 + nlen + 1 + 8;
    char *lo = store_xmalloc(klen), *hi = store_xmalloc(klen);
    json_t *arr = json_array();
    if (!lo || !hi || !arr) {
        rc = OBS_ENOMEM;
        goto out;
    }
    store_put_be64(lo, run_id);
    memcpy(lo + 8, metric, nlen + 1);
    memcpy(hi, lo, 8 + nlen + 1);
    store_put_be64(lo + 8 + nlen + 1, from_ns);
    size_t hi_len = klen;
    if (to_ns == UINT64_MAX) {
        /* Everything after the separator: bump it to 0x01. */
        hi[8 + nlen] = 1;
        hi_len = 8 + nlen + 1;
    } else {
        store_put_be64(hi + 8 + nlen + 1, to_ns);
    }
    if ((rc = store_scan(s, CF_SERIES, lo, klen, hi, hi_len, series_point, arr)) < 0)
        goto out;
    *out = arr;
    arr = NULL;
out:
    json_decref(arr);
    free(lo);
    free(hi);
    return rc;
}

int store_metrics_json(store *s, uint64_t run_id, json_t **out)
{
    *out = NULL;
    int rc = store_run_exists(s, run_id);
    if (rc < 0)
        return rc;
    json_t *arr = json_array();
    if (!arr || store_fault_hit()) {
        json_decref(arr);
        return OBS_ENOMEM;
    }
    char prefix[8];
    store_put_be64(prefix, run_id);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_SERIES]);
    rocksdb_iter_seek(it, prefix, sizeof(prefix));
    /* One seek per metric: after reading a name, jump past all its points
     * by seeking to run | name | 0x01. */
    while (rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < 8 + 1 + 8 || memcmp(k, prefix, 8) != 0)
            break;
        size_t nlen = klen - 8 - 1 - 8;
        char *next = store_xmalloc(8 + nlen + 1);
        if (!next) {
            rc = OBS_ENOMEM;
            break;
        }
        memcpy(next, k, 8 + nlen);
        next[8 + nlen] = 1;
        json_array_append_new(arr, json_stringn(k + 8, nlen));
        rocksdb_iter_seek(it, next, 8 + nlen + 1);
        free(next);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        store_log_db_error(s, "list metrics", err);
        rc = OBS_EIO;
    }
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

int store_histogram_get(store *s, uint64_t run_id, const char *name, uint64_t at_ns, histogram *h,
                        uint64_t *t_ns)
{
    size_t nlen = strlen(name), klen = 8 + nlen + 1 + 8;
    char *key = store_xmalloc(klen);
    if (!key)
        return OBS_ENOMEM;
    store_put_be64(key, run_id);
    memcpy(key + 8, name, nlen + 1);
    store_put_be64(key + 8 + nlen + 1, at_ns);
    int rc = OBS_ENOENT;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_HISTOGRAMS]);
    rocksdb_iter_seek_for_prev(it, key, klen);
    if (rocksdb_iter_valid(it)) {
        size_t kl, vlen;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl == klen && memcmp(k, key, 8 + nlen + 1) == 0) {
            const char *v = rocksdb_iter_value(it, &vlen);
            rc = histogram_decode(v, vlen, h);
            if (rc == 0 && t_ns)
                *t_ns = store_get_be64(k + 8 + nlen + 1);
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    free(key);
    if (err) {
        store_log_db_error(s, "read histogram", err);
        rc = OBS_EIO;
    }
    return rc;
}
