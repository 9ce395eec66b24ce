/*
 * render.h - renders a StageSet's spec into the pipeline.yaml that hostd
 * reads (docs/config.md), the only thing the operator shares with hostd.
 *
 * The StageSet spec mirrors pipeline.yaml with Kubernetes spelling
 * (batchSize for batch_size, ...); what belongs to the cluster rather than
 * to the pipeline (http.listen, store.path) is fixed by the operator so the
 * Service and the volumes always match. Output is produced with libyaml's
 * emitter, so quoting is always right (a version "1.0" stays a string).
 */
#ifndef OBSOP_RENDER_H
#define OBSOP_RENDER_H

#include <jansson.h>
#include <stddef.h>

/* The port hostd listens on inside the pod: metrics, API and swap. */
#define RENDER_HOSTD_PORT 9464
/* Where the ConfigMap and the store are mounted in the hostd container. */
#define RENDER_CONFIG_DIR "/etc/observatory"
#define RENDER_STORE_DIR "/var/lib/observatory"
#define RENDER_DEFAULT_PLUGIN_DIR "/usr/local/lib/observatory/plugins"

enum {
    RENDER_FULL = 0,
    /* Leaves every stage's plugin and version out: the "structure" of the
     * pipeline, whose hash tells whether a change can be hot-swapped. */
    RENDER_MASK_PLUGINS = 1,
};

/* Renders pipeline.yaml for the StageSet object `ss` (borrowed; needs
 * metadata.name and spec). On success returns 0 and *out is a malloc'd
 * NUL-terminated string the caller frees. On a spec that cannot be rendered
 * (e.g. a list as a parameter value) returns -EINVAL with a message naming the
 * field in err. */
int render_pipeline(const json_t *ss, int flags, char **out, char *err, size_t errlen);

/* Renders the parts hostd does not read from pipeline.yaml yet (abTest,
 * profiling) as a small YAML document for the ConfigMap key "observatory.yaml".
 * *out is NULL (and 0 returned) when the spec has neither. Same ownership as
 * render_pipeline. */
int render_extras(const json_t *ss, char **out, char *err, size_t errlen);

#endif
