/*
 * informer.h - list, then watch from the list's resourceVersion, forever.
 *
 * One informer follows one resource (StageSets, or the operator's
 * Deployments). It lists with pagination, hands every item to the callback,
 * then watches from the list's resourceVersion with bookmarks so a quiet
 * stream still advances it. When the stream ends it watches again from the
 * last resourceVersion seen; on 410 Gone (as the HTTP status or as an ERROR
 * event inside a 200 stream) and on 504 "Too large resource version" (the
 * server is behind the resourceVersion: restarted on storage that lost its
 * state) it lists again; on any other failure it waits an
 * exponential backoff (with jitter) and tries again. There is no cache: the
 * reconciler reads what it needs, so the callback only has to enqueue keys.
 */
#ifndef OBSOP_INFORMER_H
#define OBSOP_INFORMER_H

#include "kube.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>

/* type is "LIST" for an item of a (re)list, else the watch event type
 * (ADDED, MODIFIED, DELETED). obj is borrowed for the call. */
typedef void (*informer_fn)(void *ud, const char *type, const json_t *obj);

typedef struct informer {
    const char *what;           /* for log messages: "stagesets" */
    const char *path;           /* collection URL, e.g. /apis/apps/v1/deployments */
    const char *label_selector; /* or NULL */
    informer_fn fn;
    void *ud;
    void (*on_synced)(void *ud); /* after each complete list; may be NULL */
} informer;

/* Runs until *stop is set. Returns 0 then. */
int informer_run(kube_client *c, const informer *inf, atomic_int *stop);

/* Sleeps ms milliseconds or until *stop is set, whichever is first. */
void informer_sleep(uint64_t ms, atomic_int *stop);

/* Giving freed pages back to the kernel (glibc's malloc_trim, mallopt):
 * not under a sanitizer, whose own allocator replaces glibc's (glibc's
 * malloc_trim on its never-used arena faults there). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define op_malloc_trim() ((void)0)
#define op_mallopt_one_arena() ((void)0)
#else
#include <malloc.h>
#define op_malloc_trim() ((void)malloc_trim(0))
#define op_mallopt_one_arena() ((void)mallopt(M_ARENA_MAX, 1))
#endif

#endif
