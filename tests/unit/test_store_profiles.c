/*
 * test_store_profiles.c - the windows of continuous profiling in the store
 * (store_put_profile, store_profiles_scan; docs/storage.md, "Profiles"):
 * windows of interleaved runs read back per run, in time order and with
 * their bytes, a time range selecting by window start, the key layout byte
 * by byte, a store written before the "profiles" family existed (read-only
 * without it, read-write creating it), a failed window write leaving
 * nothing, and run_profile_select's errors on what the store holds. The
 * rest of the store is tested in test_store.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "engine/host.h"
#include "store/run_profile.h"
#include "store/store.h"
#include "store_test_util.h"

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */

/* ------------------------------------------------------------------------ */
/* Profiles (continuous mode)                                                */

typedef struct seen_windows {
    size_t n;
    uint64_t start[16];
    char blob[16][32];
    size_t len[16];
    int stop_after; /* 0: never; else return 7 after this many */
} seen_windows;

static int see_window(void *ctx, uint64_t start_ns, const void *blob, size_t len)
{
    seen_windows *w = ctx;
    if (w->n < 16) {
        w->start[w->n] = start_ns;
        w->len[w->n] = len;
        memcpy(w->blob[w->n], blob, len < 32 ? len : 32);
    }
    w->n++;
    return w->stop_after && (int)w->n == w->stop_after ? 7 : 0;
}

/* Windows of two interleaved runs come back per run, in time order, with
 * their bytes; a time range selects by window start, [from, to). */
static void test_profiles_roundtrip(void **state)
{
    fx *f = *state;
    store *s = open_ok(f->path);
    uint64_t a, b;
    assert_int_equal(store_run_begin(s, &info, &a), 0);
    assert_int_equal(store_run_begin(s, &info, &b), 0);
    assert_int_equal(store_put_profile(s, a, 3000, 3500, "a3", 2), 0);
    assert_int_equal(store_put_profile(s, b, 1000, 1500, "b1", 2), 0);
    assert_int_equal(store_put_profile(s, a, 1000, 1500, "a1", 2), 0);
    assert_int_equal(store_put_profile(s, a, 2000, 2500, "a2-longer", 9), 0);
    assert_int_equal(store_put_profile(s, a, 4000, 4000, "", 0), 0); /* an empty window */
    /* An end before the start is refused and writes nothing. */
    assert_int_equal(store_put_profile(s, a, 5000, 4999, "x", 1), OBS_EINVAL);

    seen_windows w = {0};
    assert_int_equal(store_profiles_scan(s, a, 0, UINT64_MAX, see_window, &w), 0);
    assert_int_equal(w.n, 4);
    assert_int_equal(w.start[0], 1000);
    assert_int_equal(w.start[1], 2000);
    assert_int_equal(w.start[2], 3000);
    assert_int_equal(w.start[3], 4000);
    assert_int_equal(w.len[1], 9);
    assert_memory_equal(w.blob[1], "a2-longer", 9);
    assert_memory_equal(w.blob[0], "a1", 2);
    assert_int_equal(w.len[3], 0);

    memset(&w, 0, sizeof w);
    assert_int_equal(store_profiles_scan(s, b, 0, UINT64_MAX, see_window, &w), 0);
    assert_int_equal(w.n, 1);
    assert_memory_equal(w.blob[0], "b1", 2);

    /* [2000, 3000) holds the window starting at 2000 only; [2001, 3001)
     * the one at 3000; an empty range none. */
    memset(&w, 0, sizeof w);
    assert_int_equal(store_profiles_scan(s, a, 2000, 3000, see_window, &w), 0);
    assert_int_equal(w.n, 1);
    assert_int_equal(w.start[0], 2000);
    memset(&w, 0, sizeof w);
    assert_int_equal(store_profiles_scan(s, a, 2001, 3001, see_window, &w), 0);
    assert_int_equal(w.n, 1);
    assert_int_equal(w.start[0], 3000);
    memset(&w, 0, sizeof w);
    assert_int_equal(store_profiles_scan(s, a, 3000, 3000, see_window, &w), 0);
    assert_int_equal(w.n, 0);

    /* A nonzero return stops the scan and is returned. */
    memset(&w, 0, sizeof w);
    w.stop_after = 2;
    assert_int_equal(store_profiles_scan(s, a, 0, UINT64_MAX, see_window, &w), 7);
    assert_int_equal(w.n, 2);

    /* An unknown run is OBS_ENOENT, a known one without windows is empty. */
    memset(&w, 0, sizeof w);
    assert_int_equal(store_profiles_scan(s, 99, 0, UINT64_MAX, see_window, &w), OBS_ENOENT);
    uint64_t c;
    assert_int_equal(store_run_begin(s, &info, &c), 0);
    assert_int_equal(store_profiles_scan(s, c, 0, UINT64_MAX, see_window, &w), 0);
    assert_int_equal(w.n, 0);

    /* The same start replaces the window. */
    assert_int_equal(store_put_profile(s, b, 1000, 1600, "b1-again", 8), 0);
    memset(&w, 0, sizeof w);
    assert_int_equal(store_profiles_scan(s, b, 0, UINT64_MAX, see_window, &w), 0);
    assert_int_equal(w.n, 1);
    assert_memory_equal(w.blob[0], "b1-again", 8);
    store_close(s);

    /* After a reopen, read-only, everything is there and writes fail. */
    store *ro = NULL;
    char err[512];
    assert_int_equal(store_open_flags(f->path, STORE_READONLY, &ro, err, sizeof(err)), 0);
    memset(&w, 0, sizeof w);
    assert_int_equal(store_profiles_scan(ro, a, 0, UINT64_MAX, see_window, &w), 0);
    assert_int_equal(w.n, 4);
    assert_int_equal(store_put_profile(ro, a, 9000, 9001, "r", 1), OBS_EINVAL);
    store_close(ro);

    /* The bytes: family "profiles", key run(8, BE) | start_ns(8, BE), the
     * value as given. */
    const char *names[] = {"default", "profiles"};
    const rocksdb_options_t *cfo[2];
    rocksdb_column_family_handle_t *h[2];
    rocksdb_options_t *o = rocksdb_options_create();
    cfo[0] = cfo[1] = o;
    char *dberr = NULL;
    rocksdb_t *db =
        rocksdb_open_for_read_only_column_families(o, f->path, 2, names, cfo, h, 0, &dberr);
    if (dberr)
        fail_msg("%s", dberr);
    rocksdb_readoptions_t *rdo = rocksdb_readoptions_create();
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, rdo, h[1]);
    rocksdb_iter_seek_to_first(it);
    assert_true(rocksdb_iter_valid(it));
    size_t klen, vlen;
    const char *k = rocksdb_iter_key(it, &klen);
    assert_int_equal(klen, 16);
    assert_memory_equal(k, "\0\0\0\0\0\0\0\1\0\0\0\0\0\0\x03\xe8", 16); /* run 1, 1000 ns */
    const char *v = rocksdb_iter_value(it, &vlen);
    assert_int_equal(vlen, 2);
    assert_memory_equal(v, "a1", 2);
    size_t n = 0;
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it))
        n++;
    assert_int_equal(n, 5); /* 4 of run 1, 1 of run 2 */
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(rdo);
    for (int i = 0; i < 2; i++)
        rocksdb_column_family_handle_destroy(h[i]);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
}

/* A store written before the "profiles" family existed: read-only it opens
 * without it (no windows, writes refused); read-write creates it. */
static void test_profiles_old_store(void **state)
{
    fx *f = *state;
    const char *names[] = {"default", "runs", "series", "histograms", "meta"};
    const rocksdb_options_t *cfo[5];
    rocksdb_column_family_handle_t *h[5];
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    for (int i = 0; i < 5; i++)
        cfo[i] = o;
    char *dberr = NULL;
    rocksdb_t *db = rocksdb_open_column_families(o, f->path, 5, names, cfo, h, &dberr);
    if (dberr)
        fail_msg("%s", dberr);
    static const char facts[] = "{\"id\": 1, \"status\": \"complete\", \"clean\": true}";
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put_cf(db, wo, h[1], "\0\0\0\0\0\0\0\1i", 9, facts, sizeof(facts) - 1, &dberr);
    if (dberr)
        fail_msg("%s", dberr);
    rocksdb_writeoptions_destroy(wo);
    for (int i = 0; i < 5; i++)
        rocksdb_column_family_handle_destroy(h[i]);
    rocksdb_close(db);
    rocksdb_options_destroy(o);

    store *s = NULL;
    char err[512];
    assert_int_equal(store_open_flags(f->path, STORE_READONLY, &s, err, sizeof(err)), 0);
    seen_windows w = {0};
    assert_int_equal(store_profiles_scan(s, 1, 0, UINT64_MAX, see_window, &w), 0);
    assert_int_equal(w.n, 0);
    assert_int_equal(store_put_profile(s, 1, 1, 2, "x", 1), OBS_EINVAL);
    store_close(s);

    s = open_ok(f->path);
    assert_int_equal(store_put_profile(s, 1, 1, 2, "x", 1), 0);
    assert_int_equal(store_profiles_scan(s, 1, 0, UINT64_MAX, see_window, &w), 0);
    assert_int_equal(w.n, 1);
    store_close(s);
}

/* A profile window is one write: with the write failing, nothing of it is
 * stored; the next one after the failure mode ends is. */
static void test_profiles_fault_injection(void **state)
{
    fx *f = *state;
    store *s = open_ok(f->path);
    uint64_t id;
    assert_int_equal(store_run_begin(s, &info, &id), 0);
    host_set_log_level(OBS_LOG_ERROR - 1);
    store_fail_after(2);
    assert_int_equal(store_put_profile(s, id, 100, 200, "one", 3), 0);
    assert_int_equal(store_put_profile(s, id, 200, 300, "two", 3), OBS_EIO);
    assert_int_equal(store_put_profile(s, id, 300, 400, "three", 5), OBS_EIO);
    store_fail_after(0);
    host_set_log_level(OBS_LOG_WARN);
    store_close(s);

    s = open_ok(f->path);
    seen_windows w = {0};
    assert_int_equal(store_profiles_scan(s, id, 0, UINT64_MAX, see_window, &w), 0);
    assert_int_equal(w.n, 1);
    assert_int_equal(w.start[0], 100);
    assert_memory_equal(w.blob[0], "one", 3);
    store_close(s);
}

/* run_profile_select on what the store holds: a malformed window is an
 * error naming it, a run without windows an OBS_ENOENT that says how to
 * record one. (Real profiles: tests/integration/test_profile_store.sh.) */
static void test_profiles_select_errors(void **state)
{
    fx *f = *state;
    store *s = open_ok(f->path);
    uint64_t id;
    char err[512] = "";
    obs_prof_profile *p = (obs_prof_profile *)1;
    assert_int_equal(store_run_begin(s, &info, &id), 0);
    run_profile_sel sel = {.run_id = id, .to_ns = UINT64_MAX};
    assert_int_equal(run_profile_select(s, &sel, &p, NULL, err, sizeof(err)), OBS_ENOENT);
    assert_null(p);
    assert_non_null(strstr(err, "--profile-continuous"));
    sel.run_id = 42;
    assert_int_equal(run_profile_select(s, &sel, &p, NULL, err, sizeof(err)), OBS_ENOENT);
    assert_string_equal(err, "no run 42");
    sel.run_id = id;
    assert_int_equal(store_put_profile(s, id, 1234, 2000, "not a profile", 13), 0);
    assert_int_equal(run_profile_select(s, &sel, &p, NULL, err, sizeof(err)), OBS_EIO);
    assert_null(p);
    assert_non_null(strstr(err, "window at 1234 ns is malformed"));
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_profiles_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profiles_old_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profiles_fault_injection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profiles_select_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
