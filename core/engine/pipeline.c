/*
 * pipeline.c - stage threads, the generator's schedule, drain and shutdown
 * (see pipeline.h).
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
#include "pipeline.h"

#include "alloc.h"
#include "experiment.h"
#include "obs_profiler.h"
#include "schedule.h"
#include "swap.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

/* A record sent later than this after its intended time counts as late. */
#define GEN_LATE_NS 1000000u
/* Thread CPU time is read around at most one callback per this interval and
 * stage: a read is a system call (about 2 us on this class of machine), so
 * reading it around every callback would cost more than most plugins. */
#define CPU_SAMPLE_INTERVAL_NS 1000000u

static void stat_add(_Atomic uint64_t *v, uint64_t d)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

static void stat_max(_Atomic uint64_t *v, uint64_t x)
{
    if (x > atomic_load_explicit(v, memory_order_relaxed))
        atomic_store_explicit(v, x, memory_order_relaxed);
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(t_ns / 1000000000u),
                          .tv_nsec = (long)(t_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

void stage_snapshot_take(const stage *s, stage_snapshot *snap)
{
    stage_stats *st = (stage_stats *)&s->stats;
    snap->records_in = atomic_load(&st->records_in);
    snap->records_out = atomic_load(&st->records_out);
    snap->bytes_in = atomic_load(&st->bytes_in);
    snap->bytes_out = atomic_load(&st->bytes_out);
    snap->callback_ns = atomic_load(&st->callback_ns);
    snap->errors = atomic_load(&st->callback_errors) + host_error_total(&s->host);
    snap->sampled_cpu_ns = atomic_load(&st->sampled_cpu_ns);
    snap->sampled_wall_ns = atomic_load(&st->sampled_wall_ns);
    snap->allocs = atomic_load(&st->allocs);
    snap->alloc_bytes = atomic_load(&st->alloc_bytes);
}

/* The CPU time that two back-to-back reads of the thread CPU clock charge
 * to the thread (median of 7), subtracted from each sampled callback. */
static uint64_t calibrate_cpu_read(void)
{
    uint64_t d[7];
    for (int i = 0; i < 7; i++) {
        uint64_t a = thread_cpu_ns();
        d[i] = thread_cpu_ns() - a;
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

/* splitmix64: derives independent per-stage seeds from the run's seed. */
static uint64_t seed_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int pipeline_create(const obs_config *cfg, char *const *extra_dirs, size_t n_extra, pipeline **out,
                    char *err, size_t errlen)
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
    pthread_mutex_init(&p->swap_lock, NULL);

    /* Plugin directories: command line first, then the file's, then the
     * installed default when neither gave any. */
    char *const default_dirs[] = {(char *)OBS_DEFAULT_PLUGIN_DIR};
    char *const *want = cfg->plugin_dirs;
    size_t n_want = cfg->n_plugin_dirs;
    if (n_want == 0 && n_extra == 0) {
        want = default_dirs;
        n_want = 1;
    }
    char **extra = NULL;
    size_t n_extra_resolved = 0;
    if (n_extra) {
        rc = plugin_dirs_resolve(".", extra_dirs, n_extra, &extra, err, errlen);
        if (rc < 0)
            goto fail;
        n_extra_resolved = n_extra;
    }
    if (n_want) {
        rc = plugin_dirs_resolve(cfg->dir, want, n_want, &cfg_dirs, err, errlen);
        if (rc < 0) {
            plugin_dirs_free(extra, n_extra_resolved);
            goto fail;
        }
        n_cfg_dirs = n_want;
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
    p->stages = calloc(p->n_stages, sizeof(stage));
    p->rings = calloc(p->n_stages ? p->n_stages - 1 : 1, sizeof(ring));
    if (!p->stages || !p->rings)
        goto fail_msg;

    /* Resolve and check every plugin and its parameters before any init, so
     * a typo in the last stage does not cost the first stage's start-up. */
    for (size_t i = 0; i < p->n_stages; i++) {
        stage *s = &p->stages[i];
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

    for (size_t i = 0; i + 1 < p->n_stages; i++) {
        rc = ring_init(&p->rings[i], cfg->ring_capacity);
        if (rc < 0) {
            snprintf(err, errlen, "ring capacity %u: %s", cfg->ring_capacity, obs_strerror(rc));
            goto fail;
        }
        p->stages[i].out = &p->rings[i];
        p->stages[i + 1].in = &p->rings[i];
    }

    /* Every ring full + an input and an output batch per stage, times the
     * longest borrowed chain (one link per pass-through transform). */
    uint64_t n_batches = ((uint64_t)(p->n_stages - 1) * cfg->ring_capacity + 2 * p->n_stages + 2) *
                         (p->n_stages - 1);
    uint64_t max_records = cfg->max_batch_bytes / sizeof(obs_record);
    if (max_records > UINT32_MAX)
        max_records = UINT32_MAX;
    if (max_records < cfg->batch_size)
        max_records = cfg->batch_size;
    uint64_t arena0 = (uint64_t)cfg->batch_size * 64;
    if (arena0 > cfg->max_batch_bytes)
        arena0 = cfg->max_batch_bytes;
    rc = pool_init(&p->pool, (uint32_t)n_batches, cfg->batch_size, arena0, (uint32_t)max_records,
                   cfg->max_batch_bytes);
    if (rc < 0) {
        snprintf(err, errlen, "cannot allocate %" PRIu64 " batches of %u records: %s", n_batches,
                 cfg->batch_size, obs_strerror(rc));
        goto fail;
    }

    for (size_t i = 0; i < p->n_stages; i++) {
        stage *s = &p->stages[i];
        stage_slot *sl = &s->first;
        host_ctx_init(&s->host, s->cfg->name, sl->module->path, seed_mix(cfg->seed + i),
                      cfg->batch_size);
        rc = sl->desc->init(sl->api, &sl->params_view, &sl->instance);
        if (rc != 0) {
            snprintf(err, errlen, "stage '%s': plugin '%s' (%s): init failed: %s (%d)",
                     s->cfg->name, sl->desc->name, sl->module->path, obs_strerror(rc), rc);
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

/* ------------------------------------------------------------ the threads */

/* Forwards a filled batch; `now` is a clock reading taken just before (the
 * end of the callback that filled it), so no extra clock read is needed. */
static void push_out(stage *s, batch *b, uint64_t now)
{
    stat_add(&s->stats.batches_out, 1);
    stat_add(&s->stats.records_out, b->out.n_records);
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < b->out.n_records; i++)
        bytes += b->out.records[i].len;
    stat_add(&s->stats.bytes_out, bytes);
    uint64_t blocked0 = s->out->blocked_ns;
    b->t_pushed_ns = now;
    ring_push(s->out, b);
    if (s->out->blocked_ns != blocked0)
        atomic_store_explicit(&s->stats.blocked_ns, s->out->blocked_ns, memory_order_relaxed);
}

static void account_in(stage *s, const batch *b)
{
    stat_add(&s->stats.batches_in, 1);
    stat_add(&s->stats.records_in, b->out.n_records);
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < b->out.n_records; i++)
        bytes += b->out.records[i].len;
    stat_add(&s->stats.bytes_in, bytes);
}

/* What the stage thread notes when it enters a plugin callback. */
typedef struct cb_mark {
    uint64_t wall0, cpu0;
    int cpu; /* this callback is a CPU sample */
    alloc_counters a0;
} cb_mark;

static inline void cb_enter(stage *s, cb_mark *m)
{
    if (!s->pipeline->cost_account) {
        *m = (cb_mark){.wall0 = host_now_ns()};
        return;
    }
    m->a0 = alloc_tls;
    uint64_t now = host_now_ns();
    m->cpu = now - s->last_cpu_sample_ns >= CPU_SAMPLE_INTERVAL_NS;
    m->cpu0 = m->cpu ? thread_cpu_ns() : 0;
    m->wall0 = m->cpu ? host_now_ns() : now;
}

/* Charges one callback's cost to the stage when the cost account is on:
 * wall time, CPU time when this callback is a CPU sample (`cpu`, NO_CPU
 * otherwise), the service-time histogram and allocations. */
#define NO_CPU UINT64_MAX
static inline void charge(stage *s, uint64_t now, uint64_t wall, uint64_t cpu, uint64_t allocs,
                          uint64_t frees, uint64_t bytes)
{
    if (cpu != NO_CPU) {
        uint64_t overhead = s->pipeline->cpu_read_ns;
        stat_add(&s->stats.sampled_cpu_ns, cpu > overhead ? cpu - overhead : 0);
        stat_add(&s->stats.sampled_wall_ns, wall);
        s->last_cpu_sample_ns = now;
    }
    stat_add(&s->stats.callback_ns, wall);
    histogram_record(s->service, wall);
    if (allocs || frees) {
        stat_add(&s->stats.allocs, allocs);
        stat_add(&s->stats.frees, frees);
        stat_add(&s->stats.alloc_bytes, bytes);
    }
}

/* Charges the callback to the stage; returns the clock reading at its end. */
static inline uint64_t cb_exit(stage *s, cb_mark *m)
{
    uint64_t c1 = host_now_ns();
    uint64_t wall = c1 - m->wall0;
    if (!s->pipeline->cost_account) {
        stat_add(&s->stats.callback_ns, wall);
        return c1;
    }
    uint64_t cpu = m->cpu ? thread_cpu_ns() - m->cpu0 : NO_CPU;
    const alloc_counters *a1 = &alloc_tls;
    charge(s, c1, wall, cpu, a1->n_allocs - m->a0.n_allocs, a1->n_frees - m->a0.n_frees,
           a1->bytes - m->a0.bytes);
    return c1;
}

/* Charges a callback measured by the experiment code (exp_cost, which
 * always has its CPU time) to the stage, as cb_enter/cb_exit would have;
 * returns the clock's reading now. */
static uint64_t cb_charge(stage *s, const exp_cost *c)
{
    uint64_t now = host_now_ns();
    if (!s->pipeline->cost_account) {
        stat_add(&s->stats.callback_ns, c->wall_ns);
        return now;
    }
    int sample = now - s->last_cpu_sample_ns >= CPU_SAMPLE_INTERVAL_NS;
    charge(s, now, c->wall_ns, sample ? c->cpu_ns : NO_CPU, c->allocs, c->frees, c->bytes);
    return now;
}

/* Called first and last on every stage thread. */
static void thread_begin(stage *s)
{
    if (pthread_getcpuclockid(pthread_self(), &s->cpu_clock) == 0)
        atomic_store(&s->cpu_clock_valid, 1);
    if (obs_prof_active()) {
        /* Sampled from now on, tagged with the active slot's labels. */
        obs_prof_thread_attach(NULL, 0);
        obs_prof_set_tag(stage_active(s)->prof_tag);
    }
    stage_active(s)->t_active_ns = host_now_ns();
}

static void thread_end(stage *s)
{
    experiment_release(s);
    /* A swap that arrives after the last batch can no longer be taken. */
    swap_refuse_pending(s, "the stage has finished its stream");
    atomic_store(&s->stats.cpu_ns, thread_cpu_ns());
    atomic_store(&s->cpu_clock_valid, 0);
    obs_prof_thread_detach();
}

static int flush_slot(stage *s, stage_slot *sl);

/* Takes a pending swap at a batch boundary (stage thread only). */
static inline void swap_poll(stage *s)
{
    if (atomic_load_explicit(&s->pending, memory_order_relaxed))
        swap_take(s, flush_slot);
}

static void callback_failed(stage *s, const char *what, int rc)
{
    stat_add(&s->stats.callback_errors, 1);
    /* Logged once per stage and callback kind, then only counted. */
    if (atomic_load_explicit(&s->stats.callback_errors, memory_order_relaxed) == 1)
        host_log(s->cfg->name, OBS_LOG_WARN, "%s returned %s (%d); counting further failures", what,
                 obs_strerror(rc), rc);
}

static void *generator_main(void *arg)
{
    stage *s = arg;
    pipeline *p = s->pipeline;
    const obs_config *cfg = p->cfg;
    uint32_t bs = cfg->batch_size;
    uint64_t *times = malloc(bs * sizeof(uint64_t));
    uint64_t seq = 0;
    /* sc hands out the intended times; `due` runs ahead of it to count the
     * records whose time has come even when the plugin is too slow to take
     * them (schedule.h), so `scheduled` stays honest when we fall behind. */
    schedule sc, due;
    thread_begin(s);
    /* The kernel may defer a sleeper's wake-up by its timer slack (50 us by
     * default) to coalesce timers: the generator's wake-ups are its send
     * times, so it asks for none (docs/load.md, measured there). */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    if (cfg->realtime_priority) {
        /* Only the generator: its wake-ups are the send times. Other threads
         * keep normal priority, so a stage that never sleeps cannot starve
         * the machine. */
        struct sched_param sp = {.sched_priority = (int)cfg->realtime_priority};
        int rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
        if (rc)
            host_log(s->cfg->name, OBS_LOG_WARN,
                     "run.realtime_priority %u refused (%s): the generator runs with normal "
                     "priority; it needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least %u",
                     cfg->realtime_priority, strerror(rc), cfg->realtime_priority);
    }
    if (!times) {
        host_log(s->cfg->name, OBS_LOG_ERROR, "out of memory for the schedule");
        p->failed = 1;
        goto out;
    }
    schedule_init(&sc, cfg->load, cfg->n_load, cfg->seed, host_now_ns());
    due = sc;

    while (!atomic_load_explicit(&p->stop, memory_order_relaxed)) {
        swap_poll(s);
        uint64_t now = host_now_ns();
        uint64_t t_first = schedule_peek(&sc, now);
        if (t_first == SCHEDULE_NEVER) {
            /* The load has ended (its last phase's duration, or a replay's
             * last timestamp): end the stream as a generator's OBS_DONE does. */
            atomic_store(&p->generator_done, 1);
            break;
        }
        /* times[0 .. ahead) and `look` are the records the look-ahead
         * below already drew, valid once the clock has passed `wake`. */
        uint32_t ahead = 0;
        schedule look;
        if (t_first > now) {
            /* Wake when a full batch is due or the first record has waited
             * max_batch_delay, whichever comes first (looking ahead on a
             * copy), so a batch at low rates is not held back for the full
             * batch duration, which would add to every record's latency. */
            uint64_t wake = schedule_is_max(&sc) ? t_first : t_first + cfg->max_batch_delay_ns;
            if (!schedule_is_max(&sc)) {
                look = sc;
                ahead = schedule_fill(&look, wake, times, bs);
                if (ahead == bs && times[bs - 1] < wake)
                    wake = times[bs - 1];
                /* A max phase fills with the clock's time: draw it anew. */
                if (schedule_is_max(&look))
                    ahead = 0;
            }
            /* Sleep in slices so a stop request is seen within 20 ms. */
            uint64_t until = wake - now > 20000000u ? now + 20000000u : wake;
            sleep_until(until);
            uint64_t woke = host_now_ns();
            stat_add(&s->stats.idle_ns, woke - now);
            if (until != wake)
                continue;
            now = woke;
        }
        uint32_t n = ahead;
        if (ahead)
            sc = look;
        n += schedule_fill(&sc, now, times + n, bs - n);
        /* Records due by now, whether or not they fit in this batch: when
         * the batch took them all, `due` is where sc is (the common case,
         * which saves walking the schedule a third time). */
        if (schedule_peek(&sc, now) > now)
            due = sc;
        else
            schedule_skip(&due, now, 1u << 20);
        uint64_t timed = due.n_timed > sc.n_timed ? due.n_timed : sc.n_timed;
        atomic_store_explicit(&s->stats.scheduled, sc.n_max + timed, memory_order_relaxed);
        if (n == 0)
            continue;

        batch *b = pool_get(&p->pool);
        obs_gen_request req = {.n_records = n, .first_seq = seq, .t_intended_ns = times};
        cb_mark m;
        cb_enter(s, &m);
        stage_slot *sl = stage_active(s);
        int rc = sl->desc->generate(sl->instance, &req, &b->out);
        uint64_t c1 = cb_exit(s, &m);
        if (rc < 0) {
            callback_failed(s, "generate", rc);
            host_log(s->cfg->name, OBS_LOG_ERROR, "generator failed: ending the stream");
            p->failed = 1;
        }
        /* The host owns seq and intended time: stamp them, whatever the plugin
         * wrote, so the end-to-end checks do not depend on plugin care. */
        uint32_t got = b->out.n_records;
        if (got > n) {
            host_log(s->cfg->name, OBS_LOG_ERROR,
                     "generate emitted %u records, %u were asked for: extra records dropped", got,
                     n);
            got = b->out.n_records = n;
        }
        uint64_t late = 0, max_lag = 0;
        for (uint32_t i = 0; i < got; i++) {
            b->out.records[i].seq = seq + i;
            b->out.records[i].t_intended_ns = times[i];
            uint64_t lag = c1 > times[i] ? c1 - times[i] : 0;
            histogram_record(s->lag, lag);
            late += lag > GEN_LATE_NS;
            if (lag > max_lag)
                max_lag = lag;
        }
        seq += got;
        stat_add(&s->stats.late_records, late);
        stat_max(&s->stats.max_lag_ns, max_lag);
        if (got)
            push_out(s, b, c1);
        else
            pool_put(&p->pool, b);
        if (rc == OBS_DONE || rc < 0) {
            atomic_store(&p->generator_done, 1);
            break;
        }
        if (got < n && rc == OBS_OK) {
            host_log(s->cfg->name, OBS_LOG_WARN, "generate emitted %u of %u records", got, n);
        }
    }
    flush_slot(s, stage_active(s));
out:
    free(times);
    thread_end(s);
    ring_close(s->out);
    return NULL;
}

/* Interleaved: B's flush into a fresh batch, forwarded (records B still
 * holds when it is detached or the stream ends go downstream, untagged). */
static void flush_b(stage *s, experiment *e)
{
    pipeline *p = s->pipeline;
    batch *f = pool_get(&p->pool);
    int rc = experiment_flush_b(e, &f->out);
    if (rc < 0)
        callback_failed(s, "flush (variant B)", rc);
    if (f->out.n_records)
        push_out(s, f, host_now_ns());
    else
        pool_put(&p->pool, f);
}

/* Runs a transform callback of slot `sl` (process, or flush when `in` is
 * NULL) into a fresh output batch and forwards the result. Returns the
 * callback's code. */
static int transform_step(stage *s, stage_slot *sl, batch *in)
{
    pipeline *p = s->pipeline;
    batch *o = pool_get(&p->pool);
    experiment *e = in ? atomic_load_explicit(&s->exp, memory_order_acquire) : NULL;
    experiment *detached = NULL;
    cb_mark m;
    int rc;
    uint64_t c1;
    if (e && experiment_interleaved(e)) {
        /* Interleaved: only the current block's variant runs, and its
         * output goes on, tagged with the block for the sink. Only A is
         * charged to the stage. */
        obs_batch view = batch_view(in);
        exp_cost c;
        uint32_t block;
        abstats_variant v = experiment_block_now(e, &block);
        rc = experiment_process_block(e, sl, v, &view, &o->out, &c);
        c1 = v == ABSTATS_A ? cb_charge(s, &c) : host_now_ns();
        o->exp = e;
        o->exp_block = block;
        o->exp_variant = (uint8_t)v;
        if (experiment_add_block_batch(e, s, &c, view.n_records))
            detached = e;
    } else if (e) {
        /* Duet: both variants run on the same batch, in an order drawn per
         * batch; only A's output goes on, and only A is charged to the
         * stage, after both ran, from its own measurement. Both output
         * batches come from the pool before either runs, and the one taken
         * first goes to whichever runs first: where a batch was last used
         * (this core's cache, the sink's, nowhere) then depends on the
         * order, never on the variant. A private buffer for B, or taking
         * B's batch later than A's, biases A/A comparisons by a few
         * percent. */
        obs_batch view = batch_view(in);
        exp_cost ca, cb;
        int a_first;
        batch *second = pool_get(&p->pool);
        rc = experiment_duet(e, sl, &view, &o->out, &second->out, &ca, &cb, &a_first);
        if (!a_first) {
            batch *t = o;
            o = second;
            second = t;
        }
        c1 = cb_charge(s, &ca);
        pool_put(&p->pool, second); /* B's output is discarded */
        experiment_add_pair(e, s, &ca, &cb, view.n_records);
    } else {
        cb_enter(s, &m);
        if (in) {
            obs_batch view = batch_view(in);
            rc = sl->desc->process(sl->instance, &view, &o->out);
        } else {
            rc = sl->desc->flush ? sl->desc->flush(sl->instance, &o->out) : OBS_OK;
        }
        c1 = cb_exit(s, &m);
    }
    if (rc < 0)
        callback_failed(s, in ? "process" : "flush", rc);
    if (in && !o->exp) {
        /* Records keep the block of an interleaved experiment upstream. */
        o->exp = in->exp;
        o->exp_block = in->exp_block;
        o->exp_variant = in->exp_variant;
    }
    if (in) {
        if (o->out.n_passed)
            o->borrowed = in; /* records of `o` point into `in` */
        else
            pool_put(&p->pool, in);
    }
    if (o->out.n_records)
        push_out(s, o, c1);
    else
        pool_put(&p->pool, o);
    if (detached)
        flush_b(s, detached);
    return rc;
}

static int flush_slot(stage *s, stage_slot *sl)
{
    if (s->kind == OBS_KIND_TRANSFORM)
        return transform_step(s, sl, NULL);
    if (!sl->desc->flush)
        return OBS_OK;
    cb_mark m;
    cb_enter(s, &m);
    int rc = sl->desc->flush(sl->instance, NULL);
    cb_exit(s, &m);
    if (rc < 0)
        callback_failed(s, "flush", rc);
    return rc;
}

static void *transform_main(void *arg)
{
    stage *s = arg;
    batch *b;
    thread_begin(s);
    while ((b = ring_pop(s->in)) != NULL) {
        account_in(s, b);
        swap_poll(s);
        transform_step(s, stage_active(s), b);
    }
    experiment *e = atomic_load(&s->exp);
    if (e && experiment_interleaved(e))
        flush_b(s, e);
    flush_slot(s, stage_active(s));
    thread_end(s);
    ring_close(s->out);
    return NULL;
}

static void *sink_main(void *arg)
{
    stage *s = arg;
    pipeline *p = s->pipeline;
    batch *b;
    thread_begin(s);
    while ((b = ring_pop(s->in)) != NULL) {
        account_in(s, b);
        swap_poll(s);
        obs_batch view = batch_view(b);
        cb_mark m;
        cb_enter(s, &m);
        stage_slot *sl = stage_active(s);
        int rc = sl->desc->consume(sl->instance, &view);
        uint64_t c1 = cb_exit(s, &m);
        if (rc < 0)
            callback_failed(s, "consume", rc);
        /* Latency is charged from each record's intended time to the moment
         * the sink finished with it. */
        for (uint32_t i = 0; i < view.n_records; i++) {
            uint64_t t = view.records[i].t_intended_ns;
            histogram_record(s->latency, c1 > t ? c1 - t : 0);
        }
        if (b->exp)
            experiment_sink_batch(b->exp, b->exp_block, b->exp_variant, &view, c1);
        pool_put(&p->pool, b);
    }
    flush_slot(s, stage_active(s));
    thread_end(s);
    return NULL;
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

int pipeline_run(pipeline *p, int (*stop_check)(void *), void *arg)
{
    const obs_config *cfg = p->cfg;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);

    p->t_start_ns = host_now_ns();
    int rc = OBS_OK;
    /* Start from the sink so every consumer waits before its producer runs. */
    for (size_t j = p->n_stages; j-- > 0;) {
        stage *s = &p->stages[j];
        void *(*fn)(void *) = s->kind == OBS_KIND_GENERATOR   ? generator_main
                              : s->kind == OBS_KIND_TRANSFORM ? transform_main
                                                              : sink_main;
        int e = pthread_create(&s->thread, NULL, fn, s);
        if (e != 0) {
            host_log(s->cfg->name, OBS_LOG_ERROR, "cannot start the stage thread: %s", strerror(e));
            rc = OBS_ENOMEM;
            break;
        }
        s->thread_started = 1;
        char name[16];
        snprintf(name, sizeof(name), "obs:%s", s->cfg->name);
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
            if (atomic_load(&p->stop) || atomic_load(&p->generator_done) ||
                (cfg->duration_ns && now - p->t_start_ns >= cfg->duration_ns) ||
                (stop_check && stop_check(arg)))
                break;
            uint64_t next = now + 20000000u;
            if (cfg->duration_ns && p->t_start_ns + cfg->duration_ns < next)
                next = p->t_start_ns + cfg->duration_ns;
            if (!warmed && p->t_start_ns + cfg->warmup_ns < next)
                next = p->t_start_ns + cfg->warmup_ns;
            sleep_until(next);
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
            if (!p->stages[j].thread_started && p->stages[j].out)
                ring_close(p->stages[j].out);
    }
    for (size_t j = 0; j < p->n_stages; j++)
        if (p->stages[j].thread_started) {
            pthread_join(p->stages[j].thread, NULL);
            p->stages[j].thread_started = 0;
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
    experiments_free(p);
    for (size_t i = 0; i < p->n_stages; i++) {
        stage *s = &p->stages[i];
        swap_free_slots(s);
        free(s->swap_pause);
        free(s->service);
        free(s->lag);
        free(s->latency);
    }
    if (p->rings)
        for (size_t i = 0; i + 1 < p->n_stages; i++)
            ring_destroy(&p->rings[i]);
    pool_destroy(&p->pool);
    free(p->rings);
    free(p->stages);
    plugin_dirs_free(p->dirs, p->n_dirs);
    free(p);
}
