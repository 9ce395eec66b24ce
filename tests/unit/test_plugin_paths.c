/*
 * test_plugin_paths.c - where the plugin loader looks for a plugin, and
 * where it never looks.
 *
 * Resolution: a versioned file (<name>-<version>.so) is looked for in every
 * directory before a plain one, a plain file's version is checked against
 * the one the stage asks for, and a file found by plugin name must declare
 * that name. Containment: nothing outside the configured directories is ever
 * opened ("../", symlinks, absolute paths, names and versions that smuggle a
 * path), and plugin_dirs_resolve makes the configured directories absolute
 * and refuses missing ones. Copies of and symlinks to the test plugins
 * (OBS_TEST_PLUGIN_DIR) go into a scratch directory removed at exit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/plugin.h"
#include "plugin_test_util.h"

/* ------------------------------------------------------------- helpers */

static void copy_file(const char *from, const char *to)
{
    char buf[65536];
    FILE *in = fopen(from, "rb");
    FILE *out = fopen(to, "wb");
    size_t n;

    assert_non_null(in);
    assert_non_null(out);
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* ------------------------------------------------------- resolution */

static void test_versioned_resolution(void **state)
{
    char path[PATH_MAX];
    (void)state;

    const obs_module *any = must_open("tp_echo", NULL, OBS_KIND_TRANSFORM);
    assert_string_equal(any->desc->version, "1.0.0");
    plugin_path(path, sizeof path, "tp_echo.so");
    assert_string_equal(any->path, path);

    const obs_module *v2 = must_open("tp_echo", "2.0.0", OBS_KIND_TRANSFORM);
    assert_string_equal(v2->desc->version, "2.0.0");
    plugin_path(path, sizeof path, "tp_echo-2.0.0.so");
    assert_string_equal(v2->path, path);
    assert_ptr_not_equal(v2, any);
    assert_memory_not_equal(v2->build_id, any->build_id, 20);

    /* No tp_echo-1.0.0.so: falls back to tp_echo.so, which is 1.0.0. */
    assert_ptr_equal(must_open("tp_echo", "1.0.0", OBS_KIND_TRANSFORM), any);

    /* No 3.0.0 anywhere: tp_echo.so is found, its version refused. */
    const char *dirs[] = {plugin_dir};
    char err[2048];
    int rc;
    open_in(dirs, 1, "parse", "tp_echo", "3.0.0", OBS_KIND_TRANSFORM, &rc, err, sizeof err);
    assert_int_equal(rc, OBS_ENOENT);
    assert_contains(err, "stage 'parse': plugin 'tp_echo' (");
    assert_contains(err, "/tp_echo.so): version 1.0.0, stage asks for 3.0.0");

    /* Not there at all. */
    open_in(dirs, 1, "parse", "tp_nope", NULL, OBS_KIND_TRANSFORM, &rc, err, sizeof err);
    assert_int_equal(rc, OBS_ENOENT);
    assert_contains(err, "stage 'parse': plugin 'tp_nope': not found (no tp_nope.so in ");
    assert_contains(err, plugin_dir);
}

/* Versioned names are searched in every directory before plain names. */
static void test_versioned_before_plain_across_dirs(void **state)
{
    char d[PATH_MAX], f[PATH_MAX], src[PATH_MAX], err[1024];
    int rc;
    (void)state;

    fmt(d, sizeof d, "%s/first", tmp_dir);
    assert_int_equal(mkdir(d, 0755), 0);
    fmt(f, sizeof f, "%s/tp_echo.so", d);
    plugin_path(src, sizeof src, "tp_echo.so");
    copy_file(src, f);

    const char *dirs[] = {d, plugin_dir};
    const obs_module *m =
        open_in(dirs, 2, "st", "tp_echo", "2.0.0", OBS_KIND_TRANSFORM, &rc, err, sizeof err);
    assert_int_equal(rc, 0);
    plugin_path(src, sizeof src, "tp_echo-2.0.0.so");
    assert_string_equal(m->path, src);

    /* Without a version, the first directory's copy wins: a separate file,
     * so a separate module with the same build-id. */
    m = open_in(dirs, 2, "st", "tp_echo", NULL, OBS_KIND_TRANSFORM, &rc, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_string_equal(m->path, f);
    assert_memory_equal(m->build_id, must_open("tp_echo", NULL, 0)->build_id, 20);

    /* A file whose descriptor is another plugin than the name asked for. */
    fmt(f, sizeof f, "%s/tp_other.so", d);
    plugin_path(src, sizeof src, "tp_echo.so");
    copy_file(src, f);
    open_in(dirs, 2, "st", "tp_other", NULL, OBS_KIND_TRANSFORM, &rc, err, sizeof err);
    assert_int_equal(rc, OBS_EPLUGIN);
    assert_contains(err, "tp_other.so): file declares plugin name 'tp_echo'");
    /* Asked for by file name, the name is not checked. */
    open_in(dirs, 2, "st", "tp_other.so", NULL, OBS_KIND_TRANSFORM, &rc, err, sizeof err);
    assert_int_equal(rc, 0);
}

/* ------------------------------------------------------- containment */

static void test_path_escapes(void **state)
{
    char inside[PATH_MAX], outside[PATH_MAX], link[PATH_MAX], src[PATH_MAX], err[2048];
    char req[PATH_MAX];
    int rc;
    (void)state;

    fmt(inside, sizeof inside, "%s/inside", tmp_dir);
    assert_int_equal(mkdir(inside, 0755), 0);
    fmt(outside, sizeof outside, "%s/outside.so", tmp_dir);
    plugin_path(src, sizeof src, "tp_old_minor.so");
    copy_file(src, outside);
    const char *dirs[] = {inside};
    size_t before = plugin_module_count();

    /* "../" out of the directory. */
    open_in(dirs, 1, "esc", "../outside.so", NULL, OBS_KIND_TRANSFORM, &rc, err, sizeof err);
    assert_int_equal(rc, OBS_EINVAL);
    assert_contains(err, "stage 'esc': plugin '../outside.so': ");
    assert_contains(err, "outside the plugin directories");
    assert_contains(err, outside);

    /* An absolute path outside every directory. */
    open_in(dirs, 1, "esc", outside, NULL, OBS_KIND_TRANSFORM, &rc, err, sizeof err);
    assert_int_equal(rc, OBS_EINVAL);
    assert_contains(err, "outside the plugin directories");

    /* A symlink inside that points outside: by file name and by plugin
     * name, and it must not be skipped silently in favour of a later dir. */
    fmt(link, sizeof link, "%s/tp_old_minor.so", inside);
    assert_int_equal(symlink(outside, link), 0);
    open_in(dirs, 1, "esc", "tp_old_minor.so", NULL, OBS_KIND_TRANSFORM, &rc, err, sizeof err);
    assert_int_equal(rc, OBS_EINVAL);
    const char *two[] = {inside, plugin_dir};
    open_in(two, 2, "esc", "tp_old_minor", NULL, OBS_KIND_TRANSFORM, &rc, err, sizeof err);
    assert_int_equal(rc, OBS_EINVAL);
    assert_contains(err, "resolves to");

    /* Names and versions cannot smuggle a path. */
    open_in(dirs, 1, "esc", "..", NULL, OBS_KIND_TRANSFORM, &rc, err, sizeof err);
    assert_int_equal(rc, OBS_EINVAL);
    open_in(dirs, 1, "esc", "tp_echo", "../../x", OBS_KIND_TRANSFORM, &rc, err, sizeof err);
    assert_int_equal(rc, OBS_EINVAL);
    assert_contains(err, "invalid version");

    /* Directories must be absolute. */
    const char *rel[] = {"plugins"};
    open_in(rel, 1, "esc", "tp_echo", NULL, OBS_KIND_TRANSFORM, &rc, err, sizeof err);
    assert_int_equal(rc, OBS_EINVAL);
    assert_contains(err, "is not absolute");

    /* Nothing was opened by any of that. */
    assert_int_equal(plugin_module_count(), before);

    /* "../" that stays inside a configured directory is fine, and a
     * symlink into another configured directory resolves to the target's
     * canonical path, i.e. the very same module. */
    fmt(link, sizeof link, "%s/echo-link.so", inside);
    plugin_path(src, sizeof src, "tp_echo.so");
    assert_int_equal(symlink(src, link), 0);
    const obs_module *m =
        open_in(two, 2, "esc", "echo-link.so", NULL, OBS_KIND_TRANSFORM, &rc, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_ptr_equal(m, must_open("tp_echo", NULL, OBS_KIND_TRANSFORM));
    fmt(req, sizeof req, "../inside/echo-link.so");
    assert_ptr_equal(open_in(two, 2, "esc", req, NULL, OBS_KIND_TRANSFORM, &rc, err, sizeof err),
                     m);
}

static void test_dirs_resolve(void **state)
{
    char base[PATH_MAX], err[1024];
    char **out = NULL;
    (void)state;

    /* plugin_dir relative to its parent. */
    fmt(base, sizeof base, "%s", plugin_dir);
    char *slash = strrchr(base, '/');
    assert_non_null(slash);
    *slash = '\0';
    char *dirs[] = {slash + 1, plugin_dir, "."};
    assert_int_equal(plugin_dirs_resolve(base, dirs, 3, &out, err, sizeof err), 0);
    assert_string_equal(out[0], plugin_dir);
    assert_string_equal(out[1], plugin_dir);
    assert_string_equal(out[2], base);
    plugin_dirs_free(out, 3);

    char *missing[] = {plugin_dir, "no-such-dir"};
    assert_int_equal(plugin_dirs_resolve(base, missing, 2, &out, err, sizeof err), OBS_ENOENT);
    assert_null(out);
    assert_contains(err, "'no-such-dir'");
    assert_contains(err, "No such file or directory");

    char file[PATH_MAX];
    plugin_path(file, sizeof file, "tp_echo.so");
    char *notdir[] = {file};
    assert_int_equal(plugin_dirs_resolve(NULL, notdir, 1, &out, err, sizeof err), OBS_ENOENT);
    assert_contains(err, "not a directory");
}

/* ------------------------------------------------------------------ main */

int main(void)
{
    if (plugin_test_dirs_init("test_plugin_paths") != 0)
        return 1;

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_versioned_resolution),
        cmocka_unit_test(test_versioned_before_plain_across_dirs),
        cmocka_unit_test(test_path_escapes),
        cmocka_unit_test(test_dirs_resolve),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    plugin_test_dirs_remove();
    return failed;
}
