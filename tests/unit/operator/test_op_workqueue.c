/*
 * test_op_workqueue.c - the work queue: a key is queued once, a key added
 * while processed comes back after done() and never goes to two workers,
 * backoff doubles per failure up to its cap and forget() resets it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include "workqueue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void test_dedupe_and_fifo(void **state)
{
    (void)state;
    workqueue *q = workqueue_new(10, 1000);
    char *k;
    workqueue_add(q, "ns/a");
    workqueue_add(q, "ns/b");
    workqueue_add(q, "ns/a");
    assert_int_equal(workqueue_len(q), 2);
    assert_int_equal(workqueue_get(q, 0, &k), 0);
    assert_string_equal(k, "ns/a");
    workqueue_done(q, k);
    free(k);
    assert_int_equal(workqueue_get(q, 0, &k), 0);
    assert_string_equal(k, "ns/b");
    workqueue_done(q, k);
    free(k);
    assert_int_equal(workqueue_get(q, 0, &k), -ETIMEDOUT);
    workqueue_free(q);
}

static void test_add_while_processing(void **state)
{
    (void)state;
    workqueue *q = workqueue_new(10, 1000);
    char *k, *k2;
    workqueue_add(q, "ns/a");
    assert_int_equal(workqueue_get(q, 0, &k), 0);
    workqueue_add(q, "ns/a");
    /* Not handed to a second worker while the first holds it. */
    assert_int_equal(workqueue_get(q, 0, &k2), -ETIMEDOUT);
    workqueue_done(q, k);
    free(k);
    assert_int_equal(workqueue_get(q, 0, &k), 0);
    assert_string_equal(k, "ns/a");
    workqueue_done(q, k);
    free(k);
    assert_int_equal(workqueue_len(q), 0);
    workqueue_free(q);
}

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(workqueue_backoff_ms(500, 300000, 1), 500);
    assert_int_equal(workqueue_backoff_ms(500, 300000, 2), 1000);
    assert_int_equal(workqueue_backoff_ms(500, 300000, 5), 8000);
    assert_int_equal(workqueue_backoff_ms(500, 300000, 30), 300000);
    assert_int_equal(workqueue_backoff_ms(500, 300000, 1000), 300000);

    workqueue *q = workqueue_new(60000, 600000);
    char *k;
    workqueue_add_rate_limited(q, "ns/a");
    workqueue_add_rate_limited(q, "ns/a");
    assert_int_equal(workqueue_failures(q, "ns/a"), 2);
    /* Delayed by its backoff: not ready now. */
    assert_int_equal(workqueue_get(q, 0, &k), -ETIMEDOUT);
    /* Waiting is not queue depth: workqueue_depth must not count it. */
    assert_int_equal(workqueue_len(q), 0);
    assert_int_equal(workqueue_waiting(q), 1);
    /* An ordinary add (a watch event) brings it forward. */
    workqueue_add(q, "ns/a");
    assert_int_equal(workqueue_get(q, 0, &k), 0);
    workqueue_forget(q, k);
    assert_int_equal(workqueue_failures(q, "ns/a"), 0);
    workqueue_done(q, k);
    free(k);
    workqueue_free(q);
}

/* A conflict (409) is retried at once, without growing the backoff, a few
 * times in a row; then it counts as a failure. */
static void test_conflict(void **state)
{
    (void)state;
    workqueue *q = workqueue_new(60000, 600000);
    char *k;
    for (int i = 0; i < WORKQUEUE_MAX_QUICK_CONFLICTS; i++) {
        assert_int_equal(workqueue_add_conflict(q, "ns/a"), 0);
        assert_int_equal(workqueue_failures(q, "ns/a"), 0);
        assert_int_equal(workqueue_get(q, 0, &k), 0);
        workqueue_done(q, k);
        free(k);
    }
    workqueue_add_conflict(q, "ns/a");
    assert_int_equal(workqueue_failures(q, "ns/a"), 1);
    assert_int_equal(workqueue_get(q, 0, &k), -ETIMEDOUT);
    /* Success resets both counts. */
    workqueue_forget(q, "ns/a");
    workqueue_add_conflict(q, "ns/a");
    assert_int_equal(workqueue_failures(q, "ns/a"), 0);
    assert_int_equal(workqueue_get(q, 0, &k), 0);
    workqueue_done(q, k);
    free(k);
    workqueue_free(q);
}

static void test_delay_elapses(void **state)
{
    (void)state;
    workqueue *q = workqueue_new(10, 1000);
    char *k;
    workqueue_add_after(q, "ns/a", 20);
    assert_int_equal(workqueue_get(q, 0, &k), -ETIMEDOUT);
    /* A blocking get wakes up when the delay passes. */
    assert_int_equal(workqueue_get(q, 5000, &k), 0);
    assert_string_equal(k, "ns/a");
    workqueue_done(q, k);
    free(k);
    workqueue_shutdown(q);
    assert_int_equal(workqueue_get(q, -1, &k), -ESHUTDOWN);
    workqueue_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedupe_and_fifo), cmocka_unit_test(test_add_while_processing),
        cmocka_unit_test(test_backoff),         cmocka_unit_test(test_conflict),
        cmocka_unit_test(test_delay_elapses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
