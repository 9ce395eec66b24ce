/*
 * http_runprof.c - the HTTP routes over stored profiles (http_runprof.h):
 * query parameters checked with a 400 that names the bad one, the run's
 * windows selected through store/run_profile.h, and the result rendered by
 * the profiler's own renderers (SVG flame graph, folded stacks, JSON,
 * pprof), alone or as the difference of two selections.
 */
#include "server/http_runprof.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "observatory/stage.h"
#include "server/http_parse.h"
#include "util/text.h"

static void reply_fail(http_runprof_reply *out, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_fail(http_runprof_reply *out, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->error, sizeof out->error, fmt, ap);
    va_end(ap);
    out->status = status;
}

static unsigned status_of(int rc)
{
    return rc == OBS_ENOENT ? 404 : rc == OBS_EINVAL ? 400 : 500;
}

/* Optional time parameter `key` (Unix seconds) into *ns. 0 or -1 after
 * filling the 400 reply. */
static int time_param(const struct http_target *t, const char *key, uint64_t *ns,
                      http_runprof_reply *out)
{
    const char *v = http_target_param(t, key);
    if (!v || http_parse_time_ns(v, ns) == 0)
        return 0;
    char clean[64];
    text_sanitize(v, clean, sizeof clean);
    reply_fail(out, 400,
               "query parameter '%s': '%s' is not a Unix time in seconds "
               "(e.g. 1764241234 or 1764241234.5)",
               key, clean);
    return -1;
}

/* `key`'s value must be one of `allowed` (NULL-terminated; default the
 * first). Returns it, or NULL after filling the 400 reply. */
static const char *choice_param(const struct http_target *t, const char *key,
                                const char *const *allowed, const char *expect,
                                http_runprof_reply *out)
{
    const char *v = http_target_param(t, key);
    if (!v)
        return allowed[0];
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(v, allowed[i]) == 0)
            return allowed[i];
    char clean[64];
    text_sanitize(v, clean, sizeof clean);
    reply_fail(out, 400, "query parameter '%s': expected %s, got '%s'", key, expect, clean);
    return NULL;
}

static void add_label(run_profile_sel *sel, const char *key, const char *value)
{
    if (value && sel->n_match < OBS_PROF_MAX_LABELS) {
        sel->match[sel->n_match].key = key;
        sel->match[sel->n_match].value = value;
        sel->n_match++;
    }
}

/* Renders through the profiler's own function and moves the result into
 * *out; its errors (only "out of memory" once the format was checked)
 * become ours. */
static int render(const obs_prof_profile *p, const obs_prof_profile *before, const char *format,
                  const char *title, http_runprof_reply *out)
{
    obs_prof_http_response resp;
    if (obs_prof_http_render(p, before, format, title, &resp) != 0)
        return OBS_ENOMEM;
    if (resp.status != 200) {
        free(resp.body);
        reply_fail(out, (unsigned)resp.status, "rendering the profile as %s failed", format);
        return 0;
    }
    out->status = 200;
    out->content_type = resp.content_type;
    out->body = resp.body;
    out->len = resp.len;
    return 0;
}

/* Appends " key=value" for each label of sel to a title. */
static void title_labels(char *buf, size_t len, const run_profile_sel *sel)
{
    size_t o = strlen(buf);
    for (size_t i = 0; i < sel->n_match && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, " %s=%s", sel->match[i].key, sel->match[i].value);
}

/* Appends the time range of sel, if any, in seconds relative to nothing:
 * Unix seconds, as the request gave them. */
static void title_range(char *buf, size_t len, const run_profile_sel *sel)
{
    size_t o = strlen(buf);
    if (o >= len || (!sel->from_ns && sel->to_ns == UINT64_MAX))
        return;
    if (sel->to_ns == UINT64_MAX)
        snprintf(buf + o, len - o, " from %.3f", (double)sel->from_ns / 1e9);
    else
        snprintf(buf + o, len - o, " %.3f-%.3f", (double)sel->from_ns / 1e9,
                 (double)sel->to_ns / 1e9);
}

int http_runprof(struct store *s, uint64_t run_id, const struct http_target *t,
                 http_runprof_reply *out)
{
    static const char *const formats[] = {"svg", "folded", "json", "pprof", NULL};
    memset(out, 0, sizeof *out);
    run_profile_sel sel = {.run_id = run_id, .to_ns = UINT64_MAX};
    if (time_param(t, "from", &sel.from_ns, out) != 0 || time_param(t, "to", &sel.to_ns, out) != 0)
        return 0;
    if (sel.from_ns > sel.to_ns) {
        reply_fail(out, 400, "'from' is after 'to'");
        return 0;
    }
    const char *format = choice_param(t, "format", formats, "svg, folded, json or pprof", out);
    if (!format)
        return 0;
    static const char *const keys[] = {"stage", "variant", "plugin", "version"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        add_label(&sel, keys[i], http_target_param(t, keys[i]));

    obs_prof_profile *p = NULL;
    size_t n_windows = 0;
    int rc = run_profile_select(s, &sel, &p, &n_windows, out->error, sizeof out->error);
    if (rc < 0) {
        out->status = status_of(rc);
        return 0;
    }
    char title[512];
    snprintf(title, sizeof title, "CPU profile of run %" PRIu64 ", %zu window%s", run_id, n_windows,
             n_windows == 1 ? "" : "s");
    title_range(title, sizeof title, &sel);
    title_labels(title, sizeof title, &sel);
    rc = render(p, NULL, format, title, out);
    obs_prof_profile_free(p);
    return rc;
}

/* One side ("a" or "b") of a diff request. 0, or -1 after filling the reply. */
static int diff_side(const struct http_target *t, const char *side, uint64_t dflt_run,
                     run_profile_sel *sel, http_runprof_reply *out)
{
    char key[16];
    memset(sel, 0, sizeof *sel);
    sel->to_ns = UINT64_MAX;
    const char *run = http_target_param(t, side);
    if (!run && !dflt_run) {
        reply_fail(out, 400, "query parameter '%s' (a run id) is required", side);
        return -1;
    }
    if (run && (http_parse_u64(run, &sel->run_id) != 0 || sel->run_id == 0)) {
        char clean[64];
        text_sanitize(run, clean, sizeof clean);
        reply_fail(out, 400, "query parameter '%s': run id '%s' is not a positive integer", side,
                   clean);
        return -1;
    }
    if (!run)
        sel->run_id = dflt_run;
    snprintf(key, sizeof key, "%s_from", side);
    if (time_param(t, key, &sel->from_ns, out) != 0)
        return -1;
    snprintf(key, sizeof key, "%s_to", side);
    if (time_param(t, key, &sel->to_ns, out) != 0)
        return -1;
    if (sel->from_ns > sel->to_ns) {
        reply_fail(out, 400, "'%s_from' is after '%s_to'", side, side);
        return -1;
    }
    add_label(sel, "stage", http_target_param(t, "stage"));
    snprintf(key, sizeof key, "%s_variant", side);
    add_label(sel, "variant", http_target_param(t, key));
    return 0;
}

int http_runprof_diff(struct store *s, const struct http_target *t, http_runprof_reply *out)
{
    static const char *const formats[] = {"svg", "folded", NULL};
    memset(out, 0, sizeof *out);
    run_profile_sel a, b;
    if (diff_side(t, "a", 0, &a, out) != 0 || diff_side(t, "b", a.run_id, &b, out) != 0)
        return 0;
    const char *format = choice_param(t, "format", formats, "svg or folded", out);
    if (!format)
        return 0;
    obs_prof_profile *pa = NULL, *pb = NULL;
    char err[sizeof out->error - 8];
    int rc = run_profile_select(s, &a, &pa, NULL, err, sizeof err);
    if (rc < 0) {
        reply_fail(out, status_of(rc), "a: %s", err);
        return 0;
    }
    rc = run_profile_select(s, &b, &pb, NULL, err, sizeof err);
    if (rc < 0) {
        obs_prof_profile_free(pa);
        reply_fail(out, status_of(rc), "b: %s", err);
        return 0;
    }
    char title[512];
    snprintf(title, sizeof title, "CPU profile change: run %" PRIu64, a.run_id);
    title_range(title, sizeof title, &a);
    title_labels(title, sizeof title, &a);
    size_t o = strlen(title);
    if (o < sizeof title)
        snprintf(title + o, sizeof title - o, " -> run %" PRIu64, b.run_id);
    title_range(title, sizeof title, &b);
    title_labels(title, sizeof title, &b);
    rc = render(pb, pa, format, title, out);
    obs_prof_profile_free(pa);
    obs_prof_profile_free(pb);
    return rc;
}
