/*
 * test_plugin.c - the plugin loader's ABI checks against the conformance
 * suite.
 *
 * Opens every plugin in tests/plugins/ (OBS_TEST_PLUGIN_DIR) through
 * plugin_open and checks two things. Refusals: each broken plugin is refused
 * with the right OBS_E* code and a message that names the stage, the plugin,
 * the file and what exactly mismatched. Acceptance and the module table:
 * valid and unusual-but-legal plugins load, have a 20-byte build-id that
 * matches the file, an address range that contains their code, and one
 * table entry per canonical file however it was asked for. `nm -D` checks
 * that every plugin exports only its entry point, and the project's own
 * plugins pass every loader check. Where plugins are looked for is tested in
 * test_plugin_paths.c; the instrumented plugins are driven through their
 * callbacks in test_plugin_lifecycle.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/plugin.h"
#include "plugin_test_util.h"

#define OBS_STR_(x) #x
#define OBS_STR(x) OBS_STR_(x)

/* --------------------------------------------------------- refusals */

/* Opens tests/plugins/<plugin>.so for stage "st_<plugin>" as `kind` and
 * checks the code and that the message names stage, plugin, file and the
 * mismatch. */
static void expect_refusal(const char *plugin, obs_kind kind, int code, const char *fragment)
{
    const char *dirs[] = {plugin_dir};
    char stage[128], file[PATH_MAX], want[PATH_MAX + 256], err[2048];
    int rc;

    fmt(stage, sizeof stage, "st_%s", plugin);
    fmt(file, sizeof file, "%s.so", plugin);
    size_t before = plugin_module_count();
    open_in(dirs, 1, stage, plugin, NULL, kind, &rc, err, sizeof err);
    if (rc != code)
        fail_msg("%s: expected %d (%s), got %d: %s", plugin, code, obs_strerror(code), rc, err);

    print_message("%s\n", err); /* the refusals, as users will read them */
    fmt(want, sizeof want, "stage '%s': plugin '%s' (%s/%s): ", stage, plugin, plugin_dir, file);
    assert_contains(err, want);
    assert_contains(err, fragment);
    /* A broken descriptor must not become a module. */
    if (code != OBS_ECONFIG)
        assert_int_equal(plugin_module_count(), before);
}

#define REFUSAL_TEST(id, kind, code, fragment)                                                     \
    static void test_refuse_##id(void **state)                                                     \
    {                                                                                              \
        (void)state;                                                                               \
        expect_refusal("tp_" #id, kind, code, fragment);                                           \
    }

REFUSAL_TEST(bad_magic, OBS_KIND_TRANSFORM, OBS_EABI,
             "not an Observatory stage plugin: descriptor magic 0xdeadbeef, expected 0x4f425354")
REFUSAL_TEST(major2, OBS_KIND_TRANSFORM, OBS_EABI, "ABI major 2, host supports 1")
REFUSAL_TEST(short_struct, OBS_KIND_TRANSFORM, OBS_EABI,
             "descriptor struct_size 16 too small: ABI 1." OBS_STR(OBS_ABI_MINOR) " needs at least "
                                                                                  "136 bytes")
REFUSAL_TEST(no_entry, OBS_KIND_TRANSFORM, OBS_ENOENT,
             "not an Observatory stage plugin: no symbol 'obs_stage_entry'")
REFUSAL_TEST(null_desc, OBS_KIND_TRANSFORM, OBS_EPLUGIN,
             "obs_stage_entry() returned NULL instead of a descriptor")
REFUSAL_TEST(wrong_kind, OBS_KIND_TRANSFORM, OBS_ECONFIG,
             "is a sink, but stage 'st_tp_wrong_kind' needs a transform")
REFUSAL_TEST(unknown_kind, OBS_KIND_TRANSFORM, OBS_EPLUGIN, "unknown kind 7")
REFUSAL_TEST(no_process, OBS_KIND_TRANSFORM, OBS_EPLUGIN, "transform without process callback")
REFUSAL_TEST(no_fini, OBS_KIND_TRANSFORM, OBS_EPLUGIN, "transform without fini callback")
REFUSAL_TEST(no_name, OBS_KIND_TRANSFORM, OBS_EPLUGIN, "descriptor has no name")
REFUSAL_TEST(no_version, OBS_KIND_TRANSFORM, OBS_EPLUGIN, "plugin 'tp_no_version' has no version")
REFUSAL_TEST(dup_param, OBS_KIND_TRANSFORM, OBS_EPLUGIN,
             "parameter 'width' declared twice (#0 and #1)")
REFUSAL_TEST(null_params, OBS_KIND_TRANSFORM, OBS_EPLUGIN,
             "declares 2 parameters but params is NULL")
REFUSAL_TEST(bad_param_type, OBS_KIND_TRANSFORM, OBS_EPLUGIN,
             "parameter 'width' has unknown type 9")
REFUSAL_TEST(bad_default, OBS_KIND_TRANSFORM, OBS_EPLUGIN,
             "parameter 'width': default 100 outside its range [1, 64]")
REFUSAL_TEST(unknown_flag, OBS_KIND_TRANSFORM, OBS_EABI,
             "descriptor flags 0x80: this host (ABI 1." OBS_STR(OBS_ABI_MINOR) ") knows only 0x1")
REFUSAL_TEST(source_transform, OBS_KIND_TRANSFORM, OBS_EPLUGIN,
             "transform flagged as a source: only a generator can be one")
REFUSAL_TEST(undef, OBS_KIND_TRANSFORM, OBS_EPLUGIN,
             "dlopen failed: ") /* the dlerror() text is checked below */

static void test_refuse_undef_names_symbol(void **state)
{
    (void)state;
    expect_refusal("tp_undef", OBS_KIND_TRANSFORM, OBS_EPLUGIN,
                   "undefined symbol: obs_test_no_such_function");
}

/* The right file, the wrong version: tp_echo-2.0.0.so asked for as 1.0.0. */
static void test_refuse_version(void **state)
{
    const char *dirs[] = {plugin_dir};
    char err[2048], want[PATH_MAX + 128];
    int rc;
    (void)state;

    open_in(dirs, 1, "echo", "tp_echo-2.0.0.so", "1.0.0", OBS_KIND_TRANSFORM, &rc, err, sizeof err);
    assert_int_equal(rc, OBS_ENOENT);
    fmt(want, sizeof want,
        "stage 'echo': plugin 'tp_echo-2.0.0.so' (%s/tp_echo-2.0.0.so): ", plugin_dir);
    assert_contains(err, want);
    assert_contains(err, "version 2.0.0, stage asks for 1.0.0");
}

/* A sink that loaded fine for one stage is refused where a transform is
 * needed, and the table still holds it once. */
static void test_refuse_kind_after_success(void **state)
{
    const char *dirs[] = {plugin_dir};
    char err[2048];
    int rc;
    (void)state;

    const obs_module *m = must_open("sink_seqcheck", NULL, OBS_KIND_SINK);
    size_t n = plugin_module_count();
    open_in(dirs, 1, "mid", "sink_seqcheck", NULL, OBS_KIND_TRANSFORM, &rc, err, sizeof err);
    assert_int_equal(rc, OBS_ECONFIG);
    assert_contains(err, "is a sink, but stage 'mid' needs a transform");
    assert_int_equal(plugin_module_count(), n);
    assert_ptr_equal(must_open("sink_seqcheck", NULL, OBS_KIND_SINK), m);
}

/* Callbacks for descriptors built in this file; never called. */
static int dummy_init(const obs_host *h, const obs_params *p, void **instance)
{
    (void)h;
    (void)p;
    *instance = NULL;
    return 0;
}

static int dummy_consume(void *instance, const obs_batch *in)
{
    (void)instance;
    (void)in;
    return 0;
}

static void dummy_fini(void *instance)
{
    (void)instance;
}

/* Checks that the loader itself never reads past a short struct_size and
 * validates parameter defaults of every type (descriptors built here). */
static void test_check_desc_direct(void **state)
{
    char err[512];
    (void)state;

    static const obs_param_desc bad_params[][1] = {
        {{.name = "n", .type = OBS_PARAM_INT, .default_value = "12abc", .min = 0, .max = 100}},
        {{.name = "r", .type = OBS_PARAM_DOUBLE, .default_value = "1.5", .min = 0, .max = 1}},
        {{.name = "b", .type = OBS_PARAM_BOOL, .default_value = "yes", .min = 1, .max = 0}},
        {{.name = "s", .type = OBS_PARAM_STRING, .default_value = "toolong", .min = 1, .max = 3}},
        {{.name = "Bad-Name", .type = OBS_PARAM_INT, .default_value = "1", .min = 1, .max = 0}},
    };
    static const char *const why[] = {
        "default '12abc' is not an integer",  "default 1.5 outside its range [0, 1]",
        "default 'yes' is not true or false", "default 'toolong' has length 7 outside [1, 3]",
        "name must match [a-z0-9_]+",
    };
    obs_stage_desc d = {OBS_STAGE_HEADER,  .kind = OBS_KIND_SINK, .name = "direct",
                        .version = "0.1",  .init = dummy_init,    .consume = dummy_consume,
                        .fini = dummy_fini};

    assert_int_equal(plugin_check_desc(&d, OBS_KIND_SINK, "x", err, sizeof err), 0);
    assert_int_equal(plugin_check_desc(&d, 0, "x", err, sizeof err), 0); /* any kind */
    assert_int_equal(plugin_check_desc(&d, OBS_KIND_GENERATOR, "x", err, sizeof err), OBS_ECONFIG);
    assert_string_equal(err, "x: is a sink, but the stage needs a generator");
    assert_int_equal(plugin_check_desc(NULL, OBS_KIND_SINK, "x", err, sizeof err), OBS_EPLUGIN);

    for (size_t i = 0; i < sizeof why / sizeof why[0]; i++) {
        d.params = bad_params[i];
        d.n_params = 1;
        assert_int_equal(plugin_check_desc(&d, OBS_KIND_SINK, "x", err, sizeof err), OBS_EPLUGIN);
        assert_contains(err, why[i]);
    }
    /* A required parameter (no default) with a range is fine. */
    static const obs_param_desc required[] = {
        {.name = "path", .type = OBS_PARAM_STRING, .default_value = NULL, .min = 1, .max = 10}};
    d.params = required;
    assert_int_equal(plugin_check_desc(&d, OBS_KIND_SINK, "x", err, sizeof err), 0);

    /* Only the 12-byte header of a short descriptor may be read: put one
     * in a buffer whose end is the end of the header, and let ASan judge. */
    uint8_t *shortd = malloc(12);
    assert_non_null(shortd);
    uint32_t magic = OBS_STAGE_MAGIC, size = 12;
    uint16_t major = OBS_ABI_MAJOR, minor = 0;
    memcpy(shortd, &magic, 4);
    memcpy(shortd + 4, &major, 2);
    memcpy(shortd + 6, &minor, 2);
    memcpy(shortd + 8, &size, 4);
    /* The header alone is 12 bytes, but obs_stage_desc field access needs
     * the struct type; the loader reads magic/major/minor/size only. */
    assert_int_equal(
        plugin_check_desc((const obs_stage_desc *)(void *)shortd, 0, "x", err, sizeof err),
        OBS_EABI);
    assert_contains(err, "struct_size 12 too small");
    free(shortd);

    /* A truncated error buffer stays terminated. */
    char tiny[8];
    assert_int_equal(plugin_check_desc(NULL, 0, "a long prefix", tiny, sizeof tiny), OBS_EPLUGIN);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

/* ------------------------------------------------------- acceptance */

static void test_accept_old_and_new_minor(void **state)
{
    (void)state;
    const obs_module *old = must_open("tp_old_minor", NULL, OBS_KIND_TRANSFORM);
    assert_int_equal(old->desc->abi_minor, 0);
    assert_null(old->desc->export_state);

    /* A later 1.x descriptor: larger struct, fields this host ignores. */
    const obs_module *nw = must_open("tp_new_minor", NULL, OBS_KIND_TRANSFORM);
    assert_int_equal(nw->desc->abi_minor, 9);
    assert_true(nw->desc->struct_size > sizeof(obs_stage_desc));
    assert_non_null(nw->desc->process);
    assert_string_equal(nw->desc->name, "tp_new_minor");
}

static void test_accept_valid(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        obs_kind kind;
    } ok[] = {
        {"tp_echo", OBS_KIND_TRANSFORM},  {"tp_thread", OBS_KIND_TRANSFORM},
        {"tp_tls", OBS_KIND_TRANSFORM},   {"tp_init_fail", OBS_KIND_TRANSFORM},
        {"sink_seqcheck", OBS_KIND_SINK},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const obs_module *m = must_open(ok[i].name, NULL, ok[i].kind);
        assert_string_equal(m->desc->name, ok[i].name);
        assert_int_equal(m->desc->kind, ok[i].kind);
        assert_non_null(m->handle);
    }
}

/* --------------------------------------------------------- module table */

/* The build-id as readelf prints it, or "" when readelf is unavailable. */
static void readelf_build_id(const char *path, char *hex, size_t len)
{
    char cmd[PATH_MAX + 64], line[512];
    hex[0] = '\0';
    fmt(cmd, sizeof cmd, "readelf -n '%s' 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    while (fgets(line, sizeof line, p)) {
        char *s = strstr(line, "Build ID: ");
        if (s) {
            fmt(hex, len, "%s", s + strlen("Build ID: "));
            hex[strcspn(hex, "\r\n ")] = '\0';
        }
    }
    pclose(p);
}

static void test_module_layout(void **state)
{
    char hex[2 * OBS_BUILD_ID_MAX + 1], want[2 * OBS_BUILD_ID_MAX + 1], path[PATH_MAX];
    (void)state;

    const obs_module *m = must_open("tp_echo", NULL, OBS_KIND_TRANSFORM);
    plugin_path(path, sizeof path, "tp_echo.so");
    assert_string_equal(m->path, path);
    assert_int_equal(m->build_id_len, 20); /* --build-id=sha1 */
    plugin_build_id_hex(m, hex, sizeof hex);
    assert_int_equal(strlen(hex), 40);
    readelf_build_id(path, want, sizeof want);
    if (want[0])
        assert_string_equal(hex, want);

    void *entry = dlsym(m->handle, OBS_STAGE_ENTRY_NAME);
    assert_non_null(entry);
    uintptr_t a = (uintptr_t)entry;
    assert_true(m->start < m->end);
    assert_true(a >= m->start && a < m->end);
    assert_true((uintptr_t)m->desc->process >= m->start && (uintptr_t)m->desc->process < m->end);
    assert_true(m->load_bias <= m->start); /* bias = address of ELF vaddr 0 */
    assert_ptr_equal(plugin_module_find(a), m);
    assert_ptr_equal(plugin_module_find((uintptr_t)m->desc->process), m);
    assert_ptr_equal(plugin_module_find(m->end - 1), m);
    assert_ptr_equal(plugin_module_get(m->id), m);

    /* Neither NULL nor the test program's own code belongs to a module. */
    assert_null(plugin_module_find(0));
    assert_null(plugin_module_find((uintptr_t)&test_module_layout));
    assert_null(plugin_module_get(plugin_module_count()));

    /* Every module in the table has a distinct range and a build-id. */
    size_t n = plugin_module_count();
    for (size_t i = 0; i < n; i++) {
        const obs_module *x = plugin_module_get(i);
        assert_int_equal(x->id, i);
        assert_int_equal(x->build_id_len, 20);
        for (size_t j = 0; j < i; j++) {
            const obs_module *y = plugin_module_get(j);
            assert_true(x->end <= y->start || y->end <= x->start);
        }
    }

    /* Truncating hex output keeps it terminated. */
    char small[5];
    plugin_build_id_hex(m, small, sizeof small);
    assert_int_equal(strlen(small), 4);
    assert_memory_equal(small, hex, 4);
}

static void test_same_file_same_entry(void **state)
{
    char abs[PATH_MAX];
    (void)state;

    const obs_module *a = must_open("tp_echo", NULL, OBS_KIND_TRANSFORM);
    size_t n = plugin_module_count();
    plugin_path(abs, sizeof abs, "tp_echo.so");
    assert_ptr_equal(must_open("tp_echo", NULL, OBS_KIND_TRANSFORM), a);
    assert_ptr_equal(must_open("tp_echo.so", NULL, OBS_KIND_TRANSFORM), a);
    assert_ptr_equal(must_open(abs, NULL, OBS_KIND_TRANSFORM), a);
    assert_ptr_equal(must_open("tp_echo", "1.0.0", 0), a);
    assert_int_equal(plugin_module_count(), n);
}

typedef struct opener {
    pthread_t thread;
    const obs_module *m;
} opener;

static void *open_thread(void *arg)
{
    opener *o = arg;
    const char *dirs[] = {plugin_dir};
    plugin_request req = {.stage_name = "race",
                          .plugin = "tp_old_minor",
                          .kind = OBS_KIND_TRANSFORM,
                          .dirs = dirs,
                          .n_dirs = 1};
    char err[512];
    if (plugin_open(&req, &o->m, err, sizeof err) != 0)
        o->m = NULL;
    return NULL;
}

static void test_concurrent_open(void **state)
{
    opener o[4];
    (void)state;

    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&o[i].thread, NULL, open_thread, &o[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(o[i].thread, NULL);
    for (int i = 0; i < 4; i++) {
        assert_non_null(o[i].m);
        assert_ptr_equal(o[i].m, o[0].m);
    }
}

static void test_names(void **state)
{
    (void)state;
    static const int codes[] = {OBS_OK,      OBS_DONE,    OBS_EINVAL, OBS_ENOMEM,
                                OBS_EIO,     OBS_EABI,    OBS_ENOENT, OBS_ESTATE,
                                OBS_EPLUGIN, OBS_ECONFIG, OBS_EAGAIN};
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *s = obs_strerror(codes[i]);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, obs_strerror(codes[j]));
    }
    assert_string_equal(obs_strerror(-1000), "unknown error");
    assert_string_equal(plugin_kind_name(OBS_KIND_GENERATOR), "generator");
    assert_string_equal(plugin_kind_name(OBS_KIND_TRANSFORM), "transform");
    assert_string_equal(plugin_kind_name(OBS_KIND_SINK), "sink");
    assert_string_equal(plugin_kind_name((obs_kind)0), "unknown kind");
}

/* ------------------------------------------- exported symbols (nm -D) */

/* Every plugin in `dir` defines exactly one dynamic symbol, the entry point
 * (tp_no_entry: none, that is its defect). In the test plugins' directory
 * (test_hooks) a function named tp_* is also allowed: a test reads a test
 * plugin's own measurements through it (tp_burn_cpu_ns). Returns the
 * number checked. */
static int check_exports_in(const char *dir, int test_hooks)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int checked = 0;

    if (!d)
        return 0;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 3, ".so") != 0)
            continue;
        char cmd[PATH_MAX + 64], line[512];
        fmt(cmd, sizeof cmd, "nm -D --defined-only '%s/%s' 2>&1", dir, de->d_name);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        int n_entry = 0;
        while (fgets(line, sizeof line, p)) {
            char addr[64], type[8], name[256];
            if (sscanf(line, "%63s %7s %255s", addr, type, name) != 3)
                fail_msg("%s: unexpected nm output: %s", de->d_name, line);
            if (strcmp(name, OBS_STAGE_ENTRY_NAME) == 0 && strcmp(type, "T") == 0)
                n_entry++;
            else if (test_hooks && strncmp(name, "tp_", 3) == 0 && strcmp(type, "T") == 0)
                continue;
            else
                fail_msg("%s/%s exports '%s' (%s): only %s may be exported", dir, de->d_name, name,
                         type, OBS_STAGE_ENTRY_NAME);
        }
        assert_int_equal(pclose(p), 0);
        assert_int_equal(n_entry, strcmp(de->d_name, "tp_no_entry.so") == 0 ? 0 : 1);
        checked++;
    }
    closedir(d);
    return checked;
}

static void test_exports_only_entry(void **state)
{
    (void)state;
    if (system("nm --version >/dev/null 2>&1") != 0)
        skip();
    assert_true(check_exports_in(plugin_dir, 1) >= 20);
    /* The project's own plugins obey the same rule. */
    const char *prod = getenv("OBS_PLUGIN_DIR");
    if (prod)
        check_exports_in(prod, 0);
}

/* The project's own plugins (OBS_PLUGIN_DIR) pass every loader check and
 * can be found by their name. */
static void test_project_plugins_load(void **state)
{
    char dir[PATH_MAX], err[2048];
    const char *env = getenv("OBS_PLUGIN_DIR");
    int n = 0;
    (void)state;

    if (!env || !realpath(env, dir))
        skip();
    DIR *d = opendir(dir);
    assert_non_null(d);
    const char *dirs[] = {dir};
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 3, ".so") != 0)
            continue;
        char name[256];
        fmt(name, sizeof name, "%.*s", (int)(len - 3), de->d_name);
        if (strchr(name, '-')) /* a versioned copy, "N-V.so" */
            *strchr(name, '-') = '\0';
        int rc;
        const obs_module *m = open_in(dirs, 1, "own", de->d_name, NULL, 0, &rc, err, sizeof err);
        if (rc != 0)
            fail_msg("%s", err);
        assert_string_equal(m->desc->name, name);
        assert_int_equal(m->build_id_len, 20);
        n++;
    }
    closedir(d);
    print_message("%d project plugins checked in %s\n", n, dir);
}

/* ------------------------------------------------------------- reset */

static void test_table_reset(void **state)
{
    (void)state;
    const obs_module *m = must_open("tp_echo", NULL, OBS_KIND_TRANSFORM);
    void *handle = m->handle;
    plugin_table_reset();
    assert_int_equal(plugin_module_count(), 0);
    m = must_open("tp_echo", NULL, OBS_KIND_TRANSFORM);
    assert_ptr_equal(m->handle, handle); /* never closed: the loader's handle */
    assert_int_equal(m->id, 0);
    assert_int_equal(plugin_module_count(), 1);
}

/* ------------------------------------------------------------------ main */

int main(void)
{
    if (plugin_test_dirs_init("test_plugin") != 0)
        return 1;

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refuse_bad_magic),
        cmocka_unit_test(test_refuse_major2),
        cmocka_unit_test(test_refuse_short_struct),
        cmocka_unit_test(test_refuse_no_entry),
        cmocka_unit_test(test_refuse_null_desc),
        cmocka_unit_test(test_refuse_wrong_kind),
        cmocka_unit_test(test_refuse_unknown_kind),
        cmocka_unit_test(test_refuse_no_process),
        cmocka_unit_test(test_refuse_no_fini),
        cmocka_unit_test(test_refuse_no_name),
        cmocka_unit_test(test_refuse_no_version),
        cmocka_unit_test(test_refuse_dup_param),
        cmocka_unit_test(test_refuse_null_params),
        cmocka_unit_test(test_refuse_bad_param_type),
        cmocka_unit_test(test_refuse_bad_default),
        cmocka_unit_test(test_refuse_undef),
        cmocka_unit_test(test_refuse_unknown_flag),
        cmocka_unit_test(test_refuse_source_transform),
        cmocka_unit_test(test_refuse_undef_names_symbol),
        cmocka_unit_test(test_refuse_version),
        cmocka_unit_test(test_refuse_kind_after_success),
        cmocka_unit_test(test_check_desc_direct),
        cmocka_unit_test(test_accept_old_and_new_minor),
        cmocka_unit_test(test_accept_valid),
        cmocka_unit_test(test_module_layout),
        cmocka_unit_test(test_same_file_same_entry),
        cmocka_unit_test(test_concurrent_open),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_exports_only_entry),
        cmocka_unit_test(test_project_plugins_load),
        cmocka_unit_test(test_table_reset), /* last: forgets every entry */
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    plugin_test_dirs_remove();
    return failed;
}
