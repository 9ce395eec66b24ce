/*
 * test_pipeline.c - the pipeline end to end in one process, with real
 * plugins: nothing accepted is lost or duplicated (sequence numbers checked
 * by sink_seqcheck) whether the run ends by duration or by pipeline_stop()
 * from another thread; every batch returns to the pool; a constant-rate
 * generator never sends ahead of its schedule; a stage of the wrong kind,
 * a bad parameter and a failing init are refused with useful messages.
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

#include "config/config.h"
#include "engine/alloc.h"
#include "engine/pipeline.h"
#include "engine/schedule.h"
#include "engine/snapshot.h"
#include "stage_test_util.h"

/* Asserts exactly-once delivery from the generator to the seqcheck sink. */
static void assert_no_loss(pipeline *p)
{
    stage *gen = &p->stages[0], *sink = &p->stages[p->n_stages - 1];
    uint64_t sent = gen->stats.records_out;
    assert_true(sent > 0);
    assert_int_equal(sink->stats.records_in, sent);
    assert_int_equal(counter(sink, "seq_records"), sent);
    assert_int_equal(counter(sink, "seq_gaps"), 0);
    assert_int_equal(counter(sink, "seq_dups"), 0);
    for (size_t i = 1; i < p->n_stages; i++)
        assert_int_equal(p->stages[i].stats.records_in, sent);
    /* Every record delivered has its end-to-end latency recorded. */
    histogram *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    histogram_merge(h, sink->latency);
    assert_int_equal(histogram_count(h), sent);
    assert_true(histogram_quantile_ns(h, 0.5) <= histogram_max_ns(h));
    free(h);
    /* Every batch is back in the pool: nothing leaked, nothing held. */
    assert_int_equal(pool_free_count(&p->pool), p->pool.n_batches);
}

/* Creates and runs the pipeline of `cfg` to its end; asserts a clean run
 * with exactly-once delivery. The caller destroys it. */
static pipeline *run_ok(obs_config *cfg)
{
    pipeline *p = NULL;
    char err[2048];
    if (pipeline_create(cfg, NULL, 0, &p, err, sizeof(err)) != 0)
        fail_msg("pipeline_create: %s", err);
    assert_int_equal(pipeline_run(p, NULL, NULL), 0);
    assert_no_loss(p);
    return p;
}

static const char *chain = "stages:\n"
                           "  - {name: gen, plugin: gen_static, params: {size: 16}}\n"
                           "  - {name: pass1, plugin: xf_pass}\n"
                           "  - {name: echo, plugin: tp_echo}\n"
                           "  - {name: pass2, plugin: xf_pass}\n"
                           "  - {name: check, plugin: sink_seqcheck}\n";

static void run_and_check(const char *settings)
{
    char body[2048];
    snprintf(body, sizeof(body), "%s%s", settings, chain);
    obs_config *cfg = stage_test_config(body);
    pipeline *p = run_ok(cfg);
    /* 16-byte records: bytes follow records through zero-copy hops. */
    assert_int_equal(p->stages[0].stats.bytes_out, 16 * p->stages[0].stats.records_out);
    assert_int_equal(p->stages[4].stats.bytes_in, p->stages[0].stats.bytes_out);
    pipeline_destroy(p);
    config_free(cfg);
}

static void test_drain_small_rings_batch_1(void **state)
{
    (void)state;
    run_and_check(
        "batch_size: 1\nring_capacity: 2\nrun: {duration: 300ms}\nload: [{shape: max}]\n");
}

static void test_drain_batch_256(void **state)
{
    (void)state;
    run_and_check("batch_size: 256\nring_capacity: 4\nrun: {duration: 300ms, warmup: 100ms}\n"
                  "load: [{shape: max}]\n");
}

static void *stop_later(void *arg)
{
    struct timespec ts = {0, 150000000};
    nanosleep(&ts, NULL);
    pipeline_stop(arg);
    return NULL;
}

static void test_stop_from_another_thread_drains(void **state)
{
    (void)state;
    char body[2048];
    snprintf(body, sizeof(body), "batch_size: 64\nring_capacity: 8\nrun: {duration: 0}\n%s", chain);
    obs_config *cfg = stage_test_config(body);
    pipeline *p = NULL;
    char err[2048];
    if (pipeline_create(cfg, NULL, 0, &p, err, sizeof(err)) != 0)
        fail_msg("pipeline_create: %s", err);
    pthread_t t;
    pthread_create(&t, NULL, stop_later, p);
    assert_int_equal(pipeline_run(p, NULL, NULL), 0); /* duration 0: only the stop ends it */
    pthread_join(t, NULL);
    assert_no_loss(p);
    pipeline_destroy(p);
    config_free(cfg);
}

static void test_constant_rate_never_ahead_of_schedule(void **state)
{
    (void)state;
    char body[2048];
    snprintf(body, sizeof(body),
             "batch_size: 64\nrun: {duration: 400ms}\nload: [{shape: constant, rate: 20000}]\n%s",
             chain);
    obs_config *cfg = stage_test_config(body);
    pipeline *p = run_ok(cfg);
    /* Open loop: a record is sent only once its intended time has come, so
     * the count can never exceed rate * elapsed (+1 for the record at t=0).
     * Elapsed runs to the end of the drain, not to the stop: a generator
     * that sees the stop late (a loaded machine) still sends what was due
     * by then, never more. */
    double elapsed_s = (double)(p->t_end_ns - p->t_start_ns) / 1e9;
    uint64_t sent = p->stages[0].stats.records_out;
    assert_true((double)sent <= 20000.0 * (elapsed_s + 0.001) + 1);
    pipeline_destroy(p);
    config_free(cfg);
}

/* The generator stamps exactly the schedule's intended times, in order,
 * however its wake-ups group them into batches (the look-ahead it sleeps
 * on, max_batch_delay, the cursor that counts due records): the same seeded
 * schedule of Poisson arrivals with bursts, computed here from scratch, gives
 * the same offsets from the first record. */
static void test_intended_times_follow_schedule(void **state)
{
    (void)state;
    static const char *const delays[] = {"0", "20us", "1ms"};
    const char *file = "test_pipeline_times.bin";
    for (size_t d = 0; d < sizeof delays / sizeof delays[0]; d++) {
        char body[2048];
        snprintf(body, sizeof(body),
                 "batch_size: 32\nmax_batch_delay: %s\nrun: {duration: 300ms, seed: 7}\n"
                 "load: [{shape: poisson, rate: 20000, burst_factor: 4, burst: 20ms, gap: 30ms}]\n"
                 "stages:\n"
                 "  - {name: gen, plugin: gen_static, params: {size: 16}}\n"
                 "  - {name: check, plugin: sink_seqcheck, params: {times: %s}}\n",
                 delays[d], file);
        obs_config *cfg = stage_test_config(body);
        pipeline *p = run_ok(cfg);
        uint64_t sent = p->stages[0].stats.records_out;
        pipeline_destroy(p);

        uint64_t *got = malloc(sent * sizeof *got), *want = malloc(sent * sizeof *want);
        assert_non_null(got);
        assert_non_null(want);
        FILE *f = fopen(file, "rb");
        assert_non_null(f);
        assert_int_equal(fread(got, 8, sent, f), sent);
        fclose(f);
        remove(file);
        schedule sc;
        schedule_init(&sc, cfg->load, cfg->n_load, cfg->seed, UINT64_C(1000000000000));
        for (uint64_t n = 0; n < sent;)
            n += schedule_fill(&sc, UINT64_MAX - 1, want + n,
                               sent - n > 1024 ? 1024 : (uint32_t)(sent - n));
        for (uint64_t i = 1; i < sent; i++) {
            if (got[i] - got[0] != want[i] - want[0])
                fail_msg("max_batch_delay %s: record %llu intended at +%llu ns, the schedule "
                         "says +%llu ns",
                         delays[d], (unsigned long long)i, (unsigned long long)(got[i] - got[0]),
                         (unsigned long long)(want[i] - want[0]));
        }
        free(got);
        free(want);
        config_free(cfg);
    }
}

static void expect_create_error(const char *body, const char *const *needles)
{
    obs_config *cfg = stage_test_config(body);
    pipeline *p = NULL;
    char err[2048] = "";
    assert_true(pipeline_create(cfg, NULL, 0, &p, err, sizeof(err)) < 0);
    assert_null(p);
    for (; *needles; needles++)
        if (!strstr(err, *needles))
            fail_msg("expected '%s' in: %s", *needles, err);
    config_free(cfg);
}

static void test_wrong_kind_refused(void **state)
{
    (void)state;
    static const char *const needles[] = {"stage 'mid'", "sink_null", "transform", NULL};
    expect_create_error("stages:\n"
                        "  - {name: gen, plugin: gen_static}\n"
                        "  - {name: mid, plugin: sink_null}\n"
                        "  - {name: end, plugin: sink_null}\n",
                        needles);
}

static void test_unknown_param_refused_with_position(void **state)
{
    (void)state;
    static const char *const needles[] = {"t.yaml:7:14:", "stages[1].params.nope",
                                          "unknown parameter", NULL};
    expect_create_error("stages:\n"
                        "  - {name: gen, plugin: gen_static}\n"
                        "  - name: mid\n"
                        "    plugin: xf_pass\n"
                        "    params: {nope: 1}\n"
                        "  - {name: end, plugin: sink_null}\n",
                        needles);
}

static void test_failing_init_refused(void **state)
{
    (void)state;
    static const char *const needles[] = {"stage 'bad'", "init failed", NULL};
    expect_create_error("stages:\n"
                        "  - {name: gen, plugin: gen_static}\n"
                        "  - {name: ok, plugin: xf_pass}\n"
                        "  - {name: bad, plugin: tp_init_fail}\n"
                        "  - {name: end, plugin: sink_null}\n",
                        needles);
}

static void test_missing_plugin_names_dirs(void **state)
{
    (void)state;
    static const char *const needles[] = {"stage 'mid'", "xf_nothing", NULL};
    expect_create_error("stages:\n"
                        "  - {name: gen, plugin: gen_static}\n"
                        "  - {name: mid, plugin: xf_nothing}\n"
                        "  - {name: end, plugin: sink_null}\n",
                        needles);
}

static void test_allocation_failure_in_init_is_clean(void **state)
{
    (void)state;
    /* Make the n-th host allocation (and all after it) fail, for every n
     * until building succeeds: each attempt must either succeed or be
     * refused cleanly with "init failed" (ASan checks that nothing leaks and
     * that the stages initialised before the failure were finalised). */
    char body[2048];
    snprintf(body, sizeof(body), "%s", chain);
    obs_config *cfg = stage_test_config(body);
    int refused = 0, built = 0;
    for (uint64_t n = 1; n <= 64 && !built; n++) {
        pipeline *p = NULL;
        char err[2048] = "";
        host_fail_alloc_after(n);
        int rc = pipeline_create(cfg, NULL, 0, &p, err, sizeof(err));
        host_fail_alloc_after(0);
        if (rc == 0) {
            built = 1;
            pipeline_destroy(p);
            continue;
        }
        assert_null(p);
        if (!strstr(err, "init failed"))
            fail_msg("allocation %u failing: unexpected error: %s", (unsigned)n, err);
        refused++;
    }
    assert_true(refused >= 1); /* at least the first allocation was exercised */
    assert_true(built);        /* and with enough allocations it builds */
    config_free(cfg);
}

static void *snap_while_running(void *arg)
{
    pipeline *p = arg;
    /* Snapshots taken concurrently with the stage threads (TSan checks the
     * reads) must show counters that never go backwards. */
    uint64_t last = 0;
    for (int i = 0; i < 20; i++) {
        obs_snapshot snap;
        assert_int_equal(pipeline_snapshot(p, &snap), 0);
        uint64_t now = snap.stages[0].records_out;
        assert_true(now >= last);
        last = now;
        snapshot_free(&snap);
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_cost_account_and_snapshot(void **state)
{
    (void)state;
    obs_config *cfg =
        stage_test_config("batch_size: 64\nrun: {duration: 300ms}\n"
             "load: [{shape: constant, rate: 50000}]\n"
             "stages:\n"
             "  - {name: gen, plugin: gen_static, params: {size: 16}}\n"
             "  - {name: alloc, plugin: tp_alloc, params: {per_batch: 3, bytes: 100}}\n"
             "  - {name: check, plugin: sink_seqcheck}\n");
    pipeline *p = NULL;
    char err[2048];
    if (pipeline_create(cfg, NULL, 0, &p, err, sizeof(err)) != 0)
        fail_msg("pipeline_create: %s", err);
    obs_snapshot before;
    assert_int_equal(pipeline_snapshot(p, &before), 0);
    assert_int_equal(before.state, SNAPSHOT_STARTING);
    assert_int_equal(before.n_stages, 3);
    snapshot_free(&before);

    pthread_t t;
    pthread_create(&t, NULL, snap_while_running, p);
    assert_int_equal(pipeline_run(p, NULL, NULL), 0);
    pthread_join(t, NULL);
    assert_no_loss(p);

    obs_snapshot snap;
    assert_int_equal(pipeline_snapshot(p, &snap), 0);
    assert_int_equal(snap.state, SNAPSHOT_DONE);
    assert_string_equal(snap.pipeline, "t");
    const stage_sample *gen = &snap.stages[0], *mid = &snap.stages[1], *sink = &snap.stages[2];
    assert_string_equal(gen->kind, "generator");
    assert_string_equal(mid->plugin, "tp_alloc");
    assert_int_equal(strlen(mid->build_id), 40); /* 20-byte GNU build-id */
    /* Every batch the transform saw cost exactly 3 allocations of 100 bytes
     * (its flush allocates nothing); nothing else is charged to it. */
    if (alloc_interposer_active()) {
        assert_int_equal(mid->allocs, 3 * mid->batches_in);
        assert_int_equal(mid->frees, 3 * mid->batches_in);
        assert_int_equal(mid->alloc_bytes, 300 * mid->batches_in);
        assert_int_equal(gen->allocs, 0);
    }
    /* Histograms: one service sample per callback, one lag sample per record
     * sent, one latency sample per record delivered. */
    assert_int_equal(histogram_count(gen->lag), gen->records_out);
    assert_int_equal(histogram_count(sink->latency), sink->records_in);
    assert_int_equal(histogram_count(mid->service), mid->batches_in + 1); /* + flush */
    assert_null(mid->lag);
    assert_null(mid->latency);
    /* The schedule: constant rate, never sends ahead of it. */
    assert_true(gen->records_scheduled >= gen->records_out);
    assert_true(gen->idle_ns > 0);
    assert_true(gen->callback_cpu_ns <= gen->callback_wall_ns);
    assert_true(gen->thread_cpu_ns > 0);
    assert_int_equal(gen->ring_capacity, 16);
    assert_int_equal(sink->ring_capacity, 0);
    assert_true(sink->n_counters >= 3);
    snapshot_free(&snap);
    pipeline_destroy(p);
    config_free(cfg);
}

/* The live heap of a stage: what its callbacks allocated and did not free.
 * tp_alloc keeps one 1000-byte block per batch: the stage holds at least
 * batches x 1000 bytes (the allocator rounds each up by at most 32); one
 * that frees everything holds no more than its instance and list. */
static void test_heap_live(void **state)
{
    (void)state;
    if (!alloc_interposer_active())
        skip(); /* sanitizers own malloc: nothing is counted */
    obs_config *cfg =
        stage_test_config("batch_size: 64\nrun: {duration: 300ms}\n"
             "load: [{shape: constant, rate: 50000}]\n"
             "stages:\n"
             "  - {name: gen, plugin: gen_static, params: {size: 16}}\n"
             "  - {name: keeps, plugin: tp_alloc, params: {per_batch: 2, bytes: 1000, keep: 1}}\n"
             "  - {name: frees, plugin: tp_alloc, params: {per_batch: 2, bytes: 1000}}\n"
             "  - {name: sink, plugin: sink_null}\n");
    pipeline *p = NULL;
    char err[2048];
    if (pipeline_create(cfg, NULL, 0, &p, err, sizeof(err)) != 0)
        fail_msg("pipeline_create: %s", err);
    /* The heap watch at a test's pace: steps of 30 ms, 64 KiB of growth
     * over the last six (the keeping stage keeps 1000 bytes per batch, and
     * batches of this stream leave every 200 us). */
    p->heap_watch_step_ns = 30000000;
    p->heap_watch_min = 64 << 10;
    assert_int_equal(pipeline_run(p, NULL, NULL), 0);
    obs_snapshot snap;
    assert_int_equal(pipeline_snapshot(p, &snap), 0);
    const stage_sample *keeps = &snap.stages[1], *frees = &snap.stages[2];
    assert_int_equal(keeps->heap_growing, 1);
    assert_int_equal(frees->heap_growing, 0);
    uint64_t n = keeps->batches_in;
    assert_true(n > 10);
    /* The kept blocks, plus the instance and the list of pointers. */
    assert_true(keeps->heap_live_bytes >= n * 1000);
    assert_true(keeps->heap_live_bytes <= n * 1032 + 16 * n + 65536);
    assert_true(frees->heap_live_bytes < 4096);
    assert_true(snap.rss_bytes > 0 && snap.rss_peak_bytes >= snap.rss_bytes / 2);
    snapshot_free(&snap);
    pipeline_destroy(p);
    config_free(cfg);
}

/* A message repeated on every batch is written once, then counted until
 * its interval has passed. */
static void test_log_limited(void **state)
{
    (void)state;
    host_log_limit l = {0};
    host_set_log_level(OBS_LOG_ERROR - 1); /* nothing reaches stderr */
    assert_int_equal(host_log_limited(&l, "t", OBS_LOG_ERROR, "rule broken %d", 0), 1);
    for (int i = 1; i < 1000; i++)
        assert_int_equal(host_log_limited(&l, "t", OBS_LOG_ERROR, "rule broken %d", i), 0);
    assert_int_equal(l.suppressed, 999);
    l.last_ns -= HOST_LOG_INTERVAL_NS; /* as if a second had passed */
    assert_int_equal(host_log_limited(&l, "t", OBS_LOG_ERROR, "rule broken again"), 1);
    assert_int_equal(l.suppressed, 0);
    host_set_log_level(OBS_LOG_WARN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drain_small_rings_batch_1),
        cmocka_unit_test(test_drain_batch_256),
        cmocka_unit_test(test_stop_from_another_thread_drains),
        cmocka_unit_test(test_constant_rate_never_ahead_of_schedule),
        cmocka_unit_test(test_intended_times_follow_schedule),
        cmocka_unit_test(test_wrong_kind_refused),
        cmocka_unit_test(test_unknown_param_refused_with_position),
        cmocka_unit_test(test_failing_init_refused),
        cmocka_unit_test(test_missing_plugin_names_dirs),
        cmocka_unit_test(test_allocation_failure_in_init_is_clean),
        cmocka_unit_test(test_cost_account_and_snapshot),
        cmocka_unit_test(test_heap_live),
        cmocka_unit_test(test_log_limited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
