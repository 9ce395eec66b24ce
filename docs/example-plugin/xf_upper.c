/*
 * xf_upper.c - the example transform of docs/plugin-guide.md.
 *
 * Upper-cases ASCII letters in every record. A record without lower-case
 * letters is passed through by reference (zero copy); the others are
 * rewritten into the output arena. Records longer than the `max_len`
 * parameter are skipped and counted on an error counter. It needs only
 * <observatory/stage.h>; build it with the Makefile next to it.
 */
#include <observatory/stage.h>

/* Parameter indexes: the host passes values in declaration order. */
enum { P_MAX_LEN };

static const obs_param_desc upper_params[] = {
    [P_MAX_LEN] = {.name = "max_len",
                   .type = OBS_PARAM_INT,
                   .default_value = "65536",
                   .min = 1,
                   .max = 1 << 24,
                   .help = "records longer than this are skipped (counted as too_long)"},
};

/* One instance per stage; only ever used from its stage thread. */
typedef struct upper {
    const obs_host *host; /* valid until fini */
    uint64_t max_len;
    int c_too_long;  /* error counter: records skipped */
    int c_rewritten; /* records copied into the arena */
} upper;

static int upper_init(const obs_host *host, const obs_params *params, void **instance)
{
    upper *u = host->alloc(host, sizeof *u);
    if (!u)
        return OBS_ENOMEM;
    u->host = host;
    u->max_len = (uint64_t)params->values[P_MAX_LEN].i;
    u->c_too_long = host->counter_register(host, "too_long", OBS_COUNTER_ERROR,
                                           "records longer than max_len, skipped");
    u->c_rewritten = host->counter_register(host, "rewritten", OBS_COUNTER_PLAIN,
                                            "records copied to change their case");
    if (u->c_too_long < 0 || u->c_rewritten < 0) {
        int rc = u->c_too_long < 0 ? u->c_too_long : u->c_rewritten;
        host->free(host, u);
        return rc;
    }
    *instance = u;
    return OBS_OK;
}

static int has_lower(const uint8_t *p, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        if (p[i] >= 'a' && p[i] <= 'z')
            return 1;
    return 0;
}

static int upper_process(void *instance, const obs_batch *in, obs_out *out)
{
    upper *u = instance;
    uint64_t too_long = 0, rewritten = 0;
    int rc = OBS_OK;

    for (uint32_t i = 0; i < in->n_records; i++) {
        const obs_record *r = &in->records[i];

        if (r->len > u->max_len) {
            too_long++; /* skip this record, keep the batch */
            continue;
        }
        if (!has_lower(r->data, r->len)) {
            rc = obs_out_pass(out, r); /* zero copy: same bytes, same seq */
        } else {
            uint8_t *dst = obs_out_reserve(out, r->len);
            if (!dst) {
                rc = OBS_ENOMEM;
            } else {
                for (uint32_t k = 0; k < r->len; k++) {
                    uint8_t c = r->data[k];
                    dst[k] = (c >= 'a' && c <= 'z') ? (uint8_t)(c - 'a' + 'A') : c;
                }
                /* Keep seq and the intended time: latency is measured from it. */
                obs_out_commit(out, r->len, r->seq, r->t_intended_ns);
                rewritten++;
            }
        }
        if (rc != OBS_OK)
            break;
    }
    if (too_long)
        u->host->counter_add(u->host, u->c_too_long, too_long);
    if (rewritten)
        u->host->counter_add(u->host, u->c_rewritten, rewritten);
    return rc;
}

static void upper_fini(void *instance)
{
    upper *u = instance;
    u->host->free(u->host, u);
}

static const obs_stage_desc upper_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "xf_upper",
    .version = "1.0.0",
    .description = "upper-cases ASCII letters",
    .params = upper_params,
    .n_params = sizeof upper_params / sizeof upper_params[0],
    .init = upper_init,
    .process = upper_process,
    .fini = upper_fini,
};

OBS_DECLARE_STAGE(upper_desc)
