/*
 * pool.c - batch allocation, growth and recycling (see pool.h).
 *
 * The pool is a mutex-protected free list: a stage touches it once per batch,
 * not per record, so at the batch sizes the pipeline is meant for the lock is
 * a few nanoseconds per record and rarely contended. Growth happens in the
 * owning stage's thread through obs_out.grow and needs no lock.
 */
#include "engine/pool.h"
#include "engine/origin.h"

#include <stdlib.h>
#include <string.h>

static void batch_reset(batch *b)
{
    origin_drop(b->origin);
    b->origin = NULL;
    b->out.n_records = 0;
    b->out.arena_used = 0;
    b->out.n_passed = 0;
    b->borrowed = NULL;
    b->t_pushed_ns = 0;
    b->variant = NULL;
    b->variant_block = 0;
    b->variant_ab = 0;
}

/* obs_out.grow: doubles the record vector and/or the arena until `n_records`
 * more records and `n_bytes` more bytes fit, within the pool's bounds. A
 * moved arena invalidates the data pointers of records already committed
 * into it, so those are rebased; passed-through records point elsewhere and
 * stay as they are. */
static int batch_grow(obs_out *out, uint32_t n_records, uint64_t n_bytes)
{
    batch *b = batch_of(out);
    pool *p = b->pool;

    uint64_t need_records = (uint64_t)out->n_records + n_records;
    if (need_records > out->cap_records) {
        if (need_records > p->max_records)
            return OBS_ENOMEM;
        uint64_t cap = out->cap_records ? out->cap_records : 16;
        while (cap < need_records)
            cap *= 2;
        if (cap > p->max_records)
            cap = p->max_records;
        obs_record *r = realloc(out->records, cap * sizeof(*r));
        if (!r)
            return OBS_ENOMEM;
        out->records = r;
        out->cap_records = (uint32_t)cap;
    }

    /* Arena records are 8-byte aligned (obs_out_commit rounds up). */
    uint64_t need_bytes = out->arena_used + ((n_bytes + 7u) & ~(uint64_t)7u);
    if (need_bytes > out->arena_cap) {
        if (need_bytes > p->max_bytes)
            return OBS_ENOMEM;
        uint64_t cap = out->arena_cap ? out->arena_cap : 4096;
        while (cap < need_bytes)
            cap *= 2;
        if (cap > p->max_bytes)
            cap = p->max_bytes;
        /* The old address is kept as an integer: it is only compared, never
         * dereferenced, after realloc. */
        uintptr_t old = (uintptr_t)out->arena;
        uint8_t *a = realloc(out->arena, cap);
        if (!a)
            return OBS_ENOMEM;
        if ((uintptr_t)a != old && old) {
            for (uint32_t i = 0; i < out->n_records; i++) {
                uintptr_t d = (uintptr_t)out->records[i].data;
                if (d >= old && d < old + out->arena_used)
                    out->records[i].data = a + (d - old);
            }
        }
        out->arena = a;
        out->arena_cap = cap;
    }
    return OBS_OK;
}

int pool_init(pool *p, uint32_t n_batches, uint32_t records, uint64_t arena_bytes,
              uint32_t max_records, uint64_t max_bytes)
{
    memset(p, 0, sizeof(*p));
    if (n_batches == 0 || records == 0 || records > max_records || arena_bytes > max_bytes)
        return OBS_EINVAL;
    p->batches = calloc(n_batches, sizeof(batch));
    if (!p->batches)
        return OBS_ENOMEM;
    p->n_batches = n_batches;
    p->max_records = max_records;
    p->max_bytes = max_bytes;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (uint32_t i = 0; i < n_batches; i++) {
        batch *b = &p->batches[i];
        b->pool = p;
        b->out.host_private = b;
        b->out.grow = batch_grow;
        b->out.records = malloc(records * sizeof(obs_record));
        b->out.arena = arena_bytes ? malloc(arena_bytes) : NULL;
        if (!b->out.records || (arena_bytes && !b->out.arena))
            goto fail;
        b->out.cap_records = records;
        b->out.arena_cap = arena_bytes;
        b->next_free = p->free_list;
        p->free_list = b;
    }
    p->n_free = n_batches;
    return OBS_OK;
fail:
    pool_destroy(p);
    return OBS_ENOMEM;
}

void pool_destroy(pool *p)
{
    if (!p->batches)
        return;
    for (uint32_t i = 0; i < p->n_batches; i++) {
        free(p->batches[i].out.records);
        free(p->batches[i].out.arena);
    }
    free(p->batches);
    p->batches = NULL;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
}

batch *pool_get(pool *p)
{
    pthread_mutex_lock(&p->mu);
    if (!p->free_list)
        p->n_get_waits++;
    while (!p->free_list)
        pthread_cond_wait(&p->cv, &p->mu);
    batch *b = p->free_list;
    p->free_list = b->next_free;
    p->n_free--;
    pthread_mutex_unlock(&p->mu);
    b->next_free = NULL;
    return b;
}

void pool_put(pool *p, batch *b)
{
    /* Unlink the chain outside the lock, then return it in one go. The
     * chain stops at a batch that other sub-batches still share. */
    batch *first = b, *last = b;
    uint32_t n = 1;
    for (;;) {
        batch *next = last->borrowed;
        batch_reset(last);
        if (!next)
            break;
        if (atomic_load_explicit(&next->shares, memory_order_acquire) != 0 &&
            atomic_fetch_sub_explicit(&next->shares, 1, memory_order_acq_rel) != 1)
            break;
        last->next_free = next;
        last = next;
        n++;
    }
    pthread_mutex_lock(&p->mu);
    last->next_free = p->free_list;
    p->free_list = first;
    p->n_free += n;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

uint32_t pool_free_count(pool *p)
{
    pthread_mutex_lock(&p->mu);
    uint32_t n = p->n_free;
    pthread_mutex_unlock(&p->mu);
    return n;
}
