/*
 * test_parallel.c - stages run as parallel instances (parallelism: N):
 * every record delivered exactly once at N = 1, 2 and 4, spread round
 * robin or by key; under partition: key every record of one key reaches
 * one instance, in order, including records a parser emitted anew (the
 * host gives them the key of their input); each instance has its own
 * counters and the stage's figures are their sums (and /metrics has a
 * series per instance, labelled); every batch goes back
 * to the pool, sub-batches of a split included; a duet experiment runs on
 * every instance at once (interleaved ones on parallel stages are
 * test_experiment's). Also under ThreadSanitizer.
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
#include "engine/pipeline.h"
#include "engine/snapshot.h"
#include "engine/variant.h"
#include "lab/experiment.h"
#include "measure/histogram.h"
#include "measure/metrics_prom.h"
#include "stage_test_util.h"

/* The sum of counter `name` over the instances of pipeline stage s. */
static uint64_t counter_sum(const stage *s, const char *name)
{
    uint64_t v = 0;
    for (uint32_t k = 0; k < s->n_instances; k++)
        v += counter(s->instances[k], name);
    return v;
}

static int run_rc;

static void *run_thread(void *arg)
{
    run_rc = pipeline_run(arg, NULL, NULL);
    return NULL;
}

/* Runs p to its end and checks what every parallel run must give: every
 * record the generator sent reached the seqcheck sink exactly once (the
 * sink checks in the order the pipeline promises), each stage's records
 * are the sum of its instances', the sink recorded a latency per record,
 * and every batch is back in the pool. */
static void run_exactly_once(pipeline *p)
{
    assert_int_equal(pipeline_run(p, NULL, NULL), 0);
    const stage *gen = &p->stages[0], *sink = &p->stages[p->n_stages - 1];
    uint64_t sent = gen->stats.records_out;
    assert_true(sent > 1000);
    assert_int_equal(counter_sum(sink, "seq_records"), sent);
    assert_int_equal(counter_sum(sink, "seq_dups"), 0);
    assert_int_equal(counter_sum(sink, "seq_key_order"), 0);
    assert_int_equal(counter_sum(sink, "seq_key_conflicts"), 0);
    if (sink->n_instances == 1)
        assert_int_equal(counter(sink, "seq_gaps"), 0);
    for (size_t i = 1; i < p->n_stages; i++) {
        const stage *s = &p->stages[i];
        stage_snapshot snap;
        stage_snapshot_take(s, &snap);
        assert_int_equal(snap.records_in, sent);
        uint64_t in = 0;
        for (uint32_t k = 0; k < s->n_instances; k++)
            in += s->instances[k]->stats.records_in;
        assert_int_equal(in, sent);
    }
    histogram *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    for (uint32_t k = 0; k < sink->n_instances; k++)
        histogram_merge(h, sink->instances[k]->latency);
    assert_int_equal(histogram_count(h), sent);
    free(h);
    assert_int_equal(pool_free_count(&p->pool), p->pool.n_batches);
}

/* Round robin: whole batches to each instance in turn; the sink sees each
 * seq once, in no particular order across instances. */
static void test_round_robin(void **state)
{
    (void)state;
    static const unsigned ns[] = {1, 2, 4};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        char body[2048];
        snprintf(body, sizeof body,
                 "batch_size: 64\nring_capacity: 4\nrun: {duration: 300ms}\n"
                 "load: [{shape: max}]\n"
                 "stages:\n"
                 "  - {name: gen, plugin: gen_static, params: {size: 16}}\n"
                 "  - {name: pass, plugin: xf_pass, parallelism: %u}\n"
                 "  - {name: echo, plugin: tp_echo, parallelism: %u}\n"
                 "  - {name: check, plugin: sink_seqcheck, params: {order: none}}\n",
                 ns[i], ns[i] == 1 ? 1 : ns[i] - 1);
        obs_config *cfg = stage_test_config(body);
        pipeline *p = stage_test_pipeline(cfg);
        assert_int_equal(p->stages[1].n_instances, ns[i]);
        assert_int_equal(p->n_threads, 2 + ns[i] + (ns[i] == 1 ? 1 : ns[i] - 1));
        run_exactly_once(p);
        /* Every instance had its turns. */
        for (uint32_t k = 0; k < ns[i]; k++)
            assert_true(p->stages[1].instances[k]->stats.batches_in > 0);
        pipeline_destroy(p);
        config_free(cfg);
    }
}

/* partition: key on a transform: every record of a key through one
 * instance, so the sink sees each key's records in seq order. */
static void test_key_partition_keeps_key_order(void **state)
{
    (void)state;
    static const unsigned ns[] = {1, 2, 4};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        char body[2048];
        snprintf(body, sizeof body,
                 "batch_size: 128\nring_capacity: 4\nrun: {duration: 300ms, seed: 5}\n"
                 "load: [{shape: max}]\n"
                 "stages:\n"
                 "  - {name: ticks, plugin: gen_market, params: {symbols: 200}}\n"
                 "  - {name: pass, plugin: xf_pass, parallelism: %u, partition: key}\n"
                 "  - {name: check, plugin: sink_seqcheck, params: {order: key}}\n",
                 ns[i]);
        obs_config *cfg = stage_test_config(body);
        pipeline *p = stage_test_pipeline(cfg);
        run_exactly_once(p);
        if (ns[i] > 1)
            for (uint32_t k = 0; k < ns[i]; k++)
                assert_true(p->stages[1].instances[k]->stats.records_in > 0);
        pipeline_destroy(p);
        config_free(cfg);
    }
}

/* A parser emits new records (key 0); the host gives each the key of its
 * input record, so a sink partitioned by key downstream gets every key on
 * one instance, and the keys spread over all of them. */
static void test_keys_survive_a_parser(void **state)
{
    (void)state;
    obs_config *cfg = stage_test_config("batch_size: 256\nrun: {duration: 300ms, seed: 9}\n"
                           "load: [{shape: max}]\n"
                           "stages:\n"
                           "  - {name: ticks, plugin: gen_market, params: {symbols: 300}}\n"
                           "  - {name: parse, plugin: xf_json_fast}\n"
                           "  - {name: check, plugin: sink_seqcheck, parallelism: 3, "
                           "partition: key, params: {order: key, exclusive_keys: true}}\n");
    pipeline *p = stage_test_pipeline(cfg);
    assert_true(p->stages[1].keep_keys);
    assert_true(p->stages[1].out_by_key);
    run_exactly_once(p);
    const stage *sink = &p->stages[2];
    uint64_t sent = p->stages[0].stats.records_out;
    for (uint32_t k = 0; k < 3; k++) {
        uint64_t got = counter(sink->instances[k], "seq_records");
        /* 300 Zipf-weighted symbols over 3 instances: none is left out. */
        assert_true(got > sent / 50);
    }
    /* The stage's snapshot sums its instances and keeps each one's. */
    obs_snapshot snap;
    assert_int_equal(pipeline_snapshot(p, &snap), 0);
    const stage_sample *ss = &snap.stages[2];
    assert_int_equal(ss->n_instances, 3);
    assert_non_null(ss->instances);
    uint64_t sum = 0;
    for (uint32_t k = 0; k < 3; k++)
        sum += ss->instances[k].records_in;
    assert_int_equal(ss->records_in, sum);
    assert_int_equal(sum, sent);
    assert_int_equal(histogram_count(ss->latency), sent);
    assert_int_equal(snap.stages[1].n_instances, 1);
    assert_null(snap.stages[1].instances);
    /* /metrics: one series per instance, labelled; the one-instance stages
     * as before, without the label; the instances add up to the stage. */
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(metrics_render(&snap, &text, &len), 0);
    uint64_t total = 0;
    for (uint32_t k = 0; k < 3; k++) {
        char want[256];
        snprintf(want, sizeof want,
                 "observatory_records_in_total{pipeline=\"t\",stage=\"check\","
                 "plugin=\"sink_seqcheck\",version=\"1.0.0\",instance=\"%u\"} ",
                 k);
        const char *line = strstr(text, want);
        assert_non_null(line);
        total += strtoull(line + strlen(want), NULL, 10);
    }
    assert_int_equal(total, sent);
    assert_null(strstr(text, "stage=\"check\",plugin=\"sink_seqcheck\",version=\"1.0.0\"} "));
    assert_non_null(strstr(text, "observatory_records_in_total{pipeline=\"t\",stage=\"parse\","
                                 "plugin=\"xf_json_fast\",version=\"1.0.0\"} "));
    free(text);
    snapshot_free(&snap);
    pipeline_destroy(p);
    config_free(cfg);
}

/* A duet on a parallel stage: every instance runs its own B beside its A,
 * all their batch pairs feed one experiment, which ends, lets go of every
 * B, and loses nothing. */
static void test_duet_on_parallel_stage(void **state)
{
    (void)state;
    obs_config *cfg = stage_test_config("batch_size: 64\nrun: {duration: 0}\nload: [{shape: constant, "
                           "rate: 200000}]\n"
                           "stages:\n"
                           "  - {name: gen, plugin: gen_static}\n"
                           "  - {name: pass, plugin: tp_echo, parallelism: 2}\n"
                           "  - {name: check, plugin: sink_seqcheck, params: {order: none}}\n");
    pipeline *p = stage_test_pipeline(cfg);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_thread, p), 0);
    while (!atomic_load(&p->running) || p->stages[0].stats.records_out < 1000) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    char err[512];
    experiment *e = NULL;
    exp_spec duet = {.stage = "pass", .aa = 1, .max_seconds = 0.6, .n_looks = 2};
    if (experiment_start(p, &duet, NULL, 0, &e, err, sizeof err) != 0)
        fail_msg("experiment_start: %s", err);
    /* Every instance runs a B of its own (the first look is 0.3 s away). */
    stage_variant *v0 = atomic_load(&p->stages[1].instances[0]->variant);
    stage_variant *v1 = atomic_load(&p->stages[1].instances[1]->variant);
    assert_non_null(v0);
    assert_non_null(v1);
    assert_ptr_not_equal(v0, v1);
    assert_ptr_not_equal(v0->b.instance, v1->b.instance);
    assert_true(experiment_wait(e, 10000000000ull));
    json_t *j = experiment_json(e);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "done");
    assert_true(json_integer_value(json_object_get(j, "samples")) > 100);
    json_decref(j);
    /* Every instance let go of its B. */
    for (uint32_t k = 0; k < 2; k++)
        assert_null(atomic_load(&p->stages[1].instances[k]->variant));
    pipeline_stop(p);
    pthread_join(t, NULL);
    assert_int_equal(run_rc, 0);
    const stage *sink = &p->stages[2];
    assert_int_equal(counter(sink, "seq_records"), p->stages[0].stats.records_out);
    assert_int_equal(counter(sink, "seq_dups"), 0);
    assert_int_equal(counter(sink, "seq_gaps"), 0);
    pipeline_destroy(p);
    config_free(cfg);
}

/* Rings grow as M x N between parallel stages: a pipeline whose rings could
 * hold more batches in flight than the pool's budget is refused when it is
 * built, with the figures and what to lower, instead of reserving them. */
static void test_pool_budget_refuses(void **state)
{
    (void)state;
    obs_config *cfg = stage_test_config("batch_size: 1024\nring_capacity: 4096\nrun: {duration: 100ms}\n"
                           "stages:\n"
                           "  - {name: gen, plugin: gen_static}\n"
                           "  - {name: a, plugin: xf_pass, parallelism: 16}\n"
                           "  - {name: b, plugin: xf_pass, parallelism: 16}\n"
                           "  - {name: sink, plugin: sink_null}\n");
    pipeline *p = NULL;
    char err[1024];
    assert_int_equal(pipeline_create(cfg, NULL, 0, &p, err, sizeof err), OBS_ECONFIG);
    assert_null(p);
    assert_non_null(strstr(err, "batches in flight"));
    assert_non_null(strstr(err, "lower ring_capacity, parallelism or batch_size"));
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_robin),
        cmocka_unit_test(test_key_partition_keeps_key_order),
        cmocka_unit_test(test_keys_survive_a_parser),
        cmocka_unit_test(test_duet_on_parallel_stage),
        cmocka_unit_test(test_pool_budget_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
