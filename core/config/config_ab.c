/*
 * config_ab.c - a stage's `ab:` mapping in pipeline.yaml: the A/B
 * experiment hostd starts on that stage once warm-up is over.
 *
 * The mapping says what the command line's --ab/--aa and --ab-* options
 * say, with the names of POST /api/v1/experiments where they exist: B's
 * plugin, version and parameters (or aa: the stage against itself), the
 * design (duet or interleaved), the time limit, the planned looks, the
 * interleaved block length, the decision threshold and the seed. config.c
 * hands each stage's mapping here as libcyaml read it (every scalar as text,
 * against the schema below), with B's `params` read from the libyaml tree
 * like a stage's. What can be checked without loading B's plugin is checked
 * here: values and ranges, keys that contradict each other, experiments on
 * the generator or the sink (experiments run on transforms), and a second
 * interleaved experiment (one per pipeline at a time). B's plugin and
 * parameters are checked when the experiment starts (experiment.c, with
 * config_check_ab_params()).
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)

static const cyaml_strval_t mode_names[] = {
    {"duet", CFG_AB_DUET},
    {"interleaved", CFG_AB_INTERLEAVED},
};

const cyaml_schema_field_t config_ab_fields[] = {
    CYAML_FIELD_STRING_PTR("plugin", OPT, y_ab, plugin, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("version", OPT, y_ab, version, 0, CYAML_UNLIMITED),
    CYAML_FIELD_IGNORE("params", CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_STRING_PTR("aa", OPT, y_ab, aa, 0, CYAML_UNLIMITED),
    CYAML_FIELD_ENUM("mode", CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT, y_ab, mode, mode_names,
                     CYAML_ARRAY_LEN(mode_names)),
    CYAML_FIELD_STRING_PTR("duration", OPT, y_ab, duration, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("looks", OPT, y_ab, looks, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("block", OPT, y_ab, block, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("threshold", OPT, y_ab, threshold, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("seed", OPT, y_ab, seed, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

#define DAY_NS (86400ull * 1000000000u)

static char *dup_or_null(loader *L, const char *s)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        L->oom = true;
    return d;
}

/* A boolean as plugin parameters take it: true/false, yes/no, on/off, in
 * any case. Returns 0 or OBS_EINVAL. */
static int parse_bool(const char *s, int *v)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (size_t k = 0; k < 3; k++) {
        if (strcasecmp(s, yes[k]) == 0) {
            *v = 1;
            return 0;
        }
        if (strcasecmp(s, no[k]) == 0) {
            *v = 0;
            return 0;
        }
    }
    return OBS_EINVAL;
}

/* The threshold: a fraction (0.01) or a percentage (1%), strictly between 0
 * and 1. Returns 0, -1 when `s` is not a number, 1 when it is out of range;
 * *v is set only on success. */
static int parse_threshold(const char *s, double *v)
{
    char num[64];
    size_t n = strlen(s);
    bool percent = n && s[n - 1] == '%';
    if (percent) {
        n--;
        while (n && s[n - 1] == ' ')
            n--;
    }
    if (n >= sizeof num)
        return -1;
    memcpy(num, s, n);
    num[n] = '\0';
    double x;
    if (config_parse_double(num, &x) != 0)
        return -1;
    if (percent)
        x /= 100;
    if (!(x > 0 && x < 1))
        return 1;
    *v = x;
    return 0;
}

/* Reports that `key` (given) contradicts aa: true. */
static void not_with_aa(loader *L, const char *at, const char *key)
{
    char path[96];
    snprintf(path, sizeof path, "%s.%s", at, key);
    config_lerr(L, path,
                "an A/A experiment runs the stage itself as B: leave out plugin, version and "
                "params (or set aa: false)");
}

void config_convert_ab(loader *L, size_t i, const y_ab *ya, obs_config *cfg)
{
    char at[64], path[96];
    cfg_stage *st = &cfg->stages[i];
    size_t errors = L->err.n;
    snprintf(at, sizeof at, "stages[%zu].ab", i);
    cfg_ab *ab = st->ab = calloc(1, sizeof *ab);
    if (!ab) {
        L->oom = true;
        return;
    }
    yaml_node_t *node = config_node_at(L, at);
    ab->line = node ? (int)node->start_mark.line + 1 : 0;
    ab->column = node ? (int)node->start_mark.column + 1 : 0;
    ab->mode = ya->mode ? (cfg_ab_mode)ya->mode : CFG_AB_DUET;

    if (i == 0 || i + 1 == cfg->n_stages)
        config_lerr(L, at,
                    "experiments run on transforms, and stages[%zu] is the pipeline's %s; "
                    "put ab: on a stage between the first and the last",
                    i, i == 0 ? "generator" : "sink");

    snprintf(path, sizeof path, "%s.plugin", at);
    if (ya->plugin)
        config_check_plugin_name(L, path, ya->plugin);
    snprintf(path, sizeof path, "%s.version", at);
    if (ya->version && !*ya->version)
        config_lerr(L, path, "version must not be empty (leave it out to accept any)");
    ab->params_given = config_read_params(L, at, &ab->params, &ab->n_params);

    snprintf(path, sizeof path, "%s.aa", at);
    if (ya->aa && parse_bool(ya->aa, &ab->aa) != 0)
        config_lerr(L, path, "expected a boolean (true/false, yes/no, on/off), got '%s'", ya->aa);
    if (ab->aa) {
        if (ya->plugin)
            not_with_aa(L, at, "plugin");
        if (ya->version)
            not_with_aa(L, at, "version");
        if (ab->params_given)
            not_with_aa(L, at, "params");
    } else if (!ya->plugin && !ya->version && !ab->params_given && errors == L->err.n) {
        config_lerr(L, at,
                    "B would be the stage itself: give B a plugin, version or params, or set "
                    "aa: true for an A/A experiment");
    }

    snprintf(path, sizeof path, "%s.duration", at);
    if (ya->duration && config_parse_duration(ya->duration, &ab->duration_ns) != 0) {
        config_check_duration(L, path, ya->duration, &ab->duration_ns);
    } else if (ya->duration && (ab->duration_ns == 0 || ab->duration_ns > DAY_NS)) {
        config_lerr(L, path,
                    "value %s is out of range (0s, 24h] (leave it out for the rest of the run)",
                    ya->duration);
        ab->duration_ns = 0;
    }

    snprintf(path, sizeof path, "%s.looks", at);
    config_check_u32(L, path, ya->looks, &ab->n_looks, 1, 1000);

    snprintf(path, sizeof path, "%s.block", at);
    if (ya->block && ab->mode != CFG_AB_INTERLEAVED) {
        config_lerr(L, path, "block applies to mode 'interleaved' only");
    } else if (ya->block) {
        uint64_t ns = 0;
        if (config_parse_duration(ya->block, &ns) != 0)
            config_check_duration(L, path, ya->block, &ns);
        else if (ns < 10000000u || ns > 10000000000u)
            config_lerr(L, path, "value %s is out of range [10ms, 10s]", ya->block);
        else if (ns % 1000000u)
            config_lerr(L, path, "%s is not a whole number of milliseconds", ya->block);
        else
            ab->block_ms = (uint32_t)(ns / 1000000u);
    }

    snprintf(path, sizeof path, "%s.threshold", at);
    int rc = ya->threshold ? parse_threshold(ya->threshold, &ab->threshold) : 0;
    if (rc < 0)
        config_lerr(L, path, "expected a fraction like 0.01 or a percentage like 1%%, got '%s'",
                    ya->threshold);
    else if (rc > 0)
        config_lerr(L, path, "value %s is out of range (0, 1), or (0%%, 100%%) as a percentage",
                    ya->threshold);

    snprintf(path, sizeof path, "%s.seed", at);
    if (ya->seed && config_parse_u64(ya->seed, &ab->seed) != 0)
        config_lerr(L, path, "expected an unsigned 64-bit integer, got '%s'", ya->seed);

    /* The block tags of an interleaved experiment travel to the sink, where
     * a second one's would mix with them (experiment.c refuses it). */
    snprintf(path, sizeof path, "%s.mode", at);
    for (size_t j = 0; ab->mode == CFG_AB_INTERLEAVED && j < i; j++)
        if (cfg->stages[j].ab && cfg->stages[j].ab->mode == CFG_AB_INTERLEAVED) {
            config_lerr(L, path,
                        "only one interleaved experiment runs in a pipeline at a time, and "
                        "stages[%zu].ab (line %d) is interleaved too",
                        j, cfg->stages[j].ab->line);
            break;
        }

    ab->plugin = dup_or_null(L, ya->plugin);
    ab->version = dup_or_null(L, ya->version);
}
