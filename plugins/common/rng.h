/*
 * plugins/common/rng.h - the deterministic pseudo-random generator shared by
 * the stage plugins (private to plugins/, not part of the plugin ABI).
 *
 * Generators must produce the same bytes for the same seed on every run and
 * every machine, so they never use rand() (global state, libc-specific). This
 * is xoshiro256** (Blackman and Vigna), seeded by expanding the 64-bit
 * per-stage seed (obs_host.seed) with splitmix64, which also serves on its own
 * where one 64-bit stream of cheap numbers is enough. Everything is static
 * inline: one state word array per instance, no locks, no allocation.
 */
#ifndef OBS_PLUGINS_RNG_H
#define OBS_PLUGINS_RNG_H

#include <stdint.h>

typedef struct rng {
    uint64_t s[4];
} rng;

/* Advances a splitmix64 state and returns the next output. Any state value,
 * including 0, gives a full-period sequence. */
static inline uint64_t rng_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Seeds `r` from a 64-bit seed. xoshiro must not start from the all-zero
 * state; splitmix64 never yields four consecutive zeros, so it cannot. */
static inline void rng_seed(rng *r, uint64_t seed)
{
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = rng_splitmix64(&sm);
}

static inline uint64_t rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* Returns the next 64 uniformly distributed bits (xoshiro256**). */
static inline uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return result;
}

/* Returns a number in [0, n) for n >= 1 by multiply-shift (Lemire). The
 * bias, at most n / 2^64, is far below anything a benchmark stream notices,
 * and it avoids both division and a rejection loop. */
static inline uint64_t rng_below(rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* Returns a double uniformly distributed in [0, 1) with 53 random bits. */
static inline double rng_unit(rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1p-53;
}

#endif /* OBS_PLUGINS_RNG_H */
