/*
 * host.h - the services table (obs_host) given to each stage instance.
 *
 * One host_ctx per stage instance: it owns the obs_host the plugin sees, the
 * plugin's registered counters and the accounting of memory it allocates
 * through host->alloc. Counters are written by one thread (the stage thread)
 * and read by others (report, metrics), so they are relaxed atomics.
 */
#ifndef OBS_HOST_H
#define OBS_HOST_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "observatory/stage.h"

#define HOST_MAX_COUNTERS 32
#define HOST_NAME_MAX_LEN 48

typedef struct host_counter {
    char name[HOST_NAME_MAX_LEN];
    char help[128];
    int kind; /* OBS_COUNTER_* */
    _Atomic uint64_t value;
} host_counter;

typedef struct host_ctx {
    obs_host api; /* what the plugin gets; api.host_private points here */
    host_counter counters[HOST_MAX_COUNTERS];
    _Atomic uint32_t n_counters;
    _Atomic uint64_t n_allocs, n_frees, alloc_bytes;
    /* blocked_add adds here (the stage's blocked time; NULL: nowhere). */
    _Atomic uint64_t *blocked_into;
    /* The origin of the batch a sink is consuming, for hold() (set by the
     * stage thread around consume; NULL otherwise). */
    struct origin *_Atomic consuming;
} host_ctx;

/* Fills `h` for an instance of a stage. The strings are borrowed and must
 * outlive the instance. wall_offset_ns: see obs_host (host_wall_offset_ns). */
void host_ctx_init(host_ctx *h, const char *stage_name, const char *plugin_path, uint64_t seed,
                   uint32_t batch_size, int64_t wall_offset_ns);

/* CLOCK_REALTIME - CLOCK_MONOTONIC now, in nanoseconds. */
int64_t host_wall_offset_ns(void);

/* Sum of the instance's error counters. */
uint64_t host_error_total(const host_ctx *h);

/* Global log threshold (OBS_LOG_*); messages above it are dropped. */
void host_set_log_level(int level);
/* Logs a host message in the same format as plugin messages. */
void host_log(const char *who, int level, const char *fmt, ...) OBS_PRINTF(3, 4);

/* A message that can repeat on every batch (a plugin that keeps breaking a
 * rule) is logged at most once per HOST_LOG_INTERVAL_NS, with the count of
 * those left out since. One limit per message and thread. */
#define HOST_LOG_INTERVAL_NS 1000000000ull
typedef struct host_log_limit {
    uint64_t last_ns;    /* when it was last logged; 0: never */
    uint64_t suppressed; /* left out since then */
} host_log_limit;
/* Logs through `l`; returns 1 when the line was written, 0 when counted. */
int host_log_limited(host_log_limit *l, const char *who, int level, const char *fmt, ...)
    OBS_PRINTF(4, 5);

/* Fault injection for tests: the n-th host->alloc from now (1 = the next)
 * and every one after it fails; 0 turns it off. */
void host_fail_alloc_after(uint64_t n);

uint64_t host_now_ns(void);
/* The calling thread's CPU time (a system call: about 2 us here). */
static inline uint64_t host_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
/* Sleeps until CLOCK_MONOTONIC reads t_ns (signals do not cut it short). */
void host_sleep_until(uint64_t t_ns);
/* The CLOCK_REALTIME time `ns` from now: a deadline for
 * pthread_cond_timedwait. */
struct timespec host_realtime_in(uint64_t ns);

#endif /* OBS_HOST_H */
