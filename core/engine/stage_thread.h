/*
 * stage_thread.h - the body of a stage thread, by kind of stage. The
 * thread's argument is its stage (engine/stage.h); it runs until its input
 * ends (or, for the generator, the run's stop or end of data), drains,
 * flushes and closes its output ring. pipeline_run() starts them.
 */
#ifndef OBS_STAGE_THREAD_H
#define OBS_STAGE_THREAD_H

#include "engine/stage.h"

/* The thread function for a stage of `kind` (pthread_create's argument:
 * the stage). */
void *(*stage_thread_fn(obs_kind kind))(void *);

#endif /* OBS_STAGE_THREAD_H */
