/*
 * variant.h - the variant slot: a second version (B) of a transform stage's
 * plugin running beside the stage's active version (A) on the live stream.
 *
 * The engine owns the mechanics, on the stage thread: how B is called, how
 * each call is measured (cb_cost: wall and thread CPU time, allocations),
 * which output goes downstream, how batches are tagged for the sink, and
 * when B is let go. What the measurements mean belongs to whoever attached
 * B (the lab's experiments, lab/experiment.h), which receives them through
 * the hooks below. So the data path never knows what an experiment is, and
 * the lab never reaches into the stage thread's loop.
 *
 * Two modes:
 * - duet: A and B both process every batch, in an order drawn per batch
 *   from the seed, through one call site; only A's output goes downstream,
 *   and the pair's costs go to hooks->pair.
 * - interleaved: only one variant runs on each batch, the one of the block
 *   hooks->block_now names; its output goes downstream tagged with the
 *   block, and the sink hands each tagged batch to hooks->sink_batch.
 * On a stage of parallel instances every instance has a stage_variant of
 * its own, and its hooks run on its own thread; the sink's hook says which
 * sink instance calls it.
 *
 * Lifetime: the attacher builds and initialises B (swap.h's helpers load
 * plugins and name profiler tags), fills a stage_variant and publishes it
 * with variant_attach() under the pipeline's swap lock. It asks for B back
 * with variant_release_request(); the stage thread lets go at its next
 * batch (or at its end) and calls hooks->released. The stage_variant must
 * stay allocated until pipeline_destroy(): batches in flight point to it.
 */
#ifndef OBS_VARIANT_H
#define OBS_VARIANT_H

#include <stdatomic.h>
#include <stdint.h>

#include "engine/alloc.h"
#include "engine/stage.h"
#include "observatory/stage.h"

typedef enum variant_ab { VARIANT_A = 0, VARIANT_B = 1 } variant_ab;

typedef enum variant_mode { VARIANT_DUET = 0, VARIANT_INTERLEAVED = 1 } variant_mode;

/* What one variant's callback cost on one batch (stage thread). */
typedef struct cb_cost {
    uint64_t wall0, cpu0, wall_ns, cpu_ns;
    alloc_counters a0;
    uint64_t allocs, frees, bytes; /* during the call */
    uint64_t heap_made, heap_freed; /* usable heap bytes made and freed during it */
} cb_cost;

void cb_cost_begin(cb_cost *c);
void cb_cost_end(cb_cost *c);

/* The attacher's side. Every hook but `released` runs on the thread named
 * and must not block; `ctx` is stage_variant.ctx. */
typedef struct variant_hooks {
    /* Duet, stage thread: both variants ran on a batch of n_records. */
    void (*pair)(void *ctx, const cb_cost *a, const cb_cost *b, uint32_t n_records);
    /* Interleaved, stage thread: the block the batch starting now belongs
     * to (*block) and the variant that runs in it. */
    variant_ab (*block_now)(void *ctx, uint32_t *block);
    /* Interleaved, stage thread: the cost of one batch of the current
     * block (A's or B's, whichever ran). */
    void (*block_batch)(void *ctx, const cb_cost *c, uint32_t n_records);
    /* Interleaved, sink thread: a consumed batch tagged with `block` of
     * variant `v`, finished at t_end_ns by instance `sink_instance` of the
     * sink (0 .. its n_instances - 1; each instance has its own thread). */
    void (*sink_batch)(void *ctx, uint32_t sink_instance, uint32_t block, variant_ab v,
                       const obs_batch *view, uint64_t t_end_ns);
    /* The stage thread has let go of B (and will never call B again). */
    void (*released)(void *ctx);
} variant_hooks;

typedef struct stage_variant {
    variant_mode mode;
    stage_slot b;  /* B, initialised by the attacher; finalised by it */
    uint64_t seed; /* duet: each batch's order is drawn from it */
    const variant_hooks *hooks;
    void *ctx;
    stage *s;
    uint64_t k;              /* stage thread: batches run so far */
    _Atomic int release_req; /* variant_release_request() was called */
} stage_variant;

/* Publishes v on its stage (v->s): the stage thread runs B from its next
 * batch. Caller holds the pipeline's swap lock and has checked that the
 * stage is a running transform with no variant attached. */
void variant_attach(stage_variant *v);

/* Asks the stage thread to let go of B at its next batch (any thread). */
void variant_release_request(stage_variant *v);

/* For a stage thread that is gone (the pipeline no longer runs): detaches
 * v without it, as if it had let go. Returns 1 when it did. */
int variant_release_orphan(stage_variant *v);

/* ---- The stage thread (pipeline.c) ---- */

/* The variant attached to s, or NULL. */
static inline stage_variant *variant_of(stage *s)
{
    return atomic_load_explicit(&s->variant, memory_order_acquire);
}

/* Duet: runs A (slot a) and B on `in`, in an order drawn for this batch,
 * through one call site (profiler tag, clocks, callback, clocks). The
 * variant that runs first writes into `first`, the other into `second`;
 * *a_first says which A was. Returns A's callback code (B's output is
 * discarded, its code not acted on). */
int variant_duet(stage_variant *v, const stage_slot *a, const obs_batch *in, obs_out *first,
                 obs_out *second, cb_cost *ca, cb_cost *cb, int *a_first);

/* Interleaved: runs variant `which` (A being slot a) on `in` into `out`,
 * measured and tagged for the profiler through the duet's call site.
 * Returns the callback's code. */
int variant_process(stage_variant *v, const stage_slot *a, variant_ab which, const obs_batch *in,
                    obs_out *out, cb_cost *cost);

/* Interleaved, after B was let go: B's flush into `out`, so records B still
 * holds go downstream. Returns the callback's code (OBS_OK without flush). */
int variant_flush_b(stage_variant *v, obs_out *out);

/* Lets go of B when it was asked for. Returns 1 when it did. */
int variant_poll_release(stage_variant *v);

/* At the stage thread's end: lets go of an attached variant. */
void variant_release_at_end(stage *s);

#endif /* OBS_VARIANT_H */
