/*
 * render_text.c - the text forms of a profile: flamegraph.pl's folded
 * stacks ("a;b;c 42", one line per distinct stack, sorted), the folded
 * difference (difffolded.pl's "a;b;c 12 42"), and JSON.
 *
 * Interface and place in the whole: the public renderers are declared in
 * obs_profiler.h, the folded difference in render_text.h. A renderer reads
 * a finished profile and nothing else; it may include: profile, util.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs_profiler.h"
#include "observatory/stage.h"
#include "profile.h"
#include "render_text.h"
#include "util.h"

/* A frame in folded form: ';' separates frames and a newline ends the
 * line, so neither may appear inside one. */
static void put_folded_frame(prof_buf *b, const char *s)
{
    for (; *s; s++) {
        char c = *s == ';' ? ':' : (*s == '\n' || *s == '\r') ? ' ' : *s;
        prof_buf_put(b, &c, 1);
    }
}

/* Interns each entry's folded stack text into `lines`, summing weights
 * into (*w)[line][slot]. */
static int fold_into(const obs_prof_profile *p, unsigned flags, prof_blobs *lines, uint64_t **w,
                     uint32_t *wcap, int slot)
{
    prof_buf b = {0};
    for (uint32_t e = 0; e < p->entries.n; e++) {
        const prof_entry *en = prof_blobs_get(&p->entries, e, NULL);
        uint32_t depth;
        const uint32_t *f = prof_profile_stack_get(p, en->stack, &depth);
        b.len = 0;
        if (flags & OBS_PROF_TAG_ROOT) {
            char label[512];
            prof_profile_tag_label(p, en->tag, label, sizeof label);
            put_folded_frame(&b, label);
        }
        for (uint32_t k = 0; k < depth; k++) {
            if (b.len)
                prof_buf_put(&b, ";", 1);
            put_folded_frame(&b, prof_profile_strget(p, prof_profile_frame_get(p, f[k])->name));
        }
        if (b.len == 0)
            prof_buf_puts(&b, "[empty]");
        uint32_t id;
        if (b.failed || prof_blobs_intern(lines, b.p, (uint32_t)b.len, &id) != 0) {
            free(b.p);
            return OBS_ENOMEM;
        }
        if (id >= *wcap) {
            uint32_t nc = *wcap ? *wcap * 2 : 256;
            while (nc <= id)
                nc *= 2;
            uint64_t *n = realloc(*w, (size_t)nc * 2 * sizeof *n);
            if (!n) {
                free(b.p);
                return OBS_ENOMEM;
            }
            memset(n + (size_t)*wcap * 2, 0, (size_t)(nc - *wcap) * 2 * sizeof *n);
            *w = n;
            *wcap = nc;
        }
        (*w)[(size_t)id * 2 + (size_t)slot] += p->weight[e];
    }
    free(b.p);
    return 0;
}

static __thread const prof_blobs *sort_lines; /* qsort has no context argument */
static int line_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b, lx, ly;
    const char *sx = prof_blobs_get(sort_lines, x, &lx), *sy = prof_blobs_get(sort_lines, y, &ly);
    int c = memcmp(sx, sy, lx < ly ? lx : ly);
    return c ? c : (lx > ly) - (lx < ly);
}

static int folded(const obs_prof_profile *before, const obs_prof_profile *p, unsigned flags,
                  char **out, size_t *len)
{
    prof_blobs lines = {0};
    uint64_t *w = NULL;
    uint32_t wcap = 0, *order = NULL;
    prof_buf b = {0};
    int rc = fold_into(p, flags, &lines, &w, &wcap, 1);
    if (rc == 0 && before)
        rc = fold_into(before, flags, &lines, &w, &wcap, 0);
    if (rc != 0)
        goto out;
    rc = OBS_ENOMEM;
    if (!(order = malloc((lines.n ? lines.n : 1) * sizeof *order)))
        goto out;
    for (uint32_t i = 0; i < lines.n; i++)
        order[i] = i;
    sort_lines = &lines;
    qsort(order, lines.n, sizeof *order, line_cmp);
    for (uint32_t i = 0; i < lines.n; i++) {
        uint32_t l;
        const char *s = prof_blobs_get(&lines, order[i], &l);
        prof_buf_put(&b, s, l);
        if (before)
            prof_buf_printf(&b, " %llu %llu\n", (unsigned long long)w[(size_t)order[i] * 2],
                            (unsigned long long)w[(size_t)order[i] * 2 + 1]);
        else
            prof_buf_printf(&b, " %llu\n", (unsigned long long)w[(size_t)order[i] * 2 + 1]);
    }
    rc = prof_buf_finish(&b, out, len);
out:
    free(b.p);
    free(order);
    free(w);
    prof_blobs_free(&lines);
    return rc;
}

int obs_prof_render_folded(const obs_prof_profile *p, unsigned flags, char **out, size_t *len)
{
    return folded(NULL, p, flags, out, len);
}

int prof_render_folded_diff(const obs_prof_profile *before, const obs_prof_profile *after,
                            unsigned flags, char **out, size_t *len)
{
    return folded(before, after, flags, out, len);
}

int obs_prof_render_json(const obs_prof_profile *p, char **out, size_t *len)
{
    prof_buf b = {0};
    const obs_prof_profile_info *i = &p->info;
    prof_buf_printf(&b,
                    "{\"start_ns\":%llu,\"end_ns\":%llu,\"hz\":%u,\"unwinder\":\"%s\","
                    "\"n_samples\":%llu,\"weight\":%llu,\"dropped\":%llu,\"frames\":[",
                    (unsigned long long)i->start_ns, (unsigned long long)i->end_ns, i->hz,
                    i->unwinder == OBS_PROF_UNWIND_FP ? "fp" : "libunwind",
                    (unsigned long long)i->n_samples, (unsigned long long)i->weight,
                    (unsigned long long)i->dropped);
    for (uint32_t f = 0; f < p->frames.n; f++) {
        const prof_frame *fr = prof_profile_frame_get(p, f);
        prof_buf_puts(&b, f ? ",{\"name\":" : "{\"name\":");
        prof_buf_json(&b, prof_profile_strget(p, fr->name));
        prof_buf_puts(&b, ",\"module\":");
        prof_buf_json(&b, prof_profile_strget(p, fr->module));
        prof_buf_puts(&b, "}");
    }
    prof_buf_puts(&b, "],\"tags\":[");
    for (uint32_t t = 0; t < p->tags.n; t++) {
        const prof_tagkey *k = prof_blobs_get(&p->tags, t, NULL);
        prof_buf_puts(&b, t ? ",{" : "{");
        for (uint32_t j = 0; j < k->n; j++) {
            if (j)
                prof_buf_puts(&b, ",");
            prof_buf_json(&b, prof_profile_strget(p, k->kv[2 * j]));
            prof_buf_puts(&b, ":");
            prof_buf_json(&b, prof_profile_strget(p, k->kv[2 * j + 1]));
        }
        prof_buf_puts(&b, "}");
    }
    prof_buf_puts(&b, "],\"stacks\":[");
    for (uint32_t s = 0; s < p->stacks.n; s++) {
        uint32_t depth;
        const uint32_t *f = prof_profile_stack_get(p, s, &depth);
        prof_buf_puts(&b, s ? ",[" : "[");
        for (uint32_t k = 0; k < depth; k++)
            prof_buf_printf(&b, k ? ",%u" : "%u", f[k]);
        prof_buf_puts(&b, "]");
    }
    prof_buf_puts(&b, "],\"samples\":[");
    for (uint32_t e = 0; e < p->entries.n; e++) {
        const prof_entry *en = prof_blobs_get(&p->entries, e, NULL);
        prof_buf_printf(&b, "%s{\"stack\":%u,\"tag\":%u,\"weight\":%llu,\"count\":%llu}",
                        e ? "," : "", en->stack, en->tag, (unsigned long long)p->weight[e],
                        (unsigned long long)p->count[e]);
    }
    prof_buf_puts(&b, "]}\n");
    return prof_buf_finish(&b, out, len);
}
