/*
 * report.h - the end-of-run report: built once as JSON from a snapshot,
 * printed from that JSON, stored with the run (store_run_end), and printed
 * again from the store by `hostd report RUN`, so the reprint is exactly
 * what was printed at the end of the run. `hostd compare A B` puts two
 * stored reports side by side. The JSON fields are documented in
 * docs/storage.md ("Report").
 */
#ifndef OBS_REPORT_H
#define OBS_REPORT_H

#include <jansson.h>
#include <stdio.h>

#include "measure/snapshot.h"

#define REPORT_FORMAT 1

/* Builds the report of a finished (or running) pipeline from `snap`.
 * `warm` and `stop` (arrays of snap->n_stages, in pipeline order, or both
 * NULL) are each stage's counters at the end of warm-up and when the stop
 * came: rates and busy% are over that measured window; without them, over
 * the whole run. Per-record costs (CPU ns, allocations) are over the whole
 * run. Every member of `extra` (an object, may be NULL; borrowed) is copied
 * into the top level, e.g. {"run_id": 3}. Returns a new reference, or NULL
 * when out of memory. */
json_t *report_json(const obs_snapshot *snap, const stage_snapshot *warm,
                    const stage_snapshot *stop, const json_t *extra);

/* Prints the table (and one detail line per stage) from a report built by
 * report_json(); tolerates missing fields ("-"). */
void report_print(const json_t *report, FILE *f);

/* Prints reports `a` and `b` side by side, per stage and figure, with the
 * relative change (b - a) / a. Stages are matched by name; a stage in one
 * report only is shown with "-" for the other. Each report's "run_id" and
 * "start" (when present) name it in the header. */
void report_compare(const json_t *a, const json_t *b, FILE *f);

#endif /* OBS_REPORT_H */
