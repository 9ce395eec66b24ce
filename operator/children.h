/*
 * children.h - builders of the objects a StageSet owns (children.c), shared
 * by the reconciler (reconcile.c) and nothing else.
 */
#ifndef OBSOP_CHILDREN_H
#define OBSOP_CHILDREN_H

#include "reconcile.h"

#include <jansson.h>

/* The hostd container's defaults when spec.resources is empty (docs/operator.md). */
#define CHILDREN_DEFAULT_CPU_REQUEST "500m"
#define CHILDREN_DEFAULT_MEMORY_REQUEST "256Mi"
#define CHILDREN_DEFAULT_MEMORY_LIMIT "1Gi"
/* The user and group hostd runs as (the image's USER). */
#define CHILDREN_HOSTD_UID 10001
/* app.kubernetes.io/name of the pods the NetworkPolicy lets reach hostd. */
#define CHILDREN_OPERATOR_APP_NAME "observatory-operator"
#define CHILDREN_PROMETHEUS_APP_NAME "prometheus"

/* One reconcile pass's view of the StageSet, filled by reconcile.c. */
typedef struct reconcile_ctx {
    const reconcile_input *in;
    const char *name, *ns;
    json_int_t generation, replicas;
    char selector[512];
    char full_hash[17], struct_hash[17];
    char *pipeline, *extras;
    char invalid[512]; /* non-empty: the spec cannot be rendered */
} reconcile_ctx;

/* Each returns a new object (NULL on allocation failure) that the caller
 * owns; c is borrowed for the call. */
json_t *children_configmap(const reconcile_ctx *c);
/* template_hash: the config hash the pod template carries (see reconcile.h). */
json_t *children_deployment(const reconcile_ctx *c, const char *template_hash);
json_t *children_service(const reconcile_ctx *c);
/* maxUnavailable 1 over the StageSet's pods. */
json_t *children_pdb(const reconcile_ctx *c);
/* Ingress to the pods only from the operator and Prometheus, on hostd's port. */
json_t *children_network_policy(const reconcile_ctx *c);

/* spec.run.realtimePriority when above 0 (the container then adds SYS_NICE), else 0. */
int children_realtime_priority(const json_t *stageset);

#endif
