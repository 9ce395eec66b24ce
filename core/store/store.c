/*
 * store.c - the run history in RocksDB (see store.h; the byte layout is in
 * docs/storage.md, which this file must agree with).
 *
 * Column families: "runs" (one JSON document of facts per run, its report,
 * and a small binary progress record), "series" (one point per metric per
 * snapshot), "histograms" (one encoded histogram per snapshot), "profiles"
 * (one encoded profile per continuous-mode window) and "meta" (the layout
 * version). Every key starts with the run id in big-endian, so
 * RocksDB's bytewise order is run order, then name, then time: one run's
 * series is one prefix scan, and one metric's points are one range scan.
 *
 * Durability: every write goes through the write-ahead log. Snapshots are
 * written without fsync (the data is in the kernel once rocksdb_write()
 * returns, so it survives kill -9 of hostd, not a power cut); the begin and
 * the end of a run are written with fsync. Each logical write (a run's
 * facts, a whole snapshot, the end of a run with its report) is one
 * WriteBatch, so a crash never leaves half of one behind.
 *
 * Fault injection: store_fail_after(n) makes the n-th fallible step from
 * then on (an allocation, a database write, or opening the database) and
 * every later one fail, the way host_fail_alloc_after() does for plugins.
 */
#include "store.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "host.h"
#include "json_u64.h"
#include "observatory/stage.h"
#include "plugin.h"

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

/* Tags after the run id in the "runs" family (docs/storage.md). */
#define TAG_INFO 'i'
#define TAG_PROGRESS 'p'
#define TAG_REPORT 'r'
/* Events of a run (swaps, experiments): key run_id | 'e' | be64 wall ns |
 * be64 sequence, value JSON. */
#define TAG_EVENT 'e'

/* Histogram value encoding version (first byte of each value). */
#define HIST_FORMAT 1
#define HIST_HEADER_LEN (1 + 5 * 8 + 4)
#define HIST_BUCKET_LEN (2 + 8)

enum { CF_RUNS, CF_SERIES, CF_HISTOGRAMS, CF_META, CF_PROFILES, CF_COUNT };
static const char *const cf_names[CF_COUNT] = {"runs", "series", "histograms", "meta", "profiles"};
/* Families from CF_OPTIONAL on came with later layouts: a read-write open
 * creates them, a read-only one (which cannot) goes on without them. */
#define CF_OPTIONAL CF_PROFILES

struct store {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_writeoptions_t *wo;      /* snapshots: WAL, no fsync */
    rocksdb_writeoptions_t *wo_sync; /* run begin and end: WAL + fsync */
    rocksdb_readoptions_t *ro;
    rocksdb_column_family_handle_t *cf[CF_COUNT];
    rocksdb_column_family_handle_t **handles; /* every family opened, ours included */
    size_t n_handles;
    int readonly;
    char *path;
    pthread_mutex_t lock; /* run ids and read-modify-write of a run's facts */
};

/* ------------------------------------------------------------------------ */
/* Fault injection                                                           */

static _Atomic uint64_t fault_countdown; /* 0: off; 1: failing */

void store_fail_after(uint64_t n)
{
    atomic_store(&fault_countdown, n);
}

/* True when this fallible step must fail. */
static int fault_hit(void)
{
    uint64_t c = atomic_load(&fault_countdown);
    while (c > 1) {
        if (atomic_compare_exchange_weak(&fault_countdown, &c, c - 1))
            return 0;
    }
    return c == 1;
}

static void *xmalloc(size_t n)
{
    return fault_hit() ? NULL : malloc(n);
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static void put_be64(char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (char)(v & 0xff);
}

static uint64_t get_be64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | (uint8_t)p[i];
    return v;
}

static void put_be32(char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (char)(v & 0xff);
}

static uint32_t get_be32(const char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | (uint8_t)p[i];
    return v;
}

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ISO 8601 UTC with milliseconds, e.g. 2026-11-27T12:31:38.123Z. */
static void iso_time(uint64_t ns, char *buf, size_t len)
{
    time_t sec = (time_t)(ns / 1000000000u);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t k = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, len - k, ".%03uZ", (unsigned)(ns / 1000000u % 1000u));
}

static void log_db_error(const store *s, const char *what, char *err)
{
    host_log(NULL, OBS_LOG_ERROR, "store '%s': %s: %s", s->path, what, err ? err : "failed");
    rocksdb_free(err);
}

static void info_key(char key[9], uint64_t run_id, char tag)
{
    put_be64(key, run_id);
    key[8] = tag;
}

/* Writes a batch; fault injection counts it as one step. */
static int batch_write(store *s, rocksdb_writebatch_t *b, int sync, const char *what)
{
    if (s->readonly)
        return OBS_EINVAL;
    if (fault_hit()) {
        host_log(NULL, OBS_LOG_ERROR, "store '%s': %s: injected write failure", s->path, what);
        return OBS_EIO;
    }
    char *err = NULL;
    rocksdb_write(s->db, sync ? s->wo_sync : s->wo, b, &err);
    if (err) {
        log_db_error(s, what, err);
        return OBS_EIO;
    }
    return 0;
}

/* Reads one value of the "runs" family as JSON. Returns 0, OBS_ENOENT, or
 * OBS_EIO. *out is a new reference. */
static int get_json(store *s, uint64_t run_id, char tag, json_t **out)
{
    char key[9], *err = NULL;
    size_t len = 0;
    info_key(key, run_id, tag);
    char *v = rocksdb_get_cf(s->db, s->ro, s->cf[CF_RUNS], key, sizeof(key), &len, &err);
    if (err) {
        log_db_error(s, "read run", err);
        return OBS_EIO;
    }
    if (!v)
        return OBS_ENOENT;
    json_error_t jerr;
    *out = json_loadb(v, len, 0, &jerr);
    rocksdb_free(v);
    if (!*out) {
        host_log(NULL, OBS_LOG_ERROR, "store '%s': run %" PRIu64 " '%c': bad JSON: %s", s->path,
                 run_id, tag, jerr.text);
        return OBS_EIO;
    }
    return 0;
}

/* Progress record of a run: first and last snapshot time, number of
 * snapshots. Zeros when none was stored. */
typedef struct progress {
    uint64_t first_ns, last_ns, n;
} progress;

static int get_progress(store *s, uint64_t run_id, progress *pr)
{
    char key[9], *err = NULL;
    size_t len = 0;
    memset(pr, 0, sizeof(*pr));
    info_key(key, run_id, TAG_PROGRESS);
    char *v = rocksdb_get_cf(s->db, s->ro, s->cf[CF_RUNS], key, sizeof(key), &len, &err);
    if (err) {
        log_db_error(s, "read progress", err);
        return OBS_EIO;
    }
    if (v && len == 24) {
        pr->first_ns = get_be64(v);
        pr->last_ns = get_be64(v + 8);
        pr->n = get_be64(v + 16);
    }
    rocksdb_free(v);
    return 0;
}

static int put_json(rocksdb_writebatch_t *b, store *s, uint64_t run_id, char tag, const json_t *j)
{
    char key[9];
    char *text = json_dumps(j, JSON_COMPACT);
    if (!text || fault_hit()) {
        free(text);
        return OBS_ENOMEM;
    }
    info_key(key, run_id, tag);
    rocksdb_writebatch_put_cf(b, s->cf[CF_RUNS], key, sizeof(key), text, strlen(text));
    free(text);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Open and close                                                            */

/* Marks every run whose facts still say "running" as incomplete: its hostd
 * died without store_run_end(). Called with the database open read-write,
 * before anyone else can use it. */
static int mark_incomplete(store *s)
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
            uint64_t run_id = get_be64(k);
            progress pr;
            char when[40];
            uint64_t now = wall_ns();
            rc = get_progress(s, run_id, &pr);
            iso_time(now, when, sizeof(when));
            json_object_set_new(info, "status", json_string("incomplete"));
            json_object_set_new(info, "clean", json_false());
            /* The last snapshot is the best known end. */
            json_object_set_new(info, "end_ns", pr.n ? json_u64(pr.last_ns) : json_null());
            json_object_set_new(info, "marked_incomplete_at", json_string(when));
            if (rc == 0)
                rc = put_json(b, s, run_id, TAG_INFO, info);
            n_marked++;
        }
        json_decref(info);
        if (rc < 0)
            break;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (err) {
        log_db_error(s, "scan runs", err);
        rc = OBS_EIO;
    }
    rocksdb_iter_destroy(it);
    if (rc == 0 && n_marked)
        rc = batch_write(s, b, 1, "mark interrupted runs incomplete");
    if (rc == 0 && n_marked)
        host_log(NULL, OBS_LOG_INFO, "store '%s': %zu interrupted run(s) marked incomplete",
                 s->path, n_marked);
    rocksdb_writebatch_destroy(b);
    return rc;
}

/* Fills the list of families to open: every one the database has (so that a
 * newer layout with more families still opens) plus ours (read-only: plus
 * the required ones, so that a store older than the optional ones opens). */
static int family_list(const char *path, rocksdb_options_t *opts, int readonly, char ***names,
                       size_t *n)
{
    char *err = NULL;
    size_t n_existing = 0;
    char **existing = rocksdb_list_column_families(opts, path, &n_existing, &err);
    rocksdb_free(err); /* a new database has none: not an error here */
    char **all = xmalloc((n_existing + CF_COUNT + 1) * sizeof(char *));
    if (!all) {
        if (existing)
            rocksdb_list_column_families_destroy(existing, n_existing);
        return OBS_ENOMEM;
    }
    size_t k = 0;
    all[k++] = strdup("default");
    for (size_t i = 0; i < n_existing; i++)
        if (strcmp(existing[i], "default") != 0)
            all[k++] = strdup(existing[i]);
    for (int c = 0; c < CF_COUNT; c++) {
        int have = 0;
        for (size_t i = 0; i < k; i++)
            have |= all[i] && strcmp(all[i], cf_names[c]) == 0;
        if (!have && (!readonly || c < CF_OPTIONAL))
            all[k++] = strdup(cf_names[c]);
    }
    if (existing)
        rocksdb_list_column_families_destroy(existing, n_existing);
    int rc = 0;
    for (size_t i = 0; i < k; i++)
        if (!all[i])
            rc = OBS_ENOMEM;
    *names = all;
    *n = k;
    return rc;
}

int store_open_flags(const char *path, int flags, store **out, char *err, size_t errlen)
{
    int rc = OBS_ENOMEM;
    char **names = NULL, *dberr = NULL;
    size_t n_names = 0;
    const rocksdb_options_t **cf_opts = NULL;
    *out = NULL;
    store *s = xmalloc(sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "store '%s': out of memory", path);
        return OBS_ENOMEM;
    }
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->readonly = (flags & STORE_READONLY) != 0;
    s->path = strdup(path);
    s->opts = rocksdb_options_create();
    s->wo = rocksdb_writeoptions_create();
    s->wo_sync = rocksdb_writeoptions_create();
    s->ro = rocksdb_readoptions_create();
    if (!s->path)
        goto fail;
    rocksdb_writeoptions_set_sync(s->wo_sync, 1);
    rocksdb_options_set_create_if_missing(s->opts, (flags & STORE_CREATE) != 0);
    rocksdb_options_set_create_missing_column_families(s->opts, !s->readonly);
    rocksdb_options_set_keep_log_file_num(s->opts, 4);
    rocksdb_options_set_max_open_files(s->opts, 256);

    if ((rc = family_list(path, s->opts, s->readonly, &names, &n_names)) < 0)
        goto fail;
    cf_opts = xmalloc(n_names * sizeof(*cf_opts));
    s->handles = xmalloc(n_names * sizeof(*s->handles));
    if (!cf_opts || !s->handles) {
        rc = OBS_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n_names; i++)
        cf_opts[i] = s->opts;
    if (fault_hit()) {
        snprintf(err, errlen, "store '%s': injected open failure", path);
        rc = OBS_EIO;
        goto out_err;
    }
    if (s->readonly)
        s->db = rocksdb_open_for_read_only_column_families(s->opts, path, (int)n_names,
                                                           (const char *const *)names, cf_opts,
                                                           s->handles, 0, &dberr);
    else
        s->db = rocksdb_open_column_families(
            s->opts, path, (int)n_names, (const char *const *)names, cf_opts, s->handles, &dberr);
    if (dberr || !s->db) {
        snprintf(err, errlen, "store '%s': %s", path, dberr ? dberr : "cannot open");
        rocksdb_free(dberr);
        rc = OBS_EIO;
        goto out_err;
    }
    s->n_handles = n_names;
    for (size_t i = 0; i < n_names; i++)
        for (int c = 0; c < CF_COUNT; c++)
            if (strcmp(names[i], cf_names[c]) == 0)
                s->cf[c] = s->handles[i];
    for (int c = 0; c < CF_COUNT; c++)
        if (!s->cf[c] && !(s->readonly && c >= CF_OPTIONAL)) {
            /* Read-only opening of a database without our families. */
            snprintf(err, errlen,
                     "store '%s': column family '%s' missing: not an Observatory store", path,
                     cf_names[c]);
            rc = OBS_EINVAL;
            goto out_err;
        }
    if (!s->readonly) {
        static const char fmt_key[] = "layout";
        static const char fmt_val[] = "observatory-store 1";
        rocksdb_writebatch_t *b = rocksdb_writebatch_create();
        rocksdb_writebatch_put_cf(b, s->cf[CF_META], fmt_key, strlen(fmt_key), fmt_val,
                                  strlen(fmt_val));
        rc = batch_write(s, b, 1, "write layout version");
        rocksdb_writebatch_destroy(b);
        if (rc == 0)
            rc = mark_incomplete(s);
        if (rc < 0) {
            snprintf(err, errlen, "store '%s': cannot mark interrupted runs (%s)", path,
                     obs_strerror(rc));
            goto out_err;
        }
    }
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    free(cf_opts);
    *out = s;
    return 0;

fail:
    snprintf(err, errlen, "store '%s': out of memory", path);
out_err:
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    free(cf_opts);
    store_close(s);
    return rc;
}

int store_open(const char *path, store **out, char *err, size_t errlen)
{
    return store_open_flags(path, STORE_CREATE, out, err, errlen);
}

void store_close(store *s)
{
    if (!s)
        return;
    if (s->db) {
        for (size_t i = 0; i < s->n_handles; i++)
            rocksdb_column_family_handle_destroy(s->handles[i]);
        rocksdb_close(s->db);
    }
    free(s->handles);
    rocksdb_readoptions_destroy(s->ro);
    rocksdb_writeoptions_destroy(s->wo);
    rocksdb_writeoptions_destroy(s->wo_sync);
    rocksdb_options_destroy(s->opts);
    pthread_mutex_destroy(&s->lock);
    free(s->path);
    free(s);
}

const char *store_path(const store *s)
{
    return s->path;
}

/* ------------------------------------------------------------------------ */
/* Runs                                                                      */

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
            *id = get_be64(k);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        log_db_error(s, "find last run", err);
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
    iso_time(now, when, sizeof(when));
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
    facts = run_facts(last + 1, info, wall_ns());
    if (!facts) {
        rc = OBS_ENOMEM;
        goto out;
    }
    b = rocksdb_writebatch_create();
    if ((rc = put_json(b, s, last + 1, TAG_INFO, facts)) < 0)
        goto out;
    if ((rc = batch_write(s, b, 1, "begin run")) < 0)
        goto out;
    *run_id = last + 1;
out:
    pthread_mutex_unlock(&s->lock);
    if (b)
        rocksdb_writebatch_destroy(b);
    json_decref(facts);
    return rc;
}

int store_run_end(store *s, uint64_t run_id, int clean, json_t *report)
{
    json_t *facts = NULL;
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    pthread_mutex_lock(&s->lock);
    int rc = get_json(s, run_id, TAG_INFO, &facts);
    if (rc < 0)
        goto out;
    char when[40];
    uint64_t now = wall_ns();
    iso_time(now, when, sizeof(when));
    if (json_object_set_new(facts, "status", json_string(clean ? "complete" : "failed")) < 0 ||
        json_object_set_new(facts, "clean", json_boolean(clean)) < 0 ||
        json_object_set_new(facts, "end_ns", json_u64(now)) < 0 ||
        json_object_set_new(facts, "end", json_string(when)) < 0) {
        rc = OBS_ENOMEM;
        goto out;
    }
    if ((rc = put_json(b, s, run_id, TAG_INFO, facts)) < 0)
        goto out;
    if (report && (rc = put_json(b, s, run_id, TAG_REPORT, report)) < 0)
        goto out;
    rc = batch_write(s, b, 1, "end run");
out:
    pthread_mutex_unlock(&s->lock);
    rocksdb_writebatch_destroy(b);
    json_decref(facts);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Snapshots                                                                 */

/* Appends run_id | name | 0x00 | t to `b` with an 8-byte big-endian value. */
static int add_point(rocksdb_writebatch_t *b, store *s, uint64_t run_id, const char *name,
                     uint64_t t_ns, uint64_t value)
{
    size_t nlen = strlen(name);
    char *key = xmalloc(8 + nlen + 1 + 8);
    if (!key)
        return OBS_ENOMEM;
    char val[8];
    put_be64(key, run_id);
    memcpy(key + 8, name, nlen + 1);
    put_be64(key + 8 + nlen + 1, t_ns);
    put_be64(val, value);
    rocksdb_writebatch_put_cf(b, s->cf[CF_SERIES], key, 8 + nlen + 1 + 8, val, sizeof(val));
    free(key);
    return 0;
}

static int add_histogram(rocksdb_writebatch_t *b, store *s, uint64_t run_id, const char *name,
                         uint64_t t_ns, const histogram *h)
{
    if (!h)
        return 0;
    uint32_t n_buckets = 0;
    for (uint32_t i = 0; i < HISTOGRAM_N_BUCKETS; i++)
        n_buckets += atomic_load_explicit(&h->counts[i], memory_order_relaxed) != 0;
    size_t nlen = strlen(name), klen = 8 + nlen + 1 + 8;
    size_t vlen = HIST_HEADER_LEN + (size_t)n_buckets * HIST_BUCKET_LEN;
    char *key = xmalloc(klen), *val = xmalloc(vlen);
    if (!key || !val) {
        free(key);
        free(val);
        return OBS_ENOMEM;
    }
    put_be64(key, run_id);
    memcpy(key + 8, name, nlen + 1);
    put_be64(key + 8 + nlen + 1, t_ns);
    char *p = val;
    *p++ = HIST_FORMAT;
    put_be64(p, histogram_count(h)), p += 8;
    put_be64(p, histogram_overflow(h)), p += 8;
    put_be64(p, histogram_min_ns(h)), p += 8;
    put_be64(p, histogram_max_ns(h)), p += 8;
    put_be64(p, histogram_sum_ns(h)), p += 8;
    put_be32(p, n_buckets), p += 4;
    for (uint32_t i = 0; i < HISTOGRAM_N_BUCKETS; i++) {
        uint64_t c = atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (!c)
            continue;
        p[0] = (char)(i >> 8);
        p[1] = (char)(i & 0xff);
        put_be64(p + 2, c);
        p += HIST_BUCKET_LEN;
    }
    rocksdb_writebatch_put_cf(b, s->cf[CF_HISTOGRAMS], key, klen, val, vlen);
    free(key);
    free(val);
    return 0;
}

/* Adds the points of one stage sample. */
static int add_stage(rocksdb_writebatch_t *b, store *s, uint64_t run_id, uint64_t t,
                     const stage_sample *st)
{
    char name[3 * SNAPSHOT_NAME_MAX + 32];
    int rc = 0;
#define P(field)                                                                                   \
    do {                                                                                           \
        snprintf(name, sizeof(name), "stage/%s/%s", st->name, #field);                             \
        if ((rc = add_point(b, s, run_id, name, t, st->field)) < 0)                                \
            return rc;                                                                             \
    } while (0)
    P(records_in);
    P(records_out);
    P(bytes_in);
    P(bytes_out);
    P(batches_in);
    P(batches_out);
    P(callback_errors);
    P(errors);
    P(callback_wall_ns);
    P(callback_cpu_ns);
    P(thread_cpu_ns);
    P(allocs);
    P(frees);
    P(alloc_bytes);
    P(blocked_ns);
    P(ring_occupancy);
    P(ring_capacity);
    if (strcmp(st->kind, "generator") == 0) {
        P(records_scheduled);
        P(late_records);
        P(idle_ns);
    }
#undef P
    for (uint32_t c = 0; c < st->n_counters; c++) {
        snprintf(name, sizeof(name), "stage/%s/counter/%s", st->name, st->counters[c].name);
        if ((rc = add_point(b, s, run_id, name, t, st->counters[c].value)) < 0)
            return rc;
    }
    static const char *const hname[3] = {"service", "lag", "latency"};
    const histogram *hs[3] = {st->service, st->lag, st->latency};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "stage/%s/%s", st->name, hname[i]);
        if ((rc = add_histogram(b, s, run_id, name, t, hs[i])) < 0)
            return rc;
    }
    return 0;
}

int store_put_snapshot(store *s, uint64_t run_id, const obs_snapshot *snap)
{
    int rc = 0;
    uint64_t t = snap->t_wall_ns;
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    if ((rc = add_point(b, s, run_id, "pipeline/state", t, (uint64_t)snap->state)) < 0)
        goto out;
    for (size_t i = 0; i < snap->n_stages; i++)
        if ((rc = add_stage(b, s, run_id, t, &snap->stages[i])) < 0)
            goto out;
    /* The progress record goes in the same batch: it never claims a point
     * that is not there. Only the recorder writes it, so no lock is needed
     * for the read-modify-write. */
    progress pr;
    if ((rc = get_progress(s, run_id, &pr)) < 0)
        goto out;
    if (pr.n == 0 || t < pr.first_ns)
        pr.first_ns = t;
    if (t > pr.last_ns)
        pr.last_ns = t;
    pr.n++;
    char key[9], val[24];
    info_key(key, run_id, TAG_PROGRESS);
    put_be64(val, pr.first_ns);
    put_be64(val + 8, pr.last_ns);
    put_be64(val + 16, pr.n);
    rocksdb_writebatch_put_cf(b, s->cf[CF_RUNS], key, sizeof(key), val, sizeof(val));
    rc = batch_write(s, b, 0, "store snapshot");
out:
    rocksdb_writebatch_destroy(b);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Readers                                                                   */

/* Adds the progress figures to a run's facts. */
static void add_progress(json_t *facts, const progress *pr)
{
    json_object_set_new(facts, "n_snapshots", json_u64(pr->n));
    json_object_set_new(facts, "first_snapshot_ns", pr->n ? json_u64(pr->first_ns) : json_null());
    json_object_set_new(facts, "last_snapshot_ns", pr->n ? json_u64(pr->last_ns) : json_null());
}

int store_runs_json(store *s, json_t **out)
{
    int rc = 0;
    json_t *arr = json_array();
    *out = NULL;
    if (!arr || fault_hit()) {
        json_decref(arr);
        return OBS_ENOMEM;
    }
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_RUNS]);
    for (rocksdb_iter_seek_to_last(it); rocksdb_iter_valid(it); rocksdb_iter_prev(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen != 9 || k[8] != TAG_INFO)
            continue;
        uint64_t run_id = get_be64(k);
        const char *v = rocksdb_iter_value(it, &vlen);
        json_t *facts = json_loadb(v, vlen, 0, NULL);
        if (!facts) {
            host_log(NULL, OBS_LOG_ERROR, "store '%s': run %" PRIu64 ": bad JSON, skipped", s->path,
                     run_id);
            continue;
        }
        /* The listing stays small: the config text is in store_run_json. */
        json_object_del(facts, "config_text");
        progress pr;
        if ((rc = get_progress(s, run_id, &pr)) < 0) {
            json_decref(facts);
            break;
        }
        add_progress(facts, &pr);
        char rkey[9];
        size_t rlen;
        char *err = NULL;
        info_key(rkey, run_id, TAG_REPORT);
        char *rv = rocksdb_get_cf(s->db, s->ro, s->cf[CF_RUNS], rkey, sizeof(rkey), &rlen, &err);
        rocksdb_free(err);
        json_object_set_new(facts, "has_report", json_boolean(rv != NULL));
        rocksdb_free(rv);
        json_array_append_new(arr, facts);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        log_db_error(s, "list runs", err);
        rc = OBS_EIO;
    }
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

static int scan(store *s, int cf, const char *lo, size_t lo_len, const char *hi, size_t hi_len,
                int (*fn)(const char *k, size_t klen, const char *v, size_t vlen, void *arg),
                void *arg);

static _Atomic uint64_t event_seq;

int store_put_event(store *s, uint64_t run_id, uint64_t t_wall_ns, const json_t *event)
{
    char key[25];
    char *text = json_dumps(event, JSON_COMPACT);
    if (!text || fault_hit()) {
        free(text);
        return OBS_ENOMEM;
    }
    info_key(key, run_id, TAG_EVENT);
    put_be64(key + 9, t_wall_ns);
    put_be64(key + 17, atomic_fetch_add(&event_seq, 1));
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_writebatch_put_cf(b, s->cf[CF_RUNS], key, sizeof(key), text, strlen(text));
    free(text);
    int rc = batch_write(s, b, 0, "event");
    rocksdb_writebatch_destroy(b);
    return rc;
}

static int collect_event(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    if (klen != 25)
        return 0;
    json_t *e = json_loadb(v, vlen, 0, NULL);
    if (e) {
        if (!json_object_get(e, "t_ns"))
            json_object_set_new(e, "t_ns", json_u64(get_be64(k + 9)));
        json_array_append_new(arg, e);
    }
    return 0;
}

int store_events_json(store *s, uint64_t run_id, json_t **out)
{
    char lo[9], hi[9];
    info_key(lo, run_id, TAG_EVENT);
    info_key(hi, run_id, TAG_EVENT + 1);
    json_t *arr = json_array();
    if (!arr)
        return OBS_ENOMEM;
    int rc = scan(s, CF_RUNS, lo, sizeof(lo), hi, sizeof(hi), collect_event, arr);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

int store_run_json(store *s, uint64_t run_id, json_t **out)
{
    json_t *facts = NULL, *report = NULL;
    *out = NULL;
    int rc = get_json(s, run_id, TAG_INFO, &facts);
    if (rc < 0)
        return rc;
    rc = get_json(s, run_id, TAG_REPORT, &report);
    if (rc < 0 && rc != OBS_ENOENT) {
        json_decref(facts);
        return rc;
    }
    json_object_set_new(facts, "report", report ? report : json_null());
    progress pr;
    if ((rc = get_progress(s, run_id, &pr)) < 0) {
        json_decref(facts);
        return rc;
    }
    add_progress(facts, &pr);
    json_t *events = NULL;
    if (store_events_json(s, run_id, &events) == 0)
        json_object_set_new(facts, "events", events);
    *out = facts;
    return 0;
}

/* Does a run exist? 0, OBS_ENOENT or OBS_EIO. */
static int run_exists(store *s, uint64_t run_id)
{
    json_t *facts = NULL;
    int rc = get_json(s, run_id, TAG_INFO, &facts);
    json_decref(facts);
    return rc;
}

/* Calls `fn` for each key of family `cf` in [lo, hi) (bytewise), stopping
 * when it returns nonzero. Returns 0 or OBS_EIO. */
static int scan(store *s, int cf, const char *lo, size_t lo_len, const char *hi, size_t hi_len,
                int (*fn)(const char *k, size_t klen, const char *v, size_t vlen, void *arg),
                void *arg)
{
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, hi, hi_len);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[cf]);
    for (rocksdb_iter_seek(it, lo, lo_len); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        if (fn(k, klen, v, vlen, arg))
            break;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (err) {
        log_db_error(s, "scan", err);
        return OBS_EIO;
    }
    return 0;
}

static int series_point(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    json_t *arr = arg;
    if (klen < 8 + 1 + 8 || vlen != 8)
        return 0;
    json_array_append_new(
        arr, json_pack("[o, o]", json_u64(get_be64(k + klen - 8)), json_u64(get_be64(v))));
    return 0;
}

int store_series_json(store *s, uint64_t run_id, const char *metric, uint64_t from_ns,
                      uint64_t to_ns, json_t **out)
{
    *out = NULL;
    int rc = run_exists(s, run_id);
    if (rc < 0)
        return rc;
    size_t nlen = strlen(metric), klen = 8 + nlen + 1 + 8;
    char *lo = xmalloc(klen), *hi = xmalloc(klen);
    json_t *arr = json_array();
    if (!lo || !hi || !arr) {
        rc = OBS_ENOMEM;
        goto out;
    }
    put_be64(lo, run_id);
    memcpy(lo + 8, metric, nlen + 1);
    memcpy(hi, lo, 8 + nlen + 1);
    put_be64(lo + 8 + nlen + 1, from_ns);
    size_t hi_len = klen;
    if (to_ns == UINT64_MAX) {
        /* Everything after the separator: bump it to 0x01. */
        hi[8 + nlen] = 1;
        hi_len = 8 + nlen + 1;
    } else {
        put_be64(hi + 8 + nlen + 1, to_ns);
    }
    if ((rc = scan(s, CF_SERIES, lo, klen, hi, hi_len, series_point, arr)) < 0)
        goto out;
    *out = arr;
    arr = NULL;
out:
    json_decref(arr);
    free(lo);
    free(hi);
    return rc;
}

int store_metrics_json(store *s, uint64_t run_id, json_t **out)
{
    *out = NULL;
    int rc = run_exists(s, run_id);
    if (rc < 0)
        return rc;
    json_t *arr = json_array();
    if (!arr || fault_hit()) {
        json_decref(arr);
        return OBS_ENOMEM;
    }
    char prefix[8];
    put_be64(prefix, run_id);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_SERIES]);
    rocksdb_iter_seek(it, prefix, sizeof(prefix));
    /* One seek per metric: after reading a name, jump past all its points
     * by seeking to run | name | 0x01. */
    while (rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < 8 + 1 + 8 || memcmp(k, prefix, 8) != 0)
            break;
        size_t nlen = klen - 8 - 1 - 8;
        char *next = xmalloc(8 + nlen + 1);
        if (!next) {
            rc = OBS_ENOMEM;
            break;
        }
        memcpy(next, k, 8 + nlen);
        next[8 + nlen] = 1;
        json_array_append_new(arr, json_stringn(k + 8, nlen));
        rocksdb_iter_seek(it, next, 8 + nlen + 1);
        free(next);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        log_db_error(s, "list metrics", err);
        rc = OBS_EIO;
    }
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* Decodes a histogram value into h (zeroed first). OBS_EIO when malformed. */
static int hist_decode(const char *v, size_t vlen, histogram *h)
{
    memset(h, 0, sizeof(*h));
    if (vlen < HIST_HEADER_LEN || (uint8_t)v[0] != HIST_FORMAT)
        return OBS_EIO;
    uint32_t n = get_be32(v + 41);
    if (vlen != HIST_HEADER_LEN + (size_t)n * HIST_BUCKET_LEN)
        return OBS_EIO;
    atomic_store(&h->n_values, get_be64(v + 1));
    atomic_store(&h->n_overflow, get_be64(v + 9));
    atomic_store(&h->min_ns, get_be64(v + 17));
    atomic_store(&h->max_ns, get_be64(v + 25));
    atomic_store(&h->sum_ns, get_be64(v + 33));
    const char *p = v + HIST_HEADER_LEN;
    for (uint32_t i = 0; i < n; i++, p += HIST_BUCKET_LEN) {
        uint32_t idx = (uint32_t)(uint8_t)p[0] << 8 | (uint8_t)p[1];
        if (idx >= HISTOGRAM_N_BUCKETS)
            return OBS_EIO;
        atomic_store(&h->counts[idx], get_be64(p + 2));
    }
    return 0;
}

int store_histogram_get(store *s, uint64_t run_id, const char *name, uint64_t at_ns, histogram *h,
                        uint64_t *t_ns)
{
    size_t nlen = strlen(name), klen = 8 + nlen + 1 + 8;
    char *key = xmalloc(klen);
    if (!key)
        return OBS_ENOMEM;
    put_be64(key, run_id);
    memcpy(key + 8, name, nlen + 1);
    put_be64(key + 8 + nlen + 1, at_ns);
    int rc = OBS_ENOENT;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_HISTOGRAMS]);
    rocksdb_iter_seek_for_prev(it, key, klen);
    if (rocksdb_iter_valid(it)) {
        size_t kl, vlen;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl == klen && memcmp(k, key, 8 + nlen + 1) == 0) {
            const char *v = rocksdb_iter_value(it, &vlen);
            rc = hist_decode(v, vlen, h);
            if (rc == 0 && t_ns)
                *t_ns = get_be64(k + 8 + nlen + 1);
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    free(key);
    if (err) {
        log_db_error(s, "read histogram", err);
        rc = OBS_EIO;
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Profiles                                                                  */

int store_put_profile(store *s, uint64_t run_id, uint64_t start_ns, uint64_t end_ns,
                      const void *blob, size_t len)
{
    if (end_ns < start_ns || (!blob && len) || !s->cf[CF_PROFILES])
        return OBS_EINVAL;
    char key[16];
    put_be64(key, run_id);
    put_be64(key + 8, start_ns);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_writebatch_put_cf(b, s->cf[CF_PROFILES], key, sizeof(key), blob ? blob : "", len);
    int rc = batch_write(s, b, 0, "store profile window");
    rocksdb_writebatch_destroy(b);
    return rc;
}

typedef struct profile_scan {
    int (*fn)(void *ctx, uint64_t start_ns, const void *blob, size_t len);
    void *ctx;
    int rc; /* what fn returned when it stopped the scan */
} profile_scan;

static int profile_window(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    profile_scan *ps = arg;
    if (klen != 16)
        return 0;
    ps->rc = ps->fn(ps->ctx, get_be64(k + 8), v, vlen);
    return ps->rc != 0;
}

int store_profiles_scan(store *s, uint64_t run_id, uint64_t from_ns, uint64_t to_ns,
                        int (*fn)(void *ctx, uint64_t start_ns, const void *blob, size_t len),
                        void *ctx)
{
    int rc = run_exists(s, run_id);
    if (rc < 0)
        return rc;
    if (!s->cf[CF_PROFILES] || from_ns >= to_ns)
        return 0;
    char lo[16], hi[16];
    size_t hi_len = sizeof(hi);
    put_be64(lo, run_id);
    put_be64(lo + 8, from_ns);
    if (to_ns == UINT64_MAX) {
        /* Every window of the run: up to the next run's prefix. A run id of
         * UINT64_MAX has no next prefix; its 8-byte prefix followed by
         * 0xff.. bounds all but a window starting at UINT64_MAX ns. */
        if (run_id == UINT64_MAX) {
            put_be64(hi, run_id);
            put_be64(hi + 8, UINT64_MAX);
        } else {
            put_be64(hi, run_id + 1);
            hi_len = 8;
        }
    } else {
        put_be64(hi, run_id);
        put_be64(hi + 8, to_ns);
    }
    profile_scan ps = {.fn = fn, .ctx = ctx};
    rc = scan(s, CF_PROFILES, lo, sizeof(lo), hi, hi_len, profile_window, &ps);
    return rc < 0 ? rc : ps.rc;
}
