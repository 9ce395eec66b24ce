/*
 * children.c - the objects a StageSet owns, as complete objects for
 * server-side apply: the ConfigMap with pipeline.yaml, the Deployment of hostd
 * pods, the Service, the PodDisruptionBudget and the NetworkPolicy
 * (children.h). Pure functions of the reconcile context; reconcile.c decides
 * which of them to apply.
 */
#include "children.h"

#include "render.h"

#include <stdio.h>
#include <string.h>

static json_t *labels(const reconcile_ctx *c)
{
    return json_pack("{s:s, s:s, s:s}", RECONCILE_LABEL_NAME, RECONCILE_APP_NAME,
                     RECONCILE_LABEL_INSTANCE, c->name, RECONCILE_LABEL_MANAGED_BY,
                     RECONCILE_FIELD_MANAGER);
}

static json_t *selector_labels(const reconcile_ctx *c)
{
    return json_pack("{s:s, s:s}", RECONCILE_LABEL_NAME, RECONCILE_APP_NAME,
                     RECONCILE_LABEL_INSTANCE, c->name);
}

/* metadata with a controller owner reference to the StageSet: garbage
 * collection deletes the children with it, and blockOwnerDeletion keeps a
 * foreground delete of the StageSet waiting for them. */
static json_t *child_meta(const reconcile_ctx *c, const char *name)
{
    const char *uid =
        json_string_value(json_object_get(json_object_get(c->in->stageset, "metadata"), "uid"));
    return json_pack("{s:s, s:s, s:o, s:[{s:s, s:s, s:s, s:s, s:b, s:b}]}", "name", name,
                     "namespace", c->ns, "labels", labels(c), "ownerReferences", "apiVersion",
                     RECONCILE_API_VERSION, "kind", RECONCILE_KIND, "name", c->name, "uid",
                     uid ? uid : "", "controller", 1, "blockOwnerDeletion", 1);
}

json_t *children_configmap(const reconcile_ctx *c)
{
    char cm[300];
    json_t *data = json_pack("{s:s}", "pipeline.yaml", c->pipeline);
    if (data && c->extras)
        json_object_set_new(data, "observatory.yaml", json_string(c->extras));
    json_t *o =
        json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "ConfigMap", "metadata",
                  child_meta(c, reconcile_configmap_name(c->name, cm, sizeof cm)), "data", data);
    if (o)
        json_object_set_new(json_object_get(o, "metadata"), "annotations",
                            json_pack("{s:s}", RECONCILE_ANN_CONFIG_HASH, c->full_hash));
    return o;
}

/* A resource quantity from the spec as the string the API server keeps. */
static json_t *quantity(const json_t *v)
{
    char num[64];
    if (json_is_string(v))
        return json_string(json_string_value(v));
    if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return json_string(num);
    }
    if (json_is_real(v)) {
        snprintf(num, sizeof num, "%g", json_real_value(v));
        return json_string(num);
    }
    return NULL;
}

static json_t *quantities(const json_t *m)
{
    const char *k;
    const json_t *v;
    json_t *out = json_object();
    json_object_foreach((json_t *)m, k, v)
    {
        json_t *q = quantity(v);
        if (q)
            json_object_set_new(out, k, q);
    }
    return out;
}

/* spec.resources -> container resources. exclusiveCores sets requests ==
 * limits in whole CPUs (and memory), which is what makes a pod Guaranteed
 * and lets the static CPU manager give it exclusive cores. Without any
 * resources the container gets CHILDREN_DEFAULT_* (children.h): a pod with no
 * requests is scheduled as if it needed nothing and is the first evicted. */
static json_t *resources(const json_t *r)
{
    json_t *out = json_object();
    const json_t *cores = json_object_get(r, "exclusiveCores");
    if (json_is_integer(cores)) {
        char n[32];
        snprintf(n, sizeof n, "%" JSON_INTEGER_FORMAT, json_integer_value(cores));
        json_t *q = json_pack("{s:s}", "cpu", n);
        json_t *mem = quantity(json_object_get(r, "memory"));
        if (mem)
            json_object_set_new(q, "memory", mem);
        json_object_set_new(out, "requests", json_deep_copy(q));
        json_object_set_new(out, "limits", q);
        return out;
    }
    if (json_object_size(json_object_get(r, "requests")))
        json_object_set_new(out, "requests", quantities(json_object_get(r, "requests")));
    if (json_object_size(json_object_get(r, "limits")))
        json_object_set_new(out, "limits", quantities(json_object_get(r, "limits")));
    if (json_object_size(out) == 0) {
        json_object_set_new(out, "requests",
                            json_pack("{s:s, s:s}", "cpu", CHILDREN_DEFAULT_CPU_REQUEST, "memory",
                                      CHILDREN_DEFAULT_MEMORY_REQUEST));
        json_object_set_new(out, "limits",
                            json_pack("{s:s}", "memory", CHILDREN_DEFAULT_MEMORY_LIMIT));
    }
    return out;
}

int children_realtime_priority(const json_t *stageset)
{
    const json_t *rt = json_object_get(json_object_get(json_object_get(stageset, "spec"), "run"),
                                       "realtimePriority");
    return json_is_integer(rt) && json_integer_value(rt) > 0 ? (int)json_integer_value(rt) : 0;
}

/* The restricted Pod Security profile, except for SYS_NICE when a real-time
 * generator needs it (without it hostd warns and runs at normal priority). The
 * root filesystem is read-only: the store and /tmp are emptyDirs. */
static json_t *container_security(const reconcile_ctx *c)
{
    json_t *caps = json_pack("{s:[s]}", "drop", "ALL");
    if (caps && children_realtime_priority(c->in->stageset))
        json_object_set_new(caps, "add", json_pack("[s]", "SYS_NICE"));
    return json_pack("{s:b, s:b, s:b, s:o}", "allowPrivilegeEscalation", 0,
                     "readOnlyRootFilesystem", 1, "runAsNonRoot", 1, "capabilities", caps);
}

static json_t *pod_security(void)
{
    return json_pack("{s:b, s:I, s:I, s:I, s:{s:s}}", "runAsNonRoot", 1, "runAsUser",
                     (json_int_t)CHILDREN_HOSTD_UID, "runAsGroup", (json_int_t)CHILDREN_HOSTD_UID,
                     "fsGroup", (json_int_t)CHILDREN_HOSTD_UID, "seccompProfile", "type",
                     "RuntimeDefault");
}

/* Exclusive cores are whole CPUs a node has few of: a surge pod would need as
 * many again and stay Pending on a node sized for the StageSet, stalling the
 * rollout. Replace one pod at a time instead. Otherwise the default rolling
 * update (25% surge) applies. */
static json_t *strategy(const json_t *spec)
{
    if (!json_is_integer(json_object_get(json_object_get(spec, "resources"), "exclusiveCores")))
        return NULL;
    return json_pack("{s:s, s:{s:i, s:i}}", "type", "RollingUpdate", "rollingUpdate", "maxSurge", 0,
                     "maxUnavailable", 1);
}

json_t *children_deployment(const reconcile_ctx *c, const char *template_hash)
{
    char cm[300];
    const json_t *spec = json_object_get(c->in->stageset, "spec");
    const char *image = json_string_value(json_object_get(spec, "image"));
    char cfg[128];
    snprintf(cfg, sizeof cfg, "%s/pipeline.yaml", RENDER_CONFIG_DIR);
    json_t *probe_ready = json_pack("{s:{s:s, s:s}, s:i, s:i}", "httpGet", "path", "/readyz",
                                    "port", "metrics", "periodSeconds", 5, "failureThreshold", 3);
    json_t *probe_live = json_pack("{s:{s:s, s:s}, s:i, s:i}", "httpGet", "path", "/healthz",
                                   "port", "metrics", "periodSeconds", 10, "failureThreshold", 6);
    json_t *container =
        json_pack("{s:s, s:s, s:[s], s:[s, s], s:[{s:s, s:i, s:s}], s:o, s:o, s:o,"
                  " s:[{s:s, s:s, s:b}, {s:s, s:s}]}",
                  "name", "hostd", "image", image ? image : "", "command", "hostd", "args",
                  "--config", cfg, "ports", "name", "metrics", "containerPort", RENDER_HOSTD_PORT,
                  "protocol", "TCP", "readinessProbe", probe_ready, "livenessProbe", probe_live,
                  "resources", resources(json_object_get(spec, "resources")), "volumeMounts",
                  "name", "config", "mountPath", RENDER_CONFIG_DIR, "readOnly", 1, "name", "store",
                  "mountPath", RENDER_STORE_DIR);
    if (container) {
        json_array_append_new(json_object_get(container, "volumeMounts"),
                              json_pack("{s:s, s:s}", "name", "tmp", "mountPath", "/tmp"));
        json_object_set_new(container, "securityContext", container_security(c));
    }
    const char *pull = json_string_value(json_object_get(spec, "imagePullPolicy"));
    if (container && pull)
        json_object_set_new(container, "imagePullPolicy", json_string(pull));
    json_t *pod_labels = selector_labels(c);
    json_t *o = json_pack(
        "{s:s, s:s, s:o, s:{s:I, s:{s:o}, s:{s:{s:o, s:{s:s}}, s:{s:o, s:[o], s:[{s:s, s:{s:s}}, "
        "{s:s, s:{}}, {s:s, s:{}}]}}}}",
        "apiVersion", "apps/v1", "kind", "Deployment", "metadata", child_meta(c, c->name), "spec",
        "replicas", c->replicas, "selector", "matchLabels", selector_labels(c), "template",
        "metadata", "labels", pod_labels, "annotations", RECONCILE_ANN_CONFIG_HASH, template_hash,
        "spec", "securityContext", pod_security(), "containers", container, "volumes", "name",
        "config", "configMap", "name", reconcile_configmap_name(c->name, cm, sizeof cm), "name",
        "store", "emptyDir", "name", "tmp", "emptyDir");
    if (o) {
        json_object_set_new(json_object_get(o, "metadata"), "annotations",
                            json_pack("{s:s}", RECONCILE_ANN_STRUCTURE_HASH, c->struct_hash));
        json_t *st = strategy(spec);
        if (st)
            json_object_set_new(json_object_get(o, "spec"), "strategy", st);
    }
    return o;
}

json_t *children_service(const reconcile_ctx *c)
{
    char port[16];
    snprintf(port, sizeof port, "%d", RENDER_HOSTD_PORT);
    json_t *o =
        json_pack("{s:s, s:s, s:o, s:{s:s, s:o, s:[{s:s, s:i, s:s, s:s}]}}", "apiVersion", "v1",
                  "kind", "Service", "metadata", child_meta(c, c->name), "spec", "type",
                  "ClusterIP", "selector", selector_labels(c), "ports", "name", "metrics", "port",
                  RENDER_HOSTD_PORT, "targetPort", "metrics", "protocol", "TCP");
    if (o)
        json_object_set_new(json_object_get(o, "metadata"), "annotations",
                            json_pack("{s:s, s:s, s:s}", "prometheus.io/scrape", "true",
                                      "prometheus.io/port", port, "prometheus.io/path",
                                      "/metrics"));
    return o;
}

json_t *children_pdb(const reconcile_ctx *c)
{
    return json_pack("{s:s, s:s, s:o, s:{s:i, s:{s:o}}}", "apiVersion", "policy/v1", "kind",
                     "PodDisruptionBudget", "metadata", child_meta(c, c->name), "spec",
                     "maxUnavailable", 1, "selector", "matchLabels", selector_labels(c));
}

/* Port 9464 serves /metrics and hostd's mutating API (swap, experiments)
 * alike, without authentication, so only the operator and Prometheus may
 * reach it. The kubelet's probes come from the node, which NetworkPolicy
 * always lets through. */
json_t *children_network_policy(const reconcile_ctx *c)
{
    return json_pack(
        "{s:s, s:s, s:o, s:{s:{s:o}, s:[s], s:[{s:[{s:{}, s:{s:{s:s}}}, {s:{}, s:{s:{s:s}}}], "
        "s:[{s:s, s:i}]}]}}",
        "apiVersion", "networking.k8s.io/v1", "kind", "NetworkPolicy", "metadata",
        child_meta(c, c->name), "spec", "podSelector", "matchLabels", selector_labels(c),
        "policyTypes", "Ingress", "ingress", "from", "namespaceSelector", "podSelector",
        "matchLabels", RECONCILE_LABEL_NAME, CHILDREN_OPERATOR_APP_NAME, "namespaceSelector",
        "podSelector", "matchLabels", RECONCILE_LABEL_NAME, CHILDREN_PROMETHEUS_APP_NAME, "ports",
        "protocol", "TCP", "port", RENDER_HOSTD_PORT);
}
