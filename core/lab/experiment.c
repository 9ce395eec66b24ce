/*
 * experiment.c - duet and interleaved A/B experiments on a live transform
 * (see experiment.h).
 *
 * Threads: the caller of experiment_start() builds variant B (open,
 * parameter check, init) and attaches it to the stage (stage.exp); the stage
 * thread runs B beside A on every batch and appends one pair per batch to
 * the accumulators, under a mutex it takes once per batch; the experiment's
 * own thread wakes at the planned looks, copies the accumulators under that
 * mutex, estimates (bootstrap, off the data path), records the history and
 * decides whether to stop. To stop, it asks the stage thread to detach B
 * (release_req), waits for the acknowledgement (released), then finalises
 * B itself.
 *
 * Interleaved: the stage thread sums each block's costs in fields only it
 * touches and adds them (under the mutex) when the next block begins; the
 * sink thread keeps the latency histogram of the block it is receiving in
 * fields only it touches and adds the block's p50, p99 and throughput
 * (under the mutex) when a batch of a newer block arrives. The last,
 * partial block of either is never added. Both leave out the same whole
 * rounds (see exp_skip): the first, and one for each look but the last.
 */
#include "experiment.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "histogram.h"
#include "json_u64.h"
#include "obs_profiler.h"
#include "store.h"
#include "swap.h"

static const char *const metric_names[EXP_N_METRICS] = {"cpu_ns_per_record", "wall_ns_per_record",
                                                        "allocs_per_record", "p50_latency_ns",
                                                        "p99_latency_ns",    "records_per_s"};

/* Interleaved: blocks per round (ABBA or BAAB), and the last block of the
 * round that block k is in. */
enum { ROUND = 4 };
static inline uint32_t round_end(uint32_t k)
{
    return (k / ROUND + 1) * ROUND - 1;
}

/* Interleaved: blocks lo..hi are left out of the analysis by both the
 * stage and the sink thread. Ranges are whole rounds, so every unit keeps
 * its ABBA/BAAB balance: the first round (warm-up: B was just attached),
 * and the round in which each look but the last computes. A look's
 * bootstrap takes CPU from the pipeline for milliseconds, and the queue it
 * leaves behind takes longer to drain: blocks it overlaps had a p99 up to
 * 1.6 times their neighbours' (docs/experiments.md). Charged to whichever
 * variant ran then, that was a bias, the same in every experiment with the
 * same schedule. */
typedef struct exp_skip {
    uint32_t lo;         /* first block left out, a round's first */
    _Atomic uint32_t hi; /* last block left out; UINT32_MAX while the look runs */
} exp_skip;

struct experiment {
    uint64_t id;
    pipeline *p;
    stage *s;
    char stage_name[64];
    int aa;
    double threshold, max_seconds;
    uint32_t n_looks;
    uint64_t seed;
    struct store *st;
    uint64_t run_id;
    exp_mode mode;
    uint64_t block_ns; /* interleaved */
    int n_metrics;     /* 3 for duet, 6 for interleaved */
    int primary;       /* the metric whose verdict is the experiment's */

    /* Variant B: its slot and its own host context (its counters and
     * allocations are not the stage's). */
    stage_slot b;
    host_ctx *b_host;

    /* Shared with the stage thread. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    abstats_acc acc[EXP_N_METRICS]; /* under mu */
    uint64_t n_pairs, n_records;    /* under mu */
    uint64_t k;                     /* stage thread: batches seen (order) */
    _Atomic int release_req;
    int released; /* under mu */
    int stop_req; /* under mu */
    int finished; /* under mu: the last look is taken, no more adds */

    /* Interleaved, stage thread only: the block it runs and its costs. */
    int st_open;
    uint32_t st_block;
    abstats_variant st_variant;
    uint64_t st_cpu_ns, st_wall_ns, st_allocs, st_records, st_batches;
    /* Interleaved, sink thread only: the block it receives. */
    histogram *sk_hist;
    int sk_open;
    uint32_t sk_block;
    int sk_variant;
    uint64_t sk_records;
    uint64_t n_blocks_stage, n_blocks_sink; /* under mu: blocks added */
    exp_skip *skips;                        /* n_looks + 1 ranges, in block order */
    _Atomic uint32_t n_skips;               /* published (release) once lo is set */
    uint32_t st_skip, sk_skip;              /* each thread's cursor into skips */
    uint64_t n_blocks_skipped;              /* under mu: stage blocks left out */

    /* Experiment thread. */
    pthread_t thread;
    int thread_started;
    _Atomic int state;
    uint64_t t_start_ns, t_end_ns;
    abstats_result res[EXP_N_METRICS]; /* under mu once written */
    int have_res;
    int looks_done;
    json_t *history; /* under mu */
    char why[256];

    struct experiment *next;
};

static uint64_t thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void exp_cost_begin(exp_cost *c)
{
    c->a0 = alloc_tls;
    c->cpu0 = thread_cpu();
    c->wall0 = host_now_ns();
}

void exp_cost_end(exp_cost *c)
{
    c->wall_ns = host_now_ns() - c->wall0;
    c->cpu_ns = thread_cpu() - c->cpu0;
    c->allocs = alloc_tls.n_allocs - c->a0.n_allocs;
    c->frees = alloc_tls.n_frees - c->a0.n_frees;
    c->bytes = alloc_tls.bytes - c->a0.bytes;
}

static void detach(experiment *e, stage *s)
{
    atomic_store(&s->exp, NULL);
    pthread_mutex_lock(&e->mu);
    e->released = 1;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

void experiment_add_pair(experiment *e, stage *s, const exp_cost *a, const exp_cost *b,
                         uint32_t n_records)
{
    if (n_records) {
        double n = (double)n_records;
        pthread_mutex_lock(&e->mu);
        /* Per-record costs, weighted by the batch's records: the pair's
         * ratio of sums is the per-record cost of the batch. The thread CPU
         * clock's own read cost is the same for both and cancels in the
         * ratio only approximately, so it is subtracted. */
        uint64_t ov = e->p->cpu_read_ns;
        double ca = (double)(a->cpu_ns > ov ? a->cpu_ns - ov : 0) / n;
        double cb = (double)(b->cpu_ns > ov ? b->cpu_ns - ov : 0) / n;
        abstats_paired_add(&e->acc[EXP_M_CPU], ca, cb, n);
        abstats_paired_add(&e->acc[EXP_M_WALL], (double)a->wall_ns / n, (double)b->wall_ns / n, n);
        abstats_paired_add(&e->acc[EXP_M_ALLOCS], (double)a->allocs / n, (double)b->allocs / n, n);
        e->n_pairs++;
        e->n_records += n_records;
        pthread_mutex_unlock(&e->mu);
    }
    if (atomic_load_explicit(&e->release_req, memory_order_relaxed))
        detach(e, s);
}

void experiment_release(stage *s)
{
    experiment *e = atomic_load(&s->exp);
    if (e)
        detach(e, s);
}

/* ----------------------------------------------------------- interleaved */

int experiment_interleaved(const experiment *e)
{
    return e->mode == EXP_INTERLEAVED;
}

/* splitmix64, for the schedule of rounds. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
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

/* One variant's callback, measured. Both variants of a duet are called
 * through this one function, from one call site, so neither has code of its
 * own (or the stage's accounting) next to its call. */
static __attribute__((noinline)) int run_measured(const obs_stage_desc *d, void *instance,
                                                  uint32_t tag, const obs_batch *in, obs_out *out,
                                                  exp_cost *c)
{
    obs_prof_set_tag(tag);
    exp_cost_begin(c);
    int rc = d->process(instance, in, out);
    exp_cost_end(c);
    return rc;
}

/* The order is drawn per batch, independently of every other batch's,
 * rather than strictly alternated: what a callback finds in the caches
 * depends on the batch before it (the output batch it gets from the pool
 * was last written by B, first or second), and a drawn order cannot fall
 * into step with such a pattern. */
int experiment_duet(experiment *e, const stage_slot *a, const obs_batch *in, obs_out *first,
                    obs_out *second, exp_cost *ca, exp_cost *cb, int *a_first)
{
    const int b_first = (int)(mix64(e->seed ^ mix64(e->k++)) >> 63);
    const stage_slot *sl[2] = {a, &e->b};
    obs_out *out[2] = {first, second};
    exp_cost *cost[2] = {ca, cb};
    int rc[2];
    for (int j = 0; j < 2; j++) {
        int v = j ^ b_first; /* 0: A, 1: B */
        rc[v] = run_measured(sl[v]->desc, sl[v]->instance, sl[v]->prof_tag, in, out[j], cost[v]);
    }
    obs_prof_set_tag(a->prof_tag);
    *a_first = !b_first;
    return rc[0];
}

/* Whether block k is left out of the analysis. Each thread asks about its
 * blocks in increasing order and keeps its own cursor. A range whose look
 * is still running covers every block from its start. */
static int block_skipped(experiment *e, uint32_t k, uint32_t *cursor)
{
    uint32_t n = atomic_load_explicit(&e->n_skips, memory_order_acquire);
    while (*cursor < n && k > atomic_load_explicit(&e->skips[*cursor].hi, memory_order_acquire))
        (*cursor)++;
    return *cursor < n && k >= e->skips[*cursor].lo;
}

/* The variant of block k: round k / 4 is ABBA or BAAB, at random from the
 * seed, so the schedule is reproducible and neither variant always starts
 * a round (or always follows the other). */
static abstats_variant block_variant(const experiment *e, uint32_t k)
{
    int first_b = (int)(mix64(e->seed ^ mix64(k / ROUND)) & 1);
    uint32_t pos = k % ROUND;
    int outer = pos == 0 || pos == 3;
    return (outer ? first_b : !first_b) ? ABSTATS_B : ABSTATS_A;
}

abstats_variant experiment_block_now(experiment *e, uint32_t *block)
{
    uint64_t now = host_now_ns();
    uint32_t k = (uint32_t)((now - e->t_start_ns) / e->block_ns);
    if (!e->st_open || k != e->st_block) {
        if (e->st_open && e->st_records) {
            /* The block's costs per record, weighted by its records; the
             * CPU clock's own read cost is subtracted per batch. */
            double n = (double)e->st_records;
            uint64_t ov = e->p->cpu_read_ns * e->st_batches;
            double cpu = (double)(e->st_cpu_ns > ov ? e->st_cpu_ns - ov : 0) / n;
            int skip = block_skipped(e, e->st_block, &e->st_skip);
            pthread_mutex_lock(&e->mu);
            if (!e->finished && skip) {
                e->n_blocks_skipped++;
            } else if (!e->finished) {
                abstats_block_add(&e->acc[EXP_M_CPU], e->st_variant, cpu, n);
                abstats_block_add(&e->acc[EXP_M_WALL], e->st_variant, (double)e->st_wall_ns / n, n);
                abstats_block_add(&e->acc[EXP_M_ALLOCS], e->st_variant, (double)e->st_allocs / n,
                                  n);
                e->n_blocks_stage++;
                e->n_records += e->st_records;
            }
            pthread_mutex_unlock(&e->mu);
        }
        e->st_open = 1;
        e->st_block = k;
        e->st_variant = block_variant(e, k);
        e->st_cpu_ns = e->st_wall_ns = e->st_allocs = e->st_records = e->st_batches = 0;
    }
    *block = k;
    return e->st_variant;
}

int experiment_process_block(experiment *e, const stage_slot *a, abstats_variant v,
                             const obs_batch *in, obs_out *out, exp_cost *cost)
{
    const stage_slot *sl = v == ABSTATS_B ? &e->b : a;
    int rc = run_measured(sl->desc, sl->instance, sl->prof_tag, in, out, cost);
    obs_prof_set_tag(a->prof_tag);
    return rc;
}

int experiment_add_block_batch(experiment *e, stage *s, const exp_cost *c, uint32_t n_records)
{
    e->st_cpu_ns += c->cpu_ns;
    e->st_wall_ns += c->wall_ns;
    e->st_allocs += c->allocs;
    e->st_records += n_records;
    e->st_batches++;
    if (atomic_load_explicit(&e->release_req, memory_order_relaxed)) {
        detach(e, s);
        return 1;
    }
    return 0;
}

int experiment_flush_b(experiment *e, obs_out *out)
{
    if (!e->b.desc->flush)
        return OBS_OK;
    obs_prof_set_tag(e->b.prof_tag);
    int rc = e->b.desc->flush(e->b.instance, out);
    obs_prof_set_tag(stage_active(e->s)->prof_tag);
    return rc;
}

/* Sink thread: adds the block it was receiving (p50, p99, throughput). */
static void sink_close_block(experiment *e)
{
    if (!e->sk_records || block_skipped(e, e->sk_block, &e->sk_skip))
        return;
    /* At least 1 ns: the geometric scale takes logs, and a value refused
     * would shift every later block out of its round. */
    double p50 = (double)histogram_quantile_ns(e->sk_hist, 0.50);
    double p99 = (double)histogram_quantile_ns(e->sk_hist, 0.99);
    p50 = p50 < 1 ? 1 : p50;
    p99 = p99 < 1 ? 1 : p99;
    /* Records that reached the sink from this block, per second of block:
     * under a load beyond the stage's capacity, what the variant sustains. */
    double thr = (double)e->sk_records * 1e9 / (double)e->block_ns;
    abstats_variant v = e->sk_variant ? ABSTATS_B : ABSTATS_A;
    pthread_mutex_lock(&e->mu);
    if (!e->finished) {
        abstats_block_add(&e->acc[EXP_M_P50], v, p50, 1);
        abstats_block_add(&e->acc[EXP_M_P99], v, p99, 1);
        abstats_block_add(&e->acc[EXP_M_THROUGHPUT], v, thr, 1);
        e->n_blocks_sink++;
    }
    pthread_mutex_unlock(&e->mu);
}

void experiment_sink_batch(experiment *e, uint32_t block, int variant, const obs_batch *view,
                           uint64_t t_end_ns)
{
    if (!e->sk_hist)
        return;
    if (!e->sk_open || block != e->sk_block) {
        if (e->sk_open && block < e->sk_block)
            return; /* late records of a closed block (a buffering transform) */
        if (e->sk_open)
            sink_close_block(e);
        histogram_reset(e->sk_hist);
        e->sk_open = 1;
        e->sk_block = block;
        e->sk_variant = variant;
        e->sk_records = 0;
    }
    for (uint32_t i = 0; i < view->n_records; i++) {
        uint64_t t = view->records[i].t_intended_ns;
        histogram_record(e->sk_hist, t_end_ns > t ? t_end_ns - t : 0);
    }
    e->sk_records += view->n_records;
}

/* ------------------------------------------------------------- the looks */

static const char *verdict_upper(abstats_verdict v)
{
    switch (v) {
    case ABSTATS_SAME: return "SAME";
    case ABSTATS_FASTER: return "FASTER";
    case ABSTATS_SLOWER: return "SLOWER";
    case ABSTATS_UNSTABLE: return "UNSTABLE";
    default: return "UNKNOWN";
    }
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
                              metric_names[m], "delta", isfinite(res[m].delta) ? res[m].delta : 0.0,
                              "lo", isfinite(res[m].ci_lo) ? res[m].ci_lo : 0.0, "hi",
                              isfinite(res[m].ci_hi) ? res[m].ci_hi : 0.0, "verdict",
                              verdict_upper(res[m].verdict));
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
    atomic_store(&e->release_req, 1);
    pthread_mutex_lock(&e->mu);
    while (!e->released) {
        struct timespec until = host_realtime_in(1000000000u);
        pthread_cond_timedwait(&e->cv, &e->mu, &until);
        if (!e->released && !atomic_load(&e->p->running)) {
            /* The stage thread is gone: nobody holds B any more. */
            atomic_store(&e->s->exp, NULL);
            e->released = 1;
        }
    }
    int stopped = cut_short;
    e->finished = 1;
    pthread_mutex_unlock(&e->mu);
    if (e->b.initialised && e->b.desc->fini)
        e->b.desc->fini(e->b.instance);
    e->b.initialised = 0;
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
    if (e->b.initialised && e->b.desc->fini)
        e->b.desc->fini(e->b.instance);
    config_param_values_free(&e->b.params);
    free(e->b.api);
    free(e->b_host);
    for (int m = 0; m < EXP_N_METRICS; m++)
        abstats_destroy(&e->acc[m]);
    free(e->sk_hist);
    free(e->skips);
    json_decref(e->history);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
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
        (!(e->sk_hist = calloc(1, sizeof(histogram))) ||
         !(e->skips = calloc((size_t)e->n_looks + 1, sizeof(exp_skip))))) {
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
    if (atomic_load(&s->exp)) {
        rc = OBS_EAGAIN;
        snprintf(err, errlen, "stage '%s' already runs an experiment", s->cfg->name);
        goto fail_unlock;
    }
    /* Block tags travel to the sink: a second interleaved experiment
     * downstream would overwrite them. */
    for (experiment *o = p->experiments; e->mode == EXP_INTERLEAVED && o; o = o->next) {
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
        rc = plugin_open(&req, &e->b.module, err, errlen);
        if (rc < 0)
            goto fail_unlock;
    } else {
        e->b.module = a->module; /* A/A: a second instance of the same code */
    }
    e->b.desc = e->b.module->desc;
    if (spec->params_given && spec->params_in_config) {
        rc = config_check_ab_params(p->cfg, s->index, e->b.desc, &e->b.params, err, errlen);
    } else if (spec->params_given) {
        obs_config tmp = *p->cfg;
        cfg_stage *stages = malloc(p->cfg->n_stages * sizeof(cfg_stage));
        if (!stages) {
            rc = OBS_ENOMEM;
            goto fail_unlock;
        }
        memcpy(stages, p->cfg->stages, p->cfg->n_stages * sizeof(cfg_stage));
        stages[s->index].params = (cfg_param *)spec->params;
        stages[s->index].n_params = spec->n_params;
        tmp.stages = stages;
        tmp.path = (char *)"experiment request";
        rc = config_check_params(&tmp, s->index, e->b.desc, &e->b.params, err, errlen);
        free(stages);
    } else if (plugin) {
        rc = config_check_params(p->cfg, s->index, e->b.desc, &e->b.params, err, errlen);
    } else {
        /* A/A without new parameters: A's own. */
        rc = config_check_params(p->cfg, s->index, a->desc, &e->b.params, err, errlen);
    }
    if (rc < 0)
        goto fail_unlock;
    e->b.params_view = (obs_params){.values = e->b.params.values, .n_values = e->b.params.n_values};
    e->b_host = calloc(1, sizeof(host_ctx));
    e->b.api = malloc(sizeof(obs_host));
    if (!e->b_host || !e->b.api) {
        rc = OBS_ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto fail_unlock;
    }
    host_ctx_init(e->b_host, s->cfg->name, e->b.module->path, s->host.api.seed, p->cfg->batch_size);
    *e->b.api = e->b_host->api;
    rc = e->b.desc->init(e->b.api, &e->b.params_view, &e->b.instance);
    if (rc != 0) {
        snprintf(err, errlen, "stage '%s': variant B %s %s: init failed: %s", s->cfg->name,
                 e->b.desc->name, e->b.desc->version, obs_strerror(rc));
        rc = rc < 0 ? rc : OBS_EPLUGIN;
        goto fail_unlock;
    }
    e->b.initialised = 1;
    e->b.prof_tag = swap_prof_tag(s, &e->b, "B");
    e->id = ++p->n_experiments;
    e->t_start_ns = host_now_ns();
    if (pthread_create(&e->thread, NULL, exp_thread, e) != 0) {
        rc = OBS_ENOMEM;
        snprintf(err, errlen, "cannot start the experiment thread");
        goto fail_unlock;
    }
    e->thread_started = 1;
    pthread_setname_np(e->thread, "obs-experiment");
    e->next = p->experiments;
    p->experiments = e;
    atomic_store(&s->exp, e); /* the stage thread runs B from its next batch */
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
    experiment *e = p->experiments;
    while (e && e->id != id)
        e = e->next;
    pthread_mutex_unlock(&p->swap_lock);
    return e;
}

static const char *state_name(int st)
{
    switch (st) {
    case EXP_STARTING: return "starting";
    case EXP_RUNNING: return "running";
    case EXP_DONE: return "done";
    case EXP_STOPPED: return "stopped";
    default: return "failed";
    }
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *experiment_json(experiment *e)
{
    stage_slot *a = &e->s->first;
    /* The active slot is what A is now (a swap is refused while this runs). */
    a = stage_active(e->s) ? stage_active(e->s) : a;
    uint64_t end = e->t_end_ns ? e->t_end_ns : host_now_ns();
    pthread_mutex_lock(&e->mu);
    json_t *o =
        json_pack("{s:I, s:s, s:s, s:s, s:b, s:{s:s, s:s}, s:{s:s, s:s}, s:f, s:I, s:I, "
                  "s:f, s:f, s:i}",
                  "id", (json_int_t)e->id, "stage", e->stage_name, "mode",
                  e->mode == EXP_INTERLEAVED ? "interleaved" : "duet", "state",
                  state_name(atomic_load(&e->state)), "aa", e->aa, "a", "plugin", a->desc->name,
                  "version", a->desc->version, "b", "plugin", e->b.desc->name, "version",
                  e->b.desc->version, "elapsed_s", (double)(end - e->t_start_ns) / 1e9, "samples",
                  (json_int_t)(e->mode == EXP_INTERLEAVED ? e->n_blocks_stage : e->n_pairs),
                  "records", (json_int_t)e->n_records, "threshold", e->threshold, "max_seconds",
                  e->max_seconds, "looks", e->looks_done);
    if (o) /* above INT64_MAX (only a given seed can be): a string */
        json_object_set_new(o, "seed", json_u64(e->seed));
    if (o && e->mode == EXP_INTERLEAVED) {
        /* samples = blocks with stage costs; latency blocks seen by the sink. */
        json_object_set_new(o, "block_ms", json_integer((json_int_t)(e->block_ns / 1000000u)));
        json_object_set_new(o, "latency_blocks", json_integer((json_int_t)e->n_blocks_sink));
        json_object_set_new(o, "skipped_blocks", json_integer((json_int_t)e->n_blocks_skipped));
    }
    json_t *metrics = json_array();
    const char *overall = "UNKNOWN";
    for (int m = 0; o && metrics && e->have_res && m < e->n_metrics; m++) {
        const abstats_result *r = &e->res[m];
        json_t *x =
            json_pack("{s:s, s:o, s:o, s:o, s:[o, o], s:o, s:s, s:b}", "name", metric_names[m], "a",
                      num_or_null(r->mean_a), "b", num_or_null(r->mean_b), "delta",
                      num_or_null(r->delta), "ci", num_or_null(r->ci_lo), num_or_null(r->ci_hi),
                      "p_value", num_or_null(r->p_mann_whitney), "verdict",
                      verdict_upper(r->verdict), "primary", m == e->primary);
        if (x)
            json_array_append_new(metrics, x);
    }
    if (e->have_res)
        overall = verdict_upper(e->res[e->primary].verdict);
    if (o) {
        json_object_set_new(o, "metrics", metrics ? metrics : json_array());
        json_object_set_new(o, "verdict", json_string(overall));
        json_object_set(o, "history", e->history);
    } else {
        json_decref(metrics);
    }
    pthread_mutex_unlock(&e->mu);
    return o;
}

json_t *experiments_json(pipeline *p)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&p->swap_lock);
    for (experiment *e = p->experiments; arr && e; e = e->next) {
        json_t *full = experiment_json(e);
        if (!full)
            continue;
        json_t *brief = json_pack(
            "{s:O, s:O, s:O, s:O, s:O}", "id", json_object_get(full, "id"), "stage",
            json_object_get(full, "stage"), "mode", json_object_get(full, "mode"), "state",
            json_object_get(full, "state"), "verdict", json_object_get(full, "verdict"));
        json_decref(full);
        if (brief)
            json_array_append_new(arr, brief);
    }
    pthread_mutex_unlock(&p->swap_lock);
    return arr;
}

void experiment_print(experiment *e, FILE *f)
{
    json_t *j = experiment_json(e);
    if (!j)
        return;
    fprintf(f,
            "\nexperiment %" JSON_INTEGER_FORMAT " on stage '%s' (%s%s): A = %s %s, B = %s %s; "
            "%" JSON_INTEGER_FORMAT " %s in %.1f s, %s\n",
            json_integer_value(json_object_get(j, "id")), e->stage_name,
            e->mode == EXP_INTERLEAVED ? "interleaved" : "duet", e->aa ? ", A/A" : "",
            json_string_value(json_object_get(json_object_get(j, "a"), "plugin")),
            json_string_value(json_object_get(json_object_get(j, "a"), "version")),
            json_string_value(json_object_get(json_object_get(j, "b"), "plugin")),
            json_string_value(json_object_get(json_object_get(j, "b"), "version")),
            json_integer_value(json_object_get(j, "samples")),
            e->mode == EXP_INTERLEAVED ? "blocks" : "batch pairs",
            json_real_value(json_object_get(j, "elapsed_s")),
            json_string_value(json_object_get(j, "state")));
    fprintf(f, "%-20s %14s %14s %9s %22s %9s\n", "metric", "A", "B", "delta", "95% CI", "verdict");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(j, "metrics"), i, m)
    {
        json_t *ci = json_object_get(m, "ci");
        char cis[64] = "-", delta[32] = "-";
        if (json_is_real(json_array_get(ci, 0)))
            snprintf(cis, sizeof cis, "[%+.2f%%, %+.2f%%]",
                     100 * json_real_value(json_array_get(ci, 0)),
                     100 * json_real_value(json_array_get(ci, 1)));
        if (json_is_real(json_object_get(m, "delta")))
            snprintf(delta, sizeof delta, "%+.2f%%",
                     100 * json_real_value(json_object_get(m, "delta")));
        fprintf(
            f, "%-20s %14.3f %14.3f %9s %22s %9s\n", json_string_value(json_object_get(m, "name")),
            json_number_value(json_object_get(m, "a")), json_number_value(json_object_get(m, "b")),
            delta, cis, json_string_value(json_object_get(m, "verdict")));
    }
    fprintf(f, "verdict (%s, threshold %.1f%%): %s\n",
            e->mode == EXP_INTERLEAVED ? "p99 latency" : "CPU ns per record", 100 * e->threshold,
            json_string_value(json_object_get(j, "verdict")));
    json_decref(j);
}

void experiments_free(pipeline *p)
{
    for (experiment *e = p->experiments, *next; e; e = next) {
        next = e->next;
        if (e->thread_started) {
            experiment_stop(e);
            pthread_join(e->thread, NULL);
        }
        exp_free(e);
    }
    p->experiments = NULL;
}
