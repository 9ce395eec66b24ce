/*
 * http_profile.c - the HTTP routes that answer with a CPU profile: /profile
 * samples the stage threads for the next N seconds (the profiler library
 * does the sampling and the rendering), while /api/v1/runs/{id}/profile and
 * /api/v1/profiles/diff render the profiles stored during past runs
 * (http_runprof.c). All of them answer in the format the request names
 * (SVG flame graph, folded stacks, JSON, pprof).
 */
#include "server/http_internal.h"

#include <stdlib.h>

#include "obs_profiler.h"
#include "server/http_runprof.h"

/* GET /profile: a flame graph (or folded stacks, JSON, pprof) of the stage
 * threads over the next N seconds, from the profiler library; blocks this
 * connection's thread meanwhile (the pool has others for /metrics). */
void http_handle_profile(http_request *r)
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
        http_reply_error(r->out, 500, "out of memory");
        return;
    }
    r->out->status = (unsigned)resp.status;
    r->out->body = resp.body;
    r->out->len = resp.len;
    r->out->content_type = resp.content_type;
}

/* Moves a stored-profile reply (run_profile.h) into ours. */
static void reply_run_profile(http_request *r, int rc, http_runprof_reply *rp)
{
    if (rc != 0)
        http_reply_error(r->out, 500, "out of memory");
    else if (rp->status != 200)
        http_reply_error(r->out, rp->status, "%s", rp->error);
    else {
        r->out->status = 200;
        r->out->body = rp->body;
        r->out->len = rp->len;
        r->out->content_type = rp->content_type;
    }
}

/* GET /api/v1/runs/{id}/profile: the stored continuous-mode windows of a
 * run over a time range, merged, filtered and rendered (run_profile.c). */
void http_handle_run_profile(http_request *r)
{
    uint64_t id;
    http_runprof_reply rp;
    http_store_ref ref;
    if (http_run_id_capture(r, &id) != 0 || http_store_acquire(r, &ref) != 0)
        return;
    int rc = http_runprof(ref.s, id, r->target, &rp);
    http_store_release(&ref);
    reply_run_profile(r, rc, &rp);
}

/* GET /api/v1/profiles/diff: differential flame graph of two stored
 * selections (runs, time ranges, variants). */
void http_handle_profiles_diff(http_request *r)
{
    http_runprof_reply rp;
    http_store_ref ref;
    if (http_store_acquire(r, &ref) != 0)
        return;
    int rc = http_runprof_diff(ref.s, r->target, &rp);
    http_store_release(&ref);
    reply_run_profile(r, rc, &rp);
}
