/*
 * test_ring.c - the SPSC batch ring: order, capacity, close/drain semantics,
 * blocking in both directions, and a two-thread stress run that would show
 * a lost wake-up as a hang (ctest's timeout) and a reordering as a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <pthread.h>
#include <time.h>

#include "observatory/stage.h"
#include "engine/ring.h"

static void test_init_rejects_bad_capacity(void **state)
{
    (void)state;
    ring r;
    assert_int_equal(ring_init(&r, 0), OBS_EINVAL);
    assert_int_equal(ring_init(&r, 1), OBS_EINVAL);
    assert_int_equal(ring_init(&r, 12), OBS_EINVAL);
    assert_int_equal(ring_init(&r, 1u << 21), OBS_EINVAL);
    assert_int_equal(ring_init(&r, 8), OBS_OK);
    ring_destroy(&r);
}

static void test_fifo_and_capacity(void **state)
{
    (void)state;
    ring r;
    assert_int_equal(ring_init(&r, 4), OBS_OK);
    assert_null(ring_try_pop(&r));
    for (uintptr_t i = 1; i <= 4; i++)
        ring_push(&r, (void *)i);
    assert_int_equal(ring_occupancy(&r), 4);
    for (uintptr_t i = 1; i <= 4; i++)
        assert_ptr_equal(ring_pop(&r), (void *)i);
    assert_null(ring_try_pop(&r));
    /* Wrap around many times. */
    for (uintptr_t i = 1; i < 1000; i++) {
        ring_push(&r, (void *)i);
        ring_push(&r, (void *)(i + 1));
        assert_ptr_equal(ring_pop(&r), (void *)i);
        assert_ptr_equal(ring_pop(&r), (void *)(i + 1));
    }
    assert_int_equal(r.n_full_waits, 0);
    ring_destroy(&r);
}

static void test_close_drains_then_null(void **state)
{
    (void)state;
    ring r;
    assert_int_equal(ring_init(&r, 8), OBS_OK);
    ring_push(&r, (void *)1);
    ring_push(&r, (void *)2);
    ring_close(&r);
    assert_ptr_equal(ring_pop(&r), (void *)1);
    assert_ptr_equal(ring_pop(&r), (void *)2);
    assert_null(ring_pop(&r));
    assert_null(ring_pop(&r));
    ring_destroy(&r);
}

typedef struct stress {
    ring *r;
    uint64_t n;
    uint64_t bad;
    unsigned consumer_delay_every; /* sleep every N items (0: never) */
} stress;

static void *producer(void *arg)
{
    stress *s = arg;
    for (uint64_t i = 1; i <= s->n; i++)
        ring_push(s->r, (void *)(uintptr_t)i);
    ring_close(s->r);
    return NULL;
}

static void *consumer(void *arg)
{
    stress *s = arg;
    uint64_t expect = 1;
    void *p;
    while ((p = ring_pop(s->r)) != NULL) {
        if ((uintptr_t)p != expect)
            s->bad++;
        expect++;
        if (s->consumer_delay_every && expect % s->consumer_delay_every == 0) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
    }
    if (expect - 1 != s->n)
        s->bad++;
    return NULL;
}

static void run_stress(uint32_t cap, uint64_t n, unsigned delay_every, ring *r)
{
    assert_int_equal(ring_init(r, cap), OBS_OK);
    stress s = {.r = r, .n = n, .consumer_delay_every = delay_every};
    pthread_t a, b;
    pthread_create(&b, NULL, consumer, &s);
    pthread_create(&a, NULL, producer, &s);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    assert_int_equal(s.bad, 0);
}

static void test_two_threads_in_order(void **state)
{
    (void)state;
    ring r;
    run_stress(2, 300000, 0, &r);
    ring_destroy(&r);
    run_stress(64, 1000000, 0, &r);
    ring_destroy(&r);
}

static void test_slow_consumer_blocks_producer(void **state)
{
    (void)state;
    ring r;
    /* The consumer sleeps 0.2 ms every 64 items: the producer must wait on
     * the full ring and the wait must be accounted. */
    run_stress(4, 20000, 64, &r);
    assert_true(r.n_full_waits > 0);
    assert_true(r.blocked_ns > 1000000); /* >1 ms in total: 312 sleeps of 0.2 ms happened */
    ring_destroy(&r);
}

static void *late_closer(void *arg)
{
    struct timespec ts = {0, 30000000};
    nanosleep(&ts, NULL);
    ring_close(arg);
    return NULL;
}

static void test_close_wakes_sleeping_consumer(void **state)
{
    (void)state;
    ring r;
    assert_int_equal(ring_init(&r, 4), OBS_OK);
    pthread_t t;
    pthread_create(&t, NULL, late_closer, &r);
    assert_null(ring_pop(&r)); /* sleeps until the close, then returns */
    pthread_join(t, NULL);
    assert_true(r.n_empty_waits >= 1);
    ring_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_rejects_bad_capacity),
        cmocka_unit_test(test_fifo_and_capacity),
        cmocka_unit_test(test_close_drains_then_null),
        cmocka_unit_test(test_two_threads_in_order),
        cmocka_unit_test(test_slow_consumer_blocks_producer),
        cmocka_unit_test(test_close_wakes_sleeping_consumer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
