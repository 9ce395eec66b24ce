/*
 * observatory/stage.h - the Observatory stage plugin ABI.
 *
 * This is the only header a plugin author needs. A plugin is a shared object
 * that exports exactly one symbol, OBS_STAGE_ENTRY ("obs_stage_entry"), a
 * function returning a pointer to a constant descriptor (obs_stage_desc). The
 * descriptor says which ABI the plugin was built against, what kind of stage
 * it implements (generator, transform or sink), which parameters it accepts,
 * and where its callbacks are. The host (hostd) checks the descriptor before
 * calling anything, validates the user's parameters against the declared
 * ones, and passes a table of host services (obs_host) to init: a plugin never
 * links against hostd.
 *
 * Data moves in batches. A batch is a vector of records; a record is a
 * borrowed byte span with a sequence number and the time at which it was
 * intended to be sent (CLOCK_MONOTONIC nanoseconds). A callback may read the
 * input batch only for the duration of the call. Output is written into a
 * host-owned obs_out: either bytes copied into its arena (obs_out_emit,
 * obs_out_reserve + obs_out_commit) or an input record passed through
 * untouched, without copying (obs_out_pass). A record may carry a key, a
 * 32-bit hash of what it is about (a symbol, a device, a service): a stage
 * run as several parallel instances with `partition: key` gives every
 * record of one key to the same instance, in order.
 *
 * Compatibility rules: structs begin with size/version fields, use
 * fixed-width types and only ever grow at the end. A change that breaks an
 * existing field bumps OBS_ABI_MAJOR; the host refuses other majors. Adding a
 * field at the end bumps OBS_ABI_MINOR; the host accepts older minors as long
 * as the struct is at least as large as the fields it needs.
 */
#ifndef OBSERVATORY_STAGE_H
#define OBSERVATORY_STAGE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "OBST" in ASCII: first field of every descriptor. */
#define OBS_STAGE_MAGIC 0x4f425354u
#define OBS_ABI_MAJOR 1
#define OBS_ABI_MINOR 2

/* Name of the single exported symbol (type obs_stage_entry_fn). */
#define OBS_STAGE_ENTRY obs_stage_entry
#define OBS_STAGE_ENTRY_NAME "obs_stage_entry"

#if defined(__GNUC__)
#define OBS_EXPORT __attribute__((visibility("default")))
#define OBS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define OBS_EXPORT
#define OBS_PRINTF(a, b)
#endif

/* Return codes. Callbacks return 0 on success or one of these (negative).
 * OBS_DONE (positive) is returned by a generator that has no more data. */
enum {
    OBS_OK = 0,
    OBS_DONE = 1,
    OBS_EINVAL = -1,  /* invalid argument or parameter */
    OBS_ENOMEM = -2,  /* allocation failed or a configured bound reached */
    OBS_EIO = -3,     /* an I/O error (file, database) */
    OBS_EABI = -4,    /* ABI mismatch */
    OBS_ENOENT = -5,  /* no such file, symbol, stage or plugin */
    OBS_ESTATE = -6,  /* state handover refused */
    OBS_EPLUGIN = -7, /* generic plugin failure */
    OBS_ECONFIG = -8, /* configuration error */
    OBS_EAGAIN = -9,  /* try again later */
};

typedef enum obs_kind {
    OBS_KIND_GENERATOR = 1,
    OBS_KIND_TRANSFORM = 2,
    OBS_KIND_SINK = 3,
} obs_kind;

/* ---------------------------------------------------------------- records */

/* One record. `data` is borrowed: valid only while the batch that holds the
 * record is being passed to the callback.
 *
 * `key` (ABI 1.1; the reserved, always-0 `flags` of 1.0) is the record's
 * key hash, 0 for none: obs_key_hash() of what the record is about, set by
 * obs_out_set_key() after emitting it. Plugins built for 1.0 leave it 0. A
 * passed-through record keeps its key; a record a transform emits anew
 * gets the key of the input record with the same seq from the host, when a
 * stage downstream is partitioned by key (so a parser need not know keys). */
typedef struct obs_record {
    const uint8_t *data;
    uint32_t len;
    uint32_t key;           /* key hash (ABI 1.1), 0: none */
    uint64_t seq;           /* assigned by the generator stage, never reused */
    uint64_t t_intended_ns; /* CLOCK_MONOTONIC time it was meant to be sent */
} obs_record;

/* A read-only batch of records, borrowed for one callback. */
typedef struct obs_batch {
    const obs_record *records;
    uint32_t n_records;
    uint32_t reserved;
} obs_batch;

/* Output of a callback: a record vector over a host-owned arena. Plugins use
 * the inline functions below and never touch the fields directly except to
 * read n_records. The host grows the arena and record vector on demand up to
 * its configured bounds (grow() returns nonzero when a bound is hit, and then
 * the emit functions fail with OBS_ENOMEM). */
typedef struct obs_out obs_out;
struct obs_out {
    obs_record *records;
    uint32_t n_records;
    uint32_t cap_records;
    uint8_t *arena;
    uint64_t arena_used;
    uint64_t arena_cap;
    uint32_t n_passed; /* records passed through by reference */
    uint32_t reserved;
    /* Host slow path: make room for n_records more records and n_bytes more
     * arena bytes (rounded up to 8). Returns 0 or OBS_ENOMEM. May move
     * `arena`: the host then re-points the data of records already committed
     * into the arena (passed-through records are left alone), but a pointer
     * returned by obs_out_reserve is invalidated by any later reserve, emit
     * or pass call. */
    int (*grow)(obs_out *out, uint32_t n_records, uint64_t n_bytes);
    void *host_private;
};

/* Returns a pointer to `len` writable bytes in the output arena, or NULL when
 * the configured bound is reached. Finish with obs_out_commit(). */
static inline uint8_t *obs_out_reserve(obs_out *out, uint64_t len)
{
    /* Records start 8-byte aligned, so room is checked for the rounded length. */
    uint64_t need = (len + 7u) & ~(uint64_t)7u;
    if ((out->n_records == out->cap_records || out->arena_cap - out->arena_used < need) &&
        out->grow(out, 1, len) != 0)
        return NULL;
    return out->arena + out->arena_used;
}

/* Appends a record whose `len` bytes were written at the pointer that the last
 * obs_out_reserve() returned (len may be smaller than what was reserved). */
static inline void obs_out_commit(obs_out *out, uint64_t len, uint64_t seq, uint64_t t_intended_ns)
{
    obs_record *r = &out->records[out->n_records++];
    r->data = out->arena + out->arena_used;
    r->len = (uint32_t)len;
    r->key = 0;
    r->seq = seq;
    r->t_intended_ns = t_intended_ns;
    out->arena_used += (len + 7u) & ~(uint64_t)7u;
}

/* Copies `len` bytes into the arena as a new record. Returns 0 or OBS_ENOMEM. */
static inline int obs_out_emit(obs_out *out, const void *data, uint64_t len, uint64_t seq,
                               uint64_t t_intended_ns)
{
    uint8_t *p = obs_out_reserve(out, len);
    if (!p)
        return OBS_ENOMEM;
    if (len)
        memcpy(p, data, len);
    obs_out_commit(out, len, seq, t_intended_ns);
    return OBS_OK;
}

/* Sets the key hash of the record emitted last (ABI 1.1); see obs_record.
 * Call only after a successful emit or commit. */
static inline void obs_out_set_key(obs_out *out, uint32_t key)
{
    out->records[out->n_records - 1].key = key;
}

/* The key hash of `len` bytes (FNV-1a, 32 bits), never 0 (0 means "no
 * key"): stable across runs, hosts and plugins, so two plugins that key
 * records by the same bytes agree (ABI 1.1). */
static inline uint32_t obs_key_hash(const void *data, size_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h ? h : 1u;
}

/* Passes an input record downstream without copying its bytes. Only valid for
 * a record of the batch currently given to process(); the host keeps that
 * batch alive until the output has been consumed. Returns 0 or OBS_ENOMEM. */
static inline int obs_out_pass(obs_out *out, const obs_record *in)
{
    if (out->n_records == out->cap_records && out->grow(out, 1, 0) != 0)
        return OBS_ENOMEM;
    out->records[out->n_records++] = *in;
    out->n_passed++;
    return OBS_OK;
}

/* ------------------------------------------------------------- parameters */

typedef enum obs_param_type {
    OBS_PARAM_INT = 1,    /* int64; min/max apply */
    OBS_PARAM_DOUBLE = 2, /* double; min/max apply */
    OBS_PARAM_BOOL = 3,   /* true/false */
    OBS_PARAM_STRING = 4, /* UTF-8 string; min/max bound its length when max > 0 */
} obs_param_type;

/* A declared parameter. `default_value` is written as it would be in YAML
 * ("100", "0.5", "true", "prices") or NULL when the parameter is required. */
typedef struct obs_param_desc {
    const char *name;
    uint32_t type; /* obs_param_type */
    uint32_t reserved;
    const char *default_value;
    double min, max; /* inclusive range; ignored when min > max */
    const char *help;
} obs_param_desc;

/* A validated parameter value, given to init in declaration order, so a plugin
 * may index obs_params.values by the position of its declaration. */
typedef struct obs_param_value {
    const char *name;
    uint32_t type;
    uint32_t is_default; /* 1 when the user did not set it */
    int64_t i;           /* INT, and BOOL as 0/1 */
    double d;            /* DOUBLE (also set for INT) */
    const char *s;       /* STRING; also the text as written for every type */
} obs_param_value;

typedef struct obs_params {
    const obs_param_value *values;
    uint32_t n_values;
    uint32_t reserved;
} obs_params;

/* Looks a parameter up by name; NULL if not declared. */
static inline const obs_param_value *obs_param_get(const obs_params *p, const char *name)
{
    for (uint32_t i = 0; i < p->n_values; i++)
        if (strcmp(p->values[i].name, name) == 0)
            return &p->values[i];
    return NULL;
}

/* ---------------------------------------------------------- host services */

enum { OBS_LOG_ERROR = 0, OBS_LOG_WARN = 1, OBS_LOG_INFO = 2, OBS_LOG_DEBUG = 3 };

/* Counter kinds: an error counter is reported as an error reason of the stage. */
enum { OBS_COUNTER_PLAIN = 0, OBS_COUNTER_ERROR = 1 };

/* Host services, one table per stage instance, valid from init until fini
 * returns. All functions are thread-safe for calls from the instance's own
 * stage thread; log is also safe from threads the plugin starts. A plugin
 * built against a later minor must check struct_size before it calls a
 * service that an older host may not have. */
typedef struct obs_host obs_host;
struct obs_host {
    uint32_t struct_size;
    uint16_t abi_major, abi_minor;
    const char *stage_name;  /* the stage's name in the pipeline */
    const char *plugin_path; /* the .so this instance was loaded from */
    uint64_t seed;           /* per-stage seed derived from the run's seed */
    uint32_t batch_size;     /* configured records per batch */
    uint32_t reserved;

    void (*log)(const obs_host *h, int level, const char *fmt, ...) OBS_PRINTF(3, 4);
    /* Registers a named counter (kind OBS_COUNTER_*), returns its id (>= 0) or
     * a negative error. Call from init. Names: [a-z0-9_]+. */
    int (*counter_register)(const obs_host *h, const char *name, int kind, const char *help);
    void (*counter_add)(const obs_host *h, int id, uint64_t delta);
    /* CLOCK_MONOTONIC in nanoseconds, the clock of t_intended_ns. */
    uint64_t (*now_ns)(void);
    /* Accounted allocation, attributed to this stage. */
    void *(*alloc)(const obs_host *h, size_t size);
    void *(*realloc)(const obs_host *h, void *p, size_t size);
    void (*free)(const obs_host *h, void *p);
    void *host_private;

    /* ---- ABI 1.2: check struct_size >= OBS_HOST_SIZE_1_2 before use. */

    /* CLOCK_REALTIME minus CLOCK_MONOTONIC, taken once when the run
     * started: t_intended_ns + wall_offset_ns is the intended time as
     * wall-clock nanoseconds since the epoch (how intended times cross
     * processes), and wall - wall_offset_ns brings one back. */
    int64_t wall_offset_ns;
    /* Adds time the callback spent waiting for something outside the
     * pipeline that is slower than this stage (a server's flow control, a
     * full remote queue): reported as the stage's blocked time, like a wait
     * on a full ring. Stage thread only. */
    void (*blocked_add)(const obs_host *h, uint64_t ns);
    /* A sink that makes records durable asynchronously: hold() from
     * consume() keeps the batch being consumed counted as in flight (so a
     * source upstream is not told it was delivered, see
     * obs_stage_desc.delivered) until release(token) is called, from any
     * thread. Returns a token (0 when there is nothing to hold: no source
     * upstream), which release(0) accepts. */
    uint64_t (*hold)(const obs_host *h);
    void (*release)(const obs_host *h, uint64_t token);
};

/* struct_size of an obs_host that has the 1.2 services. */
#define OBS_HOST_SIZE_1_2 (offsetof(obs_host, release) + sizeof(void (*)(void)))

/* ------------------------------------------------------------- generators */

/* What the host asks a generator for: exactly n_records records, to be sent
 * at the given intended times. The generator emits them in order with
 * seq = first_seq + i and t_intended_ns = t_intended_ns[i].
 *
 * A source generator (OBS_STAGE_SOURCE, ABI 1.2) is asked differently:
 * t_intended_ns is NULL and first_seq 0; it emits up to n_records records
 * that arrived from outside (another process, a queue) with their own seq
 * and t_intended_ns (CLOCK_MONOTONIC, see obs_host.wall_offset_ns), waits
 * at most ~100 ms when none has arrived (returning OBS_OK with none), and
 * returns OBS_DONE at the end of its stream. `ticket` names the batch: the
 * host calls desc->delivered(instance, ticket) when every record of it has
 * left the pipeline (see obs_stage_desc.delivered). */
typedef struct obs_gen_request {
    uint32_t n_records;
    uint32_t reserved;
    uint64_t first_seq;
    const uint64_t *t_intended_ns;
    uint64_t ticket; /* ABI 1.2, source generators only (0 otherwise) */
} obs_gen_request;

/* --------------------------------------------------------------- the stage */

typedef struct obs_stage_desc {
    uint32_t magic; /* OBS_STAGE_MAGIC */
    uint16_t abi_major, abi_minor;
    uint32_t struct_size; /* sizeof(obs_stage_desc) as the plugin was built */
    uint32_t kind;        /* obs_kind */
    const char *name;     /* plugin name, e.g. "xf_json_fast" */
    const char *version;  /* plugin version, e.g. "1.2.0" */
    const char *description;
    const obs_param_desc *params;
    uint32_t n_params;
    uint32_t reserved;

    /* Creates an instance. `host` and `params` stay valid until fini. */
    int (*init)(const obs_host *host, const obs_params *params, void **instance);
    /* Generator: fill `out` as `req` asks. Return 0, OBS_DONE at end of data
     * (the records already emitted are sent), or a negative error. */
    int (*generate)(void *instance, const obs_gen_request *req, obs_out *out);
    /* Transform: read `in`, write results into `out` (maybe none). A record
     * that cannot be processed is counted on an error counter and skipped;
     * a negative return counts the whole batch as failed. A record that
     * aggregates several inputs takes the seq and t_intended_ns of the last
     * input that contributed to it. */
    int (*process)(void *instance, const obs_batch *in, obs_out *out);
    /* Sink: consume `in`. */
    int (*consume)(void *instance, const obs_batch *in);
    /* End of stream: emit what is held back (transforms may write into
     * `out`; sinks and generators get out == NULL) and make it durable. */
    int (*flush)(void *instance, obs_out *out);
    /* Frees the instance. Called after the stage thread has ended, possibly
     * on another thread: do not rely on thread-locals set by callbacks. */
    void (*fini)(void *instance);
    /* Optional state handover for hot swaps. export_state returns a buffer
     * allocated with host->alloc (the host frees it); import_state reads it. */
    int (*export_state)(void *instance, void **buf, size_t *len);
    int (*import_state)(void *instance, const void *buf, size_t len);

    /* ---- ABI 1.2 */
    uint32_t flags; /* OBS_STAGE_* */
    uint32_t reserved2;
    /* Source generators: every record of the batch generated with `ticket`
     * has left the pipeline: consumed by the sinks (and released by those
     * that hold(), see obs_host), dropped by a stage, or taken into a
     * stage's state (a window that has not emitted yet). The place to
     * acknowledge the records to where they came from. Called once per
     * ticket, from any pipeline thread, before fini. */
    void (*delivered)(void *instance, uint64_t ticket);
} obs_stage_desc;

/* obs_stage_desc.flags. A source is a generator whose records come from
 * outside the process with their own seq and intended times (a link from
 * another hostd); the host passes them on unchanged instead of stamping
 * them, and follows every batch to its end to call `delivered`. */
#define OBS_STAGE_SOURCE 1u

typedef const obs_stage_desc *(*obs_stage_entry_fn)(void);

/* Declares the entry point. Usage, at file scope of the plugin:
 *   OBS_DECLARE_STAGE(my_desc)
 * where my_desc is a `static const obs_stage_desc`. */
#define OBS_DECLARE_STAGE(desc)                                                                    \
    OBS_EXPORT const obs_stage_desc *OBS_STAGE_ENTRY(void);                                        \
    OBS_EXPORT const obs_stage_desc *OBS_STAGE_ENTRY(void)                                         \
    {                                                                                              \
        return &(desc);                                                                            \
    }

/* Fills the header fields of a descriptor initialiser. */
#define OBS_STAGE_HEADER                                                                           \
    .magic = OBS_STAGE_MAGIC, .abi_major = OBS_ABI_MAJOR, .abi_minor = OBS_ABI_MINOR,              \
    .struct_size = sizeof(obs_stage_desc)

#ifdef __cplusplus
}
#endif
#endif /* OBSERVATORY_STAGE_H */
