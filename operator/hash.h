/*
 * hash.h - the config hash: 64-bit FNV-1a over the rendered pipeline.yaml.
 *
 * The hash is change detection for the operator's own output, not a security
 * boundary: it only has to differ when the rendered text differs, for the few
 * versions one StageSet goes through. FNV-1a is a dozen lines, has no
 * dependency (no libcrypto in a binary that otherwise needs none), and is the
 * hash Kubernetes itself uses for pod-template-hash. SHA-256 would buy
 * collision resistance against an adversary, which nobody here is.
 */
#ifndef OBSOP_HASH_H
#define OBSOP_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a 64 of len bytes at p. */
uint64_t hash_fnv1a64(const void *p, size_t len);

/* Writes the hash of a NUL-terminated string as 16 lower-case hex digits plus
 * NUL into out (which must hold 17 bytes). */
void hash_hex(const char *s, char out[17]);

#endif
