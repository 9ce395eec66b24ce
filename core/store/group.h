/*
 * group.h - one pipeline split over several processes: the runs that share
 * a run.id (config run.id or hostd --run-id) across several stores, and
 * their end-to-end summary. Each process writes its own store; these calls
 * read any number of them, so that `hostd report --run-id`, `hostd compare
 * --run-id` and the dashboard (GET /api/v1/groups) show the processes of
 * one pipeline together.
 */
#ifndef OBS_STORE_GROUP_H
#define OBS_STORE_GROUP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The run of one process of a group. */
typedef struct store_group_run {
    size_t store;     /* index into the stores given to store_group_collect */
    json_t *run;      /* facts and report (store_run_json); owned */
    int64_t start_ns; /* start of the run, for the order of the processes */
} store_group_run;

/* The runs with run.id `run_id` in stores[0..n_stores), in start order.
 * *n_out is 0 when there is none. Returns 0, OBS_ENOMEM, or a store error. */
int store_group_collect(store *const *stores, size_t n_stores, const char *run_id,
                        store_group_run **out, size_t *n_out);
void store_group_free(store_group_run *g, size_t n);

/* The process that delivered last: of the runs with a report, the one that
 * ended last (each process ends after its upstream did); n - 1 when none
 * has a report. n must be > 0. */
size_t store_group_last(const store_group_run *g, size_t n);

/* Stage `which` (0: first, -1: last) of a run's report, or NULL. Borrowed. */
json_t *store_group_report_stage(const json_t *run, int which);

/* {run_id, processes: [facts + report + store + store_path], end_to_end:
 * {records_generated, records_delivered, latency_ms, generated_by,
 * delivered_by}}: the generator of the process that started first, the sink
 * of store_group_last() with its latency from the intended time;
 * end_to_end is null while a process is still running.
 * `paths[k]` names store k. NULL when out of memory. */
json_t *store_group_json(const store_group_run *g, size_t n, const char *run_id,
                         const char *const *paths);

/* Every run.id in stores[0..n_stores), newest first: [{run_id, processes,
 * pipelines, start_ns, end_ns (null while one runs), status}]. Status is
 * "running" while a process runs, "complete" when every process ended
 * cleanly, else the status of the first that did not. Returns 0 or an
 * OBS_E* code. */
int store_groups_json(store *const *stores, size_t n_stores, json_t **out);

#endif /* OBS_STORE_GROUP_H */
