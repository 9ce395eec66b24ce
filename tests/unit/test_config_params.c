/*
 * test_config_params.c - the config module's checks that involve a plugin
 * (core/config/): a stage's params checked against the parameters a plugin
 * declares (config_check_params: unknown, missing, mistyped and out-of-range
 * values, and a plugin's own invalid default), a stage's ab: mapping with
 * B's params (config_check_ab_params), and the shipped examples under
 * config/, loaded from $OBS_SOURCE_DIR, whose params pass against the
 * declared ones.
 *
 * Errors are asserted with their exact "file:line:col: field" prefix.
 * Descriptors are built here; no plugin is opened.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "config_test_util.h"

/* ----------------------------------------------------- plugin params */

static const obs_param_desc window_params[] = {
    {.name = "window_ms",
     .type = OBS_PARAM_INT,
     .default_value = NULL,
     .min = 1,
     .max = 60000,
     .help = "window length in milliseconds"},
    {.name = "slide_ms",
     .type = OBS_PARAM_INT,
     .default_value = "250",
     .min = 1,
     .max = 60000,
     .help = "how far the window moves"},
    {.name = "max_symbols",
     .type = OBS_PARAM_INT,
     .default_value = "10000",
     .min = 1,
     .max = 1000000,
     .help = "symbols tracked"},
};

static const obs_stage_desc window_desc = {
    OBS_STAGE_HEADER,   .kind = OBS_KIND_TRANSFORM, .name = "xf_window",
    .version = "1.0.0", .params = window_params,    .n_params = 3,
};

static const obs_param_desc typed_params[] = {
    {.name = "ratio", .type = OBS_PARAM_DOUBLE, .default_value = "0.5", .min = 0, .max = 1},
    {.name = "enabled", .type = OBS_PARAM_BOOL, .default_value = "false", .min = 1, .max = 0},
    {.name = "label", .type = OBS_PARAM_STRING, .default_value = "abc", .min = 1, .max = 8},
    {.name = "count", .type = OBS_PARAM_INT, .default_value = "-3", .min = 1, .max = 0},
    {.name = "free", .type = OBS_PARAM_STRING, .default_value = "", .min = 0, .max = 0},
};

static const obs_stage_desc typed_desc = {
    OBS_STAGE_HEADER,       .kind = OBS_KIND_SINK, .name = "sink_typed",
    .params = typed_params, .n_params = 5,
};

/* A pipeline whose stage 1 has the given params lines (each "      k: v\n"):
 * the first params line is line 8, values start at column 7 + len(key) + 2. */
static obs_config *with_params(const char *params)
{
    char text[2048];
    snprintf(text, sizeof text,
             "pipeline: p\n"      /* 1 */
             "stages:\n"          /* 2 */
             "  - name: ticks\n"  /* 3 */
             "    plugin: gen\n"  /* 4 */
             "  - name: window\n" /* 5 */
             "    plugin: xf\n"   /* 6 */
             "    params:\n"      /* 7 */
             "%s"                 /* 8.. */
             "  - name: sink\n"
             "    plugin: sink_null\n",
             params);
    return load_ok(text);
}

static void expect_param_errors(const obs_config *cfg, const obs_stage_desc *desc, ...)
{
    char err[4096];
    cfg_param_values v = {(obs_param_value *)1, 7};
    int rc = config_check_params(cfg, 1, desc, &v, err, sizeof err);
    if (rc != OBS_ECONFIG)
        print_error("expected OBS_ECONFIG, got %d: %s\n", rc, err);
    assert_int_equal(rc, OBS_ECONFIG);
    assert_null(v.values);
    assert_int_equal(v.n_values, 0);
    va_list ap;
    va_start(ap, desc);
    for (const char *want; (want = va_arg(ap, const char *));) {
        if (!strstr(err, want))
            print_error("missing \"%s\" in:\n%s\n", want, err);
        assert_non_null(strstr(err, want));
    }
    va_end(ap);
}

#define EXPECT_PARAMS(cfg, desc, ...)                                                              \
    expect_param_errors(cfg, desc, __VA_ARGS__, (const char *)NULL)

static void test_params_ok(void **state)
{
    (void)state;
    obs_config *cfg = with_params("      window_ms: 1000\n      max_symbols: 20\n");
    cfg_param_values v;
    char err[1024];
    assert_int_equal(config_check_params(cfg, 1, &window_desc, &v, err, sizeof err), 0);
    assert_int_equal(v.n_values, 3);
    /* Declaration order, not file order; `s` always holds the text. */
    assert_string_equal(v.values[0].name, "window_ms");
    assert_int_equal(v.values[0].type, OBS_PARAM_INT);
    assert_int_equal(v.values[0].is_default, 0);
    assert_int_equal(v.values[0].i, 1000);
    assert_true(v.values[0].d == 1000.0);
    assert_string_equal(v.values[0].s, "1000");
    assert_string_equal(v.values[1].name, "slide_ms");
    assert_int_equal(v.values[1].is_default, 1);
    assert_int_equal(v.values[1].i, 250);
    assert_string_equal(v.values[1].s, "250");
    assert_int_equal(v.values[2].i, 20);
    obs_params p = {v.values, v.n_values, 0};
    assert_int_equal(obs_param_get(&p, "max_symbols")->i, 20);
    config_param_values_free(&v);
    assert_null(v.values);

    /* A plugin without parameters, and a stage without params. */
    static const obs_stage_desc bare = {OBS_STAGE_HEADER, .kind = OBS_KIND_SINK, .name = "bare"};
    assert_int_equal(config_check_params(cfg, 0, &bare, &v, err, sizeof err), 0);
    assert_int_equal(v.n_values, 0);
    config_param_values_free(&v);
    config_free(cfg);
}

static void test_params_unknown(void **state)
{
    (void)state;
    obs_config *cfg = with_params("      window_ms: 1000\n      windw_ms: 5\n");
    EXPECT_PARAMS(cfg, &window_desc,
                  "t.yaml:9:7: stages[1].params.windw_ms: unknown parameter 'windw_ms' for plugin "
                  "'xf_window'; allowed: window_ms, slide_ms, max_symbols; did you mean "
                  "'window_ms'?");
    static const obs_stage_desc bare = {OBS_STAGE_HEADER, .kind = OBS_KIND_SINK, .name = "bare"};
    EXPECT_PARAMS(cfg, &bare,
                  "t.yaml:8:7: stages[1].params.window_ms: unknown parameter 'window_ms' for "
                  "plugin 'bare'; it takes no parameters");
    config_free(cfg);
}

static void test_params_required(void **state)
{
    (void)state;
    obs_config *cfg = with_params("      slide_ms: 100\n");
    EXPECT_PARAMS(cfg, &window_desc,
                  "t.yaml:5:5: stages[1].params: missing required parameter 'window_ms' (int) for "
                  "plugin 'xf_window': window length in milliseconds");
    config_free(cfg);
}

static void test_params_types(void **state)
{
    (void)state;
    obs_config *cfg = with_params("      window_ms: 1.5\n"
                                  "      slide_ms: ' 5'\n"
                                  "      max_symbols: 99999999999999999999\n");
    EXPECT_PARAMS(cfg, &window_desc,
                  "t.yaml:8:18: stages[1].params.window_ms: expected an integer, got '1.5'",
                  "t.yaml:9:17: stages[1].params.slide_ms: expected an integer, got ' 5'",
                  "t.yaml:10:20: stages[1].params.max_symbols: integer out of the 64-bit range");
    config_free(cfg);

    cfg = with_params("      ratio: 1/2\n      enabled: maybe\n      count: \n");
    EXPECT_PARAMS(cfg, &typed_desc,
                  "t.yaml:8:14: stages[1].params.ratio: expected a number, got '1/2'",
                  "t.yaml:9:16: stages[1].params.enabled: expected a boolean (true/false, yes/no, "
                  "on/off), got 'maybe'",
                  "stages[1].params.count: expected an integer, got ''");
    config_free(cfg);

    cfg = with_params("      ratio: inf\n");
    EXPECT_PARAMS(cfg, &typed_desc, "t.yaml:8:14: stages[1].params.ratio: expected a number");
    config_free(cfg);

    static const struct {
        const char *text;
        int64_t v;
    } bools[] = {{"true", 1}, {"False", 0}, {"yes", 1}, {"no", 0}, {"ON", 1}, {"off", 0}};
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "      enabled: %s\n      ratio: 1e-1\n", bools[i].text);
        cfg = with_params(line);
        cfg_param_values v;
        char err[512];
        assert_int_equal(config_check_params(cfg, 1, &typed_desc, &v, err, sizeof err), 0);
        assert_int_equal(v.values[1].i, bools[i].v);
        assert_string_equal(v.values[1].s, bools[i].text);
        assert_true(v.values[0].d == 0.1);
        assert_int_equal(v.values[3].i, -3); /* min > max: no range */
        assert_string_equal(v.values[4].s, "");
        config_param_values_free(&v);
        config_free(cfg);
    }
}

static void test_params_ranges(void **state)
{
    (void)state;
    obs_config *cfg = with_params("      window_ms: 0\n      slide_ms: 60001\n");
    EXPECT_PARAMS(cfg, &window_desc,
                  "t.yaml:8:18: stages[1].params.window_ms: value 0 is out of range [1, 60000]",
                  "t.yaml:9:17: stages[1].params.slide_ms: value 60001 is out of range [1, 60000]");
    config_free(cfg);

    cfg = with_params("      ratio: 1.5\n      label: ''\n");
    EXPECT_PARAMS(cfg, &typed_desc,
                  "t.yaml:8:14: stages[1].params.ratio: value 1.5 is out of range [0, 1]",
                  "t.yaml:9:14: stages[1].params.label: length 0 is out of range [1, 8]");
    config_free(cfg);

    cfg = with_params("      label: abcdefghi\n");
    EXPECT_PARAMS(cfg, &typed_desc,
                  "t.yaml:8:14: stages[1].params.label: length 9 is out of range [1, 8]");
    config_free(cfg);
}

static void test_params_bad_default(void **state)
{
    (void)state;
    static const obs_param_desc bad[] = {
        {.name = "n", .type = OBS_PARAM_INT, .default_value = "ten", .min = 1, .max = 0},
    };
    static const obs_stage_desc desc = {OBS_STAGE_HEADER, .kind = OBS_KIND_SINK, .name = "buggy",
                                        .params = bad, .n_params = 1};
    obs_config *cfg = with_params("      {}\n");
    EXPECT_PARAMS(cfg, &desc,
                  "t.yaml:5:5: stages[1].params.n: plugin 'buggy' declares an invalid default "
                  "'ten' for parameter 'n' (int): expected an integer");
    cfg_param_values v;
    char err[256];
    assert_int_equal(config_check_params(cfg, 9, &desc, &v, err, sizeof err), OBS_EINVAL);
    config_free(cfg);
}

/* ------------------------------------------------- shipped examples */

static obs_config *load_example(const char *file)
{
    const char *src = getenv("OBS_SOURCE_DIR");
    char path[1024], err[2048];
    obs_config *cfg = NULL;
    assert_non_null(src);
    snprintf(path, sizeof path, "%s/config/%s", src, file);
    int rc = config_load(path, &cfg, err, sizeof err);
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg->path, path);
    snprintf(path, sizeof path, "%s/config", src);
    assert_string_equal(cfg->dir, path);
    return cfg;
}

static void test_example_demo(void **state)
{
    (void)state;
    obs_config *cfg = load_example("demo.yaml");
    assert_string_equal(cfg->pipeline, "demo");
    assert_int_equal(cfg->n_stages, 4);
    assert_string_equal(cfg->stages[0].plugin, "gen_market");
    assert_string_equal(cfg->stages[1].plugin, "xf_json_fast");
    assert_string_equal(cfg->stages[2].plugin, "xf_window");
    assert_string_equal(cfg->stages[3].plugin, "sink_rocksdb");
    assert_int_equal(cfg->stages[2].n_params, 2);
    assert_string_equal(cfg->stages[2].params[0].key, "window_ms");
    assert_string_equal(cfg->stages[2].params[0].value, "1000");
    assert_string_equal(cfg->stages[2].params[1].key, "slide_ms");
    assert_string_equal(cfg->stages[2].params[1].value, "250");
    assert_string_equal(cfg->stages[3].params[0].key, "path");
    assert_string_equal(cfg->stages[3].params[0].value, "demo-data/ticks");
    /* The parser's duet experiment, as packaging/demo.sh runs it. */
    assert_non_null(cfg->stages[1].ab);
    assert_string_equal(cfg->stages[1].ab->plugin, "xf_json_jansson");
    assert_null(cfg->stages[1].ab->version);
    assert_int_equal(cfg->stages[1].ab->params_given, 0);
    assert_int_equal(cfg->stages[1].ab->mode, CFG_AB_DUET);
    assert_int_equal(cfg->stages[1].ab->duration_ns, 10000000000ull);
    assert_null(cfg->stages[2].ab);
    assert_int_equal(cfg->n_load, 1);
    assert_int_equal(cfg->load[0].shape, CFG_SHAPE_CONSTANT);
    assert_true(cfg->load[0].rate == 200000.0);
    assert_int_equal(cfg->duration_ns, 30000000000ull);
    assert_int_equal(cfg->warmup_ns, 2000000000ull);
    assert_non_null(strstr(cfg->text, "pipeline: demo"));

    /* The window stage's params pass against the declared ones. */
    cfg_param_values v;
    char err[1024];
    assert_int_equal(config_check_params(cfg, 2, &window_desc, &v, err, sizeof err), 0);
    assert_int_equal(v.values[0].i, 1000);
    assert_int_equal(v.values[1].i, 250);
    config_param_values_free(&v);
    config_free(cfg);
}

static void test_example_null(void **state)
{
    (void)state;
    obs_config *cfg = load_example("null.yaml");
    assert_string_equal(cfg->pipeline, "null");
    assert_int_equal(cfg->n_stages, 3);
    assert_string_equal(cfg->stages[0].plugin, "gen_static");
    assert_string_equal(cfg->stages[1].plugin, "xf_pass");
    assert_string_equal(cfg->stages[2].plugin, "sink_null");
    assert_int_equal(cfg->n_load, 1);
    assert_int_equal(cfg->load[0].shape, CFG_SHAPE_MAX);
    assert_int_equal(cfg->duration_ns, 5000000000ull);
    config_free(cfg);
}

static void test_example_parallel(void **state)
{
    (void)state;
    obs_config *cfg = load_example("parallel.yaml");
    assert_string_equal(cfg->pipeline, "parallel");
    assert_int_equal(cfg->n_stages, 4);
    assert_int_equal(cfg->stages[0].parallelism, 1);
    for (size_t i = 1; i <= 2; i++) {
        assert_int_equal(cfg->stages[i].parallelism, 2);
        assert_int_equal(cfg->stages[i].partition, CFG_PARTITION_KEY);
    }
    assert_int_equal(cfg->stages[3].parallelism, 1);
    config_free(cfg);
}

/* ------------------------------------------------- a stage's ab: */

/* Stage 1 (parse) carries the ab: mapping given as the text of line 6. */
#define AB_HEAD                                                                                    \
    "pipeline: p\n"                                                                                \
    "stages:\n"                                                                                    \
    "  - {name: gen, plugin: gen_static}\n"                                                        \
    "  - name: parse\n"                                                                            \
    "    plugin: xf_json_fast\n"
#define AB_TAIL "  - {name: sink, plugin: sink_null}\n"

static void test_ab_valid(void **state)
{
    (void)state;
    obs_config *cfg = load_ok(AB_HEAD "    ab:\n"                       /* 6 */
                                      "      plugin: xf_json_jansson\n" /* 7 */
                                      "      version: \"1.0.0\"\n"      /* 8 */
                                      "      params: {fields: 3}\n"     /* 9 */
                                      "      mode: interleaved\n"       /* 10 */
                                      "      duration: 30s\n"           /* 11 */
                                      "      looks: 5\n"                /* 12 */
                                      "      block: 0.25s\n"            /* 13 */
                                      "      threshold: 2%\n"           /* 14 */
                                      "      seed: 7\n" AB_TAIL);       /* 15 */
    assert_null(cfg->stages[0].ab);
    assert_null(cfg->stages[2].ab);
    const cfg_ab *ab = cfg->stages[1].ab;
    assert_non_null(ab);
    assert_string_equal(ab->plugin, "xf_json_jansson");
    assert_string_equal(ab->version, "1.0.0");
    assert_int_equal(ab->params_given, 1);
    assert_int_equal(ab->n_params, 1);
    assert_string_equal(ab->params[0].key, "fields");
    assert_string_equal(ab->params[0].value, "3");
    assert_int_equal(ab->params[0].line, 9);
    assert_int_equal(ab->params[0].column, 24);
    assert_int_equal(ab->aa, 0);
    assert_int_equal(ab->mode, CFG_AB_INTERLEAVED);
    assert_int_equal(ab->duration_ns, 30000000000ull);
    assert_int_equal(ab->n_looks, 5);
    assert_int_equal(ab->block_ms, 250);
    assert_true(ab->threshold > 0.0199999 && ab->threshold < 0.0200001);
    assert_int_equal(ab->seed, 7);
    assert_int_equal(ab->line, 7);
    assert_int_equal(ab->column, 7);
    /* The stage's own params are not B's. */
    assert_int_equal(cfg->stages[1].n_params, 0);
    config_free(cfg);

    /* A/A: everything else is the experiment's default (0). */
    cfg = load_ok(AB_HEAD "    ab: {aa: true}\n" AB_TAIL);
    ab = cfg->stages[1].ab;
    assert_non_null(ab);
    assert_int_equal(ab->aa, 1);
    assert_null(ab->plugin);
    assert_null(ab->version);
    assert_int_equal(ab->params_given, 0);
    assert_int_equal(ab->mode, CFG_AB_DUET);
    assert_int_equal(ab->duration_ns, 0);
    assert_int_equal(ab->n_looks, 0);
    assert_int_equal(ab->block_ms, 0);
    assert_true(ab->threshold == 0);
    assert_int_equal(ab->seed, 0);
    assert_int_equal(ab->line, 6);
    assert_int_equal(ab->column, 9);
    config_free(cfg);

    /* Another version of the stage's plugin; B with all-default params
     * (params: {} is given, unlike a left-out or null one); a threshold as
     * a fraction; duet with its own block is no error when left out. */
    cfg = load_ok(AB_HEAD "    ab: {version: \"1.1.0\", threshold: 0.005, mode: duet}\n"
                          "  - name: p2\n"
                          "    plugin: xf_pass\n"
                          "    ab: {params: {}, duration: 24h}\n"
                          "  - name: p3\n"
                          "    plugin: xf_pass\n"
                          "    ab: {plugin: ./xf_other.so, params: ~, aa: off}\n" AB_TAIL);
    ab = cfg->stages[1].ab;
    assert_null(ab->plugin);
    assert_string_equal(ab->version, "1.1.0");
    assert_true(ab->threshold == 0.005);
    assert_int_equal(ab->mode, CFG_AB_DUET);
    ab = cfg->stages[2].ab;
    assert_int_equal(ab->params_given, 1);
    assert_int_equal(ab->n_params, 0);
    assert_int_equal(ab->duration_ns, 86400000000000ull);
    ab = cfg->stages[3].ab;
    assert_string_equal(ab->plugin, "./xf_other.so");
    assert_int_equal(ab->params_given, 0);
    assert_int_equal(ab->aa, 0);
    config_free(cfg);
}

static void test_ab_errors(void **state)
{
    (void)state;
    /* What libcyaml rejects: structure, unknown keys and modes. */
    EXPECT(AB_HEAD "    ab: {mdoe: duet}\n" AB_TAIL,
           "t.yaml:6:10: stages[1].ab.mdoe: unknown key 'mdoe'; allowed: plugin, version, params, "
           "aa, mode, duration, looks, block, threshold, seed; did you mean 'mode'?");
    EXPECT(AB_HEAD "    ab: {aa: true, mode: alternate}\n" AB_TAIL,
           "t.yaml:6:26: stages[1].ab.mode: unknown value 'alternate'; allowed: duet, interleaved");
    EXPECT(AB_HEAD "    ab: xf_json_jansson\n" AB_TAIL,
           "t.yaml:6:9: stages[1].ab: expected a mapping, got a scalar");
    EXPECT(AB_HEAD "    ab: {aa: true, aa: false}\n" AB_TAIL,
           "t.yaml:6:20: stages[1].ab.aa: duplicate key 'aa'");

    /* Where an experiment can run: transforms only. */
    EXPECT("pipeline: p\n"
           "stages:\n"
           "  - {name: gen, plugin: gen_static, ab: {aa: true}}\n"
           "  - {name: sink, plugin: sink_null, ab: {aa: true}}\n",
           "t.yaml:3:41: stages[0].ab: experiments run on transforms, and stages[0] is the "
           "pipeline's generator; put ab: on a stage between the first and the last",
           "t.yaml:4:41: stages[1].ab: experiments run on transforms, and stages[1] is the "
           "pipeline's sink");

    /* What B is. */
    EXPECT(AB_HEAD "    ab: {plugin: \"a b\", version: \"\"}\n" AB_TAIL,
           "t.yaml:6:18: stages[1].ab.plugin: invalid plugin 'a b': expected a plugin name",
           "t.yaml:6:34: stages[1].ab.version: version must not be empty");
    EXPECT(AB_HEAD "    ab: {aa: maybe}\n" AB_TAIL,
           "t.yaml:6:14: stages[1].ab.aa: expected a boolean (true/false, yes/no, on/off), got "
           "'maybe'");
    EXPECT(AB_HEAD "    ab: {aa: on, plugin: x, version: \"2\", params: {a: 1}}\n" AB_TAIL,
           "t.yaml:6:26: stages[1].ab.plugin: an A/A experiment runs the stage itself as B: leave "
           "out plugin, version and params (or set aa: false)",
           "t.yaml:6:38: stages[1].ab.version: an A/A experiment",
           "t.yaml:6:51: stages[1].ab.params: an A/A experiment");
    EXPECT(AB_HEAD "    ab: {aa: false}\n" AB_TAIL,
           "t.yaml:6:9: stages[1].ab: B would be the stage itself: give B a plugin, version or "
           "params, or set aa: true for an A/A experiment");
    EXPECT(AB_HEAD "    ab: {}\n" AB_TAIL, "t.yaml:6:9: stages[1].ab: B would be the stage itself");

    /* B's params, read like a stage's. */
    EXPECT(AB_HEAD "    ab: {params: [1]}\n" AB_TAIL,
           "t.yaml:6:18: stages[1].ab.params: expected a mapping of plugin parameters, got a "
           "sequence");
    EXPECT(AB_HEAD "    ab: {params: {a: 1}, params: {b: 2}}\n" AB_TAIL,
           "t.yaml:6:26: stages[1].ab.params: duplicate key 'params'");
    EXPECT(AB_HEAD "    ab: {params: {a: [1], b: 2, b: 3}}\n" AB_TAIL,
           "t.yaml:6:22: stages[1].ab.params.a: expected a scalar value, got a sequence",
           "t.yaml:6:33: stages[1].ab.params.b: duplicate parameter 'b' (first set at line 6, "
           "column 27)");

    /* The numbers. */
    EXPECT(AB_HEAD "    ab: {aa: true, duration: 10x}\n" AB_TAIL,
           "t.yaml:6:30: stages[1].ab.duration: invalid duration '10x': expected a number with a "
           "unit");
    EXPECT(AB_HEAD "    ab: {aa: true, duration: 0}\n" AB_TAIL,
           "t.yaml:6:30: stages[1].ab.duration: value 0 is out of range (0s, 24h] (leave it out "
           "for the rest of the run)");
    EXPECT(AB_HEAD "    ab: {aa: true, duration: 86401}\n" AB_TAIL,
           "t.yaml:6:30: stages[1].ab.duration: value 86401 is out of range (0s, 24h]");
    EXPECT(AB_HEAD "    ab: {aa: true, looks: 0}\n" AB_TAIL,
           "t.yaml:6:27: stages[1].ab.looks: value 0 is out of range [1, 1000]");
    EXPECT(AB_HEAD "    ab: {aa: true, looks: ten}\n" AB_TAIL,
           "t.yaml:6:27: stages[1].ab.looks: expected an unsigned integer, got 'ten'");
    EXPECT(AB_HEAD "    ab: {aa: true, block: 200ms}\n" AB_TAIL,
           "t.yaml:6:27: stages[1].ab.block: block applies to mode 'interleaved' only");
    EXPECT(AB_HEAD "    ab: {aa: true, mode: interleaved, block: 9ms}\n" AB_TAIL,
           "t.yaml:6:46: stages[1].ab.block: value 9ms is out of range [10ms, 10s]");
    EXPECT(AB_HEAD "    ab: {aa: true, mode: interleaved, block: 10001ms}\n" AB_TAIL,
           "t.yaml:6:46: stages[1].ab.block: value 10001ms is out of range [10ms, 10s]");
    EXPECT(AB_HEAD "    ab: {aa: true, mode: interleaved, block: 10.5ms}\n" AB_TAIL,
           "t.yaml:6:46: stages[1].ab.block: 10.5ms is not a whole number of milliseconds");
    EXPECT(AB_HEAD "    ab: {aa: true, mode: interleaved, block: soon}\n" AB_TAIL,
           "t.yaml:6:46: stages[1].ab.block: invalid duration 'soon'");
    EXPECT(AB_HEAD "    ab: {aa: true, threshold: 1.5%x}\n" AB_TAIL,
           "t.yaml:6:31: stages[1].ab.threshold: expected a fraction like 0.01 or a percentage "
           "like 1%, got '1.5%x'");
    EXPECT(AB_HEAD "    ab: {aa: true, threshold: 0}\n" AB_TAIL,
           "t.yaml:6:31: stages[1].ab.threshold: value 0 is out of range (0, 1), or (0%, 100%) as "
           "a percentage");
    EXPECT(AB_HEAD "    ab: {aa: true, threshold: 100%}\n" AB_TAIL,
           "t.yaml:6:31: stages[1].ab.threshold: value 100% is out of range (0, 1)");
    EXPECT(AB_HEAD "    ab: {aa: true, threshold: 1}\n" AB_TAIL,
           "t.yaml:6:31: stages[1].ab.threshold: value 1 is out of range (0, 1)");
    EXPECT(AB_HEAD "    ab: {aa: true, seed: -1}\n" AB_TAIL,
           "t.yaml:6:26: stages[1].ab.seed: expected an unsigned 64-bit integer, got '-1'");

    /* One interleaved experiment per pipeline at a time; duets may be many. */
    EXPECT(AB_HEAD "    ab: {aa: true, mode: interleaved}\n"
                   "  - name: p2\n"
                   "    plugin: xf_pass\n"
                   "    ab:\n"
                   "      aa: true\n"
                   "      mode: interleaved\n" AB_TAIL,
           "t.yaml:11:13: stages[2].ab.mode: only one interleaved experiment runs in a pipeline "
           "at a time, and stages[1].ab (line 6) is interleaved too");
    config_free(load_ok(
        AB_HEAD "    ab: {aa: true}\n"
                "  - {name: p2, plugin: xf_pass, ab: {aa: true}}\n"
                "  - {name: p3, plugin: xf_pass, ab: {aa: true, mode: interleaved}}\n" AB_TAIL));
}

/* B's params are checked against B's plugin when the experiment starts,
 * with errors that point into the file. */
static void test_ab_params(void **state)
{
    (void)state;
    obs_config *cfg = load_ok("pipeline: p\n"                                      /* 1 */
                              "stages:\n"                                          /* 2 */
                              "  - {name: gen, plugin: gen_static}\n"              /* 3 */
                              "  - name: window\n"                                 /* 4 */
                              "    plugin: xf_window\n"                            /* 5 */
                              "    params: {window_ms: 1000}\n"                    /* 6 */
                              "    ab:\n"                                          /* 7 */
                              "      params: {slide_ms: 100, max_symbols: 0}\n"    /* 8 */
                              "  - name: w2\n"                                     /* 9 */
                              "    plugin: xf_window\n"                            /* 10 */
                              "    params: {window_ms: 1000}\n"                    /* 11 */
                              "    ab: {params: {window_ms: 500, slide_ms: 50}}\n" /* 12 */
                              "  - {name: sink, plugin: sink_null}\n");
    char err[2048];
    cfg_param_values v = {(obs_param_value *)1, 7};
    assert_int_equal(config_check_ab_params(cfg, 1, &window_desc, &v, err, sizeof err),
                     OBS_ECONFIG);
    assert_null(v.values);
    if (!strstr(err, "t.yaml:8:7: stages[1].ab.params: missing required parameter 'window_ms' "
                     "(int) for plugin 'xf_window'") ||
        !strstr(err, "t.yaml:8:44: stages[1].ab.params.max_symbols: value 0 is out of range "
                     "[1, 1000000]"))
        print_error("%s\n", err);
    assert_non_null(strstr(err, "t.yaml:8:7: stages[1].ab.params: missing required parameter "
                                "'window_ms' (int) for plugin 'xf_window'"));
    assert_non_null(strstr(err, "t.yaml:8:44: stages[1].ab.params.max_symbols: value 0 is out "
                                "of range [1, 1000000]"));
    assert_null(strstr(err, "stages[1].params"));

    /* The stage's own params are A's, unchanged. */
    assert_int_equal(config_check_params(cfg, 1, &window_desc, &v, err, sizeof err), 0);
    assert_int_equal(v.values[0].i, 1000);
    config_param_values_free(&v);

    assert_int_equal(config_check_ab_params(cfg, 2, &window_desc, &v, err, sizeof err), 0);
    assert_int_equal(v.values[0].i, 500);
    assert_int_equal(v.values[1].i, 50);
    assert_int_equal(v.values[2].is_default, 1);
    config_param_values_free(&v);

    assert_int_equal(config_check_ab_params(cfg, 2, &typed_desc, &v, err, sizeof err), OBS_ECONFIG);
    assert_non_null(strstr(err, "t.yaml:12:19: stages[2].ab.params.window_ms: unknown parameter "
                                "'window_ms' for plugin 'sink_typed'; allowed: ratio"));

    /* A stage without ab: is a caller's error. */
    assert_int_equal(config_check_ab_params(cfg, 0, &window_desc, &v, err, sizeof err), OBS_EINVAL);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_ok),        cmocka_unit_test(test_params_unknown),
        cmocka_unit_test(test_params_required),  cmocka_unit_test(test_params_types),
        cmocka_unit_test(test_params_ranges),    cmocka_unit_test(test_params_bad_default),
        cmocka_unit_test(test_example_demo),     cmocka_unit_test(test_example_null),
        cmocka_unit_test(test_example_parallel), cmocka_unit_test(test_ab_valid),
        cmocka_unit_test(test_ab_errors),        cmocka_unit_test(test_ab_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
