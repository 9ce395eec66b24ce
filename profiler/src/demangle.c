/*
 * demangle.c - readable names for mangled symbols, with libiberty's
 * cplus_demangle (Debian package libiberty-dev, the demangler of binutils
 * and GDB). Its automatic style tries Rust first (legacy Rust symbols are
 * valid C++ manglings too, so the order matters) and then the Itanium C++
 * ABI; it knows Rust v0 (_R...) as well, and the suffixes compilers add
 * to split or specialised copies (".cold", ".constprop.0", ".llvm.123").
 * DMGL_PARAMS and DMGL_ANSI keep C++ parameter lists and qualifiers, which
 * tell overloads apart. Without DMGL_VERBOSE libiberty leaves out the
 * "::h<16 hex digits>" hash that ends every legacy Rust symbol and the
 * crate disambiguators of v0 ones: they tell builds apart, not functions a
 * reader would, and the mangled symbol stays in the profile for tools that
 * need it (pprof's Function.system_name). tests/unit/test_profiler_names.c
 * pins this behaviour on the libiberty of the build.
 *
 * Interface and place in the whole: demangle.h.
 */
#include <stddef.h>

#include <libiberty/demangle.h>

#include "demangle.h"

char *prof_demangle(const char *sym)
{
    /* Both schemes start with an underscore and an upper-case letter
     * (_Z, _R); checking that first keeps plain C names cheap. */
    if (!sym || sym[0] != '_' || (sym[1] != 'Z' && sym[1] != 'R'))
        return NULL;
    return cplus_demangle(sym, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
}
