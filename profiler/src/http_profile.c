/*
 * http_profile.c - the /profile endpoint as a plain function, so that any
 * HTTP server's routing table can call it: query parameters in, status,
 * content type and body out. It takes one window of N seconds (one request
 * at a time; a second one gets 409 and a JSON reason), filters it by the
 * labels asked for, and renders it.
 *
 * Place in the whole: beside the lifecycle at the top (public functions
 * only, declared in obs_profiler.h; nothing below calls it). It opens and
 * ends windows through the public API, waits on the collector, reads the
 * tag table of the shared state and renders; it may include: collector,
 * render_text, state, util.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "obs_profiler.h"
#include "observatory/stage.h"
#include "render_text.h"
#include "state.h"
#include "util.h"

static _Atomic int busy;
static _Atomic uint64_t busy_until_ns, busy_seconds;

static int error_response(obs_prof_http_response *r, int status, const char *code,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int error_response(obs_prof_http_response *r, int status, const char *code, const char *fmt,
                          ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* The shape of every other error of the API: the status as the code,
     * and a word for the kind of failure as the reason. */
    prof_buf b = {0};
    prof_buf_printf(&b, "{\"error\":{\"code\":%d,\"reason\":", status);
    prof_buf_json(&b, code);
    prof_buf_puts(&b, ",\"message\":");
    prof_buf_json(&b, msg);
    prof_buf_puts(&b, "}}\n");
    r->status = status;
    r->content_type = "application/json";
    return prof_buf_finish(&b, &r->body, &r->len);
}

int obs_prof_http_busy(void)
{
    return atomic_load(&busy);
}

static const char *const FORMATS[] = {"svg", "folded", "json", "pprof"};

int obs_prof_http_render(const obs_prof_profile *p, const obs_prof_profile *before,
                         const char *format, const char *title, obs_prof_http_response *resp)
{
    int rc;
    memset(resp, 0, sizeof *resp);
    if (!format)
        format = "svg";
    resp->status = 200;
    if (strcmp(format, "svg") == 0) {
        resp->content_type = "image/svg+xml";
        rc = before ? obs_prof_render_diff_svg(before, p, title, 0, &resp->body, &resp->len)
                    : obs_prof_render_svg(p, title, OBS_PROF_TAG_ROOT, &resp->body, &resp->len);
    } else if (strcmp(format, "folded") == 0) {
        resp->content_type = "text/plain; charset=utf-8";
        rc = before ? prof_render_folded_diff(before, p, 0, &resp->body, &resp->len)
                    : obs_prof_render_folded(p, OBS_PROF_TAG_ROOT, &resp->body, &resp->len);
    } else if (strcmp(format, "json") == 0 && !before) {
        resp->content_type = "application/json";
        rc = obs_prof_render_json(p, &resp->body, &resp->len);
    } else if (strcmp(format, "pprof") == 0 && !before) {
        resp->content_type = "application/vnd.google.protobuf";
        rc = obs_prof_render_pprof(p, (uint8_t **)&resp->body, &resp->len);
    } else {
        return error_response(resp, 400, "bad_request",
                              before ? "format '%s': a difference renders as svg or folded"
                                     : "format '%s': expected svg, folded, json or pprof",
                              format);
    }
    if (rc != 0)
        return error_response(resp, 500, "internal", "rendering the profile failed: %s",
                              rc == OBS_ENOMEM ? "out of memory" : "error");
    return 0;
}

/* The values the process has seen for label `key`, as "a, b, c". */
static void known_values(const char *key, char *buf, size_t len)
{
    buf[0] = 0;
    pthread_mutex_lock(&prof_g.lock);
    const char **v = obs_prof_profile_label_values(prof_g.tagdb, key);
    size_t o = 0;
    for (size_t i = 0; v && v[i] && o < len; i++) {
        int w = snprintf(buf + o, len - o, "%s%s", i ? ", " : "", v[i]);
        o += w > 0 ? (size_t)w : 0;
    }
    int any = v && v[0];
    free(v);
    pthread_mutex_unlock(&prof_g.lock);
    if (!any)
        snprintf(buf, len, "none");
}

int obs_prof_http_profile(const char *const *keys, const char *const *values, size_t n,
                          obs_prof_http_response *resp)
{
    memset(resp, 0, sizeof *resp);
    if (!obs_prof_active())
        return error_response(resp, 503, "unavailable", "the profiler is not running");
    if (!(prof_g.cfg.backends & OBS_PROF_BACKEND_NATIVE))
        return error_response(resp, 503, "unavailable",
                              "the profiler runs the gperftools backend; /profile needs the native "
                              "sampler");
    uint32_t max = prof_g.cfg.max_request_seconds;
    long seconds = 10;
    const char *format = "svg";
    obs_prof_label match[OBS_PROF_MAX_LABELS];
    size_t n_match = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = keys[i], *v = values[i] ? values[i] : "";
        if (strcmp(k, "seconds") == 0) {
            char *end;
            seconds = strtol(v, &end, 10);
            if (!*v || *end || seconds < 1 || seconds > (long)max)
                return error_response(resp, 400, "bad_request",
                                      "seconds: expected an integer from 1 to %u, got '%s'", max, v);
        } else if (strcmp(k, "format") == 0) {
            size_t f;
            for (f = 0; f < sizeof FORMATS / sizeof *FORMATS && strcmp(v, FORMATS[f]) != 0; f++)
                ;
            if (f == sizeof FORMATS / sizeof *FORMATS)
                return error_response(resp, 400, "bad_request",
                                      "format: expected svg, folded, json or pprof, got '%s'", v);
            format = FORMATS[f];
        } else {
            if (n_match == OBS_PROF_MAX_LABELS)
                return error_response(resp, 400, "bad_request",
                                      "at most %d label filters (stage, variant, ...)",
                                      OBS_PROF_MAX_LABELS);
            char known[512];
            known_values(k, known, sizeof known);
            int found = 0;
            pthread_mutex_lock(&prof_g.lock);
            const char **vals = obs_prof_profile_label_values(prof_g.tagdb, k);
            for (size_t j = 0; vals && vals[j] && !found; j++)
                found = strcmp(vals[j], v) == 0;
            free(vals);
            pthread_mutex_unlock(&prof_g.lock);
            if (!found)
                return error_response(resp, 404, "not_found",
                                      "no sampled thread has %s=%s (known values of '%s': %s)", k,
                                      v, k, known);
            match[n_match].key = k;
            match[n_match].value = v;
            n_match++;
        }
    }

    int expected = 0;
    if (!atomic_compare_exchange_strong(&busy, &expected, 1)) {
        uint64_t until = atomic_load(&busy_until_ns), now = prof_monotonic_ns();
        return error_response(resp, 409, "busy",
                              "a %llu s profile is already being taken (%.1f s left); one "
                              "request at a time, try again after it ends",
                              (unsigned long long)atomic_load(&busy_seconds),
                              until > now ? (double)(until - now) / 1e9 : 0.0);
    }
    uint64_t deadline = prof_monotonic_ns() + (uint64_t)seconds * 1000000000ULL;
    atomic_store(&busy_until_ns, deadline);
    atomic_store(&busy_seconds, (uint64_t)seconds);

    obs_prof_window *w = NULL;
    obs_prof_profile *p = NULL, *f = NULL;
    int rc = obs_prof_window_begin(&w);
    if (rc != 0) {
        rc = error_response(resp, 503, "unavailable", "cannot open a profiling window (%d)", rc);
        goto out;
    }
    if (prof_collector_wait(deadline)) {
        obs_prof_window_cancel(w);
        rc = error_response(resp, 503, "unavailable", "the profiler was shut down");
        goto out;
    }
    rc = obs_prof_window_end(w, &p);
    if (rc == 0)
        rc = obs_prof_profile_filter(p, match, n_match, &f);
    if (rc != 0) {
        rc = error_response(resp, rc == OBS_ENOMEM ? 500 : 503, "unavailable",
                            "collecting the profile failed (%d)", rc);
        goto out;
    }
    char title[512];
    size_t o = (size_t)snprintf(title, sizeof title, "CPU profile, %ld s", seconds);
    for (size_t i = 0; i < n_match && o < sizeof title; i++)
        o += (size_t)snprintf(title + o, sizeof title - o, "%s %s=%s", i ? "" : ",", match[i].key,
                              match[i].value);
    rc = obs_prof_http_render(f, NULL, format, title, resp);
out:
    obs_prof_profile_free(p);
    obs_prof_profile_free(f);
    atomic_store(&busy, 0);
    return rc;
}
