/*
 * plugin_test_util.h - what the plugin loader's unit tests share
 * (test_plugin.c, test_plugin_paths.c, test_plugin_lifecycle.c): the
 * canonical test plugin directory and a scratch directory, set up by main
 * and removed at exit; plugin_open for a stage with the module checked
 * against the return code; formatting that fails the test instead of
 * truncating; and a substring assertion that prints both strings.
 * Header-only, private to tests/unit/. Include after cmocka.h.
 */
#ifndef OBS_PLUGIN_TEST_UTIL_H
#define OBS_PLUGIN_TEST_UTIL_H

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/plugin.h"

/* Canonical OBS_TEST_PLUGIN_DIR, and a scratch directory for path tests. */
static char plugin_dir[PATH_MAX];
static char tmp_dir[PATH_MAX];

/* snprintf that fails the test instead of truncating. */
static inline void fmt(char *buf, size_t len, const char *format, ...) OBS_PRINTF(3, 4);

static inline void fmt(char *buf, size_t len, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(buf, len, format, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len)
        fail_msg("formatting \"%s\": %d bytes do not fit in %zu", format, n, len);
}

static inline const obs_module *open_in(const char *const *dirs, size_t n_dirs, const char *stage,
                                        const char *plugin, const char *version, obs_kind kind,
                                        int *rc, char *err, size_t errlen)
{
    const obs_module *m = NULL;
    plugin_request req = {.stage_name = stage,
                          .plugin = plugin,
                          .version = version,
                          .kind = kind,
                          .dirs = dirs,
                          .n_dirs = n_dirs};
    *rc = plugin_open(&req, &m, err, errlen);
    if (*rc == 0)
        assert_non_null(m);
    else
        assert_null(m);
    return m;
}

/* Opens from the test plugin directory only; asserts success. */
static inline const obs_module *must_open(const char *plugin, const char *version, obs_kind kind)
{
    const char *dirs[] = {plugin_dir};
    char err[1024];
    int rc;
    const obs_module *m = open_in(dirs, 1, "st", plugin, version, kind, &rc, err, sizeof err);
    if (rc != 0)
        fail_msg("opening %s: %s (%s)", plugin, err, obs_strerror(rc));
    return m;
}

static inline void plugin_path(char *buf, size_t len, const char *file)
{
    fmt(buf, len, "%s/%s", plugin_dir, file);
}

static inline void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, haystack);
}

/* Points plugin_dir at the canonical OBS_TEST_PLUGIN_DIR and creates
 * tmp_dir under $TMPDIR (or /tmp) for program `prog`. Returns 0, or 1 after
 * a message on stderr. */
static inline int plugin_test_dirs_init(const char *prog)
{
    const char *dir = getenv("OBS_TEST_PLUGIN_DIR");
    if (!dir || !realpath(dir, plugin_dir)) {
        fprintf(stderr, "%s: set OBS_TEST_PLUGIN_DIR to the built tests/plugins\n", prog);
        return 1;
    }
    const char *t = getenv("TMPDIR");
    fmt(tmp_dir, sizeof tmp_dir, "%s/%s.XXXXXX", t && t[0] ? t : "/tmp", prog);
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    /* Canonical, so messages compare against what the loader prints. */
    char canon[PATH_MAX];
    if (!realpath(tmp_dir, canon))
        return 1;
    fmt(tmp_dir, sizeof tmp_dir, "%s", canon);
    return 0;
}

/* Removes tmp_dir and everything in it; returns system()'s status. */
static inline int plugin_test_dirs_remove(void)
{
    char cmd[PATH_MAX + 16];
    fmt(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    return system(cmd);
}

#endif /* OBS_PLUGIN_TEST_UTIL_H */
