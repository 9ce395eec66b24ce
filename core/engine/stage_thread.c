/*
 * stage_thread.c - what each stage thread does (stage_thread.h): the
 * generator's loop that draws intended send times from the schedule and
 * stamps them, the transform's and the sink's loops over their input ring,
 * and around every plugin callback the stage's cost account (wall time, a
 * sample of thread CPU time, allocations, the service-time histogram).
 * Each thread also takes pending hot swaps at batch boundaries (swap.h)
 * and runs an attached variant B (variant.h). Nothing here allocates on
 * the data path: batches come from the pipeline's pool.
 */
#include "engine/stage_thread.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "engine/alloc.h"
#include "engine/crash.h"
#include "engine/host.h"
#include "engine/origin.h"
#include "engine/schedule.h"
#include "engine/swap.h"
#include "engine/variant.h"
#include "obs_profiler.h"

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

/* Forwards a filled batch; `now` is a clock reading taken just before (the
 * end of the callback that filled it), so no extra clock read is needed. */
/* Pushes b into ring r, charging the time blocked on a full ring to s. */
static inline void push_ring(stage *s, ring *r, batch *b, uint64_t now)
{
    uint64_t blocked0 = r->blocked_ns;
    b->t_pushed_ns = now;
    ring_push(r, b);
    if (r->blocked_ns != blocked0)
        stat_add(&s->stats.blocked_ns, r->blocked_ns - blocked0);
}

/* The instance of an n-instance stage that records of key `key` go to: the
 * key hash scaled to [0, n) (multiply-shift, so every instance gets an
 * equal share of the hash range). */
static inline uint32_t key_instance(uint32_t key, uint32_t n)
{
    return (uint32_t)(((uint64_t)key * n) >> 32);
}

/* Spreads b over the downstream instances by record key: the records of
 * each instance go, in their order, into a sub-batch that borrows b (so
 * their bytes stay where they are), and b goes back to the pool with the
 * last sub-batch. A batch whose records all go to one instance is pushed
 * whole. */
static void push_by_key(stage *s, batch *b, uint64_t now)
{
    const uint32_t n = s->n_out;
    const obs_record *rec = b->out.records;
    const uint32_t n_rec = b->out.n_records;
    uint32_t first = key_instance(rec[0].key, n), i = 1;
    while (i < n_rec && key_instance(rec[i].key, n) == first)
        i++;
    if (i == n_rec) {
        push_ring(s, s->outs[first], b, now);
        return;
    }
    pipeline *p = s->pipeline;
    batch *sub[CFG_MAX_PARALLELISM] = {0};
    uint32_t n_sub = 0;
    for (i = 0; i < n_rec; i++) {
        uint32_t k = key_instance(rec[i].key, n);
        if (!sub[k]) {
            sub[k] = pool_get(&p->pool);
            sub[k]->borrowed = b;
            sub[k]->variant = b->variant;
            sub[k]->variant_block = b->variant_block;
            sub[k]->variant_ab = b->variant_ab;
            sub[k]->origin = b->origin;
            origin_hold(b->origin);
            n_sub++;
        }
        obs_out *o = &sub[k]->out;
        if (o->n_records == o->cap_records && o->grow(o, 1, 0) != 0) {
            /* Cannot happen: a sub-batch holds at most the records of b,
             * which fit the same bound. Kept checked: losing a record
             * silently would be worse. */
            host_log(s->cfg->name, OBS_LOG_ERROR, "split by key: no room for a record");
            abort();
        }
        o->records[o->n_records++] = rec[i];
        o->n_passed++;
    }
    /* Published before any sub-batch is: a consumer may return one at once. */
    atomic_store_explicit(&b->shares, n_sub, memory_order_release);
    for (uint32_t k = 0; k < n; k++)
        if (sub[k])
            push_ring(s, s->outs[k], sub[k], now);
}

static void push_out(stage *s, batch *b, uint64_t now)
{
    stat_add(&s->stats.batches_out, 1);
    stat_add(&s->stats.records_out, b->out.n_records);
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < b->out.n_records; i++)
        bytes += b->out.records[i].len;
    stat_add(&s->stats.bytes_out, bytes);
    if (s->n_out == 1) {
        push_ring(s, s->out, b, now);
    } else if (s->out_by_key) {
        push_by_key(s, b, now);
    } else {
        uint32_t k = s->out_next;
        s->out_next = k + 1 == s->n_out ? 0 : k + 1;
        push_ring(s, s->outs[k], b, now);
    }
}

/* The next input batch, from whichever upstream instance has one; NULL at
 * the end of every input. */
static inline batch *pop_in(stage *s)
{
    if (s->n_in == 1)
        return ring_pop(s->in);
    return ring_pop_any(s->ins, s->n_in, &s->in_next, &s->bell);
}

/* End of this instance's stream: every downstream instance hears it. */
static void close_out(stage *s)
{
    for (uint32_t k = 0; k < s->n_out; k++)
        ring_close(s->outs[k]);
}

/* Gives each record of `out` whose key is 0 the key of the record of `in`
 * with the same seq, for a stage downstream that routes by key: a parser
 * that emits new records need not know keys. Outputs mostly follow their
 * inputs in order, so one forward scan finds them; a record out of that
 * order is looked up from the start. */
static void inherit_keys(const obs_batch *in, obs_out *out)
{
    uint32_t j = 0;
    for (uint32_t i = 0; i < out->n_records; i++) {
        obs_record *r = &out->records[i];
        if (r->key)
            continue;
        while (j < in->n_records && in->records[j].seq < r->seq)
            j++;
        if (j == in->n_records || in->records[j].seq != r->seq)
            for (j = 0; j < in->n_records && in->records[j].seq != r->seq; j++)
                ;
        if (j < in->n_records)
            r->key = in->records[j].key;
        else
            j = 0;
    }
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
        atomic_store_explicit(&s->in_callback_since_ns, m->wall0, memory_order_relaxed);
        return;
    }
    m->a0 = alloc_tls;
    uint64_t now = host_now_ns();
    m->cpu = now - s->last_cpu_sample_ns >= CPU_SAMPLE_INTERVAL_NS;
    m->cpu0 = m->cpu ? host_thread_cpu_ns() : 0;
    m->wall0 = m->cpu ? host_now_ns() : now;
    atomic_store_explicit(&s->in_callback_since_ns, m->wall0, memory_order_relaxed);
}

/* Charges one callback's cost to the stage when the cost account is on:
 * wall time, CPU time when this callback is a CPU sample (`cpu`, NO_CPU
 * otherwise), the service-time histogram and allocations. */
#define NO_CPU UINT64_MAX
static inline void charge(stage *s, uint64_t now, uint64_t wall, uint64_t cpu, uint64_t allocs,
                          uint64_t frees, uint64_t bytes, uint64_t made, uint64_t freed)
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
        stat_add(&s->stats.heap_made, made);
        stat_add(&s->stats.heap_freed, freed);
    }
}

/* Charges the callback to the stage; returns the clock reading at its end. */
static inline uint64_t cb_exit(stage *s, cb_mark *m)
{
    uint64_t c1 = host_now_ns();
    uint64_t wall = c1 - m->wall0;
    atomic_store_explicit(&s->in_callback_since_ns, 0, memory_order_relaxed);
    if (!s->pipeline->cost_account) {
        stat_add(&s->stats.callback_ns, wall);
        return c1;
    }
    uint64_t cpu = m->cpu ? host_thread_cpu_ns() - m->cpu0 : NO_CPU;
    const alloc_counters *a1 = &alloc_tls;
    charge(s, c1, wall, cpu, a1->n_allocs - m->a0.n_allocs, a1->n_frees - m->a0.n_frees,
           a1->bytes - m->a0.bytes, a1->usable_made - m->a0.usable_made,
           a1->usable_freed - m->a0.usable_freed);
    return c1;
}

/* Charges a callback measured through the variant slot (cb_cost, which
 * always has its CPU time) to the stage, as cb_enter/cb_exit would have;
 * returns the clock's reading now. */
static uint64_t cb_charge(stage *s, const cb_cost *c)
{
    uint64_t now = host_now_ns();
    if (!s->pipeline->cost_account) {
        stat_add(&s->stats.callback_ns, c->wall_ns);
        return now;
    }
    int sample = now - s->last_cpu_sample_ns >= CPU_SAMPLE_INTERVAL_NS;
    charge(s, now, c->wall_ns, sample ? c->cpu_ns : NO_CPU, c->allocs, c->frees, c->bytes,
           c->heap_made, c->heap_freed);
    return now;
}

void stage_heap_charge(stage *s, const alloc_counters *a0)
{
    int64_t d = (int64_t)(alloc_tls.usable_made - a0->usable_made) -
                (int64_t)(alloc_tls.usable_freed - a0->usable_freed);
    if (d)
        atomic_fetch_add_explicit(&s->stats.heap_init, d, memory_order_relaxed);
}

/* Called first and last on every stage thread. */
static void thread_begin(stage *s)
{
    crash_thread_enter(s);
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
    variant_release_at_end(s);
    /* A swap that arrives after the last batch can no longer be taken. */
    swap_refuse_pending(s, "the stage has finished its stream");
    atomic_store(&s->stats.cpu_ns, host_thread_cpu_ns());
    atomic_store(&s->cpu_clock_valid, 0);
    obs_prof_thread_detach();
    crash_thread_leave();
    atomic_store(&s->thread_done, 1);
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

/* Keeps at most `max` of the records a generate call emitted (more is the
 * plugin's error, logged at most once a second); returns how many. */
static uint32_t keep_asked(stage *s, batch *b, uint32_t max, host_log_limit *l)
{
    uint32_t got = b->out.n_records;
    if (got > max) {
        host_log_limited(l, s->cfg->name, OBS_LOG_ERROR,
                         "generate emitted %u records, at most %u were asked for: extra records "
                         "dropped",
                         got, max);
        got = b->out.n_records = max;
    }
    return got;
}

/* Records how late each record of b left at `now` after its intended
 * time: the lag histogram, late records, the largest lag. */
static void account_lag(stage *s, const batch *b, uint64_t now)
{
    uint64_t late = 0, max_lag = 0;
    for (uint32_t i = 0; i < b->out.n_records; i++) {
        uint64_t t = b->out.records[i].t_intended_ns;
        uint64_t lag = now > t ? now - t : 0;
        histogram_record(s->lag, lag);
        late += lag > GEN_LATE_NS;
        if (lag > max_lag)
            max_lag = lag;
    }
    stat_add(&s->stats.late_records, late);
    stat_max(&s->stats.max_lag_ns, max_lag);
}

/* A source generator (OBS_STAGE_SOURCE): records arrive from outside with
 * their own seq and intended time, as fast as they come; there is no
 * schedule. Each batch gets an origin (origin.h) so the plugin learns when
 * it has left the pipeline. The lag histogram holds how late each record
 * arrived here after its intended time (the links before this process). */
static void source_loop(stage *s)
{
    pipeline *p = s->pipeline;
    uint32_t bs = p->cfg->batch_size;
    uint64_t ticket = 0, received = 0;
    host_log_limit over_log = {0};
    stage_slot *sl = stage_active(s);
    while (!atomic_load_explicit(&p->stop, memory_order_relaxed)) {
        batch *b = pool_get(&p->pool);
        obs_gen_request req = {.n_records = bs, .ticket = ++ticket};
        cb_mark m;
        cb_enter(s, &m);
        int rc = sl->desc->generate(sl->instance, &req, &b->out);
        uint64_t c1 = cb_exit(s, &m);
        if (rc < 0) {
            callback_failed(s, "generate", rc);
            host_log(s->cfg->name, OBS_LOG_ERROR, "source failed: ending the stream");
            p->failed = 1;
        }
        uint32_t got = keep_asked(s, b, bs, &over_log);
        if (got == 0 && rc == OBS_OK) {
            /* Nothing had arrived: the call was a wait, shown as idle time,
             * not as time spent working. */
            uint64_t waited = c1 - m.wall0;
            uint64_t busy = atomic_load_explicit(&s->stats.callback_ns, memory_order_relaxed);
            atomic_store_explicit(&s->stats.callback_ns, busy > waited ? busy - waited : 0,
                                  memory_order_relaxed);
            stat_add(&s->stats.idle_ns, waited);
        }
        account_lag(s, b, c1);
        received += got;
        atomic_store_explicit(&s->stats.scheduled, received, memory_order_relaxed);
        /* Without memory for the origin the batch counts as delivered at
         * once (origin.h): the records still flow. */
        b->origin = origin_new(sl->desc, sl->instance, req.ticket);
        if (!b->origin && sl->desc->delivered)
            sl->desc->delivered(sl->instance, req.ticket);
        if (got)
            push_out(s, b, c1);
        else
            pool_put(&p->pool, b);
        if (rc == OBS_DONE || rc < 0) {
            atomic_store(&p->generator_done, 1);
            break;
        }
    }
    flush_slot(s, sl);
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
    /* Rules a generator can break on every batch are logged once a second. */
    host_log_limit over_log = {0}, under_log = {0};
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
    if (stage_active(s)->desc->flags & OBS_STAGE_SOURCE) {
        source_loop(s);
        goto out;
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
            host_sleep_until(until);
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
        uint32_t got = keep_asked(s, b, n, &over_log);
        for (uint32_t i = 0; i < got; i++) {
            b->out.records[i].seq = seq + i;
            b->out.records[i].t_intended_ns = times[i];
        }
        account_lag(s, b, c1);
        seq += got;
        if (got)
            push_out(s, b, c1);
        else
            pool_put(&p->pool, b);
        if (rc == OBS_DONE || rc < 0) {
            atomic_store(&p->generator_done, 1);
            break;
        }
        if (got < n && rc == OBS_OK) {
            host_log_limited(&under_log, s->cfg->name, OBS_LOG_WARN,
                             "generate emitted %u of %u records", got, n);
        }
    }
    flush_slot(s, stage_active(s));
out:
    free(times);
    thread_end(s);
    close_out(s);
    return NULL;
}

/* Interleaved: B's flush into a fresh batch, forwarded (records B still
 * holds when it is detached or the stream ends go downstream, untagged). */
static void flush_b(stage *s, stage_variant *v)
{
    pipeline *p = s->pipeline;
    batch *f = pool_get(&p->pool);
    int rc = variant_flush_b(v, &f->out);
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
    stage_variant *e = in ? variant_of(s) : NULL;
    stage_variant *detached = NULL;
    cb_mark m;
    int rc;
    uint64_t c1;
    if (e && e->mode == VARIANT_INTERLEAVED) {
        /* Interleaved: only the current block's variant runs, and its
         * output goes on, tagged with the block for the sink. Only A is
         * charged to the stage. */
        obs_batch view = batch_view(in);
        cb_cost c;
        uint32_t block;
        variant_ab v = e->hooks->block_now(e->ctx, &block);
        atomic_store_explicit(&s->in_callback_since_ns, host_now_ns(), memory_order_relaxed);
        rc = variant_process(e, sl, v, &view, &o->out, &c);
        atomic_store_explicit(&s->in_callback_since_ns, 0, memory_order_relaxed);
        c1 = v == VARIANT_A ? cb_charge(s, &c) : host_now_ns();
        o->variant = e;
        o->variant_block = block;
        o->variant_ab = (uint8_t)v;
        e->hooks->block_batch(e->ctx, &c, view.n_records);
        if (variant_poll_release(e))
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
        cb_cost ca, cb;
        int a_first;
        batch *second = pool_get(&p->pool);
        atomic_store_explicit(&s->in_callback_since_ns, host_now_ns(), memory_order_relaxed);
        rc = variant_duet(e, sl, &view, &o->out, &second->out, &ca, &cb, &a_first);
        atomic_store_explicit(&s->in_callback_since_ns, 0, memory_order_relaxed);
        if (!a_first) {
            batch *t = o;
            o = second;
            second = t;
        }
        c1 = cb_charge(s, &ca);
        pool_put(&p->pool, second); /* B's output is discarded */
        if (view.n_records)
            e->hooks->pair(e->ctx, &ca, &cb, view.n_records);
        variant_poll_release(e);
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
    if (in && s->keep_keys) {
        obs_batch view = batch_view(in);
        inherit_keys(&view, &o->out);
    }
    if (in && !o->variant) {
        /* Records keep the block of an interleaved variant upstream. */
        o->variant = in->variant;
        o->variant_block = in->variant_block;
        o->variant_ab = in->variant_ab;
    }
    if (in && in->origin && !o->origin) {
        o->origin = in->origin;
        origin_hold(o->origin);
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
    while ((b = pop_in(s)) != NULL) {
        account_in(s, b);
        swap_poll(s);
        transform_step(s, stage_active(s), b);
    }
    stage_variant *e = atomic_load(&s->variant);
    if (e && e->mode == VARIANT_INTERLEAVED)
        flush_b(s, e);
    flush_slot(s, stage_active(s));
    thread_end(s);
    close_out(s);
    return NULL;
}

static void *sink_main(void *arg)
{
    stage *s = arg;
    pipeline *p = s->pipeline;
    batch *b;
    thread_begin(s);
    while ((b = pop_in(s)) != NULL) {
        account_in(s, b);
        swap_poll(s);
        obs_batch view = batch_view(b);
        cb_mark m;
        cb_enter(s, &m);
        stage_slot *sl = stage_active(s);
        atomic_store_explicit(&s->host.consuming, b->origin, memory_order_relaxed);
        int rc = sl->desc->consume(sl->instance, &view);
        atomic_store_explicit(&s->host.consuming, NULL, memory_order_relaxed);
        uint64_t c1 = cb_exit(s, &m);
        if (rc < 0)
            callback_failed(s, "consume", rc);
        /* Latency is charged from each record's intended time to the moment
         * the sink finished with it. */
        for (uint32_t i = 0; i < view.n_records; i++) {
            uint64_t t = view.records[i].t_intended_ns;
            histogram_record(s->latency, c1 > t ? c1 - t : 0);
        }
        if (b->variant)
            b->variant->hooks->sink_batch(b->variant->ctx, s->instance, b->variant_block,
                                          (variant_ab)b->variant_ab, &view, c1);
        pool_put(&p->pool, b);
    }
    flush_slot(s, stage_active(s));
    thread_end(s);
    return NULL;
}

void *(*stage_thread_fn(obs_kind kind))(void *)
{
    return kind == OBS_KIND_GENERATOR   ? generator_main
           : kind == OBS_KIND_TRANSFORM ? transform_main
                                        : sink_main;
}
