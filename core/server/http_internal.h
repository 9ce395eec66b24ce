/*
 * http_internal.h - what the files of hostd's HTTP server share, and nothing
 * outside core/server includes: the server's state, the request a handler
 * is given, the reply it fills, the helpers that build replies, and the
 * prototype of every route handler.
 *
 * The server is split by idea: http.c is the glue to libmicrohttpd (start,
 * stop, limits, request bodies, who may change things); http_route.c holds
 * the route table and dispatches a request to a handler; http_reply.c turns
 * what a handler produced into a response. The handlers live in one file per
 * family: http_pipeline.c (the running pipeline), http_runs.c (run history
 * from the store), http_profile.c (live and stored profiles), http_change.c
 * (swaps and experiments, the endpoints that change things) and
 * http_dashboard.c (the embedded web dashboard). A handler runs in one of
 * libmicrohttpd's threads; it reads the pipeline only through snapshots and
 * the run history only through store.h.
 */
#ifndef OBS_HTTP_INTERNAL_H
#define OBS_HTTP_INTERNAL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "server/http.h"
#include "server/http_parse.h"

struct MHD_Connection;
struct MHD_Daemon;

/* Path placeholders ("{id}") a route pattern may hold. */
#define HTTP_MAX_CAPTURES 4

/* The Content-Type of every reply that does not set its own. */
#define HTTP_CT_JSON "application/json"

/* A running server (http.h's opaque type). Set up by http_start(), read by
 * the handlers, freed by http_stop(); nothing in it changes while requests
 * are served except `starting`, which only http_start() writes. */
struct http_server {
    struct MHD_Daemon *daemon;
    struct pipeline *pipeline;
    struct store *store;
    uint64_t run_id;
    uint16_t port;
    int loopback;         /* bound to a loopback address */
    char *token;          /* required on mutating endpoints when set (Bearer) */
    char **allowed_hosts; /* Host names answered besides addresses and localhost */
    size_t n_allowed_hosts;
    char **store_paths; /* read-only stores after `store` (http_options.store_paths) */
    size_t n_store_paths;
    _Atomic int starting;  /* while MHD_start_daemon runs: keep its last message */
    char start_error[256]; /* that message */
};

/* What a handler produces. `body` is malloc'd (freed by libmicrohttpd). */
typedef struct http_reply {
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
} http_reply;

/* One request as a handler sees it. Every pointer is borrowed and valid for
 * the duration of the handler's call only. */
typedef struct http_request {
    http_server *srv;
    const http_target *target;
    const char *body; /* POST body, NUL-terminated, or NULL */
    size_t body_len;
    const char *auth;            /* Authorization header, or NULL */
    struct MHD_Connection *conn; /* other request headers (Accept, If-None-Match) */
    const char *captures[HTTP_MAX_CAPTURES];
    http_reply *out;
} http_request;

/* A route handler: fills r->out, always (a status at least). */
typedef void (*http_handler_fn)(http_request *r);

/* ------------------------------------------------------------------------ */
/* Replies (http_reply.c)                                                   */

/* Replies `body` (stolen; NULL means it could not be built) as compact JSON
 * plus a newline; when it cannot be serialised, a 500 error body instead. */
void http_reply_json(http_reply *out, unsigned status, json_t *body);
/* {"error": {"code": <status>, "message": "..."}}; the message must be
 * printable ASCII already (text_sanitize anything from the request). */
void http_reply_error(http_reply *out, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Queues `out` on the connection as the response, with the headers every
 * response carries. Takes the body (freed by libmicrohttpd, or here on
 * failure, unless persistent). Returns libmicrohttpd's MHD_YES or MHD_NO. */
int http_reply_queue(struct MHD_Connection *conn, http_reply *out);
/* JSON integers are signed 64-bit in jansson; counters never reach 2^63. */
json_t *http_ju64(uint64_t v);
/* Nanoseconds as JSON seconds. */
json_t *http_jsec(uint64_t ns);

/* ------------------------------------------------------------------------ */
/* Server (http.c) and routing (http_route.c)                               */

/* Mutating endpoints: on loopback open unless a token is set; beyond
 * loopback only with the token; never for a cross-site browser request.
 * Returns 0 when allowed, or -1 after replying 401 or 403. */
int http_need_authority(http_request *r);

/* Routes a request: 400 for a bad target, 404 for an unknown path, 405 for
 * a known path and another method, else the handler's reply. `raw` is the
 * request target as received; `body`, `auth` and `conn` are passed to the
 * handler as they are (borrowed for the call). */
void http_dispatch(http_server *srv, const char *raw, const char *method, const char *body,
                   size_t body_len, const char *auth, struct MHD_Connection *conn, http_reply *out);

/* ------------------------------------------------------------------------ */
/* Shared by the run and profile handlers (http_runs.c)                     */

/* The run store a request reads: ?store=K (default 0) among the server's
 * own store (when it has one) and then its read-only store_paths, which are
 * opened for the request. */
typedef struct http_store_ref {
    struct store *s;
    size_t index; /* K */
    int owned;    /* opened for this request: http_store_release closes it */
} http_store_ref;

/* Number of stores the server reads (0: the run routes answer 503). */
size_t http_n_stores(const http_server *srv);
/* The path of store k. */
const char *http_store_path(const http_server *srv, size_t k);
/* Opens store k into *ref: 0, or an OBS_E* code with `err` set. */
int http_store_open(const http_server *srv, size_t k, http_store_ref *ref, char *err,
                    size_t errlen);
/* The store ?store=K names: 0, or -1 after replying 400, 404 or 503. */
int http_store_acquire(http_request *r, http_store_ref *ref);
void http_store_release(http_store_ref *ref);
/* Parses captures[0] as a run id into *id: 0, or -1 after replying 400. */
int http_run_id_capture(http_request *r, uint64_t *id);

/* ------------------------------------------------------------------------ */
/* Route handlers, by file                                                  */

/* http_route.c */
void http_handle_index(http_request *r);
/* http_pipeline.c */
void http_handle_metrics(http_request *r);
void http_handle_healthz(http_request *r);
void http_handle_readyz(http_request *r);
void http_handle_status(http_request *r);
void http_handle_stages(http_request *r);
/* http_runs.c */
void http_handle_runs(http_request *r);
void http_handle_run(http_request *r);
/* http_groups.c */
void http_handle_groups(http_request *r);
void http_handle_group(http_request *r);
void http_handle_run_metrics(http_request *r);
void http_handle_run_series(http_request *r);
/* http_profile.c */
void http_handle_profile(http_request *r);
void http_handle_run_profile(http_request *r);
void http_handle_profiles_diff(http_request *r);
/* http_change.c */
void http_handle_swap(http_request *r);
void http_handle_experiments(http_request *r);
void http_handle_experiment(http_request *r);
void http_handle_experiment_start(http_request *r);
void http_handle_experiment_stop(http_request *r);
/* http_dashboard.c */
void http_handle_root(http_request *r);
void http_handle_asset(http_request *r);

#endif /* OBS_HTTP_INTERNAL_H */
