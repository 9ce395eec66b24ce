/*
 * experiment_feed.c - the measurements that reach an experiment while it
 * runs, through the hooks of the engine's variant slot (engine/variant.h):
 * a duet's batch pairs from the stage threads, an interleaved run's blocks
 * from the stage threads (costs) and from the sink threads (latency and
 * throughput), and the acknowledgement that B was let go. Each hook adds to
 * the accumulators under the experiment's mutex; fields only one thread
 * touches live in its lane (exp_lane for a stage instance, exp_sink_lane
 * for a sink instance). The ABBA schedule of blocks and the rounds left out
 * of the analysis (exp_skip) are decided here too, so every thread agrees
 * on them.
 *
 * Interleaved, with one instance or several: every stage instance cuts the
 * same blocks from the experiment's start time and sums its share of each
 * (CPU, wall, allocations, records, batches); every sink instance records
 * the latencies of its share of each block into a histogram of its own.
 * A share is handed over once its instance has moved on (exp_merge); a
 * block is added when every instance has passed it, as one unit: its CPU
 * ns per record is the instances' CPU ns summed over their records summed
 * (a ratio of sums, like a single instance's block over its batches), its
 * p50 and p99 are those of the instances' histograms merged, its
 * throughput is all instances' records per second of block.
 */
#include "lab/experiment_internal.h"

#include <stdlib.h>

#include "util/mix.h"

#define NONE UINT32_MAX

static abstats_variant ab_of(int variant_b)
{
    return variant_b ? ABSTATS_B : ABSTATS_A;
}

/* ------------------------------------------------------- the block merge */

/* Whether block k is left out of the analysis. Each merge asks about its
 * blocks in increasing order and keeps its own cursor. A range whose look
 * is still running covers every block from its start. */
static int block_skipped(experiment *e, uint32_t k, uint32_t *cursor)
{
    uint32_t n = atomic_load_explicit(&e->n_skips, memory_order_acquire);
    while (*cursor < n && k > atomic_load_explicit(&e->skips[*cursor].hi, memory_order_acquire))
        (*cursor)++;
    return *cursor < n && k >= e->skips[*cursor].lo;
}

/* Under mu: adds complete block k of stage costs `b` (per record, weighted
 * by its records; the CPU clock's own read cost is subtracted per batch).
 * b is NULL when no instance had a batch in the block; a block left out is
 * counted either way, so the count follows the schedule, not the stream. */
static void stage_block_add(experiment *e, uint32_t k, const exp_pending *b)
{
    if (e->finished)
        return;
    if (block_skipped(e, k, &e->st_merge.skip)) {
        e->n_blocks_skipped++;
        return;
    }
    if (!b || !b->c.records)
        return;
    double n = (double)b->c.records;
    uint64_t ov = e->p->cpu_read_ns * b->c.batches;
    double cpu = (double)(b->c.cpu_ns > ov ? b->c.cpu_ns - ov : 0) / n;
    abstats_variant v = ab_of(b->variant_b);
    abstats_block_add(&e->acc[EXP_M_CPU], v, cpu, n);
    abstats_block_add(&e->acc[EXP_M_WALL], v, (double)b->c.wall_ns / n, n);
    abstats_block_add(&e->acc[EXP_M_ALLOCS], v, (double)b->c.allocs / n, n);
    e->n_blocks_stage++;
    e->n_records += b->c.records;
}

/* Under mu: adds a complete block of latencies (p50, p99, throughput). */
static void sink_block_add(experiment *e, const exp_pending *b)
{
    if (e->finished || !b->c.records || block_skipped(e, b->block, &e->sk_merge.skip))
        return;
    /* At least 1 ns: the geometric scale takes logs, and a value refused
     * would shift every later block out of its round. */
    double p50 = (double)histogram_quantile_ns(b->hist, 0.50);
    double p99 = (double)histogram_quantile_ns(b->hist, 0.99);
    p50 = p50 < 1 ? 1 : p50;
    p99 = p99 < 1 ? 1 : p99;
    /* Records that reached the sink from this block, per second of block:
     * under a load beyond the stage's capacity, what the variant sustains. */
    double thr = (double)b->c.records * 1e9 / (double)e->block_ns;
    abstats_variant v = ab_of(b->variant_b);
    abstats_block_add(&e->acc[EXP_M_P50], v, p50, 1);
    abstats_block_add(&e->acc[EXP_M_P99], v, p99, 1);
    abstats_block_add(&e->acc[EXP_M_THROUGHPUT], v, thr, 1);
    e->n_blocks_sink++;
}

/* Under mu: notes that some instance has reached block k. */
static void merge_reach(exp_merge *m, uint32_t k)
{
    if (!m->any || k > m->newest)
        m->newest = k;
    m->any = 1;
}

/* Under mu: adds (or passes over, when no instance had records in them)
 * the blocks from m->next on that are complete: older than the newest
 * block reached, and either passed by every instance or m->lag blocks
 * behind the newest (an instance that still holds one then loses its
 * share: late records). Blocks are added in order, so rounds stay whole. */
static void merge_drain(experiment *e, exp_merge *m, int sink)
{
    uint32_t oldest_held = NONE;
    for (uint32_t i = 0; i < m->n_held; i++)
        if (m->held[i] < oldest_held)
            oldest_held = m->held[i];
    while (m->any && m->next < m->newest) {
        if (m->next >= oldest_held && m->next + m->lag > m->newest)
            break;
        exp_pending *b = &m->slot[m->next % m->lag];
        int has = b->used && b->block == m->next;
        if (!sink)
            stage_block_add(e, m->next, has ? b : NULL);
        if (has) {
            if (sink)
                sink_block_add(e, b);
            b->used = 0;
            b->c = (exp_costs){0};
            if (b->hist)
                histogram_reset(b->hist);
        }
        m->next++;
    }
}

/* Under mu: counts records whose share came after its block was added. */
static void late(experiment *e, uint64_t n_records)
{
    if (!e->finished)
        e->n_late_records += n_records;
}

/* Under mu: the slot that collects block k's shares, or NULL when k was
 * already added (the share of n_records is late) or is beyond the window
 * (cannot happen after merge_drain: k <= newest < next + lag; counted as
 * late too). */
static exp_pending *merge_slot(experiment *e, exp_merge *m, uint32_t k, int variant_b,
                               uint64_t n_records)
{
    if (k < m->next || k - m->next >= m->lag) {
        late(e, n_records);
        return NULL;
    }
    exp_pending *b = &m->slot[k % m->lag];
    if (!b->used) {
        b->used = 1;
        b->block = k;
        b->variant_b = variant_b;
    }
    return b;
}

/* ------------------------------------------------------ the stage's side */

/* Stage thread: the variant slot of one instance has let go of its B. Its
 * open block is partial and never added; it holds no block any more. */
static void hook_released(void *ctx)
{
    exp_lane *l = ctx;
    experiment *e = l->e;
    pthread_mutex_lock(&e->mu);
    if (e->mode == EXP_INTERLEAVED && l->index < e->st_merge.n_held) {
        e->st_merge.held[l->index] = NONE;
        merge_drain(e, &e->st_merge, 0);
    }
    if (++e->n_released == e->n_vars)
        e->released = 1;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

/* Duet, stage thread: one batch pair (n_records > 0). */
static void hook_pair(void *ctx, const cb_cost *a, const cb_cost *b, uint32_t n_records)
{
    experiment *e = ((exp_lane *)ctx)->e;
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

/* The variant of block k: round k / 4 is ABBA or BAAB, at random from the
 * seed, so the schedule is reproducible and neither variant always starts
 * a round (or always follows the other). A function of k and the seed
 * only: every instance of the stage runs the same variant in block k. */
static variant_ab block_variant(const experiment *e, uint32_t k)
{
    int first_b = (int)(mix64(e->seed ^ mix64(k / ROUND)) & 1);
    uint32_t pos = k % ROUND;
    int outer = pos == 0 || pos == 3;
    return (outer ? first_b : !first_b) ? VARIANT_B : VARIANT_A;
}

/* Interleaved, stage thread: the block of the batch starting now and its
 * variant. When the instance's block changes, it hands over its share of
 * the previous one and holds the new one (under the mutex, once per
 * block). */
static variant_ab hook_block_now(void *ctx, uint32_t *block)
{
    exp_lane *l = ctx;
    experiment *e = l->e;
    uint64_t now = host_now_ns();
    uint32_t k = (uint32_t)((now - e->t_start_ns) / e->block_ns);
    if (!l->open || k != l->block) {
        exp_merge *m = &e->st_merge;
        pthread_mutex_lock(&e->mu);
        merge_reach(m, k);
        merge_drain(e, m, 0);
        if (l->open && l->sum.records) {
            exp_pending *b = merge_slot(e, m, l->block, l->variant == VARIANT_B, l->sum.records);
            if (b) {
                b->c.cpu_ns += l->sum.cpu_ns;
                b->c.wall_ns += l->sum.wall_ns;
                b->c.allocs += l->sum.allocs;
                b->c.records += l->sum.records;
                b->c.batches += l->sum.batches;
            }
        }
        if (l->index < m->n_held)
            m->held[l->index] = k;
        merge_drain(e, m, 0);
        pthread_mutex_unlock(&e->mu);
        l->open = 1;
        l->block = k;
        l->variant = block_variant(e, k);
        l->sum = (exp_costs){0};
    }
    *block = k;
    return l->variant;
}

/* Interleaved, stage thread: one batch's cost, charged to the open block. */
static void hook_block_batch(void *ctx, const cb_cost *c, uint32_t n_records)
{
    exp_lane *l = ctx;
    l->sum.cpu_ns += c->cpu_ns;
    l->sum.wall_ns += c->wall_ns;
    l->sum.allocs += c->allocs;
    l->sum.records += n_records;
    l->sum.batches++;
}

/* ------------------------------------------------------- the sink's side */

/* Under mu: hands over a sink instance's share of one block. */
static void sink_share(experiment *e, exp_sink_block *o)
{
    exp_pending *b = merge_slot(e, &e->sk_merge, o->block, o->variant_b, o->records);
    if (b) {
        histogram_merge(b->hist, o->hist);
        b->c.records += o->records;
    }
}

/* Sink thread: opens block k on instance `i` (not open there yet) for a
 * batch of n_records. Hands over the blocks that fall out of the
 * instance's window when k is its newest. Returns the open block, or NULL
 * when k is too old to be added (the batch's records are late). */
static exp_sink_block *sink_open(experiment *e, uint32_t i, uint32_t k, int variant_b,
                                 uint32_t n_records)
{
    exp_sink_lane *l = &e->sink_lanes[i];
    exp_merge *m = &e->sk_merge;
    if (l->any && k + EXP_SINK_OPEN <= l->newest) {
        pthread_mutex_lock(&e->mu);
        late(e, n_records);
        pthread_mutex_unlock(&e->mu);
        return NULL;
    }
    exp_sink_block *closed[EXP_SINK_OPEN];
    uint32_t n_closed = 0;
    if (!l->any || k > l->newest) {
        l->newest = k;
        l->any = 1;
        for (uint32_t j = 0; j < EXP_SINK_OPEN; j++)
            if (l->open[j].used && l->open[j].block + EXP_SINK_OPEN <= k)
                closed[n_closed++] = &l->open[j];
    }
    exp_sink_block *o = NULL;
    for (uint32_t j = 0; j < EXP_SINK_OPEN && !o; j++)
        if (!l->open[j].used)
            o = &l->open[j];
    if (!o && n_closed)
        o = closed[0]; /* reused below, once handed over */
    pthread_mutex_lock(&e->mu);
    merge_reach(m, k);
    merge_drain(e, m, 1);
    for (uint32_t j = 0; j < n_closed; j++)
        sink_share(e, closed[j]);
    int too_old = k < m->next;
    if (too_old)
        late(e, n_records);
    uint32_t held = too_old ? NONE : k;
    for (uint32_t j = 0; j < EXP_SINK_OPEN; j++) {
        exp_sink_block *x = &l->open[j];
        int still_open = x->used;
        for (uint32_t c = 0; c < n_closed; c++)
            still_open &= x != closed[c];
        if (still_open && x->block < held)
            held = x->block;
    }
    if (i < m->n_held)
        m->held[i] = held;
    merge_drain(e, m, 1);
    pthread_mutex_unlock(&e->mu);
    for (uint32_t j = 0; j < n_closed; j++) {
        histogram_reset(closed[j]->hist);
        closed[j]->used = 0;
        closed[j]->records = 0;
    }
    if (too_old || !o)
        return NULL;
    o->used = 1;
    o->block = k;
    o->variant_b = variant_b;
    o->records = 0;
    return o;
}

/* Interleaved, sink thread of instance `i`: one consumed batch of `block`.
 * Records its latencies into the instance's share of that block. */
static void hook_sink_batch(void *ctx, uint32_t i, uint32_t block, variant_ab variant,
                            const obs_batch *view, uint64_t t_end_ns)
{
    experiment *e = ((exp_lane *)ctx)->e;
    if (!e->sink_lanes || i >= e->n_sink_lanes)
        return;
    exp_sink_lane *l = &e->sink_lanes[i];
    exp_sink_block *o = NULL;
    for (uint32_t j = 0; j < EXP_SINK_OPEN && !o; j++)
        if (l->open[j].used && l->open[j].block == block)
            o = &l->open[j];
    if (!o && !(o = sink_open(e, i, block, variant == VARIANT_B, view->n_records)))
        return;
    for (uint32_t r = 0; r < view->n_records; r++) {
        uint64_t t = view->records[r].t_intended_ns;
        histogram_record(o->hist, t_end_ns > t ? t_end_ns - t : 0);
    }
    o->records += view->n_records;
}

const variant_hooks experiment_hooks = {
    .pair = hook_pair,
    .block_now = hook_block_now,
    .block_batch = hook_block_batch,
    .sink_batch = hook_sink_batch,
    .released = hook_released,
};

/* ---------------------------------------------------------- allocations */

static int merge_init(exp_merge *m, uint32_t n, uint32_t lag, int with_hist)
{
    m->n_held = n;
    m->held = malloc((size_t)n * sizeof *m->held);
    m->slot = calloc(lag, sizeof *m->slot);
    if (!m->held || !m->slot)
        return OBS_ENOMEM;
    m->lag = lag;
    for (uint32_t i = 0; i < n; i++)
        m->held[i] = NONE;
    for (uint32_t j = 0; with_hist && j < lag; j++)
        if (!(m->slot[j].hist = calloc(1, sizeof(histogram))))
            return OBS_ENOMEM;
    return OBS_OK;
}

int experiment_blocks_init(experiment *e, uint32_t n_stage, uint32_t n_sink)
{
    /* How long a lagging instance is waited for: half a second (a sink
     * instance descheduled that long still holds a ring of older batches),
     * and never fewer blocks than a sink instance keeps open. */
    uint64_t lag = (EXP_LAG_NS + e->block_ns - 1) / e->block_ns;
    lag = lag < EXP_LAG_MIN ? EXP_LAG_MIN : lag;
    if (merge_init(&e->st_merge, n_stage, (uint32_t)lag, 0) != 0 ||
        merge_init(&e->sk_merge, n_sink, (uint32_t)lag, 1) != 0)
        return OBS_ENOMEM;
    e->sink_lanes = calloc(n_sink, sizeof *e->sink_lanes);
    if (!e->sink_lanes)
        return OBS_ENOMEM;
    e->n_sink_lanes = n_sink;
    for (uint32_t i = 0; i < n_sink; i++)
        for (uint32_t j = 0; j < EXP_SINK_OPEN; j++)
            if (!(e->sink_lanes[i].open[j].hist = calloc(1, sizeof(histogram))))
                return OBS_ENOMEM;
    return OBS_OK;
}

void experiment_blocks_free(experiment *e)
{
    exp_merge *ms[2] = {&e->st_merge, &e->sk_merge};
    for (int k = 0; k < 2; k++) {
        free(ms[k]->held);
        for (uint32_t j = 0; ms[k]->slot && j < ms[k]->lag; j++)
            free(ms[k]->slot[j].hist);
        free(ms[k]->slot);
    }
    for (uint32_t i = 0; e->sink_lanes && i < e->n_sink_lanes; i++)
        for (uint32_t j = 0; j < EXP_SINK_OPEN; j++)
            free(e->sink_lanes[i].open[j].hist);
    free(e->sink_lanes);
}
