/*
 * http.c - hostd's HTTP server itself (libmicrohttpd): starting and stopping
 * it, its limits (threads, connections, timeouts, memory, body size), the
 * per-request state that collects a POST body, the log callback, and the
 * check that guards every endpoint that changes something (Origin against
 * Host, loopback, bearer token). http.h is the interface and
 * docs/http-api.md documents every endpoint.
 *
 * libmicrohttpd runs its own threads (a pool, so one slow store read or a
 * /profile does not hold up a scrape). Each request's raw target is
 * captured by the URI log callback; once the request is complete it goes to
 * http_dispatch() (http_route.c), which finds the handler in the route table
 * and parses the target with http_parse.c. The handler fills an http_reply
 * and http_reply_queue() (http_reply.c) turns it into the response.
 */
#include "server/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "engine/host.h"
#include "observatory/stage.h"
#include "server/http_internal.h"
#include "server/http_parse.h"
#include "store/store.h"

#define HTTP_DEFAULT_LISTEN "127.0.0.1:9464"
/* One thread may be busy with a /profile request for its whole duration. */
#define HTTP_THREADS 4
/* Connections at once: idle or slow clients must not crowd out /healthz
 * and /metrics (64 idle connections once delayed them by the idle timeout,
 * 10 s), and with epoll an idle connection costs a descriptor and a little
 * memory, not a thread. Bounded by half the descriptors the process may
 * open, so RocksDB and the plugins keep theirs. */
#define HTTP_MAX_CONNECTIONS 1000
#define HTTP_TIMEOUT_S 10
#define HTTP_CONN_MEMORY (32 * 1024)

/* Request bodies (POST) are read whole, up to this size; more is a 413. */
#define HTTP_MAX_BODY (64 * 1024)

/* Per request, created by the URI log callback, freed when it completes. */
typedef struct request_ctx {
    int responded; /* a response is queued: ignore any request body */
    int started;   /* the headers have been seen (a body may follow) */
    int too_large;
    char *body; /* malloc'd, NUL-terminated */
    size_t body_len;
    char target[]; /* raw request target as received */
} request_ctx;

/* ------------------------------------------------------------------------ */
/* Who may change things                                                    */

/* Mutating endpoints: on loopback open unless a token is set; beyond
 * loopback only with the token. Replies and returns -1 when refused. */
int http_need_authority(http_request *r)
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
            http_reply_error(r->out, 403,
                             "cross-site request refused (Origin does not match Host)");
            return -1;
        }
    }
    if (!srv->token) {
        if (srv->loopback)
            return 0;
        http_reply_error(r->out, 403,
                         "changes are refused when listening beyond loopback without a token "
                         "(start hostd with OBS_HTTP_TOKEN set)");
        return -1;
    }
    const char *a = r->auth;
    if (a && strncmp(a, "Bearer ", 7) == 0 && strcmp(a + 7, srv->token) == 0)
        return 0;
    http_reply_error(r->out, 401, "this endpoint needs 'Authorization: Bearer <token>'");
    return -1;
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
    http_reply out = {0};
    if (!ctx)
        http_reply_error(&out, 500, "out of memory");
    else if (ctx->too_large)
        http_reply_error(&out, 413, "request body larger than %d bytes", HTTP_MAX_BODY);
    else
        http_dispatch(srv, ctx->target, method, ctx->body, ctx->body_len,
                      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"), conn,
                      &out);
    if (ctx)
        ctx->responded = 1;
    return http_reply_queue(conn, &out);
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

static unsigned int connection_limit(void)
{
    struct rlimit rl;
    rlim_t half = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur / 2 : 64;
    return half < HTTP_MAX_CONNECTIONS ? (unsigned int)(half > 16 ? half : 16)
                                       : (unsigned int)HTTP_MAX_CONNECTIONS;
}

static void free_server(http_server *srv)
{
    for (size_t i = 0; i < srv->n_allowed_hosts; i++)
        free(srv->allowed_hosts[i]);
    free(srv->allowed_hosts);
    for (size_t i = 0; i < srv->n_store_paths; i++)
        free(srv->store_paths[i]);
    free(srv->store_paths);
    free(srv->token);
    free(srv);
}

/* The Host names to answer: the configured ones, and the listen address's
 * host when it is a name (addresses are always answered). */
static int allowed_hosts_copy(http_server *srv, const http_options *opt, const char *listen)
{
    size_t n = opt ? opt->n_allowed_hosts : 0;
    srv->allowed_hosts = calloc(n + 1, sizeof(char *));
    if (!srv->allowed_hosts)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!(srv->allowed_hosts[srv->n_allowed_hosts++] = strdup(opt->allowed_hosts[i])))
            return -1;
    const char *colon = strrchr(listen, ':');
    if (listen[0] != '[' && colon && colon > listen) {
        char *name = strndup(listen, (size_t)(colon - listen));
        if (!name)
            return -1;
        srv->allowed_hosts[srv->n_allowed_hosts++] = name;
    }
    return 0;
}

/* The read-only stores, without the server's own store if named again. */
static int store_paths_copy(http_server *srv, const http_options *opt)
{
    size_t n = opt ? opt->n_store_paths : 0;
    srv->store_paths = calloc(n + 1, sizeof(char *));
    if (!srv->store_paths)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (srv->store && strcmp(store_path(srv->store), opt->store_paths[i]) == 0)
            continue;
        if (!(srv->store_paths[srv->n_store_paths++] = strdup(opt->store_paths[i])))
            return -1;
    }
    return 0;
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
    if (allowed_hosts_copy(srv, opt, listen) != 0 || store_paths_copy(srv, opt) != 0) {
        free_server(srv);
        snprintf(err, errlen, "http: out of memory");
        return OBS_ENOMEM;
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
        (unsigned int)HTTP_THREADS, MHD_OPTION_CONNECTION_LIMIT, connection_limit(),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY, MHD_OPTION_URI_LOG_CALLBACK,
        on_uri, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_END);
    srv->starting = 0;
    if (!srv->daemon) {
        snprintf(err, errlen, "http: cannot listen on %s: %s", listen,
                 srv->start_error[0] ? srv->start_error : "libmicrohttpd refused to start");
        free_server(srv);
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
    free_server(h);
}
