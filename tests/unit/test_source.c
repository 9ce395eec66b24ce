/*
 * test_source.c - source generators (OBS_STAGE_SOURCE, ABI 1.2): the host
 * passes their records on with their own seq and intended time (nothing
 * restamped), and tells the source when each batch has left the pipeline,
 * exactly once per ticket, through transforms, a split by key over
 * parallel instances, an aggregating window and a sink that holds the
 * batches' delivery until it releases them; a source cannot be swapped.
 * Also under ThreadSanitizer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "engine/pipeline.h"
#include "engine/swap.h"
#include "measure/histogram.h"
#include "stage_test_util.h"

/* tp_source's process-wide counts: tickets given, delivered() calls,
 * tickets delivered twice, tickets never given, records emitted,
 * deliveries of tickets that had records. */
static void source_stats(uint64_t out[6])
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tp_source.so", getenv("OBS_TEST_PLUGIN_DIR"));
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(h);
    void (*fn)(uint64_t[6]) = (void (*)(uint64_t[6]))dlsym(h, "tp_source_stats");
    assert_non_null(fn);
    fn(out);
    dlclose(h);
}

static void check_all_delivered(pipeline *p, uint64_t count)
{
    uint64_t st[6];
    source_stats(st);
    printf("# tickets %llu, delivered %llu, twice %llu, unknown %llu, records %llu\n",
           (unsigned long long)st[0], (unsigned long long)st[1], (unsigned long long)st[2],
           (unsigned long long)st[3], (unsigned long long)st[4]);
    assert_int_equal(st[4], count);
    assert_true(st[0] > 10);
    assert_int_equal(st[1], st[0]);
    assert_int_equal(st[2], 0);
    assert_int_equal(st[3], 0);
    assert_int_equal(pool_free_count(&p->pool), p->pool.n_batches);
}

/* Through two parallel instances split by key to the seqcheck sink: every
 * record once, in order per key, with its own seq from 1000 on and its
 * intended time (5 ms before it was emitted: every latency at least that). */
static void test_source_through_parallel(void **state)
{
    (void)state;
    obs_config *cfg = stage_test_config("batch_size: 64\nring_capacity: 4\n"
                           "stages:\n"
                           "  - {name: src, plugin: tp_source, params: {count: 50000, first_seq: "
                           "1000, age_ms: 5}}\n"
                           "  - {name: pass, plugin: xf_pass, parallelism: 2, partition: key}\n"
                           "  - {name: check, plugin: sink_seqcheck, params: {order: key}}\n");
    pipeline *p = stage_test_pipeline(cfg);
    assert_int_equal(pipeline_run(p, NULL, NULL), 0);
    const stage *sink = &p->stages[2];
    assert_int_equal(counter(sink, "seq_records"), 50000);
    assert_int_equal(counter(sink, "seq_dups"), 0);
    assert_int_equal(counter(sink, "seq_gaps"), 0);
    assert_int_equal(counter(sink, "seq_key_order"), 0);
    assert_int_equal(p->stages[0].stats.records_out, 50000);
    histogram *h = sink->latency;
    assert_int_equal(histogram_count(h), 50000);
    assert_true(histogram_min_ns(h) >= 4900000u);
    check_all_delivered(p, 50000);
    pipeline_destroy(p);
    config_free(cfg);
}

static int run_rc;
static void *run_thread(void *arg)
{
    run_rc = pipeline_run(arg, NULL, NULL);
    return NULL;
}

/* A sink that holds every batch's delivery until its flush: the source
 * hears of no delivery while the stream runs, and of all at the end. A
 * window between aggregates records (those it takes into its state count
 * as delivered when their batch is done). */
static void test_source_held_by_sink(void **state)
{
    (void)state;
    obs_config *cfg = stage_test_config("batch_size: 32\nring_capacity: 4\n"
                           "stages:\n"
                           "  - {name: src, plugin: tp_source, params: {count: 20000}}\n"
                           "  - {name: hold, plugin: tp_hold, params: {lag: 0}}\n");
    pipeline *p = stage_test_pipeline(cfg);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_thread, p), 0);
    uint64_t st[6];
    for (;;) {
        source_stats(st);
        if (atomic_load(&p->generator_done))
            break;
        /* Read before the generator ended, so before the sink's flush:
         * only batches without records (nothing arrived) are done. */
        assert_int_equal(st[5], 0);
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    pthread_join(t, NULL);
    assert_int_equal(run_rc, 0);
    assert_int_equal(counter(&p->stages[1], "hold_records"), 20000);
    check_all_delivered(p, 20000);
    pipeline_destroy(p);
    config_free(cfg);

    cfg = stage_test_config("batch_size: 32\nring_capacity: 4\n"
               "stages:\n"
               "  - {name: src, plugin: tp_source, params: {count: 20000}}\n"
               "  - {name: win, plugin: xf_window}\n"
               "  - {name: hold, plugin: tp_hold, params: {lag: 3}}\n");
    p = stage_test_pipeline(cfg);
    assert_int_equal(pipeline_run(p, NULL, NULL), 0);
    check_all_delivered(p, 20000);
    pipeline_destroy(p);
    config_free(cfg);
}

/* A running source cannot be swapped (its batches in flight name the
 * instance to tell); the stream goes on, and every batch is still told of. */
static void test_source_not_swapped(void **state)
{
    (void)state;
    obs_config *cfg = stage_test_config("batch_size: 32\nring_capacity: 4\n"
                                        "stages:\n"
                                        "  - {name: src, plugin: tp_source, params: {count: "
                                        "1000000000}}\n"
                                        "  - {name: hold, plugin: tp_hold, params: {lag: 2}}\n");
    pipeline *p = stage_test_pipeline(cfg);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_thread, p), 0);
    while (!atomic_load(&p->running)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    swap_spec spec = {.plugin = "tp_source"};
    swap_result res;
    char err[512];
    assert_int_equal(pipeline_swap(p, "src", &spec, &res, err, sizeof err), OBS_EINVAL);
    assert_non_null(strstr(err, "stage 'src' is a source"));
    /* The stream goes on after the refusal: records keep coming (waited
     * for, at most 10 s: on a busy machine the source may not have sent
     * its first batch yet). */
    uint64_t st[6];
    source_stats(st);
    uint64_t before = st[4];
    for (int i = 0; i < 10000 && st[4] <= before; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        source_stats(st);
    }
    assert_true(st[4] > before);
    pipeline_stop(p);
    pthread_join(t, NULL);
    assert_int_equal(run_rc, 0);
    source_stats(st);
    assert_true(st[4] > 0);
    assert_int_equal(st[1], st[0]);
    assert_int_equal(st[2] + st[3], 0);
    pipeline_destroy(p);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_through_parallel),
        cmocka_unit_test(test_source_held_by_sink),
        cmocka_unit_test(test_source_not_swapped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
