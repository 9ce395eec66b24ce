/*
 * http_runprof.h - GET /api/v1/runs/{id}/profile and /api/v1/profiles/diff:
 * the profiles of stored runs (store/run_profile.h) over HTTP, rendered in
 * the format the request asks for. docs/http-api.md documents both routes.
 */
#ifndef OBS_HTTP_RUNPROF_H
#define OBS_HTTP_RUNPROF_H

#include <stddef.h>
#include <stdint.h>

#include "store/run_profile.h"

struct store;
struct http_target;

/* What an HTTP route answers: on success (status 200) the rendered body
 * (malloc'd, the caller frees) and its content type (static); on failure
 * a 4xx/5xx status, body NULL, and `error` the message for the server's
 * usual JSON error body (printable ASCII). */
typedef struct http_runprof_reply {
    unsigned status;
    const char *content_type;
    char *body;
    size_t len;
    char error[512];
} http_runprof_reply;

/* GET /api/v1/runs/{id}/profile?from=&to=&format=svg|folded|json|pprof
 * &stage=&variant=&plugin=&version= (times: Unix seconds, as /series takes
 * them). `t` is the parsed target, borrowed. Fills *out; returns 0, or
 * OBS_ENOMEM when not even the reply could be made. */
int http_runprof(struct store *s, uint64_t run_id, const struct http_target *t,
                 http_runprof_reply *out);
/* GET /api/v1/profiles/diff?a=RUN&b=RUN&a_from=&a_to=&b_from=&b_to=
 * &a_variant=&b_variant=&stage=&format=svg|folded: the change from a
 * (before) to b (after); b defaults to a, so two time ranges or two
 * variants of one run need only a. Same conventions. */
int http_runprof_diff(struct store *s, const struct http_target *t, http_runprof_reply *out);

#endif /* OBS_HTTP_RUNPROF_H */
