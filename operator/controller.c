/*
 * controller.c - the I/O around reconcile_stageset() (controller.h).
 *
 * Order of writes: the ConfigMap first (pods that start read the new
 * config), then hot-swaps, then the Deployment, Service, PodDisruptionBudget
 * and NetworkPolicy, then status, then
 * events. Any failure returns an error and the work queue retries the whole
 * reconcile later; since every step is level-triggered, a retry redoes only
 * what is still different. A child the API server refuses (400/403/413/422)
 * is also reported in status (ApplyFailed) and with a Warning event, because
 * retrying alone would leave the user looking at the previous success.
 */
#include "controller.h"

#include "opmetrics.h"
#include "reconcile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

void controller_stagesets_path(const char *ns, char *buf, size_t len)
{
    if (ns && *ns)
        snprintf(buf, len, "/apis/%s/v1alpha1/namespaces/%s/stagesets", RECONCILE_GROUP, ns);
    else
        snprintf(buf, len, "/apis/%s/v1alpha1/stagesets", RECONCILE_GROUP);
}

static int get_opt(controller *ctl, const char *path, json_t **out, char *err, size_t errlen)
{
    int rc = kube_get(ctl->kube, path, out, err, errlen);
    if (rc == -ENOENT) {
        *out = NULL;
        return 0;
    }
    return rc;
}

static int object_path(const json_t *obj, char *buf, size_t len)
{
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const json_t *meta = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!kind || !ns || !name)
        return -EINVAL;
    if (strcmp(kind, "ConfigMap") == 0)
        snprintf(buf, len, "/api/v1/namespaces/%s/configmaps/%s", ns, name);
    else if (strcmp(kind, "Service") == 0)
        snprintf(buf, len, "/api/v1/namespaces/%s/services/%s", ns, name);
    else if (strcmp(kind, "Deployment") == 0)
        snprintf(buf, len, "/apis/apps/v1/namespaces/%s/deployments/%s", ns, name);
    else if (strcmp(kind, "PodDisruptionBudget") == 0)
        snprintf(buf, len, "/apis/policy/v1/namespaces/%s/poddisruptionbudgets/%s", ns, name);
    else if (strcmp(kind, "NetworkPolicy") == 0)
        snprintf(buf, len, "/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies/%s", ns, name);
    else
        return -EINVAL;
    return 0;
}

static int apply_kind(controller *ctl, const json_t *apply, const char *only, char *err,
                      size_t errlen)
{
    size_t i;
    const json_t *obj;
    json_array_foreach(apply, i, obj)
    {
        char path[700];
        const char *kind = json_string_value(json_object_get(obj, "kind"));
        if (only && (!kind || strcmp(kind, only) != 0))
            continue;
        if (object_path(obj, path, sizeof path))
            return -EINVAL;
        int rc = kube_apply(ctl->kube, path, obj, RECONCILE_FIELD_MANAGER, NULL, err, errlen);
        if (rc) {
            /* Name the child for the user rather than quoting the URL. */
            const char *http = strstr(err, ": HTTP ");
            if (http) {
                char *msg = strdup(http + 2);
                if (msg) {
                    snprintf(err, errlen, "%s %s: %s", kind,
                             json_string_value(
                                 json_object_get(json_object_get(obj, "metadata"), "name")),
                             msg);
                    free(msg);
                }
            }
            return rc;
        }
        atomic_fetch_add(&opmetrics_g.applies, 1);
    }
    return 0;
}

static void now_rfc3339(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Performs the swaps; returns the results array for the second pass. */
static json_t *do_swaps(controller *ctl, const json_t *swaps)
{
    json_t *results = json_array();
    size_t i;
    const json_t *s;
    json_array_foreach(swaps, i, s)
    {
        char msg[512] = "";
        const char *ip = json_string_value(json_object_get(s, "podIP"));
        const char *stage = json_string_value(json_object_get(s, "stage"));
        int rc = ctl->swap.swap(ctl->swap.ud, ip, ctl->hostd_port, stage,
                                json_string_value(json_object_get(s, "plugin")),
                                json_string_value(json_object_get(s, "version")), msg, sizeof msg);
        atomic_fetch_add(rc ? &opmetrics_g.swaps_failed : &opmetrics_g.swaps_ok, 1);
        json_array_append_new(results,
                              json_pack("{s:O, s:s, s:b, s:s}", "pod", json_object_get(s, "pod"),
                                        "stage", stage, "ok", rc == 0, "message", msg));
    }
    return results;
}

static int write_status(controller *ctl, const json_t *ss, const json_t *status, char *err,
                        size_t errlen)
{
    char path[700];
    const json_t *meta = json_object_get(ss, "metadata");
    snprintf(path, sizeof path, "/apis/%s/v1alpha1/namespaces/%s/stagesets/%s/status",
             RECONCILE_GROUP, json_string_value(json_object_get(meta, "namespace")),
             json_string_value(json_object_get(meta, "name")));
    /* A merge patch replaces the status members we give; members we no
     * longer produce are removed with null. The resourceVersion makes the
     * write conditional on the StageSet we reconciled (409 otherwise). */
    json_t *st = json_deep_copy(status);
    const char *k;
    const json_t *v;
    json_object_foreach(json_object_get(ss, "status"), k, v)
    {
        if (!json_object_get(st, k))
            json_object_set_new(st, k, json_null());
    }
    json_t *patch = json_pack("{s:{s:O}, s:o}", "metadata", "resourceVersion",
                              json_object_get(meta, "resourceVersion"), "status", st);
    int rc = patch ? kube_merge_patch(ctl->kube, path, patch, NULL, err, errlen) : -ENOMEM;
    json_decref(patch);
    if (rc == 0)
        atomic_fetch_add(&opmetrics_g.status_writes, 1);
    return rc;
}

static void record_events(controller *ctl, const json_t *ss, const json_t *events)
{
    size_t i;
    const json_t *e;
    const json_t *meta = json_object_get(ss, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    json_array_foreach(events, i, e)
    {
        char path[400], ename[400], now[32], err[512];
        struct timeval tv;
        gettimeofday(&tv, NULL);
        now_rfc3339(now);
        snprintf(ename, sizeof ename, "%s.%llx%zu", name,
                 (unsigned long long)tv.tv_sec * 1000000ull + (unsigned long long)tv.tv_usec, i);
        json_t *ev = json_pack(
            "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:O, s:O}, s:O, s:O, s:O, s:{s:s}, "
            "s:s, s:s, s:i,"
            " s:s, s:s}",
            "apiVersion", "v1", "kind", "Event", "metadata", "name", ename, "namespace", ns,
            "involvedObject", "apiVersion", RECONCILE_API_VERSION, "kind", RECONCILE_KIND, "name",
            name, "namespace", ns, "uid", json_object_get(meta, "uid"), "resourceVersion",
            json_object_get(meta, "resourceVersion"), "type", json_object_get(e, "type"), "reason",
            json_object_get(e, "reason"), "message", json_object_get(e, "message"), "source",
            "component", RECONCILE_FIELD_MANAGER, "firstTimestamp", now, "lastTimestamp", now,
            "count", 1, "reportingComponent", RECONCILE_FIELD_MANAGER, "reportingInstance",
            ctl->identity ? ctl->identity : "");
        snprintf(path, sizeof path, "/api/v1/namespaces/%s/events", ns);
        /* Events are best effort: losing one must not fail the reconcile.
         * A connection that broke gets one more try (a Warning event is
         * sent once per distinct problem, so a lost one stays lost). */
        int rc = ev ? kube_create(ctl->kube, path, ev, NULL, err, sizeof err) : -ENOMEM;
        if (rc == -EIO)
            rc = kube_create(ctl->kube, path, ev, NULL, err, sizeof err);
        if (rc)
            fprintf(stderr, "operator: %s/%s: recording event %s: %s\n", ns, name,
                    json_string_value(json_object_get(e, "reason")), ev ? err : "out of memory");
        else
            atomic_fetch_add(&opmetrics_g.events, 1);
        json_decref(ev);
    }
}

/* The API server refused a child (rc from apply_kind, message in err): say so
 * in status and with an event, then still fail so the key is retried. */
static void report_apply_failed(controller *ctl, const reconcile_input *in, const char *err)
{
    reconcile_output out = {0};
    char werr[512];
    if (reconcile_apply_failed(in, err, &out) == 0) {
        if (out.status && write_status(ctl, in->stageset, out.status, werr, sizeof werr))
            fprintf(stderr, "operator: writing the ApplyFailed status: %s\n", werr);
        record_events(ctl, in->stageset, out.events);
    }
    reconcile_output_free(&out);
}

int controller_sync(controller *ctl, const char *key, int *exists, char *err, size_t errlen)
{
    char ns[254], name[254], path[1024], now[32];
    const char *slash = strchr(key, '/');
    json_t *ss = NULL, *cm = NULL, *dep = NULL, *svc = NULL, *pdb = NULL, *netpol = NULL,
           *pods = NULL, *results = NULL;
    reconcile_output out = {0}, out2 = {0};
    int rc;
    *exists = 0;
    if (!slash || (size_t)(slash - key) >= sizeof ns || strlen(slash + 1) >= sizeof name) {
        snprintf(err, errlen, "bad key '%s'", key);
        return 0; /* not retryable */
    }
    memcpy(ns, key, (size_t)(slash - key));
    ns[slash - key] = '\0';
    snprintf(name, sizeof name, "%s", slash + 1);

    snprintf(path, sizeof path, "/apis/%s/v1alpha1/namespaces/%s/stagesets/%s", RECONCILE_GROUP, ns,
             name);
    if ((rc = get_opt(ctl, path, &ss, err, errlen)))
        goto out;
    if (!ss)
        goto out; /* deleted: garbage collection removes the children */
    *exists = 1;
    char cmname[300];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps/%s", ns,
             reconcile_configmap_name(name, cmname, sizeof cmname));
    if ((rc = get_opt(ctl, path, &cm, err, errlen)))
        goto out;
    snprintf(path, sizeof path, "/apis/apps/v1/namespaces/%s/deployments/%s", ns, name);
    if ((rc = get_opt(ctl, path, &dep, err, errlen)))
        goto out;
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/services/%s", ns, name);
    if ((rc = get_opt(ctl, path, &svc, err, errlen)))
        goto out;
    snprintf(path, sizeof path, "/apis/policy/v1/namespaces/%s/poddisruptionbudgets/%s", ns, name);
    if ((rc = get_opt(ctl, path, &pdb, err, errlen)))
        goto out;
    snprintf(path, sizeof path, "/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies/%s", ns,
             name);
    if ((rc = get_opt(ctl, path, &netpol, err, errlen)))
        goto out;
    char sel[600], *esc;
    snprintf(sel, sizeof sel, "%s=%s,%s=%s", RECONCILE_LABEL_NAME, RECONCILE_APP_NAME,
             RECONCILE_LABEL_INSTANCE, name);
    if (!(esc = kube_escape(sel))) {
        rc = -ENOMEM;
        goto out;
    }
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods?labelSelector=%s", ns, esc);
    free(esc);
    json_t *podlist = NULL;
    /* A server without pods (a test API server without a kubelet) answers
     * 404: then no pod is ready, and version changes roll out. */
    if ((rc = get_opt(ctl, path, &podlist, err, errlen)))
        goto out;
    pods = json_incref(json_object_get(podlist, "items"));
    json_decref(podlist);

    now_rfc3339(now);
    reconcile_input in = {.stageset = ss,
                          .configmap = cm,
                          .deployment = dep,
                          .service = svc,
                          .pdb = pdb,
                          .network_policy = netpol,
                          .pods = pods,
                          .swap_results = NULL,
                          .now = now};
    if ((rc = reconcile_stageset(&in, &out))) {
        snprintf(err, errlen, "%s: reconcile: out of memory", key);
        goto out;
    }
    reconcile_output *final = &out;
    if (json_array_size(out.swaps)) {
        /* Pods that restart from now on must already read the new versions. */
        if ((rc = apply_kind(ctl, out.apply, "ConfigMap", err, errlen))) {
            if (rc == -EINVAL)
                report_apply_failed(ctl, &in, err);
            goto out;
        }
        results = do_swaps(ctl, out.swaps);
        in.swap_results = results;
        if ((rc = reconcile_stageset(&in, &out2))) {
            snprintf(err, errlen, "%s: reconcile: out of memory", key);
            goto out;
        }
        final = &out2;
    }
    if ((rc = apply_kind(ctl, final->apply, NULL, err, errlen))) {
        if (rc == -EINVAL)
            report_apply_failed(ctl, &in, err);
        goto out;
    }
    if (final->status && (rc = write_status(ctl, ss, final->status, err, errlen)))
        goto out;
    record_events(ctl, ss, final->events);
out:
    reconcile_output_free(&out);
    reconcile_output_free(&out2);
    json_decref(ss);
    json_decref(cm);
    json_decref(dep);
    json_decref(svc);
    json_decref(pdb);
    json_decref(netpol);
    json_decref(pods);
    json_decref(results);
    return rc;
}
