/*
 * sink_rocksdb - a sink that stores every record in a RocksDB database.
 *
 * Each batch becomes one WriteBatch, written atomically (fsync'ed first when
 * `sync` is true). The value is the record's bytes; the key is chosen by the
 * `key` parameter:
 *   "seq"          8 bytes: big-endian seq, so a scan returns records in
 *                  stream order and gaps or duplicates are easy to check;
 *   "symbol_time"  24 bytes: sym[8] | big-endian ts | big-endian seq for
 *                  records in the market layouts (binary tick or window,
 *                  plugins/common/market.h), so one symbol is one prefix scan
 *                  in time order; any other record gets eight zero bytes
 *                  in place of the symbol and its intended time as ts.
 * tests/integration/dbread.c (obs-dbread) reads such a directory back.
 * flush() flushes the memtables to SST files; fini closes the database.
 *
 * A failed write (a full disk) counts its records on the error counter
 * "write_error" and consume returns OBS_EIO; the run goes on. The first
 * failure of a streak is logged, then a count every 10 s, and a line when
 * writes work again. RocksDB stops writing after such an error; the sink
 * closes the database and opens it again once the disk has
 * `write_buffer_size` bytes free, to be on a new WAL file
 * (may_write_again says why). RocksDB's LOG file gets nothing: in
 * RocksDB 7.8 the line it logs after a failed write to that file aborts
 * the process (core/store/store.c has the details).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <rocksdb/c.h>

#include <observatory/stage.h>

#include "market.h"

enum { KEY_SYMBOL_TIME, KEY_SEQ };

static const obs_param_desc sink_rocksdb_params[] = {
    {.name = "path", .type = OBS_PARAM_STRING, .default_value = NULL, .min = 1, .max = 4096,
     .help = "database directory (created with its parents if missing)"},
    {.name = "sync", .type = OBS_PARAM_BOOL, .default_value = "false", .min = 1, .max = 0,
     .help = "fsync the write-ahead log before each batch write returns"},
    {.name = "key", .type = OBS_PARAM_STRING, .default_value = "symbol_time", .min = 1, .max = 16,
     .help = "key layout: symbol_time (sym | ts | seq, big-endian) or seq (big-endian seq)"},
    {.name = "write_buffer_size", .type = OBS_PARAM_INT, .default_value = "67108864",
     .min = 65536, .max = 1073741824,
     .help = "memtable bytes before a flush; also the free space the sink waits for before "
             "it writes again after a full disk"},
};

/* How often a streak of failed writes is summed up in the log. */
#define STREAK_LOG_NS 10000000000ull

typedef struct sink_rocksdb {
    const obs_host *host;
    int key_kind;
    int c_write_error;
    rocksdb_options_t *opts;
    rocksdb_writeoptions_t *wopts;
    rocksdb_flushoptions_t *fopts;
    rocksdb_writebatch_t *batch;
    rocksdb_t *db;
    /* The current streak of failed writes (consume runs on one thread);
     * while it lasts, writes wait for a new WAL (may_write_again). */
    uint64_t streak_writes, streak_records, streak_logged_ns, probe_ns;
    uint64_t write_buffer_size;
    char *path; /* the database directory (host->alloc) */
} sink_rocksdb;

static inline void put_be64(uint8_t *p, uint64_t v)
{
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
}

/* Writes the key of `r` at k (24 bytes available) and returns its length. */
static size_t make_key(const sink_rocksdb *s, const obs_record *r, uint8_t *k)
{
    if (s->key_kind == KEY_SEQ) {
        put_be64(k, r->seq);
        return 8;
    }
    if (r->data && market_record_kind(r->data, r->len)) {
        memcpy(k, r->data + 32, 8);
        put_be64(k + 8, market_load_u64(r->data));
    } else {
        memset(k, 0, 8);
        put_be64(k + 8, r->t_intended_ns);
    }
    put_be64(k + 16, r->seq);
    return 24;
}

/* Creates the parent directories of `path` (RocksDB creates only the last
 * component). Returns 0 or OBS_EIO / OBS_ENOMEM; the copy of the path is
 * freed before returning. */
static int make_parents(const obs_host *host, const char *path)
{
    size_t n = strlen(path);
    char *copy = host->alloc(host, n + 1);
    if (!copy)
        return OBS_ENOMEM;
    memcpy(copy, path, n + 1);
    int rc = OBS_OK;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
            host->log(host, OBS_LOG_ERROR, "sink_rocksdb: cannot create '%s': %s", copy,
                      strerror(errno));
            rc = OBS_EIO;
            break;
        }
        *p = '/';
    }
    host->free(host, copy);
    return rc;
}

static void sink_rocksdb_fini(void *instance)
{
    sink_rocksdb *s = instance;
    if (!s)
        return;
    if (s->db)
        rocksdb_close(s->db);
    if (s->batch)
        rocksdb_writebatch_destroy(s->batch);
    if (s->fopts)
        rocksdb_flushoptions_destroy(s->fopts);
    if (s->path)
        s->host->free(s->host, s->path);
    if (s->wopts)
        rocksdb_writeoptions_destroy(s->wopts);
    if (s->opts)
        rocksdb_options_destroy(s->opts);
    s->host->free(s->host, s);
}

/* Opens (creating if needed) the database at `path`. The instance owns the
 * handle until fini. */
static int sink_rocksdb_init(const obs_host *host, const obs_params *params, void **instance)
{
    const obs_param_value *p_path = obs_param_get(params, "path");
    const obs_param_value *p_sync = obs_param_get(params, "sync");
    const obs_param_value *p_key = obs_param_get(params, "key");
    const obs_param_value *p_wbs = obs_param_get(params, "write_buffer_size");
    if (!p_path || !p_path->s || !p_path->s[0] || !p_sync || !p_key || !p_key->s || !p_wbs) {
        host->log(host, OBS_LOG_ERROR, "sink_rocksdb: parameter 'path' is required");
        return OBS_EINVAL;
    }
    int key_kind;
    if (strcmp(p_key->s, "symbol_time") == 0) {
        key_kind = KEY_SYMBOL_TIME;
    } else if (strcmp(p_key->s, "seq") == 0) {
        key_kind = KEY_SEQ;
    } else {
        host->log(host, OBS_LOG_ERROR,
                  "sink_rocksdb: parameter 'key' is '%s'; allowed: symbol_time, seq", p_key->s);
        return OBS_EINVAL;
    }

    sink_rocksdb *s = host->alloc(host, sizeof *s);
    if (!s)
        return OBS_ENOMEM;
    memset(s, 0, sizeof *s);
    s->host = host;
    s->key_kind = key_kind;
    int rc = OBS_ENOMEM;
    s->c_write_error = host->counter_register(host, "write_error", OBS_COUNTER_ERROR,
                                              "records lost in failed RocksDB writes");
    if (s->c_write_error < 0) {
        rc = s->c_write_error;
        goto fail;
    }
    s->opts = rocksdb_options_create();
    s->wopts = rocksdb_writeoptions_create();
    s->fopts = rocksdb_flushoptions_create();
    s->batch = rocksdb_writebatch_create();
    s->write_buffer_size = (uint64_t)p_wbs->i;
    s->path = host->alloc(host, strlen(p_path->s) + 1);
    if (!s->opts || !s->wopts || !s->fopts || !s->batch || !s->path)
        goto fail;
    memcpy(s->path, p_path->s, strlen(p_path->s) + 1);
    rocksdb_options_set_create_if_missing(s->opts, 1);
    rocksdb_options_set_info_log_level(s->opts, 5); /* HEADER_LEVEL: nothing in LOG */
    rocksdb_options_set_write_buffer_size(s->opts, (size_t)p_wbs->i);
    rocksdb_writeoptions_set_sync(s->wopts, p_sync->i != 0);
    rocksdb_flushoptions_set_wait(s->fopts, 1);

    if ((rc = make_parents(host, p_path->s)) != OBS_OK)
        goto fail;
    rc = OBS_ENOMEM;
    char *err = NULL;
    s->db = rocksdb_open(s->opts, p_path->s, &err);
    if (err) {
        host->log(host, OBS_LOG_ERROR, "sink_rocksdb: cannot open '%s': %s", p_path->s, err);
        rocksdb_free(err);
        s->db = NULL;
        rc = OBS_EIO;
        goto fail;
    }
    *instance = s;
    return OBS_OK;

fail:
    sink_rocksdb_fini(s);
    return rc;
}

/* Counts the records of a batch that could not be written and logs the
 * first failure of a streak, then a count every STREAK_LOG_NS. */
static void lost(sink_rocksdb *s, uint32_t n_records, const char *why)
{
    uint64_t now = s->host->now_ns();
    s->host->counter_add(s->host, s->c_write_error, n_records);
    if (s->streak_writes++ == 0) {
        s->host->log(s->host, OBS_LOG_ERROR,
                     "sink_rocksdb: write of %u records failed: %s; the run goes on: lost "
                     "records are counted (write_error) and summed up every 10 s",
                     n_records, why);
        s->streak_logged_ns = now;
    } else if (now - s->streak_logged_ns >= STREAK_LOG_NS) {
        s->host->log(s->host, OBS_LOG_ERROR,
                     "sink_rocksdb: %" PRIu64 " writes (%" PRIu64 " records) failed so far (%s)",
                     s->streak_writes, s->streak_records + n_records, why);
        s->streak_logged_ns = now;
    }
    s->streak_records += n_records;
}

/* After a failed write: may the sink write again? The failed write left
 * the WAL's writer broken, and in RocksDB 7.8 the next append to it aborts
 * the process; RocksDB's own recovery moves to a new WAL only when the
 * memtable holds something, which it need not, and it cannot be asked to
 * from C. So once the disk has write_buffer_size bytes free, the sink
 * closes the database and opens it again (a new WAL; the old one is
 * replayed up to its last whole record). Checked at most once a second;
 * until it works, batches are counted as lost. */
static int may_write_again(sink_rocksdb *s)
{
    uint64_t now = s->host->now_ns();
    if (now - s->probe_ns < 1000000000u)
        return 0;
    s->probe_ns = now;
    struct statvfs vfs;
    if (statvfs(s->path, &vfs) != 0 ||
        (uint64_t)vfs.f_bavail * vfs.f_frsize < s->write_buffer_size)
        return 0;
    if (s->db)
        rocksdb_close(s->db);
    char *err = NULL;
    s->db = rocksdb_open(s->opts, s->path, &err);
    if (err) {
        rocksdb_free(err);
        s->db = NULL;
        return 0;
    }
    return 1;
}

/* Writes the whole batch as one WriteBatch. Returns 0 or OBS_EIO. */
static int sink_rocksdb_consume(void *instance, const obs_batch *in)
{
    sink_rocksdb *s = instance;
    if (in->n_records == 0)
        return OBS_OK;
    if ((s->streak_writes || !s->db) && !may_write_again(s)) {
        lost(s, in->n_records, "waiting for free space");
        return OBS_EIO;
    }
    rocksdb_writebatch_clear(s->batch);
    for (uint32_t i = 0; i < in->n_records; i++) {
        const obs_record *r = &in->records[i];
        uint8_t key[24];
        size_t klen = make_key(s, r, key);
        rocksdb_writebatch_put(s->batch, (const char *)key, klen,
                               r->len ? (const char *)r->data : "", r->len);
    }
    char *err = NULL;
    rocksdb_write(s->db, s->wopts, s->batch, &err);
    rocksdb_writebatch_clear(s->batch);
    if (err) {
        lost(s, in->n_records, err);
        rocksdb_free(err);
        return OBS_EIO;
    }
    if (s->streak_writes) {
        s->host->log(s->host, OBS_LOG_INFO,
                     "sink_rocksdb: writing again after %" PRIu64 " failed writes (%" PRIu64
                     " records lost)",
                     s->streak_writes, s->streak_records);
        s->streak_writes = s->streak_records = 0;
    }
    return OBS_OK;
}

/* Flushes memtables to disk (waiting for it). Returns 0 or OBS_EIO. */
static int sink_rocksdb_flush(void *instance, obs_out *out)
{
    (void)out;
    sink_rocksdb *s = instance;
    char *err = NULL;
    if (!s->db)
        return OBS_EIO; /* closed after a full disk, not open again yet */
    rocksdb_flush(s->db, s->fopts, &err);
    if (err) {
        s->host->log(s->host, OBS_LOG_ERROR, "sink_rocksdb: flush failed: %s", err);
        rocksdb_free(err);
        return OBS_EIO;
    }
    return OBS_OK;
}

static const obs_stage_desc sink_rocksdb_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_SINK,
    .name = "sink_rocksdb",
    .version = "1.0.0",
    .description = "writes each batch as one RocksDB WriteBatch (value = record bytes)",
    .params = sink_rocksdb_params,
    .n_params = sizeof sink_rocksdb_params / sizeof sink_rocksdb_params[0],
    .init = sink_rocksdb_init,
    .consume = sink_rocksdb_consume,
    .flush = sink_rocksdb_flush,
    .fini = sink_rocksdb_fini,
};

OBS_DECLARE_STAGE(sink_rocksdb_desc)
