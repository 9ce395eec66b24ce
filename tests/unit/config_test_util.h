/*
 * config_test_util.h - what the config module's unit tests share
 * (test_config.c, test_config_errors.c, test_config_params.c): a
 * configuration loaded from a string named "t.yaml" or the test failed with
 * the loader's message, a load expected to fail with OBS_ECONFIG and every
 * given message, and the smallest valid list of stages. Header-only, private
 * to tests/unit/. Include after cmocka.h.
 */
#ifndef OBS_CONFIG_TEST_UTIL_H
#define OBS_CONFIG_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include "config/config.h"

/* Loads `text` as "t.yaml" or fails the test, printing the loader's errors.
 * The caller owns the result and frees it with config_free. */
static inline obs_config *load_ok(const char *text)
{
    char err[4096];
    obs_config *cfg = NULL;
    int rc = config_load_string("t.yaml", text, &cfg, err, sizeof err);
    if (rc != 0)
        print_error("unexpected error %d:\n%s\n", rc, err);
    assert_int_equal(rc, 0);
    assert_non_null(cfg);
    return cfg;
}

/* Loads `text`, expects OBS_ECONFIG and every one of the NULL-terminated
 * strings in the error text. */
static inline void expect_errors(const char *text, ...)
{
    char err[8192];
    obs_config *cfg = (obs_config *)1;
    int rc = config_load_string("t.yaml", text, &cfg, err, sizeof err);
    if (rc != OBS_ECONFIG)
        print_error("expected OBS_ECONFIG, got %d; err:\n%s\n", rc, err);
    assert_int_equal(rc, OBS_ECONFIG);
    assert_null(cfg);
    va_list ap;
    va_start(ap, text);
    for (const char *want; (want = va_arg(ap, const char *));) {
        if (!strstr(err, want))
            print_error("missing \"%s\" in:\n%s\n", want, err);
        assert_non_null(strstr(err, want));
    }
    va_end(ap);
}

#define EXPECT(text, ...) expect_errors(text, __VA_ARGS__, (const char *)NULL)

/* The smallest valid pipeline, to which tests prepend top-level keys. */
#define STAGES                                                                                     \
    "stages:\n"                                                                                    \
    "  - name: gen\n"                                                                              \
    "    plugin: gen_static\n"                                                                     \
    "  - name: sink\n"                                                                             \
    "    plugin: sink_null\n"

#endif /* OBS_CONFIG_TEST_UTIL_H */
