/*
 * experiment.c - duet and interleaved A/B experiments on a live transform
 * (see experiment.h).
 *
 * Threads: the caller of experiment_start() builds variant B (open,
 * parameter check, init) and attaches it to the stage through the engine's
 * variant slot (engine/variant.h), with the hooks below; the stage thread
 * runs B beside A on every batch and hands each pair's costs to
 * hook_pair(), which appends them to the accumulators under a mutex it
 * takes once per batch; the experiment's own thread wakes at the planned
 * looks, copies the accumulators under that mutex, estimates (bootstrap,
 * off the data path), records the history and decides whether to stop. To
 * stop, it asks the stage thread to let go of B
 * (variant_release_request), waits for the acknowledgement (hook_released
 * sets released), then finalises B itself.
 *
 * Interleaved: each stage thread (one per instance of the stage) sums its
 * share of each block's costs in fields only it touches and hands it over
 * (under the mutex) when its next block begins; each sink thread keeps the
 * latency histograms of the blocks it is receiving in fields only it
 * touches and hands them over when they fall out of its window. A block is
 * added, all instances' shares as one unit, once every instance has passed
 * it (experiment_feed.c). The last, partial blocks are never added. Both
 * sides leave out the same whole rounds (see exp_skip): the first, and one
 * for each look but the last.
 */
#include "lab/experiment_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "engine/swap.h"
#include "engine/variant.h"
#include "measure/histogram.h"
#include "obs_profiler.h"
#include "store/store.h"
#include "util/json_u64.h"
#include "util/mix.h"

const char *const experiment_metric_names[EXP_N_METRICS] = {
    "cpu_ns_per_record", "wall_ns_per_record", "allocs_per_record",
    "p50_latency_ns",    "p99_latency_ns",     "records_per_s"};

static void lab_free(pipeline *p);

/* The pipeline's list, made on first use (swap lock held); NULL when out of
 * memory. */
static lab_list *lab_of(pipeline *p)
{
    if (!p->extension) {
        p->extension = calloc(1, sizeof(lab_list));
        if (p->extension)
            p->extension_free = lab_free;
    }
    return p->extension;
}

/* An experiment's seed when none is given: fresh for every experiment, so
 * that repeating one repeats it with another schedule (and another duet
 * order): anything in step with a schedule becomes noise across repeats
 * instead of the same error every time. Reported in the result, so a
 * schedule can be replayed (`seed`). At most 2^53, exact as a JSON number
 * in any client. */
static uint64_t fresh_seed(uint64_t run_seed)
{
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, GRND_NONBLOCK) != (ssize_t)sizeof x)
        x = mix64(run_seed ^ mix64(host_now_ns()));
    x &= (1ull << 53) - 1;
    return x ? x : 1;
}

/* Copies one accumulator so it can be estimated without holding the lock. */
static int acc_copy(const abstats_acc *src, abstats_acc *dst)
{
    *dst = *src;
    dst->units = malloc((size_t)src->max_units * sizeof(abstats_unit));
    if (!dst->units)
        return OBS_ENOMEM;
    memcpy(dst->units, src->units, src->n_units * sizeof(abstats_unit));
    return OBS_OK;
}

int experiment_copy_acc(experiment *e, int metric, abstats_acc *out)
{
    if (metric < 0 || metric >= e->n_metrics)
        return OBS_EINVAL;
    pthread_mutex_lock(&e->mu);
    int rc = acc_copy(&e->acc[metric], out);
    pthread_mutex_unlock(&e->mu);
    return rc;
}

/* One planned look: estimates every metric, appends to the history.
 * Returns 1 when the primary metric (CPU ns per record for a duet, p99
 * latency for interleaved) is decided. */
static int look(experiment *e, double elapsed_s)
{
    abstats_acc copy[EXP_N_METRICS];
    uint64_t n_pairs;
    int ok = 1;
    pthread_mutex_lock(&e->mu);
    for (int m = 0; m < e->n_metrics; m++)
        if (acc_copy(&e->acc[m], &copy[m]) != 0) {
            for (int j = 0; j < m; j++)
                free(copy[j].units);
            ok = 0;
            break;
        }
    n_pairs = e->n_pairs;
    pthread_mutex_unlock(&e->mu);
    if (!ok)
        return 0;
    abstats_result res[EXP_N_METRICS];
    memset(res, 0, sizeof res);
    for (int m = 0; m < e->n_metrics; m++) {
        abstats_opts o;
        abstats_opts_default(&o);
        o.threshold = e->threshold;
        o.n_looks = e->n_looks;
        o.seed = e->seed + (uint64_t)m;
        /* Pairs expected by the time limit, at the rate seen so far. */
        o.horizon = elapsed_s > 0 ? (uint64_t)((double)n_pairs * e->max_seconds / elapsed_s) : 0;
        if (e->mode == EXP_INTERLEAVED) {
            /* Blocks of both variants by the time limit: fixed by design. */
            o.horizon = (uint64_t)(e->max_seconds * 1e9 / (double)e->block_ns);
            if (m == EXP_M_THROUGHPUT)
                o.direction = ABSTATS_HIGHER_IS_BETTER;
        }
        if (abstats_estimate(&copy[m], &o, &res[m]) != 0)
            memset(&res[m], 0, sizeof res[m]);
        free(copy[m].units);
    }
    pthread_mutex_lock(&e->mu);
    memcpy(e->res, res, sizeof res);
    e->have_res = 1;
    e->looks_done++;
    for (int m = 0; m < e->n_metrics; m++) {
        json_t *h = json_pack("{s:f, s:s, s:f, s:f, s:f, s:s}", "t_s", elapsed_s, "metric",
                              experiment_metric_names[m], "delta",
                              isfinite(res[m].delta) ? res[m].delta : 0.0, "lo",
                              isfinite(res[m].ci_lo) ? res[m].ci_lo : 0.0, "hi",
                              isfinite(res[m].ci_hi) ? res[m].ci_hi : 0.0, "verdict",
                              experiment_verdict_name(res[m].verdict));
        if (h)
            json_array_append_new(e->history, h);
    }
    pthread_mutex_unlock(&e->mu);
    return abstats_decided(res[e->primary].verdict);
}

/* Waits until host time `at` or a stop request; returns 1 if asked to stop. */
static int wait_until(experiment *e, uint64_t at)
{
    uint64_t now = host_now_ns();
    struct timespec until = host_realtime_in(at > now ? at - now : 0);
    pthread_mutex_lock(&e->mu);
    while (!e->stop_req && !e->released &&
           pthread_cond_timedwait(&e->cv, &e->mu, &until) != ETIMEDOUT)
        ;
    int stop = e->stop_req || e->released;
    pthread_mutex_unlock(&e->mu);
    return stop;
}

static uint32_t block_at(const experiment *e, uint64_t t)
{
    return t > e->t_start_ns ? (uint32_t)((t - e->t_start_ns) / e->block_ns) : 0;
}

/* Whether the next look bootstraps, i.e. some metric may have the units
 * for it: below that a look costs well under a millisecond. */
static int look_is_heavy(experiment *e)
{
    abstats_opts o;
    abstats_opts_default(&o);
    pthread_mutex_lock(&e->mu);
    uint64_t blocks = e->n_blocks_stage;
    pthread_mutex_unlock(&e->mu);
    return blocks + 2 * ROUND >= ROUND * (uint64_t)o.min_samples;
}

static void *exp_thread(void *arg)
{
    experiment *e = arg;
    uint64_t limit_ns = (uint64_t)(e->max_seconds * 1e9);
    atomic_store(&e->state, EXP_RUNNING);
    int decided = 0, cut_short = 0;
    for (uint32_t k = 1; k <= e->n_looks && !decided; k++) {
        int stop = wait_until(e, e->t_start_ns + limit_ns / e->n_looks * k);
        exp_skip *sk = NULL;
        uint64_t t_begin = 0;
        if (!stop && e->skips && k < e->n_looks && look_is_heavy(e)) {
            /* Interleaved, not the last look, and one that bootstraps:
             * compute from the second block of a round of its own, the first
             * being a guard for the records still on their way to the sink,
             * and leave that round out (exp_skip). The range is published
             * before the round begins, so neither thread has added any of
             * its blocks yet. */
            uint32_t lo = round_end(block_at(e, host_now_ns())) + 1;
            uint32_t i = atomic_load_explicit(&e->n_skips, memory_order_relaxed);
            sk = &e->skips[i];
            sk->lo = lo;
            atomic_store_explicit(&sk->hi, UINT32_MAX, memory_order_relaxed);
            atomic_store_explicit(&e->n_skips, i + 1, memory_order_release);
            stop = wait_until(e, e->t_start_ns + (uint64_t)(lo + 1) * e->block_ns);
            t_begin = host_now_ns();
        }
        decided = look(e, (double)(host_now_ns() - e->t_start_ns) / 1e9);
        if (sk) {
            /* Through the round of the time the look took, twice more after
             * its end: the queue it left behind drains in that time (a 25 ms
             * look raised the p99 of the 3 blocks of 20 ms after it). */
            uint64_t t_end = host_now_ns();
            uint32_t hi = round_end(block_at(e, t_end + 2 * (t_end - t_begin)));
            atomic_store_explicit(&sk->hi, hi, memory_order_release);
        }
        if (stop) {
            cut_short = !decided;
            break;
        }
    }
    /* Detach B from the stage thread and wait for it to let go. */
    for (uint32_t k = 0; k < e->n_vars; k++)
        variant_release_request(&e->vars[k]);
    pthread_mutex_lock(&e->mu);
    while (!e->released) {
        struct timespec until = host_realtime_in(1000000000u);
        pthread_cond_timedwait(&e->cv, &e->mu, &until);
        if (!e->released) {
            /* Stage threads that are gone hold B no more. */
            uint32_t gone = 0;
            for (uint32_t k = 0; k < e->n_vars; k++)
                gone += variant_release_orphan(&e->vars[k]);
            if (gone == e->n_vars)
                e->released = 1;
        }
    }
    int stopped = cut_short;
    e->finished = 1;
    pthread_mutex_unlock(&e->mu);
    for (uint32_t k = 0; k < e->n_vars; k++) {
        stage_slot *b = &e->vars[k].b;
        if (b->initialised && b->desc->fini)
            b->desc->fini(b->instance);
        b->initialised = 0;
    }
    e->t_end_ns = host_now_ns();
    atomic_store(&e->state, stopped ? EXP_STOPPED : EXP_DONE);
    if (e->st && e->run_id) {
        json_t *ev = experiment_json(e);
        if (ev) {
            json_object_set_new(ev, "event", json_string("experiment"));
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            store_put_event(e->st, e->run_id,
                            (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, ev);
            json_decref(ev);
        }
    }
    pthread_mutex_lock(&e->mu);
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ------------------------------------------------------------ start, end */

static void exp_free(experiment *e)
{
    for (uint32_t k = 0; e->vars && k < e->n_vars; k++) {
        stage_slot *b = &e->vars[k].b;
        if (b->initialised && b->desc->fini)
            b->desc->fini(b->instance);
        config_param_values_free(&b->params);
        free(b->api);
    }
    free(e->vars);
    free(e->b_hosts);
    free(e->lanes);
    for (int m = 0; m < EXP_N_METRICS; m++)
        abstats_destroy(&e->acc[m]);
    experiment_blocks_free(e);
    free(e->skips);
    json_decref(e->history);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

/* Builds and initialises variant B for instance s of the stage (swap lock
 * held): B's plugin (or, for A/A, the instance's own), its parameters, its
 * own host context `h` (its counters and allocations are not the stage's),
 * its profiler tag. Returns 0 or a negative code with `err` set; what was
 * built is freed by exp_free. */
static int build_b(experiment *e, stage *s, const exp_spec *spec, stage_variant *v, host_ctx *h,
                   char *err, size_t errlen)
{
    pipeline *p = e->p;
    int rc;
    stage_slot *a = stage_active(s);
    const char *plugin = spec->aa || !spec->plugin ? NULL : spec->plugin;
    if (plugin) {
        plugin_request req = {
            .stage_name = s->cfg->name,
            .plugin = plugin,
            .version = spec->version,
            .kind = s->kind,
            .dirs = (const char *const *)p->dirs,
            .n_dirs = p->n_dirs,
            .content_addressed = 1,
        };
        rc = plugin_open(&req, &v->b.module, err, errlen);
        if (rc < 0)
            return rc;
    } else {
        v->b.module = a->module; /* A/A: a second instance of the same code */
    }
    v->b.desc = v->b.module->desc;
    if (spec->params_given && spec->params_in_config) {
        rc = config_check_ab_params(p->cfg, s->index, v->b.desc, &v->b.params, err, errlen);
    } else if (spec->params_given) {
        rc = config_check_params_given(p->cfg, s->index, spec->params, spec->n_params,
                                       "experiment request", v->b.desc, &v->b.params, err, errlen);
    } else if (plugin) {
        rc = config_check_params(p->cfg, s->index, v->b.desc, &v->b.params, err, errlen);
    } else {
        /* A/A without new parameters: A's own. */
        rc = config_check_params(p->cfg, s->index, a->desc, &v->b.params, err, errlen);
    }
    if (rc < 0)
        return rc;
    v->b.params_view = (obs_params){.values = v->b.params.values, .n_values = v->b.params.n_values};
    v->b.api = malloc(sizeof(obs_host));
    if (!v->b.api) {
        snprintf(err, errlen, "out of memory");
        return OBS_ENOMEM;
    }
    host_ctx_init(h, s->cfg->name, v->b.module->path, s->host.api.seed, p->cfg->batch_size,
                  s->host.api.wall_offset_ns);
    *v->b.api = h->api;
    rc = v->b.desc->init(v->b.api, &v->b.params_view, &v->b.instance);
    if (rc != 0) {
        char which[48] = "";
        if (s->n_instances > 1)
            snprintf(which, sizeof which, " (instance %u of %u)", s->instance, s->n_instances);
        snprintf(err, errlen, "stage '%s'%s: variant B %s %s: init failed: %s", s->cfg->name, which,
                 v->b.desc->name, v->b.desc->version, obs_strerror(rc));
        return rc < 0 ? rc : OBS_EPLUGIN;
    }
    v->b.initialised = 1;
    v->b.prof_tag = swap_prof_tag(s, &v->b, "B");
    return OBS_OK;
}

int experiment_start(pipeline *p, const exp_spec *spec, struct store *st, uint64_t run_id,
                     experiment **out, char *err, size_t errlen)
{
    int rc = OBS_OK;
    *out = NULL;
    stage *s = NULL;
    for (size_t i = 0; i < p->n_stages; i++)
        if (spec->stage && strcmp(p->stages[i].cfg->name, spec->stage) == 0)
            s = &p->stages[i];
    if (!s) {
        snprintf(err, errlen, "no stage named '%s'", spec->stage ? spec->stage : "");
        return OBS_ENOENT;
    }
    if (s->kind != OBS_KIND_TRANSFORM) {
        snprintf(err, errlen, "stage '%s' is a %s: experiments run on transforms", s->cfg->name,
                 plugin_kind_name(s->kind));
        return OBS_EINVAL;
    }
    if (spec->mode != EXP_DUET && spec->mode != EXP_INTERLEAVED) {
        snprintf(err, errlen, "unknown experiment mode %d", (int)spec->mode);
        return OBS_EINVAL;
    }
    if (spec->mode == EXP_INTERLEAVED && spec->block_ms &&
        (spec->block_ms < 10 || spec->block_ms > 10000)) {
        snprintf(err, errlen, "block_ms %u: must be 10..10000", spec->block_ms);
        return OBS_EINVAL;
    }
    experiment *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return OBS_ENOMEM;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    e->p = p;
    e->s = s;
    snprintf(e->stage_name, sizeof e->stage_name, "%s", s->cfg->name);
    e->aa = spec->aa;
    e->threshold = spec->threshold > 0 ? spec->threshold : 0.01;
    e->max_seconds = spec->max_seconds > 0 ? spec->max_seconds : 60;
    e->n_looks = spec->n_looks ? spec->n_looks : 10;
    e->seed = spec->seed ? spec->seed : fresh_seed(p->cfg->seed);
    e->st = st;
    e->run_id = run_id;
    e->mode = spec->mode;
    e->block_ns = (uint64_t)(spec->block_ms ? spec->block_ms : 200) * 1000000u;
    e->n_metrics = e->mode == EXP_INTERLEAVED ? EXP_N_METRICS : EXP_M_ALLOCS + 1;
    e->primary = e->mode == EXP_INTERLEAVED ? EXP_M_P99 : EXP_M_CPU;
    e->history = json_array();
    if (e->mode == EXP_INTERLEAVED &&
        !(e->skips = calloc((size_t)e->n_looks + 1, sizeof(exp_skip)))) {
        rc = OBS_ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    const int il = e->mode == EXP_INTERLEAVED;
    uint32_t max_units = spec->max_units;
    if (!max_units)
        max_units = il ? ABSTATS_DEFAULT_MAX_UNITS : EXP_DUET_MAX_UNITS;
    for (int m = 0; m < e->n_metrics; m++)
        if (abstats_init(&e->acc[m], il ? ABSTATS_INTERLEAVED : ABSTATS_DUET, il ? ROUND : 1,
                         max_units) != 0 ||
            !e->history) {
            rc = OBS_ENOMEM;
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    if (e->mode == EXP_INTERLEAVED) {
        e->skips[0].lo = 0; /* the first round: warm-up */
        atomic_store_explicit(&e->skips[0].hi, round_end(0), memory_order_relaxed);
        atomic_store_explicit(&e->n_skips, 1, memory_order_release);
        /* A block's latency quantile is heavy-tailed (a block in which
         * another process held the core has a p99 many times the others'):
         * compared as geometric means, such a block weighs what its ratio
         * says, not what its absolute value says (docs/experiments.md). */
        abstats_set_scale(&e->acc[EXP_M_P50], ABSTATS_GEOMETRIC);
        abstats_set_scale(&e->acc[EXP_M_P99], ABSTATS_GEOMETRIC);
    }

    pthread_mutex_lock(&p->swap_lock);
    if (!atomic_load(&p->running) || atomic_load(&p->stop)) {
        rc = OBS_EAGAIN;
        snprintf(err, errlen, "pipeline '%s' is not running", p->cfg->pipeline);
        goto fail_unlock;
    }
    if (atomic_load(&s->variant)) {
        rc = OBS_EAGAIN;
        snprintf(err, errlen, "stage '%s' already runs an experiment", s->cfg->name);
        goto fail_unlock;
    }
    /* Block tags travel to the sink: a second interleaved experiment
     * downstream would overwrite them. */
    lab_list *lab = lab_of(p);
    if (!lab) {
        rc = OBS_ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto fail_unlock;
    }
    for (experiment *o = lab->head; e->mode == EXP_INTERLEAVED && o; o = o->next) {
        int st = atomic_load(&o->state);
        if (o->mode == EXP_INTERLEAVED && st != EXP_DONE && st != EXP_STOPPED && st != EXP_FAILED) {
            rc = OBS_EAGAIN;
            snprintf(err, errlen,
                     "stage '%s' already runs an interleaved experiment (one per "
                     "pipeline at a time)",
                     o->stage_name);
            goto fail_unlock;
        }
    }
    e->n_vars = s->n_instances ? s->n_instances : 1;
    e->vars = calloc(e->n_vars, sizeof *e->vars);
    e->b_hosts = calloc(e->n_vars, sizeof *e->b_hosts);
    e->lanes = calloc(e->n_vars, sizeof *e->lanes);
    /* Interleaved on parallel instances: every instance of the stage, and
     * of the sink, measures its share of each block on its own thread; the
     * shares are merged into one unit per block (experiment_feed.c). */
    const stage *sink = &p->stages[p->n_stages - 1];
    uint32_t n_sink = sink->n_instances ? sink->n_instances : 1;
    if (!e->vars || !e->b_hosts || !e->lanes ||
        (e->mode == EXP_INTERLEAVED && experiment_blocks_init(e, e->n_vars, n_sink) != 0)) {
        rc = OBS_ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto fail_unlock;
    }
    for (uint32_t k = 0; k < e->n_vars; k++)
        e->lanes[k] = (exp_lane){.e = e, .index = k};
    for (uint32_t k = 0; k < e->n_vars; k++) {
        stage *si = e->n_vars > 1 ? s->instances[k] : s;
        if ((rc = build_b(e, si, spec, &e->vars[k], &e->b_hosts[k], err, errlen)) < 0)
            goto fail_unlock;
    }
    e->id = ++lab->n;
    e->t_start_ns = host_now_ns();
    if (pthread_create(&e->thread, NULL, exp_thread, e) != 0) {
        rc = OBS_ENOMEM;
        snprintf(err, errlen, "cannot start the experiment thread");
        goto fail_unlock;
    }
    e->thread_started = 1;
    pthread_setname_np(e->thread, "obs-experiment");
    e->next = lab->head;
    lab->head = e;
    /* Every stage thread runs its B from its next batch. Instance 0 draws
     * the duet's order from the experiment's seed (so a one-instance run is
     * reproduced by its seed), the others from seeds derived from it. */
    for (uint32_t k = 0; k < e->n_vars; k++) {
        stage_variant *v = &e->vars[k];
        v->mode = e->mode == EXP_INTERLEAVED ? VARIANT_INTERLEAVED : VARIANT_DUET;
        v->seed = k ? mix64(e->seed + k) : e->seed;
        v->hooks = &experiment_hooks;
        v->ctx = &e->lanes[k];
        v->s = e->n_vars > 1 ? s->instances[k] : s;
        variant_attach(v);
    }
    pthread_mutex_unlock(&p->swap_lock);
    *out = e;
    return OBS_OK;

fail_unlock:
    pthread_mutex_unlock(&p->swap_lock);
fail:
    exp_free(e);
    return rc < 0 ? rc : OBS_EPLUGIN;
}

void experiment_stop(experiment *e)
{
    pthread_mutex_lock(&e->mu);
    e->stop_req = 1;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

int experiment_wait(experiment *e, uint64_t timeout_ns)
{
    uint64_t until = host_now_ns() + timeout_ns;
    for (;;) {
        int st = atomic_load(&e->state);
        if (st == EXP_DONE || st == EXP_STOPPED || st == EXP_FAILED)
            return 1;
        if (timeout_ns && host_now_ns() >= until)
            return 0;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
}

experiment *experiment_find(pipeline *p, uint64_t id)
{
    pthread_mutex_lock(&p->swap_lock);
    lab_list *lab = p->extension;
    experiment *e = lab ? lab->head : NULL;
    while (e && e->id != id)
        e = e->next;
    pthread_mutex_unlock(&p->swap_lock);
    return e;
}

/* pipeline_destroy(), as the pipeline's extension_free: stops every
 * experiment, joins their threads, frees them. */
static void lab_free(pipeline *p)
{
    lab_list *lab = p->extension;
    if (!lab)
        return;
    for (experiment *e = lab->head, *next; e; e = next) {
        next = e->next;
        if (e->thread_started) {
            experiment_stop(e);
            pthread_join(e->thread, NULL);
        }
        exp_free(e);
    }
    free(lab);
    p->extension = NULL;
}
