/*
 * store_db.c - the store's own access to RocksDB, shared by its other files
 * (declared in store_internal.h): fault injection (store_fail_after and the
 * fallible steps it counts), the atomic batch write every logical write
 * ends in with its accounting of failed writes (store_get_health), the JSON values and the progress
 * record of the "runs" family, and range scans. Nothing here knows what a run, a snapshot or a
 * profile is; the files that do (store_run.c, store_snapshot.c, store_read.c, store_event.c,
 * store_profiles.c) build their keys and call these.
 */
#include "store/store_internal.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/host.h"
#include "observatory/stage.h"
#include "util/json_u64.h"

static _Atomic uint64_t fault_countdown; /* 0: off; 1: failing */

void store_fail_after(uint64_t n)
{
    atomic_store(&fault_countdown, n);
}

/* True when this fallible step must fail. */
int store_fault_hit(void)
{
    uint64_t c = atomic_load(&fault_countdown);
    while (c > 1) {
        if (atomic_compare_exchange_weak(&fault_countdown, &c, c - 1))
            return 0;
    }
    return c == 1;
}

void *store_xmalloc(size_t n)
{
    return store_fault_hit() ? NULL : malloc(n);
}

uint64_t store_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ISO 8601 UTC with milliseconds, e.g. 2026-11-27T12:31:38.123Z. */
void store_iso_time(uint64_t ns, char *buf, size_t len)
{
    time_t sec = (time_t)(ns / 1000000000u);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t k = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, len - k, ".%03uZ", (unsigned)(ns / 1000000u % 1000u));
}

void store_log_db_error(const store *s, const char *what, char *err)
{
    host_log(NULL, OBS_LOG_ERROR, "store '%s': %s: %s", s->path, what, err ? err : "failed");
    rocksdb_free(err);
}

/* How often a streak of failed writes is summed up in the log. */
#define STREAK_LOG_NS 60000000000ull

/* Counts a failed write and logs it when it starts a streak (a full disk
 * fails every write until space returns: one line, then a count). */
static void write_failed(store *s, const char *what, const char *why)
{
    atomic_fetch_add(&s->n_writes_failed, 1);
    uint64_t now = store_wall_ns();
    pthread_mutex_lock(&s->err_lock);
    if (why)
        snprintf(s->last_error, sizeof s->last_error, "%s", why);
    else
        why = s->last_error;
    s->streak_failed++;
    if (!s->failing) {
        s->failing = 1;
        s->streak_logged_ns = now;
        host_log(NULL, OBS_LOG_ERROR,
                 "store '%s': %s: %s; the run goes on: later failed writes are counted and "
                 "summed up once a minute",
                 s->path, what, why);
    } else if (now - s->streak_logged_ns >= STREAK_LOG_NS) {
        s->streak_logged_ns = now;
        host_log(NULL, OBS_LOG_ERROR, "store '%s': %" PRIu64 " writes failed so far (last: %s)",
                 s->path, s->streak_failed, why);
    }
    pthread_mutex_unlock(&s->err_lock);
}

static void write_ok(store *s)
{
    atomic_fetch_add(&s->n_writes, 1);
    pthread_mutex_lock(&s->err_lock);
    if (s->failing) {
        host_log(NULL, OBS_LOG_INFO, "store '%s': writing again after %" PRIu64 " failed writes",
                 s->path, s->streak_failed);
        s->failing = 0;
        s->streak_failed = 0;
    }
    pthread_mutex_unlock(&s->err_lock);
}

/* Before every write to the WAL: a deletion without the WAL (no key has
 * this name) in the "meta" family. It fails at once, touching nothing,
 * while RocksDB refuses writes after an error (a full disk), so the store
 * does not write before RocksDB has recovered; and it keeps a memtable
 * non-empty, which makes RocksDB's recovery flush it and move to a new WAL
 * file. Without that, a recovery with every memtable empty stays on the
 * WAL whose writer the failed write left broken, and in RocksDB 7.8 the
 * next append to it aborts the process (the same assertion as the info
 * log's, store.c). */
static int wal_gate(store *s)
{
    static const char probe[] = "\001wal-gate";
    char *err = NULL;
    rocksdb_delete_cf(s->db, s->wo_nowal, s->cf[CF_META], probe, sizeof probe - 1, &err);
    if (err) {
        rocksdb_free(err);
        return 0;
    }
    return 1;
}

/* Writes a batch; fault injection counts it as one step. */
int store_batch_write(store *s, rocksdb_writebatch_t *b, int sync, const char *what)
{
    if (s->readonly)
        return OBS_EINVAL;
    if (store_fault_hit()) {
        write_failed(s, what, "injected write failure");
        return OBS_EIO;
    }
    if (!wal_gate(s)) {
        write_failed(s, what, NULL); /* RocksDB still refuses writes */
        return OBS_EIO;
    }
    char *err = NULL;
    rocksdb_write(s->db, sync ? s->wo_sync : s->wo, b, &err);
    if (err) {
        write_failed(s, what, err);
        rocksdb_free(err);
        return OBS_EIO;
    }
    write_ok(s);
    return 0;
}

void store_get_health(store *s, store_health *h)
{
    memset(h, 0, sizeof *h);
    h->n_writes = atomic_load(&s->n_writes);
    h->n_writes_failed = atomic_load(&s->n_writes_failed);
    pthread_mutex_lock(&s->err_lock);
    h->failing = s->failing;
    snprintf(h->last_error, sizeof h->last_error, "%s", s->last_error);
    pthread_mutex_unlock(&s->err_lock);
}

int store_add_health(store *s, json_t *report)
{
    store_health h;
    store_get_health(s, &h);
    json_t *o = json_pack("{s:s, s:o, s:o, s:s?, s:b}", "path", s->path, "writes",
                          json_u64(h.n_writes + h.n_writes_failed), "writes_failed",
                          json_u64(h.n_writes_failed), "last_error",
                          h.n_writes_failed ? h.last_error : NULL, "failing", h.failing);
    if (!o || json_object_set_new(report, "store", o) < 0)
        return OBS_ENOMEM;
    return 0;
}

/* Reads one value of the "runs" family as JSON. Returns 0, OBS_ENOENT, or
 * OBS_EIO. *out is a new reference. */
int store_get_json(store *s, uint64_t run_id, char tag, json_t **out)
{
    char key[9], *err = NULL;
    size_t len = 0;
    store_info_key(key, run_id, tag);
    char *v = rocksdb_get_cf(s->db, s->ro, s->cf[CF_RUNS], key, sizeof(key), &len, &err);
    if (err) {
        store_log_db_error(s, "read run", err);
        return OBS_EIO;
    }
    if (!v)
        return OBS_ENOENT;
    json_error_t jerr;
    *out = json_loadb(v, len, 0, &jerr);
    rocksdb_free(v);
    if (!*out) {
        host_log(NULL, OBS_LOG_ERROR, "store '%s': run %" PRIu64 " '%c': bad JSON: %s", s->path,
                 run_id, tag, jerr.text);
        return OBS_EIO;
    }
    return 0;
}

int store_get_progress(store *s, uint64_t run_id, store_progress *pr)
{
    char key[9], *err = NULL;
    size_t len = 0;
    memset(pr, 0, sizeof(*pr));
    store_info_key(key, run_id, TAG_PROGRESS);
    char *v = rocksdb_get_cf(s->db, s->ro, s->cf[CF_RUNS], key, sizeof(key), &len, &err);
    if (err) {
        store_log_db_error(s, "read progress", err);
        return OBS_EIO;
    }
    if (v && len == 24) {
        pr->first_ns = store_get_be64(v);
        pr->last_ns = store_get_be64(v + 8);
        pr->n = store_get_be64(v + 16);
    }
    rocksdb_free(v);
    return 0;
}

int store_put_json(rocksdb_writebatch_t *b, store *s, uint64_t run_id, char tag, const json_t *j)
{
    char key[9];
    char *text = json_dumps(j, JSON_COMPACT);
    if (!text || store_fault_hit()) {
        free(text);
        return OBS_ENOMEM;
    }
    store_info_key(key, run_id, tag);
    rocksdb_writebatch_put_cf(b, s->cf[CF_RUNS], key, sizeof(key), text, strlen(text));
    free(text);
    return 0;
}

/* Does a run exist? 0, OBS_ENOENT or OBS_EIO. */
int store_run_exists(store *s, uint64_t run_id)
{
    json_t *facts = NULL;
    int rc = store_get_json(s, run_id, TAG_INFO, &facts);
    json_decref(facts);
    return rc;
}

/* Calls `fn` for each key of family `cf` in [lo, hi) (bytewise), stopping
 * when it returns nonzero. Returns 0 or OBS_EIO. */
int store_scan(store *s, int cf, const char *lo, size_t lo_len, const char *hi, size_t hi_len,
               int (*fn)(const char *k, size_t klen, const char *v, size_t vlen, void *arg),
               void *arg)
{
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, hi, hi_len);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[cf]);
    for (rocksdb_iter_seek(it, lo, lo_len); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        if (fn(k, klen, v, vlen, arg))
            break;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (err) {
        store_log_db_error(s, "scan", err);
        return OBS_EIO;
    }
    return 0;
}
