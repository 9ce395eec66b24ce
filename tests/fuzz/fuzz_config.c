/*
 * fuzz_config.c - libFuzzer harness for the config module (core/config/, every .c file).
 *
 * Feeds arbitrary bytes to config_load_string() and, when they load, checks
 * every stage's params (and those of variant B in a stage's ab: mapping)
 * against a small static descriptor that covers all parameter types.
 * Besides the sanitizers' findings it aborts when the module breaks its
 * contract: a failure must leave *out NULL and explain itself as
 * "fuzz.yaml..." (or, for an error inside a replay file the config names,
 * as "<that file>:<line>..."), a success must leave the error text empty,
 * and an ab: that loads holds only values in range.
 *
 *   ./fuzz_config -dict=tests/fuzz/config.dict corpus/ config/
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

static const obs_param_desc fuzz_params[] = {
    {.name = "window_ms",
     .type = OBS_PARAM_INT,
     .default_value = NULL,
     .min = 1,
     .max = 60000,
     .help = "window length in milliseconds"},
    {.name = "ratio", .type = OBS_PARAM_DOUBLE, .default_value = "0.5", .min = 0, .max = 1},
    {.name = "enabled", .type = OBS_PARAM_BOOL, .default_value = "true", .min = 1, .max = 0},
    {.name = "path", .type = OBS_PARAM_STRING, .default_value = "data", .min = 1, .max = 16},
};

static const obs_stage_desc fuzz_desc = {
    OBS_STAGE_HEADER,      .kind = OBS_KIND_TRANSFORM,
    .name = "xf_fuzz",     .version = "1.0.0",
    .params = fuzz_params, .n_params = sizeof fuzz_params / sizeof fuzz_params[0],
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An error names the config ("fuzz.yaml...") or a file the config names
 * (a replay file: "<path>:<line>: ..."). */
static int names_a_file(const char *err, const char *text)
{
    if (strncmp(err, "fuzz.yaml", 9) == 0)
        return 1;
    const char *colon = strchr(err, ':');
    if (!colon || colon == err || colon - err > 4096)
        return 0;
    char path[4097];
    memcpy(path, err, (size_t)(colon - err));
    path[colon - err] = '\0';
    return strstr(text, path) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    obs_config *cfg = NULL;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    int rc = config_load_string("fuzz.yaml", text, &cfg, err, sizeof err);
    if (rc != 0 && (cfg || !names_a_file(err, text)))
        abort();
    if (rc == 0) {
        if (!cfg || err[0] || strcmp(cfg->text, text) != 0 || cfg->n_stages < 2 || cfg->n_load < 1)
            abort();
        for (size_t i = 0; i < cfg->n_stages; i++) {
            cfg_param_values v;
            int prc = config_check_params(cfg, i, &fuzz_desc, &v, err, sizeof err);
            if (prc == 0 && v.n_values != fuzz_desc.n_params)
                abort();
            if (prc != 0 && (v.values || strncmp(err, "fuzz.yaml", 9) != 0))
                abort();
            config_param_values_free(&v);
            /* Variant B's params of an ab: mapping, the same way. */
            const cfg_ab *ab = cfg->stages[i].ab;
            if (!ab)
                continue;
            if (i == 0 || i + 1 == cfg->n_stages || (ab->aa && ab->params_given) ||
                ab->threshold < 0 || ab->threshold >= 1 || ab->n_looks > 1000 ||
                (ab->block_ms && (ab->block_ms < 10 || ab->block_ms > 10000)))
                abort();
            prc = config_check_ab_params(cfg, i, &fuzz_desc, &v, err, sizeof err);
            if (prc == 0 && v.n_values != fuzz_desc.n_params)
                abort();
            if (prc != 0 && (v.values || strncmp(err, "fuzz.yaml", 9) != 0))
                abort();
            config_param_values_free(&v);
        }
        config_free(cfg);
    }
    uint64_t ns;
    (void)config_parse_duration(text, &ns);
    free(text);
    return 0;
}
