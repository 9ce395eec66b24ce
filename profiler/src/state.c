/*
 * state.c - the shared state of the sampler and the collector: the global
 * struct with the thread table and the tag table, their allocation and
 * release, and the per-thread CPU timers' arming. Timers run only while a
 * consumer exists (the collector counts consumers and arms through here),
 * so an idle profiler costs nothing. Interface and place in the whole:
 * state.h.
 */
#include <stdlib.h>
#include <string.h>

#include "obs_profiler.h"
#include "observatory/stage.h"
#include "profile.h"
#include "state.h"

prof_global prof_g = {.lock = PTHREAD_MUTEX_INITIALIZER};
_Atomic int prof_initialised;

int obs_prof_active(void)
{
    return atomic_load(&prof_initialised) == 1;
}

int prof_state_init(const obs_prof_config *cfg)
{
    pthread_mutex_lock(&prof_g.lock);
    prof_g.cfg = *cfg;
    prof_g.sample_size = sizeof(prof_sample) + cfg->max_depth * sizeof(uintptr_t);
    prof_g.ring_mask = cfg->ring_slots - 1;
    prof_g.threads = calloc(cfg->max_threads, sizeof *prof_g.threads);
    prof_g.tagdb = prof_profile_new();
    prof_g.armed = 0;
    prof_g.n_consumers = 0;
    atomic_store(&prof_g.n_samples, 0);
    atomic_store(&prof_g.weight, 0);
    atomic_store(&prof_g.in_loader, 0);
    atomic_store(&prof_g.unwind_failed, 0);
    atomic_store(&prof_g.handler_ns, 0);
    /* Tag 0 is the empty tag, what a thread attached without labels has. */
    uint32_t empty;
    int rc = 0;
    if (!prof_g.threads || !prof_g.tagdb || prof_profile_tag(prof_g.tagdb, NULL, 0, &empty) != 0) {
        free(prof_g.threads);
        prof_g.threads = NULL;
        if (prof_g.tagdb)
            obs_prof_profile_free(prof_g.tagdb);
        prof_g.tagdb = NULL;
        rc = OBS_ENOMEM;
    }
    pthread_mutex_unlock(&prof_g.lock);
    return rc;
}

void prof_state_timers_delete(void)
{
    pthread_mutex_lock(&prof_g.lock);
    for (uint32_t i = 0; i < prof_g.cfg.max_threads; i++) {
        prof_thread *t = &prof_g.threads[i];
        if (t->timer_ok)
            timer_delete(t->timer);
        t->timer_ok = 0;
    }
    pthread_mutex_unlock(&prof_g.lock);
}

void prof_state_fini(void)
{
    pthread_mutex_lock(&prof_g.lock);
    for (uint32_t i = 0; i < prof_g.cfg.max_threads; i++)
        free(prof_g.threads[i].ring);
    free(prof_g.threads);
    prof_g.threads = NULL;
    obs_prof_profile_free(prof_g.tagdb);
    prof_g.tagdb = NULL;
    pthread_mutex_unlock(&prof_g.lock);
}

void prof_state_timer_set(prof_thread *t, int on)
{
    if (!t->timer_ok)
        return;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (on) {
        uint64_t period = 1000000000ULL / prof_g.cfg.hz;
        its.it_interval.tv_sec = (time_t)(period / 1000000000ULL);
        its.it_interval.tv_nsec = (long)(period % 1000000000ULL);
        its.it_value = its.it_interval;
    }
    timer_settime(t->timer, 0, &its, NULL);
}

void prof_state_arm_locked(int on)
{
    prof_g.armed = on;
    for (uint32_t i = 0; i < prof_g.cfg.max_threads; i++)
        if (atomic_load(&prof_g.threads[i].state) == 1)
            prof_state_timer_set(&prof_g.threads[i], on);
}

void prof_state_stats(obs_prof_stats *st)
{
    st->n_samples = atomic_load(&prof_g.n_samples);
    st->weight = atomic_load(&prof_g.weight);
    st->in_loader = atomic_load(&prof_g.in_loader);
    st->unwind_failed = atomic_load(&prof_g.unwind_failed);
    st->handler_ns = atomic_load(&prof_g.handler_ns);
    pthread_mutex_lock(&prof_g.lock);
    for (uint32_t i = 0; i < prof_g.cfg.max_threads; i++) {
        st->n_threads += atomic_load(&prof_g.threads[i].state) == 1;
    }
    pthread_mutex_unlock(&prof_g.lock);
}
