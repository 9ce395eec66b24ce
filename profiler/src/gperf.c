/*
 * gperf.c - the gperftools backend: gperftools' own CPU profiler
 * (ProfilerStartWithOptions) restricted to attached threads by its thread
 * filter, writing the classic profile file that google-pprof reads.
 *
 * It is exclusive with the native sampler, by configuration: both sample on
 * SIGPROF, and gperftools gives up silently when SIGPROF already has a
 * handler other than its own. libprofiler installs its handler when it is
 * loaded (with the program, before main); the native backend replaces it
 * while active and restores it on shutdown. Its rate is read once, at load,
 * from CPUPROFILE_FREQUENCY (default 100 Hz): set it in the environment.
 * gperftools uses the process CPU timer (ITIMER_PROF), so the signal lands
 * on whichever thread is running, and the filter keeps attached ones only.
 */
#include <dlfcn.h>
#include <gperftools/profiler.h>
#include <signal.h>
#include <string.h>

#include "prof_internal.h"

static int gperf_filter(void *arg)
{
    (void)arg;
    return prof_gperf_thread_filter_on(); /* one thread-local load: signal-safe */
}

int obs_prof_gperf_start(const char *path, char *err, size_t errlen)
{
    if (atomic_load(&prof_initialised) != 1) {
        prof_err(err, errlen, "profiler: not initialised");
        return OBS_ESTATE;
    }
    if (!(prof_g.cfg.backends & OBS_PROF_BACKEND_GPERFTOOLS)) {
        prof_err(err, errlen,
                 "profiler: the gperftools backend was not selected (the native sampler is: the "
                 "two are never active at once)");
        return OBS_EINVAL;
    }
    if (!path || !*path) {
        prof_err(err, errlen, "profiler: gperftools: an output path is required");
        return OBS_EINVAL;
    }
    struct sigaction sa;
    Dl_info di;
    sigaction(SIGPROF, NULL, &sa);
    void *h = (sa.sa_flags & SA_SIGINFO) ? (void *)sa.sa_sigaction : (void *)sa.sa_handler;
    if (h == (void *)SIG_DFL || h == (void *)SIG_IGN || !dladdr(h, &di) || !di.dli_fname ||
        !strstr(di.dli_fname, "libprofiler")) {
        prof_err(err, errlen,
                 "profiler: gperftools: SIGPROF's handler is not gperftools' (%s), so gperftools "
                 "disabled itself when it was loaded; it would record nothing",
                 h == (void *)SIG_DFL ? "default" : (dladdr(h, &di) && di.dli_fname) ? di.dli_fname : "unknown");
        return OBS_ESTATE;
    }
    pthread_mutex_lock(&prof_g.lock);
    if (prof_g.gperf_running) {
        pthread_mutex_unlock(&prof_g.lock);
        prof_err(err, errlen, "profiler: gperftools is already running");
        return OBS_EAGAIN;
    }
    struct ProfilerOptions opts;
    memset(&opts, 0, sizeof opts);
    opts.filter_in_thread = gperf_filter;
    if (!ProfilerStartWithOptions(path, &opts)) {
        pthread_mutex_unlock(&prof_g.lock);
        prof_err(err, errlen, "profiler: gperftools: cannot start writing '%s'", path);
        return OBS_EIO;
    }
    prof_g.gperf_running = 1;
    pthread_mutex_unlock(&prof_g.lock);
    return 0;
}

void obs_prof_gperf_stop(void)
{
    pthread_mutex_lock(&prof_g.lock);
    if (prof_g.gperf_running) {
        ProfilerFlush();
        ProfilerStop();
        prof_g.gperf_running = 0;
    }
    pthread_mutex_unlock(&prof_g.lock);
}

void prof_gperf_shutdown(void)
{
    obs_prof_gperf_stop();
}
