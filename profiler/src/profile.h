/*
 * profile.h - the layout of a symbolised profile (struct obs_prof_profile,
 * opaque in the public header) and the functions that build one: interned
 * strings, frames, tags and stacks, and a weight per (stack, tag). The
 * collector builds profiles with these when a window closes; the
 * renderers, the call tree and the storage blob read them. A profile holds
 * no addresses and no module ids, so it means the same in any process.
 *
 * Layer: above util. This module may include: util.
 */
#ifndef OBS_PROF_PROFILE_H
#define OBS_PROF_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "obs_profiler.h"
#include "util.h"

/* A frame, as string ids: display label ("mod:function", demangled), module
 * label, and the symbol as the object spells it (mangled; pprof's
 * Function.system_name), which is the label itself when there is none. */
typedef struct prof_frame {
    uint32_t name, module, system;
} prof_frame;

/* Tag key: n pairs of (key string id, value string id), sorted by key. */
typedef struct prof_tagkey {
    uint32_t n;
    uint32_t kv[2 * OBS_PROF_MAX_LABELS];
} prof_tagkey;

/* What a weight is counted against: a stack id and a tag id. */
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

/* An empty profile, or NULL; the caller frees it with obs_prof_profile_free. */
obs_prof_profile *prof_profile_new(void);
/* Interns the string s (copied) into p. 0 or OBS_ENOMEM. */
int prof_profile_str(obs_prof_profile *p, const char *s, uint32_t *id);
/* The string of id, owned by p and valid until the next string is added. */
static inline const char *prof_profile_strget(const obs_prof_profile *p, uint32_t id)
{
    return prof_blobs_get(&p->strs, id, NULL);
}
/* Adds weight for (frames root..leaf, tag). */
int prof_profile_add(obs_prof_profile *p, const uint32_t *frames, uint32_t depth, uint32_t tag,
                     uint64_t weight, uint64_t count);
/* Interns the frame (name, module, system) (copied); system NULL: the
 * same as name. 0 or OBS_ENOMEM. */
int prof_profile_frame(obs_prof_profile *p, const char *name, const char *module,
                       const char *system, uint32_t *id);
/* Interns the tag of n labels (copied; order does not matter). */
int prof_profile_tag(obs_prof_profile *p, const obs_prof_label *labels, size_t n, uint32_t *id);
/* "[stage=parse variant=A]" for a tag id, into buf. */
void prof_profile_tag_label(const obs_prof_profile *p, uint32_t tag, char *buf, size_t len);
/* Borrowed from p, valid until the next frame or stack is added. */
const prof_frame *prof_profile_frame_get(const obs_prof_profile *p, uint32_t id);
const uint32_t *prof_profile_stack_get(const obs_prof_profile *p, uint32_t id, uint32_t *depth);

#endif /* OBS_PROF_PROFILE_H */
