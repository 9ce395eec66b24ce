/*
 * store_test_util.h - what the store's unit tests share (test_store.c,
 * test_store_profiles.c): a fresh store directory per test, removed
 * afterwards with any fault injection turned off, a store opened or the
 * test failed with the store's message, and the facts of a two-stage run.
 * Include after cmocka.h.
 */
#ifndef OBS_STORE_TEST_UTIL_H
#define OBS_STORE_TEST_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "engine/host.h"
#include "store/store.h"

static inline int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

typedef struct fx {
    char dir[64];
    char path[96];
} fx;

static inline int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/obs-test-store-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/db", f->dir);
    *state = f;
    host_set_log_level(OBS_LOG_WARN);
    return 0;
}

static inline int teardown(void **state)
{
    fx *f = *state;
    store_fail_after(0);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static inline store *open_ok(const char *path)
{
    store *s = NULL;
    char err[512];
    int rc = store_open(path, &s, err, sizeof(err));
    if (rc != 0)
        fail_msg("store_open: %s", err);
    return s;
}

static const char *const stage_names[2] = {"gen", "sink"};
static const char *const plugin_names[2] = {"gen_static", "sink_null"};
static const char *const plugin_versions[2] = {"1.0.0", "2.1.0"};
static const char *const plugin_paths[2] = {"/p/gen_static.so", "/p/sink_null.so"};
static const char *const build_ids[2] = {"abcdef01", ""};

static const run_info info = {
    .pipeline = "unit",
    .config_path = "unit.yaml",
    .config_text = "pipeline: unit\n",
    .seed = 42,
    .n_stages = 2,
    .stage_names = stage_names,
    .plugin_names = plugin_names,
    .plugin_versions = plugin_versions,
    .plugin_paths = plugin_paths,
    .plugin_build_ids = build_ids,
};

#endif /* OBS_STORE_TEST_UTIL_H */
