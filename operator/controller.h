/*
 * controller.h - one reconcile of one StageSet against the API server: read
 * the StageSet and its children, run the pure reconciler, perform hot-swaps,
 * apply children, write status, record events.
 */
#ifndef OBSOP_CONTROLLER_H
#define OBSOP_CONTROLLER_H

#include "kube.h"
#include "swap.h"

#include <stddef.h>

typedef struct controller {
    kube_client *kube;
    swap_ops swap;
    int hostd_port;       /* where pods answer the swap API */
    const char *identity; /* reportingInstance of events */
} controller;

/* Reconciles the StageSet `key` ("namespace/name"). Returns 0 (also when it
 * no longer exists; *exists tells which), or a negative errno with err set:
 * the caller requeues the key with backoff. */
int controller_sync(controller *ctl, const char *key, int *exists, char *err, size_t errlen);

/* The StageSets collection URL, cluster-wide (ns NULL) or in one namespace. */
void controller_stagesets_path(const char *ns, char *buf, size_t len);

#endif
