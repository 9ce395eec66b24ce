/*
 * test_pool.c - batches: growth within bounds (with data pointers rebased
 * when the arena moves), the bound itself, recycling of borrowed chains, and
 * a get that blocks until another thread returns a batch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine/pool.h"

static void test_emit_grows_and_rebases(void **state)
{
    (void)state;
    pool p;
    assert_int_equal(pool_init(&p, 2, 4, 64, 1 << 16, 1 << 20), OBS_OK);
    batch *b = pool_get(&p);
    char buf[100];
    /* 1000 records of 1..100 bytes force many arena and record-vector moves. */
    for (int i = 0; i < 1000; i++) {
        int len = 1 + i % 100;
        memset(buf, 'a' + i % 26, (size_t)len);
        assert_int_equal(obs_out_emit(&b->out, buf, (uint64_t)len, (uint64_t)i, 7), OBS_OK);
    }
    assert_int_equal(b->out.n_records, 1000);
    assert_true(b->out.cap_records >= 1000);
    for (int i = 0; i < 1000; i++) {
        const obs_record *r = &b->out.records[i];
        assert_int_equal(r->len, 1 + i % 100);
        assert_int_equal(r->seq, i);
        assert_int_equal(r->t_intended_ns, 7);
        assert_true(r->data >= b->out.arena &&
                    r->data + r->len <= b->out.arena + b->out.arena_used);
        for (uint32_t k = 0; k < r->len; k++)
            assert_int_equal(r->data[k], 'a' + i % 26);
        assert_int_equal((uintptr_t)r->data % 8, 0);
    }
    pool_put(&p, b);
    /* Recycled batches keep their capacity and start empty. */
    batch *again = pool_get(&p);
    batch *other = pool_get(&p);
    batch *grown = again->out.cap_records >= 1000 ? again : other;
    assert_int_equal(grown->out.n_records, 0);
    assert_int_equal(grown->out.arena_used, 0);
    pool_put(&p, again);
    pool_put(&p, other);
    pool_destroy(&p);
}

static void test_bound_is_enforced(void **state)
{
    (void)state;
    pool p;
    assert_int_equal(pool_init(&p, 1, 4, 64, 8, 256), OBS_OK);
    batch *b = pool_get(&p);
    char buf[64] = {0};
    int ok = 0;
    while (obs_out_emit(&b->out, buf, sizeof(buf), 0, 0) == OBS_OK)
        ok++;
    assert_int_equal(ok, 4); /* 4 * 64 bytes = the 256-byte bound */
    assert_null(obs_out_reserve(&b->out, 1));
    pool_put(&p, b);
    b = pool_get(&p);
    /* The record bound applies to pass-through too. */
    obs_record r = {.data = (const uint8_t *)buf, .len = 1};
    for (int i = 0; i < 8; i++)
        assert_int_equal(obs_out_pass(&b->out, &r), OBS_OK);
    assert_int_equal(obs_out_pass(&b->out, &r), OBS_ENOMEM);
    assert_int_equal(b->out.n_passed, 8);
    pool_put(&p, b);
    pool_destroy(&p);
}

static void test_borrowed_chain_returns_whole(void **state)
{
    (void)state;
    pool p;
    assert_int_equal(pool_init(&p, 5, 4, 64, 64, 4096), OBS_OK);
    batch *a = pool_get(&p), *b = pool_get(&p), *c = pool_get(&p);
    assert_int_equal(pool_free_count(&p), 2);
    c->borrowed = b;
    b->borrowed = a;
    pool_put(&p, c);
    assert_int_equal(pool_free_count(&p), 5);
    /* Returned batches are reset. */
    for (int i = 0; i < 5; i++) {
        batch *x = pool_get(&p);
        assert_null(x->borrowed);
        assert_int_equal(x->out.n_passed, 0);
    }
    assert_int_equal(pool_free_count(&p), 0);
    pool_destroy(&p);
}

typedef struct returner {
    pool *p;
    batch *b;
} returner;

static void *return_later(void *arg)
{
    returner *r = arg;
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
    pool_put(r->p, r->b);
    return NULL;
}

static void test_get_blocks_until_put(void **state)
{
    (void)state;
    pool p;
    assert_int_equal(pool_init(&p, 1, 4, 64, 64, 4096), OBS_OK);
    returner r = {.p = &p, .b = pool_get(&p)};
    pthread_t t;
    pthread_create(&t, NULL, return_later, &r);
    batch *b = pool_get(&p); /* waits for the other thread */
    assert_ptr_equal(b, r.b);
    assert_int_equal(p.n_get_waits, 1);
    pthread_join(t, NULL);
    pool_put(&p, b);
    pool_destroy(&p);
}

static void test_init_rejects_nonsense(void **state)
{
    (void)state;
    pool p;
    assert_int_equal(pool_init(&p, 0, 4, 64, 64, 4096), OBS_EINVAL);
    assert_int_equal(pool_init(&p, 1, 128, 64, 64, 4096), OBS_EINVAL);
    assert_int_equal(pool_init(&p, 1, 4, 8192, 64, 4096), OBS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emit_grows_and_rebases),
        cmocka_unit_test(test_bound_is_enforced),
        cmocka_unit_test(test_borrowed_chain_returns_whole),
        cmocka_unit_test(test_get_blocks_until_put),
        cmocka_unit_test(test_init_rejects_nonsense),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
