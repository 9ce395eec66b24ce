/*
 * pull.c - gen_nats' pull requests to a durable JetStream consumer, sent
 * by hand to a plain inbox subscription (why: pull.h).
 */
#include "pull.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most messages one request asks for. */
#define MAX_BATCH 256
/* How long after its server-side expiry a request's 408 may still come. */
#define REQ_GRACE_NS 200000000ull

int natspull_open(natspull *p, const obs_host *host, natsConnection *nc, jsCtx *js, const char *url,
                  const char *stream, const char *subject, const char *durable, double ack_wait_s,
                  int64_t max_ack_pending, uint64_t timeout_ns)
{
    char reason[NATSLINK_REASON_LEN];
    memset(p, 0, sizeof *p);
    p->host = host;
    p->nc = nc;
    p->js = js;
    p->url = url;
    p->stream = stream;
    p->subject = subject;
    p->durable = durable;
    p->timeout_ns = timeout_ns;

    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable;
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.FilterSubject = subject;
    cc.AckWait = (int64_t)(ack_wait_s * 1e9);
    cc.MaxAckPending = max_ack_pending;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus st = js_AddConsumer(&ci, js, stream, &cc, NULL, &jerr);
    if (st != NATS_OK) {
        /* It exists with another configuration (another ack_wait, say):
         * take it if it still fits. */
        jsErrCode add_err = jerr;
        natslink_reason(st, reason, sizeof reason);
        jerr = 0;
        if (js_GetConsumerInfo(&ci, js, stream, durable, NULL, &jerr) != NATS_OK) {
            host->log(host, OBS_LOG_ERROR,
                      "gen_nats: cannot create consumer '%s' on stream '%s' at %s: %s "
                      "(JetStream error %d)",
                      durable, stream, url, reason, (int)add_err);
            return OBS_EIO;
        }
        const jsConsumerConfig *have = ci->Config;
        if (!have || have->DeliverSubject || have->AckPolicy != js_AckExplicit ||
            !have->FilterSubject || strcmp(have->FilterSubject, subject) != 0) {
            host->log(host, OBS_LOG_ERROR,
                      "gen_nats: consumer '%s' of stream '%s' at %s exists but is not a pull "
                      "consumer with explicit ack filtered on '%s': delete it or choose another "
                      "durable",
                      durable, stream, url, subject);
            jsConsumerInfo_Destroy(ci);
            return OBS_ECONFIG;
        }
        host->log(host, OBS_LOG_WARN,
                  "gen_nats: consumer '%s' exists with other settings (%s); using them (ack_wait "
                  "%.1f s, max_ack_pending %lld)",
                  durable, reason, (double)have->AckWait / 1e9, (long long)have->MaxAckPending);
    }
    jsConsumerInfo_Destroy(ci);

    size_t n = strlen(stream) + strlen(durable) + 64;
    p->next_subject = host->alloc(host, n);
    if (!p->next_subject)
        return OBS_ENOMEM;
    snprintf(p->next_subject, n, "$JS.API.CONSUMER.MSG.NEXT.%s.%s", stream, durable);
    st = natsInbox_Create(&p->inbox);
    if (st == NATS_OK)
        st = natsConnection_SubscribeSync(&p->sub, nc, p->inbox);
    if (st != NATS_OK) {
        host->log(host, OBS_LOG_ERROR, "gen_nats: cannot subscribe for consumer '%s' at %s: %s",
                  durable, url, natslink_reason(st, reason, sizeof reason));
        p->sub = NULL;
        return st == NATS_NO_MEMORY ? OBS_ENOMEM : OBS_EIO;
    }
    /* Never drop a delivered message for being slow: requests bound them. */
    natsSubscription_SetPendingLimits(p->sub, -1, -1);
    return OBS_OK;
}

/* Notes a failed request; returns OBS_EIO once failures have lasted
 * longer than the timeout. */
static int failed(natspull *p, const char *why)
{
    uint64_t now = p->host->now_ns();
    if (!p->fail_ns)
        p->fail_ns = now;
    if (now - p->fail_ns >= p->timeout_ns) {
        p->host->log(p->host, OBS_LOG_ERROR,
                     "gen_nats: requests to consumer '%s' of stream '%s' on %s have failed for "
                     "%.1f s: %s",
                     p->durable, p->stream, p->url, (double)(now - p->fail_ns) / 1e9, why);
        return OBS_EIO;
    }
    natslink_log_limited(p->host, &p->rl, OBS_LOG_WARN,
                         "gen_nats: request to consumer '%s' of stream '%s' on %s failed: %s",
                         p->durable, p->stream, p->url, why);
    return OBS_OK;
}

/* Asks for up to `batch` messages, held by the server up to wait_ms. */
static int request(natspull *p, uint32_t batch, int64_t wait_ms)
{
    char body[96];
    int len = snprintf(body, sizeof body, "{\"batch\":%u,\"expires\":%lld}", batch,
                       (long long)wait_ms * 1000000ll);
    natsStatus st = natsConnection_PublishRequest(p->nc, p->next_subject, p->inbox, body, len);
    if (st != NATS_OK) {
        char reason[NATSLINK_REASON_LEN];
        return failed(p, natslink_reason(st, reason, sizeof reason));
    }
    p->req_left = batch;
    p->req_until_ns = p->host->now_ns() + (uint64_t)wait_ms * 1000000u + REQ_GRACE_NS;
    return OBS_OK;
}

/* The status code of a status message (no data, a Status header), or 0
 * for a message that carries data. */
static int status_of(natsMsg *m)
{
    const char *v = NULL;
    if (natsMsg_GetDataLength(m) > 0 || natsMsgHeader_Get(m, "Status", &v) != NATS_OK || !v)
        return 0;
    return atoi(v);
}

int natspull_fetch(natspull *p, uint32_t want, int64_t wait_ms, void (*take)(void *arg, natsMsg *m),
                   void *arg, uint32_t *n_got, int *empty)
{
    uint64_t start = p->host->now_ns(), deadline = start + (uint64_t)wait_ms * 1000000u;
    uint32_t got = 0;
    int rc = OBS_OK;
    if (want == 0)
        want = 1;
    *empty = 0;
    for (;;) {
        uint64_t now = p->host->now_ns();
        if (wait_ms > 0 && (p->req_left == 0 || now >= p->req_until_ns) && got < want) {
            /* Asking for a little more than needed keeps messages coming
             * while the pipeline works on these. */
            uint32_t batch = want > MAX_BATCH / 2 ? MAX_BATCH : 2 * want;
            if ((rc = request(p, batch, wait_ms)) != OBS_OK)
                break;
        }
        /* Once there are messages, only take what is already here. */
        int64_t timeout_ms =
            got || now >= deadline ? 0 : (int64_t)((deadline - now + 999999) / 1000000);
        natsMsg *m = NULL;
        natsStatus st = natsSubscription_NextMsg(&m, p->sub, timeout_ms);
        if (st == NATS_TIMEOUT) {
            *empty = got == 0;
            break;
        }
        if (st != NATS_OK) {
            char reason[NATSLINK_REASON_LEN];
            natslink_reason(st, reason, sizeof reason);
            if (st == NATS_NO_RESPONDERS)
                snprintf(reason, sizeof reason,
                         "no answer (was the consumer or the stream "
                         "deleted?)");
            p->req_left = 0;
            rc = failed(p, reason);
            if (rc == OBS_OK && now < deadline)
                natslink_sleep_ns(deadline - now); /* failures may be immediate: no spinning */
            break;
        }
        int code = status_of(m);
        if (code == 0) {
            if (p->req_left)
                p->req_left--;
            p->fail_ns = 0;
            take(arg, m);
            if (++got >= want)
                break;
            continue;
        }
        /* 404 no messages, 408 request expired, 409 request ended (too
         * many waiting, consumer changed): the request is over. 100 is an
         * idle heartbeat. */
        if (code != 100) {
            p->req_left = 0;
            p->fail_ns = code == 409 ? p->fail_ns : 0;
            if (code == 409) {
                const char *d = NULL;
                natsMsgHeader_Get(m, "Description", &d);
                natslink_log_limited(p->host, &p->rl, OBS_LOG_WARN,
                                     "gen_nats: consumer '%s' of stream '%s' ended a request: "
                                     "%s",
                                     p->durable, p->stream, d ? d : "409");
            }
        }
        natsMsg_Destroy(m);
    }
    *n_got = got;
    return rc;
}

natsStatus natspull_ack(natsConnection *nc, natsMsg *m)
{
    const char *reply = natsMsg_GetReply(m);
    if (!reply)
        return NATS_ILLEGAL_STATE;
    return natsConnection_Publish(nc, reply, "+ACK", 4);
}

natsStatus natspull_term(natsConnection *nc, natsMsg *m)
{
    const char *reply = natsMsg_GetReply(m);
    if (!reply)
        return NATS_ILLEGAL_STATE;
    return natsConnection_Publish(nc, reply, "+TERM", 5);
}

int natspull_idle(natspull *p)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    if (js_GetConsumerInfo(&ci, p->js, p->stream, p->durable, NULL, &jerr) != NATS_OK)
        return 0;
    int idle = ci->NumPending == 0 && ci->NumAckPending == 0;
    jsConsumerInfo_Destroy(ci);
    return idle;
}

void natspull_close(natspull *p)
{
    if (p->sub) {
        natsSubscription_Unsubscribe(p->sub);
        natsSubscription_Destroy(p->sub);
        p->sub = NULL;
    }
    if (p->inbox)
        natsInbox_Destroy(p->inbox);
    p->inbox = NULL;
    if (p->host)
        p->host->free(p->host, p->next_subject);
    p->next_subject = NULL;
}
