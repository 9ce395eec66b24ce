/*
 * variant.c - the variant slot's mechanics on the stage thread (variant.h):
 * calling A and B through one measured call site, drawing a duet's order,
 * B's flush, and letting go of B.
 *
 * Both variants of a duet, and the block's variant of an interleaved run,
 * are called through run_measured(), from one call site, so neither has
 * code of its own (or the stage's accounting) next to its call: the path
 * a variant is called through was measured to carry an A/A bias of a few
 * percent when it differed between A and B (docs/experiments.md).
 */
#include "engine/variant.h"

#include "engine/host.h"
#include "obs_profiler.h"
#include "util/mix.h"

void cb_cost_begin(cb_cost *c)
{
    c->a0 = alloc_tls;
    c->cpu0 = host_thread_cpu_ns();
    c->wall0 = host_now_ns();
}

void cb_cost_end(cb_cost *c)
{
    c->wall_ns = host_now_ns() - c->wall0;
    c->cpu_ns = host_thread_cpu_ns() - c->cpu0;
    c->allocs = alloc_tls.n_allocs - c->a0.n_allocs;
    c->frees = alloc_tls.n_frees - c->a0.n_frees;
    c->bytes = alloc_tls.bytes - c->a0.bytes;
    c->heap_made = alloc_tls.usable_made - c->a0.usable_made;
    c->heap_freed = alloc_tls.usable_freed - c->a0.usable_freed;
}

void variant_attach(stage_variant *v)
{
    atomic_store(&v->s->variant, v);
}

void variant_release_request(stage_variant *v)
{
    atomic_store(&v->release_req, 1);
}

static void detach(stage_variant *v)
{
    atomic_store(&v->s->variant, NULL);
    v->hooks->released(v->ctx);
}

int variant_release_orphan(stage_variant *v)
{
    if (atomic_load(&v->s->pipeline->running))
        return 0;
    /* The stage thread is gone: nobody holds B any more. */
    atomic_store(&v->s->variant, NULL);
    return 1;
}

int variant_poll_release(stage_variant *v)
{
    if (!atomic_load_explicit(&v->release_req, memory_order_relaxed))
        return 0;
    detach(v);
    return 1;
}

void variant_release_at_end(stage *s)
{
    stage_variant *v = atomic_load(&s->variant);
    if (v)
        detach(v);
}

/* One variant's callback, measured: the one call site of both. */
static __attribute__((noinline)) int run_measured(const obs_stage_desc *d, void *instance,
                                                  uint32_t tag, const obs_batch *in, obs_out *out,
                                                  cb_cost *c)
{
    obs_prof_set_tag(tag);
    cb_cost_begin(c);
    int rc = d->process(instance, in, out);
    cb_cost_end(c);
    return rc;
}

/* The order is drawn per batch, independently of every other batch's,
 * rather than strictly alternated: what a callback finds in the caches
 * depends on the batch before it (the output batch it gets from the pool
 * was last written by B, first or second), and a drawn order cannot fall
 * into step with such a pattern. */
int variant_duet(stage_variant *v, const stage_slot *a, const obs_batch *in, obs_out *first,
                 obs_out *second, cb_cost *ca, cb_cost *cb, int *a_first)
{
    const int b_first = (int)(mix64(v->seed ^ mix64(v->k++)) >> 63);
    const stage_slot *sl[2] = {a, &v->b};
    obs_out *out[2] = {first, second};
    cb_cost *cost[2] = {ca, cb};
    int rc[2];
    for (int j = 0; j < 2; j++) {
        int w = j ^ b_first; /* 0: A, 1: B */
        rc[w] = run_measured(sl[w]->desc, sl[w]->instance, sl[w]->prof_tag, in, out[j], cost[w]);
    }
    obs_prof_set_tag(a->prof_tag);
    *a_first = !b_first;
    return rc[0];
}

int variant_process(stage_variant *v, const stage_slot *a, variant_ab which, const obs_batch *in,
                    obs_out *out, cb_cost *cost)
{
    const stage_slot *sl = which == VARIANT_B ? &v->b : a;
    int rc = run_measured(sl->desc, sl->instance, sl->prof_tag, in, out, cost);
    obs_prof_set_tag(a->prof_tag);
    return rc;
}

int variant_flush_b(stage_variant *v, obs_out *out)
{
    if (!v->b.desc->flush)
        return OBS_OK;
    obs_prof_set_tag(v->b.prof_tag);
    int rc = v->b.desc->flush(v->b.instance, out);
    obs_prof_set_tag(stage_active(v->s)->prof_tag);
    return rc;
}
