/*
 * histogram.h - a log-linear latency histogram in fixed memory
 * (HdrHistogram-style), one per recording thread, merged on read.
 *
 * Values are nanoseconds (uint64). Each power of two [2^m, 2^(m+1)) is split
 * into 128 equal buckets, and values below 256 have a bucket each, so a
 * bucket is never wider than 1/128 of its lowest value: every figure read
 * back (quantile, bucket bound) is within 0.79% of the value it stands for.
 * The range is 0 .. 2^42-1 ns (about 73 minutes) in HISTOGRAM_N_BUCKETS =
 * 4608 counters, 36 KiB in the struct itself: nothing is allocated, ever.
 * Larger values are recorded as HISTOGRAM_MAX_NS and counted in n_overflow.
 * docs/histogram.md has the layout, the error bound and the measured cost.
 *
 * Concurrency: exactly one thread records into a histogram (its owner);
 * recording is an index computation and a few relaxed loads and stores,
 * with no lock and no locked instruction. Another thread reads it only
 * through histogram_merge(), which copies it with atomic loads into a
 * histogram that thread owns; all other queries are meant for such a copy
 * (or for a histogram nobody records into any more). A zero-filled
 * histogram is a valid empty one (static storage or calloc will do).
 */
#ifndef OBS_HISTOGRAM_H
#define OBS_HISTOGRAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HISTOGRAM_SUB_BITS 7 /* 2^7 = 128 buckets per power of two */
#define HISTOGRAM_RANGE_BITS 42
#define HISTOGRAM_MAX_NS ((UINT64_C(1) << HISTOGRAM_RANGE_BITS) - 1)
/* Values 0..255 take 256 buckets; each power of two from 2^8 to 2^41
 * takes 128 more: (42 - 8) * 128 + 256 = (42 - 6) * 128. */
#define HISTOGRAM_N_BUCKETS ((HISTOGRAM_RANGE_BITS - HISTOGRAM_SUB_BITS + 1) << HISTOGRAM_SUB_BITS)

typedef struct histogram {
    /* Written only by the owning thread, read by anyone with atomic loads. */
    _Atomic uint64_t n_values;   /* values recorded (including overflow) */
    _Atomic uint64_t n_overflow; /* values above HISTOGRAM_MAX_NS, recorded as it */
    _Atomic uint64_t min_ns;     /* meaningful when n_values > 0 */
    _Atomic uint64_t max_ns;
    _Atomic uint64_t sum_ns; /* wraps modulo 2^64 (584 years of total time) */
    _Atomic uint64_t counts[HISTOGRAM_N_BUCKETS];
} histogram;

/* Bucket index of a value (values above the range land in the last bucket).
 * For v < 256 the index is v; above, with s = (bit length of v) - 8, it is
 * s * 128 + (v >> s), where v >> s is in [128, 256). OR-ing 128 in makes
 * both cases one formula and keeps the argument of clz nonzero. */
static inline uint32_t histogram_bucket_index(uint64_t value_ns)
{
    if (value_ns > HISTOGRAM_MAX_NS)
        value_ns = HISTOGRAM_MAX_NS;
    unsigned s =
        63u - (unsigned)__builtin_clzll(value_ns | (1u << HISTOGRAM_SUB_BITS)) - HISTOGRAM_SUB_BITS;
    return (uint32_t)(((uint64_t)s << HISTOGRAM_SUB_BITS) + (value_ns >> s));
}

/* Records `n` occurrences of `value_ns`. Owner thread only. No allocation,
 * no lock: plain loads and stores (relaxed atomics, so a concurrent
 * histogram_merge reads whole values), the bucket store last with release
 * order so that a reader that sees the count also sees min, max and sum
 * updated for it. n == 0 records nothing. */
static inline void histogram_record_n(histogram *h, uint64_t value_ns, uint64_t n)
{
    if (n == 0)
        return;
    if (value_ns > HISTOGRAM_MAX_NS) {
        value_ns = HISTOGRAM_MAX_NS;
        uint64_t o = atomic_load_explicit(&h->n_overflow, memory_order_relaxed);
        atomic_store_explicit(&h->n_overflow, o + n, memory_order_relaxed);
    }
    uint64_t count = atomic_load_explicit(&h->n_values, memory_order_relaxed);
    if (count == 0 || value_ns < atomic_load_explicit(&h->min_ns, memory_order_relaxed))
        atomic_store_explicit(&h->min_ns, value_ns, memory_order_relaxed);
    if (value_ns > atomic_load_explicit(&h->max_ns, memory_order_relaxed))
        atomic_store_explicit(&h->max_ns, value_ns, memory_order_relaxed);
    uint64_t sum = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
    atomic_store_explicit(&h->sum_ns, sum + value_ns * n, memory_order_relaxed);
    atomic_store_explicit(&h->n_values, count + n, memory_order_relaxed);
    _Atomic uint64_t *c = &h->counts[histogram_bucket_index(value_ns)];
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_release);
}

/* Records one value. Owner thread only (see histogram_record_n). */
static inline void histogram_record(histogram *h, uint64_t value_ns)
{
    histogram_record_n(h, value_ns, 1);
}

/* Empties `h`. Owner thread only, or when nobody records into it: a merge
 * running concurrently may see some counters reset and others not. */
void histogram_reset(histogram *h);

/* Adds `src` into `dst` (dst != src). `dst` belongs to the calling thread;
 * `src` may be recorded into by its owner meanwhile: then every bucket
 * copied holds a count it had during the merge, dst's n_values is the sum
 * of the counts copied (so quantiles of dst are self-consistent), and min,
 * max and sum are at least as recent as the counts (they may include a few
 * values recorded after their bucket was read). Neither is kept. */
void histogram_merge(histogram *dst, const histogram *src);

/* Plain readers (atomic loads; see the file comment for when they are
 * consistent). min and max are 0 for an empty histogram; mean is 0.0. */
uint64_t histogram_count(const histogram *h);
uint64_t histogram_overflow(const histogram *h);
uint64_t histogram_min_ns(const histogram *h);
uint64_t histogram_max_ns(const histogram *h);
uint64_t histogram_sum_ns(const histogram *h);
double histogram_mean_ns(const histogram *h);

/* The rank used for quantile q of n values (nearest rank): ceil(q * n),
 * at least 1 and at most n; q is clamped to [0, 1] (NaN counts as 0).
 * 0 when n == 0. The 1-based position in the sorted values. */
uint64_t histogram_rank(double q, uint64_t n);

/* The value at quantile q: an estimate of the histogram_rank(q, n)-th
 * smallest value x. Rank 1 gives min and rank n gives max, exactly;
 * otherwise the result is the upper bound of x's bucket capped at max,
 * so x <= result < x * (1 + 1/128) for values within range. 0 when empty. */
uint64_t histogram_quantile_ns(const histogram *h, double q);

/* Lowest and highest value of bucket `index` (< HISTOGRAM_N_BUCKETS): the
 * bucket holds exactly the integers in [lower, le]. */
uint64_t histogram_bucket_lower_ns(uint32_t index);
uint64_t histogram_bucket_le_ns(uint32_t index);

/* The histogram's bucket edge for `value_ns`: the upper bound (inclusive)
 * of the bucket holding it, within 1/128 above it; HISTOGRAM_MAX_NS for
 * values at or above the range. A value e is an edge iff
 * histogram_edge_ns(e) == e; counts at edges are exact (histogram_cumulative). */
static inline uint64_t histogram_edge_ns(uint64_t value_ns)
{
    return histogram_bucket_le_ns(histogram_bucket_index(value_ns));
}

/* Iteration over the non-empty buckets, in increasing order of value. */
typedef struct histogram_iter {
    const histogram *h; /* borrowed for the iteration */
    uint32_t next_index;
    uint32_t index;      /* current bucket */
    uint64_t le_ns;      /* its upper bound (inclusive) */
    uint64_t count;      /* values in it */
    uint64_t cumulative; /* values <= le_ns, this bucket included */
} histogram_iter;

/* Starts an iteration over `h`, which must stay valid (and should not be
 * recorded into) until the iteration ends. */
void histogram_iter_init(histogram_iter *it, const histogram *h);
/* Moves to the next non-empty bucket and fills index, le_ns, count and
 * cumulative; false when there is none left. */
bool histogram_iter_next(histogram_iter *it);

/* Coarse bucket boundaries for export (e.g. Prometheus `le` labels, which
 * want a few dozen buckets, not 4608): fills le_ns[0..cap) with the edges
 * histogram_edge_ns(start_ns * factor^k), k = 0, 1, ..., skipping repeats
 * and stopping below HISTOGRAM_MAX_NS. Returns how many were written
 * (0 when factor <= 1 or cap == 0). The result is strictly increasing and
 * every element is an edge, so histogram_cumulative() accepts it. */
size_t histogram_edges_exponential(uint64_t *le_ns, size_t cap, uint64_t start_ns, double factor);

/* Cumulative counts at given boundaries, for a Prometheus histogram:
 * cumulative[i] = number of values <= le_ns[i], exactly. Boundaries must be
 * strictly increasing histogram edges (see histogram_edge_ns), otherwise
 * OBS_EINVAL and nothing is written; an edge falls between buckets, so the
 * count needs no interpolation. The `+Inf` bucket is histogram_count(), and
 * the edge HISTOGRAM_MAX_NS also counts the overflowed values. Arrays are
 * borrowed for the call. Returns 0 or OBS_EINVAL. */
int histogram_cumulative(const histogram *h, const uint64_t *le_ns, size_t n_le,
                         uint64_t *cumulative);

/* The byte encoding of a histogram, as the store keeps it (docs/storage.md,
 * "Histogram"; format 1): a 45-byte header (format 1, then n_values,
 * n_overflow, min_ns, max_ns and sum_ns as 8 bytes each and the number of
 * buckets that follow as 4 bytes), then 10 bytes per non-empty bucket in
 * increasing index order (index as 2 bytes, count as 8). All integers are
 * unsigned big-endian. Stored runs are read back with it, so the bytes must
 * never change for format 1; a different layout needs a new format number. */
#define HISTOGRAM_CODEC_FORMAT 1
#define HISTOGRAM_CODEC_HEADER_LEN (1 + 5 * 8 + 4)
#define HISTOGRAM_CODEC_BUCKET_LEN (2 + 8)
/* The largest encoding: every bucket non-empty (46125 bytes). */
#define HISTOGRAM_CODEC_MAX_LEN                                                                    \
    (HISTOGRAM_CODEC_HEADER_LEN + HISTOGRAM_N_BUCKETS * HISTOGRAM_CODEC_BUCKET_LEN)

/* The length of `h`'s encoding: the header plus one bucket entry per
 * non-empty bucket. Meant for a histogram nobody records into (a merged
 * copy), like the other readers. */
size_t histogram_encoded_len(const histogram *h);

/* Encodes `h` into `buf`, which the caller owns (cap bytes; size it with
 * histogram_encoded_len() or HISTOGRAM_CODEC_MAX_LEN), and sets *len to the
 * number of bytes written. Nothing is allocated and `h` is only read.
 * Returns 0, or OBS_EINVAL when the encoding does not fit in cap bytes; then
 * the contents of buf are unspecified and *len is 0. */
int histogram_encode(const histogram *h, void *buf, size_t cap, size_t *len);

/* Decodes the len bytes at `buf` (borrowed for the call) into `h` (caller's
 * memory), which is zeroed first. Never reads outside [buf, buf + len).
 * Returns 0, or OBS_EIO when the bytes are not a format-1 encoding: wrong
 * format byte, a length that does not match the bucket count, or a bucket
 * index out of range (h then holds what was decoded before the error). */
int histogram_decode(const void *buf, size_t len, histogram *h);

#endif /* OBS_HISTOGRAM_H */
