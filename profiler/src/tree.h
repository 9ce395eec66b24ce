/*
 * tree.h - a call tree merged from the stacks of a profile, for the flame
 * graph renderers (render_svg.c). Node names are string ids of a profile
 * the caller passes in (`names`), so that the labels of two profiles can
 * be compared by id. Children are linked in no particular order; the
 * renderer sorts them by name, so that its layout is deterministic.
 *
 * Layer: above the profile model, below the flame graph renderer. This
 * module may include: profile, util.
 */
#ifndef OBS_PROF_TREE_H
#define OBS_PROF_TREE_H

#include <stdint.h>

#include "obs_profiler.h"

typedef struct prof_node {
    uint32_t name;  /* string id of the display label in `names` */
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
 * labels are matched by text) into t, which the caller frees with
 * prof_tree_free. Labels are interned into names (a profile the caller
 * owns). flags: OBS_PROF_TAG_ROOT puts the tag above each stack. */
int prof_tree_build(const obs_prof_profile *p, const obs_prof_profile *q, unsigned flags,
                    obs_prof_profile *names, prof_tree *t);
void prof_tree_free(prof_tree *t);

#endif /* OBS_PROF_TREE_H */
