/*
 * pubqueue.c - sink_nats' bounded table of JetStream publishes awaiting
 * acknowledgment, their retries and deadlines (contract: pubqueue.h).
 *
 * The acknowledgment handler finds a message's slot by its address in a
 * small open-addressing table: a message is mapped before it is handed to
 * libnats (its acknowledgment may arrive before js_PublishMsgAsync
 * returns) and unmapped by whoever takes it back (the handler, a refused
 * publish, or pubqueue's reclaim).
 */
#include "pubqueue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ATTEMPTS 8
#define NO_SLOT UINT32_MAX

enum { SLOT_FREE, SLOT_PENDING, SLOT_RETRY };

struct pub_slot {
    natsMsg *msg;      /* ours, except while PENDING (then libnats holds it) */
    uint64_t token;    /* host->hold() of the batch the records came from */
    uint64_t first_ns; /* first publish: the deadline counts from here */
    uint64_t sent_ns;  /* latest publish */
    uint64_t retry_ns; /* RETRY: when to publish again */
    uint32_t n_records;
    uint32_t attempts;
    int state;
    int fatal; /* RETRY: publishing again cannot help */
    char why[160];
};

static uint64_t now_ns(const pubqueue *q)
{
    return q->host->now_ns();
}

uint64_t pubqueue_backoff_ns(uint32_t attempts)
{
    uint64_t b = 50000000ull << (attempts < 5 ? attempts : 5);
    return b > 1000000000ull ? 1000000000ull : b;
}

static uint32_t hash_of(const pubqueue *q, const natsMsg *m)
{
    uint64_t x = (uint64_t)(uintptr_t)m;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x & q->hmask;
}

/* Maps m to slot i (mu held). The table has room for twice the slots. */
static void hash_put(pubqueue *q, natsMsg *m, uint32_t i)
{
    uint32_t h = hash_of(q, m);
    while (q->hkey[h])
        h = (h + 1) & q->hmask;
    q->hkey[h] = m;
    q->hval[h] = i;
}

/* Unmaps m and returns its slot, NO_SLOT if absent (mu held). Later
 * entries of the probe run shift back, so no tombstones pile up. */
static uint32_t hash_take(pubqueue *q, const natsMsg *m)
{
    uint32_t h = hash_of(q, m);
    while (q->hkey[h] && q->hkey[h] != m)
        h = (h + 1) & q->hmask;
    if (!q->hkey[h])
        return NO_SLOT;
    uint32_t slot = q->hval[h];
    q->hkey[h] = NULL;
    for (uint32_t j = (h + 1) & q->hmask; q->hkey[j]; j = (j + 1) & q->hmask) {
        uint32_t want = hash_of(q, q->hkey[j]);
        /* Entry j moves into the hole h when h lies cyclically in [want, j). */
        if (((j - want) & q->hmask) >= ((j - h) & q->hmask)) {
            q->hkey[h] = q->hkey[j];
            q->hval[h] = q->hval[j];
            q->hkey[j] = NULL;
            h = j;
        }
    }
    return slot;
}

/* Puts a slot into RETRY (mu held). */
static void slot_retry(pubqueue *q, pub_slot *sl, uint64_t now, int fatal, const char *why)
{
    sl->state = SLOT_RETRY;
    sl->retry_ns = now + pubqueue_backoff_ns(sl->attempts);
    sl->fatal = fatal;
    snprintf(sl->why, sizeof sl->why, "%.*s", (int)sizeof sl->why - 1, why);
    q->n_retry++;
}

/* Frees slot i (mu held). */
static void slot_free(pubqueue *q, uint32_t i)
{
    q->slots[i] = (pub_slot){.state = SLOT_FREE};
    q->free_idx[q->n_free++] = i;
}

void pubqueue_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    pubqueue *q = closure;
    uint64_t token = 0;
    int release = 0;
    pthread_mutex_lock(&q->mu);
    uint32_t i = hash_take(q, msg);
    if (i != NO_SLOT) {
        pub_slot *sl = &q->slots[i];
        if (pa) {
            q->ack_msgs++;
            q->ack_records += sl->n_records;
            q->ack_dups += pa->Duplicate;
            q->degraded = 0;
            token = sl->token;
            release = 1;
            slot_free(q, i);
        } else {
            char why[160];
            snprintf(why, sizeof why, "%s%s%s", natsStatus_GetText(pae ? pae->Err : NATS_ERR),
                     pae && pae->ErrText ? ": " : "", pae && pae->ErrText ? pae->ErrText : "");
            slot_retry(q, sl, q->host->now_ns(), 0, why);
            msg = NULL; /* the slot keeps it for the retry */
        }
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    /* Outside the lock: the release may run a source's delivered(). */
    if (release)
        q->host->release(q->host, token);
    natsMsg_Destroy(msg);
}

/* Hands slot i's message to libnats. A publish refused at once leaves it
 * with the slot, in RETRY. */
static void slot_send(pubqueue *q, uint32_t i)
{
    pub_slot *sl = &q->slots[i];
    natsMsg *m = sl->msg;
    uint64_t now = now_ns(q);
    pthread_mutex_lock(&q->mu);
    sl->state = SLOT_PENDING;
    sl->sent_ns = now;
    sl->attempts++;
    hash_put(q, m, i);
    pthread_mutex_unlock(&q->mu);
    q->published = 1;
    natsStatus st = js_PublishMsgAsync(q->js, &m, NULL);
    if (st == NATS_OK)
        return;
    char why[NATSLINK_REASON_LEN];
    natslink_reason(st, why, sizeof why);
    pthread_mutex_lock(&q->mu);
    if (hash_take(q, m) == i)
        slot_retry(q, sl, now, st == NATS_MAX_PAYLOAD || st == NATS_INVALID_SUBJECT, why);
    pthread_mutex_unlock(&q->mu);
}

/* Gives up on slot i (in RETRY): counts, logs, releases its token. */
static void slot_fail(pubqueue *q, uint32_t i, uint64_t now)
{
    /* A RETRY slot only changes on this thread: reading it unlocked is safe. */
    pub_slot dead = q->slots[i];
    pthread_mutex_lock(&q->mu);
    slot_free(q, i);
    q->n_retry--;
    q->degraded = 1;
    pthread_mutex_unlock(&q->mu);
    q->lost_records += dead.n_records;
    q->host->counter_add(q->host, q->c_errors, 1);
    natslink_log_limited(q->host, &q->rl_fail, OBS_LOG_ERROR,
                         "sink_nats: a message of %u record%s to '%s' (stream '%s' on %s) failed "
                         "after %u attempts in %.1f s: %s; its records are not stored",
                         dead.n_records, dead.n_records == 1 ? "" : "s", q->subject, q->stream,
                         q->url, dead.attempts, (double)(now - dead.first_ns) / 1e9, dead.why);
    natsMsg_Destroy(dead.msg);
    q->host->release(q->host, dead.token);
}

/* Takes every message still awaiting acknowledgment back from libnats
 * into RETRY, due at once. A copy that did reach the stream is dropped by
 * JetStream when published again (same message id). */
static void reclaim(pubqueue *q, uint64_t now, const char *why)
{
    natsMsgList pending = {0};
    /* libnats 3.4.1 crashes here before the first asynchronous publish. */
    if (!q->published || js_PublishAsyncGetPendingList(&pending, q->js) != NATS_OK)
        return; /* nothing pending: acknowledgments are being handled */
    pthread_mutex_lock(&q->mu);
    for (int k = 0; k < pending.Count; k++) {
        uint32_t i = hash_take(q, pending.Msgs[k]);
        if (i == NO_SLOT)
            continue;
        slot_retry(q, &q->slots[i], now, 0, why);
        q->slots[i].retry_ns = now;
        pending.Msgs[k] = NULL; /* the slot keeps it */
    }
    pthread_mutex_unlock(&q->mu);
    natsMsgList_Destroy(&pending);
}

int pubqueue_server_lost(const pubqueue *q)
{
    return q->watch.down_since_ns && now_ns(q) - q->watch.down_since_ns >= q->timeout_ns;
}

int pubqueue_pump(pubqueue *q, int give_up)
{
    uint64_t now = now_ns(q);
    int rc = OBS_OK;
    pthread_mutex_lock(&q->mu);
    uint64_t msgs = q->ack_msgs, recs = q->ack_records, dups = q->ack_dups;
    q->ack_msgs = q->ack_records = q->ack_dups = 0;
    uint32_t n_busy = q->max_pending - q->n_free, n_retry = q->n_retry;
    int degraded = q->degraded;
    pthread_mutex_unlock(&q->mu);
    if (msgs) {
        q->host->counter_add(q->host, q->c_msgs, msgs);
        q->host->counter_add(q->host, q->c_records, recs);
        q->published_records += recs;
    }
    if (dups)
        q->host->counter_add(q->host, q->c_dups, dups);
    if (natslink_poll(q->host, "sink_nats", q->url, q->nc, &q->watch, now) >= q->timeout_ns)
        give_up = 1;
    /* Stalled acknowledgments, checked every 10 ms at most. */
    if (n_busy > n_retry && (give_up || now - q->last_scan_ns >= 10000000u)) {
        q->last_scan_ns = now;
        uint64_t oldest = UINT64_MAX;
        pthread_mutex_lock(&q->mu);
        for (uint32_t i = 0; i < q->max_pending; i++)
            if (q->slots[i].state == SLOT_PENDING && q->slots[i].sent_ns < oldest)
                oldest = q->slots[i].sent_ns;
        pthread_mutex_unlock(&q->mu);
        if (oldest != UINT64_MAX && (give_up || now - oldest >= q->attempt_wait_ns)) {
            char why[96];
            snprintf(why, sizeof why, "no acknowledgment within %.1f s",
                     (double)q->attempt_wait_ns / 1e9);
            reclaim(q, now, why);
            n_retry = 1;
        }
    }
    if (n_retry == 0)
        return rc;
    for (uint32_t i = 0; i < q->max_pending; i++) {
        pub_slot *sl = &q->slots[i];
        pthread_mutex_lock(&q->mu);
        int retry = sl->state == SLOT_RETRY;
        pthread_mutex_unlock(&q->mu);
        if (!retry)
            continue;
        /* After a failure and no success since, the server is not taking
         * messages: fail at once instead of retrying each for the timeout. */
        if (give_up || degraded || sl->fatal || sl->attempts >= MAX_ATTEMPTS ||
            now >= sl->first_ns + q->timeout_ns) {
            slot_fail(q, i, now);
            rc = OBS_EIO;
        } else if (now >= sl->retry_ns) {
            pthread_mutex_lock(&q->mu);
            q->n_retry--;
            pthread_mutex_unlock(&q->mu);
            q->host->counter_add(q->host, q->c_retried, 1);
            slot_send(q, i);
        }
    }
    return rc;
}

/* Waits up to 5 ms for an acknowledgment (1 ms when retries are due). */
static void wait_ack(pubqueue *q)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 5000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&q->mu);
    int retrying = q->n_retry != 0;
    if (!retrying && q->n_free < q->max_pending)
        pthread_cond_timedwait(&q->cv, &q->mu, &ts);
    pthread_mutex_unlock(&q->mu);
    if (retrying)
        natslink_sleep_ns(1000000);
}

int pubqueue_publish(pubqueue *q, natsMsg *m, uint32_t n_records)
{
    int rc = OBS_OK;
    uint64_t t0 = 0;
    uint32_t i = NO_SLOT;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        if (q->n_free)
            i = q->free_idx[--q->n_free];
        pthread_mutex_unlock(&q->mu);
        if (i != NO_SLOT)
            break;
        if (!t0)
            t0 = now_ns(q);
        wait_ack(q);
        if (pubqueue_pump(q, 0) != OBS_OK)
            rc = OBS_EIO;
    }
    if (t0)
        q->host->blocked_add(q->host, now_ns(q) - t0);
    pub_slot *sl = &q->slots[i];
    *sl = (pub_slot){
        .msg = m, .token = q->host->hold(q->host), .n_records = n_records, .first_ns = now_ns(q)};
    slot_send(q, i);
    return rc;
}

int pubqueue_drain(pubqueue *q)
{
    int rc = OBS_OK;
    uint64_t t0 = now_ns(q), give_up_at = t0 + q->timeout_ns + q->attempt_wait_ns + 1000000000u;
    for (;;) {
        /* Idle first, then pump: the handler counts an acknowledgment in
         * the same locked step that frees its slot, so the pump after an
         * idle look adds every last count. */
        pthread_mutex_lock(&q->mu);
        int idle = q->n_free == q->max_pending;
        pthread_mutex_unlock(&q->mu);
        if (pubqueue_pump(q, now_ns(q) >= give_up_at) != OBS_OK)
            rc = OBS_EIO;
        if (idle)
            break;
        wait_ack(q);
    }
    q->host->blocked_add(q->host, now_ns(q) - t0);
    return rc;
}

int pubqueue_refuse(pubqueue *q, uint32_t n_msgs, uint32_t n_records, const char *why)
{
    q->lost_records += n_records;
    q->host->counter_add(q->host, q->c_errors, n_msgs);
    natslink_log_limited(q->host, &q->rl_fail, OBS_LOG_ERROR,
                         "sink_nats: %u record%s to '%s' (stream '%s' on %s) not published: %s",
                         n_records, n_records == 1 ? "" : "s", q->subject, q->stream, q->url, why);
    return OBS_EIO;
}

int pubqueue_close(pubqueue *q)
{
    if (!q->js || !q->slots)
        return 0;
    reclaim(q, now_ns(q), "stage finished");
    /* A handler that took its message before the reclaim is finishing and
     * uses q: wait for it (2 s at most). */
    uint32_t busy = 1;
    for (int tries = 0; busy && tries < 2000; tries++) {
        pthread_mutex_lock(&q->mu);
        busy = q->max_pending - q->n_free - q->n_retry;
        pthread_mutex_unlock(&q->mu);
        if (busy)
            natslink_sleep_ns(1000000);
    }
    for (uint32_t i = 0; i < q->max_pending; i++)
        if (q->slots[i].state == SLOT_RETRY) {
            natsMsg_Destroy(q->slots[i].msg);
            q->host->release(q->host, q->slots[i].token);
            q->slots[i].state = SLOT_FREE;
        }
    return busy ? -1 : 0;
}

int pubqueue_init(pubqueue *q, const obs_host *host, uint32_t max_pending, uint64_t timeout_ns)
{
    q->host = host;
    q->max_pending = max_pending;
    q->timeout_ns = timeout_ns;
    /* An attempt may wait a quarter of the timeout for its acknowledgment. */
    q->attempt_wait_ns = timeout_ns / 4;
    if (q->attempt_wait_ns < 100000000u)
        q->attempt_wait_ns = 100000000u;
    if (q->attempt_wait_ns > 5000000000u)
        q->attempt_wait_ns = 5000000000u;

    if (natslink_sync_init(&q->mu, &q->cv) != 0)
        return OBS_ENOMEM;
    q->sync_made = 1;

    uint32_t hcap = 2;
    while (hcap < 2 * max_pending)
        hcap *= 2;
    q->hmask = hcap - 1;
    q->slots = host->alloc(host, max_pending * sizeof *q->slots);
    q->free_idx = host->alloc(host, max_pending * sizeof *q->free_idx);
    q->hkey = host->alloc(host, hcap * sizeof *q->hkey);
    q->hval = host->alloc(host, hcap * sizeof *q->hval);
    if (!q->slots || !q->free_idx || !q->hkey || !q->hval)
        return OBS_ENOMEM;
    memset(q->slots, 0, max_pending * sizeof *q->slots);
    memset(q->hkey, 0, hcap * sizeof *q->hkey);
    for (uint32_t i = 0; i < max_pending; i++)
        q->free_idx[i] = max_pending - 1 - i;
    q->n_free = max_pending;

    struct {
        int *id;
        const char *name;
        int kind;
        const char *help;
    } counters[] = {
        {&q->c_records, "published_records", OBS_COUNTER_PLAIN,
         "records the server acknowledged (duplicates included)"},
        {&q->c_msgs, "published_msgs", OBS_COUNTER_PLAIN, "messages the server acknowledged"},
        {&q->c_dups, "duplicate_msgs", OBS_COUNTER_PLAIN,
         "acknowledged messages JetStream dropped as duplicates (message id seen)"},
        {&q->c_errors, "publish_errors", OBS_COUNTER_ERROR,
         "messages that could not be stored (after retries)"},
        {&q->c_retried, "retried_msgs", OBS_COUNTER_PLAIN, "messages published again"},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        *counters[i].id =
            host->counter_register(host, counters[i].name, counters[i].kind, counters[i].help);
        if (*counters[i].id < 0)
            return *counters[i].id;
    }
    return OBS_OK;
}

void pubqueue_free(pubqueue *q)
{
    const obs_host *host = q->host;
    if (!host)
        return;
    host->free(host, q->slots);
    host->free(host, q->free_idx);
    host->free(host, q->hkey);
    host->free(host, q->hval);
    q->slots = NULL;
    q->free_idx = NULL;
    q->hkey = NULL;
    q->hval = NULL;
    if (q->sync_made) {
        pthread_cond_destroy(&q->cv);
        pthread_mutex_destroy(&q->mu);
        q->sync_made = 0;
    }
}
