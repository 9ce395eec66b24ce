/*
 * http_pipeline.c - the HTTP routes over the running pipeline: /metrics
 * (Prometheus text, rendered by measure/metrics_prom.c), /healthz, /readyz,
 * /api/v1/status and /api/v1/stages (every stage's figures as JSON). Every
 * figure comes from one pipeline_snapshot(): nothing here touches a counter
 * that a stage thread writes. Without a pipeline the stage routes answer 503.
 */
#include "server/http_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/snapshot.h"
#include "measure/metrics_prom.h"
#include "observatory/stage.h"
#include "store/store.h"

static const char CT_METRICS[] = "text/plain; version=0.0.4; charset=utf-8";

static int take_snapshot(http_request *r, obs_snapshot *snap)
{
    if (!r->srv->pipeline) {
        http_reply_error(r->out, 503, "no pipeline is loaded");
        return -1;
    }
    if (pipeline_snapshot(r->srv->pipeline, snap) != 0) {
        http_reply_error(r->out, 500, "out of memory taking a snapshot");
        return -1;
    }
    return 0;
}

/* The run store's writes by outcome and whether it is failing now (a full
 * disk): appended to the exposition text. 0 or OBS_ENOMEM (text kept). */
static int store_metrics_append(store *s, char **text, size_t *len)
{
    store_health h;
    store_get_health(s, &h);
    char buf[768];
    int n = snprintf(buf, sizeof buf,
                     "# HELP observatory_store_writes_total Writes to the run store, by outcome "
                     "(failed: a full disk or an I/O error; the run goes on).\n"
                     "# TYPE observatory_store_writes_total counter\n"
                     "observatory_store_writes_total{outcome=\"ok\"} %llu\n"
                     "observatory_store_writes_total{outcome=\"failed\"} %llu\n"
                     "# HELP observatory_store_failing 1 while the last write to the run store "
                     "failed, else 0.\n"
                     "# TYPE observatory_store_failing gauge\n"
                     "observatory_store_failing %d\n",
                     (unsigned long long)h.n_writes, (unsigned long long)h.n_writes_failed,
                     h.failing ? 1 : 0);
    if (n < 0 || (size_t)n >= sizeof buf)
        return OBS_ENOMEM;
    char *t = realloc(*text, *len + (size_t)n + 1);
    if (!t)
        return OBS_ENOMEM;
    memcpy(t + *len, buf, (size_t)n + 1);
    *text = t;
    *len += (size_t)n;
    return 0;
}

void http_handle_metrics(http_request *r)
{
    obs_snapshot snap;
    char *text = NULL;
    size_t len = 0;
    int rc;
    if (r->srv->pipeline) {
        if (pipeline_snapshot(r->srv->pipeline, &snap) != 0) {
            http_reply_error(r->out, 500, "out of memory taking a snapshot");
            return;
        }
        rc = metrics_render(&snap, &text, &len);
        snapshot_free(&snap);
    } else {
        rc = metrics_render(NULL, &text, &len);
    }
    if (rc == 0 && r->srv->store && store_metrics_append(r->srv->store, &text, &len) != 0)
        rc = OBS_ENOMEM;
    if (rc != 0) {
        free(text);
        http_reply_error(r->out, 500, "out of memory rendering metrics");
        return;
    }
    r->out->status = 200;
    r->out->body = text;
    r->out->len = len;
    r->out->content_type = CT_METRICS;
}

void http_handle_healthz(http_request *r)
{
    http_reply_json(r->out, 200, json_pack("{s:s}", "status", "ok"));
}

void http_handle_readyz(http_request *r)
{
    obs_snapshot snap;
    if (take_snapshot(r, &snap) != 0)
        return;
    int ready = snap.state == SNAPSHOT_RUNNING && !snap.failed;
    http_reply_json(r->out, ready ? 200 : 503,
                    json_pack("{s:b,s:s,s:b}", "ready", ready, "state",
                              snapshot_state_name(snap.state), "failed", snap.failed != 0));
    snapshot_free(&snap);
}

static uint64_t uptime_ns(const obs_snapshot *s)
{
    if (!s->t_start_ns)
        return 0;
    uint64_t until = s->t_end_ns ? s->t_end_ns : s->t_mono_ns;
    return until > s->t_start_ns ? until - s->t_start_ns : 0;
}

void http_handle_status(http_request *r)
{
    json_t *o = json_pack("{s:s}", "version", OBS_VERSION);
    if (!o) {
        http_reply_json(r->out, 500, NULL);
        return;
    }
    json_object_set_new(o, "run_id", r->srv->run_id ? http_ju64(r->srv->run_id) : json_null());
    json_object_set_new(o, "store", json_boolean(r->srv->store != NULL));
    json_object_set_new(o, "stores", json_integer((json_int_t)http_n_stores(r->srv)));
    if (r->srv->pipeline) {
        obs_snapshot snap;
        if (pipeline_snapshot(r->srv->pipeline, &snap) != 0) {
            json_decref(o);
            http_reply_error(r->out, 500, "out of memory taking a snapshot");
            return;
        }
        json_object_set_new(o, "pipeline", json_string(snap.pipeline));
        json_object_set_new(o, "state", json_string(snapshot_state_name(snap.state)));
        json_object_set_new(o, "failed", json_boolean(snap.failed));
        json_object_set_new(o, "stages", http_ju64(snap.n_stages));
        json_object_set_new(o, "uptime_seconds", http_jsec(uptime_ns(&snap)));
        json_object_set_new(o, "duration_seconds", http_jsec(snap.duration_ns));
        json_object_set_new(o, "warmed_up", json_boolean(snap.t_warm_ns != 0));
        json_object_set_new(o, "time_unix", http_jsec(snap.t_wall_ns));
        snapshot_free(&snap);
    } else {
        json_object_set_new(o, "pipeline", json_null());
        json_object_set_new(o, "state", json_null());
    }
    http_reply_json(r->out, 200, o);
}

static json_t *hist_json(const histogram *h)
{
    if (!h)
        return json_null();
    return json_pack("{s:o,s:o,s:o,s:o,s:f,s:o,s:o,s:o,s:o}", "count",
                     http_ju64(histogram_count(h)), "sum_seconds", http_jsec(histogram_sum_ns(h)),
                     "min_seconds", http_jsec(histogram_min_ns(h)), "max_seconds",
                     http_jsec(histogram_max_ns(h)), "mean_seconds", histogram_mean_ns(h) / 1e9,
                     "p50_seconds", http_jsec(histogram_quantile_ns(h, 0.5)), "p90_seconds",
                     http_jsec(histogram_quantile_ns(h, 0.9)), "p99_seconds",
                     http_jsec(histogram_quantile_ns(h, 0.99)), "p999_seconds",
                     http_jsec(histogram_quantile_ns(h, 0.999)));
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
    json_object_set_new(o, "records_in", http_ju64(s->records_in));
    json_object_set_new(o, "records_out", http_ju64(s->records_out));
    json_object_set_new(o, "bytes_in", http_ju64(s->bytes_in));
    json_object_set_new(o, "bytes_out", http_ju64(s->bytes_out));
    json_object_set_new(o, "batches_in", http_ju64(s->batches_in));
    json_object_set_new(o, "batches_out", http_ju64(s->batches_out));
    json_object_set_new(o, "errors", http_ju64(s->errors));
    json_object_set_new(reasons, "callback", http_ju64(s->callback_errors));
    for (uint32_t c = 0; c < s->n_counters; c++)
        json_object_set_new(s->counters[c].kind == OBS_COUNTER_ERROR ? reasons : counters,
                            s->counters[c].name, http_ju64(s->counters[c].value));
    json_object_set_new(o, "errors_by_reason", reasons);
    json_object_set_new(o, "counters", counters);
    json_object_set_new(o, "callback_wall_seconds", http_jsec(s->callback_wall_ns));
    json_object_set_new(o, "callback_cpu_seconds", http_jsec(s->callback_cpu_ns));
    json_object_set_new(o, "thread_cpu_seconds", http_jsec(s->thread_cpu_ns));
    json_object_set_new(o, "allocations", http_ju64(s->allocs));
    json_object_set_new(o, "frees", http_ju64(s->frees));
    json_object_set_new(o, "allocated_bytes", http_ju64(s->alloc_bytes));
    json_object_set_new(o, "heap_live_bytes", http_ju64(s->heap_live_bytes));
    json_object_set_new(o, "heap_growing", json_boolean(s->heap_growing));
    json_object_set_new(o, "blocked_seconds", http_jsec(s->blocked_ns));
    json_object_set_new(o, "callback_running_seconds", http_jsec(s->callback_running_ns));
    json_object_set_new(o, "ring",
                        s->ring_capacity
                            ? json_pack("{s:I,s:I}", "occupancy", (json_int_t)s->ring_occupancy,
                                        "capacity", (json_int_t)s->ring_capacity)
                            : json_null());
    if (strcmp(s->kind, "generator") == 0)
        json_object_set_new(o, "generator",
                            json_pack("{s:o,s:o,s:o}", "records_scheduled",
                                      http_ju64(s->records_scheduled), "late_records",
                                      http_ju64(s->late_records), "idle_seconds",
                                      http_jsec(s->idle_ns)));
    json_object_set_new(o, "service", hist_json(s->service));
    json_object_set_new(o, "lag", hist_json(s->lag));
    json_object_set_new(o, "latency", hist_json(s->latency));
    /* Parallel instances: the figures above are their sums; each one's own
     * are listed in instance order, in the same shape. */
    json_object_set_new(o, "parallelism", json_integer(s->n_instances ? s->n_instances : 1));
    if (s->instances) {
        json_t *inst = json_array();
        for (uint32_t k = 0; inst && k < s->n_instances; k++)
            json_array_append_new(inst, stage_json(&s->instances[k]));
        json_object_set_new(o, "instances", inst);
    }
    return o;
}

void http_handle_stages(http_request *r)
{
    obs_snapshot snap;
    if (take_snapshot(r, &snap) != 0)
        return;
    json_t *arr = json_array();
    json_t *o = json_pack("{s:s,s:s,s:o}", "pipeline", snap.pipeline, "state",
                          snapshot_state_name(snap.state), "time_unix", http_jsec(snap.t_wall_ns));
    int ok = arr && o;
    for (size_t i = 0; ok && i < snap.n_stages; i++)
        ok = json_array_append_new(arr, stage_json(&snap.stages[i])) == 0;
    snapshot_free(&snap);
    if (!ok) {
        json_decref(arr);
        json_decref(o);
        http_reply_json(r->out, 500, NULL);
        return;
    }
    json_object_set_new(o, "stages", arr);
    http_reply_json(r->out, 200, o);
}
