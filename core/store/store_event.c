/*
 * store_event.c - the events of a run (hot swaps, experiments' verdicts):
 * store_put_event() appends one JSON object under run_id | 'e' | wall ns |
 * sequence in the "runs" family, written at once through the WAL so it
 * survives a kill of hostd, and store_events_json() reads a run's events
 * back in time order (store_run_json includes them as "events"). The
 * process-wide sequence number keeps two events at the same nanosecond
 * apart and in the order they were written.
 */
#include "store/store_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "observatory/stage.h"
#include "util/json_u64.h"

static _Atomic uint64_t event_seq;

int store_put_event(store *s, uint64_t run_id, uint64_t t_wall_ns, const json_t *event)
{
    char key[25];
    char *text = json_dumps(event, JSON_COMPACT);
    if (!text || store_fault_hit()) {
        free(text);
        return OBS_ENOMEM;
    }
    store_info_key(key, run_id, TAG_EVENT);
    store_put_be64(key + 9, t_wall_ns);
    store_put_be64(key + 17, atomic_fetch_add(&event_seq, 1));
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_writebatch_put_cf(b, s->cf[CF_RUNS], key, sizeof(key), text, strlen(text));
    free(text);
    int rc = store_batch_write(s, b, 0, "event");
    rocksdb_writebatch_destroy(b);
    return rc;
}

static int collect_event(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    if (klen != 25)
        return 0;
    json_t *e = json_loadb(v, vlen, 0, NULL);
    if (e) {
        if (!json_object_get(e, "t_ns"))
            json_object_set_new(e, "t_ns", json_u64(store_get_be64(k + 9)));
        json_array_append_new(arg, e);
    }
    return 0;
}

int store_events_json(store *s, uint64_t run_id, json_t **out)
{
    char lo[9], hi[9];
    store_info_key(lo, run_id, TAG_EVENT);
    store_info_key(hi, run_id, TAG_EVENT + 1);
    json_t *arr = json_array();
    if (!arr)
        return OBS_ENOMEM;
    int rc = store_scan(s, CF_RUNS, lo, sizeof(lo), hi, sizeof(hi), collect_event, arr);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}
