/*
 * collector.h - the consuming side of the native backend: a thread that
 * drains the shared rings of state.h, turns addresses into locations
 * through the module registry while the modules are live, and adds each
 * stack to every open window (obs_prof_window_* and obs_prof_continuous_*
 * in the public header). It counts consumers and arms the threads' timers
 * through state.h; it never calls the sampler.
 *
 * Layer: above the shared state and the module registry. This module may
 * include: state, modules, profile, util.
 */
#ifndef OBS_PROF_COLLECTOR_H
#define OBS_PROF_COLLECTOR_H

#include <stdint.h>

#include "obs_profiler.h"

/* Starts the collector thread. 0 or OBS_ENOMEM. */
int prof_collector_start(void);
/* Ends the continuous window and every consumer, disarms the timers, joins
 * the thread; open windows become orphans (their end fails with
 * OBS_ESTATE). Harmless when not running. */
void prof_collector_stop(void);
/* Drains every ring now, from any thread; the module registry's
 * before-change hook. */
void prof_collector_drain(void);
/* Adds the collector's figures (stacks, drops, sink failures) to st. */
void prof_collector_stats(obs_prof_stats *st);
/* Sleeps until CLOCK_MONOTONIC deadline_ns or shutdown; returns 1 on shutdown. */
int prof_collector_wait(uint64_t deadline_ns);

#endif /* OBS_PROF_COLLECTOR_H */
