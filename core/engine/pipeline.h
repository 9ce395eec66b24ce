/*
 * pipeline.h - building and running a pipeline of stage threads.
 *
 * pipeline_create() resolves and checks every plugin, validates parameters
 * and initialises the instances in order; nothing runs yet. pipeline_run()
 * starts one thread per stage, connected by SPSC rings of batches, and
 * returns when the run ends (duration reached, pipeline_stop(), or the
 * generator's end of data) and everything accepted has drained: the
 * generator stops, each stage processes what is queued, flushes and closes
 * its output ring, and sinks flush last. pipeline_destroy() calls fini in
 * pipeline order.
 */
#ifndef OBS_PIPELINE_H
#define OBS_PIPELINE_H

#include <stdio.h>

#include "engine/stage.h"

/* Builds the pipeline described by cfg (borrowed; must outlive it). Extra
 * plugin directories (e.g. from the command line) are searched before the
 * configured ones. Returns 0 or a negative code with `err` set; on failure
 * *out is NULL and everything initialised so far has been finalised. */
int pipeline_create(const obs_config *cfg, char *const *extra_dirs, size_t n_extra, pipeline **out,
                    char *err, size_t errlen);
/* What hostd --check runs: every check pipeline_create makes (plugins
 * resolved and loaded, descriptors, parameters, parallelism, the batch
 * budget) without the side effects of starting: no plugin init (a plugin
 * may connect to a server or create files there), no batch pool. The
 * result only names its stages and plugins; pipeline_destroy frees it. */
int pipeline_create_checked(const obs_config *cfg, char *const *extra_dirs, size_t n_extra,
                            pipeline **out, char *err, size_t errlen);

/* Runs until the configured duration, pipeline_stop(), end of data or
 * `stop_check` (may be NULL; polled every 20 ms from the calling thread, e.g.
 * hostd checks for SIGINT/SIGTERM there) returns nonzero, then drains. Stage
 * threads start with all signals blocked. Returns 0, or a negative code when
 * a stage failed fatally (what was accepted has still drained). */
int pipeline_run(pipeline *p, int (*stop_check)(void *), void *arg);
/* The drain after the stop is bounded by run.drain_timeout, and cut short
 * when stop_check returns 2; pipeline_run then logs which stages were still
 * running (pipeline_stuck), sets p->abandoned and returns OBS_EAGAIN. Such
 * a pipeline's threads may still run: report from it, then exit the process
 * without pipeline_destroy. */

/* Describes the stage threads still running ("'parse' (in a callback of
 * xf_slow for 12.0 s), ..."): into buf, returns how many. */
size_t pipeline_stuck(const pipeline *p, char *buf, size_t len);

/* Asks the run to end; safe from any thread (not from a signal handler). */
void pipeline_stop(pipeline *p);

/* Calls fini on every initialised instance, sinks first and the generator
 * last (a sink may release a source's batch until its fini), and frees. */
void pipeline_destroy(pipeline *p);

#endif /* OBS_PIPELINE_H */
