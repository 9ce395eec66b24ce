/*
 * workqueue.c - the keyed work queue with per-key backoff (workqueue.h).
 *
 * A handful of StageSets per cluster is the expected scale, so the state is
 * one list of entries searched linearly, under one mutex.
 */
#include "workqueue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct entry {
    char *key;
    unsigned failures;
    unsigned conflicts; /* consecutive conflicts retried at once */
    int queued;         /* waiting to be handed out (at not_before) */
    int processing;     /* handed out, not done yet */
    int dirty;          /* added while processing */
    uint64_t not_before_ms;
    uint64_t seq; /* FIFO order among ready keys */
    struct entry *next;
} entry;

struct workqueue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    entry *head;
    uint64_t base_ms, max_ms, seq;
    int shutdown;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t workqueue_backoff_ms(uint64_t base_ms, uint64_t max_ms, unsigned failures)
{
    uint64_t d = base_ms;
    for (unsigned i = 1; i < failures && d < max_ms; i++)
        d *= 2;
    return d < max_ms ? d : max_ms;
}

workqueue *workqueue_new(uint64_t base_ms, uint64_t max_ms)
{
    workqueue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &a);
    pthread_condattr_destroy(&a);
    q->base_ms = base_ms;
    q->max_ms = max_ms;
    return q;
}

void workqueue_free(workqueue *q)
{
    if (!q)
        return;
    for (entry *e = q->head, *n; e; e = n) {
        n = e->next;
        free(e->key);
        free(e);
    }
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
}

static entry *find(workqueue *q, const char *key, int create)
{
    for (entry *e = q->head; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    if (!create)
        return NULL;
    entry *e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key))) {
        free(e);
        return NULL;
    }
    e->next = q->head;
    q->head = e;
    return e;
}

/* Forgets entries that carry no state, so deleted objects do not accumulate. */
static void prune(workqueue *q)
{
    for (entry **p = &q->head; *p;) {
        entry *e = *p;
        if (!e->queued && !e->processing && !e->failures && !e->conflicts) {
            *p = e->next;
            free(e->key);
            free(e);
        } else {
            p = &e->next;
        }
    }
}

static int add_locked(workqueue *q, const char *key, uint64_t delay_ms, int failure)
{
    if (q->shutdown)
        return -ESHUTDOWN;
    entry *e = find(q, key, 1);
    if (!e)
        return -ENOMEM;
    if (failure) {
        e->failures++;
        delay_ms = workqueue_backoff_ms(q->base_ms, q->max_ms, e->failures);
    }
    uint64_t at = now_ms() + delay_ms;
    if (e->processing) {
        /* Requeued by done(); keep the earliest time asked for. */
        if (!e->dirty || at < e->not_before_ms)
            e->not_before_ms = at;
        e->dirty = 1;
        return 0;
    }
    if (!e->queued || at < e->not_before_ms) {
        if (!e->queued)
            e->seq = q->seq++;
        e->queued = 1;
        e->not_before_ms = at;
        pthread_cond_broadcast(&q->cv);
    }
    return 0;
}

int workqueue_add(workqueue *q, const char *key)
{
    return workqueue_add_after(q, key, 0);
}

int workqueue_add_after(workqueue *q, const char *key, uint64_t delay_ms)
{
    pthread_mutex_lock(&q->mu);
    int rc = add_locked(q, key, delay_ms, 0);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int workqueue_add_rate_limited(workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    int rc = add_locked(q, key, 0, 1);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int workqueue_add_conflict(workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    entry *e = find(q, key, 1);
    int rc = -ENOMEM;
    if (e) {
        /* Quick retries are for a conflict that a fresh read resolves; one
         * that keeps coming back is a fight with another writer, which the
         * ordinary backoff slows down. */
        int quick = ++e->conflicts <= WORKQUEUE_MAX_QUICK_CONFLICTS;
        rc = add_locked(q, key, 0, !quick);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void workqueue_forget(workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    entry *e = find(q, key, 0);
    if (e)
        e->failures = e->conflicts = 0;
    prune(q);
    pthread_mutex_unlock(&q->mu);
}

unsigned workqueue_failures(workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    entry *e = find(q, key, 0);
    unsigned n = e ? e->failures : 0;
    pthread_mutex_unlock(&q->mu);
    return n;
}

int workqueue_get(workqueue *q, int64_t timeout_ms, char **key)
{
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : now_ms() + (uint64_t)timeout_ms;
    int rc = -ETIMEDOUT;
    *key = NULL;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->shutdown) {
            rc = -ESHUTDOWN;
            break;
        }
        uint64_t now = now_ms(), next = deadline;
        entry *best = NULL;
        for (entry *e = q->head; e; e = e->next) {
            if (!e->queued)
                continue;
            if (e->not_before_ms <= now) {
                if (!best || e->seq < best->seq)
                    best = e;
            } else if (e->not_before_ms < next) {
                next = e->not_before_ms;
            }
        }
        if (best) {
            if (!(*key = strdup(best->key))) {
                rc = -ENOMEM;
                break;
            }
            best->queued = 0;
            best->processing = 1;
            rc = 0;
            break;
        }
        if (now >= deadline)
            break;
        if (next == UINT64_MAX) {
            pthread_cond_wait(&q->cv, &q->mu);
        } else {
            struct timespec ts = {.tv_sec = (time_t)(next / 1000),
                                  .tv_nsec = (long)(next % 1000) * 1000000};
            pthread_cond_timedwait(&q->cv, &q->mu, &ts);
        }
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void workqueue_done(workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    entry *e = find(q, key, 0);
    if (e) {
        e->processing = 0;
        if (e->dirty) {
            e->dirty = 0;
            e->queued = 1;
            e->seq = q->seq++;
            pthread_cond_broadcast(&q->cv);
        }
    }
    prune(q);
    pthread_mutex_unlock(&q->mu);
}

unsigned workqueue_len(workqueue *q)
{
    unsigned n = 0;
    pthread_mutex_lock(&q->mu);
    uint64_t now = now_ms();
    for (entry *e = q->head; e; e = e->next)
        n += (e->queued || e->dirty) && e->not_before_ms <= now;
    pthread_mutex_unlock(&q->mu);
    return n;
}

unsigned workqueue_waiting(workqueue *q)
{
    unsigned n = 0;
    pthread_mutex_lock(&q->mu);
    uint64_t now = now_ms();
    for (entry *e = q->head; e; e = e->next)
        n += (e->queued || e->dirty) && e->not_before_ms > now;
    pthread_mutex_unlock(&q->mu);
    return n;
}

void workqueue_shutdown(workqueue *q)
{
    pthread_mutex_lock(&q->mu);
    q->shutdown = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}
