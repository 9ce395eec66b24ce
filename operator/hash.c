/*
 * hash.c - 64-bit FNV-1a (see hash.h for why this hash).
 */
#include "hash.h"

#include <stdio.h>
#include <string.h>

uint64_t hash_fnv1a64(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL; /* offset basis */
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL; /* FNV prime */
    }
    return h;
}

void hash_hex(const char *s, char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)hash_fnv1a64(s, strlen(s)));
}
