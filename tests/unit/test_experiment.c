/*
 * test_experiment.c - duet experiments on a live pipeline with a plugin
 * whose cost is a parameter (tp_work): A/A gives SAME in at least 19 of 20
 * short (3 s) experiments at a 2% threshold (a 1% one needs more data than
 * 3 s give on a shared 2-core machine: those end UNSTABLE, never in a false
 * FASTER/SLOWER); 10% more work gives SLOWER, 10% less FASTER; the
 * stream downstream is untouched by the experiment (sequence check); bad
 * requests are refused. Interleaved: 30% more work is SLOWER in CPU per
 * record (and never FASTER in p99 latency or throughput), at most one of
 * three A/A experiments gives a false FASTER/SLOWER on the primary metric
 * (p99 latency; the false-positive rate itself is a benchmark figure), the
 * warm-up round and the looks' rounds are left out, every experiment gets a
 * fresh seed, and no record is lost or duplicated while the variants take
 * turns on the stream. The same on a stage of two parallel instances and a
 * sink of two: every instance follows the one block schedule and a block
 * is one unit of all of them (as many units as blocks, not twice as many),
 * a clearly slower B is SLOWER, A/A gives at most one false verdict in
 * three, and every record reaches the sink exactly once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "engine/pipeline.h"
#include "lab/experiment.h"

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

/* Starts gen -> `work` -> `sink`, each the stage line's flow mapping
 * ({name: work, ...}; the sink a sink_seqcheck named check). */
static void start_pipeline(running *r, const char *work, const char *sink)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "pipeline: exp\n"
             "plugin_dirs: [%s, %s]\n"
             "batch_size: 256\n"
             "run: {duration: 0, seed: 3}\n"
             "load: [{shape: max}]\n"
             "stages:\n"
             "  - {name: gen, plugin: gen_static}\n"
             "  - %s\n"
             "  - %s\n",
             getenv("OBS_PLUGIN_DIR"), getenv("OBS_TEST_PLUGIN_DIR"), work, sink);
    char err[2048];
    memset(r, 0, sizeof *r);
    if (config_load_string("exp.yaml", yaml, &r->cfg, err, sizeof err) != 0)
        fail_msg("config: %s", err);
    if (pipeline_create(r->cfg, NULL, 0, &r->p, err, sizeof err) != 0)
        fail_msg("pipeline_create: %s", err);
    pthread_create(&r->thread, NULL, run_thread, r);
    while (!atomic_load(&r->p->running) || atomic_load(&r->p->stages[2].stats.records_in) < 1000) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

static void start_with(running *r, const char *work)
{
    start_pipeline(r, work, "{name: check, plugin: sink_seqcheck}");
}

static void start(running *r)
{
    start_with(r, "{name: work, plugin: tp_work, params: {units: 200, noise: 0.05}}");
}

static uint64_t counter(const stage *s, const char *name)
{
    for (uint32_t i = 0; i < s->host.n_counters; i++)
        if (strcmp(s->host.counters[i].name, name) == 0)
            return s->host.counters[i].value;
    return UINT64_MAX;
}

/* Stops the pipeline and checks that every record reached the sink once:
 * each instance of the sink saw no seq twice, and together they saw as
 * many records as were sent; with one instance, no seq is missing. */
static void stop(running *r)
{
    pipeline_stop(r->p);
    pthread_join(r->thread, NULL);
    assert_int_equal(r->rc, 0);
    stage *gen = &r->p->stages[0], *sink = &r->p->stages[2];
    uint64_t records = 0;
    for (uint32_t k = 0; k < sink->n_instances; k++) {
        records += counter(sink->instances[k], "seq_records");
        assert_int_equal(counter(sink->instances[k], "seq_dups"), 0);
    }
    assert_int_equal(records, gen->stats.records_out);
    if (sink->n_instances == 1) {
        assert_int_equal(sink->stats.records_in, gen->stats.records_out);
        assert_int_equal(counter(sink, "seq_gaps"), 0);
    }
}

static void finish(running *r)
{
    stop(r);
    pipeline_destroy(r->p);
    config_free(r->cfg);
}

/* Runs one experiment to its end and returns its JSON (a new reference). */
static json_t *run_experiment(running *r, const char *units, int aa, double seconds,
                              double threshold, exp_mode mode, uint32_t block_ms)
{
    cfg_param p[2] = {{.key = "units", .value = (char *)units}, {.key = "noise", .value = "0.05"}};
    exp_spec spec = {.stage = "work",
                     .plugin = aa ? NULL : "tp_work",
                     .aa = aa,
                     .params = p,
                     .n_params = 2,
                     .params_given = !aa,
                     .max_seconds = seconds,
                     .threshold = threshold,
                     .n_looks = 4,
                     .mode = mode,
                     .block_ms = block_ms};
    experiment *e = NULL;
    char err[1024];
    if (experiment_start(r->p, &spec, NULL, 0, &e, err, sizeof err) != 0)
        fail_msg("experiment_start: %s", err);
    assert_true(experiment_wait(e, 60000000000ull));
    json_t *j = experiment_json(e);
    if (getenv("OBS_TEST_VERBOSE")) {
        char *t = json_dumps(json_object_get(j, "metrics"), JSON_COMPACT);
        printf("%s %s\n", json_string_value(json_object_get(j, "verdict")), t);
        free(t);
    }
    return j;
}

/* Runs one duet experiment to its end and returns its verdict (static string). */
static const char *verdict_of(running *r, const char *units, int aa, double seconds,
                              double threshold)
{
    json_t *j = run_experiment(r, units, aa, seconds, threshold, EXP_DUET, 0);
    static char v[32];
    snprintf(v, sizeof v, "%s", json_string_value(json_object_get(j, "verdict")));
    json_decref(j);
    return v;
}

static void test_aa_is_same(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* The false-positive rate is a property of the measurement in the build
     * users run: an unoptimised, instrumented build changes what a batch
     * costs from one call to the next (allocator, shadow memory) and is
     * not calibrated. The functional tests below still run here. */
    skip();
#endif
    running r;
    start(&r);
    int same = 0, wrong = 0;
    for (int i = 0; i < 20; i++) {
        const char *v = verdict_of(&r, "200", 1, 3.0, 0.02);
        same += strcmp(v, "SAME") == 0;
        wrong += strcmp(v, "FASTER") == 0 || strcmp(v, "SLOWER") == 0;
        if (strcmp(v, "SAME") != 0)
            printf("A/A experiment %d: %s\n", i + 1, v);
    }
    printf("A/A: %d of 20 experiments SAME, %d FASTER or SLOWER\n", same, wrong);
    /* A bound that holds on a busy shared machine too (CI runs beside other
     * work): 3 s experiments there now and then end UNSTABLE (undecided,
     * not wrong) and, rarely, with a false verdict. The false-positive rate
     * itself is measured over hundreds of experiments by the benchmark
     * (tests/bench/run.sh ab: 0 of 240 in docs/experiments.md). */
    assert_true(wrong <= 2);
    assert_true(same >= 16);
    finish(&r);
}

static void test_more_work_is_slower_less_is_faster(void **state)
{
    (void)state;
    running r;
    start(&r);
    assert_string_equal(verdict_of(&r, "220", 0, 3, 0.01), "SLOWER");
    assert_string_equal(verdict_of(&r, "180", 0, 3, 0.01), "FASTER");
    finish(&r);
}

/* The verdict of metric `name` in an experiment's JSON (borrowed from j). */
static const char *metric_verdict(json_t *j, const char *name)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(j, "metrics"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "name")), name) == 0)
            return json_string_value(json_object_get(m, "verdict"));
    }
    fail_msg("no metric %s", name);
    return NULL;
}

static void print_metrics(const char *what, json_t *j)
{
    size_t i;
    json_t *m;
    printf("%s: %" JSON_INTEGER_FORMAT " blocks, %" JSON_INTEGER_FORMAT " latency blocks\n", what,
           json_integer_value(json_object_get(j, "samples")),
           json_integer_value(json_object_get(j, "latency_blocks")));
    json_array_foreach(json_object_get(j, "metrics"), i, m)
    {
        printf("  %-18s A %14.1f B %14.1f delta %+7.2f%% %s\n",
               json_string_value(json_object_get(m, "name")),
               json_number_value(json_object_get(m, "a")),
               json_number_value(json_object_get(m, "b")),
               100 * json_number_value(json_object_get(m, "delta")),
               json_string_value(json_object_get(m, "verdict")));
    }
}

static void test_interleaved(void **state)
{
    (void)state;
    running r;
    start(&r);
    /* 30% more work. The stage is the bottleneck of a max-rate stream, so
     * latency and throughput show it too; CPU per record is the surest. */
    json_t *j = run_experiment(&r, "260", 0, 5, 0.02, EXP_INTERLEAVED, 20);
    print_metrics("interleaved, units 260 against 200", j);
    assert_string_equal(json_string_value(json_object_get(j, "mode")), "interleaved");
    assert_int_equal(json_integer_value(json_object_get(j, "block_ms")), 20);
    assert_true(json_integer_value(json_object_get(j, "samples")) >= 120);
    assert_true(json_integer_value(json_object_get(j, "latency_blocks")) >= 120);
    assert_int_equal(json_array_size(json_object_get(j, "metrics")), 6);
    assert_string_equal(metric_verdict(j, "cpu_ns_per_record"), "SLOWER");
    assert_string_not_equal(metric_verdict(j, "p99_latency_ns"), "FASTER");
    assert_string_not_equal(metric_verdict(j, "records_per_s"), "FASTER");
    /* Left out: the warm-up round, and the rounds of each look that
     * bootstrapped (more where looks are slow, e.g. under a sanitizer);
     * kept and left-out blocks together are at most the blocks elapsed. */
    json_int_t skipped = json_integer_value(json_object_get(j, "skipped_blocks"));
    double blocks = json_number_value(json_object_get(j, "elapsed_s")) * 1000 / 20;
    printf("skipped blocks: %" JSON_INTEGER_FORMAT " of %.0f\n", skipped, blocks);
    assert_true(skipped >= 4);
    assert_true((double)(skipped + json_integer_value(json_object_get(j, "samples"))) <=
                blocks + 2);
    json_int_t seed0 = json_integer_value(json_object_get(j, "seed"));
    assert_true(seed0 > 0);
    json_decref(j);
    /* A/A: a false FASTER/SLOWER on the primary metric at most once in
     * three (α is 1% per experiment; a systematic error would show in all
     * three). Each gets its own seed. */
    int false_verdicts = 0;
    for (int i = 0; i < 3; i++) {
        j = run_experiment(&r, "200", 1, 4, 0.02, EXP_INTERLEAVED, 20);
        print_metrics("interleaved A/A", j);
        const char *v = json_string_value(json_object_get(j, "verdict"));
        false_verdicts += strcmp(v, "FASTER") == 0 || strcmp(v, "SLOWER") == 0;
        /* Run to its 4th look: the 3rd (146 blocks, past the 30 rounds a
         * bootstrap needs) computed in a round of its own, left out. */
        if (json_integer_value(json_object_get(j, "looks")) == 4)
            assert_true(json_integer_value(json_object_get(j, "skipped_blocks")) >= 8);
        json_int_t seed = json_integer_value(json_object_get(j, "seed"));
        assert_true(seed > 0 && seed != seed0);
        seed0 = seed;
        json_decref(j);
    }
    assert_true(false_verdicts <= 1);
    finish(&r);
}

/* Under a sanitizer the threads slow down unevenly and a stage or sink
 * instance may be held up for longer than the merge waits for it. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* What an interleaved experiment on parallel instances must give whatever
 * its verdicts: the instances reported; one unit per block of all
 * instances, never one per instance (kept and left-out blocks together at
 * most the blocks elapsed, and at least half of them, on both sides); and
 * few records measured after their block was added (an instance's share
 * comes in late only when it lags by half a second). */
static void check_parallel_blocks(json_t *j, json_int_t n_stage, json_int_t n_sink)
{
    assert_int_equal(json_integer_value(json_object_get(j, "instances")), n_stage);
    assert_int_equal(json_integer_value(json_object_get(j, "sink_instances")), n_sink);
    double blocks = json_number_value(json_object_get(j, "elapsed_s")) * 1000 / 20;
    json_int_t kept = json_integer_value(json_object_get(j, "samples"));
    json_int_t latency = json_integer_value(json_object_get(j, "latency_blocks"));
    json_int_t skipped = json_integer_value(json_object_get(j, "skipped_blocks"));
    json_int_t records = json_integer_value(json_object_get(j, "records"));
    json_int_t late = json_integer_value(json_object_get(j, "late_records"));
    printf("%.0f blocks: %" JSON_INTEGER_FORMAT " kept, %" JSON_INTEGER_FORMAT
           " with latency, %" JSON_INTEGER_FORMAT " left out; %" JSON_INTEGER_FORMAT
           " records, %" JSON_INTEGER_FORMAT " late\n",
           blocks, kept, latency, skipped, records, late);
    assert_true(skipped >= 4);
    assert_true((double)(kept + skipped) <= blocks + 2);
    assert_true((double)(latency + skipped) <= blocks + 2);
    assert_true((double)(kept + skipped) >= blocks / 2);
    assert_true((double)(latency + skipped) >= blocks / 2);
    assert_true(records > 0);
    assert_true(late * (SANITIZED ? 4 : 20) < records);
}

/* Interleaved on a stage of two instances, into a sink of two, then into a
 * sink of one (where the sink checks every seq strictly). */
static void test_interleaved_parallel(void **state)
{
    (void)state;
    running r;
    start_pipeline(&r,
                   "{name: work, plugin: tp_work, parallelism: 2, "
                   "params: {units: 200, noise: 0.05}}",
                   "{name: check, plugin: sink_seqcheck, parallelism: 2, params: {order: none}}");
    assert_int_equal(r.p->stages[1].n_instances, 2);
    assert_int_equal(r.p->stages[2].n_instances, 2);
    /* 50% more work: CPU per record is SLOWER whatever the machine does;
     * latency and throughput are never better. */
    json_t *j = run_experiment(&r, "300", 0, 5, 0.02, EXP_INTERLEAVED, 20);
    print_metrics("interleaved, 2 instances, units 300 against 200", j);
    check_parallel_blocks(j, 2, 2);
    assert_string_equal(metric_verdict(j, "cpu_ns_per_record"), "SLOWER");
    assert_string_not_equal(metric_verdict(j, "p99_latency_ns"), "FASTER");
    assert_string_not_equal(metric_verdict(j, "records_per_s"), "FASTER");
    json_decref(j);
    /* A/A: as on one instance, a false FASTER/SLOWER on the primary metric
     * at most once in three (65 runs gave 1, docs/experiments.md). Not
     * counted under a sanitizer: the instrumented build is not calibrated
     * (see test_aa_is_same), and the checks of the blocks still run. */
    int false_verdicts = 0;
    for (int i = 0; i < 3; i++) {
        j = run_experiment(&r, "200", 1, 4, 0.02, EXP_INTERLEAVED, 20);
        print_metrics("interleaved A/A, 2 instances", j);
        check_parallel_blocks(j, 2, 2);
        const char *v = json_string_value(json_object_get(j, "verdict"));
        false_verdicts += strcmp(v, "FASTER") == 0 || strcmp(v, "SLOWER") == 0;
        json_decref(j);
    }
    if (!SANITIZED)
        assert_true(false_verdicts <= 1);
    /* Every instance let go of its B; nothing lost or duplicated. */
    for (uint32_t k = 0; k < 2; k++)
        assert_null(atomic_load(&r.p->stages[1].instances[k]->variant));
    finish(&r);

    start_pipeline(&r,
                   "{name: work, plugin: tp_work, parallelism: 2, "
                   "params: {units: 200, noise: 0.05}}",
                   "{name: check, plugin: sink_seqcheck, params: {order: none}}");
    j = run_experiment(&r, "300", 0, 4, 0.02, EXP_INTERLEAVED, 20);
    print_metrics("interleaved, 2 instances into one sink, units 300 against 200", j);
    check_parallel_blocks(j, 2, 1);
    assert_string_equal(metric_verdict(j, "cpu_ns_per_record"), "SLOWER");
    json_decref(j);
    finish(&r);
}

static void test_refusals(void **state)
{
    (void)state;
    running r;
    start(&r);
    char err[1024];
    experiment *e = NULL;
    exp_spec bad_stage = {.stage = "gen", .aa = 1};
    assert_int_equal(experiment_start(r.p, &bad_stage, NULL, 0, &e, err, sizeof err), OBS_EINVAL);
    assert_non_null(strstr(err, "transforms"));
    exp_spec bad_plugin = {.stage = "work", .plugin = "tp_major2"};
    assert_int_equal(experiment_start(r.p, &bad_plugin, NULL, 0, &e, err, sizeof err), OBS_EABI);
    exp_spec bad_block = {.stage = "work", .aa = 1, .mode = EXP_INTERLEAVED, .block_ms = 5};
    assert_int_equal(experiment_start(r.p, &bad_block, NULL, 0, &e, err, sizeof err), OBS_EINVAL);
    assert_non_null(strstr(err, "block_ms"));
    exp_spec ok = {.stage = "work", .aa = 1, .max_seconds = 30};
    assert_int_equal(experiment_start(r.p, &ok, NULL, 0, &e, err, sizeof err), 0);
    experiment *e2 = NULL;
    assert_int_equal(experiment_start(r.p, &ok, NULL, 0, &e2, err, sizeof err), OBS_EAGAIN);
    experiment_stop(e);
    assert_true(experiment_wait(e, 30000000000ull));
    finish(&r);
}

/* A duet's statistics keep EXP_DUET_MAX_UNITS units, each of many batch
 * pairs once the run is long (neighbouring pairs share noise); the spec
 * may choose another capacity. */
static void test_units(void **state)
{
    (void)state;
    running r;
    start(&r);
    char err[1024];
    experiment *e = NULL;
    exp_spec duet = {.stage = "work", .aa = 1, .max_seconds = 1, .n_looks = 1};
    assert_int_equal(experiment_start(r.p, &duet, NULL, 0, &e, err, sizeof err), 0);
    assert_true(experiment_wait(e, 30000000000ull));
    abstats_acc acc;
    assert_int_equal(experiment_copy_acc(e, EXP_M_P99, &acc), OBS_EINVAL);
    assert_int_equal(experiment_copy_acc(e, EXP_M_CPU, &acc), 0);
    assert_int_equal(acc.max_units, EXP_DUET_MAX_UNITS);
    uint64_t pairs = abstats_count(&acc, ABSTATS_A);
    printf("duet, 1 s: %" PRIu64 " pairs in %zu units of %" PRIu64 "\n", pairs, acc.n_units,
           acc.per_unit);
    assert_true(acc.n_units <= EXP_DUET_MAX_UNITS);
    assert_int_equal(acc.n_units * acc.per_unit + acc.open_adds, pairs);
    assert_true(pairs >= 4 * EXP_DUET_MAX_UNITS);
    assert_true(acc.per_unit >= 2);
    abstats_destroy(&acc);
    exp_spec wide = {.stage = "work", .aa = 1, .max_seconds = 0.5, .n_looks = 1, .max_units = 4096};
    assert_int_equal(experiment_start(r.p, &wide, NULL, 0, &e, err, sizeof err), 0);
    assert_true(experiment_wait(e, 30000000000ull));
    assert_int_equal(experiment_copy_acc(e, EXP_M_CPU, &acc), 0);
    assert_int_equal(acc.max_units, 4096);
    abstats_destroy(&acc);
    finish(&r);
}

/* A duet draws its order per batch: A runs first on about half of the
 * batches, and a batch's order does not follow from the previous one's
 * (under strict alternation, the state one batch leaves to the next could
 * fall into step with the order). tp_order counts the order of every pair. */
static void test_order(void **state)
{
    (void)state;
    running r;
    start_with(&r, "{name: work, plugin: tp_order}");
    char err[1024];
    experiment *e = NULL;
    exp_spec duet = {.stage = "work", .aa = 1, .max_seconds = 1, .n_looks = 1};
    assert_int_equal(experiment_start(r.p, &duet, NULL, 0, &e, err, sizeof err), 0);
    assert_true(experiment_wait(e, 30000000000ull));
    stop(&r);
    const stage *work = &r.p->stages[1];
    uint64_t pairs = counter(work, "duet_pairs"), a_first = counter(work, "duet_a_first"),
             repeats = counter(work, "duet_order_repeats");
    printf("duet order: %" PRIu64 " pairs, A first in %" PRIu64 ", same order as the pair before "
           "in %" PRIu64 "\n",
           pairs, a_first, repeats);
    assert_true(pairs >= 1000);
    /* Both counts are binomial(n, 1/2) for a fair coin per batch: within 5
     * standard deviations of n/2 (a false alarm once in 1.7 million). */
    double n = (double)pairs, sd = sqrt(n) / 2;
    assert_true(fabs((double)a_first - n / 2) < 5 * sd);
    assert_true(fabs((double)repeats - (n - 1) / 2) < 5 * sd);
    pipeline_destroy(r.p);
    config_free(r.cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aa_is_same),
        cmocka_unit_test(test_more_work_is_slower_less_is_faster),
        cmocka_unit_test(test_interleaved),
        cmocka_unit_test(test_interleaved_parallel),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
