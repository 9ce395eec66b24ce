/*
 * collector.c - the consuming half of the sampler: a thread that drains the
 * per-thread rings every drain_ms, interns each stack, and adds it to every
 * open window (on-demand windows and the current continuous window).
 *
 * Addresses become locations (module id + offset) here, at drain time,
 * while the module that contained them is still live: this is what keeps
 * a sample of plugin v1 attributed to v1 after v2 is mapped at the same
 * addresses (obs_prof_module_retire drains synchronously before it retires:
 * the lifecycle registers prof_collector_drain as the registry's hook).
 * Symbol names are looked up only when a window closes, off the hot path,
 * into a symbolised obs_prof_profile.
 *
 * Interface and place in the whole: collector.h. It reads the rings and
 * arms the timers through state.h only, and knows nothing of the signal
 * handler that fills them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector.h"
#include "modules.h"
#include "obs_profiler.h"
#include "observatory/stage.h"
#include "profile.h"
#include "state.h"
#include "util.h"

#define MAX_STACKS (1u << 22) /* distinct stacks kept; beyond, samples count as truncated */

typedef struct raw_window {
    prof_blobs keys; /* prof_entry */
    uint64_t *weight, *count;
    uint32_t cap;
    uint64_t start_ns, dropped;
} raw_window;

struct obs_prof_window {
    raw_window raw;
    int orphan; /* the profiler shut down while this window was open */
    obs_prof_window *next;
};

static struct {
    pthread_t thread;
    int running, stop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    prof_blobs stacks;    /* uint64 locations, leaf first */
    obs_prof_window *windows;
    obs_prof_window *cont; /* the open continuous window */
    uint64_t cont_window_ns, cont_deadline;
    obs_prof_sink_fn cont_fn;
    void *cont_ctx;
    uint64_t dropped, truncated, sink_failures;
} col = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static int raw_add(raw_window *w, uint32_t stack, uint32_t tag, uint64_t weight)
{
    prof_entry e = {stack, tag};
    uint32_t id;
    if (prof_blobs_intern(&w->keys, &e, sizeof e, &id) != 0)
        return OBS_ENOMEM;
    if (id >= w->cap) {
        uint32_t nc = w->cap ? w->cap * 2 : 256;
        uint64_t *nw = realloc(w->weight, nc * sizeof *nw);
        if (!nw)
            return OBS_ENOMEM;
        w->weight = nw;
        uint64_t *ncnt = realloc(w->count, nc * sizeof *ncnt);
        if (!ncnt)
            return OBS_ENOMEM;
        w->count = ncnt;
        memset(w->weight + w->cap, 0, (nc - w->cap) * sizeof *nw);
        memset(w->count + w->cap, 0, (nc - w->cap) * sizeof *ncnt);
        w->cap = nc;
    }
    w->weight[id] += weight;
    w->count[id] += 1;
    return 0;
}

static void raw_free(raw_window *w)
{
    prof_blobs_free(&w->keys);
    free(w->weight);
    free(w->count);
    memset(w, 0, sizeof *w);
}

static void add_to_windows(uint32_t stack, uint32_t tag, uint64_t weight)
{
    for (obs_prof_window *w = col.windows; w; w = w->next)
        if (raw_add(&w->raw, stack, tag, weight) != 0)
            w->raw.dropped += weight;
    if (col.cont && raw_add(&col.cont->raw, stack, tag, weight) != 0)
        col.cont->raw.dropped += weight;
}

/* Drains every ring (col.lock held). */
static void drain_locked(void)
{
    if (!prof_g.threads)
        return;
    uint64_t locs[OBS_PROF_MAX_DEPTH];
    for (uint32_t i = 0; i < prof_g.cfg.max_threads; i++) {
        prof_thread *t = &prof_g.threads[i];
        int state = atomic_load(&t->state);
        if (state == 0)
            continue;
        uint32_t tail = atomic_load_explicit(&t->tail, memory_order_relaxed);
        uint32_t head = atomic_load_explicit(&t->head, memory_order_acquire);
        for (; tail != head; tail++) {
            const prof_sample *s = prof_state_sample_at(t, tail);
            uint32_t depth = s->depth <= prof_g.cfg.max_depth ? s->depth : prof_g.cfg.max_depth;
            for (uint32_t k = 0; k < depth; k++) {
                /* Callers' entries are return addresses: look up the call
                 * instruction, which is in the right function even when
                 * the call is the last instruction of it. */
                uintptr_t a = s->pc[k] - (k > 0);
                locs[k] = prof_modules_locate(a);
            }
            uint32_t stack;
            if (col.stacks.n >= MAX_STACKS) {
                int64_t f = prof_blobs_find(&col.stacks, locs, depth * (uint32_t)sizeof locs[0]);
                if (f < 0) {
                    col.truncated += s->weight;
                    continue;
                }
                stack = (uint32_t)f;
            } else if (prof_blobs_intern(&col.stacks, locs, depth * (uint32_t)sizeof locs[0],
                                         &stack) != 0) {
                col.dropped += s->weight;
                continue;
            }
            add_to_windows(stack, s->tag, s->weight);
        }
        atomic_store_explicit(&t->tail, tail, memory_order_release);
        uint64_t d = atomic_exchange(&t->dropped, 0);
        if (d) {
            col.dropped += d;
            for (obs_prof_window *w = col.windows; w; w = w->next)
                w->raw.dropped += d;
            if (col.cont)
                col.cont->raw.dropped += d;
        }
        int two = 2;
        if (state == 2 && atomic_load(&t->head) == tail)
            atomic_compare_exchange_strong(&t->state, &two, 0);
    }
}

void prof_collector_drain(void)
{
    pthread_mutex_lock(&col.lock);
    drain_locked();
    pthread_mutex_unlock(&col.lock);
}

/* Symbolises a raw window (col.lock held) into a new profile. */
static int window_build_locked(const raw_window *w, uint64_t end_ns, obs_prof_profile **out)
{
    obs_prof_profile *p = prof_profile_new();
    uint32_t *tagmap = NULL, *framecache = NULL;
    prof_blobs locmap = {0};
    uint32_t frames[OBS_PROF_MAX_DEPTH];
    int rc = OBS_ENOMEM;
    if (!p)
        return OBS_ENOMEM;

    pthread_mutex_lock(&prof_g.lock);
    uint32_t n_tags = prof_g.tagdb->tags.n;
    tagmap = malloc((n_tags ? n_tags : 1) * sizeof *tagmap);
    for (uint32_t i = 0; tagmap && i < n_tags; i++)
        tagmap[i] = UINT32_MAX;
    pthread_mutex_unlock(&prof_g.lock);
    if (!tagmap)
        goto out;

    uint32_t fcap = 0;
    for (uint32_t e = 0; e < w->keys.n; e++) {
        const prof_entry *en = prof_blobs_get(&w->keys, e, NULL);
        if (en->tag >= n_tags)
            continue;
        if (tagmap[en->tag] == UINT32_MAX) {
            obs_prof_label labels[OBS_PROF_MAX_LABELS];
            pthread_mutex_lock(&prof_g.lock);
            const prof_tagkey *tk = prof_blobs_get(&prof_g.tagdb->tags, en->tag, NULL);
            /* tagdb strings are never moved while we read them: the lock
             * is held, and only obs_prof_tag_intern (which takes it) adds. */
            for (uint32_t k = 0; k < tk->n; k++) {
                labels[k].key = prof_profile_strget(prof_g.tagdb, tk->kv[2 * k]);
                labels[k].value = prof_profile_strget(prof_g.tagdb, tk->kv[2 * k + 1]);
            }
            rc = prof_profile_tag(p, labels, tk->n, &tagmap[en->tag]);
            pthread_mutex_unlock(&prof_g.lock);
            if (rc != 0)
                goto out;
        }
        uint32_t len;
        const uint64_t *locs = prof_blobs_get(&col.stacks, en->stack, &len);
        uint32_t depth = len / (uint32_t)sizeof *locs;
        for (uint32_t k = 0; k < depth; k++) {
            uint32_t li;
            rc = OBS_ENOMEM;
            if (prof_blobs_intern(&locmap, &locs[k], sizeof locs[k], &li) != 0)
                goto out;
            if (li >= fcap) {
                uint32_t nc = fcap ? fcap * 2 : 256;
                uint32_t *nf = realloc(framecache, nc * sizeof *nf);
                if (!nf)
                    goto out;
                framecache = nf;
                for (uint32_t z = fcap; z < nc; z++)
                    framecache[z] = UINT32_MAX;
                fcap = nc;
            }
            if (framecache[li] == UINT32_MAX) {
                const char *mod, *func, *sym;
                int prefix;
                prof_modules_resolve(locs[k], &mod, &prefix, &func, &sym);
                char label[512];
                if (prefix)
                    snprintf(label, sizeof label, "%s:%s", mod, func);
                else
                    snprintf(label, sizeof label, "%s", func);
                if ((rc = prof_profile_frame(p, label, mod, sym, &framecache[li])) != 0)
                    goto out;
            }
            frames[depth - 1 - k] = framecache[li]; /* root first */
        }
        if ((rc = prof_profile_add(p, frames, depth, tagmap[en->tag], w->weight[e], w->count[e])) != 0)
            goto out;
    }
    p->info.start_ns = w->start_ns;
    p->info.end_ns = end_ns;
    p->info.hz = prof_g.cfg.hz;
    p->info.unwinder = prof_g.cfg.unwinder;
    p->info.dropped = w->dropped;
    *out = p;
    p = NULL;
    rc = 0;
out:
    free(tagmap);
    free(framecache);
    prof_blobs_free(&locmap);
    if (p)
        obs_prof_profile_free(p);
    return rc;
}

/* Consumer count: timers run while it is not zero (col.lock held). */
static void consumers_add(int d)
{
    pthread_mutex_lock(&prof_g.lock);
    int before = prof_g.n_consumers;
    prof_g.n_consumers += d;
    if (before == 0 && prof_g.n_consumers > 0)
        prof_state_arm_locked(1);
    else if (before > 0 && prof_g.n_consumers == 0)
        prof_state_arm_locked(0);
    pthread_mutex_unlock(&prof_g.lock);
}

static void cont_close_locked(int reopen)
{
    obs_prof_window *w = col.cont;
    uint64_t now = prof_realtime_ns();
    obs_prof_profile *p = NULL;
    uint8_t *blob = NULL;
    size_t len = 0;
    drain_locked();
    int rc = window_build_locked(&w->raw, now, &p);
    uint64_t start = w->raw.start_ns;
    raw_free(&w->raw);
    w->raw.start_ns = now;
    if (!reopen) {
        free(w);
        col.cont = NULL;
    }
    col.cont_deadline = prof_monotonic_ns() + col.cont_window_ns;
    if (rc == 0)
        rc = obs_prof_profile_encode(p, &blob, &len);
    obs_prof_profile_free(p);
    obs_prof_sink_fn fn = col.cont_fn;
    void *ctx = col.cont_ctx;
    /* The sink writes to a database: do not hold up drains meanwhile. */
    pthread_mutex_unlock(&col.lock);
    if (rc != 0 || fn(ctx, start, now, blob, len) != 0)
        __atomic_add_fetch(&col.sink_failures, 1, __ATOMIC_RELAXED);
    free(blob);
    pthread_mutex_lock(&col.lock);
}

static void *collector_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&col.lock);
    while (!col.stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)prof_g.cfg.drain_ms * 1000000ULL;
        ts.tv_sec += (time_t)(ns / 1000000000ULL);
        ts.tv_nsec = (long)(ns % 1000000000ULL);
        pthread_cond_timedwait(&col.cond, &col.lock, &ts);
        if (col.stop)
            break;
        drain_locked();
        if (col.cont && prof_monotonic_ns() >= col.cont_deadline)
            cont_close_locked(1);
    }
    pthread_mutex_unlock(&col.lock);
    return NULL;
}

int prof_collector_start(void)
{
    pthread_mutex_lock(&col.lock);
    col.stop = 0;
    col.dropped = col.truncated = col.sink_failures = 0;
    int e = pthread_create(&col.thread, NULL, collector_main, NULL);
    col.running = e == 0;
    pthread_mutex_unlock(&col.lock);
    if (e == 0)
        pthread_setname_np(col.thread, "obs-profiler");
    return e == 0 ? 0 : OBS_ENOMEM;
}

void prof_collector_stop(void)
{
    obs_prof_continuous_stop();
    pthread_mutex_lock(&col.lock);
    if (!col.running) {
        pthread_mutex_unlock(&col.lock);
        return;
    }
    col.stop = 1;
    pthread_cond_broadcast(&col.cond);
    pthread_mutex_unlock(&col.lock);
    pthread_join(col.thread, NULL);
    pthread_mutex_lock(&col.lock);
    col.running = 0;
    while (col.windows) {
        obs_prof_window *w = col.windows;
        col.windows = w->next;
        w->orphan = 1;
        w->next = NULL;
    }
    prof_blobs_free(&col.stacks);
    pthread_mutex_unlock(&col.lock);
    pthread_mutex_lock(&prof_g.lock);
    prof_g.n_consumers = 0;
    prof_state_arm_locked(0);
    pthread_mutex_unlock(&prof_g.lock);
}

int prof_collector_wait(uint64_t deadline_ns)
{
    pthread_mutex_lock(&col.lock);
    while (!col.stop && col.running) {
        uint64_t now = prof_monotonic_ns();
        if (now >= deadline_ns)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t left = deadline_ns - now;
        uint64_t ns = (uint64_t)ts.tv_nsec + left % 1000000000ULL;
        ts.tv_sec += (time_t)(left / 1000000000ULL + ns / 1000000000ULL);
        ts.tv_nsec = (long)(ns % 1000000000ULL);
        pthread_cond_timedwait(&col.cond, &col.lock, &ts);
    }
    int stopped = col.stop || !col.running;
    pthread_mutex_unlock(&col.lock);
    return stopped;
}

void prof_collector_stats(obs_prof_stats *st)
{
    pthread_mutex_lock(&col.lock);
    st->n_stacks = col.stacks.n;
    st->dropped += col.dropped + col.truncated;
    st->sink_failures = __atomic_load_n(&col.sink_failures, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&col.lock);
}

int obs_prof_window_begin(obs_prof_window **out)
{
    if (atomic_load(&prof_initialised) != 1)
        return OBS_ESTATE;
    if (!(prof_g.cfg.backends & OBS_PROF_BACKEND_NATIVE))
        return OBS_ECONFIG;
    obs_prof_window *w = calloc(1, sizeof *w);
    if (!w)
        return OBS_ENOMEM;
    pthread_mutex_lock(&col.lock);
    if (!col.running) {
        pthread_mutex_unlock(&col.lock);
        free(w);
        return OBS_ESTATE;
    }
    drain_locked(); /* samples taken before the window are not in it */
    w->raw.start_ns = prof_realtime_ns();
    w->next = col.windows;
    col.windows = w;
    consumers_add(1);
    pthread_mutex_unlock(&col.lock);
    *out = w;
    return 0;
}

/* Unlinks w (col.lock held); returns 1 if it was linked. */
static int window_unlink_locked(obs_prof_window *w)
{
    for (obs_prof_window **pp = &col.windows; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            consumers_add(-1);
            return 1;
        }
    return 0;
}

int obs_prof_window_end(obs_prof_window *w, obs_prof_profile **out)
{
    if (!w)
        return OBS_EINVAL;
    pthread_mutex_lock(&col.lock);
    int rc = OBS_ESTATE;
    if (!w->orphan && col.running) {
        drain_locked();
        window_unlink_locked(w);
        rc = window_build_locked(&w->raw, prof_realtime_ns(), out);
    }
    pthread_mutex_unlock(&col.lock);
    raw_free(&w->raw);
    free(w);
    return rc;
}

void obs_prof_window_cancel(obs_prof_window *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&col.lock);
    if (!w->orphan)
        window_unlink_locked(w);
    pthread_mutex_unlock(&col.lock);
    raw_free(&w->raw);
    free(w);
}

int obs_prof_continuous_start(uint64_t window_ns, obs_prof_sink_fn fn, void *ctx)
{
    if (!fn || window_ns < 100000000ULL)
        return OBS_EINVAL;
    if (atomic_load(&prof_initialised) != 1)
        return OBS_ESTATE;
    if (!(prof_g.cfg.backends & OBS_PROF_BACKEND_NATIVE))
        return OBS_ECONFIG;
    obs_prof_window *w = calloc(1, sizeof *w);
    if (!w)
        return OBS_ENOMEM;
    pthread_mutex_lock(&col.lock);
    if (col.cont || !col.running) {
        int rc = col.cont ? OBS_EAGAIN : OBS_ESTATE;
        pthread_mutex_unlock(&col.lock);
        free(w);
        return rc;
    }
    drain_locked();
    w->raw.start_ns = prof_realtime_ns();
    col.cont = w;
    col.cont_fn = fn;
    col.cont_ctx = ctx;
    col.cont_window_ns = window_ns;
    col.cont_deadline = prof_monotonic_ns() + window_ns;
    consumers_add(1);
    pthread_mutex_unlock(&col.lock);
    return 0;
}

void obs_prof_continuous_stop(void)
{
    pthread_mutex_lock(&col.lock);
    if (col.cont) {
        cont_close_locked(0);
        consumers_add(-1);
    }
    pthread_mutex_unlock(&col.lock);
}
