/*
 * store_run.c - a run's facts in the "runs" family: store_run_begin() gives
 * the run the next id and records what makes it reproducible (the
 * pipeline, its config and plugins, and the host and build facts gathered
 * here), store_run_end() records how it ended with its report, and
 * store_mark_incomplete() (called by store_open_flags) marks the runs a
 * killed hostd left "running". These are the synced writes of the store
 * (an end that cannot be written goes to a pending file, store_pending.c);
 * the facts document is described in docs/storage.md.
 *
 * The build facts come from compile definitions that core/store's
 * CMakeLists.txt sets on this file (OBS_COMPILER, OBS_BUILD_FLAGS,
 * OBS_BUILD_TYPE) and from OBS_VERSION.
 */
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "engine/host.h"
#include "observatory/stage.h"
#include "util/json_u64.h"

#ifndef OBS_COMPILER
#define OBS_COMPILER "unknown"
#endif
#ifndef OBS_BUILD_FLAGS
#define OBS_BUILD_FLAGS "unknown"
#endif
#ifndef OBS_BUILD_TYPE
#define OBS_BUILD_TYPE "unknown"
#endif
#ifndef OBS_VERSION
#define OBS_VERSION "unknown"
#endif

int store_mark_incomplete(store *s)
{
    int rc = 0;
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_RUNS]);
    size_t n_marked = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen != 9 || k[8] != TAG_INFO)
            continue;
        const char *v = rocksdb_iter_value(it, &vlen);
        json_t *info = json_loadb(v, vlen, 0, NULL);
        const char *status = info ? json_string_value(json_object_get(info, "status")) : NULL;
        if (status && strcmp(status, "running") == 0) {
            uint64_t run_id = store_get_be64(k);
            store_progress pr;
            char when[40];
            uint64_t now = store_wall_ns();
            rc = store_get_progress(s, run_id, &pr);
            store_iso_time(now, when, sizeof(when));
            json_object_set_new(info, "status", json_string("incomplete"));
            json_object_set_new(info, "clean", json_false());
            /* The last snapshot is the best known end. */
            json_object_set_new(info, "end_ns", pr.n ? json_u64(pr.last_ns) : json_null());
            json_object_set_new(info, "marked_incomplete_at", json_string(when));
            if (rc == 0)
                rc = store_put_json(b, s, run_id, TAG_INFO, info);
            n_marked++;
        }
        json_decref(info);
        if (rc < 0)
            break;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (err) {
        store_log_db_error(s, "scan runs", err);
        rc = OBS_EIO;
    }
    rocksdb_iter_destroy(it);
    if (rc == 0 && n_marked)
        rc = store_batch_write(s, b, 1, "mark interrupted runs incomplete");
    if (rc == 0 && n_marked)
        host_log(NULL, OBS_LOG_INFO, "store '%s': %zu interrupted run(s) marked incomplete",
                 s->path, n_marked);
    rocksdb_writebatch_destroy(b);
    return rc;
}

/* The largest run id in the store, 0 when there is none. */
static int last_run_id(store *s, uint64_t *id)
{
    *id = 0;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_RUNS]);
    rocksdb_iter_seek_to_last(it);
    if (rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen >= 8)
            *id = store_get_be64(k);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        store_log_db_error(s, "find last run", err);
        return OBS_EIO;
    }
    return 0;
}

static void cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *v = strchr(line, ':');
        if (!v)
            continue;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        snprintf(buf, len, "%s", v);
        buf[strcspn(buf, "\n")] = '\0';
        break;
    }
    fclose(f);
}

/* Builds the facts document of a new run. NULL when out of memory. */
static json_t *run_facts(uint64_t run_id, const run_info *info, uint64_t now)
{
    char host[256] = "unknown", cpu[256], when[40];
    struct utsname u;
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    cpu_model(cpu, sizeof(cpu));
    store_iso_time(now, when, sizeof(when));
    int have_uname = uname(&u) == 0;
    char kernel[3 * sizeof(u.release) + 4] = "unknown";
    if (have_uname)
        snprintf(kernel, sizeof(kernel), "%s %s %s", u.sysname, u.release, u.version);

    json_t *stages = json_array();
    for (size_t i = 0; stages && i < info->n_stages; i++) {
#define S(arr) (info->arr && info->arr[i] ? json_string(info->arr[i]) : json_null())
        json_array_append_new(stages,
                              json_pack("{s:o, s:o, s:o, s:o, s:o}", "name", S(stage_names),
                                        "plugin", S(plugin_names), "version", S(plugin_versions),
                                        "path", S(plugin_paths), "build_id", S(plugin_build_ids)));
#undef S
    }
    if (stages && json_array_size(stages) != info->n_stages) {
        json_decref(stages);
        return NULL;
    }
    return json_pack(
        "{s:o, s:s, s:s, s:n, s:s?, s:s?, s:s?, s:o, s:o, "
        "s:{s:s, s:s, s:s, s:s, s:I}, s:{s:s, s:s, s:s, s:s}, s:o, s:s, s:n, s:n, s:I}",
        "id", json_u64(run_id), "pipeline", info->pipeline ? info->pipeline : "", "status",
        "running", "clean", "config_path", info->config_path, "config_text", info->config_text,
        "started_by", "hostd", "seed", json_u64(info->seed), "stages",
        stages ? stages : json_null(), "host", "hostname", host, "kernel", kernel, "machine",
        have_uname ? u.machine : "unknown", "cpu_model", cpu, "n_cpus",
        (json_int_t)sysconf(_SC_NPROCESSORS_ONLN), "build", "hostd_version", OBS_VERSION,
        "compiler", OBS_COMPILER, "flags", OBS_BUILD_FLAGS, "build_type", OBS_BUILD_TYPE,
        "start_ns", json_u64(now), "start", when, "end_ns", "end", "pid", (json_int_t)getpid());
}

int store_run_begin(store *s, const run_info *info, uint64_t *run_id)
{
    int rc;
    json_t *facts = NULL;
    rocksdb_writebatch_t *b = NULL;
    *run_id = 0;
    pthread_mutex_lock(&s->lock);
    uint64_t last;
    if ((rc = last_run_id(s, &last)) < 0)
        goto out;
    facts = run_facts(last + 1, info, store_wall_ns());
    if (facts && info->run_id &&
        json_object_set_new(facts, "run_id", json_string(info->run_id)) != 0) {
        json_decref(facts);
        facts = NULL;
    }
    if (!facts) {
        rc = OBS_ENOMEM;
        goto out;
    }
    b = rocksdb_writebatch_create();
    if ((rc = store_put_json(b, s, last + 1, TAG_INFO, facts)) < 0)
        goto out;
    if ((rc = store_batch_write(s, b, 1, "begin run")) < 0)
        goto out;
    *run_id = last + 1;
out:
    pthread_mutex_unlock(&s->lock);
    if (b)
        rocksdb_writebatch_destroy(b);
    json_decref(facts);
    return rc;
}

static int end_run(store *s, uint64_t run_id, int clean, json_t *report, const char *why);

int store_run_end(store *s, uint64_t run_id, int clean, json_t *report)
{
    return end_run(s, run_id, clean, report, NULL);
}

int store_run_not_started(store *s, uint64_t run_id, const char *why)
{
    return end_run(s, run_id, 0, NULL, why);
}

/* Ends the run's record: status, end time and, for a run that never
 * started, why. */
static int end_run(store *s, uint64_t run_id, int clean, json_t *report, const char *why)
{
    json_t *facts = NULL;
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    pthread_mutex_lock(&s->lock);
    int rc = store_get_json(s, run_id, TAG_INFO, &facts);
    if (rc < 0)
        goto out;
    char when[40];
    uint64_t now = store_wall_ns();
    store_iso_time(now, when, sizeof(when));
    const char *status = why ? "not started" : clean ? "complete" : "failed";
    if ((why && json_object_set_new(facts, "error", json_string(why)) < 0) ||
        json_object_set_new(facts, "status", json_string(status)) < 0 ||
        json_object_set_new(facts, "clean", json_boolean(clean)) < 0 ||
        json_object_set_new(facts, "end_ns", json_u64(now)) < 0 ||
        json_object_set_new(facts, "end", json_string(when)) < 0) {
        rc = OBS_ENOMEM;
        goto out;
    }
    if ((rc = store_put_json(b, s, run_id, TAG_INFO, facts)) < 0)
        goto out;
    if (report && (rc = store_put_json(b, s, run_id, TAG_REPORT, report)) < 0)
        goto out;
    rc = store_batch_write(s, b, 1, "end run");
    if (rc == OBS_EIO)
        /* A full disk: keep the end in a file until the store has room. */
        rc = store_pending_write(s, run_id, facts, report);
out:
    pthread_mutex_unlock(&s->lock);
    rocksdb_writebatch_destroy(b);
    json_decref(facts);
    return rc;
}
