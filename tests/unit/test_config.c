/*
 * test_config.c - unit tests of the config module (core/config/): loading
 * pipeline.yaml into an obs_config. Valid files and the defaults of what
 * they leave out, the directory relative paths are taken from, durations as
 * config_parse_duration reads them, and the load phases: every shape, what
 * each one refuses, and a replay file read next to the config.
 *
 * The module's other tests: test_config_errors.c (keys and values refused,
 * with positions) and test_config_params.c (plugin parameters, a stage's ab:
 * and the shipped examples). Error tests assert the exact "file:line:col:
 * field" prefix of the message, since pointing the user at the right place
 * is the point of the module. Configurations are given as strings named
 * "t.yaml" (config_test_util.h).
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
#include "config_test_util.h"

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

/* run.id: the name shared by the processes of a split pipeline. */
static void test_run_id(void **state)
{
    (void)state;
    obs_config *cfg = load_ok("pipeline: p\nrun: {id: ticks-2026.12_07}\n" STAGES);
    assert_string_equal(cfg->run_id, "ticks-2026.12_07");
    config_free(cfg);
    cfg = load_ok("pipeline: p\n" STAGES);
    assert_null(cfg->run_id);
    config_free(cfg);
    EXPECT("pipeline: p\nrun: {id: 'a b'}\n" STAGES,
           "t.yaml:2:11: run.id: 'a b': may hold only letters, digits, '.', '_' and '-'");
    EXPECT("pipeline: p\nrun: {id: ''}\n" STAGES,
           "t.yaml:2:11: run.id: '': must be 1 to 64 characters");
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

/* ------------------------------------------------ load shapes */

#define LOAD "pipeline: p\n" STAGES "load:\n" /* phases start on line 8 */

static void test_load_shapes_valid(void **state)
{
    (void)state;
    /* "A market open: ramp to 200k/s in 30 s, Poisson, with 5x bursts every
     * 10 s", then the same at a steady 200k/s. */
    obs_config *cfg =
        load_ok(LOAD "  - shape: ramp\n"
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

    cfg =
        load_ok(LOAD "  - {shape: steps, steps: [1000, 0, 2.5e3], step: 2s}\n"
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
    EXPECT(LOAD "  - shape: ramp\n    duration: 1s\n",
           "t.yaml:8:5: load[0]: shape 'ramp' needs 'to'");
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
    write_file(dir, "ts.txt",
               "# captured\n1700000000.5\n\n  1700000000.5015 # dup ok\n"
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
    /* Bounded: a line without end, and a file of NUL bytes, are refused
     * instead of read into memory. */
    char longline[1200];
    memset(longline, '1', sizeof longline - 2);
    longline[sizeof longline - 2] = '\n';
    longline[sizeof longline - 1] = '\0';
    write_file(dir, "ts.txt", longline);
    assert_int_equal(config_load(path, &cfg, err, sizeof err), OBS_ECONFIG);
    snprintf(want, sizeof want, "%s/ts.txt:1:1: load[0].file: line longer than 256 bytes", dir);
    assert_non_null(strstr(err, want));
    write_file(dir, "p.yaml", LOAD "  - {shape: replay, file: /dev/zero}\n  - shape: max\n");
    assert_int_equal(config_load(path, &cfg, err, sizeof err), OBS_ECONFIG);
    assert_non_null(strstr(err, "/dev/zero:1:1: load[0].file: line longer than 256 bytes"));

    snprintf(path, sizeof path, "%s/ts.txt", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/p.yaml", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_batch_delay_and_realtime),
        cmocka_unit_test(test_run_id),
        cmocka_unit_test(test_dir),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_load_shapes_valid),
        cmocka_unit_test(test_load_shape_errors),
        cmocka_unit_test(test_load_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
