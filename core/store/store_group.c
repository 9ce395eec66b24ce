/*
 * store_group.c - the runs of one pipeline split over several processes
 * (group.h): gathered by run.id from several stores, ordered by start, and
 * summed up end to end.
 */
#include "store/group.h"

#include <stdlib.h>
#include <string.h>

#include "observatory/stage.h"

static int by_start(const void *a, const void *b)
{
    const store_group_run *x = a, *y = b;
    return (x->start_ns > y->start_ns) - (x->start_ns < y->start_ns);
}

void store_group_free(store_group_run *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(g[i].run);
    free(g);
}

int store_group_collect(store *const *stores, size_t n_stores, const char *run_id,
                        store_group_run **out, size_t *n_out)
{
    store_group_run *g = NULL;
    size_t n = 0, cap = 0;
    int rc = OBS_OK;
    for (size_t k = 0; k < n_stores && rc == OBS_OK; k++) {
        json_t *runs = NULL, *r;
        size_t i;
        if ((rc = store_runs_json(stores[k], &runs)) < 0)
            break;
        json_array_foreach(runs, i, r)
        {
            const char *rid = json_string_value(json_object_get(r, "run_id"));
            json_t *run = NULL;
            if (!rid || strcmp(rid, run_id) != 0 ||
                store_run_json(stores[k], (uint64_t)json_integer_value(json_object_get(r, "id")),
                               &run) < 0)
                continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                store_group_run *ng = realloc(g, ncap * sizeof *g);
                if (!ng) {
                    json_decref(run);
                    rc = OBS_ENOMEM;
                    break;
                }
                g = ng;
                cap = ncap;
            }
            g[n++] = (store_group_run){k, run, json_integer_value(json_object_get(r, "start_ns"))};
        }
        json_decref(runs);
    }
    if (rc < 0) {
        store_group_free(g, n);
        return rc;
    }
    if (n)
        qsort(g, n, sizeof *g, by_start);
    *out = g;
    *n_out = n;
    return OBS_OK;
}

size_t store_group_last(const store_group_run *g, size_t n)
{
    size_t li = n - 1;
    int64_t last_end = -1;
    for (size_t i = 0; i < n; i++) {
        json_t *end = json_object_get(g[i].run, "end_ns");
        if (json_is_object(json_object_get(g[i].run, "report")) && json_is_integer(end) &&
            json_integer_value(end) > last_end) {
            last_end = json_integer_value(end);
            li = i;
        }
    }
    return li;
}

json_t *store_group_report_stage(const json_t *run, int which)
{
    json_t *st = json_object_get(json_object_get(run, "report"), "stages");
    size_t n = json_array_size(st);
    return n ? json_array_get(st, which < 0 ? n - 1 : 0) : NULL;
}

/* {process, stage} naming where an end-to-end figure comes from, or null. */
static json_t *origin(size_t process, const json_t *stage)
{
    const char *name = json_string_value(json_object_get(stage, "name"));
    return name ? json_pack("{s:I, s:s}", "process", (json_int_t)process + 1, "stage", name)
                : json_null();
}

json_t *store_group_json(const store_group_run *g, size_t n, const char *run_id,
                         const char *const *paths)
{
    json_t *procs = json_array();
    if (!procs)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_deep_copy(g[i].run);
        if (!p || json_object_set_new(p, "store", json_integer((json_int_t)g[i].store)) < 0 ||
            json_object_set_new(p, "store_path", json_string(paths[g[i].store])) < 0 ||
            json_array_append_new(procs, p) < 0) {
            json_decref(p);
            json_decref(procs);
            return NULL;
        }
    }
    /* End to end only once every process has ended: before that the last
     * sink's figures would be those of a process that is not the last. */
    int running = 0;
    for (size_t i = 0; i < n; i++) {
        const char *st = json_string_value(json_object_get(g[i].run, "status"));
        running |= st && strcmp(st, "running") == 0;
    }
    json_t *e2e = json_null();
    if (n && !running) {
        size_t li = store_group_last(g, n);
        json_t *first = store_group_report_stage(g[0].run, 0);
        json_t *last = store_group_report_stage(g[li].run, -1);
        e2e = json_pack("{s:O?, s:O?, s:O?, s:o, s:o}", "records_generated",
                        json_object_get(first, "records_out"), "records_delivered",
                        json_object_get(last, "records_in"), "latency_ms",
                        json_object_get(last, "latency_ms"), "generated_by", origin(0, first),
                        "delivered_by", origin(li, last));
    }
    return json_pack("{s:s, s:o, s:o?}", "run_id", run_id, "processes", procs, "end_to_end", e2e);
}

/* One run.id's entry of store_groups_json, found or added. */
static json_t *group_entry(json_t *groups, const char *rid)
{
    size_t i;
    json_t *e;
    json_array_foreach(groups, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "run_id")), rid) == 0)
            return e;
    }
    e = json_pack("{s:s, s:i, s:[], s:n, s:n, s:s}", "run_id", rid, "processes", 0, "pipelines",
                  "start_ns", "end_ns", "status", "complete");
    if (!e || json_array_append_new(groups, e) < 0)
        return NULL;
    return e;
}

/* Folds one run of the list (store_runs_json) into its group's entry. */
static int group_add(json_t *e, const json_t *r)
{
    json_object_set_new(e, "processes",
                        json_integer(json_integer_value(json_object_get(e, "processes")) + 1));
    const char *pipe = json_string_value(json_object_get(r, "pipeline"));
    json_t *pipes = json_object_get(e, "pipelines");
    int seen = 0;
    size_t i;
    json_t *p;
    json_array_foreach(pipes, i, p) seen |= pipe && strcmp(json_string_value(p), pipe) == 0;
    if (pipe && !seen && json_array_append_new(pipes, json_string(pipe)) < 0)
        return OBS_ENOMEM;
    json_t *start = json_object_get(r, "start_ns"), *end = json_object_get(r, "end_ns");
    json_t *gs = json_object_get(e, "start_ns");
    if (json_is_integer(start) &&
        (!json_is_integer(gs) || json_integer_value(start) < json_integer_value(gs)))
        json_object_set(e, "start_ns", start);
    const char *status = json_string_value(json_object_get(r, "status"));
    const char *gst = json_string_value(json_object_get(e, "status"));
    if (status && strcmp(status, "running") == 0)
        json_object_set_new(e, "status", json_string("running"));
    else if (status && strcmp(gst, "complete") == 0)
        json_object_set_new(e, "status", json_string(status));
    /* The group's end: the last end, and none while a process runs. */
    if (strcmp(json_string_value(json_object_get(e, "status")), "running") == 0)
        json_object_set_new(e, "end_ns", json_null());
    else if (json_is_integer(end) &&
             json_integer_value(end) > json_integer_value(json_object_get(e, "end_ns")))
        json_object_set(e, "end_ns", end);
    return OBS_OK;
}

static int by_newest(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t sx = json_integer_value(json_object_get(x, "start_ns"));
    json_int_t sy = json_integer_value(json_object_get(y, "start_ns"));
    return (sx < sy) - (sx > sy);
}

int store_groups_json(store *const *stores, size_t n_stores, json_t **out)
{
    json_t *groups = json_array();
    int rc = groups ? OBS_OK : OBS_ENOMEM;
    for (size_t k = 0; k < n_stores && rc == OBS_OK; k++) {
        json_t *runs = NULL, *r;
        size_t i;
        if ((rc = store_runs_json(stores[k], &runs)) < 0)
            break;
        json_array_foreach(runs, i, r)
        {
            const char *rid = json_string_value(json_object_get(r, "run_id"));
            if (!rid)
                continue;
            json_t *e = group_entry(groups, rid);
            if (!e || (rc = group_add(e, r)) < 0) {
                rc = OBS_ENOMEM;
                break;
            }
        }
        json_decref(runs);
    }
    if (rc < 0) {
        json_decref(groups);
        return rc;
    }
    /* Newest first, as the run list. */
    size_t n = json_array_size(groups);
    json_t **v = malloc((n ? n : 1) * sizeof *v);
    json_t *sorted = json_array();
    if (!v || !sorted) {
        free(v);
        json_decref(sorted);
        json_decref(groups);
        return OBS_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(groups, i);
    qsort(v, n, sizeof *v, by_newest);
    for (size_t i = 0; i < n; i++)
        json_array_append(sorted, v[i]);
    free(v);
    json_decref(groups);
    *out = sorted;
    return OBS_OK;
}
