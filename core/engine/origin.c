/*
 * origin.c - reference counts that tell a source generator when a batch
 * has left the pipeline. Interface and the rules of who holds a
 * reference: origin.h.
 */
#include "engine/origin.h"

#include <stdlib.h>

origin *origin_new(const obs_stage_desc *desc, void *instance, uint64_t ticket)
{
    origin *o = malloc(sizeof *o);
    if (!o)
        return NULL;
    atomic_init(&o->refs, 1);
    o->ticket = ticket;
    o->desc = desc;
    o->instance = instance;
    return o;
}

void origin_hold(origin *o)
{
    if (o)
        atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}

void origin_drop(origin *o)
{
    if (!o || atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (o->desc->delivered)
        o->desc->delivered(o->instance, o->ticket);
    free(o);
}
