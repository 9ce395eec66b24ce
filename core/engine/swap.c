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
    obs_config tmp = *p->cfg;
    cfg_stage *stages = malloc(p->cfg->n_stages * sizeof(cfg_stage));
    if (!stages)
        return OBS_ENOMEM;
    memcpy(stages, p->cfg->stages, p->cfg->n_stages * sizeof(cfg_stage));
    stages[s->index].params = (cfg_param *)spec->params;
    stages[s->index].n_params = spec->n_params;
    tmp.stages = stages;
    tmp.path = (char *)"swap request";
    int rc = config_check_params(&tmp, s->index, sl->desc, &sl->params, err, errlen);
    free(stages);
    return rc;
}

static stage *find_stage(pipeline *p, const char *name)
{
    for (size_t i = 0; i < p->n_stages; i++)
        if (strcmp(p->stages[i].cfg->name, name) == 0)
            return &p->stages[i];
    return NULL;
}

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
    if (s->n_instances > 1) {
        snprintf(err, errlen,
                 "stage '%s' runs %u parallel instances: hot swap of a parallel stage is not "
                 "available yet (run it with parallelism 1 to swap it)",
                 stage_name, s->n_instances);
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

    uint64_t t0 = host_now_ns();
    stage_slot *sl = calloc(1, sizeof *sl);
    swap_request *rq = calloc(1, sizeof *rq);
    if (!sl || !rq) {
        rc = OBS_ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto fail;
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
    rc = plugin_open(&req, &sl->module, err, errlen);
    if (rc < 0)
        goto fail;
    sl->desc = sl->module->desc;
    rc = check_params(p, s, spec, sl, err, errlen);
    if (rc < 0)
        goto fail;
    sl->params_view = (obs_params){.values = sl->params.values, .n_values = sl->params.n_values};
    /* Same host context (counters continue across versions), but the
     * table names the new file. */
    sl->api = malloc(sizeof(obs_host));
    if (!sl->api) {
        rc = OBS_ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    *sl->api = s->host.api;
    sl->api->plugin_path = sl->module->path;
    rc = sl->desc->init(sl->api, &sl->params_view, &sl->instance);
    if (rc != 0) {
        snprintf(err, errlen, "stage '%s': plugin '%s' %s (%s): init failed: %s (%d)", s->cfg->name,
                 sl->desc->name, sl->desc->version, sl->module->path, obs_strerror(rc), rc);
        rc = rc < 0 ? rc : OBS_EPLUGIN;
        goto fail;
    }
    sl->initialised = 1;
    sl->prof_tag = swap_prof_tag(s, sl, "A");
    res->load_ns = host_now_ns() - t0;

    /* Hand it to the stage thread. */
    pthread_mutex_init(&rq->mu, NULL);
    pthread_cond_init(&rq->cv, NULL);
    rq->slot = sl;
    rq->handover = !spec->no_handover;
    stage_slot *old = stage_active(s);
    uint64_t t_wait = host_now_ns();
    atomic_store(&s->pending, rq);
    uint64_t timeout = spec->timeout_ns ? spec->timeout_ns : SWAP_DEFAULT_TIMEOUT_NS;
    struct timespec until = host_realtime_in(timeout);
    pthread_mutex_lock(&rq->mu);
    while (!rq->done) {
        if (pthread_cond_timedwait(&rq->cv, &rq->mu, &until) == ETIMEDOUT) {
            swap_request *expect = rq;
            if (atomic_compare_exchange_strong(&s->pending, &expect, NULL)) {
                rq->rc = OBS_EAGAIN;
                snprintf(rq->why, sizeof rq->why,
                         "stage '%s' reached no batch boundary within %.1f s", s->cfg->name,
                         (double)timeout / 1e9);
                break;
            }
            /* Taken meanwhile: completion is imminent. */
            while (!rq->done)
                pthread_cond_wait(&rq->cv, &rq->mu);
        }
    }
    pthread_mutex_unlock(&rq->mu);
    res->wait_ns = (rq->t_taken_ns ? rq->t_taken_ns : host_now_ns()) - t_wait;

    if (rq->rc != 0) {
        rc = rq->rc;
        snprintf(err, errlen, "stage '%s': swap to %s %s not done, %s %s keeps running: %s",
                 s->cfg->name, sl->desc->name, sl->desc->version, old->desc->name,
                 old->desc->version, rq->why);
        goto fail;
    }
    /* Switched: the old instance is no longer called; finalise it here. */
    snprintf(res->stage, sizeof res->stage, "%s", s->cfg->name);
    snprintf(res->old_plugin, sizeof res->old_plugin, "%s", old->desc->name);
    snprintf(res->old_version, sizeof res->old_version, "%s", old->desc->version);
    snprintf(res->new_plugin, sizeof res->new_plugin, "%s", sl->desc->name);
    snprintf(res->new_version, sizeof res->new_version, "%s", sl->desc->version);
    snprintf(res->new_path, sizeof res->new_path, "%s", sl->module->path);
    plugin_build_id_hex(sl->module, res->new_build_id, sizeof res->new_build_id);
    res->state = rq->state;
    res->pause_ns = rq->pause_ns;
    res->n_swaps = atomic_load(&s->n_swaps);
    if (old->initialised && old->desc->fini)
        old->desc->fini(old->instance);
    old->initialised = 0;
    old->retired_next = s->retired;
    s->retired = old;
    pthread_mutex_destroy(&rq->mu);
    pthread_cond_destroy(&rq->cv);
    free(rq);
    pthread_mutex_unlock(&p->swap_lock);
    return 0;

fail:
    if (rq && rq->slot) {
        pthread_mutex_destroy(&rq->mu);
        pthread_cond_destroy(&rq->cv);
    }
    free(rq);
    if (sl) {
        slot_free(s, sl);
        free(sl);
    }
    pthread_mutex_unlock(&p->swap_lock);
    return rc;
}
