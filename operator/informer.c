/*
 * informer.c - the list/watch loop (informer.h).
 */
#include "informer.h"

#include "opmetrics.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WATCH_MAX_EVENT_BYTES (16u << 20)
/* Items per list page. A page is held twice while it is handled (the body and
 * its parsed tree, several times the body): 50 StageSets of a few KiB each
 * keep that under a MiB, where 500 made a relist of 100 cost several. */
#define INFORMER_PAGE_ITEMS 50
#define BACKOFF_BASE_MS 500
#define BACKOFF_MAX_MS 30000

void informer_sleep(uint64_t ms, atomic_int *stop)
{
    while (ms && !atomic_load(stop)) {
        uint64_t step = ms < 100 ? ms : 100;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)step * 1000000};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static char *url(const informer *inf, const char *extra)
{
    char *sel = inf->label_selector ? kube_escape(inf->label_selector) : NULL, *out = NULL;
    if (asprintf(&out, "%s?%s%s%s", inf->path, extra, sel ? "&labelSelector=" : "",
                 sel ? sel : "") < 0)
        out = NULL;
    free(sel);
    return out;
}

/* Lists every page; *rv gets the list's resourceVersion. */
static int list_all(kube_client *c, const informer *inf, char **rv, char *err, size_t errlen)
{
    char *cont = NULL;
    int rc = 0;
    atomic_fetch_add(&opmetrics_g.lists, 1);
    do {
        char extra[2048], *path;
        char *esc = cont ? kube_escape(cont) : NULL;
        snprintf(extra, sizeof extra, "limit=%d%s%s", INFORMER_PAGE_ITEMS, esc ? "&continue=" : "",
                 esc ? esc : "");
        free(esc);
        if (!(path = url(inf, extra))) {
            rc = -ENOMEM;
            break;
        }
        json_t *list = NULL;
        rc = kube_get(c, path, &list, err, errlen);
        free(path);
        if (rc)
            break;
        size_t i;
        const json_t *item;
        json_array_foreach(json_object_get(list, "items"), i, item) inf->fn(inf->ud, "LIST", item);
        const json_t *meta = json_object_get(list, "metadata");
        const char *r = json_string_value(json_object_get(meta, "resourceVersion"));
        const char *next = json_string_value(json_object_get(meta, "continue"));
        free(cont);
        cont = next && *next ? strdup(next) : NULL;
        if (!cont && r) {
            free(*rv);
            *rv = strdup(r);
        }
        json_decref(list);
    } while (cont);
    free(cont);
    return rc;
}

typedef struct wstate {
    const informer *inf;
    char *rv;
    unsigned n_events;
} wstate;

static void set_rv(wstate *w, const json_t *obj)
{
    const char *r =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    if (r) {
        char *d = strdup(r);
        if (d) {
            free(w->rv);
            w->rv = d;
        }
    }
}

static int on_event(void *ud, const char *type, json_t *obj)
{
    wstate *w = ud;
    atomic_fetch_add(&opmetrics_g.watch_events, 1);
    if (strcmp(type, "ERROR") == 0) {
        int code = watch_status_code(obj);
        const char *msg = json_string_value(json_object_get(obj, "message"));
        fprintf(stderr, "operator: watch %s: ERROR event %d: %s\n", w->inf->what, code,
                msg ? msg : "");
        return code == 410 ? -ESTALE : -EPROTO;
    }
    set_rv(w, obj);
    w->n_events++;
    if (strcmp(type, "BOOKMARK") == 0)
        return 0;
    w->inf->fn(w->inf->ud, type, obj);
    return 0;
}

int informer_run(kube_client *c, const informer *inf, atomic_int *stop)
{
    char err[1024];
    wstate w = {.inf = inf};
    unsigned failures = 0;
    int need_list = 1;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&w;
    while (!atomic_load(stop)) {
        int rc = 0;
        err[0] = '\0';
        if (need_list) {
            rc = list_all(c, inf, &w.rv, err, sizeof err);
            if (rc == 0) {
                need_list = 0;
                op_malloc_trim(); /* the pages are freed: give them back */
                if (inf->on_synced)
                    inf->on_synced(inf->ud);
            }
        }
        if (rc == 0) {
            char extra[512], *path;
            char *rv = kube_escape(w.rv ? w.rv : "");
            /* Random timeouts spread reconnects of many clients, as client-go does. */
            snprintf(extra, sizeof extra,
                     "watch=1&allowWatchBookmarks=true&timeoutSeconds=%u&resourceVersion=%s",
                     300 + rand_r(&seed) % 300, rv ? rv : "");
            free(rv);
            if (!(path = url(inf, extra)))
                return -ENOMEM;
            watch_parser p;
            long status;
            w.n_events = 0;
            int64_t started = opmetrics_now_s();
            watch_parser_init(&p, WATCH_MAX_EVENT_BYTES, on_event, &w);
            rc = kube_watch(c, path, &p, stop, &status, err, sizeof err);
            free(path);
            if (rc == 0 && watch_parser_pending(&p))
                rc = -EPIPE; /* cut mid-event: the connection broke */
            watch_parser_free(&p);
            if (rc == 0 || w.n_events)
                atomic_store(&opmetrics_g.last_watch_ok, opmetrics_now_s());
            if (rc == 0 && (w.n_events || opmetrics_now_s() - started >= 2)) {
                failures = 0; /* the server closed a healthy stream: resume */
                atomic_fetch_add(&opmetrics_g.watch_restarts, 1);
                continue;
            }
            if (rc == 0) {
                /* Closed at once with nothing in it: back off rather than
                 * spin against a server or proxy that keeps doing that. */
                snprintf(err, sizeof err, "watch ended immediately without events");
                rc = -EAGAIN;
            }
        }
        if (rc == -ECANCELED || atomic_load(stop))
            break;
        if (rc == -ESTALE || rc == -ERANGE) {
            /* 410: the resourceVersion was compacted away. 504 "Too large
             * resource version": the server has not reached it, e.g. it
             * restarted on storage that lost its state; resuming would wait
             * forever for versions that will be reused by other writes.
             * Either way only a fresh list (a consistent read) gets back on
             * track, as client-go's reflector does. */
            atomic_fetch_add(rc == -ESTALE ? &opmetrics_g.relists_gone : &opmetrics_g.relists_ahead,
                             1);
            fprintf(stderr, "operator: %s: resourceVersion %s %s, listing again\n", inf->what,
                    w.rv ? w.rv : "",
                    rc == -ESTALE ? "too old (410)" : "ahead of the server (504)");
            free(w.rv);
            w.rv = NULL;
            need_list = 1;
            failures = 0;
            continue;
        }
        if (rc == -EPROTO)
            need_list = 1;
        failures++;
        uint64_t d = BACKOFF_BASE_MS;
        for (unsigned i = 1; i < failures && d < BACKOFF_MAX_MS; i++)
            d *= 2;
        if (d > BACKOFF_MAX_MS)
            d = BACKOFF_MAX_MS;
        d = d / 2 + (uint64_t)rand_r(&seed) % (d / 2 + 1);
        fprintf(stderr, "operator: %s: %s; retrying in %llu ms\n", inf->what, err,
                (unsigned long long)d);
        atomic_fetch_add(&opmetrics_g.watch_restarts, 1);
        informer_sleep(d, stop);
    }
    free(w.rv);
    return 0;
}
