/*
 * test_store_retention.c - the store's bounds and its behaviour when writes
 * fail: retention by age and by size (whole runs, oldest first, never the
 * run being recorded nor a running one; the recorded run's oldest points
 * when it alone is over), the accounting of failed writes, and the pending
 * file that keeps the end of a run whose end could not be written, shown by
 * readers and stored by the next read-write open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "measure/histogram.h"
#include "observatory/stage.h"
#include "store_test_util.h"

#define SEC 1000000000ull

/* A snapshot of one sink stage at wall time t whose latency histogram
 * holds values spread by k, so that snapshots of a run differ in size. */
static int put(store *s, uint64_t run, uint64_t t, uint64_t k)
{
    obs_snapshot snap;
    memset(&snap, 0, sizeof snap);
    snap.state = SNAPSHOT_RUNNING;
    snap.t_wall_ns = t;
    snap.n_stages = 1;
    snap.stages = calloc(1, sizeof(stage_sample));
    stage_sample *st = &snap.stages[0];
    snprintf(st->name, sizeof st->name, "sink");
    snprintf(st->kind, sizeof st->kind, "sink");
    st->records_in = k;
    st->latency = calloc(1, sizeof(histogram));
    for (uint64_t v = 1; v <= 200; v++)
        histogram_record(st->latency, v * (k % 97 + 1) * 10007u);
    int rc = store_put_snapshot(s, run, &snap);
    snapshot_free(&snap);
    return rc;
}

/* A whole run with n snapshots at t0, t0 + 1 s, ...; returns its id. */
static uint64_t whole_run(store *s, uint64_t t0, uint64_t n, int end)
{
    uint64_t id;
    assert_int_equal(store_run_begin(s, &info, &id), 0);
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(put(s, id, t0 + i * SEC, id * 1000 + i), 0);
    if (end) {
        json_t *report = json_pack("{s:i, s:s}", "format", 1, "pipeline", "unit");
        assert_int_equal(store_run_end(s, id, 1, report), 0);
        json_decref(report);
    }
    return id;
}

static int has_run(store *s, uint64_t id)
{
    json_t *r = NULL;
    int rc = store_run_json(s, id, &r);
    json_decref(r);
    assert_true(rc == 0 || rc == OBS_ENOENT);
    return rc == 0;
}

static size_t n_points(store *s, uint64_t id)
{
    json_t *pts = NULL;
    int rc = store_series_json(s, id, "stage/sink/records_in", 0, UINT64_MAX, &pts);
    if (rc == OBS_ENOENT)
        return 0;
    assert_int_equal(rc, 0);
    size_t n = json_array_size(pts);
    json_decref(pts);
    return n;
}

/* Closes and opens the store again: RocksDB flushes what the WAL held into
 * SST files, so that the size on disk is the runs' and not the WAL's. */
static store *reopen(store *s, const char *path)
{
    store_close(s);
    return open_ok(path);
}

/* Runs that ended longer than max_age ago go; a running one stays. */
static void test_age_deletes_ended_runs(void **state)
{
    fx *f = *state;
    store *s = open_ok(f->path);
    uint64_t now = (uint64_t)time(NULL) * SEC;
    uint64_t a = whole_run(s, now, 3, 1), b = whole_run(s, now, 3, 1);
    uint64_t c = whole_run(s, now, 3, 0);
    assert_int_equal(store_set_retention(s, 3600 * SEC, 0), 0);
    assert_true(has_run(s, a) && has_run(s, b) && has_run(s, c)); /* none is an hour old */

    /* 1 ns: every run that ended is older than that. */
    assert_int_equal(store_set_retention(s, 1, 0), 0);
    assert_false(has_run(s, a));
    assert_false(has_run(s, b));
    assert_true(has_run(s, c));
    assert_int_equal(n_points(s, a), 0);
    assert_int_equal(n_points(s, c), 3);
    store_close(s);
}

/* The run being recorded keeps only its points newer than max_age. */
static void test_age_trims_the_recorded_run(void **state)
{
    fx *f = *state;
    store *s = open_ok(f->path);
    uint64_t now = (uint64_t)time(NULL) * SEC, id;
    assert_int_equal(store_run_begin(s, &info, &id), 0);
    uint64_t ts[4] = {now - 7200 * SEC, now - 5400 * SEC, now - 1800 * SEC, now - 60 * SEC};
    for (int i = 0; i < 4; i++)
        assert_int_equal(put(s, id, ts[i], (uint64_t)i + 1), 0);
    s = reopen(s, f->path); /* (marks it incomplete; run 2 is the recorded one) */
    uint64_t id2;
    assert_int_equal(store_run_begin(s, &info, &id2), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(put(s, id2, ts[i], (uint64_t)i + 1), 0);

    store_retention_result r;
    assert_int_equal(store_set_retention(s, 3600 * SEC, 0), 0);
    assert_int_equal(store_apply_retention(s, id2, &r), 0);
    assert_int_equal(r.n_runs_deleted, 0); /* run 1 ended (marked) just now */
    assert_true(r.trimmed_before_ns > ts[1] && r.trimmed_before_ns < ts[2]);
    assert_int_equal(n_points(s, id2), 2);
    assert_int_equal(n_points(s, id), 4);
    histogram h;
    assert_int_equal(store_histogram_get(s, id2, "stage/sink/latency", ts[1], &h, NULL),
                     OBS_ENOENT);
    assert_int_equal(store_histogram_get(s, id2, "stage/sink/latency", ts[2], &h, NULL), 0);
    json_t *facts = NULL;
    assert_int_equal(store_run_json(s, id2, &facts), 0);
    assert_int_equal(json_integer_value(json_object_get(facts, "trimmed_before_ns")),
                     (json_int_t)r.trimmed_before_ns);
    assert_int_equal(json_integer_value(json_object_get(facts, "first_snapshot_ns")),
                     (json_int_t)r.trimmed_before_ns);
    json_decref(facts);

    /* Again at once: nothing more is old enough to be worth a cut. */
    assert_int_equal(store_apply_retention(s, id2, &r), 0);
    assert_int_equal(r.trimmed_before_ns, 0);
    store_close(s);
}

/* Over max_size: the oldest ended runs go, the newest and a running one
 * stay, and the store's files shrink under the limit. */
static void test_size_deletes_oldest_runs(void **state)
{
    fx *f = *state;
    store *s = open_ok(f->path);
    uint64_t now = (uint64_t)time(NULL) * SEC, ids[6];
    for (int i = 0; i < 5; i++)
        ids[i] = whole_run(s, now, 600, 1);
    s = reopen(s, f->path);
    ids[5] = whole_run(s, now, 3, 0); /* running: never deleted */
    uint64_t before = store_disk_bytes(s);
    assert_true(before > (2u << 20));

    store_retention_result r;
    uint64_t limit = before / 2;
    assert_int_equal(store_set_retention(s, 0, limit), 0);
    assert_int_equal(store_apply_retention(s, 0, &r), 0); /* already within it: no more */
    assert_int_equal(r.n_runs_deleted, 0);
    int n_gone = 0;
    for (int i = 0; i < 6; i++) {
        int gone = !has_run(s, ids[i]);
        /* Oldest first: once one is kept, so are all newer ones. */
        if (i > 0 && gone)
            assert_false(has_run(s, ids[i - 1]));
        n_gone += gone;
    }
    if (n_gone < 2 || n_gone > 4)
        fail_msg("%d runs deleted; %llu of %llu bytes", n_gone,
                 (unsigned long long)store_disk_bytes(s), (unsigned long long)before);
    assert_true(has_run(s, ids[4]));
    assert_true(has_run(s, ids[5]));
    assert_int_equal(n_points(s, ids[4]), 600);
    assert_int_equal(n_points(s, ids[0]), 0);
    uint64_t after = store_disk_bytes(s);
    assert_true(after <= limit);
    store_close(s);
}

/* A single recorded run over max_size loses its oldest points, not all. */
static void test_size_trims_the_recorded_run(void **state)
{
    fx *f = *state;
    store *s = open_ok(f->path);
    uint64_t now = (uint64_t)time(NULL) * SEC, id;
    assert_int_equal(store_run_begin(s, &info, &id), 0);
    for (uint64_t i = 0; i < 3000; i++)
        assert_int_equal(put(s, id, now - (3000 - i) * SEC, i), 0);
    uint64_t before = store_disk_bytes(s);
    store_retention_result r;
    assert_int_equal(store_set_retention(s, 0, before / 2), 0);
    assert_int_equal(store_apply_retention(s, id, &r), 0);
    assert_int_equal(r.n_runs_deleted, 0);
    assert_true(r.trimmed_before_ns > now - 3000 * SEC);
    size_t n = n_points(s, id);
    assert_true(n > 100 && n < 3000);
    assert_true(r.bytes_after < r.bytes_before);
    assert_true(has_run(s, id));
    store_close(s);
}

/* Failed writes are counted, and logged once per streak. */
static void test_failed_writes_counted(void **state)
{
    fx *f = *state;
    store *s = open_ok(f->path);
    uint64_t id;
    assert_int_equal(store_run_begin(s, &info, &id), 0);
    store_health h;
    store_get_health(s, &h);
    assert_int_equal(h.n_writes_failed, 0);
    uint64_t n_ok = h.n_writes;
    /* The steps of an end: the facts, the report, the write. */
    json_t *rep = json_object();
    for (int i = 0; i < 2; i++) {
        store_fail_after(3);
        assert_int_equal(store_run_end(s, id, 1, rep), 0); /* kept in a pending file */
        store_fail_after(0);
    }
    json_decref(rep);
    store_get_health(s, &h);
    assert_true(h.failing);
    assert_int_equal(h.n_writes_failed, 2);
    assert_string_equal(h.last_error, "injected write failure");
    assert_int_equal(put(s, id, 10 * SEC, 1), 0);
    store_get_health(s, &h);
    assert_false(h.failing);
    assert_int_equal(h.n_writes, n_ok + 1);
    json_t *report = json_object();
    assert_int_equal(store_add_health(s, report), 0);
    json_t *o = json_object_get(report, "store");
    assert_int_equal(json_integer_value(json_object_get(o, "writes_failed")),
                     (json_int_t)h.n_writes_failed);
    json_decref(report);
    store_close(s);
}

/* An end that cannot be written is kept in a pending file: readers show
 * it, the next read-write open stores it and removes the file. */
static void test_pending_end(void **state)
{
    fx *f = *state;
    char tmp[128], pending[160];
    snprintf(tmp, sizeof tmp, "%s/tmp", f->dir);
    assert_int_equal(mkdir(tmp, 0755), 0);
    setenv("TMPDIR", tmp, 1);
    store *s = open_ok(f->path);
    uint64_t id;
    assert_int_equal(store_run_begin(s, &info, &id), 0);
    json_t *report = json_pack("{s:i, s:s}", "format", 1, "pipeline", "unit");
    /* Steps of the end: the facts, the report, the write; the write fails. */
    store_fail_after(3);
    assert_int_equal(store_run_end(s, id, 1, report), 0);
    store_fail_after(0);
    snprintf(pending, sizeof pending, "%s/pending-run-%llu.json", f->path, (unsigned long long)id);
    assert_int_equal(access(pending, F_OK), 0);

    json_t *r = NULL, *runs = NULL;
    assert_int_equal(store_run_json(s, id, &r), 0);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "complete");
    assert_string_equal(json_string_value(json_object_get(r, "report_pending")), pending);
    assert_true(json_equal(json_object_get(r, "report"), report));
    json_decref(r);
    assert_int_equal(store_runs_json(s, &runs), 0);
    assert_true(json_is_true(json_object_get(json_array_get(runs, 0), "has_report")));
    json_decref(runs);

    s = reopen(s, f->path);
    assert_int_not_equal(access(pending, F_OK), 0);
    assert_int_equal(store_run_json(s, id, &r), 0);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "complete");
    assert_null(json_object_get(r, "report_pending"));
    assert_true(json_equal(json_object_get(r, "report"), report));
    json_decref(r);
    json_decref(report);
    store_close(s);
    unsetenv("TMPDIR");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_age_deletes_ended_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_age_trims_the_recorded_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_deletes_oldest_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_trims_the_recorded_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_writes_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_end, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
