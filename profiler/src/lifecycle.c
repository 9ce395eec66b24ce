/*
 * lifecycle.c - the top of the profiler: obs_prof_init and
 * obs_prof_shutdown, which bring the other parts up and down in order, and
 * obs_prof_get_stats, which gathers their figures. It is the only file that
 * knows every part; each of those knows only the parts below it, and where
 * a lower part must reach a higher one it is handed a hook from here (the
 * module registry gets the collector's drain).
 *
 * Order at init: the shared state (thread and tag tables), the module
 * registry (and the loader's range for the handler), then for the native
 * backend the SIGPROF handler and the collector thread. Shutdown goes the
 * other way: the gperftools backend and the collector stop (no consumers,
 * timers disarmed), the timers are deleted, the handler goes before the
 * table it writes into, and the registry goes last, so that every sample
 * could still be located.
 */
#include <stdatomic.h>
#include <string.h>

#include "collector.h"
#include "gperf.h"
#include "modules.h"
#include "obs_profiler.h"
#include "observatory/stage.h"
#include "sampler.h"
#include "state.h"
#include "util.h"

/* Fills the defaults of cfg and checks its ranges. 0, or OBS_EINVAL with a
 * message in err. */
static int config_normalise(obs_prof_config *cfg, char *err, size_t errlen)
{
    if (cfg->backends == 0)
        cfg->backends = OBS_PROF_BACKEND_NATIVE;
    if (cfg->backends == (OBS_PROF_BACKEND_NATIVE | OBS_PROF_BACKEND_GPERFTOOLS)) {
        prof_err(err, errlen,
                 "profiler: backends 'native' and 'gperftools' both requested: they cannot be active "
                 "at once (both sample on SIGPROF, and gperftools disables itself when SIGPROF "
                 "already has a handler); choose one");
        return OBS_EINVAL;
    }
    if (cfg->backends & ~(unsigned)(OBS_PROF_BACKEND_NATIVE | OBS_PROF_BACKEND_GPERFTOOLS)) {
        prof_err(err, errlen, "profiler: unknown backend bits 0x%x", cfg->backends);
        return OBS_EINVAL;
    }
    if (cfg->hz == 0)
        cfg->hz = 99;
    if (cfg->hz > 10000) {
        prof_err(err, errlen, "profiler: hz %u out of range 1..10000", cfg->hz);
        return OBS_EINVAL;
    }
    if (cfg->unwinder > OBS_PROF_UNWIND_FP) {
        prof_err(err, errlen, "profiler: unknown unwinder %u (0 libunwind, 1 frame pointers)",
                 cfg->unwinder);
        return OBS_EINVAL;
    }
    if (cfg->max_depth == 0)
        cfg->max_depth = 64;
    if (cfg->max_depth > OBS_PROF_MAX_DEPTH) {
        prof_err(err, errlen, "profiler: max_depth %u above %d", cfg->max_depth,
                 OBS_PROF_MAX_DEPTH);
        return OBS_EINVAL;
    }
    if (cfg->ring_slots == 0)
        cfg->ring_slots = 256;
    if (cfg->ring_slots > (1u << 20)) {
        prof_err(err, errlen, "profiler: ring_slots %u above 1048576", cfg->ring_slots);
        return OBS_EINVAL;
    }
    uint32_t slots = 16;
    while (slots < cfg->ring_slots)
        slots *= 2;
    cfg->ring_slots = slots;
    if (cfg->max_threads == 0)
        cfg->max_threads = 64;
    if (cfg->max_threads > 4096) {
        prof_err(err, errlen, "profiler: max_threads %u above 4096", cfg->max_threads);
        return OBS_EINVAL;
    }
    if (cfg->drain_ms == 0)
        cfg->drain_ms = 20;
    if (cfg->max_request_seconds == 0)
        cfg->max_request_seconds = 60;
    return 0;
}

int obs_prof_init(const obs_prof_config *cfg_in, char *err, size_t errlen)
{
    obs_prof_config cfg;
    if (cfg_in)
        cfg = *cfg_in;
    else
        memset(&cfg, 0, sizeof cfg);
    int rc = config_normalise(&cfg, err, errlen);
    if (rc != 0)
        return rc;

    int expected = 0;
    if (!atomic_compare_exchange_strong(&prof_initialised, &expected, -1)) {
        prof_err(err, errlen, "profiler: already initialised");
        return OBS_EAGAIN;
    }
    if ((rc = prof_state_init(&cfg)) != 0) {
        prof_err(err, errlen, "profiler: out of memory");
        goto fail;
    }
    /* Addresses sampled before the registry changes are located against
     * it as it was: the collector drains first. */
    if ((rc = prof_modules_init(prof_collector_drain)) != 0) {
        prof_err(err, errlen, "profiler: module scan failed");
        goto fail_state;
    }
    prof_modules_loader_range(&prof_g.ldso_lo, &prof_g.ldso_hi);
    if (cfg.backends & OBS_PROF_BACKEND_NATIVE) {
        if ((rc = prof_sampler_install(err, errlen)) != 0)
            goto fail_modules;
        if ((rc = prof_collector_start()) != 0) {
            prof_err(err, errlen, "profiler: cannot start the collector thread");
            prof_sampler_uninstall();
            goto fail_modules;
        }
    }
    atomic_store(&prof_initialised, 1);
    return 0;
fail_modules:
    prof_modules_fini();
fail_state:
    prof_state_fini();
fail:
    atomic_store(&prof_initialised, 0);
    return rc;
}

void obs_prof_shutdown(void)
{
    int expected = 1;
    if (!atomic_compare_exchange_strong(&prof_initialised, &expected, -1))
        return;
    prof_gperf_shutdown();
    if (prof_g.cfg.backends & OBS_PROF_BACKEND_NATIVE)
        prof_collector_stop(); /* ends consumers, disarms */
    prof_state_timers_delete();
    /* The handler goes before the table it writes into. */
    prof_sampler_uninstall();
    prof_state_fini();
    prof_modules_fini();
    atomic_store(&prof_initialised, 0);
}

void obs_prof_get_stats(obs_prof_stats *st)
{
    memset(st, 0, sizeof *st);
    if (atomic_load(&prof_initialised) != 1)
        return;
    prof_state_stats(st);
    st->n_modules = prof_modules_count();
    if (prof_g.cfg.backends & OBS_PROF_BACKEND_NATIVE)
        prof_collector_stats(st);
}
