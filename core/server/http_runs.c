/*
 * http_runs.c - the HTTP routes over the run history in the store: the runs
 * (/api/v1/runs), one run's facts and report, the metric names stored for a
 * run and the points of one metric over a time range (/series). The store
 * (store/store.h) builds the JSON; this file checks the run id, the metric
 * name and the times, and maps store errors to 404 or 500. Without a store
 * these routes answer 503; http_profile.c shares those two checks.
 */
#include "server/http_internal.h"

#include <jansson.h>

#include "engine/plugin.h"
#include "observatory/stage.h"
#include "server/http_parse.h"
#include "store/store.h"
#include "util/text.h"

/* Replies with the error for a store call that failed; `id` names the run. */
static void reply_store_error(http_request *r, int rc, uint64_t id)
{
    if (rc == OBS_ENOENT)
        http_reply_error(r->out, 404, "no run %llu", (unsigned long long)id);
    else
        http_reply_error(r->out, 500, "store read failed: %s", obs_strerror(rc));
}

int http_need_store(http_request *r)
{
    if (r->srv->store)
        return 0;
    http_reply_error(r->out, 503, "no run store is configured (store.path)");
    return -1;
}

int http_run_id_capture(http_request *r, uint64_t *id)
{
    if (http_parse_u64(r->captures[0], id) != 0 || *id == 0) {
        char clean[64];
        text_sanitize(r->captures[0], clean, sizeof(clean));
        http_reply_error(r->out, 400, "run id '%s' is not a positive integer", clean);
        return -1;
    }
    return 0;
}

void http_handle_runs(http_request *r)
{
    json_t *runs = NULL;
    if (http_need_store(r) != 0)
        return;
    int rc = store_runs_json(r->srv->store, &runs);
    if (rc != 0) {
        http_reply_error(r->out, 500, "store read failed: %s", obs_strerror(rc));
        return;
    }
    http_reply_json(r->out, 200, json_pack("{s:o}", "runs", runs));
}

void http_handle_run(http_request *r)
{
    uint64_t id;
    json_t *run = NULL;
    if (http_need_store(r) != 0 || http_run_id_capture(r, &id) != 0)
        return;
    int rc = store_run_json(r->srv->store, id, &run);
    if (rc != 0) {
        reply_store_error(r, rc, id);
        return;
    }
    http_reply_json(r->out, 200, run);
}

void http_handle_run_metrics(http_request *r)
{
    uint64_t id;
    json_t *names = NULL;
    if (http_need_store(r) != 0 || http_run_id_capture(r, &id) != 0)
        return;
    int rc = store_metrics_json(r->srv->store, id, &names);
    if (rc != 0) {
        reply_store_error(r, rc, id);
        return;
    }
    http_reply_json(r->out, 200, json_pack("{s:o,s:o}", "run_id", http_ju64(id), "metrics", names));
}

static int time_param(http_request *r, const char *key, uint64_t *out)
{
    const char *v = http_target_param(r->target, key);
    if (!v)
        return 0;
    if (http_parse_time_ns(v, out) != 0) {
        char clean[64];
        text_sanitize(v, clean, sizeof(clean));
        http_reply_error(r->out, 400,
                         "query parameter '%s': '%s' is not a Unix time in seconds "
                         "(e.g. 1764241234 or 1764241234.5)",
                         key, clean);
        return -1;
    }
    return 0;
}

void http_handle_run_series(http_request *r)
{
    uint64_t id, from = 0, to = UINT64_MAX;
    json_t *points = NULL;
    if (http_need_store(r) != 0 || http_run_id_capture(r, &id) != 0)
        return;
    const char *metric = http_target_param(r->target, "metric");
    if (!metric) {
        http_reply_error(r->out, 400,
                         "query parameter 'metric' is required (names: /api/v1/runs/%llu/metrics)",
                         (unsigned long long)id);
        return;
    }
    if (!http_valid_metric_name(metric)) {
        char clean[64];
        text_sanitize(metric, clean, sizeof(clean));
        http_reply_error(r->out, 400,
                         "query parameter 'metric': '%s' is not a metric name "
                         "(1-200 characters of A-Z a-z 0-9 _ . : / -)",
                         clean);
        return;
    }
    if (time_param(r, "from", &from) != 0 || time_param(r, "to", &to) != 0)
        return;
    if (from > to) {
        http_reply_error(r->out, 400, "'from' is after 'to'");
        return;
    }
    int rc = store_series_json(r->srv->store, id, metric, from, to, &points);
    if (rc != 0) {
        reply_store_error(r, rc, id);
        return;
    }
    http_reply_json(r->out, 200,
                    json_pack("{s:o,s:s,s:o,s:o,s:o}", "run_id", http_ju64(id), "metric", metric,
                              "from", http_jsec(from), "to",
                              to == UINT64_MAX ? json_null() : http_jsec(to), "points", points));
}
