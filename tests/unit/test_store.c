/*
 * test_store.c - the run history in RocksDB: creating and reopening a store,
 * a run's facts, snapshots and report read back with exact values, time
 * filtering of series, the key layout byte by byte (docs/storage.md) and
 * its order, a run without an end marked incomplete by the next open (what
 * a kill -9 leaves behind), read-only opening next to a writer, the report
 * JSON and its printing, and fault injection: every step of a run failing
 * in turn must return an error, never crash, and leave on reopen either the
 * whole of each write or none of it. The windows of continuous profiling
 * are tested in test_store_profiles.c; the histogram encoding on its own in
 * test_histogram.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "engine/host.h"
#include "measure/report.h"
#include "store/store.h"
#include "store_test_util.h"

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */

/* A snapshot of two stages whose counters are multiples of k, taken at
 * wall time t. The sink's latency histogram holds k values of 1..k ms. */
static void make_snap(obs_snapshot *s, uint64_t t, uint64_t k)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->pipeline, sizeof(s->pipeline), "unit");
    s->state = SNAPSHOT_RUNNING;
    s->t_wall_ns = t;
    s->t_mono_ns = 1000000000u + k * 1000000000u;
    s->t_start_ns = 1000000000u;
    s->t_warm_ns = 1000000000u;
    s->n_stages = 2;
    s->stages = calloc(2, sizeof(stage_sample));
    stage_sample *g = &s->stages[0], *k2 = &s->stages[1];
    snprintf(g->name, sizeof(g->name), "gen");
    snprintf(g->plugin, sizeof(g->plugin), "gen_static");
    snprintf(g->version, sizeof(g->version), "1.0.0");
    snprintf(g->kind, sizeof(g->kind), "generator");
    g->records_out = 10 * k;
    g->bytes_out = 1000 * k;
    g->callback_wall_ns = 500 * k;
    g->callback_cpu_ns = 400 * k;
    g->late_records = k;
    g->allocs = 0;
    g->service = calloc(1, sizeof(histogram));
    g->lag = calloc(1, sizeof(histogram));
    histogram_record(g->lag, 1000 * k);

    snprintf(k2->name, sizeof(k2->name), "sink");
    snprintf(k2->plugin, sizeof(k2->plugin), "sink_null");
    snprintf(k2->version, sizeof(k2->version), "2.1.0");
    snprintf(k2->kind, sizeof(k2->kind), "sink");
    k2->records_in = 10 * k;
    k2->bytes_in = 1000 * k;
    k2->callback_cpu_ns = 2000 * k;
    k2->allocs = 5 * k;
    k2->errors = 3;
    k2->blocked_ns = 0;
    k2->service = calloc(1, sizeof(histogram));
    k2->latency = calloc(1, sizeof(histogram));
    for (uint64_t v = 1; v <= k; v++)
        histogram_record(k2->latency, v * 1000000u);
    k2->n_counters = 2;
    k2->counters = calloc(2, sizeof(snapshot_counter));
    snprintf(k2->counters[0].name, SNAPSHOT_NAME_MAX, "write_error");
    k2->counters[0].kind = OBS_COUNTER_ERROR;
    k2->counters[0].value = 3;
    snprintf(k2->counters[1].name, SNAPSHOT_NAME_MAX, "flushes");
    k2->counters[1].kind = OBS_COUNTER_PLAIN;
    k2->counters[1].value = 7 * k;
}

static int put(store *s, uint64_t run, uint64_t t, uint64_t k)
{
    obs_snapshot snap;
    make_snap(&snap, t, k);
    int rc = store_put_snapshot(s, run, &snap);
    snapshot_free(&snap);
    return rc;
}

static json_int_t jint(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("'%s' is not an integer", key);
    return json_integer_value(v);
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (!v)
        fail_msg("'%s' is not a string", key);
    return v;
}

static json_t *run_json(store *s, uint64_t id)
{
    json_t *r = NULL;
    assert_int_equal(store_run_json(s, id, &r), 0);
    return r;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */

static void test_open_creates_and_reopens(void **state)
{
    fx *f = *state;
    store *s = NULL;
    char err[512] = "";
    /* A reader must not create a store where there is none. */
    assert_int_not_equal(store_open_flags(f->path, 0, &s, err, sizeof(err)), 0);
    assert_null(s);
    assert_non_null(strstr(err, f->path));

    s = open_ok(f->path);
    json_t *runs = NULL;
    assert_int_equal(store_runs_json(s, &runs), 0);
    assert_int_equal(json_array_size(runs), 0);
    json_decref(runs);
    assert_int_equal(store_run_json(s, 1, &runs), OBS_ENOENT);
    store_close(s);

    /* Now it exists: readers open it, also without the create flag. */
    assert_int_equal(store_open_flags(f->path, 0, &s, err, sizeof(err)), 0);
    store_close(s);
}

static void test_run_roundtrip(void **state)
{
    fx *f = *state;
    store *s = open_ok(f->path);
    uint64_t id = 0, id2 = 0;
    assert_int_equal(store_run_begin(s, &info, &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(put(s, id, 1000, 1), 0);
    assert_int_equal(put(s, id, 2000, 2), 0);
    assert_int_equal(put(s, id, 3000, 3), 0);
    json_t *report = json_pack("{s:i, s:s}", "x", 17, "y", "why");
    assert_int_equal(store_run_end(s, id, 1, report), 0);
    json_decref(report);
    assert_int_equal(store_run_begin(s, &info, &id2), 0);
    assert_int_equal(id2, 2);
    store_close(s);

    /* Everything survives a close. */
    s = open_ok(f->path);
    json_t *r = run_json(s, 1);
    assert_int_equal(jint(r, "id"), 1);
    assert_string_equal(jstr(r, "status"), "complete");
    assert_true(json_is_true(json_object_get(r, "clean")));
    assert_string_equal(jstr(r, "pipeline"), "unit");
    assert_string_equal(jstr(r, "config_text"), "pipeline: unit\n");
    assert_string_equal(jstr(r, "config_path"), "unit.yaml");
    assert_int_equal(jint(r, "seed"), 42);
    json_t *st = json_object_get(r, "stages");
    assert_int_equal(json_array_size(st), 2);
    assert_string_equal(jstr(json_array_get(st, 0), "plugin"), "gen_static");
    assert_string_equal(jstr(json_array_get(st, 0), "build_id"), "abcdef01");
    assert_string_equal(jstr(json_array_get(st, 1), "version"), "2.1.0");
    assert_string_equal(jstr(json_array_get(st, 1), "path"), "/p/sink_null.so");
    json_t *host = json_object_get(r, "host");
    assert_true(strlen(jstr(host, "hostname")) > 0);
    assert_true(strlen(jstr(host, "kernel")) > 0);
    assert_true(strlen(jstr(host, "cpu_model")) > 0);
    json_t *build = json_object_get(r, "build");
    assert_non_null(strstr(jstr(build, "compiler"), "GNU"));
    assert_non_null(strstr(jstr(build, "flags"), "-Wall"));
    assert_true(jint(r, "end_ns") >= jint(r, "start_ns"));
    assert_int_equal(jint(r, "n_snapshots"), 3);
    assert_int_equal(jint(r, "first_snapshot_ns"), 1000);
    assert_int_equal(jint(r, "last_snapshot_ns"), 3000);
    assert_int_equal(jint(json_object_get(r, "report"), "x"), 17);
    json_decref(r);

    r = run_json(s, 2);
    assert_string_equal(jstr(r, "status"), "incomplete"); /* never ended: closed "by a kill" */
    assert_true(json_is_null(json_object_get(r, "report")));
    json_decref(r);

    /* Listing: newest first, no config text, has_report. */
    json_t *runs = NULL;
    assert_int_equal(store_runs_json(s, &runs), 0);
    assert_int_equal(json_array_size(runs), 2);
    assert_int_equal(jint(json_array_get(runs, 0), "id"), 2);
    assert_int_equal(jint(json_array_get(runs, 1), "id"), 1);
    assert_null(json_object_get(json_array_get(runs, 1), "config_text"));
    assert_true(json_is_true(json_object_get(json_array_get(runs, 1), "has_report")));
    assert_true(json_is_false(json_object_get(json_array_get(runs, 0), "has_report")));
    json_decref(runs);

    /* Series: exact values, time filter [from, to). */
    json_t *pts = NULL;
    assert_int_equal(store_series_json(s, 1, "stage/gen/records_out", 0, UINT64_MAX, &pts), 0);
    json_t *want = json_pack("[[i,i],[i,i],[i,i]]", 1000, 10, 2000, 20, 3000, 30);
    assert_true(json_equal(pts, want));
    json_decref(want);
    json_decref(pts);
    assert_int_equal(store_series_json(s, 1, "stage/gen/records_out", 2000, 3000, &pts), 0);
    want = json_pack("[[i,i]]", 2000, 20);
    assert_true(json_equal(pts, want));
    json_decref(want);
    json_decref(pts);
    assert_int_equal(store_series_json(s, 1, "stage/gen/records_out", 1001, 2000, &pts), 0);
    assert_int_equal(json_array_size(pts), 0);
    json_decref(pts);
    assert_int_equal(store_series_json(s, 1, "stage/sink/counter/flushes", 3000, UINT64_MAX, &pts),
                     0);
    want = json_pack("[[i,i]]", 3000, 21);
    assert_true(json_equal(pts, want));
    json_decref(want);
    json_decref(pts);
    assert_int_equal(store_series_json(s, 1, "no/such/metric", 0, UINT64_MAX, &pts), 0);
    assert_int_equal(json_array_size(pts), 0);
    json_decref(pts);
    assert_int_equal(store_series_json(s, 9, "stage/gen/records_out", 0, UINT64_MAX, &pts),
                     OBS_ENOENT);

    /* Metric names: sorted, generator-only ones only for the generator. */
    json_t *names = NULL;
    assert_int_equal(store_metrics_json(s, 1, &names), 0);
    size_t n = json_array_size(names);
    /* pipeline/state + gen 17+3 + sink 17 + 2 counters */
    assert_int_equal(n, 1 + 20 + 17 + 2);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(json_string_value(json_array_get(names, i - 1)),
                           json_string_value(json_array_get(names, i))) < 0);
    int has_late_gen = 0, has_late_sink = 0;
    for (size_t i = 0; i < n; i++) {
        const char *m = json_string_value(json_array_get(names, i));
        has_late_gen |= strcmp(m, "stage/gen/late_records") == 0;
        has_late_sink |= strcmp(m, "stage/sink/late_records") == 0;
    }
    assert_true(has_late_gen);
    assert_false(has_late_sink);
    json_decref(names);
    assert_int_equal(store_metrics_json(s, 2, &names), 0);
    assert_int_equal(json_array_size(names), 0);
    json_decref(names);

    /* Histograms: the last at or before a time, decoded exactly. */
    histogram *h = calloc(1, sizeof(*h));
    uint64_t t = 0;
    assert_int_equal(store_histogram_get(s, 1, "stage/sink/latency", UINT64_MAX, h, &t), 0);
    assert_int_equal(t, 3000);
    assert_int_equal(histogram_count(h), 3);
    assert_int_equal(histogram_min_ns(h), 1000000);
    assert_int_equal(histogram_max_ns(h), 3000000);
    assert_int_equal(histogram_sum_ns(h), 6000000);
    assert_int_equal(histogram_quantile_ns(h, 0.5), histogram_edge_ns(2000000));
    assert_int_equal(store_histogram_get(s, 1, "stage/sink/latency", 2999, h, &t), 0);
    assert_int_equal(t, 2000);
    assert_int_equal(histogram_count(h), 2);
    assert_int_equal(store_histogram_get(s, 1, "stage/sink/latency", 999, h, &t), OBS_ENOENT);
    assert_int_equal(store_histogram_get(s, 1, "stage/gen/latency", UINT64_MAX, h, &t),
                     OBS_ENOENT); /* NULL histograms are not stored */
    assert_int_equal(store_histogram_get(s, 1, "stage/gen/lag", UINT64_MAX, h, &t), 0);
    assert_int_equal(histogram_max_ns(h), 3000);
    free(h);
    store_close(s);
}

/* The bytes of the keys, as docs/storage.md describes them. */
static void test_key_layout_and_order(void **state)
{
    fx *f = *state;
    store *s = open_ok(f->path);
    uint64_t a, b;
    assert_int_equal(store_run_begin(s, &info, &a), 0);
    assert_int_equal(store_run_begin(s, &info, &b), 0);
    /* Interleaved runs, and run b's points earlier in time than a's. */
    assert_int_equal(put(s, b, 100, 1), 0);
    assert_int_equal(put(s, a, 0x0102030405060708u, 2), 0);
    assert_int_equal(put(s, a, 0x0102030405060709u, 3), 0);
    store_close(s);

    const char *names[] = {"default", "runs", "series", "histograms", "meta"};
    const rocksdb_options_t *cfo[5];
    rocksdb_column_family_handle_t *h[5];
    rocksdb_options_t *o = rocksdb_options_create();
    for (int i = 0; i < 5; i++)
        cfo[i] = o;
    char *err = NULL;
    rocksdb_t *db =
        rocksdb_open_for_read_only_column_families(o, f->path, 5, names, cfo, h, 0, &err);
    if (err)
        fail_msg("%s", err);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();

    /* series: run(8, BE) | name | 0x00 | t(8, BE), value 8 bytes BE. */
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, ro, h[2]);
    rocksdb_iter_seek_to_first(it);
    assert_true(rocksdb_iter_valid(it));
    size_t klen, vlen;
    const char *k = rocksdb_iter_key(it, &klen);
    static const char first[] = "\0\0\0\0\0\0\0\1pipeline/state\0\1\2\3\4\5\6\7\x08";
    assert_int_equal(klen, sizeof(first) - 1);
    assert_memory_equal(k, first, klen);
    const char *v = rocksdb_iter_value(it, &vlen);
    assert_int_equal(vlen, 8);
    assert_memory_equal(v, "\0\0\0\0\0\0\0\1", 8); /* SNAPSHOT_RUNNING */
    char prev[256];
    size_t prev_len = 0, n_a = 0, n_b = 0;
    int seen_b = 0;
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        k = rocksdb_iter_key(it, &klen);
        if (prev_len) {
            int c = memcmp(prev, k, prev_len < klen ? prev_len : klen);
            assert_true(c < 0 || (c == 0 && prev_len < klen));
        }
        memcpy(prev, k, klen);
        prev_len = klen;
        /* Run 1's keys all come before run 2's, whatever their times. */
        if (k[7] == 2)
            seen_b = 1, n_b++;
        else
            assert_false(seen_b), n_a++;
        assert_int_equal(k[klen - 9], '\0');
    }
    assert_int_equal(n_a, 2 * n_b);
    rocksdb_iter_destroy(it);

    /* runs: run(8) | 'i' facts JSON, 'p' progress (first, last, n: 3 x 8 BE). */
    size_t len;
    char *p = rocksdb_get_cf(db, ro, h[1], "\0\0\0\0\0\0\0\1p", 9, &len, &err);
    assert_non_null(p);
    assert_int_equal(len, 24);
    assert_memory_equal(p, "\1\2\3\4\5\6\7\x08\1\2\3\4\5\6\7\x09\0\0\0\0\0\0\0\2", 24);
    rocksdb_free(p);
    p = rocksdb_get_cf(db, ro, h[1], "\0\0\0\0\0\0\0\2i", 9, &len, &err);
    assert_non_null(p);
    assert_int_equal(p[0], '{');
    rocksdb_free(p);

    /* histograms: same key layout; value: version 1, 5 x 8 BE header, count
     * of buckets (4 BE), then (index 2 BE, count 8 BE) per bucket. */
    static const char hkey[] = "\0\0\0\0\0\0\0\2stage/sink/latency\0\0\0\0\0\0\0\0\x64";
    p = rocksdb_get_cf(db, ro, h[3], hkey, sizeof(hkey) - 1, &len, &err);
    assert_non_null(p);
    assert_int_equal(len, 1 + 40 + 4 + 10);
    assert_int_equal(p[0], 1);
    assert_memory_equal(p + 1, "\0\0\0\0\0\0\0\1", 8);
    assert_memory_equal(p + 41, "\0\0\0\1", 4);
    uint32_t idx = histogram_bucket_index(1000000);
    assert_int_equal((uint8_t)p[45], idx >> 8);
    assert_int_equal((uint8_t)p[46], idx & 0xff);
    rocksdb_free(p);
    p = rocksdb_get_cf(db, ro, h[4], "layout", 6, &len, &err);
    assert_non_null(p);
    assert_memory_equal(p, "observatory-store 1", len);
    rocksdb_free(p);

    for (int i = 0; i < 5; i++)
        rocksdb_column_family_handle_destroy(h[i]);
    rocksdb_readoptions_destroy(ro);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
}

/* What kill -9 leaves: facts and snapshots without an end. */
static void test_reopen_marks_incomplete(void **state)
{
    fx *f = *state;
    store *s = open_ok(f->path);
    uint64_t id;
    assert_int_equal(store_run_begin(s, &info, &id), 0);
    assert_int_equal(put(s, id, 5000, 1), 0);
    assert_int_equal(put(s, id, 6000, 2), 0);
    json_t *r = run_json(s, id);
    assert_string_equal(jstr(r, "status"), "running");
    json_decref(r);
    store_close(s);

    s = open_ok(f->path);
    r = run_json(s, id);
    assert_string_equal(jstr(r, "status"), "incomplete");
    assert_true(json_is_false(json_object_get(r, "clean")));
    assert_int_equal(jint(r, "end_ns"), 6000);
    assert_int_equal(jint(r, "n_snapshots"), 2);
    assert_non_null(json_object_get(r, "marked_incomplete_at"));
    json_decref(r);
    json_t *pts = NULL;
    assert_int_equal(store_series_json(s, id, "stage/sink/records_in", 0, UINT64_MAX, &pts), 0);
    assert_int_equal(json_array_size(pts), 2);
    json_decref(pts);
    uint64_t next;
    assert_int_equal(store_run_begin(s, &info, &next), 0);
    assert_int_equal(next, id + 1);
    assert_int_equal(store_run_end(s, next, 0, NULL), 0);
    r = run_json(s, next);
    assert_string_equal(jstr(r, "status"), "failed");
    json_decref(r);
    store_close(s);

    /* Marking happens once: a later open leaves the marks alone. */
    s = open_ok(f->path);
    r = run_json(s, id);
    assert_string_equal(jstr(r, "status"), "incomplete");
    json_decref(r);
    store_close(s);
}

static void test_readonly_beside_writer(void **state)
{
    fx *f = *state;
    store *w = open_ok(f->path), *ro = NULL, *other = NULL;
    char err[512];
    uint64_t id;
    assert_int_equal(store_run_begin(w, &info, &id), 0);
    assert_int_equal(put(w, id, 1, 1), 0);
    /* A second writer is refused (RocksDB's lock), a reader is not. */
    assert_int_not_equal(store_open(f->path, &other, err, sizeof(err)), 0);
    assert_int_equal(store_open_flags(f->path, STORE_READONLY, &ro, err, sizeof(err)), 0);
    json_t *r = run_json(ro, id);
    assert_string_equal(jstr(r, "status"), "running");
    assert_int_equal(jint(r, "n_snapshots"), 1);
    json_decref(r);
    assert_int_equal(store_put_snapshot(ro, id, &(obs_snapshot){0}), OBS_EINVAL);
    store_close(ro);
    store_close(w);
}

/* Runs begin, two snapshots and end with the n-th fallible step failing,
 * for every n until one pass has no failure; after each, the store must
 * reopen and hold whole writes only. */
static void test_fault_injection(void **state)
{
    fx *f = *state;
    int clean_pass = 0;
    host_set_log_level(OBS_LOG_ERROR - 1); /* hundreds of expected failures */
    for (uint64_t n = 1; !clean_pass && n < 1000; n++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/f%" PRIu64, f->dir, n);
        store *s = open_ok(path);
        store_fail_after(n);
        uint64_t id = 0;
        int begun = store_run_begin(s, &info, &id) == 0;
        int puts = 0, ended = 0, failed = !begun;
        if (begun) {
            for (int k = 1; k <= 2; k++) {
                int rc = put(s, id, (uint64_t)k * 1000, (uint64_t)k);
                assert_true(rc == 0 || rc == OBS_ENOMEM || rc == OBS_EIO);
                puts += rc == 0;
                failed |= rc != 0;
            }
            json_t *rep = json_pack("{s:i}", "x", 1);
            int rc = store_run_end(s, id, 1, rep);
            json_decref(rep);
            assert_true(rc == 0 || rc == OBS_ENOMEM || rc == OBS_EIO);
            ended = rc == 0;
            failed |= rc != 0;
        } else {
            assert_int_equal(id, 0);
        }
        store_fail_after(0);
        clean_pass = !failed;
        store_close(s);

        s = open_ok(path);
        json_t *runs = NULL;
        assert_int_equal(store_runs_json(s, &runs), 0);
        assert_int_equal(json_array_size(runs), begun ? 1 : 0);
        json_decref(runs);
        if (begun) {
            json_t *r = run_json(s, id);
            assert_string_equal(jstr(r, "status"), ended ? "complete" : "incomplete");
            assert_int_equal(json_is_object(json_object_get(r, "report")), ended);
            assert_int_equal(jint(r, "n_snapshots"), puts);
            json_decref(r);
            json_t *pts = NULL;
            assert_int_equal(store_series_json(s, id, "stage/sink/records_in", 0, UINT64_MAX, &pts),
                             0);
            assert_int_equal(json_array_size(pts), (size_t)puts);
            json_decref(pts);
            histogram *h = calloc(1, sizeof(*h));
            int hrc = store_histogram_get(s, id, "stage/sink/latency", UINT64_MAX, h, NULL);
            assert_int_equal(hrc, puts ? 0 : OBS_ENOENT);
            free(h);
        }
        store_close(s);
    }
    assert_true(clean_pass);

    /* Opening fails cleanly too. */
    store *s = NULL;
    char err[512];
    store_fail_after(1);
    assert_int_not_equal(store_open(f->path, &s, err, sizeof(err)), 0);
    assert_null(s);
    store_fail_after(0);
    host_set_log_level(OBS_LOG_WARN);
}

/* The report built from a snapshot: figures over the measured window and
 * per record, and its printing and comparison. */
static void test_report_json_and_print(void **state)
{
    (void)state;
    obs_snapshot snap;
    make_snap(&snap, 1, 4);
    snap.state = SNAPSHOT_DONE;
    snap.t_start_ns = 1000000000u;
    snap.t_warm_ns = 2000000000u;
    snap.t_stop_ns = 4000000000u; /* 2 s measured */
    snap.t_end_ns = 4010000000u;
    stage_snapshot warm[2] = {{.records_out = 10}, {.records_in = 10}};
    stage_snapshot stop[2] = {{.records_out = 30, .bytes_out = 2000000, .callback_ns = 500000000},
                              {.records_in = 50,
                               .callback_ns = 16000,
                               .sampled_cpu_ns = 1000,
                               .sampled_wall_ns = 2000,
                               .allocs = 20}};
    json_t *extra = json_pack("{s:i}", "run_id", 7);
    json_t *r = report_json(&snap, warm, stop, extra);
    json_decref(extra);
    snapshot_free(&snap);
    assert_non_null(r);
    assert_int_equal(jint(r, "run_id"), 7);
    assert_true(fabs(json_number_value(json_object_get(r, "measured_s")) - 2.0) < 1e-9);
    json_t *g = json_array_get(json_object_get(r, "stages"), 0);
    json_t *k = json_array_get(json_object_get(r, "stages"), 1);
    assert_true(json_number_value(json_object_get(g, "rate_per_s")) == 10.0);
    assert_true(json_number_value(json_object_get(g, "busy_pct")) == 25.0);
    assert_true(json_number_value(json_object_get(k, "rate_per_s")) == 20.0);
    /* Over the window: 16000 ns in callbacks at a sampled CPU/wall ratio of
     * 0.5 is 8000 ns of CPU over 40 records; 20 allocations over 40. */
    assert_true(json_number_value(json_object_get(k, "cpu_ns_per_record")) == 200.0);
    assert_true(json_number_value(json_object_get(k, "allocs_per_record")) == 0.5);
    assert_int_equal(jint(g, "late_records"), 4);
    assert_int_equal(jint(json_object_get(k, "errors_by_reason"), "write_error"), 3);
    assert_int_equal(jint(json_object_get(k, "counters"), "flushes"), 28);
    json_t *lat = json_object_get(k, "latency_ms");
    assert_true(json_number_value(json_object_get(lat, "max")) == 4.0);
    assert_true(json_is_null(json_object_get(g, "latency_ms")));

    /* Printing from JSON is the same after a round trip through text. */
    char *text = json_dumps(r, JSON_COMPACT);
    json_t *back = json_loads(text, 0, NULL);
    free(text);
    char *p1 = NULL, *p2 = NULL;
    size_t l1, l2;
    FILE *f1 = open_memstream(&p1, &l1), *f2 = open_memstream(&p2, &l2);
    report_print(r, f1);
    report_print(back, f2);
    fclose(f1);
    fclose(f2);
    assert_string_equal(p1, p2);
    assert_non_null(strstr(p1, "pipeline 'unit' (run 7): "));
    assert_non_null(strstr(p1, "cpu_ns/rec"));
    assert_non_null(strstr(p1, "error:write_error=3"));
    free(p1);
    free(p2);

    /* Compare: a faster B shows a negative change in cpu_ns/rec. */
    json_t *b = json_deep_copy(r);
    json_object_set_new(json_array_get(json_object_get(b, "stages"), 1), "cpu_ns_per_record",
                        json_real(150.0));
    f1 = open_memstream(&p1, &l1);
    report_compare(r, b, f1);
    fclose(f1);
    assert_non_null(strstr(p1, "-25.0%"));
    assert_non_null(strstr(p1, "A = run 7"));
    free(p1);
    json_decref(b);
    json_decref(back);
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_and_reopens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_layout_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_marks_incomplete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_beside_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_injection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_json_and_print, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
