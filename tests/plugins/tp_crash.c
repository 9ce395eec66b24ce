/*
 * tp_crash.c - a transform that crashes the process after `after` batches,
 * the way `how` says: segv (a write through a bad pointer), abort, fpe (an
 * integer division by zero) or stack (unbounded recursion). The fault tests
 * check what hostd leaves behind (engine/crash.h).
 */
#include <observatory/stage.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

enum { P_AFTER, P_HOW };

static const obs_param_desc crash_params[] = {
    [P_AFTER] = {.name = "after", .type = OBS_PARAM_INT, .default_value = "5", .min = 0,
                 .max = 1e9, .help = "batches passed through before the crash"},
    [P_HOW] = {.name = "how", .type = OBS_PARAM_STRING, .default_value = "segv", .min = 1,
               .max = 8, .help = "segv, abort, fpe or stack"},
};

typedef struct crash {
    const obs_host *host;
    uint64_t after, seen;
    char how[16];
} crash;

static volatile int crash_zero;
static volatile uintptr_t crash_bad_address = 16;
static volatile int crash_forever = 1;

/* Recurses while crash_forever (always: the compiler cannot know). */
__attribute__((noinline)) static int recurse(volatile char *p, int depth)
{
    volatile char pad[1024];
    pad[0] = p ? p[0] : 0;
    if (!crash_forever)
        return pad[0];
    return recurse(pad, depth + 1) + pad[depth % 1024];
}

__attribute__((noinline)) static void tp_crash_now(const char *how)
{
    if (strcmp(how, "abort") == 0)
        abort();
    if (strcmp(how, "fpe") == 0) {
        volatile int x = 1;
        x = x / crash_zero;
        (void)x;
    }
    if (strcmp(how, "stack") == 0)
        recurse(NULL, 0);
    *(volatile int *)crash_bad_address = 1; /* segv */
}

static int crash_init(const obs_host *host, const obs_params *params, void **instance)
{
    crash *c = host->alloc(host, sizeof *c);
    if (!c)
        return OBS_ENOMEM;
    c->host = host;
    c->after = (uint64_t)params->values[P_AFTER].i;
    c->seen = 0;
    strncpy(c->how, params->values[P_HOW].s, sizeof c->how - 1);
    c->how[sizeof c->how - 1] = '\0';
    *instance = c;
    return OBS_OK;
}

static int crash_process(void *instance, const obs_batch *in, obs_out *out)
{
    crash *c = instance;
    if (c->seen++ >= c->after)
        tp_crash_now(c->how);
    for (uint32_t i = 0; i < in->n_records; i++) {
        int rc = obs_out_pass(out, &in->records[i]);
        if (rc)
            return rc;
    }
    return OBS_OK;
}

static void crash_fini(void *instance)
{
    crash *c = instance;
    c->host->free(c->host, c);
}

static const obs_stage_desc desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "tp_crash",
    .version = "1.0.0",
    .description = "a transform that crashes the process after some batches",
    .params = crash_params,
    .n_params = 2,
    .init = crash_init,
    .process = crash_process,
    .fini = crash_fini,
};

OBS_DECLARE_STAGE(desc)
