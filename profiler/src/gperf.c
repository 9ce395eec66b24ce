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
 *
 * Interface and place in the whole: gperf.h. Which threads are attached is
 * the sampler's to say (sampler.h); the lifecycle stops this backend at
 * shutdown.
 */
#include <dlfcn.h>
#include <gperftools/profiler.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "gperf.h"
#include "obs_profiler.h"
#include "observatory/stage.h"
#include "sampler.h"
#include "state.h"
#include "util.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* serialises start and stop */
static int running;

static int gperf_filter(void *arg)
{
    (void)arg;
    return prof_sampler_thread_attached(); /* one thread-local load: signal-safe */
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
    pthread_mutex_lock(&lock);
    if (running) {
        pthread_mutex_unlock(&lock);
        prof_err(err, errlen, "profiler: gperftools is already running");
        return OBS_EAGAIN;
    }
    struct ProfilerOptions opts;
    memset(&opts, 0, sizeof opts);
    opts.filter_in_thread = gperf_filter;
    if (!ProfilerStartWithOptions(path, &opts)) {
        pthread_mutex_unlock(&lock);
        prof_err(err, errlen, "profiler: gperftools: cannot start writing '%s'", path);
        return OBS_EIO;
    }
    running = 1;
    pthread_mutex_unlock(&lock);
    return 0;
}

void obs_prof_gperf_stop(void)
{
    pthread_mutex_lock(&lock);
    if (running) {
        ProfilerFlush();
        ProfilerStop();
        running = 0;
    }
    pthread_mutex_unlock(&lock);
}

void prof_gperf_shutdown(void)
{
    obs_prof_gperf_stop();
}
