/*
 * opmetrics.h - the operator's own counters and its /metrics and /healthz
 * server (libmicrohttpd).
 *
 * Counters are process-wide atomics bumped from any thread; the server
 * renders them in Prometheus text format. /healthz answers 200 while the
 * process is alive and its watches have not been failing for longer than
 * OPMETRICS_STALE_S; /readyz answers 200 once the caches have synced.
 */
#ifndef OBSOP_OPMETRICS_H
#define OBSOP_OPMETRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define OPMETRICS_STALE_S 300

typedef struct opmetrics {
    atomic_uint_fast64_t reconcile_ok, reconcile_error, reconcile_ns_total;
    atomic_uint_fast64_t applies, status_writes, events;
    atomic_uint_fast64_t swaps_ok, swaps_failed;
    atomic_uint_fast64_t lists, watch_restarts, relists_gone, relists_ahead, watch_events;
    atomic_int leader, synced;
    atomic_int_fast64_t last_watch_ok; /* CLOCK_MONOTONIC seconds */
    atomic_uint queue_depth, queue_waiting;
} opmetrics;

extern opmetrics opmetrics_g;

/* Monotonic seconds, for last_watch_ok. */
int64_t opmetrics_now_s(void);

/* Renders the exposition text into a malloc'd string. */
char *opmetrics_render(void);

typedef struct opmetrics_server opmetrics_server;
/* Listens on addr ("host:port" or ":port"); NULL with err set on failure. */
opmetrics_server *opmetrics_start(const char *addr, char *err, size_t errlen);
void opmetrics_stop(opmetrics_server *s);

#endif
