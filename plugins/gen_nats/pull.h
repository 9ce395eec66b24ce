/*
 * pull.h - gen_nats' side of a durable JetStream pull consumer: creating
 * or binding the consumer, asking it for messages, acknowledging them, and
 * asking whether it has anything left.
 *
 * Pull requests are sent by hand ("$JS.API.CONSUMER.MSG.NEXT.<stream>.
 * <consumer>" with {"batch":n,"expires":ns}) to a plain inbox subscription
 * instead of through natsSubscription_Fetch: in libnats 3.4.1 (Debian 12)
 * Fetch writes past its message array when messages of an earlier,
 * expired request are still queued (fixed upstream in 3.9.0), and once it
 * has had to wait it waits until the whole batch is there or the time is
 * up. Here at most one request is outstanding; whatever arrives in the
 * inbox, late or not, is taken; natspull_fetch returns as soon as it has
 * messages and nothing more is queued.
 *
 * Messages come from a plain subscription, so natsMsg_Ack (which needs a
 * JetStream subscription) does not apply: acknowledgments are published
 * to the message's reply subject (natspull_ack, natspull_term), which is
 * what natsMsg_Ack does. natsMsg_GetMetaData works on them.
 */
#ifndef OBS_NATSPULL_H
#define OBS_NATSPULL_H

#include <stdint.h>

#include <nats/nats.h>

#include <observatory/stage.h>

#include "natslink.h"

typedef struct natspull {
    const obs_host *host;
    natsConnection *nc;
    jsCtx *js;
    const char *url, *stream, *subject, *durable; /* borrowed until natspull_close */
    char *next_subject;                           /* the consumer's MSG.NEXT subject */
    natsInbox *inbox;
    natsSubscription *sub;
    uint32_t req_left;     /* messages the outstanding request may still bring */
    uint64_t req_until_ns; /* after this, no request is outstanding */
    uint64_t fail_ns;      /* first of a run of failures, 0: none */
    uint64_t timeout_ns;
    natslink_ratelimit rl;
} natspull;

/* Creates the durable consumer (explicit ack, deliver all, filter
 * `subject`, the given AckWait and MaxAckPending), or takes the existing
 * one when it still fits (logged), and subscribes to an inbox for its
 * messages. The strings are borrowed until natspull_close. Returns 0 or
 * an error (logged); call natspull_close in either case. */
int natspull_open(natspull *p, const obs_host *host, natsConnection *nc, jsCtx *js, const char *url,
                  const char *stream, const char *subject, const char *durable, double ack_wait_s,
                  int64_t max_ack_pending, uint64_t timeout_ns);

/* Receives up to about `want` messages (at least one is asked for),
 * waiting up to wait_ms for the first (0: only those already here, no new
 * request); calls take(arg, msg) for each, which
 * owns it from then on. *n_got: how many. *empty: the wait ended without a
 * message. Returns 0, or OBS_EIO when requests have failed for longer than
 * the timeout (logged). */
int natspull_fetch(natspull *p, uint32_t want, int64_t wait_ms, void (*take)(void *arg, natsMsg *m),
                   void *arg, uint32_t *n_got, int *empty);

/* Acknowledges m (any thread). Returns the libnats status. */
natsStatus natspull_ack(natsConnection *nc, natsMsg *m);

/* Tells JetStream never to deliver m again (any thread). */
natsStatus natspull_term(natsConnection *nc, natsMsg *m);

/* 1 when the consumer has no message pending and none unacknowledged (by
 * any process); 0 otherwise or when the server does not answer. */
int natspull_idle(natspull *p);

/* Unsubscribes (the consumer stays on the server for the other processes;
 * messages not acknowledged are delivered again) and frees what p holds. */
void natspull_close(natspull *p);

#endif /* OBS_NATSPULL_H */
