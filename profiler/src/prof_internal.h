/*
 * prof_internal.h - what the files of obsprofiler share and nothing else
 * includes: the blob interner and string builder (util.c), the symbolised
 * profile's layout (profile.c and the renderers), the module registry
 * (modules.c) and the sampler/collector hand-off (sampler.c, collector.c).
 */
#ifndef OBS_PROF_INTERNAL_H
#define OBS_PROF_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "obs_profiler.h"
#include "observatory/stage.h"

/* ---------------------------------------------------------------- util.c */

/* Interns byte strings: equal keys get the same dense id (0, 1, ...). The
 * bytes are copied into one growing buffer; pointers from prof_blobs_get
 * stay valid until the next intern. */
typedef struct prof_blobs {
    uint8_t *data;
    size_t len, cap;
    size_t *off;
    uint32_t *blen;
    uint32_t n, ncap;
    uint32_t *table; /* open addressing: id + 1, 0 empty */
    uint32_t tcap;   /* power of two */
} prof_blobs;

int prof_blobs_intern(prof_blobs *b, const void *key, uint32_t len, uint32_t *id);
/* Id of an existing key, or -1. */
int64_t prof_blobs_find(const prof_blobs *b, const void *key, uint32_t len);
static inline const void *prof_blobs_get(const prof_blobs *b, uint32_t id, uint32_t *len)
{
    if (len)
        *len = b->blen[id];
    return b->data + b->off[id];
}
void prof_blobs_free(prof_blobs *b);
uint64_t prof_hash(const void *key, size_t len);

/* A growing malloc'd buffer; on allocation failure `failed` is set and
 * further appends do nothing, so callers check once at the end. */
typedef struct prof_buf {
    char *p;
    size_t len, cap;
    int failed;
} prof_buf;
void prof_buf_put(prof_buf *b, const void *data, size_t len);
void prof_buf_puts(prof_buf *b, const char *s);
void prof_buf_printf(prof_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void prof_buf_xml(prof_buf *b, const char *s);  /* XML-escaped */
void prof_buf_json(prof_buf *b, const char *s); /* quoted JSON string */
/* Hands the buffer (NUL-terminated) to the caller; OBS_ENOMEM if anything failed. */
int prof_buf_finish(prof_buf *b, char **out, size_t *len);

uint64_t prof_realtime_ns(void);
uint64_t prof_monotonic_ns(void);
void prof_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------- profile.c */

/* A frame: display label ("mod:function") and module label, as string ids. */
typedef struct prof_frame {
    uint32_t name, module;
} prof_frame;

/* Tag key: n pairs of (key string id, value string id), sorted by key. */
typedef struct prof_tagkey {
    uint32_t n;
    uint32_t kv[2 * OBS_PROF_MAX_LABELS];
} prof_tagkey;

typedef struct prof_entry {
    uint32_t stack, tag;
} prof_entry;

struct obs_prof_profile {
    prof_blobs strs;    /* NUL-terminated strings */
    prof_blobs frames;  /* prof_frame */
    prof_blobs tags;    /* prof_tagkey (only the used part) */
    prof_blobs stacks;  /* uint32 frame ids, root first */
    prof_blobs entries; /* prof_entry */
    uint64_t *weight;   /* per entry */
    uint64_t *count;    /* samples per entry */
    uint32_t wcap;
    obs_prof_profile_info info;
};

obs_prof_profile *prof_profile_new(void);
int prof_profile_str(obs_prof_profile *p, const char *s, uint32_t *id);
static inline const char *prof_profile_strget(const obs_prof_profile *p, uint32_t id)
{
    return prof_blobs_get(&p->strs, id, NULL);
}
/* Adds weight for (frames root..leaf, tag). */
int prof_profile_add(obs_prof_profile *p, const uint32_t *frames, uint32_t depth, uint32_t tag,
                     uint64_t weight, uint64_t count);
int prof_profile_frame(obs_prof_profile *p, const char *name, const char *module, uint32_t *id);
int prof_profile_tag(obs_prof_profile *p, const obs_prof_label *labels, size_t n, uint32_t *id);
/* "[stage=parse variant=A]" for a tag id, into buf. */
void prof_profile_tag_label(const obs_prof_profile *p, uint32_t tag, char *buf, size_t len);
const prof_frame *prof_profile_frame_get(const obs_prof_profile *p, uint32_t id);
const uint32_t *prof_profile_stack_get(const obs_prof_profile *p, uint32_t id, uint32_t *depth);

/* A call tree merged from the stacks (renderers). Children are sorted by
 * name, so the layout is deterministic. */
typedef struct prof_node {
    uint32_t name;  /* string id of the display label in the profile */
    uint64_t total; /* weight of samples through this node */
    uint64_t other; /* diff: weight in the other profile */
    uint32_t first_child, next_sibling, n_children;
    uint32_t depth;
} prof_node;
typedef struct prof_tree {
    prof_node *nodes; /* nodes[0] is the root ("all") */
    uint32_t n, cap;
    uint32_t max_depth;
} prof_tree;
/* Builds the tree of p (and the `other` weights from q when not NULL; q's
 * labels are matched by text). flags: OBS_PROF_TAG_ROOT. */
int prof_tree_build(const obs_prof_profile *p, const obs_prof_profile *q, unsigned flags,
                    obs_prof_profile *names, prof_tree *t);
void prof_tree_free(prof_tree *t);

/* render_text.c: difffolded.pl's "stack before after" lines. */
int prof_render_folded_diff(const obs_prof_profile *before, const obs_prof_profile *after,
                            unsigned flags, char **out, size_t *len);

/* ------------------------------------------------------------- modules.c */

/* A location: module id in the top 16 bits, offset (address - bias) below;
 * module 0 is "no module" with the raw address. */
#define PROF_LOC(mod, off) (((uint64_t)(mod) << 48) | ((uint64_t)(off) & 0xffffffffffffULL))
#define PROF_LOC_MOD(loc) ((uint32_t)((loc) >> 48))
#define PROF_LOC_OFF(loc) ((loc) & 0xffffffffffffULL)

int prof_modules_init(void);
void prof_modules_fini(void);
/* Adds the objects dl_iterate_phdr knows that the registry does not. */
void prof_modules_scan(void);
/* Maps an address to a location (takes the registry lock). */
uint64_t prof_modules_locate(uintptr_t addr);
/* Resolves a location: *module is the module's label ("tp_burn",
 * "libc.so.6"), *prefix whether frames name it ("tp_burn:burn_heavy": for
 * modules added by obs_prof_module_add) or not (the executable and system
 * libraries found by the scan), *func the function or "[module]" when no
 * symbol covers the address. Strings live until prof_modules_fini. */
void prof_modules_resolve(uint64_t loc, const char **module, int *prefix, const char **func);
uint64_t prof_modules_count(void);
/* The loader's (ld.so) mapped range, for the signal handler. */
void prof_modules_loader_range(uintptr_t *lo, uintptr_t *hi);

/* ------------------------------------------------------- sampler/collector */

typedef struct prof_sample {
    uint32_t weight;
    uint32_t tag;
    uint32_t depth;
    uint32_t pad;
    uintptr_t pc[]; /* max_depth, leaf first */
} prof_sample;

typedef struct prof_thread {
    _Atomic int state; /* 0 free, 1 attached, 2 detached (ring still to drain) */
    _Atomic uint32_t head, tail; /* ring indices: the handler writes head, the collector tail */
    _Atomic uint32_t tag;
    _Atomic uint64_t dropped;
    volatile int in_handler;
    int timer_ok;
    timer_t timer;
    int tid;
    uintptr_t stack_lo, stack_hi;
    uint8_t *ring; /* ring_slots * sample_size */
} prof_thread;

typedef struct prof_global {
    obs_prof_config cfg;
    size_t sample_size;
    uint32_t ring_mask;
    prof_thread *threads;
    pthread_mutex_t lock; /* threads table, arming, tag table */
    int armed;
    int n_consumers;
    uintptr_t ldso_lo, ldso_hi;
    _Atomic uint64_t n_samples, weight, in_loader, unwind_failed, handler_ns;
    /* tags of the process: id -> labels */
    obs_prof_profile *tagdb; /* only strs and tags are used */
    int gperf_running;
} prof_global;

extern prof_global prof_g;
extern _Atomic int prof_initialised;

/* sampler.c: arms or disarms every attached thread's timer (lock held). */
void prof_sampler_arm_locked(int on);
int prof_sampler_install(char *err, size_t errlen);
void prof_sampler_uninstall(void);
/* Tag labels of a process tag id (lock held by caller or not: tagdb only grows
 * under prof_g.lock; the collector copies under the lock). */

/* collector.c */
int prof_collector_start(void);
void prof_collector_stop(void);
/* Drains every ring now (any thread). */
void prof_collector_drain(void);
void prof_collector_stats(obs_prof_stats *st);
/* Sleeps until CLOCK_MONOTONIC deadline_ns or shutdown; returns 1 on shutdown. */
int prof_collector_wait(uint64_t deadline_ns);

/* gperf.c */
void prof_gperf_shutdown(void);
int prof_gperf_thread_filter_on(void);

#endif /* OBS_PROF_INTERNAL_H */
