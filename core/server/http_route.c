/*
 * http_route.c - the route table of hostd's HTTP server and the dispatch
 * over it: each row maps a path pattern (http_parse.c matches it) and the
 * methods and query parameters it accepts to a handler in one of the
 * http_*.c handler files, so adding an endpoint is one row here. GET /api/v1
 * lists the table. Unknown paths are 404, known paths with another method
 * 405 (with Allow), unexpected query parameters 400.
 */
#include "server/http_internal.h"

#include <jansson.h>
#include <microhttpd.h>
#include <string.h>

#include "observatory/stage.h"
#include "server/http_parse.h"
#include "util/text.h"

/* The route table. HEAD is accepted wherever GET is. `params` lists the
 * query parameters an endpoint takes; any other one is a 400. */
static const struct route {
    const char *pattern;
    unsigned methods;
    const char *params;
    http_handler_fn fn;
    const char *about;
} routes[] = {
    {"/", HTTP_GET, NULL, http_handle_root,
     "the dashboard for a browser (Accept: text/html), else this list"},
    {"/api/v1", HTTP_GET, NULL, http_handle_index, "this list"},
    {"/assets/{file}", HTTP_GET, NULL, http_handle_asset, "the dashboard's scripts and styles"},
    {"/metrics", HTTP_GET, NULL, http_handle_metrics, "Prometheus metrics (text format 0.0.4)"},
    {"/healthz", HTTP_GET, NULL, http_handle_healthz, "200 while the server answers"},
    {"/readyz", HTTP_GET, NULL, http_handle_readyz, "200 while the pipeline runs, else 503"},
    {"/api/v1/status", HTTP_GET, NULL, http_handle_status,
     "version, pipeline state, uptime, run id"},
    {"/api/v1/stages", HTTP_GET, NULL, http_handle_stages, "every stage's figures now"},
    {"/api/v1/runs", HTTP_GET, NULL, http_handle_runs,
     "stored runs, newest first (of every store this server reads)"},
    {"/api/v1/runs/{id}", HTTP_GET, "store", http_handle_run, "one run: facts and report"},
    {"/api/v1/runs/{id}/metrics", HTTP_GET, "store", http_handle_run_metrics,
     "metric names stored for a run"},
    {"/api/v1/runs/{id}/series", HTTP_GET, "metric,from,to,store", http_handle_run_series,
     "points of one metric of a run"},
    {"/api/v1/groups", HTTP_GET, NULL, http_handle_groups,
     "run.ids of pipelines split over several processes, newest first"},
    {"/api/v1/groups/{run_id}", HTTP_GET, NULL, http_handle_group,
     "the processes of one run.id and its end-to-end figures"},
    {"/api/v1/stages/{name}/swap", HTTP_POST, NULL, http_handle_swap,
     "hot-swap a stage: {\"plugin\", \"version\", \"params\", \"handover\"}"},
    {"/api/v1/experiments", HTTP_GET, NULL, http_handle_experiments, "A/B experiments of this run"},
    {"/api/v1/experiments", HTTP_POST, NULL, http_handle_experiment_start,
     "start an experiment: {\"stage\", \"mode\", \"b\": {\"plugin\", \"version\"}, \"aa\", "
     "\"block_ms\"}"},
    {"/api/v1/experiments/{id}", HTTP_GET, NULL, http_handle_experiment, "one experiment, live"},
    {"/api/v1/experiments/{id}/stop", HTTP_POST, NULL, http_handle_experiment_stop,
     "stop an experiment"},
    {"/profile", HTTP_GET, "seconds,format,stage,variant,plugin,version", http_handle_profile,
     "profile of the stage threads for N seconds: format=svg|folded|json|pprof"},
    {"/api/v1/runs/{id}/profile", HTTP_GET, "from,to,format,stage,variant,plugin,version,store",
     http_handle_run_profile, "stored profile of a run (--profile-continuous) over a time range"},
    {"/api/v1/profiles/diff", HTTP_GET,
     "a,b,a_from,a_to,b_from,b_to,a_variant,b_variant,stage,format,store",
     http_handle_profiles_diff,
     "differential flame graph of two stored profiles: runs, time ranges or variants"},
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

void http_handle_index(http_request *r)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < N_ROUTES; i++) {
        char allow[64];
        unsigned m = routes[i].methods | (routes[i].methods & HTTP_GET ? HTTP_HEAD : 0);
        http_allow_header(m, allow, sizeof(allow));
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "path", routes[i].pattern, "methods",
                                             allow, "about", routes[i].about));
    }
    http_reply_json(r->out, arr ? 200 : 500, arr ? json_pack("{s:o}", "endpoints", arr) : NULL);
}

/* Routes a request: 400 for a bad target, 404 for an unknown path, 405 for
 * a known path and another method, else the handler's reply. */
void http_dispatch(http_server *srv, const char *raw, const char *method, const char *body,
                   size_t body_len, const char *auth, struct MHD_Connection *conn, http_reply *out)
{
    http_target t;
    char err[256];
    /* Every request, reading ones too: a page whose name was rebound to
     * this address must not read the figures or the stored runs. */
    const char *host = conn ? MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host") : NULL;
    if (!http_host_allowed(host, (const char *const *)srv->allowed_hosts, srv->n_allowed_hosts)) {
        char clean[96];
        text_sanitize(host, clean, sizeof clean);
        http_reply_error(out, 421,
                         "Host '%s' is not a name this server answers to (a guard against DNS "
                         "rebinding): use its address or localhost, or add the name to "
                         "http.allowed_hosts",
                         clean);
        return;
    }
    unsigned bit = http_method_bit(method);
    int rc = http_target_parse(raw, strlen(raw), &t, err, sizeof(err));
    if (rc == OBS_ENOMEM) {
        http_reply_error(out, 500, "out of memory");
        return;
    }
    if (rc != 0) {
        http_reply_error(out, 400, "bad request target: %s", err);
        return;
    }
    unsigned allowed = 0;
    for (size_t i = 0; i < N_ROUTES; i++) {
        http_request r = {.srv = srv,
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
            http_reply_error(out, 400, "%s", err);
        else
            routes[i].fn(&r);
        http_target_free(&t);
        return;
    }
    char clean[128];
    text_sanitize(t.path, clean, sizeof(clean));
    if (allowed) {
        char m[16];
        text_sanitize(method ? method : "", m, sizeof(m));
        http_allow_header(allowed, out->allow, sizeof(out->allow));
        http_reply_error(out, 405, "method %s not allowed on %s; allowed: %s", m, clean,
                         out->allow);
    } else {
        http_reply_error(out, 404, "no such endpoint: %s (GET /api/v1 lists them)", clean);
    }
    http_target_free(&t);
}
