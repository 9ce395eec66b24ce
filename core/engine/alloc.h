/*
 * alloc.h - the allocation interposer: per-thread counts of every malloc,
 * calloc, realloc, aligned allocation and free made in the process.
 *
 * hostd defines malloc and friends itself (wrapping glibc's __libc_*
 * functions), so calls from plugins opened with RTLD_LOCAL resolve to these
 * too. Each thread counts into its own thread-local counters (no atomics, no
 * sharing); the pipeline reads the counters of a stage thread around each
 * plugin callback and charges the difference to the stage, so a stage is
 * charged exactly for what its plugin allocated.
 *
 * A free is charged to the thread that frees, so memory one stage allocates
 * and another frees shows as growth in the first and shrinking in the
 * second; the stages of this ABI do not hand heap blocks to each other
 * (records live in host arenas), so per stage the difference is the heap
 * the stage holds.
 *
 * Under AddressSanitizer or ThreadSanitizer, which interpose malloc
 * themselves, the interposer is compiled out and the counters stay zero;
 * alloc_interposer_active() says which build this is.
 */
#ifndef OBS_ALLOC_H
#define OBS_ALLOC_H

#include <stdint.h>

typedef struct alloc_counters {
    uint64_t n_allocs; /* malloc, calloc, aligned allocations, and realloc */
    uint64_t n_frees;  /* free of a non-NULL pointer, and realloc */
    uint64_t bytes;    /* bytes requested */
    /* Heap blocks as the allocator sizes them (malloc_usable_size), made
     * and freed by this thread: their difference over a callback is what
     * the callback left on the heap (the live heap of a stage). */
    uint64_t usable_made, usable_freed;
} alloc_counters;

/* The calling thread's counters (initial-exec TLS: safe inside malloc). */
extern __thread alloc_counters alloc_tls __attribute__((tls_model("initial-exec")));

/* 1 when this build counts allocations, 0 under sanitizers. */
int alloc_interposer_active(void);

#endif /* OBS_ALLOC_H */
