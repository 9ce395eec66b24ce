/*
 * plugin_desc.c - checking a plugin's descriptor against the host's ABI.
 *
 * The descriptor a plugin's entry point returns is the plugin's word about
 * itself, and no other plugin function may run before that word is checked:
 * first magic and ABI major, reading only the header every ABI version
 * starts with; then that struct_size covers everything the plugin's ABI
 * minor defined; only then names, kind, callbacks and declared parameters
 * (plain unique names, known types, defaults that parse and lie in their
 * range). A descriptor that passes is copied into a host-owned struct,
 * zero-filled beyond the plugin's struct_size, so later code may read every
 * field the host knows whatever minor the plugin was built against. Each
 * refusal says what mismatched, with both values.
 */
#include "engine/plugin.h"
#include "engine/plugin_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bound on declared parameters: a larger count is a corrupt descriptor,
 * and checking it would walk far outside the plugin's data. */
#define PLUGIN_MAX_PARAMS 1024u

const char *plugin_kind_name(obs_kind kind)
{
    switch (kind) {
    case OBS_KIND_GENERATOR: return "generator";
    case OBS_KIND_TRANSFORM: return "transform";
    case OBS_KIND_SINK: return "sink";
    }
    return "unknown kind";
}

/* "a generator" / "a transform" / "a sink", for messages. */
const char *plugin_kind_with_article(uint32_t kind)
{
    switch (kind) {
    case OBS_KIND_GENERATOR: return "a generator";
    case OBS_KIND_TRANSFORM: return "a transform";
    case OBS_KIND_SINK: return "a sink";
    }
    return "an unknown kind";
}

/* Bytes of obs_stage_desc a host needs from a plugin built against ABI 1.<m>:
 * everything up to and including the last field that minor defined. A new
 * minor appends a line to this table (and a field to the struct when it
 * grows it). */
#define DESC_END(field) (offsetof(obs_stage_desc, field) + sizeof(((obs_stage_desc *)0)->field))
static const uint32_t desc_size_for_minor[] = {
    [0] = DESC_END(import_state),
    /* 1.1 gave the record a key (obs_record.key, the 1.0 reserved field);
     * the descriptor did not grow. */
    [1] = DESC_END(import_state),
    /* 1.2: flags (OBS_STAGE_SOURCE) and delivered. */
    [2] = DESC_END(delivered),
};
_Static_assert(sizeof(desc_size_for_minor) / sizeof(desc_size_for_minor[0]) == OBS_ABI_MINOR + 1,
               "add the size of the new minor to desc_size_for_minor");
_Static_assert(DESC_END(delivered) == sizeof(obs_stage_desc),
               "obs_stage_desc grew: bump OBS_ABI_MINOR and extend desc_size_for_minor");

/* The header every descriptor of every ABI version starts with: the only
 * bytes that may be read before magic, major and size have been checked. */
#define DESC_HEADER_SIZE DESC_END(struct_size)

/* Parses a parameter default as its declared type and checks it against the
 * declared range. Returns NULL when it is fine, or writes why not into buf. */
static const char *param_default_problem(const obs_param_desc *p, char *buf, size_t buflen)
{
    const char *v = p->default_value;
    bool ranged = p->min <= p->max;
    char *end;

    switch (p->type) {
    case OBS_PARAM_INT: {
        errno = 0;
        long long x = strtoll(v, &end, 0);
        if (errno || end == v || *end) {
            snprintf(buf, buflen, "default '%s' is not an integer", v);
            return buf;
        }
        if (ranged && ((double)x < p->min || (double)x > p->max)) {
            snprintf(buf, buflen, "default %lld outside its range [%g, %g]", x, p->min, p->max);
            return buf;
        }
        return NULL;
    }
    case OBS_PARAM_DOUBLE: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end || x != x) {
            snprintf(buf, buflen, "default '%s' is not a number", v);
            return buf;
        }
        if (ranged && (x < p->min || x > p->max)) {
            snprintf(buf, buflen, "default %g outside its range [%g, %g]", x, p->min, p->max);
            return buf;
        }
        return NULL;
    }
    case OBS_PARAM_BOOL:
        if (strcmp(v, "true") && strcmp(v, "false")) {
            snprintf(buf, buflen, "default '%s' is not true or false", v);
            return buf;
        }
        return NULL;
    case OBS_PARAM_STRING:
        /* For strings the range bounds the length, and only when max > 0. */
        if (ranged && p->max > 0) {
            double len = (double)strlen(v);
            if (len < p->min || len > p->max) {
                snprintf(buf, buflen, "default '%s' has length %zu outside [%g, %g]", v, strlen(v),
                         p->min, p->max);
                return buf;
            }
        }
        return NULL;
    }
    snprintf(buf, buflen, "unknown type %u", p->type);
    return buf;
}

static int check_params(const obs_stage_desc *d, const char *what, char *err, size_t errlen)
{
    char why[256];

    if (d->n_params == 0)
        return 0;
    if (!d->params)
        return plugin_refuse(OBS_EPLUGIN, err, errlen, what,
                             "declares %u parameters but params is NULL", d->n_params);
    if (d->n_params > PLUGIN_MAX_PARAMS)
        return plugin_refuse(OBS_EPLUGIN, err, errlen, what, "declares %u parameters (at most %u)",
                             d->n_params, PLUGIN_MAX_PARAMS);

    for (uint32_t i = 0; i < d->n_params; i++) {
        const obs_param_desc *p = &d->params[i];

        if (!p->name || !p->name[0])
            return plugin_refuse(OBS_EPLUGIN, err, errlen, what, "parameter #%u has no name", i);
        /* Names are YAML keys and counter-like identifiers: keep them plain. */
        if (strspn(p->name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(p->name))
            return plugin_refuse(OBS_EPLUGIN, err, errlen, what,
                                 "parameter '%s': name must match [a-z0-9_]+", p->name);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(d->params[j].name, p->name) == 0)
                return plugin_refuse(OBS_EPLUGIN, err, errlen, what,
                                     "parameter '%s' declared twice (#%u and #%u)", p->name, j, i);
        if (p->type < OBS_PARAM_INT || p->type > OBS_PARAM_STRING)
            return plugin_refuse(OBS_EPLUGIN, err, errlen, what,
                                 "parameter '%s' has unknown type %u", p->name, p->type);
        if (p->default_value && param_default_problem(p, why, sizeof why))
            return plugin_refuse(OBS_EPLUGIN, err, errlen, what, "parameter '%s': %s", p->name,
                                 why);
    }
    return 0;
}

/* The check itself. On success copies the descriptor into *norm, zero-filled
 * beyond the plugin's struct_size, so later code may read every field the
 * host knows. Reads the plugin's memory only within its declared size. */
int plugin_check_desc_norm(const obs_stage_desc *raw, obs_kind kind, const char *what, char *err,
                           size_t errlen, obs_stage_desc *norm)
{
    obs_stage_desc d;

    if (!raw)
        return plugin_refuse(OBS_EPLUGIN, err, errlen, what,
                             "%s() returned NULL instead of a descriptor", OBS_STAGE_ENTRY_NAME);
    if (raw->magic != OBS_STAGE_MAGIC)
        return plugin_refuse(OBS_EABI, err, errlen, what,
                             "not an Observatory stage plugin: descriptor magic 0x%08x, expected "
                             "0x%08x (\"OBST\")",
                             raw->magic, OBS_STAGE_MAGIC);
    /* Another major may have moved any field after the header: stop here. */
    if (raw->abi_major != OBS_ABI_MAJOR)
        return plugin_refuse(OBS_EABI, err, errlen, what, "ABI major %u, host supports %u",
                             raw->abi_major, OBS_ABI_MAJOR);

    /* A newer minor only appended fields, so the host needs what it knows;
     * an older minor must carry everything that minor defined. */
    unsigned minor = raw->abi_minor <= OBS_ABI_MINOR ? raw->abi_minor : OBS_ABI_MINOR;
    uint32_t need = desc_size_for_minor[minor];
    if (raw->struct_size < need)
        return plugin_refuse(
            OBS_EABI, err, errlen, what,
            "descriptor struct_size %u too small: ABI %u.%u needs at least %u bytes",
            raw->struct_size, raw->abi_major, raw->abi_minor, need);

    memset(&d, 0, sizeof d);
    memcpy(&d, raw, raw->struct_size < sizeof d ? raw->struct_size : sizeof d);

    if (!d.name || !d.name[0])
        return plugin_refuse(OBS_EPLUGIN, err, errlen, what, "descriptor has no name");
    if (!d.version || !d.version[0])
        return plugin_refuse(OBS_EPLUGIN, err, errlen, what, "plugin '%s' has no version", d.name);

    if (d.kind < OBS_KIND_GENERATOR || d.kind > OBS_KIND_SINK)
        return plugin_refuse(OBS_EPLUGIN, err, errlen, what, "unknown kind %u (expected 1..3)",
                             d.kind);
    if (kind && d.kind != (uint32_t)kind)
        return plugin_refuse(OBS_ECONFIG, err, errlen, what, "is %s, but the stage needs %s",
                             plugin_kind_with_article(d.kind), plugin_kind_with_article(kind));

    if (!d.init)
        return plugin_refuse(OBS_EPLUGIN, err, errlen, what, "%s without init callback",
                             plugin_kind_name(d.kind));
    if (!d.fini)
        return plugin_refuse(OBS_EPLUGIN, err, errlen, what, "%s without fini callback",
                             plugin_kind_name(d.kind));
    if (d.kind == OBS_KIND_GENERATOR && !d.generate)
        return plugin_refuse(OBS_EPLUGIN, err, errlen, what, "generator without generate callback");
    if (d.kind == OBS_KIND_TRANSFORM && !d.process)
        return plugin_refuse(OBS_EPLUGIN, err, errlen, what, "transform without process callback");
    if (d.kind == OBS_KIND_SINK && !d.consume)
        return plugin_refuse(OBS_EPLUGIN, err, errlen, what, "sink without consume callback");
    if (d.flags & ~OBS_STAGE_SOURCE)
        return plugin_refuse(OBS_EABI, err, errlen, what,
                             "descriptor flags 0x%x: this host (ABI %u.%u) knows only 0x%x "
                             "(source)",
                             d.flags, OBS_ABI_MAJOR, OBS_ABI_MINOR, OBS_STAGE_SOURCE);
    if ((d.flags & OBS_STAGE_SOURCE) && d.kind != OBS_KIND_GENERATOR)
        return plugin_refuse(OBS_EPLUGIN, err, errlen, what,
                             "%s flagged as a source: only a generator can be one",
                             plugin_kind_name(d.kind));

    int rc = check_params(&d, what, err, errlen);
    if (rc)
        return rc;
    if (norm)
        *norm = d;
    return 0;
}

int plugin_check_desc(const obs_stage_desc *d, obs_kind kind, const char *what, char *err,
                      size_t errlen)
{
    return plugin_check_desc_norm(d, kind, what, err, errlen, NULL);
}
