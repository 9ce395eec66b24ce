/*
 * test_histogram.c - the latency histogram: its bucket layout (every bucket
 * within 1/128 of its lowest value, edges contiguous), quantiles against the
 * exact nearest-rank order statistic of sorted data for several
 * distributions, boundary values and overflow, merge as if everything had
 * been recorded into one histogram, a reader merging while a writer records,
 * exact cumulative counts at coarse (Prometheus) boundaries, and the byte
 * encoding the store keeps (docs/storage.md): round trips, every truncation
 * of an encoding refused without reading past its end (a guard page, and
 * ASan in the sanitizer build), and the exact bytes of a small histogram so
 * that a format change cannot pass unnoticed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "measure/histogram.h"
#include "observatory/stage.h"

#define N_VALUES 200000

/* splitmix64: a fixed seed gives the same data on every run. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Uniform in (0, 1]: never 0, so log() is finite. */
static double rng_unit(uint64_t *s)
{
    return ((double)(rng_next(s) >> 11) + 1.0) / 9007199254740992.0;
}

static double rng_normal(uint64_t *s)
{
    return sqrt(-2.0 * log(rng_unit(s))) * cos(2.0 * M_PI * rng_unit(s));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static histogram *hist_new(void)
{
    histogram *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    return h;
}

/* The documented guarantee for a value within range: exact <= estimate <
 * exact * (1 + 1/128), which is well inside the required 1%. */
static void assert_close(uint64_t estimate, uint64_t exact)
{
    if (estimate < exact || (double)(estimate - exact) * 128.0 >= (double)exact + 1e-9) {
        if (!(exact == 0 && estimate == 0))
            fail_msg("estimate %llu for exact %llu", (unsigned long long)estimate,
                     (unsigned long long)exact);
    }
    assert_true(fabs((double)estimate - (double)exact) <= 0.01 * (double)exact);
}

static const double quantiles[] = {0.0, 0.5, 0.9, 0.99, 0.999, 1.0};

/* Records v[0..n) into a fresh histogram and checks count, min, max, sum
 * and the quantiles against the sorted data (v is sorted in place). */
static void check_distribution(uint64_t *v, size_t n, const char *name)
{
    histogram *h = hist_new();
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        histogram_record(h, v[i]);
        sum += v[i];
    }
    qsort(v, n, sizeof(*v), cmp_u64);
    assert_int_equal(histogram_count(h), n);
    assert_int_equal(histogram_overflow(h), 0);
    assert_int_equal(histogram_min_ns(h), v[0]);
    assert_int_equal(histogram_max_ns(h), v[n - 1]);
    assert_int_equal(histogram_sum_ns(h), sum);
    for (size_t k = 0; k < sizeof(quantiles) / sizeof(quantiles[0]); k++) {
        uint64_t rank = histogram_rank(quantiles[k], n);
        assert_true(rank >= 1 && rank <= n);
        uint64_t exact = v[rank - 1], est = histogram_quantile_ns(h, quantiles[k]);
        print_message("%-12s p%-6g exact %14llu  histogram %14llu\n", name, quantiles[k] * 100,
                      (unsigned long long)exact, (unsigned long long)est);
        assert_close(est, exact);
    }
    /* And a dense sweep, so no part of the distribution goes unchecked. */
    for (int k = 1; k < 1000; k++) {
        double q = k / 1000.0;
        assert_close(histogram_quantile_ns(h, q), v[histogram_rank(q, n) - 1]);
    }
    free(h);
}

static void test_rank_is_nearest_rank(void **state)
{
    (void)state;
    assert_int_equal(histogram_rank(0.5, 0), 0);
    assert_int_equal(histogram_rank(0.0, 10), 1);
    assert_int_equal(histogram_rank(-1.0, 10), 1);
    assert_int_equal(histogram_rank(NAN, 10), 1);
    assert_int_equal(histogram_rank(0.5, 10), 5);
    assert_int_equal(histogram_rank(0.51, 10), 6);
    assert_int_equal(histogram_rank(0.99, 10), 10);
    assert_int_equal(histogram_rank(1.0, 10), 10);
    assert_int_equal(histogram_rank(2.0, 10), 10);
    assert_int_equal(histogram_rank(0.9, 100000), 90000);
}

/* Every bucket: its bounds map back to it, the next bucket starts right
 * after it, and its width is under 1/128 of its lowest value. */
static void test_bucket_layout(void **state)
{
    (void)state;
    assert_int_equal(HISTOGRAM_N_BUCKETS, 4608);
    assert_int_equal(histogram_bucket_lower_ns(0), 0);
    for (uint32_t i = 0; i < HISTOGRAM_N_BUCKETS; i++) {
        uint64_t lo = histogram_bucket_lower_ns(i), le = histogram_bucket_le_ns(i);
        assert_true(lo <= le);
        assert_int_equal(histogram_bucket_index(lo), i);
        assert_int_equal(histogram_bucket_index(le), i);
        assert_int_equal(histogram_edge_ns(lo), le);
        assert_true((le - lo) * 128 < (lo ? lo : 1));
        if (i + 1 < HISTOGRAM_N_BUCKETS)
            assert_int_equal(histogram_bucket_lower_ns(i + 1), le + 1);
    }
    assert_int_equal(histogram_bucket_le_ns(HISTOGRAM_N_BUCKETS - 1), HISTOGRAM_MAX_NS);
    assert_int_equal(histogram_bucket_index(UINT64_MAX), HISTOGRAM_N_BUCKETS - 1);
}

static void test_uniform(void **state)
{
    (void)state;
    uint64_t s = 1, *v = malloc(N_VALUES * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < N_VALUES; i++)
        v[i] = 1 + rng_next(&s) % 1000000;
    check_distribution(v, N_VALUES, "uniform");
    free(v);
}

static void test_exponential(void **state)
{
    (void)state;
    uint64_t s = 2, *v = malloc(N_VALUES * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < N_VALUES; i++)
        v[i] = (uint64_t)(-50000.0 * log(rng_unit(&s))); /* mean 50 us */
    check_distribution(v, N_VALUES, "exponential");
    free(v);
}

/* Median 100 us, sigma 3.5: the tails reach from a few ns to many minutes. */
static void test_lognormal(void **state)
{
    (void)state;
    uint64_t s = 3, *v = malloc(N_VALUES * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < N_VALUES; i++)
        v[i] = (uint64_t)exp(log(1e5) + 3.5 * rng_normal(&s));
    check_distribution(v, N_VALUES, "lognormal");
    /* The data must really span the range this test claims. */
    assert_true(v[0] < 10);
    assert_true(v[N_VALUES - 1] > UINT64_C(60000000000));
    assert_true(v[N_VALUES - 1] <= HISTOGRAM_MAX_NS);
    free(v);
}

static void test_constant(void **state)
{
    (void)state;
    uint64_t *v = malloc(N_VALUES * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < N_VALUES; i++)
        v[i] = 1234567;
    check_distribution(v, N_VALUES, "constant");
    free(v);
}

/* 90% at 100 ns and 10% at 10 ms: p90 is the last fast value and the next
 * rank is the first slow one, so an off-by-one in the rank shows. */
static void test_two_point(void **state)
{
    (void)state;
    uint64_t s = 4, *v = malloc(N_VALUES * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < N_VALUES; i++)
        v[i] = i < N_VALUES / 10 * 9 ? 100 : 10000000;
    for (size_t i = N_VALUES - 1; i > 0; i--) { /* shuffle */
        size_t j = rng_next(&s) % (i + 1);
        uint64_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    histogram *h = hist_new();
    for (size_t i = 0; i < N_VALUES; i++)
        histogram_record(h, v[i]);
    assert_int_equal(histogram_quantile_ns(h, 0.9), 100);
    assert_int_equal(histogram_quantile_ns(h, 0.9 + 1.0 / N_VALUES), 10000000);
    free(h);
    check_distribution(v, N_VALUES, "two-point");
    free(v);
}

static void test_boundary_values(void **state)
{
    (void)state;
    uint64_t vals[3 * 64 + 8];
    size_t n = 0;
    vals[n++] = 0;
    vals[n++] = HISTOGRAM_MAX_NS;
    for (int k = 1; k < HISTOGRAM_RANGE_BITS; k++) {
        vals[n++] = (UINT64_C(1) << k) - 1;
        vals[n++] = UINT64_C(1) << k;
        vals[n++] = (UINT64_C(1) << k) + 1;
    }
    histogram *h = hist_new();
    for (size_t i = 0; i < n; i++) {
        histogram_reset(h);
        histogram_record(h, vals[i]);
        histogram_record(h, vals[i]);
        histogram_record(h, vals[i]);
        assert_int_equal(histogram_count(h), 3);
        assert_int_equal(histogram_overflow(h), 0);
        assert_int_equal(histogram_min_ns(h), vals[i]);
        assert_int_equal(histogram_max_ns(h), vals[i]);
        /* Clamped to max, the middle rank comes back exactly. */
        assert_int_equal(histogram_quantile_ns(h, 0.5), vals[i]);
        histogram_iter it;
        histogram_iter_init(&it, h);
        assert_true(histogram_iter_next(&it));
        assert_int_equal(it.count, 3);
        assert_int_equal(it.index, histogram_bucket_index(vals[i]));
        assert_close(it.le_ns, vals[i]);
        assert_false(histogram_iter_next(&it));
    }

    /* Beyond the range: recorded as the highest trackable value, counted. */
    histogram_reset(h);
    histogram_record(h, 5);
    histogram_record(h, HISTOGRAM_MAX_NS + 1);
    histogram_record_n(h, UINT64_MAX, 2);
    assert_int_equal(histogram_count(h), 4);
    assert_int_equal(histogram_overflow(h), 3);
    assert_int_equal(histogram_max_ns(h), HISTOGRAM_MAX_NS);
    assert_int_equal(histogram_sum_ns(h), 5 + 3 * HISTOGRAM_MAX_NS);
    assert_int_equal(histogram_quantile_ns(h, 0.5), HISTOGRAM_MAX_NS);
    assert_int_equal(atomic_load(&h->counts[HISTOGRAM_N_BUCKETS - 1]), 3);

    /* Zero is a value like any other; an empty histogram answers zeros. */
    histogram_reset(h);
    assert_int_equal(histogram_quantile_ns(h, 0.5), 0);
    assert_int_equal(histogram_min_ns(h), 0);
    assert_true(histogram_mean_ns(h) == 0.0);
    histogram_record(h, 0);
    histogram_record(h, 7);
    assert_int_equal(histogram_min_ns(h), 0);
    assert_int_equal(histogram_quantile_ns(h, 0.0), 0);
    assert_true(histogram_mean_ns(h) == 3.5);

    /* record_n(v, k) is k records of v; k == 0 records nothing. */
    histogram *one = hist_new();
    histogram_reset(h);
    histogram_record_n(h, 999, 0);
    assert_int_equal(histogram_count(h), 0);
    histogram_record_n(h, 123456789, 5);
    histogram_record_n(h, 17, 2);
    for (int i = 0; i < 5; i++)
        histogram_record(one, 123456789);
    histogram_record(one, 17);
    histogram_record(one, 17);
    assert_memory_equal(h, one, sizeof(*h));
    free(one);
    free(h);
}

static void assert_same(const histogram *a, const histogram *b)
{
    assert_int_equal(histogram_count(a), histogram_count(b));
    assert_int_equal(histogram_overflow(a), histogram_overflow(b));
    assert_int_equal(histogram_min_ns(a), histogram_min_ns(b));
    assert_int_equal(histogram_max_ns(a), histogram_max_ns(b));
    assert_int_equal(histogram_sum_ns(a), histogram_sum_ns(b));
    for (uint32_t i = 0; i < HISTOGRAM_N_BUCKETS; i++)
        assert_int_equal(atomic_load(&a->counts[i]), atomic_load(&b->counts[i]));
}

static void test_merge_equals_single(void **state)
{
    (void)state;
    enum { N_PARTS = 4 };
    histogram *all = hist_new(), *merged = hist_new(), *parts[N_PARTS];
    for (int p = 0; p < N_PARTS; p++)
        parts[p] = hist_new();
    uint64_t s = 5;
    for (int i = 0; i < N_VALUES; i++) {
        uint64_t v = (uint64_t)exp(log(1e5) + 3.0 * rng_normal(&s));
        if (i % 1000 == 0)
            v = UINT64_MAX; /* some overflow too */
        histogram_record(all, v);
        /* Part 3 stays empty: merging an empty histogram changes nothing. */
        histogram_record(parts[(i % 7) % 3], v);
    }
    for (int p = 0; p < N_PARTS; p++)
        histogram_merge(merged, parts[p]);
    assert_same(merged, all);
    assert_true(histogram_overflow(merged) == N_VALUES / 1000);
    for (size_t k = 0; k < sizeof(quantiles) / sizeof(quantiles[0]); k++)
        assert_int_equal(histogram_quantile_ns(merged, quantiles[k]),
                         histogram_quantile_ns(all, quantiles[k]));
    /* An empty dst takes src's min and max; later merges lower the min and
     * raise the max. */
    histogram_reset(merged);
    histogram_reset(parts[3]);
    histogram_record(parts[3], 500);
    histogram_merge(merged, parts[3]);
    assert_int_equal(histogram_min_ns(merged), 500);
    assert_int_equal(histogram_max_ns(merged), 500);
    histogram_reset(parts[3]);
    histogram_record(parts[3], 7);
    histogram_record(parts[3], 9000);
    histogram_merge(merged, parts[3]);
    assert_int_equal(histogram_min_ns(merged), 7);
    assert_int_equal(histogram_max_ns(merged), 9000);
    assert_int_equal(histogram_count(merged), 3);
    assert_int_equal(histogram_sum_ns(merged), 9507);
    free(all);
    free(merged);
    for (int p = 0; p < N_PARTS; p++)
        free(parts[p]);
}

#define N_WRITES 2000000

typedef struct writer_arg {
    histogram *h;
    _Atomic int done;
} writer_arg;

static void *writer_main(void *arg)
{
    writer_arg *w = arg;
    for (uint64_t i = 0; i < N_WRITES; i++)
        histogram_record(w->h, (i * 2654435761u) % 10000000);
    atomic_store(&w->done, 1);
    return NULL;
}

/* The reader merges snapshots while the writer records: each snapshot is
 * self-consistent (its total is the sum of its buckets), no bucket and no
 * total ever goes down, and once the writer is done the total is exact. */
static void test_merge_while_recording(void **state)
{
    (void)state;
    writer_arg w = {.h = hist_new()};
    histogram *snap = hist_new(), *prev = hist_new();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
    int n_snapshots = 0;
    for (;;) {
        int done = atomic_load(&w.done);
        histogram_reset(snap);
        histogram_merge(snap, w.h);
        uint64_t total = 0;
        for (uint32_t i = 0; i < HISTOGRAM_N_BUCKETS; i++) {
            uint64_t c = atomic_load(&snap->counts[i]);
            assert_true(c >= atomic_load(&prev->counts[i]));
            total += c;
        }
        assert_int_equal(total, histogram_count(snap));
        assert_true(histogram_count(snap) >= histogram_count(prev));
        if (total > 0) {
            assert_true(histogram_quantile_ns(snap, 0.5) <= histogram_max_ns(snap));
            assert_true(histogram_max_ns(snap) < 10000000);
        }
        histogram *tmp = prev;
        prev = snap;
        snap = tmp;
        n_snapshots++;
        if (done)
            break;
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    print_message("%d snapshots while recording\n", n_snapshots);
    /* `prev` was merged after the writer finished. */
    assert_int_equal(histogram_count(prev), N_WRITES);
    assert_same(prev, w.h);
    free(w.h);
    free(snap);
    free(prev);
}

static void test_prometheus_buckets(void **state)
{
    (void)state;
    uint64_t s = 6, *v = malloc(N_VALUES * sizeof(*v));
    assert_non_null(v);
    histogram *h = hist_new();
    for (size_t i = 0; i < N_VALUES; i++) {
        v[i] = (uint64_t)exp(log(1e5) + 3.0 * rng_normal(&s));
        histogram_record(h, v[i]);
    }
    qsort(v, N_VALUES, sizeof(*v), cmp_u64);

    uint64_t le[64], cum[64];
    size_t n = histogram_edges_exponential(le, 64, 1000, 2.0); /* 1 us, 2 us, 4 us, ... */
    assert_true(n >= 30 && n < 64);
    assert_int_equal(le[0], histogram_edge_ns(1000));
    assert_true(le[n - 1] < HISTOGRAM_MAX_NS);
    /* One more boundary at the top edge: that is where everything is. */
    le[n++] = HISTOGRAM_MAX_NS;
    assert_int_equal(histogram_cumulative(h, le, n, cum), OBS_OK);
    size_t j = 0;
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(histogram_edge_ns(le[k]), le[k]);
        assert_true(k == 0 || (le[k] > le[k - 1] && cum[k] >= cum[k - 1]));
        /* Exact: the number of values <= le[k] in the sorted data. */
        while (j < N_VALUES && v[j] <= le[k])
            j++;
        assert_int_equal(cum[k], j);
    }
    assert_int_equal(cum[n - 1], histogram_count(h));

    /* Boundaries that are not edges, or not increasing, are refused. */
    uint64_t bad[3] = {le[0], le[0] + 1, le[2]};
    cum[0] = 42;
    assert_int_equal(histogram_cumulative(h, bad, 3, cum), OBS_EINVAL);
    assert_int_equal(cum[0], 42);
    uint64_t down[2] = {le[2], le[1]};
    assert_int_equal(histogram_cumulative(h, down, 2, cum), OBS_EINVAL);
    uint64_t beyond[1] = {HISTOGRAM_MAX_NS + 1};
    assert_int_equal(histogram_cumulative(h, beyond, 1, cum), OBS_EINVAL);
    assert_int_equal(histogram_edges_exponential(le, 64, 1000, 1.0), 0);
    assert_int_equal(histogram_edges_exponential(le, 3, 1000, 2.0), 3);
    /* A start of 0 still grows: 0, 1, 2, 4, ... */
    assert_true(histogram_edges_exponential(le, 64, 0, 2.0) > 40);
    assert_int_equal(le[0], 0);
    assert_int_equal(le[1], 1);

    /* The iterator walks the non-empty buckets in order, cumulatively. */
    histogram_iter it;
    histogram_iter_init(&it, h);
    uint64_t last_le = 0, total = 0;
    int first = 1;
    while (histogram_iter_next(&it)) {
        assert_true(it.count > 0);
        assert_true(first || it.le_ns > last_le);
        total += it.count;
        assert_int_equal(it.cumulative, total);
        last_le = it.le_ns;
        first = 0;
    }
    assert_int_equal(total, N_VALUES);
    free(h);
    free(v);
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */

/* Encodes h into a buffer of exactly histogram_encoded_len(h) bytes (so
 * that ASan sees any write past it); the caller frees it. */
static unsigned char *encode_exact(const histogram *h, size_t *len)
{
    size_t cap = histogram_encoded_len(h);
    unsigned char *buf = malloc(cap);
    assert_non_null(buf);
    assert_int_equal(histogram_encode(h, buf, cap, len), 0);
    assert_int_equal(*len, cap);
    return buf;
}

/* Encode then decode gives the same histogram, field by field and byte by
 * byte, and encoding the result gives the same bytes; a buffer one byte
 * short is refused. */
static void check_roundtrip(const histogram *h)
{
    size_t len;
    unsigned char *buf = encode_exact(h, &len);
    histogram *back = hist_new();
    memset(back, 0xa5, sizeof(*back)); /* decode must zero it first */
    assert_int_equal(histogram_decode(buf, len, back), 0);
    assert_same(h, back);
    assert_memory_equal(h, back, sizeof(*h));
    size_t len2;
    unsigned char *again = encode_exact(back, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(again, buf, len);

    unsigned char *small = malloc(len - 1);
    assert_non_null(small);
    size_t got = 99;
    assert_int_equal(histogram_encode(h, small, len - 1, &got), OBS_EINVAL);
    assert_int_equal(got, 0);
    free(small);
    free(again);
    free(back);
    free(buf);
}

static void test_codec_roundtrip(void **state)
{
    (void)state;
    histogram *h = hist_new();
    check_roundtrip(h); /* empty: the header alone */
    assert_int_equal(histogram_encoded_len(h), HISTOGRAM_CODEC_HEADER_LEN);

    histogram_record(h, 0);
    check_roundtrip(h);
    uint64_t seed = 7;
    for (int i = 0; i < 10000; i++) {
        uint64_t shift = rng_next(&seed) % 64; /* values of every magnitude */
        histogram_record(h, rng_next(&seed) >> shift);
    }
    histogram_record_n(h, HISTOGRAM_MAX_NS + 1, 3); /* overflow */
    assert_true(histogram_overflow(h) >= 3);
    check_roundtrip(h);

    /* Every bucket non-empty: the largest encoding there is. */
    histogram_reset(h);
    for (uint32_t i = 0; i < HISTOGRAM_N_BUCKETS; i++)
        histogram_record_n(h, histogram_bucket_lower_ns(i), i + 1);
    assert_int_equal(histogram_encoded_len(h), HISTOGRAM_CODEC_MAX_LEN);
    check_roundtrip(h);
    free(h);
}

/* Decodes the first n bytes of enc from the end of a page whose next page
 * is inaccessible: a read past the input faults even without ASan. */
static int decode_at_guard(const unsigned char *enc, size_t n, histogram *h)
{
    long page = sysconf(_SC_PAGESIZE);
    assert_true(page > 0 && n <= (size_t)page);
    unsigned char *map =
        mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map + page, (size_t)page, PROT_NONE), 0);
    unsigned char *in = map + page - n;
    memcpy(in, enc, n);
    int rc = histogram_decode(in, n, h);
    munmap(map, 2 * (size_t)page);
    return rc;
}

/* Every proper prefix of an encoding, and anything malformed, is OBS_EIO,
 * read within its bounds, with h zeroed. */
static void test_codec_truncated(void **state)
{
    (void)state;
    histogram *h = hist_new(), *out = hist_new(), *zero = hist_new();
    for (uint64_t v = 1; v < 100000000; v = v * 3 + 1)
        histogram_record(h, v);
    size_t len;
    unsigned char *enc = encode_exact(h, &len);
    assert_true(len > HISTOGRAM_CODEC_HEADER_LEN + 5 * HISTOGRAM_CODEC_BUCKET_LEN);
    for (size_t n = 0; n < len; n++) {
        memset(out, 0xa5, sizeof(*out));
        if (decode_at_guard(enc, n, out) != OBS_EIO)
            fail_msg("a prefix of %zu of %zu bytes decoded", n, len);
        assert_memory_equal(out, zero, sizeof(*out));
    }
    assert_int_equal(decode_at_guard(enc, len, out), 0);
    assert_memory_equal(out, h, sizeof(*h));

    /* One byte too many, a wrong format byte, a bucket count that does not
     * match the length, a bucket index past the last. */
    unsigned char *bad = malloc(len + 1);
    memcpy(bad, enc, len);
    bad[len] = 0;
    assert_int_equal(decode_at_guard(bad, len + 1, out), OBS_EIO);
    bad[0] = 2;
    assert_int_equal(decode_at_guard(bad, len, out), OBS_EIO);
    assert_int_equal(histogram_count(out), 0);
    memcpy(bad, enc, len);
    memset(bad + 41, 0xff, 4); /* 2^32 - 1 buckets */
    assert_int_equal(decode_at_guard(bad, len, out), OBS_EIO);
    memcpy(bad, enc, len);
    bad[len - 10] = (unsigned char)(HISTOGRAM_N_BUCKETS >> 8);
    bad[len - 9] = (unsigned char)(HISTOGRAM_N_BUCKETS & 0xff);
    assert_int_equal(decode_at_guard(bad, len, out), OBS_EIO);
    free(bad);
    free(enc);
    free(zero);
    free(out);
    free(h);
}

/* The exact bytes of format 1 (docs/storage.md): stored runs are read with
 * this codec, so these bytes must never change. */
static void test_codec_pinned_bytes(void **state)
{
    (void)state;
    histogram *h = hist_new();
    histogram_record(h, 5);                 /* bucket 5 */
    histogram_record_n(h, 300, 2);          /* bucket 128 + 150 = 278 */
    histogram_record(h, UINT64_C(1) << 50); /* overflow: HISTOGRAM_MAX_NS, bucket 4607 */
    static const unsigned char want[] = {
        0x01,                                                       /* format */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04,             /* n_values */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,             /* n_overflow */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,             /* min_ns */
        0x00, 0x00, 0x03, 0xff, 0xff, 0xff, 0xff, 0xff,             /* max_ns = 2^42 - 1 */
        0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02, 0x5c,             /* sum_ns = 2^42 - 1 + 605 */
        0x00, 0x00, 0x00, 0x03,                                     /* n_buckets */
        0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* 5: 1 */
        0x01, 0x16, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, /* 278: 2 */
        0x11, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* 4607: 1 */
    };
    size_t len;
    unsigned char *enc = encode_exact(h, &len);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(enc, want, sizeof(want));

    histogram *back = hist_new();
    assert_int_equal(histogram_decode(want, sizeof(want), back), 0);
    assert_int_equal(histogram_count(back), 4);
    assert_int_equal(histogram_overflow(back), 1);
    assert_int_equal(histogram_min_ns(back), 5);
    assert_int_equal(histogram_max_ns(back), HISTOGRAM_MAX_NS);
    assert_int_equal(histogram_sum_ns(back), HISTOGRAM_MAX_NS + 605);
    assert_int_equal(atomic_load(&back->counts[5]), 1);
    assert_int_equal(atomic_load(&back->counts[278]), 2);
    assert_int_equal(atomic_load(&back->counts[HISTOGRAM_N_BUCKETS - 1]), 1);
    assert_memory_equal(back, h, sizeof(*h));
    free(back);
    free(enc);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rank_is_nearest_rank),
        cmocka_unit_test(test_bucket_layout),
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_exponential),
        cmocka_unit_test(test_lognormal),
        cmocka_unit_test(test_constant),
        cmocka_unit_test(test_two_point),
        cmocka_unit_test(test_boundary_values),
        cmocka_unit_test(test_merge_equals_single),
        cmocka_unit_test(test_merge_while_recording),
        cmocka_unit_test(test_prometheus_buckets),
        cmocka_unit_test(test_codec_roundtrip),
        cmocka_unit_test(test_codec_truncated),
        cmocka_unit_test(test_codec_pinned_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
