/*
 * sink_null - a sink that counts what it receives and discards it.
 *
 * It adds the number of records and of payload bytes of each batch to two
 * plugin counters ("records", "bytes"), one counter_add each per batch, and
 * touches nothing else: the cheapest possible end of a pipeline, for
 * measuring the stages in front of it.
 */
#include <observatory/stage.h>

typedef struct sink_null {
    const obs_host *host;
    int c_records, c_bytes; /* counter ids */
} sink_null;

static int sink_null_init(const obs_host *host, const obs_params *params, void **instance)
{
    (void)params;
    sink_null *s = host->alloc(host, sizeof *s);
    if (!s)
        return OBS_ENOMEM;
    s->host = host;
    s->c_records = host->counter_register(host, "records", OBS_COUNTER_PLAIN, "records consumed");
    s->c_bytes = host->counter_register(host, "bytes", OBS_COUNTER_PLAIN,
                                        "payload bytes consumed");
    if (s->c_records < 0 || s->c_bytes < 0) {
        int rc = s->c_records < 0 ? s->c_records : s->c_bytes;
        host->free(host, s);
        return rc;
    }
    *instance = s;
    return OBS_OK;
}

/* Counts the batch; never fails. */
static int sink_null_consume(void *instance, const obs_batch *in)
{
    sink_null *s = instance;
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < in->n_records; i++)
        bytes += in->records[i].len;
    s->host->counter_add(s->host, s->c_records, in->n_records);
    s->host->counter_add(s->host, s->c_bytes, bytes);
    return OBS_OK;
}

static int sink_null_flush(void *instance, obs_out *out)
{
    (void)instance;
    (void)out;
    return OBS_OK;
}

static void sink_null_fini(void *instance)
{
    sink_null *s = instance;
    if (s)
        s->host->free(s->host, s);
}

static const obs_stage_desc sink_null_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_SINK,
    .name = "sink_null",
    .version = "1.0.0",
    .description = "counts records and bytes, then discards them",
    .params = NULL,
    .n_params = 0,
    .init = sink_null_init,
    .consume = sink_null_consume,
    .flush = sink_null_flush,
    .fini = sink_null_fini,
};

OBS_DECLARE_STAGE(sink_null_desc)
