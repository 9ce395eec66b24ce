/*
 * schedule.h - the generator's intended-time schedule: load phases in,
 * intended send times out.
 *
 * A pure, seeded module: no clock reads, no allocation, no I/O. The caller
 * passes the current time; the same (seed, phases, start time) always gives
 * the same sequence of intended times, whatever the calls look like (batch
 * sizes, how far behind the caller runs). A schedule is a plain value: copy
 * it to look ahead without consuming (the phases it points to are only read).
 *
 * How a phase becomes times (docs/load.md has the user's view). A timed phase
 * has a rate function r(t) and an arrival process. r(t) is the shape's base
 * rate (constant, linear ramp, steps, sine, diurnal), optionally with on/off
 * bursts laid over it: the phase's time is cut into alternating gap and burst
 * segments (lengths fixed or Pareto distributed), and within a burst the rate
 * is the base times burst_factor, or burst_rate. Let L(t) = integral of r from
 * the phase start. Record k is intended at the time t_k with L(t_k) = u_k:
 * u_k = k for uniform arrivals (evenly spaced in "rate time"), and u_k a sum
 * of k+1 independent Exp(1) draws for Poisson arrivals. By the time-rescaling
 * theorem that is exactly an inhomogeneous Poisson process with intensity
 * r(t) - no thinning, so no rejected draws and no upper bound on r needed,
 * and the number of random draws per record is fixed (one), which keeps the
 * stream reproducible. L is inverted in closed form (constant, ramp, steps,
 * bursts) or by safeguarded Newton iteration (sine, diurnal).
 *
 * A phase ends at its duration; the next starts exactly then, not when the
 * caller notices, so intended times stay contiguous even when the caller is
 * late. The load ends (schedule_peek returns SCHEDULE_NEVER) after the last
 * phase's duration, after the last timestamp of a replay that is the last
 * phase, or when the last phase's rate stays 0 forever; a last phase without
 * a duration otherwise runs for ever. A `max` phase has no intended times:
 * its records are intended "now", the time the caller passes.
 */
#ifndef OBS_SCHEDULE_H
#define OBS_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* schedule_peek(): no record will ever be scheduled again. */
#define SCHEDULE_NEVER UINT64_MAX

typedef struct schedule {
    const cfg_load_phase *phases; /* borrowed: must outlive the schedule */
    size_t n_phases;
    uint64_t seed;
    size_t phase;                      /* index of the current phase */
    int done;                          /* the load has ended */
    uint64_t start_ns;                 /* the current phase's start (absolute) */
    uint64_t len_ns;                   /* its length; UINT64_MAX: open */
    uint64_t next_ns;                  /* intended time of the next record (timed phases) */
    uint64_t k;                        /* records taken from this phase */
    uint64_t rng_arrival, rng_segment; /* splitmix64 states */
    double u;                          /* L-space position of the next record */
    /* The current burst/gap segment, in ns from the phase start, with L at
     * its ends and at its start under the base rate. */
    double seg_a, seg_b, lam_a, lam_b, base_a;
    int in_burst;
    size_t step_j;         /* steps: index of the step holding the last position */
    double step_c;         /* steps: L of the base at the start of step_j */
    double sine_t, sine_x; /* sine, diurnal: the last inversion, the next one's warm start */
    uint64_t n_timed;      /* records taken from timed phases, all phases */
    uint64_t n_max;        /* records taken from max phases */
} schedule;

/* Starts a schedule of `n` phases (borrowed) at `start_ns`. n == 0 means one
 * max phase. The seed is mixed internally (the run's seed may be given). */
void schedule_init(schedule *sc, const cfg_load_phase *phases, size_t n, uint64_t seed,
                   uint64_t start_ns);

/* The intended time of the next record, moving past phases that ended by
 * `now`: `now` itself in a max phase that has begun, SCHEDULE_NEVER when the
 * load has ended. May be earlier than `now` (the caller is behind). */
uint64_t schedule_peek(schedule *sc, uint64_t now);

/* Whether the current phase is a max phase. */
int schedule_is_max(const schedule *sc);

/* Takes up to `cap` records intended at or before `now`, in order, writing
 * their intended times to times[0..n) and returning n. In a max phase every
 * record is intended at `now` and `cap` are taken (until the phase ends). */
uint32_t schedule_fill(schedule *sc, uint64_t now, uint64_t *times, uint32_t cap);

/* Advances over up to `max` records of timed phases intended at or before
 * `now` without storing them (stops at a max phase that has not ended);
 * returns how many. Used to count what is due when the generator is behind. */
uint64_t schedule_skip(schedule *sc, uint64_t now, uint64_t max);

#endif /* OBS_SCHEDULE_H */
