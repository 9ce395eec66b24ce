/*
 * http_parse.h - the text the HTTP server takes from outside: request
 * targets (path and query string), query values (ids, times, metric names)
 * and the listen address. Pure functions over bytes, no I/O and no
 * libmicrohttpd, so that tests/fuzz/fuzz_http_route.c can drive them
 * directly; http_route.c builds its table-driven router on top of them.
 *
 * Everything here treats its input as hostile: lengths are bounded, escapes
 * are checked, integers never overflow, and a rejection comes with a message
 * that is safe to echo in a JSON error body (printable ASCII only).
 */
#ifndef OBS_HTTP_PARSE_H
#define OBS_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HTTP_TARGET_MAX 2048 /* longest request target accepted (bytes) */
#define HTTP_MAX_SEGMENTS 16 /* path segments */
#define HTTP_MAX_PARAMS 16   /* query parameters */

/* Request methods as bits, so a route can accept several. */
enum {
    HTTP_GET = 1u << 0,
    HTTP_HEAD = 1u << 1,
    HTTP_POST = 1u << 2,
    HTTP_PUT = 1u << 3,
    HTTP_DELETE = 1u << 4,
};

/* The bit of a method name ("GET", ...); 0 for any other method. */
unsigned http_method_bit(const char *method);
/* Writes the methods of `mask` as an Allow header value ("GET, HEAD"). */
void http_allow_header(unsigned mask, char *buf, size_t len);

typedef struct http_param {
    const char *key, *value; /* decoded, NUL-terminated, inside the target's buffer */
} http_param;

/* A parsed request target. All strings point into `buf`, which the target
 * owns; valid until http_target_free(). */
typedef struct http_target {
    char *buf;
    const char *path;                        /* the raw path as received, e.g. "/api/v1/runs/3" */
    const char *segments[HTTP_MAX_SEGMENTS]; /* percent-decoded path segments */
    size_t n_segments;
    http_param params[HTTP_MAX_PARAMS];
    size_t n_params;
} http_target;

/* Parses an origin-form request target ("/path?query") of `len` bytes.
 * Path segments are percent-decoded one by one (so an encoded '/' stays
 * inside its segment); query keys and values are decoded with '+' as space.
 * Refused, with a message in `err`: a target that is empty, does not start
 * with '/', is longer than HTTP_TARGET_MAX, has more than HTTP_MAX_SEGMENTS
 * segments or HTTP_MAX_PARAMS parameters, a bad or NUL escape (%zz, %00), a
 * control byte, an empty or repeated parameter key. Returns 0, OBS_EINVAL
 * (a bad request) or OBS_ENOMEM; on failure nothing needs freeing. */
int http_target_parse(const char *raw, size_t len, http_target *t, char *err, size_t errlen);
void http_target_free(http_target *t);

/* The decoded value of query parameter `key`, or NULL when absent. The
 * string belongs to `t`. */
const char *http_target_param(const http_target *t, const char *key);

/* Checks that every query key of `t` is in `allowed` (comma-separated,
 * NULL or "" for none). Returns 0 or OBS_EINVAL with a message naming the
 * key and the allowed ones. */
int http_target_check_params(const http_target *t, const char *allowed, char *err, size_t errlen);

/* Matches the decoded path against a pattern such as "/api/v1/runs/{id}":
 * literal segments compare exactly, "{name}" matches any one non-empty
 * segment, which is stored in captures[k] (k counting the placeholders;
 * at most `cap`). Returns 1 on a match, 0 otherwise. */
int http_route_match(const char *pattern, const http_target *t, const char **captures, size_t cap);

/* Strict unsigned decimal: digits only, no sign, no spaces, no overflow.
 * Returns 0 or OBS_EINVAL. */
int http_parse_u64(const char *s, uint64_t *out);

/* A Unix time in seconds with up to 9 decimals ("1764241234",
 * "1764241234.25"), converted exactly to nanoseconds. Returns 0 or
 * OBS_EINVAL (syntax, more than 9 decimals, beyond 2^64-1 ns). */
int http_parse_time_ns(const char *s, uint64_t *out);

/* A metric name as the store names them ("stage/parse/records_out"): 1 to
 * 200 bytes of [A-Za-z0-9_.:/-]. Returns 1 when valid. */
int http_valid_metric_name(const char *s);

/* Whether a request's Host header value (NULL: absent) names this server
 * in a way a DNS-rebinding attack cannot: absent (no browser omits it), an
 * IP address literal (v4, or v6 in brackets), "localhost" or a name under
 * ".localhost", or one of the n `allowed` names (case-insensitive). A port
 * after the name is ignored. Returns 1 or 0. */
int http_host_allowed(const char *host, const char *const *allowed, size_t n);

/* Parses "host:port" or "[v6addr]:port" into a socket address. The host is
 * a numeric IPv4 or IPv6 address or "localhost" (127.0.0.1); the port is
 * 0..65535 (0: any free port). Nothing is resolved through DNS. Returns 0
 * or OBS_EINVAL with a message. */
int http_parse_listen(const char *s, struct sockaddr_storage *addr, socklen_t *addrlen, char *err,
                      size_t errlen);

#endif /* OBS_HTTP_PARSE_H */
