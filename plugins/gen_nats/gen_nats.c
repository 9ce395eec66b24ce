/*
 * gen_nats - a source generator (OBS_STAGE_SOURCE) that reads the records
 * sink_nats published into a NATS JetStream stream, so one hostd's output
 * becomes another's input with the records' own seqs and intended times.
 *
 * It pulls from a durable consumer (explicit ack, deliver all, filtered on
 * `subject`; pull.c); every gen_nats using the same durable name shares
 * the work.
 * A message is a batch frame, or one record with its numbers in headers
 * (plugins/common/natsframe.h; told apart by the Obs-Seq header). A batch
 * frame gets a batch of its own (with `combine`, whole frames share one
 * while they fit); record messages fill batches; a message with more
 * records than a batch holds is split over several. The host names each batch
 * with a ticket and calls delivered(ticket), from any thread, once its records have left the
 * pipeline: only then is each message acknowledged (all of its parts delivered), so a crash before
 * that makes JetStream deliver it again (at-least-once). A message that cannot be decoded is
 * terminated (never redelivered) and counted on decode_errors.
 *
 * The end: every sink_nats publishes an end-of-stream mark to
 * subject + ".eos" when its stream ends. Each gen_nats reads all marks
 * through its own ordered consumer; once `publishers` distinct marks have
 * arrived, a fetch came back empty and the durable consumer has nothing
 * pending or unacknowledged (ours and other processes'), generate returns
 * OBS_DONE. A server gone longer than `timeout` fails the stream.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <nats/nats.h>

#include <observatory/stage.h>

#include "natsframe.h"
#include "natslink.h"
#include "pull.h"

enum {
    P_URL,
    P_STREAM,
    P_SUBJECT,
    P_DURABLE,
    P_PUBLISHERS,
    P_ACK_WAIT,
    P_MAX_ACK,
    P_FETCH_WAIT,
    P_TIMEOUT,
    P_COMBINE
};

static const obs_param_desc gen_nats_params[] = {
    [P_URL] = {.name = "url",
               .type = OBS_PARAM_STRING,
               .default_value = "nats://127.0.0.1:4222",
               .min = 1,
               .max = 4096,
               .help = "NATS server URL (several: comma separated)"},
    [P_STREAM] = {.name = "stream",
                  .type = OBS_PARAM_STRING,
                  .default_value = NULL,
                  .min = 1,
                  .max = 255,
                  .help = "JetStream stream to read"},
    [P_SUBJECT] = {.name = "subject",
                   .type = OBS_PARAM_STRING,
                   .default_value = NULL,
                   .min = 1,
                   .max = 250,
                   .help = "subject the records were published to (the consumer's "
                           "filter); end-of-stream marks come on subject.eos"},
    [P_DURABLE] = {.name = "durable",
                   .type = OBS_PARAM_STRING,
                   .default_value = NULL,
                   .min = 1,
                   .max = 255,
                   .help = "durable pull consumer name; processes with the same "
                           "name share the records"},
    [P_PUBLISHERS] = {.name = "publishers",
                      .type = OBS_PARAM_INT,
                      .default_value = "1",
                      .min = 0,
                      .max = 100000,
                      .help = "end-of-stream marks (sink_nats instances upstream) to wait for "
                              "before ending; 0: run until hostd stops"},
    [P_ACK_WAIT] = {.name = "ack_wait",
                    .type = OBS_PARAM_DOUBLE,
                    .default_value = "30",
                    .min = 0.1,
                    .max = 86400,
                    .help = "seconds a message may stay unacknowledged before JetStream "
                            "delivers it again"},
    [P_MAX_ACK] = {.name = "max_ack_pending",
                   .type = OBS_PARAM_INT,
                   .default_value = "4096",
                   .min = 1,
                   .max = 10000000,
                   .help = "most unacknowledged messages of the consumer (all processes)"},
    [P_FETCH_WAIT] = {.name = "fetch_wait_ms",
                      .type = OBS_PARAM_INT,
                      .default_value = "100",
                      .min = 1,
                      .max = 1000,
                      .help = "longest wait for messages before returning an empty batch"},
    [P_TIMEOUT] = {.name = "timeout",
                   .type = OBS_PARAM_DOUBLE,
                   .default_value = "10",
                   .min = 0.1,
                   .max = 3600,
                   .help = "seconds a lost server may take before the stream fails"},
    [P_COMBINE] = {.name = "combine",
                   .type = OBS_PARAM_BOOL,
                   .default_value = "false",
                   .min = 1,
                   .max = 0,
                   .help = "let batch frames share a batch (fuller batches, but after a "
                           "restart records are grouped differently, so batch-framed ids "
                           "downstream no longer remove the copies)"},
};

/* Batches in flight at most (a power of two); more than any pipeline's
 * rings hold. */
#define TICKETS 1024u
/* Distinct end-of-stream marks remembered. */
#define MAX_EOS_IDS 65536u

/* A fetched message, from its fetch until it is acknowledged. */
typedef struct held {
    natsMsg *msg;
    uint32_t refs;        /* tickets holding its records + 1 while some are unemitted (mu) */
    uint32_t left;        /* records not emitted yet */
    int is_record;        /* record framing: `one` is the record */
    natsframe_reader rd;  /* batch framing: where the next record starts */
    natsframe_record one; /* record framing */
    struct held *next;    /* in the emit queue or the free list */
} held;

/* The messages whose records a batch (ticket) holds. */
typedef struct ticket_slot {
    uint64_t ticket;
    int used;
    held **msgs;
    uint32_t n, cap;
} ticket_slot;

typedef struct gen_nats {
    const obs_host *host;
    const char *url, *stream, *subject, *durable; /* borrowed from params */
    char eos_subject[260];
    uint32_t publishers, max_ack_pending;
    int combine; /* several messages per batch */
    int64_t fetch_wait_ms;
    uint64_t timeout_ns;
    natsConnection *nc;
    jsCtx *js;
    natspull pull;
    natsSubscription *eos_sub;
    int c_msgs, c_records, c_redel_msgs, c_redel_records, c_decode, c_eos, c_ack_err;

    /* Stage thread only. */
    held *q_head, *q_tail; /* fetched, records left to emit */
    held **scratch;        /* the batch being generated */
    uint32_t scratch_n, scratch_cap;
    double recs_per_msg; /* running estimate, sizes fetches */
    char **eos_ids;      /* distinct end-of-stream marks seen */
    uint32_t n_eos, eos_cap;
    uint64_t eos_records; /* records the marks announce */
    natslink_watch watch;
    natslink_ratelimit rl_decode;

    /* Shared with delivered(), under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sync_made;
    ticket_slot tickets[TICKETS];
    uint32_t tickets_used;
    held *free_list;
    uint64_t ack_errors; /* not yet added to the counter */
} gen_nats;

static uint64_t now_ns(const gen_nats *g)
{
    return g->host->now_ns();
}

static held *holder_get(gen_nats *g)
{
    pthread_mutex_lock(&g->mu);
    held *h = g->free_list;
    if (h)
        g->free_list = h->next;
    pthread_mutex_unlock(&g->mu);
    if (!h)
        h = g->host->alloc(g->host, sizeof *h);
    if (h)
        memset(h, 0, sizeof *h);
    return h;
}

/* Acknowledges and frees a message no batch holds any more (mu held). */
static void holder_done(gen_nats *g, held *h)
{
    if (natspull_ack(g->nc, h->msg) != NATS_OK)
        g->ack_errors++;
    natsMsg_Destroy(h->msg);
    h->msg = NULL;
    h->next = g->free_list;
    g->free_list = h;
}

/* The host's call: every record of `ticket` has left the pipeline. Any
 * thread. */
static void gen_nats_delivered(void *instance, uint64_t ticket)
{
    gen_nats *g = instance;
    pthread_mutex_lock(&g->mu);
    ticket_slot *ts = &g->tickets[ticket & (TICKETS - 1)];
    if (ts->used && ts->ticket == ticket) {
        for (uint32_t i = 0; i < ts->n; i++)
            if (--ts->msgs[i]->refs == 0)
                holder_done(g, ts->msgs[i]);
        ts->n = 0;
        ts->used = 0;
        g->tickets_used--;
        pthread_cond_broadcast(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
}

/* Waits (at most fetch_wait_ms) until the ticket's slot is free: its
 * previous batch, TICKETS tickets ago, must be delivered. Returns 1 when
 * it is. */
static int ticket_wait(gen_nats *g, ticket_slot *ts)
{
    struct timespec ts_end;
    clock_gettime(CLOCK_MONOTONIC, &ts_end);
    uint64_t ns = (uint64_t)ts_end.tv_nsec + (uint64_t)g->fetch_wait_ms * 1000000u;
    ts_end.tv_sec += (time_t)(ns / 1000000000u);
    ts_end.tv_nsec = (long)(ns % 1000000000u);
    pthread_mutex_lock(&g->mu);
    while (ts->used && pthread_cond_timedwait(&g->cv, &g->mu, &ts_end) == 0) {
    }
    int free = !ts->used;
    pthread_mutex_unlock(&g->mu);
    return free;
}

/* Hands the batch's messages to its ticket (each holds one more
 * reference; a message emitted to the end drops its emission reference). */
static void commit(gen_nats *g, ticket_slot *ts, uint64_t ticket)
{
    if (g->scratch_n == 0)
        return;
    pthread_mutex_lock(&g->mu);
    held **a = ts->msgs;
    uint32_t cap = ts->cap;
    ts->msgs = g->scratch;
    ts->cap = g->scratch_cap;
    ts->n = g->scratch_n;
    ts->ticket = ticket;
    ts->used = 1;
    g->tickets_used++;
    for (uint32_t i = 0; i < ts->n; i++) {
        held *h = ts->msgs[i];
        h->refs += h->left == 0 ? 0 : 1;
    }
    pthread_mutex_unlock(&g->mu);
    g->scratch = a;
    g->scratch_cap = cap;
    g->scratch_n = 0;
}

/* Remembers h for the batch being generated. Returns 0 or OBS_ENOMEM. */
static int scratch_add(gen_nats *g, held *h)
{
    if (g->scratch_n == g->scratch_cap) {
        uint32_t cap = g->scratch_cap ? 2 * g->scratch_cap : 64;
        held **a = g->host->realloc(g->host, g->scratch, cap * sizeof *a);
        if (!a)
            return OBS_ENOMEM;
        g->scratch = a;
        g->scratch_cap = cap;
    }
    g->scratch[g->scratch_n++] = h;
    return OBS_OK;
}

/* Emits up to `room` records of h into out. Returns how many; fewer when
 * the output arena is full. */
static uint32_t emit(gen_nats *g, held *h, obs_out *out, uint32_t room)
{
    uint32_t k = 0;
    int64_t off = g->host->wall_offset_ns;
    while (k < room && h->left) {
        natsframe_record r = h->one;
        natsframe_reader at = h->rd;
        if (!h->is_record && !natsframe_next(&h->rd, &r)) {
            h->left = 0; /* cannot happen: the frame was validated */
            break;
        }
        if (obs_out_emit(out, r.data, r.len, r.seq, natsframe_from_wall(r.wall_ns, off)) != 0) {
            h->rd = at;
            break;
        }
        obs_out_set_key(out, r.key);
        h->left--;
        k++;
    }
    return k;
}

/* Takes a fetched message: decodes it, counts it and queues it for
 * emission; a message that cannot be decoded is terminated. */
static void take(void *arg, natsMsg *m)
{
    gen_nats *g = arg;
    jsMsgMetaData *meta = NULL;
    char why[NATSFRAME_WHY_LEN];
    const char *seq = NULL, *tm = NULL, *key = NULL;
    held *h = holder_get(g);
    if (!h) {
        /* Left unacknowledged: JetStream delivers it again after ack_wait. */
        natslink_log_limited(g->host, &g->rl_decode, OBS_LOG_ERROR,
                             "gen_nats: out of memory for a fetched message");
        natsMsg_Destroy(m);
        return;
    }
    natsMsg_GetMetaData(&meta, m);
    const char *data = natsMsg_GetData(m);
    int len = natsMsg_GetDataLength(m);
    int rc;
    if (natsMsgHeader_Get(m, NATSFRAME_HDR_SEQ, &seq) == NATS_OK) {
        natsMsgHeader_Get(m, NATSFRAME_HDR_TIME, &tm);
        natsMsgHeader_Get(m, NATSFRAME_HDR_KEY, &key);
        rc = natsframe_record_from_headers(seq, tm, key, data, (size_t)len, &h->one, why,
                                           sizeof why);
        h->is_record = 1;
        h->left = 1;
    } else {
        rc = natsframe_open(&h->rd, data, (size_t)len, why, sizeof why);
        h->left = h->rd.n_records;
    }
    if (rc != OBS_OK) {
        g->host->counter_add(g->host, g->c_decode, 1);
        natslink_log_limited(g->host, &g->rl_decode, OBS_LOG_WARN,
                             "gen_nats: message %llu of stream '%s' (subject '%s') dropped: %s",
                             meta ? (unsigned long long)meta->Sequence.Stream : 0ull, g->stream,
                             natsMsg_GetSubject(m), why);
        natspull_term(g->nc, m);
        natsMsg_Destroy(m);
        jsMsgMetaData_Destroy(meta);
        pthread_mutex_lock(&g->mu);
        h->next = g->free_list;
        g->free_list = h;
        pthread_mutex_unlock(&g->mu);
        return;
    }
    h->msg = m;
    h->refs = 1; /* until its last record is emitted */
    g->host->counter_add(g->host, g->c_msgs, 1);
    g->host->counter_add(g->host, g->c_records, h->left);
    if (meta && meta->NumDelivered > 1) {
        g->host->counter_add(g->host, g->c_redel_msgs, 1);
        g->host->counter_add(g->host, g->c_redel_records, h->left);
    }
    jsMsgMetaData_Destroy(meta);
    g->recs_per_msg = 0.875 * g->recs_per_msg + 0.125 * h->left;
    if (g->q_tail)
        g->q_tail->next = h;
    else
        g->q_head = h;
    g->q_tail = h;
}

/* Fetches about enough messages for `room` records (a few when batch
 * frames take a batch each), waiting up to wait_ms when none is there (0:
 * only what has arrived). *empty: nothing came. Returns 0 or OBS_EIO. */
static int fetch(gen_nats *g, uint32_t room, int64_t wait_ms, int *empty)
{
    /* Batch frames one per batch: a few ahead are enough. */
    double per = g->recs_per_msg > 1 ? g->recs_per_msg : 1;
    double want = g->combine || per < 1.5 ? (double)room / per : 4;
    uint32_t n = want < 1 ? 1 : (uint32_t)(want + 0.999);
    if (n > g->max_ack_pending)
        n = g->max_ack_pending;
    uint32_t got;
    return natspull_fetch(&g->pull, n, wait_ms, take, g, &got, empty);
}

/* Reads the end-of-stream marks that have arrived. */
static void poll_eos(gen_nats *g)
{
    natsMsg *m = NULL;
    if (!g->eos_sub)
        return;
    while (natsSubscription_NextMsg(&m, g->eos_sub, 0) == NATS_OK) {
        const char *id = NULL, *n = NULL;
        uint64_t recs = 0;
        if (strcmp(natsMsg_GetSubject(m), g->eos_subject) == 0 &&
            natsMsgHeader_Get(m, NATSFRAME_HDR_MSG_ID, &id) == NATS_OK) {
            uint32_t i = 0;
            while (i < g->n_eos && strcmp(g->eos_ids[i], id) != 0)
                i++;
            if (i == g->n_eos && g->n_eos < MAX_EOS_IDS) {
                if (g->n_eos == g->eos_cap) {
                    uint32_t cap = g->eos_cap ? 2 * g->eos_cap : 8;
                    char **a = g->host->realloc(g->host, g->eos_ids, cap * sizeof *a);
                    if (a) {
                        g->eos_ids = a;
                        g->eos_cap = cap;
                    }
                }
                size_t len = strlen(id) + 1;
                char *copy = g->n_eos < g->eos_cap ? g->host->alloc(g->host, len) : NULL;
                if (copy) {
                    memcpy(copy, id, len);
                    g->eos_ids[g->n_eos++] = copy;
                    if (natsMsgHeader_Get(m, NATSFRAME_HDR_EOS_RECORDS, &n) == NATS_OK)
                        natsframe_parse_u64(n, UINT64_MAX, &recs);
                    g->eos_records += recs;
                    g->host->counter_add(g->host, g->c_eos, 1);
                    g->host->log(g->host, OBS_LOG_INFO,
                                 "gen_nats: end-of-stream mark %u of %u (%s, %llu records)",
                                 g->n_eos, g->publishers, id, (unsigned long long)recs);
                }
            }
        }
        natsMsg_Destroy(m);
        m = NULL;
    }
}

/* 1 when the stream has ended: enough marks, nothing queued or in
 * flight here, and the consumer has nothing pending or unacknowledged. */
static int stream_ended(gen_nats *g)
{
    if (!g->publishers || g->n_eos < g->publishers || g->q_head)
        return 0;
    pthread_mutex_lock(&g->mu);
    uint32_t busy = g->tickets_used;
    pthread_mutex_unlock(&g->mu);
    if (busy)
        return 0;
    int done = natspull_idle(&g->pull);
    if (done)
        g->host->log(g->host, OBS_LOG_INFO,
                     "gen_nats: end of stream: %u marks (%llu records announced), consumer '%s' "
                     "has nothing pending",
                     g->n_eos, (unsigned long long)g->eos_records, g->durable);
    return done;
}

static int gen_nats_generate(void *instance, const obs_gen_request *req, obs_out *out)
{
    gen_nats *g = instance;
    uint64_t now = now_ns(g);
    pthread_mutex_lock(&g->mu);
    uint64_t ack_errors = g->ack_errors;
    g->ack_errors = 0;
    pthread_mutex_unlock(&g->mu);
    if (ack_errors)
        g->host->counter_add(g->host, g->c_ack_err, ack_errors);
    uint64_t down = natslink_poll(g->host, "gen_nats", g->url, g->nc, &g->watch, now);
    if (down >= g->timeout_ns) {
        g->host->log(g->host, OBS_LOG_ERROR,
                     "gen_nats: the server %s has been unreachable for %.1f s (timeout %.1f s): "
                     "ending the stream",
                     g->url, (double)down / 1e9, (double)g->timeout_ns / 1e9);
        return OBS_EIO;
    }
    poll_eos(g);
    ticket_slot *ts = &g->tickets[req->ticket & (TICKETS - 1)];
    if (!ticket_wait(g, ts))
        return OBS_OK;

    uint32_t room = req->n_records, emitted = 0;
    int fetched = 0, empty = 0, rc = OBS_OK;
    for (;;) {
        /* A batch frame gets a batch of its own (with combine: whole
         * messages while they fit); record messages fill a batch. A
         * message larger than a batch is split, each part starting a
         * batch. So the records of a batch frame form the same batches in
         * a process restarted after a crash, and batch-framed message ids
         * downstream repeat. */
        while (g->q_head && emitted < room) {
            held *h = g->q_head;
            int alone = !g->combine && !h->is_record;
            if (emitted > 0 && (alone || h->left > room - emitted))
                goto done;
            if (scratch_add(g, h) != OBS_OK) {
                rc = OBS_ENOMEM;
                goto done;
            }
            uint32_t k = emit(g, h, out, room - emitted);
            if (k == 0) {
                g->scratch_n--;
                if (emitted == 0) {
                    g->host->log(g->host, OBS_LOG_ERROR,
                                 "gen_nats: a record does not fit the output arena "
                                 "(max_batch_bytes): ending the stream");
                    rc = OBS_ENOMEM;
                }
                goto done;
            }
            emitted += k;
            if (h->left)
                goto done; /* the batch or the arena is full */
            g->q_head = h->next;
            if (!g->q_head)
                g->q_tail = NULL;
            h->next = NULL;
            if (alone)
                goto done;
        }
        if (emitted == room || fetched)
            break;
        fetched = 1;
        if ((rc = fetch(g, room - emitted, emitted ? 0 : g->fetch_wait_ms, &empty)) != OBS_OK)
            break;
        if (empty)
            break;
    }
done:
    commit(g, ts, req->ticket);
    if (rc != OBS_OK)
        return rc;
    if (emitted == 0 && empty && stream_ended(g))
        return OBS_DONE;
    return OBS_OK;
}

static void gen_nats_fini(void *instance)
{
    gen_nats *g = instance;
    if (!g)
        return;
    const obs_host *host = g->host;
    if (g->eos_sub) {
        natsSubscription_Unsubscribe(g->eos_sub);
        natsSubscription_Destroy(g->eos_sub);
    }
    natspull_close(&g->pull);
    /* The last acknowledgments may still sit in the connection's buffer. */
    if (g->nc)
        natsConnection_FlushTimeout(g->nc, 1000);
    /* Messages not acknowledged are delivered again by JetStream. The
     * host delivers every ticket before fini, so normally only queued
     * messages are left; a holder is freed with its last reference. */
    for (held *h = g->q_head, *next; h; h = next) {
        next = h->next;
        if (--h->refs == 0) {
            natsMsg_Destroy(h->msg);
            host->free(host, h);
        }
    }
    for (uint32_t i = 0; i < TICKETS; i++) {
        ticket_slot *ts = &g->tickets[i];
        for (uint32_t k = 0; ts->used && k < ts->n; k++)
            if (--ts->msgs[k]->refs == 0) {
                natsMsg_Destroy(ts->msgs[k]->msg);
                host->free(host, ts->msgs[k]);
            }
        host->free(host, ts->msgs);
    }
    for (held *h = g->free_list, *next; h; h = next) {
        next = h->next;
        host->free(host, h);
    }
    if (g->js)
        jsCtx_Destroy(g->js);
    if (g->nc)
        natsConnection_Destroy(g->nc);
    for (uint32_t i = 0; i < g->n_eos; i++)
        host->free(host, g->eos_ids[i]);
    host->free(host, g->eos_ids);
    host->free(host, g->scratch);
    if (g->sync_made) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
    }
    host->free(host, g);
}

/* Every process reads every end-of-stream mark: its own ordered
 * (ephemeral, unacknowledged) consumer of subject.eos from the stream's
 * start. Returns 0 or OBS_EIO (logged). */
static int open_eos(gen_nats *g)
{
    char reason[NATSLINK_REASON_LEN];
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = g->stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    jsErrCode jerr = 0;
    natsStatus st = js_SubscribeSync(&g->eos_sub, g->js, g->eos_subject, NULL, &so, &jerr);
    if (st != NATS_OK) {
        g->host->log(g->host, OBS_LOG_ERROR,
                     "gen_nats: cannot read end-of-stream marks on '%s' of stream '%s' at %s: %s",
                     g->eos_subject, g->stream, g->url, natslink_reason(st, reason, sizeof reason));
        g->eos_sub = NULL;
        return OBS_EIO;
    }
    return OBS_OK;
}

/* Finds the stream and checks it takes the subjects. Returns 0 or an
 * error (logged with what to do). */
static int check_stream(gen_nats *g)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    char reason[NATSLINK_REASON_LEN], subjects[512];
    natsStatus st = js_GetStreamInfo(&si, g->js, g->stream, NULL, &jerr);
    if (st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        g->host->log(g->host, OBS_LOG_ERROR,
                     "gen_nats: stream '%s' does not exist on %s: start the upstream process "
                     "(sink_nats with create_stream: true) first, or create the stream with "
                     "subjects '%s' and '%s'",
                     g->stream, g->url, g->subject, g->eos_subject);
        return OBS_ECONFIG;
    }
    if (st != NATS_OK) {
        g->host->log(g->host, OBS_LOG_ERROR, "gen_nats: cannot read stream '%s' on %s: %s%s",
                     g->stream, g->url, natslink_reason(st, reason, sizeof reason),
                     st == NATS_NO_RESPONDERS || st == NATS_TIMEOUT
                         ? " (is JetStream enabled on the server? nats-server -js)"
                         : "");
        return OBS_EIO;
    }
    int rc = OBS_OK;
    const char *missing = !natslink_stream_takes(si, g->subject) ? g->subject
                          : g->publishers && !natslink_stream_takes(si, g->eos_subject)
                              ? g->eos_subject
                              : NULL;
    if (missing) {
        g->host->log(g->host, OBS_LOG_ERROR,
                     "gen_nats: stream '%s' on %s does not take subject '%s' (its subjects: "
                     "%s)%s",
                     g->stream, g->url, missing,
                     natslink_stream_subjects(si, subjects, sizeof subjects),
                     missing == g->eos_subject ? ": add it, or set publishers: 0" : "");
        rc = OBS_ECONFIG;
    }
    jsStreamInfo_Destroy(si);
    return rc;
}

/* Checks the parameters, connects, finds the stream and binds the
 * consumers. The instance owns the connection until fini. */
static int gen_nats_init(const obs_host *host, const obs_params *params, void **instance)
{
    if (host->struct_size < OBS_HOST_SIZE_1_2) {
        host->log(host, OBS_LOG_ERROR,
                  "gen_nats: this host does not offer the ABI 1.2 services (source generators, "
                  "wall_offset_ns) it needs; use a hostd with plugin ABI 1.2 or later");
        return OBS_EABI;
    }
    const obs_param_value *v = params->values;
    const int names[] = {P_STREAM, P_DURABLE, P_SUBJECT};
    for (size_t i = 0; i < 3; i++) {
        const char *x = v[names[i]].s;
        if (names[i] == P_SUBJECT ? !natslink_subject_literal(x) : !natslink_name_ok(x)) {
            host->log(host, OBS_LOG_ERROR,
                      "gen_nats: %s '%s' is not valid: names have no '.', '*', '>', '/' or "
                      "spaces; a subject is dot-separated tokens without wildcards or spaces",
                      v[names[i]].name, x);
            return OBS_EINVAL;
        }
    }
    gen_nats *g = host->alloc(host, sizeof *g);
    if (!g)
        return OBS_ENOMEM;
    memset(g, 0, sizeof *g);
    g->host = host;
    g->url = v[P_URL].s;
    g->stream = v[P_STREAM].s;
    g->subject = v[P_SUBJECT].s;
    g->durable = v[P_DURABLE].s;
    snprintf(g->eos_subject, sizeof g->eos_subject, "%s.eos", g->subject);
    g->publishers = (uint32_t)v[P_PUBLISHERS].i;
    g->max_ack_pending = (uint32_t)v[P_MAX_ACK].i;
    g->fetch_wait_ms = v[P_FETCH_WAIT].i;
    g->combine = v[P_COMBINE].i != 0;
    g->timeout_ns = (uint64_t)(v[P_TIMEOUT].d * 1e9);
    g->recs_per_msg = 1;
    int rc = OBS_ENOMEM;

    if (natslink_sync_init(&g->mu, &g->cv) != 0)
        goto fail;
    g->sync_made = 1;

    struct {
        int *id;
        const char *name;
        int kind;
        const char *help;
    } counters[] = {
        {&g->c_msgs, "received_msgs", OBS_COUNTER_PLAIN, "messages fetched and decoded"},
        {&g->c_records, "received_records", OBS_COUNTER_PLAIN, "records in those messages"},
        {&g->c_redel_msgs, "redelivered_msgs", OBS_COUNTER_PLAIN,
         "messages JetStream delivered more than once (not acknowledged in time)"},
        {&g->c_redel_records, "redelivered_records", OBS_COUNTER_PLAIN,
         "records in redelivered messages"},
        {&g->c_decode, "decode_errors", OBS_COUNTER_ERROR,
         "messages that were not a valid frame or record (terminated)"},
        {&g->c_eos, "eos_marks", OBS_COUNTER_PLAIN, "distinct end-of-stream marks seen"},
        {&g->c_ack_err, "ack_errors", OBS_COUNTER_ERROR,
         "acknowledgments that could not be sent (the messages come again)"},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        *counters[i].id =
            host->counter_register(host, counters[i].name, counters[i].kind, counters[i].help);
        if (*counters[i].id < 0) {
            rc = *counters[i].id;
            goto fail;
        }
    }
    rc = natslink_connect(host, "gen_nats", g->url, (int64_t)(g->timeout_ns / 1000000u), NULL,
                          &g->nc, &g->js);
    if (rc != OBS_OK)
        goto fail;
    if ((rc = check_stream(g)) != OBS_OK)
        goto fail;
    rc = natspull_open(&g->pull, host, g->nc, g->js, g->url, g->stream, g->subject, g->durable,
                       v[P_ACK_WAIT].d, v[P_MAX_ACK].i, g->timeout_ns);
    if (rc != OBS_OK || (g->publishers && (rc = open_eos(g)) != OBS_OK))
        goto fail;
    host->log(host, OBS_LOG_INFO,
              "gen_nats: reading '%s' of stream '%s' on %s through consumer '%s'%s", g->subject,
              g->stream, g->url, g->durable,
              g->publishers ? "" : " until hostd stops (publishers: 0)");
    *instance = g;
    return OBS_OK;

fail:
    gen_nats_fini(g);
    return rc;
}

static const obs_stage_desc gen_nats_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_GENERATOR,
    .name = "gen_nats",
    .version = "1.0.0",
    .description = "source: reads the records sink_nats published to a NATS JetStream stream",
    .params = gen_nats_params,
    .n_params = sizeof gen_nats_params / sizeof gen_nats_params[0],
    .init = gen_nats_init,
    .generate = gen_nats_generate,
    .fini = gen_nats_fini,
    .flags = OBS_STAGE_SOURCE,
    .delivered = gen_nats_delivered,
};

OBS_DECLARE_STAGE(gen_nats_desc)
