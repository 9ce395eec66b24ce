/*
 * schedule.c - intended send times from load phases (see schedule.h for the
 * model: a rate function, its integral L, and arrivals placed at L^-1 of
 * evenly spaced or exponentially spaced points).
 *
 * Times inside a phase are doubles in nanoseconds from the phase start;
 * only the final conversion to an absolute uint64_t truncates. For the
 * constant shape with uniform arrivals this is exactly the formula the
 * pipeline used before phases had shapes (start + k * 1e9 / rate), so
 * existing pipelines see the same intended times.
 *
 * Randomness: two splitmix64 streams per phase, seeded from (seed, phase
 * index): one for arrivals (one draw per record with Poisson arrivals), one
 * for burst and gap lengths (one draw per segment). Phases and the two uses
 * are independent, so for instance changing the burst distribution does not
 * move the Poisson arrivals of another phase.
 */
#include "engine/schedule.h"

#include <math.h>

#define NS_PER_S 1e9

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static double unit(uint64_t *s)
{
    return (double)(splitmix(s) >> 11) * 0x1p-53;
}

/* Exp(1): -log(1 - U) with 1 - U in (0, 1]. */
static double expo(uint64_t *s)
{
    return -log(1.0 - unit(s));
}

static uint64_t stream_seed(uint64_t seed, size_t phase, unsigned stream)
{
    uint64_t s = seed ^ 0x5343484544554c45ull; /* "SCHEDULE" */
    s += 2 * (uint64_t)phase + stream;
    return splitmix(&s);
}

static const cfg_load_phase max_phase = {.shape = CFG_SHAPE_MAX};

static const cfg_load_phase *cur(const schedule *sc)
{
    return sc->n_phases ? &sc->phases[sc->phase] : &max_phase;
}

static int has_bursts(const cfg_load_phase *ph)
{
    return ph->burst_ns > 0 && ph->shape != CFG_SHAPE_MAX && ph->shape != CFG_SHAPE_REPLAY;
}

/* ------------------------------------------------- the base rate's integral */

/* Steps: moves the hint (step_j, step_c = L at the start of step_j) to the
 * step holding time t; the hint moves both ways, so lookups need not be
 * monotone, and stays O(1) per record for a schedule that moves forward. */
static void step_seek_t(schedule *sc, const cfg_load_phase *ph, double t)
{
    double S = (double)ph->step_ns;
    while (sc->step_j + 1 < ph->n_steps && t >= (double)(sc->step_j + 1) * S) {
        sc->step_c += ph->steps[sc->step_j] * S / NS_PER_S;
        sc->step_j++;
    }
    while (sc->step_j > 0 && t < (double)sc->step_j * S) {
        sc->step_j--;
        sc->step_c -= ph->steps[sc->step_j] * S / NS_PER_S;
    }
}

/* Steps: moves the hint to the step in which L reaches x. */
static void step_seek_l(schedule *sc, const cfg_load_phase *ph, double x)
{
    double S = (double)ph->step_ns;
    while (sc->step_j + 1 < ph->n_steps && x >= sc->step_c + ph->steps[sc->step_j] * S / NS_PER_S) {
        sc->step_c += ph->steps[sc->step_j] * S / NS_PER_S;
        sc->step_j++;
    }
    while (sc->step_j > 0 && x < sc->step_c) {
        sc->step_j--;
        sc->step_c -= ph->steps[sc->step_j] * S / NS_PER_S;
    }
}

static void sine_params(const cfg_load_phase *ph, double *w, double *phi)
{
    *w = 2 * M_PI / (double)ph->period_ns;
    *phi = ph->shape == CFG_SHAPE_DIURNAL ? -M_PI / 2 : 0;
}

static double sine_l(const cfg_load_phase *ph, double t)
{
    double w, phi;
    sine_params(ph, &w, &phi);
    return ph->rate / NS_PER_S * (t + ph->amplitude / w * (cos(phi) - cos(w * t + phi)));
}

/* L of the base rate (no bursts) over [0, t], in records; t may be INFINITY. */
static double base_l(schedule *sc, const cfg_load_phase *ph, double t)
{
    switch (ph->shape) {
    case CFG_SHAPE_RAMP: {
        double d = (double)ph->duration_ns, a = ph->from, b = ph->to;
        if (t <= d)
            return (a * t + (b - a) * t * t / (2 * d)) / NS_PER_S;
        double at_d = (a + b) * d / (2 * NS_PER_S);
        return b > 0 ? at_d + b * (t - d) / NS_PER_S : at_d;
    }
    case CFG_SHAPE_STEPS: {
        step_seek_t(sc, ph, t);
        double r = ph->steps[sc->step_j];
        if (r == 0)
            return sc->step_c;
        return sc->step_c + r * (t - (double)sc->step_j * (double)ph->step_ns) / NS_PER_S;
    }
    case CFG_SHAPE_SINE:
    case CFG_SHAPE_DIURNAL: return isinf(t) ? INFINITY : sine_l(ph, t);
    default: /* constant, poisson, bursts: a constant base (maybe 0) */
        return ph->rate > 0 ? ph->rate * t / NS_PER_S : 0;
    }
}

/* The time t with base_l(t) = x (INFINITY when the base never gets there). */
static double base_inv(schedule *sc, const cfg_load_phase *ph, double x)
{
    if (x <= 0)
        return 0;
    switch (ph->shape) {
    case CFG_SHAPE_RAMP: {
        double d = (double)ph->duration_ns, a = ph->from, b = ph->to;
        double at_d = (a + b) * d / (2 * NS_PER_S);
        if (x > at_d)
            return b > 0 ? d + (x - at_d) * NS_PER_S / b : INFINITY;
        /* Solves a t + c t^2 / 2 = X in the form that is stable for c of
         * either sign and for c = 0. */
        double X = x * NS_PER_S, c = (b - a) / d;
        double disc = a * a + 2 * c * X;
        return 2 * X / (a + sqrt(disc > 0 ? disc : 0));
    }
    case CFG_SHAPE_STEPS: {
        step_seek_l(sc, ph, x);
        double r = ph->steps[sc->step_j];
        if (!(r > 0))
            return INFINITY;
        return (double)sc->step_j * (double)ph->step_ns + (x - sc->step_c) * NS_PER_S / r;
    }
    case CFG_SHAPE_SINE:
    case CFG_SHAPE_DIURNAL: {
        /* Newton's method inside a bracket that always holds the root:
         * L(t) is within R * 2A/w of R * t, so the mean-rate guess is off by
         * at most 2A/w, and the last solution is a lower bound when x has
         * grown since (the usual case). Newton starts from the last solution
         * plus the gap at its slope, which is within a few ns of the root:
         * it converges in two or three steps. Bisect whenever Newton would
         * leave the bracket (near the troughs of amplitude 1, where r ~ 0). */
        double w, phi;
        sine_params(ph, &w, &phi);
        double guess = x * NS_PER_S / ph->rate, span = 2 * ph->amplitude / w + 1;
        double lo = guess - span > 0 ? guess - span : 0, hi = guess + span, t = guess;
        if (sc->sine_x > 0 && sc->sine_x <= x && sc->sine_t >= lo && sc->sine_t < hi) {
            lo = sc->sine_t;
            double slope = ph->rate / NS_PER_S * (1 + ph->amplitude * sin(w * lo + phi));
            t = slope > 0 ? lo + (x - sc->sine_x) / slope : 0.5 * (lo + hi);
            if (!(t >= lo && t < hi))
                t = 0.5 * (lo + hi);
        }
        for (int it = 0; it < 200; it++) {
            double f = sine_l(ph, t) - x;
            if (f > 0)
                hi = t;
            else
                lo = t;
            double slope = ph->rate / NS_PER_S * (1 + ph->amplitude * sin(w * t + phi));
            double nt = slope > 0 ? t - f / slope : NAN;
            if (!(nt > lo && nt < hi))
                nt = 0.5 * (lo + hi);
            double tol = t * 1e-15 > 0.05 ? t * 1e-15 : 0.05;
            if (fabs(nt - t) < tol || hi - lo < tol) {
                t = nt;
                break;
            }
            t = nt;
        }
        sc->sine_t = t;
        sc->sine_x = x;
        return t;
    }
    default: return ph->rate > 0 ? x * NS_PER_S / ph->rate : INFINITY;
    }
}

/* ------------------------------------------------------- burst segments */

/* A burst or gap length with the given mean: fixed, or Pareto with shape
 * alpha and that mean (scale mean * (alpha - 1) / alpha), capped at 1000
 * times the mean so that one draw cannot stall a run for years. */
static double draw_len(schedule *sc, const cfg_load_phase *ph, uint64_t mean_ns)
{
    double mean = (double)mean_ns;
    if (ph->burst_dist != CFG_DIST_PARETO)
        return mean;
    double a = ph->alpha, xm = mean * (a - 1) / a;
    double len = xm * pow(1.0 - unit(&sc->rng_segment), -1.0 / a);
    return len < 1000 * mean ? len : 1000 * mean;
}

/* Records the current segment [seg_a, seg_b) holds under its rate. */
static double seg_amount(schedule *sc, const cfg_load_phase *ph)
{
    if (sc->in_burst && ph->burst_rate > 0)
        return ph->burst_rate * (sc->seg_b - sc->seg_a) / NS_PER_S;
    double m = sc->in_burst ? ph->burst_factor : 1;
    double d = base_l(sc, ph, sc->seg_b) - sc->base_a;
    return m > 0 && d > 0 ? m * d : 0;
}

static void next_segment(schedule *sc, const cfg_load_phase *ph)
{
    sc->seg_a = sc->seg_b;
    sc->lam_a = sc->lam_b;
    sc->base_a = base_l(sc, ph, sc->seg_a);
    sc->in_burst ^= 1;
    sc->seg_b = sc->seg_a + draw_len(sc, ph, sc->in_burst ? ph->burst_ns : ph->gap_ns);
    sc->lam_b = sc->lam_a + seg_amount(sc, ph);
}

/* The phase-relative time at which L reaches sc->u; INFINITY if never
 * within `limit`. */
static double position(schedule *sc, const cfg_load_phase *ph, double limit)
{
    for (;;) {
        if (sc->u < sc->lam_b) {
            double x = sc->u - sc->lam_a;
            if (sc->in_burst && ph->burst_rate > 0)
                return sc->seg_a + x * NS_PER_S / ph->burst_rate;
            double m = sc->in_burst ? ph->burst_factor : 1;
            double t = base_inv(sc, ph, sc->base_a + x / m);
            /* Rounding may put t a hair outside the segment. */
            return t < sc->seg_a ? sc->seg_a : t > sc->seg_b ? sc->seg_b : t;
        }
        if (!(sc->seg_b < limit))
            return INFINITY;
        next_segment(sc, ph);
    }
}

/* ------------------------------------------------------------- phases */

static void enter(schedule *sc, size_t idx, uint64_t start_ns)
{
    const cfg_load_phase *ph = &sc->phases[idx];
    sc->phase = idx;
    sc->start_ns = start_ns;
    sc->k = 0;
    if (ph->duration_ns)
        sc->len_ns = ph->duration_ns;
    else if (ph->shape == CFG_SHAPE_REPLAY && ph->n_replay)
        sc->len_ns = ph->replay_ns[ph->n_replay - 1] + 1;
    else
        sc->len_ns = UINT64_MAX;
    sc->rng_arrival = stream_seed(sc->seed, idx, 0);
    sc->rng_segment = stream_seed(sc->seed, idx, 1);
    sc->step_j = 0;
    sc->step_c = 0;
    sc->sine_t = sc->sine_x = 0;
    sc->u = ph->arrival == CFG_ARRIVAL_POISSON ? expo(&sc->rng_arrival) : 0;
    sc->seg_a = sc->lam_a = sc->base_a = 0;
    sc->in_burst = 0;
    if (ph->shape == CFG_SHAPE_MAX || ph->shape == CFG_SHAPE_REPLAY) {
        sc->seg_b = sc->lam_b = INFINITY;
        return;
    }
    sc->seg_b = has_bursts(ph) ? draw_len(sc, ph, ph->gap_ns) : INFINITY;
    sc->lam_b = seg_amount(sc, ph);
}

/* Moves to the next phase at the end of the current one, or ends the load. */
static void next_phase(schedule *sc)
{
    if (sc->phase + 1 >= sc->n_phases || sc->len_ns == UINT64_MAX) {
        sc->done = 1;
        sc->next_ns = SCHEDULE_NEVER;
        return;
    }
    uint64_t end = sc->start_ns + sc->len_ns;
    enter(sc, sc->phase + 1, end < sc->start_ns ? UINT64_MAX - 1 : end);
}

/* Sets next_ns for the current position, moving past phases that hold no
 * further record. */
static void settle(schedule *sc)
{
    while (!sc->done) {
        const cfg_load_phase *ph = cur(sc);
        if (ph->shape == CFG_SHAPE_MAX) {
            sc->next_ns = sc->start_ns;
            return;
        }
        if (ph->shape == CFG_SHAPE_REPLAY) {
            if (sc->k < ph->n_replay && ph->replay_ns[sc->k] < sc->len_ns) {
                sc->next_ns = sc->start_ns + ph->replay_ns[sc->k];
                return;
            }
        } else {
            /* 1.8e19 ns: past it a time no longer fits in uint64_t. */
            double limit = sc->len_ns == UINT64_MAX ? 1.8e19 : (double)sc->len_ns;
            double t = position(sc, ph, limit);
            if (t < limit && (uint64_t)t < sc->len_ns) {
                sc->next_ns = sc->start_ns + (uint64_t)t;
                return;
            }
        }
        next_phase(sc);
    }
    sc->next_ns = SCHEDULE_NEVER;
}

/* Consumes the next record of a timed phase. */
static void take(schedule *sc)
{
    const cfg_load_phase *ph = cur(sc);
    sc->k++;
    sc->n_timed++;
    if (ph->shape != CFG_SHAPE_REPLAY)
        sc->u += ph->arrival == CFG_ARRIVAL_POISSON ? expo(&sc->rng_arrival) : 1.0;
    settle(sc);
}

void schedule_init(schedule *sc, const cfg_load_phase *phases, size_t n, uint64_t seed,
                   uint64_t start_ns)
{
    *sc = (schedule){.phases = phases, .n_phases = n, .seed = seed};
    if (n) {
        enter(sc, 0, start_ns);
    } else {
        sc->start_ns = start_ns;
        sc->len_ns = UINT64_MAX;
    }
    settle(sc);
}

int schedule_is_max(const schedule *sc)
{
    return !sc->done && cur(sc)->shape == CFG_SHAPE_MAX;
}

uint64_t schedule_peek(schedule *sc, uint64_t now)
{
    /* A max phase has no records of its own to end it: it ends by time. */
    while (schedule_is_max(sc) && sc->len_ns != UINT64_MAX && now >= sc->start_ns &&
           now - sc->start_ns >= sc->len_ns) {
        next_phase(sc);
        settle(sc);
    }
    if (sc->done)
        return SCHEDULE_NEVER;
    if (schedule_is_max(sc))
        return now > sc->start_ns ? now : sc->start_ns;
    return sc->next_ns;
}

uint32_t schedule_fill(schedule *sc, uint64_t now, uint64_t *times, uint32_t cap)
{
    uint32_t n = 0;
    while (n < cap) {
        uint64_t t = schedule_peek(sc, now);
        if (t == SCHEDULE_NEVER || t > now)
            break;
        if (schedule_is_max(sc)) {
            sc->n_max += cap - n;
            while (n < cap)
                times[n++] = now;
            break;
        }
        times[n++] = t;
        take(sc);
    }
    return n;
}

uint64_t schedule_skip(schedule *sc, uint64_t now, uint64_t max)
{
    uint64_t n = 0;
    while (n < max) {
        uint64_t t = schedule_peek(sc, now);
        if (t == SCHEDULE_NEVER || t > now || schedule_is_max(sc))
            break;
        take(sc);
        n++;
    }
    return n;
}
