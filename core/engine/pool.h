/*
 * pool.h - batches and the pool they are recycled through.
 *
 * A batch is an obs_out (a record vector over a byte arena) plus the host's
 * bookkeeping. All batches of a pipeline are allocated when it starts; a
 * stage takes an empty batch from the pool, fills it and pushes it into its
 * output ring; the consumer returns it. Arenas and record vectors grow on
 * demand (doubling, up to the configured per-batch bound) and keep their
 * size when recycled, so after warm-up the data path allocates nothing.
 * Memory is bounded by configuration: n_batches * max_batch_bytes.
 *
 * Zero-copy pass-through: when a transform passes input records through
 * (obs_out_pass), its output batch references the input batch's arena, so
 * the input batch is attached to the output as `borrowed` and returned to
 * the pool only with it.
 *
 * Split by key: a batch spread over the instances of a stage partitioned by
 * key becomes one sub-batch per instance, whose records point into the
 * batch (borrowed); the batch counts them in `shares` and goes back to the
 * pool with the last of them, whichever thread returns it.
 */
#ifndef OBS_POOL_H
#define OBS_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "observatory/stage.h"

typedef struct pool pool;

typedef struct batch {
    obs_out out;            /* out.host_private points back here */
    struct batch *borrowed; /* kept alive while `out` references its bytes */
    /* Sub-batches still borrowing this batch (split by key); 0 when it is
     * borrowed by at most one batch. */
    _Atomic uint32_t shares;
    struct batch *next_free;
    pool *pool;
    uint64_t t_pushed_ns; /* when the producer pushed it (set by the pipeline) */
    /* Interleaved variants: the variant slot whose block produced these
     * records (NULL: none), the block's index and the variant that ran it
     * (VARIANT_A or VARIANT_B). Set by the stage with the slot, copied from
     * input to output batch by every later transform, read by the sink
     * (variant.h). */
    struct stage_variant *variant;
    uint32_t variant_block;
    uint8_t variant_ab;
    /* The source generator's batch these records came from (origin.h);
     * NULL without a source. Dropped when the batch returns to the pool. */
    struct origin *origin;
} batch;

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch *batches; /* all of them, one allocation */
    batch *free_list;
    uint32_t n_batches, n_free;
    uint32_t max_records; /* bound of a batch's record vector */
    uint64_t max_bytes;   /* bound of a batch's arena */
    uint64_t n_get_waits; /* gets that found the pool empty (under mu) */
};

/* Allocates n_batches batches with room for `records` records and
 * `arena_bytes` arena bytes each (both grow up to max_records/max_bytes).
 * Returns 0 or OBS_EINVAL/OBS_ENOMEM. */
int pool_init(pool *p, uint32_t n_batches, uint32_t records, uint64_t arena_bytes,
              uint32_t max_records, uint64_t max_bytes);
/* Frees every batch; all must have been returned. */
void pool_destroy(pool *p);

/* Takes an empty batch, blocking while none is free. Never NULL. */
batch *pool_get(pool *p);
/* Returns a batch and, recursively, the batches it borrows (a shared one
 * only when this was its last share). Any thread. */
void pool_put(pool *p, batch *b);

/* Batches currently free. */
uint32_t pool_free_count(pool *p);

static inline batch *batch_of(obs_out *out)
{
    return (batch *)out->host_private;
}

/* The batch's records as a read-only obs_batch. */
static inline obs_batch batch_view(const batch *b)
{
    return (obs_batch){.records = b->out.records, .n_records = b->out.n_records};
}

#endif /* OBS_POOL_H */
