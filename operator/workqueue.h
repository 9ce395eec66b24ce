/*
 * workqueue.h - a queue of keys ("namespace/name") for the reconcile workers.
 *
 * The semantics of client-go's rate-limited work queue: a key is queued at
 * most once; a key added while a worker processes it is queued again when the
 * worker calls workqueue_done() (so no change is lost and no key is processed
 * by two workers at once); a failed key comes back after a per-key exponential
 * backoff that workqueue_forget() resets; a key that met a conflict comes
 * back at once (a few times in a row, then with the backoff). Thread-safe.
 */
#ifndef OBSOP_WORKQUEUE_H
#define OBSOP_WORKQUEUE_H

#include <stdint.h>

/* Conflicts in a row retried at once before they count as failures. */
#define WORKQUEUE_MAX_QUICK_CONFLICTS 5

typedef struct workqueue workqueue;

/* base_ms doubles per failure of a key up to max_ms. NULL on ENOMEM. */
workqueue *workqueue_new(uint64_t base_ms, uint64_t max_ms);
void workqueue_free(workqueue *q);

/* Queues key (copied) now; a no-op when it is already queued. */
int workqueue_add(workqueue *q, const char *key);
/* Queues key after delay_ms (an earlier pending time wins). */
int workqueue_add_after(workqueue *q, const char *key, uint64_t delay_ms);
/* Queues key after its backoff and counts a failure. */
int workqueue_add_rate_limited(workqueue *q, const char *key);
/* Queues key at once after a conflict (HTTP 409: the object changed since it
 * was read; the next pass reads it again). The first
 * WORKQUEUE_MAX_QUICK_CONFLICTS conflicts in a row do not count as failures;
 * later ones are queued as workqueue_add_rate_limited() does. */
int workqueue_add_conflict(workqueue *q, const char *key);
/* Resets key's failure and conflict counts (call after a successful reconcile). */
void workqueue_forget(workqueue *q, const char *key);
/* Failures counted for key. */
unsigned workqueue_failures(workqueue *q, const char *key);

/* Waits up to timeout_ms (-1: forever) for a ready key. Returns 0 with *key a
 * malloc'd string the caller frees after workqueue_done(), -ETIMEDOUT, or
 * -ESHUTDOWN after workqueue_shutdown(). */
int workqueue_get(workqueue *q, int64_t timeout_ms, char **key);
/* Marks key processed; requeues it if it was added meanwhile. */
void workqueue_done(workqueue *q, const char *key);
/* Keys ready to be handed out now (or to be queued again when their worker
 * is done). */
unsigned workqueue_len(workqueue *q);
/* Keys waiting for their time: a backoff, a Retry-After or the resync. */
unsigned workqueue_waiting(workqueue *q);
/* Wakes every waiter; get() then returns -ESHUTDOWN. */
void workqueue_shutdown(workqueue *q);

/* The backoff for a key that failed `failures` times (1 = first failure). */
uint64_t workqueue_backoff_ms(uint64_t base_ms, uint64_t max_ms, unsigned failures);

#endif
