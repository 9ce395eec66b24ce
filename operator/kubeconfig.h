/*
 * kubeconfig.h - where the API server is and how to authenticate to it:
 * in-cluster (service account) or from a kubeconfig file.
 *
 * In a pod: KUBERNETES_SERVICE_HOST/PORT, the CA and the token under
 * /var/run/secrets/kubernetes.io/serviceaccount/. The token file is kept as a
 * path, not read once: projected tokens are rotated by the kubelet, so the
 * client re-reads it (kube.c). Out of a cluster: a kubeconfig (YAML, parsed
 * with libyaml) with its current or a named context; supported credentials
 * are bearer token, tokenFile and client certificates (exec and auth-provider
 * plugins are not).
 */
#ifndef OBSOP_KUBECONFIG_H
#define OBSOP_KUBECONFIG_H

#include <stddef.h>

#define KUBECONFIG_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

typedef struct kube_config {
    char *server;  /* "https://host:port" without a trailing slash */
    char *ca_file; /* PEM file, or NULL */
    char *ca_data; /* PEM bytes (decoded), or NULL */
    size_t ca_data_len;
    char *token;                /* static bearer token, or NULL */
    char *token_file;           /* re-read periodically, or NULL */
    char *cert_file, *key_file; /* client certificate as files */
    char *cert_data, *key_data; /* or as PEM bytes (decoded) */
    size_t cert_data_len, key_data_len;
    int insecure;    /* insecure-skip-tls-verify */
    char *namespace; /* the context's or the pod's namespace, or NULL */
} kube_config;

/* Fills cfg for running in a pod; sa_dir NULL means KUBECONFIG_SA_DIR (tests
 * pass another). Returns 0 or -ENOENT/-EINVAL with err set. */
int kubeconfig_in_cluster(const char *sa_dir, kube_config *cfg, char *err, size_t errlen);

/* Fills cfg from a kubeconfig file; context NULL uses current-context.
 * Relative file paths are resolved against the kubeconfig's directory. */
int kubeconfig_load(const char *path, const char *context, kube_config *cfg, char *err,
                    size_t errlen);

/* Releases everything cfg owns; leaves it zeroed. */
void kubeconfig_free(kube_config *cfg);

/* Decodes standard base64 (whitespace ignored) into a malloc'd buffer. */
int kubeconfig_base64(const char *in, char **out, size_t *outlen);

#endif
