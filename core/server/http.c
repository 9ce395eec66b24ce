/*
 * http.c - hostd's HTTP server (libmicrohttpd): the route table, the JSON
 * handlers and the glue to libmicrohttpd. docs/http-api.md documents every
 * endpoint; http.h is the interface.
 *
 * libmicrohttpd runs its own threads (a pool of two, so one slow store read
 * does not hold up a scrape). Each request's raw target is captured by the
 * URI log callback and parsed by http_parse.c; the route table below maps a
 * path pattern and the methods it accepts to a handler, so adding an
 * endpoint (later: POST ones for swaps) is one line in the table. Handlers
 * fill a `reply`; one function turns it into the response. Stage figures
 * come from pipeline_snapshot() only and run history from store.h only:
 * nothing here touches a counter that a stage thread writes.
 */
#include "http.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dashboard.h"
#include "experiment.h"
#include "host.h"
#include "http_parse.h"
#include "obs_profiler.h"
#include "observatory/stage.h"
#include "plugin.h"
#include "run_profile.h"
#include "snapshot.h"
#include "store.h"
#include "swap.h"

#define HTTP_DEFAULT_LISTEN "127.0.0.1:9464"
/* One thread may be busy with a /profile request for its whole duration. */
#define HTTP_THREADS 4
#define HTTP_MAX_CONNECTIONS 64
#define HTTP_TIMEOUT_S 10
#define HTTP_CONN_MEMORY (32 * 1024)
#define HTTP_MAX_CAPTURES 4

static const char CT_JSON[] = "application/json";
static const char CT_METRICS[] = "text/plain; version=0.0.4; charset=utf-8";

struct http_server {
    struct MHD_Daemon *daemon;
    struct pipeline *pipeline;
    struct store *store;
    uint64_t run_id;
    uint16_t port;
    int loopback;          /* bound to a loopback address */
    char *token;           /* required on mutating endpoints when set (Bearer) */
    _Atomic int starting;  /* while MHD_start_daemon runs: keep its last message */
    char start_error[256]; /* that message */
};

/* Per request, created by the URI log callback, freed when it completes. */
/* Request bodies (POST) are read whole, up to this size; more is a 413. */
#define HTTP_MAX_BODY (64 * 1024)

typedef struct request_ctx {
    int responded; /* a response is queued: ignore any request body */
    int started;   /* the headers have been seen (a body may follow) */
    int too_large;
    char *body; /* malloc'd, NUL-terminated */
    size_t body_len;
    char target[]; /* raw request target as received */
} request_ctx;

/* What a handler produces. `body` is malloc'd (freed by libmicrohttpd). */
typedef struct reply {
    unsigned status;
    char *body;
    size_t len;
    const char *content_type;
    char allow[64];            /* Allow header for 405 */
    int persistent;            /* body is static (an embedded file): not freed */
    const char *cache_control; /* NULL: no-store */
    const char *etag;          /* ETag header, or NULL */
    const char *csp;           /* Content-Security-Policy header, or NULL */
    const char *vary;          /* Vary header, or NULL */
} reply;

typedef struct request {
    http_server *srv;
    const http_target *target;
    const char *body; /* POST body, NUL-terminated, or NULL */
    size_t body_len;
    const char *auth;            /* Authorization header, or NULL */
    struct MHD_Connection *conn; /* other request headers (Accept, If-None-Match) */
    const char *captures[HTTP_MAX_CAPTURES];
    reply *out;
} request;

typedef void (*handler_fn)(request *r);

/* ------------------------------------------------------------------------ */
/* Replies                                                                  */

static void reply_json(reply *out, unsigned status, json_t *body /* stolen */)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(16)) : NULL;
    json_decref(body);
    if (!text) {
        static const char oom[] = "{\"error\":{\"code\":500,\"message\":\"out of memory\"}}\n";
        out->status = 500;
        out->body = strdup(oom);
        out->len = out->body ? strlen(oom) : 0;
        out->content_type = CT_JSON;
        return;
    }
    size_t n = strlen(text);
    char *withnl = realloc(text, n + 2);
    if (withnl) {
        withnl[n++] = '\n';
        withnl[n] = '\0';
        text = withnl;
    }
    out->status = status;
    out->body = text;
    out->len = n;
    out->content_type = CT_JSON;
}

static void reply_error(reply *out, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* {"error": {"code": <status>, "message": "..."}}; the message must be
 * printable ASCII already (http_sanitize anything from the request). */
static void reply_error(reply *out, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_json(out, status,
               json_pack("{s:{s:i,s:s}}", "error", "code", (int)status, "message", msg));
}

/* JSON integers are signed 64-bit in jansson; counters never reach 2^63. */
static json_t *ju64(uint64_t v)
{
    return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static json_t *jsec(uint64_t ns)
{
    return json_real((double)ns / 1e9);
}

/* ------------------------------------------------------------------------ */
/* Handlers                                                                 */

static int take_snapshot(request *r, obs_snapshot *snap)
{
    if (!r->srv->pipeline) {
        reply_error(r->out, 503, "no pipeline is loaded");
        return -1;
    }
    if (pipeline_snapshot(r->srv->pipeline, snap) != 0) {
        reply_error(r->out, 500, "out of memory taking a snapshot");
        return -1;
    }
    return 0;
}

static void h_metrics(request *r)
{
    obs_snapshot snap;
    char *text = NULL;
    size_t len = 0;
    int rc;
    if (r->srv->pipeline) {
        if (pipeline_snapshot(r->srv->pipeline, &snap) != 0) {
            reply_error(r->out, 500, "out of memory taking a snapshot");
            return;
        }
        rc = metrics_render(&snap, &text, &len);
        snapshot_free(&snap);
    } else {
        rc = metrics_render(NULL, &text, &len);
    }
    if (rc != 0) {
        reply_error(r->out, 500, "out of memory rendering metrics");
        return;
    }
    r->out->status = 200;
    r->out->body = text;
    r->out->len = len;
    r->out->content_type = CT_METRICS;
}

static void h_healthz(request *r)
{
    reply_json(r->out, 200, json_pack("{s:s}", "status", "ok"));
}

static void h_readyz(request *r)
{
    obs_snapshot snap;
    if (take_snapshot(r, &snap) != 0)
        return;
    int ready = snap.state == SNAPSHOT_RUNNING && !snap.failed;
    reply_json(r->out, ready ? 200 : 503,
               json_pack("{s:b,s:s,s:b}", "ready", ready, "state", snapshot_state_name(snap.state),
                         "failed", snap.failed != 0));
    snapshot_free(&snap);
}

static uint64_t uptime_ns(const obs_snapshot *s)
{
    if (!s->t_start_ns)
        return 0;
    uint64_t until = s->t_end_ns ? s->t_end_ns : s->t_mono_ns;
    return until > s->t_start_ns ? until - s->t_start_ns : 0;
}

static void h_status(request *r)
{
    json_t *o = json_pack("{s:s}", "version", OBS_VERSION);
    if (!o) {
        reply_json(r->out, 500, NULL);
        return;
    }
    json_object_set_new(o, "run_id", r->srv->run_id ? ju64(r->srv->run_id) : json_null());
    json_object_set_new(o, "store", json_boolean(r->srv->store != NULL));
    if (r->srv->pipeline) {
        obs_snapshot snap;
        if (pipeline_snapshot(r->srv->pipeline, &snap) != 0) {
            json_decref(o);
            reply_error(r->out, 500, "out of memory taking a snapshot");
            return;
        }
        json_object_set_new(o, "pipeline", json_string(snap.pipeline));
        json_object_set_new(o, "state", json_string(snapshot_state_name(snap.state)));
        json_object_set_new(o, "failed", json_boolean(snap.failed));
        json_object_set_new(o, "stages", ju64(snap.n_stages));
        json_object_set_new(o, "uptime_seconds", jsec(uptime_ns(&snap)));
        json_object_set_new(o, "duration_seconds", jsec(snap.duration_ns));
        json_object_set_new(o, "warmed_up", json_boolean(snap.t_warm_ns != 0));
        json_object_set_new(o, "time_unix", jsec(snap.t_wall_ns));
        snapshot_free(&snap);
    } else {
        json_object_set_new(o, "pipeline", json_null());
        json_object_set_new(o, "state", json_null());
    }
    reply_json(r->out, 200, o);
}

static json_t *hist_json(const histogram *h)
{
    if (!h)
        return json_null();
    return json_pack(
        "{s:o,s:o,s:o,s:o,s:f,s:o,s:o,s:o,s:o}", "count", ju64(histogram_count(h)), "sum_seconds",
        jsec(histogram_sum_ns(h)), "min_seconds", jsec(histogram_min_ns(h)), "max_seconds",
        jsec(histogram_max_ns(h)), "mean_seconds", histogram_mean_ns(h) / 1e9, "p50_seconds",
        jsec(histogram_quantile_ns(h, 0.5)), "p90_seconds", jsec(histogram_quantile_ns(h, 0.9)),
        "p99_seconds", jsec(histogram_quantile_ns(h, 0.99)), "p999_seconds",
        jsec(histogram_quantile_ns(h, 0.999)));
}

static json_t *stage_json(const stage_sample *s)
{
    json_t *o = json_object();
    json_t *reasons = json_object(), *counters = json_object();
    if (!o || !reasons || !counters) {
        json_decref(o);
        json_decref(reasons);
        json_decref(counters);
        return NULL;
    }
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "plugin", json_string(s->plugin));
    json_object_set_new(o, "version", json_string(s->version));
    json_object_set_new(o, "kind", json_string(s->kind));
    json_object_set_new(o, "build_id", json_string(s->build_id));
    json_object_set_new(o, "records_in", ju64(s->records_in));
    json_object_set_new(o, "records_out", ju64(s->records_out));
    json_object_set_new(o, "bytes_in", ju64(s->bytes_in));
    json_object_set_new(o, "bytes_out", ju64(s->bytes_out));
    json_object_set_new(o, "batches_in", ju64(s->batches_in));
    json_object_set_new(o, "batches_out", ju64(s->batches_out));
    json_object_set_new(o, "errors", ju64(s->errors));
    json_object_set_new(reasons, "callback", ju64(s->callback_errors));
    for (uint32_t c = 0; c < s->n_counters; c++)
        json_object_set_new(s->counters[c].kind == OBS_COUNTER_ERROR ? reasons : counters,
                            s->counters[c].name, ju64(s->counters[c].value));
    json_object_set_new(o, "errors_by_reason", reasons);
    json_object_set_new(o, "counters", counters);
    json_object_set_new(o, "callback_wall_seconds", jsec(s->callback_wall_ns));
    json_object_set_new(o, "callback_cpu_seconds", jsec(s->callback_cpu_ns));
    json_object_set_new(o, "thread_cpu_seconds", jsec(s->thread_cpu_ns));
    json_object_set_new(o, "allocations", ju64(s->allocs));
    json_object_set_new(o, "frees", ju64(s->frees));
    json_object_set_new(o, "allocated_bytes", ju64(s->alloc_bytes));
    json_object_set_new(o, "blocked_seconds", jsec(s->blocked_ns));
    json_object_set_new(o, "ring",
                        s->ring_capacity
                            ? json_pack("{s:I,s:I}", "occupancy", (json_int_t)s->ring_occupancy,
                                        "capacity", (json_int_t)s->ring_capacity)
                            : json_null());
    if (strcmp(s->kind, "generator") == 0)
        json_object_set_new(o, "generator",
                            json_pack("{s:o,s:o,s:o}", "records_scheduled",
                                      ju64(s->records_scheduled), "late_records",
                                      ju64(s->late_records), "idle_seconds", jsec(s->idle_ns)));
    json_object_set_new(o, "service", hist_json(s->service));
    json_object_set_new(o, "lag", hist_json(s->lag));
    json_object_set_new(o, "latency", hist_json(s->latency));
    return o;
}

static void h_stages(request *r)
{
    obs_snapshot snap;
    if (take_snapshot(r, &snap) != 0)
        return;
    json_t *arr = json_array();
    json_t *o = json_pack("{s:s,s:s,s:o}", "pipeline", snap.pipeline, "state",
                          snapshot_state_name(snap.state), "time_unix", jsec(snap.t_wall_ns));
    int ok = arr && o;
    for (size_t i = 0; ok && i < snap.n_stages; i++)
        ok = json_array_append_new(arr, stage_json(&snap.stages[i])) == 0;
    snapshot_free(&snap);
    if (!ok) {
        json_decref(arr);
        json_decref(o);
        reply_json(r->out, 500, NULL);
        return;
    }
    json_object_set_new(o, "stages", arr);
    reply_json(r->out, 200, o);
}

/* Replies with the error for a store call that failed; `id` names the run. */
static void reply_store_error(request *r, int rc, uint64_t id)
{
    if (rc == OBS_ENOENT)
        reply_error(r->out, 404, "no run %llu", (unsigned long long)id);
    else
        reply_error(r->out, 500, "store read failed: %s", obs_strerror(rc));
}

static int need_store(request *r)
{
    if (r->srv->store)
        return 0;
    reply_error(r->out, 503, "no run store is configured (store.path)");
    return -1;
}

static int run_id_capture(request *r, uint64_t *id)
{
    if (http_parse_u64(r->captures[0], id) != 0 || *id == 0) {
        char clean[64];
        http_sanitize(r->captures[0], clean, sizeof(clean));
        reply_error(r->out, 400, "run id '%s' is not a positive integer", clean);
        return -1;
    }
    return 0;
}

static void h_runs(request *r)
{
    json_t *runs = NULL;
    if (need_store(r) != 0)
        return;
    int rc = store_runs_json(r->srv->store, &runs);
    if (rc != 0) {
        reply_error(r->out, 500, "store read failed: %s", obs_strerror(rc));
        return;
    }
    reply_json(r->out, 200, json_pack("{s:o}", "runs", runs));
}

static void h_run(request *r)
{
    uint64_t id;
    json_t *run = NULL;
    if (need_store(r) != 0 || run_id_capture(r, &id) != 0)
        return;
    int rc = store_run_json(r->srv->store, id, &run);
    if (rc != 0) {
        reply_store_error(r, rc, id);
        return;
    }
    reply_json(r->out, 200, run);
}

static void h_run_metrics(request *r)
{
    uint64_t id;
    json_t *names = NULL;
    if (need_store(r) != 0 || run_id_capture(r, &id) != 0)
        return;
    int rc = store_metrics_json(r->srv->store, id, &names);
    if (rc != 0) {
        reply_store_error(r, rc, id);
        return;
    }
    reply_json(r->out, 200, json_pack("{s:o,s:o}", "run_id", ju64(id), "metrics", names));
}

static int time_param(request *r, const char *key, uint64_t *out)
{
    const char *v = http_target_param(r->target, key);
    if (!v)
        return 0;
    if (http_parse_time_ns(v, out) != 0) {
        char clean[64];
        http_sanitize(v, clean, sizeof(clean));
        reply_error(r->out, 400,
                    "query parameter '%s': '%s' is not a Unix time in seconds "
                    "(e.g. 1764241234 or 1764241234.5)",
                    key, clean);
        return -1;
    }
    return 0;
}

static void h_run_series(request *r)
{
    uint64_t id, from = 0, to = UINT64_MAX;
    json_t *points = NULL;
    if (need_store(r) != 0 || run_id_capture(r, &id) != 0)
        return;
    const char *metric = http_target_param(r->target, "metric");
    if (!metric) {
        reply_error(r->out, 400,
                    "query parameter 'metric' is required (names: /api/v1/runs/%llu/metrics)",
                    (unsigned long long)id);
        return;
    }
    if (!http_valid_metric_name(metric)) {
        char clean[64];
        http_sanitize(metric, clean, sizeof(clean));
        reply_error(r->out, 400,
                    "query parameter 'metric': '%s' is not a metric name "
                    "(1-200 characters of A-Z a-z 0-9 _ . : / -)",
                    clean);
        return;
    }
    if (time_param(r, "from", &from) != 0 || time_param(r, "to", &to) != 0)
        return;
    if (from > to) {
        reply_error(r->out, 400, "'from' is after 'to'");
        return;
    }
    int rc = store_series_json(r->srv->store, id, metric, from, to, &points);
    if (rc != 0) {
        reply_store_error(r, rc, id);
        return;
    }
    reply_json(r->out, 200,
               json_pack("{s:o,s:s,s:o,s:o,s:o}", "run_id", ju64(id), "metric", metric, "from",
                         jsec(from), "to", to == UINT64_MAX ? json_null() : jsec(to), "points",
                         points));
}

/* GET /profile: a flame graph (or folded stacks, JSON, pprof) of the stage
 * threads over the next N seconds, from the profiler library; blocks this
 * connection's thread meanwhile (the pool has others for /metrics). */
static void h_profile(request *r)
{
    const char *keys[HTTP_MAX_PARAMS], *values[HTTP_MAX_PARAMS];
    size_t n = r->target->n_params;
    for (size_t i = 0; i < n; i++) {
        keys[i] = r->target->params[i].key;
        values[i] = r->target->params[i].value;
    }
    obs_prof_http_response resp = {0};
    if (obs_prof_http_profile(keys, values, n, &resp) != 0 || !resp.body) {
        free(resp.body);
        reply_error(r->out, 500, "out of memory");
        return;
    }
    r->out->status = (unsigned)resp.status;
    r->out->body = resp.body;
    r->out->len = resp.len;
    r->out->content_type = resp.content_type;
}

/* Moves a stored-profile reply (run_profile.h) into ours. */
static void reply_run_profile(request *r, int rc, run_profile_reply *rp)
{
    if (rc != 0)
        reply_error(r->out, 500, "out of memory");
    else if (rp->status != 200)
        reply_error(r->out, rp->status, "%s", rp->error);
    else {
        r->out->status = 200;
        r->out->body = rp->body;
        r->out->len = rp->len;
        r->out->content_type = rp->content_type;
    }
}

/* GET /api/v1/runs/{id}/profile: the stored continuous-mode windows of a
 * run over a time range, merged, filtered and rendered (run_profile.c). */
static void h_run_profile(request *r)
{
    uint64_t id;
    run_profile_reply rp;
    if (need_store(r) != 0 || run_id_capture(r, &id) != 0)
        return;
    reply_run_profile(r, run_profile_http(r->srv->store, id, r->target, &rp), &rp);
}

/* GET /api/v1/profiles/diff: differential flame graph of two stored
 * selections (runs, time ranges, variants). */
static void h_profiles_diff(request *r)
{
    run_profile_reply rp;
    if (need_store(r) != 0)
        return;
    reply_run_profile(r, run_profile_http_diff(r->srv->store, r->target, &rp), &rp);
}

/* Mutating endpoints: on loopback open unless a token is set; beyond
 * loopback only with the token. Replies and returns -1 when refused. */
static int need_authority(request *r)
{
    http_server *srv = r->srv;
    /* A page from another site open in the user's browser may POST here
     * (loopback is no protection against that): browsers send Origin with
     * such requests, and it must name this server itself. Clients that send
     * no Origin (curl, hostd swap, the operator) are not affected. */
    const char *origin =
        r->conn ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin") : NULL;
    const char *host =
        r->conn ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host") : NULL;
    if (origin) {
        const char *o = strncmp(origin, "http://", 7) == 0 ? origin + 7 : NULL;
        if (!o || !host || strcmp(o, host) != 0) {
            reply_error(r->out, 403, "cross-site request refused (Origin does not match Host)");
            return -1;
        }
    }
    if (!srv->token) {
        if (srv->loopback)
            return 0;
        reply_error(r->out, 403,
                    "changes are refused when listening beyond loopback without a token "
                    "(start hostd with OBS_HTTP_TOKEN set)");
        return -1;
    }
    const char *a = r->auth;
    if (a && strncmp(a, "Bearer ", 7) == 0 && strcmp(a + 7, srv->token) == 0)
        return 0;
    reply_error(r->out, 401, "this endpoint needs 'Authorization: Bearer <token>'");
    return -1;
}

/* A JSON scalar as the text a YAML config would hold. */
static char *scalar_text(json_t *v)
{
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_true(v))
        return strdup("true");
    if (json_is_false(v))
        return strdup("false");
    if (json_is_integer(v) || json_is_real(v))
        return json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    return NULL;
}

/* Converts a JSON object of plugin parameters into cfg_param entries (keys
 * borrowed from `obj`, values owned: free with params_free). Replies 400
 * naming `where`.key for a value that is not a scalar. Returns 0, or -1
 * after replying. */
static int params_from_json(request *r, json_t *obj, const char *where, cfg_param **out, size_t *n)
{
    const char *key;
    json_t *v;
    *n = 0;
    *out = calloc(json_object_size(obj) + 1, sizeof(cfg_param));
    if (!*out) {
        reply_error(r->out, 500, "out of memory");
        return -1;
    }
    json_object_foreach(obj, key, v)
    {
        char *text = scalar_text(v);
        if (!text) {
            char clean[64];
            http_sanitize(key, clean, sizeof clean);
            reply_error(r->out, 400, "%s.%s: must be a string, number or boolean", where, clean);
            return -1;
        }
        (*out)[*n].key = (char *)key;
        (*out)[*n].value = text;
        (*n)++;
    }
    return 0;
}

static void params_free(cfg_param *params, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(params[i].value);
    free(params);
}

static unsigned status_of(int rc)
{
    switch (rc) {
    case OBS_ENOENT: return 404;
    case OBS_EAGAIN:
    case OBS_ESTATE: return 409;
    case OBS_ENOMEM:
    case OBS_EIO: return 500;
    default: return 422; /* a plugin or its parameters refused */
    }
}

/* POST /api/v1/stages/{name}/swap
 * {"plugin": "xf_json_fast", "version": "1.0.0", "params": {...},
 *  "handover": true, "timeout_s": 10} */
static void h_swap(request *r)
{
    if (need_authority(r) != 0)
        return;
    if (!r->srv->pipeline) {
        reply_error(r->out, 503, "no pipeline");
        return;
    }
    json_error_t jerr;
    json_t *body = r->body ? json_loadb(r->body, r->body_len, 0, &jerr) : NULL;
    if (!json_is_object(body)) {
        reply_error(r->out, 400,
                    "body must be a JSON object like {\"plugin\": \"NAME\", "
                    "\"version\": \"X.Y.Z\"}%s%s",
                    body || !r->body ? "" : ": ", body || !r->body ? "" : jerr.text);
        json_decref(body);
        return;
    }
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "plugin") && strcmp(key, "version") && strcmp(key, "params") &&
            strcmp(key, "handover") && strcmp(key, "timeout_s")) {
            char clean[64];
            http_sanitize(key, clean, sizeof clean);
            reply_error(r->out, 400,
                        "unknown key '%s'; allowed: plugin, version, params, handover, timeout_s",
                        clean);
            json_decref(body);
            return;
        }
    }
    json_t *jp = json_object_get(body, "plugin"), *jv = json_object_get(body, "version");
    json_t *jparams = json_object_get(body, "params"), *jh = json_object_get(body, "handover");
    json_t *jt = json_object_get(body, "timeout_s");
    if (!json_is_string(jp) || (jv && !json_is_string(jv)) ||
        (jparams && !json_is_object(jparams)) || (jh && !json_is_boolean(jh)) ||
        (jt &&
         (!json_is_number(jt) || json_number_value(jt) <= 0 || json_number_value(jt) > 600))) {
        reply_error(r->out, 400,
                    "'plugin' must be a string; 'version' a string; 'params' an object; "
                    "'handover' a boolean; 'timeout_s' a number in (0, 600]");
        json_decref(body);
        return;
    }
    swap_spec spec = {
        .plugin = json_string_value(jp),
        .version = jv ? json_string_value(jv) : NULL,
        .no_handover = jh && json_is_false(jh),
        .timeout_ns = jt ? (uint64_t)(json_number_value(jt) * 1e9) : 0,
    };
    cfg_param *params = NULL;
    size_t n = 0;
    if (jparams) {
        if (params_from_json(r, jparams, "params", &params, &n) != 0)
            goto out;
        spec.params = params;
        spec.n_params = n;
        spec.params_given = 1;
    }
    char err[1024];
    swap_result res;
    const char *stage_name = r->captures[0];
    int rc = pipeline_swap(r->srv->pipeline, stage_name, &spec, &res, err, sizeof err);
    if (rc != 0) {
        char clean[1024];
        http_sanitize(err, clean, sizeof clean);
        reply_error(r->out, status_of(rc), "%s", clean);
        goto out;
    }
    json_t *o = json_pack("{s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s}, s:s, s:f, s:f, s:f, s:I}",
                          "stage", res.stage, "from", "plugin", res.old_plugin, "version",
                          res.old_version, "to", "plugin", res.new_plugin, "version",
                          res.new_version, "path", res.new_path, "build_id", res.new_build_id,
                          "state", res.state == SWAP_STATE_HANDED_OVER ? "handed_over" : "flushed",
                          "load_s", (double)res.load_ns / 1e9, "wait_s", (double)res.wait_ns / 1e9,
                          "pause_s", (double)res.pause_ns / 1e9, "swaps", (json_int_t)res.n_swaps);
    if (o && r->srv->store && r->srv->run_id) {
        json_t *ev = json_deep_copy(o);
        if (ev) {
            json_object_set_new(ev, "event", json_string("swap"));
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            store_put_event(r->srv->store, r->srv->run_id,
                            (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, ev);
            json_decref(ev);
        }
    }
    reply_json(r->out, 200, o);
out:
    params_free(params, n);
    json_decref(body);
}

/* Reads the id capture of /api/v1/experiments/{id}[...]; replies 404. */
static experiment *experiment_capture(request *r)
{
    char *end;
    const char *c = r->captures[0];
    unsigned long long id = c ? strtoull(c, &end, 10) : 0;
    experiment *e =
        (c && *c && !*end && r->srv->pipeline) ? experiment_find(r->srv->pipeline, id) : NULL;
    if (!e) {
        char clean[32];
        http_sanitize(c ? c : "", clean, sizeof clean);
        reply_error(r->out, 404, "no experiment '%s' (GET /api/v1/experiments lists them)", clean);
    }
    return e;
}

static void h_experiments(request *r)
{
    if (!r->srv->pipeline) {
        reply_error(r->out, 503, "no pipeline");
        return;
    }
    json_t *arr = experiments_json(r->srv->pipeline);
    if (!arr)
        reply_error(r->out, 500, "out of memory");
    else
        reply_json(r->out, 200, arr);
}

/* An experiment as JSON, with `status` (200, or 201 when just started). */
static void reply_experiment(request *r, unsigned status, experiment *e)
{
    json_t *j = experiment_json(e);
    if (!j)
        reply_error(r->out, 500, "out of memory");
    else
        reply_json(r->out, status, j);
}

static void h_experiment(request *r)
{
    experiment *e = experiment_capture(r);
    if (e)
        reply_experiment(r, 200, e);
}

static void h_experiment_stop(request *r)
{
    if (need_authority(r) != 0)
        return;
    experiment *e = experiment_capture(r);
    if (!e)
        return;
    experiment_stop(e);
    experiment_wait(e, 10000000000ull);
    reply_experiment(r, 200, e);
}

/* POST /api/v1/experiments
 * {"stage": S, "mode": "duet" | "interleaved", "b": {"plugin", "version", "params"},
 *  "aa": false, "threshold": 0.01, "max_seconds": 60, "looks": 10, "block_ms": 200,
 *  "seed": N (replays a schedule; default: a fresh one, reported)} */
static void h_experiment_start(request *r)
{
    if (need_authority(r) != 0)
        return;
    if (!r->srv->pipeline) {
        reply_error(r->out, 503, "no pipeline");
        return;
    }
    json_error_t jerr;
    json_t *body = r->body ? json_loadb(r->body, r->body_len, 0, &jerr) : NULL;
    cfg_param *params = NULL;
    size_t n = 0;
    if (!json_is_object(body)) {
        reply_error(r->out, 400,
                    "body must be a JSON object like {\"stage\": \"parse\", "
                    "\"b\": {\"plugin\": \"NAME\"}}");
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        static const char *const allowed[] = {"stage",     "mode",        "b",     "aa",
                                              "threshold", "max_seconds", "looks", "block_ms",
                                              "seed",      NULL};
        int found = 0;
        for (int i = 0; allowed[i]; i++)
            found |= strcmp(key, allowed[i]) == 0;
        if (!found) {
            char clean[64];
            http_sanitize(key, clean, sizeof clean);
            reply_error(r->out, 400,
                        "unknown key '%s'; allowed: stage, mode, b, aa, threshold, max_seconds, "
                        "looks, block_ms, seed",
                        clean);
            goto out;
        }
    }
    json_t *jstage = json_object_get(body, "stage"), *jmode = json_object_get(body, "mode");
    json_t *jb = json_object_get(body, "b"), *jaa = json_object_get(body, "aa");
    json_t *jth = json_object_get(body, "threshold"), *jmax = json_object_get(body, "max_seconds");
    json_t *jlooks = json_object_get(body, "looks"), *jblock = json_object_get(body, "block_ms");
    json_t *jseed = json_object_get(body, "seed");
    if (!json_is_string(jstage) || (jmode && !json_is_string(jmode)) ||
        (jb && !json_is_object(jb)) || (jaa && !json_is_boolean(jaa)) ||
        (jth &&
         (!json_is_number(jth) || json_number_value(jth) <= 0 || json_number_value(jth) >= 1)) ||
        (jmax && (!json_is_number(jmax) || json_number_value(jmax) <= 0 ||
                  json_number_value(jmax) > 86400)) ||
        (jlooks && (!json_is_integer(jlooks) || json_integer_value(jlooks) < 1 ||
                    json_integer_value(jlooks) > 1000)) ||
        (jblock && (!json_is_integer(jblock) || json_integer_value(jblock) < 10 ||
                    json_integer_value(jblock) > 10000)) ||
        (jseed && (!json_is_integer(jseed) || json_integer_value(jseed) < 1))) {
        reply_error(r->out, 400,
                    "'stage' must be a string, 'mode' \"duet\" or \"interleaved\", 'b' an "
                    "object, 'aa' a boolean, 'threshold' in (0, 1), 'max_seconds' in (0, 86400], "
                    "'looks' 1..1000, 'block_ms' 10..10000, 'seed' a positive integer");
        goto out;
    }
    exp_mode mode = EXP_DUET;
    if (jmode && strcmp(json_string_value(jmode), "interleaved") == 0) {
        mode = EXP_INTERLEAVED;
    } else if (jmode && strcmp(json_string_value(jmode), "duet") != 0) {
        reply_error(r->out, 400, "'mode' must be \"duet\" or \"interleaved\"");
        goto out;
    }
    if (jblock && mode != EXP_INTERLEAVED) {
        reply_error(r->out, 400, "'block_ms' applies to \"mode\": \"interleaved\" only");
        goto out;
    }
    int aa = jaa && json_is_true(jaa);
    json_t *jp = jb ? json_object_get(jb, "plugin") : NULL;
    json_t *jv = jb ? json_object_get(jb, "version") : NULL;
    json_t *jparams = jb ? json_object_get(jb, "params") : NULL;
    if ((!aa && !json_is_string(jp)) || (jv && !json_is_string(jv)) ||
        (jparams && !json_is_object(jparams))) {
        reply_error(r->out, 400,
                    "'b' needs \"plugin\" (a string; or set \"aa\": true), an optional "
                    "\"version\" string and \"params\" object");
        goto out;
    }
    exp_spec spec = {
        .stage = json_string_value(jstage),
        .plugin = jp ? json_string_value(jp) : NULL,
        .version = jv ? json_string_value(jv) : NULL,
        .aa = aa,
        .threshold = jth ? json_number_value(jth) : 0,
        .max_seconds = jmax ? json_number_value(jmax) : 0,
        .n_looks = jlooks ? (uint32_t)json_integer_value(jlooks) : 0,
        .mode = mode,
        .block_ms = jblock ? (uint32_t)json_integer_value(jblock) : 0,
        .seed = jseed ? (uint64_t)json_integer_value(jseed) : 0,
    };
    if (jparams) {
        if (params_from_json(r, jparams, "b.params", &params, &n) != 0)
            goto out;
        spec.params = params;
        spec.n_params = n;
        spec.params_given = 1;
    }
    char err[1024];
    experiment *e = NULL;
    int rc = experiment_start(r->srv->pipeline, &spec, r->srv->store, r->srv->run_id, &e, err,
                              sizeof err);
    if (rc != 0) {
        char clean[1024];
        http_sanitize(err, clean, sizeof clean);
        reply_error(r->out, rc == OBS_EINVAL ? 400 : status_of(rc), "%s", clean);
        goto out;
    }
    reply_experiment(r, 201, e);
out:
    params_free(params, n);
    json_decref(body);
}

static void h_index(request *r);

/* The dashboard's pages (docs/dashboard.md): embedded files (dashboard.h),
 * revalidated by ETag; the page may load only what hostd itself serves. */
static void reply_dashboard_file(request *r, const char *name)
{
    const dashboard_file *f = dashboard_lookup(name);
    if (!f) {
        char clean[128];
        http_sanitize(name, clean, sizeof clean);
        reply_error(r->out, 404, "no such dashboard file: %s", clean);
        return;
    }
    const char *inm =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    r->out->status = dashboard_etag_matches(inm, f->etag) ? 304 : 200;
    r->out->body = r->out->status == 200 ? (char *)f->data : NULL;
    r->out->len = r->out->status == 200 ? f->len : 0;
    r->out->persistent = 1;
    r->out->content_type = f->content_type;
    r->out->etag = f->etag;
    r->out->cache_control = "no-cache";
    r->out->csp = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
}

/* GET /: the dashboard for a browser (its Accept names text/html); the
 * endpoint list, as before, for curl and scripts. */
static void h_root(request *r)
{
    const char *accept = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept");
    if (accept && strstr(accept, "text/html"))
        reply_dashboard_file(r, "index.html");
    else
        h_index(r);
    r->out->vary = "Accept";
}

/* GET /assets/{file}: the dashboard's scripts and styles. */
static void h_asset(request *r)
{
    char name[96];
    snprintf(name, sizeof name, "assets/%s", r->captures[0]);
    reply_dashboard_file(r, name);
}

/* The route table. HEAD is accepted wherever GET is. `params` lists the
 * query parameters an endpoint takes; any other one is a 400. */
static const struct route {
    const char *pattern;
    unsigned methods;
    const char *params;
    handler_fn fn;
    const char *about;
} routes[] = {
    {"/", HTTP_GET, NULL, h_root,
     "the dashboard for a browser (Accept: text/html), else this list"},
    {"/api/v1", HTTP_GET, NULL, h_index, "this list"},
    {"/assets/{file}", HTTP_GET, NULL, h_asset, "the dashboard's scripts and styles"},
    {"/metrics", HTTP_GET, NULL, h_metrics, "Prometheus metrics (text format 0.0.4)"},
    {"/healthz", HTTP_GET, NULL, h_healthz, "200 while the server answers"},
    {"/readyz", HTTP_GET, NULL, h_readyz, "200 while the pipeline runs, else 503"},
    {"/api/v1/status", HTTP_GET, NULL, h_status, "version, pipeline state, uptime, run id"},
    {"/api/v1/stages", HTTP_GET, NULL, h_stages, "every stage's figures now"},
    {"/api/v1/runs", HTTP_GET, NULL, h_runs, "stored runs, newest first"},
    {"/api/v1/runs/{id}", HTTP_GET, NULL, h_run, "one run: facts and report"},
    {"/api/v1/runs/{id}/metrics", HTTP_GET, NULL, h_run_metrics, "metric names stored for a run"},
    {"/api/v1/runs/{id}/series", HTTP_GET, "metric,from,to", h_run_series,
     "points of one metric of a run"},
    {"/api/v1/stages/{name}/swap", HTTP_POST, NULL, h_swap,
     "hot-swap a stage: {\"plugin\", \"version\", \"params\", \"handover\"}"},
    {"/api/v1/experiments", HTTP_GET, NULL, h_experiments, "A/B experiments of this run"},
    {"/api/v1/experiments", HTTP_POST, NULL, h_experiment_start,
     "start an experiment: {\"stage\", \"mode\", \"b\": {\"plugin\", \"version\"}, \"aa\", "
     "\"block_ms\"}"},
    {"/api/v1/experiments/{id}", HTTP_GET, NULL, h_experiment, "one experiment, live"},
    {"/api/v1/experiments/{id}/stop", HTTP_POST, NULL, h_experiment_stop, "stop an experiment"},
    {"/profile", HTTP_GET, "seconds,format,stage,variant,plugin,version", h_profile,
     "profile of the stage threads for N seconds: format=svg|folded|json|pprof"},
    {"/api/v1/runs/{id}/profile", HTTP_GET, "from,to,format,stage,variant,plugin,version",
     h_run_profile, "stored profile of a run (--profile-continuous) over a time range"},
    {"/api/v1/profiles/diff", HTTP_GET,
     "a,b,a_from,a_to,b_from,b_to,a_variant,b_variant,stage,format", h_profiles_diff,
     "differential flame graph of two stored profiles: runs, time ranges or variants"},
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

static void h_index(request *r)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < N_ROUTES; i++) {
        char allow[64];
        unsigned m = routes[i].methods | (routes[i].methods & HTTP_GET ? HTTP_HEAD : 0);
        http_allow_header(m, allow, sizeof(allow));
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "path", routes[i].pattern, "methods",
                                             allow, "about", routes[i].about));
    }
    reply_json(r->out, arr ? 200 : 500, arr ? json_pack("{s:o}", "endpoints", arr) : NULL);
}

/* Routes a request: 400 for a bad target, 404 for an unknown path, 405 for
 * a known path and another method, else the handler's reply. */
static void dispatch(http_server *srv, const char *raw, const char *method, const char *body,
                     size_t body_len, const char *auth, struct MHD_Connection *conn, reply *out)
{
    http_target t;
    char err[256];
    unsigned bit = http_method_bit(method);
    int rc = http_target_parse(raw, strlen(raw), &t, err, sizeof(err));
    if (rc == OBS_ENOMEM) {
        reply_error(out, 500, "out of memory");
        return;
    }
    if (rc != 0) {
        reply_error(out, 400, "bad request target: %s", err);
        return;
    }
    unsigned allowed = 0;
    for (size_t i = 0; i < N_ROUTES; i++) {
        request r = {.srv = srv,
                     .target = &t,
                     .out = out,
                     .body = body,
                     .body_len = body_len,
                     .auth = auth,
                     .conn = conn};
        if (!http_route_match(routes[i].pattern, &t, r.captures, HTTP_MAX_CAPTURES))
            continue;
        unsigned methods = routes[i].methods | (routes[i].methods & HTTP_GET ? HTTP_HEAD : 0);
        allowed |= methods;
        if (!(bit & methods))
            continue;
        if (http_target_check_params(&t, routes[i].params, err, sizeof(err)) != 0)
            reply_error(out, 400, "%s", err);
        else
            routes[i].fn(&r);
        http_target_free(&t);
        return;
    }
    char clean[128];
    http_sanitize(t.path, clean, sizeof(clean));
    if (allowed) {
        char m[16];
        http_sanitize(method ? method : "", m, sizeof(m));
        http_allow_header(allowed, out->allow, sizeof(out->allow));
        reply_error(out, 405, "method %s not allowed on %s; allowed: %s", m, clean, out->allow);
    } else {
        reply_error(out, 404, "no such endpoint: %s (GET /api/v1 lists them)", clean);
    }
    http_target_free(&t);
}

/* ------------------------------------------------------------------------ */
/* libmicrohttpd glue                                                       */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    size_t n = strlen(uri);
    request_ctx *ctx = malloc(sizeof(*ctx) + n + 1);
    if (ctx) {
        ctx->responded = 0;
        ctx->started = 0;
        ctx->too_large = 0;
        ctx->body = NULL;
        ctx->body_len = 0;
        memcpy(ctx->target, uri, n + 1);
    }
    return ctx; /* NULL (out of memory) is answered with a 500 */
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    request_ctx *ctx = *con_cls;
    if (ctx)
        free(ctx->body);
    free(ctx);
    *con_cls = NULL;
}

static enum MHD_Result queue_reply(struct MHD_Connection *conn, reply *out)
{
    struct MHD_Response *resp;
    if (out->body)
        resp = MHD_create_response_from_buffer(
            out->len, out->body, out->persistent ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_FREE);
    else
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        if (!out->persistent)
            free(out->body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            out->content_type ? out->content_type : CT_JSON);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            out->cache_control ? out->cache_control : "no-store");
    if (out->etag)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, out->etag);
    if (out->csp)
        MHD_add_response_header(resp, "Content-Security-Policy", out->csp);
    if (out->vary)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, out->vary);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (out->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, out->allow);
    enum MHD_Result rc = MHD_queue_response(conn, out->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    http_server *srv = cls;
    request_ctx *ctx = *con_cls;
    (void)url;
    (void)version;
    if (ctx && ctx->responded) {
        /* A body after an early reply is consumed and dropped. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (ctx && strcmp(method, "POST") == 0) {
        /* First call: headers only. Then the body in pieces, then a last
         * call with no data, when the request is complete. */
        if (!ctx->started) {
            ctx->started = 1;
            return MHD_YES;
        }
        if (*upload_data_size) {
            size_t n = *upload_data_size;
            *upload_data_size = 0;
            if (ctx->too_large || ctx->body_len + n > HTTP_MAX_BODY) {
                ctx->too_large = 1;
                return MHD_YES;
            }
            char *b = realloc(ctx->body, ctx->body_len + n + 1);
            if (!b) {
                ctx->too_large = 1;
                return MHD_YES;
            }
            memcpy(b + ctx->body_len, upload_data, n);
            ctx->body_len += n;
            b[ctx->body_len] = '\0';
            ctx->body = b;
            return MHD_YES;
        }
    }
    reply out = {0};
    if (!ctx)
        reply_error(&out, 500, "out of memory");
    else if (ctx->too_large)
        reply_error(&out, 413, "request body larger than %d bytes", HTTP_MAX_BODY);
    else
        dispatch(srv, ctx->target, method, ctx->body, ctx->body_len,
                 MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"), conn, &out);
    if (ctx)
        ctx->responded = 1;
    return queue_reply(conn, &out);
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
    http_server *srv = cls;
    char msg[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    /* While starting, a message explains the failure to the caller; later
     * ones are almost all about a client's malformed request, which must
     * not be able to flood hostd's log, so they are debug messages. */
    if (srv->starting) {
        snprintf(srv->start_error, sizeof(srv->start_error), "%s", msg);
        host_log("http", OBS_LOG_WARN, "%s", msg);
    } else {
        host_log("http", OBS_LOG_DEBUG, "%s", msg);
    }
}

int http_start(const http_options *opt, http_server **out, char *err, size_t errlen)
{
    const char *listen = opt && opt->listen ? opt->listen : HTTP_DEFAULT_LISTEN;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    *out = NULL;
    int rc = http_parse_listen(listen, &addr, &addrlen, err, errlen);
    if (rc != 0)
        return rc;
    http_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, errlen, "http: out of memory");
        return OBS_ENOMEM;
    }
    if (opt) {
        srv->pipeline = opt->pipeline;
        srv->store = opt->store;
        srv->run_id = opt->run_id;
        if (opt->token && opt->token[0] && !(srv->token = strdup(opt->token))) {
            free(srv);
            snprintf(err, errlen, "http: out of memory");
            return OBS_ENOMEM;
        }
    }
    srv->loopback = addr.ss_family == AF_INET6
                        ? IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&addr)->sin6_addr)
                        : (ntohl(((struct sockaddr_in *)&addr)->sin_addr.s_addr) >> 24) == 127;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_AUTO;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    uint16_t port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                     : ((struct sockaddr_in *)&addr)->sin_port);
    srv->starting = 1;
    srv->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_log, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)HTTP_THREADS, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY, MHD_OPTION_URI_LOG_CALLBACK,
        on_uri, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_END);
    srv->starting = 0;
    if (!srv->daemon) {
        snprintf(err, errlen, "http: cannot listen on %s: %s", listen,
                 srv->start_error[0] ? srv->start_error : "libmicrohttpd refused to start");
        free(srv->token);
        free(srv);
        return OBS_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : port;
    (void)addrlen; /* libmicrohttpd takes the length from the family */
    *out = srv;
    return 0;
}

uint16_t http_port(const http_server *h)
{
    return h ? h->port : 0;
}

void http_stop(http_server *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    free(h->token);
    free(h);
}
