/*
 * profile.c - the symbolised profile: interned strings, frames, tags and
 * stacks, and a weight per (stack, tag). Everything a renderer, a filter,
 * a merge or the storage blob needs, independent of the process that took
 * it (no addresses, no module ids), so that a profile read back from the
 * store is as good as a fresh one.
 *
 * Storage blob, all integers LEB128 varints:
 *   "OBSPROF\2" start_ns end_ns hz unwinder n_samples weight dropped
 *   n_strings   { len bytes }
 *   n_frames    { name_str module_str system_str }
 *   n_tags      { n { key_str value_str } }
 *   n_stacks    { depth { frame } }          (root first)
 *   n_entries   { stack tag weight count }
 * Version 1 (written before names were demangled) has no system_str; it
 * still decodes, each frame's system name being its name. Decoding checks
 * every length and every id against what precedes it.
 * Interface and place in the whole: profile.h; the call tree the flame
 * graphs draw is built from a profile in tree.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "observatory/stage.h"
#include "profile.h"
#include "util.h"

static const char MAGIC[8] = {'O', 'B', 'S', 'P', 'R', 'O', 'F', 2};
#define MAGIC_V1 1 /* the last byte of a version 1 blob's magic */

obs_prof_profile *prof_profile_new(void)
{
    return calloc(1, sizeof(obs_prof_profile));
}

void obs_prof_profile_free(obs_prof_profile *p)
{
    if (!p)
        return;
    prof_blobs_free(&p->strs);
    prof_blobs_free(&p->frames);
    prof_blobs_free(&p->tags);
    prof_blobs_free(&p->stacks);
    prof_blobs_free(&p->entries);
    free(p->weight);
    free(p->count);
    free(p);
}

void obs_prof_profile_get_info(const obs_prof_profile *p, obs_prof_profile_info *out)
{
    *out = p->info;
    out->n_stacks = p->entries.n;
}

int prof_profile_str(obs_prof_profile *p, const char *s, uint32_t *id)
{
    return prof_blobs_intern(&p->strs, s, (uint32_t)strlen(s) + 1, id);
}

int prof_profile_frame(obs_prof_profile *p, const char *name, const char *module,
                       const char *system, uint32_t *id)
{
    prof_frame f;
    if (prof_profile_str(p, name, &f.name) != 0 || prof_profile_str(p, module, &f.module) != 0 ||
        prof_profile_str(p, system ? system : name, &f.system) != 0)
        return OBS_ENOMEM;
    return prof_blobs_intern(&p->frames, &f, sizeof f, id);
}

const prof_frame *prof_profile_frame_get(const obs_prof_profile *p, uint32_t id)
{
    return prof_blobs_get(&p->frames, id, NULL);
}

const uint32_t *prof_profile_stack_get(const obs_prof_profile *p, uint32_t id, uint32_t *depth)
{
    uint32_t len;
    const uint32_t *f = prof_blobs_get(&p->stacks, id, &len);
    *depth = len / (uint32_t)sizeof *f;
    return f;
}

int prof_profile_tag(obs_prof_profile *p, const obs_prof_label *labels, size_t n, uint32_t *id)
{
    if (n > OBS_PROF_MAX_LABELS)
        return OBS_EINVAL;
    obs_prof_label l[OBS_PROF_MAX_LABELS];
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j > 0 && strcmp(l[j - 1].key, labels[i].key) > 0) {
            l[j] = l[j - 1];
            j--;
        }
        l[j] = labels[i];
    }
    prof_tagkey k;
    memset(&k, 0, sizeof k);
    k.n = (uint32_t)n;
    for (size_t i = 0; i < n; i++)
        if (prof_profile_str(p, l[i].key, &k.kv[2 * i]) != 0 ||
            prof_profile_str(p, l[i].value, &k.kv[2 * i + 1]) != 0)
            return OBS_ENOMEM;
    return prof_blobs_intern(&p->tags, &k, (uint32_t)(sizeof(uint32_t) * (1 + 2 * n)), id);
}

void prof_profile_tag_label(const obs_prof_profile *p, uint32_t tag, char *buf, size_t len)
{
    const prof_tagkey *k = prof_blobs_get(&p->tags, tag, NULL);
    size_t o = 0;
    int w = snprintf(buf, len, "[");
    o = w > 0 ? (size_t)w : 0;
    for (uint32_t i = 0; i < k->n && o < len; i++) {
        w = snprintf(buf + o, len - o, "%s%s=%s", i ? " " : "",
                     prof_profile_strget(p, k->kv[2 * i]),
                     prof_profile_strget(p, k->kv[2 * i + 1]));
        o += w > 0 ? (size_t)w : 0;
    }
    if (o < len)
        snprintf(buf + o, len - o, "]");
}

int prof_profile_add(obs_prof_profile *p, const uint32_t *frames, uint32_t depth, uint32_t tag,
                     uint64_t weight, uint64_t count)
{
    prof_entry e;
    if (prof_blobs_intern(&p->stacks, frames, depth * (uint32_t)sizeof *frames, &e.stack) != 0)
        return OBS_ENOMEM;
    e.tag = tag;
    uint32_t id;
    if (prof_blobs_intern(&p->entries, &e, sizeof e, &id) != 0)
        return OBS_ENOMEM;
    if (id >= p->wcap) {
        uint32_t nc = p->wcap ? p->wcap * 2 : 256;
        uint64_t *w = realloc(p->weight, nc * sizeof *w);
        if (!w)
            return OBS_ENOMEM;
        p->weight = w;
        uint64_t *c = realloc(p->count, nc * sizeof *c);
        if (!c)
            return OBS_ENOMEM;
        p->count = c;
        memset(p->weight + p->wcap, 0, (nc - p->wcap) * sizeof *w);
        memset(p->count + p->wcap, 0, (nc - p->wcap) * sizeof *c);
        p->wcap = nc;
    }
    p->weight[id] += weight;
    p->count[id] += count;
    p->info.weight += weight;
    p->info.n_samples += count;
    p->info.n_stacks = p->entries.n;
    return 0;
}

/* Does tag `t` of p carry every label of `match`? */
static int tag_matches(const obs_prof_profile *p, uint32_t t, const obs_prof_label *match, size_t n)
{
    const prof_tagkey *k = prof_blobs_get(&p->tags, t, NULL);
    for (size_t i = 0; i < n; i++) {
        int ok = 0;
        for (uint32_t j = 0; j < k->n && !ok; j++)
            if (strcmp(prof_profile_strget(p, k->kv[2 * j]), match[i].key) == 0)
                ok = !match[i].value || !*match[i].value ||
                     strcmp(prof_profile_strget(p, k->kv[2 * j + 1]), match[i].value) == 0;
        if (!ok)
            return 0;
    }
    return 1;
}

/* Adds the entries of src whose tag matches into dst, re-interning by text. */
static int copy_entries(obs_prof_profile *dst, const obs_prof_profile *src,
                        const obs_prof_label *match, size_t n_match)
{
    uint32_t *fmap = malloc((src->frames.n ? src->frames.n : 1) * sizeof *fmap);
    uint32_t *tmap = malloc((src->tags.n ? src->tags.n : 1) * sizeof *tmap);
    uint32_t frames[OBS_PROF_MAX_DEPTH + 1];
    int rc = OBS_ENOMEM;
    if (!fmap || !tmap)
        goto out;
    for (uint32_t i = 0; i < src->frames.n; i++) {
        const prof_frame *f = prof_profile_frame_get(src, i);
        if (prof_profile_frame(dst, prof_profile_strget(src, f->name),
                               prof_profile_strget(src, f->module),
                               prof_profile_strget(src, f->system), &fmap[i]) != 0)
            goto out;
    }
    for (uint32_t i = 0; i < src->tags.n; i++) {
        tmap[i] = UINT32_MAX;
        if (!tag_matches(src, i, match, n_match))
            continue;
        const prof_tagkey *k = prof_blobs_get(&src->tags, i, NULL);
        obs_prof_label l[OBS_PROF_MAX_LABELS];
        for (uint32_t j = 0; j < k->n; j++) {
            l[j].key = prof_profile_strget(src, k->kv[2 * j]);
            l[j].value = prof_profile_strget(src, k->kv[2 * j + 1]);
        }
        if (prof_profile_tag(dst, l, k->n, &tmap[i]) != 0)
            goto out;
    }
    for (uint32_t e = 0; e < src->entries.n; e++) {
        const prof_entry *en = prof_blobs_get(&src->entries, e, NULL);
        if (tmap[en->tag] == UINT32_MAX)
            continue;
        uint32_t depth;
        const uint32_t *f = prof_profile_stack_get(src, en->stack, &depth);
        if (depth > OBS_PROF_MAX_DEPTH + 1)
            depth = OBS_PROF_MAX_DEPTH + 1;
        for (uint32_t k = 0; k < depth; k++)
            frames[k] = fmap[f[k]];
        if (prof_profile_add(dst, frames, depth, tmap[en->tag], src->weight[e], src->count[e]) != 0)
            goto out;
    }
    rc = 0;
out:
    free(fmap);
    free(tmap);
    return rc;
}

int obs_prof_profile_filter(const obs_prof_profile *p, const obs_prof_label *match, size_t n,
                            obs_prof_profile **out)
{
    obs_prof_profile *d = prof_profile_new();
    if (!d)
        return OBS_ENOMEM;
    int rc = copy_entries(d, p, match, n);
    if (rc != 0) {
        obs_prof_profile_free(d);
        return rc;
    }
    d->info.start_ns = p->info.start_ns;
    d->info.end_ns = p->info.end_ns;
    d->info.hz = p->info.hz;
    d->info.unwinder = p->info.unwinder;
    d->info.dropped = n ? 0 : p->info.dropped; /* drops are not attributable to a tag */
    *out = d;
    return 0;
}

int obs_prof_profile_merge(obs_prof_profile *dst, const obs_prof_profile *src)
{
    int rc = copy_entries(dst, src, NULL, 0);
    if (rc != 0)
        return rc;
    if (!dst->info.start_ns || (src->info.start_ns && src->info.start_ns < dst->info.start_ns))
        dst->info.start_ns = src->info.start_ns;
    if (src->info.end_ns > dst->info.end_ns)
        dst->info.end_ns = src->info.end_ns;
    if (!dst->info.hz)
        dst->info.hz = src->info.hz;
    dst->info.unwinder = src->info.unwinder;
    dst->info.dropped += src->info.dropped;
    return 0;
}

/* Sum of per-entry values (weights or sample counts) of the entries
 * whose stack has `frame` (leaf_only: as its leaf). */
static uint64_t sum_of(const obs_prof_profile *p, const uint64_t *values, const char *frame,
                       int leaf_only)
{
    uint64_t w = 0;
    for (uint32_t e = 0; e < p->entries.n; e++) {
        const prof_entry *en = prof_blobs_get(&p->entries, e, NULL);
        uint32_t depth;
        const uint32_t *f = prof_profile_stack_get(p, en->stack, &depth);
        for (uint32_t k = leaf_only && depth ? depth - 1 : 0; k < depth; k++)
            if (strcmp(prof_profile_strget(p, prof_profile_frame_get(p, f[k])->name), frame) == 0) {
                w += values[e];
                break;
            }
    }
    return w;
}

uint64_t obs_prof_profile_weight_of(const obs_prof_profile *p, const char *frame, int leaf_only)
{
    return sum_of(p, p->weight, frame, leaf_only);
}

uint64_t obs_prof_profile_samples_of(const obs_prof_profile *p, const char *frame, int leaf_only)
{
    return sum_of(p, p->count, frame, leaf_only);
}

const char **obs_prof_profile_label_values(const obs_prof_profile *p, const char *key)
{
    const char **v = calloc(p->tags.n + 1, sizeof *v);
    if (!v)
        return NULL;
    size_t n = 0;
    for (uint32_t t = 0; t < p->tags.n; t++) {
        const prof_tagkey *k = prof_blobs_get(&p->tags, t, NULL);
        for (uint32_t j = 0; j < k->n; j++) {
            if (strcmp(prof_profile_strget(p, k->kv[2 * j]), key) != 0)
                continue;
            const char *val = prof_profile_strget(p, k->kv[2 * j + 1]);
            size_t i;
            for (i = 0; i < n && strcmp(v[i], val) != 0; i++)
                ;
            if (i == n)
                v[n++] = val;
        }
    }
    return v;
}

/* --------------------------------------------------------------- blob */

static void put_varint(prof_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    prof_buf_put(b, tmp, n);
}

int obs_prof_profile_encode(const obs_prof_profile *p, uint8_t **buf, size_t *len)
{
    prof_buf b = {0};
    prof_buf_put(&b, MAGIC, sizeof MAGIC);
    const obs_prof_profile_info *i = &p->info;
    put_varint(&b, i->start_ns);
    put_varint(&b, i->end_ns);
    put_varint(&b, i->hz);
    put_varint(&b, i->unwinder);
    put_varint(&b, i->n_samples);
    put_varint(&b, i->weight);
    put_varint(&b, i->dropped);
    put_varint(&b, p->strs.n);
    for (uint32_t s = 0; s < p->strs.n; s++) {
        uint32_t l;
        const void *d = prof_blobs_get(&p->strs, s, &l);
        put_varint(&b, l - 1); /* without the NUL */
        prof_buf_put(&b, d, l - 1);
    }
    put_varint(&b, p->frames.n);
    for (uint32_t f = 0; f < p->frames.n; f++) {
        const prof_frame *fr = prof_profile_frame_get(p, f);
        put_varint(&b, fr->name);
        put_varint(&b, fr->module);
        put_varint(&b, fr->system);
    }
    put_varint(&b, p->tags.n);
    for (uint32_t t = 0; t < p->tags.n; t++) {
        const prof_tagkey *k = prof_blobs_get(&p->tags, t, NULL);
        put_varint(&b, k->n);
        for (uint32_t j = 0; j < 2 * k->n; j++)
            put_varint(&b, k->kv[j]);
    }
    put_varint(&b, p->stacks.n);
    for (uint32_t s = 0; s < p->stacks.n; s++) {
        uint32_t depth;
        const uint32_t *f = prof_profile_stack_get(p, s, &depth);
        put_varint(&b, depth);
        for (uint32_t k = 0; k < depth; k++)
            put_varint(&b, f[k]);
    }
    put_varint(&b, p->entries.n);
    for (uint32_t e = 0; e < p->entries.n; e++) {
        const prof_entry *en = prof_blobs_get(&p->entries, e, NULL);
        put_varint(&b, en->stack);
        put_varint(&b, en->tag);
        put_varint(&b, p->weight[e]);
        put_varint(&b, p->count[e]);
    }
    char *out;
    int rc = prof_buf_finish(&b, &out, len);
    if (rc == 0)
        *buf = (uint8_t *)out;
    return rc;
}

typedef struct reader {
    const uint8_t *p, *end;
    int bad;
} reader;

static uint64_t get_varint(reader *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->bad = 1;
            return 0;
        }
        uint8_t c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

/* A count or id below `limit` (and below 2^31), else the reader goes bad. */
static uint32_t get_u32(reader *r, uint64_t limit)
{
    uint64_t v = get_varint(r);
    if (v >= limit || v > INT32_MAX)
        r->bad = 1;
    return r->bad ? 0 : (uint32_t)v;
}

int obs_prof_profile_decode(const void *buf, size_t len, obs_prof_profile **out)
{
    reader r = {buf, (const uint8_t *)buf + len, 0};
    uint32_t *smap = NULL, *fmap = NULL, *tmap = NULL, *stk = NULL;
    uint32_t *stoff = NULL;
    char *tmp = NULL;
    obs_prof_profile *p = NULL;
    int rc = OBS_EINVAL;
    if (len < sizeof MAGIC || memcmp(buf, MAGIC, sizeof MAGIC - 1) != 0)
        return OBS_EINVAL;
    uint8_t version = ((const uint8_t *)buf)[sizeof MAGIC - 1];
    if (version != MAGIC_V1 && version != (uint8_t)MAGIC[sizeof MAGIC - 1])
        return OBS_EINVAL;
    r.p += sizeof MAGIC;
    if (!(p = prof_profile_new()))
        return OBS_ENOMEM;
    obs_prof_profile_info info;
    memset(&info, 0, sizeof info);
    info.start_ns = get_varint(&r);
    info.end_ns = get_varint(&r);
    info.hz = get_u32(&r, UINT32_MAX);
    info.unwinder = get_u32(&r, 2);
    uint64_t n_samples = get_varint(&r), weight = get_varint(&r);
    (void)n_samples;
    (void)weight; /* recomputed from the entries */
    info.dropped = get_varint(&r);

    uint32_t ns = get_u32(&r, len + 1);
    if (r.bad || !(smap = malloc((ns ? ns : 1) * sizeof *smap)))
        goto out;
    for (uint32_t i = 0; i < ns; i++) {
        uint32_t l = get_u32(&r, (uint64_t)(r.end - r.p) + 1);
        if (r.bad)
            goto out;
        free(tmp);
        if (!(tmp = malloc(l + 1))) {
            rc = OBS_ENOMEM;
            goto out;
        }
        memcpy(tmp, r.p, l);
        tmp[l] = 0;
        if (memchr(tmp, 0, l))
            goto out;
        r.p += l;
        if (prof_profile_str(p, tmp, &smap[i]) != 0) {
            rc = OBS_ENOMEM;
            goto out;
        }
    }
    uint32_t nf = get_u32(&r, len + 1);
    if (r.bad || !(fmap = malloc((nf ? nf : 1) * sizeof *fmap)))
        goto out;
    for (uint32_t i = 0; i < nf; i++) {
        uint32_t a = get_u32(&r, ns), b = get_u32(&r, ns);
        uint32_t c = version == MAGIC_V1 ? a : get_u32(&r, ns);
        if (r.bad)
            goto out;
        prof_frame f = {smap[a], smap[b], smap[c]};
        if (prof_blobs_intern(&p->frames, &f, sizeof f, &fmap[i]) != 0) {
            rc = OBS_ENOMEM;
            goto out;
        }
    }
    uint32_t nt = get_u32(&r, len + 1);
    if (r.bad || !(tmap = malloc((nt ? nt : 1) * sizeof *tmap)))
        goto out;
    for (uint32_t i = 0; i < nt; i++) {
        obs_prof_label l[OBS_PROF_MAX_LABELS];
        uint32_t n = get_u32(&r, OBS_PROF_MAX_LABELS + 1);
        for (uint32_t j = 0; j < n && !r.bad; j++) {
            l[j].key = prof_profile_strget(p, smap[get_u32(&r, ns)]);
            l[j].value = prof_profile_strget(p, smap[get_u32(&r, ns)]);
        }
        if (r.bad || (n && ns == 0))
            goto out;
        if (prof_profile_tag(p, l, n, &tmap[i]) != 0) {
            rc = OBS_ENOMEM;
            goto out;
        }
    }
    uint32_t nk = get_u32(&r, len + 1);
    if (r.bad || !(stoff = malloc(((size_t)nk + 1) * sizeof *stoff)))
        goto out;
    /* Stacks are kept as offsets into one array until entries refer to them. */
    size_t scap = 256, slen = 0;
    if (!(stk = malloc(scap * sizeof *stk)))
        goto out;
    for (uint32_t i = 0; i < nk; i++) {
        uint32_t depth = get_u32(&r, OBS_PROF_MAX_DEPTH + 2);
        stoff[i] = (uint32_t)slen;
        if (r.bad)
            goto out;
        if (slen + depth > scap) {
            while (slen + depth > scap)
                scap *= 2;
            uint32_t *n2 = realloc(stk, scap * sizeof *stk);
            if (!n2) {
                rc = OBS_ENOMEM;
                goto out;
            }
            stk = n2;
        }
        for (uint32_t k = 0; k < depth; k++)
            stk[slen++] = fmap[get_u32(&r, nf)];
        if (r.bad)
            goto out;
    }
    stoff[nk] = (uint32_t)slen;
    uint32_t ne = get_u32(&r, len + 1);
    for (uint32_t i = 0; i < ne && !r.bad; i++) {
        uint32_t s = get_u32(&r, nk), t = get_u32(&r, nt);
        uint64_t w = get_varint(&r), c = get_varint(&r);
        if (r.bad)
            goto out;
        if (prof_profile_add(p, stk + stoff[s], stoff[s + 1] - stoff[s], tmap[t], w, c) != 0) {
            rc = OBS_ENOMEM;
            goto out;
        }
    }
    if (r.bad || r.p != r.end)
        goto out;
    info.n_samples = p->info.n_samples;
    info.weight = p->info.weight;
    info.n_stacks = p->entries.n;
    p->info = info;
    *out = p;
    p = NULL;
    rc = 0;
out:
    free(smap);
    free(fmap);
    free(tmap);
    free(stk);
    free(stoff);
    free(tmp);
    obs_prof_profile_free(p);
    return rc;
}
