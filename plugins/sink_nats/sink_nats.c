/*
 * sink_nats - a sink that publishes the records it consumes into a NATS
 * JetStream stream, where gen_nats in another hostd reads them.
 *
 * Framing (plugins/common/natsframe.h): "batch" publishes one message per
 * batch (split when a batch exceeds the server's max_payload), "record" one
 * per record. Every message carries a Nats-Msg-Id derived from its records'
 * seqs, so a copy published again within the stream's duplicate window is
 * dropped by JetStream (its acknowledgment says so: duplicate_msgs).
 *
 * Publishing is asynchronous with at most `max_pending` messages awaiting
 * the server's acknowledgment (pubqueue.c). Each message lives in a slot with the
 * host->hold() token of the batch it came from; the token is released when
 * the acknowledgment arrives (on a libnats thread) or when the message has
 * failed for good, so a source upstream acks its own input only once the
 * records are stored. A refused publish, a negative acknowledgment or one
 * that does not come within a quarter of `timeout` is retried with backoff
 * until `timeout` after the first attempt; then the message counts on
 * publish_errors, consume/flush return OBS_EIO and the log names the
 * server and the reason. Waiting for a free slot is the stage's blocked
 * time. flush() waits for every acknowledgment and then publishes the
 * end-of-stream mark (subject + ".eos", header Obs-EOS-Records) that
 * gen_nats counts to know its upstream has finished.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include <observatory/stage.h>

#include "natsframe.h"
#include "natslink.h"
#include "pubqueue.h"

enum { P_URL, P_STREAM, P_SUBJECT, P_CREATE, P_STORAGE, P_DUPWIN, P_FRAMING, P_PENDING, P_TIMEOUT };

static const obs_param_desc sink_nats_params[] = {
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
                  .help = "JetStream stream to publish into"},
    [P_SUBJECT] = {.name = "subject",
                   .type = OBS_PARAM_STRING,
                   .default_value = NULL,
                   .min = 1,
                   .max = 250,
                   .help = "subject to publish to; the end-of-stream mark goes to "
                           "subject.eos"},
    [P_CREATE] = {.name = "create_stream",
                  .type = OBS_PARAM_BOOL,
                  .default_value = "false",
                  .min = 1,
                  .max = 0,
                  .help = "create the stream (subjects: subject, subject.eos) if it is missing"},
    [P_STORAGE] = {.name = "storage",
                   .type = OBS_PARAM_STRING,
                   .default_value = "file",
                   .min = 1,
                   .max = 8,
                   .help = "storage of a created stream: file or memory"},
    [P_DUPWIN] = {.name = "duplicate_window",
                  .type = OBS_PARAM_DOUBLE,
                  .default_value = "120",
                  .min = 0.1,
                  .max = 2592000,
                  .help = "duplicate window of a created stream, seconds"},
    [P_FRAMING] = {.name = "framing",
                   .type = OBS_PARAM_STRING,
                   .default_value = "batch",
                   .min = 1,
                   .max = 8,
                   .help = "batch (one message per batch) or record (one message per record)"},
    [P_PENDING] = {.name = "max_pending",
                   .type = OBS_PARAM_INT,
                   .default_value = "64",
                   .min = 1,
                   .max = 65536,
                   .help = "most published messages awaiting acknowledgment"},
    [P_TIMEOUT] = {.name = "timeout",
                   .type = OBS_PARAM_DOUBLE,
                   .default_value = "10",
                   .min = 0.1,
                   .max = 3600,
                   .help = "seconds a stalled publish or a lost server may take before "
                           "consume fails"},
};

/* Room left in max_payload for the headers of a batch message. */
#define HEADER_ROOM 256
#define MAX_EOS_ATTEMPTS 8

typedef struct sink_nats {
    pubqueue q; /* first: its address is the acknowledgment handler's closure */
    const obs_host *host;
    const char *url, *stream, *subject; /* borrowed from params until fini */
    char eos_subject[260];
    char producer[200];
    int record_framing;
    size_t frame_limit;
    uint8_t *buf;
    size_t buf_cap;
} sink_nats;

static uint64_t now_ns(const sink_nats *s)
{
    return s->host->now_ns();
}

/* A message to `subject` with data[0 .. len) and the id header, or NULL
 * when out of memory. The caller owns it. */
static natsMsg *make_msg(const char *subject, const void *data, size_t len, const char *id)
{
    natsMsg *m = NULL;
    if (natsMsg_Create(&m, subject, NULL, (const char *)data, (int)len) != NATS_OK)
        return NULL;
    if (natsMsgHeader_Set(m, NATSFRAME_HDR_MSG_ID, id) != NATS_OK) {
        natsMsg_Destroy(m);
        return NULL;
    }
    return m;
}

/* Framing "record": one message per record, the numbers in headers. */
static int publish_records(sink_nats *s, const obs_batch *in)
{
    int rc = OBS_OK;
    for (uint32_t i = 0; i < in->n_records; i++) {
        const obs_record *r = &in->records[i];
        char id[NATSFRAME_NUM_LEN], t[NATSFRAME_NUM_LEN], k[NATSFRAME_NUM_LEN];
        if (r->len > s->frame_limit) {
            rc = pubqueue_refuse(&s->q, 1, 1, "record longer than the server's max_payload");
            continue;
        }
        int64_t wall = natsframe_to_wall(r->t_intended_ns, s->host->wall_offset_ns);
        natsMsg *m = make_msg(s->subject, r->data, r->len, natsframe_fmt_u64(id, r->seq));
        if (!m || natsMsgHeader_Set(m, NATSFRAME_HDR_SEQ, id) != NATS_OK ||
            natsMsgHeader_Set(m, NATSFRAME_HDR_TIME, natsframe_fmt_i64(t, wall)) != NATS_OK ||
            natsMsgHeader_Set(m, NATSFRAME_HDR_KEY, natsframe_fmt_u64(k, r->key)) != NATS_OK) {
            natsMsg_Destroy(m);
            rc = pubqueue_refuse(&s->q, 1, 1, "out of memory for the message");
            continue;
        }
        if (pubqueue_publish(&s->q, m, 1) != OBS_OK)
            rc = OBS_EIO;
    }
    return rc;
}

/* Framing "batch": one frame per batch, or per run of records that fits
 * the server's max_payload. */
static int publish_batch(sink_nats *s, const obs_batch *in)
{
    int rc = OBS_OK;
    const obs_record *rec = in->records;
    for (uint32_t start = 0, k; start < in->n_records; start += k) {
        size_t size = NATSFRAME_HEADER_LEN;
        for (k = 0; start + k < in->n_records; k++) {
            size_t one = NATSFRAME_RECORD_HEADER_LEN + (size_t)rec[start + k].len;
            if (k > 0 && size + one > s->frame_limit)
                break;
            size += one;
        }
        if (size > s->frame_limit) {
            rc = pubqueue_refuse(&s->q, 1, k, "record longer than the server's max_payload");
            continue;
        }
        if (size > s->buf_cap) {
            uint8_t *b = s->host->realloc(s->host, s->buf, size);
            if (!b) {
                rc = pubqueue_refuse(&s->q, 1, k, "out of memory for the frame");
                continue;
            }
            s->buf = b;
            s->buf_cap = size;
        }
        char id[NATSFRAME_ID_LEN];
        size_t len = natsframe_encode(s->buf, s->buf_cap, rec + start, k, s->host->wall_offset_ns);
        natsMsg *m =
            len ? make_msg(s->subject, s->buf, len, natsframe_batch_id(id, rec + start, k)) : NULL;
        if (!m) {
            rc = pubqueue_refuse(&s->q, 1, k, "out of memory for the message");
            continue;
        }
        if (pubqueue_publish(&s->q, m, k) != OBS_OK)
            rc = OBS_EIO;
    }
    return rc;
}

/* Publishes the batch. Returns 0 or OBS_EIO (logged) when records of this
 * batch or of an earlier one could not be stored. */
static int sink_nats_consume(void *instance, const obs_batch *in)
{
    sink_nats *s = instance;
    int rc = pubqueue_pump(&s->q, 0);
    if (in->n_records == 0)
        return rc;
    if (pubqueue_server_lost(&s->q)) {
        char why[128];
        snprintf(why, sizeof why, "the server has been unreachable for %.1f s",
                 (double)(now_ns(s) - s->q.watch.down_since_ns) / 1e9);
        return pubqueue_refuse(&s->q, s->record_framing ? in->n_records : 1, in->n_records, why);
    }
    int prc = s->record_framing ? publish_records(s, in) : publish_batch(s, in);
    return prc != OBS_OK ? prc : rc;
}

/* Publishes the end-of-stream mark synchronously, retried within the
 * timeout. Returns 0 or OBS_EIO (logged). */
static int publish_eos(sink_nats *s)
{
    char id[sizeof s->producer + 8], n[NATSFRAME_NUM_LEN], reason[NATSLINK_REASON_LEN];
    snprintf(id, sizeof id, "eos-%s", s->producer);
    natsMsg *m = make_msg(s->eos_subject, NULL, 0, id);
    if (!m || natsMsgHeader_Set(m, NATSFRAME_HDR_EOS_RECORDS,
                                natsframe_fmt_u64(n, s->q.published_records)) != NATS_OK) {
        natsMsg_Destroy(m);
        return pubqueue_refuse(&s->q, 1, 0, "out of memory for the end-of-stream mark");
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = (int64_t)(s->q.attempt_wait_ns / 1000000u);
    uint64_t deadline = now_ns(s) + s->q.timeout_ns;
    natsStatus st = NATS_ERR;
    for (uint32_t attempt = 0; attempt < MAX_EOS_ATTEMPTS; attempt++) {
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        st = js_PublishMsg(&pa, s->q.js, m, &po, &jerr);
        jsPubAck_Destroy(pa);
        if (st != NATS_OK)
            natslink_reason(st, reason, sizeof reason);
        if (st == NATS_OK || now_ns(s) + pubqueue_backoff_ns(attempt) >= deadline)
            break;
        natslink_sleep_ns(pubqueue_backoff_ns(attempt));
    }
    natsMsg_Destroy(m);
    if (st != NATS_OK) {
        s->host->counter_add(s->host, s->q.c_errors, 1);
        s->host->log(s->host, OBS_LOG_ERROR,
                     "sink_nats: end-of-stream mark to '%s' (stream '%s' on %s) failed: %s",
                     s->eos_subject, s->stream, s->url, reason);
        return OBS_EIO;
    }
    s->host->log(s->host, OBS_LOG_INFO,
                 "sink_nats: end of stream: %llu records published to '%s' (stream '%s' on %s), "
                 "mark %s sent",
                 (unsigned long long)s->q.published_records, s->subject, s->stream, s->url, id);
    return OBS_OK;
}

/* Waits for every acknowledgment (bounded by the timeout), then marks the
 * end of this producer's stream. No mark when records were lost: readers
 * must not take the stream for complete. */
static int sink_nats_flush(void *instance, obs_out *out)
{
    (void)out;
    sink_nats *s = instance;
    int rc = pubqueue_drain(&s->q);
    if (rc == OBS_OK && s->q.lost_records == 0)
        return publish_eos(s);
    s->host->log(s->host, OBS_LOG_ERROR,
                 "sink_nats: %llu records were not stored in stream '%s' on %s: no end-of-stream "
                 "mark sent, so readers do not take the stream for complete",
                 (unsigned long long)s->q.lost_records, s->stream, s->url);
    return OBS_EIO;
}

/* Hot swap: the new instance continues this producer's stream. The old
 * one waits for its acknowledgments and hands over its producer id and its
 * count, so the stream gets one end-of-stream mark, at the real end (a swap
 * without a handover would flush, and a mark in the middle of the run would
 * tell readers the stream had ended). */
static int sink_nats_export(void *instance, void **buf, size_t *len)
{
    sink_nats *s = instance;
    int rc = pubqueue_drain(&s->q);
    if (rc != OBS_OK)
        return OBS_ESTATE; /* the host flushes instead, and says so */
    size_t n = strlen(s->producer) + 1;
    uint8_t *b = s->host->alloc(s->host, n + 16);
    if (!b)
        return OBS_ENOMEM;
    memcpy(b, s->producer, n);
    uint64_t counts[2] = {s->q.published_records, s->q.lost_records};
    memcpy(b + n, counts, sizeof counts);
    *buf = b;
    *len = n + sizeof counts;
    return OBS_OK;
}

static int sink_nats_import(void *instance, const void *buf, size_t len)
{
    sink_nats *s = instance;
    const char *p = buf;
    size_t n = len >= 17 ? strnlen(p, len - 16) : len;
    if (len < 17 || n + 1 + 16 != len || n >= sizeof s->producer)
        return OBS_ESTATE;
    memcpy(s->producer, p, n + 1);
    uint64_t counts[2];
    memcpy(counts, p + n + 1, sizeof counts);
    s->q.published_records += counts[0];
    s->q.lost_records += counts[1];
    return OBS_OK;
}

static void sink_nats_fini(void *instance)
{
    sink_nats *s = instance;
    if (!s)
        return;
    int busy = pubqueue_close(&s->q);
    if (s->q.js)
        jsCtx_Destroy(s->q.js);
    if (s->q.nc)
        natsConnection_Destroy(s->q.nc);
    if (busy) {
        /* Better a leak than a handler writing into freed memory. */
        s->host->log(s->host, OBS_LOG_WARN,
                     "sink_nats: acknowledgments still being handled at "
                     "the end; instance left allocated");
        return;
    }
    pubqueue_free(&s->q);
    s->host->free(s->host, s->buf);
    s->host->free(s->host, s);
}

/* Finds the stream, or creates it when asked to. Returns 0 or an error
 * (logged with what to do). */
static int check_stream(sink_nats *s, const obs_params *params)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    char reason[NATSLINK_REASON_LEN], subjects[512];
    natsStatus st = js_GetStreamInfo(&si, s->q.js, s->stream, NULL, &jerr);
    if (st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        if (!params->values[P_CREATE].i) {
            s->host->log(s->host, OBS_LOG_ERROR,
                         "sink_nats: stream '%s' does not exist on %s: create it (subjects '%s' "
                         "and '%s'), or set create_stream: true",
                         s->stream, s->url, s->subject, s->eos_subject);
            return OBS_ECONFIG;
        }
        jsStreamConfig cfg;
        jsStreamConfig_Init(&cfg);
        const char *subj[2] = {s->subject, s->eos_subject};
        cfg.Name = s->stream;
        cfg.Subjects = subj;
        cfg.SubjectsLen = 2;
        cfg.Storage =
            strcmp(params->values[P_STORAGE].s, "memory") == 0 ? js_MemoryStorage : js_FileStorage;
        cfg.Duplicates = (int64_t)(params->values[P_DUPWIN].d * 1e9);
        jerr = 0;
        st = js_AddStream(&si, s->q.js, &cfg, NULL, &jerr);
        if (st != NATS_OK) {
            s->host->log(s->host, OBS_LOG_ERROR,
                         "sink_nats: cannot create stream '%s' on %s: %s (JetStream error %d)",
                         s->stream, s->url, natslink_reason(st, reason, sizeof reason), (int)jerr);
            return OBS_EIO;
        }
        s->host->log(s->host, OBS_LOG_INFO,
                     "sink_nats: created stream '%s' on %s (subjects %s, %s; %s storage; "
                     "duplicate window %g s)",
                     s->stream, s->url, s->subject, s->eos_subject, params->values[P_STORAGE].s,
                     params->values[P_DUPWIN].d);
    } else if (st != NATS_OK) {
        s->host->log(s->host, OBS_LOG_ERROR, "sink_nats: cannot read stream '%s' on %s: %s%s",
                     s->stream, s->url, natslink_reason(st, reason, sizeof reason),
                     st == NATS_NO_RESPONDERS || st == NATS_TIMEOUT
                         ? " (is JetStream enabled on the server? nats-server -js)"
                         : "");
        return OBS_EIO;
    }
    int rc = OBS_OK;
    const char *missing = !natslink_stream_takes(si, s->subject)       ? s->subject
                          : !natslink_stream_takes(si, s->eos_subject) ? s->eos_subject
                                                                       : NULL;
    if (missing) {
        s->host->log(s->host, OBS_LOG_ERROR,
                     "sink_nats: stream '%s' on %s does not take subject '%s' (its subjects: "
                     "%s): add it to the stream",
                     s->stream, s->url, missing,
                     natslink_stream_subjects(si, subjects, sizeof subjects));
        rc = OBS_ECONFIG;
    }
    jsStreamInfo_Destroy(si);
    return rc;
}

/* Names this instance's end-of-stream mark: host, pid, stage and a random
 * number, so that no two sink_nats instances anywhere share one. */
static void make_producer(sink_nats *s)
{
    char hn[64] = "host";
    uint64_t r = 0;
    gethostname(hn, sizeof hn - 1);
    hn[sizeof hn - 1] = '\0';
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = now_ns(s) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
    snprintf(s->producer, sizeof s->producer, "%s-%ld-%s-%016llx", hn, (long)getpid(),
             s->host->stage_name, (unsigned long long)r);
}

/* Checks the parameters, connects, finds (or creates) the stream. The
 * instance owns the connection until fini. */
static int sink_nats_init(const obs_host *host, const obs_params *params, void **instance)
{
    if (host->struct_size < OBS_HOST_SIZE_1_2) {
        host->log(host, OBS_LOG_ERROR,
                  "sink_nats: this host does not offer the ABI 1.2 services (hold, release, "
                  "wall_offset_ns) it needs; use a hostd with plugin ABI 1.2 or later");
        return OBS_EABI;
    }
    const obs_param_value *v = params->values;
    const char *framing = v[P_FRAMING].s, *storage = v[P_STORAGE].s;
    if (!natslink_name_ok(v[P_STREAM].s)) {
        host->log(host, OBS_LOG_ERROR,
                  "sink_nats: stream '%s': a stream name has no '.', '*', '>', '/' or spaces",
                  v[P_STREAM].s);
        return OBS_EINVAL;
    }
    if (!natslink_subject_literal(v[P_SUBJECT].s)) {
        host->log(host, OBS_LOG_ERROR,
                  "sink_nats: subject '%s': expected dot-separated tokens without wildcards or "
                  "spaces",
                  v[P_SUBJECT].s);
        return OBS_EINVAL;
    }
    if (strcmp(framing, "batch") != 0 && strcmp(framing, "record") != 0) {
        host->log(host, OBS_LOG_ERROR, "sink_nats: framing '%s': expected batch or record",
                  framing);
        return OBS_EINVAL;
    }
    if (strcmp(storage, "file") != 0 && strcmp(storage, "memory") != 0) {
        host->log(host, OBS_LOG_ERROR, "sink_nats: storage '%s': expected file or memory", storage);
        return OBS_EINVAL;
    }
    sink_nats *s = host->alloc(host, sizeof *s);
    if (!s)
        return OBS_ENOMEM;
    memset(s, 0, sizeof *s);
    s->host = host;
    s->url = s->q.url = v[P_URL].s;
    s->stream = s->q.stream = v[P_STREAM].s;
    s->subject = s->q.subject = v[P_SUBJECT].s;
    snprintf(s->eos_subject, sizeof s->eos_subject, "%s.eos", s->subject);
    s->record_framing = strcmp(framing, "record") == 0;
    int rc = pubqueue_init(&s->q, host, (uint32_t)v[P_PENDING].i, (uint64_t)(v[P_TIMEOUT].d * 1e9));
    if (rc != OBS_OK)
        goto fail;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = (int64_t)(s->q.timeout_ns / 1000000u);
    jo.PublishAsync.AckHandler = pubqueue_on_ack;
    jo.PublishAsync.AckHandlerClosure = &s->q;
    rc = natslink_connect(host, "sink_nats", s->url, jo.Wait, &jo, &s->q.nc, &s->q.js);
    if (rc != OBS_OK)
        goto fail;
    if ((rc = check_stream(s, params)) != OBS_OK)
        goto fail;
    int64_t max_payload = natsConnection_GetMaxPayload(s->q.nc);
    s->frame_limit = max_payload > 2 * HEADER_ROOM ? (size_t)max_payload - HEADER_ROOM : 1024;
    make_producer(s);
    host->log(host, OBS_LOG_INFO,
              "sink_nats: publishing to '%s' (stream '%s' on %s), %s framing, at most %u "
              "unacknowledged",
              s->subject, s->stream, s->url, framing, s->q.max_pending);
    *instance = s;
    return OBS_OK;

fail:
    sink_nats_fini(s);
    return rc;
}

static const obs_stage_desc sink_nats_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_SINK,
    .name = "sink_nats",
    .version = "1.0.0",
    .description = "publishes batches into a NATS JetStream stream (read by gen_nats)",
    .params = sink_nats_params,
    .n_params = sizeof sink_nats_params / sizeof sink_nats_params[0],
    .init = sink_nats_init,
    .consume = sink_nats_consume,
    .flush = sink_nats_flush,
    .fini = sink_nats_fini,
    .export_state = sink_nats_export,
    .import_state = sink_nats_import,
};

OBS_DECLARE_STAGE(sink_nats_desc)
