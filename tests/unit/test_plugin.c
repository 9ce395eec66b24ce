/*
 * test_plugin.c - the plugin loader against the conformance suite.
 *
 * Opens every plugin in tests/plugins/ (OBS_TEST_PLUGIN_DIR) through
 * plugin_open and checks three things. Refusals: each broken plugin is
 * refused with the right OBS_E* code and a message that names the stage, the
 * plugin, the file and what exactly mismatched. Acceptance and the module
 * table: valid and unusual-but-legal plugins load, have a 20-byte build-id
 * that matches the file, an address range that contains their code, and one
 * table entry per canonical file however it was asked for. Containment:
 * nothing outside the configured directories is ever opened ("../", symlinks,
 * absolute paths). A last group drives the instrumented plugins (threads,
 * thread-local destructors, the sequence-checking sink, the Rust plugin)
 * through their callbacks with a small fake host, and `nm -D` checks that
 * every plugin exports only its entry point.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/plugin.h"

/* Canonical OBS_TEST_PLUGIN_DIR, and a scratch directory for path tests. */
static char plugin_dir[PATH_MAX];
static char tmp_dir[PATH_MAX];

/* ------------------------------------------------------------- helpers */

/* snprintf that fails the test instead of truncating. */
static void fmt(char *buf, size_t len, const char *format, ...) OBS_PRINTF(3, 4);

static void fmt(char *buf, size_t len, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(buf, len, format, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len)
        fail_msg("formatting \"%s\": %d bytes do not fit in %zu", format, n, len);
}

static const obs_module *open_in(const char *const *dirs, size_t n_dirs, const char *stage,
                                 const char *plugin, const char *version, obs_kind kind, int *rc,
                                 char *err, size_t errlen)
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
static const obs_module *must_open(const char *plugin, const char *version, obs_kind kind)
{
    const char *dirs[] = {plugin_dir};
    char err[1024];
    int rc;
    const obs_module *m = open_in(dirs, 1, "st", plugin, version, kind, &rc, err, sizeof err);
    if (rc != 0)
        fail_msg("opening %s: %s (%s)", plugin, err, obs_strerror(rc));
    return m;
}

static void plugin_path(char *buf, size_t len, const char *file)
{
    fmt(buf, len, "%s/%s", plugin_dir, file);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

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

#define OBS_STR_(x) #x
#define OBS_STR(x) OBS_STR_(x)

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, haystack);
}

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
                                                                                  "120 bytes")
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
 * (tp_no_entry: none, that is its defect). Returns the number checked. */
static int check_exports_in(const char *dir)
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
    assert_true(check_exports_in(plugin_dir) >= 20);
    /* The project's own plugins obey the same rule. */
    const char *prod = getenv("OBS_PLUGIN_DIR");
    if (prod)
        check_exports_in(prod);
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

/* ------------------------------------------------- lifecycle, fake host */

/* A minimal host: collects log lines and counters, allocates with malloc.
 * Thread-safe, since tp_thread logs from its worker. */
typedef struct fake_host {
    obs_host h; /* first: callbacks cast back */
    pthread_mutex_t lock;
    char log[4096];
    char counter_names[8][32];
    uint64_t counters[8];
    int n_counters;
} fake_host;

static void fake_log(const obs_host *h, int level, const char *format, ...)
{
    fake_host *f = (fake_host *)(uintptr_t)h;
    char line[512];
    va_list ap;
    (void)level;
    va_start(ap, format);
    vsnprintf(line, sizeof line, format, ap);
    va_end(ap);
    pthread_mutex_lock(&f->lock);
    size_t o = strlen(f->log);
    snprintf(f->log + o, sizeof f->log - o, "%s\n", line);
    pthread_mutex_unlock(&f->lock);
}

static int fake_counter_register(const obs_host *h, const char *name, int kind, const char *help)
{
    fake_host *f = (fake_host *)(uintptr_t)h;
    (void)kind;
    (void)help;
    if (f->n_counters == 8)
        return OBS_ENOMEM;
    snprintf(f->counter_names[f->n_counters], sizeof f->counter_names[0], "%s", name);
    return f->n_counters++;
}

static void fake_counter_add(const obs_host *h, int id, uint64_t delta)
{
    fake_host *f = (fake_host *)(uintptr_t)h;
    assert_true(id >= 0 && id < f->n_counters);
    f->counters[id] += delta;
}

static uint64_t fake_counter(const fake_host *f, const char *name)
{
    for (int i = 0; i < f->n_counters; i++)
        if (strcmp(f->counter_names[i], name) == 0)
            return f->counters[i];
    fail_msg("no counter %s", name);
    return 0;
}

static uint64_t fake_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *fake_alloc(const obs_host *h, size_t n)
{
    (void)h;
    return malloc(n);
}

static void *fake_realloc(const obs_host *h, void *p, size_t n)
{
    (void)h;
    return realloc(p, n);
}

static void fake_free(const obs_host *h, void *p)
{
    (void)h;
    free(p);
}

static void fake_host_init(fake_host *f, const char *stage)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
    f->h = (obs_host){.struct_size = sizeof(obs_host),
                      .abi_major = OBS_ABI_MAJOR,
                      .abi_minor = OBS_ABI_MINOR,
                      .stage_name = stage,
                      .plugin_path = "(test)",
                      .batch_size = 64,
                      .log = fake_log,
                      .counter_register = fake_counter_register,
                      .counter_add = fake_counter_add,
                      .now_ns = fake_now,
                      .alloc = fake_alloc,
                      .realloc = fake_realloc,
                      .free = fake_free};
}

/* An obs_out that starts empty, so the plugins exercise grow(). */
static int fake_grow(obs_out *out, uint32_t n_records, uint64_t n_bytes)
{
    uint32_t cap = out->cap_records;
    while (cap - out->n_records < n_records)
        cap = cap ? cap * 2 : 4;
    if (cap != out->cap_records) {
        obs_record *r = realloc(out->records, cap * sizeof *r);
        if (!r)
            return OBS_ENOMEM;
        out->records = r;
        out->cap_records = cap;
    }
    /* A moving arena would invalidate committed records' data pointers;
     * like the real host, allocate it once at its bound. */
    if (out->arena_cap - out->arena_used < n_bytes)
        return OBS_ENOMEM;
    return 0;
}

static void fake_out_init(obs_out *out)
{
    memset(out, 0, sizeof *out);
    out->arena_cap = 4096;
    out->arena = malloc(out->arena_cap);
    assert_non_null(out->arena);
    out->grow = fake_grow;
}

static void fake_out_free(obs_out *out)
{
    free(out->records);
    free(out->arena);
}

/* Parameters from a descriptor's defaults, with optional overrides
 * ("name", "value" pairs). */
typedef struct fake_params {
    obs_params p;
    obs_param_value v[8];
} fake_params;

static void fake_params_init(fake_params *fp, const obs_stage_desc *d, const char *const *kv,
                             size_t n_kv)
{
    memset(fp, 0, sizeof *fp);
    assert_true(d->n_params <= 8);
    for (uint32_t i = 0; i < d->n_params; i++) {
        const obs_param_desc *pd = &d->params[i];
        obs_param_value *v = &fp->v[i];
        v->name = pd->name;
        v->type = pd->type;
        v->is_default = 1;
        v->s = pd->default_value ? pd->default_value : "";
        for (size_t k = 0; k + 1 < n_kv; k += 2)
            if (strcmp(kv[k], pd->name) == 0) {
                v->s = kv[k + 1];
                v->is_default = 0;
            }
        if (pd->type == OBS_PARAM_BOOL)
            v->i = strcmp(v->s, "true") == 0;
        else if (pd->type == OBS_PARAM_INT)
            v->i = strtoll(v->s, NULL, 0);
        v->d = pd->type == OBS_PARAM_DOUBLE ? strtod(v->s, NULL) : (double)v->i;
    }
    fp->p.values = fp->v;
    fp->p.n_values = d->n_params;
}

/* A batch of n records with consecutive seq from first, 8 bytes each. */
typedef struct fake_batch {
    obs_batch b;
    obs_record r[256];
    uint8_t data[256][8];
} fake_batch;

static void fake_batch_init(fake_batch *fb, uint64_t first, uint32_t n)
{
    assert_true(n <= 256);
    for (uint32_t i = 0; i < n; i++) {
        memcpy(fb->data[i], "record!!", 8);
        fb->r[i] = (obs_record){
            .data = fb->data[i], .len = 8, .seq = first + i, .t_intended_ns = 1000 + first + i};
    }
    fb->b = (obs_batch){.records = fb->r, .n_records = n};
}

static void test_init_fail(void **state)
{
    fake_host fh;
    fake_params fp;
    void *inst = (void *)1;
    (void)state;

    const obs_module *m = must_open("tp_init_fail", NULL, OBS_KIND_TRANSFORM);
    fake_host_init(&fh, "failing");
    fake_params_init(&fp, m->desc, NULL, 0);
    assert_int_equal(m->desc->init(&fh.h, &fp.p, &inst), OBS_EPLUGIN);
    assert_contains(fh.log, "tp_init_fail: init fails on purpose");
}

static void test_plugin_with_thread(void **state)
{
    fake_host fh;
    fake_params fp;
    fake_batch fb;
    obs_out out;
    void *inst = NULL;
    (void)state;

    const obs_module *m = must_open("tp_thread", NULL, OBS_KIND_TRANSFORM);
    fake_host_init(&fh, "threaded");
    fake_params_init(&fp, m->desc, NULL, 0);
    fake_out_init(&out);
    assert_int_equal(m->desc->init(&fh.h, &fp.p, &inst), 0);
    for (int round = 0; round < 3; round++) {
        fake_batch_init(&fb, (uint64_t)round * 100, 100);
        assert_int_equal(m->desc->process(inst, &fb.b, &out), 0);
    }
    assert_int_equal(out.n_passed, 300);
    assert_int_equal(out.records[299].seq, 299);
    assert_int_equal(m->desc->flush(inst, &out), 0);
    assert_int_equal(out.n_records, 301);
    const obs_record *last = &out.records[300];
    assert_int_equal(last->len, strlen("tp_thread worker_records=300"));
    assert_memory_equal(last->data, "tp_thread worker_records=300", last->len);
    m->desc->fini(inst);
    assert_contains(fh.log, "worker started");
    assert_contains(fh.log, "worker stopping"); /* joined before fini returned */
    fake_out_free(&out);
}

typedef struct tls_run {
    const obs_module *m;
    void *inst;
    int rc;
} tls_run;

static void *tls_thread(void *arg)
{
    tls_run *t = arg;
    fake_batch fb;
    obs_out out;

    fake_batch_init(&fb, 0, 10);
    fake_out_init(&out);
    t->rc = t->m->desc->process(t->inst, &fb.b, &out);
    if (t->rc == 0)
        t->rc = t->m->desc->process(t->inst, &fb.b, &out); /* reuses its scratch */
    if (t->rc == 0 && out.n_passed != 20)
        t->rc = -100;
    fake_out_free(&out);
    return NULL;
}

static void test_plugin_with_tls_destructor(void **state)
{
    fake_host fh;
    fake_params fp;
    obs_out out;
    void *inst = NULL;
    tls_run t[2];
    (void)state;

    const obs_module *m = must_open("tp_tls", NULL, OBS_KIND_TRANSFORM);
    fake_host_init(&fh, "tls");
    fake_params_init(&fp, m->desc, NULL, 0);
    assert_int_equal(m->desc->init(&fh.h, &fp.p, &inst), 0);
    for (int i = 0; i < 2; i++) {
        t[i] = (tls_run){.m = m, .inst = inst};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, tls_thread, &t[i]), 0);
        /* One at a time, so each thread's destructor has run (it runs
         * before pthread_join returns) when we look. */
        pthread_join(th, NULL);
        assert_int_equal(t[i].rc, 0);
    }
    fake_out_init(&out);
    assert_int_equal(m->desc->flush(inst, &out), 0);
    assert_int_equal(out.n_records, 1);
    const char *want = "tp_tls created=2 destroyed=2";
    assert_int_equal(out.records[0].len, strlen(want));
    assert_memory_equal(out.records[0].data, want, strlen(want));
    m->desc->fini(inst);
    fake_out_free(&out);
}

static void read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, (int)len, f));
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

static void test_sink_seqcheck(void **state)
{
    char report[PATH_MAX], line[256];
    fake_host fh;
    fake_params fp;
    fake_batch fb;
    void *inst = NULL;
    (void)state;

    const obs_module *m = must_open("sink_seqcheck", NULL, OBS_KIND_SINK);
    fmt(report, sizeof report, "%s/seqcheck.txt", tmp_dir);

    /* 5..14, then 17..18 (15 and 16 lost), then 18 again. */
    const char *kv[] = {"report", report};
    fake_host_init(&fh, "sink");
    fake_params_init(&fp, m->desc, kv, 2);
    assert_int_equal(m->desc->init(&fh.h, &fp.p, &inst), 0);
    fake_batch_init(&fb, 5, 10);
    assert_int_equal(m->desc->consume(inst, &fb.b), 0);
    fake_batch_init(&fb, 17, 2);
    assert_int_equal(m->desc->consume(inst, &fb.b), 0);
    fake_batch_init(&fb, 18, 1);
    assert_int_equal(m->desc->consume(inst, &fb.b), 0);
    assert_int_equal(m->desc->flush(inst, NULL), 0); /* not strict */
    m->desc->fini(inst);
    read_line(report, line, sizeof line);
    assert_string_equal(line, "seqcheck records=13 first=5 last=18 gaps=2 dups=1");
    assert_int_equal(fake_counter(&fh, "seq_records"), 13);
    assert_int_equal(fake_counter(&fh, "seq_gaps"), 2);
    assert_int_equal(fake_counter(&fh, "seq_dups"), 1);

    /* Strict mode fails the flush on the same defect... */
    const char *strict[] = {"report", report, "fail_on_error", "true"};
    fake_host_init(&fh, "sink");
    fake_params_init(&fp, m->desc, strict, 4);
    assert_int_equal(m->desc->init(&fh.h, &fp.p, &inst), 0);
    fake_batch_init(&fb, 0, 3);
    assert_int_equal(m->desc->consume(inst, &fb.b), 0);
    assert_int_equal(m->desc->consume(inst, &fb.b), 0);
    assert_int_equal(m->desc->flush(inst, NULL), OBS_EPLUGIN);
    m->desc->fini(inst);
    read_line(report, line, sizeof line);
    assert_string_equal(line, "seqcheck records=6 first=0 last=2 gaps=0 dups=3");

    /* ...and passes a clean stream split over many batches. */
    fake_host_init(&fh, "sink");
    fake_params_init(&fp, m->desc, strict, 4);
    assert_int_equal(m->desc->init(&fh.h, &fp.p, &inst), 0);
    for (uint64_t s = 0; s < 1000; s += 100) {
        fake_batch_init(&fb, s, 100);
        assert_int_equal(m->desc->consume(inst, &fb.b), 0);
    }
    assert_int_equal(m->desc->flush(inst, NULL), 0);
    m->desc->fini(inst);
    read_line(report, line, sizeof line);
    assert_string_equal(line, "seqcheck records=1000 first=0 last=999 gaps=0 dups=0");
}

static void test_echo_state_handover(void **state)
{
    fake_host fh;
    fake_params fp;
    fake_batch fb;
    obs_out out;
    void *v1 = NULL, *v2 = NULL, *buf = NULL;
    size_t len = 0;
    (void)state;

    const obs_module *a = must_open("tp_echo", "1.0.0", OBS_KIND_TRANSFORM);
    const obs_module *b = must_open("tp_echo", "2.0.0", OBS_KIND_TRANSFORM);
    fake_host_init(&fh, "echo");
    fake_params_init(&fp, a->desc, (const char *const[]){"drop_every", "4"}, 2);
    assert_int_equal(a->desc->init(&fh.h, &fp.p, &v1), 0);
    fake_out_init(&out);
    fake_batch_init(&fb, 0, 10);
    assert_int_equal(a->desc->process(v1, &fb.b, &out), 0);
    assert_int_equal(out.n_passed, 8); /* seq 3 and 7 dropped */
    assert_int_equal(out.records[3].seq, 4);
    assert_ptr_equal(out.records[3].data, fb.r[4].data); /* by reference */
    assert_int_equal(fake_counter(&fh, "dropped_on_purpose"), 2);

    assert_int_equal(a->desc->export_state(v1, &buf, &len), 0);
    assert_int_equal(len, 8);
    assert_int_equal(b->desc->init(&fh.h, &fp.p, &v2), 0);
    assert_int_equal(b->desc->import_state(v2, buf, len), 0);
    assert_int_equal(b->desc->import_state(v2, buf, 3), OBS_ESTATE);
    fh.h.free(&fh.h, buf);
    assert_contains(fh.log, "tp_echo 2.0.0: imported state, 10 records seen");
    a->desc->fini(v1);
    b->desc->fini(v2);
    fake_out_free(&out);
}

static void test_rust_plugin(void **state)
{
    char path[PATH_MAX], hex[2 * OBS_BUILD_ID_MAX + 1];
    fake_host fh;
    fake_batch fb;
    obs_out out;
    void *inst = NULL;
    obs_params none = {0};
    (void)state;

    plugin_path(path, sizeof path, "tp_rust_echo.so");
    if (!file_exists(path))
        skip(); /* built only when cargo is installed */
    const obs_module *m = must_open("tp_rust_echo", NULL, OBS_KIND_TRANSFORM);
    assert_int_equal(m->desc->struct_size, sizeof(obs_stage_desc));
    assert_string_equal(m->desc->version, "1.0.0");
    plugin_build_id_hex(m, hex, sizeof hex);
    assert_true(m->build_id_len > 0);
    assert_true(plugin_module_find((uintptr_t)m->desc->process) == m);

    fake_host_init(&fh, "rust");
    fake_out_init(&out);
    assert_int_equal(m->desc->init(&fh.h, &none, &inst), 0);
    fake_batch_init(&fb, 42, 37);
    assert_int_equal(m->desc->process(inst, &fb.b, &out), 0);
    assert_int_equal(out.n_records, 37);
    assert_int_equal(out.n_passed, 37);
    assert_true(out.cap_records >= 37); /* grew from 0 through the host */
    for (uint32_t i = 0; i < 37; i++) {
        assert_int_equal(out.records[i].seq, 42 + i);
        assert_ptr_equal(out.records[i].data, fb.r[i].data);
    }
    m->desc->fini(inst);
    fake_out_free(&out);
}

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

static int rm_tree(const char *path)
{
    char cmd[PATH_MAX + 16];
    fmt(cmd, sizeof cmd, "rm -rf '%s'", path);
    return system(cmd);
}

int main(void)
{
    const char *dir = getenv("OBS_TEST_PLUGIN_DIR");
    if (!dir || !realpath(dir, plugin_dir)) {
        fprintf(stderr, "test_plugin: set OBS_TEST_PLUGIN_DIR to the built tests/plugins\n");
        return 1;
    }
    const char *t = getenv("TMPDIR");
    fmt(tmp_dir, sizeof tmp_dir, "%s/test_plugin.XXXXXX", t && t[0] ? t : "/tmp");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    /* Canonical, so messages compare against what the loader prints. */
    char canon[PATH_MAX];
    if (!realpath(tmp_dir, canon))
        return 1;
    fmt(tmp_dir, sizeof tmp_dir, "%s", canon);

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
        cmocka_unit_test(test_refuse_undef_names_symbol),
        cmocka_unit_test(test_refuse_version),
        cmocka_unit_test(test_refuse_kind_after_success),
        cmocka_unit_test(test_check_desc_direct),
        cmocka_unit_test(test_accept_old_and_new_minor),
        cmocka_unit_test(test_accept_valid),
        cmocka_unit_test(test_module_layout),
        cmocka_unit_test(test_same_file_same_entry),
        cmocka_unit_test(test_concurrent_open),
        cmocka_unit_test(test_versioned_resolution),
        cmocka_unit_test(test_versioned_before_plain_across_dirs),
        cmocka_unit_test(test_path_escapes),
        cmocka_unit_test(test_dirs_resolve),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_exports_only_entry),
        cmocka_unit_test(test_project_plugins_load),
        cmocka_unit_test(test_init_fail),
        cmocka_unit_test(test_plugin_with_thread),
        cmocka_unit_test(test_plugin_with_tls_destructor),
        cmocka_unit_test(test_sink_seqcheck),
        cmocka_unit_test(test_echo_state_handover),
        cmocka_unit_test(test_rust_plugin),
        cmocka_unit_test(test_table_reset), /* last: forgets every entry */
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    rm_tree(tmp_dir);
    return failed;
}
