/*
 * http_parse.c - parsers for the text the HTTP server receives (see
 * http_parse.h): request targets, query values and the listen address.
 *
 * The target is parsed from the raw bytes libmicrohttpd saw on the request
 * line (its URI log callback), not from its already-split path and argument
 * table, so that the whole parse is here, bounded and fuzzed, and so that an
 * encoded '/' or a repeated parameter can be told apart from a plain one.
 */
#include "server/http_parse.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "observatory/stage.h"
#include "util/text.h"

static void set_err(char *err, size_t errlen, const char *fmt, const char *arg)
{
    if (!err || errlen == 0)
        return;
    char clean[96];
    text_sanitize(arg ? arg : "", clean, sizeof(clean));
    snprintf(err, errlen, fmt, clean);
}

unsigned http_method_bit(const char *method)
{
    static const struct {
        const char *name;
        unsigned bit;
    } methods[] = {{"GET", HTTP_GET},
                   {"HEAD", HTTP_HEAD},
                   {"POST", HTTP_POST},
                   {"PUT", HTTP_PUT},
                   {"DELETE", HTTP_DELETE}};
    if (!method)
        return 0;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(method, methods[i].name) == 0)
            return methods[i].bit;
    return 0;
}

void http_allow_header(unsigned mask, char *buf, size_t len)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE"};
    size_t n = 0;
    if (len == 0)
        return;
    buf[0] = '\0';
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!(mask & (1u << i)))
            continue;
        int w = snprintf(buf + n, len - n, "%s%s", n ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= len - n)
            break;
        n += (size_t)w;
    }
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes raw[0..len) into out (room for len + 1), NUL-terminated.
 * Returns the decoded length or -1 for a bad escape, %00 or a control
 * byte after decoding. */
static long decode(const char *raw, size_t len, int plus_is_space, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = hexval((unsigned char)raw[i + 1]), lo = hexval((unsigned char)raw[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c < 0x20 || c == 0x7f)
            return -1;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return (long)n;
}

int http_target_parse(const char *raw, size_t len, http_target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (!raw || len == 0 || raw[0] != '/') {
        set_err(err, errlen, "request target must start with '/'%s", "");
        return OBS_EINVAL;
    }
    if (len > HTTP_TARGET_MAX) {
        set_err(err, errlen, "request target longer than 2048 bytes%s", "");
        return OBS_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c <= 0x20 || c >= 0x7f) {
            set_err(err, errlen, "request target has a byte outside printable ASCII%s", "");
            return OBS_EINVAL;
        }
    }
    const char *q = memchr(raw, '?', len);
    size_t path_len = q ? (size_t)(q - raw) : len;
    /* Raw path copy, then decoded segments, then decoded parameters: each
     * decoded piece is no longer than its raw text plus a NUL. */
    size_t cap = 2 * len + 2 * HTTP_MAX_PARAMS + 8;
    char *buf = malloc(cap);
    if (!buf) {
        set_err(err, errlen, "out of memory%s", "");
        return OBS_ENOMEM;
    }
    t->buf = buf;
    memcpy(buf, raw, path_len);
    buf[path_len] = '\0';
    t->path = buf;
    char *w = buf + path_len + 1;

    /* Segments: the text between slashes after the leading one. */
    size_t start = 1;
    if (path_len > 1) {
        for (;;) {
            const char *slash = memchr(raw + start, '/', path_len - start);
            size_t end = slash ? (size_t)(slash - raw) : path_len;
            if (t->n_segments == HTTP_MAX_SEGMENTS) {
                set_err(err, errlen, "request path has more than 16 segments%s", "");
                goto bad;
            }
            long n = decode(raw + start, end - start, 0, w);
            if (n < 0) {
                set_err(err, errlen, "bad percent-escape in the path (%%XX, not %%00)%s", "");
                goto bad;
            }
            t->segments[t->n_segments++] = w;
            w += n + 1;
            if (!slash)
                break;
            start = end + 1;
        }
    }

    if (q) {
        size_t i = path_len + 1;
        while (i <= len) {
            const char *amp = memchr(raw + i, '&', len - i);
            size_t end = amp ? (size_t)(amp - raw) : len;
            if (end > i) {
                const char *eq = memchr(raw + i, '=', end - i);
                size_t kend = eq ? (size_t)(eq - raw) : end;
                if (t->n_params == HTTP_MAX_PARAMS) {
                    set_err(err, errlen, "more than 16 query parameters%s", "");
                    goto bad;
                }
                char *key = w;
                long n = decode(raw + i, kend - i, 1, w);
                if (n < 0) {
                    set_err(err, errlen, "bad percent-escape in a query parameter name%s", "");
                    goto bad;
                }
                if (n == 0) {
                    set_err(err, errlen, "empty query parameter name%s", "");
                    goto bad;
                }
                w += n + 1;
                char *value = w;
                n = eq ? decode(eq + 1, end - kend - 1, 1, w) : (*w = '\0', 0);
                if (n < 0) {
                    set_err(err, errlen, "bad percent-escape in the value of query parameter '%s'",
                            key);
                    goto bad;
                }
                w += n + 1;
                if (http_target_param(t, key)) {
                    set_err(err, errlen, "query parameter '%s' given more than once", key);
                    goto bad;
                }
                t->params[t->n_params].key = key;
                t->params[t->n_params].value = value;
                t->n_params++;
            }
            if (!amp)
                break;
            i = end + 1;
        }
    }
    return 0;
bad:
    free(t->buf);
    memset(t, 0, sizeof(*t));
    return OBS_EINVAL;
}

void http_target_free(http_target *t)
{
    if (!t)
        return;
    free(t->buf);
    memset(t, 0, sizeof(*t));
}

const char *http_target_param(const http_target *t, const char *key)
{
    for (size_t i = 0; i < t->n_params; i++)
        if (strcmp(t->params[i].key, key) == 0)
            return t->params[i].value;
    return NULL;
}

int http_target_check_params(const http_target *t, const char *allowed, char *err, size_t errlen)
{
    for (size_t i = 0; i < t->n_params; i++) {
        const char *key = t->params[i].key;
        size_t klen = strlen(key);
        int ok = 0;
        for (const char *a = allowed; a && *a && !ok;) {
            const char *comma = strchr(a, ',');
            size_t alen = comma ? (size_t)(comma - a) : strlen(a);
            ok = alen == klen && memcmp(a, key, klen) == 0;
            a = comma ? comma + 1 : a + alen;
        }
        if (!ok) {
            if (err && errlen) {
                char clean[96];
                text_sanitize(key, clean, sizeof(clean));
                if (allowed && *allowed)
                    snprintf(err, errlen, "unknown query parameter '%s'; allowed: %s", clean,
                             allowed);
                else
                    snprintf(err, errlen, "unknown query parameter '%s'; this endpoint takes none",
                             clean);
            }
            return OBS_EINVAL;
        }
    }
    return 0;
}

int http_route_match(const char *pattern, const http_target *t, const char **captures, size_t cap)
{
    if (pattern[0] != '/')
        return 0;
    const char *p = pattern + 1;
    size_t seg = 0, n_cap = 0;
    if (*p == '\0')
        return t->n_segments == 0;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t plen = slash ? (size_t)(slash - p) : strlen(p);
        if (seg >= t->n_segments)
            return 0;
        const char *s = t->segments[seg];
        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (s[0] == '\0' || n_cap >= cap)
                return 0;
            captures[n_cap++] = s;
        } else if (strlen(s) != plen || memcmp(s, p, plen) != 0) {
            return 0;
        }
        seg++;
        if (!slash)
            break;
        p = slash + 1;
    }
    return seg == t->n_segments;
}

int http_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s)
        return OBS_EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return OBS_EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return OBS_EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int http_parse_time_ns(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return OBS_EINVAL;
    const char *dot = strchr(s, '.');
    size_t ilen = dot ? (size_t)(dot - s) : strlen(s);
    char ipart[24];
    if (ilen == 0 || ilen >= sizeof(ipart))
        return OBS_EINVAL;
    memcpy(ipart, s, ilen);
    ipart[ilen] = '\0';
    uint64_t sec, frac = 0;
    if (http_parse_u64(ipart, &sec) != 0)
        return OBS_EINVAL;
    if (dot) {
        const char *f = dot + 1;
        size_t flen = strlen(f);
        if (flen == 0 || flen > 9)
            return OBS_EINVAL;
        for (size_t i = 0; i < 9; i++) {
            char c = i < flen ? f[i] : '0';
            if (c < '0' || c > '9')
                return OBS_EINVAL;
            frac = frac * 10 + (uint64_t)(c - '0');
        }
    }
    if (sec > (UINT64_MAX - frac) / UINT64_C(1000000000))
        return OBS_EINVAL;
    *out = sec * UINT64_C(1000000000) + frac;
    return 0;
}

int http_valid_metric_name(const char *s)
{
    size_t n = 0;
    if (!s)
        return 0;
    for (; s[n]; n++) {
        char c = s[n];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == ':' || c == '/' || c == '-';
        if (!ok || n >= 200)
            return 0;
    }
    return n > 0;
}

int http_parse_listen(const char *s, struct sockaddr_storage *addr, socklen_t *addrlen, char *err,
                      size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_s;
    size_t hlen;
    memset(addr, 0, sizeof(*addr));
    if (!s || !*s) {
        set_err(err, errlen, "listen address is empty; expected host:port or [v6]:port%s", "");
        return OBS_EINVAL;
    }
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            set_err(err, errlen, "listen address '%s': expected [v6addr]:port", s);
            return OBS_EINVAL;
        }
        hlen = (size_t)(close - s - 1);
        if (hlen == 0 || hlen >= sizeof(host)) {
            set_err(err, errlen, "listen address '%s': bad IPv6 address", s);
            return OBS_EINVAL;
        }
        memcpy(host, s + 1, hlen);
        port_s = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon) {
            set_err(err, errlen, "listen address '%s': expected host:port (IPv6 as [addr]:port)",
                    s);
            return OBS_EINVAL;
        }
        hlen = (size_t)(colon - s);
        if (hlen == 0 || hlen >= sizeof(host)) {
            set_err(err, errlen, "listen address '%s': the host is missing or too long", s);
            return OBS_EINVAL;
        }
        memcpy(host, s, hlen);
        port_s = colon + 1;
    }
    host[hlen] = '\0';
    uint64_t port;
    if (strlen(port_s) > 5 || http_parse_u64(port_s, &port) != 0 || port > 65535) {
        set_err(err, errlen, "listen address '%s': the port must be a number from 0 to 65535", s);
        return OBS_EINVAL;
    }
    if (s[0] == '[') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) {
            set_err(err, errlen, "listen address '%s': not a numeric IPv6 address", s);
            return OBS_EINVAL;
        }
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *addrlen = sizeof(*a6);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
        const char *h = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
        if (inet_pton(AF_INET, h, &a4->sin_addr) != 1) {
            set_err(err, errlen,
                    "listen address '%s': not a numeric IPv4 address (or 'localhost'); "
                    "IPv6 goes in brackets",
                    s);
            return OBS_EINVAL;
        }
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *addrlen = sizeof(*a4);
    }
    return 0;
}

int http_host_allowed(const char *host, const char *const *allowed, size_t n)
{
    if (!host)
        return 1;
    char name[256];
    size_t len = strlen(host);
    if (len == 0 || len >= sizeof name)
        return 0;
    if (host[0] == '[') {
        /* [v6]:port */
        const char *end = strchr(host, ']');
        if (!end || (end[1] && end[1] != ':'))
            return 0;
        size_t l = (size_t)(end - host - 1);
        memcpy(name, host + 1, l);
        name[l] = '\0';
        struct in6_addr a6;
        return inet_pton(AF_INET6, name, &a6) == 1;
    }
    memcpy(name, host, len + 1);
    char *colon = strrchr(name, ':');
    if (colon) {
        for (const char *d = colon + 1; *d; d++)
            if (*d < '0' || *d > '9')
                return 0;
        *colon = '\0';
    }
    if (!name[0])
        return 0;
    struct in_addr a4;
    if (inet_pton(AF_INET, name, &a4) == 1)
        return 1;
    size_t nl = strlen(name);
    if (name[nl - 1] == '.') /* a fully qualified name: "localhost." */
        name[--nl] = '\0';
    if (strcasecmp(name, "localhost") == 0 ||
        (nl > 10 && strcasecmp(name + nl - 10, ".localhost") == 0))
        return 1;
    for (size_t i = 0; i < n; i++)
        if (allowed[i] && strcasecmp(name, allowed[i]) == 0)
            return 1;
    return 0;
}
