/*
 * render_text.h - what render_text.c offers beyond the public renderers:
 * the folded difference of two profiles (difffolded.pl's "stack before
 * after" lines), which the public header has no function for and which
 * /profile (http_profile.c) serves for ?format=folded with a baseline.
 *
 * Layer: a renderer, above the profile model. This module may include:
 * profile, util.
 */
#ifndef OBS_PROF_RENDER_TEXT_H
#define OBS_PROF_RENDER_TEXT_H

#include <stddef.h>

#include "obs_profiler.h"

/* Renders the difference into *out (malloc'd, NUL-terminated, the caller
 * frees it; *len its length). flags as for obs_prof_render_folded. */
int prof_render_folded_diff(const obs_prof_profile *before, const obs_prof_profile *after,
                            unsigned flags, char **out, size_t *len);

#endif /* OBS_PROF_RENDER_TEXT_H */
