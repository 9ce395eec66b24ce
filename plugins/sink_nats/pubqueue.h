/*
 * pubqueue.h - sink_nats' messages in flight: asynchronous JetStream
 * publishes awaiting the server's acknowledgment, at most max_pending of
 * them, each with the host->hold() token of the batch its records came
 * from.
 *
 * A message lives in a slot from pubqueue_publish() until the server
 * acknowledges it (libnats calls pubqueue_on_ack on its own thread: the
 * slot is freed and the token released there) or it fails for good. A
 * publish libnats refuses, a negative acknowledgment, or an
 * acknowledgment that does not come within attempt_wait (every message
 * then still pending is taken back from libnats) puts the message into
 * RETRY: the stage thread publishes it again after a backoff, under the
 * same message id, until `timeout` after its first attempt; then it counts
 * on publish_errors and its token is released. Nothing grows: a publish
 * waits for a free slot (reported as blocked time).
 *
 * Threads: everything but pubqueue_on_ack runs on the stage thread.
 */
#ifndef OBS_PUBQUEUE_H
#define OBS_PUBQUEUE_H

#include <pthread.h>
#include <stdint.h>

#include <nats/nats.h>

#include <observatory/stage.h>

#include "natslink.h"

typedef struct pub_slot pub_slot;

typedef struct pubqueue {
    const obs_host *host;
    natsConnection *nc;
    jsCtx *js;
    /* For log lines: borrowed, valid until pubqueue_free. */
    const char *url, *stream, *subject;
    uint32_t max_pending;
    uint64_t timeout_ns, attempt_wait_ns;
    int c_records, c_msgs, c_dups, c_errors, c_retried;
    natslink_watch watch;
    natslink_ratelimit rl_fail;
    uint64_t last_scan_ns;
    uint64_t published_records; /* acknowledged (added by the stage thread) */
    uint64_t lost_records;      /* failed for good or refused */
    int published;              /* an asynchronous publish was made */

    /* Shared with pubqueue_on_ack, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sync_made;
    pub_slot *slots;
    uint32_t *free_idx, n_free, n_retry;
    natsMsg **hkey; /* message -> slot, open addressing */
    uint32_t *hval, hmask;
    uint64_t ack_msgs, ack_records, ack_dups; /* not yet added to the counters */
    int degraded;                             /* a message failed, none acknowledged since */
} pubqueue;

/* Sets q up for max_pending messages and registers the counters
 * published_records, published_msgs, duplicate_msgs, publish_errors and
 * retried_msgs. Call pubqueue_free even when this fails. Returns 0,
 * OBS_ENOMEM or the counter registration's error. */
int pubqueue_init(pubqueue *q, const obs_host *host, uint32_t max_pending, uint64_t timeout_ns);

/* The jsOptions.PublishAsync.AckHandler, with q as its closure. */
void pubqueue_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);

/* Publishes m (the caller's; taken over in every case) holding n_records
 * records of the batch being consumed (call from consume: it takes a
 * hold() token). Waits for a free slot first. Returns 0, or OBS_EIO when
 * some message failed for good meanwhile. */
int pubqueue_publish(pubqueue *q, natsMsg *m, uint32_t n_records);

/* Housekeeping (also done inside publish): counters, stalled messages,
 * retries, deadlines; with give_up every message still in flight fails.
 * Returns 0, or OBS_EIO when a message failed for good in this call. */
int pubqueue_pump(pubqueue *q, int give_up);

/* Waits until no message is in flight (bounded by the timeout). Returns 0,
 * or OBS_EIO when a message failed for good meanwhile. */
int pubqueue_drain(pubqueue *q);

/* Counts n_msgs messages of n_records records that could not even be
 * published, and logs why (at most once a second). Returns OBS_EIO. */
int pubqueue_refuse(pubqueue *q, uint32_t n_msgs, uint32_t n_records, const char *why);

/* 1 when the server has been unreachable for longer than the timeout. */
int pubqueue_server_lost(const pubqueue *q);

/* Takes every message back from libnats and releases the tokens of those
 * not acknowledged (they failed: the stage is finishing). Call before the
 * jsCtx is destroyed. Returns 0, or -1 when an acknowledgment handler may
 * still be running on q (then q must not be freed). */
int pubqueue_close(pubqueue *q);

/* Frees q's memory (not q itself). */
void pubqueue_free(pubqueue *q);

/* The wait before attempt `attempts` + 1: 50 ms, doubling, at most 1 s. */
uint64_t pubqueue_backoff_ns(uint32_t attempts);

#endif /* OBS_PUBQUEUE_H */
