/*
 * sampler.h - the sampling side of the native backend: the SIGPROF
 * handler and its installation, and the threads that attach themselves
 * (obs_prof_thread_attach and friends, in the public header). It writes
 * samples into the shared rings of state.h and calls nothing above it;
 * the lifecycle installs and removes the handler, and the gperftools
 * backend asks it which threads are attached.
 *
 * Layer: above the shared state. This module may include: state, profile,
 * util.
 */
#ifndef OBS_PROF_SAMPLER_H
#define OBS_PROF_SAMPLER_H

#include <stddef.h>

/* Installs the SIGPROF handler, keeping the one it replaces. 0, or OBS_EIO
 * with a message in err. */
int prof_sampler_install(char *err, size_t errlen);
/* Restores the handler prof_sampler_install replaced (a default action
 * becomes "ignore", so a signal still pending cannot end the process). */
void prof_sampler_uninstall(void);
/* Whether the calling thread is attached: one thread-local load, safe in
 * a signal handler (gperftools' thread filter calls it there). */
int prof_sampler_thread_attached(void);

#endif /* OBS_PROF_SAMPLER_H */
