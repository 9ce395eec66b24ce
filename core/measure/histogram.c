/*
 * histogram.c - the reader side of the latency histogram (see histogram.h):
 * reset, merge, quantiles, bucket bounds, iteration, the cumulative
 * counts a Prometheus exporter needs, and the byte encoding the store keeps
 * per snapshot (docs/storage.md; the store calls only histogram_encode and
 * histogram_decode, so it knows nothing of the struct). Recording is inline
 * in the header, because it is on the measured path and a call would cost
 * as much as it.
 *
 * Everything here reads counters with atomic loads, so it is free of data
 * races against the owning thread; only histogram_merge is meant to run
 * while the owner records, the other readers work on its result.
 */
#include "measure/histogram.h"

#include <math.h>
#include <string.h>

#include "observatory/stage.h"

#define SUB_COUNT (UINT32_C(1) << HISTOGRAM_SUB_BITS)

static inline uint64_t load(const _Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

static inline void store(_Atomic uint64_t *p, uint64_t v)
{
    atomic_store_explicit(p, v, memory_order_relaxed);
}

void histogram_reset(histogram *h)
{
    store(&h->n_values, 0);
    store(&h->n_overflow, 0);
    store(&h->min_ns, 0);
    store(&h->max_ns, 0);
    store(&h->sum_ns, 0);
    for (uint32_t i = 0; i < HISTOGRAM_N_BUCKETS; i++)
        store(&h->counts[i], 0);
}

void histogram_merge(histogram *dst, const histogram *src)
{
    /* Counts first, with acquire: the owner stores min, max and sum before
     * the bucket (release), so whatever is read below covers every value
     * counted here. dst's total is recounted from the buckets rather than
     * taken from src->n_values, which may be ahead of or behind them. */
    uint64_t n = 0;
    for (uint32_t i = 0; i < HISTOGRAM_N_BUCKETS; i++) {
        uint64_t c = atomic_load_explicit(&src->counts[i], memory_order_acquire);
        if (c) {
            store(&dst->counts[i], load(&dst->counts[i]) + c);
            n += c;
        }
    }
    if (n == 0)
        return;
    uint64_t src_min = load(&src->min_ns), src_max = load(&src->max_ns);
    uint64_t dst_n = load(&dst->n_values);
    if (dst_n == 0 || src_min < load(&dst->min_ns))
        store(&dst->min_ns, src_min);
    if (src_max > load(&dst->max_ns))
        store(&dst->max_ns, src_max);
    store(&dst->sum_ns, load(&dst->sum_ns) + load(&src->sum_ns));
    store(&dst->n_overflow, load(&dst->n_overflow) + load(&src->n_overflow));
    store(&dst->n_values, dst_n + n);
}

uint64_t histogram_count(const histogram *h)
{
    return load(&h->n_values);
}
uint64_t histogram_overflow(const histogram *h)
{
    return load(&h->n_overflow);
}
uint64_t histogram_min_ns(const histogram *h)
{
    return load(&h->n_values) ? load(&h->min_ns) : 0;
}
uint64_t histogram_max_ns(const histogram *h)
{
    return load(&h->max_ns);
}
uint64_t histogram_sum_ns(const histogram *h)
{
    return load(&h->sum_ns);
}

double histogram_mean_ns(const histogram *h)
{
    uint64_t n = load(&h->n_values);
    return n ? (double)load(&h->sum_ns) / (double)n : 0.0;
}

uint64_t histogram_rank(double q, uint64_t n)
{
    if (n == 0)
        return 0;
    if (!(q > 0.0)) /* also NaN */
        return 1;
    if (q >= 1.0)
        return n;
    double r = ceil(q * (double)n);
    if (r < 1.0)
        return 1;
    /* (double)n may round up past n for n > 2^53. */
    return r >= (double)n ? n : (uint64_t)r;
}

uint64_t histogram_bucket_lower_ns(uint32_t index)
{
    if (index < 2 * SUB_COUNT)
        return index;
    uint32_t s = index / SUB_COUNT - 1;
    return (uint64_t)(index - s * SUB_COUNT) << s;
}

uint64_t histogram_bucket_le_ns(uint32_t index)
{
    if (index < 2 * SUB_COUNT)
        return index;
    uint32_t s = index / SUB_COUNT - 1;
    return histogram_bucket_lower_ns(index) + (UINT64_C(1) << s) - 1;
}

uint64_t histogram_quantile_ns(const histogram *h, double q)
{
    uint64_t n = load(&h->n_values);
    uint64_t rank = histogram_rank(q, n);
    if (rank == 0)
        return 0;
    uint64_t min = load(&h->min_ns), max = load(&h->max_ns);
    /* The extreme order statistics are known exactly. */
    if (rank == 1)
        return min;
    if (rank == n)
        return max;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < HISTOGRAM_N_BUCKETS; i++) {
        seen += load(&h->counts[i]);
        if (seen >= rank) {
            uint64_t v = histogram_bucket_le_ns(i);
            /* max bounds the bucket's highest value more tightly when it
             * falls inside it; min only matters for an inconsistent copy. */
            if (v > max)
                v = max;
            return v < min ? min : v;
        }
    }
    /* Only reached when n_values runs ahead of the buckets, i.e. on a
     * histogram being recorded into; the largest value seen is the answer. */
    return max;
}

void histogram_iter_init(histogram_iter *it, const histogram *h)
{
    *it = (histogram_iter){.h = h};
}

bool histogram_iter_next(histogram_iter *it)
{
    while (it->next_index < HISTOGRAM_N_BUCKETS) {
        uint32_t i = it->next_index++;
        uint64_t c = load(&it->h->counts[i]);
        if (c) {
            it->index = i;
            it->le_ns = histogram_bucket_le_ns(i);
            it->count = c;
            it->cumulative += c;
            return true;
        }
    }
    return false;
}

size_t histogram_edges_exponential(uint64_t *le_ns, size_t cap, uint64_t start_ns, double factor)
{
    if (!(factor > 1.0))
        return 0;
    size_t n = 0;
    /* Stepping in double keeps the geometric series exact enough; each
     * point is then snapped up to the edge of its bucket. */
    for (double b = (double)start_ns; n < cap && b < (double)HISTOGRAM_MAX_NS; b *= factor) {
        uint64_t e = histogram_edge_ns((uint64_t)b);
        if (e >= HISTOGRAM_MAX_NS)
            break;
        if (n == 0 || e > le_ns[n - 1])
            le_ns[n++] = e;
        if (b < 1.0) /* start_ns == 0 would never grow */
            b = 1.0 / factor;
    }
    return n;
}

int histogram_cumulative(const histogram *h, const uint64_t *le_ns, size_t n_le,
                         uint64_t *cumulative)
{
    for (size_t k = 0; k < n_le; k++) {
        if (histogram_edge_ns(le_ns[k]) != le_ns[k] || (k > 0 && le_ns[k] <= le_ns[k - 1]))
            return OBS_EINVAL;
    }
    uint64_t seen = 0;
    uint32_t i = 0;
    for (size_t k = 0; k < n_le; k++) {
        /* le_ns[k] is the upper bound of bucket `last`, so the buckets up to
         * and including it hold exactly the values <= le_ns[k]. */
        uint32_t last = histogram_bucket_index(le_ns[k]);
        for (; i <= last; i++)
            seen += load(&h->counts[i]);
        cumulative[k] = seen;
    }
    return OBS_OK;
}

/* ------------------------------------------------------------------------ */
/* Encoding (docs/storage.md, "Histogram")                                   */

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static uint32_t get_be32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | p[i];
    return v;
}

size_t histogram_encoded_len(const histogram *h)
{
    size_t n_buckets = 0;
    for (uint32_t i = 0; i < HISTOGRAM_N_BUCKETS; i++)
        n_buckets += load(&h->counts[i]) != 0;
    return HISTOGRAM_CODEC_HEADER_LEN + n_buckets * HISTOGRAM_CODEC_BUCKET_LEN;
}

int histogram_encode(const histogram *h, void *buf, size_t cap, size_t *len)
{
    unsigned char *out = buf, *p = out;
    *len = 0;
    if (cap < HISTOGRAM_CODEC_HEADER_LEN)
        return OBS_EINVAL;
    *p++ = HISTOGRAM_CODEC_FORMAT;
    put_be64(p, histogram_count(h)), p += 8;
    put_be64(p, histogram_overflow(h)), p += 8;
    put_be64(p, histogram_min_ns(h)), p += 8;
    put_be64(p, histogram_max_ns(h)), p += 8;
    put_be64(p, histogram_sum_ns(h)), p += 8;
    /* The bucket count is written once the buckets are, so that header and
     * entries agree even if the caller's length came from an earlier look. */
    unsigned char *n_at = p;
    p += 4;
    uint32_t n_buckets = 0;
    for (uint32_t i = 0; i < HISTOGRAM_N_BUCKETS; i++) {
        uint64_t c = load(&h->counts[i]);
        if (!c)
            continue;
        if (cap - (size_t)(p - out) < HISTOGRAM_CODEC_BUCKET_LEN)
            return OBS_EINVAL;
        p[0] = (unsigned char)(i >> 8);
        p[1] = (unsigned char)(i & 0xff);
        put_be64(p + 2, c);
        p += HISTOGRAM_CODEC_BUCKET_LEN;
        n_buckets++;
    }
    put_be32(n_at, n_buckets);
    *len = (size_t)(p - out);
    return 0;
}

int histogram_decode(const void *buf, size_t len, histogram *h)
{
    const unsigned char *v = buf;
    memset(h, 0, sizeof(*h));
    if (len < HISTOGRAM_CODEC_HEADER_LEN || v[0] != HISTOGRAM_CODEC_FORMAT)
        return OBS_EIO;
    uint32_t n = get_be32(v + 41);
    /* In 64 bits, so that a huge count cannot wrap into a match. */
    if ((uint64_t)len != HISTOGRAM_CODEC_HEADER_LEN + (uint64_t)n * HISTOGRAM_CODEC_BUCKET_LEN)
        return OBS_EIO;
    store(&h->n_values, get_be64(v + 1));
    store(&h->n_overflow, get_be64(v + 9));
    store(&h->min_ns, get_be64(v + 17));
    store(&h->max_ns, get_be64(v + 25));
    store(&h->sum_ns, get_be64(v + 33));
    const unsigned char *p = v + HISTOGRAM_CODEC_HEADER_LEN;
    for (uint32_t i = 0; i < n; i++, p += HISTOGRAM_CODEC_BUCKET_LEN) {
        uint32_t idx = (uint32_t)p[0] << 8 | p[1];
        if (idx >= HISTOGRAM_N_BUCKETS)
            return OBS_EIO;
        store(&h->counts[idx], get_be64(p + 2));
    }
    return 0;
}
