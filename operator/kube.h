/*
 * kube.h - a small Kubernetes API client over libcurl.
 *
 * Requests are plain REST calls with JSON bodies (jansson); what the operator
 * needs is GET, LIST with pagination, a streaming WATCH fed to watch.h's
 * parser, server-side apply (PATCH application/apply-patch+yaml with a fixed
 * field manager), JSON merge patch, POST and PUT. The bearer token is re-read
 * from its file every KUBE_TOKEN_REREAD_S seconds, because projected service
 * account tokens rotate. Thread-safe: every call uses its own curl handle;
 * connections and TLS sessions are shared through a curl share handle.
 */
#ifndef OBSOP_KUBE_H
#define OBSOP_KUBE_H

#include "kubeconfig.h"
#include "watch.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

#define KUBE_TOKEN_REREAD_S 60

typedef struct kube_client kube_client;

/* Takes ownership of cfg's contents (cfg is zeroed). Call curl_global_init()
 * before. NULL with err set on failure. */
kube_client *kube_client_new(kube_config *cfg, char *err, size_t errlen);
void kube_client_free(kube_client *c);
/* The configured namespace (context's or pod's), or NULL. Borrowed. */
const char *kube_client_namespace(const kube_client *c);

/* One request. `path` starts with "/" and includes the query. body may be
 * NULL. On 0, *status is the HTTP status and *resp (may be NULL when the body
 * is empty or not JSON) a new reference. Transport errors: -EIO with err set. */
int kube_request(kube_client *c, const char *method, const char *path, const char *content_type,
                 const json_t *body, long *status, json_t **resp, char *err, size_t errlen);

/* Errors of the calls below map the HTTP status: 404 -ENOENT, 409 -EAGAIN
 * (conflict: read again and retry), 410 -ESTALE, 429 -EBUSY (see
 * kube_last_retry_after_s), 400/403/413/422 -EINVAL (the server refuses the
 * request as it is: retrying the same write will not help), anything else
 * and transport errors -EIO. err holds the server's Status message. */

/* The Retry-After seconds of the last response received on the calling
 * thread, or -1 when it had none. */
int kube_last_retry_after_s(void);

/* GET; 0 and *out (new reference) on 200, -ENOENT on 404. */
int kube_get(kube_client *c, const char *path, json_t **out, char *err, size_t errlen);

/* Server-side apply of obj to path (the object's own URL, or .../status) as
 * field manager `manager`, forcing conflicts (the operator owns what it
 * applies, which is how the Kubernetes documentation tells controllers to
 * apply). 0 on 200/201, -EIO otherwise. *out may be NULL. */
int kube_apply(kube_client *c, const char *path, const json_t *obj, const char *manager,
               json_t **out, char *err, size_t errlen);

/* JSON merge patch. */
int kube_merge_patch(kube_client *c, const char *path, const json_t *patch, json_t **out, char *err,
                     size_t errlen);

/* POST (create) or PUT (replace); 409 is a conflict or an existing object. */
int kube_create(kube_client *c, const char *path, const json_t *obj, json_t **out, char *err,
                size_t errlen);
int kube_replace(kube_client *c, const char *path, const json_t *obj, json_t **out, char *err,
                 size_t errlen);

/* Streams a watch (path must contain watch=1) into parser p until the server
 * ends the response, *stop becomes non-zero, or the callback fails. Returns 0
 * when the stream ended, the callback's code, -ECANCELED when stopped,
 * -ESTALE on 410 (resourceVersion too old), -ERANGE on 504 (too large: the
 * server is behind it), -EIO on other errors; *status is the HTTP status. */
int kube_watch(kube_client *c, const char *path, watch_parser *p, atomic_int *stop, long *status,
               char *err, size_t errlen);

/* Percent-encodes s for a query value into a malloc'd string. */
char *kube_escape(const char *s);

#endif
