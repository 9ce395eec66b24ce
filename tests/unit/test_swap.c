/*
 * test_swap.c - hot swap under load: 20 swaps between two versions of a
 * transform while the generator runs as fast as it can, with sequence
 * numbers checked end to end (no record lost or duplicated) and the state
 * handed over every time; refused swaps (unknown plugin, wrong ABI, wrong
 * kind, failing init, bad parameters) that leave the old version running;
 * a file rebuilt at the same path that really loads as new code; a swap
 * without state handover that flushes the old instance.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "engine/pipeline.h"
#include "engine/snapshot.h"
#include "engine/swap.h"
#include "stage_test_util.h"

typedef struct running {
    obs_config *cfg;
    pipeline *p;
    pthread_t thread;
    int rc;
} running;

static void *run_thread(void *arg)
{
    running *r = arg;
    r->rc = pipeline_run(r->p, NULL, NULL);
    return NULL;
}

/* Builds and starts a pipeline from `stages` (YAML list items), with the
 * project's and the test plugins' directories plus `extra_dir`. */
static void start(running *r, const char *stages, const char *extra_dir)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "pipeline: swaps\n"
             "plugin_dirs: [%s, %s%s%s]\n"
             "batch_size: 64\n"
             "ring_capacity: 4\n"
             "run: {duration: 0}\n"
             "load: [{shape: max}]\n"
             "stages:\n%s",
             getenv("OBS_PLUGIN_DIR"), getenv("OBS_TEST_PLUGIN_DIR"), extra_dir ? ", " : "",
             extra_dir ? extra_dir : "", stages);
    char err[2048];
    memset(r, 0, sizeof *r);
    if (config_load_string("swaps.yaml", yaml, &r->cfg, err, sizeof err) != 0)
        fail_msg("config: %s", err);
    if (pipeline_create(r->cfg, NULL, 0, &r->p, err, sizeof err) != 0)
        fail_msg("pipeline_create: %s", err);
    pthread_create(&r->thread, NULL, run_thread, r);
    /* Wait until records flow. */
    for (int i = 0; i < 500 && atomic_load(&r->p->stages[0].stats.records_out) < 1000; i++) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

/* Stops, joins and checks exactly-once delivery to the seqcheck sink. */
static void finish(running *r)
{
    pipeline_stop(r->p);
    pthread_join(r->thread, NULL);
    assert_int_equal(r->rc, 0);
    stage *gen = &r->p->stages[0], *sink = &r->p->stages[r->p->n_stages - 1];
    uint64_t sent = gen->stats.records_out;
    assert_true(sent > 0);
    assert_int_equal(sink->stats.records_in, sent);
    assert_int_equal(counter(sink, "seq_records"), sent);
    assert_int_equal(counter(sink, "seq_gaps"), 0);
    assert_int_equal(counter(sink, "seq_dups"), 0);
    pipeline_destroy(r->p);
    config_free(r->cfg);
}

static const char *echo_chain = "  - {name: gen, plugin: gen_static}\n"
                                "  - {name: echo, plugin: tp_echo}\n"
                                "  - {name: check, plugin: sink_seqcheck}\n";

static void test_twenty_swaps_under_load(void **state)
{
    (void)state;
    running r;
    start(&r, echo_chain, NULL);
    char err[1024];
    for (int i = 0; i < 20; i++) {
        swap_spec spec = {.plugin = "tp_echo", .version = i % 2 ? "1.0.0" : "2.0.0"};
        swap_result res;
        if (pipeline_swap(r.p, "echo", &spec, &res, err, sizeof err) != 0)
            fail_msg("swap %d: %s", i, err);
        assert_string_equal(res.new_version, spec.version);
        assert_string_equal(res.old_version, i % 2 ? "2.0.0" : "1.0.0");
        assert_int_equal(res.state, SWAP_STATE_HANDED_OVER);
        assert_int_equal(res.n_swaps, (uint64_t)i + 1);
        /* The swapped-in code is a private copy named by its content. */
        assert_non_null(strstr(res.new_path, "@"));
    }
    obs_snapshot snap;
    assert_int_equal(pipeline_snapshot(r.p, &snap), 0);
    assert_string_equal(snap.stages[1].version, "1.0.0");
    assert_int_equal(snap.stages[1].n_swaps, 20);
    assert_int_equal(histogram_count(snap.stages[1].swap_pause), 20);
    snapshot_free(&snap);
    finish(&r);
}

/* A stage of parallel instances swaps all of them together, each handing
 * its state over, under load, with nothing lost; a refused swap leaves all
 * of them on the old version. */
static void test_parallel_stage_swaps_together(void **state)
{
    (void)state;
    running r;
    start(&r,
          "  - {name: gen, plugin: gen_static}\n"
          "  - {name: echo, plugin: tp_echo, parallelism: 3}\n"
          "  - {name: check, plugin: sink_seqcheck, params: {order: none}}\n",
          NULL);
    char err[1024];
    const stage *echo = &r.p->stages[1];
    for (int i = 0; i < 10; i++) {
        swap_spec spec = {.plugin = "tp_echo", .version = i % 2 ? "1.0.0" : "2.0.0"};
        swap_result res;
        if (pipeline_swap(r.p, "echo", &spec, &res, err, sizeof err) != 0)
            fail_msg("swap %d: %s", i, err);
        assert_string_equal(res.new_version, spec.version);
        assert_int_equal(res.state, SWAP_STATE_HANDED_OVER);
        for (uint32_t k = 0; k < 3; k++)
            assert_string_equal(stage_active(echo->instances[k])->desc->version, spec.version);
    }
    swap_spec bad = {.plugin = "tp_init_fail"};
    swap_result res;
    assert_int_equal(pipeline_swap(r.p, "echo", &bad, &res, err, sizeof err), OBS_EPLUGIN);
    assert_non_null(strstr(err, "init failed"));
    for (uint32_t k = 0; k < 3; k++)
        assert_string_equal(stage_active(echo->instances[k])->desc->version, "1.0.0");
    obs_snapshot snap;
    assert_int_equal(pipeline_snapshot(r.p, &snap), 0);
    assert_int_equal(snap.stages[1].n_instances, 3);
    assert_int_equal(snap.stages[1].n_swaps, 10);
    assert_int_equal(histogram_count(snap.stages[1].swap_pause), 30);
    snapshot_free(&snap);
    finish(&r);
}

static void expect_refused(running *r, const char *plugin, const char *version, int code,
                           const char *needle)
{
    char err[1024] = "";
    swap_spec spec = {.plugin = plugin, .version = version};
    swap_result res;
    int rc = pipeline_swap(r->p, "echo", &spec, &res, err, sizeof err);
    if (rc != code || !strstr(err, needle))
        fail_msg("swap to %s: rc %d (want %d), message: %s", plugin, rc, code, err);
    /* The old version keeps running. */
    assert_string_equal(stage_active(&r->p->stages[1])->desc->name, "tp_echo");
}

static void test_refused_swaps_keep_the_old_version(void **state)
{
    (void)state;
    running r;
    start(&r, echo_chain, NULL);
    expect_refused(&r, "tp_nothing", NULL, OBS_ENOENT, "not found");
    expect_refused(&r, "tp_major2", NULL, OBS_EABI, "ABI major 2, host supports 1");
    expect_refused(&r, "sink_null", NULL, OBS_ECONFIG, "transform");
    expect_refused(&r, "tp_init_fail", NULL, OBS_EPLUGIN, "init failed");
    expect_refused(&r, "tp_echo", "9.9.9", OBS_ENOENT, "9.9.9");
    /* Parameters given with the swap are checked like the config's. */
    char err[1024] = "";
    cfg_param bad = {.key = "drop_every", .value = "often"};
    swap_spec spec = {.plugin = "tp_echo", .params = &bad, .n_params = 1, .params_given = 1};
    swap_result res;
    assert_true(pipeline_swap(r.p, "echo", &spec, &res, err, sizeof err) < 0);
    assert_non_null(strstr(err, "drop_every"));
    cfg_param good = {.key = "drop_every", .value = "0"};
    spec.params = &good;
    if (pipeline_swap(r.p, "echo", &spec, &res, err, sizeof err) != 0)
        fail_msg("swap with params: %s", err);
    char e2[256];
    swap_spec none = {.plugin = "tp_echo"};
    assert_int_equal(pipeline_swap(r.p, "nope", &none, &res, e2, sizeof e2), OBS_ENOENT);
    finish(&r);
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n;
    int ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

static void test_rebuilt_file_loads_as_new_code(void **state)
{
    (void)state;
    char dir[] = "/tmp/obs-swap-XXXXXX", path[256], src[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/echo_live.so", dir);
    snprintf(src, sizeof src, "%s/tp_echo.so", getenv("OBS_TEST_PLUGIN_DIR"));
    assert_int_equal(copy_file(src, path), 0);
    running r;
    start(&r,
          "  - {name: gen, plugin: gen_static}\n"
          "  - {name: echo, plugin: echo_live.so}\n"
          "  - {name: check, plugin: sink_seqcheck}\n",
          dir);
    assert_string_equal(stage_active(&r.p->stages[1])->desc->version, "1.0.0");
    /* "Rebuild" the file with the other version's code, as a linker or
     * install(1) does: a new file renamed over the old name. (Rewriting a
     * loaded .so in place would corrupt the running copy's mapped pages.) */
    char tmp[300];
    snprintf(src, sizeof src, "%s/tp_echo-2.0.0.so", getenv("OBS_TEST_PLUGIN_DIR"));
    snprintf(tmp, sizeof tmp, "%s.new", path);
    assert_int_equal(copy_file(src, tmp), 0);
    assert_int_equal(rename(tmp, path), 0);
    char err[1024];
    swap_spec spec = {.plugin = "echo_live.so"};
    swap_result res;
    if (pipeline_swap(r.p, "echo", &spec, &res, err, sizeof err) != 0)
        fail_msg("swap: %s", err);
    assert_string_equal(res.new_version, "2.0.0"); /* dlopen's cache did not win */
    finish(&r);
    unlink(path);
    rmdir(dir);
}

static void test_stateless_swap_flushes(void **state)
{
    (void)state;
    running r;
    start(&r,
          "  - {name: gen, plugin: gen_static}\n"
          "  - {name: echo, plugin: xf_pass}\n"
          "  - {name: check, plugin: sink_seqcheck}\n",
          NULL);
    char err[1024];
    swap_spec spec = {.plugin = "tp_echo"};
    swap_result res;
    if (pipeline_swap(r.p, "echo", &spec, &res, err, sizeof err) != 0)
        fail_msg("swap: %s", err);
    assert_int_equal(res.state, SWAP_STATE_FLUSHED); /* xf_pass exports no state */
    spec.no_handover = 1;
    spec.plugin = "xf_pass";
    if (pipeline_swap(r.p, "echo", &spec, &res, err, sizeof err) != 0)
        fail_msg("swap back: %s", err);
    assert_int_equal(res.state, SWAP_STATE_FLUSHED);
    finish(&r);
}

static void test_swap_needs_a_running_pipeline(void **state)
{
    (void)state;
    char yaml[1024];
    snprintf(yaml, sizeof yaml, "pipeline: idle\nplugin_dirs: [%s, %s]\nstages:\n%s",
             getenv("OBS_PLUGIN_DIR"), getenv("OBS_TEST_PLUGIN_DIR"), echo_chain);
    obs_config *cfg = NULL;
    pipeline *p = NULL;
    char err[1024];
    assert_int_equal(config_load_string("idle.yaml", yaml, &cfg, err, sizeof err), 0);
    assert_int_equal(pipeline_create(cfg, NULL, 0, &p, err, sizeof err), 0);
    swap_spec spec = {.plugin = "tp_echo"};
    swap_result res;
    assert_int_equal(pipeline_swap(p, "echo", &spec, &res, err, sizeof err), OBS_EAGAIN);
    assert_non_null(strstr(err, "not running"));
    pipeline_destroy(p);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twenty_swaps_under_load),
        cmocka_unit_test(test_refused_swaps_keep_the_old_version),
        cmocka_unit_test(test_parallel_stage_swaps_together),
        cmocka_unit_test(test_rebuilt_file_loads_as_new_code),
        cmocka_unit_test(test_stateless_swap_flushes),
        cmocka_unit_test(test_swap_needs_a_running_pipeline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
