/*
 * demangle.h - readable names for mangled symbols: C++ (Itanium ABI) and
 * Rust, both the legacy scheme (_ZN...17h<hash>E) and v0 (_R...). The
 * module registry calls it when it names a sampled address, never from the
 * signal handler (it allocates).
 *
 * Layer: the lowest, beside util. This module may include: nothing of the
 * profiler.
 */
#ifndef OBS_PROF_DEMANGLE_H
#define OBS_PROF_DEMANGLE_H

/* The readable form of symbol `sym` ("xf_json_serde::tick::parse",
 * "std::vector<int, std::allocator<int> >::push_back(int const&)"), with a
 * Rust legacy symbol's "::h<16 hex digits>" hash left out, and a Rust v0
 * symbol's crate disambiguators; NULL when `sym`
 * is not a mangled name this understands (a C function, "[module]") or
 * memory ran out. The caller owns the result and frees it with free(). Not
 * async-signal-safe. */
char *prof_demangle(const char *sym);

#endif /* OBS_PROF_DEMANGLE_H */
