/*
 * store_snapshot.c - writing a snapshot of a running pipeline
 * (store_put_snapshot, called by the recorder once a second): one point per
 * metric in the "series" family, one encoded histogram per stage histogram
 * in "histograms" (the encoding is measure/histogram.c's; the store only
 * places it under its key), and the run's progress record in "runs", all
 * in one WriteBatch without fsync so that a crash keeps a snapshot whole or
 * not at all. Metric names and key layout: docs/storage.md.
 */
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "measure/histogram.h"
#include "measure/snapshot.h"
#include "observatory/stage.h"

/* Appends run_id | name | 0x00 | t to `b` with an 8-byte big-endian value. */
static int add_point(rocksdb_writebatch_t *b, store *s, uint64_t run_id, const char *name,
                     uint64_t t_ns, uint64_t value)
{
    size_t nlen = strlen(name);
    char *key = store_xmalloc(8 + nlen + 1 + 8);
    if (!key)
        return OBS_ENOMEM;
    char val[8];
    store_put_be64(key, run_id);
    memcpy(key + 8, name, nlen + 1);
    store_put_be64(key + 8 + nlen + 1, t_ns);
    store_put_be64(val, value);
    rocksdb_writebatch_put_cf(b, s->cf[CF_SERIES], key, 8 + nlen + 1 + 8, val, sizeof(val));
    free(key);
    return 0;
}

/* Appends run_id | name | 0x00 | t to `b` with the encoding of `h`
 * (histogram_encode, measure/histogram.c); a NULL histogram is not stored. */
static int add_histogram(rocksdb_writebatch_t *b, store *s, uint64_t run_id, const char *name,
                         uint64_t t_ns, const histogram *h)
{
    if (!h)
        return 0;
    size_t nlen = strlen(name), klen = 8 + nlen + 1 + 8;
    size_t cap = histogram_encoded_len(h), vlen = 0;
    char *key = store_xmalloc(klen), *val = store_xmalloc(cap);
    if (!key || !val) {
        free(key);
        free(val);
        return OBS_ENOMEM;
    }
    store_put_be64(key, run_id);
    memcpy(key + 8, name, nlen + 1);
    store_put_be64(key + 8 + nlen + 1, t_ns);
    int rc = histogram_encode(h, val, cap, &vlen);
    if (rc == 0)
        rocksdb_writebatch_put_cf(b, s->cf[CF_HISTOGRAMS], key, klen, val, vlen);
    free(key);
    free(val);
    return rc;
}

/* Adds the points of one stage sample. */
static int add_stage(rocksdb_writebatch_t *b, store *s, uint64_t run_id, uint64_t t,
                     const stage_sample *st)
{
    char name[3 * SNAPSHOT_NAME_MAX + 32];
    int rc = 0;
#define P(field)                                                                                   \
    do {                                                                                           \
        snprintf(name, sizeof(name), "stage/%s/%s", st->name, #field);                             \
        if ((rc = add_point(b, s, run_id, name, t, st->field)) < 0)                                \
            return rc;                                                                             \
    } while (0)
    P(records_in);
    P(records_out);
    P(bytes_in);
    P(bytes_out);
    P(batches_in);
    P(batches_out);
    P(callback_errors);
    P(errors);
    P(callback_wall_ns);
    P(callback_cpu_ns);
    P(thread_cpu_ns);
    P(allocs);
    P(frees);
    P(alloc_bytes);
    P(blocked_ns);
    P(ring_occupancy);
    P(ring_capacity);
    if (strcmp(st->kind, "generator") == 0) {
        P(records_scheduled);
        P(late_records);
        P(idle_ns);
    }
#undef P
    for (uint32_t c = 0; c < st->n_counters; c++) {
        snprintf(name, sizeof(name), "stage/%s/counter/%s", st->name, st->counters[c].name);
        if ((rc = add_point(b, s, run_id, name, t, st->counters[c].value)) < 0)
            return rc;
    }
    static const char *const hname[3] = {"service", "lag", "latency"};
    const histogram *hs[3] = {st->service, st->lag, st->latency};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "stage/%s/%s", st->name, hname[i]);
        if ((rc = add_histogram(b, s, run_id, name, t, hs[i])) < 0)
            return rc;
    }
    return 0;
}

int store_put_snapshot(store *s, uint64_t run_id, const obs_snapshot *snap)
{
    int rc = 0;
    uint64_t t = snap->t_wall_ns;
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    if ((rc = add_point(b, s, run_id, "pipeline/state", t, (uint64_t)snap->state)) < 0)
        goto out;
    for (size_t i = 0; i < snap->n_stages; i++)
        if ((rc = add_stage(b, s, run_id, t, &snap->stages[i])) < 0)
            goto out;
    /* The progress record goes in the same batch: it never claims a point
     * that is not there. Only the recorder writes it, so no lock is needed
     * for the read-modify-write. */
    store_progress pr;
    if ((rc = store_get_progress(s, run_id, &pr)) < 0)
        goto out;
    if (pr.n == 0 || t < pr.first_ns)
        pr.first_ns = t;
    if (t > pr.last_ns)
        pr.last_ns = t;
    pr.n++;
    char key[9], val[24];
    store_info_key(key, run_id, TAG_PROGRESS);
    store_put_be64(val, pr.first_ns);
    store_put_be64(val + 8, pr.last_ns);
    store_put_be64(val + 16, pr.n);
    rocksdb_writebatch_put_cf(b, s->cf[CF_RUNS], key, sizeof(key), val, sizeof(val));
    rc = store_batch_write(s, b, 0, "store snapshot");
out:
    rocksdb_writebatch_destroy(b);
    return rc;
}
