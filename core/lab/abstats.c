/*
 * abstats.c - statistics of A/B experiments (see abstats.h for the contract
 * and docs/experiments.md for the reasoning): units in fixed memory, the
 * ratio-of-means estimate, its bootstrap, the rank tests and the verdict.
 */
#include "lab/abstats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "observatory/stage.h"

/* xoshiro256** seeded through splitmix64: fast, good enough for resampling,
 * and the same sequence on every platform (rand() is neither). */
typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform index below n (n < 2^32): the high 32 bits scaled by n. The bias,
 * at most n / 2^32, is far below the bootstrap's own Monte Carlo error. */
static inline size_t rng_index(rng *r, size_t n)
{
    return (size_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* ---- accumulator ---- */

int abstats_init(abstats_acc *acc, abstats_design design, uint32_t round_len, uint32_t max_units)
{
    memset(acc, 0, sizeof(*acc));
    if (design == ABSTATS_DUET) {
        if (round_len > 1)
            return OBS_EINVAL;
        round_len = 1;
    } else if (design == ABSTATS_INTERLEAVED) {
        if (round_len == 0)
            round_len = 4;
    } else {
        return OBS_EINVAL;
    }
    if (max_units == 0)
        max_units = ABSTATS_DEFAULT_MAX_UNITS;
    if (max_units > (UINT32_C(1) << 30))
        return OBS_EINVAL;
    uint32_t cap = 16;
    while (cap < max_units)
        cap <<= 1;
    acc->units = calloc(cap, sizeof(*acc->units));
    if (!acc->units)
        return OBS_ENOMEM;
    acc->design = design;
    acc->round_len = round_len;
    acc->max_units = cap;
    acc->per_unit = round_len;
    return OBS_OK;
}

void abstats_destroy(abstats_acc *acc)
{
    if (!acc)
        return;
    free(acc->units);
    memset(acc, 0, sizeof(*acc));
}

int abstats_set_scale(abstats_acc *acc, abstats_scale scale)
{
    if ((scale != ABSTATS_ARITHMETIC && scale != ABSTATS_GEOMETRIC) || acc->n_adds_a ||
        acc->n_adds_b)
        return OBS_EINVAL;
    acc->scale = scale;
    return OBS_OK;
}

void abstats_reset(abstats_acc *acc)
{
    acc->per_unit = acc->round_len;
    acc->n_merges = 0;
    acc->n_units = 0;
    memset(&acc->open, 0, sizeof(acc->open));
    acc->open_adds = 0;
    acc->n_adds_a = acc->n_adds_b = 0;
}

/* Unit i of the n units an estimate uses: the closed ones, then the open
 * one. A function, so that a random index is drawn once per unit. */
static inline const abstats_unit *unit_at(const abstats_acc *acc, size_t i)
{
    return i < acc->n_units ? &acc->units[i] : &acc->open;
}

static void unit_merge(abstats_unit *dst, const abstats_unit *x, const abstats_unit *y)
{
    dst->sum_a = x->sum_a + y->sum_a;
    dst->w_a = x->w_a + y->w_a;
    dst->sum_b = x->sum_b + y->sum_b;
    dst->w_b = x->w_b + y->w_b;
}

/* Called after each add: closes the open unit when it is full. With every
 * unit taken, merges neighbours in pairs instead; the open unit then holds
 * half of the new per_unit and keeps filling. */
static void after_add(abstats_acc *acc)
{
    if (++acc->open_adds < acc->per_unit)
        return;
    if (acc->n_units == acc->max_units) {
        for (size_t i = 0; i < acc->n_units / 2; i++)
            unit_merge(&acc->units[i], &acc->units[2 * i], &acc->units[2 * i + 1]);
        acc->n_units /= 2;
        acc->per_unit *= 2;
        acc->n_merges++;
        return;
    }
    acc->units[acc->n_units++] = acc->open;
    memset(&acc->open, 0, sizeof(acc->open));
    acc->open_adds = 0;
}

static bool value_ok(const abstats_acc *acc, double v, double w)
{
    return isfinite(v) && (acc->scale == ABSTATS_GEOMETRIC ? v > 0 : v >= 0) && isfinite(w) &&
           w > 0;
}

/* What a unit sums for a value: the value, or its log on the geometric scale. */
static double scaled(const abstats_acc *acc, double v)
{
    return acc->scale == ABSTATS_GEOMETRIC ? log(v) : v;
}

int abstats_paired_add(abstats_acc *acc, double a, double b, double weight)
{
    if (acc->design != ABSTATS_DUET || !value_ok(acc, a, weight) || !value_ok(acc, b, weight))
        return OBS_EINVAL;
    acc->open.sum_a += weight * scaled(acc, a);
    acc->open.w_a += weight;
    acc->open.sum_b += weight * scaled(acc, b);
    acc->open.w_b += weight;
    acc->n_adds_a++;
    acc->n_adds_b++;
    after_add(acc);
    return OBS_OK;
}

int abstats_block_add(abstats_acc *acc, abstats_variant variant, double value, double weight)
{
    if (acc->design != ABSTATS_INTERLEAVED || !value_ok(acc, value, weight) ||
        (variant != ABSTATS_A && variant != ABSTATS_B))
        return OBS_EINVAL;
    value = scaled(acc, value);
    if (variant == ABSTATS_A) {
        acc->open.sum_a += weight * value;
        acc->open.w_a += weight;
        acc->n_adds_a++;
    } else {
        acc->open.sum_b += weight * value;
        acc->open.w_b += weight;
        acc->n_adds_b++;
    }
    after_add(acc);
    return OBS_OK;
}

uint64_t abstats_count(const abstats_acc *acc, abstats_variant variant)
{
    return variant == ABSTATS_A ? acc->n_adds_a : acc->n_adds_b;
}

/* ---- normal distribution ---- */

static double normal_cdf(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0));
}

double abstats_normal_quantile(double p)
{
    /* Acklam's rational approximation (relative error 1.15e-9), then one
     * Halley step on erfc, which brings it to machine precision. */
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                               -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549732539343734e+00,
                               4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    if (!(p > 0 && p < 1))
        return p == 0 ? -INFINITY : p == 1 ? INFINITY : NAN;
    double x;
    if (p < 0.02425 || p > 1 - 0.02425) {
        double q = sqrt(-2 * log(p < 0.5 ? p : 1 - p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
        if (p > 0.5)
            x = -x;
    } else {
        double q = p - 0.5, r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
    double e = normal_cdf(x) - p;
    double u = e * sqrt(2 * M_PI) * exp(x * x / 2);
    return x - u / (1 + x * u / 2);
}

/* ---- rank tests ---- */

/* A value and which sample (or sign) it belongs to, for ranking. */
typedef struct tagged {
    double v;
    int g;
} tagged;

static int cmp_tagged(const void *x, const void *y)
{
    double a = ((const tagged *)x)->v, b = ((const tagged *)y)->v;
    return (a > b) - (a < b);
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Sorts t[0..n) and returns the sum of the mid-ranks (1-based) of the
 * elements with g != 0; *ties gets sum(t^3 - t) over groups of ties. */
static double rank_sum(tagged *t, size_t n, double *ties)
{
    qsort(t, n, sizeof(*t), cmp_tagged);
    double sum = 0, tie = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && t[j].v == t[i].v)
            j++;
        double mid = (double)(i + 1 + j) / 2; /* mean of ranks i+1 .. j */
        for (size_t k = i; k < j; k++)
            if (t[k].g)
                sum += mid;
        double len = (double)(j - i);
        tie += len * len * len - len;
        i = j;
    }
    *ties = tie;
    return sum;
}

/* Two-sided p-value of statistic s with mean m and variance var, with the
 * continuity correction of 1/2 towards the mean. */
static double two_sided_p(double s, double m, double var)
{
    if (!(var > 0))
        return 1.0;
    double dev = fabs(s - m) - 0.5;
    if (dev <= 0)
        return 1.0;
    double p = 2 * normal_cdf(-dev / sqrt(var));
    return p > 1 ? 1 : p;
}

/* t[0..nx) belong to x (g = 0), t[nx..nx+ny) to y (g = 1). */
static void mann_whitney(tagged *t, size_t nx, size_t ny, double *u, double *p)
{
    double n1 = (double)nx, n2 = (double)ny, n = n1 + n2;
    if (nx == 0 || ny == 0) {
        *u = 0;
        *p = 1;
        return;
    }
    double ties;
    double r2 = rank_sum(t, nx + ny, &ties);
    *u = r2 - n2 * (n2 + 1) / 2;
    double var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)));
    *p = two_sided_p(*u, n1 * n2 / 2, var);
}

int abstats_mann_whitney(const double *x, size_t nx, const double *y, size_t ny, double *u,
                         double *p)
{
    tagged *t = malloc((nx + ny + 1) * sizeof(*t));
    if (!t)
        return OBS_ENOMEM;
    for (size_t i = 0; i < nx; i++)
        t[i] = (tagged){x[i], 0};
    for (size_t i = 0; i < ny; i++)
        t[nx + i] = (tagged){y[i], 1};
    mann_whitney(t, nx, ny, u, p);
    free(t);
    return OBS_OK;
}

/* t[0..n) hold |d| and g = (d > 0), zeros already dropped. */
static void signed_rank(tagged *t, size_t n, double *w_plus, double *p)
{
    if (n == 0) {
        *w_plus = 0;
        *p = 1;
        return;
    }
    double ties, nn = (double)n;
    *w_plus = rank_sum(t, n, &ties);
    double var = nn * (nn + 1) * (2 * nn + 1) / 24 - ties / 48;
    *p = two_sided_p(*w_plus, nn * (nn + 1) / 4, var);
}

int abstats_signed_rank(const double *d, size_t n, double *w_plus, double *p)
{
    tagged *t = malloc((n + 1) * sizeof(*t));
    if (!t)
        return OBS_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (d[i] != 0)
            t[m++] = (tagged){fabs(d[i]), d[i] > 0};
    signed_rank(t, m, w_plus, p);
    free(t);
    return OBS_OK;
}

/* ---- estimate ---- */

void abstats_opts_default(abstats_opts *o)
{
    *o = (abstats_opts){
        .threshold = 0.01,
        .confidence = 0.95,
        .alpha = 0.01,
        .n_looks = 10,
        .n_boot = 2000,
        .min_samples = 30,
        .horizon = 0,
        .seed = 1,
        .direction = ABSTATS_LOWER_IS_BETTER,
    };
}

const char *abstats_verdict_name(abstats_verdict v)
{
    switch (v) {
    case ABSTATS_SAME: return "same";
    case ABSTATS_FASTER: return "faster";
    case ABSTATS_SLOWER: return "slower";
    case ABSTATS_UNSTABLE: return "unstable";
    case ABSTATS_UNKNOWN: break;
    }
    return "unknown";
}

bool abstats_decided(abstats_verdict v)
{
    return v == ABSTATS_SAME || v == ABSTATS_FASTER || v == ABSTATS_SLOWER;
}

static bool opts_ok(const abstats_opts *o)
{
    return o->threshold > 0 && o->threshold < 1 && o->confidence > 0 && o->confidence < 1 &&
           o->alpha > 0 && o->alpha < 1 && o->n_looks >= 1 && o->n_boot >= 100 &&
           o->n_boot <= 10000000 &&
           (o->direction == ABSTATS_LOWER_IS_BETTER || o->direction == ABSTATS_HIGHER_IS_BETTER);
}

/* log(mean_b / mean_a) from sums; +-inf or NaN when a mean is zero. On the
 * geometric scale the sums are of logs, and the log ratio of the geometric
 * means is the difference of the means. */
static double log_ratio(abstats_scale scale, double sa, double wa, double sb, double wb)
{
    if (!(wa > 0) || !(wb > 0))
        return NAN;
    if (scale == ABSTATS_GEOMETRIC)
        return sb / wb - sa / wa;
    if (sa == 0 && sb == 0)
        return 0;
    return log((sb / wb) / (sa / wa));
}

/* Percentile (linear interpolation between order statistics, "type 7") of
 * sorted v[0..n). */
static double percentile(const double *v, size_t n, double q)
{
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= n)
        return v[n - 1];
    double f = h - (double)lo;
    if (f == 0)
        return v[lo]; /* keeps infinities out of 0 * inf */
    return v[lo] + f * (v[lo + 1] - v[lo]);
}

/* Verdict from the decision interval [lo, hi] of log ratio, `better` being
 * the verdict for delta < 0 with costs. */
static abstats_verdict decide(double lo, double hi, double thr, abstats_direction dir)
{
    abstats_verdict lower = dir == ABSTATS_LOWER_IS_BETTER ? ABSTATS_FASTER : ABSTATS_SLOWER;
    abstats_verdict higher = dir == ABSTATS_LOWER_IS_BETTER ? ABSTATS_SLOWER : ABSTATS_FASTER;
    if (lo > log1p(-thr) && hi < log1p(thr))
        return ABSTATS_SAME;
    if (lo > 0)
        return higher;
    if (hi < 0)
        return lower;
    return ABSTATS_UNKNOWN;
}

int abstats_estimate(const abstats_acc *acc, const abstats_opts *opts, abstats_result *out)
{
    if (!opts_ok(opts))
        return OBS_EINVAL;
    int rc = OBS_OK;
    tagged *t = NULL;
    double *boot = NULL;
    const size_t n = acc->n_units + (acc->open_adds > 0);

    *out = (abstats_result){
        .verdict = ABSTATS_UNKNOWN,
        .n_a = acc->n_adds_a,
        .n_b = acc->n_adds_b,
        .n_units = n,
        .delta = NAN,
        .ci_lo = NAN,
        .ci_hi = NAN,
        .decision_lo = NAN,
        .decision_hi = NAN,
        .decision_level = 1 - opts->alpha / opts->n_looks,
        .se_log = NAN,
        .projected_half = NAN,
        .u_mann_whitney = 0,
        .p_mann_whitney = 1,
        .p_signed_rank = 1,
    };
    if (n == 0)
        return OBS_OK;
    abstats_unit tot = {0};
    for (size_t i = 0; i < n; i++)
        unit_merge(&tot, &tot, unit_at(acc, i));
    const bool geo = acc->scale == ABSTATS_GEOMETRIC;
    out->mean_a = tot.w_a > 0 ? tot.sum_a / tot.w_a : NAN;
    out->mean_b = tot.w_b > 0 ? tot.sum_b / tot.w_b : NAN;
    if (geo) {
        out->mean_a = exp(out->mean_a);
        out->mean_b = exp(out->mean_b);
    }
    const double lr = log_ratio(acc->scale, tot.sum_a, tot.w_a, tot.sum_b, tot.w_b);
    out->delta = expm1(lr);

    /* Rank tests on the units' means: Mann-Whitney of B's against A's, and
     * the signed-rank test of the per-unit log ratios (the paired test). */
    t = malloc(2 * n * sizeof(*t));
    boot = malloc((size_t)opts->n_boot * sizeof(*boot));
    if (!t || !boot) {
        rc = OBS_ENOMEM;
        goto out;
    }
    size_t nx = 0, ny = 0;
    for (size_t i = 0; i < n; i++) {
        const abstats_unit *x = unit_at(acc, i);
        if (x->w_a > 0)
            t[nx++] = (tagged){x->sum_a / x->w_a, 0};
    }
    for (size_t i = 0; i < n; i++) {
        const abstats_unit *x = unit_at(acc, i);
        if (x->w_b > 0)
            t[nx + ny++] = (tagged){x->sum_b / x->w_b, 1};
    }
    mann_whitney(t, nx, ny, &out->u_mann_whitney, &out->p_mann_whitney);
    size_t nd = 0;
    for (size_t i = 0; i < n; i++) {
        const abstats_unit *x = unit_at(acc, i);
        double d = log_ratio(acc->scale, x->sum_a, x->w_a, x->sum_b, x->w_b);
        if (isfinite(d) && d != 0)
            t[nd++] = (tagged){fabs(d), d > 0};
    }
    double w_plus;
    signed_rank(t, nd, &w_plus, &out->p_signed_rank);

    if (n < opts->min_samples || n < 2 || isnan(lr))
        goto out;

    /* Both variants never produced anything (e.g. allocations/record of two
     * allocation-free versions): identical, exactly. */
    if (!geo && tot.sum_a == 0 && tot.sum_b == 0) {
        out->ci_lo = out->ci_hi = out->decision_lo = out->decision_hi = 0;
        out->se_log = 0;
        out->verdict = ABSTATS_SAME;
        goto out;
    }

    /* The bootstrap: resample n units with replacement, n_boot times, and
     * keep the log ratio of means of each replicate. */
    rng r;
    rng_seed(&r, opts->seed);
    double mean = 0, m2 = 0;
    bool finite = true;
    for (uint32_t k = 0; k < opts->n_boot; k++) {
        /* Two sets of sums halve the chains of dependent additions. */
        abstats_unit s0 = {0}, s1 = {0};
        size_t i = 0;
        for (; i + 1 < n; i += 2) {
            unit_merge(&s0, &s0, unit_at(acc, rng_index(&r, n)));
            unit_merge(&s1, &s1, unit_at(acc, rng_index(&r, n)));
        }
        if (i < n)
            unit_merge(&s0, &s0, unit_at(acc, rng_index(&r, n)));
        double sa = s0.sum_a + s1.sum_a, wa = s0.w_a + s1.w_a;
        double sb = s0.sum_b + s1.sum_b, wb = s0.w_b + s1.w_b;
        double v = log_ratio(acc->scale, sa, wa, sb, wb);
        /* A replicate without A (or B) at all: only possible with a handful
         * of unbalanced units; count it as the extreme it is. */
        if (isnan(v))
            v = wa > 0 ? -INFINITY : INFINITY;
        boot[k] = v;
        if (!isfinite(v)) {
            finite = false;
            continue;
        }
        double dlt = v - mean;
        mean += dlt / (k + 1);
        m2 += dlt * (v - mean);
    }
    qsort(boot, opts->n_boot, sizeof(*boot), cmp_double);
    double tail = (1 - opts->confidence) / 2;
    out->ci_lo = expm1(percentile(boot, opts->n_boot, tail));
    out->ci_hi = expm1(percentile(boot, opts->n_boot, 1 - tail));

    /* The decision interval: normal on the log scale with the bootstrap's
     * standard error, at level 1 - alpha / n_looks (Bonferroni over the
     * planned looks). Percentiles that far out (0.05% per tail by default)
     * would rest on one or two replicates; the standard error rests on all. */
    out->se_log = finite ? sqrt(m2 / (opts->n_boot - 1)) : INFINITY;
    double z = abstats_normal_quantile(1 - opts->alpha / opts->n_looks / 2);
    double half = z * out->se_log;
    double lo = lr - half, hi = lr + half;
    if (isinf(lr)) /* A all zero, B not: no relative scale, only a sign */
        lo = hi = lr;
    out->decision_lo = expm1(lo);
    out->decision_hi = expm1(hi);
    out->verdict = decide(lo, hi, opts->threshold, opts->direction);
    if (out->verdict != ABSTATS_UNKNOWN || opts->horizon == 0)
        goto out;

    /* Undecided. The half-width shrinks as 1/sqrt(adds); projected to the
     * time limit, could the interval still decide either way, assuming the
     * estimate stays where it is? If not, more data will not help. */
    uint64_t now = acc->n_adds_a + (acc->design == ABSTATS_INTERLEAVED ? acc->n_adds_b : 0);
    double ph = half;
    if (opts->horizon > now)
        ph = half * sqrt((double)now / (double)opts->horizon);
    out->projected_half = ph;
    bool same_reachable = lr - ph > log1p(-opts->threshold) && lr + ph < log1p(opts->threshold);
    bool sign_reachable = fabs(lr) > ph;
    if (!same_reachable && !sign_reachable)
        out->verdict = ABSTATS_UNSTABLE;
out:
    free(t);
    free(boot);
    return rc;
}
