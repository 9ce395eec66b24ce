/*
 * render.c - StageSet spec to pipeline.yaml with libyaml's emitter.
 *
 * The CRD schema has already validated the spec when the API server accepted
 * it; this file re-checks only what it needs to emit something hostd can
 * parse, and reports the rest to the reconciler as an invalid spec rather
 * than emitting a file hostd would reject at startup.
 */
#include "render.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct buf {
    char *p;
    size_t len, cap;
    int oom;
} buf;

static int buf_write(void *data, unsigned char *bytes, size_t size)
{
    buf *b = data;
    if (b->len + size + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + size + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return 0;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, bytes, size);
    b->len += size;
    b->p[b->len] = '\0';
    return 1;
}

typedef struct emit {
    yaml_emitter_t em;
    int failed;
} emit;

static void ev(emit *e, yaml_event_t *event, int ok)
{
    if (e->failed)
        return;
    if (!ok || !yaml_emitter_emit(&e->em, event))
        e->failed = 1;
}

/* Plain style for numbers and booleans, double quotes for user text so that
 * YAML never re-types it ("1.0", "yes", "0x10" stay strings). */
static void scalar(emit *e, const char *s, int quoted)
{
    yaml_event_t event;
    ev(e, &event,
       yaml_scalar_event_initialize(&event, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1,
                                    quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                           : YAML_PLAIN_SCALAR_STYLE));
}

static void key(emit *e, const char *k)
{
    scalar(e, k, 0);
}

static void map_start(emit *e, int flow)
{
    yaml_event_t event;
    ev(e, &event,
       yaml_mapping_start_event_initialize(
           &event, NULL, NULL, 1, flow ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE));
}

static void map_end(emit *e)
{
    yaml_event_t event;
    ev(e, &event, yaml_mapping_end_event_initialize(&event));
}

static void seq_start(emit *e, int flow)
{
    yaml_event_t event;
    ev(e, &event,
       yaml_sequence_start_event_initialize(
           &event, NULL, NULL, 1, flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE));
}

static void seq_end(emit *e)
{
    yaml_event_t event;
    ev(e, &event, yaml_sequence_end_event_initialize(&event));
}

/* Emits a JSON scalar; returns -EINVAL for arrays, objects and null. */
static int json_scalar(emit *e, const json_t *v)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING: scalar(e, json_string_value(v), 1); return 0;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        scalar(e, num, 0);
        return 0;
    case JSON_REAL:
        snprintf(num, sizeof num, "%.17g", json_real_value(v));
        scalar(e, num, 0);
        return 0;
    case JSON_TRUE: scalar(e, "true", 0); return 0;
    case JSON_FALSE: scalar(e, "false", 0); return 0;
    default: return -EINVAL;
    }
}

/* Emits `yaml_key: value` when the spec has json_key; the value must be a
 * scalar. */
static int opt_scalar(emit *e, const json_t *obj, const char *json_key, const char *yaml_key,
                      const char *path, char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, json_key);
    if (!v)
        return 0;
    if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v)) {
        snprintf(err, errlen, "%s.%s: expected a scalar", path, json_key);
        return -EINVAL;
    }
    key(e, yaml_key);
    return json_scalar(e, v);
}

static int begin(emit *e, buf *b)
{
    memset(e, 0, sizeof *e);
    memset(b, 0, sizeof *b);
    if (!yaml_emitter_initialize(&e->em))
        return -ENOMEM;
    yaml_emitter_set_output(&e->em, buf_write, b);
    yaml_emitter_set_unicode(&e->em, 1);
    yaml_emitter_set_width(&e->em, -1);
    yaml_event_t event;
    ev(e, &event, yaml_stream_start_event_initialize(&event, YAML_UTF8_ENCODING));
    ev(e, &event, yaml_document_start_event_initialize(&event, NULL, NULL, NULL, 1));
    return 0;
}

static int finish(emit *e, buf *b, int rc, char **out, char *err, size_t errlen)
{
    yaml_event_t event;
    if (rc == 0) {
        ev(e, &event, yaml_document_end_event_initialize(&event, 1));
        ev(e, &event, yaml_stream_end_event_initialize(&event));
        if (e->failed || b->oom) {
            snprintf(err, errlen, "emitting YAML failed: %s",
                     e->em.problem ? e->em.problem : "out of memory");
            rc = b->oom ? -ENOMEM : -EINVAL;
        }
    }
    yaml_emitter_delete(&e->em);
    if (rc == 0) {
        *out = b->p;
    } else {
        free(b->p);
        *out = NULL;
    }
    return rc;
}

static int render_stages(emit *e, const json_t *stages, int flags, char *err, size_t errlen)
{
    size_t i;
    const json_t *st;
    if (!json_is_array(stages) || json_array_size(stages) < 2) {
        snprintf(err, errlen, "spec.stages: expected a list of at least 2 stages");
        return -EINVAL;
    }
    key(e, "stages");
    seq_start(e, 0);
    json_array_foreach(stages, i, st)
    {
        char path[64];
        snprintf(path, sizeof path, "spec.stages[%zu]", i);
        const json_t *name = json_object_get(st, "name"), *plugin = json_object_get(st, "plugin");
        if (!json_is_string(name) || !json_is_string(plugin)) {
            snprintf(err, errlen, "%s: name and plugin are required strings", path);
            return -EINVAL;
        }
        map_start(e, 0);
        key(e, "name");
        scalar(e, json_string_value(name), 1);
        if (!(flags & RENDER_MASK_PLUGINS)) {
            int rc;
            key(e, "plugin");
            scalar(e, json_string_value(plugin), 1);
            if ((rc = opt_scalar(e, st, "version", "version", path, err, errlen)))
                return rc;
        }
        const json_t *params = json_object_get(st, "params");
        if (params && json_object_size(params) > 0) {
            const char *k;
            const json_t *v;
            if (!json_is_object(params)) {
                snprintf(err, errlen, "%s.params: expected a mapping", path);
                return -EINVAL;
            }
            key(e, "params");
            map_start(e, 0);
            /* jansson keeps insertion order; the API server sorts keys, so
             * the output is stable for equal specs either way. */
            json_object_foreach((json_t *)params, k, v)
            {
                key(e, k);
                if (json_scalar(e, v)) {
                    snprintf(
                        err, errlen,
                        "%s.params.%s: parameter values must be scalars (string, number, boolean)",
                        path, k);
                    return -EINVAL;
                }
            }
            map_end(e);
        }
        map_end(e);
    }
    seq_end(e);
    return 0;
}

static int render_load(emit *e, const json_t *load, char *err, size_t errlen)
{
    size_t i;
    const json_t *ph;
    int rc;
    if (!load)
        return 0;
    if (!json_is_array(load)) {
        snprintf(err, errlen, "spec.load: expected a list of phases");
        return -EINVAL;
    }
    key(e, "load");
    seq_start(e, 0);
    json_array_foreach(load, i, ph)
    {
        const char *k;
        const json_t *v;
        /* Every key is passed through under its own name (shape, rate,
         * duration, ...), so a load shape hostd learns only needs the CRD
         * schema to grow, not this file. Values are scalars or lists of them. */
        if (!json_is_object(ph)) {
            snprintf(err, errlen, "spec.load[%zu]: expected a mapping", i);
            return -EINVAL;
        }
        map_start(e, 0);
        json_object_foreach((json_t *)ph, k, v)
        {
            key(e, k);
            if (json_is_array(v)) {
                size_t j;
                const json_t *x;
                seq_start(e, 1);
                json_array_foreach(v, j, x)
                {
                    if ((rc = json_scalar(e, x))) {
                        snprintf(err, errlen, "spec.load[%zu].%s[%zu]: expected a scalar", i, k, j);
                        return rc;
                    }
                }
                seq_end(e);
            } else if ((rc = json_scalar(e, v))) {
                snprintf(err, errlen, "spec.load[%zu].%s: expected a scalar or a list of scalars",
                         i, k);
                return rc;
            }
        }
        map_end(e);
    }
    seq_end(e);
    return 0;
}

int render_pipeline(const json_t *ss, int flags, char **out, char *err, size_t errlen)
{
    emit e;
    buf b;
    int rc;
    const json_t *spec = json_object_get(ss, "spec");
    const char *name = json_string_value(json_object_get(json_object_get(ss, "metadata"), "name"));
    *out = NULL;
    if (!json_is_object(spec) || !name) {
        snprintf(err, errlen, "the StageSet has no metadata.name or no spec");
        return -EINVAL;
    }
    if ((rc = begin(&e, &b)))
        return rc;
    map_start(&e, 0);
    key(&e, "pipeline");
    scalar(&e, name, 1);

    key(&e, "plugin_dirs");
    seq_start(&e, 1);
    const json_t *dirs = json_object_get(spec, "pluginDirs");
    if (json_array_size(dirs) > 0) {
        size_t i;
        const json_t *d;
        json_array_foreach(dirs, i, d)
        {
            if (!json_is_string(d)) {
                snprintf(err, errlen, "spec.pluginDirs[%zu]: expected a string", i);
                rc = -EINVAL;
                goto out;
            }
            scalar(&e, json_string_value(d), 1);
        }
    } else {
        scalar(&e, RENDER_DEFAULT_PLUGIN_DIR, 1);
    }
    seq_end(&e);

    if ((rc = opt_scalar(&e, spec, "batchSize", "batch_size", "spec", err, errlen)) ||
        (rc = opt_scalar(&e, spec, "ringCapacity", "ring_capacity", "spec", err, errlen)) ||
        (rc = opt_scalar(&e, spec, "maxBatchBytes", "max_batch_bytes", "spec", err, errlen)) ||
        (rc = opt_scalar(&e, spec, "maxBatchDelay", "max_batch_delay", "spec", err, errlen)))
        goto out;

    const json_t *run = json_object_get(spec, "run");
    if (json_object_size(run) > 0) {
        key(&e, "run");
        map_start(&e, 0);
        if ((rc = opt_scalar(&e, run, "duration", "duration", "spec.run", err, errlen)) ||
            (rc = opt_scalar(&e, run, "warmup", "warmup", "spec.run", err, errlen)) ||
            (rc = opt_scalar(&e, run, "seed", "seed", "spec.run", err, errlen)) ||
            (rc = opt_scalar(&e, run, "realtimePriority", "realtime_priority", "spec.run", err,
                             errlen)))
            goto out;
        map_end(&e);
    }

    /* The Service, the probes and the swap client all assume this address. */
    char listen[32];
    snprintf(listen, sizeof listen, "0.0.0.0:%d", RENDER_HOSTD_PORT);
    key(&e, "http");
    map_start(&e, 0);
    key(&e, "listen");
    scalar(&e, listen, 1);
    map_end(&e);
    key(&e, "store");
    map_start(&e, 0);
    key(&e, "path");
    scalar(&e, RENDER_STORE_DIR, 1);
    map_end(&e);

    if ((rc = render_load(&e, json_object_get(spec, "load"), err, errlen)))
        goto out;
    if ((rc = render_stages(&e, json_object_get(spec, "stages"), flags, err, errlen)))
        goto out;
    map_end(&e);
out:
    return finish(&e, &b, rc, out, err, errlen);
}

static int render_variant(emit *e, const json_t *v, char *err, size_t errlen)
{
    int rc;
    map_start(e, 0);
    if ((rc = opt_scalar(e, v, "plugin", "plugin", "spec.abTest.variant", err, errlen)) ||
        (rc = opt_scalar(e, v, "version", "version", "spec.abTest.variant", err, errlen)))
        return rc;
    const json_t *params = json_object_get(v, "params");
    if (json_object_size(params) > 0) {
        const char *k;
        const json_t *pv;
        key(e, "params");
        map_start(e, 0);
        json_object_foreach((json_t *)params, k, pv)
        {
            key(e, k);
            if (json_scalar(e, pv)) {
                snprintf(err, errlen,
                         "spec.abTest.variant.params.%s: parameter values must be scalars", k);
                return -EINVAL;
            }
        }
        map_end(e);
    }
    map_end(e);
    return 0;
}

int render_extras(const json_t *ss, char **out, char *err, size_t errlen)
{
    emit e;
    buf b;
    int rc;
    const json_t *spec = json_object_get(ss, "spec");
    const json_t *ab = json_object_get(spec, "abTest"), *prof = json_object_get(spec, "profiling");
    *out = NULL;
    if (!ab && !prof)
        return 0;
    if ((rc = begin(&e, &b)))
        return rc;
    map_start(&e, 0);
    if (ab) {
        key(&e, "ab_test");
        map_start(&e, 0);
        if ((rc = opt_scalar(&e, ab, "stage", "stage", "spec.abTest", err, errlen)) ||
            (rc = opt_scalar(&e, ab, "mode", "mode", "spec.abTest", err, errlen)))
            goto out;
        const json_t *v = json_object_get(ab, "variant");
        if (v) {
            key(&e, "variant_b");
            if ((rc = render_variant(&e, v, err, errlen)))
                goto out;
        }
        map_end(&e);
    }
    if (prof) {
        key(&e, "profiling");
        map_start(&e, 0);
        if ((rc = opt_scalar(&e, prof, "hz", "hz", "spec.profiling", err, errlen)) ||
            (rc = opt_scalar(&e, prof, "continuous", "continuous", "spec.profiling", err, errlen)))
            goto out;
        map_end(&e);
    }
    map_end(&e);
out:
    return finish(&e, &b, rc, out, err, errlen);
}
