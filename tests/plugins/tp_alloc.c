/*
 * tp_alloc.c - a pass-through transform that allocates on purpose, for the
 * allocation accounting tests: per batch it makes `per_batch` malloc calls
 * of `bytes` bytes each, writes into every block (so the compiler cannot
 * elide the pair) and frees them again before returning; with `keep`, it
 * keeps that many of them per batch until fini (a growing live heap).
 */
#include <stdlib.h>
#include <string.h>

#include <observatory/stage.h>

enum { P_PER_BATCH, P_BYTES, P_KEEP };

static const obs_param_desc alloc_params[] = {
    [P_PER_BATCH] = {.name = "per_batch", .type = OBS_PARAM_INT, .default_value = "3", .min = 0,
                     .max = 1000, .help = "malloc calls per batch"},
    [P_BYTES] = {.name = "bytes", .type = OBS_PARAM_INT, .default_value = "100", .min = 1,
                 .max = 1 << 20, .help = "size of each allocation"},
    [P_KEEP] = {.name = "keep", .type = OBS_PARAM_INT, .default_value = "0", .min = 0,
                .max = 1000, .help = "of those, kept per batch until fini (not freed)"},
};

typedef struct tp_alloc {
    const obs_host *host;
    int per_batch, keep;
    size_t bytes;
    void **kept; /* blocks kept, a list grown as needed */
    size_t n_kept, cap_kept;
    volatile unsigned char sink; /* observable use of the memory */
} tp_alloc;

static int a_init(const obs_host *host, const obs_params *params, void **instance)
{
    tp_alloc *a = host->alloc(host, sizeof(*a));
    if (!a)
        return OBS_ENOMEM;
    a->host = host;
    a->per_batch = (int)params->values[P_PER_BATCH].i;
    a->bytes = (size_t)params->values[P_BYTES].i;
    a->keep = (int)params->values[P_KEEP].i;
    a->kept = NULL;
    a->n_kept = a->cap_kept = 0;
    a->sink = 0;
    *instance = a;
    return OBS_OK;
}

static int a_process(void *instance, const obs_batch *in, obs_out *out)
{
    tp_alloc *a = instance;
    for (int i = 0; i < a->per_batch; i++) {
        unsigned char *p = malloc(a->bytes);
        if (!p)
            return OBS_ENOMEM;
        memset(p, i, a->bytes);
        a->sink ^= p[a->bytes - 1];
        if (i < a->keep) {
            if (a->n_kept == a->cap_kept) {
                size_t cap = a->cap_kept ? 2 * a->cap_kept : 1024;
                void **k = realloc(a->kept, cap * sizeof *k);
                if (!k) {
                    free(p);
                    return OBS_ENOMEM;
                }
                a->kept = k;
                a->cap_kept = cap;
            }
            a->kept[a->n_kept++] = p;
        } else {
            free(p);
        }
    }
    for (uint32_t i = 0; i < in->n_records; i++)
        if (obs_out_pass(out, &in->records[i]) != OBS_OK)
            return OBS_ENOMEM;
    return OBS_OK;
}

static void a_fini(void *instance)
{
    tp_alloc *a = instance;
    for (size_t i = 0; i < a->n_kept; i++)
        free(a->kept[i]);
    free(a->kept);
    a->host->free(a->host, a);
}

static const obs_stage_desc alloc_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "tp_alloc",
    .version = "1.0.0",
    .description = "pass-through that allocates per_batch blocks per batch",
    .params = alloc_params,
    .n_params = sizeof(alloc_params) / sizeof(alloc_params[0]),
    .init = a_init,
    .process = a_process,
    .fini = a_fini,
};

OBS_DECLARE_STAGE(alloc_desc)
