/*
 * store.c - the run history in RocksDB (see store.h; the byte layout is in
 * docs/storage.md, which the store's files must agree with): opening and
 * closing the database and its column families.
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
 * A full disk: RocksDB turns a failed write into a background error and
 * stops writing; its SstFileManager polls the free space every 5 s and,
 * once there is a write buffer's worth (tune_options keeps that at
 * 1 MiB), flushes the memtables to a new WAL file and takes writes again.
 * The store counts the writes that fail meanwhile, and keeps a memtable
 * from being empty so that the recovery does move to a new WAL
 * (store_db.c says why). RocksDB's own
 * info log (the LOG file) gets nothing: in RocksDB 7.8 a
 * failed write to it (ENOSPC) marks its file writer broken, and the next
 * line RocksDB logs, such as the warning about that very error, asserts
 * (WritableFileWriter::AssertFalseAndGetStatusForPrevError) and aborts the
 * process; hostd logs the store's errors itself.
 *
 * The rest of the store is split by idea (store_internal.h lists the
 * files); opening read-write stores the ends of runs left in pending files
 * (store_pending.c) and then calls store_mark_incomplete() (store_run.c),
 * so that runs a killed hostd left "running" are marked before anyone
 * reads them. Fault injection (store_db.c): opening is one
 * fallible step, and each allocation here another.
 */
#include "store/store_internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/plugin.h"
#include "observatory/stage.h"

static const char *const cf_names[CF_COUNT] = {"runs", "series", "histograms", "meta", "profiles"};
/* Families from CF_OPTIONAL on came with later layouts: a read-write open
 * creates them, a read-only one (which cannot) goes on without them. */
#define CF_OPTIONAL CF_PROFILES

/* New options for the store and its readers (store_close destroys them):
 * bounded memtables, write-ahead log and block cache, no preallocation and
 * no RocksDB info log. */
static void tune_options(rocksdb_options_t *opts);

static rocksdb_options_t *options_create(void)
{
    rocksdb_options_t *base = rocksdb_options_create(), *opts = rocksdb_options_create();
    char *err = NULL;
    /* No preallocation: RocksDB 7.8 reserves 1.1 write buffers of disk
     * blocks per new SST file and does not always give the rest back, so a
     * small store took 2-3 times its bytes on disk, and a nearly full disk
     * filled sooner. Only an options string reaches this one from C. */
    rocksdb_get_options_from_string(base, "allow_fallocate=false", opts, &err);
    rocksdb_free(err); /* then RocksDB's default, which works too */
    rocksdb_options_destroy(base);
    tune_options(opts);
    return opts;
}

static void tune_options(rocksdb_options_t *opts)
{
    /* HEADER_LEVEL, the highest RocksDB can write into its OPTIONS file:
     * nothing reaches the LOG file (its plain logger writes even headers at
     * INFO level, below this one); see the top of this file for why. */
    rocksdb_options_set_info_log_level(opts, 5);
    rocksdb_options_set_keep_log_file_num(opts, 2);
    /* Bounded memory: small memtables (also the free space RocksDB waits
     * for before it writes again after a full disk), a cap on them all and
     * on the WAL, which makes the rarely written families flush too, so
     * that old WAL files go and memory stays flat in a long run. */
    rocksdb_options_set_write_buffer_size(opts, 1u << 20);
    rocksdb_options_set_max_write_buffer_number(opts, 2);
    rocksdb_options_set_db_write_buffer_size(opts, 4u << 20);
    rocksdb_options_set_max_total_wal_size(opts, 8u << 20);
    rocksdb_options_set_max_open_files(opts, 256);
    rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
    rocksdb_cache_t *cache = rocksdb_cache_create_lru(4u << 20);
    rocksdb_block_based_options_set_block_cache(t, cache);
    rocksdb_options_set_block_based_table_factory(opts, t);
    /* The options hold their own references. */
    rocksdb_cache_destroy(cache);
    rocksdb_block_based_options_destroy(t);
}

/* The process holding RocksDB's lock on the store at `path`, or 0 when none
 * (or this process) does: RocksDB locks <path>/LOCK with a POSIX record
 * lock, whose owner F_GETLK names. */
static pid_t lock_holder(const char *path)
{
    char lock[4096];
    if (snprintf(lock, sizeof lock, "%s/LOCK", path) >= (int)sizeof lock)
        return 0;
    int fd = open(lock, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    pid_t pid = fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK ? fl.l_pid : 0;
    close(fd);
    return pid;
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
    char **all = store_xmalloc((n_existing + CF_COUNT + 1) * sizeof(char *));
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
    store *s = store_xmalloc(sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "store '%s': out of memory", path);
        return OBS_ENOMEM;
    }
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->err_lock, NULL);
    s->readonly = (flags & STORE_READONLY) != 0;
    s->path = strdup(path);
    s->opts = options_create();
    s->wo = rocksdb_writeoptions_create();
    s->wo_sync = rocksdb_writeoptions_create();
    s->ro = rocksdb_readoptions_create();
    s->wo_nowal = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(s->wo_nowal, 1);
    if (!s->path)
        goto fail;
    rocksdb_writeoptions_set_sync(s->wo_sync, 1);
    rocksdb_options_set_create_if_missing(s->opts, (flags & STORE_CREATE) != 0);
    rocksdb_options_set_create_missing_column_families(s->opts, !s->readonly);

    if ((rc = family_list(path, s->opts, s->readonly, &names, &n_names)) < 0)
        goto fail;
    cf_opts = store_xmalloc(n_names * sizeof(*cf_opts));
    s->handles = store_xmalloc(n_names * sizeof(*s->handles));
    if (!cf_opts || !s->handles) {
        rc = OBS_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n_names; i++)
        cf_opts[i] = s->opts;
    if (store_fault_hit()) {
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
        pid_t holder = lock_holder(path);
        if (holder > 0)
            snprintf(err, errlen,
                     "store '%s' is in use by process %ld (another hostd writing to it?): stop "
                     "it, or give this run another store (--store DIR or store.path)",
                     path, (long)holder);
        else
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
        rc = store_batch_write(s, b, 1, "write layout version");
        rocksdb_writebatch_destroy(b);
        if (rc == 0) {
            store_pending_import(s);
            rc = store_mark_incomplete(s);
        }
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
    rocksdb_writeoptions_destroy(s->wo_nowal);
    rocksdb_options_destroy(s->opts);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->err_lock);
    free(s->path);
    free(s);
}

const char *store_path(const store *s)
{
    return s->path;
}
