/*
 * tree.c - the call tree of a profile, as the flame graphs draw it: the
 * stacks merged from the root, each node weighted by the samples that pass
 * through it, and for a differential graph the weight the same path has in
 * a second profile (matched by label text, so the two profiles need not
 * share ids). Interface and place in the whole: tree.h.
 */
#include <stdlib.h>
#include <string.h>

#include "obs_profiler.h"
#include "observatory/stage.h"
#include "profile.h"
#include "tree.h"
#include "util.h"

static int tree_child(prof_tree *t, prof_blobs *idx, uint32_t parent, uint32_t name, int create,
                      uint32_t *out)
{
    uint32_t key[2] = {parent, name};
    int64_t f = prof_blobs_find(idx, key, sizeof key);
    if (f >= 0) {
        *out = (uint32_t)f + 1; /* idx ids are node ids - 1 (root has none) */
        return 0;
    }
    if (!create)
        return 1;
    uint32_t id;
    if (prof_blobs_intern(idx, key, sizeof key, &id) != 0)
        return OBS_ENOMEM;
    if (t->n == t->cap) {
        uint32_t nc = t->cap * 2;
        prof_node *n = realloc(t->nodes, nc * sizeof *n);
        if (!n)
            return OBS_ENOMEM;
        t->nodes = n;
        t->cap = nc;
    }
    prof_node *nd = &t->nodes[t->n];
    memset(nd, 0, sizeof *nd);
    nd->name = name;
    nd->depth = t->nodes[parent].depth + 1;
    nd->first_child = nd->next_sibling = UINT32_MAX;
    nd->next_sibling = t->nodes[parent].first_child;
    t->nodes[parent].first_child = t->n;
    t->nodes[parent].n_children++;
    if (nd->depth > t->max_depth)
        t->max_depth = nd->depth;
    *out = t->n++;
    return 0;
}

/* Walks one profile into the tree: into_other selects `other` weights and
 * no node creation. */
static int tree_walk(prof_tree *t, prof_blobs *idx, const obs_prof_profile *p, unsigned flags,
                     obs_prof_profile *names, int into_other)
{
    uint32_t *fname = malloc((p->frames.n ? p->frames.n : 1) * sizeof *fname);
    uint32_t *tname = malloc((p->tags.n ? p->tags.n : 1) * sizeof *tname);
    int rc = OBS_ENOMEM;
    if (!fname || !tname)
        goto out;
    for (uint32_t i = 0; i < p->frames.n; i++)
        if (prof_profile_str(names, prof_profile_strget(p, prof_profile_frame_get(p, i)->name),
                             &fname[i]) != 0)
            goto out;
    for (uint32_t i = 0; i < p->tags.n; i++) {
        char label[512];
        prof_profile_tag_label(p, i, label, sizeof label);
        if (prof_profile_str(names, label, &tname[i]) != 0)
            goto out;
    }
    for (uint32_t e = 0; e < p->entries.n; e++) {
        const prof_entry *en = prof_blobs_get(&p->entries, e, NULL);
        uint32_t depth;
        const uint32_t *f = prof_profile_stack_get(p, en->stack, &depth);
        uint64_t w = p->weight[e];
        uint32_t node = 0;
        if (into_other)
            t->nodes[0].other += w;
        else
            t->nodes[0].total += w;
        for (int k = (flags & OBS_PROF_TAG_ROOT) ? -1 : 0; k < (int)depth; k++) {
            uint32_t name = k < 0 ? tname[en->tag] : fname[f[k]];
            int r = tree_child(t, idx, node, name, !into_other, &node);
            if (r < 0)
                goto out;
            if (r > 0)
                break; /* path absent from the tree: only in the other profile */
            if (into_other)
                t->nodes[node].other += w;
            else
                t->nodes[node].total += w;
        }
    }
    rc = 0;
out:
    free(fname);
    free(tname);
    return rc;
}

int prof_tree_build(const obs_prof_profile *p, const obs_prof_profile *q, unsigned flags,
                    obs_prof_profile *names, prof_tree *t)
{
    prof_blobs idx = {0};
    memset(t, 0, sizeof *t);
    t->cap = 256;
    t->nodes = calloc(t->cap, sizeof *t->nodes);
    uint32_t all;
    if (!t->nodes || prof_profile_str(names, "all", &all) != 0) {
        prof_tree_free(t);
        return OBS_ENOMEM;
    }
    t->nodes[0].name = all;
    t->nodes[0].first_child = t->nodes[0].next_sibling = UINT32_MAX;
    t->n = 1;
    int rc = tree_walk(t, &idx, p, flags, names, 0);
    if (rc == 0 && q)
        rc = tree_walk(t, &idx, q, flags, names, 1);
    prof_blobs_free(&idx);
    if (rc != 0)
        prof_tree_free(t);
    return rc;
}

void prof_tree_free(prof_tree *t)
{
    free(t->nodes);
    memset(t, 0, sizeof *t);
}
