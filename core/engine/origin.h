/*
 * origin.h - following the batches of a source generator to their end.
 *
 * A source generator (OBS_STAGE_SOURCE) must learn when the records of a
 * batch it produced have left the pipeline, to acknowledge them to where
 * they came from (a JetStream consumer acks a message only then, so a
 * crash before that redelivers it). Each batch it produces gets an origin:
 * a reference count and the ticket the generator was given. Every batch
 * that carries records of that batch holds a reference: a transform's
 * output takes one from its input, a split by key gives one to each
 * sub-batch, a sink that makes records durable asynchronously holds one
 * until they are (obs_host.hold/release); a batch drops its reference when
 * it goes back to the pool. The last drop calls desc->delivered(ticket).
 *
 * Pipelines without a source never create an origin: the data path then
 * only tests a NULL pointer.
 */
#ifndef OBS_ORIGIN_H
#define OBS_ORIGIN_H

#include <stdatomic.h>
#include <stdint.h>

#include "observatory/stage.h"

typedef struct origin {
    _Atomic uint32_t refs;
    uint64_t ticket;
    const obs_stage_desc *desc;
    void *instance;
} origin;

/* A new origin holding one reference, or NULL when out of memory (the
 * batch is then delivered at once: the records flow, unacknowledged
 * upstream until a redelivery). */
origin *origin_new(const obs_stage_desc *desc, void *instance, uint64_t ticket);
/* Takes one more reference (NULL: nothing). */
void origin_hold(origin *o);
/* Drops one reference (NULL: nothing); the last one calls delivered and
 * frees the origin. Any thread. */
void origin_drop(origin *o);

#endif /* OBS_ORIGIN_H */
