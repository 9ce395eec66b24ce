/*
 * obs_profiler.h - the stack-sampling profiler (library obsprofiler).
 *
 * The profiler samples threads that attach themselves, and nothing else. An
 * attached thread gets a per-thread CPU-time timer (timer_create with
 * CLOCK_THREAD_CPUTIME_ID, delivered to that thread with SIGEV_THREAD_ID);
 * the SIGPROF handler unwinds the interrupted stack (libunwind, or a walk of
 * the frame-pointer chain) into a ring preallocated for that thread and
 * tags the sample with the thread's current tag (a set of key=value labels
 * the thread chose, e.g. stage=parse plugin=xf_json_fast version=1.0.0
 * variant=A). A collector thread drains the rings, deduplicates stacks,
 * maps each address to a module of the module registry and, when a window
 * closes, resolves symbols into an obs_prof_profile. Profiles render as
 * folded stacks, interactive SVG flame graphs (plain and differential),
 * JSON and pprof protobuf, and serialise to a compact blob for storage.
 *
 * The library knows nothing about pipelines: it knows threads to sample, a
 * tag per sample, and modules (loaded objects) to resolve addresses in.
 *
 * Errors are negative OBS_E* codes (observatory/stage.h). Unless said
 * otherwise every function is thread-safe; only obs_prof_set_tag() may be
 * called at high rates (it is one atomic store).
 */
#ifndef OBS_PROFILER_H
#define OBS_PROFILER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ lifecycle */

enum obs_prof_unwinder {
    OBS_PROF_UNWIND_LIBUNWIND = 0, /* unw_backtrace: follows DWARF CFI; default */
    OBS_PROF_UNWIND_FP = 1,        /* frame-pointer chain: ~20x cheaper, needs -fno-omit-frame-pointer */
};

/* Backends, as bits: asking for both is an error (they share SIGPROF). */
enum {
    OBS_PROF_BACKEND_NATIVE = 1,     /* this library's sampler; default */
    OBS_PROF_BACKEND_GPERFTOOLS = 2, /* gperftools' ProfilerStartWithOptions, for google-pprof */
};

#define OBS_PROF_MAX_DEPTH 128 /* frames kept per sample */
#define OBS_PROF_MAX_LABELS 5  /* labels per tag: stage, plugin, version, variant, instance */

typedef struct obs_prof_config {
    uint32_t hz;          /* samples per second of thread CPU time; 0: 99. Above the kernel's
                             tick rate (250 here) samples arrive as overruns and are weighted. */
    uint32_t unwinder;    /* enum obs_prof_unwinder */
    uint32_t backends;    /* OBS_PROF_BACKEND_* bits; 0: native */
    uint32_t max_depth;   /* 0: 64; at most OBS_PROF_MAX_DEPTH */
    uint32_t ring_slots;  /* samples buffered per thread; 0: 256 (a power of two is used) */
    uint32_t max_threads; /* threads attached at once; 0: 64 */
    uint32_t drain_ms;    /* collector period; 0: 20 */
    uint32_t max_request_seconds; /* bound of /profile?seconds=N; 0: 60 */
    uint32_t measure_handler;     /* benchmarks: time each handler run (two vDSO clock reads
                                     more per sample), reported as obs_prof_stats.handler_ns */
} obs_prof_config;

/* Initialises the process-wide profiler: validates `cfg` (NULL: defaults),
 * allocates the thread table and rings, scans the objects already loaded
 * (dl_iterate_phdr: the executable, libc, ...) into the module registry and
 * starts the collector thread. Sampling starts only while a consumer (a
 * window or continuous mode) is active. Returns 0, OBS_EINVAL with `err`
 * naming what is wrong (e.g. both backends), OBS_EAGAIN if already
 * initialised, OBS_ENOMEM. */
int obs_prof_init(const obs_prof_config *cfg, char *err, size_t errlen);

/* Stops consumers, the collector and the gperftools backend, and frees
 * everything. Threads still attached stop being sampled (they may call
 * obs_prof_thread_detach() later; it is then a no-op). */
void obs_prof_shutdown(void);

/* 1 between obs_prof_init and obs_prof_shutdown. */
int obs_prof_active(void);

/* --------------------------------------------------------- threads, tags */

typedef struct obs_prof_label {
    const char *key;   /* e.g. "stage" */
    const char *value; /* e.g. "parse" */
} obs_prof_label;

/* Interns a tag (up to OBS_PROF_MAX_LABELS labels; strings are copied) and
 * returns its id in *tag. The same labels give the same id. */
int obs_prof_tag_intern(const obs_prof_label *labels, size_t n, uint32_t *tag);

/* Registers the calling thread for sampling with the given tag (labels may
 * be NULL/0: the empty tag). Allocates nothing later: the ring and the
 * timer are set up here, and libunwind is warmed up on this thread so
 * that its per-thread cache exists before the first signal. Unblocks
 * SIGPROF in this thread (detach blocks it again if it was blocked). Returns 0,
 * OBS_EAGAIN (already attached), OBS_ENOMEM (max_threads reached),
 * OBS_ESTATE (profiler not initialised), OBS_EIO (timer_create failed). */
int obs_prof_thread_attach(const obs_prof_label *labels, size_t n);

/* Changes the calling thread's tag; async-signal-safe, one atomic store.
 * A no-op on a thread that is not attached. */
void obs_prof_set_tag(uint32_t tag);

/* Unregisters the calling thread: deletes its timer; samples already taken
 * are still collected. Call before the thread exits. No-op if not attached. */
void obs_prof_thread_detach(void);

/* -------------------------------------------------------------- modules */

typedef struct obs_prof_module_info {
    const char *path;        /* the file mapped (symbols are read from it now) */
    const char *name;        /* label in frames ("name:function"); NULL: basename without ".so" */
    const uint8_t *build_id; /* GNU build-id as mapped; may be NULL */
    size_t build_id_len;
    uintptr_t start, end; /* mapped range [start, end) */
    uintptr_t load_bias;  /* add to ELF virtual addresses */
} obs_prof_module_info;

/* Adds a loaded object to the module registry and reads its ELF symbol
 * tables (.symtab, else .dynsym; a /usr/lib/debug/.build-id file when one
 * exists) from the file now, while it is known to match the mapping (a
 * build-id mismatch with the file is an error: OBS_EINVAL). Symbols are
 * kept until obs_prof_shutdown, also after obs_prof_module_retire. An
 * object the registry found by itself at the same path and address gets
 * the new name. *id (may be NULL) identifies the entry. */
int obs_prof_module_add(const obs_prof_module_info *m, uint32_t *id, char *err, size_t errlen);

/* Call before dlclose'ing a module: drains every ring synchronously, so
 * each sample already taken in it is attributed to it, then stops mapping
 * addresses to it. Its symbols stay, so profiles keep naming its functions
 * even when another object is later mapped at the same addresses. */
int obs_prof_module_retire(uint32_t id);

/* ------------------------------------------------------------- profiles */

/* A symbolised profile: stacks of frames ("module:function" or "function"),
 * tags and weights. Owned by whoever got it; free with obs_prof_profile_free. */
typedef struct obs_prof_profile obs_prof_profile;

/* Collection window. begin: samples taken from now on are counted in it
 * (and sampling is armed if it was idle). end: closes it, resolves symbols
 * and returns the profile in *out (the caller owns it); frees `w`. */
typedef struct obs_prof_window obs_prof_window;
int obs_prof_window_begin(obs_prof_window **out);
int obs_prof_window_end(obs_prof_window *w, obs_prof_profile **out);
/* Drops a window without building a profile. */
void obs_prof_window_cancel(obs_prof_window *w);

typedef struct obs_prof_profile_info {
    uint64_t start_ns, end_ns; /* CLOCK_REALTIME of the window */
    uint32_t hz;
    uint32_t unwinder;
    uint64_t n_samples;    /* signals handled (samples) */
    uint64_t weight;       /* sum of weights (1 + si_overrun each) */
    uint64_t dropped;      /* weight lost: ring full, reentry */
    uint64_t n_stacks;     /* distinct (stack, tag) entries */
} obs_prof_profile_info;

void obs_prof_profile_get_info(const obs_prof_profile *p, obs_prof_profile_info *out);
void obs_prof_profile_free(obs_prof_profile *p);

/* New profile holding only samples whose tag has every label of `match`
 * (n == 0 copies). A match value of NULL or "" matches any value. */
int obs_prof_profile_filter(const obs_prof_profile *p, const obs_prof_label *match, size_t n,
                            obs_prof_profile **out);
/* Adds src's samples into dst (windows of a time range, or two runs). */
int obs_prof_profile_merge(obs_prof_profile *dst, const obs_prof_profile *src);
/* Weight of samples having a frame equal to `frame` (leaf_only: as the
 * leaf frame). Each sample counts once however often the frame repeats. */
uint64_t obs_prof_profile_weight_of(const obs_prof_profile *p, const char *frame, int leaf_only);
/* The same, counting samples (signals) instead of weight. On a busy
 * machine the kernel may deliver one signal for many timer periods: the
 * weight share is then right on average but rests on fewer samples, and
 * the count share is the steadier estimate of the same CPU split. */
uint64_t obs_prof_profile_samples_of(const obs_prof_profile *p, const char *frame, int leaf_only);
/* Label values seen for `key` ("stage"), as a malloc'd NULL-terminated
 * array of borrowed strings (valid while p lives); free() the array. */
const char **obs_prof_profile_label_values(const obs_prof_profile *p, const char *key);

/* Storage form (continuous mode): a self-contained, versioned binary blob
 * of symbolised stacks, tags and weights. encode: *buf is malloc'd.
 * decode checks every bound (OBS_EINVAL on a malformed blob). */
int obs_prof_profile_encode(const obs_prof_profile *p, uint8_t **buf, size_t *len);
int obs_prof_profile_decode(const void *buf, size_t len, obs_prof_profile **out);

/* ------------------------------------------------------------ renderers */
/* Each writes a malloc'd buffer (*out, *len; NUL-terminated for text). */

enum { OBS_PROF_TAG_ROOT = 1 }; /* flags: put the tag as the root frame "[stage=parse ...]" */

/* flamegraph.pl's folded format: "root;child;leaf weight\n", sorted. */
int obs_prof_render_folded(const obs_prof_profile *p, unsigned flags, char **out, size_t *len);
/* Self-contained interactive SVG: hover for details, click to zoom, search. */
int obs_prof_render_svg(const obs_prof_profile *p, const char *title, unsigned flags, char **out,
                        size_t *len);
/* Differential flame graph: widths are `after`; colour is the change of each
 * frame's share of all samples from `before` to `after` (red grew, blue
 * shrank). Frames present only in `before` are not drawn (swap the
 * arguments to see them). */
int obs_prof_render_diff_svg(const obs_prof_profile *before, const obs_prof_profile *after,
                             const char *title, unsigned flags, char **out, size_t *len);
int obs_prof_render_json(const obs_prof_profile *p, char **out, size_t *len);
/* pprof's profile.proto, uncompressed (pprof reads it as is). */
int obs_prof_render_pprof(const obs_prof_profile *p, uint8_t **out, size_t *len);

/* ------------------------------------------------------------ on demand */

typedef struct obs_prof_http_response {
    int status;               /* 200, 400, 404, 409, 503 */
    const char *content_type; /* static string */
    char *body;               /* malloc'd; the caller frees */
    size_t len;
} obs_prof_http_response;

/* The /profile endpoint, independent of any HTTP library. `keys`/`values`
 * are the n query parameters (borrowed). seconds=N (1..max_request_seconds,
 * default 10), format=svg|folded|json|pprof (default svg); any other
 * parameter (stage=S, variant=V, plugin=P, ...) filters on that label.
 * Blocks for N seconds (run it on a thread of its own or a suspended
 * connection); one request at a time: others get 409 with a JSON reason.
 * Errors are JSON {"error":{"code","message"}}. Always returns 0 with
 * *resp filled, or OBS_ENOMEM. */
int obs_prof_http_profile(const char *const *keys, const char *const *values, size_t n,
                          obs_prof_http_response *resp);

/* 1 while an /profile request is collecting (its next peer would get 409). */
int obs_prof_http_busy(void);

/* Renders an existing profile (stored runs) in `format` ("svg", ...), or the
 * diff of `before` and `p` when `before` is not NULL (svg or folded,
 * folded then being "stack before after" lines as difffolded.pl writes).
 * Same response conventions. */
int obs_prof_http_render(const obs_prof_profile *p, const obs_prof_profile *before,
                         const char *format, const char *title, obs_prof_http_response *resp);

/* ----------------------------------------------------------- continuous */

/* Called on the collector thread at the end of each window with the
 * encoded profile of that window (borrowed for the call). A nonzero
 * return is counted as a failed write and the window is dropped. */
typedef int (*obs_prof_sink_fn)(void *ctx, uint64_t start_ns, uint64_t end_ns, const void *blob,
                                size_t len);

/* Starts continuous mode: consecutive windows of `window_ns` (>= 100 ms).
 * Returns OBS_EAGAIN if already on. */
int obs_prof_continuous_start(uint64_t window_ns, obs_prof_sink_fn fn, void *ctx);
/* Flushes the partial window through the sink and stops. */
void obs_prof_continuous_stop(void);

/* ------------------------------------------------------------ gperftools */

/* Starts gperftools' CPU profiler writing `path`, with a thread filter that
 * keeps only attached threads. OBS_EINVAL unless the profiler was
 * initialised with the gperftools backend; OBS_EAGAIN if running. Its rate
 * is read once per process from CPUPROFILE_FREQUENCY, which this sets from
 * cfg.hz before the first start. */
int obs_prof_gperf_start(const char *path, char *err, size_t errlen);
/* Stops and flushes the file. */
void obs_prof_gperf_stop(void);

/* --------------------------------------------------------------- stats */

typedef struct obs_prof_stats {
    uint64_t n_samples;     /* handled signals that produced a sample */
    uint64_t weight;        /* sum of 1 + si_overrun */
    uint64_t dropped;       /* weight lost to full rings */
    uint64_t in_loader;     /* samples that landed in ld.so (not unwound) */
    uint64_t unwind_failed; /* libunwind lost the signal frame: leaf only */
    uint64_t n_threads;     /* attached now */
    uint64_t n_stacks;      /* distinct stacks interned */
    uint64_t n_modules;
    uint64_t sink_failures; /* continuous windows the sink refused */
    uint64_t handler_ns;    /* with measure_handler: time spent in the handler, all samples */
} obs_prof_stats;
void obs_prof_get_stats(obs_prof_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* OBS_PROFILER_H */
