/*
 * swap.c - hot swap of a stage's plugin (see swap.h).
 *
 * Hand-off protocol. The caller builds and initialises a new slot, then
 * publishes a swap_request in stage.pending. The stage thread polls that
 * pointer once per batch (one relaxed load) and, when it finds a request,
 * takes it with an atomic exchange, switches, and signals completion under
 * the request's mutex. A caller that times out withdraws the request with
 * a compare-and-swap; if that fails the stage thread has already taken it
 * and the caller waits for the (then imminent) completion. So a request is
 * always either withdrawn or completed, never both.
 */
#include "engine/swap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/alloc.h"
#include "obs_profiler.h"

#define SWAP_DEFAULT_TIMEOUT_NS 10000000000ull

typedef struct swap_request {
    stage_slot *slot; /* the new slot, initialised */
    int handover;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int rc; /* 0, OBS_ESTATE, OBS_EAGAIN */
    char why[256];
    int state;
    uint64_t t_taken_ns, pause_ns;
} swap_request;

uint32_t swap_prof_tag(const stage *s, const stage_slot *sl, const char *variant)
{
    uint32_t tag = 0;
    if (!obs_prof_active())
        return 0;
    char instance[16];
    snprintf(instance, sizeof instance, "%u", s->instance);
    obs_prof_label l[] = {{"stage", s->cfg->name},
                          {"plugin", sl->desc->name},
                          {"version", sl->desc->version},
                          {"variant", variant},
                          {"instance", instance}};
    /* The instance label only where there are several, so the tags (and
     * the profiles stored with them) of a one-instance stage stay as they
     * were. */
    if (obs_prof_tag_intern(l, s->n_instances > 1 ? 5 : 4, &tag) != 0)
        return 0;
    return tag;
}

static void complete(swap_request *rq, int rc, const char *why)
{
    pthread_mutex_lock(&rq->mu);
    rq->rc = rc;
    if (why)
        snprintf(rq->why, sizeof rq->why, "%s", why);
    rq->done = 1;
    pthread_cond_broadcast(&rq->cv);
    pthread_mutex_unlock(&rq->mu);
}

void swap_take(stage *s, int (*flush)(stage *s, stage_slot *sl))
{
    swap_request *rq = atomic_exchange(&s->pending, NULL);
    if (!rq)
        return;
    uint64_t t0 = host_now_ns();
    rq->t_taken_ns = t0;
    stage_slot *old = stage_active(s), *nw = rq->slot;
    int state = SWAP_STATE_FLUSHED;
    if (rq->handover && old->desc->export_state && nw->desc->import_state) {
        void *buf = NULL;
        size_t len = 0;
        int rc = old->desc->export_state(old->instance, &buf, &len);
        if (rc == 0) {
            rc = nw->desc->import_state(nw->instance, buf, len);
            if (buf)
                old->api->free(old->api, buf);
            if (rc != 0) {
                char why[200];
                snprintf(why, sizeof why, "%s %s refused the state of %s %s: %s", nw->desc->name,
                         nw->desc->version, old->desc->name, old->desc->version, obs_strerror(rc));
                complete(rq, OBS_ESTATE, why);
                return;
            }
            state = SWAP_STATE_HANDED_OVER;
        } else {
            /* The old version cannot export now: fall back to flushing. */
            if (buf)
                old->api->free(old->api, buf);
        }
    }
    if (state == SWAP_STATE_FLUSHED)
        flush(s, old);
    nw->t_active_ns = host_now_ns();
    atomic_store_explicit(&s->slot, nw, memory_order_release);
    obs_prof_set_tag(nw->prof_tag);
    rq->state = state;
    rq->pause_ns = host_now_ns() - t0;
    histogram_record(s->swap_pause, rq->pause_ns);
    atomic_fetch_add(&s->n_swaps, 1);
    complete(rq, 0, NULL);
}

void swap_refuse_pending(stage *s, const char *why)
{
    swap_request *rq = atomic_exchange(&s->pending, NULL);
    if (rq)
        complete(rq, OBS_EAGAIN, why);
}

/* A retired version's fini: what it frees leaves the stage's live heap. */
static void fini_charged(stage *s, stage_slot *sl)
{
    if (!sl->initialised || !sl->desc->fini)
        return;
    alloc_counters a0 = alloc_tls;
    sl->desc->fini(sl->instance);
    stage_heap_charge(s, &a0);
}

static void slot_free(stage *s, stage_slot *sl)
{
    if (sl->initialised && sl->desc->fini)
        sl->desc->fini(sl->instance);
    sl->initialised = 0;
    config_param_values_free(&sl->params);
    if (sl->api && sl->api != &s->host.api)
        free(sl->api);
    sl->api = NULL;
}

void swap_free_slots(stage *s)
{
    stage_slot *active = stage_active(s);
    if (active && active != &s->first) {
        slot_free(s, active);
        free(active);
    }
    /* Retired slots were finalised when they were replaced. */
    for (stage_slot *sl = s->retired, *next; sl; sl = next) {
        next = sl->retired_next;
        slot_free(s, sl);
        if (sl != &s->first)
            free(sl);
    }
    s->retired = NULL;
    if (active == &s->first || !active)
        slot_free(s, &s->first);
    atomic_store(&s->slot, NULL);
}

/* Checks the parameters for the new slot: the stage's own from the config,
 * or those the request gives, against the new plugin's declarations. */
static int check_params(pipeline *p, stage *s, const swap_spec *spec, stage_slot *sl, char *err,
                        size_t errlen)
{
    if (!spec->params_given)
        return config_check_params(p->cfg, s->index, sl->desc, &sl->params, err, errlen);
    return config_check_params_given(p->cfg, s->index, spec->params, spec->n_params, "swap request",
                                     sl->desc, &sl->params, err, errlen);
}

static stage *find_stage(pipeline *p, const char *name)
{
    for (size_t i = 0; i < p->n_stages; i++)
        if (strcmp(p->stages[i].cfg->name, name) == 0)
            return &p->stages[i];
    return NULL;
}

/* Builds and initialises the new slot of instance s, off the data path:
 * the same host context (counters continue across versions) under a table
 * that names the new file. *out is the caller's (slot_free + free). */
static int slot_build(pipeline *p, stage *s, const swap_spec *spec, stage_slot **out, char *err,
                      size_t errlen)
{
    stage_slot *sl = calloc(1, sizeof *sl);
    int rc;
    *out = sl;
    if (!sl) {
        snprintf(err, errlen, "out of memory");
        return OBS_ENOMEM;
    }
    plugin_request req = {
        .stage_name = s->cfg->name,
        .plugin = spec->plugin,
        .version = spec->version,
        .kind = s->kind,
        .dirs = (const char *const *)p->dirs,
        .n_dirs = p->n_dirs,
        .content_addressed = 1,
    };
    if ((rc = plugin_open(&req, &sl->module, err, errlen)) < 0)
        return rc;
    sl->desc = sl->module->desc;
    if (sl->desc->flags & OBS_STAGE_SOURCE) {
        snprintf(err, errlen,
                 "stage '%s': %s %s is a source (records from outside the process): a stage "
                 "cannot become one while it runs",
                 s->cfg->name, sl->desc->name, sl->desc->version);
        return OBS_EINVAL;
    }
    if ((rc = check_params(p, s, spec, sl, err, errlen)) < 0)
        return rc;
    sl->params_view = (obs_params){.values = sl->params.values, .n_values = sl->params.n_values};
    sl->api = malloc(sizeof(obs_host));
    if (!sl->api) {
        snprintf(err, errlen, "out of memory");
        return OBS_ENOMEM;
    }
    *sl->api = s->host.api;
    sl->api->plugin_path = sl->module->path;
    alloc_counters a0 = alloc_tls;
    rc = sl->desc->init(sl->api, &sl->params_view, &sl->instance);
    stage_heap_charge(s, &a0);
    if (rc != 0) {
        char which[48] = "";
        if (s->n_instances > 1)
            snprintf(which, sizeof which, " (instance %u of %u)", s->instance, s->n_instances);
        snprintf(err, errlen, "stage '%s'%s: plugin '%s' %s (%s): init failed: %s (%d)",
                 s->cfg->name, which, sl->desc->name, sl->desc->version, sl->module->path,
                 obs_strerror(rc), rc);
        return rc < 0 ? rc : OBS_EPLUGIN;
    }
    sl->initialised = 1;
    sl->prof_tag = swap_prof_tag(s, sl, "A");
    return OBS_OK;
}

static swap_request *request_new(stage_slot *sl, int handover)
{
    swap_request *rq = calloc(1, sizeof *rq);
    if (!rq)
        return NULL;
    pthread_mutex_init(&rq->mu, NULL);
    pthread_cond_init(&rq->cv, NULL);
    rq->slot = sl;
    rq->handover = handover;
    return rq;
}

static void request_free(swap_request *rq)
{
    if (!rq)
        return;
    pthread_mutex_destroy(&rq->mu);
    pthread_cond_destroy(&rq->cv);
    free(rq);
}

/* Waits until the stage thread of s completed rq, or until `until`
 * (CLOCK_REALTIME): then withdraws it, unless the thread took it
 * meanwhile, in which case its completion is imminent and awaited.
 * Returns rq->rc. */
static int request_wait(stage *s, swap_request *rq, const struct timespec *until,
                        uint64_t timeout_ns)
{
    pthread_mutex_lock(&rq->mu);
    while (!rq->done) {
        if (pthread_cond_timedwait(&rq->cv, &rq->mu, until) == ETIMEDOUT) {
            swap_request *expect = rq;
            if (atomic_compare_exchange_strong(&s->pending, &expect, NULL)) {
                rq->rc = OBS_EAGAIN;
                snprintf(rq->why, sizeof rq->why,
                         "stage '%s' reached no batch boundary within %.1f s", s->cfg->name,
                         (double)timeout_ns / 1e9);
                break;
            }
            /* Taken meanwhile: completion is imminent. */
            while (!rq->done)
                pthread_cond_wait(&rq->cv, &rq->mu);
        }
    }
    pthread_mutex_unlock(&rq->mu);
    return rq->rc;
}

/*
 * A stage of parallel instances swaps all of them or none: every instance
 * gets its new slot (built first, all of them, before any is handed over),
 * every stage thread switches at its own next batch boundary, and if one of
 * them cannot (a timeout, a refused state), the instances that did switch
 * are switched back to their old slots, which were kept initialised for
 * that, the same way (state handed back, or the new instance flushed).
 * Nothing is lost either way: each switch happens between two batches on
 * the thread that processes them.
 */
int pipeline_swap(pipeline *p, const char *stage_name, const swap_spec *spec, swap_result *res,
                  char *err, size_t errlen)
{
    int rc;
    memset(res, 0, sizeof *res);
    stage *s = find_stage(p, stage_name);
    if (!s) {
        snprintf(err, errlen, "no stage named '%s'", stage_name);
        return OBS_ENOENT;
    }
    if (!spec->plugin || !spec->plugin[0]) {
        snprintf(err, errlen, "stage '%s': no plugin given", stage_name);
        return OBS_EINVAL;
    }
    if (pthread_mutex_trylock(&p->swap_lock) != 0) {
        snprintf(err, errlen, "another swap of this pipeline is in progress");
        return OBS_EAGAIN;
    }
    if (!atomic_load(&p->running) || atomic_load(&p->stop)) {
        snprintf(err, errlen, "pipeline '%s' is not running", p->cfg->pipeline);
        pthread_mutex_unlock(&p->swap_lock);
        return OBS_EAGAIN;
    }
    if (atomic_load(&s->variant)) {
        snprintf(err, errlen, "stage '%s' runs an experiment: stop it before swapping",
                 s->cfg->name);
        pthread_mutex_unlock(&p->swap_lock);
        return OBS_EAGAIN;
    }
    if (stage_active(s)->desc->flags & OBS_STAGE_SOURCE) {
        /* Its batches in flight name this instance to be told of their
         * delivery (origin.h). */
        snprintf(err, errlen,
                 "stage '%s' is a source (records from outside the process, acknowledged as "
                 "they leave the pipeline): it cannot be swapped while it runs",
                 s->cfg->name);
        pthread_mutex_unlock(&p->swap_lock);
        return OBS_EINVAL;
    }

    const uint32_t n = s->n_instances ? s->n_instances : 1;
    stage *inst1[1] = {s};
    stage **inst = n > 1 ? s->instances : inst1;
    stage_slot **nw = calloc(n, sizeof *nw), **old = calloc(n, sizeof *old);
    swap_request **rq = calloc(n, sizeof *rq);
    uint32_t failed_at = UINT32_MAX;
    rc = OBS_OK;
    if (!nw || !old || !rq) {
        rc = OBS_ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    uint64_t t0 = host_now_ns();
    for (uint32_t k = 0; k < n && rc == OBS_OK; k++) {
        rc = slot_build(p, inst[k], spec, &nw[k], err, errlen);
        if (rc == OBS_OK && !(rq[k] = request_new(nw[k], !spec->no_handover))) {
            rc = OBS_ENOMEM;
            snprintf(err, errlen, "out of memory");
        }
    }
    if (rc != OBS_OK)
        goto out;
    res->load_ns = host_now_ns() - t0;

    /* Hand them to the stage threads, all at once, and wait for each. */
    uint64_t t_wait = host_now_ns();
    for (uint32_t k = 0; k < n; k++) {
        old[k] = stage_active(inst[k]);
        atomic_store(&inst[k]->pending, rq[k]);
    }
    uint64_t timeout = spec->timeout_ns ? spec->timeout_ns : SWAP_DEFAULT_TIMEOUT_NS;
    struct timespec until = host_realtime_in(timeout);
    for (uint32_t k = 0; k < n; k++)
        if (request_wait(inst[k], rq[k], &until, timeout) != 0 && failed_at == UINT32_MAX)
            failed_at = k;
    uint64_t taken = 0;
    for (uint32_t k = 0; k < n; k++)
        taken = rq[k]->t_taken_ns > taken ? rq[k]->t_taken_ns : taken;
    res->wait_ns = (taken ? taken : host_now_ns()) - t_wait;

    if (failed_at != UINT32_MAX) {
        /* Back to the old slots where the switch happened. */
        for (uint32_t k = 0; k < n; k++) {
            if (rq[k]->rc != 0)
                continue;
            swap_request *back = request_new(old[k], !spec->no_handover);
            if (!back)
                abort(); /* a stage half on each version would be worse than stopping */
            atomic_store(&inst[k]->pending, back);
            /* Bounded too: a stage thread that ended meanwhile takes nothing. */
            struct timespec back_until = host_realtime_in(timeout);
            if (request_wait(inst[k], back, &back_until, timeout) != 0) {
                /* Its thread has ended: the new version stays active there
                 * (freed with the stage), and the old one is retired. */
                host_log(s->cfg->name, OBS_LOG_ERROR, "instance %u could not go back to %s %s: %s",
                         k, old[k]->desc->name, old[k]->desc->version, back->why);
                fini_charged(inst[k], old[k]);
                old[k]->initialised = 0;
                old[k]->retired_next = inst[k]->retired;
                inst[k]->retired = old[k];
            }
            request_free(back);
        }
        rc = rq[failed_at]->rc;
        char which[48] = "";
        if (n > 1)
            snprintf(which, sizeof which, " (instance %u of %u)", failed_at, n);
        snprintf(err, errlen, "stage '%s'%s: swap to %s %s not done, %s %s keeps running: %s",
                 s->cfg->name, which, nw[failed_at]->desc->name, nw[failed_at]->desc->version,
                 old[failed_at]->desc->name, old[failed_at]->desc->version, rq[failed_at]->why);
        goto out;
    }

    /* Switched everywhere: the old instances are no longer called; finalise
     * them here. */
    snprintf(res->stage, sizeof res->stage, "%s", s->cfg->name);
    snprintf(res->old_plugin, sizeof res->old_plugin, "%s", old[0]->desc->name);
    snprintf(res->old_version, sizeof res->old_version, "%s", old[0]->desc->version);
    snprintf(res->new_plugin, sizeof res->new_plugin, "%s", nw[0]->desc->name);
    snprintf(res->new_version, sizeof res->new_version, "%s", nw[0]->desc->version);
    snprintf(res->new_path, sizeof res->new_path, "%s", nw[0]->module->path);
    plugin_build_id_hex(nw[0]->module, res->new_build_id, sizeof res->new_build_id);
    res->state = SWAP_STATE_HANDED_OVER;
    for (uint32_t k = 0; k < n; k++) {
        if (rq[k]->state != SWAP_STATE_HANDED_OVER)
            res->state = SWAP_STATE_FLUSHED;
        res->pause_ns = rq[k]->pause_ns > res->pause_ns ? rq[k]->pause_ns : res->pause_ns;
        fini_charged(inst[k], old[k]);
        old[k]->initialised = 0;
        old[k]->retired_next = inst[k]->retired;
        inst[k]->retired = old[k];
        nw[k] = NULL; /* active now: freed with the stage */
    }
    res->n_swaps = atomic_load(&s->n_swaps);

out:
    for (uint32_t k = 0; nw && k < n; k++) {
        /* A new slot that is not active (never taken, or switched back). */
        if (nw[k] && stage_active(inst[k]) != nw[k]) {
            slot_free(inst[k], nw[k]);
            free(nw[k]);
        }
        if (rq)
            request_free(rq[k]);
    }
    free(nw);
    free(old);
    free(rq);
    pthread_mutex_unlock(&p->swap_lock);
    return rc;
}
