/*
 * store_pending.c - the end of a run that could not be written: when the
 * synced write of store_run_end() fails (a full disk), the run's final
 * facts and its report go to a small JSON file instead, so that nothing of
 * the end-of-run report is lost, and they reach the store later.
 *
 * Where: first beside the database, <store>/pending-run-<id>.json (RocksDB
 * ignores files it did not make); when that cannot be written either (the
 * same full disk), $TMPDIR (default /tmp) as
 * observatory-pending-<key>-run-<id>.json, where <key> is a hash of the
 * store's absolute path, so that readers of this store, and only they,
 * find it. The file holds {"store", "run_id", "facts", "report"}; it is
 * written to a temporary name and renamed, so a reader never sees half of
 * one. Readers (store_read.c) show a run's pending end in place of the
 * stored "running"/"incomplete" record, with "report_pending" naming the
 * file; the next read-write open (the next hostd run, or `hostd runs` once
 * the disk has room) writes it into the store and removes the file. The
 * layout is in docs/storage.md.
 */
#include "store/store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/host.h"
#include "observatory/stage.h"
#include "util/json_u64.h"

#define PENDING_PREFIX "pending-run-"
#define TMP_PREFIX "observatory-pending-"

/* $TMPDIR or /tmp; a static string or the environment's. */
static const char *tmp_dir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

/* The hash naming this store's files in $TMPDIR: FNV-1a 64 of its
 * absolute path (the path as given when it cannot be resolved). */
static void store_key(const store *s, char key[17])
{
    char abs[PATH_MAX];
    const char *p = realpath(s->path, abs) ? abs : s->path;
    uint64_t h = 1469598103934665603ull;
    for (; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    snprintf(key, 17, "%016" PRIx64, h);
}

/* The two places of run `run_id`'s pending file: where = 0 beside the
 * store, 1 in $TMPDIR. Returns 0, or -1 when the path does not fit. */
static int pending_path(const store *s, int where, uint64_t run_id, char *buf, size_t len)
{
    int n;
    if (where == 0) {
        n = snprintf(buf, len, "%s/" PENDING_PREFIX "%" PRIu64 ".json", s->path, run_id);
    } else {
        char key[17];
        store_key(s, key);
        n = snprintf(buf, len, "%s/" TMP_PREFIX "%s-run-%" PRIu64 ".json", tmp_dir(), key, run_id);
    }
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* Writes `text` to `path` through a temporary file and a rename; nothing
 * is left behind on failure. Returns 0 or an errno value. */
static int write_file(const char *path, const char *text)
{
    char tmp[PATH_MAX + 8];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return ENAMETOOLONG;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return errno;
    size_t n = strlen(text);
    int e = fwrite(text, 1, n, f) == n ? 0 : errno ? errno : EIO;
    if (fflush(f) != 0 && !e)
        e = errno;
    if (fsync(fileno(f)) != 0 && !e)
        e = errno;
    if (fclose(f) != 0 && !e)
        e = errno;
    if (!e && rename(tmp, path) != 0)
        e = errno;
    if (e)
        unlink(tmp);
    return e;
}

int store_pending_write(store *s, uint64_t run_id, const json_t *facts, const json_t *report)
{
    json_t *doc = json_pack("{s:s, s:o, s:O, s:O?}", "store", s->path, "run_id", json_u64(run_id),
                            "facts", facts, "report", report);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return OBS_ENOMEM;
    char path[PATH_MAX];
    int rc = OBS_EIO, e = 0;
    for (int where = 0; where < 2 && rc < 0; where++) {
        if (pending_path(s, where, run_id, path, sizeof path) < 0)
            continue;
        if ((e = write_file(path, text)) == 0) {
            host_log(NULL, OBS_LOG_ERROR,
                     "store '%s': run %" PRIu64 ": its end and report could not be stored; "
                     "kept in %s until the next hostd opens the store with room to write",
                     s->path, run_id, path);
            rc = 0;
        }
    }
    if (rc < 0)
        host_log(NULL, OBS_LOG_ERROR,
                 "store '%s': run %" PRIu64 ": its end and report could not be stored, nor "
                 "kept beside the store or in %s (%s); the report printed above is all there is",
                 s->path, run_id, tmp_dir(), strerror(e));
    free(text);
    return rc;
}

/* Reads a pending file; NULL when it is missing or not one of this run. */
static json_t *pending_read(const char *path, uint64_t run_id)
{
    json_t *doc = json_load_file(path, 0, NULL);
    json_t *id = doc ? json_object_get(doc, "run_id") : NULL;
    if (doc && (!json_is_integer(id) || (uint64_t)json_integer_value(id) != run_id ||
                !json_is_object(json_object_get(doc, "facts")))) {
        json_decref(doc);
        doc = NULL;
    }
    return doc;
}

int store_pending_apply(store *s, uint64_t run_id, json_t **facts, json_t **report)
{
    char path[PATH_MAX];
    for (int where = 0; where < 2; where++) {
        if (pending_path(s, where, run_id, path, sizeof path) < 0)
            continue;
        json_t *doc = pending_read(path, run_id);
        if (!doc)
            continue;
        json_t *f = json_deep_copy(json_object_get(doc, "facts"));
        json_t *r = json_object_get(doc, "report");
        if (f && json_object_set_new(f, "report_pending", json_string(path)) == 0) {
            json_decref(*facts);
            *facts = f;
            if (report && json_is_object(r))
                *report = json_incref(r);
            json_decref(doc);
            return 1;
        }
        json_decref(f);
        json_decref(doc);
    }
    return 0;
}

/* Stores the pending end in `path` if it belongs to a run of this store,
 * then removes the file. Returns 1 when stored, else 0. */
static int import_one(store *s, const char *path, uint64_t run_id)
{
    json_t *doc = pending_read(path, run_id);
    if (!doc)
        return 0;
    int rc = store_run_exists(s, run_id);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    if (rc == 0)
        rc = store_put_json(b, s, run_id, TAG_INFO, json_object_get(doc, "facts"));
    json_t *report = json_object_get(doc, "report");
    if (rc == 0 && json_is_object(report))
        rc = store_put_json(b, s, run_id, TAG_REPORT, report);
    if (rc == 0)
        rc = store_batch_write(s, b, 1, "store a pending end of run");
    rocksdb_writebatch_destroy(b);
    json_decref(doc);
    if (rc == OBS_ENOENT) {
        host_log(NULL, OBS_LOG_ERROR,
                 "store '%s': %s names run %" PRIu64 ", which the store does not have; left as is",
                 s->path, path, run_id);
        return 0;
    }
    if (rc < 0)
        return 0;
    unlink(path);
    host_log(NULL, OBS_LOG_INFO,
             "store '%s': run %" PRIu64 ": its end and report, kept in %s, are now stored", s->path,
             run_id, path);
    return 1;
}

/* Imports every file in `dir` named prefix<id>.json. */
static int import_dir(store *s, const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    size_t plen = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (strncmp(name, prefix, plen) != 0)
            continue;
        char *end;
        errno = 0;
        unsigned long long id = strtoull(name + plen, &end, 10);
        if (errno || end == name + plen || strcmp(end, ".json") != 0 || id == 0)
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
            continue;
        n += import_one(s, path, id);
    }
    closedir(d);
    return n;
}

int store_pending_import(store *s)
{
    if (s->readonly)
        return 0;
    char key[17], prefix[64];
    store_key(s, key);
    snprintf(prefix, sizeof prefix, TMP_PREFIX "%s-run-", key);
    return import_dir(s, s->path, PENDING_PREFIX) + import_dir(s, tmp_dir(), prefix);
}

void store_pending_remove(store *s, uint64_t run_id)
{
    char path[PATH_MAX];
    for (int where = 0; where < 2; where++)
        if (pending_path(s, where, run_id, path, sizeof path) == 0)
            unlink(path);
}
