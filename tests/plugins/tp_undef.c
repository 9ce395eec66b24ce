/*
 * tp_undef.c - a plugin that needs a symbol nobody defines.
 *
 * It is linked with unresolved symbols allowed (see CMakeLists.txt), the way
 * a plugin built against a newer library ends up on a host with an older
 * one. The loader opens plugins with RTLD_NOW, so this must fail at load
 * time with dlerror()'s "undefined symbol: obs_test_no_such_function", never
 * later in the middle of a run.
 */
#include <observatory/stage.h>

/* Declared, never defined anywhere. */
extern int obs_test_no_such_function(void);

static int undef_init(const obs_host *host, const obs_params *params, void **instance)
{
    (void)host;
    (void)params;
    *instance = NULL;
    return obs_test_no_such_function();
}

static int undef_process(void *instance, const obs_batch *in, obs_out *out)
{
    (void)instance;
    (void)in;
    (void)out;
    return OBS_OK;
}

static void undef_fini(void *instance)
{
    (void)instance;
}

static const obs_stage_desc desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "tp_undef",
    .version = "1.0.0",
    .description = "needs an undefined symbol; must fail to load",
    .init = undef_init,
    .process = undef_process,
    .fini = undef_fini,
};

OBS_DECLARE_STAGE(desc)
