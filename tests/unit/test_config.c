/*
 * test_config.c - unit tests of the config module (core/config/, every .c file):
 * pipeline.yaml loading, validation (load phases, a stage's ab:) and plugin
 * parameter checks.
 *
 * Every error test asserts the exact "file:line:col: field" prefix of the
 * message, since pointing the user at the right place is the point of the
 * module. Configurations are given as strings named "t.yaml"; the shipped
 * examples under config/ are loaded from $OBS_SOURCE_DIR.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

/* ----------------------------------------------------------- helpers */

static obs_config *load_ok(const char *text)
{
    char err[4096];
    obs_config *cfg = NULL;
    int rc = config_load_string("t.yaml", text, &cfg, err, sizeof err);
    if (rc != 0)
        print_error("unexpected error %d:\n%s\n", rc, err);
    assert_int_equal(rc, 0);
    assert_non_null(cfg);
    return cfg;
}

/* Loads `text`, expects OBS_ECONFIG and every one of the NULL-terminated
 * strings in the error text. */
static void expect_errors(const char *text, ...)
{
    char err[8192];
    obs_config *cfg = (obs_config *)1;
    int rc = config_load_string("t.yaml", text, &cfg, err, sizeof err);
    if (rc != OBS_ECONFIG)
        print_error("expected OBS_ECONFIG, got %d; err:\n%s\n", rc, err);
    assert_int_equal(rc, OBS_ECONFIG);
    assert_null(cfg);
    va_list ap;
    va_start(ap, text);
    for (const char *want; (want = va_arg(ap, const char *));) {
        if (!strstr(err, want))
            print_error("missing \"%s\" in:\n%s\n", want, err);
        assert_non_null(strstr(err, want));
    }
    va_end(ap);
}

#define EXPECT(text, ...) expect_errors(text, __VA_ARGS__, (const char *)NULL)

/* The smallest valid pipeline, to which tests prepend top-level keys. */
#define STAGES                                                                                     \
    "stages:\n"                                                                                    \
    "  - name: gen\n"                                                                              \
    "    plugin: gen_static\n"                                                                     \
    "  - name: sink\n"                                                                             \
    "    plugin: sink_null\n"

static size_t count_lines(const char *s)
{
    size_t n = 1;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* --------------------------------------------------------- valid files */

static const char full_text[] = "pipeline: demo                  # a comment\n" /* 1 */
                                "plugin_dirs: [../build/plugins, /opt/obs]\n"   /* 2 */
                                "batch_size: 512\n"                             /* 3 */
                                "ring_capacity: 32\n"                           /* 4 */
                                "max_batch_bytes: 8MiB\n"                       /* 5 */
                                "run:\n"                                        /* 6 */
                                "  duration: 30s\n"                             /* 7 */
                                "  warmup: 2s\n"                                /* 8 */
                                "  seed: 42\n"                                  /* 9 */
                                "http:\n"                                       /* 10 */
                                "  listen: '[::1]:9000'\n"                      /* 11 */
                                "store:\n"                                      /* 12 */
                                "  path: data\n"                                /* 13 */
                                "load:\n"                                       /* 14 */
                                "  - shape: constant\n"                         /* 15 */
                                "    rate: 200000\n"                            /* 16 */
                                "    duration: 10s\n"                           /* 17 */
                                "  - shape: max\n"                              /* 18 */
                                "stages:\n"                                     /* 19 */
                                "  - name: ticks\n"                             /* 20 */
                                "    plugin: gen_market\n"                      /* 21 */
                                "    version: \"1.0.0\"\n"                      /* 22 */
                                "    params: {symbols: 500, venue: \"x y\"}\n"  /* 23 */
                                "  - name: window\n"                            /* 24 */
                                "    plugin: ./xf_window.so\n"                  /* 25 */
                                "    params:\n"                                 /* 26 */
                                "      window_ms: 1000\n"                       /* 27 */
                                "      slide_ms: '250'\n";                      /* 28 */

static void test_valid_full(void **state)
{
    (void)state;
    obs_config *cfg = load_ok(full_text);
    assert_string_equal(cfg->path, "t.yaml");
    assert_string_equal(cfg->dir, ".");
    assert_string_equal(cfg->text, full_text);
    assert_string_equal(cfg->pipeline, "demo");
    assert_int_equal(cfg->n_plugin_dirs, 2);
    assert_string_equal(cfg->plugin_dirs[0], "../build/plugins");
    assert_string_equal(cfg->plugin_dirs[1], "/opt/obs");
    assert_int_equal(cfg->batch_size, 512);
    assert_int_equal(cfg->ring_capacity, 32);
    assert_int_equal(cfg->max_batch_bytes, 8u << 20);
    assert_int_equal(cfg->duration_ns, 30000000000ull);
    assert_int_equal(cfg->warmup_ns, 2000000000ull);
    assert_int_equal(cfg->seed, 42);
    assert_string_equal(cfg->http_listen, "[::1]:9000");
    assert_string_equal(cfg->store_path, "data");

    assert_int_equal(cfg->n_load, 2);
    assert_int_equal(cfg->load[0].shape, CFG_SHAPE_CONSTANT);
    assert_true(cfg->load[0].rate == 200000.0);
    assert_int_equal(cfg->load[0].duration_ns, 10000000000ull);
    assert_int_equal(cfg->load[1].shape, CFG_SHAPE_MAX);
    assert_int_equal(cfg->load[1].duration_ns, 0);

    assert_int_equal(cfg->n_stages, 2);
    const cfg_stage *s0 = &cfg->stages[0], *s1 = &cfg->stages[1];
    assert_string_equal(s0->name, "ticks");
    assert_string_equal(s0->plugin, "gen_market");
    assert_string_equal(s0->version, "1.0.0");
    assert_int_equal(s0->line, 20);
    assert_int_equal(s0->column, 5);
    assert_int_equal(s0->n_params, 2);
    assert_string_equal(s0->params[0].key, "symbols");
    assert_string_equal(s0->params[0].value, "500");
    assert_int_equal(s0->params[0].key_line, 23);
    assert_int_equal(s0->params[0].key_column, 14);
    assert_int_equal(s0->params[0].line, 23);
    assert_int_equal(s0->params[0].column, 23);
    assert_string_equal(s0->params[1].key, "venue");
    assert_string_equal(s0->params[1].value, "x y");
    assert_int_equal(s0->params[1].column, 35);

    assert_string_equal(s1->name, "window");
    assert_string_equal(s1->plugin, "./xf_window.so");
    assert_null(s1->version);
    assert_int_equal(s1->line, 24);
    assert_int_equal(s1->n_params, 2);
    assert_string_equal(s1->params[0].key, "window_ms");
    assert_string_equal(s1->params[0].value, "1000");
    assert_int_equal(s1->params[0].key_line, 27);
    assert_int_equal(s1->params[0].key_column, 7);
    assert_int_equal(s1->params[0].line, 27);
    assert_int_equal(s1->params[0].column, 18);
    assert_string_equal(s1->params[1].value, "250");
    config_free(cfg);
}

static void test_defaults(void **state)
{
    (void)state;
    obs_config *cfg = load_ok("pipeline: p\n" STAGES);
    assert_string_equal(cfg->pipeline, "p");
    assert_int_equal(cfg->n_plugin_dirs, 0);
    assert_null(cfg->plugin_dirs);
    assert_int_equal(cfg->batch_size, 256);
    assert_int_equal(cfg->ring_capacity, 16);
    assert_int_equal(cfg->max_batch_bytes, 64u << 20);
    assert_int_equal(cfg->max_batch_delay_ns, 200000);
    assert_int_equal(cfg->realtime_priority, 0);
    assert_int_equal(cfg->duration_ns, 0);
    assert_int_equal(cfg->warmup_ns, 0);
    assert_int_equal(cfg->seed, 1);
    assert_string_equal(cfg->http_listen, "127.0.0.1:9464");
    assert_string_equal(cfg->store_path, "observatory-data");
    assert_int_equal(cfg->n_load, 1);
    assert_int_equal(cfg->load[0].shape, CFG_SHAPE_MAX);
    assert_int_equal(cfg->load[0].duration_ns, 0);
    assert_int_equal(cfg->n_stages, 2);
    assert_int_equal(cfg->stages[0].n_params, 0);
    assert_null(cfg->stages[1].version);
    config_free(cfg);

    /* Empty params, nested mappings given but empty of keys, flow style. */
    cfg = load_ok("{pipeline: p, run: {}, stages: [{name: a, plugin: b, params: {}},"
                  " {name: c, plugin: d, params: }]}");
    assert_int_equal(cfg->stages[0].n_params, 0);
    assert_int_equal(cfg->stages[1].n_params, 0);
    config_free(cfg);
}

static void test_dir(void **state)
{
    (void)state;
    static const struct {
        const char *name, *dir;
    } cases[] = {{"t.yaml", "."}, {"a/b/t.yaml", "a/b"}, {"/etc/t.yaml", "/etc"}, {"/t.yaml", "/"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        obs_config *cfg = NULL;
        char err[512];
        assert_int_equal(
            config_load_string(cases[i].name, "pipeline: p\n" STAGES, &cfg, err, sizeof err), 0);
        assert_string_equal(cfg->path, cases[i].name);
        assert_string_equal(cfg->dir, cases[i].dir);
        config_free(cfg);
    }
}

/* The generator's punctuality knobs: max_batch_delay, run.realtime_priority. */
static void test_batch_delay_and_realtime(void **state)
{
    (void)state;
    obs_config *cfg =
        load_ok("pipeline: p\nmax_batch_delay: 25us\nrun: {realtime_priority: 50}\n" STAGES);
    assert_int_equal(cfg->max_batch_delay_ns, 25000);
    assert_int_equal(cfg->realtime_priority, 50);
    config_free(cfg);
    cfg = load_ok("pipeline: p\nmax_batch_delay: 0\n" STAGES);
    assert_int_equal(cfg->max_batch_delay_ns, 0);
    config_free(cfg);
    EXPECT("pipeline: p\nmax_batch_delay: soon\n" STAGES,
           "t.yaml:2:18: max_batch_delay: invalid duration 'soon': expected a number with a unit "
           "ns, us, ms, s, m or h (e.g. 250ms, 30s, 2m); a bare number means seconds");
    EXPECT("pipeline: p\nmax_batch_delay: 2s\n" STAGES,
           "t.yaml:2:18: max_batch_delay: value 2s is out of range [0s, 1s]");
    EXPECT("pipeline: p\nrun: {realtime_priority: 100}\n" STAGES,
           "t.yaml:2:26: run.realtime_priority: value 100 is out of range [0, 99]");
}

/* ---------------------------------------------------- structural errors */

static void test_unknown_top_key(void **state)
{
    (void)state;
    EXPECT("pipelin: p\n" STAGES,
           "t.yaml:1:1: pipelin: unknown key 'pipelin'; allowed: pipeline, plugin_dirs, "
           "batch_size, ring_capacity, max_batch_bytes, max_batch_delay, run, http, store, load, "
           "stages; "
           "did you mean 'pipeline'?");
    EXPECT("pipeline: p\n" STAGES "run:\n  duration: 1s\n  seeed: 4\n",
           "t.yaml:9:3: run.seeed: unknown key 'seeed'; allowed: duration, warmup, seed, "
           "realtime_priority; did you "
           "mean 'seed'?");
}

static void test_unknown_stage_key(void **state)
{
    (void)state;
    EXPECT("pipeline: p\n"
           "stages:\n"
           "  - name: a\n"
           "    plugin: b\n"
           "  - name: c\n"
           "    plugn: d\n",
           "t.yaml:6:5: stages[1].plugn: unknown key 'plugn'; allowed: name, plugin, version, "
           "parallelism, partition, params, ab; did you mean 'plugin'?");
    EXPECT("pipeline: p\n" STAGES "load:\n  - {shape: max, rat: 5}\n",
           "t.yaml:8:18: load[0].rat: unknown key 'rat'; allowed: shape, rate, duration");
}

/* parallelism and partition: defaults, values, and errors with positions. */
static void test_parallelism(void **state)
{
    (void)state;
    obs_config *cfg = load_ok("pipeline: p\n" STAGES);
    assert_int_equal(cfg->stages[1].parallelism, 1);
    assert_int_equal(cfg->stages[1].partition, CFG_PARTITION_ROUND_ROBIN);
    config_free(cfg);
    cfg = load_ok("pipeline: p\n"
                  "stages:\n"
                  "  - {name: gen, plugin: gen_static}\n"
                  "  - {name: parse, plugin: xf_pass, parallelism: 4}\n"
                  "  - {name: sink, plugin: sink_null, parallelism: 2, partition: key}\n");
    assert_int_equal(cfg->stages[0].parallelism, 1);
    assert_int_equal(cfg->stages[1].parallelism, 4);
    assert_int_equal(cfg->stages[1].partition, CFG_PARTITION_ROUND_ROBIN);
    assert_int_equal(cfg->stages[2].parallelism, 2);
    assert_int_equal(cfg->stages[2].partition, CFG_PARTITION_KEY);
    config_free(cfg);
    EXPECT("pipeline: p\n"
           "stages:\n"
           "  - {name: gen, plugin: gen_static, parallelism: 2}\n"
           "  - {name: sink, plugin: sink_null}\n",
           "t.yaml:3:50: stages[0].parallelism: stage 'gen' is the generator, which runs as one "
           "instance: parallelism applies to transforms and sinks");
    EXPECT("pipeline: p\n"
           "stages:\n"
           "  - {name: gen, plugin: gen_static}\n"
           "  - {name: sink, plugin: sink_null, parallelism: 0}\n",
           "t.yaml:4:50: stages[1].parallelism: value 0 is out of range [1, 64]");
    EXPECT("pipeline: p\n"
           "stages:\n"
           "  - {name: gen, plugin: gen_static}\n"
           "  - {name: sink, plugin: sink_null, parallelism: 2, partition: hash}\n",
           "t.yaml:4:64: stages[1].partition: unknown partition 'hash'; allowed: round_robin, key");
}

static void test_missing_key(void **state)
{
    (void)state;
    EXPECT("pipeline: p\n"
           "stages:\n"
           "  - name: a\n"
           "    plugin: b\n"
           "  - name: c\n",
           "t.yaml:5:5: stages[1]: missing required key 'plugin'");
    EXPECT(STAGES, "t.yaml:1:1: missing required key 'pipeline'");
    EXPECT("pipeline: p\n", "t.yaml:1:1: missing required key 'stages'");
    EXPECT("pipeline: p\n" STAGES "load:\n  - rate: 5\n",
           "t.yaml:8:5: load[0]: missing required key 'shape'");
}

static void test_duplicate_key(void **state)
{
    (void)state;
    EXPECT("pipeline: p\n" STAGES "pipeline: q\n",
           "t.yaml:7:1: pipeline: duplicate key 'pipeline'");
    EXPECT("pipeline: p\n"
           "stages:\n"
           "  - name: a\n"
           "    plugin: b\n"
           "    params: {x: 1}\n"
           "    params: {y: 1}\n"
           "  - {name: c, plugin: d}\n",
           "t.yaml:6:5: stages[0].params: duplicate key 'params'");
}

static void test_wrong_shape(void **state)
{
    (void)state;
    EXPECT("pipeline: p\nstages: 5\n", "t.yaml:2:9: stages: expected a sequence, got a scalar");
    EXPECT("pipeline: [p]\n" STAGES, "t.yaml:1:11: pipeline: expected a string, got a sequence");
    EXPECT("pipeline: p\n"
           "stages:\n"
           "  - name: {x: 1}\n"
           "    plugin: b\n",
           "t.yaml:3:11: stages[0].name: expected a string, got a mapping");
    EXPECT("pipeline: p\nstages:\n  - a\n  - b\n",
           "t.yaml:3:5: stages[0]: expected a mapping, got a scalar");
    EXPECT("- 1\n- 2\n", "t.yaml:1:1: expected a mapping, got a sequence");
    EXPECT("just text\n", "t.yaml:1:1: expected a mapping, got a scalar");
    EXPECT("pipeline: p\nrun: 5\n" STAGES, "t.yaml:2:6: run: expected a mapping, got a scalar");
}

static void test_unknown_shape(void **state)
{
    (void)state;
    EXPECT("pipeline: p\n" STAGES "load:\n  - shape: sawtooth\n",
           "t.yaml:8:12: load[0].shape: unknown value 'sawtooth'; allowed: constant, max, poisson, "
           "ramp, steps, sine, diurnal, bursts, replay");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    EXPECT("pipeline: p\nstages: [a, b\n", "t.yaml:3:1: syntax error: did not find expected ',' "
                                           "or ']' (while parsing a flow sequence at line 2, "
                                           "column 9)");
    EXPECT("pipeline: p\n\tstages: []\n", "t.yaml:2:1: syntax error: found a tab character "
                                          "that violates indentation");
    EXPECT("", "t.yaml:1:1: empty configuration");
    EXPECT("# only a comment\n\n", "t.yaml:1:1: empty configuration");
    EXPECT("pipeline: p\n" STAGES "---\npipeline: q\n",
           "t.yaml:7:1: only one YAML document is allowed");
    EXPECT("pipeline: p\nstages: *x\n", "t.yaml:2:9: syntax error: found undefined alias");
    EXPECT("pipeline: \"a\xff\"\n" STAGES, "t.yaml:1:13: syntax error: invalid");
}

static void test_alias_rejected(void **state)
{
    (void)state;
    EXPECT("pipeline: &n p\n"
           "stages:\n"
           "  - name: *n\n"
           "    plugin: b\n"
           "  - {name: c, plugin: d}\n",
           "t.yaml:3:11: aliases (*name) are not supported");
    EXPECT("pipeline: p\n"
           "stages:\n"
           "  - {name: a, plugin: b, params: {x: &v 1}}\n"
           "  - {name: c, plugin: d, params: {x: *v}}\n",
           "t.yaml:4:38: aliases (*name) are not supported");
}

/* ------------------------------------------------------ semantic errors */

static void test_stage_names(void **state)
{
    (void)state;
    EXPECT("pipeline: p\n"
           "stages:\n"
           "  - name: a\n"
           "    plugin: b\n"
           "  - name: c\n"
           "    plugin: d\n"
           "  - name: a\n"
           "    plugin: e\n",
           "t.yaml:7:11: stages[2].name: duplicate stage name 'a' (also the name of stages[0], "
           "line 3)");
    EXPECT("pipeline: p\n"
           "stages:\n"
           "  - name: Gen\n"
           "    plugin: b\n"
           "  - {name: \"c d\", plugin: d}\n",
           "t.yaml:3:11: stages[0].name: invalid stage name 'Gen': use 1 to 63 characters from "
           "[a-z0-9_-]",
           "t.yaml:5:12: stages[1].name: invalid stage name 'c d'");
    EXPECT("pipeline: p\nstages:\n  - {name: a, plugin: \"\"}\n  - {name: b, plugin: 'x/y'}\n",
           "t.yaml:3:23: stages[0].plugin: invalid plugin ''",
           "t.yaml:4:23: stages[1].plugin: invalid plugin 'x/y': expected a plugin name");
    EXPECT("pipeline: p\nstages:\n  - {name: a, plugin: b, version: ''}\n  - {name: b, plugin: "
           "c}\n",
           "t.yaml:3:35: stages[0].version: version must not be empty");
}

static void test_too_few_stages(void **state)
{
    (void)state;
    EXPECT(
        "pipeline: p\nstages:\n  - name: a\n    plugin: b\n",
        "t.yaml:3:3: stages: a pipeline needs at least 2 stages (a generator and a sink), got 1");
    EXPECT("pipeline: p\nstages: []\n", "t.yaml:2:9: stages: a pipeline needs at least 2 stages");
}

static void test_pipeline_name(void **state)
{
    (void)state;
    EXPECT("pipeline: a b\n" STAGES,
           "t.yaml:1:11: pipeline: invalid pipeline name 'a b': use 1 to 63 characters from "
           "[A-Za-z0-9_.-]");
    EXPECT("pipeline: ''\n" STAGES, "t.yaml:1:11: pipeline: invalid pipeline name ''");
    EXPECT("pipeline: "
           "a234567890123456789012345678901234567890123456789012345678901234\n" STAGES,
           "t.yaml:1:11: pipeline: invalid pipeline name");
    obs_config *cfg = load_ok("pipeline: My-Pipe_1.0\n" STAGES);
    config_free(cfg);
}

static void test_ranges(void **state)
{
    (void)state;
    EXPECT("batch_size: 0\npipeline: p\n" STAGES,
           "t.yaml:1:13: batch_size: value 0 is out of range [1, 65536]");
    EXPECT("batch_size: 65537\npipeline: p\n" STAGES,
           "t.yaml:1:13: batch_size: value 65537 is out of range [1, 65536]");
    EXPECT("batch_size: 12a\npipeline: p\n" STAGES,
           "t.yaml:1:13: batch_size: expected an unsigned integer, got '12a'");
    EXPECT("batch_size: -1\npipeline: p\n" STAGES,
           "t.yaml:1:13: batch_size: expected an unsigned integer, got '-1'");
    EXPECT("ring_capacity: 24\npipeline: p\n" STAGES,
           "t.yaml:1:16: ring_capacity: value 24 is not a power of two");
    EXPECT("ring_capacity: 1\npipeline: p\n" STAGES,
           "t.yaml:1:16: ring_capacity: value 1 is out of range [2, 4096]");
    EXPECT("ring_capacity: 8192\npipeline: p\n" STAGES,
           "t.yaml:1:16: ring_capacity: value 8192 is out of range [2, 4096]");
    EXPECT("max_batch_bytes: 1KiB\npipeline: p\n" STAGES,
           "t.yaml:1:18: max_batch_bytes: value 1KiB is out of range [4KiB, 1GiB]");
    EXPECT("max_batch_bytes: 2GiB\npipeline: p\n" STAGES,
           "t.yaml:1:18: max_batch_bytes: value 2GiB is out of range");
    EXPECT("max_batch_bytes: 64MB\npipeline: p\n" STAGES,
           "t.yaml:1:18: max_batch_bytes: expected a size in bytes with an optional KiB, MiB or "
           "GiB suffix, got '64MB'");
    EXPECT("run: {seed: x1}\npipeline: p\n" STAGES,
           "t.yaml:1:13: run.seed: expected an unsigned 64-bit integer, got 'x1'");

    static const struct {
        const char *text;
        uint64_t bytes;
    } sizes[] = {{"4096", 4096},     {"4KiB", 4096},   {"64MiB", 64u << 20},
                 {"1GiB", 1u << 30}, {"5000 B", 5000}, {"2 MiB", 2u << 20}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "max_batch_bytes: %s\npipeline: p\n" STAGES, sizes[i].text);
        obs_config *cfg = load_ok(text);
        assert_int_equal(cfg->max_batch_bytes, sizes[i].bytes);
        config_free(cfg);
    }
    obs_config *cfg = load_ok("batch_size: 65536\nring_capacity: 4096\nrun: {seed: "
                              "18446744073709551615}\npipeline: p\n" STAGES);
    assert_int_equal(cfg->batch_size, 65536);
    assert_int_equal(cfg->ring_capacity, 4096);
    assert_true(cfg->seed == UINT64_MAX);
    config_free(cfg);
}

/* Independent errors are all reported, one per line, in file order. */
static void test_many_errors(void **state)
{
    (void)state;
    const char *text = "pipeline: p!\n"
                       "batch_size: 0\n"
                       "ring_capacity: 3\n"
                       "run: {duration: 30x}\n"
                       "http: {listen: localhost}\n" STAGES;
    char err[4096];
    obs_config *cfg = NULL;
    assert_int_equal(config_load_string("t.yaml", text, &cfg, err, sizeof err), OBS_ECONFIG);
    assert_non_null(strstr(err, "t.yaml:1:11: pipeline: "));
    assert_non_null(strstr(err, "\nt.yaml:2:13: batch_size: "));
    assert_non_null(strstr(err, "\nt.yaml:3:16: ring_capacity: "));
    assert_non_null(strstr(err, "\nt.yaml:4:17: run.duration: "));
    assert_non_null(strstr(err, "\nt.yaml:5:16: http.listen: "));
    assert_int_equal(count_lines(err), 5);
}

static void test_durations_in_file(void **state)
{
    (void)state;
    EXPECT("run:\n  duration: 30x\npipeline: p\n" STAGES,
           "t.yaml:2:13: run.duration: invalid duration '30x': expected a number with a unit ns, "
           "us, ms, s, m or h");
    EXPECT("run:\n  duration: 10s\n  warmup: 10s\npipeline: p\n" STAGES,
           "t.yaml:3:11: run.warmup: warmup 10s must be shorter than the run duration 10s");
    EXPECT("pipeline: p\n" STAGES "load:\n  - {shape: max, duration: -1s}\n",
           "t.yaml:8:28: load[0].duration: invalid duration '-1s'");
    EXPECT("pipeline: p\n" STAGES "load:\n  - shape: max\n  - shape: max\n",
           "t.yaml:8:5: load[0]: only the last phase may run until the end");
    EXPECT("pipeline: p\n" STAGES "load:\n  - {shape: max, duration: 0}\n  - shape: max\n",
           "t.yaml:8:28: load[0].duration: only the last phase may run until the end");
    /* Zero duration means "until interrupted"; warmup is then unbounded. */
    obs_config *cfg = load_ok("run: {duration: 0, warmup: 5s}\npipeline: p\n" STAGES);
    assert_int_equal(cfg->duration_ns, 0);
    assert_int_equal(cfg->warmup_ns, 5000000000ull);
    config_free(cfg);
}

static void test_rates(void **state)
{
    (void)state;
    EXPECT("pipeline: p\n" STAGES "load:\n  - shape: constant\n    rate: 0\n",
           "t.yaml:9:11: load[0].rate: rate must be > 0 records per second, got 0");
    EXPECT("pipeline: p\n" STAGES "load:\n  - shape: constant\n    rate: -5\n",
           "t.yaml:9:11: load[0].rate: rate must be > 0 records per second, got -5");
    EXPECT("pipeline: p\n" STAGES "load:\n  - shape: constant\n    rate: fast\n",
           "t.yaml:9:11: load[0].rate: expected a number of records per second, got 'fast'");
    EXPECT("pipeline: p\n" STAGES "load:\n  - shape: constant\n    rate: .nan\n",
           "t.yaml:9:11: load[0].rate: expected a number");
    EXPECT("pipeline: p\n" STAGES "load:\n  - shape: constant\n",
           "t.yaml:8:5: load[0]: shape 'constant' needs a rate");
    EXPECT("pipeline: p\n" STAGES "load:\n  - {shape: max, rate: 5}\n",
           "t.yaml:8:24: load[0].rate: 'rate' does not apply to shape 'max' (only to: constant, "
           "poisson, sine, diurnal, bursts)");
    EXPECT("pipeline: p\n" STAGES "load: []\n", "t.yaml:7:7: load: needs at least one phase");
    obs_config *cfg = load_ok("pipeline: p\n" STAGES "load:\n  - {shape: constant, rate: 2.5e3}\n");
    assert_true(cfg->load[0].rate == 2500.0);
    config_free(cfg);
}

static void test_listen(void **state)
{
    (void)state;
    static const char *const good[] = {"127.0.0.1:9464", "0.0.0.0:0",  "localhost:80",
                                       "[::1]:9464",     "[::]:65535", "metrics.example.com:1"};
    static const char *const bad[] = {"localhost",   "127.0.0.1", ":9464",        "::1:9464",
                                      "[::1]9464",   "[zz]:1",    "1.2.3.4.5:80", "host:65536",
                                      "host:-1",     "host:http", "bad_host:80",  "a..b:80",
                                      "300.1.1.1:1", "[::1]:",    "-a:1"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "http: {listen: '%s'}\npipeline: p\n" STAGES, good[i]);
        obs_config *cfg = load_ok(text);
        assert_string_equal(cfg->http_listen, good[i]);
        config_free(cfg);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256], want[128];
        snprintf(text, sizeof text, "http: {listen: '%s'}\npipeline: p\n" STAGES, bad[i]);
        snprintf(want, sizeof want,
                 "t.yaml:1:16: http.listen: invalid listen address '%s': ", bad[i]);
        EXPECT(text, want);
    }
}

static void test_params_shape(void **state)
{
    (void)state;
    EXPECT("pipeline: p\n"
           "stages:\n"
           "  - name: a\n"
           "    plugin: b\n"
           "    params:\n"
           "      symbols: [1, 2]\n"
           "      venue: {x: 1}\n"
           "  - {name: c, plugin: d, params: 5}\n",
           "t.yaml:6:16: stages[0].params.symbols: expected a scalar value, got a sequence",
           "t.yaml:7:14: stages[0].params.venue: expected a scalar value, got a mapping",
           "t.yaml:8:34: stages[1].params: expected a mapping of plugin parameters, got a scalar");
    EXPECT("pipeline: p\n"
           "stages:\n"
           "  - name: a\n"
           "    plugin: b\n"
           "    params:\n"
           "      n: 1\n"
           "      n: 2\n"
           "  - {name: c, plugin: d}\n",
           "t.yaml:7:7: stages[0].params.n: duplicate parameter 'n' (first set at line 6, column "
           "7)");
    EXPECT("pipeline: p\nstages:\n  - {name: a, plugin: b, params: {[k]: 1}}\n  - {name: c, "
           "plugin: d}\n",
           "t.yaml:3:35: mapping keys must be scalars, got a sequence");
    EXPECT("pipeline: p\n[a]: 1\n" STAGES,
           "t.yaml:2:1: mapping keys must be scalars, got a sequence");
}

static void test_missing_file(void **state)
{
    (void)state;
    char err[512];
    obs_config *cfg = (obs_config *)1;
    assert_int_equal(config_load("/nonexistent/t.yaml", &cfg, err, sizeof err), OBS_EIO);
    assert_null(cfg);
    assert_string_equal(err, "/nonexistent/t.yaml: cannot read: No such file or directory");
    assert_int_equal(config_load("/", &cfg, err, sizeof err), OBS_EIO);
    assert_string_equal(err, "/: cannot read: Is a directory");
}

static void test_small_error_buffer(void **state)
{
    (void)state;
    char err[8];
    obs_config *cfg = NULL;
    assert_int_equal(
        config_load_string("t.yaml", "batch_size: 0\nring_capacity: 3\n", &cfg, err, sizeof err),
        OBS_ECONFIG);
    assert_string_equal(err, "t.yaml:");
    assert_int_equal(config_load_string("t.yaml", "pipeline: p!\n" STAGES, &cfg, NULL, 0),
                     OBS_ECONFIG);
    assert_int_equal(config_load_string("t.yaml", NULL, &cfg, err, sizeof err), OBS_EINVAL);
}

/* Far more errors than are shown: the tail says how many were left out. */
static void test_error_limit(void **state)
{
    (void)state;
    char text[8192] = "pipeline: p\nstages:\n";
    for (int i = 0; i < 30; i++) {
        size_t n = strlen(text);
        snprintf(text + n, sizeof text - n, "  - {name: X%d, plugin: p}\n", i);
    }
    EXPECT(text, "t.yaml:3:12: stages[0].name: invalid stage name 'X0'",
           "\nt.yaml: 10 more errors not shown");
}

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

/* ---------------------------------------------------------- durations */

static void test_parse_duration(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t ns;
    } ok[] = {
        {"0", 0},
        {"10ns", 10},
        {"1500us", 1500000},
        {"2\xc2\xb5s", 2000},
        {"250ms", 250000000},
        {"30s", 30000000000ull},
        {"30", 30000000000ull},
        {"2m", 120000000000ull},
        {"1h", 3600000000000ull},
        {"1.5s", 1500000000},
        {"0.25ms", 250000},
        {"1.0000000001s", 1000000000},
        {"18446744073709551615ns", UINT64_MAX},
        {"5124095h", 5124095ull * 3600000000000ull},
    };
    static const char *const bad[] = {
        "",         "30x",    "-1s", "+1s", " 1s", "1s ",   "1 s",
        "s",        "1.s",    ".5s", "1e3", "1ss", "1m30s", "18446744073709551616ns",
        "5124096h", "1.5.5s", "nan"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t ns = 12345;
        if (config_parse_duration(ok[i].text, &ns) != 0 || ns != ok[i].ns)
            print_error("'%s' -> %llu\n", ok[i].text, (unsigned long long)ns);
        assert_int_equal(config_parse_duration(ok[i].text, &ns), 0);
        assert_true(ns == ok[i].ns);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ns = 12345;
        if (config_parse_duration(bad[i], &ns) != OBS_EINVAL)
            print_error("'%s' accepted\n", bad[i]);
        assert_int_equal(config_parse_duration(bad[i], &ns), OBS_EINVAL);
        assert_true(ns == 12345);
    }
    uint64_t ns;
    assert_int_equal(config_parse_duration(NULL, &ns), OBS_EINVAL);
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

/* ------------------------------------------------ load shapes */

#define LOAD "pipeline: p\n" STAGES "load:\n" /* phases start on line 8 */

static void test_load_shapes_valid(void **state)
{
    (void)state;
    /* "A market open: ramp to 200k/s in 30 s, Poisson, with 5x bursts every
     * 10 s", then the same at a steady 200k/s. */
    obs_config *cfg = load_ok(LOAD "  - shape: ramp\n"
                                   "    to: 200000\n"
                                   "    duration: 30s\n"
                                   "    arrival: poisson\n"
                                   "    burst_factor: 5\n"
                                   "    burst: 500ms\n"
                                   "    gap: 9.5s\n"
                                   "  - {shape: poisson, rate: 200000, burst_factor: 5, burst: 500ms,"
                                   " gap: 9.5s, distribution: pareto, alpha: 2.5}\n");
    assert_int_equal(cfg->n_load, 2);
    const cfg_load_phase *r = &cfg->load[0], *q = &cfg->load[1];
    assert_int_equal(r->shape, CFG_SHAPE_RAMP);
    assert_true(r->from == 0 && r->to == 200000);
    assert_int_equal(r->duration_ns, 30000000000ull);
    assert_int_equal(r->arrival, CFG_ARRIVAL_POISSON);
    assert_true(r->burst_factor == 5 && r->burst_rate == 0);
    assert_int_equal(r->burst_ns, 500000000ull);
    assert_int_equal(r->gap_ns, 9500000000ull);
    assert_int_equal(r->burst_dist, CFG_DIST_FIXED);
    assert_int_equal(q->shape, CFG_SHAPE_POISSON);
    assert_int_equal(q->arrival, CFG_ARRIVAL_POISSON);
    assert_true(q->rate == 200000);
    assert_int_equal(q->burst_dist, CFG_DIST_PARETO);
    assert_true(q->alpha == 2.5);
    assert_int_equal(q->duration_ns, 0);
    config_free(cfg);

    cfg = load_ok(LOAD "  - {shape: steps, steps: [1000, 0, 2.5e3], step: 2s}\n"
                       "  - {shape: sine, rate: 5000, period: 1m, duration: 2m}\n"
                       "  - {shape: diurnal, rate: 100, period: 24h, amplitude: 0.9, duration: 1h}\n"
                       "  - {shape: bursts, burst_rate: 50000, burst: 1s, gap: 4s, duration: 1m}\n"
                       "  - {shape: constant, rate: 10, arrival: uniform}\n");
    assert_int_equal(cfg->n_load, 5);
    assert_int_equal(cfg->load[0].n_steps, 3);
    assert_true(cfg->load[0].steps[0] == 1000 && cfg->load[0].steps[1] == 0 &&
                cfg->load[0].steps[2] == 2500);
    assert_int_equal(cfg->load[0].step_ns, 2000000000ull);
    assert_int_equal(cfg->load[0].duration_ns, 6000000000ull); /* 3 steps of 2 s by default */
    assert_int_equal(cfg->load[1].period_ns, 60000000000ull);
    assert_true(cfg->load[1].amplitude == 0.5); /* the default */
    assert_int_equal(cfg->load[1].arrival, CFG_ARRIVAL_UNIFORM);
    assert_true(cfg->load[2].amplitude == 0.9);
    assert_true(cfg->load[3].rate == 0 && cfg->load[3].burst_rate == 50000);
    assert_int_equal(cfg->load[3].burst_dist, CFG_DIST_FIXED);
    assert_int_equal(cfg->load[4].arrival, CFG_ARRIVAL_UNIFORM);
    config_free(cfg);
}

static void test_load_shape_errors(void **state)
{
    (void)state;
    EXPECT(LOAD "  - shape: ramp\n    to: 1000\n",
           "t.yaml:8:5: load[0]: shape 'ramp' needs a duration");
    EXPECT(LOAD "  - shape: ramp\n    duration: 1s\n", "t.yaml:8:5: load[0]: shape 'ramp' needs 'to'");
    EXPECT(LOAD "  - shape: ramp\n    from: -5\n    to: 1000\n    duration: 10s\n",
           "t.yaml:9:11: load[0].from: from must be >= 0, got -5");
    EXPECT(LOAD "  - shape: ramp\n    to: 0\n    duration: 10s\n",
           "t.yaml:9:9: load[0].to: a ramp from 0 to 0 sends nothing");
    EXPECT(LOAD "  - shape: steps\n    steps: [100, x]\n    step: 1s\n",
           "t.yaml:9:18: load[0].steps[1]: expected a number of records per second, got 'x'");
    EXPECT(LOAD "  - shape: steps\n    steps: [0, 0]\n    step: 1s\n",
           "t.yaml:9:12: load[0].steps: every step has rate 0");
    EXPECT(LOAD "  - shape: steps\n    steps: [1]\n",
           "t.yaml:8:5: load[0]: shape 'steps' needs 'step'");
    EXPECT(LOAD "  - shape: steps\n    steps: [1]\n    step: 0s\n",
           "t.yaml:10:11: load[0].step: step must be > 0");
    EXPECT(LOAD "  - shape: sine\n    rate: 1000\n    period: 10s\n    amplitude: 1.5\n",
           "t.yaml:11:16: load[0].amplitude: value 1.5 is out of range [0, 1]");
    EXPECT(LOAD "  - shape: diurnal\n    rate: 1000\n",
           "t.yaml:8:5: load[0]: shape 'diurnal' needs a period");
    EXPECT(LOAD "  - shape: constant\n    rate: 1000\n    burst_factor: 5\n",
           "t.yaml:8:5: load[0]: bursts need 'burst'", "t.yaml:8:5: load[0]: bursts need 'gap'");
    EXPECT(LOAD "  - shape: constant\n    rate: 100\n    burst_factor: 5\n    burst_rate: 9\n"
                "    burst: 1s\n    gap: 1s\n",
           "t.yaml:10:19: load[0].burst_factor: give either burst_rate or burst_factor, not both");
    EXPECT(LOAD "  - {shape: bursts, burst: 1s, gap: 1s}\n",
           "t.yaml:8:5: load[0]: bursts need burst_rate");
    EXPECT(LOAD "  - {shape: bursts, burst_factor: 3, burst: 1s, gap: 1s}\n",
           "t.yaml:8:35: load[0].burst_factor: burst_factor multiplies the rate, which is 0 here");
    EXPECT(LOAD "  - {shape: bursts, burst_rate: 10, burst: 1s, gap: 1s, alpha: 2}\n",
           "t.yaml:8:64: load[0].alpha: alpha applies only to distribution 'pareto'");
    EXPECT(LOAD "  - {shape: bursts, burst_rate: 10, burst: 1s, gap: 1s, distribution: pareto,"
                " alpha: 1}\n",
           "load[0].alpha: value 1 is out of range (1, 100]");
    EXPECT(LOAD "  - {shape: bursts, burst_rate: 10, burst: 1s, gap: 1s, distribution: normal}\n",
           "load[0].distribution: unknown value 'normal'; allowed: fixed, pareto");
    EXPECT(LOAD "  - {shape: max, arrival: poisson}\n",
           "t.yaml:8:27: load[0].arrival: 'arrival' does not apply to shape 'max'");
    EXPECT(LOAD "  - {shape: constant, rate: 5, arrival: sometimes}\n",
           "t.yaml:8:41: load[0].arrival: unknown value 'sometimes'; allowed: uniform, poisson");
    EXPECT(LOAD "  - {shape: ramp, to: 5, duration: 1s, period: 1s}\n",
           "t.yaml:8:48: load[0].period: 'period' does not apply to shape 'ramp' (only to: sine, "
           "diurnal)");
    EXPECT(LOAD "  - {shape: replay}\n", "t.yaml:8:5: load[0]: shape 'replay' needs 'file'");
    EXPECT(LOAD "  - {shape: replay, file: nope.txt}\n",
           "t.yaml:8:27: load[0].file: cannot read replay file './nope.txt'");
    EXPECT(LOAD "  - {shape: sine, rate: 5, period: 1s}\n  - shape: max\n",
           "t.yaml:8:5: load[0]: only the last phase may run until the end");
    /* The allowed keys are listed for a typo. */
    EXPECT(LOAD "  - {shape: constant, rate: 5, burts: 1s}\n",
           "load[0].burts: unknown key 'burts'; allowed: shape, rate, duration, arrival, from, to, "
           "steps, step, period, amplitude, burst_rate, burst_factor, burst, gap, distribution, "
           "alpha, file; did you mean 'burst'?");
}

/* Writes `text` to dir/name. */
static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_load_replay(void **state)
{
    (void)state;
    char dir[] = "/tmp/obs-test-replay-XXXXXX", path[512], err[4096];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/p.yaml", dir);
    write_file(dir, "p.yaml", LOAD "  - {shape: replay, file: ts.txt}\n  - shape: max\n");

    /* Seconds with fractions, units, comments and blank lines; offsets are
     * from the first timestamp; a replay needs no duration to be followed. */
    write_file(dir, "ts.txt", "# captured\n1700000000.5\n\n  1700000000.5015 # dup ok\n"
                              "1700000001.5\n1700000001.5\n");
    obs_config *cfg = NULL;
    int rc = config_load(path, &cfg, err, sizeof err);
    if (rc)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    const cfg_load_phase *ph = &cfg->load[0];
    assert_int_equal(ph->shape, CFG_SHAPE_REPLAY);
    assert_int_equal(ph->n_replay, 4);
    assert_int_equal(ph->replay_ns[0], 0);
    assert_int_equal(ph->replay_ns[1], 1500000);
    assert_int_equal(ph->replay_ns[2], 1000000000);
    assert_int_equal(ph->replay_ns[3], 1000000000);
    char want[600];
    snprintf(want, sizeof want, "%s/ts.txt", dir);
    assert_string_equal(ph->replay_path, want);
    config_free(cfg);

    /* Errors point into the timestamp file. */
    write_file(dir, "ts.txt", "1\n2\n  abc\n");
    assert_int_equal(config_load(path, &cfg, err, sizeof err), OBS_ECONFIG);
    snprintf(want, sizeof want, "%s/ts.txt:3:3: load[0].file: invalid timestamp 'abc'", dir);
    if (!strstr(err, want))
        print_error("missing \"%s\" in:\n%s\n", want, err);
    assert_non_null(strstr(err, want));
    write_file(dir, "ts.txt", "2s\n1500ms\n");
    assert_int_equal(config_load(path, &cfg, err, sizeof err), OBS_ECONFIG);
    snprintf(want, sizeof want, "%s/ts.txt:2:1: load[0].file: timestamp '1500ms' is earlier", dir);
    assert_non_null(strstr(err, want));
    write_file(dir, "ts.txt", "# nothing\n");
    assert_int_equal(config_load(path, &cfg, err, sizeof err), OBS_ECONFIG);
    assert_non_null(strstr(err, "holds no timestamps"));

    snprintf(path, sizeof path, "%s/ts.txt", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/p.yaml", dir);
    unlink(path);
    rmdir(dir);
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
        cmocka_unit_test(test_valid_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_batch_delay_and_realtime),
        cmocka_unit_test(test_dir),
        cmocka_unit_test(test_unknown_top_key),
        cmocka_unit_test(test_unknown_stage_key),
        cmocka_unit_test(test_missing_key),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_wrong_shape),
        cmocka_unit_test(test_unknown_shape),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_alias_rejected),
        cmocka_unit_test(test_stage_names),
        cmocka_unit_test(test_too_few_stages),
        cmocka_unit_test(test_pipeline_name),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_parallelism),
        cmocka_unit_test(test_many_errors),
        cmocka_unit_test(test_durations_in_file),
        cmocka_unit_test(test_rates),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_params_shape),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_small_error_buffer),
        cmocka_unit_test(test_error_limit),
        cmocka_unit_test(test_params_ok),
        cmocka_unit_test(test_params_unknown),
        cmocka_unit_test(test_params_required),
        cmocka_unit_test(test_params_types),
        cmocka_unit_test(test_params_ranges),
        cmocka_unit_test(test_params_bad_default),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_example_demo),
        cmocka_unit_test(test_example_null),
        cmocka_unit_test(test_load_shapes_valid),
        cmocka_unit_test(test_load_shape_errors),
        cmocka_unit_test(test_load_replay),
        cmocka_unit_test(test_ab_valid),
        cmocka_unit_test(test_ab_errors),
        cmocka_unit_test(test_ab_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
