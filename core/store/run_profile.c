/*
 * run_profile.c - profiles of stored runs (see run_profile.h): the sink
 * that continuous mode hands each window to, and the readers that merge a
 * run's windows over a time range, filter them by tag labels and render
 * them, alone or as the difference of two selections.
 *
 * A window is stored as the profiler encoded it, with names already
 * resolved, so reading needs neither the binaries nor a running profiler:
 * obs_prof_profile_decode, obs_prof_profile_merge and the renderers are
 * pure functions of the blobs.
 */
#include "run_profile.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "http_parse.h"
#include "observatory/stage.h"
#include "plugin.h"
#include "store.h"

/* ------------------------------------------------------------------------ */
/* Recording                                                                 */

/* Continuous mode is process-wide, so its sink context is too. The store is
 * borrowed from hostd, which stops the recording before closing it. */
static struct {
    struct store *store;
    uint64_t run_id;
    _Atomic uint64_t n_failed;
} rec;

/* The sink: runs on the profiler's collector thread (or on the thread that
 * stops continuous mode, for the last window). */
static int store_window(void *ctx, uint64_t start_ns, uint64_t end_ns, const void *blob, size_t len)
{
    (void)ctx;
    int rc = store_put_profile(rec.store, rec.run_id, start_ns, end_ns, blob, len);
    /* One message is enough: a store that refuses one window (disk full)
     * usually refuses the next ones too, every 100 ms or more. */
    if (rc < 0 && atomic_fetch_add(&rec.n_failed, 1) == 0)
        host_log(NULL, OBS_LOG_ERROR,
                 "profiler: run %" PRIu64 ": cannot store the profile window at %" PRIu64
                 " ns (%s); later failures are counted, not logged",
                 rec.run_id, start_ns, obs_strerror(rc));
    return rc;
}

int run_profile_record_start(struct store *s, uint64_t run_id, uint64_t window_ns)
{
    if (!s)
        return OBS_EINVAL;
    if (rec.store)
        return OBS_EAGAIN;
    rec.store = s;
    rec.run_id = run_id;
    atomic_store(&rec.n_failed, 0);
    int rc = obs_prof_continuous_start(window_ns, store_window, NULL);
    if (rc < 0)
        rec.store = NULL;
    return rc;
}

uint64_t run_profile_record_stop(void)
{
    if (!rec.store)
        return 0;
    obs_prof_continuous_stop();
    rec.store = NULL;
    return atomic_load(&rec.n_failed);
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                   */

typedef struct merge_ctx {
    obs_prof_profile *acc; /* NULL until the first window */
    size_t n_windows;
    uint64_t bad_start_ns; /* start of a window that did not decode */
    int rc;
} merge_ctx;

static int merge_window(void *arg, uint64_t start_ns, const void *blob, size_t len)
{
    merge_ctx *m = arg;
    obs_prof_profile *p = NULL;
    int rc = obs_prof_profile_decode(blob, len, &p);
    if (rc == OBS_EINVAL) {
        m->bad_start_ns = start_ns;
        return m->rc = OBS_EIO;
    }
    if (rc < 0)
        return m->rc = rc;
    if (!m->acc) {
        m->acc = p;
    } else {
        rc = obs_prof_profile_merge(m->acc, p);
        obs_prof_profile_free(p);
        if (rc < 0)
            return m->rc = rc;
    }
    m->n_windows++;
    return 0;
}

/* Checks that some sample of `p` has label key=value; else OBS_ENOENT with
 * the values there are in err. An empty value matches anything. */
static int check_label(const obs_prof_profile *p, const obs_prof_label *l, char *err, size_t errlen)
{
    if (!l->value || !*l->value)
        return 0;
    const char **vals = obs_prof_profile_label_values(p, l->key);
    if (!vals)
        return OBS_ENOMEM;
    int found = 0;
    char known[256] = "";
    size_t o = 0;
    for (size_t i = 0; vals[i]; i++) {
        found |= strcmp(vals[i], l->value) == 0;
        if (o < sizeof known)
            o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "", vals[i]);
    }
    int any = vals[0] != NULL;
    free(vals);
    if (found)
        return 0;
    char clean[64];
    http_sanitize(l->value, clean, sizeof clean);
    char cleank[256];
    http_sanitize(any ? known : "none", cleank, sizeof cleank);
    snprintf(err, errlen, "no sample has %s=%s (values of '%s' in this range: %s)", l->key, clean,
             l->key, cleank);
    return OBS_ENOENT;
}

int run_profile_select(struct store *s, const run_profile_sel *sel, obs_prof_profile **out,
                       size_t *n_windows, char *err, size_t errlen)
{
    merge_ctx m = {0};
    *out = NULL;
    if (n_windows)
        *n_windows = 0;
    int rc = store_profiles_scan(s, sel->run_id, sel->from_ns, sel->to_ns, merge_window, &m);
    if (rc == OBS_ENOENT && !m.rc) {
        snprintf(err, errlen, "no run %" PRIu64, sel->run_id);
        goto fail;
    }
    if (rc < 0) {
        if (m.bad_start_ns)
            snprintf(err, errlen,
                     "run %" PRIu64 ": the profile window at %" PRIu64 " ns is malformed",
                     sel->run_id, m.bad_start_ns);
        else
            snprintf(err, errlen, "run %" PRIu64 ": reading its profile failed: %s", sel->run_id,
                     obs_strerror(rc));
        goto fail;
    }
    if (!m.acc) {
        rc = OBS_ENOENT;
        snprintf(err, errlen,
                 "run %" PRIu64 " has no profile stored%s (record one with "
                 "hostd --profile-continuous DUR)",
                 sel->run_id,
                 sel->from_ns || sel->to_ns != UINT64_MAX ? " in that time range" : "");
        goto fail;
    }
    for (size_t i = 0; i < sel->n_match; i++)
        if ((rc = check_label(m.acc, &sel->match[i], err, errlen)) < 0) {
            if (rc == OBS_ENOMEM)
                snprintf(err, errlen, "out of memory");
            goto fail;
        }
    rc = obs_prof_profile_filter(m.acc, sel->match, sel->n_match, out);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (n_windows)
        *n_windows = m.n_windows;
fail:
    obs_prof_profile_free(m.acc);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* HTTP                                                                      */

static void reply_fail(run_profile_reply *out, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_fail(run_profile_reply *out, unsigned status, const char *fmt, ...)
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
                      run_profile_reply *out)
{
    const char *v = http_target_param(t, key);
    if (!v || http_parse_time_ns(v, ns) == 0)
        return 0;
    char clean[64];
    http_sanitize(v, clean, sizeof clean);
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
                                run_profile_reply *out)
{
    const char *v = http_target_param(t, key);
    if (!v)
        return allowed[0];
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(v, allowed[i]) == 0)
            return allowed[i];
    char clean[64];
    http_sanitize(v, clean, sizeof clean);
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
                  const char *title, run_profile_reply *out)
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

int run_profile_http(struct store *s, uint64_t run_id, const struct http_target *t,
                     run_profile_reply *out)
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
                     run_profile_sel *sel, run_profile_reply *out)
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
        http_sanitize(run, clean, sizeof clean);
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

int run_profile_http_diff(struct store *s, const struct http_target *t, run_profile_reply *out)
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
