/*
 * state.h - the state the sampling side and the collecting side of the
 * profiler share, and the only way they talk: the table of attached
 * threads with their sample rings (single producer: the thread's SIGPROF
 * handler, sampler.c; single consumer: the collector, collector.c), the
 * configuration and counters in one global struct, the process's tag
 * table, and arming (per-thread CPU timers run only while the collector
 * has a consumer). Neither side includes the other: the sampler writes
 * samples and attaches threads, the collector drains samples and arms.
 *
 * Everything the signal handler touches is here and is written with C11
 * atomics or before the handler can run; the ring accessor is inline so
 * the handler calls nothing through this interface.
 *
 * Layer: above the profile model, below the sampler and the collector.
 * This module may include: profile, util.
 */
#ifndef OBS_PROF_STATE_H
#define OBS_PROF_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "obs_profiler.h"

/* One sample in a ring: a stack of pc[depth] return addresses, leaf first,
 * sized for max_depth (prof_g.sample_size bytes in all). */
typedef struct prof_sample {
    uint32_t weight;
    uint32_t tag;
    uint32_t depth;
    uint32_t pad;
    uintptr_t pc[]; /* max_depth, leaf first */
} prof_sample;

/* A slot of the thread table. */
typedef struct prof_thread {
    _Atomic int state; /* 0 free, 1 attached, 2 detached (ring still to drain) */
    _Atomic uint32_t head, tail; /* ring indices: the handler writes head, the collector tail */
    _Atomic uint32_t tag;
    _Atomic uint64_t dropped;
    volatile int in_handler;
    int timer_ok;
    timer_t timer;
    int tid;
    uintptr_t stack_lo, stack_hi;
    uint8_t *ring; /* ring_slots * sample_size, allocated at first attach, kept until fini */
} prof_thread;

typedef struct prof_global {
    obs_prof_config cfg; /* normalised by obs_prof_init; constant while initialised */
    size_t sample_size;
    uint32_t ring_mask;
    prof_thread *threads; /* cfg.max_threads slots */
    pthread_mutex_t lock; /* threads table, arming, tag table */
    int armed;
    int n_consumers;
    uintptr_t ldso_lo, ldso_hi;
    _Atomic uint64_t n_samples, weight, in_loader, unwind_failed, handler_ns;
    /* tags of the process: id -> labels; only strs and tags are used, and
     * they only grow, under lock */
    obs_prof_profile *tagdb;
} prof_global;

extern prof_global prof_g;
/* 0 off, -1 starting or stopping, 1 running (obs_prof_active). */
extern _Atomic int prof_initialised;

/* Ring slot i of t (i is taken modulo the ring size). Signal-safe. */
static inline prof_sample *prof_state_sample_at(prof_thread *t, uint32_t i)
{
    return (prof_sample *)(t->ring + (size_t)(i & prof_g.ring_mask) * prof_g.sample_size);
}

/* Allocates the thread table and the tag table for cfg (already
 * normalised) and zeroes the counters. 0 or OBS_ENOMEM (nothing kept). */
int prof_state_init(const obs_prof_config *cfg);
/* Deletes every thread's timer. After it no new SIGPROF is sent by us,
 * though one may still be pending; the handler must stay until the table
 * is freed. */
void prof_state_timers_delete(void);
/* Frees the rings, the thread table and the tag table. */
void prof_state_fini(void);
/* Starts (on) or stops the CPU timer of t at cfg.hz (prof_g.lock held). */
void prof_state_timer_set(prof_thread *t, int on);
/* Arms or disarms every attached thread's timer (prof_g.lock held). */
void prof_state_arm_locked(int on);
/* Fills the sampler's counters and the attached-thread count of st. */
void prof_state_stats(obs_prof_stats *st);

#endif /* OBS_PROF_STATE_H */
