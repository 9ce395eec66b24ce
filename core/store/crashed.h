/*
 * crashed.h - runs that a crashing plugin took down. The fatal-signal
 * handler (engine/crash.h) leaves a record file beside the store; the run's
 * facts in the store still say "incomplete" (the store could not be
 * written from a dying process). These calls join the two, so that every
 * reader (hostd runs and report, the HTTP run routes, the dashboard) says
 * "crashed" and can show the record.
 */
#ifndef OBS_STORE_CRASHED_H
#define OBS_STORE_CRASHED_H

#include <jansson.h>
#include <stdint.h>


/* The crash record of run `run_id` of the store at `store_dir`, malloc'd
 * and NUL-terminated (at most 64 KiB of it), or NULL when there is none. */
char *store_crash_text(const char *store_dir, uint64_t run_id);

/* When `run` (facts from store_runs_json or store_run_json) is
 * "incomplete" (or still "running", read before a writer marked it) and has
 * a crash record: sets "status" to "crashed" and, with
 * `with_text`, "crash" to the record. Returns 1 when it did, else 0. */
int store_crash_annotate(const char *store_dir, json_t *run, int with_text);

#endif /* OBS_STORE_CRASHED_H */
