/*
 * watch.h - the parser for a Kubernetes watch stream.
 *
 * A watch response is newline-delimited JSON, one WatchEvent
 * {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": {...}} per line,
 * arriving in HTTP chunks that have nothing to do with line boundaries: an
 * event may be split across any number of reads and one read may hold many.
 * The parser buffers a partial line and hands out whole events. No I/O.
 */
#ifndef OBSOP_WATCH_H
#define OBSOP_WATCH_H

#include <jansson.h>
#include <stddef.h>

/* Called per event; `type` and `object` are borrowed for the call. A non-zero
 * return stops the feed and is returned by watch_parser_feed(). */
typedef int (*watch_event_fn)(void *ud, const char *type, json_t *object);

typedef struct watch_parser {
    char *buf;
    size_t len, cap, max_line;
    watch_event_fn fn;
    void *ud;
} watch_parser;

/* max_line bounds one event (a larger one is an error, not a huge buffer). */
void watch_parser_init(watch_parser *p, size_t max_line, watch_event_fn fn, void *ud);
void watch_parser_free(watch_parser *p);
/* Feeds bytes. Returns 0, the callback's non-zero return, -EBADMSG for a line
 * that is not a WatchEvent, -E2BIG for a line over max_line, or -ENOMEM. */
int watch_parser_feed(watch_parser *p, const char *data, size_t len);
/* Bytes of an unfinished event held (non-zero at end of stream means the
 * stream was cut mid-event). */
size_t watch_parser_pending(const watch_parser *p);

/* For an ERROR event's object (a metav1.Status): its code, or 0. 410 means the
 * resourceVersion is too old and the caller must list again. */
int watch_status_code(const json_t *object);

#endif
