/*
 * tp_desc.c - the descriptor half of the plugin conformance suite.
 *
 * One small, otherwise valid pass-through transform, built many times (see
 * CMakeLists.txt): each build defines exactly one TP_CASE_* macro that breaks
 * (or stretches) its descriptor in one way, and TP_NAME, the plugin's name.
 * test_plugin opens every build and checks that the loader refuses the
 * broken ones with a message naming what mismatched, and accepts the
 * unusual-but-legal ones (older and newer ABI minors). Keeping all cases in
 * one file makes each one a few visible lines against a common baseline.
 */
#include <stddef.h>

#include <observatory/stage.h>

#ifndef TP_NAME
#error "TP_NAME must name the plugin"
#endif

/* Test plugins reference only some of these helpers in a given build. */
#define TP_MAYBE_UNUSED __attribute__((unused))

TP_MAYBE_UNUSED static int tp_init(const obs_host *host, const obs_params *params, void **instance)
{
    (void)host;
    (void)params;
    *instance = NULL; /* stateless */
    return OBS_OK;
}

TP_MAYBE_UNUSED static int tp_init_fail(const obs_host *host, const obs_params *params,
                                        void **instance)
{
    (void)params;
    *instance = NULL;
    host->log(host, OBS_LOG_ERROR, "%s: init fails on purpose", TP_NAME);
    return OBS_EPLUGIN;
}

TP_MAYBE_UNUSED static int tp_process(void *instance, const obs_batch *in, obs_out *out)
{
    (void)instance;
    for (uint32_t i = 0; i < in->n_records; i++) {
        int rc = obs_out_pass(out, &in->records[i]);
        if (rc)
            return rc;
    }
    return OBS_OK;
}

TP_MAYBE_UNUSED static int tp_consume(void *instance, const obs_batch *in)
{
    (void)instance;
    (void)in;
    return OBS_OK;
}

TP_MAYBE_UNUSED static void tp_fini(void *instance)
{
    (void)instance;
}

/* A consistent parameter list, and three inconsistent ones. */
TP_MAYBE_UNUSED static const obs_param_desc params_ok[] = {
    {.name = "width",
     .type = OBS_PARAM_INT,
     .default_value = "8",
     .min = 1,
     .max = 64,
     .help = "record width"},
    {.name = "label",
     .type = OBS_PARAM_STRING,
     .default_value = "x",
     .min = 1,
     .max = 0,
     .help = "label (any length)"},
};
TP_MAYBE_UNUSED static const obs_param_desc params_dup[] = {
    {.name = "width", .type = OBS_PARAM_INT, .default_value = "8", .min = 1, .max = 64},
    {.name = "width", .type = OBS_PARAM_DOUBLE, .default_value = "0.5", .min = 0, .max = 1},
};
TP_MAYBE_UNUSED static const obs_param_desc params_bad_type[] = {
    {.name = "width", .type = 9, .default_value = "8"},
};
TP_MAYBE_UNUSED static const obs_param_desc params_bad_default[] = {
    {.name = "width", .type = OBS_PARAM_INT, .default_value = "100", .min = 1, .max = 64},
};

/* The baseline: a valid transform. Each case below overrides one thing. */
#define TP_MAGIC OBS_STAGE_MAGIC
#define TP_ABI_MAJOR OBS_ABI_MAJOR
#define TP_ABI_MINOR OBS_ABI_MINOR
#define TP_STRUCT_SIZE sizeof(obs_stage_desc)
#define TP_KIND OBS_KIND_TRANSFORM
#define TP_PLUGIN_NAME TP_NAME
#define TP_VERSION "1.0.0"
#define TP_PARAMS params_ok
#define TP_N_PARAMS 2
#define TP_INIT tp_init
#define TP_PROCESS tp_process
#define TP_CONSUME NULL
#define TP_FINI tp_fini

#if defined(TP_CASE_BAD_MAGIC)
/* Not an Observatory descriptor at all. */
#undef TP_MAGIC
#define TP_MAGIC 0xdeadbeefu
#elif defined(TP_CASE_MAJOR2)
/* Built against a future, incompatible ABI. */
#undef TP_ABI_MAJOR
#define TP_ABI_MAJOR 2
#elif defined(TP_CASE_OLD_MINOR)
/* An ABI 1.0 plugin whose struct ends with the last field 1.0 defines (and
 * leaves the optional state callbacks NULL): accepted. */
#undef TP_ABI_MINOR
#define TP_ABI_MINOR 0
#undef TP_STRUCT_SIZE
#define TP_STRUCT_SIZE (offsetof(obs_stage_desc, import_state) + sizeof(void *))
#elif defined(TP_CASE_NEW_MINOR)
/* Built against a later 1.x whose descriptor has grown: see desc_ext. */
#undef TP_ABI_MINOR
#define TP_ABI_MINOR 9
#elif defined(TP_CASE_SHORT_STRUCT)
/* Claims a 16-byte descriptor: too small for any 1.x host. */
#undef TP_STRUCT_SIZE
#define TP_STRUCT_SIZE 16
#elif defined(TP_CASE_WRONG_KIND)
/* A sink, to be put where a transform is needed. */
#undef TP_KIND
#define TP_KIND OBS_KIND_SINK
#undef TP_CONSUME
#define TP_CONSUME tp_consume
#elif defined(TP_CASE_UNKNOWN_KIND)
#undef TP_KIND
#define TP_KIND 7
#elif defined(TP_CASE_NO_PROCESS)
/* A transform that forgot its process callback. */
#undef TP_PROCESS
#define TP_PROCESS NULL
#elif defined(TP_CASE_NO_FINI)
#undef TP_FINI
#define TP_FINI NULL
#elif defined(TP_CASE_NO_NAME)
#undef TP_PLUGIN_NAME
#define TP_PLUGIN_NAME NULL
#elif defined(TP_CASE_NO_VERSION)
#undef TP_VERSION
#define TP_VERSION NULL
#elif defined(TP_CASE_DUP_PARAM)
#undef TP_PARAMS
#define TP_PARAMS params_dup
#elif defined(TP_CASE_NULL_PARAMS)
/* Says it has two parameters but gives no array. */
#undef TP_PARAMS
#define TP_PARAMS NULL
#elif defined(TP_CASE_BAD_PARAM_TYPE)
#undef TP_PARAMS
#define TP_PARAMS params_bad_type
#undef TP_N_PARAMS
#define TP_N_PARAMS 1
#elif defined(TP_CASE_BAD_DEFAULT)
#undef TP_PARAMS
#define TP_PARAMS params_bad_default
#undef TP_N_PARAMS
#define TP_N_PARAMS 1
#elif defined(TP_CASE_INIT_FAIL)
/* Loads fine; init refuses to start (the pipeline must report it and run
 * nothing). */
#undef TP_INIT
#define TP_INIT tp_init_fail
#elif defined(TP_CASE_UNKNOWN_FLAG)
/* A flag of a later minor this host cannot honour. */
#define TP_FLAGS 0x80u
#elif defined(TP_CASE_SOURCE_TRANSFORM)
/* Only a generator can be a source. */
#define TP_FLAGS OBS_STAGE_SOURCE
#elif defined(TP_CASE_NULL_DESC) || defined(TP_CASE_NO_ENTRY)
/* Handled at the entry point below. */
#else
#error "define one TP_CASE_*"
#endif

#ifndef TP_FLAGS
#define TP_FLAGS 0u
#endif

#define TP_DESC_FIELDS                                                                             \
    .magic = TP_MAGIC, .abi_major = TP_ABI_MAJOR, .abi_minor = TP_ABI_MINOR, .kind = TP_KIND,      \
    .name = TP_PLUGIN_NAME, .version = TP_VERSION,                                                 \
    .description = "conformance-suite plugin (" TP_NAME ")", .params = TP_PARAMS,                  \
    .n_params = TP_N_PARAMS, .init = TP_INIT, .process = TP_PROCESS, .consume = TP_CONSUME,        \
    .fini = TP_FINI, .flags = TP_FLAGS

#if defined(TP_CASE_NEW_MINOR)
/* What a descriptor from a later minor looks like to this host: the fields
 * it knows, then fields it has never heard of, which it must ignore. */
static const struct tp_desc_ext {
    obs_stage_desc d;
    int (*future_callback)(void *instance);
    uint64_t future_flags;
} desc_ext = {
    .d = {TP_DESC_FIELDS, .struct_size = sizeof(struct tp_desc_ext)},
    .future_callback = NULL,
    .future_flags = 0xffffffffffffffffu,
};

OBS_EXPORT const obs_stage_desc *OBS_STAGE_ENTRY(void);
OBS_EXPORT const obs_stage_desc *OBS_STAGE_ENTRY(void)
{
    return &desc_ext.d;
}
#else
static const obs_stage_desc desc = {TP_DESC_FIELDS, .struct_size = TP_STRUCT_SIZE};

#if defined(TP_CASE_NULL_DESC)
OBS_EXPORT const obs_stage_desc *OBS_STAGE_ENTRY(void);
OBS_EXPORT const obs_stage_desc *OBS_STAGE_ENTRY(void)
{
    (void)desc;
    return NULL;
}
#elif defined(TP_CASE_NO_ENTRY)
/* The classic mistake: the entry point is written but not OBS_EXPORTed, so
 * -fvisibility=hidden keeps it out of the dynamic symbol table. */
const obs_stage_desc *obs_stage_entry(void);
const obs_stage_desc *obs_stage_entry(void)
{
    return &desc;
}
#else
OBS_DECLARE_STAGE(desc)
#endif
#endif
