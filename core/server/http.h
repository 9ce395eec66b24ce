/*
 * http.h - hostd's HTTP surface (libmicrohttpd): Prometheus /metrics, the
 * JSON API under /api/v1/, /healthz and /readyz (docs/http-api.md).
 *
 * Handlers never touch stage counters directly: they take a snapshot
 * (snapshot.h) or read the store (store.h). Every response other than
 * /metrics is JSON; errors are 4xx/5xx with {"error": {"code", "message"}}.
 * The server listens on 127.0.0.1:9464 unless configured otherwise.
 */
#ifndef OBS_HTTP_H
#define OBS_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct pipeline;
struct store;

typedef struct http_server http_server;

typedef struct http_options {
    const char *listen;        /* "host:port" or "[v6]:port"; port 0 picks a free one */
    struct pipeline *pipeline; /* may be NULL (then stage endpoints answer 503) */
    struct store *store;       /* may be NULL (then run endpoints answer 503) */
    uint64_t run_id;           /* the current run in the store, 0 if none */
    const char *token;         /* bearer token for changes (swap, experiments); NULL: none,
                                  then changes are accepted only on a loopback address */
    /* Host names the server answers to besides IP addresses and localhost
     * (http.allowed_hosts; the listen address's name is added): any other
     * Host gets 421, so a DNS-rebinding page cannot reach hostd. */
    const char *const *allowed_hosts;
    size_t n_allowed_hosts;
    /* More run stores to read besides `store` (hostd dashboard --store A
     * --store B: the processes of a pipeline split over several), opened
     * read-only for each request that reads them; a request names one with
     * ?store=K (0: `store` when set, then these in order). */
    const char *const *store_paths;
    size_t n_store_paths;
} http_options;

/* Starts serving in libmicrohttpd's own thread(s). Returns 0 or a negative
 * OBS_E* code with `err` set (e.g. address in use). */
int http_start(const http_options *opt, http_server **out, char *err, size_t errlen);
/* The port actually bound (useful with port 0). */
uint16_t http_port(const http_server *h);
/* Stops accepting, finishes requests in progress, frees. NULL is a no-op. */
void http_stop(http_server *h);

#endif /* OBS_HTTP_H */
