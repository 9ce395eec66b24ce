/*
 * tp_thread.c - a transform that runs a thread of its own.
 *
 * Real plugins start helper threads (compression, background flushes, a
 * client library's I/O thread). This one starts a worker in init that folds
 * the lengths of the records process() hands it into a checksum, and joins
 * it in fini. It checks the host contract around such threads: host->log is
 * callable from them, fini is called exactly once on a live instance, and
 * the plugin's code stays mapped while its thread runs (the loader never
 * dlcloses). flush waits until the worker has caught up and emits one record
 * "tp_thread worker_records=N" so tests can see the worker really ran.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include <observatory/stage.h>

typedef struct worker {
    const obs_host *host;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t submitted; /* records handed over by process (under lock) */
    uint64_t done;      /* records the worker has folded (under lock) */
    uint64_t checksum;  /* worker-private until `done` is published */
    bool stop;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;

    w->host->log(w->host, OBS_LOG_DEBUG, "tp_thread: worker started");
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->stop && w->done == w->submitted)
            pthread_cond_wait(&w->cond, &w->lock);
        if (w->done < w->submitted) {
            /* Stand-in for real background work. */
            w->checksum = w->checksum * 31 + (w->submitted - w->done);
            w->done = w->submitted;
            pthread_cond_broadcast(&w->cond);
            continue;
        }
        if (w->stop)
            break;
    }
    pthread_mutex_unlock(&w->lock);
    w->host->log(w->host, OBS_LOG_DEBUG, "tp_thread: worker stopping");
    return NULL;
}

static int thread_init(const obs_host *host, const obs_params *params, void **instance)
{
    (void)params;
    worker *w = host->alloc(host, sizeof *w);
    if (!w)
        return OBS_ENOMEM;
    *w = (worker){.host = host};
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        host->free(host, w);
        return OBS_EPLUGIN;
    }
    pthread_setname_np(w->thread, "tp_thread.w");
    *instance = w;
    return OBS_OK;
}

static int thread_process(void *instance, const obs_batch *in, obs_out *out)
{
    worker *w = instance;

    for (uint32_t i = 0; i < in->n_records; i++) {
        int rc = obs_out_pass(out, &in->records[i]);
        if (rc)
            return rc;
    }
    pthread_mutex_lock(&w->lock);
    w->submitted += in->n_records;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return OBS_OK;
}

static int thread_flush(void *instance, obs_out *out)
{
    worker *w = instance;
    char line[64];

    pthread_mutex_lock(&w->lock);
    while (w->done != w->submitted)
        pthread_cond_wait(&w->cond, &w->lock);
    uint64_t done = w->done;
    pthread_mutex_unlock(&w->lock);

    if (!out)
        return OBS_OK;
    int n = snprintf(line, sizeof line, "tp_thread worker_records=%llu", (unsigned long long)done);
    return obs_out_emit(out, line, (uint64_t)n, 0, w->host->now_ns());
}

static void thread_fini(void *instance)
{
    worker *w = instance;

    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    w->host->free(w->host, w);
}

static const obs_stage_desc desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "tp_thread",
    .version = "1.0.0",
    .description = "pass-through with a worker thread started in init, joined in fini",
    .init = thread_init,
    .process = thread_process,
    .flush = thread_flush,
    .fini = thread_fini,
};

OBS_DECLARE_STAGE(desc)
