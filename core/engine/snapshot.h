/*
 * snapshot.h - reading a running (or finished) pipeline's figures: a
 * snapshot of every metric as plain data (measure/snapshot.h), the stage
 * counters at the warm-up and stop marks, and the end-of-run report built
 * from them (measure/report.h). Safe from any thread.
 */
#ifndef OBS_ENGINE_SNAPSHOT_H
#define OBS_ENGINE_SNAPSHOT_H

#include <jansson.h>
#include <stdio.h>

#include "engine/stage.h"
#include "measure/snapshot.h"

/* Takes a snapshot of `p`; safe from any thread at any time between
 * pipeline_create() and pipeline_destroy(), while the pipeline runs or not.
 * Returns 0 or OBS_ENOMEM. `out` is filled completely on success and must
 * be released with snapshot_free(). */
int pipeline_snapshot(const pipeline *p, obs_snapshot *out);

/* Reads the counters of stage s into a snapshot (stage_snapshot). */
void stage_snapshot_take(const stage *s, stage_snapshot *snap);

/* Snapshot of `p` plus its warm/stop marks, through report_json(). Call it
 * after pipeline_run() returned. NULL when out of memory. */
json_t *pipeline_report_json(const pipeline *p, const json_t *extra);

/* Prints the end-of-run report (per-stage records, rates, errors). */
void pipeline_report(const pipeline *p, FILE *f);

#endif /* OBS_ENGINE_SNAPSHOT_H */
