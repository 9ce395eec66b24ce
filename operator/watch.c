/*
 * watch.c - newline-delimited WatchEvent parser (see watch.h).
 */
#include "watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void watch_parser_init(watch_parser *p, size_t max_line, watch_event_fn fn, void *ud)
{
    memset(p, 0, sizeof *p);
    p->max_line = max_line;
    p->fn = fn;
    p->ud = ud;
}

void watch_parser_free(watch_parser *p)
{
    free(p->buf);
    p->buf = NULL;
    p->len = p->cap = 0;
}

size_t watch_parser_pending(const watch_parser *p)
{
    return p->len;
}

static int line(watch_parser *p, const char *s, size_t n)
{
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    if (n == 0)
        return 0; /* keep-alive blank line */
    json_error_t err;
    json_t *ev = json_loadb(s, n, 0, &err);
    if (!ev)
        return -EBADMSG;
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object");
    int rc = type && json_is_object(obj) ? p->fn(p->ud, type, obj) : -EBADMSG;
    json_decref(ev);
    return rc;
}

int watch_parser_feed(watch_parser *p, const char *data, size_t len)
{
    while (len) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (p->len + take > p->max_line)
            return -E2BIG;
        if (nl && p->len == 0) {
            /* The whole line is in this read: no copy. */
            int rc = line(p, data, take);
            if (rc)
                return rc;
        } else {
            if (p->len + take + 1 > p->cap) {
                size_t cap = p->cap ? p->cap : 4096;
                while (cap < p->len + take + 1)
                    cap *= 2;
                char *b = realloc(p->buf, cap);
                if (!b)
                    return -ENOMEM;
                p->buf = b;
                p->cap = cap;
            }
            memcpy(p->buf + p->len, data, take);
            p->len += take;
            if (nl) {
                size_t n = p->len;
                p->len = 0;
                int rc = line(p, p->buf, n);
                if (rc)
                    return rc;
            }
        }
        data += take + (nl ? 1 : 0);
        len -= take + (nl ? 1 : 0);
    }
    return 0;
}

int watch_status_code(const json_t *object)
{
    const json_t *c = json_object_get(object, "code");
    return json_is_integer(c) ? (int)json_integer_value(c) : 0;
}
