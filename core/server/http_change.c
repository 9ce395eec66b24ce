/*
 * http_change.c - the HTTP routes that change the running pipeline: hot
 * swapping a stage's plugin (engine/swap.h) and starting, reading and
 * stopping A/B experiments (lab/experiment.h). They share the checks of a
 * JSON request body, the conversion of plugin parameters from JSON to the
 * config's text form, and the mapping of the engine's error codes to HTTP
 * statuses. Every POST here first passes http_need_authority() (http.c).
 */
#include "server/http_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "engine/swap.h"
#include "lab/experiment.h"
#include "observatory/stage.h"
#include "store/store.h"
#include "util/text.h"

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
static int params_from_json(http_request *r, json_t *obj, const char *where, cfg_param **out,
                            size_t *n)
{
    const char *key;
    json_t *v;
    *n = 0;
    *out = calloc(json_object_size(obj) + 1, sizeof(cfg_param));
    if (!*out) {
        http_reply_error(r->out, 500, "out of memory");
        return -1;
    }
    json_object_foreach(obj, key, v)
    {
        char *text = scalar_text(v);
        if (!text) {
            char clean[64];
            text_sanitize(key, clean, sizeof clean);
            http_reply_error(r->out, 400, "%s.%s: must be a string, number or boolean", where,
                             clean);
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
void http_handle_swap(http_request *r)
{
    if (http_need_authority(r) != 0)
        return;
    if (!r->srv->pipeline) {
        http_reply_error(r->out, 503, "no pipeline");
        return;
    }
    json_error_t jerr;
    json_t *body = r->body ? json_loadb(r->body, r->body_len, 0, &jerr) : NULL;
    if (!json_is_object(body)) {
        http_reply_error(r->out, 400,
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
            text_sanitize(key, clean, sizeof clean);
            http_reply_error(
                r->out, 400,
                "unknown key '%s'; allowed: plugin, version, params, handover, timeout_s", clean);
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
        http_reply_error(r->out, 400,
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
        text_one_line(err, clean, sizeof clean);
        http_reply_error(r->out, status_of(rc), "%s", clean);
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
    http_reply_json(r->out, 200, o);
out:
    params_free(params, n);
    json_decref(body);
}

/* Reads the id capture of /api/v1/experiments/{id}[...]; replies 404. */
static experiment *experiment_capture(http_request *r)
{
    char *end;
    const char *c = r->captures[0];
    unsigned long long id = c ? strtoull(c, &end, 10) : 0;
    experiment *e =
        (c && *c && !*end && r->srv->pipeline) ? experiment_find(r->srv->pipeline, id) : NULL;
    if (!e) {
        char clean[32];
        text_sanitize(c ? c : "", clean, sizeof clean);
        http_reply_error(r->out, 404, "no experiment '%s' (GET /api/v1/experiments lists them)",
                         clean);
    }
    return e;
}

void http_handle_experiments(http_request *r)
{
    if (!r->srv->pipeline) {
        http_reply_error(r->out, 503, "no pipeline");
        return;
    }
    json_t *arr = experiments_json(r->srv->pipeline);
    if (!arr)
        http_reply_error(r->out, 500, "out of memory");
    else
        http_reply_json(r->out, 200, arr);
}

/* An experiment as JSON, with `status` (200, or 201 when just started). */
static void reply_experiment(http_request *r, unsigned status, experiment *e)
{
    json_t *j = experiment_json(e);
    if (!j)
        http_reply_error(r->out, 500, "out of memory");
    else
        http_reply_json(r->out, status, j);
}

void http_handle_experiment(http_request *r)
{
    experiment *e = experiment_capture(r);
    if (e)
        reply_experiment(r, 200, e);
}

void http_handle_experiment_stop(http_request *r)
{
    if (http_need_authority(r) != 0)
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
void http_handle_experiment_start(http_request *r)
{
    if (http_need_authority(r) != 0)
        return;
    if (!r->srv->pipeline) {
        http_reply_error(r->out, 503, "no pipeline");
        return;
    }
    json_error_t jerr;
    json_t *body = r->body ? json_loadb(r->body, r->body_len, 0, &jerr) : NULL;
    cfg_param *params = NULL;
    size_t n = 0;
    if (!json_is_object(body)) {
        http_reply_error(r->out, 400,
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
            text_sanitize(key, clean, sizeof clean);
            http_reply_error(
                r->out, 400,
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
        http_reply_error(
            r->out, 400,
            "'stage' must be a string, 'mode' \"duet\" or \"interleaved\", 'b' an "
            "object, 'aa' a boolean, 'threshold' in (0, 1), 'max_seconds' in (0, 86400], "
            "'looks' 1..1000, 'block_ms' 10..10000, 'seed' a positive integer");
        goto out;
    }
    exp_mode mode = EXP_DUET;
    if (jmode && strcmp(json_string_value(jmode), "interleaved") == 0) {
        mode = EXP_INTERLEAVED;
    } else if (jmode && strcmp(json_string_value(jmode), "duet") != 0) {
        http_reply_error(r->out, 400, "'mode' must be \"duet\" or \"interleaved\"");
        goto out;
    }
    if (jblock && mode != EXP_INTERLEAVED) {
        http_reply_error(r->out, 400, "'block_ms' applies to \"mode\": \"interleaved\" only");
        goto out;
    }
    int aa = jaa && json_is_true(jaa);
    json_t *jp = jb ? json_object_get(jb, "plugin") : NULL;
    json_t *jv = jb ? json_object_get(jb, "version") : NULL;
    json_t *jparams = jb ? json_object_get(jb, "params") : NULL;
    /* As in the config (docs/experiments.md): B is at least one of another
     * plugin, another version of the stage's plugin, or other parameters
     * of it; or, with aa, the stage itself. */
    if ((jp && !json_is_string(jp)) || (jv && !json_is_string(jv)) ||
        (jparams && !json_is_object(jparams)) || (!aa && !jp && !jv && !jparams)) {
        http_reply_error(r->out, 400,
                         "'b' needs at least one of \"plugin\" (a string), \"version\" (a "
                         "string; of the stage's plugin when no plugin is named) and "
                         "\"params\" (an object), or set \"aa\": true");
        goto out;
    }
    if (aa && (jp || jv || jparams)) {
        http_reply_error(r->out, 400,
                         "\"aa\": true runs the stage itself as B: no \"b\" plugin, "
                         "version or params");
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
        text_one_line(err, clean, sizeof clean);
        http_reply_error(r->out, rc == OBS_EINVAL ? 400 : status_of(rc), "%s", clean);
        goto out;
    }
    reply_experiment(r, 201, e);
out:
    params_free(params, n);
    json_decref(body);
}
