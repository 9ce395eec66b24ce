/*
 * tp_tls.c - a transform with thread-local state that has a destructor.
 *
 * Plugins (and the libraries they use) keep per-thread scratch buffers. The
 * fast path is a C11 _Thread_local pointer; the cleanup is a pthread key
 * destructor, which runs when the thread that used it exits - before or
 * after the plugin's fini, the plugin cannot know. Two consequences this
 * plugin exercises: the destructor must not touch host services (the
 * obs_host may be gone by then, so scratch memory comes from malloc, not
 * host->alloc), and the
 * plugin's code must still be mapped when the destructor runs (the loader
 * never dlcloses). The key is created once per process and never deleted
 * for the same reason. flush emits "tp_tls created=C destroyed=D" with
 * process-wide counts, so a test can run process() on threads that exit and
 * see that every scratch buffer was freed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <observatory/stage.h>

typedef struct scratch {
    uint64_t checksum;
    uint8_t buf[256];
} scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_rc;
static _Thread_local scratch *tls_scratch;
static atomic_uint_fast64_t n_created, n_destroyed;

static void scratch_destroy(void *p)
{
    free(p);
    atomic_fetch_add(&n_destroyed, 1);
}

static void scratch_key_create(void)
{
    scratch_key_rc = pthread_key_create(&scratch_key, scratch_destroy);
}

/* The calling thread's scratch, created on first use; NULL on failure. */
static scratch *scratch_get(void)
{
    if (tls_scratch)
        return tls_scratch;
    scratch *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (pthread_setspecific(scratch_key, s) != 0) {
        free(s);
        return NULL;
    }
    atomic_fetch_add(&n_created, 1);
    tls_scratch = s;
    return s;
}

static int tls_init(const obs_host *host, const obs_params *params, void **instance)
{
    (void)params;
    pthread_once(&scratch_once, scratch_key_create);
    if (scratch_key_rc != 0) {
        host->log(host, OBS_LOG_ERROR, "tp_tls: pthread_key_create failed (%d)", scratch_key_rc);
        return OBS_EPLUGIN;
    }
    *instance = (void *)host;
    return OBS_OK;
}

static int tls_process(void *instance, const obs_batch *in, obs_out *out)
{
    (void)instance;
    scratch *s = scratch_get();
    if (!s)
        return OBS_ENOMEM;
    for (uint32_t i = 0; i < in->n_records; i++) {
        const obs_record *r = &in->records[i];
        /* Use the scratch buffer observably, so it is really per-thread
         * state and not something the compiler can drop. */
        uint32_t n = r->len < sizeof s->buf ? r->len : (uint32_t)sizeof s->buf;
        for (uint32_t k = 0; k < n; k++) {
            s->buf[k] ^= r->data[k];
            s->checksum += s->buf[k];
        }
        int rc = obs_out_pass(out, r);
        if (rc)
            return rc;
    }
    return OBS_OK;
}

static int tls_flush(void *instance, obs_out *out)
{
    const obs_host *host = instance;
    char line[96];

    if (!out)
        return OBS_OK;
    int n = snprintf(line, sizeof line, "tp_tls created=%llu destroyed=%llu",
                     (unsigned long long)atomic_load(&n_created),
                     (unsigned long long)atomic_load(&n_destroyed));
    return obs_out_emit(out, line, (uint64_t)n, 0, host->now_ns());
}

static void tls_fini(void *instance)
{
    (void)instance; /* the scratch buffers belong to their threads */
}

static const obs_stage_desc desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "tp_tls",
    .version = "1.0.0",
    .description = "pass-through with per-thread scratch freed by a TLS destructor",
    .init = tls_init,
    .process = tls_process,
    .flush = tls_flush,
    .fini = tls_fini,
};

OBS_DECLARE_STAGE(desc)
