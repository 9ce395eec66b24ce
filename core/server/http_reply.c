/*
 * http_reply.c - what a handler produces and how it becomes a response: the
 * JSON body of a reply (compact, one line), the uniform error body
 * {"error": {"code", "message"}} every 4xx/5xx carries, the number
 * conversions the JSON handlers share, and the step that hands a reply to
 * libmicrohttpd with the headers every response has (Content-Type,
 * Cache-Control, nosniff, and Allow, ETag, CSP or Vary when set).
 * http_internal.h declares all of it.
 */
#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_internal.h"

void http_reply_json(http_reply *out, unsigned status, json_t *body /* stolen */)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(16)) : NULL;
    json_decref(body);
    if (!text) {
        static const char oom[] = "{\"error\":{\"code\":500,\"message\":\"out of memory\"}}\n";
        out->status = 500;
        out->body = strdup(oom);
        out->len = out->body ? strlen(oom) : 0;
        out->content_type = HTTP_CT_JSON;
        return;
    }
    size_t n = strlen(text);
    char *withnl = realloc(text, n + 2);
    if (withnl) {
        withnl[n++] = '\n';
        withnl[n] = '\0';
        text = withnl;
    }
    out->status = status;
    out->body = text;
    out->len = n;
    out->content_type = HTTP_CT_JSON;
}

void http_reply_error(http_reply *out, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    http_reply_json(out, status,
                    json_pack("{s:{s:i,s:s}}", "error", "code", (int)status, "message", msg));
}

json_t *http_ju64(uint64_t v)
{
    return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

json_t *http_jsec(uint64_t ns)
{
    return json_real((double)ns / 1e9);
}

int http_reply_queue(struct MHD_Connection *conn, http_reply *out)
{
    struct MHD_Response *resp;
    if (out->body)
        resp = MHD_create_response_from_buffer(
            out->len, out->body, out->persistent ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_FREE);
    else
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        if (!out->persistent)
            free(out->body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            out->content_type ? out->content_type : HTTP_CT_JSON);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            out->cache_control ? out->cache_control : "no-store");
    if (out->etag)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, out->etag);
    if (out->csp)
        MHD_add_response_header(resp, "Content-Security-Policy", out->csp);
    if (out->vary)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, out->vary);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (out->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, out->allow);
    enum MHD_Result rc = MHD_queue_response(conn, out->status, resp);
    MHD_destroy_response(resp);
    return rc;
}
