/*
 * experiment_feed.c - the measurements that reach an experiment while it
 * runs, through the hooks of the engine's variant slot (engine/variant.h):
 * a duet's batch pairs from the stage thread, an interleaved run's blocks
 * from the stage thread (costs) and from the sink thread (latency and
 * throughput), and the acknowledgement that B was let go. Each hook adds to
 * the accumulators under the experiment's mutex; fields only one thread
 * touches are named for it (st_* stage, sk_* sink). The ABBA schedule of
 * blocks and the rounds left out of the analysis (exp_skip) are decided
 * here too, so both threads agree on them.
 */
#include "lab/experiment_internal.h"

#include "util/mix.h"

static abstats_variant ab_of(variant_ab v)
{
    return v == VARIANT_B ? ABSTATS_B : ABSTATS_A;
}

/* Stage thread: the variant slot of one instance has let go of its B. */
static void hook_released(void *ctx)
{
    experiment *e = ctx;
    pthread_mutex_lock(&e->mu);
    if (++e->n_released == e->n_vars)
        e->released = 1;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

/* Duet, stage thread: one batch pair (n_records > 0). */
static void hook_pair(void *ctx, const cb_cost *a, const cb_cost *b, uint32_t n_records)
{
    experiment *e = ctx;
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
static variant_ab block_variant(const experiment *e, uint32_t k)
{
    int first_b = (int)(mix64(e->seed ^ mix64(k / ROUND)) & 1);
    uint32_t pos = k % ROUND;
    int outer = pos == 0 || pos == 3;
    return (outer ? first_b : !first_b) ? VARIANT_B : VARIANT_A;
}

/* Interleaved, stage thread: the block of the batch starting now and its
 * variant. When the block changes, the previous block's costs are added. */
static variant_ab hook_block_now(void *ctx, uint32_t *block)
{
    experiment *e = ctx;
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
                abstats_block_add(&e->acc[EXP_M_CPU], ab_of(e->st_variant), cpu, n);
                abstats_block_add(&e->acc[EXP_M_WALL], ab_of(e->st_variant),
                                  (double)e->st_wall_ns / n, n);
                abstats_block_add(&e->acc[EXP_M_ALLOCS], ab_of(e->st_variant),
                                  (double)e->st_allocs / n, n);
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

/* Interleaved, stage thread: one batch's cost, charged to the open block. */
static void hook_block_batch(void *ctx, const cb_cost *c, uint32_t n_records)
{
    experiment *e = ctx;
    e->st_cpu_ns += c->cpu_ns;
    e->st_wall_ns += c->wall_ns;
    e->st_allocs += c->allocs;
    e->st_records += n_records;
    e->st_batches++;
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

/* Interleaved, sink thread: one consumed batch of `block`. Records its
 * latencies into the open block and closes the previous block when this
 * one is newer. */
static void hook_sink_batch(void *ctx, uint32_t block, variant_ab variant, const obs_batch *view,
                            uint64_t t_end_ns)
{
    experiment *e = ctx;
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
        e->sk_variant = variant == VARIANT_B;
        e->sk_records = 0;
    }
    for (uint32_t i = 0; i < view->n_records; i++) {
        uint64_t t = view->records[i].t_intended_ns;
        histogram_record(e->sk_hist, t_end_ns > t ? t_end_ns - t : 0);
    }
    e->sk_records += view->n_records;
}

const variant_hooks experiment_hooks = {
    .pair = hook_pair,
    .block_now = hook_block_now,
    .block_batch = hook_block_batch,
    .sink_batch = hook_sink_batch,
    .released = hook_released,
};
