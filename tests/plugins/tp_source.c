/*
 * tp_source.c - a source generator (OBS_STAGE_SOURCE, ABI 1.2) for the
 * engine's source tests: records "arrive from outside" with their own seq
 * (first_seq + i) and an intended time `age_ms` in the past, in batches of
 * a varying size (sometimes none, as when nothing has arrived), until
 * `count` records have been emitted (then OBS_DONE). It counts the tickets
 * it was given and every delivered() call: a ticket delivered twice or
 * never given is counted apart. The test reads the counts through
 * tp_source_stats (exported for tests only, found with dlsym).
 */
#include <observatory/stage.h>

#include <stdatomic.h>
#include <stdlib.h>

enum { P_COUNT, P_FIRST, P_AGE_MS };

static const obs_param_desc src_params[] = {
    [P_COUNT] = {.name = "count", .type = OBS_PARAM_INT, .default_value = "100000", .min = 0,
                 .max = 1e12, .help = "records to emit before the end of the stream"},
    [P_FIRST] = {.name = "first_seq", .type = OBS_PARAM_INT, .default_value = "0", .min = 0,
                 .max = 1e15, .help = "seq of the first record"},
    [P_AGE_MS] = {.name = "age_ms", .type = OBS_PARAM_INT, .default_value = "5", .min = 0,
                  .max = 1e6, .help = "how far in the past each record's intended time lies"},
};

#define MAX_TICKETS (1u << 20)

/* One source per process in the tests: the counts are process-wide. */
static _Atomic uint64_t n_tickets, n_delivered, n_dup, n_unknown, n_records, n_delivered_full;
/* Per ticket: 0 never given, 1 given without records, 2 given with
 * records, 3 delivered. */
static _Atomic uint8_t *ticket_seen;

/* [0] tickets given, [1] delivered() calls, [2] tickets delivered twice,
 * [3] tickets never given, [4] records emitted, [5] delivered() calls for
 * tickets that had records. */
__attribute__((visibility("default"))) void tp_source_stats(uint64_t out[6])
{
    out[0] = atomic_load(&n_tickets);
    out[1] = atomic_load(&n_delivered);
    out[2] = atomic_load(&n_dup);
    out[3] = atomic_load(&n_unknown);
    out[4] = atomic_load(&n_records);
    out[5] = atomic_load(&n_delivered_full);
}

typedef struct src {
    const obs_host *host;
    uint64_t count, next, age_ns, rng;
} src;

static int src_init(const obs_host *host, const obs_params *params, void **instance)
{
    if (host->struct_size < OBS_HOST_SIZE_1_2)
        return OBS_EABI;
    src *s = host->alloc(host, sizeof *s);
    if (!s)
        return OBS_ENOMEM;
    s->host = host;
    s->count = (uint64_t)params->values[P_COUNT].i;
    s->next = (uint64_t)params->values[P_FIRST].i;
    s->count += s->next;
    s->age_ns = (uint64_t)params->values[P_AGE_MS].i * 1000000u;
    s->rng = host->seed | 1;
    free((void *)ticket_seen);
    ticket_seen = calloc(MAX_TICKETS, 1);
    atomic_store(&n_tickets, 0);
    atomic_store(&n_delivered, 0);
    atomic_store(&n_dup, 0);
    atomic_store(&n_unknown, 0);
    atomic_store(&n_records, 0);
    atomic_store(&n_delivered_full, 0);
    *instance = s;
    return ticket_seen ? OBS_OK : OBS_ENOMEM;
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int src_generate(void *instance, const obs_gen_request *req, obs_out *out)
{
    src *s = instance;
    if (req->t_intended_ns || req->first_seq || !req->ticket)
        return OBS_EINVAL; /* not asked the way a source is */
    atomic_fetch_add(&n_tickets, 1);
    /* 1 in 8 calls: nothing has arrived. */
    uint64_t r = xorshift(&s->rng);
    uint32_t n = (r & 7) == 0 ? 0 : 1 + (uint32_t)((r >> 8) % req->n_records);
    uint64_t now = s->host->now_ns();
    for (uint32_t i = 0; i < n && s->next < s->count; i++, s->next++) {
        uint64_t v = s->next;
        int rc = obs_out_emit(out, &v, sizeof v, s->next, now > s->age_ns ? now - s->age_ns : 0);
        if (rc)
            return rc;
        obs_out_set_key(out, obs_key_hash(&(uint32_t){(uint32_t)(v % 13)}, 4));
        atomic_fetch_add(&n_records, 1);
    }
    if (req->ticket < MAX_TICKETS)
        ticket_seen[req->ticket] = out->n_records ? 2 : 1;
    return s->next < s->count ? OBS_OK : OBS_DONE;
}

static void src_delivered(void *instance, uint64_t ticket)
{
    (void)instance;
    atomic_fetch_add(&n_delivered, 1);
    uint8_t was = ticket < MAX_TICKETS ? atomic_exchange(&ticket_seen[ticket], 3) : 0;
    if (was == 0)
        atomic_fetch_add(&n_unknown, 1);
    else if (was == 3)
        atomic_fetch_add(&n_dup, 1);
    else if (was == 2)
        atomic_fetch_add(&n_delivered_full, 1);
}

static void src_fini(void *instance)
{
    src *s = instance;
    s->host->free(s->host, s);
}

static const obs_stage_desc desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_GENERATOR,
    .name = "tp_source",
    .version = "1.0.0",
    .description = "a source generator for the engine tests: own seq and intended times",
    .params = src_params,
    .n_params = sizeof src_params / sizeof src_params[0],
    .init = src_init,
    .generate = src_generate,
    .fini = src_fini,
    .flags = OBS_STAGE_SOURCE,
    .delivered = src_delivered,
};

OBS_DECLARE_STAGE(desc)
