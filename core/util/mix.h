/*
 * mix.h - splitmix64's finaliser: a cheap, well-mixed 64-bit hash of a
 * counter, for schedules that must be random yet reproducible from a seed
 * (the order of a duet's batch pair, an interleaved experiment's rounds).
 */
#ifndef OBS_UTIL_MIX_H
#define OBS_UTIL_MIX_H

#include <stdint.h>

static inline uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

#endif /* OBS_UTIL_MIX_H */
