/*
 * modules.h - the module registry: every loaded object the profiler can
 * attribute addresses to (the executable, system libraries, the host's
 * plugins), with its ELF function symbols. The collector turns sampled
 * addresses into locations (module id + offset) while a module is live,
 * and names them later through the same registry, so a retired module
 * keeps naming its samples correctly.
 *
 * The registry knows nothing about the sampler or the collector. The one
 * thing it must trigger above itself, resolving the addresses sampled so
 * far before the set of live modules changes, is a hook passed to
 * prof_modules_init by the lifecycle (lifecycle.c passes the collector's
 * drain).
 *
 * Layer: low, beside the sampler state. This module may include: util,
 * demangle.
 */
#ifndef OBS_PROF_MODULES_H
#define OBS_PROF_MODULES_H

#include <stdint.h>

/* A location: module id in the top 16 bits, offset (address - bias) below;
 * module 0 is "no module" with the raw address. */
#define PROF_LOC(mod, off) (((uint64_t)(mod) << 48) | ((uint64_t)(off) & 0xffffffffffffULL))
#define PROF_LOC_MOD(loc) ((uint32_t)((loc) >> 48))
#define PROF_LOC_OFF(loc) ((loc) & 0xffffffffffffULL)

/* Called by obs_prof_module_add and obs_prof_module_retire before they
 * change the set of live modules, without the registry lock held: addresses
 * sampled until then must be located against the modules as they were. */
typedef void (*prof_modules_change_fn)(void);

/* Opens the registry with what dl_iterate_phdr knows, and remembers
 * before_change (may be NULL) until prof_modules_fini. 0 or OBS_ENOMEM. */
int prof_modules_init(prof_modules_change_fn before_change);
/* Closes the registry and frees every module (strings from
 * prof_modules_resolve die here). */
void prof_modules_fini(void);
/* Maps an address to a location (takes the registry lock; rescans at most
 * once a second when the address is in no known module). */
uint64_t prof_modules_locate(uintptr_t addr);
/* Resolves a location: *module is the module's label ("tp_burn",
 * "libc.so.6"), *prefix whether frames name it ("tp_burn:burn_heavy": for
 * modules added by obs_prof_module_add) or not (the executable and system
 * libraries found by the scan), *func the function as people read it (C++
 * and Rust names demangled, demangle.h) and *symbol as the ELF symbol table
 * spells it (mangled); both "[module]" when no symbol covers the address.
 * Demangles, so never call it from the signal handler. Strings live until
 * prof_modules_fini. */
void prof_modules_resolve(uint64_t loc, const char **module, int *prefix, const char **func,
                          const char **symbol);
uint64_t prof_modules_count(void);
/* The loader's (ld.so) mapped range, for the signal handler. */
void prof_modules_loader_range(uintptr_t *lo, uintptr_t *hi);

#endif /* OBS_PROF_MODULES_H */
