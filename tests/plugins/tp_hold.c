/*
 * tp_hold.c - a sink that makes its records "durable" late, as a sink
 * publishing asynchronously does: it takes host->hold() for every batch it
 * consumes and releases the tokens `lag` batches later (lag 0: at flush,
 * all of them), so a source upstream must not hear of their delivery
 * before. Counts records (counter hold_records).
 */
#include <observatory/stage.h>

enum { P_LAG };

static const obs_param_desc hold_params[] = {
    [P_LAG] = {.name = "lag", .type = OBS_PARAM_INT, .default_value = "0", .min = 0, .max = 4096,
               .help = "release a batch's token this many batches later (0: at flush)"},
};

#define HOLD_MAX 65536u

typedef struct hold {
    const obs_host *host;
    uint32_t lag;
    int c_records;
    uint64_t *tokens; /* ring of held tokens */
    uint64_t head, tail;
} hold;

static int hold_init(const obs_host *host, const obs_params *params, void **instance)
{
    if (host->struct_size < OBS_HOST_SIZE_1_2)
        return OBS_EABI;
    hold *h = host->alloc(host, sizeof *h);
    if (!h)
        return OBS_ENOMEM;
    h->host = host;
    h->lag = (uint32_t)params->values[P_LAG].i;
    h->c_records = host->counter_register(host, "hold_records", OBS_COUNTER_PLAIN, "records consumed");
    h->tokens = host->alloc(host, HOLD_MAX * sizeof *h->tokens);
    h->head = h->tail = 0;
    *instance = h;
    return h->tokens ? OBS_OK : OBS_ENOMEM;
}

static void release_to(hold *h, uint64_t keep)
{
    while (h->head - h->tail > keep) {
        h->host->release(h->host, h->tokens[h->tail % HOLD_MAX]);
        h->tail++;
    }
}

static int hold_consume(void *instance, const obs_batch *in)
{
    hold *h = instance;
    h->host->counter_add(h->host, h->c_records, in->n_records);
    /* Full ring: release the oldest rather than lose a token. */
    release_to(h, HOLD_MAX - 1);
    h->tokens[h->head % HOLD_MAX] = h->host->hold(h->host);
    h->head++;
    if (h->lag)
        release_to(h, h->lag);
    return OBS_OK;
}

static int hold_flush(void *instance, obs_out *out)
{
    (void)out;
    release_to(instance, 0);
    return OBS_OK;
}

static void hold_fini(void *instance)
{
    hold *h = instance;
    release_to(h, 0);
    h->host->free(h->host, h->tokens);
    h->host->free(h->host, h);
}

static const obs_stage_desc desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_SINK,
    .name = "tp_hold",
    .version = "1.0.0",
    .description = "a sink that holds its batches' delivery (host->hold) and releases it late",
    .params = hold_params,
    .n_params = 1,
    .init = hold_init,
    .consume = hold_consume,
    .flush = hold_flush,
    .fini = hold_fini,
};

OBS_DECLARE_STAGE(desc)
