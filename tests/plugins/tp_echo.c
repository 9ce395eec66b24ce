/*
 * tp_echo.c - a valid pass-through transform, built in two versions.
 *
 * Built as tp_echo.so (TP_ECHO_VERSION "1.0.0") and tp_echo-2.0.0.so
 * ("2.0.0") for the loader's version-resolution tests, and used by the
 * pipeline and hot-swap tests as the simplest correct transform: every
 * record goes through by reference (obs_out_pass, zero copy), so seq and
 * t_intended_ns reach the sink untouched. Its state (records seen) can be
 * exported and imported, which makes a hot swap between the two versions
 * observable. The optional `drop_every` parameter drops every Nth record on
 * purpose, so tests can prove that the sequence check downstream catches
 * loss.
 */
#include <observatory/stage.h>

#ifndef TP_ECHO_VERSION
#define TP_ECHO_VERSION "1.0.0"
#endif

typedef struct echo {
    const obs_host *host;
    uint64_t seen;       /* records given to process, carried across swaps */
    uint64_t drop_every; /* 0: never */
    int c_dropped;       /* counter id */
} echo;

static const obs_param_desc echo_params[] = {
    {.name = "drop_every",
     .type = OBS_PARAM_INT,
     .default_value = "0",
     .min = 0,
     .max = 1e12,
     .help = "drop every Nth record on purpose (0: drop nothing)"},
};

static int echo_init(const obs_host *host, const obs_params *params, void **instance)
{
    echo *e = host->alloc(host, sizeof *e);
    if (!e)
        return OBS_ENOMEM;
    e->host = host;
    e->seen = 0;
    e->drop_every = (uint64_t)params->values[0].i;
    e->c_dropped = host->counter_register(host, "dropped_on_purpose", OBS_COUNTER_PLAIN,
                                          "records dropped because of drop_every");
    if (e->c_dropped < 0) {
        int rc = e->c_dropped;
        host->free(host, e);
        return rc;
    }
    *instance = e;
    return OBS_OK;
}

static int echo_process(void *instance, const obs_batch *in, obs_out *out)
{
    echo *e = instance;
    uint64_t dropped = 0;

    for (uint32_t i = 0; i < in->n_records; i++) {
        e->seen++;
        if (e->drop_every && e->seen % e->drop_every == 0) {
            dropped++;
            continue;
        }
        int rc = obs_out_pass(out, &in->records[i]);
        if (rc)
            return rc;
    }
    if (dropped)
        e->host->counter_add(e->host, e->c_dropped, dropped);
    return OBS_OK;
}

static int echo_flush(void *instance, obs_out *out)
{
    (void)instance;
    (void)out;
    return OBS_OK; /* nothing held back */
}

static void echo_fini(void *instance)
{
    echo *e = instance;
    e->host->free(e->host, e);
}

/* State: the 8-byte little-endian count of records seen. */
static int echo_export(void *instance, void **buf, size_t *len)
{
    echo *e = instance;
    uint8_t *b = e->host->alloc(e->host, 8);
    if (!b)
        return OBS_ENOMEM;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(e->seen >> (8 * i));
    *buf = b;
    *len = 8;
    return OBS_OK;
}

static int echo_import(void *instance, const void *buf, size_t len)
{
    echo *e = instance;
    const uint8_t *b = buf;
    uint64_t v = 0;

    if (len != 8)
        return OBS_ESTATE;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)b[i] << (8 * i);
    e->seen = v;
    e->host->log(e->host, OBS_LOG_INFO, "tp_echo %s: imported state, %llu records seen",
                 TP_ECHO_VERSION, (unsigned long long)v);
    return OBS_OK;
}

static const obs_stage_desc desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "tp_echo",
    .version = TP_ECHO_VERSION,
    .description = "passes every record through untouched",
    .params = echo_params,
    .n_params = sizeof echo_params / sizeof echo_params[0],
    .init = echo_init,
    .process = echo_process,
    .flush = echo_flush,
    .fini = echo_fini,
    .export_state = echo_export,
    .import_state = echo_import,
};

OBS_DECLARE_STAGE(desc)
