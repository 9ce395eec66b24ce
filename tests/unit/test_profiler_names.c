/*
 * test_profiler_names.c - how the profiler names functions: prof_demangle
 * on C++, Rust legacy and Rust v0 symbols as the libiberty of this build
 * demangles them (and what it must leave alone), and the mangled symbol
 * kept beside the readable name in a profile: pprof's Function.system_name,
 * the storage blob (version 2), and version 1 blobs written before names
 * were demangled, which still decode. A profile of a real Rust stage is
 * taken by tests/rust/test_rust_profile.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "demangle.h"
#include "obs_profiler.h"
#include "observatory/stage.h"
#include "profile.h"

typedef struct sample {
    const char *sym, *want; /* want NULL: not demangled */
} sample;

static const sample samples[] = {
    /* C++ (Itanium ABI): parameters and qualifiers kept, they tell
     * overloads apart; a compiler's clone suffix is named. */
    {"_ZN3foo3barEv", "foo::bar()"},
    {"_ZNSt6vectorIiSaIiEE9push_backERKi",
     "std::vector<int, std::allocator<int> >::push_back(int const&)"},
    {"_ZNK3Obs5Stage4nameB5cxx11Ev", "Obs::Stage::name[abi:cxx11]() const"},
    {"_Z4workPKcm.cold", "work(char const*, unsigned long) [clone .cold]"},
    /* Rust legacy: the trailing ::h<16 hex> hash is left out, $-escapes
     * are decoded, LLVM's suffixes dropped. */
    {"_ZN9xf_rupper10up_process17h0123456789abcdefE", "xf_rupper::up_process"},
    {"_ZN13xf_json_serde4tick5parse17h5f1c0a9e3b2d4c6aE.llvm.1234567",
     "xf_json_serde::tick::parse"},
    {"_ZN5alloc7raw_vec19RawVec$LT$T$C$A$GT$7reserve21do_reserve_and_handle17h0123456789abcdefE",
     "alloc::raw_vec::RawVec<T,A>::reserve::do_reserve_and_handle"},
    {"_ZN4core3ptr85drop_in_place$LT$std..rt..lang_start$LT$$LP$$RP$$GT$..$u7b$$u7b$closure$u7d$$"
     "u7d$"
     "$GT$17h1e5e8f1a1f1e2c3dE",
     "core::ptr::drop_in_place<std::rt::lang_start<()>::{{closure}}>"},
    /* Rust v0: crate disambiguators left out, generics and impls spelled. */
    {"_RNvCs1234_7mycrate3foo", "mycrate::foo"},
    {"_RNvNtCs5bGpLp6b1Q8_13xf_json_serde4tick5parse", "xf_json_serde::tick::parse"},
    {"_RNvMNtCs9ltgdHTiPiY_4core3ptrINtB2_7NonNullpE6as_ptrCs4Fqb7SeY8oA_5alloc",
     "<core::ptr::NonNull<_>>::as_ptr"},
    {"_RINvNtCs4Fqb7SeY8oA_5alloc5boxed3fooINtNtCskRLgSi4TGgx_4core6option6OptionmEEB4_",
     "alloc::boxed::foo::<core::option::Option<u32>>"},
    /* Not mangled, or not validly: left alone. */
    {"main", NULL},
    {"_start", NULL},
    {"tp_burn_heavy", NULL},
    {"[libc.so.6]", NULL},
    {"_Zfoo", NULL},
    {"_R", NULL},
    {"", NULL},
};

static void test_demangle(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char *got = prof_demangle(samples[i].sym);
        if (!samples[i].want) {
            if (got)
                fail_msg("%s: demangled to '%s', expected to be left alone", samples[i].sym, got);
            continue;
        }
        if (!got)
            fail_msg("%s: not demangled, expected '%s'", samples[i].sym, samples[i].want);
        if (strcmp(got, samples[i].want) != 0)
            fail_msg("%s: '%s', expected '%s'", samples[i].sym, got, samples[i].want);
        free(got);
    }
    assert_null(prof_demangle(NULL));
}

/* A profile of one stack, root "main" and leaf the Rust function of module
 * "xf_rupper" under its readable name, with its mangled symbol. */
static obs_prof_profile *rust_profile(void)
{
    obs_prof_profile *p = prof_profile_new();
    assert_non_null(p);
    uint32_t f[2], tag;
    assert_int_equal(prof_profile_frame(p, "main", "hostd", NULL, &f[0]), 0);
    assert_int_equal(prof_profile_frame(p, "xf_rupper:xf_rupper::up_process", "xf_rupper",
                                        "_ZN9xf_rupper10up_process17h0123456789abcdefE", &f[1]),
                     0);
    obs_prof_label l = {"stage", "up"};
    assert_int_equal(prof_profile_tag(p, &l, 1, &tag), 0);
    assert_int_equal(prof_profile_add(p, f, 2, tag, 7, 7), 0);
    return p;
}

static void test_system_name_kept(void **state)
{
    (void)state;
    obs_prof_profile *p = rust_profile();
    char *s;
    size_t len;
    /* Flame graphs and folded stacks read the demangled name only. */
    assert_int_equal(obs_prof_render_folded(p, 0, &s, &len), 0);
    assert_string_equal(s, "main;xf_rupper:xf_rupper::up_process 7\n");
    free(s);
    assert_int_equal(obs_prof_render_svg(p, "t", 0, &s, &len), 0);
    assert_non_null(strstr(s, "xf_rupper:xf_rupper::up_process ("));
    assert_null(strstr(s, "_ZN9xf_rupper"));
    free(s);
    /* pprof has both: Function.name readable, Function.system_name mangled. */
    uint8_t *pb;
    assert_int_equal(obs_prof_render_pprof(p, &pb, &len), 0);
    static const char shown[] = "xf_rupper:xf_rupper::up_process";
    static const char mangled[] = "_ZN9xf_rupper10up_process17h0123456789abcdefE";
    assert_non_null(memmem(pb, len, shown, strlen(shown)));
    assert_non_null(memmem(pb, len, mangled, strlen(mangled)));
    free(pb);

    /* The blob keeps the system name across a round trip. */
    uint8_t *blob;
    size_t blen;
    assert_int_equal(obs_prof_profile_encode(p, &blob, &blen), 0);
    assert_memory_equal(blob, "OBSPROF\2", 8);
    obs_prof_profile *d;
    assert_int_equal(obs_prof_profile_decode(blob, blen, &d), 0);
    free(blob);
    assert_int_equal(d->frames.n, 2);
    int found = 0;
    for (uint32_t i = 0; i < d->frames.n; i++) {
        const prof_frame *fr = prof_profile_frame_get(d, i);
        const char *name = prof_profile_strget(d, fr->name),
                   *sys = prof_profile_strget(d, fr->system);
        if (strcmp(name, "main") == 0)
            assert_string_equal(sys, "main");
        else {
            assert_string_equal(sys, "_ZN9xf_rupper10up_process17h0123456789abcdefE");
            found = 1;
        }
    }
    assert_true(found);
    obs_prof_profile_free(d);
    obs_prof_profile_free(p);
}

/* A version 1 blob, as stored before frames had a system name: one frame
 * "m:f" of module "m", tag stage=s, weight 5 in 2 samples. */
static const uint8_t blob_v1[] = {
    'O', 'B', 'S', 'P', 'R', 'O', 'F', 1, 10,  20,  99,  0,   2,   5, 0, /* start end hz unwinder
                                                                            n_samples weight dropped
                                                                          */
    4,   3,   'm', ':', 'f', 1,   'm', 5, 's', 't', 'a', 'g', 'e', 1, 's', 1,
    0,   1,                /* frames: {name 0, module 1} */
    1,   1,   2,   3,      /* tags: {stage=s} */
    1,   1,   0,           /* stacks: {[0]} */
    1,   0,   0,   5,   2, /* entries: {stack 0, tag 0, weight 5, count 2} */
};

static void test_blob_v1(void **state)
{
    (void)state;
    obs_prof_profile *d;
    assert_int_equal(obs_prof_profile_decode(blob_v1, sizeof blob_v1, &d), 0);
    char *s;
    size_t len;
    assert_int_equal(obs_prof_render_folded(d, OBS_PROF_TAG_ROOT, &s, &len), 0);
    assert_string_equal(s, "[stage=s];m:f 5\n");
    free(s);
    const prof_frame *fr = prof_profile_frame_get(d, 0);
    assert_string_equal(prof_profile_strget(d, fr->system), "m:f");
    obs_prof_profile_free(d);
    /* Any other version is refused, and so is a v1 blob cut short. */
    uint8_t bad[sizeof blob_v1];
    memcpy(bad, blob_v1, sizeof bad);
    bad[7] = 3;
    assert_int_equal(obs_prof_profile_decode(bad, sizeof bad, &d), OBS_EINVAL);
    for (size_t cut = 0; cut < sizeof blob_v1; cut++)
        assert_int_equal(obs_prof_profile_decode(blob_v1, cut, &d), OBS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demangle),
        cmocka_unit_test(test_system_name_kept),
        cmocka_unit_test(test_blob_v1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
