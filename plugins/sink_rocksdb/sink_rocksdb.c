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
 * flush() flushes the memtables to SST files; fini closes the database. A
 * failed write is logged, its records are counted on the error counter
 * "write_error", and consume returns OBS_EIO.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

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
};

typedef struct sink_rocksdb {
    const obs_host *host;
    int key_kind;
    int c_write_error;
    rocksdb_options_t *opts;
    rocksdb_writeoptions_t *wopts;
    rocksdb_flushoptions_t *fopts;
    rocksdb_writebatch_t *batch;
    rocksdb_t *db;
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
    if (!p_path || !p_path->s || !p_path->s[0] || !p_sync || !p_key || !p_key->s) {
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
    if (!s->opts || !s->wopts || !s->fopts || !s->batch)
        goto fail;
    rocksdb_options_set_create_if_missing(s->opts, 1);
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

/* Writes the whole batch as one WriteBatch. Returns 0 or OBS_EIO. */
static int sink_rocksdb_consume(void *instance, const obs_batch *in)
{
    sink_rocksdb *s = instance;
    if (in->n_records == 0)
        return OBS_OK;
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
        s->host->log(s->host, OBS_LOG_ERROR, "sink_rocksdb: write of %u records failed: %s",
                     in->n_records, err);
        rocksdb_free(err);
        s->host->counter_add(s->host, s->c_write_error, in->n_records);
        return OBS_EIO;
    }
    return OBS_OK;
}

/* Flushes memtables to disk (waiting for it). Returns 0 or OBS_EIO. */
static int sink_rocksdb_flush(void *instance, obs_out *out)
{
    (void)out;
    sink_rocksdb *s = instance;
    char *err = NULL;
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
