/*
 * plugins/common/fmt.h - allocation-free number formatting for generators
 * (private to plugins/).
 *
 * Generators must never be the bottleneck, so they print numbers by hand:
 * two digits per division, no locale, no snprintf. Every generator
 * (gen_market, gen_iot, gen_logs) uses these.
 */
#ifndef OBS_PLUGINS_FMT_H
#define OBS_PLUGINS_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static const char fmt_digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                         "25262728293031323334353637383940414243444546474849"
                                         "50515253545556575859606162636465666768697071727374"
                                         "75767778798081828384858687888990919293949596979899";

/* Writes `v` in decimal at dst (no terminator, at most 20 bytes); returns
 * the length. */
static inline size_t fmt_u64(char *dst, uint64_t v)
{
    char tmp[20];
    char *p = tmp + sizeof tmp;
    while (v >= 100) {
        uint64_t q = v / 100;
        p -= 2;
        memcpy(p, fmt_digit_pairs + 2 * (v - q * 100), 2);
        v = q;
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, fmt_digit_pairs + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    size_t n = (size_t)(tmp + sizeof tmp - p);
    memcpy(dst, p, n);
    return n;
}

/* Writes a fixed-point value v / 100 with exactly two decimals ("-3.05");
 * returns the length (at most 22). */
static inline size_t fmt_e2(char *dst, int64_t v)
{
    size_t n = 0;
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    if (v < 0)
        dst[n++] = '-';
    n += fmt_u64(dst + n, a / 100);
    dst[n++] = '.';
    memcpy(dst + n, fmt_digit_pairs + 2 * (a % 100), 2);
    return n + 2;
}

/* Appends a string literal (no terminator) and advances p. */
#define FMT_PUT(p, lit)                                                                            \
    do {                                                                                           \
        memcpy((p), (lit), sizeof(lit) - 1);                                                       \
        (p) += sizeof(lit) - 1;                                                                    \
    } while (0)

/* FNV-1a, 32 bits: the check word of the binary IoT reading. */
static inline uint32_t fmt_fnv1a32(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

#endif /* OBS_PLUGINS_FMT_H */
