/*
 * test_rust_alloc.c - allocation accounting of a Rust stage. tp_rust_alloc
 * (tests/plugins/rust/tp_rust_alloc, built with the observatory-stage SDK)
 * makes `boxes` Box allocations of `bytes` bytes per record and frees them;
 * Rust's System allocator calls malloc and free, so the interposer
 * (core/engine/alloc.c) must charge the stage exactly that many allocations,
 * frees and bytes per record: allocs_per_record = boxes. With boxes = 0 the
 * stage is charged nothing, which shows the SDK's glue (catch_unwind, the
 * batch and output wrappers) allocates nothing per batch.
 *
 * Without the interposer (sanitizer builds: alloc_interposer_active() is 0)
 * the pipeline still runs and delivers every record, and the counts are
 * not checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "../unit/stage_test_util.h"
#include "engine/alloc.h"
#include "engine/snapshot.h"

/* Runs gen_static -> tp_rust_alloc(boxes, bytes) -> sink_seqcheck and checks
 * delivery and, when counted, the stage's allocations per record. */
static void run_boxes(int boxes, int bytes)
{
    char body[1024];
    snprintf(body, sizeof body,
             "batch_size: 64\nrun: {duration: 300ms}\n"
             "load: [{shape: constant, rate: 50000}]\n"
             "stages:\n"
             "  - {name: gen, plugin: gen_static, params: {size: 16}}\n"
             "  - {name: boxes, plugin: tp_rust_alloc, params: {boxes: %d, bytes: %d}}\n"
             "  - {name: check, plugin: sink_seqcheck}\n",
             boxes, bytes);
    obs_config *cfg = stage_test_config(body);
    pipeline *p = stage_test_pipeline(cfg);
    assert_int_equal(pipeline_run(p, NULL, NULL), 0);
    const stage *sink = &p->stages[2];
    uint64_t sent = p->stages[0].stats.records_out;
    assert_true(sent > 0);
    assert_int_equal(sink->stats.records_in, sent);
    assert_int_equal(counter(sink, "seq_gaps"), 0);
    assert_int_equal(counter(sink, "seq_dups"), 0);

    obs_snapshot snap;
    assert_int_equal(pipeline_snapshot(p, &snap), 0);
    const stage_sample *mid = &snap.stages[1];
    assert_string_equal(mid->plugin, "tp_rust_alloc");
    assert_int_equal(mid->records_in, sent);
    if (alloc_interposer_active()) {
        printf("# boxes=%d bytes=%d: %llu records, %llu allocations, %llu frees, %llu bytes: "
               "%.4f allocs/record\n",
               boxes, bytes, (unsigned long long)mid->records_in, (unsigned long long)mid->allocs,
               (unsigned long long)mid->frees, (unsigned long long)mid->alloc_bytes,
               (double)mid->allocs / (double)mid->records_in);
        assert_int_equal(mid->allocs, (uint64_t)boxes * mid->records_in);
        assert_int_equal(mid->frees, (uint64_t)boxes * mid->records_in);
        assert_int_equal(mid->alloc_bytes, (uint64_t)boxes * (uint64_t)bytes * mid->records_in);
    } else {
        printf("# allocation interposer compiled out (sanitizer build): counts not checked\n");
    }
    snapshot_free(&snap);
    pipeline_destroy(p);
    config_free(cfg);
}

static void test_three_boxes(void **state)
{
    (void)state;
    run_boxes(3, 24);
}

static void test_one_large_box(void **state)
{
    (void)state;
    run_boxes(1, 4096);
}

static void test_no_box_no_allocation(void **state)
{
    (void)state;
    run_boxes(0, 24);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_boxes),
        cmocka_unit_test(test_one_large_box),
        cmocka_unit_test(test_no_box_no_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
