/*
 * pipeline.c - a pipeline's life: building it (plugins opened and checked,
 * parameters validated, instances initialised, rings and the batch pool
 * sized), running its stage threads (stage_thread.c) until the end of the
 * run, the drain, and tearing it down (see pipeline.h).
 *
 * Thread structure: stage i reads batches from rings[i-1] and writes to
 * rings[i]. Batches come from one pool sized so that every ring can be full
 * while every stage holds an input and an output batch, with room for the
 * borrowed chains of pass-through transforms; so taking a batch can wait
 * only for a downstream stage to make progress, never deadlock.
 *
 * Shutdown is a wave: the generator stops producing and closes its ring; each
 * later stage drains its input until ring_pop() returns NULL, flushes, and
 * closes its own output. Nothing accepted into a ring is ever dropped.
 */
#include "engine/pipeline.h"

#include "engine/host.h"
#include "engine/snapshot.h"
#include "engine/stage_thread.h"
#include "engine/swap.h"
#include "obs_profiler.h"
#include "util/mix.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* The CPU time that two back-to-back reads of the thread CPU clock charge
 * to the thread (median of 7), subtracted from each sampled callback. */
static uint64_t calibrate_cpu_read(void)
{
    uint64_t d[7];
    for (int i = 0; i < 7; i++) {
        uint64_t a = host_thread_cpu_ns();
        d[i] = host_thread_cpu_ns() - a;
    }
    for (int i = 1; i < 7; i++)
        for (int j = i; j > 0 && d[j - 1] > d[j]; j--) {
            uint64_t t = d[j];
            d[j] = d[j - 1];
            d[j - 1] = t;
        }
    return d[3];
}

static obs_kind kind_at(size_t i, size_t n)
{
    if (i == 0)
        return OBS_KIND_GENERATOR;
    return i + 1 == n ? OBS_KIND_SINK : OBS_KIND_TRANSFORM;
}

/* The most memory the batch pool may take up front (records and arenas at
 * their initial size): a pipeline whose rings could hold more in flight is
 * refused when it is built. */
#define PIPELINE_POOL_BUDGET (2ull << 30)

/* Instances of config stage i: its parallelism (the generator: 1). */
static uint32_t instances_of(const obs_config *cfg, size_t i)
{
    uint32_t n = cfg->stages[i].parallelism;
    return i == 0 || n == 0 ? 1 : n;
}

/* A stage downstream of i (not only the next) routes by key. */
static int key_routed_after(const pipeline *p, size_t i)
{
    for (size_t j = i + 1; j < p->n_stages; j++)
        if (p->cfg->stages[j].partition == CFG_PARTITION_KEY && p->stages[j].n_instances > 1)
            return 1;
    return 0;
}

/* One ring from every instance of each stage to every instance of the next:
 * instance a of stage i pushes into its outs[b], which is instance b of
 * stage i + 1's ins[a]. A consumer of several rings is signalled through
 * its bell. */
static int connect_rings(pipeline *p, char *err, size_t errlen)
{
    const obs_config *cfg = p->cfg;
    size_t r = 0;
    for (size_t i = 0; i < p->n_stages; i++) {
        stage *up = &p->stages[i];
        for (uint32_t k = 0; k < up->n_instances; k++) {
            stage *s = up->instances[k];
            s->keep_keys = s->kind == OBS_KIND_TRANSFORM && key_routed_after(p, i);
            if (i + 1 < p->n_stages) {
                s->n_out = p->stages[i + 1].n_instances;
                s->outs = calloc(s->n_out, sizeof(ring *));
                s->out_by_key = cfg->stages[i + 1].partition == CFG_PARTITION_KEY && s->n_out > 1;
            }
            if (i > 0) {
                s->n_in = p->stages[i - 1].n_instances;
                s->ins = calloc(s->n_in, sizeof(ring *));
            }
            if ((s->n_out && !s->outs) || (s->n_in && !s->ins)) {
                snprintf(err, errlen, "out of memory while building the pipeline");
                return OBS_ENOMEM;
            }
        }
    }
    for (size_t i = 0; i + 1 < p->n_stages; i++) {
        stage *up = &p->stages[i], *down = &p->stages[i + 1];
        for (uint32_t a = 0; a < up->n_instances; a++)
            for (uint32_t b = 0; b < down->n_instances; b++) {
                ring *rg = &p->rings[r++];
                int rc = ring_init(rg, cfg->ring_capacity);
                if (rc < 0) {
                    snprintf(err, errlen, "ring capacity %u: %s", cfg->ring_capacity,
                             obs_strerror(rc));
                    return rc;
                }
                stage *prod = up->instances[a], *cons = down->instances[b];
                prod->outs[b] = rg;
                cons->ins[a] = rg;
                if (cons->n_in > 1)
                    rg->bell = &cons->bell;
            }
    }
    for (size_t t = 0; t < p->n_stages; t++)
        for (uint32_t k = 0; k < p->stages[t].n_instances; k++) {
            stage *s = p->stages[t].instances[k];
            s->out = s->n_out ? s->outs[0] : NULL;
            s->in = s->n_in ? s->ins[0] : NULL;
        }
    return OBS_OK;
}

static int create(const obs_config *cfg, char *const *extra_dirs, size_t n_extra, int check_only,
                  pipeline **out, char *err, size_t errlen);

int pipeline_create(const obs_config *cfg, char *const *extra_dirs, size_t n_extra, pipeline **out,
                    char *err, size_t errlen)
{
    return create(cfg, extra_dirs, n_extra, 0, out, err, errlen);
}

int pipeline_create_checked(const obs_config *cfg, char *const *extra_dirs, size_t n_extra,
                            pipeline **out, char *err, size_t errlen)
{
    return create(cfg, extra_dirs, n_extra, 1, out, err, errlen);
}

/* The plugin directories of the installed hostd that exist: the one next to
 * the executable (<prefix>/bin/hostd -> <prefix>/lib/observatory/plugins,
 * so an install with `cmake --install --prefix P` finds its plugins
 * wherever P is), then the configured prefix's. At most two, no repeats. */
static size_t installed_plugin_dirs(char dirs[2][PATH_MAX])
{
    size_t n = 0;
    char exe[PATH_MAX], cand[PATH_MAX], real[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            if (snprintf(cand, sizeof cand, "%s/%s", exe, OBS_PLUGIN_DIR_FROM_BIN) <
                    (int)sizeof cand &&
                realpath(cand, real))
                memcpy(dirs[n++], real, sizeof real);
        }
    }
    if (realpath(OBS_DEFAULT_PLUGIN_DIR, real) && (n == 0 || strcmp(dirs[0], real) != 0))
        memcpy(dirs[n++], real, sizeof real);
    return n;
}

static int create(const obs_config *cfg, char *const *extra_dirs, size_t n_extra, int check_only,
                  pipeline **out, char *err, size_t errlen)
{
    int rc = OBS_ENOMEM;
    char **cfg_dirs = NULL;
    size_t n_cfg_dirs = 0;
    *out = NULL;
    pipeline *p = calloc(1, sizeof(*p));
    if (!p)
        goto fail_msg;
    p->cfg = cfg;
    p->cost_account = 1;
    p->heap_watch_step_ns = 10000000000ull;
    p->heap_watch_min = 32ll << 20;
    pthread_mutex_init(&p->swap_lock, NULL);

    /* Plugin directories: command line first, then the file's, then the
     * installed hostd's own (the shipped plugins), where it exists. */
    char installed[2][PATH_MAX];
    size_t n_installed = installed_plugin_dirs(installed);
    char **want_buf = calloc(cfg->n_plugin_dirs + 3, sizeof(char *));
    if (!want_buf)
        goto fail_msg;
    char *const *want = want_buf;
    size_t n_want = 0;
    for (size_t i = 0; i < cfg->n_plugin_dirs; i++)
        want_buf[n_want++] = cfg->plugin_dirs[i];
    for (size_t i = 0; i < n_installed; i++)
        want_buf[n_want++] = installed[i];
    if (n_want == 0 && n_extra == 0) {
        /* Nothing at all: the default, so the error names where it looked. */
        want_buf[n_want++] = (char *)OBS_DEFAULT_PLUGIN_DIR;
    }
    char **extra = NULL;
    size_t n_extra_resolved = 0;
    if (n_extra) {
        rc = plugin_dirs_resolve(".", extra_dirs, n_extra, &extra, err, errlen);
        if (rc < 0) {
            free(want_buf);
            goto fail;
        }
        n_extra_resolved = n_extra;
    }
    if (n_want) {
        rc = plugin_dirs_resolve(cfg->dir, want, n_want, &cfg_dirs, err, errlen);
        free(want_buf);
        if (rc < 0) {
            plugin_dirs_free(extra, n_extra_resolved);
            goto fail;
        }
        n_cfg_dirs = n_want;
    } else {
        free(want_buf);
    }
    p->n_dirs = n_extra_resolved + n_cfg_dirs;
    p->dirs = calloc(p->n_dirs ? p->n_dirs : 1, sizeof(char *));
    if (!p->dirs) {
        plugin_dirs_free(extra, n_extra_resolved);
        plugin_dirs_free(cfg_dirs, n_cfg_dirs);
        rc = OBS_ENOMEM;
        goto fail_msg;
    }
    for (size_t i = 0; i < n_extra_resolved; i++)
        p->dirs[i] = extra[i];
    for (size_t i = 0; i < n_cfg_dirs; i++)
        p->dirs[n_extra_resolved + i] = cfg_dirs[i];
    free(extra);
    free(cfg_dirs);

    p->n_stages = cfg->n_stages;
    size_t n_more = 0;
    uint32_t max_n = 1;
    for (size_t i = 0; i < p->n_stages; i++) {
        uint32_t n = instances_of(cfg, i);
        n_more += n - 1;
        max_n = n > max_n ? n : max_n;
        if (i + 1 < p->n_stages)
            p->n_rings += (size_t)n * instances_of(cfg, i + 1);
    }
    p->n_threads = p->n_stages + n_more;
    p->stages = calloc(p->n_stages, sizeof(stage));
    p->more = calloc(n_more ? n_more : 1, sizeof(stage));
    p->rings = calloc(p->n_rings ? p->n_rings : 1, sizeof(ring));
    if (!p->stages || !p->more || !p->rings)
        goto fail_msg;
    for (size_t i = 0, m = 0; i < p->n_stages; i++) {
        uint32_t n = instances_of(cfg, i);
        stage **inst = calloc(n, sizeof(stage *));
        if (!inst)
            goto fail_msg;
        inst[0] = &p->stages[i];
        for (uint32_t k = 1; k < n; k++)
            inst[k] = &p->more[m++];
        for (uint32_t k = 0; k < n; k++) {
            inst[k]->instances = inst;
            inst[k]->instance = k;
            inst[k]->n_instances = n;
        }
    }

    /* Resolve and check every plugin and its parameters before any init, so
     * a typo in the last stage does not cost the first stage's start-up. */
    for (size_t i = 0; i < p->n_stages; i++)
        for (uint32_t k = 0; k < p->stages[i].n_instances; k++) {
            stage *s = p->stages[i].instances[k];
            s->index = i;
            s->cfg = &cfg->stages[i];
            s->kind = kind_at(i, p->n_stages);
            s->pipeline = p;
            s->service = calloc(1, sizeof(histogram));
            s->swap_pause = calloc(1, sizeof(histogram));
            if (s->kind == OBS_KIND_GENERATOR)
                s->lag = calloc(1, sizeof(histogram));
            if (s->kind == OBS_KIND_SINK)
                s->latency = calloc(1, sizeof(histogram));
            if (!s->service || !s->swap_pause || (s->kind == OBS_KIND_GENERATOR && !s->lag) ||
                (s->kind == OBS_KIND_SINK && !s->latency)) {
                rc = OBS_ENOMEM;
                goto fail_msg;
            }
            plugin_request req = {
                .stage_name = s->cfg->name,
                .plugin = s->cfg->plugin,
                .version = s->cfg->version,
                .kind = s->kind,
                .dirs = (const char *const *)p->dirs,
                .n_dirs = p->n_dirs,
            };
            stage_slot *sl = &s->first;
            rc = plugin_open(&req, &sl->module, err, errlen);
            if (rc < 0)
                goto fail;
            sl->desc = sl->module->desc;
            rc = config_check_params(cfg, i, sl->desc, &sl->params, err, errlen);
            if (rc < 0)
                goto fail;
            sl->params_view =
                (obs_params){.values = sl->params.values, .n_values = sl->params.n_values};
            sl->api = &s->host.api;
            atomic_store(&s->slot, sl);
        }

    rc = connect_rings(p, err, errlen);
    if (rc < 0)
        goto fail;

    /* Every ring full + an input and an output batch per thread (and the
     * sub-batches of a split by key), times the longest borrowed chain (one
     * link per pass-through transform and per split). */
    uint64_t slots = (uint64_t)p->n_rings * cfg->ring_capacity;
    uint64_t chain = p->n_stages - 1, held = 2;
    for (size_t i = 0; i < p->n_stages; i++)
        if (p->stages[i].out_by_key) {
            chain++;
            held = 2 + max_n;
        }
    uint64_t n_batches = (slots + held * p->n_threads + 2) * chain;
    uint64_t max_records = cfg->max_batch_bytes / sizeof(obs_record);
    if (max_records > UINT32_MAX)
        max_records = UINT32_MAX;
    if (max_records < cfg->batch_size)
        max_records = cfg->batch_size;
    uint64_t arena0 = (uint64_t)cfg->batch_size * 64;
    if (arena0 > cfg->max_batch_bytes)
        arena0 = cfg->max_batch_bytes;
    /* What the batches take before any grows: refused above a budget, with
     * the settings that make it, rather than reserved and touched later. */
    uint64_t batch_bytes = (uint64_t)cfg->batch_size * sizeof(obs_record) + arena0;
    if (n_batches > UINT32_MAX / 2 || n_batches * batch_bytes > PIPELINE_POOL_BUDGET) {
        snprintf(err, errlen,
                 "the pipeline would hold up to %" PRIu64 " batches in flight (%.1f GiB at batch "
                 "size %u): %zu rings of %u batches between %zu stage threads; lower "
                 "ring_capacity, parallelism or batch_size",
                 n_batches, (double)(n_batches * batch_bytes) / (1024.0 * 1024 * 1024),
                 cfg->batch_size, p->n_rings, cfg->ring_capacity, p->n_threads);
        rc = OBS_ECONFIG;
        goto fail;
    }
    if (check_only) {
        *out = p;
        return 0;
    }
    rc = pool_init(&p->pool, (uint32_t)n_batches, cfg->batch_size, arena0, (uint32_t)max_records,
                   cfg->max_batch_bytes);
    if (rc < 0) {
        snprintf(err, errlen, "cannot allocate %" PRIu64 " batches of %u records: %s", n_batches,
                 cfg->batch_size, obs_strerror(rc));
        goto fail;
    }

    int64_t wall_offset = host_wall_offset_ns();
    for (size_t i = 0; i < p->n_stages; i++)
        for (uint32_t k = 0; k < p->stages[i].n_instances; k++) {
            stage *s = p->stages[i].instances[k];
            stage_slot *sl = &s->first;
            /* Instance 0 keeps the stage's seed of a one-instance run. */
            uint64_t seed = mix64(cfg->seed + i);
            host_ctx_init(&s->host, s->cfg->name, sl->module->path, k ? mix64(seed + k) : seed,
                          cfg->batch_size, wall_offset);
            s->host.blocked_into = &s->stats.blocked_ns;
            alloc_counters a0 = alloc_tls;
            rc = sl->desc->init(sl->api, &sl->params_view, &sl->instance);
            stage_heap_charge(s, &a0);
            if (rc != 0) {
                char which[48] = "";
                if (s->n_instances > 1)
                    snprintf(which, sizeof which, " (instance %u of %u)", k, s->n_instances);
                snprintf(err, errlen, "stage '%s'%s: plugin '%s' (%s): init failed: %s (%d)",
                         s->cfg->name, which, sl->desc->name, sl->module->path, obs_strerror(rc),
                         rc);
                rc = rc < 0 ? rc : OBS_EPLUGIN;
                goto fail;
            }
            sl->initialised = 1;
            sl->prof_tag = swap_prof_tag(s, sl, "A");
        }
    p->cpu_read_ns = calibrate_cpu_read();
    *out = p;
    return OBS_OK;

fail_msg:
    snprintf(err, errlen, "out of memory while building the pipeline");
fail:
    pipeline_destroy(p);
    return rc < 0 ? rc : OBS_ENOMEM;
}

void pipeline_stop(pipeline *p)
{
    atomic_store(&p->stop, 1);
}

static void snapshot_all(pipeline *p, int warm)
{
    for (size_t i = 0; i < p->n_stages; i++)
        stage_snapshot_take(&p->stages[i], warm ? &p->stages[i].warm : &p->stages[i].stop);
}

/* The watchdog: logs, once per callback, a plugin callback that has been
 * running longer than run.callback_warn. Main thread, every poll. */
static void watchdog(pipeline *p, uint64_t now)
{
    uint64_t limit = p->cfg->callback_warn_ns;
    if (!limit)
        return;
    for (size_t j = 0; j < p->n_stages; j++)
        for (uint32_t k = 0; k < p->stages[j].n_instances; k++) {
            stage *s = p->stages[j].instances[k];
            uint64_t since = atomic_load_explicit(&s->in_callback_since_ns, memory_order_relaxed);
            if (!since || now < since || now - since < limit || s->warned_since_ns == since)
                continue;
            s->warned_since_ns = since;
            const stage_slot *sl = stage_active(s);
            char which[40] = "";
            if (s->n_instances > 1)
                snprintf(which, sizeof which, " (instance %u)", k);
            host_log(s->cfg->name, OBS_LOG_WARN,
                     "plugin %s %s%s: its %s callback has been running for %.1f s "
                     "(run.callback_warn %.1f s)",
                     sl->desc->name, sl->desc->version, which,
                     s->kind == OBS_KIND_GENERATOR   ? "generate"
                     : s->kind == OBS_KIND_TRANSFORM ? "process"
                                                     : "consume",
                     (double)(now - since) / 1e9, (double)limit / 1e9);
        }
}

/* The heap watch: a stage whose live heap (every instance's, summed) grew
 * at each of the last HEAP_WATCH_STEPS steps (p->heap_watch_step_ns apart),
 * by more than p->heap_watch_min in all, is said to be growing: logged (again only once it has doubled since),
 * and flagged in snapshots (/metrics, /api/v1/stages, the dashboard). A
 * cache that fills and then stays is not flagged: it stops growing. */
#define HEAP_WATCH_STEPS 6

static int64_t stage_heap_live(const stage *s)
{
    int64_t sum = 0;
    for (uint32_t k = 0; k < s->n_instances; k++) {
        stage_stats *st = (stage_stats *)&s->instances[k]->stats;
        sum += (int64_t)(atomic_load_explicit(&st->heap_made, memory_order_relaxed) -
                         atomic_load_explicit(&st->heap_freed, memory_order_relaxed)) +
               atomic_load_explicit(&st->heap_init, memory_order_relaxed);
    }
    return sum;
}

static void heap_watch(pipeline *p, uint64_t now)
{
    if (!alloc_interposer_active())
        return;
    for (size_t j = 0; j < p->n_stages; j++) {
        stage *s = &p->stages[j];
        if (now < s->heap_next_ns)
            continue;
        s->heap_next_ns = now + p->heap_watch_step_ns;
        int64_t live = stage_heap_live(s);
        if (s->heap_n == HEAP_WATCH_STEPS + 1) {
            memmove(s->heap_seen, s->heap_seen + 1, HEAP_WATCH_STEPS * sizeof s->heap_seen[0]);
            s->heap_n--;
        }
        s->heap_seen[s->heap_n++] = live;
        int growing = s->heap_n == HEAP_WATCH_STEPS + 1 &&
                      live - s->heap_seen[0] > p->heap_watch_min;
        for (uint32_t i = 1; growing && i < s->heap_n; i++)
            growing = s->heap_seen[i] > s->heap_seen[i - 1];
        atomic_store_explicit(&s->heap_growing, growing, memory_order_relaxed);
        if (growing && live > 2 * s->heap_warned) {
            s->heap_warned = live;
            const stage_slot *sl = stage_active(s);
            host_log(s->cfg->name, OBS_LOG_WARN,
                     "plugin %s %s: its live heap grew from %.1f to %.1f MiB in the last %.3g "
                     "s, at every %.3g s step (a leak? /metrics observatory_heap_live_bytes "
                     "follows it)",
                     sl->desc->name, sl->desc->version, (double)s->heap_seen[0] / 1048576.0,
                     (double)live / 1048576.0,
                     (double)(HEAP_WATCH_STEPS * p->heap_watch_step_ns) / 1e9,
                     (double)p->heap_watch_step_ns / 1e9);
        }
    }
}

size_t pipeline_stuck(const pipeline *p, char *buf, size_t len)
{
    size_t n = 0, used = 0;
    uint64_t now = host_now_ns();
    if (len)
        buf[0] = '\0';
    for (size_t j = 0; j < p->n_stages; j++)
        for (uint32_t k = 0; k < p->stages[j].n_instances; k++) {
            const stage *s = p->stages[j].instances[k];
            if (!s->thread_started || atomic_load(&((stage *)s)->thread_done))
                continue;
            uint64_t since =
                atomic_load_explicit(&((stage *)s)->in_callback_since_ns, memory_order_relaxed);
            char what[96];
            if (since && now > since)
                snprintf(what, sizeof what, "in a callback of %s for %.1f s",
                         stage_active(s)->desc->name, (double)(now - since) / 1e9);
            else
                snprintf(what, sizeof what, "waiting for its input or output");
            char inst[24] = "";
            if (s->n_instances > 1)
                snprintf(inst, sizeof inst, " instance %u", k);
            if (used + 1 < len) {
                int w = snprintf(buf + used, len - used, "%s'%s'%s (%s)", n ? ", " : "",
                                 s->cfg->name, inst, what);
                if (w > 0)
                    used += (size_t)w < len - used ? (size_t)w : len - used - 1;
            }
            n++;
        }
    return n;
}

int pipeline_run(pipeline *p, int (*stop_check)(void *), void *arg)
{
    const obs_config *cfg = p->cfg;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);

    p->t_start_ns = host_now_ns();
    int rc = OBS_OK;
    /* Start from the sink so every consumer waits before its producer runs. */
    for (size_t j = p->n_stages; j-- > 0 && rc == OBS_OK;)
        for (uint32_t k = 0; k < p->stages[j].n_instances; k++) {
            stage *s = p->stages[j].instances[k];
            void *(*fn)(void *) = stage_thread_fn(s->kind);
            int e = pthread_create(&s->thread, NULL, fn, s);
            if (e != 0) {
                host_log(s->cfg->name, OBS_LOG_ERROR, "cannot start the stage thread: %s",
                         strerror(e));
                rc = OBS_ENOMEM;
                break;
            }
            s->thread_started = 1;
            char name[32]; /* the kernel keeps 15 bytes */
            if (s->n_instances > 1)
                snprintf(name, sizeof(name), "obs:%s.%u", s->cfg->name, k);
            else
                snprintf(name, sizeof(name), "obs:%s", s->cfg->name);
            name[15] = '\0';
            pthread_setname_np(s->thread, name);
        }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    atomic_store(&p->running, 1);

    if (rc == OBS_OK) {
        int warmed = cfg->warmup_ns == 0;
        if (warmed) {
            p->t_warm_ns = p->t_start_ns;
            snapshot_all(p, 1);
        }
        for (;;) {
            uint64_t now = host_now_ns();
            if (!warmed && now - p->t_start_ns >= cfg->warmup_ns) {
                p->t_warm_ns = now;
                snapshot_all(p, 1);
                warmed = 1;
            }
            watchdog(p, now);
            heap_watch(p, now);
            if (atomic_load(&p->stop) || atomic_load(&p->generator_done) ||
                (cfg->duration_ns && now - p->t_start_ns >= cfg->duration_ns) ||
                (stop_check && stop_check(arg)))
                break;
            uint64_t next = now + 20000000u;
            if (cfg->duration_ns && p->t_start_ns + cfg->duration_ns < next)
                next = p->t_start_ns + cfg->duration_ns;
            if (!warmed && p->t_start_ns + cfg->warmup_ns < next)
                next = p->t_start_ns + cfg->warmup_ns;
            host_sleep_until(next);
        }
        if (!warmed) {
            /* Stopped during warm-up: report the whole run rather than nothing. */
            p->t_warm_ns = p->t_start_ns;
        }
    }
    p->t_stop_ns = host_now_ns();
    snapshot_all(p, 0);
    pipeline_stop(p);
    if (rc != OBS_OK) {
        /* Threads that did start must still drain: close the rings nobody
         * will produce into (stages that never started). */
        for (size_t j = 0; j < p->n_stages; j++)
            for (uint32_t k = 0; k < p->stages[j].n_instances; k++) {
                stage *s = p->stages[j].instances[k];
                for (uint32_t o = 0; !s->thread_started && o < s->n_out; o++)
                    ring_close(s->outs[o]);
            }
    }
    /* The drain: every thread ends once its input is done. Bounded by
     * run.drain_timeout, and cut short when stop_check says 2 (a second
     * signal): then the threads still running are left as they are, the
     * pipeline is marked abandoned and the caller reports what it has. */
    uint64_t deadline = cfg->drain_timeout_ns ? p->t_stop_ns + cfg->drain_timeout_ns : 0;
    const char *why = NULL;
    for (size_t j = 0; j < p->n_stages && !why; j++)
        for (uint32_t k = 0; k < p->stages[j].n_instances && !why; k++) {
            stage *s = p->stages[j].instances[k];
            while (s->thread_started) {
                struct timespec until = host_realtime_in(20000000u);
                if (pthread_timedjoin_np(s->thread, NULL, &until) == 0) {
                    s->thread_started = 0;
                    break;
                }
                uint64_t now = host_now_ns();
                watchdog(p, now);
                if (deadline && now >= deadline)
                    why = "run.drain_timeout passed";
                else if (stop_check && stop_check(arg) == 2)
                    why = "asked to stop at once";
                if (why)
                    break;
            }
        }
    if (why) {
        char stuck[1024];
        pipeline_stuck(p, stuck, sizeof stuck);
        host_log(NULL, OBS_LOG_ERROR,
                 "drain abandoned after %.1f s (%s): still running: %s; the report covers what "
                 "was done until now",
                 (double)(host_now_ns() - p->t_stop_ns) / 1e9, why, stuck);
        atomic_store(&p->abandoned, 1);
        p->t_end_ns = host_now_ns();
        return OBS_EAGAIN;
    }
    atomic_store(&p->running, 0);
    p->t_end_ns = host_now_ns();
    if (p->failed && rc == OBS_OK)
        rc = OBS_EPLUGIN;
    return rc;
}

void pipeline_destroy(pipeline *p)
{
    if (!p)
        return;
    if (p->extension_free)
        p->extension_free(p);
    /* Sinks first, the generator last: a sink that still holds a source's
     * batch (obs_host.hold) releases it in its fini at the latest, and the
     * source must still be there to be told (origin.h). */
    for (size_t i = p->n_stages; p->stages && i-- > 0;) {
        stage **inst = p->stages[i].instances;
        uint32_t n = inst ? p->stages[i].n_instances : 1;
        for (uint32_t k = 0; k < n; k++) {
            stage *s = inst ? inst[k] : &p->stages[i];
            swap_free_slots(s);
            free(s->swap_pause);
            free(s->service);
            free(s->lag);
            free(s->latency);
            free(s->ins);
            free(s->outs);
        }
        free(inst);
    }
    if (p->rings)
        for (size_t i = 0; i < p->n_rings; i++)
            ring_destroy(&p->rings[i]);
    pool_destroy(&p->pool);
    free(p->rings);
    free(p->more);
    free(p->stages);
    plugin_dirs_free(p->dirs, p->n_dirs);
    free(p);
}
