/*
 * gperf.h - the gperftools backend (gperftools' own CPU profiler, limited
 * to attached threads; obs_prof_gperf_start and _stop in the public
 * header). It asks the sampler which threads are attached; the lifecycle
 * stops it at shutdown.
 *
 * Layer: above the sampler. This module may include: sampler, state, util.
 */
#ifndef OBS_PROF_GPERF_H
#define OBS_PROF_GPERF_H

/* Stops gperftools' profiler if it runs, flushing its file. */
void prof_gperf_shutdown(void);

#endif /* OBS_PROF_GPERF_H */
