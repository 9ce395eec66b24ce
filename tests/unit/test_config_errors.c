/*
 * test_config_errors.c - what the config module (core/config/) refuses, and
 * how it says so: unknown, missing and duplicate keys, values of the wrong
 * shape, YAML syntax errors and aliases, invalid names, out-of-range
 * numbers, durations, rates and listen addresses, parallelism where it does
 * not apply, many errors in one file, a file that cannot be read, a short
 * error buffer and the cap on the number of errors shown.
 *
 * Every test asserts the exact "file:line:col: field" prefix of the message,
 * since pointing the user at the right place is the point of the module.
 * Configurations are given as strings named "t.yaml" (config_test_util.h).
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

static size_t count_lines(const char *s)
{
    size_t n = 1;
    for (; *s; s++)
        n += *s == '\n';
    return n;
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
           "realtime_priority, id, drain_timeout, callback_warn; did you mean 'seed'?");
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
    /* store.retention: a duration (days too) and a size, at their positions. */
    EXPECT("pipeline: p\nstore:\n  retention: {max_age: 30x}\n" STAGES,
           "t.yaml:3:24: store.retention.max_age: invalid duration '30x'");
    EXPECT("pipeline: p\nstore: {retention: {max_age: 10s}}\n" STAGES,
           "t.yaml:2:30: store.retention.max_age: value 10s is below the minimum 1m");
    EXPECT("pipeline: p\nstore: {retention: {max_size: 1MiB}}\n" STAGES,
           "t.yaml:2:31: store.retention.max_size: value 1MiB is below the minimum 16MiB");
    EXPECT("pipeline: p\nstore: {retention: {max_size: 1GB}}\n" STAGES,
           "t.yaml:2:31: store.retention.max_size: expected a size in bytes");
    obs_config *rc = load_ok("pipeline: p\n" STAGES);
    assert_true(rc->store_max_age_ns == 0 && rc->store_max_bytes == 1ull << 30);
    config_free(rc);
    rc = load_ok("pipeline: p\nstore: {retention: {max_age: 30d, max_size: 0}}\n" STAGES);
    assert_true(rc->store_max_age_ns == 30ull * 86400 * 1000000000 && rc->store_max_bytes == 0);
    config_free(rc);

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
    /* A schedule cannot be kept above one a nanosecond, and below one in
     * 11.6 days the first interval outlasts any run. */
    EXPECT("pipeline: p\n" STAGES "load:\n  - shape: constant\n    rate: 1e308\n",
           "t.yaml:9:11: load[0].rate: rate 1e308 is above 1e9 records per second");
    EXPECT("pipeline: p\n" STAGES "load:\n  - shape: poisson\n    rate: 1e-300\n",
           "t.yaml:9:11: load[0].rate: rate 1e-300 is below 1e-6 records per second");
    EXPECT("pipeline: p\n" STAGES "load:\n  - {shape: ramp, from: 1, to: 2e9, duration: 1s}\n",
           "load[0].to: to 2e9 is above 1e9 records per second");
}

static void test_listen(void **state)
{
    (void)state;
    static const char *const good[] = {"127.0.0.1:9464", "0.0.0.0:0", "localhost:80", "[::1]:9464",
                                       "[::]:65535"};
    /* A host name: the server would refuse it at startup (it resolves no
     * names), so --check refuses it too. */
    static const char *const bad[] = {
        "localhost",   "127.0.0.1", ":9464",        "::1:9464",
        "[::1]9464",   "[zz]:1",    "1.2.3.4.5:80", "host:65536",
        "host:-1",     "host:http", "bad_host:80",  "a..b:80",
        "300.1.1.1:1", "[::1]:",    "-a:1",         "metrics.example.com:1"};
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

/* http.allowed_hosts: names only, without a port, with their position. */
static void test_allowed_hosts(void **state)
{
    (void)state;
    obs_config *cfg =
        load_ok("pipeline: p\nhttp: {allowed_hosts: [hostd.example, obs.svc]}\n" STAGES);
    assert_int_equal(cfg->n_http_allowed_hosts, 2);
    assert_string_equal(cfg->http_allowed_hosts[1], "obs.svc");
    config_free(cfg);
    EXPECT("pipeline: p\nhttp: {allowed_hosts: [ok.example, 'bad:80']}\n" STAGES,
           "t.yaml:2:", "http.allowed_hosts[1]: invalid host name 'bad:80'");
}

/* Bounds: stages per pipeline, parameters per stage. */
static void test_limits(void **state)
{
    (void)state;
    size_t cap = 64 * 1024;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n = (size_t)snprintf(text, cap, "pipeline: p\nstages:\n");
    for (int i = 0; i <= CFG_MAX_STAGES; i++)
        n += (size_t)snprintf(text + n, cap - n, "  - {name: s%d, plugin: xf_pass}\n", i);
    EXPECT(text, "stages: 257 stages: a pipeline may have at most 256");
    n = (size_t)snprintf(text, cap,
                         "pipeline: p\nstages:\n  - name: g\n    plugin: gen_static\n"
                         "    params:\n");
    for (int i = 0; i <= CFG_MAX_PARAMS; i++)
        n += (size_t)snprintf(text + n, cap - n, "      p%d: 1\n", i);
    snprintf(text + n, cap - n, "  - {name: sink, plugin: sink_null}\n");
    EXPECT(text, "stages[0].params: 1025 parameters: a stage takes at most 1024");
    /* Nesting: refused at the first level too deep, before the document
     * is built. */
    n = (size_t)snprintf(text, cap, "pipeline: p\nx: ");
    for (int i = 0; i < 100; i++)
        text[n++] = '[';
    for (int i = 0; i < 100; i++)
        text[n++] = ']';
    text[n] = '\0';
    EXPECT(text, "t.yaml:2:67: collections nested deeper than 64 levels");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
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
        cmocka_unit_test(test_allowed_hosts),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
