/*
 * recorder.c - the thread that puts a snapshot of every metric into the
 * store once per interval while a pipeline runs (see store.h).
 *
 * Ticks are on an absolute CLOCK_MONOTONIC schedule (start + k * interval),
 * so points stay evenly spaced however long a write takes; a tick missed
 * because a write was slow is skipped, not made up with a burst. The
 * recorder only reads the pipeline through pipeline_snapshot(), which is
 * safe from any thread, and never touches stage counters directly.
 * recorder_stop() wakes the thread at once, joins it, and stores one last
 * snapshot so the series always ends with the pipeline's final state.
 * Once a minute it also applies the store's retention limits
 * (store_apply_retention), so a long run keeps the store bounded.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "engine/host.h"
#include "engine/plugin.h"
#include "engine/snapshot.h"
#include "store/recorder.h"

struct recorder {
    store *store;
    uint64_t run_id;
    const struct pipeline *pipeline;
    uint64_t interval_ns;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop; /* under lock */
    uint64_t n_stored, n_failed;
    uint64_t n_ticks;
    int failure_logged;
};

/* How often the recorder applies the store's retention limits. */
#define RETENTION_EVERY_TICKS 60

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Takes and stores one snapshot. Only one thread at a time calls this (the
 * recorder thread, then recorder_stop() after joining it). */
static void record_one(recorder *r)
{
    obs_snapshot snap;
    int rc = pipeline_snapshot(r->pipeline, &snap);
    if (rc == 0) {
        rc = store_put_snapshot(r->store, r->run_id, &snap);
        snapshot_free(&snap);
    }
    if (rc == 0) {
        r->n_stored++;
        return;
    }
    r->n_failed++;
    if (!r->failure_logged) {
        /* Once: a full disk would otherwise log every second. */
        host_log(NULL, OBS_LOG_ERROR,
                 "recorder: run %" PRIu64 ": cannot store a snapshot (%s); the run goes on, "
                 "later failures are counted",
                 r->run_id, obs_strerror(rc));
        r->failure_logged = 1;
    }
}

static void *recorder_main(void *arg)
{
    recorder *r = arg;
    uint64_t next = mono_ns() + r->interval_ns;
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        struct timespec ts = {.tv_sec = (time_t)(next / 1000000000u),
                              .tv_nsec = (long)(next % 1000000000u)};
        int rc = pthread_cond_timedwait(&r->wake, &r->lock, &ts);
        if (r->stop)
            break;
        if (rc != ETIMEDOUT && mono_ns() < next)
            continue; /* spurious wake-up */
        pthread_mutex_unlock(&r->lock);
        record_one(r);
        /* Here, not in another thread: trimming the run being recorded
         * rewrites its progress record, which only the recorder writes. */
        if (++r->n_ticks % RETENTION_EVERY_TICKS == 0)
            store_apply_retention(r->store, r->run_id, NULL);
        uint64_t now = mono_ns();
        next += r->interval_ns;
        if (next <= now) /* a slow write: skip the ticks it missed */
            next += ((now - next) / r->interval_ns + 1) * r->interval_ns;
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

int recorder_start(store *s, uint64_t run_id, const struct pipeline *p, uint64_t interval_ns,
                   recorder **out)
{
    *out = NULL;
    if (interval_ns == 0 || !s || !p)
        return OBS_EINVAL;
    recorder *r = calloc(1, sizeof(*r));
    if (!r)
        return OBS_ENOMEM;
    r->store = s;
    r->run_id = run_id;
    r->pipeline = p;
    r->interval_ns = interval_ns;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&r->lock, NULL);

    /* Signals belong to the main thread (hostd's SIGINT/SIGTERM handling):
     * the recorder starts with all of them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&r->thread, NULL, recorder_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&r->wake);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return OBS_ENOMEM;
    }
    pthread_setname_np(r->thread, "obs-recorder");
    *out = r;
    return 0;
}

void recorder_stop(recorder *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    record_one(r);
    if (r->n_failed)
        host_log(NULL, OBS_LOG_ERROR,
                 "recorder: run %" PRIu64 ": %" PRIu64 " of %" PRIu64 " snapshots not stored",
                 r->run_id, r->n_failed, r->n_failed + r->n_stored);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
