/*
 * reconcile.h - the StageSet reconciler as a pure function.
 *
 * reconcile_stageset() takes a StageSet and everything observed about its
 * children (ConfigMap, Deployment, Service, PodDisruptionBudget,
 * NetworkPolicy, the pods) and returns what should
 * be written: the children to server-side apply, the status, the hot-swaps to
 * ask pods for, and the events to record. It does no I/O and reads no clock
 * (the caller passes `now`), so it is tested without a cluster and a second
 * pass over an unchanged world returns nothing to write.
 *
 * A plugin version change is hot-swapped rather than rolled out when only
 * plugins or versions differ from the pod template's structure and pods are
 * ready: the first pass returns `swaps`; the caller performs them and calls
 * again with `swap_results`, and that pass decides (all succeeded: keep the
 * pods; any failed: roll out). docs/operator.md describes the whole protocol.
 */
#ifndef OBSOP_RECONCILE_H
#define OBSOP_RECONCILE_H

#include <jansson.h>
#include <stddef.h>

#define RECONCILE_GROUP "observatory.dev"
#define RECONCILE_API_VERSION "observatory.dev/v1alpha1"
#define RECONCILE_KIND "StageSet"
#define RECONCILE_FIELD_MANAGER "observatory-operator"
/* Pod template annotation: hash of the config the template's pods started with. */
#define RECONCILE_ANN_CONFIG_HASH "observatory.dev/config-hash"
/* Deployment annotation: hash of the config with plugins and versions masked. */
#define RECONCILE_ANN_STRUCTURE_HASH "observatory.dev/structure-hash"
/* Every child: hash of what the operator last applied (detects removed fields). */
#define RECONCILE_ANN_APPLIED_HASH "observatory.dev/applied-hash"
#define RECONCILE_LABEL_NAME "app.kubernetes.io/name"
#define RECONCILE_LABEL_INSTANCE "app.kubernetes.io/instance"
#define RECONCILE_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define RECONCILE_APP_NAME "observatory-hostd"
#define RECONCILE_CONFIGMAP_SUFFIX "-pipeline"
/* The API server refuses a ConfigMap whose data values add up to more. */
#define RECONCILE_MAX_CONFIGMAP_BYTES 1048576

typedef struct reconcile_input {
    const json_t *stageset;  /* the StageSet as read; NULL when it is gone */
    const json_t *configmap; /* observed children, NULL when absent */
    const json_t *deployment;
    const json_t *service;
    const json_t *pdb;            /* PodDisruptionBudget */
    const json_t *network_policy; /* NetworkPolicy */
    const json_t *pods;           /* array of Pods matching the selector, or NULL */
    const json_t *swap_results;   /* NULL on a first pass; else array of
                                     {"pod", "stage", "ok": bool, "message"} */
    const char *now;              /* RFC 3339 UTC time, e.g. "2025-01-01T00:00:00Z" */
} reconcile_input;

typedef struct reconcile_output {
    json_t *apply;  /* array of complete objects to server-side apply, in order */
    json_t *status; /* the whole desired status, or NULL when unchanged */
    json_t *swaps;  /* array of {"pod", "podIP", "stage", "plugin", "version"} */
    json_t *events; /* array of {"type", "reason", "message"} about the StageSet */
} reconcile_output;

/* Computes what to write. All input is borrowed for the call. On return 0 the
 * output's four members are new references (apply, swaps and events are
 * arrays, possibly empty; status may be NULL) that the caller releases with
 * reconcile_output_free(). When `swaps` is non-empty the caller should perform
 * them and call again with swap_results before writing anything but the
 * ConfigMap. An invalid spec is not an error: it yields a Degraded status.
 * Returns -ENOMEM on allocation failure (output then empty). */
int reconcile_stageset(const reconcile_input *in, reconcile_output *out);

/* The status and events for a pass whose children the API server refused to
 * take (HTTP 400/403/413/422: retrying the same write cannot help): `message`
 * says which child and quotes the server. Ready=False, Progressing=False and
 * Degraded=True, all with reason ApplyFailed; status.observedGeneration stays
 * at the last generation applied while the conditions carry the current one;
 * a Warning event ApplyFailed when the message is new. Same ownership and
 * return as reconcile_stageset(); apply and swaps are empty. */
int reconcile_apply_failed(const reconcile_input *in, const char *message, reconcile_output *out);

/* Releases the output's references; safe on a zeroed or already freed one. */
void reconcile_output_free(reconcile_output *out);

/* The children's names for a StageSet name, into buf; returns buf. */
const char *reconcile_configmap_name(const char *stageset, char *buf, size_t len);

/* True when every member of `want` is present and equal in `have`, recursively
 * (arrays element by element, equal lengths); a key named `skip` is ignored at
 * any depth (NULL skips nothing). Used to tell whether an apply would change
 * anything the operator owns, ignoring what the server defaulted. */
int reconcile_subset(const json_t *want, const json_t *have, const char *skip);

#endif
