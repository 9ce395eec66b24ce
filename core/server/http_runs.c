/*
 * http_runs.c - the HTTP routes over the run history in the store: the runs
 * (/api/v1/runs), one run's facts and report, the metric names stored for a
 * run and the points of one metric over a time range (/series). The store
 * (store/store.h) builds the JSON; this file checks the run id, the metric
 * name and the times, and maps store errors to 404 or 500. Without a store
 * these routes answer 503; http_profile.c and http_groups.c share those
 * checks and the choice of a store (?store=K: the server's own, live, then
 * any read-only ones it was given, opened for the request).
 */
#include "server/http_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "engine/plugin.h"
#include "observatory/stage.h"
#include "server/http_parse.h"
#include "store/crashed.h"
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

size_t http_n_stores(const http_server *srv)
{
    return (srv->store ? 1 : 0) + srv->n_store_paths;
}

const char *http_store_path(const http_server *srv, size_t k)
{
    if (srv->store && k == 0)
        return store_path(srv->store);
    return srv->store_paths[k - (srv->store ? 1 : 0)];
}

int http_store_open(const http_server *srv, size_t k, http_store_ref *ref, char *err,
                    size_t errlen)
{
    *ref = (http_store_ref){.index = k};
    if (srv->store && k == 0) {
        ref->s = srv->store;
        return 0;
    }
    /* Read-only, so that the hostd writing the store goes on; a store that
     * is being written can change files under the opening (a flush or a
     * compaction), which fails it: try again a few times. */
    int rc = OBS_EIO;
    for (int attempt = 0; attempt < 4; attempt++) {
        if (attempt)
            nanosleep(&(struct timespec){.tv_nsec = 20 * 1000000L}, NULL);
        rc = store_open_flags(http_store_path(srv, k), STORE_READONLY, &ref->s, err, errlen);
        if (rc == 0) {
            ref->owned = 1;
            return 0;
        }
    }
    return rc;
}

void http_store_release(http_store_ref *ref)
{
    if (ref->owned)
        store_close(ref->s);
    *ref = (http_store_ref){0};
}

int http_store_acquire(http_request *r, http_store_ref *ref)
{
    size_t n = http_n_stores(r->srv);
    uint64_t k = 0;
    const char *v = http_target_param(r->target, "store");
    if (v && http_parse_u64(v, &k) != 0) {
        char clean[64];
        text_sanitize(v, clean, sizeof(clean));
        http_reply_error(r->out, 400, "query parameter 'store': '%s' is not a store number", clean);
        return -1;
    }
    if (n == 0) {
        http_reply_error(r->out, 503, "no run store is configured (store.path)");
        return -1;
    }
    if (k >= n) {
        http_reply_error(r->out, 404, "no store %llu: this server reads %zu (0..%zu)",
                         (unsigned long long)k, n, n - 1);
        return -1;
    }
    char err[512];
    if (http_store_open(r->srv, (size_t)k, ref, err, sizeof err) != 0) {
        char clean[512];
        text_sanitize(err, clean, sizeof clean);
        http_reply_error(r->out, 503, "%s", clean);
        return -1;
    }
    return 0;
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

static int by_newest(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "start_ns"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "start_ns"));
    return (x < y) - (x > y);
}

/* The runs of every store the server reads, each with its store number,
 * newest first; a store that cannot be read is named in "unreadable". */
void http_handle_runs(http_request *r)
{
    size_t n = http_n_stores(r->srv);
    if (n == 0) {
        http_reply_error(r->out, 503, "no run store is configured (store.path)");
        return;
    }
    json_t *all = json_array(), *unreadable = json_array();
    for (size_t k = 0; all && unreadable && k < n; k++) {
        http_store_ref ref;
        json_t *runs = NULL, *run;
        char err[512];
        int rc = http_store_open(r->srv, k, &ref, err, sizeof err);
        if (rc == 0 && (rc = store_runs_json(ref.s, &runs)) != 0)
            snprintf(err, sizeof err, "store read failed: %s", obs_strerror(rc));
        http_store_release(&ref);
        if (rc != 0) {
            if (n == 1) {
                http_reply_error(r->out, 500, "%s", err);
                json_decref(all);
                json_decref(unreadable);
                return;
            }
            json_array_append_new(unreadable, json_pack("{s:I, s:s, s:s}", "store", (json_int_t)k,
                                                        "path", http_store_path(r->srv, k),
                                                        "error", err));
            continue;
        }
        size_t i;
        json_array_foreach(runs, i, run)
        {
            store_crash_annotate(http_store_path(r->srv, k), run, 0);
            json_object_set_new(run, "store", json_integer((json_int_t)k));
            json_array_append(all, run);
        }
        json_decref(runs);
    }
    if (!all || !unreadable) {
        json_decref(all);
        json_decref(unreadable);
        http_reply_error(r->out, 500, "out of memory");
        return;
    }
    if (n > 1) {
        /* One list, newest first, as one store gives it. */
        size_t m = json_array_size(all);
        json_t **v = malloc((m ? m : 1) * sizeof *v), *sorted = json_array();
        for (size_t i = 0; v && i < m; i++)
            v[i] = json_incref(json_array_get(all, i));
        if (v && sorted) {
            qsort(v, m, sizeof *v, by_newest);
            for (size_t i = 0; i < m; i++)
                json_array_append_new(sorted, v[i]);
            json_decref(all);
            all = sorted;
        } else {
            for (size_t i = 0; v && i < m; i++)
                json_decref(v[i]);
            json_decref(sorted);
        }
        free(v);
    }
    json_t *stores = json_array();
    for (size_t k = 0; stores && k < n; k++)
        json_array_append_new(stores, json_string(http_store_path(r->srv, k)));
    http_reply_json(r->out, 200,
                    json_pack("{s:o, s:o?, s:o}", "runs", all, "stores", stores, "unreadable",
                              unreadable));
}

void http_handle_run(http_request *r)
{
    uint64_t id;
    json_t *run = NULL;
    http_store_ref ref;
    if (http_run_id_capture(r, &id) != 0 || http_store_acquire(r, &ref) != 0)
        return;
    int rc = store_run_json(ref.s, id, &run);
    size_t k = ref.index;
    http_store_release(&ref);
    if (rc == 0) /* a crashed run: its status, and the record hostd left */
        store_crash_annotate(http_store_path(r->srv, k), run, 1);
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
    http_store_ref ref;
    if (http_run_id_capture(r, &id) != 0 || http_store_acquire(r, &ref) != 0)
        return;
    int rc = store_metrics_json(ref.s, id, &names);
    http_store_release(&ref);
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
    http_store_ref ref;
    if (http_run_id_capture(r, &id) != 0)
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
    if (http_store_acquire(r, &ref) != 0)
        return;
    int rc = store_series_json(ref.s, id, metric, from, to, &points);
    http_store_release(&ref);
    if (rc != 0) {
        reply_store_error(r, rc, id);
        return;
    }
    http_reply_json(r->out, 200,
                    json_pack("{s:o,s:s,s:o,s:o,s:o}", "run_id", http_ju64(id), "metric", metric,
                              "from", http_jsec(from), "to",
                              to == UINT64_MAX ? json_null() : http_jsec(to), "points", points));
}
