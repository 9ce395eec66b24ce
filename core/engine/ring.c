/*
 * ring.c - the SPSC batch ring (see ring.h).
 *
 * Indices are free-running 32-bit counters; head - tail (mod 2^32) is the
 * occupancy, so the capacity must be a power of two well below 2^31. A side
 * that must wait announces itself in its *_waiting flag and sleeps on the
 * other side's index with FUTEX_WAIT; the other side wakes it only when the
 * flag is set, so the fast path makes no system call. The flag store and the
 * index re-check are separated by sequentially consistent operations on both
 * sides (Dekker's pattern), which is what prevents a lost wake-up.
 */
#include "engine/ring.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "observatory/stage.h"

/* Spins before sleeping: long enough to cover a peer that is about to push
 * or pop, short enough not to steal a core on this 2-core class of machine. */
#define RING_SPINS 200

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t expected)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int ring_init(ring *r, uint32_t cap)
{
    if (cap < 2 || cap > (1u << 20) || (cap & (cap - 1)) != 0)
        return OBS_EINVAL;
    *r = (ring){0};
    r->slots = calloc(cap, sizeof(void *));
    if (!r->slots)
        return OBS_ENOMEM;
    r->cap = cap;
    r->mask = cap - 1;
    return OBS_OK;
}

void ring_destroy(ring *r)
{
    free(r->slots);
    r->slots = NULL;
}

void ring_push(ring *r, void *item)
{
    uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (h - t >= r->cap) {
        uint64_t t0 = mono_ns();
        r->n_full_waits++;
        for (int spin = 0;; spin++) {
            t = atomic_load_explicit(&r->tail, memory_order_acquire);
            if (h - t < r->cap)
                break;
            if (spin < RING_SPINS) {
                cpu_relax();
                continue;
            }
            atomic_store(&r->producer_waiting, 1);
            t = atomic_load(&r->tail);
            if (h - t >= r->cap)
                futex_wait(&r->tail, t);
            atomic_store_explicit(&r->producer_waiting, 0, memory_order_relaxed);
        }
        r->blocked_ns += mono_ns() - t0;
    }
    r->slots[h & r->mask] = item;
    atomic_store(&r->head, h + 1);
    ring_bell *bell = r->bell;
    if (bell) {
        if (atomic_load(&bell->waiting)) {
            atomic_fetch_add(&bell->seq, 1);
            futex_wake(&bell->seq);
        }
    } else if (atomic_load(&r->consumer_waiting)) {
        atomic_fetch_add(&r->consumer_seq, 1);
        futex_wake(&r->consumer_seq);
    }
}

void ring_close(ring *r)
{
    atomic_store(&r->closed, 1);
    /* Unconditional: a consumer between its `closed` check and its sleep
     * sees the futex word change and does not sleep. */
    _Atomic uint32_t *word = r->bell ? &r->bell->seq : &r->consumer_seq;
    atomic_fetch_add(word, 1);
    futex_wake(word);
}

void *ring_try_pop(ring *r)
{
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    if (h == t)
        return NULL;
    void *item = r->slots[t & r->mask];
    atomic_store(&r->tail, t + 1);
    if (atomic_load(&r->producer_waiting))
        futex_wake(&r->tail);
    return item;
}

void *ring_pop(ring *r)
{
    void *item = ring_try_pop(r);
    if (item)
        return item;
    r->n_empty_waits++;
    for (int spin = 0;; spin++) {
        item = ring_try_pop(r);
        if (item)
            return item;
        if (atomic_load(&r->closed)) {
            /* The producer's last push happened before it closed the ring. */
            return ring_try_pop(r);
        }
        if (spin < RING_SPINS) {
            cpu_relax();
            continue;
        }
        uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
        uint32_t seq = atomic_load(&r->consumer_seq);
        atomic_store(&r->consumer_waiting, 1);
        uint32_t h = atomic_load(&r->head);
        if (h == t && !atomic_load(&r->closed)) {
            /* Returns at once if a push or close advanced consumer_seq. */
            futex_wait(&r->consumer_seq, seq);
        }
        atomic_store_explicit(&r->consumer_waiting, 0, memory_order_relaxed);
    }
}

/* The same protocol as ring_pop, over several rings and one bell: the
 * consumer announces itself in bell->waiting before its last look at every
 * ring's head, and a producer that pushes after that look sees the flag and
 * advances bell->seq, so the futex wait returns at once. */
void *ring_pop_any(ring *const *rs, uint32_t n, uint32_t *next, ring_bell *bell)
{
    uint32_t first = *next < n ? *next : 0;
    for (int spin = 0;; spin++) {
        int open = 0;
        for (uint32_t k = 0, i = first; k < n; k++, i = i + 1 == n ? 0 : i + 1) {
            void *item = ring_try_pop(rs[i]);
            if (item) {
                *next = i + 1 == n ? 0 : i + 1;
                return item;
            }
            open |= !atomic_load(&rs[i]->closed);
        }
        if (!open) {
            /* Every producer's last push happened before it closed its ring. */
            for (uint32_t i = 0; i < n; i++) {
                void *item = ring_try_pop(rs[i]);
                if (item)
                    return item;
            }
            return NULL;
        }
        if (spin == 0)
            rs[first]->n_empty_waits++;
        if (spin < RING_SPINS) {
            cpu_relax();
            continue;
        }
        uint32_t seq = atomic_load(&bell->seq);
        atomic_store(&bell->waiting, 1);
        int ready = 0, all_closed = 1;
        for (uint32_t i = 0; i < n; i++) {
            ready |= atomic_load(&rs[i]->head) !=
                     atomic_load_explicit(&rs[i]->tail, memory_order_relaxed);
            all_closed &= atomic_load(&rs[i]->closed) != 0;
        }
        if (!ready && !all_closed)
            futex_wait(&bell->seq, seq);
        atomic_store_explicit(&bell->waiting, 0, memory_order_relaxed);
    }
}

uint32_t ring_occupancy(const ring *r)
{
    return atomic_load_explicit(&r->head, memory_order_relaxed) -
           atomic_load_explicit(&r->tail, memory_order_relaxed);
}
