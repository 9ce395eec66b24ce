/*
 * ring.h - bounded single-producer/single-consumer ring of pointers.
 *
 * Rings connect adjacent stage threads and carry batch pointers, never
 * records: one push per batch. The fast path is two atomic loads and one
 * release store. A full ring blocks its producer and an empty ring blocks
 * its consumer, first by spinning briefly and then on a futex, so an idle
 * pipeline uses no CPU; the time a producer spends blocked is counted
 * (backpressure is a measurement, not only a mechanism).
 */
#ifndef OBS_RING_H
#define OBS_RING_H

#include <stdatomic.h>
#include <stdint.h>

/* Where the producers of a consumer with several input rings signal it
 * (ring_pop_any): one futex word for all of its rings, set as ring.bell on
 * each of them before the threads start. */
typedef struct ring_bell {
    _Alignas(64) _Atomic uint32_t seq; /* futex word the consumer sleeps on */
    _Atomic uint32_t waiting;
} ring_bell;

typedef struct ring {
    /* Producer-owned line. */
    _Alignas(64) _Atomic uint32_t head; /* next slot to write; futex word for the consumer */
    _Atomic uint32_t producer_waiting;
    _Atomic uint32_t consumer_seq; /* futex word the consumer sleeps on */
    uint64_t blocked_ns;           /* producer time spent waiting on a full ring */
    uint64_t n_full_waits;         /* pushes that had to wait */
    /* Consumer-owned line. */
    _Alignas(64) _Atomic uint32_t tail; /* next slot to read; futex word for the producer */
    _Atomic uint32_t consumer_waiting;
    uint64_t n_empty_waits; /* pops that had to wait */
    /* Shared, read-mostly. */
    _Alignas(64) _Atomic uint32_t closed;
    uint32_t cap, mask;
    void **slots;
    ring_bell *bell; /* NULL: the consumer pops this ring alone (ring_pop) */
} ring;

/* Creates a ring of `cap` slots (a power of two, 2..2^20). Returns 0 or
 * OBS_EINVAL/OBS_ENOMEM. */
int ring_init(ring *r, uint32_t cap);
void ring_destroy(ring *r);

/* Producer: appends `item` (not NULL), blocking while the ring is full. */
void ring_push(ring *r, void *item);
/* Producer: no more pushes; wakes the consumer. */
void ring_close(ring *r);

/* Consumer: takes the oldest item, blocking while the ring is empty and not
 * closed. Returns NULL once the ring is closed and drained. */
void *ring_pop(ring *r);
/* Pops from whichever of the n rings has an item, trying rs[*next] first
 * and moving *next past the ring it took from (so no ring starves); sleeps
 * on `bell` (the rings' bell) while all are empty. Returns NULL once every
 * ring is closed and drained. One consumer thread per set of rings. */
void *ring_pop_any(ring *const *rs, uint32_t n, uint32_t *next, ring_bell *bell);
/* Consumer: like ring_pop but never blocks; NULL when empty. */
void *ring_try_pop(ring *r);

/* Items currently queued (approximate when read by a third thread). */
uint32_t ring_occupancy(const ring *r);

#endif /* OBS_RING_H */
